use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use crate::gen::nexmark::{Event, NexmarkSpec};
use crate::gen::nexmark_json::{write_json, KINDS};

/// Writes `<kind>.json` for `spec` into a fresh directory.
fn nexmark_dir(spec: &NexmarkSpec, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-bench-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<_> = KINDS.iter().map(|k| std::fs::File::create(dir.join(format!("{k}.json"))).unwrap()).collect();
    let mut line = String::new();
    for e in spec.events() {
        line.clear();
        write_json(&e, false, &mut line);
        line.push('\n');
        let slot = KINDS.iter().position(|k| *k == e.kind()).unwrap();
        files[slot].write_all(line.as_bytes()).unwrap();
    }
    dir
}

fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nexmark").join(name)
}

#[test]
fn every_nexmark_pipeline_runs_in_engine_over_its_sources() {
    let spec = NexmarkSpec { events: 5_000, rate: 1_000, ..NexmarkSpec::default() };
    let dir = nexmark_dir(&spec, "all");
    let events = spec.events().collect::<Vec<Event>>();
    let count = |kind: &str| events.iter().filter(|e| e.kind() == kind).count() as u64;
    let mut seen = 0;
    for entry in std::fs::read_dir(config("")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "q5.yaml") {
            // Two stateful operators: measured end to end only, and the benchmark says so.
            let e = in_engine(&path, &dir, 1_000).unwrap_err().to_string();
            assert!(e.contains("runs queries of one stateful operator"), "{e}");
            continue;
        }
        let r = in_engine(&path, &dir, 1_000).unwrap();
        let expected = match r.query.as_str() {
            "q3" | "q8" => count("person") + count("auction"),
            _ => count("bid"),
        };
        assert_eq!(r.events, expected, "{}", r.query);
        seen += 1;
    }
    assert_eq!(seen, 8);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pass_through_filter_and_window_queries_give_the_expected_rows() {
    // 5 s of event time at 1,000 events/s: 4,600 bids in windows [0,10) s.
    let spec = NexmarkSpec { events: 5_000, rate: 1_000, ..NexmarkSpec::default() };
    let dir = nexmark_dir(&spec, "rows");
    let bids: Vec<_> = spec
        .events()
        .filter_map(|e| match e {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(in_engine(&config("q0.yaml"), &dir, 1_000).unwrap().output, bids.len() as u64);
    let q2 = bids.iter().filter(|b| b.auction % 123 == 0).count() as u64;
    assert!(q2 > 0);
    assert_eq!(in_engine(&config("q2.yaml"), &dir, 1_000).unwrap().output, q2);
    // The base time is a multiple of 10 s, so 5 s of bids fall into one tumbling window.
    assert_eq!(in_engine(&config("q7-max.yaml"), &dir, 1_000).unwrap().output, 1);
    // q7: the bids with the window's highest price (ties kept).
    let top = bids.iter().map(|b| b.price).max().unwrap();
    let q7 = bids.iter().filter(|b| b.price == top).count() as u64;
    assert_eq!(in_engine(&config("q7.yaml"), &dir, 1_000).unwrap().output, q7);
    // q5: one row per (auction, sliding window) pair; each bid is in 5 windows.
    let mut pairs = std::collections::BTreeSet::new();
    for b in &bids {
        let t = b.date_time / 2_000 * 2_000;
        for k in 0..5 {
            pairs.insert((b.auction, t - k * 2_000));
        }
    }
    assert_eq!(in_engine(&config("q5-counts.yaml"), &dir, 1_000).unwrap().output, pairs.len() as u64);
    std::fs::remove_dir_all(dir).unwrap();
}
