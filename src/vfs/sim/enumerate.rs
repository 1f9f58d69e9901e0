//! Exhaustive crash states (ALICE-style): every crash point since a mark, and at each point
//! every subset of the unsynced operations when there are few of them.
//!
//! How: [`SimDisk::mark`](super::SimDisk::mark) copies the state and starts recording every
//! operation (with its bytes). Enumeration replays the recording on the copy one operation
//! at a time; after each operation that can change what a crash leaves (a mutation, a sync),
//! it forks the replayed state once per chosen subset of pending units and crashes the fork
//! with exactly that subset surviving. Replay is deterministic (the copy carries the
//! generators), so the replayed state after operation `n` is the state the real run had.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::crash::{CrashUnit, ExactChooser};
use super::image::{HandleRef, State};
use super::SimDisk;
use crate::vfs::OpenOptions;

/// A point in a disk's history from which [`SimDisk::crash_states`] enumerates crashes.
/// Taking a new mark, or a crash, ends the previous one.
#[derive(Debug)]
pub struct Mark {
    pub(super) id: u64,
    /// The number of the last operation before the mark.
    pub op_no: u64,
}

/// How [`SimDisk::crash_states`] chooses subsets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnumerateOptions {
    /// At a crash point with at most this many pending units, every subset is yielded
    /// (2^n states); capped at 20.
    pub subset_units_max: usize,
    /// With more pending units than that, this many subsets are sampled per point: the
    /// empty one, the full one, then random ones.
    pub sample_count: usize,
    /// Split each pending write into one unit per sector it touches (torn writes), instead
    /// of keeping or dropping writes whole.
    pub tear_writes: bool,
    /// Seed of the sampling (with the point's operation number as the stream).
    pub seed: u64,
}

impl Default for EnumerateOptions {
    fn default() -> Self {
        EnumerateOptions { subset_units_max: 8, sample_count: 64, tear_writes: false, seed: 0 }
    }
}

/// Why crash states cannot be enumerated.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnumerateError {
    /// The mark was ended by a newer mark or by a crash.
    #[error("the mark is no longer current (a newer mark or a crash ended it)")]
    StaleMark,
    /// More operations happened since the mark than the recording keeps.
    #[error("more than {ops_max} operations since the mark (recording_ops_max)")]
    TooLong {
        /// The bound that was passed.
        ops_max: usize,
    },
}

/// One post-crash disk: an independent disk, rebooted and ready to be reopened.
#[derive(Debug)]
pub struct CrashState {
    /// The crash happened right after this operation (the mark's own number: before any
    /// operation since the mark).
    pub after_op: u64,
    /// Units that were pending at that point.
    pub pending_units: usize,
    /// The units that survived (all others were lost).
    pub kept: Vec<CrashUnit>,
    /// The recovered disk.
    pub disk: Arc<SimDisk>,
}

/// One operation as recorded for replay.
#[derive(Clone, Debug)]
pub(super) enum RecordedOp {
    Open { path: PathBuf, options: OpenOptions },
    CreateDir(PathBuf),
    RemoveFile(PathBuf),
    RemoveDir(PathBuf),
    Rename(PathBuf, PathBuf),
    ReadDir(PathBuf),
    Metadata(PathBuf),
    SyncDir(PathBuf),
    Read { handle: HandleRef, len: usize, offset: u64 },
    Write { handle: HandleRef, data: Vec<u8>, offset: u64 },
    Len(HandleRef),
    SetLen(HandleRef, u64),
    Sync(HandleRef),
    Close(HandleRef),
    TryLock(PathBuf, crate::vfs::LockMode),
    DeclareWriteAtomicity(PathBuf, crate::vfs::WriteAtomicity),
    Unlock(super::image::LockRef),
}

impl RecordedOp {
    /// Whether a crash right after this operation may leave something new (reads cannot).
    fn is_crash_point(&self) -> bool {
        match self {
            RecordedOp::ReadDir(_)
            | RecordedOp::Metadata(_)
            | RecordedOp::Read { .. }
            | RecordedOp::Len(_)
            | RecordedOp::TryLock(..)
            | RecordedOp::DeclareWriteAtomicity(..)
            | RecordedOp::Unlock(_) => false,
            RecordedOp::Open { options, .. } => {
                options.create || options.create_new || options.truncate
            }
            _ => true,
        }
    }

