//! eddy against Spark Structured Streaming itself: every query in
//! integration-tests/spark/queries.json was run by Spark 4.0 (spark_reference.py, which
//! documents how) over the checked-in input in arrival order, and Spark's output rows were
//! recorded as `<query>.spark.jsonl`. Here eddy runs the same query over the same input, in the
//! same order, on librdkafka's mock broker with a one-partition topic (so eddy's partition
//! watermark is Spark's global one), with stop-at-end and without flush-at-end (Spark does not
//! close open windows at the end either), and its output must equal Spark's: the same rows as
//! a set, the same columns, strings, longs and timestamps exactly, doubles within a relative
//! 1e-9. integration-tests/spark/README.md explains the setup and the known discrepancies;
//! `EDDY_SPARK_COMPAT_DUMP=<dir>` writes eddy's rows to `<dir>/<query>.eddy.jsonl`, for diffing by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Map, Value};

type Row = Map<String, Value>;

/// Relative tolerance for doubles (sums of doubles depend on the order of addition).
const REL_TOL: f64 = 1e-9;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("integration-tests/spark")
}

fn spec() -> Value {
    let text = std::fs::read_to_string(dir().join("queries.json")).expect("integration-tests/spark/queries.json");
    serde_json::from_str(&text).expect("queries.json is JSON")
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_else(|| panic!("queries.json: {field} is not a string in {v}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn parse_row(line: &str, what: &str) -> Row {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => m,
        _ => panic!("{what}: not a JSON object: {line}"),
    }
}

/// The pipeline that runs `sql` as query `name` over `source`, read from `topic`.
fn pipeline(name: &str, source_name: &str, source: &Value, sql: &str, bootstrap: &str, topic: &str, out: &str) -> String {
    let keys = strings(&source["partition_key"]).join(", ");
    format!(
        r#"app: {app}
kafka:
  bootstrap_servers: "{bootstrap}"
state: {{ dir: "{state}" }}
commit_interval: 50ms
http: {{ listen: "127.0.0.1:0" }}
sources:
  {source_name}:
    topic: {topic}
    format: json
    schema: {schema}
    event_time: time
    watermark_delay: 2h
    partition_key: [{keys}]
    late_topic: {topic}-late
    on_error: fail
sinks:
  out: {{ topic: {out}, output_mode: append }}
queries:
  - name: {name}
    sink: out
    sql: |
      {sql}
"#,
        app = unique(&format!("spark-{name}")),
        state = temp_dir("spark-compat").display(),
        schema = str_of(source, "eddy_schema"),
    )
}

/// Whether eddy's value equals Spark's: a double (Spark wrote a fraction or an exponent) within
/// the relative tolerance, anything else exactly.
fn same_value(spark: &Value, eddy: &Value) -> bool {
    match (spark, eddy) {
        (Value::Number(s), Value::Number(e)) if s.is_f64() => {
            let (s, e) = (s.as_f64().unwrap(), e.as_f64().unwrap());
            s == e || (s - e).abs() <= REL_TOL * s.abs().max(e.abs())
        }
        (Value::Number(s), Value::Number(e)) => s.as_i64().is_some() && s.as_i64() == e.as_i64(),
        _ => spark == eddy,
    }
}

/// Every difference between Spark's rows and eddy's, as readable lines.
fn differences(spark: &[Row], eddy: &[Row], key: &[String]) -> Vec<String> {
    let key_of = |r: &Row| key.iter().map(|k| r.get(k).map_or("<missing>".to_string(), Value::to_string)).collect::<Vec<_>>().join(" ");
    let mut problems = Vec::new();
    let by_key = |rows: &[Row], who: &str, problems: &mut Vec<String>| {
        let mut m = BTreeMap::new();
        for r in rows {
            if let Some(prev) = m.insert(key_of(r), r.clone()) {
                problems.push(format!("{who} emitted {} twice: {} and {}", key_of(r), Value::Object(prev), Value::Object(r.clone())));
            }
        }
        m
    };
    let s = by_key(spark, "Spark", &mut problems);
    let e = by_key(eddy, "eddy", &mut problems);
    for (k, srow) in &s {
        let Some(erow) = e.get(k) else {
            problems.push(format!("only Spark emitted {}", Value::Object(srow.clone())));
            continue;
        };
        let columns = |r: &Row| r.keys().cloned().collect::<std::collections::BTreeSet<_>>();
        if columns(srow) != columns(erow) {
            problems.push(format!("{k}: Spark's columns {:?}, eddy's {:?}", columns(srow), columns(erow)));
        }
        for (col, sv) in srow {
            if let Some(ev) = erow.get(col).filter(|ev| !same_value(sv, ev)) {
                problems.push(format!("{k}: {col} is {sv} in Spark, {ev} in eddy"));
            }
        }
    }
    for (k, erow) in &e {
        if !s.contains_key(k) {
            problems.push(format!("only eddy emitted {}", Value::Object(erow.clone())));
        }
    }
    problems
}

/// Runs query `name` of queries.json on eddy and compares its output with Spark's golden.
fn check(name: &str) {
    let spec = spec();
    let query = &spec["queries"][name];
    assert!(query.is_object(), "queries.json has no query {name}");
    let source_name = str_of(query, "source");
    let source = &spec["inputs"][source_name];
    let input = std::fs::read_to_string(dir().join(str_of(source, "file"))).expect("input file");
    let lines: Vec<&str> = input.lines().filter(|l| !l.trim().is_empty()).collect();

    let broker = Broker::mock();
    let topic = unique(source_name);
    broker.create_topic(&topic, 1);
    produce(&broker.bootstrap, &topic, lines.iter().map(|l| (None, l.to_string(), Some(0))));
    let out = unique(&format!("{name}-out"));
    let text = pipeline(name, source_name, source, str_of(query, "sql"), &broker.bootstrap, &topic, &out);
    let run = Running::start(broker.plan(&text, 1), "spark-compat", true, false);
    let metrics = run.metrics.clone();
    let summary = run.join();
    assert_eq!(summary.records_in, lines.len() as u64, "{name}: eddy read every input record");
    let late = metric_sum(&metrics.render(), "eddy_late_records_total");

    let records = read(&broker.bootstrap, &out);
    if let Ok(dump) = std::env::var("EDDY_SPARK_COMPAT_DUMP") {
        // eddy's rows exactly as written (a JSON round trip through serde_json could move a
        // double by an ulp), sorted, for diffing by hand.
        let path = Path::new(&dump).join(format!("{name}.eddy.jsonl"));
        let mut lines: Vec<String> = records.iter().map(|r| r.value_str().to_string() + "\n").collect();
        lines.sort();
        std::fs::write(&path, lines.concat()).unwrap();
        eprintln!("{name}: eddy's rows written to {}", path.display());
    }
    let eddy: Vec<Row> = records.iter().map(|r| parse_row(r.value_str(), "eddy output")).collect();
    let golden_path = dir().join(format!("{name}.spark.jsonl"));
    let golden = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| panic!("{}: {e}", golden_path.display()));
    let spark: Vec<Row> = golden.lines().filter(|l| !l.trim().is_empty()).map(|l| parse_row(l, "golden")).collect();
    assert!(!spark.is_empty(), "{name}: the golden file is empty");

    let problems = differences(&spark, &eddy, &strings(&query["key"]));
    eprintln!(
        "{name}: Spark {} rows, eddy {} rows, eddy dropped {late} late records, {} differences",
        spark.len(),
        eddy.len(),
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{name}: eddy's output differs from Spark's ({} rows vs {}):\n{}",
        spark.len(),
        eddy.len(),
        problems.iter().take(50).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn tutorial_hourly_counts_match_spark() {
    check("tutorial");
}

#[test]
fn sliding_counts_and_distinct_devices_match_spark() {
    check("sliding");
}

#[test]
fn order_aggregates_with_having_case_cast_and_filter_match_spark() {
    check("orders");
}

/// Spark rounds a double as `BigDecimal(Double.toString(x)).setScale(d, HALF_UP)`, i.e. half up
/// on the shortest decimal form: round(38.785, 2) is 38.79 and round(55.894999999999996, 2) is
/// 55.89, where the naive `(x * 10^d).round() / 10^d` gives 38.78 and 55.9.
#[test]
fn round_of_every_order_matches_spark() {
    check("rounding");
}

#[test]
fn every_recorded_query_is_checked() {
    let spec = spec();
    let mut names: Vec<&String> = spec["queries"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["orders", "rounding", "sliding", "tutorial"], "add a test for each query in queries.json");
    for name in names {
        assert!(dir().join(format!("{name}.spark.jsonl")).exists(), "{name}.spark.jsonl is missing; run spark_reference.py");
    }
}

#[test]
fn comparison_tolerates_only_double_rounding() {
    let row = |v: Value| v.as_object().unwrap().clone();
    let key = ["k".to_string()];
    let spark = [row(serde_json::json!({"k": "a", "x": 0.1, "n": 3}))];
    assert!(differences(&spark, &[row(serde_json::json!({"k": "a", "x": 0.1 + 1e-12, "n": 3}))], &key).is_empty());
    assert_eq!(differences(&spark, &[row(serde_json::json!({"k": "a", "x": 0.1001, "n": 3}))], &key).len(), 1);
    assert_eq!(differences(&spark, &[row(serde_json::json!({"k": "a", "x": 0.1, "n": 4}))], &key).len(), 1);
    assert_eq!(differences(&spark, &[row(serde_json::json!({"k": "a", "x": 0.1}))], &key).len(), 1);
    assert_eq!(differences(&spark, &[], &key).len(), 1);
}
