use crate::sql::AggregateKind;
use crate::types::DataType;
use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::time::{PartitionWatermark, NO_WATERMARK};

const H: i64 = 3_600_000_000;

fn count_and_sum() -> Vec<AggregateCall> {
    crate::sql::numbered(vec![
        AggregateCall::native(AggregateKind::CountStar, DataType::Int64, "count(1)"),
        AggregateCall::native(AggregateKind::Sum, DataType::Int64, "sum(v)"),
    ])
}

fn op(window: Option<WindowSpec>, mode: OutputMode) -> WindowAggregate {
    WindowAggregate::new(window, 1, &count_and_sum(), mode)
}

fn row(ts: i64, key: &str, v: i64) -> Vec<Value> {
    vec![Value::Timestamp(ts), Value::str(key), Value::Null, Value::Long(v)]
}

/// State as sled would hold it: what `take_changes` wrote.
fn persist(op: &mut WindowAggregate, store: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    op.take_changes(&mut |k, v| match v {
        Some(v) => {
            store.insert(k.to_vec(), v.to_vec());
        }
        None => {
            assert!(store.remove(k).is_some(), "tombstone for a key that was never written");
        }
    });
}

#[test]
fn an_event_at_a_window_end_opens_the_next_window() {
    let mut o = op(Some(WindowSpec::tumbling(H)), OutputMode::Append);
    assert_eq!(o.process(0, &row(H, "a", 1), NO_WATERMARK, &mut Vec::new()), Processed::Accepted);
    let mut out = Vec::new();
    o.on_watermark(2 * H - 1, &mut out);
    assert!(out.is_empty(), "[1h, 2h) is still open at 2h - 1us");
    o.on_watermark(2 * H, &mut out);
    assert_eq!(out, vec![vec![Value::str("a"), Value::Window { start: H, end: 2 * H }, Value::Long(1), Value::Long(1)]]);
}

#[test]
fn a_record_whose_windows_closed_is_late() {
    let mut o = op(Some(WindowSpec::tumbling(H)), OutputMode::Append);
    assert_eq!(o.process(0, &row(H - 1, "a", 1), H, &mut Vec::new()), Processed::Late, "window ends at H, watermark is H");
    assert_eq!(o.process(0, &row(H - 1, "a", 1), H - 1, &mut Vec::new()), Processed::Accepted);
    // sliding: late for the older window, on time for the newer one
    let mut s = op(Some(WindowSpec::sliding(2 * H, H)), OutputMode::Append);
    assert_eq!(s.process(0, &row(H + 5, "a", 1), 2 * H, &mut Vec::new()), Processed::Accepted);
    assert_eq!(s.entries(), 1, "only [H, 3H) took the row; [0, 2H) had closed");
}

#[test]
fn update_mode_emits_changed_rows_at_commit() {
    let mut o = op(Some(WindowSpec::tumbling(H)), OutputMode::Update);
    o.process(0, &row(10, "a", 1), NO_WATERMARK, &mut Vec::new());
    o.process(0, &row(20, "a", 2), NO_WATERMARK, &mut Vec::new());
    o.process(0, &row(30, "b", 5), NO_WATERMARK, &mut Vec::new());
    let mut out = Vec::new();
    o.on_commit(&mut out);
    assert_eq!(out.len(), 2);
    out.clear();
    o.on_commit(&mut out);
    assert!(out.is_empty(), "nothing changed since");
    o.process(0, &row(40, "a", 1), NO_WATERMARK, &mut Vec::new());
    o.on_watermark(H, &mut out);
    assert_eq!(out.len(), 1, "an updated window that closes before the commit is still emitted");
    assert_eq!(out[0][2], Value::Long(3));
    assert_eq!(o.entries(), 0, "closed windows are dropped");
}

#[test]
fn complete_mode_emits_everything_and_keeps_it() {
    let mut o = op(None, OutputMode::Complete);
    o.process(0, &row(10, "a", 1), NO_WATERMARK, &mut Vec::new());
    o.process(0, &row(20, "b", 1), NO_WATERMARK, &mut Vec::new());
    let mut out = Vec::new();
    o.on_watermark(i64::MAX, &mut out);
    o.on_commit(&mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].len(), 3, "no window column");
    o.on_commit(&mut out);
    assert_eq!(out.len(), 2, "nothing changed: no table again (Spark runs no batch without data)");
    o.process(0, &row(30, "a", 1), NO_WATERMARK, &mut Vec::new());
    o.on_commit(&mut out);
    assert_eq!(out.len(), 4, "one change: the whole table again");
}

