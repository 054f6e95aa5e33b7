//! Session windows: Spark's `session_window(ts, gap)` aggregation. Each event opens a
//! provisional session `[ts, ts + gap)`; sessions of one group key that overlap or touch merge
//! (an event exactly `gap` after the last one joins its session), so an out-of-order event
//! can bridge two sessions into one.
//!
//! Per group key the sessions are kept sorted by start; being disjoint and not touching, they
//! are sorted by end too, so the sessions an event meets are one contiguous run. An index
//! ordered by session end makes "every session that closes at or before the watermark" a scan
//! from the front, as in [`super::WindowAggregate`].
//!
//! State keys are `[0x01][group key][session start, order-preserving]` (a key's sessions are
//! adjacent and in start order), values `[version][end][accumulators]`. A session's identity
//! is its start: when a merge moves it, the old key is deleted and the new one written.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Accumulator, CallSpec, ChangeSink, Operator, Processed, DATA_PREFIX};
use crate::config::OutputMode;
use crate::sql::AggregateCall;
use crate::state::codec::{CodecError, Reader, Writer};
use crate::types::keys::{order_i64, unorder_i64};
use crate::types::{decode_key, encode_key_value, FxHashMap, Row, Value};

const VALUE_VERSION: u8 = 1;

struct Session {
    start: i64,
    /// Exclusive: the last event plus the gap.
    end: i64,
    accumulators: Vec<Accumulator>,
    /// Changed since the last `take_changes`.
    dirty: bool,
    /// Changed since it was last emitted (update mode).
    updated: bool,
    /// Present in the changelog and sled under its current start (so deleting it needs a tombstone).
    persisted: bool,
}

/// The sessions of one group key, sorted by start (and so by end).
struct KeySessions {
    /// The encoded group key, shared with the end index and the pending lists.
    key: Arc<[u8]>,
    sessions: Vec<Session>,
}

impl KeySessions {
    fn find(&self, start: i64) -> Option<usize> {
        // Sorted by start (restore keeps that even for transiently overlapping sessions).
        self.sessions.binary_search_by_key(&start, |s| s.start).ok()
    }
}

/// A session identity: group key and start.
type SessionId = (Arc<[u8]>, i64);

/// The session window aggregation operator.
pub struct SessionAggregate {
    gap: i64,
    key_count: usize,
    calls: Vec<CallSpec>,
    mode: OutputMode,
    groups: FxHashMap<Arc<[u8]>, KeySessions>,
    /// `(end, group key, start)` of every session.
    by_end: BTreeSet<(i64, Arc<[u8]>, i64)>,
    changed: Vec<SessionId>,
    deleted: Vec<SessionId>,
    updated: Vec<SessionId>,
    entries: usize,
    key_bytes: usize,
    scratch_key: Vec<u8>,
}

impl SessionAggregate {
    pub fn new(gap: i64, key_count: usize, calls: &[AggregateCall], mode: OutputMode) -> SessionAggregate {
        SessionAggregate {
            gap,
            key_count,
            calls: CallSpec::of(calls),
            mode,
            groups: FxHashMap::default(),
            by_end: BTreeSet::new(),
            changed: Vec::new(),
            deleted: Vec::new(),
            updated: Vec::new(),
            entries: 0,
            key_bytes: 0,
            scratch_key: Vec::with_capacity(64),
        }
    }

    /// Emits in update (and, unsupported for sessions, complete) mode.
    fn emits_updates(&self) -> bool {
        self.mode != OutputMode::Append
    }

    fn state_key(key: &[u8], start: i64) -> Vec<u8> {
        let mut k = Vec::with_capacity(9 + key.len());
        k.push(DATA_PREFIX);
        k.extend_from_slice(key);
        k.extend_from_slice(&order_i64(start));
        k
    }

    fn session(&self, key: &[u8], start: i64) -> Option<&Session> {
        let ks = self.groups.get(key)?;
        ks.sessions.get(ks.find(start)?)
    }

    fn session_mut(&mut self, key: &[u8], start: i64) -> Option<&mut Session> {
        let ks = self.groups.get_mut(key)?;
        let i = ks.find(start)?;
        ks.sessions.get_mut(i)
    }

    /// Forgets one session's bookkeeping after it left its key's list.
    fn forget(&mut self, key: &Arc<[u8]>, session: &Session) {
        self.entries -= 1;
        self.key_bytes -= key.len();
        if session.persisted {
            self.deleted.push((key.clone(), session.start));
        }
    }

