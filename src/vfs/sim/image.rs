//! The disk's state: inodes with a visible and a durable image, directory entries with a
//! visible and a durable map, the pending (not yet durable) operations, and every operation
//! a process can call, with Linux's error semantics.
//!
//! Cost model: a write copies its bytes twice (into the visible image and into its pending
//! record) and a sync copies each pending record once into the durable image, so both are
//! O(bytes touched); nothing here clones a whole file except a crash (which rebuilds the
//! visible image of files that had dirty state) and `fork`.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::faults::{index_below, FaultPlan, FaultStats, Overlay, Overlays, Rngs};
use super::trace::{Trace, TraceArgs, TraceLine, TraceResult};
use super::SimDiskOptions;
use crate::vfs::{
    DirEntry, FileId, FileKind, LockMode, Metadata, OpenOptions, VfsError, VfsErrorKind, VfsResult,
};

/// An inode number. Numbers are never reused within a disk's life, so a stale number can
/// only miss, never alias.
pub(super) type Ino = u64;

/// The root directory's inode. It always exists and has no parent entry.
pub(super) const ROOT: Ino = 0;

/// The longest name one path segment may have (Linux's NAME_MAX).
const NAME_LEN_MAX: usize = 255;

type Kind = VfsErrorKind;

/// What an open handle refers to. Copied into the recording so a replay can use it.
#[derive(Clone, Debug)]
pub(super) struct HandleRef {
    pub ino: Ino,
    /// The crash generation the handle was opened in; any other generation means the handle
    /// is from before a crash.
    pub generation: u64,
    pub writable: bool,
    /// The path it was opened by, for errors and the trace.
    pub path: Arc<str>,
}

/// One not-yet-durable change to a file's data or length.
#[derive(Clone, Debug)]
pub(super) enum DataOp {
    Write { op_no: u64, offset: u64, data: Vec<u8> },
    SetLen { op_no: u64, len: u64 },
}

