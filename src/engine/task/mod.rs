//! A query task: one query on one partition of its operator stage, owning everything derived
//! from it — the operator's state, the watermark clock, the output. Rows come either straight
//! from a source partition (local sides) or from a repartition topic (remote sides, already
//! filtered and keyed upstream). Tasks never share mutable state.

mod clock;
mod output;

use std::sync::Arc;
use std::time::Instant;

use prometheus::IntCounter;

pub use clock::SideSpec;

use self::clock::TaskClock;
use self::output::Output;
use super::emit::{watermark_text, Emitter, RecordRef, H_WATERMARK};
use super::table::TableRuntime;
use super::EngineError;
use crate::config::OutputMode;
use crate::expr::Expr;
use crate::metrics::Metrics;
use crate::operators::dedup::{Dedup, DedupMode};
use crate::operators::join::{IntervalJoin, JoinType};
use crate::operators::session::SessionAggregate;
use crate::operators::{ChangeSink, Operator, Processed, WindowAggregate};
use crate::sql::{DedupRule, EventTimeColumn, JoinKind, PlanBody, QueryPlan, WindowKind};
use crate::state::codec::CodecError;
use crate::state::StateTree;
use crate::types::{encode_key_value, Row, Value};

/// Key of a task's clock in its state tree and changelog.
const CLOCK_KEY: &[u8] = &[0x02, b'w'];

/// What one input side does to a source row before the operator.
struct SideEval {
    filter: Option<Expr>,
    event_time: Option<EventTimeColumn>,
    keys: Vec<Expr>,
    values: Vec<Expr>,
}

/// What happens to operator output before the sink.
enum Post {
    /// Aggregate rows: HAVING, then the projection.
    Aggregate { having: Option<Expr>, projection: Vec<Expr>, window_index: Option<usize> },
    /// Joined rows: the residual condition, then the projection.
    Join { residual: Option<Expr>, projection: Vec<Expr> },
    /// Deduplicated rows are the output as they are.
    Dedup,
}

enum Body {
    Stateless { projection: Vec<Expr> },
    TableJoin { table: usize, stream_keys: Vec<Expr>, left_outer: bool, residual: Option<Expr>, projection: Vec<Expr> },
    Operator { op: Box<dyn Operator>, post: Post },
}

/// Counters of the current commit cycle, for /progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct CycleStats {
    pub input: u64,
    pub output: u64,
    pub late: u64,
    pub updated: u64,
    /// State entries written (inserted or changed) in this cycle's changelog.
    pub state_written: u64,
    /// State entries deleted (tombstoned) in this cycle's changelog.
    pub state_removed: u64,
}

/// Where a side's late records go.
#[derive(Clone)]
pub struct LateRoute {
    pub topic: Option<Arc<str>>,
}

/// Everything a task may touch while processing, besides itself.
pub struct Ctx<'a> {
    pub em: Emitter<'a>,
    pub now: Instant,
    pub tables: &'a [TableRuntime],
}

/// One query on one partition.
pub struct QueryTask {
    pub partition: i32,
    pub plan: Arc<QueryPlan>,
    sides: Vec<SideEval>,
    specs: Vec<SideSpec>,
    body: Body,
    clock: TaskClock,
    fired: i64,
    pub tree: Option<StateTree>,
    /// Delivery-report slot of this task's changelog records.
    pub slot: usize,
    output: Output,
    late: Vec<LateRoute>,
    rows: Vec<Row>,
    input_row: Vec<Value>,
    pub stats: CycleStats,
    late_counter: IntCounter,
}

