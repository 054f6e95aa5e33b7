//! Implementations of eddy's functions over Arrow arrays: vectorised where they sit on hot
//! paths (division), row by row over values elsewhere.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, TimestampMicrosecondArray};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::kernels::numeric::div;
use arrow::compute::{cast, nullif};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion_common::{exec_err, DataFusionError, Result, ScalarValue};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs};

use super::{Fun, LogBase};
use crate::expr::cast::cast_value;
use crate::time::{parse_duration, parse_timestamp, MICROS_PER_SECOND};
use crate::types::arrays::{values_to_array, ColumnReader};
use crate::types::{timestamp_type, Value, I128};

fn arrow_err(e: arrow::error::ArrowError) -> DataFusionError {
    DataFusionError::ArrowError(Box::new(e), None)
}

/// Argument types a division casts its operands to.
pub fn division_types(fun: Fun, a: &DataType, b: &DataType) -> Vec<DataType> {
    let decimal = |t: &DataType| match t {
        DataType::Decimal128(p, s) => Some((*p, *s)),
        t if t.is_integer() => Some((20, 0)),
        DataType::Null => Some((1, 0)),
        _ => None,
    };
    match fun {
        Fun::Divide => match (a, b, decimal(a), decimal(b)) {
            (DataType::Decimal128(..), _, Some(x), Some(y)) | (_, DataType::Decimal128(..), Some(x), Some(y)) => {
                vec![DataType::Decimal128(x.0, x.1), DataType::Decimal128(y.0, y.1)]
            }
            _ => vec![DataType::Float64, DataType::Float64],
        },
        _ => vec![DataType::Int64, DataType::Int64],
    }
}

/// Spark's result type of a division: double, or decimal by Spark's precision rules.
pub fn division_result(args: &[DataType]) -> DataType {
    match (args.first(), args.get(1)) {
        (Some(DataType::Decimal128(p1, s1)), Some(DataType::Decimal128(p2, s2))) => {
            let (p1, s1, p2, s2) = (i32::from(*p1), i32::from(*s1), i32::from(*p2), i32::from(*s2));
            let mut int_digits = p1 - s1 + s2;
            let mut scale = (s1 + p2 + 1).max(6);
            let mut precision = int_digits + scale;
            if precision > 38 {
                int_digits = precision - scale;
                let min_scale = scale.min(6);
                scale = (38 - int_digits).max(min_scale);
                precision = 38;
            }
            DataType::Decimal128(precision.clamp(1, 38) as u8, scale.clamp(0, 38) as i8)
        }
        _ => DataType::Float64,
    }
}

/// A duration argument: `'10 minutes'` or an INTERVAL, in microseconds.
pub fn duration_micros(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => parse_duration(s).ok(),
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            Some(i64::from(i.days) * crate::time::MICROS_PER_DAY + i.nanoseconds.div_euclid(1000))
        }
        ScalarValue::IntervalDayTime(Some(i)) => Some(i64::from(i.days) * crate::time::MICROS_PER_DAY + i64::from(i.milliseconds) * 1000),
        ScalarValue::DurationMicrosecond(Some(d)) => Some(*d),
        _ => None,
    }
}

fn to_arrays(args: &[ColumnarValue], n: usize) -> Result<Vec<ArrayRef>> {
    args.iter().map(|a| a.to_array(n)).collect()
}

/// Applies `f` to the arguments' values row by row.
pub(super) fn map_rows(args: &[ColumnarValue], n: usize, out: &DataType, f: impl Fn(&[Value]) -> Value) -> Result<ColumnarValue> {
    let arrays = to_arrays(args, n)?;
    let readers: Vec<ColumnReader> = arrays.iter().map(|a| ColumnReader::new(a.as_ref())).collect();
    let mut row = vec![Value::Null; readers.len()];
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        for (slot, r) in row.iter_mut().zip(&readers) {
            *slot = r.value(i);
        }
        values.push(f(&row));
    }
    Ok(ColumnarValue::Array(values_to_array(values.iter(), out).map_err(arrow_err)?))
}

