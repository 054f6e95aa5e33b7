//! Engine failures. Each is fatal for the process (exit 1); recoverable Kafka errors never
//! reach this type, they are retried or turned into an abort-and-rewind inside the engine.

use rdkafka::error::KafkaError;

use crate::kafka::admin::AdminError;
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
    #[error("this instance was fenced: another instance with transactional id {transactional_id} took over ({source}). Each instance needs its own --instance-id")]
    Fenced { transactional_id: String, source: KafkaError },
    #[error("record {topic}/{partition}@{offset} cannot be decoded ({message}) and source {source_name} has on_error: fail")]
    DecodeFailure { source_name: String, topic: String, partition: i32, offset: i64, message: String },
    #[error("cannot restore state tree {tree}: {source}")]
    Restore { tree: String, source: CodecError },
    #[error("restoring {topic}[{partition}] stalled: no progress for {seconds}s (an open transaction of a crashed instance blocks it until it times out)")]
    RestoreStalled { topic: String, partition: i32, seconds: u64 },
    #[error("{0}")]
    Setup(String),
}

impl EngineError {
    pub fn kafka(context: impl Into<String>, source: KafkaError) -> EngineError {
        EngineError::Kafka { context: context.into(), source }
    }
}
