//! Spark functions that DataFusion lacks or gives other answers for, each a small row
//! function over values with its argument coercion and result type: date parts, Java-pattern
//! date formatting and parsing, `split`, `regexp_extract`, `regexp_replace` (every match),
//! `initcap`, `sqrt`, `date_add`, `trunc`, Spark's Murmur3 `hash`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion_common::{plan_err, Result};
use regex::Regex;

use crate::expr::cast::{cast_value, spark_string};
use crate::time::pattern::DatePattern;
use crate::time::{civil_from_days, days_from_civil, MICROS_PER_DAY, MICROS_PER_SECOND};
use crate::types::{timestamp_type, Value};

/// One row function.
pub struct RowFunction {
    pub name: &'static str,
    pub description: &'static str,
    min: usize,
    max: usize,
    /// The types the arguments are cast to.
    args: fn(&[DataType]) -> Result<Vec<DataType>>,
    ret: fn(&[DataType]) -> DataType,
    eval: fn(&[Value], &[DataType]) -> Value,
}

impl std::fmt::Debug for RowFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for RowFunction {}

impl Hash for RowFunction {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name.hash(h);
    }
}

impl RowFunction {
    pub fn coerce(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() < self.min || args.len() > self.max {
            let want = if self.min == self.max { format!("{}", self.min) } else { format!("{} to {}", self.min, self.max) };
            return plan_err!("{}() takes {want} argument(s), not {}", self.name, args.len());
        }
        (self.args)(args)
    }

    pub fn return_type(&self, args: &[DataType]) -> DataType {
        (self.ret)(args)
    }

    pub fn eval(&self, values: &[Value], types: &[DataType]) -> Value {
        (self.eval)(values, types)
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

/// A date/time argument: dates and timestamps as they are, strings parsed as timestamps.
fn temporal(t: &DataType) -> DataType {
    match t {
        DataType::Date32 => DataType::Date32,
        _ => timestamp_type(),
    }
}

fn strings(args: &[DataType]) -> Result<Vec<DataType>> {
    Ok(vec![DataType::Utf8; args.len()])
}

fn long(v: &Value) -> Option<i64> {
    match v {
        Value::Long(x) => Some(*x),
        _ => None,
    }
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// Days since the epoch of a date or timestamp value.
fn days(v: &Value) -> Option<i64> {
    match v {
        Value::Date(d) => Some(i64::from(*d)),
        Value::Timestamp(t) => Some(t.div_euclid(MICROS_PER_DAY)),
        _ => None,
    }
}

thread_local! {
    static PATTERNS: RefCell<HashMap<String, Option<DatePattern>>> = RefCell::new(HashMap::new());
    static REGEXES: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// A compiled date pattern, cached per thread (patterns are nearly always literals).
fn with_pattern<T>(p: &str, f: impl FnOnce(&DatePattern) -> Option<T>) -> Option<T> {
    PATTERNS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 256 {
            c.clear();
        }
        c.entry(p.to_string()).or_insert_with(|| DatePattern::new(p).ok()).as_ref().and_then(f)
    })
}

/// A compiled regular expression, cached per thread. Java's syntax and Rust's `regex` agree
/// on what streaming queries use (classes, groups, anchors, quantifiers); a literal pattern
/// with look-around or back-references, which `regex` lacks, is rejected when the query is
/// planned (`sql::parse`), and a pattern from the data that does not compile gives NULL.
fn with_regex<T>(p: &str, f: impl FnOnce(&Regex) -> Option<T>) -> Option<T> {
    REGEXES.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 256 {
            c.clear();
        }
        c.entry(p.to_string()).or_insert_with(|| Regex::new(p).ok()).as_ref().and_then(f)
    })
}

/// Which part of a date `date_part`-like functions take.
#[derive(Clone, Copy)]
enum Part {
    Year,
    Month,
    Day,
    DayOfWeek,
    DayOfYear,
    Quarter,
    WeekOfYear,
}

