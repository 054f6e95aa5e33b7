use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::time::NO_WATERMARK;

const MIN: i64 = 60_000_000;

/// Rows of a windowed aggregation below: `[ts = window end - 1, window, category, count, item]`,
/// keyed by (window, category), ordered by count descending.
fn row(window_start: i64, category: &str, count: Option<i64>, item: &str) -> Vec<Value> {
    let end = window_start + 10 * MIN;
    vec![
        Value::Timestamp(end - 1),
        Value::Window { start: window_start, end },
        Value::str(category),
        count.map_or(Value::Null, Value::Long),
        Value::Window { start: window_start, end },
        Value::str(category),
        count.map_or(Value::Null, Value::Long),
        Value::str(item),
    ]
}

fn topn(ranking: Ranking, limit: u64) -> TopN {
    TopN::new(2, vec![SortKey { descending: true, nulls_first: false }], ranking, limit, Some(0))
}

/// `(category, item, rank)` of output rows `[window, category, count, item, rank]`.
fn names(out: &[Row]) -> Vec<(String, String, i64)> {
    out.iter()
        .map(|r| match (&r[1], &r[3], &r[4]) {
            (Value::Str(c), Value::Str(i), Value::Long(n)) => (c.to_string(), i.to_string(), *n),
            other => panic!("unexpected row {other:?}"),
        })
        .collect()
}

