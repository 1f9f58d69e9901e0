//! Imports braft sees as nothing or everything (DESIGN §5; issue 14 item 3).
//!
//! braft decides emptiness from three separate places (`log/log_meta` and the segments,
//! `raft_meta/raft_meta`, `snapshot/snapshot_N`): revealing any one of them alone already
//! makes a node that is not empty, so no order of reveals inside the instance is atomic to
//! braft. The one place a single rename can commit is the instance root itself. So an import
//! into `local://PARENT/NAME`:
//!
//! 1. builds a complete instance in the sibling `PARENT/.NAME.qk-import` (braft never reads
//!    it), with the family's ordinary, durable writes;
//! 2. renames `NAME` (the empty instance) to `PARENT/.NAME.qk-old` and syncs `PARENT` — from
//!    here until step 3 is durable braft finds no `NAME` and would start an empty node;
//! 3. renames the staged root to `NAME` and syncs `PARENT`: the commit point;
//! 4. removes `.NAME.qk-old` and syncs `PARENT`; the instance reloads from the new root.
//!
//! A read-write open of `NAME` first repairs what a crash left ([`recover`]): the staged root
//! is removed; a root moved aside while `NAME` is absent is moved back (the import is rolled
//! back: it was never acknowledged); a root moved aside next to a committed `NAME` is removed.
//! Every crash point therefore reopens as the empty instance or the whole image, for us and
//! (see `braft_view`) for braft. A failed or abandoned import removes its staged root.
//!
//! braft's triple of separate URIs has no common root, so no rename can commit an import
//! there: such an import is refused ([`siblings`] returns `None`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::contract::{StorageError, StorageResult};
use crate::vfs::{FileKind, VfsHandle};

use super::files::remove_dir_all;
use super::format::{LOG_DIR, RAFT_META_DIR, SNAPSHOT_DIR};
use super::LocalPaths;

/// Suffix of the staged root (`.NAME` + this).
pub const STAGING_SUFFIX: &str = ".qk-import";
/// Suffix of the empty root moved aside during the commit (`.NAME` + this).
pub const ASIDE_SUFFIX: &str = ".qk-old";

/// The instance root and its two import siblings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Siblings {
    /// `PARENT/NAME`: the instance root.
    pub root: PathBuf,
    /// `PARENT`.
    pub parent: PathBuf,
    /// `PARENT/.NAME.qk-import`: the staged instance.
    pub staging: PathBuf,
    /// `PARENT/.NAME.qk-old`: the empty root while the commit swaps roots.
    pub aside: PathBuf,
}

/// The root and siblings of `paths`, when they are `DIR/log`, `DIR/raft_meta`,
/// `DIR/snapshot` of one `DIR` with a file name; `None` for a triple of separate URIs.
pub fn siblings(paths: &LocalPaths) -> Option<Siblings> {
    let root = paths.log.parent()?.to_path_buf();
    if *paths != LocalPaths::from_dir(&root) {
        return None;
    }
    let name = root.file_name()?.to_os_string();
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let sibling = |suffix: &str| {
        let mut n = OsString::from(".");
        n.push(&name);
        n.push(suffix);
        parent.join(n)
    };
    Some(Siblings { staging: sibling(STAGING_SUFFIX), aside: sibling(ASIDE_SUFFIX), root, parent })
}

/// Repairs what an interrupted import left beside the root (see the module doc). Runs before
/// anything else in a read-write open.
pub fn recover(vfs: &VfsHandle, s: &Siblings) -> StorageResult<()> {
    if vfs.exists(&s.aside)? {
        if vfs.exists(&s.root)? {
            // Committed: the new root is in place; the old one only needs removing.
            remove_dir_all(vfs, &s.aside)?;
        } else {
            // Crashed between the two renames: put the empty root back.
            vfs.rename(&s.aside, &s.root)?;
        }
        vfs.sync_dir(&s.parent)?;
    }
    remove_staging(vfs, s)
}

/// Removes the staged root, durably, if it is there.
pub fn remove_staging(vfs: &VfsHandle, s: &Siblings) -> StorageResult<()> {
    if vfs.exists(&s.staging)? {
        remove_dir_all(vfs, &s.staging)?;
        vfs.sync_dir(&s.parent)?;
    }
    Ok(())
}

/// Why `root` cannot take an import, if it holds anything besides an instance's own three
/// directories (the commit replaces the whole root, so anything else would be lost).
pub fn foreign_entry(vfs: &VfsHandle, root: &Path) -> StorageResult<Option<String>> {
    for entry in vfs.read_dir(root)? {
        let ours = entry.kind == FileKind::Dir
            && [LOG_DIR, RAFT_META_DIR, SNAPSHOT_DIR].contains(&entry.name.as_str());
        if !ours && !is_lock_file(&entry.name) {
            return Ok(Some(format!(
                "{} holds {:?}, which is not part of an instance",
                root.display(),
                entry.name
            )));
        }
    }
    Ok(None)
}

/// The instance lock file a read-write open keeps beside the three directories.
fn is_lock_file(name: &str) -> bool {
    name == super::lock::LOCK_FILE_NAME
}

/// Steps 2–4 of the module doc: swaps the staged root in, durably. On an error before the
/// commit point the empty root is put back (best effort; [`recover`] finishes the job).
pub fn swap(vfs: &VfsHandle, s: &Siblings) -> StorageResult<()> {
    vfs.sync_dir(&s.parent)?;
    vfs.rename(&s.root, &s.aside)?;
    let committed = vfs.sync_dir(&s.parent).and_then(|()| vfs.rename(&s.staging, &s.root));
    if let Err(e) = committed {
        let _ = vfs.rename(&s.aside, &s.root).and_then(|()| vfs.sync_dir(&s.parent));
        return Err(e.into());
    }
    vfs.sync_dir(&s.parent)?;
    remove_dir_all(vfs, &s.aside)?;
    vfs.sync_dir(&s.parent)?;
    Ok(())
}

/// The error for an import into braft's triple of separate URIs.
pub fn triple_refused(paths: &LocalPaths) -> StorageError {
    StorageError::Backend {
        family: "local",
        message: format!(
            "import refused: {}, {} and {} have no common instance root, so no single rename \
             can make the import visible to braft all at once; import into local://DIR \
             (DIR/log, DIR/raft_meta, DIR/snapshot) instead",
            paths.log.display(),
            paths.raft_meta.display(),
            paths.snapshot.display()
        ),
    }
}
