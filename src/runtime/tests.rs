//! The runtime end to end without a broker: a pipeline file's first query run over JSON lines
//! by the same task, decoder and encoder the engine uses, with a collecting `Out`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::clock::SideSpec;
use super::source::SourceReader;
use super::task::{Ctx, LateRoute, QueryTask};
use super::{Collected, NoTables, OutKind, RecordRef};
use crate::formats::Decoder;
use crate::metrics::Metrics;

/// The output rows (JSON text, sorted) of `sql` over `lines` of source `events` with `schema`;
/// the watermark delay is 0 and the input is flushed at the end.
pub(crate) fn run(schema: &str, sql: &str, mode: &str, lines: &[&str]) -> Result<Vec<String>, String> {
    let text = format!(
        "app: t\nkafka: {{ bootstrap_servers: \"localhost:9092\" }}\nsources:\n  events:\n    topic: events\n    schema: {schema}\n    event_time: time\n    watermark_delay: 0s\nsinks:\n  out: {{ topic: out, output_mode: {mode} }}\nqueries:\n  - name: q\n    sink: out\n    sql: \"{}\"\n",
        sql.replace('"', "\\\"")
    );
    let pipeline = crate::pipeline::from_text(Path::new("t.yaml"), &text, |_| None).map_err(|d| d.to_string())?;
    let plan = Arc::new(pipeline.queries[0].clone());
    let input = &plan.inputs[0];
    let src = &pipeline.config().sources["events"];
    let decoder = Decoder::for_source(src, &src.schema.schema, &input.scan.needed)?;
    let mut reader = SourceReader::new(decoder, &input.scan.schema, src.schema.schema.len(), &input.scan.needed);
    let metrics = Metrics::new().map_err(|e| e.to_string())?;
    let specs = vec![SideSpec::Local { delay: 0, idle_timeout: None }];
    let mut task = QueryTask::new(0, plan.clone(), specs, None, None, 1, vec![LateRoute::default()], &metrics);
    let records: Vec<RecordRef> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| RecordRef {
            topic: "events",
            partition: 0,
            offset: i as i64,
            key: None,
            payload: Some(l.as_bytes()),
            timestamp: None,
        })
        .collect();
    let mut out = Collected::default();
    let decoded = reader.decode(&records, |_, e| Err(super::RuntimeError::Setup(e.to_string()))).map_err(|e| e.to_string())?;
    let mut ctx = Ctx { out: &mut out, now: Instant::now(), tables: &NoTables };
    task.on_batch(0, &decoded.batch, &decoded.records, &mut ctx).map_err(|e| e.to_string())?;
    task.advance(&mut ctx).map_err(|e| e.to_string())?;
    task.finish(Instant::now());
    task.advance(&mut ctx).map_err(|e| e.to_string())?;
    task.on_commit(&mut ctx).map_err(|e| e.to_string())?;
    let mut rows: Vec<String> = out
        .records
        .iter()
        .filter(|r| r.kind == OutKind::Sink)
        .map(|r| String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default()).into_owned())
        .collect();
    rows.sort();
    Ok(rows)
}

const EVENTS: &[&str] = &[
    r#"{"time":"2016-07-26T00:10:00Z","action":"Open","v":3}"#,
    r#"{"time":"2016-07-26T00:20:00Z","action":"Open","v":5}"#,
    r#"{"time":"2016-07-26T00:30:00Z","action":"Close","v":null}"#,
    r#"{"time":"2016-07-26T01:30:00Z","action":"Open","v":7}"#,
];
const SCHEMA: &str = "{ time: timestamp, action: string, v: long? }";

#[test]
fn the_tutorial_query_with_date_format_runs_end_to_end() {
    let rows = run(
        SCHEMA,
        "SELECT action, date_format(window.end, 'MMM-dd HH:mm') AS t, count(*) AS n FROM events GROUP BY action, window(time, '1 hour')",
        "append",
        EVENTS,
    )
    .unwrap();
    assert_eq!(
        rows,
        [
            r#"{"action":"Close","t":"Jul-26 01:00","n":1}"#,
            r#"{"action":"Open","t":"Jul-26 01:00","n":2}"#,
            r#"{"action":"Open","t":"Jul-26 02:00","n":1}"#
        ]
    );
}

#[test]
fn datafusion_aggregates_accumulate_per_window() {
    let rows = run(
        SCHEMA,
        "SELECT action, stddev(v) AS sd, collect_list(v) AS vs, max_by(v, time) AS latest, min_by(action, v) AS least, percentile_approx(v, 0.5) AS median, percentile_approx(v, array(0.1, 1.0)) AS ends, count_if(v > 4) AS big, bool_or(v > 6) AS any7 FROM events GROUP BY action, window(time, '1 day')",
        "append",
        EVENTS,
    )
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with(r#"{"action":"Close","sd":null,"vs":[],"#), "{}", rows[0]);
    assert!(
        rows[1].starts_with(
            r#"{"action":"Open","sd":2.0,"vs":[3,5,7],"latest":7,"least":"Open","median":5,"ends":[3,7],"big":2,"any7":true}"#
        ),
        "{}",
        rows[1]
    );
}

const NESTED: &[&str] = &[
    r#"{"time":"2016-07-26T00:10:00Z","user":{"name":"ann","address":{"city":"Porto"}},"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}]}"#,
    r#"{"time":"2016-07-26T00:20:00Z","user":{"name":"bob","address":null},"items":[]}"#,
    r#"{"time":"2016-07-26T00:30:00Z","user":null,"items":[{"sku":"a","qty":5}]}"#,
];
const NESTED_SCHEMA: &str =
    "{ time: timestamp, user: \"struct<name: string, address: struct<city: string>>?\", items: \"array<struct<sku: string, qty: long>>\" }";

#[test]
fn nested_fields_and_explode() {
    let rows =
        run(NESTED_SCHEMA, "SELECT user.name AS name, user.address.city AS city, explode(items) AS item FROM events", "append", NESTED)
            .unwrap();
    assert_eq!(
        rows,
        [
            r#"{"name":"ann","city":"Porto","item":{"sku":"a","qty":2}}"#,
            r#"{"name":"ann","city":"Porto","item":{"sku":"b","qty":1}}"#,
            r#"{"name":null,"city":null,"item":{"sku":"a","qty":5}}"#,
        ]
    );
}

#[test]
fn an_aggregation_over_an_exploding_subquery_groups_by_a_nested_field() {
    let rows = run(
        NESTED_SCHEMA,
        "SELECT item.sku AS sku, sum(item.qty) AS qty, count(DISTINCT city) AS cities FROM (SELECT time, user.address.city AS city, explode(items) AS item FROM events) GROUP BY item.sku, window(time, '1 hour')",
        "append",
        NESTED,
    )
    .unwrap();
    assert_eq!(rows, [r#"{"sku":"a","qty":7,"cities":1}"#, r#"{"sku":"b","qty":1,"cities":1}"#]);
}
