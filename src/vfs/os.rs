//! `OsVfs`: the `Vfs` over `std::fs`, the only module allowed to touch the real file system.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{
    DirEntry, FileId, FileKind, LockMode, Metadata, OpenOptions, Vfs, VfsError, VfsErrorKind,
    VfsFile, VfsLock, VfsResult, WriteAtomicity,
};

/// The real file system. Paths are used as given (relative paths resolve against the
/// process's working directory).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsVfs;

impl OsVfs {
    /// A handle to the real file system.
    pub fn new() -> Self {
        OsVfs
    }
}

struct OsFile {
    file: fs::File,
    path: PathBuf,
    writable: bool,
}

impl Vfs for OsVfs {
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        let mut o = fs::OpenOptions::new();
        o.read(true)
            .write(options.write || options.create || options.create_new || options.truncate)
            .create(options.create && !options.create_new)
            .create_new(options.create_new)
            .truncate(options.truncate);
        let file = o.open(path).map_err(|e| VfsError::from_io("open", path, &e))?;
        if file.metadata().map_err(|e| VfsError::from_io("open", path, &e))?.is_dir() {
            return Err(VfsError::new("open", path, VfsErrorKind::IsADirectory));
        }
        let writable = options.write || options.create || options.create_new || options.truncate;
        Ok(Box::new(OsFile { file, path: path.to_path_buf(), writable }))
    }

    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        fs::create_dir(path).map_err(|e| VfsError::from_io("create_dir", path, &e))
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        let meta =
            fs::symlink_metadata(path).map_err(|e| VfsError::from_io("remove_file", path, &e))?;
        if meta.is_dir() {
            return Err(VfsError::new("remove_file", path, VfsErrorKind::IsADirectory));
        }
        fs::remove_file(path).map_err(|e| VfsError::from_io("remove_file", path, &e))
    }

    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        fs::remove_dir(path).map_err(|e| VfsError::from_io("remove_dir", path, &e))
    }

    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()> {
        fs::rename(from, to).map_err(|e| VfsError::from_io("rename", from, &e))
    }

    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        let iter = fs::read_dir(path).map_err(|e| VfsError::from_io("read_dir", path, &e))?;
        let mut entries = Vec::new();
        for item in iter {
            let item = item.map_err(|e| VfsError::from_io("read_dir", path, &e))?;
            let file_type =
                item.file_type().map_err(|e| VfsError::from_io("read_dir", path, &e))?;
            let name = item
                .file_name()
                .into_string()
                .map_err(|_| VfsError::new("read_dir", path, VfsErrorKind::InvalidInput))?;
            let kind = if file_type.is_dir() { FileKind::Dir } else { FileKind::File };
            entries.push(DirEntry { name, kind });
        }
        entries.sort();
        Ok(entries)
    }

    fn metadata(&self, path: &Path) -> VfsResult<Metadata> {
        let meta = fs::metadata(path).map_err(|e| VfsError::from_io("metadata", path, &e))?;
        // Birth time where the file system records one (statx); 0 (unknown) elsewhere.
        let birth = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let id = FileId { ino: meta.ino(), birth };
        if meta.is_dir() {
            Ok(Metadata { kind: FileKind::Dir, len: 0, id })
        } else {
            Ok(Metadata { kind: FileKind::File, len: meta.len(), id })
        }
    }

    fn sync_dir(&self, path: &Path) -> VfsResult<()> {
        let dir = fs::File::open(path).map_err(|e| VfsError::from_io("sync_dir", path, &e))?;
        dir.sync_all().map_err(|e| VfsError::from_io("sync_dir", path, &e))
    }

    /// `flock(2)` through `File::try_lock` / `try_lock_shared` on a descriptor opened
    /// read-only for the purpose (so a lock needs no write permission); the guard owns the
    /// descriptor, and closing it (or the process dying) releases the lock.
    /// A real disk keeps whatever promise its hardware makes: nothing to do.
    fn declare_write_atomicity(&self, _path: &Path, _atomicity: WriteAtomicity) -> VfsResult<()> {
        Ok(())
    }

    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        let file = fs::File::open(path).map_err(|e| VfsError::from_io("try_lock", path, &e))?;
        if file.metadata().map_err(|e| VfsError::from_io("try_lock", path, &e))?.is_dir() {
            return Err(VfsError::new("try_lock", path, VfsErrorKind::IsADirectory));
        }
        let locked = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match locked {
            Ok(()) => Ok(Box::new(OsLock { file, path: path.to_path_buf(), mode })),
            Err(fs::TryLockError::WouldBlock) => {
                Err(VfsError::new("try_lock", path, VfsErrorKind::Locked))
            }
            Err(fs::TryLockError::Error(e)) => Err(VfsError::from_io("try_lock", path, &e)),
        }
    }
}

/// A held `flock`: released explicitly when dropped (see the `Drop` impl).
struct OsLock {
    file: fs::File,
    path: PathBuf,
    mode: LockMode,
}

impl Drop for OsLock {
    /// Unlocks before the descriptor closes. Closing alone is not enough: a `flock` belongs
    /// to the open file description, and a child process forked by another thread at that
    /// moment holds a copy of the descriptor until its `exec` closes it, so the lock would
    /// outlive this holder by that window (a reopen right after a drop then met `Locked`
    /// while a test spawned `qk`). An unlock through any copy releases it for all.
    fn drop(&mut self) {
        // Nothing useful to do on failure: the close that follows releases it anyway.
        let _ = self.file.unlock();
    }
}

impl VfsLock for OsLock {
    fn path(&self) -> &Path {
        &self.path
    }

    fn mode(&self) -> LockMode {
        self.mode
    }
}

impl OsFile {
    fn check_writable(&self, op: &'static str) -> VfsResult<()> {
        if self.writable {
            Ok(())
        } else {
            Err(VfsError::new(op, &self.path, VfsErrorKind::PermissionDenied))
        }
    }
}

impl VfsFile for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(VfsError::from_io("read_at", &self.path, &e)),
            }
        }
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> VfsResult<()> {
        self.check_writable("write_at")?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| VfsError::from_io("write_at", &self.path, &e))
    }

    fn len(&self) -> VfsResult<u64> {
        Ok(self.file.metadata().map_err(|e| VfsError::from_io("len", &self.path, &e))?.len())
    }

    fn set_len(&self, len: u64) -> VfsResult<()> {
        self.check_writable("set_len")?;
        self.file.set_len(len).map_err(|e| VfsError::from_io("set_len", &self.path, &e))
    }

    fn sync(&self) -> VfsResult<()> {
        self.file.sync_all().map_err(|e| VfsError::from_io("sync", &self.path, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock dropped while another descriptor of its open file description lives on (what
    /// a child forked by another thread holds until its `exec`) is released all the same.
    #[test]
    fn a_dropped_lock_is_released_even_while_a_copy_of_its_descriptor_lives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        fs::write(&path, b"").expect("create");
        let file = fs::File::open(&path).expect("open");
        file.try_lock().expect("first lock");
        // The stand-in for a forked child's copy: another fd, the same open file description.
        let copy = file.try_clone().expect("dup");
        drop(OsLock { file, path: path.clone(), mode: LockMode::Exclusive });
        let again = OsVfs::new().try_lock(&path, LockMode::Exclusive);
        assert!(again.is_ok(), "the lock outlived its holder: {:?}", again.err());
        drop(copy);
    }
}
