//! Windowed (or plain) GROUP BY aggregation. State is an ordered map from window end to the
//! groups of that window, so "every window that closes at or before the watermark" is a scan
//! from the front (Arroyo's tumbling_aggregating_window, timely's frontier pattern).
//!
//! State keys are `[0x01][window end, order-preserving][group key]`, values
//! `[version][accumulators]`; a group without a window lives under window end `i64::MAX`.
//!
//! Complete mode keeps windows past the watermark (Spark's rule: the whole result table, late
//! records included) for `retention` after their end, or for ever; a window it drops leaves
//! its rows as retractions, which the task turns into tombstones.

use std::collections::BTreeMap;

use super::{Accumulator, CallSpec, ChangeSink, Operator, Processed, DATA_PREFIX};
use crate::config::OutputMode;
use crate::sql::AggregateCall;
use crate::state::codec::{CodecError, Reader, Writer};
use crate::time::{assign_windows, WindowSpec};
use crate::types::keys::{order_i64, unorder_i64};
use crate::types::{decode_key, encode_key_value, FxHashMap, Row, Value};

const VALUE_VERSION: u8 = 1;
/// The bucket of groups that have no window.
const NO_WINDOW: i64 = i64::MAX;

struct Group {
    accumulators: Vec<Accumulator>,
    /// Changed since the last `take_changes`.
    dirty: bool,
    /// Changed since it was last emitted (update mode).
    updated: bool,
    /// Present in the changelog and sled (so deleting it needs a tombstone).
    persisted: bool,
}

type Groups = FxHashMap<Box<[u8]>, Group>;

/// The aggregation operator.
pub struct WindowAggregate {
    window: Option<WindowSpec>,
    key_count: usize,
    calls: Vec<CallSpec>,
    mode: OutputMode,
    /// Complete mode: how long a window is kept after the watermark passes its end.
    retention: Option<i64>,
    /// Complete mode: the table changed since it was last emitted.
    changed_since_emit: bool,
    /// Result rows of groups dropped from a complete-mode table, not yet taken.
    retracted: Vec<Row>,
    windows: BTreeMap<i64, Groups>,
    changed: Vec<(i64, Box<[u8]>)>,
    deleted: Vec<(i64, Box<[u8]>)>,
    updated: Vec<(i64, Box<[u8]>)>,
    entries: usize,
    key_bytes: usize,
    scratch_key: Vec<u8>,
    scratch_ends: Vec<i64>,
}

impl WindowAggregate {
    pub fn new(window: Option<WindowSpec>, key_count: usize, calls: &[AggregateCall], mode: OutputMode) -> WindowAggregate {
        WindowAggregate {
            window,
            key_count,
            calls: CallSpec::of(calls),
            mode,
            retention: None,
            changed_since_emit: false,
            retracted: Vec::new(),
            windows: BTreeMap::new(),
            changed: Vec::new(),
            deleted: Vec::new(),
            updated: Vec::new(),
            entries: 0,
            key_bytes: 0,
            scratch_key: Vec::with_capacity(64),
            scratch_ends: Vec::with_capacity(4),
        }
    }

    /// Complete mode: keep each window for `retention` after the watermark passes its end
    /// (`None`: for ever).
    pub fn with_retention(mut self, retention: Option<i64>) -> WindowAggregate {
        self.retention = retention;
        self
    }

    /// Windows ending at or before this are closed: a record for them is late.
    fn closed_through(&self, watermark: i64) -> i64 {
        match self.mode {
            OutputMode::Complete => self.retention.map_or(i64::MIN, |r| watermark.saturating_sub(r)),
            OutputMode::Append | OutputMode::Update => watermark,
        }
    }

    fn new_accumulators(&self) -> Vec<Accumulator> {
        self.calls.iter().map(CallSpec::accumulator).collect()
    }

