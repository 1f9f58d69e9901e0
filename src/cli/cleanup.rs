//! What a failed, refused or interrupted import or migration leaves behind: nothing it
//! created. Before the destination is opened, [`CreatedPaths::before_open`] records which of
//! the paths its family's open may create are absent (for `local://DIR`: `DIR` and any
//! missing parent; for `redb://FILE`: `FILE`, `FILE.creating` and any missing parent); after
//! a failure [`CreatedPaths::remove`] removes exactly those (whole trees), and nothing that
//! existed before. What the family's own import staged (a `local://` import's staged root,
//! a redb import's uncommitted transaction) its sink already removed on the error path.
//!
//! Also the interruption flag: [`install_interrupt_handler`] turns SIGINT and SIGTERM into
//! a flag ([`interrupted`]) that the import loop checks through [`Interruptible`] readers and
//! sinks, so an interrupted command takes the ordinary error path (and its cleanup) and then
//! exits with [`EXIT_INTERRUPTED`]. A second signal while cleaning up is not caught again by
//! anything but the flag; killing the process outright (SIGKILL) leaves what the next
//! read-write open of the destination removes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::contract::{
    Entry, FileMeta, ImportSink, Index, Meta, RaftStorage, SnapshotMeta, SnapshotPath,
    StorageError, StorageResult,
};
use crate::delegate::{delegate_raft_storage, delegate_state_view};
use crate::families::split_uri;
use crate::vfs::{FileKind, VfsErrorKind, VfsHandle};

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

/// The destination paths an open may create, and which of them were absent before it.
#[derive(Clone)]
pub struct CreatedPaths {
    vfs: VfsHandle,
    /// Top-most absent paths (each removed as a whole tree on failure).
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
        Ok(CreatedPaths { vfs: vfs.clone(), absent })
    }

    /// The paths that did not exist before the open.
    pub fn absent(&self) -> &[PathBuf] {
        &self.absent
    }

    /// Removes whatever now stands at the recorded absent paths; returns what it removed.
    pub fn remove(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        for path in &self.absent {
            if remove_tree(&self.vfs, path).unwrap_or(false) {
                removed.push(path.clone());
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = self.vfs.sync_dir(parent);
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

/// Removes a file or a directory tree; whether something was there.
fn remove_tree(vfs: &VfsHandle, path: &Path) -> StorageResult<bool> {
    let kind = match vfs.metadata(path) {
        Ok(m) => m.kind,
        Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if kind == FileKind::Dir {
        for entry in vfs.read_dir(path)? {
            remove_tree(vfs, &path.join(&entry.name))?;
        }
        vfs.remove_dir(path)?;
    } else {
        vfs.remove_file(path)?;
    }
    Ok(true)
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
