//! The physical plan of one query: what each input reads and computes, how its rows reach
//! the stateful operator (locally or through a repartition topic), what the operator keeps,
//! and what is written.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::config::OutputMode;
use crate::expr::Scalar;
use crate::time::WindowSpec;
use crate::types::{DataType, Schema};

/// A planned query.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    pub name: String,
    pub sink: String,
    pub sink_topic: String,
    pub output_mode: OutputMode,
    /// One input, or two for a join (left, right).
    pub inputs: Vec<InputPlan>,
    pub body: PlanBody,
    /// The output record's columns.
    pub output: Vec<OutputColumn>,
    /// Output columns forming the Kafka key; empty means "keep the input record's key"
    /// for stateless queries, or no key.
    pub key_columns: Vec<usize>,
    /// The stages below this one, lowest first, when the query chains stateful operators:
    /// each runs as its own operator stage (tasks, state tree, changelog) and feeds the next
    /// through an internal topic. Empty for a query of one stateful operator.
    pub stages: Vec<QueryPlan>,
    /// For a stage: the stage or query whose input side it feeds (instead of a sink).
    pub feeds: Option<Feed>,
    /// `ORDER BY ... LIMIT n` over a complete-mode aggregation: only the first n rows of the
    /// table are the output.
    pub top: Option<TopSpec>,
}

/// The first `limit` rows of a result table by `order` (output columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopSpec {
    pub order: Vec<TopOrder>,
    pub limit: usize,
}

/// One ORDER BY key: an output column, its direction and where NULLs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopOrder {
    pub column: usize,
    pub descending: bool,
    pub nulls_first: bool,
}

/// Where a stage's output goes: input `side` of query (or stage) `query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub query: String,
    pub side: usize,
}

impl QueryPlan {
    /// The first (or only) input's scan.
    pub fn scan(&self) -> &ScanPlan {
        &self.inputs[0].scan
    }

    pub fn is_stateful(&self) -> bool {
        !matches!(self.body, PlanBody::Stateless { .. } | PlanBody::TableJoin(_))
    }

    /// This plan, preceded by the stages below it (lowest first).
    pub fn all_stages(&self) -> Vec<&QueryPlan> {
        let mut out: Vec<&QueryPlan> = self.stages.iter().collect();
        out.push(self);
        out
    }

    /// True when any input goes through a repartition topic.
    pub fn repartitions(&self) -> bool {
        self.inputs.iter().any(|i| matches!(i.exchange, Exchange::Repartition { .. }))
    }

    /// The operator's name in metrics and state trees.
    pub fn operator_name(&self) -> &'static str {
        match &self.body {
            PlanBody::Stateless { .. } => "project",
            PlanBody::TableJoin(_) => "table_join",
            PlanBody::Aggregate(a) if matches!(a.window, Some(WindowKind::Session { .. })) => "session",
            PlanBody::Aggregate(_) => "aggregate",
            PlanBody::Join(_) => "join",
            PlanBody::Dedup(_) => "dedup",
            PlanBody::TopN(_) => "topn",
        }
    }
}

/// One input of a query, up to the operator.
///
/// The operator sees *input rows* `[event_time, keys..., values...]`, computed from the scan
/// row by `keys` and `values`. When the input is repartitioned, the first stage computes them
/// and ships them through the repartition topic, partitioned by `keys`.
#[derive(Debug, Clone)]
pub struct InputPlan {
    pub scan: ScanPlan,
    /// Over the scan row: group keys, join keys or deduplication keys.
    pub keys: Vec<Scalar>,
    /// Over the scan row: aggregate arguments, a join side's columns, dedup output columns.
    pub values: Vec<Scalar>,
    pub exchange: Exchange,
}

/// Reading one source.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub source: String,
    pub topic: String,
    /// The source schema followed by the metadata columns (kafka_timestamp, ...).
    pub schema: Schema,
    /// The same as Arrow's schema: the batches the decoder builds.
    pub arrow: SchemaRef,
    /// Which columns of `schema` the query reads (the decoder skips the others).
    pub needed: Vec<bool>,
    pub event_time: Option<EventTimeColumn>,
    /// In microseconds; `None` when the source has no watermark.
    pub watermark_delay: Option<i64>,
    pub idle_timeout: Option<std::time::Duration>,
    /// WHERE conjuncts that read only this input, over the scan row.
    pub filter: Option<Scalar>,
    /// Stateless steps after the filter (a subquery's projection, explode): keys, values and a
    /// stateless projection read the row they make.
    pub stages: Vec<Stage>,
    /// The source column the event time comes from (when it is a column), for decoding.
    pub event_time_source: Option<usize>,
    /// The stage whose output this input reads (`source` is then that stage's name, and
    /// `topic` the internal topic it writes); `None` for a source from the pipeline file.
    pub stage: Option<String>,
}

