//! Aggregate accumulators with Spark's results: count is a long, sum of longs wraps,
//! sum/min/max of nothing is NULL, avg accumulates in double, count(DISTINCT) keeps the set;
//! every other aggregate is DataFusion's (or datafusion-spark's) accumulator.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::expr::aggregate::{UdafFactory, UdafState};
use crate::sql::{AggregateCall, AggregateKind};
use crate::state::codec::{CodecError, Reader, Writer};
use crate::types::{decode_key, encode_key_value, DataType, Value, I128};

/// What an operator needs of one aggregate call.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub kind: AggregateKind,
    pub result_type: DataType,
    /// The first argument's type.
    pub arg_type: DataType,
    /// The call's arguments among the input row's values.
    pub first_value: usize,
    pub arity: usize,
    pub udaf: Option<Arc<UdafFactory>>,
}

impl CallSpec {
    pub fn of(calls: &[AggregateCall]) -> Vec<CallSpec> {
        calls
            .iter()
            .map(|c| CallSpec {
                kind: c.kind,
                result_type: c.result_type.clone(),
                arg_type: c.arg_types.first().cloned().unwrap_or(DataType::Null),
                first_value: c.first_value,
                arity: c.arity,
                udaf: c.udaf.clone(),
            })
            .collect()
    }

    /// A fresh accumulator for this call.
    pub fn accumulator(&self) -> Accumulator {
        match &self.udaf {
            Some(f) => Accumulator::Udaf(Box::new(UdafState::new(f.clone()))),
            None => match (self.kind, &self.arg_type, &self.result_type) {
                (AggregateKind::Avg, DataType::Decimal128(_, s), DataType::Decimal128(_, rs)) => {
                    Accumulator::AvgDecimal { sum: I128::new(0), count: 0, scale: *s, result_scale: *rs }
                }
                _ => {
                    let arg = if self.kind == AggregateKind::Sum { Some(self.result_type.clone()) } else { None };
                    Accumulator::new(self.kind, arg)
                }
            },
        }
    }

    /// Adds one input row's values (`values` is the whole value part of the row).
    pub fn update(&self, acc: &mut Accumulator, values: &[Value]) {
        match (acc, self.kind) {
            (acc, AggregateKind::CountStar) => acc.update(None),
            (Accumulator::Udaf(u), _) => u.update(values.get(self.first_value..self.first_value + self.arity).unwrap_or_default()),
            (acc, _) => acc.update(values.get(self.first_value)),
        }
    }

    /// Reads an accumulator of this call back from its encoding.
    pub fn decode(&self, r: &mut Reader) -> Result<Accumulator, CodecError> {
        Accumulator::decode_with(r, self.udaf.as_ref())
    }
}

/// The running state of one aggregate call for one group.
#[derive(Debug, Clone, PartialEq)]
pub enum Accumulator {
    Count(i64),
    SumLong(Option<i64>),
    SumDouble(Option<f64>),
    Avg {
        sum: f64,
        count: i64,
    },
    /// avg of decimals: their exact sum and count; the result is rounded half up at the
    /// result's scale, as Spark's decimal division.
    AvgDecimal {
        sum: I128,
        count: i64,
        scale: i8,
        result_scale: i8,
    },
    Min(Value),
    Max(Value),
    /// Encoded distinct values.
    Distinct(BTreeSet<Box<[u8]>>),
    /// A DataFusion aggregate.
    Udaf(Box<UdafState>),
}

impl Accumulator {
    pub fn new(kind: AggregateKind, arg_type: Option<DataType>) -> Accumulator {
        match kind {
            AggregateKind::CountStar | AggregateKind::Count => Accumulator::Count(0),
            AggregateKind::Sum if arg_type.as_ref().is_some_and(DataType::is_floating) => Accumulator::SumDouble(None),
            AggregateKind::Sum => Accumulator::SumLong(None),
            AggregateKind::Avg => Accumulator::Avg { sum: 0.0, count: 0 },
            AggregateKind::Min => Accumulator::Min(Value::Null),
            AggregateKind::Max => Accumulator::Max(Value::Null),
            AggregateKind::CountDistinct => Accumulator::Distinct(BTreeSet::new()),
            // Without its factory (never planned so): counts rows, which is never wrong silently
            // because the planner always attaches the factory.
            AggregateKind::Udaf => Accumulator::Count(0),
        }
    }

