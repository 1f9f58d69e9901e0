//! Snapshot storage (`snapshot/`): `snapshot_<index:020>/` directories with
//! `__raft_snapshot_meta`, writing in `temp/`, publish by rename, retire older, cleanup on
//! open; per-file metadata as braft's whole `LocalFileMeta` (`user_meta`, `source`,
//! `checksum`), written and read exactly as braft's `add_file` / `get_file_meta` do.
//!
//! Publish, ordered so that braft (which keeps the highest `snapshot_*` and deletes `temp/`)
//! sees the previous snapshot or the new one at every crash point, and this family's open
//! agrees with braft wherever braft's format allows it:
//! 1. every file in `temp/` is fsynced, then every directory under it, then the block
//!    checksum manifest, the meta file and its checksum sidecar are written (each tmp +
//!    fsync + rename + directory fsync);
//! 2. a new index other than the current one: `temp/` is renamed to `snapshot_<new>` and
//!    `snapshot/` fsynced; then every other snapshot directory is retired: renamed to
//!    `qk_retired_*` (fsynced) and removed (or, when an export cut still reads it, removed
//!    when the cut lets go). A lower new index is therefore visible only once the higher
//!    current one is renamed away in one step, never while it is half deleted;
//! 3. the same index as the current one (braft's own `close()` refuses that with EEXIST):
//!    the marker `qk_publish` naming the index is written durably, the current directory is
//!    retired, `temp/` is renamed into its place, and the marker is removed.
//!
//! An open that finds the marker finishes step 3 once the old directory is gone (braft sees no
//! snapshot in that window: the one place braft's format cannot follow, since a directory
//! rename cannot replace a non-empty directory); while the old directory is still in place it
//! drops the marker and recovers as braft does. Without a marker it does what braft does:
//! delete `temp/`, keep the highest `snapshot_*`, delete the others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::contract::{
    check_new_snapshot_file, check_reserved_snapshot_path, ContractError, FileMeta, FileSource,
    Index, SnapshotFileInfo, SnapshotMeta, SnapshotPath, StorageResult,
};
use crate::vfs::{FileKind, OpenOptions, VfsErrorKind, VfsHandle};

use super::files::{
    corruption, ensure_dir, read_exact, read_file, remove_dir_all, remove_file_if_present,
    write_atomic, SharedDir,
};
use super::format::{
    parse_snapshot_dir_name, snapshot_dir_name, tmp_name, CrossMark, ManifestFile,
    SnapshotManifest, PBFILE_BODY_LEN_MAX, PUBLISH_MARKER_NAME, RETIRED_SNAPSHOT_PREFIX,
    SNAPSHOT_BLOCK_LEN, SNAPSHOT_MANIFEST_NAME, SNAPSHOT_META_NAME, SNAPSHOT_RESERVED_NAMES,
    SNAPSHOT_TEMP_NAME,
};
use super::meta::{judge_guarded, load_guarded, save_guarded, SidecarStatus};
use super::peer::peer_from_disk;
use super::proto::{
    pbfile_decode, pbfile_encode, LocalFileMeta, LocalSnapshotFile, LocalSnapshotPbMeta,
    SnapshotMetaPb,
};
use super::recover::RecoveryPolicy;

/// One file of a published snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedFile {
    /// Length in bytes.
    pub len: u64,
    /// Its `LocalFileMeta`, as braft's `get_file_meta` returns it.
    pub file_meta: FileMeta,
    /// CRC-32C per block from the manifest; `None` for a snapshot without one (written by
    /// braft), whose reads cannot be verified.
    pub block_crcs: Option<Vec<u32>>,
}

/// The latest published snapshot, shared with export cuts.
pub struct Published {
    /// Its meta.
    pub meta: SnapshotMeta,
    /// Its files.
    pub files: BTreeMap<SnapshotPath, PublishedFile>,
    /// Its directory.
    pub dir: Arc<SharedDir>,
    /// The instance's cross mark at the publish (recorded in the meta's sidecar).
    pub mark: Option<CrossMark>,
    vfs: VfsHandle,
}

