//! Reading the Raft-visible state out of one redb read transaction. Shared by the live
//! instance (a fresh read transaction per call) and by export cuts (one pinned transaction).

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::fail::{Ctx, Fail, Shielded};
use super::schema::{
    decode_chunk, decode_entry, decode_entry_term, decode_file, decode_format, decode_raft_meta,
    decode_range, decode_snapshot_meta, FileRecord, FilesSeal, CHUNK_LEN, ENTRIES, FORMAT_VERSION,
    KEY_FORMAT, KEY_LOG_RANGE, KEY_RAFT_META, KEY_SNAPSHOT_META, META, SNAPSHOT_CHUNKS,
    SNAPSHOT_FILES,
};
use crate::contract::{
    ContractError, Entry, Index, Meta, SnapshotFileInfo, SnapshotMeta, SnapshotPath, StateView,
    StorageResult, Term,
};

/// The `qk_meta` record under `key`, if present, decoded by `decode`.
fn meta_record<T>(
    txn: &ReadTransaction,
    ctx: &Ctx,
    key: &str,
    decode: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<Option<T>, Fail> {
    let table = txn.open_table(META)?;
    let Some(guard) = table.get(key)? else { return Ok(None) };
    decode(guard.value())
        .map(Some)
        .map_err(|what| ctx.corrupt(format!("table qk_meta, key {key:?}: {what}")))
}

/// Checks the format version: present and one this build reads.
pub fn check_format(txn: &ReadTransaction, ctx: &Ctx) -> Result<(), Fail> {
    match meta_record(txn, ctx, KEY_FORMAT, decode_format)? {
        Some(FORMAT_VERSION) => Ok(()),
        Some(other) => Err(ctx.corrupt(format!(
            "schema format version {other}; this build reads version {FORMAT_VERSION} only"
        ))),
        None => Err(ctx.corrupt("no schema format version: not a database this family created")),
    }
}

/// The retained range `(first, last)`.
pub fn log_range(txn: &ReadTransaction, ctx: &Ctx) -> Result<(Index, Index), Fail> {
    meta_record(txn, ctx, KEY_LOG_RANGE, decode_range)?
        .ok_or_else(|| ctx.corrupt("table qk_meta has no log_range record"))
}

/// Checks that `qk_entries` holds exactly the keys `first..=last` (by its first key, last key
/// and length, without reading every entry).
pub fn check_entries_match(
    txn: &ReadTransaction,
    ctx: &Ctx,
    first: Index,
    last: Index,
) -> Result<(), Fail> {
    let table = txn.open_table(ENTRIES)?;
    let len = table.len()?;
    let low = table.first()?.map(|(k, _)| k.value());
    let high = table.last()?.map(|(k, _)| k.value());
    let expected =
        (last + 1 - first, (last >= first).then_some(first), (last >= first).then_some(last));
    if (len, low, high) != expected {
        return Err(ctx.corrupt(format!(
            "table qk_entries holds {len} entries from {low:?} to {high:?}, but the log range \
             is [{first}, {last}]"
        )));
    }
    Ok(())
}

/// The entry at `index`, which the caller has checked lies in the retained range.
pub fn entry(txn: &ReadTransaction, ctx: &Ctx, index: Index) -> Result<Entry, Fail> {
    let table = txn.open_table(ENTRIES)?;
    let guard = table.get(index)?.ok_or_else(|| {
        ctx.corrupt(format!("table qk_entries has no entry {index} inside the retained range"))
    })?;
    decode_entry(index, guard.value())
        .map_err(|what| ctx.corrupt(format!("table qk_entries, key {index}: {what}")))
}

/// The term of the entry at `index` (in the retained range).
pub fn term(txn: &ReadTransaction, ctx: &Ctx, index: Index) -> Result<Term, Fail> {
    let table = txn.open_table(ENTRIES)?;
    let guard = table.get(index)?.ok_or_else(|| {
        ctx.corrupt(format!("table qk_entries has no entry {index} inside the retained range"))
    })?;
    decode_entry_term(index, guard.value())
        .map_err(|what| ctx.corrupt(format!("table qk_entries, key {index}: {what}")))
}

/// Term and vote ([`Meta::INITIAL`] if never saved).
pub fn raft_meta(txn: &ReadTransaction, ctx: &Ctx) -> Result<Meta, Fail> {
    Ok(meta_record(txn, ctx, KEY_RAFT_META, decode_raft_meta)?.unwrap_or(Meta::INITIAL))
}

/// The latest snapshot's meta.
pub fn snapshot_meta(txn: &ReadTransaction, ctx: &Ctx) -> Result<Option<SnapshotMeta>, Fail> {
    Ok(meta_record(txn, ctx, KEY_SNAPSHOT_META, decode_snapshot_meta)?.map(|(meta, _)| meta))
}

/// The latest snapshot's files, sorted by path (redb orders `&str` keys by bytes).
pub fn snapshot_files(txn: &ReadTransaction, ctx: &Ctx) -> Result<Vec<SnapshotFileInfo>, Fail> {
    let expected = meta_record(txn, ctx, KEY_SNAPSHOT_META, decode_snapshot_meta)?
        .map(|(_, seal)| seal)
        .unwrap_or_default();
    let table = txn.open_table(SNAPSHOT_FILES)?;
    let mut files = Vec::new();
    let mut seal = FilesSeal::default();
    for item in table.iter()? {
        let (key, value) = item?;
        let text = key.value();
        let path = SnapshotPath::new(text).map_err(|e| {
            ctx.corrupt(format!("table qk_snapshot_files, key {text:?}: bad path: {e}"))
        })?;
        let record = decode_file(text, value.value()).map_err(|what| {
            ctx.corrupt(format!("table qk_snapshot_files, key {text:?}: {what}"))
        })?;
        seal.add(text, &record);
        files.push(SnapshotFileInfo { path, len: record.len, file_meta: record.file_meta });
    }
    if seal != expected {
        return Err(ctx.corrupt(format!(
            "table qk_snapshot_files lists {} files (list CRC {:08x}), but the snapshot meta \
             sealed {} (CRC {:08x})",
            seal.count, seal.crc, expected.count, expected.crc
        )));
    }
    Ok(files)
}

/// The record of the latest snapshot's file at `path`; an unknown path is a contract error.
pub fn file_record(
    txn: &ReadTransaction,
    ctx: &Ctx,
    path: &SnapshotPath,
) -> Result<FileRecord, Fail> {
    let table = txn.open_table(SNAPSHOT_FILES)?;
    let guard = table
        .get(path.as_str())?
        .ok_or_else(|| ContractError::UnknownSnapshotFile { path: path.to_string() })?;
    decode_file(path.as_str(), guard.value()).map_err(|what| {
        ctx.corrupt(format!("table qk_snapshot_files, key {:?}: {what}", path.as_str()))
    })
}

/// Reads the latest snapshot's file at `path` from `offset` into `buf`.
pub fn read_file(
    txn: &ReadTransaction,
    ctx: &Ctx,
    path: &SnapshotPath,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, Fail> {
    let record = file_record(txn, ctx, path)?;
    if offset >= record.len || buf.is_empty() {
        return Ok(0);
    }
    // Bounded by buf.len(), so it fits in usize.
    let wanted = (record.len - offset).min(buf.len() as u64) as usize;
    let chunks = txn.open_table(SNAPSHOT_CHUNKS)?;
    let mut done = 0usize;
    while done < wanted {
        let position = offset + done as u64;
        let chunk = position / CHUNK_LEN as u64;
        let within = (position % CHUNK_LEN as u64) as usize;
        let guard = chunks.get((path.as_str(), chunk))?.ok_or_else(|| {
            ctx.corrupt(format!(
                "table qk_snapshot_chunks has no chunk {chunk} of {:?} ({} bytes)",
                path.as_str(),
                record.len
            ))
        })?;
        let data = decode_chunk(path.as_str(), chunk, guard.value()).map_err(|what| {
            ctx.corrupt(format!(
                "table qk_snapshot_chunks, key ({:?}, {chunk}): {what}",
                path.as_str()
            ))
        })?;
        if data.len() != record.chunk_len(chunk) {
            return Err(ctx.corrupt(format!(
                "table qk_snapshot_chunks, key ({:?}, {chunk}): {} bytes, expected {}",
                path.as_str(),
                data.len(),
                record.chunk_len(chunk)
            )));
        }
        let n = (data.len() - within).min(wanted - done);
        buf[done..done + n].copy_from_slice(&data[within..within + n]);
        done += n;
    }
    Ok(done)
}

/// A pinned cut: one redb read transaction (MVCC), so it keeps showing the state it was begun
/// at while the instance goes on committing.
pub struct RedbCut {
    txn: Shielded<ReadTransaction>,
    ctx: Ctx,
    first: Index,
    last: Index,
}

impl RedbCut {
    /// A cut over `txn`, whose retained range is `[first, last]`.
    pub fn new(txn: ReadTransaction, ctx: Ctx, first: Index, last: Index) -> Self {
        RedbCut { txn: Shielded::new(txn), ctx, first, last }
    }
}

impl StateView for RedbCut {
    fn first_index(&self) -> Index {
        self.first
    }

    fn last_index(&self) -> Index {
        self.last
    }

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        if index < self.first || index > self.last {
            return Ok(None);
        }
        self.ctx.shield_read(|| entry(&self.txn, &self.ctx, index).map(Some))
    }

    fn term(&self, index: Index) -> StorageResult<Option<Term>> {
        if index < self.first || index > self.last {
            return Ok(None);
        }
        self.ctx.shield_read(|| term(&self.txn, &self.ctx, index).map(Some))
    }

    fn meta(&self) -> StorageResult<Meta> {
        self.ctx.shield_read(|| raft_meta(&self.txn, &self.ctx))
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        self.ctx.shield_read(|| snapshot_meta(&self.txn, &self.ctx))
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        self.ctx.shield_read(|| snapshot_files(&self.txn, &self.ctx))
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        self.ctx.shield_read(|| read_file(&self.txn, &self.ctx, path, offset, buf))
    }
}
