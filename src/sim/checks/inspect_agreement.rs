//! Check `inspect_agreement`, on the simulated disk: what `qk inspect` reports agrees with
//! what the store holds.
//!
//! **When.** Wherever the runner closes the instance cleanly — a clean reopen (a `reopen`
//! op), a `crash` op (the instance is closed, then the power fails), the end of a history —
//! when the disk is honest and no fault was injected since the instance was last opened (so
//! nothing the close or an export's drop meant to remove is left behind): the state on the
//! disk is then exactly the model's, cleanly closed. Right after the close the family's
//! [`inspect_details`](Family::inspect_details) runs through the disk's
//! [`observer`](SimDisk::observer) ([`inspect`]), so looking changes nothing a seed decides
//! (no operation numbers, no trace, no randomness); it is judged ([`Inspection::judge`]) once
//! the reopen recovered the model's state and every other check of the reopen held (at the
//! end of a history, at once).
//!
//! **What it verifies.**
//! - inspecting issued zero mutating disk operations and neither failed nor panicked;
//! - the details' JSON (the `details` of `qk inspect --json`) reads as the family's report;
//! - `local`: `log_meta`'s first index is the state's first index (absent: the log starts at
//!   1); the segments are contiguous and hold exactly `[first, last]` (the first may also
//!   hold records below `first`, which braft's `truncate_prefix` keeps while a segment
//!   reaches `first`); each segment's entry count matches its range, its checksum types
//!   and entry types count its records (the entry types of the records from `first` equal the
//!   state's entries'), no bad payload, a clean tail; `raft_meta`'s term and vote are the
//!   state's (absent: term 1, no vote), and every checksum sidecar is verified; the newest
//!   valid snapshot has the state's index, term, peers and files (names, lengths and file
//!   metadata), and no snapshot is reported when the state has none; no markers and no
//!   flags (but one: `snapshot/temp/`, which a snapshot writer dropped unpublished leaves);
//! - `redb`: format version, no leftover `FILE.creating`, no recovery needed, no problems;
//!   the log range, entry count, entries by kind, payload bytes and lowest and highest term
//!   are the state's; term and vote; the snapshot's index, term, peers, old peers and files
//!   (path, length, file metadata, chunks); the record counts of `qk_entries`,
//!   `qk_snapshot_files` and `qk_snapshot_chunks`.
//!
//! A family without details (`memory`) is not judged.
//!
//! **The overflow probe** ([`overflow`]). A healthy instance has no problems, so the report's
//! truncation is reached only by damage. Once per history, at the end, when the cleanly
//! closed `redb://` instance agreed (for a pair, its redb primary), a copy of the disk
//! ([`SimDisk::fork`], no fault plan: nothing a seed decides moves) gets `planted`
//! undecodable values written through redb into `qk_entries`, under the keys just after the
//! state's last index, with `planted` drawn from a stream of its own
//! ([`INSPECT_OVERFLOW_SALT`], [`overflow_planted`]): 32..=39 three times in four, else
//! 1..=31. The family's inspect of the copy (through its observer, its coverage not
//! recorded) must then find exactly `planted + 1` problems (one per planted key, plus the
//! entry count the log range does not account for), list the first [`PROBLEMS_MAX`] of
//! them, count the rest in `problems_not_listed`, and print `... and K more` in its human
//! text exactly when K > 0.
//!
//! **What not.** Beyond the overflow probe's one line, it does not read the human text (only
//! the JSON, whose fields the text prints), byte sizes and pages (layout, not state), the
//! local log epoch (a cross mark of where the structures stood at the last rare write, not
//! of the state now), or what inspect says about damaged or unfinished instances other than
//! the probe's count (the operator tests in `sims/operator.rs` do); the probe does not read
//! the words of the problems. It does not look at a crashed disk (after a power loss, or one a fault
//! failed a call before): the state on it is not closed cleanly, and what inspect lists
//! there is what an open repairs. Migrations (their own driver) are not inspected.
//!
//! [`PROBLEMS_MAX`]: crate::families::redb::inspect::PROBLEMS_MAX

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::contract::{EntryKind, Family, FileSource, Payload, PeerId, SnapshotMeta};
use crate::families::redb::schema::{CHUNK_LEN, FORMAT_VERSION};
use crate::state::{RaftState, Snapshot};
use crate::vfs::SimDisk;

