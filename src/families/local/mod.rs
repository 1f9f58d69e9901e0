//! The `local://` family: braft's legacy on-disk layout, byte-compatible, on the `Vfs`.
//!
//! **URIs.** `local://DIR` means braft's usual triple `DIR/log`, `DIR/raft_meta`,
//! `DIR/snapshot`. braft's own triple (`log_uri`, `raft_meta_uri`, `snapshot_uri`) opens
//! with [`LocalPaths::from_uris`]; each is parsed as braft does (scheme before the first
//! `://`, trimmed, case-insensitive; every whitespace character removed from the path).
//! Non-default options (segment size, checksum type, [`RecoveryPolicy`]) go through
//! [`LocalFamily::with_options`] or [`LocalStorage::open`].
//!
//! **Layout** ([`mod@format`] has every byte): `log/log_meta`, `log/log_inprogress_<first>`,
//! `log/log_<first>_<last>`, `raft_meta/raft_meta`, `snapshot/snapshot_<index>/` with
//! `__raft_snapshot_meta` and the files, `snapshot/temp/` while writing. Names always carry
//! 20-digit indexes. New records use CRC-32C; murmur3 records are read too, mixed freely.
//! Configuration entries are `ConfigurationPBMeta`; peers are written in the contract's
//! canonical spelling (braft's four-field `to_string`; the contract only admits braft PeerId
//! text, [`ContractError::BadPeer`]) and read back in it whatever spelling braft left
//! ([`peer`]: a legacy `ip:port:idx` reads as `ip:port:idx:0`); no vote is stored as
//! `0.0.0.0:0:0:0`, and either "any" form on disk reads as no vote. Per-file snapshot
//! metadata is the file's whole `LocalFileMeta` (the contract's [`FileMeta`] field for
//! field: `user_meta`, `source`, `checksum`); it is always written, empty as `12 00`, so a
//! snapshot without metadata is byte-identical to braft's, and a missing one reads as empty
//! as braft reads it. Snapshot files are stored under their own names, so braft lists exactly
//! the files that are there; a path whose first segment is one of the layout's own names
//! ([`format::SNAPSHOT_RESERVED_NAMES`]: `__raft_snapshot_meta`, its `.tmp`, the family's
//! `.qkcrc` and `.qkfiles` beside it) is refused before anything is written
//! ([`ContractError::ReservedSnapshotPath`], [`RaftStorage::reserved_snapshot_names`]).
//!
//! **Durability beyond braft** (no byte braft reads changes; only extra fsyncs, and sidecar
//! files braft ignores):
//! 1. Every append batch fsyncs each segment it wrote to (braft: only the last one, so a
//!    segment closed mid-batch was never fsynced); a segment is fsynced before it is
//!    renamed to closed, and the directory is fsynced after the rename and after a new
//!    segment is created (braft issue #254).
//! 2. `log_meta`, `raft_meta` and `__raft_snapshot_meta` are written to `.tmp`, fsynced,
//!    renamed, and the directory fsynced (braft skips the directory fsync).
//! 3. Unlinks of segments (truncations, reset, open-time cleanup) are followed by a
//!    directory fsync; truncate_suffix unlinks back to front with a directory fsync after
//!    each, renames a closed segment back to in-progress with a directory fsync, then cuts
//!    and fsyncs the file (braft does not fsync the cut).
//! 4. truncate_suffix (when it unlinks) and reset write a redo record `log/qk_pending_op`
//!    first (durably) and remove it last; an open that finds it completes the operation once
//!    it passed the point braft would see (the reset's `log_meta`, the truncation's first
//!    unlink), and rolls it back before. braft's reset leaves a window where a crash after
//!    `log_meta` is rewritten brings stale segments back; this closes it for us, and makes a
//!    multi-segment truncate_suffix atomic. The record carries the range before the
//!    operation, so a directory another writer changed since is reported rather than
//!    "completed".
//! 5. truncate_prefix writes `log_meta` durably before unlinking, so a crash leaves the
//!    old range or the new one; open drops segments below `first_log_index` as braft does.
//! 6. Snapshot files and directories are fsynced before the meta is written; an older
//!    snapshot directory is renamed away in one step before it is removed, and a publish at
//!    the current index is made crash-safe by the marker `snapshot/qk_publish` (see
//!    [`snapshot`]).
//! 7. Checksum sidecars `<file>.qkcrc` guard the three ProtoBufFiles, which carry no
//!    checksum in braft's format. Each names the file (its `Vfs` [`crate::vfs::FileId`]) it
//!    vouches for, so a file braft replaced since (tmp + rename: a newer file) is read as
//!    braft reads it, while bytes changed in place are corruption (see [`meta`] for the
//!    rule and what it cannot tell apart). Snapshot files get a
//!    manifest `__raft_snapshot_meta.qkfiles` with a CRC-32C per 64 KiB block, and every
//!    read verifies the blocks it touches (braft never checks snapshot file contents).
//! 8. After any failed file operation in a mutation the instance is poisoned: every later
//!    mutation fails until it is reopened (fsyncgate). Writes that only stage a snapshot in
//!    `temp/` do not poison (nothing visible depends on them); its publish does.
//! 9. Cross marks ([`format::CrossMark`]) in the sidecars and in `log/qk_log_epoch` (a
//!    truncation epoch bumped durably before every truncate_suffix and reset) record where
//!    the other structures stood at each rare write (log epoch, first, last and last term;
//!    `raft_meta` save count; snapshot publish count). An open that finds a structure behind
//!    a mark written after it knows an acknowledged write was lost (a lying fsync) and fails
//!    closed rather than show a state no history produced. Appends write nothing but braft's
//!    bytes, so the first append after a `raft_meta` save, a publish or a truncate_prefix
//!    rewrites the epoch record with the new counts and first index (one small durable write
//!    per term change, snapshot or compaction); `log_meta` starting before that first index
//!    means a lost truncate_prefix. Not detected: that record and the save it vouches for
//!    both lost while later appends survived.
//!
//! **Recovery** ([`recover`]): a torn tail is trimmed; a complete record with a bad header or
//! payload checksum fails the open with its file and offset under the default
//! [`RecoveryPolicy::FailClosed`]; [`RecoveryPolicy::BraftCompatible`] accepts what braft
//! accepts. A `log_meta` missing next to segments fails closed (braft would delete the log).
//!
//! **Export cuts.** [`RaftStorage::begin_export`] captures the range, the per-segment record
//! index, the meta value and the current snapshot. The live instance keeps, as braft does,
//! an offset and a term per retained entry; the cut shares those vectors copy-on-write, so
//! pinning adds no per-entry memory (at most the open segment's vector is copied, once), and
//! entries are read from the files on demand. Files stay readable because the live instance
//! defers anything that would change bytes a cut reads: a segment a cut holds is renamed to
//! `<name>.qkpin<n>.tmp` instead of unlinked, a segment about to be cut by truncate_suffix
//! is first copied to such a name for the cut, a snapshot directory a cut holds is renamed
//! to `qk_retired_*` instead of removed; the last holder's drop removes them, and a crash
//! leaves names every open removes. Renames on rollover are followed through a shared
//! handle.
//!
//! **Import** ([`import`]): an import into `local://PARENT/NAME` stages a complete instance
//! in the sibling `PARENT/.NAME.qk-import` (braft never reads it) and commits by swapping
//! roots: `NAME` is renamed to `.NAME.qk-old`, the staged root to `NAME` (each rename
//! followed by a fsync of `PARENT`), and the old root is removed; the instance then reloads
//! from the new root. At every crash point braft reads either the empty instance, no `NAME`
//! at all (an empty node), or the whole image; our own open repairs the siblings first (the
//! staged root removed, a root moved aside restored or removed). A failed or dropped import
//! removes its staged root. An import into braft's triple of separate URIs is refused (no
//! common root), and so is one into a `DIR` holding anything but an instance. An older
//! version's marker `log/qk_import_incomplete` is still honoured (the partial state is wiped).
//!
//! **Where braft and this family can disagree after a crash** (the `braft_view` harness
//! check accepts exactly these and nothing else; everywhere else braft's view of a crashed
//! directory is the state this family recovers, and after every open of ours it is equal):
//! 1. a torn, unacknowledged tail of the open segment (a complete header over zeroed
//!    sectors fails braft's init by default; a data payload that fails its checksum is loaded
//!    by braft and refused at `get()`); this family trims both as torn;
//! 2. a reset whose `log_meta` is durable but whose unlinks are not all (braft-format.md §5.6:
//!    braft keeps segments reaching the new first index, fails init with a hole, or warns
//!    and starts on a hole before a stale open segment); the
//!    redo record completes the reset. Before its `log_meta` the reset is rolled back, as braft
//!    sees it;
//! 3. a truncate_suffix that removed some but not all of its segments (braft reads a longer
//!    prefix); the redo record completes it. Before the first unlink it is rolled back;
//! 4. a publish at the current snapshot's index (braft's own `close()` refuses one), between
//!    retiring the old directory and renaming the new one in: braft sees no snapshot; the
//!    publish marker finishes it.