pub fn invoke(fun: Fun, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
    let n = args.number_rows;
    let out = args.return_field.data_type().clone();
    match fun {
        Fun::Window => {
            let durations: Vec<Option<i64>> = args.args[1..]
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => duration_micros(s),
                    ColumnarValue::Array(_) => None,
                })
                .collect();
            let size = durations.first().copied().flatten();
            let slide = durations.get(1).copied().flatten().or(size);
            let offset = durations.get(2).copied().flatten().unwrap_or(0);
            let Some(size) = size.filter(|s| *s > 0) else { return exec_err!("window(): the window duration must be a positive literal") };
            if slide != Some(size) {
                return exec_err!("window() with a slide gives several windows per row; group by it instead of selecting it");
            }
            map_rows(&args.args[..1], n, &out, |v| {
                // Over a window column, its window_time: the end minus 1 microsecond.
                let t = match v[0] {
                    Value::Timestamp(t) => t,
                    Value::Window { end, .. } => end - 1,
                    _ => return Value::Null,
                };
                let start = t - (t - offset).rem_euclid(size);
                Value::Window { start, end: start + size }
            })
        }
        Fun::SessionWindow => exec_err!("session_window() has a value only in GROUP BY, where it forms sessions"),
        Fun::WindowTime => map_rows(&args.args, n, &out, |v| match v[0] {
            Value::Window { end, .. } => Value::Timestamp(end - 1),
            _ => Value::Null,
        }),
        Fun::Divide => divide(&args.args, n, &out),
        Fun::IntDivide => {
            let a = args.args[0].to_array(n)?;
            let b = args.args[1].to_array(n)?;
            let (a, b) = (a.as_primitive::<Int64Type>(), b.as_primitive::<Int64Type>());
            let result: Int64Array = a
                .iter()
                .zip(b.iter())
                .map(|(x, y)| match (x, y) {
                    (Some(x), Some(y)) if y != 0 => Some(x.wrapping_div(y)),
                    _ => None,
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(result)))
        }
        Fun::Cast => {
            let from = args.arg_fields[0].data_type().clone();
            let input = args.args[0].to_array(n)?;
            if cast_value(&Value::Null, &from, &out).is_some()
                && !matches!(from, DataType::List(_) | DataType::Struct(_) | DataType::Map(..))
            {
                let r = ColumnReader::new(input.as_ref());
                let values: Vec<Value> = (0..n).map(|i| cast_value(&r.value(i), &from, &out).unwrap_or_default()).collect();
                return Ok(ColumnarValue::Array(values_to_array(values.iter(), &out).map_err(arrow_err)?));
            }
            if matches!(out, DataType::Utf8) {
                let r = ColumnReader::new(input.as_ref());
                let values: Vec<Value> = (0..n)
                    .map(|i| match r.value(i) {
                        Value::Null => Value::Null,
                        v => Value::str(&crate::expr::cast::spark_string(&v, &from)),
                    })
                    .collect();
                return Ok(ColumnarValue::Array(values_to_array(values.iter(), &out).map_err(arrow_err)?));
            }
            let opts = arrow::compute::CastOptions { safe: true, ..Default::default() };
            Ok(ColumnarValue::Array(arrow::compute::cast_with_options(&input, &out, &opts).map_err(arrow_err)?))
        }
        Fun::ToTimestamp => map_rows(&args.args, n, &timestamp_type(), |v| match (&v[0], v.get(1)) {
            (Value::Str(s), None) => parse_timestamp(s.trim()).map_or(Value::Null, Value::Timestamp),
            (Value::Str(s), Some(Value::Str(p))) => {
                crate::time::pattern::DatePattern::new(p).ok().and_then(|p| p.parse(s).ok()).map_or(Value::Null, Value::Timestamp)
            }
            (Value::Long(x), _) => Value::Timestamp(x.saturating_mul(MICROS_PER_SECOND)),
            (Value::Double(x), _) if x.is_finite() => Value::Timestamp((x * MICROS_PER_SECOND as f64) as i64),
            (Value::Timestamp(t), _) => Value::Timestamp(*t),
            _ => Value::Null,
        }),
        Fun::TimestampFrom(unit) => map_rows(&args.args, n, &timestamp_type(), |v| match v[0] {
            Value::Long(x) => x.checked_mul(unit).map_or(Value::Null, Value::Timestamp),
            Value::Double(x) if x.is_finite() => Value::Timestamp((x * unit as f64) as i64),
            _ => Value::Null,
        }),
        Fun::UnixIn(unit) => {
            let t = args.args[0].to_array(n)?;
            let t = cast(&t, &timestamp_type()).map_err(arrow_err)?;
            let t = t.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            let out: Int64Array = t.unary(|v| v.div_euclid(unit));
            Ok(ColumnarValue::Array(Arc::new(out)))
        }
        Fun::Round => {
            let scale = match args.arg_fields[0].data_type() {
                DataType::Decimal128(_, s) => i64::from(*s),
                _ => 0,
            };
            map_rows(&args.args, n, &out, |v| {
                let digits = match v.get(1) {
                    Some(Value::Long(d)) => *d,
                    Some(_) => return Value::Null,
                    None => 0,
                };
                match &v[0] {
                    Value::Double(x) => Value::Double(round_half_up(*x, digits)),
                    Value::Long(x) if digits >= 0 => Value::Long(*x),
                    Value::Long(x) => Value::Long(round_long_half_up(*x, digits)),
                    Value::Decimal(d) => round_decimal(d.get(), scale, digits).map_or(Value::Null, |r| Value::Decimal(I128::new(r))),
                    _ => Value::Null,
                }
            })
        }
        Fun::Log(base) => {
            let x = args.args[0].to_array(n)?;
            let x = x.as_primitive::<Float64Type>();
            let result: Float64Array = x
                .iter()
                .map(|v| {
                    v.filter(|v| *v > 0.0).map(|v| match base {
                        LogBase::E => v.ln(),
                        LogBase::Ten => v.log10(),
                        LogBase::Two => v.log2(),
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(result)))
        }
    }
}

