//! Golden tests on librdkafka's in-process mock broker: the tutorial query over a
//! 4-partition topic keyed by action gives exactly the batch answer, straight through and
//! across restarts (state from sled, or rebuilt from the changelog), and with two instances
//! sharing the work through a rebalance. Bad records go to the dead-letter topic.
//!
//! The mock broker ignores offsets sent with a transaction, so runs that must resume from a
//! committed offset use `at_least_once` here; exactly-once is proven on a real broker in
//! exactly_once.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

const HOUR: i64 = 3_600_000_000;
/// The mock broker keeps a departed member until its session times out; keep that short.
const SHORT_SESSION: &str = "\"session.timeout.ms\": \"6000\"";

#[test]
fn hourly_counts_equal_the_batch_answer_and_the_golden_file() {
    let broker = Broker::mock();
    let topic = unique("events");
    broker.create_topic(&topic, 4);
    let events = tutorial(20_000, 7);
    produce(&broker.bootstrap, &topic, tutorial_records(&events));
    let out = unique("counts");
    let state = temp_dir("golden");
    let p = broker.plan(&tutorial_pipeline(&unique("app"), &broker.bootstrap, &topic, &out, &state, "exactly_once", ""), 4);
    let summary = Running::start(p, "a", true, true).join();
    assert_eq!(summary.records_in, 20_000);
    let records = read(&broker.bootstrap, &out);
    assert_eq!(output_counts(&records), hourly_counts(&events, i64::MAX));

    // Every row, byte for byte in canonical form, against the checked-in golden output.
    let golden_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("integration-tests/golden/tutorial_hourly_20k_seed7.jsonl");
    let rows = canonical(&records);
    if std::env::var("EDDY_BLESS").is_ok() {
        std::fs::write(&golden_path, rows.join("\n") + "\n").unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).expect("golden file (regenerate with EDDY_BLESS=1)");
    assert_eq!(rows, golden.lines().map(str::to_string).collect::<Vec<_>>());
    // Kafka key = the group columns.
    let r = &records[0];
    let key: serde_json::Value = serde_json::from_slice(r.key.as_deref().unwrap()).unwrap();
    let value: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
    assert_eq!(key["action"], value["action"]);
    assert_eq!(key["window_start"], value["window_start"]);
}

#[test]
fn append_mode_emits_only_windows_the_watermark_closed() {
    let broker = Broker::mock();
    let topic = unique("events");
    broker.create_topic(&topic, 4);
    let events = tutorial(6_000, 11);
    produce(&broker.bootstrap, &topic, tutorial_records(&events));
    let out = unique("counts");
    let p = broker.plan(&tutorial_pipeline(&unique("app"), &broker.bootstrap, &topic, &out, &temp_dir("append"), "exactly_once", ""), 4);
    Running::start(p, "a", true, false).join();
    // Each action lives in one partition; its watermark is its max event time − 2h.
    let mut expected = std::collections::BTreeMap::new();
    for action in ["Open", "Close"] {
        let mine: Vec<_> = events.iter().filter(|e| e.action() == action).cloned().collect();
        let wm = mine.iter().map(|e| e.time).max().unwrap() - 2 * HOUR;
        expected.extend(hourly_counts(&mine, wm));
    }
    let got = output_counts(&read(&broker.bootstrap, &out));
    assert_eq!(got, expected);
    assert!(got.len() < hourly_counts(&events, i64::MAX).len(), "the last windows are still open");
}

#[test]
fn restart_resumes_from_state_and_matches_an_uninterrupted_run() {
    for rebuild_from_changelog in [false, true] {
        let broker = Broker::mock();
        let topic = unique("events");
        broker.create_topic(&topic, 4);
        let events = tutorial(10_000, 3);
        let records = tutorial_records(&events);
        let (first, second) = records.split_at(records.len() / 2);
        produce(&broker.bootstrap, &topic, first.to_vec());
        let out = unique("counts");
        let app = unique("app");
        let state = temp_dir("restart");
        let text = tutorial_pipeline(&app, &broker.bootstrap, &topic, &out, &state, "at_least_once", SHORT_SESSION);
        let run1 = Running::start(broker.plan(&text, 4), "a", true, false).join();
        assert_eq!(run1.records_in, 5_000);
        produce(&broker.bootstrap, &topic, second.to_vec());
        // The second run either reopens the same state directory, or starts from an empty one
        // and must rebuild its windows from the changelog topic.
        let text2 = if rebuild_from_changelog {
            tutorial_pipeline(&app, &broker.bootstrap, &topic, &out, &temp_dir("fresh"), "at_least_once", SHORT_SESSION)
        } else {
            text
        };
        let run2 = Running::start(broker.plan(&text2, 4), "a", true, true).join();
        assert_eq!(run2.records_in, 5_000, "resumed from the committed offsets");
        if rebuild_from_changelog {
            assert!(run2.restored_from_changelog > 0, "state came back through the changelog");
            assert_eq!(run2.restored_from_sled, 0);
        } else {
            assert!(run2.restored_from_sled > 0, "state came back from sled");
        }
        assert_eq!(
            output_counts(&read(&broker.bootstrap, &out)),
            hourly_counts(&events, i64::MAX),
            "rebuild_from_changelog={rebuild_from_changelog}"
        );
    }
}

