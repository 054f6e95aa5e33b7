//! Executes the logical plan of a batch query (`sql::BatchQuery`) over tables already in
//! memory: scan, filter, projection, GROUP BY with eddy's own accumulators (so an aggregate
//! gives the answer it gives in a pipeline), DISTINCT, ORDER BY, LIMIT/OFFSET and UNION ALL.
//! Joins and window functions are refused with the reason. Expressions are compiled as the
//! pipeline's are (`expr::Scalar`). Depends on `sql`, `expr`, `operators` and `types`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn, SortOptions};
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion_expr::logical_plan::{Aggregate, Distinct, FetchType, Limit, SkipType, Sort};
use datafusion_expr::{Expr, LogicalPlan};

use super::QueryError;
use crate::expr::{true_rows, Scalar};
use crate::operators::{Accumulator, CallSpec};
use crate::sql::aggregate_call;
use crate::types::arrays::{rows_to_batch, value_at, ColumnReader};
use crate::types::{FxHashMap, Row, Value};

/// Runs `plan` over `tables` (table name → its rows).
pub fn execute(plan: &LogicalPlan, tables: &HashMap<String, RecordBatch>) -> Result<RecordBatch, QueryError> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let batch = tables
                .get(scan.table_name.table())
                .ok_or_else(|| QueryError::internal(format!("table {} was not read", scan.table_name)))?;
            let batch = match &scan.projection {
                Some(columns) => batch.project(columns).map_err(arrow_error)?,
                None => batch.clone(),
            };
            Ok(match scan.fetch {
                Some(n) => batch.slice(0, n.min(batch.num_rows())),
                None => batch,
            })
        }
        LogicalPlan::Projection(p) => {
            let input = execute(&p.input, tables)?;
            let exprs: Vec<Scalar> = p.expr.iter().map(|e| compile(e, &p.input)).collect::<Result<_, _>>()?;
            let names: Vec<String> = p.schema.fields().iter().map(|f| f.name().clone()).collect();
            project(&input, &exprs, &names)
        }
        LogicalPlan::Filter(f) => {
            let input = execute(&f.input, tables)?;
            let predicate = compile(&f.predicate, &f.input)?;
            let mask = predicate.eval(&input).map_err(eval_error)?;
            Ok(crate::runtime::eval::take(&input, &true_rows(mask.as_ref())))
        }
        LogicalPlan::Aggregate(a) => aggregate(a, tables),
        LogicalPlan::Distinct(Distinct::All(input)) => {
            let batch = execute(input, tables)?;
            distinct(&batch)
        }
        LogicalPlan::Sort(s) => sort(s, tables),
        LogicalPlan::Limit(l) => limit(l, tables),
        LogicalPlan::SubqueryAlias(a) => execute(&a.input, tables),
        LogicalPlan::Union(u) => {
            let batches: Vec<RecordBatch> = u.inputs.iter().map(|i| execute(i, tables)).collect::<Result<_, _>>()?;
            let schema = plain_schema(u.schema.as_arrow());
            let batches: Vec<RecordBatch> = batches
                .into_iter()
                .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(arrow_error)?;
            concat_batches(&schema, &batches).map_err(arrow_error)
        }
        LogicalPlan::EmptyRelation(e) => {
            let schema = plain_schema(e.schema.as_arrow());
            let options = RecordBatchOptions::new().with_row_count(Some(usize::from(e.produce_one_row)));
            RecordBatch::try_new_with_options(schema, Vec::new(), &options).map_err(arrow_error)
        }
        LogicalPlan::Join(_) => Err(QueryError::bad_request("a join of result tables is not supported: query one table at a time")),
        LogicalPlan::Window(_) => Err(QueryError::bad_request(
            "window functions (OVER ...) over a result table are not supported yet; ORDER BY ... LIMIT gives the top rows",
        )),
        other => Err(QueryError::bad_request(format!("{} is not supported in a query of a result table", other.display()))),
    }
}

fn compile(e: &Expr, input: &LogicalPlan) -> Result<Scalar, QueryError> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    Scalar::compile(e, input.schema()).map_err(QueryError::bad_request)
}

fn eval_error(e: crate::expr::EvalError) -> QueryError {
    QueryError::bad_request(format!("the query failed on the table's rows: {e}"))
}

fn arrow_error(e: arrow::error::ArrowError) -> QueryError {
    QueryError::internal(e.to_string())
}

/// Every column nullable: the answer's schema says names and types, not what was proven.
fn plain_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(schema.fields().iter().map(|f| Field::new(f.name(), f.data_type().clone(), true)).collect::<Vec<_>>()))
}

fn project(batch: &RecordBatch, exprs: &[Scalar], names: &[String]) -> Result<RecordBatch, QueryError> {
    let arrays: Vec<ArrayRef> = exprs.iter().map(|e| e.eval(batch)).collect::<Result<_, _>>().map_err(eval_error)?;
    let fields: Vec<Field> = names.iter().zip(&arrays).map(|(n, a)| Field::new(n, a.data_type().clone(), true)).collect();
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options).map_err(arrow_error)
}

/// One group: the first row it was seen in (for its key values) and its accumulators.
struct Group {
    row: usize,
    accumulators: Vec<Accumulator>,
}

