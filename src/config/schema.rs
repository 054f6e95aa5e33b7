//! The `schema:` of a source: an ordered map of column name to type. Types are `string`,
//! `long` (`bigint`), `int`, `double` (`float`), `boolean`, `timestamp`, `date`,
//! `decimal(p,s)`, `binary`, `array<T>`, `map<K,V>`, `struct<name: T, ...>`; a trailing `?`
//! makes a column nullable; `timestamp(s)`, `timestamp(ms)`, `timestamp(us)` say what unit a
//! numeric timestamp is in (default milliseconds).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::types::{parse_type, timestamp_type, DataType, Field, Schema, TimeUnit};

/// A parsed schema, in the order the file lists the columns.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaConfig {
    pub schema: Schema,
}

impl SchemaConfig {
    /// "a, b, c", for error messages.
    pub fn column_list(&self) -> String {
        self.schema.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Parses one type spec such as `string?`, `timestamp(s)`, `decimal(10,2)` or
/// `array<struct<id: long, name: string>>`.
pub fn parse_field_type(spec: &str) -> Result<(DataType, bool, TimeUnit), String> {
    let s = spec.trim();
    let (s, nullable) = match s.strip_suffix('?') {
        Some(rest) => (rest.trim_end(), true),
        None => (s, false),
    };
    let lower = s.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("timestamp(") {
        let unit = match rest.strip_suffix(')').map(str::trim) {
            Some("s") => TimeUnit::Seconds,
            Some("ms") => TimeUnit::Millis,
            Some("us") => TimeUnit::Micros,
            _ => return Err(format!("unknown timestamp unit in \"{spec}\"; write timestamp(s), timestamp(ms) or timestamp(us)")),
        };
        return Ok((timestamp_type(), nullable, unit));
    }
    let data_type = parse_type(s).map_err(|e| {
        if e.starts_with("unknown type") {
            format!("unknown type \"{spec}\"; use string, long, int, double, boolean, timestamp, date, decimal(p,s), array<T>, map<K,V> or struct<name: T, ...> (append ? for nullable, e.g. \"string?\")")
        } else {
            e
        }
    })?;
    Ok((data_type, nullable, TimeUnit::Millis))
}

impl<'de> Deserialize<'de> for SchemaConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SchemaConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of column name to type, e.g. { time: timestamp, action: string }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SchemaConfig, A::Error> {
                let mut fields: Vec<Field> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let spec: String = map.next_value()?;
                    let (data_type, nullable, unit) = parse_field_type(&spec).map_err(de::Error::custom)?;
                    if fields.iter().any(|f| f.name.eq_ignore_ascii_case(&name)) {
                        return Err(de::Error::custom(format!("column \"{name}\" is declared twice")));
                    }
                    let mut field = Field::new(name, data_type, nullable);
                    field.numeric_unit = unit;
                    fields.push(field);
                }
                if fields.is_empty() {
                    return Err(de::Error::custom("a schema needs at least one column"));
                }
                Ok(SchemaConfig { schema: Schema::new(fields) })
            }
        }
        d.deserialize_map(V)
    }
}
