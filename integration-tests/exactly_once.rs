//! Exactly-once against a real Kafka broker (the mock cluster cannot show any of this: it
//! neither filters aborted records nor stores transactional offsets nor fences producers).
//! Each test is skipped, saying why, when KAFKA_BOOTSTRAP_SERVERS is not set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use eddy::engine::{EngineError, RunOptions};
use eddy::gen::rng::Rng;
use eddy::kafka::producer::{Outgoing, Producer};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const HOUR: i64 = 3_600_000_000;

fn static_member(text: &str) -> String {
    let out = text.replace("  properties: {", "  static_membership: true\n  properties: {");
    assert!(out.contains("static_membership: true"));
    out
}

fn send(p: &Producer, topic: &str, n: usize, tag: &str) {
    for i in 0..n {
        let v = format!("{tag}-{i}");
        p.send(&Outgoing {
            topic,
            partition: Some(0),
            key: None,
            payload: Some(v.as_bytes()),
            headers: &[],
            timestamp: None,
            slot: 0,
            kind: eddy::runtime::OutKind::Sink,
        })
        .unwrap();
    }
}

/// In the style of rust-rdkafka's tests/test_transactions.rs, through eddy's own producer.
#[test]
fn commit_and_abort_are_seen_as_kafka_promises() {
    let Some(broker) = Broker::real("commit_and_abort_are_seen_as_kafka_promises") else { return };
    let (input, output, group) = (unique("txn-in"), unique("txn-out"), unique("txn-group"));
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &broker.bootstrap).set("transactional.id", unique("txn-id")).set("enable.idempotence", "true");
    let producer = Producer::new(&cfg, true, Duration::from_secs(30)).unwrap();
    producer.init_transactions().unwrap();
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &broker.bootstrap).set("group.id", &group).create().unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&input, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let offsets = |o: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&input, 0, Offset::Offset(o)).unwrap();
        tpl
    };

    producer.begin().unwrap();
    send(&producer, &output, 5, "committed");
    producer.send_offsets(&offsets(5), &consumer.group_metadata().unwrap()).unwrap();
    producer.commit().unwrap();
    assert_eq!(read(&broker.bootstrap, &output).len(), 5, "read_committed sees the committed records");
    assert_eq!(read_uncommitted(&broker.bootstrap, &output).len(), 5);
    assert_eq!(group_offsets(&broker.bootstrap, &group, &input, 1), vec![5], "the offsets committed with the transaction");

    producer.begin().unwrap();
    send(&producer, &output, 5, "aborted");
    producer.send_offsets(&offsets(10), &consumer.group_metadata().unwrap()).unwrap();
    producer.flush().unwrap(); // the records reach the broker before the abort marks them aborted
    producer.abort().unwrap();
    let committed = read(&broker.bootstrap, &output);
    assert_eq!(committed.len(), 5, "read_committed does not see the aborted records");
    assert!(committed.iter().all(|r| r.value_str().starts_with("committed")));
    assert_eq!(read_uncommitted(&broker.bootstrap, &output).len(), 10, "read_uncommitted does");
    assert_eq!(group_offsets(&broker.bootstrap, &group, &input, 1), vec![5], "the aborted offsets were not committed");
}

#[test]
fn aborted_cycles_leave_no_trace_in_committed_output() {
    let Some(broker) = Broker::real("aborted_cycles_leave_no_trace_in_committed_output") else { return };
    let topic = unique("eos-events");
    broker.create_topic(&topic, 4);
    let events = tutorial(40_000, 21);
    produce(&broker.bootstrap, &topic, tutorial_records(&events));
    let (out, app) = (unique("eos-counts"), unique("eos-app"));
    let text = tutorial_pipeline(&app, &broker.bootstrap, &topic, &out, &temp_dir("eos"), "exactly_once", "")
        .replace("commit_interval: 50ms", "commit_interval: 50ms\ncommit_max_records: 1500");
    let opts = RunOptions { instance_id: "a".into(), stop_at_end: true, flush_at_end: true, inject_abort_every: Some(3) };
    let summary = Running::start_with(broker.plan(&text, 4), opts).join();
    assert!(summary.aborts >= 3, "injected aborts happened: {summary:?}");
    let committed = read(&broker.bootstrap, &out);
    assert_eq!(output_counts(&committed), hourly_counts(&events, i64::MAX), "committed output is exact");
    assert!(
        read_uncommitted(&broker.bootstrap, &out).len() > committed.len(),
        "aborted transactions did write rows, which read_committed hides"
    );
    // An empty partition has nothing to commit (-1); every other one is committed to its end.
    let committed: Vec<i64> = group_offsets(&broker.bootstrap, &app, &topic, 4)
        .iter()
        .zip(end_offsets(&broker.bootstrap, &topic, 4))
        .map(|(c, e)| if e == 0 { 0 } else { *c })
        .collect();
    assert_eq!(committed, end_offsets(&broker.bootstrap, &topic, 4), "the group's offsets reached the end");
}

