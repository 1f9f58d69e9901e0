//! What a failed, refused or interrupted import or migration leaves behind: nothing it
//! created, and nothing anyone else created. Before the destination is opened,
//! [`CreatedPaths::before_open`] records which of the paths its family's open may create are
//! absent (for `local://DIR`: `DIR` and any missing parent; for `redb://FILE`: `FILE`,
//! `FILE.creating` and any missing parent) and hands out a [`Vfs`] to open it through that
//! writes down the identity ([`FileId`]) of every file and directory this process creates
//! (following renames). After a failure [`CreatedPaths::remove`] removes, under those paths,
//! exactly what this process created and still stands there as it made it: a directory or
//! file that another process created (two imports racing for one missing destination), or
//! that replaced ours, stays, and so does every directory that still holds one. What the
//! family's own import staged (a `local://` import's staged root, a redb import's
//! uncommitted transaction) its sink already removed on the error path.
//!
//! Also the interruption flag: [`install_interrupt_handler`] turns SIGINT and SIGTERM into
//! a flag ([`interrupted`]) that the import loop checks through [`Interruptible`] readers and
//! sinks, so an interrupted command takes the ordinary error path (and its cleanup) and then
//! exits with [`EXIT_INTERRUPTED`]. A second signal while cleaning up is not caught again by
//! anything but the flag; killing the process outright (SIGKILL) leaves what the next
//! read-write open of the destination removes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};

use crate::contract::{
    Entry, FileMeta, ImportSink, Index, Meta, RaftStorage, SnapshotMeta, SnapshotPath,
    StorageError, StorageResult,
};
use crate::delegate::{delegate_raft_storage, delegate_state_view, delegate_vfs};
use crate::families::split_uri;
use crate::vfs::{
    FileId, FileKind, Metadata, OpenOptions, Vfs, VfsErrorKind, VfsFile, VfsHandle, VfsResult,
};

