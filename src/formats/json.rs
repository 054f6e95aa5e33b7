//! JSON records. The decoder scans one object in a single pass over its bytes
//! (`json_scan`), matching keys against the schema without allocating, parsing only the
//! columns a query reads and skipping the rest while still checking they are well-formed JSON.
//! It accepts and rejects exactly what the former serde_json-visitor decoder did (held to it
//! by the differential tests in `json_diff_tests`). The encoder writes objects in select-list
//! order, timestamps as RFC 3339 UTC milliseconds. Depends on `json_scan`, `time`, `types`.

use std::sync::Arc;

use super::batch::Texts;
use super::json_scan::{same_bytes, Bad, Number, Scanner, Text};
use super::Column;
use super::{DecodeError, DecodeErrorKind};
use crate::time::{parse_timestamp, write_timestamp_bytes};
use crate::types::{DataType, Schema, TimeUnit, Value};

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
    /// Per column: it is a string column (its text goes to [`Texts`]).
    utf8: Vec<bool>,
}

impl JsonDecoder {
    /// `needed[i]` says whether column i is read by any query; others are skipped unparsed.
    /// Only the schema's own columns are decoded (metadata columns are filled by the caller).
    pub fn new(schema: &Schema, needed: &[bool]) -> JsonDecoder {
        let columns = Column::of(schema, needed);
        let plain = columns.iter().map(|c| !c.name.bytes().any(|b| b == b'"' || b == b'\\')).collect();
        let required = columns.iter().enumerate().filter(|(_, c)| c.needed && !c.nullable).map(|(i, _)| i).collect();
        let utf8 = columns.iter().map(|c| c.data_type == DataType::Utf8).collect();
        JsonDecoder { columns, plan: Box::new(Plan { plain, required, utf8 }) }
    }

    /// Decodes `payload` into `row[..schema.len()]`, which must be at least that long.
    pub fn decode(&self, payload: &[u8], row: &mut [Value]) -> Result<(), DecodeError> {
        for v in row.iter_mut().take(self.columns.len()) {
            *v = Value::Null;
        }
        let mut texts = Texts::default();
        self.decode_texts(payload, row, &mut texts)?;
        for (i, slot) in row.iter_mut().enumerate().take(self.columns.len()) {
            if let Some(t) = texts.get(i) {
                *slot = Value::str(t);
            }
        }
        Ok(())
    }

