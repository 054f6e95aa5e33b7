//! Repartitioning: GROUP BY on keys that are not the topic's partition key. The output of an
//! 8-partition input with random keys equals a 1-partition run and a batch computation;
//! watermarks cross the repartition topic (a lagging upstream partition holds windows back
//! until it goes idle); and the crash test holds with a repartition stage in the plan.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use eddy::gen::rng::Rng;

const HOUR: i64 = 3_600_000_000;
const START: i64 = 1_469_491_200_000_000;

/// `n` purchases by `users` users over `hours`, in an arrival order whose disorder stays
/// under 10 minutes, unkeyed (so any user may land in any partition).
fn purchases(n: u64, users: u64, hours: i64, seed: u64) -> Vec<(i64, u64, i64)> {
    let mut rng = Rng::new(seed);
    let mut events: Vec<(i64, i64, u64, i64)> = (0..n)
        .map(|_| {
            let t = START + (rng.f64() * (hours * HOUR) as f64) as i64;
            let arrival = t + rng.below(600_000_000) as i64;
            (arrival, t, rng.below(users), 1 + rng.below(100) as i64)
        })
        .collect();
    events.sort();
    events.into_iter().map(|(_, t, u, amount)| (t, u, amount)).collect()
}

fn records(events: &[(i64, u64, i64)], partitions: i32) -> Vec<(Option<String>, String, Option<i32>)> {
    events
        .iter()
        .enumerate()
        .map(|(i, (t, u, amount))| {
            let mut ts = String::new();
            eddy::time::format_timestamp(*t, &mut ts);
            // Round-robin: a user's purchases are spread over every partition.
            (None, format!(r#"{{"time":"{ts}","user":"u{u}","amount":{amount}}}"#), Some(i as i32 % partitions))
        })
        .collect()
}

fn pipeline(app: &str, bootstrap: &str, topic: &str, out: &str, state: &std::path::Path, extra: &str) -> String {
    format!(
        r#"app: {app}
kafka:
  bootstrap_servers: "{bootstrap}"
  properties: {{ "session.timeout.ms": "6000" }}
state: {{ dir: "{state}" }}
commit_interval: 100ms
http: {{ listen: "127.0.0.1:0" }}
sources:
  purchases:
    topic: {topic}
    schema: {{ time: timestamp, user: string, amount: long }}
    event_time: time
    watermark_delay: 1h
{extra}
sinks:
  out: {{ topic: {out} }}
queries:
  - name: per_user
    sink: out
    sql: |
      SELECT user, window.start AS window_start, count(*) AS n, sum(amount) AS total
      FROM purchases
      GROUP BY user, window(time, '1 hour')
"#,
        state = state.display()
    )
}

type Totals = BTreeMap<(String, String), (u64, i64)>;

fn batch(events: &[(i64, u64, i64)]) -> Totals {
    let mut m = Totals::new();
    for (t, u, amount) in events {
        let mut ws = String::new();
        eddy::time::format_timestamp(t.div_euclid(HOUR) * HOUR, &mut ws);
        let e = m.entry((format!("u{u}"), ws)).or_default();
        e.0 += 1;
        e.1 += amount;
    }
    m
}

fn output(records: &[eddy::tail::TailRecord]) -> Totals {
    let mut m = Totals::new();
    for r in records {
        let v: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
        let field = |name: &str| v.get(name).cloned().unwrap_or_else(|| panic!("no {name} in {v}"));
        let key = (field("user").as_str().unwrap().to_string(), field("window_start").as_str().unwrap().to_string());
        let prev = m.insert(key.clone(), (field("n").as_u64().unwrap(), field("total").as_i64().unwrap()));
        assert!(prev.is_none(), "{key:?} emitted twice");
    }
    m
}

/// Runs the query over `events` in a topic of `partitions` partitions, to the end.
fn run_over(broker: &Broker, events: &[(i64, u64, i64)], partitions: i32) -> (Totals, eddy::engine::RunSummary) {
    let topic = unique("purchases");
    broker.create_topic(&topic, partitions);
    produce(&broker.bootstrap, &topic, records(events, partitions));
    let out = unique("per-user");
    let app = unique("rp-app");
    let text = pipeline(&app, &broker.bootstrap, &topic, &out, &temp_dir("rp"), "");
    let summary = Running::start(broker.plan(&text, partitions), "a", true, true).join();
    // What stage 2 committed is purged from the repartition topic (DeleteRecords).
    let internal = format!("{app}-per_user-repartition");
    let (low, high): (Vec<i64>, Vec<i64>) = (0..partitions)
        .map(|p| {
            use rdkafka::consumer::{BaseConsumer, Consumer};
            let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &broker.bootstrap).create().unwrap();
            c.fetch_watermarks(&internal, p, Duration::from_secs(30)).unwrap()
        })
        .unzip();
    assert!(high.iter().sum::<i64>() as u64 >= events.len() as u64, "every row crossed {internal}: {high:?}");
    assert!(low.iter().sum::<i64>() > 0, "consumed records of {internal} were purged: low {low:?}, high {high:?}");
    (output(&read(&broker.bootstrap, &out)), summary)
}

#[test]
fn eight_partitions_with_random_keys_equal_one_partition_and_the_batch_answer() {
    let n: u64 = std::env::var("EDDY_REPARTITION_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let Some(broker) = Broker::real("eight_partitions_with_random_keys_equal_one_partition_and_the_batch_answer") else { return };
    let events = purchases(n, 2_000, 24, 41);
    let expected = batch(&events);
    let (eight, summary) = run_over(&broker, &events, 8);
    assert!(summary.records_in >= 2 * n, "every record went through the repartition topic: {summary:?}");
    assert_eq!(eight.len(), expected.len());
    assert_eq!(eight, expected, "8 partitions equal the batch answer");
    let (one, _) = run_over(&broker, &events, 1);
    assert_eq!(one, eight, "1 partition equals 8");
}

/// `(event time, user)` records, all in `partition`.
fn in_partition(events: &[(i64, u64, i64)], partition: i32) -> Vec<(Option<String>, String, Option<i32>)> {
    let mut recs = records(events, 1);
    recs.iter_mut().for_each(|r| r.2 = Some(partition));
    recs
}

fn minutes(user: u64, range: std::ops::Range<i64>) -> Vec<(i64, u64, i64)> {
    range.map(|i| (START + i * 60_000_000, user, 1)).collect()
}

#[test]
fn a_lagging_upstream_partition_holds_windows_back_until_it_is_idle() {
    // The mock cluster never hands stage 2 the transactional records of the repartition topic.
    let Some(broker) = Broker::real("a_lagging_upstream_partition_holds_windows_back_until_it_is_idle") else { return };
    let topic = unique("purchases");
    broker.create_topic(&topic, 2);
    // Partition 0 holds user u0 over 10 hours; partition 1 holds user u1 and stops at 2 hours,
    // so its watermark stays at START + 1h while partition 0's reaches START + 9h.
    let fast = minutes(0, 0..601);
    let slow = minutes(1, 0..121);
    produce(&broker.bootstrap, &topic, in_partition(&fast, 0).into_iter().chain(in_partition(&slow, 1)));
    let out = unique("per-user");
    let text = pipeline(&unique("wm-app"), &broker.bootstrap, &topic, &out, &temp_dir("wm"), "    idle_timeout: 15s");
    let run = Running::start(broker.plan(&text, 2), "a", false, false);
    let started = Instant::now();
    let closed_by =
        |limit: i64, all: &Totals| all.keys().filter(|(_, ws)| eddy::time::parse_timestamp(ws).unwrap() + HOUR <= limit).count();
    let early_windows = closed_by(START + HOUR, &batch(&fast)) + closed_by(START + HOUR, &batch(&slow));
    assert_eq!(early_windows, 2);
    wait_for("the windows the slow partition allows", Duration::from_secs(60), || count(&broker.bootstrap, &out) >= early_windows);
    let early = output(&read(&broker.bootstrap, &out));
    let checked = started.elapsed();
    assert!(checked < Duration::from_secs(15), "checked before the slow partition can be idle ({checked:?})");
    let latest_end = early.keys().map(|(_, ws)| eddy::time::parse_timestamp(ws).unwrap() + HOUR).max().unwrap();
    assert_eq!(latest_end, START + HOUR, "no window closed past the slow partition's watermark");
    // Partition 0 keeps flowing; 15 s after its last record partition 1 is idle, the fast
    // watermark rules, and every window of the slow user closes, along with the fast ones.
    let mut next = 601;
    let slow_windows = batch(&slow);
    wait_for("the idle partition to stop holding the watermark back", Duration::from_secs(90), || {
        produce(&broker.bootstrap, &topic, in_partition(&minutes(0, next..next + 1), 0));
        next += 1;
        let now = output(&read(&broker.bootstrap, &out));
        slow_windows.keys().all(|k| now.contains_key(k))
    });
    run.stop();
    let fast_all = batch(&minutes(0, 0..next));
    let all = output(&read(&broker.bootstrap, &out));
    for (k, v) in &all {
        let expected = if k.0 == "u1" { slow_windows.get(k) } else { fast_all.get(k) };
        assert_eq!(Some(v), expected, "window {k:?}");
    }
    assert!(closed_by(START + 9 * HOUR, &all) >= closed_by(START + 9 * HOUR, &fast_all) + slow_windows.len());
}

#[test]
fn killed_with_a_repartition_stage_the_output_equals_an_uninterrupted_run() {
    let Some(broker) = Broker::real("killed_with_a_repartition_stage_the_output_equals_an_uninterrupted_run") else { return };
    let n: u64 = std::env::var("EDDY_CRASH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let events = purchases(n, 2_000, 24, 43);
    let topic = unique("crash-purchases");
    broker.create_topic(&topic, 4);
    produce(&broker.bootstrap, &topic, records(&events, 4));
    let out = unique("crash-per-user");
    let state = temp_dir("rp-crash");
    let app = unique("rp-crash-app");
    let file = write_pipeline(
        &pipeline(&app, &broker.bootstrap, &topic, &out, &state, "").replace("  properties:", "  static_membership: true\n  properties:"),
    );
    let file = file.to_str().unwrap();
    let log = temp_dir("rp-crash-log").join("eddy.log");
    let mut rng = Rng::new(9);
    // Stage 2 does the work: watch its progress through the repartition topic, whose
    // offsets count the n rows (plus markers).
    let internal = format!("{app}-per_user-repartition");
    let killer = Killer { bootstrap: &broker.bootstrap, group: &app, topic: &internal, partitions: 4, total: n };
    let progress = killer.run(file, "crash", &log, 5, &mut rng);
    assert!(progress.iter().filter(|&&d| d > 0 && (d as u64) < n).count() >= 3, "kills hit mid-stream: {progress:?}");
    run_to_end(file, "crash", &log);
    assert_eq!(output(&read(&broker.bootstrap, &out)), batch(&events), "no duplicate, no missing row, no different value");
}
