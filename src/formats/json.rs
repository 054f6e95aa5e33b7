//! JSON records. The decoder scans one object in a single pass over its bytes
//! (`json_scan`), matching keys against the schema without allocating, parsing only the
//! columns a query reads and skipping the rest while still checking they are well-formed JSON.
//! It accepts and rejects exactly what the former serde_json-visitor decoder did (held to it
//! by the differential tests in `json_diff_tests`). The encoder writes objects in select-list
//! order, timestamps as RFC 3339 UTC milliseconds. Depends on `json_scan`, `time`, `types`.

use std::sync::Arc;

use super::json_scan::{same_bytes, Bad, Number, Scanner, Text};
use super::Column;
use super::{DecodeError, DecodeErrorKind};
use crate::time::{parse_timestamp, write_timestamp_bytes};
use crate::types::{DataType, Schema, Value};

/// Decodes JSON objects into rows of a schema.
pub struct JsonDecoder {
    columns: Vec<Column>,
    /// Boxed: the decoder sits inline in `Decoder`, which should stay small.
    plan: Box<Plan>,
}

/// What the decoder works out once from its columns.
struct Plan {
    /// Per column: its name has no `"` or `\`, so a key written as the name unescaped ends
    /// at the first quote after it (the fast path for the hinted column).
    plain: Vec<bool>,
    /// The needed columns that may not be null, in schema order.
    required: Vec<usize>,
}

impl JsonDecoder {
    /// `needed[i]` says whether column i is read by any query; others are skipped unparsed.
    /// Only the schema's own columns are decoded (metadata columns are filled by the caller).
    pub fn new(schema: &Schema, needed: &[bool]) -> JsonDecoder {
        let columns = Column::of(schema, needed);
        let plain = columns.iter().map(|c| !c.name.bytes().any(|b| b == b'"' || b == b'\\')).collect();
        let required = columns.iter().enumerate().filter(|(_, c)| c.needed && !c.nullable).map(|(i, _)| i).collect();
        JsonDecoder { columns, plan: Box::new(Plan { plain, required }) }
    }

    /// Decodes `payload` into `row[..schema.len()]`, which must be at least that long.
    pub fn decode(&self, payload: &[u8], row: &mut [Value]) -> Result<(), DecodeError> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError::new(DecodeErrorKind::Malformed, "empty payload; expected a JSON object"));
        }
        for v in row.iter_mut().take(self.columns.len()) {
            *v = Value::Null;
        }
        let mut s = Scanner::new(payload);
        let seen = match self.fields(&mut s, row) {
            Ok(seen) => seen,
            Err(Stop::Syntax) => return Err(s.error()),
            Err(Stop::Field(e)) => return Err(e),
        };
        for &i in &self.plan.required {
            if row.get(i).is_none_or(Value::is_null) {
                let name = self.columns.get(i).map_or("", |c| c.name.as_str());
                let why = if i < 128 && seen & (1 << i) != 0 { "is null" } else { "is missing" };
                return Err(DecodeError::new(DecodeErrorKind::MissingField, format!("required field \"{name}\" {why}")));
            }
        }
        Ok(())
    }

    /// Scans the object into `row`: which columns (of the first 128) had their key, to tell
    /// "null" from "missing".
    fn fields(&self, s: &mut Scanner, row: &mut [Value]) -> Result<u128, Stop> {
        let mut seen = [0u64; 2];
        let mut scratch = Vec::new();
        if !s.eat_after_ws(b'{') {
            return Err(s.expected("'{' (a record is a JSON object)").into());
        }
        // Producers write fields in the same order record after record: try the column after
        // the last one found before searching them all.
        let mut hint = 0;
        if !s.eat_after_ws(b'}') {
            loop {
                if !s.eat_after_ws(b'"') {
                    return Err(s.expected("a key string").into());
                }
                let hinted = self.columns.get(hint).filter(|_| self.plan.plain.get(hint) == Some(&true));
                let index = if hinted.is_some_and(|c| s.eat_key(c.name.as_bytes())) {
                    Some(hint)
                } else {
                    match s.string::<false>(&mut scratch)? {
                        Text::Raw(key) => self.lookup(key, hint),
                        Text::Scratch => self.lookup(&scratch, hint),
                    }
                };
                if !s.eat_after_ws(b':') {
                    return Err(s.expected("':' after a key").into());
                }
                s.skip_ws();
                match index.and_then(|i| Some((i, self.columns.get(i)?))) {
                    Some((i, c)) if c.needed => {
                        hint = i + 1;
                        if let Some(w) = seen.get_mut(i / 64) {
                            *w |= 1 << (i % 64);
                        }
                        let v = value(s, c, &mut scratch)?;
                        if let Some(slot) = row.get_mut(i) {
                            *slot = v;
                        }
                    }
                    other => {
                        if let Some((i, _)) = other {
                            hint = i + 1;
                        }
                        s.skip_value()?;
                    }
                }
                if s.eat_after_ws(b',') {
                    continue;
                }
                if s.eat(b'}') {
                    break;
                }
                return Err(s.expected("',' or '}' after a field").into());
            }
        }
        s.skip_ws();
        if !s.at_end() {
            return Err(s.expected("the end of the record after its object").into());
        }
        Ok(u128::from(seen[0]) | u128::from(seen[1]) << 64)
    }

    /// The column `key` names: the hinted one if it matches exactly, else the first exact
    /// match, else the first ASCII-case-insensitive one.
    #[inline]
    fn lookup(&self, key: &[u8], hint: usize) -> Option<usize> {
        if self.columns.get(hint).is_some_and(|c| same_bytes(c.name.as_bytes(), key)) {
            return Some(hint);
        }
        self.find(key)
    }

    #[inline(never)]
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.as_bytes() == key)
            .or_else(|| self.columns.iter().position(|c| c.name.as_bytes().eq_ignore_ascii_case(key)))
    }
}

