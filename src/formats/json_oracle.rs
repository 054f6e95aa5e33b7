//! Test oracle: the JSON decoder as it was before the hand-written scanner — serde_json's
//! Deserializer walked with visitors. The differential tests in `json_diff_tests` hold the
//! scanner to its results. Test-only; depends on serde_json, `time` and `types`.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::json::type_phrase;
use super::Column;
use super::{DecodeError, DecodeErrorKind};
use crate::time::parse_timestamp;
use crate::types::{DataType, Schema, Value};

/// The old decoder, verbatim but for its name.
pub(super) struct OracleDecoder {
    columns: Vec<Column>,
}

impl OracleDecoder {
    /// `needed[i]` says whether column i is read by any query; others are skipped unparsed.
    /// Only the schema's own columns are decoded (metadata columns are filled by the caller).
    pub(super) fn new(schema: &Schema, needed: &[bool]) -> OracleDecoder {
        let columns = Column::of(schema, needed);
        OracleDecoder { columns }
    }

    /// Decodes `payload` into `row[..schema.len()]`, which must be at least that long.
    pub(super) fn decode(&self, payload: &[u8], row: &mut [Value]) -> Result<(), DecodeError> {
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
    decoder: &'a OracleDecoder,
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
    decoder: &'a OracleDecoder,
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
        self.fail(DecodeErrorKind::WrongType, format!("field \"{}\" should be a {}, found {found}", c.name, type_phrase(&c.data_type)))
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
        f.write_str(&type_phrase(&self.column.data_type))
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
            DataType::Int64 => Ok(Value::Long(v)),
            DataType::Float64 => Ok(Value::Double(v as f64)),
            DataType::Timestamp(..) => Ok(Value::Timestamp(v.saturating_mul(self.column.unit.micros()))),
            _ => Err(self.wrong("a number")),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) if self.column.data_type == DataType::Float64 => Ok(Value::Double(v as f64)),
            Err(_) => Err(self.wrong("a number too large for a long")),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.column.data_type {
            DataType::Float64 => Ok(Value::Double(v)),
            DataType::Timestamp(..) if v.is_finite() => Ok(Value::Timestamp((v * self.column.unit.micros() as f64) as i64)),
            DataType::Int64 => Err(self.wrong("a number with a fraction")),
            _ => Err(self.wrong("a number")),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.column.data_type {
            DataType::Utf8 => Ok(Value::Str(Arc::from(v))),
            DataType::Timestamp(..) => parse_timestamp(v)
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