pub mod files;
pub mod format;
pub mod import;
pub mod inspect;
pub mod lock;
pub mod meta;
pub mod peer;
pub mod proto;
pub mod recover;
pub mod segment;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use format::ChecksumType;
pub use inspect::{inspect, InspectReport};
pub use lock::{classify, DirShape, LOCK_FILE_NAME};
pub use recover::RecoveryPolicy;

use crate::contract::{
    check_meta, check_snapshot_meta, check_truncate_prefix, ContractError, Entry, Family, FileMeta,
    ImportSink, Index, Meta, RaftStorage, SnapshotFileInfo, SnapshotMeta, SnapshotPath,
    SnapshotWriter, StateView, StorageError, StorageResult, Term,
};
use crate::coverage::{hit, Point};
use crate::families::memory::non_empty_reason;
use crate::families::split_uri;
use crate::vfs::{FileKind, VfsHandle, VfsLock};

use files::{ensure_dir, remove_dir_all, remove_file_if_present};
use format::{IMPORT_MARKER_NAME, LOG_DIR, RAFT_META_DIR, SNAPSHOT_DIR};
use meta::MetaStore;
use segment::{LogCut, LogOptions, LogStore};
use snapshot::{Published, SnapshotStore, StagedSnapshot};

/// The three directories of an instance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LocalPaths {
    /// The log directory (braft's `log_uri` path).
    pub log: PathBuf,
    /// The meta directory holding `raft_meta` (braft's `raft_meta_uri` path).
    pub raft_meta: PathBuf,
    /// The snapshot directory (braft's `snapshot_uri` path).
    pub snapshot: PathBuf,
}

