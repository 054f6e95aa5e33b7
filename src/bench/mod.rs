//! `eddy bench` (hidden): throughput of pipeline queries, in-engine (records from memory
//! through decode, operator and encode; no broker) or end to end through a real broker with
//! exactly-once (see `e2e`). Each query runs in its own child process so CPU time and peak
//! RSS are its own. Input: a directory with one NDJSON file per source, `<source>.json`
//! (`eddy gen nexmark --dir`, `eddy gen tutorial > events.json`). Depends on `pipeline`,
//! `gen` and the driver's components; the end-to-end mode also on `kafka`.

mod driver;
mod e2e;
mod input;
mod usage;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

pub use crate::runtime::task::build_operator;
pub use driver::{Counts, Driver};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Decode, operators and encode on records in memory; no broker.
    InEngine,
    /// Produce the input to a real broker, then time `eddy run --stop-at-end` (exactly-once).
    E2e,
}

/// `eddy bench`
#[derive(Args)]
pub struct BenchArgs {
    /// Pipeline files; the first query of each is measured.
    #[arg(long = "query", required = true)]
    pub queries: Vec<PathBuf>,
    /// Directory holding `<source>.json` (NDJSON) for each source the queries read.
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value_t = Mode::InEngine)]
    pub mode: Mode,
    /// In-engine: records per commit cycle (state changes are collected at each).
    #[arg(long, default_value_t = 10_000)]
    pub commit_every: u64,
    /// End to end: Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = "127.0.0.1:29092")]
    pub bootstrap_servers: String,
    /// End to end: partitions of each input topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// End to end: extra librdkafka settings for eddy's clients (`kafka.properties`), KEY=VALUE.
    #[arg(long = "kafka-property")]
    pub kafka_properties: Vec<String>,
    /// Run one query in this process and print its result as JSON (used by the parent).
    #[arg(long, hide = true)]
    pub child: bool,
}

/// One query's measurement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub query: String,
    pub mode: String,
    pub events: u64,
    pub output: u64,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub max_rss_mb: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub load: String,
    pub note: String,
}

impl Report {
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.wall_s.max(1e-9)
    }
    pub fn per_core(&self) -> f64 {
        self.events as f64 / self.cpu_s.max(1e-9)
    }
}

