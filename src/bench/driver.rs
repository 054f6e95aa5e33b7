//! The in-engine benchmark driver: one query's task work on records held in memory — JSON
//! decode, the side's filter and key/value expressions, the operator, HAVING/residual and
//! projection, JSON encode of every output row and key, and the changelog entries of each
//! commit cycle — with no broker, no Kafka client and no sled. It mirrors
//! `engine::task::QueryTask` step by step (which needs a producer) on the same components.
//! Depends on `formats`, `expr`, `operators` and `sql` plans only.

use anyhow::Context;

use crate::config::OutputMode;
use crate::expr::Expr;
use crate::formats::{JsonDecoder, JsonEncoder};
use crate::operators::dedup::{Dedup, DedupMode};
use crate::operators::join::{IntervalJoin, JoinType};
use crate::operators::session::SessionAggregate;
use crate::operators::{Operator, WindowAggregate};
use crate::pipeline::Pipeline;
use crate::sql::{DedupRule, EventTimeColumn, JoinKind, PlanBody, QueryPlan, WindowKind};
use crate::time::NO_WATERMARK;
use crate::types::{Row, Value};

/// Records between watermark advances (the engine advances once per polled batch).
pub const BATCH: usize = 1024;

/// How the output rows are post-processed.
enum Post {
    Stateless(Vec<Expr>),
    Aggregate { having: Option<Expr>, projection: Vec<Expr> },
    Join { residual: Option<Expr>, projection: Vec<Expr> },
    Dedup,
}

/// One input side.
struct Side {
    decoder: JsonDecoder,
    schema_len: usize,
    row_len: usize,
    filter: Option<Expr>,
    event_time: Option<EventTimeColumn>,
    delay: i64,
    keys: Vec<Expr>,
    values: Vec<Expr>,
    max_time: i64,
}

/// Totals of a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub input: u64,
    pub output: u64,
    pub output_bytes: u64,
    pub changelog_entries: u64,
    pub changelog_bytes: u64,
    pub late: u64,
    pub errors: u64,
}

/// A query ready to be fed records.
pub struct Driver {
    plan: QueryPlan,
    sides: Vec<Side>,
    op: Option<Box<dyn Operator>>,
    post: Post,
    encoder: JsonEncoder,
    key_encoder: Option<JsonEncoder>,
    row: Row,
    input_row: Row,
    out_rows: Vec<Row>,
    payload: Vec<u8>,
    key: Vec<u8>,
    changelog: Vec<u8>,
    fired: i64,
    pub counts: Counts,
}

/// The operator of a query plan (none for stateless plans), built as the engine's tasks build it.
pub fn build_operator(plan: &QueryPlan) -> anyhow::Result<Option<Box<dyn Operator>>> {
    Ok(build(plan)?.0)
}

fn build(plan: &QueryPlan) -> anyhow::Result<(Option<Box<dyn Operator>>, Post)> {
    Ok(match &plan.body {
        PlanBody::Stateless { projection } => (None, Post::Stateless(projection.clone())),
        PlanBody::TableJoin(_) => {
            return Err(anyhow::anyhow!("the in-engine benchmark has no tables: stream-table joins are not supported"))
        }
        PlanBody::Aggregate(a) => {
            let op: Box<dyn Operator> = match a.window {
                Some(WindowKind::Session { gap }) => Box::new(SessionAggregate::new(gap, a.key_count(), &a.aggregates, plan.output_mode)),
                Some(WindowKind::Fixed(w)) => Box::new(WindowAggregate::new(Some(w), a.key_count(), &a.aggregates, plan.output_mode)),
                None => Box::new(WindowAggregate::new(None, a.key_count(), &a.aggregates, plan.output_mode)),
            };
            (Some(op), Post::Aggregate { having: a.having.clone(), projection: a.projection.clone() })
        }
        PlanBody::Join(j) => {
            let kind = match j.kind {
                JoinKind::Inner => JoinType::Inner,
                JoinKind::LeftOuter => JoinType::LeftOuter,
                JoinKind::RightOuter => JoinType::RightOuter,
                JoinKind::FullOuter => JoinType::FullOuter,
            };
            let (l, r) = (&plan.inputs[0], &plan.inputs[1]);
            let op = IntervalJoin::new(kind, l.keys.len(), l.values.len(), r.values.len(), j.lower, j.upper);
            (Some(Box::new(op)), Post::Join { residual: j.residual.clone(), projection: j.projection.clone() })
        }
        PlanBody::Dedup(d) => {
            let mode = match d.rule {
                DedupRule::EventTimeInKey => DedupMode::EventTimeInKey,
                DedupRule::WithinWatermark { delay } => DedupMode::WithinWatermark { delay },
            };
            (Some(Box::new(Dedup::new(plan.inputs[0].keys.len(), mode))), Post::Dedup)
        }
    })
}

