//! [`DualWrite`]: the pair itself — construction, recovery, revalidation, and the contract
//! implemented over two instances.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::contract::{
    Entry, ImportSink, Index, Meta, RaftStorage, SnapshotFileInfo, SnapshotMeta, SnapshotPath,
    SnapshotWriter, StateView, StorageError, StorageResult,
};
use crate::delegate::delegate_state_view;
use crate::families::memory::non_empty_reason;
use crate::validate::compare;

use super::bootstrap::{bootstrap_into, BootstrapProgress, BootstrapSummary};
use super::error::{side_failed, DualWriteError, Side, Unpaired};
use super::lockstep::{Lockstep, Outcome, PairImportSink, PairSnapshotWriter};
use super::repair::{apply, plan, Recovery};

/// A dual-write pair: a primary and a mirror of any two families, kept equivalent. Reads come
/// from the primary; every mutation goes to the primary, then to the mirror, and returns Ok
/// only when both returned Ok (both made it durable). See the module doc for the rules.
pub struct DualWrite {
    primary: Box<dyn RaftStorage>,
    mirror: Box<dyn RaftStorage>,
    /// `Some(why)` once a side failed: every mutation is refused until revalidated.
    diverged: Option<String>,
}

impl std::fmt::Debug for DualWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DualWrite")
            .field("primary", &self.primary.family())
            .field("mirror", &self.mirror.family())
            .field("diverged", &self.diverged)
            .finish()
    }
}

impl DualWrite {
    /// Each side's family and the snapshot names it reserves.
    fn reserved_by_side(&self) -> [(&'static str, Vec<&'static str>); 2] {
        [
            (self.primary.family(), self.primary.reserved_snapshot_names()),
            (self.mirror.family(), self.mirror.reserved_snapshot_names()),
        ]
    }

    /// Pairs `primary` with a `mirror` that was bootstrapped from it. The mirror must be
    /// equivalent to the primary now (checked with the streaming validator); otherwise the
    /// error is [`DualWriteError::NotBootstrapped`] naming the first difference. Two fresh
    /// instances are equivalent, so a new pair needs no bootstrap.
    pub fn new(
        primary: Box<dyn RaftStorage>,
        mirror: Box<dyn RaftStorage>,
    ) -> Result<DualWrite, Unpaired> {
        let verdict =
            watched(primary.as_ref(), "validate", mirror.family(), |p| compare(p, mirror.as_ref()));
        match verdict {
            Ok(c) if c.equivalent() => Ok(DualWrite::unchecked(primary, mirror)),
            Ok(c) => {
                let difference = c.difference.unwrap_or_default();
                let error = DualWriteError::NotBootstrapped { difference }.into();
                Err(Unpaired { error, primary, mirror })
            }
            Err(error) => Err(Unpaired { error, primary, mirror }),
        }
    }

    /// Bootstraps the empty `mirror` from `primary` (streaming, through the mirror's atomic
    /// import) and pairs them. A non-empty mirror is refused with the mirror's
    /// [`crate::contract::ContractError::NotEmpty`].
    pub fn bootstrap(
        primary: Box<dyn RaftStorage>,
        mut mirror: Box<dyn RaftStorage>,
        on_progress: &mut dyn FnMut(&BootstrapProgress),
    ) -> Result<(DualWrite, BootstrapSummary), Unpaired> {
        let family = mirror.family();
        let copied = watched(primary.as_ref(), "bootstrap", family, |p| {
            bootstrap_into(p, mirror.as_mut(), on_progress)
        });
        match copied {
            Ok(summary) => {
                let pair = DualWrite::new(primary, mirror)?;
                Ok((pair, summary))
            }
            Err(error) => Err(Unpaired { error, primary, mirror }),
        }
    }

    /// Pairs two instances reopened after a restart or a crash: validates them and, where the
    /// repair rules allow, repairs the mirror from the primary (module doc). A mirror beyond
    /// repair comes back in [`Unpaired`] with [`DualWriteError::NeedsBootstrap`].
    pub fn recover(
        primary: Box<dyn RaftStorage>,
        mut mirror: Box<dyn RaftStorage>,
    ) -> Result<(DualWrite, Recovery), Unpaired> {
        match reconcile(primary.as_ref(), mirror.as_mut()) {
            Ok(recovery) => Ok((DualWrite::unchecked(primary, mirror), recovery)),
            Err(error) => Err(Unpaired { error, primary, mirror }),
        }
    }

