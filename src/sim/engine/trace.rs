//! The run's trace: one line per step and per thing the runner did (a power loss, a
//! recovery, an export), hashed as it grows so two runs of a seed compare by one hash
//! (the `determinism` check), with the last few lines kept for failure reports. A run asked
//! for a timeline ([`super::runner::RunOptions::timeline`]) also stamps every line with the
//! disk's operation count, so each line can be shown with the disk operations it caused.

use std::collections::VecDeque;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::vfs::{DiskTimeline, SimDisk};

/// A bounded trace: every line feeds a running hash, the last few are kept as text.
#[derive(Clone, Debug)]
pub struct Trace {
    hasher: Sha256,
    tail: VecDeque<String>,
    tail_len: usize,
    /// With a timeline: the disk, and every line with the disk's operation count after it.
    stamped: Option<Stamped>,
}

/// The disk a trace stamps its lines from, and the lines stamped so far.
type Stamped = (Arc<SimDisk>, Vec<(String, u64)>);

/// A run's timeline: every trace line with the disk operations before it, and the disk's own
/// record (operations, and the fates of pending ones at each power loss).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunTimeline {
    /// Each trace line, with the disk's operation count when it was written: the operations
    /// numbered after the previous line's count, up to this one's, happened in its step.
    pub lines: Vec<(String, u64)>,
    /// What the disk recorded.
    pub disk: DiskTimeline,
}

impl Trace {
    /// A trace keeping the last `tail_len` lines.
    pub fn new(tail_len: usize) -> Self {
        Trace {
            hasher: Sha256::new(),
            tail: VecDeque::with_capacity(tail_len.min(64)),
            tail_len,
            stamped: None,
        }
    }

    /// A trace keeping the last `tail_len` lines that, given a `disk`, also records a
    /// timeline on it (the disk starts recording its own operations now).
    pub fn for_run(tail_len: usize, disk: Option<Arc<SimDisk>>) -> Self {
        let Some(disk) = disk else { return Trace::new(tail_len) };
        disk.record_timeline();
        Trace { stamped: Some((disk, Vec::new())), ..Trace::new(tail_len) }
    }

    /// Adds a line.
    pub fn push(&mut self, line: String) {
        self.hasher.update(line.as_bytes());
        self.hasher.update(b"\n");
        if let Some((disk, lines)) = &mut self.stamped {
            lines.push((line.clone(), disk.op_count()));
        }
        if self.tail_len > 0 {
            if self.tail.len() == self.tail_len {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }

    /// The kept lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// Hex SHA-256 of every line so far.
    pub fn hash(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// The timeline so far, if this trace records one.
    pub fn timeline(&self) -> Option<RunTimeline> {
        let (disk, lines) = self.stamped.as_ref()?;
        Some(RunTimeline { lines: lines.clone(), disk: disk.timeline().unwrap_or_default() })
    }
}