/// Why scanning an object stopped: bad JSON (described by the scanner) or a bad field.
enum Stop {
    Syntax,
    Field(DecodeError),
}

impl From<Bad> for Stop {
    fn from(_: Bad) -> Stop {
        Stop::Syntax
    }
}

/// The value of needed column `c` at the scanner (after whitespace). Parsed in full before its
/// type is checked, so a malformed value is Malformed whatever the column's type.
#[inline]
fn value(s: &mut Scanner, c: &Column, scratch: &mut Vec<u8>) -> Result<Value, Stop> {
    match s.peek() {
        Some(b'"') => {
            let at = s.position();
            s.eat(b'"');
            let text = match s.string::<true>(scratch)? {
                Text::Raw(bytes) => std::str::from_utf8(bytes),
                Text::Scratch => std::str::from_utf8(scratch),
            };
            match text {
                Ok(text) => from_str(c, text).map_err(Stop::Field),
                Err(_) => Err(s.fail(at, "invalid UTF-8 in a string").into()),
            }
        }
        Some(b'-' | b'0'..=b'9') => match s.number()? {
            Number::Int(v) => from_i64(c, v),
            Number::Big(v) if c.data_type == DataType::Double => Ok(Value::Double(v as f64)),
            Number::Big(_) => Err(wrong(c, "a number too large for a long")),
            Number::Float(v) => from_f64(c, v),
        }
        .map_err(Stop::Field),
        Some(b't') => {
            s.literal(b"true")?;
            from_bool(c, true).map_err(Stop::Field)
        }
        Some(b'f') => {
            s.literal(b"false")?;
            from_bool(c, false).map_err(Stop::Field)
        }
        Some(b'n') => {
            s.literal(b"null")?;
            Ok(Value::Null)
        }
        Some(b'{') => Err(Stop::Field(wrong(c, "an object"))),
        Some(b'[') => Err(Stop::Field(wrong(c, "an array"))),
        _ => Err(s.expected("a value").into()),
    }
}

fn from_bool(c: &Column, v: bool) -> Result<Value, DecodeError> {
    match c.data_type {
        DataType::Boolean => Ok(Value::Bool(v)),
        _ => Err(wrong(c, "a boolean")),
    }
}

