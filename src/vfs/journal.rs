//! `JournalVfs`: a pass-through `Vfs` that writes down what an open changed, as
//! [`Repair`]s (a path and what was done to it).
//!
//! A family's open recovers by calling the `Vfs`: it cuts torn tails, removes leftovers,
//! rewrites small files through a temporary name. Recording those calls while the open runs,
//! and only then, gives the list of repairs without any family keeping one: over the real
//! disk it is what a read-write open *did*; over an [`OverlayVfs`](super::OverlayVfs) it is
//! what one *would do*. [`JournalVfs::finish`] stops the recording and folds the calls into
//! their net effect per path: a temporary file written and renamed over `log_meta` is one
//! `replaced log_meta`; a file created and removed again is nothing; a file that was only
//! created to be locked (a lock file) is nothing either.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::{LockMode, OpenOptions, Vfs, VfsFile, VfsHandle, VfsLock, VfsResult};

/// One change an open made (or would make) to the instance's files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// The file or directory.
    pub path: PathBuf,
    /// What was done to it.
    #[serde(flatten)]
    pub action: RepairAction,
}

/// What a [`Repair`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RepairAction {
    /// A file was removed.
    Removed,
    /// A directory was removed (with whatever was in it).
    RemovedDir,
    /// A new file was created, `len` bytes long.
    Created {
        /// Its length afterwards.
        len: u64,
    },
    /// A new directory was created.
    CreatedDir,
    /// The file was replaced by a new one (written under another name and renamed over it).
    Replaced {
        /// The new file's length.
        len: u64,
    },
    /// The file or directory was renamed.
    Renamed {
        /// Its new path.
        to: PathBuf,
    },
    /// The file was cut to `len` bytes.
    Truncated {
        /// Its length afterwards.
        len: u64,
    },
    /// Bytes were written into the file in place.
    Written {
        /// How many bytes were written (over all writes).
        bytes: u64,
    },
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.action {
            RepairAction::Removed => write!(f, "remove {path}"),
            RepairAction::RemovedDir => write!(f, "remove directory {path}"),
            RepairAction::Created { len } => write!(f, "create {path} ({len} bytes)"),
            RepairAction::CreatedDir => write!(f, "create directory {path}"),
            RepairAction::Replaced { len } => write!(f, "rewrite {path} ({len} bytes)"),
            RepairAction::Renamed { to } => write!(f, "rename {path} to {}", to.display()),
            RepairAction::Truncated { len } => write!(f, "cut {path} to {len} bytes"),
            RepairAction::Written { bytes } => write!(f, "write {bytes} bytes into {path}"),
        }
    }
}

/// One recorded call.
#[derive(Clone, Debug)]
enum Event {
    CreatedFile(PathBuf),
    CreatedDir(PathBuf),
    Removed(PathBuf),
    RemovedDir(PathBuf),
    /// `to` existed before the rename.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: bool,
    },
    Written {
        path: PathBuf,
        end: u64,
        bytes: u64,
    },
    SetLen {
        path: PathBuf,
        len: u64,
        shorter: bool,
    },
    Locked(PathBuf),
}

#[derive(Default)]
struct Log {
    events: Vec<Event>,
}

/// A `Vfs` over `inner` that records every mutating call while it is recording (from
/// [`JournalVfs::new`] until [`JournalVfs::finish`]); afterwards it only forwards.
pub struct JournalVfs {
    inner: VfsHandle,
    recording: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
}

impl JournalVfs {
    /// Starts recording the calls made on `inner` through the returned handle.
    pub fn new(inner: VfsHandle) -> Arc<JournalVfs> {
        Arc::new(JournalVfs {
            inner,
            recording: Arc::new(AtomicBool::new(true)),
            log: Arc::new(Mutex::new(Log::default())),
        })
    }

    /// Stops recording and returns the net effect of what was recorded, in the order the
    /// paths were first changed.
    pub fn finish(&self) -> Vec<Repair> {
        self.recording.store(false, Ordering::SeqCst);
        let events = std::mem::take(&mut self.lock_log().events);
        net_effect(&events)
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, event: impl FnOnce() -> Event) {
        if self.recording.load(Ordering::SeqCst) {
            self.lock_log().events.push(event());
        }
    }

    fn is_recording(&self) -> bool {
        self.recording.load(Ordering::SeqCst)
    }
}

