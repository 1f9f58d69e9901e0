//! The storage traits: the read side ([`StateView`]), the mutating side ([`RaftStorage`]),
//! snapshot writing ([`SnapshotWriter`]) and the family that opens instances ([`Family`]).
//!
//! Semantics (normative, DESIGN §2):
//! - The log's retained range is `[first, last]`, empty when `first == last + 1`; a new log
//!   is `first = 1, last = 0`.
//! - `append` takes contiguous entries starting at `last + 1`, anything else is
//!   [`ContractError::NonContiguousAppend`] and changes nothing. An empty batch is a no-op.
//! - `truncate_prefix(k)`: `first = max(first, k)`; past `last + 1` the log is empty at `k`.
//! - `truncate_suffix(k)`: `last = min(last, k)`, never below `first - 1`.
//! - `reset(next)`: the log is empty with `first = next` (`next >= 1`).
//! - `save_meta` replaces term and vote together. A new instance reads [`Meta::INITIAL`].
//! - Only the latest published snapshot is visible; publishing replaces it atomically.
//! - In sync mode a mutation returns only once it is durable; after a failed sync the
//!   instance is poisoned and every later mutation fails with [`StorageError::Poisoned`].

use std::fmt;
use std::sync::Arc;

use super::error::{ContractError, StorageResult};
use super::read_only::ReadOnlyOpen;
use super::types::{
    Entry, FileMeta, Index, Meta, Payload, PeerId, SnapshotFileInfo, SnapshotMeta, SnapshotPath,
    Term,
};
use crate::vfs::{Repair, VfsHandle};

/// Read access to a Raft-visible state: a live instance, a pinned export cut, or the model.
///
/// Reads never change the state. Out-of-range reads return `Ok(None)`.
pub trait StateView {
    /// First retained index (`last + 1` when the log is empty).
    fn first_index(&self) -> Index;
    /// Last retained index (`first - 1` when the log is empty).
    fn last_index(&self) -> Index;
    /// The entry at `index`, or `None` outside `[first, last]`.
    fn entry(&self, index: Index) -> StorageResult<Option<Entry>>;
    /// The term of the entry at `index`, or `None` outside `[first, last]`.
    fn term(&self, index: Index) -> StorageResult<Option<Term>> {
        Ok(self.entry(index)?.map(|e| e.term))
    }
    /// The durable term and vote.
    fn meta(&self) -> StorageResult<Meta>;
    /// The latest published snapshot's meta, if any snapshot was published.
    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>>;
    /// The latest snapshot's files, sorted by path (byte order); empty without a snapshot.
    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>>;
    /// Reads bytes of a latest-snapshot file at `offset` into `buf`; returns how many were
    /// read (0 at or past the end). An unknown path is a contract error.
    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize>;
}

/// A storage instance of some family: log, meta and snapshots under one handle.
pub trait RaftStorage: StateView + Send {
    /// The scheme of the family this instance belongs to (`memory`, `local`, ...).
    fn family(&self) -> &'static str;
    /// Appends contiguous entries starting at `last + 1`.
    fn append(&mut self, entries: &[Entry]) -> StorageResult<()>;
    /// Drops every entry below `first_kept`.
    fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()>;
    /// Drops every entry above `last_kept` (never below `first - 1`).
    fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()>;
    /// Empties the log so that it starts at `next`.
    fn reset(&mut self, next: Index) -> StorageResult<()>;
    /// Replaces term and vote together.
    fn save_meta(&mut self, meta: &Meta) -> StorageResult<()>;
    /// Begins a snapshot writer; nothing it does is visible until `publish`.
    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>>;
    /// Pins a coherent cut of the current state. The returned view keeps showing exactly that
    /// state while this instance goes on mutating.
    fn begin_export(&mut self) -> StorageResult<Box<dyn StateView + Send>>;
    /// Begins an atomic import into this instance, which must be empty (fresh state, no
    /// snapshot); otherwise [`ContractError::NotEmpty`]. Nothing the sink receives is visible
    /// (nor, after a crash, recovered as a bootstrapped state) until `commit` returns Ok.
    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>>;
    /// Names this family's layout keeps for its own files in a snapshot directory, which a
    /// snapshot path's first segment may not be (none by default; `local`: braft's
    /// `__raft_snapshot_meta`, its `.tmp`, and the family's checksum files beside it). A
    /// writer's `add_file` and an import's `add_snapshot_file` refuse such a path with
    /// [`ContractError::ReservedSnapshotPath`] before writing anything for it; a caller that
    /// sees a whole file list first (bootstrap, migrate) checks it up front with
    /// [`check_reserved_snapshot_path`], so that nothing is written at all.
    fn reserved_snapshot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The version of this family's own on-disk format, recorded in exported images'
    /// headers next to the family id (informational: importers do not depend on it).
    fn family_format_version(&self) -> u32 {
        0
    }
}

