//! Avro values to eddy values: a decoded record's fields go to the columns of the same name
//! (exact, then case-insensitive). Logical types: timestamp-millis/micros/nanos and date are
//! timestamps (or longs), decimal is a double (or its exact text in a string column), enum
//! and uuid are strings. Depends on apache-avro and `types`.

use std::sync::Arc;

use apache_avro::schema::Schema as AvroSchema;
use apache_avro::types::Value as Avro;

pub(crate) use crate::formats::Column;
use crate::formats::{DecodeError, DecodeErrorKind};
use crate::time::parse_timestamp;
use crate::types::{DataType, Value};

const DAY_MICROS: i64 = 86_400_000_000;

/// Fills `row` from a record decoded with `schema` (the writer's, which gives the scales of
/// decimal fields), then applies Avro's resolution rules for the `reader` schema by field
/// name: a reader field the writer lacks takes its default (or the record is rejected), a
/// column the reader lacks is NULL. (apache-avro's own resolution rejects valid bytes-backed
/// decimals narrower than their precision, so eddy resolves records itself.)
pub fn fill_row(
    columns: &[Column],
    value: Avro,
    schema: &AvroSchema,
    reader: Option<&AvroSchema>,
    row: &mut [Value],
) -> Result<(), DecodeError> {
    let Avro::Record(fields) = value else {
        return Err(DecodeError::new(DecodeErrorKind::Malformed, "the Avro schema is not a record"));
    };
    let record = match schema {
        AvroSchema::Record(r) => Some(r),
        _ => None,
    };
    for v in row.iter_mut().take(columns.len()) {
        *v = Value::Null;
    }
    let mut seen = vec![false; columns.len()];
    for (name, v) in fields {
        let Some(i) =
            columns.iter().position(|c| c.name == name).or_else(|| columns.iter().position(|c| c.name.eq_ignore_ascii_case(&name)))
        else {
            continue;
        };
        let c = &columns[i];
        seen[i] = true;
        if !c.needed {
            continue;
        }
        let scale = record.and_then(|r| r.lookup.get(&name).and_then(|&p| r.fields.get(p))).and_then(|f| decimal_scale(&f.schema));
        row[i] = convert(c, v, scale)?;
    }
    if let Some(AvroSchema::Record(r)) = reader {
        for (i, c) in columns.iter().enumerate() {
            let field =
                r.fields.iter().find(|f| f.name == c.name).or_else(|| r.fields.iter().find(|f| f.name.eq_ignore_ascii_case(&c.name)));
            match field {
                None => row[i] = Value::Null,
                Some(_) if seen[i] || !c.needed => {}
                Some(f) => match &f.default {
                    Some(d) => row[i] = from_json_default(c, d)?,
                    None => {
                        return Err(DecodeError::new(
                            DecodeErrorKind::Malformed,
                            format!("the reader schema's field \"{}\" has no default and the record does not have it", f.name),
                        ))
                    }
                },
            }
        }
    }
    for (i, c) in columns.iter().enumerate() {
        if c.needed && !c.nullable && row[i].is_null() {
            return Err(DecodeError::new(DecodeErrorKind::MissingField, format!("required field \"{}\" is missing or null", c.name)));
        }
    }
    Ok(())
}

fn decimal_scale(schema: &AvroSchema) -> Option<usize> {
    match schema {
        AvroSchema::Decimal(d) => Some(d.scale),
        AvroSchema::Union(u) => u.variants().iter().find_map(decimal_scale),
        _ => None,
    }
}

fn convert(c: &Column, v: Avro, scale: Option<usize>) -> Result<Value, DecodeError> {
    let wrong = |found: &str| {
        DecodeError::new(DecodeErrorKind::WrongType, format!("field \"{}\" should be a {}, found Avro {found}", c.name, c.data_type))
    };
    let t = c.data_type;
    Ok(match v {
        Avro::Null => Value::Null,
        Avro::Union(_, inner) => return convert(c, *inner, scale),
        Avro::Boolean(b) if t == DataType::Boolean => Value::Bool(b),
        Avro::Int(x) => number(c, i64::from(x)).ok_or_else(|| wrong("int"))?,
        Avro::Long(x) => number(c, x).ok_or_else(|| wrong("long"))?,
        Avro::Float(x) if t == DataType::Double => Value::Double(f64::from(x)),
        Avro::Double(x) if t == DataType::Double => Value::Double(x),
        Avro::String(s) | Avro::Enum(_, s) => text(c, &s)?,
        Avro::Uuid(u) if t == DataType::String => Value::str(&u.to_string()),
        Avro::Bytes(b) | Avro::Fixed(_, b) if t == DataType::String => match std::str::from_utf8(&b) {
            Ok(s) => Value::str(s),
            Err(_) => return Err(wrong("bytes that are not UTF-8")),
        },
        Avro::Date(d) => match t {
            DataType::Timestamp => Value::Timestamp(i64::from(d) * DAY_MICROS),
            DataType::Long => Value::Long(i64::from(d)),
            _ => return Err(wrong("date")),
        },
        Avro::TimestampMillis(x) | Avro::LocalTimestampMillis(x) => {
            time(c, x.saturating_mul(1000)).ok_or_else(|| wrong("timestamp-millis"))?
        }
        Avro::TimestampMicros(x) | Avro::LocalTimestampMicros(x) => time(c, x).ok_or_else(|| wrong("timestamp-micros"))?,
        Avro::TimestampNanos(x) | Avro::LocalTimestampNanos(x) => time(c, x.div_euclid(1000)).ok_or_else(|| wrong("timestamp-nanos"))?,
        Avro::TimeMillis(x) if t == DataType::Long => Value::Long(i64::from(x)),
        Avro::TimeMicros(x) if t == DataType::Long => Value::Long(x),
        Avro::Decimal(d) => {
            let bytes: Vec<u8> = Vec::try_from(&d).map_err(|e| wrong(&format!("decimal ({e})")))?;
            decimal(c, &bytes, scale.unwrap_or(0)).ok_or_else(|| wrong("decimal"))?
        }
        other => return Err(wrong(avro_kind(&other))),
    })
}

