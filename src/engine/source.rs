//! Runtime state of sources: one decoder per source (reading the union of the columns its
//! queries need), and one [`InputPartition`] per assigned topic partition with the offsets
//! the commit cycle needs.

use std::sync::Arc;

use crate::config::{ErrorPolicy, PipelineConfig};
use crate::formats::JsonDecoder;
use crate::pipeline::Pipeline;
use crate::sql::METADATA_COLUMNS;

/// A source as the engine runs it.
pub struct SourceRuntime {
    pub name: String,
    pub topic: Arc<str>,
    pub partitions: usize,
    pub decoder: JsonDecoder,
    /// Columns of the schema proper; metadata columns follow.
    pub schema_len: usize,
    /// Schema plus metadata columns.
    pub row_len: usize,
    /// Which metadata columns some query reads: timestamp, key, partition, offset.
    pub metadata: [Option<usize>; 4],
    /// Queries reading this source, by index.
    pub queries: Vec<usize>,
    pub query_names: String,
    pub dead_letter_topic: Option<Arc<str>>,
    pub late_topic: Option<Arc<str>>,
    pub on_error: ErrorPolicy,
}

impl SourceRuntime {
    /// The sources some query reads, in a stable order.
    pub fn build(pipeline: &Pipeline, partitions: impl Fn(&str) -> usize) -> Vec<SourceRuntime> {
        let config: &PipelineConfig = pipeline.config();
        let mut out = Vec::new();
        for (name, src) in &config.sources {
            let queries: Vec<usize> = pipeline.queries.iter().enumerate().filter(|(_, q)| &q.scan.source == name).map(|(i, _)| i).collect();
            let Some(&first) = queries.first() else { continue };
            let scan_schema = &pipeline.queries[first].scan.schema;
            let mut needed = vec![false; scan_schema.len()];
            for &q in &queries {
                for (i, n) in pipeline.queries[q].scan.needed.iter().enumerate() {
                    needed[i] |= *n;
                }
            }
            let schema_len = src.schema.schema.len();
            let mut metadata = [None; 4];
            for (slot, (meta_name, _)) in METADATA_COLUMNS.iter().enumerate() {
                if let Some(i) = scan_schema.index_of(meta_name) {
                    if i >= schema_len && needed[i] {
                        metadata[slot] = Some(i);
                    }
                }
            }
            out.push(SourceRuntime {
                name: name.clone(),
                topic: Arc::from(src.topic.as_str()),
                partitions: partitions(&src.topic),
                decoder: JsonDecoder::new(&src.schema.schema, &needed),
                schema_len,
                row_len: scan_schema.len(),
                metadata,
                query_names: queries.iter().map(|&q| pipeline.queries[q].name.as_str()).collect::<Vec<_>>().join(","),
                queries,
                dead_letter_topic: src.dead_letter_topic.as_deref().map(Arc::from),
                late_topic: src.late_topic.as_deref().map(Arc::from),
                on_error: src.on_error,
            });
        }
        out
    }
}

/// One assigned partition of a source topic.
#[derive(Debug, Default)]
pub struct InputPartition {
    /// The offset to commit: after the last record processed (or past trailing markers).
    pub next_offset: Option<i64>,
    /// The offset committed (in the last successful cycle), or the first offset read.
    pub committed: Option<i64>,
    /// The end was reached and nothing arrived since.
    pub at_end: bool,
    pub consumed: u64,
}

impl InputPartition {
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
