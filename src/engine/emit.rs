//! Writing records inside the current transaction: sink rows, dead letters and late records
//! (the original bytes plus headers that say why), and changelog entries.

use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::error::KafkaError;

use super::EngineError;
use crate::kafka::producer::{Outgoing, Producer};
use crate::time::format_timestamp;

/// The transaction of the current commit cycle.
#[derive(Debug, Default)]
pub struct Txn {
    /// `begin_transaction` was called and neither commit nor abort since.
    pub open: bool,
    /// Records sent in this cycle.
    pub sent: u64,
    /// Of those, rows written to sinks.
    pub output: u64,
    /// Of those, rows written to repartition topics.
    pub internal: u64,
}

/// A handle for sending within the cycle's transaction.
pub struct Emitter<'a> {
    pub producer: &'a Producer,
    pub txn: &'a mut Txn,
}

/// The original Kafka record a row came from.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
}

/// Header names on dead-letter and late records.
pub const H_ERROR_KIND: &str = "eddy.error.kind";
pub const H_ERROR_MESSAGE: &str = "eddy.error.message";
pub const H_SOURCE_TOPIC: &str = "eddy.source.topic";
pub const H_SOURCE_PARTITION: &str = "eddy.source.partition";
pub const H_SOURCE_OFFSET: &str = "eddy.source.offset";
pub const H_QUERY: &str = "eddy.query";
pub const H_WATERMARK: &str = "eddy.watermark";

impl Emitter<'_> {
    pub fn send(&mut self, r: &Outgoing<'_>) -> Result<(), EngineError> {
        if self.producer.transactional && !self.txn.open {
            self.producer.begin().map_err(|e| classify_send("begin a transaction", e))?;
            self.txn.open = true;
        }
        self.producer.send(r).map_err(|e| classify_send(&format!("send to {}", r.topic), e))?;
        self.txn.sent += 1;
        Ok(())
    }

    /// Sends the original record to `topic` with headers explaining what happened to it.
    pub fn forward(
        &mut self,
        topic: &str,
        rec: &RecordRef<'_>,
        kind: &str,
        message: &str,
        query: &str,
        extra: Option<(&str, &str)>,
    ) -> Result<(), EngineError> {
        let partition = rec.partition.to_string();
        let offset = rec.offset.to_string();
        let mut headers: Vec<(&str, &[u8])> = vec![
            (H_ERROR_KIND, kind.as_bytes()),
            (H_ERROR_MESSAGE, message.as_bytes()),
            (H_SOURCE_TOPIC, rec.topic.as_bytes()),
            (H_SOURCE_PARTITION, partition.as_bytes()),
            (H_SOURCE_OFFSET, offset.as_bytes()),
            (H_QUERY, query.as_bytes()),
        ];
        if let Some((k, v)) = extra {
            headers.push((k, v.as_bytes()));
        }
        self.send(&Outgoing {
            topic,
            partition: None,
            key: rec.key,
            payload: rec.payload,
            headers: &headers,
            timestamp: rec.timestamp,
            slot: 0,
        })
    }
}

/// Errors from send/begin are classified by the commit path; here they only get context.
fn classify_send(what: &str, e: KafkaError) -> EngineError {
    EngineError::kafka(format!("cannot {what}"), e)
}

/// An RFC 3339 rendering of a watermark for headers and logs.
pub fn watermark_text(watermark: i64) -> String {
    if watermark == i64::MIN {
        return "none".to_string();
    }
    let mut s = String::new();
    format_timestamp(watermark, &mut s);
    s
}

/// Milliseconds since the epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
