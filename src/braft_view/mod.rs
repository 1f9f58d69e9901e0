//! braft's view: what real braft would load from a `local://` directory.
//!
//! An oracle for the harness and for operators (DESIGN §5 and §7 check 10): given the three
//! directories braft reads (`DIR/log`, `DIR/raft_meta`, `DIR/snapshot`, or braft's triple of
//! URIs), it answers "if braft started a node on these now, with default flags
//! (`raft_sync=true`, `raft_recover_log_from_corrupt=false`) in a brpc built without glog,
//! what storage state would the node load?" — [`BraftView::Empty`] (what a fresh node loads),
//! a [`BraftView::State`], or [`BraftView::InitFails`].
//!
//! It is written from `braft-format.md` (§1–§7) alone and shares no code with
//! `families/local/`: its own protobuf wire reader ([`wire`]), ProtoBufFile loader
//! ([`pbfile`]), `sscanf`-style name matching ([`names`]), PeerId parser ([`peer`]), segment
//! walk ([`log`]) and murmur3 ([`checksum`]); only CRC-32C comes from the `crc32c` crate.
//! That independence is the point: a format change that the family's reader and writer make
//! consistently (padding, field order, a checksum) still changes what this reader sees.
//!
//! It never writes. Where braft would delete or trim (a log without `log_meta`, `.tmp`
//! files, segments below `first_log_index`, torn tails, `temp/`, older snapshots), it
//! computes the state as if that had happened and lists the paths in [`Notes`].
//!
//! Two more outcomes keep the oracle honest: [`BraftView::NotAState`] when braft would start
//! but on something no contract state describes (a snapshot listing a file that is not on
//! disk; a hole before the open segment is [`BraftView::LogHole`]), and [`BraftView::Unspecified`] when braft-format.md
//! does not say what braft does (an overlapping open segment, a negative index, two snapshot
//! names for one index, ...). Neither is a guess.
//!
//! What braft's node does after loading (raising a stored term below the last entry's term,
//! §6.1) is node logic, not storage: the view is what the three storages load.
//!
//! Where braft-format.md leaves room, this reader reads it so (and says so in the report):
//! the closed-segment contiguity check compares with the previous *kept* segment (a leading
//! segment dropped below `first_log_index` is not "previous"); a segment matched by the scan
//! but unpadded, when braft drops it as below `first_log_index`, is dropped without error.

pub mod checksum;
pub mod log;
pub mod names;
pub mod pbfile;
pub mod peer;
pub mod snapshot;
pub mod stable;
pub mod wire;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::contract::{Index, PeerId};
use crate::state::RaftState;
use crate::vfs::{Vfs, VfsError};

/// braft's flags that change what an init loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BraftOptions {
    /// braft's `-raft_recover_log_from_corrupt` (default false): a bad header in the open
    /// segment is trimmed like a torn tail instead of failing init.
    pub recover_log_from_corrupt: bool,
    /// Not a braft flag: an analysis mode that also cuts the log at the first entry of the
    /// open segment whose payload checksum fails (braft loads it and refuses it later, at
    /// `get()`). The harness uses it to recognise a torn, unacknowledged tail.
    pub cut_unreadable_open_tail: bool,
}

/// Which of braft's three storages an outcome comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    /// `SegmentLogStorage` (`log/`).
    Log,
    /// `FileBasedSingleMetaStorage` (`raft_meta/`).
    Meta,
    /// `LocalSnapshotStorage` (`snapshot/`).
    Snapshot,
}

/// Why braft's init would fail.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InitFailure {
    /// The storage whose init fails.
    pub store: Store,
    /// The file or directory at fault.
    pub path: PathBuf,
    /// What braft would log.
    pub what: String,
}

impl fmt::Display for InitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

/// What braft would load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BraftView {
    /// Exactly what a fresh braft node loads: log `[1, 0]`, term 1, no vote, no snapshot.
    Empty,
    /// Another state (peers in braft's printed spelling, `ip:port:idx:role`).
    State(RaftState),
    /// braft's init would fail.
    InitFails(InitFailure),
    /// braft would start, but on something no contract state describes.
    NotAState(String),
    /// braft would start (it only warns) on a log with a hole: entries `expected..found`
    /// are missing before the segment that starts at `found`. No contract state either;
    /// apart because a reset's crash window produces exactly this.
    LogHole {
        /// The first index braft expected (`first_log_index` or the entry after the last).
        expected: Index,
        /// The first index of the segment after the hole.
        found: Index,
    },
    /// braft-format.md does not say what braft does here.
    Unspecified(String),
}

