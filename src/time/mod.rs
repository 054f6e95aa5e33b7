//! Event time: timestamps, durations, window assignment and watermarks (DESIGN section 3).
//! Pure functions and small state machines; no I/O, no wall clock (callers pass `now`).

mod duration;
pub mod pattern;
mod timestamp;
mod watermark;
mod windows;

pub use duration::{parse_duration, DurationError};
pub(crate) use timestamp::{civil_from_days, days_from_civil, days_in_month};
pub use timestamp::{format_timestamp, parse_timestamp, write_timestamp_bytes, TimestampError};
pub use watermark::{PartitionWatermark, WatermarkMerger, NO_WATERMARK};
pub use windows::{assign_windows, WindowSpec};

/// Microseconds per millisecond, second, minute, hour, day.
pub const MICROS_PER_MILLI: i64 = 1_000;
pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
