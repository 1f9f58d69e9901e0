//! The file system under [`PlantedBug::NoLock`](super::PlantedBug::NoLock): every
//! lock is granted at once and holds nothing, as if the family never locked.

use std::path::{Path, PathBuf};

use crate::delegate::delegate_vfs;
use crate::vfs::{LockMode, Vfs, VfsHandle, VfsLock, VfsResult};

/// A file system whose `try_lock` always succeeds without locking.
pub(crate) struct NoLocks {
    pub(crate) inner: VfsHandle,
}

impl Vfs for NoLocks {
    delegate_vfs!(
        inner: open,
        create_dir,
        remove_file,
        remove_dir,
        rename,
        read_dir,
        metadata,
        sync_dir,
        declare_write_atomicity
    );

    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        Ok(Box::new(NoLock { path: path.to_path_buf(), mode }))
    }
}

/// A lock that holds nothing.
struct NoLock {
    path: PathBuf,
    mode: LockMode,
}

impl VfsLock for NoLock {
    fn path(&self) -> &Path {
        &self.path
    }

    fn mode(&self) -> LockMode {
        self.mode
    }
}
