//! `eddy explain`: the physical plan of a query in words: operators, keys, state and topics.

use std::fmt::Write;

use super::plan::*;
use crate::config::{ConfigDuration, OutputMode};
use crate::expr::{Expr, Func};
use crate::types::Value;

/// Names of eddy's internal topics for a query.
pub fn changelog_topic(app: &str, query: &str) -> String {
    format!("{app}-{query}-changelog")
}

pub fn repartition_topic(app: &str, query: &str) -> String {
    format!("{app}-{query}-repartition")
}

impl QueryPlan {
    /// The plan as indented text.
    pub fn explain(&self, app: &str) -> String {
        let mut s = String::new();
        let scan_names: Vec<String> = self.scan.schema.fields.iter().map(|f| f.name.clone()).collect();
        let _ = writeln!(s, "query {} → sink {} (topic {}, output_mode {})", self.name, self.sink, self.sink_topic, self.output_mode);
        let _ = writeln!(s, "  scan source {} (topic {})", self.scan.source, self.scan.topic);
        let read: Vec<&str> = self.scan.needed.iter().zip(&scan_names).filter(|(n, _)| **n).map(|(_, name)| name.as_str()).collect();
        let _ = writeln!(s, "    decode json, columns read: {}", if read.is_empty() { "none".to_string() } else { read.join(", ") });
        match (self.scan.event_time, self.scan.watermark_delay) {
            (Some(et), delay) => {
                let col = match et {
                    EventTimeColumn::Column(c) => scan_names[c].clone(),
                    EventTimeColumn::KafkaTimestamp => "kafka_timestamp".to_string(),
                };
                let wm = match delay {
                    Some(d) => format!("watermark = max({col}) − {} per partition, min over partitions", ConfigDuration::from_micros(d)),
                    None => "no watermark".to_string(),
                };
                let idle = self
                    .scan
                    .idle_timeout
                    .map_or(String::new(), |t| format!("; a partition idle for {}s stops holding it back", t.as_secs_f64()));
                let _ = writeln!(s, "    event time {col}; {wm}{idle}");
            }
            (None, _) => {
                let _ = writeln!(s, "    no event time");
            }
        }
        if let Some(f) = &self.scan.filter {
            let _ = writeln!(s, "    filter {}", fmt_expr(f, &scan_names));
        }
        match &self.body {
            PlanBody::Stateless { projection } => {
                let _ = writeln!(s, "  project (stateless, no state)");
                for (e, c) in projection.iter().zip(&self.output) {
                    let _ = writeln!(s, "    {} := {}", c.name, fmt_expr(e, &scan_names));
                }
            }
            PlanBody::Aggregate(a) => {
                match &a.exchange {
                    Exchange::Local => {
                        let _ = writeln!(s, "  exchange: none (each source partition holds whole groups: it is keyed by a group column)");
                    }
                    Exchange::Repartition { partitions, reason } => {
                        let n = partitions.map_or("the source's partition count".to_string(), |p| p.to_string());
                        let _ = writeln!(
                            s,
                            "  exchange: repartition by the group keys through topic {} ({n} partitions), because {reason}",
                            repartition_topic(app, &self.name)
                        );
                    }
                }
                let keys: Vec<String> = a.keys.iter().map(|k| fmt_expr(k, &scan_names)).collect();
                let window = match a.window {
                    None => "no window".to_string(),
                    Some(w) if w.is_tumbling() => format!("tumbling window {}", ConfigDuration::from_micros(w.size)),
                    Some(w) => {
                        format!("sliding window {} every {}", ConfigDuration::from_micros(w.size), ConfigDuration::from_micros(w.slide))
                    }
                };
                let _ = writeln!(s, "  aggregate by [{}], {window}", keys.join(", "));
                for c in &a.aggregates {
                    let _ = writeln!(s, "    {}", c.text);
                }
                let what = if a.window.is_some() { "(window end, group key)" } else { "group key" };
                let _ = writeln!(
                    s,
                    "    state: one row per {what} in sled tree {}/aggregate/<partition>, changelog topic {}",
                    self.name,
                    changelog_topic(app, &self.name)
                );
                let emits = match (self.output_mode, a.window.is_some()) {
                    (OutputMode::Append, _) => "each window once, when the watermark passes its end; then its state is deleted",
                    (OutputMode::Update, true) => {
                        "changed rows at every commit; a window's state is deleted when the watermark passes its end"
                    }
                    (OutputMode::Update, false) => "changed rows at every commit",
                    (OutputMode::Complete, _) => "every row at every commit",
                };
                let _ = writeln!(s, "    emits {emits}");
                let mut agg_names: Vec<String> = a.key_names.clone();
                if a.window.is_some() {
                    agg_names.push("window".to_string());
                }
                agg_names.extend(a.aggregates.iter().map(|c| c.text.clone()));
                if let Some(h) = &a.having {
                    let _ = writeln!(s, "  having {}", fmt_expr(h, &agg_names));
                }
                let _ = writeln!(s, "  project");
                for (e, c) in a.projection.iter().zip(&self.output) {
                    let _ = writeln!(s, "    {} := {}", c.name, fmt_expr(e, &agg_names));
                }
            }
        }
        let key = if self.key_columns.is_empty() {
            match self.body {
                PlanBody::Stateless { .. } => "the input record's key".to_string(),
                PlanBody::Aggregate(_) => "none".to_string(),
            }
        } else {
            let names: Vec<&str> = self.key_columns.iter().map(|&i| self.output[i].name.as_str()).collect();
            format!("JSON object of [{}]", names.join(", "))
        };
        let _ = writeln!(s, "  sink topic {}, json, key: {key}", self.sink_topic);
        s
    }
}

