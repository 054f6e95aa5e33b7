//! A published query's result table, read from committed state: the entries of each owned
//! partition's tree are copied out while the writer is held off (so they are those of one
//! commit cycle), then each partition's entries (local, or fetched from the instance that owns
//! it) are loaded into a fresh operator of the query's plan (the code that restores a task),
//! which lists its result rows; HAVING and the projection then run as the task runs them
//! before its sink. Depends on `live`, `runtime::task` and `operators`.

use std::time::Instant;

use arrow::array::RecordBatch;

use super::live::Published;
use super::{Limits, QueryError};
use crate::operators::DATA_PREFIX;
use crate::runtime::task::build_operator;
use crate::sql::{PlanBody, QueryPlan};
use crate::state::Reads;
use crate::types::Row;

/// One partition's state entries (operator data only).
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Why a partition is not in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Another instance owns it (or nobody does, during a rebalance).
    NotOwned,
    /// Its state is still being restored here.
    Restoring,
}

/// Counts state rows read against the limits.
pub struct Budget<'l> {
    pub limits: &'l Limits,
    pub started: Instant,
    pub scanned: u64,
}

impl Budget<'_> {
    pub fn take(&mut self, rows: u64) -> Result<(), QueryError> {
        self.scanned += rows;
        if self.scanned > self.limits.max_rows {
            return Err(QueryError::too_large(format!(
                "the query would read more than {} state rows (http.query_max_rows); narrow it or raise the limit",
                self.limits.max_rows
            )));
        }
        self.check_time()
    }

    pub fn check_time(&self) -> Result<(), QueryError> {
        if self.started.elapsed() > self.limits.timeout {
            return Err(QueryError::timeout(self.limits));
        }
        Ok(())
    }
}

/// Refuses a query that keeps no result table.
pub fn check_queryable(plan: &QueryPlan) -> Result<(), QueryError> {
    match plan.body {
        PlanBody::Aggregate(_) => Ok(()),
        _ => Err(QueryError::bad_request(format!(
            "query {} keeps no result table: only aggregations do (its rows are in its sink topic, {})",
            plan.name, plan.sink_topic
        ))),
    }
}

/// What this instance has of a table.
pub struct Local {
    pub found: Vec<(i32, Entries)>,
    /// The partitions it cannot read, with why.
    pub missing: Vec<(i32, Missing)>,
}

/// The entries of the partitions of `published` this instance owns (all of them, or those in
/// `only`), and the partitions it cannot read.
pub fn local_entries(published: &Published, reads: &Reads, only: Option<&[i32]>, budget: &mut Budget<'_>) -> Result<Local, QueryError> {
    check_queryable(&published.plan)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let _cycle = reads.hold();
    for p in 0..published.partitions as i32 {
        if only.is_some_and(|o| !o.contains(&p)) {
            continue;
        }
        let Some(owned) = published.owned.get(&p) else {
            missing.push((p, Missing::NotOwned));
            continue;
        };
        if reads.applied() < owned.ready_at {
            missing.push((p, Missing::Restoring));
            continue;
        }
        let mut entries = Vec::new();
        owned.tree.for_each(|k, v| {
            if k.first() == Some(&DATA_PREFIX) {
                entries.push((k.to_vec(), v.to_vec()));
                if entries.len().is_multiple_of(4096) {
                    budget.take(4096)?;
                }
            }
            Ok::<(), QueryError>(())
        })?;
        budget.take((entries.len() % 4096) as u64)?;
        found.push((p, entries));
    }
    Ok(Local { found, missing })
}

/// The result table of `plan` over the given partitions' entries.
pub fn table(plan: &QueryPlan, partitions: &[(i32, Entries)], budget: &Budget<'_>) -> Result<RecordBatch, QueryError> {
    let mut rows: Vec<Row> = Vec::new();
    for (p, entries) in partitions {
        let mut op = build_operator(plan).ok_or_else(|| QueryError::internal(format!("query {} has no operator", plan.name)))?;
        for (k, v) in entries {
            op.restore(k, Some(v))
                .map_err(|e| QueryError::internal(format!("cannot read the state of query {} partition {p}: {e}", plan.name)))?;
        }
        if !op.snapshot(&mut rows) {
            return Err(QueryError::bad_request(format!("query {} keeps no result table", plan.name)));
        }
        budget.check_time()?;
    }
    crate::runtime::top::aggregate_output(plan, &rows)
        .map_err(|e| QueryError::internal(format!("query {}: cannot build its result rows: {e}", plan.name)))
}
