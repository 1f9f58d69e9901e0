//! The `memory://NAME` family: volatile, for tests and as a dual-write partner.
//!
//! Every open is a new, empty instance (the name is a label). A crash loses everything by
//! definition, so after a simulated crash the reopened instance is empty. Exports are pinned
//! by sharing the current state (`Arc`); the next mutation copies it, so the pinned cut never
//! changes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::contract::{
    check_append, check_meta, check_new_snapshot_file, check_reset, check_snapshot_meta,
    check_truncate_prefix, ContractError, Entry, Family, FileMeta, ImportSink, Index, Meta,
    RaftStorage, SnapshotFileInfo, SnapshotMeta, SnapshotPath, SnapshotWriter, StateView,
    StorageResult,
};
use crate::state::{Snapshot, SnapshotFile};
use crate::vfs::VfsHandle;

/// The memory family (`memory://NAME`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryFamily;

impl Family for MemoryFamily {
    fn scheme(&self) -> &'static str {
        "memory"
    }

    fn durable(&self) -> bool {
        false
    }

    fn open(&self, _location: &str, _vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        Ok(Box::new(MemoryStorage::new()))
    }
}

#[derive(Clone, Debug)]
struct Inner {
    first: Index,
    entries: VecDeque<Entry>,
    meta: Meta,
    snapshot: Option<Arc<Snapshot>>,
}

/// An in-memory instance.
#[derive(Clone, Debug)]
pub struct MemoryStorage {
    inner: Arc<Inner>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        MemoryStorage::new()
    }
}

impl MemoryStorage {
    /// A fresh, empty instance.
    pub fn new() -> Self {
        MemoryStorage {
            inner: Arc::new(Inner {
                first: 1,
                entries: VecDeque::new(),
                meta: Meta::INITIAL,
                snapshot: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }
}

impl Inner {
    fn last(&self) -> Index {
        (self.first - 1) + self.entries.len() as u64
    }
}

impl StateView for MemoryStorage {
    fn first_index(&self) -> Index {
        self.inner.first
    }

    fn last_index(&self) -> Index {
        self.inner.last()
    }

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        if index < self.inner.first {
            return Ok(None);
        }
        let offset = index - self.inner.first;
        Ok(usize::try_from(offset).ok().and_then(|o| self.inner.entries.get(o)).cloned())
    }

    fn term(&self, index: Index) -> StorageResult<Option<u64>> {
        if index < self.inner.first {
            return Ok(None);
        }
        let offset = index - self.inner.first;
        Ok(usize::try_from(offset).ok().and_then(|o| self.inner.entries.get(o)).map(|e| e.term))
    }

    fn meta(&self) -> StorageResult<Meta> {
        Ok(self.inner.meta.clone())
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        Ok(self.inner.snapshot.as_ref().map(|s| s.meta.clone()))
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        Ok(self.inner.snapshot.as_deref().map(Snapshot::file_infos).unwrap_or_default())
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        Snapshot::read_file(self.inner.snapshot.as_deref(), path, offset, buf)
    }
}

impl RaftStorage for MemoryStorage {
    fn family(&self) -> &'static str {
        "memory"
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        check_append(self.inner.last(), entries)?;
        if entries.is_empty() {
            return Ok(());
        }
        self.inner_mut().entries.extend(entries.iter().cloned());
        Ok(())
    }

    fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()> {
        check_truncate_prefix(first_kept)?;
        if first_kept <= self.inner.first {
            return Ok(());
        }
        let inner = self.inner_mut();
        let drop = first_kept - inner.first;
        if drop >= inner.entries.len() as u64 {
            inner.entries.clear();
        } else {
            inner.entries.drain(..drop as usize);
        }
        inner.first = first_kept;
        Ok(())
    }

    fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()> {
        if last_kept >= self.inner.last() {
            return Ok(());
        }
        let inner = self.inner_mut();
        let keep = last_kept.saturating_sub(inner.first - 1);
        inner.entries.truncate(keep as usize);
        Ok(())
    }

    fn reset(&mut self, next: Index) -> StorageResult<()> {
        check_reset(next)?;
        let inner = self.inner_mut();
        inner.entries.clear();
        inner.first = next;
        Ok(())
    }

    fn save_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        check_meta(meta)?;
        self.inner_mut().meta = meta.clone();
        Ok(())
    }

    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>> {
        Ok(Box::new(MemorySnapshotWriter {
            storage: Some(self),
            files: BTreeMap::new(),
            meta: None,
        }))
    }

    fn begin_export(&mut self) -> StorageResult<Box<dyn StateView + Send>> {
        Ok(Box::new(self.clone()))
    }

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        if let Some(what) = non_empty_reason(self)? {
            return Err(ContractError::NotEmpty { what }.into());
        }
        Ok(Box::new(MemoryImport {
            storage: self,
            staged: MemoryStorage::new(),
            first_set: false,
            snapshot: None,
        }))
    }
}

