//! Compiles sqlparser expressions into typed [`Expr`]s over a [`Scope`], with Spark's implicit
//! coercions. In an aggregate context, grouped expressions and aggregate calls become columns
//! of the aggregate row, and anything else that reads a column is an error.

use sqlparser::ast::{self, BinaryOperator, CastKind, DataType as SqlType, Spanned, UnaryOperator};

use super::error::SqlError;
use super::naming::spark_name;
use super::plan::{AggregateCall, AggregateKind};
use super::scope::{Lookup, Scope};
use crate::expr::{BinOp, Expr, Func};
use crate::time::{parse_duration, parse_timestamp, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND};
use crate::types::{DataType, Value};

/// What grouping makes visible to SELECT and HAVING.
#[derive(Debug, Default)]
pub struct AggContext {
    /// Group expressions (other than the window) over the scan row.
    pub keys: Vec<Expr>,
    /// The window call's text as written in GROUP BY, when there is one.
    pub window_text: Option<String>,
    pub aggregates: Vec<AggregateCall>,
}

impl AggContext {
    fn window_index(&self) -> Option<usize> {
        self.window_text.as_ref().map(|_| self.keys.len())
    }
    fn first_aggregate(&self) -> usize {
        self.keys.len() + usize::from(self.window_text.is_some())
    }
}

/// Compiles expressions against one scope.
pub struct Compiler<'a> {
    pub scope: &'a Scope,
    pub agg: Option<&'a mut AggContext>,
    /// Where the expression appears, for "not allowed here" messages ("WHERE", "GROUP BY").
    pub clause: &'static str,
}

const AGGREGATES: &[&str] = &["count", "sum", "avg", "mean", "min", "max"];

/// `window` names the group's window, `session_window` too (Spark's column name for it).
fn is_window_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("window") || name.eq_ignore_ascii_case("session_window")
}

pub fn is_aggregate_name(name: &str) -> bool {
    AGGREGATES.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// The lower-cased single-part name of a function.
pub fn function_name(f: &ast::Function) -> String {
    f.name.to_string().to_ascii_lowercase()
}

/// The plain expression arguments of a call (`*` is returned as `None`).
pub fn function_args(f: &ast::Function) -> Result<(Vec<Option<&ast::Expr>>, bool), SqlError> {
    match &f.args {
        ast::FunctionArguments::None => Ok((Vec::new(), false)),
        ast::FunctionArguments::Subquery(_) => Err(SqlError::at(f.span(), "subqueries are not supported in a streaming query")),
        ast::FunctionArguments::List(list) => {
            if !list.clauses.is_empty() {
                return Err(SqlError::at(
                    f.span(),
                    format!("{}(): ORDER BY, LIMIT and similar clauses inside a call are not supported", function_name(f)),
                ));
            }
            let distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
            let mut args = Vec::new();
            for a in &list.args {
                match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => args.push(Some(e)),
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => args.push(None),
                    _ => {
                        return Err(SqlError::at(
                            f.span(),
                            format!("{}(): named or qualified-wildcard arguments are not supported", function_name(f)),
                        ))
                    }
                }
            }
            Ok((args, distinct))
        }
    }
}

