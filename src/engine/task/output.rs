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
    /// Emit time minus window end (or event time).
    pub latency: Histogram,
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
            latency: metrics.end_to_end_latency.with_label_values(&[&plan.name, "event"]),
        }
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
