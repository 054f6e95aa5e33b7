//! Planning joins. A stream-stream join needs equal keys and a time range on the two
//! event-time columns (`l.t BETWEEN r.t AND r.t + INTERVAL 1 HOUR`), as Spark's does; a
//! stream-table join needs the table's primary key.

use std::collections::BTreeSet;

use sqlparser::ast::{self, Spanned};

use super::compile::Compiler;
use super::error::SqlError;
use super::plan::*;
use super::planner::{item_has_aggregate, plain_projection, resolve_source, sink_key, PlanContext, SourceScope};
use super::scope::{Scope, ScopeColumn};
use crate::config::{OutputMode, SourceKind};
use crate::expr::{BinOp, Expr};
use crate::types::DataType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// The columns of both sides, the right ones after the left ones.
fn combined_scope(left: &Scope, right: &Scope, left_width: usize) -> Scope {
    let mut columns: Vec<ScopeColumn> = left.columns.clone();
    columns.extend(right.columns.iter().map(|c| ScopeColumn { index: c.index + left_width, ..c.clone() }));
    Scope { columns }
}

/// The conjuncts of an AND tree.
fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary { op: BinOp::And, left, right, .. } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        other => out.push(other),
    }
}

fn sides(e: &Expr, left_width: usize) -> BTreeSet<u8> {
    e.columns().into_iter().map(|c| u8::from(c >= left_width)).collect()
}

/// `et` or `et ± constant` on one side.
fn time_term(e: &Expr, left_et: Option<usize>, right_et: Option<usize>) -> Option<(Side, i64)> {
    let (col, c) = match e {
        Expr::Column { index, .. } => (*index, 0),
        Expr::AddMicros { expr, micros } => match expr.as_ref() {
            Expr::Column { index, .. } => (*index, *micros),
            _ => return None,
        },
        _ => return None,
    };
    if Some(col) == left_et {
        Some((Side::Left, c))
    } else if Some(col) == right_et {
        Some((Side::Right, c))
    } else {
        None
    }
}

/// A comparison between the two event times, as bounds on `left time - right time`.
fn time_bound(e: &Expr, left_et: Option<usize>, right_et: Option<usize>) -> Option<(Option<i64>, Option<i64>)> {
    let Expr::Binary { op, left, right, .. } = e else { return None };
    let (sa, ca) = time_term(left, left_et, right_et)?;
    let (sb, cb) = time_term(right, left_et, right_et)?;
    if sa == sb {
        return None;
    }
    // X op Y with X = a.t + ca, Y = b.t + cb. Rewrite as (left - right) op' k.
    let (op, k) = if sa == Side::Left {
        (*op, cb - ca)
    } else {
        let flipped = match op {
            BinOp::Lt => BinOp::Gt,
            BinOp::LtEq => BinOp::GtEq,
            BinOp::Gt => BinOp::Lt,
            BinOp::GtEq => BinOp::LtEq,
            other => *other,
        };
        (flipped, ca - cb)
    };
    match op {
        BinOp::GtEq => Some((Some(k), None)),
        BinOp::Gt => Some((Some(k.saturating_add(1)), None)),
        BinOp::LtEq => Some((None, Some(k))),
        BinOp::Lt => Some((None, Some(k.saturating_sub(1)))),
        BinOp::Eq => Some((Some(k), Some(k))),
        _ => None,
    }
}

fn join_kind(op: &ast::JoinOperator, span: sqlparser::tokenizer::Span) -> Result<(JoinKind, &ast::JoinConstraint), SqlError> {
    use ast::JoinOperator as J;
    Ok(match op {
        J::Join(c) | J::Inner(c) => (JoinKind::Inner, c),
        J::Left(c) | J::LeftOuter(c) => (JoinKind::LeftOuter, c),
        J::Right(c) | J::RightOuter(c) => (JoinKind::RightOuter, c),
        J::FullOuter(c) => (JoinKind::FullOuter, c),
        J::CrossJoin(_) => return Err(SqlError::at(span, "CROSS JOIN is not supported on streams; JOIN ... ON a key and a time range")),
        _ => return Err(SqlError::at(span, "only JOIN, LEFT JOIN, RIGHT JOIN and FULL JOIN are supported")),
    })
}

