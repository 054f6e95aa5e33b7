//! Streaming SQL: sqlparser's AST → a typed physical plan per query (operators, keys, state,
//! topics), and every "a stream cannot do that" error, with the reason and what to write.
//! Depends on `expr`, `types`, `time` and `config` types; never on Kafka or state.

mod aggregate;
mod compile;
mod error;
pub mod explain;
mod join;

mod naming;
mod plan;
mod planner;
mod scope;

pub use error::SqlError;
pub use plan::*;
pub use planner::{plan_query, PlanContext, SinkInfo, SourceInfo};
pub use scope::METADATA_COLUMNS;

#[cfg(test)]
mod tests;
