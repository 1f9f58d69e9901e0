//! Planted bugs: wrapper families that break the contract on purpose, so tests and
//! `qk selftest` can prove each check bites. They are never registered in the normal
//! registry; a caller must wrap a family explicitly.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::contract::{
    Entry, Family, ImportSink, Index, Meta, RaftStorage, SnapshotFileInfo, SnapshotMeta,
    SnapshotPath, SnapshotWriter, StateView, StorageResult, Term,
};
use crate::sim::check::CheckName;
use crate::vfs::VfsHandle;

/// Which bug a [`PlantedFamily`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedBug {
    /// Every 17th index reads back as missing (an entry lost after append).
    DropEntry,
    /// `save_meta` forgets the vote.
    ForgetVote,
    /// `truncate_suffix` keeps one entry too many.
    TruncateSuffixOffByOne,
    /// Reads of snapshot files return one flipped byte.
    FlipSnapshotByte,
    /// An export cut that loses its last entry.
    ExportCutOffByOne,
    /// An import that applies each record as it arrives instead of staging and committing.
    ImportNotAtomic,
}

impl PlantedBug {
    /// Every planted bug.
    pub const ALL: [PlantedBug; 6] = [
        PlantedBug::DropEntry,
        PlantedBug::ForgetVote,
        PlantedBug::TruncateSuffixOffByOne,
        PlantedBug::FlipSnapshotByte,
        PlantedBug::ExportCutOffByOne,
        PlantedBug::ImportNotAtomic,
    ];

    /// The check this bug is planted to trip.
    pub fn expected_check(self) -> CheckName {
        match self {
            PlantedBug::DropEntry
            | PlantedBug::ForgetVote
            | PlantedBug::TruncateSuffixOffByOne
            | PlantedBug::FlipSnapshotByte => CheckName::ModelEquality,
            PlantedBug::ExportCutOffByOne => CheckName::ExportCut,
            PlantedBug::ImportNotAtomic => CheckName::BadImages,
        }
    }

    /// The bug's kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::DropEntry => "drop-entry",
            PlantedBug::ForgetVote => "forget-vote",
            PlantedBug::TruncateSuffixOffByOne => "truncate-suffix-off-by-one",
            PlantedBug::FlipSnapshotByte => "flip-snapshot-byte",
            PlantedBug::ExportCutOffByOne => "export-cut-off-by-one",
            PlantedBug::ImportNotAtomic => "import-not-atomic",
        }
    }
}

/// A family whose instances carry a planted bug over an inner family's instances.
pub struct PlantedFamily {
    inner: Arc<dyn Family>,
    bug: PlantedBug,
}

impl PlantedFamily {
    /// Wraps `inner` with `bug`.
    pub fn new(inner: Arc<dyn Family>, bug: PlantedBug) -> Self {
        PlantedFamily { inner, bug }
    }
}

impl Family for PlantedFamily {
    fn scheme(&self) -> &'static str {
        self.inner.scheme()
    }

    fn durable(&self) -> bool {
        self.inner.durable()
    }

    fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        Ok(Box::new(Planted { inner: self.inner.open(location, vfs)?, bug: self.bug }))
    }
}

struct Planted {
    inner: Box<dyn RaftStorage>,
    bug: PlantedBug,
}

impl StateView for Planted {
    fn first_index(&self) -> Index {
        self.inner.first_index()
    }

    fn last_index(&self) -> Index {
        self.inner.last_index()
    }

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        if self.bug == PlantedBug::DropEntry && index % 17 == 0 {
            return Ok(None);
        }
        self.inner.entry(index)
    }

    fn term(&self, index: Index) -> StorageResult<Option<Term>> {
        Ok(self.entry(index)?.map(|e| e.term))
    }

    fn meta(&self) -> StorageResult<Meta> {
        self.inner.meta()
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        self.inner.snapshot_meta()
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        self.inner.snapshot_files()
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        let n = self.inner.read_snapshot_file(path, offset, buf)?;
        if self.bug == PlantedBug::FlipSnapshotByte && n > 0 {
            buf[0] ^= 0x20;
        }
        Ok(n)
    }
}

