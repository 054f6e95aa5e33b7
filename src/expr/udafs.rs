//! Spark aggregates DataFusion lacks, as DataFusion aggregate functions: `max_by`, `min_by`
//! and `percentile_approx` (and, from first_last.rs and percentile.rs, `first`/`last` with
//! `isIgnoreNull`, the exact `percentile`, `median` and `mode`). `percentile_approx` keeps a window's values and answers exactly
//! what Spark's quantile summary answers while it holds every value (Spark's accuracy 10000
//! means a relative rank error of at most 1/10000; eddy's answer has none).

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion_common::{plan_err, Result, ScalarValue};
use datafusion_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

/// `max_by(x, y)` / `min_by(x, y)`: x of the row with the largest (smallest) y; the last such
/// row on ties, as Spark (its update keeps the old value only when it is strictly better).
#[derive(Debug, PartialEq, Eq, Hash)]
struct By {
    max: bool,
    signature: Signature,
}

#[derive(Debug)]
struct ByAcc {
    max: bool,
    x: ScalarValue,
    y: ScalarValue,
}

impl ByAcc {
    fn offer(&mut self, x: ScalarValue, y: ScalarValue) {
        if y.is_null() {
            return;
        }
        let better = self.y.is_null()
            || match y.partial_cmp(&self.y) {
                Some(Ordering::Greater) => self.max,
                Some(Ordering::Less) => !self.max,
                Some(Ordering::Equal) => true,
                None => false,
            };
        if better {
            self.x = x;
            self.y = y;
        }
    }

    fn offer_arrays(&mut self, xs: &ArrayRef, ys: &ArrayRef) -> Result<()> {
        for i in 0..xs.len() {
            let y = ScalarValue::try_from_array(ys, i)?;
            if y.is_null() {
                continue;
            }
            let x = ScalarValue::try_from_array(xs, i)?;
            self.offer(x, y);
        }
        Ok(())
    }
}

impl Accumulator for ByAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer_arrays(&values[0], &values[1])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.x.clone())
    }
    fn size(&self) -> usize {
        self.x.size() + self.y.size()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.x.clone(), self.y.clone()])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer_arrays(&states[0], &states[1])
    }
}

impl AggregateUDFImpl for By {
    fn name(&self) -> &str {
        if self.max {
            "max_by"
        } else {
            "min_by"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != 2 {
            return plan_err!("{}() takes (value, ordering), not {} arguments", self.name(), args.len());
        }
        Ok(args.to_vec())
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Null))
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let x = ScalarValue::try_from(args.expr_fields[0].data_type())?;
        let y = ScalarValue::try_from(args.expr_fields[1].data_type())?;
        Ok(Box::new(ByAcc { max: self.max, x, y }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("x", args.input_fields[0].data_type().clone(), true)),
            Arc::new(Field::new("y", args.input_fields[1].data_type().clone(), true)),
        ])
    }
}

/// `percentile_approx(x, p[, accuracy])` with `p` a number or an array of numbers.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Percentile {
    signature: Signature,
}

#[derive(Debug)]
struct PercentileAcc {
    data_type: DataType,
    /// The percentages asked for, and whether they were an array.
    percentages: Vec<f64>,
    array: bool,
    values: Vec<ScalarValue>,
}

impl PercentileAcc {}

/// Appends the values of `xs` that are not null (Spark's order statistics leave nulls out).
pub(super) fn push_values(values: &mut Vec<ScalarValue>, xs: &ArrayRef) -> Result<()> {
    for i in 0..xs.len() {
        if xs.is_valid(i) {
            values.push(ScalarValue::try_from_array(xs, i)?);
        }
    }
    Ok(())
}

/// Appends the values of every group state in `states[0]` (lists of values).
pub(super) fn merge_values(values: &mut Vec<ScalarValue>, states: &[ArrayRef]) -> Result<()> {
    let lists = states[0].as_list::<i32>();
    for i in 0..lists.len() {
        if lists.is_valid(i) {
            push_values(values, &lists.value(i))?;
        }
    }
    Ok(())
}

/// A value as the double Spark's percentile summary keeps.
fn as_double(v: &ScalarValue) -> Option<f64> {
    let v = match v {
        ScalarValue::Date32(Some(d)) => return Some(f64::from(*d)),
        ScalarValue::TimestampMicrosecond(Some(t), _) => return Some(*t as f64),
        other => other.cast_to(&DataType::Float64).ok()?,
    };
    match v {
        ScalarValue::Float64(Some(x)) => Some(x),
        _ => None,
    }
}

/// A summary's double as a value of the column's type.
fn from_double(x: f64, t: &DataType) -> ScalarValue {
    let wide = match t {
        DataType::Date32 => return ScalarValue::Date32(Some(x as i32)),
        DataType::Timestamp(_, tz) => return ScalarValue::TimestampMicrosecond(Some(x as i64), tz.clone()),
        t if t.is_integer() => ScalarValue::Int64(Some(x as i64)),
        _ => ScalarValue::Float64(Some(x)),
    };
    wide.cast_to(t).unwrap_or(ScalarValue::Null)
}