/// A stateless step of an input.
#[derive(Debug, Clone)]
pub enum Stage {
    /// The rows that pass.
    Filter(Scalar),
    /// New columns from the current ones, with the row they make.
    Project { exprs: Vec<Scalar>, schema: SchemaRef },
    /// One row per element of the array in `column` (rows whose array is NULL or empty
    /// vanish, as with Spark's explode), the element in place of the array.
    Unnest { column: usize, schema: SchemaRef },
}

/// Where an input row's event time is (after the input's stages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTimeColumn {
    Column(usize),
    KafkaTimestamp,
}

/// What a query does after its inputs.
#[derive(Debug, Clone)]
pub enum PlanBody {
    /// Filter and project each record (over the scan row of `inputs[0]`).
    Stateless { projection: Vec<Scalar> },
    /// GROUP BY with an optional window.
    Aggregate(AggregatePlan),
    /// A stream-stream join with a time range.
    Join(JoinPlan),
    /// SELECT DISTINCT / DISTINCT ON.
    Dedup(DedupPlan),
    /// A stream joined with a table source (latest value per key).
    TableJoin(Box<TableJoinPlan>),
    /// The first rows of each window (and keys) by a ranking.
    TopN(TopNPlan),
}

/// The window of an aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `window(ts, size[, slide[, start]])`.
    Fixed(WindowSpec),
    /// `session_window(ts, gap)`.
    Session { gap: i64 },
}

/// A (windowed) aggregation. The operator keeps one accumulator set per (window, keys) and
/// produces result rows `[keys..., window?, results...]`; HAVING and the projection read the
/// *aggregate row* (`row_schema`, DataFusion's order: group expressions, then aggregates),
/// whose column i is result-row column `row_map[i]`.
#[derive(Debug, Clone)]
pub struct AggregatePlan {
    pub key_names: Vec<String>,
    pub window: Option<WindowKind>,
    /// One per aggregate call; call i reads `InputPlan::values[calls[i].first_value..][..arity]`.
    pub aggregates: Vec<AggregateCall>,
    /// Over the aggregate row.
    pub having: Option<Scalar>,
    /// Over the aggregate row.
    pub projection: Vec<Scalar>,
    pub row_schema: SchemaRef,
    pub row_map: Vec<usize>,
    /// Complete mode over windows: microseconds a window stays in the result table after the
    /// watermark passes its end (`None`: for ever).
    pub retention: Option<i64>,
}

impl AggregatePlan {
    pub fn key_count(&self) -> usize {
        self.key_names.len()
    }

    /// Index of the window column in the aggregate row.
    pub fn window_index(&self) -> Option<usize> {
        self.window.map(|_| self.key_count())
    }

    /// Index of the first aggregate result in the aggregate row.
    pub fn first_aggregate_index(&self) -> usize {
        self.key_count() + usize::from(self.window.is_some())
    }
}

/// Join types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
}

/// A stream-stream join: equal keys and `lower <= left time - right time <= upper`.
/// The operator's output row is `[left values..., right values...]`.
#[derive(Debug, Clone)]
pub struct JoinPlan {
    pub kind: JoinKind,
    pub lower: i64,
    pub upper: i64,
    /// Over the joined row (inner joins only).
    pub residual: Option<Scalar>,
    /// Over the joined row.
    pub projection: Vec<Scalar>,
    /// As written, for explain.
    pub key_text: Vec<String>,
    /// The joined row: the left side's values, then the right side's.
    pub row_schema: SchemaRef,
}

/// Deduplication rules (Spark's dropDuplicates and dropDuplicatesWithinWatermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupRule {
    /// The event time is one of the keys: a key's state ends when the watermark passes it.
    EventTimeInKey,
    /// The first row of a key passes; its state ends `delay` after its event time.
    WithinWatermark { delay: i64 },
}

