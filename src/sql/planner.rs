//! SELECT → [`QueryPlan`]: resolves sources, splits the query into inputs, a stateful
//! operator and a projection, decides where a repartition is needed, and rejects what a
//! streaming query cannot do, saying why and what to write.

use std::time::Duration;

use sqlparser::ast::{self, Spanned};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::aggregate::plan_aggregate;
use super::compile::{function_name, is_aggregate_name, Compiler};
use super::error::SqlError;
use super::join::plan_join;
use super::naming::spark_name;
use super::plan::*;
use super::scope::Scope;
use crate::config::{EventTimeConfig, OutputMode, SourceKind};
use crate::expr::Expr;
use crate::types::{DataType, Schema};

/// What the planner knows of one source.
#[derive(Debug, Clone)]
pub struct SourceInfo<'a> {
    pub name: &'a str,
    pub topic: &'a str,
    pub kind: SourceKind,
    pub schema: &'a Schema,
    pub event_time: Option<&'a EventTimeConfig>,
    pub watermark_delay: Option<i64>,
    pub idle_timeout: Option<Duration>,
    pub partition_key: Option<&'a [String]>,
    pub primary_key: Option<&'a [String]>,
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
    let mut plan = plan_select(select, ctx)?;
    mark_needed(&mut plan);
    Ok(plan)
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
    if select.top.is_some() {
        return Err(SqlError::at(select.span(), "TOP is not supported on a stream"));
    }
    if !select.sort_by.is_empty() || !select.cluster_by.is_empty() || !select.distribute_by.is_empty() {
        return Err(SqlError::at(
            select.span(),
            "SORT BY, CLUSTER BY and DISTRIBUTE BY are not supported; eddy partitions by the keys itself",
        ));
    }
    if select.qualify.is_some() || !select.named_window.is_empty() {
        return Err(SqlError::at(
            select.span(),
            "window functions over rows (QUALIFY, WINDOW) are not supported; use GROUP BY window(...)",
        ));
    }
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
    if !table.joins.is_empty() {
        return plan_join(select, table, ctx);
    }
    let (source, alias) = resolve_source(&table.relation, ctx)?;
    if source.kind == SourceKind::Table {
        return Err(SqlError::at(
            table.relation.span(),
            format!(
                "{} is a table source; tables are joined to streams (FROM stream JOIN {} ON ...), not read alone",
                source.name, source.name
            ),
        ));
    }
    let input = SourceScope::new(source, alias.as_deref());
    let filter = match &select.selection {
        Some(w) => Some(Compiler::plain(&input.scope, "WHERE").predicate(w)?),
        None => None,
    };
    let scan = input.scan_plan(filter);
    let group_by = group_by_exprs(select)?;
    let aggregating = !group_by.is_empty() || select.having.is_some() || select.projection.iter().any(item_has_aggregate);
    let distinct = match &select.distinct {
        None | Some(ast::Distinct::All) => None,
        Some(d) => Some(d),
    };
    match (distinct, aggregating) {
        (Some(_), true) => Err(SqlError::at(
            select.span(),
            "DISTINCT together with GROUP BY is not supported; GROUP BY alone already gives one row per group",
        )),
        (Some(d), false) => plan_dedup(select, d, &input, scan, ctx),
        (None, true) => plan_aggregate(select, group_by, &input, scan, ctx),
        (None, false) => plan_stateless(select, &input.scope, scan, ctx),
    }
}

/// A resolved source with its scope.
pub struct SourceScope<'a> {
    pub source: &'a SourceInfo<'a>,
    pub scope: Scope,
    pub schema: Schema,
}

impl<'a> SourceScope<'a> {
    pub fn new(source: &'a SourceInfo<'a>, alias: Option<&str>) -> SourceScope<'a> {
        let mut qualifiers = vec![source.name];
        if let Some(a) = alias {
            qualifiers.push(a);
        }
        let (scope, schema) = Scope::for_source(&qualifiers, source.schema);
        SourceScope { source, scope, schema }
    }

    pub fn event_time(&self) -> Option<EventTimeColumn> {
        match self.source.event_time {
            None => None,
            Some(EventTimeConfig::KafkaTimestamp) => Some(EventTimeColumn::KafkaTimestamp),
            Some(EventTimeConfig::Column(c)) => self.schema.index_of(c).map(EventTimeColumn::Column),
        }
    }

    /// The index of the event-time column in the scan row.
    pub fn event_time_index(&self) -> Option<usize> {
        match self.event_time()? {
            EventTimeColumn::Column(c) => Some(c),
            EventTimeColumn::KafkaTimestamp => self.schema.index_of("kafka_timestamp"),
        }
    }

    pub fn event_time_name(&self) -> String {
        match self.source.event_time {
            Some(EventTimeConfig::Column(c)) => c.clone(),
            Some(EventTimeConfig::KafkaTimestamp) => "kafka_timestamp".to_string(),
            None => "<time column>".to_string(),
        }
    }

    pub fn scan_plan(&self, filter: Option<Expr>) -> ScanPlan {
        ScanPlan {
            source: self.source.name.to_string(),
            topic: self.source.topic.to_string(),
            schema: self.schema.clone(),
            needed: vec![false; self.schema.len()],
            event_time: self.event_time(),
            watermark_delay: self.source.watermark_delay,
            idle_timeout: self.source.idle_timeout,
            filter,
        }
    }
}

