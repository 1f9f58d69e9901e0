//! [`PlantedFamily`]: one family's instances with a [`PlantedBug`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::import::{list_twice, stamp_path, RelistingImport, StampingImport, SteppedImport};
use super::lost_syncs::LostSyncs;
use super::no_lock::NoLocks;
use super::unpadded_names::UnpaddedNames;
use crate::contract::read_only::replay_read_only;
use crate::contract::{
    Corruption, Entry, Family, FileMeta, ImportSink, Index, Meta, PeerId, RaftStorage,
    ReadOnlyOpen, SnapshotFileInfo, SnapshotMeta, SnapshotPath, StateView, StorageResult, ViewOnly,
    ViewSource,
};
use crate::delegate::{delegate_raft_storage, delegate_state_view};
use crate::sim::checks::CheckName;
use crate::vfs::{OpenOptions, VfsHandle, VfsResult};

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
    /// Every file `sync` of the family silently does nothing (an append acknowledged before
    /// its data is durable). Only durable families can show it.
    SkipFsync,
    /// Every `sync_dir` of the family silently does nothing (a create or rename acknowledged
    /// before its directory entry is durable). Only durable families can show it.
    SkipDirSync,
    /// A correct import that then stamps the destination with the family's count of imports
    /// so far (a file beside the instance): the imported state is right, but two imports of
    /// one image on identical disks leave different bytes. The stamp goes through the
    /// instance's file system, so every family shows it, memory too.
    ImportStampsCounter,
    /// A correct import after which the instance lists each snapshot file twice. A captured
    /// state (files in a map by path) compares equal to the image, but a re-export streams
    /// the listing and cannot give the image's content bytes (the writer refuses the repeated
    /// path). Every family shows it, given an image with a snapshot file.
    ImportListsFilesTwice,
    /// An import staged in memory (a rejected image changes nothing) whose commit is a
    /// sequence of separately durable contract calls (meta first, then reset, appends and a
    /// snapshot publish) instead of one atomic step: a power loss inside the commit leaves the
    /// destination neither empty nor complete. Only durable families can show it (a volatile
    /// one is empty after any power loss).
    ImportCommitInSteps,
    /// After every mutation the instance rewrites a padding record in a file beside it
    /// (unsynced, never read) as many times as its number among the instances its family has
    /// opened, modulo [`PADDING_CYCLE`]: what it writes depends on how many instances were
    /// opened before it (in a real family, a process-global counter leaking into the layout),
    /// not on the seed. Every state it shows is right, so only a second run of the same seed
    /// can tell: the power losses find a different number of pending disk operations, and the
    /// trace differs. Every family shows it (the padding goes through the file system).
    PaddingByOpenCount,
    /// `truncate_suffix` to an index that is a multiple of 7 panics: the cut is filed in a
    /// six-slot table at `last_kept % 7 - 1`, out of bounds for slot 0 (an indexing bug).
    TruncateSuffixPanics,
    /// The read-only open is the read-write open on the caller's file system, recovery and
    /// all (what `qk inspect` once did to real directories). Only durable families can show
    /// it (a volatile one has nothing on disk to repair).
    ReadOnlyOpenWrites,
    /// The read-write open takes no lock, so a second writer opens the same instance. Only
    /// durable families lock.
    NoLock,
    /// The local family's segment files are stored under unpadded names behind its back
    /// (a translating `Vfs`): its own reader agrees, braft cannot open them.
    UnpaddedSegmentNames,
    /// The family's `qk inspect` details count one entry too many (the local family's first
    /// segment, the redb family's log): every state is right, only the operator's report is
    /// wrong. Only the families with details (`local`, `redb`) can show it.
    InspectMiscountsEntries,
    /// Every open "repairs" the term and vote in two separately durable steps (a zeroed meta,
    /// then the real one), as an engine whose recovery rewrites a header before it makes the
    /// new one durable: a power loss between the two, which only a crash *during an open*
    /// can land, loses the acknowledged term and vote. Only durable families can show it.
    RepairInTwoSteps,
    /// Term and vote live in a file of their own beside the instance (written whole, synced
    /// and renamed into place), with nothing tying it to the log or the snapshot: a lying
    /// disk can roll it back alone, and a meta older than a snapshot published after it
    /// comes back unnoticed — a cut the family could have told, since the publish followed
    /// the save. Every state on an honest disk is right (each open brings the instance's own
    /// copy in line with the side file). Only `redb` is given it: one commit holds its three
    /// stores, so only the side file can make a mixed cut there.
    MetaInSideFile,
    /// An open that meets corruption starts empty instead of refusing (as braft's snapshot
    /// store starts without a snapshot whose meta it cannot load): every honest directory
    /// opens as before, only a damaged one is accepted. Only the local family's hostile
    /// directories reach it.
    AcceptsHostileDirs,
}