/// Builds the operator of a stateful plan.
fn operator(plan: &QueryPlan) -> Option<(Box<dyn Operator>, Post)> {
    match &plan.body {
        PlanBody::Stateless { .. } | PlanBody::TableJoin(_) => None,
        PlanBody::Aggregate(a) => {
            let post = Post::Aggregate { having: a.having.clone(), projection: a.projection.clone(), window_index: a.window_index() };
            let op: Box<dyn Operator> = match a.window {
                Some(WindowKind::Session { gap }) => Box::new(SessionAggregate::new(gap, a.key_count(), &a.aggregates, plan.output_mode)),
                Some(WindowKind::Fixed(w)) => Box::new(WindowAggregate::new(Some(w), a.key_count(), &a.aggregates, plan.output_mode)),
                None => Box::new(WindowAggregate::new(None, a.key_count(), &a.aggregates, plan.output_mode)),
            };
            Some((op, post))
        }
        PlanBody::Join(j) => {
            let kind = match j.kind {
                JoinKind::Inner => JoinType::Inner,
                JoinKind::LeftOuter => JoinType::LeftOuter,
                JoinKind::RightOuter => JoinType::RightOuter,
                JoinKind::FullOuter => JoinType::FullOuter,
            };
            let op = IntervalJoin::new(
                kind,
                plan.inputs[0].keys.len(),
                plan.inputs[0].values.len(),
                plan.inputs[1].values.len(),
                j.lower,
                j.upper,
            );
            Some((Box::new(op), Post::Join { residual: j.residual.clone(), projection: j.projection.clone() }))
        }
        PlanBody::Dedup(d) => {
            let mode = match d.rule {
                DedupRule::EventTimeInKey => DedupMode::EventTimeInKey,
                DedupRule::WithinWatermark { delay } => DedupMode::WithinWatermark { delay },
            };
            Some((Box::new(Dedup::new(plan.inputs[0].keys.len(), mode)), Post::Dedup))
        }
    }
}