/// A deduplication: the operator emits an input row's `values` the first time its keys are
/// seen. The output row is those values.
#[derive(Debug, Clone)]
pub struct DedupPlan {
    pub rule: DedupRule,
    /// The output row (the input's values).
    pub row_schema: SchemaRef,
}

/// A Window Top-N: `<ranking>() OVER (PARTITION BY <keys> ORDER BY <order>)` over a windowed
/// input, kept while it is at most `limit`. The input's keys are the PARTITION BY expressions
/// (one is the window, or the event time itself); its values are the ORDER BY expressions,
/// then every column of the ranked relation. The operator emits `[columns..., rank]`
/// (`row_schema`) once per partition, when the watermark closes it; then each of `layers`
/// (the select lists between the ranking and the filter on it), `filter`, and `projection`.
#[derive(Debug, Clone)]
pub struct TopNPlan {
    pub ranking: crate::expr::ranking::Ranking,
    pub limit: u64,
    pub order: Vec<SortKey>,
    /// The key that is the partition's window, when one is (else the event time is a key).
    pub window_key: Option<usize>,
    pub row_schema: SchemaRef,
    /// Select lists, lowest first, each over the row the previous one makes (with its schema).
    pub layers: Vec<(Vec<Scalar>, SchemaRef)>,
    /// Over the top layer's row: the condition on the rank (and any other of that WHERE).
    pub filter: Option<Scalar>,
    /// Over the top layer's row.
    pub projection: Vec<Scalar>,
    /// As written, for explain: the ranking call and its ORDER BY.
    pub text: String,
    pub order_text: Vec<String>,
}

/// One ORDER BY key of a ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub descending: bool,
    /// Where NULL goes, whatever the direction.
    pub nulls_first: bool,
}

/// A stream joined with a table: each stream row is looked up by key in the table's latest
/// values. Stateless in the task; the table is loaded by the engine.
#[derive(Debug, Clone)]
pub struct TableJoinPlan {
    pub table: ScanPlan,
    /// Over the stream's scan row.
    pub stream_keys: Vec<Scalar>,
    /// Table columns forming its key, in the same order.
    pub table_keys: Vec<usize>,
    pub left_outer: bool,
    /// Over `[stream scan row..., table scan row...]` (`row_schema`).
    pub projection: Vec<Scalar>,
    pub residual: Option<Scalar>,
    pub row_schema: SchemaRef,
}

/// How rows reach the stateful operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Exchange {
    /// The source is partitioned by the keys: each partition holds whole groups.
    Local,
    /// Rows are re-keyed through a repartition topic.
    Repartition { partitions: Option<u32>, reason: String },
}

/// One aggregate function call.
#[derive(Debug, Clone)]
pub struct AggregateCall {
    pub kind: AggregateKind,
    /// Its arguments' types (none for count(*)).
    pub arg_types: Vec<DataType>,
    pub result_type: DataType,
    /// Where its arguments start among the input row's values, and how many there are.
    pub first_value: usize,
    pub arity: usize,
    /// As written, for explain.
    pub text: String,
    /// DataFusion's aggregate, for every kind eddy does not accumulate itself.
    pub udaf: Option<Arc<crate::expr::aggregate::UdafFactory>>,
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateKind {
    /// count(*)
    CountStar,
    /// count(x): non-null values.
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    /// Any other aggregate: DataFusion's accumulator (`AggregateCall::udaf`).
    Udaf,
}

/// A column of the output record.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: String,
    pub data_type: DataType,
}

impl AggregateCall {
    /// One of eddy's own aggregates over one argument, for tests and hand-built plans.
    pub fn native(kind: AggregateKind, result_type: DataType, text: &str) -> AggregateCall {
        AggregateCall {
            kind,
            arg_types: vec![result_type.clone()],
            result_type,
            first_value: 0,
            arity: 1,
            text: text.to_string(),
            udaf: None,
        }
    }
}

/// Calls whose arguments are the input row's values in order (call i reads value i).
pub fn numbered(mut calls: Vec<AggregateCall>) -> Vec<AggregateCall> {
    for (i, c) in calls.iter_mut().enumerate() {
        c.first_value = i;
    }
    calls
}
