//! The engine proper: what it owns, and routing polled records (decoded, or read back from a
//! repartition topic) to the queries' tasks. The commit cycle and its failures are in
//! commit.rs, rebalances in rebalance.rs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::committer::{Committer, Sealed};
use super::emit::{EngineOut, Txn};
use super::ids::{InputId, TopicId, Topics};
use super::progress::ProgressTracker;
use super::restore::Restorer;
use super::source::{InputPartition, Reader, TopicKind, TopicRuntime};
use super::table::TableSet;
use super::{EngineError, RunOptions, RunSummary};
use crate::config::ProcessingGuarantee;
use crate::kafka::admin::Admin;
use crate::kafka::producer::Producer;
use crate::metrics::{Metrics, Status};
use crate::names::changelog_topic;
use crate::pipeline::Pipeline;
use crate::query::LiveTables;
use crate::runtime::internal::{decode_row, Marker, H_MARKER, H_ORIGINAL_KEY, H_ORIGINAL_POSITION, H_ORIGINAL_VALUE};
use crate::runtime::prepare::PrepareTask;
use crate::runtime::task::{Ctx, QueryTask};
use crate::runtime::{RecordRef, RuntimeError};
use crate::sql::QueryPlan;
use crate::state::{StateStore, StateWriter};

/// One query as the engine runs it.
pub struct QueryRuntime {
    pub plan: Arc<QueryPlan>,
    /// Operator-stage tasks, by partition (a source's, or a repartition topic's).
    pub tasks: Vec<Option<QueryTask>>,
    /// First-stage tasks of repartitioned sides, by side then source partition.
    pub prepare: Vec<Vec<Option<PrepareTask>>>,
    pub changelog: String,
    /// Per side: the source topic's index in the engine's topics.
    pub source_topic: Vec<TopicId>,
    /// Per side: the repartition topic's index, when the side is repartitioned.
    pub repartition: Vec<Option<TopicId>>,
    /// The joined table's index, for stream-table joins.
    pub table: Option<usize>,
    /// The sink's encoder, when its format is not JSON.
    pub encoder: Option<Arc<crate::formats::Encoder>>,
    /// Per side: how many partitions its rows come from (the source's, or the feeding stage's
    /// operator partitions), i.e. how many upstream watermarks a repartitioned side merges.
    pub upstreams: Vec<usize>,
    /// For a stage of a chained query: where its output goes instead of a sink.
    pub feed: Option<FeedTarget>,
}

/// The input a stage feeds: the next stage's side, read through its repartition topic.
#[derive(Clone)]
pub struct FeedTarget {
    pub topic: Arc<str>,
    pub partitions: usize,
    pub input: crate::sql::InputPlan,
    /// This stage's partition p is upstream `upstream_offset + p` of `upstreams` (the side's
    /// watermark merges the partitions of every stage that feeds it).
    pub upstream_offset: usize,
    pub upstreams: usize,
}

/// Everything the engine thread owns.
pub struct Engine {
    pub queries: Vec<QueryRuntime>,
    pub opts: RunOptions,
    pub(super) exactly_once: bool,
    pub(super) transactional_id: String,
    pub(super) producer: Arc<Producer>,
    /// Commits sealed cycles while the engine works on the next.
    pub(super) committer: Committer,
    /// The sealed cycle whose commit is in flight.
    pub(super) in_flight: Option<Sealed>,
    pub(super) restorer: Restorer,
    pub(super) store: StateStore,
    pub(super) writer: StateWriter,
    pub(super) admin: Admin,
    pub(super) topics: Topics<TopicRuntime>,
    pub(super) tables: TableSet,
    pub(super) inputs: BTreeMap<InputId, InputPartition>,
    pub(super) txn: Txn,
    pub(super) next_slot: usize,
    pub(super) commit_interval: Duration,
    pub(super) commit_max_records: usize,
    pub(super) cycle_start: Instant,
    pub(super) cycle_records: usize,
    pub(super) metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    /// Incremented at every rebalance; see [`Engine::is_current`].
    pub assignment_epoch: u64,
    /// A failure inside a rebalance callback, reported by the main loop.
    pub fatal: Option<EngineError>,
    pub summary: RunSummary,
    pub(super) progress: ProgressTracker,
    /// Commit cycles that had something to commit.
    pub(super) cycles: u64,
    /// The wall clock of the current batch (read once per batch, not per record).
    pub(super) clock: Instant,
    pub(super) last_idle_check: Instant,
    pub(super) last_purge: Instant,
    /// `kafka.transaction_timeout`: a transaction older than this may have been aborted by
    /// its coordinator.
    pub(super) transaction_timeout: Duration,
    /// The run ended in a failure: nothing may be committed any more, not even by the
    /// revocation that leaving the group brings. What was read since the last commit may be
    /// half processed (offsets advance before a batch is processed) or, when a commit's end
    /// failed, held back from the producer; the next run starts from the last commit.
    pub(super) failed: bool,
    /// The result tables this run publishes (withdrawn when the engine is dropped).
    pub(super) live: Arc<LiveTables>,
}

