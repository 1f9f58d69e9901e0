//! `braft_view` (DESIGN §7, check 10): what real braft would load from a `local://`
//! directory, read by the independent oracle [`crate::braft_view`], against what the local
//! family shows.
//!
//! **What it verifies.**
//! - [`judge_import`]: at a crash point of an import, braft sees an empty node or exactly the
//!   image — never a log or a `raft_meta` of a half-done import.
//! - [`CrashProbe`]: braft's view of a crashed disk (read before our open repairs anything)
//!   equals the state the family then recovers, or differs only in one of the windows below.
//! - [`judge_open`]: braft's view of a directory the family has opened (and so repaired)
//!   equals the family's state exactly.
//!
//! Peers are compared in braft's printed spelling (`ip:port:idx:role`), the one braft itself
//! loads.
//!
//! **The divergences it accepts, and only these** (each a window braft's own format cannot
//! close; the family's module doc lists them too):
//! 1. *A torn, unacknowledged tail of the open segment.* A crash can leave an unsynced
//!    append half on disk: a complete header over never-written (zero) sectors, or a payload
//!    that does not match its checksum. braft's default init fails on the first and loads the
//!    second (its `get()` refuses it later); the family trims both as torn. Accepted when
//!    braft's view with `raft_recover_log_from_corrupt` and the open segment cut at its first
//!    unreadable entry equals the family's.
//! 2. *A reset past its `log_meta`.* braft's reset writes `log_meta` and then unlinks every
//!    segment (braft-format.md §5.6); a crash in between keeps every segment reaching the new
//!    first index, or breaks init with a hole. The family's redo record (`log/qk_pending_op`)
//!    completes the reset. Accepted while that record names a reset to the family's first
//!    index, when braft's log starts there and holds only entries of an allowed state, or
//!    braft's log init fails; meta and snapshot must agree.
//! 3. *A truncate_suffix across segments.* braft unlinks segments back to front, so a crash
//!    leaves a longer prefix of the old log; the family's redo record completes the
//!    truncation. Accepted while that record names a truncate_suffix, when braft's log is a
//!    prefix of an allowed state that extends the family's; meta and snapshot must agree.
//! 4. *A republish of the current snapshot index.* A directory rename cannot replace a
//!    non-empty directory, so between retiring the old `snapshot_N` and renaming the new one
//!    in, braft finds no snapshot; the family's marker (`snapshot/qk_publish`) finishes the
//!    publish. Accepted while the marker names the family's snapshot index and braft sees no
//!    snapshot; log and meta must agree.
//!
//! **When.** On every `local://` directory braft could read ([`local_roots`]: a local
//! family's instance, a local pair primary): in the image checks, at `import_atomicity`'s
//! crash point of every import into the local family ([`judge_import`], then
//! [`judge_open`] after the reopen); after every power loss the runner plays (a probe of a
//! fork of the crashed disk before the reopen, judged once `crash_atomicity` passed, then
//! [`judge_open`]); after every clean reopen ([`judge_open`]); and on every enumerated crash
//! state of exhaustive mode and of the conformance crash cases, through
//! [`CrashCheck`](super::crash_atomicity::CrashCheck)'s `braft_roots`. It reads forks of a
//! live disk, so the run's own disk sees no extra operations. Proven to bite by
//! `unpadded-segment-names` (segment names written unpadded behind the family's back; its
//! own reader accepts them, braft cannot open them), caught by this check alone.
//!
//! **What not.** Disks under a dishonest fault plan and unchecked runs (the check is off:
//! rot or a lying fsync may leave a view the oracle cannot judge), a pair's local mirror,
//! the crash states of a joined pair in exhaustive mode and of the join's bootstrap, and
//! what braft's node does after loading (the term bump of braft-format.md §6.1).

use std::path::{Path, PathBuf};

use crate::braft_view::{self, peer, BraftLoad, BraftOptions, BraftPaths, BraftView, Store};
use crate::contract::{Entry, Family, Meta, Payload, PeerId};
use crate::dual_write::DualFamily;
use crate::families::local::format::{
    PendingOp, PendingOpKind, PENDING_OP_NAME, PUBLISH_MARKER_NAME,
};
use crate::sim::checks::import_atomicity::CrashedImport;
use crate::sim::engine::subject::Subject;
use crate::state::{first_difference, RaftState, Snapshot};
use crate::vfs::{OpenOptions, SimDisk, Vfs, VfsErrorKind};

/// Which documented divergence a crash state showed (see the module doc), if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// braft would load exactly the family's state.
    Equal,
    /// Divergence 1: a torn, unacknowledged tail of the open segment.
    TornOpenTail,
    /// Divergence 2: a reset past its `log_meta`.
    ResetWindow,
    /// Divergence 3: a truncate_suffix across segments.
    TruncateSuffixWindow,
    /// Divergence 4: a republish of the current snapshot index.
    RepublishWindow,
}

