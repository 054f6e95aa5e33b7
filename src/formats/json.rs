//! JSON records. The decoder walks one object with serde_json, matching keys against the
//! schema without allocating, parsing only the columns a query reads and skipping the rest.
//! The encoder writes objects in select-list order, timestamps as RFC 3339 UTC milliseconds.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::Column;
use super::{DecodeError, DecodeErrorKind};
use crate::time::{parse_timestamp, write_timestamp_bytes};
use crate::types::{DataType, Schema, Value};

/// Decodes JSON objects into rows of a schema.
pub struct JsonDecoder {
    columns: Vec<Column>,
}

impl JsonDecoder {
    /// `needed[i]` says whether column i is read by any query; others are skipped unparsed.
    /// Only the schema's own columns are decoded (metadata columns are filled by the caller).
    pub fn new(schema: &Schema, needed: &[bool]) -> JsonDecoder {
        let columns = Column::of(schema, needed);
        JsonDecoder { columns }
    }

    /// Decodes `payload` into `row[..schema.len()]`, which must be at least that long.
    pub fn decode(&self, payload: &[u8], row: &mut [Value]) -> Result<(), DecodeError> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError::new(DecodeErrorKind::Malformed, "empty payload; expected a JSON object"));
        }
        for v in row.iter_mut().take(self.columns.len()) {
            *v = Value::Null;
        }
        let failure = RefCell::new(None);
        let mut seen: u128 = 0;
        let mut de = serde_json::Deserializer::from_slice(payload);
        let result = RowSeed { decoder: self, row, seen: &mut seen, failure: &failure }.deserialize(&mut de).and_then(|()| de.end());
        if let Err(e) = result {
            return Err(failure.into_inner().unwrap_or_else(|| DecodeError::new(DecodeErrorKind::Malformed, format!("invalid JSON: {e}"))));
        }
        for (i, c) in self.columns.iter().enumerate() {
            if c.needed && !c.nullable && row[i].is_null() {
                let why = if i < 128 && seen & (1 << i) != 0 { "is null" } else { "is missing" };
                return Err(DecodeError::new(DecodeErrorKind::MissingField, format!("required field \"{}\" {why}", c.name)));
            }
        }
        Ok(())
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.as_bytes() == key)
            .or_else(|| self.columns.iter().position(|c| c.name.as_bytes().eq_ignore_ascii_case(key)))
    }
}

