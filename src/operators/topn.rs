//! Window Top-N (`ROW_NUMBER() | RANK() | DENSE_RANK() OVER (PARTITION BY <window, keys>
//! ORDER BY ...)` kept while the number is at most N): per partition, the first rows by the
//! sort keys, emitted once, numbered, when the watermark closes the partition — Flink's
//! Window Top-N. Only the first N rows (with ties, for RANK and DENSE_RANK) are kept, so a
//! partition's state is bounded by N whatever its size.
//!
//! A partition closes at its *close time*: the end of its window minus 1 µs when one of its
//! keys is a window (the latest event time the window holds), else the event time itself
//! (then every row of the partition has that event time, e.g. the rows of a windowed
//! aggregation below, whose event time is `window_time`). A row is late when its partition's
//! close time is at or below the watermark, the rule of the window aggregation (a window
//! closes when the watermark reaches its end); a partition is emitted and dropped when the
//! watermark reaches its close time.
//!
//! Rows with equal sort keys are ordered by their whole encoded row, so ROW_NUMBER picks the
//! same rows whatever order they arrived in (after a restart, or from a re-run upstream).
//!
//! Input rows are `[event_time, keys..., sort values..., columns...]`; output rows
//! `[columns..., rank]`. State: one entry per partition, key `[0x01][close time,
//! order-preserving][partition key]`, value `[version][row count][each row's encoded values]`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{ChangeSink, Operator, Processed, DATA_PREFIX};
use crate::expr::ranking::Ranking;
pub use crate::sql::SortKey;
use crate::state::codec::{CodecError, Reader, Writer};
use crate::types::keys::{order_i64, unorder_i64};
use crate::types::{decode_key, encode_key_value, FxHashMap, Row, Value};

const VALUE_VERSION: u8 = 1;

struct Ranked {
    /// `[sort values..., columns...]`.
    values: Row,
    /// The order-preserving encoding of `values`: the tie-break, and the stored form.
    encoded: Box<[u8]>,
}

struct Part {
    rows: Vec<Ranked>,
    /// Changed since the last `take_changes`.
    dirty: bool,
    /// Present in the changelog and sled (so deleting it needs a tombstone).
    persisted: bool,
}

/// How rows are ordered and how many are kept.
struct Ranker {
    order: Vec<SortKey>,
    ranking: Ranking,
    limit: usize,
}

impl Ranker {
    fn compare_sort(&self, a: &[Value], b: &[Value]) -> Ordering {
        for (i, key) in self.order.iter().enumerate() {
            let (x, y) = (a.get(i).unwrap_or(&Value::Null), b.get(i).unwrap_or(&Value::Null));
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) if key.nulls_first => Ordering::Less,
                (true, false) => Ordering::Greater,
                (false, true) if key.nulls_first => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) if key.descending => x.sql_cmp(y).unwrap_or(Ordering::Equal).reverse(),
                (false, false) => x.sql_cmp(y).unwrap_or(Ordering::Equal),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    fn compare(&self, a: &Ranked, b: &Ranked) -> Ordering {
        self.compare_sort(&a.values, &b.values).then_with(|| a.encoded.cmp(&b.encoded))
    }

    /// The rank of each of `rows` (sorted).
    fn ranks(&self, rows: &[Ranked]) -> Vec<usize> {
        let mut out = Vec::with_capacity(rows.len());
        let mut rank = 0;
        for (i, r) in rows.iter().enumerate() {
            let tie = i > 0 && self.compare_sort(&rows[i - 1].values, &r.values) == Ordering::Equal;
            rank = match self.ranking {
                Ranking::RowNumber => i + 1,
                Ranking::Rank | Ranking::DenseRank if tie => rank,
                Ranking::Rank => i + 1,
                Ranking::DenseRank => rank + 1,
            };
            out.push(rank);
        }
        out
    }

    /// How many of `rows` (sorted) have a rank at most the limit.
    fn kept(&self, rows: &[Ranked]) -> usize {
        self.ranks(rows).iter().take_while(|&&r| r <= self.limit).count()
    }
}

/// The Top-N operator of one task.
pub struct TopN {
    key_count: usize,
    ranker: Ranker,
    /// The key that is the partition's window, if one is.
    window_key: Option<usize>,
    /// Close time -> partition key -> its kept rows.
    parts: BTreeMap<i64, FxHashMap<Box<[u8]>, Part>>,
    /// Partitions changed since the last `take_changes`.
    changed: Vec<(i64, Box<[u8]>)>,
    /// State keys to tombstone.
    deleted: Vec<Vec<u8>>,
    bytes: usize,
    scratch: Vec<u8>,
}

impl TopN {
    pub fn new(key_count: usize, order: Vec<SortKey>, ranking: Ranking, limit: u64, window_key: Option<usize>) -> TopN {
        TopN {
            key_count,
            ranker: Ranker { order, ranking, limit: usize::try_from(limit).unwrap_or(usize::MAX) },
            window_key,
            parts: BTreeMap::new(),
            changed: Vec::new(),
            deleted: Vec::new(),
            bytes: 0,
            scratch: Vec::with_capacity(64),
        }
    }

    fn state_key(close: i64, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(9 + key.len());
        k.push(DATA_PREFIX);
        k.extend_from_slice(&order_i64(close));
        k.extend_from_slice(key);
        k
    }

