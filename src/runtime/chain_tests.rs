//! A chained query without a broker: the tasks of each stage are driven as the engine drives
//! them, and the internal records a stage writes (rows and watermark markers) are handed to the
//! stage above, as its repartition topic would. Checks the result against a model and that
//! every stage's state stays bounded over 30 days of input.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::clock::SideSpec;
use super::internal::{decode_row, Marker, H_MARKER};
use super::prepare::PrepareTask;
use super::source::SourceReader;
use super::task::{Ctx, LateRoute, QueryTask};
use super::{Collected, NoTables, OutKind, RecordRef};
use crate::formats::Decoder;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::time::MICROS_PER_HOUR;

const MINUTE: i64 = 60_000_000;

fn pipeline(sql: &str) -> Pipeline {
    let text = format!(
        "app: t\nkafka: {{ bootstrap_servers: \"localhost:9092\" }}\nsources:\n  events:\n    topic: events\n    schema: {{ time: timestamp, action: string }}\n    event_time: time\n    watermark_delay: 5m\n    partition_key: [action]\nsinks:\n  out: {{ topic: out }}\nqueries:\n  - name: q\n    sink: out\n    repartition_partitions: 1\n    sql: \"{}\"\n",
        sql.replace('"', "\\\"")
    );
    crate::pipeline::from_text(Path::new("t.yaml"), &text, |_| None).unwrap()
}

/// The stages of a two-stage query on one partition each, linked in memory.
struct Chain {
    reader: SourceReader,
    lower: QueryTask,
    upper: QueryTask,
    out: Collected,
    /// Internal records of `out` already handed to the upper stage.
    routed: usize,
    max_entries: [usize; 2],
}

impl Chain {
    fn new(p: &Pipeline) -> Chain {
        assert_eq!(p.queries.len(), 2, "a stage and the query");
        let (lower_plan, upper_plan) = (Arc::new(p.queries[0].clone()), Arc::new(p.queries[1].clone()));
        let metrics = Metrics::new().unwrap();
        let input = &lower_plan.inputs[0];
        let src = &p.config().sources["events"];
        let decoder = Decoder::for_source(src, &src.schema.schema, &input.scan.needed).unwrap();
        let reader = SourceReader::new(decoder, &input.scan.schema, src.schema.schema.len(), &input.scan.needed);
        let local = vec![SideSpec::Local { delay: 5 * MINUTE, idle_timeout: None }];
        let mut lower = QueryTask::new(0, lower_plan.clone(), local, None, None, 1, vec![LateRoute::default()], &metrics);
        lower.set_feed(PrepareTask::feed(0, 1, &upper_plan.inputs[0], Arc::from("internal"), 1));
        let remote = vec![SideSpec::Remote { upstreams: 1 }];
        let upper = QueryTask::new(0, upper_plan, remote, None, None, 2, vec![LateRoute::default()], &metrics);
        Chain { reader, lower, upper, out: Collected::default(), routed: 0, max_entries: [0, 0] }
    }

    /// One commit cycle over `lines`: the lower stage, then what it wrote, into the upper.
    fn cycle(&mut self, lines: &[String]) {
        let now = Instant::now();
        let records: Vec<RecordRef> = lines
            .iter()
            .map(|l| RecordRef { topic: "events", partition: 0, offset: 0, key: None, payload: Some(l.as_bytes()), timestamp: None })
            .collect();
        let decoded = self.reader.decode(&records, |_, e| Err(super::RuntimeError::Setup(e.to_string()))).unwrap();
        let mut ctx = Ctx { out: &mut self.out, now, tables: &NoTables };
        if decoded.batch.num_rows() > 0 {
            self.lower.on_batch(0, &decoded.batch, &decoded.records, &mut ctx).unwrap();
        }
        self.lower.advance(&mut ctx).unwrap();
        self.lower.on_commit(&mut ctx).unwrap();
        self.lower.committed();
        let internal: Vec<_> = self.out.records[self.routed..].iter().filter(|r| r.kind == OutKind::Internal).cloned().collect();
        self.routed = self.out.records.len();
        let mut ctx = Ctx { out: &mut self.out, now, tables: &NoTables };
        for r in internal {
            assert_eq!(r.topic, "internal");
            match r.headers.iter().find(|(k, _)| k == H_MARKER) {
                Some((_, m)) => {
                    let m = Marker::parse(std::str::from_utf8(m).unwrap()).unwrap();
                    self.upper.on_marker(0, m.upstream as usize, m.watermark, m.idle, now);
                }
                None => self.upper.on_input_row(0, decode_row(r.payload.as_deref().unwrap()).unwrap(), None, &mut ctx).unwrap(),
            }
        }
        self.upper.advance(&mut ctx).unwrap();
        self.upper.on_commit(&mut ctx).unwrap();
        self.routed = self.out.records.len();
        self.max_entries[0] = self.max_entries[0].max(self.lower.state_entries());
        self.max_entries[1] = self.max_entries[1].max(self.upper.state_entries());
    }

