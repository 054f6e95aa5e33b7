//! Spark's `approx_count_distinct(x[, rsd])` over any type: DataFusion's `approx_distinct`
//! (HyperLogLog) takes neither doubles nor the relative standard deviation argument, so a
//! double is counted by its bits (after Spark's normalisation: -0.0 is 0.0, every NaN is one
//! NaN) and `rsd` is accepted and checked but not used: DataFusion's sketch has one precision
//! (16,384 registers, about 0.8% standard error; Spark's default rsd is 5%). Both count small
//! sets exactly. Depends on DataFusion's aggregate API only.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Float32Type, Float64Type};
use datafusion_common::{plan_err, Result, ScalarValue};
use datafusion_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use datafusion_physical_expr::expressions::Literal;

#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxCountDistinct {
    inner: Arc<AggregateUDF>,
    signature: Signature,
}

/// The bits a double is counted by: equal for values Spark counts as one.
fn canonical_bits(x: f64) -> i64 {
    let x = if x == 0.0 {
        0.0
    } else if x.is_nan() {
        f64::NAN
    } else {
        x
    };
    x.to_bits() as i64
}

/// What the inner sketch is given for an argument of type `t`.
fn counted_type(t: &DataType) -> DataType {
    match t {
        DataType::Float32 | DataType::Float64 => DataType::Int64,
        other => other.clone(),
    }
}

impl AggregateUDFImpl for ApproxCountDistinct {
    fn name(&self) -> &str {
        "approx_count_distinct"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [x] => Ok(vec![x.clone()]),
            [x, rsd] if rsd.is_numeric() || rsd == &DataType::Null => Ok(vec![x.clone(), DataType::Float64]),
            _ => plan_err!(
                "approx_count_distinct takes a column and optionally the relative standard deviation: approx_count_distinct(x[, 0.05])"
            ),
        }
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        // Spark's type; the sketch counts in u64.
        Ok(DataType::Int64)
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if let Some(rsd) = args.exprs.get(1) {
            match rsd.downcast_ref::<Literal>().map(|l| l.value()) {
                Some(ScalarValue::Float64(Some(r))) if *r > 0.0 && *r < 1.0 => {}
                _ => return plan_err!("approx_count_distinct's relative standard deviation must be a literal between 0 and 1"),
            }
        }
        let x = args.expr_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
        let field: FieldRef = Arc::new(Field::new("x", counted_type(&x), true));
        let schema = arrow::datatypes::Schema::new(vec![field.clone()]);
        let exprs = [args.exprs[0].clone()];
        let inner = self.inner.accumulator(AccumulatorArgs {
            return_field: Arc::new(Field::new(args.name, DataType::UInt64, true)),
            schema: &schema,
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: args.name,
            is_distinct: false,
            exprs: &exprs,
            expr_fields: &[field],
        })?;
        Ok(Box::new(Bits { inner }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let x = args.input_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
        let fields = [Arc::new(Field::new("x", counted_type(&x), true))];
        self.inner.state_fields(StateFieldsArgs { input_fields: &fields, ..args })
    }
}

/// Hands the sketch the value column only, doubles as their canonical bits.
#[derive(Debug)]
struct Bits {
    inner: Box<dyn Accumulator>,
}

impl Accumulator for Bits {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else { return Ok(()) };
        let bits: Option<Int64Array> = match x.data_type() {
            DataType::Float64 => Some(x.as_primitive::<Float64Type>().iter().map(|v| v.map(canonical_bits)).collect()),
            DataType::Float32 => Some(x.as_primitive::<Float32Type>().iter().map(|v| v.map(|f| canonical_bits(f64::from(f)))).collect()),
            _ => None,
        };
        match bits {
            Some(b) => self.inner.update_batch(&[Arc::new(b) as ArrayRef]),
            None => self.inner.update_batch(&values[..1]),
        }
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.inner.evaluate()? {
            ScalarValue::UInt64(n) => Ok(ScalarValue::Int64(n.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))),
            other => Ok(other),
        }
    }
    fn size(&self) -> usize {
        self.inner.size() + std::mem::size_of::<Self>()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }
}

/// Spark's `approx_count_distinct` over DataFusion's sketch.
pub fn udaf() -> Arc<AggregateUDF> {
    let inner = datafusion_functions_aggregate::approx_distinct::approx_distinct_udaf();
    Arc::new(AggregateUDF::new_from_impl(ApproxCountDistinct { inner, signature: Signature::user_defined(Volatility::Immutable) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_spark_counts_as_one_have_one_bit_pattern() {
        assert_eq!(canonical_bits(0.0), canonical_bits(-0.0));
        assert_eq!(canonical_bits(f64::NAN), canonical_bits(-f64::NAN));
        assert_ne!(canonical_bits(1.0), canonical_bits(1.0 + f64::EPSILON));
    }
}
