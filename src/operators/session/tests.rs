use crate::sql::AggregateKind;
use crate::types::DataType;
use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::time::{PartitionWatermark, NO_WATERMARK};

const MIN: i64 = 60_000_000;
const H: i64 = 60 * MIN;
const GAP: i64 = 10 * MIN;

fn count_and_sum() -> Vec<AggregateCall> {
    crate::sql::numbered(vec![
        AggregateCall::native(AggregateKind::CountStar, DataType::Int64, "count(1)"),
        AggregateCall::native(AggregateKind::Sum, DataType::Int64, "sum(v)"),
    ])
}

fn op(gap: i64, mode: OutputMode) -> SessionAggregate {
    SessionAggregate::new(gap, 1, &count_and_sum(), mode)
}

fn row(ts: i64, key: &str, v: i64) -> Vec<Value> {
    vec![Value::Timestamp(ts), Value::str(key), Value::Null, Value::Long(v)]
}

fn feed(o: &mut SessionAggregate, events: &[(i64, &str, i64)]) {
    for &(ts, key, v) in events {
        assert_eq!(o.process(0, &row(ts, key, v), NO_WATERMARK, &mut Vec::new()), Processed::Accepted);
    }
}

fn out_row(key: &str, start: i64, end: i64, count: i64, sum: i64) -> Vec<Value> {
    vec![Value::str(key), Value::Window { start, end }, Value::Long(count), Value::Long(sum)]
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| format!("{r:?}"));
    rows
}

/// State as sled would hold it: what `take_changes` wrote.
fn persist(op: &mut SessionAggregate, store: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    op.take_changes(&mut |k, v| match v {
        Some(v) => {
            store.insert(k.to_vec(), v.to_vec());
        }
        None => {
            assert!(store.remove(k).is_some(), "tombstone for a key that was never written");
        }
    });
}

fn restored(store: &BTreeMap<Vec<u8>, Vec<u8>>, gap: i64, mode: OutputMode) -> SessionAggregate {
    let mut o = op(gap, mode);
    for (k, v) in store {
        o.restore(k, Some(v)).unwrap();
    }
    o
}

#[test]
fn an_event_exactly_gap_later_joins_the_session() {
    let mut o = op(GAP, OutputMode::Append);
    feed(&mut o, &[(0, "a", 1), (GAP, "a", 2), (2 * GAP, "a", 4)]);
    assert_eq!(o.entries(), 1, "touching sessions merge");
    let mut out = Vec::new();
    o.on_watermark(i64::MAX, &mut out);
    assert_eq!(out, vec![out_row("a", 0, 3 * GAP, 3, 7)]);
}

#[test]
fn an_event_one_microsecond_past_the_gap_starts_a_new_session() {
    let mut o = op(GAP, OutputMode::Append);
    feed(&mut o, &[(0, "a", 1), (GAP + 1, "a", 2), (GAP + 1, "b", 5)]);
    assert_eq!(o.entries(), 3);
    let mut out = Vec::new();
    o.on_watermark(i64::MAX, &mut out);
    assert_eq!(
        sorted(out),
        sorted(vec![out_row("a", 0, GAP, 1, 1), out_row("a", GAP + 1, 2 * GAP + 1, 1, 2), out_row("b", GAP + 1, 2 * GAP + 1, 1, 5)])
    );
}

#[test]
fn an_out_of_order_event_bridges_two_sessions() {
    let mut o = op(GAP, OutputMode::Append);
    feed(&mut o, &[(0, "a", 1), (2 * GAP, "a", 10), (2 * GAP + 5, "a", 100), (5 * GAP, "a", 1000)]);
    assert_eq!(o.entries(), 3, "[0, g), [2g, 3g + 5), [5g, 6g)");
    // [g, 2g) touches [0, g) at g and [2g, ...) at 2g: all three merge
    feed(&mut o, &[(GAP, "a", 20000)]);
    assert_eq!(o.entries(), 2);
    // an event before the first session moves its start back (and touches it at g / 2)
    feed(&mut o, &[(-GAP / 2, "a", 300000)]);
    assert_eq!(o.entries(), 2);
    let mut out = Vec::new();
    o.on_watermark(i64::MAX, &mut out);
    assert_eq!(out, vec![out_row("a", -GAP / 2, 3 * GAP + 5, 5, 320111), out_row("a", 5 * GAP, 6 * GAP, 1, 1000)]);
}

