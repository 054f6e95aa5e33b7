//! SELECT → [`QueryPlan`]: resolves the source, splits the query into scan, stateful operator
//! and projection, and rejects what a streaming query cannot do, saying why and what to write.

use std::time::Duration;

use sqlparser::ast::{self, Spanned};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::compile::{function_args, function_name, interval_micros, AggContext, Compiler};
use super::error::SqlError;
use super::naming::spark_name;
use super::plan::*;
use super::scope::Scope;
use crate::config::{EventTimeConfig, OutputMode};
use crate::expr::Expr;
use crate::time::{parse_duration, WindowSpec};
use crate::types::{DataType, Schema};

/// What the planner knows of one source.
#[derive(Debug, Clone)]
pub struct SourceInfo<'a> {
    pub name: &'a str,
    pub topic: &'a str,
    pub schema: &'a Schema,
    pub event_time: Option<&'a EventTimeConfig>,
    pub watermark_delay: Option<i64>,
    pub idle_timeout: Option<Duration>,
    pub partition_key: Option<&'a [String]>,
}

/// What the planner knows of the query's sink.
#[derive(Debug, Clone)]
pub struct SinkInfo<'a> {
    pub name: &'a str,
    pub topic: &'a str,
    pub output_mode: OutputMode,
    pub key: Option<&'a [String]>,
}

/// Everything a query is planned against.
#[derive(Debug, Clone)]
pub struct PlanContext<'a> {
    pub query_name: &'a str,
    pub sources: Vec<SourceInfo<'a>>,
    pub sink: SinkInfo<'a>,
    pub repartition_partitions: Option<u32>,
}

/// Whether the engine can run repartition stages yet.
const REPARTITION_SUPPORTED: bool = false;

/// Plans one SQL query.
pub fn plan_query(sql: &str, ctx: &PlanContext) -> Result<QueryPlan, SqlError> {
    let statements = Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| SqlError::from_parser(e, sql))?;
    let statement = match statements.as_slice() {
        [one] => one,
        [] => return Err(SqlError::new("the query is empty; write one SELECT statement")),
        [_, second, ..] => {
            return Err(SqlError::at(second.span(), "a query holds one SELECT statement; write each as its own entry under queries:"))
        }
    };
    let ast::Statement::Query(query) = statement else {
        return Err(SqlError::at(
            statement.span(),
            "only SELECT queries are supported; sources and sinks are declared in the pipeline file",
        ));
    };
    check_query_clauses(query)?;
    let select = match query.body.as_ref() {
        ast::SetExpr::Select(s) => s,
        ast::SetExpr::SetOperation { op, .. } => {
            return Err(SqlError::at(
                query.body.span(),
                format!("{op} is not supported; write one query per input and point both at the same sink"),
            ))
        }
        other => return Err(SqlError::at(other.span(), "only SELECT ... FROM ... queries are supported")),
    };
    plan_select(select, ctx)
}

fn check_query_clauses(query: &ast::Query) -> Result<(), SqlError> {
    if let Some(with) = &query.with {
        return Err(SqlError::at(
            with.span(),
            "WITH is not supported; write the subquery's logic into the query, or chain two queries through a topic",
        ));
    }
    if let Some(order) = &query.order_by {
        return Err(SqlError::at(
            order.span(),
            "ORDER BY is not supported on a stream: it never ends, so there is no last row to sort after. Sort where you read the sink",
        ));
    }
    if let Some(limit) = &query.limit_clause {
        return Err(SqlError::at(
            limit.span(),
            "LIMIT is not supported on a stream: it would stop the query after N rows. Filter with WHERE, or read N rows from the sink (eddy tail --max N)",
        ));
    }
    if query.fetch.is_some() {
        return Err(SqlError::new("FETCH is not supported on a stream"));
    }
    Ok(())
}

