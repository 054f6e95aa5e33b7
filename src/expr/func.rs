//! Scalar functions by their Spark names: type resolution at plan time, evaluation per row.

use std::cmp::Ordering;
use std::sync::Arc;

use super::Expr;
use crate::time::parse_timestamp;
use crate::types::{DataType, Value};

/// A scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Upper,
    Lower,
    Coalesce,
    Abs,
    Round,
    Floor,
    Ceil,
    Length,
    Concat,
    Substring,
    Trim,
    LTrim,
    RTrim,
    NullIf,
    Greatest,
    Least,
    ToTimestamp,
    UnixMillis,
    UnixSeconds,
    TimestampMillis,
    TimestampSeconds,
}

/// Every function name the planner accepts, for "did you mean" messages.
pub const FUNCTION_NAMES: &[&str] = &[
    "upper",
    "lower",
    "coalesce",
    "abs",
    "round",
    "floor",
    "ceil",
    "length",
    "concat",
    "substring",
    "trim",
    "ltrim",
    "rtrim",
    "nullif",
    "greatest",
    "least",
    "to_timestamp",
    "unix_millis",
    "unix_seconds",
    "timestamp_millis",
    "timestamp_seconds",
];

impl Func {
    /// Looks a function up by name and checks its argument types; returns the result type.
    pub fn resolve(name: &str, args: &[DataType]) -> Result<Option<(Func, DataType)>, String> {
        use DataType::*;
        let lower = name.to_ascii_lowercase();
        let func = match lower.as_str() {
            "upper" | "ucase" => Func::Upper,
            "lower" | "lcase" => Func::Lower,
            "coalesce" | "ifnull" | "nvl" => Func::Coalesce,
            "abs" => Func::Abs,
            "round" => Func::Round,
            "floor" => Func::Floor,
            "ceil" | "ceiling" => Func::Ceil,
            "length" | "char_length" | "character_length" => Func::Length,
            "concat" => Func::Concat,
            "substring" | "substr" => Func::Substring,
            "trim" => Func::Trim,
            "ltrim" => Func::LTrim,
            "rtrim" => Func::RTrim,
            "nullif" => Func::NullIf,
            "greatest" => Func::Greatest,
            "least" => Func::Least,
            "to_timestamp" => Func::ToTimestamp,
            "unix_millis" => Func::UnixMillis,
            "unix_seconds" => Func::UnixSeconds,
            "timestamp_millis" => Func::TimestampMillis,
            "timestamp_seconds" => Func::TimestampSeconds,
            _ => return Ok(None),
        };
        let arity = |min: usize, max: usize| {
            if args.len() < min || args.len() > max {
                let want = if min == max {
                    format!("{min}")
                } else if max == usize::MAX {
                    format!("at least {min}")
                } else {
                    format!("{min} to {max}")
                };
                Err(format!("{lower}() takes {want} argument(s), not {}", args.len()))
            } else {
                Ok(())
            }
        };
        let want = |i: usize, ok: &[DataType], what: &str| {
            let t = args[i];
            if t == Null || ok.contains(&t) {
                Ok(())
            } else {
                Err(format!("argument {} of {lower}() must be {what}, not {t}", i + 1))
            }
        };
        let ty = match func {
            Func::Upper | Func::Lower | Func::Trim | Func::LTrim | Func::RTrim => {
                arity(1, 1)?;
                want(0, &[String], "a string")?;
                String
            }
            Func::Length => {
                arity(1, 1)?;
                want(0, &[String], "a string")?;
                Long
            }
            Func::Concat => {
                arity(1, usize::MAX)?;
                for i in 0..args.len() {
                    want(i, &[String], "a string (CAST it)")?;
                }
                String
            }
            Func::Substring => {
                arity(2, 3)?;
                want(0, &[String], "a string")?;
                want(1, &[Long], "a long")?;
                if args.len() == 3 {
                    want(2, &[Long], "a long")?;
                }
                String
            }
            Func::Abs => {
                arity(1, 1)?;
                want(0, &[Long, Double], "a number")?;
                args[0]
            }
            Func::Round => {
                arity(1, 2)?;
                want(0, &[Long, Double], "a number")?;
                if args.len() == 2 {
                    want(1, &[Long], "a long")?;
                }
                args[0]
            }
            Func::Floor | Func::Ceil => {
                arity(1, 1)?;
                want(0, &[Long, Double], "a number")?;
                Long
            }
            Func::Coalesce | Func::Greatest | Func::Least | Func::NullIf => {
                if func == Func::NullIf {
                    arity(2, 2)?;
                } else {
                    arity(1, usize::MAX)?;
                }
                common_type(args).ok_or_else(|| {
                    let names: Vec<_> = args.iter().map(|t| t.name()).collect();
                    format!("the arguments of {lower}() have no common type ({}); CAST them", names.join(", "))
                })?
            }
            Func::ToTimestamp => {
                arity(1, 1)?;
                want(0, &[String], "a string")?;
                Timestamp
            }
            Func::UnixMillis | Func::UnixSeconds => {
                arity(1, 1)?;
                want(0, &[Timestamp], "a timestamp")?;
                Long
            }
            Func::TimestampMillis | Func::TimestampSeconds => {
                arity(1, 1)?;
                want(0, &[Long], "a long")?;
                Timestamp
            }
        };
        Ok(Some((func, ty)))
    }