impl Vfs for JournalVfs {
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        let creates = options.create || options.create_new;
        let existed = if creates && self.is_recording() { self.inner.exists(path)? } else { true };
        let file = self.inner.open(path, options)?;
        if !existed {
            self.record(|| Event::CreatedFile(path.to_path_buf()));
        } else if options.truncate {
            self.record(|| Event::SetLen { path: path.to_path_buf(), len: 0, shorter: true });
        }
        let path = path.to_path_buf();
        Ok(Box::new(JournalFile {
            file,
            path,
            recording: self.recording.clone(),
            log: self.log.clone(),
        }))
    }

    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        self.inner.create_dir(path)?;
        self.record(|| Event::CreatedDir(path.to_path_buf()));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        self.inner.remove_file(path)?;
        self.record(|| Event::Removed(path.to_path_buf()));
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        self.inner.remove_dir(path)?;
        self.record(|| Event::RemovedDir(path.to_path_buf()));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()> {
        let replaced = self.is_recording() && self.inner.exists(to)?;
        self.inner.rename(from, to)?;
        self.record(|| Event::Renamed { from: from.to_path_buf(), to: to.to_path_buf(), replaced });
        Ok(())
    }

    crate::delegate::delegate_vfs!(inner: read_dir, metadata, sync_dir, declare_write_atomicity);

    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        let lock = self.inner.try_lock(path, mode)?;
        self.record(|| Event::Locked(path.to_path_buf()));
        Ok(lock)
    }
}

/// A file opened through a [`JournalVfs`]: writes and cuts recorded under the path it was
/// opened by.
struct JournalFile {
    file: Box<dyn VfsFile>,
    path: PathBuf,
    recording: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
}

impl JournalFile {
    fn record(&self, event: impl FnOnce() -> Event) {
        if self.recording.load(Ordering::SeqCst) {
            let mut log = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            log.events.push(event());
        }
    }
}

impl VfsFile for JournalFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        self.file.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> VfsResult<()> {
        self.file.write_at(buf, offset)?;
        let (bytes, end) = (buf.len() as u64, offset + buf.len() as u64);
        self.record(|| Event::Written { path: self.path.clone(), end, bytes });
        Ok(())
    }

    fn len(&self) -> VfsResult<u64> {
        self.file.len()
    }

    fn set_len(&self, len: u64) -> VfsResult<()> {
        let recording = self.recording.load(Ordering::SeqCst);
        let old = if recording { self.file.len()? } else { 0 };
        self.file.set_len(len)?;
        self.record(|| Event::SetLen { path: self.path.clone(), len, shorter: len < old });
        Ok(())
    }

    fn sync(&self) -> VfsResult<()> {
        self.file.sync()
    }
}

/// A path created during the recording: what it has become so far.
#[derive(Clone, Copy, Debug)]
struct Fresh {
    dir: bool,
    len: u64,
    written: bool,
    locked: bool,
}

