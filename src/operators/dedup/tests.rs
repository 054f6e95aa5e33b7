use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::time::{PartitionWatermark, NO_WATERMARK};

const MIN: i64 = 60_000_000;
const H: i64 = 60 * MIN;

fn within(delay: i64) -> Dedup {
    Dedup::new(1, DedupMode::WithinWatermark { delay })
}

/// `[ts, key, v]`: one key column, one value column.
fn row(ts: i64, key: &str, v: i64) -> Vec<Value> {
    vec![Value::Timestamp(ts), Value::str(key), Value::Long(v)]
}

/// `[ts, ts, key, v]`: the event time is among the two key columns.
fn row_tk(ts: i64, key: &str, v: i64) -> Vec<Value> {
    vec![Value::Timestamp(ts), Value::Timestamp(ts), Value::str(key), Value::Long(v)]
}

fn in_key() -> Dedup {
    Dedup::new(2, DedupMode::EventTimeInKey)
}

/// State as sled would hold it: what `take_changes` wrote.
fn persist(op: &mut Dedup, store: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    op.take_changes(&mut |k, v| match v {
        Some(v) => {
            store.insert(k.to_vec(), v.to_vec());
        }
        None => {
            assert!(store.remove(k).is_some(), "tombstone for a key that was never written");
        }
    });
}

fn restored(store: &BTreeMap<Vec<u8>, Vec<u8>>, make: impl Fn() -> Dedup) -> Dedup {
    let mut o = make();
    for (k, v) in store {
        o.restore(k, Some(v)).unwrap();
    }
    o
}

#[test]
fn a_row_at_the_watermark_is_late() {
    for mut o in [within(H), in_key()] {
        let r = if o.key_count == 1 { row(100, "a", 1) } else { row_tk(100, "a", 1) };
        let mut out = Vec::new();
        assert_eq!(o.process(0, &r, 100, &mut out), Processed::Late, "ts == watermark is late (eventTime <= watermark)");
        assert!(out.is_empty());
        assert_eq!(o.entries(), 0, "a late row changes no state");
        assert_eq!(o.process(0, &r, 99, &mut out), Processed::Accepted);
        assert_eq!(out, vec![vec![Value::Long(1)]], "the output is the values part of the row");
    }
}

#[test]
fn a_duplicate_is_dropped_but_not_late() {
    let mut o = within(H);
    let mut out = Vec::new();
    assert_eq!(o.process(0, &row(10, "a", 1), NO_WATERMARK, &mut out), Processed::Accepted);
    assert_eq!(o.process(0, &row(5, "a", 2), NO_WATERMARK, &mut out), Processed::Accepted);
    assert_eq!(o.process(0, &row(20, "b", 3), NO_WATERMARK, &mut out), Processed::Accepted);
    assert_eq!(o.process(0, &row(30, "a", 4), NO_WATERMARK, &mut out), Processed::Accepted);
    assert_eq!(out, vec![vec![Value::Long(1)], vec![Value::Long(3)]]);
    assert_eq!(o.entries(), 2);
    let mut more = Vec::new();
    o.on_watermark(25, &mut more);
    o.on_commit(&mut more);
    assert!(more.is_empty(), "deduplication emits only in process");

    let mut k = in_key();
    out.clear();
    assert_eq!(k.process(0, &row_tk(10, "a", 1), NO_WATERMARK, &mut out), Processed::Accepted);
    assert_eq!(k.process(0, &row_tk(10, "a", 2), NO_WATERMARK, &mut out), Processed::Accepted);
    assert_eq!(k.process(0, &row_tk(11, "a", 3), NO_WATERMARK, &mut out), Processed::Accepted);
    assert_eq!(out, vec![vec![Value::Long(1)], vec![Value::Long(3)]], "another event time is another key");
}

#[test]
fn within_watermark_expires_when_first_ts_plus_delay_reaches_the_watermark() {
    let d = H;
    let mut o = within(d);
    let mut out = Vec::new();
    o.process(0, &row(0, "a", 1), NO_WATERMARK, &mut out);
    o.on_watermark(d - 1, &mut out);
    assert_eq!(o.entries(), 1, "expiresAt = 0 + delay > watermark: still lives");
    assert_eq!(o.process(0, &row(d, "a", 2), d - 1, &mut out), Processed::Accepted);
    assert_eq!(out.len(), 1, "a duplicate while the state lives");
    o.on_watermark(d, &mut out);
    assert_eq!(o.entries(), 0, "expiresAt <= watermark: evicted");
    assert_eq!(o.process(0, &row(d + 1, "a", 3), d, &mut out), Processed::Accepted);
    assert_eq!(out, vec![vec![Value::Long(1)], vec![Value::Long(3)]], "after expiry the key passes again");
    // its new expiry is d + 1 + d
    assert_eq!(o.process(0, &row(2 * d + 1, "a", 4), 2 * d, &mut out), Processed::Accepted);
    assert_eq!(out.len(), 2);
    assert_eq!(o.process(0, &row(2 * d + 2, "a", 5), 2 * d + 1, &mut out), Processed::Accepted);
    assert_eq!(out.len(), 3, "expired at exactly 2d + 1, even before on_watermark ran");
    assert_eq!(o.entries(), 1);
}

