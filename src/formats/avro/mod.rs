//! Avro records with the apache-avro crate: bare bodies written with a schema file, or
//! Confluent's wire format (byte 0, 4-byte big-endian schema id, body) with the writer's
//! schema fetched from a Schema Registry by id and resolved against a reader schema (the
//! schema file, or the subject's latest version). Fields are matched to columns by name.
//! Depends on `types`, `time`, the `config` option structs and the registry client.

mod encode;
mod http;
mod registry;
mod value;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::Schema as AvroSchema;

pub use encode::{derive_schema, AvroEncoder};
pub use registry::{Registered, RegistryClient, RegistryError};

use super::{DecodeError, DecodeErrorKind};
use crate::config::AvroOptions;
use crate::types::{Schema, Value};
use value::Column;

/// The most an Avro body may make the decoder allocate (strings, arrays, maps).
pub const MAX_ALLOCATION: usize = 16 << 20;

enum Mode {
    Plain(AvroSchema),
    Registry { client: Arc<RegistryClient>, reader: Option<AvroSchema>, writers: Mutex<HashMap<u32, Arc<AvroSchema>>> },
}

/// Decodes Avro records into rows of a schema.
pub struct AvroDecoder {
    columns: Vec<Column>,
    mode: Mode,
}

/// Reads and parses an Avro schema file.
pub fn read_schema_file(path: &std::path::Path) -> Result<AvroSchema, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read Avro schema {}: {e}", path.display()))?;
    AvroSchema::parse_str(&text).map_err(|e| format!("{} is not an Avro schema: {e}", path.display()))
}

impl AvroDecoder {
    /// A decoder for a source reading `topic`. With a registry and no schema file, the
    /// subject's latest schema (fetched now) is the reader schema unless `use_latest: false`.
    pub fn new(schema: &Schema, needed: &[bool], options: &AvroOptions, topic: &str) -> Result<AvroDecoder, String> {
        apache_avro::util::max_allocation_bytes(MAX_ALLOCATION);
        let file = options.schema_file.as_deref().map(read_schema_file).transpose()?;
        let mode = match (&options.registry, file) {
            (None, Some(s)) => Mode::Plain(s),
            (None, None) => return Err("avro needs a registry or a schema_file".into()),
            (Some(url), file) => {
                let client = Arc::new(RegistryClient::new(url)?);
                let reader = match file {
                    Some(f) => Some(f),
                    None if options.use_latest.unwrap_or(true) => {
                        let subject = options.subject_for(topic);
                        match client.latest(&subject).map_err(|e| format!("cannot read the latest schema of {subject}: {e}"))? {
                            Some(r) => Some(AvroSchema::parse_str(&r.schema).map_err(|e| format!("the latest schema of {subject}: {e}"))?),
                            None => None,
                        }
                    }
                    None => None,
                };
                Mode::Registry { client, reader, writers: Mutex::new(HashMap::new()) }
            }
        };
        Ok(AvroDecoder { columns: Column::of(schema, needed), mode })
    }

    /// A wire-format decoder over an existing client (tests and fuzzing preload its cache).
    pub fn with_registry(schema: &Schema, needed: &[bool], client: Arc<RegistryClient>, reader: Option<AvroSchema>) -> AvroDecoder {
        apache_avro::util::max_allocation_bytes(MAX_ALLOCATION);
        AvroDecoder { columns: Column::of(schema, needed), mode: Mode::Registry { client, reader, writers: Mutex::new(HashMap::new()) } }
    }

    /// A plain decoder with `writer` as the schema.
    pub fn plain(schema: &Schema, needed: &[bool], writer: AvroSchema) -> AvroDecoder {
        apache_avro::util::max_allocation_bytes(MAX_ALLOCATION);
        AvroDecoder { columns: Column::of(schema, needed), mode: Mode::Plain(writer) }
    }

    /// Decodes `payload` into `row[..schema.len()]`.
    pub fn decode(&self, payload: &[u8], row: &mut [Value]) -> Result<(), DecodeError> {
        let malformed = |m: String| DecodeError::new(DecodeErrorKind::Malformed, m);
        match &self.mode {
            Mode::Plain(schema) => {
                let mut body = payload;
                let v = apache_avro::from_avro_datum(schema, &mut body, None).map_err(|e| malformed(format!("invalid Avro: {e}")))?;
                if !body.is_empty() {
                    return Err(malformed(format!("{} bytes after the Avro record", body.len())));
                }
                value::fill_row(&self.columns, v, schema, None, row)
            }
            Mode::Registry { client, reader, writers } => {
                if payload.len() < 5 || payload[0] != 0 {
                    return Err(malformed("not Confluent's Avro wire format (a zero byte, then a 4-byte schema id)".into()));
                }
                let id = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
                let writer = self.writer(client, writers, id)?;
                let mut body = &payload[5..];
                let v = apache_avro::from_avro_datum(&writer, &mut body, None)
                    .map_err(|e| malformed(format!("invalid Avro for schema {id}: {e}")))?;
                if !body.is_empty() {
                    return Err(malformed(format!("{} bytes after the Avro record (schema {id})", body.len())));
                }
                value::fill_row(&self.columns, v, &writer, reader.as_ref(), row)
            }
        }
    }

    fn writer(
        &self,
        client: &RegistryClient,
        writers: &Mutex<HashMap<u32, Arc<AvroSchema>>>,
        id: u32,
    ) -> Result<Arc<AvroSchema>, DecodeError> {
        if let Some(s) = writers.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(s);
        }
        let text = client.schema_by_id(id).map_err(|e| match e {
            RegistryError::Api { .. } => DecodeError::new(DecodeErrorKind::UnknownSchema, format!("schema id {id}: {e}")),
            RegistryError::Unavailable(_) => DecodeError::new(DecodeErrorKind::Unavailable, e.to_string()),
        })?;
        let schema = Arc::new(
            AvroSchema::parse_str(&text)
                .map_err(|e| DecodeError::new(DecodeErrorKind::UnknownSchema, format!("schema id {id} does not parse: {e}")))?,
        );
        if let Ok(mut m) = writers.lock() {
            m.insert(id, schema.clone());
        }
        Ok(schema)
    }
}

#[cfg(test)]
mod tests;