    pub fn call(self, args: &[Expr], row: &[Value]) -> Value {
        match self {
            Func::Coalesce => args.iter().map(|a| a.eval(row)).find(|v| !v.is_null()).unwrap_or(Value::Null),
            Func::Greatest | Func::Least => {
                let want = if self == Func::Greatest { Ordering::Greater } else { Ordering::Less };
                let mut best = Value::Null;
                for a in args {
                    let v = a.eval(row);
                    if !v.is_null() && (best.is_null() || v.sql_cmp(&best) == Some(want)) {
                        best = v;
                    }
                }
                promote(best, args)
            }
            Func::NullIf => {
                let a = args[0].eval(row);
                let b = args[1].eval(row);
                if a.sql_cmp(&b) == Some(Ordering::Equal) {
                    Value::Null
                } else {
                    promote(a, args)
                }
            }
            // The arguments on the stack for the usual arities: a call per row allocates nothing.
            _ => match args {
                [a] => match a.eval(row) {
                    Value::Null => Value::Null,
                    v => self.call_strict(&[v]),
                },
                [a, b] => match (a.eval(row), b.eval(row)) {
                    (Value::Null, _) | (_, Value::Null) => Value::Null,
                    (x, y) => self.call_strict(&[x, y]),
                },
                _ => {
                    let vals: Vec<Value> = args.iter().map(|a| a.eval(row)).collect();
                    if vals.iter().any(Value::is_null) {
                        return Value::Null;
                    }
                    self.call_strict(&vals)
                }
            },
        }
    }

    /// Functions that return NULL when any argument is NULL.
    fn call_strict(self, v: &[Value]) -> Value {
        let s = |i: usize| match &v[i] {
            Value::Str(s) => s.clone(),
            _ => Arc::from(""),
        };
        let l = |i: usize| match v[i] {
            Value::Long(x) => x,
            _ => 0,
        };
        match self {
            Func::Upper => Value::Str(Arc::from(s(0).to_uppercase())),
            Func::Lower => Value::Str(Arc::from(s(0).to_lowercase())),
            Func::Trim => Value::Str(Arc::from(s(0).trim_matches(' '))),
            Func::LTrim => Value::Str(Arc::from(s(0).trim_start_matches(' '))),
            Func::RTrim => Value::Str(Arc::from(s(0).trim_end_matches(' '))),
            Func::Length => Value::Long(s(0).chars().count() as i64),
            Func::Concat => {
                let mut out = String::new();
                for i in 0..v.len() {
                    out.push_str(&s(i));
                }
                Value::Str(Arc::from(out))
            }
            Func::Substring => substring(&s(0), l(1), if v.len() == 3 { l(2) } else { i64::from(i32::MAX) }),
            Func::Abs => match v[0] {
                Value::Long(x) => Value::Long(x.wrapping_abs()),
                Value::Double(x) => Value::Double(x.abs()),
                _ => Value::Null,
            },
            Func::Round => {
                let digits = if v.len() == 2 { l(1) } else { 0 };
                match v[0] {
                    Value::Double(x) => Value::Double(round_half_up(x, digits)),
                    Value::Long(x) if digits >= 0 => Value::Long(x),
                    Value::Long(x) => Value::Long(round_long_half_up(x, digits)),
                    _ => Value::Null,
                }
            }
            Func::Floor => match v[0] {
                Value::Double(x) => Value::Long(x.floor() as i64),
                Value::Long(x) => Value::Long(x),
                _ => Value::Null,
            },
            Func::Ceil => match v[0] {
                Value::Double(x) => Value::Long(x.ceil() as i64),
                Value::Long(x) => Value::Long(x),
                _ => Value::Null,
            },
            Func::ToTimestamp => parse_timestamp(&s(0)).map_or(Value::Null, Value::Timestamp),
            Func::UnixMillis => match v[0] {
                Value::Timestamp(t) => Value::Long(t.div_euclid(1000)),
                _ => Value::Null,
            },
            Func::UnixSeconds => match v[0] {
                Value::Timestamp(t) => Value::Long(t.div_euclid(1_000_000)),
                _ => Value::Null,
            },
            Func::TimestampMillis => Value::Timestamp(l(0).saturating_mul(1000)),
            Func::TimestampSeconds => Value::Timestamp(l(0).saturating_mul(1_000_000)),
            Func::Coalesce | Func::Greatest | Func::Least | Func::NullIf => Value::Null,
        }
    }
}

/// A long chosen among mixed long/double arguments is returned as a double.
fn promote(v: Value, args: &[Expr]) -> Value {
    match v {
        Value::Long(x) if args.iter().any(|a| a.data_type() == DataType::Double) => Value::Double(x as f64),
        other => other,
    }
}

/// The type several values can all be converted to, if any (NULL fits anything).
pub fn common_type(types: &[DataType]) -> Option<DataType> {
    let mut out = DataType::Null;
    for &t in types {
        out = match (out, t) {
            (DataType::Null, t) | (t, DataType::Null) => t,
            (a, b) if a == b => a,
            (DataType::Long, DataType::Double) | (DataType::Double, DataType::Long) => DataType::Double,
            _ => return None,
        };
    }
    Some(out)
}

/// Spark's `substring(str, pos, len)`: 1-based; a negative pos counts from the end.
fn substring(s: &str, pos: i64, len: i64) -> Value {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let start = if pos > 0 {
        pos - 1
    } else if pos < 0 {
        n + pos
    } else {
        0
    };
    let end = start.saturating_add(len);
    let start = start.max(0);
    let end = end.min(n);
    if start >= end {
        return Value::Str(Arc::from(""));
    }
    Value::Str(Arc::from(chars[start as usize..end as usize].iter().collect::<String>()))
}

/// Spark's `round(double, d)`: HALF_UP (half away from zero) on the double's shortest decimal
/// form — Scala's `BigDecimal(x).setScale(d, HALF_UP)` — so `round(38.785, 2)` is 38.79 even
/// though the binary value is slightly below 38.785.
fn round_half_up(x: f64, digits: i64) -> f64 {
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
