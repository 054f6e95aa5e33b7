//! The checked statement → DataFusion's logical plan: planned by `SqlToRel`, checked where
//! eddy is stricter than DataFusion's coercion (a string is never
//! silently compared with or added to a number), type-coerced by DataFusion's analyzer and
//! simplified (constants folded, Spark's date_trunc rewritten). DataFusion's own errors are
//! turned into eddy's wording where a Spark user would otherwise be puzzled.

use std::sync::Arc;

use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion_common::{DFSchema, DataFusionError, ScalarValue};
use datafusion_expr::planner::ContextProvider;
use datafusion_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion_optimizer::analyzer::type_coercion::TypeCoercion;
use datafusion_optimizer::analyzer::AnalyzerRule;
use datafusion_optimizer::simplify_expressions::SimplifyExpressions;
use datafusion_optimizer::{Optimizer, OptimizerContext};
use datafusion_sql::planner::{ParserOptions, SqlToRel};
use datafusion_sql::sqlparser::ast;

use super::context::Provider;
use super::error::SqlError;
use crate::expr::registry::clean_error;
use crate::types::{is_numeric, is_timestamp, type_name, DataType};

/// Plans `statement` and returns the coerced, simplified plan.
pub fn logical_plan(statement: ast::Statement, provider: &Provider) -> Result<LogicalPlan, SqlError> {
    let options = ParserOptions {
        enable_ident_normalization: false,
        map_string_types_to_utf8view: false,
        collect_spans: true,
        // Spark's order: NULL is the smallest value (ASC NULLS FIRST, DESC NULLS LAST).
        default_null_ordering: datafusion_sql::planner::NullOrdering::NullsMin,
        ..ParserOptions::default()
    };
    let planner = SqlToRel::new_with_options(provider, options);
    let plan = planner.sql_statement_to_plan(statement).map_err(|e| planning_error(&e))?;
    check_plan(&plan)?;
    let plan = TypeCoercion::new().analyze(plan, provider.options()).map_err(|e| planning_error(&e))?;
    let optimizer = Optimizer::with_rules(vec![Arc::new(SimplifyExpressions::new())]);
    optimizer.optimize(plan, &OptimizerContext::new(), |_, _| {}).map_err(|e| planning_error(&e))
}

/// DataFusion's error → an eddy error with the position DataFusion knows, in eddy's words.
pub fn planning_error(e: &DataFusionError) -> SqlError {
    let position = e.diagnostic().and_then(|d| d.span).map(|s| (s.start.line as usize, s.start.column as usize)).filter(|p| p.0 > 0);
    let text = clean_error(e);
    let message = reword(&text);
    SqlError { message, position }
}

fn reword(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("Function '") {
        // "Function 'sum' failed to match any signature, errors: ... 'sum(Utf8)' ..."
        let name = rest.split('\'').next().unwrap_or("?");
        let got = text.rsplit("argument types '").next().and_then(|t| t.split('\'').next()).unwrap_or("");
        let types: Vec<String> = got
            .split_once('(')
            .map(|(_, a)| a.trim_end_matches(')').split(", ").filter(|t| !t.is_empty()).map(arrow_name).collect())
            .unwrap_or_default();
        if matches!(name, "sum" | "avg") && types.len() == 1 {
            return format!("{name}() cannot aggregate a {}; CAST it to a number", types[0]);
        }
        return format!("{name}() does not take ({}); `eddy functions` describes it", types.join(", "));
    }
    if let Some(rest) = text.split("Column in SELECT must be in GROUP BY or an aggregate function: ").nth(1) {
        // "While expanding wildcard, column \"e.id\" must appear in the GROUP BY clause ..."
        let column = rest.split('"').nth(1).unwrap_or("?");
        let column = column.rsplit('.').next().unwrap_or(column);
        return format!("column {column} is neither grouped nor aggregated; add it to GROUP BY or use an aggregate such as max({column})");
    }
    if let Some(rest) = text.strip_prefix("Cannot create filter with non-boolean predicate ") {
        let t = rest.rsplit("returning ").next().unwrap_or("");
        return format!("WHERE needs a boolean condition, but this is a {}", arrow_name(t.trim()));
    }
    if text.contains("Projections require unique expression names") {
        return format!("{text}; give one of them an alias with AS");
    }
    text.to_string()
}

/// The checks where eddy is stricter than DataFusion, with Spark users' wording.
/// An Arrow type name in a message, as a Spark user knows it.
fn arrow_name(t: &str) -> String {
    match t {
        "Utf8" | "Utf8View" | "LargeUtf8" => "string".into(),
        "Int64" => "long".into(),
        "Int32" => "int".into(),
        "Float64" => "double".into(),
        "Boolean" => "boolean".into(),
        "Date32" => "date".into(),
        t if t.starts_with("Timestamp") => "timestamp".into(),
        t => t.to_ascii_lowercase(),
    }
}

