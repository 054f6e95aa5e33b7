//! SELECT → [`QueryPlan`]: the checked statement is planned by DataFusion, and its logical
//! plan is read as a stream: the scan and filter of each input, one stateful operator (window
//! aggregation, session, join, deduplication, Window Top-N; a chain of them is cut into stages first, see
//! `stages.rs`), the projection; where a repartition is needed; what a streaming query cannot do, with the reason and what to write instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion_common::DFSchema;
use datafusion_expr::{Distinct, Expr, LogicalPlan};

use super::aggregate::plan_aggregate;
use super::context::Provider;
use super::error::SqlError;
use super::join::plan_join;
use super::logical::logical_plan;
use super::parse::{parse, source_schema};
use super::plan::*;
use super::stages::{plan_with_stages, Chain};
use crate::config::{EventTimeConfig, OutputMode, SourceKind};
use crate::expr::Scalar;
use crate::types::Schema;

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
    /// The output of a stage of the same query (see `stages.rs`), not a pipeline source: its
    /// columns are exactly the stage's output columns (no metadata columns).
    pub stage: bool,
}

/// What the planner knows of the query's sink.
#[derive(Debug, Clone)]
pub struct SinkInfo<'a> {
    pub name: &'a str,
    pub topic: &'a str,
    pub output_mode: OutputMode,
    pub key: Option<&'a [String]>,
    /// Complete mode over windows: microseconds a window is kept after the watermark passes
    /// its end; `None` keeps every window.
    pub retention: Option<i64>,
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
    let parsed = parse(sql, ctx)?;
    let tables: HashMap<String, arrow::datatypes::SchemaRef> =
        parsed.info.sources.iter().map(|&s| (ctx.sources[s].name.to_string(), source_schema(&ctx.sources[s]).to_arrow())).collect();
    let provider = Provider::new(tables);
    let logical = logical_plan(parsed.statement, &provider)?;
    let mut chain = Chain::new(ctx.query_name);
    let mut plan = plan_with_stages(&logical, ctx, &mut chain)?;
    if let Some(e) = parsed.info.duplicate {
        return Err(e);
    }
    plan.stages = chain.stages;
    for stage in &mut plan.stages {
        mark_needed(stage);
    }
    for (c, name) in plan.output.iter_mut().zip(&parsed.info.names) {
        c.name = name.clone();
    }
    if let Some(top) = &parsed.info.top {
        apply_top(&mut plan, top)?;
    }
    mark_needed(&mut plan);
    Ok(plan)
}

/// `ORDER BY ... LIMIT n` over a complete-mode aggregation: the keys name output columns (or
/// their positions), and every group meets in one partition, where the whole table is ranked.
fn apply_top(plan: &mut QueryPlan, top: &super::parse::TopClause) -> Result<(), SqlError> {
    use datafusion_sql::sqlparser::ast::{self, Spanned};
    if !matches!(plan.body, PlanBody::Aggregate(_)) {
        return Err(SqlError::at(top.span, "ORDER BY ... LIMIT ranks the result table of an aggregation; this query has none"));
    }
    if plan.key_columns.is_empty() {
        return Err(SqlError::at(
            top.span,
            "ORDER BY ... LIMIT needs a keyed sink: a row that leaves the first n is deleted by a tombstone of its key",
        ));
    }
    let names: Vec<&str> = plan.output.iter().map(|c| c.name.as_str()).collect();
    let mut order = Vec::new();
    for (e, descending, nulls_first) in &top.order {
        let column = match e {
            ast::Expr::Identifier(i) => names.iter().position(|n| n.eq_ignore_ascii_case(&i.value)),
            ast::Expr::CompoundIdentifier(parts) => parts.last().and_then(|i| names.iter().position(|n| n.eq_ignore_ascii_case(&i.value))),
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => n.parse::<usize>().ok().filter(|&i| i >= 1 && i <= names.len()).map(|i| i - 1),
                _ => None,
            },
            _ => None,
        };
        let Some(column) = column else {
            return Err(SqlError::at(
                e.span(),
                format!("ORDER BY over a result table names one of its columns ({}) or a position; {e} is neither", names.join(", ")),
            ));
        };
        order.push(crate::sql::TopOrder { column, descending: *descending, nulls_first: *nulls_first });
    }
    for input in &mut plan.inputs {
        input.exchange = Exchange::Repartition {
            partitions: Some(1),
            reason: "ORDER BY ... LIMIT ranks the whole table, so every group meets in one partition".to_string(),
        };
    }
    plan.top = Some(crate::sql::TopSpec { order, limit: top.limit });
    Ok(())
}

