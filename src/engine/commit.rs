//! The commit cycle and what a failure of it means: ends a cycle (sink, repartition and
//! changelog records plus the input offsets in one transaction, then the same state changes
//! into sled), aborts and rewinds on a recoverable failure, and names the cause of one that
//! is not (a transaction that outlived its timeout, a true second instance, a consumer that
//! lost its group). Errors are told apart by their codes only. Part of the engine; depends on
//! the Kafka clients, the runtime and state.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::committer::{retry, CommitError, CommitResult, Sealed};
use super::core::{Engine, QueryRuntime};
use super::emit::{EngineOut, Txn};
use super::events::{AbortReason, InternalEvent, RepartitionPurgeFailed, TransactionAborted, TransactionCommitted};
use super::ids::TaskId;
use super::progress::Phases;
use super::source::TopicKind;
use super::EngineError;
use crate::kafka::{classify, ErrorClass};
use crate::runtime::task::Ctx;
use crate::runtime::{Out, OutKind, Outgoing, RuntimeError, Tables};
use crate::state::{Changes, TreeChanges};

/// How a failed commit cycle ends.
enum Failure {
    /// Abort the transaction and rewind to the last commit.
    Abort(EngineError),
    /// Stop this run of the engine (the supervisor decides whether to start another).
    Fatal(EngineError),
}

