//! Stateful stream operators. Each keeps its working state in memory, reports every entry it
//! changed since the last commit (so the commit can write them to the changelog and sled),
//! and can be rebuilt from those entries. Depends on `types`, `time`, `state::codec` and
//! `sql` plan types; never on Kafka.

mod accumulator;
mod window;

pub use accumulator::Accumulator;
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
/// Input rows are `[event_time, keys..., args...]`; output rows are the operator's result
/// rows (for an aggregation: `[keys..., window?, results...]`).
pub trait Operator: Send {
    /// Adds one input row. `watermark` is the task's current watermark; rows that only
    /// belong to windows ending at or before it are late.
    fn process(&mut self, row: &[crate::types::Value], watermark: i64) -> Processed;

    /// The watermark advanced to `watermark`: emit (append mode) and drop what is now final.
    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Row>);

    /// A commit cycle ends: update and complete modes emit here.
    fn on_commit(&mut self, out: &mut Vec<Row>);

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