/// The receiving end of an import: a staged state that becomes the instance's state only at
/// `commit`, atomically. Calls come in this order: `set_first_index`, `append` (any number of
/// contiguous batches), `set_meta`, then the snapshot (`add_snapshot_file` /
/// `write_snapshot_file` per file, `set_snapshot_meta`), then `commit`. Dropping the sink
/// without `commit` discards the staged state and leaves the instance empty.
pub trait ImportSink {
    /// Sets the first retained index of the (empty) staged log; at least 1.
    fn set_first_index(&mut self, first: Index) -> StorageResult<()>;
    /// Appends contiguous entries to the staged log.
    fn append(&mut self, entries: &[Entry]) -> StorageResult<()>;
    /// Sets the staged term and vote.
    fn set_meta(&mut self, meta: &Meta) -> StorageResult<()>;
    /// Adds an empty file with its metadata to the staged snapshot.
    fn add_snapshot_file(&mut self, path: &SnapshotPath, file_meta: &FileMeta)
        -> StorageResult<()>;
    /// Appends bytes to a staged snapshot file; `offset` must equal its current length.
    fn write_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        offset: u64,
        data: &[u8],
    ) -> StorageResult<()>;
    /// Sets the staged snapshot's meta; without it the import carries no snapshot (and then
    /// must carry no snapshot files).
    fn set_snapshot_meta(&mut self, meta: SnapshotMeta) -> StorageResult<()>;
    /// Makes the staged state the instance's state, durably and atomically.
    fn commit(self: Box<Self>) -> StorageResult<()>;
}

/// A snapshot under construction. Files are added, written front to back, the meta is set,
/// and `publish` makes the whole snapshot the latest one atomically (retiring the previous).
/// Dropping a writer without publishing leaves the visible state unchanged.
pub trait SnapshotWriter {
    /// Adds an empty file at `path` with its metadata ([`FileMeta::default`] for none);
    /// reading the published snapshot gives back exactly this `file_meta`.
    fn add_file(&mut self, path: &SnapshotPath, file_meta: &FileMeta) -> StorageResult<()>;
    /// Appends `data` to an added file; `offset` must equal the file's current length.
    fn write_file(&mut self, path: &SnapshotPath, offset: u64, data: &[u8]) -> StorageResult<()>;
    /// Sets the snapshot's meta (required before `publish`).
    fn set_meta(&mut self, meta: SnapshotMeta);
    /// Makes this snapshot the latest, durably and atomically.
    fn publish(self: Box<Self>) -> StorageResult<()>;
}

/// A backend family: opens instances at a location under one URI scheme.
pub trait Family: Send + Sync {
    /// The URI scheme (`memory`, `local`, `redb`).
    fn scheme(&self) -> &'static str;
    /// Whether state survives a crash and reopen (false only for `memory`).
    fn durable(&self) -> bool;

