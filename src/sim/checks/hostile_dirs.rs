//! Check `hostile_dirs`, on the simulated disk: a `local://` directory with exactly one
//! semantic violation of braft's layout is refused with a typed error naming the file (and
//! offset), or read exactly as the family documents, by both opens — the directories'
//! analogue of [`bad_images`](super::bad_images)' hostile images.
//!
//! **When.** Wherever the runner closes a `local://` instance cleanly on an honest disk with
//! no fault since it was opened (the moments `inspect_agreement` inspects, and under the same
//! conditions: the disk then holds exactly the model's state), for a local family subject or
//! a pair's local primary. The runner takes a copy of the disk ([`SimDisk::fork`], with no
//! fault plan), so nothing a seed decides moves, and plants ONE violation from
//! [`Violation::ALL`] into the copy's directory through the family's own encoders, so that
//! every checksum, sidecar and name is right and only the semantic rule can reject it. The
//! violation is drawn from a stream of its own ([`HOSTILE_DIRS_SALT`]): the first from the
//! disk seed, then the catalogue in turn, one per clean close, skipping those the state
//! cannot carry (no closed segment, no snapshot, no snapshot file), so a short soak meets
//! every violation. One entry of the catalogue is an edge rather than a violation (a legal
//! snapshot meta just over 1 MiB, [`Violation::LargeSnapshotMeta`]), which must open. Judged
//! once the reopen recovered the model's state (at the end of a history, at once), like
//! `inspect_agreement`.
//!
//! **What it verifies.** On the copy, a read-only open (through the copy's observer) and
//! then a read-write open:
//! - each returns exactly the violation's [`Expected`] outcome: the typed
//!   [`Corruption`](crate::contract::Corruption) with the file, offset and words the family
//!   gives for that rule, or (where the family documents reading the shape) exactly the
//!   expected state;
//! - neither panics;
//! - the read-only open issues no mutating disk operation;
//! - nothing outside the directory changes (the copy's listing outside it is the same
//!   before and after both opens).
//!
//! Then, on the same copy (disposable once judged), `qk`'s classification of an operator's
//! target ([`classify`]) must call the directory an instance, and still call it one with
//! every mark of an instance but one removed (braft's three directories and the lock file;
//! the one kept rotates per clean close), without a mutating disk operation.
//!
//! **What not.** Directories bad in more than one way; what braft would make of them (the
//! `braft_view` oracle judges honest directories only); a pair's mirror; redb files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::contract::{Entry, Family, Payload, PeerId, SnapshotPath, StorageError};
use crate::families::local::files::{remove_dir_all, remove_file_if_present, write_atomic};
use crate::families::local::format::{
    snapshot_dir_name, ChecksumType, SegmentName, IMPORT_MARKER_NAME, LOG_DIR, PBFILE_PREFIX_LEN,
    RAFT_META_DIR, RAFT_META_NAME, SNAPSHOT_DIR, SNAPSHOT_META_NAME,
};
use crate::families::local::proto::{
    pbfile_decode, pbfile_encode, LocalSnapshotPbMeta, StablePbMeta,
};
use crate::families::local::segment::encode_record;
use crate::families::local::snapshot::encode_snapshot_meta;
use crate::families::local::{classify, DirShape, LOCK_FILE_NAME};
use crate::state::{first_difference, RaftState};
use crate::vfs::{FaultPlan, FileKind, Image, OpenOptions, SimDisk, VfsHandle};

/// Salt that separates this check's random stream from every other stream of a seed.
pub const HOSTILE_DIRS_SALT: u64 = 0x686f_7374_2d64_6972;

/// One semantic violation of braft's `local://` layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A closed segment `log_<first>_<last>` with one more record (correctly checksummed)
    /// than its name promises. braft: "found garbage"; the family refuses it at the
    /// record's offset.
    SegmentExtraRecord,
    /// A file the snapshot meta lists is a directory on disk. Refused naming that path.
    SnapshotFileIsDirectory,
    /// `raft_meta`'s vote spelled with a leading-zero octet (`10.0.01.1:…`), written as braft
    /// writes it (tmp + rename). braft's `inet_pton` rejects it and its init fails; the
    /// family refuses it as not PeerId text.
    VoteLeadingZeroOctet,
    /// A snapshot meta peer spelled with a leading-zero octet, written as braft writes it.
    /// The family reads peer text braft cannot parse back as it is (module doc of
    /// `families::local::peer`), so the open shows that text verbatim.
    SnapshotPeerLeadingZeroOctet,
    /// Not a violation but an edge: a snapshot meta whose ProtoBufFile body is just over
    /// 1 MiB (one file's `user_meta` of [`LARGE_META_USER_META_LEN`] bytes), which braft
    /// reads (its limit is protobuf's 64 MiB). It must open with exactly that metadata.
    LargeSnapshotMeta,
    /// The marker an older version of the family left mid-import (`log/qk_import_incomplete`)
    /// beside a complete state: the instance must open empty.
    LegacyImportMarker,
}

