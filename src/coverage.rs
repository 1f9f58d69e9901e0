//! Coverage counters: which paths of the product a run actually took, counted, so that the
//! reach of a soak is measured rather than assumed (DESIGN §7).
//!
//! Family code marks a path with [`hit`]`(Point::...)`, one line at the place the path is
//! taken. A hit is counted only inside [`record`], which runs a closure and returns what it
//! hit; outside one, [`hit`] does nothing. Recordings live in a thread-local stack, so tests
//! running on other threads never see each other's counts, and nothing is shared between
//! concurrent runs. A nested recording's hits are also added to the recording around it.
//!
//! Counts are deterministic exactly when the code that hits them is: the same seed gives the
//! same counts (nothing here reads a clock or a hash map).
//!
//! This module belongs to neither side: the families may use it, and it needs nothing from
//! the harness (the harness reads the counts and reports them, see `sim::soak`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! points {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// A path a run can take and the counters report. Names are stable: reports and
        /// JSON use them (`family.path`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Point {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Point {
            /// Every point, in report order.
            pub const ALL: &'static [Point] = &[$(Point::$variant,)*];

            /// The stable name, `family.path`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Point::$variant => $name,)*
                }
            }
        }
    };
}

points! {
    /// local: an append closed the open segment because it outgrew the segment size.
    LocalSegmentRollover => "local.segment_rollover",
    /// local: an open loaded a closed segment (`log_F_L`) and checked it.
    LocalClosedSegmentRecovered => "local.closed_segment_recovered",
    /// local: an open read records of both checksum types (crc32c and murmur3).
    LocalMixedChecksumsRead => "local.mixed_checksums_read",
    /// local: an open named the instance by braft's three URIs (the `local.braft_uris`
    /// tunable), parsed by `LocalPaths::from_uris`.
    LocalOpenedByBraftUris => "local.opened_by_braft_uris",
    /// local: truncate_suffix removed whole segments.
    LocalTruncateSuffixAcrossSegments => "local.truncate_suffix_across_segments",
    /// local: truncate_suffix cut a closed segment (renamed back to in-progress).
    LocalTruncateSuffixReopensClosed => "local.truncate_suffix_reopens_closed",
    /// local: truncate_prefix unlinked whole segments below the new first index.
    LocalTruncatePrefixDropsSegments => "local.truncate_prefix_drops_segments",
    /// local: reset removed the segments of a non-empty log.
    LocalResetWithStaleSegments => "local.reset_with_stale_segments",
    /// local: an open trimmed a torn tail (a partial last record).
    LocalTornTailTrimmed => "local.torn_tail_trimmed",
    /// local: an open trimmed a complete but bad last record as torn, because the sectors
    /// after it read as never written (zeros): the torn-versus-corrupt decision.
    LocalZeroedTailTrimmed => "local.zeroed_tail_trimmed",
    /// local: an open found a redo record (`qk_pending_op`) and completed its operation.
    LocalRedoCompleted => "local.redo_completed",
    /// local: a snapshot was published.
    LocalSnapshotPublish => "local.snapshot_publish",
    /// local: a publish retired the previous snapshot.
    LocalSnapshotRetire => "local.snapshot_retire",
    /// local: an import committed.
    LocalImportCommit => "local.import_commit",
    /// local: a segment an export cut reads was kept aside (renamed or copied) for it.
    LocalExportPinsSegment => "local.export_pins_segment",
    /// local: a snapshot directory an export cut still reads was retired (renamed aside and
    /// left to the cut's last holder).
    LocalSnapshotRetirePinned => "local.snapshot_retire_pinned",
    /// local: the log reported corruption (at open or on a read).
    LocalMediaFaultLog => "local.media_fault.log",
    /// local: `raft_meta` reported corruption.
    LocalMediaFaultMeta => "local.media_fault.meta",
    /// local: the snapshot store reported corruption (at open or on a read).
    LocalMediaFaultSnapshot => "local.media_fault.snapshot",
    /// local: an open failed closed on a complete record with a bad checksum or payload.
    LocalRefusedCorruptRecord => "local.refused.corrupt_record",
    /// local: an open failed closed on a ProtoBufFile that does not match its sidecar.
    LocalRefusedSidecar => "local.refused.sidecar",
    /// local: an open failed closed because a cross mark shows an acknowledged write lost.
    LocalRefusedLostWrite => "local.refused.lost_write",
    /// local: an open failed closed on the segment layout (a hole, an overlap, a missing
    /// `log_meta`, a closed segment with fewer or more records than its name).
    LocalRefusedLayout => "local.refused.layout",
    /// redb: a write transaction committed with one-phase commit.
    RedbOnePhaseCommit => "redb.one_phase_commit",
    /// redb: an open repaired the database (redb's repair after an unclean shutdown).
    RedbRepairOnOpen => "redb.repair_on_open",
    /// redb: the backend's ledger caught a page that changed under the session (stale or
    /// misdirected).
    RedbStalePageCaught => "redb.stale_page_caught",
    /// redb: a snapshot was published.
    RedbSnapshotPublish => "redb.snapshot_publish",
    /// redb: a publish retired the previous snapshot's files.
    RedbSnapshotRetire => "redb.snapshot_retire",
    /// redb: an import committed.
    RedbImportCommit => "redb.import_commit",
    /// redb: a call reported corruption of the database file.
    RedbMediaFault => "redb.media_fault",
    /// redb: an open failed closed because redb found the file damaged (its integrity check
    /// or its header).
    RedbRefusedEngine => "redb.refused.engine",
    /// redb: an open failed closed on the family's own records (format, range, entries,
    /// meta).
    RedbRefusedRecords => "redb.refused.records",
    /// redb: an open failed closed on an empty database file.
    RedbRefusedEmptyFile => "redb.refused.empty_file",
    /// redb: redb panicked on a damaged file and the shield turned it into corruption.
    RedbPanicShielded => "redb.panic_shielded",
    /// memory: a snapshot was published.
    MemorySnapshotPublish => "memory.snapshot_publish",
    /// memory: an import committed.
    MemoryImportCommit => "memory.import_commit",
    /// history: a snapshot published below the last index whose entry matches it, then the
    /// log behind it truncated and its tail kept (a matching InstallSnapshot; a local
    /// snapshot's compaction has the same shape).
    RaftInstallBelowLastKept => "raft.install_below_last_kept",
    /// history: a snapshot installed below the last index over a conflicting entry, then a
    /// reset backward to just after it.
    RaftInstallBelowLastReset => "raft.install_below_last_reset",
    /// history: a snapshot installed past the log's end, then a reset.
    RaftInstallPastEndReset => "raft.install_past_end_reset",
    /// history: a snapshot installed past the log's end, then truncate_prefix past the end
    /// (braft when the log lacks the index).
    RaftInstallPastEndTruncatePrefix => "raft.install_past_end_truncate_prefix",
    /// history: any other reset to an index at or below the last one (the log goes
    /// backward).
    RaftResetBackward => "raft.reset_backward",
    /// history: a truncate_suffix that dropped many entries (16 or more: a new leader
    /// truncating far back, to just above the commit index).
    RaftTruncateFarBack => "raft.truncate_far_back",
    /// history: a snapshot published at the index of the one already published (a leader
    /// retrying an InstallSnapshot whose reply was lost).
    RaftInstallRetransmitted => "raft.install_retransmitted",
}

