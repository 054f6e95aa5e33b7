//! Queries of a running pipeline's result tables (`GET /query?sql=...`, `eddy query`): a
//! SELECT over one or more queries of the pipeline, by name, answered from the state this
//! instance has committed. Only committed cycles reach sled, and a cycle reaches it as one
//! write that readers wait for, so an answer is the table of one committed cycle: never an
//! uncommitted row, never half a cycle. A partition another instance owns is fetched from it
//! (its committed entries, `remote.rs`); one that cannot be had (restoring, or its owner does
//! not answer) is named in the answer, or fails it unless a partial answer is asked for.
//! Work is bounded: state rows read and time. Depends on `sql`, `runtime::task` (to load a
//! tree into the query's operator), `state` and `formats`; the engine publishes into `live`.

pub mod client;
mod exec;
pub mod live;
mod read;
mod remote;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

pub use live::LiveTables;
use read::{local_entries, Budget, Missing};
pub use remote::{Fetched, Remote};

pub use crate::formats::percent_encode;
use crate::formats::{CsvEncoder, JsonEncoder};
use crate::sql::BatchQuery;
use crate::types::arrays::{value_at, ColumnReader};
use crate::types::DataType;

/// What one query may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// State rows (groups) read over all partitions and tables.
    pub max_rows: u64,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_rows: 1_000_000, timeout: Duration::from_secs(5) }
    }
}

/// Why a query got no answer, with the HTTP status that says so.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub status: u16,
    pub message: String,
}