impl Violation {
    /// The catalogue, in rotation order.
    pub const ALL: [Violation; 6] = [
        Violation::SegmentExtraRecord,
        Violation::SnapshotFileIsDirectory,
        Violation::VoteLeadingZeroOctet,
        Violation::SnapshotPeerLeadingZeroOctet,
        Violation::LargeSnapshotMeta,
        Violation::LegacyImportMarker,
    ];

    /// The stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Violation::SegmentExtraRecord => "segment-extra-record",
            Violation::SnapshotFileIsDirectory => "snapshot-file-is-directory",
            Violation::VoteLeadingZeroOctet => "vote-leading-zero-octet",
            Violation::SnapshotPeerLeadingZeroOctet => "snapshot-peer-leading-zero-octet",
            Violation::LargeSnapshotMeta => "large-snapshot-meta",
            Violation::LegacyImportMarker => "legacy-import-marker",
        }
    }
}

/// What both opens of a hostile directory must return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A [`Corruption`](crate::contract::Corruption) in `path` at `offset` whose words
    /// contain `what`.
    Refused {
        /// The file the error must name.
        path: PathBuf,
        /// The byte offset it must name.
        offset: u64,
        /// Words its description must contain.
        what: String,
    },
    /// The open succeeds and shows exactly this state.
    Opens(RaftState),
}

/// A violation planted in a copy of a disk, with what the opens must return.
pub struct HostileDir {
    /// The violation.
    pub violation: Violation,
    /// The copy holding it.
    pub disk: Arc<SimDisk>,
    /// What both opens must return.
    pub expected: Expected,
}

