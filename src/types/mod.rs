//! The value model every other module shares: SQL data types, values, rows and schemas.
//! Pure data; depends on nothing but `time` (for timestamp formatting).

mod hash;
pub mod keys;

pub use hash::{FxHashMap, FxHasher};

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

pub use keys::{decode_key, encode_key_value, KeyDecodeError};

/// A SQL data type. Integers are all 64-bit (`long`), as Spark's `bigint`; floating point is
/// `double`. `Window` is the struct Spark's `window(...)` returns: `{start, end}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    String,
    Long,
    Double,
    Boolean,
    Timestamp,
    Window,
    /// The type of the literal NULL, before it is coerced to another type.
    Null,
}

impl DataType {
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Long | DataType::Double)
    }

    /// The name a user writes in a schema or a CAST.
    pub fn name(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Long => "long",
            DataType::Double => "double",
            DataType::Boolean => "boolean",
            DataType::Timestamp => "timestamp",
            DataType::Window => "window",
            DataType::Null => "null",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One SQL value. Timestamps are microseconds since the Unix epoch, UTC (Spark's precision).
#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(Arc<str>),
    Timestamp(i64),
    /// A window `[start, end)`, both in microseconds.
    Window {
        start: i64,
        end: i64,
    },
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as f64, for numeric promotion.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Long(v) => Some(*v as f64),
            Value::Double(v) => Some(*v),
            _ => None,
        }
    }

    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Null,
            Value::Bool(_) => DataType::Boolean,
            Value::Long(_) => DataType::Long,
            Value::Double(_) => DataType::Double,
            Value::Str(_) => DataType::String,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::Window { .. } => DataType::Window,
        }
    }

    /// SQL ordering between two non-null values of comparable types; `None` when either is
    /// NULL or the types cannot be compared. Doubles order as Spark orders them (NaN largest).
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Long(a), Long(b)) => Some(a.cmp(b)),
            (Long(a), Double(b)) => Some(total_cmp_f64(*a as f64, *b)),
            (Double(a), Long(b)) => Some(total_cmp_f64(*a, *b as f64)),
            (Double(a), Double(b)) => Some(total_cmp_f64(*a, *b)),
            (Str(a), Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Timestamp(a), Timestamp(b)) => Some(a.cmp(b)),
            (Window { start: a, end: ae }, Window { start: b, end: be }) => Some((a, ae).cmp(&(b, be))),
            _ => None,
        }
    }
}

/// Spark's double ordering: -0.0 == 0.0, NaN equals NaN and is greater than everything.
fn total_cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            _ => self.sql_cmp(other) == Some(Ordering::Equal) && self.data_type() == other.data_type(),
        }
    }
}

/// A row: values in the order of some schema.
pub type Row = Vec<Value>;

/// A named, typed column.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    /// For timestamps given as numbers: how many of them make one second.
    pub numeric_unit: TimeUnit,
}

impl Field {
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Field {
        Field { name: name.into(), data_type, nullable, numeric_unit: TimeUnit::Millis }
    }
}

/// The unit of a timestamp written as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeUnit {
    Seconds,
    #[default]
    Millis,
    Micros,
}

impl TimeUnit {
    /// Microseconds per unit.
    pub fn micros(self) -> i64 {
        match self {
            TimeUnit::Seconds => 1_000_000,
            TimeUnit::Millis => 1_000,
            TimeUnit::Micros => 1,
        }
    }
}

/// An ordered list of fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub fields: Vec<Field>,
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> Schema {
        Schema { fields }
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_comparison_promotes() {
        assert_eq!(Value::Long(2).sql_cmp(&Value::Double(2.5)), Some(Ordering::Less));
        assert_eq!(Value::Double(f64::NAN).sql_cmp(&Value::Double(1e300)), Some(Ordering::Greater));
        assert_eq!(Value::Null.sql_cmp(&Value::Long(1)), None);
        assert_eq!(Value::str("b").sql_cmp(&Value::str("a")), Some(Ordering::Greater));
    }

    #[test]
    fn equality_is_typed() {
        assert_eq!(Value::Long(1), Value::Long(1));
        assert_ne!(Value::Long(1), Value::Double(1.0));
        assert_eq!(Value::Null, Value::Null);
    }
}
