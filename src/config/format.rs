//! Options of the record formats (`csv:` and `avro:` beside a source's or sink's `format:`).
//! Plain serde structs; the formats module turns them into decoders and encoders.

use std::path::PathBuf;

use serde::Deserialize;

/// `csv:` options. A Kafka record holds one CSV line (RFC 4180 quoting; a quoted field may
/// span lines). Columns are matched by position: `columns` names them in order (names not in
/// the schema are read and ignored), by default the schema's own order.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// The field separator, one ASCII character. Default `,`.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// The column names of a line, in order. Default: the schema's columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Skip a record that is the header line (its fields are the column names). Default true.
    #[serde(default)]
    pub skip_header: Option<bool>,
    /// How text timestamps are written, in Java's pattern letters (`yyyy-MM-dd HH:mm:ss`,
    /// `M/d/yyyy H:mm`, with `SSS` for fractions). Default: RFC 3339, which also accepts
    /// `yyyy-MM-dd HH:mm:ss`; numbers are epoch values in the column's unit.
    #[serde(default)]
    pub timestamp_format: Option<String>,
}

impl CsvOptions {
    pub fn delimiter(&self) -> u8 {
        self.delimiter.map_or(b',', |c| c as u8)
    }
}

/// `avro:` options. With `registry`, records use Confluent's wire format (a zero byte, the
/// 4-byte big-endian schema id, the Avro body); without it, a record is a bare Avro body
/// written with `schema_file`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvroOptions {
    /// The Schema Registry's base URL, `http://host:port`.
    #[serde(default)]
    pub registry: Option<String>,
    /// An Avro schema (`.avsc`, JSON). Sources: the reader schema (the writer's schema comes
    /// from the registry by id), or the only schema without a registry. Sinks: ignored
    /// (the schema is derived from the query's output).
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
    /// The registry subject. Default `<topic>-value` (TopicNameStrategy).
    #[serde(default)]
    pub subject: Option<String>,
    /// Sources with a registry and no schema_file: read with the subject's latest schema as
    /// the reader schema (default true); false reads each record with its writer's schema.
    #[serde(default)]
    pub use_latest: Option<bool>,
}

impl AvroOptions {
    /// The subject of `topic`'s values.
    pub fn subject_for(&self, topic: &str) -> String {
        self.subject.clone().unwrap_or_else(|| format!("{topic}-value"))
    }
}

/// Cross-field checks of a source's or sink's format options; `schema` is a source's.
/// Errors name the offending key (`csv`, `avro` or `format`) and say what to write.
pub(super) fn check(
    format: super::Format,
    csv: Option<&CsvOptions>,
    avro: Option<&AvroOptions>,
    schema: Option<&crate::types::Schema>,
) -> Result<(), (&'static str, String)> {
    use super::Format;
    if csv.is_some() && format != Format::Csv {
        return Err(("csv", "csv options need `format: csv`".into()));
    }
    if avro.is_some() && format != Format::Avro {
        return Err(("avro", "avro options need `format: avro`".into()));
    }
    if let Some(c) = csv {
        if let Some(d) = c.delimiter {
            if !d.is_ascii() || matches!(d, '"' | '\n' | '\r') {
                return Err(("csv", format!("delimiter {d:?} must be one ASCII character other than a quote or a line break")));
            }
        }
        if let (Some(cols), Some(schema)) = (&c.columns, schema) {
            for f in &schema.fields {
                if !cols.iter().any(|c| c.eq_ignore_ascii_case(&f.name)) {
                    return Err(("csv", format!("schema column \"{}\" is not among csv.columns; list every schema column there", f.name)));
                }
            }
        }
    }
    match (format, avro) {
        (Format::Avro, None) if schema.is_some() => {
            Err(("format", "format: avro needs `avro: { registry: \"http://host:8081\" }` or `avro: { schema_file: x.avsc }`".into()))
        }
        (Format::Avro, Some(a)) => {
            if let Some(url) = &a.registry {
                if !url.starts_with("http://") {
                    return Err(("avro", format!("registry \"{url}\" must be an http:// URL (https is not supported yet)")));
                }
            } else if schema.is_some() && a.schema_file.is_none() {
                return Err((
                    "avro",
                    "a source without a registry needs `schema_file`, the Avro schema its records are written with".into(),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