impl LocalPaths {
    /// `DIR/log`, `DIR/raft_meta`, `DIR/snapshot`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        LocalPaths {
            log: dir.join(LOG_DIR),
            raft_meta: dir.join(RAFT_META_DIR),
            snapshot: dir.join(SNAPSHOT_DIR),
        }
    }

    /// braft's triple of URIs, each `local://PATH` (scheme case-insensitive, whitespace
    /// removed from the path).
    pub fn from_uris(
        log_uri: &str,
        raft_meta_uri: &str,
        snapshot_uri: &str,
    ) -> StorageResult<Self> {
        let one = |uri: &str| -> StorageResult<PathBuf> {
            let (scheme, location) = split_uri(uri)?;
            if !scheme.eq_ignore_ascii_case("local") {
                return Err(StorageError::BadUri {
                    uri: uri.to_string(),
                    reason: format!("scheme {scheme:?} is not `local`"),
                });
            }
            if location.is_empty() {
                return Err(StorageError::BadUri {
                    uri: uri.to_string(),
                    reason: "empty path".into(),
                });
            }
            Ok(PathBuf::from(location))
        };
        Ok(LocalPaths {
            log: one(log_uri)?,
            raft_meta: one(raft_meta_uri)?,
            snapshot: one(snapshot_uri)?,
        })
    }
}

/// braft's three URIs (log, raft_meta, snapshot) of the instance in directory `dir`, spelled
/// with what braft's parser tolerates: the scheme in any case and padded, whitespace inside
/// the path. [`LocalPaths::from_uris`] of them is [`LocalPaths::from_dir`] of `dir`.
pub fn braft_uris(dir: &str) -> [String; 3] {
    [
        format!("local://{dir}/{LOG_DIR}"),
        format!(" LOCAL ://{dir}/ {RAFT_META_DIR}"),
        format!("Local://{dir}/{SNAPSHOT_DIR}\n"),
    ]
}

/// Options of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalOptions {
    /// braft's `raft_max_segment_size` (default 8 MiB).
    pub segment_size_max: u64,
    /// Checksum type of new records (default CRC-32C, as x86-64 braft writes).
    pub checksum: ChecksumType,
    /// Each open picks the checksum type of the records it writes from the log's range at
    /// open, overriding `checksum`: a log reopened as it grows then holds both types, as
    /// braft reads them (a test knob; default off).
    pub mixed_checksums: bool,
    /// What an open does with damaged data (default fail-closed).
    pub recovery: RecoveryPolicy,
    /// [`Family::open`] names the instance as braft's configuration does, by three URIs
    /// ([`braft_uris`]) parsed by [`LocalPaths::from_uris`], instead of by its directory: the
    /// same directories, reached through braft's URI grammar (default off; a tunable).
    pub braft_uris: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            segment_size_max: format::SEGMENT_SIZE_MAX_DEFAULT,
            checksum: ChecksumType::Crc32c,
            mixed_checksums: false,
            recovery: RecoveryPolicy::FailClosed,
            braft_uris: false,
        }
    }
}

