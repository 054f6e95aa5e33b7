//! sled, used as a cache of the changelog: each tree holds an operator's entries plus the
//! changelog offset they reflect, written after Kafka commits.
//!
//! Writes are ordered, not atomic: the entries first, the changelog offset last. sled
//! recovers a prefix of its log, so after a crash a tree holds either the new offset with
//! all its entries, or an older offset with some newer entries — and replaying the
//! changelog from that older offset rewrites exactly those entries. Plain inserts are 2–3
//! times faster than sled's atomic batches and leave the tree faster to read back.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Key prefix of a tree's bookkeeping entries (never written to the changelog).
pub const META_PREFIX: u8 = 0x00;
const CHANGELOG_OFFSET: &[u8] = b"\x00changelog_offset";
const WRITTEN_AT: &[u8] = b"\x00written_at_ms";

/// State store failures.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open the state directory {dir}: {source} (is another eddy using it? each instance needs its own state.dir)")]
    Open { dir: PathBuf, source: sled::Error },
    #[error("state tree {tree}: {source}")]
    Io { tree: String, source: sled::Error },
    #[error("state tree {tree} holds a bad bookkeeping entry")]
    Corrupt { tree: String },
    #[error("writing state tree {tree} to sled failed earlier (see the log); stopping so a restart can restore from the changelog")]
    WriterFailed { tree: String },
}

/// The process's sled database.
#[derive(Clone)]
pub struct StateStore {
    db: sled::Db,
}

impl StateStore {
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<StateStore, StateError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|source| StateError::Open { dir: dir.to_path_buf(), source })?;
        Ok(StateStore { db })
    }

    /// The tree `name`, created if needed.
    pub fn tree(&self, name: &str) -> Result<StateTree, StateError> {
        let tree = self.db.open_tree(name).map_err(|source| StateError::Io { tree: name.to_string(), source })?;
        Ok(StateTree { tree, name: name.to_string() })
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StateError> {
        self.db.flush().map(|_| ()).map_err(|source| StateError::Io { tree: "*".into(), source })
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// One operator's state for one partition.
#[derive(Clone)]
pub struct StateTree {
    tree: sled::Tree,
    name: String,
}

impl StateTree {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn io(&self, source: sled::Error) -> StateError {
        StateError::Io { tree: self.name.clone(), source }
    }

    /// The changelog offset this tree reflects: replay starts there.
    pub fn changelog_offset(&self) -> Result<Option<i64>, StateError> {
        self.read_i64(CHANGELOG_OFFSET)
    }

    /// Wall-clock milliseconds of the last write, for the staleness rule on re-assignment.
    pub fn written_at_ms(&self) -> Result<Option<i64>, StateError> {
        self.read_i64(WRITTEN_AT)
    }

    fn read_i64(&self, key: &[u8]) -> Result<Option<i64>, StateError> {
        match self.tree.get(key).map_err(|e| self.io(e))? {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| StateError::Corrupt { tree: self.name.clone() })?;
                Ok(Some(i64::from_be_bytes(bytes)))
            }
        }
    }

    /// Calls `f` for every entry (not the bookkeeping ones), in key order.
    pub fn for_each<E: From<StateError>>(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<(), E>) -> Result<u64, E> {
        let mut n = 0;
        for item in self.tree.range([META_PREFIX + 1]..) {
            let (k, v) = item.map_err(|e| E::from(self.io(e)))?;
            f(&k, &v)?;
            n += 1;
        }
        Ok(n)
    }

    /// Applies `changes` (None deletes), then records `changelog_offset` (see the module
    /// comment for why the offset goes last).
    pub fn apply<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
        changelog_offset: Option<i64>,
    ) -> Result<(), StateError> {
        for (k, v) in changes {
            match v {
                Some(v) => self.tree.insert(k, v).map(|_| ()),
                None => self.tree.remove(k).map(|_| ()),
            }
            .map_err(|e| self.io(e))?;
        }
        if let Some(offset) = changelog_offset {
            self.tree.insert(CHANGELOG_OFFSET, &offset.to_be_bytes()).map_err(|e| self.io(e))?;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        self.tree.insert(WRITTEN_AT, &now.to_be_bytes()).map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Deletes everything, bookkeeping included.
    pub fn clear(&self) -> Result<(), StateError> {
        self.tree.clear().map_err(|e| self.io(e))
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eddy-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn batches_and_offsets_persist_across_reopen() {
        let dir = temp_dir("reopen");
        {
            let store = StateStore::open(&dir, 1 << 20).unwrap();
            let t = store.tree("q/aggregate/0").unwrap();
            assert_eq!(t.changelog_offset().unwrap(), None);
            t.apply([(&b"\x01a"[..], Some(&b"1"[..])), (&b"\x01b"[..], Some(&b"2"[..]))], Some(42)).unwrap();
            t.apply([(&b"\x01a"[..], None)], Some(43)).unwrap();
            store.flush().unwrap();
        }
        let store = StateStore::open(&dir, 1 << 20).unwrap();
        let t = store.tree("q/aggregate/0").unwrap();
        assert_eq!(t.changelog_offset().unwrap(), Some(43));
        let mut seen = Vec::new();
        t.for_each(|k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            Ok::<(), StateError>(())
        })
        .unwrap();
        assert_eq!(seen, vec![(b"\x01b".to_vec(), b"2".to_vec())], "bookkeeping entries are not state entries");
        assert!(t.written_at_ms().unwrap().is_some());
        let other = store.tree("q/aggregate/1").unwrap();
        assert!(other.is_empty(), "trees are independent");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
