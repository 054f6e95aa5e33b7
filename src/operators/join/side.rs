//! One side's buffered rows of the interval join: a slab of rows (a freed slot is reused), a
//! min-heap of their eviction times, and an index from the hash of the join key to the rows
//! with that key, sorted by eviction time so a probe is one short range. No map keyed by row:
//! every reference to a row is its [`Id`], and the row's sequence number tells whether a slot
//! still holds it. Depends on `types` only.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::BinaryHeap;
use std::hash::Hasher;

use crate::types::{FxHashMap, FxHasher, Value};

/// A buffered row's (eviction time, sequence number, slot). Sequence numbers are unique per
/// operator, so entries order by (eviction time, sequence) and never tie.
type Id = (i64, u64, u32);

/// One buffered input row.
pub struct Buffered {
    pub ts: i64,
    /// The watermark at which no future row of the other side can match it.
    pub evict: i64,
    pub seq: u64,
    /// The encoded join key, and its hash.
    pub key: Box<[u8]>,
    pub hash: u64,
    /// The side's values.
    pub values: Vec<Value>,
    /// Matched some row of the other side (outer sides only).
    pub matched: bool,
    /// Changed since the last `take_changes`.
    pub dirty: bool,
    /// Present in the changelog and sled (so deleting it needs a tombstone).
    pub persisted: bool,
}

pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    h.finish()
}

/// The buffered rows of one side.
#[derive(Default)]
pub struct Side {
    slots: Vec<Option<Buffered>>,
    free: Vec<u32>,
    /// Every buffered row's id, smallest eviction time first. An entry whose row was removed
    /// otherwise (forgotten while restoring) stays until popped, and is skipped then.
    queue: BinaryHeap<Reverse<Id>>,
    /// Hash of the join key -> the ids of its rows (NULL keys included: restoring finds rows
    /// through it; a probe never has a NULL key). Keys that share a hash share the list, so a
    /// probe compares the key itself.
    by_key: FxHashMap<u64, Ids>,
}

impl Side {
    /// Buffers a row; returns its slot.
    pub fn insert(&mut self, row: Buffered) -> u32 {
        let (evict, seq, hash) = (row.evict, row.seq, row.hash);
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot as usize) {
                    *s = Some(row);
                }
                slot
            }
            None => {
                self.slots.push(Some(row));
                (self.slots.len() - 1) as u32
            }
        };
        let id = (evict, seq, slot);
        match self.by_key.entry(hash) {
            Entry::Occupied(mut e) => e.get_mut().insert(id),
            Entry::Vacant(e) => {
                e.insert(Ids::One(id));
            }
        }
        self.queue.push(Reverse(id));
        slot
    }

    /// The row in `slot`, if it is still the one with sequence number `seq`.
    pub fn get_mut(&mut self, slot: u32, seq: u64) -> Option<&mut Buffered> {
        self.slots.get_mut(slot as usize)?.as_mut().filter(|r| r.seq == seq)
    }

    /// Calls `f(slot, row)` for the rows with key hash `hash` and an eviction time in
    /// `from..=to`, in eviction order.
    pub fn probe(&mut self, hash: u64, from: i64, to: i64, mut f: impl FnMut(u32, &mut Buffered)) {
        let Some(ids) = self.by_key.get(&hash) else { return };
        let ids = ids.as_slice();
        let start = ids.partition_point(|id| id.0 < from);
        for &(_, _, slot) in ids[start..].iter().take_while(|id| id.0 <= to) {
            if let Some(row) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
                f(slot, row);
            }
        }
    }

    /// Removes and returns the row with the smallest eviction time, if that is below `watermark`.
    pub fn pop_evicted(&mut self, watermark: i64) -> Option<Buffered> {
        while let Some(&Reverse((evict, seq, slot))) = self.queue.peek() {
            if evict >= watermark {
                return None;
            }
            self.queue.pop();
            if self.slots.get(slot as usize).and_then(Option::as_ref).is_some_and(|r| r.seq == seq) {
                return self.take(slot);
            }
        }
        None
    }

    /// Removes the row with this eviction time, sequence number and key, if buffered.
    pub fn forget(&mut self, evict: i64, seq: u64, key: &[u8]) -> Option<Buffered> {
        let ids = self.by_key.get(&key_hash(key))?;
        let slot = ids.as_slice().iter().find(|id| id.0 == evict && id.1 == seq)?.2;
        self.take(slot)
    }

    fn take(&mut self, slot: u32) -> Option<Buffered> {
        let row = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        if self.by_key.get_mut(&row.hash).is_some_and(|ids| ids.remove((row.evict, row.seq, slot))) {
            self.by_key.remove(&row.hash);
        }
        Some(row)
    }
}

