//! The file system of `skip-fsync` and `skip-dir-sync`: syncs that silently do nothing.

use std::path::Path;

use crate::delegate::{delegate_vfs, delegate_vfs_file};
use crate::vfs::{OpenOptions, Vfs, VfsFile, VfsHandle, VfsResult};

/// A file system whose file syncs and/or directory syncs silently do nothing: the family
/// believes its data durable when it is not.
pub(super) struct LostSyncs {
    pub(super) inner: VfsHandle,
    pub(super) files: bool,
    pub(super) dirs: bool,
}

impl Vfs for LostSyncs {
    delegate_vfs!(
        inner: create_dir,
        remove_file,
        remove_dir,
        rename,
        read_dir,
        metadata,
        try_lock,
        declare_write_atomicity
    );

    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        let file = self.inner.open(path, options)?;
        if self.files {
            Ok(Box::new(UnsyncedFile { inner: file }))
        } else {
            Ok(file)
        }
    }

    fn sync_dir(&self, path: &Path) -> VfsResult<()> {
        if self.dirs {
            return Ok(());
        }
        self.inner.sync_dir(path)
    }
}

/// A file whose `sync` silently does nothing.
struct UnsyncedFile {
    inner: Box<dyn VfsFile>,
}

impl VfsFile for UnsyncedFile {
    delegate_vfs_file!(inner: read_at, write_at, len, set_len);

    fn sync(&self) -> VfsResult<()> {
        Ok(())
    }
}
