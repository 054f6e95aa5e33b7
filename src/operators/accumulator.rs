//! Aggregate accumulators with Spark's results: count is a long, sum of longs wraps,
//! sum/min/max of nothing is NULL, avg accumulates in double, count(DISTINCT) keeps the set.

use std::collections::BTreeSet;

use crate::sql::AggregateKind;
use crate::state::codec::{CodecError, Reader, Writer};
use crate::types::{decode_key, encode_key_value, DataType, Value};

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
    Min(Value),
    Max(Value),
    /// Encoded distinct values.
    Distinct(BTreeSet<Box<[u8]>>),
}

impl Accumulator {
    pub fn new(kind: AggregateKind, arg_type: Option<DataType>) -> Accumulator {
        match kind {
            AggregateKind::CountStar | AggregateKind::Count => Accumulator::Count(0),
            AggregateKind::Sum if arg_type == Some(DataType::Double) => Accumulator::SumDouble(None),
            AggregateKind::Sum => Accumulator::SumLong(None),
            AggregateKind::Avg => Accumulator::Avg { sum: 0.0, count: 0 },
            AggregateKind::Min => Accumulator::Min(Value::Null),
            AggregateKind::Max => Accumulator::Max(Value::Null),
            AggregateKind::CountDistinct => Accumulator::Distinct(BTreeSet::new()),
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
            (Accumulator::Avg { sum, count }, Accumulator::Avg { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (a @ Accumulator::Min(_), Accumulator::Min(v)) | (a @ Accumulator::Max(_), Accumulator::Max(v)) => a.update(Some(v)),
            (Accumulator::Distinct(set), Accumulator::Distinct(other)) => set.extend(other.iter().cloned()),
            _ => {}
        }
    }

    pub fn result(&self) -> Value {
        match self {
            Accumulator::Count(n) => Value::Long(*n),
            Accumulator::SumLong(s) => s.map_or(Value::Null, Value::Long),
            Accumulator::SumDouble(s) => s.map_or(Value::Null, Value::Double),
            Accumulator::Avg { count: 0, .. } => Value::Null,
            Accumulator::Avg { sum, count } => Value::Double(sum / *count as f64),
            Accumulator::Min(v) | Accumulator::Max(v) => v.clone(),
            Accumulator::Distinct(set) => Value::Long(set.len() as i64),
        }
    }

    /// Approximate heap bytes, for the state-size metric.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Accumulator::Distinct(set) => set.iter().map(|k| k.len() + 32).sum(),
            Accumulator::Min(Value::Str(s)) | Accumulator::Max(Value::Str(s)) => s.len(),
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
        }
    }

