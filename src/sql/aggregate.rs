//! Planning GROUP BY: group keys, one optional window (`window(...)` or `session_window(...)`),
//! aggregate calls, HAVING and the projection over the aggregate row.

use sqlparser::ast::{self, Spanned};

use super::compile::{function_args, function_name, interval_micros, AggContext, Compiler};
use super::error::SqlError;
use super::naming::spark_name;
use super::plan::*;
use super::planner::{exchange, has_aggregate, items, sink_key, Item, PlanContext, SourceScope};
use super::scope::{Lookup, Scope};
use crate::config::OutputMode;
use crate::expr::Expr;
use crate::time::{parse_duration, WindowSpec};
use crate::types::{DataType, Value};

pub fn plan_aggregate(
    select: &ast::Select,
    group_by: &[ast::Expr],
    input: &SourceScope,
    scan: ScanPlan,
    ctx: &PlanContext,
) -> Result<QueryPlan, SqlError> {
    let scope = &input.scope;
    let select_items = items(select, scope)?;
    let mut agg = AggContext::default();
    let mut window: Option<WindowKind> = None;
    let mut key_names = Vec::new();
    for g in group_by {
        let g = resolve_group_alias(g, &select_items, scope)?;
        if let ast::Expr::Function(f) = g {
            let name = function_name(f);
            if name == "window" || name == "session_window" {
                if window.is_some() {
                    return Err(SqlError::at(g.span(), "a query may group by one window only"));
                }
                window = Some(window_kind(f, input, &scan)?);
                agg.window_text = Some(g.to_string());
                continue;
            }
        }
        let e = Compiler::plain(scope, "GROUP BY").compile(g)?;
        if e.data_type() == DataType::Window {
            return Err(SqlError::at(g.span(), "group by window(...) itself, not by a window column"));
        }
        if !agg.keys.contains(&e) {
            agg.keys.push(e);
            key_names.push(spark_name(g));
        }
    }
    let mut projection = Vec::new();
    let mut output = Vec::new();
    let mut group_derived = Vec::new();
    for item in &select_items {
        let e = match (item.ast, item.star_column) {
            (Some(a), _) => Compiler { scope, agg: Some(&mut agg), clause: "SELECT" }.compile(a)?,
            (None, _) => {
                return Err(SqlError::at(item.span, "SELECT * cannot be combined with GROUP BY; list the group columns and aggregates"))
            }
        };
        output.push(OutputColumn { name: item.name.clone(), data_type: e.data_type() });
        group_derived.push(reads_only_groups(&e, agg.keys.len() + usize::from(agg.window_text.is_some())));
        projection.push(e);
    }
    let having = match &select.having {
        Some(h) => Some(Compiler { scope, agg: Some(&mut agg), clause: "HAVING" }.predicate(h)?),
        None => None,
    };
    if agg.aggregates.is_empty() && agg.keys.is_empty() && window.is_none() {
        return Err(SqlError::at(select.span(), "nothing to aggregate"));
    }
    check_output_mode(window, input, ctx)?;
    let exchange = exchange(input.source, &agg.keys, &input.schema, ctx)?;
    let group_keys: Vec<usize> = group_derived.iter().enumerate().filter(|(_, d)| **d).map(|(i, _)| i).collect();
    let key_columns = sink_key(ctx, &output, group_keys)?;
    let values = agg.aggregates.iter().map(|c| c.arg.clone().unwrap_or(Expr::Literal(Value::Null))).collect();
    Ok(QueryPlan {
        name: ctx.query_name.to_string(),
        sink: ctx.sink.name.to_string(),
        sink_topic: ctx.sink.topic.to_string(),
        output_mode: ctx.sink.output_mode,
        inputs: vec![InputPlan { scan, keys: agg.keys, values, exchange }],
        body: PlanBody::Aggregate(AggregatePlan { key_names, window, aggregates: agg.aggregates, having, projection }),
        output,
        key_columns,
    })
}

fn check_output_mode(window: Option<WindowKind>, input: &SourceScope, ctx: &PlanContext) -> Result<(), SqlError> {
    let mode = ctx.sink.output_mode;
    let source = input.source;
    match (window, mode) {
        (Some(_), _) if source.watermark_delay.is_none() => Err(SqlError::new(format!(
            "a windowed aggregation needs a watermark, or its windows never close and its state grows forever: set sources.{}.watermark_delay (e.g. \"10m\")",
            source.name
        ))),
        (Some(_), OutputMode::Complete) => Err(SqlError::new(format!(
            "output_mode complete keeps every window forever (state grows without bound); use append or update for a windowed aggregation (sink {})",
            ctx.sink.name
        ))),
        (None, OutputMode::Append) => Err(SqlError::new(format!(
            "append mode emits a group once it is final, but a group without an event-time window is never final: add window({}, '1 hour') to GROUP BY, or set sinks.{}.output_mode to update or complete",
            input.event_time_name(),
            ctx.sink.name
        ))),
        _ => Ok(()),
    }
}

