//! End-to-end benchmark through a real broker with exactly-once: produce each source's file
//! into a fresh topic, then run `eddy run --stop-at-end --flush-at-end` on a copy of the
//! pipeline pointed at those topics and time it until it exits, output committed. CPU time
//! and peak RSS are the `eddy run` child's (getrusage of children). Latency here is the
//! commit latency of each output record: its producer timestamp (set by eddy when sending)
//! to when a read_committed consumer first sees it — the exactly-once cost a consumer waits.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_yaml::Value as Yaml;

use super::{open_source, query_name, usage, Report};

/// Runs one pipeline end to end.
pub fn run(path: &Path, data: &Path, bootstrap: &str, partitions: i32, properties: &[String]) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut doc: Yaml = serde_yaml::from_str(&text)?;
    let tag = format!("{}-{}", std::process::id(), now_millis());
    let state = std::env::temp_dir().join(format!("eddy-bench-{tag}"));
    doc["app"] = Yaml::from(format!("bench-{tag}"));
    doc["kafka"]["bootstrap_servers"] = Yaml::from(bootstrap);
    doc["state"]["dir"] = Yaml::from(state.display().to_string());
    doc["http"]["listen"] = Yaml::from("127.0.0.1:0");
    for p in properties {
        let (k, v) = p.split_once('=').with_context(|| format!("--kafka-property {p}: expected KEY=VALUE"))?;
        doc["kafka"]["properties"][k] = Yaml::from(v);
    }
    let mut inputs = Vec::new();
    if let Some(sources) = doc["sources"].as_mapping_mut() {
        for (name, src) in sources.iter_mut() {
            let name = name.as_str().unwrap_or("source").to_string();
            let topic = format!("bench-{tag}-{name}");
            src["topic"] = Yaml::from(topic.clone());
            if src.get("dead_letter_topic").is_some() {
                src["dead_letter_topic"] = Yaml::from(format!("bench-{tag}-dlq"));
            }
            inputs.push((name, topic));
        }
    }
    let mut outputs = Vec::new();
    if let Some(sinks) = doc["sinks"].as_mapping_mut() {
        for (name, sink) in sinks.iter_mut() {
            let topic = format!("bench-{tag}-out-{}", name.as_str().unwrap_or("sink"));
            sink["topic"] = Yaml::from(topic.clone());
            outputs.push(topic);
        }
    }
    let pipeline = std::env::temp_dir().join(format!("eddy-bench-{tag}.yaml"));
    std::fs::write(&pipeline, serde_yaml::to_string(&doc)?)?;
    let read = crate::pipeline::load(&pipeline).map_err(|d| anyhow::anyhow!("{d}"))?;
    let used: Vec<String> = read.queries.first().map(|q| q.inputs.iter().map(|i| i.scan.source.clone()).collect()).unwrap_or_default();

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut events = 0u64;
    let produce_start = Instant::now();
    for (name, topic) in &inputs {
        crate::kafka::admin::ensure_topic(bootstrap, topic, partitions)?;
        if !used.contains(name) {
            continue;
        }
        use std::io::BufRead;
        for line in open_source(data, name)?.split(b'\n') {
            let line = line?;
            let mut rec = BaseRecord::<[u8], [u8]>::to(topic).payload(&line);
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        rec = back;
                        producer.poll(Duration::from_millis(5));
                    }
                }
            }
            events += 1;
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let produce_s = produce_start.elapsed().as_secs_f64();
    for t in &outputs {
        crate::kafka::admin::ensure_topic(bootstrap, t, partitions)?;
    }

    // Commit latency: a read_committed consumer on the output while eddy runs.
    let done = Arc::new(AtomicBool::new(false));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-{tag}-reader"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    let topics: Vec<&str> = outputs.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let reader_done = done.clone();
    let reader = std::thread::spawn(move || {
        let mut lat = Vec::new();
        let mut quiet_since: Option<Instant> = None;
        loop {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    quiet_since = None;
                    if let Some(ts) = m.timestamp().to_millis() {
                        lat.push((now_millis() - ts) as f64);
                    }
                }
                _ => {
                    if reader_done.load(Ordering::Relaxed) {
                        let q = *quiet_since.get_or_insert_with(Instant::now);
                        if q.elapsed() > Duration::from_secs(3) {
                            break;
                        }
                    }
                }
            }
        }
        lat
    });

    let exe = std::env::current_exe()?;
    let before = usage::children();
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(["--log", "warn", "run", "--stop-at-end", "--flush-at-end", "--instance-id"])
        .arg(format!("bench-{tag}"))
        .arg("-c")
        .arg(&pipeline)
        .spawn()
        .context("cannot start eddy run")?;
    // Peak RSS from the child's own VmHWM: getrusage's children maxrss also counts the
    // moment between fork and exec, when the child still maps this (large) process.
    let mut peak_kb = 0u64;
    let status = loop {
        peak_kb = peak_kb.max(usage::high_water_mark_kb(child.id()).unwrap_or(0));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed();
    let after = usage::children();
    done.store(true, Ordering::Relaxed);
    let mut lat = reader.join().unwrap_or_default();
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_file(&pipeline);
    if !status.success() {
        anyhow::bail!("eddy run failed: {status}");
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| (!lat.is_empty()).then(|| lat[((lat.len() - 1) as f64 * p) as usize]);
    Ok(Report {
        query: query_name(path),
        mode: "e2e".into(),
        events,
        output: lat.len() as u64,
        wall_s: wall.as_secs_f64(),
        cpu_s: (after.cpu - before.cpu).as_secs_f64(),
        max_rss_mb: peak_kb as f64 * 1024.0 / 1e6,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        load: usage::load_average(),
        note: format!(
            "produced in {produce_s:.1}s ({:.0}/s); latency = eddy send to read_committed visibility",
            events as f64 / produce_s.max(1e-9)
        ),
    })
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
