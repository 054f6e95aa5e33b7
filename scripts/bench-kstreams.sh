#!/usr/bin/env bash
# eddy beside Kafka Streams and Kafka's own kafka-consumer-perf-test.sh on one pre-produced
# topic of tutorial events: the tutorial's hourly count per action (config/tutorial.yaml),
# exactly once, commit interval 100 ms, engines alternating; prints medians, the ratios, and
# checks that both engines emitted the same count for every window.
#
#   scripts/bench-kstreams.sh [EVENTS [ROUNDS]]     (defaults 5000000 and 3; docs/benchmarks.md)
#
# Environment:
#   EDDY                     eddy binary (default target/release/eddy; built when missing)
#   KAFKA_BOOTSTRAP_SERVERS  broker (default 127.0.0.1:29092, ../shared/kafka/start-kafka.sh's)
#   KAFKA_HOME               Kafka distribution whose libs/ and bin/ are used (default the one
#                            ../shared/kafka assembles, ~/.cache/kafka-4.1.0/kafka_2.13-4.1.0)
#   PARTITIONS               partitions of the input topic (default 4)
#   KSTREAMS_THREADS         Kafka Streams' num.stream.threads (default 1)
#   KSTREAMS_JAVA_OPTS       JVM options of the Kafka Streams application (default none)
#   KEEP=1                   keep the topics, groups and the work directory (names printed)
#
# The input is keyed by action, as eddy gen writes it and config/tutorial.yaml declares
# (partition_key: [action]), so neither engine repartitions: each counts per input partition.
# With 2 actions, 2 of the partitions hold records. After the events, each partition that holds
# records gets one sentinel record, an event a month later, so that both engines close every
# real window (eddy's watermark and Kafka Streams' stream time pass its end + 2 h); the
# sentinel's own window stays open in both and is not compared.
#
# Wall time runs from starting a process until every input record is processed and committed:
# for eddy and Kafka Streams, the first poll (every 100 ms, Admin) that sees the group's
# committed offsets at the input's end; for consumer-perf-test, until it exits after reading
# every record. Steady state: eddy and Kafka Streams between the polls that saw 10% and 90% of
# the input committed; consumer-perf-test its own fetch.nMsg.sec (without its group join).
# CPU seconds and peak RSS: /usr/bin/time of each process (user + system).
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${1:-5000000}
ROUNDS=${2:-3}
EDDY=${EDDY:-target/release/eddy}
BOOTSTRAP=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:29092}
KAFKA_HOME=${KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-4.1.0/kafka_2.13-4.1.0}
PARTITIONS=${PARTITIONS:-4}
KSTREAMS_THREADS=${KSTREAMS_THREADS:-1}
SENTINEL_TIME=2016-08-26T00:00:00.000Z   # a month after the generator's 48 hours
RUN=kstreams-bench-$(date +%s)-$$         # prefix of every topic, group and application id
INPUT=$RUN-events
# Every step is bounded: an engine run by 2 minutes plus 10,000 events a second.
LIMIT=$((120 + EVENTS / 10000))

