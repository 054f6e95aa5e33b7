//! Rows of [`Value`]s and Arrow arrays, both ways: a [`ColumnReader`] reads one array's cells
//! as values (or straight into key bytes, without allocating), and [`values_to_array`] /
//! [`rows_to_batch`] build arrays of a given type from values. Operators keep rows of values;
//! everything between the decoder and the encoder is Arrow.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, ListArray, MapArray, RecordBatch, RecordBatchOptions,
    StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, SchemaRef,
    TimeUnit as ArrowTimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::error::ArrowError;

use super::keys::encode_key_value;
use super::{is_window, Row, Value, I128};

/// One array, downcast once, read cell by cell.
pub struct ColumnReader<'a> {
    array: &'a dyn Array,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Null,
    Bool(&'a arrow::array::BooleanArray),
    I64(&'a arrow::array::Int64Array),
    I32(&'a arrow::array::Int32Array),
    F64(&'a arrow::array::Float64Array),
    Utf8(&'a arrow::array::StringArray),
    Utf8View(&'a arrow::array::StringViewArray),
    TsMicros(&'a arrow::array::TimestampMicrosecondArray),
    /// Anything else: converted by [`value_at`].
    Other,
}

impl<'a> ColumnReader<'a> {
    pub fn new(array: &'a dyn Array) -> ColumnReader<'a> {
        let kind = match array.data_type() {
            DataType::Null => Kind::Null,
            DataType::Boolean => Kind::Bool(array.as_boolean()),
            DataType::Int64 => Kind::I64(array.as_primitive::<Int64Type>()),
            DataType::Int32 => Kind::I32(array.as_primitive::<Int32Type>()),
            DataType::Float64 => Kind::F64(array.as_primitive::<Float64Type>()),
            DataType::Utf8 => Kind::Utf8(array.as_string::<i32>()),
            DataType::Utf8View => Kind::Utf8View(array.as_string_view()),
            DataType::Timestamp(ArrowTimeUnit::Microsecond, _) => Kind::TsMicros(array.as_primitive::<TimestampMicrosecondType>()),
            _ => Kind::Other,
        };
        ColumnReader { array, kind }
    }

    pub fn len(&self) -> usize {
        self.array.len()
    }

    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }

    pub fn is_null(&self, i: usize) -> bool {
        matches!(self.kind, Kind::Null) || self.array.is_null(i)
    }

    /// The cell as a value.
    pub fn value(&self, i: usize) -> Value {
        if self.is_null(i) {
            return Value::Null;
        }
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(a) => Value::Bool(a.value(i)),
            Kind::I64(a) => Value::Long(a.value(i)),
            Kind::I32(a) => Value::Long(i64::from(a.value(i))),
            Kind::F64(a) => Value::Double(a.value(i)),
            Kind::Utf8(a) => Value::str(a.value(i)),
            Kind::Utf8View(a) => Value::str(a.value(i)),
            Kind::TsMicros(a) => Value::Timestamp(a.value(i)),
            Kind::Other => value_at(self.array, i),
        }
    }

    /// A timestamp cell in microseconds (any unit is converted), `None` for NULL.
    pub fn timestamp(&self, i: usize) -> Option<i64> {
        if self.is_null(i) {
            return None;
        }
        match &self.kind {
            Kind::TsMicros(a) => Some(a.value(i)),
            _ => match value_at(self.array, i) {
                Value::Timestamp(t) => Some(t),
                _ => None,
            },
        }
    }

    /// True when the cell is TRUE (a predicate passes): NULL and FALSE do not.
    pub fn is_true(&self, i: usize) -> bool {
        match &self.kind {
            Kind::Bool(a) => a.is_valid(i) && a.value(i),
            _ => false,
        }
    }

    /// Appends the cell's order-preserving key encoding (as [`encode_key_value`] of
    /// [`ColumnReader::value`] would), without building a value for flat types.
    pub fn encode_key(&self, i: usize, out: &mut Vec<u8>) {
        if self.is_null(i) {
            encode_key_value(&Value::Null, out);
            return;
        }
        match &self.kind {
            Kind::Utf8(a) => super::keys::encode_str(a.value(i), out),
            Kind::Utf8View(a) => super::keys::encode_str(a.value(i), out),
            Kind::I64(a) => encode_key_value(&Value::Long(a.value(i)), out),
            Kind::I32(a) => encode_key_value(&Value::Long(i64::from(a.value(i))), out),
            _ => encode_key_value(&self.value(i), out),
        }
    }
}

/// A cell read without building a value (strings are borrowed); `Other` for the kinds
/// [`ColumnReader::value`] converts.
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(&'a str),
    Timestamp(i64),
    Other,
}

impl<'a> ColumnReader<'a> {
    /// Cell `i` as a [`Cell`].
    #[inline]
    pub fn cell(&self, i: usize) -> Cell<'a> {
        if self.is_null(i) {
            return Cell::Null;
        }
        match &self.kind {
            Kind::Null => Cell::Null,
            Kind::Bool(a) => Cell::Bool(a.value(i)),
            Kind::I64(a) => Cell::Long(a.value(i)),
            Kind::I32(a) => Cell::Long(i64::from(a.value(i))),
            Kind::F64(a) => Cell::Double(a.value(i)),
            Kind::Utf8(a) => Cell::Str(a.value(i)),
            Kind::Utf8View(a) => Cell::Str(a.value(i)),
            Kind::TsMicros(a) => Cell::Timestamp(a.value(i)),
            Kind::Other => Cell::Other,
        }
    }
}

/// Cell `i` of any array as a value (NULL, flat, or nested).
pub fn value_at(array: &dyn Array, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::Long(i64::from(array.as_primitive::<Int8Type>().value(i))),
        DataType::Int16 => Value::Long(i64::from(array.as_primitive::<Int16Type>().value(i))),
        DataType::Int32 => Value::Long(i64::from(array.as_primitive::<Int32Type>().value(i))),
        DataType::Int64 => Value::Long(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::Long(i64::from(array.as_primitive::<UInt8Type>().value(i))),
        DataType::UInt16 => Value::Long(i64::from(array.as_primitive::<UInt16Type>().value(i))),
        DataType::UInt32 => Value::Long(i64::from(array.as_primitive::<UInt32Type>().value(i))),
        DataType::UInt64 => Value::Long(array.as_primitive::<UInt64Type>().value(i) as i64),
        DataType::Float32 => Value::Double(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Value::Double(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::str(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Value::str(array.as_string::<i64>().value(i)),
        DataType::Utf8View => Value::str(array.as_string_view().value(i)),
        DataType::Binary => Value::Binary(Arc::from(array.as_binary::<i32>().value(i))),
        DataType::LargeBinary => Value::Binary(Arc::from(array.as_binary::<i64>().value(i))),
        DataType::BinaryView => Value::Binary(Arc::from(array.as_binary_view().value(i))),
        DataType::Timestamp(unit, _) => Value::Timestamp(match unit {
            ArrowTimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(i).saturating_mul(1_000_000),
            ArrowTimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(i).saturating_mul(1_000),
            ArrowTimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(i),
            ArrowTimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(i).div_euclid(1_000),
        }),
        DataType::Date32 => Value::Date(array.as_primitive::<Date32Type>().value(i)),
        DataType::Date64 => Value::Date(array.as_primitive::<Date64Type>().value(i).div_euclid(86_400_000) as i32),
        DataType::Decimal128(..) => Value::Decimal(I128::new(array.as_primitive::<Decimal128Type>().value(i))),
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let items = list.value(i);
            Value::List((0..items.len()).map(|j| value_at(items.as_ref(), j)).collect())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            let items = list.value(i);
            Value::List((0..items.len()).map(|j| value_at(items.as_ref(), j)).collect())
        }
        t @ DataType::Struct(_) => {
            let s = array.as_struct();
            if is_window(t) {
                let start = value_at(s.column(0).as_ref(), i);
                let end = value_at(s.column(1).as_ref(), i);
                if let (Value::Timestamp(start), Value::Timestamp(end)) = (start, end) {
                    return Value::Window { start, end };
                }
            }
            Value::Struct(s.columns().iter().map(|c| value_at(c.as_ref(), i)).collect())
        }
        DataType::Map(..) => {
            let m = array.as_map();
            let entries = m.value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            Value::Map((0..entries.len()).map(|j| (value_at(keys.as_ref(), j), value_at(values.as_ref(), j))).collect())
        }
        DataType::Dictionary(..) => {
            let d = array.as_any_dictionary();
            let key = d.normalized_keys()[i];
            value_at(d.values().as_ref(), key)
        }
        _ => Value::Null,
    }
}

fn scale_error(t: &DataType) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("cannot build an array of type {t} from values"))
}

/// An array of type `t` holding `values` (a value of another kind becomes NULL).
pub fn values_to_array<'v>(values: impl ExactSizeIterator<Item = &'v Value>, t: &DataType) -> Result<ArrayRef, ArrowError> {
    let n = values.len();
    Ok(match t {
        DataType::Null => new_null_array(t, n),
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_bool()));
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(n);
            values.for_each(|v| b.append_option(long(v)));
            Arc::new(b.finish())
        }
        DataType::Int32 => {
            let mut b = Int32Builder::with_capacity(n);
            values.for_each(|v| b.append_option(long(v).map(|x| x as i32)));
            Arc::new(b.finish())
        }
        DataType::Int16 => {
            let mut b = Int16Builder::with_capacity(n);
            values.for_each(|v| b.append_option(long(v).map(|x| x as i16)));
            Arc::new(b.finish())
        }
        DataType::Int8 => {
            let mut b = Int8Builder::with_capacity(n);
            values.for_each(|v| b.append_option(long(v).map(|x| x as i8)));
            Arc::new(b.finish())
        }
        DataType::UInt64 | DataType::UInt32 | DataType::UInt16 | DataType::UInt8 => {
            let wide = values_to_array(values, &DataType::Int64)?;
            arrow::compute::cast(&wide, t)?
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_f64()));
            Arc::new(b.finish())
        }
        DataType::Float32 => {
            let mut b = Float32Builder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_f64().map(|x| x as f32)));
            Arc::new(b.finish())
        }
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(n, n * 8);
            values.for_each(|v| match v {
                Value::Str(s) => b.append_value(s),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::with_capacity(n, n * 8);
            values.for_each(|v| match v {
                Value::Binary(s) => b.append_value(s),
                Value::Str(s) => b.append_value(s.as_bytes()),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        DataType::Timestamp(ArrowTimeUnit::Microsecond, tz) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            values.for_each(|v| match v {
                Value::Timestamp(t) => b.append_value(*t),
                _ => b.append_null(),
            });
            Arc::new(b.finish().with_timezone_opt(tz.clone()))
        }
        DataType::Timestamp(..) => {
            let micros = values_to_array(values, &super::timestamp_type())?;
            arrow::compute::cast(&micros, t)?
        }
        DataType::Date32 => {
            let mut b = Date32Builder::with_capacity(n);
            values.for_each(|v| match v {
                Value::Date(d) => b.append_value(*d),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        DataType::Decimal128(p, s) => {
            let mut b = Decimal128Builder::with_capacity(n);
            values.for_each(|v| match v {
                Value::Decimal(d) => b.append_value(d.get()),
                _ => b.append_null(),
            });
            Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
        }
        DataType::List(field) => {
            let values: Vec<&Value> = values.collect();
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0i32);
            let mut items: Vec<&Value> = Vec::new();
            for v in &values {
                if let Value::List(xs) = v {
                    items.extend(xs.iter());
                }
                offsets.push(items.len() as i32);
            }
            let child = values_to_array(items.into_iter(), field.data_type())?;
            let nulls = NullBuffer::from(values.iter().map(|v| matches!(v, Value::List(_))).collect::<Vec<bool>>());
            Arc::new(ListArray::try_new(field.clone(), OffsetBuffer::new(offsets.into()), child, Some(nulls))?)
        }
        DataType::Struct(fields) => {
            let values: Vec<&Value> = values.collect();
            let window = is_window(t);
            let mut children = Vec::with_capacity(fields.len());
            for (fi, f) in fields.iter().enumerate() {
                let cells: Vec<Value> = values
                    .iter()
                    .map(|v| match v {
                        Value::Struct(xs) => xs.get(fi).cloned().unwrap_or_default(),
                        Value::Window { start, end } if window => Value::Timestamp(if fi == 0 { *start } else { *end }),
                        _ => Value::Null,
                    })
                    .collect();
                children.push(values_to_array(cells.iter(), f.data_type())?);
            }
            let nulls =
                NullBuffer::from(values.iter().map(|v| matches!(v, Value::Struct(_) | Value::Window { .. })).collect::<Vec<bool>>());
            if fields.is_empty() {
                return Ok(Arc::new(StructArray::new_empty_fields(n, Some(nulls))));
            }
            Arc::new(StructArray::try_new(fields.clone(), children, Some(nulls))?)
        }
        DataType::Map(entries_field, sorted) => {
            let DataType::Struct(kv) = entries_field.data_type() else { return Err(scale_error(t)) };
            let values: Vec<&Value> = values.collect();
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0i32);
            let (mut keys, mut vals): (Vec<&Value>, Vec<&Value>) = (Vec::new(), Vec::new());
            for v in &values {
                if let Value::Map(entries) = v {
                    for (k, x) in entries.iter() {
                        keys.push(k);
                        vals.push(x);
                    }
                }
                offsets.push(keys.len() as i32);
            }
            let key_array = values_to_array(keys.into_iter(), kv[0].data_type())?;
            let value_array = values_to_array(vals.into_iter(), kv[1].data_type())?;
            let entries = StructArray::try_new(kv.clone(), vec![key_array, value_array], None)?;
            let nulls = NullBuffer::from(values.iter().map(|v| matches!(v, Value::Map(_))).collect::<Vec<bool>>());
            Arc::new(MapArray::try_new(entries_field.clone(), OffsetBuffer::new(offsets.into()), entries, Some(nulls), *sorted)?)
        }
        DataType::Utf8View | DataType::LargeUtf8 => {
            let plain = values_to_array(values, &DataType::Utf8)?;
            arrow::compute::cast(&plain, t)?
        }
        other => return Err(scale_error(other)),
    })
}

fn long(v: &Value) -> Option<i64> {
    match v {
        Value::Long(x) => Some(*x),
        _ => None,
    }
}

/// A batch of `schema` from rows whose values follow its columns.
pub fn rows_to_batch(schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch, ArrowError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, f) in schema.fields().iter().enumerate() {
        let cells = rows.iter().map(|r| r.get(i).unwrap_or(&Value::Null));
        columns.push(values_to_array(Exact(cells, rows.len()), f.data_type())?);
    }
    RecordBatch::try_new_with_options(schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(rows.len())))
}

