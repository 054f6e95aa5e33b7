//! The engine proper: routes records to tasks, runs the commit cycle (sink records, changelog
//! records and input offsets in one transaction, then the same changes into sled), aborts and
//! rewinds on failure, and takes or hands over partitions when the group rebalances.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::emit::{Emitter, RecordRef, Txn};
use super::progress::ProgressTracker;
use super::restore::Restorer;
use super::source::{InputPartition, SourceRuntime};
use super::task::{LateRoute, QueryTask};
use super::{EngineError, RunOptions, RunSummary};
use crate::config::{ErrorPolicy, ProcessingGuarantee};
use crate::kafka::producer::{Outgoing, Producer};
use crate::kafka::{classify, ErrorClass};
use crate::metrics::{Metrics, Status};
use crate::pipeline::Pipeline;
use crate::sql::explain::changelog_topic;
use crate::sql::QueryPlan;
use crate::state::{StateStore, StateWriter};
use crate::types::Value;

use crate::state::Changes;

/// How a failed commit cycle ends.
enum Failure {
    /// Abort the transaction and rewind to the last commit.
    Abort(EngineError),
    /// Stop the process.
    Fatal(EngineError),
}

/// Everything the engine thread owns.
pub struct Engine {
    pub plans: Vec<Arc<QueryPlan>>,
    pub opts: RunOptions,
    exactly_once: bool,
    transactional_id: String,
    producer: Producer,
    restorer: Restorer,
    store: StateStore,
    writer: StateWriter,
    sources: Vec<SourceRuntime>,
    inputs: BTreeMap<(usize, i32), InputPartition>,
    /// `tasks[query][partition]`.
    tasks: Vec<Vec<Option<QueryTask>>>,
    changelogs: Vec<String>,
    txn: Txn,
    next_slot: usize,
    commit_interval: Duration,
    commit_max_records: usize,
    cycle_start: Instant,
    cycle_records: usize,
    metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    /// A failure inside a rebalance callback, reported by the main loop.
    pub fatal: Option<EngineError>,
    pub summary: RunSummary,
    progress: ProgressTracker,
    row: Vec<Value>,
    /// Commit cycles that had something to commit.
    cycles: u64,
    /// The wall clock of the current batch (read once per batch, not per record).
    clock: Instant,
    static_membership: bool,
}

/// What the engine needs to be built.
pub struct EngineParts {
    pub pipeline: Arc<Pipeline>,
    pub opts: RunOptions,
    pub producer: Producer,
    pub restorer: Restorer,
    pub store: StateStore,
    pub sources: Vec<SourceRuntime>,
    pub transactional_id: String,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
}

impl Engine {
    pub fn new(p: EngineParts) -> Engine {
        let config = p.pipeline.config();
        let plans: Vec<Arc<QueryPlan>> = p.pipeline.queries.iter().cloned().map(Arc::new).collect();
        let tasks = plans
            .iter()
            .map(|plan| {
                let partitions = p.sources.iter().find(|s| s.name == plan.scan.source).map_or(0, |s| s.partitions);
                (0..partitions).map(|_| None).collect()
            })
            .collect();
        let changelogs = plans.iter().map(|q| changelog_topic(&config.app, &q.name)).collect();
        Engine {
            exactly_once: config.processing_guarantee == ProcessingGuarantee::ExactlyOnce,
            commit_interval: config.commit_interval.std(),
            commit_max_records: config.commit_max_records,
            progress: ProgressTracker::new(&config.app, &plans),
            plans,
            opts: p.opts,
            transactional_id: p.transactional_id,
            producer: p.producer,
            restorer: p.restorer,
            store: p.store,
            writer: StateWriter::start(1024),
            sources: p.sources,
            inputs: BTreeMap::new(),
            tasks,
            changelogs,
            txn: Txn::default(),
            next_slot: 1,
            cycle_start: Instant::now(),
            cycle_records: 0,
            metrics: p.metrics,
            status: p.status,
            fatal: None,
            summary: RunSummary::default(),
            row: Vec::new(),
            cycles: 0,
            clock: Instant::now(),
            static_membership: config.kafka.static_membership,
        }
    }

