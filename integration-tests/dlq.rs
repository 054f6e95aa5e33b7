//! Dead letters on the real broker: malformed records (bad JSON, missing fields, bad
//! timestamps, wrong types, bad CSV) mixed into good ones. Every malformed record lands in
//! its source's dead-letter topic unchanged, with the reason and origin in headers, in the
//! same transactions as the output; every good one is counted, and the output equals an
//! independent computation. Sizes: EDDY_DLQ_GOOD good and EDDY_DLQ_BAD malformed records per
//! format (defaults 100,000 and 1,000; the acceptance run is 1,000,000 and 10,000).
//! Also the policies without a dead-letter topic: skip and count (default), or fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use eddy::engine::{EngineError, RunOptions};
use eddy::gen::rng::Rng;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_291_161_600_000_000; // 2010-12-01T00:00:00Z

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn ts(t: i64) -> String {
    let mut s = String::new();
    eddy::time::format_timestamp(t, &mut s);
    s
}

/// A generated record: its payload, and for a malformed one the error kind expected.
struct Rec {
    payload: String,
    bad: Option<&'static str>,
}

const ACTIONS: [&str; 5] = ["open", "close", "view", "buy", "zero"];

/// JSON events {time, action, n, d}; action "zero" always has d = 0 (its ratio is NULL).
/// (action, hour) → (count, sum of n, sum of d).
type Hourly = BTreeMap<(String, String), (u64, i64, i64)>;