/// The violation for the `nth` clean close of a run on a disk seeded with `seed`: one drawn
/// from the seed, then the catalogue in turn. Returns the catalogue from that point on.
pub fn rotation(seed: u64, nth: u64) -> (impl Iterator<Item = Violation>, ChaCha8Rng) {
    let n = Violation::ALL.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ HOSTILE_DIRS_SALT);
    let start = rng.random_range(0..n) + (nth % n as u64) as usize;
    let parts = ChaCha8Rng::seed_from_u64(
        (seed ^ HOSTILE_DIRS_SALT).wrapping_add(nth.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    ((0..n).map(move |i| Violation::ALL[(start + i) % n]), parts)
}

/// Runs the `nth` check of a run: plants the first violation in rotation that `state` (the
/// state the closed instance at `root` on `disk` holds) can carry into a copy of `disk`, and
/// judges `family`'s two opens of it. Returns the violation judged, or what went wrong.
pub fn check(
    family: &dyn Family,
    root: &str,
    disk: &SimDisk,
    state: &RaftState,
    seed: u64,
    nth: u64,
) -> Result<Violation, String> {
    let (violations, mut rng) = rotation(seed, nth);
    for violation in violations {
        if let Some(hostile) = plant(disk, Path::new(root), state, violation, &mut rng)? {
            judge(family, root, &hostile)
                .map_err(|w| format!("hostile directory `{}`: {w}", violation.name()))?;
            classify_partial(&hostile.disk, Path::new(root), nth)
                .map_err(|w| format!("after hostile directory `{}`: {w}", violation.name()))?;
            return Ok(violation);
        }
    }
    Err("no violation of the catalogue applies (the legacy import marker always does)".into())
}

/// A copy of `disk` (no fault plan) with `violation` planted in the closed instance at `root`
/// holding `state`; `None` when the state cannot carry it.
pub fn plant(
    disk: &SimDisk,
    root: &Path,
    state: &RaftState,
    violation: Violation,
    rng: &mut ChaCha8Rng,
) -> Result<Option<HostileDir>, String> {
    let copy = disk.fork();
    copy.set_fault_plan(FaultPlan::none());
    copy.disarm_crash();
    let vfs: VfsHandle = copy.clone();
    let fail = |e: &dyn std::fmt::Display| format!("planting `{}`: {e}", violation.name());
    let expected = match violation {
        Violation::SegmentExtraRecord => {
            extra_record(&vfs, root, state, rng).map_err(|e| fail(&e))?
        }
        Violation::SnapshotFileIsDirectory => {
            file_as_dir(&vfs, root, state, rng).map_err(|e| fail(&e))?
        }
        Violation::VoteLeadingZeroOctet => Some(vote(&vfs, root, state).map_err(|e| fail(&e))?),
        Violation::SnapshotPeerLeadingZeroOctet => {
            snapshot_peer(&vfs, root, state, rng).map_err(|e| fail(&e))?
        }
        Violation::LargeSnapshotMeta => large_meta(&vfs, root, state, rng).map_err(|e| fail(&e))?,
        Violation::LegacyImportMarker => {
            let marker = root.join(LOG_DIR).join(IMPORT_MARKER_NAME);
            drop(vfs.open(&marker, OpenOptions::CREATE_TRUNCATE).map_err(|e| fail(&e))?);
            Some(Expected::Opens(RaftState::new()))
        }
    };
    Ok(expected.map(|expected| HostileDir { violation, disk: copy, expected }))
}

type Planted = Result<Option<Expected>, StorageError>;

fn extra_record(vfs: &VfsHandle, root: &Path, state: &RaftState, rng: &mut ChaCha8Rng) -> Planted {
    let log = root.join(LOG_DIR);
    let closed: Vec<(String, u64)> = vfs
        .read_dir(&log)?
        .into_iter()
        .filter(|e| e.kind == FileKind::File)
        .filter_map(|e| match SegmentName::parse(&e.name) {
            Some(SegmentName::Closed { last, .. }) if state.get(last).is_some() => {
                Some((e.name, last))
            }
            _ => None,
        })
        .collect();
    if closed.is_empty() {
        return Ok(None);
    }
    let (name, last) = &closed[rng.random_range(0..closed.len())];
    let term = state.get(*last).map_or(1, |e| e.term);
    let extra = Entry { index: last + 1, term, payload: Payload::Data(Bytes::from_static(b"qk")) };
    let path = log.join(name);
    let file = vfs.open(&path, OpenOptions::WRITE)?;
    let offset = file.len()?;
    file.write_at(&encode_record(&extra, ChecksumType::Crc32c), offset)?;
    file.sync()?;
    let what = "found garbage: more than the".to_string();
    Ok(Some(Expected::Refused { path, offset, what }))
}

fn snapshot_dir(root: &Path, state: &RaftState) -> Option<PathBuf> {
    let index = state.snapshot.as_ref()?.meta.last_included_index;
    Some(root.join(SNAPSHOT_DIR).join(snapshot_dir_name(index)))
}

fn file_as_dir(vfs: &VfsHandle, root: &Path, state: &RaftState, rng: &mut ChaCha8Rng) -> Planted {
    let (Some(dir), Some(snapshot)) = (snapshot_dir(root, state), state.snapshot.as_ref()) else {
        return Ok(None);
    };
    let files: Vec<_> = snapshot.files.keys().collect();
    if files.is_empty() {
        return Ok(None);
    }
    let path = dir.join(files[rng.random_range(0..files.len())].as_str());
    vfs.remove_file(&path)?;
    vfs.create_dir(&path)?;
    let what = "listed snapshot file is a directory".to_string();
    Ok(Some(Expected::Refused { path, offset: 0, what }))
}

/// `peer`'s text with one octet spelled with a leading zero (the first below 100, which
/// stays at most three digits; else the last, as `0` and its last digit).
pub fn leading_zero_spelling(peer: &str) -> String {
    let (ip, rest) = peer.split_once(':').unwrap_or(("10.0.0.1", "8000:0:0"));
    let mut octets: Vec<String> = ip.split('.').map(str::to_string).collect();
    if octets.len() != 4 {
        octets = ["10", "0", "0", "1"].map(str::to_string).to_vec();
    }
    match octets.iter().position(|o| o.len() < 3) {
        Some(i) => octets[i].insert(0, '0'),
        None => octets[3] = format!("0{}", &octets[3][2..]),
    }
    format!("{}:{rest}", octets.join("."))
}

/// Writes `dir/name` as braft's save does: `name.tmp`, reused if a leftover one is there
/// (`O_TRUNC`), then renamed over, so the family's checksum sidecar reads it as replaced and
/// only braft's format judges it.
fn rewrite(vfs: &VfsHandle, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    write_atomic(vfs, dir, name, bytes)
}

fn vote(vfs: &VfsHandle, root: &Path, state: &RaftState) -> Result<Expected, StorageError> {
    let voted = state.meta.voted_for.as_ref().map_or(PeerId::ANY, |p| p.as_str());
    let votedfor = leading_zero_spelling(voted);
    let dir = root.join(RAFT_META_DIR);
    vfs.create_dir_all(&dir)?;
    let term = i64::try_from(state.meta.term).unwrap_or(i64::MAX);
    let bytes = pbfile_encode(&StablePbMeta { term, votedfor: votedfor.clone() });
    rewrite(vfs, &dir, RAFT_META_NAME, &bytes)?;
    Ok(Expected::Refused {
        path: dir.join(RAFT_META_NAME),
        offset: PBFILE_PREFIX_LEN as u64,
        what: format!("votedfor {votedfor:?} is not PeerId text"),
    })
}

fn snapshot_peer(vfs: &VfsHandle, root: &Path, state: &RaftState, rng: &mut ChaCha8Rng) -> Planted {
    let Some(dir) = snapshot_dir(root, state) else { return Ok(None) };
    let path = dir.join(SNAPSHOT_META_NAME);
    let file = vfs.open(&path, OpenOptions::READ)?;
    let mut bytes = vec![0u8; usize::try_from(file.len()?).unwrap_or(0)];
    let n = file.read_at(&mut bytes, 0)?;
    bytes.truncate(n);
    drop(file);
    let mut msg: LocalSnapshotPbMeta = match pbfile_decode(&bytes) {
        Ok(msg) => msg,
        Err(problem) => {
            let what = format!("{} does not decode: {problem}", path.display());
            return Err(crate::families::local::files::corruption(&path, 0, what));
        }
    };
    let Some(meta) = msg.meta.as_mut() else { return Ok(None) };
    let mut expected = state.clone();
    let peers = &mut expected.snapshot.as_mut().expect("a snapshot").meta.peers;
    if meta.peers.is_empty() {
        let text = leading_zero_spelling("10.0.0.1:8000:0:0");
        meta.peers.push(text.clone());
        peers.push(PeerId::new(text));
    } else {
        let i = rng.random_range(0..meta.peers.len());
        let text = leading_zero_spelling(&meta.peers[i]);
        meta.peers[i] = text.clone();
        peers[i] = PeerId::new(text);
    }
    rewrite(vfs, &dir, SNAPSHOT_META_NAME, &pbfile_encode(&msg))?;
    Ok(Some(Expected::Opens(expected)))
}

/// How far past 1 MiB the large snapshot meta's body goes (a file's `user_meta` makes up
/// the size): legal for braft (a ProtoBufFile body is limited only by protobuf's 64 MiB),
/// and cheap enough to write once in a rotation.
pub const LARGE_META_USER_META_LEN: usize = (1 << 20) + 1;

fn large_meta(vfs: &VfsHandle, root: &Path, state: &RaftState, rng: &mut ChaCha8Rng) -> Planted {
    let Some(dir) = snapshot_dir(root, state) else { return Ok(None) };
    let mut expected = state.clone();
    let Some(snapshot) = expected.snapshot.as_mut() else { return Ok(None) };
    let files: Vec<SnapshotPath> = snapshot.files.keys().cloned().collect();
    if files.is_empty() {
        return Ok(None);
    }
    let path = &files[rng.random_range(0..files.len())];
    let user_meta = vec![0x5a; LARGE_META_USER_META_LEN];
    if let Some(file) = snapshot.files.get_mut(path) {
        file.file_meta.user_meta = Some(Bytes::from(user_meta));
    }
    let files = snapshot.files.iter().map(|(p, f)| (p, &f.file_meta));
    let bytes = encode_snapshot_meta(&snapshot.meta, files);
    rewrite(vfs, &dir, SNAPSHOT_META_NAME, &bytes)?;
    Ok(Some(Expected::Opens(expected)))
}

/// What one open of a hostile directory returned: the state it showed, or its error.
type Opened = Result<Result<RaftState, StorageError>, String>;

/// Judges `family`'s read-only and read-write opens of `hostile` at `root`.
pub fn judge(family: &dyn Family, root: &str, hostile: &HostileDir) -> Result<(), String> {
    let disk = &hostile.disk;
    let outside = |disk: &SimDisk| {
        let inside = format!("{root}/");
        let mut entries = disk.listing(Image::Visible);
        entries.retain(|e| e.path != root && !e.path.starts_with(&inside));
        entries
    };
    let before = outside(disk);
    let mutating = disk.mutating_op_count();
    let read_only = open_with(|| {
        let opened = family.open_read_only(root, disk.observer())?;
        RaftState::capture(opened.view.as_ref())
    });
    let mutating = disk.mutating_op_count() - mutating;
    if mutating > 0 {
        return Err(format!(
            "the read-only open issued {mutating} mutating disk operation(s) (it must never \
             create, write, cut, rename, remove or sync anything)"
        ));
    }
    verdict("the read-only open", &read_only, &hostile.expected)?;
    let read_write = open_with(|| {
        let vfs: VfsHandle = disk.clone();
        let storage = family.open(root, vfs)?;
        RaftState::capture(storage.as_ref())
    });
    verdict("the read-write open", &read_write, &hostile.expected)?;
    let after = outside(disk);
    if before != after {
        let changed = after
            .iter()
            .find(|e| !before.contains(e))
            .or_else(|| before.iter().find(|e| !after.contains(e)));
        return Err(format!(
            "the opens changed what lies outside the directory {root}: {:?}",
            changed.map(|e| &e.path)
        ));
    }
    Ok(())
}

/// The marks of an instance `qk` recognizes a directory by ([`classify`]): braft's three
/// directories and the family's lock file. Spelled here apart from `classify`'s own test on
/// purpose: this list is the oracle, so a mark dropped from `classify` is caught.
const INSTANCE_MARKS: [(&str, FileKind); 4] = [
    (LOG_DIR, FileKind::Dir),
    (RAFT_META_DIR, FileKind::Dir),
    (SNAPSHOT_DIR, FileKind::Dir),
    (LOCK_FILE_NAME, FileKind::File),
];

/// `qk`'s classification of an operator's target ([`classify`]), on the (disposable) copy
/// after both opens: the instance directory is an [`DirShape::Instance`]; then, with every
/// mark but one removed (the one kept rotates with `nth`, so a soak meets each), it still is
/// one (braft's layout is any of its marks), and read-only: no mutating disk operation.
fn classify_partial(disk: &Arc<SimDisk>, root: &Path, nth: u64) -> Result<(), String> {
    let observe = |what: &str| -> Result<(), String> {
        let mutating = disk.mutating_op_count();
        let observer: VfsHandle = disk.observer();
        let shape = classify(&observer, root).map_err(|e| format!("classify: {e}"))?;
        if disk.mutating_op_count() != mutating {
            return Err("classify issued a mutating disk operation".to_string());
        }
        if shape != DirShape::Instance {
            return Err(format!("classify calls {what} {shape:?}, not an instance"));
        }
        Ok(())
    };
    observe("the instance directory")?;
    let kept = INSTANCE_MARKS[(nth % INSTANCE_MARKS.len() as u64) as usize];
    let vfs: VfsHandle = disk.clone();
    for (name, kind) in INSTANCE_MARKS.into_iter().filter(|m| *m != kept) {
        let path = root.join(name);
        let removed = match kind {
            FileKind::Dir => remove_dir_all(&vfs, &path),
            FileKind::File => remove_file_if_present(&vfs, &path).map(|_| ()),
        };
        removed.map_err(|e| format!("removing {}: {e}", path.display()))?;
    }
    if !vfs.exists(&root.join(kept.0)).map_err(|e| e.to_string())? {
        return Ok(()); // the kept mark was never there (no snapshot yet, say): nothing to ask
    }
    observe(&format!("a directory holding only {}", kept.0))
}

fn open_with(open: impl FnOnce() -> Result<RaftState, StorageError>) -> Opened {
    crate::panics::catch(open).map_err(|p| crate::panics::text(&p).to_string())
}

fn verdict(which: &str, opened: &Opened, expected: &Expected) -> Result<(), String> {
    let result = opened.as_ref().map_err(|panic| format!("{which} panicked: {panic}"))?;
    match (result, expected) {
        (Err(StorageError::Corruption(c)), Expected::Refused { path, offset, what })
            if c.path == *path && c.offset == *offset && c.what.contains(what.as_str()) =>
        {
            Ok(())
        }
        (Ok(shown), Expected::Opens(state)) => match first_difference(shown, state) {
            None => Ok(()),
            Some(d) => Err(format!("{which} showed another state than expected: {d}")),
        },
        (Ok(_), Expected::Refused { path, offset, what }) => Err(format!(
            "{which} accepted it; expected corruption in {} at byte {offset} ({what:?})",
            path.display()
        )),
        (Err(e), Expected::Refused { path, offset, what }) => Err(format!(
            "{which} failed with `{e}`; expected corruption in {} at byte {offset} ({what:?})",
            path.display()
        )),
        (Err(e), Expected::Opens(_)) => Err(format!("{which} refused it: {e}")),
    }
}
