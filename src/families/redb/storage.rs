//! `RedbStorage`: one open `redb://FILE` instance. Opening (with crash-safe creation), the
//! log and meta mutations (one durable write transaction each), and the live read side.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::backend::{parent_dir, IoLatch, VfsBackend};
use super::engine;
use super::fail::{corruption, Ctx, Fail, Shielded};
use super::read::{self, RedbCut};
use super::schema::{
    encode_format, encode_raft_meta, encode_range, ENTRIES, KEY_FORMAT, KEY_LOG_RANGE,
    KEY_RAFT_META, META, SNAPSHOT_CHUNKS, SNAPSHOT_FILES,
};
use super::snapshot::{RedbImport, RedbSnapshotWriter};
use super::RedbOptions;
use crate::contract::read_only::lock_error;
use crate::contract::{
    check_append, check_meta, check_reset, check_truncate_prefix, range_after_truncate_prefix,
    range_after_truncate_suffix, ContractError, Entry, ImportSink, Index, Meta, RaftStorage,
    SnapshotFileInfo, SnapshotMeta, SnapshotPath, SnapshotWriter, StateView, StorageError,
    StorageResult, Term,
};
use crate::coverage::{hit, Point};
use crate::families::memory::non_empty_reason;
use crate::vfs::{LockMode, OpenOptions, VfsHandle, VfsLock, WriteAtomicity};

/// Suffix of the temporary name a new database is built under before it is renamed into
/// place (`FILE.creating`).
pub const CREATING_SUFFIX: &str = ".creating";

/// The temporary name a new database at `path` is built under.
pub fn creating_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(CREATING_SUFFIX);
    PathBuf::from(name)
}

// Leaks the database instead of dropping it once redb panicked on it (a read can panic on a
// damaged page too): redb's destructors on such a database may panic while unwinding, which
// aborts the process. An I/O failure alone (a crash point, EIO) drops it normally.
impl Drop for RedbStorage {
    fn drop(&mut self) {
        if self.ctx.latch.engine_broken().is_some() {
            self.db.leak();
        }
    }
}

/// An open `redb://FILE` instance.
pub struct RedbStorage {
    pub(super) db: Shielded<Database>,
    pub(super) ctx: Ctx,
    pub(super) options: RedbOptions,
    pub(super) first: Index,
    pub(super) last: Index,
    /// Set by the first mutation that failed with a latched I/O error; every later mutation
    /// then fails with [`StorageError::Poisoned`].
    poisoned: Option<String>,
    /// The exclusive lock on the database file, released when the instance drops (after the
    /// database is closed).
    _lock: Box<dyn VfsLock>,
}

fn builder(options: &RedbOptions) -> redb::Builder {
    let mut builder = Database::builder();
    builder.set_cache_size(options.cache_size);
    engine::check_integrity_on_open(&mut builder, options.check_integrity_on_open);
    builder.set_repair_callback(|_| hit(Point::RedbRepairOnOpen));
    builder
}

/// What redb's design assumes of the medium: single-byte writes are atomic (and writes
/// change no byte outside their range). Its header, commit slots and god byte all sit in the
/// first sector, so only a disk that tears inside a sector can test its header recovery.
pub const WRITE_ATOMICITY: WriteAtomicity = WriteAtomicity::Bytes(1);