/// What the engine needs to be built.
pub struct EngineParts {
    pub pipeline: Arc<Pipeline>,
    pub opts: RunOptions,
    pub producer: Producer,
    pub restorer: Restorer,
    pub store: StateStore,
    pub admin: Admin,
    pub topics: Vec<TopicRuntime>,
    pub tables: TableSet,
    pub queries: Vec<QueryRuntime>,
    pub transactional_id: String,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub live: Arc<LiveTables>,
}

impl QueryRuntime {
    /// An empty runtime for `plan`; `operator_partitions` and per-side source partition
    /// counts size the task tables.
    pub fn new(
        app: &str,
        plan: Arc<QueryPlan>,
        operator_partitions: usize,
        source_partitions: &[usize],
        source_topic: Vec<TopicId>,
        repartition: Vec<Option<TopicId>>,
        table: Option<usize>,
    ) -> QueryRuntime {
        let prepare = repartition
            .iter()
            .zip(source_partitions)
            .map(|(r, &n)| if r.is_some() { (0..n).map(|_| None).collect() } else { Vec::new() })
            .collect();
        QueryRuntime {
            changelog: changelog_topic(app, &plan.name),
            tasks: (0..operator_partitions).map(|_| None).collect(),
            prepare,
            source_topic,
            repartition,
            table,
            upstreams: source_partitions.to_vec(),
            plan,
            encoder: None,
            feed: None,
        }
    }
}

impl Drop for Engine {
    /// Between two runs nothing is published: the next run may restore different trees.
    fn drop(&mut self) {
        self.live.detach();
    }
}

impl Engine {
    pub fn new(p: EngineParts) -> Engine {
        let config = p.pipeline.config();
        let producer = Arc::new(p.producer);
        let writer = StateWriter::start(1024);
        p.live.attach(writer.reads());
        Engine {
            committer: Committer::start(producer.clone()),
            in_flight: None,
            producer,
            exactly_once: config.processing_guarantee == ProcessingGuarantee::ExactlyOnce,
            commit_interval: config.commit_interval.std(),
            commit_max_records: config.commit_max_records,
            progress: ProgressTracker::new(&config.app),
            transaction_timeout: config.kafka.transaction_timeout.std(),
            queries: p.queries,
            opts: p.opts,
            transactional_id: p.transactional_id,
            restorer: p.restorer,
            store: p.store,
            writer,
            admin: p.admin,
            topics: Topics(p.topics),
            tables: p.tables,
            inputs: BTreeMap::new(),
            txn: Txn::default(),
            next_slot: 1,
            cycle_start: Instant::now(),
            cycle_records: 0,
            metrics: p.metrics,
            status: p.status,
            fatal: None,
            assignment_epoch: 0,
            summary: RunSummary::default(),
            cycles: 0,
            clock: Instant::now(),
            last_idle_check: Instant::now(),
            last_purge: Instant::now(),
            failed: false,
            live: p.live,
        }
    }

