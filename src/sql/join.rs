//! Planning joins. A stream-stream join needs equal keys and a time range on the two
//! event-time columns (`l.t BETWEEN r.t AND r.t + INTERVAL 1 HOUR`), as Spark's does; a
//! stream-table join needs the table's primary key. For an inner join, as in Spark, ON and
//! WHERE are one condition: an equality across the sides is a key, a condition on one side
//! filters that side before the join, and only the rest is checked on each joined pair.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion_common::{Column, DFSchema, ScalarValue};
use datafusion_expr::logical_plan::{Join, JoinType, Projection};
use datafusion_expr::{BinaryExpr, Expr, Operator};

use super::error::SqlError;
use super::plan::*;
use super::planner::{compile, output_columns, sink_key, Input, SourceInfo, Streaming};
use crate::config::{OutputMode, SourceKind};
use crate::expr::Scalar;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

struct Sides<'a> {
    left: &'a DFSchema,
    right: &'a DFSchema,
}

impl Sides<'_> {
    /// Which sides an expression reads (0 left, 1 right).
    fn of(&self, e: &Expr) -> BTreeSet<u8> {
        e.column_refs().into_iter().map(|c| u8::from(!self.left.has_column(c) && self.right.has_column(c))).collect()
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip(&c.expr),
        Expr::TryCast(c) => strip(&c.expr),
        Expr::Alias(a) => strip(&a.expr),
        other => other,
    }
}

fn interval_micros(v: &ScalarValue) -> Option<i64> {
    crate::expr::functions::duration_micros(v).filter(|_| !matches!(v, ScalarValue::Utf8(_)))
}

/// `et` or `et ± interval` on one side.
fn time_term(e: &Expr, left_et: &Option<Column>, right_et: &Option<Column>) -> Option<(Side, i64)> {
    let (col, c) = match strip(e) {
        Expr::Column(c) => (c, 0),
        Expr::BinaryExpr(BinaryExpr { left, op: op @ (Operator::Plus | Operator::Minus), right }) => match (strip(left), strip(right)) {
            (Expr::Column(c), Expr::Literal(v, _)) => {
                let m = interval_micros(v)?;
                (c, if *op == Operator::Minus { -m } else { m })
            }
            (Expr::Literal(v, _), Expr::Column(c)) if *op == Operator::Plus => (c, interval_micros(v)?),
            _ => return None,
        },
        _ => return None,
    };
    if left_et.as_ref() == Some(col) {
        Some((Side::Left, c))
    } else if right_et.as_ref() == Some(col) {
        Some((Side::Right, c))
    } else {
        None
    }
}

/// A comparison between the two event times, as bounds on `left time - right time`.
fn time_bound(e: &Expr, left_et: &Option<Column>, right_et: &Option<Column>) -> Option<(Option<i64>, Option<i64>)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else { return None };
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
            Operator::Lt => Operator::Gt,
            Operator::LtEq => Operator::GtEq,
            Operator::Gt => Operator::Lt,
            Operator::GtEq => Operator::LtEq,
            other => *other,
        };
        (flipped, ca - cb)
    };
    match op {
        Operator::GtEq => Some((Some(k), None)),
        Operator::Gt => Some((Some(k.saturating_add(1)), None)),
        Operator::LtEq => Some((None, Some(k))),
        Operator::Lt => Some((None, Some(k.saturating_sub(1)))),
        Operator::Eq => Some((Some(k), Some(k))),
        _ => None,
    }
}

/// BETWEEN as two comparisons, so its bounds are seen.
fn expand(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Between(b) if !b.negated => {
            out.push(Expr::BinaryExpr(BinaryExpr::new(b.expr.clone(), Operator::GtEq, b.low)));
            out.push(Expr::BinaryExpr(BinaryExpr::new(b.expr, Operator::LtEq, b.high)));
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            expand(*left, out);
            expand(*right, out);
        }
        other => out.push(other),
    }
}

fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| a.and(b))
}

fn event_column(input: &Input, schema: &DFSchema) -> Option<Column> {
    let i = input.event_time_index()?;
    let (q, f) = schema.qualified_field(i);
    Some(Column::new(q.cloned(), f.name()))
}

