//! Giving a state what a violation needs before it is applied: entries, a data or a
//! configuration entry, room after the last index, a snapshot, files (one with a partial last
//! chunk, one under a directory, one with file metadata). Things are added, never taken away.

use bytes::Bytes;
use rand::{Rng, RngExt};

use super::super::format::{CHUNK_LEN, INDEX_MAX};
use super::super::record::Cut;
use super::catalogue::Needs;
use super::records::{FileGroup, Layout, RawRecord};
use crate::contract::{
    check_new_snapshot_file, Entry, FileMeta, Payload, PeerId, SnapshotMeta, SnapshotPath,
};
use crate::state::{RaftState, Snapshot, SnapshotFile};

/// A valid peer the generator uses when it adds a configuration or a snapshot.
const PEER: &str = "10.0.0.1:8000:0";

/// `state` plus whatever `needs` asks for that it lacks.
pub(super) fn prepare<R: Rng + ?Sized>(state: &RaftState, needs: Needs, rng: &mut R) -> RaftState {
    let mut s = state.clone();
    let has = |s: &RaftState, f: &dyn Fn(&Entry) -> bool| s.entries.iter().any(f);
    if needs.data && !has(&s, &|e| matches!(e.payload, Payload::Data(_))) {
        let len = rng.random_range(0..=24);
        push_entry(&mut s, Payload::Data(Bytes::from(random_bytes(rng, len))));
    }
    if needs.config && !has(&s, &|e| matches!(e.payload, Payload::Configuration { .. })) {
        let peers = vec![PeerId::new(PEER), PeerId::new("10.0.0.2:8000:0")];
        push_entry(&mut s, Payload::Configuration { peers, old_peers: vec![] });
    }
    while s.entries.len() < needs.entries as usize {
        push_entry(&mut s, Payload::NoOp);
    }
    if (needs.room && s.last() >= INDEX_MAX) || (needs.first_2 && s.first < 2) {
        renumber(&mut s, 2);
    }
    if needs.snapshot && s.snapshot.is_none() {
        let meta = SnapshotMeta {
            last_included_index: s.first - 1,
            last_included_term: 1,
            peers: vec![PeerId::new(PEER)],
            old_peers: vec![],
        };
        s.snapshot = Some(Snapshot { meta, files: Default::default() });
    }
    let Some(snapshot) = s.snapshot.as_mut() else { return s };
    let files = &mut snapshot.files;
    let chunked = |f: &SnapshotFile| (2..CHUNK_LEN).contains(&(f.data.len() % CHUNK_LEN));
    let mut k = 0;
    let mut add = |files: &mut std::collections::BTreeMap<SnapshotPath, SnapshotFile>,
                   nested: bool,
                   len: usize,
                   rng: &mut R| loop {
        let text = if nested { format!("hostile-d{k}/f") } else { format!("hostile-{k}") };
        k += 1;
        let Ok(path) = SnapshotPath::new(text) else { continue };
        if check_new_snapshot_file(files, &path).is_ok() {
            let data = Bytes::from(random_bytes(rng, len));
            files.insert(path, SnapshotFile { data, file_meta: FileMeta::default() });
            return;
        }
    };
    if needs.chunked && !files.values().any(chunked) {
        let len = rng.random_range(2..=200);
        add(files, false, len, rng);
    }
    if needs.nested && !files.keys().any(|p| p.as_str().contains('/')) {
        add(files, true, 0, rng);
    }
    while files.len() < needs.files as usize {
        let len = rng.random_range(0..=40);
        add(files, false, len, rng);
    }
    // A checksum (braft's hex text), the FILE record's last field, so that a lie about its
    // length can only run past the body or leave bytes behind; user_meta now and then too.
    if needs.file_meta && !files.values().any(|f| f.file_meta.checksum.is_some()) {
        if let Some(file) = files.values_mut().next() {
            let len = rng.random_range(1..=16);
            file.file_meta.checksum = Some(hex::encode(random_bytes(rng, len)));
            if rng.random() {
                let len = rng.random_range(0..=8);
                file.file_meta.user_meta = Some(Bytes::from(random_bytes(rng, len)));
            }
        }
    }
    s
}

fn push_entry(s: &mut RaftState, payload: Payload) {
    if s.last() >= INDEX_MAX - 1 {
        renumber(s, 2);
    }
    let term = s.entries.last().map_or(1, |e| e.term);
    s.entries.push(Entry { index: s.last() + 1, term, payload });
}

/// Moves the log to start at `first` (indexes are the generator's to choose).
fn renumber(s: &mut RaftState, first: u64) {
    s.first = first;
    for (i, e) in s.entries.iter_mut().enumerate() {
        e.index = first + i as u64;
    }
}

pub(super) fn random_bytes<R: Rng + ?Sized>(rng: &mut R, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random()).collect()
}

/// Whether the image's records have what `needs` asks for (the state was prepared for it, so
/// this fails only for states `prepare` cannot help).
pub(super) fn satisfied(needs: Needs, layout: &Layout, records: &[RawRecord], cut: &Cut) -> bool {
    let has_kind =
        |kind: u8| layout.entries.clone().any(|k| records[k].body.get(16) == Some(&kind));
    let rest = |f: &FileGroup| (f.len % CHUNK_LEN as u64) as usize;
    layout.n_entries() >= needs.entries as usize
        && (!needs.room || cut.last < INDEX_MAX)
        && (!needs.first_2 || cut.first >= 2)
        && (!needs.data || has_kind(2))
        && (!needs.config || has_kind(3))
        && (!needs.snapshot || layout.snapshot.is_some())
        && layout.files.len() >= needs.files as usize
        && (!needs.chunked || layout.files.iter().any(|f| (2..CHUNK_LEN).contains(&rest(f))))
        && (!needs.nested || layout.files.iter().any(|f| f.path.contains('/')))
        && (!needs.file_meta || layout.files.iter().any(|f| f.has_meta))
}
