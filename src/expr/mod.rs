//! Typed scalar expressions: the tree the SQL planner builds and operators evaluate per row.
//! Semantics follow Spark SQL with ANSI mode off: NULL propagates, integer arithmetic wraps,
//! division by zero and failed casts give NULL. Depends on `types` and `time` only.

mod cast;
mod eval;
mod func;

pub use cast::{cast_value, format_double};
pub use func::{common_type, Func, FUNCTION_NAMES};

use crate::types::{DataType, Value};

/// Binary operators, after type checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// `/`: always double, as in Spark.
    Div,
    /// `div`: integer division.
    IntDiv,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    /// `||` on strings.
    Concat,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::IntDiv => "div",
            BinOp::Mod => "%",
            BinOp::Eq => "=",
            BinOp::NotEq => "!=",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
            BinOp::Concat => "||",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq)
    }
}

/// A typed expression over a row whose layout the planner fixed.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column {
        index: usize,
        data_type: DataType,
    },
    Literal(Value),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
        data_type: DataType,
    },
    /// A timestamp plus a constant number of microseconds (`ts + INTERVAL '1' HOUR`).
    AddMicros {
        expr: Box<Expr>,
        micros: i64,
    },
    Case {
        operand: Option<Box<Expr>>,
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
        data_type: DataType,
    },
    Cast {
        expr: Box<Expr>,
        to: DataType,
        int32: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
    Call {
        func: Func,
        args: Vec<Expr>,
        data_type: DataType,
    },
    WindowStart(Box<Expr>),
    WindowEnd(Box<Expr>),
}

impl Expr {
    pub fn column(index: usize, data_type: DataType) -> Expr {
        Expr::Column { index, data_type }
    }

    pub fn data_type(&self) -> DataType {
        match self {
            Expr::Column { data_type, .. } => *data_type,
            Expr::Literal(v) => v.data_type(),
            Expr::Not(_) | Expr::IsNull { .. } | Expr::InList { .. } | Expr::Like { .. } => DataType::Boolean,
            Expr::Negate(e) => e.data_type(),
            Expr::Binary { data_type, .. } | Expr::Case { data_type, .. } | Expr::Call { data_type, .. } => *data_type,
            Expr::AddMicros { .. } | Expr::WindowStart(_) | Expr::WindowEnd(_) => DataType::Timestamp,
            Expr::Cast { to, .. } => *to,
        }
    }

    /// True when the expression reads no column (it can be folded).
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        self.visit(&mut |e| {
            if matches!(e, Expr::Column { .. }) {
                constant = false;
            }
        });
        constant
    }

    /// Calls `f` on this expression and every sub-expression.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Column { .. } | Expr::Literal(_) => {}
            Expr::Not(e) | Expr::Negate(e) | Expr::WindowStart(e) | Expr::WindowEnd(e) => e.visit(f),
            Expr::IsNull { expr, .. } | Expr::AddMicros { expr, .. } | Expr::Cast { expr, .. } => expr.visit(f),
            Expr::Binary { left, right, .. } => {
                left.visit(f);
                right.visit(f);
            }
            Expr::Like { expr, pattern, .. } => {
                expr.visit(f);
                pattern.visit(f);
            }
            Expr::Case { operand, branches, otherwise, .. } => {
                if let Some(o) = operand {
                    o.visit(f);
                }
                for (w, t) in branches {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(o) = otherwise {
                    o.visit(f);
                }
            }
            Expr::InList { expr, list, .. } => {
                expr.visit(f);
                list.iter().for_each(|e| e.visit(f));
            }
            Expr::Call { args, .. } => args.iter().for_each(|e| e.visit(f)),
        }
    }

    /// Every column index the expression reads.
    pub fn columns(&self) -> Vec<usize> {
        let mut cols = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Column { index, .. } = e {
                cols.push(*index);
            }
        });
        cols
    }

    /// Rewrites column indexes through `map` (after the row layout changed).
    pub fn remap_columns(&mut self, map: &impl Fn(usize) -> usize) {
        match self {
            Expr::Column { index, .. } => *index = map(*index),
            Expr::Literal(_) => {}
            Expr::Not(e) | Expr::Negate(e) | Expr::WindowStart(e) | Expr::WindowEnd(e) => e.remap_columns(map),
            Expr::IsNull { expr, .. } | Expr::AddMicros { expr, .. } | Expr::Cast { expr, .. } => expr.remap_columns(map),
            Expr::Binary { left, right, .. } => {
                left.remap_columns(map);
                right.remap_columns(map);
            }
            Expr::Like { expr, pattern, .. } => {
                expr.remap_columns(map);
                pattern.remap_columns(map);
            }
            Expr::Case { operand, branches, otherwise, .. } => {
                if let Some(o) = operand {
                    o.remap_columns(map);
                }
                for (w, t) in branches {
                    w.remap_columns(map);
                    t.remap_columns(map);
                }
                if let Some(o) = otherwise {
                    o.remap_columns(map);
                }
            }
            Expr::InList { expr, list, .. } => {
                expr.remap_columns(map);
                list.iter_mut().for_each(|e| e.remap_columns(map));
            }
            Expr::Call { args, .. } => args.iter_mut().for_each(|e| e.remap_columns(map)),
        }
    }

    /// Evaluates the expression over `row`.
    pub fn eval(&self, row: &[Value]) -> Value {
        eval::eval(self, row)
    }

    /// Evaluates a predicate: only TRUE passes (NULL and FALSE do not), as in SQL.
    pub fn test(&self, row: &[Value]) -> bool {
        matches!(self.eval(row), Value::Bool(true))
    }
}

#[cfg(test)]
mod tests;