impl QueryTask {
    /// `specs` says, per side, whether rows come from the source partition or a repartition
    /// topic; `table` is the index of the joined table, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        partition: i32,
        plan: Arc<QueryPlan>,
        specs: Vec<SideSpec>,
        table: Option<usize>,
        tree: Option<StateTree>,
        slot: usize,
        late: Vec<LateRoute>,
        metrics: &Metrics,
    ) -> QueryTask {
        let body = match (&plan.body, operator(&plan)) {
            (_, Some((op, post))) => Body::Operator { op, post },
            (PlanBody::TableJoin(t), None) => Body::TableJoin {
                table: table.unwrap_or(0),
                stream_keys: t.stream_keys.clone(),
                left_outer: t.left_outer,
                residual: t.residual.clone(),
                projection: t.projection.clone(),
            },
            (PlanBody::Stateless { projection }, None) => Body::Stateless { projection: projection.clone() },
            (_, None) => Body::Stateless { projection: Vec::new() },
        };
        let sides = plan
            .inputs
            .iter()
            .map(|i| SideEval {
                filter: i.scan.filter.clone(),
                event_time: i.scan.event_time,
                keys: i.keys.clone(),
                values: i.values.clone(),
            })
            .collect();
        QueryTask {
            partition,
            sides,
            clock: TaskClock::new(&specs, Instant::now()),
            specs,
            body,
            fired: crate::time::NO_WATERMARK,
            tree,
            slot,
            output: Output::new(&plan, metrics),
            late,
            rows: Vec::new(),
            input_row: Vec::new(),
            stats: CycleStats::default(),
            late_counter: metrics.late_records.with_label_values(&[&plan.name]),
            plan,
        }
    }

    /// Encodes output in the sink's format (see `Output::set_encoder`).
    pub fn set_encoder(&mut self, encoder: Arc<crate::formats::Encoder>) {
        self.output.set_encoder(encoder);
    }

    pub fn is_stateful(&self) -> bool {
        matches!(self.body, Body::Operator { .. })
    }

    /// The task's watermark (microseconds), or [`crate::time::NO_WATERMARK`].
    pub fn watermark(&self) -> i64 {
        self.clock.watermark()
    }

    pub fn operator_name(&self) -> &'static str {
        self.plan.operator_name()
    }

    pub fn state_entries(&self) -> usize {
        match &self.body {
            Body::Operator { op, .. } => op.entries(),
            _ => 0,
        }
    }

    /// The cycle committed at `now_ms`: observe the end-to-end latencies of its rows.
    pub fn observe_latencies(&mut self, now_ms: i64) {
        self.output.observe_latencies(now_ms);
    }

    pub fn state_bytes(&self) -> usize {
        match &self.body {
            Body::Operator { op, .. } => op.state_bytes(),
            _ => 0,
        }
    }

    /// A decoded source row for `side`, read by this task itself.
    pub fn on_source_row(&mut self, side: usize, row: &[Value], rec: &RecordRef<'_>, ctx: &mut Ctx<'_>) -> Result<(), EngineError> {
        let Some(eval) = self.sides.get(side) else { return Ok(()) };
        if eval.filter.as_ref().is_some_and(|f| !f.test(row)) {
            return Ok(());
        }
        self.stats.input += 1;
        self.output.read_at(rec.timestamp);
        let event_time = match eval.event_time {
            Some(EventTimeColumn::Column(c)) => match row.get(c) {
                Some(Value::Timestamp(t)) => Some(*t),
                _ => None,
            },
            Some(EventTimeColumn::KafkaTimestamp) => rec.timestamp.map(|ms| ms.saturating_mul(1000)),
            None => None,
        };
        match &self.body {
            Body::Stateless { projection } => {
                let out: Vec<Value> = projection.iter().map(|e| e.eval(row)).collect();
                self.output.send(&out, rec.key, &mut ctx.em)?;
                self.stats.output += 1;
                if let Some(t) = event_time {
                    self.output.emitted_at(t);
                }
                Ok(())
            }
            Body::TableJoin { table, stream_keys, left_outer, residual, projection } => {
                let mut key = Vec::new();
                let mut null_key = false;
                for k in stream_keys {
                    let v = k.eval(row);
                    null_key |= v.is_null();
                    encode_key_value(&v, &mut key);
                }
                let table = &ctx.tables[*table];
                let found = if null_key { None } else { table.lookup(&key) };
                if found.is_none() && !left_outer {
                    return Ok(());
                }
                let mut joined = row.to_vec();
                match found {
                    Some(t) => joined.extend_from_slice(t),
                    None => joined.resize(row.len() + table.width(), Value::Null),
                }
                if residual.as_ref().is_some_and(|r| !r.test(&joined)) {
                    return Ok(());
                }
                let out: Vec<Value> = projection.iter().map(|e| e.eval(&joined)).collect();
                self.output.send(&out, rec.key, &mut ctx.em)?;
                self.stats.output += 1;
                Ok(())
            }
            Body::Operator { .. } => {
                let Some(ts) = event_time else {
                    self.stats.late += 1;
                    self.late_counter.inc();
                    if let Some(topic) = self.late.get(side).and_then(|l| l.topic.clone()) {
                        ctx.em.forward(&topic, rec, "missing_event_time", "the record has no event time", &self.plan.name, None)?;
                    }
                    return Ok(());
                };
                let eval = &self.sides[side];
                self.input_row.clear();
                self.input_row.push(Value::Timestamp(ts));
                self.input_row.extend(eval.keys.iter().map(|k| k.eval(row)));
                self.input_row.extend(eval.values.iter().map(|v| v.eval(row)));
                self.process(side, ts, Some(rec), ctx)?;
                self.clock.observe(side, ts, ctx.now);
                Ok(())
            }
        }
    }

    /// An operator input row for `side` that came through a repartition topic.
    pub fn on_input_row(
        &mut self,
        side: usize,
        row: Vec<Value>,
        original: Option<&RecordRef<'_>>,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), EngineError> {
        let Some(Value::Timestamp(ts)) = row.first() else { return Ok(()) };
        let ts = *ts;
        self.stats.input += 1;
        self.output.read_at(original.and_then(|r| r.timestamp));
        self.input_row = row;
        self.process(side, ts, original, ctx)
    }

    fn process(&mut self, side: usize, ts: i64, rec: Option<&RecordRef<'_>>, ctx: &mut Ctx<'_>) -> Result<(), EngineError> {
        let Body::Operator { op, .. } = &mut self.body else { return Ok(()) };
        let wm = self.clock.watermark();
        let mut rows = std::mem::take(&mut self.rows);
        let processed = op.process(side, &self.input_row, wm, &mut rows);
        match processed {
            Processed::Accepted => self.stats.updated += 1,
            Processed::Late => {
                self.stats.late += 1;
                self.late_counter.inc();
                if let (Some(topic), Some(rec)) = (self.late.get(side).and_then(|l| l.topic.clone()), rec) {
                    let wm_text = watermark_text(wm);
                    let why =
                        format!("the record's event time {} can no longer change a result: the watermark is {wm_text}", watermark_text(ts));
                    ctx.em.forward(&topic, rec, "late", &why, &self.plan.name, Some((H_WATERMARK, &wm_text)))?;
                }
            }
        }
        let r = self.emit_results(&mut rows, ctx);
        self.rows = rows;
        r
    }

    /// A watermark marker from an upstream partition of `side`'s repartition topic.
    pub fn on_marker(&mut self, side: usize, upstream: usize, watermark: i64, idle: bool, now: Instant) {
        self.clock.marker(side, upstream, watermark, idle, now);
    }

    /// Re-evaluates idle inputs.
    pub fn tick(&mut self, now: Instant) {
        self.clock.tick(now);
    }

    /// Fires what the watermark closed since the last call.
    pub fn advance(&mut self, ctx: &mut Ctx<'_>) -> Result<(), EngineError> {
        let wm = self.clock.watermark();
        if wm <= self.fired {
            return Ok(());
        }
        self.fired = wm;
        let mut rows = std::mem::take(&mut self.rows);
        if let Body::Operator { op, .. } = &mut self.body {
            op.on_watermark(wm, &mut rows);
        }
        let r = self.emit_results(&mut rows, ctx);
        self.rows = rows;
        r
    }

    /// End of a commit cycle: update and complete modes emit.
    pub fn on_commit(&mut self, ctx: &mut Ctx<'_>) -> Result<(), EngineError> {
        if self.plan.output_mode == OutputMode::Append {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.rows);
        if let Body::Operator { op, .. } = &mut self.body {
            op.on_commit(&mut rows);
        }
        let r = self.emit_results(&mut rows, ctx);
        self.rows = rows;
        r
    }

    /// Bounded runs: the local inputs are finished (remote ones learn it from markers).
    pub fn finish(&mut self, now: Instant) {
        self.clock.finish_local(now);
    }

    fn emit_results(&mut self, rows: &mut Vec<Row>, ctx: &mut Ctx<'_>) -> Result<(), EngineError> {
        if rows.is_empty() {
            return Ok(());
        }
        let Body::Operator { post, .. } = &self.body else { return Ok(()) };
        // Each row is projected into one reused vector and sent at once.
        let mut values: Vec<Value> = Vec::new();
        for row in rows.drain(..) {
            let out: &[Value] = match post {
                Post::Aggregate { having, projection, window_index } => {
                    if having.as_ref().is_some_and(|h| !h.test(&row)) {
                        continue;
                    }
                    if let Some(Value::Window { end, .. }) = window_index.and_then(|i| row.get(i)) {
                        self.output.emitted_at(*end);
                    }
                    values.clear();
                    values.extend(projection.iter().map(|e| e.eval(&row)));
                    &values
                }
                Post::Join { residual, projection } => {
                    if residual.as_ref().is_some_and(|r| !r.test(&row)) {
                        continue;
                    }
                    values.clear();
                    values.extend(projection.iter().map(|e| e.eval(&row)));
                    &values
                }
                Post::Dedup => &row,
            };
            self.output.send(out, None, &mut ctx.em)?;
            self.stats.output += 1;
        }
        Ok(())
    }

    /// Every state entry changed since the last call (operator entries and the clock).
    pub fn take_changes(&mut self, f: &mut ChangeSink<'_>) {
        let Body::Operator { op, .. } = &mut self.body else { return };
        let stats = &mut self.stats;
        op.take_changes(&mut |k, v| {
            if v.is_some() {
                stats.state_written += 1;
            } else {
                stats.state_removed += 1;
            }
            f(k, v)
        });
        if self.clock.take_dirty() {
            f(CLOCK_KEY, Some(&self.clock.encode()));
        }
    }

    /// Loads one entry from sled or the changelog.
    pub fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
        if key == CLOCK_KEY {
            if let Some(v) = value {
                self.clock.restore(v, Instant::now())?;
            }
            return Ok(());
        }
        match &mut self.body {
            Body::Operator { op, .. } => op.restore(key, value),
            _ => Ok(()),
        }
    }

    /// Drops all in-memory state (before reloading it after an abort).
    pub fn clear(&mut self) {
        if let Body::Operator { op, .. } = &mut self.body {
            op.clear();
        }
        self.clock = TaskClock::new(&self.specs, Instant::now());
        self.fired = crate::time::NO_WATERMARK;
        self.stats = CycleStats::default();
        self.output.forget_latencies();
    }
}
