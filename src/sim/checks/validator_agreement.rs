//! `validator_agreement` (DESIGN §7, check 11): the streaming equivalence validator, `qk
//! compare`'s code path and `image diff` agree with the states' digests and
//! `state::first_difference`.
//!
//! **What it verifies.** For two instances `a` and `b` of real families holding states A and
//! B — read back with [`RaftState::capture`], so the verdict is about what the instances hold,
//! not about what was meant to be put in them:
//! - `state::first_difference(A, B)` is `None` exactly when the digests are equal (the two
//!   definitions of "equal" agree);
//! - `validate::compare(a, b)` says equivalent exactly when the digests are equal, and names
//!   the same first difference, word for word (it streams from the instances, so a family's
//!   listing order or read path is part of what is judged);
//! - `qk compare`'s report on `a` and `b` (`cli::compare::report`): its exit code, the line it
//!   prints (`DIFFERENT  A vs B: ` and the same words) and its JSON;
//! - `image diff` of the images exported from `a` and `b`: no difference exactly when the
//!   digests are equal, and the same words, with one deliberate difference in *which* file it
//!   names. An image lists snapshot files in the image's path order (`/` before every other
//!   byte: `image::format::path_order`), `first_difference` in the paths' byte order, so where
//!   the first difference lies among the snapshot files (same range, entries, meta and snapshot
//!   meta) the diff names the first differing file in image order. The words expected then are
//!   built here from the captured files walked in that order
//!   ([`file_difference_in_image_order`]); everywhere else they are `first_difference`'s.
//!
//! **The pairs** ([`Case`]): a state and itself in two instances (of the same or different
//! families), the model at two steps of the history, and a state against a copy with exactly
//! one [`Change`] — one entry's term, kind, payload byte or configuration peers; the range's
//! first or last index; one snapshot file's byte, length or metadata field, a file renamed,
//! added or removed; the snapshot meta's index, term, peers or old_peers; the snapshot dropped
//! or added; the term; the vote. The states live in real instances: one side may be the run's
//! own live instance (any subject: a family, a dual-write pair, a migration), the others are
//! fresh instances of every registered family on a fresh, fault-free simulated disk, filled
//! through their import.
//!
//! **When.** The runner samples steps, drawn from the seed (its `agreement` phase), so the cost
//! stays a small share of a soak.
//!
//! **What it does not verify.** Progress reports and the counts of compared entries and bytes;
//! views inconsistent with themselves (a listed length that is not the read one), which are
//! errors, not differences; read errors under faults (the live instance is a side only on a
//! disk that cannot rot or lose what it acknowledged).

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::cli::compare::report;
use crate::contract::{
    check_new_snapshot_file, Entry, Family, FileSource, Payload, RaftStorage, SnapshotMeta,
    SnapshotPath, StateView, StorageError, INDEX_MAX, TERM_MAX,
};
use crate::dual_write::bootstrap_into;
use crate::image::format::path_order;
use crate::sim::engine::ops::peer;
use crate::sim::planted::PlantedValidatorBug;
use crate::state::{first_difference, RaftState, Snapshot, SnapshotFile};
use crate::vfs::SimDisk;

/// Which pair of states a sample compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// The state now, in two instances.
    Equal,
    /// The state now and the model's state at an earlier step.
    TwoSteps,
    /// The state now and a copy with one change.
    OneChange(Change),
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Case::Equal => f.write_str("equal"),
            Case::TwoSteps => f.write_str("two_steps"),
            Case::OneChange(change) => write!(f, "one_change({})", change.name()),
        }
    }
}