    pub fn decode(r: &mut Reader) -> Result<Accumulator, CodecError> {
        Ok(match r.u8()? {
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
        let mut a = acc(kind, ty, left);
        a.merge(&acc(kind, ty, right));
        let whole: Vec<Value> = left.iter().chain(right).cloned().collect();
        assert_eq!(a.result(), acc(kind, ty, &whole).result(), "{kind:?} over {left:?} + {right:?}");
        a.result()
    }

    #[test]
    fn merge_equals_accumulating_everything() {
        use AggregateKind::*;
        let l = [Value::Long(3), Value::Null, Value::Long(5)];
        let r = [Value::Long(3), Value::Long(-7)];
        assert_eq!(merged(CountStar, DataType::Long, &l, &r), Value::Long(5));
        assert_eq!(merged(Count, DataType::Long, &l, &r), Value::Long(4));
        assert_eq!(merged(Sum, DataType::Long, &l, &r), Value::Long(4));
        assert_eq!(merged(Avg, DataType::Long, &l, &r), Value::Double(1.0));
        assert_eq!(merged(Min, DataType::Long, &l, &r), Value::Long(-7));
        assert_eq!(merged(Max, DataType::Long, &l, &r), Value::Long(5));
        assert_eq!(merged(CountDistinct, DataType::Long, &l, &r), Value::Long(3));
        assert_eq!(merged(Sum, DataType::Double, &[Value::Double(0.5)], &[Value::Double(0.25)]), Value::Double(0.75));
        assert_eq!(merged(Max, DataType::String, &[Value::str("a")], &[Value::str("b")]), Value::str("b"));
        assert_eq!(merged(Min, DataType::String, &[Value::str("a")], &[Value::str("b")]), Value::str("a"));
        assert_eq!(merged(Sum, DataType::Long, &[Value::Long(i64::MAX)], &[Value::Long(1)]), Value::Long(i64::MIN), "wraps like update");
    }

    #[test]
    fn merge_with_nulls_and_empties() {
        use AggregateKind::*;
        let nulls = [Value::Null];
        let five = [Value::Long(5)];
        // NULL + x = x, x + NULL = x, NULL + NULL = NULL
        assert_eq!(merged(Sum, DataType::Long, &nulls, &five), Value::Long(5));
        assert_eq!(merged(Sum, DataType::Long, &five, &nulls), Value::Long(5));
        assert_eq!(merged(Sum, DataType::Long, &nulls, &nulls), Value::Null);
        assert_eq!(merged(Sum, DataType::Double, &[], &[]), Value::Null);
        assert_eq!(merged(Sum, DataType::Double, &[], &[Value::Double(1.5)]), Value::Double(1.5));
        assert_eq!(merged(Avg, DataType::Long, &nulls, &[]), Value::Null);
        assert_eq!(merged(Avg, DataType::Long, &[], &five), Value::Double(5.0));
        assert_eq!(merged(Min, DataType::Long, &nulls, &five), Value::Long(5));
        assert_eq!(merged(Max, DataType::Long, &five, &nulls), Value::Long(5));
        assert_eq!(merged(Min, DataType::Long, &[], &[]), Value::Null);
        assert_eq!(merged(Count, DataType::Long, &nulls, &nulls), Value::Long(0));
        assert_eq!(merged(CountStar, DataType::Long, &nulls, &nulls), Value::Long(2));
        assert_eq!(merged(CountDistinct, DataType::Long, &five, &five), Value::Long(1));
    }

    #[test]
    fn merging_different_kinds_changes_nothing() {
        let mut a = acc(AggregateKind::Sum, DataType::Long, &[Value::Long(2)]);
        a.merge(&acc(AggregateKind::CountStar, DataType::Long, &[Value::Null]));
        assert_eq!(a.result(), Value::Long(2));
        let mut m = acc(AggregateKind::Min, DataType::Long, &[Value::Long(2)]);
        m.merge(&acc(AggregateKind::Max, DataType::Long, &[Value::Long(1)]));
        assert_eq!(m.result(), Value::Long(2));
    }

    #[test]
    fn spark_results() {
        let vals = [Value::Long(3), Value::Null, Value::Long(5), Value::Long(3)];
        assert_eq!(run(AggregateKind::CountStar, DataType::Long, &vals), Value::Long(4));
        assert_eq!(run(AggregateKind::Count, DataType::Long, &vals), Value::Long(3));
        assert_eq!(run(AggregateKind::Sum, DataType::Long, &vals), Value::Long(11));
        assert_eq!(run(AggregateKind::Avg, DataType::Long, &vals), Value::Double(11.0 / 3.0));
        assert_eq!(run(AggregateKind::Min, DataType::Long, &vals), Value::Long(3));
        assert_eq!(run(AggregateKind::Max, DataType::Long, &vals), Value::Long(5));
        assert_eq!(run(AggregateKind::CountDistinct, DataType::Long, &vals), Value::Long(2));
        assert_eq!(run(AggregateKind::Sum, DataType::Long, &[Value::Null]), Value::Null);
        assert_eq!(run(AggregateKind::Avg, DataType::Double, &[]), Value::Null);
        assert_eq!(run(AggregateKind::Sum, DataType::Double, &[Value::Double(0.5), Value::Double(0.25)]), Value::Double(0.75));
        assert_eq!(run(AggregateKind::Max, DataType::String, &[Value::str("b"), Value::str("a")]), Value::str("b"));
        assert_eq!(run(AggregateKind::Sum, DataType::Long, &[Value::Long(i64::MAX), Value::Long(1)]), Value::Long(i64::MIN));
    }
}
