//! Record formats: decoding Kafka payloads into rows typed by a source schema (gathered into
//! Arrow batches by [`batch::BatchBuilder`]), and encoding output rows. Byte-to-value code;
//! depends on `types`, `time`, `expr::cast` (Spark's text forms) and the option structs of
//! `config` (the Avro registry client is the one part that talks to the network).

pub mod avro;
pub mod batch;
mod csv;
mod json;
#[cfg(test)]
mod json_diff_tests;
#[cfg(test)]
mod json_oracle;
mod json_scan;
mod json_str;
#[cfg(test)]
mod json_tests;
mod timefmt;

pub use self::csv::{CsvDecoder, CsvEncoder};
pub use json::{JsonDecoder, JsonEncoder};
pub use timefmt::TimestampPattern;

use crate::config::{Format, SinkConfig, SourceConfig};
use crate::types::{DataType, Schema, TimeUnit, Value};
use avro::{AvroDecoder, AvroEncoder, RegistryClient};

/// `s` with every byte outside `A-Za-z0-9-_.~` percent-encoded (for a URL: a registry subject,
/// a query's SQL).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A schema column as every decoder sees it.
pub(crate) struct Column {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    pub unit: TimeUnit,
    /// Read by some query; other columns are skipped unparsed.
    pub needed: bool,
}

impl Column {
    /// The columns of `schema`; `needed[i]` says whether column i is read (default: yes).
    pub(crate) fn of(schema: &Schema, needed: &[bool]) -> Vec<Column> {
        schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| Column {
                name: f.name.clone(),
                data_type: f.data_type.clone(),
                nullable: f.nullable,
                unit: f.numeric_unit,
                needed: needed.get(i).copied().unwrap_or(true),
            })
            .collect()
    }
}

/// Checks format options that need more than the config's own checks (timestamp patterns,
/// Avro schema files), without the network: the key at fault (`csv`, `avro`) and why.
pub fn check_options(
    csv: Option<&crate::config::CsvOptions>,
    avro: Option<&crate::config::AvroOptions>,
) -> Result<(), (&'static str, String)> {
    if let Some(pattern) = csv.and_then(|c| c.timestamp_format.as_deref()) {
        TimestampPattern::new(pattern).map_err(|e| ("csv", e))?;
    }
    if let Some(file) = avro.and_then(|a| a.schema_file.as_deref()) {
        avro::read_schema_file(file).map_err(|e| ("avro", e))?;
    }
    Ok(())
}

/// A source's decoder, chosen by its `format:`.
pub enum Decoder {
    Json(JsonDecoder),
    Csv(Box<CsvDecoder>),
    Avro(Box<AvroDecoder>),
}

impl Decoder {
    /// The decoder of a source; `needed[i]` says whether any query reads column i.
    /// Errors say what in the source's format options is wrong.
    pub fn for_source(source: &SourceConfig, schema: &Schema, needed: &[bool]) -> Result<Decoder, String> {
        Ok(match source.format {
            Format::Json => Decoder::Json(JsonDecoder::new(schema, needed)),
            Format::Csv => Decoder::Csv(Box::new(CsvDecoder::new(schema, needed, &source.csv.clone().unwrap_or_default())?)),
            Format::Avro => {
                Decoder::Avro(Box::new(AvroDecoder::new(schema, needed, &source.avro.clone().unwrap_or_default(), &source.topic)?))
            }
        })
    }

    /// Decodes `payload` into `row[..schema.len()]`. `Ok(false)`: a record to skip silently
    /// (a CSV header line).
    pub fn decode(&self, payload: &[u8], row: &mut [Value]) -> Result<bool, DecodeError> {
        match self {
            Decoder::Json(d) => d.decode(payload, row).map(|()| true),
            Decoder::Csv(d) => d.decode(payload, row),
            Decoder::Avro(d) => d.decode(payload, row).map(|()| true),
        }
    }

    /// Like [`decode`](Self::decode), with the JSON decoder's string columns in `texts`
    /// instead of `row` (the other formats leave `texts` empty).
    pub fn decode_texts(&self, payload: &[u8], row: &mut [Value], texts: &mut batch::Texts) -> Result<bool, DecodeError> {
        match self {
            Decoder::Json(d) => d.decode_texts(payload, row, texts).map(|()| true),
            other => {
                texts.reset(0);
                other.decode(payload, row)
            }
        }
    }
}

/// A sink's encoder, chosen by its `format:`.
pub enum Encoder {
    Json(JsonEncoder),
    Csv(CsvEncoder),
    Avro(AvroEncoder),
}

impl Encoder {
    /// The encoder of sink `name` whose rows have `columns`. An Avro sink with a registry
    /// registers the schema derived from the columns under its subject now.
    pub fn for_sink(name: &str, sink: &SinkConfig, columns: &[(&str, DataType)]) -> Result<Encoder, String> {
        Ok(match sink.format {
            Format::Json => Encoder::Json(JsonEncoder::new(columns)),
            Format::Csv => Encoder::Csv(
                CsvEncoder::new(&sink.csv.clone().unwrap_or_default())?.with_types(columns.iter().map(|(_, t)| t.clone()).collect()),
            ),
            Format::Avro => {
                let options = sink.avro.clone().unwrap_or_default();
                let id = match &options.registry {
                    None => None,
                    Some(url) => {
                        let client = RegistryClient::new(url)?;
                        let subject = options.subject_for(&sink.topic);
                        let schema = avro::derive_schema(name, columns);
                        if !client.is_compatible(&subject, &schema).map_err(|e| e.to_string())? {
                            return Err(format!(
                                "the output schema is not compatible with the latest version of subject {subject}: {schema}"
                            ));
                        }
                        Some(
                            client
                                .register(&subject, &schema)
                                .map_err(|e| format!("cannot register the output schema under {subject}: {e}"))?,
                        )
                    }
                };
                Encoder::Avro(AvroEncoder::new(columns, id))
            }
        })
    }

    /// Appends the encoding of one row to `out`.
    pub fn encode(&self, values: &[Value], out: &mut Vec<u8>) {
        match self {
            Encoder::Json(e) => e.encode(values, out),
            Encoder::Csv(e) => e.encode(values, out),
            Encoder::Avro(e) => e.encode(values, out),
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
    /// An Avro record names a schema id the registry does not have.
    UnknownSchema,
    /// The schema registry cannot be reached: not the record's fault, so it stops the
    /// pipeline (the uncommitted cycle is read again after a restart) instead of dead-lettering.
    Unavailable,
}

impl DecodeErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::Malformed => "malformed",
            DecodeErrorKind::MissingField => "missing_field",
            DecodeErrorKind::WrongType => "wrong_type",
            DecodeErrorKind::BadTimestamp => "bad_timestamp",
            DecodeErrorKind::UnknownSchema => "unknown_schema",
            DecodeErrorKind::Unavailable => "registry_unavailable",
        }
    }
}

impl DecodeError {
    pub fn new(kind: DecodeErrorKind, message: impl Into<String>) -> DecodeError {
        DecodeError { kind, message: message.into() }
    }
}