impl PlantedBug {
    /// Every planted bug.
    pub const ALL: [PlantedBug; 20] = [
        PlantedBug::DropEntry,
        PlantedBug::ForgetVote,
        PlantedBug::TruncateSuffixOffByOne,
        PlantedBug::FlipSnapshotByte,
        PlantedBug::ExportCutOffByOne,
        PlantedBug::ImportNotAtomic,
        PlantedBug::SkipFsync,
        PlantedBug::SkipDirSync,
        PlantedBug::ImportStampsCounter,
        PlantedBug::ImportListsFilesTwice,
        PlantedBug::ImportCommitInSteps,
        PlantedBug::PaddingByOpenCount,
        PlantedBug::TruncateSuffixPanics,
        PlantedBug::ReadOnlyOpenWrites,
        PlantedBug::NoLock,
        PlantedBug::UnpaddedSegmentNames,
        PlantedBug::InspectMiscountsEntries,
        PlantedBug::RepairInTwoSteps,
        PlantedBug::MetaInSideFile,
        PlantedBug::AcceptsHostileDirs,
    ];

    /// Whether the bug can show in `family` (lost syncs and a commit torn by a power loss
    /// only matter to a durable family).
    pub fn applies_to(self, family: &dyn Family) -> bool {
        let needs_durable = matches!(
            self,
            PlantedBug::SkipFsync
                | PlantedBug::SkipDirSync
                | PlantedBug::ImportCommitInSteps
                | PlantedBug::ReadOnlyOpenWrites
                | PlantedBug::NoLock
                | PlantedBug::RepairInTwoSteps
                | PlantedBug::MetaInSideFile
        );
        if matches!(self, PlantedBug::UnpaddedSegmentNames | PlantedBug::AcceptsHostileDirs) {
            return family.scheme() == "local";
        }
        if self == PlantedBug::MetaInSideFile {
            // On local, braft reads `raft_meta` itself, and `braft_view` sees the two copies
            // of term and vote disagree after a power loss before the open reconciles them.
            return family.scheme() == "redb";
        }
        if self == PlantedBug::InspectMiscountsEntries {
            return matches!(family.scheme(), "local" | "redb");
        }
        !needs_durable || family.durable()
    }

    /// Whether only a lying fsync shows the bug (its selftest then runs under lying fsyncs
    /// alone, not the seed's honest faults).
    pub fn needs_lying_fsync(self) -> bool {
        self == PlantedBug::MetaInSideFile
    }

