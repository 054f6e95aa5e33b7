//! Crash test for the stateful operators beyond windows: one pipeline with a stream-stream
//! LEFT JOIN and a session-window count, both behind repartition stages (neither topic is
//! partitioned by location), is killed with SIGKILL at random moments and restarted; the
//! read_committed output must equal a nested-loop join and a batch sessionization exactly.
//! Needs the real broker (KAFKA_BOOTSTRAP_SERVERS).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "chain.rs"]
mod chain;
mod common;

use std::collections::BTreeMap;

use common::*;
use eddy::gen::rng::Rng;

const MINUTE: i64 = 60_000_000;
const START: i64 = 1_469_491_200_000_000;
const LOCATIONS: u64 = 50;
const GAP: i64 = 3 * MINUTE;
const RANGE: i64 = 5 * MINUTE;

struct Data {
    /// (id, location, time)
    temps: Vec<(u64, u64, i64)>,
    loads: Vec<(u64, u64, i64)>,
}

/// Temperatures every 10 minutes per location; loads at random times; both over `hours`,
/// each arriving out of order by up to 10 minutes (the watermark delays are 1 and 2 hours).
fn data(hours: i64, loads: u64, seed: u64) -> Data {
    let mut rng = Rng::new(seed);
    let mut temps = Vec::new();
    for l in 0..LOCATIONS {
        for k in 0..hours * 6 {
            temps.push((rng.below(10 * MINUTE as u64) as i64, l, START + k * 10 * MINUTE));
        }
    }
    let mut load_events: Vec<(i64, u64, i64)> = (0..loads)
        .map(|_| {
            let t = START + (rng.f64() * (hours * 60 * MINUTE) as f64) as i64;
            (t + rng.below(10 * MINUTE as u64) as i64, rng.below(LOCATIONS), t)
        })
        .collect();
    temps.iter_mut().for_each(|t| t.0 += t.2);
    temps.sort();
    load_events.sort();
    Data {
        temps: temps.into_iter().enumerate().map(|(i, (_, l, t))| (i as u64, l, t)).collect(),
        loads: load_events.into_iter().enumerate().map(|(i, (_, l, t))| (i as u64, l, t)).collect(),
    }
}

