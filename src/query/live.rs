//! What a running engine publishes for queries of its result tables: per query, its plan and
//! the state trees of the partitions this instance owns, with the number of the state
//! writer's job after which each tree is whole (its restore's last write). The engine
//! publishes at every assignment change and withdraws everything when a run ends (a new run
//! has a new store and writer). Depends on `sql` plans and `state`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::sql::QueryPlan;
use crate::state::{Reads, StateTree};

/// One owned partition of a query.
#[derive(Clone)]
pub struct Owned {
    pub tree: StateTree,
    /// The tree is whole once the writer has applied this many jobs.
    pub ready_at: u64,
}

/// One query as published.
#[derive(Clone)]
pub struct Published {
    pub plan: Arc<QueryPlan>,
    /// Partitions of the query's operator, owned here or not.
    pub partitions: usize,
    /// The group-assigned topic whose partition p the query's task p reads: who is assigned
    /// it owns the task.
    pub input_topic: String,
    pub owned: BTreeMap<i32, Owned>,
}

#[derive(Default)]
struct Inner {
    /// The address other instances reach this one's HTTP server at.
    advertised: Option<String>,
    reads: Option<Reads>,
    queries: BTreeMap<String, Published>,
}

/// The published result tables, shared by the engine thread and the HTTP server.
#[derive(Default)]
pub struct LiveTables {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for LiveTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTables").finish_non_exhaustive()
    }
}

impl LiveTables {
    pub fn new() -> Arc<LiveTables> {
        Arc::new(LiveTables::default())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// A run starts with its state writer: nothing is published yet.
    pub fn attach(&self, reads: Reads) {
        self.with(|i| {
            i.reads = Some(reads);
            i.queries.clear();
        });
    }

    /// A run ended: its trees are no longer what the next run will commit to.
    pub fn detach(&self) {
        self.with(|i| {
            i.reads = None;
            i.queries.clear();
        });
    }

    /// Publishes `plan`'s owned partitions. A partition published before keeps its
    /// `ready_at`; a new one is whole after `ready_at` jobs.
    pub fn publish(&self, plan: Arc<QueryPlan>, partitions: usize, input_topic: &str, owned: Vec<(i32, StateTree)>, ready_at: u64) {
        self.with(|i| {
            let before = i.queries.remove(&plan.name);
            let owned = owned
                .into_iter()
                .map(|(p, tree)| {
                    let ready_at = before.as_ref().and_then(|b| b.owned.get(&p)).map_or(ready_at, |o| o.ready_at);
                    (p, Owned { tree, ready_at })
                })
                .collect();
            i.queries.insert(plan.name.clone(), Published { plan, partitions, input_topic: input_topic.to_string(), owned });
        });
    }

    /// The named query as published, and the handle to read its trees with.
    pub fn get(&self, name: &str) -> Option<(Published, Reads)> {
        self.with(|i| Some((i.queries.get(name)?.clone(), i.reads.clone()?)))
    }

    /// Says where this instance's HTTP server is reached (before the engine starts: the
    /// group learns it from the consumer's client id).
    pub fn advertise(&self, address: String) {
        self.with(|i| i.advertised = Some(address));
    }

    pub fn advertised(&self) -> Option<String> {
        self.with(|i| i.advertised.clone())
    }

    /// The queries published, by name.
    pub fn names(&self) -> Vec<String> {
        self.with(|i| i.queries.keys().cloned().collect())
    }
}