/// Opens `location` on `vfs`, creating the database (crash-safely) if the file is absent.
///
/// The database file itself is the instance's lock: it is locked exclusively before anything
/// else (a second writer gets [`StorageError::Locked`] having changed nothing); a new
/// database is locked as `FILE.creating` while it is built, and the lock follows the file
/// through its rename into place.
pub fn open(location: &str, vfs: VfsHandle, options: RedbOptions) -> StorageResult<RedbStorage> {
    if location.is_empty() {
        return Err(StorageError::BadUri {
            uri: format!("redb://{location}"),
            reason: "empty database file path".to_string(),
        });
    }
    let path = PathBuf::from(location);
    vfs.create_dir_all(parent_dir(&path))?;
    let staging = creating_path(&path);
    let ctx = Ctx { path: path.clone(), latch: IoLatch::new() };
    let creating = match vfs.exists(&path)? {
        true => None,
        false => begin_create(&vfs, &path, &staging)?,
    };
    let (db, lock) = match creating {
        Some((file, lock)) => (create(&vfs, file, &path, &staging, &options, &ctx)?, lock),
        None => {
            let lock = vfs
                .try_lock(&path, LockMode::Exclusive)
                .map_err(|e| lock_error(e, LockMode::Exclusive))?;
            if vfs.exists(&staging)? {
                // Left by a creation that crashed after its rename became durable: unused.
                vfs.remove_file(&staging)?;
            }
            let file = vfs.open(&path, OpenOptions::WRITE)?;
            vfs.declare_write_atomicity(&path, WRITE_ATOMICITY)?;
            if file.len()? == 0 {
                // A file this family renamed into place always holds a committed database; an
                // empty one was not made by it (or a lying disk lost it). redb would silently
                // initialise a fresh database here, hiding whatever was lost: fail closed.
                hit(Point::RedbRefusedEmptyFile);
                return Err(corruption(&path, "the database file is empty"));
            }
            let backend = VfsBackend::new(file, path.clone(), ctx.latch.clone());
            let opened = ctx.shield(|| Ok(builder(&options).create_with_backend(backend)?));
            let db = opened.inspect_err(|e| {
                if e.is_corruption() {
                    hit(Point::RedbRefusedEngine);
                }
            })?;
            (Shielded::new(db), lock)
        }
    };
    let mut storage =
        RedbStorage { db, ctx, options, first: 1, last: 0, poisoned: None, _lock: lock };
    let checked = storage.with_read(|txn, ctx| {
        read::check_format(txn, ctx)?;
        let (first, last) = read::log_range(txn, ctx)?;
        read::check_entries_match(txn, ctx, first, last)?;
        // Decode the small records once, so damage there fails the open, not a later read.
        read::raft_meta(txn, ctx)?;
        read::snapshot_meta(txn, ctx)?;
        Ok((first, last))
    });
    let (first, last) = match checked {
        Ok(range) => range,
        Err(e) => {
            if e.is_corruption() {
                hit(Point::RedbRefusedRecords);
            }
            // The database is damaged: do not run redb's destructors on it (see `leak`).
            storage.db.leak();
            return Err(e);
        }
    };
    storage.first = first;
    storage.last = last;
    Ok(storage)
}

/// A new database's file, open and locked at `FILE.creating`.
type Staged = (Box<dyn crate::vfs::VfsFile>, Box<dyn VfsLock>);

/// Opens `staging` (creating it, never cutting it before it is locked) and locks it
/// exclusively for a new database at `path`. `None` when `path` appeared meanwhile (another
/// process finished creating it): the caller opens that one instead.
fn begin_create(vfs: &VfsHandle, path: &Path, staging: &Path) -> StorageResult<Option<Staged>> {
    let file = vfs.open(staging, OpenOptions::CREATE)?;
    vfs.declare_write_atomicity(staging, WRITE_ATOMICITY)?;
    let lock = vfs
        .try_lock(staging, LockMode::Exclusive)
        .map_err(|e| lock_error(e, LockMode::Exclusive))?;
    if vfs.exists(path)? {
        return Ok(None);
    }
    // A leftover of a crashed creation: start from nothing.
    if file.len()? > 0 {
        file.set_len(0)?;
    }
    Ok(Some((file, lock)))
}