/// `state` with every peer in braft's printed spelling.
pub fn canonical(state: &RaftState) -> RaftState {
    let peer = |p: &PeerId| match peer::parse(p.as_str().as_bytes()) {
        peer::Peer::Parsed(text) => PeerId::new(text),
        _ => p.clone(),
    };
    let peers = |list: &[PeerId]| list.iter().map(peer).collect::<Vec<_>>();
    let entries = state
        .entries
        .iter()
        .map(|e| match &e.payload {
            Payload::Configuration { peers: p, old_peers } => Entry {
                index: e.index,
                term: e.term,
                payload: Payload::Configuration { peers: peers(p), old_peers: peers(old_peers) },
            },
            _ => e.clone(),
        })
        .collect();
    let meta = Meta { term: state.meta.term, voted_for: state.meta.voted_for.as_ref().map(peer) };
    let snapshot = state.snapshot.as_ref().map(|s| {
        let mut meta = s.meta.clone();
        meta.peers = peers(&s.meta.peers);
        meta.old_peers = peers(&s.meta.old_peers);
        Snapshot { meta, files: s.files.clone() }
    });
    RaftState { first: state.first, entries, meta, snapshot }
}

fn read(vfs: &dyn Vfs, dir: &Path, options: BraftOptions) -> Result<BraftLoad, String> {
    braft_view::read_with(vfs, &BraftPaths::under(dir), options)
        .map_err(|e| format!("braft's view of {} could not be read: {e}", dir.display()))
}

fn differs(view: &BraftView, state: &RaftState) -> String {
    match view.state() {
        Some(braft) => format!(
            "braft would load another state than the family's: {}",
            first_difference(&braft, state).unwrap_or_default()
        ),
        None => format!("braft {view}, while the family shows a state"),
    }
}

/// Import atomicity through braft's eyes: braft's view of `dir` is an empty node or exactly
/// `image`.
pub fn judge_import(vfs: &dyn Vfs, dir: &Path, image: &RaftState) -> Result<(), String> {
    let load = read(vfs, dir, BraftOptions::default())?;
    match load.view.state() {
        Some(s) if s == RaftState::new() || s == canonical(image) => Ok(()),
        _ => Err(format!(
            "at a crash point of an import braft would load neither an empty node nor the \
             image: {}",
            differs(&load.view, &canonical(image))
        )),
    }
}

/// Whether braft could read an instance of `family` (the local family, or a planted bug
/// over it).
pub fn reads(family: &dyn Family) -> bool {
    family.scheme() == "local"
}

/// [`judge_import`] of the crashed disk `import_atomicity` kept, then [`judge_open`] of the
/// disk it reopened. `Err` when braft would load something else; no verdict (`Ok`) when no
/// crashed disk was kept.
pub fn judge_crashed_import(crashed: &CrashedImport, image: &RaftState) -> Result<(), String> {
    let Some(before_reopen) = &crashed.crashed else { return Ok(()) };
    let dir = Path::new(crashed.location);
    judge_import(before_reopen.as_ref(), dir, image)?;
    judge_open(crashed.disk.as_ref(), dir, &crashed.state)
        .map_err(|what| format!("after reopening: {what}"))
}

/// braft's view of a directory the family has opened equals the family's `state`.
pub fn judge_open(vfs: &dyn Vfs, dir: &Path, state: &RaftState) -> Result<(), String> {
    let load = read(vfs, dir, BraftOptions::default())?;
    let state = canonical(state);
    match load.view.state() {
        Some(s) if s == state => Ok(()),
        _ => Err(format!("after the family's open: {}", differs(&load.view, &state))),
    }
}

/// braft's view of a crashed disk, read before the family's open repairs it: the view with
/// default flags, the lenient view of divergence 1 (read only when it can differ: init
/// fails, or an entry of the open segment is unreadable), and the family's redo record and
/// publish marker.
pub struct CrashProbe {
    dir: PathBuf,
    strict: BraftView,
    lenient: Option<BraftView>,
    pending: Option<PendingOp>,
    republish: Option<u64>,
}

impl CrashProbe {
    /// Reads the probe of `dir` on `vfs` as it is now (call it before reopening).
    pub fn take(vfs: &dyn Vfs, dir: &Path) -> Result<Self, String> {
        let strict = read(vfs, dir, BraftOptions::default())?;
        let may_differ = matches!(strict.view, BraftView::InitFails(_))
            || strict.notes.unreadable.iter().any(|(_, open)| *open);
        let lenient = if may_differ {
            let options =
                BraftOptions { recover_log_from_corrupt: true, cut_unreadable_open_tail: true };
            Some(read(vfs, dir, options)?.view)
        } else {
            None
        };
        let pending = small_file(vfs, &dir.join("log").join(PENDING_OP_NAME))?
            .and_then(|b| PendingOp::decode(&b));
        let republish = small_file(vfs, &dir.join("snapshot").join(PUBLISH_MARKER_NAME))?
            .filter(|b| b.len() == 12 && crc32c::crc32c(&b[..8]).to_be_bytes() == b[8..12])
            .map(|b| u64::from_be_bytes(b[..8].try_into().expect("8 bytes")));
        Ok(CrashProbe { dir: dir.to_path_buf(), strict: strict.view, lenient, pending, republish })
    }

