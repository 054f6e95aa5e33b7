//! Record formats: decoding Kafka payloads into rows typed by a source schema, and encoding
//! output rows. Pure byte-to-value code; depends on `types` and `time` only.

mod json;

pub use json::{JsonDecoder, JsonEncoder};

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