/// Exit code of a command stopped by SIGINT or SIGTERM (after its cleanup): 128 + SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the SIGINT/SIGTERM handler that sets the interruption flag (once per process).
pub fn install_interrupt_handler() {
    INSTALL.call_once(|| {
        // If a handler cannot be installed the default action (termination) stays, and the
        // next read-write open cleans up instead.
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

/// Whether SIGINT or SIGTERM arrived since the handler was installed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The error an interrupted command fails with.
pub fn interruption() -> StorageError {
    StorageError::Backend { family: "qk", message: "interrupted by a signal".to_string() }
}

/// Sets the interruption flag as a signal would (for tests of the cancellation path).
pub fn simulate_interrupt(on: bool) {
    INTERRUPTED.store(on, Ordering::SeqCst);
}

/// The destination paths an open may create, which of them were absent before it, and what
/// this process created through [`CreatedPaths::vfs`].
#[derive(Clone)]
pub struct CreatedPaths {
    log: Arc<CreationLog>,
    /// Top-most absent paths (each cleaned up as a whole tree on failure).
    absent: Vec<PathBuf>,
}

impl CreatedPaths {
    /// Records, before `uri` is opened, which paths its open would create.
    pub fn before_open(vfs: &VfsHandle, uri: &str) -> StorageResult<Self> {
        let (scheme, location) = split_uri(uri)?;
        let candidates: Vec<PathBuf> = match scheme.to_ascii_lowercase().as_str() {
            "local" => vec![PathBuf::from(location)],
            "redb" => {
                let file = PathBuf::from(location);
                vec![crate::families::redb::creating_path(&file), file]
            }
            _ => Vec::new(),
        };
        let mut absent: Vec<PathBuf> = Vec::new();
        for path in candidates {
            if let Some(top) = topmost_absent(vfs, &path)? {
                if !absent.iter().any(|a| top.starts_with(a)) {
                    absent.push(top);
                }
            }
        }
        let log = Arc::new(CreationLog { inner: vfs.clone(), created: Mutex::default() });
        Ok(CreatedPaths { log, absent })
    }

    /// The `Vfs` to open the destination through: the one given, writing down what this
    /// process creates.
    pub fn vfs(&self) -> VfsHandle {
        self.log.clone()
    }

    /// The paths that did not exist before the open.
    pub fn absent(&self) -> &[PathBuf] {
        &self.absent
    }

    /// Removes, under the recorded absent paths, what this process created (and still stands
    /// as created); returns the paths removed whole.
    pub fn remove(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        for path in &self.absent {
            if self.log.remove_own(path).unwrap_or(false) {
                removed.push(path.clone());
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = self.log.inner.sync_dir(parent);
            }
        }
        removed
    }
}

/// The highest ancestor of `path` (or `path` itself) that does not exist, if any.
fn topmost_absent(vfs: &VfsHandle, path: &Path) -> StorageResult<Option<PathBuf>> {
    if vfs.exists(path)? {
        return Ok(None);
    }
    let mut top = path.to_path_buf();
    while let Some(parent) = top.parent().filter(|p| !p.as_os_str().is_empty()) {
        if vfs.exists(parent)? {
            break;
        }
        top = parent.to_path_buf();
    }
    Ok(Some(top))
}

/// A pass-through [`Vfs`] that writes down, per path, the [`FileId`] of each file and
/// directory this process created through it: a `create_dir`, an `open` that created the
/// file (`create_new`, or `create` on a path that was absent), and a rename of either (the
/// identity moves with it). A removal forgets it.
struct CreationLog {
    inner: VfsHandle,
    created: Mutex<BTreeMap<PathBuf, FileId>>,
}

impl CreationLog {
    fn record(&self, path: &Path) {
        // A path that vanished again at once is nothing to clean up.
        if let Ok(meta) = self.inner.metadata(path) {
            self.created.lock().unwrap_or_else(|e| e.into_inner()).insert(path.into(), meta.id);
        }
    }

    /// Whether `path` stands as this process created it.
    fn is_own(&self, path: &Path, meta: &Metadata) -> bool {
        self.created.lock().unwrap_or_else(|e| e.into_inner()).get(path) == Some(&meta.id)
    }

    /// Removes what this process created at and under `path`, leaving anything else (and
    /// every directory that still holds it); whether `path` itself was removed.
    fn remove_own(&self, path: &Path) -> StorageResult<bool> {
        let meta = match self.inner.metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if !self.is_own(path, &meta) {
            return Ok(false);
        }
        if meta.kind == FileKind::Dir {
            let mut emptied = true;
            for entry in self.inner.read_dir(path)? {
                emptied &= self.remove_own(&path.join(&entry.name))?;
            }
            if !emptied {
                return Ok(false);
            }
            self.inner.remove_dir(path)?;
        } else {
            self.inner.remove_file(path)?;
        }
        Ok(true)
    }

    /// Moves the record of `from` (and of everything under it) to `to`.
    fn renamed(&self, from: &Path, to: &Path) {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created.remove(to);
        let moved: Vec<PathBuf> = created.keys().filter(|p| p.starts_with(from)).cloned().collect();
        for old in moved {
            if let (Some(id), Ok(rest)) = (created.remove(&old), old.strip_prefix(from)) {
                let new =
                    if rest.as_os_str().is_empty() { to.to_path_buf() } else { to.join(rest) };
                created.insert(new, id);
            }
        }
    }

    fn forget(&self, path: &Path) {
        self.created.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
    }
}

impl Vfs for CreationLog {
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        let creates = options.create_new || (options.create && !self.inner.exists(path)?);
        let file = self.inner.open(path, options)?;
        if creates {
            self.record(path);
        }
        Ok(file)
    }

    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        self.inner.create_dir(path)?;
        self.record(path);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        self.inner.remove_file(path)?;
        self.forget(path);
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        self.inner.remove_dir(path)?;
        self.forget(path);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()> {
        self.inner.rename(from, to)?;
        self.renamed(from, to);
        Ok(())
    }

    delegate_vfs!(inner: read_dir, metadata, sync_dir, try_lock, declare_write_atomicity);
}

/// A reader or storage that fails once the interruption flag is set, so a long import stops
/// at the next record or call.
pub struct Interruptible<T> {
    /// The wrapped reader, storage or sink.
    pub inner: T,
}

impl<T> Interruptible<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Interruptible { inner }
    }
}

impl<R: Read> Read for Interruptible<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if interrupted() {
            return Err(std::io::Error::other("interrupted by a signal"));
        }
        self.inner.read(buf)
    }
}

impl crate::contract::StateView for Interruptible<Box<dyn RaftStorage>> {
    delegate_state_view!(
        inner: first_index, last_index, entry, term, meta, snapshot_meta, snapshot_files,
        read_snapshot_file
    );
}

impl RaftStorage for Interruptible<Box<dyn RaftStorage>> {
    delegate_raft_storage!(
        inner: family, append, truncate_prefix, truncate_suffix, reset, save_meta, begin_snapshot,
        begin_export, family_format_version
    );

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        Ok(Box::new(Interruptible::new(self.inner.begin_import()?)))
    }
}

fn check() -> StorageResult<()> {
    if interrupted() {
        return Err(interruption());
    }
    Ok(())
}