impl Published {
    /// The file list as the contract reports it.
    pub fn file_infos(&self) -> Vec<SnapshotFileInfo> {
        self.files
            .iter()
            .map(|(path, f)| SnapshotFileInfo {
                path: path.clone(),
                len: f.len,
                file_meta: f.file_meta.clone(),
            })
            .collect()
    }

    /// Reads bytes of one file; with a manifest every block touched is verified first.
    pub fn read(&self, path: &SnapshotPath, offset: u64, buf: &mut [u8]) -> StorageResult<usize> {
        let Some(file) = self.files.get(path) else {
            return Err(ContractError::UnknownSnapshotFile { path: path.to_string() }.into());
        };
        if offset >= file.len || buf.is_empty() {
            return Ok(0);
        }
        let n = (file.len - offset).min(buf.len() as u64) as usize;
        self.dir.with(|dir| {
            let full = dir.join(path.as_str());
            let handle = self.vfs.open(&full, OpenOptions::READ)?;
            let Some(crcs) = &file.block_crcs else {
                read_exact(handle.as_ref(), &mut buf[..n], offset, &full)?;
                return Ok(n);
            };
            let mut block = Vec::new();
            let mut done = 0usize;
            while done < n {
                let at = offset + done as u64;
                let block_idx = at / SNAPSHOT_BLOCK_LEN;
                let block_start = block_idx * SNAPSHOT_BLOCK_LEN;
                let block_len = (file.len - block_start).min(SNAPSHOT_BLOCK_LEN) as usize;
                block.resize(block_len, 0);
                read_exact(handle.as_ref(), &mut block, block_start, &full)?;
                let want = crcs.get(block_idx as usize).copied();
                if want != Some(crc32c::crc32c(&block)) {
                    return Err(corruption(
                        &full,
                        block_start,
                        "snapshot file block checksum mismatch",
                    ));
                }
                let from = (at - block_start) as usize;
                let take = (block_len - from).min(n - done);
                buf[done..done + take].copy_from_slice(&block[from..from + take]);
                done += take;
            }
            Ok(n)
        })
    }
}

/// The snapshot store of one instance.
pub struct SnapshotStore {
    vfs: VfsHandle,
    dir: PathBuf,
    current: Option<Arc<Published>>,
    retire_seq: u64,
}

fn to_pb_meta(meta: &SnapshotMeta) -> SnapshotMetaPb {
    SnapshotMetaPb {
        last_included_index: meta.last_included_index as i64,
        last_included_term: meta.last_included_term as i64,
        peers: meta.peers.iter().map(|p| p.to_string()).collect(),
        old_peers: meta.old_peers.iter().map(|p| p.to_string()).collect(),
    }
}

/// The `LocalFileMeta` message braft's `add_file` stores for `meta`: each field set exactly
/// when the contract's is.
pub fn to_pb_file_meta(meta: &FileMeta) -> LocalFileMeta {
    LocalFileMeta {
        user_meta: meta.user_meta.as_ref().map(|b| b.to_vec()),
        source: meta.source.map(FileSource::number),
        checksum: meta.checksum.clone(),
    }
}

/// The contract's view of a stored `LocalFileMeta`, as braft's `get_file_meta` returns it: a
/// missing message is the empty one; a `source` number braft's enum does not define reads as
/// unset (C++ proto2 parses an unknown enum value into the unknown fields, so `has_source()`
/// is false there too).
pub fn from_pb_file_meta(meta: Option<LocalFileMeta>) -> FileMeta {
    let Some(meta) = meta else { return FileMeta::default() };
    FileMeta {
        user_meta: meta.user_meta.map(Bytes::from),
        source: meta.source.and_then(FileSource::from_number),
        checksum: meta.checksum,
    }
}

/// The `__raft_snapshot_meta` bytes for a snapshot: meta, then files sorted by name, each
/// with its `LocalFileMeta` always present (empty encodes as `12 00`, as braft writes).
pub fn encode_snapshot_meta<'a>(
    meta: &SnapshotMeta,
    files: impl Iterator<Item = (&'a SnapshotPath, &'a FileMeta)>,
) -> Vec<u8> {
    let files = files
        .map(|(path, file_meta)| LocalSnapshotFile {
            name: path.to_string(),
            meta: Some(to_pb_file_meta(file_meta)),
        })
        .collect();
    pbfile_encode(&LocalSnapshotPbMeta { meta: Some(to_pb_meta(meta)), files })
}

