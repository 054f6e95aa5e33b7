//! Avro values to eddy values: a decoded record's fields go to the columns of the same name
//! (exact, then case-insensitive). Logical types: timestamp-millis/micros/nanos are
//! timestamps (or longs), date is a date (or a timestamp, or a long), decimal is a decimal (or
//! a double, or its exact text in a string column), enum and uuid are strings; records,
//! arrays and maps are structs, arrays and maps. Depends on apache-avro and `types`.

use std::sync::Arc;

use apache_avro::schema::Schema as AvroSchema;
use apache_avro::types::Value as Avro;

pub(crate) use crate::formats::Column;
use crate::formats::{DecodeError, DecodeErrorKind};
use crate::time::parse_timestamp;
use crate::types::{DataType, TimeUnit, Value};

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
    convert_typed(&c.name, &c.data_type, c.unit, v, scale, None)
}

/// The writer's schema of a nested value, when known.
fn inner<'s>(schema: Option<&'s AvroSchema>, pick: impl Fn(&'s AvroSchema) -> Option<&'s AvroSchema>) -> Option<&'s AvroSchema> {
    match schema? {
        AvroSchema::Union(u) => u.variants().iter().find_map(pick),
        other => pick(other),
    }
}

/// An Avro value as a value of type `t` (the field called `name`). `schema` is the writer's
/// schema of the value where known (for the scales of nested decimals).
fn convert_typed(
    name: &str,
    t: &DataType,
    unit: TimeUnit,
    v: Avro,
    scale: Option<usize>,
    schema: Option<&AvroSchema>,
) -> Result<Value, DecodeError> {
    let wrong = |found: &str| {
        DecodeError::new(
            DecodeErrorKind::WrongType,
            format!("field \"{name}\" should be a {}, found Avro {found}", crate::types::type_name(t)),
        )
    };
    let scale = scale.or_else(|| schema.and_then(decimal_scale));
    Ok(match v {
        Avro::Null => Value::Null,
        Avro::Union(i, inner_value) => {
            let variant = match schema {
                Some(AvroSchema::Union(u)) => u.variants().get(i as usize),
                _ => None,
            };
            return convert_typed(name, t, unit, *inner_value, scale, variant);
        }
        Avro::Boolean(b) if *t == DataType::Boolean => Value::Bool(b),
        Avro::Int(x) => number(t, unit, i64::from(x)).ok_or_else(|| wrong("int"))?,
        Avro::Long(x) => number(t, unit, x).ok_or_else(|| wrong("long"))?,
        Avro::Float(x) if t.is_floating() => Value::Double(f64::from(x)),
        Avro::Double(x) if t.is_floating() => Value::Double(x),
        Avro::String(s) | Avro::Enum(_, s) => text(name, t, &s)?,
        Avro::Uuid(u) if *t == DataType::Utf8 => Value::str(&u.to_string()),
        Avro::Bytes(b) | Avro::Fixed(_, b) if *t == DataType::Binary => Value::Binary(Arc::from(b)),
        Avro::Bytes(b) | Avro::Fixed(_, b) if *t == DataType::Utf8 => match std::str::from_utf8(&b) {
            Ok(s) => Value::str(s),
            Err(_) => return Err(wrong("bytes that are not UTF-8")),
        },
        Avro::Date(d) => match t {
            DataType::Timestamp(..) => Value::Timestamp(i64::from(d) * DAY_MICROS),
            DataType::Date32 => Value::Date(d),
            DataType::Int64 => Value::Long(i64::from(d)),
            _ => return Err(wrong("date")),
        },
        Avro::TimestampMillis(x) | Avro::LocalTimestampMillis(x) => {
            time(t, x.saturating_mul(1000)).ok_or_else(|| wrong("timestamp-millis"))?
        }
        Avro::TimestampMicros(x) | Avro::LocalTimestampMicros(x) => time(t, x).ok_or_else(|| wrong("timestamp-micros"))?,
        Avro::TimestampNanos(x) | Avro::LocalTimestampNanos(x) => time(t, x.div_euclid(1000)).ok_or_else(|| wrong("timestamp-nanos"))?,
        Avro::TimeMillis(x) if *t == DataType::Int64 => Value::Long(i64::from(x)),
        Avro::TimeMicros(x) if *t == DataType::Int64 => Value::Long(x),
        Avro::Decimal(d) => {
            let bytes: Vec<u8> = Vec::try_from(&d).map_err(|e| wrong(&format!("decimal ({e})")))?;
            decimal(t, &bytes, scale.unwrap_or(0)).ok_or_else(|| wrong("decimal"))?
        }
        Avro::Array(items) => match t {
            DataType::List(f) => {
                let item_schema = inner(schema, |s| match s {
                    AvroSchema::Array(a) => Some(a.items.as_ref()),
                    _ => None,
                });
                let mut out = Vec::with_capacity(items.len());
                for x in items {
                    out.push(convert_typed(name, f.data_type(), unit, x, None, item_schema)?);
                }
                Value::List(Arc::from(out))
            }
            _ => return Err(wrong("array")),
        },
        Avro::Map(entries) => match t {
            DataType::Map(f, _) => {
                let DataType::Struct(kv) = f.data_type() else { return Err(wrong("map")) };
                let value_schema = inner(schema, |s| match s {
                    AvroSchema::Map(m) => Some(m.types.as_ref()),
                    _ => None,
                });
                let mut keys: Vec<String> = entries.keys().cloned().collect();
                keys.sort();
                let mut entries = entries;
                let mut out = Vec::with_capacity(keys.len());
                for k in keys {
                    let Some(x) = entries.remove(&k) else { continue };
                    let key = text(name, kv[0].data_type(), &k)?;
                    out.push((key, convert_typed(name, kv[1].data_type(), unit, x, None, value_schema)?));
                }
                Value::Map(Arc::from(out))
            }
            _ => return Err(wrong("map")),
        },
        Avro::Record(fields) => match t {
            DataType::Struct(want) => {
                let record = inner(schema, |s| match s {
                    AvroSchema::Record(_) => Some(s),
                    _ => None,
                });
                let mut out = vec![Value::Null; want.len()];
                for (field_name, x) in fields {
                    let Some(i) = want
                        .iter()
                        .position(|f| *f.name() == field_name)
                        .or_else(|| want.iter().position(|f| f.name().eq_ignore_ascii_case(&field_name)))
                    else {
                        continue;
                    };
                    let field_schema = match record {
                        Some(AvroSchema::Record(r)) => r.lookup.get(&field_name).and_then(|&p| r.fields.get(p)).map(|f| &f.schema),
                        _ => None,
                    };
                    let path = format!("{name}.{}", want[i].name());
                    out[i] = convert_typed(&path, want[i].data_type(), TimeUnit::default(), x, None, field_schema)?;
                }
                Value::Struct(Arc::from(out))
            }
            _ => return Err(wrong("record")),
        },
        other => return Err(wrong(avro_kind(&other))),
    })
}

