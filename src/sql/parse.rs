//! The SQL text → a checked, rewritten statement for DataFusion's planner. Here, on the
//! syntax tree and with the positions of the text, eddy rejects what a streaming query cannot
//! do, resolves every name (sources and aliases, columns case-insensitively as in Spark, select
//! aliases and ordinals in GROUP BY and HAVING, `window`/`window.start` as the grouped window),
//! expands `*` without the metadata columns, names unaliased select items as Spark names them,
//! and checks that every function exists (suggesting the nearest name when not).

use std::ops::ControlFlow;

use super::dialect::SparkDialect;
use datafusion_sql::sqlparser::ast::{self, Spanned};
use datafusion_sql::sqlparser::parser::Parser;
use datafusion_sql::sqlparser::tokenizer::Span;

use super::error::SqlError;
use super::naming::spark_name;
use super::planner::{PlanContext, SourceInfo};
use super::scope::closest;
use crate::config::SourceKind;
use crate::expr::Registry;
use crate::types::{DataType, Schema};

/// One FROM item after resolution.
#[derive(Debug, Clone)]
pub struct FromItem {
    /// Index into the planning context's sources; `None` for a subquery.
    pub source: Option<usize>,
    /// The columns it offers (a subquery's types are unknown here: `Null`).
    pub schema: Schema,
    /// Of those, how many `*` expands to.
    pub visible: usize,
    /// The qualifier every column reference uses (the alias, or the source name), lower-cased.
    pub qualifier: String,
    pub span: Span,
}

/// The outcome of the pass.
pub struct Parsed {
    pub statement: ast::Statement,
    pub info: SelectInfo,
}

/// What the pass learnt about the SELECT.
pub struct SelectInfo {
    /// Every source the query reads, subqueries included.
    pub sources: Vec<usize>,
    /// The select list's output names, in order.
    pub names: Vec<String>,
    /// Two select items with one name, reported after the rest of the plan is checked.
    pub duplicate: Option<SqlError>,
    /// The top-level ORDER BY ... LIMIT of a complete-mode query, taken out of the statement.
    pub top: Option<TopClause>,
}

/// `ORDER BY a DESC, b LIMIT n`, as written.
pub struct TopClause {
    /// (expression, descending, nulls first) per key.
    pub order: Vec<(ast::Expr, bool, bool)>,
    pub limit: usize,
    pub span: Span,
}

/// Special forms DataFusion's planner knows by name, besides the registry's functions.
const PLANNER_FORMS: &[&str] =
    &["unnest", "struct", "named_struct", "make_array", "array", "map", "get_field", "coalesce", "nullif", "grouping"];

/// Spark functions written in terms of others.
fn respell(name: &str) -> Option<&'static str> {
    Some(match name {
        "explode" => "unnest",
        _ => return None,
    })
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

pub fn is_aggregate_call(f: &ast::Function) -> bool {
    let name = function_name(f);
    f.over.is_none() && (Registry::global().is_aggregate(&name) || name == "count_if")
}

