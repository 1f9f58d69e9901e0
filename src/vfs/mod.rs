//! The `Vfs` seam: the one way every family touches files and directories.
//!
//! Durability, per method (the contract a simulated disk enforces and a real disk keeps):
//! - [`VfsFile::write_at`] and [`VfsFile::set_len`] change what the process sees at once;
//!   they are durable only after [`VfsFile::sync`] on that file.
//! - [`Vfs::open`] with `create`, [`Vfs::rename`], [`Vfs::remove_file`], [`Vfs::create_dir`]
//!   and [`Vfs::remove_dir`] change a directory's entries; those changes are durable only
//!   after [`Vfs::sync_dir`] on the parent directory (for a rename, both parents).
//! - [`Vfs::read_dir`] returns entries sorted by name (byte order), never `.` or `..`.
//! - After a failed `sync` the data it covered may be gone even if a later `sync` succeeds
//!   (fsyncgate): callers must treat the first failure as final.
//!
//! Locks ([`Vfs::try_lock`]) have `flock` semantics: advisory, on an existing file (the
//! inode, so a lock follows a rename), shared or exclusive, never waiting, and released when
//! the returned guard is dropped or the process dies (on the simulated disk: at a crash).
//! They are process state, not disk state: nothing about them is durable.
//!
//! Families hold a [`VfsHandle`] (a shared `Arc<dyn Vfs>`), so the same code runs on
//! [`OsVfs`] and on the simulated disk.
//!
//! Wrappers for opening read-only: [`ReadOnlyVfs`] refuses every mutating call;
//! [`OverlayVfs`] keeps changes in memory over a base it only reads (so a family's ordinary
//! open, run on it, shows what recovery would produce); [`JournalVfs`] writes down what an
//! open changed, as [`Repair`]s.

mod error;
mod journal;
mod os;
mod overlay;
mod read_only;
pub mod sim;

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

pub use error::{VfsError, VfsErrorKind, VfsResult};
pub use journal::{JournalVfs, Repair, RepairAction};
pub use os::OsVfs;
pub use overlay::OverlayVfs;
pub use read_only::ReadOnlyVfs;
pub use sim::{
    CrashFates, CrashPersistence, CrashState, CrashStates, CrashSummary, CrashUnit, DiskOp,
    DiskTimeline, EnumerateError, EnumerateOptions, Fate, FaultKind, FaultPlan, FaultRate,
    FaultStats, FaultStreams, Image, ListingEntry, Mark, SimDisk, SimDiskOptions, SimObserver,
    FSYNC_LOSS_STREAK_MAX,
};

/// A shared handle to a file system.
pub type VfsHandle = Arc<dyn Vfs>;

/// How [`Vfs::open`] opens a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Create the file if it does not exist.
    pub create: bool,
    /// Fail with `AlreadyExists` if the file exists (implies `create`).
    pub create_new: bool,
    /// Cut the file to zero length on open.
    pub truncate: bool,
    /// Open for writing (reads are always allowed).
    pub write: bool,
}

impl OpenOptions {
    /// Read-only open of an existing file.
    pub const READ: OpenOptions =
        OpenOptions { create: false, create_new: false, truncate: false, write: false };
    /// Read-write open of an existing file.
    pub const WRITE: OpenOptions =
        OpenOptions { create: false, create_new: false, truncate: false, write: true };
    /// Read-write open, creating the file if absent.
    pub const CREATE: OpenOptions =
        OpenOptions { create: true, create_new: false, truncate: false, write: true };
    /// Read-write open of a new file; fails if it exists.
    pub const CREATE_NEW: OpenOptions =
        OpenOptions { create: true, create_new: true, truncate: false, write: true };
    /// Read-write open, creating the file if absent and cutting it to zero length.
    pub const CREATE_TRUNCATE: OpenOptions =
        OpenOptions { create: true, create_new: false, truncate: true, write: true };
}

/// What a directory entry or path is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// One entry of [`Vfs::read_dir`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    /// The entry's name (one path segment).
    pub name: String,
    /// File or directory.
    pub kind: FileKind,
}

/// What [`Vfs::metadata`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// File or directory.
    pub kind: FileKind,
    /// Length in bytes (0 for directories).
    pub len: u64,
    /// Which file (inode) the path names now.
    pub id: FileId,
}

/// The identity of a file or directory (its inode), which a path can be pointed at anew:
/// writes, `set_len`, renames, reopening and power losses keep it; creating a file makes a
/// new one, so a file replaced by tmp + rename has another id than the file it replaced.
///
/// - `ino`: the inode number (`OsVfs`: `st_ino`; `SimDisk`: the node id). A file system may
///   reuse the number of a deleted inode for a new one.
/// - `birth`: when the inode was created, as a stamp that never decreases for inodes
///   created later (`OsVfs`: the birth time `statx` reports, in nanoseconds since the Unix
///   epoch, or 0 where the file system records none; `SimDisk`: the node id, a counter
///   that is never reused). Together with `ino` it tells a reused number apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Inode number.
    pub ino: u64,
    /// Creation stamp (0: unknown).
    pub birth: u64,
}

/// How [`Vfs::try_lock`] locks a file: any number of shared holders, or one exclusive holder.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// Readers: compatible with other shared holders, refused while an exclusive one holds.
    Shared,
    /// One writer: refused while anyone else holds the file, shared or exclusive.
    Exclusive,
}

impl std::fmt::Display for LockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        })
    }
}

