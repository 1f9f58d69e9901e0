//! `dual_write` (DESIGN §7, check 7): both sides of a dual-write pair equal the model, and
//! after a crash a divergence is detected or repaired.
//!
//! **What it verifies.** A pair subject ([`crate::sim::engine::subject::Subject::Pair`];
//! every ordered pair of registered families, a family with itself included) starts its
//! history on the primary alone; at a join step (a quarter of the way in) a mirror is
//! bootstrapped from it, as a migration would, and from then on:
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
//! **What not.** Under a dishonest disk (lying fsync, media faults) the
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
//!
//! **When.** After every step once the mirror has joined (the runner's comparisons ask
//! [`crate::sim::checks::model_equality`]'s questions of the mirror), after the join itself,
//! after every reopen and power loss of a joined pair ([`reopen_problem`]), and in
//! exhaustive mode around every mutation after the join.

use std::sync::Arc;

use crate::contract::StorageError;
use crate::dual_write::{DualFamily, Recovery};
use crate::sim::checks::{injected, read_only, CheckName};
use crate::sim::engine::subject::PairFamily;
use crate::state::{first_difference, RaftState};
use crate::vfs::{EnumerateOptions, FaultPlan, Mark, SimDisk, VfsHandle};

/// What reopening a joined pair found, for the dual-write check.
#[derive(Debug)]
pub struct PairReopened {
    /// The mirror's state before any repair (`None`: not inspected, or it failed to open;
    /// `Err`: it failed to read).
    pub mirror_before: Option<Result<RaftState, String>>,
    /// Why the mirror failed to open, if it did.
    pub mirror_open_error: Option<StorageError>,
    /// What recovery did.
    pub recovery: Recovery,
    /// Whether the disk injected a fault while the pair was reopened and recovered.
    pub fault_during_recovery: bool,
}

/// The dual-write check after a reopen: before any repair a durable mirror held a state in
/// `mirror_candidates` (inspected on an honest disk only), and recovery's verdict is one the
/// situation allows. `faulty`: the disk can inject faults, so a mirror that failed to open
/// with an injected error failed closed. `None` when both hold. (That the mirror then equals
/// the model is the caller's full comparison.)
pub fn reopen_problem(
    reopened: &PairReopened,
    mirror_candidates: &[RaftState],
    context: RecoveryContext,
    faulty: bool,
) -> Option<String> {
    let problem = match &reopened.mirror_before {
        Some(Ok(state)) if mirror_candidates.contains(state) => None,
        Some(Ok(state)) => Some(format!(
            "before repair the mirror held a state the atomicity table does not allow (a \
             mutation the pair acknowledged is not durable on the mirror?){}",
            differences(state, mirror_candidates)
        )),
        Some(Err(e)) => Some(format!("the reopened mirror could not be read: {e}")),
        None => match &reopened.mirror_open_error {
            // Opening may write (a database engine's crash repair) and meet an injected
            // EIO or ENOSPC: the mirror failing closed then is no bug.
            Some(e) if faulty && injected(e) => None,
            Some(e) if context.mirror_durable && !context.dishonest => {
                Some(format!("the mirror failed to open again on an honest disk: {e}"))
            }
            _ => None,
        },
    };
    problem.or_else(|| recovery_verdict(&reopened.recovery, context).err())
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
    /// Before repair the mirror held the fresh (empty) state, and that was a state the
    /// checks allowed it: a mirror bootstrapped from an empty primary, then behind by the
    /// in-flight mutation.
    pub mirror_was_fresh: bool,
}

/// Whether `recovery` is a verdict the situation allows; `Err` says why not.
///
/// - `equivalent`: always.
/// - `repaired`: after a power loss (the in-flight mutation), or when a side is volatile
///   (it came back empty); never after a clean reopen of two durable sides.
/// - `bootstrapped` (an empty mirror): a volatile mirror, or a durable one whose allowed
///   state was the empty one (an empty instance is a fresh one: no state tells a committed
///   import of an empty primary from no import, so recovery's rule for an empty mirror,
///   bootstrap it, applies; nothing was lost).
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
        Recovery::Bootstrapped => !context.mirror_durable || context.mirror_was_fresh,
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
        let primary_family = self.pair.primary_family();
        let probe = read_only::probe(primary_family.as_ref(), &primary_location, disk);
        let dual = |what: String| (CheckName::DualWrite, what);
        let primary_durable = self.pair.primary_family().durable();
        let mirror_durable = self.pair.mirror_family().durable();
        let sides = self
            .pair
            .open_sides(self.location, vfs.clone())
            .map_err(|e| (CheckName::CrashAtomicity, format!("the pair failed to open: {e}")))?;
        let mut mirror_was_fresh = false;
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
            mirror_was_fresh = state == RaftState::new();
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
            mirror_was_fresh,
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