impl DataOp {
    pub fn op_no(&self) -> u64 {
        match self {
            DataOp::Write { op_no, .. } | DataOp::SetLen { op_no, .. } => *op_no,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct FileNode {
    /// What a process reads (the page cache).
    pub visible: Vec<u8>,
    /// What survives a crash, before the pending operations.
    pub durable: Vec<u8>,
    /// Changes made visible but not yet durable, oldest first.
    pub pending: Vec<DataOp>,
    /// True when `visible` is not `durable` plus `pending` (an fsync error dropped pending
    /// changes, or the visible image of an unlinked file was freed); a crash must then rebuild
    /// `visible` even if nothing is pending.
    pub diverged: bool,
    /// Fault overlays by sector index (see `faults`).
    pub overlays: Overlays,
    /// Whether the file has a visible name.
    pub linked: bool,
    /// Open handles of the current generation.
    pub open_handles: u32,
    /// The unit a crash tears unsynced writes at, when the file's owner declared one finer
    /// than a sector ([`crate::vfs::Vfs::declare_write_atomicity`]); `None`: the sector.
    pub tear_unit: Option<u64>,
}

impl FileNode {
    fn new() -> Self {
        FileNode {
            visible: Vec::new(),
            durable: Vec::new(),
            pending: Vec::new(),
            diverged: false,
            overlays: Overlays::new(),
            linked: true,
            open_handles: 0,
            tear_unit: None,
        }
    }

    /// Whether the file's visible length counts against the capacity.
    fn counted(&self) -> bool {
        self.linked || self.open_handles > 0
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct DirNode {
    pub visible: BTreeMap<String, Ino>,
    pub durable: BTreeMap<String, Ino>,
}

#[derive(Clone, Debug)]
pub(super) enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// One directory entry set to a value (`None`: removed) by a namespace operation.
#[derive(Clone, Debug)]
pub(super) struct Assign {
    pub dir: Ino,
    pub name: String,
    pub target: Option<Ino>,
}

/// A not-yet-durable namespace operation (create, mkdir, unlink, rmdir, rename). Its
/// assignments are kept or dropped together at a crash, so a rename is atomic.
#[derive(Clone, Debug)]
pub(super) struct NsOp {
    pub op_no: u64,
    pub assigns: Vec<Assign>,
    /// Directories whose `sync_dir` this operation still waits for (both parents of a rename).
    pub needs: Vec<Ino>,
}

/// Which image a listing describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Image {
    /// What a process sees now.
    Visible,
    /// What a crash that drops every unsynced operation would leave.
    Durable,
}

/// One line of a [`listing`](super::SimDisk::listing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingEntry {
    /// `/`-separated path from the root, without a leading `/`.
    pub path: String,
    /// File or directory.
    pub kind: FileKind,
    /// Length in bytes (0 for a directory).
    pub len: u64,
    /// Hex SHA-256 of the file's bytes (`None` for a directory).
    pub sha256: Option<String>,
}

/// Where a path leads (`name` borrows from the path).
enum Target<'p> {
    /// The path names a directory without a final name (`""`, `.`, `/`, `..`).
    Dir(Ino),
    /// The path's last segment `name` in directory `parent`, which may be absent.
    Entry {
        parent: Ino,
        name: &'p str,
        ino: Option<Ino>,
        /// Directories from the root down to `parent`, inclusive, when asked for (rename's
        /// loop checks); empty otherwise.
        chain: Vec<Ino>,
    },
}

/// The whole disk.
#[derive(Clone, Debug)]
pub(super) struct State {
    pub options: SimDiskOptions,
    pub nodes: BTreeMap<Ino, Node>,
    pub next_ino: Ino,
    pub pending_ns: Vec<NsOp>,
    /// Capacity in use: each counted file's visible length rounded up to whole sectors.
    pub used_bytes: u64,
    /// Number of the last operation begun (the first is 1).
    pub op_no: u64,
    /// Crash generation; handles from another one fail with `Crashed`.
    pub generation: u64,
    /// Crash armed to happen after this operation number.
    pub armed: Option<u64>,
    /// The armed crash has happened: every operation fails until `crash()` recovers.
    pub halted: bool,
    pub rngs: Rngs,
    /// Under [`FaultStreams::Steps`](super::FaultStreams::Steps), the plan until the first
    /// step begins (`options.faults` is none until then: no fault fires before it).
    pub held_faults: Option<FaultPlan>,
    pub stats: FaultStats,
    pub trace: Trace,
    /// Unlinks since the last garbage collection.
    garbage_hint: usize,
    /// Held locks per inode: (lock id, mode). Process state: a crash (and a fork, a new
    /// machine) empties it.
    pub locks: BTreeMap<Ino, Vec<(u64, LockMode)>>,
    /// The id the next granted lock gets.
    next_lock_id: u64,
    /// Mutating calls made so far (attempted, failed and refused ones included): `open` that
    /// may create or truncate or opens for writing, `create_dir`, `remove_*`, `rename`,
    /// `sync_dir`, `write_at`, `set_len`, `sync`.
    pub mutating_ops: u64,
    /// Syncs that will still lie (return Ok, make nothing durable) after the last drawn
    /// fsync loss; a power loss ends the streak.
    pub lying_syncs_left: u32,
}

/// The lock a granted [`State::lock`] request holds: enough to release exactly it.
#[derive(Clone, Debug)]
pub(super) struct LockRef {
    pub ino: Ino,
    pub id: u64,
    pub generation: u64,
    pub mode: LockMode,
    pub path: Arc<str>,
}

impl State {
    pub fn new(mut options: SimDiskOptions) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        let held_faults = (options.fault_streams == super::FaultStreams::Steps)
            .then(|| std::mem::take(&mut options.faults));
        State {
            rngs: Rngs::new(options.seed),
            held_faults,
            trace: Trace::new(options.trace_lines_max),
            options,
            nodes,
            next_ino: ROOT + 1,
            pending_ns: Vec::new(),
            used_bytes: 0,
            op_no: 0,
            generation: 0,
            armed: None,
            halted: false,
            stats: FaultStats::default(),
            garbage_hint: 0,
            locks: BTreeMap::new(),
            next_lock_id: 1,
            mutating_ops: 0,
            lying_syncs_left: 0,
        }
    }

    pub fn sector_size(&self) -> u64 {
        u64::from(self.options.sector_size)
    }

    /// Records the write atomicity declared for the file `path` names now (not an
    /// operation: nothing is numbered, traced or faulted).
    pub fn declare_write_atomicity(
        &mut self,
        path: &Path,
        atomicity: crate::vfs::WriteAtomicity,
    ) -> Result<(), Kind> {
        let unit = u64::from(atomicity.unit(self.options.sector_size));
        let sector = self.sector_size();
        let ino = match self.resolve(path)? {
            Target::Entry { ino: Some(ino), .. } => ino,
            Target::Entry { ino: None, .. } => return Err(Kind::NotFound),
            Target::Dir(_) => return Err(Kind::IsADirectory),
        };
        self.file_mut(ino)?.tear_unit = (unit < sector).then_some(unit);
        Ok(())
    }

    /// Rounds a length up to whole sectors (what it costs against the capacity).
    fn alloc(&self, len: u64) -> u64 {
        len.div_ceil(self.sector_size()).saturating_mul(self.sector_size())
    }

    /// Number of not-yet-durable operations (namespace and data).
    pub fn pending_count(&self) -> usize {
        let data: usize = self
            .nodes
            .values()
            .map(|node| match node {
                Node::File(file) => file.pending.len(),
                Node::Dir(_) => 0,
            })
            .sum();
        data + self.pending_ns.len()
    }

    // ---------------------------------------------------------------------------------------
    // Operation bookkeeping: numbering, crash checks, trace.

    /// Starts operation number `op_no + 1`: fails with `Crashed` when the disk has halted,
    /// when the handle is from before a crash, or when an armed crash point has passed.
    fn begin(&mut self, generation: Option<u64>) -> Result<u64, Kind> {
        self.op_no += 1;
        if self.halted {
            return Err(Kind::Crashed);
        }
        if generation.is_some_and(|g| g != self.generation) {
            return Err(Kind::Crashed);
        }
        if self.armed.is_some_and(|last| self.op_no > last) {
            self.halted = true;
            return Err(Kind::Crashed);
        }
        Ok(self.op_no)
    }

    /// Traces the operation and turns its result into a `VfsResult`.
    fn finish<T>(
        &mut self,
        op: &'static str,
        path: Arc<str>,
        args: TraceArgs,
        result: Result<T, Kind>,
        value: impl FnOnce(&T) -> Option<u64>,
        data: &[u8],
    ) -> VfsResult<T> {
        let traced = match &result {
            Ok(v) => value(v).map_or(TraceResult::Ok, TraceResult::Value),
            Err(kind) => TraceResult::Err(*kind),
        };
        self.trace.push(
            TraceLine { op_no: self.op_no, op, path: path.clone(), args, result: traced },
            data,
        );
        result.map_err(|kind| VfsError::new(op, &*path, kind))
    }

    /// Traces an event that is not a process call (a crash).
    pub fn trace_event(&mut self, op: &'static str, args: TraceArgs) {
        self.op_no += 1;
        self.trace.push(
            TraceLine { op_no: self.op_no, op, path: Arc::from(""), args, result: TraceResult::Ok },
            &[],
        );
    }

    // ---------------------------------------------------------------------------------------
    // Public operations. Each is numbered, traced, and deterministic given the state.

    pub fn op_open(&mut self, path: &Path, options: OpenOptions) -> VfsResult<HandleRef> {
        if is_mutating_open(options) {
            self.mutating_ops += 1;
        }
        let args = TraceArgs::Open {
            create: options.create,
            create_new: options.create_new,
            truncate: options.truncate,
            write: options.write,
        };
        let result = self.begin(None).and_then(|op_no| self.open(op_no, path, options));
        let text = path_text(path);
        let result = result.map(|ino| HandleRef {
            ino,
            generation: self.generation,
            writable: options.write || options.create || options.create_new || options.truncate,
            path: text.clone(),
        });
        self.finish("open", text, args, result, |_| None, &[])
    }

    pub fn op_create_dir(&mut self, path: &Path) -> VfsResult<()> {
        self.mutating_ops += 1;
        let result = self.begin(None).and_then(|op_no| self.create_dir(op_no, path));
        self.finish("create_dir", path_text(path), TraceArgs::None, result, |_| None, &[])
    }

    pub fn op_remove_file(&mut self, path: &Path) -> VfsResult<()> {
        self.mutating_ops += 1;
        let result = self.begin(None).and_then(|op_no| self.remove_file(op_no, path));
        self.finish("remove_file", path_text(path), TraceArgs::None, result, |_| None, &[])
    }

    pub fn op_remove_dir(&mut self, path: &Path) -> VfsResult<()> {
        self.mutating_ops += 1;
        let result = self.begin(None).and_then(|op_no| self.remove_dir(op_no, path));
        self.finish("remove_dir", path_text(path), TraceArgs::None, result, |_| None, &[])
    }

    pub fn op_rename(&mut self, from: &Path, to: &Path) -> VfsResult<()> {
        self.mutating_ops += 1;
        let result = self.begin(None).and_then(|op_no| self.rename(op_no, from, to));
        let text: Arc<str> = Arc::from(format!("{} -> {}", from.display(), to.display()));
        let traced = self.finish("rename", text, TraceArgs::None, result, |_| None, &[]);
        // Errors name the source path, as `OsVfs` does.
        traced.map_err(|e| VfsError::new("rename", from, e.kind))
    }

    pub fn op_read_dir(&mut self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        let result = self.begin(None).and_then(|_| self.read_dir(path));
        let count = |entries: &Vec<DirEntry>| Some(entries.len() as u64);
        self.finish("read_dir", path_text(path), TraceArgs::None, result, count, &[])
    }

    pub fn op_metadata(&mut self, path: &Path) -> VfsResult<Metadata> {
        let result = self.begin(None).and_then(|_| self.metadata(path));
        let len = |meta: &Metadata| Some(meta.len);
        self.finish("metadata", path_text(path), TraceArgs::None, result, len, &[])
    }

    pub fn op_sync_dir(&mut self, path: &Path) -> VfsResult<()> {
        self.mutating_ops += 1;
        let result = self.begin(None).and_then(|op_no| self.sync_dir(op_no, path));
        self.finish("sync_dir", path_text(path), TraceArgs::None, result, |_| None, &[])
    }

    pub fn op_read(&mut self, handle: &HandleRef, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        let args = TraceArgs::Range { offset, len: buf.len() as u64 };
        let result = self
            .begin(Some(handle.generation))
            .and_then(|_| self.file_read(handle.ino, buf, offset));
        let n = *result.as_ref().unwrap_or(&0);
        let data = &buf[..n];
        let traced = match &result {
            Ok(n) => TraceResult::Value(*n as u64),
            Err(kind) => TraceResult::Err(*kind),
        };
        let line = TraceLine {
            op_no: self.op_no,
            op: "read_at",
            path: handle.path.clone(),
            args,
            result: traced,
        };
        self.trace.push(line, data);
        result.map_err(|kind| VfsError::new("read_at", &*handle.path, kind))
    }

    pub fn op_write(&mut self, handle: &HandleRef, data: &[u8], offset: u64) -> VfsResult<()> {
        self.mutating_ops += 1;
        let args = TraceArgs::Range { offset, len: data.len() as u64 };
        let result = self
            .begin(Some(handle.generation))
            .and_then(|op_no| self.file_write(op_no, handle, data, offset));
        self.finish("write_at", handle.path.clone(), args, result, |_| None, data)
    }

    pub fn op_len(&mut self, handle: &HandleRef) -> VfsResult<u64> {
        let result = self.begin(Some(handle.generation)).and_then(|_| {
            let file = self.file(handle.ino)?;
            Ok(file.visible.len() as u64)
        });
        self.finish("len", handle.path.clone(), TraceArgs::None, result, |len| Some(*len), &[])
    }

    pub fn op_set_len(&mut self, handle: &HandleRef, len: u64) -> VfsResult<()> {
        self.mutating_ops += 1;
        let result = self
            .begin(Some(handle.generation))
            .and_then(|op_no| self.file_set_len(op_no, handle, len));
        self.finish("set_len", handle.path.clone(), TraceArgs::Len(len), result, |_| None, &[])
    }

    pub fn op_sync(&mut self, handle: &HandleRef) -> VfsResult<()> {
        self.mutating_ops += 1;
        let result =
            self.begin(Some(handle.generation)).and_then(|op_no| self.file_sync(op_no, handle.ino));
        self.finish("sync", handle.path.clone(), TraceArgs::None, result, |_| None, &[])
    }

    /// Closes a handle (its `Drop`). A handle from before a crash, or a halted disk, changes
    /// nothing and is not traced.
    /// Returns whether it took effect.
    pub fn op_close(&mut self, handle: &HandleRef) -> bool {
        if self.halted || handle.generation != self.generation {
            return false;
        }
        let result = self.begin(Some(handle.generation)).map(|_| self.file_close(handle.ino));
        self.finish("close", handle.path.clone(), TraceArgs::None, result, |_| None, &[]).is_ok()
    }

    /// `try_lock`: a numbered, traced call (it can meet a crash point like any other);
    /// grants `mode` on the file at `path` unless an incompatible lock is held.
    pub fn op_try_lock(&mut self, path: &Path, mode: LockMode) -> VfsResult<LockRef> {
        let args = TraceArgs::Lock { exclusive: mode == LockMode::Exclusive };
        let result = self.begin(None).and_then(|_| self.lock(path, mode));
        self.finish("try_lock", path_text(path), args, result, |_| None, &[])
    }

    /// Grants `mode` on the file at `path` (no numbering, no trace: the observer's way in).
    pub fn lock(&mut self, path: &Path, mode: LockMode) -> Result<LockRef, Kind> {
        let ino = match self.resolve(path)? {
            Target::Dir(_) => return Err(Kind::IsADirectory),
            Target::Entry { ino: None, .. } => return Err(Kind::NotFound),
            Target::Entry { ino: Some(ino), .. } => ino,
        };
        if self.is_dir(ino) {
            return Err(Kind::IsADirectory);
        }
        let holders = self.locks.entry(ino).or_default();
        let compatible = match mode {
            LockMode::Shared => holders.iter().all(|(_, held)| *held == LockMode::Shared),
            LockMode::Exclusive => holders.is_empty(),
        };
        if !compatible {
            return Err(Kind::Locked);
        }
        let id = self.next_lock_id;
        self.next_lock_id += 1;
        holders.push((id, mode));
        Ok(LockRef { ino, id, generation: self.generation, mode, path: path_text(path) })
    }

    /// Releases a lock (its guard dropped). A lock from before a crash is already gone.
    pub fn unlock(&mut self, lock: &LockRef) {
        if lock.generation != self.generation {
            return;
        }
        if let Some(holders) = self.locks.get_mut(&lock.ino) {
            holders.retain(|(id, _)| *id != lock.id);
            if holders.is_empty() {
                self.locks.remove(&lock.ino);
            }
        }
    }

    /// Forgets every lock: the processes holding them are gone (a crash, a forked machine).
    pub fn drop_locks(&mut self) {
        self.locks.clear();
    }

    // ---------------------------------------------------------------------------------------
    // The observer's calls: not numbered, not traced, no randomness drawn, so looking changes
    // nothing a seed decides. Mutating calls are refused (and counted).

    /// Fails when the disk has halted at an armed crash point or `generation` is stale.
    fn peek_ready(&self, generation: Option<u64>) -> Result<(), Kind> {
        if self.halted || generation.is_some_and(|g| g != self.generation) {
            return Err(Kind::Crashed);
        }
        Ok(())
    }

    /// Counts a mutating call an observer refused.
    pub fn peek_refuse(&mut self) -> Kind {
        self.mutating_ops += 1;
        Kind::ReadOnly
    }

    /// Opens an existing file for reading, as an observer.
    pub fn peek_open(&mut self, path: &Path, options: OpenOptions) -> Result<HandleRef, Kind> {
        if is_mutating_open(options) {
            return Err(self.peek_refuse());
        }
        self.peek_ready(None)?;
        let ino = match self.resolve(path)? {
            Target::Dir(_) => return Err(Kind::IsADirectory),
            Target::Entry { ino: None, .. } => return Err(Kind::NotFound),
            Target::Entry { ino: Some(ino), .. } => ino,
        };
        self.file_mut(ino)?.open_handles += 1;
        Ok(HandleRef { ino, generation: self.generation, writable: false, path: path_text(path) })
    }

    /// `read_dir` as an observer.
    pub fn peek_read_dir(&self, path: &Path) -> Result<Vec<DirEntry>, Kind> {
        self.peek_ready(None)?;
        self.read_dir(path)
    }

    /// `metadata` as an observer.
    pub fn peek_metadata(&self, path: &Path) -> Result<Metadata, Kind> {
        self.peek_ready(None)?;
        self.metadata(path)
    }

    /// `read_at` as an observer (fault overlays apply, as to any read).
    pub fn peek_read(
        &self,
        handle: &HandleRef,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize, Kind> {
        self.peek_ready(Some(handle.generation))?;
        self.file_read(handle.ino, buf, offset)
    }

    /// `len` as an observer.
    pub fn peek_len(&self, handle: &HandleRef) -> Result<u64, Kind> {
        self.peek_ready(Some(handle.generation))?;
        Ok(self.file(handle.ino)?.visible.len() as u64)
    }

    /// Closes an observer's handle.
    pub fn peek_close(&mut self, handle: &HandleRef) {
        if self.peek_ready(Some(handle.generation)).is_ok() {
            self.file_close(handle.ino);
        }
    }

    /// `try_lock` as an observer.
    pub fn peek_lock(&mut self, path: &Path, mode: LockMode) -> Result<LockRef, Kind> {
        self.peek_ready(None)?;
        self.lock(path, mode)
    }

    // ---------------------------------------------------------------------------------------
    // Paths.

    /// Walks `path` from the root. Segments are `/`-separated; `""`, `.` and a leading `/`
    /// mean the root; `..` goes up one directory (staying at the root).
    fn resolve<'p>(&self, path: &'p Path) -> Result<Target<'p>, Kind> {
        self.walk(path, false)
    }

