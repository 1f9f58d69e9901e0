//! How the family turns redb's errors (and panics) into typed [`StorageError`]s.
//!
//! Inside the family every fallible step returns [`Fail`]: either a redb error, kept as is, or
//! a finished [`StorageError`] (a contract violation, a damaged record). At the boundary of a
//! contract call, [`Ctx::finish`] maps it with the instance's context: a latched I/O error
//! wins over whatever redb made of it (so an fsync EIO is reported as that EIO, not as redb's
//! "previous I/O error"), redb's `Corrupted` becomes [`Corruption`] naming the database file,
//! and anything else is `StorageError::Backend { family: "redb", .. }`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use super::backend::IoLatch;
use crate::contract::{ContractError, Corruption, StorageError};

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
        if let Some(latched) = self.latch.get() {
            return StorageError::Vfs(latched);
        }
        match fail {
            Fail::Storage(e) => e,
            Fail::Engine(e) => engine_error(&self.path, e),
        }
    }

    /// Runs `body`, turning a redb panic into an error: redb asserts on some damaged files,
    /// and a damaged file is input the contract must answer without panicking.
    pub fn shield<T>(&self, body: impl FnOnce() -> Result<T, Fail>) -> Result<T, StorageError> {
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(fail)) => Err(self.finish(fail)),
            Err(panic) => Err(StorageError::Backend {
                family: FAMILY,
                message: format!(
                    "redb panicked on {}: {}",
                    self.path.display(),
                    crate::sim::runner::panic_text(&panic)
                ),
            }),
        }
    }
}

/// A [`Corruption`] in the database file at `path`.
pub fn corruption(path: &std::path::Path, what: impl Into<String>) -> StorageError {
    StorageError::Corruption(Corruption { path: path.to_path_buf(), offset: 0, what: what.into() })
}

/// Maps a redb error on the database at `path`.
pub fn engine_error(path: &std::path::Path, error: redb::Error) -> StorageError {
    match error {
        redb::Error::Corrupted(what) => corruption(path, format!("redb: {what}")),
        redb::Error::PreviousIo => StorageError::Poisoned {
            cause: "redb saw an earlier I/O error on this database".to_string(),
        },
        other => StorageError::Backend { family: FAMILY, message: other.to_string() },
    }
}