#[test]
fn one_event_can_bridge_many_sessions_and_merge_every_aggregate() {
    let calls = crate::sql::numbered(vec![
        AggregateCall::native(AggregateKind::CountStar, DataType::Int64, "count(1)"),
        AggregateCall::native(AggregateKind::Min, DataType::Int64, "min(v)"),
        AggregateCall::native(AggregateKind::Max, DataType::Int64, "max(v)"),
        AggregateCall::native(AggregateKind::Avg, DataType::Float64, "avg(v)"),
        AggregateCall::native(AggregateKind::CountDistinct, DataType::Int64, "count(DISTINCT v)"),
    ]);
    let mut o = SessionAggregate::new(10, 0, &calls, OutputMode::Append);
    let r = |ts: i64, v: i64| vec![Value::Timestamp(ts), Value::Null, Value::Long(v), Value::Long(v), Value::Long(v), Value::Long(v)];
    // sessions [0, 10), [12, 22), [24, 34), [36, 46)
    for (ts, v) in [(0, 4), (12, 8), (24, 4), (36, 2)] {
        o.process(0, &r(ts, v), NO_WATERMARK, &mut Vec::new());
    }
    assert_eq!(o.entries(), 4);
    // [5, 15) bridges the first two, [30, 40) the last two, then [14, 24) touches both results
    o.process(0, &r(5, 6), NO_WATERMARK, &mut Vec::new());
    o.process(0, &r(30, 6), NO_WATERMARK, &mut Vec::new());
    assert_eq!(o.entries(), 2);
    o.process(0, &r(14, 1), NO_WATERMARK, &mut Vec::new());
    assert_eq!(o.entries(), 1);
    let mut out = Vec::new();
    o.on_watermark(i64::MAX, &mut out);
    assert_eq!(
        out,
        vec![vec![
            Value::Window { start: 0, end: 46 },
            Value::Long(7),
            Value::Long(1),
            Value::Long(8),
            Value::Double(31.0 / 7.0),
            Value::Long(5)
        ]]
    );
}

#[test]
fn a_row_whose_own_session_has_closed_is_late() {
    let mut o = op(GAP, OutputMode::Append);
    assert_eq!(o.process(0, &row(H - GAP, "a", 1), H, &mut Vec::new()), Processed::Late, "ts + gap == watermark");
    assert_eq!(o.entries(), 0, "a late row changes nothing");
    let mut changes = 0;
    o.take_changes(&mut |_, _| changes += 1);
    assert_eq!(changes, 0);
    assert_eq!(o.process(0, &row(H - GAP + 1, "a", 1), H, &mut Vec::new()), Processed::Accepted, "ts + gap == watermark + 1");
    assert_eq!(o.entries(), 1);
    assert_eq!(o.process(0, &[Value::Null, Value::str("a"), Value::Null, Value::Long(1)], H, &mut Vec::new()), Processed::Late);
    let mut zero = op(0, OutputMode::Append);
    assert_eq!(zero.process(0, &row(H, "a", 1), NO_WATERMARK, &mut Vec::new()), Processed::Late, "Spark drops empty sessions");
}

#[test]
fn append_emits_sessions_that_end_at_or_before_the_watermark_once() {
    let mut o = op(GAP, OutputMode::Append);
    feed(&mut o, &[(0, "a", 1), (5, "a", 1), (3 * GAP, "b", 1)]);
    let mut out = Vec::new();
    o.on_commit(&mut out);
    assert!(out.is_empty(), "append mode emits at the watermark only");
    o.on_watermark(GAP + 4, &mut out);
    assert!(out.is_empty(), "[0, g + 5) is open at g + 4");
    o.on_watermark(GAP + 5, &mut out);
    assert_eq!(out, vec![out_row("a", 0, GAP + 5, 2, 2)]);
    assert_eq!(o.entries(), 1, "the emitted session is dropped");
    o.on_watermark(GAP + 5, &mut out);
    o.on_watermark(3 * GAP, &mut out);
    assert_eq!(out.len(), 1, "emitted once");
    o.on_watermark(4 * GAP, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1], out_row("b", 3 * GAP, 4 * GAP, 1, 1));
    assert_eq!(o.entries(), 0);
    assert_eq!(o.state_bytes(), 0);
}

