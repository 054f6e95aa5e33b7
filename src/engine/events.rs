//! The engine's telemetry as typed events, in the manner of Vector's `internal_events`: one
//! struct per thing that happens, whose `emit` writes its one log line and counts it in its
//! metric, so that what an operator reads in the log and what a dashboard counts cannot drift
//! apart and each event's fields are named in one place. docs/observability.md lists them.
//! Depends on the metrics and the engine's error causes only.

use std::path::Path;
use std::time::Duration;

use super::error::{Cause, EngineError};
use crate::metrics::Metrics;

/// Something the engine reports: logged and counted by `emit`.
pub trait InternalEvent {
    fn emit(self, metrics: &Metrics);
}

/// The group gave this instance partitions.
pub struct PartitionsAssigned<'a> {
    pub count: usize,
    /// `topic[p, …]` per topic.
    pub described: &'a str,
}

impl InternalEvent for PartitionsAssigned<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.rebalances.with_label_values(&["assigned"]).inc();
        tracing::info!(partitions = self.count, "assigned {} partition(s): {}", self.count, self.described);
    }
}

/// The group took partitions back: revoked in order (their work committed first), or lost
/// (their uncommitted work aborted: another member may own them already).
pub struct PartitionsRevoked<'a> {
    pub lost: bool,
    pub count: usize,
    pub described: &'a str,
}

impl InternalEvent for PartitionsRevoked<'_> {
    fn emit(self, metrics: &Metrics) {
        let how = if self.lost { "lost" } else { "revoked" };
        metrics.rebalances.with_label_values(&[how]).inc();
        tracing::info!(partitions = self.count, lost = self.lost, "{how} {} partition(s): {}", self.count, self.described);
    }
}

/// A task's state was restored before it took input.
pub struct TaskRestored<'a> {
    pub query: &'a str,
    pub partition: i32,
    pub from_sled: u64,
    pub from_changelog: u64,
    /// Its sled tree was wiped first (behind its changelog, or damaged).
    pub rebuilt: bool,
    pub elapsed: Duration,
}

impl InternalEvent for TaskRestored<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.restore_records.with_label_values(&[self.query]).inc_by(self.from_sled + self.from_changelog);
        metrics.restore_duration.with_label_values(&[self.query]).observe(self.elapsed.as_secs_f64());
        tracing::info!(
            query = %self.query,
            partition = self.partition,
            sled = self.from_sled,
            changelog = self.from_changelog,
            rebuilt = self.rebuilt,
            "restored query {} partition {}: {} entries from sled, {} from the changelog in {:?}",
            self.query,
            self.partition,
            self.from_sled,
            self.from_changelog,
            self.elapsed
        );
    }
}

/// A state tree could not be read (its bookkeeping or an entry): it is wiped and rebuilt
/// from its changelog, which holds every byte of it.
pub struct StateTreeDamaged<'a> {
    pub tree: &'a str,
    pub what: &'a str,
}

impl InternalEvent for StateTreeDamaged<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.state_rebuilds.with_label_values(&["tree_damaged"]).inc();
        tracing::warn!(tree = %self.tree, "state tree {} is damaged ({}); rebuilding it from the changelog", self.tree, self.what);
    }
}

/// A sealed cycle's transaction committed, `duration` after it was sealed.
pub struct TransactionCommitted {
    pub duration: Duration,
}

impl InternalEvent for TransactionCommitted {
    fn emit(self, metrics: &Metrics) {
        metrics.transactions.with_label_values(&["committed"]).inc();
        metrics.transaction_duration.observe(self.duration.as_secs_f64());
    }
}

/// Why the open transaction is aborted and every input rewound to the last commit.
pub enum AbortReason<'a> {
    /// Sealing or committing a cycle failed with an error a rewind absorbs.
    CommitFailed(&'a EngineError),
    /// Processing records failed with an error a rewind absorbs.
    ProcessingFailed(&'a EngineError),
    /// Partitions were lost to the group: their uncommitted work must not be committed.
    PartitionsLost,
}

/// The open transaction is being aborted.
pub struct TransactionAborted<'a> {
    pub reason: AbortReason<'a>,
}

impl InternalEvent for TransactionAborted<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.transactions.with_label_values(&["aborted"]).inc();
        match self.reason {
            AbortReason::CommitFailed(e) => {
                tracing::warn!(error = %e, "the commit cycle failed: {e}; aborting the transaction and rewinding to the last commit")
            }
            AbortReason::ProcessingFailed(e) => {
                tracing::warn!(error = %e, "processing failed: {e}; aborting the transaction and rewinding to the last commit")
            }
            AbortReason::PartitionsLost => {
                tracing::info!("partitions were lost to the group: aborting the open transaction and rewinding to the last commit")
            }
        }
    }
}

/// Consumed repartition records could not be deleted (the broker keeps them until
/// retention; the next purge tries again).
pub struct RepartitionPurgeFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for RepartitionPurgeFailed<'_> {
    fn emit(self, _: &Metrics) {
        tracing::warn!(error = %self.error, "cannot purge consumed repartition records: {}", self.error);
    }
}

/// A run of the engine ended in a fault a new run fixes: it starts again after `backoff`.
pub struct RunFailed<'a> {
    pub cause: Cause,
    pub attempt: u32,
    pub backoff: Duration,
    pub error: &'a EngineError,
}

impl InternalEvent for RunFailed<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.recoveries.with_label_values(&[self.cause.label()]).inc();
        let error = self.error;
        tracing::warn!(
            cause = self.cause.label(),
            attempt = self.attempt,
            error = %error,
            "{}; starting the engine again in-process in {:?} from the last commit (the uncommitted work is dropped): {error}",
            describe(self.cause),
            self.backoff
        );
    }
}

