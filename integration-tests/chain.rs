//! Chained stateful operators on the real broker: one query joins temperatures with loads,
//! counts the pairs per location and 10 minutes, and takes the max and sum of those counts per
//! hour — three stateful operators in three stages linked by internal topics. It is killed
//! with SIGKILL at random moments and restarted; the read_committed output must equal the
//! same computation done in memory (a nested-loop join, then the two aggregations) exactly.
//! Needs the real broker (KAFKA_BOOTSTRAP_SERVERS). Part of the `crash_join` test target.

use std::collections::BTreeMap;

use super::json;
use crate::common::*;
use eddy::gen::rng::Rng;

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const START: i64 = 1_469_491_200_000_000;
const LOCATIONS: u64 = 40;
const RANGE: i64 = 5 * MINUTE;

/// (id, location, time) of readings.
type Readings = Vec<(u64, u64, i64)>;

/// (id, location, time) of temperatures (every 10 minutes per location) and loads (at random
/// times), each arriving out of order by up to 10 minutes.
fn data(hours: i64, loads: u64, seed: u64) -> (Readings, Readings) {
    let mut rng = Rng::new(seed);
    let mut temps = Vec::new();
    for l in 0..LOCATIONS {
        for k in 0..hours * 6 {
            let t = START + k * 10 * MINUTE + rng.below(10 * MINUTE as u64) as i64;
            temps.push((t + rng.below(10 * MINUTE as u64) as i64, l, t));
        }
    }
    let mut load_events: Vec<(i64, u64, i64)> = (0..loads)
        .map(|_| {
            let t = START + (rng.f64() * (hours * HOUR) as f64) as i64;
            (t + rng.below(10 * MINUTE as u64) as i64, rng.below(LOCATIONS), t)
        })
        .collect();
    temps.sort();
    load_events.sort();
    // The JSON carries milliseconds: the model must see the times the engine reads.
    let ms = |t: i64| t - t.rem_euclid(1000);
    temps.iter_mut().for_each(|t| t.2 = ms(t.2));
    load_events.iter_mut().for_each(|t| t.2 = ms(t.2));
    let number = |v: Vec<(i64, u64, i64)>| v.into_iter().enumerate().map(|(i, (_, l, t))| (i as u64, l, t)).collect();
    (number(temps), number(load_events))
}

const QUERY: &str = "
      WITH pairs AS (
        SELECT t.temp_location_id AS location, t.temp_taken_time AS time, l.load_id
        FROM temps AS t JOIN loads AS l
          ON l.load_location_id = t.temp_location_id
         AND l.load_taken_time BETWEEN t.temp_taken_time AND t.temp_taken_time + INTERVAL 5 MINUTES),
      per_location AS (
        SELECT location, window(time, '10 minutes') AS w, count(*) AS n
        FROM pairs GROUP BY location, window(time, '10 minutes'))
      SELECT window.start AS hour, max(n) AS max_n, sum(n) AS pairs, count(*) AS windows
      FROM per_location GROUP BY window(w, '1 hour')";

fn pipeline(app: &str, bootstrap: &str, temps: &str, loads: &str, out: &str, state: &std::path::Path) -> String {
    let sql: String = QUERY.lines().map(|l| format!("      {}\n", l.trim_start())).collect();
    let sources = super::temps_and_loads(app, bootstrap, temps, loads, state);
    format!(
        r#"{sources}sinks:
  hourly: {{ topic: {out} }}
queries:
  - name: busiest
    sink: hourly
    sql: |
{sql}"#
    )
}

