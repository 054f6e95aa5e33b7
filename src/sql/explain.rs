//! `eddy explain`: the physical plan of a query in words: operators, keys, state and topics.

use std::fmt::Write;

use super::plan::*;
use crate::config::{ConfigDuration, OutputMode};
use crate::expr::Scalar;

use crate::names::changelog_topic;
use crate::names::repartition_topic as repartition_topic_for;

fn names(schema: &crate::types::Schema) -> Vec<String> {
    schema.fields.iter().map(|f| f.name.clone()).collect()
}

fn dur(us: i64) -> ConfigDuration {
    ConfigDuration::from_micros(us)
}

impl QueryPlan {
    /// The plan as indented text, for JSON sources and sink.
    pub fn explain(&self, app: &str) -> String {
        self.explain_with(app, &|_| "json".to_string(), "json")
    }

    /// The plan as indented text; `source_format` names a source's record format.
    pub fn explain_with(&self, app: &str, source_format: &dyn Fn(&str) -> String, sink_format: &str) -> String {
        let mut s = String::new();
        if !self.stages.is_empty() {
            let _ = writeln!(
                s,
                "query {} chains {} stateful operators: {} stage(s) below it, each with its own tasks, state and changelog, feed the next through an internal topic in the same transaction",
                self.name,
                self.stages.len() + 1,
                self.stages.len()
            );
            for stage in &self.stages {
                s.push_str(&stage.explain_with(app, source_format, sink_format));
            }
        }
        match &self.feeds {
            Some(f) => {
                let _ = writeln!(
                    s,
                    "stage {} → input {} of {} (topic {}; its rows are final when emitted: append)",
                    self.name,
                    f.side,
                    f.query,
                    repartition_topic_for(app, &f.query, f.side)
                );
            }
            None => {
                let _ =
                    writeln!(s, "query {} → sink {} (topic {}, output_mode {})", self.name, self.sink, self.sink_topic, self.output_mode);
            }
        }
        for (i, input) in self.inputs.iter().enumerate() {
            let label = match (self.inputs.len(), i) {
                (1, _) => "input".to_string(),
                (_, 0) => "left input".to_string(),
                _ => "right input".to_string(),
            };
            explain_scan(&mut s, &label, &input.scan, &source_format(&input.scan.source));
            let scan_names = names(&input.scan.schema);
            if !input.keys.is_empty() {
                let keys: Vec<String> = input.keys.iter().map(|k| fmt_expr(k, &scan_names)).collect();
                let _ = writeln!(s, "    keys [{}]", keys.join(", "));
            }
            match &input.exchange {
                Exchange::Local if self.is_stateful() => {
                    let _ = writeln!(s, "    exchange: none (each source partition holds whole keys: the source is partitioned by the keys or some of them)");
                }
                Exchange::Local => {}
                Exchange::Repartition { partitions, reason } => {
                    let n = partitions.map_or("as many partitions as the source".to_string(), |p| format!("{p} partition(s)"));
                    let _ = writeln!(s, "    exchange: repartition by the keys through topic {} ({n}), because {reason}; watermarks follow as marker records", repartition_topic_for(app, &self.name, i));
                }
            }
        }
        let state = |s: &mut String, what: &str| {
            let _ = writeln!(
                s,
                "    state: {what} in sled tree {}/{}/<partition>, changelog topic {}",
                self.name,
                self.operator_name(),
                changelog_topic(app, &self.name)
            );
        };
        match &self.body {
            PlanBody::Stateless { projection } => {
                let _ = writeln!(s, "  project (stateless, no state)");
                project(&mut s, projection, &self.output, &names(&self.scan().schema));
            }
            PlanBody::Aggregate(a) => {
                let scan_names = names(&self.scan().schema);
                let keys: Vec<String> = self.inputs[0].keys.iter().map(|k| fmt_expr(k, &scan_names)).collect();
                let window = match a.window {
                    None => "no window".to_string(),
                    Some(WindowKind::Fixed(w)) if w.is_tumbling() => format!("tumbling window {}", dur(w.size)),
                    Some(WindowKind::Fixed(w)) => format!("sliding window {} every {}", dur(w.size), dur(w.slide)),
                    Some(WindowKind::Session { gap }) => format!("session window, gap {}", dur(gap)),
                };
                let _ = writeln!(s, "  aggregate by [{}], {window}", keys.join(", "));
                for c in &a.aggregates {
                    let _ = writeln!(s, "    {}", c.text);
                }
                match a.window {
                    Some(WindowKind::Session { .. }) => state(&mut s, "one row per (group key, session)"),
                    Some(_) => state(&mut s, "one row per (window end, group key)"),
                    None => state(&mut s, "one row per group key"),
                }
                let emits = match (self.output_mode, a.window.is_some()) {
                    (OutputMode::Append, _) => "each window once, when the watermark passes its end; then its state is deleted".to_string(),
                    (OutputMode::Update, true) => {
                        "changed rows at every commit; a window's state is deleted when the watermark passes its end".to_string()
                    }
                    (OutputMode::Update, false) => "changed rows at every commit".to_string(),
                    (OutputMode::Complete, false) => "every row at every commit that changed the table".to_string(),
                    (OutputMode::Complete, true) => match a.retention {
                        None => "every row at every commit that changed the table; windows are kept for ever (late records still count): state grows without bound".to_string(),
                        Some(r) => format!(
                            "every row at every commit that changed the table; a window is kept {} after the watermark passes its end, then deleted with a tombstone for its key",
                            dur(r)
                        ),
                    },
                };
                let emits = match &self.top {
                    None => emits,
                    Some(t) => {
                        let order: Vec<String> = t
                            .order
                            .iter()
                            .map(|o| {
                                let name = self.output.get(o.column).map_or("?", |c| c.name.as_str());
                                format!("{name}{}", if o.descending { " DESC" } else { "" })
                            })
                            .collect();
                        format!(
                            "at every commit that changed the table, its first {} rows by {}: the rows that entered or changed, and a tombstone for each row that left",
                            t.limit,
                            order.join(", ")
                        )
                    }
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
                project(&mut s, &a.projection, &self.output, &agg_names);
            }
            PlanBody::Join(j) => {
                let kind = match j.kind {
                    JoinKind::Inner => "inner",
                    JoinKind::LeftOuter => "left outer",
                    JoinKind::RightOuter => "right outer",
                    JoinKind::FullOuter => "full outer",
                };
                let _ = writeln!(
                    s,
                    "  {kind} join on [{}] and left time − right time in [{}, {}]",
                    j.key_text.join(", "),
                    signed(j.lower),
                    signed(j.upper)
                );
                state(&mut s, "each side's rows until no future row of the other side can match them (the watermark passes their time plus the range)");
                let _ = writeln!(
                    s,
                    "    emits matches as soon as both rows are present{}",
                    if j.kind == JoinKind::Inner { "" } else { "; unmatched outer rows, null-padded, when they expire" }
                );
                let joined: Vec<String> = j.row_schema.fields().iter().map(|f| f.name().clone()).collect();
                if let Some(r) = &j.residual {
                    let _ = writeln!(s, "  filter {}", fmt_expr(r, &joined));
                }
                let _ = writeln!(s, "  project");
                project(&mut s, &j.projection, &self.output, &joined);
            }
            PlanBody::Dedup(d) => {
                let scan_names = names(&self.scan().schema);
                let keys: Vec<String> = self.inputs[0].keys.iter().map(|k| fmt_expr(k, &scan_names)).collect();
                let rule = match d.rule {
                    DedupRule::EventTimeInKey => {
                        "a key's state ends when the watermark passes its event time (Spark's dropDuplicates)".to_string()
                    }
                    DedupRule::WithinWatermark { delay } => {
                        format!("a key's state ends {} after its first event (Spark's dropDuplicatesWithinWatermark)", dur(delay))
                    }
                };
                let _ = writeln!(s, "  deduplicate by [{}]: the first row of each key passes; {rule}", keys.join(", "));
                state(&mut s, "one row per key");
                let _ = writeln!(s, "  project");
                project(&mut s, &self.inputs[0].values, &self.output, &scan_names);
            }
            PlanBody::TopN(t) => {
                let _ = writeln!(s, "  top-n: {} ORDER BY {}, keep rank <= {}", t.text, t.order_text.join(", "), t.limit);
                let closes =
                    if t.window_key.is_some() { "the watermark reaches its window's end" } else { "the watermark reaches its event time" };
                state(&mut s, &format!("one row per partition, holding its first {} rows (with ties for RANK and DENSE_RANK)", t.limit));
                let _ = writeln!(s, "    emits each partition's rows once, numbered, when {closes}; then its state is deleted");
                let last = t.layers.last().map_or(&t.row_schema, |(_, schema)| schema);
                let row: Vec<String> = last.fields().iter().map(|f| f.name().clone()).collect();
                if let Some(f) = &t.filter {
                    let _ = writeln!(s, "  filter {}", fmt_expr(f, &row));
                }
                let _ = writeln!(s, "  project");
                project(&mut s, &t.projection, &self.output, &row);
            }
            PlanBody::TableJoin(t) => {
                let scan_names = names(&self.scan().schema);
                let keys: Vec<String> = t.stream_keys.iter().map(|k| fmt_expr(k, &scan_names)).collect();
                let _ = writeln!(
                    s,
                    "  {} table {} (topic {}) on [{}]: every instance keeps the table's latest row per key in memory, read from its start; updates apply as they arrive",
                    if t.left_outer { "left join" } else { "join" },
                    t.table.source,
                    t.table.topic,
                    keys.join(", ")
                );
                let mut all = scan_names.clone();
                all.extend(names(&t.table.schema));
                if let Some(r) = &t.residual {
                    let _ = writeln!(s, "  filter {}", fmt_expr(r, &all));
                }
                let _ = writeln!(s, "  project");
                project(&mut s, &t.projection, &self.output, &all);
            }
        }
        let key = if self.key_columns.is_empty() {
            match self.body {
                PlanBody::Stateless { .. } | PlanBody::TableJoin(_) => "the input record's key".to_string(),
                _ => "none".to_string(),
            }
        } else {
            let names: Vec<&str> = self.key_columns.iter().map(|&i| self.output[i].name.as_str()).collect();
            format!("JSON object of [{}]", names.join(", "))
        };
        if self.feeds.is_none() {
            let _ = writeln!(s, "  sink topic {}, {sink_format}, key: {key}", self.sink_topic);
        }
        s
    }
}

fn signed(us: i64) -> String {
    if us < 0 {
        format!("-{}", dur(-us))
    } else if us == 0 {
        "0".to_string()
    } else {
        dur(us).to_string()
    }
}

fn explain_scan(s: &mut String, label: &str, scan: &ScanPlan, format: &str) {
    let scan_names = names(&scan.schema);
    if let Some(stage) = &scan.stage {
        let col = match scan.event_time {
            Some(EventTimeColumn::Column(c)) => scan_names.get(c).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let time = match scan.schema.fields.iter().find(|f| f.name == col) {
            Some(f) if crate::types::is_window(&f.data_type) => format!("window_time({col}), its end minus 1 µs"),
            Some(_) => col,
            None => "none".to_string(),
        };
        let _ = writeln!(s, "  {label}: the rows of stage {stage}, columns {}", scan_names.join(", "));
        let _ = writeln!(s, "    event time {time}; watermark = the stage's output watermark (markers), min over its partitions");
        if let Some(f) = &scan.filter {
            let _ = writeln!(s, "    filter {}", fmt_expr(f, &scan_names));
        }
        explain_stages(s, &scan.stages);
        return;
    }
    let _ = writeln!(s, "  {label}: source {} (topic {})", scan.source, scan.topic);
    let read: Vec<&str> = scan.needed.iter().zip(&scan_names).filter(|(n, _)| **n).map(|(_, name)| name.as_str()).collect();
    let _ = writeln!(s, "    decode {format}, columns read: {}", if read.is_empty() { "none".to_string() } else { read.join(", ") });
    if let Some(et) = scan.event_time {
        let col = match (et, scan.event_time_source) {
            (EventTimeColumn::Column(_), Some(c)) => scan_names.get(c).cloned().unwrap_or_default(),
            (EventTimeColumn::Column(c), None) => format!("#{c}"),
            (EventTimeColumn::KafkaTimestamp, _) => "kafka_timestamp".to_string(),
        };
        let wm = match scan.watermark_delay {
            Some(d) => format!("watermark = max({col}) − {} per partition, min over partitions", dur(d)),
            None => "no watermark".to_string(),
        };
        let idle =
            scan.idle_timeout.map_or(String::new(), |t| format!("; a partition idle for {}s stops holding it back", t.as_secs_f64()));
        let _ = writeln!(s, "    event time {col}; {wm}{idle}");
    }
    if let Some(f) = &scan.filter {
        let _ = writeln!(s, "    filter {}", fmt_expr(f, &scan_names));
    }
    explain_stages(s, &scan.stages);
}

fn explain_stages(s: &mut String, stages: &[Stage]) {
    for stage in stages {
        let _ = match stage {
            Stage::Filter(f) => writeln!(s, "    filter {}", f.text),
            Stage::Project { exprs, schema } => {
                let cols: Vec<String> = exprs.iter().zip(schema.fields()).map(|(e, f)| format!("{} := {}", f.name(), e.text)).collect();
                writeln!(s, "    project [{}] (stateless)", cols.join(", "))
            }
            Stage::Unnest { column, schema } => {
                writeln!(s, "    explode {} (one row per element, stateless)", schema.field(*column).name())
            }
        };
    }
}

fn project(s: &mut String, projection: &[Scalar], output: &[super::plan::OutputColumn], names: &[String]) {
    for (e, c) in projection.iter().zip(output) {
        let _ = writeln!(s, "    {} := {}", c.name, fmt_expr(e, names));
    }
}

/// An expression as explain prints it.
pub fn fmt_expr(e: &Scalar, _names: &[String]) -> String {
    e.text.clone()
}
