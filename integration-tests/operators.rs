//! The stateful operators end to end on a broker: session windows, stream-stream interval
//! joins (inner and left outer), deduplication (DISTINCT ON within the watermark, DISTINCT with
//! the event time), stream-table joins (operators/table.rs) and the late topic. Each test
//! produces its input, runs eddy exactly-once, reads the output read_committed and compares it
//! with an answer computed here by brute force (batch sessionization, a nested-loop join, the
//! first arrival of each key, table lookups). On the real broker when KAFKA_BOOTSTRAP_SERVERS
//! is set, otherwise on librdkafka's mock cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "operators/table.rs"]
mod table;

use std::collections::BTreeMap;

use common::*;
use eddy::gen::rng::Rng;
use serde_json::{json, Value};

const MS: i64 = 1_000;
const MIN: i64 = 60_000_000;
const HOUR: i64 = 60 * MIN;
/// 2016-07-26T00:00:00Z in microseconds.
const BASE: i64 = 1_469_491_200_000_000;

/// The real broker when KAFKA_BOOTSTRAP_SERVERS is set, otherwise the mock cluster.
pub fn broker() -> Broker {
    match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
        Ok(b) if !b.is_empty() => Broker::real("operators").unwrap(),
        _ => Broker::mock(),
    }
}

pub fn ts(micros: i64) -> String {
    let mut s = String::new();
    eddy::time::format_timestamp(micros, &mut s);
    s
}

/// The pipeline's head: exactly-once, a fresh state directory, fast commits.
pub fn head(b: &Broker) -> String {
    format!(
        "app: {}\nkafka:\n  bootstrap_servers: \"{}\"\nprocessing_guarantee: exactly_once\nstate: {{ dir: \"{}\" }}\ncommit_interval: 50ms\nhttp: {{ listen: \"127.0.0.1:0\" }}\n",
        unique("ops"),
        b.bootstrap,
        temp_dir("ops").display()
    )
}

/// Expected rows in the form `canonical` gives output rows.
pub fn expected(rows: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut out: Vec<String> =
        rows.into_iter().map(|v| serde_json::to_string(&serde_json::from_value::<BTreeMap<String, Value>>(v).unwrap()).unwrap()).collect();
    out.sort();
    out
}

/// Records in arrival order: each at its event time plus up to `max_delay` (exclusive).
fn arrival<T>(rng: &mut Rng, items: Vec<(i64, T)>, max_delay: i64) -> Vec<(i64, T)> {
    let mut keyed: Vec<(i64, usize, (i64, T))> =
        items.into_iter().enumerate().map(|(i, (t, x))| (t + rng.below(max_delay as u64) as i64, i, (t, x))).collect();
    keyed.sort_by_key(|(a, i, _)| (*a, *i));
    keyed.into_iter().map(|(_, _, x)| x).collect()
}

/// Runs the pipeline to the end of its input, closing every window and join row at the end.
fn run_to_end(b: &Broker, text: &str, partitions: i32) -> eddy::engine::RunSummary {
    Running::start(b.plan(text, partitions), "a", true, true).join()
}

#[test]
fn session_windows_match_batch_sessionization() {
    let b = broker();
    let topic = unique("clicks");
    b.create_topic(&topic, 2);
    let gap = 10 * MIN;
    let mut rng = Rng::new(7);
    let mut events = Vec::new();
    for u in 0..6 {
        let mut t = BASE + rng.below(300) as i64 * 1000 * MS;
        for _ in 0..60 {
            events.push((t, (format!("u{u}"), rng.below(100) as i64)));
            // Exactly the gap joins the session, a millisecond more starts a new one.
            t += match rng.below(6) {
                0 => gap,
                1 => gap + MS,
                2 => 3 * gap,
                _ => rng.below(9 * 60_000) as i64 * MS,
            };
        }
    }
    // Up to 20 minutes out of order behind a 30-minute delay: nothing is late.
    let events = arrival(&mut rng, events, 20 * MIN);
    let records = events.iter().map(|(t, (u, v))| (Some(u.clone()), json!({"user": u, "time": ts(*t), "v": v}).to_string(), None));
    produce(&b.bootstrap, &topic, records);
    let out = unique("sessions");
    let text = format!(
        "{}sources:\n  clicks:\n    topic: {topic}\n    schema: {{ user: string, time: timestamp, v: long }}\n    event_time: time\n    watermark_delay: 30m\n    partition_key: [user]\nsinks:\n  out: {{ topic: {out}, output_mode: append }}\nqueries:\n  - name: sessions\n    sink: out\n    sql: SELECT user, session_window.start AS session_start, session_window.end AS session_end, count(*) AS n, sum(v) AS total FROM clicks GROUP BY user, session_window(time, '10 minutes')\n",
        head(&b)
    );
    let summary = run_to_end(&b, &text, 2);
    assert_eq!(summary.records_in, events.len() as u64);

    // Batch sessionization: per user in time order, an event at most `gap` after the last joins.
    let mut by_user: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (t, (u, v)) in &events {
        by_user.entry(u).or_default().push((*t, *v));
    }
    let mut want = Vec::new();
    for (u, mut evs) in by_user {
        evs.sort();
        let mut i = 0;
        while i < evs.len() {
            let (start, mut last, mut n, mut total) = (evs[i].0, evs[i].0, 0, 0);
            while i < evs.len() && evs[i].0 - last <= gap {
                (last, n, total, i) = (evs[i].0, n + 1, total + evs[i].1, i + 1);
            }
            want.push(json!({"user": u, "session_start": ts(start), "session_end": ts(last + gap), "n": n, "total": total}));
        }
    }
    let got = canonical(&read(&b.bootstrap, &out));
    assert!(want.len() > 60, "the data makes many sessions ({})", want.len());
    assert_eq!(got, expected(want));
}