impl ImportSink for Interruptible<Box<dyn ImportSink + '_>> {
    fn set_first_index(&mut self, first: Index) -> StorageResult<()> {
        check()?;
        self.inner.set_first_index(first)
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        check()?;
        self.inner.append(entries)
    }

    fn set_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        check()?;
        self.inner.set_meta(meta)
    }

    fn add_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        file_meta: &FileMeta,
    ) -> StorageResult<()> {
        check()?;
        self.inner.add_snapshot_file(path, file_meta)
    }

    fn write_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        offset: u64,
        data: &[u8],
    ) -> StorageResult<()> {
        check()?;
        self.inner.write_snapshot_file(path, offset, data)
    }

    fn set_snapshot_meta(&mut self, meta: SnapshotMeta) -> StorageResult<()> {
        check()?;
        self.inner.set_snapshot_meta(meta)
    }

    fn commit(self: Box<Self>) -> StorageResult<()> {
        check()?;
        self.inner.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{SimDisk, SimDiskOptions};

    fn disk() -> VfsHandle {
        SimDisk::new(SimDiskOptions::default())
    }

    fn file(vfs: &VfsHandle, path: &str) {
        drop(vfs.open(Path::new(path), OpenOptions::CREATE_NEW).expect("create"));
    }

    #[test]
    fn removes_what_this_process_created_and_only_that() {
        let raw = disk();
        let created = CreatedPaths::before_open(&raw, "local://a/node").expect("record");
        assert_eq!(created.absent(), [PathBuf::from("a")]);
        let ours = created.vfs();
        ours.create_dir_all(Path::new("a/node")).expect("mkdir");
        file(&ours, "a/node/qk_lock");
        file(&ours, "a/node/x.tmp");
        ours.rename(Path::new("a/node/x.tmp"), Path::new("a/node/x")).expect("rename");
        assert_eq!(created.remove(), [PathBuf::from("a")]);
        assert!(!raw.exists(Path::new("a")).expect("exists"));
    }

    #[test]
    fn a_directory_another_process_created_meanwhile_is_left_with_all_it_holds() {
        let raw = disk();
        let created = CreatedPaths::before_open(&raw, "local://a/node").expect("record");
        // The other process wins the race for the missing destination.
        raw.create_dir_all(Path::new("a/node")).expect("mkdir");
        file(&raw, "a/node/theirs");
        let ours = created.vfs();
        ours.create_dir_all(Path::new("a/node")).expect("an existing directory is created");
        file(&ours, "a/node/mine");
        assert_eq!(created.remove(), Vec::<PathBuf>::new());
        for path in ["a/node/theirs", "a/node/mine"] {
            assert!(raw.exists(Path::new(path)).expect("exists"), "{path} was removed");
        }
    }

    #[test]
    fn a_directory_of_ours_that_holds_another_process_file_stays() {
        let raw = disk();
        let created = CreatedPaths::before_open(&raw, "local://a/node").expect("record");
        let ours = created.vfs();
        ours.create_dir_all(Path::new("a/node")).expect("mkdir");
        file(&ours, "a/node/mine");
        file(&raw, "a/node/theirs");
        assert_eq!(created.remove(), Vec::<PathBuf>::new());
        assert!(!raw.exists(Path::new("a/node/mine")).expect("exists"));
        assert!(raw.exists(Path::new("a/node/theirs")).expect("exists"));
    }

    #[test]
    fn a_path_of_ours_replaced_by_another_process_stays() {
        let raw = disk();
        let created = CreatedPaths::before_open(&raw, "redb://db").expect("record");
        let ours = created.vfs();
        file(&ours, "db.creating");
        ours.rename(Path::new("db.creating"), Path::new("db")).expect("rename");
        // Another process replaces the file with its own (a rename over it).
        file(&raw, "db.other");
        raw.rename(Path::new("db.other"), Path::new("db")).expect("rename");
        assert_eq!(created.remove(), Vec::<PathBuf>::new());
        assert!(raw.exists(Path::new("db")).expect("exists"));
    }

    #[test]
    fn a_file_opened_with_create_is_ours_only_if_it_was_absent() {
        let raw = disk();
        let created = CreatedPaths::before_open(&raw, "redb://db").expect("record");
        file(&raw, "db.creating");
        let ours = created.vfs();
        drop(ours.open(Path::new("db.creating"), OpenOptions::CREATE).expect("open"));
        assert_eq!(created.remove(), Vec::<PathBuf>::new());
        assert!(raw.exists(Path::new("db.creating")).expect("exists"));
        drop(ours.open(Path::new("db"), OpenOptions::CREATE).expect("create"));
        assert_eq!(created.remove(), [PathBuf::from("db")]);
    }
}