/// Compiles a logical expression against `schema`.
pub fn compile(e: &Expr, schema: &DFSchema) -> Result<Scalar, SqlError> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    Scalar::compile(e, schema).map_err(SqlError::new)
}

/// One scanned source, as the logical plan has it, with the stateless steps above it.
pub struct Input<'p, 'c> {
    pub source: &'c SourceInfo<'c>,
    /// The source's columns (schema and metadata columns): what the decoder builds.
    pub schema: Schema,
    /// The schema of the top of the input's steps (qualified by an alias): keys, values and
    /// projections are compiled over it.
    pub df: &'p DFSchema,
    /// WHERE over the source's columns, below the steps.
    pub scan_filter: Option<Scalar>,
    pub stages: Vec<Stage>,
    /// Source column i is column `map[i]` at the top of the steps (when a plain reference
    /// carries it there).
    pub map: Vec<Option<usize>>,
}

impl Input<'_, '_> {
    pub fn event_time(&self) -> Option<EventTimeColumn> {
        match self.source.event_time {
            None => None,
            Some(EventTimeConfig::KafkaTimestamp) => Some(EventTimeColumn::KafkaTimestamp),
            Some(EventTimeConfig::Column(c)) => {
                self.schema.index_of(c).and_then(|i| self.map.get(i).copied().flatten()).map(EventTimeColumn::Column)
            }
        }
    }

    /// The index of the event-time column at the top of the steps.
    pub fn event_time_index(&self) -> Option<usize> {
        match self.event_time()? {
            EventTimeColumn::Column(c) => Some(c),
            EventTimeColumn::KafkaTimestamp => self.schema.index_of("kafka_timestamp").and_then(|i| self.map.get(i).copied().flatten()),
        }
    }

    pub fn event_time_name(&self) -> String {
        match self.source.event_time {
            Some(EventTimeConfig::Column(c)) => c.clone(),
            Some(EventTimeConfig::KafkaTimestamp) => "kafka_timestamp".to_string(),
            None => "<time column>".to_string(),
        }
    }

    /// The top-of-steps column that is source column `name`, if one is.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.schema.index_of(name).and_then(|i| self.map.get(i).copied().flatten())
    }

    /// The scan; `filter` is over the top of the steps (a WHERE on the source when there are none).
    pub fn scan_plan(&self, filter: Option<Scalar>) -> ScanPlan {
        let mut stages = self.stages.clone();
        let filter = if stages.is_empty() {
            filter
        } else {
            stages.extend(filter.map(Stage::Filter));
            self.scan_filter.clone()
        };
        let event_time_source = match self.source.event_time {
            Some(EventTimeConfig::Column(c)) => self.schema.index_of(c),
            _ => None,
        };
        ScanPlan {
            source: self.source.name.to_string(),
            topic: self.source.topic.to_string(),
            arrow: self.schema.to_arrow(),
            schema: self.schema.clone(),
            needed: vec![false; self.schema.len()],
            event_time: self.event_time(),
            watermark_delay: self.source.watermark_delay,
            idle_timeout: self.source.idle_timeout,
            filter,
            stages,
            event_time_source,
            stage: None,
        }
    }
}

/// Reads a logical plan as a streaming query.
pub struct Streaming<'a> {
    pub ctx: &'a PlanContext<'a>,
}

/// The part of a plan below the projection (and HAVING/aggregate, if any).
pub enum Relation<'p> {
    /// A source, with the WHERE conjuncts above it.
    Scan { node: &'p LogicalPlan, filter: Option<&'p Expr> },
    /// A join, with the WHERE above it.
    Join { join: &'p datafusion_expr::logical_plan::Join, filter: Option<&'p Expr> },
}

