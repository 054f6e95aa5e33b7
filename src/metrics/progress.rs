//! `/progress`: per-query progress modelled on Spark's `StreamingQuery.lastProgress` and
//! `recentProgress`. The JSON shape is a documented contract: docs/progress.schema.json.
//! Plain data with serde; the engine fills it in (src/engine/progress.rs).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// How many reports `recentProgress` keeps per query (Spark keeps 100 by default; eddy commits
/// every 100 ms, so 20 cover the last couple of seconds without bloating the response).
pub const RECENT: usize = 20;

/// The JSON document served at /progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Progress {
    /// The last report per query, by query name (Spark's `lastProgress`).
    pub queries: BTreeMap<String, QueryProgress>,
    /// The last [`RECENT`] reports per query, oldest first (Spark's `recentProgress`).
    pub recent_progress: BTreeMap<String, VecDeque<QueryProgress>>,
}

impl Progress {
    /// Records one query's report as its last and appends it to its recent ones.
    pub fn update(&mut self, report: QueryProgress) {
        let recent = self.recent_progress.entry(report.name.clone()).or_default();
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(report.clone());
        self.queries.insert(report.name.clone(), report);
    }
}

/// One query's last commit cycle.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryProgress {
    /// Stable across restarts: `<app>/<query>`.
    pub id: String,
    /// New at every start of the process.
    pub run_id: String,
    pub name: String,
    /// RFC 3339 UTC time of the commit that ended the batch.
    pub timestamp: String,
    /// Commit cycles (transactions) since this run started; a batch is one commit cycle.
    pub batch_id: u64,
    /// Milliseconds from the previous report to this one.
    pub batch_duration: u64,
    /// Records read from the query's source topics in this batch (sum over `sources`).
    pub num_input_rows: u64,
    /// `numInputRows` over the time since the previous report.
    pub input_rows_per_second: f64,
    /// `numInputRows` over the time spent processing and committing (not waiting in poll).
    pub processed_rows_per_second: f64,
    /// Milliseconds per phase: `poll`, `process`, `produce`, `commit`, `triggerExecution`.
    pub duration_ms: BTreeMap<String, u64>,
    /// `watermark` (RFC 3339), present once the query has one.
    pub event_time: BTreeMap<String, String>,
    pub state_operators: Vec<StateOperatorProgress>,
    pub sources: Vec<SourceProgress>,
    pub sink: SinkProgress,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateOperatorProgress {
    pub operator_name: String,
    /// Live state entries over the query's tasks on this instance.
    pub num_rows_total: u64,
    /// State entries written (inserted or changed) in this batch, as its changelog records them.
    pub num_rows_updated: u64,
    /// State entries deleted in this batch (closed windows, expired rows).
    pub num_rows_removed: u64,
    /// Rows dropped as late (behind the watermark) in this batch.
    pub num_rows_dropped_by_watermark: u64,
    /// Approximate bytes of live state.
    pub memory_used_bytes: u64,
    /// Tasks (partitions) of the operator on this instance.
    pub num_state_store_instances: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceProgress {
    /// `KafkaV2[Subscribe[<topic>]]`, as Spark writes it.
    pub description: String,
    /// Topic → partition → committed offset before this batch (partitions seen before only).
    pub start_offset: BTreeMap<String, BTreeMap<String, i64>>,
    /// Topic → partition → committed offset after this batch.
    pub end_offset: BTreeMap<String, BTreeMap<String, i64>>,
    /// Records read from the topic in this batch.
    pub num_input_rows: u64,
    pub input_rows_per_second: f64,
    pub processed_rows_per_second: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkProgress {
    /// `KafkaSink[<topic>]`.
    pub description: String,
    /// Rows written to the sink topic in this batch.
    pub num_output_rows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, batch: u64) -> QueryProgress {
        QueryProgress { name: name.into(), batch_id: batch, ..QueryProgress::default() }
    }

    #[test]
    fn recent_progress_keeps_the_last_reports_oldest_first() {
        let mut p = Progress::default();
        for b in 1..=(RECENT as u64 + 5) {
            p.update(report("q", b));
        }
        p.update(report("other", 1));
        let recent: Vec<u64> = p.recent_progress["q"].iter().map(|r| r.batch_id).collect();
        assert_eq!(recent, (6..=RECENT as u64 + 5).collect::<Vec<_>>());
        assert_eq!(p.queries["q"].batch_id, RECENT as u64 + 5);
        assert_eq!(p.queries["other"].batch_id, 1);
    }

    #[test]
    fn the_json_uses_spark_field_names_and_round_trips() {
        let mut p = Progress::default();
        let mut r = report("q", 3);
        r.sources.push(SourceProgress { description: "KafkaV2[Subscribe[t]]".into(), ..SourceProgress::default() });
        r.sources[0].end_offset.entry("t".into()).or_default().insert("0".into(), 42);
        p.update(r);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["queries"]["q"]["batchId"], 3);
        assert_eq!(json["queries"]["q"]["sources"][0]["endOffset"]["t"]["0"], 42);
        assert!(json["recentProgress"]["q"].is_array());
        let back: Progress = serde_json::from_value(json).unwrap();
        assert_eq!(back.queries["q"].sources[0].end_offset["t"]["0"], 42);
    }
}