/// A reading at a location and time: (location, time, value).
type Reading = (i64, i64, i64);

fn join_input(rng: &mut Rng) -> (Vec<Reading>, Vec<Reading>) {
    let (mut temps, mut loads) = (Vec::new(), Vec::new());
    for loc in 1..=5 {
        let mut t = BASE + rng.below(600) as i64 * 1000 * MS;
        while t < BASE + 6 * HOUR {
            temps.push((loc, t, rng.below(40) as i64));
            t += 10 * MIN + rng.below(60_000) as i64 * MS;
        }
        // Location 5 has no loads; location 4 none between 02:00 and 04:00.
        let mut t = BASE + rng.below(300) as i64 * 1000 * MS;
        while t < BASE + 6 * HOUR && loc != 5 {
            if !(loc == 4 && (BASE + 2 * HOUR..BASE + 4 * HOUR).contains(&t)) {
                loads.push((loc, t, rng.below(100) as i64));
            }
            t += 3 * MIN + rng.below(10 * 60_000) as i64 * MS;
        }
    }
    // Loads exactly at both bounds of some temperatures, and a millisecond outside them.
    for &(loc, t, _) in temps.iter().filter(|r| r.0 != 5).step_by(9) {
        for dt in [0, HOUR, -MS, HOUR + MS] {
            loads.push((loc, t + dt, 1000 + rng.below(100) as i64));
        }
    }
    (temps, loads)
}

/// Nested loop: (inner rows, left outer rows).
fn nested_loop(temps: &[Reading], loads: &[Reading]) -> (Vec<Value>, Vec<Value>) {
    let (mut inner, mut left) = (Vec::new(), Vec::new());
    for &(tl, tt, tv) in temps {
        let matched: Vec<Value> = loads
            .iter()
            .filter(|&&(ll, lt, _)| ll == tl && lt >= tt && lt <= tt + HOUR)
            .map(|&(ll, lt, lv)| json!({"loc": tl, "temp_time": ts(tt), "temp": tv, "load_loc": ll, "load_time": ts(lt), "load": lv}))
            .collect();
        if matched.is_empty() {
            left.push(json!({"loc": tl, "temp_time": ts(tt), "temp": tv, "load_loc": null, "load_time": null, "load": null}));
        }
        inner.extend(matched.iter().cloned());
        left.extend(matched);
    }
    (inner, left)
}

