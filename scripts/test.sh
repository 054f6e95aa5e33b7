#!/usr/bin/env bash
# The project's test command: formatting, lints, unit, property and integration tests.
# Tests that need a real Kafka broker run when KAFKA_BOOTSTRAP_SERVERS is set, or when the
# shared broker script (../shared/kafka/start-kafka.sh) can start one; otherwise they print
# why they were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

kafka_script=${KAFKA_SCRIPT:-../shared/kafka/start-kafka.sh}
started_kafka=0
stop_kafka() { if [ "$started_kafka" = 1 ]; then "$kafka_script" --stop >/dev/null 2>&1 || true; fi; }
trap stop_kafka EXIT

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/29092) 2>/dev/null; then
    echo "test: using the Kafka broker already listening on 127.0.0.1:29092"
    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092
  elif [ -x "$kafka_script" ] && "$kafka_script" --available; then
    echo "test: starting a Kafka broker with $kafka_script"
    "$kafka_script"
    started_kafka=1
    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092
  else
    echo "test: no Kafka broker available; real-broker tests will be skipped (see README, 'Two commands')"
  fi
fi

# rdkafka is built with TLS (OpenSSL) for kafka.security.
if ! pkg-config --exists openssl 2>/dev/null; then
  echo "test: installing libssl-dev and pkg-config (needed to build librdkafka with TLS)"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq libssl-dev pkg-config
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# The binary the integration tests ran, for the checks below (no second build).
export EDDY_BIN="$PWD/target/debug/eddy"

# Deployment artefacts (Dockerfile, compose, Helm chart), checked without a cluster or engine,
# and a test that the check catches breakage.
scripts/check-deploy.sh
scripts/test-check-deploy.sh

# Observability: alert rules (promtool), the dashboard against Grafana's schema, and a real
# Prometheus scraping a running eddy (needs the broker).
if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  scripts/check-observability.sh
else
  echo "test: check-observability.sh skipped: it scrapes an eddy running against a broker"
fi