/// What a family's `inspect_details` reported on a disk.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The family's scheme (`local`, `redb`, ...).
    scheme: &'static str,
    /// The details as JSON (`None`: the family has none), or why inspect failed or panicked.
    details: Result<Option<serde_json::Value>, String>,
    /// Mutating disk operations it issued.
    mutating_ops: u64,
}

/// Inspects the instance at `location` on `disk` with `family`'s `inspect_details`, through
/// an observer.
pub fn inspect(family: &dyn Family, location: &str, disk: &SimDisk) -> Inspection {
    let before = disk.mutating_op_count();
    let reported = crate::panics::catch(|| family.inspect_details(location, disk.observer()));
    let mutating_ops = disk.mutating_op_count() - before;
    let details = match reported {
        Ok(Ok(details)) => Ok(details.map(|(_text, value)| value)),
        Ok(Err(e)) => Err(format!("inspect failed: {e}")),
        Err(panic) => Err(format!("inspect panicked: {}", crate::panics::text(&panic))),
    };
    Inspection { scheme: family.scheme(), details, mutating_ops }
}

impl Inspection {
    /// An inspection of a family of `scheme` that reported `details` (for tests that feed
    /// the judge a report of their own).
    pub fn of(scheme: &'static str, details: serde_json::Value) -> Self {
        Inspection { scheme, details: Ok(Some(details)), mutating_ops: 0 }
    }

