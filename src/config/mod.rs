//! The pipeline file: serde structs that mirror the YAML one to one (DESIGN section 1), typed
//! field checks, environment overrides, and diagnostics that point at a file, line and column.
//! Depends on `time` (durations) and `types` (schemas); knows nothing of SQL or Kafka clients.

mod diagnostic;
mod format;
mod locate;
mod schema;
pub mod security;
mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use diagnostic::Diagnostic;
pub use format::{AvroOptions, CsvOptions};
pub use locate::{locate, PathSeg};
pub use schema::SchemaConfig;
pub use security::{Secret, SecurityConfig};
pub use types::{ConfigDuration, ErrorPolicy, EventTimeConfig, Format, OutputMode, ProcessingGuarantee, SourceKind, StartFrom};

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Consumer group id, and the prefix of internal topics and transactional ids.
    pub app: String,
    /// How to reach Kafka.
    pub kafka: KafkaConfig,
    /// `exactly_once` (default: transactions, read_committed) or `at_least_once`.
    #[serde(default)]
    pub processing_guarantee: ProcessingGuarantee,
    /// Where local state lives.
    #[serde(default)]
    pub state: StateConfig,
    /// How often a commit cycle (one transaction) ends. Default 100ms.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: ConfigDuration,
    /// A commit cycle also ends after this many input records. Default 100000 (chosen by
    /// measurement: see docs/benchmarks.md).
    #[serde(default = "default_commit_max_records")]
    pub commit_max_records: usize,
    /// The HTTP server for /metrics, /healthz, /readyz and /progress.
    #[serde(default)]
    pub http: HttpConfig,
    /// Named input topics.
    pub sources: BTreeMap<String, SourceConfig>,
    /// Named output topics.
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Streaming SQL queries, each writing to one sink.
    pub queries: Vec<QueryConfig>,
}

fn default_commit_interval() -> ConfigDuration {
    ConfigDuration::from_millis(100)
}

fn default_commit_max_records() -> usize {
    100_000
}

/// Connection to the Kafka cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list. Overridden by EDDY_KAFKA_BOOTSTRAP_SERVERS.
    pub bootstrap_servers: String,
    /// Raw librdkafka settings for every client eddy creates. They may not set what eddy
    /// sets itself (group.id, isolation.level, transactional.id, enable.auto.commit, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Transaction timeout; must not exceed the broker's transaction.max.timeout.ms. Default 10s
    /// (as Kafka Streams), so a crashed instance's open transaction blocks readers briefly.
    #[serde(default = "default_transaction_timeout")]
    pub transaction_timeout: ConfigDuration,
    /// Join the group as a static member (group.instance.id = app + instance id): a restarted
    /// instance gets its partitions back without a rebalance, but a stopped one keeps them
    /// until session.timeout.ms passes. Good for StatefulSets with rolling restarts.
    /// Default false.
    #[serde(default)]
    pub static_membership: bool,
    /// TLS and SASL (`protocol`, `sasl`, `tls`); secrets come from files or environment
    /// variables. Default: plaintext, no authentication.
    #[serde(default)]
    pub security: Option<SecurityConfig>,
    /// How long eddy keeps recovering in-process from faults that a new run of the engine
    /// can fix (brokers unreachable, a transaction the coordinator timed out, a failed
    /// consumer) before it exits 1. Default 5m.
    #[serde(default = "default_recovery_limit")]
    pub recovery_limit: ConfigDuration,
}

fn default_recovery_limit() -> ConfigDuration {
    ConfigDuration::from_millis(300_000)
}

fn default_transaction_timeout() -> ConfigDuration {
    ConfigDuration::from_millis(10_000)
}

/// Local state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Directory of the sled database. Overridden by EDDY_STATE_DIR. Default `./state`.
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
    /// sled's page cache size in bytes. Default 32 MiB.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("./state")
}

fn default_cache_bytes() -> u64 {
    32 << 20
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { dir: default_state_dir(), cache_bytes: default_cache_bytes() }
    }
}

