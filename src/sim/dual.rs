//! The dual-write check (DESIGN §7, check 7) and what the harness runs it on.
//!
//! **What it verifies.** A [`Subject`] is either one family or a dual-write pair of two
//! families ([`PairFamily`]; every ordered pair of registered families, a family with itself
//! included). A pair's history starts on the primary alone; at a join step (a quarter of the
//! way in) a mirror is bootstrapped from it, as a migration would, and from then on:
//! - after every step the mirror equals the model (quickly, then in full at the runner's full
//!   checks), exactly as the primary must — a mirror that missed a mutation, or was never
//!   bootstrapped, fails here at once;
//! - after every power loss, before any repair, a durable mirror must hold a state the
//!   atomicity table allows for the step (the primary's candidates: before the in-flight
//!   mutation, any prefix of an append, after it): a mirror that lost an acknowledged
//!   mutation fails here even though recovery could repair it;
//! - recovery's verdict must be one the situation allows ([`recovery_verdict`]), and after it
//!   the mirror must equal the recovered primary: a divergence is detected or repaired,
//!   never carried.
//!
//! **What it does not verify.** Under a dishonest disk (lying fsync, media faults) the
//! mirror's pre-repair state is not checked (any state may come back) and a fresh bootstrap
//! is always an acceptable verdict; the mirror is then only required to equal the primary
//! after recovery.
//!
//! **Exhaustive mode** (`qk soak --exhaustive` on a pair) enumerates, around every mutation
//! after the join, every crash point and every subset of pending disk operations of *both*
//! sides ([`PairCrashCheck`]). Both sides live on the one simulated disk (`LOC/primary`,
//! `LOC/mirror.N`), as they would on one machine, so one enumeration of that disk is the
//! product of both sides' crash states: a crash point between the primary's write and the
//! mirror's, or inside the mirror's, is one of them. Every crash state is then checked as a
//! real power loss is: a durable mirror's state before repair, recovery's verdict, the
//! recovered primary against the atomicity table, and the mirror against the primary after
//! recovery. The bound is the disk enumeration's own (`--subset-max` pending units per
//! point enumerated in full, sampled beyond, the empty and the full subset always included):
//! the pair's sides write one after the other and each syncs before the call moves on, so
//! the units pending at a point are mostly one side's and the bound rarely bites harder than
//! for a single family. Before the join the primary alone is enumerated (reopened alone, as
//! after a power loss then); the join's own bootstrap is not enumerated (a crash during it
//! leaves a partial mirror generation that the next join skips).

use std::sync::Arc;

use crate::contract::{Family, RaftStorage, StateView, StorageResult};
use crate::dual_write::{DualFamily, DualWrite, Recovery, Sides};
use crate::families::Registry;
use crate::sim::check::CheckName;
use crate::sim::read_only_check;
use crate::state::{first_difference, RaftState};
use crate::vfs::{EnumerateOptions, FaultPlan, Mark, SimDisk, VfsHandle};

