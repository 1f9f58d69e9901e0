//! The redb calls that differ between the redb this crate normally builds with and the
//! pinned, known-buggy redb 4.1.0 of the `canary-redb-4-1` build (`scripts/canaries.sh`,
//! README's Canaries section). Everything else in the family is the same code in both.
//!
//! redb 4.1.0 lacks two builder methods:
//! - `set_check_integrity_on_open`: the canary build opens without the page-checksum pass
//!   (the durability bug it exists to find does not depend on it);
//! - `open_read_only_with_backend`: the canary build's read-only open always replays the
//!   family's read-write open on a copy-on-write overlay ([`read_only_view_transaction`]),
//!   and its inspect opens the database read-write on such an overlay
//!   ([`read_only_transaction`]): the file is never written either way.

use std::path::Path;
use std::sync::Arc;

use redb::{Builder, Database, ReadTransaction};

use super::backend::{IoLatch, VfsBackend};
use super::fail::{Fail, Shielded};
#[cfg(feature = "canary-redb-4-1")]
use crate::contract::StorageError;
use crate::vfs::VfsHandle;

/// Asks the builder to verify every page checksum when a database opens (a no-op in the
/// canary build, whose redb has no such option).
pub(super) fn check_integrity_on_open(builder: &mut Builder, on: bool) {
    #[cfg(not(feature = "canary-redb-4-1"))]
    builder.set_check_integrity_on_open(on);
    #[cfg(feature = "canary-redb-4-1")]
    let _ = (builder, on);
}

/// A read transaction opened without writing, and what keeps it alive: nothing in the
/// normal build (redb's read-only database may close once its transaction has begun); in
/// the canary build, the in-memory copy's database, which must outlive the transaction
/// (redb 4.1.0 fails a transaction whose database has closed).
pub(super) struct ReadOnlyTxn {
    /// The transaction: a consistent view of the last commit.
    pub txn: ReadTransaction,
    /// Dropped after `txn`.
    pub keep_alive: Option<Shielded<Database>>,
}

/// What a read-only open of the family asks redb for: one read transaction on the database
/// behind `backend`, or `None` when the open should replay the family's own read-write open
/// on an overlay instead: the file needs crash recovery first (redb's `RepairAborted`), or,
/// in the canary build, always (its redb has no read-only open over a backend).
pub(super) fn read_only_view_transaction(
    builder: &Builder,
    backend: VfsBackend,
) -> Result<Option<ReadOnlyTxn>, Fail> {
    #[cfg(not(feature = "canary-redb-4-1"))]
    return engine_read_only(builder, backend);
    #[cfg(feature = "canary-redb-4-1")]
    {
        let _ = (builder, backend);
        Ok(None)
    }
}

/// One read transaction on the database behind `backend` (the file `path` on `vfs`), opened
/// without writing to it; `Ok(None)` when the file needs crash recovery first (redb's
/// `RepairAborted`: only a read-write open repairs).
///
/// The canary build has no read-only open over a backend: it opens the file read-write on a
/// copy-on-write overlay of `vfs` instead (as a replayed read-only open does), which reads
/// only the pages redb asks for and keeps whatever redb writes in memory.
pub(super) fn read_only_transaction(
    builder: &Builder,
    backend: VfsBackend,
    vfs: &VfsHandle,
    path: &Path,
    latch: Arc<IoLatch>,
) -> Result<Option<ReadOnlyTxn>, Fail> {
    #[cfg(not(feature = "canary-redb-4-1"))]
    {
        let _ = (vfs, path, latch);
        engine_read_only(builder, backend)
    }
    #[cfg(feature = "canary-redb-4-1")]
    {
        use crate::vfs::{OpenOptions, OverlayVfs, ReadOnlyVfs};
        use redb::ReadableDatabase;
        drop(backend);
        let overlay: VfsHandle = Arc::new(OverlayVfs::new(Arc::new(ReadOnlyVfs::new(vfs.clone()))));
        let file = overlay.open(path, OpenOptions::WRITE).map_err(StorageError::from)?;
        let db = builder.create_with_backend(VfsBackend::new(file, path.to_path_buf(), latch))?;
        let txn = db.begin_read()?;
        Ok(Some(ReadOnlyTxn { txn, keep_alive: Some(Shielded::new(db)) }))
    }
}

/// redb's own read-only open over `backend` (not in the canary build's redb).
#[cfg(not(feature = "canary-redb-4-1"))]
fn engine_read_only(builder: &Builder, backend: VfsBackend) -> Result<Option<ReadOnlyTxn>, Fail> {
    use redb::ReadableDatabase;
    match builder.open_read_only_with_backend(backend) {
        Ok(db) => {
            let txn = db.begin_read();
            super::fail::quiet_drop(db);
            Ok(Some(ReadOnlyTxn { txn: txn?, keep_alive: None }))
        }
        Err(redb::DatabaseError::RepairAborted) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