/// A FROM item: a source and its alias.
pub fn resolve_source<'a>(relation: &ast::TableFactor, ctx: &'a PlanContext) -> Result<(&'a SourceInfo<'a>, Option<String>), SqlError> {
    let ast::TableFactor::Table { name, args: None, alias, .. } = relation else {
        return Err(SqlError::at(
            relation.span(),
            "FROM takes a source name from the pipeline file; subqueries and table functions are not supported",
        ));
    };
    let wanted = name.to_string();
    let source = ctx.sources.iter().find(|s| s.name.eq_ignore_ascii_case(&wanted)).ok_or_else(|| {
        let known: Vec<&str> = ctx.sources.iter().map(|s| s.name).collect();
        SqlError::at(name.span(), format!("unknown source {wanted}; the pipeline's sources are: {}", known.join(", ")))
    })?;
    Ok((source, alias.as_ref().map(|a| a.name.value.clone())))
}

fn group_by_exprs(select: &ast::Select) -> Result<&[ast::Expr], SqlError> {
    match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return Err(SqlError::at(select.span(), "ROLLUP, CUBE and GROUPING SETS are not supported; write one query per grouping"));
            }
            Ok(exprs.as_slice())
        }
        ast::GroupByExpr::All(_) => Err(SqlError::at(select.span(), "GROUP BY ALL is not supported; list the group columns")),
    }
}

pub fn item_has_aggregate(item: &ast::SelectItem) -> bool {
    match item {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => has_aggregate(e),
        _ => false,
    }
}

pub fn has_aggregate(e: &ast::Expr) -> bool {
    let found = ast::visit_expressions(e, |inner| match inner {
        ast::Expr::Function(f) if f.over.is_none() && is_aggregate_name(&function_name(f)) => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    });
    found.is_break()
}

/// A select list item after `*` expansion: its expression and output name.
pub struct Item<'s> {
    pub ast: Option<&'s ast::Expr>,
    pub star_column: Option<(usize, DataType)>,
    pub name: String,
    pub span: sqlparser::tokenizer::Span,
}

pub fn items<'s>(select: &'s ast::Select, scope: &Scope) -> Result<Vec<Item<'s>>, SqlError> {
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

/// Compiles the select list over `scope` without aggregation.
pub fn plain_projection(select: &ast::Select, scope: &Scope) -> Result<(Vec<Expr>, Vec<OutputColumn>), SqlError> {
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
    Ok((projection, output))
}

fn plan_stateless(select: &ast::Select, scope: &Scope, scan: ScanPlan, ctx: &PlanContext) -> Result<QueryPlan, SqlError> {
    if ctx.sink.output_mode == OutputMode::Complete {
        return Err(SqlError::new(format!(
            "sink {} uses output_mode complete, which re-emits a whole result table; a query without aggregation has no bounded table. Use append",
            ctx.sink.name
        )));
    }
    let (projection, output) = plain_projection(select, scope)?;
    let key_columns = sink_key(ctx, &output, Vec::new())?;
    Ok(QueryPlan {
        name: ctx.query_name.to_string(),
        sink: ctx.sink.name.to_string(),
        sink_topic: ctx.sink.topic.to_string(),
        output_mode: ctx.sink.output_mode,
        inputs: vec![InputPlan { scan, keys: Vec::new(), values: Vec::new(), exchange: Exchange::Local }],
        body: PlanBody::Stateless { projection },
        output,
        key_columns,
    })
}

