//! Scalar expressions: DataFusion's physical expressions over Arrow record batches, with the
//! function library of DataFusion and `datafusion-spark` and eddy's own functions where Spark's
//! semantics differ or DataFusion has none (the registry). The SQL planner builds [`Scalar`]s;
//! tasks evaluate them on batches. Depends on `types` and `time` only.

pub mod aggregate;
pub mod approx_distinct;
pub mod cast;
pub mod first_last;
pub mod functions;
pub mod listing;
pub mod percentile;
pub mod ranking;
pub mod registry;
pub mod udafs;

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion_common::DFSchema;
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_physical_expr::expressions::{Column, Literal};
use datafusion_physical_expr::PhysicalExpr;

pub use cast::{format_double, spark_string};
pub use registry::Registry;

use crate::types::DataType;

/// A compiled expression over batches of one schema.
#[derive(Clone)]
pub struct Scalar {
    pub expr: Arc<dyn PhysicalExpr>,
    pub data_type: DataType,
    /// As `explain` prints it.
    pub text: String,
}

/// An expression failed on a batch (an invalid regular expression, an overflow that Spark
/// reports, a function given what it cannot take): not a planning mistake, a data one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl Scalar {
    /// Compiles a (type-coerced) logical expression against `schema`.
    pub fn compile(expr: &datafusion_expr::Expr, schema: &DFSchema) -> Result<Scalar, String> {
        let props = ExecutionProps::new();
        let physical = datafusion_physical_expr::create_physical_expr(expr, schema, &props, &PhysicalPlanningContext::default())
            .map_err(|e| crate::expr::registry::clean_error(&e))?;
        let data_type = physical.data_type(schema.as_arrow()).map_err(|e| crate::expr::registry::clean_error(&e))?;
        Ok(Scalar { expr: physical, data_type, text: registry::display(expr) })
    }

    /// A plain reference to column `index` of the input.
    pub fn column(index: usize, name: &str, data_type: DataType) -> Scalar {
        Scalar { expr: Arc::new(Column::new(name, index)), data_type, text: name.to_string() }
    }

    /// A literal NULL (count(*)'s argument, a null-padded column).
    pub fn null() -> Scalar {
        Scalar { expr: Arc::new(Literal::new(datafusion_common::ScalarValue::Null)), data_type: DataType::Null, text: "NULL".to_string() }
    }

    /// Evaluates over `batch`: one value per row.
    pub fn eval(&self, batch: &RecordBatch) -> Result<ArrayRef, EvalError> {
        let v = self.expr.evaluate(batch).map_err(|e| EvalError(registry::clean_error(&e)))?;
        v.into_array(batch.num_rows()).map_err(|e| EvalError(registry::clean_error(&e)))
    }

    /// The input columns the expression reads.
    pub fn columns(&self) -> Vec<usize> {
        let mut cols: Vec<usize> = datafusion_physical_expr::utils::collect_columns(&self.expr).iter().map(Column::index).collect();
        cols.sort_unstable();
        cols
    }

    /// The column index when the expression is a plain column reference.
    pub fn as_column(&self) -> Option<usize> {
        self.expr.downcast_ref::<Column>().map(Column::index)
    }

    /// True when the expression reads no column.
    pub fn is_constant(&self) -> bool {
        self.columns().is_empty()
    }

    /// True when the expression is the NULL literal.
    pub fn is_null_literal(&self) -> bool {
        self.expr.downcast_ref::<Literal>().is_some_and(|l| l.value().is_null())
    }
}

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} :: {}", self.text, self.data_type)
    }
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.data_type == other.data_type && self.columns() == other.columns()
    }
}

/// The rows of `mask` that are TRUE (a predicate's NULL and FALSE do not pass).
pub fn true_rows(mask: &dyn Array) -> Vec<u32> {
    let r = crate::types::arrays::ColumnReader::new(mask);
    (0..mask.len()).filter(|&i| r.is_true(i)).map(|i| i as u32).collect()
}
