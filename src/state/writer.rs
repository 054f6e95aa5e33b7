//! One thread that performs every sled write, in the order they were queued. sled is a cache
//! of the changelog, so it may lag behind Kafka; taking its writes off the engine thread
//! lets processing and restores run at the speed of Kafka and the operators. Reading a tree
//! back (after an abort, or to restore it) first waits until its queued writes are in sled.
//!
//! Readers outside the engine (queries of a result table) see sled only between two jobs:
//! the writer holds [`Reads`]' lock while it applies one, and a commit cycle's changes to
//! every tree are one job, so a reader never sees half a cycle. Jobs are numbered; a reader
//! learns from [`Reads::applied`] whether the job that finished a tree's restore has landed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use super::{StateError, StateTree};

/// Entries for a tree: key and new value (`None` deletes).
pub type Changes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One tree's share of a job: its changes, then the changelog offset they reach.
pub struct TreeChanges {
    pub tree: StateTree,
    pub changes: Changes,
    pub changelog_offset: Option<i64>,
}

enum Job {
    /// Applied as one: readers see all of it or none of it.
    Apply(Vec<TreeChanges>),
    Drained(SyncSender<()>),
}

/// What a reader of sled needs from the writer: the lock it holds while it applies a job,
/// and how many jobs have landed.
#[derive(Clone, Default)]
pub struct Reads {
    lock: Arc<RwLock<()>>,
    applied: Arc<AtomicU64>,
}

impl Reads {
    /// Blocks the writer between two jobs while the guard lives.
    pub fn hold(&self) -> RwLockReadGuard<'_, ()> {
        self.lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Jobs applied (or dropped after a failure) so far.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }
}

/// The writer thread and its queue.
pub struct StateWriter {
    tx: Option<SyncSender<Job>>,
    failure: Arc<Mutex<Option<Failed>>>,
    /// Queued jobs per tree name, so that restoring one tree need not wait for the others.
    pending: Pending,
    /// Jobs queued so far.
    queued: AtomicU64,
    reads: Reads,
    handle: Option<JoinHandle<()>>,
}

type Pending = Arc<Mutex<HashMap<String, usize>>>;

/// The first write that failed: its tree, why, and whether the disk was full.
#[derive(Clone)]
struct Failed {
    tree: String,
    reason: String,
    full: bool,
}

impl Failed {
    fn error(self) -> StateError {
        StateError::WriterFailed { tree: self.tree, reason: self.reason, full: self.full }
    }
}

fn stopped(tree: &StateTree) -> StateError {
    StateError::WriterFailed { tree: tree.name().to_string(), reason: "the writer thread has stopped".into(), full: false }
}

fn count(pending: &Pending, tree: &str, delta: isize) {
    if let Ok(mut p) = pending.lock() {
        let n = p.entry(tree.to_string()).or_insert(0);
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            p.remove(tree);
        }
    }
}

impl StateWriter {
    /// `capacity` jobs may wait; beyond that `apply` blocks until sled catches up.
    pub fn start(capacity: usize) -> StateWriter {
        let (tx, rx) = mpsc::sync_channel::<Job>(capacity);
        let failure = Arc::new(Mutex::new(None));
        let pending = Pending::default();
        let reads = Reads::default();
        let (f, p, r) = (failure.clone(), pending.clone(), reads.clone());
        let handle = std::thread::Builder::new().name("eddy-state-writer".into()).spawn(move || run(rx, f, p, r)).ok();
        StateWriter { tx: Some(tx), failure, pending, queued: AtomicU64::new(0), reads, handle }
    }

    /// The handle readers of sled take.
    pub fn reads(&self) -> Reads {
        self.reads.clone()
    }

    /// How many jobs have been queued: once [`Reads::applied`] reaches it, sled holds them.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }

    fn failed(&self) -> Result<(), StateError> {
        match self.failure.lock().ok().and_then(|f| f.clone()) {
            Some(failed) => Err(failed.error()),
            None => Ok(()),
        }
    }

