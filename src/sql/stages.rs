//! Chains of stateful operators: a query whose logical plan holds a stateful operator (an
//! aggregation, a DISTINCT, a join) *below* its top operator — a subquery or CTE that
//! aggregates, an aggregation over a join, a deduplication before an aggregation, a ranking
//! over a windowed aggregation (Window Top-N) — is cut
//! into stages. Each stage below the top is planned as a query of its own (its own tasks,
//! state tree and changelog) whose output rows feed the next stage through an internal topic,
//! in the same transaction as everything else of the cycle. The next stage reads that output
//! as a *stage source*: a table whose columns are the stage's output columns and whose event
//! time is the window of a windowed aggregation (its end minus 1 µs, Spark's `window_time`)
//! or the event-time column a deduplication or join passes through.
//!
//! Depends on the planner's types and DataFusion's logical plan; never on the runtime.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion_common::{Column, DFSchema, DFSchemaRef, TableReference};
use datafusion_expr::logical_plan::builder::LogicalTableSource;
use datafusion_expr::logical_plan::{Projection, TableScanBuilder};
use datafusion_expr::{Expr, LogicalPlan};

use super::error::SqlError;
use super::plan::{EventTimeColumn, Exchange, Feed, InputPlan, PlanBody, QueryPlan};
use super::planner::{PlanContext, SinkInfo, SourceInfo, Streaming};
use crate::config::{EventTimeConfig, OutputMode, SourceKind};
use crate::names::stage_name;
use crate::types::{is_window, Field, Schema};

/// What a stage's output looks like to the stage above it.
struct StageSource {
    name: String,
    schema: Schema,
    event_time: Option<EventTimeConfig>,
    /// The stages whose rows it is (several for a UNION ALL).
    feeders: Vec<String>,
}

impl StageSource {
    fn info(&self) -> SourceInfo<'_> {
        SourceInfo {
            name: &self.name,
            topic: &self.name,
            kind: SourceKind::Stream,
            schema: &self.schema,
            event_time: self.event_time.as_ref(),
            // The watermark comes from the stage below, through markers.
            watermark_delay: Some(0),
            idle_timeout: None,
            partition_key: None,
            primary_key: None,
            stage: true,
        }
    }
}

/// The stages of one query, as they are planned.
pub struct Chain {
    /// The query's name, which its stages' names extend.
    query: String,
    /// Every stage planned, lowest first (a stage comes after the stages it reads).
    pub stages: Vec<QueryPlan>,
    /// Stages named so far (names follow the order in which the plan is read, top down, so
    /// that the same query text always gives the same durable names).
    named: usize,
}

impl Chain {
    pub fn new(query: &str) -> Chain {
        Chain { query: query.to_string(), stages: Vec::new(), named: 0 }
    }
}

