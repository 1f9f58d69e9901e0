//! The import halves of the planted bugs that prove the image checks bite (see
//! [`PlantedBug`](crate::sim::planted::PlantedBug)): import sinks a planted instance hands out
//! instead of, or around, its family's own sink. Only [`crate::sim::planted`] uses them; no
//! family's import path goes through this module.
//!
//! - [`StampingImport`] (`import-stamps-counter`, caught by `import_determinism`): a correct
//!   import that then stamps the destination with how many imports the family has made.
//! - [`RelistingImport`] and [`list_twice`] (`import-lists-files-twice`, caught by
//!   `canonicality`): a correct import after which the instance lists each snapshot file
//!   twice.
//! - [`SteppedImport`] (`import-commit-in-steps`, caught by `import_atomicity`): an import
//!   staged in memory whose commit is a sequence of separately durable contract calls.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::contract::{
    ContractError, Entry, FileMeta, ImportSink, Index, Meta, RaftStorage, SnapshotFileInfo,
    SnapshotMeta, SnapshotPath, StorageResult,
};
use crate::delegate::delegate_import_sink;
use crate::families::memory::non_empty_reason;
use crate::sim::engine::apply::apply_action;
use crate::sim::engine::ops::{Action, ResolvedFile};
use crate::vfs::{OpenOptions, VfsHandle};

/// The file beside an instance at `location` where [`StampingImport`] leaves its stamp (a
/// sibling, so it works whether the family keeps a directory or a single file there).
pub(crate) fn stamp_path(location: &str) -> PathBuf {
    PathBuf::from(format!("{location}.import-stamp"))
}

/// A correct import (the family's own sink) that, once committed, writes the family's count
/// of imports so far into a stamp file beside the instance and syncs it. The count lives in
/// the family, so it is reproducible run to run, but two imports of one image never leave
/// the same bytes.
pub(crate) struct StampingImport<'a> {
    /// The family's own sink.
    pub(crate) inner: Box<dyn ImportSink + 'a>,
    /// Where the instance's files live.
    pub(crate) vfs: VfsHandle,
    /// The stamp file ([`stamp_path`]).
    pub(crate) stamp: PathBuf,
    /// Imports committed by instances of the family so far.
    pub(crate) imports: Arc<AtomicU64>,
}

impl ImportSink for StampingImport<'_> {
    delegate_import_sink!(
        inner: set_first_index, append, set_meta, add_snapshot_file, write_snapshot_file,
        set_snapshot_meta
    );

    fn commit(self: Box<Self>) -> StorageResult<()> {
        let this = *self;
        this.inner.commit()?;
        let n = this.imports.fetch_add(1, Ordering::Relaxed);
        let file = this.vfs.open(&this.stamp, OpenOptions::CREATE_TRUNCATE)?;
        file.write_at(format!("import {n}\n").as_bytes(), 0)?;
        file.sync()?;
        Ok(())
    }
}

/// A correct import (the family's own sink) that, once committed, leaves in `relisted` every
/// snapshot file path the image named, for [`list_twice`].
pub(crate) struct RelistingImport<'a> {
    /// The family's own sink.
    pub(crate) inner: Box<dyn ImportSink + 'a>,
    /// The paths added so far.
    pub(crate) added: Vec<SnapshotPath>,
    /// The instance's list of paths it lists twice, filled at commit.
    pub(crate) relisted: &'a mut Vec<SnapshotPath>,
}

impl ImportSink for RelistingImport<'_> {
    delegate_import_sink!(
        inner: set_first_index, append, set_meta, write_snapshot_file, set_snapshot_meta
    );

    fn add_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        file_meta: &FileMeta,
    ) -> StorageResult<()> {
        self.inner.add_snapshot_file(path, file_meta)?;
        self.added.push(path.clone());
        Ok(())
    }

    fn commit(self: Box<Self>) -> StorageResult<()> {
        let this = *self;
        this.inner.commit()?;
        *this.relisted = this.added;
        Ok(())
    }
}

/// `files` (a snapshot listing) with every file whose path is in `relisted` listed twice in a
/// row. A captured state keeps files in a map by path and so cannot tell; an export streams
/// the listing, and the image writer refuses the repeated path.
pub(crate) fn list_twice(
    files: Vec<SnapshotFileInfo>,
    relisted: &[SnapshotPath],
) -> Vec<SnapshotFileInfo> {
    let mut listed = Vec::with_capacity(files.len() * 2);
    for info in files {
        if relisted.contains(&info.path) {
            listed.push(info.clone());
        }
        listed.push(info);
    }
    listed
}

/// An import staged in memory (so a rejected image changes nothing) whose commit replays it
/// as ordinary contract calls, each durable on its own: `save_meta` first, then `reset` to
/// the first index, one `append` per batch, and a snapshot writer and `publish`. A power loss
/// after the meta and before the last call leaves a destination that is neither empty nor
/// the image.
pub(crate) struct SteppedImport<'a> {
    inner: &'a mut dyn RaftStorage,
    meta: Option<Meta>,
    steps: Vec<Action>,
    files: Vec<(SnapshotPath, FileMeta, Vec<u8>)>,
}

impl<'a> SteppedImport<'a> {
    /// Stages an import into `inner`, which must be empty (the contract's emptiness rule, read
    /// from its state: nothing is written before the commit).
    pub(crate) fn begin(inner: &'a mut dyn RaftStorage) -> StorageResult<Self> {
        if let Some(what) = non_empty_reason(&*inner)? {
            return Err(ContractError::NotEmpty { what }.into());
        }
        Ok(SteppedImport { inner, meta: None, steps: Vec::new(), files: Vec::new() })
    }
}

impl ImportSink for SteppedImport<'_> {
    fn set_first_index(&mut self, first: Index) -> StorageResult<()> {
        self.steps.push(Action::Reset(first));
        Ok(())
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.steps.push(Action::Append(entries.to_vec()));
        Ok(())
    }

    fn set_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        self.meta = Some(meta.clone());
        Ok(())
    }

    fn add_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        file_meta: &FileMeta,
    ) -> StorageResult<()> {
        self.files.push((path.clone(), file_meta.clone(), Vec::new()));
        Ok(())
    }

    fn write_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        _offset: u64,
        data: &[u8],
    ) -> StorageResult<()> {
        if let Some(file) = self.files.iter_mut().find(|f| &f.0 == path) {
            file.2.extend_from_slice(data);
        }
        Ok(())
    }

    fn set_snapshot_meta(&mut self, meta: SnapshotMeta) -> StorageResult<()> {
        let files = std::mem::take(&mut self.files)
            .into_iter()
            .map(|(path, file_meta, data)| ResolvedFile {
                path,
                data: Bytes::from(data),
                file_meta,
            })
            .collect();
        self.steps.push(Action::Snapshot { meta, files, publish: true });
        Ok(())
    }

    fn commit(self: Box<Self>) -> StorageResult<()> {
        let this = *self;
        let meta = this.meta.map(Action::SaveMeta);
        for step in meta.iter().chain(&this.steps) {
            apply_action(&mut *this.inner, step)?;
        }
        Ok(())
    }
}
