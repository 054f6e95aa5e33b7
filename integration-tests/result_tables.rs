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

/// The events as records keyed by device (so both events of a device share a partition).
fn keyed_by_device(events: &[eddy::gen::tutorial::Event]) -> Vec<(Option<String>, String, Option<i32>)> {
    events
        .iter()
        .map(|e| {
            let mut s = String::new();
            e.json(eddy::gen::tutorial::TimeFormat::Rfc3339, &mut s);
            (Some(e.device.to_string()), s, None)
        })
        .collect()
}

/// Opens and Closes per action, from a `GROUP BY action` answer (0 for an action not there).
fn per_action(rows: &[serde_json::Value]) -> (u64, u64) {
    let get = |a: &str| rows.iter().find(|r| r["action"] == a).map_or(0, |r| r["n"].as_u64().unwrap());
    (get("Open"), get("Close"))
}

#[test]
fn the_live_table_answers_queries_from_committed_state_while_the_input_arrives() {
    let Some(broker) = Broker::real("the_live_table_answers_queries_from_committed_state_while_the_input_arrives") else { return };
    let (input, out, app) = (unique("live-in"), unique("live-out"), unique("live"));
    broker.create_topic(&input, 4);
    broker.create_topic(&out, 1);
    // Keyed by device: the query repartitions by action, so the table's groups live in the
    // operator partitions the exchange sends them to.
    let text = complete_pipeline(&app, &broker.bootstrap, &input, &out, None).replace("    partition_key: [action]\n", "");
    let p = broker.plan(&text, 4);
    let served = Served::start(p, "a");
    let spec = TutorialSpec { events: 100_000, seed: 23, late_fraction: 0.01, late_by: 5 * HOUR, ..TutorialSpec::default() };
    let events = generate(&spec);
    let records = keyed_by_device(&events);
    let sum = "SELECT action, sum(count) AS n FROM hourly_counts GROUP BY action";
    let mut last: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut produced = 0u64;
    for chunk in records.chunks(20_000) {
        produce(&broker.bootstrap, &input, chunk.to_vec());
        produced += chunk.len() as u64;
        // Every answer is a committed state: totals only grow, and never pass what was sent.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let Some(rows) = served.try_rows(sum) else {
                assert!(std::time::Instant::now() < deadline, "the table was not published within 90 s");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            };
            let (open, close) = per_action(&rows);
            assert!(open + close <= produced, "{open} + {close} counted of {produced} sent");
            let table: BTreeMap<(String, String), u64> = served
                .rows("SELECT action, window_start, count FROM hourly_counts")
                .iter()
                .map(|r| {
                    (
                        (r["action"].as_str().unwrap().to_string(), r["window_start"].as_str().unwrap().to_string()),
                        r["count"].as_u64().unwrap(),
                    )
                })
                .collect();
            for (k, before) in &last {
                assert!(table.get(k).is_some_and(|now| now >= before), "window {k:?} went from {before} to {:?}", table.get(k));
            }
            last = table;
            if open + close == produced {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the table reached {} of {produced} within 90 s", open + close);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    assert_eq!(per_action(&served.rows(sum)), (50_000, 50_000));
    // The whole table and its top 10 equal the batch result, late events included.
    let expected = hourly_counts(&events, i64::MAX);
    assert_eq!(last, expected);
    let mut top: Vec<(&(String, String), &u64)> = expected.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0 .1.cmp(&b.0 .1)).then(a.0 .0.cmp(&b.0 .0)));
    let want: Vec<String> = top.iter().take(10).map(|((a, w), c)| format!("{a},{w},{c}")).collect();
    let (status, csv) =
        served.ask("SELECT action, window_start, count FROM hourly_counts ORDER BY count DESC, window_start, action LIMIT 10", true);
    assert_eq!(status, 200, "{csv}");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("action,window_start,count"));
    assert_eq!(lines.collect::<Vec<_>>(), want);
    let (status, body) = served.ask("SELECT * FROM nope", false);
    assert!(status == 404 && body.contains("hourly_counts"), "{status} {body}");
    let (status, body) = served.ask("SELECT nope FROM hourly_counts", false);
    assert_eq!(status, 400, "{body}");
    served.shutdown();
}

