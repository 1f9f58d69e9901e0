//! Migration between families (DESIGN §6) as a state machine a Raft node drives:
//!
//! ```text
//! Planned ──bootstrap──► Bootstrapped ──start_dual_write──► DualWriting ──validate──► Validated
//!    │                        │                                  │                        │
//!    └────────────────────────┴──────────roll_back───────────────┴────────────────────────┤
//!                                                                                         ▼
//!                                              RolledBack ◄─roll_back─   cut_over ──► CutOver
//! ```
//!
//! - **Planned**: the node runs on the source alone; the destination must be empty.
//! - **Bootstrapped**: a pinned cut of the source (`begin_export`) was streamed into the
//!   destination through its atomic import. The node may go on writing the source meanwhile.
//! - **DualWriting**: the source (primary) and destination (mirror) form a [`DualWrite`]
//!   pair; entering it catches the destination up with whatever the source did since the
//!   cut, by the dual-write repair rules (an appended suffix, truncations, a meta save, a
//!   snapshot publish). From here every mutation reaches both.
//! - **Validated**: the streaming validator found the two equivalent. The pair keeps dual
//!   writing, so equivalence holds as long as the pair does not diverge.
//! - **CutOver**: the destination alone is the node's storage; the source is handed back to
//!   be retired. There is no way back from here.
//! - **RolledBack**: the source alone is the node's storage again; the destination is handed
//!   back to be discarded. Possible from every phase before `CutOver`: until then the source
//!   has received every mutation, so it is always a complete rollback target.
//!
//! At every phase [`Migration::storage_mut`] is the storage the node must use. The phase is
//! serializable so a node can persist it; [`Migration::resume`] re-enters a phase after a
//! restart (a pair is recovered, and must be validated again).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::contract::{ContractError, RaftStorage, StorageError};
use crate::dual_write::{
    bootstrap_into, BootstrapProgress, BootstrapSummary, DualWrite, DualWriteError, Recovery,
    Unpaired,
};
use crate::families::memory::{non_empty_reason, MemoryStorage};
use crate::validate::{compare_with_progress, Comparison, Progress};

/// Where a migration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The destination is empty; the source alone is in use.
    Planned,
    /// The destination holds a bootstrapped cut of the source.
    Bootstrapped,
    /// Source and destination are a dual-write pair.
    DualWriting,
    /// The pair was validated equivalent.
    Validated,
    /// The destination alone is in use; the source was retired.
    CutOver,
    /// The source alone is in use; the destination was abandoned.
    RolledBack,
}

impl Phase {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Planned => "planned",
            Phase::Bootstrapped => "bootstrapped",
            Phase::DualWriting => "dual_writing",
            Phase::Validated => "validated",
            Phase::CutOver => "cut_over",
            Phase::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a migration step was refused or failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The step does not exist in the current phase.
    #[error("cannot {step} in phase {phase}")]
    WrongPhase {
        /// The step asked for.
        step: &'static str,
        /// The phase the migration is in.
        phase: Phase,
    },
    /// Validation found the destination different from the source.
    #[error("the destination is not equivalent to the source: {difference}")]
    NotEquivalent {
        /// The first difference, source first.
        difference: String,
    },
    /// A storage call failed (the migration stays in its phase).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What the migration holds in each phase.
enum Holding {
    /// Planned, Bootstrapped.
    Apart { source: Box<dyn RaftStorage>, destination: Box<dyn RaftStorage> },
    /// DualWriting, Validated.
    Paired(DualWrite),
    /// CutOver (the destination), RolledBack (the source).
    Alone(Box<dyn RaftStorage>),
}

/// A migration from a source instance to a destination instance of any families.
pub struct Migration {
    phase: Phase,
    holding: Holding,
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration").field("phase", &self.phase).finish()
    }
}

