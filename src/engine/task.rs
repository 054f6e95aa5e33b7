//! A query task: one query on one input partition, owning everything derived from it — the
//! operator's state, the watermark, the output encoder. Tasks never share mutable state.

use std::sync::Arc;
use std::time::Instant;

use prometheus::{Histogram, IntCounter};

use super::emit::{now_millis, watermark_text, Emitter, RecordRef, H_WATERMARK};
use super::EngineError;
use crate::config::OutputMode;
use crate::expr::Expr;
use crate::formats::JsonEncoder;
use crate::kafka::producer::Outgoing;
use crate::metrics::Metrics;
use crate::operators::{ChangeSink, Operator, Processed, WindowAggregate};
use crate::sql::{EventTimeColumn, PlanBody, QueryPlan};
use crate::state::codec::{CodecError, Reader, Writer};
use crate::state::StateTree;
use crate::time::{PartitionWatermark, WatermarkMerger, NO_WATERMARK};
use crate::types::{Row, Value};

/// Key prefix of a task's own entries (its watermark) in its state tree and changelog.
const TASK_META_PREFIX: u8 = 0x02;
const WATERMARK_KEY: &[u8] = &[TASK_META_PREFIX, b'w'];
const META_VERSION: u8 = 1;

enum Body {
    Stateless { projection: Vec<Expr> },
    Aggregate { keys: Vec<Expr>, args: Vec<Option<Expr>>, having: Option<Expr>, projection: Vec<Expr>, op: Box<dyn Operator> },
}

/// Counters of the current commit cycle, for /progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct CycleStats {
    pub input: u64,
    pub output: u64,
    pub late: u64,
    pub updated: u64,
}

/// Where a task sends rows that arrive too late.
#[derive(Clone)]
pub struct LateRoute {
    pub topic: Option<Arc<str>>,
    /// `late` on a late topic; `late` too on a dead-letter topic, which also takes them.
    pub kind: &'static str,
}

/// One query on one partition.
pub struct QueryTask {
    pub partition: i32,
    pub plan: Arc<QueryPlan>,
    body: Body,
    watermark: PartitionWatermark,
    merger: WatermarkMerger,
    fired: i64,
    meta_dirty: bool,
    pub tree: Option<StateTree>,
    /// Delivery-report slot of this task's changelog records.
    pub slot: usize,

    encoder: JsonEncoder,
    key_encoder: Option<JsonEncoder>,
    late: LateRoute,
    rows: Vec<Row>,
    input_row: Vec<Value>,
    pub stats: CycleStats,
    produced: IntCounter,
    late_counter: IntCounter,
    latency: Histogram,
}

impl QueryTask {
    pub fn new(
        partition: i32,
        plan: Arc<QueryPlan>,
        tree: Option<StateTree>,
        slot: usize,
        late: LateRoute,
        metrics: &Metrics,
    ) -> QueryTask {
        let body = match &plan.body {
            PlanBody::Stateless { projection } => Body::Stateless { projection: projection.clone() },
            PlanBody::Aggregate(a) => Body::Aggregate {
                keys: a.keys.clone(),
                args: a.aggregates.iter().map(|c| c.arg.clone()).collect(),
                having: a.having.clone(),
                projection: a.projection.clone(),
                op: Box::new(WindowAggregate::new(a.window, a.keys.len(), &a.aggregates, plan.output_mode)),
            },
        };
        let names: Vec<&str> = plan.output.iter().map(|c| c.name.as_str()).collect();
        let key_names: Vec<&str> = plan.key_columns.iter().map(|&i| names[i]).collect();
        let now = Instant::now();
        QueryTask {
            partition,
            body,
            watermark: PartitionWatermark::new(plan.scan.watermark_delay.unwrap_or(0), plan.scan.idle_timeout, now),
            merger: WatermarkMerger::new(1),
            fired: NO_WATERMARK,
            meta_dirty: false,
            tree,
            slot,

            encoder: JsonEncoder::new(&names),
            key_encoder: (!key_names.is_empty()).then(|| JsonEncoder::new(&key_names)),
            late,
            rows: Vec::new(),
            input_row: Vec::new(),
            stats: CycleStats::default(),
            produced: metrics.records_produced.with_label_values(&[&plan.name, &plan.sink_topic]),
            late_counter: metrics.late_records.with_label_values(&[&plan.name]),
            latency: metrics.end_to_end_latency.with_label_values(&[&plan.name, "event"]),
            plan,
        }
    }

