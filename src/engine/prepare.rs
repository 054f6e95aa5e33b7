//! The first stage of a repartitioned input: for one source partition, filter the rows,
//! compute the operator input row `[event_time, keys..., values...]`, and send it to the
//! repartition topic's partition chosen by the keys — in the same transaction as the input
//! offsets. It tells every downstream partition its watermark (a marker) at each commit, and
//! within a cycle every `MARKER_EVERY` rows when it moved, so that downstream watermarks (and
//! late-data decisions) follow the source closely even when a cycle holds many rows.

use std::sync::Arc;
use std::time::Instant;

use super::emit::{Emitter, RecordRef};
use super::internal::{encode_row, partition_for, Marker, H_MARKER, H_ORIGINAL_KEY, H_ORIGINAL_POSITION, H_ORIGINAL_VALUE};
use super::EngineError;
use crate::expr::Expr;
use crate::kafka::producer::Outgoing;
use crate::sql::{EventTimeColumn, InputPlan};
use crate::time::{PartitionWatermark, NO_WATERMARK};
use crate::types::{encode_key_value, Value};

/// Rows between mid-cycle markers: costs `downstreams / MARKER_EVERY` extra records per row.
const MARKER_EVERY: u32 = 1000;

/// Stage one of one input side on one source partition.
pub struct PrepareTask {
    pub partition: i32,
    upstreams: u32,
    filter: Option<Expr>,
    event_time: Option<EventTimeColumn>,
    keys: Vec<Expr>,
    values: Vec<Expr>,
    topic: Arc<str>,
    downstreams: usize,
    /// Attach the original record, so a downstream late record can be forwarded unchanged.
    carry_original: bool,
    delay: i64,
    idle_timeout: Option<std::time::Duration>,
    watermark: PartitionWatermark,
    /// The marker state last sent, and the one last committed.
    sent: Option<(i64, bool)>,
    committed: Option<(i64, bool)>,
    committed_max: i64,
    row: Vec<Value>,
    key: Vec<u8>,
    value: Vec<u8>,
    pub sent_rows: u64,
    since_marker: u32,
}

impl PrepareTask {
    pub fn new(
        partition: i32,
        upstreams: usize,
        input: &InputPlan,
        topic: Arc<str>,
        downstreams: usize,
        carry_original: bool,
    ) -> PrepareTask {
        let delay = input.scan.watermark_delay.unwrap_or(0);
        PrepareTask {
            partition,
            upstreams: upstreams as u32,
            filter: input.scan.filter.clone(),
            event_time: input.scan.event_time,
            keys: input.keys.clone(),
            values: input.values.clone(),
            topic,
            downstreams: downstreams.max(1),
            carry_original,
            delay,
            idle_timeout: input.scan.idle_timeout,
            watermark: PartitionWatermark::new(delay, input.scan.idle_timeout, Instant::now()),
            sent: None,
            committed: None,
            committed_max: NO_WATERMARK,
            row: Vec::new(),
            key: Vec::new(),
            value: Vec::new(),
            sent_rows: 0,
            since_marker: 0,
        }
    }

    /// One decoded source row. Returns false when the row has no event time.
    pub fn on_row(&mut self, row: &[Value], rec: &RecordRef<'_>, now: Instant, em: &mut Emitter<'_>) -> Result<bool, EngineError> {
        if self.filter.as_ref().is_some_and(|f| !f.test(row)) {
            self.watermark.touch(now);
            return Ok(true);
        }
        let ts = match self.event_time {
            Some(EventTimeColumn::Column(c)) => match row.get(c) {
                Some(Value::Timestamp(t)) => *t,
                _ => return Ok(false),
            },
            Some(EventTimeColumn::KafkaTimestamp) => match rec.timestamp {
                Some(ms) => ms.saturating_mul(1000),
                None => return Ok(false),
            },
            None => return Ok(false),
        };
        self.row.clear();
        self.row.push(Value::Timestamp(ts));
        self.key.clear();
        for k in &self.keys {
            let v = k.eval(row);
            encode_key_value(&v, &mut self.key);
            self.row.push(v);
        }
        self.row.extend(self.values.iter().map(|v| v.eval(row)));
        self.value.clear();
        encode_row(&self.row, &mut self.value);
        let partition = partition_for(&self.key, self.downstreams);
        let position;
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if self.carry_original {
            position = format!("{}/{}/{}", rec.topic, rec.partition, rec.offset);
            headers.push((H_ORIGINAL_POSITION, position.as_bytes()));
            if let Some(v) = rec.payload {
                headers.push((H_ORIGINAL_VALUE, v));
            }
            if let Some(k) = rec.key {
                headers.push((H_ORIGINAL_KEY, k));
            }
        }
        em.send(&Outgoing {
            topic: &self.topic,
            partition: Some(partition),
            key: Some(&self.key),
            payload: Some(&self.value),
            headers: &headers,
            timestamp: rec.timestamp,
            slot: 0,
        })?;
        self.sent_rows += 1;
        self.watermark.observe(ts, now);
        self.since_marker += 1;
        if self.since_marker >= MARKER_EVERY {
            self.send_markers(now, em)?;
        }
        Ok(true)
    }

    /// Sends this partition's watermark to every downstream partition if it changed.
    pub fn send_markers(&mut self, now: Instant, em: &mut Emitter<'_>) -> Result<(), EngineError> {
        self.since_marker = 0;
        let state = (self.watermark.watermark(), self.watermark.is_idle(now));
        if self.sent == Some(state) || (state.0 == NO_WATERMARK && !state.1) {
            return Ok(());
        }
        let marker = Marker { upstream: self.partition as u32, upstreams: self.upstreams, watermark: state.0, idle: state.1 }.encode();
        for p in 0..self.downstreams {
            em.send(&Outgoing {
                topic: &self.topic,
                partition: Some(p as i32),
                key: None,
                payload: None,
                headers: &[(H_MARKER, marker.as_bytes())],
                timestamp: None,
                slot: 0,
            })?;
        }
        self.sent = Some(state);
        Ok(())
    }

    /// The transaction with the last markers committed.
    pub fn committed(&mut self) {
        self.committed = self.sent;
        self.committed_max = self.watermark.max_event_time();
    }

    /// The transaction aborted: forget what it saw, so no marker claims more than what was
    /// committed downstream.
    pub fn aborted(&mut self) {
        self.sent = self.committed;
        self.watermark = PartitionWatermark::new(self.delay, self.idle_timeout, Instant::now());
        self.watermark.restore(self.committed_max);
    }

    /// Bounded runs: the input is finished.
    pub fn finish(&mut self) {
        self.watermark.finish();
    }
}