fn date_part(v: &Value, part: Part) -> Value {
    let Some(d) = days(v) else { return Value::Null };
    let (y, m, dom) = civil_from_days(d);
    Value::Long(match part {
        Part::Year => y,
        Part::Month => m,
        Part::Day => dom,
        // Spark: 1 = Sunday ... 7 = Saturday; 1970-01-01 was a Thursday.
        Part::DayOfWeek => (d + 4).rem_euclid(7) + 1,
        Part::DayOfYear => d - days_from_civil(y, 1, 1) + 1,
        Part::Quarter => (m - 1) / 3 + 1,
        Part::WeekOfYear => iso_week(d),
    })
}

/// The ISO-8601 week of the year (weeks start on Monday; week 1 holds the first Thursday).
fn iso_week(d: i64) -> i64 {
    let weekday = (d + 3).rem_euclid(7); // 0 = Monday
    let thursday = d - weekday + 3;
    let (y, _, _) = civil_from_days(thursday);
    (thursday - days_from_civil(y, 1, 1)) / 7 + 1
}

macro_rules! part_fn {
    ($name:literal, $part:expr, $doc:literal) => {
        RowFunction {
            name: $name,
            description: $doc,
            min: 1,
            max: 1,
            args: |a| Ok(vec![temporal(&a[0])]),
            ret: |_| DataType::Int32,
            eval: |v, _| date_part(&v[0], $part),
        }
    };
}

/// Spark's `initcap`: the first letter of each space-separated word upper-cased, the rest lower.
fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = c == ' ';
    }
    out
}

/// Java's `Matcher.replaceAll` replacement text (`$1`, `\$`) in Rust's syntax (`${1}`, `$$`).
fn java_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(n) => out.push(n),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Spark's `split(str, regex, limit)`: at most `limit` parts when limit > 0, else all
/// (trailing empty strings kept, as Spark 3 does).
fn split(s: &str, re: &Regex, limit: i64) -> Vec<Value> {
    if s.is_empty() {
        return vec![Value::str("")];
    }
    let parts: Vec<&str> = if limit > 0 { re.splitn(s, limit as usize).collect() } else { re.split(s).collect() };
    parts.into_iter().map(Value::str).collect()
}

// Spark's Murmur3_x86_32 (org.apache.spark.unsafe.hash.Murmur3_x86_32), seed 42, chained
// through the arguments; NULLs leave the hash unchanged.
fn mix_k1(k1: u32) -> u32 {
    k1.wrapping_mul(0xcc9e_2d51).rotate_left(15).wrapping_mul(0x1b87_3593)
}

fn mix_h1(h1: u32, k1: u32) -> u32 {
    (h1 ^ k1).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64)
}

fn fmix(mut h1: u32, length: u32) -> u32 {
    h1 ^= length;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^ (h1 >> 16)
}

fn hash_int(v: i32, seed: u32) -> u32 {
    fmix(mix_h1(seed, mix_k1(v as u32)), 4)
}

fn hash_long(v: i64, seed: u32) -> u32 {
    let h1 = mix_h1(seed, mix_k1(v as u32));
    fmix(mix_h1(h1, mix_k1((v >> 32) as u32)), 8)
}

fn hash_bytes(b: &[u8], seed: u32) -> u32 {
    let aligned = b.len() - b.len() % 4;
    let mut h1 = seed;
    for w in b[..aligned].chunks_exact(4) {
        h1 = mix_h1(h1, mix_k1(u32::from_le_bytes([w[0], w[1], w[2], w[3]])));
    }
    for &byte in &b[aligned..] {
        h1 = mix_h1(h1, mix_k1(i32::from(byte as i8) as u32));
    }
    fmix(h1, b.len() as u32)
}

