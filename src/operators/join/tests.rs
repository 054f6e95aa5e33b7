use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::time::{PartitionWatermark, WatermarkMerger, NO_WATERMARK};

const M: i64 = 60_000_000;
const H: i64 = 3_600_000_000;
const D: i64 = 24 * H;
const ALL: [JoinType; 4] = [JoinType::Inner, JoinType::LeftOuter, JoinType::RightOuter, JoinType::FullOuter];

/// One key column and one value column per side.
fn join(t: JoinType, lower: i64, upper: i64) -> IntervalJoin {
    IntervalJoin::new(t, 1, 1, 1, lower, upper)
}

fn row(ts: i64, key: Option<&str>, v: i64) -> Vec<Value> {
    vec![Value::Timestamp(ts), key.map_or(Value::Null, Value::str), Value::Long(v)]
}

fn pair(l: Option<i64>, r: Option<i64>) -> Row {
    vec![l.map_or(Value::Null, Value::Long), r.map_or(Value::Null, Value::Long)]
}

/// State as sled would hold it: what `take_changes` wrote.
fn persist(op: &mut IntervalJoin, store: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    op.take_changes(&mut |k, v| match v {
        Some(v) => {
            store.insert(k.to_vec(), v.to_vec());
        }
        None => {
            assert!(store.remove(k).is_some(), "tombstone for a key that was never written");
        }
    });
}

fn restored(t: JoinType, lower: i64, upper: i64, store: &BTreeMap<Vec<u8>, Vec<u8>>) -> IntervalJoin {
    let mut o = join(t, lower, upper);
    for (k, v) in store {
        o.restore(k, Some(v)).unwrap();
    }
    o
}

fn sorted(rows: &[Row]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
    v.sort();
    v
}

#[test]
fn the_time_bounds_are_inclusive() {
    let (lower, upper) = (-5 * M, 10 * M);
    let t = 100 * H;
    for (d, expect) in [(lower, true), (upper, true), (lower - 1, false), (upper + 1, false), (0, true)] {
        for left_first in [true, false] {
            let mut o = join(JoinType::Inner, lower, upper);
            let mut out = Vec::new();
            let l = row(t + d, Some("k"), 1);
            let r = row(t, Some("k"), 2);
            if left_first {
                o.process(0, &l, NO_WATERMARK, &mut out);
                o.process(1, &r, NO_WATERMARK, &mut out);
            } else {
                o.process(1, &r, NO_WATERMARK, &mut out);
                o.process(0, &l, NO_WATERMARK, &mut out);
            }
            let want = if expect { vec![pair(Some(1), Some(2))] } else { vec![] };
            assert_eq!(out, want, "tl - tr = {d}, left first: {left_first}");
        }
    }
}

#[test]
fn an_empty_time_range_matches_nothing_and_does_not_panic() {
    let mut o = join(JoinType::FullOuter, H, -H);
    let mut out = Vec::new();
    o.process(0, &row(10 * H, Some("a"), 1), NO_WATERMARK, &mut out);
    o.process(1, &row(10 * H, Some("a"), 2), NO_WATERMARK, &mut out);
    assert!(out.is_empty());
    o.on_watermark(i64::MAX, &mut out);
    assert_eq!(sorted(&out), sorted(&[pair(Some(1), None), pair(None, Some(2))]));
}

#[test]
fn keys_must_be_equal() {
    let mut o = join(JoinType::Inner, -H, H);
    let mut out = Vec::new();
    o.process(0, &row(10, Some("a"), 1), NO_WATERMARK, &mut out);
    o.process(1, &row(10, Some("b"), 2), NO_WATERMARK, &mut out);
    assert!(out.is_empty());
    o.process(1, &row(10, Some("a"), 3), NO_WATERMARK, &mut out);
    o.process(1, &row(10, Some("a"), 3), NO_WATERMARK, &mut out);
    assert_eq!(out, vec![pair(Some(1), Some(3)), pair(Some(1), Some(3))], "identical rows are two rows");
}

