//! Records of one source topic → an Arrow batch of its schema plus the metadata columns
//! (`kafka_timestamp`, `kafka_key`, `kafka_partition`, `kafka_offset`), and the source's policy
//! for records that do not decode: the dead-letter topic with the reason, or skip, or stop.

use std::sync::Arc;

use arrow::array::RecordBatch;
use prometheus::IntCounter;

use super::{forward, Out, RecordRef, RuntimeError};
use crate::config::ErrorPolicy;
use crate::formats::batch::{BatchBuilder, Texts};
use crate::formats::{DecodeError, DecodeErrorKind, Decoder};
use crate::sql::METADATA_COLUMNS;
use crate::types::{Schema, Value};

/// Decodes a source's records into batches.
pub struct SourceReader {
    decoder: Decoder,
    /// Columns of the schema proper; metadata columns follow.
    schema_len: usize,
    /// Schema plus metadata columns.
    row_len: usize,
    /// Which metadata columns some query reads: timestamp, key, partition, offset.
    metadata: [Option<usize>; 4],
    builder: BatchBuilder,
    row: Vec<Value>,
    texts: Texts,
}

/// The decoded rows of some records: batch row i came from `records[i]`.
pub struct Decoded<'r> {
    pub batch: RecordBatch,
    pub records: Vec<RecordRef<'r>>,
}

impl SourceReader {
    /// `scan_schema` is the source's schema plus the metadata columns; `needed[i]` says whether
    /// any query reads column i; `schema_len` columns are the source's own.
    pub fn new(decoder: Decoder, scan_schema: &Schema, schema_len: usize, needed: &[bool]) -> SourceReader {
        let mut metadata = [None; 4];
        for (slot, name) in METADATA_COLUMNS.iter().enumerate() {
            if let Some(i) = scan_schema.index_of(name) {
                if i >= schema_len && needed.get(i).copied().unwrap_or(false) {
                    metadata[slot] = Some(i);
                }
            }
        }
        SourceReader {
            decoder,
            schema_len,
            row_len: scan_schema.len(),
            metadata,
            builder: BatchBuilder::new(scan_schema.to_arrow(), needed),
            row: Vec::new(),
            texts: Texts::default(),
        }
    }

    /// Decodes `records` (of one partition, in order). An undecodable record is given to
    /// `on_error`, which decides what becomes of it (and may stop the batch).
    pub fn decode<'r>(
        &mut self,
        records: &[RecordRef<'r>],
        mut on_error: impl FnMut(&RecordRef<'r>, &DecodeError) -> Result<(), RuntimeError>,
    ) -> Result<Decoded<'r>, RuntimeError> {
        let mut kept = Vec::with_capacity(records.len());
        let (schema_len, row_len, metadata) = (self.schema_len, self.row_len, self.metadata);
        for rec in records {
            // Every decoder resets the schema's columns itself; the metadata columns here.
            self.row.resize(row_len, Value::Null);
            if metadata.iter().any(Option::is_some) {
                self.row[schema_len..].fill(Value::Null);
            }
            let decoded = match rec.payload {
                None => Err(DecodeError::new(DecodeErrorKind::Malformed, "the record has no value")),
                Some(p) => self.decoder.decode_texts(p, &mut self.row[..schema_len], &mut self.texts),
            };
            match decoded {
                Ok(false) => continue, // a CSV header line
                Ok(true) => {}
                Err(e) if e.kind == DecodeErrorKind::Unavailable => {
                    return Err(RuntimeError::Setup(format!("{}[{}] offset {}: {e}", rec.topic, rec.partition, rec.offset)));
                }
                Err(e) => {
                    on_error(rec, &e)?;
                    continue;
                }
            }
            let [ts, key, part, off] = metadata;
            if let Some(i) = ts {
                self.row[i] = rec.timestamp.map_or(Value::Null, |ms| Value::Timestamp(ms.saturating_mul(1000)));
            }
            if let Some(i) = key {
                self.row[i] = rec.key.and_then(|k| std::str::from_utf8(k).ok()).map_or(Value::Null, Value::str);
            }
            if let Some(i) = part {
                self.row[i] = Value::Long(i64::from(rec.partition));
            }
            if let Some(i) = off {
                self.row[i] = Value::Long(rec.offset);
            }
            self.builder.push_texts(&self.row, &self.texts);
            kept.push(*rec);
        }
        let batch = self
            .builder
            .finish()
            .map_err(|e| RuntimeError::Setup(format!("cannot build a batch of {}: {e}", records.first().map_or("", |r| r.topic))))?;
        Ok(Decoded { batch, records: kept })
    }
}

/// What a source does with records that do not decode.
pub struct DeadLetters {
    pub source_name: String,
    pub dead_letter_topic: Option<Arc<str>>,
    pub on_error: ErrorPolicy,
    /// The queries that read the source, for the `eddy.query` header.
    pub query_names: String,
    pub dead_lettered: IntCounter,
    pub skipped: IntCounter,
}

impl DeadLetters {
    /// Sends an undecodable record to the dead-letter topic, or applies the source's policy.
    pub fn handle(&self, rec: &RecordRef<'_>, e: &DecodeError, out: &mut dyn Out) -> Result<(), RuntimeError> {
        match (&self.dead_letter_topic, self.on_error) {
            (Some(dlq), _) => {
                forward(out, dlq, rec, e.kind.as_str(), &e.message, &self.query_names, None)?;
                self.dead_lettered.inc();
                Ok(())
            }
            (None, ErrorPolicy::Skip) => {
                self.skipped.inc();
                tracing::debug!(
                    topic = rec.topic,
                    partition = rec.partition,
                    offset = rec.offset,
                    "skipped a record that cannot be decoded: {e}"
                );
                Ok(())
            }
            (None, ErrorPolicy::Fail) => Err(RuntimeError::DecodeFailure {
                source_name: self.source_name.clone(),
                topic: rec.topic.to_string(),
                partition: rec.partition,
                offset: rec.offset,
                message: e.message.clone(),
            }),
        }
    }
}
