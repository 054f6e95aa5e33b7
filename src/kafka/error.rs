//! Every Kafka error is classified once, here: retry it, abort the transaction and rewind,
//! or stop the process (rdkafka's `is_fatal`, `is_retriable`, `txn_requires_abort`).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What to do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: try the same call again after a pause.
    Retry,
    /// The transaction cannot commit: abort it, drop uncommitted state, rewind the inputs.
    Abort,
    /// This producer was fenced by a newer instance, or the client is unusable: exit.
    Fatal,
}

/// Classifies an error from a transactional call or a produce.
pub fn classify(e: &KafkaError) -> ErrorClass {
    if let KafkaError::Transaction(rd) = e {
        if rd.is_fatal() {
            return ErrorClass::Fatal;
        }
        if rd.txn_requires_abort() {
            return ErrorClass::Abort;
        }
        if rd.is_retriable() {
            return ErrorClass::Retry;
        }
        return ErrorClass::Abort;
    }
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::Fatal
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::UnsupportedForMessageFormat
            | RDKafkaErrorCode::InvalidTransactionTimeout,
        ) => ErrorClass::Fatal,
        Some(
            RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::ConcurrentTransactions
            | RDKafkaErrorCode::QueueFull
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown,
        ) => ErrorClass::Retry,
        _ => ErrorClass::Abort,
    }
}