fn check_plan(plan: &LogicalPlan) -> Result<(), SqlError> {
    let mut error: Option<SqlError> = None;
    let _ = plan.apply(|node| {
        let inputs = node.inputs();
        let schema = match inputs.as_slice() {
            [one] => one.schema().clone(),
            [l, r] => match l.schema().join(r.schema()) {
                Ok(s) => Arc::new(s),
                Err(_) => return Ok(TreeNodeRecursion::Continue),
            },
            _ => return Ok(TreeNodeRecursion::Continue),
        };
        if let LogicalPlan::Filter(f) = node {
            let what = if matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)) { "HAVING" } else { "WHERE" };
            if let Ok(t) = f.predicate.get_type(&schema) {
                if !matches!(t, DataType::Boolean | DataType::Null) {
                    error = Some(SqlError::at_column(
                        &f.predicate,
                        format!("{what} needs a boolean condition, but this is a {}", type_name(&t)),
                    ));
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        for e in node.expressions() {
            if let Err(err) = check_expr(&e, &schema) {
                error = Some(err);
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    error.map_or(Ok(()), Err)
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

fn check_expr(e: &Expr, schema: &DFSchema) -> Result<(), SqlError> {
    let mut error: Option<SqlError> = None;
    let _ = e.apply(|x| {
        let found = match x {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (lt, rt) = (left.get_type(schema).ok(), right.get_type(schema).ok());
                match (lt, rt) {
                    (Some(lt), Some(rt)) => binary_error(left, *op, right, &lt, &rt),
                    _ => None,
                }
            }
            Expr::Case(c) => {
                let mut types: Vec<DataType> = c.when_then_expr.iter().filter_map(|(_, t)| t.get_type(schema).ok()).collect();
                if let Some(e) = &c.else_expr {
                    types.extend(e.get_type(schema).ok());
                }
                let strings = types.iter().any(is_string);
                let others = types.iter().any(|t| !is_string(t) && !matches!(t, DataType::Null));
                (strings && others).then(|| SqlError::new("the THEN/ELSE results of CASE have different types; CAST them to one type"))
            }
            Expr::AggregateFunction(a) => {
                let name = a.func.name();
                let arg = a.params.args.first().and_then(|x| x.get_type(schema).ok());
                match (name, arg) {
                    ("sum" | "avg", Some(t)) if !is_numeric(&t) && !matches!(t, DataType::Interval(_) | DataType::Duration(_)) => {
                        Some(SqlError::new(format!("{name}() cannot aggregate a {}; CAST it to a number", type_name(&t))))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match found {
            Some(err) => {
                error = Some(err);
                Ok(TreeNodeRecursion::Stop)
            }
            None => Ok(TreeNodeRecursion::Continue),
        }
    });
    error.map_or(Ok(()), Err)
}

pub fn binary_error(left: &Expr, op: Operator, right: &Expr, lt: &DataType, rt: &DataType) -> Option<SqlError> {
    let comparison = matches!(op, Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq);
    let arithmetic = matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply);
    let (ls, rs) = (is_string(lt), is_string(rt));
    let number = |t: &DataType| is_numeric(t) && !matches!(t, DataType::Null);
    if comparison
        && ((ls && number(rt))
            || (rs && number(lt))
            || (matches!(lt, DataType::Boolean) && !matches!(rt, DataType::Boolean | DataType::Null)) && (rs || number(rt)))
    {
        return Some(SqlError::at_column(left, format!("cannot compare a {} with a {}; CAST one side", type_name(lt), type_name(rt))));
    }
    if comparison && (is_timestamp(lt) && rs || ls && is_timestamp(rt)) {
        // A string literal compared with a timestamp must be a timestamp.
        let lit = if rs { right } else { left };
        if let Expr::Literal(ScalarValue::Utf8(Some(s)), _) = lit {
            if let Err(e) = crate::time::parse_timestamp(s) {
                return Some(SqlError::at_column(left, e.to_string()));
            }
        }
    }
    if arithmetic && (ls || rs) && !(is_timestamp(lt) || is_timestamp(rt)) {
        let symbol = match op {
            Operator::Plus => "+",
            Operator::Minus => "-",
            _ => "*",
        };
        return Some(SqlError::at_column(
            left,
            format!("cannot apply {symbol} to {} and {}; CAST the string to a number", type_name(lt), type_name(rt)),
        ));
    }
    None
}