impl<'a> Compiler<'a> {
    pub fn plain(scope: &'a Scope, clause: &'static str) -> Compiler<'a> {
        Compiler { scope, agg: None, clause }
    }

    pub fn compile(&mut self, ast: &ast::Expr) -> Result<Expr, SqlError> {
        if self.agg.is_some() {
            if let Some(result) = self.intercept(ast) {
                return result;
            }
        }
        let e = self.structural(ast).map_err(|e| e.or_at(ast.span()))?;
        Ok(fold(e))
    }

    /// Compiles a predicate: its type must be boolean.
    pub fn predicate(&mut self, ast: &ast::Expr) -> Result<Expr, SqlError> {
        let e = self.compile(ast)?;
        match e.data_type() {
            DataType::Boolean | DataType::Null => Ok(e),
            other => Err(SqlError::at(ast.span(), format!("{} needs a boolean condition, but this is a {other}", self.clause))),
        }
    }

    /// In an aggregate context: aggregate calls, the window, and grouped expressions.
    fn intercept(&mut self, ast: &ast::Expr) -> Option<Result<Expr, SqlError>> {
        let scope = self.scope;
        let agg = self.agg.as_deref_mut()?;
        match ast {
            ast::Expr::Function(f) if is_aggregate_name(&function_name(f)) => {
                return Some(register_aggregate(scope, agg, f));
            }
            ast::Expr::Function(f) if matches!(function_name(f).as_str(), "window" | "session_window") => {
                let text = ast.to_string();
                return Some(match (&agg.window_text, agg.window_index()) {
                    (Some(w), Some(i)) if w.eq_ignore_ascii_case(&text) => Ok(Expr::column(i, DataType::Window)),
                    _ => Err(SqlError::at(
                        ast.span(),
                        format!("{text} does not match the window in GROUP BY; select `window` (or window.start, window.end) instead"),
                    )),
                });
            }
            ast::Expr::Identifier(id) if is_window_name(&id.value) && agg.window_text.is_some() => {
                return agg.window_index().map(|i| Ok(Expr::column(i, DataType::Window)));
            }
            ast::Expr::CompoundIdentifier(ids) if ids.len() == 2 && is_window_name(&ids[0].value) => {
                let Some(i) = agg.window_index() else {
                    return Some(Err(SqlError::at(ast.span(), "window.start and window.end need a window(...) in GROUP BY")));
                };
                let w = Box::new(Expr::column(i, DataType::Window));
                return Some(match ids[1].value.to_ascii_lowercase().as_str() {
                    "start" => Ok(Expr::WindowStart(w)),
                    "end" => Ok(Expr::WindowEnd(w)),
                    other => Err(SqlError::at(ids[1].span, format!("a window has fields start and end, not {other}"))),
                });
            }
            _ => {}
        }
        // A grouped expression, compiled over the scan row, becomes a key column.
        if let Ok(e) = Compiler::plain(scope, self.clause).compile(ast) {
            if let Some(i) = agg.keys.iter().position(|k| *k == e) {
                return Some(Ok(Expr::column(i, e.data_type())));
            }
            if e.is_constant() {
                return Some(Ok(e));
            }
        }
        match ast {
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => Some(Err(SqlError::at(
                ast.span(),
                format!("column {ast} is neither grouped nor aggregated; add it to GROUP BY or use an aggregate such as max({ast})"),
            ))),
            _ => None,
        }
    }

    fn column(&self, qualifier: Option<&ast::Ident>, name: &ast::Ident) -> Result<Expr, SqlError> {
        match self.scope.lookup(qualifier.map(|q| q.value.as_str()), &name.value) {
            Lookup::Found(c) => Ok(Expr::column(c.index, c.data_type)),
            Lookup::Ambiguous => {
                Err(SqlError::at(name.span, format!("column {} is ambiguous; qualify it, e.g. source.{}", name.value, name.value)))
            }
            Lookup::NotFound => {
                if let Some(q) = qualifier {
                    if !self.scope.has_qualifier(&q.value) {
                        return Err(SqlError::at(q.span, format!("unknown source or alias {} in {q}.{name}", q.value)));
                    }
                }
                if name.value.eq_ignore_ascii_case("window") {
                    return Err(SqlError::at(name.span, "`window` is only defined when the query groups by window(...)"));
                }
                let hint = match self.scope.suggest(&name.value) {
                    Some(s) => format!("; did you mean {s}?"),
                    None => format!("; columns: {}", self.scope.column_list()),
                };
                Err(SqlError::at(name.span, format!("unknown column {}{hint}", name.value)))
            }
        }
    }

    fn structural(&mut self, ast: &ast::Expr) -> Result<Expr, SqlError> {
        use ast::Expr as A;
        match ast {
            A::Identifier(id) => self.column(None, id),
            A::CompoundIdentifier(ids) => match ids.as_slice() {
                [q, name] if is_window_name(&q.value) && !self.scope.has_qualifier(&q.value) => {
                    Err(SqlError::at(ast.span(), format!("window.{} needs a window(...) in GROUP BY", name.value)))
                }
                [q, name] => self.column(Some(q), name),
                _ => Err(SqlError::at(ast.span(), format!("{ast}: nested field access is not supported; write source.column"))),
            },
            A::Value(v) => literal(v),
            A::TypedString(ts) => {
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                match &ts.data_type {
                    SqlType::Timestamp(..) | SqlType::Date => parse_timestamp(&text)
                        .map(|t| Expr::Literal(Value::Timestamp(t)))
                        .map_err(|e| SqlError::at(ast.span(), e.to_string())),
                    other => Err(SqlError::at(ast.span(), format!("typed literals of type {other} are not supported; use CAST"))),
                }
            }
            A::Nested(e) => self.compile(e),
            A::Interval(_) => Err(SqlError::at(ast.span(), "an INTERVAL can only be added to or subtracted from a timestamp")),
            A::UnaryOp { op, expr } => {
                let e = self.compile(expr)?;
                match op {
                    UnaryOperator::Not | UnaryOperator::BangNot => {
                        expect_type(&e, &[DataType::Boolean], "NOT", expr)?;
                        Ok(Expr::Not(Box::new(e)))
                    }
                    UnaryOperator::Minus => {
                        expect_type(&e, &[DataType::Long, DataType::Double], "unary -", expr)?;
                        Ok(Expr::Negate(Box::new(e)))
                    }
                    UnaryOperator::Plus => {
                        expect_type(&e, &[DataType::Long, DataType::Double], "unary +", expr)?;
                        Ok(e)
                    }
                    other => Err(SqlError::at(ast.span(), format!("operator {other} is not supported"))),
                }
            }
            A::BinaryOp { left, op, right } => self.binary(ast, left, op, right),
            A::IsNull(e) => Ok(Expr::IsNull { expr: Box::new(self.compile(e)?), negated: false }),
            A::IsNotNull(e) => Ok(Expr::IsNull { expr: Box::new(self.compile(e)?), negated: true }),
            A::IsTrue(e) | A::IsNotTrue(e) | A::IsFalse(e) | A::IsNotFalse(e) => {
                let inner = self.compile(e)?;
                expect_type(&inner, &[DataType::Boolean], "IS TRUE/FALSE", e)?;
                let want = matches!(ast, A::IsTrue(_) | A::IsNotTrue(_));
                let negated = matches!(ast, A::IsNotTrue(_) | A::IsNotFalse(_));
                // x IS TRUE is false (not NULL) when x is NULL.
                let test = Expr::Call {
                    func: Func::Coalesce,
                    args: vec![
                        Expr::Binary {
                            op: BinOp::Eq,
                            left: Box::new(inner),
                            right: Box::new(Expr::Literal(Value::Bool(want))),
                            data_type: DataType::Boolean,
                        },
                        Expr::Literal(Value::Bool(false)),
                    ],
                    data_type: DataType::Boolean,
                };
                Ok(if negated { Expr::Not(Box::new(test)) } else { test })
            }
            A::Between { expr, negated, low, high } => {
                let ge = self.compare(BinOp::GtEq, expr, low)?;
                let le = self.compare(BinOp::LtEq, expr, high)?;
                let both = Expr::Binary { op: BinOp::And, left: Box::new(ge), right: Box::new(le), data_type: DataType::Boolean };
                Ok(if *negated { Expr::Not(Box::new(both)) } else { both })
            }
            A::InList { expr, list, negated } => {
                let e = self.compile(expr)?;
                let mut items = Vec::new();
                for item in list {
                    let i = coerce_for_comparison(&e, self.compile(item)?, item)?;
                    items.push(i);
                }
                Ok(Expr::InList { expr: Box::new(e), list: items, negated: *negated })
            }
            A::Like { negated, any: false, expr, pattern, escape_char: None }
            | A::ILike { negated, any: false, expr, pattern, escape_char: None } => {
                let e = self.compile(expr)?;
                let p = self.compile(pattern)?;
                expect_type(&e, &[DataType::String], "LIKE", expr)?;
                expect_type(&p, &[DataType::String], "LIKE", pattern)?;
                Ok(Expr::Like {
                    expr: Box::new(e),
                    pattern: Box::new(p),
                    negated: *negated,
                    case_insensitive: matches!(ast, A::ILike { .. }),
                })
            }
            A::Case { operand, conditions, else_result, .. } => self.case(ast, operand.as_deref(), conditions, else_result.as_deref()),
            A::Cast { kind, expr, data_type, format: None } => {
                if matches!(kind, CastKind::DoubleColon | CastKind::Cast | CastKind::TryCast | CastKind::SafeCast) {
                    let e = self.compile(expr)?;
                    let (to, int32) = cast_target(data_type).ok_or_else(|| {
                        SqlError::at(
                            ast.span(),
                            format!("cannot CAST to {data_type}; use STRING, BIGINT, INT, DOUBLE, BOOLEAN or TIMESTAMP"),
                        )
                    })?;
                    let from = e.data_type();
                    let allowed = from == DataType::Null
                        || to == DataType::String
                        || from == to
                        || !matches!(
                            (from, to),
                            (DataType::Window, _) | (DataType::Boolean, DataType::Timestamp) | (DataType::Timestamp, DataType::Boolean)
                        );
                    if !allowed {
                        return Err(SqlError::at(ast.span(), format!("cannot CAST a {from} to {to}")));
                    }
                    Ok(Expr::Cast { expr: Box::new(e), to, int32 })
                } else {
                    Err(SqlError::at(ast.span(), "this form of CAST is not supported"))
                }
            }
            A::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![self.compile(expr)?];
                args.push(match substring_from {
                    Some(f) => self.compile(f)?,
                    None => Expr::Literal(Value::Long(1)),
                });
                if let Some(f) = substring_for {
                    args.push(self.compile(f)?);
                }
                self.call_resolved("substring", args, ast)
            }
            A::Trim { expr, trim_where: None, trim_what: None, trim_characters: None } => {
                let e = self.compile(expr)?;
                self.call_resolved("trim", vec![e], ast)
            }
            A::Ceil { expr, field } | A::Floor { expr, field } => {
                if !matches!(field, ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime)) {
                    return Err(SqlError::at(ast.span(), "CEIL/FLOOR take one numeric argument here"));
                }
                let e = self.compile(expr)?;
                self.call_resolved(if matches!(ast, A::Ceil { .. }) { "ceil" } else { "floor" }, vec![e], ast)
            }
            A::Function(f) => self.function(ast, f),
            A::Subquery(_) | A::InSubquery { .. } | A::Exists { .. } => {
                Err(SqlError::at(ast.span(), "subqueries are not supported in a streaming query; join the streams instead"))
            }
            other => Err(SqlError::at(ast.span(), format!("expression {other} is not supported"))),
        }
    }

    fn function(&mut self, ast: &ast::Expr, f: &ast::Function) -> Result<Expr, SqlError> {
        let name = function_name(f);
        // `user`, `current_date` and similar parse as functions without parentheses; a column
        // of that name wins, as it does in Spark.
        if matches!(f.args, ast::FunctionArguments::None) {
            if let [ast::ObjectNamePart::Identifier(id)] = f.name.0.as_slice() {
                return self.column(None, id);
            }
        }
        if f.over.is_some() {
            return Err(SqlError::at(
                ast.span(),
                format!("{name}() OVER (...): window functions over rows are not supported on a stream; use GROUP BY window(...)"),
            ));
        }
        if is_aggregate_name(&name) {
            let hint = if self.clause == "WHERE" { "; to filter on an aggregate use HAVING" } else { "" };
            return Err(SqlError::at(ast.span(), format!("aggregate {name}() is not allowed in {}{hint}", self.clause)));
        }
        if name == "window" || name == "session_window" {
            return Err(SqlError::at(ast.span(), format!("{name}(...) belongs in GROUP BY; select `window`, window.start or window.end")));
        }
        let (args, distinct) = function_args(f)?;
        if distinct {
            return Err(SqlError::at(ast.span(), format!("DISTINCT is only allowed in count(DISTINCT ...), not in {name}()")));
        }
        let mut compiled = Vec::new();
        for a in args {
            match a {
                Some(a) => compiled.push(self.compile(a)?),
                None => return Err(SqlError::at(ast.span(), format!("{name}(*) is not a function; only count(*) takes *"))),
            }
        }
        self.call_resolved(&name, compiled, ast)
    }

    fn call_resolved(&mut self, name: &str, args: Vec<Expr>, ast: &ast::Expr) -> Result<Expr, SqlError> {
        let types: Vec<DataType> = args.iter().map(Expr::data_type).collect();
        match Func::resolve(name, &types) {
            Ok(Some((func, data_type))) => {
                let args = if matches!(func, Func::Coalesce | Func::Greatest | Func::Least | Func::NullIf) && data_type == DataType::Double
                {
                    args.into_iter().map(promote_to_double).collect()
                } else {
                    args
                };
                Ok(Expr::Call { func, args, data_type })
            }
            Ok(None) => {
                let known = crate::expr::FUNCTION_NAMES;
                let near = known.iter().find(|k| super::scope::edit_distance(k, name) <= 2);
                let hint = match near {
                    Some(n) => format!("; did you mean {n}?"),
                    None => String::from("; see the README for the supported functions"),
                };
                Err(SqlError::at(ast.span(), format!("unknown function {name}(){hint}")))
            }
            Err(msg) => Err(SqlError::at(ast.span(), msg)),
        }
    }

    fn case(
        &mut self,
        ast: &ast::Expr,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
    ) -> Result<Expr, SqlError> {
        let operand = match operand {
            Some(o) => Some(self.compile(o)?),
            None => None,
        };
        let mut branches = Vec::new();
        for cw in conditions {
            let when = match &operand {
                Some(o) => coerce_for_comparison(o, self.compile(&cw.condition)?, &cw.condition)?,
                None => self.predicate(&cw.condition)?,
            };
            branches.push((when, self.compile(&cw.result)?));
        }
        let otherwise = match otherwise {
            Some(e) => Some(self.compile(e)?),
            None => None,
        };
        let mut types: Vec<DataType> = branches.iter().map(|(_, t)| t.data_type()).collect();
        if let Some(o) = &otherwise {
            types.push(o.data_type());
        }
        let data_type = crate::expr::common_type(&types)
            .ok_or_else(|| SqlError::at(ast.span(), "the THEN/ELSE results of CASE have different types; CAST them to one type"))?;
        if data_type == DataType::Double {
            for (_, t) in &mut branches {
                *t = promote_to_double(std::mem::replace(t, Expr::Literal(Value::Null)));
            }
        }
        let otherwise = otherwise.map(|o| Box::new(if data_type == DataType::Double { promote_to_double(o) } else { o }));
        Ok(Expr::Case { operand: operand.map(Box::new), branches, otherwise, data_type })
    }

    fn compare(&mut self, op: BinOp, left: &ast::Expr, right: &ast::Expr) -> Result<Expr, SqlError> {
        let l = self.compile_operand(left)?;
        let r = self.compile_operand(right)?;
        let r = coerce_for_comparison(&l, r, right)?;
        let l = coerce_for_comparison(&r, l, left)?;
        Ok(Expr::Binary { op, left: Box::new(l), right: Box::new(r), data_type: DataType::Boolean })
    }

    /// An operand that may be `timestamp ± INTERVAL`.
    fn compile_operand(&mut self, ast: &ast::Expr) -> Result<Expr, SqlError> {
        self.compile(ast)
    }

    fn binary(&mut self, ast: &ast::Expr, left: &ast::Expr, op: &BinaryOperator, right: &ast::Expr) -> Result<Expr, SqlError> {
        // timestamp ± INTERVAL
        if matches!(op, BinaryOperator::Plus | BinaryOperator::Minus) {
            let (ts_side, interval, sign) = match (left, right) {
                (l, ast::Expr::Interval(i)) => (Some(l), Some(i), if matches!(op, BinaryOperator::Minus) { -1 } else { 1 }),
                (ast::Expr::Interval(i), r) if matches!(op, BinaryOperator::Plus) => (Some(r), Some(i), 1),
                _ => (None, None, 1),
            };
            if let (Some(ts_ast), Some(interval)) = (ts_side, interval) {
                let micros = interval_micros(interval).map_err(|m| SqlError::at(ast.span(), m))?;
                let ts = self.compile(ts_ast)?;
                expect_type(&ts, &[DataType::Timestamp], "+ INTERVAL", ts_ast)?;
                return Ok(Expr::AddMicros { expr: Box::new(ts), micros: sign * micros });
            }
        }
        let bop = match op {
            BinaryOperator::Plus => BinOp::Add,
            BinaryOperator::Minus => BinOp::Sub,
            BinaryOperator::Multiply => BinOp::Mul,
            BinaryOperator::Divide => BinOp::Div,
            BinaryOperator::Modulo => BinOp::Mod,
            BinaryOperator::MyIntegerDivide | BinaryOperator::DuckIntegerDivide => BinOp::IntDiv,
            BinaryOperator::Eq => BinOp::Eq,
            BinaryOperator::NotEq => BinOp::NotEq,
            BinaryOperator::Lt => BinOp::Lt,
            BinaryOperator::LtEq => BinOp::LtEq,
            BinaryOperator::Gt => BinOp::Gt,
            BinaryOperator::GtEq => BinOp::GtEq,
            BinaryOperator::And => BinOp::And,
            BinaryOperator::Or => BinOp::Or,
            BinaryOperator::StringConcat => BinOp::Concat,
            other => return Err(SqlError::at(ast.span(), format!("operator {other} is not supported"))),
        };
        if bop.is_comparison() {
            return self.compare(bop, left, right);
        }
        let l = self.compile(left)?;
        let r = self.compile(right)?;
        let (lt, rt) = (l.data_type(), r.data_type());
        let data_type = match bop {
            BinOp::And | BinOp::Or => {
                expect_type(&l, &[DataType::Boolean], bop.symbol(), left)?;
                expect_type(&r, &[DataType::Boolean], bop.symbol(), right)?;
                DataType::Boolean
            }
            BinOp::Concat => {
                expect_type(&l, &[DataType::String], "||", left)?;
                expect_type(&r, &[DataType::String], "||", right)?;
                DataType::String
            }
            _ => {
                let numeric = |t: DataType| t.is_numeric() || t == DataType::Null;
                if !numeric(lt) || !numeric(rt) {
                    let cast = if lt == DataType::String || rt == DataType::String { "; CAST the string to a number" } else { "" };
                    return Err(SqlError::at(ast.span(), format!("cannot apply {} to {lt} and {rt}{cast}", bop.symbol())));
                }
                match bop {
                    BinOp::Div => DataType::Double,
                    BinOp::IntDiv => DataType::Long,
                    _ if lt == DataType::Double || rt == DataType::Double => DataType::Double,
                    _ => DataType::Long,
                }
            }
        };
        Ok(Expr::Binary { op: bop, left: Box::new(l), right: Box::new(r), data_type })
    }
}

