//! The evaluator: one recursive match per row. NULL propagates; AND/OR use three-valued logic
//! and short-circuit; arithmetic on longs wraps and division by zero is NULL, as in Spark.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{cast_value, BinOp, Expr};
use crate::types::Value;

pub fn eval(expr: &Expr, row: &[Value]) -> Value {
    match expr {
        Expr::Column { index, .. } => row.get(*index).cloned().unwrap_or(Value::Null),
        Expr::Literal(v) => v.clone(),
        Expr::Not(e) => match eval(e, row) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        Expr::Negate(e) => match eval(e, row) {
            Value::Long(v) => Value::Long(v.wrapping_neg()),
            Value::Double(v) => Value::Double(-v),
            _ => Value::Null,
        },
        Expr::IsNull { expr, negated } => Value::Bool(eval(expr, row).is_null() != *negated),
        Expr::Binary { op: BinOp::And, left, right, .. } => and(left, right, row),
        Expr::Binary { op: BinOp::Or, left, right, .. } => or(left, right, row),
        Expr::Binary { op, left, right, .. } => {
            let l = eval(left, row);
            if l.is_null() {
                return Value::Null;
            }
            let r = eval(right, row);
            if r.is_null() {
                return Value::Null;
            }
            binary(*op, &l, &r)
        }
        Expr::AddMicros { expr, micros } => match eval(expr, row) {
            Value::Timestamp(t) => Value::Timestamp(t.wrapping_add(*micros)),
            _ => Value::Null,
        },
        Expr::Case { operand, branches, otherwise, .. } => {
            let subject = operand.as_ref().map(|o| eval(o, row));
            for (when, then) in branches {
                let hit = match &subject {
                    Some(s) => s.sql_cmp(&eval(when, row)) == Some(Ordering::Equal),
                    None => when.test(row),
                };
                if hit {
                    return eval(then, row);
                }
            }
            otherwise.as_ref().map_or(Value::Null, |o| eval(o, row))
        }
        Expr::Cast { expr, to, int32 } => cast_value(eval(expr, row), *to, *int32),
        Expr::InList { expr, list, negated } => {
            let v = eval(expr, row);
            if v.is_null() {
                return Value::Null;
            }
            let mut saw_null = false;
            for item in list {
                let i = eval(item, row);
                if i.is_null() {
                    saw_null = true;
                } else if v.sql_cmp(&i) == Some(Ordering::Equal) {
                    return Value::Bool(!negated);
                }
            }
            if saw_null {
                Value::Null
            } else {
                Value::Bool(*negated)
            }
        }
        Expr::Like { expr, pattern, negated, case_insensitive } => match (eval(expr, row), eval(pattern, row)) {
            (Value::Str(s), Value::Str(p)) => {
                let hit = if *case_insensitive { like(&s.to_lowercase(), &p.to_lowercase()) } else { like(&s, &p) };
                Value::Bool(hit != *negated)
            }
            _ => Value::Null,
        },
        Expr::Call { func, args, .. } => func.call(args, row),
        Expr::WindowStart(e) => match eval(e, row) {
            Value::Window { start, .. } => Value::Timestamp(start),
            _ => Value::Null,
        },
        Expr::WindowEnd(e) => match eval(e, row) {
            Value::Window { end, .. } => Value::Timestamp(end),
            _ => Value::Null,
        },
    }
}

fn and(left: &Expr, right: &Expr, row: &[Value]) -> Value {
    match eval(left, row) {
        Value::Bool(false) => Value::Bool(false),
        l => match (l, eval(right, row)) {
            (_, Value::Bool(false)) => Value::Bool(false),
            (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
            _ => Value::Null,
        },
    }
}

fn or(left: &Expr, right: &Expr, row: &[Value]) -> Value {
    match eval(left, row) {
        Value::Bool(true) => Value::Bool(true),
        l => match (l, eval(right, row)) {
            (_, Value::Bool(true)) => Value::Bool(true),
            (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
            _ => Value::Null,
        },
    }
}

/// A binary operator on two non-null values whose types the planner checked.
pub fn binary(op: BinOp, l: &Value, r: &Value) -> Value {
    use Value::{Double, Long};
    if op.is_comparison() {
        return match l.sql_cmp(r) {
            None => Value::Null,
            Some(ord) => Value::Bool(match op {
                BinOp::Eq => ord == Ordering::Equal,
                BinOp::NotEq => ord != Ordering::Equal,
                BinOp::Lt => ord == Ordering::Less,
                BinOp::LtEq => ord != Ordering::Greater,
                BinOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }),
        };
    }
    match (op, l, r) {
        (BinOp::Concat, Value::Str(a), Value::Str(b)) => {
            let mut s = String::with_capacity(a.len() + b.len());
            s.push_str(a);
            s.push_str(b);
            Value::Str(Arc::from(s))
        }
        (BinOp::Add, Long(a), Long(b)) => Long(a.wrapping_add(*b)),
        (BinOp::Sub, Long(a), Long(b)) => Long(a.wrapping_sub(*b)),
        (BinOp::Mul, Long(a), Long(b)) => Long(a.wrapping_mul(*b)),
        (BinOp::IntDiv, Long(_), Long(0)) | (BinOp::Mod, Long(_), Long(0)) => Value::Null,
        (BinOp::IntDiv, Long(a), Long(b)) => Long(a.wrapping_div(*b)),
        (BinOp::Mod, Long(a), Long(b)) => Long(a.wrapping_rem(*b)),
        (BinOp::IntDiv, a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(_), Some(0.0)) => Value::Null,
            (Some(x), Some(y)) => Long((x / y).trunc() as i64),
            _ => Value::Null,
        },
        (op, a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => match op {
                BinOp::Add => Double(x + y),
                BinOp::Sub => Double(x - y),
                BinOp::Mul => Double(x * y),
                BinOp::Div if y == 0.0 => Value::Null,
                BinOp::Div => Double(x / y),
                BinOp::Mod if y == 0.0 => Value::Null,
                BinOp::Mod => Double(x % y),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
    }
}

/// SQL LIKE: `%` matches any run, `_` one character, `\` escapes the next one.
pub fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Iterative matcher with backtracking to the last '%'.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let (pc, escaped, width) = match p.get(pi) {
            Some('\\') if pi + 1 < p.len() => (Some(p[pi + 1]), true, 2),
            Some(&c) => (Some(c), false, 1),
            None => (None, false, 0),
        };
        match pc {
            Some('%') if !escaped => {
                star = Some((pi, si));
                pi += 1;
            }
            Some('_') if !escaped => {
                si += 1;
                pi += width;
            }
            Some(c) if c == s[si] => {
                si += 1;
                pi += width;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&'%') {
        pi += 1;
    }
    pi == p.len()
}
