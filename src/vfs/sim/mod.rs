//! `SimDisk`: a deterministic simulated disk with power loss and injected faults.
//!
//! This page is the fault model. It says what the simulated disk does, what a backend family
//! may assume about it, and what the checker then expects. Read it top to bottom.
//!
//! # Use
//!
//! ```
//! use quorumkit_storage::vfs::{FaultPlan, OpenOptions, SimDisk, SimDiskOptions, VfsHandle};
//! use std::path::Path;
//!
//! let disk = SimDisk::new(SimDiskOptions {
//!     seed: 7,
//!     sector_size: 4096,
//!     faults: FaultPlan::none(),
//!     ..SimDiskOptions::default()
//! });
//! let vfs: VfsHandle = disk.clone(); // Arc<SimDisk> is an Arc<dyn Vfs>
//! let file = vfs.open(Path::new("log"), OpenOptions::CREATE).unwrap();
//! file.write_at(b"entry", 0).unwrap();
//! file.sync().unwrap();
//! vfs.sync_dir(Path::new("")).unwrap();
//! disk.crash(); // power loss, then reboot
//! let file = vfs.open(Path::new("log"), OpenOptions::READ).unwrap();
//! assert_eq!(file.read_all().unwrap(), b"entry");
//! ```
//!
//! # Two images
//!
//! Every file has a **visible** image (what a process reads: the page cache) and a
//! **durable** image (what is on the medium). Every directory has a visible and a durable
//! set of entries. Between the two sit the **pending operations**: changes that are visible
//! but not yet durable, kept in the order they were made.
//!
//! - `write_at` and `set_len` (and `open` with `truncate`) change the visible image at once
//!   and add a pending data operation to the file.
//! - `sync` on a file makes all of that file's pending data operations durable, in order:
//!   its data and its length.
//! - `open` with `create` (of a new file), `create_dir`, `remove_file`, `remove_dir` and
//!   `rename` change visible directory entries at once and add a pending namespace
//!   operation. It becomes durable with `sync_dir` of the parent directory. **A rename needs
//!   `sync_dir` of both parents** (the source's and the target's; one when they are the same
//!   directory): until both have been synced after it, it stays pending and a crash may
//!   undo it. A rename is atomic: a crash keeps it or drops it, never half of it.
//! - A file's data and its name are independent: a synced file whose name was never made
//!   durable by `sync_dir` is gone after a crash; a durable name whose file data was never
//!   synced reads as the file's durable data (possibly empty).
//! - `sync_dir` on a file path syncs the file (as `OsVfs` does: it opens the path and
//!   fsyncs it).
//! - Background writeback: when one file has more than `pending_ops_max` pending data
//!   operations (or the disk that many namespace operations), the oldest become durable
//!   without a sync, as a kernel flushes dirty pages. A backend may never rely on unsynced
//!   data being lost, only on synced data being kept.
//!
//! Paths: segments separated by `/`; `""`, `.` and `/` name the root directory, which
//! always exists; a leading `/` is allowed (absolute paths map onto the same tree); `..`
//! goes up one level. There are no symlinks, hard links or permissions. Everything else a
//! process can observe matches Linux on ext4, errors included: `NotFound`, `AlreadyExists`,
//! `NotADirectory`, `IsADirectory`, `DirectoryNotEmpty`, a rename over a file replaces it, a
//! directory may replace an empty directory, a directory cannot move into itself
//! (`InvalidInput`), an unlinked file stays readable and writable through open handles,
//! `read_dir` is sorted by name, a zero-length write does nothing, a write past the end
//! leaves a gap that reads as zeros. A differential test against `OsVfs` holds it to that.
//!
//! # Crash (power loss)
//!
//! [`SimDisk::crash`] cuts the power and reboots:
//! - The visible image is discarded.
//! - **Each pending operation independently survives or is lost** (probability
//!   `crash_keep_probability`): any subset, not only a prefix, because caches and disks
//!   reorder. Survivors are applied to the durable image in their original order.
//! - A surviving write that spans several sectors may be **torn at sector boundaries**
//!   (probability `crash_tear_probability`): a prefix of its sectors lands, or a suffix, or
//!   an arbitrary subset, equally often. A single sector is written whole or not at all:
//!   that is what an honest disk promises (sector size is `sector_size`, 512 B or 4 KiB or
//!   any power of two).
//! - A surviving write extends the file's length to its end even when some of its sectors
//!   did not arrive: **an extension whose data never arrived reads as zeros**.
//! - The recovered tree is what the root reaches through durable entries.
//! - Every handle opened before the crash fails every later call with
//!   [`VfsErrorKind::Crashed`](crate::vfs::VfsErrorKind::Crashed) (closing it does nothing),
//!   so no destructor or straggler can write to the rebooted disk.
//! - The disk continues from the recovered image: it is the new visible and durable image.
//!
//! [`SimDisk::crash_after_op`] arms a crash point: operation number `n` (as numbered in the
//! trace) is the last to take effect; from `n + 1` on every call fails with `Crashed` until
//! the harness calls [`SimDisk::crash`], which computes the recovered image.
//!
//! [`SimDisk::mark`] and [`SimDisk::crash_states`] enumerate crash states exhaustively:
//! after every operation since the mark that could change the outcome, and at each such
//! point every subset of the pending operations when there are at most
//! `subset_units_max` of them (sampled deterministically beyond that), optionally splitting
//! writes into sectors. Each state is an independent disk. Enumerated crashes are honest:
//! no fault is injected in them.
//!
//! # Faults
//!
//! A [`FaultPlan`] says which faults may happen; each is a field with a probability per
//! opportunity and a list of operation numbers at which it fires for certain, so a test can
//! place a fault exactly and [`FaultPlan::swarm`] can draw a random subset of faults with
//! random rates (swarm testing). Faults are **overlays**: the durable image always holds
//! what an honest disk would, while rotten, torn, misdirected and unreadable sectors live
//! beside it and are laid over reads. Switching a fault off therefore replays a history
//! honestly, and every fault decision draws from its own generator stream, so dropping one
//! fault does not change the others' or the crash's choices (a shrinker can drop faults one
//! at a time). A write to a sector removes its overlay (the drive rewrites or remaps it).
//!
//! Where a fault lands depends on where its stream stands. Under [`FaultStreams::Run`] (the
//! default) one stream per concern runs through the whole disk's life, so a fault's
//! position is a global operation number and removing an earlier call moves every later
//! fault. Under [`FaultStreams::Steps`] the caller (the harness's runner) opens each step of
//! a history with [`SimDisk::begin_step`] and the step's decisions draw from streams keyed
//! by the step alone, so a fault stays with the step it hit when a shrinker removes other
//! steps; no fault fires before the first step.
//!
//! Each fault, what it does, and what the checker then expects (*Expect*):
//!
//! - **Crash, torn at sector boundaries** (always possible): as above.
//!   *Expect*: honest; nothing acknowledged is lost and the atomicity table holds.
//! - **`fsync_loss`**: `sync`/`sync_dir` returns Ok and makes nothing durable (the dirty
//!   state stays pending and may be lost at a crash). A drawn loss starts a streak: up to
//!   [`FSYNC_LOSS_STREAK_MAX`] further syncs lie too, until
//!   the next power loss (a volatile cache that stopped honouring flushes for a while), so
//!   acknowledged writes to several files go missing together, later ones kept and earlier
//!   ones lost: the shapes a family's lost-write detection exists for.
//!   *Expect*: acknowledged data may be lost; recovery gives a state some prefix of the
//!   history produced, or refuses to open. A mixed or invented state is a bug.
//! - **`fsync_error`**: `sync`/`sync_dir` fails with EIO and the dirty state it covered is
//!   dropped: still visible, never durable, and a retried sync returns Ok (fsyncgate). A
//!   file's length changes (`set_len`) are the inode's, not dirty pages: they stay pending,
//!   as the kernel keeps them for its next journal commit.
//!   *Expect*: the family poisons itself at the first failure; honest otherwise.
//! - **`write_error`**: `write_at`/`set_len` fails with EIO and changes nothing.
//!   *Expect*: the failing mutation fails; honest otherwise.
//! - **`capacity_bytes`** (ENOSPC): a write that does not fit writes the whole sectors that
//!   fit and fails with `NoSpace` (a short write, then ENOSPC, as POSIX allows); a `set_len`
//!   that does not fit fails and changes nothing; names and directories take no space.
//!   *Expect*: the failing mutation fails; honest otherwise.
//! - **`torn_sector`**: at a crash, one sector of an unsynced write (kept or not) reads half
//!   new and half old (cut at a random byte) or as garbage.
//!   *Expect*: a wrong value is never returned silently; recovery reaches an allowed state
//!   or reports corruption.
//! - **`bit_rot`**: after a `sync` (in that file) or at a reboot (in one file), one bit of
//!   one durable sector reads flipped. *Expect*: as for a torn sector.
//! - **`latent_error`**: at the same opportunities, every read touching one sector fails
//!   with EIO. *Expect*: as for a torn sector; failing closed is allowed.
//! - **`misdirect`**: as a write becomes durable (sync, writeback or crash), its sectors land
//!   at another sector-aligned offset of the same file and the intended sectors keep their
//!   old bytes. *Expect*: as for a torn sector.
//!
//! [`FaultPlan::is_honest`] tells the checker which expectation applies. [`SimDisk::fault_stats`]
//! counts what was injected.
//!
//! Deliberately not modelled: hard links, symlinks, permissions, timestamps, sparse files
//! (a file's whole length counts against the capacity), directory-entry corruption (the
//! namespace never rots; file data does), faults in directory syncs other than loss and
//! EIO, reads served from a cache that differs from the medium (a fault laid over a sector
//! is seen by the very next read), and concurrency (the disk serialises all calls).
//!
//! # Determinism
//!
//! Every choice comes from ChaCha8 generators keyed by `seed` (one stream per concern);
//! there is no clock and no hash-map order anywhere (`BTreeMap` throughout). The same seed
//! and the same calls give the same trace: [`SimDisk::trace_hash`] covers every operation,
//! its arguments, its result and the bytes written and read; [`SimDisk::trace_tail`] prints
//! the last lines for a failure report. [`SimDisk::listing`] and [`SimDisk::image_digest`]
//! describe an image (paths, lengths, SHA-256 of contents) to compare two disks.
//!
//! # Cost
//!
//! A write or sync costs O(bytes touched) (plus a logarithmic lookup); a crash costs
//! O(dirty bytes + inodes); a fork or an enumerated crash state clones the disk.

