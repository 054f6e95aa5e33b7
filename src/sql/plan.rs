//! The physical plan of one query: what each input reads and computes, how its rows reach
//! the stateful operator (locally or through a repartition topic), what the operator keeps,
//! and what is written.

use crate::config::OutputMode;
use crate::expr::Expr;
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
}

impl QueryPlan {
    /// The first (or only) input's scan.
    pub fn scan(&self) -> &ScanPlan {
        &self.inputs[0].scan
    }

    pub fn is_stateful(&self) -> bool {
        !matches!(self.body, PlanBody::Stateless { .. } | PlanBody::TableJoin(_))
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
    pub keys: Vec<Expr>,
    /// Over the scan row: aggregate arguments, a join side's columns, dedup output columns.
    pub values: Vec<Expr>,
    pub exchange: Exchange,
}

/// Reading one source.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub source: String,
    pub topic: String,
    /// The source schema followed by the metadata columns (kafka_timestamp, ...).
    pub schema: Schema,
    /// Which columns of `schema` the query reads (the decoder skips the others).
    pub needed: Vec<bool>,
    pub event_time: Option<EventTimeColumn>,
    /// In microseconds; `None` when the source has no watermark.
    pub watermark_delay: Option<i64>,
    pub idle_timeout: Option<std::time::Duration>,
    /// WHERE conjuncts that read only this input, over the scan row.
    pub filter: Option<Expr>,
}

/// Where a scan row's event time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTimeColumn {
    Column(usize),
    KafkaTimestamp,
}

/// What a query does after its inputs.
#[derive(Debug, Clone)]
pub enum PlanBody {
    /// Filter and project each record (over the scan row of `inputs[0]`).
    Stateless { projection: Vec<Expr> },
    /// GROUP BY with an optional window.
    Aggregate(AggregatePlan),
    /// A stream-stream join with a time range.
    Join(JoinPlan),
    /// SELECT DISTINCT / DISTINCT ON.
    Dedup(DedupPlan),
    /// A stream joined with a table source (latest value per key).
    TableJoin(TableJoinPlan),
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
/// produces *aggregate rows* `[keys..., window?, results...]` for HAVING and the projection.
#[derive(Debug, Clone)]
pub struct AggregatePlan {
    pub key_names: Vec<String>,
    pub window: Option<WindowKind>,
    /// One per aggregate call; `InputPlan::values[i]` is call i's argument (NULL for count(*)).
    pub aggregates: Vec<AggregateCall>,
    /// Over the aggregate row.
    pub having: Option<Expr>,
    /// Over the aggregate row.
    pub projection: Vec<Expr>,
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
    pub residual: Option<Expr>,
    /// Over the joined row.
    pub projection: Vec<Expr>,
    /// As written, for explain.
    pub key_text: Vec<String>,
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
}

/// A stream joined with a table: each stream row is looked up by key in the table's latest
/// values. Stateless in the task; the table is loaded by the engine.
#[derive(Debug, Clone)]
pub struct TableJoinPlan {
    pub table: ScanPlan,
    /// Over the stream's scan row.
    pub stream_keys: Vec<Expr>,
    /// Table columns forming its key, in the same order.
    pub table_keys: Vec<usize>,
    pub left_outer: bool,
    /// Over `[stream scan row..., table scan row...]`.
    pub projection: Vec<Expr>,
    pub residual: Option<Expr>,
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
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateCall {
    pub kind: AggregateKind,
    /// The argument over the scan row; `None` for count(*). Kept for explain and types; the
    /// input row carries its value.
    pub arg: Option<Expr>,
    pub result_type: DataType,
    /// As written, for explain.
    pub text: String,
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
}

/// A column of the output record.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: String,
    pub data_type: DataType,
}