    /// Like [`decode`](Self::decode), but the string columns' values go to `texts` (their
    /// slots in `row` stay NULL): the batch builder reads them from there. Only the needed
    /// columns of `row` are reset: the others are never written, so a row kept for one
    /// decoder stays NULL there.
    pub fn decode_texts(&self, payload: &[u8], row: &mut [Value], texts: &mut Texts) -> Result<(), DecodeError> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError::new(DecodeErrorKind::Malformed, "empty payload; expected a JSON object"));
        }
        for (v, c) in row.iter_mut().zip(&self.columns) {
            if c.needed {
                *v = Value::Null;
            }
        }
        texts.reset(self.columns.len());
        let mut s = Scanner::new(payload);
        let seen = match self.fields(&mut s, row, texts) {
            Ok(seen) => seen,
            Err(Stop::Syntax) => return Err(s.error()),
            Err(Stop::Field(e)) => return Err(e),
        };
        for &i in &self.plan.required {
            if row.get(i).is_none_or(Value::is_null) && !texts.has(i) {
                let name = self.columns.get(i).map_or("", |c| c.name.as_str());
                let why = if i < 128 && seen & (1 << i) != 0 { "is null" } else { "is missing" };
                return Err(DecodeError::new(DecodeErrorKind::MissingField, format!("required field \"{name}\" {why}")));
            }
        }
        Ok(())
    }

    /// Scans the object into `row`: which columns (of the first 128) had their key, to tell
    /// "null" from "missing".
    fn fields(&self, s: &mut Scanner, row: &mut [Value], texts: &mut Texts) -> Result<u128, Stop> {
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
                        if self.plan.utf8.get(i) == Some(&true) && s.peek() == Some(b'"') {
                            let at = s.position();
                            s.eat(b'"');
                            let text = match s.string::<true>(&mut scratch)? {
                                Text::Raw(bytes) => bytes,
                                Text::Scratch => &scratch[..],
                            };
                            match std::str::from_utf8(text) {
                                Ok(text) => texts.set(i, text),
                                Err(_) => return Err(s.fail(at, "invalid UTF-8 in a string").into()),
                            }
                            if let Some(slot) = row.get_mut(i) {
                                *slot = Value::Null;
                            }
                        } else {
                            let v = value(s, c, &mut scratch)?;
                            texts.clear(i);
                            if let Some(slot) = row.get_mut(i) {
                                *slot = v;
                            }
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

/// Nested values deeper than this are a decode error, not a stack overflow.
const MAX_DEPTH: usize = 64;

/// The value of needed column `c` at the scanner (after whitespace). Parsed in full before its
/// type is checked, so a malformed value is Malformed whatever the column's type.
#[inline]
fn value(s: &mut Scanner, c: &Column, scratch: &mut Vec<u8>) -> Result<Value, Stop> {
    typed(s, &c.data_type, &c.name, c.unit, scratch, 0)
}

/// A value of type `t` (of the field called `name`, for messages).
fn typed(s: &mut Scanner, t: &DataType, name: &str, unit: TimeUnit, scratch: &mut Vec<u8>, depth: usize) -> Result<Value, Stop> {
    match s.peek() {
        Some(b'"') => {
            let at = s.position();
            s.eat(b'"');
            let text = match s.string::<true>(scratch)? {
                Text::Raw(bytes) => std::str::from_utf8(bytes),
                Text::Scratch => std::str::from_utf8(scratch),
            };
            match text {
                Ok(text) => from_str(t, name, text).map_err(Stop::Field),
                Err(_) => Err(s.fail(at, "invalid UTF-8 in a string").into()),
            }
        }
        Some(b'-' | b'0'..=b'9') => {
            let start = s.position();
            let n = s.number()?;
            if let DataType::Decimal128(p, scale) = t {
                let text = std::str::from_utf8(s.since(start)).unwrap_or("");
                return decimal(text, *p, *scale).ok_or_else(|| Stop::Field(wrong(t, name, "a number that does not fit the decimal")));
            }
            match n {
                Number::Int(v) => from_i64(t, name, unit, v),
                Number::Big(v) if t.is_floating() => Ok(Value::Double(v as f64)),
                Number::Big(_) => Err(wrong(t, name, "a number too large for a long")),
                Number::Float(v) => from_f64(t, name, unit, v),
            }
            .map_err(Stop::Field)
        }
        Some(b't') => {
            s.literal(b"true")?;
            from_bool(t, name, true).map_err(Stop::Field)
        }
        Some(b'f') => {
            s.literal(b"false")?;
            from_bool(t, name, false).map_err(Stop::Field)
        }
        Some(b'n') => {
            s.literal(b"null")?;
            Ok(Value::Null)
        }
        Some(b'{') if depth < MAX_DEPTH => match t {
            DataType::Struct(fields) => {
                s.eat(b'{');
                let mut values = vec![Value::Null; fields.len()];
                object(s, scratch, |s, key, scratch| {
                    let found = fields
                        .iter()
                        .position(|f| f.name().as_bytes() == key)
                        .or_else(|| fields.iter().position(|f| f.name().as_bytes().eq_ignore_ascii_case(key)));
                    match found {
                        Some(i) => {
                            let path = format!("{name}.{}", fields[i].name());
                            values[i] = typed(s, fields[i].data_type(), &path, TimeUnit::default(), scratch, depth + 1)?;
                            Ok(())
                        }
                        None => s.skip_value().map_err(Stop::from),
                    }
                })?;
                Ok(Value::Struct(Arc::from(values)))
            }
            DataType::Map(entries, _) => {
                let DataType::Struct(kv) = entries.data_type() else { return Err(Stop::Field(wrong(t, name, "an object"))) };
                s.eat(b'{');
                let mut out = Vec::new();
                object(s, scratch, |s, key, scratch| {
                    let key = std::str::from_utf8(key).map_err(|_| Stop::Field(wrong(t, name, "a key that is not UTF-8")))?;
                    let k = from_str(kv[0].data_type(), name, key).map_err(Stop::Field)?;
                    let v = typed(s, kv[1].data_type(), name, TimeUnit::default(), scratch, depth + 1)?;
                    out.push((k, v));
                    Ok(())
                })?;
                Ok(Value::Map(Arc::from(out)))
            }
            _ => Err(Stop::Field(wrong(t, name, "an object"))),
        },
        Some(b'[') if depth < MAX_DEPTH => match t {
            DataType::List(item) => {
                s.eat(b'[');
                let mut out = Vec::new();
                if !s.eat_after_ws(b']') {
                    loop {
                        s.skip_ws();
                        out.push(typed(s, item.data_type(), name, TimeUnit::default(), scratch, depth + 1)?);
                        if s.eat_after_ws(b',') {
                            continue;
                        }
                        if s.eat(b']') {
                            break;
                        }
                        return Err(s.expected("',' or ']' in an array").into());
                    }
                }
                Ok(Value::List(Arc::from(out)))
            }
            _ => Err(Stop::Field(wrong(t, name, "an array"))),
        },
        Some(b'{' | b'[') => {
            Err(Stop::Field(DecodeError::new(DecodeErrorKind::Malformed, format!("field \"{name}\" nests deeper than {MAX_DEPTH} levels"))))
        }
        _ => Err(s.expected("a value").into()),
    }
}

/// The fields of an object whose `{` was eaten: `field` reads each value after its key.
fn object(
    s: &mut Scanner,
    scratch: &mut Vec<u8>,
    mut field: impl FnMut(&mut Scanner, &[u8], &mut Vec<u8>) -> Result<(), Stop>,
) -> Result<(), Stop> {
    if s.eat_after_ws(b'}') {
        return Ok(());
    }
    let mut key_buf: Vec<u8> = Vec::new();
    loop {
        if !s.eat_after_ws(b'"') {
            return Err(s.expected("a key string").into());
        }
        key_buf.clear();
        match s.string::<false>(scratch)? {
            Text::Raw(key) => key_buf.extend_from_slice(key),
            Text::Scratch => key_buf.extend_from_slice(scratch),
        }
        if !s.eat_after_ws(b':') {
            return Err(s.expected("':' after a key").into());
        }
        s.skip_ws();
        field(s, &key_buf, scratch)?;
        if s.eat_after_ws(b',') {
            continue;
        }
        if s.eat(b'}') {
            return Ok(());
        }
        return Err(s.expected("',' or '}' after a field").into());
    }
}

/// A JSON number's text as a decimal of precision `p` and scale `scale`, rounded half up.
fn decimal(text: &str, p: u8, scale: i8) -> Option<Value> {
    let v = crate::expr::cast::cast_value(&Value::str(text), &DataType::Utf8, &DataType::Decimal128(p, scale))?;
    (!v.is_null()).then_some(v)
}

fn from_bool(t: &DataType, name: &str, v: bool) -> Result<Value, DecodeError> {
    match t {
        DataType::Boolean => Ok(Value::Bool(v)),
        _ => Err(wrong(t, name, "a boolean")),
    }
}

fn from_i64(t: &DataType, name: &str, unit: TimeUnit, v: i64) -> Result<Value, DecodeError> {
    match t {
        DataType::Int64 => Ok(Value::Long(v)),
        DataType::Int32 if i32::try_from(v).is_ok() => Ok(Value::Long(v)),
        DataType::Int32 => Err(wrong(t, name, "a number out of the int range")),
        DataType::Float64 | DataType::Float32 => Ok(Value::Double(v as f64)),
        DataType::Timestamp(..) => Ok(Value::Timestamp(v.saturating_mul(unit.micros()))),
        _ => Err(wrong(t, name, "a number")),
    }
}

fn from_f64(t: &DataType, name: &str, unit: TimeUnit, v: f64) -> Result<Value, DecodeError> {
    match t {
        DataType::Float64 | DataType::Float32 => Ok(Value::Double(v)),
        DataType::Timestamp(..) if v.is_finite() => Ok(Value::Timestamp((v * unit.micros() as f64) as i64)),
        DataType::Int64 | DataType::Int32 => Err(wrong(t, name, "a number with a fraction")),
        _ => Err(wrong(t, name, "a number")),
    }
}

fn from_str(t: &DataType, name: &str, v: &str) -> Result<Value, DecodeError> {
    match t {
        DataType::Utf8 => Ok(Value::Str(Arc::from(v))),
        DataType::Timestamp(..) => parse_timestamp(v)
            .map(Value::Timestamp)
            .map_err(|e| DecodeError::new(DecodeErrorKind::BadTimestamp, format!("field \"{name}\": {e}"))),
        DataType::Date32 => crate::expr::cast::parse_date(v).map(Value::Date).ok_or_else(|| {
            DecodeError::new(DecodeErrorKind::BadTimestamp, format!("field \"{name}\": \"{v}\" is not a date (yyyy-MM-dd)"))
        }),
        DataType::Decimal128(p, s) => decimal(v.trim(), *p, *s).ok_or_else(|| wrong(t, name, "a string that is not a decimal")),
        DataType::Binary => Ok(Value::Binary(Arc::from(v.as_bytes()))),
        _ => Err(wrong(t, name, "a string")),
    }
}

#[cold]
fn wrong(t: &DataType, name: &str, found: &str) -> DecodeError {
    DecodeError::new(DecodeErrorKind::WrongType, format!("field \"{name}\" should be a {}, found {found}", type_phrase(t)))
}

/// How a column's type is named in error messages.
pub(super) fn type_phrase(t: &DataType) -> String {
    match t {
        DataType::Utf8 => "string".into(),
        DataType::Int64 => "whole number (long)".into(),
        DataType::Int32 => "whole number (int)".into(),
        DataType::Float64 | DataType::Float32 => "number (double)".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Timestamp(..) => "timestamp (RFC 3339 string or epoch number)".into(),
        DataType::Date32 => "date (yyyy-MM-dd)".into(),
        DataType::Decimal128(..) => format!("number ({})", crate::types::type_name(t)),
        DataType::Struct(_) | DataType::Map(..) => format!("object ({})", crate::types::type_name(t)),
        DataType::List(_) => format!("array ({})", crate::types::type_name(t)),
        _ => "value".into(),
    }
}

/// Encodes rows as JSON objects with fixed field names.
pub struct JsonEncoder {
    /// `"name":` for each column, escaped once.
    prefixes: Vec<Vec<u8>>,
    types: Vec<DataType>,
}

impl JsonEncoder {
    pub fn new(columns: &[(&str, DataType)]) -> JsonEncoder {
        let prefixes = columns
            .iter()
            .enumerate()
            .map(|(i, (n, _))| {
                let mut p = Vec::new();
                if i > 0 {
                    p.push(b',');
                }
                write_json_string(n, &mut p);
                p.push(b':');
                p
            })
            .collect();
        JsonEncoder { prefixes, types: columns.iter().map(|(_, t)| t.clone()).collect() }
    }

    /// Appends `{"a":…,"b":…}` for row `i` of `columns` (one per name) to `out`, reading flat
    /// cells in place.
    pub fn encode_cells(&self, columns: &[crate::types::arrays::ColumnReader], i: usize, out: &mut Vec<u8>) {
        use crate::types::arrays::Cell;
        out.push(b'{');
        for ((prefix, r), t) in self.prefixes.iter().zip(columns).zip(&self.types) {
            out.extend_from_slice(prefix);
            match r.cell(i) {
                Cell::Null => out.extend_from_slice(b"null"),
                Cell::Bool(true) => out.extend_from_slice(b"true"),
                Cell::Bool(false) => out.extend_from_slice(b"false"),
                Cell::Long(x) => {
                    let mut b = itoa::Buffer::new();
                    out.extend_from_slice(b.format(x).as_bytes());
                }
                Cell::Double(x) => write_json_value(&Value::Double(x), t, out),
                Cell::Str(s) => write_json_string(s, out),
                Cell::Timestamp(x) => write_timestamp(x, out),
                Cell::Other => write_json_value(&r.value(i), t, out),
            }
        }
        out.push(b'}');
    }

    /// Appends `{"a":…,"b":…}` for `values` (one per name) to `out`.
    pub fn encode<'v>(&self, values: impl IntoIterator<Item = &'v Value>, out: &mut Vec<u8>) {
        out.push(b'{');
        for ((prefix, v), t) in self.prefixes.iter().zip(values).zip(&self.types) {
            out.extend_from_slice(prefix);
            write_json_value(v, t, out);
        }
        out.push(b'}');
    }
}

/// Writes one value of type `t` as JSON. Non-finite doubles have no JSON number form and are
/// written as Spark writes them, the strings "NaN", "Infinity" and "-Infinity"; decimals are numbers with their scale's digits, dates `"yyyy-MM-dd"`, binary base64.
pub fn write_json_value(v: &Value, t: &DataType, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Long(x) => {
            let mut b = itoa::Buffer::new();
            out.extend_from_slice(b.format(*x).as_bytes());
        }
        Value::Double(x) if x.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, x);
        }
        // As Spark's JSON writer (Jackson) writes them.
        Value::Double(x) if x.is_nan() => out.extend_from_slice(b"\"NaN\""),
        Value::Double(x) if *x > 0.0 => out.extend_from_slice(b"\"Infinity\""),
        Value::Double(_) => out.extend_from_slice(b"\"-Infinity\""),
        Value::Str(s) => write_json_string(s, out),
        Value::Timestamp(t) => write_timestamp(*t, out),
        Value::Window { start, end } => {
            out.extend_from_slice(b"{\"start\":");
            write_timestamp(*start, out);
            out.extend_from_slice(b",\"end\":");
            write_timestamp(*end, out);
            out.push(b'}');
        }
        Value::Date(d) => {
            out.push(b'"');
            out.extend_from_slice(crate::expr::cast::date_string(*d).as_bytes());
            out.push(b'"');
        }
        Value::Decimal(d) => {
            let scale = match t {
                DataType::Decimal128(_, s) => (*s).max(0) as u32,
                _ => 0,
            };
            out.extend_from_slice(crate::expr::cast::decimal_string(d.get(), scale).as_bytes());
        }
        Value::Binary(b) => {
            out.push(b'"');
            base64(b, out);
            out.push(b'"');
        }
        Value::List(items) => {
            let item = match t {
                DataType::List(f) | DataType::LargeList(f) => f.data_type().clone(),
                _ => DataType::Null,
            };
            out.push(b'[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_value(x, &item, out);
            }
            out.push(b']');
        }
        Value::Struct(items) => {
            out.push(b'{');
            if let DataType::Struct(fields) = t {
                let mut first = true;
                for (f, x) in fields.iter().zip(items.iter()) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_json_string(f.name(), out);
                    out.push(b':');
                    write_json_value(x, f.data_type(), out);
                }
            }
            out.push(b'}');
        }
        Value::Map(entries) => {
            let (kt, vt) = match t {
                DataType::Map(f, _) => match f.data_type() {
                    DataType::Struct(kv) if kv.len() == 2 => (kv[0].data_type().clone(), kv[1].data_type().clone()),
                    _ => (DataType::Null, DataType::Null),
                },
                _ => (DataType::Null, DataType::Null),
            };
            out.push(b'{');
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(&crate::expr::cast::spark_string(k, &kt), out);
                out.push(b':');
                write_json_value(x, &vt, out);
            }
            out.push(b'}');
        }
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
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
