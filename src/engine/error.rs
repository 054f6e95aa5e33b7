//! Engine failures. Each ends one run of the engine; [`EngineError::cause`] says whether the
//! supervisor (recovery.rs) starts a new run in-process or the process exits 1. Recoverable
//! Kafka errors inside a run never reach this type: they are retried or turned into an
//! abort-and-rewind by the commit cycle.

use std::time::Duration;

use rdkafka::error::KafkaError;

use crate::kafka::admin::AdminError;
use crate::kafka::{classify, ErrorClass};
use crate::state::codec::CodecError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{context}: {source}")]
    Kafka { context: String, source: KafkaError },
    /// A second process runs with this instance's identity: it fenced this one.
    #[error("another instance is running with {identity} and took over ({source}); each instance needs its own --instance-id")]
    DuplicateInstance { identity: String, source: KafkaError },
    /// The coordinator aborted a transaction that stayed open past the transaction timeout
    /// (a broker restart, a frozen process) and bumped the producer epoch (KIP-588).
    #[error("the transaction of {transactional_id} was open for {age:?}, longer than the transaction timeout, and the coordinator aborted it ({source})")]
    TransactionTimedOut { transactional_id: String, age: Duration, source: KafkaError },
    /// The group consumer is unusable (for example after its group generation changed
    /// while this instance was cut off).
    #[error("the consumer failed: {source}")]
    ConsumerFatal { source: KafkaError },
    #[error("record {topic}/{partition}@{offset} cannot be decoded ({message}) and source {source_name} has on_error: fail")]
    DecodeFailure { source_name: String, topic: String, partition: i32, offset: i64, message: String },
    #[error("cannot restore state tree {tree}: {source}")]
    Restore { tree: String, source: CodecError },
    #[error("restoring {topic}[{partition}] stalled: no progress for {seconds}s (an open transaction of a crashed instance blocks it until it times out)")]
    RestoreStalled { topic: String, partition: i32, seconds: u64 },
    #[error("{0}")]
    Setup(String),
}

/// Why a run of the engine ended, when a new run in the same process can continue it; the
/// `cause` label of `eddy_recoveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The coordinator aborted an open transaction that outlived its timeout.
    TransactionTimeout,
    /// The producer hit an error librdkafka calls fatal that is not a fence (an idempotence
    /// sequence gap, for one): a new producer starts clean.
    ProducerFailed,
    /// The group consumer failed.
    ConsumerFailed,
    /// The brokers could not be reached or did not answer in time.
    BrokerUnavailable,
    /// Reading a changelog made no progress (an open transaction of a crashed instance).
    RestoreStalled,
    /// The disk under the state directory is full: wait for room, then reopen the store.
    StorageFull,
    /// sled failed reading or writing (damage under a running store): reopen the store,
    /// moving it aside if it no longer opens, and restore from the changelogs.
    StateFailed,
}

impl Cause {
    pub fn label(self) -> &'static str {
        match self {
            Cause::TransactionTimeout => "transaction_timeout",
            Cause::ProducerFailed => "producer_failed",
            Cause::ConsumerFailed => "consumer_failed",
            Cause::BrokerUnavailable => "broker_unavailable",
            Cause::RestoreStalled => "restore_stalled",
            Cause::StorageFull => "storage_full",
            Cause::StateFailed => "state_failed",
        }
    }
}

impl EngineError {
    pub fn kafka(context: impl Into<String>, source: KafkaError) -> EngineError {
        EngineError::Kafka { context: context.into(), source }
    }

    /// The cause to recover from in-process, or `None` when the process must exit: a second
    /// instance, a bad pipeline or input under `on_error: fail`, a refused authorization, a
    /// missing topic, a state directory another process holds.
    pub fn cause(&self) -> Option<Cause> {
        match self {
            EngineError::State(e) if e.is_storage_full() => Some(Cause::StorageFull),
            EngineError::State(StateError::InUse { .. } | StateError::MoveAside { .. }) => None,
            EngineError::State(_) => Some(Cause::StateFailed),
            EngineError::TransactionTimedOut { .. } => Some(Cause::TransactionTimeout),
            EngineError::ConsumerFatal { .. } => Some(Cause::ConsumerFailed),
            EngineError::RestoreStalled { .. } => Some(Cause::RestoreStalled),
            EngineError::Kafka { source, .. } => kafka_cause(source),
            EngineError::Admin(AdminError::Metadata { source, .. } | AdminError::Create { source, .. }) => {
                kafka_cause(source).map(|_| Cause::BrokerUnavailable)
            }
            _ => None,
        }
    }
}

fn kafka_cause(source: &KafkaError) -> Option<Cause> {
    use rdkafka::error::RDKafkaErrorCode as C;
    let code = match source {
        KafkaError::Transaction(rd) => Some(rd.code()),
        other => other.rdkafka_error_code(),
    };
    match code {
        // Configuration and permission problems do not go away by trying again.
        Some(
            C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::InvalidTransactionTimeout
            | C::UnsupportedForMessageFormat
            | C::InvalidConfig,
        ) => None,
        _ => Some(match classify(source) {
            ErrorClass::Fatal => Cause::ProducerFailed,
            ErrorClass::Retry | ErrorClass::Abort => Cause::BrokerUnavailable,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(e: StateError) -> Option<Cause> {
        EngineError::State(e).cause()
    }

    #[test]
    fn a_full_disk_waits_damage_reopens_and_a_held_directory_exits() {
        let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
        let io = StateError::Io { tree: "q/aggregate/0".into(), source: sled::Error::Io(full) };
        assert_eq!(state(io), Some(Cause::StorageFull));
        let quota = StateError::WriterFailed { tree: "t".into(), reason: "quota".into(), full: true };
        assert_eq!(state(quota), Some(Cause::StorageFull));
        let broken = StateError::WriterFailed { tree: "t".into(), reason: "Read corrupted data".into(), full: false };
        assert_eq!(state(broken), Some(Cause::StateFailed));
        assert_eq!(state(StateError::Corrupt { tree: "t".into() }), Some(Cause::StateFailed));
        assert_eq!(state(StateError::InUse { dir: "/s".into() }), None, "another process holds it: a second instance");
    }
}