/// The percentage literal(s) of the second argument.
fn percentages(e: &Arc<dyn datafusion_physical_expr::PhysicalExpr>) -> Result<(Vec<f64>, bool)> {
    let Some(lit) = e.downcast_ref::<datafusion_physical_expr::expressions::Literal>() else {
        return plan_err!("percentile_approx()'s percentage must be a literal");
    };
    let number = |v: &ScalarValue| -> Result<f64> {
        match v.cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(p)) if (0.0..=1.0).contains(&p) => Ok(p),
            _ => plan_err!("percentile_approx()'s percentage must be between 0.0 and 1.0"),
        }
    };
    match lit.value() {
        ScalarValue::List(list) => {
            let items = list.value(0);
            let mut out = Vec::new();
            for i in 0..items.len() {
                out.push(number(&ScalarValue::try_from_array(&items, i)?)?);
            }
            Ok((out, true))
        }
        v => Ok((vec![number(v)?], false)),
    }
}

impl Accumulator for PercentileAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        push_values(&mut self.values, &values[0])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        // Spark's summary holds doubles: values are compared, and answered, as doubles (a long
        // near i64::MIN comes back as i64::MIN).
        let mut doubles: Vec<f64> = self.values.iter().filter_map(as_double).collect();
        doubles.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
        let n = doubles.len();
        let at = |p: f64| -> ScalarValue {
            if n == 0 {
                return ScalarValue::try_from(&self.data_type).unwrap_or(ScalarValue::Null);
            }
            // Spark's QuantileSummaries.query while every value is a sample: the value at rank
            // ceil(p * n), the first at p <= 1e-4 and the last at p >= 1 - 1e-4.
            let rank = if p <= 1e-4 {
                1
            } else if p >= 1.0 - 1e-4 {
                n
            } else {
                ((p * n as f64).ceil() as usize).clamp(1, n)
            };
            from_double(doubles[rank - 1], &self.data_type)
        };
        if self.array {
            let items: Vec<ScalarValue> = self.percentages.iter().map(|&p| at(p)).collect();
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(&items, &self.data_type)))
        } else {
            Ok(at(self.percentages[0]))
        }
    }
    fn size(&self) -> usize {
        self.values.iter().map(ScalarValue::size).sum::<usize>() + 64
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(&self.values, &self.data_type))])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        merge_values(&mut self.values, states)
    }
}

impl AggregateUDFImpl for Percentile {
    fn name(&self) -> &str {
        "percentile_approx"
    }
    fn aliases(&self) -> &[String] {
        &[]
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if !(2..=3).contains(&args.len()) {
            return plan_err!("percentile_approx() takes (column, percentage[, accuracy])");
        }
        let x = match &args[0] {
            t if t.is_integer()
                || t.is_floating()
                || matches!(t, DataType::Decimal128(..) | DataType::Date32 | DataType::Timestamp(..)) =>
            {
                t.clone()
            }
            t => return plan_err!("percentile_approx() needs a number, date or timestamp, not {}", crate::types::type_name(t)),
        };
        let mut out = vec![x];
        out.extend(args[1..].iter().cloned());
        Ok(out)
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args.get(1) {
            Some(DataType::List(_)) => DataType::List(Arc::new(Field::new("item", args[0].clone(), true))),
            _ => args[0].clone(),
        })
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (percentages, array) = percentages(&args.exprs[1])?;
        Ok(Box::new(PercentileAcc { data_type: args.expr_fields[0].data_type().clone(), percentages, array, values: Vec::new() }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new("item", args.input_fields[0].data_type().clone(), true);
        Ok(vec![Arc::new(Field::new("values", DataType::List(Arc::new(item)), true))])
    }
}

/// eddy's aggregates.
pub fn all() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::new_from_impl(By { max: true, signature: Signature::user_defined(Volatility::Immutable) })),
        Arc::new(AggregateUDF::new_from_impl(By { max: false, signature: Signature::user_defined(Volatility::Immutable) })),
        Arc::new(AggregateUDF::new_from_impl(Percentile { signature: Signature::user_defined(Volatility::Immutable) })),
    ]
    .into_iter()
    .chain(super::first_last::all())
    .chain(super::percentile::all())
    .chain(std::iter::once(super::approx_distinct::udaf()))
    .collect()
}

/// What `eddy functions` says about them.
pub fn description(name: &str) -> Option<&'static str> {
    Some(match name {
        "max_by" => "max_by(x, y): x of the row with the largest y",
        "min_by" => "min_by(x, y): x of the row with the smallest y",
        "percentile_approx" => "percentile_approx(x, p[, accuracy]): the smallest x with at least p of the values at or below it (p a number or an array); exact",
        "approx_count_distinct" => "approx_count_distinct(x[, rsd]): the approximate number of distinct x (HyperLogLog, any type; rsd is accepted, the precision is fixed at ~0.8%)",
        other => return super::first_last::description(other).or_else(|| super::percentile::description(other)),
    })
}
