//! Builds `/progress` after each commit, modelled on Spark's `StreamingQueryProgress`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::core::QueryRuntime;
use super::emit::{now_millis, watermark_text};
use super::source::{InputPartition, TopicRuntime};
use crate::metrics::progress::{Progress, QueryProgress, SinkProgress, SourceProgress, StateOperatorProgress};
use crate::time::{format_timestamp, NO_WATERMARK};

/// Remembers what the previous commit reported.
pub struct ProgressTracker {
    app: String,
    run_id: String,
    batch_id: u64,
    last: Instant,
    last_offsets: BTreeMap<String, BTreeMap<String, i64>>,
}

impl ProgressTracker {
    pub fn new(app: &str) -> ProgressTracker {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        ProgressTracker {
            app: app.to_string(),
            run_id: format!("{:016x}-{:08x}", nanos as u64, std::process::id()),
            batch_id: 0,
            last: Instant::now(),
            last_offsets: BTreeMap::new(),
        }
    }

    pub fn record(
        &mut self,
        queries: &mut [QueryRuntime],
        inputs: &BTreeMap<(usize, i32), InputPartition>,
        topics: &[TopicRuntime],
        process_time: Duration,
        commit_time: Duration,
    ) -> Progress {
        let elapsed = self.last.elapsed().as_secs_f64().max(1e-6);
        self.last = Instant::now();
        self.batch_id += 1;
        let mut now = String::new();
        format_timestamp(now_millis() * 1000, &mut now);
        let mut progress = Progress::default();
        for q in queries.iter_mut() {
            let plan = q.plan.clone();
            let (mut input, mut output, mut late, mut updated, mut entries, mut bytes) = (0, 0, 0, 0, 0, 0);
            let mut watermark = i64::MAX;
            let operator = plan.operator_name();
            for t in q.tasks.iter_mut().flatten() {
                input += t.stats.input;
                output += t.stats.output;
                late += t.stats.late;
                updated += t.stats.updated;
                entries += t.state_entries() as u64;
                bytes += t.state_bytes() as u64;
                watermark = watermark.min(t.watermark());
                t.stats = Default::default();
            }
            let mut end_offset = BTreeMap::new();
            for ((ti, p), i) in inputs {
                if q.source_topic.contains(ti) {
                    if let Some(o) = i.committed {
                        end_offset.insert(format!("{}/{p}", topics[*ti].topic), o);
                    }
                }
            }
            let start_offset = self.last_offsets.insert(plan.name.clone(), end_offset.clone()).unwrap_or_default();
            let mut event_time = BTreeMap::new();
            if watermark != i64::MAX && watermark != NO_WATERMARK {
                event_time.insert("watermark".to_string(), watermark_text(watermark));
            }
            let mut duration_ms = BTreeMap::new();
            duration_ms.insert("process".to_string(), process_time.as_millis() as u64);
            duration_ms.insert("commit".to_string(), commit_time.as_millis() as u64);
            duration_ms.insert("triggerExecution".to_string(), (process_time + commit_time).as_millis() as u64);
            let processing = (process_time + commit_time).as_secs_f64().max(1e-6);
            let state_operators = if !plan.is_stateful() {
                Vec::new()
            } else {
                vec![StateOperatorProgress {
                    operator_name: operator.to_string(),
                    num_rows_total: entries,
                    num_rows_updated: updated,
                    num_rows_dropped_by_watermark: late,
                    memory_used_bytes: bytes,
                }]
            };
            progress.queries.insert(
                plan.name.clone(),
                QueryProgress {
                    id: format!("{}/{}", self.app, plan.name),
                    run_id: self.run_id.clone(),
                    name: plan.name.clone(),
                    batch_id: self.batch_id,
                    timestamp: now.clone(),
                    num_input_rows: input,
                    input_rows_per_second: input as f64 / elapsed,
                    processed_rows_per_second: input as f64 / processing,
                    duration_ms,
                    event_time,
                    state_operators,
                    sources: vec![SourceProgress {
                        description: format!(
                            "KafkaV2[Subscribe[{}]]",
                            plan.inputs.iter().map(|i| i.scan.topic.as_str()).collect::<Vec<_>>().join(",")
                        ),
                        start_offset,
                        end_offset,
                        num_input_rows: input,
                    }],
                    sink: SinkProgress { description: format!("KafkaSink[{}]", plan.sink_topic), num_output_rows: output },
                },
            );
        }
        progress
    }
}