struct RowSeed<'a> {
    decoder: &'a JsonDecoder,
    row: &'a mut [Value],
    seen: &'a mut u128,
    failure: &'a RefCell<Option<DecodeError>>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Producers write fields in the same order record after record: try the column after
        // the last one found before searching them all.
        let mut hint = 0;
        while let Some(index) = map.next_key_seed(KeySeed { decoder: self.decoder, hint })? {
            if let Some(i) = index {
                hint = i + 1;
            }
            match index {
                Some(i) if self.decoder.columns[i].needed => {
                    let c = &self.decoder.columns[i];
                    if i < 128 {
                        *self.seen |= 1 << i;
                    }
                    let v = map.next_value_seed(ValueSeed { column: c, failure: self.failure })?;
                    self.row[i] = v;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct KeySeed<'a> {
    decoder: &'a JsonDecoder,
    /// The column this key most likely names.
    hint: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        // As bytes: serde_json then skips the UTF-8 validation of every key, which only has
        // to equal one of the schema's names.
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Option<usize>, E> {
        if self.decoder.columns.get(self.hint).is_some_and(|c| c.name.as_bytes() == v) {
            return Ok(Some(self.hint));
        }
        Ok(self.decoder.find(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.decoder.find(v.as_bytes()))
    }
}

struct ValueSeed<'a> {
    column: &'a Column,
    failure: &'a RefCell<Option<DecodeError>>,
}

impl ValueSeed<'_> {
    fn fail<E: de::Error>(&self, kind: DecodeErrorKind, message: String) -> E {
        let e = DecodeError::new(kind, message);
        let text = e.message.clone();
        *self.failure.borrow_mut() = Some(e);
        E::custom(text)
    }

    fn wrong<E: de::Error>(&self, found: &str) -> E {
        let c = self.column;
        self.fail(DecodeErrorKind::WrongType, format!("field \"{}\" should be a {}, found {found}", c.name, type_phrase(c.data_type)))
    }
}

fn type_phrase(t: DataType) -> &'static str {
    match t {
        DataType::String => "string",
        DataType::Long => "whole number (long)",
        DataType::Double => "number (double)",
        DataType::Boolean => "boolean",
        DataType::Timestamp => "timestamp (RFC 3339 string or epoch number)",
        DataType::Window | DataType::Null => "value",
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(type_phrase(self.column.data_type))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.column.data_type {
            DataType::Boolean => Ok(Value::Bool(v)),
            _ => Err(self.wrong("a boolean")),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.column.data_type {
            DataType::Long => Ok(Value::Long(v)),
            DataType::Double => Ok(Value::Double(v as f64)),
            DataType::Timestamp => Ok(Value::Timestamp(v.saturating_mul(self.column.unit.micros()))),
            _ => Err(self.wrong("a number")),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) if self.column.data_type == DataType::Double => Ok(Value::Double(v as f64)),
            Err(_) => Err(self.wrong("a number too large for a long")),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.column.data_type {
            DataType::Double => Ok(Value::Double(v)),
            DataType::Timestamp if v.is_finite() => Ok(Value::Timestamp((v * self.column.unit.micros() as f64) as i64)),
            DataType::Long => Err(self.wrong("a number with a fraction")),
            _ => Err(self.wrong("a number")),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.column.data_type {
            DataType::String => Ok(Value::Str(Arc::from(v))),
            DataType::Timestamp => parse_timestamp(v)
                .map(Value::Timestamp)
                .map_err(|e| self.fail(DecodeErrorKind::BadTimestamp, format!("field \"{}\": {e}", self.column.name))),
            _ => Err(self.wrong("a string")),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(self.wrong("an object"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(self.wrong("an array"))
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

fn write_json_string(s: &str, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Field, TimeUnit};

    fn decoder() -> JsonDecoder {
        let mut secs = Field::new("secs", DataType::Timestamp, true);
        secs.numeric_unit = TimeUnit::Seconds;
        let schema = Schema::new(vec![
            Field::new("time", DataType::Timestamp, false),
            Field::new("action", DataType::String, false),
            Field::new("n", DataType::Long, true),
            Field::new("x", DataType::Double, true),
            Field::new("ok", DataType::Boolean, true),
            secs,
        ]);
        JsonDecoder::new(&schema, &[true; 6])
    }

    fn decode(json: &str) -> Result<Vec<Value>, DecodeError> {
        let mut row = vec![Value::Null; 6];
        decoder().decode(json.as_bytes(), &mut row).map(|()| row)
    }

    #[test]
    fn keys_match_in_any_order_escaped_or_in_another_case() {
        let d = decoder();
        let mut row = vec![Value::Null; 6];
        // The same decoder sees the schema's order, then another one (the key hint misses).
        d.decode(br#"{"time":"2016-07-26T00:00:00Z","action":"Open","n":1}"#, &mut row).unwrap();
        assert_eq!((&row[1], &row[2]), (&Value::str("Open"), &Value::Long(1)));
        d.decode(br#"{"n":2,"x":1.5,"ACTION":"Close","\u0074ime":"2016-07-26T00:00:00Z","unknown":"\u00e9"}"#, &mut row).unwrap();
        assert_eq!(
            (&row[0], &row[1], &row[2], &row[3]),
            (&Value::Timestamp(1_469_491_200_000_000), &Value::str("Close"), &Value::Long(2), &Value::Double(1.5))
        );
    }

    #[test]
    fn decodes_typed_fields() {
        let row = decode(r#"{"time":"2016-07-26T00:00:00Z","action":"Open","n":3,"x":2,"ok":true,"secs":1469491200,"extra":[1,{"a":2}]}"#)
            .unwrap();
        assert_eq!(row[0], Value::Timestamp(1_469_491_200_000_000));
        assert_eq!(row[1], Value::str("Open"));
        assert_eq!(row[2], Value::Long(3));
        assert_eq!(row[3], Value::Double(2.0));
        assert_eq!(row[4], Value::Bool(true));
        assert_eq!(row[5], Value::Timestamp(1_469_491_200_000_000));
        let row = decode(r#"{"time":1469491200000,"action":"Cl\u006fse"}"#).unwrap();
        assert_eq!(row[0], Value::Timestamp(1_469_491_200_000_000), "numbers are epoch millis by default");
        assert_eq!(row[1], Value::str("Close"));
        assert_eq!(row[2], Value::Null, "nullable and absent");
    }

    #[test]
    fn classifies_bad_records() {
        let kind = |json: &str| decode(json).unwrap_err().kind;
        assert_eq!(kind("{not json"), DecodeErrorKind::Malformed);
        assert_eq!(kind("[1,2]"), DecodeErrorKind::Malformed);
        assert_eq!(kind(""), DecodeErrorKind::Malformed);
        assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z"} trailing"#), DecodeErrorKind::Malformed);
        assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z"}"#), DecodeErrorKind::MissingField);
        assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z","action":null}"#), DecodeErrorKind::MissingField);
        assert_eq!(kind(r#"{"time":"tomorrow","action":"Open"}"#), DecodeErrorKind::BadTimestamp);
        assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z","action":5}"#), DecodeErrorKind::WrongType);
        assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z","action":"a","n":1.5}"#), DecodeErrorKind::WrongType);
        let e = decode(r#"{"time":"2016-07-26T00:00:00Z"}"#).unwrap_err();
        assert_eq!(e.message, "required field \"action\" is missing");
        let e = decode(r#"{"time":"2016-07-26T00:00:00Z","action":{}}"#).unwrap_err();
        assert_eq!(e.message, "field \"action\" should be a string, found an object");
    }

    #[test]
    fn unneeded_columns_are_not_checked() {
        let schema = Schema::new(vec![Field::new("a", DataType::Long, false), Field::new("b", DataType::Long, false)]);
        let d = JsonDecoder::new(&schema, &[true, false]);
        let mut row = vec![Value::Null; 2];
        d.decode(br#"{"a":1,"b":"not a number"}"#, &mut row).unwrap();
        assert_eq!(row, vec![Value::Long(1), Value::Null]);
    }

    #[test]
    fn encodes_in_select_order() {
        let e = JsonEncoder::new(&["action", "window_start", "n", "avg", "w", "q\"uote"]);
        let mut out = Vec::new();
        let row = [
            Value::str("Open"),
            Value::Timestamp(1_469_491_200_000_000),
            Value::Long(1044),
            Value::Double(f64::NAN),
            Value::Window { start: 0, end: 3_600_000_000 },
            Value::str("a\"b\n"),
        ];
        e.encode(&row, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"action":"Open","window_start":"2016-07-26T00:00:00.000Z","n":1044,"avg":null,"w":{"start":"1970-01-01T00:00:00.000Z","end":"1970-01-01T01:00:00.000Z"},"q\"uote":"a\"b\n"}"#
        );
    }
}
