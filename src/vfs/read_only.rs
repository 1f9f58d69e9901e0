//! `ReadOnlyVfs`: a view of another `Vfs` that refuses every mutating call.
//!
//! What a read-only open stands on. Every call that could change the disk fails with
//! [`VfsErrorKind::ReadOnly`] before it reaches the base: `open` for writing or with create,
//! create_new or truncate, `create_dir`, `remove_file`, `remove_dir`, `rename`, `sync_dir`, and
//! on files `write_at`, `set_len` and `sync`. Files are opened read-only on the base (so it
//! works where the process may read but not write: permissions, a read-only mount, a backup).
//! A lock is always taken shared: whoever looks through this view is a reader.

use std::path::Path;

use super::{
    DirEntry, LockMode, Metadata, OpenOptions, Vfs, VfsError, VfsErrorKind, VfsFile, VfsHandle,
    VfsLock, VfsResult, WriteAtomicity,
};

/// A `Vfs` that forwards reads to `base` and refuses every mutating call (see the module doc).
pub struct ReadOnlyVfs {
    base: VfsHandle,
}

impl ReadOnlyVfs {
    /// A read-only view of `base`.
    pub fn new(base: VfsHandle) -> Self {
        ReadOnlyVfs { base }
    }
}

fn refused(op: &'static str, path: &Path) -> VfsError {
    VfsError::new(op, path, VfsErrorKind::ReadOnly)
}

impl Vfs for ReadOnlyVfs {
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        if options.write || options.create || options.create_new || options.truncate {
            return Err(refused("open", path));
        }
        let file = self.base.open(path, OpenOptions::READ)?;
        Ok(Box::new(ReadOnlyFile { file, path: path.to_path_buf() }))
    }

    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        Err(refused("create_dir", path))
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        Err(refused("remove_file", path))
    }

    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        Err(refused("remove_dir", path))
    }

    fn rename(&self, from: &Path, _to: &Path) -> VfsResult<()> {
        Err(refused("rename", from))
    }

    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        self.base.read_dir(path)
    }

    fn metadata(&self, path: &Path) -> VfsResult<Metadata> {
        self.base.metadata(path)
    }

    fn sync_dir(&self, path: &Path) -> VfsResult<()> {
        Err(refused("sync_dir", path))
    }

    /// Always a shared lock on the base, whatever `mode` asks: a reader must not keep a
    /// writer out for longer than it reads, nor take the writer's exclusive lock.
    /// A declaration is not I/O: forwarded (a read-only open writes nothing to tear anyway).
    fn declare_write_atomicity(&self, path: &Path, atomicity: WriteAtomicity) -> VfsResult<()> {
        self.base.declare_write_atomicity(path, atomicity)
    }

    fn try_lock(&self, path: &Path, _mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        self.base.try_lock(path, LockMode::Shared)
    }
}

/// A file of a [`ReadOnlyVfs`]: reads forwarded, writes refused.
struct ReadOnlyFile {
    file: Box<dyn VfsFile>,
    path: std::path::PathBuf,
}

impl VfsFile for ReadOnlyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        self.file.read_at(buf, offset)
    }

    fn write_at(&self, _buf: &[u8], _offset: u64) -> VfsResult<()> {
        Err(refused("write_at", &self.path))
    }

    fn len(&self) -> VfsResult<u64> {
        self.file.len()
    }

    fn set_len(&self, _len: u64) -> VfsResult<()> {
        Err(refused("set_len", &self.path))
    }

    fn sync(&self) -> VfsResult<()> {
        Err(refused("sync", &self.path))
    }
}