#[test]
fn killed_at_random_moments_the_output_equals_an_uninterrupted_run() {
    let Some(broker) = Broker::real("killed_at_random_moments_the_output_equals_an_uninterrupted_run") else { return };
    let n: u64 = std::env::var("EDDY_CRASH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let topic = unique("crash-events");
    broker.create_topic(&topic, 4);
    let events = eddy::gen::tutorial::generate(&eddy::gen::tutorial::TutorialSpec {
        events: n,
        seed: 99,
        late_fraction: 0.0005,
        ..Default::default()
    });
    produce(&broker.bootstrap, &topic, tutorial_records(&events));

    // The uninterrupted run.
    let clean_out = unique("crash-clean");
    let clean =
        tutorial_pipeline(&unique("crash-clean-app"), &broker.bootstrap, &topic, &clean_out, &temp_dir("clean"), "exactly_once", "");
    Running::start(broker.plan(&clean, 4), "clean", true, true).join();

    // The run that is killed with SIGKILL at random moments and restarted each time.
    let out = unique("crash-out");
    let state = temp_dir("crash-state");
    let crash_app = unique("crash-app");
    let text = tutorial_pipeline(&crash_app, &broker.bootstrap, &topic, &out, &state, "exactly_once", "")
        .replace("  properties: {  }", "  static_membership: true\n  properties: {  }");
    assert!(text.contains("static_membership: true"));
    let file = write_pipeline(&text);
    let file = file.to_str().unwrap();
    let log = temp_dir("crash-log").join("eddy.log");
    let mut rng = Rng::new(7);
    let killer = Killer { bootstrap: &broker.bootstrap, group: &crash_app, topic: &topic, partitions: 4, total: n };
    let progress = killer.run(file, "crash", &log, 6, &mut rng);
    let mid_stream = progress.iter().filter(|&&d| d > 0 && (d as u64) < n).count();
    assert!(mid_stream >= 3, "at least 3 kills must hit mid-stream, progress was {progress:?}");
    run_to_end(file, "crash", &log);

    let crashed = canonical(&read(&broker.bootstrap, &out));
    let uninterrupted = canonical(&read(&broker.bootstrap, &clean_out));
    assert!(!uninterrupted.is_empty());
    assert_eq!(crashed.len(), uninterrupted.len(), "no duplicate and no missing row");
    assert_eq!(crashed, uninterrupted, "every row equal");
}

/// Per-device events on a 6-partition topic keyed by device, so every partition has state.
fn device_events(devices: u64, per_device: u64, seed: u64) -> Vec<(i64, String)> {
    let mut rng = Rng::new(seed);
    let start = 1_469_491_200_000_000i64;
    let mut events: Vec<(i64, i64, String)> = Vec::new();
    for d in 0..devices {
        for _ in 0..per_device {
            let t = start + (rng.f64() * 12.0 * HOUR as f64) as i64;
            let arrival = t + rng.below(600_000_000) as i64;
            events.push((arrival, t, format!("dev-{d}")));
        }
    }
    events.sort();
    events.into_iter().map(|(_, t, id)| (t, id)).collect()
}

fn device_record(t: i64, id: &str) -> (Option<String>, String, Option<i32>) {
    let mut ts = String::new();
    eddy::time::format_timestamp(t, &mut ts);
    (Some(id.to_string()), format!(r#"{{"time":"{ts}","action":"Open","id":"{id}"}}"#), None)
}

fn device_pipeline(app: &str, bootstrap: &str, topic: &str, out: &str, state: &std::path::Path) -> String {
    format!(
        r#"app: {app}
kafka:
  bootstrap_servers: "{bootstrap}"
  properties: {{ "session.timeout.ms": "6000" }}
state: {{ dir: "{state}" }}
commit_interval: 50ms
http: {{ listen: "127.0.0.1:0" }}
sources:
  events:
    topic: {topic}
    schema: {{ time: timestamp, action: string, id: string }}
    event_time: time
    watermark_delay: 1h
    partition_key: [id]
sinks:
  out: {{ topic: {out} }}
queries:
  - name: per_device
    sink: out
    sql: SELECT id, window.start AS window_start, count(*) AS n FROM events GROUP BY id, window(time, '1 hour')
"#,
        state = state.display()
    )
}

fn device_expected(events: &[(i64, String)]) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for (t, id) in events {
        let mut s = String::new();
        eddy::time::format_timestamp(t.div_euclid(HOUR) * HOUR, &mut s);
        *m.entry((id.clone(), s)).or_insert(0) += 1;
    }
    m
}

fn device_output(records: &[eddy::tail::TailRecord]) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for r in records {
        let v: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
        let key = (v["id"].as_str().unwrap().to_string(), v["window_start"].as_str().unwrap().to_string());
        assert!(m.insert(key.clone(), v["n"].as_u64().unwrap()).is_none(), "{key:?} emitted twice");
    }
    m
}

#[test]
fn instances_join_and_leave_and_state_moves_through_the_changelog() {
    let Some(broker) = Broker::real("instances_join_and_leave_and_state_moves_through_the_changelog") else { return };
    let topic = unique("rebal-events");
    broker.create_topic(&topic, 6);
    let events = device_events(60, 400, 5);
    let mut records: Vec<_> = events.iter().map(|(t, id)| device_record(*t, id)).collect();
    // One far-future event per device closes every real window (its own window stays open).
    for d in 0..60 {
        records.push(device_record(1_469_491_200_000_000 + 48 * HOUR, &format!("dev-{d}")));
    }
    let third = records.len() / 3;
    let (out, app) = (unique("rebal-out"), unique("rebal-app"));
    let expected = device_expected(&events);

    produce(&broker.bootstrap, &topic, records[..third].to_vec());
    let a = Running::start(broker.plan(&device_pipeline(&app, &broker.bootstrap, &topic, &out, &temp_dir("a")), 6), "a", false, false);
    wait_for("a to consume", Duration::from_secs(60), || a.metric_sum("eddy_records_consumed_total") > 1000.0);
    let b = Running::start(broker.plan(&device_pipeline(&app, &broker.bootstrap, &topic, &out, &temp_dir("b")), 6), "b", false, false);
    wait_for("b to get partitions", Duration::from_secs(60), || b.metric_sum("eddy_assigned_partitions") >= 1.0);
    produce(&broker.bootstrap, &topic, records[third..2 * third].to_vec());
    let c = Running::start(broker.plan(&device_pipeline(&app, &broker.bootstrap, &topic, &out, &temp_dir("c")), 6), "c", false, false);
    wait_for("c to get partitions", Duration::from_secs(60), || c.metric_sum("eddy_assigned_partitions") >= 1.0);
    produce(&broker.bootstrap, &topic, records[2 * third..].to_vec());
    let sa = a.stop();
    let sb = b.stop();
    wait_for("c to own every partition", Duration::from_secs(60), || c.metric_sum("eddy_assigned_partitions") >= 6.0);
    wait_for("every window in the output", Duration::from_secs(120), || count(&broker.bootstrap, &out) >= expected.len());
    let sc = c.stop();
    let restored = sa.restored_from_changelog + sb.restored_from_changelog + sc.restored_from_changelog;
    assert!(restored > 0, "partitions moved with their state through the changelog");
    assert!(sb.restored_from_changelog + sc.restored_from_changelog > 0);
    assert_eq!(device_output(&read(&broker.bootstrap, &out)), expected, "exact: nothing lost, nothing twice");

    // And the same as one uninterrupted instance.
    let (clean_out, clean_app) = (unique("rebal-clean"), unique("rebal-clean-app"));
    let clean = Running::start(
        broker.plan(&device_pipeline(&clean_app, &broker.bootstrap, &topic, &clean_out, &temp_dir("clean")), 6),
        "z",
        false,
        false,
    );
    wait_for("the uninterrupted run", Duration::from_secs(120), || count(&broker.bootstrap, &clean_out) >= expected.len());
    clean.stop();
    assert_eq!(canonical(&read(&broker.bootstrap, &clean_out)), canonical(&read(&broker.bootstrap, &out)));
}

#[test]
fn a_second_instance_with_the_same_id_fences_the_first() {
    let Some(broker) = Broker::real("a_second_instance_with_the_same_id_fences_the_first") else { return };
    let topic = unique("zombie-events");
    broker.create_topic(&topic, 2);
    let events = tutorial(200_000, 17);
    let mut records = tutorial_records(&events);
    for action in ["Open", "Close"] {
        records.push((Some(action.into()), format!(r#"{{"time":"2016-08-30T00:00:00Z","action":"{action}","id":"end"}}"#), None));
    }
    // The second half arrives after the first instance is fenced, so the second one has work.
    let rest = records.split_off(records.len() / 2);
    produce(&broker.bootstrap, &topic, records);
    let (out, app) = (unique("zombie-out"), unique("zombie-app"));
    // Static membership: the newcomer's join fences the first consumer within a heartbeat, so
    // even an idle zombie learns it was replaced (its producer is fenced by the newcomer too).
    let text = static_member(&tutorial_pipeline(
        &app,
        &broker.bootstrap,
        &topic,
        &out,
        &temp_dir("zombie-a"),
        "exactly_once",
        "\"session.timeout.ms\": \"6000\"",
    ));
    let file = write_pipeline(&text);
    let log = temp_dir("zombie-log").join("eddy.log");
    let mut first = spawn_eddy(&["run", "-c", file.to_str().unwrap(), "--instance-id", "same", "--log", "info"], &log);
    let started = Instant::now();
    wait_for("the first instance to start committing", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("assigned") && started.elapsed() > Duration::from_millis(1500)
    });
    let text2 = static_member(&tutorial_pipeline(
        &app,
        &broker.bootstrap,
        &topic,
        &out,
        &temp_dir("zombie-b"),
        "exactly_once",
        "\"session.timeout.ms\": \"6000\"",
    ));
    let second = Running::start(broker.plan(&text2, 2), "same", false, false);
    let status = loop {
        if let Some(s) = first.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the fenced instance kept running; see {}", log.display());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(1), "the fenced instance exits non-zero");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("another instance is running"), "it says why: {log_text}");
    produce(&broker.bootstrap, &topic, rest);
    let expected = hourly_counts(&events, i64::MAX);
    wait_for("the second instance to finish the work", Duration::from_secs(120), || count(&broker.bootstrap, &out) >= expected.len());
    let s = second.stop();
    assert!(s.records_in >= 100_000, "the second instance read the second half: {s:?}");
    assert_eq!(output_counts(&read(&broker.bootstrap, &out)), expected, "the output is still exact");
}

#[test]
fn a_second_instance_with_the_same_id_ends_the_first_naming_another_instance() {
    let Some(broker) = Broker::real("a_second_instance_with_the_same_id_ends_the_first") else { return };
    // The in-process view of the same rule: the engine's error says it was fenced.
    let topic = unique("fence-events");
    broker.create_topic(&topic, 1);
    produce(&broker.bootstrap, &topic, tutorial_records(&tutorial(100_000, 3)));
    let (out, app) = (unique("fence-out"), unique("fence-app"));
    let text = |d: &str| {
        static_member(&tutorial_pipeline(
            &app,
            &broker.bootstrap,
            &topic,
            &out,
            &temp_dir(d),
            "exactly_once",
            "\"session.timeout.ms\": \"6000\"",
        ))
    };
    let first = Running::start(broker.plan(&text("f1"), 1), "dup", false, false);
    wait_for("the first engine to consume", Duration::from_secs(60), || {
        first.metric_sum("eddy_records_consumed_total") > 0.0 || first.metric_sum("eddy_transactions_total") > 0.0
    });
    let second = Running::start(broker.plan(&text("f2"), 1), "dup", false, false);
    wait_for("the first engine to stop", Duration::from_secs(120), || first.handle.is_finished());
    let r = first.result();
    second.stop();
    match r {
        Err(e @ EngineError::DuplicateInstance { .. }) => {
            let text = e.to_string();
            assert!(text.contains("another instance") && text.contains(&format!("{app}-dup")), "{text}");
        }
        other => panic!("expected a duplicate-instance error, got {other:?}"),
    }
}

#[test]
fn sigterm_commits_and_exits_0_then_a_restart_finishes_exactly() {
    let Some(broker) = Broker::real("sigterm_commits_and_exits_0_then_a_restart_finishes_exactly") else { return };
    let topic = unique("term-events");
    broker.create_topic(&topic, 2);
    let events = tutorial(300_000, 23);
    produce(&broker.bootstrap, &topic, tutorial_records(&events));
    let (out, app) = (unique("term-out"), unique("term-app"));
    let file = write_pipeline(&tutorial_pipeline(&app, &broker.bootstrap, &topic, &out, &temp_dir("term"), "exactly_once", ""));
    let file = file.to_str().unwrap();
    let log = temp_dir("term-log").join("eddy.log");
    let mut child = spawn_eddy(&["run", "-c", file, "--instance-id", "t", "--log", "info"], &log);
    wait_for("eddy to start processing", Duration::from_secs(60), || {
        group_offsets(&broker.bootstrap, &app, &topic, 2).iter().any(|&o| o > 0)
    });
    let term = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no exit within the grace period");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0; see {}", log.display());
    assert!(std::fs::read_to_string(&log).unwrap().contains("shutting down"));
    let last_log = temp_dir("term-log-last").join("eddy.log");
    let mut last = spawn_eddy(&["run", "-c", file, "--instance-id", "t", "--stop-at-end", "--flush-at-end"], &last_log);
    assert!(last.wait().unwrap().success(), "see {}", last_log.display());
    assert_eq!(output_counts(&read(&broker.bootstrap, &out)), hourly_counts(&events, i64::MAX));
    // A clean bounded run warns about nothing: reaching a partition's end is normal.
    let text = std::fs::read_to_string(&last_log).unwrap();
    assert!(!text.contains("WARN") && !text.contains("ERROR"), "a clean bounded run logged a warning: {text}");
}