fn spark_hash(v: &Value, t: &DataType, seed: u32) -> u32 {
    match v {
        Value::Null => seed,
        Value::Bool(b) => hash_int(i32::from(*b), seed),
        Value::Long(x) if matches!(t, DataType::Int32 | DataType::Int16 | DataType::Int8) => hash_int(*x as i32, seed),
        Value::Long(x) => hash_long(*x, seed),
        Value::Double(x) if matches!(t, DataType::Float32) => hash_int(if *x == 0.0 { 0 } else { (*x as f32).to_bits() as i32 }, seed),
        Value::Double(x) => hash_long(if *x == 0.0 { 0 } else { x.to_bits() as i64 }, seed),
        Value::Str(s) => hash_bytes(s.as_bytes(), seed),
        Value::Binary(b) => hash_bytes(b, seed),
        Value::Timestamp(x) => hash_long(*x, seed),
        Value::Date(d) => hash_int(*d, seed),
        Value::Decimal(d) => hash_long(d.get() as i64, seed),
        Value::Window { start, end } => hash_long(*end, hash_long(*start, seed)),
        Value::List(items) => {
            let item = match t {
                DataType::List(f) => f.data_type().clone(),
                _ => DataType::Null,
            };
            items.iter().fold(seed, |h, x| spark_hash(x, &item, h))
        }
        Value::Struct(items) => match t {
            DataType::Struct(fields) => items.iter().zip(fields.iter()).fold(seed, |h, (x, f)| spark_hash(x, f.data_type(), h)),
            _ => seed,
        },
        Value::Map(entries) => entries.iter().fold(seed, |h, (k, x)| spark_hash(x, &DataType::Null, spark_hash(k, &DataType::Null, h))),
    }
}