mod crash;
mod enumerate;
mod faults;
mod image;
mod trace;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

pub use crash::{CrashSummary, CrashUnit};
pub use trace::{CrashFates, DiskOp, DiskTimeline, Fate};

pub use enumerate::{CrashState, CrashStates, EnumerateError, EnumerateOptions, Mark};
pub use faults::{
    FaultKind, FaultPlan, FaultRate, FaultStats, FaultStreams, FSYNC_LOSS_STREAK_MAX,
};
pub use image::{Image, ListingEntry};

use crash::RandomChooser;
use enumerate::{RecordedOp, Recording};
use faults::Rngs;
use image::{HandleRef, LockRef, State};

use super::{
    DirEntry, LockMode, Metadata, OpenOptions, Vfs, VfsError, VfsFile, VfsLock, VfsResult,
    WriteAtomicity,
};

/// How a [`SimDisk`] is built. Start from `SimDiskOptions::default()` and set what matters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimDiskOptions {
    // Geometry.
    /// Bytes per sector: the unit a crash tears writes at and faults hit. A power of two
    /// (512 and 4096 are the real ones).
    pub sector_size: u32,

    // Seed.
    /// Seeds every random choice of the disk.
    pub seed: u64,

    // Crash.
    /// Chance that one pending operation survives a crash.
    pub crash_keep_probability: f64,
    /// Chance that a surviving multi-sector write is torn at sector boundaries.
    pub crash_tear_probability: f64,
    /// Which pending operations a crash may keep: any subset (the default), or only a prefix
    /// in the order they were issued (a weaker model, for ablation: `qk soak --ablate`).
    pub crash_persistence: CrashPersistence,
    /// A crash always keeps a pending `set_len` (for ablation; by default it may drop one
    /// like any other pending operation).
    pub crash_keeps_set_len: bool,

    // Faults.
    /// The faults that may be injected (none by default).
    pub faults: FaultPlan,
    /// Where fault and crash decisions draw from: one stream per concern over the whole run
    /// (the default), or streams per step keyed by the caller ([`FaultStreams`]).
    pub fault_streams: FaultStreams,

    // Limits.
    /// Largest file length; a write or `set_len` past it fails (Linux's EFBIG, `Other`).
    pub file_len_max: u64,
    /// Pending operations kept per file (and namespace operations per disk) before the
    /// oldest are written back.
    pub pending_ops_max: usize,
    /// Trace lines kept as text (the hash covers all of them).
    pub trace_lines_max: usize,
    /// Operations a mark records before enumeration gives up.
    pub recording_ops_max: usize,
}