/// An expression in SQL-like text with column names.
pub fn fmt_expr(e: &Expr, names: &[String]) -> String {
    let f = |e: &Expr| fmt_expr(e, names);
    match e {
        Expr::Column { index, .. } => names.get(*index).cloned().unwrap_or_else(|| format!("#{index}")),
        Expr::Literal(Value::Str(s)) => format!("'{s}'"),
        Expr::Literal(v) => crate::expr::cast_value(v.clone(), crate::types::DataType::String, false).to_display(),
        Expr::Not(x) => format!("NOT {}", f(x)),
        Expr::Negate(x) => format!("-{}", f(x)),
        Expr::IsNull { expr, negated } => format!("{} IS {}NULL", f(expr), if *negated { "NOT " } else { "" }),
        Expr::Binary { op, left, right, .. } => format!("({} {} {})", f(left), op.symbol(), f(right)),
        Expr::AddMicros { expr, micros } => format!("({} + INTERVAL '{}')", f(expr), ConfigDuration::from_micros(*micros)),
        Expr::Case { operand, branches, otherwise, .. } => {
            let mut s = String::from("CASE");
            if let Some(o) = operand {
                s += &format!(" {}", f(o));
            }
            for (w, t) in branches {
                s += &format!(" WHEN {} THEN {}", f(w), f(t));
            }
            if let Some(o) = otherwise {
                s += &format!(" ELSE {}", f(o));
            }
            s + " END"
        }
        Expr::Cast { expr, to, .. } => format!("CAST({} AS {})", f(expr), to.name().to_uppercase()),
        Expr::InList { expr, list, negated } => {
            let items: Vec<String> = list.iter().map(f).collect();
            format!("{} {}IN ({})", f(expr), if *negated { "NOT " } else { "" }, items.join(", "))
        }
        Expr::Like { expr, pattern, negated, case_insensitive } => {
            format!("{} {}{} {}", f(expr), if *negated { "NOT " } else { "" }, if *case_insensitive { "ILIKE" } else { "LIKE" }, f(pattern))
        }
        Expr::Call { func, args, .. } => {
            let a: Vec<String> = args.iter().map(f).collect();
            format!("{}({})", func_name(*func), a.join(", "))
        }
        Expr::WindowStart(w) => format!("{}.start", f(w)),
        Expr::WindowEnd(w) => format!("{}.end", f(w)),
    }
}

fn func_name(func: Func) -> String {
    format!("{func:?}").to_lowercase()
}

trait ToDisplay {
    fn to_display(&self) -> String;
}

impl ToDisplay for Value {
    fn to_display(&self) -> String {
        match self {
            Value::Str(s) => s.to_string(),
            Value::Null => "NULL".to_string(),
            other => format!("{other:?}"),
        }
    }
}
