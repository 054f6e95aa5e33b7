//! Streaming deduplication (`SELECT DISTINCT ...`, `SELECT DISTINCT ON (...) ...`): the first
//! row of each key passes as soon as it is seen; later rows with that key are dropped while the
//! key's state lives. State is an ordered map from expiry to the keys that expire then, so
//! "every entry that expires at or before the watermark" is a scan from the front (as in
//! [`super::WindowAggregate`]), plus a hash lookup from key to expiry.
//!
//! The rules are Spark's (`statefulOperators.scala`, 3.5 to 4.0):
//! - late: a row is dropped when `eventTime <= watermark` (`WatermarkSupport.watermarkExpression`,
//!   a `LessThanOrEqual`, applied to the input rows of both dedup operators);
//! - [`DedupMode::EventTimeInKey`] is `StreamingDeduplicateExec` with the event time among the
//!   keys: `removeKeysOlderThanWatermark` evicts a key when `eventTime <= watermark`;
//! - [`DedupMode::WithinWatermark`] is `StreamingDeduplicateWithinWatermarkExec`: the state
//!   value is `expiresAt = eventTime + delay` of the first row, and `evictDupInfoFromState`
//!   evicts it when `watermarkForEviction >= expiresAt`, i.e. `expiresAt <= watermark`.
//!
//! So both modes store an expiry (`eventTime`, or `eventTime + delay`) and an entry is gone once
//! `expiry <= watermark`. Spark evicts at the end of a micro-batch; here `on_watermark` evicts,
//! and `process` also treats an entry whose expiry is at or before the watermark it is given
//! as gone, so results never depend on whether `on_watermark` ran before a row arrived.
//!
//! State keys are `[0x01][expiry, order-preserving][dedup key]`, values `[version]`.

use std::collections::BTreeMap;

use super::{ChangeSink, Operator, Processed, DATA_PREFIX};
use crate::state::codec::{CodecError, Reader};
use crate::types::keys::{order_i64, unorder_i64};
use crate::types::{encode_key_value, FxHashMap, Row, Value};

const VALUE_VERSION: u8 = 1;

/// Which of Spark's two streaming deduplications this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupMode {
    /// `dropDuplicates(cols)` where `cols` include the event-time column: the key holds the
    /// event time, and a key's state is evicted once `event_time <= watermark` (no later
    /// duplicate of it can be on time).
    EventTimeInKey,
    /// `dropDuplicatesWithinWatermark(cols)`: a key's state lives until
    /// `first_event_time + delay <= watermark`; after that the key passes again.
    WithinWatermark { delay: i64 },
}

struct Entry {
    /// Written since the last `take_changes`.
    dirty: bool,
    /// Present in the changelog and sled (so deleting it needs a tombstone).
    persisted: bool,
}

type Keys = FxHashMap<Box<[u8]>, Entry>;

/// The deduplication operator.
pub struct Dedup {
    key_count: usize,
    mode: DedupMode,
    /// Expiry -> the keys that expire then.
    by_expiry: BTreeMap<i64, Keys>,
    /// Key -> its expiry (its bucket in `by_expiry`).
    by_key: FxHashMap<Box<[u8]>, i64>,
    changed: Vec<(i64, Box<[u8]>)>,
    deleted: Vec<(i64, Box<[u8]>)>,
    key_bytes: usize,
    scratch_key: Vec<u8>,
}

impl Dedup {
    pub fn new(key_count: usize, mode: DedupMode) -> Dedup {
        Dedup {
            key_count,
            mode,
            by_expiry: BTreeMap::new(),
            by_key: FxHashMap::default(),
            changed: Vec::new(),
            deleted: Vec::new(),
            key_bytes: 0,
            scratch_key: Vec::with_capacity(64),
        }
    }

    fn expiry(&self, ts: i64) -> i64 {
        match self.mode {
            DedupMode::EventTimeInKey => ts,
            DedupMode::WithinWatermark { delay } => ts.saturating_add(delay),
        }
    }

    fn state_key(expiry: i64, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(9 + key.len());
        k.push(DATA_PREFIX);
        k.extend_from_slice(&order_i64(expiry));
        k.extend_from_slice(key);
        k
    }

    /// Removes `key` (living under `expiry`) from both indexes; returns its entry.
    fn unlink(&mut self, expiry: i64, key: &[u8]) -> Option<Entry> {
        let bucket = self.by_expiry.get_mut(&expiry)?;
        let entry = bucket.remove(key)?;
        if bucket.is_empty() {
            self.by_expiry.remove(&expiry);
        }
        self.by_key.remove(key);
        self.key_bytes -= key.len();
        Some(entry)
    }

    /// Adds `key` under `expiry` (the key must not be present).
    fn link(&mut self, expiry: i64, key: &[u8], entry: Entry) {
        self.by_expiry.entry(expiry).or_default().insert(Box::from(key), entry);
        self.by_key.insert(Box::from(key), expiry);
        self.key_bytes += key.len();
    }
}

