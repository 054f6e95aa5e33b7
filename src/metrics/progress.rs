//! `/progress`: per-query progress modelled on Spark's `StreamingQuery.lastProgress`.

use std::collections::BTreeMap;

use serde::Serialize;

/// The JSON document served at /progress.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub queries: BTreeMap<String, QueryProgress>,
}

/// One query's last commit cycle.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryProgress {
    /// Stable across restarts: the app and query name.
    pub id: String,
    /// New at every start of the process.
    pub run_id: String,
    pub name: String,
    /// Commit cycles since this run started.
    pub batch_id: u64,
    pub timestamp: String,
    pub num_input_rows: u64,
    pub input_rows_per_second: f64,
    pub processed_rows_per_second: f64,
    pub duration_ms: BTreeMap<String, u64>,
    pub event_time: BTreeMap<String, String>,
    pub state_operators: Vec<StateOperatorProgress>,
    pub sources: Vec<SourceProgress>,
    pub sink: SinkProgress,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateOperatorProgress {
    pub operator_name: String,
    pub num_rows_total: u64,
    pub num_rows_updated: u64,
    pub num_rows_dropped_by_watermark: u64,
    pub memory_used_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    pub description: String,
    pub start_offset: BTreeMap<String, i64>,
    pub end_offset: BTreeMap<String, i64>,
    pub num_input_rows: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkProgress {
    pub description: String,
    pub num_output_rows: u64,
}