impl Default for SimDiskOptions {
    fn default() -> Self {
        SimDiskOptions {
            sector_size: 4096,
            seed: 0,
            crash_keep_probability: 0.5,
            crash_tear_probability: 0.25,
            crash_persistence: CrashPersistence::Subset,
            crash_keeps_set_len: false,
            faults: FaultPlan::none(),
            fault_streams: FaultStreams::Run,
            file_len_max: 256 << 20,
            pending_ops_max: 4096,
            trace_lines_max: 256,
            recording_ops_max: 1 << 16,
        }
    }
}

/// Which pending operations a random crash may keep ([`SimDiskOptions::crash_persistence`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPersistence {
    /// Each pending operation survives or not on its own: any subset, as caches and disks
    /// reorder writes.
    #[default]
    Subset,
    /// The operations issued before a cut point survive, whole, and none after it (no
    /// reordering: what a disk with a strictly ordered write queue would give).
    Prefix,
}

/// The simulated disk. Shared as `Arc<SimDisk>`, which is a [`VfsHandle`](super::VfsHandle)
/// as it is (`let vfs: VfsHandle = disk.clone();`). All calls are serialised by one mutex;
/// harness methods (crash, mark, trace, listing) may be called at any time.
#[derive(Debug)]
pub struct SimDisk {
    shared: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    recording: Option<Recording>,
    marks_made: u64,
}