    /// Adds one value; `None` is count(*)'s "a row", a NULL value is ignored (except by count(*)).
    pub fn update(&mut self, v: Option<&Value>) {
        match (self, v) {
            (Accumulator::Count(n), None) => *n += 1,
            (_, Some(Value::Null)) => {}
            (Accumulator::Count(n), Some(_)) => *n += 1,
            (Accumulator::SumLong(s), Some(Value::Long(x))) => *s = Some(s.unwrap_or(0).wrapping_add(*x)),
            (Accumulator::SumDouble(s), Some(v)) => {
                if let Some(x) = v.as_f64() {
                    *s = Some(s.unwrap_or(0.0) + x);
                }
            }
            (Accumulator::AvgDecimal { sum, count, .. }, Some(Value::Decimal(d))) => {
                *sum = I128::new(sum.get().wrapping_add(d.get()));
                *count += 1;
            }
            (Accumulator::Avg { sum, count }, Some(v)) => {
                if let Some(x) = v.as_f64() {
                    *sum += x;
                    *count += 1;
                }
            }
            (Accumulator::Min(m), Some(v)) if m.is_null() || v.sql_cmp(m) == Some(std::cmp::Ordering::Less) => *m = v.clone(),
            (Accumulator::Max(m), Some(v)) if m.is_null() || v.sql_cmp(m) == Some(std::cmp::Ordering::Greater) => *m = v.clone(),
            (Accumulator::Distinct(set), Some(v)) => {
                let mut k = Vec::new();
                encode_key_value(v, &mut k);
                set.insert(k.into_boxed_slice());
            }
            _ => {}
        }
    }

    /// Folds `other` (the same aggregate over other rows) into this one, as if this had seen
    /// its rows too: counts and sums add (a NULL sum adds nothing), avg adds its sum and count,
    /// min/max compare, distinct sets unite. Accumulators of different kinds are left alone.
    pub fn merge(&mut self, other: &Accumulator) {
        match (self, other) {
            (Accumulator::Count(n), Accumulator::Count(m)) => *n = n.wrapping_add(*m),
            (Accumulator::SumLong(s), Accumulator::SumLong(Some(x))) => *s = Some(s.unwrap_or(0).wrapping_add(*x)),
            (Accumulator::SumDouble(s), Accumulator::SumDouble(Some(x))) => *s = Some(s.unwrap_or(0.0) + x),
            (Accumulator::AvgDecimal { sum, count, .. }, Accumulator::AvgDecimal { sum: s, count: c, .. }) => {
                *sum = I128::new(sum.get().wrapping_add(s.get()));
                *count += c;
            }
            (Accumulator::Avg { sum, count }, Accumulator::Avg { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (a @ Accumulator::Min(_), Accumulator::Min(v)) | (a @ Accumulator::Max(_), Accumulator::Max(v)) => a.update(Some(v)),
            (Accumulator::Distinct(set), Accumulator::Distinct(other)) => set.extend(other.iter().cloned()),
            (Accumulator::Udaf(a), Accumulator::Udaf(b)) => a.merge(b),
            _ => {}
        }
    }

    pub fn result(&self) -> Value {
        match self {
            Accumulator::Count(n) => Value::Long(*n),
            Accumulator::SumLong(s) => s.map_or(Value::Null, Value::Long),
            Accumulator::SumDouble(s) => s.map_or(Value::Null, Value::Double),
            Accumulator::Avg { count: 0, .. } | Accumulator::AvgDecimal { count: 0, .. } => Value::Null,
            Accumulator::AvgDecimal { sum, count, scale, result_scale } => {
                let shift = u32::try_from(i32::from(*result_scale) - i32::from(*scale)).unwrap_or(0);
                let num = sum.get().checked_mul(10i128.pow(shift));
                match num {
                    Some(num) => {
                        let den = i128::from(*count);
                        let (q, r) = (num / den, num % den);
                        let q = if r.unsigned_abs() * 2 >= den.unsigned_abs() { q + num.signum() } else { q };
                        Value::Decimal(I128::new(q))
                    }
                    None => Value::Null,
                }
            }
            Accumulator::Avg { sum, count } => Value::Double(sum / *count as f64),
            Accumulator::Min(v) | Accumulator::Max(v) => v.clone(),
            Accumulator::Distinct(set) => Value::Long(set.len() as i64),
            Accumulator::Udaf(u) => u.result(),
        }
    }

    /// Approximate heap bytes, for the state-size metric.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Accumulator::Distinct(set) => set.iter().map(|k| k.len() + 32).sum(),
            Accumulator::Min(Value::Str(s)) | Accumulator::Max(Value::Str(s)) => s.len(),
            Accumulator::Udaf(u) => u.heap_bytes(),
            _ => 0,
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Accumulator::Count(n) => {
                w.u8(1);
                w.i64(*n);
            }
            Accumulator::SumLong(s) => {
                w.u8(2);
                w.u8(u8::from(s.is_some()));
                w.i64(s.unwrap_or(0));
            }
            Accumulator::SumDouble(s) => {
                w.u8(3);
                w.u8(u8::from(s.is_some()));
                w.f64(s.unwrap_or(0.0));
            }
            Accumulator::Avg { sum, count } => {
                w.u8(4);
                w.f64(*sum);
                w.i64(*count);
            }
            Accumulator::Min(v) | Accumulator::Max(v) => {
                w.u8(if matches!(self, Accumulator::Min(_)) { 5 } else { 6 });
                let mut k = Vec::new();
                encode_key_value(v, &mut k);
                w.bytes(&k);
            }
            Accumulator::Distinct(set) => {
                w.u8(7);
                w.varint(set.len() as u64);
                for k in set {
                    w.bytes(k);
                }
            }
            Accumulator::AvgDecimal { sum, count, scale, result_scale } => {
                w.u8(9);
                let v = sum.get();
                w.i64((v >> 64) as i64);
                w.i64(v as i64);
                w.i64(*count);
                w.u8(*scale as u8);
                w.u8(*result_scale as u8);
            }
            Accumulator::Udaf(u) => {
                w.u8(8);
                let mut k = Vec::new();
                for v in u.state() {
                    encode_key_value(&v, &mut k);
                }
                w.bytes(&k);
            }
        }
    }

