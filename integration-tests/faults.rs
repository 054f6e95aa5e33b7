//! Faults eddy must survive in-process (issue: routine faults), each against a broker the
//! test starts, kills and restarts itself (127.0.0.1 only), bounded in time: the broker
//! SIGKILLed and restarted three times mid-stream for longer than the transaction timeout;
//! eddy frozen with SIGSTOP past the transaction and session timeouts; the state directory
//! garbled or deleted while eddy is down; the disk under the state directory filled up and
//! emptied again while eddy runs. In each, the read_committed output equals the batch
//! answer exactly, and the eddy process never exits by itself: only the test ends it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use eddy::gen::rng::Rng;

/// The transaction timeout of these pipelines; every outage and freeze lasts longer.
const TXN_TIMEOUT_S: u64 = 4;

fn pipeline(app: &str, bootstrap: &str, topic: &str, out: &str, state: &Path) -> String {
    tutorial_pipeline(app, bootstrap, topic, out, state, "exactly_once", "\"session.timeout.ms\": \"6000\"")
        .replace("  properties:", &format!("  transaction_timeout: {TXN_TIMEOUT_S}s\n  recovery_limit: 5m\n  properties:"))
}

struct Setup {
    broker: OwnBroker,
    topic: String,
    out: String,
    app: String,
    file: String,
    log: std::path::PathBuf,
    state: std::path::PathBuf,
    partitions: i32,
}

fn setup(test: &str, partitions: i32) -> Option<Setup> {
    let broker = OwnBroker::start(test)?;
    let topic = unique("fault-events");
    broker.create_topic(&topic, partitions);
    let (out, app) = (unique("fault-out"), unique("fault-app"));
    let state = temp_dir("fault-state");
    let file = write_pipeline(&pipeline(&app, &broker.bootstrap, &topic, &out, &state)).to_str().unwrap().to_string();
    let log = temp_dir("fault-log").join("eddy.log");
    eprintln!("{test}: eddy's log is {}", log.display());
    Some(Setup { broker, topic, out, app, file, log, state, partitions })
}

impl Setup {
    fn committed(&self) -> i64 {
        group_offsets_uncommitted(&self.broker.bootstrap, &self.app, &self.topic, self.partitions).iter().map(|o| o.max(&0)).sum()
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        let mut args = vec!["run", "-c", &self.file, "--instance-id", "i", "--log", "warn"];
        args.extend_from_slice(extra);
        spawn_eddy(&args, &self.log)
    }