    /// Removes the session `(key, start)` (already out of the end index).
    fn remove_session(&mut self, key: &Arc<[u8]>, start: i64) -> Option<Session> {
        let ks = self.groups.get_mut(&key[..])?;
        let i = ks.find(start)?;
        let session = ks.sessions.remove(i);
        if ks.sessions.is_empty() {
            self.groups.remove(&key[..]);
        }
        self.forget(key, &session);
        Some(session)
    }
}

fn new_accumulators(calls: &[CallSpec]) -> Vec<Accumulator> {
    calls.iter().map(CallSpec::accumulator).collect()
}

/// `[keys..., window, results...]` of one session.
fn result_row(key_count: usize, key: &[u8], session: &Session) -> Row {
    let mut row = decode_key(key).unwrap_or_default();
    row.resize(key_count, Value::Null);
    row.push(Value::Window { start: session.start, end: session.end });
    row.extend(session.accumulators.iter().map(Accumulator::result));
    row
}

impl Operator for SessionAggregate {
    fn process(&mut self, _side: usize, row: &[Value], watermark: i64, _out: &mut Vec<Row>) -> Processed {
        let Some(Value::Timestamp(ts)) = row.first() else { return Processed::Late };
        let ts = *ts;
        // Spark drops rows whose session would be empty (a non-positive gap).
        if self.gap <= 0 {
            return Processed::Late;
        }
        let end = ts.saturating_add(self.gap);
        // Spark's late filter compares the row's own session window end with the watermark.
        if end <= watermark {
            return Processed::Late;
        }
        let Some(keys) = row.get(1..=self.key_count) else { return Processed::Late };
        self.scratch_key.clear();
        for v in keys {
            encode_key_value(v, &mut self.scratch_key);
        }
        let args = row.get(1 + self.key_count..).unwrap_or_default();
        let update_mode = self.emits_updates();

        if !self.groups.contains_key(&self.scratch_key[..]) {
            let key: Arc<[u8]> = Arc::from(&self.scratch_key[..]);
            self.groups.insert(key.clone(), KeySessions { key, sessions: Vec::new() });
        }
        let Some(ks) = self.groups.get_mut(&self.scratch_key[..]) else { return Processed::Late };
        let key = ks.key.clone();
        let sessions = &mut ks.sessions;

        // The run of sessions that overlap or touch [ts, end): end >= ts and start <= end.
        let lo = sessions.partition_point(|s| s.end < ts);
        let hi = sessions.partition_point(|s| s.start <= end);
        let at = if lo >= hi {
            let at = sessions.partition_point(|s| s.start < ts);
            sessions.insert(
                at,
                Session { start: ts, end, accumulators: new_accumulators(&self.calls), dirty: false, updated: false, persisted: false },
            );
            self.by_end.insert((end, key.clone(), ts));
            self.entries += 1;
            self.key_bytes += key.len();
            at
        } else {
            // Absorb sessions lo+1..hi into sessions[lo].
            let absorbed: Vec<Session> = if hi - lo > 1 { sessions.drain(lo + 1..hi).collect() } else { Vec::new() };
            let Some(target) = sessions.get_mut(lo) else { return Processed::Late };
            let (old_start, old_end) = (target.start, target.end);
            let mut new_end = end.max(old_end);
            for s in &absorbed {
                new_end = new_end.max(s.end);
                for (a, b) in target.accumulators.iter_mut().zip(&s.accumulators) {
                    a.merge(b);
                }
                self.by_end.remove(&(s.end, key.clone(), s.start));
                self.entries -= 1;
                self.key_bytes -= key.len();
                if s.persisted {
                    self.deleted.push((key.clone(), s.start));
                }
            }
            let new_start = ts.min(old_start);
            if new_start != old_start {
                // A new identity: the entry under the old start goes, the new one is fresh.
                if target.persisted {
                    self.deleted.push((key.clone(), old_start));
                }
                target.start = new_start;
                target.persisted = false;
                target.dirty = false;
                target.updated = false;
            }
            target.end = new_end;
            if (new_start, new_end) != (old_start, old_end) {
                self.by_end.remove(&(old_end, key.clone(), old_start));
                self.by_end.insert((new_end, key.clone(), new_start));
            }
            lo
        };
        let Some(session) = sessions.get_mut(at) else { return Processed::Late };
        for (spec, acc) in self.calls.iter().zip(session.accumulators.iter_mut()) {
            spec.update(acc, args);
        }
        if !session.dirty {
            session.dirty = true;
            self.changed.push((key.clone(), session.start));
        }
        if update_mode && !session.updated {
            session.updated = true;
            self.updated.push((key, session.start));
        }
        Processed::Accepted
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Row>) {
        while self.by_end.first().is_some_and(|(end, _, _)| *end <= watermark) {
            let Some((_, key, start)) = self.by_end.pop_first() else { break };
            let Some(session) = self.remove_session(&key, start) else { continue };
            if !self.emits_updates() || session.updated {
                out.push(result_row(self.key_count, &key, &session));
            }
        }
    }

