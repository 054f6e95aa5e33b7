//! Output projections simple enough to run on operator result rows as they are, without
//! building Arrow arrays: column references, a window's start and end, and literals (the shape
//! of most streaming queries' select lists: keys, the window bounds, the aggregates).

use arrow::array::Array;
use datafusion_physical_expr::expressions::{Column, Literal};
use datafusion_physical_expr::ScalarFunctionExpr;

use crate::expr::Scalar;
use crate::types::arrays::value_at;
use crate::types::{is_window, Value};

/// One such expression, over a row of values.
#[derive(Debug, Clone)]
pub enum RowExpr {
    Column(usize),
    WindowStart(usize),
    WindowEnd(usize),
    Literal(Value),
}

impl RowExpr {
    /// The row form of `e`, when it has one; `column(i)` maps an input column to the row's.
    fn of(e: &Scalar, schema: &arrow::datatypes::Schema, column: &dyn Fn(usize) -> Option<usize>) -> Option<RowExpr> {
        if let Some(c) = e.expr.downcast_ref::<Column>() {
            return column(c.index()).map(RowExpr::Column);
        }
        if let Some(l) = e.expr.downcast_ref::<Literal>() {
            let a = l.value().to_array().ok()?;
            return Some(RowExpr::Literal(if a.is_empty() { Value::Null } else { value_at(a.as_ref(), 0) }));
        }
        let f = e.expr.downcast_ref::<ScalarFunctionExpr>()?;
        if f.name() != "get_field" {
            return None;
        }
        let [base, field] = f.args() else { return None };
        let c = base.downcast_ref::<Column>()?;
        let name = match field.downcast_ref::<Literal>()?.value() {
            datafusion_common::ScalarValue::Utf8(Some(n)) => n.clone(),
            _ => return None,
        };
        if !is_window(schema.fields().get(c.index())?.data_type()) {
            return None;
        }
        let i = column(c.index())?;
        match name.as_str() {
            "start" => Some(RowExpr::WindowStart(i)),
            "end" => Some(RowExpr::WindowEnd(i)),
            _ => None,
        }
    }

    /// The row forms of every expression, or `None` if one has none.
    /// `schema` is the expressions' input; `column(i)` says where its column i is in the row.
    pub fn all(exprs: &[Scalar], schema: &arrow::datatypes::Schema, column: &dyn Fn(usize) -> Option<usize>) -> Option<Vec<RowExpr>> {
        exprs.iter().map(|e| RowExpr::of(e, schema, column)).collect()
    }

    pub fn eval(&self, row: &[Value]) -> Value {
        match self {
            RowExpr::Column(i) => row.get(*i).cloned().unwrap_or_default(),
            RowExpr::WindowStart(i) => match row.get(*i) {
                Some(Value::Window { start, .. }) => Value::Timestamp(*start),
                _ => Value::Null,
            },
            RowExpr::WindowEnd(i) => match row.get(*i) {
                Some(Value::Window { end, .. }) => Value::Timestamp(*end),
                _ => Value::Null,
            },
            RowExpr::Literal(v) => v.clone(),
        }
    }
}