    /// Waits until the group has committed `target` input records, asserting that eddy is
    /// still running all the while.
    fn wait_committed(&self, child: &mut Child, target: i64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.committed() < target {
            assert!(child.try_wait().unwrap().is_none(), "eddy exited by itself; see {}", self.log.display());
            assert!(Instant::now() < deadline, "no committed progress to {target} within {limit:?}; see {}", self.log.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM: eddy commits and exits 0 (it was running until now).
    fn stop(&self, mut child: Child) {
        assert!(child.try_wait().unwrap().is_none(), "eddy exited by itself; see {}", self.log.display());
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        let status = self.wait_exit(&mut child, Duration::from_secs(60), "eddy to exit after SIGTERM");
        assert_eq!(status.code(), Some(0), "a stopped eddy exits 0; see {}", self.log.display());
    }

    /// Waits at most `limit` for `child` to exit.
    fn wait_exit(&self, child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}; see {}", self.log.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

use std::process::Command;

/// Committed offsets read with read_uncommitted (see `Killer`: a read_committed look waits
/// while the group has a transaction open).
fn group_offsets_uncommitted(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("isolation.level", "read_uncommitted")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    match c.committed_offsets(tpl, Duration::from_secs(10)) {
        Ok(got) => (0..partitions)
            .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(rdkafka::Offset::Offset(o)) => o,
                _ => -1,
            })
            .collect(),
        Err(_) => vec![-1; partitions as usize],
    }
}

#[test]
fn broker_killed_and_restarted_three_times_mid_stream_output_exact_and_eddy_never_exits() {
    let Some(s) = setup("broker_killed_and_restarted_three_times", 2) else { return };
    let total = 1_000_000u64;
    let events = tutorial(total, 41);
    produce(&s.broker.bootstrap, &s.topic, tutorial_records(&events));
    let mut child = s.spawn(&[]);
    let mut rng = Rng::new(7);
    for (k, share) in [15u64, 40, 65].into_iter().enumerate() {
        let target = (total * (share + rng.below(10)) / 100) as i64;
        s.wait_committed(&mut child, target, Duration::from_secs(180));
        s.broker.kill();
        eprintln!("broker killed ({} of 3) with {} of {total} input records committed", k + 1, s.committed().max(target));
        // The outage itself: longer than the transaction timeout, so the coordinator aborts
        // the open transaction when it comes back.
        std::thread::sleep(Duration::from_secs(TXN_TIMEOUT_S + 3));
        assert!(child.try_wait().unwrap().is_none(), "eddy exited while the broker was down; see {}", s.log.display());
        s.broker.restart();
    }
    s.wait_committed(&mut child, total as i64, Duration::from_secs(300));
    s.stop(child);
    let log = s.log_text();
    assert!(log.contains("starting the engine again in-process"), "eddy recovered in-process at least once; see {}", s.log.display());
    assert!(!log.contains("another instance"), "no outage is a second instance; see {}", s.log.display());
    run_to_end(&s.file, "i", &s.log);
    assert_eq!(output_counts(&read(&s.broker.bootstrap, &s.out)), hourly_counts(&events, i64::MAX), "the output is exact");
}

#[test]
fn eddy_frozen_past_the_transaction_and_session_timeouts_resumes_in_process() {
    let Some(s) = setup("eddy_frozen_past_the_transaction_and_session_timeouts", 2) else { return };
    let total = 600_000u64;
    let events = tutorial(total, 43);
    produce(&s.broker.bootstrap, &s.topic, tutorial_records(&events));
    let mut child = s.spawn(&[]);
    s.wait_committed(&mut child, (total / 3) as i64, Duration::from_secs(180));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    // The freeze: past the transaction timeout and the session timeout (6 s).
    std::thread::sleep(Duration::from_secs(10));
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    s.wait_committed(&mut child, total as i64, Duration::from_secs(300));
    s.stop(child);
    assert!(!s.log_text().contains("another instance"), "a freeze is not a second instance; see {}", s.log.display());
    run_to_end(&s.file, "i", &s.log);
    assert_eq!(output_counts(&read(&s.broker.bootstrap, &s.out)), hourly_counts(&events, i64::MAX), "the output is exact");
}

/// Runs the first half of the input to its end, damages the state directory with `damage`,
/// then runs the rest: the output must be exact.
fn damaged_state(test: &str, damage: impl Fn(&Path)) -> Option<String> {
    let s = setup(test, 2)?;
    let events = tutorial(300_000, 47);
    let (first, second) = events.split_at(150_000);
    produce(&s.broker.bootstrap, &s.topic, tutorial_records(first));
    let mut run = s.spawn(&["--stop-at-end"]);
    let status = s.wait_exit(&mut run, Duration::from_secs(300), "the first run to finish");
    assert!(status.success(), "the first run failed; see {}", s.log.display());
    damage(&s.state);
    produce(&s.broker.bootstrap, &s.topic, tutorial_records(second));
    run_to_end(&s.file, "i", &s.log);
    assert_eq!(output_counts(&read(&s.broker.bootstrap, &s.out)), hourly_counts(&events, i64::MAX), "the output is exact");
    Some(s.log_text())
}

#[test]
fn a_garbled_state_directory_is_moved_aside_and_rebuilt_from_the_changelog() {
    let state_parent = std::cell::RefCell::new(None);
    let log = damaged_state("a_garbled_state_directory_is_moved_aside", |dir| {
        *state_parent.borrow_mut() = Some(dir.to_path_buf());
        let mut rng = Rng::new(5);
        for entry in walk(dir) {
            let mut bytes = std::fs::read(&entry).unwrap();
            if bytes.is_empty() {
                continue;
            }
            // A torn, scribbled-over region in every file, sled's config included.
            let start = rng.below(bytes.len() as u64 / 2 + 1) as usize;
            for b in bytes.iter_mut().skip(start).take(4096) {
                *b = rng.below(256) as u8;
            }
            std::fs::write(&entry, bytes).unwrap();
        }
    });
    let Some(log) = log else { return };
    let dir = state_parent.into_inner().unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let aside = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with(&format!("{name}.damaged-")));
    assert!(aside && log.contains("moved it to"), "the damaged directory was kept aside and the move logged: {log}");
}

#[test]
fn a_deleted_state_directory_is_rebuilt_from_the_changelog() {
    damaged_state("a_deleted_state_directory_is_rebuilt", |dir| std::fs::remove_dir_all(dir).unwrap());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_frozen_instance_whose_partitions_moved_rejoins_without_writing_and_without_exiting() {
    let Some(s) = setup("a_frozen_instance_whose_partitions_moved_rejoins", 2) else { return };
    let total = 600_000u64;
    let events = tutorial(total, 53);
    produce(&s.broker.bootstrap, &s.topic, tutorial_records(&events));
    let b_file = write_pipeline(&pipeline(&s.app, &s.broker.bootstrap, &s.topic, &s.out, &temp_dir("fault-state-b")));
    let b_file = b_file.to_str().unwrap();
    let mut a = s.spawn(&[]);
    s.wait_committed(&mut a, (total / 5) as i64, Duration::from_secs(180));
    let pid = a.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    // B joins while A is frozen; once A's session (6 s) expires, B owns every partition and
    // carries on from A's last commit.
    let mut b = spawn_eddy(&["run", "-c", b_file, "--instance-id", "b", "--log", "warn"], &s.log);
    let before = s.committed();
    s.wait_committed(&mut b, before + (total / 10) as i64, Duration::from_secs(180));
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    // A wakes with a transaction its coordinator aborted and a group that moved on: it
    // must neither write anything that counts nor exit.
    s.wait_committed(&mut a, total as i64, Duration::from_secs(300));
    assert!(b.try_wait().unwrap().is_none(), "instance b exited by itself; see {}", s.log.display());
    s.stop(a);
    assert!(Command::new("kill").args(["-TERM", &b.id().to_string()]).status().unwrap().success());
    assert_eq!(b.wait().unwrap().code(), Some(0), "b stops cleanly; see {}", s.log.display());
    assert!(!s.log_text().contains("another instance"), "two instance ids are not duplicates; see {}", s.log.display());
    run_to_end(&s.file, "i", &s.log);
    assert_eq!(output_counts(&read(&s.broker.bootstrap, &s.out)), hourly_counts(&events, i64::MAX), "the output is exact");
}

/// True when this machine lets the test give eddy a disk of its own: a small tmpfs mounted
/// in a private mount namespace (`unshare -rm`, no privileges needed where user namespaces
/// are allowed).
fn private_mounts_work() -> bool {
    Command::new("unshare").args(["-rm", "true"]).status().is_ok_and(|s| s.success())
}

#[test]
fn a_full_state_disk_stops_the_engine_not_ready_until_there_is_room_then_output_exact() {
    if !private_mounts_work() {
        eprintln!("SKIPPED: this machine does not allow `unshare -rm` (user and mount namespaces), which the test needs to give eddy a small disk");
        return;
    }
    let Some(s) = setup("a_full_state_disk_stops_the_engine", 2) else { return };
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let text = pipeline(&s.app, &s.broker.bootstrap, &s.topic, &s.out, &s.state).replace("127.0.0.1:0", &addr.to_string());
    std::fs::write(&s.file, text).unwrap();
    std::fs::create_dir_all(&s.state).unwrap();
    let total = 600_000u64;
    let events = tutorial(total, 59);
    // A fifth of the input first; the rest arrives in chunks while the disk is full, so that
    // there is always input the engine could take.
    let (first, rest) = events.split_at(total as usize / 5);
    let mut chunks = rest.chunks(10_000);
    let mut produced = first.len() as i64;
    produce(&s.broker.bootstrap, &s.topic, tutorial_records(first));
    // eddy's state directory is a 64 MiB tmpfs only eddy sees; the test reaches it through
    // /proc/<pid>/root.
    let script = format!(
        "mount -t tmpfs -o size=64m eddy-state '{}' && exec '{}' run -c '{}' --instance-id i --log warn",
        s.state.display(),
        env!("CARGO_BIN_EXE_eddy"),
        s.file
    );
    let err = std::fs::OpenOptions::new().create(true).append(true).open(&s.log).unwrap();
    let mut child =
        Command::new("unshare").args(["-rm", "sh", "-c", &script]).stdout(std::process::Stdio::null()).stderr(err).spawn().unwrap();
    s.wait_committed(&mut child, produced / 2, Duration::from_secs(180));
    let filler = Path::new(&format!("/proc/{}/root", child.id())).join(s.state.strip_prefix("/").unwrap()).join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0x5Au8; 1 << 20];
        let mut written = 0usize;
        while f.write_all(&chunk).is_ok() {
            written += chunk.len();
            assert!(written < 128 << 20, "the private tmpfs should have filled up by now");
        }
        let _ = f.sync_all();
        eprintln!("filled eddy's state disk with {written} bytes");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "eddy exited when its disk filled up; see {}", s.log.display());
        if let Some((503, body)) = http_get(addr, "/readyz") {
            assert!(body.contains("storage_full"), "/readyz names the full disk: {body}");
            break;
        }
        assert!(Instant::now() < deadline, "eddy did not report not-ready within 60 s of its disk filling; see {}", s.log.display());
        // More input: writing its state is what meets the full disk.
        if let Some(c) = chunks.next() {
            produce(&s.broker.bootstrap, &s.topic, tutorial_records(c));
            produced += c.len() as i64;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let next = chunks.next().expect("input left for the time the disk is full");
    produce(&s.broker.bootstrap, &s.topic, tutorial_records(next));
    produced += next.len() as i64;
    // Not ready means stopped: no cycle commits while the disk stays full, with input waiting.
    let stopped_at = s.committed();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.committed(), stopped_at, "no input is committed while the state disk is full");
    assert!(stopped_at < produced, "input waits while the disk is full");
    let (_, metrics) = http_get(addr, "/metrics").expect("/metrics answers while waiting");
    assert!(
        metrics.lines().any(|l| l.starts_with("eddy_recoveries_total{outcome=\"storage_full\"}") && !l.ends_with(" 0")),
        "the full disk is counted"
    );
    std::fs::remove_file(&filler).unwrap();
    for c in chunks {
        produce(&s.broker.bootstrap, &s.topic, tutorial_records(c));
    }
    s.wait_committed(&mut child, total as i64, Duration::from_secs(300));
    wait_for("/readyz to answer 200 again", Duration::from_secs(60), || http_get(addr, "/readyz").is_some_and(|(c, _)| c == 200));
    s.stop(child);
    let log = s.log_text();
    assert!(
        log.contains("the disk under the state directory is full") && log.contains("has room again"),
        "the log says what happened: {log}"
    );
    run_to_end(&s.file, "i", &s.log);
    assert_eq!(output_counts(&read(&s.broker.bootstrap, &s.out)), hourly_counts(&events, i64::MAX), "the output is exact");
}
