//! A pipeline = a checked config plus one plan per query. This is what `validate` checks and
//! `explain` prints; every error, SQL ones included, points at the file's line and column.

use std::path::Path;

use crate::config::{self, Diagnostic, LoadedConfig, PathSeg, PipelineConfig};
use crate::sql::{plan_query, PlanBody, PlanContext, QueryPlan, SinkInfo, SourceInfo, SqlError};

/// A loaded, validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub loaded: LoadedConfig,
    /// Every query's plan; a query that chains stateful operators is preceded by its stages
    /// (each a plan of its own that feeds the next, see `QueryPlan::stages`).
    pub queries: Vec<QueryPlan>,
}

impl Pipeline {
    pub fn config(&self) -> &PipelineConfig {
        &self.loaded.config
    }

    /// What `validate` warns about: valid, but probably not what the user wants. A windowed
    /// aggregation in complete mode without `retention` keeps every window for ever.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for q in self.queries.iter().filter(|q| q.feeds.is_none()) {
            let PlanBody::Aggregate(a) = &q.body else { continue };
            if q.output_mode == config::OutputMode::Complete && a.window.is_some() && a.retention.is_none() {
                let message = format!(
                    "query {}: complete mode keeps every window for ever, so its state and each commit's output grow with the stream; set sinks.{}.retention (e.g. \"7d\") to drop windows that long after the watermark passes them",
                    q.name, q.sink
                );
                let at = [PathSeg::key("sinks"), PathSeg::key(&q.sink), PathSeg::key("output_mode")];
                out.push(self.loaded.diagnostic_at(&at, message).into_warning());
            }
        }
        out
    }

    /// Every query's plan, as `eddy explain` prints it.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        if let Some(security) = &self.config().kafka.security {
            // Where secrets come from, never their values (Secret prints as ***).
            out.push_str(&format!("kafka security: {security}\n\n"));
        }
        let c = self.config();
        let source_format = |name: &str| c.sources.get(name).map_or_else(|| "json".to_string(), |s| describe(s.format, s.avro.as_ref()));
        for q in self.queries.iter().filter(|q| q.feeds.is_none()) {
            let sink_format = c.sinks.get(&q.sink).map_or_else(|| "json".to_string(), |s| describe(s.format, s.avro.as_ref()));
            out.push_str(&q.explain_with(&c.app, &source_format, &sink_format));
            out.push('\n');
        }
        out
    }
}

/// A record format as `explain` names it.
fn describe(format: config::Format, avro: Option<&config::AvroOptions>) -> String {
    match (format, avro) {
        (config::Format::Json, _) => "json".into(),
        (config::Format::Csv, _) => "csv".into(),
        (config::Format::Avro, Some(a)) if a.registry.is_some() => "avro (Confluent wire format, schema registry)".into(),
        (config::Format::Avro, _) => "avro (schema file)".into(),
    }
}

/// Loads a pipeline file and plans its queries.
pub fn load(path: &Path) -> Result<Pipeline, Box<Diagnostic>> {
    let loaded = config::load(path)?;
    plan_all(loaded)
}

