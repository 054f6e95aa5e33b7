//! A query's output: result columns (Arrow arrays) encoded row by row in the sink's format
//! (JSON unless set) and sent to the sink topic, keyed by the key columns as JSON (or the
//! input record's key), counted per query, with the end-to-end latencies of each cycle.
//! While retracting, rows leave the result table instead: each becomes a tombstone (its key,
//! no value), so a compacted topic forgets it.

use std::sync::Arc;

use arrow::array::ArrayRef;
use prometheus::{Histogram, IntCounter};

use super::prepare::PrepareTask;
use super::{Out, OutKind, Outgoing, RecordRef, RuntimeError, SendFailed};
use crate::formats::{Encoder, JsonEncoder};
use crate::metrics::Metrics;
use crate::sql::QueryPlan;
use crate::types::arrays::rows_to_batch;
use crate::types::arrays::ColumnReader;
use crate::types::Value;

/// Encodes and sends result rows.
pub struct Output {
    topic: String,
    encoder: Arc<Encoder>,
    key_encoder: Option<JsonEncoder>,
    key_columns: Vec<usize>,
    produced: IntCounter,
    /// Commit time minus the event time of emitted rows (a window's end for windowed results).
    latency_event: Histogram,
    /// Commit time minus the Kafka timestamp of input records.
    latency_kafka: Histogram,
    /// Event times (microseconds) of rows emitted in the open cycle.
    pending_event: Vec<i64>,
    /// Kafka timestamps (milliseconds) of records read in the open cycle.
    pending_kafka: Vec<i64>,
    values: Vec<Value>,
    payload: Vec<u8>,
    key: Vec<u8>,
    /// A stage's output goes to the stage above instead of a sink.
    feed: Option<Feed>,
    /// Rows sent now are retractions: tombstones of their keys.
    retracting: bool,
}

/// The output of a stage: its rows, gathered per emit, become the input rows of the stage
/// above (keyed and partitioned by that stage's keys) with the stage's output watermark.
pub struct Feed {
    pub prepare: PrepareTask,
    schema: arrow::datatypes::SchemaRef,
    rows: Vec<Vec<Value>>,
    query: String,
}

impl Output {
    pub fn new(plan: &QueryPlan, metrics: &Metrics) -> Output {
        let columns: Vec<(&str, crate::types::DataType)> = plan.output.iter().map(|c| (c.name.as_str(), c.data_type.clone())).collect();
        let key_columns: Vec<(&str, crate::types::DataType)> = plan.key_columns.iter().map(|&i| columns[i].clone()).collect();
        Output {
            topic: plan.sink_topic.clone(),
            encoder: Arc::new(Encoder::Json(JsonEncoder::new(&columns))),
            key_encoder: (!key_columns.is_empty()).then(|| JsonEncoder::new(&key_columns)),
            key_columns: plan.key_columns.clone(),
            produced: metrics.records_produced.with_label_values(&[&plan.name, &plan.sink_topic]),
            latency_event: metrics.end_to_end_latency.with_label_values(&[&plan.name, "event"]),
            latency_kafka: metrics.end_to_end_latency.with_label_values(&[&plan.name, "kafka"]),
            pending_event: Vec::new(),
            pending_kafka: Vec::new(),
            values: Vec::new(),
            payload: Vec::with_capacity(256),
            key: Vec::with_capacity(64),
            feed: None,
            retracting: false,
        }
    }

    /// Rows sent from now on are retractions (see the module's doc), until set back.
    pub fn set_retracting(&mut self, on: bool) {
        self.retracting = on;
    }

    pub fn retracting(&self) -> bool {
        self.retracting
    }

    /// A stage above, or a topic without keys, has nothing to forget by key.
    fn retraction_goes_nowhere(&self) -> bool {
        self.retracting && (self.feed.is_some() || self.key_encoder.is_none())
    }

    /// Sends this stage's rows to the stage above through `prepare`, instead of to a sink.
    pub fn set_feed(&mut self, plan: &QueryPlan, prepare: PrepareTask) {
        let fields: Vec<arrow::datatypes::Field> =
            plan.output.iter().map(|c| arrow::datatypes::Field::new(c.name.clone(), c.data_type.clone(), true)).collect();
        self.feed =
            Some(Feed { prepare, schema: Arc::new(arrow::datatypes::Schema::new(fields)), rows: Vec::new(), query: plan.name.clone() });
    }

    pub fn feed_mut(&mut self) -> Option<&mut PrepareTask> {
        self.feed.as_mut().map(|f| &mut f.prepare)
    }

    /// Hands the rows gathered since the last call to the stage above.
    pub fn flush_feed(&mut self, now: std::time::Instant, out: &mut dyn Out) -> Result<(), RuntimeError> {
        let Some(feed) = &mut self.feed else { return Ok(()) };
        if feed.rows.is_empty() {
            return Ok(());
        }
        let batch = rows_to_batch(&feed.schema, &feed.rows)
            .map_err(|e| RuntimeError::Setup(format!("query {}: cannot build the rows for the next stage: {e}", feed.query)))?;
        let n = feed.rows.len();
        feed.rows.clear();
        let records: Vec<RecordRef<'_>> =
            (0..n).map(|_| RecordRef { topic: "", partition: 0, offset: -1, key: None, payload: None, timestamp: None }).collect();
        feed.prepare.on_batch(&batch, &records, now, None, None, &feed.query, out)?;
        Ok(())
    }

