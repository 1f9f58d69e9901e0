//! braft's `LocalSnapshotStorage::init` and `open()` (braft-format.md §7.4): `temp/` would be
//! deleted; every name the lenient `snapshot_%020ld` scan matches counts, the largest index
//! wins and every other would be deleted; the reader opens the *padded* name and loads its
//! `__raft_snapshot_meta` (a ProtoBufFile of `LocalSnapshotPbMeta`): if that load fails
//! braft starts without a snapshot; if it loads without its `meta` field init fails. Files are
//! the ones the meta lists (duplicate names keep the last), read from the snapshot directory.
//!
//! File metadata: the contract's [`FileMeta`] is braft's whole `LocalFileMeta`, as
//! `get_file_meta` returns it: an absent `File.meta` is the empty message (every field
//! unset); `user_meta` and `checksum` are taken as stored; `source` is read as C++ proto2
//! reads an enum (the varint cut to 32 bits), and a number `FileSource` does not define goes
//! to the unknown fields, so it reads as unset. A `checksum` that is not UTF-8 loads in braft
//! (proto2 does not check strings) but no contract state holds it: not a contract state.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;

use crate::contract::{FileMeta, FileSource, SnapshotMeta, SnapshotPath};
use crate::state::{Snapshot, SnapshotFile};
use crate::vfs::{FileKind, Vfs};

use super::names::{padded_snapshot_name, snapshot_dir, Matched};
use super::pbfile::{self, PbLoad};
use super::wire::{Lenient, LocalFileMetaPb, LocalSnapshotPbMeta};
use super::{non_negative, peer_list, InitFailure, Notes, Stop, Store};

/// The meta file inside a snapshot directory.
const META_NAME: &str = "__raft_snapshot_meta";

/// The latest snapshot braft's snapshot storage would serve from `dir`, if any.
pub fn load(vfs: &dyn Vfs, dir: &Path, notes: &mut Notes) -> Result<Option<Snapshot>, Stop> {
    if !pbfile::is_dir(vfs, dir, Store::Snapshot)? {
        return Ok(None);
    }
    let mut found: Vec<(i64, String)> = Vec::new();
    for entry in vfs.read_dir(dir).map_err(Stop::Io)? {
        if entry.name == "temp" {
            notes.deletes.push(dir.join(&entry.name));
            continue;
        }
        match snapshot_dir(&entry.name) {
            Matched::Yes(index) => found.push((index, entry.name)),
            Matched::No => {}
            Matched::Overflow => {
                return Err(Stop::Unspecified(format!("{}: the index overflows int64", entry.name)))
            }
        }
    }
    found.sort();
    if found.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Stop::Unspecified("two snapshot directory names for one index".into()));
    }
    let Some((index, _)) = found.pop() else { return Ok(None) };
    notes.deletes.extend(found.into_iter().map(|(_, name)| dir.join(name)));
    let index = non_negative(index, "snapshot index")?;
    let snapshot_dir = dir.join(padded_snapshot_name(index as i64));
    if !matches!(vfs.metadata(&snapshot_dir), Ok(m) if m.kind == FileKind::Dir) {
        // open() builds the padded name; it is not there (or not a directory): no snapshot.
        return Ok(None);
    }
    let meta_path = snapshot_dir.join(META_NAME);
    let body = match pbfile::load(vfs, &meta_path)? {
        PbLoad::Loaded(body) => body,
        // The reader fails to init; the executor starts without a snapshot.
        PbLoad::Missing | PbLoad::Failed(_) => return Ok(None),
    };
    let (table, _) = LocalSnapshotPbMeta::parse(&body);
    let Some(meta) = table.meta else {
        return Err(Stop::Fails(InitFailure {
            store: Store::Snapshot,
            path: meta_path,
            what: "the snapshot meta has no `meta` field".into(),
        }));
    };
    let meta = SnapshotMeta {
        last_included_index: non_negative(meta.last_included_index, "last_included_index")?,
        last_included_term: non_negative(meta.last_included_term, "last_included_term")?,
        peers: peer_list(&meta.peers)?,
        old_peers: peer_list(&meta.old_peers)?,
    };
    if meta.last_included_index != index {
        return Err(Stop::Unspecified(format!(
            "the meta says index {}, the directory name {index}",
            meta.last_included_index
        )));
    }
    let mut listed: BTreeMap<Vec<u8>, Option<LocalFileMetaPb>> = BTreeMap::new();
    for file in table.files {
        listed.insert(file.name, file.meta);
    }
    let mut files = BTreeMap::new();
    for (name, file_meta) in listed {
        let text = String::from_utf8(name)
            .map_err(|_| Stop::NotAState("a snapshot file name is not UTF-8".into()))?;
        let path = SnapshotPath::new(text.clone())
            .map_err(|e| Stop::NotAState(format!("snapshot file name {text:?}: {e}")))?;
        let full = snapshot_dir.join(&text);
        let data = match pbfile::read_file(vfs, &full)? {
            Some(data) => Bytes::from(data),
            None => {
                return Err(Stop::NotAState(format!(
                    "the snapshot lists {text}, which is not on disk"
                )))
            }
        };
        files.insert(path, SnapshotFile { data, file_meta: file_meta_of(&text, file_meta)? });
    }
    Ok(Some(Snapshot { meta, files }))
}

/// The contract's file metadata for braft's `LocalFileMeta` (see the module doc).
fn file_meta_of(name: &str, meta: Option<LocalFileMetaPb>) -> Result<FileMeta, Stop> {
    let Some(meta) = meta else { return Ok(FileMeta::default()) };
    let checksum = match meta.checksum {
        None => None,
        Some(bytes) => Some(String::from_utf8(bytes).map_err(|_| {
            Stop::NotAState(format!("{name}: the LocalFileMeta checksum is not UTF-8"))
        })?),
    };
    Ok(FileMeta {
        user_meta: meta.user_meta.map(Bytes::from),
        // An enum is a 32-bit number on the wire's varint (the high bits are dropped).
        source: meta.source.and_then(|v| FileSource::from_number(v as u32 as i32)),
        checksum,
    })
}
