#!/usr/bin/env bash
# Shows that scripts/check-deploy.sh catches broken deployment files: it copies the deployment
# files to a temporary tree, checks that the pristine copy passes, then breaks the chart, the
# compose file, the Dockerfile, a pipeline file and the chart's asset copies one at a time, and
# asserts that check-deploy fails each time, at the step that should catch it.
# Prints 'N passed, N failed'; exits non-zero if any case did not behave.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Pipeline files are checked with `eddy validate` when a binary is at hand.
if [ -z "${EDDY_BIN:-}" ] && [ -x "$root/target/debug/eddy" ]; then
  export EDDY_BIN="$root/target/debug/eddy"
fi

fresh_copy() {
  rm -rf "$work/tree" && mkdir -p "$work/tree"
  cp -r "$root/scripts" "$root/docker" "$root/charts" "$root/config" "$work/tree/"
  cp "$root/Cargo.toml" "$root/Cargo.lock" "$work/tree/"
}

# edit FILE PYTHON_EXPR: rewrites FILE's text `s` with a Python expression, which must change it.
edit() {
  python3 - "$work/tree/$1" "$2" <<'PY'
import sys
path, expr = sys.argv[1], sys.argv[2]
s = open(path).read()
new = eval(expr, {"s": s})
if new == s:
    sys.exit(f"test-check-deploy: the edit did not change {path}: {expr}")
open(path, "w").write(new)
PY
}

passed=0
failed=0
# expect_failure NAME PATTERN EDIT...: applies the edits to a fresh copy; check-deploy must
# fail with a FAILED line matching PATTERN.
expect_failure() {
  local name=$1 pattern=$2
  shift 2
  fresh_copy
  while [ $# -gt 0 ]; do edit "$1" "$2"; shift 2; done
  if "$work/tree/scripts/check-deploy.sh" "$work/tree" >"$work/log" 2>&1; then
    echo "FAIL  $name: check-deploy passed"
    failed=$((failed + 1))
  elif ! grep -qE "FAILED: .*$pattern" "$work/log"; then
    echo "FAIL  $name: check-deploy failed, but not at '$pattern':"
    sed 's/^/      /' "$work/log" | tail -n 8
    failed=$((failed + 1))
  else
    echo "ok    $name ($(grep 'FAILED' "$work/log" | head -n 1 | sed 's/.*FAILED: //'))"
    passed=$((passed + 1))
  fi
}

fresh_copy
if "$work/tree/scripts/check-deploy.sh" "$work/tree" >"$work/log" 2>&1; then
  echo "ok    the pristine copy passes"
  passed=$((passed + 1))
else
  echo "FAIL  the pristine copy fails:"
  sed 's/^/      /' "$work/log" | tail -n 12
  failed=$((failed + 1))
fi

sts=charts/eddy/templates/statefulset.yaml
expect_failure "chart: a template error" "helm lint" \
  $sts "s + '\n{{ .Values.no.such.value }}\n'"
expect_failure "chart: a field Kubernetes does not know" "kubernetes-validate" \
  $sts "s.replace('containerPort:', 'containerPorts:')"
expect_failure "chart: a readiness probe on a port name that is not a string or number" "kubernetes-validate" \
  $sts "s.replace('path: /readyz\n              port: http', 'path: /readyz\n              port: [http]')"
expect_failure "chart: a ServiceMonitor interval the CRD rejects" "CRD schemas" \
  charts/eddy/templates/servicemonitor.yaml "s.replace('interval: {{ .Values.metrics.serviceMonitor.interval }}', 'interval: 15 seconds')"
expect_failure "chart: a values file the schema rejects" "helm lint" \
  charts/eddy/ci/minimal-values.yaml "s.replace('replicaCount: 1', 'replicaCount: one')"
expect_failure "chart: a grace period shorter than eddy's shutdown" "helm (lint|template)" \
  charts/eddy/values.yaml "s.replace('terminationGracePeriodSeconds: 45', 'terminationGracePeriodSeconds: 20')"
if [ -n "${EDDY_BIN:-}" ]; then
  expect_failure "chart: a pipeline whose SQL names an unknown source" "eddy validate" \
    charts/eddy/ci/secure-values.yaml "s.replace('FROM orders', 'FROM order_stream')"
  expect_failure "compose: a pipeline with an unknown field" "eddy validate" \
    config/compose.yaml "s.replace('commit_interval: 200ms', 'commit_intervall: 200ms')"
fi
expect_failure "chart: a dashboard copy out of sync" "chart assets" \
  charts/eddy/dashboards/eddy.json "s + ' '"
expect_failure "compose: an unknown depends_on condition" "docker compose" \
  docker/docker-compose.yml "s.replace('condition: service_completed_successfully', 'condition: service_finished', 1)"
expect_failure "compose: a service key compose does not know" "docker compose" \
  docker/docker-compose.yml "s.replace('    stop_grace_period: 40s', '    stop_grace: 40s')"
expect_failure "compose: a mounted file that does not exist" "mounts files that do not exist" \
  docker/docker-compose.yml "s.replace('./prometheus/prometheus.yml:', './prometheus/prometheus.yaml:')"
expect_failure "Dockerfile: running as root" "(hadolint|non-root)" \
  docker/Dockerfile "s.replace('USER 10001:10001', 'USER root')"
expect_failure "Dockerfile: apt-get without -y, --no-install-recommends or cleanup" "hadolint" \
  docker/Dockerfile "s.replace('COPY --from=builder', 'RUN apt-get update && apt-get install curl\nCOPY --from=builder')"
expect_failure "Dockerfile: a dependency layer that leaves a declared bench without a stub" "dependency layer" \
  docker/Dockerfile "s.replace('/^\\[\\[bench\\]\\]/ { d = \"benches\" } ', '')"
expect_failure "Dockerfile: no HEALTHCHECK" "HEALTHCHECK" \
  docker/Dockerfile "s[:s.index('HEALTHCHECK')] + s[s.index('ENTRYPOINT'):]"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