impl QueryError {
    pub fn bad_request(message: impl Into<String>) -> QueryError {
        QueryError { status: 400, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> QueryError {
        QueryError { status: 404, message: message.into() }
    }
    /// Over a limit: the request is refused as too costly (422), not retried as is.
    pub fn too_large(message: impl Into<String>) -> QueryError {
        QueryError { status: 422, message: message.into() }
    }
    pub fn timeout(limits: &Limits) -> QueryError {
        QueryError::too_large(format!("the query ran longer than {:?} (http.query_timeout); narrow it or raise the limit", limits.timeout))
    }
    /// Some partitions cannot be answered here now (503: retry, or ask for a partial answer).
    pub fn unavailable(message: impl Into<String>) -> QueryError {
        QueryError { status: 503, message: message.into() }
    }
    pub fn internal(message: impl Into<String>) -> QueryError {
        QueryError { status: 500, message: message.into() }
    }
}

impl From<crate::state::StateError> for QueryError {
    fn from(e: crate::state::StateError) -> QueryError {
        QueryError::internal(format!("cannot read the state: {e}"))
    }
}

/// Which partitions of one table an answer covers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Coverage {
    pub table: String,
    pub partitions: usize,
    /// Every partition the answer holds, here or fetched.
    pub answered: Vec<i32>,
    /// Those fetched from the instances that own them.
    pub remote: Vec<RemotePartition>,
    /// Partitions left out, with why.
    pub missing: Vec<MissingPartition>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RemotePartition {
    pub partition: i32,
    pub instance: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MissingPartition {
    pub partition: i32,
    pub reason: String,
}

/// A query's answer.
pub struct Answer {
    pub batch: RecordBatch,
    pub tables: Vec<Coverage>,
    /// State rows read.
    pub scanned: u64,
    pub elapsed: Duration,
}

/// Answers `sql` from this instance's partitions only.
pub fn answer(live: &LiveTables, sql: &str, limits: &Limits, partial: bool) -> Result<Answer, QueryError> {
    answer_with(live, None, sql, limits, partial)
}

/// Answers `sql` from `live`, fetching the partitions other instances own through `remote`.
/// Without `partial`, a table with a partition that cannot be had fails the query (503)
/// naming them.
pub fn answer_with(live: &LiveTables, remote: Option<&Remote>, sql: &str, limits: &Limits, partial: bool) -> Result<Answer, QueryError> {
    let mut budget = Budget { limits, started: Instant::now(), scanned: 0 };
    let query = BatchQuery::parse(sql).map_err(|e| QueryError::bad_request(e.to_string()))?;
    let mut tables = HashMap::new();
    let mut schemas = HashMap::new();
    let mut coverage = Vec::new();
    for name in &query.tables {
        let (published, reads) = published(live, name)?;
        let read::Local { found: mut parts, missing: local_missing } = local_entries(&published, &reads, None, &mut budget)?;
        let mut missing: Vec<MissingPartition> = Vec::new();
        let mut fetched: Vec<RemotePartition> = Vec::new();
        let not_owned: Vec<i32> = local_missing.iter().filter(|(_, m)| *m == Missing::NotOwned).map(|(p, _)| *p).collect();
        for (p, why) in &local_missing {
            if *why == Missing::Restoring || remote.is_none() {
                missing.push(MissingPartition { partition: *p, reason: reason(why).into() });
            }
        }
        if let (Some(remote), false) = (remote, not_owned.is_empty()) {
            let left = limits.timeout.saturating_sub(budget.started.elapsed()).max(Duration::from_millis(100));
            for f in remote.fetch(name, &published.input_topic, &not_owned, live.advertised().as_deref(), left) {
                match f {
                    Fetched::Got { partition, entries, from } => {
                        budget.take(entries.len() as u64)?;
                        parts.push((partition, entries));
                        fetched.push(RemotePartition { partition, instance: from });
                    }
                    Fetched::Failed { partition, reason } => missing.push(MissingPartition { partition, reason }),
                }
            }
        }
        missing.sort_by_key(|m| m.partition);
        if !missing.is_empty() && !partial {
            let list: Vec<String> = missing.iter().map(|m| format!("{} ({})", m.partition, m.reason)).collect();
            return Err(QueryError::unavailable(format!(
                "no answer for partitions {} of query {name}'s {}; retry, or add partial=true for the rest",
                list.join(", "),
                published.partitions
            )));
        }
        parts.sort_by_key(|(p, _)| *p);
        let batch = read::table(&published.plan, &parts, &budget)?;
        let answered = parts.iter().map(|(p, _)| *p).collect();
        fetched.sort_by_key(|r| r.partition);
        coverage.push(Coverage { table: name.clone(), partitions: published.partitions, answered, remote: fetched, missing });
        schemas.insert(name.clone(), batch.schema());
        tables.insert(name.clone(), batch);
    }
    let plan = query.plan(schemas).map_err(|e| QueryError::bad_request(e.to_string()))?;
    let batch = exec::execute(&plan, &tables)?;
    budget.check_time()?;
    Ok(Answer { batch, tables: coverage, scanned: budget.scanned, elapsed: budget.started.elapsed() })
}

fn reason(m: &Missing) -> &'static str {
    match m {
        Missing::NotOwned => "not owned by this instance",
        Missing::Restoring => "restoring",
    }
}

fn published(live: &LiveTables, name: &str) -> Result<(live::Published, crate::state::Reads), QueryError> {
    live.get(name).ok_or_else(|| {
        let names = live.names();
        if names.is_empty() {
            QueryError::unavailable(format!(
                "no result table is published yet (the engine is starting, joining its group or recovering); table {name}"
            ))
        } else {
            QueryError::not_found(format!("the pipeline has no query named {name}; its queries: {}", names.join(", ")))
        }
    })
}

/// Another instance asks for the committed entries of some partitions of `table`.
pub fn state(live: &LiveTables, table: &str, partitions: &[i32], limits: &Limits) -> Result<String, QueryError> {
    let mut budget = Budget { limits, started: Instant::now(), scanned: 0 };
    let (published, reads) = published(live, table)?;
    let read::Local { found, missing } = local_entries(&published, &reads, Some(partitions), &mut budget)?;
    let missing: Vec<(i32, &str)> = missing.iter().map(|(p, m)| (*p, reason(m))).collect();
    Ok(remote::state_json(&found, &missing))
}

fn columns(batch: &RecordBatch) -> Vec<(String, DataType)> {
    batch.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect()
}

/// `{"columns": [...], "rows": [{...}, ...], "tables": [...], "scanned": n, "elapsed_ms": t}`;
/// each row is encoded as the JSON sinks encode it.
pub fn to_json(a: &Answer) -> String {
    let cols = columns(&a.batch);
    let named: Vec<(&str, DataType)> = cols.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let encoder = JsonEncoder::new(&named);
    let readers: Vec<ColumnReader> = a.batch.columns().iter().map(|c| ColumnReader::new(c.as_ref())).collect();
    let mut out = Vec::with_capacity(64 + a.batch.num_rows() * 64);
    out.extend_from_slice(b"{\"columns\":");
    out.extend_from_slice(serde_json::to_string(&cols.iter().map(|(n, _)| n).collect::<Vec<_>>()).unwrap_or_default().as_bytes());
    out.extend_from_slice(b",\"rows\":[");
    for i in 0..a.batch.num_rows() {
        if i > 0 {
            out.push(b',');
        }
        encoder.encode_cells(&readers, i, &mut out);
    }
    out.extend_from_slice(b"],\"tables\":");
    out.extend_from_slice(serde_json::to_string(&a.tables).unwrap_or_default().as_bytes());
    out.extend_from_slice(format!(",\"scanned\":{},\"elapsed_ms\":{}}}\n", a.scanned, a.elapsed.as_millis()).as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// A header line, then one line per row as the CSV sinks write it.
pub fn to_csv(a: &Answer) -> Result<String, QueryError> {
    let cols = columns(&a.batch);
    let encoder =
        CsvEncoder::new(&Default::default()).map_err(QueryError::internal)?.with_types(cols.iter().map(|(_, t)| t.clone()).collect());
    let mut out = Vec::new();
    let names: Vec<crate::types::Value> = cols.iter().map(|(n, _)| crate::types::Value::Str(n.as_str().into())).collect();
    CsvEncoder::new(&Default::default()).map_err(QueryError::internal)?.encode(&names, &mut out);
    out.push(b'\n');
    for i in 0..a.batch.num_rows() {
        let row: Vec<crate::types::Value> = a.batch.columns().iter().map(|c| value_at(c.as_ref(), i)).collect();
        encoder.encode(&row, &mut out);
        out.push(b'\n');
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The `/query` endpoint over `live`; `remote` asks other instances for their partitions.
pub struct Service {
    pub live: Arc<LiveTables>,
    pub limits: Limits,
    pub remote: Option<Remote>,
}

impl crate::metrics::server::Queries for Service {
    fn query(&self, params: &str, accept_csv: bool) -> crate::metrics::server::Reply {
        use crate::metrics::server::Reply;
        let params = parse_params(params);
        if let Some(table) = params.get("state") {
            let partitions: Vec<i32> =
                params.get("partitions").map(|p| p.split(',').filter_map(|x| x.trim().parse().ok()).collect()).unwrap_or_default();
            return match state(&self.live, table, &partitions, &self.limits) {
                Ok(body) => Reply { code: 200, content_type: "application/json", body },
                Err(e) => Reply::error(e.status, e.message),
            };
        }
        let Some(sql) = params.get("sql") else {
            return Reply::error(400, "give the query as the sql parameter: /query?sql=SELECT+...".into());
        };
        let partial = params.get("partial").is_some_and(|v| v == "true" || v == "1");
        let csv = accept_csv || params.get("format").is_some_and(|f| f == "csv");
        match answer_with(&self.live, self.remote.as_ref(), sql, &self.limits, partial) {
            Err(e) => Reply::error(e.status, e.message),
            Ok(a) if csv => match to_csv(&a) {
                Ok(body) => Reply { code: 200, content_type: "text/csv; charset=utf-8", body },
                Err(e) => Reply::error(e.status, e.message),
            },
            Ok(a) => Reply { code: 200, content_type: "application/json", body: to_json(&a) },
        }
    }
}

/// `a=1&b=x+y%20z` → {a: "1", b: "x y z"}.
pub fn parse_params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
