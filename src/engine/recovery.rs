//! The supervisor: runs the engine, and when a run ends in a fault a new run can fix (the
//! coordinator timed out a transaction, the brokers are unreachable, a client failed), starts
//! a new run in the same process, as Kafka Streams handles a migrated task: the old clients
//! are dropped with their uncommitted work, a new transactional producer fences the old epoch
//! and aborts whatever it left open, the consumer rejoins, and every task is restored from
//! sled and its changelog. What was committed is exactly what the next run starts from, so
//! the output stays exactly once. The state directory is opened here, once, and moved aside
//! when it is damaged (sled is a cache of the changelogs).
//!
//! A full disk under the state directory stops the engine (the consumer leaves the group, so
//! another instance may take the partitions, and /readyz says why) until there is room
//! again; then the store is reopened and restored like after any fault. sled refuses every
//! write once one failed, so any state failure reopens the store.
//!
//! The process exits only for a fault no new run fixes: a second instance with the same
//! identity, a bad pipeline, or runs that keep failing for longer than
//! `kafka.recovery_limit` (waiting for disk space has no limit). A stop asked for while
//! recovering is a clean stop. Depends on the engine's run, state and the metrics.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::Cause;
use super::events::{
    DuplicateInstance, InternalEvent, RecoveryGaveUp, RoomAgain, RunFailed, StateDirectoryRebuilt, StillNoRoom, StoppedWhileRecovering,
    StorageFull,
};
use super::run::{run_once, RunContext};
use super::{EngineError, RunOptions, RunSummary};
use crate::metrics::{Metrics, Status};
use crate::pipeline::Pipeline;
use crate::query::LiveTables;
use crate::state::{has_room, StateStore};

/// Damaged state directories kept for inspection.
const KEEP_DAMAGED: usize = 3;
/// A run that lasted this long was healthy even without a commit (an idle input).
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// Room the state directory needs before a run starts again after the disk was full.
const ROOM_TO_RESUME: usize = 8 << 20;

/// Runs the pipeline until `shutdown` is set (or, with `stop_at_end`, the input is consumed),
/// recovering in-process from the faults [`EngineError::cause`] names.
pub fn run(
    pipeline: Arc<Pipeline>,
    opts: RunOptions,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
) -> Result<RunSummary, EngineError> {
    run_with(pipeline, opts, shutdown, metrics, status, LiveTables::new())
}

/// [`run`], publishing the result tables into `live` (for `/query`).
pub fn run_with(
    pipeline: Arc<Pipeline>,
    opts: RunOptions,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    live: Arc<LiveTables>,
) -> Result<RunSummary, EngineError> {
    let result = supervise(&pipeline, &opts, &shutdown, &metrics, &status, &live);
    status.set_stopped();
    live.detach();
    result
}

