//! Planning GROUP BY: group keys, one optional window (`window(...)` or `session_window(...)`),
//! aggregate calls (eddy's own accumulators for count, sum, avg, min and max; DataFusion's for
//! every other aggregate), HAVING and the projection over the aggregate row.

use std::sync::Arc;

use datafusion_common::ScalarValue;
use datafusion_expr::expr::{AggregateFunction, Case};
use datafusion_expr::logical_plan::{Aggregate, Projection};
use datafusion_expr::{Expr, ExprSchemable};

use super::error::SqlError;
use super::plan::*;
use super::planner::{compile, exchange, output_columns, sink_key, Input, Relation, Streaming};
use crate::config::OutputMode;
use crate::expr::Scalar;
use crate::time::{parse_duration, WindowSpec};
use crate::types::DataType;

pub fn plan_aggregate(
    s: &Streaming,
    p: &Projection,
    having: Option<&Expr>,
    agg: &Aggregate,
    relation: Relation,
) -> Result<QueryPlan, SqlError> {
    let ctx = s.ctx;
    let (node, filter) = match relation {
        Relation::Scan { node, filter } => (node, filter),
        Relation::Join { .. } => {
            return Err(SqlError::new(
                "aggregating over a join is not supported yet: write the join to a topic, and aggregate that topic in a second query",
            ))
        }
    };
    let input = s.input(node)?;
    let df = input.df;
    let mut window: Option<WindowKind> = None;
    let mut keys: Vec<Scalar> = Vec::new();
    let mut key_names = Vec::new();
    // Where each group expression lands in the operator's result row.
    let mut group_slots: Vec<Option<usize>> = Vec::new();
    for (gi, g) in agg.group_expr.iter().enumerate() {
        if let Some(w) = window_call(g) {
            if window.is_some() {
                return Err(SqlError::new("a query may group by one window only"));
            }
            window = Some(window_kind(w, &input)?);
            group_slots.push(None);
            continue;
        }
        let t = g.get_type(df).map_err(|e| SqlError::new(crate::expr::registry::clean_error(&e)))?;
        if crate::types::is_window(&t) {
            return Err(SqlError::new("group by window(...) itself, not by a window column"));
        }
        group_slots.push(Some(keys.len()));
        keys.push(compile(g, df)?);
        key_names.push(agg.schema.field(gi).name().clone());
    }
    let mut aggregates = Vec::new();
    let mut values: Vec<Scalar> = Vec::new();
    for (ai, a) in agg.aggr_expr.iter().enumerate() {
        let result_type = agg.schema.field(agg.group_expr.len() + ai).data_type().clone();
        let (call, args) = aggregate_call(a, df, result_type, values.len())?;
        values.extend(args);
        aggregates.push(call);
    }
    if aggregates.is_empty() && keys.is_empty() && window.is_none() {
        return Err(SqlError::new("nothing to aggregate"));
    }
    check_output_mode(window, &input, ctx)?;
    let exchange = exchange(&input, &keys, ctx)?;
    let key_count = keys.len();
    let has_window = usize::from(window.is_some());
    let mut row_map: Vec<usize> = group_slots.iter().map(|slot| slot.unwrap_or(key_count)).collect();
    row_map.extend((0..aggregates.len()).map(|i| key_count + has_window + i));
    let agg_schema = agg.schema.as_ref();
    let having = having.map(|h| compile(h, agg_schema)).transpose()?;
    let projection = p.expr.iter().map(|e| compile(e, p.input.schema())).collect::<Result<Vec<_>, _>>()?;
    let output = output_columns(p.schema.as_ref());
    let groups = agg.group_expr.len();
    let group_keys: Vec<usize> = projection
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_constant() && e.columns().iter().all(|&c| c < groups))
        .map(|(i, _)| i)
        .collect();
    let key_columns = sink_key(ctx, &output, group_keys)?;
    let filter = filter.map(|f| compile(f, df)).transpose()?;
    Ok(s.plan_base(
        ctx.sink.output_mode,
        vec![InputPlan { scan: input.scan_plan(filter), keys, values, exchange }],
        PlanBody::Aggregate(AggregatePlan {
            key_names,
            window,
            aggregates,
            having,
            projection,
            row_schema: Arc::new(agg_schema.as_arrow().clone()),
            row_map,
            retention: ctx.sink.retention,
        }),
        output,
        key_columns,
    ))
}