impl Engine {
    /// Ends the commit cycle and waits for its commit: when this returns Ok, everything
    /// processed so far is committed. Recoverable failures abort and rewind; only fatal ones
    /// return.
    pub fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        self.commit_async(consumer)?;
        self.await_commit(consumer)
    }

    /// Ends the commit cycle without waiting for its commit (exactly once): the cycle is
    /// sealed and its transaction committed on the committer thread while the engine goes on
    /// with the next one, whose records are held until then. A commit still in flight is
    /// waited for first: one at a time.
    pub fn commit_async<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        self.await_commit(consumer)?;
        match self.seal(consumer) {
            Ok(None) => Ok(()),
            Ok(Some(sealed)) if sealed.reply.is_some() => {
                self.in_flight = Some(sealed);
                Ok(())
            }
            Ok(Some(sealed)) => self.finish(sealed, Ok(()), consumer),
            Err(f) => self.handle(f, consumer),
        }
    }

    /// Waits for the commit in flight, if any, and completes it.
    pub fn await_commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        let Some(mut sealed) = self.in_flight.take() else { return Ok(()) };
        let result = sealed.wait();
        self.finish(sealed, result, consumer)
    }

    /// Completes the commit in flight if its outcome is in; never waits.
    pub fn poll_commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        let Some(result) = self.in_flight.as_mut().and_then(Sealed::try_result) else { return Ok(()) };
        match self.in_flight.take() {
            Some(sealed) => self.finish(sealed, result, consumer),
            None => Ok(()),
        }
    }

    /// True while a sealed cycle's commit is in flight.
    pub fn committing(&self) -> bool {
        self.in_flight.is_some()
    }

    fn finish<C: ConsumerContext>(&mut self, sealed: Sealed, result: CommitResult, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        match self.complete(sealed, result, true) {
            Ok(()) => Ok(()),
            Err(f) => self.handle(f, consumer),
        }
    }

    fn handle<C: ConsumerContext>(&mut self, f: Failure, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        match f {
            Failure::Fatal(e) => Err(e),
            Failure::Abort(e) => self.abort_and_rewind(consumer, AbortReason::CommitFailed(&e)),
        }
    }

    /// Handles an error raised while processing: abort and rewind, or stop.
    pub fn recover<C: ConsumerContext>(&mut self, e: EngineError, consumer: &BaseConsumer<C>) -> Result<(), EngineError> {
        match self.failure(e) {
            Failure::Fatal(e) => Err(e),
            Failure::Abort(e) => self.abort_and_rewind(consumer, AbortReason::ProcessingFailed(&e)),
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

    /// A fatal consumer error: another member with our `group.instance.id` (static
    /// membership) is a second instance; anything else a consumer to recreate.
    pub fn consumer_fatal(&self, source: KafkaError) -> EngineError {
        if source.rdkafka_error_code() == Some(RDKafkaErrorCode::FencedInstanceId) {
            let identity =
                format!("instance id {} (its static group membership; transactional id {})", self.opts.instance_id, self.transactional_id);
            return EngineError::DuplicateInstance { identity, source };
        }
        EngineError::ConsumerFatal { source }
    }

    /// A Kafka error the commit cycle cannot absorb. A fenced producer is told apart by
    /// the age of its transaction: the coordinator fences a transaction that outlived the
    /// transaction timeout itself (it aborts it and bumps the epoch); a younger one was
    /// fenced by another producer that initialised our transactional id.
    pub(super) fn fatal_kafka(&self, context: String, source: KafkaError) -> EngineError {
        let code = match &source {
            KafkaError::Transaction(rd) => Some(rd.code()),
            other => other.rdkafka_error_code(),
        };
        // A generic fatal code stands for the producer's own fatal error: judge that one.
        let code = match code {
            Some(RDKafkaErrorCode::Fatal) => self.producer.fatal_error().or(code),
            other => other,
        };
        let fenced =
            matches!(code, Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch | RDKafkaErrorCode::Fenced));
        if !fenced || !self.exactly_once {
            return EngineError::Kafka { context, source };
        }
        let age = self.txn.opened_at.map(|t| t.elapsed()).unwrap_or_default();
        if age >= self.transaction_timeout {
            EngineError::TransactionTimedOut { transactional_id: self.transactional_id.clone(), age, source }
        } else {
            let identity = format!("instance id {} (transactional id {})", self.opts.instance_id, self.transactional_id);
            EngineError::DuplicateInstance { identity, source }
        }
    }

    /// How long a commit's calls may be retried: until the open transaction reaches the
    /// transaction timeout (at least a second).
    fn retry_for(&self) -> Duration {
        let age = self.txn.opened_at.map(|t| t.elapsed()).unwrap_or_default();
        self.transaction_timeout.saturating_sub(age).max(Duration::from_secs(1))
    }

    /// Ends the cycle: its closing output and changelog go into its transaction, and (exactly
    /// once) its commit starts on the committer thread; at least once, its records are flushed
    /// and its offsets committed here. `None` when there was nothing to commit.
    fn seal<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<Option<Sealed>, Failure> {
        let started = Instant::now();
        let process_time = self.cycle_start.elapsed();
        let mut pending: Vec<(TaskId, Changes)> = Vec::new();
        let result = {
            let Engine { queries, producer, txn, tables, clock, .. } = &mut *self;
            let mut out = EngineOut::new(producer, txn);
            let r = emit_cycle_end(queries, &mut out, *clock, &*tables, &mut pending);
            r.map_err(|e| out.error(e))
        };
        let produce_time = started.elapsed();
        if let Err(e) = result {
            return Err(self.failure(e));
        }
        let mut offsets = TopicPartitionList::new();
        let mut committing = Vec::new();
        for (id, input) in &self.inputs {
            if let Some(o) = input.uncommitted() {
                let _ = offsets.add_partition_offset(&self.topics[id.topic].topic, id.partition, Offset::Offset(o));
                committing.push((*id, o));
            }
        }
        if !self.txn.open && offsets.count() == 0 && pending.is_empty() {
            self.start_cycle();
            return Ok(None);
        }
        self.cycles += 1;
        let inject = self
            .opts
            .inject_abort_every
            .is_some_and(|n| n > 0 && self.cycles.is_multiple_of(n))
            .then(|| format!("fault injection: aborting commit cycle {}", self.cycles));
        if let (Some(why), false) = (&inject, self.exactly_once) {
            // The worst case: the cycle's records are on the broker when it fails.
            let _ = self.producer.flush();
            return Err(Failure::Abort(EngineError::Setup(why.clone())));
        }
        let mut reply = None;
        if self.exactly_once {
            if !self.txn.open {
                self.producer.begin().map_err(|e| self.failure(EngineError::kafka("cannot begin a transaction", e)))?;
                self.txn.open = true;
                self.txn.opened_at = Some(Instant::now());
            }
            let group = match offsets.count() {
                0 => None,
                _ => Some(
                    consumer
                        .group_metadata()
                        .ok_or_else(|| Failure::Abort(EngineError::Setup("the consumer has no group metadata yet".into())))?,
                ),
            };
            // Injected, the commit fails on the committer thread while the next cycle runs.
            reply = Some(self.committer.submit(offsets, group, self.retry_for(), inject));
        } else {
            retry(self.retry_for(), || self.producer.flush())
                .map_err(|e| self.failure(EngineError::kafka("cannot flush the producer", e)))?;
            if let Some(e) = self.producer.take_log_error() {
                return Err(self.failure(EngineError::kafka("a record could not be delivered", e)));
            }
            if offsets.count() > 0 {
                consumer
                    .commit(&offsets, CommitMode::Sync)
                    .map_err(|e| self.failure(EngineError::kafka("cannot commit the input offsets", e)))?;
            }
        }
        for q in self.queries.iter_mut() {
            for p in q.prepare.iter_mut().flatten().flatten() {
                p.seal();
            }
            for t in q.tasks.iter_mut().flatten() {
                t.seal();
            }
        }
        for input in self.inputs.values_mut() {
            input.sealed_consumed += std::mem::take(&mut input.consumed);
        }
        let txn = std::mem::take(&mut self.txn);
        if reply.is_some() {
            self.txn.held = Some(Vec::new());
        }
        self.start_cycle();
        Ok(Some(Sealed { reply, txn, offsets: committing, pending, sealed_at: started, process_time, produce_time }))
    }

    /// A sealed cycle's outcome. Committed: sled gets its state changes, its offsets count as
    /// committed, its metrics are published, and (with `release`) the records held meanwhile
    /// open the next transaction. Failed: its transaction, still open, is what the abort that
    /// follows aborts, and the held records go with it.
    fn complete(&mut self, sealed: Sealed, result: CommitResult, release: bool) -> Result<(), Failure> {
        let Sealed { txn, offsets, pending, sealed_at, process_time, produce_time, .. } = sealed;
        match result {
            Ok(()) => {}
            Err(CommitError::Kafka(context, e)) => {
                self.txn = txn;
                return Err(self.failure(EngineError::kafka(context, e)));
            }
            Err(CommitError::Injected(why)) => {
                self.txn = txn;
                return Err(Failure::Abort(EngineError::Setup(why)));
            }
        }
        let log = self.producer.take_log();
        // Kafka has the changes; now sled gets the same ones, with the changelog offset
        // reached, as one job (readers of the result tables see the whole cycle or none of it).
        let mut job = Vec::with_capacity(pending.len());
        for (id, changes) in pending {
            let Some(Some(task)) = self.queries[id.query].tasks.get(id.partition as usize) else { continue };
            let Some(tree) = &task.tree else { continue };
            let changelog_offset = log.changelog_ends.get(&task.slot).copied();
            job.push(TreeChanges { tree: tree.clone(), changes, changelog_offset });
        }
        self.writer.apply_all(job).map_err(|e| Failure::Fatal(e.into()))?;
        for (key, offset) in offsets {
            if let Some(input) = self.inputs.get_mut(&key) {
                input.committed = Some(offset);
            }
        }
        for q in self.queries.iter_mut() {
            for p in q.prepare.iter_mut().flatten().flatten() {
                p.committed();
            }
            for t in q.tasks.iter_mut().flatten() {
                t.committed();
            }
        }
        if txn.internal > 0 {
            // Records went to these repartition topic partitions: their ends moved (and only
            // theirs: a partition that got nothing sees no new end to report).
            let touched = &txn.internal_partitions;
            for (id, input) in self.inputs.iter_mut() {
                let topic = &self.topics[id.topic];
                if matches!(topic.kind, TopicKind::Repartition { .. })
                    && touched.iter().any(|(t, q)| *q == id.partition && **t == *topic.topic)
                {
                    input.at_end = false;
                }
            }
        }
        let commit_time = sealed_at.elapsed();
        TransactionCommitted { duration: commit_time }.emit(&self.metrics);
        self.summary.commits += 1;
        self.summary.records_out += txn.output;
        self.publish(Phases { cycle: process_time, produce: produce_time, commit: commit_time });
        self.purge_repartition_topics(false);
        if release {
            self.release_held()
        } else {
            self.txn.held = None;
            Ok(())
        }
    }

    /// Sends the records held while the last commit was in flight, opening the transaction
    /// of the cycle they belong to.
    fn release_held(&mut self) -> Result<(), Failure> {
        let Some(held) = self.txn.held.take() else { return Ok(()) };
        let failed = {
            let Engine { producer, txn, .. } = &mut *self;
            let mut out = EngineOut::new(producer, txn);
            held.iter().find_map(|h| h.with(|r| out.produce(r)).err())
        };
        match failed {
            Some(e) => Err(self.failure(e)),
            None => Ok(()),
        }
    }

    fn start_cycle(&mut self) {
        self.cycle_start = Instant::now();
        self.cycle_records = 0;
        self.progress.poll = Duration::ZERO;
    }

    /// Deletes repartition records every owner has committed past (DeleteRecords), so
    /// repartition topics hold only unprocessed data: every 10 s, and `now` at a clean stop.
    pub(super) fn purge_repartition_topics(&mut self, now: bool) {
        if !now && self.last_purge.elapsed() < Duration::from_secs(10) {
            return;
        }
        self.last_purge = Instant::now();
        let mut tpl = TopicPartitionList::new();
        for (id, input) in self.inputs.iter_mut() {
            if !matches!(self.topics[id.topic].kind, TopicKind::Repartition { .. }) {
                continue;
            }
            if let Some(c) = input.committed {
                if input.purged.is_none_or(|done| c > done) {
                    let _ = tpl.add_partition_offset(&self.topics[id.topic].topic, id.partition, Offset::Offset(c));
                    input.purged = Some(c);
                }
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.admin.delete_records(&tpl) {
                RepartitionPurgeFailed { error: &e }.emit(&self.metrics);
            }
        }
    }

    /// Aborts the open transaction, drops uncommitted state, and seeks every input back.
    /// A commit still in flight is waited for: committed, it stands (only the cycles after it
    /// are dropped); failed, its transaction is aborted with the rest.
    pub fn abort_and_rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, reason: AbortReason<'_>) -> Result<(), EngineError> {
        TransactionAborted { reason }.emit(&self.metrics);
        if let Some(mut sealed) = self.in_flight.take() {
            let result = sealed.wait();
            if let Err(Failure::Fatal(e)) = self.complete(sealed, result, false) {
                return Err(e);
            }
        }
        if self.exactly_once && self.txn.open {
            if let Err(e) = self.producer.abort() {
                // A producer that cannot abort cannot be trusted with another transaction; a
                // restart fences it and aborts the transaction on the broker.
                return Err(self.fatal_kafka("cannot abort the transaction".into(), e));
            }
        }
        let _ = self.producer.take_log();
        self.txn = Txn::default();
        self.summary.aborts += 1;
        self.writer.drain()?;
        for q in &mut self.queries {
            for t in q.tasks.iter_mut().flatten() {
                t.clear();
                if let Some(tree) = t.tree.clone() {
                    let name = tree.name().to_string();
                    tree.for_each(|k, v| t.restore(k, Some(v)).map_err(|source| EngineError::Restore { tree: name.clone(), source }))?;
                }
            }
            for p in q.prepare.iter_mut().flatten().flatten() {
                p.aborted();
            }
        }
        for (id, input) in self.inputs.iter_mut() {
            if let Some(o) = input.rewind_to() {
                let (topic, p) = (&self.topics[id.topic].topic, id.partition);
                consumer
                    .seek(topic, p, Offset::Offset(o), Duration::from_secs(10))
                    .map_err(|e| EngineError::kafka(format!("cannot rewind {topic}[{p}] to offset {o}"), e))?;
            }
            // Only an input with records to read again can reach a new end (and a new EOF).
            if input.next_offset != input.committed {
                input.at_end = false;
            }
            input.next_offset = input.committed;
            // Records of the aborted cycles are read again; count them once, when committed.
            input.consumed = 0;
            input.sealed_consumed = 0;
        }
        self.start_cycle();
        Ok(())
    }

    /// Metrics and /progress after a commit.
    fn publish(&mut self, phases: Phases) {
        let now_ms = super::emit::now_millis();
        for t in self.queries.iter_mut().flat_map(|q| q.tasks.iter_mut().flatten()) {
            t.publish_metrics(now_ms);
        }
        for input in self.inputs.values() {
            if input.sealed_consumed > 0 {
                input.series.consumed(input.sealed_consumed);
            }
        }
        if let Ok(mut progress) = self.status.progress.lock() {
            self.progress.record(&mut self.queries, &self.inputs, &self.topics, phases, &mut progress);
        }
        for input in self.inputs.values_mut() {
            input.sealed_consumed = 0;
        }
    }
}

