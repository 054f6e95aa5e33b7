//! One thread that performs every sled write, in the order they were queued. sled is a cache
//! of the changelog, so it may lag behind Kafka; taking its writes off the engine thread
//! lets processing and restores run at the speed of Kafka and the operators. Reading a tree
//! back (after an abort, or to restore it) first waits until its queued writes are in sled.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{StateError, StateTree};

/// Entries for a tree: key and new value (`None` deletes).
pub type Changes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

enum Job {
    Apply { tree: StateTree, changes: Changes, changelog_offset: Option<i64> },
    Drained(SyncSender<()>),
}

/// The writer thread and its queue.
pub struct StateWriter {
    tx: Option<SyncSender<Job>>,
    failure: Arc<Mutex<Option<Failed>>>,
    /// Queued jobs per tree name, so that restoring one tree need not wait for the others.
    pending: Pending,
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
        let (f, p) = (failure.clone(), pending.clone());
        let handle = std::thread::Builder::new().name("eddy-state-writer".into()).spawn(move || run(rx, f, p)).ok();
        StateWriter { tx: Some(tx), failure, pending, handle }
    }

    fn failed(&self) -> Result<(), StateError> {
        match self.failure.lock().ok().and_then(|f| f.clone()) {
            Some(failed) => Err(failed.error()),
            None => Ok(()),
        }
    }

    /// Queues `changes` and then `changelog_offset` for `tree`.
    pub fn apply(&self, tree: &StateTree, changes: Changes, changelog_offset: Option<i64>) -> Result<(), StateError> {
        self.failed()?;
        let tx = self.tx.as_ref().ok_or_else(|| stopped(tree))?;
        count(&self.pending, tree.name(), 1);
        tx.send(Job::Apply { tree: tree.clone(), changes, changelog_offset }).map_err(|_| {
            count(&self.pending, tree.name(), -1);
            stopped(tree)
        })
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

fn run(rx: Receiver<Job>, failure: Arc<Mutex<Option<Failed>>>, pending: Pending) {
    for job in rx {
        match job {
            Job::Apply { tree, changes, changelog_offset } => {
                // After a failure sled refuses every write: the queue is only drained.
                let failed = failure.lock().map_or(true, |f| f.is_some());
                if failed {
                    count(&pending, tree.name(), -1);
                    continue;
                }
                if let Err(e) = tree.apply(changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())), changelog_offset) {
                    tracing::debug!(error = %e, "cannot write state to sled: {e}");
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert_with(|| Failed { tree: tree.name().to_string(), reason: e.to_string(), full: e.is_storage_full() });
                    }
                }
                count(&pending, tree.name(), -1);
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