/// One detail of a state changed, keeping it a state the contract can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// One entry's term.
    EntryTerm,
    /// One entry's kind (no-op, data, configuration).
    EntryKind,
    /// One byte of one data entry's payload.
    EntryPayloadByte,
    /// One configuration entry's peers or old peers.
    EntryPeers,
    /// The first retained index (the first entry dropped, or an empty log moved up).
    FirstIndex,
    /// The last retained index (the last entry dropped, or one appended to an empty log).
    LastIndex,
    /// One byte of one snapshot file.
    FileByte,
    /// One snapshot file's length (one byte more or fewer).
    FileLength,
    /// One field of one snapshot file's metadata.
    FileMeta,
    /// One snapshot file under another path.
    FileRenamed,
    /// One snapshot file more.
    FileAdded,
    /// One snapshot file fewer.
    FileRemoved,
    /// The snapshot meta's last included index.
    SnapshotIndex,
    /// The snapshot meta's last included term.
    SnapshotTerm,
    /// The snapshot meta's peers.
    SnapshotPeers,
    /// The snapshot meta's old peers.
    SnapshotOldPeers,
    /// The snapshot gone.
    SnapshotDropped,
    /// A snapshot where there was none.
    SnapshotAdded,
    /// The term.
    Term,
    /// The vote.
    Vote,
}

impl Change {
    /// Every change.
    pub const ALL: [Change; 20] = [
        Change::EntryTerm,
        Change::EntryKind,
        Change::EntryPayloadByte,
        Change::EntryPeers,
        Change::FirstIndex,
        Change::LastIndex,
        Change::FileByte,
        Change::FileLength,
        Change::FileMeta,
        Change::FileRenamed,
        Change::FileAdded,
        Change::FileRemoved,
        Change::SnapshotIndex,
        Change::SnapshotTerm,
        Change::SnapshotPeers,
        Change::SnapshotOldPeers,
        Change::SnapshotDropped,
        Change::SnapshotAdded,
        Change::Term,
        Change::Vote,
    ];

    /// The snake_case name (in trace lines).
    pub fn name(self) -> &'static str {
        match self {
            Change::EntryTerm => "entry_term",
            Change::EntryKind => "entry_kind",
            Change::EntryPayloadByte => "entry_payload_byte",
            Change::EntryPeers => "entry_peers",
            Change::FirstIndex => "first_index",
            Change::LastIndex => "last_index",
            Change::FileByte => "file_byte",
            Change::FileLength => "file_length",
            Change::FileMeta => "file_meta",
            Change::FileRenamed => "file_renamed",
            Change::FileAdded => "file_added",
            Change::FileRemoved => "file_removed",
            Change::SnapshotIndex => "snapshot_index",
            Change::SnapshotTerm => "snapshot_term",
            Change::SnapshotPeers => "snapshot_peers",
            Change::SnapshotOldPeers => "snapshot_old_peers",
            Change::SnapshotDropped => "snapshot_dropped",
            Change::SnapshotAdded => "snapshot_added",
            Change::Term => "term",
            Change::Vote => "vote",
        }
    }

    /// `state` with this one change (where drawn from `rng`), or `None` when `state` has
    /// nothing to change this way (no entries, no snapshot, ...).
    pub fn apply(self, state: &RaftState, rng: &mut ChaCha8Rng) -> Option<RaftState> {
        let mut out = state.clone();
        let changed = match self {
            Change::EntryTerm => change_entry(
                &mut out,
                rng,
                |_| true,
                |e, _| {
                    e.term = other_value(e.term, TERM_MAX);
                },
            ),
            Change::EntryKind => change_entry(
                &mut out,
                rng,
                |_| true,
                |e, rng| {
                    e.payload = match e.payload {
                        Payload::NoOp => Payload::Data(Bytes::from_static(b"k")),
                        Payload::Data(_) if rng.random_bool(0.5) => Payload::NoOp,
                        Payload::Data(_) => {
                            Payload::Configuration { peers: vec![peer(1)], old_peers: Vec::new() }
                        }
                        Payload::Configuration { .. } => Payload::Data(Bytes::new()),
                    }
                },
            ),
            Change::EntryPayloadByte => change_entry(
                &mut out,
                rng,
                |e| matches!(&e.payload, Payload::Data(d) if !d.is_empty()),
                |e, rng| {
                    if let Payload::Data(data) = &e.payload {
                        e.payload = Payload::Data(flip_byte(data, rng));
                    }
                },
            ),
            Change::EntryPeers => change_entry(
                &mut out,
                rng,
                |e| matches!(e.payload, Payload::Configuration { .. }),
                |e, rng| {
                    if let Payload::Configuration { peers, old_peers } = &mut e.payload {
                        let list = if rng.random_bool(0.5) { peers } else { old_peers };
                        list.push(peer(150));
                    }
                },
            ),
            Change::FirstIndex => change_first(&mut out),
            Change::LastIndex => change_last(&mut out),
            Change::Term => {
                out.meta.term = other_value(out.meta.term, TERM_MAX);
                true
            }
            Change::Vote => {
                out.meta.voted_for = match &out.meta.voted_for {
                    None => Some(peer(3)),
                    Some(_) if rng.random_bool(0.5) => None,
                    Some(p) if *p == peer(4) => Some(peer(5)),
                    Some(_) => Some(peer(4)),
                };
                true
            }
            Change::SnapshotAdded => {
                let added = out.snapshot.is_none();
                if added {
                    let meta = SnapshotMeta {
                        last_included_index: out.last(),
                        last_included_term: out.meta.term,
                        peers: vec![peer(0)],
                        old_peers: Vec::new(),
                    };
                    let mut snapshot = Snapshot { meta, files: Default::default() };
                    let path = SnapshotPath::new("added").expect("a valid path");
                    snapshot.files.insert(path, new_file(b"add"));
                    out.snapshot = Some(snapshot);
                }
                added
            }
            Change::SnapshotDropped => out.snapshot.take().is_some(),
            _ => match &mut out.snapshot {
                Some(snapshot) => change_snapshot(self, snapshot, rng),
                None => false,
            },
        };
        changed.then_some(out)
    }
}

