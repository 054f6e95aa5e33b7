//! Where generated records go: stdout (one per line) or a Kafka topic through an idempotent
//! producer, creating the topic when it is missing.

use std::io::{BufWriter, Write};
use std::time::Duration;

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::TargetArgs;

/// A destination, parsed from arguments.
#[derive(Debug, Clone)]
pub enum Destination {
    Stdout,
    Kafka { bootstrap_servers: String, topic: String, partitions: i32 },
}

impl Destination {
    pub fn from_args(a: &TargetArgs) -> Destination {
        match &a.topic {
            None => Destination::Stdout,
            Some(t) => Destination::Kafka { bootstrap_servers: a.bootstrap_servers.clone(), topic: t.clone(), partitions: a.partitions },
        }
    }
}

/// An open destination.
pub enum Output {
    Stdout(BufWriter<std::io::Stdout>),
    Kafka { producer: BaseProducer, topic: String, sent: u64 },
}

impl Output {
    pub fn open(d: &Destination) -> anyhow::Result<Output> {
        match d {
            Destination::Stdout => Ok(Output::Stdout(BufWriter::with_capacity(1 << 16, std::io::stdout()))),
            Destination::Kafka { bootstrap_servers, topic, partitions } => {
                crate::kafka::admin::ensure_topic(bootstrap_servers, topic, *partitions)?;
                let producer: BaseProducer = ClientConfig::new()
                    .set("bootstrap.servers", bootstrap_servers)
                    .set("enable.idempotence", "true")
                    .set("linger.ms", "20")
                    .set("batch.num.messages", "10000")
                    .set("queue.buffering.max.messages", "1000000")
                    .set("partitioner", "murmur2_random")
                    .create()
                    .context("cannot create a Kafka producer")?;
                Ok(Output::Kafka { producer, topic: topic.clone(), sent: 0 })
            }
        }
    }

    pub fn is_kafka(&self) -> bool {
        matches!(self, Output::Kafka { .. })
    }

    /// Writes one record; `timestamp` is milliseconds since the epoch.
    pub fn send(&mut self, key: Option<&[u8]>, value: &[u8], timestamp: Option<i64>) -> anyhow::Result<()> {
        match self {
            Output::Stdout(w) => {
                w.write_all(value)?;
                w.write_all(b"\n")?;
                Ok(())
            }
            Output::Kafka { producer, topic, sent } => {
                let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
                if let Some(k) = key {
                    record = record.key(k);
                }
                if let Some(t) = timestamp {
                    record = record.timestamp(t);
                }
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            record = back;
                            producer.poll(Duration::from_millis(5));
                        }
                        Err((e, _)) => return Err(e).context(format!("cannot produce to {topic}")),
                    }
                }
                *sent += 1;
                if *sent % 10_000 == 0 {
                    producer.poll(Duration::ZERO);
                }
                Ok(())
            }
        }
    }

    /// Flushes everything written so far.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(w) => Ok(w.flush()?),
            Output::Kafka { producer, topic, .. } => {
                producer.flush(Duration::from_secs(60)).with_context(|| format!("cannot deliver records to {topic}"))
            }
        }
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        self.flush()
    }
}