    /// [`State::resolve`], also returning the chain of directories down to the parent (which
    /// costs an allocation, so only rename asks for it).
    fn resolve_with_chain<'p>(&self, path: &'p Path) -> Result<Target<'p>, Kind> {
        self.walk(path, true)
    }

    /// The walk behind [`State::resolve`]. A Unix path is bytes separated by `/`; empty and
    /// `.` segments change nothing and `..` goes up, which is how `Path::components` reads it
    /// too, but splitting the bytes directly is several times cheaper (this runs on every
    /// namespace call).
    fn walk<'p>(&self, path: &'p Path, want_chain: bool) -> Result<Target<'p>, Kind> {
        let bytes = path.as_os_str().as_bytes();
        // The chain of directories walked is only kept when `..` may pop it or the caller
        // wants it, so most paths resolve without allocating.
        let keep_chain = want_chain || bytes.windows(2).any(|w| w == b"..");
        let mut chain = Vec::new();
        if keep_chain {
            chain.push(ROOT);
        }
        let mut dir = ROOT;
        // The directory `dir` names, looked up once per step down.
        let mut node = self.dir(dir);
        let mut segments =
            bytes.split(|b| *b == b'/').filter(|s| !s.is_empty() && *s != b".").peekable();
        while let Some(segment) = segments.next() {
            if segment == b".." {
                if chain.len() > 1 {
                    chain.pop();
                }
                dir = *chain.last().unwrap_or(&ROOT);
                node = self.dir(dir);
                continue;
            }
            let name = std::str::from_utf8(segment).map_err(|_| Kind::InvalidInput)?;
            check_name(name)?;
            let found = node?.visible.get(name).copied();
            if segments.peek().is_none() {
                return Ok(Target::Entry { parent: dir, name, ino: found, chain });
            }
            match found.map(|ino| (ino, self.nodes.get(&ino))) {
                None => return Err(Kind::NotFound),
                Some((ino, Some(Node::Dir(child)))) => {
                    if keep_chain {
                        chain.push(ino);
                    }
                    dir = ino;
                    node = Ok(child);
                }
                Some(_) => return Err(Kind::NotADirectory),
            }
        }
        Ok(Target::Dir(dir))
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(self.nodes.get(&ino), Some(Node::Dir(_)))
    }

    fn dir(&self, ino: Ino) -> Result<&DirNode, Kind> {
        match self.nodes.get(&ino) {
            Some(Node::Dir(dir)) => Ok(dir),
            Some(Node::File(_)) => Err(Kind::NotADirectory),
            None => Err(Kind::NotFound),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut DirNode, Kind> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(dir)) => Ok(dir),
            Some(Node::File(_)) => Err(Kind::NotADirectory),
            None => Err(Kind::NotFound),
        }
    }

    pub fn file(&self, ino: Ino) -> Result<&FileNode, Kind> {
        match self.nodes.get(&ino) {
            Some(Node::File(file)) => Ok(file),
            Some(Node::Dir(_)) => Err(Kind::IsADirectory),
            // A handle whose inode was collected cannot exist (open handles are roots), so
            // this is a stale handle from before a crash.
            None => Err(Kind::Crashed),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut FileNode, Kind> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(file)) => Ok(file),
            Some(Node::Dir(_)) => Err(Kind::IsADirectory),
            None => Err(Kind::Crashed),
        }
    }

    fn new_ino(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    // ---------------------------------------------------------------------------------------
    // Namespace operations.

    fn open(&mut self, op_no: u64, path: &Path, options: OpenOptions) -> Result<Ino, Kind> {
        match self.resolve(path)? {
            Target::Dir(_) => {
                Err(if options.create_new { Kind::AlreadyExists } else { Kind::IsADirectory })
            }
            Target::Entry { ino: Some(ino), .. } => {
                if options.create_new {
                    return Err(Kind::AlreadyExists);
                }
                if self.is_dir(ino) {
                    return Err(Kind::IsADirectory);
                }
                if options.truncate && !self.file(ino)?.visible.is_empty() {
                    self.file_resize(op_no, ino, 0);
                }
                self.file_mut(ino)?.open_handles += 1;
                Ok(ino)
            }
            Target::Entry { parent, name, ino: None, .. } => {
                if !(options.create || options.create_new) {
                    return Err(Kind::NotFound);
                }
                let name = name.to_string();
                let ino = self.new_ino();
                let mut file = FileNode::new();
                file.open_handles = 1;
                self.nodes.insert(ino, Node::File(file));
                self.dir_mut(parent)?.visible.insert(name.clone(), ino);
                self.push_ns(op_no, vec![Assign { dir: parent, name, target: Some(ino) }]);
                Ok(ino)
            }
        }
    }

    fn create_dir(&mut self, op_no: u64, path: &Path) -> Result<(), Kind> {
        match self.resolve(path)? {
            Target::Dir(_) | Target::Entry { ino: Some(_), .. } => Err(Kind::AlreadyExists),
            Target::Entry { parent, name, ino: None, .. } => {
                let name = name.to_string();
                let ino = self.new_ino();
                self.nodes.insert(ino, Node::Dir(DirNode::default()));
                self.dir_mut(parent)?.visible.insert(name.clone(), ino);
                self.push_ns(op_no, vec![Assign { dir: parent, name, target: Some(ino) }]);
                Ok(())
            }
        }
    }

    fn remove_file(&mut self, op_no: u64, path: &Path) -> Result<(), Kind> {
        match self.resolve(path)? {
            Target::Dir(_) => Err(Kind::IsADirectory),
            Target::Entry { ino: None, .. } => Err(Kind::NotFound),
            Target::Entry { ino: Some(ino), .. } if self.is_dir(ino) => Err(Kind::IsADirectory),
            Target::Entry { parent, name, ino: Some(ino), .. } => {
                self.dir_mut(parent)?.visible.remove(name);
                self.unlinked(ino);
                let name = name.to_string();
                self.push_ns(op_no, vec![Assign { dir: parent, name, target: None }]);
                Ok(())
            }
        }
    }

    fn remove_dir(&mut self, op_no: u64, path: &Path) -> Result<(), Kind> {
        match self.resolve(path)? {
            // Linux: EINVAL for `.`, EBUSY for `/`.
            Target::Dir(_) => Err(Kind::InvalidInput),
            Target::Entry { ino: None, .. } => Err(Kind::NotFound),
            Target::Entry { parent, name, ino: Some(ino), .. } => {
                if !self.dir(ino)?.visible.is_empty() {
                    return Err(Kind::DirectoryNotEmpty);
                }
                self.dir_mut(parent)?.visible.remove(name);
                self.unlinked(ino);
                let name = name.to_string();
                self.push_ns(op_no, vec![Assign { dir: parent, name, target: None }]);
                Ok(())
            }
        }
    }

    /// Linux's `rename(2)`, checks in the kernel's order: both parents resolve, neither last
    /// segment is `.`/`..`, the source exists, the source is not an ancestor of the target
    /// (EINVAL) nor the target an ancestor of the source (ENOTEMPTY), renaming onto itself is
    /// a no-op, then kind compatibility and emptiness of a replaced directory.
    fn rename(&mut self, op_no: u64, from: &Path, to: &Path) -> Result<(), Kind> {
        let source = self.resolve_with_chain(from)?;
        let target = self.resolve_with_chain(to)?;
        let (
            Target::Entry {
                parent: from_parent,
                name: from_name,
                ino: from_ino,
                chain: from_chain,
            },
            Target::Entry { parent: to_parent, name: to_name, ino: to_ino, chain: to_chain },
        ) = (source, target)
        else {
            // Linux: EBUSY.
            return Err(Kind::Other);
        };
        let from_ino = from_ino.ok_or(Kind::NotFound)?;
        if to_chain.contains(&from_ino) {
            return Err(Kind::InvalidInput);
        }
        if to_ino.is_some_and(|ino| from_chain.contains(&ino)) {
            return Err(Kind::DirectoryNotEmpty);
        }
        if to_ino == Some(from_ino) {
            return Ok(());
        }
        let from_is_dir = self.is_dir(from_ino);
        if let Some(replaced) = to_ino {
            match (from_is_dir, self.is_dir(replaced)) {
                (true, false) => return Err(Kind::NotADirectory),
                (false, true) => return Err(Kind::IsADirectory),
                (true, true) if !self.dir(replaced)?.visible.is_empty() => {
                    return Err(Kind::DirectoryNotEmpty)
                }
                _ => {}
            }
        }
        let (from_name, to_name) = (from_name.to_string(), to_name.to_string());
        self.dir_mut(from_parent)?.visible.remove(&from_name);
        self.dir_mut(to_parent)?.visible.insert(to_name.clone(), from_ino);
        if let Some(replaced) = to_ino {
            self.unlinked(replaced);
        }
        self.push_ns(
            op_no,
            vec![
                Assign { dir: from_parent, name: from_name, target: None },
                Assign { dir: to_parent, name: to_name, target: Some(from_ino) },
            ],
        );
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>, Kind> {
        let ino = match self.resolve(path)? {
            Target::Dir(ino) | Target::Entry { ino: Some(ino), .. } => ino,
            Target::Entry { ino: None, .. } => return Err(Kind::NotFound),
        };
        let entries = self
            .dir(ino)?
            .visible
            .iter()
            .map(|(name, child)| DirEntry {
                name: name.clone(),
                kind: if self.is_dir(*child) { FileKind::Dir } else { FileKind::File },
            })
            .collect();
        Ok(entries)
    }

    fn metadata(&self, path: &Path) -> Result<Metadata, Kind> {
        let ino = match self.resolve(path)? {
            Target::Dir(ino) | Target::Entry { ino: Some(ino), .. } => ino,
            Target::Entry { ino: None, .. } => return Err(Kind::NotFound),
        };
        // Node ids are never reused, so the id is its own creation stamp.
        let id = FileId { ino, birth: ino };
        Ok(match self.nodes.get(&ino) {
            Some(Node::File(file)) => {
                Metadata { kind: FileKind::File, len: file.visible.len() as u64, id }
            }
            _ => Metadata { kind: FileKind::Dir, len: 0, id },
        })
    }

    /// Makes the directory's entries durable. On a file (as `OsVfs` allows: it opens the path
    /// and fsyncs it) it syncs the file.
    fn sync_dir(&mut self, op_no: u64, path: &Path) -> Result<(), Kind> {
        let ino = match self.resolve(path)? {
            Target::Dir(ino) | Target::Entry { ino: Some(ino), .. } => ino,
            Target::Entry { ino: None, .. } => return Err(Kind::NotFound),
        };
        if !self.is_dir(ino) {
            return self.file_sync(op_no, ino);
        }
        if self.options.faults.fsync_error.fires(op_no, &mut self.rngs.fsync_error) {
            // fsyncgate for directories: the dirty entries are forgotten, never durable.
            self.stats.fsync_errors += 1;
            self.pending_ns.retain(|op| !op.needs.contains(&ino));
            return Err(Kind::Io);
        }
        if self.sync_lies(op_no) {
            return Ok(());
        }
        for op in &mut self.pending_ns {
            op.needs.retain(|dir| *dir != ino);
        }
        while let Some(idx) = self.pending_ns.iter().position(|op| op.needs.is_empty()) {
            self.commit_ns(idx);
        }
        Ok(())
    }

    /// Whether the sync that is operation `op_no` lies (an fsync loss, drawn or continuing
    /// a streak); counts it.
    fn sync_lies(&mut self, op_no: u64) -> bool {
        let lies = if self.lying_syncs_left > 0 {
            self.lying_syncs_left -= 1;
            true
        } else if self.options.faults.fsync_loss.fires(op_no, &mut self.rngs.fsync_loss) {
            self.lying_syncs_left =
                self.options.faults.fsync_loss.streak(&mut self.rngs.fsync_loss);
            true
        } else {
            false
        };
        if lies {
            self.stats.fsync_losses += 1;
        }
        lies
    }

    /// Records a namespace operation as pending; writes back the oldest when over the bound.
    fn push_ns(&mut self, op_no: u64, assigns: Vec<Assign>) {
        let mut needs: Vec<Ino> = Vec::with_capacity(assigns.len());
        for assign in &assigns {
            if !needs.contains(&assign.dir) {
                needs.push(assign.dir);
            }
        }
        self.pending_ns.push(NsOp { op_no, assigns, needs });
        if self.pending_ns.len() > self.options.pending_ops_max {
            self.stats.writebacks += 1;
            self.commit_ns(0);
        }
    }

    /// Makes pending namespace operation `idx` durable. Earlier pending assignments to the
    /// same entries are superseded and forgotten, so a later crash cannot resurrect them.
    pub fn commit_ns(&mut self, idx: usize) {
        let op = self.pending_ns.remove(idx);
        for assign in op.assigns {
            for earlier in &mut self.pending_ns[..idx] {
                earlier.assigns.retain(|a| !(a.dir == assign.dir && a.name == assign.name));
            }
            self.apply_assign(assign);
        }
        self.pending_ns.retain(|op| !op.assigns.is_empty());
    }

    /// Sets one durable directory entry.
    pub fn apply_assign(&mut self, assign: Assign) {
        if let Ok(dir) = self.dir_mut(assign.dir) {
            match assign.target {
                Some(ino) => dir.durable.insert(assign.name, ino),
                None => dir.durable.remove(&assign.name),
            };
        }
    }

    /// A file or directory lost its visible name. A file nobody holds open stops counting
    /// against the capacity and its visible bytes are freed (a crash rebuilds them from the
    /// durable image if the unlink does not survive).
    fn unlinked(&mut self, ino: Ino) {
        if let Some(Node::File(file)) = self.nodes.get_mut(&ino) {
            file.linked = false;
            self.release_if_unused(ino);
        }
        self.garbage_hint += 1;
        if self.garbage_hint > 64 + self.nodes.len() / 2 {
            self.collect_garbage();
        }
    }

    fn release_if_unused(&mut self, ino: Ino) {
        let alloc_unit = self.sector_size();
        if let Some(Node::File(file)) = self.nodes.get_mut(&ino) {
            if !file.counted() {
                let alloc = (file.visible.len() as u64).div_ceil(alloc_unit) * alloc_unit;
                self.used_bytes = self.used_bytes.saturating_sub(alloc);
                file.visible = Vec::new();
                file.diverged = true;
            }
        }
    }

    /// Drops every inode that no visible or durable name, pending operation or open handle
    /// can reach any more.
    pub fn collect_garbage(&mut self) {
        let mut stack: Vec<Ino> = vec![ROOT];
        for (ino, node) in &self.nodes {
            if matches!(node, Node::File(file) if file.open_handles > 0) {
                stack.push(*ino);
            }
        }
        for op in &self.pending_ns {
            for assign in &op.assigns {
                stack.push(assign.dir);
                stack.extend(assign.target);
            }
        }
        let mut live: BTreeSet<Ino> = BTreeSet::new();
        while let Some(ino) = stack.pop() {
            if !live.insert(ino) {
                continue;
            }
            if let Some(Node::Dir(dir)) = self.nodes.get(&ino) {
                stack.extend(dir.visible.values().copied());
                stack.extend(dir.durable.values().copied());
            }
        }
        self.nodes.retain(|ino, _| live.contains(ino));
        self.garbage_hint = 0;
    }

    // ---------------------------------------------------------------------------------------
    // File data operations.

    fn file_read(&self, ino: Ino, buf: &mut [u8], offset: u64) -> Result<usize, Kind> {
        let file = self.file(ino)?;
        let len = file.visible.len() as u64;
        if offset >= len || buf.is_empty() {
            return Ok(0);
        }
        let n = (len - offset).min(buf.len() as u64) as usize;
        let start = offset as usize;
        buf[..n].copy_from_slice(&file.visible[start..start + n]);
        if !file.overlays.is_empty() {
            read_overlays(&file.overlays, &mut buf[..n], offset, self.sector_size())?;
        }
        Ok(n)
    }

    fn file_write(
        &mut self,
        op_no: u64,
        handle: &HandleRef,
        data: &[u8],
        offset: u64,
    ) -> Result<(), Kind> {
        if !handle.writable {
            return Err(Kind::PermissionDenied);
        }
        if data.is_empty() {
            return Ok(());
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Kind::InvalidInput)?;
        if end > self.options.file_len_max {
            // Linux: EFBIG.
            return Err(Kind::Other);
        }
        let old_len = self.file(handle.ino)?.visible.len() as u64;
        if self.options.faults.write_error.fires(op_no, &mut self.rngs.write_error) {
            self.stats.write_errors += 1;
            return Err(Kind::Io);
        }
        // Disk full: write the sectors that fit, like a short write followed by ENOSPC.
        let fit_end = match self.capacity_left(old_len) {
            Some(len_max) if end > len_max => len_max,
            _ => end,
        };
        if fit_end <= offset {
            self.stats.no_space_errors += 1;
            return Err(Kind::NoSpace);
        }
        let written = &data[..(fit_end - offset) as usize];
        let sector_size = self.sector_size();
        let file = self.file_mut(handle.ino)?;
        let start = offset as usize;
        if file.visible.len() < fit_end as usize {
            resize_zeroed(&mut file.visible, fit_end as usize);
        }
        file.visible[start..start + written.len()].copy_from_slice(written);
        if !file.overlays.is_empty() {
            // A rewritten sector is fresh; an extension also rewrites the old tail sector and
            // everything after it (the gap reads as zeros).
            if fit_end > old_len {
                drop(file.overlays.split_off(&(offset.min(old_len) / sector_size)));
            } else {
                let stale: Vec<u64> = file
                    .overlays
                    .range(offset / sector_size..=(fit_end - 1) / sector_size)
                    .map(|(sector, _)| *sector)
                    .collect();
                for sector in stale {
                    file.overlays.remove(&sector);
                }
            }
        }
        file.pending.push(DataOp::Write { op_no, offset, data: written.to_vec() });
        let new_len = old_len.max(fit_end);
        self.charge(handle.ino, old_len, new_len);
        self.writeback_if_over(handle.ino);
        if fit_end < end {
            self.stats.no_space_errors += 1;
            return Err(Kind::NoSpace);
        }
        Ok(())
    }

    fn file_set_len(&mut self, op_no: u64, handle: &HandleRef, len: u64) -> Result<(), Kind> {
        if !handle.writable {
            return Err(Kind::PermissionDenied);
        }
        if len > self.options.file_len_max {
            return Err(Kind::Other);
        }
        let old_len = self.file(handle.ino)?.visible.len() as u64;
        if self.options.faults.write_error.fires(op_no, &mut self.rngs.write_error) {
            self.stats.write_errors += 1;
            return Err(Kind::Io);
        }
        if len > old_len && self.capacity_left(old_len).is_some_and(|max| len > max) {
            self.stats.no_space_errors += 1;
            return Err(Kind::NoSpace);
        }
        self.file_resize(op_no, handle.ino, len);
        Ok(())
    }

    /// The longest the file may grow to under the capacity (whole sectors), if limited.
    fn capacity_left(&self, old_len: u64) -> Option<u64> {
        let capacity = self.options.faults.capacity_bytes?;
        let own = self.alloc(old_len);
        let others = self.used_bytes.saturating_sub(own);
        let room = capacity.saturating_sub(others);
        let room = room / self.sector_size() * self.sector_size();
        Some(room.max(own))
    }

    /// Changes the visible length (set_len, or open with truncate) and records it pending.
    fn file_resize(&mut self, op_no: u64, ino: Ino, len: u64) {
        let sector_size = self.sector_size();
        let Ok(file) = self.file_mut(ino) else { return };
        let old_len = file.visible.len() as u64;
        resize_zeroed(&mut file.visible, len as usize);
        if !file.overlays.is_empty() {
            // The sector holding the cut (or the old end) is rewritten; beyond it nothing is.
            drop(file.overlays.split_off(&(len.min(old_len) / sector_size)));
        }
        file.pending.push(DataOp::SetLen { op_no, len });
        self.charge(ino, old_len, len);
        self.writeback_if_over(ino);
    }

    /// Updates the capacity in use after a counted file's length changed.
    fn charge(&mut self, ino: Ino, old_len: u64, new_len: u64) {
        let counted = self.file(ino).is_ok_and(|file| file.counted());
        if counted {
            self.used_bytes =
                self.used_bytes.saturating_sub(self.alloc(old_len)) + self.alloc(new_len);
        }
    }

    /// Background writeback: when a file's pending list passes its bound, the older half
    /// becomes durable, as a kernel flushes dirty pages without being asked.
    fn writeback_if_over(&mut self, ino: Ino) {
        let limit = self.options.pending_ops_max;
        let count = match self.file(ino) {
            Ok(file) if file.pending.len() > limit => file.pending.len() - limit / 2,
            _ => return,
        };
        self.stats.writebacks += 1;
        self.flush_pending(ino, count);
    }

    /// Makes the file's `count` oldest pending operations durable, in order.
    fn flush_pending(&mut self, ino: Ino, count: usize) {
        let sector_size = self.sector_size();
        let State { nodes, options, rngs, stats, .. } = self;
        let Some(Node::File(file)) = nodes.get_mut(&ino) else { return };
        let count = count.min(file.pending.len());
        let ops: Vec<DataOp> = file.pending.drain(..count).collect();
        for op in &ops {
            let misdirect = match op {
                DataOp::Write { op_no, .. } => {
                    options.faults.misdirect.fires(*op_no, &mut rngs.misdirect)
                }
                DataOp::SetLen { .. } => false,
            };
            if misdirect {
                if apply_misdirected(file, op, sector_size, &mut rngs.misdirect) {
                    stats.misdirects += 1;
                }
            } else {
                apply_durable(&mut file.durable, op, None, sector_size);
            }
        }
    }

    fn file_sync(&mut self, op_no: u64, ino: Ino) -> Result<(), Kind> {
        self.file(ino)?;
        if self.options.faults.fsync_error.fires(op_no, &mut self.rngs.fsync_error) {
            // fsyncgate: the dirty pages are marked clean and forgotten; the process still
            // sees them, a crash will not. A length change is the inode's, not a page's: the
            // kernel keeps it and a later journal commit (the next good fsync) makes it
            // durable, so it stays pending.
            self.stats.fsync_errors += 1;
            let file = self.file_mut(ino)?;
            let before = file.pending.len();
            file.pending.retain(|op| matches!(op, DataOp::SetLen { .. }));
            if file.pending.len() < before {
                file.diverged = true;
            }
            return Err(Kind::Io);
        }
        if self.sync_lies(op_no) {
            return Ok(());
        }
        let count = self.file(ino)?.pending.len();
        self.flush_pending(ino, count);
        self.inject_medium_faults(op_no, ino);
        Ok(())
    }

    /// Bit rot and latent sector errors in one sector of the file's durable data.
    pub fn inject_medium_faults(&mut self, op_no: u64, ino: Ino) {
        let sector_size = self.sector_size();
        let State { nodes, options, rngs, stats, .. } = self;
        let Some(Node::File(file)) = nodes.get_mut(&ino) else { return };
        if options.faults.bit_rot.fires(op_no, &mut rngs.bit_rot)
            && rot_sector(file, sector_size, &mut rngs.bit_rot)
        {
            stats.bit_rots += 1;
        }
        if options.faults.latent_error.fires(op_no, &mut rngs.latent_error)
            && make_unreadable(file, sector_size, &mut rngs.latent_error)
        {
            stats.latent_errors += 1;
        }
    }

    fn file_close(&mut self, ino: Ino) {
        if let Some(Node::File(file)) = self.nodes.get_mut(&ino) {
            file.open_handles = file.open_handles.saturating_sub(1);
            self.release_if_unused(ino);
        }
    }

    /// Recomputes the capacity in use from scratch (after a crash).
    pub fn recount_used(&mut self) {
        let mut used = 0;
        for node in self.nodes.values() {
            if let Node::File(file) = node {
                if file.counted() {
                    used += self.alloc(file.visible.len() as u64);
                }
            }
        }
        self.used_bytes = used;
    }

    // ---------------------------------------------------------------------------------------
    // Listing.

    /// Every directory and file reachable from the root in `image`, depth first in name order,
    /// with contents hashed. Fault overlays are not applied (this is the pristine image).
    pub fn listing(&self, image: Image) -> Vec<ListingEntry> {
        let entry = |(path, bytes): (String, Option<&[u8]>)| match bytes {
            None => ListingEntry { path, kind: FileKind::Dir, len: 0, sha256: None },
            Some(bytes) => ListingEntry {
                path,
                kind: FileKind::File,
                len: bytes.len() as u64,
                sha256: Some(hex::encode(Sha256::digest(bytes))),
            },
        };
        self.tree(image).into_iter().map(entry).collect()
    }

    /// What [`State::listing`] describes, with the files' bytes borrowed instead of hashed:
    /// every path reachable from the root in `image`, depth first in name order, with `None`
    /// for a directory.
    pub fn tree(&self, image: Image) -> Vec<(String, Option<&[u8]>)> {
        let mut entries = Vec::new();
        let mut seen = BTreeSet::new();
        self.tree_under(ROOT, "", image, &mut seen, &mut entries);
        entries
    }

    fn tree_under<'s>(
        &'s self,
        ino: Ino,
        prefix: &str,
        image: Image,
        seen: &mut BTreeSet<Ino>,
        out: &mut Vec<(String, Option<&'s [u8]>)>,
    ) {
        let Ok(dir) = self.dir(ino) else { return };
        let map = match image {
            Image::Visible => &dir.visible,
            Image::Durable => &dir.durable,
        };
        for (name, child) in map {
            if !seen.insert(*child) {
                continue;
            }
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            match self.nodes.get(child) {
                Some(Node::Dir(_)) => {
                    out.push((path.clone(), None));
                    self.tree_under(*child, &path, image, seen, out);
                }
                Some(Node::File(file)) => {
                    let bytes = match image {
                        Image::Visible => &file.visible,
                        Image::Durable => &file.durable,
                    };
                    out.push((path, Some(bytes.as_slice())));
                }
                None => {}
            }
        }
    }
}

/// Resizes `bytes` to `len`, new bytes zero. An empty buffer that must grow takes zeroed
/// memory from the allocator instead (for a large file, pages the kernel zeroes when first
/// touched): a database engine sizing a fresh file to megabytes it has not written yet must
/// not cost writing every zero, twice (visible and durable image).
pub(super) fn resize_zeroed(bytes: &mut Vec<u8>, len: usize) {
    if bytes.is_empty() && len > bytes.capacity() {
        *bytes = vec![0; len];
    } else {
        bytes.resize(len, 0);
    }
}

/// Whether an `open` with `options` is a mutating call (it may create or truncate, or opens
/// for writing).
pub(super) fn is_mutating_open(options: OpenOptions) -> bool {
    options.write || options.create || options.create_new || options.truncate
}

/// The trace's and errors' spelling of a path.
fn path_text(path: &Path) -> Arc<str> {
    Arc::from(path.to_string_lossy().as_ref())
}

/// Linux's limits on one path segment.
fn check_name(name: &str) -> Result<(), Kind> {
    if name.contains('\0') {
        return Err(Kind::InvalidInput);
    }
    if name.len() > NAME_LEN_MAX {
        // Linux: ENAMETOOLONG.
        return Err(Kind::Other);
    }
    Ok(())
}

/// The pieces of a write split at sector boundaries: (offset in `data`, length), in order.
pub(super) fn sector_pieces(
    offset: u64,
    len: usize,
    sector_size: u64,
) -> impl Iterator<Item = (usize, usize)> {
    let end = offset + len as u64;
    let mut at = offset;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let next = ((at / sector_size) + 1).saturating_mul(sector_size).min(end);
        let piece = ((at - offset) as usize, (next - at) as usize);
        at = next;
        Some(piece)
    })
}

