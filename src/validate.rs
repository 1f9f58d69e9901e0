//! The streaming equivalence validator (DESIGN §2, §6): compares two instances of any
//! families — anything that is a [`StateView`]: live instances, pinned export cuts, the
//! model — and names the first difference in words a person can act on.
//!
//! It compares what the contract calls the Raft-visible state, in the order
//! [`crate::state::first_difference`] uses and with the same words: the retained range, every
//! retained entry (index field, term, kind, payload), term and vote, the latest snapshot's
//! meta, then its file tree (paths, contents, file metadata). Unlike `first_difference` it
//! never holds an instance in memory: entries are read and compared one at a time and
//! snapshot files [`CHUNK_LEN`] bytes at a time, so memory stays flat however large the
//! instances are. (The list of snapshot file names and lengths is held, as the contract's
//! `snapshot_files` returns it.)
//!
//! The parts are public on their own ([`range_difference`], [`entries_difference`],
//! [`meta_difference`], [`snapshot_difference`]) because the dual-write repair planner asks
//! them one at a time.
//!
//! A read that fails is an error, not a difference: the caller learns which instance could not
//! be read. A view that lists a file with one length and reads back another, or has a hole in
//! its retained range, is reported as a `Backend` error of the view, as
//! [`crate::state::RaftState::capture`] does.

use serde::{Deserialize, Serialize};

use crate::contract::{
    Entry, Index, SnapshotFileInfo, SnapshotPath, StateView, StorageError, StorageResult,
};
use crate::state::{entry_difference, show_vote};

/// Bytes of a snapshot file read from each side per comparison step.
pub const CHUNK_LEN: usize = 64 * 1024;

/// Entries compared between two progress reports.
const PROGRESS_EVERY_ENTRIES: u64 = 4096;

/// The outcome of a comparison: the first difference (if any) and how much was compared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The first difference in words, or `None` when the instances are equivalent.
    pub difference: Option<String>,
    /// Entries compared (pairs of entries read).
    pub entries: u64,
    /// Snapshot files compared.
    pub files: u64,
    /// Snapshot bytes compared (per side).
    pub bytes: u64,
}

impl Comparison {
    /// Whether the two instances are equivalent.
    pub fn equivalent(&self) -> bool {
        self.difference.is_none()
    }
}

/// How far a comparison has come, for progress bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Entries compared so far.
    pub entries_done: u64,
    /// Entries to compare (the retained range's length, once both ranges agree).
    pub entries_total: u64,
    /// Snapshot files compared so far.
    pub files_done: u64,
    /// Snapshot bytes compared so far (per side).
    pub bytes_done: u64,
}

/// Compares `a` with `b` (see the module doc); the difference names `a` first.
pub fn compare(a: &dyn StateView, b: &dyn StateView) -> StorageResult<Comparison> {
    compare_with_progress(a, b, &mut |_| {})
}

/// The first difference between `a` and `b` in words, or `None` when they are equivalent.
pub fn first_difference(a: &dyn StateView, b: &dyn StateView) -> StorageResult<Option<String>> {
    Ok(compare(a, b)?.difference)
}

/// As [`compare`], reporting progress to `on_progress` as it goes.
pub fn compare_with_progress(
    a: &dyn StateView,
    b: &dyn StateView,
    on_progress: &mut dyn FnMut(&Progress),
) -> StorageResult<Comparison> {
    let mut walk = Walk { progress: Progress::default(), on_progress };
    let difference = walk.compare(a, b)?;
    let progress = walk.progress;
    (walk.on_progress)(&progress);
    Ok(Comparison {
        difference,
        entries: progress.entries_done,
        files: progress.files_done,
        bytes: progress.bytes_done,
    })
}

struct Walk<'a> {
    progress: Progress,
    on_progress: &'a mut dyn FnMut(&Progress),
}