/// A held lock from [`Vfs::try_lock`]; dropping it releases the lock.
pub trait VfsLock: Send + Sync {
    /// The path the lock was taken by.
    fn path(&self) -> &Path;
    /// How it is held.
    fn mode(&self) -> LockMode;
}

impl std::fmt::Debug for dyn VfsLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VfsLock({} {})", self.mode(), self.path().display())
    }
}

/// The smallest write a format relies on being atomic at a power loss (see
/// [`Vfs::declare_write_atomicity`]): each aligned unit of an unsynced write survives whole
/// or not at all, and bytes outside the write never change (powersafe overwrite).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteAtomicity {
    /// A whole sector, as disks promise (the default: what every file gets undeclared).
    #[default]
    Sector,
    /// Only aligned runs of this many bytes (a power of two, at most a sector; 1 is a
    /// single byte, which is what redb's design assumes).
    Bytes(u32),
}

impl WriteAtomicity {
    /// The tear unit on a disk with `sector_size`-byte sectors: the declared bytes rounded
    /// down to a power of two, at least 1 and at most a sector.
    pub fn unit(self, sector_size: u32) -> u32 {
        match self {
            WriteAtomicity::Sector => sector_size,
            WriteAtomicity::Bytes(n) => {
                let n = n.clamp(1, sector_size);
                1 << (31 - n.leading_zeros())
            }
        }
    }
}

impl std::fmt::Display for WriteAtomicity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteAtomicity::Sector => f.write_str("sector"),
            WriteAtomicity::Bytes(n) => write!(f, "{n} B"),
        }
    }
}

/// A file system: directories and names. Implementations must be deterministic for a given
/// sequence of calls (the simulated disk) or faithful to the OS (`OsVfs`).
pub trait Vfs: Send + Sync {
    /// Opens a file. Creating one adds a directory entry, durable after `sync_dir(parent)`.
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>>;
    /// Creates one directory; the parent must exist. Durable after `sync_dir(parent)`.
    fn create_dir(&self, path: &Path) -> VfsResult<()>;
    /// Removes a file. Durable after `sync_dir(parent)`.
    fn remove_file(&self, path: &Path) -> VfsResult<()>;
    /// Removes an empty directory. Durable after `sync_dir(parent)`.
    fn remove_dir(&self, path: &Path) -> VfsResult<()>;
    /// Renames a file or directory, replacing an existing file at `to` atomically (a
    /// directory may only replace an empty directory). Durable after `sync_dir` of both
    /// parents.
    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()>;
    /// Lists a directory, sorted by name.
    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>>;
    /// Kind, length and [`FileId`] of a path; `NotFound` when absent.
    fn metadata(&self, path: &Path) -> VfsResult<Metadata>;
    /// Makes the directory's entries (creates, renames, removals in it) durable.
    fn sync_dir(&self, path: &Path) -> VfsResult<()>;
    /// Locks the existing file `path` in `mode` without waiting (`flock(LOCK_NB)`): fails with
    /// [`VfsErrorKind::Locked`] while an incompatible lock is held (by anyone, this process
    /// included), `NotFound` when the file is absent. The lock holds until the guard drops
    /// or the process dies; it changes nothing on disk.
    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>>;
    /// Declares the write atomicity the caller's on-disk format assumes for the existing file
    /// `path` (the inode it names now, which keeps it through renames). Not an I/O operation:
    /// a real file system ignores it (it is a claim about the medium, not a request to it);
    /// the simulated disk tears that file's unsynced writes at this unit at a power loss,
    /// never at a finer one. Wrappers must forward it to the file system that holds the file.
    fn declare_write_atomicity(&self, path: &Path, atomicity: WriteAtomicity) -> VfsResult<()>;

    /// Whether `path` exists. A convenience over [`Vfs::metadata`].
    fn exists(&self, path: &Path) -> VfsResult<bool> {
        match self.metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind == VfsErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates `path` and any missing parents, syncing each parent whose entries changed,
    /// so the whole chain is durable when this returns. A directory that another process
    /// creates meanwhile counts as created (its creator syncs it); a file there does not.
    fn create_dir_all(&self, path: &Path) -> VfsResult<()> {
        if self.exists(path)? {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                self.create_dir_all(parent)?;
            }
        }
        match self.create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind == VfsErrorKind::AlreadyExists => {
                return match self.metadata(path)?.kind {
                    FileKind::Dir => Ok(()),
                    FileKind::File => Err(e),
                };
            }
            Err(e) => return Err(e),
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        self.sync_dir(parent)
    }
}

/// An open file. Reads and writes are positional; there is no cursor.
pub trait VfsFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at or past the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize>;
    /// Writes all of `buf` at `offset`, extending the file (a gap reads as zeros). Visible
    /// at once, durable after `sync`.
    fn write_at(&self, buf: &[u8], offset: u64) -> VfsResult<()>;
    /// The file's current (visible) length.
    fn len(&self) -> VfsResult<u64>;
    /// Sets the length: cuts, or extends with zeros. Durable after `sync`.
    fn set_len(&self, len: u64) -> VfsResult<()>;
    /// Makes the file's data and length durable (fsync).
    fn sync(&self) -> VfsResult<()>;

    /// Whether the file is empty.
    fn is_empty(&self) -> VfsResult<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(VfsError::new(
                    "read_exact_at",
                    "<open file>",
                    VfsErrorKind::UnexpectedEof,
                ));
            }
            done += n;
        }
        Ok(())
    }

    /// Reads the whole file.
    fn read_all(&self) -> VfsResult<Vec<u8>> {
        let len = self.len()?;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        self.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
}
