//! `ORDER BY ... LIMIT n` over a complete-mode aggregation: each time the table changed, the
//! task ranks the whole table (it holds all of it: the planner sends every group to one
//! partition) and writes only the difference from what it wrote before: the rows that entered
//! the first n or changed there, and a tombstone for each row that left. What it wrote is part
//! of the task's state (one entry per row, at most n, under [`TOP_PREFIX`]), so a restarted
//! task diffs against the rows its sink holds. Also the aggregation's result rows as output
//! columns (HAVING, then the projection), which `/query` reads too. Depends on `sql` plan
//! types, `expr` and `types`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::{lexsort_to_indices, SortColumn, SortOptions};
use arrow::datatypes::{Field, Schema};

use crate::expr::true_rows;
use crate::operators::ChangeSink;
use crate::sql::{PlanBody, QueryPlan, TopSpec};
use crate::state::codec::CodecError;
use crate::types::arrays::{rows_to_batch, value_at};
use crate::types::{decode_key, encode_key_value, Row};

/// Key prefix of the rows a top-n task has written (the operator's are 0x01, the clock's 0x02).
pub const TOP_PREFIX: u8 = 0x03;

/// An aggregation's result rows (as its operator emits them) as the query's output columns:
/// HAVING, then the projection, each column named as the sink names it.
pub fn aggregate_output(plan: &QueryPlan, rows: &[Row]) -> Result<RecordBatch, String> {
    let PlanBody::Aggregate(a) = &plan.body else { return Err(format!("query {} is not an aggregation", plan.name)) };
    let agg_rows: Vec<Row> = rows.iter().map(|r| a.row_map.iter().map(|&i| r.get(i).cloned().unwrap_or_default()).collect()).collect();
    let batch = rows_to_batch(&a.row_schema, &agg_rows).map_err(|e| e.to_string())?;
    let batch = match &a.having {
        None => batch,
        Some(h) => {
            let kept = true_rows(h.eval(&batch).map_err(|e| e.to_string())?.as_ref());
            super::eval::take(&batch, &kept)
        }
    };
    let arrays: Vec<ArrayRef> = a.projection.iter().map(|e| e.eval(&batch)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let fields: Vec<Field> =
        plan.output.iter().zip(&arrays).map(|(c, a)| Field::new(c.name.clone(), a.data_type().clone(), true)).collect();
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options).map_err(|e| e.to_string())
}

/// What a top-n task has written, by sink key.
pub struct Top {
    spec: TopSpec,
    key_columns: Vec<usize>,
    written: BTreeMap<Vec<u8>, Row>,
    /// Keys whose entry changed since the last `take_changes`.
    changed: BTreeSet<Vec<u8>>,
    /// Keys with an entry in the changelog and sled.
    persisted: BTreeSet<Vec<u8>>,
}

impl Top {
    pub fn new(spec: TopSpec, key_columns: Vec<usize>) -> Top {
        Top { spec, key_columns, written: BTreeMap::new(), changed: BTreeSet::new(), persisted: BTreeSet::new() }
    }

    /// The first n rows of `table` (output columns) in the order, as values.
    pub fn rank(&self, table: &RecordBatch) -> Result<Vec<Row>, String> {
        if table.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let columns: Vec<SortColumn> = self
            .spec
            .order
            .iter()
            .map(|o| SortColumn {
                values: table.column(o.column).clone(),
                options: Some(SortOptions { descending: o.descending, nulls_first: o.nulls_first }),
            })
            .collect();
        let indices = lexsort_to_indices(&columns, Some(self.spec.limit)).map_err(|e| format!("cannot rank the table: {e}"))?;
        Ok(indices.values().iter().map(|&i| table.columns().iter().map(|c| value_at(c.as_ref(), i as usize)).collect()).collect())
    }

    fn key(&self, row: &Row) -> Vec<u8> {
        let mut k = Vec::new();
        for &c in &self.key_columns {
            encode_key_value(row.get(c).unwrap_or(&crate::types::Value::Null), &mut k);
        }
        k
    }

    /// What to write now that the first n are `top`: the rows to write (new or changed) and
    /// the rows whose keys get a tombstone (they left). Remembers `top` as written.
    pub fn diff(&mut self, top: Vec<Row>) -> (Vec<Row>, Vec<Row>) {
        let next: BTreeMap<Vec<u8>, Row> = top.into_iter().map(|r| (self.key(&r), r)).collect();
        let mut write = Vec::new();
        for (k, r) in &next {
            if self.written.get(k) != Some(r) {
                write.push(r.clone());
                self.changed.insert(k.clone());
            }
        }
        let mut left = Vec::new();
        for (k, r) in &self.written {
            if !next.contains_key(k) {
                left.push(r.clone());
                self.changed.insert(k.clone());
            }
        }
        self.written = next;
        (write, left)
    }