#[test]
fn complete_mode_keeps_windows_past_the_watermark_and_counts_late_records() {
    let mut o = op(Some(WindowSpec::tumbling(H)), OutputMode::Complete);
    o.process(0, &row(10, "a", 1), NO_WATERMARK, &mut Vec::new());
    let mut out = Vec::new();
    o.on_watermark(5 * H, &mut out);
    assert!(out.is_empty(), "complete mode emits at commits only");
    assert_eq!(o.entries(), 1, "the closed window stays in the table");
    assert_eq!(o.process(0, &row(20, "a", 4), 5 * H, &mut Vec::new()), Processed::Accepted, "late, and still counted (Spark)");
    o.on_commit(&mut out);
    assert_eq!(out, vec![vec![Value::str("a"), Value::Window { start: 0, end: H }, Value::Long(2), Value::Long(5)]]);
    let mut gone = Vec::new();
    o.take_retractions(&mut gone);
    assert!(gone.is_empty(), "without retention nothing leaves the table");
}

#[test]
fn retention_drops_old_windows_with_retractions_and_tombstones() {
    let mut o = op(Some(WindowSpec::tumbling(H)), OutputMode::Complete).with_retention(Some(H));
    let mut store = BTreeMap::new();
    o.process(0, &row(10, "a", 1), NO_WATERMARK, &mut Vec::new());
    o.process(0, &row(H + 10, "b", 2), NO_WATERMARK, &mut Vec::new());
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 2);
    let mut out = Vec::new();
    o.on_watermark(2 * H - 1, &mut out);
    let mut gone = Vec::new();
    o.take_retractions(&mut gone);
    assert!(gone.is_empty(), "[0, H) is kept until the watermark is H past its end");
    assert_eq!(o.process(0, &row(20, "a", 1), 2 * H - 1, &mut Vec::new()), Processed::Accepted);
    o.on_watermark(2 * H, &mut out);
    assert!(out.is_empty());
    o.take_retractions(&mut gone);
    assert_eq!(gone, vec![vec![Value::str("a"), Value::Window { start: 0, end: H }, Value::Long(2), Value::Long(2)]]);
    assert_eq!(o.entries(), 1);
    assert_eq!(o.process(0, &row(30, "a", 1), 2 * H, &mut Vec::new()), Processed::Late, "its window left the table");
    assert_eq!(o.process(0, &row(H + 30, "b", 1), 2 * H, &mut Vec::new()), Processed::Accepted, "[H, 2H) is within retention");
    persist(&mut o, &mut store);
    assert_eq!(store.len(), 1, "the dropped window's state was deleted");
    o.on_commit(&mut out);
    assert_eq!(out, vec![vec![Value::str("b"), Value::Window { start: H, end: 2 * H }, Value::Long(2), Value::Long(3)]]);
}

/// Complete mode without retention: the table after `order`, with the operator rebuilt from
/// its persisted state before each index in `crashes`, and the watermark following the events
/// with no delay at all (so most records arrive "late").
fn complete_table(order: &[(i64, u8, i64)], spec: WindowSpec, crashes: &[usize]) -> Vec<String> {
    let mut o = op(Some(spec), OutputMode::Complete);
    let mut store = BTreeMap::new();
    let mut wm = NO_WATERMARK;
    for (i, &(ts, key, v)) in order.iter().enumerate() {
        if crashes.contains(&i) {
            persist(&mut o, &mut store);
            o = op(Some(spec), OutputMode::Complete);
            for (k, val) in &store {
                o.restore(k, Some(val)).unwrap();
            }
        }
        assert_eq!(o.process(0, &row(ts, &key.to_string(), v), wm, &mut Vec::new()), Processed::Accepted);
        wm = wm.max(ts);
        o.on_watermark(wm, &mut Vec::new());
    }
    let mut out = Vec::new();
    o.on_commit(&mut out);
    window_rows(&out)
}

#[test]
fn changes_are_latest_values_and_tombstones_only_for_persisted_keys() {
    let mut o = op(Some(WindowSpec::tumbling(H)), OutputMode::Append);
    let mut store = BTreeMap::new();
    o.process(0, &row(10, "a", 1), NO_WATERMARK, &mut Vec::new());
    o.process(0, &row(11, "a", 1), NO_WATERMARK, &mut Vec::new());
    let mut writes = 0;
    o.take_changes(&mut |_, v| {
        assert!(v.is_some());
        writes += 1;
    });
    assert_eq!(writes, 1, "two updates of one key are one changelog record");
    o.process(0, &row(12, "a", 1), NO_WATERMARK, &mut Vec::new());
    persist(&mut o, &mut store);
    // a window opened and closed within one cycle leaves no trace
    o.process(0, &row(H + 1, "b", 1), NO_WATERMARK, &mut Vec::new());
    let mut out = Vec::new();
    o.on_watermark(2 * H, &mut out);
    persist(&mut o, &mut store);
    assert!(store.is_empty(), "the persisted window was tombstoned, the transient one never written");
    assert_eq!(out.len(), 2);
}