    /// The smallest write the family's on-disk format relies on being atomic at a power
    /// loss. Its read-write open declares it for the files it writes
    /// ([`Vfs::declare_write_atomicity`](crate::vfs::Vfs::declare_write_atomicity)), so the
    /// simulated disk tears them exactly as finely as the family claims to survive.
    fn write_atomicity(&self) -> crate::vfs::WriteAtomicity {
        crate::vfs::WriteAtomicity::Sector
    }
    /// Opens (creating if absent) the instance at `location` (the URI without `scheme://`),
    /// doing all file I/O through `vfs`. This read-write open is the only one that repairs
    /// (recovery), and a durable family's takes the instance's exclusive lock first (a
    /// second writer gets [`StorageError::Locked`](super::StorageError::Locked)).
    fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>>;

    /// Opens the instance at `location` read-only: never creates, writes, truncates,
    /// renames or deletes anything through `vfs`, and shows the state [`Family::open`] would
    /// recover, with the repairs it would make. Takes the instance's lock shared when the lock
    /// exists (refused while a writer holds it). The default replays `open` on an in-memory
    /// overlay ([`read_only::replay_read_only`](super::read_only::replay_read_only)).
    fn open_read_only(&self, location: &str, vfs: VfsHandle) -> StorageResult<ReadOnlyOpen> {
        super::read_only::replay_read_only(vfs, |vfs| self.open(location, vfs))
    }

    /// [`Family::open`], also returning what the open repaired (in order).
    fn open_reporting(
        &self,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<(Box<dyn RaftStorage>, Vec<Repair>)> {
        super::read_only::open_reporting(vfs, |vfs| self.open(location, vfs))
    }

    /// Family-specific details for `qk inspect` of the instance at `location`: a human text
    /// and the same as JSON, with anything odd flagged. Must not modify the instance. `None`
    /// when the family has nothing beyond the generic state summary.
    fn inspect_details(
        &self,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Option<(String, serde_json::Value)>> {
        let _ = (location, vfs);
        Ok(None)
    }

    /// This family with its part of `tunables` applied ([`crate::tunables`]) and every other
    /// option as it was; `None` when it has no tunables (then it is used as it is). The
    /// tunables change which paths an instance takes, never what it stores: instances of the
    /// same family with different tunables open each other's files.
    fn with_tunables(&self, tunables: &crate::tunables::Tunables) -> Option<Arc<dyn Family>> {
        let _ = tunables;
        None
    }
}

impl fmt::Debug for dyn Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Family({})", self.scheme())
    }
}

/// The largest index any family must store: braft keeps indexes as `int64`, so every family
/// agrees on `i64::MAX` and rejects anything above it with the same typed error.
pub const INDEX_MAX: Index = i64::MAX as u64;
/// The largest term any family must store (braft's `int64`).
pub const TERM_MAX: Term = i64::MAX as u64;

fn check_index(index: Index, reason: &'static str) -> Result<(), ContractError> {
    if index > INDEX_MAX {
        return Err(ContractError::IndexOutOfRange { index, reason });
    }
    Ok(())
}

/// Checks a term against [`TERM_MAX`].
pub fn check_term(term: Term) -> Result<(), ContractError> {
    if term > TERM_MAX {
        return Err(ContractError::TermOutOfRange { term });
    }
    Ok(())
}

/// Checks that `entries` may be appended after `last`: contiguous from `last + 1`, indexes and
/// terms within range. An empty batch always passes. Shared by every family so the error is
/// the same everywhere.
pub fn check_append(last: Index, entries: &[Entry]) -> Result<(), ContractError> {
    for (position, entry) in entries.iter().enumerate() {
        let expected = last.saturating_add(1).saturating_add(position as u64);
        if entry.index != expected {
            return Err(ContractError::NonContiguousAppend {
                position,
                got: entry.index,
                expected,
            });
        }
        check_index(entry.index, "entry index above i64::MAX")?;
        check_term(entry.term)?;
        if let Payload::Configuration { peers, old_peers } = &entry.payload {
            check_peers(peers)?;
            check_peers(old_peers)?;
        }
    }
    Ok(())
}

