//! Gathers decoded rows into one Arrow record batch: typed builders for flat columns, values
//! turned into arrays at the end for nested ones, and all-NULL arrays for the columns no query
//! reads (the decoders skip those).

use arrow::array::{
    new_null_array, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, RecordBatchOptions,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use crate::types::arrays::values_to_array;
use crate::types::Value;

/// The string columns of one decoded record, as bytes in one buffer instead of a `Value::Str`
/// each: the batch builder copies them into its string column, so a record's strings cost
/// no allocation. `spans[i]` is column i's byte range in `buf`, or `None`.
#[derive(Default)]
pub struct Texts {
    buf: String,
    spans: Vec<Option<(u32, u32)>>,
}

impl Texts {
    pub(crate) fn reset(&mut self, columns: usize) {
        self.buf.clear();
        self.spans.clear();
        self.spans.resize(columns, None);
    }

    pub(crate) fn set(&mut self, i: usize, text: &str) {
        let start = self.buf.len();
        self.buf.push_str(text);
        if let Some(span) = self.spans.get_mut(i) {
            *span = Some((start as u32, self.buf.len() as u32));
        }
    }

    pub(crate) fn clear(&mut self, i: usize) {
        if let Some(span) = self.spans.get_mut(i) {
            *span = None;
        }
    }

    /// Column i's text, when the record had one.
    pub fn get(&self, i: usize) -> Option<&str> {
        let (a, b) = (*self.spans.get(i)?)?;
        self.buf.get(a as usize..b as usize)
    }

    pub(crate) fn has(&self, i: usize) -> bool {
        self.spans.get(i).is_some_and(Option::is_some)
    }
}

enum Col {
    /// A column no query reads: a slice of one all-NULL array, grown when a batch is longer.
    Skipped(Option<ArrayRef>),
    I64(Int64Builder),
    I32(Int32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Utf8(StringBuilder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Values(Vec<Value>),
}

/// Rows of one schema, column by column.
pub struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<Col>,
    rows: usize,
}

impl BatchBuilder {
    /// `needed[i]` says whether column i is read; others stay NULL.
    pub fn new(schema: SchemaRef, needed: &[bool]) -> BatchBuilder {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if !needed.get(i).copied().unwrap_or(true) {
                    return Col::Skipped(None);
                }
                match f.data_type() {
                    DataType::Int64 => Col::I64(Int64Builder::new()),
                    DataType::Int32 => Col::I32(Int32Builder::new()),
                    DataType::Float64 => Col::F64(Float64Builder::new()),
                    DataType::Boolean => Col::Bool(BooleanBuilder::new()),
                    DataType::Utf8 => Col::Utf8(StringBuilder::new()),
                    DataType::Timestamp(TimeUnit::Microsecond, None) => Col::Ts(TimestampMicrosecondBuilder::new()),
                    DataType::Date32 => Col::Date(Date32Builder::new()),
                    _ => Col::Values(Vec::new()),
                }
            })
            .collect();
        BatchBuilder { schema, columns, rows: 0 }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row (values in column order; missing ones are NULL).
    pub fn push(&mut self, row: &[Value]) {
        for (i, col) in self.columns.iter_mut().enumerate() {
            push_one(col, row.get(i).unwrap_or(&Value::Null));
        }
        self.rows += 1;
    }

    /// Appends one row whose string columns' values are in `texts` (a decoder's output;
    /// a string column without text there takes its value from `row`).
    pub fn push_texts(&mut self, row: &[Value], texts: &Texts) {
        for (i, col) in self.columns.iter_mut().enumerate() {
            if let Col::Utf8(b) = col {
                match (texts.get(i), row.get(i)) {
                    (Some(t), _) => b.append_value(t),
                    (None, Some(Value::Str(s))) => b.append_value(s),
                    _ => b.append_null(),
                }
            } else {
                push_one(col, row.get(i).unwrap_or(&Value::Null));
            }
        }
        self.rows += 1;
    }

    /// The rows so far as a batch; the builder is empty afterwards.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let n = self.rows;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (col, field) in self.columns.iter_mut().zip(self.schema.fields()) {
            arrays.push(match col {
                Col::Skipped(nulls) => match nulls {
                    Some(a) if a.len() >= n => a.slice(0, n),
                    _ => {
                        let a = new_null_array(field.data_type(), n.max(1024));
                        *nulls = Some(a.clone());
                        a.slice(0, n)
                    }
                },
                Col::I64(b) => std::sync::Arc::new(b.finish()),
                Col::I32(b) => std::sync::Arc::new(b.finish()),
                Col::F64(b) => std::sync::Arc::new(b.finish()),
                Col::Bool(b) => std::sync::Arc::new(b.finish()),
                Col::Utf8(b) => std::sync::Arc::new(b.finish()),
                Col::Ts(b) => std::sync::Arc::new(b.finish()),
                Col::Date(b) => std::sync::Arc::new(b.finish()),
                Col::Values(vs) => {
                    let a = values_to_array(vs.iter(), field.data_type())?;
                    vs.clear();
                    a
                }
            });
        }
        self.rows = 0;
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &RecordBatchOptions::new().with_row_count(Some(n)))
    }
}

#[inline]
fn push_one(col: &mut Col, v: &Value) {
    match col {
        Col::Skipped(_) => {}
        Col::I64(b) => b.append_option(match v {
            Value::Long(x) => Some(*x),
            _ => None,
        }),
        Col::I32(b) => b.append_option(match v {
            Value::Long(x) => Some(*x as i32),
            _ => None,
        }),
        Col::F64(b) => b.append_option(v.as_f64()),
        Col::Bool(b) => b.append_option(v.as_bool()),
        Col::Utf8(b) => match v {
            Value::Str(s) => b.append_value(s),
            _ => b.append_null(),
        },
        Col::Ts(b) => b.append_option(match v {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }),
        Col::Date(b) => b.append_option(match v {
            Value::Date(d) => Some(*d),
            _ => None,
        }),
        Col::Values(vs) => vs.push(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::arrays::ColumnReader;
    use crate::types::{parse_type, timestamp_type, Field, Schema};

    #[test]
    fn rows_become_columns_and_skipped_columns_stay_null() {
        let schema = Schema::new(vec![
            Field::new("t", timestamp_type(), false),
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("tags", parse_type("array<string>").unwrap(), true),
        ]);
        let mut b = BatchBuilder::new(schema.to_arrow(), &[true, true, false, true]);
        let tags = Value::List(std::sync::Arc::from(vec![Value::str("x")]));
        b.push(&[Value::Timestamp(5), Value::str("a"), Value::Long(9), tags.clone()]);
        b.push(&[Value::Timestamp(6), Value::Null, Value::Long(1), Value::Null]);
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let col = |i: usize, r: usize| ColumnReader::new(batch.column(i).as_ref()).value(r);
        assert_eq!(
            (col(0, 1), col(1, 0), col(1, 1), col(2, 0), col(3, 0)),
            (Value::Timestamp(6), Value::str("a"), Value::Null, Value::Null, tags)
        );
        assert_eq!(b.finish().unwrap().num_rows(), 0, "finish empties the builder");
    }
}
