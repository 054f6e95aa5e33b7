"""Splits `helm template` output into what each checker reads.

Usage: split-manifests.py RENDERED.yaml OUT_DIR
Writes OUT_DIR/core.yaml (Kubernetes built-in kinds, for kubernetes-validate),
OUT_DIR/monitoring.json (monitoring.coreos.com objects, for validate-monitoring.mjs) and
OUT_DIR/pipeline.yaml (the pipeline file from the chart's ConfigMap, for `eddy validate`).
"""
import json
import os
import sys

import yaml

rendered, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with open(rendered) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
core, monitoring, pipeline = [], [], None
for d in docs:
    if str(d.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
        monitoring.append(d)
    else:
        core.append(d)
    if d.get("kind") == "ConfigMap" and "pipeline.yaml" in d.get("data", {}):
        pipeline = d["data"]["pipeline.yaml"]
with open(os.path.join(out, "core.yaml"), "w") as f:
    yaml.safe_dump_all(core, f, sort_keys=False)
with open(os.path.join(out, "monitoring.json"), "w") as f:
    json.dump(monitoring, f)
if pipeline is None:
    sys.exit("no ConfigMap with pipeline.yaml in the rendered chart")
with open(os.path.join(out, "pipeline.yaml"), "w") as f:
    f.write(pipeline)
print(f"{len(core)} core objects, {len(monitoring)} monitoring objects")
