//! Observability end to end: a pipeline runs with `http.listen` on port 0, and the test reads
//! /metrics, /readyz and /progress over real HTTP. Records consumed equal the input, the
//! watermark equals the max event time minus the delay, lag reaches 0, every contract metric
//! name is exposed, and /progress validates against docs/progress.schema.json. On the real
//! broker (KAFKA_BOOTSTRAP_SERVERS), lag is shown to be measured against the last stable
//! offset: an open transaction's records do not count as lag. Otherwise the mock broker runs it.
//! A second test runs the binary with `--log-format json` and counts the log lines of a
//! rebalance, the restores and injected transaction aborts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value as Json;

const HOUR_US: i64 = 3_600_000_000;

/// `GET path` over a fresh connection: (status code, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get(addr, path).expect("eddy answers HTTP")
}

/// Samples of `name` in the Prometheus text: label set (as written) → value.
fn samples(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
                let (labels, v) = r.split_once("} ")?;
                (labels.to_string(), v)
            } else {
                (String::new(), rest.strip_prefix(' ')?)
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// The scrape of `served`'s /metrics.
fn metrics_of(served: &Served) -> String {
    let (code, body) = get(served.addr, "/metrics");
    assert_eq!(code, 200);
    body
}

#[test]
fn metrics_and_progress_describe_the_run() {
    let broker = match Broker::real("metrics_and_progress_describe_the_run (real broker part)") {
        Some(b) => b,
        None => Broker::mock(),
    };
    let topic = unique("metrics-in");
    broker.create_topic(&topic, 2);
    let events = tutorial(4_000, 5);
    // Open on partition 0, Close on partition 1: each partition's watermark is known.
    let mut records: Vec<_> =
        tutorial_records(&events).into_iter().map(|(k, v, _)| (k.clone(), v, Some(i32::from(k.unwrap() == "Close")))).collect();
    for i in 0..3 {
        records.push((None, format!("not json {i}"), Some(0)));
    }
    produce(&broker.bootstrap, &topic, records);
    let app = unique("metrics-app");
    let out = unique("metrics-out");
    let text = tutorial_pipeline(
        &app,
        &broker.bootstrap,
        &topic,
        &out,
        &temp_dir("metrics"),
        "exactly_once",
        r#""statistics.interval.ms": "200""#,
    );
    broker.plan(&text, 2);
    let served = Served::start(plan(&text), "metrics");

    wait_for("/readyz to answer 200", Duration::from_secs(60), || get(served.addr, "/readyz").0 == 200);
    assert_eq!(get(served.addr, "/healthz").0, 200);
    wait_for("every input record to be consumed", Duration::from_secs(60), || {
        metric_sum(&metrics_of(&served), "eddy_records_consumed_total") >= 4_003.0
    });
    wait_for("the lag of both partitions to reach 0", Duration::from_secs(30), || {
        let lag = samples(&metrics_of(&served), "eddy_consumer_lag_records");
        lag.len() == 2 && lag.values().all(|&v| v == 0.0)
    });
    let unix_now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let before = unix_now();
    let m = metrics_of(&served);
    let after = unix_now();
    assert_eq!(metric_sum(&m, "eddy_records_consumed_total"), 4_003.0, "records consumed = records in the topic");
    assert_eq!(samples(&m, "eddy_dead_letter_records_total").get(&format!("outcome=\"dead_lettered\",topic=\"{topic}\"")), Some(&3.0));
    assert_eq!(samples(&m, "eddy_ready").get(""), Some(&1.0));

    // Watermark per partition = that partition's max event time - 2 h, in seconds.
    let watermarks = samples(&m, "eddy_watermark_timestamp_seconds");
    let delays = samples(&m, "eddy_watermark_delay_seconds");
    for (p, action) in [(0, "Open"), (1, "Close")] {
        let max = events.iter().filter(|e| e.action() == action).map(|e| e.time).max().unwrap();
        let labels = format!("partition=\"{p}\",query=\"hourly_counts\"");
        let wm = watermarks[&labels];
        assert!((wm - (max - 2 * HOUR_US) as f64 / 1e6).abs() < 1e-3, "partition {p}: watermark {wm}");
        // The delay is the wall clock at the scrape minus the watermark.
        let delay = delays[&labels];
        assert!(delay >= before - wm - 1e-3 && delay <= after - wm + 1e-3, "delay {delay} vs now - watermark {}", after - wm);
    }

    // Every name of the contract is exposed, with the values this run implies.
    for name in [
        eddy::metrics::RECORDS_CONSUMED,
        eddy::metrics::RECORDS_PRODUCED,
        eddy::metrics::CONSUMER_LAG,
        eddy::metrics::WATERMARK,
        eddy::metrics::WATERMARK_DELAY,
        eddy::metrics::LATE_RECORDS,
        eddy::metrics::DEAD_LETTER_RECORDS,
        eddy::metrics::TRANSACTIONS,
        eddy::metrics::TRANSACTION_DURATION,
        eddy::metrics::STATE_ENTRIES,
        eddy::metrics::STATE_BYTES,
        eddy::metrics::RESTORE_RECORDS,
        eddy::metrics::RESTORE_DURATION,
        eddy::metrics::REBALANCES,
        eddy::metrics::END_TO_END_LATENCY,
        eddy::metrics::ASSIGNED_PARTITIONS,
        eddy::metrics::READY,
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(m.lines().any(|l| l.starts_with("# TYPE ") && l[7..].split(' ').next() == Some(name)), "{name} is missing from /metrics");
    }
    let produced = metric_sum(&m, "eddy_records_produced_total");
    assert!(produced > 0.0, "closed windows were written");
    assert!(samples(&m, "eddy_transactions_total")[r#"outcome="committed""#] >= 1.0);
    assert!(samples(&m, "eddy_rebalances_total")[r#"outcome="assigned""#] >= 1.0);
    assert_eq!(samples(&m, "eddy_restore_duration_seconds_count")[r#"query="hourly_counts""#], 2.0, "one restore per task");
    assert!(metric_sum(&m, "eddy_state_entries") > 0.0, "open windows are in state");
    // Latency is observed at commit: once per input row (Kafka clock), once per output row (event clock).
    let latency = samples(&m, "eddy_end_to_end_latency_seconds_count");
    assert_eq!(latency[r#"clock="kafka",query="hourly_counts""#], 4_000.0);
    assert_eq!(latency[r#"clock="event",query="hourly_counts""#], produced);

    check_progress(&served, &app, &topic, &m);
    if broker.real {
        open_transaction_is_not_lag(&served, &broker.bootstrap, &topic);
    }
    served.shutdown();
}

/// `--log-format json`: every line is a JSON object; a rebalance, each task's restore and each
/// failed (aborted) transaction is exactly one line with its fields. Real broker only: the
/// binary cannot reach the in-process mock.
#[test]
fn rebalances_restores_and_failed_transactions_log_one_json_line_each() {
    let Some(broker) = Broker::real("rebalances_restores_and_failed_transactions_log_one_json_line_each") else { return };
    let topic = unique("logs-in");
    broker.create_topic(&topic, 2);
    let events = tutorial(10_000, 9);
    produce(
        &broker.bootstrap,
        &topic,
        tutorial_records(&events).into_iter().map(|(k, v, _)| (k.clone(), v, Some(i32::from(k.unwrap() == "Close")))),
    );
    let text =
        tutorial_pipeline(&unique("logs-app"), &broker.bootstrap, &topic, &unique("logs-out"), &temp_dir("logs"), "exactly_once", "")
            .replace("commit_interval: 50ms", "commit_interval: 50ms\ncommit_max_records: 1000");
    let path = write_pipeline(&text);
    let log = temp_dir("logs").join("eddy.log");
    let args = [
        "run",
        "-c",
        path.to_str().unwrap(),
        "--stop-at-end",
        "--log-format",
        "json",
        "--instance-id",
        "logs",
        "--inject-abort-every",
        "3",
    ];
    let status = spawn_eddy(&args, &log).wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "eddy failed:\n{text}");
    let lines: Vec<Json> = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    for l in &lines {
        assert!(
            l["timestamp"].is_string() && l["level"].is_string() && l["target"].is_string() && l["fields"]["message"].is_string(),
            "{l}"
        );
    }
    let message = |l: &Json| l["fields"]["message"].as_str().unwrap().to_string();
    let assigned: Vec<&Json> = lines.iter().filter(|l| message(l).starts_with("assigned ")).collect();
    assert_eq!(assigned.len(), 1, "one line for the one assignment: {assigned:?}");
    assert_eq!(assigned[0]["fields"]["partitions"], 2);
    let mut restored: Vec<i64> = lines
        .iter()
        .filter(|l| message(l).starts_with("restored query hourly_counts"))
        .map(|l| l["fields"]["partition"].as_i64().unwrap())
        .collect();
    restored.sort();
    assert_eq!(restored, vec![0, 1], "one line per restored task");
    // Every 3rd cycle aborts and the last one commits, so aborts = (commits - 1) / 2.
    let stopped = lines.iter().find(|l| message(l).starts_with("stopped after")).expect("a final line");
    let commits = stopped["fields"]["commits"].as_u64().unwrap();
    let aborts: Vec<&Json> = lines.iter().filter(|l| message(l).starts_with("the commit cycle failed")).collect();
    assert!(commits >= 4, "several cycles ran: {commits}");
    assert_eq!(aborts.len() as u64, (commits - 1) / 2, "one line per aborted transaction ({commits} commits)");
    assert!(aborts.iter().all(|l| l["level"] == "WARN" && l["fields"]["error"].as_str().unwrap().contains("fault injection")));
}

/// /progress: valid against the documented schema, and consistent with /metrics.
fn check_progress(served: &Served, app: &str, topic: &str, metrics: &str) {
    let (code, body) = get(served.addr, "/progress");
    assert_eq!(code, 200);
    let doc: Json = serde_json::from_str(&body).unwrap();
    let schema: Json =
        serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/progress.schema.json")).unwrap()).unwrap();
    let mut errors = Vec::new();
    validate(&schema, &schema, &doc, "$", &mut errors);
    assert!(errors.is_empty(), "/progress does not match docs/progress.schema.json: {errors:#?}\n{body}");
    // The validator itself rejects what the schema forbids.
    let mut broken = doc.clone();
    broken["queries"]["hourly_counts"]["durationMs"]["poll"] = Json::from("slow");
    broken["queries"]["hourly_counts"]["extra"] = Json::from(1);
    broken["queries"]["hourly_counts"].as_object_mut().unwrap().remove("runId");
    let mut found = Vec::new();
    validate(&schema, &schema, &broken, "$", &mut found);
    assert_eq!(found.len(), 3, "{found:#?}");
    // And it deserializes into eddy's own types, which reject unknown fields.
    let _: eddy::metrics::progress::Progress = serde_json::from_str(&body).unwrap();

    let q = &doc["queries"]["hourly_counts"];
    assert_eq!(q["id"], format!("{app}/hourly_counts"));
    assert!(q["batchId"].as_u64().unwrap() >= 1);
    let ends = &q["sources"][0]["endOffset"][topic];
    let committed: Vec<i64> = (0..2).map(|p| ends[p.to_string()].as_i64().unwrap()).collect();
    assert_eq!(committed.iter().sum::<i64>(), 4_003, "the end offsets cover the whole input: {ends}");
    let state = &q["stateOperators"][0];
    assert_eq!(state["numRowsTotal"].as_f64().unwrap(), metric_sum(metrics, "eddy_state_entries"));
    assert_eq!(state["numStateStoreInstances"], 2);
    let wm = samples(metrics, "eddy_watermark_timestamp_seconds").values().copied().fold(f64::MAX, f64::min);
    let mut text = String::new();
    eddy::time::format_timestamp((wm * 1e3).round() as i64 * 1000, &mut text);
    assert_eq!(q["eventTime"]["watermark"], text, "the query's watermark is its tasks' minimum");
    let recent = doc["recentProgress"]["hourly_counts"].as_array().unwrap();
    assert_eq!(recent.last(), Some(q), "the last recent report is the last one");
    for r in recent.iter().filter(|r| r["numInputRows"].as_u64().unwrap() > 0) {
        assert!(r["stateOperators"][0]["numRowsUpdated"].as_u64().unwrap() > 0, "a batch with input wrote state: {r}");
    }
    let ids: Vec<u64> = recent.iter().map(|r| r["batchId"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "recent reports are oldest first: {ids:?}");
}

/// Records of an open transaction sit between the last stable offset and the high watermark:
/// they are not lag. Once the transaction aborts, the consumer moves past them (and the
/// marker) without counting them as consumed.
fn open_transaction_is_not_lag(served: &Served, bootstrap: &str, topic: &str) {
    let p: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("transactional.id", unique("metrics-txn")).create().unwrap();
    p.init_transactions(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    for i in 0..5 {
        p.send(BaseRecord::<str, str>::to(topic).partition(0).payload(&format!("open transaction {i}"))).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
    // Statistics arrive every 200 ms; a lag measured against the high watermark would show 5
    // within one interval. Watch ten of them.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let lag = samples(&metrics_of(served), "eddy_consumer_lag_records");
        assert!(lag.values().all(|&v| v == 0.0), "an open transaction's records counted as lag: {lag:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    p.abort_transaction(Duration::from_secs(30)).unwrap();
    wait_for("the lag to stay 0 past the aborted records", Duration::from_secs(30), || {
        let lag = samples(&metrics_of(served), "eddy_consumer_lag_records");
        lag.len() == 2 && lag.values().all(|&v| v == 0.0)
    });
    assert_eq!(metric_sum(&metrics_of(served), "eddy_records_consumed_total"), 4_003.0, "aborted records are not consumed");
}

/// A small JSON Schema (2020-12) checker for the keywords docs/progress.schema.json uses:
/// type, required, properties, additionalProperties, items, minimum and local $ref.
fn validate(root: &Json, schema: &Json, v: &Json, path: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Json::as_str) {
        let target = r.strip_prefix("#/").unwrap().split('/').fold(root, |s, part| &s[part]);
        assert!(!target.is_null(), "unresolved $ref {r}");
        validate(root, target, v, path, errors);
    }
    if let Some(t) = schema.get("type").and_then(Json::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            other => panic!("the checker does not know type {other}"),
        };
        if !ok {
            errors.push(format!("{path}: expected {t}, got {v}"));
            return;
        }
    }
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Json::as_f64), v.as_f64()) {
        if x < min {
            errors.push(format!("{path}: {x} < minimum {min}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for req in schema.get("required").and_then(Json::as_array).into_iter().flatten() {
            if !obj.contains_key(req.as_str().unwrap()) {
                errors.push(format!("{path}: missing required {req}"));
            }
        }
        let props = schema.get("properties").and_then(Json::as_object);
        for (k, x) in obj {
            match (props.and_then(|p| p.get(k)), schema.get("additionalProperties")) {
                (Some(s), _) => validate(root, s, x, &format!("{path}.{k}"), errors),
                (None, Some(Json::Bool(false))) => errors.push(format!("{path}: unexpected property {k}")),
                (None, Some(s)) if s.is_object() => validate(root, s, x, &format!("{path}.{k}"), errors),
                _ => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(root, items, x, &format!("{path}[{i}]"), errors);
        }
    }
}

/// Lag is reported for every assigned partition as soon as it is assigned: before
/// librdkafka's first statistics report (turned off here) and for partitions with no records.
#[test]
fn lag_is_reported_for_every_assigned_partition_right_after_assignment() {
    let broker = Broker::mock();
    let topic = unique("lag-events");
    broker.create_topic(&topic, 3);
    // Records in partition 0 only; 1 and 2 stay empty.
    let records: Vec<_> = tutorial_records(&tutorial(500, 5)).into_iter().map(|(k, v, _)| (k, v, Some(0))).collect();
    produce(&broker.bootstrap, &topic, records);
    let out = unique("lag-out");
    let text = tutorial_pipeline(
        &unique("lag-app"),
        &broker.bootstrap,
        &topic,
        &out,
        &temp_dir("lag"),
        "at_least_once",
        "\"statistics.interval.ms\": \"600000\"",
    );
    let run = Running::start(broker.plan(&text, 3), "lag", false, false);
    wait_for("the engine to be assigned and ready", Duration::from_secs(60), || run.status.is_ready());
    let lag = samples(&run.metrics.render(), "eddy_consumer_lag_records");
    for p in 0..3 {
        let key = format!("partition=\"{p}\",topic=\"{topic}\"");
        let v = lag.get(&key).copied();
        assert!(v.is_some(), "no lag series for partition {p}: {lag:?}");
        if p > 0 {
            assert_eq!(v, Some(0.0), "an empty partition has no lag");
        }
    }
    run.stop();
}