/// The same query in memory: hour start (RFC 3339) → (max_n, pairs, windows).
fn model(temps: &[(u64, u64, i64)], loads: &[(u64, u64, i64)]) -> BTreeMap<String, (u64, u64, u64)> {
    let mut by_location: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for &(_, l, t) in temps {
        by_location.entry(l).or_default().push(t);
    }
    // (location, 10-minute window start) → pairs
    let mut tenmin: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for &(_, l, lt) in loads {
        for &tt in by_location.get(&l).map_or(&[][..], |v| v.as_slice()) {
            if lt >= tt && lt <= tt + RANGE {
                *tenmin.entry((l, tt - tt.rem_euclid(10 * MINUTE))).or_default() += 1;
            }
        }
    }
    let mut hourly: BTreeMap<i64, (u64, u64, u64)> = BTreeMap::new();
    for (&(_, start), &n) in &tenmin {
        // window_time = end - 1 µs
        let t = start + 10 * MINUTE - 1;
        let e = hourly.entry(t - t.rem_euclid(HOUR)).or_default();
        e.0 = e.0.max(n);
        e.1 += n;
        e.2 += 1;
    }
    hourly
        .into_iter()
        .map(|(h, v)| {
            let mut s = String::new();
            eddy::time::format_timestamp(h, &mut s);
            (s, v)
        })
        .collect()
}

#[test]
fn killed_mid_stream_a_join_and_two_aggregations_in_one_query_stay_exact() {
    let Some(broker) = Broker::real("killed_mid_stream_a_join_and_two_aggregations_in_one_query_stay_exact") else { return };
    let n_loads: u64 = std::env::var("EDDY_CHAIN_LOADS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let (temps, loads) = data(48, n_loads, 23);
    let (temps_topic, loads_topic, out) = (unique("chain-temps"), unique("chain-loads"), unique("chain-out"));
    broker.create_topic(&temps_topic, 4);
    broker.create_topic(&loads_topic, 4);
    // Round-robin over partitions: no partition holds all of a location.
    produce(&broker.bootstrap, &temps_topic, temps.iter().enumerate().map(|(i, &t)| (None, json("temp", t), Some(i as i32 % 4))));
    produce(&broker.bootstrap, &loads_topic, loads.iter().enumerate().map(|(i, &l)| (None, json("load", l), Some(i as i32 % 4))));
    let app = unique("chain-app");
    let file = write_pipeline(&pipeline(&app, &broker.bootstrap, &temps_topic, &loads_topic, &out, &temp_dir("chain")));
    let file = file.to_str().unwrap();
    let explained = std::process::Command::new(env!("CARGO_BIN_EXE_eddy")).args(["explain", "-c", file]).output().unwrap();
    let explained = String::from_utf8_lossy(&explained.stdout);
    assert!(explained.contains("chains 3 stateful operators"), "{explained}");
    let log = temp_dir("chain-log").join("eddy.log");
    let mut rng = Rng::new(9);
    // The join stage (named busiest-s2: stages are named top down) reads the loads side here.
    let internal = format!("{app}-busiest-s2-repartition-right");
    let killer = Killer { bootstrap: &broker.bootstrap, group: &app, topic: &internal, partitions: 4, total: n_loads };
    let kills: u64 = std::env::var("EDDY_CHAIN_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let progress = killer.run(file, "chain", &log, kills, &mut rng);
    assert!(
        kills == 0 || progress.iter().filter(|&&p| p > 0 && (p as u64) < n_loads).count() >= 2,
        "kills landed mid-stream: {progress:?}"
    );
    run_to_end(file, "chain", &log);

    let mut got = BTreeMap::new();
    for r in read(&broker.bootstrap, &out) {
        let v: serde_json::Value = serde_json::from_str(r.value_str()).unwrap();
        let hour = v["hour"].as_str().unwrap().to_string();
        let row = (v["max_n"].as_u64().unwrap(), v["pairs"].as_u64().unwrap(), v["windows"].as_u64().unwrap());
        assert!(got.insert(hour.clone(), row).is_none(), "hour {hour} emitted twice");
    }
    let expected = model(&temps, &loads);
    assert!(expected.len() >= 40, "the model has {} hours", expected.len());
    assert_eq!(got.len(), expected.len(), "hours");
    assert_eq!(got, expected, "no duplicate, no missing or different row");
}