pub fn plan_join(select: &ast::Select, table: &ast::TableWithJoins, ctx: &PlanContext) -> Result<QueryPlan, SqlError> {
    let join = match table.joins.as_slice() {
        [one] => one,
        [_, second, ..] => {
            return Err(SqlError::at(second.relation.span(), "a query joins two inputs; join more through a topic with a second query"))
        }
        [] => return Err(SqlError::new("no join")),
    };
    let (kind, constraint) = join_kind(&join.join_operator, join.relation.span())?;
    let on = match constraint {
        ast::JoinConstraint::On(e) => e,
        _ => {
            return Err(SqlError::at(
                join.relation.span(),
                "write the join condition with ON, e.g. ON a.id = b.id AND a.time BETWEEN b.time AND b.time + INTERVAL 1 HOUR",
            ))
        }
    };
    let (ls, la) = resolve_source(&table.relation, ctx)?;
    let (rs, ra) = resolve_source(&join.relation, ctx)?;
    let left = SourceScope::new(ls, la.as_deref());
    let right = SourceScope::new(rs, ra.as_deref());
    if ls.name == rs.name && la.is_none() && ra.is_none() {
        return Err(SqlError::at(join.relation.span(), "a self-join needs aliases: FROM s AS a JOIN s AS b ON ..."));
    }
    if select.projection.iter().any(item_has_aggregate)
        || !matches!(&select.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty())
        || select.having.is_some()
    {
        return Err(SqlError::at(
            select.span(),
            "aggregating over a join is not supported yet: write the join to a topic, and aggregate that topic in a second query",
        ));
    }
    if !matches!(select.distinct, None | Some(ast::Distinct::All)) {
        return Err(SqlError::at(
            select.span(),
            "DISTINCT over a join is not supported yet: write the join to a topic and deduplicate it in a second query",
        ));
    }
    if ctx.sink.output_mode != OutputMode::Append {
        return Err(SqlError::new(format!(
            "a join's output is append-only: its rows never change once written; set sinks.{}.output_mode to append",
            ctx.sink.name
        )));
    }
    match (ls.kind, rs.kind) {
        (SourceKind::Stream, SourceKind::Table) => return plan_table_join(select, kind, on, &left, &right, ctx),
        (SourceKind::Table, _) => return Err(SqlError::at(table.relation.span(), "put the stream first: FROM stream JOIN table ON ...")),
        _ => {}
    }
    let lw = left.schema.len();
    let scope = combined_scope(&left.scope, &right.scope, lw);
    let on_expr = Compiler::plain(&scope, "ON").predicate(on)?;
    let mut parts = Vec::new();
    conjuncts(on_expr, &mut parts);
    let (left_et, right_et) = (left.event_time_index(), right.event_time_index().map(|i| i + lw));
    let (mut lower, mut upper) = (None::<i64>, None::<i64>);
    let mut keys: Vec<(Expr, Expr)> = Vec::new();
    let mut residual = Vec::new();
    // WHERE: conditions on one side go below the join where that keeps the join's meaning. An
    // inner join's other WHERE conditions are join conditions (Spark pushes them into the join):
    // an equality across the sides is a key, a time range bounds the state.
    let (mut left_filter, mut right_filter) = (Vec::new(), Vec::new());
    let mut where_residual = Vec::new();
    let push_down = |p: Expr, left_filter: &mut Vec<Expr>, right_filter: &mut Vec<Expr>| -> Option<Expr> {
        let s = sides(&p, lw);
        if s == BTreeSet::from([0]) && matches!(kind, JoinKind::Inner | JoinKind::LeftOuter) {
            left_filter.push(p);
        } else if s == BTreeSet::from([1]) && matches!(kind, JoinKind::Inner | JoinKind::RightOuter) {
            let mut p = p;
            p.remap_columns(&|c| c - lw);
            right_filter.push(p);
        } else {
            return Some(p);
        }
        None
    };
    if let Some(w) = &select.selection {
        let mut where_parts = Vec::new();
        conjuncts(Compiler::plain(&scope, "WHERE").predicate(w)?, &mut where_parts);
        for p in where_parts {
            if let Some(p) = push_down(p, &mut left_filter, &mut right_filter) {
                if kind == JoinKind::Inner {
                    parts.push(p);
                } else {
                    where_residual.push(p);
                }
            }
        }
    }
    for p in parts {
        if let Some((lo, hi)) = time_bound(&p, left_et, right_et) {
            if let Some(lo) = lo {
                lower = Some(lower.map_or(lo, |l| l.max(lo)));
            }
            if let Some(hi) = hi {
                upper = Some(upper.map_or(hi, |u| u.min(hi)));
            }
            continue;
        }
        if let Expr::Binary { op: BinOp::Eq, left: a, right: b, .. } = &p {
            let (sa, sb) = (sides(a, lw), sides(b, lw));
            let l = BTreeSet::from([0u8]);
            let r = BTreeSet::from([1u8]);
            if sa == l && sb == r {
                keys.push(((**a).clone(), (**b).clone()));
                continue;
            }
            if sa == r && sb == l {
                keys.push(((**b).clone(), (**a).clone()));
                continue;
            }
        }
        // An inner join's condition on one side filters that side before the join.
        if kind == JoinKind::Inner {
            if let Some(p) = push_down(p, &mut left_filter, &mut right_filter) {
                residual.push(p);
            }
            continue;
        }
        residual.push(p);
    }
    if keys.is_empty() {
        return Err(SqlError::at(
            on.span(),
            "a stream-stream join needs a key equality between the two sides, e.g. ON a.id = b.id AND ...",
        ));
    }
    for (src, scope_side) in [(ls, &left), (rs, &right)] {
        if scope_side.event_time().is_none() || src.watermark_delay.is_none() {
            return Err(SqlError::new(format!(
                "a stream-stream join keeps rows until no future row can match them, which needs a watermark on both sides: set sources.{}.event_time and watermark_delay",
                src.name
            )));
        }
    }
    let (Some(lower), Some(upper)) = (lower, upper) else {
        let (lt, rt) = (left_name(&la, ls), left_name(&ra, rs));
        return Err(SqlError::at(
            on.span(),
            format!(
                "a stream-stream join needs a time range bounded on both sides, or its state grows forever: add e.g. AND {lt}.{} BETWEEN {rt}.{} AND {rt}.{} + INTERVAL 1 HOUR",
                left.event_time_name(),
                right.event_time_name(),
                right.event_time_name()
            ),
        ));
    };
    if lower > upper {
        return Err(SqlError::at(on.span(), "the join's time range is empty: its lower bound is above its upper bound"));
    }
    if kind != JoinKind::Inner && !residual.is_empty() {
        return Err(SqlError::at(
            on.span(),
            "an outer join's ON may hold only key equalities and the time range; move other conditions to WHERE",
        ));
    }
    residual.extend(where_residual);
    let (mut projection, output) = plain_projection(select, &scope)?;
    let mut residual = and_all(residual);
    // Each side carries only the columns the projection and the residual read.
    let mut used: BTreeSet<usize> = projection.iter().flat_map(Expr::columns).collect();
    used.extend(residual.iter().flat_map(Expr::columns));
    let left_used: Vec<usize> = used.iter().copied().filter(|&c| c < lw).collect();
    let right_used: Vec<usize> = used.iter().copied().filter(|&c| c >= lw).collect();
    let remap = |c: usize| -> usize {
        if c < lw {
            left_used.iter().position(|&x| x == c).unwrap_or(0)
        } else {
            left_used.len() + right_used.iter().position(|&x| x == c).unwrap_or(0)
        }
    };
    projection.iter_mut().for_each(|e| e.remap_columns(&remap));
    if let Some(r) = &mut residual {
        r.remap_columns(&remap);
    }
    let column = |schema: &crate::types::Schema, i: usize| Expr::column(i, schema.fields[i].data_type);
    let left_values: Vec<Expr> = left_used.iter().map(|&i| column(&left.schema, i)).collect();
    let right_values: Vec<Expr> = right_used.iter().map(|&j| column(&right.schema, j - lw)).collect();
    let mut left_keys = Vec::new();
    let mut right_keys = Vec::new();
    let mut key_text = Vec::new();
    for (a, mut b) in keys {
        b.remap_columns(&|c| c - lw);
        let (a, b) = coerce_keys(a, b).map_err(|m| SqlError::at(on.span(), m))?;
        key_text.push(format!(
            "{} = {}",
            super::explain::fmt_expr(&a, &names(&left.schema)),
            super::explain::fmt_expr(&b, &names(&right.schema))
        ));
        left_keys.push(a);
        right_keys.push(b);
    }
    let local = co_partitioned((ls, &left_keys, &left.schema), (rs, &right_keys, &right.schema));
    let exchange = if local {
        Exchange::Local
    } else {
        Exchange::Repartition {
            partitions: ctx.repartition_partitions,
            reason:
                "the two sides are not both partitioned by the join key (partition_key), so matching rows may sit in different partitions"
                    .to_string(),
        }
    };
    let key_columns = sink_key(ctx, &output, Vec::new())?;
    Ok(QueryPlan {
        name: ctx.query_name.to_string(),
        sink: ctx.sink.name.to_string(),
        sink_topic: ctx.sink.topic.to_string(),
        output_mode: OutputMode::Append,
        inputs: vec![
            InputPlan { scan: left.scan_plan(and_all(left_filter)), keys: left_keys, values: left_values, exchange: exchange.clone() },
            InputPlan { scan: right.scan_plan(and_all(right_filter)), keys: right_keys, values: right_values, exchange },
        ],
        body: PlanBody::Join(JoinPlan { kind, lower, upper, residual, projection, key_text }),
        output,
        key_columns,
    })
}

