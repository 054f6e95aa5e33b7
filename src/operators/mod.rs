//! Stateful stream operators. Each keeps its working state in memory, reports every entry it
//! changed since the last commit (so the commit can write them to the changelog and sled),
//! and can be rebuilt from those entries. Depends on `types`, `time`, `state::codec` and
//! `sql` plan types; never on Kafka.

mod accumulator;
pub mod dedup;
pub mod join;
pub mod session;
pub mod topn;
mod window;

pub use accumulator::{Accumulator, CallSpec};
pub use window::WindowAggregate;

use crate::state::codec::CodecError;
use crate::types::Row;

/// Key prefix of operator data entries in a state tree (the task's own entries use others).
pub const DATA_PREFIX: u8 = 0x01;

/// Receives state changes: `(key, Some(value))` for a write, `(key, None)` for a delete.
pub type ChangeSink<'a> = dyn FnMut(&[u8], Option<&[u8]>) + 'a;

/// What happened to one input row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// The row changed state.
    Accepted,
    /// Every window the row belongs to has closed: it is late and was dropped.
    Late,
}

/// A stateful operator, driven by its task.
///
/// Input rows are `[event_time, keys..., values...]` (an aggregation's values are its
/// aggregate arguments); `side` says which input a row comes from (0, or 1 for the right side
/// of a join). Output rows are the operator's result rows: for an aggregation
/// `[keys..., window?, results...]`, for a join `[left values..., right values...]`.
///
/// State entries are keyed by bytes starting with [`DATA_PREFIX`]; the task owns the other
/// prefixes of its tree. `take_changes` reports the latest value of every entry changed since
/// its last call (not every intermediate one), and deletions as `None` — but only for
/// entries it reported before (an entry born and dropped within one cycle leaves no trace).
/// After `clear` and a `restore` of every reported entry, an operator behaves exactly as it
/// did when those entries were taken.
pub trait Operator: Send {
    /// Adds one input row. `watermark` is the task's current watermark: rows that can no
    /// longer change any result are late (`Processed::Late`, and no state changes). A join
    /// emits its matches here, into `out`.
    fn process(&mut self, side: usize, row: &[crate::types::Value], watermark: i64, out: &mut Vec<Row>) -> Processed;

    /// [`Operator::process`] for a row given as its event time, its keys already encoded (the
    /// order-preserving encoding of each key value, back to back) and its values; operators
    /// that key state by those bytes take them as they are instead of building the row.
    fn process_keyed(
        &mut self,
        side: usize,
        ts: i64,
        key: &[u8],
        values: &[crate::types::Value],
        watermark: i64,
        out: &mut Vec<Row>,
    ) -> Processed {
        let mut row = vec![crate::types::Value::Timestamp(ts)];
        row.extend(crate::types::decode_key(key).unwrap_or_default());
        row.extend_from_slice(values);
        self.process(side, &row, watermark, out)
    }

    /// The output watermark once the operator has fired at input watermark `watermark`: no
    /// row it emits from then on has an event time at or below it (for the operator above it
    /// in a chain). An aggregation's rows carry their window's end minus 1 µs and are emitted
    /// when the watermark passes the end, and a deduplication passes only rows above the
    /// watermark, so for both it is the input watermark.
    fn output_watermark(&self, watermark: i64) -> i64 {
        watermark
    }

    /// The watermark advanced to `watermark`: emit (append mode) and drop what is now final.
    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Row>);

    /// A commit cycle ends: update and complete modes emit here.
    fn on_commit(&mut self, out: &mut Vec<Row>);

    /// Result rows that left the result table since the last call (a complete-mode window
    /// past its retention): the task writes a tombstone for each one's key.
    fn take_retractions(&mut self, _out: &mut Vec<Row>) {}

    /// The operator's result table as it stands: one result row per group (for an
    /// aggregation, every group its state holds, open windows included). `false` when the
    /// operator keeps no result table (a join's or deduplication's state is its input).
    fn snapshot(&self, _out: &mut Vec<Row>) -> bool {
        false
    }

    /// Calls `f(key, Some(value))` for each entry changed since the last call and
    /// `f(key, None)` for each entry deleted; afterwards nothing is pending.
    fn take_changes(&mut self, f: &mut ChangeSink<'_>);

    /// Loads one entry (from sled or the changelog); `None` deletes it.
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError>;

    /// Forgets all state.
    fn clear(&mut self);

    /// Live state entries.
    fn entries(&self) -> usize;

    /// Approximate bytes of live state.
    fn state_bytes(&self) -> usize;

    /// Name for metrics and state trees.
    fn name(&self) -> &'static str;
}