impl<'a> Streaming<'a> {
    pub fn plan(&self, logical: &LogicalPlan) -> Result<QueryPlan, SqlError> {
        match logical {
            LogicalPlan::Distinct(Distinct::All(input)) => self.dedup(input, None),
            LogicalPlan::Distinct(Distinct::On(on)) => self.dedup(&on.input, Some(on)),
            LogicalPlan::Projection(p) => {
                let below = p.input.as_ref();
                if let Some(shape) = super::topn::find(below) {
                    return super::topn::plan_topn(self, p, shape);
                }
                let (having, agg_node) = match below {
                    LogicalPlan::Filter(f) if matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)) => {
                        (Some(&f.predicate), f.input.as_ref())
                    }
                    other => (None, other),
                };
                if let LogicalPlan::Aggregate(agg) = agg_node {
                    let relation = self.relation(&agg.input)?;
                    return plan_aggregate(self, p, having, agg, relation);
                }
                match self.relation(below)? {
                    Relation::Join { join, filter } => plan_join(self, p, join, filter),
                    Relation::Scan { node, filter } => self.stateless(p, node, filter),
                }
            }
            other => Err(SqlError::new(format!("eddy cannot run this query as a stream (its plan is {})", other.display()))),
        }
    }

    /// Peels the WHERE filter off a scan (with its stateless steps) or a join.
    pub fn relation<'p>(&self, node: &'p LogicalPlan) -> Result<Relation<'p>, SqlError> {
        match node {
            LogicalPlan::Filter(f) => match self.relation(&f.input)? {
                Relation::Scan { node, filter: None } => Ok(Relation::Scan { node, filter: Some(&f.predicate) }),
                Relation::Join { join, filter: None } => Ok(Relation::Join { join, filter: Some(&f.predicate) }),
                _ => Err(SqlError::new("eddy cannot run two filters above each other; combine them with AND")),
            },
            LogicalPlan::Join(j) => Ok(Relation::Join { join: j, filter: None }),
            LogicalPlan::SubqueryAlias(_) | LogicalPlan::TableScan(_) | LogicalPlan::Projection(_) | LogicalPlan::Unnest(_) => {
                Ok(Relation::Scan { node, filter: None })
            }
            LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) => Err(SqlError::new(
                "a query with no aggregation, DISTINCT or join of its own cannot read one in a subquery yet: fold the outer query into the inner one (its filter into HAVING, its columns into the select list)",
            )),
            other => Err(SqlError::new(format!("eddy cannot run this query as a stream (a {} here)", other.display()))),
        }
    }

    /// The source a scan node (and its stateless steps) reads.
    pub fn input<'p>(&self, node: &'p LogicalPlan) -> Result<Input<'p, 'a>, SqlError> {
        let mut chain: Vec<&'p LogicalPlan> = Vec::new();
        let mut at = node;
        let table = loop {
            match at {
                LogicalPlan::TableScan(t) => break t,
                LogicalPlan::SubqueryAlias(a) => {
                    if let LogicalPlan::TableScan(t) = a.input.as_ref() {
                        break t;
                    }
                    chain.push(at);
                    at = a.input.as_ref();
                }
                LogicalPlan::Projection(p) => {
                    chain.push(at);
                    at = p.input.as_ref();
                }
                LogicalPlan::Unnest(u) => {
                    chain.push(at);
                    at = u.input.as_ref();
                }
                LogicalPlan::Filter(f) => {
                    chain.push(at);
                    at = f.input.as_ref();
                }
                LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) | LogicalPlan::Join(_) => {
                    return Err(SqlError::new(
                        "a query with no aggregation, DISTINCT or join of its own cannot read one in a subquery yet: fold the outer query into the inner one (its filter into HAVING, its columns into the select list)",
                    ))
                }
                other => return Err(SqlError::new(format!("eddy cannot read a {} as a stream", other.display()))),
            }
        };
        let name = table.table_name.table();
        let source = self.ctx.sources.iter().find(|s| s.name == name).ok_or_else(|| SqlError::new(format!("unknown source {name}")))?;
        let schema = source_schema(source);
        let mut map: Vec<Option<usize>> = (0..schema.len()).map(Some).collect();
        let mut stages = Vec::new();
        let mut scan_filter = None;
        for step in chain.into_iter().rev() {
            match step {
                LogicalPlan::Filter(f) if stages.is_empty() && scan_filter.is_none() => {
                    scan_filter = Some(compile(&f.predicate, f.input.schema())?)
                }
                LogicalPlan::Filter(f) => stages.push(Stage::Filter(compile(&f.predicate, f.input.schema())?)),
                LogicalPlan::Projection(p) => {
                    let exprs = p.expr.iter().map(|e| compile(e, p.input.schema())).collect::<Result<Vec<_>, _>>()?;
                    let positions: Vec<Option<usize>> = exprs.iter().map(Scalar::as_column).collect();
                    map = map.iter().map(|m| m.and_then(|c| positions.iter().position(|p| *p == Some(c)))).collect();
                    stages.push(Stage::Project { exprs, schema: Arc::new(p.schema.as_arrow().clone()) });
                }
                LogicalPlan::Unnest(u) => {
                    let column = match (u.list_type_columns.as_slice(), u.struct_type_columns.as_slice()) {
                        ([(c, list)], []) if list.depth == 1 && u.dependency_indices.iter().enumerate().all(|(i, d)| i == *d) => *c,
                        _ => return Err(SqlError::new("explode() takes one array here, one level deep (a query may explode one array)")),
                    };
                    stages.push(Stage::Unnest { column, schema: Arc::new(u.schema.as_arrow().clone()) });
                }
                _ => {}
            }
        }
        Ok(Input { source, schema, df: node.schema().as_ref(), scan_filter, stages, map })
    }

    pub fn plan_base(
        &self,
        output_mode: OutputMode,
        inputs: Vec<InputPlan>,
        body: PlanBody,
        output: Vec<OutputColumn>,
        key_columns: Vec<usize>,
    ) -> QueryPlan {
        QueryPlan {
            name: self.ctx.query_name.to_string(),
            sink: self.ctx.sink.name.to_string(),
            sink_topic: self.ctx.sink.topic.to_string(),
            output_mode,
            inputs,
            body,
            output,
            key_columns,
            stages: Vec::new(),
            feeds: None,
            top: None,
        }
    }

    fn stateless(
        &self,
        p: &datafusion_expr::logical_plan::Projection,
        node: &LogicalPlan,
        filter: Option<&Expr>,
    ) -> Result<QueryPlan, SqlError> {
        let ctx = self.ctx;
        if ctx.sink.output_mode == OutputMode::Complete {
            return Err(SqlError::new(format!(
                "sink {} uses output_mode complete, which re-emits a whole result table; a query without aggregation has no bounded table. Use append",
                ctx.sink.name
            )));
        }
        let input = self.input(node)?;
        let filter = filter.map(|f| compile(f, input.df)).transpose()?;
        let projection = p.expr.iter().map(|e| compile(e, input.df)).collect::<Result<Vec<_>, _>>()?;
        let output = output_columns(p.schema.as_ref());
        let key_columns = sink_key(ctx, &output, Vec::new())?;
        let scan = input.scan_plan(filter);
        // Over a stage's rows (which arrive through an internal topic), the rows carry every
        // column of the input and the projection runs where they arrive.
        let values = if input.source.stage {
            input.df.fields().iter().enumerate().map(|(i, f)| Scalar::column(i, f.name(), f.data_type().clone())).collect()
        } else {
            Vec::new()
        };
        Ok(self.plan_base(
            ctx.sink.output_mode,
            vec![InputPlan { scan, keys: Vec::new(), values, exchange: Exchange::Local }],
            PlanBody::Stateless { projection },
            output,
            key_columns,
        ))
    }

    /// `SELECT DISTINCT ...` (Spark's dropDuplicates over the selected columns) and
    /// `SELECT DISTINCT ON (keys) ...` (dropDuplicatesWithinWatermark over the keys).
    fn dedup(&self, input_plan: &LogicalPlan, on: Option<&datafusion_expr::DistinctOn>) -> Result<QueryPlan, SqlError> {
        let ctx = self.ctx;
        let (projection_schema, select, below): (Arc<DFSchema>, Vec<Expr>, &LogicalPlan) = match (on, input_plan) {
            (None, LogicalPlan::Projection(p)) => (p.schema.clone(), p.expr.clone(), p.input.as_ref()),
            (Some(on), _) => (on.schema.clone(), on.select_expr.clone(), input_plan),
            _ => return Err(SqlError::new("DISTINCT needs a select list")),
        };
        let Relation::Scan { node, filter } = self.relation(below)? else {
            return Err(SqlError::new(
                "DISTINCT over a join is not supported yet: write the join to a topic and deduplicate it in a second query",
            ));
        };
        let input = self.input(node)?;
        let Some(delay) = input.source.watermark_delay else {
            return Err(SqlError::new(format!(
                "deduplicating a stream needs a watermark, or the set of keys seen grows forever: set sources.{}.watermark_delay (e.g. \"10m\")",
                input.source.name
            )));
        };
        if ctx.sink.output_mode == OutputMode::Complete {
            return Err(SqlError::new(format!(
                "output_mode complete is for aggregations; a deduplicated stream is written in append mode (sink {})",
                ctx.sink.name
            )));
        }
        let values = select.iter().map(|e| compile(e, input.df)).collect::<Result<Vec<_>, _>>()?;
        let output = output_columns(projection_schema.as_ref());
        let (keys, rule) = match on {
            Some(on) => {
                let keys = on.on_expr.iter().map(|e| compile(e, input.df)).collect::<Result<Vec<_>, _>>()?;
                (keys, DedupRule::WithinWatermark { delay })
            }
            None => {
                let et = input.event_time_index();
                let has_time = values.iter().any(|v| v.as_column().is_some() && v.as_column() == et);
                let rule = if has_time { DedupRule::EventTimeInKey } else { DedupRule::WithinWatermark { delay } };
                (values.clone(), rule)
            }
        };
        let filter = filter.map(|f| compile(f, input.df)).transpose()?;
        let exchange = exchange(&input, &keys, ctx)?;
        let key_columns = sink_key(ctx, &output, Vec::new())?;
        let row_schema = Arc::new(projection_schema.as_arrow().clone());
        Ok(self.plan_base(
            OutputMode::Append,
            vec![InputPlan { scan: input.scan_plan(filter), keys, values, exchange }],
            PlanBody::Dedup(DedupPlan { rule, row_schema }),
            output,
            key_columns,
        ))
    }
}

