//! Bootstrap: streams a state (any [`StateView`]: a pinned export cut, a live primary) into an
//! empty instance through its atomic import sink. Memory stays flat: entries go in bounded
//! batches, snapshot files in [`CHUNK_LEN`] chunks. Also the streaming helpers the repair
//! rules reuse.

use serde::{Deserialize, Serialize};

use crate::contract::{
    check_reserved_snapshot_path, Entry, Index, Payload, RaftStorage, SnapshotPath, StateView,
    StorageError,
};
use crate::contract::{SnapshotFileInfo, StorageResult};
use crate::validate::CHUNK_LEN;

/// Most entries per batch handed to `append`.
pub const BATCH_ENTRIES_MAX: usize = 256;
/// Most payload bytes per batch handed to `append` (a batch always holds at least one entry).
pub const BATCH_BYTES_MAX: usize = 4 << 20;

/// How far a bootstrap has come, for progress bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapProgress {
    /// Entries copied so far.
    pub entries_done: u64,
    /// Entries to copy.
    pub entries_total: u64,
    /// Snapshot files copied so far.
    pub files_done: u64,
    /// Snapshot files to copy.
    pub files_total: u64,
    /// Snapshot bytes copied so far.
    pub bytes_done: u64,
    /// Snapshot bytes to copy.
    pub bytes_total: u64,
}

/// What a bootstrap copied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapSummary {
    /// First retained index.
    pub first: Index,
    /// Last retained index.
    pub last: Index,
    /// Entries copied.
    pub entries: u64,
    /// The term copied.
    pub term: u64,
    /// The vote copied.
    pub voted_for: Option<String>,
    /// The latest snapshot's last included index, if there is a snapshot.
    pub snapshot_index: Option<Index>,
    /// Snapshot files copied.
    pub files: u64,
    /// Snapshot bytes copied.
    pub bytes: u64,
}

/// Copies the whole state of `source` into `destination`, which must be empty
/// ([`crate::contract::ContractError::NotEmpty`] otherwise), through one atomic import: after
/// an error or a crash the destination is empty, never half bootstrapped. A snapshot file the
/// destination's family cannot hold
/// ([`crate::contract::ContractError::ReservedSnapshotPath`]) is refused before anything is
/// written.
pub fn bootstrap_into(
    source: &dyn StateView,
    destination: &mut dyn RaftStorage,
    on_progress: &mut dyn FnMut(&BootstrapProgress),
) -> StorageResult<BootstrapSummary> {
    let (first, last) = (source.first_index(), source.last_index());
    let meta = source.meta()?;
    let snapshot = source.snapshot_meta()?;
    let files = match snapshot {
        Some(_) => source.snapshot_files()?,
        None => Vec::new(),
    };
    let mut progress = BootstrapProgress {
        entries_total: if last >= first { (last - first).saturating_add(1) } else { 0 },
        files_total: files.len() as u64,
        bytes_total: files.iter().map(|f| f.len).sum(),
        ..BootstrapProgress::default()
    };
    // A file the destination's family cannot hold is refused before anything is written.
    let (family, reserved) = (destination.family(), destination.reserved_snapshot_names());
    for info in &files {
        check_reserved_snapshot_path(family, &reserved, &info.path)?;
    }
    let mut sink = destination.begin_import()?;
    sink.set_first_index(first)?;
    for_each_batch(source, first, last, &mut |batch| {
        sink.append(batch)?;
        progress.entries_done += batch.len() as u64;
        on_progress(&progress);
        Ok(())
    })?;
    sink.set_meta(&meta)?;
    if let Some(snapshot_meta) = &snapshot {
        for info in &files {
            sink.add_snapshot_file(&info.path, &info.file_meta)?;
            for_each_chunk(source, info, &mut |offset, chunk| {
                sink.write_snapshot_file(&info.path, offset, chunk)?;
                progress.bytes_done += chunk.len() as u64;
                on_progress(&progress);
                Ok(())
            })?;
            progress.files_done += 1;
        }
        sink.set_snapshot_meta(snapshot_meta.clone())?;
    }
    sink.commit()?;
    on_progress(&progress);
    Ok(BootstrapSummary {
        first,
        last,
        entries: progress.entries_total,
        term: meta.term,
        voted_for: meta.voted_for.map(|p| p.to_string()),
        snapshot_index: snapshot.map(|s| s.last_included_index),
        files: progress.files_total,
        bytes: progress.bytes_done,
    })
}

/// Reads the entries `from..=to` of `source` and hands them to `each` in batches of at most
/// [`BATCH_ENTRIES_MAX`] entries and about [`BATCH_BYTES_MAX`] payload bytes.
pub(crate) fn for_each_batch(
    source: &dyn StateView,
    from: Index,
    to: Index,
    each: &mut dyn FnMut(&[Entry]) -> StorageResult<()>,
) -> StorageResult<()> {
    let mut batch: Vec<Entry> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut index = from;
    while index <= to {
        let entry = source.entry(index)?.ok_or_else(|| StorageError::Backend {
            family: "view",
            message: format!("entry {index} inside the retained range could not be read"),
        })?;
        batch_bytes += payload_len(&entry.payload);
        batch.push(entry);
        if batch.len() >= BATCH_ENTRIES_MAX || batch_bytes >= BATCH_BYTES_MAX {
            each(&batch)?;
            batch.clear();
            batch_bytes = 0;
        }
        match index.checked_add(1) {
            Some(next) => index = next,
            None => break,
        }
    }
    if !batch.is_empty() {
        each(&batch)?;
    }
    Ok(())
}

fn payload_len(payload: &Payload) -> usize {
    match payload {
        Payload::NoOp => 0,
        Payload::Data(data) => data.len(),
        Payload::Configuration { peers, old_peers } => {
            peers.iter().chain(old_peers).map(|p| p.as_str().len()).sum()
        }
    }
}

/// Reads the snapshot file `info` of `source` front to back and hands it to `each` as
/// `(offset, chunk)` pieces of at most [`CHUNK_LEN`] bytes; checks it has the listed length.
pub(crate) fn for_each_chunk(
    source: &dyn StateView,
    info: &SnapshotFileInfo,
    each: &mut dyn FnMut(u64, &[u8]) -> StorageResult<()>,
) -> StorageResult<()> {
    let mut buf = vec![0u8; CHUNK_LEN.min(usize::try_from(info.len).unwrap_or(CHUNK_LEN).max(1))];
    let mut offset = 0u64;
    loop {
        let n = source.read_snapshot_file(&info.path, offset, &mut buf)?.min(buf.len());
        if n == 0 {
            break;
        }
        each(offset, &buf[..n])?;
        offset += n as u64;
    }
    if offset != info.len {
        return Err(length_mismatch(&info.path, info.len, offset));
    }
    Ok(())
}

fn length_mismatch(path: &SnapshotPath, listed: u64, read: u64) -> StorageError {
    StorageError::Backend {
        family: "view",
        message: format!("snapshot file {path} listed with {listed} bytes but {read} were read"),
    }
}
