//! Partitions come and go with the consumer group. On assignment, the engine creates the
//! tasks whose inputs are now all here and restores their state; on revocation it commits
//! (or, when the partitions are already lost, aborts) before giving them up.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::TopicPartitionList;

use super::core::Engine;
use super::events::{AbortReason, InternalEvent, PartitionsAssigned, PartitionsRevoked, TaskRestored};
use super::ids::InputId;
use super::source::{InputPartition, TopicKind};
use super::EngineError;
use crate::metrics::InputSeries;
use crate::runtime::clock::SideSpec;
use crate::runtime::prepare::PrepareTask;
use crate::runtime::task::{LateRoute, QueryTask};
use crate::sql::Exchange;

impl Engine {
    /// Partitions were assigned: create their tasks and restore their state.
    /// `lags` holds the lag of each partition measured before (topic, partition → records).
    pub fn assign(&mut self, tpl: &TopicPartitionList, lags: &HashMap<(String, i32), i64>) -> Result<(), EngineError> {
        self.assignment_epoch += 1;
        let mut added = BTreeSet::new();
        for e in tpl.elements() {
            let Some(ti) = self.topic_index(e.topic()) else { continue };
            let key = InputId::new(ti, e.partition());
            if let std::collections::btree_map::Entry::Vacant(slot) = self.inputs.entry(key) {
                let source = matches!(self.topics[ti].kind, TopicKind::Source { .. });
                let series = InputSeries::new(&self.metrics, e.topic(), e.partition(), source);
                if let Some(&records) = lags.get(&(e.topic().to_string(), e.partition())) {
                    series.set_lag(records);
                }
                slot.insert(InputPartition::new(self.assignment_epoch, series));
                added.insert(key);
            }
        }
        PartitionsAssigned { count: added.len(), described: &self.describe(&added) }.emit(&self.metrics);
        for qi in 0..self.queries.len() {
            self.create_prepare_tasks(qi, &added);
            let candidates: BTreeSet<i32> = added
                .iter()
                .filter(|id| self.queries[qi].source_topic.contains(&id.topic) || self.queries[qi].repartition.contains(&Some(id.topic)))
                .map(|id| id.partition)
                .collect();
            for p in candidates {
                if self.queries[qi].tasks.get(p as usize).is_none_or(Option::is_some) || !self.task_inputs_present(qi, p) {
                    continue;
                }
                let task = self.create_task(qi, p)?;
                self.queries[qi].tasks[p as usize] = Some(task);
            }
        }
        self.update_assignment_gauge();
        self.publish_tables();
        self.status.set_ready(true);
        Ok(())
    }

    /// The inputs task (query, p) reads, per side.
    fn task_inputs(&self, qi: usize, p: i32) -> Vec<InputId> {
        let q = &self.queries[qi];
        (0..q.source_topic.len()).map(|side| InputId::new(q.repartition[side].unwrap_or(q.source_topic[side]), p)).collect()
    }

    fn task_inputs_present(&self, qi: usize, p: i32) -> bool {
        self.task_inputs(qi, p).iter().all(|k| self.inputs.contains_key(k))
    }

    fn create_prepare_tasks(&mut self, qi: usize, added: &BTreeSet<InputId>) {
        let q = &self.queries[qi];
        let mut created = Vec::new();
        for (side, rep) in q.repartition.iter().enumerate() {
            let Some(rep) = rep else { continue };
            let source = q.source_topic[side];
            for &InputId { topic: ti, partition: p } in added {
                if ti != source || q.prepare[side].get(p as usize).is_none_or(Option::is_some) {
                    continue;
                }
                let topic = &self.topics[source];
                let carry = matches!(&topic.kind, TopicKind::Source { late_topic, dead_letter_topic, .. } if late_topic.is_some() || dead_letter_topic.is_some());
                let task = PrepareTask::new(
                    p,
                    topic.partitions,
                    &q.plan.inputs[side],
                    self.topics[*rep].topic.clone(),
                    self.topics[*rep].partitions,
                    carry,
                );
                created.push((side, p, task));
            }
        }
        for (side, p, task) in created {
            self.queries[qi].prepare[side][p as usize] = Some(task);
        }
    }