    /// Publishes, for each query with a sink, the state trees of the partitions it owns now
    /// (after an assignment or a revocation); a tree restored just now is whole once the
    /// writer has applied what the restore queued.
    pub(super) fn publish_tables(&self) {
        let ready_at = self.writer.queued();
        for q in self.queries.iter().filter(|q| q.feed.is_none()) {
            let owned = q.tasks.iter().flatten().filter_map(|t| Some((t.partition, t.tree.clone()?))).collect();
            let Some(&source) = q.source_topic.first() else { continue };
            let input = q.repartition.first().copied().flatten().unwrap_or(source);
            self.live.publish(q.plan.clone(), q.tasks.len(), &self.topics[input].topic, owned, ready_at);
        }
    }

    /// An assigned partition of a consumed topic.
    pub fn input(&self, topic: &str, partition: i32) -> Option<&InputPartition> {
        self.inputs.get(&InputId::new(self.topic_index(topic)?, partition))
    }

    pub(super) fn topic_index(&self, topic: &str) -> Option<TopicId> {
        self.topics.position(|t| &*t.topic == topic)
    }

    /// Reads the wall clock once for the records of the next batch; re-checks idleness.
    pub fn tick(&mut self) {
        self.clock = Instant::now();
        if self.clock.duration_since(self.last_idle_check) >= Duration::from_millis(200) {
            self.last_idle_check = self.clock;
            for q in &mut self.queries {
                for t in q.tasks.iter_mut().flatten() {
                    t.tick(self.clock);
                }
            }
        }
        for t in &mut self.tables.0 {
            t.poll(10_000);
        }
    }

    /// True when a record of `topic[partition]` polled at assignment `epoch` still belongs to
    /// the current assignment (a rebalance since may have re-created the partition's input,
    /// whose consumer position then starts over from the committed offset).
    pub fn is_current(&self, topic: &str, partition: i32, epoch: u64) -> bool {
        self.topic_index(topic).and_then(|ti| self.inputs.get(&InputId::new(ti, partition))).is_some_and(|i| i.since_epoch <= epoch)
    }

    /// Processes a polled batch of records: each partition's in their order, as batches.
    pub fn on_messages(&mut self, msgs: &[&BorrowedMessage<'_>]) -> Result<(), EngineError> {
        // Group by partition, keeping each partition's order, skipping records already seen.
        let mut groups: Vec<(InputId, Vec<usize>)> = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let Some(ti) = self.topic_index(m.topic()) else { continue };
            let id = InputId::new(ti, m.partition());
            let offset = m.offset();
            let Some(input) = self.inputs.get_mut(&id) else { continue };
            if input.next_offset.is_some_and(|n| offset < n) {
                continue;
            }
            if input.committed.is_none() {
                input.committed = Some(offset);
            }
            input.next_offset = Some(offset + 1);
            input.at_end = false;
            input.consumed += 1;
            self.cycle_records += 1;
            self.summary.records_in += 1;
            match groups.iter_mut().find(|(k, _)| *k == id) {
                Some((_, v)) => v.push(i),
                None => groups.push((id, vec![i])),
            }
        }
        for (InputId { topic: ti, partition }, indices) in groups {
            let records: Vec<RecordRef<'_>> = indices
                .iter()
                .map(|&i| {
                    let m = msgs[i];
                    RecordRef {
                        topic: m.topic(),
                        partition,
                        offset: m.offset(),
                        key: m.key(),
                        payload: m.payload(),
                        timestamp: m.timestamp().to_millis(),
                    }
                })
                .collect();
            let is_source = matches!(self.topics[ti].kind, TopicKind::Source { .. });
            if is_source {
                self.on_source_records(ti, partition, &records)?;
            } else {
                let picked: Vec<&BorrowedMessage<'_>> = indices.iter().map(|&i| msgs[i]).collect();
                self.on_repartition_records(ti, partition, &picked, &records)?;
            }
        }
        Ok(())
    }

