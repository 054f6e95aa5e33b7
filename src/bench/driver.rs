//! The in-engine benchmark driver: one query's task, the engine's own `runtime::task::QueryTask`
//! and `runtime::source::SourceReader`, fed records held in memory in batches as the engine
//! feeds polled records (up to [`BATCH`] at a time, grouped by input), with the watermark
//! advanced after each batch and a commit cycle (update/complete output and changelog entries)
//! every N records. Its `Out` counts records and bytes instead of producing them: no broker,
//! no Kafka client, no sled. Depends on `runtime`, `formats`, `metrics` and `sql` plans only.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::formats::Decoder;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::runtime::clock::SideSpec;
use crate::runtime::source::SourceReader;
use crate::runtime::task::{Ctx, LateRoute, QueryTask};
use crate::runtime::{NoTables, Out, OutKind, Outgoing, RecordRef, SendFailed};
use crate::sql::{EventTimeColumn, QueryPlan};
use crate::types::arrays::ColumnReader;

/// Records per batch: the engine's poll batch.
pub const BATCH: usize = 1024;

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

/// Counts what a task sends.
#[derive(Default)]
struct Counter {
    counts: Counts,
}

impl Out for Counter {
    fn send(&mut self, r: &Outgoing<'_>) -> Result<(), SendFailed> {
        let bytes = r.payload.map_or(0, <[u8]>::len) + r.key.map_or(0, <[u8]>::len);
        match r.kind {
            OutKind::Sink => {
                self.counts.output += 1;
                self.counts.output_bytes += bytes as u64;
            }
            OutKind::Changelog => {
                self.counts.changelog_entries += 1;
                self.counts.changelog_bytes += bytes as u64;
            }
            OutKind::Forward | OutKind::Internal => {}
        }
        Ok(())
    }
}

/// One input side: its decoder and the records of the open batch.
struct Side {
    source: String,
    reader: SourceReader,
    event_time: Option<EventTimeColumn>,
    /// The open batch's records, back to back, and where each ends.
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// A query ready to be fed records.
pub struct Driver {
    plan: Arc<QueryPlan>,
    sides: Vec<Side>,
    task: QueryTask,
    out: Counter,
    pending: usize,
    offset: i64,
    _metrics: Metrics,
}

impl Driver {
    /// The pipeline's first query.
    pub fn new(pipeline: &Pipeline) -> anyhow::Result<Driver> {
        let plan = Arc::new(pipeline.queries.first().context("the pipeline has no query")?.clone());
        if plan.feeds.is_some() {
            anyhow::bail!(
                "the in-engine benchmark runs queries of one stateful operator; query {} chains several (measure it end to end: eddy bench --mode e2e)",
                plan.feeds.as_ref().map_or("?", |f| f.query.as_str())
            );
        }
        if matches!(plan.body, crate::sql::PlanBody::TableJoin(_)) {
            anyhow::bail!("the in-engine benchmark has no tables: stream-table joins are not supported");
        }
        let mut sides = Vec::new();
        let mut specs = Vec::new();
        for input in &plan.inputs {
            let src = pipeline.config().sources.get(&input.scan.source).context("unknown source")?;
            let schema = &src.schema.schema;
            let decoder =
                Decoder::for_source(src, schema, &input.scan.needed).map_err(|e| anyhow::anyhow!("source {}: {e}", input.scan.source))?;
            sides.push(Side {
                source: input.scan.source.clone(),
                reader: SourceReader::new(decoder, &input.scan.schema, schema.len(), &input.scan.needed),
                event_time: input.scan.event_time,
                bytes: Vec::with_capacity(BATCH * 128),
                ends: Vec::with_capacity(BATCH),
            });
            specs.push(SideSpec::Local { delay: input.scan.watermark_delay.unwrap_or(0), idle_timeout: None });
        }
        let metrics = Metrics::new().map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        let late = vec![LateRoute::default(); plan.inputs.len()];
        let task = QueryTask::new(0, plan.clone(), specs, None, None, 1, late, &metrics);
        Ok(Driver { plan, sides, task, out: Counter::default(), pending: 0, offset: 0, _metrics: metrics })
    }

    /// Source names of the sides, in side order.
    pub fn sources(&self) -> Vec<String> {
        self.sides.iter().map(|s| s.source.clone()).collect()
    }

    /// The plan being run.
    pub fn plan(&self) -> &QueryPlan {
        &self.plan
    }

