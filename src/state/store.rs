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

/// Free space that must be writable before a directory sled could not open counts as damaged.
const ROOM_TO_OPEN: usize = 1 << 20;

/// State store failures.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open the state directory {dir}: {source}")]
    Open { dir: PathBuf, source: sled::Error },
    #[error(
        "the state directory {dir} is in use by another process (it holds the lock on {dir}/db); each instance needs its own state.dir"
    )]
    InUse { dir: PathBuf },
    #[error("cannot move the damaged state directory {dir} aside: {source}")]
    MoveAside { dir: PathBuf, source: std::io::Error },
    #[error("state tree {tree}: {source}")]
    Io { tree: String, source: sled::Error },
    #[error("state tree {tree} holds a bad bookkeeping entry")]
    Corrupt { tree: String },
    #[error("writing state tree {tree} to sled failed ({reason}); the store is reopened and the state restored from the changelog")]
    WriterFailed { tree: String, reason: String, full: bool },
    /// The disk under the state directory has no room (or the process hit its file size
    /// limit or a quota): nothing is wrong with the state, it cannot be written now.
    #[error("the disk under the state directory {dir} is full ({reason})")]
    Full { dir: PathBuf, reason: String },
}

impl StateError {
    /// True when the failure is the disk being full (ENOSPC, a quota, the file size
    /// limit), which waits for space, rather than damage, which rebuilds.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StateError::Open { source, .. } | StateError::Io { source, .. } => sled_full(source),
            StateError::WriterFailed { full, .. } => *full,
            StateError::Full { .. } => true,
            StateError::MoveAside { source, .. } => io_full(source),
            StateError::InUse { .. } | StateError::Corrupt { .. } => false,
        }
    }
}

/// True for the I/O errors that mean "no room to write".
pub fn io_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::StorageFull | K::QuotaExceeded | K::FileTooLarge)
}

fn sled_full(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io_full(io))
}

/// Writes and deletes `bytes` of scratch in `dir`: room for at least that much, now.
pub fn has_room(dir: &Path, bytes: usize) -> Result<(), std::io::Error> {
    use std::io::Write;
    let path = dir.join(".eddy-space-probe");
    let result = (|| {
        let mut f = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            f.write_all(&chunk[..n])?;
            left -= n;
        }
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    result
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

    /// Opens `dir`, treating it as the cache it is: a directory sled cannot open (a torn
    /// write, a bad disk, files from another version) is moved aside to
    /// `<dir>.damaged-<unix ms>` (the newest `keep` are kept for inspection), and an empty one
    /// takes its place, which restore fills from the changelogs. A directory another process
    /// holds is refused: that is a second instance, not damage. Returns the store and where
    /// the damaged directory went, if it was.
    pub fn open_or_rebuild(dir: &Path, cache_bytes: u64, keep: usize) -> Result<(StateStore, Option<(PathBuf, String)>), StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::MoveAside { dir: dir.to_path_buf(), source })?;
        if held_by_another(dir) {
            return Err(StateError::InUse { dir: dir.to_path_buf() });
        }
        // sled panics on some damage instead of returning an error; both mean the same here.
        let first = std::panic::catch_unwind(|| StateStore::open(dir, cache_bytes));
        let why = match first {
            Ok(Ok(store)) => return Ok((store, None)),
            Ok(Err(e)) if e.is_storage_full() => return Err(e),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("cannot open the state directory {}: sled panicked reading it", dir.display()),
        };
        if held_by_another(dir) {
            return Err(StateError::InUse { dir: dir.to_path_buf() });
        }
        // A full disk is not damage (sled may fail in other ways when it cannot write).
        if let Err(e) = has_room(dir, ROOM_TO_OPEN) {
            return Err(StateError::Full {
                dir: dir.to_path_buf(),
                reason: format!("{why}; and writing {ROOM_TO_OPEN} bytes failed: {e}"),
            });
        }
        let aside = move_aside(dir, keep)?;
        let store = StateStore::open(dir, cache_bytes)?;
        Ok((store, Some((aside, why))))
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

/// True when another process (or another store in this one) holds sled's lock on `dir/db`.
fn held_by_another(dir: &Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(dir.join("db")) else { return false };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// Renames `dir` to `<dir>.damaged-<unix ms>`, deleting all but the newest `keep` such
/// directories; returns the new name.
fn move_aside(dir: &Path, keep: usize) -> Result<PathBuf, StateError> {
    let err = |source| StateError::MoveAside { dir: dir.to_path_buf(), source };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let aside = dir.with_file_name(format!("{name}.damaged-{now:013}"));
    std::fs::rename(dir, &aside).map_err(err)?;
    std::fs::create_dir_all(dir).map_err(err)?;
    let parent = aside.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let prefix = format!("{name}.damaged-");
    let mut old: Vec<PathBuf> = std::fs::read_dir(&parent)
        .map_err(err)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    old.sort();
    let excess = old.len().saturating_sub(keep);
    for d in &old[..excess] {
        if let Err(e) = std::fs::remove_dir_all(d) {
            tracing::warn!(dir = %d.display(), error = %e, "cannot delete the old damaged state directory {}: {e}", d.display());
        }
    }
    Ok(aside)
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

    fn damaged_dirs(dir: &Path) -> Vec<PathBuf> {
        let prefix = format!("{}.damaged-", dir.file_name().unwrap().to_string_lossy());
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_directory_sled_cannot_open_is_moved_aside_and_replaced_by_an_empty_one() {
        let dir = temp_dir("damaged");
        for d in damaged_dirs(&dir) {
            std::fs::remove_dir_all(d).unwrap();
        }
        for round in 0..4 {
            {
                let (store, rebuilt) = StateStore::open_or_rebuild(&dir, 1 << 20, 2).unwrap();
                assert_eq!(rebuilt.is_some(), round > 0, "round {round}: only a damaged directory is moved");
                let t = store.tree("q/aggregate/0").unwrap();
                assert!(t.is_empty(), "a rebuilt directory starts empty");
                t.apply([(&b"\x01a"[..], Some(&b"1"[..]))], Some(7)).unwrap();
                store.flush().unwrap();
            }
            // Scribble over sled's config: its checksum no longer matches.
            let conf = dir.join("conf");
            let len = std::fs::metadata(&conf).unwrap().len() as usize;
            std::fs::write(&conf, vec![0xA5u8; len]).unwrap();
        }
        let aside = damaged_dirs(&dir);
        assert_eq!(aside.len(), 2, "only the newest `keep` damaged directories are kept: {aside:?}");
        assert!(aside.iter().all(|d| d.join("conf").exists()), "what was moved aside is the damaged directory itself");
        let _ = std::fs::remove_dir_all(&dir);
        for d in aside {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn a_directory_in_use_is_refused_not_moved() {
        let dir = temp_dir("in-use");
        let (held, _) = StateStore::open_or_rebuild(&dir, 1 << 20, 2).unwrap();
        match StateStore::open_or_rebuild(&dir, 1 << 20, 2) {
            Err(e @ StateError::InUse { .. }) => assert!(e.to_string().contains("in use by another process"), "{e}"),
            Err(e) => panic!("expected InUse, got {e}"),
            Ok(_) => panic!("a directory in use was opened twice"),
        }
        assert!(damaged_dirs(&dir).is_empty(), "a directory in use is not damage");
        drop(held);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
