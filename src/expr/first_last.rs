//! Spark's `first`, `last`, `first_value`, `last_value` and `any_value`, whose optional
//! second argument is `isIgnoreNull` (`first(x, true)`: the first value that is not null).
//! DataFusion's `first_value`/`last_value` take one argument and spell the flag `IGNORE NULLS`;
//! both spellings reach DataFusion's own accumulators here. On a stream "first" is the first
//! in arrival order, as in a Spark micro-batch. Depends on DataFusion's aggregate API only.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion_common::{plan_err, Result, ScalarValue};
use datafusion_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use datafusion_functions_aggregate::first_last::{TrivialFirstValueAccumulator, TrivialLastValueAccumulator};
use datafusion_physical_expr::expressions::Literal;

/// One of the family, by its Spark name.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FirstLast {
    name: &'static str,
    last: bool,
    signature: Signature,
}

impl FirstLast {
    fn new(name: &'static str, last: bool) -> FirstLast {
        FirstLast { name, last, signature: Signature::user_defined(Volatility::Immutable) }
    }
}

/// The `isIgnoreNull` argument: absent (false) or a boolean literal, as Spark requires.
fn ignore_nulls_argument(name: &str, exprs: &[Arc<dyn datafusion_physical_expr::PhysicalExpr>]) -> Result<bool> {
    let Some(flag) = exprs.get(1) else { return Ok(false) };
    match flag.downcast_ref::<Literal>().map(|l| l.value()) {
        Some(ScalarValue::Boolean(Some(b))) => Ok(*b),
        _ => plan_err!("the second argument of {name} (isIgnoreNull) must be the literal true or false"),
    }
}

impl AggregateUDFImpl for FirstLast {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [x] => Ok(vec![x.clone()]),
            [x, DataType::Boolean | DataType::Null] => Ok(vec![x.clone(), DataType::Boolean]),
            [_, other] => plan_err!("the second argument of {} (isIgnoreNull) must be a boolean, not {other}", self.name),
            _ => plan_err!("{} takes a column and optionally isIgnoreNull: {}(x[, true])", self.name, self.name),
        }
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(t) => Ok(t.clone()),
            None => plan_err!("{} takes a column", self.name),
        }
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let ignore_nulls = args.ignore_nulls || ignore_nulls_argument(self.name, args.exprs)?;
        let data_type = args.return_field.data_type();
        let inner: Box<dyn Accumulator> = if self.last {
            Box::new(TrivialLastValueAccumulator::try_new(data_type, ignore_nulls)?)
        } else {
            Box::new(TrivialFirstValueAccumulator::try_new(data_type, ignore_nulls)?)
        };
        Ok(Box::new(FirstArgument(inner)))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        // As DataFusion's trivial accumulators give their state: the value, then whether set.
        let value = args.input_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
        Ok(vec![
            Arc::new(Field::new(format!("{}[{}]", args.name, self.name), value, true)),
            Arc::new(Field::new(format!("{}[is_set]", args.name), DataType::Boolean, true)),
        ])
    }
}

/// Hands the wrapped accumulator the value column only (not the flag's).
#[derive(Debug)]
struct FirstArgument(Box<dyn Accumulator>);

impl Accumulator for FirstArgument {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(&values[..values.len().min(1)])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.evaluate()
    }
    fn size(&self) -> usize {
        self.0.size() + std::mem::size_of::<Self>()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.state()
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states)
    }
}

/// The family, for the registry (these names replace DataFusion's `first_value`/`last_value`).
pub fn all() -> Vec<Arc<AggregateUDF>> {
    [("first", false), ("first_value", false), ("any_value", false), ("last", true), ("last_value", true)]
        .into_iter()
        .map(|(name, last)| Arc::new(AggregateUDF::new_from_impl(FirstLast::new(name, last))))
        .collect()
}

/// What `eddy functions` says about them.
pub fn description(name: &str) -> Option<&'static str> {
    Some(match name {
        "first" | "first_value" => {
            "first(x[, isIgnoreNull]): the first x of the group in arrival order (the first that is not null with true)"
        }
        "last" | "last_value" => "last(x[, isIgnoreNull]): the last x of the group in arrival order (the last that is not null with true)",
        "any_value" => {
            "any_value(x[, isIgnoreNull]): some x of the group (here the first in arrival order; one that is not null with true)"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use datafusion_physical_expr::expressions::Column;
    use datafusion_physical_expr::PhysicalExpr;

    fn run(last: bool, flag: Option<bool>, batches: &[Vec<Option<i64>>]) -> ScalarValue {
        let f = FirstLast::new(if last { "last" } else { "first" }, last);
        let x = Arc::new(Field::new("x", DataType::Int64, true));
        let schema = arrow::datatypes::Schema::new(vec![x.clone(), Arc::new(Field::new("f", DataType::Boolean, true))]);
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = vec![Arc::new(Column::new("x", 0))];
        if let Some(b) = flag {
            exprs.push(Arc::new(Literal::new(ScalarValue::Boolean(Some(b)))));
        }
        let fields: Vec<FieldRef> = schema.fields().iter().take(exprs.len()).cloned().collect();
        let mut acc = f
            .accumulator(AccumulatorArgs {
                return_field: x.clone(),
                schema: &schema,
                ignore_nulls: false,
                order_bys: &[],
                is_reversed: false,
                name: "t",
                is_distinct: false,
                exprs: &exprs,
                expr_fields: &fields,
            })
            .expect("accumulator");
        for b in batches {
            let values: ArrayRef = Arc::new(Int64Array::from(b.clone()));
            let flags: ArrayRef = Arc::new(arrow::array::BooleanArray::from(vec![flag.unwrap_or(false); b.len()]));
            acc.update_batch(&[values, flags]).expect("update");
        }
        acc.evaluate().expect("evaluate")
    }

    #[test]
    fn the_flag_skips_nulls_and_its_absence_keeps_them() {
        let rows = [vec![None, Some(1)], vec![Some(2), None]];
        assert_eq!(run(false, None, &rows), ScalarValue::Int64(None), "first(x) is the first row's x, null or not");
        assert_eq!(run(false, Some(false), &rows), ScalarValue::Int64(None));
        assert_eq!(run(false, Some(true), &rows), ScalarValue::Int64(Some(1)));
        assert_eq!(run(true, None, &rows), ScalarValue::Int64(None), "last(x) is the last row's x");
        assert_eq!(run(true, Some(true), &rows), ScalarValue::Int64(Some(2)));
        assert_eq!(run(true, Some(true), &[vec![None], vec![None]]), ScalarValue::Int64(None), "no value at all: null");
    }

    #[test]
    fn a_flag_that_is_not_a_literal_is_refused() {
        let exprs: Vec<Arc<dyn PhysicalExpr>> = vec![Arc::new(Column::new("x", 0)), Arc::new(Column::new("f", 1))];
        assert!(ignore_nulls_argument("first", &exprs).is_err());
        assert!(FirstLast::new("first", false).coerce_types(&[DataType::Int64, DataType::Utf8]).is_err());
        assert_eq!(
            FirstLast::new("first", false).coerce_types(&[DataType::Int64, DataType::Boolean]).ok(),
            Some(vec![DataType::Int64, DataType::Boolean])
        );
    }
}