impl BraftView {
    /// The state braft would load (`Empty` as the fresh state), if it loads one.
    pub fn state(&self) -> Option<RaftState> {
        match self {
            BraftView::Empty => Some(RaftState::new()),
            BraftView::State(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for BraftView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BraftView::Empty => write!(f, "an empty node"),
            BraftView::State(s) => write!(
                f,
                "log [{}, {}], term {}, vote {}, snapshot {}",
                s.first,
                s.last(),
                s.meta.term,
                s.meta.voted_for.as_ref().map_or("none", |p| p.as_str()),
                s.snapshot.as_ref().map_or("none".to_string(), |x| format!(
                    "at {} ({} files)",
                    x.meta.last_included_index,
                    x.files.len()
                ))
            ),
            BraftView::InitFails(why) => write!(f, "init fails: {why}"),
            BraftView::NotAState(why) => write!(f, "starts on no contract state: {why}"),
            BraftView::LogHole { expected, found } => write!(
                f,
                "starts on no contract state: the open segment starts at {found} after a hole \
                 (braft only warns); entries {expected}..{found} are missing"
            ),
            BraftView::Unspecified(why) => write!(f, "braft-format.md does not say: {why}"),
        }
    }
}

/// What braft would do besides loading: files it would delete or trim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// Paths braft's init would delete (files, or directories recursively).
    pub deletes: Vec<PathBuf>,
    /// Files braft would `ftruncate`, and to which length.
    pub trims: Vec<(PathBuf, u64)>,
    /// Entries braft loads but whose payload checksum fails (its `get()` refuses them):
    /// index, and whether the entry is in the open segment.
    pub unreadable: Vec<(Index, bool)>,
    /// Whether braft would write a fresh `log_meta` (first index 1).
    pub writes_log_meta: bool,
}

/// The oracle's answer: the view and the notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BraftLoad {
    /// What braft would load.
    pub view: BraftView,
    /// What its init would delete or trim on the way.
    pub notes: Notes,
}

/// Why a read stopped before a state was assembled.
#[derive(Debug)]
pub enum Stop {
    /// braft's init fails.
    Fails(InitFailure),
    /// braft starts on no contract state.
    NotAState(String),
    /// braft starts on a log with a hole ([`BraftView::LogHole`]).
    LogHole {
        /// The first index braft expected.
        expected: Index,
        /// The first index of the segment after the hole.
        found: Index,
    },
    /// braft-format.md is silent.
    Unspecified(String),
    /// The disk could not be read (the oracle cannot say).
    Io(VfsError),
}

/// The three directories braft reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BraftPaths {
    /// The log storage's directory (`log_uri`).
    pub log: PathBuf,
    /// The meta storage's directory (`raft_meta_uri`).
    pub raft_meta: PathBuf,
    /// The snapshot storage's directory (`snapshot_uri`).
    pub snapshot: PathBuf,
}

impl BraftPaths {
    /// `DIR/log`, `DIR/raft_meta`, `DIR/snapshot` (braft's usual layout, §1).
    pub fn under(dir: &Path) -> Self {
        BraftPaths {
            log: dir.join("log"),
            raft_meta: dir.join("raft_meta"),
            snapshot: dir.join("snapshot"),
        }
    }
}

/// What braft would load from `local://DIR`, with default flags.
pub fn read(vfs: &dyn Vfs, dir: &Path) -> Result<BraftLoad, VfsError> {
    read_with(vfs, &BraftPaths::under(dir), BraftOptions::default())
}

/// What braft would load from the three directories with `options`. Only reads.
pub fn read_with(
    vfs: &dyn Vfs,
    paths: &BraftPaths,
    options: BraftOptions,
) -> Result<BraftLoad, VfsError> {
    let mut notes = Notes::default();
    let view = match assemble(vfs, paths, options, &mut notes) {
        Ok(state) if state == RaftState::new() => BraftView::Empty,
        Ok(state) => BraftView::State(state),
        Err(Stop::Fails(why)) => BraftView::InitFails(why),
        Err(Stop::NotAState(why)) => BraftView::NotAState(why),
        Err(Stop::LogHole { expected, found }) => BraftView::LogHole { expected, found },
        Err(Stop::Unspecified(why)) => BraftView::Unspecified(why),
        Err(Stop::Io(e)) => return Err(e),
    };
    Ok(BraftLoad { view, notes })
}

fn assemble(
    vfs: &dyn Vfs,
    paths: &BraftPaths,
    options: BraftOptions,
    notes: &mut Notes,
) -> Result<RaftState, Stop> {
    let (first, entries) = log::load(vfs, &paths.log, options, notes)?;
    let meta = stable::load(vfs, &paths.raft_meta)?;
    let snapshot = snapshot::load(vfs, &paths.snapshot, notes)?;
    Ok(RaftState { first, entries, meta, snapshot })
}

/// A peer list of a configuration or snapshot meta, as braft's `PeerId(string)` makes it:
/// an unparsable peer becomes the empty peer (a non-glog build only logs the failed CHECK).
pub(crate) fn peer_list(raw: &[Vec<u8>]) -> Result<Vec<PeerId>, Stop> {
    raw.iter()
        .map(|text| match peer::parse(text) {
            peer::Peer::Parsed(p) => Ok(PeerId::new(p)),
            peer::Peer::Unparsable => Ok(PeerId::new(peer::ANY)),
            peer::Peer::Unspecified(why) => Err(Stop::Unspecified(why)),
        })
        .collect()
}

/// `value` as an index or term: braft's int64 must not be negative here.
pub(crate) fn non_negative(value: i64, what: &str) -> Result<u64, Stop> {
    u64::try_from(value).map_err(|_| Stop::Unspecified(format!("a negative {what} ({value})")))
}

#[cfg(test)]
mod tests;