/// One change of `state`, drawn from `rng` among those that apply to it.
pub fn draw_change(state: &RaftState, rng: &mut ChaCha8Rng) -> Option<(Change, RaftState)> {
    let start = rng.random_range(0..Change::ALL.len());
    (0..Change::ALL.len()).find_map(|k| {
        let change = Change::ALL[(start + k) % Change::ALL.len()];
        change.apply(state, rng).map(|changed| (change, changed))
    })
}

/// A value other than `v` within `0..=max`.
fn other_value(v: u64, max: u64) -> u64 {
    if v < max {
        v + 1
    } else {
        v - 1
    }
}

/// A position among `n`: the first or the last a third of the time each, else any.
fn position(rng: &mut ChaCha8Rng, n: usize) -> usize {
    match rng.random_range(0..3u32) {
        0 => 0,
        1 => n - 1,
        _ => rng.random_range(0..n),
    }
}

/// Changes one entry among those `eligible`.
fn change_entry(
    state: &mut RaftState,
    rng: &mut ChaCha8Rng,
    eligible: impl Fn(&Entry) -> bool,
    change: impl FnOnce(&mut Entry, &mut ChaCha8Rng),
) -> bool {
    let candidates: Vec<usize> =
        (0..state.entries.len()).filter(|&i| eligible(&state.entries[i])).collect();
    if candidates.is_empty() {
        return false;
    }
    let i = candidates[position(rng, candidates.len())];
    change(&mut state.entries[i], rng);
    true
}

fn change_first(state: &mut RaftState) -> bool {
    if !state.entries.is_empty() {
        state.entries.remove(0);
        state.first += 1;
        return true;
    }
    if state.first >= INDEX_MAX {
        return false;
    }
    state.first += 1;
    true
}

fn change_last(state: &mut RaftState) -> bool {
    if state.entries.pop().is_some() {
        return true;
    }
    let payload = Payload::Data(Bytes::from_static(b"last"));
    state.entries.push(Entry { index: state.first, term: state.meta.term, payload });
    true
}