impl Operator for Dedup {
    fn process(&mut self, _side: usize, row: &[Value], watermark: i64, out: &mut Vec<Row>) -> Processed {
        let Some(Value::Timestamp(ts)) = row.first() else { return Processed::Late };
        let ts = *ts;
        // Spark: late when `eventTime <= watermark`.
        if ts <= watermark {
            return Processed::Late;
        }
        let (Some(keys), Some(values)) = (row.get(1..1 + self.key_count), row.get(1 + self.key_count..)) else {
            return Processed::Late;
        };
        self.scratch_key.clear();
        for v in keys {
            encode_key_value(v, &mut self.scratch_key);
        }
        let key = std::mem::take(&mut self.scratch_key);
        if let Some(&old) = self.by_key.get(&key[..]) {
            if old > watermark {
                // A duplicate while the key's state lives.
                self.scratch_key = key;
                return Processed::Accepted;
            }
            // Expired (`old <= watermark`) but not yet evicted by `on_watermark`: evict it now.
            if let Some(entry) = self.unlink(old, &key) {
                if entry.persisted {
                    self.deleted.push((old, key.clone().into_boxed_slice()));
                }
            }
        }
        let expiry = self.expiry(ts);
        self.link(expiry, &key, Entry { dirty: true, persisted: false });
        self.changed.push((expiry, key.clone().into_boxed_slice()));
        self.scratch_key = key;
        out.push(values.to_vec());
        Processed::Accepted
    }

    fn on_watermark(&mut self, watermark: i64, _out: &mut Vec<Row>) {
        // Evict every entry with `expiry <= watermark` (Spark: `eventTime <= watermark`, or
        // `watermarkForEviction >= expiresAt`).
        while let Some(first) = self.by_expiry.first_entry() {
            if *first.key() > watermark {
                break;
            }
            let (expiry, keys) = first.remove_entry();
            for (key, entry) in keys {
                self.by_key.remove(&key);
                self.key_bytes -= key.len();
                if entry.persisted {
                    self.deleted.push((expiry, key));
                }
            }
        }
    }

    fn on_commit(&mut self, _out: &mut Vec<Row>) {}

    fn take_changes(&mut self, f: &mut ChangeSink<'_>) {
        // Tombstones first: if a state key was deleted and written again within the cycle,
        // the write is its latest value.
        for (expiry, key) in std::mem::take(&mut self.deleted) {
            f(&Self::state_key(expiry, &key), None);
        }
        for (expiry, key) in std::mem::take(&mut self.changed) {
            let Some(entry) = self.by_expiry.get_mut(&expiry).and_then(|k| k.get_mut(&key)) else { continue };
            if !entry.dirty {
                continue;
            }
            entry.dirty = false;
            entry.persisted = true;
            f(&Self::state_key(expiry, &key), Some(&[VALUE_VERSION]));
        }
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
        if key.len() < 9 || key[0] != DATA_PREFIX {
            return Err(CodecError::Corrupt("dedup state key"));
        }
        let mut expiry_bytes = [0u8; 8];
        expiry_bytes.copy_from_slice(&key[1..9]);
        let expiry = unorder_i64(expiry_bytes);
        let dedup_key = &key[9..];
        match value {
            None => {
                if self.by_key.get(dedup_key) == Some(&expiry) {
                    self.unlink(expiry, dedup_key);
                }
            }
            Some(bytes) => {
                let mut r = Reader::new(bytes);
                let version = r.u8()?;
                if version != VALUE_VERSION {
                    return Err(CodecError::UnknownVersion(version, VALUE_VERSION));
                }
                if !r.is_empty() {
                    return Err(CodecError::Corrupt("dedup state value has trailing bytes"));
                }
                match self.by_key.get(dedup_key) {
                    Some(&old) if old == expiry => {
                        if let Some(entry) = self.by_expiry.get_mut(&expiry).and_then(|k| k.get_mut(dedup_key)) {
                            entry.persisted = true;
                        }
                    }
                    other => {
                        // A key lives under one expiry: a newer write replaces the older one.
                        if let Some(&old) = other {
                            self.unlink(old, dedup_key);
                        }
                        self.link(expiry, dedup_key, Entry { dirty: false, persisted: true });
                    }
                }
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.by_expiry.clear();
        self.by_key.clear();
        self.changed.clear();
        self.deleted.clear();
        self.key_bytes = 0;
    }

    fn entries(&self) -> usize {
        self.by_key.len()
    }

    fn state_bytes(&self) -> usize {
        // Each key is held twice (in its expiry bucket and in the lookup), plus map overhead.
        2 * self.key_bytes + self.by_key.len() * 64
    }

    fn name(&self) -> &'static str {
        "dedup"
    }
}

#[cfg(test)]
mod tests;