impl Inner {
    fn record(&mut self, op: impl FnOnce() -> RecordedOp) {
        let ops_max = self.state.options.recording_ops_max;
        if let Some(recording) = &mut self.recording {
            recording.push(ops_max, op);
        }
    }
}

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock (a bug) must not turn every later call into a panic.
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimDisk {
    /// An empty disk (just the root directory).
    ///
    /// # Panics
    /// If `options.sector_size` is not a power of two: a harness configuration error, never
    /// reachable from a `Vfs` call.
    pub fn new(options: SimDiskOptions) -> Arc<SimDisk> {
        assert!(
            options.sector_size.is_power_of_two(),
            "SimDisk sector_size must be a power of two"
        );
        SimDisk::from_state(State::new(options))
    }

    fn from_state(state: State) -> Arc<SimDisk> {
        let inner = Inner { state, recording: None, marks_made: 0 };
        Arc::new(SimDisk { shared: Arc::new(Mutex::new(inner)) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.shared)
    }

    /// The options the disk runs with (including the current fault plan; under
    /// [`FaultStreams::Steps`] before the first step, the plan that will apply from it).
    pub fn options(&self) -> SimDiskOptions {
        let state = &self.lock().state;
        let mut options = state.options.clone();
        if let Some(plan) = &state.held_faults {
            options.faults = plan.clone();
        }
        options
    }

    /// Replaces the fault plan from the next operation on (e.g. `FaultPlan::none()` to let a
    /// checker read back honestly), also before the first step under
    /// [`FaultStreams::Steps`]. Existing overlays stay.
    pub fn set_fault_plan(&self, faults: FaultPlan) {
        let state = &mut self.lock().state;
        state.held_faults = None;
        state.options.faults = faults;
    }

    /// Opens step `key` under [`FaultStreams::Steps`]: from now on every fault and crash
    /// decision draws from streams keyed by the disk's seed and `key`, and the plan's faults
    /// may fire (none does before the first step). Does nothing under [`FaultStreams::Run`].
    pub fn begin_step(&self, key: u64) {
        let state = &mut self.lock().state;
        if state.options.fault_streams == FaultStreams::Steps {
            state.rngs = Rngs::for_step(state.options.seed, key);
            if let Some(plan) = state.held_faults.take() {
                state.options.faults = plan;
            }
        }
    }

    /// Number of the last operation (every call counts, failed ones too, and crashes).
    pub fn op_count(&self) -> u64 {
        self.lock().state.op_no
    }

    /// How many operations are pending (visible, not yet durable).
    pub fn pending_count(&self) -> usize {
        self.lock().state.pending_count()
    }

    /// Power loss now, then reboot: each pending operation survives or not, writes may tear,
    /// and the disk continues from the recovered image. Handles opened before fail with
    /// `Crashed`. Also the reboot after an armed crash point.
    pub fn crash(&self) -> CrashSummary {
        let mut inner = self.lock();
        inner.recording = None;
        let state = &mut inner.state;
        let mut rng = state.rngs.crash.clone();
        let prefix_cut = match state.options.crash_persistence {
            CrashPersistence::Subset => None,
            CrashPersistence::Prefix => {
                let mut op_nos: Vec<u64> =
                    state.pending_units(false).iter().map(|u| u.op_no).collect();
                op_nos.sort_unstable();
                op_nos.dedup();
                let at = faults::index_below(&mut rng, op_nos.len() as u64 + 1) as usize;
                Some(op_nos.get(at).copied().unwrap_or(u64::MAX))
            }
        };
        let mut chooser = RandomChooser {
            rng,
            keep_probability: state.options.crash_keep_probability,
            tear_probability: state.options.crash_tear_probability,
            prefix_cut,
            keeps_set_len: state.options.crash_keeps_set_len,
        };
        let summary = state.crash(&mut chooser);
        state.rngs.crash = chooser.rng;
        summary
    }

    /// Arms a crash point: operation `op_no` is the last to take effect; every later call
    /// fails with `Crashed` until [`SimDisk::crash`]. An `op_no` already passed halts the
    /// disk at the next call.
    pub fn crash_after_op(&self, op_no: u64) {
        self.lock().state.armed = Some(op_no);
    }

    /// Disarms a crash point not yet reached (one already reached keeps the disk halted
    /// until [`SimDisk::crash`]).
    pub fn disarm_crash(&self) {
        let mut inner = self.lock();
        if !inner.state.halted {
            inner.state.armed = None;
        }
    }

    /// Whether an armed crash point has been reached (calls fail until `crash()`).
    pub fn is_halted(&self) -> bool {
        self.lock().state.halted
    }

    /// Marks this point for [`SimDisk::crash_states`]: copies the disk's state and records
    /// every later operation (with its bytes, up to `recording_ops_max`). Ends any earlier
    /// mark.
    pub fn mark(&self) -> Mark {
        let mut inner = self.lock();
        inner.marks_made += 1;
        let id = inner.marks_made;
        let base = inner.state.clone();
        let op_no = base.op_no;
        inner.recording = Some(Recording { id, base, ops: Vec::new(), overflowed: false });
        Mark { id, op_no }
    }

    /// Every crash state since `mark`: for the mark itself and after every operation since
    /// that can change what a crash leaves, each subset of the units pending there (all of
    /// them when at most `subset_units_max`, else `sample_count` deterministic samples).
    /// Ends the recording. Yields independent, rebooted disks.
    pub fn crash_states(
        &self,
        mark: Mark,
        options: EnumerateOptions,
    ) -> Result<CrashStates, EnumerateError> {
        let mut inner = self.lock();
        let recording = match inner.recording.take() {
            Some(recording) if recording.id == mark.id => recording,
            other => {
                inner.recording = other;
                return Err(EnumerateError::StaleMark);
            }
        };
        if recording.overflowed {
            return Err(EnumerateError::TooLong { ops_max: inner.state.options.recording_ops_max });
        }
        Ok(CrashStates::new(recording, options))
    }

    /// A deep copy: an independent disk in the same state (same generators, trace and
    /// statistics, no mark). Handles of this disk do not work on the copy, and no lock is
    /// held on it (locks belong to the processes using a disk, and the copy has none yet).
    pub fn fork(&self) -> Arc<SimDisk> {
        let mut state = self.lock().state.clone();
        state.drop_locks();
        SimDisk::from_state(state)
    }

    /// Mutating calls made on this disk so far, through any handle or observer, attempted,
    /// failed and refused ones included: `open` for writing (or to create or truncate),
    /// `create_dir`, `remove_file`, `remove_dir`, `rename`, `sync_dir`, `write_at`, `set_len`
    /// and `sync`. A read-only open must leave it unchanged.
    pub fn mutating_op_count(&self) -> u64 {
        self.lock().state.mutating_ops
    }

    /// A read-only window onto this disk, for checks that must look without changing what
    /// the seed decides: it sees the visible image and takes locks in the same lock table,
    /// but its calls are not numbered or traced and draw no randomness (fault overlays
    /// still apply to its reads), and every mutating call through it is refused with
    /// `ReadOnly` (and counted in [`SimDisk::mutating_op_count`]).
    pub fn observer(&self) -> Arc<SimObserver> {
        Arc::new(SimObserver { shared: Arc::clone(&self.shared) })
    }

    /// How many locks are held on this disk now (every holder counted).
    pub fn locks_held(&self) -> usize {
        self.lock().state.locks.values().map(Vec::len).sum()
    }

    /// The running hash of every operation so far (arguments, results, bytes written and
    /// read). Equal for equal seeds and calls.
    pub fn trace_hash(&self) -> u64 {
        self.lock().state.trace.hash()
    }

    /// Starts recording a timeline: every operation and every power loss's fates from now on,
    /// for [`SimDisk::timeline`]. Changes nothing the disk does or hashes.
    pub fn record_timeline(&self) {
        self.lock().state.trace.record_timeline();
    }

    /// What was recorded since [`SimDisk::record_timeline`]; `None` if it was never called.
    pub fn timeline(&self) -> Option<DiskTimeline> {
        self.lock().state.trace.timeline()
    }

    /// The last `n` operations, one line each (`#12 write_at log off=0 len=5 -> Ok`), at most
    /// `trace_lines_max`.
    pub fn trace_tail(&self, n: usize) -> String {
        self.lock().state.trace.tail(n)
    }

    /// Every directory and file of `image`, depth first in name order, with lengths and the
    /// SHA-256 of contents (fault overlays not applied).
    pub fn listing(&self, image: Image) -> Vec<ListingEntry> {
        self.lock().state.listing(image)
    }

    /// Whether `image` of this disk and `image` of `other` are byte-identical trees (the same
    /// paths, kinds and contents, fault overlays not applied): what equal
    /// [`image_digest`](SimDisk::image_digest)s say, without hashing every file.
    pub fn same_image(&self, other: &SimDisk, image: Image) -> bool {
        if std::ptr::eq(self, other) {
            return true;
        }
        let (ours, theirs) = (self.lock(), other.lock());
        ours.state.tree(image) == theirs.state.tree(image)
    }

    /// Hex SHA-256 of the [`listing`](SimDisk::listing): equal digests mean byte-identical
    /// trees.
    pub fn image_digest(&self, image: Image) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for entry in self.listing(image) {
            let kind = match entry.kind {
                super::FileKind::File => "f",
                super::FileKind::Dir => "d",
            };
            let line = format!(
                "{kind} {} {} {}\n",
                entry.path,
                entry.len,
                entry.sha256.unwrap_or_default()
            );
            hasher.update(line.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// Counts of injected faults and crashes so far.
    pub fn fault_stats(&self) -> FaultStats {
        self.lock().state.stats
    }
}

impl Vfs for SimDisk {
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        let mut inner = self.lock();
        let result = inner.state.op_open(path, options);
        inner.record(|| RecordedOp::Open { path: path.to_path_buf(), options });
        let handle = result?;
        Ok(Box::new(SimFile { shared: Arc::clone(&self.shared), handle }))
    }

    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        let mut inner = self.lock();
        let result = inner.state.op_create_dir(path);
        inner.record(|| RecordedOp::CreateDir(path.to_path_buf()));
        result
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        let mut inner = self.lock();
        let result = inner.state.op_remove_file(path);
        inner.record(|| RecordedOp::RemoveFile(path.to_path_buf()));
        result
    }

    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        let mut inner = self.lock();
        let result = inner.state.op_remove_dir(path);
        inner.record(|| RecordedOp::RemoveDir(path.to_path_buf()));
        result
    }

    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()> {
        let mut inner = self.lock();
        let result = inner.state.op_rename(from, to);
        inner.record(|| RecordedOp::Rename(from.to_path_buf(), to.to_path_buf()));
        result
    }

    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        let mut inner = self.lock();
        let result = inner.state.op_read_dir(path);
        inner.record(|| RecordedOp::ReadDir(path.to_path_buf()));
        result
    }

    fn metadata(&self, path: &Path) -> VfsResult<Metadata> {
        let mut inner = self.lock();
        let result = inner.state.op_metadata(path);
        inner.record(|| RecordedOp::Metadata(path.to_path_buf()));
        result
    }

    fn sync_dir(&self, path: &Path) -> VfsResult<()> {
        let mut inner = self.lock();
        let result = inner.state.op_sync_dir(path);
        inner.record(|| RecordedOp::SyncDir(path.to_path_buf()));
        result
    }

    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        let mut inner = self.lock();
        let result = inner.state.op_try_lock(path, mode);
        inner.record(|| RecordedOp::TryLock(path.to_path_buf(), mode));
        let lock = result?;
        Ok(Box::new(SimLock { shared: Arc::clone(&self.shared), lock, recorded: true }))
    }

    fn declare_write_atomicity(&self, path: &Path, atomicity: WriteAtomicity) -> VfsResult<()> {
        let mut inner = self.lock();
        let result = inner.state.declare_write_atomicity(path, atomicity);
        inner.record(|| RecordedOp::DeclareWriteAtomicity(path.to_path_buf(), atomicity));
        result.map_err(|kind| VfsError::new("declare_write_atomicity", path, kind))
    }
}