/// Number of sectors a write touches.
pub(super) fn sector_count(offset: u64, len: usize, sector_size: u64) -> usize {
    if len == 0 {
        return 0;
    }
    let end = offset + len as u64;
    ((end - 1) / sector_size - offset / sector_size + 1) as usize
}

/// Applies one data operation to a durable image. `keep` selects sectors of a write (torn at
/// a crash); `None` keeps them all. A kept piece extends the length to the write's end, so
/// sectors that did not arrive read as zeros (or as the old bytes they overwrote).
pub(super) fn apply_durable(
    durable: &mut Vec<u8>,
    op: &DataOp,
    keep: Option<&[bool]>,
    sector_size: u64,
) {
    match op {
        DataOp::SetLen { len, .. } => resize_zeroed(durable, *len as usize),
        DataOp::Write { offset, data, .. } => {
            if keep.is_some_and(|mask| !mask.contains(&true)) {
                return;
            }
            let end = (*offset as usize) + data.len();
            if durable.len() < end {
                resize_zeroed(durable, end);
            }
            for (idx, (at, len)) in sector_pieces(*offset, data.len(), sector_size).enumerate() {
                if keep.is_none_or(|mask| mask.get(idx).copied().unwrap_or(false)) {
                    let start = *offset as usize + at;
                    durable[start..start + len].copy_from_slice(&data[at..at + len]);
                }
            }
        }
    }
}