fn plan_select(select: &ast::Select, ctx: &PlanContext) -> Result<QueryPlan, SqlError> {
    if let Some(d) = &select.distinct {
        if !matches!(d, ast::Distinct::All) {
            return Err(SqlError::at(select.span(), "SELECT DISTINCT is not supported yet; group by the columns instead"));
        }
    }
    if select.top.is_some() {
        return Err(SqlError::at(select.span(), "TOP is not supported on a stream"));
    }
    if !select.sort_by.is_empty() || !select.cluster_by.is_empty() || !select.distribute_by.is_empty() {
        return Err(SqlError::at(
            select.span(),
            "SORT BY, CLUSTER BY and DISTRIBUTE BY are not supported; eddy partitions by the group keys itself",
        ));
    }
    if select.qualify.is_some() || !select.named_window.is_empty() {
        return Err(SqlError::at(
            select.span(),
            "window functions over rows (QUALIFY, WINDOW) are not supported; use GROUP BY window(...)",
        ));
    }
    let source = resolve_from(select, ctx)?;
    let alias = from_alias(select);
    let mut qualifiers = vec![source.name];
    if let Some(a) = &alias {
        qualifiers.push(a.as_str());
    }
    let (scope, full_schema) = Scope::for_source(&qualifiers, source.schema);
    let event_time = match source.event_time {
        None => None,
        Some(EventTimeConfig::KafkaTimestamp) => Some(EventTimeColumn::KafkaTimestamp),
        Some(EventTimeConfig::Column(c)) => full_schema.index_of(c).map(EventTimeColumn::Column),
    };
    let filter = match &select.selection {
        Some(w) => Some(Compiler::plain(&scope, "WHERE").predicate(w)?),
        None => None,
    };
    let group_by = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return Err(SqlError::at(select.span(), "ROLLUP, CUBE and GROUPING SETS are not supported; write one query per grouping"));
            }
            exprs.as_slice()
        }
        ast::GroupByExpr::All(_) => return Err(SqlError::at(select.span(), "GROUP BY ALL is not supported; list the group columns")),
    };
    let aggregating = !group_by.is_empty() || select.having.is_some() || select.projection.iter().any(item_has_aggregate);

    let scan_base = ScanPlan {
        source: source.name.to_string(),
        topic: source.topic.to_string(),
        schema: full_schema.clone(),
        needed: vec![false; full_schema.len()],
        event_time,
        watermark_delay: source.watermark_delay,
        idle_timeout: source.idle_timeout,
        filter,
    };
    let mut plan = if aggregating {
        plan_aggregate(select, group_by, &scope, scan_base, source, ctx)?
    } else {
        plan_stateless(select, &scope, scan_base, ctx)?
    };
    mark_needed(&mut plan);
    Ok(plan)
}

fn resolve_from<'a>(select: &ast::Select, ctx: &'a PlanContext) -> Result<&'a SourceInfo<'a>, SqlError> {
    let table = match select.from.as_slice() {
        [] => return Err(SqlError::at(select.span(), "the query reads no source; add FROM <source>")),
        [one] => one,
        [_, second, ..] => {
            return Err(SqlError::at(
                second.span(),
                "FROM a, b (a cross join) is not supported on streams; JOIN ... ON a key and a time range",
            ))
        }
    };
    if let Some(join) = table.joins.first() {
        return Err(SqlError::at(join.relation.span(), "stream-stream JOIN is not supported yet"));
    }
    let ast::TableFactor::Table { name, args: None, .. } = &table.relation else {
        return Err(SqlError::at(
            table.relation.span(),
            "FROM takes a source name from the pipeline file; subqueries and table functions are not supported",
        ));
    };
    let wanted = name.to_string();
    ctx.sources.iter().find(|s| s.name.eq_ignore_ascii_case(&wanted)).ok_or_else(|| {
        let known: Vec<&str> = ctx.sources.iter().map(|s| s.name).collect();
        SqlError::at(name.span(), format!("unknown source {wanted}; the pipeline's sources are: {}", known.join(", ")))
    })
}