fn number(c: &Column, x: i64) -> Option<Value> {
    match c.data_type {
        DataType::Long => Some(Value::Long(x)),
        DataType::Double => Some(Value::Double(x as f64)),
        DataType::Timestamp => Some(Value::Timestamp(x.saturating_mul(c.unit.micros()))),
        _ => None,
    }
}

fn time(c: &Column, micros: i64) -> Option<Value> {
    match c.data_type {
        DataType::Timestamp => Some(Value::Timestamp(micros)),
        DataType::Long => Some(Value::Long(micros)),
        _ => None,
    }
}

fn text(c: &Column, s: &str) -> Result<Value, DecodeError> {
    match c.data_type {
        DataType::String => Ok(Value::Str(Arc::from(s))),
        DataType::Timestamp => parse_timestamp(s)
            .map(Value::Timestamp)
            .map_err(|e| DecodeError::new(DecodeErrorKind::BadTimestamp, format!("field \"{}\": {e}", c.name))),
        _ => Err(DecodeError::new(
            DecodeErrorKind::WrongType,
            format!("field \"{}\" should be a {}, found Avro string", c.name, c.data_type),
        )),
    }
}

/// A big-endian two's complement unscaled value with `scale` as a double or exact text.
fn decimal(c: &Column, bytes: &[u8], scale: usize) -> Option<Value> {
    if bytes.len() > 16 {
        return None;
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut unscaled: i128 = if negative { -1 } else { 0 };
    for &b in bytes {
        unscaled = (unscaled << 8) | i128::from(b);
    }
    match c.data_type {
        DataType::Double => Some(Value::Double(unscaled as f64 / 10f64.powi(scale.min(300) as i32))),
        DataType::String => {
            let digits = unscaled.unsigned_abs().to_string();
            let digits = if digits.len() <= scale { format!("{}{digits}", "0".repeat(scale + 1 - digits.len())) } else { digits };
            let (int, frac) = digits.split_at(digits.len() - scale);
            let sign = if unscaled < 0 { "-" } else { "" };
            Some(Value::str(&if scale == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }))
        }
        _ => None,
    }
}

fn avro_kind(v: &Avro) -> &'static str {
    match v {
        Avro::Boolean(_) => "boolean",
        Avro::Float(_) | Avro::Double(_) => "floating point number",
        Avro::Bytes(_) | Avro::Fixed(..) => "bytes",
        Avro::Array(_) => "array",
        Avro::Map(_) => "map",
        Avro::Record(_) => "record",
        Avro::Uuid(_) => "uuid",
        Avro::TimeMillis(_) | Avro::TimeMicros(_) => "time of day",
        _ => "value",
    }
}

/// A reader field's default (JSON, of the union's first branch) as a column value.
fn from_json_default(c: &Column, d: &serde_json::Value) -> Result<Value, DecodeError> {
    Ok(match d {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) if c.data_type == DataType::Boolean => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(x), _) if c.data_type != DataType::Double => number(c, x)
                .ok_or_else(|| DecodeError::new(DecodeErrorKind::WrongType, format!("the default of \"{}\" is a number", c.name)))?,
            (_, Some(x)) if c.data_type == DataType::Double => Value::Double(x),
            _ => {
                return Err(DecodeError::new(DecodeErrorKind::WrongType, format!("the default of \"{}\" does not fit the column", c.name)))
            }
        },
        serde_json::Value::String(s) => text(c, s)?,
        _ => return Err(DecodeError::new(DecodeErrorKind::WrongType, format!("the default of \"{}\" does not fit the column", c.name))),
    })
}
