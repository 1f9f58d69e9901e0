//! Calls fed to both sides in lockstep: the rule for a side's result ([`Outcome`]), the pair's
//! snapshot writer and its import sink.
//!
//! The rule, the same for every call: the primary goes first. If it rejects the call with a
//! contract error, nothing changed anywhere and that error is returned as is (the mirror is
//! not called). Any other failure of the primary, and any failure of the mirror, marks the
//! pair diverged and is returned as [`DualWriteError::SideFailed`].

use std::collections::BTreeMap;

use crate::contract::{
    check_new_snapshot_file, check_reserved_snapshot_path, check_snapshot_meta, ContractError,
    Entry, FileMeta, ImportSink, Index, Meta, SnapshotMeta, SnapshotPath, SnapshotWriter,
    StorageError, StorageResult,
};

use super::error::{side_failed, DualWriteError, Side};

/// Applies the lockstep rule to the pair's divergence flag.
pub(crate) struct Outcome<'a> {
    /// The pair's flag: `Some(why)` once a side failed.
    pub diverged: &'a mut Option<String>,
    /// The primary's family scheme.
    pub primary_family: &'static str,
    /// The mirror's family scheme.
    pub mirror_family: &'static str,
}

impl Outcome<'_> {
    /// The primary's result of `operation`.
    pub fn primary(
        &mut self,
        operation: &'static str,
        result: StorageResult<()>,
    ) -> StorageResult<()> {
        match result {
            Ok(()) => Ok(()),
            Err(e @ StorageError::Contract(_)) => Err(e),
            Err(e) => Err(self.fail(Side::Primary, operation, e)),
        }
    }

    /// The mirror's result of `operation`.
    pub fn mirror(
        &mut self,
        operation: &'static str,
        result: StorageResult<()>,
    ) -> StorageResult<()> {
        result.map_err(|e| self.fail(Side::Mirror, operation, e))
    }

    /// Marks the pair diverged because `side` failed `operation`.
    pub fn fail(
        &mut self,
        side: Side,
        operation: &'static str,
        cause: StorageError,
    ) -> StorageError {
        let family = match side {
            Side::Primary => self.primary_family,
            Side::Mirror => self.mirror_family,
        };
        if self.diverged.is_none() {
            *self.diverged = Some(format!("the {side} ({family}) failed {operation}: {cause}"));
        }
        side_failed(side, family, operation, cause)
    }
}

/// Both sides' objects of one kind (snapshot writers, import sinks), fed in lockstep under
/// the [`Outcome`] rule. After a side failure other than a contract rejection, every later
/// call fails with [`DualWriteError::Incomplete`] naming `what`.
pub(crate) struct Lockstep<'a, T: ?Sized + 'a> {
    primary: Box<T>,
    mirror: Box<T>,
    outcome: Outcome<'a>,
    what: &'static str,
    /// The first side failure, after which nothing can be published or committed.
    failed: Option<String>,
    /// Each side's family and the snapshot names it reserves.
    reserved: [(&'static str, Vec<&'static str>); 2],
}

impl<'a, T: ?Sized + 'a> Lockstep<'a, T> {
    /// Pairs `primary` and `mirror`; `what` names them in errors ("import"); `reserved` is
    /// each side's family and [`crate::contract::RaftStorage::reserved_snapshot_names`].
    pub fn new(
        primary: Box<T>,
        mirror: Box<T>,
        outcome: Outcome<'a>,
        what: &'static str,
        reserved: [(&'static str, Vec<&'static str>); 2],
    ) -> Self {
        Lockstep { primary, mirror, outcome, what, failed: None, reserved }
    }

    /// A snapshot path either side's family refuses is refused before either side sees it,
    /// so a name one family reserves never diverges the pair.
    fn check_path(&self, path: &SnapshotPath) -> Result<(), ContractError> {
        for (family, names) in &self.reserved {
            check_reserved_snapshot_path(family, names, path)?;
        }
        Ok(())
    }

    fn refuse_if_failed(&self) -> StorageResult<()> {
        match &self.failed {
            Some(cause) => {
                Err(DualWriteError::Incomplete { what: self.what, cause: cause.clone() }.into())
            }
            None => Ok(()),
        }
    }

    /// Feeds `call` to the primary, then (if it succeeded) to the mirror.
    fn step(
        &mut self,
        operation: &'static str,
        call: &mut dyn FnMut(&mut T) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.refuse_if_failed()?;
        let result = call(self.primary.as_mut());
        let result = self.outcome.primary(operation, result);
        let result = result.and_then(|()| {
            let mirrored = call(self.mirror.as_mut());
            self.outcome.mirror(operation, mirrored)
        });
        if let Err(e) = &result {
            if !matches!(e, StorageError::Contract(_)) {
                self.failed = Some(e.to_string());
            }
        }
        result
    }

    /// Consumes both sides with `call` (publish, commit): the primary first, then the mirror.
    fn finish(
        self,
        operation: &'static str,
        call: &mut dyn FnMut(Box<T>) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.refuse_if_failed()?;
        let Lockstep { primary, mirror, mut outcome, .. } = self;
        let result = call(primary);
        outcome.primary(operation, result)?;
        let result = call(mirror);
        outcome.mirror(operation, result)
    }
}