#[test]
fn event_time_in_key_expires_at_the_event_time() {
    let mut o = in_key();
    let mut out = Vec::new();
    o.process(0, &row_tk(100, "a", 1), NO_WATERMARK, &mut out);
    o.on_watermark(99, &mut out);
    assert_eq!(o.entries(), 1, "eventTime > watermark: still lives");
    assert_eq!(o.process(0, &row_tk(100, "a", 2), 99, &mut out), Processed::Accepted);
    assert_eq!(out.len(), 1, "a duplicate while the state lives");
    o.on_watermark(100, &mut out);
    assert_eq!(o.entries(), 0, "eventTime <= watermark: evicted");
    // The key holds the event time, so once it is evicted every row with that key is late:
    // the key can never pass again.
    assert_eq!(o.process(0, &row_tk(100, "a", 3), 100, &mut out), Processed::Late);
    assert_eq!(out.len(), 1);
    assert_eq!(o.entries(), 0);
}

#[test]
fn tombstones_only_for_persisted_entries() {
    let mut o = within(H);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    o.process(0, &row(0, "a", 1), NO_WATERMARK, &mut out);
    o.process(0, &row(1, "a", 1), NO_WATERMARK, &mut out);
    let mut writes = 0;
    o.take_changes(&mut |_, v| {
        assert_eq!(v, Some(&[VALUE_VERSION][..]));
        writes += 1;
    });
    assert_eq!(writes, 1, "a key and its duplicate are one changelog record");
    let mut o = within(H);
    o.process(0, &row(0, "a", 1), NO_WATERMARK, &mut out);
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 1);
    // born and expired within one cycle: no trace
    o.process(0, &row(10, "b", 1), NO_WATERMARK, &mut out);
    o.on_watermark(H + 10, &mut out);
    assert_eq!(o.entries(), 0);
    let mut changes = Vec::new();
    o.take_changes(&mut |k, v| changes.push((k.to_vec(), v.map(<[u8]>::to_vec))));
    assert_eq!(changes, vec![(Dedup::state_key(H, &store.keys().next().unwrap()[9..]), None)], "only the persisted entry");
    persist(&mut o, &mut BTreeMap::new());
    let mut nothing = 0;
    o.take_changes(&mut |_, _| nothing += 1);
    assert_eq!(nothing, 0, "afterwards nothing is pending");
}

#[test]
fn an_expired_entry_replaced_before_eviction_is_tombstoned() {
    let mut o = within(H);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    o.process(0, &row(0, "a", 1), NO_WATERMARK, &mut out);
    persist(&mut o, &mut store);
    // the watermark passed the expiry but on_watermark has not run yet
    assert_eq!(o.process(0, &row(H + 1, "a", 2), H, &mut out), Processed::Accepted);
    assert_eq!(out.len(), 2);
    assert_eq!(o.entries(), 1);
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 1, "the old entry was tombstoned, the new one written");
    let key = store.keys().next().unwrap();
    assert_eq!(unorder_i64(key[1..9].try_into().unwrap()), 2 * H + 1);
    // a replacement that never reached the store leaves no tombstone
    assert_eq!(o.process(0, &row(3 * H + 2, "a", 3), 3 * H + 1, &mut out), Processed::Accepted);
    assert_eq!(o.process(0, &row(5 * H + 3, "a", 4), 5 * H + 2, &mut out), Processed::Accepted);
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 1);
    assert_eq!(unorder_i64(store.keys().next().unwrap()[1..9].try_into().unwrap()), 6 * H + 3);
}