    fn on_source_records(&mut self, ti: TopicId, partition: i32, records: &[RecordRef<'_>]) -> Result<(), EngineError> {
        let Engine { topics, queries, producer, txn, tables, clock, .. } = self;
        let mut out = EngineOut::new(producer, txn);
        let topic_name = topics[ti].topic.clone();
        let TopicKind::Source { reader, dead_letters, readers, dead_letter_topic, late_topic } = &mut topics[ti].kind else {
            return Ok(());
        };
        let decoded = reader.decode(records, |rec, e| dead_letters.handle(rec, e, &mut out));
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => return Err(out.error(e)),
        };
        if decoded.batch.num_rows() == 0 {
            return Ok(());
        }
        for r in readers.iter() {
            let result = match *r {
                Reader::Task { query, side } => {
                    let Some(Some(task)) = queries[query].tasks.get_mut(partition as usize) else {
                        return Err(not_copartitioned(&queries[query].plan.name, &topic_name, partition));
                    };
                    let mut ctx = Ctx { out: &mut out, now: *clock, tables: &*tables };
                    task.on_batch(side, &decoded.batch, &decoded.records, &mut ctx)
                }
                Reader::Prepare { query, side } => {
                    let name = queries[query].plan.name.clone();
                    let Some(Some(task)) = queries[query].prepare.get_mut(side).and_then(|s| s.get_mut(partition as usize)) else {
                        continue;
                    };
                    let no_time = late_topic.as_deref().or(dead_letter_topic.as_deref());
                    task.on_batch(&decoded.batch, &decoded.records, *clock, no_time, dead_letter_topic.as_deref(), &name, &mut out)
                        .map(drop)
                        .map_err(RuntimeError::from)
                }
            };
            if let Err(e) = result {
                return Err(out.error(e));
            }
        }
        Ok(())
    }