impl Driver {
    /// The pipeline's first query.
    pub fn new(pipeline: &Pipeline) -> anyhow::Result<Driver> {
        let plan = pipeline.queries.first().context("the pipeline has no query")?.clone();
        let mut sides = Vec::new();
        for input in &plan.inputs {
            let src = pipeline.config().sources.get(&input.scan.source).context("unknown source")?;
            let schema = &src.schema.schema;
            sides.push(Side {
                decoder: JsonDecoder::new(schema, &input.scan.needed),
                schema_len: schema.len(),
                row_len: input.scan.schema.len(),
                filter: input.scan.filter.clone(),
                event_time: input.scan.event_time,
                delay: input.scan.watermark_delay.unwrap_or(0),
                keys: input.keys.clone(),
                values: input.values.clone(),
                max_time: NO_WATERMARK,
            });
        }
        let (op, post) = build(&plan)?;
        let names: Vec<&str> = plan.output.iter().map(|c| c.name.as_str()).collect();
        let key_names: Vec<&str> = plan.key_columns.iter().map(|&i| names[i]).collect();
        Ok(Driver {
            encoder: JsonEncoder::new(&names),
            key_encoder: (!key_names.is_empty()).then(|| JsonEncoder::new(&key_names)),
            sides,
            op,
            post,
            row: Vec::new(),
            input_row: Vec::new(),
            out_rows: Vec::new(),
            payload: Vec::new(),
            key: Vec::new(),
            changelog: Vec::new(),
            fired: NO_WATERMARK,
            counts: Counts::default(),
            plan,
        })
    }

    /// Source names of the sides, in side order.
    pub fn sources(&self) -> Vec<String> {
        self.plan.inputs.iter().map(|i| i.scan.source.clone()).collect()
    }

    /// The event time of a record for `side`, if it decodes (used to merge sides in order).
    pub fn event_time(&mut self, side: usize, payload: &[u8]) -> Option<i64> {
        let s = &self.sides[side];
        // As the engine does: the decoder resets the schema's columns, the rest are reset here.
        self.row.resize(s.row_len, Value::Null);
        self.row[s.schema_len..].fill(Value::Null);
        s.decoder.decode(payload, &mut self.row[..s.schema_len]).ok()?;
        match s.event_time {
            Some(EventTimeColumn::Column(c)) => match self.row.get(c) {
                Some(Value::Timestamp(t)) => Some(*t),
                _ => None,
            },
            _ => None,
        }
    }

    /// The operator input row (`[event time, keys..., values...]`) of a record for `side`,
    /// for micro-benchmarks of the operators alone.
    pub fn operator_row(&mut self, side: usize, payload: &[u8]) -> Option<Row> {
        let ts = self.event_time(side, payload)?;
        let s = &self.sides[side];
        let mut row = vec![Value::Timestamp(ts)];
        row.extend(s.keys.iter().map(|k| k.eval(&self.row)));
        row.extend(s.values.iter().map(|v| v.eval(&self.row)));
        Some(row)
    }