#[test]
fn null_keys_never_match() {
    for t in ALL {
        let mut o = IntervalJoin::new(t, 2, 1, 1, -H, H);
        let mut out = Vec::new();
        let l = |k: Value, v| vec![Value::Timestamp(10 * H), Value::str("x"), k, Value::Long(v)];
        o.process(0, &l(Value::Null, 1), NO_WATERMARK, &mut out);
        o.process(1, &l(Value::Null, 2), NO_WATERMARK, &mut out);
        o.process(0, &l(Value::Long(7), 3), NO_WATERMARK, &mut out);
        o.process(1, &l(Value::Null, 4), NO_WATERMARK, &mut out);
        assert!(out.is_empty(), "{t:?}: {out:?}");
        // only outer sides keep NULL-key rows, for their null-padded output
        let expected_entries = 1 + usize::from(t.outer(0)) + 2 * usize::from(t.outer(1));
        assert_eq!(o.entries(), expected_entries, "{t:?}");
        o.on_watermark(i64::MAX, &mut out);
        let mut want = Vec::new();
        if t.outer(0) {
            want.extend([pair(Some(1), None), pair(Some(3), None)]);
        }
        if t.outer(1) {
            want.extend([pair(None, Some(2)), pair(None, Some(4))]);
        }
        assert_eq!(sorted(&out), sorted(&want), "{t:?}");
        assert_eq!(o.entries(), 0);
    }
}

#[test]
fn an_unmatched_outer_row_is_emitted_once_when_the_watermark_passes_its_eviction_time() {
    // l.t BETWEEN r.t AND r.t + 1 hour: lower 0, upper 1h
    let (lower, upper) = (0, H);
    for t in [JoinType::LeftOuter, JoinType::FullOuter] {
        let mut o = join(t, lower, upper);
        let mut out = Vec::new();
        let tl = 10 * H;
        o.process(0, &row(tl, Some("a"), 1), NO_WATERMARK, &mut out);
        // eviction time tl - lower = 10h
        o.on_watermark(tl - 1, &mut out);
        assert!(out.is_empty(), "a right row at 10h is still on time and would match");
        assert_eq!(o.entries(), 1);
        // Like Spark (state watermark = watermark + lower - 1 ms for a non-strict bound), the
        // row leaves once the watermark is past its eviction time, not at it.
        o.on_watermark(tl, &mut out);
        assert!(out.is_empty(), "kept while the watermark equals its eviction time, as Spark does");
        o.on_watermark(tl + 1, &mut out);
        assert_eq!(out, vec![pair(Some(1), None)]);
        o.on_watermark(tl + H, &mut out);
        o.on_watermark(i64::MAX, &mut out);
        assert_eq!(out.len(), 1, "never twice");
        assert_eq!(o.entries(), 0);
    }
    // the right row just inside the bound does match at the last moment
    let mut o = join(JoinType::LeftOuter, lower, upper);
    let mut out = Vec::new();
    o.process(0, &row(10 * H, Some("a"), 1), NO_WATERMARK, &mut out);
    o.on_watermark(10 * H - 1, &mut out);
    assert_eq!(o.process(1, &row(10 * H, Some("a"), 2), 10 * H - 1, &mut out), Processed::Accepted);
    assert_eq!(out, vec![pair(Some(1), Some(2))]);
    o.on_watermark(i64::MAX, &mut out);
    assert_eq!(out.len(), 1, "a matched outer row is not emitted null-padded");

    // right side: eviction time tr + upper
    for t in [JoinType::RightOuter, JoinType::FullOuter] {
        let mut o = join(t, lower, upper);
        let mut out = Vec::new();
        let tr = 10 * H;
        o.process(1, &row(tr, Some("a"), 2), NO_WATERMARK, &mut out);
        o.on_watermark(tr + upper - 1, &mut out);
        assert!(out.is_empty());
        // a left row at tr + upper is on time and matches; a right row of another key does not
        let wm = tr + upper - 1;
        assert_eq!(o.process(1, &row(tr + 1, Some("b"), 3), wm, &mut out), Processed::Late);
        assert_eq!(o.process(1, &row(tr + upper, Some("b"), 3), wm, &mut out), Processed::Accepted);
        assert_eq!(o.process(0, &row(tr + upper, Some("a"), 1), wm, &mut out), Processed::Accepted);
        assert_eq!(out, vec![pair(Some(1), Some(2))]);
        o.on_watermark(tr + upper + 1, &mut out);
        assert_eq!(out.len(), 1, "the matched rows are dropped silently");
        assert_eq!(o.entries(), 1);
        o.on_watermark(tr + 2 * upper - 1, &mut out);
        assert_eq!(out.len(), 1, "not before its eviction time");
        o.on_watermark(tr + 2 * upper, &mut out);
        assert_eq!(out.len(), 1, "nor at it");
        o.on_watermark(i64::MAX, &mut out);
        assert_eq!(out, vec![pair(Some(1), Some(2)), pair(None, Some(3))], "{t:?}");
    }
}