    fn replay(&self, state: &mut State) {
        // Results are those of the original run (same state, same generators): ignored here.
        match self {
            RecordedOp::Open { path, options } => drop(state.op_open(path, *options)),
            RecordedOp::CreateDir(path) => drop(state.op_create_dir(path)),
            RecordedOp::RemoveFile(path) => drop(state.op_remove_file(path)),
            RecordedOp::RemoveDir(path) => drop(state.op_remove_dir(path)),
            RecordedOp::Rename(from, to) => drop(state.op_rename(from, to)),
            RecordedOp::ReadDir(path) => drop(state.op_read_dir(path)),
            RecordedOp::Metadata(path) => drop(state.op_metadata(path)),
            RecordedOp::SyncDir(path) => drop(state.op_sync_dir(path)),
            RecordedOp::Read { handle, len, offset } => {
                let mut buf = vec![0u8; *len];
                drop(state.op_read(handle, &mut buf, *offset));
            }
            RecordedOp::Write { handle, data, offset } => {
                drop(state.op_write(handle, data, *offset))
            }
            RecordedOp::Len(handle) => drop(state.op_len(handle)),
            RecordedOp::SetLen(handle, len) => drop(state.op_set_len(handle, *len)),
            RecordedOp::Sync(handle) => drop(state.op_sync(handle)),
            RecordedOp::Close(handle) => {
                state.op_close(handle);
            }
            // The replayed lock has no guard; the crash that makes each state drops it.
            RecordedOp::TryLock(path, mode) => drop(state.op_try_lock(path, *mode)),
            RecordedOp::Unlock(lock) => state.unlock(lock),
            RecordedOp::DeclareWriteAtomicity(path, atomicity) => {
                let _ = state.declare_write_atomicity(path, *atomicity);
            }
        }
    }
}

/// The operations since a mark, and the state at the mark.
#[derive(Debug)]
pub(super) struct Recording {
    pub id: u64,
    pub base: State,
    pub ops: Vec<RecordedOp>,
    pub overflowed: bool,
}

impl Recording {
    /// Appends an operation, or gives up (freeing the memory) past `ops_max`.
    pub fn push(&mut self, ops_max: usize, op: impl FnOnce() -> RecordedOp) {
        if self.overflowed {
            return;
        }
        if self.ops.len() >= ops_max {
            self.overflowed = true;
            self.ops = Vec::new();
            return;
        }
        self.ops.push(op());
    }
}

/// Iterator over the crash states since a mark (see [`SimDisk::crash_states`]). Lazy: each
/// state is built when asked for, so memory holds one replayed state plus the one yielded.
pub struct CrashStates {
    state: State,
    ops: std::vec::IntoIter<RecordedOp>,
    options: EnumerateOptions,
    point: Option<Point>,
}

/// The subsets still to yield at one crash point.
struct Point {
    after_op: u64,
    units: Vec<CrashUnit>,
    next: u64,
    count: u64,
    /// Random subsets when there are too many units to enumerate.
    sampler: Option<ChaCha8Rng>,
}

impl CrashStates {
    pub(super) fn new(recording: Recording, options: EnumerateOptions) -> Self {
        let mut states = CrashStates {
            state: recording.base,
            ops: recording.ops.into_iter(),
            options,
            point: None,
        };
        states.point = Some(states.new_point());
        states
    }

    fn new_point(&self) -> Point {
        let units = self.state.pending_units(self.options.tear_writes);
        let exhaustive = units.len() <= self.options.subset_units_max.min(20);
        let (count, sampler) = if exhaustive {
            (1u64 << units.len(), None)
        } else {
            let mut rng = ChaCha8Rng::seed_from_u64(self.options.seed);
            rng.set_stream(self.state.op_no);
            (self.options.sample_count.max(2) as u64, Some(rng))
        };
        Point { after_op: self.state.op_no, units, next: 0, count, sampler }
    }

    /// Replays up to and including the next crash point; false at the end of the recording.
    fn advance(&mut self) -> bool {
        for op in self.ops.by_ref() {
            op.replay(&mut self.state);
            if op.is_crash_point() {
                return true;
            }
        }
        false
    }
}

impl Iterator for CrashStates {
    type Item = CrashState;

    fn next(&mut self) -> Option<CrashState> {
        loop {
            let point = self.point.as_mut()?;
            if point.next < point.count {
                let idx = point.next;
                point.next += 1;
                let kept: Vec<CrashUnit> = match &mut point.sampler {
                    None => point
                        .units
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| idx >> i & 1 == 1)
                        .map(|(_, u)| *u)
                        .collect(),
                    Some(rng) => match idx {
                        0 => Vec::new(),
                        1 => point.units.clone(),
                        _ => point.units.iter().filter(|_| rng.random::<bool>()).copied().collect(),
                    },
                };
                let after_op = point.after_op;
                let pending_units = point.units.len();
                let mut chooser = ExactChooser {
                    kept: kept.iter().copied().collect::<BTreeSet<_>>(),
                    tear_writes: self.options.tear_writes,
                };
                let mut state = self.state.clone();
                state.crash(&mut chooser);
                return Some(CrashState {
                    after_op,
                    pending_units,
                    kept,
                    disk: SimDisk::from_state(state),
                });
            }
            if !self.advance() {
                self.point = None;
                return None;
            }
            self.point = Some(self.new_point());
        }
    }
}