/// Why `view` is not an empty instance, or `None` when it is.
pub fn non_empty_reason(view: &dyn StateView) -> StorageResult<Option<String>> {
    let (first, last) = (view.first_index(), view.last_index());
    if first != 1 || last != 0 {
        return Ok(Some(format!("log holds range [{first}, {last}]")));
    }
    let meta = view.meta()?;
    if meta != Meta::INITIAL {
        return Ok(Some(format!("meta is term {} vote {:?}", meta.term, meta.voted_for)));
    }
    if let Some(s) = view.snapshot_meta()? {
        return Ok(Some(format!("holds a snapshot at index {}", s.last_included_index)));
    }
    Ok(None)
}

struct MemoryImport<'a> {
    storage: &'a mut MemoryStorage,
    staged: MemoryStorage,
    first_set: bool,
    snapshot: Option<MemorySnapshotWriter<'static>>,
}

impl MemoryImport<'_> {
    fn snapshot_writer(&mut self) -> &mut MemorySnapshotWriter<'static> {
        self.snapshot.get_or_insert_with(|| MemorySnapshotWriter {
            storage: None,
            files: BTreeMap::new(),
            meta: None,
        })
    }
}

impl ImportSink for MemoryImport<'_> {
    fn set_first_index(&mut self, first: Index) -> StorageResult<()> {
        check_reset(first)?;
        if self.first_set || !self.staged.inner.entries.is_empty() {
            return Err(
                ContractError::ImportOutOfOrder { what: "set_first_index after entries" }.into()
            );
        }
        self.first_set = true;
        self.staged.reset(first)
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.staged.append(entries)
    }

    fn set_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        self.staged.save_meta(meta)
    }

    fn add_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        file_meta: &FileMeta,
    ) -> StorageResult<()> {
        self.snapshot_writer().add_file(path, file_meta)
    }

    fn write_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        offset: u64,
        data: &[u8],
    ) -> StorageResult<()> {
        self.snapshot_writer().write_file(path, offset, data)
    }

    fn set_snapshot_meta(&mut self, meta: SnapshotMeta) -> StorageResult<()> {
        self.snapshot_writer().set_meta(meta);
        Ok(())
    }

    fn commit(self: Box<Self>) -> StorageResult<()> {
        let mut this = *self;
        if let Some(writer) = this.snapshot.take() {
            let meta = writer.meta.ok_or(ContractError::SnapshotWithoutMeta)?;
            check_snapshot_meta(&meta)?;
            Arc::make_mut(&mut this.staged.inner).snapshot =
                Some(Arc::new(Snapshot { meta, files: freeze_files(writer.files) }));
        }
        *this.storage = this.staged;
        crate::coverage::hit(crate::coverage::Point::MemoryImportCommit);
        Ok(())
    }
}

fn freeze_files(
    files: BTreeMap<SnapshotPath, (Vec<u8>, FileMeta)>,
) -> BTreeMap<SnapshotPath, SnapshotFile> {
    files
        .into_iter()
        .map(|(path, (data, file_meta))| {
            (path, SnapshotFile { data: Bytes::from(data), file_meta })
        })
        .collect()
}

struct MemorySnapshotWriter<'a> {
    /// The instance to publish into; `None` when the writer stages an import's snapshot.
    storage: Option<&'a mut MemoryStorage>,
    files: BTreeMap<SnapshotPath, (Vec<u8>, FileMeta)>,
    meta: Option<SnapshotMeta>,
}

impl SnapshotWriter for MemorySnapshotWriter<'_> {
    fn add_file(&mut self, path: &SnapshotPath, file_meta: &FileMeta) -> StorageResult<()> {
        check_new_snapshot_file(&self.files, path)?;
        self.files.insert(path.clone(), (Vec::new(), file_meta.clone()));
        Ok(())
    }

    fn write_file(&mut self, path: &SnapshotPath, offset: u64, data: &[u8]) -> StorageResult<()> {
        let (bytes, _) = self
            .files
            .get_mut(path)
            .ok_or_else(|| ContractError::UnknownSnapshotFile { path: path.to_string() })?;
        if offset != bytes.len() as u64 {
            return Err(ContractError::SnapshotWriteNotAtEnd {
                path: path.to_string(),
                offset,
                len: bytes.len() as u64,
            }
            .into());
        }
        bytes.extend_from_slice(data);
        Ok(())
    }

    fn set_meta(&mut self, meta: SnapshotMeta) {
        self.meta = Some(meta);
    }

    fn publish(self: Box<Self>) -> StorageResult<()> {
        let this = *self;
        let meta = this.meta.ok_or(ContractError::SnapshotWithoutMeta)?;
        check_snapshot_meta(&meta)?;
        let files = freeze_files(this.files);
        if let Some(storage) = this.storage {
            storage.inner_mut().snapshot = Some(Arc::new(Snapshot { meta, files }));
            crate::coverage::hit(crate::coverage::Point::MemorySnapshotPublish);
        }
        Ok(())
    }
}
