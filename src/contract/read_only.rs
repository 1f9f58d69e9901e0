//! Opening for reading is not opening for writing (DESIGN §3).
//!
//! A read-only open ([`Family::open_read_only`](super::Family::open_read_only)) hands back a
//! [`ReadOnlyOpen`]: a [`StateView`] (never a [`RaftStorage`], so nothing can mutate it), the
//! state a read-write open would recover, and the list of [`Repair`]s that open would make. It
//! never creates, writes, truncates, renames or deletes anything, and works where the
//! process may only read. The default way to get there, [`replay_read_only`], runs the
//! family's own read-write open unchanged on an [`OverlayVfs`] over a [`ReadOnlyVfs`]: the
//! repairs land in memory, and a [`JournalVfs`] on top writes them down. The lock the open
//! takes goes to the real files as a shared lock (a reader), refused while a writer holds it;
//! a lock file the open would create exists only in memory.
//!
//! The read-write open is the only one that repairs, and [`open_reporting`] says what it did,
//! through the same journal over the real files.

use std::sync::Arc;

use super::error::{StorageError, StorageResult};
use super::storage::{RaftStorage, StateView};
use crate::delegate::delegate_state_view;
use crate::vfs::{
    JournalVfs, LockMode, OverlayVfs, ReadOnlyVfs, Repair, VfsError, VfsErrorKind, VfsHandle,
};

/// How a read-only view was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewSource {
    /// The family's read-write open, replayed on an in-memory overlay: the view is exactly
    /// what that open recovers, and its repairs are the overlay's changes.
    Replayed,
    /// A storage engine's own read-only open, for a file that needed no recovery (redb's
    /// `open_read_only`). It does not repeat checks that only a read-write open runs (redb's
    /// page checksum verification on open).
    EngineReadOnly,
}

/// What a read-only open hands back.
pub struct ReadOnlyOpen {
    /// The state, read-only.
    pub view: Box<dyn StateView + Send>,
    /// The family's scheme (for an exported image's header).
    pub family: &'static str,
    /// The family's on-disk format version (for an exported image's header).
    pub format_version: u32,
    /// What a read-write open would change, in order.
    pub repairs: Vec<Repair>,
    /// How the view was computed.
    pub source: ViewSource,
}

impl std::fmt::Debug for ReadOnlyOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyOpen")
            .field("family", &self.family)
            .field("repairs", &self.repairs)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A read-write instance seen through its read side only.
pub struct ViewOnly {
    storage: Box<dyn RaftStorage>,
}

impl ViewOnly {
    /// `storage`, from now on only read.
    pub fn new(storage: Box<dyn RaftStorage>) -> Self {
        ViewOnly { storage }
    }
}

delegate_state_view!(ViewOnly => storage);

/// A read-only open by replay (see the module doc): `open` is the family's read-write open,
/// called once on the overlay.
pub fn replay_read_only(
    vfs: VfsHandle,
    open: impl FnOnce(VfsHandle) -> StorageResult<Box<dyn RaftStorage>>,
) -> StorageResult<ReadOnlyOpen> {
    let overlay: VfsHandle = Arc::new(OverlayVfs::new(Arc::new(ReadOnlyVfs::new(vfs))));
    let journal = JournalVfs::new(overlay);
    let storage = open(journal.clone()).map_err(|e| reader_locked_out(e, LockMode::Shared))?;
    let repairs = journal.finish();
    Ok(ReadOnlyOpen {
        family: storage.family(),
        format_version: storage.family_format_version(),
        view: Box::new(ViewOnly::new(storage)),
        repairs,
        source: ViewSource::Replayed,
    })
}

/// A read-write open through a journal: the instance and what its open changed.
pub fn open_reporting(
    vfs: VfsHandle,
    open: impl FnOnce(VfsHandle) -> StorageResult<Box<dyn RaftStorage>>,
) -> StorageResult<(Box<dyn RaftStorage>, Vec<Repair>)> {
    let journal = JournalVfs::new(vfs);
    let storage = open(journal.clone())?;
    Ok((storage, journal.finish()))
}

/// The typed error for a lock `path` that `wanted` could not get: another holder has it.
pub fn lock_error(error: VfsError, wanted: LockMode) -> StorageError {
    if error.kind == VfsErrorKind::Locked {
        StorageError::Locked { path: error.path, wanted }
    } else {
        error.into()
    }
}

/// A lock refusal met by a read-only open is a reader's: whatever mode the replayed open
/// asked for, the reader asked for a shared lock (the writer holds it).
fn reader_locked_out(error: StorageError, reader: LockMode) -> StorageError {
    match error {
        StorageError::Locked { path, .. } => StorageError::Locked { path, wanted: reader },
        other => other,
    }
}
