//! Table sources for stream-table joins: every instance reads all partitions of the table's
//! compacted topic (like Kafka Streams' GlobalKTable), keeps the latest row per primary key
//! in memory, loads it to the end before the stream starts, and applies updates as they
//! arrive. A record with a null value deletes its key. The topic is its own changelog.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::EngineError;
use crate::config::SourceConfig;
use crate::formats::Decoder;
use crate::sql::{ScanPlan, METADATA_COLUMNS};
use crate::types::{encode_key_value, FxHashMap, Value};

/// The tables of a pipeline, as tasks look rows up.
#[derive(Default)]
pub struct TableSet(pub Vec<TableRuntime>);

impl crate::runtime::Tables for TableSet {
    fn lookup(&self, table: usize, key: &[u8]) -> Option<&[Value]> {
        self.0.get(table)?.lookup(key)
    }

    fn width(&self, table: usize) -> usize {
        self.0.get(table).map_or(0, TableRuntime::width)
    }
}

/// One table source.
pub struct TableRuntime {
    pub name: String,
    pub topic: String,
    consumer: BaseConsumer,
    data: TableData,
}

/// A table's rows.
struct TableData {
    name: String,
    decoder: Decoder,
    schema_len: usize,
    row_len: usize,
    metadata: [Option<usize>; 4],
    key_columns: Vec<usize>,
    rows: FxHashMap<Box<[u8]>, Vec<Value>>,
    /// Kafka record key → primary key, so that a tombstone (no value) finds its row.
    by_record_key: FxHashMap<Box<[u8]>, Box<[u8]>>,
    rejected: u64,
}

impl TableRuntime {
    /// `schema` is the table's own schema; `scan` says which columns queries read.
    pub fn open(
        cfg: &ClientConfig,
        name: &str,
        source: &SourceConfig,
        scan: &ScanPlan,
        key_columns: Vec<usize>,
        partitions: usize,
    ) -> Result<TableRuntime, EngineError> {
        let schema = &source.schema.schema;
        let decoder = Decoder::for_source(source, schema, &scan.needed).map_err(|e| EngineError::Setup(format!("table {name}: {e}")))?;
        let consumer: BaseConsumer =
            cfg.create().map_err(|e| EngineError::kafka(format!("cannot create the consumer of table {name}"), e))?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            tpl.add_partition_offset(&scan.topic, p, Offset::Beginning)
                .map_err(|e| EngineError::kafka("cannot build the table assignment", e))?;
        }
        consumer.assign(&tpl).map_err(|e| EngineError::kafka(format!("cannot read table topic {}", scan.topic), e))?;
        let mut metadata = [None; 4];
        for (slot, meta_name) in METADATA_COLUMNS.iter().enumerate() {
            if let Some(i) = scan.schema.index_of(meta_name) {
                if i >= schema.len() && scan.needed.get(i).copied().unwrap_or(false) {
                    metadata[slot] = Some(i);
                }
            }
        }
        Ok(TableRuntime {
            name: name.to_string(),
            topic: scan.topic.clone(),
            consumer,
            data: TableData {
                name: name.to_string(),
                decoder,
                schema_len: schema.len(),
                row_len: scan.schema.len(),
                metadata,
                key_columns,
                rows: FxHashMap::default(),
                by_record_key: FxHashMap::default(),
                rejected: 0,
            },
        })
    }

    /// Reads the topic to its current end (every partition), before the stream starts.
    pub fn load(&mut self, partitions: usize, stall: Duration) -> Result<u64, EngineError> {
        let mut at_end = std::collections::HashSet::new();
        let mut last = Instant::now();
        let mut n = 0;
        while at_end.len() < partitions {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    at_end.remove(&m.partition());
                    self.data.apply(&m);
                    n += 1;
                    last = Instant::now();
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(e)) => return Err(EngineError::kafka(format!("cannot read table topic {}", self.topic), e)),
                None if last.elapsed() > stall => {
                    return Err(EngineError::RestoreStalled { topic: self.topic.clone(), partition: -1, seconds: stall.as_secs() });
                }
                None => {}
            }
        }
        Ok(n)
    }

    /// Applies updates that have arrived, without waiting.
    pub fn poll(&mut self, max: usize) {
        for _ in 0..max {
            match self.consumer.poll(Duration::ZERO) {
                Some(Ok(m)) => self.data.apply(&m),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => tracing::warn!(table = %self.name, error = %e, "reading table {} failed: {e}", self.name),
                None => break,
            }
        }
    }

    /// The row whose primary key encodes to `key`.
    pub fn lookup(&self, key: &[u8]) -> Option<&[Value]> {
        self.data.rows.get(key).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.data.rows.len()
    }

    /// Width of a table row (schema plus metadata columns).
    pub fn width(&self) -> usize {
        self.data.row_len
    }

    /// Records that could not be decoded.
    pub fn rejected(&self) -> u64 {
        self.data.rejected
    }
}

impl TableData {
    fn apply(&mut self, m: &BorrowedMessage<'_>) {
        let Some(payload) = m.payload() else {
            if let Some(k) = m.key() {
                if let Some(pk) = self.by_record_key.remove(k) {
                    self.rows.remove(&pk);
                }
            }
            return;
        };
        let mut row = vec![Value::Null; self.row_len];
        match self.decoder.decode(payload, &mut row[..self.schema_len]) {
            Ok(true) => {}
            Ok(false) => return, // a CSV header line
            Err(e) => {
                self.rejected += 1;
                tracing::debug!(table = %self.name, partition = m.partition(), offset = m.offset(), "skipped a table record that cannot be decoded: {e}");
                return;
            }
        }
        let [ts, key, part, off] = self.metadata;
        if let Some(i) = ts {
            row[i] = m.timestamp().to_millis().map_or(Value::Null, |ms| Value::Timestamp(ms.saturating_mul(1000)));
        }
        if let Some(i) = key {
            row[i] = m.key().and_then(|k| std::str::from_utf8(k).ok()).map_or(Value::Null, Value::str);
        }
        if let Some(i) = part {
            row[i] = Value::Long(i64::from(m.partition()));
        }
        if let Some(i) = off {
            row[i] = Value::Long(m.offset());
        }
        let mut pk = Vec::new();
        for &c in &self.key_columns {
            encode_key_value(&row[c], &mut pk);
        }
        let pk: Box<[u8]> = pk.into_boxed_slice();
        if let Some(k) = m.key() {
            if let Some(old) = self.by_record_key.insert(Box::from(k), pk.clone()) {
                if old != pk {
                    self.rows.remove(&old);
                }
            }
        }
        self.rows.insert(pk, row);
    }
}