pub fn has_aggregate(e: &ast::Expr) -> bool {
    let found = ast::visit_expressions(e, |inner| match inner {
        ast::Expr::Function(f) if is_aggregate_call(f) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    found.is_break()
}

fn is_window_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("window") || name.eq_ignore_ascii_case("session_window")
}

/// Parses and checks one query.
pub fn parse(sql: &str, ctx: &PlanContext) -> Result<Parsed, SqlError> {
    let statements = Parser::parse_sql(&SparkDialect::default(), sql).map_err(|e| SqlError::from_parser(e, sql))?;
    let mut statement = match statements.as_slice() {
        [one] => one.clone(),
        [] => return Err(SqlError::new("the query is empty; write one SELECT statement")),
        [_, second, ..] => {
            return Err(SqlError::at(second.span(), "a query holds one SELECT statement; write each as its own entry under queries:"))
        }
    };
    let ast::Statement::Query(query) = &mut statement else {
        return Err(SqlError::at(
            statement.span(),
            "only SELECT queries are supported; sources and sinks are declared in the pipeline file",
        ));
    };
    inline_ctes(query)?;
    let top = take_top(query, ctx)?;
    check_query_clauses(query)?;
    let select = match query.body.as_mut() {
        ast::SetExpr::Select(s) => s,
        ast::SetExpr::SetOperation { op, .. } => {
            let op = op.to_string();
            return Err(SqlError::at(
                query.body.span(),
                format!("{op} at the top of a query is not supported: read it as a subquery, SELECT * FROM (... UNION ALL ...) AS u, or write one query per input and point both at the same sink"),
            ));
        }
        other => return Err(SqlError::at(other.span(), "only SELECT ... FROM ... queries are supported")),
    };
    let mut info = rewrite_select(select, ctx)?;
    info.top = top;
    Ok(Parsed { statement, info })
}

/// `WITH a AS (...), b AS (...) SELECT ... FROM b ...`: each use of a CTE in FROM becomes the
/// CTE's query as a subquery (a CTE used twice is computed twice, each use its own stage).
fn inline_ctes(query: &mut ast::Query) -> Result<(), SqlError> {
    let Some(with) = query.with.take() else { return Ok(()) };
    if with.recursive {
        return Err(SqlError::at(with.span(), "WITH RECURSIVE is not supported on a stream"));
    }
    let mut defined: Vec<(String, ast::Query)> = Vec::new();
    for cte in with.cte_tables {
        if !cte.alias.columns.is_empty() {
            return Err(SqlError::at(
                cte.alias.span(),
                "WITH name(columns) is not supported; name the columns with AS in the CTE's SELECT",
            ));
        }
        let mut q = *cte.query;
        inline_ctes(&mut q)?;
        substitute_query(&mut q, &defined);
        defined.push((cte.alias.name.value.to_ascii_lowercase(), q));
    }
    substitute_query(query, &defined);
    Ok(())
}

fn substitute_query(q: &mut ast::Query, defined: &[(String, ast::Query)]) {
    if let ast::SetExpr::Select(s) = q.body.as_mut() {
        for t in &mut s.from {
            substitute_factor(&mut t.relation, defined);
            for j in &mut t.joins {
                substitute_factor(&mut j.relation, defined);
            }
        }
    }
}

fn substitute_factor(f: &mut ast::TableFactor, defined: &[(String, ast::Query)]) {
    match f {
        ast::TableFactor::Table { name, alias, args: None, .. } => {
            let wanted = name.to_string().to_ascii_lowercase();
            if let Some((cte, q)) = defined.iter().find(|(d, _)| *d == wanted) {
                let alias = alias.clone().unwrap_or(ast::TableAlias { explicit: true, name: quoted(cte), columns: Vec::new(), at: None });
                *f = ast::TableFactor::Derived { lateral: false, subquery: Box::new(q.clone()), alias: Some(alias), sample: None };
            }
        }
        ast::TableFactor::Derived { subquery, .. } => substitute_query(subquery, defined),
        _ => {}
    }
}

/// In complete mode, a top-level `ORDER BY ... LIMIT n` ranks the result table: it is taken
/// out of the statement (the planner applies it to the aggregation's output). Elsewhere the
/// clauses stay and are refused below.
fn take_top(query: &mut ast::Query, ctx: &PlanContext) -> Result<Option<TopClause>, SqlError> {
    if ctx.sink.output_mode != crate::config::OutputMode::Complete || query.order_by.is_none() {
        return Ok(None);
    }
    let Some(order) = query.order_by.take() else { return Ok(None) };
    let span = order.span();
    let ast::OrderByKind::Expressions(exprs) = &order.kind else {
        return Err(SqlError::at(span, "ORDER BY ALL is not supported; name the columns"));
    };
    let limit = match query.limit_clause.take() {
        Some(ast::LimitClause::LimitOffset { limit: Some(ast::Expr::Value(v)), offset: None, limit_by }) if limit_by.is_empty() => {
            match &v.value {
                ast::Value::Number(n, _) => n.parse::<usize>().ok().filter(|&n| n > 0),
                _ => None,
            }
        }
        Some(other) => return Err(SqlError::at(other.span(), "LIMIT takes a positive number here (no OFFSET)")),
        None => None,
    };
    let Some(limit) = limit else {
        return Err(SqlError::at(
            span,
            "ORDER BY over a complete-mode table needs LIMIT n: the first n rows are the output (sort the whole table where you read the sink)",
        ));
    };
    let order = exprs
        .iter()
        .map(|e| {
            let descending = e.options.asc == Some(false);
            // Spark's default: NULLs first ascending, last descending.
            let nulls_first = e.options.nulls_first.unwrap_or(!descending);
            (e.expr.clone(), descending, nulls_first)
        })
        .collect();
    Ok(Some(TopClause { order, limit, span }))
}

fn check_query_clauses(query: &ast::Query) -> Result<(), SqlError> {
    if let Some(with) = &query.with {
        return Err(SqlError::at(
            with.span(),
            "WITH is not supported; write the subquery's logic into the query, or chain two queries through a topic",
        ));
    }
    if let Some(order) = &query.order_by {
        return Err(SqlError::at(
            order.span(),
            "ORDER BY is not supported on a stream: it never ends, so there is no last row to sort after. Sort where you read the sink",
        ));
    }
    if let Some(limit) = &query.limit_clause {
        return Err(SqlError::at(
            limit.span(),
            "LIMIT is not supported on a stream: it would stop the query after N rows. Filter with WHERE, or read N rows from the sink (eddy tail --max N)",
        ));
    }
    if query.fetch.is_some() {
        return Err(SqlError::new("FETCH is not supported on a stream"));
    }
    Ok(())
}

fn check_select_clauses(select: &ast::Select) -> Result<(), SqlError> {
    if select.top.is_some() {
        return Err(SqlError::at(select.span(), "TOP is not supported on a stream"));
    }
    if !select.sort_by.is_empty() || !select.cluster_by.is_empty() || !select.distribute_by.is_empty() {
        return Err(SqlError::at(
            select.span(),
            "SORT BY, CLUSTER BY and DISTRIBUTE BY are not supported; eddy partitions by the keys itself",
        ));
    }
    if select.qualify.is_some() || !select.named_window.is_empty() {
        return Err(SqlError::at(
            select.span(),
            "window functions over rows (QUALIFY, WINDOW) are not supported; use GROUP BY window(...)",
        ));
    }
    if !select.lateral_views.is_empty() {
        return Err(SqlError::at(select.span(), "LATERAL VIEW is not supported; use explode(...) in the select list"));
    }
    Ok(())
}

/// Resolves one FROM relation to a source.
fn resolve_source(relation: &ast::TableFactor, ctx: &PlanContext) -> Result<(usize, Option<ast::Ident>), SqlError> {
    let ast::TableFactor::Table { name, args: None, alias, .. } = relation else {
        return Err(SqlError::at(
            relation.span(),
            "FROM takes a source name from the pipeline file; subqueries and table functions are not supported",
        ));
    };
    let wanted = name.to_string();
    let index = ctx.sources.iter().position(|s| s.name.eq_ignore_ascii_case(&wanted)).ok_or_else(|| {
        let known: Vec<&str> = ctx.sources.iter().map(|s| s.name).collect();
        SqlError::at(name.span(), format!("unknown source {wanted}; the pipeline's sources are: {}", known.join(", ")))
    })?;
    Ok((index, alias.as_ref().map(|a| a.name.clone())))
}

/// A source's columns: its schema, then the metadata columns it does not shadow.
pub fn source_schema(source: &SourceInfo) -> Schema {
    let mut full = source.schema.clone();
    if source.stage {
        return full;
    }
    for (name, ty) in super::scope::metadata_columns() {
        if full.index_of(name).is_none() {
            full.fields.push(crate::types::Field::new(name, ty, true));
        }
    }
    full
}

struct Names<'a> {
    from: &'a [FromItem],
    schemas: Vec<Schema>,
    /// Columns visible to `*` per FROM item.
    visible: Vec<usize>,
}

