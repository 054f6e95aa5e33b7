//! Record formats: decoding Kafka payloads into rows typed by a source schema, and encoding
//! output rows. Byte-to-value code; depends on `types`, `time` and the option structs of
//! `config` (the Avro registry client is the one part that talks to the network).

mod csv;
mod json;
mod timefmt;

pub use self::csv::{CsvDecoder, CsvEncoder};
pub use json::{JsonDecoder, JsonEncoder};
pub use timefmt::TimestampPattern;

use crate::config::{Format, SinkConfig, SourceConfig};
use crate::types::{Schema, Value};

/// A source's decoder, chosen by its `format:`.
pub enum Decoder {
    Json(JsonDecoder),
    Csv(Box<CsvDecoder>),
}

impl Decoder {
    /// The decoder of a source; `needed[i]` says whether any query reads column i.
    /// Errors say what in the source's format options is wrong.
    pub fn for_source(source: &SourceConfig, schema: &Schema, needed: &[bool]) -> Result<Decoder, String> {
        Ok(match source.format {
            Format::Json => Decoder::Json(JsonDecoder::new(schema, needed)),
            Format::Csv => Decoder::Csv(Box::new(CsvDecoder::new(schema, needed, &source.csv.clone().unwrap_or_default())?)),
            Format::Avro => return Err("avro is not supported yet".into()),
        })
    }

    /// Decodes `payload` into `row[..schema.len()]`. `Ok(false)`: a record to skip silently
    /// (a CSV header line).
    pub fn decode(&self, payload: &[u8], row: &mut [Value]) -> Result<bool, DecodeError> {
        match self {
            Decoder::Json(d) => d.decode(payload, row).map(|()| true),
            Decoder::Csv(d) => d.decode(payload, row),
        }
    }
}

/// A sink's encoder, chosen by its `format:`.
pub enum Encoder {
    Json(JsonEncoder),
    Csv(CsvEncoder),
}

impl Encoder {
    /// The encoder of a sink whose rows have columns `names` of types `types`.
    pub fn for_sink(sink: &SinkConfig, names: &[&str]) -> Result<Encoder, String> {
        Ok(match sink.format {
            Format::Json => Encoder::Json(JsonEncoder::new(names)),
            Format::Csv => Encoder::Csv(CsvEncoder::new(&sink.csv.clone().unwrap_or_default())?),
            Format::Avro => return Err("avro is not supported yet".into()),
        })
    }

    /// Appends the encoding of one row to `out`.
    pub fn encode(&self, values: &[Value], out: &mut Vec<u8>) {
        match self {
            Encoder::Json(e) => e.encode(values, out),
            Encoder::Csv(e) => e.encode(values, out),
        }
    }
}

/// Why a record could not be decoded; `kind` goes into the dead-letter header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    pub message: String,
}

/// Classes of decode failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Not parseable at all (bad JSON, not an object, empty payload).
    Malformed,
    /// A required column is absent or null.
    MissingField,
    /// A column has a value of the wrong type.
    WrongType,
    /// A timestamp column holds something that is not a timestamp.
    BadTimestamp,
}

impl DecodeErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::Malformed => "malformed",
            DecodeErrorKind::MissingField => "missing_field",
            DecodeErrorKind::WrongType => "wrong_type",
            DecodeErrorKind::BadTimestamp => "bad_timestamp",
        }
    }
}

impl DecodeError {
    pub fn new(kind: DecodeErrorKind, message: impl Into<String>) -> DecodeError {
        DecodeError { kind, message: message.into() }
    }
}