/// A snapshot writer over both sides' writers, fed in lockstep. It checks the contract's
/// writer rules itself (duplicate or conflicting paths, unknown files, writes not at the end,
/// a missing meta) so that a rejected call reaches neither side.
pub(crate) struct PairSnapshotWriter<'a> {
    pub sides: Lockstep<'a, dyn SnapshotWriter + 'a>,
    /// Files added so far and their lengths.
    pub files: BTreeMap<SnapshotPath, u64>,
    pub meta: Option<SnapshotMeta>,
}

impl SnapshotWriter for PairSnapshotWriter<'_> {
    fn add_file(&mut self, path: &SnapshotPath, file_meta: &FileMeta) -> StorageResult<()> {
        check_new_snapshot_file(&self.files, path)?;
        self.sides.check_path(path)?;
        self.sides.step("add_file", &mut |w| w.add_file(path, file_meta))?;
        self.files.insert(path.clone(), 0);
        Ok(())
    }

    fn write_file(&mut self, path: &SnapshotPath, offset: u64, data: &[u8]) -> StorageResult<()> {
        let len = *self
            .files
            .get(path)
            .ok_or_else(|| ContractError::UnknownSnapshotFile { path: path.to_string() })?;
        if offset != len {
            let path = path.to_string();
            return Err(ContractError::SnapshotWriteNotAtEnd { path, offset, len }.into());
        }
        self.sides.step("write_file", &mut |w| w.write_file(path, offset, data))?;
        if let Some(len) = self.files.get_mut(path) {
            *len += data.len() as u64;
        }
        Ok(())
    }

    fn set_meta(&mut self, meta: SnapshotMeta) {
        self.sides.primary.set_meta(meta.clone());
        self.sides.mirror.set_meta(meta.clone());
        self.meta = Some(meta);
    }

    fn publish(self: Box<Self>) -> StorageResult<()> {
        let this = *self;
        this.sides.refuse_if_failed()?;
        let meta = this.meta.as_ref().ok_or(ContractError::SnapshotWithoutMeta)?;
        check_snapshot_meta(meta)?;
        this.sides.finish("publish", &mut |w| w.publish())
    }
}

/// An import sink over both sides' sinks, fed in lockstep; `commit` commits the primary, then
/// the mirror.
pub(crate) type PairImportSink<'a> = Lockstep<'a, dyn ImportSink + 'a>;

impl ImportSink for PairImportSink<'_> {
    fn set_first_index(&mut self, first: Index) -> StorageResult<()> {
        self.step("import set_first_index", &mut |s| s.set_first_index(first))
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.step("import append", &mut |s| s.append(entries))
    }

    fn set_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        self.step("import set_meta", &mut |s| s.set_meta(meta))
    }

    fn add_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        file_meta: &FileMeta,
    ) -> StorageResult<()> {
        self.check_path(path)?;
        self.step("import add_snapshot_file", &mut |s| s.add_snapshot_file(path, file_meta))
    }

    fn write_snapshot_file(
        &mut self,
        path: &SnapshotPath,
        offset: u64,
        data: &[u8],
    ) -> StorageResult<()> {
        self.step("import write_snapshot_file", &mut |s| s.write_snapshot_file(path, offset, data))
    }

    fn set_snapshot_meta(&mut self, meta: SnapshotMeta) -> StorageResult<()> {
        self.step("import set_snapshot_meta", &mut |s| s.set_snapshot_meta(meta.clone()))
    }

    fn commit(self: Box<Self>) -> StorageResult<()> {
        (*self).finish("import commit", &mut |s| s.commit())
    }
}
