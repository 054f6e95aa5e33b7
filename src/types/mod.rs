//! The value model every other module shares: SQL data types (Arrow's), values, rows and
//! schemas, and the conversions between rows of values and Arrow arrays. Pure data; depends on
//! nothing but `arrow` and `time` (for timestamp formatting).

pub mod arrays;
mod hash;
pub mod keys;
mod names;

pub use hash::{FxHashMap, FxHasher};
pub use names::{map_type, parse_type, type_name};

use std::cmp::Ordering;
use std::sync::Arc;

pub use arrow::datatypes::DataType;
use arrow::datatypes::{Field as ArrowField, Fields, Schema as ArrowSchema, SchemaRef, TimeUnit as ArrowTimeUnit};

pub use keys::{decode_key, encode_key_value, KeyDecodeError};

/// Spark's timestamp: microseconds since the Unix epoch, UTC.
pub const TIMESTAMP: DataType = DataType::Timestamp(ArrowTimeUnit::Microsecond, None);

/// Spark's timestamp: microseconds since the Unix epoch, UTC.
pub fn timestamp_type() -> DataType {
    TIMESTAMP
}

/// The struct Spark's `window(...)` and `session_window(...)` return: `{start, end}`.
pub fn window_type() -> DataType {
    DataType::Struct(window_fields())
}

pub fn window_fields() -> Fields {
    Fields::from(vec![ArrowField::new("start", timestamp_type(), true), ArrowField::new("end", timestamp_type(), true)])
}

/// True for the window struct.
pub fn is_window(t: &DataType) -> bool {
    matches!(t, DataType::Struct(f) if f.len() == 2 && f[0].name() == "start" && f[1].name() == "end" && is_timestamp(f[0].data_type()))
}

/// Any Arrow timestamp (eddy's own are microseconds without a zone).
pub fn is_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(..))
}

/// Integers and floating point (decimals are numeric too, but exact).
pub fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Null)
}

/// One SQL value. Timestamps are microseconds since the Unix epoch, UTC (Spark's precision);
/// every integer width is a `Long` and every float a `Double` (the column's type says which);
/// a decimal is its unscaled integer (the column's type has the scale); a date is days since
/// the epoch.
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
    Date(i32),
    /// The unscaled value (the column's type has the scale).
    Decimal(I128),
    Binary(Arc<[u8]>),
    List(Arc<[Value]>),
    Struct(Arc<[Value]>),
    Map(Arc<[(Value, Value)]>),
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

    /// Which variant, for typed equality.
    fn kind(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Long(_) => 2,
            Value::Double(_) => 3,
            Value::Str(_) => 4,
            Value::Timestamp(_) => 5,
            Value::Window { .. } => 6,
            Value::Date(_) => 7,
            Value::Decimal(_) => 8,
            Value::Binary(_) => 9,
            Value::List(_) => 10,
            Value::Struct(_) => 11,
            Value::Map(_) => 12,
        }
    }

    /// SQL ordering between two non-null values of comparable types; `None` when either is
    /// NULL or the types cannot be compared. Doubles order as Spark orders them (NaN largest);
    /// lists and structs compare element by element, NULLs first.
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
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Decimal(a), Decimal(b)) => Some(a.cmp(b)),
            (Binary(a), Binary(b)) => Some(a.cmp(b)),
            (List(a), List(b)) | (Struct(a), Struct(b)) => cmp_seq(a, b),
            _ => None,
        }
    }
}

fn cmp_seq(a: &[Value], b: &[Value]) -> Option<Ordering> {
    for (x, y) in a.iter().zip(b) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.sql_cmp(y)?,
        };
        if o != Ordering::Equal {
            return Some(o);
        }
    }
    Some(a.len().cmp(&b.len()))
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
            (Value::Map(a), Value::Map(b)) => a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.0 == y.0 && x.1 == y.1),
            (Value::List(a), Value::List(b)) | (Value::Struct(a), Value::Struct(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x == y)
            }
            _ => self.kind() == other.kind() && self.sql_cmp(other) == Some(Ordering::Equal),
        }
    }
}

/// An `i128` stored as two words, so that `Value` keeps 8-byte alignment (24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct I128 {
    hi: i64,
    lo: u64,
}

impl I128 {
    pub fn new(v: i128) -> I128 {
        I128 { hi: (v >> 64) as i64, lo: v as u64 }
    }

    pub fn get(self) -> i128 {
        (i128::from(self.hi) << 64) | i128::from(self.lo)
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

    pub fn to_arrow(&self) -> ArrowField {
        // Arrow's nullability is only a hint here: metadata columns and outer joins give NULLs
        // in columns a source declares required, so every column may hold NULL.
        ArrowField::new(&self.name, self.data_type.clone(), true)
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

    /// The Arrow schema of rows of this schema.
    pub fn to_arrow(&self) -> SchemaRef {
        Arc::new(ArrowSchema::new(self.fields.iter().map(Field::to_arrow).collect::<Vec<_>>()))
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
        let l = |v: Vec<Value>| Value::List(Arc::from(v));
        assert_eq!(l(vec![Value::Long(1), Value::Null]), l(vec![Value::Long(1), Value::Null]));
        assert_ne!(l(vec![Value::Long(1)]), l(vec![Value::Long(1), Value::Long(2)]));
        assert_eq!(l(vec![Value::Null, Value::Long(1)]).sql_cmp(&l(vec![Value::Long(0)])), Some(Ordering::Less));
    }

    #[test]
    fn the_window_type_is_recognised() {
        assert!(is_window(&window_type()));
        assert!(!is_window(&timestamp_type()));
    }
}
