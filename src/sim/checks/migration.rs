//! `migration` (DESIGN §7, check 12): a migration driven as a soak subject keeps its promises
//! (`crate::sim::engine::migration` drives it).
//!
//! **What it verifies.**
//! - Until cut-over the source — the rollback target — equals the model after every step
//!   (what a call can have changed after each call, the whole state every
//!   `full_check_every` steps and after every migration step, reopen and power loss).
//! - Each step is accepted exactly in the phases where it exists ([`step_exists`]) and
//!   refused elsewhere with `MigrationError::WrongPhase` naming the step and phase; where it
//!   exists it is refused only for its documented reasons ([`expected_refusal`]): validation
//!   and cut-over of a diverged pair with `Diverged`, validation of a pair that differs with
//!   `NotEquivalent` (and only when the destination really differs from the model), dual
//!   writing beyond the repair rules with `NeedsBootstrap`.
//! - Cut-over is accepted only on a pair validated since it last formed (so never on a pair
//!   just recovered after a restart, mid-repair) and not diverged since ([`cut_over_problem`]).
//! - A validation that passes leaves a destination equal to the model.
//! - After cut-over the node's storage is the destination's family and equals the model,
//!   across reopens; after a rollback it is the source's and equals the model.
//!
//! **What it does not verify.** Progress reports and bootstrap summaries; migrations under
//! media faults (a migration runs on the honest part of the seed's plan); a node's own
//! persistence of the phase (the harness keeps it, written when a step returns).

use crate::contract::StorageError;
use crate::dual_write::DualWriteError;
use crate::migrate::{MigrationError, Phase};
use crate::sim::engine::ops::MigrateStep;

/// Whether `step` exists in `phase` (the state machine of `crate::migrate`).
pub fn step_exists(step: MigrateStep, phase: Phase) -> bool {
    match step {
        MigrateStep::Begin => phase == Phase::Planned,
        MigrateStep::DualWrite => phase == Phase::Bootstrapped,
        MigrateStep::Validate => matches!(phase, Phase::DualWriting | Phase::Validated),
        MigrateStep::CutOver => phase == Phase::Validated,
        MigrateStep::RollBack => !matches!(phase, Phase::CutOver | Phase::RolledBack),
    }
}

/// The step's name in `MigrationError::WrongPhase`.
pub fn step_name(step: MigrateStep) -> &'static str {
    match step {
        MigrateStep::Begin => "bootstrap",
        MigrateStep::DualWrite => "start dual writing",
        MigrateStep::Validate => "validate",
        MigrateStep::CutOver => "cut over",
        MigrateStep::RollBack => "roll back",
    }
}

/// The refusal a step may meet on an honest disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// `WrongPhase` naming the step and the phase.
    WrongPhase,
    /// `Diverged`: the pair diverged since it formed.
    Diverged,
    /// Validation: `NotEquivalent` (the caller checks the sides really differ).
    NotEquivalent,
    /// Dual writing beyond the repair rules: `NeedsBootstrap`.
    NeedsBootstrap,
    /// None: the step must succeed.
    None,
}

/// The refusal `step` may meet in `phase` (the pair diverged or not).
pub fn expected_refusal(step: MigrateStep, phase: Phase, diverged: bool) -> Expected {
    if !step_exists(step, phase) {
        return Expected::WrongPhase;
    }
    match step {
        MigrateStep::Validate | MigrateStep::CutOver if diverged => Expected::Diverged,
        MigrateStep::Validate => Expected::NotEquivalent,
        MigrateStep::DualWrite => Expected::NeedsBootstrap,
        _ => Expected::None,
    }
}

/// What is wrong with `step` in `phase` being refused with `e`, when `expected` is the
/// refusal it may meet.
pub fn refusal_problem(
    step: MigrateStep,
    phase: Phase,
    e: &MigrationError,
    expected: Expected,
) -> Option<String> {
    let fits = match (expected, e) {
        (Expected::WrongPhase, MigrationError::WrongPhase { step: s, phase: p }) => {
            *s == step_name(step) && *p == phase
        }
        (Expected::Diverged, MigrationError::Storage(StorageError::DualWrite(d))) => {
            matches!(d, DualWriteError::Diverged { .. })
        }
        (Expected::NotEquivalent, MigrationError::NotEquivalent { .. }) => true,
        (Expected::NeedsBootstrap, MigrationError::Storage(StorageError::DualWrite(d))) => {
            matches!(d, DualWriteError::NeedsBootstrap { .. })
        }
        _ => false,
    };
    (!fits).then(|| {
        let due = match expected {
            Expected::WrongPhase => format!(
                "the refusal due is WrongPhase {{ step: {:?}, phase: {phase} }}",
                step_name(step)
            ),
            Expected::Diverged => "the refusal due is Diverged".to_string(),
            Expected::NotEquivalent => "only NotEquivalent may refuse it".to_string(),
            Expected::NeedsBootstrap => "only NeedsBootstrap may refuse it".to_string(),
            Expected::None => "it must succeed".to_string(),
        };
        format!("{}() in phase {phase} was refused with \"{e}\", but {due}", step.op_name())
    })
}

/// What is wrong with a cut-over being accepted, given whether the pair was validated since
/// it last formed and whether it diverged since.
pub fn cut_over_problem(validated: bool, diverged: bool) -> Option<String> {
    if diverged {
        return Some("cut-over accepted on a diverged pair".to_string());
    }
    (!validated).then(|| {
        "cut-over accepted on a pair not validated since it formed (never validated, or \
         recovered after a restart and not validated again)"
            .to_string()
    })
}

/// A difference of the node's view from the model (`difference`), as this check words it
/// for `phase`: the rollback target before cut-over, the destination after it, the source
/// after a rollback.
pub fn view_problem(phase: Phase, difference: &str) -> Option<String> {
    Some(match phase {
        Phase::CutOver => {
            format!("after cut-over the destination misses acknowledged writes: {difference}")
        }
        Phase::RolledBack => format!("after the rollback the source differs: {difference}"),
        _ => format!("the rollback target is not complete in phase {phase}: {difference}"),
    })
}