fn flip_byte(data: &[u8], rng: &mut ChaCha8Rng) -> Bytes {
    let mut copy = data.to_vec();
    let at = position(rng, copy.len());
    copy[at] ^= 1 << rng.random_range(0..8u32);
    Bytes::from(copy)
}

fn new_file(data: &'static [u8]) -> SnapshotFile {
    SnapshotFile { data: Bytes::from_static(data), file_meta: Default::default() }
}

/// One of the snapshot changes (meta and files) of `snapshot`.
fn change_snapshot(change: Change, snapshot: &mut Snapshot, rng: &mut ChaCha8Rng) -> bool {
    let meta = &mut snapshot.meta;
    let files = &mut snapshot.files;
    let paths: Vec<SnapshotPath> = files.keys().cloned().collect();
    let pick = |rng: &mut ChaCha8Rng, paths: &[SnapshotPath]| {
        (!paths.is_empty()).then(|| paths[position(rng, paths.len())].clone())
    };
    match change {
        Change::SnapshotIndex => {
            meta.last_included_index = other_value(meta.last_included_index, INDEX_MAX);
        }
        Change::SnapshotTerm => {
            meta.last_included_term = other_value(meta.last_included_term, TERM_MAX);
        }
        Change::SnapshotPeers => change_peers(&mut meta.peers, 201, rng),
        Change::SnapshotOldPeers => change_peers(&mut meta.old_peers, 202, rng),
        Change::FileByte => {
            let non_empty: Vec<SnapshotPath> =
                paths.iter().filter(|p| !files[*p].data.is_empty()).cloned().collect();
            let Some(path) = pick(rng, &non_empty) else { return false };
            let file = files.get_mut(&path).expect("listed");
            file.data = flip_byte(&file.data, rng);
        }
        Change::FileLength => {
            let Some(path) = pick(rng, &paths) else { return false };
            let file = files.get_mut(&path).expect("listed");
            let mut data = file.data.to_vec();
            if !data.is_empty() && rng.random_bool(0.5) {
                data.pop();
            } else {
                data.push(0x5A);
            }
            file.data = Bytes::from(data);
        }
        Change::FileMeta => {
            let Some(path) = pick(rng, &paths) else { return false };
            let m = &mut files.get_mut(&path).expect("listed").file_meta;
            match rng.random_range(0..3u32) {
                0 => {
                    m.user_meta = match m.user_meta {
                        Some(_) => None,
                        None => Some(Bytes::from_static(b"user")),
                    }
                }
                1 => {
                    m.source = match m.source {
                        None => Some(FileSource::Local),
                        Some(FileSource::Local) => Some(FileSource::Reference),
                        Some(FileSource::Reference) => None,
                    }
                }
                _ => {
                    m.checksum = match m.checksum {
                        Some(_) => None,
                        None => Some("0f1e".to_string()),
                    }
                }
            }
        }
        Change::FileRenamed => {
            let Some(path) = pick(rng, &paths) else { return false };
            let file = files.remove(&path).expect("listed");
            match renamed(&path, files) {
                Some(new_path) => {
                    files.insert(new_path, file);
                }
                None => {
                    files.insert(path, file);
                    return false;
                }
            }
        }
        Change::FileAdded => {
            let Some(path) = (0..4).find_map(|n| free_path(&format!("added{n}"), files)) else {
                return false;
            };
            files.insert(path, new_file(b"new file"));
        }
        Change::FileRemoved => {
            let Some(path) = pick(rng, &paths) else { return false };
            files.remove(&path);
        }
        _ => return false,
    }
    true
}

fn change_peers(peers: &mut Vec<crate::contract::PeerId>, n: u8, rng: &mut ChaCha8Rng) {
    if !peers.is_empty() && rng.random_bool(0.5) {
        peers.pop();
    } else {
        peers.push(peer(n));
    }
}

/// `path` with its last segment prefixed by `r`s, as a path free in `files`.
fn renamed(
    path: &SnapshotPath,
    files: &std::collections::BTreeMap<SnapshotPath, SnapshotFile>,
) -> Option<SnapshotPath> {
    let text = path.as_str();
    let (dir, name) = match text.rfind('/') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", text),
    };
    (1..4).find_map(|n| free_path(&format!("{dir}{}{name}", "r".repeat(n)), files))
}