fn supervise(
    pipeline: &Arc<Pipeline>,
    opts: &RunOptions,
    shutdown: &AtomicBool,
    metrics: &Arc<Metrics>,
    status: &Arc<Status>,
    live: &Arc<LiveTables>,
) -> Result<RunSummary, EngineError> {
    let config = pipeline.config();
    let dir = &config.state.dir;
    let limit = config.kafka.recovery_limit.std();
    // Opened before each run that has none: after a state failure the store is dropped and
    // reopened (sled refuses every write once one failed).
    let mut store: Option<StateStore> = None;
    let mut total = RunSummary::default();
    let mut failing_since: Option<Instant> = None;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        let started = Instant::now();
        let (result, summary) = match open_once(&mut store, dir, config.state.cache_bytes, metrics) {
            Err(e) => (Err(e), RunSummary::default()),
            Ok(opened) => {
                status.clear_recovering();
                let cx = RunContext { pipeline, opts, shutdown, metrics, status, store: opened, live };
                run_once(&cx)
            }
        };
        add(&mut total, &summary);
        let error = match result {
            Ok(()) => return Ok(total),
            Err(e) => e,
        };
        let Some(cause) = error.cause() else {
            if matches!(error, EngineError::DuplicateInstance { .. }) {
                DuplicateInstance.emit(metrics);
            }
            return Err(error);
        };
        if matches!(cause, Cause::StorageFull | Cause::StateFailed) {
            // Every tree and the writer went with the run: this is the last handle.
            store = None;
        }
        if shutdown.load(Ordering::Acquire) {
            return stopped_while(cause, total, metrics);
        }
        if summary.commits > 0 || started.elapsed() >= HEALTHY_AFTER {
            failing_since = None;
            backoff = FIRST_BACKOFF;
            attempts = 0;
        }
        status.set_recovering(cause.label());
        if cause == Cause::StorageFull {
            // Not a failing recovery: nothing can be done but wait, and exiting would not
            // make room. The consumer has left the group, so another instance may take over.
            StorageFull { dir, needed: ROOM_TO_RESUME, error: &error }.emit(metrics);
            let waited = Instant::now();
            if !wait_for_room(dir, shutdown, metrics) {
                return stopped_while(cause, total, metrics);
            }
            RoomAgain { dir, waited: waited.elapsed() }.emit(metrics);
            (failing_since, backoff, attempts) = (None, FIRST_BACKOFF, 0);
            continue;
        }
        let since = *failing_since.get_or_insert(started);
        attempts += 1;
        if since.elapsed() >= limit {
            RecoveryGaveUp { cause, attempts, over: since.elapsed(), limit, error: &error }.emit(metrics);
            return Err(EngineError::Setup(format!(
                "gave up recovering after {attempts} failed runs over {:?} (kafka.recovery_limit is {:?}); the last failure: {error}",
                since.elapsed(),
                limit
            )));
        }
        RunFailed { cause, attempt: attempts, backoff, error: &error }.emit(metrics);
        if !sleep_unless(shutdown, backoff) {
            return stopped_while(cause, total, metrics);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A stop asked for while recovering: nothing uncommitted is lost, so it is a clean stop.
fn stopped_while(cause: Cause, total: RunSummary, metrics: &Metrics) -> Result<RunSummary, EngineError> {
    StoppedWhileRecovering { cause }.emit(metrics);
    Ok(total)
}

/// The open store, opening it first when there is none.
fn open_once<'s>(
    store: &'s mut Option<StateStore>,
    dir: &Path,
    cache_bytes: u64,
    metrics: &Metrics,
) -> Result<&'s StateStore, EngineError> {
    if store.is_none() {
        *store = Some(open_state(dir, cache_bytes, metrics)?);
    }
    store.as_ref().ok_or_else(|| EngineError::Setup("the state store is not open".into()))
}

/// Waits until `ROOM_TO_RESUME` bytes can be written in `dir`, looking every second and
/// saying so every minute; false when `shutdown` is set first.
fn wait_for_room(dir: &Path, shutdown: &AtomicBool, metrics: &Metrics) -> bool {
    let mut said = Instant::now();
    loop {
        let room = std::fs::create_dir_all(dir).and_then(|()| has_room(dir, ROOM_TO_RESUME));
        match room {
            Ok(()) => return true,
            Err(e) if said.elapsed() >= Duration::from_secs(60) => {
                StillNoRoom { dir, error: &e }.emit(metrics);
                said = Instant::now();
            }
            Err(_) => {}
        }
        if !sleep_unless(shutdown, Duration::from_secs(1)) {
            return false;
        }
    }
}

/// Sleeps `d` in steps, returning false at once when `shutdown` is set.
fn sleep_unless(shutdown: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if shutdown.load(Ordering::Acquire) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
    }
    !shutdown.load(Ordering::Acquire)
}

fn open_state(dir: &Path, cache_bytes: u64, metrics: &Metrics) -> Result<StateStore, EngineError> {
    let (store, rebuilt) = StateStore::open_or_rebuild(dir, cache_bytes, KEEP_DAMAGED)?;
    if let Some((aside, why)) = rebuilt {
        StateDirectoryRebuilt { dir, moved_to: &aside, reason: &why }.emit(metrics);
    }
    Ok(store)
}

fn add(total: &mut RunSummary, s: &RunSummary) {
    total.records_in += s.records_in;
    total.records_out += s.records_out;
    total.commits += s.commits;
    total.aborts += s.aborts;
    total.restored_from_sled += s.restored_from_sled;
    total.restored_from_changelog += s.restored_from_changelog;
}