#[test]
fn an_inner_join_drops_unmatched_rows_silently() {
    let mut o = join(JoinType::Inner, 0, H);
    let mut out = Vec::new();
    o.process(0, &row(10, Some("a"), 1), NO_WATERMARK, &mut out);
    o.process(1, &row(10 - 2 * H, Some("a"), 2), NO_WATERMARK, &mut out);
    o.on_watermark(i64::MAX, &mut out);
    assert!(out.is_empty());
    assert_eq!(o.entries(), 0);
}

#[test]
fn a_row_that_can_no_longer_be_matched_is_not_buffered() {
    // lower = 10 min: a left row at wm + 5 min is on time, but every right row it could match
    // (tr <= tl - 10 min < wm) is late already
    let mut o = join(JoinType::LeftOuter, 10 * M, H);
    let mut out = Vec::new();
    let wm = 5 * H;
    o.process(1, &row(wm - 20 * M, Some("a"), 2), NO_WATERMARK, &mut out);
    assert_eq!(o.process(0, &row(wm + 5 * M, Some("a"), 1), wm, &mut out), Processed::Accepted);
    assert_eq!(o.process(0, &row(wm + 5 * M, Some("b"), 3), wm, &mut out), Processed::Accepted);
    assert_eq!(out, vec![pair(Some(1), Some(2)), pair(Some(3), None)], "matched the buffered row; the other is final at once");
    assert_eq!(o.entries(), 1, "only the right row");
}

#[test]
fn rows_at_or_before_the_watermark_are_late() {
    for t in ALL {
        let mut o = join(t, -H, H);
        let mut out = Vec::new();
        o.process(1, &row(10 * H, Some("a"), 2), NO_WATERMARK, &mut out);
        persist(&mut o, &mut BTreeMap::new());
        assert_eq!(o.process(0, &row(10 * H, Some("a"), 1), 10 * H, &mut out), Processed::Late);
        assert_eq!(o.process(1, &row(9 * H, Some("a"), 1), 10 * H, &mut out), Processed::Late);
        assert_eq!(o.process(0, &[Value::Long(1)], NO_WATERMARK, &mut out), Processed::Late, "no event time");
        assert!(out.is_empty(), "a late row matches nothing");
        assert_eq!(o.entries(), 1);
        let mut changes = 0;
        o.take_changes(&mut |_, _| changes += 1);
        assert_eq!(changes, 0, "a late row changes no state");
        assert_eq!(o.process(0, &row(10 * H + 1, Some("a"), 1), 10 * H, &mut out), Processed::Accepted);
        assert_eq!(out, vec![pair(Some(1), Some(2))]);
    }
}

#[test]
fn changes_are_latest_values_and_tombstones_only_for_persisted_rows() {
    let mut o = join(JoinType::FullOuter, -H, H);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    o.process(0, &row(10 * H, Some("a"), 1), NO_WATERMARK, &mut out);
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 1);
    // the persisted left row gets matched: rewritten once with its flag, alongside the new rows
    o.process(1, &row(10 * H, Some("a"), 2), NO_WATERMARK, &mut out);
    o.process(1, &row(10 * H + 1, Some("a"), 3), NO_WATERMARK, &mut out);
    let mut writes = 0;
    let mut copy = store.clone();
    o.take_changes(&mut |k, v| {
        writes += 1;
        copy.insert(k.to_vec(), v.unwrap().to_vec());
    });
    store = copy;
    assert_eq!(writes, 3);
    let left_key = store.keys().find(|k| k[1] == 0).unwrap().clone();
    assert_eq!(store[&left_key][1], 1, "matched flag persisted");
    // rows born and dropped within one cycle leave no trace
    o.process(0, &row(20 * H, Some("z"), 9), NO_WATERMARK, &mut out);
    o.on_watermark(30 * H, &mut out);
    persist(&mut o, &mut store);
    assert!(store.is_empty());
    assert_eq!(sorted(&out), sorted(&[pair(Some(1), Some(2)), pair(Some(1), Some(3)), pair(Some(9), None)]));
}