fn from_alias(select: &ast::Select) -> Option<String> {
    match &select.from.first()?.relation {
        ast::TableFactor::Table { alias: Some(a), .. } => Some(a.name.value.clone()),
        _ => None,
    }
}

fn item_has_aggregate(item: &ast::SelectItem) -> bool {
    let e = match item {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    has_aggregate(e)
}

fn has_aggregate(e: &ast::Expr) -> bool {
    let found = ast::visit_expressions(e, |inner| match inner {
        ast::Expr::Function(f) if f.over.is_none() && super::compile::is_aggregate_name(&function_name(f)) => {
            std::ops::ControlFlow::Break(())
        }
        _ => std::ops::ControlFlow::Continue(()),
    });
    found.is_break()
}

/// A select list item after `*` expansion: its expression and output name.
struct Item<'s> {
    ast: Option<&'s ast::Expr>,
    star_column: Option<(usize, DataType)>,
    name: String,
    span: sqlparser::tokenizer::Span,
}

fn items<'s>(select: &'s ast::Select, scope: &Scope) -> Result<Vec<Item<'s>>, SqlError> {
    let mut out = Vec::new();
    for item in &select.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) => out.push(Item { ast: Some(e), star_column: None, name: spark_name(e), span: e.span() }),
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                out.push(Item { ast: Some(expr), star_column: None, name: alias.value.clone(), span: expr.span() })
            }
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                let qualifier = match item {
                    ast::SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(n), _) => Some(n.to_string()),
                    _ => None,
                };
                let cols = scope.star(qualifier.as_deref());
                if cols.is_empty() {
                    return Err(SqlError::at(item.span(), format!("{item} matches no columns")));
                }
                for c in cols {
                    out.push(Item { ast: None, star_column: Some((c.index, c.data_type)), name: c.name.clone(), span: item.span() });
                }
            }
            #[allow(unreachable_patterns)]
            other => return Err(SqlError::at(other.span(), format!("select item {other} is not supported"))),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for i in &out {
        if !seen.insert(i.name.to_ascii_lowercase()) {
            return Err(SqlError::at(i.span, format!("two output columns are named {}; give one an alias with AS", i.name)));
        }
    }
    Ok(out)
}

fn plan_stateless(select: &ast::Select, scope: &Scope, scan: ScanPlan, ctx: &PlanContext) -> Result<QueryPlan, SqlError> {
    if ctx.sink.output_mode == OutputMode::Complete {
        return Err(SqlError::new(format!(
            "sink {} uses output_mode complete, which re-emits a whole result table; a query without aggregation has no bounded table. Use append",
            ctx.sink.name
        )));
    }
    let mut projection = Vec::new();
    let mut output = Vec::new();
    for item in items(select, scope)? {
        let e = match (item.ast, item.star_column) {
            (Some(a), _) => Compiler::plain(scope, "SELECT").compile(a)?,
            (None, Some((i, t))) => Expr::column(i, t),
            (None, None) => continue,
        };
        output.push(OutputColumn { name: item.name, data_type: e.data_type() });
        projection.push(e);
    }
    let key_columns = sink_key(ctx, &output, Vec::new())?;
    Ok(QueryPlan {
        name: ctx.query_name.to_string(),
        sink: ctx.sink.name.to_string(),
        sink_topic: ctx.sink.topic.to_string(),
        output_mode: ctx.sink.output_mode,
        scan,
        body: PlanBody::Stateless { projection },
        output,
        key_columns,
    })
}