    pub fn is_stateful(&self) -> bool {
        matches!(self.body, Body::Aggregate { .. })
    }

    /// The task's watermark (microseconds), or [`NO_WATERMARK`].
    pub fn watermark(&self) -> i64 {
        self.merger.current()
    }

    pub fn operator_name(&self) -> &'static str {
        match &self.body {
            Body::Stateless { .. } => "project",
            Body::Aggregate { op, .. } => op.name(),
        }
    }

    pub fn state_entries(&self) -> usize {
        match &self.body {
            Body::Aggregate { op, .. } => op.entries(),
            Body::Stateless { .. } => 0,
        }
    }

    pub fn state_bytes(&self) -> usize {
        match &self.body {
            Body::Aggregate { op, .. } => op.state_bytes(),
            Body::Stateless { .. } => 0,
        }
    }

    /// Processes one decoded source row.
    pub fn on_row(&mut self, row: &[Value], rec: &RecordRef<'_>, now: Instant, em: &mut Emitter<'_>) -> Result<(), EngineError> {
        if let Some(f) = &self.plan.scan.filter {
            if !f.test(row) {
                return Ok(());
            }
        }
        self.stats.input += 1;
        let event_time = match self.plan.scan.event_time {
            Some(EventTimeColumn::Column(c)) => match row.get(c) {
                Some(Value::Timestamp(t)) => Some(*t),
                _ => None,
            },
            Some(EventTimeColumn::KafkaTimestamp) => rec.timestamp.map(|ms| ms.saturating_mul(1000)),
            None => None,
        };
        match &mut self.body {
            Body::Stateless { projection } => {
                let out: Vec<Value> = projection.iter().map(|e| e.eval(row)).collect();
                let key_override = if self.key_encoder.is_none() { rec.key } else { None };
                self.send_row(&out, key_override, em)?;
                if let Some(t) = event_time {
                    self.latency.observe(((now_millis() * 1000 - t) as f64 / 1e6).max(0.0));
                }
                Ok(())
            }
            Body::Aggregate { keys, args, op, .. } => {
                let Some(ts) = event_time else {
                    let topic = self.late.topic.clone();
                    if let Some(topic) = topic {
                        em.forward(&topic, rec, "missing_event_time", "the record has no event time", &self.plan.name, None)?;
                    }
                    return Ok(());
                };
                self.input_row.clear();
                self.input_row.push(Value::Timestamp(ts));
                for k in keys.iter() {
                    self.input_row.push(k.eval(row));
                }
                for a in args.iter() {
                    self.input_row.push(a.as_ref().map_or(Value::Null, |e| e.eval(row)));
                }
                let wm = self.merger.current();
                let mut emitted = std::mem::take(&mut self.rows);
                let processed = op.process(0, &self.input_row, wm, &mut emitted);
                self.rows = emitted;
                match processed {
                    Processed::Accepted => self.stats.updated += 1,
                    Processed::Late => {
                        self.stats.late += 1;
                        self.late_counter.inc();
                        if let Some(topic) = self.late.topic.clone() {
                            let wm_text = watermark_text(wm);
                            let why = format!("every window of this record closed: the watermark is {wm_text}");
                            em.forward(&topic, rec, self.late.kind, &why, &self.plan.name, Some((H_WATERMARK, &wm_text)))?;
                        }
                    }
                }
                if self.watermark.observe(ts, now) {
                    let idle = false;
                    self.merger.update(0, self.watermark.watermark(), idle);
                    self.meta_dirty = true;
                }
                Ok(())
            }
        }
    }

    /// Fires what the watermark closed since the last call.
    pub fn advance(&mut self, em: &mut Emitter<'_>) -> Result<(), EngineError> {
        let wm = self.merger.current();
        if wm <= self.fired {
            return Ok(());
        }
        self.fired = wm;
        let mut rows = std::mem::take(&mut self.rows);
        if let Body::Aggregate { op, .. } = &mut self.body {
            op.on_watermark(wm, &mut rows);
        }
        let r = self.emit_results(&mut rows, em);
        self.rows = rows;
        r
    }

    /// End of a commit cycle: update and complete modes emit.
    pub fn on_commit(&mut self, em: &mut Emitter<'_>) -> Result<(), EngineError> {
        if self.plan.output_mode == OutputMode::Append {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.rows);
        if let Body::Aggregate { op, .. } = &mut self.body {
            op.on_commit(&mut rows);
        }
        let r = self.emit_results(&mut rows, em);
        self.rows = rows;
        r
    }

    /// The input is finished (bounded run): the watermark jumps to the end of time.
    pub fn finish(&mut self) {
        self.watermark.finish();
        self.merger.update(0, i64::MAX, false);
        self.meta_dirty = true;
    }

    fn emit_results(&mut self, rows: &mut Vec<Row>, em: &mut Emitter<'_>) -> Result<(), EngineError> {
        let Body::Aggregate { having, projection, .. } = &self.body else { return Ok(()) };
        let now_us = now_millis() * 1000;
        let window_index = match &self.plan.body {
            PlanBody::Aggregate(a) => a.window_index(),
            PlanBody::Stateless { .. } => None,
        };
        let mut outputs: Vec<Vec<Value>> = Vec::with_capacity(rows.len());
        for row in rows.drain(..) {
            if having.as_ref().is_some_and(|h| !h.test(&row)) {
                continue;
            }
            if let Some(Value::Window { end, .. }) = window_index.and_then(|i| row.get(i)) {
                self.latency.observe(((now_us - end) as f64 / 1e6).max(0.0));
            }
            outputs.push(projection.iter().map(|e| e.eval(&row)).collect());
        }
        for values in outputs {
            self.send_row(&values, None, em)?;
        }
        Ok(())
    }

    fn send_row(&mut self, values: &[Value], key_override: Option<&[u8]>, em: &mut Emitter<'_>) -> Result<(), EngineError> {
        let mut payload = Vec::with_capacity(96);
        self.encoder.encode(values, &mut payload);
        let key = match &self.key_encoder {
            Some(enc) => {
                let mut k = Vec::with_capacity(48);
                enc.encode(self.plan.key_columns.iter().map(|&i| &values[i]), &mut k);
                Some(k)
            }
            None => None,
        };
        em.send(&Outgoing {
            topic: &self.plan.sink_topic,
            partition: None,
            key: key.as_deref().or(key_override),
            payload: Some(&payload),
            headers: &[],
            timestamp: None,
            slot: 0,
        })?;
        self.stats.output += 1;
        em.txn.output += 1;
        self.produced.inc();
        Ok(())
    }

    /// Every state entry changed since the last call (operator entries and the watermark).
    pub fn take_changes(&mut self, f: &mut ChangeSink<'_>) {
        let Body::Aggregate { op, .. } = &mut self.body else { return };
        op.take_changes(f);
        if self.meta_dirty {
            self.meta_dirty = false;
            let mut w = Writer::new();
            w.u8(META_VERSION);
            w.i64(self.watermark.max_event_time());
            w.i64(self.merger.current());
            f(WATERMARK_KEY, Some(&w.buf));
        }
    }

    /// Loads one entry from sled or the changelog.
    pub fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
        if key.first() == Some(&TASK_META_PREFIX) {
            if key == WATERMARK_KEY {
                if let Some(v) = value {
                    let mut r = Reader::new(v);
                    let version = r.u8()?;
                    if version != META_VERSION {
                        return Err(CodecError::UnknownVersion(version, META_VERSION));
                    }
                    let max_event_time = r.i64()?;
                    let merged = r.i64()?;
                    self.watermark.restore(max_event_time);
                    self.merger.update(0, self.watermark.watermark(), false);
                    self.merger.restore_current(merged);
                }
            }
            return Ok(());
        }
        match &mut self.body {
            Body::Aggregate { op, .. } => op.restore(key, value),
            Body::Stateless { .. } => Ok(()),
        }
    }

    /// Drops all in-memory state (before reloading it after an abort).
    pub fn clear(&mut self) {
        if let Body::Aggregate { op, .. } = &mut self.body {
            op.clear();
        }
        let now = Instant::now();
        self.watermark = PartitionWatermark::new(self.plan.scan.watermark_delay.unwrap_or(0), self.plan.scan.idle_timeout, now);
        self.merger = WatermarkMerger::new(1);
        self.fired = NO_WATERMARK;
        self.meta_dirty = false;
        self.stats = CycleStats::default();
    }
}
