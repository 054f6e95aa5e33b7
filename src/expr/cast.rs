//! CAST with Spark's non-ANSI rules: a value that does not convert becomes NULL, doubles
//! truncate toward zero, timestamps convert to and from epoch seconds, and doubles print as
//! Java's `Double.toString` does.

use std::sync::Arc;

use crate::time::{format_timestamp, parse_timestamp, MICROS_PER_SECOND};
use crate::types::{DataType, Value};

/// Converts `v` to `to`; `int32` narrows to a 32-bit INT the way Java does (wrapping).
pub fn cast_value(v: Value, to: DataType, int32: bool) -> Value {
    let out = match (v, to) {
        (Value::Null, _) => Value::Null,
        (v, t) if v.data_type() == t => v,
        (Value::Long(x), DataType::Double) => Value::Double(x as f64),
        (Value::Double(x), DataType::Long) => Value::Long(if x.is_nan() { 0 } else { x as i64 }),
        (Value::Bool(b), DataType::Long) => Value::Long(i64::from(b)),
        (Value::Bool(b), DataType::Double) => Value::Double(if b { 1.0 } else { 0.0 }),
        (Value::Long(x), DataType::Boolean) => Value::Bool(x != 0),
        (Value::Double(x), DataType::Boolean) => Value::Bool(x != 0.0),
        (Value::Str(s), DataType::Long) => parse_long(&s).map_or(Value::Null, Value::Long),
        (Value::Str(s), DataType::Double) => s.trim().parse::<f64>().map_or(Value::Null, Value::Double),
        (Value::Str(s), DataType::Boolean) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "1" => Value::Bool(true),
            "f" | "false" | "n" | "no" | "0" => Value::Bool(false),
            _ => Value::Null,
        },
        (Value::Str(s), DataType::Timestamp) => parse_timestamp(&s).map_or(Value::Null, Value::Timestamp),
        (Value::Timestamp(t), DataType::Long) => Value::Long(t.div_euclid(MICROS_PER_SECOND)),
        (Value::Timestamp(t), DataType::Double) => Value::Double(t as f64 / MICROS_PER_SECOND as f64),
        (Value::Long(x), DataType::Timestamp) => Value::Timestamp(x.saturating_mul(MICROS_PER_SECOND)),
        (Value::Double(x), DataType::Timestamp) => {
            if x.is_finite() {
                Value::Timestamp((x * MICROS_PER_SECOND as f64) as i64)
            } else {
                Value::Null
            }
        }
        (v, DataType::String) => Value::Str(Arc::from(to_sql_string(&v))),
        _ => Value::Null,
    };
    match out {
        Value::Long(x) if int32 => Value::Long(i64::from(x as i32)),
        other => other,
    }
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
        "" | "+" => Some(0),
        "-" => Some(0),
        _ => int.parse::<i64>().ok(),
    }
}

/// The text CAST(v AS STRING) gives in Spark.
pub fn to_sql_string(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Long(x) => x.to_string(),
        Value::Double(x) => format_double(*x),
        Value::Str(s) => s.to_string(),
        Value::Timestamp(t) => spark_timestamp_string(*t),
        Value::Window { start, end } => {
            format!("{{{}, {}}}", spark_timestamp_string(*start), spark_timestamp_string(*end))
        }
    }
}

/// `2016-07-26 00:00:00`, with a fraction only when there is one (Spark's cast to string).
fn spark_timestamp_string(t: i64) -> String {
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
