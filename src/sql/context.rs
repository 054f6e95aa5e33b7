//! What DataFusion's SQL planner consults: the pipeline's sources as tables, the function
//! registry, Spark's meaning of `/`, `%` and `div`, and Spark's type names in CAST.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{plan_err, DFSchema, DataFusionError, Result, TableReference};
use datafusion_expr::expr::ScalarFunction;
use datafusion_expr::logical_plan::builder::LogicalTableSource;
use datafusion_expr::planner::{ContextProvider, ExprPlanner, PlannerResult, RawBinaryExpr, TypePlanner};
use datafusion_expr::{AggregateUDF, Expr, ExprSchemable, HigherOrderUDF, Operator, ScalarUDF, TableSource, WindowUDF};
use datafusion_sql::sqlparser::ast::BinaryOperator;

use crate::expr::functions::Fun;
use crate::expr::Registry;

/// The planner's view of one query's world.
pub struct Provider {
    tables: HashMap<String, SchemaRef>,
    options: ConfigOptions,
    planners: Vec<Arc<dyn ExprPlanner>>,
}

impl Provider {
    /// `tables`: source name → its columns (schema plus metadata columns).
    pub fn new(tables: HashMap<String, SchemaRef>) -> Provider {
        let mut options = ConfigOptions::default();
        options.sql_parser.enable_ident_normalization = false;
        let planners: Vec<Arc<dyn ExprPlanner>> = vec![
            Arc::new(SparkOperators),
            Arc::new(datafusion_spark::planner::SparkFunctionPlanner),
            Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
            Arc::new(datafusion_functions_nested::planner::NestedFunctionPlanner),
            Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
            Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
            Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
        ];
        Provider { tables, options, planners }
    }
}

impl ContextProvider for Provider {
    fn get_table_source(&self, name: TableReference) -> Result<Arc<dyn TableSource>> {
        match self.tables.get(name.table()) {
            Some(schema) => Ok(Arc::new(LogicalTableSource::new(schema.clone()))),
            None => plan_err!("unknown source {name}"),
        }
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    fn get_type_planner(&self) -> Option<Arc<dyn TypePlanner>> {
        Some(Arc::new(SparkTypes))
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        Registry::global().scalar(name)
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        Registry::global().aggregate(name)
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        crate::expr::ranking::ranking_udf(name)
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        Registry::global().scalar_names()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        Registry::global().aggregate_names()
    }

    fn udwf_names(&self) -> Vec<String> {
        crate::expr::ranking::Ranking::ALL.iter().map(|r| r.name().to_string()).collect()
    }
}

/// `/` is Spark's division (double or decimal, NULL on zero), `%` Spark's remainder (NULL on
/// zero), `div` integer division.
#[derive(Debug)]
struct SparkOperators;

impl ExprPlanner for SparkOperators {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        // Where eddy is stricter than DataFusion's coercion: said in Spark users' words.
        if let (Ok(lt), Ok(rt)) = (expr.left.get_type(schema), expr.right.get_type(schema)) {
            let op = match expr.op {
                BinaryOperator::Plus => Some(Operator::Plus),
                BinaryOperator::Minus => Some(Operator::Minus),
                BinaryOperator::Multiply => Some(Operator::Multiply),
                BinaryOperator::Eq => Some(Operator::Eq),
                BinaryOperator::NotEq => Some(Operator::NotEq),
                BinaryOperator::Lt => Some(Operator::Lt),
                BinaryOperator::LtEq => Some(Operator::LtEq),
                BinaryOperator::Gt => Some(Operator::Gt),
                BinaryOperator::GtEq => Some(Operator::GtEq),
                _ => None,
            };
            if let Some(err) = op.and_then(|op| super::logical::binary_error(&expr.left, op, &expr.right, &lt, &rt)) {
                return Err(DataFusionError::Plan(err.message));
            }
        }
        let udf = match expr.op {
            BinaryOperator::Divide => Fun::Divide.udf(),
            BinaryOperator::MyIntegerDivide | BinaryOperator::DuckIntegerDivide => Fun::IntDivide.udf(),
            BinaryOperator::Modulo => match Registry::global().scalar("mod") {
                Some(f) => f,
                None => return Ok(PlannerResult::Original(expr)),
            },
            _ => return Ok(PlannerResult::Original(expr)),
        };
        Ok(PlannerResult::Planned(Expr::ScalarFunction(ScalarFunction::new_udf(udf, vec![expr.left, expr.right]))))
    }
}

/// Spark's type names in CAST: `string`, `int` (32 bits), `bigint`/`long`, `double`,
/// `timestamp` (microseconds), `date`, `decimal(p,s)`, `array<T>`, `map<K,V>`, `struct<...>`.
#[derive(Debug)]
struct SparkTypes;

impl TypePlanner for SparkTypes {
    fn plan_type_field(&self, sql_type: &datafusion_sql::sqlparser::ast::DataType) -> Result<Option<FieldRef>> {
        let text = sql_type.to_string().to_ascii_lowercase().replace("double precision", "double");
        Ok(crate::types::parse_type(&text).ok().map(|t| Arc::new(Field::new("", t, true))))
    }
}
