//! Stream-stream interval join (Spark's `StreamingSymmetricHashJoinExec` with a time-range
//! condition): equal keys and `lower <= left time - right time <= upper`, bounds inclusive.
//!
//! Each side buffers its rows until no future row of the other side can match them. A row is
//! buffered under its *eviction time* `e`: no future row can match it once the watermark
//! `wm >= e`, and it is dropped (an outer row emitted) once `wm > e`, as Spark does.
//!
//! * Lateness: a row with `ts <= wm` is late and dropped (Spark filters join inputs with
//!   `eventTime <= watermark`). So every future row has `ts > wm`.
//! * A left row `tl` matches right rows with `tl - upper <= tr <= tl - lower`. A future right
//!   row has `tr > wm`, so one can still match iff `tl - lower > wm`: the left eviction time is
//!   `tl - lower`. Symmetrically a right row `tr` matches `tr + lower <= tl <= tr + upper`, and a
//!   future `tl > wm` can still match iff `tr + upper > wm`: the right eviction time is
//!   `tr + upper`.
//!
//! Spark derives the same bounds in `StreamingJoinHelper.getStateValueWatermark`: for the left
//! state it solves `l.t >= r.t + lower` with the *other* side's event-time column replaced by
//! the watermark, giving the state watermark `wm + lower`, and for the right state it solves
//! `l.t <= r.t + upper` for `r.t`, giving `wm - upper`; rows with `time <= state watermark` are
//! removed. Left `tl <= wm + lower` is our `tl - lower <= wm`, right `tr <= wm - upper` is our
//! `tr + upper <= wm`. Spark subtracts one (millisecond) for the non-strict `>=`/`<=` (it
//! assumes a future row may carry `time == wm`, although its late filter drops those), so it
//! keeps a row while `wm == e` and evicts it once `wm > e` (for millisecond timestamps; a strict
//! bound, planned here as the non-strict one a microsecond inside, gives the same). Eviction here
//! waits for `wm > e` too: not needed for the matches, but it decides *when* an unmatched outer
//! row is emitted, and so which ones are out when the input ends (the Spark golden
//! `temps_loads_left_end` has a temperature exactly at the final watermark minus the range,
//! which Spark does not emit). Spark's watermark is the global (minimum over inputs) one,
//! as is the task watermark here — a lower bound of the other side's own watermark, so using it
//! is safe. Spark evicts at the end of each micro-batch; here eviction follows the watermark.
//!
//! Outer rows: a row of an outer side (left in left/full outer joins, right in right/full
//! outer joins) that never matched is emitted null-padded when it is evicted — the one moment
//! at which it is known that no row can match it any more — and, being dropped from state
//! then, never again. A row whose eviction time has already passed when it arrives (possible
//! with `lower > 0` on the left, `upper < 0` on the right) probes the buffered rows, is not
//! buffered, and if unmatched on an outer side is emitted null-padded at once (Spark's
//! "input evicted in this batch" case). A row with a NULL key never matches (SQL equality);
//! it is buffered only on an outer side, for its null-padded output.
//!
//! State keys are `[0x01][side][eviction time, order-preserving][join key][sequence, 8 bytes]`,
//! values `[version][matched][event time, 8 bytes LE][values, order-preserving encoding]`. The
//! sequence number (one counter for the operator) keeps identical rows distinct. The matched
//! flag is kept for outer sides only (it never matters on the other sides, and keeping it there
//! would rewrite every buffered row once more).

use side::{key_hash, Buffered, Side};

use super::{ChangeSink, Operator, Processed, DATA_PREFIX};
use crate::state::codec::CodecError;
use crate::types::keys::{order_i64, unorder_i64};
use crate::types::{decode_key, encode_key_value, Row, Value};

const VALUE_VERSION: u8 = 1;
/// `[prefix][side][eviction time]` before the join key, the sequence number after it.
const KEY_HEAD: usize = 10;
const SEQ_BYTES: usize = 8;

/// The join types of an interval join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
}

impl JoinType {
    /// Whether unmatched rows of `side` (0 left, 1 right) are emitted null-padded.
    fn outer(self, side: usize) -> bool {
        match self {
            JoinType::Inner => false,
            JoinType::LeftOuter => side == 0,
            JoinType::RightOuter => side == 1,
            JoinType::FullOuter => true,
        }
    }
}

