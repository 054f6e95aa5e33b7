//! A query's output: result rows encoded in the sink's format (JSON unless set) and sent to
//! the sink topic, keyed by the key columns as JSON (or the input record's key), counted per
//! query.

use prometheus::{Histogram, IntCounter};

use super::super::emit::Emitter;
use super::super::EngineError;
use std::sync::Arc;

use crate::formats::{Encoder, JsonEncoder};
use crate::kafka::producer::Outgoing;
use crate::metrics::Metrics;
use crate::sql::QueryPlan;
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
}

impl Output {
    pub fn new(plan: &QueryPlan, metrics: &Metrics) -> Output {
        let names: Vec<&str> = plan.output.iter().map(|c| c.name.as_str()).collect();
        let key_names: Vec<&str> = plan.key_columns.iter().map(|&i| names[i]).collect();
        Output {
            topic: plan.sink_topic.clone(),
            encoder: Arc::new(Encoder::Json(JsonEncoder::new(&names))),
            key_encoder: (!key_names.is_empty()).then(|| JsonEncoder::new(&key_names)),
            key_columns: plan.key_columns.clone(),
            produced: metrics.records_produced.with_label_values(&[&plan.name, &plan.sink_topic]),
            latency_event: metrics.end_to_end_latency.with_label_values(&[&plan.name, "event"]),
            latency_kafka: metrics.end_to_end_latency.with_label_values(&[&plan.name, "kafka"]),
            pending_event: Vec::new(),
            pending_kafka: Vec::new(),
        }
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

    /// Sends one row; `input_key` is used when the query has no key columns.
    pub fn send(&self, values: &[Value], input_key: Option<&[u8]>, em: &mut Emitter<'_>) -> Result<(), EngineError> {
        let mut payload = Vec::with_capacity(96);
        self.encoder.encode(values, &mut payload);
        let key = self.key_encoder.as_ref().map(|enc| {
            let mut k = Vec::with_capacity(48);
            enc.encode(self.key_columns.iter().map(|&i| &values[i]), &mut k);
            k
        });
        em.send(&Outgoing {
            topic: &self.topic,
            partition: None,
            key: key.as_deref().or(input_key),
            payload: Some(&payload),
            headers: &[],
            timestamp: None,
            slot: 0,
        })?;
        em.txn.output += 1;
        self.produced.inc();
        Ok(())
    }
}
