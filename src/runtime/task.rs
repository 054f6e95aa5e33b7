//! A query task: one query on one partition of its operator stage, owning everything derived
//! from it — the operator's state, the watermark clock, the output. Rows come either as Arrow
//! batches straight from a source partition (local sides) or as operator input rows from a
//! repartition topic (remote sides, already filtered and keyed upstream). Tasks never share
//! mutable state.
//!
//! A batch is filtered, keyed and projected with DataFusion's expressions; the operator sees
//! one row at a time with the watermark as of that row (so late-data decisions do not depend
//! on how records were batched); its results are gathered and post-processed (HAVING, the
//! projection) as a batch when the batch, a watermark advance or the commit cycle ends.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use prometheus::IntCounter;

use super::clock::{SideSpec, TaskClock};
use super::eval::{evaluate, take};
use super::output::Output;
use super::rowexpr::RowExpr;
use super::top::{aggregate_output, Top, TOP_PREFIX};
use super::{forward, watermark_text, Out, RecordRef, RuntimeError, SendFailed, Tables, H_WATERMARK};
use crate::config::OutputMode;
use crate::expr::{true_rows, Scalar};
use crate::metrics::{Metrics, TaskSeries};
use crate::operators::dedup::{Dedup, DedupMode};
use crate::operators::join::{IntervalJoin, JoinType};
use crate::operators::session::SessionAggregate;
use crate::operators::topn::TopN;
use crate::operators::{ChangeSink, Operator, Processed, WindowAggregate};
use crate::sql::{DedupRule, EventTimeColumn, JoinKind, PlanBody, QueryPlan, WindowKind};
use crate::state::codec::CodecError;
use crate::state::StateTree;
use crate::types::arrays::{rows_to_batch, values_to_array, ColumnReader};
use crate::types::{DataType, Row, Value};

/// Key of a task's clock in its state tree and changelog.
const CLOCK_KEY: &[u8] = &[0x02, b'w'];

/// What one input side does to a source batch before the operator.
struct SideEval {
    filter: Option<Scalar>,
    stages: Vec<crate::sql::Stage>,
    event_time: Option<EventTimeColumn>,
    /// Keys, then values.
    exprs: Vec<Scalar>,
    key_count: usize,
}

/// What happens to operator output before the sink.
enum Post {
    /// Result rows `[keys..., window?, results...]` become aggregate rows (`row_map`), then
    /// HAVING and the projection.
    Aggregate {
        having: Option<Scalar>,
        projection: Vec<Scalar>,
        row_schema: SchemaRef,
        row_map: Vec<usize>,
        window_index: Option<usize>,
        /// The projection over result rows as they are, when it is that simple and there is no HAVING.
        fast: Option<Vec<RowExpr>>,
    },
    /// Joined rows: the residual condition, then the projection.
    Join { residual: Option<Scalar>, projection: Vec<Scalar>, row_schema: SchemaRef, fast: Option<Vec<RowExpr>> },
    /// Deduplicated rows are the output as they are.
    Dedup,
    /// Ranked rows `[columns..., rank]`: each select list above the ranking, the condition on
    /// the rank, then the projection.
    TopN { row_schema: SchemaRef, layers: Vec<(Vec<Scalar>, SchemaRef)>, filter: Option<Scalar>, projection: Vec<Scalar> },
}

enum Body {
    Stateless {
        projection: Vec<Scalar>,
    },
    TableJoin {
        table: usize,
        stream_keys: Vec<Scalar>,
        left_outer: bool,
        residual: Option<Scalar>,
        projection: Vec<Scalar>,
        row_schema: SchemaRef,
        table_types: Vec<DataType>,
    },
    Operator {
        op: Box<dyn Operator>,
        post: Post,
    },
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
    /// Rows an expression failed on (sent to the dead-letter topic).
    pub failed: u64,
}

/// Where a side's late records (and rows an expression fails on) go.
#[derive(Clone, Default)]
pub struct LateRoute {
    pub topic: Option<Arc<str>>,
    pub dead_letter: Option<Arc<str>>,
}

