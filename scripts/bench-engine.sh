#!/usr/bin/env bash
# Nexmark and tutorial queries through `eddy bench`: in-engine, then end to end on a real
# broker with exactly-once when KAFKA_BOOTSTRAP_SERVERS is set. docs/benchmarks.md has results.
#   scripts/bench-engine.sh [NEXMARK_EVENTS] [E2E_NEXMARK_EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-2000000}
E2E_EVENTS=${2:-1000000}
DATA=${BENCH_DATA:-/tmp/eddy-bench-data}
EDDY=target/release/eddy
[ -x "$EDDY" ] || cargo build --release
gen() { # dir events
  mkdir -p "$1"
  if [ ! -s "$1/bid.json" ] || [ "$(cat "$1/.events" 2>/dev/null)" != "$2" ]; then
    "$EDDY" gen nexmark --events "$2" --dir "$1"
    echo "$2" > "$1/.events"
  fi
  [ -s "$1/events.json" ] || "$EDDY" gen tutorial --events 1000000 > "$1/events.json"
}
QUERIES=(--query config/tutorial.yaml)
for q in q0 q1 q2 q3 q5 q7 q8; do QUERIES+=(--query "config/nexmark/$q.yaml"); done
gen "$DATA/in-engine" "$EVENTS"
echo "uptime: $(uptime)"
"$EDDY" bench --data "$DATA/in-engine" "${QUERIES[@]}"
if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  gen "$DATA/e2e" "$E2E_EVENTS"
  "$EDDY" --log warn bench --mode e2e --data "$DATA/e2e" "${QUERIES[@]}"
fi
