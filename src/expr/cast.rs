//! CAST with Spark's non-ANSI rules: a value that does not convert becomes NULL, doubles
//! truncate toward zero, integers narrow by wrapping, strings are trimmed before they are
//! parsed, timestamps convert to and from epoch seconds, and values print as Spark prints them
//! (`Double.toString`, `2016-07-26 00:00:00`, `[1, 2]`, `{a, 1}`, `{k -> v}`).

use std::sync::Arc;

use crate::time::{civil_from_days, format_timestamp, parse_timestamp, MICROS_PER_DAY, MICROS_PER_SECOND};
use crate::types::{is_timestamp, DataType, Value, I128};

/// Converts `v` (of type `from`) to `to`; `None` when eddy leaves the pair to Arrow's cast.
pub fn cast_value(v: &Value, from: &DataType, to: &DataType) -> Option<Value> {
    if v.is_null() {
        return Some(Value::Null);
    }
    Some(match to {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Value::Str(Arc::from(spark_string(v, from))),
        DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 => {
            let wide = match v {
                Value::Long(x) => Some(*x),
                Value::Double(x) => Some(if x.is_nan() { 0 } else { *x as i64 }),
                Value::Bool(b) => Some(i64::from(*b)),
                Value::Str(s) => parse_long(s),
                Value::Timestamp(t) => Some(t.div_euclid(MICROS_PER_SECOND)),
                Value::Decimal(d) => Some((d.get() / 10i128.pow(scale_of(from))) as i64),
                _ => None,
            };
            match (wide, to) {
                (None, _) => Value::Null,
                (Some(x), DataType::Int32) => Value::Long(i64::from(x as i32)),
                (Some(x), DataType::Int16) => Value::Long(i64::from(x as i16)),
                (Some(x), DataType::Int8) => Value::Long(i64::from(x as i8)),
                (Some(x), _) => Value::Long(x),
            }
        }
        DataType::Float64 | DataType::Float32 => match v {
            Value::Long(x) => Value::Double(*x as f64),
            Value::Double(x) => Value::Double(*x),
            Value::Bool(b) => Value::Double(if *b { 1.0 } else { 0.0 }),
            Value::Str(s) => parse_double(s).map_or(Value::Null, Value::Double),
            Value::Timestamp(t) => Value::Double(*t as f64 / MICROS_PER_SECOND as f64),
            Value::Decimal(d) => Value::Double(d.get() as f64 / 10f64.powi(scale_of(from) as i32)),
            _ => Value::Null,
        },
        DataType::Boolean => match v {
            Value::Bool(b) => Value::Bool(*b),
            Value::Long(x) => Value::Bool(*x != 0),
            Value::Double(x) => Value::Bool(*x != 0.0),
            Value::Decimal(d) => Value::Bool(d.get() != 0),
            Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "y" | "yes" | "1" => Value::Bool(true),
                "f" | "false" | "n" | "no" | "0" => Value::Bool(false),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        t if is_timestamp(t) => match v {
            Value::Timestamp(t) => Value::Timestamp(*t),
            Value::Str(s) => parse_timestamp(s.trim()).map_or(Value::Null, Value::Timestamp),
            Value::Long(x) => Value::Timestamp(x.saturating_mul(MICROS_PER_SECOND)),
            Value::Double(x) if x.is_finite() => Value::Timestamp((x * MICROS_PER_SECOND as f64) as i64),
            Value::Date(d) => Value::Timestamp(i64::from(*d) * MICROS_PER_DAY),
            _ => Value::Null,
        },
        DataType::Date32 => match v {
            Value::Date(d) => Value::Date(*d),
            Value::Timestamp(t) => Value::Date(t.div_euclid(MICROS_PER_DAY) as i32),
            Value::Str(s) => parse_date(s).map_or(Value::Null, Value::Date),
            _ => Value::Null,
        },
        DataType::Decimal128(p, s) => {
            let scale = *s as u32;
            let unscaled: Option<i128> = match v {
                Value::Long(x) => i128::from(*x).checked_mul(10i128.pow(scale)),
                Value::Double(x) if x.is_finite() => decimal_from_text(&format_double(*x), scale),
                Value::Str(text) => decimal_from_text(text.trim(), scale),
                Value::Bool(b) => i128::from(*b).checked_mul(10i128.pow(scale)),
                Value::Decimal(d) => rescale(d.get(), scale_of(from), scale),
                _ => None,
            };
            match unscaled {
                Some(u) if u.unsigned_abs() < 10u128.pow(u32::from(*p)) => Value::Decimal(I128::new(u)),
                _ => Value::Null,
            }
        }
        _ => return None,
    })
}

fn scale_of(t: &DataType) -> u32 {
    match t {
        DataType::Decimal128(_, s) => (*s).max(0) as u32,
        _ => 0,
    }
}

/// Changes a decimal's scale, rounding half up (away from zero) when digits are dropped.
fn rescale(v: i128, from: u32, to: u32) -> Option<i128> {
    if to >= from {
        v.checked_mul(10i128.pow(to - from))
    } else {
        let div = 10i128.pow(from - to);
        let q = v / div;
        let r = (v % div).abs();
        Some(if r * 2 >= div { q + v.signum() } else { q })
    }
}

/// "12.345" at `scale` digits, rounded half up; exponents are accepted ("1.5E3").
fn decimal_from_text(text: &str, scale: u32) -> Option<i128> {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (neg, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let all: String = format!("{int}{frac}");
    let value: i128 = if all.is_empty() { 0 } else { all.parse().ok()? };
    // value * 10^(exp - frac.len()) at scale `scale`.
    let shift = exp - frac.len() as i32 + scale as i32;
    let v = if shift >= 0 { value.checked_mul(10i128.checked_pow(shift as u32)?)? } else { rescale(value, (-shift) as u32, 0)? };
    Some(if neg { -v } else { v })
}

/// Spark accepts "12", " 12 ", "+12" and also "12.7" (truncated) when casting to an integer.
fn parse_long(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Some(v);
    }
    let (int, frac) = t.split_once('.')?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match int {
        "" | "+" | "-" => Some(0),
        _ => int.parse::<i64>().ok(),
    }
}

/// Java's `Double.parseDouble` on trimmed text, as Spark's cast uses it.
fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim();
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => {
            let t = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
            if t.bytes().any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') {
                return None;
            }
            t.parse().ok()
        }
    }
}