/// Everything a task may touch while processing, besides itself.
pub struct Ctx<'a> {
    pub out: &'a mut dyn Out,
    pub now: Instant,
    pub tables: &'a dyn Tables,
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
    /// Operator results not yet post-processed.
    rows: Vec<Row>,
    input_row: Vec<Value>,
    key: Vec<u8>,
    pub stats: CycleStats,
    late_counter: IntCounter,
    /// This task's own series (watermark, state size), removed when the task goes.
    series: TaskSeries,
    /// `ORDER BY ... LIMIT n`: the rows this task has written.
    top: Option<Top>,
}

/// The operator of a query plan (none for stateless plans), as tasks build it.
pub fn build_operator(plan: &QueryPlan) -> Option<Box<dyn Operator>> {
    operator(plan).map(|(op, _)| op)
}

/// Builds the operator of a stateful plan.
fn operator(plan: &QueryPlan) -> Option<(Box<dyn Operator>, Post)> {
    match &plan.body {
        PlanBody::Stateless { .. } | PlanBody::TableJoin(_) => None,
        PlanBody::Aggregate(a) => {
            let fast = if a.having.is_some() { None } else { RowExpr::all(&a.projection, &a.row_schema, &|i| a.row_map.get(i).copied()) };
            let post = Post::Aggregate {
                having: a.having.clone(),
                projection: a.projection.clone(),
                row_schema: a.row_schema.clone(),
                row_map: a.row_map.clone(),
                window_index: a.window_index(),
                fast,
            };
            let op: Box<dyn Operator> = match a.window {
                Some(WindowKind::Session { gap }) => Box::new(SessionAggregate::new(gap, a.key_count(), &a.aggregates, plan.output_mode)),
                Some(WindowKind::Fixed(w)) => {
                    Box::new(WindowAggregate::new(Some(w), a.key_count(), &a.aggregates, plan.output_mode).with_retention(a.retention))
                }
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
            Some((
                Box::new(op),
                Post::Join {
                    residual: j.residual.clone(),
                    projection: j.projection.clone(),
                    row_schema: j.row_schema.clone(),
                    fast: if j.residual.is_some() { None } else { RowExpr::all(&j.projection, &j.row_schema, &Some) },
                },
            ))
        }
        PlanBody::Dedup(d) => {
            let mode = match d.rule {
                DedupRule::EventTimeInKey => DedupMode::EventTimeInKey,
                DedupRule::WithinWatermark { delay } => DedupMode::WithinWatermark { delay },
            };
            Some((Box::new(Dedup::new(plan.inputs[0].keys.len(), mode)), Post::Dedup))
        }
        PlanBody::TopN(t) => {
            let op = TopN::new(plan.inputs[0].keys.len(), t.order.clone(), t.ranking, t.limit, t.window_key);
            let post = Post::TopN {
                row_schema: t.row_schema.clone(),
                layers: t.layers.clone(),
                filter: t.filter.clone(),
                projection: t.projection.clone(),
            };
            Some((Box::new(op), post))
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
                row_schema: t.row_schema.clone(),
                table_types: t.table.schema.fields.iter().map(|f| f.data_type.clone()).collect(),
            },
            (PlanBody::Stateless { projection }, None) => Body::Stateless { projection: projection.clone() },
            (_, None) => Body::Stateless { projection: Vec::new() },
        };
        let sides = plan
            .inputs
            .iter()
            .map(|i| SideEval {
                filter: i.scan.filter.clone(),
                stages: i.scan.stages.clone(),
                event_time: i.scan.event_time,
                exprs: i.keys.iter().chain(i.values.iter()).cloned().collect(),
                key_count: i.keys.len(),
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
            key: Vec::new(),
            stats: CycleStats::default(),
            late_counter: metrics.late_records.with_label_values(&[&plan.name]),
            series: TaskSeries::new(metrics, &plan.name, plan.is_stateful().then(|| plan.operator_name()), partition),
            top: plan.top.clone().map(|t| Top::new(t, plan.key_columns.clone())),
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

    /// The cycle committed at `now_ms`: observe the end-to-end latencies of its rows, and
    /// publish the task's watermark and state size.
    pub fn publish_metrics(&mut self, now_ms: i64) {
        self.output.observe_latencies(now_ms);
        let wm = self.watermark();
        let wm = (wm != crate::time::NO_WATERMARK && wm != i64::MAX).then_some(wm);
        let (entries, bytes) = if self.is_stateful() { (self.state_entries(), self.state_bytes()) } else { (0, 0) };
        self.series.publish(wm, now_ms as f64 / 1000.0, entries, bytes);
    }

    pub fn state_bytes(&self) -> usize {
        match &self.body {
            Body::Operator { op, .. } => op.state_bytes(),
            _ => 0,
        }
    }

    fn dead_letter(&mut self, side: usize, rec: &RecordRef<'_>, why: &str, ctx: &mut Ctx<'_>) -> Result<(), SendFailed> {
        self.stats.failed += 1;
        if let Some(topic) = self.late.get(side).and_then(|l| l.dead_letter.clone()) {
            forward(ctx.out, &topic, rec, "eval_error", why, &self.plan.name, None)?;
        }
        Ok(())
    }

    /// Decoded source rows for `side`, read by this task itself: `records[i]` is batch row i's
    /// record.
    pub fn on_batch(&mut self, side: usize, batch: &RecordBatch, records: &[RecordRef<'_>], ctx: &mut Ctx<'_>) -> Result<(), RuntimeError> {
        let Some(eval) = self.sides.get(side) else { return Ok(()) };
        let exprs: &[Scalar] = match &self.body {
            Body::Stateless { projection } => projection,
            Body::TableJoin { stream_keys, .. } => stream_keys,
            Body::Operator { .. } => &eval.exprs,
        };
        let (ev, failed) = evaluate(batch, eval.filter.as_ref(), &eval.stages, exprs);
        let event_time = eval.event_time;
        let key_count = eval.key_count;
        for (row, why) in failed {
            if let Some(rec) = records.get(row as usize) {
                self.dead_letter(side, rec, &why, ctx)?;
            }
        }
        let times = match event_time {
            Some(EventTimeColumn::Column(c)) => Some(ev.batch.column(c).clone()),
            _ => None,
        };
        let time_reader = times.as_ref().map(|t| ColumnReader::new(t.as_ref()));
        let event_time_of = |pos: usize, rec: &RecordRef<'_>| -> Option<i64> {
            match event_time {
                Some(EventTimeColumn::Column(_)) => time_reader.as_ref().and_then(|r| r.timestamp(pos)),
                Some(EventTimeColumn::KafkaTimestamp) => rec.timestamp.map(|ms| ms.saturating_mul(1000)),
                None => None,
            }
        };
        let n = ev.rows.len();
        self.stats.input += n as u64;
        for &r in &ev.rows {
            if let Some(rec) = records.get(r as usize) {
                self.output.read_at(rec.timestamp);
            }
        }
        let record = |pos: usize| records.get(ev.rows[pos] as usize);
        match &mut self.body {
            Body::Stateless { .. } => {
                let sent = self.output.send_rows(&ev.arrays, 0..n, |pos| record(pos).and_then(|r| r.key), ctx.out)?;
                self.stats.output += sent;
                let feeds = self.output.feed_mut().is_some();
                for pos in 0..n {
                    if let Some(t) = record(pos).and_then(|rec| event_time_of(pos, rec)) {
                        self.output.emitted_at(t);
                        if feeds {
                            // A stateless stage (an input of UNION ALL) passes its watermark on.
                            self.clock.observe(side, t, ctx.now);
                        }
                    }
                }
                self.output.flush_feed(ctx.now, ctx.out)
            }
            Body::TableJoin { table, left_outer, residual, projection, row_schema, table_types, .. } => {
                let readers: Vec<ColumnReader> = ev.arrays.iter().map(|a| ColumnReader::new(a.as_ref())).collect();
                let mut key = Vec::new();
                let mut matched: Vec<u32> = Vec::new();
                let mut found: Vec<Option<&[Value]>> = Vec::new();
                for pos in 0..n {
                    key.clear();
                    let mut null_key = false;
                    for r in &readers {
                        null_key |= r.is_null(pos);
                        r.encode_key(pos, &mut key);
                    }
                    let hit = if null_key { None } else { ctx.tables.lookup(*table, &key) };
                    if hit.is_some() || *left_outer {
                        matched.push(pos as u32);
                        found.push(hit);
                    }
                }
                if matched.is_empty() {
                    return Ok(());
                }
                let stream = take(&ev.batch, &matched);
                let mut columns: Vec<ArrayRef> = stream.columns().to_vec();
                for (c, t) in table_types.iter().enumerate() {
                    let cells: Vec<&Value> = found.iter().map(|f| f.and_then(|row| row.get(c)).unwrap_or(&Value::Null)).collect();
                    columns.push(values_to_array(cells.into_iter(), t).map_err(|e| RuntimeError::Setup(format!("table join: {e}")))?);
                }
                let joined =
                    RecordBatch::try_new(row_schema.clone(), columns).map_err(|e| RuntimeError::Setup(format!("table join: {e}")))?;
                let keys: Vec<Option<&[u8]>> = matched.iter().map(|&p| record(p as usize).and_then(|r| r.key)).collect();
                let sent =
                    post_process(&mut self.output, &joined, residual.as_ref(), projection, |i| keys.get(i).copied().flatten(), ctx.out)?;
                self.stats.output += sent;
                Ok(())
            }
            Body::Operator { .. } => {
                let readers: Vec<ColumnReader> = ev.arrays.iter().map(|a| ColumnReader::new(a.as_ref())).collect();
                let (key_readers, value_readers) = readers.split_at(key_count.min(readers.len()));
                let mut key = std::mem::take(&mut self.key);
                let mut values = std::mem::take(&mut self.input_row);
                for pos in 0..n {
                    let Some(rec) = record(pos) else { continue };
                    let Some(ts) = event_time_of(pos, rec) else {
                        self.stats.late += 1;
                        self.late_counter.inc();
                        if let Some(topic) = self.late.get(side).and_then(|l| l.topic.clone()) {
                            forward(ctx.out, &topic, rec, "missing_event_time", "the record has no event time", &self.plan.name, None)?;
                        }
                        continue;
                    };
                    key.clear();
                    for r in key_readers {
                        r.encode_key(pos, &mut key);
                    }
                    values.clear();
                    values.extend(value_readers.iter().map(|r| r.value(pos)));
                    let wm = self.clock.watermark();
                    let processed = match &mut self.body {
                        Body::Operator { op, .. } => op.process_keyed(side, ts, &key, &values, wm, &mut self.rows),
                        _ => Processed::Accepted,
                    };
                    self.processed(processed, side, ts, wm, Some(rec), ctx)?;
                    self.clock.observe(side, ts, ctx.now);
                }
                self.key = key;
                self.input_row = values;
                self.flush(ctx)
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
    ) -> Result<(), RuntimeError> {
        let Some(Value::Timestamp(ts)) = row.first() else { return Ok(()) };
        let ts = *ts;
        self.stats.input += 1;
        self.output.read_at(original.and_then(|r| r.timestamp));
        self.input_row = row;
        self.process(side, ts, original, ctx)?;
        Ok(())
    }

    fn process(&mut self, side: usize, ts: i64, rec: Option<&RecordRef<'_>>, ctx: &mut Ctx<'_>) -> Result<(), SendFailed> {
        if let Body::Stateless { .. } = self.body {
            // A stateless query over a stage: the row's values are its input columns, projected
            // when the batch of rows is flushed.
            self.rows.push(self.input_row.get(1..).unwrap_or_default().to_vec());
            self.clock.observe(side, ts, ctx.now);
            return Ok(());
        }
        let Body::Operator { op, .. } = &mut self.body else { return Ok(()) };
        let wm = self.clock.watermark();
        let processed = op.process(side, &self.input_row, wm, &mut self.rows);
        self.processed(processed, side, ts, wm, rec, ctx)
    }

    /// Counts an operator's verdict on a row and forwards a late record.
    fn processed(
        &mut self,
        processed: Processed,
        side: usize,
        ts: i64,
        wm: i64,
        rec: Option<&RecordRef<'_>>,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), SendFailed> {
        match processed {
            Processed::Accepted => self.stats.updated += 1,
            Processed::Late => {
                self.stats.late += 1;
                self.late_counter.inc();
                if let (Some(topic), Some(rec)) = (self.late.get(side).and_then(|l| l.topic.clone()), rec) {
                    let wm_text = watermark_text(wm);
                    let why =
                        format!("the record's event time {} can no longer change a result: the watermark is {wm_text}", watermark_text(ts));
                    forward(ctx.out, &topic, rec, "late", &why, &self.plan.name, Some((H_WATERMARK, &wm_text)))?;
                }
            }
        }
        Ok(())
    }

    /// A watermark marker from an upstream partition of `side`'s repartition topic.
    pub fn on_marker(&mut self, side: usize, upstream: usize, watermark: i64, idle: bool, now: Instant) {
        self.clock.marker(side, upstream, watermark, idle, now);
    }

    /// Re-evaluates idle inputs.
    pub fn tick(&mut self, now: Instant) {
        self.clock.tick(now);
    }

    /// Emits what the operator produced since the last flush.
    pub fn flush(&mut self, ctx: &mut Ctx<'_>) -> Result<(), RuntimeError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let r = self.emit_results(&rows, ctx);
        let mut rows = rows;
        rows.clear();
        self.rows = rows;
        r
    }

    /// Fires what the watermark closed since the last call.
    pub fn advance(&mut self, ctx: &mut Ctx<'_>) -> Result<(), RuntimeError> {
        self.flush(ctx)?;
        let wm = self.clock.watermark();
        if wm <= self.fired {
            return Ok(());
        }
        self.fired = wm;
        if let Body::Operator { op, .. } = &mut self.body {
            op.on_watermark(wm, &mut self.rows);
        }
        self.flush(ctx)?;
        self.retract(ctx)?;
        // A stage tells the stage above how far its output is final.
        let idle = self.clock.all_idle();
        let out_wm = match &self.body {
            Body::Operator { op, .. } => op.output_watermark(wm),
            _ => wm,
        };
        if let Some(feed) = self.output.feed_mut() {
            feed.set_watermark(out_wm, idle);
        }
        Ok(())
    }

    /// Sends this stage's output to the stage above through `feed` instead of to a sink.
    pub fn set_feed(&mut self, feed: super::prepare::PrepareTask) {
        self.output.set_feed(&self.plan, feed);
    }

    /// The cycle committed.
    /// The cycle ends; its commit follows (see `PrepareTask::seal`).
    pub fn seal(&mut self) {
        if let Some(feed) = self.output.feed_mut() {
            feed.seal();
        }
    }

    pub fn committed(&mut self) {
        if let Some(feed) = self.output.feed_mut() {
            feed.committed();
        }
    }

    /// End of a commit cycle: update and complete modes emit.
    pub fn on_commit(&mut self, ctx: &mut Ctx<'_>) -> Result<(), RuntimeError> {
        self.flush(ctx)?;
        if self.top.is_some() {
            self.emit_top(ctx)?;
        } else if self.plan.output_mode != OutputMode::Append {
            if let Body::Operator { op, .. } = &mut self.body {
                op.on_commit(&mut self.rows);
            }
            self.flush(ctx)?;
            self.retract(ctx)?;
        }
        if let Some(feed) = self.output.feed_mut() {
            feed.send_markers(ctx.now, ctx.out)?;
        }
        Ok(())
    }

    /// `ORDER BY ... LIMIT n` (complete mode): when the table changed, rank it and write what
    /// changed in its first n rows, with a tombstone for each row that left them.
    fn emit_top(&mut self, ctx: &mut Ctx<'_>) -> Result<(), RuntimeError> {
        let (Body::Operator { op, .. }, Some(top)) = (&mut self.body, &mut self.top) else { return Ok(()) };
        let mut table = Vec::new();
        op.on_commit(&mut table);
        let mut gone = Vec::new();
        op.take_retractions(&mut gone);
        if table.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let name = &self.plan.name;
        let batch = aggregate_output(&self.plan, &table).map_err(|e| RuntimeError::Setup(format!("query {name}: {e}")))?;
        let ranked = top.rank(&batch).map_err(|e| RuntimeError::Setup(format!("query {name}: {e}")))?;
        let (write, left) = top.diff(ranked);
        for r in &write {
            self.output.send_values(r, ctx.out)?;
        }
        self.output.set_retracting(true);
        let sent = left.iter().try_for_each(|r| self.output.send_values(r, ctx.out));
        self.output.set_retracting(false);
        sent?;
        self.stats.output += (write.len() + left.len()) as u64;
        self.output.flush_feed(ctx.now, ctx.out)
    }

    /// Writes a tombstone for the key of each row that left the result table.
    fn retract(&mut self, ctx: &mut Ctx<'_>) -> Result<(), RuntimeError> {
        let Body::Operator { op, .. } = &mut self.body else { return Ok(()) };
        let mut rows = Vec::new();
        op.take_retractions(&mut rows);
        if rows.is_empty() {
            return Ok(());
        }
        self.output.set_retracting(true);
        let r = self.emit_results(&rows, ctx);
        self.output.set_retracting(false);
        r
    }

    /// Bounded runs: the local inputs are finished (remote ones learn it from markers).
    pub fn finish(&mut self, now: Instant) {
        self.clock.finish_local(now);
    }

    fn emit_results(&mut self, rows: &[Row], ctx: &mut Ctx<'_>) -> Result<(), RuntimeError> {
        if let Body::Stateless { projection } = &self.body {
            let Some(input) = self.plan.inputs.first() else { return Ok(()) };
            let fields: Vec<arrow::datatypes::Field> =
                input.values.iter().map(|v| arrow::datatypes::Field::new(v.text.clone(), v.data_type.clone(), true)).collect();
            let schema = Arc::new(arrow::datatypes::Schema::new(fields));
            let batch = rows_to_batch(&schema, rows)
                .map_err(|e| RuntimeError::Setup(format!("query {}: cannot build rows: {e}", self.plan.name)))?;
            let sent = post_process(&mut self.output, &batch, None, projection, |_| None, ctx.out)?;
            self.stats.output += sent;
            return self.output.flush_feed(ctx.now, ctx.out);
        }
        let Body::Operator { post, .. } = &self.body else { return Ok(()) };
        let setup = |e: arrow::error::ArrowError| RuntimeError::Setup(format!("query {}: cannot build result rows: {e}", self.plan.name));
        let sent = match post {
            Post::Aggregate { fast: Some(fast), window_index, .. } => {
                let mut values = Vec::with_capacity(fast.len());
                let window_index = window_index.filter(|_| !self.output.retracting());
                for r in rows {
                    if let Some(Value::Window { end, .. }) = window_index.and_then(|w| r.get(w)) {
                        self.output.emitted_at(*end);
                    }
                    values.clear();
                    values.extend(fast.iter().map(|e| e.eval(r)));
                    self.output.send_values(&values, ctx.out)?;
                }
                rows.len() as u64
            }
            Post::Join { fast: Some(fast), .. } => {
                let mut values = Vec::with_capacity(fast.len());
                for r in rows {
                    values.clear();
                    values.extend(fast.iter().map(|e| e.eval(r)));
                    self.output.send_values(&values, ctx.out)?;
                }
                rows.len() as u64
            }
            Post::Dedup => {
                for r in rows {
                    self.output.send_values(r, ctx.out)?;
                }
                rows.len() as u64
            }
            Post::Aggregate { having, projection, row_schema, row_map, window_index, .. } => {
                let agg_rows: Vec<Row> =
                    rows.iter().map(|r| row_map.iter().map(|&i| r.get(i).cloned().unwrap_or_default()).collect()).collect();
                let batch = rows_to_batch(row_schema, &agg_rows).map_err(setup)?;
                // A row leaving the table gets its tombstone whether or not it passed HAVING.
                let kept = match having.as_ref().filter(|_| !self.output.retracting()) {
                    None => (0..rows.len() as u32).collect(),
                    Some(h) => true_rows(h.eval(&batch).map_err(|e| RuntimeError::Setup(format!("HAVING: {e}")))?.as_ref()),
                };
                if let Some(w) = (*window_index).filter(|_| !self.output.retracting()) {
                    for &i in &kept {
                        if let Some(Value::Window { end, .. }) = rows.get(i as usize).and_then(|r| r.get(w)) {
                            self.output.emitted_at(*end);
                        }
                    }
                }
                let batch = take(&batch, &kept);
                post_process(&mut self.output, &batch, None, projection, |_| None, ctx.out)?
            }
            Post::Join { residual, projection, row_schema, .. } => {
                let batch = rows_to_batch(row_schema, rows).map_err(setup)?;
                post_process(&mut self.output, &batch, residual.as_ref(), projection, |_| None, ctx.out)?
            }
            Post::TopN { row_schema, layers, filter, projection } => {
                let mut batch = rows_to_batch(row_schema, rows).map_err(setup)?;
                for (exprs, schema) in layers {
                    batch =
                        project_batch(&batch, exprs, schema).map_err(|e| RuntimeError::Setup(format!("query {}: {e}", self.plan.name)))?;
                }
                post_process(&mut self.output, &batch, filter.as_ref(), projection, |_| None, ctx.out)?
            }
        };
        self.stats.output += sent;
        self.output.flush_feed(ctx.now, ctx.out)
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
        if let Some(top) = &mut self.top {
            top.take_changes(f);
        }
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
        if let (Some(top), Some(&TOP_PREFIX)) = (&mut self.top, key.first()) {
            return top.restore(key, value);
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
        if let Some(top) = &mut self.top {
            top.clear();
        }
        self.rows.clear();
        self.clock = TaskClock::new(&self.specs, Instant::now());
        self.fired = crate::time::NO_WATERMARK;
        self.stats = CycleStats::default();
        self.output.forget_latencies();
        if let Some(feed) = self.output.feed_mut() {
            feed.aborted();
        }
    }
}

/// `exprs` over `batch`, as a batch of `schema`'s column names (every column nullable: an
/// expression's nullability is not the schema's business here).
fn project_batch(batch: &RecordBatch, exprs: &[Scalar], schema: &SchemaRef) -> Result<RecordBatch, String> {
    let arrays: Vec<ArrayRef> = exprs.iter().map(|e| e.eval(batch)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let fields: Vec<arrow::datatypes::Field> =
        schema.fields().iter().zip(&arrays).map(|(f, a)| arrow::datatypes::Field::new(f.name(), a.data_type().clone(), true)).collect();
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(arrow::datatypes::Schema::new(fields)), arrays, &options).map_err(|e| e.to_string())
}

/// The rows of `batch` that pass `residual`, projected and sent; how many were.
fn post_process<'k>(
    output: &mut Output,
    batch: &RecordBatch,
    residual: Option<&Scalar>,
    projection: &[Scalar],
    input_key: impl Fn(usize) -> Option<&'k [u8]>,
    out: &mut dyn Out,
) -> Result<u64, RuntimeError> {
    let eval_error = |e: crate::expr::EvalError| RuntimeError::Setup(format!("the query's projection failed: {e}"));
    let (batch, keep): (RecordBatch, Vec<u32>) = match residual {
        None => (batch.clone(), (0..batch.num_rows() as u32).collect()),
        Some(r) => {
            let keep = true_rows(r.eval(batch).map_err(eval_error)?.as_ref());
            (take(batch, &keep), keep)
        }
    };
    let arrays: Vec<ArrayRef> = projection.iter().map(|e| e.eval(&batch)).collect::<Result<_, _>>().map_err(eval_error)?;
    let n = arrays.first().map_or(batch.num_rows(), |a| a.len());
    Ok(output.send_rows(&arrays, 0..n, |i| keep.get(i).and_then(|&k| input_key(k as usize)), out)?)
}