/// Builds a new, empty database in `file` (open and locked at `staging`), makes it durable,
/// renames it to `path` and returns it, still open (its file handle follows the rename).
///
/// A crash before the first durable commit of a redb file leaves a file redb cannot open
/// ("magic number mismatch"); building it under a temporary name means the real name only
/// ever appears holding a committed, synced database. Steps: create `staging` (truncating a
/// leftover), let redb initialise it, commit the schema with `Durability::Immediate` (which
/// syncs), sync the directory, rename, sync the directory. A crash anywhere before the last
/// step leaves either no `path` (the next open starts over) or a complete one. Keeping the
/// database open, rather than closing and reopening it, spares a re-read of what was just
/// written (on a faulty disk, a fresh instance then does not fail on a sector that rotted in
/// between; the damage is found when the data is read).
fn create(
    vfs: &VfsHandle,
    file: Box<dyn crate::vfs::VfsFile>,
    path: &Path,
    staging: &Path,
    options: &RedbOptions,
    ctx: &Ctx,
) -> StorageResult<Shielded<Database>> {
    let backend = VfsBackend::new(file, path, ctx.latch.clone());
    let db = Shielded::new(ctx.shield(|| Ok(builder(options).create_with_backend(backend)?))?);
    ctx.shield(|| {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_two_phase_commit(options.two_phase_commit);
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(KEY_FORMAT, encode_format().as_slice())?;
            meta.insert(KEY_LOG_RANGE, encode_range(1, 0).as_slice())?;
            meta.insert(KEY_RAFT_META, encode_raft_meta(&Meta::INITIAL).as_slice())?;
            txn.open_table(ENTRIES)?;
            txn.open_table(SNAPSHOT_FILES)?;
            txn.open_table(SNAPSHOT_CHUNKS)?;
        }
        txn.commit()?;
        Ok(())
    })?;
    let parent = parent_dir(path);
    vfs.sync_dir(parent)?;
    vfs.rename(staging, path)?;
    vfs.sync_dir(parent)?;
    Ok(db)
}

impl RedbStorage {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.ctx.path
    }

    /// The shared I/O latch (for tests and diagnostics).
    pub fn latch(&self) -> &Arc<IoLatch> {
        &self.ctx.latch
    }

    /// Fails with `Poisoned` once a mutation failed on a latched I/O error.
    pub(super) fn check_poisoned(&self) -> StorageResult<()> {
        if let Some(cause) = &self.poisoned {
            return Err(StorageError::Poisoned { cause: cause.clone() });
        }
        if let Some(latched) = self.ctx.latch.get() {
            // An I/O error seen outside a mutation (a read) poisons as well.
            return Err(StorageError::Poisoned { cause: latched.to_string() });
        }
        if let Some(what) = self.ctx.latch.engine_broken() {
            return Err(StorageError::Poisoned { cause: what });
        }
        if let Some(damage) = self.ctx.latch.damage() {
            return Err(StorageError::Poisoned { cause: damage.what });
        }
        Ok(())
    }

    /// Records a failed mutation: a latched I/O error poisons the instance.
    pub(super) fn note_failure(&mut self, error: &StorageError) {
        if self.poisoned.is_none() {
            if let Some(latched) = self.ctx.latch.get() {
                self.poisoned = Some(latched.to_string());
            } else if let Some(what) = self.ctx.latch.engine_broken() {
                self.poisoned = Some(what);
            } else if let Some(damage) = self.ctx.latch.damage() {
                self.poisoned = Some(damage.what);
            } else if matches!(error, StorageError::Backend { .. } | StorageError::Poisoned { .. })
            {
                // redb refused or panicked part-way through a commit: its in-memory state is
                // no longer trusted until reopen.
                self.poisoned = Some(error.to_string());
            }
        }
    }

    /// Begins a durable write transaction.
    pub(super) fn begin_write(&self) -> Result<WriteTransaction, Fail> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_two_phase_commit(self.options.two_phase_commit);
        if !self.options.two_phase_commit {
            hit(Point::RedbOnePhaseCommit);
        }
        Ok(txn)
    }

    /// Runs one mutation in one durable write transaction.
    fn mutate(
        &mut self,
        body: impl FnOnce(&WriteTransaction) -> Result<(), Fail>,
    ) -> StorageResult<()> {
        self.check_poisoned()?;
        let result = self.ctx.shield(|| {
            let txn = self.begin_write()?;
            body(&txn)?;
            txn.commit()?;
            Ok(())
        });
        if let Err(e) = &result {
            self.note_failure(e);
        }
        result
    }

    /// Runs `body` in a fresh read transaction.
    pub(super) fn with_read<T>(
        &self,
        body: impl FnOnce(&ReadTransaction, &Ctx) -> Result<T, Fail>,
    ) -> StorageResult<T> {
        self.ctx.shield_read(|| {
            let txn = self.db.begin_read()?;
            body(&txn, &self.ctx)
        })
    }

    fn write_range(txn: &WriteTransaction, first: Index, last: Index) -> Result<(), Fail> {
        txn.open_table(META)?.insert(KEY_LOG_RANGE, encode_range(first, last).as_slice())?;
        Ok(())
    }

    /// Deletes the entries `from..=to` (nothing when `from > to`).
    fn delete_entries(txn: &WriteTransaction, from: Index, to: Index) -> Result<(), Fail> {
        if from <= to {
            txn.open_table(ENTRIES)?.retain_in(from..=to, |_, _| false)?;
        }
        Ok(())
    }
}