/// The `local://` family.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalFamily {
    options: LocalOptions,
}

impl LocalFamily {
    /// The family with non-default options.
    pub fn with_options(options: LocalOptions) -> Self {
        LocalFamily { options }
    }
}

impl Family for LocalFamily {
    fn scheme(&self) -> &'static str {
        "local"
    }

    fn durable(&self) -> bool {
        true
    }

    fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        if location.is_empty() {
            return Err(StorageError::BadUri {
                uri: format!("local://{location}"),
                reason: "empty directory".into(),
            });
        }
        let paths = if self.options.braft_uris {
            let [log, raft_meta, snapshot] = braft_uris(location);
            let paths = LocalPaths::from_uris(&log, &raft_meta, &snapshot)?;
            hit(Point::LocalOpenedByBraftUris);
            paths
        } else {
            LocalPaths::from_dir(location)
        };
        Ok(Box::new(LocalStorage::open(vfs, paths, self.options)?))
    }

    fn with_tunables(&self, tunables: &crate::tunables::Tunables) -> Option<Arc<dyn Family>> {
        use crate::tunables::ChecksumChoice;
        let t = tunables.local;
        let options = LocalOptions {
            segment_size_max: t.segment_size_max,
            checksum: match t.checksum {
                ChecksumChoice::Murmur3 => ChecksumType::Murmur3,
                ChecksumChoice::Crc32c | ChecksumChoice::Mixed => ChecksumType::Crc32c,
            },
            mixed_checksums: t.checksum == ChecksumChoice::Mixed,
            braft_uris: t.braft_uris,
            ..self.options
        };
        Some(Arc::new(LocalFamily::with_options(options)))
    }

    fn inspect_details(
        &self,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Option<(String, serde_json::Value)>> {
        let report = inspect(&vfs, &LocalPaths::from_dir(location))?;
        let value = serde_json::to_value(&report).map_err(|e| StorageError::Backend {
            family: "local",
            message: format!("inspect report to JSON: {e}"),
        })?;
        Ok(Some((report.to_string(), value)))
    }
}

/// An open `local://` instance.
pub struct LocalStorage {
    vfs: VfsHandle,
    paths: LocalPaths,
    options: LocalOptions,
    log: LogStore,
    meta: MetaStore,
    snapshots: SnapshotStore,
    poisoned: Option<String>,
    /// The instance's exclusive lock (`DIR/qk_lock`), released when the instance drops (last,
    /// after every file it holds).
    lock: Box<dyn VfsLock>,
}