/// The output columns of a projection's schema.
pub fn output_columns(schema: &DFSchema) -> Vec<OutputColumn> {
    schema.fields().iter().map(|f| OutputColumn { name: f.name().clone(), data_type: f.data_type().clone() }).collect()
}

/// Whether rows keyed by `keys` can stay in their source partition.
pub fn exchange(input: &Input, keys: &[Scalar], ctx: &PlanContext) -> Result<Exchange, SqlError> {
    let source = input.source;
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
    let covered =
        !pk.is_empty() && pk.iter().all(|col| input.column(col).is_some_and(|idx| keys.iter().any(|k| k.as_column() == Some(idx))));
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
        PlanBody::Stateless { projection } => projection.iter().flat_map(Scalar::columns).collect(),
        _ => Vec::new(),
    };
    let table_stream_cols: Vec<usize> = match &plan.body {
        PlanBody::TableJoin(t) => {
            let width = plan.inputs[0].scan.schema.len();
            let mut cols: Vec<usize> = t.stream_keys.iter().flat_map(Scalar::columns).collect();
            cols.extend(t.projection.iter().chain(t.residual.iter()).flat_map(Scalar::columns).filter(|&c| c < width));
            cols
        }
        _ => Vec::new(),
    };
    for (i, input) in plan.inputs.iter_mut().enumerate() {
        let mut cols: Vec<usize> = Vec::new();
        if let Some(f) = &input.scan.filter {
            cols.extend(f.columns());
        }
        match input.scan.stages.first() {
            // Keys, values and projections read the stages' row; the first stage reads the source.
            Some(Stage::Project { exprs, .. }) => exprs.iter().for_each(|e| cols.extend(e.columns())),
            Some(_) => cols.extend(0..input.scan.schema.len()),
            None => {
                input.keys.iter().chain(input.values.iter()).for_each(|e| cols.extend(e.columns()));
                if i == 0 {
                    cols.extend(&stateless_projection);
                    cols.extend(&table_stream_cols);
                }
            }
        }
        cols.extend(input.scan.event_time_source);
        for c in cols {
            if let Some(n) = input.scan.needed.get_mut(c) {
                *n = true;
            }
        }
    }
    if let PlanBody::TableJoin(t) = &mut plan.body {
        let width = plan.inputs[0].scan.schema.len();
        let mut cols: Vec<usize> = t.table_keys.clone();
        cols.extend(t.projection.iter().chain(t.residual.iter()).flat_map(Scalar::columns).filter(|&c| c >= width).map(|c| c - width));
        for c in cols {
            if let Some(n) = t.table.needed.get_mut(c) {
                *n = true;
            }
        }
    }
}
