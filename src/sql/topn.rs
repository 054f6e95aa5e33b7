//! Window Top-N: a query that ranks the rows of a windowed relation and keeps the first,
//!
//! ```sql
//! SELECT ... FROM (
//!   SELECT ..., ROW_NUMBER() OVER (PARTITION BY window, category ORDER BY n DESC) AS rn
//!   FROM (SELECT category, item, window(ts, '10 minutes') AS window, count(*) AS n ...)
//! ) WHERE rn <= 3
//! ```
//!
//! is planned as one Top-N operator (`PlanBody::TopN`) over the relation the ranking reads
//! (usually a windowed aggregation, cut into a stage below it). The logical plan is
//! Projection → Filter (the bound on the rank) → SubqueryAlias / Projection* → Window
//! (the ranking) → input. PARTITION BY must hold the window (or the event time itself), so
//! that each partition is complete once the watermark passes it: the operator emits each
//! partition once, like Flink's Window Top-N. Depends on the planner's types.

use std::sync::Arc;

use datafusion_common::ScalarValue;
use datafusion_expr::expr::WindowFunction;
use datafusion_expr::logical_plan::{Filter, Projection, Window};
use datafusion_expr::utils::split_conjunction;
use datafusion_expr::{Between, BinaryExpr, Expr, LogicalPlan, Operator, WindowFunctionDefinition};

use super::error::SqlError;
use super::plan::*;
use super::planner::{compile, exchange, output_columns, sink_key, Relation, Streaming};
use crate::config::OutputMode;
use crate::expr::ranking::Ranking;
use crate::expr::Scalar;
use crate::types::is_window;

/// The nodes of a ranking query between its top projection and the ranking.
pub struct Shape<'p> {
    pub filter: Option<&'p Filter>,
    /// Select lists between the filter and the ranking, top first.
    pub layers: Vec<&'p Projection>,
    pub window: &'p Window,
}

/// The ranking below `node` (the input of a query's top projection), if the query is one.
pub fn find(node: &LogicalPlan) -> Option<Shape<'_>> {
    let mut at = node;
    let mut filter = None;
    let mut layers = Vec::new();
    loop {
        match at {
            LogicalPlan::Filter(f) if filter.is_none() && layers.is_empty() => {
                filter = Some(f);
                at = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(a) => at = a.input.as_ref(),
            LogicalPlan::Projection(p) => {
                layers.push(p);
                at = p.input.as_ref();
            }
            LogicalPlan::Window(window) => return Some(Shape { filter, layers, window }),
            _ => return None,
        }
    }
}

const HOW: &str =
    "rank rows per window in a subquery and keep the first ones outside it: SELECT * FROM (SELECT ..., ROW_NUMBER() OVER (PARTITION BY window, ... ORDER BY ...) AS rn FROM ...) WHERE rn <= N";