    fn on_repartition_records(
        &mut self,
        ti: TopicId,
        partition: i32,
        msgs: &[&BorrowedMessage<'_>],
        records: &[RecordRef<'_>],
    ) -> Result<(), EngineError> {
        let Engine { topics, queries, producer, txn, tables, clock, .. } = self;
        let TopicKind::Repartition { query, side } = topics[ti].kind else { return Ok(()) };
        let topic_name = topics[ti].topic.clone();
        let Some(Some(task)) = queries[query].tasks.get_mut(partition as usize) else {
            return Err(not_copartitioned(&queries[query].plan.name, &topic_name, partition));
        };
        let mut out = EngineOut::new(producer, txn);
        for (m, rec) in msgs.iter().zip(records) {
            let offset = rec.offset;
            let headers = m.headers();
            let header = |name: &str| headers.and_then(|h| h.iter().find(|x| x.key == name).and_then(|x| x.value));
            if let Some(marker) = header(H_MARKER) {
                let text = std::str::from_utf8(marker).unwrap_or("");
                let marker = Marker::parse(text).map_err(|e| EngineError::Setup(format!("{topic_name} offset {offset}: {e}")))?;
                task.on_marker(side, marker.upstream as usize, marker.watermark, marker.idle, *clock);
                continue;
            }
            let row = decode_row(rec.payload.unwrap_or_default())
                .map_err(|e| EngineError::Setup(format!("{topic_name} offset {offset}: {e}")))?;
            let position = header(H_ORIGINAL_POSITION).and_then(|p| std::str::from_utf8(p).ok()).and_then(parse_position);
            let original = position.map(|(topic, partition, offset)| RecordRef {
                topic,
                partition,
                offset,
                key: header(H_ORIGINAL_KEY),
                payload: header(H_ORIGINAL_VALUE),
                timestamp: rec.timestamp,
            });
            let mut ctx = Ctx { out: &mut out, now: *clock, tables: &*tables };
            if let Err(e) = task.on_input_row(side, row, original.as_ref(), &mut ctx) {
                return Err(out.error(e));
            }
        }
        let mut ctx = Ctx { out: &mut out, now: *clock, tables: &*tables };
        task.flush(&mut ctx).map_err(|e| out.error(e))
    }

    /// A partition reached its end: commit past any trailing transaction markers, and note
    /// the end for bounded runs.
    pub fn on_eof<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, partition: i32) {
        if self.opts.stop_at_end && self.in_flight.as_ref().is_some_and(|s| s.txn.internal > 0) {
            // A commit in flight wrote to repartition topics: its records may be visible to
            // this consumer already. Its end decides which partitions have new records, so
            // it comes first; then the end offsets below include them.
            if let Err(e) = self.await_commit(consumer) {
                self.fatal.get_or_insert(e);
                return;
            }
        }
        let Ok(positions) = consumer.position() else { return };
        for (id, input) in self.inputs.iter_mut() {
            if id.partition != partition {
                continue;
            }
            let topic = &self.topics[id.topic].topic;
            let position = match positions.find_partition(topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(pos)) => Some(pos),
                _ => None,
            };
            if let Some(pos) = position {
                if input.next_offset.is_none_or(|n| pos > n) {
                    input.next_offset = Some(pos);
                }
            }
            if self.opts.stop_at_end {
                // Without a record delivered since the assignment the position is unknown; the
                // consumer then started at the group's committed offset (or the beginning).
                let start = || {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(topic, partition);
                    match consumer.committed_offsets(tpl, Duration::from_secs(10)).ok()?.find_partition(topic, partition)?.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    }
                };
                if let Ok((low, high)) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
                    let pos = position.or(input.next_offset).or_else(start).unwrap_or(low);
                    input.at_end = pos >= high;
                    tracing::debug!(topic = %topic, partition, pos, high, at_end = input.at_end, "partition end reached");
                }
            }
        }
    }

    /// Fires windows closed by watermark progress in every task.
    pub fn advance(&mut self) -> Result<(), EngineError> {
        let Engine { queries, producer, txn, tables, clock, .. } = self;
        let mut out = EngineOut::new(producer, txn);
        for q in queries.iter_mut() {
            for t in q.tasks.iter_mut().flatten() {
                let mut ctx = Ctx { out: &mut out, now: *clock, tables: &*tables };
                if let Err(e) = t.advance(&mut ctx) {
                    return Err(out.error(e));
                }
            }
        }
        Ok(())
    }

    pub fn commit_due(&self) -> bool {
        self.cycle_start.elapsed() >= self.commit_interval || self.cycle_records >= self.commit_max_records
    }

    pub fn time_to_commit(&self) -> Duration {
        self.commit_interval.saturating_sub(self.cycle_start.elapsed())
    }

    /// Every assigned input is at its end, with nothing left to commit (bounded runs).
    pub fn caught_up(&self) -> bool {
        !self.inputs.is_empty()
            && self.inputs.values().all(|i| i.at_end)
            && !self.txn.open
            && self.in_flight.is_none()
            && self.inputs.values().all(|i| i.uncommitted().is_none())
    }

    /// Bounded runs: every task's watermark is final (the flush committed and, through
    /// repartition topics, arrived).
    pub fn all_finished(&self) -> bool {
        self.queries.iter().flat_map(|q| q.tasks.iter().flatten()).all(|t| !t.is_stateful() || t.watermark() == i64::MAX)
    }

    /// Bounded runs: the input is finished, every window may close.
    pub fn finish_all(&mut self) {
        for q in &mut self.queries {
            for t in q.tasks.iter_mut().flatten() {
                t.finish(self.clock);
            }
            for p in q.prepare.iter_mut().flatten().flatten() {
                p.finish();
            }
        }
    }

    /// Waits until every queued state write is in sled (before shutting down).
    pub fn drain_state(&self) -> Result<(), EngineError> {
        Ok(self.writer.drain()?)
    }
}

fn not_copartitioned(query: &str, topic: &str, partition: i32) -> EngineError {
    EngineError::Setup(format!(
        "query {query}: {topic}[{partition}] was assigned without the same partition of its co-partitioned input; \
         co-partitioned topics need equal partition counts and the range assignor (the default)"
    ))
}

/// `topic/partition/offset`
fn parse_position(text: &str) -> Option<(&str, i32, i64)> {
    let (rest, offset) = text.rsplit_once('/')?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic, partition.parse().ok()?, offset.parse().ok()?))
}