fn plan_aggregate(
    select: &ast::Select,
    group_by: &[ast::Expr],
    scope: &Scope,
    scan: ScanPlan,
    source: &SourceInfo,
    ctx: &PlanContext,
) -> Result<QueryPlan, SqlError> {
    let select_items = items(select, scope)?;
    let mut agg = AggContext::default();
    let mut window: Option<WindowSpec> = None;
    let mut key_names = Vec::new();
    for g in group_by {
        let g = resolve_group_alias(g, &select_items, scope)?;
        if let ast::Expr::Function(f) = g {
            let name = function_name(f);
            if name == "window" || name == "session_window" {
                if window.is_some() {
                    return Err(SqlError::at(g.span(), "a query may group by one window only"));
                }
                if name == "session_window" {
                    return Err(SqlError::at(g.span(), "session_window is not supported yet; use window(time, size)"));
                }
                window = Some(window_spec(f, scope, &scan)?);
                agg.window_text = Some(g.to_string());
                continue;
            }
        }
        let e = Compiler::plain(scope, "GROUP BY").compile(g)?;
        if e.data_type() == DataType::Double {
            // Allowed (Spark allows it), but grouping doubles is rarely what anyone wants.
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
    let mode = ctx.sink.output_mode;
    match (window.is_some(), mode) {
        (true, _) if source.watermark_delay.is_none() => {
            return Err(SqlError::new(format!(
                "a windowed aggregation needs a watermark, or its windows never close and its state grows forever: set sources.{}.watermark_delay (e.g. \"10m\")",
                source.name
            )))
        }
        (true, OutputMode::Complete) => {
            return Err(SqlError::new(format!(
                "output_mode complete keeps every window forever (state grows without bound); use append or update for a windowed aggregation (sink {})",
                ctx.sink.name
            )))
        }
        (false, OutputMode::Append) => {
            return Err(SqlError::new(format!(
                "append mode emits a group once it is final, but a group without an event-time window is never final: add window({}, '1 hour') to GROUP BY, or set sinks.{}.output_mode to update or complete",
                event_time_name(source),
                ctx.sink.name
            )))
        }
        _ => {}
    }
    let exchange = exchange(source, &agg.keys, &scan.schema, ctx)?;
    if let Exchange::Repartition { reason, .. } = &exchange {
        if !REPARTITION_SUPPORTED {
            return Err(SqlError::new(format!("{reason}; repartitioning is not supported yet: group by the partition key too")));
        }
    }
    let group_keys: Vec<usize> = group_derived.iter().enumerate().filter(|(_, d)| **d).map(|(i, _)| i).collect();
    let key_columns = sink_key(ctx, &output, group_keys)?;
    Ok(QueryPlan {
        name: ctx.query_name.to_string(),
        sink: ctx.sink.name.to_string(),
        sink_topic: ctx.sink.topic.to_string(),
        output_mode: mode,
        scan,
        body: PlanBody::Aggregate(AggregatePlan {
            keys: agg.keys,
            key_names,
            window,
            aggregates: agg.aggregates,
            having,
            projection,
            exchange,
        }),
        output,
        key_columns,
    })
}

fn event_time_name(source: &SourceInfo) -> String {
    match source.event_time {
        Some(EventTimeConfig::Column(c)) => c.clone(),
        Some(EventTimeConfig::KafkaTimestamp) => "kafka_timestamp".to_string(),
        None => "<time column>".to_string(),
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
        ast::Expr::Identifier(id) if matches!(scope.lookup(None, &id.value), super::scope::Lookup::NotFound) => {
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

/// `window(time, '1 hour' [, '10 minutes' [, '5 minutes']])`
fn window_spec(f: &ast::Function, scope: &Scope, scan: &ScanPlan) -> Result<WindowSpec, SqlError> {
    let (args, _) = function_args(f)?;
    let args: Vec<&ast::Expr> = args.into_iter().flatten().collect();
    if args.len() < 2 || args.len() > 4 {
        return Err(SqlError::at(
            f.span(),
            "window() takes (time_column, window_duration [, slide_duration [, start_time]]), e.g. window(time, '10 minutes', '5 minutes')",
        ));
    }
    let time = Compiler::plain(scope, "window()").compile(args[0])?;
    let is_event_time = match (&time, scan.event_time) {
        (Expr::Column { index, .. }, Some(EventTimeColumn::Column(c))) => *index == c,
        (Expr::Column { index, .. }, Some(EventTimeColumn::KafkaTimestamp)) => {
            scan.schema.fields.get(*index).is_some_and(|f| f.name == "kafka_timestamp")
        }
        _ => false,
    };
    if !is_event_time {
        let want = match scan.event_time {
            Some(EventTimeColumn::Column(c)) => format!("the source's event_time column `{}`", scan.schema.fields[c].name),
            Some(EventTimeColumn::KafkaTimestamp) => "kafka_timestamp (the source's event_time)".to_string(),
            None => format!("an event-time column: set sources.{}.event_time", scan.source),
        };
        return Err(SqlError::at(
            args[0].span(),
            format!("window() must be over {want}, because its watermark decides when windows close"),
        ));
    }
    let duration = |a: &ast::Expr, what: &str| -> Result<i64, SqlError> {
        let micros = match a {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => parse_duration(s).map_err(|e| SqlError::at(a.span(), format!("{what}: {e}")))?,
                _ => return Err(SqlError::at(a.span(), format!("{what} must be a string like '10 minutes'"))),
            },
            ast::Expr::Interval(i) => interval_micros(i).map_err(|e| SqlError::at(a.span(), e))?,
            _ => return Err(SqlError::at(a.span(), format!("{what} must be a literal like '10 minutes'"))),
        };
        Ok(micros)
    };
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
    Ok(WindowSpec { size, slide, offset })
}

fn exchange(source: &SourceInfo, keys: &[Expr], schema: &Schema, ctx: &PlanContext) -> Result<Exchange, SqlError> {
    let partitions = ctx.repartition_partitions;
    let Some(pk) = source.partition_key else {
        return Ok(Exchange::Repartition {
            partitions,
            reason: format!("source {} declares no partition_key, so a group may span partitions", source.name),
        });
    };
    let covered = pk
        .iter()
        .all(|col| schema.index_of(col).is_some_and(|idx| keys.iter().any(|k| matches!(k, Expr::Column { index, .. } if *index == idx))));
    if covered && !pk.is_empty() {
        Ok(Exchange::Local)
    } else {
        Ok(Exchange::Repartition {
            partitions,
            reason: format!("GROUP BY does not include the partition key [{}] of source {}", pk.join(", "), source.name),
        })
    }
}

fn sink_key(ctx: &PlanContext, output: &[OutputColumn], default: Vec<usize>) -> Result<Vec<usize>, SqlError> {
    match ctx.sink.key {
        None => Ok(default),
        Some(names) => names
            .iter()
            .map(|n| {
                output.iter().position(|c| c.name.eq_ignore_ascii_case(n)).ok_or_else(|| {
                    let cols: Vec<&str> = output.iter().map(|c| c.name.as_str()).collect();
                    SqlError::new(format!(
                        "sinks.{}.key names {n}, which the query does not output; its columns: {}",
                        ctx.sink.name,
                        cols.join(", ")
                    ))
                })
            })
            .collect(),
    }
}

/// Marks the scan columns the query reads, so the decoder can skip the rest.
fn mark_needed(plan: &mut QueryPlan) {
    let mut cols: Vec<usize> = Vec::new();
    if let Some(f) = &plan.scan.filter {
        cols.extend(f.columns());
    }
    match &plan.body {
        PlanBody::Stateless { projection } => projection.iter().for_each(|e| cols.extend(e.columns())),
        PlanBody::Aggregate(a) => {
            a.keys.iter().for_each(|e| cols.extend(e.columns()));
            a.aggregates.iter().filter_map(|c| c.arg.as_ref()).for_each(|e| cols.extend(e.columns()));
        }
    }
    if let Some(EventTimeColumn::Column(c)) = plan.scan.event_time {
        cols.push(c);
    }
    for c in cols {
        if let Some(n) = plan.scan.needed.get_mut(c) {
            *n = true;
        }
    }
}
