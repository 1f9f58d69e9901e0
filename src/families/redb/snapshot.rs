//! Snapshot writers and import sinks. Each holds one redb write transaction for its whole
//! life and writes everything into it as it arrives; `publish` / `commit` commits it durably,
//! and dropping it aborts it. So a snapshot publish and an import are each exactly one
//! transaction: after a crash the database shows the state before or after, never a mix.
//!
//! File contents go straight into `qk_snapshot_chunks` as fixed-size chunks; only the file
//! records (length, file metadata) are kept in memory, so a large file never is. redb spills
//! the transaction's dirty pages to the file when its cache budget is reached.

use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};

use super::fail::{quiet_drop, Fail};
use super::schema::{
    decode_chunk, encode_chunk, encode_file, encode_raft_meta, encode_range, encode_snapshot_meta,
    FileRecord, FilesSeal, CHUNK_LEN, ENTRIES, KEY_LOG_RANGE, KEY_RAFT_META, KEY_SNAPSHOT_META,
    META, SNAPSHOT_CHUNKS, SNAPSHOT_FILES,
};
use super::storage::RedbStorage;
use crate::contract::{
    check_append, check_meta, check_new_snapshot_file, check_reset, check_snapshot_meta,
    ContractError, Entry, FileMeta, ImportSink, Index, Meta, SnapshotMeta, SnapshotPath,
    SnapshotWriter, StorageError, StorageResult,
};
use crate::coverage::{hit, Point};

/// A snapshot being staged inside a write transaction.
#[derive(Default)]
struct Stage {
    files: BTreeMap<SnapshotPath, FileRecord>,
    meta: Option<SnapshotMeta>,
}

impl Stage {
    /// Deletes the previous snapshot's files and chunks (inside the transaction, so they stay
    /// visible until it commits).
    fn clear_previous(txn: &WriteTransaction) -> Result<(), Fail> {
        txn.delete_table(SNAPSHOT_CHUNKS)?;
        txn.delete_table(SNAPSHOT_FILES)?;
        txn.open_table(SNAPSHOT_CHUNKS)?;
        txn.open_table(SNAPSHOT_FILES)?;
        Ok(())
    }

    fn add_file(&mut self, path: &SnapshotPath, file_meta: &FileMeta) -> Result<(), Fail> {
        check_new_snapshot_file(&self.files, path)?;
        let record = FileRecord { len: 0, file_meta: file_meta.clone() };
        self.files.insert(path.clone(), record);
        Ok(())
    }

    /// Appends `data` to the staged file at `path`, filling its last chunk first.
    fn write_file(
        &mut self,
        txn: &WriteTransaction,
        storage: &RedbStorage,
        path: &SnapshotPath,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Fail> {
        let record = self
            .files
            .get_mut(path)
            .ok_or_else(|| ContractError::UnknownSnapshotFile { path: path.to_string() })?;
        if offset != record.len {
            return Err(ContractError::SnapshotWriteNotAtEnd {
                path: path.to_string(),
                offset,
                len: record.len,
            }
            .into());
        }
        let key = path.as_str();
        let mut chunks = txn.open_table(SNAPSHOT_CHUNKS)?;
        let mut done = 0usize;
        while done < data.len() {
            let chunk = record.len / CHUNK_LEN as u64;
            let used = (record.len % CHUNK_LEN as u64) as usize;
            let take = (CHUNK_LEN - used).min(data.len() - done);
            let mut bytes = Vec::with_capacity(used + take);
            if used > 0 {
                let guard = chunks.get((key, chunk))?.ok_or_else(|| {
                    storage.ctx.corrupt(format!("staged chunk {chunk} of {key:?} vanished"))
                })?;
                let old = decode_chunk(key, chunk, guard.value()).map_err(|what| {
                    storage.ctx.corrupt(format!("staged chunk {chunk} of {key:?}: {what}"))
                })?;
                bytes.extend_from_slice(old);
            }
            bytes.extend_from_slice(&data[done..done + take]);
            chunks.insert((key, chunk), encode_chunk(key, chunk, &bytes).as_slice())?;
            done += take;
            record.len += take as u64;
        }
        Ok(())
    }

    /// Writes the file records and the meta; `None` meta is `SnapshotWithoutMeta`. Returns
    /// whether it replaced a previous snapshot's meta.
    fn finish(self, txn: &WriteTransaction) -> Result<bool, Fail> {
        let meta = self.meta.ok_or(ContractError::SnapshotWithoutMeta)?;
        check_snapshot_meta(&meta)?;
        let mut files = txn.open_table(SNAPSHOT_FILES)?;
        let mut seal = FilesSeal::default();
        for (path, record) in &self.files {
            files.insert(path.as_str(), encode_file(path.as_str(), record).as_slice())?;
            seal.add(path.as_str(), record);
        }
        let encoded = encode_snapshot_meta(&meta, seal);
        let mut meta_table = txn.open_table(META)?;
        let replaced = meta_table.insert(KEY_SNAPSHOT_META, encoded.as_slice())?.is_some();
        Ok(replaced)
    }
}

/// Runs one step of a writer or sink on `storage`, noting a failure that poisons it.
fn step<T>(
    storage: &mut RedbStorage,
    body: impl FnOnce(&RedbStorage) -> Result<T, Fail>,
) -> StorageResult<T> {
    storage.check_poisoned()?;
    let result = storage.ctx.shield(|| body(storage));
    if let Err(e) = &result {
        storage.note_failure(e);
    }
    result
}

fn no_transaction() -> StorageError {
    StorageError::Backend {
        family: super::fail::FAMILY,
        message: "the transaction ended after an earlier failure".to_string(),
    }
}

/// A snapshot writer: one write transaction from `begin_snapshot` to `publish`.
pub struct RedbSnapshotWriter<'a> {
    storage: &'a mut RedbStorage,
    txn: Option<WriteTransaction>,
    stage: Stage,
}