/// Every row function.
pub fn all() -> Vec<Arc<RowFunction>> {
    let fns = vec![
        part_fn!("year", Part::Year, "year(date): the year"),
        part_fn!("month", Part::Month, "month(date): the month, 1-12"),
        part_fn!("dayofmonth", Part::Day, "dayofmonth(date) (day): the day of the month"),
        part_fn!("day", Part::Day, "day(date): the day of the month"),
        part_fn!("dayofweek", Part::DayOfWeek, "dayofweek(date): 1 (Sunday) to 7 (Saturday)"),
        part_fn!("dayofyear", Part::DayOfYear, "dayofyear(date): the day of the year, from 1"),
        part_fn!("quarter", Part::Quarter, "quarter(date): 1 to 4"),
        part_fn!("weekofyear", Part::WeekOfYear, "weekofyear(date): the ISO-8601 week, 1 to 53"),
        RowFunction {
            name: "date_format",
            description: "date_format(ts, pattern): ts as text in a Java DateTimeFormatter pattern (UTC), e.g. 'MMM-dd HH:mm'",
            min: 2,
            max: 2,
            args: |a| Ok(vec![temporal(&a[0]), DataType::Utf8]),
            ret: |_| DataType::Utf8,
            eval: |v, _| {
                let t = match &v[0] {
                    Value::Timestamp(t) => *t,
                    Value::Date(d) => i64::from(*d) * MICROS_PER_DAY,
                    _ => return Value::Null,
                };
                let Some(p) = text(&v[1]) else { return Value::Null };
                with_pattern(p, |p| {
                    let mut s = String::new();
                    p.format(t, &mut s);
                    Some(Value::str(&s))
                })
                .unwrap_or_default()
            },
        },
        RowFunction {
            name: "from_unixtime",
            description: "from_unixtime(seconds[, pattern]): the time as text, 'yyyy-MM-dd HH:mm:ss' by default (UTC)",
            min: 1,
            max: 2,
            args: |a| Ok(if a.len() == 2 { vec![DataType::Int64, DataType::Utf8] } else { vec![DataType::Int64] }),
            ret: |_| DataType::Utf8,
            eval: |v, _| {
                let Some(secs) = long(&v[0]) else { return Value::Null };
                let p = v.get(1).map_or(Some("yyyy-MM-dd HH:mm:ss"), text);
                let Some(p) = p else { return Value::Null };
                with_pattern(p, |p| {
                    let mut s = String::new();
                    p.format(secs.saturating_mul(MICROS_PER_SECOND), &mut s);
                    Some(Value::str(&s))
                })
                .unwrap_or_default()
            },
        },
        RowFunction {
            name: "unix_timestamp",
            description: "unix_timestamp(ts | text[, pattern]): seconds since the epoch; text is parsed with the pattern ('yyyy-MM-dd HH:mm:ss' by default)",
            min: 1,
            max: 2,
            args: |a| Ok(match a {
                [t] if is_string(t) => vec![DataType::Utf8],
                [t] => vec![temporal(t)],
                _ => vec![DataType::Utf8, DataType::Utf8],
            }),
            ret: |_| DataType::Int64,
            eval: |v, _| match (&v[0], v.get(1)) {
                (Value::Timestamp(t), _) => Value::Long(t.div_euclid(MICROS_PER_SECOND)),
                (Value::Date(d), _) => Value::Long(i64::from(*d) * 86_400),
                (Value::Str(s), p) => {
                    let p = p.map_or(Some("yyyy-MM-dd HH:mm:ss"), text);
                    p.and_then(|p| with_pattern(p, |p| p.parse(s).ok())).map_or(Value::Null, |t| Value::Long(t.div_euclid(MICROS_PER_SECOND)))
                }
                _ => Value::Null,
            },
        },
        RowFunction {
            name: "to_date",
            description: "to_date(x[, pattern]): a date from a timestamp, or from text ('yyyy-MM-dd', or the pattern)",
            min: 1,
            max: 2,
            args: |a| Ok(match a {
                [t] if is_string(t) || matches!(t, DataType::Null) => vec![DataType::Utf8],
                [t] => vec![temporal(t)],
                _ => vec![DataType::Utf8, DataType::Utf8],
            }),
            ret: |_| DataType::Date32,
            eval: |v, _| match (&v[0], v.get(1)) {
                (Value::Timestamp(t), _) => Value::Date(t.div_euclid(MICROS_PER_DAY) as i32),
                (Value::Date(d), _) => Value::Date(*d),
                (Value::Str(s), None) => cast_value(&Value::Str(s.clone()), &DataType::Utf8, &DataType::Date32).unwrap_or_default(),
                (Value::Str(s), Some(p)) => text(p)
                    .and_then(|p| with_pattern(p, |p| p.parse(s).ok()))
                    .map_or(Value::Null, |t| Value::Date(t.div_euclid(MICROS_PER_DAY) as i32)),
                _ => Value::Null,
            },
        },
        RowFunction {
            name: "date_add",
            description: "date_add(date, n): the date n days later",
            min: 2,
            max: 2,
            args: |a| Ok(vec![if matches!(a[0], DataType::Date32) { DataType::Date32 } else { temporal(&a[0]) }, DataType::Int64]),
            ret: |_| DataType::Date32,
            eval: |v, _| match (days(&v[0]), long(&v[1])) {
                (Some(d), Some(n)) => Value::Date((d + n) as i32),
                _ => Value::Null,
            },
        },
        RowFunction {
            name: "date_sub",
            description: "date_sub(date, n): the date n days earlier",
            min: 2,
            max: 2,
            args: |a| Ok(vec![if matches!(a[0], DataType::Date32) { DataType::Date32 } else { temporal(&a[0]) }, DataType::Int64]),
            ret: |_| DataType::Date32,
            eval: |v, _| match (days(&v[0]), long(&v[1])) {
                (Some(d), Some(n)) => Value::Date((d - n) as i32),
                _ => Value::Null,
            },
        },
        RowFunction {
            name: "trunc",
            description: "trunc(date, unit): the date truncated to 'year'/'yyyy'/'yy', 'quarter', 'month'/'mm'/'mon' or 'week'",
            min: 2,
            max: 2,
            args: |a| Ok(vec![if matches!(a[0], DataType::Date32) { DataType::Date32 } else { temporal(&a[0]) }, DataType::Utf8]),
            ret: |_| DataType::Date32,
            eval: |v, _| {
                let (Some(d), Some(unit)) = (days(&v[0]), text(&v[1])) else { return Value::Null };
                let (y, m, _) = civil_from_days(d);
                let out = match unit.to_ascii_lowercase().as_str() {
                    "year" | "yyyy" | "yy" => days_from_civil(y, 1, 1),
                    "quarter" => days_from_civil(y, (m - 1) / 3 * 3 + 1, 1),
                    "month" | "mm" | "mon" => days_from_civil(y, m, 1),
                    "week" => d - (d + 3).rem_euclid(7),
                    _ => return Value::Null,
                };
                Value::Date(out as i32)
            },
        },
        RowFunction {
            name: "split",
            description: "split(text, regex[, limit]): the parts of text between matches of regex",
            min: 2,
            max: 3,
            args: |a| Ok(if a.len() == 3 { vec![DataType::Utf8, DataType::Utf8, DataType::Int64] } else { vec![DataType::Utf8, DataType::Utf8] }),
            ret: |_| DataType::List(Arc::new(arrow::datatypes::Field::new("item", DataType::Utf8, true))),
            eval: |v, _| {
                let (Some(s), Some(p)) = (text(&v[0]), text(&v[1])) else { return Value::Null };
                let limit = v.get(2).and_then(long).unwrap_or(-1);
                with_regex(p, |re| Some(Value::List(Arc::from(split(s, re, limit))))).unwrap_or_default()
            },
        },
        RowFunction {
            name: "regexp_extract",
            description: "regexp_extract(text, regex, group): the group'th group of the first match ('' when none matches)",
            min: 2,
            max: 3,
            args: |a| Ok(if a.len() == 3 { vec![DataType::Utf8, DataType::Utf8, DataType::Int64] } else { vec![DataType::Utf8, DataType::Utf8] }),
            ret: |_| DataType::Utf8,
            eval: |v, _| {
                let (Some(s), Some(p)) = (text(&v[0]), text(&v[1])) else { return Value::Null };
                let group = v.get(2).map_or(Some(1), long);
                let Some(group) = group.and_then(|g| usize::try_from(g).ok()) else { return Value::Null };
                with_regex(p, |re| {
                    if group > re.captures_len() - 1 {
                        return None;
                    }
                    Some(match re.captures(s) {
                        Some(c) => Value::str(c.get(group).map_or("", |m| m.as_str())),
                        None => Value::str(""),
                    })
                })
                .unwrap_or_default()
            },
        },
        RowFunction {
            name: "regexp_replace",
            description: "regexp_replace(text, regex, replacement): every match replaced ($1 refers to a group)",
            min: 3,
            max: 3,
            args: strings,
            ret: |_| DataType::Utf8,
            eval: |v, _| {
                let (Some(s), Some(p), Some(r)) = (text(&v[0]), text(&v[1]), text(&v[2])) else { return Value::Null };
                let r = java_replacement(r);
                with_regex(p, |re| Some(Value::str(&re.replace_all(s, r.as_str())))).unwrap_or_default()
            },
        },
        RowFunction {
            name: "initcap",
            description: "initcap(text): each space-separated word capitalised, the rest lower case",
            min: 1,
            max: 1,
            args: strings,
            ret: |_| DataType::Utf8,
            eval: |v, _| text(&v[0]).map_or(Value::Null, |s| Value::str(&initcap(s))),
        },
        RowFunction {
            name: "sqrt",
            description: "sqrt(x): the square root; NaN for negative x",
            min: 1,
            max: 1,
            args: |_| Ok(vec![DataType::Float64]),
            ret: |_| DataType::Float64,
            eval: |v, _| v[0].as_f64().map_or(Value::Null, |x| Value::Double(x.sqrt())),
        },
        RowFunction {
            name: "hash",
            description: "hash(a, ...): Spark's Murmur3 hash of the arguments (seed 42), an int",
            min: 1,
            max: usize::MAX,
            args: |a| Ok(a.to_vec()),
            ret: |_| DataType::Int32,
            eval: |v, types| {
                let h = v.iter().zip(types.iter().chain(std::iter::repeat(&DataType::Null))).fold(42u32, |h, (x, t)| spark_hash(x, t, h));
                Value::Long(i64::from(h as i32))
            },
        },
        RowFunction {
            name: "element_at",
            description: "element_at(array, i): the i'th element (from 1; negative counts from the end); element_at(map, key): the key's value",
            min: 2,
            max: 2,
            args: |a| Ok(match &a[0] {
                DataType::Map(..) => a.to_vec(),
                _ => vec![a[0].clone(), DataType::Int64],
            }),
            ret: |a| match &a[0] {
                DataType::List(f) => f.data_type().clone(),
                DataType::Map(f, _) => match f.data_type() {
                    DataType::Struct(kv) if kv.len() == 2 => kv[1].data_type().clone(),
                    _ => DataType::Null,
                },
                _ => DataType::Null,
            },
            eval: |v, _| match (&v[0], &v[1]) {
                (Value::List(items), Value::Long(i)) => {
                    let n = items.len() as i64;
                    let at = if *i > 0 { i - 1 } else { n + i };
                    if (0..n).contains(&at) && *i != 0 { items[at as usize].clone() } else { Value::Null }
                }
                (Value::Map(entries), k) => entries.iter().find(|(key, _)| key == k).map_or(Value::Null, |(_, x)| x.clone()),
                _ => Value::Null,
            },
        },
        RowFunction {
            name: "spark_get_item",
            description: "a[i] (from 0) of an array, m[key] of a map",
            min: 2,
            max: 2,
            args: |a| Ok(match &a[0] {
                DataType::Map(..) => a.to_vec(),
                _ => vec![a[0].clone(), DataType::Int64],
            }),
            ret: |a| match &a[0] {
                DataType::List(f) => f.data_type().clone(),
                DataType::Map(f, _) => match f.data_type() {
                    DataType::Struct(kv) if kv.len() == 2 => kv[1].data_type().clone(),
                    _ => DataType::Null,
                },
                _ => DataType::Null,
            },
            eval: |v, _| match (&v[0], &v[1]) {
                (Value::List(items), Value::Long(i)) => usize::try_from(*i).ok().and_then(|i| items.get(i)).cloned().unwrap_or_default(),
                (Value::Map(entries), k) => entries.iter().find(|(key, _)| key == k).map_or(Value::Null, |(_, x)| x.clone()),
                _ => Value::Null,
            },
        },
        RowFunction {
            name: "string",
            description: "string(x): CAST(x AS STRING)",
            min: 1,
            max: 1,
            args: |a| Ok(a.to_vec()),
            ret: |_| DataType::Utf8,
            eval: |v, types| if v[0].is_null() { Value::Null } else { Value::str(&spark_string(&v[0], &types[0])) },
        },
    ];
    fns.into_iter().map(Arc::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_murmur3_matches_spark() {
        // SELECT hash(...) in Spark 3.5 / 4.0.
        assert_eq!(hash_int(1, 42) as i32, -559_580_957);
        assert_eq!(hash_long(1, 42) as i32, -1_712_319_331);
        assert_eq!(hash_bytes(b"Spark", 42) as i32, 228_093_765);
        assert_eq!(hash_bytes(b"", 42) as i32, 142_593_372);
    }

    #[test]
    fn helpers() {
        assert_eq!(initcap("hello-world FOO bar"), "Hello-world Foo Bar");
        assert_eq!(java_replacement("<$1>\\$"), "<${1}>$$");
        assert_eq!(iso_week(crate::time::days_from_civil(2016, 7, 26)), 30);
        assert_eq!(iso_week(crate::time::days_from_civil(2021, 1, 1)), 53);
    }
}