fn json_records(good: usize, bad: usize, rng: &mut Rng) -> (Vec<Rec>, Hourly) {
    let mut expected = Hourly::new();
    let mut recs = Vec::with_capacity(good + bad);
    for i in 0..good {
        let t = T0 + (rng.below(72 * 3600) as i64) * 1_000_000;
        let action = ACTIONS[rng.below(5) as usize];
        let n = rng.below(100) as i64;
        let d = if action == "zero" { 0 } else { 1 + rng.below(9) as i64 };
        let e = expected.entry((action.to_string(), ts(t.div_euclid(HOUR) * HOUR))).or_default();
        *e = (e.0 + 1, e.1 + n, e.2 + d);
        recs.push(Rec { payload: format!(r#"{{"time":"{}","action":"{action}","n":{n},"d":{d},"id":{i}}}"#, ts(t)), bad: None });
    }
    for i in 0..bad {
        let (payload, kind) = match i % 6 {
            0 => (format!(r#"{{"time":"2010-12-01T00:00:00Z","action":"x","n":1,"d":1,"id":"bad{i}""#), "malformed"),
            1 => (format!("not json at all {i}"), "malformed"),
            2 => (format!(r#"{{"time":"2010-12-01T00:00:00Z","n":1,"d":1,"id":"bad{i}"}}"#), "missing_field"),
            3 => (format!(r#"{{"time":"Dec 1st {i}","action":"x","n":1,"d":1}}"#), "bad_timestamp"),
            4 => (format!(r#"{{"time":"2010-12-01T00:00:00Z","action":"x","n":"many","d":1,"id":"bad{i}"}}"#), "wrong_type"),
            _ => (format!(r#"{{"time":"2010-12-01T00:00:00Z","action":{i},"n":1,"d":1}}"#), "wrong_type"),
        };
        recs.push(Rec { payload, bad: Some(kind) });
    }
    (recs, expected)
}

/// Retail CSV lines; prices are quarters so every sum is exact in binary floating point.
fn csv_records(good: usize, bad: usize, rng: &mut Rng) -> (Vec<Rec>, BTreeMap<(String, String), f64>) {
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut recs = Vec::with_capacity(good + bad + 1);
    recs.push(Rec { payload: "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID".into(), bad: None });
    for i in 0..good {
        let t = T0 + (rng.below(10 * 86_400) as i64) * 1_000_000;
        let customer = if rng.below(50) == 0 { String::new() } else { format!("{}", 12_000 + rng.below(300)) };
        let qty = rng.below(40) as i64 - 4;
        let price = rng.below(400) as f64 * 0.25;
        *expected.entry((customer.clone(), ts(t.div_euclid(DAY) * DAY))).or_default() += price * qty as f64;
        let mut s = String::new();
        eddy::formats::TimestampPattern::new("yyyy-MM-dd HH:mm:ss").unwrap().format(t, &mut s);
        recs.push(Rec { payload: format!("\"{i}, inv\",{qty},{s},{price},{customer}"), bad: None });
    }
    for i in 0..bad {
        let (payload, kind) = match i % 5 {
            0 => (format!("{i},1,2010-12-01 08:26:00,2.5"), "malformed"),
            1 => (format!("\"{i},1,2010-12-01 08:26:00,2.5,17850"), "malformed"),
            2 => (format!("{i},one,2010-12-01 08:26:00,2.5,17850"), "wrong_type"),
            3 => (format!("{i},1,12/1/2010 8:26,2.5,17850"), "bad_timestamp"),
            _ => (format!("{i},,2010-12-01 08:26:00,2.5,17850"), "missing_field"),
        };
        recs.push(Rec { payload, bad: Some(kind) });
    }
    (recs, expected)
}

fn pipeline(app: &str, bootstrap: &str, json_topic: &str, csv_topic: &str, state: &std::path::Path, dlq: bool, policy: &str) -> String {
    let (jd, cd) = if dlq {
        (format!("dead_letter_topic: {json_topic}-dlq"), format!("dead_letter_topic: {csv_topic}-dlq"))
    } else {
        (String::new(), String::new())
    };
    format!(
        r#"app: {app}
kafka: {{ bootstrap_servers: "{bootstrap}" }}
state: {{ dir: "{state}" }}
commit_interval: 100ms
http: {{ listen: "127.0.0.1:0" }}
sources:
  events:
    topic: {json_topic}
    schema: {{ time: timestamp, action: string, n: long, d: long }}
    event_time: time
    watermark_delay: 1000d
    partition_key: [action]
    on_error: {policy}
    {jd}
  retail:
    topic: {csv_topic}
    format: csv
    csv: {{ timestamp_format: "yyyy-MM-dd HH:mm:ss" }}
    schema: {{ InvoiceNo: string, Quantity: long, InvoiceDate: timestamp, UnitPrice: double, CustomerID: string? }}
    event_time: InvoiceDate
    watermark_delay: 1000d
    on_error: {policy}
    {cd}
sinks:
  counts: {{ topic: {json_topic}-out }}
  spend: {{ topic: {csv_topic}-out, format: csv }}
queries:
  - name: counts
    sink: counts
    sql: |
      SELECT action, window.start AS ws, count(*) AS c, sum(n) AS s, sum(n) / sum(d) AS ratio
      FROM events GROUP BY action, window(time, '1 hour')
  - name: spend
    sink: spend
    sql: |
      SELECT CustomerID, window.start AS day, sum(UnitPrice * Quantity) AS total
      FROM retail GROUP BY CustomerID, window(InvoiceDate, '1 day')
"#,
        state = state.display()
    )
}

/// Shuffles good and bad records together and produces them (keyed, so JSON events of one
/// action share a partition as the pipeline declares).
fn produce_mixed(bootstrap: &str, topic: &str, mut recs: Vec<Rec>, keyed: bool, rng: &mut Rng) -> HashMap<String, &'static str> {
    let header = if keyed { None } else { Some(recs.remove(0)) };
    for i in (1..recs.len()).rev() {
        recs.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let bad: HashMap<String, &'static str> = recs.iter().filter_map(|r| r.bad.map(|k| (r.payload.clone(), k))).collect();
    assert_eq!(bad.len(), recs.iter().filter(|r| r.bad.is_some()).count(), "malformed payloads are distinct");
    let key =
        |r: &Rec| keyed.then(|| serde_json::from_str::<serde_json::Value>(&r.payload).ok()?["action"].as_str().map(String::from)).flatten();
    let mut records: Vec<(Option<String>, String, Option<i32>)> = header.map(|h| (None, h.payload, Some(0))).into_iter().collect();
    records.extend(recs.into_iter().map(|r| (key(&r), r.payload, None)));
    produce(bootstrap, topic, records);
    bad
}

fn json_output(bootstrap: &str, topic: &str) -> BTreeMap<(String, String), (u64, i64, Option<f64>)> {
    let mut m = BTreeMap::new();
    for r in read(bootstrap, topic) {
        let v: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
        let key = (v["action"].as_str().unwrap().to_string(), v["ws"].as_str().unwrap().to_string());
        // serde_json's float parsing may be an ulp off; Rust's own parse is exact.
        let raw = r.value_str().split("\"ratio\":").nth(1).unwrap().trim_end_matches('}').split(',').next().unwrap();
        let row = (v["c"].as_u64().unwrap(), v["s"].as_i64().unwrap(), raw.parse::<f64>().ok());
        assert!(m.insert(key.clone(), row).is_none(), "window {key:?} emitted twice");
    }
    m
}

fn csv_output(bootstrap: &str, topic: &str) -> BTreeMap<(String, String), f64> {
    let mut m = BTreeMap::new();
    for r in read(bootstrap, topic) {
        let line = r.value_str();
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 3, "{line}");
        assert!(m.insert((f[0].to_string(), f[1].to_string()), f[2].parse::<f64>().unwrap()).is_none(), "{line} twice");
    }
    m
}

fn check_json(expected: &Hourly, got: &BTreeMap<(String, String), (u64, i64, Option<f64>)>) {
    assert_eq!(got.len(), expected.len(), "one row per window");
    for (k, &(c, s, d)) in expected {
        let ratio = if d == 0 { None } else { Some(s as f64 / d as f64) };
        assert_eq!(got.get(k), Some(&(c, s, ratio)), "window {k:?}");
    }
    assert!(got.iter().any(|((a, _), row)| a == "zero" && row.2.is_none()), "division by zero gives NULL");
}

fn check_csv(expected: &BTreeMap<(String, String), f64>, got: &BTreeMap<(String, String), f64>) {
    let expected: BTreeMap<(String, String), f64> = expected.iter().map(|((c, d), v)| ((c.clone(), d.clone()), *v)).collect();
    assert_eq!(got, &expected, "daily spend per customer");
}

#[test]
fn malformed_records_go_to_the_dead_letter_topics_with_reasons() {
    let Some(broker) = Broker::real("malformed_records_go_to_the_dead_letter_topics_with_reasons") else { return };
    let (good, bad) = (size("EDDY_DLQ_GOOD", 100_000), size("EDDY_DLQ_BAD", 1_000));
    let mut rng = Rng::new(11);
    let (jt, ct) = (unique("dlq-json"), unique("dlq-csv"));
    broker.create_topic(&jt, 4);
    broker.create_topic(&ct, 4);
    let (jrecs, jexp) = json_records(good, bad, &mut rng);
    let (crecs, cexp) = csv_records(good / 4, bad, &mut rng);
    let jbad = produce_mixed(&broker.bootstrap, &jt, jrecs, true, &mut rng);
    let cbad = produce_mixed(&broker.bootstrap, &ct, crecs, false, &mut rng);
    let app = unique("dlq-app");
    let text = pipeline(&app, &broker.bootstrap, &jt, &ct, &temp_dir("dlq"), true, "skip");
    let started = std::time::Instant::now();
    let run = Running::start(broker.plan(&text, 4), "a", true, true);
    let metrics = run.metrics.clone();
    let summary = run.join();
    eprintln!("dlq: {good} good + {bad} bad JSON, {} good + {bad} bad CSV in {:?}: {summary:?}", good / 4, started.elapsed());
    assert!(summary.records_in as usize > good + good / 4 + 2 * bad, "every record was read");

    for (topic, bad_map, query) in [(&jt, &jbad, "counts"), (&ct, &cbad, "spend")] {
        let source: HashMap<(i32, i64), Vec<u8>> =
            read(&broker.bootstrap, topic).into_iter().map(|r| ((r.partition, r.offset), r.value.unwrap_or_default())).collect();
        let dead = read(&broker.bootstrap, &format!("{topic}-dlq"));
        assert_eq!(dead.len(), bad, "every malformed record of {topic} is dead-lettered, once");
        let mut seen = std::collections::HashSet::new();
        for d in &dead {
            let payload = d.value_str();
            let kind = bad_map.get(payload).unwrap_or_else(|| panic!("a good record was dead-lettered: {payload}"));
            assert!(seen.insert(payload.to_string()), "dead-lettered twice: {payload}");
            assert_eq!(d.header("eddy.error.kind"), Some(*kind), "{payload}: {:?}", d.header("eddy.error.message"));
            assert!(!d.header("eddy.error.message").unwrap_or("").is_empty());
            assert_eq!(d.header("eddy.source.topic"), Some(topic.as_str()));
            assert_eq!(d.header("eddy.query"), Some(query));
            let p: i32 = d.header("eddy.source.partition").unwrap().parse().unwrap();
            let o: i64 = d.header("eddy.source.offset").unwrap().parse().unwrap();
            assert_eq!(
                source.get(&(p, o)).map(Vec::as_slice),
                Some(payload.as_bytes()),
                "the headers point at the original record, unchanged"
            );
        }
    }
    check_json(&jexp, &json_output(&broker.bootstrap, &format!("{jt}-out")));
    check_csv(&cexp, &csv_output(&broker.bootstrap, &format!("{ct}-out")));
    assert_eq!(metric_sum(&metrics.render(), "eddy_dead_letter_records_total"), (2 * bad) as f64);
}

#[test]
fn without_a_dead_letter_topic_bad_records_are_skipped_and_counted_or_stop_the_pipeline() {
    let Some(broker) = Broker::real("without_a_dead_letter_topic_bad_records_are_skipped_and_counted_or_stop_the_pipeline") else { return };
    let mut rng = Rng::new(5);
    let (jt, ct) = (unique("skip-json"), unique("skip-csv"));
    broker.create_topic(&jt, 2);
    broker.create_topic(&ct, 2);
    let (jrecs, jexp) = json_records(2_000, 60, &mut rng);
    let (crecs, cexp) = csv_records(500, 50, &mut rng);
    produce_mixed(&broker.bootstrap, &jt, jrecs, true, &mut rng);
    produce_mixed(&broker.bootstrap, &ct, crecs, false, &mut rng);

    let text = pipeline(&unique("skip-app"), &broker.bootstrap, &jt, &ct, &temp_dir("skip"), false, "skip");
    let run = Running::start(broker.plan(&text, 2), "a", true, true);
    let metrics = run.metrics.clone();
    run.join();
    let rendered = metrics.render();
    assert_eq!(metric_sum(&rendered, "eddy_dead_letter_records_total"), 110.0, "skipped records are counted");
    assert!(rendered.contains("outcome=\"skipped\""), "{rendered}");
    check_json(&jexp, &json_output(&broker.bootstrap, &format!("{jt}-out")));
    check_csv(&cexp, &csv_output(&broker.bootstrap, &format!("{ct}-out")));

    let app = unique("fail-app");
    let text = pipeline(&app, &broker.bootstrap, &jt, &ct, &temp_dir("fail"), false, "fail");
    let opts = RunOptions { instance_id: "a".into(), stop_at_end: true, flush_at_end: true, inject_abort_every: None };
    let stopped_at = |result| match result {
        Err(EngineError::DecodeFailure { topic, partition, offset, message, .. }) => {
            assert!(topic == jt || topic == ct, "{topic}");
            assert!(!message.is_empty());
            (topic, partition, offset)
        }
        other => panic!("on_error: fail stops the pipeline at the first bad record, got {other:?}"),
    };
    let (topic, partition, offset) = stopped_at(Running::start_with(broker.plan(&text, 2), opts.clone()).result());
    // Nothing at or after the bad record is committed (leaving the group after the failure
    // commits nothing), so the pipeline started again stops at the same record, not past it.
    let committed = group_offsets(&broker.bootstrap, &app, &topic, 2)[partition as usize];
    assert!(committed <= offset, "{topic}[{partition}] committed up to {committed}, past the bad record at {offset}");
    // Started again, it stops at a bad record it has not committed past: the same one, or
    // (two topics each hold bad records, and poll order decides which comes first) one of the
    // other topic's; within the first record's partition, only that record itself.
    let (t2, p2, o2) = stopped_at(Running::start_with(broker.plan(&text, 2), opts).result());
    if (t2.as_str(), p2) == (topic.as_str(), partition) {
        assert_eq!(o2, offset, "started again, it stops at the same bad record of {topic}[{partition}]");
    }
    let committed2 = group_offsets(&broker.bootstrap, &app, &t2, 2)[p2 as usize];
    assert!(committed2 <= o2, "{t2}[{p2}] committed up to {committed2}, past the bad record at {o2}");
    let committed = group_offsets(&broker.bootstrap, &app, &topic, 2)[partition as usize];
    assert!(committed <= offset, "after the second run, {topic}[{partition}] committed up to {committed}, past {offset}");
}