/// Parses pipeline text (with `env` supplying environment overrides) and plans its queries.
pub fn from_text(path: &Path, text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Pipeline, Box<Diagnostic>> {
    let loaded = config::parse(path, text, env)?;
    plan_all(loaded)
}

fn plan_all(loaded: LoadedConfig) -> Result<Pipeline, Box<Diagnostic>> {
    let c = &loaded.config;
    let formats = c
        .sources
        .iter()
        .map(|(name, s)| ("sources", name, s.csv.as_ref(), s.avro.as_ref()))
        .chain(c.sinks.iter().map(|(name, s)| ("sinks", name, s.csv.as_ref(), s.avro.as_ref())));
    for (section, name, csv, avro) in formats {
        if let Err((key, message)) = crate::formats::check_options(csv, avro) {
            return Err(Box::new(loaded.diagnostic_at(&[PathSeg::key(section), PathSeg::key(name), PathSeg::key(key)], message)));
        }
    }
    let sources: Vec<SourceInfo> = c
        .sources
        .iter()
        .map(|(name, s)| SourceInfo {
            name,
            topic: &s.topic,
            kind: s.kind,
            primary_key: s.primary_key.as_deref(),
            schema: &s.schema.schema,
            event_time: s.event_time.as_ref(),
            watermark_delay: s.watermark_delay.map(|d| d.micros()),
            idle_timeout: s.idle_timeout.map(|d| d.std()),
            partition_key: s.partition_key.as_deref(),
            stage: false,
        })
        .collect();
    let mut queries = Vec::new();
    for (i, q) in c.queries.iter().enumerate() {
        // The config check guarantees the sink exists.
        let Some(sink) = c.sinks.get(&q.sink) else { continue };
        let ctx = PlanContext {
            query_name: &q.name,
            sources: sources.clone(),
            sink: SinkInfo {
                name: &q.sink,
                topic: &sink.topic,
                output_mode: sink.output_mode,
                key: sink.key.as_deref(),
                retention: sink.retention.map(|d| d.micros()),
            },
            repartition_partitions: q.repartition_partitions,
        };
        let plan = plan_query(&q.sql, &ctx).map_err(|e| Box::new(sql_diagnostic(&loaded, i, &e)))?;
        for stage in &plan.stages {
            if let Some(other) = c.queries.iter().find(|o| o.name == stage.name) {
                let message = format!(
                    "query {} chains stateful operators, and its stage {} has the name of query {}; rename that query",
                    q.name, stage.name, other.name
                );
                return Err(Box::new(loaded.diagnostic_at(&[PathSeg::key("queries"), PathSeg::Index(i), PathSeg::key("name")], message)));
            }
        }
        // The engine runs each stage as a query of its own, lowest first.
        queries.extend(plan.stages.iter().cloned());
        queries.push(plan);
    }
    Ok(Pipeline { loaded, queries })
}

/// Maps an error inside query `i`'s SQL to the file position of that character.
fn sql_diagnostic(loaded: &LoadedConfig, i: usize, e: &SqlError) -> Diagnostic {
    let name = &loaded.config.queries[i].name;
    let message = format!("in query {name}: {}", e.message);
    let path = [PathSeg::key("queries"), PathSeg::Index(i), PathSeg::key("sql")];
    let Some((line, col)) = config::locate(&loaded.text, &path) else {
        return loaded.diagnostic_at(&path, message);
    };
    let position = match e.position {
        None => (line, col),
        Some((sql_line, sql_col)) => map_into_scalar(&loaded.text, line, col, sql_line, sql_col),
    };
    Diagnostic::new(&loaded.path, &loaded.text, Some(position), message)
}

/// Where (sql_line, sql_col) of a YAML scalar that starts at (line, col) lies in the file.
fn map_into_scalar(text: &str, line: usize, col: usize, sql_line: usize, sql_col: usize) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.get(line - 1).map(|l| l.chars().skip(col - 1).collect::<String>()).unwrap_or_default();
    if start.starts_with('|') || start.starts_with('>') {
        // A block scalar: its text starts on the next line, at that line's indentation.
        let content_line = line + sql_line;
        let indent = lines.iter().skip(line).find(|l| !l.trim().is_empty()).map_or(0, |l| l.len() - l.trim_start().len());
        (content_line, indent + sql_col)
    } else {
        let quote = usize::from(start.starts_with('"') || start.starts_with('\''));
        if sql_line == 1 {
            (line, col + quote + sql_col - 1)
        } else {
            let l = line + sql_line - 1;
            let indent = lines.get(l - 1).map_or(0, |t| t.len() - t.trim_start().len());
            (l, indent + sql_col)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"app: t
kafka: { bootstrap_servers: "localhost:9092" }
sources:
  events:
    topic: events
    schema: { time: timestamp, action: string }
    event_time: time
    watermark_delay: 2h
    partition_key: [action]
sinks:
  out: { topic: out }
queries:
  - name: counts
    sink: out
    sql: |
      SELECT action, count(*) AS n
      FROM evnts
      GROUP BY action, window(time, '1 hour')
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn an_unknown_source_in_sql_points_into_the_file() {
        let d = from_text(Path::new("p.yaml"), FILE, no_env).unwrap_err();
        assert_eq!(d.position, Some((17, 12)), "{d}");
        assert!(d.message.contains("unknown source evnts"), "{d}");
        assert!(d.to_string().contains("FROM evnts"), "{d}");
    }

    #[test]
    fn explain_names_each_source_and_sink_format() {
        let text =
            FILE.replace("evnts", "events").replace("    partition_key: [action]\n", "    partition_key: [action]\n    format: csv\n");
        let text = text.replace("out: { topic: out }", "out: { topic: out, format: csv }");
        let explained = from_text(Path::new("p.yaml"), &text, no_env).unwrap().explain();
        assert!(explained.contains("decode csv, columns read"), "{explained}");
        assert!(explained.contains("sink topic out, csv, key"), "{explained}");
        assert!(!explained.contains("json"), "{explained}");
    }

    #[test]
    fn single_line_sql_errors_are_located_too() {
        let text = FILE.replace(
            "sql: |\n      SELECT action, count(*) AS n\n      FROM evnts\n      GROUP BY action, window(time, '1 hour')",
            "sql: \"SELECT acton FROM events\"",
        );
        let d = from_text(Path::new("p.yaml"), &text, no_env).unwrap_err();
        assert_eq!(d.position, Some((15, 18)), "{d}");
    }

    #[test]
    fn format_options_are_checked_where_they_are_written() {
        let text = FILE.replace("evnts", "events").replace(
            "    partition_key: [action]\n",
            "    partition_key: [action]\n    format: csv\n    csv: { timestamp_format: \"dd/MM hh:mm\" }\n",
        );
        let d = from_text(Path::new("p.yaml"), &text, no_env).unwrap_err();
        assert_eq!(d.position, Some((11, 10)), "{d}");
        assert!(d.message.contains("letter 'h' is not supported"), "{d}");
        let text = FILE
            .replace("evnts", "events")
            .replace("  out: { topic: out }", "  out: { topic: out, format: avro, avro: { schema_file: /nonexistent.avsc } }");
        let d = from_text(Path::new("p.yaml"), &text, no_env).unwrap_err();
        assert!(d.message.contains("cannot read Avro schema /nonexistent.avsc"), "{d}");
        let text = FILE
            .replace("evnts", "events")
            .replace("    partition_key: [action]\n", "    partition_key: [action]\n    csv: { delimiter: \";\" }\n");
        let d = from_text(Path::new("p.yaml"), &text, no_env).unwrap_err();
        assert!(d.message.contains("csv options need `format: csv`"), "{d}");
    }

    #[test]
    fn a_good_pipeline_plans() {
        let p = from_text(Path::new("p.yaml"), &FILE.replace("evnts", "events"), no_env).unwrap();
        assert_eq!(p.queries.len(), 1);
        assert!(p.explain().contains("query counts"));
    }
}