fn free_path(
    text: &str,
    files: &std::collections::BTreeMap<SnapshotPath, SnapshotFile>,
) -> Option<SnapshotPath> {
    let path = SnapshotPath::new(text).ok()?;
    check_new_snapshot_file(files, &path).is_ok().then_some(path)
}

/// One side of a compared pair: an instance and how it is named and exported.
pub struct Side<'a> {
    /// The instance.
    pub storage: &'a dyn RaftStorage,
    /// Its URI in reports (`local://b`).
    pub uri: String,
}

/// Why a state could not be put into a fresh instance.
#[derive(Debug)]
pub enum Placement {
    /// The family does not take this state (a contract error): the sample is skipped.
    Refused(StorageError),
    /// Opening or importing failed on a fault-free disk: a finding.
    Failed(String),
}

/// A fresh instance of `family` at `location` on `disk`, holding `state` (through its import).
pub fn place(
    family: &Arc<dyn Family>,
    disk: &Arc<SimDisk>,
    location: &str,
    state: &RaftState,
) -> Result<Box<dyn RaftStorage>, Placement> {
    let scheme = family.scheme();
    let mut instance = family
        .open(location, disk.clone())
        .map_err(|e| Placement::Failed(format!("opening a fresh {scheme} instance: {e}")))?;
    match bootstrap_into(state, instance.as_mut(), &mut |_| {}) {
        Ok(_) => Ok(instance),
        Err(e @ StorageError::Contract(_)) => Err(Placement::Refused(e)),
        Err(e) => Err(Placement::Failed(format!("importing a state into {scheme}: {e}"))),
    }
}

/// Judges the validator, `qk compare`'s report and `image diff` on `a` and `b` (see the
/// module doc), the first two through `planted`'s blind spot when one is planted. Returns what
/// disagreed, in words.
pub fn agree(a: &Side, b: &Side, planted: Option<PlantedValidatorBug>) -> Result<(), String> {
    let read = |side: &Side, e: &dyn std::fmt::Display| format!("reading {} failed: {e}", side.uri);
    let x = RaftState::capture(a.storage).map_err(|e| read(a, &e))?;
    let y = RaftState::capture(b.storage).map_err(|e| read(b, &e))?;
    let equal = x.digest() == y.digest();
    let expected = first_difference(&x, &y);
    if equal != expected.is_none() {
        return Err(format!(
            "the digests of {} and {} {} but state::first_difference says {}",
            a.uri,
            b.uri,
            if equal { "are equal" } else { "differ" },
            show(&expected)
        ));
    }
    let (va, vb): (&dyn StateView, &dyn StateView) = (a.storage, b.storage);
    let (blind_a, blind_b) = planted.map(|bug| (bug.blind(va), bug.blind(vb))).unzip();
    let (va, vb): (&dyn StateView, &dyn StateView) = match (&blind_a, &blind_b) {
        (Some(x), Some(y)) => (x, y),
        _ => (va, vb),
    };

    let validated = crate::validate::compare(va, vb).map_err(|e| format!("validate: {e}"))?;
    if validated.difference != expected {
        return Err(format!(
            "validate::compare({}, {}) says {} where the states' first difference is {}",
            a.uri,
            b.uri,
            show(&validated.difference),
            show(&expected)
        ));
    }

    let reported =
        report(&a.uri, &b.uri, va, vb, &mut |_| {}).map_err(|e| format!("qk compare: {e}"))?;
    if let Some(what) = report_problem(&reported, a, b, &expected) {
        return Err(format!("qk compare {} {}: {what}", a.uri, b.uri));
    }

    let (image_a, image_b) = (export(a)?, export(b)?);
    let diffed = crate::image::diff(&image_a[..], &image_b[..])
        .map_err(|e| format!("image diff of {} and {}: {e}", a.uri, b.uri))?;
    let expected_image = match (&expected, &x.snapshot, &y.snapshot) {
        (Some(d), Some(s), Some(t)) if d.starts_with("snapshot file ") => {
            file_difference_in_image_order(s, t)
        }
        _ => expected.clone(),
    };
    if diffed != expected_image {
        return Err(format!(
            "image diff of {} and {} says {} where the states' first difference (files in \
             image order) is {}",
            a.uri,
            b.uri,
            show(&diffed),
            show(&expected_image)
        ));
    }
    Ok(())
}