fn left_name(alias: &Option<String>, s: &super::planner::SourceInfo) -> String {
    alias.clone().unwrap_or_else(|| s.name.to_string())
}

fn names(schema: &crate::types::Schema) -> Vec<String> {
    schema.fields.iter().map(|f| f.name.clone()).collect()
}

fn and_all(mut parts: Vec<Expr>) -> Option<Expr> {
    let first = if parts.is_empty() { return None } else { parts.remove(0) };
    Some(parts.into_iter().fold(first, |acc, p| Expr::Binary {
        op: BinOp::And,
        left: Box::new(acc),
        right: Box::new(p),
        data_type: DataType::Boolean,
    }))
}

/// Key pairs must compare equal as the same type.
fn coerce_keys(a: Expr, b: Expr) -> Result<(Expr, Expr), String> {
    let (ta, tb) = (a.data_type(), b.data_type());
    if ta == tb {
        return Ok((a, b));
    }
    if ta.is_numeric() && tb.is_numeric() {
        let cast = |e: Expr| Expr::Cast { expr: Box::new(e), to: DataType::Double, int32: false };
        return Ok((cast(a), cast(b)));
    }
    Err(format!("join keys of types {ta} and {tb} cannot be equal; CAST one side"))
}

/// Which join keys the source is partitioned by: for each of its `partition_key` columns in
/// order, the position of a key that is that plain column.
fn partitioned_by(source: &super::planner::SourceInfo, keys: &[Expr], schema: &crate::types::Schema) -> Option<Vec<usize>> {
    source
        .partition_key?
        .iter()
        .map(|col| {
            let idx = schema.index_of(col)?;
            keys.iter().position(|k| matches!(k, Expr::Column { index, .. } if *index == idx))
        })
        .collect()
}

