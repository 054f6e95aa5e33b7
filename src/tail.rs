//! `eddy tail TOPIC`: print a topic's records as JSON lines, read_committed, so aborted
//! transactions never show. Also the helper tests and the demo use to read a whole topic.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

#[derive(Args)]
pub struct TailArgs {
    /// The topic to read.
    pub topic: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "EDDY_KAFKA_BOOTSTRAP_SERVERS", default_value = "localhost:9092")]
    pub bootstrap_servers: String,
    /// Start at the beginning of each partition instead of its end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub max: Option<u64>,
    /// Stop when no record arrived for this long, e.g. "5s".
    #[arg(long)]
    pub timeout: Option<String>,
    /// Print each record with its partition, offset, key, timestamp and headers.
    #[arg(long)]
    pub envelope: bool,
    /// Read uncommitted records too (shows aborted transactions).
    #[arg(long)]
    pub read_uncommitted: bool,
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct TailRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl TailRecord {
    pub fn value_str(&self) -> &str {
        self.value.as_deref().and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    fn envelope(&self) -> serde_json::Value {
        let text = |b: &Option<Vec<u8>>| b.as_deref().map(|v| String::from_utf8_lossy(v).into_owned());
        let value = self
            .value
            .as_deref()
            .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
            .or_else(|| text(&self.value).map(serde_json::Value::String));
        let headers: serde_json::Map<String, serde_json::Value> =
            self.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(String::from_utf8_lossy(v).into_owned()))).collect();
        serde_json::json!({
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key": text(&self.key),
            "headers": headers,
            "value": value,
        })
    }
}

fn consumer(bootstrap_servers: &str, read_committed: bool) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", "eddy-tail")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", if read_committed { "read_committed" } else { "read_uncommitted" })
        .create()
        .context("cannot create a Kafka consumer")
}

fn assign_all(c: &BaseConsumer, topic: &str, from_beginning: bool) -> anyhow::Result<usize> {
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).with_context(|| format!("cannot read metadata of {topic}"))?;
    let partitions = md.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()).unwrap_or(0);
    if partitions == 0 {
        anyhow::bail!("topic {topic} does not exist");
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, if from_beginning { Offset::Beginning } else { Offset::End })?;
    }
    c.assign(&tpl)?;
    Ok(partitions)
}

fn to_record(m: &rdkafka::message::BorrowedMessage<'_>) -> TailRecord {
    let headers = m
        .headers()
        .map(|h| h.iter().map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec).unwrap_or_default())).collect())
        .unwrap_or_default();
    TailRecord {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        timestamp: m.timestamp().to_millis(),
        headers,
    }
}

/// Reads every record of `topic` from the beginning to its current end.
pub fn read_to_end(bootstrap_servers: &str, topic: &str, read_committed: bool) -> anyhow::Result<Vec<TailRecord>> {
    let c = consumer(bootstrap_servers, read_committed)?;
    let partitions = assign_all(&c, topic, true)?;
    let mut at_end = std::collections::HashSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end.len() < partitions {
        if Instant::now() > deadline {
            anyhow::bail!("reading {topic} did not reach its end within 120s");
        }
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                out.push(to_record(&m));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => return Err(e).with_context(|| format!("cannot read {topic}")),
            None => {}
        }
    }
    Ok(out)
}

/// Runs `eddy tail`.
pub fn run(a: &TailArgs) -> anyhow::Result<()> {
    let timeout = a.timeout.as_deref().map(crate::time::parse_duration).transpose()?.map(|us| Duration::from_micros(us as u64));
    let c = consumer(&a.bootstrap_servers, !a.read_uncommitted)?;
    assign_all(&c, &a.topic, a.from_beginning)?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut seen = 0u64;
    let mut last = Instant::now();
    loop {
        if a.max.is_some_and(|m| seen >= m) || timeout.is_some_and(|t| last.elapsed() >= t) {
            break;
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let r = to_record(&m);
                if a.envelope {
                    writeln!(out, "{}", r.envelope())?;
                } else {
                    writeln!(out, "{}", String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()))?;
                }
                seen += 1;
                last = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(_))) => out.flush()?,
            Some(Err(e)) => return Err(e).with_context(|| format!("cannot read {}", a.topic)),
            None => out.flush()?,
        }
    }
    out.flush()?;
    Ok(())
}