#[test]
fn interval_joins_match_a_nested_loop_join() {
    let b = broker();
    let (temps_topic, loads_topic) = (unique("temps"), unique("loads"));
    b.create_topic(&temps_topic, 2);
    b.create_topic(&loads_topic, 2);
    let mut rng = Rng::new(11);
    let (temps, loads) = join_input(&mut rng);
    // Disorder within each side's delay (1 hour, 2 hours); keyed by location on both sides.
    let temps = arrival(&mut rng, temps.into_iter().map(|r| (r.1, r)).collect(), 50 * MIN);
    let loads = arrival(&mut rng, loads.into_iter().map(|r| (r.1, r)).collect(), 100 * MIN);
    let temps: Vec<Reading> = temps.into_iter().map(|x| x.1).collect();
    let loads: Vec<Reading> = loads.into_iter().map(|x| x.1).collect();
    let rec = |(loc, t, v): &Reading, names: [&str; 3]| {
        (Some(loc.to_string()), json!({names[0]: loc, names[1]: ts(*t), names[2]: v}).to_string(), None)
    };
    produce(&b.bootstrap, &temps_topic, temps.iter().map(|r| rec(r, ["loc", "temp_time", "temp"])));
    produce(&b.bootstrap, &loads_topic, loads.iter().map(|r| rec(r, ["load_loc", "load_time", "load"])));
    let (inner_out, left_out, window_out) = (unique("inner"), unique("left"), unique("window"));
    let on = "load_loc = loc AND load_time >= temp_time AND load_time <= temp_time + INTERVAL 1 HOUR";
    let text = format!(
        "{}sources:
  temps: {{ topic: {temps_topic}, schema: {{ loc: long, temp_time: timestamp, temp: long }}, event_time: temp_time, watermark_delay: 1h, partition_key: [loc] }}
  loads: {{ topic: {loads_topic}, schema: {{ load_loc: long, load_time: timestamp, load: long }}, event_time: load_time, watermark_delay: 2h, partition_key: [load_loc] }}
sinks:
  inner: {{ topic: {inner_out}, output_mode: append }}
  left: {{ topic: {left_out}, output_mode: append }}
  window: {{ topic: {window_out}, output_mode: append }}
queries:
  - {{ name: inner_join, sink: inner, sql: 'SELECT * FROM temps JOIN loads ON {on}' }}
  - {{ name: left_join, sink: left, sql: 'SELECT * FROM temps LEFT JOIN loads ON {on}' }}
  - {{ name: window_join, sink: window, sql: 'SELECT * FROM temps JOIN loads ON load_time BETWEEN temp_time AND temp_time + INTERVAL 1 HOUR WHERE load_loc = loc AND floor(unix_millis(load_time) / 1800000) = floor(unix_millis(temp_time) / 1800000) AND temp > 5' }}
",
        head(&b)
    );
    let summary = run_to_end(&b, &text, 2);
    assert_eq!(summary.records_in, (temps.len() + loads.len()) as u64);
    let (inner, left) = nested_loop(&temps, &loads);
    // The same join with its key, a same-half-hour condition and a filter in WHERE (planned as
    // keys (location, half-hour number) and a filter before the join): the nested loop's inner
    // rows that satisfy them.
    let half_hour = |v: &Value, col: &str| {
        let t = eddy::time::parse_timestamp(v[col].as_str().unwrap()).unwrap();
        t.div_euclid(30 * MIN)
    };
    let same_window: Vec<Value> = inner
        .iter()
        .filter(|r| half_hour(r, "temp_time") == half_hour(r, "load_time") && r["temp"].as_i64().unwrap() > 5)
        .cloned()
        .collect();
    assert!(same_window.len() > 100 && same_window.len() < inner.len(), "the conditions keep some pairs and drop others");
    assert!(left.len() > inner.len() + 30, "location 5 and location 4's gap leave temperatures unmatched");
    assert_eq!(canonical(&read(&b.bootstrap, &inner_out)), expected(inner), "inner join");
    assert_eq!(canonical(&read(&b.bootstrap, &left_out)), expected(left), "left outer join");
    assert_eq!(canonical(&read(&b.bootstrap, &window_out)), expected(same_window), "join on an expression key from WHERE");
}

/// Events (id, time, copy): originals and replays of them, some with a second time.
fn dedup_input(rng: &mut Rng) -> Vec<(i64, (String, i64))> {
    let mut events = Vec::new();
    for i in 0..400 {
        let t = BASE + rng.below(4 * 3600) as i64 * 1000 * MS;
        let id = format!("e{i}");
        events.push((t, (id.clone(), 0)));
        for copy in 1..=rng.below(3) as i64 {
            events.push((t, (id.clone(), copy)));
        }
        if i % 10 == 0 {
            events.push((t + 5 * MIN, (id, 9)));
        }
    }
    events
}