#[test]
fn restore_rebuilds_the_same_state() {
    let mut o = op(Some(WindowSpec::tumbling(H)), OutputMode::Append);
    let mut store = BTreeMap::new();
    for i in 0..50 {
        o.process(0, &row(i * 1_000_000, if i % 3 == 0 { "x" } else { "y" }, i), NO_WATERMARK, &mut Vec::new());
    }
    persist(&mut o, &mut store);
    let mut r = op(Some(WindowSpec::tumbling(H)), OutputMode::Append);
    for (k, v) in &store {
        r.restore(k, Some(v)).unwrap();
    }
    assert_eq!(r.entries(), o.entries());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    o.on_watermark(i64::MAX, &mut a);
    r.on_watermark(i64::MAX, &mut b);
    a.sort_by_key(|r| format!("{r:?}"));
    b.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(a, b);
    assert!(r.restore(&[0x01, 1, 2], Some(&[1])).is_err(), "a short key is corrupt, not a panic");
    assert!(r.restore(&store.keys().next().unwrap().clone(), Some(&[9, 9])).is_err());
}

/// Events with an arrival order whose disorder stays within `delay`: each is delivered at
/// `ts + jitter` with `0 <= jitter <= delay`.
fn arrival_order(events: &[(i64, u8, i64)], jitters: &[i64]) -> Vec<(i64, u8, i64)> {
    let mut v: Vec<(i64, (i64, u8, i64))> = events.iter().zip(jitters).map(|(e, j)| (e.0 + j, *e)).collect();
    v.sort_by_key(|(arrival, e)| (*arrival, e.0));
    v.into_iter().map(|(_, e)| e).collect()
}

fn batch(events: &[(i64, u8, i64)], spec: WindowSpec) -> Vec<String> {
    let mut groups: BTreeMap<(i64, u8), (i64, i64)> = BTreeMap::new();
    for &(ts, key, v) in events {
        assign_windows(&spec, ts, |_, end| {
            let g = groups.entry((end, key)).or_default();
            g.0 += 1;
            g.1 += v;
        });
    }
    let mut rows: Vec<String> = groups.into_iter().map(|((end, key), (c, s))| format!("{key} {} {end} {c} {s}", end - spec.size)).collect();
    rows.sort();
    rows
}

fn streamed(order: &[(i64, u8, i64)], spec: WindowSpec, delay: i64, crashes: &[usize]) -> (Vec<String>, usize) {
    let t0 = Instant::now();
    let mut wm = PartitionWatermark::new(delay, None, t0);
    let mut o = op(Some(spec), OutputMode::Append);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    let mut late = 0;
    for (i, &(ts, key, v)) in order.iter().enumerate() {
        if crashes.contains(&i) {
            // commit, then lose the in-memory operator and rebuild it from persisted state
            persist(&mut o, &mut store);
            o = op(Some(spec), OutputMode::Append);
            for (k, val) in &store {
                o.restore(k, Some(val)).unwrap();
            }
        }
        if o.process(0, &row(ts, &key.to_string(), v), wm.watermark(), &mut Vec::new()) == Processed::Late {
            late += 1;
        }
        wm.observe(ts, t0);
        o.on_watermark(wm.watermark(), &mut out);
    }
    o.on_watermark(i64::MAX, &mut out);
    (window_rows(&out), late)
}

/// Result rows `[key, window, count, sum]` as sorted "key start end count sum" lines.
fn window_rows(out: &[Row]) -> Vec<String> {
    let mut rows: Vec<String> = out
        .iter()
        .map(|r| {
            let (Value::Str(k), Value::Window { start, end }, Value::Long(c), Value::Long(s)) = (&r[0], &r[1], &r[2], &r[3]) else {
                panic!("bad row {r:?}")
            };
            format!("{k} {start} {end} {c} {s}")
        })
        .collect();
    rows.sort();
    rows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_order_within_the_delay_equals_the_batch_result(
        events in proptest::collection::vec((0i64..20 * H, 0u8..4, -5i64..100), 1..300),
        jitter_seed in proptest::collection::vec(0i64..=1000, 300),
        sliding in any::<bool>(),
        crashes in proptest::collection::vec(0usize..300, 0..4),
    ) {
        let delay = 2 * H;
        let jitters: Vec<i64> = jitter_seed.iter().map(|j| j * delay / 1000).collect();
        let spec = if sliding { WindowSpec::sliding(H, 20 * 60_000_000) } else { WindowSpec::tumbling(H) };
        let order = arrival_order(&events, &jitters[..events.len()]);
        let (rows, late) = streamed(&order, spec, delay, &crashes);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(rows, batch(&events, spec));
    }

    #[test]
    fn complete_mode_in_any_order_equals_the_batch_result(
        events in proptest::collection::vec((0i64..20 * H, 0u8..4, -5i64..100), 1..200),
        shuffle in proptest::collection::vec(any::<u32>(), 200),
        crashes in proptest::collection::vec(0usize..200, 0..4),
    ) {
        let spec = WindowSpec::sliding(H, 20 * 60_000_000);
        let mut order: Vec<(u32, (i64, u8, i64))> = events.iter().zip(&shuffle).map(|(e, k)| (*k, *e)).collect();
        order.sort_by_key(|(k, _)| *k);
        let order: Vec<(i64, u8, i64)> = order.into_iter().map(|(_, e)| e).collect();
        prop_assert_eq!(complete_table(&order, spec, &crashes), batch(&events, spec));
    }
}