/// Spark's `round(double, d)`: HALF_UP (half away from zero) on the double's shortest decimal
/// form — Scala's `BigDecimal(x).setScale(d, HALF_UP)` — so `round(38.785, 2)` is 38.79 even
/// though the binary value is slightly below 38.785.
pub fn round_half_up(x: f64, digits: i64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // Shortest round-trip digits: "3.8785e1" → digits 38785, 2 integer digits.
    let text = format!("{:e}", x.abs());
    let Some((mantissa, exp)) = text.split_once('e') else { return x };
    let Ok(exp) = exp.parse::<i64>() else { return x };
    let all: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    let integer_digits = exp + 1;
    let keep = integer_digits.saturating_add(digits);
    if keep >= all.len() as i64 {
        return x;
    }
    let sign = if x < 0.0 { "-" } else { "" };
    if keep < 0 {
        return if x < 0.0 { -0.0 } else { 0.0 };
    }
    let keep = keep as usize;
    let mut kept: Vec<u8> = all[..keep].to_vec();
    if all[keep] >= 5 {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    if kept.is_empty() {
        return if x < 0.0 { -0.0 } else { 0.0 };
    }
    let int: String = kept.iter().map(|d| char::from(b'0' + d)).collect();
    format!("{sign}{int}e{}", -digits).parse().unwrap_or(x)
}

/// Spark's `round(long, d)` for d < 0: HALF_UP to a multiple of 10^-d, exactly.
fn round_long_half_up(x: i64, digits: i64) -> i64 {
    let Some(p) = u32::try_from(-digits).ok().and_then(|e| 10i64.checked_pow(e)) else { return 0 };
    let (q, r) = (x / p, x % p);
    let up = r.unsigned_abs().saturating_mul(2) >= p.unsigned_abs();
    let q = if up { q + x.signum() } else { q };
    q.wrapping_mul(p)
}

/// A decimal's unscaled value at `scale`, rounded half up to `digits` places (kept at `scale`).
fn round_decimal(v: i128, scale: i64, digits: i64) -> Option<i128> {
    if digits >= scale {
        return Some(v);
    }
    let p = 10i128.checked_pow(u32::try_from(scale - digits).ok()?)?;
    let (q, r) = (v / p, v % p);
    let q = if r.unsigned_abs() * 2 >= p.unsigned_abs() { q + v.signum() } else { q };
    q.checked_mul(p)
}

/// `a / b`: NULL where b is 0; doubles divide as IEEE doubles, decimals at the result scale,
/// rounded half up.
fn divide(args: &[ColumnarValue], n: usize, out: &DataType) -> Result<ColumnarValue> {
    let a = args[0].to_array(n)?;
    let b = args[1].to_array(n)?;
    if let DataType::Decimal128(_, scale) = out {
        let (s1, s2) = match (a.data_type(), b.data_type()) {
            (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) => (i32::from(*s1), i32::from(*s2)),
            _ => (0, 0),
        };
        let shift = i32::from(*scale) - s1 + s2;
        let (ra, rb) = (ColumnReader::new(a.as_ref()), ColumnReader::new(b.as_ref()));
        let values: Vec<Value> = (0..n)
            .map(|i| match (ra.value(i), rb.value(i)) {
                (Value::Decimal(x), Value::Decimal(y)) if y.get() != 0 => {
                    decimal_div(x.get(), y.get(), shift).map_or(Value::Null, |q| Value::Decimal(I128::new(q)))
                }
                _ => Value::Null,
            })
            .collect();
        return Ok(ColumnarValue::Array(values_to_array(values.iter(), out).map_err(arrow_err)?));
    }
    let a = cast(&a, &DataType::Float64).map_err(arrow_err)?;
    let b = cast(&b, &DataType::Float64).map_err(arrow_err)?;
    let zero = Float64Array::new_scalar(0.0);
    let is_zero: BooleanArray = eq(&b, &zero).map_err(arrow_err)?;
    let b = nullif(&b, &is_zero).map_err(arrow_err)?;
    Ok(ColumnarValue::Array(div(&a, &b).map_err(arrow_err)?))
}

/// x / y scaled by 10^shift, rounded half up; `None` on overflow.
fn decimal_div(x: i128, y: i128, shift: i32) -> Option<i128> {
    let (num, den) = if shift >= 0 {
        (x.checked_mul(10i128.checked_pow(shift as u32)?)?, y)
    } else {
        (x, y.checked_mul(10i128.checked_pow((-shift) as u32)?)?)
    };
    let q = num / den;
    let r = num % den;
    Some(if r.unsigned_abs() * 2 >= den.unsigned_abs() { q + (num.signum() * den.signum()) } else { q })
}

/// A timestamp array of `n` copies (helper for tests).
#[allow(dead_code)]
fn timestamps(values: &[i64]) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values.to_vec()))
}