#[test]
fn deduplication_keeps_the_first_arrival() {
    let b = broker();
    let topic = unique("events");
    b.create_topic(&topic, 2);
    let mut rng = Rng::new(5);
    // Up to 20 minutes out of order behind a 30-minute delay: every copy of an event arrives
    // while its first arrival is still in state.
    let input = dedup_input(&mut rng);
    let events = arrival(&mut rng, input, 20 * MIN);
    produce(
        &b.bootstrap,
        &topic,
        events.iter().map(|(t, (id, copy))| (Some(id.clone()), json!({"id": id, "time": ts(*t), "copy": copy}).to_string(), None)),
    );
    let (on_out, all_out) = (unique("distinct-on"), unique("distinct"));
    let text = format!(
        "{}sources:
  events: {{ topic: {topic}, schema: {{ id: string, time: timestamp, copy: long }}, event_time: time, watermark_delay: 30m, partition_key: [id] }}
sinks:
  first: {{ topic: {on_out}, output_mode: append }}
  distinct: {{ topic: {all_out}, output_mode: append }}
queries:
  - {{ name: first_by_id, sink: first, sql: 'SELECT DISTINCT ON (id) id, time, copy FROM events' }}
  - {{ name: distinct_id_time, sink: distinct, sql: 'SELECT DISTINCT id, time FROM events' }}
",
        head(&b)
    );
    run_to_end(&b, &text, 2);
    let mut first: BTreeMap<&str, Value> = BTreeMap::new();
    let mut pairs: BTreeMap<(&str, i64), Value> = BTreeMap::new();
    for (t, (id, copy)) in &events {
        first.entry(id).or_insert_with(|| json!({"id": id, "time": ts(*t), "copy": copy}));
        pairs.entry((id, *t)).or_insert_with(|| json!({"id": id, "time": ts(*t)}));
    }
    assert!(events.len() > first.len() + 300, "the input repeats events");
    assert_eq!(canonical(&read(&b.bootstrap, &on_out)), expected(first.into_values()), "DISTINCT ON (id)");
    assert_eq!(canonical(&read(&b.bootstrap, &all_out)), expected(pairs.into_values()), "DISTINCT id, time");
}

/// A record behind the watermark goes to the late topic unchanged (key, value, timestamp),
/// with headers giving the reason, the watermark at that moment and the query.
#[test]
fn late_records_reach_the_late_topic_unchanged_with_reason_watermark_and_query() {
    let b = broker();
    let topic = unique("events");
    b.create_topic(&topic, 1);
    let mut records: Vec<(Option<String>, String, Option<i32>)> =
        (0..50).map(|i| (Some(format!("e{i}")), json!({"id": format!("e{i}"), "time": ts(BASE + i * MIN)}).to_string(), None)).collect();
    // Behind the watermark (49 minutes - 10 minutes): written oddly, to show it is not re-encoded.
    let late = r#"{ "time" : "2016-07-26T00:05:00Z",  "id":"late-1" }"#;
    records.push((Some("late-key".into()), late.to_string(), None));
    produce(&b.bootstrap, &topic, records);
    let (out, late_topic) = (unique("distinct"), format!("{topic}-late"));
    let text = format!(
        "{}sources:
  events: {{ topic: {topic}, schema: {{ id: string, time: timestamp }}, event_time: time, watermark_delay: 10m, partition_key: [id], late_topic: {late_topic} }}
sinks:
  out: {{ topic: {out}, output_mode: append }}
queries:
  - {{ name: unique_events, sink: out, sql: 'SELECT DISTINCT ON (id) id, time FROM events' }}
",
        head(&b)
    );
    let run = Running::start(b.plan(&text, 1), "a", true, false);
    let metrics = run.metrics.clone();
    run.join();
    assert_eq!(read(&b.bootstrap, &out).len(), 50, "every on-time event, not the late one");
    let got = read(&b.bootstrap, &late_topic);
    assert_eq!(got.len(), 1, "one late record");
    let r = &got[0];
    assert_eq!(r.value_str(), late, "the value unchanged");
    assert_eq!(r.key.as_deref(), Some(&b"late-key"[..]), "the key unchanged");
    assert_eq!(r.header("eddy.error.kind"), Some("late"));
    assert!(r.header("eddy.error.message").is_some_and(|m| !m.is_empty()));
    assert_eq!(r.header("eddy.watermark"), Some(ts(BASE + 49 * MIN - 10 * MIN).as_str()), "the watermark when it arrived");
    assert_eq!(r.header("eddy.query"), Some("unique_events"));
    assert_eq!(r.header("eddy.source.topic"), Some(topic.as_str()));
    assert_eq!(r.header("eddy.source.offset"), Some("50"));
    assert_eq!(metric_sum(&metrics.render(), "eddy_late_records_total"), 1.0);
}