enum Found {
    Column { item: usize, column: usize },
    Missing,
    Ambiguous,
}

impl Names<'_> {
    fn lookup(&self, qualifier: Option<&str>, name: &str) -> Found {
        let mut found: Option<(usize, usize)> = None;
        for (i, f) in self.from.iter().enumerate() {
            if qualifier.is_some_and(|q| !q.eq_ignore_ascii_case(&f.qualifier)) {
                continue;
            }
            if let Some(c) = self.schemas[i].index_of(name) {
                if found.is_some() {
                    return Found::Ambiguous;
                }
                found = Some((i, c));
            }
        }
        found.map_or(Found::Missing, |(item, column)| Found::Column { item, column })
    }

    fn has_qualifier(&self, q: &str) -> bool {
        self.from.iter().any(|f| f.qualifier.eq_ignore_ascii_case(q))
    }

    fn column_ident(&self, item: usize, column: usize) -> ast::Expr {
        let f = &self.from[item];
        let name = &self.schemas[item].fields[column].name;
        ast::Expr::CompoundIdentifier(vec![quoted(&f.qualifier), quoted(name)])
    }

    fn data_type(&self, item: usize, column: usize) -> &DataType {
        &self.schemas[item].fields[column].data_type
    }

    fn all_names(&self) -> Vec<&str> {
        self.schemas.iter().flat_map(|s| s.fields.iter().map(|f| f.name.as_str())).collect()
    }

    fn column_list(&self) -> String {
        let mut names = Vec::new();
        for (i, s) in self.schemas.iter().enumerate() {
            names.extend(s.fields.iter().take(self.visible[i]).map(|f| f.name.as_str()));
        }
        names.join(", ")
    }
}

fn quoted(s: &str) -> ast::Ident {
    ast::Ident::with_quote('"', s)
}

/// `get_field(base, 'name')`.
fn get_field(base: ast::Expr, field: &str) -> ast::Expr {
    call("get_field", vec![base, ast::Expr::value(ast::Value::SingleQuotedString(field.to_string()))])
}