/// An iterator with a known length (`map` over a slice keeps it, but a boxed one would not).
struct Exact<I>(I, usize);

impl<I: Iterator> Iterator for Exact<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let v = self.0.next();
        if v.is_some() {
            self.1 = self.1.saturating_sub(1);
        }
        v
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for Exact<I> {}

/// The `end` column of a window-struct column (`None` for any other column).
pub fn window_ends(array: &dyn Array) -> Option<ArrayRef> {
    if !super::is_window(array.data_type()) {
        return None;
    }
    let s = array.as_any().downcast_ref::<StructArray>()?;
    s.column_by_name("end").cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{map_type, parse_type, window_type};

    fn round_trip(t: &DataType, values: Vec<Value>) {
        let array = values_to_array(values.iter(), t).unwrap();
        assert_eq!(array.data_type(), t);
        let back: Vec<Value> = (0..array.len()).map(|i| ColumnReader::new(array.as_ref()).value(i)).collect();
        assert_eq!(back, values, "{t}");
    }

    #[test]
    fn flat_and_nested_values_round_trip() {
        round_trip(&DataType::Int64, vec![Value::Long(1), Value::Null, Value::Long(-7)]);
        round_trip(&DataType::Int32, vec![Value::Long(5), Value::Null]);
        round_trip(&DataType::Utf8, vec![Value::str("a"), Value::Null, Value::str("")]);
        round_trip(&crate::types::timestamp_type(), vec![Value::Timestamp(5), Value::Null]);
        round_trip(&window_type(), vec![Value::Window { start: 0, end: 10 }, Value::Null]);
        round_trip(&DataType::Decimal128(10, 2), vec![Value::Decimal(I128::new(-1234)), Value::Null]);
        let nested = parse_type("struct<id: long, tags: array<string>, attrs: map<string, double>>").unwrap();
        round_trip(
            &nested,
            vec![
                Value::Struct(Arc::from(vec![
                    Value::Long(1),
                    Value::List(Arc::from(vec![Value::str("x"), Value::Null])),
                    Value::Map(Arc::from(vec![(Value::str("k"), Value::Double(1.5))])),
                ])),
                Value::Null,
                Value::Struct(Arc::from(vec![Value::Null, Value::Null, Value::Null])),
            ],
        );
        round_trip(&map_type(DataType::Utf8, DataType::Int64), vec![Value::Map(Arc::from(vec![])), Value::Null]);
    }

    #[test]
    fn string_keys_encode_without_a_value() {
        let array = values_to_array([Value::str("a\0b"), Value::Null].iter(), &DataType::Utf8).unwrap();
        let r = ColumnReader::new(array.as_ref());
        for i in 0..2 {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            r.encode_key(i, &mut fast);
            encode_key_value(&r.value(i), &mut slow);
            assert_eq!(fast, slow);
        }
    }
}
