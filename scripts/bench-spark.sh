#!/usr/bin/env bash
# The tutorial's hourly count on the same 1,000,000 events: eddy in-engine and end to end,
# then Spark Structured Streaming (PySpark 4.0.0, local[1]), and the per-core ratio.
#   scripts/bench-spark.sh [EVENTS]        (docs/benchmarks.md shows a run)
# Needs a release build (cargo build --release), Java 17, and /tmp/spark-venv with pyspark
# (created here when missing). End-to-end mode runs when KAFKA_BOOTSTRAP_SERVERS is set.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
DATA=${BENCH_DATA:-/tmp/eddy-bench-data}
EDDY=target/release/eddy
VENV=${SPARK_VENV:-/tmp/spark-venv}
mkdir -p "$DATA"
if [ ! -s "$DATA/events.json" ] || [ "$(wc -l < "$DATA/events.json")" -ne "$EVENTS" ]; then
  "$EDDY" gen tutorial --events "$EVENTS" > "$DATA/events.json"
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet pyspark==4.0.0
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
eddy_out=$("$EDDY" bench --child --data "$DATA" --query config/tutorial.yaml)
echo "eddy in-engine: $eddy_out"
if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  e2e_out=$("$EDDY" --log warn bench --child --mode e2e --data "$DATA" --query config/tutorial.yaml)
  echo "eddy e2e:       $e2e_out"
fi
spark_out=$("$VENV/bin/python" scripts/bench-spark.py "$DATA/events.json" 2>/dev/null | grep '"system"')
echo "$spark_out" | sed 's/^/spark:          /'
python3 - "$eddy_out" "${e2e_out:-}" "$spark_out" <<'PY'
import json, sys
eddy = json.loads(sys.argv[1])
e2e = json.loads(sys.argv[2]) if sys.argv[2] else None
spark = [json.loads(l) for l in sys.argv[3].splitlines()]
warm = [s for s in spark if s["run"] == "warm"][0]
per_core = lambda r: r["events"] / r["cpu_s"]
print(f"per core: eddy in-engine {per_core(eddy):,.0f}/s, spark warm {warm['events_per_core_s']:,}/s "
      f"-> ratio {per_core(eddy) / warm['events_per_core_s']:.1f}x")
if e2e:
    print(f"per core: eddy end-to-end {per_core(e2e):,.0f}/s -> ratio {per_core(e2e) / warm['events_per_core_s']:.1f}x")
PY