fn call(name: &str, args: Vec<ast::Expr>) -> ast::Expr {
    ast::Expr::Function(ast::Function {
        name: ast::ObjectName::from(vec![ast::Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a))).collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// A subquery's body: one SELECT, or `UNION ALL` of SELECTs with as many columns each (named
/// by the first, as in Spark).
fn rewrite_body(body: &mut ast::SetExpr, span: Span, ctx: &PlanContext) -> Result<SelectInfo, SqlError> {
    match body {
        ast::SetExpr::Select(inner) => rewrite_select(inner, ctx),
        ast::SetExpr::Query(q) => {
            check_query_clauses(q)?;
            rewrite_body(q.body.as_mut(), span, ctx)
        }
        ast::SetExpr::SetOperation { op: ast::SetOperator::Union, set_quantifier: ast::SetQuantifier::All, left, right } => {
            let mut l = rewrite_body(left, span, ctx)?;
            let r = rewrite_body(right, span, ctx)?;
            if l.names.len() != r.names.len() {
                return Err(SqlError::at(
                    right.span(),
                    format!("UNION ALL needs as many columns on each side: {} and {}", l.names.len(), r.names.len()),
                ));
            }
            l.sources.extend(r.sources);
            l.duplicate = l.duplicate.or(r.duplicate);
            Ok(l)
        }
        ast::SetExpr::SetOperation { op, .. } => {
            let op = op.to_string();
            Err(SqlError::at(
                body.span(),
                format!("{op} is not supported on streams; UNION ALL is (deduplicate after it with SELECT DISTINCT)"),
            ))
        }
        _ => Err(SqlError::at(span, "a subquery in FROM is one SELECT ... FROM ..., or a UNION ALL of them")),
    }
}

fn rewrite_select(select: &mut ast::Select, ctx: &PlanContext) -> Result<SelectInfo, SqlError> {
    check_select_clauses(select)?;
    // FROM: at most one relation with at most one join.
    let table = match select.from.as_mut_slice() {
        [] => return Err(SqlError::at(select.span(), "the query reads no source; add FROM <source>")),
        [one] => one,
        [_, second, ..] => {
            return Err(SqlError::at(
                second.span(),
                "FROM a, b (a cross join) is not supported on streams; JOIN ... ON a key and a time range",
            ))
        }
    };
    if table.joins.len() > 1 {
        return Err(SqlError::at(
            table.joins[1].relation.span(),
            "a query joins two inputs; join more through a topic with a second query",
        ));
    }
    let mut from: Vec<FromItem> = Vec::new();
    let mut sources: Vec<usize> = Vec::new();
    let mut relations: Vec<&mut ast::TableFactor> = vec![&mut table.relation];
    for j in &mut table.joins {
        relations.push(&mut j.relation);
    }
    for relation in relations {
        let span = relation.span();
        if let ast::TableFactor::Derived { lateral: false, subquery, alias, .. } = relation {
            // A subquery: its own checks and names, then its output columns are a relation.
            check_query_clauses(subquery)?;
            let info = rewrite_body(subquery.body.as_mut(), span, ctx)?;
            if let Some(e) = info.duplicate {
                return Err(e);
            }
            let qualifier = alias.as_ref().map_or_else(|| format!("__subquery{}", from.len()), |a| a.name.value.to_ascii_lowercase());
            *alias = Some(ast::TableAlias { explicit: true, name: quoted(&qualifier), columns: Vec::new(), at: None });
            let schema = Schema::new(info.names.iter().map(|n| crate::types::Field::new(n.clone(), DataType::Null, true)).collect());
            sources.extend(info.sources);
            from.push(FromItem { source: None, visible: schema.len(), schema, qualifier, span });
            continue;
        }
        let (source, alias) = resolve_source(relation, ctx)?;
        let qualifier = alias.as_ref().map_or_else(|| ctx.sources[source].name.to_string(), |a| a.value.clone()).to_ascii_lowercase();
        if from.iter().any(|f: &FromItem| f.qualifier == qualifier) {
            return Err(SqlError::at(
                span,
                format!("a self-join needs aliases: FROM {0} AS a JOIN {0} AS b ON ...", ctx.sources[source].name),
            ));
        }
        if let ast::TableFactor::Table { name, alias, .. } = relation {
            *name = ast::ObjectName::from(vec![quoted(ctx.sources[source].name)]);
            *alias = Some(ast::TableAlias { explicit: true, name: quoted(&qualifier), columns: Vec::new(), at: None });
        }
        sources.push(source);
        from.push(FromItem {
            source: Some(source),
            schema: source_schema(&ctx.sources[source]),
            visible: ctx.sources[source].schema.len(),
            qualifier,
            span,
        });
    }
    if let [FromItem { source: Some(only), span, .. }] = from.as_slice() {
        if ctx.sources[*only].kind == SourceKind::Table {
            let name = ctx.sources[*only].name;
            return Err(SqlError::at(
                *span,
                format!("{name} is a table source; tables are joined to streams (FROM stream JOIN {name} ON ...), not read alone"),
            ));
        }
    }
    let schemas: Vec<Schema> = from.iter().map(|f| f.schema.clone()).collect();
    let visible = from.iter().map(|f| f.visible).collect();
    let names = Names { from: &from, schemas, visible };

    for item in &mut select.projection {
        if let ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } = item {
            normalize(e);
        }
    }
    select.selection.iter_mut().chain(select.having.iter_mut()).for_each(normalize);
    if let ast::GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        exprs.iter_mut().for_each(normalize);
    }
    if let Some(ast::Distinct::On(exprs)) = &mut select.distinct {
        exprs.iter_mut().for_each(normalize);
    }
    for j in &mut table.joins {
        if let ast::JoinOperator::Join(ast::JoinConstraint::On(e))
        | ast::JoinOperator::Inner(ast::JoinConstraint::On(e))
        | ast::JoinOperator::Left(ast::JoinConstraint::On(e))
        | ast::JoinOperator::LeftOuter(ast::JoinConstraint::On(e))
        | ast::JoinOperator::Right(ast::JoinConstraint::On(e))
        | ast::JoinOperator::RightOuter(ast::JoinConstraint::On(e))
        | ast::JoinOperator::FullOuter(ast::JoinConstraint::On(e)) = &mut j.join_operator
        {
            normalize(e);
        }
    }

    // Reject subqueries, window functions and nested aggregates anywhere.
    let mut roots: Vec<&ast::Expr> = Vec::new();
    for item in &select.projection {
        if let ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } = item {
            roots.push(e);
        }
    }
    roots.extend(select.selection.iter());
    roots.extend(select.having.iter());
    for root in &roots {
        check_expression(root)?;
    }
    if let Some(w) = &select.selection {
        if has_aggregate(w) {
            return Err(SqlError::at(w.span(), "WHERE filters rows before they are aggregated, so it cannot use an aggregate; use HAVING"));
        }
    }

    // Select list: expand *, name every item as Spark names it.
    let mut items: Vec<(ast::Expr, String, Span)> = Vec::new();
    for item in std::mem::take(&mut select.projection) {
        match item {
            ast::SelectItem::UnnamedExpr(e) => {
                let name = spark_name(&e);
                let span = e.span();
                items.push((e, name, span));
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                let span = expr.span();
                items.push((expr, alias.value.clone(), span));
            }
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                let span = item.span();
                let qualifier = match &item {
                    ast::SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(n), _) => Some(n.to_string()),
                    _ => None,
                };
                let mut any = false;
                for (i, f) in from.iter().enumerate() {
                    if qualifier.as_deref().is_some_and(|q| !q.eq_ignore_ascii_case(&f.qualifier)) {
                        continue;
                    }
                    for c in 0..names.visible[i] {
                        any = true;
                        items.push((names.column_ident(i, c), names.schemas[i].fields[c].name.clone(), span));
                    }
                }
                if !any {
                    return Err(SqlError::at(span, format!("{item} matches no columns")));
                }
            }
            other => return Err(SqlError::at(other.span(), format!("select item {other} is not supported"))),
        }
    }
    // Two output columns with one name are an error, reported once the plan is otherwise
    // sound (a join's missing time range is the more useful message); until then each gets
    // a distinct name for DataFusion.
    let mut seen = std::collections::HashSet::new();
    let mut duplicate = None;
    let mut aliases: Vec<String> = Vec::new();
    for (i, (_, name, span)) in items.iter().enumerate() {
        if seen.insert(name.to_ascii_lowercase()) {
            aliases.push(name.clone());
        } else {
            duplicate.get_or_insert_with(|| SqlError::at(*span, format!("two output columns are named {name}; give one an alias with AS")));
            aliases.push(format!("{name}#{i}"));
        }
    }
    let has_aggregate = items.iter().any(|(e, _, _)| has_aggregate(e)) || select.having.is_some();

    // GROUP BY: ordinals and select aliases, then find the window.
    let mut group: Vec<ast::Expr> = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return Err(SqlError::at(select.span(), "ROLLUP, CUBE and GROUPING SETS are not supported; write one query per grouping"));
            }
            exprs.clone()
        }
        ast::GroupByExpr::All(_) => return Err(SqlError::at(select.span(), "GROUP BY ALL is not supported; list the group columns")),
    };
    for g in &mut group {
        if let Some(replacement) = group_alias(g, &items, &names)? {
            *g = replacement;
        }
    }
    let mut window: Option<ast::Expr> = None;
    for g in &group {
        if let ast::Expr::Function(f) = g {
            if is_window_name(&function_name(f)) {
                if window.is_some() {
                    return Err(SqlError::at(g.span(), "a query may group by one window only"));
                }
                window = Some(g.clone());
            }
        }
    }
    let aggregating = has_aggregate || !group.is_empty();
    let distinct = !matches!(&select.distinct, None | Some(ast::Distinct::All));
    if distinct && aggregating {
        return Err(SqlError::at(
            select.span(),
            "DISTINCT together with GROUP BY is not supported; GROUP BY alone already gives one row per group",
        ));
    }

    // Resolve names everywhere.
    let resolver = Resolver { names: &names, window: window.as_ref(), aggregating };
    let mut resolved_window = window.clone();
    if let Some(w) = &mut resolved_window {
        resolver.resolve(w, false)?;
    }
    let resolver = Resolver { window: resolved_window.as_ref(), ..resolver };
    for g in &mut group {
        resolver.resolve(g, false)?;
    }
    for (e, _, _) in &mut items {
        resolver.resolve(e, true)?;
    }
    if let Some(h) = &mut select.having {
        if let Some(r) = group_alias_in(h, &items)? {
            *h = r;
        }
        resolver.resolve(h, true)?;
    }
    if let Some(w) = &mut select.selection {
        resolver.resolve(w, false)?;
    }
    for j in &mut table.joins {
        if let ast::JoinOperator::Join(ast::JoinConstraint::On(e))
        | ast::JoinOperator::Inner(ast::JoinConstraint::On(e))
        | ast::JoinOperator::Left(ast::JoinConstraint::On(e))
        | ast::JoinOperator::LeftOuter(ast::JoinConstraint::On(e))
        | ast::JoinOperator::Right(ast::JoinConstraint::On(e))
        | ast::JoinOperator::RightOuter(ast::JoinConstraint::On(e))
        | ast::JoinOperator::FullOuter(ast::JoinConstraint::On(e)) = &mut j.join_operator
        {
            check_expression(e)?;
            resolver.resolve(e, false)?;
        }
    }
    if let Some(ast::Distinct::On(exprs)) = &mut select.distinct {
        for e in exprs {
            resolver.resolve(e, false)?;
        }
    }
    if let ast::GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        *exprs = group;
    }
    let out_names: Vec<String> = items.iter().map(|(_, n, _)| n.clone()).collect();
    select.projection = items
        .into_iter()
        .zip(aliases)
        .map(|((expr, _, _), alias)| ast::SelectItem::ExprWithAlias { expr, alias: quoted(&alias) })
        .collect();
    Ok(SelectInfo { sources, names: out_names, duplicate, top: None })
}

