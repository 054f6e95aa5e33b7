//! Test harness shared by the integration tests: brokers (librdkafka's mock cluster, or the
//! real one named by KAFKA_BOOTSTRAP_SERVERS), unique names, producing and reading topics,
//! and running the engine on a thread with a stop switch.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod own_broker;

#[allow(unused_imports)]
pub use own_broker::OwnBroker;

use eddy::engine::{self, EngineError, RunOptions, RunSummary};
use eddy::gen::tutorial::{Event, TutorialSpec};
use eddy::metrics::{Metrics, Status};
use eddy::pipeline::{self, Pipeline};
use eddy::tail::{read_to_end, TailRecord};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// A broker for one test.
pub struct Broker {
    pub bootstrap: String,
    pub real: bool,
    _mock: Option<eddy::kafka::mock::MockBroker>,
}

/// Logs go to the test's output; EDDY_TEST_LOG sets the filter (default: warnings).
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("EDDY_TEST_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_test_writer().try_init();
    });
}

impl Broker {
    pub fn mock() -> Broker {
        init_logs();
        let mock = eddy::kafka::mock::MockBroker::start(1).expect("mock cluster");
        Broker { bootstrap: mock.bootstrap_servers(), real: false, _mock: Some(mock) }
    }

    /// The real broker, or `None` (and a line saying why the test is skipped).
    pub fn real(test: &str) -> Option<Broker> {
        init_logs();
        match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
            Ok(b) if !b.is_empty() => Some(Broker { bootstrap: b, real: true, _mock: None }),
            _ => {
                eprintln!(
                    "SKIPPED {test}: KAFKA_BOOTSTRAP_SERVERS is not set; start a broker with ../shared/kafka/start-kafka.sh (see README)"
                );
                None
            }
        }
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        if let Some(m) = &self._mock {
            m.create_topic(topic, partitions).expect("create topic");
        } else {
            eddy::kafka::admin::ensure_topic(&self.bootstrap, topic, partitions).expect("create topic");
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{:x}-{}", std::process::id(), nanos & 0xffff_ffff, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh state directory.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Produces records; `partition: None` lets the partitioner (murmur2 of the key) choose.
pub fn produce(bootstrap: &str, topic: &str, records: impl IntoIterator<Item = (Option<String>, String, Option<i32>)>) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for (key, value, partition) in records {
        let mut r = BaseRecord::<str, str>::to(topic).payload(&value);
        if let Some(k) = &key {
            r = r.key(k);
        }
        if let Some(part) = partition {
            r = r.partition(part);
        }
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).expect("flush");
}

/// Tutorial events as (key = action, JSON) records, in arrival order.
pub fn tutorial_records(events: &[Event]) -> Vec<(Option<String>, String, Option<i32>)> {
    events
        .iter()
        .map(|e| {
            let mut s = String::new();
            e.json(eddy::gen::tutorial::TimeFormat::Rfc3339, &mut s);
            (Some(e.action().to_string()), s, None)
        })
        .collect()
}

pub fn tutorial(events: u64, seed: u64) -> Vec<Event> {
    eddy::gen::tutorial::generate(&TutorialSpec { events, seed, ..TutorialSpec::default() })
}

/// Plans pipeline text.
pub fn plan(text: &str) -> Arc<Pipeline> {
    match pipeline::from_text(Path::new("test.yaml"), text, |_| None) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!("{d}"),
    }
}

impl Broker {
    /// Plans pipeline text and, on the mock broker (which cannot create topics on request),
    /// creates every topic the pipeline writes, with `partitions` partitions.
    pub fn plan(&self, text: &str, partitions: i32) -> Arc<Pipeline> {
        let p = plan(text);
        if let Some(m) = &self._mock {
            for spec in engine::required_topics(&p, |_| partitions as usize) {
                let _ = m.create_topic(&spec.name, spec.partitions as i32);
            }
        }
        p
    }
}

/// A running engine.
pub struct Running {
    pub stop: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub handle: JoinHandle<Result<RunSummary, EngineError>>,
}

impl Running {
    pub fn start(p: Arc<Pipeline>, instance: &str, stop_at_end: bool, flush_at_end: bool) -> Running {
        Running::start_with(p, RunOptions { instance_id: instance.to_string(), stop_at_end, flush_at_end, inject_abort_every: None })
    }

    pub fn start_with(p: Arc<Pipeline>, opts: RunOptions) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(Metrics::new().unwrap());
        let status = Arc::new(Status::default());
        let (s, m, st) = (stop.clone(), metrics.clone(), status.clone());
        let handle = std::thread::spawn(move || engine::run(p, opts, s, m, st));
        Running { stop, metrics, status, handle }
    }

    /// Asks the engine to stop and waits for its summary.
    pub fn stop(self) -> RunSummary {
        self.stop.store(true, Ordering::Release);
        self.join()
    }

    pub fn join(self) -> RunSummary {
        match self.handle.join().expect("engine thread panicked") {
            Ok(s) => s,
            Err(e) => panic!("engine failed: {e}"),
        }
    }

    /// Waits for the engine and returns its result, failure included.
    pub fn result(self) -> Result<RunSummary, EngineError> {
        self.handle.join().expect("engine thread panicked")
    }

    /// The sum of a counter over all its label values, from the rendered metrics.
    pub fn metric_sum(&self, name: &str) -> f64 {
        metric_sum(&self.metrics.render(), name)
    }
}

pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until `f` holds, or panics after `limit` with `what`.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many committed records `topic` holds; 0 while it does not exist yet.
pub fn count(bootstrap: &str, topic: &str) -> usize {
    read_to_end(bootstrap, topic, true).map_or(0, |r| r.len())
}

pub fn read(bootstrap: &str, topic: &str) -> Vec<TailRecord> {
    read_to_end(bootstrap, topic, true).expect("read topic")
}

/// Output rows as sorted JSON strings with fields in a fixed order.
pub fn canonical(records: &[TailRecord]) -> Vec<String> {
    let mut rows: Vec<String> = records
        .iter()
        .map(|r| {
            let v: BTreeMap<String, serde_json::Value> = serde_json::from_str(r.value_str()).expect("output is JSON");
            serde_json::to_string(&v).unwrap()
        })
        .collect();
    rows.sort();
    rows
}

/// The batch answer to the hourly count query: (action, window start RFC 3339) → count,
/// for windows whose end is at or before `until` (microseconds).
pub fn hourly_counts(events: &[Event], until: i64) -> BTreeMap<(String, String), u64> {
    let hour = 3_600_000_000i64;
    let mut m = BTreeMap::new();
    for e in events {
        let start = e.time.div_euclid(hour) * hour;
        if start + hour <= until {
            let mut s = String::new();
            eddy::time::format_timestamp(start, &mut s);
            *m.entry((e.action().to_string(), s)).or_insert(0) += 1;
        }
    }
    m
}

/// Parses hourly-count output rows into the same shape.
pub fn output_counts(records: &[TailRecord]) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for r in records {
        let v: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
        let key = (v["action"].as_str().unwrap().to_string(), v["window_start"].as_str().unwrap().to_string());
        assert!(m.insert(key.clone(), v["count"].as_u64().unwrap()).is_none(), "window {key:?} was emitted twice");
    }
    m
}

/// The tutorial pipeline over `topic`, writing to `out`.
pub fn tutorial_pipeline(app: &str, bootstrap: &str, topic: &str, out: &str, state: &Path, guarantee: &str, extra_kafka: &str) -> String {
    format!(
        r#"app: {app}
kafka:
  bootstrap_servers: "{bootstrap}"
  properties: {{ {extra_kafka} }}
processing_guarantee: {guarantee}
state: {{ dir: "{state}" }}
commit_interval: 50ms
http: {{ listen: "127.0.0.1:0" }}
sources:
  events:
    topic: {topic}
    schema: {{ time: timestamp, action: string, id: string }}
    event_time: time
    watermark_delay: 2h
    partition_key: [action]
    dead_letter_topic: {topic}-dlq
sinks:
  counts: {{ topic: {out}, output_mode: append }}
queries:
  - name: hourly_counts
    sink: counts
    sql: |
      SELECT action, window.start AS window_start, window.end AS window_end, count(*) AS count
      FROM events
      GROUP BY action, window(time, '1 hour')
"#,
        state = state.display()
    )
}