/// Checks that every peer is storable PeerId text ([`PeerId::problem`]).
pub fn check_peers(peers: &[PeerId]) -> Result<(), ContractError> {
    for peer in peers {
        if let Some(reason) = peer.problem() {
            return Err(ContractError::BadPeer { peer: peer.to_string(), reason });
        }
    }
    Ok(())
}

/// Checks a `reset(next)` argument: `1 <= next <= INDEX_MAX`.
pub fn check_reset(next: Index) -> Result<(), ContractError> {
    if next == 0 {
        return Err(ContractError::IndexOutOfRange {
            index: 0,
            reason: "reset(0): the first index is at least 1",
        });
    }
    check_index(next, "reset past i64::MAX")
}

/// Checks a `truncate_prefix(first_kept)` argument: at most [`INDEX_MAX`].
pub fn check_truncate_prefix(first_kept: Index) -> Result<(), ContractError> {
    check_index(first_kept, "truncate_prefix past i64::MAX")
}

/// Checks a meta before it is saved: the term within range.
pub fn check_meta(meta: &Meta) -> Result<(), ContractError> {
    check_term(meta.term)?;
    if let Some(vote) = &meta.voted_for {
        check_peers(std::slice::from_ref(vote))?;
        if vote.is_any() {
            return Err(ContractError::BadPeer {
                peer: vote.to_string(),
                reason: "the any peer means no vote; save None instead",
            });
        }
    }
    Ok(())
}

/// Checks a snapshot meta before it is published: index and term within range.
pub fn check_snapshot_meta(meta: &SnapshotMeta) -> Result<(), ContractError> {
    check_index(meta.last_included_index, "snapshot index above i64::MAX")?;
    check_term(meta.last_included_term)?;
    check_peers(&meta.peers)?;
    check_peers(&meta.old_peers)
}

/// The range `(first, last)` after `truncate_prefix(first_kept)` on `(first, last)`.
pub fn range_after_truncate_prefix(first: Index, last: Index, first_kept: Index) -> (Index, Index) {
    if first_kept <= first {
        (first, last)
    } else if first_kept <= last {
        (first_kept, last)
    } else {
        (first_kept, first_kept - 1)
    }
}

/// The range `(first, last)` after `truncate_suffix(last_kept)` on `(first, last)`.
pub fn range_after_truncate_suffix(first: Index, last: Index, last_kept: Index) -> (Index, Index) {
    (first, last.min(last_kept).max(first - 1))
}

/// Checks `path` against the names `family` reserves
/// ([`RaftStorage::reserved_snapshot_names`]): a path whose first segment is one of them is
/// [`ContractError::ReservedSnapshotPath`].
pub fn check_reserved_snapshot_path(
    family: &'static str,
    names: &[&'static str],
    path: &SnapshotPath,
) -> Result<(), ContractError> {
    let first = path.segments().next().unwrap_or_default();
    match names.iter().find(|n| **n == first) {
        Some(name) => {
            Err(ContractError::ReservedSnapshotPath { path: path.to_string(), family, name })
        }
        None => Ok(()),
    }
}

/// Checks that `path` may join a snapshot tree that already holds `files`: not a duplicate,
/// and neither a file inside another file's path nor a directory over an existing file.
pub fn check_new_snapshot_file<V>(
    files: &std::collections::BTreeMap<SnapshotPath, V>,
    path: &SnapshotPath,
) -> Result<(), ContractError> {
    if files.contains_key(path) {
        return Err(ContractError::DuplicateSnapshotFile { path: path.to_string() });
    }
    let text = path.as_str();
    for (i, _) in text.match_indices('/') {
        if files.keys().any(|k| k.as_str() == &text[..i]) {
            return Err(ContractError::SnapshotPathConflict { path: text[..i].to_string() });
        }
    }
    let dir_prefix = format!("{text}/");
    if files.keys().any(|k| k.as_str().starts_with(&dir_prefix)) {
        return Err(ContractError::SnapshotPathConflict { path: text.to_string() });
    }
    Ok(())
}