impl Walk<'_> {
    fn compare(&mut self, a: &dyn StateView, b: &dyn StateView) -> StorageResult<Option<String>> {
        if let Some(d) = range_difference(a, b) {
            return Ok(Some(d));
        }
        let (first, last) = (a.first_index(), a.last_index());
        if last >= first {
            self.progress.entries_total = (last - first).saturating_add(1);
            if let Some(d) = self.entries(a, b, first, last)? {
                return Ok(Some(d));
            }
        }
        if let Some(d) = meta_difference(a, b)? {
            return Ok(Some(d));
        }
        self.snapshot(a, b)
    }

    fn entries(
        &mut self,
        a: &dyn StateView,
        b: &dyn StateView,
        from: Index,
        to: Index,
    ) -> StorageResult<Option<String>> {
        let mut index = from;
        while index <= to {
            let (x, y) = (read_entry(a, index)?, read_entry(b, index)?);
            self.progress.entries_done += 1;
            if self.progress.entries_done.is_multiple_of(PROGRESS_EVERY_ENTRIES) {
                (self.on_progress)(&self.progress);
            }
            if let Some(what) = entry_difference(&x, &y) {
                return Ok(Some(format!("entry {index}: {what}")));
            }
            match index.checked_add(1) {
                Some(next) => index = next,
                None => break,
            }
        }
        Ok(None)
    }

    fn snapshot(&mut self, a: &dyn StateView, b: &dyn StateView) -> StorageResult<Option<String>> {
        let (m, n) = match (a.snapshot_meta()?, b.snapshot_meta()?) {
            (None, None) => return Ok(None),
            (Some(s), None) => {
                return Ok(Some(format!(
                    "snapshot differs: snapshot at index {} vs none",
                    s.last_included_index
                )))
            }
            (None, Some(s)) => {
                return Ok(Some(format!(
                    "snapshot differs: none vs snapshot at index {}",
                    s.last_included_index
                )))
            }
            (Some(m), Some(n)) => (m, n),
        };
        if m.last_included_index != n.last_included_index {
            return Ok(Some(format!(
                "snapshot meta last_included_index differs: {} vs {}",
                m.last_included_index, n.last_included_index
            )));
        }
        if m.last_included_term != n.last_included_term {
            return Ok(Some(format!(
                "snapshot meta last_included_term differs: {} vs {}",
                m.last_included_term, n.last_included_term
            )));
        }
        if m.peers != n.peers {
            return Ok(Some(format!("snapshot meta peers differ: {:?} vs {:?}", m.peers, n.peers)));
        }
        if m.old_peers != n.old_peers {
            return Ok(Some(format!(
                "snapshot meta old_peers differ: {:?} vs {:?}",
                m.old_peers, n.old_peers
            )));
        }
        self.files(a, b)
    }

    fn files(&mut self, a: &dyn StateView, b: &dyn StateView) -> StorageResult<Option<String>> {
        let (left, right) = (a.snapshot_files()?, b.snapshot_files()?);
        let (mut i, mut j) = (0, 0);
        let mut buf_a = vec![0u8; CHUNK_LEN];
        let mut buf_b = vec![0u8; CHUNK_LEN];
        loop {
            let (f, g) = match (left.get(i), right.get(j)) {
                (None, None) => return Ok(None),
                (Some(f), None) => return Ok(Some(only_in(&f.path, "first"))),
                (None, Some(g)) => return Ok(Some(only_in(&g.path, "second"))),
                (Some(f), Some(g)) => (f, g),
            };
            if f.path < g.path {
                return Ok(Some(only_in(&f.path, "first")));
            }
            if g.path < f.path {
                return Ok(Some(only_in(&g.path, "second")));
            }
            if let Some(d) = self.file(a, b, f, g, &mut buf_a, &mut buf_b)? {
                return Ok(Some(format!("snapshot file {}: {d}", f.path)));
            }
            if let Some(what) = f.file_meta.difference(&g.file_meta) {
                return Ok(Some(format!("snapshot file {}: file metadata {what}", f.path)));
            }
            self.progress.files_done += 1;
            i += 1;
            j += 1;
        }
    }

    /// Compares one file's contents chunk by chunk.
    fn file(
        &mut self,
        a: &dyn StateView,
        b: &dyn StateView,
        f: &SnapshotFileInfo,
        g: &SnapshotFileInfo,
        buf_a: &mut [u8],
        buf_b: &mut [u8],
    ) -> StorageResult<Option<String>> {
        let mut offset = 0u64;
        loop {
            let n = fill(a, &f.path, offset, buf_a)?;
            let m = fill(b, &g.path, offset, buf_b)?;
            let common = n.min(m);
            let mismatch = buf_a[..common].iter().zip(&buf_b[..common]).position(|(x, y)| x != y);
            self.progress.bytes_done += common as u64;
            let at = match mismatch {
                Some(i) => Some(offset + i as u64),
                None if n != m => Some(offset + common as u64),
                None => None,
            };
            // A side that returned less than a full buffer has ended: its length must be the
            // listed one.
            if n < buf_a.len() {
                check_len(f, offset + n as u64)?;
            }
            if m < buf_b.len() {
                check_len(g, offset + m as u64)?;
            }
            if let Some(at) = at {
                return Ok(Some(format!(
                    "content differs at byte {at} (lengths {} vs {})",
                    f.len, g.len
                )));
            }
            if n < buf_a.len() {
                return Ok(None);
            }
            (self.on_progress)(&self.progress);
            offset += n as u64;
        }
    }
}

