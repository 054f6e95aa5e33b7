//! Streaming SQL: the text is checked and rewritten on its syntax tree (names, Spark's naming,
//! what a stream cannot do), planned by DataFusion into a logical plan (types, coercion, the
//! function library), and read as a stream into a physical plan per query (operators, keys,
//! state, topics). Only this module talks to DataFusion's planner. Depends on `expr`, `types`,
//! `time` and `config` types; never on Kafka or state.

mod aggregate;
mod batch;
mod context;
mod dialect;
mod error;
pub mod explain;
mod join;
mod logical;
mod naming;
mod parse;
mod plan;
mod planner;
mod scope;
mod stages;
mod topn;

pub use aggregate::aggregate_call;
pub use batch::BatchQuery;
pub use error::SqlError;
pub use plan::*;
pub use planner::{plan_query, PlanContext, SinkInfo, SourceInfo};
pub use scope::{edit_distance, metadata_columns, METADATA_COLUMNS};

#[cfg(test)]
mod semantics_tests;
#[cfg(test)]
mod tests;
