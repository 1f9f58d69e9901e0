//! `VfsBackend`: redb's [`redb::StorageBackend`] over a [`VfsFile`], so a redb database file
//! lives on `OsVfs` or on the simulated disk alike.
//!
//! redb's seam is one flat file with no directories, so the parts of durability that live in
//! a directory (the create and the rename that publish a new database file) are done by the
//! family with [`Vfs::sync_dir`]; this module only offers [`sync_parent_dir`].
//!
//! **The latch.** Like redb's own `CheckedBackend`, the backend latches the first I/O error it
//! sees (read, write, length change or sync). From then on every call fails with that error
//! until the database is closed and reopened. That is the "fsyncgate" rule: after a failed
//! sync the page cache may have dropped the dirty data, so a retried sync that reports success
//! proves nothing. The family shares the [`IoLatch`] and reports a latched instance as
//! poisoned.
//!
//! **Stale pages.** Every write and read passes through a [`PageLedger`]; a read whose bytes
//! differ from what this session last wrote or read at that extent (a misdirected write, bit
//! rot) is damage: the backend records it in the latch, fails the read, and the family reports
//! [`crate::contract::Corruption`] at that offset.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::ledger::PageLedger;
use crate::vfs::{Vfs, VfsError, VfsErrorKind, VfsFile, VfsResult};

/// The first I/O error a backend saw, shared between the backend and the family instance.
///
/// It also records that redb panicked (see [`IoLatch::break_engine`]): not an I/O error, but
/// equally a reason to refuse every later mutation until the database is reopened.
#[derive(Debug, Default)]
pub struct IoLatch {
    first: Mutex<Option<VfsError>>,
    engine_broken: Mutex<Option<String>>,
    damage: Mutex<Option<Damage>>,
}

thread_local! {
    /// Read scopes open on this thread (see [`reading`]). Per thread, so a commit running on
    /// another thread while this one reads latches its write errors as usual.
    static READ_SCOPES: Cell<usize> = const { Cell::new(0) };
}

/// A read scope of the family on this thread: while one is open, a failed write is not
/// latched (see [`reading`]).
pub struct ReadScope(());

impl Drop for ReadScope {
    fn drop(&mut self) {
        READ_SCOPES.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Opens a read scope on this thread, for a read transaction's calls. redb writes back
/// buffered pages of an earlier commit's non-durable epilogue while it reads, best effort:
/// on a write error it keeps the page buffered and ignores the error, and no durable root
/// names the page. So a write that fails inside a read scope is returned to redb but not
/// latched: it must not fail the read, nor every call after it. The next commit writes the
/// page again, and a failure there is latched as usual.
pub fn reading() -> ReadScope {
    READ_SCOPES.with(|n| n.set(n.get() + 1));
    ReadScope(())
}

fn in_read_scope() -> bool {
    READ_SCOPES.with(|n| n.get() > 0)
}

/// Bytes the backend read back that differ from what it last wrote or read there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// File offset of the damaged extent.
    pub offset: u64,
    /// What was found, in words.
    pub what: String,
}

impl IoLatch {
    /// A latch that has seen no error.
    pub fn new() -> Arc<Self> {
        Arc::new(IoLatch::default())
    }

    /// The latched error, if any.
    pub fn get(&self) -> Option<VfsError> {
        match self.first.lock() {
            Ok(guard) => guard.clone(),
            // A panic while holding the lock: treat the instance as failed.
            Err(_) => Some(VfsError::new("latch", "<redb backend>", VfsErrorKind::Other)),
        }
    }

    /// Records that redb panicked (`what` says how); the first record is kept.
    pub fn break_engine(&self, what: String) {
        if let Ok(mut guard) = self.engine_broken.lock() {
            guard.get_or_insert(what);
        }
    }

    /// Why the engine is broken, if redb panicked.
    pub fn engine_broken(&self) -> Option<String> {
        match self.engine_broken.lock() {
            Ok(guard) => guard.clone(),
            Err(_) => Some("the engine latch was poisoned".to_string()),
        }
    }

    /// Records damage found by a read; the first record is kept.
    pub fn record_damage(&self, damage: Damage) {
        if let Ok(mut guard) = self.damage.lock() {
            guard.get_or_insert(damage);
        }
    }

    /// The damage a read found, if any.
    pub fn damage(&self) -> Option<Damage> {
        match self.damage.lock() {
            Ok(guard) => guard.clone(),
            Err(_) => Some(Damage { offset: 0, what: "the damage latch was poisoned".into() }),
        }
    }

    /// Latches `error` unless an earlier one is already latched; returns the latched one.
    fn latch(&self, error: VfsError) -> VfsError {
        match self.first.lock() {
            Ok(mut guard) => guard.get_or_insert(error).clone(),
            Err(_) => error,
        }
    }
}

/// A redb storage backend over one [`VfsFile`].
pub struct VfsBackend {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    latch: Arc<IoLatch>,
    ledger: Mutex<PageLedger>,
    /// Refuse every write, length change and sync (a read-only open).
    read_only: bool,
}

impl fmt::Debug for VfsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfsBackend").field("path", &self.path).finish_non_exhaustive()
    }
}

