//! The `redb://FILE` family: the storage contract on the [redb] embedded database, its file
//! running on the `Vfs` through redb's pluggable storage backend ([`backend::VfsBackend`]), so
//! the simulated disk's crashes, torn writes and fsync faults reach a real database engine.
//!
//! **Layout.** One redb database file, `FILE`, holding four tables (the schema, with every
//! key and value encoding, is documented in [`schema`]): `qk_meta` (format version, retained
//! log range, term and vote, latest snapshot meta), `qk_entries` (index → entry),
//! `qk_snapshot_files` (path → length and file metadata) and `qk_snapshot_chunks`
//! ((path, chunk number) → 64 KiB of the file). While a new database is being created it
//! lives at `FILE.creating`.
//!
//! **Durability and atomicity.** Every contract mutation is one redb write transaction
//! committed with `Durability::Immediate` (two-phase commit by default, see
//! [`RedbOptions::two_phase_commit`]); it returns only after redb's `sync_data`. A snapshot
//! writer and an import sink each hold one write transaction for their whole life, writing
//! chunks into it as they arrive and committing it at `publish` / `commit`; dropping them
//! aborts it. So after a crash the database shows the state before or after a mutation,
//! never a mix, and an import leaves the instance either empty or complete.
//!
//! **Creation.** A crash before a redb file's first durable commit leaves a file redb
//! cannot open. So the family builds a new database under `FILE.creating`, commits the
//! schema, syncs it, syncs the directory, renames it to `FILE` and syncs the directory
//! again: `FILE` only ever appears holding a committed database. A leftover
//! `FILE.creating` is deleted (or rebuilt) by the next open.
//!
//! **Exports** are pinned cuts built on a redb read transaction (MVCC): the cut keeps
//! reading the committed state it began at while the instance goes on committing.
//!
//! **Poisoning.** The backend latches its first I/O error and fails every later call with
//! it (redb's `CheckedBackend` does the same internally). The mutation that hit it returns
//! that error; every later mutation returns [`StorageError::Poisoned`] until the file is
//! reopened.
//!
//! **Stale pages.** redb reads pages without verifying their checksums, so a page a lying
//! disk left stale (a misdirected write) would be served as current. The family verifies
//! every checksum on open ([`RedbOptions::check_integrity_on_open`]) and, within a session,
//! checks every read against what the session last wrote or read there ([`ledger`]); either
//! failure is corruption. `sims/redb.rs` (`stale_pages`) reproduces the case.
//!
//! **Errors.** redb's `Corrupted`, a record whose checksum or encoding is wrong, or tables
//! that disagree with the log range, are [`crate::contract::Corruption`] naming `FILE` (at
//! offset 0: redb addresses records by key, so the message names the table and key); any
//! other redb failure is `StorageError::Backend { family: "redb", .. }`; a panic inside redb
//! (it asserts on some damaged files) is caught and reported as a `Backend` error.
//!
//! [redb]: https://www.redb.org
//! [`StorageError::Poisoned`]: crate::contract::StorageError::Poisoned

pub mod backend;
mod engine;
mod fail;
pub mod inspect;
pub mod ledger;
mod read;
mod read_only;
pub mod schema;
mod snapshot;
mod storage;

pub use backend::{Damage, IoLatch, VfsBackend};
pub use inspect::{inspect, InspectReport};
pub use storage::{creating_path, RedbStorage, CREATING_SUFFIX};

use crate::contract::{Family, RaftStorage, ReadOnlyOpen, StorageError, StorageResult};
use crate::vfs::VfsHandle;

/// Tuning of the `redb://` family. The defaults are what `redb://` URIs open with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedbOptions {
    /// redb's page cache budget in bytes (reads and a transaction's dirty pages together);
    /// bounds the memory of a large snapshot publish or import.
    pub cache_size: usize,
    /// Commit in two phases (sync the new commit slot, then flip the primary bit and sync
    /// again) rather than relying on checksums to reject a torn commit. Our fault model lets
    /// a crash keep any subset of unsynced writes, which is exactly the case two-phase commit
    /// exists for, so it is on by default.
    pub two_phase_commit: bool,
    /// Verify every page's checksum whenever the database is opened, not only after a crash
    /// (redb checks them only when it repairs). On by default: a misdirected write leaves an
    /// older, internally valid page where redb expects the new one, and only the checksums in
    /// the parent pages tell them apart. The cost is one read of the whole file per open.
    /// Within a session, the backend's [`ledger`] catches such pages instead.
    pub check_integrity_on_open: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions { cache_size: 16 << 20, two_phase_commit: true, check_integrity_on_open: true }
    }
}

/// The redb family (`redb://FILE`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RedbFamily {
    /// How instances are opened.
    pub options: RedbOptions,
}

impl RedbFamily {
    /// The family with default options.
    pub fn new() -> Self {
        RedbFamily::default()
    }

    /// The family with `options`.
    pub fn with_options(options: RedbOptions) -> Self {
        RedbFamily { options }
    }

    /// Opens (creating if absent) the database at `location`, typed.
    pub fn open_redb(&self, location: &str, vfs: VfsHandle) -> StorageResult<RedbStorage> {
        storage::open(location, vfs, self.options)
    }
}

impl Family for RedbFamily {
    fn scheme(&self) -> &'static str {
        fail::FAMILY
    }

    fn durable(&self) -> bool {
        true
    }

    fn write_atomicity(&self) -> crate::vfs::WriteAtomicity {
        storage::WRITE_ATOMICITY
    }

    fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        Ok(Box::new(self.open_redb(location, vfs)?))
    }

    fn with_tunables(
        &self,
        tunables: &crate::tunables::Tunables,
    ) -> Option<std::sync::Arc<dyn Family>> {
        let t = tunables.redb;
        let options = RedbOptions {
            cache_size: usize::try_from(t.cache_size).unwrap_or(usize::MAX),
            two_phase_commit: t.two_phase_commit,
            ..self.options
        };
        Some(std::sync::Arc::new(RedbFamily::with_options(options)))
    }

    /// redb's own read-only open for a cleanly closed file; otherwise the read-write open
    /// replayed in memory (see `read_only.rs`).
    fn open_read_only(&self, location: &str, vfs: VfsHandle) -> StorageResult<ReadOnlyOpen> {
        read_only::open_read_only(self, location, vfs)
    }

    fn inspect_details(
        &self,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Option<(String, serde_json::Value)>> {
        let report = inspect(location, vfs)?;
        let value = serde_json::to_value(&report).map_err(|e| StorageError::Backend {
            family: fail::FAMILY,
            message: format!("encoding the inspect report: {e}"),
        })?;
        Ok(Some((report.to_string(), value)))
    }
}