/// A dual-write pair of families as the harness drives it: the primary alone, the join
/// (bootstrap of a mirror), and reopening with recovery.
pub trait PairFamily: Send + Sync {
    /// `primary+mirror`.
    fn name(&self) -> String;
    /// The primary's family.
    fn primary_family(&self) -> Arc<dyn Family>;
    /// The mirror's family.
    fn mirror_family(&self) -> Arc<dyn Family>;
    /// Opens the primary alone, before a mirror joins it.
    fn open_primary(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>>;
    /// A mirror joins `primary`: a fresh one, bootstrapped from it.
    fn join(
        &self,
        primary: Box<dyn RaftStorage>,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Box<dyn PairInstance>>;
    /// Reopens both sides of a joined pair, unpaired (so the mirror can be inspected before
    /// any repair).
    fn open_sides(&self, location: &str, vfs: VfsHandle) -> StorageResult<Sides>;
    /// Pairs reopened sides: validation and repair (or a fresh mirror).
    fn recover(
        &self,
        sides: Sides,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<(Box<dyn PairInstance>, Recovery)>;
    /// The pair as a plain family (opening recovers), for checks that reopen on forked disks.
    fn as_family(&self) -> Arc<dyn Family>;
}

/// A live pair as the harness sees it: the contract, and the mirror to check.
pub trait PairInstance: Send {
    /// The pair as a storage instance.
    fn storage(&self) -> &dyn RaftStorage;
    /// The pair as a storage instance, for mutations.
    fn storage_mut(&mut self) -> &mut dyn RaftStorage;
    /// The mirror, read directly.
    fn mirror(&self) -> &dyn StateView;
}

impl PairInstance for DualWrite {
    fn storage(&self) -> &dyn RaftStorage {
        self
    }

    fn storage_mut(&mut self) -> &mut dyn RaftStorage {
        self
    }

    fn mirror(&self) -> &dyn StateView {
        DualWrite::mirror(self)
    }
}

impl PairFamily for DualFamily {
    fn name(&self) -> String {
        DualFamily::name(self)
    }

    fn primary_family(&self) -> Arc<dyn Family> {
        DualFamily::primary_family(self).clone()
    }

    fn mirror_family(&self) -> Arc<dyn Family> {
        DualFamily::mirror_family(self).clone()
    }

    fn open_primary(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        DualFamily::open_primary(self, location, vfs)
    }

    fn join(
        &self,
        primary: Box<dyn RaftStorage>,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Box<dyn PairInstance>> {
        Ok(Box::new(DualFamily::join(self, primary, location, vfs)?))
    }

    fn open_sides(&self, location: &str, vfs: VfsHandle) -> StorageResult<Sides> {
        DualFamily::open_sides(self, location, vfs)
    }

    fn recover(
        &self,
        sides: Sides,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<(Box<dyn PairInstance>, Recovery)> {
        let (pair, recovery) = self.recover_sides(sides, location, vfs)?;
        Ok((Box::new(pair), recovery))
    }

    fn as_family(&self) -> Arc<dyn Family> {
        Arc::new(self.clone())
    }
}

/// What a history runs against.
#[derive(Clone)]
pub enum Subject {
    /// One family's instance.
    Family(Arc<dyn Family>),
    /// A dual-write pair.
    Pair(Arc<dyn PairFamily>),
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subject({})", self.name())
    }
}

impl Subject {
    /// A pair of two families.
    pub fn pair(primary: Arc<dyn Family>, mirror: Arc<dyn Family>) -> Subject {
        Subject::Pair(Arc::new(DualFamily::new(primary, mirror)))
    }

    /// The family's scheme, or the pair's `primary+mirror`.
    pub fn name(&self) -> String {
        match self {
            Subject::Family(f) => f.scheme().to_string(),
            Subject::Pair(p) => p.name(),
        }
    }

    /// Whether the state the subject shows survives a restart (a pair shows its primary's).
    pub fn durable(&self) -> bool {
        match self {
            Subject::Family(f) => f.durable(),
            Subject::Pair(p) => p.primary_family().durable(),
        }
    }

    /// Whether any instance of the subject keeps state across a restart.
    pub fn any_durable(&self) -> bool {
        match self {
            Subject::Family(f) => f.durable(),
            Subject::Pair(p) => p.primary_family().durable() || p.mirror_family().durable(),
        }
    }

    /// The subject as a plain family (a pair opens and recovers as one).
    pub fn as_family(&self) -> Arc<dyn Family> {
        match self {
            Subject::Family(f) => f.clone(),
            Subject::Pair(p) => p.as_family(),
        }
    }

    /// Every ordered pair of `families`, a family with itself included, primary-major.
    pub fn pairs_of(families: &[Arc<dyn Family>]) -> Vec<Subject> {
        let mut pairs = Vec::new();
        for primary in families {
            for mirror in families {
                pairs.push(Subject::pair(primary.clone(), mirror.clone()));
            }
        }
        pairs
    }

    /// Every registered family, then every ordered pair of them.
    pub fn every(registry: &Registry) -> Vec<Subject> {
        let mut all: Vec<Subject> =
            registry.families().iter().cloned().map(Subject::Family).collect();
        all.extend(Subject::pairs_of(registry.families()));
        all
    }

    /// The subject called `name` in `registry`: a scheme, or `primary+mirror`.
    pub fn find(registry: &Registry, name: &str) -> Option<Subject> {
        match name.split_once('+') {
            None => registry.family(name).cloned().map(Subject::Family),
            Some((primary, mirror)) => {
                let primary = registry.family(primary)?.clone();
                let mirror = registry.family(mirror)?.clone();
                Some(Subject::pair(primary, mirror))
            }
        }
    }
}

/// Everything [`recovery_verdict`] weighs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryContext {
    /// Recovery followed a power loss (not a clean reopen).
    pub after_crash: bool,
    /// The primary's family keeps state across a restart.
    pub primary_durable: bool,
    /// The mirror's family keeps state across a restart.
    pub mirror_durable: bool,
    /// The disk may lose or corrupt acknowledged data.
    pub dishonest: bool,
    /// The disk injected a fault while recovery ran (a repair call may have failed).
    pub fault_during_recovery: bool,
}

/// Whether `recovery` is a verdict the situation allows; `Err` says why not.
///
/// - `equivalent`: always.
/// - `repaired`: after a power loss (the in-flight mutation), or when a side is volatile
///   (it came back empty); never after a clean reopen of two durable sides.
/// - `bootstrapped` (an empty mirror): only a volatile mirror comes back empty.
/// - `rebootstrapped` (a fresh mirror in place of one beyond repair): only when the primary
///   is volatile (a durable mirror then holds what the primary lost), since on an honest
///   disk a durable pair is always within the repair rules.
///
/// A dishonest disk, or a fault injected during recovery itself, allows any verdict: the
/// divergence was detected, which is all the contract asks then.
pub fn recovery_verdict(recovery: &Recovery, context: RecoveryContext) -> Result<(), String> {
    if context.dishonest || context.fault_during_recovery {
        return Ok(());
    }
    let volatile_side = !context.primary_durable || !context.mirror_durable;
    let allowed = match recovery {
        Recovery::Equivalent => true,
        Recovery::Repaired { .. } => context.after_crash || volatile_side,
        Recovery::Bootstrapped => !context.mirror_durable,
        Recovery::Rebootstrapped { .. } => !context.primary_durable,
    };
    if allowed {
        return Ok(());
    }
    let when = if context.after_crash { "after a power loss" } else { "after a clean reopen" };
    Err(format!(
        "recovery {when} gave `{recovery}`, which a pair of a {} primary and a {} mirror on an \
         honest disk never needs",
        if context.primary_durable { "durable" } else { "volatile" },
        if context.mirror_durable { "durable" } else { "volatile" },
    ))
}

/// A pair's primary alone, as a family: opening it opens the primary the way a pair does
/// before its mirror joins ([`PairFamily::open_primary`]). For checks that reopen the primary
/// on forked disks before the join.
pub struct LonePrimary(pub Arc<dyn PairFamily>);

impl Family for LonePrimary {
    fn scheme(&self) -> &'static str {
        self.0.primary_family().scheme()
    }

    fn durable(&self) -> bool {
        self.0.primary_family().durable()
    }

    fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        self.0.open_primary(location, vfs)
    }
}

/// Exhaustive crash check of a joined pair around one mutation (see the module doc): every
/// crash state of the pair's disk since a mark, each reopened and judged as a real power
/// loss is by the runner. On an honest disk only (enumerated crash states inject no fault).
pub struct PairCrashCheck<'a> {
    /// The pair.
    pub pair: &'a dyn PairFamily,
    /// Where the pair lives.
    pub location: &'a str,
    /// States allowed while the call had not yet returned (before, prefixes, after).
    pub before: &'a [RaftState],
    /// The state after the call returned: the only one allowed from then on.
    pub after: &'a RaftState,
}

