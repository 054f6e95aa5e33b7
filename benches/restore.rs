//! Restore benchmark (needs a real broker: KAFKA_BOOTSTRAP_SERVERS).
//!
//! Builds a query with N live state entries (default 1,000,000: one per device, all in one
//! open day-long window), then measures, for a new instance, the time from start to ready and
//! the restore rate — once rebuilding everything from the changelog (empty state directory),
//! once from sled (the same directory).
//!
//!     KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092 cargo bench --bench restore [-- ENTRIES]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::engine::{self, RunOptions};
use eddy::metrics::{Metrics, Status};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(std::env::var("EDDY_LOG").unwrap_or_else(|_| "warn".into())))
        .with_writer(std::io::stderr)
        .try_init();
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP_SERVERS") else {
        eprintln!("restore benchmark skipped: set KAFKA_BOOTSTRAP_SERVERS (see README, 'Benchmarks')");
        return;
    };
    let entries: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let tag = format!("{}-{}", std::process::id(), Instant::now().elapsed().as_nanos());
    let (topic, out, app) = (format!("restore-in-{tag}"), format!("restore-out-{tag}"), format!("restore-app-{tag}"));
    eddy::kafka::admin::ensure_topic(&bootstrap, &topic, 4).unwrap();

    let t = Instant::now();
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    for i in 0..entries {
        let id = format!("device-{i}");
        let v = format!(r#"{{"time":"2030-01-01T12:00:00Z","id":"{id}"}}"#);
        let mut r = BaseRecord::to(&topic).key(&id).payload(&v);
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    p.poll(Duration::from_millis(5));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
    eprintln!("produced {entries} records in {:.1}s", t.elapsed().as_secs_f64());

    let base = std::env::temp_dir().join(format!("eddy-restore-bench-{tag}"));
    let pipeline = |state: &Path| {
        let text = format!(
            r#"app: {app}
kafka: {{ bootstrap_servers: "{bootstrap}" }}
state: {{ dir: "{}", cache_bytes: 268435456 }}
http: {{ listen: "127.0.0.1:0" }}
sources:
  events:
    topic: {topic}
    schema: {{ time: timestamp, id: string }}
    event_time: time
    watermark_delay: 1h
    partition_key: [id]
sinks:
  out: {{ topic: {out} }}
queries:
  - name: per_device
    sink: out
    sql: SELECT id, count(*) AS n FROM events GROUP BY id, window(time, '1 day')
"#,
            state.display()
        );
        Arc::new(eddy::pipeline::from_text(Path::new("bench.yaml"), &text, |_| None).unwrap())
    };

    // Build the state.
    let built = base.join("a");
    let t = Instant::now();
    let s = run(pipeline(&built), "build").1;
    eprintln!("built {entries} state entries from {} records in {:.1}s", s.records_in, t.elapsed().as_secs_f64());

    println!("restore benchmark, {entries} state entries in 4 partitions");
    for (label, dir) in
        [("from the changelog (empty state directory)", base.join("b")), ("from sled (the state directory of the last run)", built.clone())]
    {
        let (ready, summary, restore_secs) = run(pipeline(&dir), "restore");
        let restored = summary.restored_from_changelog + summary.restored_from_sled;
        println!(
            "  {label}: ready after {:.2}s; {restored} entries ({} changelog, {} sled) in {:.2}s of restore = {:.0} entries/s",
            ready.as_secs_f64(),
            summary.restored_from_changelog,
            summary.restored_from_sled,
            restore_secs,
            restored as f64 / restore_secs.max(1e-9)
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// Runs to the end of the input; returns time to ready, the summary, and restore seconds.
fn run(p: Arc<eddy::pipeline::Pipeline>, instance: &str) -> (Duration, eddy::engine::RunSummary, f64) {
    let metrics = Arc::new(Metrics::new().unwrap());
    let status = Arc::new(Status::default());
    let opts = RunOptions { instance_id: instance.into(), stop_at_end: true, flush_at_end: false, inject_abort_every: None };
    let started = Instant::now();
    let (m, s) = (metrics.clone(), status.clone());
    let handle = std::thread::spawn(move || engine::run(p, opts, Arc::new(AtomicBool::new(false)), m, s));
    let mut ready = None;
    while !handle.is_finished() {
        if ready.is_none() && status.is_ready() {
            ready = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let summary = handle.join().unwrap().unwrap();
    let text = metrics.render();
    let restore_secs: f64 = text
        .lines()
        .filter(|l| l.starts_with("eddy_restore_duration_seconds_sum"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let _ = Ordering::Relaxed;
    (ready.unwrap_or_else(|| started.elapsed()), summary, restore_secs)
}
