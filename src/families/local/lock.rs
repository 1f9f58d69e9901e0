//! One writer at a time, and what a `local://` path names.
//!
//! **The lock.** A read-write open of `local://DIR` creates `DIR/qk_lock` (an empty file
//! beside braft's `log`, `raft_meta` and `snapshot` directories, which braft never reads) and
//! locks it exclusively ([`Vfs::try_lock`], `flock` on a real disk: the kernel releases it
//! when the process dies) before it reads or repairs anything; the instance holds it until
//! dropped. A second read-write open fails with [`StorageError::Locked`] and has changed
//! nothing. A read-only open takes the same lock shared if the file exists and never creates
//! it (the replayed open's lock file lives only in its overlay). braft itself takes no lock:
//! the lock keeps qk processes apart, not qk and a running braft node.
//!
//! **Imports** swap roots (see [`import`](super::import)): the staged root gets its own lock
//! file, locked by the importer before the swap, so the committed root is locked from the
//! moment it is renamed into place and the importer's reloaded instance keeps that lock;
//! between the two renames the root moved aside holds the importer's old lock, and a
//! read-write open that finds no root takes the lock there ([`lock_for_writing`]).
//!
//! **Paths.** [`classify`] tells an instance directory from things an operator may point at
//! by mistake (braft's own `DIR/log`, a directory of unrelated files), so operator commands
//! can refuse them instead of setting up an empty instance there.

use std::path::{Path, PathBuf};

use super::format::{
    LOG_DIR, LOG_META_NAME, RAFT_META_DIR, RAFT_META_NAME, SEGMENT_CLOSED_PREFIX, SNAPSHOT_DIR,
    SNAPSHOT_PREFIX, SNAPSHOT_TEMP_NAME,
};
use super::import::Siblings;
use super::LocalPaths;
use crate::contract::read_only::lock_error;
use crate::contract::StorageResult;
use crate::vfs::{FileKind, LockMode, OpenOptions, VfsErrorKind, VfsHandle, VfsLock};

/// The lock file's name, in the directory that holds braft's three directories.
pub const LOCK_FILE_NAME: &str = "qk_lock";

impl LocalPaths {
    /// The instance's lock file: `qk_lock` in the directory holding the log directory
    /// (`DIR/qk_lock` for `local://DIR`).
    pub fn lock_file(&self) -> PathBuf {
        match self.log.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.join(LOCK_FILE_NAME),
            _ => PathBuf::from(LOCK_FILE_NAME),
        }
    }
}

/// Takes the instance's exclusive lock for a read-write open: creates the lock file (and its
/// directory) if absent, durably, then locks it without waiting.
///
/// `import`: the root's import siblings. While an import commits, its root is briefly
/// absent, moved aside with its lock file (which the importer holds) to `.NAME.qk-old`; then
/// that lock file is the instance's: taken from there (refused while the importer lives; if
/// it died, import recovery moves the root back, and the lock with it), never made afresh in
/// a new, empty root.
pub fn lock_for_writing(
    vfs: &VfsHandle,
    paths: &LocalPaths,
    import: Option<&Siblings>,
) -> StorageResult<Box<dyn VfsLock>> {
    if let Some(s) = import {
        let aside = s.aside.join(LOCK_FILE_NAME);
        if !vfs.exists(&s.root)? && vfs.exists(&aside)? {
            return vfs
                .try_lock(&aside, LockMode::Exclusive)
                .map_err(|e| lock_error(e, LockMode::Exclusive));
        }
    }
    let path = paths.lock_file();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !vfs.exists(&path)? {
        vfs.create_dir_all(parent)?;
        match vfs.open(&path, OpenOptions::CREATE_NEW) {
            Ok(file) => drop(file),
            Err(e) if e.kind == VfsErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        // Not needed for safety (a lost lock file is made again), but it keeps the name from
        // staying a pending directory change that every later crash could undo.
        vfs.sync_dir(parent)?;
    }
    vfs.try_lock(&path, LockMode::Exclusive).map_err(|e| lock_error(e, LockMode::Exclusive))
}

/// What a directory given as `local://DIR` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirShape {
    /// Nothing there.
    Missing,
    /// A file, not a directory.
    NotADirectory,
    /// An empty directory.
    Empty,
    /// braft's layout (any of `log/`, `raft_meta/`, `snapshot/`) or a qk lock file.
    Instance,
    /// One of braft's three directories itself: `log`, `raft_meta` or `snapshot`.
    BraftSubdirectory {
        /// Which one.
        which: &'static str,
    },
    /// A directory holding none of braft's names (the first few listed).
    Unrelated {
        /// Some of the names it holds.
        names: Vec<String>,
    },
}

/// Looks at `dir` (read only).
pub fn classify(vfs: &VfsHandle, dir: &Path) -> StorageResult<DirShape> {
    match vfs.metadata(dir) {
        Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(DirShape::Missing),
        Err(e) => return Err(e.into()),
        Ok(meta) if meta.kind == FileKind::File => return Ok(DirShape::NotADirectory),
        Ok(_) => {}
    }
    let entries = vfs.read_dir(dir)?;
    if entries.is_empty() {
        return Ok(DirShape::Empty);
    }
    let has = |name: &str, kind: FileKind| entries.iter().any(|e| e.name == name && e.kind == kind);
    if has(LOG_DIR, FileKind::Dir)
        || has(RAFT_META_DIR, FileKind::Dir)
        || has(SNAPSHOT_DIR, FileKind::Dir)
        || has(LOCK_FILE_NAME, FileKind::File)
    {
        return Ok(DirShape::Instance);
    }
    let is_segment = |name: &str| name.starts_with(SEGMENT_CLOSED_PREFIX) && name != LOG_META_NAME;
    if entries
        .iter()
        .any(|e| e.kind == FileKind::File && (e.name == LOG_META_NAME || is_segment(&e.name)))
    {
        return Ok(DirShape::BraftSubdirectory { which: LOG_DIR });
    }
    if has(RAFT_META_NAME, FileKind::File) {
        return Ok(DirShape::BraftSubdirectory { which: RAFT_META_DIR });
    }
    if entries.iter().any(|e| {
        e.kind == FileKind::Dir
            && (e.name.starts_with(SNAPSHOT_PREFIX) || e.name == SNAPSHOT_TEMP_NAME)
    }) {
        return Ok(DirShape::BraftSubdirectory { which: SNAPSHOT_DIR });
    }
    let names = entries.iter().take(5).map(|e| e.name.clone()).collect();
    Ok(DirShape::Unrelated { names })
}