/// Both sides are partitioned by the same join keys (all of them, or some): rows with equal
/// keys then have equal partitioning keys, so they are in the same partition number.
fn co_partitioned(
    (ls, lkeys, lschema): (&super::planner::SourceInfo, &[Expr], &crate::types::Schema),
    (rs, rkeys, rschema): (&super::planner::SourceInfo, &[Expr], &crate::types::Schema),
) -> bool {
    match (partitioned_by(ls, lkeys, lschema), partitioned_by(rs, rkeys, rschema)) {
        (Some(l), Some(r)) => !l.is_empty() && l == r,
        _ => false,
    }
}

/// `FROM stream [LEFT] JOIN table ON stream.x = table.pk`.
fn plan_table_join(
    select: &ast::Select,
    kind: JoinKind,
    on: &ast::Expr,
    stream: &SourceScope,
    table: &SourceScope,
    ctx: &PlanContext,
) -> Result<QueryPlan, SqlError> {
    if !matches!(kind, JoinKind::Inner | JoinKind::LeftOuter) {
        return Err(SqlError::at(
            on.span(),
            "a stream joins a table with JOIN or LEFT JOIN; the table side has no events to emit on its own",
        ));
    }
    let sw = stream.schema.len();
    let scope = combined_scope(&stream.scope, &table.scope, sw);
    let mut parts = Vec::new();
    conjuncts(Compiler::plain(&scope, "ON").predicate(on)?, &mut parts);
    let pk: Vec<usize> = table.source.primary_key.unwrap_or(&[]).iter().filter_map(|c| table.schema.index_of(c)).collect();
    let mut stream_keys: Vec<Option<Expr>> = vec![None; pk.len()];
    let mut residual = Vec::new();
    for p in parts {
        if let Expr::Binary { op: BinOp::Eq, left: a, right: b, .. } = &p {
            let pair = match (a.as_ref(), b.as_ref()) {
                (Expr::Column { index, .. }, other) if *index >= sw && sides(other, sw) == BTreeSet::from([0]) => {
                    Some((*index - sw, other.clone()))
                }
                (other, Expr::Column { index, .. }) if *index >= sw && sides(other, sw) == BTreeSet::from([0]) => {
                    Some((*index - sw, other.clone()))
                }
                _ => None,
            };
            if let Some((col, expr)) = pair {
                if let Some(slot) = pk.iter().position(|&c| c == col) {
                    let want = table.schema.fields[col].data_type;
                    let expr = if expr.data_type() == want { expr } else { Expr::Cast { expr: Box::new(expr), to: want, int32: false } };
                    stream_keys[slot] = Some(expr);
                    continue;
                }
            }
        }
        residual.push(p);
    }
    let pk_names = table.source.primary_key.unwrap_or(&[]).join(", ");
    let stream_keys: Vec<Expr> = stream_keys.into_iter().collect::<Option<_>>().ok_or_else(|| {
        SqlError::at(
            on.span(),
            format!(
                "a stream-table join matches the table's whole primary key [{pk_names}]: write ON stream.x = {}.<each key column>",
                table.source.name
            ),
        )
    })?;
    if kind != JoinKind::Inner && !residual.is_empty() {
        return Err(SqlError::at(on.span(), "a LEFT JOIN's ON may hold only the key equalities; move other conditions to WHERE"));
    }
    let mut stream_filter = Vec::new();
    if let Some(w) = &select.selection {
        let mut parts = Vec::new();
        conjuncts(Compiler::plain(&scope, "WHERE").predicate(w)?, &mut parts);
        for p in parts {
            if sides(&p, sw) == BTreeSet::from([0]) {
                stream_filter.push(p);
            } else {
                residual.push(p);
            }
        }
    }
    let (projection, output) = plain_projection(select, &scope)?;
    let key_columns = sink_key(ctx, &output, Vec::new())?;
    Ok(QueryPlan {
        name: ctx.query_name.to_string(),
        sink: ctx.sink.name.to_string(),
        sink_topic: ctx.sink.topic.to_string(),
        output_mode: OutputMode::Append,
        inputs: vec![InputPlan {
            scan: stream.scan_plan(and_all(stream_filter)),
            keys: Vec::new(),
            values: Vec::new(),
            exchange: Exchange::Local,
        }],
        body: PlanBody::TableJoin(TableJoinPlan {
            table: table.scan_plan(None),
            stream_keys,
            table_keys: pk,
            left_outer: kind == JoinKind::LeftOuter,
            projection,
            residual: and_all(residual),
        }),
        output,
        key_columns,
    })
}
