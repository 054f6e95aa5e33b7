//! CSV records: one line per Kafka record, RFC 4180 quoting (`"a ""b"", c"`; a quoted field
//! may hold the delimiter and line breaks). Columns are matched by position against the
//! configured column order; a record that is the header line is skipped. Empty fields are
//! NULL (a quoted empty field is the empty string). Depends on `types`, `time`, `config`.

use std::borrow::Cow;
use std::sync::Arc;

use super::timefmt::TimestampPattern;
use super::Column;
use super::{DecodeError, DecodeErrorKind};
use crate::config::CsvOptions;
use crate::time::{format_timestamp, parse_timestamp};
use crate::types::{DataType, Schema, Value};

/// The longest record decoded, and the most fields; longer ones are malformed.
const MAX_FIELDS: usize = 4096;

struct Slot {
    /// Index in the schema, or None for a column the schema does not have.
    column: Option<usize>,
}

/// Decodes CSV lines into rows of a schema.
pub struct CsvDecoder {
    delimiter: u8,
    names: Vec<String>,
    slots: Vec<Slot>,
    columns: Vec<Column>,
    skip_header: bool,
    pattern: Option<TimestampPattern>,
}

/// One field of a line.
struct Cell<'a> {
    text: Cow<'a, str>,
    quoted: bool,
}

impl CsvDecoder {
    pub fn new(schema: &Schema, needed: &[bool], options: &CsvOptions) -> Result<CsvDecoder, String> {
        let names: Vec<String> = match &options.columns {
            Some(c) => c.clone(),
            None => schema.fields.iter().map(|f| f.name.clone()).collect(),
        };
        let slots = names.iter().map(|n| Slot { column: schema.fields.iter().position(|f| f.name.eq_ignore_ascii_case(n)) }).collect();
        let columns = Column::of(schema, needed);
        let pattern = options.timestamp_format.as_deref().map(TimestampPattern::new).transpose()?;
        check_delimiter(options)?;
        Ok(CsvDecoder { delimiter: options.delimiter(), names, slots, columns, skip_header: options.skip_header.unwrap_or(true), pattern })
    }

    /// Decodes `payload` into `row[..schema.len()]`; `Ok(false)` for a header line (skip it).
    pub fn decode(&self, payload: &[u8], row: &mut [Value]) -> Result<bool, DecodeError> {
        let text =
            std::str::from_utf8(payload).map_err(|e| DecodeError::new(DecodeErrorKind::Malformed, format!("not UTF-8 text: {e}")))?;
        let cells = split_line(text, self.delimiter)?;
        if cells.len() != self.names.len() {
            return Err(DecodeError::new(
                DecodeErrorKind::Malformed,
                format!("expected {} CSV fields ({}), found {}", self.names.len(), self.names.join(","), cells.len()),
            ));
        }
        if self.skip_header && cells.iter().zip(&self.names).all(|(c, n)| c.text.trim().eq_ignore_ascii_case(n)) {
            return Ok(false);
        }
        for v in row.iter_mut().take(self.columns.len()) {
            *v = Value::Null;
        }
        for (cell, slot) in cells.iter().zip(&self.slots) {
            let Some(i) = slot.column else { continue };
            let c = &self.columns[i];
            if !c.needed {
                continue;
            }
            row[i] = self.value(c, cell)?;
        }
        for (i, c) in self.columns.iter().enumerate() {
            if c.needed && !c.nullable && row[i].is_null() {
                return Err(DecodeError::new(DecodeErrorKind::MissingField, format!("required field \"{}\" is empty", c.name)));
            }
        }
        Ok(true)
    }

    fn value(&self, c: &Column, cell: &Cell<'_>) -> Result<Value, DecodeError> {
        let raw = cell.text.as_ref();
        if raw.is_empty() && !(cell.quoted && c.data_type == DataType::Utf8) {
            return Ok(Value::Null);
        }
        let t = raw.trim();
        let wrong = |what: &str| {
            DecodeError::new(DecodeErrorKind::WrongType, format!("field \"{}\" should be {what}, found \"{}\"", c.name, shorten(raw)))
        };
        Ok(match &c.data_type {
            DataType::Utf8 => Value::Str(Arc::from(raw)),
            DataType::Int64 => Value::Long(t.parse().map_err(|_| wrong("a whole number (long)"))?),
            DataType::Int32 => Value::Long(i64::from(t.parse::<i32>().map_err(|_| wrong("a whole number (int)"))?)),
            DataType::Date32 => Value::Date(crate::expr::cast::parse_date(t).ok_or_else(|| wrong("a date (yyyy-MM-dd)"))?),
            DataType::Decimal128(p, s) => {
                let v = crate::expr::cast::cast_value(&Value::str(t), &DataType::Utf8, &DataType::Decimal128(*p, *s)).unwrap_or_default();
                if v.is_null() {
                    return Err(wrong(&format!("a number ({})", crate::types::type_name(&c.data_type))));
                }
                v
            }
            DataType::Float64 => Value::Double(t.parse().map_err(|_| wrong("a number (double)"))?),
            DataType::Boolean => match t.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(wrong("true or false")),
            },
            DataType::Timestamp(..) => Value::Timestamp(self.timestamp(c, t)?),
            _ => return Err(wrong("a value CSV can hold (nested types need JSON or Avro)")),
        })
    }

    fn timestamp(&self, c: &Column, t: &str) -> Result<i64, DecodeError> {
        let bad = |m: String| DecodeError::new(DecodeErrorKind::BadTimestamp, format!("field \"{}\": {m}", c.name));
        if !t.is_empty() && t.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
            let n: i64 = t.parse().map_err(|_| bad(format!("\"{}\" is out of range", shorten(t))))?;
            return Ok(n.saturating_mul(c.unit.micros()));
        }
        match &self.pattern {
            Some(p) => p.parse(t).map_err(bad),
            None => parse_timestamp(t).map_err(|e| bad(e.to_string())),
        }
    }
}