/// Plans `root` (a whole query, or a stage of one) with the stages below its top operator.
pub fn plan_with_stages(root: &LogicalPlan, ctx: &PlanContext, chain: &mut Chain) -> Result<QueryPlan, SqlError> {
    let mut used = HashSet::new();
    let _ = root.apply(|n| {
        for e in n.expressions() {
            used.extend(e.column_refs().into_iter().cloned());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut cutter = Cutter { ctx, chain, used, sources: Vec::new() };
    // A query with no stateful operator of its own (a projection or filter over a subquery)
    // reads every stateful subtree as a stage.
    let rewritten = cutter.cut(root, !is_stage_root(root))?;
    let sources = std::mem::take(&mut cutter.sources);
    let mut all: Vec<SourceInfo> = ctx.sources.clone();
    all.extend(sources.iter().map(StageSource::info));
    let extended = PlanContext {
        query_name: ctx.query_name,
        sources: all,
        sink: ctx.sink.clone(),
        repartition_partitions: ctx.repartition_partitions,
    };
    let mut plan = Streaming { ctx: &extended }.plan(&rewritten)?;
    for (side, input) in plan.inputs.iter_mut().enumerate() {
        if let Some(source) = sources.iter().find(|s| s.name == input.scan.source) {
            for s in chain.stages.iter_mut().filter(|s| source.feeders.contains(&s.name)) {
                s.feeds = Some(Feed { query: ctx.query_name.to_string(), side });
            }
            input.scan.stage = Some(input.scan.source.clone());
            input.exchange = match &input.exchange {
                Exchange::Repartition { partitions: Some(1), reason } => {
                    Exchange::Repartition { partitions: Some(1), reason: reason.clone() }
                }
                _ => Exchange::Repartition {
                    partitions: ctx.repartition_partitions,
                    reason: format!("the rows of stage {} are keyed by this operator's keys", input.scan.source),
                },
            };
        }
    }
    Ok(plan)
}

struct Cutter<'c, 'a, 's> {
    ctx: &'c PlanContext<'a>,
    chain: &'s mut Chain,
    /// Every column any expression of the plan reads.
    used: HashSet<Column>,
    sources: Vec<StageSource>,
}

fn is_stateful(node: &LogicalPlan) -> bool {
    matches!(node, LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) | LogicalPlan::Join(_) | LogicalPlan::Window(_))
}

/// True when `node` is the top of a plannable stage: a projection over an aggregation (with
/// HAVING), over a join (with WHERE), or a DISTINCT.
fn is_stage_root(node: &LogicalPlan) -> bool {
    match node {
        LogicalPlan::Distinct(_) => true,
        LogicalPlan::Projection(p) if super::topn::find(&p.input).is_some() => true,
        LogicalPlan::Projection(p) => match p.input.as_ref() {
            LogicalPlan::Aggregate(_) | LogicalPlan::Join(_) => true,
            LogicalPlan::Filter(f) => matches!(f.input.as_ref(), LogicalPlan::Aggregate(_) | LogicalPlan::Join(_)),
            _ => false,
        },
        _ => false,
    }
}

impl Cutter<'_, '_, '_> {
    /// `node` with every stateful subtree below the top operator replaced by a scan of its stage.
    fn cut(&mut self, node: &LogicalPlan, below: bool) -> Result<LogicalPlan, SqlError> {
        if let LogicalPlan::Union(u) = node {
            return self.union(node, &u.inputs);
        }
        if below {
            if is_stage_root(node) {
                return self.stage(node);
            }
            if is_stateful(node) || matches!(node, LogicalPlan::Filter(f) if matches!(f.input.as_ref(), LogicalPlan::Join(_))) {
                // An aggregation or DISTINCT straight over a join (and its WHERE, which may hold
                // the join's time range): the join is a stage that outputs all of its columns.
                // Metadata columns (kafka_timestamp, ...) only when the query reads them.
                let columns: Vec<Expr> = node
                    .schema()
                    .columns()
                    .into_iter()
                    .filter(|c| !super::scope::METADATA_COLUMNS.contains(&c.name.as_str()) || self.used.contains(c))
                    .map(Expr::Column)
                    .collect();
                let projection = Projection::try_new(columns, Arc::new(node.clone())).map_err(|e| SqlError::new(e.to_string()))?;
                return self.stage(&LogicalPlan::Projection(projection));
            }
        }
        let below = below || is_stateful(node);
        let inputs: Vec<LogicalPlan> = node.inputs().into_iter().map(|c| self.cut(c, below)).collect::<Result<_, _>>()?;
        if inputs.is_empty() {
            return Ok(node.clone());
        }
        node.with_new_exprs(node.expressions(), inputs).map_err(|e| SqlError::new(e.to_string()))
    }

    /// Plans `root` as the next stage and returns the scan that reads its output.
    fn stage(&mut self, root: &LogicalPlan) -> Result<LogicalPlan, SqlError> {
        let (name, event_time) = self.plan_stage(root)?;
        self.source(name.clone(), root.schema(), event_time, vec![name])
    }

    /// `UNION ALL`: each input is a stage of its own, and all of them feed one stage source.
    fn union(&mut self, node: &LogicalPlan, inputs: &[Arc<LogicalPlan>]) -> Result<LogicalPlan, SqlError> {
        self.chain.named += 1;
        let name = stage_name(&self.chain.query, self.chain.named);
        let mut feeders = Vec::new();
        let mut times = Vec::new();
        for input in inputs {
            let (stage, time) = self.plan_stage(input)?;
            feeders.push(stage);
            times.push(time);
        }
        if times.windows(2).any(|w| w[0] != w[1]) {
            return Err(SqlError::new(
                "the inputs of UNION ALL must carry their event time in the same column (select each input's time column in the same place)",
            ));
        }
        self.source(name, node.schema(), times.first().copied().flatten(), feeders)
    }

    /// Plans `root` as a stage (pushed onto the chain): its name, and which of its output
    /// columns is its event time.
    fn plan_stage(&mut self, root: &LogicalPlan) -> Result<(String, Option<usize>), SqlError> {
        check_stage(root)?;
        self.chain.named += 1;
        let name = stage_name(&self.chain.query, self.chain.named);
        let ctx = PlanContext {
            query_name: &name,
            sources: self.ctx.sources.iter().filter(|s| !s.stage).cloned().collect(),
            sink: SinkInfo { name: "", topic: "", output_mode: OutputMode::Append, key: None, retention: None },
            repartition_partitions: self.ctx.repartition_partitions,
        };
        let mut plan = plan_with_stages(root, &ctx, self.chain)?;
        plan.sink.clear();
        plan.sink_topic.clear();
        plan.key_columns.clear();
        let event_time = stage_event_time(&plan, root.schema());
        self.chain.stages.push(plan);
        Ok((name, event_time))
    }

    /// The scan of a stage source fed by `feeders`, with `schema`.
    fn source(
        &mut self,
        name: String,
        schema: &DFSchemaRef,
        event_time: Option<usize>,
        feeders: Vec<String>,
    ) -> Result<LogicalPlan, SqlError> {
        let columns =
            Schema::new(schema.fields().iter().map(|f| Field::new(f.name().clone(), f.data_type().clone(), f.is_nullable())).collect());
        let event_time = event_time.map(|i| EventTimeConfig::Column(columns.fields[i].name.clone()));
        // The scan has the stage root's own schema, qualifiers included (a join's columns keep
        // their sides' qualifiers), so that every expression above resolves as before.
        let source = Arc::new(LogicalTableSource::new(Arc::new(arrow::datatypes::Schema::empty())));
        let mut scan =
            TableScanBuilder::new(TableReference::bare(name.clone()), source).build().map_err(|e| SqlError::new(e.to_string()))?;
        scan.projected_schema = schema.clone();
        self.sources.push(StageSource { name, schema: columns, event_time, feeders });
        Ok(LogicalPlan::TableScan(scan))
    }
}

