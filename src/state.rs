//! The Raft-visible state as a plain value (DESIGN §2): retained range, every retained entry,
//! term and vote, the latest snapshot's meta and its file tree with contents and file
//! metadata. Two instances are equivalent exactly when their `RaftState`s are equal.
//!
//! [`RaftState::digest`] is a SHA-256 over a canonical encoding that depends only on the
//! logical state, so it is stable across runs, machines and families.
//! [`first_difference`] names the first place two states differ, in words.

use std::collections::BTreeMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::contract::{
    ContractError, Entry, FileMeta, Index, Meta, Payload, PeerId, SnapshotFileInfo, SnapshotMeta,
    SnapshotPath, StateView, StorageResult,
};

/// One file of a snapshot tree held in full.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotFile {
    /// The file's bytes.
    pub data: Bytes,
    /// Its metadata (braft's `LocalFileMeta`; the default for none).
    pub file_meta: FileMeta,
}

/// The latest snapshot held in full.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The snapshot's meta.
    pub meta: SnapshotMeta,
    /// Its files by path (sorted by the path's bytes).
    pub files: BTreeMap<SnapshotPath, SnapshotFile>,
}

impl Snapshot {
    /// Its files as [`StateView::snapshot_files`] lists them: sorted by path.
    pub fn file_infos(&self) -> Vec<SnapshotFileInfo> {
        self.files
            .iter()
            .map(|(path, f)| SnapshotFileInfo {
                path: path.clone(),
                len: f.data.len() as u64,
                file_meta: f.file_meta.clone(),
            })
            .collect()
    }

    /// [`StateView::read_snapshot_file`] over an optional snapshot held in memory: copies
    /// bytes of `path` from `offset` into `buf`, returns how many (0 at or past the end);
    /// an unknown path (or no snapshot) is `UnknownSnapshotFile`.
    pub fn read_file(
        snapshot: Option<&Self>,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        let file = snapshot
            .and_then(|s| s.files.get(path))
            .ok_or_else(|| ContractError::UnknownSnapshotFile { path: path.to_string() })?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(file.data.len());
        let n = buf.len().min(file.data.len() - start);
        buf[..n].copy_from_slice(&file.data[start..start + n]);
        Ok(n)
    }
}

/// The whole Raft-visible state of an instance, as a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RaftState {
    /// First retained index.
    pub first: Index,
    /// Every retained entry, in index order, from `first`.
    pub entries: Vec<Entry>,
    /// Term and vote.
    pub meta: Meta,
    /// The latest published snapshot.
    pub snapshot: Option<Snapshot>,
}

impl Default for RaftState {
    fn default() -> Self {
        RaftState::new()
    }
}

impl RaftState {
    /// The state of a fresh instance of any family: empty log at 1, term 1, no vote, no
    /// snapshot.
    pub fn new() -> Self {
        RaftState { first: 1, entries: Vec::new(), meta: Meta::INITIAL, snapshot: None }
    }

    /// Last retained index (`first - 1` when the log is empty).
    pub fn last(&self) -> Index {
        (self.first - 1) + self.entries.len() as u64
    }

    /// The retained entry at `index`, if any (borrowed: [`StateView::entry`] copies it).
    pub fn get(&self, index: Index) -> Option<&Entry> {
        let offset = usize::try_from(index.checked_sub(self.first)?).ok()?;
        self.entries.get(offset)
    }

    /// Reads the full state out of any view (a live instance, an export cut, the model).
    pub fn capture(view: &dyn StateView) -> StorageResult<RaftState> {
        let first = view.first_index();
        let last = view.last_index();
        let mut entries = Vec::new();
        if last >= first {
            for index in first..=last {
                entries.push(view.entry(index)?.ok_or_else(|| missing_entry(index))?);
            }
        }
        let meta = view.meta()?;
        let snapshot = match view.snapshot_meta()? {
            None => None,
            Some(meta) => {
                let mut files = BTreeMap::new();
                let mut chunk = Vec::new();
                for info in view.snapshot_files()? {
                    let data = read_whole_file(view, &info.path, info.len, &mut chunk)?;
                    files.insert(info.path, SnapshotFile { data, file_meta: info.file_meta });
                }
                Some(Snapshot { meta, files })
            }
        };
        Ok(RaftState { first, entries, meta, snapshot })
    }