impl std::fmt::Debug for LocalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStorage")
            .field("paths", &self.paths)
            .field("first", &self.log.first())
            .field("last", &self.log.last())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl LocalStorage {
    /// Opens (creating if absent) the instance at `paths`, running recovery.
    ///
    /// First takes the instance's exclusive lock ([`lock`]): a second writer fails with
    /// [`StorageError::Locked`] before anything is read or repaired.
    ///
    /// Recovery writes (trimming a torn tail, finishing an interrupted operation, a fresh
    /// `log_meta`), so an I/O error can fail the open. It is not retried here: after a failed
    /// fsync only a restart of the machine shows what is durable.
    pub fn open(vfs: VfsHandle, paths: LocalPaths, options: LocalOptions) -> StorageResult<Self> {
        let siblings = import::siblings(&paths);
        let lock = lock::lock_for_writing(&vfs, &paths, siblings.as_ref())?;
        if let Some(siblings) = &siblings {
            import::recover(&vfs, siblings)?;
        }
        LocalStorage::open_here(vfs, paths, options, lock)
    }

    /// [`LocalStorage::open`] without looking beside the root for import leftovers (the
    /// staged instance of an import is itself such a sibling), holding `lock`, the
    /// instance's exclusive lock, already taken.
    fn open_here(
        vfs: VfsHandle,
        paths: LocalPaths,
        options: LocalOptions,
        lock: Box<dyn VfsLock>,
    ) -> StorageResult<Self> {
        ensure_dir(&vfs, &paths.log)?;
        let marker = paths.log.join(IMPORT_MARKER_NAME);
        if vfs.exists(&marker)? {
            wipe_incomplete_import(&vfs, &paths)?;
        }
        let log_options = LogOptions {
            segment_size_max: options.segment_size_max,
            checksum: options.checksum,
            mixed_checksums: options.mixed_checksums,
            policy: options.recovery,
        };
        let log = LogStore::open(Arc::clone(&vfs), paths.log.clone(), log_options)
            .inspect_err(|e| count_corruption(e, Point::LocalMediaFaultLog))?;
        let meta = MetaStore::open(Arc::clone(&vfs), paths.raft_meta.clone(), options.recovery)
            .inspect_err(|e| count_corruption(e, Point::LocalMediaFaultMeta))?;
        let snapshots =
            SnapshotStore::open(Arc::clone(&vfs), paths.snapshot.clone(), options.recovery)
                .inspect_err(|e| count_corruption(e, Point::LocalMediaFaultSnapshot))?;
        let mut log = log;
        log.set_others(meta.seq(), snapshots.seq());
        if options.recovery.enforces_sidecars() {
            check_cross_marks(&log, &meta, &snapshots)
                .inspect_err(|_| hit(Point::LocalRefusedLostWrite))?;
        }
        Ok(LocalStorage { vfs, paths, options, log, meta, snapshots, poisoned: None, lock })
    }

    /// Closes the instance, keeping only its lock (an import's staged instance hands its lock
    /// on to the instance it becomes once its root is swapped in).
    fn into_lock(self) -> Box<dyn VfsLock> {
        self.lock
    }

    /// Opens braft's triple of URIs (`local://PATH` each).
    pub fn open_uris(
        vfs: VfsHandle,
        log_uri: &str,
        raft_meta_uri: &str,
        snapshot_uri: &str,
        options: LocalOptions,
    ) -> StorageResult<Self> {
        LocalStorage::open(
            vfs,
            LocalPaths::from_uris(log_uri, raft_meta_uri, snapshot_uri)?,
            options,
        )
    }

    /// The instance's directories.
    pub fn paths(&self) -> &LocalPaths {
        &self.paths
    }

    /// Runs a mutation: refused when poisoned; a failure other than a contract error
    /// poisons the instance (the disk may no longer match memory).
    fn mutate<T>(&mut self, f: impl FnOnce(&mut Self) -> StorageResult<T>) -> StorageResult<T> {
        if let Some(cause) = &self.poisoned {
            return Err(StorageError::Poisoned { cause: cause.clone() });
        }
        let result = f(self);
        if let Err(e) = &result {
            if !matches!(e, StorageError::Contract(_)) {
                self.poisoned = Some(e.to_string());
            }
        }
        result
    }

    /// Runs a step that writes only in `snapshot/temp/` (nothing any reader sees, and
    /// nothing recovery keeps): refused when poisoned, but a failure does not poison, since
    /// the visible state cannot have diverged. A failed fsync of it surfaces at `publish`.
    fn stage<T>(&mut self, f: impl FnOnce(&mut Self) -> StorageResult<T>) -> StorageResult<T> {
        if let Some(cause) = &self.poisoned {
            return Err(StorageError::Poisoned { cause: cause.clone() });
        }
        f(self)
    }
}

/// Counts `e` as a media fault `point` of one store when it is corruption.
fn count_corruption(e: &StorageError, point: Point) {
    if e.is_corruption() {
        hit(point);
    }
}

/// Checks every cross mark the open found against the structures it names (see
/// [`format::CrossMark`]): an acknowledged write to one structure that is missing while a
/// later write to another survived means a lying fsync, and the open fails closed.
fn check_cross_marks(
    log: &LogStore,
    meta: &MetaStore,
    snapshots: &SnapshotStore,
) -> StorageResult<()> {
    check_cross_marks_inner(log, meta, snapshots).map_err(|e| match e {
        StorageError::Corruption(mut c) => {
            let wrote: Vec<&str> = [
                (meta.replaced(), "rewrote raft_meta"),
                (log.log_meta_replaced(), "rewrote log_meta"),
            ]
            .into_iter()
            .filter_map(|(yes, what)| yes.then_some(what))
            .collect();
            let after = "braft wrote to this directory after this family did";
            let braft = if wrote.is_empty() {
                format!("if {after}")
            } else {
                format!("{after} ({})", wrote.join(", "))
            };
            c.what = format!(
                "{}; {braft}: a log truncation or a snapshot braft made leaves no trace this \
                 family can tell from a lost write, and --recovery braft opens the directory \
                 as braft would",
                c.what
            );
            StorageError::Corruption(c)
        }
        other => other,
    })
}