fn register_aggregate(scope: &Scope, agg: &mut AggContext, f: &ast::Function) -> Result<Expr, SqlError> {
    let name = function_name(f);
    let span = f.span();
    if f.over.is_some() {
        return Err(SqlError::at(span, format!("{name}() OVER (...) is not supported on a stream; use GROUP BY window(...)")));
    }
    let (args, distinct) = function_args(f)?;
    let mut plain = Compiler::plain(scope, "an aggregate's argument");
    let filter = match &f.filter {
        Some(cond) => Some(plain.predicate(cond)?),
        None => None,
    };
    let check_nested = |a: &ast::Expr| -> Result<(), SqlError> {
        let nested = ast::visit_expressions(a, |e| match e {
            ast::Expr::Function(inner) if is_aggregate_name(&function_name(inner)) => std::ops::ControlFlow::Break(()),
            _ => std::ops::ControlFlow::Continue(()),
        });
        if nested.is_break() {
            Err(SqlError::at(a.span(), "an aggregate may not contain another aggregate"))
        } else {
            Ok(())
        }
    };
    let (kind, arg) = match (name.as_str(), args.as_slice(), distinct) {
        ("count", [None], false) => (AggregateKind::CountStar, None),
        ("count", [Some(a)], false) if is_one_literal(a) => (AggregateKind::CountStar, None),
        ("count", [Some(a)], d) => {
            check_nested(a)?;
            (if d { AggregateKind::CountDistinct } else { AggregateKind::Count }, Some(plain.compile(a)?))
        }
        ("count", [_, _, ..], true) => {
            return Err(SqlError::at(
                span,
                "count(DISTINCT ...) takes one column here; count a concatenation, e.g. count(DISTINCT concat(a, '|', b))",
            ))
        }
        (_, [Some(a)], false) => {
            check_nested(a)?;
            let kind = match name.as_str() {
                "sum" => AggregateKind::Sum,
                "avg" | "mean" => AggregateKind::Avg,
                "min" => AggregateKind::Min,
                _ => AggregateKind::Max,
            };
            (kind, Some(plain.compile(a)?))
        }
        (_, _, true) => return Err(SqlError::at(span, format!("DISTINCT is only supported in count(DISTINCT x), not {name}()"))),
        _ => return Err(SqlError::at(span, format!("{name}() takes exactly one argument"))),
    };
    // FILTER (WHERE c) is the aggregate over CASE WHEN c THEN arg END.
    let (kind, arg) = match filter {
        None => (kind, arg),
        Some(cond) => {
            let then = arg.unwrap_or(Expr::Literal(Value::Long(1)));
            let ty = then.data_type();
            let case = Expr::Case { operand: None, branches: vec![(cond, then)], otherwise: None, data_type: ty };
            (if kind == AggregateKind::CountStar { AggregateKind::Count } else { kind }, Some(case))
        }
    };
    let arg_type = arg.as_ref().map(Expr::data_type);
    let result_type = match (kind, arg_type) {
        (AggregateKind::CountStar | AggregateKind::Count | AggregateKind::CountDistinct, _) => DataType::Long,
        (AggregateKind::Sum, Some(DataType::Long | DataType::Null)) => DataType::Long,
        (AggregateKind::Sum, Some(DataType::Double)) => DataType::Double,
        (AggregateKind::Avg, Some(DataType::Long | DataType::Double | DataType::Null)) => DataType::Double,
        (AggregateKind::Min | AggregateKind::Max, Some(t)) if t != DataType::Window => t,
        (_, t) => {
            let t = t.map_or("nothing".to_string(), |t| t.to_string());
            return Err(SqlError::at(
                span,
                format!("{name}() cannot aggregate a {t}{}", if name == "sum" || name == "avg" { "; CAST it to a number" } else { "" }),
            ));
        }
    };
    let call = AggregateCall { kind, arg, result_type, text: spark_name(&ast::Expr::Function(f.clone())) };
    let index = match agg.aggregates.iter().position(|a| a.kind == call.kind && a.arg == call.arg) {
        Some(i) => i,
        None => {
            agg.aggregates.push(call);
            agg.aggregates.len() - 1
        }
    };
    Ok(Expr::column(agg.first_aggregate() + index, result_type))
}