/// A lock held on a [`SimDisk`] file: released when dropped, or by a crash (which kills the
/// process that held it; the guard then releases nothing).
struct SimLock {
    shared: Arc<Mutex<Inner>>,
    lock: LockRef,
    /// Whether the release is recorded for enumeration (an observer's lock is not).
    recorded: bool,
}

impl VfsLock for SimLock {
    fn path(&self) -> &Path {
        Path::new(&*self.lock.path)
    }

    fn mode(&self) -> LockMode {
        self.lock.mode
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut inner = lock(&self.shared);
        inner.state.unlock(&self.lock);
        if self.recorded {
            inner.record(|| RecordedOp::Unlock(self.lock.clone()));
        }
    }
}

/// A read-only window onto a [`SimDisk`] ([`SimDisk::observer`]): reads and locks without
/// being numbered or traced, mutating calls refused with `ReadOnly` and counted.
pub struct SimObserver {
    shared: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for SimObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimObserver")
    }
}

impl SimObserver {
    fn refuse(&self, op: &'static str, path: &Path) -> VfsError {
        let kind = lock(&self.shared).state.peek_refuse();
        VfsError::new(op, path, kind)
    }
}

impl Vfs for SimObserver {
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        let handle = lock(&self.shared)
            .state
            .peek_open(path, options)
            .map_err(|kind| VfsError::new("open", path, kind))?;
        Ok(Box::new(ObserverFile { shared: Arc::clone(&self.shared), handle }))
    }

    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        Err(self.refuse("create_dir", path))
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        Err(self.refuse("remove_file", path))
    }

    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        Err(self.refuse("remove_dir", path))
    }

    fn rename(&self, from: &Path, _to: &Path) -> VfsResult<()> {
        Err(self.refuse("rename", from))
    }

    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        let inner = lock(&self.shared);
        inner.state.peek_read_dir(path).map_err(|kind| VfsError::new("read_dir", path, kind))
    }

    fn metadata(&self, path: &Path) -> VfsResult<Metadata> {
        let inner = lock(&self.shared);
        inner.state.peek_metadata(path).map_err(|kind| VfsError::new("metadata", path, kind))
    }

    fn sync_dir(&self, path: &Path) -> VfsResult<()> {
        Err(self.refuse("sync_dir", path))
    }

    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        let lock_ref = lock(&self.shared)
            .state
            .peek_lock(path, mode)
            .map_err(|kind| VfsError::new("try_lock", path, kind))?;
        Ok(Box::new(SimLock { shared: Arc::clone(&self.shared), lock: lock_ref, recorded: false }))
    }

    /// Not I/O: an observer's declaration holds like anyone's (an observer writes nothing, so
    /// it only matters to writers of the same file).
    fn declare_write_atomicity(&self, path: &Path, atomicity: WriteAtomicity) -> VfsResult<()> {
        let mut inner = lock(&self.shared);
        let result = inner.state.declare_write_atomicity(path, atomicity);
        result.map_err(|kind| VfsError::new("declare_write_atomicity", path, kind))
    }
}