/// `window(...)` or `session_window(...)`, if `e` is one.
fn window_call(e: &Expr) -> Option<&datafusion_expr::expr::ScalarFunction> {
    match e {
        Expr::ScalarFunction(f) if matches!(f.func.name(), "window" | "session_window") => Some(f),
        Expr::Alias(a) => window_call(&a.expr),
        _ => None,
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => strip(&a.expr),
        Expr::Cast(c) => strip(&c.expr),
        Expr::TryCast(c) => strip(&c.expr),
        other => other,
    }
}

/// One aggregate call and its argument expressions over the scan row (`first_value`: where
/// its arguments start among the row's values).
pub fn aggregate_call(
    a: &Expr,
    df: &datafusion_common::DFSchema,
    result_type: DataType,
    first_value: usize,
) -> Result<(AggregateCall, Vec<Scalar>), SqlError> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = strip(a) else {
        return Err(SqlError::new(format!("{a} is not an aggregate call")));
    };
    let name = func.name().to_string();
    let text = a.human_display().to_string();
    // FILTER (WHERE c) is the aggregate over CASE WHEN c THEN arg END.
    let mut args: Vec<Expr> = params.args.clone();
    #[allow(deprecated)]
    let star = name == "count"
        && (matches!(args.as_slice(), [Expr::Literal(v, _)] if !v.is_null())
            || matches!(args.as_slice(), [Expr::Wildcard { .. }])
            || args.is_empty());
    if star {
        args = vec![Expr::Literal(ScalarValue::Int64(Some(1)), None)];
    }
    if let Some(cond) = &params.filter {
        let then = if star {
            Expr::Literal(ScalarValue::Int64(Some(1)), None)
        } else {
            args.first().cloned().unwrap_or(Expr::Literal(ScalarValue::Null, None))
        };
        args = vec![Expr::Case(Case::new(None, vec![(cond.clone(), Box::new(then))], None))];
    }
    let star = star && params.filter.is_none();
    let arg_types: Vec<DataType> =
        args.iter().map(|x| x.get_type(df)).collect::<Result<_, _>>().map_err(|e| SqlError::new(crate::expr::registry::clean_error(&e)))?;
    let flat = |t: &DataType| !matches!(t, DataType::List(_) | DataType::Struct(_) | DataType::Map(..) | DataType::Decimal128(..));
    let native = |t: &DataType| t.is_integer() || t.is_floating() || matches!(t, DataType::Null);
    let plain = params.order_by.is_empty() && params.null_treatment.is_none();
    let kind = match (name.as_str(), params.distinct, arg_types.as_slice()) {
        ("count", _, [_, _, ..]) if params.distinct => {
            return Err(SqlError::new(
                "count(DISTINCT ...) takes one column here; count a concatenation, e.g. count(DISTINCT concat(a, '|', b))",
            ))
        }
        ("count", false, [_]) if star => AggregateKind::CountStar,
        ("count", false, [_]) if plain => AggregateKind::Count,
        ("count", true, [_]) if plain => AggregateKind::CountDistinct,
        ("sum", false, [t]) if plain && native(t) => AggregateKind::Sum,
        ("avg", false, [t])
            if plain && (native(t) || matches!(t, DataType::Decimal128(..)) && matches!(result_type, DataType::Decimal128(..))) =>
        {
            AggregateKind::Avg
        }
        ("min", _, [t]) if plain && flat(t) => AggregateKind::Min,
        ("max", _, [t]) if plain && flat(t) => AggregateKind::Max,
        _ => AggregateKind::Udaf,
    };
    let (udaf, scalars, arity) = if kind == AggregateKind::Udaf {
        let literals = args
            .iter()
            .map(|x| match strip(x) {
                Expr::Literal(v, _) => Some(v.clone()),
                _ => None,
            })
            .collect();
        let literals: Vec<Option<ScalarValue>> = literals;
        if !params.order_by.is_empty() {
            return Err(SqlError::new(format!("{name}(... ORDER BY ...) is not supported on a stream: rows arrive in their own order")));
        }
        let scalars = args.iter().map(|x| compile(x, df)).collect::<Result<Vec<_>, _>>()?;
        let n = scalars.len();
        let ignore_nulls = params.null_treatment == Some(datafusion_expr::expr::NullTreatment::IgnoreNulls);
        let factory = crate::expr::aggregate::UdafFactory::new(
            func.clone(),
            params.distinct,
            ignore_nulls,
            &literals,
            &arg_types,
            &result_type,
            &text,
        )
        .map_err(|e| SqlError::new(format!("{text}: {e}")))?;
        (Some(Arc::new(factory)), scalars, n)
    } else if kind == AggregateKind::CountStar {
        (None, vec![Scalar::null()], 1)
    } else {
        (None, vec![compile(&args[0], df)?], 1)
    };
    Ok((AggregateCall { kind, arg_types, result_type, first_value, arity, text, udaf }, scalars))
}