#[test]
fn restore_rebuilds_the_same_state() {
    for event_time_in_key in [false, true] {
        let make = || if event_time_in_key { in_key() } else { within(10 * MIN) };
        let r = |ts: i64, k: &str, v: i64| if event_time_in_key { row_tk(ts, k, v) } else { row(ts, k, v) };
        let mut o = make();
        let mut store = BTreeMap::new();
        let mut out = Vec::new();
        for i in 0..60 {
            o.process(0, &r((i % 20) * MIN, &(i % 7).to_string(), i), NO_WATERMARK, &mut out);
        }
        o.on_watermark(5 * MIN, &mut out);
        persist(&mut o, &mut store);
        assert_eq!(store.len(), o.entries());
        let mut b = restored(&store, make);
        assert_eq!(b.entries(), o.entries());
        assert_eq!(b.state_bytes(), o.state_bytes());
        // the restored operator drops the same duplicates and expires at the same watermarks
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for step in 0..40 {
            let wm = 5 * MIN + step * MIN / 2;
            for i in 0..30 {
                let row = r(wm + 1 + (i % 3) * MIN, &(i % 9).to_string(), i);
                assert_eq!(o.process(0, &row, wm, &mut x), b.process(0, &row, wm, &mut y));
            }
            o.on_watermark(wm, &mut x);
            b.on_watermark(wm, &mut y);
            assert_eq!(o.entries(), b.entries());
        }
        assert_eq!(x, y);
        // and their changes lead to the same store
        let mut s2 = store.clone();
        persist(&mut o, &mut store);
        persist(&mut b, &mut s2);
        assert_eq!(store, s2);
    }
}

#[test]
fn corrupt_state_is_an_error_not_a_panic() {
    let mut o = within(H);
    let good_key = Dedup::state_key(5, b"\x05a\x00\x01");
    assert!(o.restore(&[DATA_PREFIX, 1, 2], Some(&[VALUE_VERSION])).is_err(), "a short key");
    assert!(o.restore(&[], None).is_err());
    let mut wrong_prefix = good_key.clone();
    wrong_prefix[0] = 0x02;
    assert!(o.restore(&wrong_prefix, Some(&[VALUE_VERSION])).is_err(), "another prefix");
    assert_eq!(o.restore(&good_key, Some(&[])), Err(CodecError::Truncated));
    assert_eq!(o.restore(&good_key, Some(&[9])), Err(CodecError::UnknownVersion(9, VALUE_VERSION)));
    assert!(o.restore(&good_key, Some(&[VALUE_VERSION, 0])).is_err(), "trailing bytes");
    assert_eq!(o.entries(), 0);
    o.restore(&good_key, Some(&[VALUE_VERSION])).unwrap();
    assert_eq!(o.entries(), 1);
    o.restore(&Dedup::state_key(4, b"\x05a\x00\x01"), None).unwrap();
    assert_eq!(o.entries(), 1, "a tombstone for another expiry of the key leaves it");
    o.restore(&good_key, None).unwrap();
    assert_eq!(o.entries(), 0);
    assert_eq!(o.state_bytes(), 0);
}

#[test]
fn clear_forgets_everything() {
    let mut o = within(H);
    let mut out = Vec::new();
    o.process(0, &row(1, "a", 1), NO_WATERMARK, &mut out);
    o.clear();
    assert_eq!((o.entries(), o.state_bytes()), (0, 0));
    let mut n = 0;
    o.take_changes(&mut |_, _| n += 1);
    assert_eq!(n, 0);
    assert_eq!(o.name(), "dedup");
}

#[test]
fn state_stays_bounded_over_thirty_days() {
    for event_time_in_key in [false, true] {
        let t0 = Instant::now();
        let mut wm = PartitionWatermark::new(H, None, t0);
        let mut o = if event_time_in_key { in_key() } else { within(H) };
        let mut store = BTreeMap::new();
        let mut out = Vec::new();
        let mut max_entries = 0;
        let minutes = 30 * 24 * 60;
        for m in 0..minutes {
            let ts = m * MIN;
            let key = (m % 500).to_string();
            // each event arrives twice
            for _ in 0..2 {
                let r = if event_time_in_key { row_tk(ts, &key, m) } else { row(ts, &key, m) };
                assert_eq!(o.process(0, &r, wm.watermark(), &mut out), Processed::Accepted);
            }
            wm.observe(ts, t0);
            o.on_watermark(wm.watermark(), &mut out);
            max_entries = max_entries.max(o.entries());
            if m % 37 == 0 {
                persist(&mut o, &mut store);
                assert_eq!(store.len(), o.entries(), "evicted entries were tombstoned");
            }
        }
        assert_eq!(out.len() as i64, minutes, "each event passes once");
        // an entry lives until max event time - 1h >= its expiry: 1h (in key) or 2h (within)
        let bound = if event_time_in_key { 61 } else { 121 };
        assert!(max_entries <= bound, "entries reached {max_entries}");
        assert!(o.state_bytes() < 200 * bound);
    }
}