/// The `sector`-th sector of `bytes`, zero-padded past the end.
pub(super) fn sector_bytes(bytes: &[u8], sector: u64, sector_size: u64) -> Vec<u8> {
    let mut out = vec![0u8; sector_size as usize];
    let start = (sector * sector_size) as usize;
    if start < bytes.len() {
        let end = (start + sector_size as usize).min(bytes.len());
        out[..end - start].copy_from_slice(&bytes[start..end]);
    }
    out
}

/// Applies a write to the durable image as a misdirected write: the honest image gets it,
/// and overlays make its sectors land elsewhere. Returns false (applied honestly) when the
/// file has no other sector to land on.
pub(super) fn apply_misdirected(
    file: &mut FileNode,
    op: &DataOp,
    sector_size: u64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> bool {
    let DataOp::Write { offset, data, .. } = op else {
        apply_durable(&mut file.durable, op, None, sector_size);
        return false;
    };
    let first = offset / sector_size;
    let span = sector_count(*offset, data.len(), sector_size) as u64;
    let old: Vec<Vec<u8>> =
        (0..span).map(|i| sector_bytes(&file.durable, first + i, sector_size)).collect();
    apply_durable(&mut file.durable, op, None, sector_size);
    let n_sectors = (file.durable.len() as u64).div_ceil(sector_size);
    if n_sectors <= span {
        return false;
    }
    // A landing sector in 0..=n_sectors-span other than `first`.
    let mut landing = index_below(rng, n_sectors - span);
    if landing >= first {
        landing += 1;
    }
    for (i, old_sector) in old.into_iter().enumerate() {
        file.overlays.insert(first + i as u64, Overlay::Replace(old_sector));
    }
    for i in 0..span {
        let new_sector = sector_bytes(&file.durable, first + i, sector_size);
        file.overlays.insert(landing + i, Overlay::Replace(new_sector));
    }
    true
}

/// Flips one bit in one sector of the durable data. False when the file is empty.
pub(super) fn rot_sector(
    file: &mut FileNode,
    sector_size: u64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> bool {
    let len = file.durable.len() as u64;
    if len == 0 {
        return false;
    }
    let sector = index_below(rng, len.div_ceil(sector_size));
    let in_sector = (len - sector * sector_size).min(sector_size);
    let byte_idx = index_below(rng, in_sector) as u32;
    let bit_idx = index_below(rng, 8) as u8;
    match file.overlays.get_mut(&sector) {
        Some(Overlay::Replace(bytes)) => bytes[byte_idx as usize] ^= 1 << bit_idx,
        Some(Overlay::Unreadable) => {}
        Some(Overlay::FlipBit { .. }) | None => {
            file.overlays.insert(sector, Overlay::FlipBit { byte_idx, bit_idx });
        }
    }
    true
}

/// Makes one sector of the durable data unreadable. False when the file is empty.
pub(super) fn make_unreadable(
    file: &mut FileNode,
    sector_size: u64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> bool {
    let len = file.durable.len() as u64;
    if len == 0 {
        return false;
    }
    let sector = index_below(rng, len.div_ceil(sector_size));
    file.overlays.insert(sector, Overlay::Unreadable);
    true
}

/// Lays the overlays over bytes just read from `offset`.
fn read_overlays(
    overlays: &Overlays,
    buf: &mut [u8],
    offset: u64,
    sector_size: u64,
) -> Result<(), Kind> {
    let end = offset + buf.len() as u64;
    for (sector, overlay) in overlays.range(offset / sector_size..=(end - 1) / sector_size) {
        let sector_start = sector * sector_size;
        match overlay {
            Overlay::Unreadable => return Err(Kind::Io),
            Overlay::FlipBit { byte_idx, bit_idx } => {
                let at = sector_start + u64::from(*byte_idx);
                if (offset..end).contains(&at) {
                    buf[(at - offset) as usize] ^= 1 << bit_idx;
                }
            }
            Overlay::Replace(bytes) => {
                let from = sector_start.max(offset);
                let to = (sector_start + sector_size).min(end);
                let src = &bytes[(from - sector_start) as usize..(to - sector_start) as usize];
                buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::Component;

    use super::*;

    /// Where a path led: a directory, or (parent, name, entry), with the chain of directories.
    type Walked = (Option<Ino>, Option<(Ino, String, Option<Ino>)>, Vec<Ino>);

    fn summary(target: Target<'_>) -> Walked {
        match target {
            Target::Dir(ino) => (Some(ino), None, Vec::new()),
            Target::Entry { parent, name, ino, chain } => {
                (None, Some((parent, name.to_string(), ino)), chain)
            }
        }
    }

    /// The walk as `Path::components` reads the path (what `walk` replaced), for comparison.
    fn walk_by_components(state: &State, path: &Path) -> Result<Walked, Kind> {
        let components: Vec<Component<'_>> = path.components().collect();
        let mut chain = vec![ROOT];
        for (idx, component) in components.iter().enumerate() {
            let dir = *chain.last().unwrap_or(&ROOT);
            match component {
                Component::Prefix(_) => return Err(Kind::InvalidInput),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir => {
                    if chain.len() > 1 {
                        chain.pop();
                    }
                }
                Component::Normal(os_name) => {
                    let name = os_name.to_str().ok_or(Kind::InvalidInput)?;
                    check_name(name)?;
                    let found = state.dir(dir)?.visible.get(name).copied();
                    if idx + 1 == components.len() {
                        return Ok((None, Some((dir, name.to_string(), found)), chain));
                    }
                    match found {
                        None => return Err(Kind::NotFound),
                        Some(ino) if state.is_dir(ino) => chain.push(ino),
                        Some(_) => return Err(Kind::NotADirectory),
                    }
                }
            }
        }
        Ok((Some(*chain.last().unwrap_or(&ROOT)), None, Vec::new()))
    }

    #[test]
    fn same_image_compares_what_the_digest_hashes() {
        use crate::vfs::{SimDisk, Vfs};
        let build = |second: &[u8]| {
            let disk = SimDisk::new(SimDiskOptions::default());
            disk.create_dir(Path::new("d")).unwrap();
            let file = disk.open(Path::new("d/f"), OpenOptions::CREATE).unwrap();
            file.write_at(b"first", 0).unwrap();
            file.sync().unwrap();
            disk.sync_dir(Path::new("d")).unwrap();
            disk.sync_dir(Path::new("")).unwrap();
            file.write_at(second, 5).unwrap();
            disk
        };
        let (a, b, c) = (build(b"-second"), build(b"-second"), build(b"-other!"));
        for image in [Image::Visible, Image::Durable] {
            assert!(a.same_image(&b, image) && a.same_image(&a, image));
            assert_eq!(a.image_digest(image), b.image_digest(image));
        }
        // The unsynced write differs only in the visible image.
        assert!(!a.same_image(&c, Image::Visible));
        assert_ne!(a.image_digest(Image::Visible), c.image_digest(Image::Visible));
        assert!(a.same_image(&c, Image::Durable));
        assert_eq!(a.image_digest(Image::Durable), c.image_digest(Image::Durable));
        let names = |disk: &SimDisk| -> Vec<String> {
            disk.listing(Image::Visible).into_iter().map(|e| e.path).collect()
        };
        assert_eq!(names(&a), ["d", "d/f"]);
    }

    #[test]
    fn walk_reads_paths_as_path_components_does() {
        let mut state = State::new(SimDiskOptions::default());
        for (i, dir) in ["a", "a/b", "a/b/c", "d"].iter().enumerate() {
            state.create_dir(i as u64 + 1, Path::new(dir)).unwrap();
        }
        state.open(9, Path::new("a/f"), OpenOptions::CREATE).unwrap();
        let mut paths: Vec<Vec<u8>> = [
            "",
            ".",
            "/",
            "..",
            "./",
            "//",
            "a",
            "/a",
            "a/",
            "a//b",
            "./a/./b/.",
            "a/b/c",
            "a/b/c/",
            "a/b/../b/c",
            "a/../../a/b",
            "../a",
            "a/..",
            "a/b/..",
            "/a/b/../../d/x",
            "a/f",
            "a/f/x",
            "a/f/..",
            "x/y",
            "a/x",
            "a/b/c/new",
            "...",
            "a/...",
            "a..b",
            "d/.",
            "a/b/./c/../c",
            "./..",
            "/../a/b/",
        ]
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
        paths.push(format!("a/{}", "n".repeat(NAME_LEN_MAX + 1)).into_bytes());
        paths.extend([&b"a/\xff/b"[..], b"a/b\xfe", b"x/\xff", b"a/nul\0"].map(<[u8]>::to_vec));
        for bytes in paths {
            let path = Path::new(OsStr::from_bytes(&bytes));
            let want = walk_by_components(&state, path);
            let with_chain = state.walk(path, true).map(summary);
            assert_eq!(with_chain, want, "{path:?}");
            // Without the chain asked for, the same place (the chain is kept only for `..`).
            let without = state.walk(path, false).map(summary);
            let strip = |w: Result<Walked, Kind>| w.map(|(d, e, _)| (d, e));
            assert_eq!(strip(without), strip(want), "{path:?}");
        }
    }
}