/// The HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `address:port` to listen on; port 0 picks a free port. Overridden by EDDY_HTTP_LISTEN.
    /// Default `127.0.0.1:9464`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `host:port` other instances reach this one's HTTP server at, for queries of partitions
    /// they do not own (e.g. the pod's IP, `$(POD_IP):9464`). Default: the bound address (the
    /// host name when bound to 0.0.0.0). Overridden by EDDY_HTTP_ADVERTISE.
    #[serde(default)]
    pub advertise: Option<String>,
    /// `/query`: the most state rows (result-table groups) one query may read. Default
    /// 1,000,000.
    #[serde(default = "default_query_max_rows")]
    pub query_max_rows: u64,
    /// `/query`: the longest one query may run. Default 5s.
    #[serde(default = "default_query_timeout")]
    pub query_timeout: ConfigDuration,
}

fn default_listen() -> String {
    "127.0.0.1:9464".to_string()
}

fn default_query_max_rows() -> u64 {
    1_000_000
}

fn default_query_timeout() -> ConfigDuration {
    ConfigDuration::from_millis(5_000)
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            advertise: None,
            query_max_rows: default_query_max_rows(),
            query_timeout: default_query_timeout(),
        }
    }
}

/// An input topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The Kafka topic.
    pub topic: String,
    /// `stream` (default): every record is an event. `table`: a compacted topic holding the
    /// latest value per key (a null value deletes it), joined to streams by `primary_key`.
    #[serde(default)]
    pub kind: SourceKind,
    /// For a table: the columns that identify a row (its records are keyed by them).
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
    /// Record format: `json` (default), `csv` or `avro`.
    #[serde(default)]
    pub format: Format,
    /// Options of `format: csv`.
    #[serde(default)]
    pub csv: Option<CsvOptions>,
    /// Options of `format: avro`.
    #[serde(default)]
    pub avro: Option<AvroOptions>,
    /// Columns in order: `{ name: type }`, types `string`, `long`, `double`, `boolean`,
    /// `timestamp` (append `?` for nullable, e.g. `string?`).
    pub schema: SchemaConfig,
    /// The event-time column, or `kafka_timestamp` for the record timestamp.
    #[serde(default)]
    pub event_time: Option<EventTimeConfig>,
    /// How far event time may go backwards before a record is late. Required by stateful
    /// queries (Spark's `withWatermark`).
    #[serde(default)]
    pub watermark_delay: Option<ConfigDuration>,
    /// A partition without records for this long stops holding the watermark back.
    #[serde(default)]
    pub idle_timeout: Option<ConfigDuration>,
    /// The columns producers key this topic by, if known: a GROUP BY that includes them
    /// needs no repartitioning.
    #[serde(default)]
    pub partition_key: Option<Vec<String>>,
    /// Where records that cannot be decoded go, unchanged, with the reason in headers.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Where records that arrive after their windows closed go, unchanged, with the reason.
    #[serde(default)]
    pub late_topic: Option<String>,
    /// What to do with a record that cannot be decoded when no dead_letter_topic is set:
    /// `skip` (count it and go on; default) or `fail` (stop the pipeline).
    #[serde(default)]
    pub on_error: ErrorPolicy,
    /// Where a new consumer group starts: `earliest` (default) or `latest`.
    #[serde(default)]
    pub start_from: StartFrom,
}

/// An output topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The Kafka topic.
    pub topic: String,
    /// Record format: `json` (default), `csv` or `avro`.
    #[serde(default)]
    pub format: Format,
    /// Options of `format: csv`.
    #[serde(default)]
    pub csv: Option<CsvOptions>,
    /// Options of `format: avro`.
    #[serde(default)]
    pub avro: Option<AvroOptions>,
    /// Spark's output modes: `append` (default), `update` or `complete`.
    #[serde(default)]
    pub output_mode: OutputMode,
    /// Output columns that form the Kafka key (a JSON object). Default: the query's group
    /// columns that appear in its select list.
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Complete mode over windows: how long after the watermark passes a window's end it is
    /// still kept (and updated by late records). Older windows are dropped from the result
    /// table, with a tombstone for their key. Default: every window is kept (Spark's rule).
    #[serde(default)]
    pub retention: Option<ConfigDuration>,
}