/// Files listed in a snapshot meta: path and `LocalFileMeta`.
pub type ListedFiles = Vec<(SnapshotPath, FileMeta)>;

/// Decodes `__raft_snapshot_meta` into meta and files (lengths not yet known).
pub fn decode_snapshot_meta(
    bytes: &[u8],
    path: &Path,
) -> StorageResult<(SnapshotMeta, ListedFiles)> {
    let msg: LocalSnapshotPbMeta =
        pbfile_decode(bytes).map_err(|p| corruption(path, 0, p.to_string()))?;
    let Some(meta) = msg.meta else {
        return Err(corruption(path, 4, "snapshot meta has no `meta` field"));
    };
    let meta = SnapshotMeta {
        last_included_index: meta.last_included_index as u64,
        last_included_term: meta.last_included_term as u64,
        peers: meta.peers.into_iter().map(peer_from_disk).collect(),
        old_peers: meta.old_peers.into_iter().map(peer_from_disk).collect(),
    };
    let mut files = BTreeMap::new();
    for file in msg.files {
        let name = SnapshotPath::new(file.name.clone()).map_err(|e| {
            corruption(path, 4, format!("snapshot file name {:?} rejected: {e}", file.name))
        })?;
        // braft: duplicate names keep the last.
        files.insert(name, from_pb_file_meta(file.meta));
    }
    Ok((meta, files.into_iter().collect()))
}

/// Prefix under which qk before image format 2.0 stored a snapshot file whose name started
/// with `__raft_snapshot_meta` or with this prefix, while the meta listed the real name. Such
/// names are refused now ([`SNAPSHOT_RESERVED_NAMES`]); a directory written that way is not
/// read (braft lists a file that is not there), and the error names the escaped file.
const LEGACY_ESCAPE_PREFIX: &str = "__qk_esc_";