#[test]
fn update_mode_emits_changed_sessions_at_commit() {
    let mut o = op(GAP, OutputMode::Update);
    feed(&mut o, &[(0, "a", 1), (2 * GAP, "a", 2), (0, "b", 5)]);
    let mut out = Vec::new();
    o.on_commit(&mut out);
    assert_eq!(
        sorted(out.clone()),
        sorted(vec![out_row("a", 0, GAP, 1, 1), out_row("a", 2 * GAP, 3 * GAP, 1, 2), out_row("b", 0, GAP, 1, 5)])
    );
    out.clear();
    o.on_commit(&mut out);
    assert!(out.is_empty(), "nothing changed since");
    // bridge a's two sessions: one merged row, nothing for the session that merged away
    feed(&mut o, &[(GAP, "a", 10)]);
    o.on_commit(&mut out);
    assert_eq!(out, vec![out_row("a", 0, 3 * GAP, 3, 13)]);
    out.clear();
    // a change that closes before the commit is emitted at eviction; unchanged sessions are not
    feed(&mut o, &[(GAP + 1, "a", 100)]);
    o.on_watermark(3 * GAP, &mut out);
    assert_eq!(out, vec![out_row("a", 0, 3 * GAP, 4, 113)]);
    assert_eq!(o.entries(), 0, "closed sessions are dropped (b's without output: it was emitted already)");
    out.clear();
    o.on_commit(&mut out);
    assert!(out.is_empty());
}

#[test]
fn a_session_changed_twice_in_a_cycle_and_moved_is_emitted_once() {
    let mut o = op(GAP, OutputMode::Update);
    feed(&mut o, &[(GAP, "a", 1), (GAP + 1, "a", 1), (0, "a", 1), (-GAP, "a", 1)]);
    let mut out = Vec::new();
    o.on_commit(&mut out);
    assert_eq!(out, vec![out_row("a", -GAP, 2 * GAP + 1, 4, 4)]);
}

#[test]
fn complete_mode_is_not_supported_but_behaves_like_update() {
    let mut o = op(GAP, OutputMode::Complete);
    feed(&mut o, &[(0, "a", 1)]);
    let mut out = Vec::new();
    o.on_commit(&mut out);
    o.on_commit(&mut out);
    assert_eq!(out, vec![out_row("a", 0, GAP, 1, 1)]);
    feed(&mut o, &[(1, "a", 1)]);
    o.on_watermark(i64::MAX, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(o.entries(), 0);
}

#[test]
fn changes_are_latest_values_and_tombstones_only_for_persisted_keys() {
    let mut o = op(GAP, OutputMode::Append);
    let mut store = BTreeMap::new();
    feed(&mut o, &[(100, "a", 1), (101, "a", 1)]);
    let mut writes = 0;
    o.take_changes(&mut |_, v| {
        assert!(v.is_some());
        writes += 1;
    });
    assert_eq!(writes, 1, "two updates of one session are one changelog record");
    feed(&mut o, &[(102, "a", 1)]);
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 1);
    let first_key = store.keys().next().cloned().unwrap();

    // an earlier event moves the session's start: the old key is deleted, the new one written
    feed(&mut o, &[(90, "a", 1)]);
    let mut log = Vec::new();
    o.take_changes(&mut |k, v| log.push((k.to_vec(), v.map(<[u8]>::to_vec))));
    assert_eq!(log.len(), 2);
    assert_eq!(log[0], (first_key.clone(), None));
    assert!(log[1].0 != first_key && log[1].1.is_some());
    for (k, v) in log {
        match v {
            Some(v) => store.insert(k, v),
            None => store.remove(&k),
        };
    }

    // sessions born and merged (or closed) within one cycle leave no trace
    feed(&mut o, &[(3 * GAP, "a", 1), (5 * GAP, "a", 1), (4 * GAP, "a", 1), (3 * GAP, "b", 1)]);
    let mut out = Vec::new();
    o.on_watermark(10 * GAP, &mut out);
    assert_eq!(out.len(), 3);
    let mut deletes = 0;
    o.take_changes(&mut |_, v| {
        assert!(v.is_none(), "nothing live is left to write");
        deletes += 1;
    });
    assert_eq!(deletes, 1, "only the persisted session is tombstoned");
}