fn check_delimiter(options: &CsvOptions) -> Result<(), String> {
    match options.delimiter {
        Some(d) if !d.is_ascii() || matches!(d, '"' | '\n' | '\r') => {
            Err(format!("delimiter {d:?} must be one ASCII character other than a quote or a line break"))
        }
        _ => Ok(()),
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Splits one CSV line (a trailing line break is dropped) into fields.
fn split_line(text: &str, delimiter: u8) -> Result<Vec<Cell<'_>>, DecodeError> {
    let malformed = |m: &str| DecodeError::new(DecodeErrorKind::Malformed, m.to_string());
    let line = text.strip_suffix('\n').map_or(text, |l| l.strip_suffix('\r').unwrap_or(l));
    let b = line.as_bytes();
    let mut cells = Vec::new();
    let mut i = 0;
    loop {
        if cells.len() >= MAX_FIELDS {
            return Err(malformed("more than 4096 CSV fields"));
        }
        if b.get(i) == Some(&b'"') {
            // Quoted: up to the closing quote; "" is one quote (only then is the text copied).
            let start = i + 1;
            let (mut j, mut from) = (start, start);
            let mut owned: Option<String> = None;
            loop {
                match b.get(j) {
                    None => return Err(malformed("a quoted CSV field is not closed")),
                    Some(b'"') if b.get(j + 1) == Some(&b'"') => {
                        owned.get_or_insert_with(String::new).push_str(&line[from..=j]);
                        j += 2;
                        from = j;
                    }
                    Some(b'"') => {
                        let text = match owned.take() {
                            Some(mut s) => {
                                s.push_str(&line[from..j]);
                                Cow::Owned(s)
                            }
                            None => Cow::Borrowed(&line[start..j]),
                        };
                        cells.push(Cell { text, quoted: true });
                        i = j + 1;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            match b.get(i) {
                None => return Ok(cells),
                Some(&d) if d == delimiter => i += 1,
                Some(_) => return Err(malformed("text after a closing quote; quote the whole field and double inner quotes")),
            }
        } else {
            let end = b[i..].iter().position(|&c| c == delimiter).map_or(b.len(), |p| i + p);
            let field = &line[i..end];
            if field.contains(['\n', '\r']) {
                return Err(malformed("a line break outside quotes: a record holds one CSV line"));
            }
            if field.contains('"') {
                return Err(malformed("a quote inside an unquoted CSV field; quote the field and double the quote"));
            }
            cells.push(Cell { text: Cow::Borrowed(field), quoted: false });
            if end == b.len() {
                return Ok(cells);
            }
            i = end + 1;
        }
    }
}

/// Encodes rows as CSV lines (no header, no line break): NULL is an empty field, an empty
/// string is `""`, timestamps are RFC 3339 (or `timestamp_format`), a window is `start/end`.
pub struct CsvEncoder {
    delimiter: u8,
    pattern: Option<TimestampPattern>,
    types: Vec<DataType>,
}

impl CsvEncoder {
    pub fn new(options: &CsvOptions) -> Result<CsvEncoder, String> {
        let pattern = options.timestamp_format.as_deref().map(TimestampPattern::new).transpose()?;
        check_delimiter(options)?;
        Ok(CsvEncoder { delimiter: options.delimiter(), pattern, types: Vec::new() })
    }

    /// The columns' types (for decimals' scales and nested values).
    pub fn with_types(mut self, types: Vec<DataType>) -> CsvEncoder {
        self.types = types;
        self
    }

    pub fn encode<'v>(&self, values: impl IntoIterator<Item = &'v Value>, out: &mut Vec<u8>) {
        let mut s = String::new();
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            s.clear();
            match v {
                Value::Null => continue,
                Value::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
                Value::Long(x) => s.push_str(&x.to_string()),
                Value::Double(x) => s.push_str(&format_double(*x)),
                Value::Str(x) => s.push_str(x),
                Value::Timestamp(t) => self.timestamp(*t, &mut s),
                Value::Window { start, end } => {
                    self.timestamp(*start, &mut s);
                    s.push('/');
                    self.timestamp(*end, &mut s);
                }
                other => s.push_str(&crate::expr::cast::spark_string(other, self.types.get(i).unwrap_or(&DataType::Null))),
            }
            let quote = s.is_empty() || s.bytes().any(|b| b == self.delimiter || matches!(b, b'"' | b'\n' | b'\r'));
            if quote {
                out.push(b'"');
                out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    fn timestamp(&self, t: i64, s: &mut String) {
        match &self.pattern {
            Some(p) => p.format(t, s),
            None => format_timestamp(t, s),
        }
    }
}

/// Doubles as JSON writes them (shortest round-trip form), with Spark's NaN and Infinity.
fn format_double(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::to_string(&x).unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
