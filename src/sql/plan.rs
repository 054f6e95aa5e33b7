//! The physical plan of one query: what each stage reads, computes, keeps and writes.

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
    /// The source scan (decode, event time, filter).
    pub scan: ScanPlan,
    pub body: PlanBody,
    /// The output record's columns.
    pub output: Vec<OutputColumn>,
    /// Output columns forming the Kafka key; empty means "keep the input record's key"
    /// for stateless queries, or no key.
    pub key_columns: Vec<usize>,
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
    /// WHERE, over the scan row.
    pub filter: Option<Expr>,
}

/// Where a scan row's event time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTimeColumn {
    Column(usize),
    KafkaTimestamp,
}

/// What a query does after the scan.
#[derive(Debug, Clone)]
pub enum PlanBody {
    /// Filter and project each record.
    Stateless { projection: Vec<Expr> },
    /// GROUP BY with an optional event-time window.
    Aggregate(AggregatePlan),
}

/// A (windowed) aggregation.
///
/// Stage one turns a scan row into an *input row* `[event_time, keys..., args...]`; the
/// operator keeps one accumulator set per (window, keys); an *aggregate row*
/// `[keys..., window?, results...]` feeds HAVING and the projection.
#[derive(Debug, Clone)]
pub struct AggregatePlan {
    /// Group expressions other than the window, over the scan row.
    pub keys: Vec<Expr>,
    pub key_names: Vec<String>,
    pub window: Option<WindowSpec>,
    pub aggregates: Vec<AggregateCall>,
    /// Over the aggregate row.
    pub having: Option<Expr>,
    /// Over the aggregate row.
    pub projection: Vec<Expr>,
    pub exchange: Exchange,
}

impl AggregatePlan {
    /// Index of the window column in the aggregate row.
    pub fn window_index(&self) -> Option<usize> {
        self.window.map(|_| self.keys.len())
    }

    /// Index of the first aggregate result in the aggregate row.
    pub fn first_aggregate_index(&self) -> usize {
        self.keys.len() + usize::from(self.window.is_some())
    }
}

/// How rows reach the stateful operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Exchange {
    /// The source is partitioned by (a subset of) the group keys: each partition is complete.
    Local,
    /// Rows must be re-keyed through `<app>-<query>-repartition`.
    Repartition { partitions: Option<u32>, reason: String },
}

/// One aggregate function call.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateCall {
    pub kind: AggregateKind,
    /// The argument over the scan row; `None` for count(*).
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