/// `SELECT DISTINCT ...` (Spark's dropDuplicates over the selected columns) and
/// `SELECT DISTINCT ON (keys) ...` (dropDuplicatesWithinWatermark over the keys).
fn plan_dedup(
    select: &ast::Select,
    distinct: &ast::Distinct,
    input: &SourceScope,
    scan: ScanPlan,
    ctx: &PlanContext,
) -> Result<QueryPlan, SqlError> {
    let Some(delay) = input.source.watermark_delay else {
        return Err(SqlError::at(
            select.span(),
            format!(
                "deduplicating a stream needs a watermark, or the set of keys seen grows forever: set sources.{}.watermark_delay (e.g. \"10m\")",
                input.source.name
            ),
        ));
    };
    if ctx.sink.output_mode == OutputMode::Complete {
        return Err(SqlError::new(format!(
            "output_mode complete is for aggregations; a deduplicated stream is written in append mode (sink {})",
            ctx.sink.name
        )));
    }
    let (values, output) = plain_projection(select, &input.scope)?;
    let (keys, rule) = match distinct {
        ast::Distinct::On(exprs) => {
            let mut keys = Vec::new();
            for e in exprs {
                keys.push(Compiler::plain(&input.scope, "DISTINCT ON").compile(e)?);
            }
            (keys, DedupRule::WithinWatermark { delay })
        }
        _ => {
            let et = input.event_time_index();
            let has_time = values.iter().any(|v| matches!(v, Expr::Column { index, .. } if Some(*index) == et));
            let rule = if has_time { DedupRule::EventTimeInKey } else { DedupRule::WithinWatermark { delay } };
            (values.clone(), rule)
        }
    };
    let exchange = exchange(input.source, &keys, &input.schema, ctx)?;
    let key_columns = sink_key(ctx, &output, Vec::new())?;
    Ok(QueryPlan {
        name: ctx.query_name.to_string(),
        sink: ctx.sink.name.to_string(),
        sink_topic: ctx.sink.topic.to_string(),
        output_mode: OutputMode::Append,
        inputs: vec![InputPlan { scan, keys, values, exchange }],
        body: PlanBody::Dedup(DedupPlan { rule }),
        output,
        key_columns,
    })
}

/// Whether rows keyed by `keys` can stay in their source partition.
pub fn exchange(source: &SourceInfo, keys: &[Expr], schema: &Schema, ctx: &PlanContext) -> Result<Exchange, SqlError> {
    let partitions = ctx.repartition_partitions;
    if keys.is_empty() {
        return Ok(Exchange::Repartition {
            partitions: Some(1),
            reason: "the query has no group key, so every row meets in one partition".to_string(),
        });
    }
    let Some(pk) = source.partition_key else {
        return Ok(Exchange::Repartition {
            partitions,
            reason: format!("source {} declares no partition_key, so a key may span partitions", source.name),
        });
    };
    let covered = !pk.is_empty()
        && pk.iter().all(|col| {
            schema.index_of(col).is_some_and(|idx| keys.iter().any(|k| matches!(k, Expr::Column { index, .. } if *index == idx)))
        });
    if covered {
        Ok(Exchange::Local)
    } else {
        Ok(Exchange::Repartition {
            partitions,
            reason: format!("the keys do not include the partition key [{}] of source {}", pk.join(", "), source.name),
        })
    }
}

pub fn sink_key(ctx: &PlanContext, output: &[OutputColumn], default: Vec<usize>) -> Result<Vec<usize>, SqlError> {
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

/// Marks the scan columns each input reads, so decoders can skip the rest.
fn mark_needed(plan: &mut QueryPlan) {
    let stateless_projection: Vec<usize> = match &plan.body {
        PlanBody::Stateless { projection } => projection.iter().flat_map(Expr::columns).collect(),
        _ => Vec::new(),
    };
    let table_stream_cols: Vec<usize> = match &plan.body {
        PlanBody::TableJoin(t) => {
            let width = plan.inputs[0].scan.schema.len();
            let mut cols: Vec<usize> = t.stream_keys.iter().flat_map(Expr::columns).collect();
            cols.extend(t.projection.iter().chain(t.residual.iter()).flat_map(Expr::columns).filter(|&c| c < width));
            cols
        }
        _ => Vec::new(),
    };
    for (i, input) in plan.inputs.iter_mut().enumerate() {
        let mut cols: Vec<usize> = Vec::new();
        if let Some(f) = &input.scan.filter {
            cols.extend(f.columns());
        }
        input.keys.iter().chain(input.values.iter()).for_each(|e| cols.extend(e.columns()));
        if i == 0 {
            cols.extend(&stateless_projection);
            cols.extend(&table_stream_cols);
        }
        if let Some(EventTimeColumn::Column(c)) = input.scan.event_time {
            cols.push(c);
        }
        for c in cols {
            if let Some(n) = input.scan.needed.get_mut(c) {
                *n = true;
            }
        }
    }
    if let PlanBody::TableJoin(t) = &mut plan.body {
        let width = plan.inputs[0].scan.schema.len();
        let mut cols: Vec<usize> = t.table_keys.clone();
        cols.extend(t.projection.iter().chain(t.residual.iter()).flat_map(Expr::columns).filter(|&c| c >= width).map(|c| c - width));
        for c in cols {
            if let Some(n) = t.table.needed.get_mut(c) {
                *n = true;
            }
        }
    }
}
