//! `eddy demo`: the Spark Structured Streaming tutorial, end to end, on a fresh machine. It
//! starts librdkafka's in-process mock broker, produces 100,000 device events over 48 hours,
//! runs the hourly-count query with a 2-hour watermark as a bounded run, and prints the
//! hourly table, the totals and a chart of Opens and Closes per hour.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::engine::{self, RunOptions};
use crate::gen::{self, tutorial::TutorialSpec, Destination, Output};
use crate::kafka::mock::MockBroker;
use crate::metrics::{Metrics, Status};
use crate::pipeline;
use crate::query::{self, LiveTables};
use crate::tail::read_to_end;

#[derive(Args)]
pub struct DemoArgs {
    /// Number of events.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Hours of event time.
    #[arg(long, default_value_t = 48)]
    pub hours: u64,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
}

/// The demo's pipeline; `{bootstrap}` and `{state}` are filled in.
pub const DEMO_PIPELINE: &str = r#"app: eddy-demo
kafka:
  bootstrap_servers: "{bootstrap}"
state:
  dir: "{state}"
http:
  listen: 127.0.0.1:0
sources:
  events:
    topic: events
    format: json
    schema: { time: timestamp, action: string, id: string }
    event_time: time
    watermark_delay: 2h
    partition_key: [action]
sinks:
  counts:
    topic: action-counts
    output_mode: append
queries:
  - name: hourly_counts
    sink: counts
    sql: |
      SELECT action, window.start, window.end, count(*) AS count
      FROM events
      GROUP BY action, window(time, '1 hour')
"#;

pub fn run(a: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let cluster = MockBroker::start(1).context("cannot start the in-process Kafka broker")?;
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("events", a.partitions).context("cannot create topic events")?;
    let state = std::env::temp_dir().join(format!("eddy-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);

    println!("eddy demo: Spark's Structured Streaming tutorial, on an in-process Kafka broker\n");
    let spec = TutorialSpec { events: a.events, hours: a.hours, ..TutorialSpec::default() };
    let mut out =
        Output::open(&Destination::Kafka { bootstrap_servers: bootstrap.clone(), topic: "events".into(), partitions: a.partitions })?;
    gen::write_tutorial(&spec, "action", &mut out)?;
    out.finish()?;
    println!(
        "1. produced {} events ({} Open, {} Close) over {} hours into topic `events` ({} partitions, keyed by action)",
        a.events,
        a.events / 2 + a.events % 2,
        a.events / 2,
        a.hours,
        a.partitions
    );

    let text = DEMO_PIPELINE.replace("{bootstrap}", &bootstrap).replace("{state}", &state.display().to_string());
    let p = pipeline::from_text(Path::new("demo.yaml"), &text, |_| None).map_err(|d| anyhow::anyhow!("{d}"))?;
    println!("2. running, exactly once, with a 2-hour watermark, until the input ends:\n");
    for line in p.queries[0].explain(&p.config().app).lines() {
        println!("     {line}");
    }
    // The in-process broker cannot create topics on request; create what the engine needs.
    for spec in engine::required_topics(&p, |_| a.partitions as usize) {
        cluster.create_topic(&spec.name, spec.partitions as i32).with_context(|| format!("cannot create topic {}", spec.name))?;
    }
    let opts = RunOptions { instance_id: "demo".into(), stop_at_end: true, flush_at_end: true, inject_abort_every: None };
    let engine_started = Instant::now();
    // While it runs, the live table is asked what `eddy query` and `GET /query` would ask.
    let live = LiveTables::new();
    let running = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (live, running) = (live.clone(), running.clone());
        std::thread::spawn(move || watch(&live, &running, engine_started))
    };
    let result =
        engine::run_with(Arc::new(p), opts, Arc::new(AtomicBool::new(false)), Arc::new(Metrics::new()?), Arc::new(Status::default()), live);
    running.store(false, Ordering::Release);
    let seen = watcher.join().unwrap_or_default();
    let summary = result?;
    let engine_time = engine_started.elapsed();
    if !seen.is_empty() {
        println!("\n   the live table while it ran (`eddy query \"{LIVE_SQL}\"`):");
        for line in &seen {
            println!("     {line}");
        }
    }

    let records = read_to_end(&bootstrap, "action-counts", true)?;
    let mut table: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &records {
        let v: serde_json::Value = serde_json::from_str(r.value_str()).context("bad output record")?;
        let start = v["window_start"].as_str().unwrap_or("?").to_string();
        let n = v["count"].as_u64().unwrap_or(0);
        let e = table.entry(start).or_default();
        if v["action"] == "Open" {
            e.0 += n;
        } else {
            e.1 += n;
        }
    }
    println!("\n3. results from topic `action-counts` ({} rows; the last windows closed when the input ended):\n", records.len());
    print_table(&table);
    let (opens, closes) = table.values().fold((0, 0), |(o, c), (a, b)| (o + a, c + b));
    println!("\n   totals: Open {opens}, Close {closes}\n");
    print_chart(&table);
    println!(
        "\n{} events in, {} rows out, {} transactions; engine {:.2}s, whole demo {:.2}s",
        summary.records_in,
        summary.records_out,
        summary.commits,
        engine_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

/// What the demo asks the live table while the engine runs: in append mode it holds the
/// windows the watermark has not closed yet.
const LIVE_SQL: &str = "SELECT action, count(*) AS open_windows, sum(count) AS events FROM hourly_counts GROUP BY action ORDER BY action";

/// Asks the live table every 50 ms until the run ends; one line per answer that changed.
fn watch(live: &LiveTables, running: &AtomicBool, started: Instant) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut last = String::new();
    while running.load(Ordering::Acquire) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let Ok(a) = query::answer(live, LIVE_SQL, &query::Limits::default(), true) else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&query::to_json(&a)) else { continue };
        let parts: Vec<String> = v["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("{}: {} events in {} open windows", r["action"].as_str().unwrap_or("?"), r["events"], r["open_windows"]))
            .collect();
        let text = parts.join(", ");
        if !parts.is_empty() && text != last {
            lines.push(format!("at {:.1}s  {text}", started.elapsed().as_secs_f64()));
            last = text;
        }
    }
    lines
}

fn print_table(table: &BTreeMap<String, (u64, u64)>) {
    println!("   {:<26} {:>6} {:>6}", "window_start", "Open", "Close");
    for (start, (o, c)) in table {
        println!("   {start:<26} {o:>6} {c:>6}");
    }
}

fn print_chart(table: &BTreeMap<String, (u64, u64)>) {
    let max = table.values().map(|(o, c)| (*o).max(*c)).max().unwrap_or(1).max(1);
    let width = 40.0;
    println!("   Opens (#) and Closes (=) per hour:");
    for (start, (o, c)) in table {
        let hour = start.get(5..13).unwrap_or(start);
        let bar = |n: u64, ch: &str| ch.repeat(((n as f64 / max as f64) * width).round() as usize);
        println!("   {hour} {:<40} {o}", bar(*o, "#"));
        println!("   {:<11} {:<40} {c}", "", bar(*c, "="));
    }
}
