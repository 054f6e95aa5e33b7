//! The `eddy` command: parse arguments, set up logging, call the library. No logic here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use eddy::config::ConfigDuration;
use eddy::engine::RunOptions;
use eddy::{app, bench, demo, gen, pipeline, query, tail};

/// Exactly-once, event-time stream processing for Kafka.
#[derive(Parser)]
#[command(name = "eddy", version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "EDDY_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter, e.g. `info`, `eddy=debug` (RUST_LOG syntax).
    #[arg(long, global = true, default_value = "info", env = "EDDY_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline: join its consumer group and process until stopped.
    Run(RunArgs),
    /// Check a pipeline file and plan its queries, without a broker.
    Validate(FileArg),
    /// Print each query's physical plan: operators, keys, state, topics.
    Explain(FileArg),
    /// Run the Spark tutorial end to end on an in-process broker and print the results.
    Demo(demo::DemoArgs),
    /// List the SQL functions a query may call (scalar and aggregate), with where each comes from.
    Functions(FunctionsArgs),
    /// Produce sample or benchmark data into a topic or to stdout.
    #[command(subcommand)]
    Gen(gen::GenCommand),
    /// Print a topic's committed records as JSON lines.
    Tail(tail::TailArgs),
    /// Ask a running pipeline: a SELECT over its queries' result tables (GET /query).
    Query(query::client::QueryArgs),
    /// Benchmark queries in-engine or end to end (docs/benchmarks.md).
    #[command(hide = true)]
    Bench(bench::BenchArgs),
}

#[derive(Args)]
struct FileArg {
    /// The pipeline file.
    #[arg(short, long)]
    config: PathBuf,
}

#[derive(Args)]
struct FunctionsArgs {
    /// Only functions whose name contains this text.
    name: Option<String>,
    /// Only aggregate functions.
    #[arg(long)]
    aggregates: bool,
    /// Print the whole library as Markdown (docs/functions.md).
    #[arg(long, conflicts_with_all = ["name", "aggregates"])]
    markdown: bool,
}

#[derive(Args)]
struct RunArgs {
    /// The pipeline file.
    #[arg(short, long)]
    config: PathBuf,
    /// This instance's stable id (its transactional id and group member id derive from it).
    /// Two running instances must never share one. Default: the host or pod name.
    #[arg(long, env = "EDDY_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Exit when every assigned partition has been read to its end.
    #[arg(long)]
    stop_at_end: bool,
    /// With --stop-at-end: treat the input as finished and close every open window first.
    #[arg(long, requires = "stop_at_end")]
    flush_at_end: bool,
    /// Fault injection: abort every Nth transaction instead of committing it (for chaos
    /// testing; the output stays exact, the work is redone).
    #[arg(long, hide = true)]
    inject_abort_every: Option<u64>,
    /// How long a shutdown (SIGTERM, Ctrl-C) may take to finish the open transaction.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    shutdown_grace: ConfigDuration,
}

fn parse_duration(s: &str) -> Result<ConfigDuration, String> {
    eddy::time::parse_duration(s).map(ConfigDuration::from_micros).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
    match cli.command {
        Command::Validate(f) => match pipeline::load(&f.config) {
            Ok(p) => {
                for w in p.warnings() {
                    eprintln!("{w}");
                }
                // Stages of chained queries are counted with their query.
                let n = p.queries.iter().filter(|q| q.feeds.is_none()).count();
                println!("{}: ok ({n} quer{})", f.config.display(), if n == 1 { "y" } else { "ies" });
                ExitCode::SUCCESS
            }
            Err(d) => {
                eprintln!("{d}");
                ExitCode::from(2)
            }
        },
        Command::Explain(f) => match pipeline::load(&f.config) {
            Ok(p) => {
                print!("{}", p.explain());
                ExitCode::SUCCESS
            }
            Err(d) => {
                eprintln!("{d}");
                ExitCode::from(2)
            }
        },
        Command::Functions(args) => {
            let registry = eddy::expr::Registry::global();
            if args.markdown {
                print!("{}", eddy::expr::listing::markdown(registry));
            } else {
                let filter = eddy::expr::listing::Filter { aggregates_only: args.aggregates, name: args.name };
                print!("{}", eddy::expr::listing::text(registry, &filter));
            }
            ExitCode::SUCCESS
        }
        Command::Run(args) => run(args),
        Command::Demo(args) => report(demo::run(&args)),
        Command::Gen(cmd) => report(gen::run(cmd)),
        Command::Tail(args) => report(tail::run(&args)),
        Command::Query(args) => report(query::client::run(&args)),
        Command::Bench(args) => report(bench::run(&args)),
    }
}

fn run(args: RunArgs) -> ExitCode {
    let pipeline = match pipeline::load(&args.config) {
        Ok(p) => Arc::new(p),
        Err(d) => {
            eprintln!("{d}");
            return ExitCode::from(2);
        }
    };
    let opts = RunOptions {
        instance_id: args.instance_id.unwrap_or_else(default_instance_id),
        stop_at_end: args.stop_at_end,
        flush_at_end: args.flush_at_end,
        inject_abort_every: args.inject_abort_every,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let handles = app::Handles::new()?;
        app::run(pipeline, opts, handles, app::signals(), args.shutdown_grace.std(), |_| {}).await
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "eddy stopped: {e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn default_instance_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "eddy-0".to_string())
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a container's log or a file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