impl VfsBackend {
    /// Wraps an open file; `path` names it in errors, `latch` records its first I/O error.
    pub fn new(file: Box<dyn VfsFile>, path: impl Into<PathBuf>, latch: Arc<IoLatch>) -> Self {
        let ledger = Mutex::new(PageLedger::new());
        VfsBackend { file, path: path.into(), latch, ledger, read_only: false }
    }

    /// A backend that only reads: `write`, `set_len` and `sync_data` fail with `ReadOnly`
    /// before reaching the file (redb's read-only open should never call them; this makes
    /// sure), and are not latched.
    pub fn read_only(
        file: Box<dyn VfsFile>,
        path: impl Into<PathBuf>,
        latch: Arc<IoLatch>,
    ) -> Self {
        VfsBackend { read_only: true, ..VfsBackend::new(file, path, latch) }
    }

    fn refuse_if_read_only(&self, op: &'static str) -> io::Result<()> {
        if self.read_only {
            return Err(to_io(VfsError::new(op, &self.path, VfsErrorKind::ReadOnly)));
        }
        Ok(())
    }

    /// Runs one file operation: fails at once when an error or damage is latched, latches a
    /// new error.
    fn guarded<T>(&self, op: impl FnOnce(&dyn VfsFile) -> VfsResult<T>) -> io::Result<T> {
        if let Some(latched) = self.latch.get() {
            return Err(to_io(latched));
        }
        if let Some(damage) = self.latch.damage() {
            return Err(self.damage_error(&damage));
        }
        op(self.file.as_ref()).map_err(|e| to_io(self.latch.latch(e)))
    }

    /// The error a read returns once damage is found (the family reports the latched
    /// [`Damage`] itself, as corruption).
    fn damage_error(&self, damage: &Damage) -> io::Error {
        io::Error::other(format!(
            "{}: damaged at offset {}: {}",
            self.path.display(),
            damage.offset,
            damage.what
        ))
    }

    /// Updates the ledger under its lock (a poisoned lock only means a panic elsewhere; the
    /// map itself is always consistent between calls).
    fn ledger<T>(&self, f: impl FnOnce(&mut PageLedger) -> T) -> T {
        let mut guard = self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// Maps a file-layer error to the `io::Error` redb expects, keeping the original as its source.
fn to_io(error: VfsError) -> io::Error {
    let kind = match error.kind {
        VfsErrorKind::NotFound => io::ErrorKind::NotFound,
        VfsErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
        VfsErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
        VfsErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
        VfsErrorKind::UnexpectedEof => io::ErrorKind::UnexpectedEof,
        VfsErrorKind::NoSpace => io::ErrorKind::StorageFull,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}

impl redb::StorageBackend for VfsBackend {
    fn len(&self) -> io::Result<u64> {
        self.guarded(|f| f.len())
    }

    /// Reads exactly `out.len()` bytes; a read past the end fails (redb relies on that).
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let path = self.path.clone();
        self.guarded(|f| {
            let mut done = 0;
            while done < out.len() {
                let n = f.read_at(&mut out[done..], offset + done as u64)?;
                if n == 0 {
                    return Err(VfsError {
                        op: "read",
                        path,
                        kind: VfsErrorKind::UnexpectedEof,
                        detail: Some(format!(
                            "read of {} bytes at {offset} passes the end of the file",
                            out.len()
                        )),
                    });
                }
                done += n;
            }
            Ok(())
        })?;
        if let Err(m) = self.ledger(|l| l.read(offset, out)) {
            crate::coverage::hit(crate::coverage::Point::RedbStalePageCaught);
            let damage = Damage {
                offset: m.offset,
                what: format!(
                    "{} bytes read back differ from what this session last wrote or read \
                     there (a misdirected write or rot)",
                    m.len
                ),
            };
            self.latch.record_damage(damage.clone());
            return Err(self.damage_error(&damage));
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.refuse_if_read_only("set_len")?;
        self.guarded(|f| f.set_len(len))?;
        self.ledger(|l| l.resized(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.refuse_if_read_only("sync")?;
        self.guarded(|f| f.sync())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.refuse_if_read_only("write_at")?;
        // Forget the old bytes first: a failed write may have changed the extent anyway.
        self.ledger(|l| l.wrote(offset, data));
        if in_read_scope() {
            // A best-effort writeback during a read (see [`reading`]): fail it
            // without latching, and forget the extent, which now holds old or torn bytes.
            self.guarded(|_| Ok(()))?;
            return self.file.write_at(data, offset).map_err(|e| {
                self.ledger(|l| l.forget(offset, data.len() as u64));
                to_io(e)
            });
        }
        self.guarded(|f| f.write_at(data, offset))
    }

    fn close(&self) -> io::Result<()> {
        Ok(())
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Makes the directory entries around `path` (its creation, a rename onto it) durable.
pub fn sync_parent_dir(vfs: &dyn Vfs, path: &Path) -> VfsResult<()> {
    vfs.sync_dir(parent_dir(path))
}