fn check_cross_marks_inner(
    log: &LogStore,
    meta: &MetaStore,
    snapshots: &SnapshotStore,
) -> StorageResult<()> {
    // (mark, file it came from, which structure wrote it)
    let mut marks: Vec<(format::CrossMark, PathBuf, Writer)> = Vec::new();
    if let Some(mark) = meta.mark() {
        marks.push((mark, meta.path(), Writer::Meta));
    }
    if let Some(snapshot) = snapshots.current() {
        if let Some(mark) = snapshot.mark {
            marks.push((mark, snapshot.dir.path(), Writer::Snapshot));
        }
    }
    marks.extend(log.loaded_marks().iter().map(|(m, p)| (*m, p.clone(), Writer::Log)));
    for (mark, path, writer) in marks {
        let lost = |what: &str, have: u64, want: u64| {
            files::corruption(
                &path,
                0,
                format!(
                    "written after {what} number {want}, but only {have} survived \
                     (an acknowledged write was lost)"
                ),
            )
        };
        // A structure's own count is what it says it is; only the others are checked. The
        // log's own record still bounds where the log may start (log_meta is another file).
        if writer == Writer::Log {
            log.check_first_floor(mark, &path)?;
        } else {
            log.check_watermark(mark, &path)?;
        }
        if writer != Writer::Meta && meta.seq() < mark.meta_seq {
            return Err(lost("raft_meta save", meta.seq(), mark.meta_seq));
        }
        if writer != Writer::Snapshot && snapshots.seq() < mark.snapshot_seq {
            return Err(lost("snapshot publish", snapshots.seq(), mark.snapshot_seq));
        }
    }
    Ok(())
}

/// Which structure wrote a cross mark.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writer {
    Log,
    Meta,
    Snapshot,
}

/// The instance's cross mark for a `raft_meta` save.
fn mark_for_meta_save(s: &LocalStorage) -> format::CrossMark {
    format::CrossMark {
        meta_seq: s.meta.seq() + 1,
        snapshot_seq: s.snapshots.seq(),
        ..s.log.cross_mark()
    }
}

/// The instance's cross mark for a snapshot publish.
fn mark_for_publish(s: &LocalStorage) -> format::CrossMark {
    format::CrossMark {
        meta_seq: s.meta.seq(),
        snapshot_seq: s.snapshots.seq() + 1,
        ..s.log.cross_mark()
    }
}

impl LocalStorage {
    fn save_meta_marked(&mut self, meta: &Meta) -> StorageResult<()> {
        let mark = mark_for_meta_save(self);
        self.meta.save(meta, mark)?;
        self.log.set_others(mark.meta_seq, mark.snapshot_seq);
        Ok(())
    }

    fn publish_marked(&mut self, staged: StagedSnapshot) -> StorageResult<()> {
        let mark = mark_for_publish(self);
        self.snapshots.publish(staged, mark)?;
        self.log.set_others(mark.meta_seq, mark.snapshot_seq);
        Ok(())
    }
}

/// Removes what a crashed import of an older version of this family left (it wrote the
/// state in place behind the marker `log/qk_import_incomplete`; the destination was empty
/// before it), then the marker, so the instance opens empty.
fn wipe_incomplete_import(vfs: &VfsHandle, paths: &LocalPaths) -> StorageResult<()> {
    for dir in [&paths.snapshot, &paths.raft_meta] {
        if !vfs.exists(dir)? {
            continue;
        }
        for entry in vfs.read_dir(dir)? {
            let path = dir.join(&entry.name);
            match entry.kind {
                FileKind::Dir => remove_dir_all(vfs, &path)?,
                FileKind::File => {
                    remove_file_if_present(vfs, &path)?;
                }
            }
        }
        vfs.sync_dir(dir)?;
    }
    for entry in vfs.read_dir(&paths.log)? {
        if entry.name != IMPORT_MARKER_NAME && entry.kind == FileKind::File {
            remove_file_if_present(vfs, &paths.log.join(&entry.name))?;
        }
    }
    vfs.sync_dir(&paths.log)?;
    remove_file_if_present(vfs, &paths.log.join(IMPORT_MARKER_NAME))?;
    vfs.sync_dir(&paths.log)?;
    Ok(())
}

impl StateView for LocalStorage {
    fn first_index(&self) -> Index {
        self.log.first()
    }

    fn last_index(&self) -> Index {
        self.log.last()
    }

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        self.log.entry(index).inspect_err(|e| count_corruption(e, Point::LocalMediaFaultLog))
    }

    fn term(&self, index: Index) -> StorageResult<Option<Term>> {
        Ok(self.log.term(index))
    }

    fn meta(&self) -> StorageResult<Meta> {
        Ok(self.meta.meta().clone())
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        Ok(self.snapshots.current().map(|s| s.meta.clone()))
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        Ok(self.snapshots.current().map(|s| s.file_infos()).unwrap_or_default())
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        match self.snapshots.current() {
            Some(s) => s
                .read(path, offset, buf)
                .inspect_err(|e| count_corruption(e, Point::LocalMediaFaultSnapshot)),
            None => Err(ContractError::UnknownSnapshotFile { path: path.to_string() }.into()),
        }
    }
}