    /// Reads an accumulator of eddy's own kinds back.
    pub fn decode(r: &mut Reader) -> Result<Accumulator, CodecError> {
        Accumulator::decode_with(r, None)
    }

    /// Reads an accumulator back; a DataFusion aggregate's needs its call's factory.
    pub fn decode_with(r: &mut Reader, udaf: Option<&Arc<UdafFactory>>) -> Result<Accumulator, CodecError> {
        Ok(match r.u8()? {
            9 => {
                let hi = r.i64()?;
                let lo = r.i64()?;
                let count = r.i64()?;
                let scale = r.u8()? as i8;
                let result_scale = r.u8()? as i8;
                Accumulator::AvgDecimal { sum: I128::new((i128::from(hi) << 64) | i128::from(lo as u64)), count, scale, result_scale }
            }
            8 => {
                let state = decode_key(r.bytes()?).map_err(|_| CodecError::Corrupt("aggregate state"))?;
                let factory = udaf.ok_or(CodecError::Corrupt("the query's aggregates changed since this state was written"))?;
                Accumulator::Udaf(Box::new(UdafState::restore(factory.clone(), &state)))
            }
            1 => Accumulator::Count(r.i64()?),
            2 => {
                let some = r.u8()? == 1;
                let v = r.i64()?;
                Accumulator::SumLong(some.then_some(v))
            }
            3 => {
                let some = r.u8()? == 1;
                let v = r.f64()?;
                Accumulator::SumDouble(some.then_some(v))
            }
            4 => Accumulator::Avg { sum: r.f64()?, count: r.i64()? },
            tag @ (5 | 6) => {
                let mut values = decode_key(r.bytes()?).map_err(|_| CodecError::Corrupt("min/max value"))?;
                let v = values.pop().unwrap_or(Value::Null);
                if tag == 5 {
                    Accumulator::Min(v)
                } else {
                    Accumulator::Max(v)
                }
            }
            7 => {
                let n = r.varint()?;
                let mut set = BTreeSet::new();
                for _ in 0..n {
                    set.insert(Box::from(r.bytes()?));
                }
                Accumulator::Distinct(set)
            }
            _ => return Err(CodecError::Corrupt("accumulator tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: AggregateKind, ty: DataType, values: &[Value]) -> Value {
        let mut a = Accumulator::new(kind, Some(ty));
        for v in values {
            a.update(if kind == AggregateKind::CountStar { None } else { Some(v) });
        }
        let mut w = Writer::new();
        a.encode(&mut w);
        let back = Accumulator::decode(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(back, a, "state round-trips");
        a.result()
    }

    fn acc(kind: AggregateKind, ty: DataType, values: &[Value]) -> Accumulator {
        let mut a = Accumulator::new(kind, Some(ty));
        for v in values {
            a.update(if kind == AggregateKind::CountStar { None } else { Some(v) });
        }
        a
    }

    /// Merging the accumulators of two halves gives the accumulator of the whole.
    fn merged(kind: AggregateKind, ty: DataType, left: &[Value], right: &[Value]) -> Value {
        let mut a = acc(kind, ty.clone(), left);
        a.merge(&acc(kind, ty.clone(), right));
        let whole: Vec<Value> = left.iter().chain(right).cloned().collect();
        assert_eq!(a.result(), acc(kind, ty, &whole).result(), "{kind:?} over {left:?} + {right:?}");
        a.result()
    }

    #[test]
    fn merge_equals_accumulating_everything() {
        use AggregateKind::*;
        let l = [Value::Long(3), Value::Null, Value::Long(5)];
        let r = [Value::Long(3), Value::Long(-7)];
        assert_eq!(merged(CountStar, DataType::Int64, &l, &r), Value::Long(5));
        assert_eq!(merged(Count, DataType::Int64, &l, &r), Value::Long(4));
        assert_eq!(merged(Sum, DataType::Int64, &l, &r), Value::Long(4));
        assert_eq!(merged(Avg, DataType::Int64, &l, &r), Value::Double(1.0));
        assert_eq!(merged(Min, DataType::Int64, &l, &r), Value::Long(-7));
        assert_eq!(merged(Max, DataType::Int64, &l, &r), Value::Long(5));
        assert_eq!(merged(CountDistinct, DataType::Int64, &l, &r), Value::Long(3));
        assert_eq!(merged(Sum, DataType::Float64, &[Value::Double(0.5)], &[Value::Double(0.25)]), Value::Double(0.75));
        assert_eq!(merged(Max, DataType::Utf8, &[Value::str("a")], &[Value::str("b")]), Value::str("b"));
        assert_eq!(merged(Min, DataType::Utf8, &[Value::str("a")], &[Value::str("b")]), Value::str("a"));
        assert_eq!(merged(Sum, DataType::Int64, &[Value::Long(i64::MAX)], &[Value::Long(1)]), Value::Long(i64::MIN), "wraps like update");
    }

    #[test]
    fn merge_with_nulls_and_empties() {
        use AggregateKind::*;
        let nulls = [Value::Null];
        let five = [Value::Long(5)];
        // NULL + x = x, x + NULL = x, NULL + NULL = NULL
        assert_eq!(merged(Sum, DataType::Int64, &nulls, &five), Value::Long(5));
        assert_eq!(merged(Sum, DataType::Int64, &five, &nulls), Value::Long(5));
        assert_eq!(merged(Sum, DataType::Int64, &nulls, &nulls), Value::Null);
        assert_eq!(merged(Sum, DataType::Float64, &[], &[]), Value::Null);
        assert_eq!(merged(Sum, DataType::Float64, &[], &[Value::Double(1.5)]), Value::Double(1.5));
        assert_eq!(merged(Avg, DataType::Int64, &nulls, &[]), Value::Null);
        assert_eq!(merged(Avg, DataType::Int64, &[], &five), Value::Double(5.0));
        assert_eq!(merged(Min, DataType::Int64, &nulls, &five), Value::Long(5));
        assert_eq!(merged(Max, DataType::Int64, &five, &nulls), Value::Long(5));
        assert_eq!(merged(Min, DataType::Int64, &[], &[]), Value::Null);
        assert_eq!(merged(Count, DataType::Int64, &nulls, &nulls), Value::Long(0));
        assert_eq!(merged(CountStar, DataType::Int64, &nulls, &nulls), Value::Long(2));
        assert_eq!(merged(CountDistinct, DataType::Int64, &five, &five), Value::Long(1));
    }

    #[test]
    fn merging_different_kinds_changes_nothing() {
        let mut a = acc(AggregateKind::Sum, DataType::Int64, &[Value::Long(2)]);
        a.merge(&acc(AggregateKind::CountStar, DataType::Int64, &[Value::Null]));
        assert_eq!(a.result(), Value::Long(2));
        let mut m = acc(AggregateKind::Min, DataType::Int64, &[Value::Long(2)]);
        m.merge(&acc(AggregateKind::Max, DataType::Int64, &[Value::Long(1)]));
        assert_eq!(m.result(), Value::Long(2));
    }

    #[test]
    fn spark_results() {
        let vals = [Value::Long(3), Value::Null, Value::Long(5), Value::Long(3)];
        assert_eq!(run(AggregateKind::CountStar, DataType::Int64, &vals), Value::Long(4));
        assert_eq!(run(AggregateKind::Count, DataType::Int64, &vals), Value::Long(3));
        assert_eq!(run(AggregateKind::Sum, DataType::Int64, &vals), Value::Long(11));
        assert_eq!(run(AggregateKind::Avg, DataType::Int64, &vals), Value::Double(11.0 / 3.0));
        assert_eq!(run(AggregateKind::Min, DataType::Int64, &vals), Value::Long(3));
        assert_eq!(run(AggregateKind::Max, DataType::Int64, &vals), Value::Long(5));
        assert_eq!(run(AggregateKind::CountDistinct, DataType::Int64, &vals), Value::Long(2));
        assert_eq!(run(AggregateKind::Sum, DataType::Int64, &[Value::Null]), Value::Null);
        assert_eq!(run(AggregateKind::Avg, DataType::Float64, &[]), Value::Null);
        assert_eq!(run(AggregateKind::Sum, DataType::Float64, &[Value::Double(0.5), Value::Double(0.25)]), Value::Double(0.75));
        assert_eq!(run(AggregateKind::Max, DataType::Utf8, &[Value::str("b"), Value::str("a")]), Value::str("b"));
        assert_eq!(run(AggregateKind::Sum, DataType::Int64, &[Value::Long(i64::MAX), Value::Long(1)]), Value::Long(i64::MIN));
    }
}