/// One streaming SQL query.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Names metrics, state trees and internal topics; letters, digits, `_` and `-`.
    pub name: String,
    /// The sink it writes to.
    pub sink: String,
    /// One SELECT statement.
    pub sql: String,
    /// Partitions of this query's repartition topic, when it needs one. Default: the source's.
    #[serde(default)]
    pub repartition_partitions: Option<u32>,
}

/// The environment variables a deployment uses to change a pipeline without editing it.
pub const ENV_BOOTSTRAP_SERVERS: &str = "EDDY_KAFKA_BOOTSTRAP_SERVERS";
pub const ENV_STATE_DIR: &str = "EDDY_STATE_DIR";
pub const ENV_HTTP_LISTEN: &str = "EDDY_HTTP_LISTEN";
pub const ENV_HTTP_ADVERTISE: &str = "EDDY_HTTP_ADVERTISE";

/// A file read and parsed, but not yet checked against SQL.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub text: String,
    pub config: PipelineConfig,
}

impl LoadedConfig {
    /// A diagnostic at `path` inside the file, or at its start when the path is not there.
    pub fn diagnostic_at(&self, path: &[PathSeg], message: impl Into<String>) -> Diagnostic {
        let position = locate(&self.text, path);
        Diagnostic::new(&self.path, &self.text, position, message.into())
    }
}

/// Reads and parses a pipeline file, applies environment overrides and checks every field
/// that can be checked without planning SQL.
pub fn load(path: &Path) -> Result<LoadedConfig, Box<Diagnostic>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Box::new(Diagnostic::plain(path, format!("cannot read the pipeline file: {e}"))))?;
    parse(path, &text, |name| std::env::var(name).ok())
}

/// Parses pipeline text; `env` supplies environment overrides (a function, so tests can pass
/// their own).
pub fn parse(path: &Path, text: &str, env: impl Fn(&str) -> Option<String>) -> Result<LoadedConfig, Box<Diagnostic>> {
    let mut config: PipelineConfig = serde_yaml::from_str(text).map_err(|e| {
        let position = e.location().map(|l| (l.line(), l.column()));
        Box::new(Diagnostic::new(path, text, position, clean_serde_message(&e.to_string())))
    })?;
    if let Some(servers) = env(ENV_BOOTSTRAP_SERVERS) {
        config.kafka.bootstrap_servers = servers;
    }
    if let Some(dir) = env(ENV_STATE_DIR) {
        config.state.dir = PathBuf::from(dir);
    }
    if let Some(listen) = env(ENV_HTTP_LISTEN) {
        config.http.listen = listen;
    }
    if let Some(advertise) = env(ENV_HTTP_ADVERTISE).filter(|a| !a.is_empty()) {
        config.http.advertise = Some(advertise);
    }
    let mut loaded = LoadedConfig { path: path.to_path_buf(), text: text.to_string(), config };
    check(&loaded).map_err(Box::new)?;
    if let Some(sec) = &mut loaded.config.kafka.security {
        if let Err((at, message)) = security::resolve(sec, &env) {
            return Err(Box::new(loaded.diagnostic_at(&at, message)));
        }
    }
    Ok(loaded)
}

/// serde_yaml appends " at line L column C" to messages; the diagnostic shows that already.
fn clean_serde_message(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// librdkafka settings eddy owns; a `kafka.properties` entry may not set them.
const OWNED_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "use kafka.bootstrap_servers"),
    ("group.id", "the group id is the pipeline's `app`"),
    ("transactional.id", "eddy derives it from `app` and --instance-id"),
    ("isolation.level", "eddy reads read_committed under exactly_once"),
    ("enable.auto.commit", "eddy commits offsets itself"),
    ("enable.auto.offset.store", "eddy commits offsets itself"),
    ("enable.idempotence", "eddy's producers are always idempotent"),
    ("auto.offset.reset", "use the source's `start_from`"),
    ("transaction.timeout.ms", "use kafka.transaction_timeout"),
    ("enable.partition.eof", "eddy sets it per client"),
    ("group.instance.id", "set kafka.static_membership: true"),
];

