#!/usr/bin/env bash
# Checks eddy's observability assets with the real tools, as CI does:
#  1. alert rules: `promtool check rules` and `promtool test rules` (docker/prometheus/alerts_test.yml);
#  2. the Grafana dashboard validates against a JSON schema generated from Grafana's own
#     TypeScript Dashboard type (npm @grafana/schema, via ts-json-schema-generator);
#  3. a real eddy (`eddy run` on a generated tutorial input, on the broker at
#     KAFKA_BOOTSTRAP_SERVERS) is scraped: `promtool check metrics` passes on /metrics;
#  4. a real Prometheus scrapes that eddy every second with the alert rules loaded: every
#     dashboard query and variable query parses (Prometheus's own parser, via its HTTP API)
#     and returns data, and every alert rule evaluates without error.
# Tools: Debian's `prometheus` package (apt-get, when promtool is missing); npm packages and the
# generated schema are cached in ~/.cache/eddy-obs-tools. Needs python3 with jsonschema (installed
# into the cache with pip when missing). Run from anywhere: scripts/check-observability.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$(date +%s)
say() { echo "check-observability: $*"; }
fail() { echo "check-observability: FAILED: $*" >&2; exit 1; }

cache=${EDDY_OBS_CACHE:-$HOME/.cache/eddy-obs-tools}
grafana_schema_version=${GRAFANA_SCHEMA_VERSION:-13.2.3}
generator_version=2.4.0
mkdir -p "$cache"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# --- tools -------------------------------------------------------------------------------
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  say "installing Debian's prometheus package (promtool comes with it)"
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt_get update >/dev/null && apt_get install -y --no-install-recommends prometheus >/dev/null; }
fi
say "$(promtool --version 2>&1 | head -1)"
py=python3
if ! python3 -c 'import jsonschema' 2>/dev/null; then
  if ! PYTHONPATH="$cache/py" python3 -c 'import jsonschema' 2>/dev/null; then
    say "installing python jsonschema into $cache/py"
    python3 -m pip install --quiet --target "$cache/py" jsonschema
  fi
  export PYTHONPATH="$cache/py"
fi

# --- 1. alert rules ------------------------------------------------------------------------
promtool check rules docker/prometheus/alerts.yml
(cd docker/prometheus && promtool test rules alerts_test.yml)

# --- 2. dashboard schema -------------------------------------------------------------------
schema="$cache/grafana-dashboard-$grafana_schema_version.schema.json"
if [ ! -s "$schema" ]; then
  say "generating the dashboard JSON schema from @grafana/schema $grafana_schema_version"
  mkdir -p "$cache/npm"
  (cd "$cache/npm" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
    && npm install --silent --no-audit --no-fund "@grafana/schema@$grafana_schema_version" "ts-json-schema-generator@$generator_version" >/dev/null)
  types="$cache/npm/node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts"
  [ -f "$types" ] || fail "no Dashboard type at $types"
  (cd "$cache/npm" && npx --no-install ts-json-schema-generator --path "$types" --type Dashboard --no-type-check -o "$schema.tmp")
  mv "$schema.tmp" "$schema"
fi
$py - "$schema" docker/grafana/dashboards/eddy.json <<'EOF'
import json, sys, jsonschema
schema, dash = (json.load(open(p)) for p in sys.argv[1:3])
errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(dash), key=lambda e: e.json_path)
for e in errors:
    print(f"  {e.json_path}: {e.message[:300]}", file=sys.stderr)
if errors:
    sys.exit(f"check-observability: FAILED: {sys.argv[2]} does not match Grafana's Dashboard schema ({len(errors)} errors)")
print(f"check-observability: {sys.argv[2]} matches Grafana's Dashboard schema ({len(dash['panels'])} panels)")
EOF

# --- 3. a running eddy ---------------------------------------------------------------------
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/29092) 2>/dev/null; then
    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092
  else
    fail "the live checks need a Kafka broker: set KAFKA_BOOTSTRAP_SERVERS (or start ../shared/kafka/start-kafka.sh)"
  fi
fi
# $EDDY_BIN when the caller has a fresh build (scripts/test.sh passes the binary `cargo test`
# built: a plain `cargo build` resolves dependency features without the dev-dependencies and
# would compile DataFusion a second time), else a debug build.
if [ -n "${EDDY_BIN:-}" ]; then
  eddy=$EDDY_BIN
else
  cargo build --locked --quiet --bin eddy
  eddy=$root/target/debug/eddy
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
suffix="$(date +%s)-$$"
topic="obs-events-$suffix"
"$eddy" gen tutorial --topic "$topic" --bootstrap-servers "$KAFKA_BOOTSTRAP_SERVERS" --events 20000 --partitions 2 --log warn >/dev/null
cat >"$work/pipeline.yaml" <<EOF
app: obs-check-$suffix
kafka:
  bootstrap_servers: "$KAFKA_BOOTSTRAP_SERVERS"
  properties: { "statistics.interval.ms": "1000" }