impl RaftStorage for Planted {
    fn family(&self) -> &'static str {
        self.inner.family()
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.inner.append(entries)
    }

    fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()> {
        self.inner.truncate_prefix(first_kept)
    }

    fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()> {
        if self.bug == PlantedBug::TruncateSuffixOffByOne {
            return self.inner.truncate_suffix(last_kept.saturating_add(1));
        }
        self.inner.truncate_suffix(last_kept)
    }

    fn reset(&mut self, next: Index) -> StorageResult<()> {
        self.inner.reset(next)
    }

    fn save_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        if self.bug == PlantedBug::ForgetVote {
            return self.inner.save_meta(&Meta { term: meta.term, voted_for: None });
        }
        self.inner.save_meta(meta)
    }

    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>> {
        self.inner.begin_snapshot()
    }

    fn begin_export(&mut self) -> StorageResult<Box<dyn StateView + Send>> {
        let cut = self.inner.begin_export()?;
        if self.bug == PlantedBug::ExportCutOffByOne {
            return Ok(Box::new(ShortCut { inner: cut }));
        }
        Ok(cut)
    }

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        if self.bug == PlantedBug::ImportNotAtomic {
            drop(self.inner.begin_import()?); // keeps the emptiness check
            return Ok(Box::new(DirectImport { inner: self.inner.as_mut(), snapshot: None }));
        }
        self.inner.begin_import()
    }
}

/// A cut whose last entry went missing.
struct ShortCut {
    inner: Box<dyn StateView + Send>,
}

impl StateView for ShortCut {
    fn first_index(&self) -> Index {
        self.inner.first_index()
    }

    fn last_index(&self) -> Index {
        let last = self.inner.last_index();
        if last >= self.inner.first_index() {
            last - 1
        } else {
            last
        }
    }

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        if index > self.last_index() {
            return Ok(None);
        }
        self.inner.entry(index)
    }

    fn meta(&self) -> StorageResult<Meta> {
        self.inner.meta()
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        self.inner.snapshot_meta()
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        self.inner.snapshot_files()
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        self.inner.read_snapshot_file(path, offset, buf)
    }
}

/// An import that writes straight into the instance: nothing is staged, so a failed import
/// leaves whatever arrived before the failure.
struct DirectImport<'a> {
    inner: &'a mut dyn RaftStorage,
    snapshot: Option<(Vec<StagedFile>, Option<SnapshotMeta>)>,
}

/// A snapshot file the direct import holds until commit: path, file metadata, bytes.
type StagedFile = (SnapshotPath, Option<Vec<u8>>, Vec<u8>);

impl ImportSink for DirectImport<'_> {
    fn set_first_index(&mut self, first: Index) -> StorageResult<()> {
        self.inner.reset(first)
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.inner.append(entries)
    }

    fn set_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        self.inner.save_meta(meta)
    }

    fn add_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        file_meta: Option<&[u8]>,
    ) -> StorageResult<()> {
        let files = &mut self.snapshot.get_or_insert_with(|| (Vec::new(), None)).0;
        files.push((path.clone(), file_meta.map(<[u8]>::to_vec), Vec::new()));
        Ok(())
    }

    fn write_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        _offset: u64,
        data: &[u8],
    ) -> StorageResult<()> {
        let files = &mut self.snapshot.get_or_insert_with(|| (Vec::new(), None)).0;
        if let Some(file) = files.iter_mut().find(|f| &f.0 == path) {
            file.2.extend_from_slice(data);
        }
        Ok(())
    }

    fn set_snapshot_meta(&mut self, meta: SnapshotMeta) -> StorageResult<()> {
        self.snapshot.get_or_insert_with(|| (Vec::new(), None)).1 = Some(meta);
        Ok(())
    }

    fn commit(self: Box<Self>) -> StorageResult<()> {
        let this = *self;
        if let Some((files, Some(meta))) = this.snapshot {
            let mut writer = this.inner.begin_snapshot()?;
            for (path, file_meta, data) in files {
                writer.add_file(&path, file_meta.as_deref())?;
                writer.write_file(&path, 0, &data)?;
            }
            writer.set_meta(meta);
            writer.publish()?;
        }
        Ok(())
    }
}
