//! File helpers over the `Vfs`: bounded reads, the tmp + fsync + rename + directory-fsync
//! write, recursive removal, and the shared handles that let a pinned export cut keep
//! reading a segment file or snapshot directory the live instance has moved on from.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::contract::{Corruption, StorageError, StorageResult};
use crate::vfs::{FileKind, OpenOptions, VfsErrorKind, VfsFile, VfsHandle};

use super::format::tmp_name;

/// A [`Corruption`] error for `path` at `offset`.
pub fn corruption(path: &Path, offset: u64, what: impl Into<String>) -> StorageError {
    StorageError::Corruption(Corruption { path: path.to_path_buf(), offset, what: what.into() })
}

/// Reads exactly `buf.len()` bytes at `offset`; an error names `path`.
pub fn read_exact(
    file: &dyn VfsFile,
    buf: &mut [u8],
    offset: u64,
    path: &Path,
) -> StorageResult<()> {
    file.read_exact_at(buf, offset).map_err(|mut e| {
        e.path = path.to_path_buf();
        e.into()
    })
}

/// Reads a whole file, or `None` when it does not exist. A file longer than `len_max` is
/// reported as corruption instead of being read.
pub fn read_file(vfs: &VfsHandle, path: &Path, len_max: u64) -> StorageResult<Option<Vec<u8>>> {
    let file = match vfs.open(path, OpenOptions::READ) {
        Ok(f) => f,
        Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = file.len()?;
    if len > len_max {
        return Err(corruption(path, 0, format!("{len} bytes, more than the {len_max} allowed")));
    }
    let mut buf = vec![0u8; len as usize];
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], done as u64)?;
        if n == 0 {
            buf.truncate(done);
            break;
        }
        done += n;
    }
    Ok(Some(buf))
}

/// Writes `bytes` to `dir/name` so that a crash leaves the old or the new content: write
/// `name.tmp`, fsync it, rename it over `name`, fsync `dir`.
pub fn write_atomic(vfs: &VfsHandle, dir: &Path, name: &str, bytes: &[u8]) -> StorageResult<()> {
    let tmp = dir.join(tmp_name(name));
    let file = vfs.open(&tmp, OpenOptions::CREATE_TRUNCATE)?;
    file.write_at(bytes, 0)?;
    file.sync()?;
    drop(file);
    vfs.rename(&tmp, &dir.join(name))?;
    vfs.sync_dir(dir)?;
    Ok(())
}

/// Removes `path` if present; returns whether it was there. The caller syncs the parent.
pub fn remove_file_if_present(vfs: &VfsHandle, path: &Path) -> StorageResult<bool> {
    match vfs.remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind == VfsErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes a directory tree if present (children first). The caller syncs the parent.
pub fn remove_dir_all(vfs: &VfsHandle, path: &Path) -> StorageResult<()> {
    let entries = match vfs.read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let child = path.join(&entry.name);
        match entry.kind {
            FileKind::Dir => remove_dir_all(vfs, &child)?,
            FileKind::File => {
                remove_file_if_present(vfs, &child)?;
            }
        }
    }
    match vfs.remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind == VfsErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates `path` (and parents) as a directory, durably.
pub fn ensure_dir(vfs: &VfsHandle, path: &Path) -> StorageResult<()> {
    vfs.create_dir_all(path)?;
    Ok(())
}

struct FileState {
    path: PathBuf,
    handle: Option<Arc<dyn VfsFile>>,
    /// Remove the file when the last holder drops it (it was superseded while pinned).
    doomed: bool,
}

/// A segment file shared between the live instance and pinned export cuts.
///
/// Every access holds the lock, so a rename by the live instance never races a cut's read.
/// When the live instance would unlink or overwrite a file some cut still holds (the `Arc`
/// has other owners), it renames the file to a `.tmp` name (or copies it) and marks it
/// doomed instead; the last owner's drop removes it, and a crash leaves only `.tmp` names
/// that every open deletes.
pub struct SharedFile {
    vfs: VfsHandle,
    state: Mutex<FileState>,
}

impl SharedFile {
    /// A handle for the file at `path`.
    pub fn new(vfs: VfsHandle, path: PathBuf) -> Arc<SharedFile> {
        Arc::new(SharedFile {
            vfs,
            state: Mutex::new(FileState { path, handle: None, doomed: false }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The file's current path.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Runs `f` on an open handle (opened read-write on first use).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&dyn VfsFile, &Path) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut state = self.lock();
        let handle = match &state.handle {
            Some(handle) => Arc::clone(handle),
            None => {
                let handle: Arc<dyn VfsFile> =
                    Arc::from(self.vfs.open(&state.path, OpenOptions::WRITE)?);
                state.handle = Some(Arc::clone(&handle));
                handle
            }
        };
        f(handle.as_ref(), &state.path)
    }

    /// Renames the file (the caller syncs the directory).
    pub fn rename(&self, to: PathBuf) -> StorageResult<()> {
        let mut state = self.lock();
        self.vfs.rename(&state.path, &to)?;
        state.path = to;
        state.handle = None;
        Ok(())
    }

    /// Moves the file aside to `to` and removes it once the last owner lets go.
    pub fn retire(&self, to: PathBuf) -> StorageResult<()> {
        self.rename(to)?;
        self.lock().doomed = true;
        Ok(())
    }

    /// Points this handle at another file that will be removed once the last owner lets go.
    pub fn redirect_doomed(&self, to: PathBuf) {
        let mut state = self.lock();
        state.path = to;
        state.handle = None;
        state.doomed = true;
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|poison| poison.into_inner());
        if state.doomed {
            state.handle = None;
            // Best effort: a leftover is a `.tmp` name, removed by the next open.
            let _ = self.vfs.remove_file(&state.path);
        }
    }
}

/// A snapshot directory shared between the live instance and pinned export cuts; the same
/// idea as [`SharedFile`] for a whole directory.
pub struct SharedDir {
    vfs: VfsHandle,
    state: Mutex<(PathBuf, bool)>,
}

impl SharedDir {
    /// A handle for the directory at `path`.
    pub fn new(vfs: VfsHandle, path: PathBuf) -> Arc<SharedDir> {
        Arc::new(SharedDir { vfs, state: Mutex::new((path, false)) })
    }

    fn lock(&self) -> MutexGuard<'_, (PathBuf, bool)> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Runs `f` with the directory's current path, holding the lock.
    pub fn with<T>(&self, f: impl FnOnce(&Path) -> StorageResult<T>) -> StorageResult<T> {
        let state = self.lock();
        f(&state.0)
    }

    /// The directory's current path.
    pub fn path(&self) -> PathBuf {
        self.lock().0.clone()
    }

    /// Moves the directory aside (the caller syncs the parent, then calls
    /// [`SharedDir::doom`]).
    pub fn move_aside(&self, to: PathBuf) -> StorageResult<()> {
        let mut state = self.lock();
        self.vfs.rename(&state.0, &to)?;
        state.0 = to;
        Ok(())
    }

    /// Removes the directory once the last owner lets go. Only after the move aside is
    /// durable: removing the files of a directory whose rename a power loss may undo would
    /// leave the old name standing, emptied (a snapshot directory without its meta).
    pub fn doom(&self) {
        self.lock().1 = true;
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|poison| poison.into_inner());
        if state.1 {
            let _ = remove_dir_all(&self.vfs, &state.0);
        }
    }
}