    /// The offset committed for an assigned partition.
    pub fn committed_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let si = self.source_index(topic)?;
        self.inputs.get(&(si, partition))?.committed
    }

    fn source_index(&self, topic: &str) -> Option<usize> {
        self.sources.iter().position(|s| &*s.topic == topic)
    }

    /// Processes one record.
    pub fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<(), EngineError> {
        let Some(si) = self.source_index(m.topic()) else { return Ok(()) };
        let partition = m.partition();
        let offset = m.offset();
        let Some(input) = self.inputs.get_mut(&(si, partition)) else { return Ok(()) };
        if input.next_offset.is_some_and(|n| offset < n) {
            return Ok(());
        }
        if input.committed.is_none() {
            input.committed = Some(offset);
        }
        input.next_offset = Some(offset + 1);
        input.at_end = false;
        input.consumed += 1;
        self.cycle_records += 1;
        self.summary.records_in += 1;
        let src = &self.sources[si];
        let rec =
            RecordRef { topic: m.topic(), partition, offset, key: m.key(), payload: m.payload(), timestamp: m.timestamp().to_millis() };
        self.row.clear();
        self.row.resize(src.row_len, Value::Null);
        let decoded = match rec.payload {
            None => Err(crate::formats::DecodeError::new(crate::formats::DecodeErrorKind::Malformed, "the record has no value")),
            Some(p) => src.decoder.decode(p, &mut self.row[..src.schema_len]),
        };
        let mut em = Emitter { producer: &self.producer, txn: &mut self.txn };
        if let Err(e) = decoded {
            return dead_letter(src, &rec, &e, &mut em, &self.metrics);
        }
        let [ts, key, part, off] = src.metadata;
        if let Some(i) = ts {
            self.row[i] = rec.timestamp.map_or(Value::Null, |ms| Value::Timestamp(ms.saturating_mul(1000)));
        }
        if let Some(i) = key {
            self.row[i] = rec.key.and_then(|k| std::str::from_utf8(k).ok()).map_or(Value::Null, Value::str);
        }
        if let Some(i) = part {
            self.row[i] = Value::Long(i64::from(partition));
        }
        if let Some(i) = off {
            self.row[i] = Value::Long(offset);
        }
        let now = self.clock;
        for &q in &src.queries {
            if let Some(Some(task)) = self.tasks[q].get_mut(partition as usize) {
                task.on_row(&self.row, &rec, now, &mut em)?;
            }
        }
        Ok(())
    }

    /// A partition reached its end: commit past any trailing transaction markers, and note
    /// the end for bounded runs.
    pub fn on_eof<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, partition: i32) {
        let Ok(positions) = consumer.position() else { return };
        for ((si, p), input) in self.inputs.iter_mut() {
            if *p != partition {
                continue;
            }
            let topic = &self.sources[*si].topic;
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
        let mut em = Emitter { producer: &self.producer, txn: &mut self.txn };
        for tasks in &mut self.tasks {
            for t in tasks.iter_mut().flatten() {
                t.advance(&mut em)?;
            }
        }
        self.producer.poll();
        Ok(())
    }

    /// Reads the wall clock once for the records of the next batch.
    pub fn tick(&mut self) {
        self.clock = Instant::now();
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
            && self.inputs.values().all(|i| i.uncommitted().is_none())
    }

    /// Waits until every queued state write is in sled (before shutting down).
    pub fn drain_state(&self) -> Result<(), EngineError> {
        Ok(self.writer.drain()?)
    }

    /// Bounded runs: every task's watermark is final (the flush committed).
    pub fn all_finished(&self) -> bool {
        self.tasks.iter().flatten().flatten().all(|t| !t.is_stateful() || t.watermark() == i64::MAX)
    }

    /// Bounded runs: the input is finished, every window may close.
    pub fn finish_all(&mut self) {
        for t in self.tasks.iter_mut().flatten().flatten() {
            t.finish();
        }
    }

    /// Ends the commit cycle. Recoverable failures abort and rewind; only fatal ones return.
    pub fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        match self.try_commit(consumer) {
            Ok(()) => Ok(()),
            Err(Failure::Fatal(e)) => Err(e),
            Err(Failure::Abort(e)) => {
                tracing::warn!(error = %e, "the commit cycle failed: {e}; aborting the transaction and rewinding to the last commit");
                self.abort_and_rewind(consumer)
            }
        }
    }

    /// Handles an error raised while processing: abort and rewind, or stop.
    pub fn recover<C: ConsumerContext>(&mut self, e: EngineError, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        match self.failure(e) {
            Failure::Fatal(e) => Err(e),
            Failure::Abort(e) => {
                tracing::warn!(error = %e, "processing failed: {e}; aborting the transaction and rewinding to the last commit");
                self.abort_and_rewind(consumer)
            }
        }
    }

    fn failure(&self, e: EngineError) -> Failure {
        match e {
            EngineError::Kafka { context, source } => match classify(&source) {
                ErrorClass::Fatal => Failure::Fatal(self.fatal_kafka(context, source)),
                ErrorClass::Abort | ErrorClass::Retry => Failure::Abort(EngineError::Kafka { context, source }),
            },
            other => Failure::Fatal(other),
        }
    }

    /// A fatal consumer error; with static membership, another instance with our instance id
    /// joining the group shows up here first.
    pub fn consumer_fatal(&self, source: KafkaError) -> EngineError {
        if self.exactly_once || self.static_membership {
            let text = source.to_string();
            if text.contains("enced") || matches!(source.rdkafka_error_code(), Some(rdkafka::error::RDKafkaErrorCode::FencedInstanceId)) {
                return EngineError::Fenced { transactional_id: self.transactional_id.clone(), source };
            }
        }
        EngineError::kafka("the consumer failed", source)
    }

    fn fatal_kafka(&self, context: String, source: KafkaError) -> EngineError {
        let fenced = matches!(
            source.rdkafka_error_code(),
            Some(
                rdkafka::error::RDKafkaErrorCode::ProducerFenced
                    | rdkafka::error::RDKafkaErrorCode::InvalidProducerEpoch
                    | rdkafka::error::RDKafkaErrorCode::Fatal
            )
        ) || matches!(&source, KafkaError::Transaction(rd) if rd.is_fatal());
        if fenced && self.exactly_once {
            EngineError::Fenced { transactional_id: self.transactional_id.clone(), source }
        } else {
            EngineError::Kafka { context, source }
        }
    }

    fn try_commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), Failure> {
        let started = Instant::now();
        let process_time = self.cycle_start.elapsed();
        let mut em = Emitter { producer: &self.producer, txn: &mut self.txn };
        let mut pending: Vec<(usize, i32, Changes)> = Vec::new();
        let mut err = None;
        'tasks: for (q, tasks) in self.tasks.iter_mut().enumerate() {
            for t in tasks.iter_mut().flatten() {
                if let Err(e) = t.on_commit(&mut em) {
                    err = Some(e);
                    break 'tasks;
                }
                if t.tree.is_none() {
                    continue;
                }
                let mut changes: Changes = Vec::new();
                t.take_changes(&mut |k, v| changes.push((k.to_vec(), v.map(<[u8]>::to_vec))));
                for (k, v) in &changes {
                    let r = em.send(&Outgoing {
                        topic: &self.changelogs[q],
                        partition: Some(t.partition),
                        key: Some(k),
                        payload: v.as_deref(),
                        headers: &[],
                        timestamp: None,
                        slot: t.slot,
                    });
                    if let Err(e) = r {
                        err = Some(e);
                        break 'tasks;
                    }
                }
                if !changes.is_empty() {
                    pending.push((q, t.partition, changes));
                }
            }
        }
        if let Some(e) = err {
            return Err(self.failure(e));
        }
        let mut offsets = TopicPartitionList::new();
        for ((si, p), input) in &self.inputs {
            if let Some(o) = input.uncommitted() {
                let _ = offsets.add_partition_offset(&self.sources[*si].topic, *p, Offset::Offset(o));
            }
        }
        if !self.txn.open && offsets.count() == 0 && pending.is_empty() {
            self.start_cycle();
            return Ok(());
        }
        self.cycles += 1;
        if self.opts.inject_abort_every.is_some_and(|n| n > 0 && self.cycles % n == 0) {
            // The worst case: the cycle's records are on the broker when it fails.
            let _ = self.producer.flush();
            return Err(Failure::Abort(EngineError::Setup(format!("fault injection: aborting commit cycle {}", self.cycles))));
        }
        if self.exactly_once {
            if !self.txn.open {
                self.producer.begin().map_err(|e| self.failure(EngineError::kafka("cannot begin a transaction", e)))?;
                self.txn.open = true;
            }
            if offsets.count() > 0 {
                let group = consumer
                    .group_metadata()
                    .ok_or_else(|| Failure::Abort(EngineError::Setup("the consumer has no group metadata yet".into())))?;
                retry(|| self.producer.send_offsets(&offsets, &group))
                    .map_err(|e| self.failure(EngineError::kafka("cannot add the input offsets to the transaction", e)))?;
            }
            retry(|| self.producer.commit()).map_err(|e| self.failure(EngineError::kafka("cannot commit the transaction", e)))?;
            self.txn.open = false;
        } else {
            retry(|| self.producer.flush()).map_err(|e| self.failure(EngineError::kafka("cannot flush the producer", e)))?;
            if let Some(e) = self.producer.take_log_error() {
                return Err(self.failure(EngineError::kafka("a record could not be delivered", e)));
            }
            if offsets.count() > 0 {
                consumer
                    .commit(&offsets, CommitMode::Sync)
                    .map_err(|e| self.failure(EngineError::kafka("cannot commit the input offsets", e)))?;
            }
            self.txn.open = false;
        }
        let log = self.producer.take_log();
        // Kafka has the changes; now sled gets the same ones, with the changelog offset reached.
        for (q, p, changes) in pending {
            let Some(Some(task)) = self.tasks[q].get(p as usize) else { continue };
            let Some(tree) = &task.tree else { continue };
            let offset = log.changelog_ends.get(&task.slot).copied();
            self.writer.apply(tree, changes, offset).map_err(|e| Failure::Fatal(e.into()))?;
        }
        for input in self.inputs.values_mut() {
            if input.next_offset.is_some() {
                input.committed = input.next_offset;
            }
        }
        let commit_time = started.elapsed();
        self.metrics.transactions.with_label_values(&["committed"]).inc();
        self.metrics.transaction_duration.observe(commit_time.as_secs_f64());
        self.summary.commits += 1;
        self.summary.records_out += self.txn.output;
        self.publish(process_time, commit_time);
        self.txn = Txn::default();
        self.start_cycle();
        Ok(())
    }

    fn start_cycle(&mut self) {
        self.cycle_start = Instant::now();
        self.cycle_records = 0;
    }

    /// Aborts the open transaction, drops uncommitted state, and seeks every input back.
    pub fn abort_and_rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        if self.exactly_once && self.txn.open {
            if let Err(e) = self.producer.abort() {
                // A producer that cannot abort cannot be trusted with another transaction; a
                // restart fences it and aborts the transaction on the broker.
                return Err(self.fatal_kafka("cannot abort the transaction".into(), e));
            }
        }
        let _ = self.producer.take_log();
        self.txn = Txn::default();
        self.metrics.transactions.with_label_values(&["aborted"]).inc();
        self.summary.aborts += 1;
        self.writer.drain()?;
        for t in self.tasks.iter_mut().flatten().flatten() {
            t.clear();
            if let Some(tree) = t.tree.clone() {
                let name = tree.name().to_string();
                tree.for_each(|k, v| t.restore(k, Some(v)).map_err(|source| EngineError::Restore { tree: name.clone(), source }))?;
            }
        }
        for ((si, p), input) in self.inputs.iter_mut() {
            if let Some(o) = input.rewind_to() {
                consumer
                    .seek(&self.sources[*si].topic, *p, Offset::Offset(o), Duration::from_secs(10))
                    .map_err(|e| EngineError::kafka(format!("cannot rewind {}[{p}] to offset {o}", self.sources[*si].topic), e))?;
            }
            // Only an input with records to read again can reach a new end (and a new EOF).
            if input.next_offset != input.committed {
                input.at_end = false;
            }
            input.next_offset = input.committed;
        }
        self.start_cycle();
        Ok(())
    }

    /// Partitions were assigned: create their tasks and restore their state.
    pub fn assign(&mut self, tpl: &TopicPartitionList) -> Result<(), EngineError> {
        self.metrics.rebalances.with_label_values(&["assigned"]).inc();
        let mut added = Vec::new();
        for e in tpl.elements() {
            let Some(si) = self.source_index(e.topic()) else { continue };
            let key = (si, e.partition());
            if let std::collections::btree_map::Entry::Vacant(slot) = self.inputs.entry(key) {
                slot.insert(InputPartition::default());
                added.push(key);
            }
        }
        tracing::info!(partitions = added.len(), "assigned {} partition(s): {}", added.len(), describe(&self.sources, &added));
        for (si, p) in added {
            for qi in 0..self.plans.len() {
                if self.plans[qi].scan.source != self.sources[si].name {
                    continue;
                }
                if self.tasks[qi].get(p as usize).is_none_or(Option::is_some) {
                    continue;
                }
                let task = self.create_task(qi, si, p)?;
                self.tasks[qi][p as usize] = Some(task);
            }
        }
        self.update_assignment_gauge();
        self.status.set_ready(true);
        Ok(())
    }

    fn create_task(&mut self, qi: usize, si: usize, p: i32) -> Result<QueryTask, EngineError> {
        let plan = self.plans[qi].clone();
        let src = &self.sources[si];
        let late = match (&src.late_topic, &src.dead_letter_topic) {
            (Some(t), _) => LateRoute { topic: Some(t.clone()), kind: "late" },
            (None, Some(t)) => LateRoute { topic: Some(t.clone()), kind: "late" },
            (None, None) => LateRoute { topic: None, kind: "late" },
        };
        let stateful = !matches!(plan.body, crate::sql::PlanBody::Stateless { .. });
        let tree = if stateful { Some(self.store.tree(&format!("{}/aggregate/{p}", plan.name))?) } else { None };
        let slot = self.next_slot;
        self.next_slot += 1;
        let mut task = QueryTask::new(p, plan.clone(), tree, slot, late, &self.metrics);
        if stateful {
            self.status.restoring(1);
            let started = Instant::now();
            let result = self.restorer.restore(&mut task, &self.changelogs[qi], &self.writer);
            self.status.restoring(-1);
            let restored = result?;
            let n = restored.from_sled + restored.from_changelog;
            self.metrics.restore_records.with_label_values(&[&plan.name]).inc_by(n);
            self.metrics.restore_duration.with_label_values(&[&plan.name]).observe(started.elapsed().as_secs_f64());
            self.summary.restored_from_changelog += restored.from_changelog;
            self.summary.restored_from_sled += restored.from_sled;
            tracing::info!(
                query = %plan.name,
                partition = p,
                sled = restored.from_sled,
                changelog = restored.from_changelog,
                rebuilt = restored.wiped,
                "restored query {} partition {p}: {} entries from sled, {} from the changelog in {:?}",
                plan.name,
                restored.from_sled,
                restored.from_changelog,
                started.elapsed()
            );
        }
        Ok(task)
    }

    /// Partitions are being revoked: commit (or, when lost, abort) first, then drop them.
    pub fn revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        lost: bool,
    ) -> Result<(), EngineError> {
        self.metrics.rebalances.with_label_values(&[if lost { "lost" } else { "revoked" }]).inc();
        let r = if lost { self.abort_and_rewind(consumer) } else { self.advance().and_then(|()| self.commit(consumer)) };
        let mut removed = Vec::new();
        for e in tpl.elements() {
            let Some(si) = self.source_index(e.topic()) else { continue };
            if self.inputs.remove(&(si, e.partition())).is_some() {
                removed.push((si, e.partition()));
            }
            for qi in 0..self.plans.len() {
                if self.plans[qi].scan.source == self.sources[si].name {
                    if let Some(slot) = self.tasks[qi].get_mut(e.partition() as usize) {
                        if let Some(t) = slot.take() {
                            self.clear_task_metrics(&t);
                        }
                    }
                }
            }
        }
        tracing::info!(
            partitions = removed.len(),
            lost,
            "{} {} partition(s): {}",
            if lost { "lost" } else { "revoked" },
            removed.len(),
            describe(&self.sources, &removed)
        );
        self.update_assignment_gauge();
        r
    }

    fn update_assignment_gauge(&self) {
        for (si, s) in self.sources.iter().enumerate() {
            let n = self.inputs.keys().filter(|(i, _)| *i == si).count();
            self.metrics.assigned_partitions.with_label_values(&[&s.topic]).set(n as i64);
        }
    }

    fn clear_task_metrics(&self, t: &QueryTask) {
        let p = t.partition.to_string();
        let _ = self.metrics.watermark.remove_label_values(&[&t.plan.name, &p]);
        let _ = self.metrics.watermark_delay.remove_label_values(&[&t.plan.name, &p]);
        let _ = self.metrics.state_entries.remove_label_values(&[&t.plan.name, t.operator_name(), &p]);
        let _ = self.metrics.state_bytes.remove_label_values(&[&t.plan.name, t.operator_name(), &p]);
    }

    /// Metrics and /progress after a commit.
    fn publish(&mut self, process_time: Duration, commit_time: Duration) {
        let now_s = super::emit::now_millis() as f64 / 1000.0;
        for t in self.tasks.iter().flatten().flatten() {
            let p = t.partition.to_string();
            let wm = t.watermark();
            if wm != crate::time::NO_WATERMARK && wm != i64::MAX {
                let wm_s = wm as f64 / 1e6;
                self.metrics.watermark.with_label_values(&[&t.plan.name, &p]).set(wm_s);
                self.metrics.watermark_delay.with_label_values(&[&t.plan.name, &p]).set(now_s - wm_s);
            }
            if t.is_stateful() {
                self.metrics.state_entries.with_label_values(&[&t.plan.name, t.operator_name(), &p]).set(t.state_entries() as i64);
                self.metrics.state_bytes.with_label_values(&[&t.plan.name, t.operator_name(), &p]).set(t.state_bytes() as i64);
            }
        }
        for ((si, p), input) in &mut self.inputs {
            if input.consumed > 0 {
                self.metrics
                    .records_consumed
                    .with_label_values(&[&*self.sources[*si].topic, p.to_string().as_str()])
                    .inc_by(input.consumed);
            }
        }
        let progress = self.progress.record(&self.plans, &mut self.tasks, &self.inputs, &self.sources, process_time, commit_time);
        if let Ok(mut slot) = self.status.progress.lock() {
            *slot = progress;
        }
        for input in self.inputs.values_mut() {
            input.consumed = 0;
        }
    }
}

