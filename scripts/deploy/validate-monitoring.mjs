// Validates prometheus-operator objects (ServiceMonitor, PrometheusRule, ...) against the CRD
// schemas shipped by the npm package @kubernetes-models/prometheus-operator.
// Usage: node validate-monitoring.mjs NPM_PREFIX FILE.json   (FILE: a JSON array of objects)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, file] = process.argv.slice(2);
const models = join(prefix, "node_modules", "@kubernetes-models", "prometheus-operator");
const objects = JSON.parse(readFileSync(file, "utf8"));
let failed = 0;
for (const obj of objects) {
  const [group, version] = String(obj.apiVersion).split("/");
  const name = `${obj.kind}/${obj.metadata?.name}`;
  let Model;
  try {
    const mod = await import(pathToFileURL(join(models, group, version, `${obj.kind}.js`)).href);
    Model = mod[obj.kind];
  } catch (e) {
    console.error(`${name}: no schema for ${obj.apiVersion} ${obj.kind}: ${e.message}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`${name}: valid ${obj.apiVersion} ${obj.kind}`);
  } catch (e) {
    console.error(`${name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
