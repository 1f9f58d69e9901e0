//! Exhaustive mode: around every mutation, every crash state of the disk since a mark taken
//! before the call — a family's instance, a pair's primary alone before the join, both sides
//! of a joined pair — reopened and judged by `crash_atomicity` (and, on a pair,
//! `dual_write`; on a local directory outside a joined pair, `braft_view`). Only on an
//! honest plan and when no crash point is armed.

use std::sync::Arc;

use super::{Runner, Stop};
use crate::contract::Family;
use crate::sim::checks::crash_atomicity::{allowed_after_unacknowledged, CrashCheck};
use crate::sim::checks::dual_write::PairCrashCheck;
use crate::sim::checks::{panic, CheckName};
use crate::sim::engine::ops::{Action, Op};
use crate::sim::engine::subject::{LonePrimary, Subject};
use crate::state::RaftState;
use crate::vfs::{EnumerateOptions, Mark, SimDisk};

/// A mark taken before a call, to enumerate the crash states the call can leave.
pub(super) struct Enumeration {
    options: EnumerateOptions,
    disk: Arc<SimDisk>,
    mark: Mark,
    /// The model's state before the call.
    before: RaftState,
}

impl Runner {
    /// Marks the disk before a call when exhaustive mode has something to enumerate there.
    pub(super) fn enumeration(&self, armed: bool) -> Option<Enumeration> {
        // Enumerated crash states are honest; under a dishonest plan the disk already carries
        // media-fault overlays that a fork inherits, so exhaustive checks need an honest plan.
        match (&self.options.exhaustive, &self.disk) {
            (Some(options), Some(disk)) if !armed && self.enumerable() && !self.dishonest => {
                Some(Enumeration {
                    options: options.clone(),
                    disk: disk.clone(),
                    mark: disk.mark(),
                    before: self.model.state.clone(),
                })
            }
            _ => None,
        }
    }

    /// Checks every crash state of the call `action` since `enumeration`'s mark.
    pub(super) fn check_crash_states(
        &mut self,
        step: usize,
        op: &Op,
        action: &Action,
        enumeration: Enumeration,
    ) -> Result<(), Stop> {
        let Enumeration { options, disk, mark, before } = enumeration;
        let returned_at = disk.op_count();
        let allowed = allowed_after_unacknowledged(&before, action, &self.model);
        // A family that panics reopening a crash state is a finding, not an abort.
        let verified =
            panic::catch(|| self.verify_crash_states(&disk, mark, returned_at, &options, &allowed))
                .unwrap_or_else(|text| {
                    Err((CheckName::Panic, format!("panic while checking crash states: {text}")))
                });
        match verified {
            Ok((states, nested)) => {
                self.stats.crash_states += states;
                self.stats.nested_crash_states += nested;
                Ok(())
            }
            Err((check, what)) => Err(self.failure(check, step, op, what).into()),
        }
    }

    /// Whether exhaustive mode has something to enumerate: a durable family, a pair's durable
    /// primary before the join, a joined pair with a durable side.
    fn enumerable(&self) -> bool {
        match &self.subject {
            Subject::Pair(_) if self.pair_joined() => self.subject.any_durable(),
            subject => subject.durable(),
        }
    }

    /// Checks every crash state of the disk since `mark` (the call returned after disk op
    /// `returned_at`; `allowed` while it had not): a family's instance, a pair's primary
    /// alone before the join, both sides of a joined pair ([`PairCrashCheck`]). Returns how
    /// many states were checked and how many of them were crashes inside a reopen (a pair's
    /// reopens are not nested into), or the failed check.
    fn verify_crash_states(
        &self,
        disk: &SimDisk,
        mark: Mark,
        returned_at: u64,
        options: &EnumerateOptions,
        allowed: &[RaftState],
    ) -> Result<(u64, u64), (CheckName, String)> {
        let (location, after) = (self.location.as_str(), &self.model.state);
        let family: Arc<dyn Family> = match &self.subject {
            Subject::Pair(pair) if self.pair_joined() => {
                let check =
                    PairCrashCheck { pair: pair.as_ref(), location, before: allowed, after };
                return Ok((check.verify(disk, mark, returned_at, options)?, 0));
            }
            Subject::Pair(pair) => Arc::new(LonePrimary(pair.clone())),
            Subject::Family(family) => family.clone(),
            Subject::Migration(migration) => migration.source_family().clone(),
        };
        let braft_roots = self.braft_roots();
        let check = CrashCheck {
            family: family.as_ref(),
            location,
            before: allowed,
            after,
            braft_roots: &braft_roots,
            recovery_depth: self.recovery_depth(),
        };
        let report = check.verify_checked(disk, mark, returned_at, options)?;
        Ok((report.states as u64, report.nested_states as u64))
    }

    /// How deep exhaustive mode nests crashes inside reopens (0 with recovery crashes off).
    fn recovery_depth(&self) -> u32 {
        if self.options.recovery_crashes {
            self.options.exhaustive_recovery_depth
        } else {
            0
        }
    }
}
