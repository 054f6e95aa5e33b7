//! The `eddy` binary as a user runs it: exit codes (0 ok, 2 bad usage or config, 1 runtime
//! failure), errors that name the file, line and column, explain, gen, and the demo.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy")).args(args).env_remove("EDDY_KAFKA_BOOTSTRAP_SERVERS").output().expect("run eddy")
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config").join(name).display().to_string()
}

fn write_temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("eddy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn validate_accepts_every_example_pipeline() {
    for entry in std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = eddy(&["validate", "-c", path.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn a_bad_pipeline_exits_2_with_file_line_and_column() {
    let good = std::fs::read_to_string(example("tutorial.yaml")).unwrap();
    let bad = write_temp("bad.yaml", &good.replace("FROM events", "FROM evnts"));
    let out = eddy(&["validate", "-c", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown source evnts"), "{err}");
    assert!(err.contains(&format!("{bad}:31:12")), "{err}");
    assert!(err.contains("FROM evnts"), "shows the line: {err}");
    // run refuses it the same way, before touching Kafka
    assert_eq!(eddy(&["run", "-c", &bad]).status.code(), Some(2));
    assert_eq!(eddy(&["validate", "-c", "/no/such/file.yaml"]).status.code(), Some(2));
    assert_eq!(eddy(&["validate"]).status.code(), Some(2), "missing argument is a usage error");
}

#[test]
fn validate_warns_about_an_unbounded_complete_mode_table_and_names_the_field() {
    let good = std::fs::read_to_string(example("tutorial.yaml")).unwrap();
    let complete = write_temp("complete.yaml", &good.replace("output_mode: append", "output_mode: complete"));
    let out = eddy(&["validate", "-c", &complete]);
    assert!(out.status.success(), "a warning, not an error: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: query hourly_counts: complete mode keeps every window for ever"), "{err}");
    assert!(err.contains("sinks.counts.retention"), "{err}");
    assert!(err.contains(&format!("{complete}:25:18")), "points at output_mode: {err}");
    let bounded = write_temp("bounded.yaml", &good.replace("output_mode: append", "output_mode: complete\n    retention: 7d"));
    let out = eddy(&["validate", "-c", &bounded]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "bounded: no warning");
    let wrong = write_temp("wrong.yaml", &good.replace("output_mode: append", "output_mode: update\n    retention: 7d"));
    let out = eddy(&["validate", "-c", &wrong]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retention bounds a complete-mode result table") && err.contains(&format!("{wrong}:26:")), "{err}");
}

#[test]
fn explain_prints_the_plan() {
    let out = eddy(&["explain", "-c", &example("tutorial.yaml")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tumbling window 1h") && text.contains("tutorial-counts-hourly_counts-changelog"), "{text}");
}

#[test]
fn functions_lists_the_library_by_name_and_kind() {
    let out = eddy(&["functions", "regexp"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.contains(&"regexp_replace") && names.contains(&"regexp_extract"), "{text}");
    assert!(!names.contains(&"hour"), "{text}");
    let aggregates = String::from_utf8(eddy(&["functions", "--aggregates"]).stdout).unwrap();
    assert!(aggregates.lines().any(|l| l.starts_with("collect_list ")), "{aggregates}");
    assert!(!aggregates.lines().any(|l| l.starts_with("upper ")), "{aggregates}");
    let page = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/functions.md")).unwrap();
    assert_eq!(String::from_utf8(eddy(&["functions", "--markdown"]).stdout).unwrap(), page, "docs/functions.md is the binary's listing");
}

#[test]
fn gen_is_deterministic_and_counts_right() {
    let a = eddy(&["gen", "tutorial", "--events", "1000", "--seed", "3"]);
    let b = eddy(&["gen", "tutorial", "--events", "1000", "--seed", "3"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    assert_eq!(text.lines().count(), 1000);
    assert_eq!(text.lines().filter(|l| l.contains("\"Open\"")).count(), 500);
    assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
}

#[test]
fn run_against_an_unreachable_broker_retries_for_the_recovery_limit_then_exits_1() {
    let good = std::fs::read_to_string(example("tutorial.yaml")).unwrap();
    let text = good.replace("localhost:9092", "127.0.0.1:1\n  recovery_limit: 20s").replace("127.0.0.1:9464", "127.0.0.1:0");
    let path = write_temp("unreachable.yaml", &text);
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["run", "-c", &path])
        .env("EDDY_STATE_DIR", std::env::temp_dir().join(format!("eddy-cli-state-{}", std::process::id())))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unreachable or did not answer in time; starting the engine again in-process"), "it retried first: {stderr}");
    assert!(stderr.contains("error: gave up recovering after"), "the last line says why it stopped: {stderr}");
}

#[test]
fn the_demo_prints_the_tutorial_results() {
    let out = eddy(&["demo", "--events", "20000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("totals: Open 10000, Close 10000"), "{text}");
    assert!(text.contains("(96 rows;"), "{text}");
    assert!(text.contains("Opens (#) and Closes (=) per hour"), "{text}");
}

/// `eddy gen` stamps records with their 2016 event times: the topic it creates must not
/// delete them by time (the broker's default retention is 7 days). Needs the real broker.
#[test]
fn a_topic_written_by_gen_has_time_retention_off() {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP_SERVERS") else {
        eprintln!("SKIPPED a_topic_written_by_gen_has_time_retention_off: KAFKA_BOOTSTRAP_SERVERS is not set");
        return;
    };
    let topic = format!(
        "gen-retention-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    let out = eddy(&["gen", "tutorial", "--events", "1000", "--topic", &topic, "--bootstrap-servers", &bootstrap]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let spec = ResourceSpecifier::Topic(&topic);
    let described = rt.block_on(admin.describe_configs([&spec], &AdminOptions::new())).unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    let retention = resource.get("retention.ms").and_then(|e| e.value.clone());
    assert_eq!(retention.as_deref(), Some("-1"), "time retention is off");
}