/// Folds recorded calls into one [`Repair`] per path (see the module doc).
fn net_effect(events: &[Event]) -> Vec<Repair> {
    // Paths created during the recording, by current name.
    let mut fresh: BTreeMap<PathBuf, Fresh> = BTreeMap::new();
    // Changes to paths that existed before, in first-change order.
    let mut out: Vec<Repair> = Vec::new();
    let mut order: Vec<PathBuf> = Vec::new();
    let upsert = |out: &mut Vec<Repair>, path: &Path, action: RepairAction| {
        if let Some(existing) = out.iter_mut().find(|r| r.path == path) {
            existing.action = merge(&existing.action, action);
        } else {
            out.push(Repair { path: path.to_path_buf(), action });
        }
    };
    for event in events {
        match event {
            Event::CreatedFile(p) => {
                fresh
                    .insert(p.clone(), Fresh { dir: false, len: 0, written: false, locked: false });
                order.push(p.clone());
            }
            Event::CreatedDir(p) => {
                fresh.insert(p.clone(), Fresh { dir: true, len: 0, written: false, locked: false });
                order.push(p.clone());
            }
            Event::Written { path, end, bytes } => match fresh.get_mut(path) {
                Some(f) => {
                    f.len = f.len.max(*end);
                    f.written = true;
                }
                None => upsert(&mut out, path, RepairAction::Written { bytes: *bytes }),
            },
            Event::SetLen { path, len, shorter } => match fresh.get_mut(path) {
                Some(f) => {
                    f.len = *len;
                    f.written = true;
                }
                None if *shorter => upsert(&mut out, path, RepairAction::Truncated { len: *len }),
                None => upsert(&mut out, path, RepairAction::Written { bytes: 0 }),
            },
            Event::Locked(p) => {
                if let Some(f) = fresh.get_mut(p) {
                    f.locked = true;
                }
            }
            Event::Removed(p) | Event::RemovedDir(p) => {
                let under = |q: &PathBuf| q == p || q.starts_with(p);
                let was_fresh = fresh.remove(p).is_some();
                fresh.retain(|q, _| !under(q));
                if !was_fresh {
                    out.retain(|r| !under(&r.path) || r.path == *p);
                    let action = match event {
                        Event::RemovedDir(_) => RepairAction::RemovedDir,
                        _ => RepairAction::Removed,
                    };
                    upsert(&mut out, p, action);
                }
            }
            Event::Renamed { from, to, replaced } => {
                let moved: Vec<(PathBuf, Fresh)> = fresh
                    .iter()
                    .filter(|(q, _)| *q == from || q.starts_with(from))
                    .map(|(q, f)| (q.clone(), *f))
                    .collect();
                if let Some(f) = fresh.remove(from) {
                    for (q, sub) in &moved {
                        if q != from {
                            fresh.remove(q);
                            let rest = q.strip_prefix(from).expect("under from");
                            fresh.insert(to.join(rest), *sub);
                        }
                    }
                    if *replaced && !fresh.contains_key(to) {
                        let action = if f.dir {
                            RepairAction::CreatedDir
                        } else {
                            RepairAction::Replaced { len: f.len }
                        };
                        upsert(&mut out, to, action);
                    } else {
                        fresh.insert(to.clone(), f);
                        order.push(to.clone());
                    }
                } else {
                    upsert(&mut out, from, RepairAction::Renamed { to: to.clone() });
                }
            }
        }
    }
    // What is still new at the end was created, unless it only served as a lock file.
    for path in order {
        if let Some(f) = fresh.remove(&path) {
            if f.locked && !f.written {
                continue;
            }
            let action =
                if f.dir { RepairAction::CreatedDir } else { RepairAction::Created { len: f.len } };
            upsert(&mut out, &path, action);
        }
    }
    out
}

/// Two changes to one path as one.
fn merge(earlier: &RepairAction, later: RepairAction) -> RepairAction {
    match (earlier, later) {
        (RepairAction::Written { bytes: a }, RepairAction::Written { bytes: b }) => {
            RepairAction::Written { bytes: a + b }
        }
        (RepairAction::Truncated { len: a }, RepairAction::Truncated { len: b }) => {
            RepairAction::Truncated { len: b.min(*a) }
        }
        (_, later) => later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{SimDisk, SimDiskOptions};

    #[test]
    fn folds_calls_into_net_effects() {
        let disk = SimDisk::new(SimDiskOptions::default());
        disk.create_dir(Path::new("d")).unwrap();
        for name in ["d/meta", "d/seg", "d/old.tmp"] {
            let f = disk.open(Path::new(name), OpenOptions::CREATE).unwrap();
            f.write_at(&[1u8; 64], 0).unwrap();
        }
        let journal = JournalVfs::new(disk.clone());
        let vfs: VfsHandle = journal.clone();
        // An atomic rewrite, a cut, a removal, a lock file, a temporary created and removed.
        let tmp = vfs.open(Path::new("d/meta.tmp"), OpenOptions::CREATE_TRUNCATE).unwrap();
        tmp.write_at(b"new", 0).unwrap();
        drop(tmp);
        vfs.rename(Path::new("d/meta.tmp"), Path::new("d/meta")).unwrap();
        vfs.open(Path::new("d/seg"), OpenOptions::WRITE).unwrap().set_len(10).unwrap();
        vfs.remove_file(Path::new("d/old.tmp")).unwrap();
        drop(vfs.open(Path::new("d/lock"), OpenOptions::CREATE).unwrap());
        let _lock = vfs.try_lock(Path::new("d/lock"), LockMode::Exclusive).unwrap();
        drop(vfs.open(Path::new("d/scratch"), OpenOptions::CREATE).unwrap());
        vfs.remove_file(Path::new("d/scratch")).unwrap();
        let repairs = journal.finish();
        let text: Vec<String> = repairs.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            text,
            ["rewrite d/meta (3 bytes)", "cut d/seg to 10 bytes", "remove d/old.tmp"],
            "{repairs:?}"
        );
        // After finish nothing more is recorded.
        vfs.remove_file(Path::new("d/seg")).unwrap();
        assert!(journal.finish().is_empty());
    }
}
