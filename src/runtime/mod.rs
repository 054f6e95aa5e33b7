//! The task runtime, free of Kafka: what a query does to the records of one partition. A
//! [`source::SourceReader`] decodes records into Arrow batches; a [`task::QueryTask`] filters,
//! keys and projects them with DataFusion's expressions, runs its stateful operator, keeps its
//! watermark clock and hands output records, late and dead-letter records and changelog
//! entries to an [`Out`]; a [`prepare::PrepareTask`] is the first stage of a repartitioned
//! input. The engine drives them with a transactional producer behind `Out`; the in-engine
//! benchmark and the tests drive the very same code with an `Out` that keeps or counts records.
//! Depends on `formats`, `expr`, `operators`, `sql` plans, `state::codec`, `time`, `types` and
//! `metrics` (counters); never on Kafka clients.

pub mod clock;
pub mod eval;
pub mod internal;
pub mod output;
pub mod prepare;
pub mod rowexpr;
pub mod source;
pub mod task;
pub mod top;

use crate::time::format_timestamp;
use crate::types::Value;

/// One outgoing record.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub timestamp: Option<i64>,
    /// Changelog slot, or 0.
    pub slot: usize,
    pub kind: OutKind,
}

/// What an outgoing record is, for the cycle's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutKind {
    /// A query's result row.
    Sink,
    /// A repartition row or watermark marker.
    Internal,
    /// A dead-letter or late record.
    Forward,
    /// A state change.
    Changelog,
}

/// A record could not be handed over. The [`Out`] that refused keeps the cause (the engine's
/// Kafka error), so the runtime never sees a client's error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a record could not be sent")]
pub struct SendFailed;

/// Where tasks put their records.
pub trait Out {
    fn send(&mut self, r: &Outgoing<'_>) -> Result<(), SendFailed>;
}

/// Failures of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Send(#[from] SendFailed),
    /// A record is undecodable and its source says `on_error: fail`.
    #[error("record {topic}/{partition}@{offset} cannot be decoded ({message}) and source {source_name} has on_error: fail")]
    DecodeFailure { source_name: String, topic: String, partition: i32, offset: i64, message: String },
    /// Something outside the records is wrong (an unreachable schema registry, a corrupt
    /// internal record, partitions that do not line up).
    #[error("{0}")]
    Setup(String),
}

/// The original Kafka record a row came from.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
}

/// Header names on dead-letter and late records.
pub const H_ERROR_KIND: &str = "eddy.error.kind";
pub const H_ERROR_MESSAGE: &str = "eddy.error.message";
pub const H_SOURCE_TOPIC: &str = "eddy.source.topic";
pub const H_SOURCE_PARTITION: &str = "eddy.source.partition";
pub const H_SOURCE_OFFSET: &str = "eddy.source.offset";
pub const H_QUERY: &str = "eddy.query";
pub const H_WATERMARK: &str = "eddy.watermark";

/// Sends the original record to `topic` with headers explaining what happened to it.
pub fn forward(
    out: &mut dyn Out,
    topic: &str,
    rec: &RecordRef<'_>,
    kind: &str,
    message: &str,
    query: &str,
    extra: Option<(&str, &str)>,
) -> Result<(), SendFailed> {
    let partition = rec.partition.to_string();
    let offset = rec.offset.to_string();
    let mut headers: Vec<(&str, &[u8])> = vec![
        (H_ERROR_KIND, kind.as_bytes()),
        (H_ERROR_MESSAGE, message.as_bytes()),
        (H_SOURCE_TOPIC, rec.topic.as_bytes()),
        (H_SOURCE_PARTITION, partition.as_bytes()),
        (H_SOURCE_OFFSET, offset.as_bytes()),
        (H_QUERY, query.as_bytes()),
    ];
    if let Some((k, v)) = extra {
        headers.push((k, v.as_bytes()));
    }
    out.send(&Outgoing {
        topic,
        partition: None,
        key: rec.key,
        payload: rec.payload,
        headers: &headers,
        timestamp: rec.timestamp,
        slot: 0,
        kind: OutKind::Forward,
    })
}

/// An RFC 3339 rendering of a watermark for headers and logs.
pub fn watermark_text(watermark: i64) -> String {
    if watermark == i64::MIN {
        return "none".to_string();
    }
    let mut s = String::new();
    format_timestamp(watermark, &mut s);
    s
}

/// The rows of a joined table, by key, as tasks look them up.
pub trait Tables {
    /// The latest row of table `table` with key `key` (order-preserving key bytes).
    fn lookup(&self, table: usize, key: &[u8]) -> Option<&[Value]>;
    /// How many columns a row of table `table` has.
    fn width(&self, table: usize) -> usize;
}

/// No tables (queries without a stream-table join).
pub struct NoTables;

impl Tables for NoTables {
    fn lookup(&self, _table: usize, _key: &[u8]) -> Option<&[Value]> {
        None
    }
    fn width(&self, _table: usize) -> usize {
        0
    }
}

/// A record an [`Collected`] kept.
#[derive(Debug, Clone)]
pub struct Kept {
    pub kind: OutKind,
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// An `Out` that keeps every record, for tests.
#[derive(Default)]
pub struct Collected {
    pub records: Vec<Kept>,
}

impl Out for Collected {
    fn send(&mut self, r: &Outgoing<'_>) -> Result<(), SendFailed> {
        self.records.push(Kept {
            kind: r.kind,
            topic: r.topic.to_string(),
            partition: r.partition,
            key: r.key.map(<[u8]>::to_vec),
            payload: r.payload.map(<[u8]>::to_vec),
            headers: r.headers.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod chain_tests;
#[cfg(test)]
mod tests;