    /// SHA-256 of the canonical encoding, as 64 lower-case hex digits.
    pub fn digest(&self) -> String {
        self.parts().digest()
    }

    /// Feeds the canonical encoding to `out`: every integer little-endian u64, every byte
    /// string length-prefixed, every optional value tagged, fields in a fixed order.
    pub fn encode_into(&self, out: &mut dyn FnMut(&[u8])) {
        self.parts().encode_into(out)
    }

    /// The state as borrowed parts.
    pub fn parts(&self) -> StateParts<'_> {
        StateParts {
            first: self.first,
            entries: &self.entries,
            meta: &self.meta,
            snapshot: self.snapshot.as_ref(),
        }
    }
}

/// A state given by borrowed parts: its encoding and digest are those of the [`RaftState`]
/// with the same fields, without assembling (copying) one.
#[derive(Clone, Copy, Debug)]
pub struct StateParts<'a> {
    /// First retained index.
    pub first: Index,
    /// Every retained entry, in index order, from `first`.
    pub entries: &'a [Entry],
    /// Term and vote.
    pub meta: &'a Meta,
    /// The latest published snapshot.
    pub snapshot: Option<&'a Snapshot>,
}

impl StateParts<'_> {
    /// SHA-256 of the canonical encoding, as 64 lower-case hex digits.
    pub fn digest(&self) -> String {
        // The encoding comes in many pieces of a few bytes: gathering them into blocks
        // first costs less than handing each to the hasher.
        const BLOCK: usize = 8 << 10;
        let mut hasher = Sha256::new();
        let mut block = Vec::with_capacity(BLOCK);
        self.encode_into(&mut |bytes| {
            if block.len() + bytes.len() > BLOCK {
                hasher.update(&block);
                block.clear();
            }
            if bytes.len() > BLOCK {
                hasher.update(bytes);
            } else {
                block.extend_from_slice(bytes);
            }
        });
        hasher.update(&block);
        hex::encode(hasher.finalize())
    }

    /// Feeds the canonical encoding to `out` (see [`RaftState::encode_into`]).
    pub fn encode_into(&self, out: &mut dyn FnMut(&[u8])) {
        let put_u64 = |out: &mut dyn FnMut(&[u8]), v: u64| out(&v.to_le_bytes());
        out(b"quorumkit-state-v2");
        put_u64(out, self.first);
        put_u64(out, self.entries.len() as u64);
        for entry in self.entries {
            put_u64(out, entry.index);
            put_u64(out, entry.term);
            out(&[entry.kind().number()]);
            match &entry.payload {
                Payload::NoOp => {}
                Payload::Data(data) => put_bytes(out, data),
                Payload::Configuration { peers, old_peers } => {
                    put_peers(out, peers);
                    put_peers(out, old_peers);
                }
            }
        }
        put_u64(out, self.meta.term);
        match &self.meta.voted_for {
            None => out(&[0]),
            Some(peer) => {
                out(&[1]);
                put_bytes(out, peer.as_str().as_bytes());
            }
        }
        match self.snapshot {
            None => out(&[0]),
            Some(snapshot) => {
                out(&[1]);
                put_u64(out, snapshot.meta.last_included_index);
                put_u64(out, snapshot.meta.last_included_term);
                put_peers(out, &snapshot.meta.peers);
                put_peers(out, &snapshot.meta.old_peers);
                put_u64(out, snapshot.files.len() as u64);
                for (path, file) in &snapshot.files {
                    put_bytes(out, path.as_str().as_bytes());
                    put_bytes(out, &file.data);
                    let FileMeta { user_meta, source, checksum } = &file.file_meta;
                    put_optional(out, user_meta.as_deref());
                    match source {
                        None => out(&[0]),
                        Some(s) => out(&[1, s.number() as u8]),
                    }
                    put_optional(out, checksum.as_deref().map(str::as_bytes));
                }
            }
        }
    }
}