state: { dir: "$work/state" }
commit_interval: 100ms
http: { listen: "127.0.0.1:$(free_port)" }
sources:
  events:
    topic: $topic
    schema: { time: timestamp, action: string, id: string }
    event_time: time
    watermark_delay: 2h
    partition_key: [action]
    dead_letter_topic: $topic-dlq
sinks:
  counts: { topic: $topic-counts, output_mode: append }
queries:
  - name: hourly_counts
    sink: counts
    sql: |
      SELECT action, window.start AS window_start, window.end AS window_end, count(*) AS count
      FROM events
      GROUP BY action, window(time, '1 hour')
EOF
eddy_addr=$(sed -n 's/^http: { listen: "\(.*\)" }$/\1/p' "$work/pipeline.yaml")
"$eddy" run -c "$work/pipeline.yaml" --instance-id obs-check --log warn 2>"$work/eddy.log" &
pids+=($!)
deadline=$(($(date +%s) + 90))
until curl -sf "http://$eddy_addr/readyz" >/dev/null \
  && [ "$(curl -sf "http://$eddy_addr/metrics" | awk '/^eddy_records_consumed_total/ {s += $2} END {print s + 0}')" = 20000 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/eddy.log" >&2; fail "eddy did not become ready and consume its 20000 records"; }
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/eddy.log" >&2; fail "eddy exited"; }
  sleep 0.5
done
say "eddy at $eddy_addr is ready and consumed its input"
curl -sf "http://$eddy_addr/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics found problems in eddy's /metrics"
say "promtool check metrics: ok ($(grep -c '^# TYPE' "$work/metrics.txt") metric families)"

# --- 4. a real Prometheus scraping it ------------------------------------------------------
prom_port=$(free_port)
cp docker/prometheus/alerts.yml "$work/alerts.yml"
cat >"$work/prometheus.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ "$work/alerts.yml" ]
scrape_configs:
  - job_name: eddy
    static_configs: [ { targets: [ "$eddy_addr" ] } ]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn 2>"$work/prometheus.log" &
pids+=($!)
$py - "http://127.0.0.1:$prom_port" docker/grafana/dashboards/eddy.json hourly_counts <<'EOF'
import json, re, sys, time, urllib.parse, urllib.request

prom, dash_path, query_name = sys.argv[1:4]
dash = json.load(open(dash_path))

def api(path, **params):
    url = f"{prom}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 400: the expression does not parse
        return json.load(e)

def substitute(expr):
    # Grafana's variables, as the dashboard would send them for one query and every job.
    for k, v in {"$__rate_interval": "5s", "$__interval": "1s", "$__range": "1m", "$job": "eddy", "$query": query_name}.items():
        expr = expr.replace(k, v)
    assert "$" not in expr, f"an unknown variable in {expr}"
    return expr

exprs = []
for panel in dash["panels"]:
    for t in panel.get("targets", []):
        exprs.append((f"panel '{panel['title']}' {t['refId']}", substitute(t["expr"])))
for v in dash["templating"]["list"]:
    if v["type"] == "query":
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
        assert m, f"variable {v['name']}: unsupported query {q}"
        exprs.append((f"variable ${v['name']}", substitute(f"count by ({m[2]}) ({m[1]})")))

deadline = time.time() + 60
# Up first, then a few scrapes, so that rates have two samples.
while True:
    up = api("/api/v1/query", query='up{job="eddy"} == 1')
    if up.get("status") == "success" and up["data"]["result"]:
        break
    if time.time() > deadline:
        sys.exit("check-observability: FAILED: Prometheus never scraped eddy")
    time.sleep(0.5)
pending = dict(exprs)
while True:
    for name, expr in list(pending.items()):
        r = api("/api/v1/query", query=expr)
        if r.get("status") != "success":
            sys.exit(f"check-observability: FAILED: {name} does not parse: {r.get('error')}\n  {expr}")
        if r["data"]["result"]:
            del pending[name]
    if not pending or time.time() > deadline:
        break
    time.sleep(1)
if pending:
    sys.exit("check-observability: FAILED: these queries returned no data:\n" + "\n".join(f"  {n}: {e}" for n, e in pending.items()))
print(f"check-observability: {len(exprs)} dashboard queries parse and return data")
# Every alert rule loaded and evaluates cleanly against real series.
while True:
    groups = api("/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    if rules and all(r.get("lastEvaluation", "").startswith("0001") is False for r in rules):
        break
    if time.time() > deadline:
        break
    time.sleep(0.5)
bad = [f"{r['name']}: {r.get('health')} {r.get('lastError', '')}" for r in rules if r.get("health") != "ok"]
if not rules or bad:
    sys.exit("check-observability: FAILED: alert rules did not evaluate: " + ("; ".join(bad) or "none loaded"))
print(f"check-observability: {len(rules)} alert rules evaluate in Prometheus")
EOF
curl -sf "http://$eddy_addr/progress" >"$work/progress.json" || fail "/progress did not answer"
$py - docs/progress.schema.json "$work/progress.json" <<'EOF'
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
jsonschema.Draft202012Validator(schema).validate(doc)
assert doc["queries"], "no query progress yet"
print("check-observability: /progress matches docs/progress.schema.json")
EOF
say "all checks passed in $(($(date +%s) - started))s"