/// `a.b.c` and `a[0].b` as the resolver reads them: dots only → a compound name (a qualifier,
/// a column, struct fields); with subscripts → `get_field` and Spark's 0-based `a[i]` / map
/// `m[key]` (`spark_get_item`) around the base.
fn normalize(e: &mut ast::Expr) {
    let _ = ast::visit_expressions_mut(e, |x| {
        if let ast::Expr::CompoundFieldAccess { root, access_chain } = x {
            let dots_only = access_chain.iter().all(|a| matches!(a, ast::AccessExpr::Dot(ast::Expr::Identifier(_))));
            if let (true, ast::Expr::Identifier(first)) = (dots_only, root.as_ref()) {
                let mut ids = vec![first.clone()];
                ids.extend(access_chain.iter().filter_map(|a| match a {
                    ast::AccessExpr::Dot(ast::Expr::Identifier(id)) => Some(id.clone()),
                    _ => None,
                }));
                *x = ast::Expr::CompoundIdentifier(ids);
                return ControlFlow::<()>::Continue(());
            }
            let mut out = std::mem::replace(root.as_mut(), ast::Expr::value(ast::Value::Null));
            for a in std::mem::take(access_chain) {
                out = match a {
                    ast::AccessExpr::Dot(ast::Expr::Identifier(id)) => get_field(out, &id.value),
                    ast::AccessExpr::Subscript(ast::Subscript::Index { index }) => call("spark_get_item", vec![out, index]),
                    other => call("unsupported_access", vec![out, ast::Expr::value(ast::Value::SingleQuotedString(other.to_string()))]),
                };
            }
            *x = out;
        }
        ControlFlow::Continue(())
    });
}