/// The ids of the rows whose keys have one hash, sorted: inline while there is one (most keys
/// of a windowed join are seen once or twice), in a vector beyond.
enum Ids {
    One(Id),
    Many(Vec<Id>),
}

impl Ids {
    fn as_slice(&self) -> &[Id] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(ids) => ids,
        }
    }

    fn insert(&mut self, id: Id) {
        match self {
            Ids::One(first) => *self = Ids::Many(if *first < id { vec![*first, id] } else { vec![id, *first] }),
            Ids::Many(ids) if ids.last().is_none_or(|last| *last < id) => ids.push(id),
            Ids::Many(ids) => {
                let at = ids.partition_point(|x| *x < id);
                ids.insert(at, id);
            }
        }
    }

    /// Removes `id`; true when no id is left.
    fn remove(&mut self, id: Id) -> bool {
        match self {
            Ids::One(only) => *only == id,
            Ids::Many(ids) => {
                if let Ok(at) = ids.binary_search(&id) {
                    ids.remove(at);
                }
                ids.is_empty()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(evict: i64, seq: u64, key: &[u8]) -> Buffered {
        Buffered {
            ts: evict,
            evict,
            seq,
            key: Box::from(key),
            hash: key_hash(key),
            values: vec![Value::Long(seq as i64)],
            matched: false,
            dirty: false,
            persisted: false,
        }
    }

    fn probed(side: &mut Side, key: &[u8], from: i64, to: i64) -> Vec<u64> {
        let mut seqs = Vec::new();
        side.probe(key_hash(key), from, to, |_, r| {
            if *r.key == *key {
                seqs.push(r.seq)
            }
        });
        seqs
    }

    #[test]
    fn slots_are_reused_and_stale_references_miss() {
        let mut s = Side::default();
        let a = s.insert(row(10, 1, b"k"));
        let b = s.insert(row(5, 2, b"k"));
        assert_eq!(probed(&mut s, b"k", 0, 100), vec![2, 1], "in eviction order");
        assert_eq!(probed(&mut s, b"k", 6, 10), vec![1]);
        assert_eq!(s.pop_evicted(6).map(|r| r.seq), Some(2));
        assert_eq!(s.pop_evicted(6).map(|r| r.seq), None, "10 is not below 6");
        let c = s.insert(row(7, 3, b"j"));
        assert_eq!(c, b, "the freed slot is reused");
        assert!(s.get_mut(b, 2).is_none(), "the old row's reference misses");
        assert_eq!(s.get_mut(c, 3).map(|r| r.seq), Some(3));
        assert_eq!(s.get_mut(a, 1).map(|r| r.seq), Some(1));
    }

    #[test]
    fn forgotten_rows_leave_stale_queue_entries_that_are_skipped() {
        let mut s = Side::default();
        s.insert(row(1, 1, b"k"));
        s.insert(row(2, 2, b"k"));
        assert_eq!(s.forget(1, 1, b"k").map(|r| r.seq), Some(1));
        assert!(s.forget(1, 1, b"k").is_none());
        // The forgotten row's slot is taken by a row evicted later; its old entry pops first.
        s.insert(row(9, 3, b"k"));
        assert_eq!(probed(&mut s, b"k", 0, 100), vec![2, 3]);
        assert_eq!(s.pop_evicted(100).map(|r| r.seq), Some(2));
        assert_eq!(s.pop_evicted(100).map(|r| r.seq), Some(3));
        assert_eq!(s.pop_evicted(100).map(|r| r.seq), None);
        assert_eq!(probed(&mut s, b"k", 0, 100), Vec::<u64>::new());
    }
}