    fn sink_rows(&self) -> Vec<serde_json::Value> {
        self.out
            .records
            .iter()
            .filter(|r| r.kind == OutKind::Sink)
            .map(|r| serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap())
            .collect()
    }
}

fn time(t: i64) -> String {
    let mut s = String::new();
    crate::time::format_timestamp(t, &mut s);
    s
}

#[test]
fn a_chain_over_thirty_days_keeps_bounded_state_and_equals_a_model() {
    let p = pipeline(
        "SELECT window.start AS hour, max(n) AS max_n, sum(n) AS total, count(*) AS windows \
         FROM (SELECT action, window(time, '10 minutes') AS w, count(*) AS n FROM events GROUP BY action, window(time, '10 minutes')) t \
         GROUP BY window(window_time(t.w), '1 hour')",
    );
    let start = 1_469_491_200_000_000;
    let actions = ["Open", "Close", "Buy"];
    // 30 days, an event every 2 minutes per action with a varying burst, out of order within 4 minutes.
    let mut events: Vec<(i64, i64, &str)> = Vec::new();
    let mut seed = 7u64;
    for m in (0..30 * 24 * 60).step_by(2) {
        for (ai, a) in actions.iter().enumerate() {
            let copies = 1 + (m / 2 + ai as i64) % 3;
            for c in 0..copies {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let t = start + m * MINUTE + c * 1_000_000;
                events.push((t + (seed >> 40) as i64 % (4 * MINUTE), t, a));
            }
        }
    }
    events.sort();
    let mut chain = Chain::new(&p);
    let lines: Vec<String> = events.iter().map(|(_, t, a)| format!(r#"{{"time":"{}","action":"{a}"}}"#, time(*t))).collect();
    for batch in lines.chunks(50) {
        chain.cycle(batch);
    }
    // The model: counts per (action, 10 minutes), then per hour of their window_time.
    let mut tenmin: std::collections::BTreeMap<(&str, i64), u64> = std::collections::BTreeMap::new();
    for &(_, t, a) in &events {
        *tenmin.entry((a, t - t.rem_euclid(10 * MINUTE))).or_default() += 1;
    }
    let max_event = events.iter().map(|e| e.1).max().unwrap();
    let watermark = max_event - 5 * MINUTE;
    let mut hourly: std::collections::BTreeMap<i64, (u64, u64, u64)> = std::collections::BTreeMap::new();
    for (&(_, s), &n) in &tenmin {
        if s + 10 * MINUTE > watermark {
            continue; // not closed by the final watermark
        }
        let e = hourly.entry((s + 10 * MINUTE - 1).div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR).or_default();
        *e = (e.0.max(n), e.1 + n, e.2 + 1);
    }
    hourly.retain(|h, _| h + MICROS_PER_HOUR <= watermark);
    let mut got: Vec<(String, u64, u64, u64)> = chain
        .sink_rows()
        .iter()
        .map(|v| {
            (
                v["hour"].as_str().unwrap().to_string(),
                v["max_n"].as_u64().unwrap(),
                v["total"].as_u64().unwrap(),
                v["windows"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let expected: Vec<(String, u64, u64, u64)> = hourly.iter().map(|(h, v)| (time(*h), v.0, v.1, v.2)).collect();
    assert_eq!(got.len(), 30 * 24 - 1, "every hour but the last, which the final watermark leaves open");
    assert_eq!(got, expected);
    // A cycle of 50 records spans about 17 minutes: a few 10-minute windows per action are open
    // at once, and one or two hours, whatever the length of the input (30 days: 4,320 windows
    // per action and 720 hours).
    assert!(chain.max_entries[0] <= 3 * 5, "lower stage state peaked at {}", chain.max_entries[0]);
    assert!(chain.max_entries[1] <= 3, "upper stage state peaked at {}", chain.max_entries[1]);
}

#[test]
fn a_filter_and_projection_over_a_windowed_count_run_where_its_rows_arrive() {
    let p = pipeline(
        "SELECT action, hour, n * 10 AS n10 FROM (SELECT action, window.start AS hour, count(*) AS n FROM events GROUP BY action, window(time, '1 hour')) t WHERE n > 1",
    );
    let start = 1_469_491_200_000_000;
    let mut chain = Chain::new(&p);
    // Hour 0: Open twice, Close once; hour 1: Open once; then an event that closes both hours.
    let events = [(0, "Open"), (10, "Open"), (20, "Close"), (70, "Open"), (200, "Open")];
    let lines: Vec<String> = events.iter().map(|(m, a)| format!(r#"{{"time":"{}","action":"{a}"}}"#, time(start + m * MINUTE))).collect();
    chain.cycle(&lines);
    chain.cycle(&[]);
    let rows: Vec<String> = chain.sink_rows().iter().map(|v| v.to_string()).collect();
    assert_eq!(rows, [r#"{"action":"Open","hour":"2016-07-26T00:00:00.000Z","n10":20}"#]);
}