    /// Notes the event time (microseconds) of an emitted row, observed when its cycle commits.
    pub fn emitted_at(&mut self, event_time: i64) {
        self.pending_event.push(event_time);
    }

    /// Notes the Kafka timestamp (milliseconds) of an input record.
    pub fn read_at(&mut self, kafka_timestamp: Option<i64>) {
        if let Some(ms) = kafka_timestamp {
            self.pending_kafka.push(ms);
        }
    }

    /// The cycle committed at `now_ms`: observe its end-to-end latencies (once per commit).
    pub fn observe_latencies(&mut self, now_ms: i64) {
        let now_us = now_ms.saturating_mul(1000);
        let event = self.latency_event.local();
        for t in self.pending_event.drain(..) {
            event.observe((now_us.saturating_sub(t) as f64 / 1e6).max(0.0));
        }
        event.flush();
        let kafka = self.latency_kafka.local();
        for t in self.pending_kafka.drain(..) {
            kafka.observe((now_ms.saturating_sub(t) as f64 / 1e3).max(0.0));
        }
        kafka.flush();
    }

    /// The cycle aborted: its rows were never committed.
    pub fn forget_latencies(&mut self) {
        self.pending_event.clear();
        self.pending_kafka.clear();
    }

    /// Encodes rows with `encoder` (the sink's format) instead of JSON.
    pub fn set_encoder(&mut self, encoder: Arc<Encoder>) {
        self.encoder = encoder;
    }

    /// Sends rows `rows` of the output columns `columns`; `input_key(i)` is the key of row i's
    /// input record, used when the query has no key columns. Returns how many were sent.
    pub fn send_rows<'k>(
        &mut self,
        columns: &[ArrayRef],
        rows: impl Iterator<Item = usize>,
        input_key: impl Fn(usize) -> Option<&'k [u8]>,
        out: &mut dyn Out,
    ) -> Result<u64, SendFailed> {
        if self.retraction_goes_nowhere() {
            return Ok(0);
        }
        let readers: Vec<ColumnReader> = columns.iter().map(|c| ColumnReader::new(c.as_ref())).collect();
        let key_readers: Vec<ColumnReader> =
            self.key_columns.iter().filter_map(|&c| columns.get(c)).map(|c| ColumnReader::new(c.as_ref())).collect();
        let json = match self.encoder.as_ref() {
            Encoder::Json(j) => Some(j),
            _ => None,
        };
        let mut sent = 0;
        if let Some(feed) = &mut self.feed {
            for i in rows {
                feed.rows.push(readers.iter().map(|r| r.value(i)).collect());
                sent += 1;
            }
            return Ok(sent);
        }
        for i in rows {
            self.payload.clear();
            match json {
                _ if self.retracting => {}
                // JSON straight from the arrays.
                Some(j) => j.encode_cells(&readers, i, &mut self.payload),
                None => {
                    self.values.clear();
                    self.values.extend(readers.iter().map(|r| r.value(i)));
                    self.encoder.encode(&self.values, &mut self.payload);
                }
            }
            let key = match &self.key_encoder {
                Some(enc) => {
                    self.key.clear();
                    enc.encode_cells(&key_readers, i, &mut self.key);
                    Some(&self.key[..])
                }
                None => input_key(i),
            };
            out.send(&Outgoing {
                topic: &self.topic,
                partition: None,
                key,
                payload: (!self.retracting).then_some(&self.payload[..]),
                headers: &[],
                timestamp: None,
                slot: 0,
                kind: OutKind::Sink,
            })?;
            self.produced.inc();
            sent += 1;
        }
        Ok(sent)
    }

    /// Sends one row of output values (the row-at-a-time projection's result).
    pub fn send_values(&mut self, values: &[Value], out: &mut dyn Out) -> Result<(), SendFailed> {
        if self.retraction_goes_nowhere() {
            return Ok(());
        }
        if let Some(feed) = &mut self.feed {
            feed.rows.push(values.to_vec());
            return Ok(());
        }
        self.payload.clear();
        if !self.retracting {
            self.encoder.encode(values, &mut self.payload);
        }
        let key = match &self.key_encoder {
            Some(enc) => {
                self.key.clear();
                enc.encode(self.key_columns.iter().map(|&c| &values[c]), &mut self.key);
                Some(&self.key[..])
            }
            None => None,
        };
        out.send(&Outgoing {
            topic: &self.topic,
            partition: None,
            key,
            payload: (!self.retracting).then_some(&self.payload[..]),
            headers: &[],
            timestamp: None,
            slot: 0,
            kind: OutKind::Sink,
        })?;
        self.produced.inc();
        Ok(())
    }
}
