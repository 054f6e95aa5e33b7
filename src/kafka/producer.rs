//! The process's one producer (transactional under exactly-once, idempotent always), with a
//! delivery log: the first delivery error of a cycle, and for changelog records the offset
//! each changelog partition reached, which sled stores after the commit.
//!
//! It is librdkafka's threaded producer: a background thread serves delivery reports, which
//! `abort_transaction` waits for (a producer polled only by its caller deadlocks there).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, TopicPartitionList};

/// What deliveries reported since the log was last taken.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    /// The first failed delivery.
    pub error: Option<KafkaError>,
    /// Per changelog slot: the offset after the last record delivered.
    pub changelog_ends: HashMap<usize, i64>,
    pub delivered: u64,
}

/// Producer callbacks: delivery reports and librdkafka logs.
#[derive(Default)]
pub struct TrackingContext {
    log: Mutex<DeliveryLog>,
}

impl ClientContext for TrackingContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka::consumer::forward_log("producer", level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        crate::kafka::client::forward_error("producer", &error, reason);
    }
}

impl ProducerContext for TrackingContext {
    /// 0 for an ordinary record; a changelog slot (1-based) for a changelog record.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, slot: usize) {
        let Ok(mut log) = self.log.lock() else { return };
        match result {
            Ok(msg) => {
                log.delivered += 1;
                if slot > 0 {
                    let end = msg.offset() + 1;
                    let e = log.changelog_ends.entry(slot).or_insert(end);
                    *e = (*e).max(end);
                }
            }
            Err((e, _)) => {
                if log.error.is_none() {
                    log.error = Some(e.clone());
                }
            }
        }
    }
}

pub use crate::runtime::Outgoing;

/// The producer.
pub struct Producer {
    inner: ThreadedProducer<TrackingContext>,
    pub transactional: bool,
    timeout: Duration,
}

impl Producer {
    pub fn new(cfg: &ClientConfig, transactional: bool, timeout: Duration) -> Result<Producer, KafkaError> {
        let inner = cfg.create_with_context(TrackingContext::default())?;
        Ok(Producer { inner, transactional, timeout })
    }

    /// Queues a record; waits for room when librdkafka's queue is full.
    pub fn send(&self, r: &Outgoing<'_>) -> Result<(), KafkaError> {
        let mut headers = None;
        if !r.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in r.headers {
                h = h.insert(Header { key: k, value: Some(*v) });
            }
            headers = Some(h);
        }
        let mut record: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(r.topic, r.slot);
        if let Some(k) = r.key {
            record = record.key(k);
        }
        if let Some(p) = r.payload {
            record = record.payload(p);
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        if let Some(t) = r.timestamp {
            record = record.timestamp(t);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.inner.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Serves delivery reports now (the background thread also does, continuously).
    pub fn poll(&self) {
        self.inner.poll(Duration::ZERO);
    }

    pub fn init_transactions(&self) -> Result<(), KafkaError> {
        self.inner.init_transactions(self.timeout)
    }

    pub fn begin(&self) -> Result<(), KafkaError> {
        self.inner.begin_transaction()
    }

    pub fn send_offsets(&self, offsets: &TopicPartitionList, group: &ConsumerGroupMetadata) -> Result<(), KafkaError> {
        self.inner.send_offsets_to_transaction(offsets, group, self.timeout)
    }

    /// Commits the open transaction. Flushed here first (see [`Producer::flush`]), so that
    /// rdkafka's flush inside `commit_transaction` finds nothing outstanding and returns at
    /// once.
    pub fn commit(&self) -> Result<(), KafkaError> {
        self.flush()?;
        self.inner.commit_transaction(self.timeout)
    }

    /// Aborts the open transaction, retrying while librdkafka reports a timeout (it asks
    /// to be called again), then waits until every purged record's report is in.
    pub fn abort(&self) -> Result<(), KafkaError> {
        let mut attempt = 0;
        loop {
            match self.inner.abort_transaction(self.timeout) {
                Ok(()) => break,
                Err(e) if attempt < 5 && crate::kafka::classify(&e) == crate::kafka::ErrorClass::Retry => attempt += 1,
                Err(KafkaError::Transaction(rd)) if attempt < 5 && rd.code() == RDKafkaErrorCode::OperationTimedOut => attempt += 1,
                Err(e) => return Err(e),
            }
        }
        let deadline = std::time::Instant::now() + self.timeout;
        while self.inner.in_flight_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Waits until every record sent is delivered (or failed), for at most the timeout.
    ///
    /// librdkafka's own `rd_kafka_flush` waits for the count of outstanding records to reach
    /// zero while the background thread serves their delivery reports. rdkafka's `flush`
    /// instead polls the event queue that thread already drains, in steps of 100 ms, and so
    /// takes 100 ms whenever a record is still outstanding when it starts: every commit of
    /// a busy cycle paid that (its `commit_transaction` flushes first the same way).
    pub fn flush(&self) -> Result<(), KafkaError> {
        let ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: the handle is valid for the life of `inner`; rd_kafka_flush is thread-safe.
        let code = unsafe { rdkafka::bindings::rd_kafka_flush(self.inner.client().native_ptr(), ms) };
        match RDKafkaErrorCode::from(code) {
            RDKafkaErrorCode::NoError => Ok(()),
            e => Err(KafkaError::Flush(e)),
        }
    }

    /// Takes what deliveries reported since the last call.
    pub fn take_log(&self) -> DeliveryLog {
        self.poll();
        self.inner.context().log.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
    }

    /// The first delivery error since the log was last taken, leaving the rest of the log.
    pub fn take_log_error(&self) -> Option<KafkaError> {
        self.poll();
        self.inner.context().log.lock().ok().and_then(|mut l| l.error.take())
    }

    /// The error that made the producer unusable, when librdkafka reports a generic fatal
    /// error (RD_KAFKA_RESP_ERR__FATAL) in its place.
    pub fn fatal_error(&self) -> Option<RDKafkaErrorCode> {
        self.inner.client().fatal_error().map(|(code, _)| code)
    }

    /// Messages queued or in flight.
    pub fn in_flight(&self) -> i32 {
        self.inner.in_flight_count()
    }
}
