//! Partitions come and go with the consumer group. On assignment, the engine creates the
//! tasks whose inputs are now all here and restores their state; on revocation it commits
//! (or, when the partitions are already lost, aborts) before giving them up.

use std::collections::BTreeSet;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::TopicPartitionList;

use super::core::Engine;
use super::source::{InputPartition, TopicKind};
use super::EngineError;
use crate::runtime::clock::SideSpec;
use crate::runtime::prepare::PrepareTask;
use crate::runtime::task::{LateRoute, QueryTask};
use crate::sql::Exchange;

impl Engine {
    /// Partitions were assigned: create their tasks and restore their state.
    pub fn assign(&mut self, tpl: &TopicPartitionList) -> Result<(), EngineError> {
        self.metrics.rebalances.with_label_values(&["assigned"]).inc();
        self.assignment_epoch += 1;
        let mut added = BTreeSet::new();
        for e in tpl.elements() {
            let Some(ti) = self.topic_index(e.topic()) else { continue };
            let key = (ti, e.partition());
            if let std::collections::btree_map::Entry::Vacant(slot) = self.inputs.entry(key) {
                slot.insert(InputPartition { since_epoch: self.assignment_epoch, ..InputPartition::default() });
                added.insert(key);
            }
        }
        tracing::info!(partitions = added.len(), "assigned {} partition(s): {}", added.len(), self.describe(&added));
        for qi in 0..self.queries.len() {
            self.create_prepare_tasks(qi, &added);
            let candidates: BTreeSet<i32> = added
                .iter()
                .filter(|(ti, _)| self.queries[qi].source_topic.contains(ti) || self.queries[qi].repartition.contains(&Some(*ti)))
                .map(|(_, p)| *p)
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
        self.status.set_ready(true);
        Ok(())
    }

    /// The inputs task (query, p) reads, per side.
    fn task_inputs(&self, qi: usize, p: i32) -> Vec<(usize, i32)> {
        let q = &self.queries[qi];
        (0..q.source_topic.len()).map(|side| (q.repartition[side].unwrap_or(q.source_topic[side]), p)).collect()
    }

    fn task_inputs_present(&self, qi: usize, p: i32) -> bool {
        self.task_inputs(qi, p).iter().all(|k| self.inputs.contains_key(k))
    }

    fn create_prepare_tasks(&mut self, qi: usize, added: &BTreeSet<(usize, i32)>) {
        let q = &self.queries[qi];
        let mut created = Vec::new();
        for (side, rep) in q.repartition.iter().enumerate() {
            let Some(rep) = rep else { continue };
            let source = q.source_topic[side];
            for &(ti, p) in added {
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
        self.assignment_epoch += 1;
        let r = if lost { self.abort_and_rewind(consumer) } else { self.advance().and_then(|()| self.commit(consumer)) };
        let mut removed = BTreeSet::new();
        for e in tpl.elements() {
            let Some(ti) = self.topic_index(e.topic()) else { continue };
            if self.inputs.remove(&(ti, e.partition())).is_some() {
                let _ = self.metrics.consumer_lag.remove_label_values(&[e.topic(), &e.partition().to_string()]);
                removed.insert((ti, e.partition()));
            }
        }
        for qi in 0..self.queries.len() {
            for p in 0..self.queries[qi].tasks.len() as i32 {
                if self.queries[qi].tasks[p as usize].is_some() && self.task_inputs(qi, p).iter().any(|k| removed.contains(k)) {
                    if let Some(t) = self.queries[qi].tasks[p as usize].take() {
                        self.clear_task_metrics(&t);
                    }
                }
            }
            for side in 0..self.queries[qi].prepare.len() {
                let source = self.queries[qi].source_topic[side];
                for p in 0..self.queries[qi].prepare[side].len() {
                    if removed.contains(&(source, p as i32)) {
                        self.queries[qi].prepare[side][p] = None;
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
            self.describe(&removed)
        );
        self.update_assignment_gauge();
        r
    }

    fn update_assignment_gauge(&self) {
        for (ti, t) in self.topics.iter().enumerate() {
            if matches!(t.kind, TopicKind::Source { .. }) {
                let n = self.inputs.keys().filter(|(i, _)| *i == ti).count();
                self.metrics.assigned_partitions.with_label_values(&[&t.topic]).set(n as i64);
            }
        }
    }

    fn clear_task_metrics(&self, t: &QueryTask) {
        let p = t.partition.to_string();
        let _ = self.metrics.watermark.remove_label_values(&[&t.plan.name, &p]);
        let _ = self.metrics.watermark_delay.remove_label_values(&[&t.plan.name, &p]);
        let _ = self.metrics.state_entries.remove_label_values(&[&t.plan.name, t.operator_name(), &p]);
        let _ = self.metrics.state_bytes.remove_label_values(&[&t.plan.name, t.operator_name(), &p]);
    }

    fn describe(&self, parts: &BTreeSet<(usize, i32)>) -> String {
        let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
        for (ti, p) in parts {
            by_topic.entry(&self.topics[*ti].topic).or_default().push(*p);
        }
        by_topic.iter().map(|(t, ps)| format!("{t}{ps:?}")).collect::<Vec<_>>().join(", ")
    }
}