fn check(loaded: &LoadedConfig) -> Result<(), Diagnostic> {
    let c = &loaded.config;
    let at = |path: &[PathSeg], msg: String| loaded.diagnostic_at(path, msg);
    if !valid_name(&c.app) {
        return Err(at(&[PathSeg::key("app")], format!("app name \"{}\" may use only letters, digits, '.', '_' and '-'", c.app)));
    }
    if c.kafka.bootstrap_servers.trim().is_empty() {
        return Err(at(
            &[PathSeg::key("kafka"), PathSeg::key("bootstrap_servers")],
            "bootstrap_servers is empty; write e.g. \"localhost:9092\"".into(),
        ));
    }
    for key in c.kafka.properties.keys() {
        if let Some((_, why)) = OWNED_PROPERTIES.iter().chain(security::OWNED_PROPERTIES).find(|(k, _)| k == key) {
            return Err(at(
                &[PathSeg::key("kafka"), PathSeg::key("properties"), PathSeg::key(key)],
                format!("kafka.properties may not set \"{key}\": {why}"),
            ));
        }
    }
    if let Some(sec) = &c.kafka.security {
        security::check(sec).map_err(|(path, message)| at(&path, message))?;
    }
    if c.commit_interval.micros() <= 0 {
        return Err(at(&[PathSeg::key("commit_interval")], "commit_interval must be greater than zero, e.g. \"100ms\"".into()));
    }
    let tt = c.kafka.transaction_timeout.micros();
    if !(1_000_000..=900_000_000).contains(&tt) {
        return Err(at(
            &[PathSeg::key("kafka"), PathSeg::key("transaction_timeout")],
            "transaction_timeout must be between 1s and 15m (the broker's default transaction.max.timeout.ms)".into(),
        ));
    }
    if c.commit_interval.micros() * 2 > tt {
        return Err(at(
            &[PathSeg::key("commit_interval")],
            format!(
                "commit_interval ({}) must be under half of kafka.transaction_timeout ({})",
                c.commit_interval, c.kafka.transaction_timeout
            ),
        ));
    }
    if c.commit_max_records == 0 {
        return Err(at(&[PathSeg::key("commit_max_records")], "commit_max_records must be at least 1".into()));
    }
    if c.sources.is_empty() {
        return Err(at(&[PathSeg::key("sources")], "a pipeline needs at least one source".into()));
    }
    if c.queries.is_empty() {
        return Err(at(&[PathSeg::key("queries")], "a pipeline needs at least one query".into()));
    }
    for (name, source) in &c.sources {
        let path = [PathSeg::key("sources"), PathSeg::key(name)];
        let field = |f: &str| [PathSeg::key("sources"), PathSeg::key(name), PathSeg::key(f)];
        if !valid_name(name) {
            return Err(at(&path, format!("source name \"{name}\" may use only letters, digits, '.', '_' and '-'")));
        }
        if let Some(EventTimeConfig::Column(col)) = &source.event_time {
            match source.schema.schema.index_of(col) {
                None => {
                    return Err(at(
                        &field("event_time"),
                        format!("event_time \"{col}\" is not a column of source {name}; columns: {}", source.schema.column_list()),
                    ))
                }
                Some(i) if !crate::types::is_timestamp(&source.schema.schema.fields[i].data_type) => {
                    return Err(at(
                        &field("event_time"),
                        format!(
                            "event_time column \"{col}\" has type {}; declare it as `timestamp` in the schema",
                            crate::types::type_name(&source.schema.schema.fields[i].data_type)
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        if source.watermark_delay.is_some() && source.event_time.is_none() {
            return Err(at(
                &field("watermark_delay"),
                "watermark_delay needs an event_time (a timestamp column, or kafka_timestamp)".into(),
            ));
        }
        if let Some(keys) = &source.partition_key {
            for k in keys {
                if source.schema.schema.index_of(k).is_none() {
                    return Err(at(&field("partition_key"), format!("partition_key column \"{k}\" is not in the schema of source {name}")));
                }
            }
        }
        match (source.kind, &source.primary_key) {
            (SourceKind::Table, None) => {
                return Err(at(&path, format!("table source {name} needs a primary_key: the columns its records are keyed by")));
            }
            (SourceKind::Table, Some(keys)) => {
                for k in keys {
                    if source.schema.schema.index_of(k).is_none() {
                        return Err(at(&field("primary_key"), format!("primary_key column \"{k}\" is not in the schema of table {name}")));
                    }
                }
            }
            (SourceKind::Stream, Some(_)) => {
                return Err(at(
                    &field("primary_key"),
                    "primary_key is for table sources (kind: table); a stream's keying is its partition_key".into(),
                ));
            }
            (SourceKind::Stream, None) => {}
        }
        format::check(source.format, source.csv.as_ref(), source.avro.as_ref(), Some(&source.schema.schema))
            .map_err(|(f, msg)| at(&field(f), msg))?;
        if source.dead_letter_topic.as_deref() == Some(source.topic.as_str()) {
            return Err(at(&field("dead_letter_topic"), "dead_letter_topic may not be the source topic itself".into()));
        }
        if source.late_topic.as_deref() == Some(source.topic.as_str()) {
            return Err(at(&field("late_topic"), "late_topic may not be the source topic itself".into()));
        }
    }
    for (name, sink) in &c.sinks {
        format::check(sink.format, sink.csv.as_ref(), sink.avro.as_ref(), None)
            .map_err(|(f, msg)| at(&[PathSeg::key("sinks"), PathSeg::key(name), PathSeg::key(f)], msg))?;
        if c.sources.values().any(|s| s.topic == sink.topic) {
            return Err(at(
                &[PathSeg::key("sinks"), PathSeg::key(name), PathSeg::key("topic")],
                format!("sink {name} writes to topic \"{}\", which a source of this pipeline reads: that would loop", sink.topic),
            ));
        }
        if let Some(r) = sink.retention {
            let field = [PathSeg::key("sinks"), PathSeg::key(name), PathSeg::key("retention")];
            if sink.output_mode != OutputMode::Complete {
                return Err(at(
                    &field,
                    format!(
                        "retention bounds a complete-mode result table; sink {name} uses output_mode {}, whose windows are dropped once final anyway. Remove retention or set output_mode: complete",
                        sink.output_mode
                    ),
                ));
            }
            if r.micros() < 0 {
                return Err(at(&field, "retention may not be negative".into()));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, q) in c.queries.iter().enumerate() {
        let field = |f: &str| [PathSeg::key("queries"), PathSeg::Index(i), PathSeg::key(f)];
        if !valid_name(&q.name) {
            return Err(at(&field("name"), format!("query name \"{}\" may use only letters, digits, '.', '_' and '-'", q.name)));
        }
        if !seen.insert(q.name.clone()) {
            return Err(at(&field("name"), format!("two queries are named \"{}\"; names must be unique", q.name)));
        }
        if !c.sinks.contains_key(&q.sink) {
            let known: Vec<&str> = c.sinks.keys().map(String::as_str).collect();
            return Err(at(
                &field("sink"),
                format!("query {} writes to sink \"{}\", which is not defined; sinks: {}", q.name, q.sink, known.join(", ")),
            ));
        }
        if q.repartition_partitions == Some(0) {
            return Err(at(&field("repartition_partitions"), "repartition_partitions must be at least 1".into()));
        }
    }
    Ok(())
}

/// Names that are safe in topic names, metric labels and file names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests;