#[test]
fn merging_persisted_sessions_tombstones_the_absorbed_ones() {
    let mut o = op(GAP, OutputMode::Append);
    let mut store = BTreeMap::new();
    feed(&mut o, &[(0, "a", 1), (2 * GAP, "a", 2), (4 * GAP, "a", 4)]);
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 3);
    feed(&mut o, &[(3 * GAP, "a", 8), (GAP, "a", 16)]);
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 1, "one session left in state");
    let mut r = restored(&store, GAP, OutputMode::Append);
    let mut out = Vec::new();
    r.on_watermark(i64::MAX, &mut out);
    assert_eq!(out, vec![out_row("a", 0, 5 * GAP, 5, 31)]);
}

#[test]
fn restore_after_take_changes_behaves_identically() {
    for mode in [OutputMode::Append, OutputMode::Update] {
        let mut o = op(GAP, mode);
        let mut store = BTreeMap::new();
        for i in 0..60 {
            let key = if i % 3 == 0 { "x" } else { "y" };
            o.process(0, &row(i * 4 * MIN + (i % 7) * MIN, key, i), NO_WATERMARK, &mut Vec::new());
        }
        o.on_commit(&mut Vec::new());
        persist(&mut o, &mut store);
        let mut r = restored(&store, GAP, mode);
        assert_eq!(r.entries(), o.entries());
        assert_eq!(r.state_bytes(), o.state_bytes());
        // the same further input (merging, moving starts, evicting) gives the same output and changes
        let more = [
            (3 * MIN, "x", 1000),
            (0, "y", 1000),
            (70 * MIN, "y", 5),
            (121 * MIN, "y", 4),
            (147 * MIN, "x", 3),
            (500 * MIN, "x", 7),
            (-20 * MIN, "z", 1),
            (230 * MIN, "x", 9),
        ];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (step, &(ts, key, v)) in more.iter().enumerate() {
            assert_eq!(o.process(0, &row(ts, key, v), 60 * MIN, &mut a), r.process(0, &row(ts, key, v), 60 * MIN, &mut b));
            o.on_watermark(60 * MIN + step as i64 * 30 * MIN, &mut a);
            r.on_watermark(60 * MIN + step as i64 * 30 * MIN, &mut b);
        }
        o.on_commit(&mut a);
        r.on_commit(&mut b);
        let (mut ca, mut cb) = (BTreeMap::new(), BTreeMap::new());
        o.take_changes(&mut |k, v| {
            ca.insert(k.to_vec(), v.map(<[u8]>::to_vec));
        });
        r.take_changes(&mut |k, v| {
            cb.insert(k.to_vec(), v.map(<[u8]>::to_vec));
        });
        assert_eq!(ca, cb, "{mode:?}");
        o.on_watermark(i64::MAX, &mut a);
        r.on_watermark(i64::MAX, &mut b);
        assert!(!a.is_empty());
        assert_eq!(sorted(a), sorted(b), "{mode:?}");
    }
}

#[test]
fn restore_replaces_and_deletes_entries() {
    let mut o = op(GAP, OutputMode::Append);
    let mut log = Vec::new();
    feed(&mut o, &[(0, "a", 1)]);
    o.take_changes(&mut |k, v| log.push((k.to_vec(), v.map(<[u8]>::to_vec))));
    feed(&mut o, &[(5, "a", 1)]);
    o.take_changes(&mut |k, v| log.push((k.to_vec(), v.map(<[u8]>::to_vec))));
    feed(&mut o, &[(-5, "a", 1), (0, "b", 1)]);
    o.take_changes(&mut |k, v| log.push((k.to_vec(), v.map(<[u8]>::to_vec))));
    let mut out = Vec::new();
    o.on_watermark(GAP, &mut out);
    o.take_changes(&mut |k, v| log.push((k.to_vec(), v.map(<[u8]>::to_vec))));
    // replaying the whole changelog in order gives the live state
    let mut r = op(GAP, OutputMode::Append);
    for (k, v) in &log {
        r.restore(k, v.as_deref()).unwrap();
    }
    assert_eq!(r.entries(), 1);
    assert_eq!(r.entries(), o.entries());
    assert_eq!(r.state_bytes(), o.state_bytes());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    o.on_watermark(i64::MAX, &mut a);
    r.on_watermark(i64::MAX, &mut b);
    assert_eq!(a, b);
    assert_eq!(a, vec![out_row("a", -5, GAP + 5, 3, 3)]);
    // deleting what is not there is a no-op; clear forgets everything
    r.restore(&log[0].0, None).unwrap();
    let mut c = restored(&BTreeMap::from([(log[0].0.clone(), log[0].1.clone().unwrap())]), GAP, OutputMode::Append);
    assert_eq!(c.entries(), 1);
    c.clear();
    assert_eq!((c.entries(), c.state_bytes()), (0, 0));
    c.on_watermark(i64::MAX, &mut b);
    assert_eq!(b.len(), 1);
}