/// A file opened through a [`SimObserver`].
struct ObserverFile {
    shared: Arc<Mutex<Inner>>,
    handle: HandleRef,
}

impl ObserverFile {
    fn refuse(&self, op: &'static str) -> VfsError {
        let kind = lock(&self.shared).state.peek_refuse();
        VfsError::new(op, &*self.handle.path, kind)
    }
}

impl VfsFile for ObserverFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        let inner = lock(&self.shared);
        inner
            .state
            .peek_read(&self.handle, buf, offset)
            .map_err(|kind| VfsError::new("read_at", &*self.handle.path, kind))
    }

    fn write_at(&self, _buf: &[u8], _offset: u64) -> VfsResult<()> {
        Err(self.refuse("write_at"))
    }

    fn len(&self) -> VfsResult<u64> {
        let inner = lock(&self.shared);
        inner
            .state
            .peek_len(&self.handle)
            .map_err(|kind| VfsError::new("len", &*self.handle.path, kind))
    }

    fn set_len(&self, _len: u64) -> VfsResult<()> {
        Err(self.refuse("set_len"))
    }

    fn sync(&self) -> VfsResult<()> {
        Err(self.refuse("sync"))
    }
}

impl Drop for ObserverFile {
    fn drop(&mut self) {
        lock(&self.shared).state.peek_close(&self.handle);
    }
}