/// A deterministic mixed stream: (side, row, watermark) steps.
fn scripted_stream() -> Vec<(usize, Vec<Value>)> {
    let mut s = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..400i64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let side = (x % 2) as usize;
        let key = ["a", "b", "c"][(x >> 8) as usize % 3];
        let key = if (x >> 16).is_multiple_of(11) { None } else { Some(key) };
        let ts = i * 2 * M + ((x >> 24) % 60) as i64 * M;
        s.push((side, row(ts, key, (x >> 32) as i64 % 5)));
    }
    s
}

fn run_scripted(t: JoinType, crash_at: Option<usize>) -> (Vec<Row>, usize) {
    let (lower, upper) = (-20 * M, 30 * M);
    let t0 = Instant::now();
    let mut wms = [PartitionWatermark::new(H, None, t0), PartitionWatermark::new(H, None, t0)];
    let mut merged = WatermarkMerger::new(2);
    let mut o = join(t, lower, upper);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    let mut late = 0;
    for (i, (side, r)) in scripted_stream().into_iter().enumerate() {
        if i % 37 == 0 {
            persist(&mut o, &mut store);
        }
        if crash_at == Some(i) {
            persist(&mut o, &mut store);
            let entries = o.entries();
            o = restored(t, lower, upper, &store);
            assert_eq!(o.entries(), entries);
        }
        if o.process(side, &r, merged.current(), &mut out) == Processed::Late {
            late += 1;
        }
        let Value::Timestamp(ts) = r[0] else { unreachable!() };
        wms[side].observe(ts, t0);
        let wm = merged.update(side, wms[side].watermark(), false);
        o.on_watermark(wm, &mut out);
    }
    o.on_watermark(i64::MAX, &mut out);
    (out, late)
}

#[test]
fn restoring_mid_stream_continues_exactly_as_without_the_restore() {
    for t in ALL {
        let (straight, late) = run_scripted(t, None);
        assert!(!straight.is_empty());
        for crash in [1, 50, 199, 200, 333] {
            let (again, late_again) = run_scripted(t, Some(crash));
            assert_eq!(again, straight, "{t:?}, restored before step {crash}: same rows in the same order");
            assert_eq!(late_again, late);
        }
    }
}