/// The interval join operator.
pub struct IntervalJoin {
    join_type: JoinType,
    key_count: usize,
    widths: [usize; 2],
    lower: i64,
    upper: i64,
    sides: [Side; 2],
    /// (side, slot, sequence) of rows that may be dirty.
    changed: Vec<(u8, u32, u64)>,
    /// State keys of persisted rows that were dropped.
    /// `deleted_ends[i]` is where the i-th key ends in `deleted` (one buffer, no allocation per
    /// dropped row).
    deleted: Vec<u8>,
    deleted_ends: Vec<usize>,
    next_seq: u64,
    entries: usize,
    bytes: usize,
    scratch_key: Vec<u8>,
}

fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The time condition `lower <= tl - tr <= upper`, without overflow.
fn in_range(lower: i64, upper: i64, tl: i64, tr: i64) -> bool {
    let d = i128::from(tl) - i128::from(tr);
    i128::from(lower) <= d && d <= i128::from(upper)
}

/// Approximate in-memory bytes of one buffered row.
fn row_bytes(key: &[u8], values: &[Value]) -> usize {
    let strings: usize = values.iter().map(|v| if let Value::Str(s) = v { s.len() } else { 0 }).sum();
    96 + key.len() * 2 + 24 * values.len() + strings
}

/// Appends the state key of a row to `out`.
fn write_state_key(side: u8, evict: i64, key: &[u8], seq: u64, out: &mut Vec<u8>) {
    out.push(DATA_PREFIX);
    out.push(side);
    out.extend_from_slice(&order_i64(evict));
    out.extend_from_slice(key);
    out.extend_from_slice(&seq.to_be_bytes());
}

/// A parsed state key.
struct StateKey<'a> {
    side: usize,
    evict: i64,
    key: &'a [u8],
    seq: u64,
}

fn parse_state_key(k: &[u8]) -> Result<StateKey<'_>, CodecError> {
    if k.len() < KEY_HEAD + SEQ_BYTES || k[0] != DATA_PREFIX {
        return Err(CodecError::Corrupt("join state key"));
    }
    let side = match k[1] {
        0 => 0,
        1 => 1,
        _ => return Err(CodecError::Corrupt("join state key side")),
    };
    let mut evict = [0u8; 8];
    evict.copy_from_slice(&k[2..KEY_HEAD]);
    let split = k.len() - SEQ_BYTES;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&k[split..]);
    Ok(StateKey { side, evict: unorder_i64(evict), key: &k[KEY_HEAD..split], seq: u64::from_be_bytes(seq) })
}

impl IntervalJoin {
    pub fn new(join_type: JoinType, key_count: usize, left_width: usize, right_width: usize, lower: i64, upper: i64) -> IntervalJoin {
        IntervalJoin {
            join_type,
            key_count,
            widths: [left_width, right_width],
            lower,
            upper,
            sides: [Side::default(), Side::default()],
            changed: Vec::new(),
            deleted: Vec::new(),
            deleted_ends: Vec::new(),
            next_seq: 0,
            entries: 0,
            bytes: 0,
            scratch_key: Vec::with_capacity(64),
        }
    }

    /// The watermark at which a row of `side` at `ts` can no longer match a future row:
    /// `tl - lower` on the left, `tr + upper` on the right (saturating, which keeps every
    /// comparison with a watermark as it would be without overflow).
    fn eviction_time(&self, side: usize, ts: i64) -> i64 {
        if side == 0 {
            clamp(i128::from(ts) - i128::from(self.lower))
        } else {
            clamp(i128::from(ts) + i128::from(self.upper))
        }
    }

    /// `[left values..., right values...]`, one side null-padded when `other` is `None`.
    fn joined(&self, side: usize, this: &[Value], other: Option<&[Value]>) -> Row {
        let mut row = Vec::with_capacity(self.widths[0] + self.widths[1]);
        let pad = |row: &mut Row, n: usize| row.extend(std::iter::repeat_n(Value::Null, n));
        let (left, right) = if side == 0 { (Some(this), other) } else { (other, Some(this)) };
        match left {
            Some(v) => row.extend_from_slice(v),
            None => pad(&mut row, self.widths[0]),
        }
        match right {
            Some(v) => row.extend_from_slice(v),
            None => pad(&mut row, self.widths[1]),
        }
        row
    }

    /// Removes a row while restoring (no tombstone: the store already lost it).
    fn forget(&mut self, side: usize, evict: i64, seq: u64, key: &[u8]) {
        if let Some(row) = self.sides[side].forget(evict, seq, key) {
            self.entries -= 1;
            self.bytes -= row_bytes(&row.key, &row.values);
        }
    }