/// GROUP BY 1 (an ordinal) or GROUP BY alias (a select alias that is not a column).
fn resolve_group_alias<'s>(g: &'s ast::Expr, items: &[Item<'s>], scope: &Scope) -> Result<&'s ast::Expr, SqlError> {
    match g {
        ast::Expr::Value(v) => {
            if let ast::Value::Number(n, _) = &v.value {
                let i: usize = n.parse().map_err(|_| SqlError::at(g.span(), "GROUP BY position must be a whole number"))?;
                return items
                    .get(i.wrapping_sub(1))
                    .and_then(|it| it.ast)
                    .ok_or_else(|| SqlError::at(g.span(), format!("GROUP BY {i}: the select list has {} items", items.len())));
            }
            Ok(g)
        }
        ast::Expr::Identifier(id) if matches!(scope.lookup(None, &id.value), Lookup::NotFound) => {
            match items.iter().find(|it| it.name.eq_ignore_ascii_case(&id.value)).and_then(|it| it.ast) {
                Some(e) if !has_aggregate(e) => Ok(e),
                _ => Ok(g),
            }
        }
        _ => Ok(g),
    }
}

fn reads_only_groups(e: &Expr, group_columns: usize) -> bool {
    let cols = e.columns();
    !cols.is_empty() && cols.iter().all(|&c| c < group_columns)
}

/// `window(time, '1 hour' [, '10 minutes' [, '5 minutes']])` or `session_window(time, '5 minutes')`.
fn window_kind(f: &ast::Function, input: &SourceScope, scan: &ScanPlan) -> Result<WindowKind, SqlError> {
    let name = function_name(f);
    let (args, _) = function_args(f)?;
    let args: Vec<&ast::Expr> = args.into_iter().flatten().collect();
    let session = name == "session_window";
    let (min, max) = if session { (2, 2) } else { (2, 4) };
    if args.len() < min || args.len() > max {
        return Err(SqlError::at(
            f.span(),
            if session {
                "session_window() takes (time_column, gap_duration), e.g. session_window(time, '5 minutes')"
            } else {
                "window() takes (time_column, window_duration [, slide_duration [, start_time]]), e.g. window(time, '10 minutes', '5 minutes')"
            },
        ));
    }
    let time = Compiler::plain(&input.scope, "window()").compile(args[0])?;
    let is_event_time = matches!(&time, Expr::Column { index, .. } if Some(*index) == input.event_time_index());
    if !is_event_time {
        let want = match scan.event_time {
            Some(_) => format!("the source's event_time column `{}`", input.event_time_name()),
            None => format!("an event-time column: set sources.{}.event_time", scan.source),
        };
        return Err(SqlError::at(
            args[0].span(),
            format!("{name}() must be over {want}, because its watermark decides when windows close"),
        ));
    }
    let duration = |a: &ast::Expr, what: &str| -> Result<i64, SqlError> {
        match a {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => parse_duration(s).map_err(|e| SqlError::at(a.span(), format!("{what}: {e}"))),
                _ => Err(SqlError::at(a.span(), format!("{what} must be a string like '10 minutes'"))),
            },
            ast::Expr::Interval(i) => interval_micros(i).map_err(|e| SqlError::at(a.span(), e)),
            _ => Err(SqlError::at(a.span(), format!("{what} must be a literal like '10 minutes'"))),
        }
    };
    if session {
        let gap = duration(args[1], "session gap")?;
        if gap <= 0 {
            return Err(SqlError::at(args[1].span(), "the session gap must be greater than zero"));
        }
        return Ok(WindowKind::Session { gap });
    }
    let size = duration(args[1], "window duration")?;
    let slide = if args.len() >= 3 { duration(args[2], "slide duration")? } else { size };
    let offset = if args.len() == 4 { duration(args[3], "start time")? } else { 0 };
    if size <= 0 || slide <= 0 {
        return Err(SqlError::at(f.span(), "window and slide durations must be greater than zero"));
    }
    if slide > size {
        return Err(SqlError::at(
            args[2].span(),
            "the slide duration must be at most the window duration (Spark's rule); a larger slide would skip events",
        ));
    }
    if offset >= slide {
        return Err(SqlError::at(args[3].span(), "the start time must be less than the slide duration"));
    }
    Ok(WindowKind::Fixed(WindowSpec { size, slide, offset }))
}
