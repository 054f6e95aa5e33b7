#!/usr/bin/env bash
# Copies eddy's Grafana dashboard and Prometheus alert rules into the Helm chart, which must
# ship them inside its own directory (Helm reads files only from there).
#   docker/grafana/dashboards/eddy.json -> charts/eddy/dashboards/eddy.json
#   docker/prometheus/alerts.yml        -> charts/eddy/rules/alerts.yml
# With --check, changes nothing and exits 1 if a copy differs from its source.
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=(
  "docker/grafana/dashboards/eddy.json charts/eddy/dashboards/eddy.json"
  "docker/prometheus/alerts.yml charts/eddy/rules/alerts.yml"
)
check=0
[ "${1:-}" = "--check" ] && check=1
status=0
for pair in "${pairs[@]}"; do
  read -r src dst <<<"$pair"
  if [ ! -f "$src" ]; then
    echo "sync-chart-assets: $src is missing" >&2
    status=1
    continue
  fi
  if cmp -s "$src" "$dst"; then
    continue
  fi
  if [ "$check" = 1 ]; then
    echo "sync-chart-assets: $dst differs from $src; run scripts/sync-chart-assets.sh" >&2
    status=1
  else
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
    echo "sync-chart-assets: copied $src to $dst"
  fi
done
exit "$status"