fn json(kind: &str, (id, l, t): (u64, u64, i64)) -> String {
    let mut ts = String::new();
    eddy::time::format_timestamp(t, &mut ts);
    format!(r#"{{"{kind}_id":{id},"{kind}_location_id":{l},"{kind}_taken_time":"{ts}"}}"#)
}

/// A pipeline file up to its sinks: the temps and loads sources of these tests.
fn temps_and_loads(app: &str, bootstrap: &str, temps: &str, loads: &str, state: &std::path::Path) -> String {
    format!(
        r#"app: {app}
kafka:
  bootstrap_servers: "{bootstrap}"
  static_membership: true
  properties: {{ "session.timeout.ms": "6000" }}
state: {{ dir: "{state}" }}
commit_interval: 100ms
http: {{ listen: "127.0.0.1:0" }}
sources:
  temps:
    topic: {temps}
    schema: {{ temp_id: long, temp_location_id: long, temp_taken_time: timestamp }}
    event_time: temp_taken_time
    watermark_delay: 1h
  loads:
    topic: {loads}
    schema: {{ load_id: long, load_location_id: long, load_taken_time: timestamp }}
    event_time: load_taken_time
    watermark_delay: 2h
"#,
        state = state.display()
    )
}

fn pipeline(app: &str, bootstrap: &str, temps: &str, loads: &str, joined: &str, sessions: &str, state: &std::path::Path) -> String {
    let sources = temps_and_loads(app, bootstrap, temps, loads, state);
    format!(
        r#"{sources}sinks:
  joined: {{ topic: {joined} }}
  sessions: {{ topic: {sessions} }}
queries:
  - name: loads_with_temps
    sink: joined
    sql: |
      SELECT l.load_id, t.temp_id
      FROM loads AS l LEFT JOIN temps AS t
        ON l.load_location_id = t.temp_location_id
       AND l.load_taken_time BETWEEN t.temp_taken_time AND t.temp_taken_time + INTERVAL 5 MINUTES
  - name: load_sessions
    sink: sessions
    sql: |
      SELECT load_location_id AS location, session_window.start AS session_start, count(*) AS loads
      FROM loads
      GROUP BY load_location_id, session_window(load_taken_time, '3 minutes')
"#,
    )
}

/// The LEFT JOIN by nested loops: (load id, temp id or None), as a multiset.
fn nested_loop(d: &Data) -> BTreeMap<(u64, Option<u64>), usize> {
    let mut temps: BTreeMap<u64, Vec<(u64, i64)>> = BTreeMap::new();
    for &(tid, tl, tt) in &d.temps {
        temps.entry(tl).or_default().push((tid, tt));
    }
    let mut out = BTreeMap::new();
    for &(lid, ll, lt) in &d.loads {
        let mut matched = false;
        for &(tid, tt) in temps.get(&ll).map_or(&[][..], |v| v.as_slice()) {
            if lt >= tt && lt <= tt + RANGE {
                *out.entry((lid, Some(tid))).or_default() += 1;
                matched = true;
            }
        }
        if !matched {
            *out.entry((lid, None)).or_default() += 1;
        }
    }
    out
}

/// Sessions per location: an event more than GAP after the session's last event starts a new one.
fn sessionize(d: &Data) -> BTreeMap<(u64, String), u64> {
    let mut by_location: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for &(_, l, t) in &d.loads {
        by_location.entry(l).or_default().push(t);
    }
    let mut out = BTreeMap::new();
    for (l, mut times) in by_location {
        times.sort();
        let (mut start, mut last, mut n) = (times[0], times[0], 0u64);
        for t in times {
            if t > last + GAP {
                let mut s = String::new();
                eddy::time::format_timestamp(start, &mut s);
                out.insert((l, s), n);
                (start, n) = (t, 0);
            }
            last = t;
            n += 1;
        }
        let mut s = String::new();
        eddy::time::format_timestamp(start, &mut s);
        out.insert((l, s), n);
    }
    out
}

#[test]
fn killed_mid_stream_a_join_and_sessions_behind_repartitions_stay_exact() {
    let Some(broker) = Broker::real("killed_mid_stream_a_join_and_sessions_behind_repartitions_stay_exact") else { return };
    let loads: u64 = std::env::var("EDDY_CRASH_JOIN_LOADS").ok().and_then(|v| v.parse().ok()).unwrap_or(300_000);
    let d = data(48, loads, 17);
    let (temps, loads_topic) = (unique("crash-temps"), unique("crash-loads"));
    broker.create_topic(&temps, 4);
    broker.create_topic(&loads_topic, 4);
    // Round-robin over partitions: no partition holds all of a location.
    produce(&broker.bootstrap, &temps, d.temps.iter().enumerate().map(|(i, &t)| (None, json("temp", t), Some(i as i32 % 4))));
    produce(&broker.bootstrap, &loads_topic, d.loads.iter().enumerate().map(|(i, &l)| (None, json("load", l), Some(i as i32 % 4))));
    let (joined, sessions) = (unique("crash-joined"), unique("crash-sessions"));
    let app = unique("crash-join-app");
    let file = write_pipeline(&pipeline(&app, &broker.bootstrap, &temps, &loads_topic, &joined, &sessions, &temp_dir("crash-join")));
    let file = file.to_str().unwrap();
    let log = temp_dir("crash-join-log").join("eddy.log");
    let mut rng = Rng::new(5);
    // The join's stage 2 does the work: watch the loads side's repartition topic.
    let internal = format!("{app}-loads_with_temps-repartition");
    let killer = Killer { bootstrap: &broker.bootstrap, group: &app, topic: &internal, partitions: 4, total: loads };
    let progress = killer.run(file, "crash", &log, 5, &mut rng);
    assert!(progress.iter().filter(|&&p| p > 0 && (p as u64) < loads).count() >= 2, "kills landed mid-stream: {progress:?}");
    run_to_end(file, "crash", &log);

    let mut got_join: BTreeMap<(u64, Option<u64>), usize> = BTreeMap::new();
    for r in read(&broker.bootstrap, &joined) {
        let v: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
        *got_join.entry((v["load_id"].as_u64().unwrap(), v["temp_id"].as_u64())).or_default() += 1;
    }
    let expected_join = nested_loop(&d);
    assert!(expected_join.keys().any(|k| k.1.is_none()) && expected_join.keys().any(|k| k.1.is_some()), "both outcomes occur");
    assert_eq!(got_join.len(), expected_join.len(), "distinct join rows");
    assert_eq!(got_join, expected_join, "the join: no duplicate, no missing row");

    let mut got_sessions = BTreeMap::new();
    for r in read(&broker.bootstrap, &sessions) {
        let v: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
        let key = (v["location"].as_u64().unwrap(), v["session_start"].as_str().unwrap().to_string());
        assert!(got_sessions.insert(key.clone(), v["loads"].as_u64().unwrap()).is_none(), "session {key:?} emitted twice");
    }
    assert_eq!(got_sessions, sessionize(&d), "the sessions: no duplicate, no missing or different row");
}
