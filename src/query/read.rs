//! A published query's result table, read from the committed state of the partitions this
//! instance owns: each tree is loaded into a fresh operator of the query's plan (the code that
//! restores a task), which lists its result rows; HAVING and the projection then run as the
//! task runs them before its sink. The writer is held off while the trees are read, so the
//! table is that of one commit cycle. Depends on `live`, `runtime::task` and `operators`.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Field, Schema};

use super::live::Published;
use super::{Limits, QueryError};
use crate::expr::true_rows;
use crate::operators::DATA_PREFIX;
use crate::runtime::task::build_operator;
use crate::sql::{PlanBody, QueryPlan};
use crate::state::Reads;
use crate::types::arrays::rows_to_batch;
use crate::types::Row;

/// Why a partition is not in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Another instance owns it (or nobody does, during a rebalance).
    NotOwned,
    /// Its state is still being restored here.
    Restoring,
}

/// The table, and which partitions it covers.
pub struct Table {
    pub batch: RecordBatch,
    pub partitions: usize,
    pub answered: Vec<i32>,
    pub missing: Vec<(i32, Missing)>,
    /// State entries read.
    pub scanned: u64,
}

/// Reads `published`'s table. `scanned` counts entries read by earlier tables of the same
/// query, against `limits`.
pub fn read_table(published: &Published, reads: &Reads, limits: &Limits, started: Instant, scanned: u64) -> Result<Table, QueryError> {
    let plan = &published.plan;
    if !matches!(plan.body, PlanBody::Aggregate(_)) {
        return Err(QueryError::bad_request(format!(
            "query {} keeps no result table: only aggregations do (its rows are in its sink topic, {})",
            plan.name, plan.sink_topic
        )));
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut answered = Vec::new();
    let mut missing = Vec::new();
    let mut scanned = scanned;
    {
        let _cycle = reads.hold();
        for p in 0..published.partitions as i32 {
            let Some(owned) = published.owned.get(&p) else {
                missing.push((p, Missing::NotOwned));
                continue;
            };
            if reads.applied() < owned.ready_at {
                missing.push((p, Missing::Restoring));
                continue;
            }
            let mut op = build_operator(plan).ok_or_else(|| QueryError::internal(format!("query {} has no operator", plan.name)))?;
            owned.tree.for_each(|k, v| {
                if k.first() != Some(&DATA_PREFIX) {
                    return Ok(());
                }
                scanned += 1;
                if scanned > limits.max_rows {
                    return Err(QueryError::too_large(format!(
                        "the query would read more than {} state rows (http.query_max_rows); narrow it to fewer partitions or raise the limit",
                        limits.max_rows
                    )));
                }
                if scanned.is_multiple_of(4096) && started.elapsed() > limits.timeout {
                    return Err(QueryError::timeout(limits));
                }
                op.restore(k, Some(v))
                    .map_err(|e| QueryError::internal(format!("cannot read the state of query {} partition {p}: {e}", plan.name)))
            })?;
            if !op.snapshot(&mut rows) {
                return Err(QueryError::bad_request(format!("query {} keeps no result table", plan.name)));
            }
            answered.push(p);
        }
    }
    let batch = result_batch(plan, &rows)?;
    Ok(Table { batch, partitions: published.partitions, answered, missing, scanned })
}

/// The operator's result rows as the query's output columns: HAVING, then the projection.
fn result_batch(plan: &QueryPlan, rows: &[Row]) -> Result<RecordBatch, QueryError> {
    let PlanBody::Aggregate(a) = &plan.body else { return Err(QueryError::internal("not an aggregation")) };
    let failed = |e: String| QueryError::internal(format!("query {}: cannot build its result rows: {e}", plan.name));
    let agg_rows: Vec<Row> = rows.iter().map(|r| a.row_map.iter().map(|&i| r.get(i).cloned().unwrap_or_default()).collect()).collect();
    let batch = rows_to_batch(&a.row_schema, &agg_rows).map_err(|e| failed(e.to_string()))?;
    let batch = match &a.having {
        None => batch,
        Some(h) => {
            let kept = true_rows(h.eval(&batch).map_err(|e| failed(e.to_string()))?.as_ref());
            crate::runtime::eval::take(&batch, &kept)
        }
    };
    let arrays: Vec<ArrayRef> = a.projection.iter().map(|e| e.eval(&batch)).collect::<Result<_, _>>().map_err(|e| failed(e.to_string()))?;
    let fields: Vec<Field> =
        plan.output.iter().zip(&arrays).map(|(c, a)| Field::new(c.name.clone(), a.data_type().clone(), true)).collect();
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options).map_err(|e| failed(e.to_string()))
}