fn from_i64(c: &Column, v: i64) -> Result<Value, DecodeError> {
    match c.data_type {
        DataType::Long => Ok(Value::Long(v)),
        DataType::Double => Ok(Value::Double(v as f64)),
        DataType::Timestamp => Ok(Value::Timestamp(v.saturating_mul(c.unit.micros()))),
        _ => Err(wrong(c, "a number")),
    }
}

fn from_f64(c: &Column, v: f64) -> Result<Value, DecodeError> {
    match c.data_type {
        DataType::Double => Ok(Value::Double(v)),
        DataType::Timestamp if v.is_finite() => Ok(Value::Timestamp((v * c.unit.micros() as f64) as i64)),
        DataType::Long => Err(wrong(c, "a number with a fraction")),
        _ => Err(wrong(c, "a number")),
    }
}

fn from_str(c: &Column, v: &str) -> Result<Value, DecodeError> {
    match c.data_type {
        DataType::String => Ok(Value::Str(Arc::from(v))),
        DataType::Timestamp => parse_timestamp(v)
            .map(Value::Timestamp)
            .map_err(|e| DecodeError::new(DecodeErrorKind::BadTimestamp, format!("field \"{}\": {e}", c.name))),
        _ => Err(wrong(c, "a string")),
    }
}

#[cold]
fn wrong(c: &Column, found: &str) -> DecodeError {
    DecodeError::new(DecodeErrorKind::WrongType, format!("field \"{}\" should be a {}, found {found}", c.name, type_phrase(c.data_type)))
}

/// How a column's type is named in error messages.
pub(super) fn type_phrase(t: DataType) -> &'static str {
    match t {
        DataType::String => "string",
        DataType::Long => "whole number (long)",
        DataType::Double => "number (double)",
        DataType::Boolean => "boolean",
        DataType::Timestamp => "timestamp (RFC 3339 string or epoch number)",
        DataType::Window | DataType::Null => "value",
    }
}

/// Encodes rows as JSON objects with fixed field names.
pub struct JsonEncoder {
    /// `"name":` for each column, escaped once.
    prefixes: Vec<Vec<u8>>,
}

impl JsonEncoder {
    pub fn new(names: &[&str]) -> JsonEncoder {
        let prefixes = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut p = Vec::new();
                if i > 0 {
                    p.push(b',');
                }
                write_json_string(n, &mut p);
                p.push(b':');
                p
            })
            .collect();
        JsonEncoder { prefixes }
    }

    /// Appends `{"a":…,"b":…}` for `values` (one per name) to `out`.
    pub fn encode<'v>(&self, values: impl IntoIterator<Item = &'v Value>, out: &mut Vec<u8>) {
        out.push(b'{');
        for (prefix, v) in self.prefixes.iter().zip(values) {
            out.extend_from_slice(prefix);
            write_json_value(v, out);
        }
        out.push(b'}');
    }
}

/// Writes one value as JSON. Non-finite doubles have no JSON form and are written as null.
pub fn write_json_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Long(x) => {
            let _ = serde_json::to_writer(&mut *out, x);
        }
        Value::Double(x) if x.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, x);
        }
        Value::Double(_) => out.extend_from_slice(b"null"),
        Value::Str(s) => write_json_string(s, out),
        Value::Timestamp(t) => write_timestamp(*t, out),
        Value::Window { start, end } => {
            out.extend_from_slice(b"{\"start\":");
            write_timestamp(*start, out);
            out.extend_from_slice(b",\"end\":");
            write_timestamp(*end, out);
            out.push(b'}');
        }
    }
}

fn write_timestamp(t: i64, out: &mut Vec<u8>) {
    out.push(b'"');
    write_timestamp_bytes(t, out);
    out.push(b'"');
}

/// A string as JSON: copied as is when nothing in it needs escaping (the usual case), else
/// through serde_json, which escapes `"`, `\\` and control characters, as the copy assumes.
fn write_json_string(s: &str, out: &mut Vec<u8>) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    let _ = serde_json::to_writer(&mut *out, s);
}