fn put_bytes(out: &mut dyn FnMut(&[u8]), bytes: &[u8]) {
    out(&(bytes.len() as u64).to_le_bytes());
    out(bytes);
}

fn put_optional(out: &mut dyn FnMut(&[u8]), bytes: Option<&[u8]>) {
    match bytes {
        None => out(&[0]),
        Some(b) => {
            out(&[1]);
            put_bytes(out, b);
        }
    }
}

fn put_peers(out: &mut dyn FnMut(&[u8]), peers: &[PeerId]) {
    out(&(peers.len() as u64).to_le_bytes());
    for peer in peers {
        put_bytes(out, peer.as_str().as_bytes());
    }
}

fn missing_entry(index: Index) -> crate::contract::StorageError {
    crate::contract::StorageError::Backend {
        family: "view",
        message: format!("entry {index} inside the retained range could not be read"),
    }
}

/// Reads a snapshot file in 64 KiB chunks through `buf` (kept between files: zeroing a
/// fresh one per file cost more than reading small files).
fn read_whole_file(
    view: &dyn StateView,
    path: &SnapshotPath,
    len: u64,
    buf: &mut Vec<u8>,
) -> StorageResult<Bytes> {
    buf.resize(64 * 1024, 0);
    // The listed length only sizes the first allocation (capped: a damaged listing must not
    // make it huge); the reads decide what the file holds.
    let mut data = Vec::with_capacity(len.min(1 << 20) as usize);
    loop {
        let n = view.read_snapshot_file(path, data.len() as u64, buf)?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    if data.len() as u64 != len {
        return Err(crate::contract::StorageError::Backend {
            family: "view",
            message: format!(
                "snapshot file {path} listed with {len} bytes but {} were read",
                data.len()
            ),
        });
    }
    Ok(Bytes::from(data))
}

/// A state held in memory is itself a view: the model, the image encoder and tests read it
/// through the contract's read side.
impl StateView for RaftState {
    fn first_index(&self) -> Index {
        self.first
    }

    fn last_index(&self) -> Index {
        self.first.wrapping_add(self.entries.len() as u64).wrapping_sub(1)
    }

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        Ok(self.get(index).cloned())
    }

    fn meta(&self) -> StorageResult<Meta> {
        Ok(self.meta.clone())
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        Ok(self.snapshot.as_ref().map(|s| s.meta.clone()))
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        Ok(self.snapshot.as_ref().map(Snapshot::file_infos).unwrap_or_default())
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        Snapshot::read_file(self.snapshot.as_ref(), path, offset, buf)
    }
}

/// The first place where `a` and `b` differ, in words a person can act on, or `None` when
/// they are equal. Order: retained range, entries (by index, then field), meta, snapshot
/// meta, snapshot files (by path, then content and file metadata).
pub fn first_difference(a: &RaftState, b: &RaftState) -> Option<String> {
    if a.first != b.first || a.last() != b.last() {
        return Some(format!(
            "retained range differs: [{}, {}] vs [{}, {}]",
            a.first,
            a.last(),
            b.first,
            b.last()
        ));
    }
    for (x, y) in a.entries.iter().zip(&b.entries) {
        if let Some(what) = entry_difference(x, y) {
            return Some(format!("entry {}: {what}", x.index));
        }
    }
    if a.meta.term != b.meta.term {
        return Some(format!("meta term differs: {} vs {}", a.meta.term, b.meta.term));
    }
    if a.meta.voted_for != b.meta.voted_for {
        return Some(format!(
            "meta voted_for differs: {} vs {}",
            show_vote(&a.meta.voted_for),
            show_vote(&b.meta.voted_for)
        ));
    }
    match (&a.snapshot, &b.snapshot) {
        (None, None) => None,
        (Some(s), None) => Some(format!(
            "snapshot differs: snapshot at index {} vs none",
            s.meta.last_included_index
        )),
        (None, Some(s)) => Some(format!(
            "snapshot differs: none vs snapshot at index {}",
            s.meta.last_included_index
        )),
        (Some(x), Some(y)) => snapshot_difference(x, y),
    }
}

