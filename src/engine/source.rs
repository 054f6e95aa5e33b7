//! The topics the engine reads: user sources (decoded once per record for every query that
//! reads them) and repartition topics (operator input rows and watermark markers), and one
//! [`InputPartition`] per assigned partition with the offsets the commit cycle needs.

use std::sync::Arc;

use super::EngineError;
use crate::config::{PipelineConfig, SourceKind};
use crate::formats::Decoder;
use crate::metrics::{InputSeries, Metrics};
use crate::pipeline::Pipeline;
use crate::runtime::source::{DeadLetters, SourceReader};
use crate::sql::Exchange;

/// Which stage of a query reads a source topic for one of its input sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The query's own task reads the source partition.
    Task { query: usize, side: usize },
    /// The first stage of a repartitioned side reads it.
    Prepare { query: usize, side: usize },
}

/// What a topic holds.
pub enum TopicKind {
    Source {
        /// Records → batches of the source's schema plus metadata columns.
        reader: Box<SourceReader>,
        dead_letters: DeadLetters,
        readers: Vec<Reader>,
        dead_letter_topic: Option<Arc<str>>,
        late_topic: Option<Arc<str>>,
    },
    Repartition {
        query: usize,
        side: usize,
    },
}

/// A topic the engine consumes.
pub struct TopicRuntime {
    pub topic: Arc<str>,
    pub partitions: usize,
    pub kind: TopicKind,
}

impl TopicRuntime {
    /// The stream sources some query reads, in a stable order.
    pub fn sources(pipeline: &Pipeline, partitions: impl Fn(&str) -> usize, metrics: &Metrics) -> Result<Vec<TopicRuntime>, EngineError> {
        let config: &PipelineConfig = pipeline.config();
        let mut out = Vec::new();
        for (name, src) in &config.sources {
            if src.kind == SourceKind::Table {
                continue;
            }
            let mut readers = Vec::new();
            let mut needed: Vec<bool> = Vec::new();
            let mut scan_schema = None;
            for (qi, q) in pipeline.queries.iter().enumerate() {
                for (side, input) in q.inputs.iter().enumerate() {
                    if &input.scan.source != name {
                        continue;
                    }
                    readers.push(match input.exchange {
                        Exchange::Local => Reader::Task { query: qi, side },
                        Exchange::Repartition { .. } => Reader::Prepare { query: qi, side },
                    });
                    if needed.is_empty() {
                        needed = vec![false; input.scan.needed.len()];
                        scan_schema = Some(input.scan.schema.clone());
                    }
                    for (i, n) in input.scan.needed.iter().enumerate() {
                        if let Some(slot) = needed.get_mut(i) {
                            *slot |= *n;
                        }
                    }
                }
            }
            let Some(scan_schema) = scan_schema else { continue };
            let schema_len = src.schema.schema.len();
            let mut names: Vec<&str> = readers
                .iter()
                .map(|r| match r {
                    Reader::Task { query, .. } | Reader::Prepare { query, .. } => pipeline.queries[*query].name.as_str(),
                })
                .collect();
            names.dedup();
            let decoder =
                Decoder::for_source(src, &src.schema.schema, &needed).map_err(|e| EngineError::Setup(format!("source {name}: {e}")))?;
            let dead_letter_topic: Option<Arc<str>> = src.dead_letter_topic.as_deref().map(Arc::from);
            let dead_letters = DeadLetters {
                source_name: name.clone(),
                dead_letter_topic: dead_letter_topic.clone(),
                on_error: src.on_error,
                query_names: names.join(","),
                dead_lettered: metrics.dead_letter_records.with_label_values(&[&src.topic, "dead_lettered"]),
                skipped: metrics.dead_letter_records.with_label_values(&[&src.topic, "skipped"]),
            };
            out.push(TopicRuntime {
                topic: Arc::from(src.topic.as_str()),
                partitions: partitions(&src.topic),
                kind: TopicKind::Source {
                    reader: Box::new(SourceReader::new(decoder, &scan_schema, schema_len, &needed)),
                    dead_letters,
                    readers,
                    dead_letter_topic,
                    late_topic: src.late_topic.as_deref().map(Arc::from),
                },
            });
        }
        Ok(out)
    }
}

/// One assigned partition of a consumed topic.
pub struct InputPartition {
    /// The offset to commit: after the last record processed (or past trailing markers).
    pub next_offset: Option<i64>,
    /// The offset committed (in the last successful cycle), or the first offset read.
    pub committed: Option<i64>,
    /// The committed offset up to which a repartition topic was purged.
    pub purged: Option<i64>,
    /// The end was reached and nothing arrived since.
    pub at_end: bool,
    /// Records read in the current cycle, and in the sealed one whose commit is in flight
    /// (reported when it is committed).
    pub consumed: u64,
    pub sealed_consumed: u64,
    /// The engine's assignment epoch when this partition was assigned: records polled before
    /// it belong to an earlier assignment and are dropped (the consumer reads them again).
    pub since_epoch: u64,
    /// Its lag and consumed records, removed when it is revoked.
    pub series: InputSeries,
}

impl InputPartition {
    pub fn new(since_epoch: u64, series: InputSeries) -> InputPartition {
        InputPartition {
            next_offset: None,
            committed: None,
            purged: None,
            at_end: false,
            consumed: 0,
            sealed_consumed: 0,
            since_epoch,
            series,
        }
    }

    /// Offsets not yet committed.
    pub fn uncommitted(&self) -> Option<i64> {
        match (self.next_offset, self.committed) {
            (Some(n), Some(c)) if n > c => Some(n),
            (Some(n), None) => Some(n),
            _ => None,
        }
    }

    /// Where to seek to drop uncommitted work.
    pub fn rewind_to(&self) -> Option<i64> {
        self.committed
    }
}
