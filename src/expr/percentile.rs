//! Spark's exact order statistics: `percentile(x, p)` and `percentile(x, array(p1, …))`
//! (linear interpolation between the two closest ranks, a double), `median(x)` (the 0.5
//! percentile) and `mode(x[, deterministic])` (the most frequent value; on a tie the smallest,
//! which is what Spark answers with `deterministic` true). Each keeps its group's values (a
//! window's, on a stream), as Spark's do. Depends on DataFusion's aggregate API only.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion_common::{plan_err, Result, ScalarValue};
use datafusion_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use datafusion_physical_expr::expressions::Literal;
use datafusion_physical_expr::PhysicalExpr;

use super::udafs::{merge_values, push_values};

/// Which statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stat {
    Percentile,
    Median,
    Mode,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderStat {
    stat: Stat,
    signature: Signature,
}

impl OrderStat {
    fn name(&self) -> &'static str {
        match self.stat {
            Stat::Percentile => "percentile",
            Stat::Median => "median",
            Stat::Mode => "mode",
        }
    }
}

/// The percentage literal(s): one number, or an array of them, each in [0, 1].
fn percentages(e: Option<&Arc<dyn PhysicalExpr>>) -> Result<(Vec<f64>, bool)> {
    let Some(lit) = e.and_then(|e| e.downcast_ref::<Literal>()) else {
        return plan_err!("percentile()'s percentage must be a literal: percentile(x, 0.5) or percentile(x, array(0.25, 0.75))");
    };
    let number = |v: &ScalarValue| -> Result<f64> {
        match v.cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(p)) if (0.0..=1.0).contains(&p) => Ok(p),
            _ => plan_err!("percentile()'s percentage must be between 0.0 and 1.0, not {v}"),
        }
    };
    match lit.value() {
        ScalarValue::List(list) => {
            let items = list.value(0);
            let ps = (0..items.len()).map(|i| number(&ScalarValue::try_from_array(&items, i)?)).collect::<Result<Vec<_>>>()?;
            Ok((ps, true))
        }
        v => Ok((vec![number(v)?], false)),
    }
}

/// Spark's exact percentile of sorted values: position (n - 1) * p, interpolated linearly
/// between the values at its floor and its ceiling.
fn interpolate(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let position = (n - 1) as f64 * p;
    let (lower, higher) = (position.floor() as usize, (position.ceil() as usize).min(n - 1));
    if lower == higher {
        return Some(sorted[lower]);
    }
    Some((higher as f64 - position) * sorted[lower] + (position - lower as f64) * sorted[higher])
}

impl AggregateUDFImpl for OrderStat {
    fn name(&self) -> &str {
        OrderStat::name(self)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let name = OrderStat::name(self);
        let numeric = |t: &DataType| t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Null);
        match (self.stat, args) {
            (Stat::Percentile, [x, p]) if numeric(x) => Ok(vec![DataType::Float64, p.clone()]),
            (Stat::Percentile, [_, _, _]) => {
                plan_err!("percentile(x, p, frequency) is not supported: repeat the rows, or aggregate x and count first")
            }
            (Stat::Median, [x]) if numeric(x) => Ok(vec![DataType::Float64]),
            (Stat::Percentile, [_, _]) | (Stat::Median, [_]) => {
                plan_err!("{name}() needs a number, not {}", crate::types::type_name(&args[0]))
            }
            (Stat::Mode, [x]) => Ok(vec![x.clone()]),
            (Stat::Mode, [x, DataType::Boolean]) => Ok(vec![x.clone(), DataType::Boolean]),
            (Stat::Percentile, _) => plan_err!("percentile() takes (column, percentage), the percentage a number or an array of them"),
            (Stat::Median, _) => plan_err!("median() takes one column"),
            (Stat::Mode, _) => plan_err!("mode() takes a column and optionally deterministic: mode(x[, true])"),
        }
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match (self.stat, args.get(1)) {
            (Stat::Percentile, Some(DataType::List(_))) => DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            (Stat::Percentile | Stat::Median, _) => DataType::Float64,
            (Stat::Mode, _) => args.first().cloned().unwrap_or(DataType::Null),
        })
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let data_type = args.expr_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Float64);
        let (percentages, array) = match self.stat {
            Stat::Percentile => percentages(args.exprs.get(1))?,
            Stat::Median => (vec![0.5], false),
            Stat::Mode => (Vec::new(), false),
        };
        Ok(Box::new(OrderStatAcc { stat: self.stat, data_type, percentages, array, values: Vec::new() }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new("item", args.input_fields[0].data_type().clone(), true);
        Ok(vec![Arc::new(Field::new(format!("{}[values]", args.name), DataType::List(Arc::new(item)), true))])
    }
}