impl RaftStorage for LocalStorage {
    fn family(&self) -> &'static str {
        "local"
    }

    fn reserved_snapshot_names(&self) -> Vec<&'static str> {
        format::SNAPSHOT_RESERVED_NAMES.to_vec()
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.mutate(|s| s.log.append(entries))
    }

    fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()> {
        check_truncate_prefix(first_kept)?;
        self.mutate(|s| s.log.truncate_prefix(first_kept))
    }

    fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()> {
        self.mutate(|s| s.log.truncate_suffix(last_kept))
    }

    fn reset(&mut self, next: Index) -> StorageResult<()> {
        self.mutate(|s| s.log.reset(next))
    }

    fn save_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        check_meta(meta)?;
        self.mutate(|s| s.save_meta_marked(meta))
    }

    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>> {
        let staged = self.stage(|s| s.snapshots.begin())?;
        Ok(Box::new(LocalSnapshotWriter { storage: self, staged }))
    }

    fn begin_export(&mut self) -> StorageResult<Box<dyn StateView + Send>> {
        Ok(Box::new(LocalCut {
            log: self.log.cut(),
            meta: self.meta.meta().clone(),
            snapshot: self.snapshots.current().cloned(),
        }))
    }

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        if let Some(what) = non_empty_reason(self)? {
            return Err(ContractError::NotEmpty { what }.into());
        }
        let Some(siblings) = import::siblings(&self.paths) else {
            return Err(import::triple_refused(&self.paths));
        };
        if let Some(what) = import::foreign_entry(&self.vfs, &siblings.root)? {
            return Err(ContractError::NotEmpty { what }.into());
        }
        if let Some(cause) = &self.poisoned {
            return Err(StorageError::Poisoned { cause: cause.clone() });
        }
        import::remove_staging(&self.vfs, &siblings)?;
        let mut import = LocalImport {
            storage: self,
            siblings,
            staged: None,
            snapshot: None,
            first_set: false,
            committed: false,
        };
        // On an error the import's drop removes whatever part of the staged root exists. The
        // staged root gets its own lock file, locked, so that it is a locked instance the
        // moment it is renamed into place.
        let vfs = Arc::clone(&import.storage.vfs);
        let staged_paths = LocalPaths::from_dir(&import.siblings.staging);
        let staged_lock = lock::lock_for_writing(&vfs, &staged_paths, None)?;
        let staged =
            LocalStorage::open_here(vfs, staged_paths, import.storage.options, staged_lock)?;
        import.staged = Some(staged);
        Ok(Box::new(import))
    }
}

/// A snapshot writer of a live instance.
struct LocalSnapshotWriter<'a> {
    storage: &'a mut LocalStorage,
    staged: StagedSnapshot,
}

impl SnapshotWriter for LocalSnapshotWriter<'_> {
    fn add_file(&mut self, path: &SnapshotPath, file_meta: &FileMeta) -> StorageResult<()> {
        let staged = &mut self.staged;
        self.storage.stage(|_| staged.add_file(path, file_meta))
    }

    fn write_file(&mut self, path: &SnapshotPath, offset: u64, data: &[u8]) -> StorageResult<()> {
        let staged = &mut self.staged;
        self.storage.stage(|_| staged.write_file(path, offset, data))
    }

    fn set_meta(&mut self, meta: SnapshotMeta) {
        self.staged.set_meta(meta);
    }

    fn publish(self: Box<Self>) -> StorageResult<()> {
        let LocalSnapshotWriter { storage, staged } = *self;
        if let Some(meta) = staged.meta() {
            check_snapshot_meta(meta)?;
        }
        storage.mutate(|s| s.publish_marked(staged))
    }
}

/// A pinned export cut.
struct LocalCut {
    log: LogCut,
    meta: Meta,
    snapshot: Option<Arc<Published>>,
}

impl StateView for LocalCut {
    fn first_index(&self) -> Index {
        self.log.first()
    }