    /// Validates a live pair (typically one that diverged) and repairs the mirror by the
    /// same rules as [`DualWrite::recover`]. On success the pair accepts mutations again; on
    /// failure it stays diverged.
    pub fn revalidate(&mut self) -> StorageResult<Recovery> {
        match reconcile(self.primary.as_ref(), self.mirror.as_mut()) {
            Ok(recovery) => {
                self.diverged = None;
                Ok(recovery)
            }
            Err(e) => {
                self.diverged.get_or_insert_with(|| format!("revalidation failed: {e}"));
                Err(e)
            }
        }
    }

    /// Why the pair is diverged (refusing mutations), or `None` when it is not.
    pub fn diverged(&self) -> Option<&str> {
        self.diverged.as_deref()
    }

    /// The primary (the pair's reads come from it).
    pub fn primary(&self) -> &dyn RaftStorage {
        self.primary.as_ref()
    }

    /// The mirror.
    pub fn mirror(&self) -> &dyn RaftStorage {
        self.mirror.as_ref()
    }

    /// Ends the pair, giving back the primary and the mirror.
    pub fn into_parts(self) -> (Box<dyn RaftStorage>, Box<dyn RaftStorage>) {
        (self.primary, self.mirror)
    }

    /// A pair formed without any check. Only the harness's planted bugs use it (a mirror that
    /// was never bootstrapped).
    pub(crate) fn unchecked(primary: Box<dyn RaftStorage>, mirror: Box<dyn RaftStorage>) -> Self {
        DualWrite { primary, mirror, diverged: None }
    }

    /// Both sides, bypassing the pair. Only the harness's planted bugs use it.
    pub(crate) fn sides_mut(&mut self) -> (&mut dyn RaftStorage, &mut dyn RaftStorage) {
        (self.primary.as_mut(), self.mirror.as_mut())
    }

    fn refuse_if_diverged(&self) -> StorageResult<()> {
        match &self.diverged {
            None => Ok(()),
            Some(since) => Err(DualWriteError::Diverged { since: since.clone() }.into()),
        }
    }

    /// One mutation in lockstep: the primary, then (if it succeeded) the mirror.
    fn mutate(
        &mut self,
        operation: &'static str,
        call: &dyn Fn(&mut dyn RaftStorage) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.refuse_if_diverged()?;
        let DualWrite { primary, mirror, diverged } = self;
        let mut outcome =
            Outcome { diverged, primary_family: primary.family(), mirror_family: mirror.family() };
        outcome.primary(operation, call(primary.as_mut()))?;
        outcome.mirror(operation, call(mirror.as_mut()))
    }
}

/// Brings `mirror` to `primary`: equivalent, bootstrapped (an empty mirror), repaired, or an
/// error ([`DualWriteError::NeedsBootstrap`], a mirror failure as `SideFailed`, or the
/// primary's own read error).
fn reconcile(primary: &dyn RaftStorage, mirror: &mut dyn RaftStorage) -> StorageResult<Recovery> {
    let family = mirror.family();
    let first = watched(primary, "validate", family, |p| compare(p, &*mirror))?;
    let Some(difference) = first.difference else { return Ok(Recovery::Equivalent) };
    let mirror_empty = non_empty_reason(&*mirror)
        .map_err(|e| side_failed(Side::Mirror, family, "validate", e))?
        .is_none();
    let recovery = if mirror_empty {
        watched(primary, "bootstrap", family, |p| bootstrap_into(p, &mut *mirror, &mut |_| {}))?;
        Recovery::Bootstrapped
    } else {
        let steps = watched(primary, "validate", family, |p| plan(p, &*mirror))?
            .map_err(|reason| DualWriteError::NeedsBootstrap { reason })?;
        watched(primary, "repair", family, |p| apply(p, &mut *mirror, &steps))?;
        Recovery::Repaired { steps, difference }
    };
    let again = watched(primary, "validate", family, |p| compare(p, &*mirror))?;
    match again.difference {
        None => Ok(recovery),
        Some(difference) => Err(DualWriteError::RepairIncomplete { difference }.into()),
    }
}

/// Runs `work` with the primary behind a watch: an error the primary's reads produced comes
/// back as is; any other error is the mirror's, and comes back as
/// [`DualWriteError::SideFailed`] for `operation`.
fn watched<T>(
    primary: &dyn StateView,
    operation: &'static str,
    mirror_family: &'static str,
    work: impl FnOnce(&dyn StateView) -> StorageResult<T>,
) -> StorageResult<T> {
    let view = Watched { inner: primary, failed: Cell::new(false), lens: Default::default() };
    work(&view).map_err(|e| {
        if view.failed.get() {
            e
        } else {
            side_failed(Side::Mirror, mirror_family, operation, e)
        }
    })
}

/// A view that remembers whether any of its reads failed, or showed it inconsistent with
/// itself (a hole in its range, a file shorter or longer than listed).
struct Watched<'a> {
    inner: &'a dyn StateView,
    failed: Cell<bool>,
    /// The listed length of every snapshot file, once listed.
    lens: RefCell<BTreeMap<SnapshotPath, u64>>,
}