    /// The check this bug is planted to trip.
    pub fn expected_check(self) -> CheckName {
        match self {
            PlantedBug::DropEntry
            | PlantedBug::ForgetVote
            | PlantedBug::TruncateSuffixOffByOne
            | PlantedBug::FlipSnapshotByte => CheckName::ModelEquality,
            PlantedBug::ExportCutOffByOne => CheckName::ExportCut,
            PlantedBug::ImportNotAtomic => CheckName::BadImages,
            PlantedBug::SkipFsync
            | PlantedBug::SkipDirSync
            | PlantedBug::RepairInTwoSteps
            | PlantedBug::MetaInSideFile => CheckName::CrashAtomicity,
            PlantedBug::ImportStampsCounter => CheckName::ImportDeterminism,
            PlantedBug::ImportListsFilesTwice => CheckName::Canonicality,
            PlantedBug::ImportCommitInSteps => CheckName::ImportAtomicity,
            PlantedBug::PaddingByOpenCount => CheckName::Determinism,
            PlantedBug::TruncateSuffixPanics => CheckName::Panic,
            PlantedBug::ReadOnlyOpenWrites => CheckName::ReadOnly,
            PlantedBug::NoLock => CheckName::SingleWriter,
            PlantedBug::UnpaddedSegmentNames => CheckName::BraftView,
            PlantedBug::InspectMiscountsEntries => CheckName::InspectAgreement,
            PlantedBug::AcceptsHostileDirs => CheckName::HostileDirs,
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
            PlantedBug::SkipFsync => "skip-fsync",
            PlantedBug::SkipDirSync => "skip-dir-sync",
            PlantedBug::ImportStampsCounter => "import-stamps-counter",
            PlantedBug::ImportListsFilesTwice => "import-lists-files-twice",
            PlantedBug::ImportCommitInSteps => "import-commit-in-steps",
            PlantedBug::PaddingByOpenCount => "padding-by-open-count",
            PlantedBug::TruncateSuffixPanics => "truncate-suffix-panics",
            PlantedBug::ReadOnlyOpenWrites => "read-only-open-writes",
            PlantedBug::NoLock => "no-lock",
            PlantedBug::UnpaddedSegmentNames => "unpadded-segment-names",
            PlantedBug::InspectMiscountsEntries => "inspect-miscounts-entries",
            PlantedBug::RepairInTwoSteps => "repair-in-two-steps",
            PlantedBug::MetaInSideFile => "meta-in-side-file",
            PlantedBug::AcceptsHostileDirs => "accepts-hostile-dirs",
        }
    }
}

/// How many padding counts [`PlantedBug::PaddingByOpenCount`] cycles through: the instance
/// numbered `n` writes `n % PADDING_CYCLE` padding records per mutation, so a second run of
/// a history differs from the first unless the first opened a multiple of this many
/// instances.
pub const PADDING_CYCLE: u64 = 4;

/// The file beside an instance at `location` where [`PlantedBug::PaddingByOpenCount`] writes
/// its padding.
fn padding_path(location: &str) -> PathBuf {
    PathBuf::from(format!("{location}.padding"))
}

/// The file beside an instance at `location` where [`PlantedBug::MetaInSideFile`] keeps term
/// and vote.
fn side_meta_path(location: &str) -> PathBuf {
    PathBuf::from(format!("{location}.meta"))
}

/// The side file's term and vote: `TERM` or `TERM VOTE`, in text; `None` when it is absent.
fn read_side_meta(vfs: &VfsHandle, location: &str) -> StorageResult<Option<Meta>> {
    let path = side_meta_path(location);
    if !vfs.exists(&path)? {
        return Ok(None);
    }
    let bytes = vfs.open(&path, OpenOptions::READ)?.read_all()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut words = text.split(' ');
    let term = words.next().and_then(|t| t.parse().ok());
    let Some(term) = term else {
        let what = "the side file holds no term".to_string();
        return Err(Corruption { path, offset: 0, what }.into());
    };
    Ok(Some(Meta { term, voted_for: words.next().map(|v| PeerId::new(v.to_string())) }))
}

/// Writes the side file whole: a temporary file, synced, renamed into place, the directory
/// synced.
fn write_side_meta(vfs: &VfsHandle, location: &str, meta: &Meta) -> VfsResult<()> {
    let path = side_meta_path(location);
    let tmp = PathBuf::from(format!("{location}.meta.tmp"));
    let mut text = meta.term.to_string();
    if let Some(vote) = &meta.voted_for {
        text.push(' ');
        text.push_str(vote.as_str());
    }
    let file = vfs.open(&tmp, OpenOptions::CREATE_TRUNCATE)?;
    file.write_at(text.as_bytes(), 0)?;
    file.sync()?;
    vfs.rename(&tmp, &path)?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    vfs.sync_dir(parent.unwrap_or(Path::new(".")))
}