#[test]
fn a_second_instance_takes_over_partitions_with_their_state() {
    let broker = Broker::mock();
    let topic = unique("events");
    broker.create_topic(&topic, 4);
    let events = tutorial(8_000, 5);
    // Opens in partition 0, Closes in partition 3: the range assignor will give partition 3 to
    // the second instance, which must bring the Close windows' state with it.
    let route = |e: &eddy::gen::tutorial::Event| if e.open { 0 } else { 3 };
    let mut records = tutorial_records(&events);
    for (r, e) in records.iter_mut().zip(&events) {
        r.2 = Some(route(e));
    }
    let (first, second) = records.split_at(records.len() / 2);
    produce(&broker.bootstrap, &topic, first.to_vec());
    let out = unique("counts");
    let app = unique("app");
    let text = |state: &std::path::Path| {
        tutorial_pipeline(&app, &broker.bootstrap, &topic, &out, state, "at_least_once", "\"session.timeout.ms\": \"6000\"")
    };
    let a = Running::start(broker.plan(&text(&temp_dir("a")), 4), "a", false, false);
    wait_for("instance a to consume the first half", Duration::from_secs(60), || a.metric_sum("eddy_records_consumed_total") >= 4_000.0);
    let b = Running::start(broker.plan(&text(&temp_dir("b")), 4), "b", false, false);
    wait_for("the rebalance to give instance b partitions", Duration::from_secs(60), || b.metric_sum("eddy_assigned_partitions") >= 1.0);
    produce(&broker.bootstrap, &topic, second.to_vec());
    let mut expected = std::collections::BTreeMap::new();
    for action in ["Open", "Close"] {
        let mine: Vec<_> = events.iter().filter(|e| e.action() == action).cloned().collect();
        let wm = mine.iter().map(|e| e.time).max().unwrap() - 2 * HOUR;
        expected.extend(hourly_counts(&mine, wm));
    }
    wait_for("every closed window in the output", Duration::from_secs(60), || read(&broker.bootstrap, &out).len() >= expected.len());
    let sb = b.stop();
    let sa = a.stop();
    assert!(sb.restored_from_changelog > 0, "instance b restored the moved partition's state from the changelog");
    assert_eq!(sa.records_in + sb.records_in, 8_000, "no record processed twice");
    assert_eq!(output_counts(&read(&broker.bootstrap, &out)), expected);
}

