//! The engine: joins the consumer group, feeds polled records to every query's tasks (the
//! Kafka-free `runtime`) on one thread, and commits output, state changes and offsets in one
//! transaction per cycle (DESIGN sections 2, 4, 5); a supervisor starts a new run of it
//! in-process after a fault a new run can fix (recovery.rs). Depends on every lower module; `app` and
//! the CLI are its only callers.

mod commit;
mod committer;
mod core;
mod emit;
mod error;
mod events;
mod ids;
mod progress;
mod rebalance;
mod recovery;
mod restore;
mod run;
mod source;
mod table;

pub use crate::runtime::{H_ERROR_KIND, H_ERROR_MESSAGE, H_QUERY, H_SOURCE_OFFSET, H_SOURCE_PARTITION, H_SOURCE_TOPIC, H_WATERMARK};
pub use error::{Cause, EngineError};
pub use recovery::{run, run_with};
pub use run::{layout, required_topics, Layout};

/// How this process runs the pipeline.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stable identity of this instance (the pod name): part of the transactional id and
    /// the static group membership id.
    pub instance_id: String,
    /// Exit once every assigned partition is consumed to its end (bounded runs, tests).
    pub stop_at_end: bool,
    /// With `stop_at_end`: treat the input as finished and close every window before
    /// exiting, like Flink does at the end of a bounded source. The final watermark is saved.
    pub flush_at_end: bool,
    /// Fault injection for tests and chaos drills: abort every Nth commit cycle (after its
    /// records and changelog were sent) instead of committing it; exactly once, the commit
    /// fails on the committer thread while the next cycle is processed. `None` in production.
    pub inject_abort_every: Option<u64>,
}

/// Totals of one run, for the caller.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub records_in: u64,
    pub records_out: u64,
    pub commits: u64,
    pub aborts: u64,
    pub restored_from_sled: u64,
    pub restored_from_changelog: u64,
}
