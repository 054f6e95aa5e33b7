//! eddy: exactly-once, event-time stream processing for Kafka. The binary is `src/main.rs`;
//! this library holds everything so that tests and benchmarks can drive it directly.

pub mod app;
pub mod bench;
pub mod config;
pub mod demo;
pub mod engine;
pub mod expr;
pub mod formats;
pub mod gen;
pub mod kafka;
pub mod metrics;
pub mod names;
pub mod operators;
pub mod pipeline;
pub mod query;
pub mod runtime;
pub mod sql;
pub mod state;
pub mod tail;
pub mod time;
pub mod types;