impl SnapshotStore {
    /// Opens the store: finishes an interrupted publish, cleans up, loads the latest.
    pub fn open(vfs: VfsHandle, dir: PathBuf, policy: RecoveryPolicy) -> StorageResult<Self> {
        ensure_dir(&vfs, &dir)?;
        let mut store = SnapshotStore { vfs, dir, current: None, retire_seq: 0 };
        if let Some(index) = store.read_marker()? {
            let old_in_place = store.vfs.exists(&store.dir.join(snapshot_dir_name(index)))?;
            if old_in_place && store.temp_complete(index)? {
                // Step 3 had not retired the old directory yet: braft still sees it, and so
                // does this open (temp/ goes below).
                remove_file_if_present(&store.vfs, &store.dir.join(PUBLISH_MARKER_NAME))?;
                store.vfs.sync_dir(&store.dir)?;
            } else {
                store.finish_publish(index)?;
            }
        }
        let mut highest: Option<(Index, String)> = None;
        let mut doomed = Vec::new();
        let mut removed_marker_tmp = false;
        for entry in store.vfs.read_dir(&store.dir)? {
            if entry.name == tmp_name(PUBLISH_MARKER_NAME) && entry.kind == FileKind::File {
                // A marker write that a crash cut short before its rename: no publish began.
                removed_marker_tmp =
                    remove_file_if_present(&store.vfs, &store.dir.join(&entry.name))?;
            } else if entry.name == SNAPSHOT_TEMP_NAME
                || entry.name.starts_with(RETIRED_SNAPSHOT_PREFIX)
            {
                doomed.push(entry.name);
            } else if let (Some(index), FileKind::Dir) =
                (parse_snapshot_dir_name(&entry.name), entry.kind)
            {
                match &highest {
                    Some((h, _)) if *h >= index => doomed.push(entry.name),
                    _ => {
                        if let Some((_, old)) = highest.take() {
                            doomed.push(old);
                        }
                        highest = Some((index, entry.name));
                    }
                }
            }
        }
        for name in &doomed {
            remove_dir_all(&store.vfs, &store.dir.join(name))?;
        }
        if !doomed.is_empty() || removed_marker_tmp {
            store.vfs.sync_dir(&store.dir)?;
        }
        if let Some((index, name)) = highest {
            let snap_dir = store.dir.join(&name);
            match store.load(&snap_dir, index, policy) {
                Ok(published) => store.current = Some(Arc::new(published)),
                // braft starts without a snapshot when its meta cannot be loaded.
                Err(e) if policy != RecoveryPolicy::FailClosed && e.is_corruption() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(store)
    }

    fn load(
        &self,
        snap_dir: &Path,
        index: Index,
        policy: RecoveryPolicy,
    ) -> StorageResult<Published> {
        let meta_path = snap_dir.join(SNAPSHOT_META_NAME);
        let Some(file) = load_guarded(&self.vfs, snap_dir, SNAPSHOT_META_NAME)? else {
            return Err(corruption(&meta_path, 0, "snapshot directory without its meta file"));
        };
        judge_guarded(policy, &meta_path, &file)?;
        let manifest = self.load_manifest(snap_dir, policy)?;
        if file.status == SidecarStatus::Missing && manifest.is_some() && policy.enforces_sidecars()
        {
            // This family wrote the snapshot (it has a manifest), so the sidecar was written
            // before the meta: losing it means a lost write, not a legacy snapshot.
            return Err(corruption(
                &meta_path,
                0,
                "checksum sidecar missing from a snapshot this family wrote",
            ));
        }
        let (meta, names) = decode_snapshot_meta(&file.bytes, &meta_path)?;
        if meta.last_included_index != index {
            return Err(corruption(
                &meta_path,
                4,
                format!(
                    "meta says last_included_index {}, directory name says {index}",
                    meta.last_included_index
                ),
            ));
        }
        let mut files = BTreeMap::new();
        for (path, file_meta) in names {
            if let Err(e) = check_reserved_snapshot_path("local", &SNAPSHOT_RESERVED_NAMES, &path) {
                return Err(corruption(
                    &meta_path,
                    4,
                    format!("the meta lists a file braft cannot hold: {e}"),
                ));
            }
            let full = snap_dir.join(path.as_str());
            let len = match self.vfs.metadata(&full) {
                Ok(m) if m.kind == FileKind::File => m.len,
                Ok(_) => return Err(corruption(&full, 0, "listed snapshot file is a directory")),
                Err(e) if e.kind == VfsErrorKind::NotFound => {
                    let escaped = snap_dir.join(format!("{LEGACY_ESCAPE_PREFIX}{path}"));
                    let hint = if self.vfs.exists(&escaped)? {
                        format!(
                            "; {} holds it under the escaped name an older qk used, which \
                             braft cannot read: export the snapshot with that qk",
                            escaped.display()
                        )
                    } else {
                        String::new()
                    };
                    return Err(corruption(
                        &meta_path,
                        4,
                        format!("listed file {path} is missing{hint}"),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            let block_crcs = match manifest.as_ref().map(|m| m.get(path.as_str())) {
                None => None,
                Some(Some(entry)) if entry.len == len => Some(entry.block_crcs.clone()),
                Some(_) if policy.enforces_sidecars() => {
                    return Err(corruption(
                        &full,
                        0,
                        format!("length {len} does not match the snapshot's checksum manifest"),
                    ))
                }
                Some(_) => None,
            };
            files.insert(path, PublishedFile { len, file_meta, block_crcs });
        }
        Ok(Published {
            meta,
            files,
            dir: SharedDir::new(Arc::clone(&self.vfs), snap_dir.to_path_buf()),
            mark: file.mark,
            vfs: Arc::clone(&self.vfs),
        })
    }

    /// The snapshot's checksum manifest by path: `None` when absent (braft-written), or
    /// damaged under a braft-compatible policy.
    fn load_manifest(
        &self,
        snap_dir: &Path,
        policy: RecoveryPolicy,
    ) -> StorageResult<Option<BTreeMap<String, ManifestFile>>> {
        let path = snap_dir.join(SNAPSHOT_MANIFEST_NAME);
        let Some(bytes) = read_file(&self.vfs, &path, PBFILE_BODY_LEN_MAX)? else {
            return Ok(None);
        };
        match SnapshotManifest::decode(&bytes) {
            Some(m) => Ok(Some(m.files.into_iter().map(|f| (f.path.clone(), f)).collect())),
            None if policy.enforces_sidecars() => {
                Err(corruption(&path, 0, "snapshot checksum manifest is damaged"))
            }
            None => Ok(None),
        }
    }

    fn read_marker(&self) -> StorageResult<Option<Index>> {
        let path = self.dir.join(PUBLISH_MARKER_NAME);
        let Some(bytes) = read_file(&self.vfs, &path, 64)? else {
            return Ok(None);
        };
        if bytes.len() != 12 || crc32c::crc32c(&bytes[..8]).to_be_bytes() != bytes[8..12] {
            return Err(corruption(&path, 0, "publish marker is damaged"));
        }
        let mut index = [0u8; 8];
        index.copy_from_slice(&bytes[..8]);
        Ok(Some(u64::from_be_bytes(index)))
    }

    fn write_marker(&self, index: Index) -> StorageResult<()> {
        let mut bytes = index.to_be_bytes().to_vec();
        bytes.extend_from_slice(&crc32c::crc32c(&bytes).to_be_bytes());
        write_atomic(&self.vfs, &self.dir, PUBLISH_MARKER_NAME, &bytes)
    }

    /// Whether `temp/` holds a complete snapshot at `index` (meta written and vouched for).
    fn temp_complete(&self, index: Index) -> StorageResult<bool> {
        let temp = self.dir.join(SNAPSHOT_TEMP_NAME);
        let Some(file) = load_guarded(&self.vfs, &temp, SNAPSHOT_META_NAME)? else {
            return Ok(false);
        };
        if file.status != SidecarStatus::Verified {
            return Ok(false);
        }
        let path = temp.join(SNAPSHOT_META_NAME);
        Ok(decode_snapshot_meta(&file.bytes, &path)
            .is_ok_and(|(m, _)| m.last_included_index == index))
    }

    /// Step 3 of a publish after the marker (see the module doc); idempotent.
    fn finish_publish(&mut self, index: Index) -> StorageResult<()> {
        let target_name = snapshot_dir_name(index);
        let target = self.dir.join(&target_name);
        if self.temp_complete(index)? {
            if self.vfs.exists(&target)? {
                self.retire_dir_named(&target_name)?;
            }
            self.vfs.rename(&self.dir.join(SNAPSHOT_TEMP_NAME), &target)?;
            self.vfs.sync_dir(&self.dir)?;
        } else if !self.vfs.exists(&target)? {
            return Err(corruption(
                &self.dir.join(PUBLISH_MARKER_NAME),
                0,
                format!(
                    "publish of snapshot {index} interrupted, but neither temp/ nor \
                     {target_name} holds it"
                ),
            ));
        }
        self.retire_others(&target_name)?;
        remove_file_if_present(&self.vfs, &self.dir.join(PUBLISH_MARKER_NAME))?;
        self.vfs.sync_dir(&self.dir)?;
        Ok(())
    }

    /// Retires every snapshot directory but `keep`.
    fn retire_others(&mut self, keep: &str) -> StorageResult<()> {
        for entry in self.vfs.read_dir(&self.dir)? {
            if entry.name != keep && parse_snapshot_dir_name(&entry.name).is_some() {
                self.retire_dir_named(&entry.name)?;
                crate::coverage::hit(crate::coverage::Point::LocalSnapshotRetire);
            }
        }
        Ok(())
    }

    /// Retires a snapshot directory: renames it to `qk_retired_*` in one step (durable before
    /// anything in it is removed, so braft never meets it half deleted), then removes it —
    /// or, when an export cut reads it, leaves that to the cut's last holder.
    fn retire_dir_named(&mut self, name: &str) -> StorageResult<()> {
        self.retire_seq += 1;
        let to = self.dir.join(format!("{RETIRED_SNAPSHOT_PREFIX}{name}_{}", self.retire_seq));
        let pinned = self
            .current
            .as_ref()
            .filter(|c| Arc::strong_count(c) > 1 && c.dir.path() == self.dir.join(name));
        if let Some(current) = pinned {
            crate::coverage::hit(crate::coverage::Point::LocalSnapshotRetirePinned);
            current.dir.move_aside(to)?;
            self.vfs.sync_dir(&self.dir)?;
            current.dir.doom();
            return Ok(());
        }
        self.vfs.rename(&self.dir.join(name), &to)?;
        self.vfs.sync_dir(&self.dir)?;
        remove_dir_all(&self.vfs, &to)
    }

    /// How many times this family published a snapshot here (0 without one, or for a
    /// braft-written one).
    pub fn seq(&self) -> u64 {
        self.current.as_ref().and_then(|c| c.mark).map_or(0, |m| m.snapshot_seq)
    }

    /// The latest published snapshot.
    pub fn current(&self) -> Option<&Arc<Published>> {
        self.current.as_ref()
    }

    /// Starts a writer: `temp/` emptied and created.
    pub fn begin(&mut self) -> StorageResult<StagedSnapshot> {
        let temp = self.dir.join(SNAPSHOT_TEMP_NAME);
        remove_dir_all(&self.vfs, &temp)?;
        self.vfs.create_dir(&temp)?;
        self.vfs.sync_dir(&self.dir)?;
        Ok(StagedSnapshot {
            vfs: Arc::clone(&self.vfs),
            temp,
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            meta: None,
        })
    }

    /// Publishes a staged snapshot (see the module doc).
    pub fn publish(&mut self, staged: StagedSnapshot, mark: CrossMark) -> StorageResult<()> {
        let meta = staged.meta.clone().ok_or(ContractError::SnapshotWithoutMeta)?;
        staged.seal(&meta, mark)?;
        let index = meta.last_included_index;
        let replaces_current = self.current.as_ref().map(|c| c.meta.last_included_index);
        if replaces_current == Some(index) {
            self.write_marker(index)?;
            self.finish_publish(index)?;
        } else {
            let target = self.dir.join(snapshot_dir_name(index));
            if self.vfs.exists(&target)? {
                // Not the current snapshot: a leftover braft would delete anyway.
                self.retire_dir_named(&snapshot_dir_name(index))?;
            }
            self.vfs.rename(&self.dir.join(SNAPSHOT_TEMP_NAME), &target)?;
            self.vfs.sync_dir(&self.dir)?;
            self.retire_others(&snapshot_dir_name(index))?;
        }
        crate::coverage::hit(crate::coverage::Point::LocalSnapshotPublish);
        let files = staged
            .files
            .into_iter()
            .map(|(path, f)| {
                let block_crcs = Some(f.block_crcs());
                (path, PublishedFile { len: f.len, file_meta: f.file_meta, block_crcs })
            })
            .collect();
        let dir = self.dir.join(snapshot_dir_name(index));
        self.current = Some(Arc::new(Published {
            meta,
            files,
            dir: SharedDir::new(Arc::clone(&self.vfs), dir),
            mark: Some(mark),
            vfs: Arc::clone(&self.vfs),
        }));
        Ok(())
    }
}

/// A file being written: length, file meta, and block checksums so far.
struct StagedFile {
    len: u64,
    file_meta: FileMeta,
    /// CRC-32C of every complete block.
    blocks: Vec<u32>,
    /// CRC-32C of the bytes of the incomplete last block.
    partial: u32,
}

impl StagedFile {
    fn append(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let in_block = self.len % SNAPSHOT_BLOCK_LEN;
            let n = ((SNAPSHOT_BLOCK_LEN - in_block) as usize).min(data.len());
            self.partial =
                crc32c::crc32c_append(if in_block == 0 { 0 } else { self.partial }, &data[..n]);
            self.len += n as u64;
            if self.len.is_multiple_of(SNAPSHOT_BLOCK_LEN) {
                self.blocks.push(self.partial);
                self.partial = 0;
            }
            data = &data[n..];
        }
    }

    fn block_crcs(&self) -> Vec<u32> {
        let mut crcs = self.blocks.clone();
        if !self.len.is_multiple_of(SNAPSHOT_BLOCK_LEN) {
            crcs.push(self.partial);
        }
        crcs
    }
}

/// A snapshot being written in `temp/`.
pub struct StagedSnapshot {
    vfs: VfsHandle,
    temp: PathBuf,
    files: BTreeMap<SnapshotPath, StagedFile>,
    /// Directories created under `temp/`, to fsync before publishing.
    dirs: BTreeSet<PathBuf>,
    meta: Option<SnapshotMeta>,
}

impl StagedSnapshot {
    /// Adds an empty file.
    /// A path whose first segment is one of [`SNAPSHOT_RESERVED_NAMES`] is refused before
    /// anything is written for it.
    pub fn add_file(&mut self, path: &SnapshotPath, file_meta: &FileMeta) -> StorageResult<()> {
        check_new_snapshot_file(&self.files, path)?;
        check_reserved_snapshot_path("local", &SNAPSHOT_RESERVED_NAMES, path)?;
        let mut dir = self.temp.clone();
        let segments: Vec<&str> = path.segments().collect();
        for segment in &segments[..segments.len() - 1] {
            dir.push(segment);
            if !self.dirs.contains(&dir) {
                match self.vfs.create_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind == VfsErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e.into()),
                }
                self.dirs.insert(dir.clone());
            }
        }
        drop(self.vfs.open(&self.temp.join(path.as_str()), OpenOptions::CREATE_NEW)?);
        let file =
            StagedFile { len: 0, file_meta: file_meta.clone(), blocks: Vec::new(), partial: 0 };
        self.files.insert(path.clone(), file);
        Ok(())
    }

    /// Appends bytes at the file's end.
    pub fn write_file(
        &mut self,
        path: &SnapshotPath,
        offset: u64,
        data: &[u8],
    ) -> StorageResult<()> {
        let Some(staged) = self.files.get_mut(path) else {
            return Err(ContractError::UnknownSnapshotFile { path: path.to_string() }.into());
        };
        if offset != staged.len {
            return Err(ContractError::SnapshotWriteNotAtEnd {
                path: path.to_string(),
                offset,
                len: staged.len,
            }
            .into());
        }
        if !data.is_empty() {
            let file = self.vfs.open(&self.temp.join(path.as_str()), OpenOptions::WRITE)?;
            file.write_at(data, offset)?;
        }
        staged.append(data);
        Ok(())
    }

    /// Sets the meta.
    pub fn set_meta(&mut self, meta: SnapshotMeta) {
        self.meta = Some(meta);
    }

    /// The meta, once set (an import may carry no snapshot).
    pub fn meta(&self) -> Option<&SnapshotMeta> {
        self.meta.as_ref()
    }

    /// Whether any file was added.
    pub fn has_files(&self) -> bool {
        !self.files.is_empty()
    }

    /// Step 1 of a publish: fsync files, directories, then write the meta and sidecar.
    fn seal(&self, meta: &SnapshotMeta, mark: CrossMark) -> StorageResult<()> {
        for path in self.files.keys() {
            self.vfs.open(&self.temp.join(path.as_str()), OpenOptions::WRITE)?.sync()?;
        }
        for dir in self.dirs.iter().rev() {
            self.vfs.sync_dir(dir)?;
        }
        self.vfs.sync_dir(&self.temp)?;
        let manifest = SnapshotManifest {
            files: self
                .files
                .iter()
                .map(|(path, f)| ManifestFile {
                    path: path.to_string(),
                    len: f.len,
                    block_crcs: f.block_crcs(),
                })
                .collect(),
        };
        write_atomic(&self.vfs, &self.temp, SNAPSHOT_MANIFEST_NAME, &manifest.encode())?;
        let files = self.files.iter().map(|(p, f)| (p, &f.file_meta));
        let bytes = encode_snapshot_meta(meta, files);
        let tmp = tmp_name(SNAPSHOT_META_NAME);
        save_guarded(&self.vfs, &self.temp, SNAPSHOT_META_NAME, &tmp, &bytes, None, Some(mark))?;
        Ok(())
    }
}