    fn on_commit(&mut self, out: &mut Vec<Row>) {
        if !self.emits_updates() {
            return;
        }
        let updated = std::mem::take(&mut self.updated);
        let key_count = self.key_count;
        for (key, start) in updated {
            let Some(session) = self.session_mut(&key, start) else { continue };
            if session.updated {
                session.updated = false;
                out.push(result_row(key_count, &key, session));
            }
        }
    }

    fn snapshot(&self, out: &mut Vec<Row>) -> bool {
        for group in self.groups.values() {
            out.extend(group.sessions.iter().map(|s| result_row(self.key_count, &group.key, s)));
        }
        true
    }

    fn take_changes(&mut self, f: &mut ChangeSink<'_>) {
        // Deletions first: a key deleted and then used again within one cycle (not expected,
        // since session starts never recur, but cheap to get right) is written below.
        for (key, start) in std::mem::take(&mut self.deleted) {
            if self.session(&key, start).is_none() {
                f(&Self::state_key(&key, start), None);
            }
        }
        let changed = std::mem::take(&mut self.changed);
        let mut w = Writer::new();
        for (key, start) in changed {
            let Some(session) = self.session_mut(&key, start) else { continue };
            if !session.dirty {
                continue;
            }
            session.dirty = false;
            session.persisted = true;
            w.buf.clear();
            w.u8(VALUE_VERSION);
            w.i64(session.end);
            w.varint(session.accumulators.len() as u64);
            for a in &session.accumulators {
                a.encode(&mut w);
            }
            f(&Self::state_key(&key, start), Some(&w.buf));
        }
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
        if key.len() < 9 || key[0] != DATA_PREFIX {
            return Err(CodecError::Corrupt("session state key"));
        }
        let (group_key, start_bytes) = key[1..].split_at(key.len() - 9);
        let mut raw = [0u8; 8];
        raw.copy_from_slice(start_bytes);
        let start = unorder_i64(raw);
        match value {
            None => {
                let Some(ks) = self.groups.get_mut(group_key) else { return Ok(()) };
                let Some(i) = ks.find(start) else { return Ok(()) };
                let session = ks.sessions.remove(i);
                let shared = ks.key.clone();
                if ks.sessions.is_empty() {
                    self.groups.remove(group_key);
                }
                self.by_end.remove(&(session.end, shared, start));
                self.entries -= 1;
                self.key_bytes -= group_key.len();
            }
            Some(bytes) => {
                let mut r = Reader::new(bytes);
                let version = r.u8()?;
                if version != VALUE_VERSION {
                    return Err(CodecError::UnknownVersion(version, VALUE_VERSION));
                }
                let end = r.i64()?;
                if end <= start {
                    return Err(CodecError::Corrupt("session ends before it starts"));
                }
                let n = r.varint()? as usize;
                if n != self.calls.len() {
                    return Err(CodecError::Corrupt("the query's aggregates changed since this state was written"));
                }
                let mut accumulators = Vec::with_capacity(n);
                for _ in 0..n {
                    accumulators.push(self.calls[accumulators.len()].decode(&mut r)?);
                }
                if !r.is_empty() {
                    return Err(CodecError::Corrupt("session state value has trailing bytes"));
                }
                let session = Session { start, end, accumulators, dirty: false, updated: false, persisted: true };
                if !self.groups.contains_key(group_key) {
                    let shared: Arc<[u8]> = Arc::from(group_key);
                    self.groups.insert(shared.clone(), KeySessions { key: shared, sessions: Vec::new() });
                }
                let Some(ks) = self.groups.get_mut(group_key) else { return Ok(()) };
                let shared = ks.key.clone();
                match ks.sessions.binary_search_by_key(&start, |s| s.start) {
                    Ok(i) => {
                        let previous = std::mem::replace(&mut ks.sessions[i], session);
                        self.by_end.remove(&(previous.end, shared.clone(), start));
                    }
                    Err(i) => {
                        ks.sessions.insert(i, session);
                        self.entries += 1;
                        self.key_bytes += group_key.len();
                    }
                }
                self.by_end.insert((end, shared, start));
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.groups.clear();
        self.by_end.clear();
        self.changed.clear();
        self.deleted.clear();
        self.updated.clear();
        self.entries = 0;
        self.key_bytes = 0;
    }

    fn entries(&self) -> usize {
        self.entries
    }

    fn state_bytes(&self) -> usize {
        self.key_bytes + self.entries * (64 + 24 * self.calls.len())
    }

    fn name(&self) -> &'static str {
        "session"
    }
}

#[cfg(test)]
mod tests;