#[test]
fn restore_is_exact_and_rejects_corrupt_bytes() {
    let mut o = join(JoinType::FullOuter, -H, H);
    let mut out = Vec::new();
    let mut store = BTreeMap::new();
    for i in 0..20 {
        o.process(i % 2, &row(i as i64 * M, Some(["a", "b", "c"][i % 3]), i as i64), NO_WATERMARK, &mut out);
    }
    persist(&mut o, &mut store);
    let mut r = restored(JoinType::FullOuter, -H, H, &store);
    assert_eq!(r.entries(), o.entries());
    assert_eq!(r.state_bytes(), o.state_bytes());
    let mut copy = BTreeMap::new();
    persist(&mut r, &mut copy);
    assert!(copy.is_empty(), "a restored row is clean");
    // new rows get fresh sequence numbers: identical rows stay distinct
    let dup = row(0, Some("a"), 0);
    o.process(0, &dup, NO_WATERMARK, &mut Vec::new());
    r.process(0, &dup, NO_WATERMARK, &mut Vec::new());
    assert_eq!(r.entries(), o.entries());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    o.on_watermark(i64::MAX, &mut a);
    r.on_watermark(i64::MAX, &mut b);
    assert_eq!(a, b);

    // deletes
    let mut d = restored(JoinType::FullOuter, -H, H, &store);
    for k in store.keys() {
        d.restore(k, None).unwrap();
        d.restore(k, None).unwrap();
    }
    assert_eq!((d.entries(), d.state_bytes()), (0, 0));

    let (k, v) = store.iter().next().unwrap();
    let mut e = join(JoinType::FullOuter, -H, H);
    assert!(e.restore(&[DATA_PREFIX, 0, 1, 2], Some(v)).is_err(), "a short key is corrupt, not a panic");
    let mut bad_side = k.clone();
    bad_side[1] = 7;
    assert!(e.restore(&bad_side, Some(v)).is_err());
    assert!(e.restore(k, Some(&[9, 9])).is_err(), "unknown version");
    assert!(e.restore(k, Some(&[1, 2, 0, 0, 0, 0, 0, 0, 0, 0])).is_err(), "bad matched flag");
    assert!(e.restore(k, Some(&v[..5])).is_err(), "truncated");
    assert!(e.restore(k, Some(&v[..10])).is_err(), "values missing");
    let mut shifted = v.clone();
    shifted[2] ^= 1;
    assert!(e.restore(k, Some(&shifted)).is_err(), "event time disagrees with the key's eviction time");
    assert_eq!(k[1], 0, "a left row: its eviction time is tl - lower");
    assert!(join(JoinType::FullOuter, -2 * H, H).restore(k, Some(v)).is_err(), "time range changed");
    assert!(IntervalJoin::new(JoinType::FullOuter, 2, 1, 1, -H, H).restore(k, Some(v)).is_err(), "key count changed");
    assert!(IntervalJoin::new(JoinType::FullOuter, 1, 2, 2, -H, H).restore(k, Some(v)).is_err(), "widths changed");
    assert_eq!(e.entries(), 0);
}

#[test]
fn state_stays_bounded_over_thirty_days() {
    for t in ALL {
        let (lower, upper) = (-10 * M, H);
        let t0 = Instant::now();
        let mut wms = [PartitionWatermark::new(H, None, t0), PartitionWatermark::new(H, None, t0)];
        let mut merged = WatermarkMerger::new(2);
        let mut o = join(t, lower, upper);
        let mut store = BTreeMap::new();
        let mut out = Vec::new();
        let (mut max_entries, mut max_stored, mut max_bytes) = (0, 0, 0);
        let mut ts = 0;
        while ts < 30 * D {
            for (side, side_wm) in wms.iter_mut().enumerate() {
                // a little disorder within the delay
                let at = ts - (ts / M % 7) * M;
                let key = ["k1", "k2", "k3"][(ts / M % 3) as usize];
                assert_eq!(o.process(side, &row(at, Some(key), side as i64), merged.current(), &mut out), Processed::Accepted);
                side_wm.observe(at, t0);
                let wm = merged.update(side, side_wm.watermark(), false);
                o.on_watermark(wm, &mut out);
            }
            if ts % (10 * M) == 0 {
                persist(&mut o, &mut store);
                max_stored = max_stored.max(store.len());
            }
            max_entries = max_entries.max(o.entries());
            max_bytes = max_bytes.max(o.state_bytes());
            out.clear();
            ts += M;
        }
        // left rows live until tl - lower <= wm (about 1h10m), right rows until tr + upper <= wm
        // (about 2h): some 200 rows at a row per minute per side
        assert!(max_entries < 300, "{t:?}: {max_entries}");
        assert!(max_stored < 350, "{t:?}: {max_stored}");
        assert!(max_bytes < 300 * 1024, "{t:?}: {max_bytes}");
    }
}

// ---- property test against a nested-loop join ----

#[derive(Debug, Clone)]
struct Ev {
    side: usize,
    ts: i64,
    key: Option<u8>,
    v: i64,
}

fn ev_row(e: &Ev) -> Vec<Value> {
    vec![Value::Timestamp(e.ts), e.key.map_or(Value::Null, |k| Value::Long(i64::from(k))), Value::Long(e.v)]
}

