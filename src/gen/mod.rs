//! `eddy gen`: sample and benchmark data, into a Kafka topic or to stdout. The generators are
//! deterministic from a seed; long runs show a progress bar on a terminal and stay quiet
//! otherwise.

pub mod nexmark;
pub mod nexmark_json;
mod output;
mod progress;
mod replay;
pub mod rng;
pub mod tutorial;

use clap::{Args, Subcommand};

pub use output::{Destination, Output};
pub use progress::ProgressBar;

/// `eddy gen …`
#[derive(Subcommand)]
pub enum GenCommand {
    /// The open/close device events of Spark's Structured Streaming tutorial.
    Tutorial(TutorialArgs),
    /// Replay NDJSON or CSV files into a topic, one file per batch (like Spark's
    /// maxFilesPerTrigger = 1).
    Replay(replay::ReplayArgs),
    /// Nexmark benchmark events (persons, auctions, bids), as Apache Beam generates them.
    Nexmark(nexmark_json::NexmarkArgs),
}

/// Where generated records go.
#[derive(Args, Clone)]
pub struct TargetArgs {
    /// Topic to produce to; without it, records are printed to stdout.
    #[arg(long)]
    pub topic: Option<String>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "EDDY_KAFKA_BOOTSTRAP_SERVERS", default_value = "localhost:9092")]
    pub bootstrap_servers: String,
    /// Partitions of the topic, if eddy has to create it.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
}

#[derive(Args)]
pub struct TutorialArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Number of events (half Open, half Close).
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Hours of event time they span.
    #[arg(long, default_value_t = 48)]
    pub hours: u64,
    /// Random seed; the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Largest arrival delay of an on-time event (bounded out-of-order).
    #[arg(long, default_value = "10m")]
    pub jitter: String,
    /// Fraction of events that arrive far too late (after --late-by).
    #[arg(long, default_value_t = 0.0)]
    pub late_fraction: f64,
    /// How late the late events arrive.
    #[arg(long, default_value = "3h")]
    pub late_by: String,
    /// Field whose value keys each record (action, id), or none.
    #[arg(long, default_value = "action")]
    pub key: String,
    /// How the time field is written.
    #[arg(long, value_enum, default_value_t = tutorial::TimeFormat::Rfc3339)]
    pub time_format: tutorial::TimeFormat,
}

/// Runs a `gen` subcommand.
pub fn run(cmd: GenCommand) -> anyhow::Result<()> {
    match cmd {
        GenCommand::Tutorial(a) => {
            let spec = tutorial::TutorialSpec {
                events: a.events,
                hours: a.hours,
                seed: a.seed,
                jitter: crate::time::parse_duration(&a.jitter)?,
                late_fraction: a.late_fraction,
                late_by: crate::time::parse_duration(&a.late_by)?,
                time_format: a.time_format,
                ..tutorial::TutorialSpec::default()
            };
            if !matches!(a.key.as_str(), "action" | "id" | "none") {
                anyhow::bail!("--key must be action, id or none, not {}", a.key);
            }
            let mut out = Output::open(&Destination::from_args(&a.target))?;
            write_tutorial(&spec, &a.key, &mut out)?;
            out.finish()
        }
        GenCommand::Replay(a) => replay::run(&a),
        GenCommand::Nexmark(a) => nexmark_json::run(&a),
    }
}

/// Writes tutorial events to `out`, keyed by `key` (action, id or none).
pub fn write_tutorial(spec: &tutorial::TutorialSpec, key: &str, out: &mut Output) -> anyhow::Result<()> {
    let events = tutorial::generate(spec);
    let mut bar = ProgressBar::new("gen", events.len() as u64, out.is_kafka());
    let mut line = String::with_capacity(96);
    let mut id = String::new();
    for (i, e) in events.iter().enumerate() {
        line.clear();
        e.json(spec.time_format, &mut line);
        let k = match key {
            "action" => Some(e.action().as_bytes()),
            "id" => {
                id.clear();
                id.push_str("device-");
                id.push_str(&e.device.to_string());
                Some(id.as_bytes())
            }
            _ => None,
        };
        out.send(k, line.as_bytes(), Some(e.time / 1000))?;
        bar.set(i as u64 + 1);
    }
    bar.done();
    Ok(())
}