    /// Places `values` among the partition's rows and cuts the tail past the limit.
    fn insert(&mut self, close: i64, key: &[u8], values: Row) {
        if self.ranker.limit == 0 {
            return;
        }
        let mut encoded = std::mem::take(&mut self.scratch);
        encoded.clear();
        for v in &values {
            encode_key_value(v, &mut encoded);
        }
        let new = Ranked { encoded: Box::from(encoded.as_slice()), values };
        self.scratch = encoded;
        let bucket = self.parts.entry(close).or_default();
        if !bucket.contains_key(key) {
            self.bytes += key.len();
        }
        let part = bucket.entry(Box::from(key)).or_insert_with(|| Part { rows: Vec::new(), dirty: false, persisted: false });
        let at = part.rows.partition_point(|r| self.ranker.compare(r, &new) == Ordering::Less);
        self.bytes += row_bytes(&new);
        part.rows.insert(at, new);
        let keep = self.ranker.kept(&part.rows);
        for r in part.rows.drain(keep..) {
            self.bytes -= row_bytes(&r);
        }
        if at < keep && !part.dirty {
            part.dirty = true;
            self.changed.push((close, Box::from(key)));
        }
    }

    fn remove_part(&mut self, close: i64, key: &[u8]) -> Option<Part> {
        let bucket = self.parts.get_mut(&close)?;
        let part = bucket.remove(key)?;
        if bucket.is_empty() {
            self.parts.remove(&close);
        }
        self.bytes -= part.rows.iter().map(row_bytes).sum::<usize>() + key.len();
        Some(part)
    }
}

fn row_bytes(r: &Ranked) -> usize {
    r.encoded.len() * 2 + 48
}

impl Operator for TopN {
    fn process(&mut self, _side: usize, row: &[Value], watermark: i64, out: &mut Vec<Row>) -> Processed {
        let Some(Value::Timestamp(ts)) = row.first() else { return Processed::Late };
        let keys = row.get(1..1 + self.key_count).unwrap_or_default();
        let mut key = Vec::with_capacity(32);
        for k in keys {
            encode_key_value(k, &mut key);
        }
        let values = row.get(1 + self.key_count..).unwrap_or_default();
        self.process_keyed(0, *ts, &key, values, watermark, out)
    }

    fn process_keyed(&mut self, _side: usize, ts: i64, key: &[u8], values: &[Value], watermark: i64, _out: &mut Vec<Row>) -> Processed {
        let close = match self.window_key {
            Some(i) => match decode_key(key).ok().and_then(|k| k.into_iter().nth(i)) {
                Some(Value::Window { end, .. }) => end - 1,
                _ => ts,
            },
            None => ts,
        };
        if close <= watermark {
            return Processed::Late;
        }
        self.insert(close, key, values.to_vec());
        Processed::Accepted
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Row>) {
        let sort_width = self.ranker.order.len();
        while let Some(entry) = self.parts.first_entry() {
            if *entry.key() > watermark {
                break;
            }
            let (close, bucket) = entry.remove_entry();
            let mut parts: Vec<(Box<[u8]>, Part)> = bucket.into_iter().collect();
            parts.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, part) in parts {
                for (r, rank) in part.rows.iter().zip(self.ranker.ranks(&part.rows)) {
                    let mut row: Row = r.values.get(sort_width..).unwrap_or_default().to_vec();
                    row.push(Value::Long(rank as i64));
                    out.push(row);
                }
                self.bytes -= part.rows.iter().map(row_bytes).sum::<usize>() + key.len();
                if part.persisted {
                    self.deleted.push(Self::state_key(close, &key));
                }
            }
        }
    }

    fn on_commit(&mut self, _out: &mut Vec<Row>) {}

    fn take_changes(&mut self, f: &mut ChangeSink<'_>) {
        for key in self.deleted.drain(..) {
            f(&key, None);
        }
        for (close, key) in std::mem::take(&mut self.changed) {
            let Some(part) = self.parts.get_mut(&close).and_then(|b| b.get_mut(&key)) else { continue };
            if !part.dirty {
                continue;
            }
            part.dirty = false;
            part.persisted = true;
            let mut w = Writer::new();
            w.u8(VALUE_VERSION);
            w.varint(part.rows.len() as u64);
            for r in &part.rows {
                w.bytes(&r.encoded);
            }
            f(&Self::state_key(close, &key), Some(&w.buf));
        }
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
        let (close, part_key) = match key {
            [DATA_PREFIX, rest @ ..] if rest.len() >= 8 => {
                let mut t = [0u8; 8];
                t.copy_from_slice(&rest[..8]);
                (unorder_i64(t), &rest[8..])
            }
            _ => return Err(CodecError::Truncated),
        };
        self.remove_part(close, part_key);
        let Some(value) = value else { return Ok(()) };
        let mut r = Reader::new(value);
        if r.u8()? != VALUE_VERSION {
            return Err(CodecError::UnknownVersion(value.first().copied().unwrap_or(0), VALUE_VERSION));
        }
        let n = r.varint()?;
        let mut rows = Vec::new();
        for _ in 0..n {
            let encoded = r.bytes()?;
            let values = decode_key(encoded).map_err(|_| CodecError::Corrupt("a Top-N row does not decode"))?;
            let ranked = Ranked { values, encoded: Box::from(encoded) };
            self.bytes += row_bytes(&ranked);
            rows.push(ranked);
        }
        self.bytes += part_key.len();
        self.parts.entry(close).or_default().insert(Box::from(part_key), Part { rows, dirty: false, persisted: true });
        Ok(())
    }

    fn clear(&mut self) {
        self.parts.clear();
        self.changed.clear();
        self.deleted.clear();
        self.bytes = 0;
    }

    fn entries(&self) -> usize {
        self.parts.values().map(|b| b.len()).sum()
    }

    fn state_bytes(&self) -> usize {
        self.bytes
    }

    fn name(&self) -> &'static str {
        "topn"
    }
}

#[cfg(test)]
mod tests;