impl Point {
    /// The family (or `raft` for history shapes) a point belongs to: its name's first part.
    pub fn family(self) -> &'static str {
        self.name().split('.').next().unwrap_or_default()
    }

    /// The point called `name`.
    pub fn from_name(name: &str) -> Option<Point> {
        Point::ALL.iter().copied().find(|p| p.name() == name)
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Point {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Point::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown coverage point {name:?}")))
    }
}

/// Hits per point of one recording (points never hit are absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counts {
    hits: BTreeMap<Point, u64>,
}

impl Counts {
    /// How often `point` was hit.
    pub fn get(&self, point: Point) -> u64 {
        self.hits.get(&point).copied().unwrap_or(0)
    }

    /// The points hit and how often, in [`Point::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Point, u64)> + '_ {
        self.hits.iter().map(|(p, n)| (*p, *n))
    }

    /// Whether nothing was hit.
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Adds `n` hits of `point`.
    pub fn add(&mut self, point: Point, n: u64) {
        if n > 0 {
            *self.hits.entry(point).or_default() += n;
        }
    }

    /// Adds every hit of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (point, n) in other.iter() {
            self.add(point, n);
        }
    }
}

thread_local! {
    /// The recordings open on this thread, innermost last.
    static RECORDINGS: RefCell<Vec<Counts>> = const { RefCell::new(Vec::new()) };
}