/// A family whose instances carry a planted bug over an inner family's instances.
pub struct PlantedFamily {
    inner: Arc<dyn Family>,
    bug: PlantedBug,
    /// Imports committed by its instances ([`PlantedBug::ImportStampsCounter`]); starts at 0
    /// for every new family, so a run is reproducible.
    imports: Arc<AtomicU64>,
    /// Instances opened so far ([`PlantedBug::PaddingByOpenCount`]). A real family's
    /// counter would be a process-global; this one lives in the family, so the program stays
    /// reproducible (a fresh family starts at 0) and tests running in parallel threads do
    /// not share it.
    opened: Arc<AtomicU64>,
}

impl PlantedFamily {
    /// Wraps `inner` with `bug`.
    pub fn new(inner: Arc<dyn Family>, bug: PlantedBug) -> Self {
        let (imports, opened) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        PlantedFamily { inner, bug, imports, opened }
    }

    /// The file system the inner family's instances are given: `vfs`, or a wrapper that
    /// loses syncs, holds no locks or unpads segment names, as the bug says.
    fn planted_vfs(&self, vfs: VfsHandle) -> VfsHandle {
        match self.bug {
            PlantedBug::SkipFsync => Arc::new(LostSyncs { inner: vfs, files: true, dirs: false }),
            PlantedBug::SkipDirSync => Arc::new(LostSyncs { inner: vfs, files: false, dirs: true }),
            PlantedBug::NoLock => Arc::new(NoLocks { inner: vfs }),
            PlantedBug::UnpaddedSegmentNames => Arc::new(UnpaddedNames { inner: vfs }),
            _ => vfs,
        }
    }
}

impl Family for PlantedFamily {
    fn scheme(&self) -> &'static str {
        self.inner.scheme()
    }

    /// The same bug over the tuned inner family, sharing this family's counters (so a
    /// planted bug that depends on them sees every instance, whatever its tunables).
    fn with_tunables(&self, tunables: &crate::tunables::Tunables) -> Option<Arc<dyn Family>> {
        Some(Arc::new(PlantedFamily {
            inner: crate::sim::engine::subject::tuned(&self.inner, tunables),
            bug: self.bug,
            imports: self.imports.clone(),
            opened: self.opened.clone(),
        }))
    }

    fn durable(&self) -> bool {
        self.inner.durable()
    }

    fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        let vfs = self.planted_vfs(vfs);
        let mut inner = match self.inner.open(location, vfs.clone()) {
            Err(e) if e.is_corruption() && self.bug == PlantedBug::AcceptsHostileDirs => {
                Box::new(crate::families::memory::MemoryStorage::new())
            }
            opened => opened?,
        };
        if self.bug == PlantedBug::RepairInTwoSteps {
            let meta = inner.meta()?;
            if meta != Meta::default() {
                inner.save_meta(&Meta::default())?;
                inner.save_meta(&meta)?;
            }
        }
        let side_meta = match self.bug {
            PlantedBug::MetaInSideFile => read_side_meta(&vfs, location)?,
            _ => None,
        };
        if let Some(side) = &side_meta {
            // The side file wins: the inner instance is brought in line, so that what the
            // family's own report (`qk inspect`) reads agrees once the open returned.
            if inner.meta()? != *side {
                inner.save_meta(side)?;
            }
        }
        let padding = match self.bug {
            PlantedBug::PaddingByOpenCount => {
                self.opened.fetch_add(1, Ordering::Relaxed) % PADDING_CYCLE
            }
            _ => 0,
        };
        Ok(Box::new(Planted {
            inner,
            bug: self.bug,
            vfs,
            location: location.to_string(),
            imports: self.imports.clone(),
            relisted: Vec::new(),
            padding,
            cuts: [0; 6],
            side_meta,
        }))
    }

    /// The inner family's details, read through the file system its instances see (so
    /// unpadded segment names read as padded); with [`PlantedBug::InspectMiscountsEntries`],
    /// one entry too many.
    fn inspect_details(
        &self,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Option<(String, serde_json::Value)>> {
        let details = self.inner.inspect_details(location, self.planted_vfs(vfs))?;
        if self.bug != PlantedBug::InspectMiscountsEntries {
            return Ok(details);
        }
        Ok(details.map(|(text, mut value)| {
            let count = match self.inner.scheme() {
                "local" => value.pointer_mut("/segments/0/entries"),
                _ => value.pointer_mut("/log/entries"),
            };
            if let Some(count) = count {
                *count = serde_json::Value::from(count.as_u64().unwrap_or(0) + 1);
            }
            (text, value)
        }))
    }

    fn open_read_only(&self, location: &str, vfs: VfsHandle) -> StorageResult<ReadOnlyOpen> {
        if self.bug != PlantedBug::ReadOnlyOpenWrites {
            // The planted instance, replayed in memory: a read-only view with the same bug.
            return replay_read_only(vfs, |vfs| self.open(location, vfs));
        }
        let storage = self.open(location, vfs)?;
        Ok(ReadOnlyOpen {
            family: storage.family(),
            format_version: storage.family_format_version(),
            view: Box::new(ViewOnly::new(storage)),
            repairs: Vec::new(),
            source: ViewSource::Replayed,
        })
    }
}

