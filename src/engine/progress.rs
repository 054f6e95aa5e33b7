//! Builds `/progress` after each commit, modelled on Spark's `StreamingQueryProgress`
//! (schema: docs/progress.schema.json). Reads the engine's runtimes; writes nothing back but
//! the per-cycle task counters it consumes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::core::QueryRuntime;
use super::emit::{now_millis, watermark_text};
use super::ids::{InputId, Topics};
use super::source::{InputPartition, TopicRuntime};
use crate::metrics::progress::{Progress, QueryProgress, SinkProgress, SourceProgress, StateOperatorProgress};
use crate::time::{format_timestamp, NO_WATERMARK};

/// How long each phase of a commit cycle took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// The whole cycle before the commit began (polling included).
    pub cycle: Duration,
    /// Closing the cycle: update/complete output, markers and changelog records handed to the producer.
    pub produce: Duration,
    /// From the start of the commit to its end (produce included).
    pub commit: Duration,
}

/// Remembers what the previous commit reported.
pub struct ProgressTracker {
    app: String,
    run_id: String,
    batch_id: u64,
    last: Instant,
    /// Time spent waiting in `poll` during the current cycle (the main loop adds to it; a new
    /// cycle resets it).
    pub poll: Duration,
    /// Per query: topic → partition → committed offset at the previous report.
    last_offsets: BTreeMap<String, BTreeMap<String, BTreeMap<String, i64>>>,
}

impl ProgressTracker {
    pub fn new(app: &str) -> ProgressTracker {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let pid = std::process::id();
        ProgressTracker {
            app: app.to_string(),
            // UUID-shaped like Spark's runId; unique per start (time and process id).
            run_id: format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                (nanos >> 32) as u32,
                (nanos >> 16) as u16,
                (nanos as u16) & 0xfff,
                pid & 0xfff,
                ((u64::from(pid) << 20) ^ nanos as u64) & 0xffff_ffff_ffff
            ),
            batch_id: 0,
            last: Instant::now(),
            poll: Duration::ZERO,
            last_offsets: BTreeMap::new(),
        }
    }

    /// Builds every query's report for the commit that just ended and adds it to `progress`.
    pub fn record(
        &mut self,
        queries: &mut [QueryRuntime],
        inputs: &BTreeMap<InputId, InputPartition>,
        topics: &Topics<TopicRuntime>,
        phases: Phases,
        progress: &mut Progress,
    ) {
        let elapsed = self.last.elapsed();
        let since_last = elapsed.as_secs_f64().max(1e-6);
        self.last = Instant::now();
        self.batch_id += 1;
        let poll = std::mem::take(&mut self.poll).min(phases.cycle);
        let process = phases.cycle - poll;
        let busy = (process + phases.commit).as_secs_f64().max(1e-6);
        let mut now = String::new();
        format_timestamp(now_millis() * 1000, &mut now);
        let mut duration_ms = BTreeMap::new();
        duration_ms.insert("poll".to_string(), poll.as_millis() as u64);
        duration_ms.insert("process".to_string(), process.as_millis() as u64);
        duration_ms.insert("produce".to_string(), phases.produce.as_millis() as u64);
        duration_ms.insert("commit".to_string(), phases.commit.saturating_sub(phases.produce).as_millis() as u64);
        duration_ms.insert("triggerExecution".to_string(), (phases.cycle + phases.commit).as_millis() as u64);
        for q in queries.iter_mut() {
            let plan = q.plan.clone();
            let (mut output, mut late, mut written, mut removed, mut entries, mut bytes, mut tasks) = (0, 0, 0, 0, 0, 0, 0);
            let mut watermark = i64::MAX;
            for t in q.tasks.iter_mut().flatten() {
                output += t.stats.output;
                late += t.stats.late;
                written += t.stats.state_written;
                removed += t.stats.state_removed;
                entries += t.state_entries() as u64;
                bytes += t.state_bytes() as u64;
                tasks += 1;
                watermark = watermark.min(t.watermark());
                t.stats = Default::default();
            }
            let previous = self.last_offsets.remove(&plan.name).unwrap_or_default();
            let mut ends = BTreeMap::new();
            let mut sources = Vec::new();
            let mut seen = Vec::new();
            for &ti in &q.source_topic {
                if seen.contains(&ti) {
                    continue;
                }
                seen.push(ti);
                let topic = topics[ti].topic.to_string();
                let (mut rows, mut end) = (0, BTreeMap::new());
                for (id, i) in inputs.range(InputId::all_of(ti)) {
                    rows += i.sealed_consumed;
                    if let Some(o) = i.committed {
                        end.insert(id.partition.to_string(), o);
                    }
                }
                let start: BTreeMap<String, i64> = previous
                    .get(&topic)
                    .map(|prev| prev.iter().filter(|(p, _)| end.contains_key(*p)).map(|(p, o)| (p.clone(), *o)).collect())
                    .unwrap_or_default();
                ends.insert(topic.clone(), end.clone());
                sources.push(SourceProgress {
                    description: format!("KafkaV2[Subscribe[{topic}]]"),
                    start_offset: BTreeMap::from([(topic.clone(), start)]),
                    end_offset: BTreeMap::from([(topic, end)]),
                    num_input_rows: rows,
                    input_rows_per_second: rows as f64 / since_last,
                    processed_rows_per_second: rows as f64 / busy,
                });
            }
            self.last_offsets.insert(plan.name.clone(), ends);
            let input: u64 = sources.iter().map(|s| s.num_input_rows).sum();
            let mut event_time = BTreeMap::new();
            if watermark != i64::MAX && watermark != NO_WATERMARK {
                event_time.insert("watermark".to_string(), watermark_text(watermark));
            }
            let state_operators = if plan.is_stateful() {
                vec![StateOperatorProgress {
                    operator_name: plan.operator_name().to_string(),
                    num_rows_total: entries,
                    num_rows_updated: written,
                    num_rows_removed: removed,
                    num_rows_dropped_by_watermark: late,
                    memory_used_bytes: bytes,
                    num_state_store_instances: tasks,
                }]
            } else {
                Vec::new()
            };
            progress.update(QueryProgress {
                id: format!("{}/{}", self.app, plan.name),
                run_id: self.run_id.clone(),
                name: plan.name.clone(),
                timestamp: now.clone(),
                batch_id: self.batch_id,
                batch_duration: elapsed.as_millis() as u64,
                num_input_rows: input,
                input_rows_per_second: input as f64 / since_last,
                processed_rows_per_second: input as f64 / busy,
                duration_ms: duration_ms.clone(),
                event_time,
                state_operators,
                sources,
                sink: SinkProgress { description: format!("KafkaSink[{}]", plan.sink_topic), num_output_rows: output },
            });
        }
    }
}