    fn update(&mut self, end: i64, args: &[Value]) {
        let fresh = if self.windows.get(&end).is_some_and(|g| g.contains_key(&self.scratch_key[..])) {
            None
        } else {
            Some(self.new_accumulators())
        };
        let groups = self.windows.entry(end).or_default();
        if let Some(accumulators) = fresh {
            self.entries += 1;
            self.key_bytes += self.scratch_key.len();
            groups.insert(
                self.scratch_key.clone().into_boxed_slice(),
                Group { accumulators, dirty: false, updated: false, persisted: false },
            );
        }
        let Some(group) = groups.get_mut(&self.scratch_key[..]) else { return };
        for (spec, acc) in self.calls.iter().zip(group.accumulators.iter_mut()) {
            spec.update(acc, args);
        }
        if !group.dirty {
            group.dirty = true;
            self.changed.push((end, self.scratch_key.clone().into_boxed_slice()));
        }
        self.changed_since_emit = true;
        if self.mode == OutputMode::Update && !group.updated {
            group.updated = true;
            self.updated.push((end, self.scratch_key.clone().into_boxed_slice()));
        }
    }

    fn result_row(&self, end: i64, key: &[u8], group: &Group) -> Row {
        result_row(self.key_count, self.window, end, key, group)
    }

    fn state_key(end: i64, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(9 + key.len());
        k.push(DATA_PREFIX);
        k.extend_from_slice(&order_i64(end));
        k.extend_from_slice(key);
        k
    }

    fn remove_group(&mut self, end: i64, key: Box<[u8]>, group: &Group) {
        self.entries -= 1;
        self.key_bytes -= key.len();
        if group.persisted {
            self.deleted.push((end, key));
        }
    }
}

/// `[keys..., window?, results...]` of one group.
fn result_row(key_count: usize, window: Option<WindowSpec>, end: i64, key: &[u8], group: &Group) -> Row {
    let mut row = decode_key(key).unwrap_or_default();
    row.resize(key_count, Value::Null);
    if let Some(w) = window {
        row.push(Value::Window { start: end - w.size, end });
    }
    row.extend(group.accumulators.iter().map(Accumulator::result));
    row
}

impl Operator for WindowAggregate {
    fn process(&mut self, side: usize, row: &[Value], watermark: i64, out: &mut Vec<Row>) -> Processed {
        let Some(Value::Timestamp(ts)) = row.first() else { return Processed::Late };
        let mut key = std::mem::take(&mut self.scratch_key);
        key.clear();
        for v in &row[1..=self.key_count] {
            encode_key_value(v, &mut key);
        }
        let r = self.process_keyed(side, *ts, &key, &row[1 + self.key_count..], watermark, out);
        self.scratch_key = key;
        r
    }