impl Watched<'_> {
    fn note<T>(&self, result: StorageResult<T>) -> StorageResult<T> {
        if result.is_err() {
            self.failed.set(true);
        }
        result
    }
}

impl StateView for Watched<'_> {
    delegate_state_view!(inner: first_index, last_index);

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        let entry = self.note(self.inner.entry(index))?;
        if entry.is_none() && (self.first_index()..=self.last_index()).contains(&index) {
            // A hole in the primary's own range: the failure the caller reports is its.
            self.failed.set(true);
        }
        Ok(entry)
    }

    fn term(&self, index: Index) -> StorageResult<Option<u64>> {
        let term = self.note(self.inner.term(index))?;
        if term.is_none() && (self.first_index()..=self.last_index()).contains(&index) {
            self.failed.set(true);
        }
        Ok(term)
    }

    fn meta(&self) -> StorageResult<Meta> {
        self.note(self.inner.meta())
    }

    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        self.note(self.inner.snapshot_meta())
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        let files = self.note(self.inner.snapshot_files())?;
        let mut lens = self.lens.borrow_mut();
        lens.extend(files.iter().map(|f| (f.path.clone(), f.len)));
        Ok(files)
    }

    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        let n = self.note(self.inner.read_snapshot_file(path, offset, buf))?;
        if let Some(len) = self.lens.borrow().get(path) {
            let end = offset.saturating_add(n as u64);
            if end > *len || (n == 0 && offset < *len) {
                self.failed.set(true);
            }
        }
        Ok(n)
    }
}

delegate_state_view!(DualWrite => primary);

impl RaftStorage for DualWrite {
    /// The primary's family: reads and exports are the primary's.
    fn family(&self) -> &'static str {
        self.primary.family()
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.mutate("append", &|s| s.append(entries))
    }

    fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()> {
        self.mutate("truncate_prefix", &|s| s.truncate_prefix(first_kept))
    }

    fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()> {
        self.mutate("truncate_suffix", &|s| s.truncate_suffix(last_kept))
    }

    fn reset(&mut self, next: Index) -> StorageResult<()> {
        self.mutate("reset", &|s| s.reset(next))
    }

    fn save_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        self.mutate("save_meta", &|s| s.save_meta(meta))
    }

    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>> {
        self.refuse_if_diverged()?;
        let reserved = self.reserved_by_side();
        let DualWrite { primary, mirror, diverged } = self;
        let (primary_family, mirror_family) = (primary.family(), mirror.family());
        let mut outcome = Outcome { diverged, primary_family, mirror_family };
        let primary_writer = match primary.begin_snapshot() {
            Ok(w) => w,
            Err(e @ StorageError::Contract(_)) => return Err(e),
            Err(e) => return Err(outcome.fail(Side::Primary, "begin_snapshot", e)),
        };
        let mirror_writer = match mirror.begin_snapshot() {
            Ok(w) => w,
            Err(e) => return Err(outcome.fail(Side::Mirror, "begin_snapshot", e)),
        };
        Ok(Box::new(PairSnapshotWriter {
            sides: Lockstep::new(
                primary_writer,
                mirror_writer,
                outcome,
                "snapshot writer",
                reserved,
            ),
            files: Default::default(),
            meta: None,
        }))
    }

    fn begin_export(&mut self) -> StorageResult<Box<dyn StateView + Send>> {
        self.primary.begin_export()
    }

    /// Both sides' (a path either refuses cannot be kept by the pair).
    fn reserved_snapshot_names(&self) -> Vec<&'static str> {
        let mut names = self.primary.reserved_snapshot_names();
        names.extend(self.mirror.reserved_snapshot_names());
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The primary's: exports are the primary's.
    fn family_format_version(&self) -> u32 {
        self.primary.family_format_version()
    }

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        self.refuse_if_diverged()?;
        let reserved = self.reserved_by_side();
        let DualWrite { primary, mirror, diverged } = self;
        let (primary_family, mirror_family) = (primary.family(), mirror.family());
        let mut outcome = Outcome { diverged, primary_family, mirror_family };
        let primary_sink = match primary.begin_import() {
            Ok(s) => s,
            Err(e @ StorageError::Contract(_)) => return Err(e),
            Err(e) => return Err(outcome.fail(Side::Primary, "begin_import", e)),
        };
        let mirror_sink = match mirror.begin_import() {
            Ok(s) => s,
            Err(e) => return Err(outcome.fail(Side::Mirror, "begin_import", e)),
        };
        Ok(Box::new(PairImportSink::new(primary_sink, mirror_sink, outcome, "import", reserved)))
    }
}