#[test]
fn corrupt_bytes_are_errors() {
    let mut o = op(GAP, OutputMode::Append);
    feed(&mut o, &[(0, "a", 1)]);
    let mut entry = None;
    o.take_changes(&mut |k, v| entry = Some((k.to_vec(), v.map(<[u8]>::to_vec))));
    let (key, value) = entry.unwrap();
    let value = value.unwrap();
    let mut r = op(GAP, OutputMode::Append);
    assert!(r.restore(&[DATA_PREFIX, 1, 2], Some(&value)).is_err(), "a short key");
    assert!(r.restore(&[DATA_PREFIX, 1, 2], None).is_err(), "a short key");
    let mut foreign = key.clone();
    foreign[0] = 0x02;
    assert!(r.restore(&foreign, Some(&value)).is_err(), "another prefix");
    assert!(r.restore(&key, Some(&[])).is_err(), "empty value");
    assert!(matches!(r.restore(&key, Some(&[9, 9])), Err(CodecError::UnknownVersion(9, VALUE_VERSION))));
    for cut in 1..value.len() {
        assert!(r.restore(&key, Some(&value[..cut])).is_err(), "truncated at {cut}");
    }
    let mut trailing = value.clone();
    trailing.push(0);
    assert!(r.restore(&key, Some(&trailing)).is_err(), "trailing bytes");
    let mut backwards = value.clone();
    backwards[1..9].copy_from_slice(&(-1i64).to_le_bytes());
    assert!(r.restore(&key, Some(&backwards)).is_err(), "ends before it starts");
    let mut other_calls = SessionAggregate::new(GAP, 1, &count_and_sum()[..1], OutputMode::Append);
    assert!(other_calls.restore(&key, Some(&value)).is_err(), "the aggregates changed");
    assert_eq!(r.entries(), 0, "nothing half-loaded");
    r.restore(&key, Some(&value)).unwrap();
    assert_eq!(r.entries(), 1);
}

/// Events with an arrival order whose disorder stays within `delay`: each is delivered at
/// `ts + jitter` with `0 <= jitter <= delay`.
fn arrival_order(events: &[(i64, u8, i64)], jitters: &[i64]) -> Vec<(i64, u8, i64)> {
    let mut v: Vec<(i64, (i64, u8, i64))> = events.iter().zip(jitters).map(|(e, j)| (e.0 + j, *e)).collect();
    v.sort_by_key(|(arrival, e)| (*arrival, e.0));
    v.into_iter().map(|(_, e)| e).collect()
}

/// Batch sessionization: per key, events in time order; an event at or before the current
/// session's end joins it.
fn batch(events: &[(i64, u8, i64)], gap: i64) -> Vec<String> {
    let mut by_key: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
    for &(ts, key, v) in events {
        by_key.entry(key).or_default().push((ts, v));
    }
    let mut rows = Vec::new();
    for (key, mut evs) in by_key {
        evs.sort();
        let mut current: Option<(i64, i64, i64, i64)> = None;
        for (ts, v) in evs {
            current = match current {
                Some((start, end, c, s)) if ts <= end => Some((start, end.max(ts + gap), c + 1, s + v)),
                other => {
                    if let Some((start, end, c, s)) = other {
                        rows.push(format!("{key} {start} {end} {c} {s}"));
                    }
                    Some((ts, ts + gap, 1, v))
                }
            };
        }
        if let Some((start, end, c, s)) = current {
            rows.push(format!("{key} {start} {end} {c} {s}"));
        }
    }
    rows.sort();
    rows
}