fn is_one_literal(a: &ast::Expr) -> bool {
    matches!(a, ast::Expr::Value(v) if matches!(&v.value, ast::Value::Number(n, _) if n == "1"))
}

fn literal(v: &ast::ValueWithSpan) -> Result<Expr, SqlError> {
    let value = match &v.value {
        ast::Value::Number(n, _) => {
            if n.contains(['.', 'e', 'E']) {
                Value::Double(n.parse().map_err(|_| SqlError::at(v.span, format!("bad number {n}")))?)
            } else {
                match n.parse::<i64>() {
                    Ok(x) => Value::Long(x),
                    Err(_) => Value::Double(n.parse().map_err(|_| SqlError::at(v.span, format!("bad number {n}")))?),
                }
            }
        }
        ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => Value::str(s),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        other => return Err(SqlError::at(v.span, format!("literal {other} is not supported"))),
    };
    Ok(Expr::Literal(value))
}

/// Microseconds of an INTERVAL literal: `INTERVAL '1' HOUR`, `INTERVAL 1 HOUR`,
/// `INTERVAL '10 minutes'`.
pub fn interval_micros(i: &ast::Interval) -> Result<i64, String> {
    let text = match i.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            ast::Value::Number(n, _) => n.clone(),
            other => return Err(format!("INTERVAL {other}: write INTERVAL '1' HOUR or INTERVAL '10 minutes'")),
        },
        other => return Err(format!("INTERVAL {other}: the amount must be a literal")),
    };
    let unit = match &i.leading_field {
        None => return parse_duration(&text).map_err(|e| e.to_string()),
        Some(ast::DateTimeField::Microsecond | ast::DateTimeField::Microseconds) => 1,
        Some(ast::DateTimeField::Millisecond | ast::DateTimeField::Milliseconds) => 1_000,
        Some(ast::DateTimeField::Second | ast::DateTimeField::Seconds) => MICROS_PER_SECOND,
        Some(ast::DateTimeField::Minute | ast::DateTimeField::Minutes) => MICROS_PER_MINUTE,
        Some(ast::DateTimeField::Hour | ast::DateTimeField::Hours) => MICROS_PER_HOUR,
        Some(ast::DateTimeField::Day | ast::DateTimeField::Days) => MICROS_PER_DAY,
        Some(ast::DateTimeField::Week(_) | ast::DateTimeField::Weeks) => 7 * MICROS_PER_DAY,
        Some(other) => return Err(format!("INTERVAL ... {other}: months and years have no fixed length; use days")),
    };
    if i.last_field.is_some() {
        return Err("INTERVAL ranges (e.g. HOUR TO MINUTE) are not supported; write INTERVAL '90 minutes'".into());
    }
    let amount: f64 = text.trim().parse().map_err(|_| format!("INTERVAL '{text}': expected a number"))?;
    if amount < 0.0 {
        return Err("a negative INTERVAL is not supported here; subtract a positive one".into());
    }
    Ok((amount * unit as f64).round() as i64)
}