fn persist(op: &mut TopN, store: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
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
fn keeps_the_first_n_per_partition_and_emits_them_numbered_when_the_window_closes() {
    let mut op = topn(Ranking::RowNumber, 2);
    let mut out = Vec::new();
    for (cat, count, item) in [("a", 5, "x"), ("a", 9, "y"), ("b", 1, "z"), ("a", 7, "w"), ("a", 2, "v")] {
        assert_eq!(op.process(0, &row(0, cat, Some(count), item), NO_WATERMARK, &mut out), Processed::Accepted);
    }
    assert!(out.is_empty(), "nothing is emitted before the window closes");
    assert_eq!(op.entries(), 2, "one entry per (window, category)");
    op.on_watermark(10 * MIN - 2, &mut out);
    assert!(out.is_empty(), "the watermark is below the window's last instant");
    op.on_watermark(10 * MIN - 1, &mut out);
    assert_eq!(names(&out), [("a".into(), "y".into(), 1), ("a".into(), "w".into(), 2), ("b".into(), "z".into(), 1)]);
    assert_eq!(op.entries(), 0, "emitted partitions are dropped");
    assert_eq!(op.state_bytes(), 0);
}

#[test]
fn a_row_of_a_closed_window_is_late() {
    let mut op = topn(Ranking::RowNumber, 3);
    let mut out = Vec::new();
    assert_eq!(op.process(0, &row(0, "a", Some(1), "x"), 10 * MIN - 1, &mut out), Processed::Late);
    assert_eq!(op.entries(), 0);
    assert_eq!(op.process(0, &row(0, "a", Some(1), "x"), 10 * MIN - 2, &mut out), Processed::Accepted);
}

#[test]
fn rank_keeps_ties_and_skips_dense_rank_does_not_skip() {
    let counts = [("p", 9), ("q", 9), ("r", 7), ("s", 5), ("t", 5), ("u", 4)];
    let run = |ranking, limit| {
        let mut op = topn(ranking, limit);
        let mut out = Vec::new();
        for (item, c) in counts {
            op.process(0, &row(0, "a", Some(c), item), NO_WATERMARK, &mut out);
        }
        op.on_watermark(i64::MAX, &mut out);
        names(&out).into_iter().map(|(_, i, n)| (i, n)).collect::<Vec<_>>()
    };
    let s = |v: &[(&str, i64)]| v.iter().map(|(i, n)| (i.to_string(), *n)).collect::<Vec<_>>();
    assert_eq!(run(Ranking::Rank, 1), s(&[("p", 1), ("q", 1)]), "RANK() = 1 keeps every row tied first");
    assert_eq!(run(Ranking::Rank, 3), s(&[("p", 1), ("q", 1), ("r", 3)]));
    assert_eq!(run(Ranking::Rank, 4), s(&[("p", 1), ("q", 1), ("r", 3), ("s", 4), ("t", 4)]));
    assert_eq!(run(Ranking::DenseRank, 3), s(&[("p", 1), ("q", 1), ("r", 2), ("s", 3), ("t", 3)]));
    assert_eq!(run(Ranking::RowNumber, 2), s(&[("p", 1), ("q", 2)]), "ties are broken by the whole row");
}

#[test]
fn nulls_go_where_the_sort_key_says() {
    for (nulls_first, expected) in [(false, ["y", "x", "n"]), (true, ["n", "y", "x"])] {
        let mut op = TopN::new(2, vec![SortKey { descending: true, nulls_first }], Ranking::RowNumber, 3, Some(0));
        let mut out = Vec::new();
        op.process(0, &row(0, "a", Some(1), "x"), NO_WATERMARK, &mut out);
        op.process(0, &row(0, "a", None, "n"), NO_WATERMARK, &mut out);
        op.process(0, &row(0, "a", Some(3), "y"), NO_WATERMARK, &mut out);
        op.on_watermark(i64::MAX, &mut out);
        assert_eq!(names(&out).into_iter().map(|(_, i, _)| i).collect::<Vec<_>>(), expected);
    }
}

#[test]
fn without_a_window_key_the_event_time_closes_the_partition() {
    // [ts, ts (key), price (sort), price, bidder]: the top bids of each instant.
    let mut op = TopN::new(1, vec![SortKey { descending: true, nulls_first: false }], Ranking::RowNumber, 1, None);
    let mut out = Vec::new();
    let r = |ts, price: i64, who: &str| {
        vec![Value::Timestamp(ts), Value::Timestamp(ts), Value::Long(price), Value::Long(price), Value::str(who)]
    };
    op.process(0, &r(100, 5, "a"), NO_WATERMARK, &mut out);
    op.process(0, &r(100, 8, "b"), NO_WATERMARK, &mut out);
    op.process(0, &r(200, 1, "c"), NO_WATERMARK, &mut out);
    op.on_watermark(100, &mut out);
    assert_eq!(out, vec![vec![Value::Long(8), Value::str("b"), Value::Long(1)]]);
    assert_eq!(op.process(0, &r(100, 9, "d"), 100, &mut out), Processed::Late);
}

#[test]
fn restores_to_the_same_result_and_tombstones_emitted_partitions() {
    let mut op = topn(Ranking::RowNumber, 2);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    op.process(0, &row(0, "a", Some(5), "x"), NO_WATERMARK, &mut out);
    op.process(0, &row(0, "a", Some(9), "y"), NO_WATERMARK, &mut out);
    op.process(0, &row(10 * MIN, "a", Some(1), "z"), NO_WATERMARK, &mut out);
    persist(&mut op, &mut store);
    assert_eq!(store.len(), 2, "one entry per partition");
    let mut restored = topn(Ranking::RowNumber, 2);
    for (k, v) in &store {
        restored.restore(k, Some(v)).unwrap();
    }
    for o in [&mut op, &mut restored] {
        o.process(0, &row(0, "a", Some(7), "w"), NO_WATERMARK, &mut out);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    op.on_watermark(10 * MIN - 1, &mut a);
    restored.on_watermark(10 * MIN - 1, &mut b);
    assert_eq!(a, b);
    assert_eq!(names(&a), [("a".into(), "y".into(), 1), ("a".into(), "w".into(), 2)]);
    persist(&mut op, &mut store);
    assert_eq!(store.len(), 1, "the emitted partition is tombstoned; the next window's stays");
    assert!(restored.restore(&[DATA_PREFIX, 1, 2], Some(&[1])).is_err(), "a short key is an error, not a panic");
}

#[test]
fn a_dropped_row_changes_no_state() {
    let mut op = topn(Ranking::RowNumber, 1);
    let mut store = BTreeMap::new();
    let mut out = Vec::new();
    op.process(0, &row(0, "a", Some(9), "y"), NO_WATERMARK, &mut out);
    persist(&mut op, &mut store);
    op.process(0, &row(0, "a", Some(1), "x"), NO_WATERMARK, &mut out);
    let mut changes = 0;
    op.take_changes(&mut |_, _| changes += 1);
    assert_eq!(changes, 0, "a row past the limit leaves the partition as it was");
}

proptest! {
    /// Against a naive model: all rows of each partition, sorted, numbered, cut at the limit;
    /// whatever the arrival order, and with a restore from the changes half-way.
    #[test]
    fn equals_ranking_every_row_of_each_partition(
        rows in proptest::collection::vec((0i64..3, 0u8..3, proptest::option::of(0i64..5), 0u8..6), 0..60),
        limit in 0u64..4,
        ranking in 0usize..3,
        cut in 0usize..60,
    ) {
        let ranking = Ranking::ALL[ranking];
        let input: Vec<Vec<Value>> = rows.iter().map(|&(w, c, n, i)| row(w * 10 * MIN, &format!("c{c}"), n, &format!("i{i}"))).collect();
        let mut op = topn(ranking, limit);
        let mut store = BTreeMap::new();
        let mut out = Vec::new();
        for (k, r) in input.iter().enumerate() {
            if k == cut {
                persist(&mut op, &mut store);
                op = topn(ranking, limit);
                for (k, v) in &store {
                    op.restore(k, Some(v)).unwrap();
                }
            }
            prop_assert_eq!(op.process(0, r, NO_WATERMARK, &mut out), Processed::Accepted);
        }
        op.on_watermark(i64::MAX, &mut out);
        let mut got: Vec<String> = out.iter().map(|r| format!("{r:?}")).collect();
        got.sort();

        // The model: every row, grouped by (window, category), sorted by count desc nulls last
        // then the whole row, ranked.
        let ranker = Ranker { order: vec![SortKey { descending: true, nulls_first: false }], ranking, limit: limit as usize };
        let mut groups: BTreeMap<String, Vec<Ranked>> = BTreeMap::new();
        for r in &input {
            let values: Row = r[3..].to_vec();
            let mut encoded = Vec::new();
            for v in &values {
                encode_key_value(v, &mut encoded);
            }
            groups.entry(format!("{:?}{:?}", r[1], r[2])).or_default().push(Ranked { values, encoded: encoded.into() });
        }
        let mut want = Vec::new();
        for rows in groups.values_mut() {
            rows.sort_by(|a, b| ranker.compare(a, b));
            for (r, rank) in rows.iter().zip(ranker.ranks(rows)) {
                if rank as u64 <= limit {
                    let mut o: Row = r.values[1..].to_vec();
                    o.push(Value::Long(rank as i64));
                    want.push(format!("{o:?}"));
                }
            }
        }
        want.sort();
        prop_assert_eq!(got, want);
        prop_assert_eq!(op.entries(), 0);
        prop_assert_eq!(op.state_bytes(), 0);
    }
}