impl<'a> RedbSnapshotWriter<'a> {
    /// Begins the writer's transaction and clears the previous snapshot inside it.
    pub fn begin(storage: &'a mut RedbStorage) -> StorageResult<Self> {
        let txn = step(storage, |s| {
            let txn = s.begin_write()?;
            Stage::clear_previous(&txn)?;
            Ok(txn)
        })?;
        Ok(RedbSnapshotWriter { storage, txn: Some(txn), stage: Stage::default() })
    }
}

impl Drop for RedbSnapshotWriter<'_> {
    fn drop(&mut self) {
        // Dropping an uncommitted transaction aborts it.
        if let Some(txn) = self.txn.take() {
            quiet_drop(txn);
        }
    }
}

impl SnapshotWriter for RedbSnapshotWriter<'_> {
    fn add_file(&mut self, path: &SnapshotPath, file_meta: &FileMeta) -> StorageResult<()> {
        let stage = &mut self.stage;
        step(self.storage, |_| stage.add_file(path, file_meta))
    }

    fn write_file(&mut self, path: &SnapshotPath, offset: u64, data: &[u8]) -> StorageResult<()> {
        let txn = self.txn.as_ref().ok_or_else(no_transaction)?;
        let stage = &mut self.stage;
        step(self.storage, |s| stage.write_file(txn, s, path, offset, data))
    }

    fn set_meta(&mut self, meta: SnapshotMeta) {
        self.stage.meta = Some(meta);
    }

    fn publish(mut self: Box<Self>) -> StorageResult<()> {
        let txn = self.txn.take().ok_or_else(no_transaction)?;
        let stage = std::mem::take(&mut self.stage);
        let replaced = step(self.storage, |_| {
            let replaced = stage.finish(&txn)?;
            txn.commit()?;
            Ok(replaced)
        })?;
        hit(Point::RedbSnapshotPublish);
        if replaced {
            hit(Point::RedbSnapshotRetire);
        }
        Ok(())
    }
}

/// An import sink: one write transaction from `begin_import` to `commit`.
pub struct RedbImport<'a> {
    storage: &'a mut RedbStorage,
    txn: Option<WriteTransaction>,
    first: Index,
    last: Index,
    first_set: bool,
    /// Present once any snapshot call came (as the memory family does it).
    stage: Option<Stage>,
}

impl<'a> RedbImport<'a> {
    /// Begins the import's transaction (the caller checked the instance is empty).
    pub fn begin(storage: &'a mut RedbStorage) -> StorageResult<Self> {
        let txn = step(storage, |s| s.begin_write())?;
        Ok(RedbImport { storage, txn: Some(txn), first: 1, last: 0, first_set: false, stage: None })
    }
}

impl Drop for RedbImport<'_> {
    fn drop(&mut self) {
        // Dropping an uncommitted transaction aborts it: the instance stays empty.
        if let Some(txn) = self.txn.take() {
            quiet_drop(txn);
        }
    }
}

impl ImportSink for RedbImport<'_> {
    fn set_first_index(&mut self, first: Index) -> StorageResult<()> {
        check_reset(first)?;
        if self.first_set || self.last >= self.first {
            return Err(
                ContractError::ImportOutOfOrder { what: "set_first_index after entries" }.into()
            );
        }
        self.first_set = true;
        (self.first, self.last) = (first, first - 1);
        Ok(())
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        check_append(self.last, entries)?;
        let Some(new_last) = entries.last().map(|e| e.index) else { return Ok(()) };
        let txn = self.txn.as_ref().ok_or_else(no_transaction)?;
        step(self.storage, |_| {
            let mut table = txn.open_table(ENTRIES)?;
            for entry in entries {
                table.insert(entry.index, super::schema::encode_entry(entry).as_slice())?;
            }
            Ok(())
        })?;
        self.last = new_last;
        Ok(())
    }

    fn set_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        check_meta(meta)?;
        let txn = self.txn.as_ref().ok_or_else(no_transaction)?;
        let encoded = encode_raft_meta(meta);
        step(self.storage, |_| {
            txn.open_table(META)?.insert(KEY_RAFT_META, encoded.as_slice())?;
            Ok(())
        })
    }

    fn add_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        file_meta: &FileMeta,
    ) -> StorageResult<()> {
        let stage = self.stage.get_or_insert_with(Stage::default);
        step(self.storage, |_| stage.add_file(path, file_meta))
    }

    fn write_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        offset: u64,
        data: &[u8],
    ) -> StorageResult<()> {
        let txn = self.txn.as_ref().ok_or_else(no_transaction)?;
        let stage = self.stage.get_or_insert_with(Stage::default);
        step(self.storage, |s| stage.write_file(txn, s, path, offset, data))
    }

    fn set_snapshot_meta(&mut self, meta: SnapshotMeta) -> StorageResult<()> {
        self.stage.get_or_insert_with(Stage::default).meta = Some(meta);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> StorageResult<()> {
        let txn = self.txn.take().ok_or_else(no_transaction)?;
        let (first, last, stage) = (self.first, self.last, self.stage.take());
        step(self.storage, |_| {
            if let Some(stage) = stage {
                stage.finish(&txn)?;
            }
            txn.open_table(META)?.insert(KEY_LOG_RANGE, encode_range(first, last).as_slice())?;
            txn.commit()?;
            Ok(())
        })?;
        (self.storage.first, self.storage.last) = (first, last);
        hit(Point::RedbImportCommit);
        Ok(())
    }
}