/// What a stage may not be: its rows must be final when emitted (append), because the
/// operator above cannot take a row back.
fn check_stage(root: &LogicalPlan) -> Result<(), SqlError> {
    let mut agg = None;
    let _ = root.apply(|n| {
        if let LogicalPlan::Aggregate(a) = n {
            agg.get_or_insert(a.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        if matches!(n, LogicalPlan::Join(_) | LogicalPlan::Distinct(_)) {
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if let Some(a) = agg {
        let windowed = a.group_expr.iter().any(|g| {
            let g = match g {
                Expr::Alias(a) => a.expr.as_ref(),
                other => other,
            };
            matches!(g, Expr::ScalarFunction(f) if matches!(f.func.name(), "window" | "session_window"))
        });
        if !windowed {
            return Err(SqlError::new(
                "an aggregation inside a query must group by window(...) or session_window(...): without a window its rows are updates, which the operator above cannot take back. Window the inner aggregation, or write it to a topic with output_mode update",
            ));
        }
    }
    Ok(())
}

/// The output column of `plan` that carries its rows' event time, if one does.
fn stage_event_time(plan: &QueryPlan, schema: &DFSchema) -> Option<usize> {
    // Where an input's event-time column (after its stateless steps) is among `exprs`.
    let passed_on = |input: &InputPlan, exprs: &[crate::expr::Scalar]| -> Option<usize> {
        let EventTimeColumn::Column(et) = input.scan.event_time? else { return None };
        exprs.iter().position(|v| v.as_column() == Some(et))
    };
    match &plan.body {
        PlanBody::Aggregate(a) if a.window.is_some() => schema.fields().iter().position(|f| is_window(f.data_type())),
        PlanBody::Stateless { projection } => passed_on(&plan.inputs[0], projection),
        PlanBody::Dedup(_) => passed_on(&plan.inputs[0], &plan.inputs[0].values),
        PlanBody::TopN(t) => super::topn::event_time_column(plan, t),
        PlanBody::Join(j) => {
            // The joined row is [left values..., right values...]; prefer the left's time.
            let (left, right) = (&plan.inputs[0], &plan.inputs[1]);
            let joined = passed_on(left, &left.values).or_else(|| passed_on(right, &right.values).map(|i| i + left.values.len()))?;
            j.projection.iter().position(|p| p.as_column() == Some(joined))
        }
        _ => None,
    }
}