fn aggregate(a: &Aggregate, tables: &HashMap<String, RecordBatch>) -> Result<RecordBatch, QueryError> {
    let input = execute(&a.input, tables)?;
    let df = a.input.schema();
    if a.group_expr.iter().any(|g| matches!(g, Expr::GroupingSet(_))) {
        return Err(QueryError::bad_request("GROUPING SETS, CUBE and ROLLUP are not supported over a result table"));
    }
    let keys: Vec<Scalar> = a.group_expr.iter().map(|g| compile(g, &a.input)).collect::<Result<_, _>>()?;
    let mut calls = Vec::new();
    let mut args: Vec<Scalar> = Vec::new();
    for (i, e) in a.aggr_expr.iter().enumerate() {
        let result_type = a.schema.field(a.group_expr.len() + i).data_type().clone();
        let (call, call_args) = aggregate_call(e, df, result_type, args.len()).map_err(|e| QueryError::bad_request(e.to_string()))?;
        args.extend(call_args);
        calls.push(call);
    }
    let specs = CallSpec::of(&calls);
    let key_arrays: Vec<ArrayRef> = keys.iter().map(|k| k.eval(&input)).collect::<Result<_, _>>().map_err(eval_error)?;
    let arg_arrays: Vec<ArrayRef> = args.iter().map(|k| k.eval(&input)).collect::<Result<_, _>>().map_err(eval_error)?;
    let readers: Vec<ColumnReader> = key_arrays.iter().map(|k| ColumnReader::new(k.as_ref())).collect();
    let mut index: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut key = Vec::new();
    let mut values: Vec<Value> = Vec::with_capacity(arg_arrays.len());
    for row in 0..input.num_rows() {
        key.clear();
        for r in &readers {
            r.encode_key(row, &mut key);
        }
        let g = match index.get(&key) {
            Some(&g) => g,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push(Group { row, accumulators: specs.iter().map(CallSpec::accumulator).collect() });
                groups.len() - 1
            }
        };
        values.clear();
        values.extend(arg_arrays.iter().map(|a| value_at(a.as_ref(), row)));
        for (spec, acc) in specs.iter().zip(&mut groups[g].accumulators) {
            spec.update(acc, &values);
        }
    }
    // No GROUP BY: one row, even over no rows (count 0, sum NULL).
    if keys.is_empty() && groups.is_empty() {
        groups.push(Group { row: 0, accumulators: specs.iter().map(CallSpec::accumulator).collect() });
    }
    let rows: Vec<Row> = groups
        .iter()
        .map(|g| {
            let mut r: Row = key_arrays.iter().map(|k| value_at(k.as_ref(), g.row)).collect();
            r.extend(g.accumulators.iter().map(Accumulator::result));
            r
        })
        .collect();
    rows_to_batch(&plain_schema(a.schema.as_arrow()), &rows).map_err(arrow_error)
}

fn distinct(batch: &RecordBatch) -> Result<RecordBatch, QueryError> {
    let readers: Vec<ColumnReader> = batch.columns().iter().map(|c| ColumnReader::new(c.as_ref())).collect();
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::new();
    let mut key = Vec::new();
    for row in 0..batch.num_rows() {
        key.clear();
        for r in &readers {
            r.encode_key(row, &mut key);
        }
        if seen.insert(key.clone()) {
            kept.push(row as u32);
        }
    }
    Ok(crate::runtime::eval::take(batch, &kept))
}

fn sort(s: &Sort, tables: &HashMap<String, RecordBatch>) -> Result<RecordBatch, QueryError> {
    let input = execute(&s.input, tables)?;
    if input.num_rows() == 0 {
        return Ok(input);
    }
    let columns: Vec<SortColumn> = s
        .expr
        .iter()
        .map(|e| {
            let values = compile(&e.expr, &s.input)?.eval(&input).map_err(eval_error)?;
            Ok(SortColumn { values, options: Some(SortOptions { descending: !e.asc, nulls_first: e.nulls_first }) })
        })
        .collect::<Result<_, QueryError>>()?;
    let indices: UInt32Array = lexsort_to_indices(&columns, s.fetch).map_err(|e| {
        QueryError::bad_request(format!("cannot sort by {}: {e}", s.expr.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")))
    })?;
    take_record_batch(&input, &indices).map_err(arrow_error)
}

fn limit(l: &Limit, tables: &HashMap<String, RecordBatch>) -> Result<RecordBatch, QueryError> {
    let unsupported = || QueryError::bad_request("LIMIT and OFFSET take a number");
    let skip = match l.get_skip_type().map_err(|_| unsupported())? {
        SkipType::Literal(n) => n,
        SkipType::UnsupportedExpr => return Err(unsupported()),
    };
    let fetch = match l.get_fetch_type().map_err(|_| unsupported())? {
        FetchType::Literal(n) => n,
        FetchType::UnsupportedExpr => return Err(unsupported()),
    };
    let input = execute(&l.input, tables)?;
    let start = skip.min(input.num_rows());
    let len = fetch.map_or(input.num_rows() - start, |n| n.min(input.num_rows() - start));
    Ok(input.slice(start, len))
}