fn streamed(order: &[(i64, u8, i64)], gap: i64, delay: i64, crashes: &[usize]) -> (Vec<String>, usize) {
    let t0 = Instant::now();
    let mut wm = PartitionWatermark::new(delay, None, t0);
    let mut o = op(gap, OutputMode::Append);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    let mut late = 0;
    for (i, &(ts, key, v)) in order.iter().enumerate() {
        if crashes.contains(&i) {
            // commit, then lose the in-memory operator and rebuild it from persisted state
            persist(&mut o, &mut store);
            o = restored(&store, gap, OutputMode::Append);
        }
        if o.process(0, &row(ts, &key.to_string(), v), wm.watermark(), &mut Vec::new()) == Processed::Late {
            late += 1;
        }
        wm.observe(ts, t0);
        o.on_watermark(wm.watermark(), &mut out);
    }
    o.on_watermark(i64::MAX, &mut out);
    assert_eq!(o.entries(), 0);
    persist(&mut o, &mut store);
    assert!(store.is_empty(), "every persisted session was tombstoned");
    let mut rows: Vec<String> = out
        .iter()
        .map(|r| {
            let (Value::Window { start, end }, Value::Long(c), Value::Long(s)) = (&r[1], &r[2], &r[3]) else { panic!("bad row {r:?}") };
            let Value::Str(k) = &r[0] else { panic!() };
            format!("{k} {start} {end} {c} {s}")
        })
        .collect();
    rows.sort();
    (rows, late)
}

/// Update mode with commits after random rows: for every final session, the last row emitted
/// for its window is the batch result (rows for sessions that later merged away stay emitted,
/// as in Spark, which has no retraction).
fn streamed_updates(order: &[(i64, u8, i64)], gap: i64, delay: i64, commits: &[bool]) -> BTreeMap<String, String> {
    let t0 = Instant::now();
    let mut wm = PartitionWatermark::new(delay, None, t0);
    let mut o = op(gap, OutputMode::Update);
    let mut out = Vec::new();
    for (i, &(ts, key, v)) in order.iter().enumerate() {
        assert_eq!(o.process(0, &row(ts, &key.to_string(), v), wm.watermark(), &mut Vec::new()), Processed::Accepted);
        wm.observe(ts, t0);
        o.on_watermark(wm.watermark(), &mut out);
        if commits.get(i).copied().unwrap_or(false) {
            o.on_commit(&mut out);
        }
    }
    o.on_commit(&mut out);
    o.on_watermark(i64::MAX, &mut out);
    let mut last = BTreeMap::new();
    for r in &out {
        let (Value::Str(k), Value::Window { start, end }, Value::Long(c), Value::Long(s)) = (&r[0], &r[1], &r[2], &r[3]) else {
            panic!("bad row {r:?}")
        };
        last.insert(format!("{k} {start} {end}"), format!("{k} {start} {end} {c} {s}"));
    }
    last
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn update_mode_ends_with_the_batch_result_for_every_session(
        raw in proptest::collection::vec((0i64..2 * H, 0u8..3, -5i64..100), 1..200),
        gap in prop_oneof![Just(MIN), Just(10 * MIN), Just(H)],
        jitter_seed in proptest::collection::vec(0i64..=1000, 200),
        commits in proptest::collection::vec(any::<bool>(), 200),
    ) {
        let events: Vec<(i64, u8, i64)> = raw.iter().map(|&(ts, k, v)| (ts / MIN * MIN, k, v)).collect();
        let delay = 30 * MIN;
        let jitters: Vec<i64> = jitter_seed.iter().map(|j| j * delay / 1000).collect();
        let order = arrival_order(&events, &jitters[..events.len()]);
        let last = streamed_updates(&order, gap, delay, &commits);
        for session in batch(&events, gap) {
            let window: Vec<&str> = session.split(' ').take(3).collect();
            prop_assert_eq!(last.get(&window.join(" ")), Some(&session));
        }
    }

    #[test]
    fn any_order_within_the_delay_equals_batch_sessionization(
        raw in proptest::collection::vec((0i64..4 * H, 0u8..3, -5i64..100), 1..300),
        coarse in any::<bool>(),
        gap in prop_oneof![Just(1i64), Just(MIN), Just(5 * MIN), Just(10 * MIN), Just(30 * MIN), Just(H)],
        delay in prop_oneof![Just(1i64), Just(10 * MIN), Just(2 * H)],
        jitter_seed in proptest::collection::vec(0i64..=1000, 300),
        crashes in proptest::collection::vec(0usize..300, 0..4),
    ) {
        // whole minutes make events exactly a gap apart (touching sessions) common
        let events: Vec<(i64, u8, i64)> = raw.iter().map(|&(ts, k, v)| (if coarse { ts / MIN * MIN } else { ts }, k, v)).collect();
        let jitters: Vec<i64> = jitter_seed.iter().map(|j| j * delay / 1000).collect();
        let order = arrival_order(&events, &jitters[..events.len()]);
        let (rows, late) = streamed(&order, gap, delay, &crashes);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(rows, batch(&events, gap));
    }

    #[test]
    fn garbage_state_never_panics(
        key in proptest::collection::vec(any::<u8>(), 0..30),
        value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..60)),
    ) {
        let mut o = op(GAP, OutputMode::Append);
        let _ = o.restore(&key, value.as_deref());
        let mut with_prefix = vec![DATA_PREFIX];
        with_prefix.extend_from_slice(&key);
        let _ = o.restore(&with_prefix, value.as_deref());
        o.process(0, &row(0, "a", 1), NO_WATERMARK, &mut Vec::new());
        let mut out = Vec::new();
        o.on_commit(&mut out);
        o.on_watermark(i64::MAX, &mut out);
        o.take_changes(&mut |_, _| {});
    }
}