struct Planted {
    inner: Box<dyn RaftStorage>,
    bug: PlantedBug,
    /// The file system and location the instance was opened on.
    vfs: VfsHandle,
    location: String,
    /// The family's count of committed imports.
    imports: Arc<AtomicU64>,
    /// Snapshot files listed twice since an import ([`PlantedBug::ImportListsFilesTwice`]).
    relisted: Vec<SnapshotPath>,
    /// Padding records written after each mutation ([`PlantedBug::PaddingByOpenCount`]).
    padding: u64,
    /// The last cut per `last_kept % 7`, slot 0 missing ([`PlantedBug::TruncateSuffixPanics`]).
    cuts: [Index; 6],
    /// The side file's term and vote, once there is one ([`PlantedBug::MetaInSideFile`]).
    side_meta: Option<Meta>,
}

impl Planted {
    /// What a mutation returns, after the padding of [`PlantedBug::PaddingByOpenCount`] when
    /// it succeeded. The padding is never read and its failures are ignored: it changes
    /// nothing but how many disk operations the instance makes.
    fn mutated(&self, result: StorageResult<()>) -> StorageResult<()> {
        if result.is_ok() && self.padding > 0 {
            let _ = self.write_padding();
        }
        result
    }

    fn write_padding(&self) -> VfsResult<()> {
        let path = padding_path(&self.location);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.vfs.create_dir_all(parent)?;
        }
        let file = self.vfs.open(&path, OpenOptions::CREATE)?;
        for _ in 0..self.padding {
            file.write_at(&[0], 0)?;
        }
        Ok(())
    }
}

impl StateView for Planted {
    delegate_state_view!(inner: first_index, last_index, snapshot_meta);

