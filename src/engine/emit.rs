//! The runtime's [`Out`] inside the current transaction: every record tasks hand over goes to
//! the transactional producer (beginning the transaction on the first one), or is held while
//! the previous cycle's commit is in flight, counted by kind.
//! A refused record keeps its Kafka error here for the commit path to classify.

use std::time::{SystemTime, UNIX_EPOCH};

use super::committer::Held;
use super::EngineError;
use crate::kafka::producer::Producer;
use crate::runtime::{Out, OutKind, Outgoing, RuntimeError, SendFailed};

pub use crate::runtime::watermark_text;

/// The transaction of the current commit cycle.
#[derive(Debug, Default)]
pub struct Txn {
    /// While the previous cycle's commit is in flight: this cycle's records, sent once it
    /// is done (a producer has one transaction at a time).
    pub held: Option<Vec<Held>>,
    /// `begin_transaction` was called and neither commit nor abort since.
    pub open: bool,
    /// When it was begun (a fence after the transaction timeout is the coordinator's).
    pub opened_at: Option<std::time::Instant>,
    /// Records sent in this cycle.
    pub sent: u64,
    /// Of those, rows written to sinks.
    pub output: u64,
    /// Of those, rows and markers written to repartition topics.
    pub internal: u64,
    /// The repartition topic partitions written to, each once: their ends moved (for
    /// bounded runs).
    pub internal_partitions: Vec<(Box<str>, i32)>,
}

/// Sends within the cycle's transaction.
pub struct EngineOut<'a> {
    pub producer: &'a Producer,
    pub txn: &'a mut Txn,
    /// The first failure, kept for [`EngineOut::error`].
    pub failure: Option<EngineError>,
}

impl<'a> EngineOut<'a> {
    pub fn new(producer: &'a Producer, txn: &'a mut Txn) -> EngineOut<'a> {
        EngineOut { producer, txn, failure: None }
    }

    fn try_send(&mut self, r: &Outgoing<'_>) -> Result<(), EngineError> {
        match &mut self.txn.held {
            Some(held) => held.push(Held::of(r)),
            None => self.produce(r)?,
        }
        self.count(r);
        Ok(())
    }

    /// Sends `r` in the transaction, beginning it if needed.
    pub fn produce(&mut self, r: &Outgoing<'_>) -> Result<(), EngineError> {
        if self.producer.transactional && !self.txn.open {
            self.producer.begin().map_err(|e| EngineError::kafka("cannot begin a transaction", e))?;
            self.txn.open = true;
            self.txn.opened_at = Some(std::time::Instant::now());
        }
        self.producer.send(r).map_err(|e| EngineError::kafka(format!("cannot send to {}", r.topic), e))
    }

    fn count(&mut self, r: &Outgoing<'_>) {
        self.txn.sent += 1;
        match r.kind {
            OutKind::Sink => self.txn.output += 1,
            OutKind::Internal => {
                self.txn.internal += 1;
                let p = r.partition.unwrap_or(-1);
                let seen = |(t, q): &(Box<str>, i32)| *q == p && &**t == r.topic;
                let parts = &mut self.txn.internal_partitions;
                if !parts.last().is_some_and(seen) && !parts.iter().any(seen) {
                    parts.push((Box::from(r.topic), p));
                }
            }
            OutKind::Forward | OutKind::Changelog => {}
        }
    }

    /// The engine's error for a runtime failure (a refused record's own Kafka error).
    pub fn error(&mut self, e: RuntimeError) -> EngineError {
        match e {
            RuntimeError::Send(_) => self.failure.take().unwrap_or_else(|| EngineError::Setup("a record could not be sent".into())),
            RuntimeError::DecodeFailure { source_name, topic, partition, offset, message } => {
                EngineError::DecodeFailure { source_name, topic, partition, offset, message }
            }
            RuntimeError::Setup(m) => EngineError::Setup(m),
        }
    }
}

impl Out for EngineOut<'_> {
    fn send(&mut self, r: &Outgoing<'_>) -> Result<(), SendFailed> {
        match self.try_send(r) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.failure.get_or_insert(e);
                Err(SendFailed)
            }
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