/// A vote in the words [`first_difference`] uses (`no vote` or the quoted peer).
pub(crate) fn show_vote(v: &Option<PeerId>) -> String {
    match v {
        None => "no vote".to_string(),
        Some(p) => format!("{:?}", p.as_str()),
    }
}

/// How two entries differ (index field, term, kind, payload), in [`first_difference`]'s
/// words without the `entry N: ` prefix.
pub(crate) fn entry_difference(x: &Entry, y: &Entry) -> Option<String> {
    if x.index != y.index {
        return Some(format!("index field {} vs {}", x.index, y.index));
    }
    if x.term != y.term {
        return Some(format!("term {} vs {}", x.term, y.term));
    }
    if x.kind() != y.kind() {
        return Some(format!("kind {} vs {}", x.kind().name(), y.kind().name()));
    }
    match (&x.payload, &y.payload) {
        (Payload::Data(p), Payload::Data(q)) if p != q => Some(bytes_difference("data", p, q)),
        (
            Payload::Configuration { peers: p, old_peers: op },
            Payload::Configuration { peers: q, old_peers: oq },
        ) => {
            if p != q {
                Some(format!("peers {p:?} vs {q:?}"))
            } else if op != oq {
                Some(format!("old_peers {op:?} vs {oq:?}"))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn bytes_difference(what: &str, p: &[u8], q: &[u8]) -> String {
    let at = p.iter().zip(q).position(|(a, b)| a != b).unwrap_or(p.len().min(q.len()));
    format!("{what} differs at byte {at} (lengths {} vs {})", p.len(), q.len())
}

/// How two snapshot metas differ, in [`first_difference`]'s words.
pub(crate) fn snapshot_meta_difference(m: &SnapshotMeta, n: &SnapshotMeta) -> Option<String> {
    if m.last_included_index != n.last_included_index {
        return Some(format!(
            "snapshot meta last_included_index differs: {} vs {}",
            m.last_included_index, n.last_included_index
        ));
    }
    if m.last_included_term != n.last_included_term {
        return Some(format!(
            "snapshot meta last_included_term differs: {} vs {}",
            m.last_included_term, n.last_included_term
        ));
    }
    if m.peers != n.peers {
        return Some(format!("snapshot meta peers differ: {:?} vs {:?}", m.peers, n.peers));
    }
    if m.old_peers != n.old_peers {
        return Some(format!(
            "snapshot meta old_peers differ: {:?} vs {:?}",
            m.old_peers, n.old_peers
        ));
    }
    None
}

fn snapshot_difference(x: &Snapshot, y: &Snapshot) -> Option<String> {
    if let Some(d) = snapshot_meta_difference(&x.meta, &y.meta) {
        return Some(d);
    }
    let mut left = x.files.iter().peekable();
    let mut right = y.files.iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => return None,
            (Some((p, _)), None) => return Some(format!("snapshot file {p}: only in the first")),
            (None, Some((q, _))) => return Some(format!("snapshot file {q}: only in the second")),
            (Some((p, f)), Some((q, g))) => {
                if p < q {
                    return Some(format!("snapshot file {p}: only in the first"));
                }
                if q < p {
                    return Some(format!("snapshot file {q}: only in the second"));
                }
                if f.data != g.data {
                    return Some(format!(
                        "snapshot file {p}: {}",
                        bytes_difference("content", &f.data, &g.data)
                    ));
                }
                if let Some(what) = f.file_meta.difference(&g.file_meta) {
                    return Some(format!("snapshot file {p}: file metadata {what}"));
                }
                left.next();
                right.next();
            }
        }
    }
}
