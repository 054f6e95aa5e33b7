//! The first stage of a repartitioned input: for one source partition, filter the rows,
//! compute the operator input row `[event_time, keys..., values...]` (over a whole batch),
//! and send it to the repartition topic's partition chosen by the keys — in the same
//! transaction as the input offsets. It tells every downstream partition its watermark (a marker) at each commit, and
//! within a cycle every `MARKER_EVERY` rows when it moved, so that downstream watermarks (and
//! late-data decisions) follow the source closely even when a cycle holds many rows.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;

use super::eval::evaluate;
use super::internal::{partition_for, Marker, H_MARKER, H_ORIGINAL_KEY, H_ORIGINAL_POSITION, H_ORIGINAL_VALUE, ROW_VERSION};
use super::{forward, Out, OutKind, Outgoing, RecordRef, SendFailed};
use crate::expr::Scalar;
use crate::sql::{EventTimeColumn, InputPlan};
use crate::time::{PartitionWatermark, NO_WATERMARK};
use crate::types::arrays::ColumnReader;
use crate::types::{encode_key_value, Value};

/// Rows between mid-cycle markers: costs `downstreams / MARKER_EVERY` extra records per row.
const MARKER_EVERY: u32 = 1000;

/// Stage one of one input side on one source partition.
pub struct PrepareTask {
    pub partition: i32,
    upstreams: u32,
    filter: Option<Scalar>,
    stages: Vec<crate::sql::Stage>,
    event_time: Option<EventTimeColumn>,
    keys: Vec<Scalar>,
    values: Vec<Scalar>,
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
    key: Vec<u8>,
    value: Vec<u8>,
    pub sent_rows: u64,
    since_marker: u32,
    /// A stage's feed: the watermark (and idleness) its markers carry is the stage's output
    /// watermark, set by the task that owns this feed, not derived from the rows' times.
    external: Option<(i64, bool)>,
    external_committed: Option<(i64, bool)>,
    /// What the cycle whose commit is in flight saw (`sent`, `external`, max event time):
    /// committed when that commit succeeds, while the next cycle already runs.
    sealed: Option<Sealed>,
}