/// Sends an undecodable record to the dead-letter topic, or applies the source's policy.
fn dead_letter(
    src: &SourceRuntime,
    rec: &RecordRef<'_>,
    e: &crate::formats::DecodeError,
    em: &mut Emitter<'_>,
    metrics: &Metrics,
) -> Result<(), EngineError> {
    match (&src.dead_letter_topic, src.on_error) {
        (Some(topic), _) => {
            em.forward(topic, rec, e.kind.as_str(), &e.message, &src.query_names, None)?;
            metrics.dead_letter_records.with_label_values(&[&src.topic, "dead_lettered"]).inc();
            Ok(())
        }
        (None, ErrorPolicy::Skip) => {
            metrics.dead_letter_records.with_label_values(&[&src.topic, "skipped"]).inc();
            tracing::debug!(
                topic = rec.topic,
                partition = rec.partition,
                offset = rec.offset,
                "skipped a record that cannot be decoded: {e}"
            );
            Ok(())
        }
        (None, ErrorPolicy::Fail) => Err(EngineError::DecodeFailure {
            source_name: src.name.clone(),
            topic: rec.topic.to_string(),
            partition: rec.partition,
            offset: rec.offset,
            message: e.message.clone(),
        }),
    }
}

/// Retries a transactional call while its error is retriable (rdkafka's guidance).
fn retry<T>(mut f: impl FnMut() -> Result<T, KafkaError>) -> Result<T, KafkaError> {
    let mut delay = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if classify(&e) == ErrorClass::Retry && attempt < 8 => {
                tracing::debug!(error = %e, attempt, "retrying after a transient error: {e}");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn describe(sources: &[SourceRuntime], parts: &[(usize, i32)]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (si, p) in parts {
        by_topic.entry(&sources[*si].topic).or_default().push(*p);
    }
    by_topic.iter().map(|(t, ps)| format!("{t}{ps:?}")).collect::<Vec<_>>().join(", ")
}
