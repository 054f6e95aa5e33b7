//! State: the sled store (one tree per query, operator and partition) and the binary codec of
//! state values. Kafka's changelog is the source of truth; sled is a consistent local cache
//! that holds the changelog offset it reflects (DESIGN sections 4 and 5). Depends on sled only.

pub mod codec;
mod store;
mod writer;

pub use store::{has_room, StateError, StateStore, StateTree, META_PREFIX};
pub use writer::{Changes, Reads, StateWriter, TreeChanges};
