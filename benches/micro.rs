//! Micro-benchmarks of the per-record hot paths: JSON decode, window update, join probe,
//! state write batch (sled) and changelog encoding (an operator's `take_changes`).
//!
//!     cargo bench --bench micro                 # all
//!     cargo bench --bench micro -- json_decode  # one group
//!
//! Inputs are the tutorial's events and Nexmark's (eddy gen), built in memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eddy::bench::{build_operator, Driver};
use eddy::formats::JsonDecoder;
use eddy::gen::nexmark::{Event, NexmarkSpec};
use eddy::gen::nexmark_json::write_json;
use eddy::gen::tutorial::{self, TutorialSpec};
use eddy::types::{Row, Value};

fn pipeline(file: &str) -> eddy::pipeline::Pipeline {
    eddy::pipeline::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

fn tutorial_lines(n: u64) -> Vec<String> {
    let spec = TutorialSpec { events: n, ..TutorialSpec::default() };
    tutorial::generate(&spec)
        .iter()
        .map(|e| {
            let mut s = String::new();
            e.json(spec.time_format, &mut s);
            s
        })
        .collect()
}

fn nexmark_lines(n: u64, kind: &str) -> Vec<String> {
    NexmarkSpec { events: n, ..NexmarkSpec::default() }
        .events()
        .filter(|e: &Event| e.kind() == kind)
        .map(|e| {
            let mut s = String::new();
            write_json(&e, false, &mut s);
            s
        })
        .collect()
}

fn json_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("json_decode");
    for (name, file, source, lines) in [
        ("tutorial", "config/tutorial.yaml", "events", tutorial_lines(10_000)),
        ("nexmark_bid_q0", "config/nexmark/q0.yaml", "bid", nexmark_lines(10_000, "bid")),
    ] {
        let p = pipeline(file);
        let q = &p.queries[0];
        let schema = &p.config().sources[source].schema.schema;
        let decoder = JsonDecoder::new(schema, &q.inputs[0].scan.needed);
        let mut row = vec![Value::Null; q.inputs[0].scan.schema.len()];
        g.throughput(Throughput::Elements(lines.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for l in &lines {
                    decoder.decode(l.as_bytes(), &mut row[..schema.len()]).unwrap();
                }
            })
        });
    }
    g.finish();
}

fn operator_rows(file: &str, lines: &[(usize, String)]) -> (eddy::pipeline::Pipeline, Vec<(usize, Row)>) {
    let p = pipeline(file);
    let mut d = Driver::new(&p).unwrap();
    let rows = lines.iter().filter_map(|(side, l)| d.operator_row(*side, l.as_bytes()).map(|r| (*side, r))).collect();
    (p, rows)
}

fn window_update(c: &mut Criterion) {
    let mut g = c.benchmark_group("window_update");
    for (name, file, lines) in [
        ("tutorial_hourly", "config/tutorial.yaml", tutorial_lines(10_000)),
        ("q5_sliding_10s_2s", "config/nexmark/q5-counts.yaml", nexmark_lines(20_000, "bid")),
    ] {
        let input: Vec<(usize, String)> = lines.into_iter().map(|l| (0, l)).collect();
        let (p, rows) = operator_rows(file, &input);
        g.throughput(Throughput::Elements(rows.len() as u64));
        let mut out = Vec::new();
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || build_operator(&p.queries[0]).unwrap(),
                |op| {
                    for (side, r) in &rows {
                        op.process(*side, r, i64::MIN, &mut out);
                    }
                    out.clear();
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn join_probe(c: &mut Criterion) {
    let mut g = c.benchmark_group("join_probe");
    let spec = NexmarkSpec { events: 50_000, ..NexmarkSpec::default() };
    let lines: Vec<(usize, String)> = spec
        .events()
        .filter(|e| e.kind() != "bid")
        .map(|e| {
            let mut s = String::new();
            write_json(&e, false, &mut s);
            (usize::from(e.kind() == "auction"), s)
        })
        .collect();
    let (p, rows) = operator_rows("config/nexmark/q8.yaml", &lines);
    g.throughput(Throughput::Elements(rows.len() as u64));
    let mut out = Vec::new();
    g.bench_function("q8_person_auction", |b| {
        b.iter_batched_ref(
            || build_operator(&p.queries[0]).unwrap(),
            |op| {
                for (side, r) in &rows {
                    op.process(*side, r, i64::MIN, &mut out);
                }
                out.clear();
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn state_write_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("state_write_batch");
    let dir = std::env::temp_dir().join(format!("eddy-micro-{}", std::process::id()));
    let store = eddy::state::StateStore::open(&dir, 32 << 20).unwrap();
    let tree = store.tree("bench").unwrap();
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..1000u32).map(|i| (format!("\u{1}key-{i:08}").into_bytes(), vec![7u8; 32])).collect();
    g.throughput(Throughput::Elements(entries.len() as u64));
    let mut offset = 0i64;
    g.bench_function("sled_1000_entries", |b| {
        b.iter(|| {
            offset += 1;
            tree.apply(entries.iter().map(|(k, v)| (k.as_slice(), Some(v.as_slice()))), Some(offset)).unwrap();
        })
    });
    g.finish();
    drop(tree);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

fn changelog_encoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("changelog_encoding");
    let input: Vec<(usize, String)> = nexmark_lines(20_000, "bid").into_iter().map(|l| (0, l)).collect();
    let (p, rows) = operator_rows("config/nexmark/q5-counts.yaml", &input);
    let mut op = build_operator(&p.queries[0]).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("q5_take_changes", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for (side, r) in &rows {
                    op.process(*side, r, i64::MIN, &mut out);
                }
                out.clear();
                let t = Instant::now();
                op.take_changes(&mut |k: &[u8], v: Option<&[u8]>| {
                    buf.extend_from_slice(k);
                    buf.extend_from_slice(v.unwrap_or_default());
                });
                total += t.elapsed();
                buf.clear();
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = json_decode, window_update, join_probe, state_write_batch, changelog_encoding
}
criterion_main!(micro);
