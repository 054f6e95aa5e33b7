//! Output column names for unaliased select items, as Spark names them: a column keeps its
//! name, `count(*)` is `count(1)`, `sum(x)` is `sum(x)`, `a + b` is `(a + b)`. One deliberate
//! difference: `window.start` and `window.end` are named `window_start` and `window_end`
//! (Spark says `start` and `end`), so the default output matches eddy's documented records.

use datafusion_sql::sqlparser::ast::{self, BinaryOperator, UnaryOperator};

use super::parse::{function_args, function_name};

pub fn spark_name(e: &ast::Expr) -> String {
    use ast::Expr as A;
    match e {
        A::Identifier(id) => id.value.clone(),
        A::CompoundIdentifier(ids) => match ids.as_slice() {
            [w, f] if w.value.eq_ignore_ascii_case("window") || w.value.eq_ignore_ascii_case("session_window") => {
                format!("{}_{}", w.value.to_ascii_lowercase(), f.value.to_ascii_lowercase())
            }
            _ => ids.last().map(|i| i.value.clone()).unwrap_or_default(),
        },
        A::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            ast::Value::Null => "NULL".to_string(),
            ast::Value::Boolean(b) => b.to_string(),
            other => other.to_string(),
        },
        A::Nested(inner) => spark_name(inner),
        A::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::And => "AND".to_string(),
                BinaryOperator::Or => "OR".to_string(),
                other => other.to_string(),
            };
            format!("({} {op} {})", spark_name(left), spark_name(right))
        }
        A::UnaryOp { op: UnaryOperator::Not, expr } => format!("(NOT {})", spark_name(expr)),
        A::UnaryOp { op: UnaryOperator::Minus, expr } => format!("(- {})", spark_name(expr)),
        // `user` without parentheses parses as a function but names a column (see compile.rs).
        A::Function(f) if matches!(f.args, ast::FunctionArguments::None) => f.name.to_string(),
        // Spark names a generator's column `col`.
        A::Function(f) if matches!(function_name(f).as_str(), "explode" | "unnest") => "col".to_string(),
        A::Function(f) => {
            let name = function_name(f);
            let Ok((args, distinct)) = function_args(f) else {
                return e.to_string();
            };
            let args: Vec<String> = args
                .iter()
                .map(|a| match a {
                    None => "1".to_string(),
                    Some(a) => spark_name(a),
                })
                .collect();
            let name = if name == "mean" { "avg".to_string() } else { name };
            format!("{name}({}{})", if distinct { "DISTINCT " } else { "" }, args.join(", "))
        }
        A::Cast { expr, data_type, .. } => format!("CAST({} AS {})", spark_name(expr), data_type.to_string().to_ascii_uppercase()),
        A::IsNull(inner) => format!("({} IS NULL)", spark_name(inner)),
        A::IsNotNull(inner) => format!("({} IS NOT NULL)", spark_name(inner)),
        other => other.to_string(),
    }
}
