//! One thread that performs every sled write, in the order they were queued. sled is a cache
//! of the changelog, so it may lag behind Kafka; taking its writes off the engine thread
//! lets processing and restores run at the speed of Kafka and the operators. Reading a tree
//! back (after an abort, or to restore it) first waits for the queue to drain.

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
    failure: Arc<Mutex<Option<String>>>,
    handle: Option<JoinHandle<()>>,
}

impl StateWriter {
    /// `capacity` jobs may wait; beyond that `apply` blocks until sled catches up.
    pub fn start(capacity: usize) -> StateWriter {
        let (tx, rx) = mpsc::sync_channel::<Job>(capacity);
        let failure = Arc::new(Mutex::new(None));
        let f = failure.clone();
        let handle = std::thread::Builder::new().name("eddy-state-writer".into()).spawn(move || run(rx, f)).ok();
        StateWriter { tx: Some(tx), failure, handle }
    }

    fn failed(&self) -> Result<(), StateError> {
        match self.failure.lock().ok().and_then(|f| f.clone()) {
            Some(tree) => Err(StateError::WriterFailed { tree }),
            None => Ok(()),
        }
    }

    /// Queues `changes` and then `changelog_offset` for `tree`.
    pub fn apply(&self, tree: &StateTree, changes: Changes, changelog_offset: Option<i64>) -> Result<(), StateError> {
        self.failed()?;
        let tx = self.tx.as_ref().ok_or_else(|| StateError::WriterFailed { tree: tree.name().to_string() })?;
        tx.send(Job::Apply { tree: tree.clone(), changes, changelog_offset })
            .map_err(|_| StateError::WriterFailed { tree: tree.name().to_string() })
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

fn run(rx: Receiver<Job>, failure: Arc<Mutex<Option<String>>>) {
    for job in rx {
        match job {
            Job::Apply { tree, changes, changelog_offset } => {
                if let Err(e) = tree.apply(changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())), changelog_offset) {
                    tracing::error!(error = %e, "cannot write state to sled: {e}");
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert_with(|| tree.name().to_string());
                    }
                }
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
        w.drain().unwrap();
        assert_eq!(tree.changelog_offset().unwrap(), Some(100));
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