/// What is wrong with `qk compare`'s report, if anything.
fn report_problem(
    reported: &crate::cli::compare::Report,
    a: &Side,
    b: &Side,
    expected: &Option<String>,
) -> Option<String> {
    let (exit, line_ok) = match expected {
        None => (0, reported.line.starts_with(&format!("EQUIVALENT {} and {}: ", a.uri, b.uri))),
        Some(d) => (1, reported.line == format!("DIFFERENT  {} vs {}: {d}", a.uri, b.uri)),
    };
    if reported.exit_code != exit {
        return Some(format!("exit code {} where {exit} was due", reported.exit_code));
    }
    if !line_ok {
        return Some(format!(
            "prints {:?} where the difference is {}",
            reported.line,
            show(expected)
        ));
    }
    let json_difference = reported.json["difference"].as_str().map(str::to_string);
    if reported.json["equivalent"] != serde_json::Value::Bool(expected.is_none())
        || json_difference != *expected
    {
        return Some(format!("its JSON says {} where it is {}", reported.json, show(expected)));
    }
    None
}

fn export(side: &Side) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let storage = side.storage;
    crate::image::export(storage, storage.family(), storage.family_format_version(), &mut bytes)
        .map_err(|e| format!("exporting {}: {e}", side.uri))?;
    Ok(bytes)
}

fn show(difference: &Option<String>) -> String {
    match difference {
        None => "equivalent".to_string(),
        Some(d) => format!("{d:?}"),
    }
}

/// The first difference between the file trees of two snapshots with equal metas, walking
/// the files in the image's path order (`image::format::path_order`), in
/// `state::first_difference`'s words: what `image diff` names.
pub fn file_difference_in_image_order(x: &Snapshot, y: &Snapshot) -> Option<String> {
    fn in_image_order(s: &Snapshot) -> Vec<(&SnapshotPath, &SnapshotFile)> {
        let mut files: Vec<(&SnapshotPath, &SnapshotFile)> = s.files.iter().collect();
        files.sort_by(|p, q| path_order(p.0.as_str(), q.0.as_str()));
        files
    }
    let (left, right) = (in_image_order(x), in_image_order(y));
    let (mut i, mut j) = (0, 0);
    loop {
        let (p, f, q, g) = match (left.get(i), right.get(j)) {
            (None, None) => return None,
            (Some((p, _)), None) => return Some(format!("snapshot file {p}: only in the first")),
            (None, Some((q, _))) => return Some(format!("snapshot file {q}: only in the second")),
            (Some((p, f)), Some((q, g))) => (p, f, q, g),
        };
        match path_order(p.as_str(), q.as_str()) {
            Ordering::Less => return Some(format!("snapshot file {p}: only in the first")),
            Ordering::Greater => return Some(format!("snapshot file {q}: only in the second")),
            Ordering::Equal => {}
        }
        if f.data != g.data {
            let at = f.data.iter().zip(&g.data[..]).position(|(u, v)| u != v);
            let at = at.unwrap_or(f.data.len().min(g.data.len()));
            return Some(format!(
                "snapshot file {p}: content differs at byte {at} (lengths {} vs {})",
                f.data.len(),
                g.data.len()
            ));
        }
        if let Some(what) = f.file_meta.difference(&g.file_meta) {
            return Some(format!("snapshot file {p}: file metadata {what}"));
        }
        i += 1;
        j += 1;
    }
}