    fn drop_row(&mut self, side: usize, row: &Buffered) {
        self.entries -= 1;
        self.bytes -= row_bytes(&row.key, &row.values);
        if row.persisted {
            write_state_key(side as u8, row.evict, &row.key, row.seq, &mut self.deleted);
            self.deleted_ends.push(self.deleted.len());
        }
    }
}

impl IntervalJoin {
    /// Adds one row of `side` whose key is in `scratch_key`: probes the other side, emits the
    /// matches, and buffers the row while a future row of the other side can match it.
    fn add(&mut self, side: usize, ts: i64, null_key: bool, values: Vec<Value>, watermark: i64, out: &mut Vec<Row>) -> Processed {
        let other = 1 - side;
        let other_outer = self.join_type.outer(other);

        // Probe the other side: its rows with this key whose eviction time lies in
        // [ts, ts + upper - lower] (left rows tl in [tr + lower, tr + upper] have eviction times
        // tl - lower in [tr, tr + upper - lower]; right rows tr in [tl - upper, tl - lower] have
        // tr + upper in [tl, tl - lower + upper]), then the exact time condition.
        let mut matched = false;
        let hash = key_hash(&self.scratch_key);
        let hi = clamp(i128::from(ts) + i128::from(self.upper) - i128::from(self.lower));
        // (hi < ts only when lower > upper: nothing matches, and the range would be inverted)
        if !null_key && hi >= ts {
            let (lower, upper, widths) = (self.lower, self.upper, self.widths);
            let (key, changed) = (&self.scratch_key[..], &mut self.changed);
            self.sides[other].probe(hash, ts, hi, |slot, b| {
                let (tl, tr) = if side == 0 { (ts, b.ts) } else { (b.ts, ts) };
                if *b.key != *key || !in_range(lower, upper, tl, tr) {
                    return;
                }
                matched = true;
                let mut joined = Vec::with_capacity(widths[0] + widths[1]);
                if side == 0 {
                    joined.extend_from_slice(&values);
                    joined.extend_from_slice(&b.values);
                } else {
                    joined.extend_from_slice(&b.values);
                    joined.extend_from_slice(&values);
                }
                out.push(joined);
                if other_outer && !b.matched {
                    b.matched = true;
                    if !b.dirty {
                        b.dirty = true;
                        changed.push((other as u8, slot, b.seq));
                    }
                }
            });
        }

        let outer = self.join_type.outer(side);
        let evict = self.eviction_time(side, ts);
        if evict < watermark {
            // No future row can match it (and Spark would evict it now): not buffered.
            if outer && !matched {
                out.push(self.joined(side, &values, None));
            }
            return Processed::Accepted;
        }
        if null_key && !outer {
            // Can never match and is never emitted on its own.
            return Processed::Accepted;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        let key: Box<[u8]> = Box::from(&self.scratch_key[..]);
        self.entries += 1;
        self.bytes += row_bytes(&key, &values);
        let row = Buffered { ts, evict, seq, key, hash, values, matched: matched && outer, dirty: true, persisted: false };
        let slot = self.sides[side].insert(row);
        self.changed.push((side as u8, slot, seq));
        Processed::Accepted
    }
}

impl Operator for IntervalJoin {
    fn process(&mut self, side: usize, row: &[Value], watermark: i64, out: &mut Vec<Row>) -> Processed {
        let Some(Value::Timestamp(ts)) = row.first() else { return Processed::Late };
        let ts = *ts;
        if side > 1 || ts <= watermark {
            return Processed::Late;
        }
        let at = |i: usize| row.get(i).cloned().unwrap_or(Value::Null);
        self.scratch_key.clear();
        let mut null_key = false;
        for i in 1..=self.key_count {
            let v = at(i);
            null_key |= v.is_null();
            encode_key_value(&v, &mut self.scratch_key);
        }
        let values: Vec<Value> = (0..self.widths[side]).map(|i| at(1 + self.key_count + i)).collect();
        self.add(side, ts, null_key, values, watermark, out)
    }

    fn process_keyed(&mut self, side: usize, ts: i64, key: &[u8], values: &[Value], watermark: i64, out: &mut Vec<Row>) -> Processed {
        if side > 1 || ts <= watermark {
            return Processed::Late;
        }
        self.scratch_key.clear();
        self.scratch_key.extend_from_slice(key);
        let null_key = crate::types::keys::any_null(key);
        let width = self.widths[side];
        let mut row: Vec<Value> = values.iter().take(width).cloned().collect();
        row.resize(width, Value::Null);
        self.add(side, ts, null_key, row, watermark, out)
    }