/// `action,window_start` → count, from a `/query` answer of the whole table.
fn table_of(body: &str) -> BTreeMap<(String, String), u64> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            ((r["action"].as_str().unwrap().to_string(), r["window_start"].as_str().unwrap().to_string()), r["count"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn query_answers_across_sigkills_are_always_a_committed_state() {
    let Some(broker) = Broker::real("query_answers_across_sigkills_are_always_a_committed_state") else { return };
    let (input, out, app) = (unique("kill-query-in"), unique("kill-query-out"), unique("kill-query"));
    broker.create_topic(&input, 4);
    let n = 200_000u64;
    let events = generate(&TutorialSpec { events: n, seed: 31, ..TutorialSpec::default() });
    produce(&broker.bootstrap, &input, tutorial_records(&events));
    // A fixed port, so that each restarted process answers where the last one did.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let text = complete_pipeline(&app, &broker.bootstrap, &input, &out, None)
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        .replace("  properties: {  }", "  static_membership: true\n  properties: {  }");
    let file = write_pipeline(&text);
    let log = temp_dir("kill-query-log").join("eddy.log");
    let sql = "SELECT action, window_start, count FROM hourly_counts";
    let mut last: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut answers = 0;
    let mut rng = eddy::gen::rng::Rng::new(3);
    // Each run is killed once the table has grown past its target; the last one is not.
    let targets = [n / 5, 2 * n / 5, 3 * n / 5, n];
    for (run, &target) in targets.iter().enumerate() {
        let mut child = spawn_eddy(&["run", "-c", file.to_str().unwrap(), "--instance-id", "q", "--log", "warn"], &log);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        loop {
            assert!(child.try_wait().unwrap().is_none(), "eddy exited on its own in run {run}; see {}", log.display());
            assert!(std::time::Instant::now() < deadline, "run {run} did not reach {target} within 180 s; see {}", log.display());
            // 503 while the run joins its group and restores; an error while it starts listening.
            let Some((200, body)) = http_get(addr, &format!("/query?sql={}", eddy::query::percent_encode(sql))) else {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            };
            let table = table_of(&body);
            answers += 1;
            for (k, before) in &last {
                let now = table.get(k).copied().unwrap_or(0);
                assert!(now >= *before, "run {run}: window {k:?} went from {before} to {now}: an answer held what was not committed");
            }
            let total: u64 = table.values().sum();
            assert!(total <= n);
            last = table;
            if total >= target {
                break;
            }
        }
        eprintln!("run {run}: {} of {n} counted after {answers} answers; SIGKILL", last.values().sum::<u64>());
        if run + 1 < targets.len() {
            // The random moment: the kill lands wherever the run is by then.
            std::thread::sleep(std::time::Duration::from_millis(rng.below(100)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(answers > 10, "the table was asked while it grew ({answers} answers)");
    assert_eq!(last, hourly_counts(&events, i64::MAX), "the last answer is the whole input, counted once");
}

#[test]
fn two_instances_answer_for_the_whole_table_each_asking_the_other() {
    let Some(broker) = Broker::real("two_instances_answer_for_the_whole_table_each_asking_the_other") else { return };
    let (input, out, app) = (unique("two-in"), unique("two-out"), unique("two"));
    broker.create_topic(&input, 4);
    broker.create_topic(&out, 1);
    let events = generate(&TutorialSpec { events: 40_000, seed: 41, ..TutorialSpec::default() });
    let records = keyed_by_device(&events);
    produce(&broker.bootstrap, &input, records);
    // Two instances of one app, each with its own state directory, sharing the partitions.
    let text = |_: u8| complete_pipeline(&app, &broker.bootstrap, &input, &out, None).replace("    partition_key: [action]\n", "");
    let a = Served::start(broker.plan(&text(0), 4), "a");
    let b = Served::start(broker.plan(&text(1), 4), "b");
    let sql = "SELECT action, window_start, count FROM hourly_counts ORDER BY count DESC, window_start, action";
    let expected = hourly_counts(&events, i64::MAX);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let (from_a, from_b) = loop {
        let answers: Vec<(u16, String)> = [&a, &b].iter().map(|s| s.ask(sql, false)).collect();
        // Each instance answers for every partition: its own, and those it fetched from the other.
        let whole: Vec<serde_json::Value> = answers
            .iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| serde_json::from_str::<serde_json::Value>(body).unwrap())
            .filter(|v| {
                v["tables"][0]["answered"] == serde_json::json!([0, 1, 2, 3]) && !v["tables"][0]["remote"].as_array().unwrap().is_empty()
            })
            .filter(|v| table_of(&v.to_string()) == expected)
            .collect();
        if let [x, y] = whole.as_slice() {
            break (x.clone(), y.clone());
        }
        assert!(std::time::Instant::now() < deadline, "both instances did not answer for the whole input within 120 s: {answers:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(from_a["rows"], from_b["rows"], "the same answer from either instance, in the same order");
    let remote = |v: &serde_json::Value| -> Vec<i64> {
        v["tables"][0]["remote"].as_array().unwrap().iter().map(|r| r["partition"].as_i64().unwrap()).collect()
    };
    let (ra, rb) = (remote(&from_a), remote(&from_b));
    assert!(ra.iter().all(|p| !rb.contains(p)), "a partition is owned by one instance: {ra:?} {rb:?}");
    assert_eq!(ra.len() + rb.len(), 4, "each asked the other for the partitions it does not own: {ra:?} {rb:?}");
    // With partial=true an instance answers for its own partitions only when it is not asked
    // to fetch: the state endpoint refuses what it does not own, naming it.
    let (status, body) = eddy::query::client::get(
        a.addr,
        &format!("/query?state=hourly_counts&partitions={}", rb.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")),
        "application/json",
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["partitions"].as_array().unwrap().len(), rb.len(), "a holds the partitions b fetched from it: {body}");
    b.shutdown();
    a.shutdown();
}

#[test]
fn eddy_query_prints_the_answer_as_a_table_or_csv_and_fails_with_the_reason() {
    let broker = Broker::mock();
    let (input, out, app) = (unique("cli-query-in"), unique("cli-query-out"), unique("cli-query"));
    broker.create_topic(&input, 1);
    let events = generate(&TutorialSpec { events: 2_000, seed: 9, ..TutorialSpec::default() });
    produce(&broker.bootstrap, &input, tutorial_records(&events).into_iter().map(|(k, v, _)| (k, v, Some(0))));
    let served = Served::start(broker.plan(&complete_pipeline(&app, &broker.bootstrap, &input, &out, None), 1), "a");
    let sum = "SELECT action, sum(count) AS n FROM hourly_counts GROUP BY action ORDER BY action";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while served.try_rows(sum).map(|r| per_action(&r)) != Some((1_000, 1_000)) {
        assert!(std::time::Instant::now() < deadline, "the table did not count the 2,000 events within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = served.addr.to_string();
    let query = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_eddy")).args(["query", "--url", &url]).args(args).output().expect("run eddy query")
    };
    let table = query(&[sum]);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    assert_eq!(
        String::from_utf8_lossy(&table.stdout),
        "+------+----+\n|action|n   |\n+------+----+\n|Close |1000|\n|Open  |1000|\n+------+----+\n2 rows\n"
    );
    let csv = query(&["--format", "csv", sum]);
    assert_eq!(String::from_utf8_lossy(&csv.stdout), "action,n\nClose,1000\nOpen,1000\n");
    let unknown = query(&["SELECT * FROM nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("the query failed (404): the pipeline has no query named nope; its queries: hourly_counts"), "{stderr}");
    served.shutdown();
}

#[test]
fn the_top_10_written_across_aborted_cycles_is_the_table_s_first_10() {
    let Some(broker) = Broker::real("the_top_10_written_across_aborted_cycles_is_the_table_s_first_10") else { return };
    let (input, out, app) = (unique("top-in"), unique("top-out"), unique("top"));
    broker.create_topic(&input, 4);
    broker.create_topic(&out, 1);
    let events = generate(&TutorialSpec { events: 60_000, seed: 12, ..TutorialSpec::default() });
    produce(&broker.bootstrap, &input, tutorial_records(&events));
    let text = complete_pipeline(&app, &broker.bootstrap, &input, &out, None)
        .replace(
            "GROUP BY action, window(time, '1 hour')",
            "GROUP BY action, window(time, '1 hour')\n      ORDER BY count DESC, window_start, action LIMIT 10",
        )
        .replace("commit_interval: 50ms", "commit_interval: 50ms\ncommit_max_records: 2000");
    assert!(text.contains("LIMIT 10") && text.contains("commit_max_records: 2000"), "{text}");
    // Every third cycle is aborted after its records and changelog were sent: the task's
    // state (the table and the rows written) is reloaded from the last commit each time.
    let opts = eddy::engine::RunOptions { instance_id: "a".into(), stop_at_end: true, flush_at_end: false, inject_abort_every: Some(3) };
    let summary = Running::start_with(broker.plan(&text, 4), opts).join();
    assert!(summary.aborts > 0, "cycles were aborted");
    let mut table: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut tombstones = 0;
    let mut records = read(&broker.bootstrap, &out);
    records.sort_by_key(|r| (r.partition, r.offset));
    for r in &records {
        let key: serde_json::Value = serde_json::from_slice(r.key.as_deref().expect("a keyed row")).unwrap();
        let k = (key["action"].as_str().unwrap().to_string(), key["window_start"].as_str().unwrap().to_string());
        match &r.value {
            Some(_) => {
                let v: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
                table.insert(k, v["count"].as_u64().unwrap());
            }
            None => {
                tombstones += 1;
                assert!(table.remove(&k).is_some(), "a tombstone for {k:?}, which the committed output never held");
            }
        }
    }
    assert!(tombstones > 0, "rows left the first 10");
    let mut all: Vec<((String, String), u64)> = hourly_counts(&events, i64::MAX).into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0 .1.cmp(&b.0 .1)).then(a.0 .0.cmp(&b.0 .0)));
    let expected: BTreeMap<(String, String), u64> = all.into_iter().take(10).collect();
    assert_eq!(table, expected, "the committed output, read as a table, is the first 10 of the whole input");
}
