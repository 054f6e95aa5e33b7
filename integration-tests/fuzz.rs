//! Fuzz targets (proptest over arbitrary and mutated bytes): the JSON, CSV, Avro and
//! Confluent wire-format decoders and the SQL front end (sqlparser + planner) must return an
//! error, never panic, on any input. Allocation stays bounded: inputs are capped at 4 KiB and
//! Avro lengths by the decoder's allocation limit.
//!
//! Size: EDDY_FUZZ_CASES cases per target (default 2,000), or EDDY_FUZZ_SECONDS seconds per
//! target (the long run: `EDDY_FUZZ_SECONDS=600 cargo test --release --test fuzz -- --nocapture
//! --test-threads 1`). Each target prints how many cases it ran.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fuzz_targets;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Runs `check` on values of `strategy` for the configured number of cases or seconds.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value)) {
    let seconds: Option<u64> = std::env::var("EDDY_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok());
    let cases: u32 = std::env::var("EDDY_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let started = Instant::now();
    let mut total: u64 = 0;
    let mut round = 0u32;
    loop {
        let batch = if deadline.is_some() { 5_000 } else { cases };
        let mut runner = TestRunner::new(Config {
            cases: batch,
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(u64::from(round) * 7919 + 1),
            ..Config::default()
        });
        let result = runner.run(&strategy, |v| {
            check(v);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        total += u64::from(batch);
        round += 1;
        match deadline {
            Some(d) if Instant::now() < d => continue,
            _ => break,
        }
    }
    eprintln!("fuzz {name}: {total} cases in {:.1}s, no panic", started.elapsed().as_secs_f64());
}

/// Arbitrary bytes, and valid samples with bytes flipped, inserted or cut.
fn bytes_like(samples: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (0..samples.len(), proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 0..6)).prop_map(move |(i, edits)| {
        let mut b = samples[i].as_bytes().to_vec();
        for (at, byte, op) in edits {
            let at = usize::from(at) % (b.len() + 1);
            match op {
                0 if at < b.len() => b[at] = byte,
                1 => b.insert(at, byte),
                _ => b.truncate(at),
            }
        }
        b
    });
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..4096), mutated]
}

#[test]
fn json_decoder_never_panics() {
    let d = fuzz_targets::json_decoder();
    fuzz("json", bytes_like(fuzz_targets::JSON_SAMPLES), |b| fuzz_targets::decode_json(&d, &b));
}

#[test]
fn csv_decoder_never_panics() {
    let d = fuzz_targets::csv_decoder();
    fuzz("csv", bytes_like(fuzz_targets::CSV_SAMPLES), |b| fuzz_targets::decode_csv(&d, &b));
}

#[test]
fn csv_lines_round_trip() {
    let strategy = proptest::collection::vec(proptest::option::of(".{0,40}"), 1..8);
    fuzz("csv-round-trip", strategy, |fields| fuzz_targets::csv_round_trip(&fields));
}

#[test]
fn avro_decoder_never_panics() {
    let d = fuzz_targets::avro_decoder();
    fuzz("avro", proptest::collection::vec(any::<u8>(), 0..4096), |b| fuzz_targets::decode_avro(&d, &b));
}

#[test]
fn avro_wire_format_decoder_never_panics() {
    let d = fuzz_targets::wire_decoder();
    let framed = proptest::collection::vec(any::<u8>(), 0..512).prop_map(|mut b| {
        let mut out = vec![0, 0, 0, 0, 1];
        out.append(&mut b);
        out
    });
    fuzz("avro-wire", prop_oneof![proptest::collection::vec(any::<u8>(), 0..512), framed], |b| fuzz_targets::decode_wire(&d, &b));
}

#[test]
fn sql_front_end_never_panics() {
    let tokens = proptest::collection::vec(proptest::sample::select(fuzz_targets::SQL_TOKENS), 0..40).prop_map(|t| t.join(" "));
    let mutated = bytes_like(fuzz_targets::SQL_SAMPLES).prop_map(|b| String::from_utf8_lossy(&b).into_owned());
    fuzz("sql", prop_oneof![tokens, mutated, ".{0,200}"], |sql| fuzz_targets::plan_sql(&sql));
}