log() { echo "bench-kstreams: $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $EVENTS =~ ^[1-9][0-9]*$ ]] || die "EVENTS must be a positive number, not '$EVENTS'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number, not '$ROUNDS'"
command -v javac > /dev/null || die "javac not found: install a JDK 17 (Debian: openjdk-17-jdk-headless)"
command -v jq > /dev/null || die "jq not found (Debian: jq)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (Debian: time)"
compgen -G "$KAFKA_HOME/libs/kafka-streams-[0-9]*.jar" > /dev/null \
  || die "no Kafka distribution at $KAFKA_HOME (run ../shared/kafka/start-kafka.sh, or set KAFKA_HOME)"
host=${BOOTSTRAP%:*} port=${BOOTSTRAP##*:}
timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2> /dev/null \
  || die "no broker at $BOOTSTRAP (start one with ../shared/kafka/start-kafka.sh, or set KAFKA_BOOTSTRAP_SERVERS)"
if [ ! -x "$EDDY" ]; then
  [ "$EDDY" = target/release/eddy ] || die "EDDY=$EDDY is not an executable"
  log "no $EDDY: cargo build --release (about 20 minutes on 2 cores)"
  timeout 3600 cargo build --release --bin eddy || die "cargo build --release failed"
fi

WORK=$(mktemp -d "/tmp/$RUN.XXXX")
# A class of scripts/kstreams against the distribution's jars, logging warnings only.
JAVA=(java "-Dlog4j2.configurationFile=$KAFKA_HOME/config/tools-log4j2.yaml" -cp "$WORK/classes:$KAFKA_HOME/libs/*")
WATCH_PID=
cleanup() {
  local status=$?
  if [ -n "$WATCH_PID" ]; then kill "$WATCH_PID" 2> /dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then
    log "kept: topics and groups $RUN*, work directory $WORK"
  else
    timeout 90 "${JAVA[@]}" Bench clean "$BOOTSTRAP" "$RUN" >&2 \
      || log "could not delete the topics and groups named $RUN*: delete them by hand"
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT

# measure NAME COMMAND...: run COMMAND under /usr/bin/time and `timeout`; its stdout goes to
# $WORK/NAME.out, its stderr to $WORK/NAME.err, `wall user system maxrss_kb` to $WORK/NAME.time.
measure() {
  local name=$1
  shift
  if ! timeout -k 10 "$LIMIT" /usr/bin/time -o "$WORK/$name.time" -f '%e %U %S %M' "$@" \
    > "$WORK/$name.out" 2> "$WORK/$name.err"; then
    tail -n 20 "$WORK/$name.err" >&2
    die "$name failed or took over $LIMIT s (stderr above; files $WORK/$name.*)"
  fi
}

# cpu_s NAME / rss_kb NAME: from $WORK/NAME.time
cpu_s() { tail -n 1 "$WORK/$1.time" | awk '{ print $2 + $3 }'; }
rss_kb() { tail -n 1 "$WORK/$1.time" | awk '{ print $4 }'; }
# field KEY FILE: the value of KEY=VALUE on the `done …` line of FILE
field() { sed -n "s/^done .*\b$1=\([0-9-]*\).*/\1/p" "$2"; }

# record ENGINE ROUND WALL_S CPU_S RSS_KB STEADY_EVENTS_PER_S
record() {
  echo "$*" >> "$WORK/results"
  awk -v n="$TOTAL" '{ printf "bench-kstreams: round %s %-18s %.0f events/s (%.1f s), %.0f events per CPU-second, peak RSS %.0f MB, steady %.0f events/s\n",
    $2, $1, n / $3, $3, n / $4, $5 / 1024, $6 }' <<< "$*" >&2
}

log "compiling scripts/kstreams against $KAFKA_HOME/libs"
mkdir -p "$WORK/classes"
timeout 300 javac -d "$WORK/classes" -cp "$KAFKA_HOME/libs/*" scripts/kstreams/*.java \
  || die "javac failed"

log "producing $EVENTS tutorial events into $INPUT ($PARTITIONS partitions, keyed by action)"
timeout "$LIMIT" "$EDDY" --log warn gen tutorial --events "$EVENTS" --topic "$INPUT" \
  --bootstrap-servers "$BOOTSTRAP" --partitions "$PARTITIONS" || die "eddy gen failed"
sentinels=$(timeout 120 "${JAVA[@]}" Bench sentinel "$BOOTSTRAP" "$INPUT" "$SENTINEL_TIME") \
  || die "cannot append the sentinel records to $INPUT"
TOTAL=$((EVENTS + sentinels))
log "appended $sentinels sentinel records (time $SENTINEL_TIME); $TOTAL records in all"
printf 'isolation.level=read_committed\n' > "$WORK/perf-consumer.properties"

# The tutorial pipeline of config/tutorial.yaml, on this run's topics and a fresh state.
eddy_pipeline() { # APP STATE_DIR
  cat << EOF
app: $1
kafka:
  bootstrap_servers: $BOOTSTRAP
state:
  dir: $2
commit_interval: 100ms
http:
  listen: 127.0.0.1:0
sources:
  events:
    topic: $INPUT
    format: json
    schema: { time: timestamp, action: string, id: string }
    event_time: time
    watermark_delay: 2h
    idle_timeout: 30s
    partition_key: [action]
    dead_letter_topic: $1-dlq
sinks:
  counts:
    topic: $1-out
    format: json
    output_mode: append
queries:
  - name: hourly_counts
    sink: counts
    sql: |
      SELECT action, window.start AS window_start, window.end AS window_end, count(*) AS count
      FROM events
      GROUP BY action, window(time, '1 hour')
EOF
}

run_eddy() { # ROUND
  local app=$RUN-eddy-r$1 name=eddy-r$1
  eddy_pipeline "$app" "$WORK/$name-state" > "$WORK/$name.yaml"
  timeout 60 "${JAVA[@]}" Bench topic "$BOOTSTRAP" "$app-out" "$PARTITIONS" || die "cannot create $app-out"
  # The same poller as Kafka Streams' own, watching eddy's group from a JVM started first.
  timeout -k 5 "$((LIMIT + 60))" "${JAVA[@]}" Bench watch "$BOOTSTRAP" "$app" "$INPUT" \
    > "$WORK/$name.watch" 2> "$WORK/$name.watch.err" &
  WATCH_PID=$!
  for _ in $(seq 120); do
    grep -q '^ready' "$WORK/$name.watch" && break
    kill -0 "$WATCH_PID" 2> /dev/null || die "the watcher stopped: $(tail -n 5 "$WORK/$name.watch.err")"
    sleep 0.5
  done
  grep -q '^ready' "$WORK/$name.watch" || die "the watcher was not ready after 60 s"
  local start_ms
  start_ms=$(date +%s%3N)
  measure "$name" "$EDDY" --log warn run --stop-at-end --instance-id "$app" -c "$WORK/$name.yaml"
  for _ in $(seq 100); do
    kill -0 "$WATCH_PID" 2> /dev/null || break
    sleep 0.1
  done
  kill -0 "$WATCH_PID" 2> /dev/null && die "eddy exited, but 10 s later its group $app had not committed $INPUT to its end"
  wait "$WATCH_PID" || die "the watcher failed: $(tail -n 5 "$WORK/$name.watch.err")"
  WATCH_PID=
  local end_ms steady_events steady_ms
  end_ms=$(field end_ms "$WORK/$name.watch")
  steady_events=$(field steady_events "$WORK/$name.watch")
  steady_ms=$(field steady_ms "$WORK/$name.watch")
  [ -n "$end_ms" ] || die "the watcher printed no done line (files $WORK/$name.watch*)"
  record eddy "$1" "$(awk -v a="$start_ms" -v b="$end_ms" 'BEGIN { print (b - a) / 1000 }')" \
    "$(cpu_s "$name")" "$(rss_kb "$name")" "$(awk -v e="$steady_events" -v t="$steady_ms" 'BEGIN { print (t > 0 ? e * 1000 / t : 0) }')"
}

run_kstreams() { # ROUND
  local app=$RUN-ks-r$1 name=kstreams-r$1
  timeout 60 "${JAVA[@]}" Bench topic "$BOOTSTRAP" "$app-out" "$PARTITIONS" || die "cannot create $app-out"
  # shellcheck disable=SC2086 # KSTREAMS_JAVA_OPTS is a list of options
  measure "$name" "${JAVA[@]}" ${KSTREAMS_JAVA_OPTS:-} -Dthreads="$KSTREAMS_THREADS" \
    Tutorial "$BOOTSTRAP" "$app" "$INPUT" "$app-out" "$WORK/$name-state"
  local steady_events steady_ms
  steady_events=$(field steady_events "$WORK/$name.out")
  steady_ms=$(field steady_ms "$WORK/$name.out")
  [ -n "$steady_ms" ] || die "Kafka Streams printed no done line (files $WORK/$name.*)"
  record kafka-streams "$1" "$(awk -v w="$(field wall_ms "$WORK/$name.out")" 'BEGIN { print w / 1000 }')" \
    "$(cpu_s "$name")" "$(rss_kb "$name")" "$(awk -v e="$steady_events" -v t="$steady_ms" 'BEGIN { print (t > 0 ? e * 1000 / t : 0) }')"
}

run_perf_test() { # ROUND
  local name=perf-test-r$1
  measure "$name" "$KAFKA_HOME/bin/kafka-consumer-perf-test.sh" --bootstrap-server "$BOOTSTRAP" \
    --topic "$INPUT" --messages "$TOTAL" --group "$RUN-perf-r$1" --timeout 30000 --hide-header \
    --consumer.config "$WORK/perf-consumer.properties"
  # start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  local line
  line=$(grep -E '^[0-9]{4}-' "$WORK/$name.out" | tail -n 1)
  [ "$(cut -d, -f5 <<< "$line" | tr -d ' ')" = "$TOTAL" ] \
    || die "consumer-perf-test read '$(cut -d, -f5 <<< "$line")' records, not $TOTAL ($WORK/$name.out)"
  record consumer-perf-test "$1" "$(tail -n 1 "$WORK/$name.time" | cut -d' ' -f1)" \
    "$(cpu_s "$name")" "$(rss_kb "$name")" "$(cut -d, -f10 <<< "$line" | tr -d ' ')"
}

: > "$WORK/results"
for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  run_eddy "$round"
  run_kstreams "$round"
  run_perf_test "$round"
done

echo
echo "$TOTAL records ($EVENTS tutorial events + $sentinels sentinels), $PARTITIONS partitions, exactly once," \
  "commit interval 100 ms; Kafka Streams $KSTREAMS_THREADS stream thread(s); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$WORK/results" "$TOTAL" << 'PY'
import sys
from statistics import median

rows = [line.split() for line in open(sys.argv[1])]
total = int(sys.argv[2])
engines = ["eddy", "kafka-streams", "consumer-perf-test"]
names = {"eddy": "eddy", "kafka-streams": "Kafka Streams 4.1 (exactly_once_v2, in-memory stores)",
         "consumer-perf-test": "`kafka-consumer-perf-test.sh`, read_committed (no processing, no transactions)"}
k = lambda x: f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}K"
stats = {}
for e in engines:
    rs = [r for r in rows if r[0] == e]
    rate = [total / float(r[2]) for r in rs]
    stats[e] = dict(rate=median(rate), cpu=median(total / float(r[3]) for r in rs),
                    rss=median(float(r[4]) / 1024 for r in rs), steady=median(float(r[5]) for r in rs),
                    rounds=", ".join(k(x) for x in rate))
print("| engine | events/s median | steady events/s median | events per CPU-second median | peak RSS median | events/s per round |")
print("|---|---:|---:|---:|---:|---|")
for e in engines:
    s = stats[e]
    print(f"| {names[e]} | {k(s['rate'])}/s | {k(s['steady'])}/s | {k(s['cpu'])} | {s['rss']:.0f} MB | {s['rounds']} |")
eddy, ks, perf = stats["eddy"], stats["kafka-streams"], stats["consumer-perf-test"]
x = lambda a, b: f"{a / b:.2f}" if b else "n/a"
print()
print("events/s: from process start to every record processed and committed; steady: between 10% and 90%")
print("of the input committed (the perf test: its own fetch.nMsg.sec); CPU and RSS: /usr/bin/time of the process.")
print()
print(f"eddy / Kafka Streams: {x(eddy['rate'], ks['rate'])}x events/s ({x(eddy['steady'], ks['steady'])}x steady), "
      f"{x(eddy['cpu'], ks['cpu'])}x events per CPU-second, {x(ks['rss'], eddy['rss'])}x less peak RSS")
print(f"eddy / consumer-perf-test: {x(eddy['rate'], perf['rate'])} of its events/s ({x(eddy['steady'], perf['steady'])} steady)")
PY

# Every round's output, read_committed, as sorted `action,window_start,count` lines without the
# sentinel's window; each must equal eddy's first round's, and count every event once.
log "comparing the per-window counts of every round"
topics=()
for round in $(seq "$ROUNDS"); do topics+=("$RUN-eddy-r$round-out" "$RUN-ks-r$round-out"); done
timeout 300 "${JAVA[@]}" Bench dump "$BOOTSTRAP" "${topics[@]}" > "$WORK/outputs.tsv" \
  || die "cannot read the output topics"
cut_s=$(jq -rn --arg t "$SENTINEL_TIME" '$t | sub("\\.[0-9]+"; "") | fromdateiso8601')
for t in "${topics[@]}"; do
  awk -F'\t' -v t="$t" '$1 == t { print $2 }' "$WORK/outputs.tsv" \
    | jq -r --argjson cut "$cut_s" '(.window_start | sub("\\.[0-9]+"; "") | fromdateiso8601) as $s
        | select($s < $cut) | "\(.action),\($s | todate),\(.count)"' \
    | sort > "$WORK/$t.csv"
done
reference=$RUN-eddy-r1-out
agree=yes
for t in "${topics[@]}"; do
  windows=$(wc -l < "$WORK/$t.csv")
  counted=$(awk -F, '{ n += $3 } END { print n + 0 }' "$WORK/$t.csv")
  if [ "$counted" != "$EVENTS" ]; then
    log "${t#"$RUN"-}: $windows windows count $counted events, not $EVENTS"
    agree=no
  fi
  if ! cmp -s "$WORK/$reference.csv" "$WORK/$t.csv"; then
    log "${t#"$RUN"-} differs from ${reference#"$RUN"-} (< ${reference#"$RUN"-}, > ${t#"$RUN"-}; first differences):"
    diff "$WORK/$reference.csv" "$WORK/$t.csv" | grep '^[<>]' | head -n 10 >&2 || true
    agree=no
  fi
done
echo
if [ "$agree" = yes ]; then
  echo "per-window counts: eddy and Kafka Streams agree in every round" \
    "($(wc -l < "$WORK/$reference.csv") windows, $EVENTS events)"
else
  echo "per-window counts: eddy and Kafka Streams DISAGREE (above)"
  KEEP=1
  exit 1
fi