/// Counts one pass through `point` in the innermost recording of this thread (nothing
/// when none is open).
pub fn hit(point: Point) {
    RECORDINGS.with(|stack| {
        if let Some(top) = stack.borrow_mut().last_mut() {
            top.add(point, 1);
        }
    });
}

/// Runs `body` with none of the points it hits counted, in this recording or any enclosing
/// one: for a check's own probes (an open of a planted hostile directory), which must not
/// pass for the reach of the histories themselves.
pub fn unrecorded<T>(body: impl FnOnce() -> T) -> T {
    struct Open;
    impl Drop for Open {
        fn drop(&mut self) {
            RECORDINGS.with(|stack| stack.borrow_mut().pop());
        }
    }
    RECORDINGS.with(|stack| stack.borrow_mut().push(Counts::default()));
    let _open = Open;
    body()
}

/// Runs `body` and returns its value with the points it hit. The hits are also added to an
/// enclosing recording, if any. A panic in `body` closes the recording on the way out.
pub fn record<T>(body: impl FnOnce() -> T) -> (T, Counts) {
    struct Open;
    impl Open {
        fn close(self) -> Counts {
            std::mem::forget(self);
            pop()
        }
    }
    impl Drop for Open {
        fn drop(&mut self) {
            pop();
        }
    }
    fn pop() -> Counts {
        RECORDINGS.with(|stack| {
            let mut stack = stack.borrow_mut();
            let counts = stack.pop().unwrap_or_default();
            if let Some(outer) = stack.last_mut() {
                outer.merge(&counts);
            }
            counts
        })
    }
    RECORDINGS.with(|stack| stack.borrow_mut().push(Counts::default()));
    let open = Open;
    let value = body();
    (value, open.close())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_count_only_inside_a_recording_and_nest_outward() {
        hit(Point::LocalSegmentRollover);
        let ((), outer) = record(|| {
            hit(Point::LocalSegmentRollover);
            let ((), inner) = record(|| {
                hit(Point::RedbRepairOnOpen);
                hit(Point::RedbRepairOnOpen);
            });
            assert_eq!(inner.get(Point::RedbRepairOnOpen), 2);
            assert_eq!(inner.get(Point::LocalSegmentRollover), 0);
        });
        assert_eq!(outer.get(Point::LocalSegmentRollover), 1);
        assert_eq!(outer.get(Point::RedbRepairOnOpen), 2);
        let ((), none) = record(|| ());
        assert!(none.is_empty());
    }

    #[test]
    fn a_panic_closes_its_recording() {
        let caught = std::panic::catch_unwind(|| {
            record(|| {
                hit(Point::LocalTornTailTrimmed);
                panic!("boom");
            })
        });
        assert!(caught.is_err());
        let ((), after) = record(|| hit(Point::LocalRedoCompleted));
        assert_eq!(after.iter().collect::<Vec<_>>(), vec![(Point::LocalRedoCompleted, 1)]);
    }

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<&str> = Point::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Point::ALL.len());
        for point in Point::ALL {
            assert_eq!(Point::from_name(point.name()), Some(*point));
            assert!(["local", "redb", "memory", "raft"].contains(&point.family()), "{point}");
        }
        let mut counts = Counts::default();
        counts.add(Point::RedbMediaFault, 3);
        let text = serde_json::to_string(&counts).unwrap();
        assert_eq!(text, r#"{"redb.media_fault":3}"#);
        assert_eq!(serde_json::from_str::<Counts>(&text).unwrap(), counts);
    }
}