/// Plans a Window Top-N query: `top` is its top projection.
pub fn plan_topn(s: &Streaming, top: &Projection, shape: Shape) -> Result<QueryPlan, SqlError> {
    let ctx = s.ctx;
    let Some(filter) = shape.filter else {
        return Err(SqlError::new(format!("a ranking over a stream must keep its first rows, or it is every row numbered: {HOW}")));
    };
    if ctx.sink.output_mode != OutputMode::Append {
        return Err(SqlError::new(format!(
            "a Window Top-N emits each window's first rows once, when the window closes: sink {} must use output_mode append",
            ctx.sink.name
        )));
    }
    let w = shape.window;
    let [call] = w.window_expr.as_slice() else {
        return Err(SqlError::new("a Top-N query takes one ranking function (ROW_NUMBER, RANK or DENSE_RANK)"));
    };
    let call_expr = match call {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    let Expr::WindowFunction(wf) = call_expr else {
        return Err(SqlError::new(format!("{call} is not supported on a stream; {HOW}")));
    };
    let WindowFunction { fun, params } = wf.as_ref();
    let ranking = match fun {
        WindowFunctionDefinition::WindowUDF(u) => Ranking::from_name(u.name()),
        WindowFunctionDefinition::AggregateUDF(_) => None,
    }
    .ok_or_else(|| SqlError::new(format!("{call} is not supported on a stream; {HOW}")))?;
    if params.order_by.is_empty() {
        return Err(SqlError::new(format!("{}() OVER (...) needs ORDER BY: which rows come first?", ranking.name())));
    }
    let Relation::Scan { node, filter: where_filter } = s.relation(w.input.as_ref())? else {
        return Err(SqlError::new("a ranking reads one input here (a join is read as a subquery)"));
    };
    let input = s.input(node)?;
    let keys = params.partition_by.iter().map(|e| compile(e, input.df)).collect::<Result<Vec<_>, _>>()?;
    let order_values = params.order_by.iter().map(|o| compile(&o.expr, input.df)).collect::<Result<Vec<_>, _>>()?;
    let order: Vec<SortKey> = params.order_by.iter().map(|o| SortKey { descending: !o.asc, nulls_first: o.nulls_first }).collect();
    let order_text: Vec<String> =
        params.order_by.iter().map(|o| format!("{} {}", o.expr.schema_name(), if o.asc { "ASC" } else { "DESC" })).collect();
    let window_key = partition_time(&input, &keys)?;
    let columns: Vec<Scalar> =
        input.df.fields().iter().enumerate().map(|(i, f)| Scalar::column(i, f.name(), f.data_type().clone())).collect();
    let mut values = order_values;
    values.extend(columns);

    // The rank is the ranking node's last column; follow it up to the filter.
    let mut rank = Some(w.schema.fields().len() - 1);
    let mut layers = Vec::new();
    for p in shape.layers.iter().rev() {
        let exprs = p.expr.iter().map(|e| compile(e, p.input.schema())).collect::<Result<Vec<_>, _>>()?;
        rank = rank.and_then(|r| exprs.iter().position(|e| e.as_column() == Some(r)));
        layers.push((exprs, Arc::new(p.schema.as_arrow().clone())));
    }
    let Some(rank) = rank else {
        return Err(SqlError::new(format!("the ranking must be selected to be kept by: {HOW}")));
    };
    let limit =
        split_conjunction(&filter.predicate).into_iter().filter_map(|c| bound(c, rank, filter.input.schema())).min().ok_or_else(|| {
            SqlError::new(format!("a ranking over a stream must keep its first rows (WHERE rn <= N, rn < N or rn = 1): {HOW}"))
        })?;
    let filter_scalar = compile(&filter.predicate, filter.input.schema())?;
    let projection = top.expr.iter().map(|e| compile(e, top.input.schema())).collect::<Result<Vec<_>, _>>()?;
    let where_filter = where_filter.map(|f| compile(f, input.df)).transpose()?;
    let exchange = exchange(&input, &keys, ctx)?;
    let output = output_columns(top.schema.as_ref());
    let key_columns = sink_key(ctx, &output, Vec::new())?;
    let body = PlanBody::TopN(TopNPlan {
        ranking,
        limit,
        order,
        window_key,
        row_schema: Arc::new(w.schema.as_arrow().clone()),
        layers,
        filter: Some(filter_scalar),
        projection,
        text: format!("{}() OVER (PARTITION BY {})", ranking.name().to_uppercase(), partition_text(&params.partition_by)),
        order_text,
    });
    Ok(s.plan_base(
        OutputMode::Append,
        vec![InputPlan { scan: input.scan_plan(where_filter), keys, values, exchange }],
        body,
        output,
        key_columns,
    ))
}

fn partition_text(exprs: &[Expr]) -> String {
    exprs.iter().map(|e| e.schema_name().to_string()).collect::<Vec<_>>().join(", ")
}

/// Which key tells when a partition is complete: a window over the event time (its index), or
/// the event-time column itself (`None`).
fn partition_time(input: &super::planner::Input, keys: &[Scalar]) -> Result<Option<usize>, SqlError> {
    let missing = || {
        SqlError::new(format!(
            "a ranking over a stream ranks the rows of each window: PARTITION BY the window of the aggregation below (select `window` there), or window({}, ...), so that each partition ends when the watermark passes it",
            input.event_time_name()
        ))
    };
    let et = input.event_time_index().ok_or_else(missing)?;
    if let Some(k) = keys.iter().position(|k| is_window(&k.data_type) && k.columns() == [et]) {
        return Ok(Some(k));
    }
    if keys.iter().any(|k| k.as_column() == Some(et)) {
        return Ok(None);
    }
    Err(missing())
}

/// The largest rank conjunct `c` keeps, when it bounds column `rank` from above.
fn bound(c: &Expr, rank: usize, schema: &datafusion_common::DFSchema) -> Option<u64> {
    let is_rank = |e: &Expr| match e {
        Expr::Column(col) => schema.index_of_column(col).ok() == Some(rank),
        _ => false,
    };
    let int = |e: &Expr| -> Option<i64> {
        let v = match e {
            Expr::Literal(v, _) => v.clone(),
            Expr::Cast(c) => match c.expr.as_ref() {
                Expr::Literal(v, _) => v.clone(),
                _ => return None,
            },
            _ => return None,
        };
        match v.cast_to(&arrow::datatypes::DataType::Int64).ok()? {
            ScalarValue::Int64(Some(k)) => Some(k),
            _ => None,
        }
    };
    let k = match c {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, k) = if is_rank(left) {
                (*op, int(right)?)
            } else if is_rank(right) {
                (op.swap()?, int(left)?)
            } else {
                return None;
            };
            match op {
                Operator::LtEq | Operator::Eq => k,
                Operator::Lt => k - 1,
                _ => return None,
            }
        }
        Expr::Between(Between { expr, negated: false, high, .. }) if is_rank(expr) => int(high)?,
        _ => return None,
    };
    Some(u64::try_from(k.max(0)).unwrap_or(0))
}

/// The output column of a Top-N plan that carries its rows' event time (the window key, when
/// the ranked relation's columns pass it through), for the stage above it.
pub fn event_time_column(plan: &QueryPlan, t: &TopNPlan) -> Option<usize> {
    let input = plan.inputs.first()?;
    let EventTimeColumn::Column(et) = input.scan.event_time? else { return None };
    let key = t.window_key.and_then(|k| input.keys.get(k)).map_or(Some(et), |k| k.as_column())?;
    // The operator's row is the ranked relation's columns (in order), then the rank.
    let mut at = key;
    for (exprs, _) in &t.layers {
        at = exprs.iter().position(|e| e.as_column() == Some(at))?;
    }
    t.projection.iter().position(|e| e.as_column() == Some(at))
}