impl StateView for RedbStorage {
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
        self.with_read(|txn, ctx| read::entry(txn, ctx, index).map(Some))
    }

    fn term(&self, index: Index) -> StorageResult<Option<Term>> {
        if index < self.first || index > self.last {
            return Ok(None);
        }
        self.with_read(|txn, ctx| read::term(txn, ctx, index).map(Some))
    }

    fn meta(&self) -> StorageResult<Meta> {
        self.with_read(read::raft_meta)
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        self.with_read(read::snapshot_meta)
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        self.with_read(read::snapshot_files)
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        self.with_read(|txn, ctx| read::read_file(txn, ctx, path, offset, buf))
    }
}

impl RaftStorage for RedbStorage {
    fn family(&self) -> &'static str {
        super::fail::FAMILY
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.check_poisoned()?;
        check_append(self.last, entries)?;
        let Some(new_last) = entries.last().map(|e| e.index) else { return Ok(()) };
        let first = self.first;
        self.mutate(|txn| {
            {
                let mut table = txn.open_table(ENTRIES)?;
                for entry in entries {
                    table.insert(entry.index, super::schema::encode_entry(entry).as_slice())?;
                }
            }
            Self::write_range(txn, first, new_last)
        })?;
        self.last = new_last;
        Ok(())
    }

    fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()> {
        self.check_poisoned()?;
        check_truncate_prefix(first_kept)?;
        let (first, last) = (self.first, self.last);
        let (new_first, new_last) = range_after_truncate_prefix(first, last, first_kept);
        if new_first == first {
            return Ok(());
        }
        self.mutate(|txn| {
            Self::delete_entries(txn, first, (new_first - 1).min(last))?;
            Self::write_range(txn, new_first, new_last)
        })?;
        (self.first, self.last) = (new_first, new_last);
        Ok(())
    }

    fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()> {
        self.check_poisoned()?;
        let (first, last) = (self.first, self.last);
        let (_, new_last) = range_after_truncate_suffix(first, last, last_kept);
        if new_last == last {
            return Ok(());
        }
        self.mutate(|txn| {
            Self::delete_entries(txn, new_last + 1, last)?;
            Self::write_range(txn, first, new_last)
        })?;
        self.last = new_last;
        Ok(())
    }

    fn reset(&mut self, next: Index) -> StorageResult<()> {
        self.check_poisoned()?;
        check_reset(next)?;
        let (first, last) = (self.first, self.last);
        self.mutate(|txn| {
            Self::delete_entries(txn, first, last)?;
            Self::write_range(txn, next, next - 1)
        })?;
        (self.first, self.last) = (next, next - 1);
        Ok(())
    }

    fn save_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        self.check_poisoned()?;
        check_meta(meta)?;
        self.mutate(|txn| {
            txn.open_table(META)?.insert(KEY_RAFT_META, encode_raft_meta(meta).as_slice())?;
            Ok(())
        })
    }

    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>> {
        self.check_poisoned()?;
        Ok(Box::new(RedbSnapshotWriter::begin(self)?))
    }

    fn begin_export(&mut self) -> StorageResult<Box<dyn StateView + Send>> {
        let txn = self.ctx.shield_read(|| Ok(self.db.begin_read()?))?;
        Ok(Box::new(RedbCut::new(txn, self.ctx.clone(), self.first, self.last)))
    }

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        self.check_poisoned()?;
        if let Some(what) = non_empty_reason(self)? {
            return Err(ContractError::NotEmpty { what }.into());
        }
        Ok(Box::new(RedbImport::begin(self)?))
    }
}