fn check_output_mode(window: Option<WindowKind>, input: &Input, ctx: &super::planner::PlanContext) -> Result<(), SqlError> {
    let mode = ctx.sink.output_mode;
    let source = input.source;
    match (window, mode) {
        (Some(_), _) if source.watermark_delay.is_none() => Err(SqlError::new(format!(
            "a windowed aggregation needs a watermark, or its windows never close and its state grows forever: set sources.{}.watermark_delay (e.g. \"10m\")",
            source.name
        ))),
        (Some(WindowKind::Session { .. }), OutputMode::Complete) => Err(SqlError::new(format!(
            "output_mode complete is not supported over session windows (a session's key changes as it grows); use append or update (sink {})",
            ctx.sink.name
        ))),
        (None, OutputMode::Complete) if ctx.sink.retention.is_some() => Err(SqlError::new(format!(
            "sinks.{}.retention drops old windows, but this aggregation has no window: group by window({}, ...) or remove retention",
            ctx.sink.name,
            input.event_time_name()
        ))),
        (None, OutputMode::Append) => Err(SqlError::new(format!(
            "append mode emits a group once it is final, but a group without an event-time window is never final: add window({}, '1 hour') to GROUP BY, or set sinks.{}.output_mode to update or complete",
            input.event_time_name(),
            ctx.sink.name
        ))),
        _ => Ok(()),
    }
}

/// `window(time, '1 hour' [, '10 minutes' [, '5 minutes']])` or `session_window(time, '5 minutes')`.
fn window_kind(f: &datafusion_expr::expr::ScalarFunction, input: &Input) -> Result<WindowKind, SqlError> {
    let name = f.func.name();
    let session = name == "session_window";
    let args = &f.args;
    let is_time_column = |e: &Expr| match strip(e) {
        Expr::Column(c) => input.event_time_index().is_some_and(|i| input.df.field(i).name() == &c.name),
        _ => false,
    };
    // Over a windowed result, the window itself or window_time(window) is the event time.
    let is_event_time = match strip(&args[0]) {
        Expr::ScalarFunction(f) if f.func.name() == "window_time" => f.args.first().is_some_and(is_time_column),
        other => is_time_column(other),
    };
    if !is_event_time {
        let want = match input.event_time() {
            Some(_) => format!("the source's event_time column `{}`", input.event_time_name()),
            None => format!("an event-time column: set sources.{}.event_time", input.source.name),
        };
        return Err(SqlError::at_column(
            &args[0],
            format!("{name}() must be over {want}, because its watermark decides when windows close"),
        ));
    }
    let duration = |a: &Expr, what: &str| -> Result<i64, SqlError> {
        match strip(a) {
            Expr::Literal(ScalarValue::Utf8(Some(s)), _) => parse_duration(s).map_err(|e| SqlError::new(format!("{what}: {e}"))),
            Expr::Literal(v, _) => crate::expr::functions::duration_micros(v)
                .ok_or_else(|| SqlError::new(format!("{what} must be a string like '10 minutes'"))),
            _ => Err(SqlError::new(format!("{what} must be a literal like '10 minutes'"))),
        }
    };
    if session {
        let gap = duration(&args[1], "session gap")?;
        if gap <= 0 {
            return Err(SqlError::new("the session gap must be greater than zero"));
        }
        return Ok(WindowKind::Session { gap });
    }
    let size = duration(&args[1], "window duration")?;
    let slide = if args.len() >= 3 { duration(&args[2], "slide duration")? } else { size };
    let offset = if args.len() == 4 { duration(&args[3], "start time")? } else { 0 };
    if size <= 0 || slide <= 0 {
        return Err(SqlError::new("window and slide durations must be greater than zero"));
    }
    if slide > size {
        return Err(SqlError::new(
            "the slide duration must be at most the window duration (Spark's rule); a larger slide would skip events",
        ));
    }
    if offset >= slide {
        return Err(SqlError::new("the start time must be less than the slide duration"));
    }
    Ok(WindowKind::Fixed(WindowSpec { size, slide, offset }))
}