pub fn plan_join(s: &Streaming, p: &Projection, join: &Join, where_filter: Option<&Expr>) -> Result<QueryPlan, SqlError> {
    let ctx = s.ctx;
    let kind = match join.join_type {
        JoinType::Inner => JoinKind::Inner,
        JoinType::Left => JoinKind::LeftOuter,
        JoinType::Right => JoinKind::RightOuter,
        JoinType::Full => JoinKind::FullOuter,
        _ => return Err(SqlError::new("only JOIN, LEFT JOIN, RIGHT JOIN and FULL JOIN are supported")),
    };
    if ctx.sink.output_mode != OutputMode::Append {
        return Err(SqlError::new(format!(
            "a join's output is append-only: its rows never change once written; set sinks.{}.output_mode to append",
            ctx.sink.name
        )));
    }
    let left = s.input(&join.left)?;
    let right = s.input(&join.right)?;
    match (left.source.kind, right.source.kind) {
        (SourceKind::Stream, SourceKind::Table) => return plan_table_join(s, p, join, kind, where_filter, &left, &right),
        (SourceKind::Table, _) => return Err(SqlError::new("put the stream first: FROM stream JOIN table ON ...")),
        _ => {}
    }
    let sides = Sides { left: join.left.schema(), right: join.right.schema() };
    let mut parts = Vec::new();
    for (l, r) in &join.on {
        parts.push(l.clone().eq(r.clone()));
    }
    if let Some(f) = &join.filter {
        expand(f.clone(), &mut parts);
    }
    let on_text = parts.iter().map(|e| e.human_display().to_string()).collect::<Vec<_>>().join(" AND ");
    let (left_et, right_et) = (event_column(&left, join.left.schema()), event_column(&right, join.right.schema()));
    let (mut lower, mut upper) = (None::<i64>, None::<i64>);
    let mut keys: Vec<(Expr, Expr)> = Vec::new();
    let mut residual = Vec::new();
    let (mut left_filter, mut right_filter) = (Vec::new(), Vec::new());
    let mut where_residual = Vec::new();
    let push_down = |p: Expr, lf: &mut Vec<Expr>, rf: &mut Vec<Expr>| -> Option<Expr> {
        let side = sides.of(&p);
        if side == BTreeSet::from([0]) && matches!(kind, JoinKind::Inner | JoinKind::LeftOuter) {
            lf.push(p);
        } else if side == BTreeSet::from([1]) && matches!(kind, JoinKind::Inner | JoinKind::RightOuter) {
            rf.push(p);
        } else {
            return Some(p);
        }
        None
    };
    if let Some(w) = where_filter {
        let mut where_parts = Vec::new();
        expand(w.clone(), &mut where_parts);
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
        if let Some((lo, hi)) = time_bound(&p, &left_et, &right_et) {
            if let Some(lo) = lo {
                lower = Some(lower.map_or(lo, |l| l.max(lo)));
            }
            if let Some(hi) = hi {
                upper = Some(upper.map_or(hi, |u| u.min(hi)));
            }
            continue;
        }
        if let Expr::BinaryExpr(BinaryExpr { left: a, op: Operator::Eq, right: b }) = &p {
            let (sa, sb) = (sides.of(a), sides.of(b));
            let (l, r) = (BTreeSet::from([0u8]), BTreeSet::from([1u8]));
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
        return Err(SqlError::new("a stream-stream join needs a key equality between the two sides, e.g. ON a.id = b.id AND ..."));
    }
    for side in [&left, &right] {
        if side.event_time().is_none() || side.source.watermark_delay.is_none() {
            return Err(SqlError::new(format!(
                "a stream-stream join keeps rows until no future row can match them, which needs a watermark on both sides: set sources.{}.event_time and watermark_delay",
                side.source.name
            )));
        }
    }
    let (Some(lower), Some(upper)) = (lower, upper) else {
        let lq = qualifier(join.left.schema(), left.source);
        let rq = qualifier(join.right.schema(), right.source);
        let (lt, rt) = (left.event_time_name(), right.event_time_name());
        return Err(SqlError::new(format!(
            "a stream-stream join needs a time range bounded on both sides, or its state grows forever: add e.g. AND {lq}.{lt} BETWEEN {rq}.{rt} AND {rq}.{rt} + INTERVAL 1 HOUR (the condition was: {on_text})"
        )));
    };
    if lower > upper {
        return Err(SqlError::new("the join's time range is empty: its lower bound is above its upper bound"));
    }
    if kind != JoinKind::Inner && !residual.is_empty() {
        return Err(SqlError::new("an outer join's ON may hold only key equalities and the time range; move other conditions to WHERE"));
    }
    residual.extend(where_residual);
    let residual = and_all(residual);
    // Each side carries only the columns the projection and the residual read.
    let mut used: Vec<Column> = Vec::new();
    for e in p.expr.iter().chain(residual.iter()) {
        for c in e.column_refs() {
            if !used.contains(c) {
                used.push(c.clone());
            }
        }
    }
    let left_used: Vec<usize> = sorted_indices(join.left.schema(), &used);
    let right_used: Vec<usize> = sorted_indices(join.right.schema(), &used);
    let mut fields = Vec::new();
    for &i in &left_used {
        let (q, f) = join.left.schema().qualified_field(i);
        fields.push((q.cloned(), Arc::new(f.as_ref().clone().with_nullable(true))));
    }
    for &i in &right_used {
        let (q, f) = join.right.schema().qualified_field(i);
        fields.push((q.cloned(), Arc::new(f.as_ref().clone().with_nullable(true))));
    }
    let row = DFSchema::new_with_metadata(fields, HashMap::new()).map_err(|e| SqlError::new(crate::expr::registry::clean_error(&e)))?;
    let projection = p.expr.iter().map(|e| compile(e, &row)).collect::<Result<Vec<_>, _>>()?;
    let residual = residual.map(|r| compile(&r, &row)).transpose()?;
    let column = |schema: &DFSchema, i: usize| -> Result<Scalar, SqlError> {
        let (q, f) = schema.qualified_field(i);
        compile(&Expr::Column(Column::new(q.cloned(), f.name())), schema)
    };
    let left_values = left_used.iter().map(|&i| column(join.left.schema(), i)).collect::<Result<Vec<_>, _>>()?;
    let right_values = right_used.iter().map(|&i| column(join.right.schema(), i)).collect::<Result<Vec<_>, _>>()?;
    let mut left_keys = Vec::new();
    let mut right_keys = Vec::new();
    let mut key_text = Vec::new();
    for (a, b) in keys {
        let a = compile(&a, join.left.schema())?;
        let b = compile(&b, join.right.schema())?;
        if a.data_type != b.data_type {
            return Err(SqlError::new(format!(
                "join keys of types {} and {} cannot be equal; CAST one side",
                crate::types::type_name(&a.data_type),
                crate::types::type_name(&b.data_type)
            )));
        }
        key_text.push(format!("{} = {}", a.text, b.text));
        left_keys.push(a);
        right_keys.push(b);
    }
    let local = co_partitioned((left.source, &left_keys, &left.schema), (right.source, &right_keys, &right.schema));
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
    let output = output_columns(p.schema.as_ref());
    let key_columns = sink_key(ctx, &output, Vec::new())?;
    let lf = and_all(left_filter).map(|f| compile(&f, join.left.schema())).transpose()?;
    let rf = and_all(right_filter).map(|f| compile(&f, join.right.schema())).transpose()?;
    Ok(s.plan_base(
        OutputMode::Append,
        vec![
            InputPlan { scan: left.scan_plan(lf), keys: left_keys, values: left_values, exchange: exchange.clone() },
            InputPlan { scan: right.scan_plan(rf), keys: right_keys, values: right_values, exchange },
        ],
        PlanBody::Join(JoinPlan { kind, lower, upper, residual, projection, key_text, row_schema: Arc::new(row.as_arrow().clone()) }),
        output,
        key_columns,
    ))
}

/// The alias (or name) a side's columns are qualified by.
fn qualifier(schema: &DFSchema, source: &SourceInfo) -> String {
    schema.iter().next().and_then(|(q, _)| q.map(|q| q.to_string())).unwrap_or_else(|| source.name.to_string())
}

fn sorted_indices(schema: &DFSchema, used: &[Column]) -> Vec<usize> {
    let mut v: Vec<usize> = used.iter().filter_map(|c| schema.maybe_index_of_column(c)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Which join keys the source is partitioned by: for each of its `partition_key` columns in
/// order, the position of a key that is that plain column.
fn partitioned_by(source: &SourceInfo, keys: &[Scalar], schema: &crate::types::Schema) -> Option<Vec<usize>> {
    source
        .partition_key?
        .iter()
        .map(|col| {
            let idx = schema.index_of(col)?;
            keys.iter().position(|k| k.as_column() == Some(idx))
        })
        .collect()
}

/// Both sides are partitioned by the same join keys (all of them, or some): rows with equal
/// keys then have equal partitioning keys, so they are in the same partition number.
fn co_partitioned(
    (ls, lkeys, lschema): (&SourceInfo, &[Scalar], &crate::types::Schema),
    (rs, rkeys, rschema): (&SourceInfo, &[Scalar], &crate::types::Schema),
) -> bool {
    match (partitioned_by(ls, lkeys, lschema), partitioned_by(rs, rkeys, rschema)) {
        (Some(l), Some(r)) => !l.is_empty() && l == r,
        _ => false,
    }
}

/// `FROM stream [LEFT] JOIN table ON stream.x = table.pk`.
fn plan_table_join(
    s: &Streaming,
    p: &Projection,
    join: &Join,
    kind: JoinKind,
    where_filter: Option<&Expr>,
    stream: &Input,
    table: &Input,
) -> Result<QueryPlan, SqlError> {
    let ctx = s.ctx;
    if !matches!(kind, JoinKind::Inner | JoinKind::LeftOuter) {
        return Err(SqlError::new("a stream joins a table with JOIN or LEFT JOIN; the table side has no events to emit on its own"));
    }
    let sides = Sides { left: join.left.schema(), right: join.right.schema() };
    let mut parts = Vec::new();
    for (l, r) in &join.on {
        parts.push(l.clone().eq(r.clone()));
    }
    if let Some(f) = &join.filter {
        expand(f.clone(), &mut parts);
    }
    let pk: Vec<usize> = table.source.primary_key.unwrap_or(&[]).iter().filter_map(|c| table.schema.index_of(c)).collect();
    let mut stream_keys: Vec<Option<Expr>> = vec![None; pk.len()];
    let mut residual = Vec::new();
    let table_column = |e: &Expr| -> Option<usize> {
        match strip(e) {
            Expr::Column(c) if sides.right.has_column(c) => sides.right.maybe_index_of_column(c),
            _ => None,
        }
    };
    for part in parts {
        if let Expr::BinaryExpr(BinaryExpr { left: a, op: Operator::Eq, right: b }) = &part {
            let pair = match (table_column(a), table_column(b)) {
                (Some(col), None) if sides.of(b) == BTreeSet::from([0]) => Some((col, (**b).clone())),
                (None, Some(col)) if sides.of(a) == BTreeSet::from([0]) => Some((col, (**a).clone())),
                _ => None,
            };
            if let Some((col, expr)) = pair {
                if let Some(slot) = pk.iter().position(|&c| c == col) {
                    stream_keys[slot] = Some(expr);
                    continue;
                }
            }
        }
        residual.push(part);
    }
    let pk_names = table.source.primary_key.unwrap_or(&[]).join(", ");
    let stream_keys: Vec<Expr> = stream_keys.into_iter().collect::<Option<_>>().ok_or_else(|| {
        SqlError::new(format!(
            "a stream-table join matches the table's whole primary key [{pk_names}]: write ON stream.x = {}.<each key column>",
            table.source.name
        ))
    })?;
    if kind != JoinKind::Inner && !residual.is_empty() {
        return Err(SqlError::new("a LEFT JOIN's ON may hold only the key equalities; move other conditions to WHERE"));
    }
    let mut stream_filter = Vec::new();
    if let Some(w) = where_filter {
        let mut where_parts = Vec::new();
        expand(w.clone(), &mut where_parts);
        for part in where_parts {
            if sides.of(&part) == BTreeSet::from([0]) {
                stream_filter.push(part);
            } else {
                residual.push(part);
            }
        }
    }
    let joined = join.schema.as_ref();
    let want: Vec<crate::types::DataType> = pk.iter().map(|&c| table.schema.fields[c].data_type.clone()).collect();
    let stream_keys = stream_keys
        .into_iter()
        .zip(want)
        .map(|(e, t)| {
            let k = compile(&e, join.left.schema())?;
            if k.data_type == t {
                Ok(k)
            } else {
                let cast = Expr::Cast(datafusion_expr::Cast::new(Box::new(e), t));
                compile(&cast, join.left.schema())
            }
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    let projection = p.expr.iter().map(|e| compile(e, joined)).collect::<Result<Vec<_>, _>>()?;
    let residual = and_all(residual).map(|r| compile(&r, joined)).transpose()?;
    let output = output_columns(p.schema.as_ref());
    let key_columns = sink_key(ctx, &output, Vec::new())?;
    let filter = and_all(stream_filter).map(|f| compile(&f, join.left.schema())).transpose()?;
    Ok(s.plan_base(
        OutputMode::Append,
        vec![InputPlan { scan: stream.scan_plan(filter), keys: Vec::new(), values: Vec::new(), exchange: Exchange::Local }],
        PlanBody::TableJoin(Box::new(TableJoinPlan {
            table: table.scan_plan(None),
            stream_keys,
            table_keys: pk,
            left_outer: kind == JoinKind::LeftOuter,
            projection,
            residual,
            row_schema: Arc::new(joined.as_arrow().clone()),
        })),
        output,
        key_columns,
    ))
}
