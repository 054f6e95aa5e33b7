//! Queries of a running pipeline's result tables (`GET /query?sql=...`, `eddy query`): a
//! SELECT over one or more queries of the pipeline, by name, answered from the state this
//! instance has committed. Only committed cycles reach sled, and a cycle reaches it as one
//! write that readers wait for, so an answer is the table of one committed cycle: never an
//! uncommitted row, never half a cycle. A partition this instance does not own (or is still
//! restoring) is named in the answer, or makes it fail unless a partial answer is asked for.
//! Work is bounded: state rows read and time. Depends on `sql`, `runtime::task` (to load a
//! tree into the query's operator), `state` and `formats`; the engine publishes into `live`.

pub mod client;
mod exec;
pub mod live;
mod read;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

pub use live::LiveTables;
use read::{read_table, Missing};

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
    pub answered: Vec<i32>,
    /// Partitions left out, with why.
    pub missing: Vec<MissingPartition>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MissingPartition {
    pub partition: i32,
    pub reason: &'static str,
}

/// A query's answer.
pub struct Answer {
    pub batch: RecordBatch,
    pub tables: Vec<Coverage>,
    /// State rows read.
    pub scanned: u64,
    pub elapsed: Duration,
}

/// Answers `sql` from `live`. Without `partial`, a table with a partition this instance
/// cannot answer for fails the query (503) naming them.
pub fn answer(live: &LiveTables, sql: &str, limits: &Limits, partial: bool) -> Result<Answer, QueryError> {
    let started = Instant::now();
    let query = BatchQuery::parse(sql).map_err(|e| QueryError::bad_request(e.to_string()))?;
    let mut tables = HashMap::new();
    let mut schemas = HashMap::new();
    let mut coverage = Vec::new();
    let mut scanned = 0;
    for name in &query.tables {
        let Some((published, reads)) = live.get(name) else {
            let names = live.names();
            return Err(if names.is_empty() {
                QueryError::unavailable(format!(
                    "no result table is published yet (the engine is starting, joining its group or recovering); table {name}"
                ))
            } else {
                QueryError::not_found(format!("the pipeline has no query named {name}; its queries: {}", names.join(", ")))
            });
        };
        let table = read_table(&published, &reads, limits, started, scanned)?;
        scanned = table.scanned;
        let missing: Vec<MissingPartition> = table
            .missing
            .iter()
            .map(|(p, why)| MissingPartition {
                partition: *p,
                reason: match why {
                    Missing::NotOwned => "not owned by this instance",
                    Missing::Restoring => "restoring",
                },
            })
            .collect();
        if !missing.is_empty() && !partial {
            let list: Vec<String> = missing.iter().map(|m| format!("{} ({})", m.partition, m.reason)).collect();
            return Err(QueryError::unavailable(format!(
                "this instance cannot answer for partitions {} of query {name}'s {}; ask the instance that owns them, or add partial=true for this instance's part",
                list.join(", "),
                table.partitions
            )));
        }
        coverage.push(Coverage { table: name.clone(), partitions: table.partitions, answered: table.answered, missing });
        schemas.insert(name.clone(), table.batch.schema());
        tables.insert(name.clone(), table.batch);
    }
    let plan = query.plan(schemas).map_err(|e| QueryError::bad_request(e.to_string()))?;
    let batch = exec::execute(&plan, &tables)?;
    if started.elapsed() > limits.timeout {
        return Err(QueryError::timeout(limits));
    }
    Ok(Answer { batch, tables: coverage, scanned, elapsed: started.elapsed() })
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

/// The `/query` endpoint over `live`.
pub struct Service {
    pub live: Arc<LiveTables>,
    pub limits: Limits,
}

impl crate::metrics::server::Queries for Service {
    fn query(&self, params: &str, accept_csv: bool) -> crate::metrics::server::Reply {
        use crate::metrics::server::Reply;
        let params = parse_params(params);
        let Some(sql) = params.get("sql") else {
            return Reply::error(400, "give the query as the sql parameter: /query?sql=SELECT+...".into());
        };
        let partial = params.get("partial").is_some_and(|v| v == "true" || v == "1");
        let csv = accept_csv || params.get("format").is_some_and(|f| f == "csv");
        match answer(&self.live, sql, &self.limits, partial) {
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

/// `s` with every byte outside `A-Za-z0-9-_.~` percent-encoded (for the client).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