/// GROUP BY 1 (an ordinal) or GROUP BY alias (a select alias that is not a column).
fn group_alias(g: &ast::Expr, items: &[(ast::Expr, String, Span)], names: &Names) -> Result<Option<ast::Expr>, SqlError> {
    match g {
        ast::Expr::Value(v) => {
            if let ast::Value::Number(n, _) = &v.value {
                let i: usize = n.parse().map_err(|_| SqlError::at(g.span(), "GROUP BY position must be a whole number"))?;
                return items
                    .get(i.wrapping_sub(1))
                    .map(|it| Some(it.0.clone()))
                    .ok_or_else(|| SqlError::at(g.span(), format!("GROUP BY {i}: the select list has {} items", items.len())));
            }
            Ok(None)
        }
        ast::Expr::Identifier(id) if matches!(names.lookup(None, &id.value), Found::Missing) => {
            Ok(items.iter().find(|it| it.1.eq_ignore_ascii_case(&id.value)).filter(|it| !has_aggregate(&it.0)).map(|it| it.0.clone()))
        }
        _ => Ok(None),
    }
}

/// HAVING may name a select alias (Spark allows it): replaced by the aliased expression.
fn group_alias_in(h: &ast::Expr, items: &[(ast::Expr, String, Span)]) -> Result<Option<ast::Expr>, SqlError> {
    let mut h = h.clone();
    let mut changed = false;
    let _ = ast::visit_expressions_mut(&mut h, |e| {
        if let ast::Expr::Identifier(id) = e {
            if let Some(it) = items.iter().find(|it| it.1.eq_ignore_ascii_case(&id.value) && has_aggregate(&it.0)) {
                *e = ast::Expr::Nested(Box::new(it.0.clone()));
                changed = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(changed.then_some(h))
}

/// Functions whose second argument is a regular expression.
const REGEX_FUNCTIONS: &[&str] = &[
    "regexp_replace",
    "regexp_extract",
    "regexp_extract_all",
    "regexp_like",
    "regexp",
    "rlike",
    "regexp_count",
    "regexp_instr",
    "regexp_substr",
    "split",
];

/// A literal pattern that Rust's `regex` (which runs every regular expression here) cannot
/// compile: Java's look-around and back-references, or a plain syntax error.
fn check_regex(pattern: &ast::Expr) -> Option<SqlError> {
    let ast::Expr::Value(v) = pattern else { return None };
    let (ast::Value::SingleQuotedString(p) | ast::Value::DoubleQuotedString(p)) = &v.value else { return None };
    let err = regex::Regex::new(p).err()?;
    let detail = err.to_string();
    let reason = detail.lines().last().unwrap_or("").trim().trim_start_matches("error: ");
    Some(SqlError::at(
        pattern.span(),
        format!("regular expression '{p}' is not supported: {reason} (eddy runs Rust's regex syntax, which has no look-around or back-references)"),
    ))
}

/// `<ranking>() OVER (PARTITION BY ... ORDER BY ...)` is a Window Top-N when the query around
/// it keeps its first rows (the planner checks that); any other function over rows is not
/// supported on a stream.
fn check_over(f: &ast::Function) -> Option<SqlError> {
    let name = function_name(f);
    if crate::expr::ranking::Ranking::from_name(&name).is_none() {
        return Some(SqlError::at(
            f.span(),
            format!("{name}() OVER (...) is not supported on a stream; aggregate with GROUP BY window(...), or rank rows per window with ROW_NUMBER(), RANK() or DENSE_RANK() OVER (PARTITION BY window ...) (a Window Top-N)"),
        ));
    }
    match &f.over {
        Some(ast::WindowType::WindowSpec(spec)) if spec.window_frame.is_none() => None,
        Some(ast::WindowType::WindowSpec(_)) => Some(SqlError::at(
            f.span(),
            format!("{name}() OVER (...) takes no frame (ROWS/RANGE ...); it numbers the rows of each partition"),
        )),
        _ => Some(SqlError::at(
            f.span(),
            format!("{name}() OVER a named window is not supported; write the window as OVER (PARTITION BY ... ORDER BY ...)"),
        )),
    }
}

/// Rejects subqueries, window functions over rows, aggregates inside aggregates, and regular
/// expressions that cannot run.
fn check_expression(e: &ast::Expr) -> Result<(), SqlError> {
    let mut error: Option<SqlError> = None;
    let _ = ast::visit_expressions(e, |inner| {
        let found = match inner {
            ast::Expr::Subquery(_) | ast::Expr::InSubquery { .. } | ast::Expr::Exists { .. } => Some(SqlError::at(
                inner.span(),
                "subqueries are not supported in a streaming query; join the two streams, or chain queries through a topic",
            )),
            ast::Expr::Function(f) if f.over.is_some() => check_over(f),
            ast::Expr::RLike { pattern, .. } => check_regex(pattern),
            ast::Expr::Function(f) if REGEX_FUNCTIONS.contains(&function_name(f).as_str()) => match &f.args {
                ast::FunctionArguments::List(list) => match list.args.get(1) {
                    Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(p))) => check_regex(p),
                    _ => None,
                },
                _ => None,
            },
            ast::Expr::Function(f) if is_aggregate_call(f) => match &f.args {
                ast::FunctionArguments::List(list) => list
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => Some(x),
                        _ => None,
                    })
                    .find(|x| has_aggregate(x))
                    .map(|x| SqlError::at(x.span(), "an aggregate may not contain another aggregate")),
                _ => None,
            },
            _ => None,
        };
        match found {
            Some(err) => {
                error = Some(err);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    });
    error.map_or(Ok(()), Err)
}

struct Resolver<'a> {
    names: &'a Names<'a>,
    /// The grouped window call, resolved.
    window: Option<&'a ast::Expr>,
    aggregating: bool,
}

impl Resolver<'_> {
    /// Rewrites every name in `e` into a qualified, exactly-cased reference; `select` says
    /// whether `window` references are allowed here. Children are visited before their parent
    /// (names have no sub-expressions, and a call sees its arguments resolved).
    fn resolve(&self, e: &mut ast::Expr, select: bool) -> Result<(), SqlError> {
        match ast::visit_expressions_mut(e, |x| self.visit(x, select)) {
            ControlFlow::Break(err) => Err(err),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    fn visit(&self, e: &mut ast::Expr, select: bool) -> ControlFlow<SqlError> {
        let span = e.span();
        let replaced = match e {
            ast::Expr::Identifier(id) => self.identifier(None, id, span, select).map(Some),
            ast::Expr::CompoundIdentifier(ids) => self.compound(ids, span, select).map(Some),
            ast::Expr::Function(f) if matches!(f.args, ast::FunctionArguments::None) && f.name.0.len() == 1 => {
                // `user` without parentheses parses as a function but names a column.
                match self.names.lookup(None, &f.name.to_string()) {
                    Found::Column { item, column } => Ok(Some(self.names.column_ident(item, column))),
                    _ => Ok(None),
                }
            }
            ast::Expr::Function(f) => self.function(f, span, select).map(|()| None),
            // CAST with Spark's rules: a value that does not convert is NULL, not an error.
            ast::Expr::Cast { expr, data_type, format: None, .. } => {
                let text = data_type.to_string().to_ascii_lowercase().replace("double precision", "double");
                match crate::types::parse_type(&text) {
                    Ok(t) => Ok(Some(call(
                        "spark_cast",
                        vec![std::mem::replace(expr.as_mut(), ast::Expr::value(ast::Value::Null)), ast::Expr::value(ast::Value::SingleQuotedString(crate::types::type_name(&t)))],
                    ))),
                    Err(_) => Err(SqlError::at(span, format!("cannot CAST to {data_type}; use string, long, int, double, boolean, timestamp, date, decimal(p,s), array<T>, map<K,V> or struct<...>"))),
                }
            }
            // `a RLIKE p` is Spark's regexp_like(a, p): a match anywhere in `a`.
            ast::Expr::RLike { negated, expr, pattern, .. } => {
                let take = |x: &mut Box<ast::Expr>| std::mem::replace(x.as_mut(), ast::Expr::value(ast::Value::Null));
                let like = call("regexp_like", vec![take(expr), take(pattern)]);
                Ok(Some(if *negated { ast::Expr::UnaryOp { op: ast::UnaryOperator::Not, expr: Box::new(like) } } else { like }))
            }
            _ => Ok(None),
        };
        match replaced {
            Ok(Some(r)) => {
                *e = r;
                ControlFlow::Continue(())
            }
            Ok(None) => ControlFlow::Continue(()),
            Err(err) => ControlFlow::Break(err),
        }
    }

    fn function(&self, f: &mut ast::Function, span: Span, select: bool) -> Result<(), SqlError> {
        let name = function_name(f);
        if let Some(new) = respell(&name) {
            f.name = ast::ObjectName::from(vec![ast::Ident::new(new)]);
            return Ok(());
        }
        if name == "count_if" {
            // count_if(c) is count(CASE WHEN c THEN 1 END).
            if let ast::FunctionArguments::List(list) = &mut f.args {
                if let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(c))] = list.args.as_mut_slice() {
                    let cond = std::mem::replace(c, ast::Expr::value(ast::Value::Null));
                    *c = ast::Expr::Case {
                        case_token: ast::helpers::attached_token::AttachedToken::empty(),
                        end_token: ast::helpers::attached_token::AttachedToken::empty(),
                        operand: None,
                        conditions: vec![ast::CaseWhen {
                            condition: cond,
                            result: ast::Expr::value(ast::Value::Number("1".into(), false)),
                        }],
                        else_result: None,
                    };
                    f.name = ast::ObjectName::from(vec![ast::Ident::new("count")]);
                    return Ok(());
                }
            }
            return Err(SqlError::at(span, "count_if() takes one condition"));
        }
        self.check_function(f, &name)?;
        if is_window_name(&name) && self.aggregating && select {
            if let Some(w) = self.window {
                let text = ast::Expr::Function(f.clone()).to_string();
                if text != w.to_string() {
                    return Err(SqlError::at(
                        span,
                        format!("{text} does not match the window in GROUP BY; select `window` (or window.start, window.end) instead"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_function(&self, f: &ast::Function, name: &str) -> Result<(), SqlError> {
        let reg = Registry::global();
        if reg.scalar(name).is_some()
            || reg.aggregate(name).is_some()
            || PLANNER_FORMS.contains(&name)
            || f.name.0.len() > 1
            || (f.over.is_some() && crate::expr::ranking::Ranking::from_name(name).is_some())
        {
            return Ok(());
        }
        let hint = reg.suggest(name).map_or(String::from("; `eddy functions` lists every function"), |s| format!("; did you mean {s}?"));
        Err(SqlError::at(f.name.span(), format!("unknown function {name}{hint}")))
    }

    fn identifier(&self, qualifier: Option<&ast::Ident>, id: &ast::Ident, span: Span, select: bool) -> Result<ast::Expr, SqlError> {
        if qualifier.is_none() && is_window_name(&id.value) && !matches!(self.names.lookup(None, &id.value), Found::Column { .. }) {
            return match (self.window, select) {
                (Some(w), true) => Ok(w.clone()),
                _ => Err(SqlError::at(span, "`window` is only defined when the query groups by window(...)")),
            };
        }
        match self.names.lookup(qualifier.map(|q| q.value.as_str()), &id.value) {
            Found::Column { item, column } => Ok(self.names.column_ident(item, column)),
            Found::Ambiguous => Err(SqlError::at(span, format!("column {} is ambiguous; qualify it, e.g. source.{}", id.value, id.value))),
            Found::Missing => {
                if let Some(q) = qualifier {
                    if !self.names.has_qualifier(&q.value) {
                        return Err(SqlError::at(q.span, format!("unknown source or alias {} in {q}.{id}", q.value)));
                    }
                }
                let all = self.names.all_names();
                let hint = match closest(&id.value, all.iter().copied()) {
                    Some(s) => format!("; did you mean {s}?"),
                    None => format!("; columns: {}", self.names.column_list()),
                };
                Err(SqlError::at(span, format!("unknown column {}{hint}", id.value)))
            }
        }
    }

    fn compound(&self, ids: &[ast::Ident], span: Span, select: bool) -> Result<ast::Expr, SqlError> {
        let (first, rest) = match ids.split_first() {
            Some(x) => x,
            None => return Err(SqlError::at(span, "empty name")),
        };
        // window.start / window.end
        if is_window_name(&first.value)
            && !self.names.has_qualifier(&first.value)
            && !matches!(self.names.lookup(None, &first.value), Found::Column { .. })
        {
            let Some(w) = self.window.filter(|_| select) else {
                return Err(SqlError::at(
                    span,
                    format!("{}.{} needs a window(...) in GROUP BY", first.value, rest.first().map_or("", |r| r.value.as_str())),
                ));
            };
            let field = rest.first().map(|r| r.value.to_ascii_lowercase()).unwrap_or_default();
            if field != "start" && field != "end" || rest.len() > 1 {
                return Err(SqlError::at(
                    span,
                    format!(
                        "a window has fields start and end, not {}",
                        rest.iter().map(|r| r.value.as_str()).collect::<Vec<_>>().join(".")
                    ),
                ));
            }
            return Ok(get_field(w.clone(), &field));
        }
        // qualifier.column[.field...]
        if self.names.has_qualifier(&first.value) {
            let Some((column, fields)) = rest.split_first() else { return Err(SqlError::at(span, "a qualifier needs a column")) };
            let base = self.identifier(Some(first), column, span, select)?;
            return self.fields(base, fields, span);
        }
        // column.field...
        match self.names.lookup(None, &first.value) {
            Found::Column { .. } => {
                let base = self.identifier(None, first, span, select)?;
                self.fields(base, rest, span)
            }
            _ => {
                // Report the qualifier as the unknown part, as the user most likely meant one.
                Err(SqlError::at(
                    first.span,
                    format!(
                        "unknown source or alias {} in {}",
                        first.value,
                        ids.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(".")
                    ),
                ))
            }
        }
    }

    /// `base.f1.f2`: struct field access, checked against the column's type.
    fn fields(&self, base: ast::Expr, fields: &[ast::Ident], span: Span) -> Result<ast::Expr, SqlError> {
        let mut t = match &base {
            ast::Expr::CompoundIdentifier(parts) => {
                let q = parts.first().map(|p| p.value.clone()).unwrap_or_default();
                let c = parts.get(1).map(|p| p.value.clone()).unwrap_or_default();
                match self.names.lookup(Some(&q), &c) {
                    Found::Column { item, column } => Some(self.names.data_type(item, column).clone()),
                    _ => None,
                }
            }
            _ => None,
        };
        let mut e = base;
        for f in fields {
            let name = match &t {
                Some(DataType::Struct(fs)) => match fs.iter().find(|x| x.name().eq_ignore_ascii_case(&f.value)) {
                    Some(field) => {
                        let n = field.name().clone();
                        t = Some(field.data_type().clone());
                        n
                    }
                    None => {
                        let known: Vec<&str> = fs.iter().map(|x| x.name().as_str()).collect();
                        return Err(SqlError::at(f.span, format!("the struct has no field {}; its fields: {}", f.value, known.join(", "))));
                    }
                },
                Some(DataType::Null) | None => f.value.clone(),
                Some(other) => {
                    return Err(SqlError::at(
                        span,
                        format!(
                            "{} is a {}, which has no fields; `.{}` reads a struct's field",
                            e,
                            crate::types::type_name(other),
                            f.value
                        ),
                    ))
                }
            };
            e = get_field(e, &name);
        }
        Ok(e)
    }
}