/// Events with an arrival order whose disorder stays within `delay`: each is delivered at
/// `ts + jitter` with `0 <= jitter <= delay`.
fn arrival_order(events: &[(i64, u8)], jitters: &[i64]) -> Vec<(i64, u8, i64)> {
    let mut v: Vec<(i64, (i64, u8, i64))> =
        events.iter().zip(jitters).enumerate().map(|(i, (e, j))| (e.0 + j, (e.0, e.1, i as i64))).collect();
    v.sort_by_key(|(arrival, e)| (*arrival, e.0));
    v.into_iter().map(|(_, e)| e).collect()
}

/// The naive model: the same arrival order, an explicit map of key -> (first ts of its live
/// state), a watermark of `max ts - delay`; late when `ts <= watermark`; a key's state expires
/// when `expiry <= watermark`, `expiry` being `first ts + delay`, or `ts` with the event time in
/// the key. Returns the values of the rows that pass, in order, and the number of late rows.
fn model(order: &[(i64, u8, i64)], delay: i64, event_time_in_key: bool) -> (Vec<i64>, usize) {
    let mut first: HashMap<(Option<i64>, u8), i64> = HashMap::new();
    let mut max_ts: Option<i64> = None;
    let mut passed = Vec::new();
    let mut late = 0;
    for &(ts, key, v) in order {
        let watermark = max_ts.map_or(i64::MIN, |m| m - delay);
        let k = (event_time_in_key.then_some(ts), key);
        let lives = |first_ts: i64| if event_time_in_key { first_ts > watermark } else { first_ts + delay > watermark };
        if ts <= watermark {
            late += 1;
        } else if first.get(&k).is_some_and(|&f| lives(f)) {
            // duplicate
        } else {
            first.insert(k, ts);
            passed.push(v);
        }
        max_ts = Some(max_ts.map_or(ts, |m| m.max(ts)));
    }
    (passed, late)
}

fn streamed(order: &[(i64, u8, i64)], delay: i64, event_time_in_key: bool, crashes: &[usize]) -> (Vec<i64>, usize) {
    let make = || if event_time_in_key { in_key() } else { within(delay) };
    let t0 = Instant::now();
    let mut wm = PartitionWatermark::new(delay, None, t0);
    let mut o = make();
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    let mut late = 0;
    for (i, &(ts, key, v)) in order.iter().enumerate() {
        if crashes.contains(&i) {
            // commit, then lose the in-memory operator and rebuild it from persisted state
            persist(&mut o, &mut store);
            assert_eq!(store.len(), o.entries());
            o = restored(&store, make);
        }
        let key = key.to_string();
        let r = if event_time_in_key { row_tk(ts, &key, v) } else { row(ts, &key, v) };
        if o.process(0, &r, wm.watermark(), &mut out) == Processed::Late {
            late += 1;
        }
        wm.observe(ts, t0);
        o.on_watermark(wm.watermark(), &mut out);
    }
    persist(&mut o, &mut store);
    assert_eq!(store.len(), o.entries());
    let passed = out
        .iter()
        .map(|r| match r[..] {
            [Value::Long(v)] => v,
            _ => panic!("bad row {r:?}"),
        })
        .collect();
    (passed, late)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_order_within_the_delay_equals_the_naive_model(
        // a coarse grid of event times (6 minutes), so expiries often land exactly on the watermark
        events in proptest::collection::vec((0i64..200, 0u8..4), 1..300),
        jitter_seed in proptest::collection::vec(0i64..=20, 300),
        event_time_in_key in any::<bool>(),
        crashes in proptest::collection::vec(0usize..300, 0..4),
    ) {
        let delay = 2 * H;
        let events: Vec<(i64, u8)> = events.iter().map(|&(slot, k)| (slot * 6 * MIN, k)).collect();
        let jitters: Vec<i64> = jitter_seed.iter().map(|j| j * delay / 20).collect();
        let order = arrival_order(&events, &jitters[..events.len()]);
        let (passed, late) = streamed(&order, delay, event_time_in_key, &crashes);
        let (expected, expected_late) = model(&order, delay, event_time_in_key);
        prop_assert_eq!(expected_late, 0, "disorder within the delay is never late");
        prop_assert_eq!(late, expected_late);
        prop_assert_eq!(passed, expected);
    }
}