    /// Judges what inspect reported against `state`, what the store holds. `Ok(true)`: it
    /// agrees; `Ok(false)`: the family has no details to judge; `Err` says what is wrong, in
    /// words (the field, what inspect reported, what the state holds).
    pub fn judge(&self, state: &RaftState) -> Result<bool, String> {
        if self.mutating_ops > 0 {
            return Err(format!(
                "inspect issued {} mutating disk operation(s) (it must never create, write, \
                 cut, rename, remove or sync anything)",
                self.mutating_ops
            ));
        }
        let value = match &self.details {
            Ok(None) => return Ok(false),
            Ok(Some(value)) => value,
            Err(e) => return Err(format!("{e}, on a cleanly closed instance on an honest disk")),
        };
        match self.scheme {
            "local" => judge_local(&parse(value, "local")?, state)?,
            "redb" => judge_redb(&parse(value, "redb")?, state)?,
            // A family this check does not know the report of: nothing to compare it with.
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn parse<T: for<'de> Deserialize<'de>>(
    value: &serde_json::Value,
    scheme: &str,
) -> Result<T, String> {
    T::deserialize(value)
        .map_err(|e| format!("inspect's details do not read as the {scheme} report: {e}"))
}

/// `field`: inspect reported `reported`, the state holds `held`, unless they are equal.
fn agree<T: PartialEq + std::fmt::Debug>(field: &str, reported: T, held: T) -> Result<(), String> {
    expect(field, reported, held, |held| format!(", the state holds {held:?}"))
}

/// `field` must be `expected`, which the report's own `basis` implies.
fn implied<T: PartialEq + std::fmt::Debug>(
    field: &str,
    reported: T,
    expected: T,
    basis: &str,
) -> Result<(), String> {
    expect(field, reported, expected, |e| format!(", where {basis} implies {e:?}"))
}

/// `field` must be `expected` on a cleanly closed instance (no state value to name).
fn clean<T: PartialEq + std::fmt::Debug>(
    field: &str,
    reported: T,
    expected: T,
) -> Result<(), String> {
    expect(field, reported, expected, |e| {
        format!(" on a cleanly closed instance, where {e:?} is due")
    })
}

/// `Ok` when `reported` equals `expected`; otherwise what inspect reported of `field`,
/// followed by `why` (where the expected value comes from).
fn expect<T: PartialEq + std::fmt::Debug>(
    field: &str,
    reported: T,
    expected: T,
    why: impl FnOnce(&T) -> String,
) -> Result<(), String> {
    if reported == expected {
        return Ok(());
    }
    Err(format!("inspect reports {field} = {reported:?}{}", why(&expected)))
}

/// `field`, a list: inspect reported `reported`, the state holds `held`; the first item that
/// differs is named.
fn agree_lists<T: PartialEq + std::fmt::Debug>(
    field: &str,
    reported: &[T],
    held: &[T],
) -> Result<(), String> {
    let differs = reported.iter().zip(held).position(|(r, h)| r != h);
    match differs {
        Some(i) => Err(format!(
            "inspect reports {field}[{i}] = {:?}, the state holds {:?}",
            reported[i], held[i]
        )),
        None if reported.len() > held.len() => Err(format!(
            "inspect reports {} items in {field}, the state holds {}; the first extra one: {:?}",
            reported.len(),
            held.len(),
            reported[held.len()]
        )),
        None if reported.len() < held.len() => Err(format!(
            "inspect reports {} items in {field}, the state holds {}; the first missing one: {:?}",
            reported.len(),
            held.len(),
            held[reported.len()]
        )),
        None => Ok(()),
    }
}

/// The state's entries with indexes in `from..=to`.
fn entries_in(
    state: &RaftState,
    from: u64,
    to: u64,
) -> impl Iterator<Item = &crate::contract::Entry> {
    (from..=to).map_while(|index| state.get(index))
}

fn peers_text(peers: &[PeerId]) -> Vec<String> {
    peers.iter().map(|p| p.as_str().to_string()).collect()
}

// ---- local ----------------------------------------------------------------------------------

/// The fields of the local family's report (`families::local::inspect::InspectReport`) this
/// check reads, as its JSON spells them; every one must be present (an `Option` one reads
/// as absent when it is missing, as `null`).
#[derive(Debug, Deserialize)]
struct LocalReport {
    log_meta: Option<LocalLogMeta>,
    segments: Vec<LocalSegment>,
    raft_meta: Option<LocalRaftMeta>,
    snapshots: Vec<LocalSnapshot>,
    markers: Vec<String>,
    flags: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct LocalLogMeta {
    first_log_index: Option<i64>,
    sidecar: String,
}

#[derive(Debug, Deserialize)]
struct LocalSegment {
    name: String,
    first: u64,
    last: u64,
    entries: u64,
    checksum_types: BTreeMap<String, u64>,
    entry_types: BTreeMap<String, u64>,
    bad_payloads: u64,
    tail: LocalTail,
}

#[derive(Debug, Deserialize)]
struct LocalTail {
    kind: String,
}

#[derive(Debug, Deserialize)]
struct LocalRaftMeta {
    term: Option<u64>,
    voted_for: Option<String>,
    sidecar: String,
    problem: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LocalSnapshot {
    name: String,
    index: u64,
    meta: Option<SnapshotMeta>,
    files: Vec<LocalSnapshotFile>,
    sidecar: Option<String>,
    problem: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct LocalSnapshotFile {
    name: String,
    len: Option<u64>,
    user_meta: Option<String>,
    checksum: Option<String>,
    source: Option<i32>,
}

/// The checksum types this family writes (by their report names).
const CHECKSUMS: [&str; 2] = ["crc32c", "murmur3"];

/// Every entry kind, whose names the report counts records by.
const KINDS: [EntryKind; 3] = [EntryKind::NoOp, EntryKind::Data, EntryKind::Configuration];

/// The checksum sidecar status of a file this family saved and nothing changed since.
const VERIFIED: &str = "verified";

/// The one flag a cleanly closed honest instance may carry: a snapshot writer dropped
/// without publishing leaves its staging directory `snapshot/temp/` behind (as braft's does;
/// the next writer or open removes it). It is no part of the state.
const ABANDONED_SNAPSHOT_FLAG: &str = "snapshot/temp exists: an unpublished snapshot";

fn judge_local(report: &LocalReport, state: &RaftState) -> Result<(), String> {
    let flags: Vec<&String> =
        report.flags.iter().filter(|f| !f.starts_with(ABANDONED_SNAPSHOT_FLAG)).collect();
    clean("flags", &flags, &Vec::<&String>::new())?;
    clean("markers", &report.markers, &Vec::new())?;
    let first = state.first;
    match &report.log_meta {
        // braft's first index without a log_meta (and no segment, or it is flagged).
        None => agree("the first index (no log_meta: 1)", 1, first)?,
        Some(m) => {
            agree("log_meta.first_log_index", m.first_log_index, i64::try_from(first).ok())?;
            clean("log_meta.sidecar", m.sidecar.as_str(), VERIFIED)?;
        }
    }
    judge_local_segments(&report.segments, state)?;
    match &report.raft_meta {
        None => {
            let initial = crate::contract::Meta::INITIAL;
            agree("the term (no raft_meta: 1)", initial.term, state.meta.term)?;
            agree("the vote (no raft_meta: none)", None, state.meta.voted_for.as_ref())?;
        }
        Some(m) => {
            clean("raft_meta.problem", m.problem.as_deref(), None)?;
            clean("raft_meta.sidecar", m.sidecar.as_str(), VERIFIED)?;
            agree("raft_meta.term", m.term, Some(state.meta.term))?;
            let vote = state.meta.voted_for.as_ref().map(|p| p.to_string());
            agree("raft_meta.voted_for", m.voted_for.as_ref(), vote.as_ref())?;
        }
    }
    judge_local_snapshot(&report.snapshots, state.snapshot.as_ref())
}

fn judge_local_segments(segments: &[LocalSegment], state: &RaftState) -> Result<(), String> {
    let (first, last) = (state.first, state.last());
    let Some((head, tail)) = segments.first().zip(segments.last()) else {
        return match state.entries.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "inspect reports no segments, the state holds entries [{first}, {last}]"
            )),
        };
    };
    for pair in segments.windows(2) {
        let field = format!("segments[{}].first", pair[1].name);
        let basis = format!("the segment before it, {}, ending at {}", pair[0].name, pair[0].last);
        implied(&field, pair[1].first, pair[0].last + 1, &basis)?;
    }
    // The segments hold [first, last]: the first reaches first (or ends just before it, when
    // the records before first are all a segment holds), the last ends at last.
    if head.first > first || head.last.saturating_add(1) < first {
        return Err(format!(
            "inspect reports a first segment {} holding [{}, {}], which does not reach the \
             state's first index {first}",
            head.name, head.first, head.last
        ));
    }
    agree(&format!("the last segment's last index ({})", tail.name), tail.last, last)?;
    for s in segments {
        let field = |what: &str| format!("segments[{}].{what}", s.name);
        let range = format!("its range [{}, {}]", s.first, s.last);
        let length = (s.last + 1).saturating_sub(s.first);
        implied(&field("entries"), s.entries, length, &range)?;
        let records = format!("its entry count {}", s.entries);
        let sum = s.checksum_types.values().sum::<u64>();
        implied(&field("checksum_types (summed)"), sum, s.entries, &records)?;
        if let Some(kind) = s.checksum_types.keys().find(|k| !CHECKSUMS.contains(&k.as_str())) {
            return Err(format!(
                "inspect reports {} with checksum type {kind:?}",
                field("checksum_types")
            ));
        }
        let sum = s.entry_types.values().sum::<u64>();
        implied(&field("entry_types (summed)"), sum, s.entries, &records)?;
        clean(&field("bad_payloads"), s.bad_payloads, 0)?;
        clean(&field("tail"), s.tail.kind.as_str(), "clean")?;
        // The state's entries in this segment, by kind.
        let mut held: BTreeMap<String, u64> = BTreeMap::new();
        for e in entries_in(state, s.first.max(first), s.last) {
            *held.entry(e.kind().name().to_string()).or_default() += 1;
        }
        if s.first >= first {
            agree(&field("entry_types"), &s.entry_types, &held)?;
        } else {
            // Records below first (kept by truncate_prefix) are not the state's: each kind
            // counts at least the state's entries of that kind from first on.
            for (kind, n) in &held {
                let reported = s.entry_types.get(kind).copied().unwrap_or(0);
                if reported < *n {
                    return Err(format!(
                        "inspect reports {}[{kind}] = {reported}, the state holds {n} {kind} \
                         entries from index {first} in that segment",
                        field("entry_types")
                    ));
                }
            }
            for kind in s.entry_types.keys() {
                if KINDS.iter().all(|k| k.name() != kind) {
                    return Err(format!(
                        "inspect reports {} with entry type {kind:?}",
                        field("entry_types")
                    ));
                }
            }
        }
    }
    Ok(())
}

fn judge_local_snapshot(
    snapshots: &[LocalSnapshot],
    held: Option<&Snapshot>,
) -> Result<(), String> {
    let newest = snapshots
        .iter()
        .filter(|s| s.meta.is_some() && s.problem.is_none())
        .max_by_key(|s| s.index);
    let (reported, held) = match (newest, held) {
        (None, None) => return Ok(()),
        (Some(s), None) => {
            return Err(format!(
                "inspect reports snapshot {} (index {}), the state holds none",
                s.name, s.index
            ))
        }
        (None, Some(h)) => {
            return Err(format!(
                "inspect reports no valid snapshot, the state holds one at index {}",
                h.meta.last_included_index
            ))
        }
        (Some(s), Some(h)) => (s, h),
    };
    let field = |what: &str| format!("snapshots[{}].{what}", reported.name);
    agree(&field("index"), reported.index, held.meta.last_included_index)?;
    agree(&field("meta"), reported.meta.as_ref(), Some(&held.meta))?;
    clean(&field("sidecar"), reported.sidecar.as_deref(), Some(VERIFIED))?;
    let mut files: Vec<&LocalSnapshotFile> = reported.files.iter().collect();
    files.sort();
    let expected: Vec<LocalSnapshotFile> = held
        .files
        .iter()
        .map(|(path, f)| LocalSnapshotFile {
            name: path.as_str().to_string(),
            len: Some(f.data.len() as u64),
            user_meta: f.file_meta.user_meta.as_ref().map(hex::encode),
            checksum: f.file_meta.checksum.clone(),
            source: f.file_meta.source.map(FileSource::number),
        })
        .collect();
    let mut expected: Vec<&LocalSnapshotFile> = expected.iter().collect();
    expected.sort();
    agree_lists(&field("files"), &files, &expected)?;
    Ok(())
}

// ---- redb -----------------------------------------------------------------------------------

/// The fields of the redb family's report (`families::redb::inspect::InspectReport`) this
/// check reads, as its JSON spells them; every one must be present (an `Option` one reads
/// as absent when it is missing, as `null`).
#[derive(Debug, Deserialize)]
struct RedbReport {
    format_version: Option<u32>,
    log: Option<RedbLog>,
    meta: Option<RedbMeta>,
    snapshot: Option<RedbSnapshot>,
    tables: Vec<RedbTable>,
    leftover_creating_file: bool,
    needs_recovery: bool,
    problems: Vec<String>,
    problems_not_listed: u64,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct RedbLog {
    first: u64,
    last: u64,
    entries: u64,
    no_op: u64,
    data: u64,
    configuration: u64,
    payload_bytes: u64,
    terms: Option<(u64, u64)>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct RedbMeta {
    term: u64,
    voted_for: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct RedbSnapshot {
    last_included_index: u64,
    last_included_term: u64,
    peers: Vec<String>,
    old_peers: Vec<String>,
    files: Vec<RedbFile>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct RedbFile {
    path: String,
    len: u64,
    user_meta_len: Option<u64>,
    source: Option<FileSource>,
    checksum: Option<String>,
    chunks: u64,
}

#[derive(Debug, Deserialize)]
struct RedbTable {
    name: String,
    records: u64,
}

fn judge_redb(report: &RedbReport, state: &RaftState) -> Result<(), String> {
    clean("needs_recovery", report.needs_recovery, false)?;
    clean("leftover_creating_file", report.leftover_creating_file, false)?;
    clean("problems", &report.problems, &Vec::new())?;
    clean("problems_not_listed", report.problems_not_listed, 0)?;
    clean("format_version", report.format_version, Some(FORMAT_VERSION))?;
    let mut log = RedbLog {
        first: state.first,
        last: state.last(),
        entries: state.entries.len() as u64,
        no_op: 0,
        data: 0,
        configuration: 0,
        payload_bytes: 0,
        terms: None,
    };
    for e in &state.entries {
        match &e.payload {
            Payload::NoOp => log.no_op += 1,
            Payload::Data(b) => {
                log.data += 1;
                log.payload_bytes += b.len() as u64;
            }
            Payload::Configuration { .. } => log.configuration += 1,
        }
        let (low, high) = log.terms.get_or_insert((e.term, e.term));
        (*low, *high) = ((*low).min(e.term), (*high).max(e.term));
    }
    match &report.log {
        None => return Err("inspect reports no log".to_string()),
        Some(r) => {
            agree("log.first", r.first, log.first)?;
            agree("log.last", r.last, log.last)?;
            agree("log.entries", r.entries, log.entries)?;
            agree("log.no_op", r.no_op, log.no_op)?;
            agree("log.data", r.data, log.data)?;
            agree("log.configuration", r.configuration, log.configuration)?;
            agree("log.payload_bytes", r.payload_bytes, log.payload_bytes)?;
            agree("log.terms", r.terms, log.terms)?;
        }
    }
    let meta = RedbMeta {
        term: state.meta.term,
        voted_for: state.meta.voted_for.as_ref().map(|p| p.as_str().to_string()),
    };
    agree("meta", report.meta.as_ref(), Some(&meta))?;
    let snapshot = state.snapshot.as_ref().map(|s| RedbSnapshot {
        last_included_index: s.meta.last_included_index,
        last_included_term: s.meta.last_included_term,
        peers: peers_text(&s.meta.peers),
        old_peers: peers_text(&s.meta.old_peers),
        files: s
            .files
            .iter()
            .map(|(path, f)| RedbFile {
                path: path.as_str().to_string(),
                len: f.data.len() as u64,
                user_meta_len: f.file_meta.user_meta.as_ref().map(|m| m.len() as u64),
                source: f.file_meta.source,
                checksum: f.file_meta.checksum.clone(),
                chunks: (f.data.len() as u64).div_ceil(CHUNK_LEN as u64),
            })
            .collect(),
    });
    match (&report.snapshot, &snapshot) {
        (Some(r), Some(h)) => {
            agree("snapshot.last_included_index", r.last_included_index, h.last_included_index)?;
            agree("snapshot.last_included_term", r.last_included_term, h.last_included_term)?;
            agree("snapshot.peers", &r.peers, &h.peers)?;
            agree("snapshot.old_peers", &r.old_peers, &h.old_peers)?;
            agree_lists("snapshot.files", &r.files, &h.files)?;
        }
        (r, h) => agree("snapshot", r.as_ref(), h.as_ref())?,
    }
    let files = snapshot.as_ref().map_or(&[][..], |s| &s.files[..]);
    let records = |name: &str| report.tables.iter().find(|t| t.name == name).map(|t| t.records);
    agree("tables[qk_entries].records", records("qk_entries"), Some(log.entries))?;
    agree(
        "tables[qk_snapshot_files].records",
        records("qk_snapshot_files"),
        Some(files.len() as u64),
    )?;
    let chunks = files.iter().map(|f| f.chunks).sum::<u64>();
    agree("tables[qk_snapshot_chunks].records", records("qk_snapshot_chunks"), Some(chunks))?;
    Ok(())
}

// ---- redb: more problems than are listed ----------------------------------------------------

/// Salt that separates the overflow probe's stream ([`overflow`]) from every other stream of
/// a seed.
pub const INSPECT_OVERFLOW_SALT: u64 = 0x696e_7370_2d6f_7666;

/// The value planted under each extra `qk_entries` key: no sealed record (too short to
/// carry a seal), so `inspect` reports one problem per key.
const UNDECODABLE: &[u8] = &[0xff];

/// How many undecodable entries the overflow probe plants for a disk seeded with `seed`:
/// three times in four 32..=39 (so `inspect` finds 33..=40 problems, more than
/// [`PROBLEMS_MAX`]), otherwise 1..=31 (2..=32 problems, all listed).
///
/// [`PROBLEMS_MAX`]: crate::families::redb::inspect::PROBLEMS_MAX
pub fn overflow_planted(seed: u64) -> u64 {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ INSPECT_OVERFLOW_SALT);
    match rng.random_range(0..4u32) {
        0 => rng.random_range(1..=31),
        _ => rng.random_range(32..=39),
    }
}

/// The fields of the redb report the overflow probe reads.
#[derive(Debug, Deserialize)]
struct RedbProblems {
    problems: Vec<String>,
    problems_not_listed: u64,
}

/// The overflow probe, on a cleanly closed `redb://` instance at `location` on `disk`
/// holding `state`: in a copy of the disk (no fault plan; nothing a seed decides moves),
/// `planted` undecodable entries ([`overflow_planted`]) are written through redb under the
/// keys just after the state's last index, then `family`'s inspect (through the copy's
/// observer) must find exactly `planted + 1` problems (one per key, and one for the entry
/// count the log range does not account for), list the first [`PROBLEMS_MAX`] of them,
/// count the rest in `problems_not_listed`, and print `... and K more` exactly when K > 0.
/// Returns the problems found, or what is wrong.
///
/// [`PROBLEMS_MAX`]: crate::families::redb::inspect::PROBLEMS_MAX
pub fn overflow(
    family: &dyn Family,
    location: &str,
    disk: &SimDisk,
    state: &RaftState,
    planted: u64,
) -> Result<u64, String> {
    let copy = disk.fork();
    copy.set_fault_plan(crate::vfs::FaultPlan::none());
    copy.disarm_crash();
    let from = state.last().saturating_add(1);
    let vfs: crate::vfs::VfsHandle = copy.clone();
    crate::panics::catch(|| plant_undecodable(vfs, location, from, planted))
        .unwrap_or_else(|panic| Err(format!("panicked: {}", crate::panics::text(&panic))))
        .map_err(|e| format!("overflow probe: planting {planted} undecodable entries: {e}"))?;
    let reported = crate::panics::catch(|| family.inspect_details(location, copy.observer()));
    let (text, value) = match reported {
        Ok(Ok(Some(details))) => details,
        Ok(Ok(None)) => return Err("overflow probe: inspect reported no details".to_string()),
        Ok(Err(e)) => return Err(format!("overflow probe: inspect failed: {e}")),
        Err(panic) => {
            return Err(format!(
                "overflow probe: inspect panicked: {}",
                crate::panics::text(&panic)
            ))
        }
    };
    judge_overflow(&text, &value, planted, state.last())
}

/// Judges what inspect reported (`text`, the human report, and `value`, its details) of a
/// database whose log ends at `last` and holds `planted` undecodable entries after it
/// ([`overflow`]). Returns the problems due, or what is wrong.
pub fn judge_overflow(
    text: &str,
    value: &serde_json::Value,
    planted: u64,
    last: u64,
) -> Result<u64, String> {
    use crate::families::redb::inspect::PROBLEMS_MAX;
    let report: RedbProblems = parse(value, "redb")?;
    let total = planted + 1;
    let listed = total.min(PROBLEMS_MAX as u64);
    let why = format!(
        "after {planted} undecodable entries were planted after index {last} (so {total} \
         problems: one per entry and the entry count; at most {PROBLEMS_MAX} listed)"
    );
    let fail = |what: String| Err(format!("overflow probe: inspect {what}, {why}"));
    if report.problems.len() as u64 != listed {
        return fail(format!("lists {} problems where {listed} are due", report.problems.len()));
    }
    if report.problems_not_listed != total - listed {
        return fail(format!(
            "reports problems_not_listed = {} where {} is due",
            report.problems_not_listed,
            total - listed
        ));
    }
    let more = format!("... and {} more", total - listed);
    let says_more = text.lines().find(|l| l.trim_start().starts_with("... and "));
    match (total > listed, says_more) {
        (true, Some(line)) if line.trim() == more => {}
        (true, line) => return fail(format!("prints {line:?} where {more:?} is due")),
        (false, Some(line)) => return fail(format!("prints {line:?} where nothing is due")),
        (false, None) => {}
    }
    Ok(total)
}

/// Writes `count` [`UNDECODABLE`] values under the `qk_entries` keys from `from` of the redb
/// database `location` on `vfs`, in one commit, and closes the database cleanly.
fn plant_undecodable(
    vfs: crate::vfs::VfsHandle,
    location: &str,
    from: u64,
    count: u64,
) -> Result<(), String> {
    use crate::families::redb::backend::{IoLatch, VfsBackend};
    use crate::families::redb::schema::ENTRIES;
    let path = std::path::Path::new(location);
    let file = vfs.open(path, crate::vfs::OpenOptions::WRITE).map_err(|e| e.to_string())?;
    let backend = VfsBackend::new(file, path, IoLatch::new());
    let db = redb::Database::builder().create_with_backend(backend).map_err(|e| e.to_string())?;
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut table = txn.open_table(ENTRIES).map_err(|e| e.to_string())?;
        for key in (from..).take(count as usize) {
            table.insert(key, UNDECODABLE).map_err(|e| e.to_string())?;
        }
    }
    txn.commit().map_err(|e| e.to_string())?;
    drop(db);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::contract::{Entry, FileMeta, Meta, SnapshotPath};
    use crate::families::local::{LocalFamily, LocalOptions};
    use crate::families::memory::MemoryFamily;
    use crate::families::redb::RedbFamily;
    use crate::vfs::{SimDiskOptions, VfsHandle};

    const LOCATION: &str = "inst";

    fn entry(index: u64, term: u64, payload: Payload) -> Entry {
        Entry { index, term, payload }
    }

    /// An instance of `family` given a few of everything (entries of every kind over two
    /// terms, term and vote, a snapshot with files, a compacted prefix), then closed
    /// cleanly: the state it held and what inspect reports of the closed instance.
    fn closed(family: &dyn Family) -> (RaftState, Inspection) {
        let disk = SimDisk::new(SimDiskOptions::default());
        let vfs: VfsHandle = disk.clone();
        let mut storage = family.open(LOCATION, vfs).expect("open");
        let peers = vec![PeerId::new("10.0.0.1:8000:0:0"), PeerId::new("10.0.0.2:8000:0:0")];
        let configuration = Payload::Configuration { peers: peers.clone(), old_peers: vec![] };
        let entries: Vec<Entry> = (1..=40)
            .map(|i| match i % 7 {
                0 => entry(i, 1 + i / 20, Payload::NoOp),
                3 => entry(i, 1 + i / 20, configuration.clone()),
                _ => entry(i, 1 + i / 20, Payload::Data(Bytes::from(vec![i as u8; i as usize]))),
            })
            .collect();
        for batch in entries.chunks(6) {
            storage.append(batch).expect("append");
        }
        storage.save_meta(&Meta { term: 3, voted_for: Some(peers[1].clone()) }).expect("meta");
        let mut writer = storage.begin_snapshot().expect("snapshot");
        let user = FileMeta { checksum: Some("c1".into()), ..FileMeta::user(&b"um"[..]) };
        for (path, meta, len) in [("a", FileMeta::default(), 70_000), ("d/b", user, 5)] {
            let path = SnapshotPath::new(path).expect("path");
            writer.add_file(&path, &meta).expect("add");
            writer.write_file(&path, 0, &vec![7u8; len]).expect("write");
        }
        writer.set_meta(SnapshotMeta {
            last_included_index: 30,
            last_included_term: 2,
            peers,
            old_peers: vec![],
        });
        writer.publish().expect("publish");
        storage.truncate_prefix(12).expect("truncate_prefix");
        let state = RaftState::capture(storage.as_ref()).expect("capture");
        drop(storage);
        (state, inspect(family, LOCATION, &disk))
    }

    /// The families with details, the local one with small segments (several of them, the
    /// first holding records below the first index).
    fn families() -> Vec<Arc<dyn Family>> {
        let options = LocalOptions { segment_size_max: 512, ..LocalOptions::default() };
        vec![Arc::new(LocalFamily::with_options(options)), Arc::new(RedbFamily::default())]
    }

    #[test]
    fn a_cleanly_closed_instance_agrees() {
        for family in families() {
            let (state, inspection) = closed(family.as_ref());
            assert_eq!(inspection.judge(&state), Ok(true), "{}", family.scheme());
        }
        let (state, inspection) = closed(&MemoryFamily);
        assert_eq!(inspection.judge(&state), Ok(false), "memory has no details");
    }

    #[test]
    fn the_local_report_covers_a_compacted_prefix() {
        let (state, inspection) = closed(families()[0].as_ref());
        let value = inspection.details.clone().expect("inspected").expect("details");
        let report: LocalReport = parse(&value, "local").expect("parses");
        assert!(report.segments.len() > 2, "{report:?}");
        assert!(report.segments[0].first < state.first, "{report:?}");
    }

    /// A report doctored in one field fails, naming the field and both values.
    #[test]
    fn a_wrong_field_is_named() {
        let cases: [(&str, &str, serde_json::Value, &str); 6] = [
            ("local", "/segments/1/entries", 99.into(), "segments[log_"),
            (
                "local",
                "/raft_meta/term",
                4.into(),
                "raft_meta.term = Some(4), the state holds Some(3)",
            ),
            ("local", "/log_meta/first_log_index", 11.into(), "first_log_index = Some(11)"),
            ("redb", "/log/payload_bytes", 1.into(), "log.payload_bytes = 1, the state holds"),
            ("redb", "/snapshot/files/0/len", 69_999.into(), "snapshot.files[0] = RedbFile"),
            ("redb", "/problems", serde_json::json!(["odd"]), "problems = [\"odd\"]"),
        ];
        for (scheme, pointer, wrong, words) in cases {
            let family = families().into_iter().find(|f| f.scheme() == scheme).expect("family");
            let (state, inspection) = closed(family.as_ref());
            let mut value = inspection.details.clone().expect("inspected").expect("details");
            *value.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = wrong;
            let what = Inspection::of(family.scheme(), value).judge(&state).expect_err(pointer);
            assert!(what.contains(words), "{pointer}: {what}");
        }
    }

    #[test]
    fn a_report_missing_a_field_or_an_inspect_that_writes_fails() {
        let family = &families()[1];
        let (state, inspection) = closed(family.as_ref());
        let mut value = inspection.details.clone().expect("inspected").expect("details");
        value.as_object_mut().expect("an object").remove("tables");
        let what = Inspection::of("redb", value).judge(&state).expect_err("no tables");
        assert!(what.contains("do not read as the redb report: missing field `tables`"), "{what}");
        let writes = Inspection { mutating_ops: 2, ..inspection };
        let what = writes.judge(&state).expect_err("writes");
        assert!(what.contains("issued 2 mutating disk operation(s)"), "{what}");
    }
}
