//! Edge images, the other half of `bad_images`' catalogue sweep: valid images with one field
//! exactly *at* a limit of the image format (`docs/image-format.md` §12), which the writer
//! must write and the reader must accept, importing exactly the state. The hostile catalogue
//! puts each field one past its limit and must be refused; together they pin each limit to
//! its value, so a rule applied one step too early (`>=` for `>`) is caught as surely as a
//! rule forgotten.
//!
//! Each [`Edge`] is made from the state at an export's cut: what the edge needs is added (a
//! snapshot file, a configuration entry), or the log is moved (to end at the largest index).
//! Nothing in the state is taken away.
//!
//! Proven to bite by the planted reader bug `exclusive-index-limit` (a reader that refuses a
//! log ending at the largest index), caught at a soak's first export (`sims/hostile.rs`).
//!
//! What it does not cover: limits too large for a soak's budget (a million snapshot files,
//! a 64 MiB record body, a 1 MiB file meta), which the format's unit tests hold.

use bytes::Bytes;

use crate::contract::{Entry, FileMeta, Payload, PeerId, SnapshotMeta, SnapshotPath};
use crate::contract::{SNAPSHOT_PATH_LEN_MAX, SNAPSHOT_PATH_SEGMENT_LEN_MAX};
use crate::families::memory::MemoryStorage;
use crate::image::format::{INDEX_MAX, NAME_LEN_MAX, PEERS_MAX, TERM_MAX};
use crate::image::{encode_state, import_with_reader_bug, verify, Extension, PlantedReaderBug};
use crate::state::{first_difference, RaftState, Snapshot, SnapshotFile};

/// One field at its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// A snapshot file whose path is exactly the longest a path may be.
    PathAtLimit,
    /// A snapshot file whose name is exactly the longest a path segment may be.
    SegmentAtLimit,
    /// A configuration entry (and the snapshot, if any) with exactly the most peers allowed.
    PeersAtLimit,
    /// The log's last entry at exactly the largest index.
    LastIndexAtLimit,
    /// The current term at exactly the largest term.
    TermAtLimit,
    /// A source family id of exactly the longest name.
    FamilyNameAtLimit,
    /// An ignorable extension whose name is exactly the longest name.
    ExtensionNameAtLimit,
}

impl Edge {
    /// Every edge.
    pub const ALL: &'static [Edge] = &[
        Edge::PathAtLimit,
        Edge::SegmentAtLimit,
        Edge::PeersAtLimit,
        Edge::LastIndexAtLimit,
        Edge::TermAtLimit,
        Edge::FamilyNameAtLimit,
        Edge::ExtensionNameAtLimit,
    ];
}

/// A valid image at one limit, and the state it must import as.
#[derive(Clone, Debug)]
pub struct EdgeImage {
    /// The edge it sits at.
    pub edge: Edge,
    /// The state it holds.
    pub state: RaftState,
    /// The image.
    pub bytes: Vec<u8>,
}

/// The image of `state` (exported by `source_family` at `family_version`) moved to `edge`;
/// `Err` when the writer refuses it (a writer that stops short of a limit is a bug too).
pub fn edge_image(
    state: &RaftState,
    source_family: &str,
    family_version: u32,
    edge: Edge,
) -> Result<EdgeImage, String> {
    let mut s = state.clone();
    let mut family = source_family.to_string();
    let mut extensions = Vec::new();
    match edge {
        Edge::PathAtLimit => add_file(&mut s, long_path(SNAPSHOT_PATH_LEN_MAX)),
        Edge::SegmentAtLimit => {
            add_file(&mut s, name_of_len("edge-segment-", SNAPSHOT_PATH_SEGMENT_LEN_MAX))
        }
        Edge::PeersAtLimit => {
            let peers: Vec<PeerId> = (0..PEERS_MAX).map(peer).collect();
            if let Some(snapshot) = s.snapshot.as_mut() {
                snapshot.meta.peers = peers.clone();
            }
            push_entry(&mut s, Payload::Configuration { peers, old_peers: vec![] });
        }
        Edge::LastIndexAtLimit => {
            if s.entries.is_empty() {
                push_entry(&mut s, Payload::NoOp);
            }
            let first = INDEX_MAX - (s.entries.len() as u64 - 1);
            s.first = first;
            for (i, e) in s.entries.iter_mut().enumerate() {
                e.index = first + i as u64;
            }
        }
        Edge::TermAtLimit => s.meta.term = TERM_MAX,
        Edge::FamilyNameAtLimit => family = name_of_len("edge", NAME_LEN_MAX),
        Edge::ExtensionNameAtLimit => extensions.push(Extension {
            name: name_of_len("edge.", NAME_LEN_MAX),
            version: 1,
            ignorable: true,
            data: Bytes::from_static(b"edge"),
        }),
    }
    let mut bytes = Vec::new();
    encode_state(&s, &family, family_version, &extensions, &mut bytes)
        .map_err(|e| format!("the writer refused a valid image at the limit ({edge:?}): {e}"))?;
    Ok(EdgeImage { edge, state: s, bytes })
}