    /// The event time of a record for `side`, if it decodes (used to merge sides in order).
    pub fn event_time(&mut self, side: usize, payload: &[u8]) -> Option<i64> {
        let s = self.sides.get_mut(side)?;
        let rec = RecordRef { topic: "", partition: 0, offset: 0, key: None, payload: Some(payload), timestamp: None };
        let decoded = s.reader.decode(&[rec], |_, _| Ok(())).ok()?;
        match s.event_time {
            Some(EventTimeColumn::Column(c)) if decoded.batch.num_rows() == 1 => {
                ColumnReader::new(decoded.batch.column(c).as_ref()).timestamp(0)
            }
            _ => None,
        }
    }

    /// One source record for `side`; a full batch is processed.
    pub fn on_record(&mut self, side: usize, payload: &[u8]) {
        let Some(s) = self.sides.get_mut(side) else { return };
        s.bytes.extend_from_slice(payload);
        s.ends.push(s.bytes.len());
        self.pending += 1;
        if self.pending >= BATCH {
            self.flush_batch();
            self.advance_only();
        }
    }

    /// Processes the open batch, one side after the other (as the engine groups a poll by
    /// partition).
    fn flush_batch(&mut self) {
        self.pending = 0;
        let now = Instant::now();
        for (i, s) in self.sides.iter_mut().enumerate() {
            if s.ends.is_empty() {
                continue;
            }
            let mut start = 0;
            let mut records = Vec::with_capacity(s.ends.len());
            for &end in &s.ends {
                records.push(RecordRef {
                    topic: "",
                    partition: 0,
                    offset: self.offset,
                    key: None,
                    payload: Some(&s.bytes[start..end]),
                    timestamp: None,
                });
                self.offset += 1;
                start = end;
            }
            let errors = &mut self.out.counts.errors;
            let decoded = s.reader.decode(&records, |_, _| {
                *errors += 1;
                Ok(())
            });
            if let Ok(d) = decoded {
                let mut ctx = Ctx { out: &mut self.out, now, tables: &NoTables };
                let _ = self.task.on_batch(i, &d.batch, &d.records, &mut ctx);
            }
            s.bytes.clear();
            s.ends.clear();
        }
    }

    fn advance_only(&mut self) {
        let mut ctx = Ctx { out: &mut self.out, now: Instant::now(), tables: &NoTables };
        let _ = self.task.advance(&mut ctx);
    }

    /// End of a polled batch: the watermark advances and closes windows.
    pub fn advance(&mut self) {
        self.flush_batch();
        self.advance_only();
    }

    /// End of a commit cycle: update/complete modes emit; every changed state entry is
    /// counted as a changelog record would be.
    pub fn commit(&mut self) {
        self.advance();
        let mut ctx = Ctx { out: &mut self.out, now: Instant::now(), tables: &NoTables };
        let _ = self.task.on_commit(&mut ctx);
        let counts = &mut self.out.counts;
        self.task.take_changes(&mut |k: &[u8], v: Option<&[u8]>| {
            counts.changelog_entries += 1;
            counts.changelog_bytes += (k.len() + v.map_or(0, <[u8]>::len)) as u64;
        });
        let stats = std::mem::take(&mut self.task.stats);
        self.out.counts.input += stats.input;
        self.out.counts.late += stats.late;
    }

    /// End of a bounded input: close everything (as `--flush-at-end`).
    pub fn finish(&mut self) {
        self.flush_batch();
        self.task.finish(Instant::now());
        self.commit();
    }

    /// The operator input row (`[event time, keys..., values...]`) of a record for `side`,
    /// for micro-benchmarks of the operators alone.
    pub fn operator_row(&mut self, side: usize, payload: &[u8]) -> Option<crate::types::Row> {
        let input = self.plan.inputs.get(side)?.clone();
        let s = self.sides.get_mut(side)?;
        let rec = RecordRef { topic: "", partition: 0, offset: 0, key: None, payload: Some(payload), timestamp: None };
        let decoded = s.reader.decode(&[rec], |_, _| Ok(())).ok()?;
        if decoded.batch.num_rows() != 1 {
            return None;
        }
        let ts = match s.event_time {
            Some(EventTimeColumn::Column(c)) => ColumnReader::new(decoded.batch.column(c).as_ref()).timestamp(0)?,
            _ => return None,
        };
        let mut row = vec![crate::types::Value::Timestamp(ts)];
        for e in input.keys.iter().chain(input.values.iter()) {
            let a = e.eval(&decoded.batch).ok()?;
            row.push(ColumnReader::new(a.as_ref()).value(0));
        }
        Some(row)
    }

    pub fn state_entries(&self) -> usize {
        self.task.state_entries()
    }

    pub fn counts(&self) -> Counts {
        self.out.counts
    }
}