/// Committed offsets of `group` for `topic`'s partitions (-1 when none).
pub fn group_offsets(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", group).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(30)).unwrap();
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(rdkafka::Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

/// High watermarks of `topic`'s partitions.
pub fn end_offsets(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", "eddy-test-offsets").create().unwrap();
    (0..partitions).map(|p| c.fetch_watermarks(topic, p, Duration::from_secs(30)).unwrap().1).collect()
}

/// Reads `topic` uncommitted too (aborted records included).
pub fn read_uncommitted(bootstrap: &str, topic: &str) -> Vec<TailRecord> {
    read_to_end(bootstrap, topic, false).expect("read topic")
}

/// Writes pipeline text to a file for the binary.
pub fn write_pipeline(text: &str) -> PathBuf {
    let path = temp_dir("pipeline").join("pipeline.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `eddy` with `args`, its stderr going to `log`. The process is killed when the
/// test's thread ends, so a failed test leaves no eddy running (PR_SET_PDEATHSIG follows the
/// thread that spawned it: spawn from the test's own thread).
pub fn spawn_eddy(args: &[&str], log: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let err = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"));
    cmd.args(args).stdout(std::process::Stdio::null()).stderr(err);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("start eddy")
}

/// Crash-test driver: `kills` runs of `eddy run -c file --instance-id id`, each killed with
/// SIGKILL at a random moment mid-stream: once the group has committed past a random target
/// (spread over the input of `total` records), plus a random 0–150 ms. Returns the committed
/// progress seen after each kill.
pub struct Killer<'a> {
    pub bootstrap: &'a str,
    pub group: &'a str,
    pub topic: &'a str,
    pub partitions: i32,
    pub total: u64,
}

impl Killer<'_> {
    pub fn run(&self, file: &str, id: &str, log: &Path, kills: u64, rng: &mut eddy::gen::rng::Rng) -> Vec<i64> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        // One client for every look at the group's offsets, so each look takes milliseconds.
        // read_uncommitted: a read_committed client asks for stable offsets (KIP-447), which the
        // broker refuses while the group has a transaction open, and librdkafka retries until none
        // is; with eddy committing back to back that can wait until the input is done. This way
        // the look returns the offsets of the last committed transaction at once.
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap)
            .set("group.id", self.group)
            .set("isolation.level", "read_uncommitted")
            .create()
            .unwrap();
        let committed = || -> i64 {
            let mut tpl = rdkafka::TopicPartitionList::new();
            for p in 0..self.partitions {
                tpl.add_partition(self.topic, p);
            }
            let got = c.committed_offsets(tpl, Duration::from_secs(30)).unwrap();
            got.elements().iter().map(|e| if let rdkafka::Offset::Offset(o) = e.offset() { o } else { 0 }).sum()
        };
        let step = self.total / (kills + 1);
        let mut progress = Vec::new();
        let mut target = 0u64;
        for k in 0..kills {
            target = (target + step / 2 + rng.below(step.max(1))).min(self.total * 95 / 100);
            let mut child = spawn_eddy(&["run", "-c", file, "--instance-id", id, "--log", "warn"], log);
            let deadline = Instant::now() + Duration::from_secs(180);
            while (committed() as u64) < target {
                assert!(child.try_wait().unwrap().is_none(), "eddy exited on its own before kill {}; see {}", k + 1, log.display());
                assert!(Instant::now() < deadline, "no committed progress past {target} before kill {}; see {}", k + 1, log.display());
                std::thread::sleep(Duration::from_millis(5));
            }
            // The random moment: the kill lands wherever the run is by then.
            std::thread::sleep(Duration::from_millis(rng.below(150)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let done = committed();
            eprintln!("kill {} of {kills} with {done} of {} input records committed", k + 1, self.total);
            progress.push(done);
        }
        progress
    }
}

/// The run after the crashes: `eddy run --stop-at-end --flush-at-end` to the end of the input;
/// asserts it finishes within 10 minutes and exits 0.
pub fn run_to_end(file: &str, id: &str, log: &Path) {
    let started = Instant::now();
    let mut last = spawn_eddy(&["run", "-c", file, "--instance-id", id, "--log", "warn", "--stop-at-end", "--flush-at-end"], log);
    let status = loop {
        if let Some(s) = last.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the final run did not finish; see {}", log.display());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "the final run failed; see {}", log.display());
}

/// `GET path` over HTTP/1.1: the status code and body, or None when nothing answers.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok())?;
    Some((code, body.to_string()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The pipeline on a thread with its own runtime and HTTP server, as `eddy run` runs it.
pub struct Served {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    pub fn start(pipeline: std::sync::Arc<eddy::pipeline::Pipeline>, instance: &str) -> Served {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let instance = instance.to_string();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let opts =
                eddy::engine::RunOptions { instance_id: instance, stop_at_end: false, flush_at_end: false, inject_abort_every: None };
            let handles = eddy::app::Handles::new().unwrap();
            let shutdown = async move {
                let _ = stopped.await;
            };
            let run =
                eddy::app::run(pipeline, opts, handles, shutdown, std::time::Duration::from_secs(30), move |a| addr_tx.send(a).unwrap());
            rt.block_on(run).unwrap();
        });
        let addr = addr_rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the HTTP server's address");
        Served { addr, stop: Some(stop), thread: Some(thread) }
    }

    /// `/query` of `sql`: the status and the body.
    pub fn ask(&self, sql: &str, csv: bool) -> (u16, String) {
        eddy::query::client::ask(self.addr, sql, csv, false, std::time::Duration::from_secs(30)).expect("an HTTP answer")
    }

    pub fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        let (status, body) = self.ask(sql, false);
        assert_eq!(status, 200, "{sql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["rows"].as_array().unwrap().clone()
    }

    /// The rows, or None while the table cannot be answered yet (503: joining, restoring).
    pub fn try_rows(&self, sql: &str) -> Option<Vec<serde_json::Value>> {
        let (status, body) = self.ask(sql, false);
        if status == 503 {
            return None;
        }
        assert_eq!(status, 200, "{sql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        Some(v["rows"].as_array().unwrap().clone())
    }

    pub fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().expect("the pipeline thread");
    }
}
