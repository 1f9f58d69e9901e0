//! The read-only open of a `redb://FILE` instance.
//!
//! A database that was closed cleanly opens with redb's own read-only open
//! (`Builder::open_read_only_with_backend`) on a [`VfsBackend::read_only`] over a
//! [`ReadOnlyVfs`]: nothing can be written, and nothing is. The view is one read transaction
//! (a pinned cut), checked the way the read-write open checks the small records. redb
//! refuses such an open when the file needs crash recovery (`RepairAborted`); then the view
//! is computed in memory instead, by replaying the family's read-write open (redb's repair
//! included) on an overlay ([`replay_read_only`]), never on the file. A missing or empty file
//! takes the same way, so the view shows exactly what a read-write open makes of it.
//!
//! What redb's read-only open does not do is verify every page checksum (a read-write open
//! with [`RedbOptions::check_integrity_on_open`](super::RedbOptions) does, and may roll back
//! to the previous commit when the latest fails it), so on a damaged file the two can differ;
//! [`ViewSource::EngineReadOnly`] says which way the view was made.

use std::path::Path;

use redb::Database;

use super::backend::{IoLatch, VfsBackend};
use super::engine;
use super::fail::{Ctx, Shielded};
use super::read::{self, RedbCut};
use super::storage::creating_path;
use super::RedbFamily;
use crate::contract::read_only::{lock_error, replay_read_only};
use crate::contract::{Family, ReadOnlyOpen, StateView, StorageResult, ViewSource};
use crate::delegate::delegate_state_view;
use crate::vfs::{
    LockMode, OpenOptions, ReadOnlyVfs, Repair, RepairAction, Vfs, VfsHandle, VfsLock,
};

/// A read transaction's view, holding the shared lock on the database file.
struct LockedCut {
    cut: RedbCut,
    /// What keeps the cut's transaction alive, if anything (see [`engine::ReadOnlyTxn`]);
    /// dropped after it.
    _engine: Option<Shielded<Database>>,
    _lock: Box<dyn VfsLock>,
}

impl StateView for LockedCut {
    delegate_state_view!(
        cut: first_index,
        last_index,
        entry,
        term,
        meta,
        snapshot_meta,
        snapshot_files,
        read_snapshot_file
    );
}

/// The read-only open (see the module doc).
pub fn open_read_only(
    family: &RedbFamily,
    location: &str,
    vfs: VfsHandle,
) -> StorageResult<ReadOnlyOpen> {
    let replay = |vfs: VfsHandle| replay_read_only(vfs, |vfs| family.open(location, vfs));
    let path = Path::new(location);
    if location.is_empty() || !vfs.exists(path)? {
        return replay(vfs);
    }
    let lock = vfs.try_lock(path, LockMode::Shared).map_err(|e| lock_error(e, LockMode::Shared))?;
    let reader = ReadOnlyVfs::new(vfs.clone());
    let file = reader.open(path, OpenOptions::READ)?;
    if file.len()? == 0 {
        drop((file, lock));
        return replay(vfs);
    }
    let latch = IoLatch::new();
    let ctx = Ctx { path: path.to_path_buf(), latch: latch.clone() };
    let backend = VfsBackend::read_only(file, path, latch);
    let opened =
        ctx.shield(|| engine::read_only_view_transaction(&Database::builder(), backend))?;
    let Some(engine::ReadOnlyTxn { txn, keep_alive }) = opened else {
        drop(lock);
        return replay(vfs);
    };
    let checked = ctx.shield(|| {
        read::check_format(&txn, &ctx)?;
        let (first, last) = read::log_range(&txn, &ctx)?;
        read::check_entries_match(&txn, &ctx, first, last)?;
        // Decode the small records once, as the read-write open does.
        read::raft_meta(&txn, &ctx)?;
        read::snapshot_meta(&txn, &ctx)?;
        Ok((first, last))
    });
    let (first, last) = match checked {
        Ok(range) => range,
        Err(e) => {
            // Damaged: do not run redb's destructors on it (as the read-write open leaks).
            std::mem::forget((txn, keep_alive));
            return Err(e);
        }
    };
    let mut repairs = Vec::new();
    let staging = creating_path(path);
    if vfs.exists(&staging)? {
        repairs.push(Repair { path: staging, action: RepairAction::Removed });
    }
    let view =
        LockedCut { cut: RedbCut::new(txn, ctx, first, last), _engine: keep_alive, _lock: lock };
    Ok(ReadOnlyOpen {
        view: Box::new(view),
        family: super::fail::FAMILY,
        // What `RedbStorage::family_format_version` reports (the trait's default).
        format_version: 0,
        repairs,
        source: ViewSource::EngineReadOnly,
    })
}