    /// Judges the state the family recovered from this crash state; `allowed` are the
    /// states the atomicity table allowed there.
    pub fn judge(&self, recovered: &RaftState, allowed: &[RaftState]) -> Result<Agreement, String> {
        let recovered = canonical(recovered);
        let braft = self.strict.state();
        if braft.as_ref() == Some(&recovered) {
            return Ok(Agreement::Equal);
        }
        if self.lenient.as_ref().and_then(BraftView::state).as_ref() == Some(&recovered) {
            return Ok(Agreement::TornOpenTail);
        }
        let allowed: Vec<RaftState> = allowed.iter().map(canonical).collect();
        let window = match self.pending {
            Some(op) if op.kind == PendingOpKind::Reset => {
                reset_window(&self.strict, &recovered, &allowed, op.arg)
                    .then_some(Agreement::ResetWindow)
            }
            Some(op) if op.kind == PendingOpKind::TruncateSuffix => braft
                .as_ref()
                .filter(|b| truncate_suffix_window(b, &recovered, &allowed))
                .map(|_| Agreement::TruncateSuffixWindow),
            _ => None,
        };
        if let Some(window) = window {
            return Ok(window);
        }
        if let (Some(index), Some(b)) = (self.republish, &braft) {
            let family_index = recovered.snapshot.as_ref().map(|s| s.meta.last_included_index);
            if family_index == Some(index)
                && b.snapshot.is_none()
                && same_log_and_meta(b, &recovered)
            {
                return Ok(Agreement::RepublishWindow);
            }
        }
        Err(format!("crash state of {}: {}", self.dir.display(), differs(&self.strict, &recovered)))
    }
}

/// The `local://` directories braft could read for `subject` at `location`: a local
/// family's instance, or a pair's local primary (`LOC/primary`).
pub fn local_roots(subject: &Subject, location: &str) -> Vec<PathBuf> {
    match subject {
        Subject::Family(f) if f.scheme() == "local" => vec![PathBuf::from(location)],
        Subject::Pair(p) if p.primary_family().scheme() == "local" => {
            vec![PathBuf::from(DualFamily::primary_location(location))]
        }
        _ => Vec::new(),
    }
}

/// Probes every root on `vfs` (before a reopen). A caller holding a live disk passes a
/// fork ([`SimDisk::fork`]), so its own disk sees no extra operations.
pub fn probe_all(vfs: &dyn Vfs, roots: &[PathBuf]) -> Result<Vec<CrashProbe>, String> {
    roots.iter().map(|root| CrashProbe::take(vfs, root)).collect()
}

/// Judges every probe against the recovered state.
pub fn judge_all(
    probes: &[CrashProbe],
    recovered: &RaftState,
    allowed: &[RaftState],
) -> Result<(), String> {
    for probe in probes {
        probe.judge(recovered, allowed)?;
    }
    Ok(())
}

/// [`judge_open`] of every root on `vfs` (a fork of a live disk, see [`probe_all`]).
pub fn judge_open_all(vfs: &dyn Vfs, roots: &[PathBuf], state: &RaftState) -> Result<(), String> {
    for root in roots {
        judge_open(vfs, root, state)?;
    }
    Ok(())
}

/// A copy of `disk` to read braft's view on, or `None` when there is nothing to read.
pub fn fork_for(disk: &SimDisk, roots: &[PathBuf]) -> Option<std::sync::Arc<SimDisk>> {
    (!roots.is_empty()).then(|| disk.fork())
}

fn same_log_and_meta(a: &RaftState, b: &RaftState) -> bool {
    a.first == b.first && a.entries == b.entries && a.meta == b.meta
}

fn reset_window(view: &BraftView, recovered: &RaftState, allowed: &[RaftState], next: u64) -> bool {
    if recovered.first != next || !recovered.entries.is_empty() {
        return false;
    }
    match view {
        BraftView::InitFails(why) => why.store == Store::Log,
        // `log_meta` already names the new first index; a stale open segment above it is
        // not unlinked yet (braft warns and starts on the hole).
        BraftView::LogHole { expected, .. } => *expected == next,
        BraftView::State(b) => {
            b.first == next
                && b.meta == recovered.meta
                && b.snapshot == recovered.snapshot
                && b.entries.iter().all(|e| allowed.iter().any(|a| a.get(e.index) == Some(e)))
        }
        _ => false,
    }
}

fn truncate_suffix_window(braft: &RaftState, recovered: &RaftState, allowed: &[RaftState]) -> bool {
    braft.first == recovered.first
        && braft.meta == recovered.meta
        && braft.snapshot == recovered.snapshot
        && braft.entries.starts_with(&recovered.entries)
        && allowed.iter().any(|a| a.first == braft.first && a.entries.starts_with(&braft.entries))
}

fn small_file(vfs: &dyn Vfs, path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = match vfs.open(path, OpenOptions::READ) {
        Ok(f) => f,
        Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let mut buf = vec![0u8; 64];
    let n = file.read_at(&mut buf, 0).map_err(|e| format!("reading {}: {e}", path.display()))?;
    buf.truncate(n);
    Ok(Some(buf))
}