/// The retained ranges' difference, in words, or `None` when they are equal.
pub fn range_difference(a: &dyn StateView, b: &dyn StateView) -> Option<String> {
    let (af, al, bf, bl) = (a.first_index(), a.last_index(), b.first_index(), b.last_index());
    (af != bf || al != bl).then(|| format!("retained range differs: [{af}, {al}] vs [{bf}, {bl}]"))
}

/// The first difference between the entries `from..=to` of `a` and `b` (both must retain
/// them), in words, with the number of entries compared.
pub fn entries_difference(
    a: &dyn StateView,
    b: &dyn StateView,
    from: Index,
    to: Index,
) -> StorageResult<(Option<String>, u64)> {
    let mut on_progress = |_: &Progress| {};
    let mut walk = Walk { progress: Progress::default(), on_progress: &mut on_progress };
    let difference = if to >= from { walk.entries(a, b, from, to)? } else { None };
    Ok((difference, walk.progress.entries_done))
}

/// The difference between the term and vote of `a` and `b`, in words.
pub fn meta_difference(a: &dyn StateView, b: &dyn StateView) -> StorageResult<Option<String>> {
    let (x, y) = (a.meta()?, b.meta()?);
    if x.term != y.term {
        return Ok(Some(format!("meta term differs: {} vs {}", x.term, y.term)));
    }
    if x.voted_for != y.voted_for {
        return Ok(Some(format!(
            "meta voted_for differs: {} vs {}",
            show_vote(&x.voted_for),
            show_vote(&y.voted_for)
        )));
    }
    Ok(None)
}

/// The first difference between the latest snapshots of `a` and `b` (meta, then the file
/// tree with contents and file metadata), in words.
pub fn snapshot_difference(a: &dyn StateView, b: &dyn StateView) -> StorageResult<Option<String>> {
    let mut on_progress = |_: &Progress| {};
    let mut walk = Walk { progress: Progress::default(), on_progress: &mut on_progress };
    walk.snapshot(a, b)
}

fn only_in(path: &SnapshotPath, which: &str) -> String {
    format!("snapshot file {path}: only in the {which}")
}

fn read_entry(view: &dyn StateView, index: Index) -> StorageResult<Entry> {
    view.entry(index)?.ok_or_else(|| StorageError::Backend {
        family: "view",
        message: format!("entry {index} inside the retained range could not be read"),
    })
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
fn fill(
    view: &dyn StateView,
    path: &SnapshotPath,
    offset: u64,
    buf: &mut [u8],
) -> StorageResult<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = view.read_snapshot_file(path, offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n.min(buf.len() - done);
    }
    Ok(done)
}

fn check_len(info: &SnapshotFileInfo, read: u64) -> StorageResult<()> {
    if read == info.len {
        return Ok(());
    }
    Err(StorageError::Backend {
        family: "view",
        message: format!(
            "snapshot file {} listed with {} bytes but {read} were read",
            info.path, info.len
        ),
    })
}