    /// Queues `changes` and then `changelog_offset` for `tree`.
    pub fn apply(&self, tree: &StateTree, changes: Changes, changelog_offset: Option<i64>) -> Result<(), StateError> {
        self.apply_all(vec![TreeChanges { tree: tree.clone(), changes, changelog_offset }])
    }

    /// Queues the changes of several trees as one job (a commit cycle's).
    pub fn apply_all(&self, job: Vec<TreeChanges>) -> Result<(), StateError> {
        let Some(first) = job.first() else { return Ok(()) };
        self.failed()?;
        let tx = self.tx.as_ref().ok_or_else(|| stopped(&first.tree))?;
        let first = first.tree.clone();
        for t in &job {
            count(&self.pending, t.tree.name(), 1);
        }
        let names: Vec<String> = job.iter().map(|t| t.tree.name().to_string()).collect();
        tx.send(Job::Apply(job)).map_err(|_| {
            for n in &names {
                count(&self.pending, n, -1);
            }
            stopped(&first)
        })?;
        self.queued.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Waits until everything queued so far for `tree` is in sled (at once if nothing is).
    pub fn drain_tree(&self, tree: &StateTree) -> Result<(), StateError> {
        let queued = self.pending.lock().map_or(1, |p| p.get(tree.name()).copied().unwrap_or(0));
        if queued == 0 {
            return self.failed();
        }
        self.drain()
    }

    /// Waits until everything queued so far is in sled.
    pub fn drain(&self) -> Result<(), StateError> {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if let Some(tx) = &self.tx {
            if tx.send(Job::Drained(ack_tx)).is_ok() {
                let _ = ack_rx.recv();
            }
        }
        self.failed()
    }
}

impl Drop for StateWriter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(rx: Receiver<Job>, failure: Arc<Mutex<Option<Failed>>>, pending: Pending, reads: Reads) {
    for job in rx {
        match job {
            Job::Apply(trees) => {
                let guard = reads.lock.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                for TreeChanges { tree, changes, changelog_offset } in trees {
                    // After a failure sled refuses every write: the queue is only drained.
                    let failed = failure.lock().map_or(true, |f| f.is_some());
                    if !failed {
                        if let Err(e) = tree.apply(changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())), changelog_offset) {
                            tracing::debug!(error = %e, "cannot write state to sled: {e}");
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert_with(|| Failed {
                                    tree: tree.name().to_string(),
                                    reason: e.to_string(),
                                    full: e.is_storage_full(),
                                });
                            }
                        }
                    }
                    count(&pending, tree.name(), -1);
                }
                reads.applied.fetch_add(1, Ordering::Release);
                drop(guard);
            }
            Job::Drained(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;

    #[test]
    fn writes_land_in_order_and_drain_waits_for_them() {
        let dir = std::env::temp_dir().join(format!("eddy-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = StateStore::open(&dir, 1 << 20).unwrap();
        let tree = store.tree("t").unwrap();
        let w = StateWriter::start(4);
        for i in 0..100u8 {
            w.apply(&tree, vec![(vec![1, 0], Some(vec![i]))], Some(i64::from(i))).unwrap();
        }
        w.apply(&tree, vec![(vec![1, 1], Some(vec![7])), (vec![1, 0], None)], Some(100)).unwrap();
        let other = store.tree("other").unwrap();
        w.drain_tree(&other).unwrap();
        w.drain_tree(&tree).unwrap();
        assert_eq!(tree.changelog_offset().unwrap(), Some(100));
        assert_eq!(w.pending.lock().unwrap().len(), 0, "nothing left queued");
        let mut entries = Vec::new();
        tree.for_each(|k, v| {
            entries.push((k.to_vec(), v.to_vec()));
            Ok::<(), StateError>(())
        })
        .unwrap();
        assert_eq!(entries, vec![(vec![1, 1], vec![7])], "the later delete won over the earlier writes");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