type Sealed = (Option<(i64, bool)>, Option<(i64, bool)>, i64);

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
            stages: input.scan.stages.clone(),
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
            key: Vec::new(),
            value: Vec::new(),
            sent_rows: 0,
            since_marker: 0,
            external: None,
            external_committed: None,
            sealed: None,
        }
    }

    /// The feed of stage task `partition` (of `upstreams`) into the input `input` of the stage
    /// above, through `topic` (of `downstreams` partitions).
    pub fn feed(partition: i32, upstreams: usize, input: &InputPlan, topic: Arc<str>, downstreams: usize) -> PrepareTask {
        let mut p = PrepareTask::new(partition, upstreams, input, topic, downstreams, false);
        p.external = Some((NO_WATERMARK, false));
        p.external_committed = p.external;
        p
    }

    /// A feed's output watermark moved (or its idleness changed).
    pub fn set_watermark(&mut self, watermark: i64, idle: bool) {
        if let Some((wm, _)) = self.external {
            self.external = Some((watermark.max(wm), idle));
        }
    }

    /// Decoded source rows (`records[i]` is row i's record). Rows without an event time go
    /// to `no_time` (the late or dead-letter topic) when there is one; rows an expression fails
    /// on go to `dead_letter`. Returns how many rows were sent downstream.
    #[allow(clippy::too_many_arguments)]
    pub fn on_batch(
        &mut self,
        batch: &RecordBatch,
        records: &[RecordRef<'_>],
        now: Instant,
        no_time: Option<&str>,
        dead_letter: Option<&str>,
        query: &str,
        out: &mut dyn Out,
    ) -> Result<u64, SendFailed> {
        let exprs: Vec<Scalar> = self.keys.iter().chain(self.values.iter()).cloned().collect();
        let (ev, failed) = evaluate(batch, self.filter.as_ref(), &self.stages, &exprs);
        for (row, why) in failed {
            if let (Some(topic), Some(rec)) = (dead_letter, records.get(row as usize)) {
                forward(out, topic, rec, "eval_error", &why, query, None)?;
            }
        }
        if ev.rows.len() < batch.num_rows() {
            self.watermark.touch(now);
        }
        let times = match self.event_time {
            Some(EventTimeColumn::Column(c)) => Some(ev.batch.column(c).clone()),
            _ => None,
        };
        // A window column's event time is its end minus 1 µs (Spark's window_time).
        let window_ends = times.as_ref().and_then(|t| crate::types::arrays::window_ends(t.as_ref()));
        let times = window_ends.clone().or(times);
        let shift = i64::from(window_ends.is_some());
        let time_reader = times.as_ref().map(|t| ColumnReader::new(t.as_ref()));
        let readers: Vec<ColumnReader> = ev.arrays.iter().map(|a| ColumnReader::new(a.as_ref())).collect();
        let key_count = self.keys.len();
        let mut sent = 0;
        let mut row: Vec<u8> = Vec::new();
        for (pos, &r) in ev.rows.iter().enumerate() {
            let Some(rec) = records.get(r as usize) else { continue };
            let ts = match self.event_time {
                Some(EventTimeColumn::Column(_)) => time_reader.as_ref().and_then(|t| t.timestamp(pos)).map(|t| t - shift),
                Some(EventTimeColumn::KafkaTimestamp) => rec.timestamp.map(|ms| ms.saturating_mul(1000)),
                None => None,
            };
            // A stage's rows without an event-time column (read by a query that needs none)
            // carry the stage's output watermark.
            let ts = ts.or_else(|| self.external.map(|(wm, _)| wm));
            let Some(ts) = ts else {
                if let Some(topic) = no_time {
                    forward(out, topic, rec, "missing_event_time", "the record has no event time", query, None)?;
                }
                continue;
            };
            // The row is [event_time, keys..., values...]; the keys' encoding is the record key.
            self.key.clear();
            for reader in &readers[..key_count] {
                reader.encode_key(pos, &mut self.key);
            }
            self.value.clear();
            for reader in &readers[key_count..] {
                encode_key_value(&reader.value(pos), &mut self.value);
            }
            row.clear();
            row.push(ROW_VERSION);
            encode_key_value(&Value::Timestamp(ts), &mut row);
            row.extend_from_slice(&self.key);
            row.extend_from_slice(&self.value);
            sent += self.send_row(&row, ts, rec, now, out)?;
        }
        Ok(sent)
    }

    fn send_row(&mut self, row: &[u8], ts: i64, rec: &RecordRef<'_>, now: Instant, out: &mut dyn Out) -> Result<u64, SendFailed> {
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
        out.send(&Outgoing {
            topic: &self.topic,
            partition: Some(partition),
            key: Some(&self.key),
            payload: Some(row),
            headers: &headers,
            timestamp: rec.timestamp,
            slot: 0,
            kind: OutKind::Internal,
        })?;
        self.sent_rows += 1;
        if self.external.is_none() {
            self.watermark.observe(ts, now);
        }
        self.since_marker += 1;
        if self.since_marker >= MARKER_EVERY {
            self.send_markers(now, out)?;
        }
        Ok(1)
    }

    /// Sends this partition's watermark to every downstream partition if it changed.
    pub fn send_markers(&mut self, now: Instant, out: &mut dyn Out) -> Result<(), SendFailed> {
        self.since_marker = 0;
        let state = self.external.unwrap_or_else(|| (self.watermark.watermark(), self.watermark.is_idle(now)));
        if self.sent == Some(state) || (state.0 == NO_WATERMARK && !state.1) {
            return Ok(());
        }
        let marker = Marker { upstream: self.partition as u32, upstreams: self.upstreams, watermark: state.0, idle: state.1 }.encode();
        for p in 0..self.downstreams {
            out.send(&Outgoing {
                topic: &self.topic,
                partition: Some(p as i32),
                key: None,
                payload: None,
                headers: &[(H_MARKER, marker.as_bytes())],
                timestamp: None,
                slot: 0,
                kind: OutKind::Internal,
            })?;
        }
        self.sent = Some(state);
        Ok(())
    }

    /// The cycle ends: its transaction is about to be committed (see [`Self::committed`]).
    pub fn seal(&mut self) {
        self.sealed = Some((self.sent, self.external, self.watermark.max_event_time()));
    }

    /// The transaction of the last sealed cycle committed (or, unsealed, of everything so far).
    pub fn committed(&mut self) {
        let (sent, external, max) = self.sealed.take().unwrap_or((self.sent, self.external, self.watermark.max_event_time()));
        self.committed = sent;
        self.external_committed = external;
        self.committed_max = max;
    }

    /// The transaction aborted: forget what it saw, so no marker claims more than what was
    /// committed downstream.
    pub fn aborted(&mut self) {
        self.sealed = None;
        self.sent = self.committed;
        self.external = self.external_committed;
        self.watermark = PartitionWatermark::new(self.delay, self.idle_timeout, Instant::now());
        self.watermark.restore(self.committed_max);
    }

    /// Bounded runs: the input is finished.
    pub fn finish(&mut self) {
        self.watermark.finish();
    }
}