    fn create_task(&mut self, qi: usize, p: i32) -> Result<QueryTask, EngineError> {
        let q = &self.queries[qi];
        let plan = q.plan.clone();
        let specs: Vec<SideSpec> = plan
            .inputs
            .iter()
            .enumerate()
            .map(|(side, input)| match input.exchange {
                Exchange::Local => {
                    SideSpec::Local { delay: input.scan.watermark_delay.unwrap_or(0), idle_timeout: input.scan.idle_timeout }
                }
                Exchange::Repartition { .. } => SideSpec::Remote { upstreams: q.upstreams[side] },
            })
            .collect();
        let late: Vec<LateRoute> = q
            .source_topic
            .iter()
            .map(|&ti| match &self.topics[ti].kind {
                TopicKind::Source { late_topic, dead_letter_topic, .. } => {
                    LateRoute { topic: late_topic.clone().or_else(|| dead_letter_topic.clone()), dead_letter: dead_letter_topic.clone() }
                }
                TopicKind::Repartition { .. } => LateRoute::default(),
            })
            .collect();
        let stateful = plan.is_stateful();
        let tree = if stateful { Some(self.store.tree(&crate::names::state_tree(&plan.name, plan.operator_name(), p))?) } else { None };
        let slot = self.next_slot;
        self.next_slot += 1;
        let mut task = QueryTask::new(p, plan.clone(), specs, q.table, tree, slot, late, &self.metrics);
        if let Some(encoder) = self.queries[qi].encoder.clone() {
            task.set_encoder(encoder);
        }
        if let Some(f) = &self.queries[qi].feed {
            let upstream = (f.upstream_offset + p as usize) as i32;
            task.set_feed(PrepareTask::feed(upstream, f.upstreams, &f.input, f.topic.clone(), f.partitions));
        }
        if stateful {
            self.status.restoring(1);
            let started = Instant::now();
            let result = self.restorer.restore(&mut task, &self.queries[qi].changelog, &self.writer);
            self.status.restoring(-1);
            let restored = result?;
            self.summary.restored_from_changelog += restored.from_changelog;
            self.summary.restored_from_sled += restored.from_sled;
            TaskRestored {
                query: &plan.name,
                partition: p,
                from_sled: restored.from_sled,
                from_changelog: restored.from_changelog,
                rebuilt: restored.wiped,
                elapsed: started.elapsed(),
            }
            .emit(&self.metrics);
        }
        Ok(task)
    }

    /// Partitions are being revoked: commit (or, when lost, abort) first, then drop them;
    /// after the run failed, neither (see `Engine::failed`).
    pub fn revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        lost: bool,
    ) -> Result<(), EngineError> {
        self.assignment_epoch += 1;
        let r = if self.failed {
            // The run ended in a failure: its uncommitted work goes with it, uncommitted.
            Ok(())
        } else if lost {
            self.abort_and_rewind(consumer, AbortReason::PartitionsLost)
        } else {
            self.advance().and_then(|()| self.commit(consumer))
        };
        let mut removed = BTreeSet::new();
        for e in tpl.elements() {
            let Some(ti) = self.topic_index(e.topic()) else { continue };
            // Dropping the input removes its series.
            if self.inputs.remove(&InputId::new(ti, e.partition())).is_some() {
                removed.insert(InputId::new(ti, e.partition()));
            }
        }
        for qi in 0..self.queries.len() {
            for p in 0..self.queries[qi].tasks.len() as i32 {
                if self.queries[qi].tasks[p as usize].is_some() && self.task_inputs(qi, p).iter().any(|k| removed.contains(k)) {
                    // Dropping the task removes its series.
                    self.queries[qi].tasks[p as usize] = None;
                }
            }
            for side in 0..self.queries[qi].prepare.len() {
                let source = self.queries[qi].source_topic[side];
                for p in 0..self.queries[qi].prepare[side].len() {
                    if removed.contains(&InputId::new(source, p as i32)) {
                        self.queries[qi].prepare[side][p] = None;
                    }
                }
            }
        }
        PartitionsRevoked { lost, count: removed.len(), described: &self.describe(&removed) }.emit(&self.metrics);
        self.update_assignment_gauge();
        self.publish_tables();
        r
    }

    fn update_assignment_gauge(&self) {
        for (ti, t) in self.topics.iter() {
            if matches!(t.kind, TopicKind::Source { .. }) {
                let n = self.inputs.range(InputId::all_of(ti)).count();
                self.metrics.assigned_partitions.with_label_values(&[&t.topic]).set(n as i64);
            }
        }
    }

    fn describe(&self, parts: &BTreeSet<InputId>) -> String {
        let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
        for id in parts {
            by_topic.entry(&self.topics[id.topic].topic).or_default().push(id.partition);
        }
        by_topic.iter().map(|(t, ps)| format!("{t}{ps:?}")).collect::<Vec<_>>().join(", ")
    }
}
