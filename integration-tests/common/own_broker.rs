//! A Kafka broker a fault test starts, kills and restarts itself: the shared script's
//! assembled Apache Kafka 4.1 on a port of its own (127.0.0.1 only), with its own data
//! directory, so killing it disturbs no other test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One fault test at a time: each runs a JVM broker of its own on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

pub struct OwnBroker {
    pub bootstrap: String,
    dir: PathBuf,
    port: u16,
    script: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

fn script() -> PathBuf {
    std::env::var_os("KAFKA_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kafka/start-kafka.sh"))
}

/// Where the shared script assembles Kafka.
fn assembled() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    cache.join("kafka-4.1.0").join("kafka_2.13-4.1.0")
}

/// Two free ports in a row (the broker's and its controller's), below the kernel's ephemeral
/// range: a port from there could be taken by an outgoing connection before the JVM binds it.
fn free_ports() -> u16 {
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 ^ u64::from(std::process::id());
    let mut rng = eddy::gen::rng::Rng::new(seed);
    for _ in 0..200 {
        let p = 20_000 + rng.below(12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two free ports in a row");
}

impl OwnBroker {
    /// A new broker, started; `None` (and a line saying why) when Kafka is not assembled.
    pub fn start(test: &str) -> Option<OwnBroker> {
        super::init_logs();
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let home = assembled();
        if !home.join(".assembled").exists() || !script().exists() {
            eprintln!("SKIPPED {test}: no assembled Kafka at {} (run ../shared/kafka/start-kafka.sh once; see README)", home.display());
            return None;
        }
        let dir = super::temp_dir("own-broker");
        std::os::unix::fs::symlink(&home, dir.join("kafka_2.13-4.1.0")).unwrap();
        let mut b = OwnBroker { bootstrap: String::new(), dir, port: 0, script: script(), _serial: serial };
        // A port taken between the check and the JVM's bind fails the start: try another.
        for attempt in 1..=3 {
            b.port = free_ports();
            b.bootstrap = format!("127.0.0.1:{}", b.port);
            match b.try_launch() {
                Ok(()) => return Some(b),
                Err(why) if attempt < 3 => {
                    eprintln!("own broker on port {} did not start, trying another: {why}", b.port);
                    b.kill();
                }
                Err(why) => panic!("the test's broker did not start: {why}"),
            }
        }
        None
    }

    /// Starts the broker; on failure, the script's reason and the broker log's tail.
    fn try_launch(&self) -> Result<(), String> {
        let started = Instant::now();
        let out = Command::new("timeout")
            .args(["150", self.script.to_str().unwrap(), self.dir.to_str().unwrap(), &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("logs/kafka.out")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("{}\n{}", String::from_utf8_lossy(&out.stderr), tail.join("\n")));
        }
        eprintln!("own broker on {} ready after {:?}", self.bootstrap, started.elapsed());
        Ok(())
    }

    fn launch(&self) {
        if let Err(why) = self.try_launch() {
            panic!("the test's broker did not start again: {why}");
        }
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("kafka.pid")).ok()?.trim().parse().ok()
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        eddy::kafka::admin::ensure_topic(&self.bootstrap, topic, partitions).expect("create topic");
    }

    /// SIGKILL, as a crashed machine would: no controlled shutdown, logs recovered at start.
    pub fn kill(&self) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            assert!(Instant::now() < deadline, "broker {pid} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(self.dir.join("kafka.pid"));
    }

    /// Starts it again on the same port and data.
    pub fn restart(&self) {
        self.launch();
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.split_whitespace().nth(2) == Some("Z")).unwrap_or(true)
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
