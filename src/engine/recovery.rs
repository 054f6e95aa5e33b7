//! The supervisor: runs the engine, and when a run ends in a fault a new run can fix (the
//! coordinator timed out a transaction, the brokers are unreachable, a client failed), starts
//! a new run in the same process, as Kafka Streams handles a migrated task: the old clients
//! are dropped with their uncommitted work, a new transactional producer fences the old epoch
//! and aborts whatever it left open, the consumer rejoins, and every task is restored from
//! sled and its changelog. What was committed is exactly what the next run starts from, so
//! the output stays exactly once. The state directory is opened here, once, and moved aside
//! when it is damaged (sled is a cache of the changelogs).
//!
//! The process exits only for a fault no new run fixes: a second instance with the same
//! identity, a bad pipeline, or runs that keep failing for longer than
//! `kafka.recovery_limit`. Depends on the engine's run and the metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::Cause;
use super::run::{run_once, RunContext};
use super::{EngineError, RunOptions, RunSummary};
use crate::metrics::{Metrics, Status};
use crate::pipeline::Pipeline;
use crate::state::StateStore;

/// Damaged state directories kept for inspection.
const KEEP_DAMAGED: usize = 3;
/// A run that lasted this long was healthy even without a commit (an idle input).
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Runs the pipeline until `shutdown` is set (or, with `stop_at_end`, the input is consumed),
/// recovering in-process from the faults [`EngineError::cause`] names.
pub fn run(
    pipeline: Arc<Pipeline>,
    opts: RunOptions,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
) -> Result<RunSummary, EngineError> {
    let result = supervise(&pipeline, &opts, &shutdown, &metrics, &status);
    status.set_stopped();
    result
}

fn supervise(
    pipeline: &Arc<Pipeline>,
    opts: &RunOptions,
    shutdown: &AtomicBool,
    metrics: &Arc<Metrics>,
    status: &Arc<Status>,
) -> Result<RunSummary, EngineError> {
    let config = pipeline.config();
    let store = open_state(&config.state.dir, config.state.cache_bytes, metrics)?;
    let limit = config.kafka.recovery_limit.std();
    let cx = RunContext { pipeline, opts, shutdown, metrics, status, store: &store };
    let mut total = RunSummary::default();
    let mut failing_since: Option<Instant> = None;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        let started = Instant::now();
        status.clear_recovering();
        let (result, summary) = run_once(&cx);
        add(&mut total, &summary);
        let error = match result {
            Ok(()) => return Ok(total),
            Err(e) => e,
        };
        let Some(cause) = error.cause() else {
            if matches!(error, EngineError::DuplicateInstance { .. }) {
                metrics.recoveries.with_label_values(&["duplicate_instance"]).inc();
            }
            return Err(error);
        };
        if shutdown.load(Ordering::Acquire) {
            return Err(error);
        }
        if summary.commits > 0 || started.elapsed() >= HEALTHY_AFTER {
            failing_since = None;
            backoff = FIRST_BACKOFF;
            attempts = 0;
        }
        let since = *failing_since.get_or_insert(started);
        attempts += 1;
        if since.elapsed() >= limit {
            metrics.recoveries.with_label_values(&["gave_up"]).inc();
            tracing::error!(
                cause = cause.label(),
                attempts,
                error = %error,
                "giving up: {attempts} runs in a row ended in a fault over {:?} (kafka.recovery_limit {:?}); the last: {error}",
                since.elapsed(),
                limit
            );
            return Err(EngineError::Setup(format!(
                "gave up recovering after {attempts} failed runs over {:?} (kafka.recovery_limit is {:?}); the last failure: {error}",
                since.elapsed(),
                limit
            )));
        }
        metrics.recoveries.with_label_values(&[cause.label()]).inc();
        status.set_recovering(cause.label());
        tracing::warn!(
            cause = cause.label(),
            attempt = attempts,
            error = %error,
            "{}; starting the engine again in-process in {backoff:?} from the last commit (the uncommitted work is dropped): {error}",
            describe(cause)
        );
        if !sleep_unless(shutdown, backoff) {
            return Err(error);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One sentence naming what happened.
fn describe(cause: Cause) -> &'static str {
    match cause {
        Cause::TransactionTimeout => "the transaction coordinator aborted a transaction that outlived kafka.transaction_timeout (a broker restart or a paused process) and fenced its producer epoch",
        Cause::ProducerFailed => "the transactional producer failed",
        Cause::ConsumerFailed => "the group consumer failed",
        Cause::BrokerUnavailable => "the Kafka cluster is unreachable or did not answer in time",
        Cause::RestoreStalled => "restoring state from a changelog made no progress",
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

fn open_state(dir: &std::path::Path, cache_bytes: u64, metrics: &Metrics) -> Result<StateStore, EngineError> {
    let (store, rebuilt) = StateStore::open_or_rebuild(dir, cache_bytes, KEEP_DAMAGED)?;
    if let Some((aside, why)) = rebuilt {
        metrics.state_rebuilds.with_label_values(&["open_failed"]).inc();
        tracing::warn!(
            dir = %dir.display(),
            moved_to = %aside.display(),
            reason = %why,
            "the state directory {} could not be opened ({why}); moved it to {} and rebuilding the state from the changelogs",
            dir.display(),
            aside.display()
        );
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
