//! Typed file-layer errors naming the operation and path.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// What went wrong in a file-layer call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VfsErrorKind {
    /// The path does not exist.
    NotFound,
    /// The path exists and the call needed it not to.
    AlreadyExists,
    /// A directory was expected.
    NotADirectory,
    /// A file was expected.
    IsADirectory,
    /// `remove_dir` or a directory rename onto a non-empty directory.
    DirectoryNotEmpty,
    /// The device reported an I/O error (EIO).
    Io,
    /// No space left on the device (ENOSPC).
    NoSpace,
    /// A read ended before the bytes asked for.
    UnexpectedEof,
    /// The handle belongs to a disk image discarded by a crash.
    Crashed,
    /// A write on a read-only handle, or another forbidden use.
    PermissionDenied,
    /// Bad argument (an invalid path, a length that does not fit).
    InvalidInput,
    /// [`Vfs::try_lock`](super::Vfs::try_lock): another holder has an incompatible lock.
    Locked,
    /// A mutating call refused by a read-only file system view
    /// ([`ReadOnlyVfs`](super::ReadOnlyVfs)).
    ReadOnly,
    /// Anything else the OS reported.
    Other,
}

impl fmt::Display for VfsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            VfsErrorKind::NotFound => "not found",
            VfsErrorKind::AlreadyExists => "already exists",
            VfsErrorKind::NotADirectory => "not a directory",
            VfsErrorKind::IsADirectory => "is a directory",
            VfsErrorKind::DirectoryNotEmpty => "directory not empty",
            VfsErrorKind::Io => "I/O error (EIO)",
            VfsErrorKind::NoSpace => "no space left on device (ENOSPC)",
            VfsErrorKind::UnexpectedEof => "unexpected end of file",
            VfsErrorKind::Crashed => "handle from before a crash",
            VfsErrorKind::PermissionDenied => "permission denied",
            VfsErrorKind::InvalidInput => "invalid input",
            VfsErrorKind::Locked => "locked by another holder",
            VfsErrorKind::ReadOnly => "refused: opened read-only",
            VfsErrorKind::Other => "other error",
        };
        f.write_str(text)
    }
}

/// A file-layer error: which operation, on which path, and what kind of failure.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{op} {}: {kind}{}", path.display(), detail_suffix(detail))]
pub struct VfsError {
    /// The operation (`open`, `write_at`, `sync_dir`, ...).
    pub op: &'static str,
    /// The path it was applied to.
    pub path: PathBuf,
    /// The failure class.
    pub kind: VfsErrorKind,
    /// The OS's own message, when there is one.
    pub detail: Option<String>,
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
}

impl VfsError {
    /// An error of `kind` from `op` on `path`.
    pub fn new(op: &'static str, path: impl AsRef<Path>, kind: VfsErrorKind) -> Self {
        VfsError { op, path: path.as_ref().to_path_buf(), kind, detail: None }
    }

    /// Maps an OS error from `op` on `path`.
    pub fn from_io(op: &'static str, path: impl AsRef<Path>, err: &io::Error) -> Self {
        let kind = match err.kind() {
            io::ErrorKind::NotFound => VfsErrorKind::NotFound,
            io::ErrorKind::AlreadyExists => VfsErrorKind::AlreadyExists,
            io::ErrorKind::NotADirectory => VfsErrorKind::NotADirectory,
            io::ErrorKind::IsADirectory => VfsErrorKind::IsADirectory,
            io::ErrorKind::DirectoryNotEmpty => VfsErrorKind::DirectoryNotEmpty,
            io::ErrorKind::StorageFull => VfsErrorKind::NoSpace,
            io::ErrorKind::UnexpectedEof => VfsErrorKind::UnexpectedEof,
            io::ErrorKind::PermissionDenied => VfsErrorKind::PermissionDenied,
            io::ErrorKind::InvalidInput => VfsErrorKind::InvalidInput,
            _ if err.raw_os_error() == Some(5) => VfsErrorKind::Io,
            _ => VfsErrorKind::Other,
        };
        VfsError { op, path: path.as_ref().to_path_buf(), kind, detail: Some(err.to_string()) }
    }
}

/// Result of a file-layer call.
pub type VfsResult<T> = Result<T, VfsError>;