fn cast_target(t: &SqlType) -> Option<(DataType, bool)> {
    let text = t.to_string().to_ascii_lowercase();
    let base = text.split('(').next().unwrap_or("").trim();
    Some(match base {
        "int" | "integer" | "smallint" | "tinyint" | "int4" | "int2" => (DataType::Long, true),
        "bigint" | "long" | "int64" | "int8" => (DataType::Long, false),
        "double" | "float" | "real" | "double precision" | "float64" | "float8" | "decimal" | "numeric" => (DataType::Double, false),
        "boolean" | "bool" => (DataType::Boolean, false),
        "timestamp" | "date" => (DataType::Timestamp, false),
        "string" | "varchar" | "text" | "char" | "character varying" => (DataType::String, false),
        _ => return None,
    })
}

fn expect_type(e: &Expr, ok: &[DataType], what: &str, ast: &ast::Expr) -> Result<(), SqlError> {
    let t = e.data_type();
    if t == DataType::Null || ok.contains(&t) {
        Ok(())
    } else {
        let want: Vec<_> = ok.iter().map(|t| t.name()).collect();
        Err(SqlError::at(ast.span(), format!("{what} needs {}, but {ast} is a {t}", want.join(" or "))))
    }
}

/// Makes `other` comparable with `anchor`: a string literal next to a timestamp is parsed
/// at plan time; mismatched types are an error.
fn coerce_for_comparison(anchor: &Expr, other: Expr, ast: &ast::Expr) -> Result<Expr, SqlError> {
    let (a, o) = (anchor.data_type(), other.data_type());
    if a == o || a == DataType::Null || o == DataType::Null || (a.is_numeric() && o.is_numeric()) {
        return Ok(other);
    }
    if a == DataType::Timestamp && o == DataType::String {
        if let Expr::Literal(Value::Str(s)) = &other {
            return parse_timestamp(s).map(|t| Expr::Literal(Value::Timestamp(t))).map_err(|e| SqlError::at(ast.span(), e.to_string()));
        }
        return Ok(Expr::Cast { expr: Box::new(other), to: DataType::Timestamp, int32: false });
    }
    if a == DataType::String && o == DataType::Timestamp {
        return Ok(other);
    }
    Err(SqlError::at(ast.span(), format!("cannot compare a {a} with a {o}; CAST one side")))
}

fn promote_to_double(e: Expr) -> Expr {
    match e.data_type() {
        DataType::Long => match e {
            Expr::Literal(Value::Long(x)) => Expr::Literal(Value::Double(x as f64)),
            e => Expr::Cast { expr: Box::new(e), to: DataType::Double, int32: false },
        },
        _ => e,
    }
}

/// Evaluates constant sub-expressions once, at plan time.
fn fold(e: Expr) -> Expr {
    match &e {
        Expr::Literal(_) | Expr::Column { .. } => e,
        _ if e.is_constant() => {
            let data_type = e.data_type();
            match e.eval(&[]) {
                // A NULL of a known type keeps its type through a typed CAST.
                Value::Null if data_type != DataType::Null => {
                    Expr::Cast { expr: Box::new(Expr::Literal(Value::Null)), to: data_type, int32: false }
                }
                v => Expr::Literal(v),
            }
        }
        _ => e,
    }
}
