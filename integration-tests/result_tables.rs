//! Result tables against a real Kafka broker: complete mode over windows (every window kept,
//! late records counted, the whole table re-emitted when it changes) and `retention`, which
//! drops old windows with a tombstone for their key. Each test is skipped, saying why, when
//! KAFKA_BOOTSTRAP_SERVERS is not set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use eddy::gen::tutorial::{generate, TutorialSpec};
use eddy::tail::TailRecord;

const HOUR: i64 = 3_600_000_000;

fn complete_pipeline(app: &str, bootstrap: &str, input: &str, out: &str, retention: Option<&str>) -> String {
    let state = temp_dir("result-tables");
    let text = tutorial_pipeline(app, bootstrap, input, out, &state, "exactly_once", "");
    let sink = match retention {
        None => format!("counts: {{ topic: {out}, output_mode: complete }}"),
        Some(r) => format!("counts: {{ topic: {out}, output_mode: complete, retention: {r} }}"),
    };
    let replaced = text.replace(&format!("counts: {{ topic: {out}, output_mode: append }}"), &sink);
    assert_ne!(replaced, text, "the sink line was replaced");
    replaced
}

/// The table a compacted topic converges to: the last value per key, tombstones deleting.
/// Also checks that no key's count ever goes down (each commit's table extends the last).
fn latest_per_key(records: &[TailRecord]) -> BTreeMap<(String, String), Option<u64>> {
    let mut ordered: Vec<&TailRecord> = records.iter().collect();
    ordered.sort_by_key(|r| (r.partition, r.offset));
    let mut table: BTreeMap<(String, String), Option<u64>> = BTreeMap::new();
    for r in ordered {
        let key: serde_json::Value = serde_json::from_slice(r.key.as_deref().expect("every output record has a key")).unwrap();
        let k = (key["action"].as_str().unwrap().to_string(), key["window_start"].as_str().unwrap().to_string());
        let count = r.value.as_ref().map(|_| serde_json::from_str::<serde_json::Value>(r.value_str()).unwrap()["count"].as_u64().unwrap());
        if let (Some(Some(before)), Some(now)) = (table.get(&k), count) {
            assert!(now >= *before, "window {k:?}: the count went down from {before} to {now}");
        }
        table.insert(k, count);
    }
    table
}

#[test]
fn complete_mode_keeps_every_window_and_counts_late_records() {
    let Some(broker) = Broker::real("complete_mode_keeps_every_window_and_counts_late_records") else { return };
    let (input, out, app) = (unique("complete-in"), unique("complete-out"), unique("complete"));
    broker.create_topic(&input, 4);
    broker.create_topic(&out, 1);
    // 100,000 events, 1% of them 5 hours late: append mode would drop those.
    let spec = TutorialSpec { events: 100_000, seed: 17, late_fraction: 0.01, late_by: 5 * HOUR, ..TutorialSpec::default() };
    let events = generate(&spec);
    produce(&broker.bootstrap, &input, tutorial_records(&events));
    let p = broker.plan(&complete_pipeline(&app, &broker.bootstrap, &input, &out, None), 4);
    let run = Running::start(p, "a", true, false);
    let metrics = run.metrics.clone();
    let summary = run.join();
    let late = metric_sum(&metrics.render(), "eddy_late_records_total");
    assert!(summary.records_out > 0);
    assert_eq!(late, 0.0, "complete mode without retention drops nothing as late");
    let table = latest_per_key(&read(&broker.bootstrap, &out));
    let expected: BTreeMap<(String, String), Option<u64>> =
        hourly_counts(&events, i64::MAX).into_iter().map(|(k, v)| (k, Some(v))).collect();
    assert_eq!(table, expected, "the final table holds every window with every event, late ones included");
    let per_action = |a: &str| table.iter().filter(|((action, _), _)| action == a).map(|(_, c)| c.unwrap_or(0)).sum::<u64>();
    assert_eq!((per_action("Open"), per_action("Close")), (50_000, 50_000));
}

#[test]
fn retention_drops_old_windows_with_tombstones() {
    let Some(broker) = Broker::real("retention_drops_old_windows_with_tombstones") else { return };
    let (input, out, app) = (unique("retention-in"), unique("retention-out"), unique("retention"));
    broker.create_topic(&input, 1);
    broker.create_topic(&out, 1);
    let spec = TutorialSpec { events: 20_000, seed: 5, ..TutorialSpec::default() };
    let events = generate(&spec);
    produce(&broker.bootstrap, &input, tutorial_records(&events));
    let p = broker.plan(&complete_pipeline(&app, &broker.bootstrap, &input, &out, Some("3h")), 1);
    let run = Running::start(p, "a", true, false);
    let metrics = run.metrics.clone();
    run.join();
    let late = metric_sum(&metrics.render(), "eddy_late_records_total");
    // One partition: the final watermark is the largest event time minus the 2 h delay, and
    // a window is kept while its end is more than 3 h of retention past it.
    let watermark = events.iter().map(|e| e.time).max().unwrap() - 2 * HOUR;
    let kept_after = watermark - 3 * HOUR;
    let records = read(&broker.bootstrap, &out);
    let table = latest_per_key(&records);
    let all = hourly_counts(&events, i64::MAX);
    let mut dropped = 0;
    for ((action, start), count) in &all {
        let end = eddy::time::parse_timestamp(start).unwrap() + HOUR;
        let got = table.get(&(action.clone(), start.clone()));
        if end > kept_after {
            assert_eq!(got, Some(&Some(*count)), "window {action} {start} is within retention");
        } else {
            assert_eq!(got, Some(&None), "window {action} {start} left the table: its last record is a tombstone");
            dropped += 1;
        }
    }
    assert!(dropped > 0 && dropped < all.len(), "some windows dropped ({dropped} of {})", all.len());
    assert_eq!(table.len(), all.len(), "no key the query never produced");
    assert_eq!(late, 0.0, "the disorder stays within the delay: nothing arrives after its window left");
}