/// The disk under the state directory is full: the engine waits for room.
pub struct StorageFull<'a> {
    pub dir: &'a Path,
    pub needed: usize,
    pub error: &'a EngineError,
}

impl InternalEvent for StorageFull<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.recoveries.with_label_values(&[Cause::StorageFull.label()]).inc();
        let error = self.error;
        tracing::warn!(
            cause = Cause::StorageFull.label(),
            dir = %self.dir.display(),
            error = %error,
            "{}: stopped taking input and not ready until {} bytes can be written there again; then the store is reopened and restored from the changelogs: {error}",
            describe(Cause::StorageFull),
            self.needed
        );
    }
}

/// Still no room, a minute after the last time this was said.
pub struct StillNoRoom<'a> {
    pub dir: &'a Path,
    pub error: &'a std::io::Error,
}

impl InternalEvent for StillNoRoom<'_> {
    fn emit(self, _: &Metrics) {
        let (dir, e) = (self.dir.display(), self.error);
        tracing::warn!(dir = %dir, error = %e, "still no room in the state directory {dir}: {e}");
    }
}

/// The state directory has room again after `waited`.
pub struct RoomAgain<'a> {
    pub dir: &'a Path,
    pub waited: Duration,
}

impl InternalEvent for RoomAgain<'_> {
    fn emit(self, _: &Metrics) {
        tracing::warn!(
            cause = Cause::StorageFull.label(),
            waited_ms = self.waited.as_millis() as u64,
            "the state directory {} has room again after {:?}; starting the engine again in-process from the last commit",
            self.dir.display(),
            self.waited
        );
    }
}

/// Runs kept failing for longer than `kafka.recovery_limit`: the process exits.
pub struct RecoveryGaveUp<'a> {
    pub cause: Cause,
    pub attempts: u32,
    pub over: Duration,
    pub limit: Duration,
    pub error: &'a EngineError,
}

impl InternalEvent for RecoveryGaveUp<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.recoveries.with_label_values(&["gave_up"]).inc();
        let error = self.error;
        tracing::error!(
            cause = self.cause.label(),
            attempts = self.attempts,
            error = %error,
            "giving up: {} runs in a row ended in a fault over {:?} (kafka.recovery_limit {:?}); the last: {error}",
            self.attempts,
            self.over,
            self.limit
        );
    }
}

/// A second instance with this one's identity fenced it: the process exits (the error says
/// so when it does).
pub struct DuplicateInstance;

impl InternalEvent for DuplicateInstance {
    fn emit(self, metrics: &Metrics) {
        metrics.recoveries.with_label_values(&["duplicate_instance"]).inc();
    }
}

/// A stop was asked for while recovering: nothing uncommitted is lost.
pub struct StoppedWhileRecovering {
    pub cause: Cause,
}

impl InternalEvent for StoppedWhileRecovering {
    fn emit(self, _: &Metrics) {
        tracing::info!(cause = self.cause.label(), "stopping while recovering from {}", self.cause.label());
    }
}

/// The state directory did not open: it was moved aside and the state is rebuilt from the
/// changelogs.
pub struct StateDirectoryRebuilt<'a> {
    pub dir: &'a Path,
    pub moved_to: &'a Path,
    pub reason: &'a dyn std::fmt::Display,
}

impl InternalEvent for StateDirectoryRebuilt<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.state_rebuilds.with_label_values(&["open_failed"]).inc();
        let (dir, aside, why) = (self.dir.display(), self.moved_to.display(), self.reason);
        tracing::warn!(
            dir = %dir,
            moved_to = %aside,
            reason = %why,
            "the state directory {dir} could not be opened ({why}); moved it to {aside} and rebuilding the state from the changelogs"
        );
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
        Cause::StorageFull => "the disk under the state directory is full",
        Cause::StateFailed => "the state store failed reading or writing its directory (it is reopened, and moved aside if it no longer opens)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_counts_under_its_own_label() {
        let m = Metrics::new().expect("metrics");
        let e = EngineError::Setup("x".into());
        RunFailed { cause: Cause::TransactionTimeout, attempt: 1, backoff: Duration::ZERO, error: &e }.emit(&m);
        StorageFull { dir: Path::new("/tmp"), needed: 1, error: &e }.emit(&m);
        RecoveryGaveUp { cause: Cause::BrokerUnavailable, attempts: 3, over: Duration::ZERO, limit: Duration::ZERO, error: &e }.emit(&m);
        TransactionAborted { reason: AbortReason::PartitionsLost }.emit(&m);
        PartitionsRevoked { lost: true, count: 2, described: "t[0, 1]" }.emit(&m);
        StateTreeDamaged { tree: "q/0", what: "bad" }.emit(&m);
        let recoveries = |l: &str| m.recoveries.with_label_values(&[l]).get();
        assert_eq!((recoveries("transaction_timeout"), recoveries("storage_full"), recoveries("gave_up")), (1, 1, 1));
        assert_eq!(recoveries("broker_unavailable"), 0, "giving up is counted as gave_up, not as another run");
        assert_eq!(m.transactions.with_label_values(&["aborted"]).get(), 1);
        assert_eq!(m.rebalances.with_label_values(&["lost"]).get(), 1);
        assert_eq!(m.rebalances.with_label_values(&["revoked"]).get(), 0);
        assert_eq!(m.state_rebuilds.with_label_values(&["tree_damaged"]).get(), 1);
    }
}