    fn process_keyed(&mut self, _side: usize, ts: i64, key: &[u8], args: &[Value], watermark: i64, _out: &mut Vec<Row>) -> Processed {
        if self.scratch_key.as_slice() != key {
            self.scratch_key.clear();
            self.scratch_key.extend_from_slice(key);
        }
        match self.window {
            None => {
                self.update(NO_WINDOW, args);
                Processed::Accepted
            }
            Some(spec) => {
                self.scratch_ends.clear();
                let closed = self.closed_through(watermark);
                let ends = &mut self.scratch_ends;
                assign_windows(&spec, ts, |_, end| {
                    if end > closed {
                        ends.push(end);
                    }
                });
                if self.scratch_ends.is_empty() {
                    return Processed::Late;
                }
                for i in 0..self.scratch_ends.len() {
                    let end = self.scratch_ends[i];
                    self.update(end, args);
                }
                Processed::Accepted
            }
        }
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Row>) {
        if self.window.is_none() {
            return;
        }
        let closed = self.closed_through(watermark);
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() > closed {
                break;
            }
            let (end, groups) = entry.remove_entry();
            for (key, group) in groups {
                match self.mode {
                    OutputMode::Append => out.push(self.result_row(end, &key, &group)),
                    OutputMode::Update if group.updated => out.push(self.result_row(end, &key, &group)),
                    OutputMode::Update => {}
                    OutputMode::Complete => {
                        self.retracted.push(self.result_row(end, &key, &group));
                        self.changed_since_emit = true;
                    }
                }
                self.remove_group(end, key, &group);
            }
        }
    }

    fn on_commit(&mut self, out: &mut Vec<Row>) {
        match self.mode {
            OutputMode::Append => {}
            OutputMode::Update => {
                let updated = std::mem::take(&mut self.updated);
                for (end, key) in updated {
                    let Some(group) = self.windows.get_mut(&end).and_then(|g| g.get_mut(&key)) else { continue };
                    if group.updated {
                        group.updated = false;
                        out.push(result_row(self.key_count, self.window, end, &key, group));
                    }
                }
            }
            // The whole table, once something in it changed (Spark runs no batch without data).
            OutputMode::Complete if !self.changed_since_emit => {}
            OutputMode::Complete => {
                self.changed_since_emit = false;
                for (end, groups) in &self.windows {
                    for (key, group) in groups {
                        out.push(self.result_row(*end, key, group));
                    }
                }
            }
        }
    }

    fn snapshot(&self, out: &mut Vec<Row>) -> bool {
        for (end, groups) in &self.windows {
            out.extend(groups.iter().map(|(key, group)| self.result_row(*end, key, group)));
        }
        true
    }

    fn take_retractions(&mut self, out: &mut Vec<Row>) {
        out.append(&mut self.retracted);
    }

    fn take_changes(&mut self, f: &mut ChangeSink<'_>) {
        let changed = std::mem::take(&mut self.changed);
        let mut w = Writer::new();
        for (end, key) in changed {
            let Some(group) = self.windows.get_mut(&end).and_then(|g| g.get_mut(&key)) else { continue };
            if !group.dirty {
                continue;
            }
            group.dirty = false;
            group.persisted = true;
            w.buf.clear();
            w.u8(VALUE_VERSION);
            w.varint(group.accumulators.len() as u64);
            for a in &group.accumulators {
                a.encode(&mut w);
            }
            f(&Self::state_key(end, &key), Some(&w.buf));
        }
        for (end, key) in std::mem::take(&mut self.deleted) {
            f(&Self::state_key(end, &key), None);
        }
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
        if key.len() < 9 || key[0] != DATA_PREFIX {
            return Err(CodecError::Corrupt("aggregate state key"));
        }
        let mut end_bytes = [0u8; 8];
        end_bytes.copy_from_slice(&key[1..9]);
        let end = unorder_i64(end_bytes);
        let group_key: Box<[u8]> = Box::from(&key[9..]);
        match value {
            None => {
                let removed = self.windows.get_mut(&end).and_then(|g| g.remove(&group_key));
                if removed.is_some() {
                    self.entries -= 1;
                    self.key_bytes -= group_key.len();
                }
                if self.windows.get(&end).is_some_and(|g| g.is_empty()) {
                    self.windows.remove(&end);
                }
            }
            Some(bytes) => {
                let mut r = Reader::new(bytes);
                let version = r.u8()?;
                if version != VALUE_VERSION {
                    return Err(CodecError::UnknownVersion(version, VALUE_VERSION));
                }
                let n = r.varint()? as usize;
                if n != self.calls.len() {
                    return Err(CodecError::Corrupt("the query's aggregates changed since this state was written"));
                }
                let mut accumulators = Vec::with_capacity(n);
                for spec in &self.calls {
                    accumulators.push(spec.decode(&mut r)?);
                }
                let len = group_key.len();
                let previous = self
                    .windows
                    .entry(end)
                    .or_default()
                    .insert(group_key, Group { accumulators, dirty: false, updated: false, persisted: true });
                if previous.is_none() {
                    self.entries += 1;
                    self.key_bytes += len;
                }
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.windows.clear();
        self.changed.clear();
        self.deleted.clear();
        self.updated.clear();
        self.retracted.clear();
        self.changed_since_emit = false;
        self.entries = 0;
        self.key_bytes = 0;
    }

    fn entries(&self) -> usize {
        self.entries
    }

    fn state_bytes(&self) -> usize {
        self.key_bytes + self.entries * (48 + 24 * self.calls.len())
    }

    fn name(&self) -> &'static str {
        "aggregate"
    }
}

#[cfg(test)]
mod tests;