    fn last_index(&self) -> Index {
        self.log.last()
    }

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        self.log.entry(index).inspect_err(|e| count_corruption(e, Point::LocalMediaFaultLog))
    }

    fn term(&self, index: Index) -> StorageResult<Option<Term>> {
        Ok(self.log.term(index))
    }

    fn meta(&self) -> StorageResult<Meta> {
        Ok(self.meta.clone())
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        Ok(self.snapshot.as_ref().map(|s| s.meta.clone()))
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        Ok(self.snapshot.as_ref().map(|s| s.file_infos()).unwrap_or_default())
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        match &self.snapshot {
            Some(s) => s
                .read(path, offset, buf)
                .inspect_err(|e| count_corruption(e, Point::LocalMediaFaultSnapshot)),
            None => Err(ContractError::UnknownSnapshotFile { path: path.to_string() }.into()),
        }
    }
}

/// An import in progress: a complete instance staged beside the root, swapped in at commit
/// ([`import`] has the protocol).
struct LocalImport<'a> {
    storage: &'a mut LocalStorage,
    siblings: import::Siblings,
    /// The staged instance (at `siblings.staging`).
    staged: Option<LocalStorage>,
    /// The staged instance's snapshot being written, if the image has one.
    snapshot: Option<StagedSnapshot>,
    first_set: bool,
    committed: bool,
}

impl LocalImport<'_> {
    fn staged(&mut self) -> StorageResult<&mut LocalStorage> {
        self.staged.as_mut().ok_or(StorageError::Backend {
            family: "local",
            message: "the import's staged instance is gone".into(),
        })
    }

    fn snapshot(&mut self) -> StorageResult<&mut StagedSnapshot> {
        if self.snapshot.is_none() {
            let begun = self.staged()?.mutate(|s| s.snapshots.begin())?;
            self.snapshot = Some(begun);
        }
        Ok(self.snapshot.as_mut().expect("just set"))
    }
}

impl ImportSink for LocalImport<'_> {
    fn set_first_index(&mut self, first: Index) -> StorageResult<()> {
        crate::contract::check_reset(first)?;
        let staged = self.staged()?;
        if staged.log.last() >= staged.log.first() {
            return Err(
                ContractError::ImportOutOfOrder { what: "set_first_index after entries" }.into()
            );
        }
        if self.first_set {
            return Err(
                ContractError::ImportOutOfOrder { what: "set_first_index after entries" }.into()
            );
        }
        self.first_set = true;
        let staged = self.staged()?;
        if first != staged.log.first() {
            staged.mutate(|s| s.log.reset(first))?;
        }
        Ok(())
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.staged()?.mutate(|s| s.log.append(entries))
    }

    fn set_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        check_meta(meta)?;
        self.staged()?.mutate(|s| s.save_meta_marked(meta))
    }

    fn add_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        file_meta: &FileMeta,
    ) -> StorageResult<()> {
        self.snapshot()?.add_file(path, file_meta)
    }

    fn write_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        offset: u64,
        data: &[u8],
    ) -> StorageResult<()> {
        self.snapshot()?.write_file(path, offset, data)
    }

    fn set_snapshot_meta(&mut self, meta: SnapshotMeta) -> StorageResult<()> {
        self.snapshot()?.set_meta(meta);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> StorageResult<()> {
        if let Some(snapshot) = self.snapshot.take() {
            if snapshot.meta().is_none() && snapshot.has_files() {
                return Err(ContractError::ImportOutOfOrder {
                    what: "snapshot files without a snapshot meta",
                }
                .into());
            }
            if let Some(meta) = snapshot.meta() {
                check_snapshot_meta(meta)?;
                self.staged()?.mutate(|s| s.publish_marked(snapshot))?;
            }
        }
        // Every write of the staged instance was durable when it returned; close it before
        // its root moves, but keep its lock: it moves with the root, so the committed
        // instance is locked from the moment it is visible (the root moved aside keeps the
        // old lock, held until the reload).
        self.staged()?;
        let staged_lock = self.staged.take().map(LocalStorage::into_lock).ok_or_else(|| {
            StorageError::Backend {
                family: "local",
                message: "the import's staged instance is gone".into(),
            }
        })?;
        let siblings = self.siblings.clone();
        self.storage.mutate(|s| {
            import::swap(&s.vfs, &siblings)?;
            let vfs = Arc::clone(&s.vfs);
            *s = LocalStorage::open_here(vfs, s.paths.clone(), s.options, staged_lock)?;
            Ok(())
        })?;
        self.committed = true;
        hit(Point::LocalImportCommit);
        Ok(())
    }
}

impl Drop for LocalImport<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        self.snapshot = None;
        drop(self.staged.take());
        // Best effort; if it fails, the next read-write open removes the staged root.
        let _ = import::remove_staging(&self.storage.vfs, &self.siblings);
    }
}