#[test]
fn state_stays_bounded_over_thirty_days() {
    // 30 days of 200 keys, each active in bursts: events a few minutes apart for an hour,
    // then quiet for an hour, so every key opens and closes about 360 sessions.
    let t0 = Instant::now();
    let mut wm = PartitionWatermark::new(H, None, t0);
    let mut o = op(GAP, OutputMode::Append);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    let (mut max_entries, mut events) = (0, 0usize);
    let minutes = 30 * 24 * 60;
    for m in 0..minutes {
        let ts = m * MIN;
        for k in (m % 5..200).step_by(5) {
            if (m / 60 + k) % 2 == 0 {
                // One minute of disorder, well within the 1-hour delay.
                let r = row(ts - (k % 2) * MIN, &k.to_string(), 1);
                assert_eq!(o.process(0, &r, wm.watermark(), &mut out), Processed::Accepted);
                events += 1;
            }
        }
        wm.observe(ts, t0);
        o.on_watermark(wm.watermark(), &mut out);
        max_entries = max_entries.max(o.entries());
        if m % 37 == 0 {
            persist(&mut o, &mut store);
            assert_eq!(store.len(), o.entries(), "closed sessions were tombstoned");
        }
    }
    let counted: i64 = out.iter().map(|r| if let Value::Long(n) = r[2] { n } else { 0 }).sum();
    assert!(out.len() > 200 * 300, "sessions were emitted as they closed ({})", out.len());
    // Every event is in an emitted session, except those of sessions still open at the end.
    assert!(counted as usize <= events && counted as usize + 200 * 70 >= events, "{counted} of {events} events emitted");
    // A session stays until the watermark (max time - 1h) passes its end (last event + 10
    // minutes): at most one open session per key, plus the ones waiting for the watermark.
    assert!(max_entries <= 2 * 200, "entries reached {max_entries}");
    assert!(o.state_bytes() < 300 * 400, "state bytes {}", o.state_bytes());
}

#[test]
fn the_snapshot_lists_every_open_session_as_the_flush_would_emit_it() {
    let mut o = op(GAP, OutputMode::Append);
    feed(&mut o, &[(0, "a", 1), (5 * MIN, "a", 2), (H, "a", 4), (2 * MIN, "b", 8)]);
    let mut snap = Vec::new();
    assert!(o.snapshot(&mut snap));
    let mut flushed = Vec::new();
    o.on_watermark(i64::MAX, &mut flushed);
    assert_eq!(sorted(snap.clone()), sorted(flushed));
    assert_eq!(
        sorted(snap),
        sorted(vec![out_row("a", 0, 15 * MIN, 2, 3), out_row("a", H, H + GAP, 1, 4), out_row("b", 2 * MIN, 12 * MIN, 1, 8)])
    );
}