    pub fn take_changes(&mut self, f: &mut ChangeSink<'_>) {
        for k in std::mem::take(&mut self.changed) {
            let mut key = vec![TOP_PREFIX];
            key.extend_from_slice(&k);
            match self.written.get(&k) {
                Some(row) => {
                    let mut value = Vec::new();
                    for v in row {
                        encode_key_value(v, &mut value);
                    }
                    f(&key, Some(&value));
                    self.persisted.insert(k);
                }
                None if self.persisted.remove(&k) => f(&key, None),
                None => {}
            }
        }
    }

    pub fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
        let k = key.get(1..).ok_or(CodecError::Corrupt("top-n state key"))?.to_vec();
        match value {
            Some(v) => {
                let row = decode_key(v).map_err(|_| CodecError::Corrupt("top-n row"))?;
                self.written.insert(k.clone(), row);
                self.persisted.insert(k);
            }
            None => {
                self.written.remove(&k);
                self.persisted.remove(&k);
            }
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.written.clear();
        self.changed.clear();
        self.persisted.clear();
    }

    pub fn entries(&self) -> usize {
        self.written.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::TopOrder;
    use crate::types::Value;
    use proptest::prelude::*;

    fn table(rows: &BTreeMap<String, i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", arrow::datatypes::DataType::Utf8, true),
            Field::new("n", arrow::datatypes::DataType::Int64, true),
        ]));
        let rows: Vec<Row> = rows.iter().map(|(k, n)| vec![Value::str(k), Value::Long(*n)]).collect();
        rows_to_batch(&schema, &rows).unwrap()
    }

    fn top(limit: usize) -> Top {
        let order = vec![
            TopOrder { column: 1, descending: true, nulls_first: false },
            TopOrder { column: 0, descending: false, nulls_first: true },
        ];
        Top::new(TopSpec { order, limit }, vec![0])
    }

    /// The first `limit` of the table, by n descending then k.
    fn model(rows: &BTreeMap<String, i64>, limit: usize) -> BTreeMap<String, i64> {
        let mut v: Vec<(&String, &i64)> = rows.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.into_iter().take(limit).map(|(k, n)| (k.clone(), *n)).collect()
    }

    proptest! {
        /// Whatever order the counts grow in, with a restart from persisted state anywhere:
        /// replaying what was written (rows, tombstones) gives the model's first n, and
        /// nothing is written for a commit that changes nothing in them.
        #[test]
        fn the_written_changes_replay_to_the_first_n(events in proptest::collection::vec((0u8..12, 1i64..4), 1..200), limit in 1usize..6, restart in 0usize..200) {
            let mut counts: BTreeMap<String, i64> = BTreeMap::new();
            let mut sink: BTreeMap<String, i64> = BTreeMap::new();
            let mut state: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut t = top(limit);
            for (i, (k, add)) in events.iter().enumerate() {
                *counts.entry(format!("k{k:02}")).or_default() += add;
                if i == restart {
                    t = top(limit);
                    for (k, v) in &state {
                        t.restore(k, Some(v)).unwrap();
                    }
                }
                let before = model(&sink, usize::MAX);
                let (write, left) = t.diff(t.rank(&table(&counts)).unwrap());
                for r in &left {
                    let Value::Str(k) = &r[0] else { panic!() };
                    prop_assert!(sink.remove(k.as_ref()).is_some(), "a tombstone for a row never written");
                }
                for r in &write {
                    let (Value::Str(k), Value::Long(n)) = (&r[0], &r[1]) else { panic!() };
                    sink.insert(k.to_string(), *n);
                }
                t.take_changes(&mut |k, v| match v {
                    Some(v) => { state.insert(k.to_vec(), v.to_vec()); }
                    None => { state.remove(k); }
                });
                prop_assert_eq!(&sink, &model(&counts, limit));
                if model(&counts, limit) == before {
                    prop_assert!(write.is_empty() && left.is_empty(), "nothing written when the first n did not change");
                }
                prop_assert!(state.len() <= limit);
            }
        }
    }
}