    /// A buffered left row has `tl >= wm + lower` and a buffered right row `tr >= wm - upper`
    /// (they are evicted below those), and a new row is above `wm`: every joined row emitted
    /// from now on has both event times above `min(wm + lower, wm - upper, wm) - 1` (Spark's
    /// join output watermark is the minimum of its two state watermarks in the same way).
    fn output_watermark(&self, watermark: i64) -> i64 {
        if watermark == crate::time::NO_WATERMARK || watermark == i64::MAX {
            return watermark;
        }
        let wm = i128::from(watermark);
        let lowest = (wm + i128::from(self.lower.min(0))).min(wm - i128::from(self.upper.max(0)));
        clamp(lowest - 1)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Row>) {
        for side in 0..2 {
            let outer = self.join_type.outer(side);
            while let Some(row) = self.sides[side].pop_evicted(watermark) {
                if outer && !row.matched {
                    out.push(self.joined(side, &row.values, None));
                }
                self.drop_row(side, &row);
            }
        }
    }

    fn on_commit(&mut self, _out: &mut Vec<Row>) {}

    fn take_changes(&mut self, f: &mut ChangeSink<'_>) {
        let mut changed = std::mem::take(&mut self.changed);
        let (mut buf, mut key) = (Vec::with_capacity(64), Vec::with_capacity(64));
        for (side, slot, seq) in changed.drain(..) {
            let Some(row) = self.sides.get_mut(usize::from(side)).and_then(|s| s.get_mut(slot, seq)) else { continue };
            if !row.dirty {
                continue;
            }
            row.dirty = false;
            row.persisted = true;
            buf.clear();
            buf.push(VALUE_VERSION);
            buf.push(u8::from(row.matched));
            buf.extend_from_slice(&row.ts.to_le_bytes());
            for v in &row.values {
                encode_key_value(v, &mut buf);
            }
            key.clear();
            write_state_key(side, row.evict, &row.key, seq, &mut key);
            f(&key, Some(&buf));
        }
        self.changed = changed; // empty, keeping its capacity
        let mut start = 0;
        for end in self.deleted_ends.drain(..) {
            f(&self.deleted[start..end], None);
            start = end;
        }
        self.deleted.clear();
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
        let k = parse_state_key(key)?;
        let Some(bytes) = value else {
            self.forget(k.side, k.evict, k.seq, k.key);
            return Ok(());
        };
        let keys = decode_key(k.key).map_err(|_| CodecError::Corrupt("join state key values"))?;
        if keys.len() != self.key_count {
            return Err(CodecError::Corrupt("the join's keys changed since this state was written"));
        }
        let (&version, rest) = bytes.split_first().ok_or(CodecError::Truncated)?;
        if version != VALUE_VERSION {
            return Err(CodecError::UnknownVersion(version, VALUE_VERSION));
        }
        let (&matched, rest) = rest.split_first().ok_or(CodecError::Truncated)?;
        let matched = match matched {
            0 => false,
            1 => true,
            _ => return Err(CodecError::Corrupt("join matched flag")),
        };
        if rest.len() < 8 {
            return Err(CodecError::Truncated);
        }
        let (ts_bytes, rest) = rest.split_at(8);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(ts_bytes);
        let ts = i64::from_le_bytes(ts);
        if self.eviction_time(k.side, ts) != k.evict {
            return Err(CodecError::Corrupt("join state key and value disagree (or the time range changed)"));
        }
        let values = decode_key(rest).map_err(|_| CodecError::Corrupt("join state values"))?;
        if values.len() != self.widths[k.side] {
            return Err(CodecError::Corrupt("the join's columns changed since this state was written"));
        }
        self.forget(k.side, k.evict, k.seq, k.key);
        let key: Box<[u8]> = Box::from(k.key);
        self.entries += 1;
        self.bytes += row_bytes(&key, &values);
        let hash = key_hash(&key);
        self.sides[k.side].insert(Buffered { ts, evict: k.evict, seq: k.seq, key, hash, values, matched, dirty: false, persisted: true });
        self.next_seq = self.next_seq.max(k.seq.saturating_add(1));
        Ok(())
    }

    fn clear(&mut self) {
        self.sides = [Side::default(), Side::default()];
        self.changed.clear();
        self.deleted.clear();
        self.deleted_ends.clear();
        self.next_seq = 0;
        self.entries = 0;
        self.bytes = 0;
    }

    fn entries(&self) -> usize {
        self.entries
    }

    fn state_bytes(&self) -> usize {
        self.bytes
    }

    fn name(&self) -> &'static str {
        "join"
    }
}

mod side;
#[cfg(test)]
mod tests;
