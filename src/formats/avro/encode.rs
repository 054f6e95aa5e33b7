//! Output rows as Avro: a record schema derived from the query's output columns (every field
//! a union with null; timestamps are timestamp-micros; a window is a record of two), and a
//! direct binary encoder for it, prefixed with Confluent's header when a registry id is known.
//! Depends on `types` and serde_json.

use crate::types::{DataType, Value};

/// An Avro name from a column name: letters, digits and `_`, not starting with a digit.
fn avro_name(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// The record schema (JSON text) of rows with `columns`, named `record` in namespace `eddy`.
pub fn derive_schema(record: &str, columns: &[(&str, DataType)]) -> String {
    let mut window_defined = false;
    let fields: Vec<serde_json::Value> = columns
        .iter()
        .map(|(name, t)| {
            let ty = match t {
                DataType::Int64 | DataType::Int32 => serde_json::json!("long"),
                DataType::Float64 | DataType::Float32 => serde_json::json!("double"),
                DataType::Boolean => serde_json::json!("boolean"),
                DataType::Timestamp(..) => serde_json::json!({"type": "long", "logicalType": "timestamp-micros"}),
                t if crate::types::is_window(t) && window_defined => serde_json::json!("eddy.window"),
                t if crate::types::is_window(t) => {
                    window_defined = true;
                    let ts = serde_json::json!({"type": "long", "logicalType": "timestamp-micros"});
                    serde_json::json!({"type": "record", "name": "window", "namespace": "eddy",
                        "fields": [{"name": "start", "type": ts.clone()}, {"name": "end", "type": ts}]})
                }
                // Other types are written as their text, as CAST(x AS STRING) gives it.
                _ => serde_json::json!("string"),
            };
            serde_json::json!({"name": avro_name(name), "type": ["null", ty], "default": null})
        })
        .collect();
    serde_json::json!({"type": "record", "name": avro_name(record), "namespace": "eddy", "fields": fields}).to_string()
}

/// Encodes rows with the derived schema.
pub struct AvroEncoder {
    types: Vec<DataType>,
    /// Confluent's header (0, id) or nothing.
    prefix: Vec<u8>,
}

impl AvroEncoder {
    /// `schema_id`: the registry's id of the derived schema, for the wire format.
    pub fn new(columns: &[(&str, DataType)], schema_id: Option<u32>) -> AvroEncoder {
        let prefix = schema_id.map(|id| [&[0u8][..], &id.to_be_bytes()].concat()).unwrap_or_default();
        AvroEncoder { types: columns.iter().map(|(_, t)| t.clone()).collect(), prefix }
    }

    pub fn encode(&self, values: &[Value], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        for (t, v) in self.types.iter().zip(values) {
            let text;
            let present = match (t, v) {
                (_, Value::Null) => None,
                (DataType::Utf8, Value::Str(s)) => Some(Enc::Bytes(s.as_bytes())),
                (DataType::Int64 | DataType::Int32, Value::Long(x)) | (DataType::Timestamp(..), Value::Timestamp(x)) => Some(Enc::Long(*x)),
                (DataType::Float64 | DataType::Float32, Value::Double(x)) => Some(Enc::Double(*x)),
                (DataType::Float64 | DataType::Float32, Value::Long(x)) => Some(Enc::Double(*x as f64)),
                (DataType::Boolean, Value::Bool(b)) => Some(Enc::Bool(*b)),
                (_, Value::Window { start, end }) => Some(Enc::Window(*start, *end)),
                (DataType::Null, _) => None,
                (t, v) => {
                    text = crate::expr::cast::spark_string(v, t);
                    Some(Enc::Bytes(text.as_bytes()))
                }
            };
            match present {
                None => write_long(0, out),
                Some(e) => {
                    write_long(1, out);
                    match e {
                        Enc::Bytes(b) => {
                            write_long(b.len() as i64, out);
                            out.extend_from_slice(b);
                        }
                        Enc::Long(x) => write_long(x, out),
                        Enc::Double(x) => out.extend_from_slice(&x.to_le_bytes()),
                        Enc::Bool(b) => out.push(u8::from(b)),
                        Enc::Window(s, e) => {
                            write_long(s, out);
                            write_long(e, out);
                        }
                    }
                }
            }
        }
    }
}

enum Enc<'a> {
    Bytes(&'a [u8]),
    Long(i64),
    Double(f64),
    Bool(bool),
    Window(i64, i64),
}

/// Avro's zigzag variable-length long.
fn write_long(x: i64, out: &mut Vec<u8>) {
    let mut z = ((x << 1) ^ (x >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}