    /// One source record for `side`.
    pub fn on_record(&mut self, side: usize, payload: &[u8]) {
        let s = &mut self.sides[side];
        // As the engine does: the decoder resets the schema's columns, the rest are reset here.
        self.row.resize(s.row_len, Value::Null);
        self.row[s.schema_len..].fill(Value::Null);
        if s.decoder.decode(payload, &mut self.row[..s.schema_len]).is_err() {
            self.counts.errors += 1;
            return;
        }
        if s.filter.as_ref().is_some_and(|f| !f.test(&self.row)) {
            return;
        }
        self.counts.input += 1;
        let ts = match s.event_time {
            Some(EventTimeColumn::Column(c)) => match self.row.get(c) {
                Some(Value::Timestamp(t)) => Some(*t),
                _ => None,
            },
            _ => None,
        };
        if let Post::Stateless(projection) = &self.post {
            let out: Vec<Value> = projection.iter().map(|e| e.eval(&self.row)).collect();
            self.send(&out);
            return;
        }
        let Some(ts) = ts else {
            self.counts.late += 1;
            return;
        };
        self.input_row.clear();
        self.input_row.push(Value::Timestamp(ts));
        self.input_row.extend(s.keys.iter().map(|k| k.eval(&self.row)));
        self.input_row.extend(s.values.iter().map(|v| v.eval(&self.row)));
        s.max_time = s.max_time.max(ts);
        let wm = self.watermark_before_batch();
        let mut rows = std::mem::take(&mut self.out_rows);
        if let Some(op) = &mut self.op {
            if op.process(side, &self.input_row, wm, &mut rows) == crate::operators::Processed::Late {
                self.counts.late += 1;
            }
        }
        self.emit(&mut rows);
        self.out_rows = rows;
    }

    /// The watermark the engine would have used: the one of the last advance.
    fn watermark_before_batch(&self) -> i64 {
        self.fired
    }

    /// End of a polled batch: the watermark advances and closes windows.
    pub fn advance(&mut self) {
        let wm = self
            .sides
            .iter()
            .map(|s| if s.max_time == NO_WATERMARK { NO_WATERMARK } else { s.max_time - s.delay })
            .min()
            .unwrap_or(NO_WATERMARK);
        if wm > self.fired {
            self.fire(wm);
        }
    }

    fn fire(&mut self, wm: i64) {
        self.fired = wm;
        let mut rows = std::mem::take(&mut self.out_rows);
        if let Some(op) = &mut self.op {
            op.on_watermark(wm, &mut rows);
        }
        self.emit(&mut rows);
        self.out_rows = rows;
    }

    /// End of a commit cycle: update/complete modes emit; every changed state entry is
    /// encoded as a changelog record would be.
    pub fn commit(&mut self) {
        let mut rows = std::mem::take(&mut self.out_rows);
        let Some(op) = &mut self.op else { return };
        if self.plan.output_mode != OutputMode::Append {
            op.on_commit(&mut rows);
        }
        let (buf, counts) = (&mut self.changelog, &mut self.counts);
        buf.clear();
        op.take_changes(&mut |k: &[u8], v: Option<&[u8]>| {
            buf.extend_from_slice(k);
            if let Some(v) = v {
                buf.extend_from_slice(v);
            }
            counts.changelog_entries += 1;
        });
        self.counts.changelog_bytes += self.changelog.len() as u64;
        self.emit(&mut rows);
        self.out_rows = rows;
    }

    /// End of a bounded input: close everything (as `--flush-at-end`).
    pub fn finish(&mut self) {
        self.fire(i64::MAX);
        self.commit();
    }

    pub fn state_entries(&self) -> usize {
        self.op.as_ref().map_or(0, |o| o.entries())
    }

    fn emit(&mut self, rows: &mut Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        // As the engine's task does: each row projected into one reused vector, sent at once.
        let post = std::mem::replace(&mut self.post, Post::Dedup);
        let mut values: Vec<Value> = Vec::new();
        for row in rows.drain(..) {
            let out: &[Value] = match &post {
                Post::Aggregate { having, projection } => {
                    if having.as_ref().is_some_and(|h| !h.test(&row)) {
                        continue;
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
                Post::Dedup | Post::Stateless(_) => &row,
            };
            self.send(out);
        }
        self.post = post;
    }

    /// Encodes one output row and its key, as `engine::task::Output::send` does.
    fn send(&mut self, values: &[Value]) {
        self.payload.clear();
        self.encoder.encode(values, &mut self.payload);
        let mut bytes = self.payload.len();
        if let Some(enc) = &self.key_encoder {
            self.key.clear();
            enc.encode(self.plan.key_columns.iter().map(|&i| &values[i]), &mut self.key);
            bytes += self.key.len();
        }
        self.counts.output += 1;
        self.counts.output_bytes += bytes as u64;
    }
}
