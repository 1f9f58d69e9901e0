//! How the family turns redb's errors (and panics) into typed [`StorageError`]s.
//!
//! Inside the family every fallible step returns [`Fail`]: either a redb error, kept as is, or
//! a finished [`StorageError`] (a contract violation, a damaged record). At the boundary of a
//! contract call, [`Ctx::finish`] maps it with the instance's context: damage the backend
//! found on a read is corruption at its offset; a latched I/O error
//! wins over whatever redb made of it (so an fsync EIO is reported as that EIO, not as redb's
//! "previous I/O error"), redb's `Corrupted` becomes [`Corruption`] naming the database file,
//! and anything else is `StorageError::Backend { family: "redb", .. }`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use super::backend::IoLatch;
use crate::contract::{ContractError, Corruption, StorageError};
use crate::coverage::{hit, Point};

/// The family's scheme, as it appears in `StorageError::Backend`.
pub const FAMILY: &str = "redb";

/// A failure inside the family, before it is given its context.
#[derive(Debug)]
pub enum Fail {
    /// redb reported an error.
    Engine(redb::Error),
    /// A finished error (contract violation, damaged record, file-layer failure).
    Storage(StorageError),
}

macro_rules! from_redb {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for Fail {
            fn from(e: $t) -> Self {
                Fail::Engine(e.into())
            }
        })*
    };
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError,
    redb::StorageError,
    redb::SetDurabilityError,
);

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Storage(e)
    }
}

impl From<ContractError> for Fail {
    fn from(e: ContractError) -> Self {
        Fail::Storage(e.into())
    }
}

impl From<crate::vfs::VfsError> for Fail {
    fn from(e: crate::vfs::VfsError) -> Self {
        Fail::Storage(e.into())
    }
}

/// What an instance needs to give an error its context: the database file and its latch.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The database file.
    pub path: PathBuf,
    /// The backend's first I/O error.
    pub latch: Arc<IoLatch>,
}

impl Ctx {
    /// A damaged record: the database file, offset 0 (redb addresses records by key, not by
    /// file offset, so `what` names the table and key instead).
    pub fn corrupt(&self, what: impl Into<String>) -> Fail {
        Fail::Storage(corruption(&self.path, what))
    }

    /// Maps a failure to the error the contract call returns.
    pub fn finish(&self, fail: Fail) -> StorageError {
        if let Some(damage) = self.latch.damage() {
            hit(Point::RedbMediaFault);
            return StorageError::Corruption(Corruption {
                path: self.path.clone(),
                offset: damage.offset,
                what: damage.what,
            });
        }
        if let Some(latched) = self.latch.get() {
            return StorageError::Vfs(latched);
        }
        match fail {
            Fail::Storage(e) => e,
            Fail::Engine(e) => engine_error(&self.path, e),
        }
    }

    /// [`Ctx::shield`] for the calls of a read transaction, in a read scope (a failed
    /// best-effort writeback redb does while reading is not latched: see
    /// [`super::backend::reading`]).
    pub fn shield_read<T>(
        &self,
        body: impl FnOnce() -> Result<T, Fail>,
    ) -> Result<T, StorageError> {
        let _scope = super::backend::reading();
        self.shield(body)
    }

    /// Runs `body`, turning a redb panic into an error. redb asserts on some damaged files
    /// (a page of the wrong type, a length that does not fit), and a damaged file is input
    /// the contract must answer without panicking; so a panic is reported as corruption of
    /// the database file, and the instance is treated as broken until reopened (redb's
    /// in-memory state after a panic is not trusted).
    pub fn shield<T>(&self, body: impl FnOnce() -> Result<T, Fail>) -> Result<T, StorageError> {
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(fail)) => Err(self.finish(fail)),
            Err(panic) => {
                let what = format!(
                    "redb panicked reading it (treated as damage): {}",
                    crate::panics::text(&panic)
                );
                self.latch.break_engine(what.clone());
                hit(Point::RedbPanicShielded);
                Err(corruption(&self.path, what))
            }
        }
    }
}

/// A [`Corruption`] in the database file at `path`.
pub fn corruption(path: &std::path::Path, what: impl Into<String>) -> StorageError {
    hit(Point::RedbMediaFault);
    StorageError::Corruption(Corruption { path: path.to_path_buf(), offset: 0, what: what.into() })
}

/// Maps a redb error on the database at `path`.
pub fn engine_error(path: &std::path::Path, error: redb::Error) -> StorageError {
    match error {
        redb::Error::Corrupted(what) => corruption(path, format!("redb: {what}")),
        // redb reports a damaged header ("Not a redb database: magic number mismatch") as
        // `InvalidData`; our backend never returns that kind, so it always comes from redb
        // judging the file's bytes.
        redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            corruption(path, format!("redb: {e}"))
        }
        // Every table is created with the database and opened with fixed types, so a missing
        // or mistyped table means the table tree was damaged.
        e @ (redb::Error::TableDoesNotExist(_)
        | redb::Error::TableTypeMismatch { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TypeDefinitionChanged { .. }) => {
            corruption(path, format!("redb's table tree is damaged: {e}"))
        }
        redb::Error::PreviousIo => StorageError::Poisoned {
            cause: "redb saw an earlier I/O error on this database".to_string(),
        },
        other => StorageError::Backend { family: FAMILY, message: other.to_string() },
    }
}

/// Drops `value` (a redb database or transaction), swallowing a panic: after redb panicked
/// once, its locks are poisoned and its destructors may panic again, and a destructor must
/// not take the process down (nor abort it, when it runs during an unwind).
pub fn quiet_drop<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

/// Holds a redb object whose destructor may panic (see [`quiet_drop`]); derefs to it.
pub struct Shielded<T>(Option<T>);

impl<T> Shielded<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Shielded(Some(value))
    }
}

impl<T> Shielded<T> {
    /// Leaks the value instead of dropping it. For a database found damaged: redb's
    /// destructors on a damaged database can panic twice (once, then again while unwinding
    /// inside the same drop glue), which aborts the process whatever catches it. Leaking is
    /// bounded: it happens only when an instance fails closed.
    pub fn leak(&mut self) {
        if let Some(value) = self.0.take() {
            std::mem::forget(value);
        }
    }
}

impl<T> std::ops::Deref for Shielded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // The option is only emptied by `drop`, after which nothing can deref.
        self.0.as_ref().expect("a shielded value is present until it is dropped")
    }
}

impl<T> Drop for Shielded<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            quiet_drop(value);
        }
    }
}