    fn meta(&self) -> StorageResult<Meta> {
        match &self.side_meta {
            Some(meta) => Ok(meta.clone()),
            None => self.inner.meta(),
        }
    }

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        if self.bug == PlantedBug::DropEntry && index.is_multiple_of(17) {
            return Ok(None);
        }
        self.inner.entry(index)
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        let files = self.inner.snapshot_files()?;
        if self.bug == PlantedBug::ImportListsFilesTwice {
            return Ok(list_twice(files, &self.relisted));
        }
        Ok(files)
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
    delegate_raft_storage!(
        inner: family,
        begin_snapshot,
        family_format_version,
        reserved_snapshot_names
    );

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        let result = self.inner.append(entries);
        self.mutated(result)
    }

    fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()> {
        let result = self.inner.truncate_prefix(first_kept);
        self.mutated(result)
    }

    fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()> {
        let result = match self.bug {
            PlantedBug::TruncateSuffixOffByOne => {
                self.inner.truncate_suffix(last_kept.saturating_add(1))
            }
            PlantedBug::TruncateSuffixPanics => {
                let slot = ((last_kept % 7) as usize).wrapping_sub(1);
                self.cuts[slot] = last_kept;
                self.inner.truncate_suffix(last_kept)
            }
            _ => self.inner.truncate_suffix(last_kept),
        };
        self.mutated(result)
    }

    fn reset(&mut self, next: Index) -> StorageResult<()> {
        let result = self.inner.reset(next);
        self.mutated(result)
    }

    fn save_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        let result = match self.bug {
            PlantedBug::ForgetVote => {
                self.inner.save_meta(&Meta { term: meta.term, voted_for: None })
            }
            PlantedBug::MetaInSideFile => {
                let saved = self.inner.save_meta(meta);
                saved.and_then(|()| Ok(write_side_meta(&self.vfs, &self.location, meta)?))
            }
            _ => self.inner.save_meta(meta),
        };
        if result.is_ok() && self.bug == PlantedBug::MetaInSideFile {
            self.side_meta = Some(meta.clone());
        }
        self.mutated(result)
    }

    fn begin_export(&mut self) -> StorageResult<Box<dyn StateView + Send>> {
        let cut = self.inner.begin_export()?;
        if self.bug == PlantedBug::ExportCutOffByOne {
            return Ok(Box::new(ShortCut { inner: cut }));
        }
        if let (PlantedBug::MetaInSideFile, Some(meta)) = (self.bug, &self.side_meta) {
            return Ok(Box::new(SideMetaCut { inner: cut, meta: meta.clone() }));
        }
        Ok(cut)
    }

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        match self.bug {
            PlantedBug::ImportNotAtomic => {
                drop(self.inner.begin_import()?); // keeps the emptiness check
                Ok(Box::new(DirectImport { inner: self.inner.as_mut(), snapshot: None }))
            }
            PlantedBug::ImportStampsCounter => {
                let (vfs, imports) = (self.vfs.clone(), self.imports.clone());
                let stamp = stamp_path(&self.location);
                let inner = self.inner.begin_import()?;
                Ok(Box::new(StampingImport { inner, vfs, stamp, imports }))
            }
            PlantedBug::ImportListsFilesTwice => {
                let Planted { inner, relisted, .. } = self;
                let inner = inner.begin_import()?;
                Ok(Box::new(RelistingImport { inner, added: Vec::new(), relisted }))
            }
            PlantedBug::ImportCommitInSteps => {
                Ok(Box::new(SteppedImport::begin(self.inner.as_mut())?))
            }
            _ => self.inner.begin_import(),
        }
    }
}

/// A cut whose last entry went missing.
struct ShortCut {
    inner: Box<dyn StateView + Send>,
}

impl StateView for ShortCut {
    delegate_state_view!(
        inner: first_index, meta, snapshot_meta, snapshot_files, read_snapshot_file
    );

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
}

/// A cut whose term and vote are the side file's ([`PlantedBug::MetaInSideFile`]).
struct SideMetaCut {
    inner: Box<dyn StateView + Send>,
    meta: Meta,
}

impl StateView for SideMetaCut {
    delegate_state_view!(
        inner: first_index,
        last_index,
        entry,
        snapshot_meta,
        snapshot_files,
        read_snapshot_file
    );

    fn meta(&self) -> StorageResult<Meta> {
        Ok(self.meta.clone())
    }
}

/// An import that writes straight into the instance: nothing is staged, so a failed import
/// leaves whatever arrived before the failure.
struct DirectImport<'a> {
    inner: &'a mut dyn RaftStorage,
    snapshot: Option<(Vec<StagedFile>, Option<SnapshotMeta>)>,
}

/// A snapshot file the direct import holds until commit: path, file metadata, bytes.
type StagedFile = (SnapshotPath, FileMeta, Vec<u8>);

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
        file_meta: &FileMeta,
    ) -> StorageResult<()> {
        let files = &mut self.snapshot.get_or_insert_with(|| (Vec::new(), None)).0;
        files.push((path.clone(), file_meta.clone(), Vec::new()));
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
                writer.add_file(&path, &file_meta)?;
                writer.write_file(&path, 0, &data)?;
            }
            writer.set_meta(meta);
            writer.publish()?;
        }
        Ok(())
    }
}