/// Every [`Edge`] of `state`: written, imported into a fresh memory instance through a reader
/// with `planted` (none outside self-tests), which must hold exactly the edge's state, and
/// verified. Returns how many imports it made, or what went wrong.
pub fn check_edges(
    state: &RaftState,
    source_family: &str,
    family_version: u32,
    planted: Option<PlantedReaderBug>,
) -> Result<u64, String> {
    let mut imports = 0;
    for &edge in Edge::ALL {
        let image = edge_image(state, source_family, family_version, edge)?;
        let mut dest = MemoryStorage::new();
        imports += 1;
        import_with_reader_bug(&image.bytes[..], &mut dest, planted).map_err(|e| {
            format!("edge image {edge:?} (valid, at the limit) was refused by import: {e}")
        })?;
        let held = RaftState::capture(&dest).map_err(|e| format!("edge image {edge:?}: {e}"))?;
        if let Some(d) = first_difference(&held, &image.state) {
            return Err(format!("edge image {edge:?} imported as another state: {d}"));
        }
        if planted.is_none() {
            verify(&image.bytes[..]).map_err(|e| {
                format!("edge image {edge:?} (valid, at the limit) was refused by verify: {e}")
            })?;
        }
    }
    Ok(imports)
}

/// A name of exactly `len` bytes: `prefix` padded with `x`.
fn name_of_len(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", "x".repeat(len - prefix.len()))
}

/// A path of exactly `len` bytes made of segments at most the segment limit long, under a
/// top directory no other file of the generator uses.
fn long_path(len: usize) -> String {
    let mut path = String::from("edge-path");
    while path.len() < len {
        let room = len - path.len() - 1;
        path.push('/');
        path.push_str(&"p".repeat(room.min(SNAPSHOT_PATH_SEGMENT_LEN_MAX)));
    }
    path
}

/// The `n`th of the edge peers: distinct, in the generator's canonical spelling.
fn peer(n: usize) -> PeerId {
    PeerId::new(format!("10.0.{}.{}:8000:0:0", n / 256, n % 256))
}

fn add_file(s: &mut RaftState, path: String) {
    let path = SnapshotPath::new(path).expect("an edge path is valid");
    let below_first = s.first - 1;
    let snapshot = s.snapshot.get_or_insert_with(|| Snapshot {
        meta: SnapshotMeta {
            last_included_index: below_first,
            last_included_term: 1,
            peers: vec![peer(0)],
            old_peers: vec![],
        },
        files: Default::default(),
    });
    let data = Bytes::from_static(b"at the limit");
    snapshot.files.insert(path, SnapshotFile { data, file_meta: FileMeta::default() });
}

fn push_entry(s: &mut RaftState, payload: Payload) {
    let term = s
        .entries
        .last()
        .map_or(1, |e| e.term)
        .max(s.snapshot.as_ref().map_or(1, |snap| snap.meta.last_included_term));
    if s.last() >= INDEX_MAX {
        return;
    }
    s.entries.push(Entry { index: s.last() + 1, term, payload });
}
