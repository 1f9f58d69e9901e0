//! Typed errors of the storage contract.

use std::path::PathBuf;

use thiserror::Error;

use super::types::Index;
use crate::vfs::VfsError;

/// A call that breaks the contract's preconditions. Never a panic: every input gets one of
/// these or succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ContractError {
    /// `append` got entries that do not start at `last + 1` or are not contiguous.
    #[error("non-contiguous append: entry #{position} has index {got}, expected {expected}")]
    NonContiguousAppend {
        /// Position of the offending entry in the batch.
        position: usize,
        /// The index the entry had.
        got: Index,
        /// The index it needed.
        expected: Index,
    },
    /// An index that cannot be represented (for example `reset(0)`, or an overflow).
    #[error("index {index} is out of the representable range: {reason}")]
    IndexOutOfRange {
        /// The index.
        index: Index,
        /// Why it is out of range.
        reason: &'static str,
    },
    /// A term above [`crate::contract::TERM_MAX`].
    #[error("term {term} is above the largest storable term (i64::MAX)")]
    TermOutOfRange {
        /// The term.
        term: u64,
    },
    /// A snapshot path that breaks the path rules.
    #[error("bad snapshot path {path:?}: {reason}")]
    BadSnapshotPath {
        /// The rejected path.
        path: String,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A snapshot file added twice to one writer.
    #[error("snapshot file {path:?} added twice")]
    DuplicateSnapshotFile {
        /// The path.
        path: String,
    },
    /// A write to a snapshot file that the writer never added.
    #[error("snapshot file {path:?} was not added to this writer")]
    UnknownSnapshotFile {
        /// The path.
        path: String,
    },
    /// A snapshot file path that is also a directory of another file's path.
    #[error("snapshot path {path:?} is both a file and a directory")]
    SnapshotPathConflict {
        /// The path.
        path: String,
    },
    /// `publish` before `set_meta`.
    #[error("snapshot publish without meta")]
    SnapshotWithoutMeta,
    /// A write at an offset other than the file's current end.
    #[error("snapshot file {path:?}: write at offset {offset}, but the file has {len} bytes")]
    SnapshotWriteNotAtEnd {
        /// The path.
        path: String,
        /// The offset asked for.
        offset: u64,
        /// The file's length.
        len: u64,
    },
    /// An import sink call out of the documented order.
    #[error("import call out of order: {what}")]
    ImportOutOfOrder {
        /// What came out of order.
        what: &'static str,
    },
    /// A peer the family cannot store as given (the `local` family stores a vote as braft
    /// PeerId text, which must parse and must not be the any peer).
    #[error("peer {peer:?} cannot be stored: {reason}")]
    BadPeer {
        /// The peer text.
        peer: String,
        /// Why.
        reason: &'static str,
    },
    /// An entry the family cannot store (braft's record length field is 32-bit).
    #[error("entry {index} cannot be stored: {reason}")]
    EntryTooLarge {
        /// The entry's index.
        index: Index,
        /// Why.
        reason: String,
    },
    /// A snapshot file whose first path segment is a name the family's own layout keeps for
    /// itself in a snapshot directory (the `local` family: braft's `__raft_snapshot_meta`
    /// and the files saved next to it), so that the file could not be where the snapshot
    /// lists it. The path is legal in the contract and the image; this family cannot store
    /// it, and refuses it before writing anything for it.
    #[error(
        "snapshot file {path:?} cannot be stored by the {family} family: {name:?} is the name \
         of the layout's own file in a snapshot directory"
    )]
    ReservedSnapshotPath {
        /// The path.
        path: String,
        /// The family refusing it.
        family: &'static str,
        /// The reserved name its first segment is.
        name: &'static str,
    },
    /// Import into an instance that is not empty.
    #[error("destination is not empty: {what}")]
    NotEmpty {
        /// What made it non-empty.
        what: String,
    },
}

/// Damage found in stored data: a record that is complete but wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("corruption in {} at byte {offset}: {what}", path.display())]
pub struct Corruption {
    /// The file (or database, for KV families) holding the damage.
    pub path: PathBuf,
    /// Byte offset of the damaged record within that file.
    pub offset: u64,
    /// What is wrong, in words.
    pub what: String,
}

/// Every error a storage call can return.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The call broke the contract's preconditions; nothing changed.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The file layer failed.
    #[error(transparent)]
    Vfs(#[from] VfsError),
    /// Stored data is damaged; the instance fails closed.
    #[error(transparent)]
    Corruption(#[from] Corruption),
    /// An earlier sync failed, so the instance refuses every mutation until it is reopened.
    #[error("instance poisoned by an earlier failure: {cause}")]
    Poisoned {
        /// The failure that poisoned it.
        cause: String,
    },
    /// A URI that no family accepts, or that its family cannot parse.
    #[error("bad URI {uri:?}: {reason}")]
    BadUri {
        /// The URI.
        uri: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A dual-write pair failed on one side, or refuses mutations because it diverged, or
    /// could not be formed (see [`crate::dual_write`]).
    #[error(transparent)]
    DualWrite(#[from] crate::dual_write::DualWriteError),
    /// The instance's lock is held by someone else: a second writer, or a reader while a
    /// writer has it (see [`crate::vfs::Vfs::try_lock`]).
    #[error("{}", locked_message(path, *wanted))]
    Locked {
        /// The lock file (`DIR/qk_lock`, or the redb database file itself).
        path: PathBuf,
        /// The lock that was refused: exclusive (a writer's) or shared (a reader's).
        wanted: crate::vfs::LockMode,
    },
    /// A failure a family reports that fits no other class (a database engine's error).
    #[error("{family} backend error: {message}")]
    Backend {
        /// The family's scheme.
        family: &'static str,
        /// The engine's message.
        message: String,
    },
}

fn locked_message(path: &std::path::Path, wanted: crate::vfs::LockMode) -> String {
    match wanted {
        crate::vfs::LockMode::Exclusive => format!(
            "{} is locked: another process has this instance open (a writer such as a node or \
             `qk image import`, or a reader such as `qk inspect`); only one writer at a time",
            path.display()
        ),
        crate::vfs::LockMode::Shared => format!(
            "{} is locked: a writer has this instance open (a node, `qk image import` or \
             `qk migrate`); a read-only open does not read under a live writer: stop it first, \
             or read a copy",
            path.display()
        ),
    }
}

impl StorageError {
    /// Whether this error reports damaged data (as opposed to an I/O or usage failure).
    pub fn is_corruption(&self) -> bool {
        matches!(self, StorageError::Corruption(_))
    }
}

/// Result of a storage call.
pub type StorageResult<T> = Result<T, StorageError>;