impl PairCrashCheck<'_> {
    /// Enumerates the crash states of `disk` since `mark` (the call returned after disk op
    /// `returned_at`) and checks each: a durable mirror holds, before repair, a state the
    /// atomicity table allows (`dual_write`); recovery succeeds with a verdict
    /// [`recovery_verdict`] allows (`dual_write`); the recovered primary holds an allowed state
    /// (`crash_atomicity`; empty for a volatile primary); the mirror then equals it
    /// (`dual_write`). Returns how many states were checked, or the first failed check.
    /// Ends the mark's recording.
    pub fn verify(
        &self,
        disk: &SimDisk,
        mark: Mark,
        returned_at: u64,
        options: &EnumerateOptions,
    ) -> Result<u64, (CheckName, String)> {
        let states = disk
            .crash_states(mark, options.clone())
            .map_err(|e| (CheckName::CrashAtomicity, e.to_string()))?;
        let mut checked = 0u64;
        for crash in states {
            checked += 1;
            let allowed = if crash.after_op >= returned_at {
                std::slice::from_ref(self.after)
            } else {
                self.before
            };
            crash.disk.set_fault_plan(FaultPlan::none());
            if let Err((check, what)) = self.check_one(&crash.disk, allowed) {
                return Err((
                    check,
                    format!(
                        "crash after disk op {} ({} pending, kept {:?}) of the pair's disk: \
                         {what}\ndisk trace:\n{}",
                        crash.after_op,
                        crash.pending_units,
                        crash.kept,
                        disk.trace_tail(40)
                    ),
                ));
            }
        }
        Ok(checked)
    }

    /// Reopens one crash state of the pair and checks it against `allowed` (and the
    /// primary's read-only open, made first, against what it recovered: `read_only`).
    fn check_one(
        &self,
        disk: &Arc<SimDisk>,
        allowed: &[RaftState],
    ) -> Result<(), (CheckName, String)> {
        let vfs: VfsHandle = disk.clone();
        let primary_location = DualFamily::primary_location(self.location);
        let probe =
            read_only_check::probe(self.pair.primary_family().as_ref(), &primary_location, disk);
        let dual = |what: String| (CheckName::DualWrite, what);
        let primary_durable = self.pair.primary_family().durable();
        let mirror_durable = self.pair.mirror_family().durable();
        let sides = self
            .pair
            .open_sides(self.location, vfs.clone())
            .map_err(|e| (CheckName::CrashAtomicity, format!("the pair failed to open: {e}")))?;
        if mirror_durable {
            let mirror = sides.mirror.as_ref().map_err(|e| {
                dual(format!("the mirror failed to open again on an honest disk: {e}"))
            })?;
            let state = RaftState::capture(mirror.as_ref())
                .map_err(|e| dual(format!("the reopened mirror could not be read: {e}")))?;
            if !allowed.contains(&state) {
                return Err(dual(format!(
                    "before repair the mirror held a state the atomicity table does not allow \
                     (a mutation the pair acknowledged is not durable on the mirror?){}",
                    differences(&state, allowed)
                )));
            }
        }
        let (instance, recovery) = self
            .pair
            .recover(sides, self.location, vfs)
            .map_err(|e| dual(format!("the pair could not be recovered: {e}")))?;
        let context = RecoveryContext {
            after_crash: true,
            primary_durable,
            mirror_durable,
            dishonest: false,
            fault_during_recovery: false,
        };
        recovery_verdict(&recovery, context).map_err(dual)?;
        let recovered = RaftState::capture(instance.storage()).map_err(|e| {
            (CheckName::CrashAtomicity, format!("reading the recovered pair failed: {e}"))
        })?;
        let fresh = [RaftState::new()];
        let expected = if primary_durable { allowed } else { &fresh[..] };
        if !expected.contains(&recovered) {
            return Err((
                CheckName::CrashAtomicity,
                format!(
                    "the recovered primary holds a state the atomicity table does not allow{}",
                    differences(&recovered, expected)
                ),
            ));
        }
        probe.judge(&recovered, false).map_err(|what| (CheckName::ReadOnly, what))?;
        let mirror = RaftState::capture(instance.mirror())
            .map_err(|e| dual(format!("reading the recovered mirror failed: {e}")))?;
        match first_difference(&mirror, &recovered) {
            None => Ok(()),
            Some(d) => Err(dual(format!("after recovery ({recovery}) mirror vs primary: {d}"))),
        }
    }
}

/// `; vs allowed state N: DIFFERENCE` for each allowed state.
fn differences(state: &RaftState, allowed: &[RaftState]) -> String {
    allowed
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                "; vs allowed state {}: {}",
                i + 1,
                first_difference(state, a).unwrap_or_default()
            )
        })
        .collect()
}