impl Migration {
    /// Plans a migration from `source` to `destination`, which must be empty
    /// ([`ContractError::NotEmpty`] otherwise, with both instances handed back).
    pub fn plan(
        source: Box<dyn RaftStorage>,
        destination: Box<dyn RaftStorage>,
    ) -> Result<Migration, Unpaired> {
        let refusal = match non_empty_reason(destination.as_ref()) {
            Ok(None) => None,
            Ok(Some(what)) => Some(ContractError::NotEmpty { what }.into()),
            Err(e) => Some(e),
        };
        match refusal {
            Some(error) => Err(Unpaired { error, primary: source, mirror: destination }),
            None => Ok(Migration {
                phase: Phase::Planned,
                holding: Holding::Apart { source, destination },
            }),
        }
    }

    /// Re-enters `phase` after a restart with the reopened instances. `Planned` checks the
    /// destination is still empty; `DualWriting` and `Validated` recover the pair
    /// ([`DualWrite::recover`]) and resume at `DualWriting` (validate again before cutting
    /// over); `CutOver` keeps the destination and `RolledBack` the source.
    pub fn resume(
        phase: Phase,
        source: Box<dyn RaftStorage>,
        destination: Box<dyn RaftStorage>,
    ) -> Result<(Migration, Option<Recovery>), Unpaired> {
        let holding = match phase {
            Phase::Planned => return Migration::plan(source, destination).map(|m| (m, None)),
            Phase::Bootstrapped => Holding::Apart { source, destination },
            Phase::DualWriting | Phase::Validated => {
                let (pair, recovery) = DualWrite::recover(source, destination)?;
                let migration =
                    Migration { phase: Phase::DualWriting, holding: Holding::Paired(pair) };
                return Ok((migration, Some(recovery)));
            }
            Phase::CutOver => Holding::Alone(destination),
            Phase::RolledBack => Holding::Alone(source),
        };
        Ok((Migration { phase, holding }, None))
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The storage the node must use now: the source (before dual writing and after a
    /// rollback), the pair (while dual writing), or the destination (after cut-over).
    pub fn storage(&self) -> &dyn RaftStorage {
        match &self.holding {
            Holding::Apart { source, .. } => source.as_ref(),
            Holding::Paired(pair) => pair,
            Holding::Alone(storage) => storage.as_ref(),
        }
    }

    /// As [`Migration::storage`], for mutations.
    pub fn storage_mut(&mut self) -> &mut dyn RaftStorage {
        match &mut self.holding {
            Holding::Apart { source, .. } => source.as_mut(),
            Holding::Paired(pair) => pair,
            Holding::Alone(storage) => storage.as_mut(),
        }
    }

    /// The dual-write pair while dual writing (to revalidate it after a divergence).
    pub fn pair_mut(&mut self) -> Option<&mut DualWrite> {
        match &mut self.holding {
            Holding::Paired(pair) => Some(pair),
            _ => None,
        }
    }

    /// `Planned → Bootstrapped`: pins a cut of the source and streams it into the empty
    /// destination through one atomic import. On failure the destination is empty again and
    /// the migration stays `Planned`.
    pub fn bootstrap(
        &mut self,
        on_progress: &mut dyn FnMut(&BootstrapProgress),
    ) -> Result<BootstrapSummary, MigrationError> {
        self.expect(&[Phase::Planned], "bootstrap")?;
        let Holding::Apart { source, destination } = &mut self.holding else {
            return Err(self.wrong("bootstrap"));
        };
        let cut = source.begin_export()?;
        let summary = bootstrap_into(cut.as_ref(), destination.as_mut(), on_progress)?;
        self.phase = Phase::Bootstrapped;
        Ok(summary)
    }

    /// `Bootstrapped → DualWriting`: pairs source and destination, catching the destination
    /// up with what the source did since the cut (the dual-write repair rules). If that is
    /// beyond the rules, the migration stays `Bootstrapped` and can only be rolled back.
    pub fn start_dual_write(&mut self) -> Result<Recovery, MigrationError> {
        self.expect(&[Phase::Bootstrapped], "start dual writing")?;
        match self.take() {
            Holding::Apart { source, destination } => match DualWrite::recover(source, destination)
            {
                Ok((pair, recovery)) => {
                    self.holding = Holding::Paired(pair);
                    self.phase = Phase::DualWriting;
                    Ok(recovery)
                }
                Err(Unpaired { error, primary, mirror }) => {
                    self.holding = Holding::Apart { source: primary, destination: mirror };
                    Err(error.into())
                }
            },
            other => {
                self.holding = other;
                Err(self.wrong("start dual writing"))
            }
        }
    }

    /// `DualWriting → Validated`: compares source and destination with the streaming
    /// validator. A difference (or a diverged pair) leaves the migration `DualWriting`.
    pub fn validate(
        &mut self,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<Comparison, MigrationError> {
        self.expect(&[Phase::DualWriting, Phase::Validated], "validate")?;
        let Holding::Paired(pair) = &self.holding else { return Err(self.wrong("validate")) };
        if let Some(since) = pair.diverged() {
            self.phase = Phase::DualWriting;
            return Err(StorageError::from(DualWriteError::Diverged { since: since.into() }).into());
        }
        let comparison = compare_with_progress(pair.primary(), pair.mirror(), on_progress)?;
        match &comparison.difference {
            None => {
                self.phase = Phase::Validated;
                Ok(comparison)
            }
            Some(difference) => {
                self.phase = Phase::DualWriting;
                Err(MigrationError::NotEquivalent { difference: difference.clone() })
            }
        }
    }

    /// `Validated → CutOver`: the destination alone becomes the node's storage; the old
    /// source is returned to be retired. Refused if the pair diverged since validation.
    pub fn cut_over(&mut self) -> Result<Box<dyn RaftStorage>, MigrationError> {
        self.expect(&[Phase::Validated], "cut over")?;
        if let Holding::Paired(pair) = &self.holding {
            if let Some(since) = pair.diverged() {
                self.phase = Phase::DualWriting;
                let error = DualWriteError::Diverged { since: since.into() };
                return Err(StorageError::from(error).into());
            }
        }
        match self.take() {
            Holding::Paired(pair) => {
                let (source, destination) = pair.into_parts();
                self.holding = Holding::Alone(destination);
                self.phase = Phase::CutOver;
                Ok(source)
            }
            other => {
                self.holding = other;
                Err(self.wrong("cut over"))
            }
        }
    }

    /// Any phase before `CutOver` → `RolledBack`: the source alone is the node's storage
    /// again; the destination is returned to be discarded.
    pub fn roll_back(&mut self) -> Result<Box<dyn RaftStorage>, MigrationError> {
        let before_cut_over =
            [Phase::Planned, Phase::Bootstrapped, Phase::DualWriting, Phase::Validated];
        self.expect(&before_cut_over, "roll back")?;
        let (source, destination) = match self.take() {
            Holding::Apart { source, destination } => (source, destination),
            Holding::Paired(pair) => pair.into_parts(),
            other => {
                self.holding = other;
                return Err(self.wrong("roll back"));
            }
        };
        self.holding = Holding::Alone(source);
        self.phase = Phase::RolledBack;
        Ok(destination)
    }

    fn expect(&self, phases: &[Phase], step: &'static str) -> Result<(), MigrationError> {
        if phases.contains(&self.phase) {
            Ok(())
        } else {
            Err(self.wrong(step))
        }
    }

    fn wrong(&self, step: &'static str) -> MigrationError {
        MigrationError::WrongPhase { step, phase: self.phase }
    }

    /// Takes what the migration holds, leaving a placeholder (an empty memory instance) that
    /// every caller replaces before it returns.
    fn take(&mut self) -> Holding {
        std::mem::replace(&mut self.holding, Holding::Alone(Box::new(MemoryStorage::new())))
    }
}
