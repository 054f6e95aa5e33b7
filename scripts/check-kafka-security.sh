#!/usr/bin/env bash
# eddy against a real Kafka 4.1 broker that requires SASL_SSL with SCRAM-SHA-512: starts a
# throwaway KRaft broker on 127.0.0.1 (its own CA and certificate, two SCRAM users), produces
# the tutorial events, and checks that
#   1. `eddy run` with kafka.security (password from a file, the test CA) computes the counts;
#   2. a wrong password makes eddy exit 1 with a message that names credentials;
#   3. the system CA store (which does not trust the test CA) makes eddy exit 1 too.
# Needs the Kafka distribution that ../shared/kafka/start-kafka.sh assembles (KAFKA_HOME,
# default ~/.cache/kafka-4.1.0/kafka_2.13-4.1.0), java, openssl and a built eddy (EDDY_BIN,
# default target/debug/eddy). Takes about a minute. Prints 'N passed, N failed'.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kafka=${KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-4.1.0/kafka_2.13-4.1.0}
eddy=${EDDY_BIN:-$root/target/debug/eddy}
port=${SECURE_KAFKA_PORT:-39092}
for need in "$kafka/bin/kafka-server-start.sh" "$eddy"; do
  [ -x "$need" ] || { echo "check-kafka-security: skipped: $need is missing"; exit 0; }
done
command -v openssl >/dev/null && command -v java >/dev/null || { echo "check-kafka-security: skipped: needs openssl and java"; exit 0; }

work=$(mktemp -d)
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# A CA and a broker certificate for 127.0.0.1 / localhost.
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=eddy-test-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 2 -extfile san.ext 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pk8
cat broker.pk8 broker.crt >broker.pem

cat >server.properties <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$((port + 1))
listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=SASL_SSL://127.0.0.1:$port
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";
ssl.keystore.type=PEM
ssl.keystore.location=$work/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$work/ca.pem
log.dirs=$work/data
num.partitions=2
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
cat >admin.properties <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";
ssl.truststore.type=PEM
ssl.truststore.location=$work/ca.pem
EOF

"$kafka/bin/kafka-storage.sh" format -t "$("$kafka/bin/kafka-storage.sh" random-uuid)" -c server.properties \
  --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]' \
  --add-scram 'SCRAM-SHA-512=[name=eddy,password=eddy-pw-123]' >/dev/null
KAFKA_HEAP_OPTS="-Xmx512m -Xms512m" LOG_DIR="$work/logs" "$kafka/bin/kafka-server-start.sh" server.properties >broker.log 2>&1 &
broker_pid=$!
deadline=$((SECONDS + 60))
until grep -q "Kafka Server started" broker.log; do
  [ $SECONDS -lt $deadline ] && kill -0 "$broker_pid" 2>/dev/null || { tail -20 broker.log; echo "check-kafka-security: the broker did not start"; exit 1; }
  sleep 0.2
done

"$kafka/bin/kafka-topics.sh" --bootstrap-server "127.0.0.1:$port" --command-config admin.properties \
  --create --topic events --partitions 2 >/dev/null
"$eddy" gen tutorial --events 2000 --hours 6 |
  python3 -c 'import sys, json
for line in sys.stdin:
    print(json.dumps({"action": json.loads(line)["action"]}, separators=(",", ":")) + "|" + line.strip())' >input.txt
"$kafka/bin/kafka-console-producer.sh" --bootstrap-server "127.0.0.1:$port" --producer.config admin.properties \
  --topic events --property parse.key=true --property 'key.separator=|' <input.txt

printf 'eddy-pw-123\n' >password
printf 'not-the-password\n' >wrong-password
# pipeline NAME PASSWORD_FILE TLS_SECTION
pipeline() {
  cat >"$1.yaml" <<EOF
app: $1
kafka:
  bootstrap_servers: 127.0.0.1:$port
  security:
    protocol: SASL_SSL
    sasl: { mechanism: SCRAM-SHA-512, username: eddy, password_file: $work/$2 }
$3
state: { dir: $work/state-$1 }
http: { listen: "127.0.0.1:0" }
sources:
  events:
    topic: events
    schema: { time: timestamp, action: string, id: string }
    event_time: time
    watermark_delay: 2h
    partition_key: [action]
sinks:
  counts: { topic: counts-$1, output_mode: append }
queries:
  - name: hourly
    sink: counts
    sql: SELECT action, window.start AS hour, count(*) AS n FROM events GROUP BY action, window(time, '1 hour')
EOF
}

passed=0
failed=0
check() { if [ "$1" = ok ]; then echo "ok    $2"; passed=$((passed + 1)); else echo "FAIL  $2: $3"; failed=$((failed + 1)); fi; }

pipeline good password "    tls: { ca_file: $work/ca.pem }"
if timeout 120 "$eddy" run -c good.yaml --instance-id good-0 --stop-at-end --flush-at-end >good.log 2>&1; then
  "$kafka/bin/kafka-console-consumer.sh" --bootstrap-server "127.0.0.1:$port" --consumer.config admin.properties \
    --topic counts-good --from-beginning --isolation-level read_committed --timeout-ms 10000 >counts.jsonl 2>/dev/null || true
  summary=$(python3 -c 'import sys, json
rows = [json.loads(l) for l in open("counts.jsonl") if l.strip()]
print(len(rows), sum(r["n"] for r in rows))')
  if [ "$summary" = "12 2000" ]; then check ok "SASL_SSL + SCRAM-SHA-512: 12 hourly rows counting all 2000 events"
  else check fail "SASL_SSL + SCRAM-SHA-512" "expected 12 rows summing to 2000, got '$summary'"; fi
else
  check fail "SASL_SSL + SCRAM-SHA-512" "eddy run failed: $(tail -3 good.log)"
fi

pipeline wrong wrong-password "    tls: { ca_file: $work/ca.pem }"
if timeout 120 "$eddy" run -c wrong.yaml --instance-id wrong-0 --stop-at-end >wrong.log 2>&1; then
  check fail "a wrong password" "eddy run succeeded"
elif grep -q "wrong password" wrong.log && ! grep -q "not-the-password" wrong.log; then
  check ok "a wrong password: exit 1, names credentials, does not print the password"
else
  check fail "a wrong password" "$(tail -2 wrong.log)"
fi

pipeline untrusted password ""
if timeout 120 "$eddy" run -c untrusted.yaml --instance-id untrusted-0 --stop-at-end >untrusted.log 2>&1; then
  check fail "an untrusted broker certificate" "eddy run succeeded"
else
  check ok "an untrusted broker certificate (system CA store): exit 1"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