/// The end of a cycle inside the transaction: markers, update/complete output, changelog.
fn emit_cycle_end(
    queries: &mut [QueryRuntime],
    out: &mut EngineOut<'_>,
    now: Instant,
    tables: &dyn Tables,
    pending: &mut Vec<(TaskId, Changes)>,
) -> Result<(), RuntimeError> {
    for (q, runtime) in queries.iter_mut().enumerate() {
        for p in runtime.prepare.iter_mut().flatten().flatten() {
            p.send_markers(now, out)?;
        }
        for t in runtime.tasks.iter_mut().flatten() {
            t.on_commit(&mut Ctx { out, now, tables })?;
            if t.tree.is_none() {
                continue;
            }
            let mut changes: Changes = Vec::new();
            t.take_changes(&mut |k, v| changes.push((k.to_vec(), v.map(<[u8]>::to_vec))));
            for (k, v) in &changes {
                out.send(&Outgoing {
                    topic: &runtime.changelog,
                    partition: Some(t.partition),
                    key: Some(k),
                    payload: v.as_deref(),
                    headers: &[],
                    timestamp: None,
                    slot: t.slot,
                    kind: OutKind::Changelog,
                })?;
            }
            if !changes.is_empty() {
                pending.push((TaskId { query: q, partition: t.partition }, changes));
            }
        }
    }
    Ok(())
}