/// Runs `eddy bench`.
pub fn run(a: &BenchArgs) -> anyhow::Result<()> {
    if a.child {
        let path = a.queries.first().context("no --query")?;
        let report = match a.mode {
            Mode::InEngine => in_engine(path, &a.data, a.commit_every)?,
            Mode::E2e => e2e::run(path, &a.data, &a.bootstrap_servers, a.partitions, &a.kafka_properties)?,
        };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the eddy binary")?;
    println!(
        "{:<10} {:<9} {:>10} {:>9} {:>12} {:>14} {:>8} {:>8} {:>8} {:>5}  note",
        "query", "mode", "events", "output", "events/s", "events/s/core", "p50 ms", "p99 ms", "RSS MB", "load"
    );
    for q in &a.queries {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("bench").arg("--child").arg("--query").arg(q).arg("--data").arg(&a.data);
        cmd.arg("--mode").arg(if a.mode == Mode::E2e { "e2e" } else { "in-engine" });
        cmd.arg("--commit-every").arg(a.commit_every.to_string());
        for p in &a.kafka_properties {
            cmd.arg("--kafka-property").arg(p);
        }
        cmd.arg("--bootstrap-servers").arg(&a.bootstrap_servers).arg("--partitions").arg(a.partitions.to_string());
        let out = cmd.stderr(std::process::Stdio::inherit()).output().context("cannot run the benchmark child")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(r) = text.lines().rev().find_map(|l| serde_json::from_str::<Report>(l).ok()) else {
            println!("{:<10} failed: {}", q.display(), text.trim());
            continue;
        };
        let ms = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
        println!(
            "{:<10} {:<9} {:>10} {:>9} {:>12.0} {:>14.0} {:>8} {:>8} {:>8.1} {:>5}  {}",
            r.query,
            r.mode,
            r.events,
            r.output,
            r.per_second(),
            r.per_core(),
            ms(r.p50_ms),
            ms(r.p99_ms),
            r.max_rss_mb,
            r.load,
            r.note
        );
    }
    Ok(())
}

/// Short name of a pipeline file: `q5` for config/nexmark/q5.yaml.
fn query_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

/// Opens `<data>/<source>.json`.
fn open_source(data: &Path, source: &str) -> anyhow::Result<BufReader<std::fs::File>> {
    let path = data.join(format!("{source}.json"));
    let f = std::fs::File::open(&path).with_context(|| format!("cannot open {} (input of source {source})", path.display()))?;
    Ok(BufReader::with_capacity(1 << 20, f))
}

/// Measures one query in this process.
pub fn in_engine(path: &Path, data: &Path, commit_every: u64) -> anyhow::Result<Report> {
    let pipeline = crate::pipeline::load(path).map_err(|d| anyhow::anyhow!("{d}"))?;
    let mut driver = Driver::new(&pipeline)?;
    let sources = driver.sources();
    // Untimed pass: the order in which a two-sided query sees its sides (by event time, as
    // the generator interleaved them), one byte per record.
    let order = if sources.len() > 1 { merge_order(&mut driver, data, &sources)? } else { Vec::new() };
    let mut readers =
        sources.iter().map(|s| open_source(data, s).map(|r| input::Records::new(r.into_inner()))).collect::<anyhow::Result<Vec<_>>>()?;
    // Reading the files is not the engine's work: its CPU time is left out (`untimed`).
    let mut untimed = std::time::Duration::ZERO;
    let before = usage::current();
    let started = Instant::now();
    let mut n: u64 = 0;
    let mut next = order.iter().map(|&s| s as usize);
    loop {
        let side = if order.is_empty() { 0 } else { next.next().unwrap_or(usize::MAX) };
        let Some(reader) = readers.get_mut(side) else { break };
        let Some(record) = reader.next(&mut untimed)? else { break };
        driver.on_record(side, record);
        n += 1;
        if n.is_multiple_of(driver::BATCH as u64) {
            driver.advance();
        }
        if n.is_multiple_of(commit_every.max(1)) {
            driver.commit();
        }
    }
    driver.advance();
    driver.commit();
    let entries_at_end = driver.state_entries();
    driver.finish();
    let wall = started.elapsed();
    let after = usage::current();
    let c = driver.counts();
    Ok(Report {
        query: query_name(path),
        mode: "in-engine".into(),
        events: n,
        output: c.output,
        wall_s: wall.as_secs_f64(),
        cpu_s: (after.cpu - before.cpu).saturating_sub(untimed).as_secs_f64(),
        max_rss_mb: after.max_rss_bytes as f64 / 1e6,
        p50_ms: None,
        p99_ms: None,
        load: usage::load_average(),
        note: format!(
            "{} kept by filters, {} late, {} bad, state {} entries, changelog {} entries",
            c.input, c.late, c.errors, entries_at_end, c.changelog_entries
        ),
    })
}

/// Side of each record, merged by event time (ties: side 0 first).
fn merge_order(driver: &mut Driver, data: &Path, sources: &[String]) -> anyhow::Result<Vec<u8>> {
    let mut times: Vec<Vec<i64>> = Vec::new();
    for (side, s) in sources.iter().enumerate() {
        let mut ts = Vec::new();
        let mut last = i64::MIN;
        for l in open_source(data, s)?.split(b'\n') {
            let l = l?;
            last = driver.event_time(side, &l).unwrap_or(last);
            ts.push(last);
        }
        times.push(ts);
    }
    let mut idx = vec![0usize; times.len()];
    let mut order = Vec::with_capacity(times.iter().map(Vec::len).sum());
    loop {
        let pick = (0..times.len()).filter(|&s| idx[s] < times[s].len()).min_by_key(|&s| (times[s][idx[s]], s));
        let Some(s) = pick else { break };
        idx[s] += 1;
        order.push(s as u8);
    }
    Ok(order)
}

#[cfg(test)]
mod tests;