/// `yyyy-MM-dd`, optionally followed by a time part (which is ignored), as Spark's cast.
pub fn parse_date(s: &str) -> Option<i32> {
    let t = s.trim();
    let date = t.split([' ', 'T']).next()?;
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next().map_or(Some(1), |p| p.parse().ok())?;
    let d: i64 = parts.next().map_or(Some(1), |p| p.parse().ok())?;
    if parts.next().is_some() || !(1..=12).contains(&m) || d < 1 || d > crate::time::days_in_month(y, m) {
        return None;
    }
    Some(crate::time::days_from_civil(y, m, d) as i32)
}

/// The text CAST(v AS STRING) gives in Spark, for a value of type `t`.
pub fn spark_string(v: &Value, t: &DataType) -> String {
    match v {
        Value::Null => "NULL".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Long(x) => x.to_string(),
        Value::Double(x) if matches!(t, DataType::Float32) => format_float(*x as f32),
        Value::Double(x) => format_double(*x),
        Value::Str(s) => s.to_string(),
        Value::Timestamp(ts) => timestamp_string(*ts),
        Value::Window { start, end } => format!("{{{}, {}}}", timestamp_string(*start), timestamp_string(*end)),
        Value::Date(d) => date_string(*d),
        Value::Decimal(d) => decimal_string(d.get(), scale_of(t)),
        Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        Value::List(items) => {
            let inner = match t {
                DataType::List(f) | DataType::LargeList(f) => f.data_type().clone(),
                _ => DataType::Null,
            };
            let parts: Vec<String> = items.iter().map(|i| nested_string(i, &inner)).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Struct(items) => {
            let parts: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(k, i)| {
                    let ft = match t {
                        DataType::Struct(fields) => fields.get(k).map_or(DataType::Null, |f| f.data_type().clone()),
                        _ => DataType::Null,
                    };
                    nested_string(i, &ft)
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Map(entries) => {
            let (kt, vt) = match t {
                DataType::Map(f, _) => match f.data_type() {
                    DataType::Struct(kv) if kv.len() == 2 => (kv[0].data_type().clone(), kv[1].data_type().clone()),
                    _ => (DataType::Null, DataType::Null),
                },
                _ => (DataType::Null, DataType::Null),
            };
            let parts: Vec<String> =
                entries.iter().map(|(k, v)| format!("{} -> {}", nested_string(k, &kt), nested_string(v, &vt))).collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Inside a collection Spark prints NULL as `null`.
fn nested_string(v: &Value, t: &DataType) -> String {
    if v.is_null() {
        "null".to_string()
    } else {
        spark_string(v, t)
    }
}

/// `2016-07-26 00:00:00`, with a fraction only when there is one (Spark's cast to string).
pub fn timestamp_string(t: i64) -> String {
    let mut s = String::new();
    format_timestamp(t, &mut s);
    // "YYYY-MM-DDTHH:MM:SS.mmmZ" → "YYYY-MM-DD HH:MM:SS[.ffffff]"
    let base = s.get(..19).unwrap_or(&s).replacen('T', " ", 1);
    let micros = t.rem_euclid(MICROS_PER_SECOND);
    if micros == 0 {
        base
    } else {
        let frac = format!("{micros:06}");
        format!("{base}.{}", frac.trim_end_matches('0'))
    }
}

/// `yyyy-MM-dd`.
pub fn date_string(days: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A decimal's digits with its scale: `-12.30`.
pub fn decimal_string(unscaled: i128, scale: u32) -> String {
    let neg = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let s = scale as usize;
    let body = if s == 0 {
        digits
    } else if digits.len() > s {
        format!("{}.{}", &digits[..digits.len() - s], &digits[digits.len() - s..])
    } else {
        format!("0.{}{}", "0".repeat(s - digits.len()), digits)
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Java's `Double.toString`: plain notation with at least one fractional digit for
/// 1e-3 <= |x| < 1e7, otherwise `d.dddE±n`.
pub fn format_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Rust's shortest round-trip digits in scientific form: "1.2345e-5".
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exp}")
    }
}

/// Java's `Float.toString`, for float columns.
fn format_float(x: f32) -> String {
    if !x.is_finite() || x == 0.0 {
        return format_double(f64::from(x));
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exp}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(v: Value, from: DataType, to: DataType) -> Value {
        cast_value(&v, &from, &to).unwrap()
    }

    #[test]
    fn strings_parse_as_spark_parses_them() {
        assert_eq!(cast(Value::str(" 12 "), DataType::Utf8, DataType::Int64), Value::Long(12));
        assert_eq!(cast(Value::str("12.7"), DataType::Utf8, DataType::Int64), Value::Long(12));
        assert_eq!(cast(Value::str("x"), DataType::Utf8, DataType::Int64), Value::Null);
        assert_eq!(cast(Value::str("4294967297"), DataType::Utf8, DataType::Int32), Value::Long(1), "narrowing wraps");
        assert_eq!(cast(Value::str("1e3"), DataType::Utf8, DataType::Float64), Value::Double(1000.0));
        assert_eq!(cast(Value::str("yes"), DataType::Utf8, DataType::Boolean), Value::Bool(true));
        assert_eq!(cast(Value::str("2016-07-26"), DataType::Utf8, DataType::Date32), Value::Date(17008));
        assert_eq!(cast(Value::str("1.005"), DataType::Utf8, DataType::Decimal128(5, 2)), Value::Decimal(I128::new(101)));
        assert_eq!(cast(Value::str("12345.6"), DataType::Utf8, DataType::Decimal128(5, 2)), Value::Null, "overflow is NULL");
    }

    #[test]
    fn values_print_as_spark_prints_them() {
        assert_eq!(spark_string(&Value::Double(1e7), &DataType::Float64), "1.0E7");
        assert_eq!(spark_string(&Value::Double(0.5), &DataType::Float64), "0.5");
        assert_eq!(spark_string(&Value::Timestamp(1_469_491_200_500_000), &crate::types::timestamp_type()), "2016-07-26 00:00:00.5");
        assert_eq!(spark_string(&Value::Decimal(I128::new(-5)), &DataType::Decimal128(4, 2)), "-0.05");
        let list = crate::types::parse_type("array<string>").unwrap();
        assert_eq!(spark_string(&Value::List(Arc::from(vec![Value::str("a"), Value::Null])), &list), "[a, null]");
    }
}