/// A group's values (nulls left out, as Spark leaves them out).
#[derive(Debug)]
struct OrderStatAcc {
    stat: Stat,
    data_type: DataType,
    percentages: Vec<f64>,
    array: bool,
    values: Vec<ScalarValue>,
}

impl OrderStatAcc {
    fn mode(&self) -> ScalarValue {
        let mut sorted: Vec<&ScalarValue> = self.values.iter().collect();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
        let mut best: Option<(&ScalarValue, usize)> = None;
        let mut i = 0;
        while i < sorted.len() {
            let run = sorted[i..].iter().take_while(|v| **v == sorted[i]).count();
            // Strictly more frequent only: the smallest of tied values stays.
            if best.is_none_or(|(_, n)| run > n) {
                best = Some((sorted[i], run));
            }
            i += run.max(1);
        }
        best.map(|(v, _)| v.clone()).unwrap_or_else(|| ScalarValue::try_from(&self.data_type).unwrap_or(ScalarValue::Null))
    }
}

impl Accumulator for OrderStatAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        push_values(&mut self.values, &values[0])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.stat == Stat::Mode {
            return Ok(self.mode());
        }
        let mut doubles: Vec<f64> = self
            .values
            .iter()
            .filter_map(|v| match v.cast_to(&DataType::Float64).ok()? {
                ScalarValue::Float64(Some(x)) => Some(x),
                _ => None,
            })
            .collect();
        doubles.sort_by(f64::total_cmp);
        let at = |p: f64| ScalarValue::Float64(interpolate(&doubles, p));
        if self.array {
            let items: Vec<ScalarValue> = self.percentages.iter().map(|&p| at(p)).collect();
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(&items, &DataType::Float64)))
        } else {
            Ok(at(self.percentages[0]))
        }
    }
    fn size(&self) -> usize {
        self.values.iter().map(ScalarValue::size).sum::<usize>() + std::mem::size_of::<Self>()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(&self.values, &self.data_type))])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        merge_values(&mut self.values, states)
    }
}

/// The three, for the registry (`median` replaces DataFusion's, which answers an integer
/// column's median as an integer where Spark answers a double).
pub fn all() -> Vec<Arc<AggregateUDF>> {
    [Stat::Percentile, Stat::Median, Stat::Mode]
        .into_iter()
        .map(|stat| Arc::new(AggregateUDF::new_from_impl(OrderStat { stat, signature: Signature::user_defined(Volatility::Immutable) })))
        .collect()
}

/// What `eddy functions` says about them.
pub fn description(name: &str) -> Option<&'static str> {
    Some(match name {
        "percentile" => "percentile(x, p): the exact p-th percentile of x, interpolated between the two closest values (p a number or an array); a double",
        "median" => "median(x): percentile(x, 0.5)",
        "mode" => "mode(x[, deterministic]): the most frequent x; on a tie the smallest",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_the_closest_ranks_as_spark() {
        let v = [1.0, 2.0, 3.0, 10.0];
        assert_eq!(interpolate(&v, 0.5), Some(2.5));
        assert_eq!(interpolate(&v, 0.0), Some(1.0));
        assert_eq!(interpolate(&v, 1.0), Some(10.0));
        assert_eq!(interpolate(&v, 0.75), Some(4.75), "position 2.25: 3 + 0.25 * (10 - 3)");
        assert_eq!(interpolate(&[7.0], 0.3), Some(7.0));
        assert_eq!(interpolate(&[], 0.5), None);
    }

    #[test]
    fn the_mode_is_the_most_frequent_and_the_smallest_of_a_tie() {
        let acc = |xs: &[i64]| OrderStatAcc {
            stat: Stat::Mode,
            data_type: DataType::Int64,
            percentages: Vec::new(),
            array: false,
            values: xs.iter().map(|x| ScalarValue::Int64(Some(*x))).collect(),
        };
        assert_eq!(acc(&[3, 1, 3, 2, 1, 3]).mode(), ScalarValue::Int64(Some(3)));
        assert_eq!(acc(&[5, 2, 5, 2]).mode(), ScalarValue::Int64(Some(2)));
        assert_eq!(acc(&[]).mode(), ScalarValue::Int64(None));
    }
}
