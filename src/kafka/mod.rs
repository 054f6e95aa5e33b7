//! Kafka clients: configuration from the pipeline, topic administration, the transactional
//! producer with delivery tracking, the group consumer's rebalance hand-off, the in-process
//! mock broker, and the error classification every caller relies on. The only module besides `engine` that imports rdkafka.

pub mod admin;
pub mod client;
pub mod consumer;
pub mod error;
pub mod mock;
pub mod producer;

pub use error::{classify, ErrorClass};