#[test]
fn malformed_records_go_to_the_dead_letter_topic_and_processing_continues() {
    let broker = Broker::mock();
    let topic = unique("events");
    broker.create_topic(&topic, 2);
    let events = tutorial(2_000, 9);
    let mut records = tutorial_records(&events);
    let bad = [
        ("{not json", "malformed"),
        (r#"{"time":"2016-07-26T01:00:00Z","id":"d"}"#, "missing_field"),
        (r#"{"time":"yesterday","action":"Open","id":"d"}"#, "bad_timestamp"),
        (r#"{"time":"2016-07-26T01:00:00Z","action":5,"id":"d"}"#, "wrong_type"),
    ];
    for (i, (payload, _)) in bad.iter().enumerate() {
        records.insert(100 + i * 300, (Some("Open".into()), payload.to_string(), None));
    }
    produce(&broker.bootstrap, &topic, records);
    let out = unique("counts");
    let p = broker.plan(&tutorial_pipeline(&unique("app"), &broker.bootstrap, &topic, &out, &temp_dir("dlq"), "exactly_once", ""), 2);
    let run = Running::start(p, "a", true, true);
    let metrics = run.metrics.clone();
    run.join();
    assert_eq!(output_counts(&read(&broker.bootstrap, &out)), hourly_counts(&events, i64::MAX), "good records all counted");
    let dlq = read(&broker.bootstrap, &format!("{topic}-dlq"));
    assert_eq!(dlq.len(), bad.len());
    for (payload, kind) in bad {
        let r = dlq.iter().find(|r| r.value_str() == payload).unwrap_or_else(|| panic!("{payload} not in the dead-letter topic"));
        assert_eq!(r.header("eddy.error.kind"), Some(kind));
        assert_eq!(r.header("eddy.source.topic"), Some(topic.as_str()));
        assert_eq!(r.header("eddy.query"), Some("hourly_counts"));
        assert!(r.header("eddy.error.message").is_some_and(|m| !m.is_empty()));
        assert!(r.header("eddy.source.offset").is_some_and(|o| o.parse::<i64>().is_ok()));
    }
    assert_eq!(metric_sum(&metrics.render(), "eddy_dead_letter_records_total"), 4.0);
}

#[test]
fn late_records_are_counted_and_written_to_the_late_topic() {
    let broker = Broker::mock();
    let topic = unique("events");
    broker.create_topic(&topic, 2);
    let events = tutorial(3_000, 13);
    let mut records = tutorial_records(&events);
    // A record for the first hour arrives after everything else: its window closed long ago.
    let late = r#"{"time":"2016-07-26T00:30:00Z","action":"Open","id":"late-1"}"#;
    records.push((Some("Open".into()), late.to_string(), None));
    produce(&broker.bootstrap, &topic, records);
    let out = unique("counts");
    let text = tutorial_pipeline(&unique("app"), &broker.bootstrap, &topic, &out, &temp_dir("late"), "exactly_once", "")
        .replace("    dead_letter_topic:", &format!("    late_topic: {topic}-late\n    dead_letter_topic:"));
    let run = Running::start(broker.plan(&text, 2), "a", true, true);
    let metrics = run.metrics.clone();
    run.join();
    assert_eq!(output_counts(&read(&broker.bootstrap, &out)), hourly_counts(&events, i64::MAX), "the late record changed nothing");
    let late_records = read(&broker.bootstrap, &format!("{topic}-late"));
    assert_eq!(late_records.len(), 1);
    assert_eq!(late_records[0].value_str(), late);
    assert_eq!(late_records[0].header("eddy.error.kind"), Some("late"));
    assert!(late_records[0].header("eddy.watermark").is_some_and(|w| w.starts_with("2016-07-27")));
    assert_eq!(metric_sum(&metrics.render(), "eddy_late_records_total"), 1.0);
}

#[test]
fn state_stays_bounded_over_30_days_of_event_time() {
    use eddy::state::StateStore;
    let broker = Broker::mock();
    let topic = unique("events");
    broker.create_topic(&topic, 2);
    // 30 days, two actions, a few events a minute.
    let spec = eddy::gen::tutorial::TutorialSpec { events: 60_000, hours: 30 * 24, jitter: 30 * 60_000_000, ..Default::default() };
    let events = eddy::gen::tutorial::generate(&spec);
    produce(&broker.bootstrap, &topic, tutorial_records(&events));
    let out = unique("counts");
    let state = temp_dir("bounded");
    let p = broker.plan(&tutorial_pipeline(&unique("app"), &broker.bootstrap, &topic, &out, &state, "exactly_once", ""), 2);
    let run = Running::start(p, "a", true, false);
    let metrics = run.metrics.clone();
    // Sample the live state while the 30 days stream through.
    let mut samples = Vec::new();
    while !run.handle.is_finished() {
        samples.push(metric_sum(&metrics.render(), "eddy_state_entries"));
        std::thread::sleep(Duration::from_millis(20));
    }
    run.join();
    let peak = samples.iter().cloned().fold(0.0, f64::max);
    // A 1-hour window with a 2-hour delay keeps at most 3 or 4 windows open per action.
    assert!(peak <= 8.0, "live state entries peaked at {peak}");
    assert!(samples.len() > 5, "sampled during the run");
    // And sled holds only those: emitted windows were deleted, not just forgotten.
    let store = StateStore::open(&state, 1 << 20).unwrap();
    let mut total = 0;
    for p in 0..2 {
        let tree = store.tree(&format!("hourly_counts/aggregate/{p}")).unwrap();
        total += tree.for_each(|_, _| Ok::<(), eddy::state::StateError>(())).unwrap();
    }
    assert!(total <= 2 * 4 + 2, "sled holds {total} entries after 30 days (open windows and one watermark per task)");
    assert!(output_counts(&read(&broker.bootstrap, &out)).len() > 1300, "about 30 * 24 * 2 windows were emitted");
}

/// UNION ALL of two topics (each input its own stage, both feeding one aggregation): the same
/// counts as the batch answer over both topics' events.
#[test]
fn union_all_of_two_topics_counts_every_event_once() {
    let broker = Broker::mock();
    let (a, b) = (unique("events-a"), unique("events-b"));
    broker.create_topic(&a, 2);
    broker.create_topic(&b, 2);
    let events = tutorial(8_000, 5);
    let records = tutorial_records(&events);
    let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
    for (i, (k, v, _)) in records.into_iter().enumerate() {
        if i % 3 == 0 {
            to_b.push((k, v, Some((i / 3 % 2) as i32)));
        } else {
            to_a.push((k, v, Some((i % 2) as i32)));
        }
    }
    produce(&broker.bootstrap, &a, to_a);
    produce(&broker.bootstrap, &b, to_b);
    let out = unique("union-counts");
    let text = tutorial_pipeline(&unique("app"), &broker.bootstrap, &a, &out, &temp_dir("union"), "exactly_once", "")
        .replace("    partition_key: [action]\n", "")
        .replace(
            "sinks:",
            &format!("  more:\n    topic: {b}\n    schema: {{ time: timestamp, action: string, id: string }}\n    event_time: time\n    watermark_delay: 2h\nsinks:"),
        )
        .replace(
            "      FROM events\n",
            "      FROM (SELECT time, action FROM events UNION ALL SELECT time, action FROM more) AS u\n",
        );
    let p = broker.plan(&text, 2);
    assert_eq!(p.queries.len(), 3, "two input stages and the aggregation");
    let summary = Running::start(p, "a", true, true).join();
    assert!(summary.records_in >= 8_000, "{summary:?}");
    assert_eq!(output_counts(&read(&broker.bootstrap, &out)), hourly_counts(&events, i64::MAX));
}