/// An open file of a [`SimDisk`]: the inode it was opened on (it follows renames and
/// survives unlinks, as on Linux) and the crash generation it belongs to.
struct SimFile {
    shared: Arc<Mutex<Inner>>,
    handle: HandleRef,
}

impl VfsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        let mut inner = lock(&self.shared);
        let result = inner.state.op_read(&self.handle, buf, offset);
        let len = buf.len();
        inner.record(|| RecordedOp::Read { handle: self.handle.clone(), len, offset });
        result
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> VfsResult<()> {
        let mut inner = lock(&self.shared);
        let result = inner.state.op_write(&self.handle, buf, offset);
        inner.record(|| RecordedOp::Write {
            handle: self.handle.clone(),
            data: buf.to_vec(),
            offset,
        });
        result
    }

    fn len(&self) -> VfsResult<u64> {
        let mut inner = lock(&self.shared);
        let result = inner.state.op_len(&self.handle);
        inner.record(|| RecordedOp::Len(self.handle.clone()));
        result
    }

    fn set_len(&self, len: u64) -> VfsResult<()> {
        let mut inner = lock(&self.shared);
        let result = inner.state.op_set_len(&self.handle, len);
        inner.record(|| RecordedOp::SetLen(self.handle.clone(), len));
        result
    }

    fn sync(&self) -> VfsResult<()> {
        let mut inner = lock(&self.shared);
        let result = inner.state.op_sync(&self.handle);
        inner.record(|| RecordedOp::Sync(self.handle.clone()));
        result
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut inner = lock(&self.shared);
        if inner.state.op_close(&self.handle) {
            inner.record(|| RecordedOp::Close(self.handle.clone()));
        }
    }
}
