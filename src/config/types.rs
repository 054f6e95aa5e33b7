//! Typed values of the pipeline file: durations and the closed sets (formats, output modes,
//! guarantees), each deserialized with an error that says what to write instead.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::time::parse_duration;

/// A duration written as `"500ms"`, `"2h"`, `"1h30m"` or `"10 minutes"`; microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(i64);

impl ConfigDuration {
    pub fn from_millis(ms: i64) -> ConfigDuration {
        ConfigDuration(ms * 1000)
    }
    pub fn from_micros(us: i64) -> ConfigDuration {
        ConfigDuration(us)
    }
    pub fn micros(self) -> i64 {
        self.0
    }
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_micros(self.0.max(0) as u64)
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        let units = [(86_400_000_000, "d"), (3_600_000_000, "h"), (60_000_000, "m"), (1_000_000, "s"), (1000, "ms")];
        for (size, unit) in units {
            if us != 0 && us % size == 0 {
                return write!(f, "{}{unit}", us / size);
            }
        }
        write!(f, "{us}us")
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"30s\" or \"2h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigDuration, E> {
                parse_duration(v).map(ConfigDuration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigDuration, E> {
                if v == 0 {
                    Ok(ConfigDuration(0))
                } else {
                    Err(E::custom(format!("{v} has no unit; write e.g. \"{v}s\" or \"{v}ms\"")))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigDuration, E> {
                Err(E::custom(format!("{v} has no unit; write e.g. \"{v}s\" or \"{v}ms\"")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where event time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTimeConfig {
    /// A `timestamp` column of the schema.
    Column(String),
    /// The Kafka record's timestamp.
    KafkaTimestamp,
}

impl<'de> Deserialize<'de> for EventTimeConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(if s == "kafka_timestamp" { EventTimeConfig::KafkaTimestamp } else { EventTimeConfig::Column(s) })
    }
}

/// Record formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per record.
    #[default]
    Json,
    /// One CSV line per record; options under `csv:`.
    Csv,
    /// Avro, with a Schema Registry (Confluent's wire format) or a schema file; options
    /// under `avro:`.
    Avro,
}

/// Spark's output modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// Each result row once, when it is final (the watermark passed its window).
    #[default]
    Append,
    /// Every changed row at every commit.
    Update,
    /// The whole result table at every commit.
    Complete,
}

impl fmt::Display for OutputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputMode::Append => "append",
            OutputMode::Update => "update",
            OutputMode::Complete => "complete",
        })
    }
}

/// Kafka Streams' processing.guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingGuarantee {
    /// Output, state and offsets in one Kafka transaction.
    #[default]
    ExactlyOnce,
    /// Offsets committed after output is acknowledged; for brokers without transactions.
    AtLeastOnce,
}

/// What to do with a record that cannot be decoded and has no dead-letter topic to go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// Count it in eddy_dead_letter_records_total{outcome="skipped"} and go on.
    #[default]
    Skip,
    /// Stop the pipeline with an error naming the record.
    Fail,
}

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

/// Streams and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Every record is an event.
    #[default]
    Stream,
    /// A compacted topic: the latest value per key; a null value deletes the key.
    Table,
}