fn number(t: &DataType, unit: TimeUnit, x: i64) -> Option<Value> {
    match t {
        DataType::Int64 => Some(Value::Long(x)),
        DataType::Int32 => i32::try_from(x).ok().map(|_| Value::Long(x)),
        DataType::Float64 | DataType::Float32 => Some(Value::Double(x as f64)),
        DataType::Timestamp(..) => Some(Value::Timestamp(x.saturating_mul(unit.micros()))),
        DataType::Decimal128(p, s) => {
            crate::expr::cast::cast_value(&Value::Long(x), &DataType::Int64, &DataType::Decimal128(*p, *s)).filter(|v| !v.is_null())
        }
        _ => None,
    }
}

fn time(t: &DataType, micros: i64) -> Option<Value> {
    match t {
        DataType::Timestamp(..) => Some(Value::Timestamp(micros)),
        DataType::Int64 => Some(Value::Long(micros)),
        DataType::Date32 => Some(Value::Date(micros.div_euclid(DAY_MICROS) as i32)),
        _ => None,
    }
}

fn text(name: &str, t: &DataType, s: &str) -> Result<Value, DecodeError> {
    match t {
        DataType::Utf8 => Ok(Value::Str(Arc::from(s))),
        DataType::Timestamp(..) => parse_timestamp(s)
            .map(Value::Timestamp)
            .map_err(|e| DecodeError::new(DecodeErrorKind::BadTimestamp, format!("field \"{name}\": {e}"))),
        DataType::Date32 => crate::expr::cast::parse_date(s)
            .map(Value::Date)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::BadTimestamp, format!("field \"{name}\": \"{s}\" is not a date"))),
        _ => Err(DecodeError::new(
            DecodeErrorKind::WrongType,
            format!("field \"{name}\" should be a {}, found Avro string", crate::types::type_name(t)),
        )),
    }
}

/// A big-endian two's complement unscaled value with `scale` as a decimal, a double or exact text.
fn decimal(t: &DataType, bytes: &[u8], scale: usize) -> Option<Value> {
    if bytes.len() > 16 {
        return None;
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut unscaled: i128 = if negative { -1 } else { 0 };
    for &b in bytes {
        unscaled = (unscaled << 8) | i128::from(b);
    }
    match t {
        DataType::Float64 => Some(Value::Double(unscaled as f64 / 10f64.powi(scale.min(300) as i32))),
        DataType::Decimal128(p, s) => {
            let from = DataType::Decimal128(38, scale.min(38) as i8);
            crate::expr::cast::cast_value(&Value::Decimal(crate::types::I128::new(unscaled)), &from, &DataType::Decimal128(*p, *s))
                .filter(|v| !v.is_null())
        }
        DataType::Utf8 => {
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
            (Some(x), _) if c.data_type != DataType::Float64 => number(&c.data_type, c.unit, x)
                .ok_or_else(|| DecodeError::new(DecodeErrorKind::WrongType, format!("the default of \"{}\" is a number", c.name)))?,
            (_, Some(x)) if c.data_type == DataType::Float64 => Value::Double(x),
            _ => {
                return Err(DecodeError::new(DecodeErrorKind::WrongType, format!("the default of \"{}\" does not fit the column", c.name)))
            }
        },
        serde_json::Value::String(s) => text(&c.name, &c.data_type, s)?,
        _ => return Err(DecodeError::new(DecodeErrorKind::WrongType, format!("the default of \"{}\" does not fit the column", c.name))),
    })
}