fn nested_loop(events: &[Ev], t: JoinType, lower: i64, upper: i64) -> Vec<String> {
    let left: Vec<&Ev> = events.iter().filter(|e| e.side == 0).collect();
    let right: Vec<&Ev> = events.iter().filter(|e| e.side == 1).collect();
    let matches = |l: &Ev, r: &Ev| l.key.is_some() && l.key == r.key && lower <= l.ts - r.ts && l.ts - r.ts <= upper;
    let mut rows = Vec::new();
    for l in &left {
        for r in &right {
            if matches(l, r) {
                rows.push(pair(Some(l.v), Some(r.v)));
            }
        }
    }
    if t.outer(0) {
        rows.extend(left.iter().filter(|l| !right.iter().any(|r| matches(l, r))).map(|l| pair(Some(l.v), None)));
    }
    if t.outer(1) {
        rows.extend(right.iter().filter(|r| !left.iter().any(|l| matches(l, r))).map(|r| pair(None, Some(r.v))));
    }
    sorted(&rows)
}

/// Delivers every event at `ts + jitter` (`0 <= jitter <= delay`), both sides interleaved by
/// arrival, with the task watermark the minimum of the two sides' watermarks.
#[allow(clippy::too_many_arguments)]
fn streamed(
    events: &[Ev],
    jitters: &[i64],
    t: JoinType,
    lower: i64,
    upper: i64,
    delay: i64,
    crashes: &[usize],
    commits: &[usize],
) -> (Vec<String>, usize, usize) {
    let mut order: Vec<(i64, &Ev)> = events.iter().zip(jitters).map(|(e, j)| (e.ts + j, e)).collect();
    order.sort_by_key(|(arrival, e)| (*arrival, e.ts));
    let t0 = Instant::now();
    let mut wms = [PartitionWatermark::new(delay, None, t0), PartitionWatermark::new(delay, None, t0)];
    let mut merged = WatermarkMerger::new(2);
    let mut o = join(t, lower, upper);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    let (mut late, mut max_entries) = (0, 0);
    for (i, (_, e)) in order.iter().enumerate() {
        if commits.contains(&i) {
            persist(&mut o, &mut store);
        }
        if crashes.contains(&i) {
            persist(&mut o, &mut store);
            let entries = o.entries();
            o = restored(t, lower, upper, &store);
            assert_eq!(o.entries(), entries);
        }
        if o.process(e.side, &ev_row(e), merged.current(), &mut out) == Processed::Late {
            late += 1;
        }
        wms[e.side].observe(e.ts, t0);
        let wm = merged.update(e.side, wms[e.side].watermark(), false);
        o.on_watermark(wm, &mut out);
        max_entries = max_entries.max(o.entries());
    }
    o.on_watermark(i64::MAX, &mut out);
    persist(&mut o, &mut store);
    assert!(store.is_empty(), "everything was evicted and tombstoned");
    (sorted(&out), late, o.entries())
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    proptest::collection::vec(
        (0usize..2, 0i64..20 * H, proptest::option::weighted(0.9, 0u8..4), 0i64..4).prop_map(|(side, ts, key, v)| Ev { side, ts, key, v }),
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_order_within_the_delay_equals_the_nested_loop_join(
        events in events(),
        jitter_seed in proptest::collection::vec(0i64..=1000, 200),
        lower_seed in -8i64..=8,
        width_seed in 0i64..=8,
        exact_minutes in any::<bool>(),
        crashes in proptest::collection::vec(0usize..200, 0..4),
        commits in proptest::collection::vec(0usize..200, 0..6),
    ) {
        let delay = 2 * H;
        let jitters: Vec<i64> = jitter_seed.iter().map(|j| j * delay / 1000).collect();
        // bounds in quarter hours; with `exact_minutes`, timestamps sit on quarter hours too,
        // so that differences often hit the bounds exactly
        let lower = lower_seed * H / 4;
        let upper = lower + width_seed * H / 4;
        let events: Vec<Ev> = if exact_minutes {
            events.into_iter().map(|e| Ev { ts: e.ts / (15 * M) * (15 * M), ..e }).collect()
        } else {
            events
        };
        for t in ALL {
            let (rows, late, entries) = streamed(&events, &jitters[..events.len()], t, lower, upper, delay, &crashes, &commits);
            prop_assert_eq!(late, 0);
            prop_assert_eq!(entries, 0);
            prop_assert_eq!(rows, nested_loop(&events, t, lower, upper), "{:?} lower {} upper {}", t, lower, upper);
        }
    }
}
