//! The power-loss phase: a `crash` op, a crash point armed for the next call, and the power
//! loss that follows a call a fault failed. The disk loses what was not durable, the subject
//! is reopened, and what it recovers must be one of the states the step allows
//! (`crash_atomicity`; under a dishonest disk, any state each store held, or a refusal); a
//! joined pair's mirror is judged before and after its repair (`dual_write`); braft's view
//! of a local directory, read on a fork of the crashed disk before the reopen, must equal
//! what was recovered or fall in one of the windows `braft_view` lists, and must equal it
//! exactly after the open. Before a `crash` op's power loss the instance is closed cleanly
//! and what `qk inspect` reports of it is judged once the state recovered
//! (`inspect_agreement`). Without a simulated disk a power loss is played as a clean
//! restart.

use super::{Runner, Stop};
use crate::sim::checks::braft_view;
use crate::sim::checks::crash_atomicity::recovered_difference;
use crate::sim::checks::{panic, refusal, CheckName};
use crate::sim::engine::ops::Op;
use crate::state::RaftState;

impl Runner {
    /// A `crash` op: a power loss between steps, after which only the current state is
    /// allowed.
    pub(super) fn crash(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        self.trace.push(format!("#{step} crash()"));
        let after = vec![self.model.state.clone()];
        if self.disk.is_none() {
            return self.power_loss(step, op, after);
        }
        // The power loss closes the instance first, cleanly: what it leaves is inspected
        // before the power fails (`inspect_agreement`).
        let inspection = self.close_and_inspect();
        self.power_loss(step, op, after)?;
        self.check_inspection(step, op, inspection)
    }

    /// Arms a crash point `disk_ops` disk operations into the next call (on a simulated
    /// disk; elsewhere the op does nothing).
    pub(super) fn arm_crash(&mut self, step: usize, disk_ops: u16) {
        self.trace.push(format!("#{step} arm_crash(disk_ops={disk_ops})"));
        if self.disk.is_some() {
            self.armed = Some(disk_ops);
        }
    }

    /// The call a crash point was armed for returned before the crash point struck: it was
    /// acknowledged, so the power loss then allows only the state after it.
    pub(super) fn crash_after_return(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let after = vec![self.model.state.clone()];
        self.power_loss(step, op, after)
    }

    /// Reads the reopened instance after a power loss and judges it (`crash_atomicity`): it
    /// must show one of `candidates` (or, under a dishonest disk, a state the history held).
    pub(super) fn recovered_state(
        &mut self,
        step: usize,
        op: &Op,
        candidates: &[RaftState],
    ) -> Result<RaftState, Stop> {
        let instance = self.instance.as_ref().expect("instance reopened");
        let recovered = match panic::catch(|| RaftState::capture(instance.storage())) {
            Ok(Ok(state)) => state,
            Ok(Err(e)) if self.dishonest && refusal(&e) => {
                return Err(self.refused(step, "read after crash", &e));
            }
            Ok(Err(e)) => {
                let what = format!("reading the recovered instance failed: {e}");
                return Err(self.failure(CheckName::CrashAtomicity, step, op, what).into());
            }
            Err(text) => {
                let what = format!("panic while reading after a crash: {text}");
                return Err(self.failure(CheckName::Panic, step, op, what).into());
            }
        };
        if let Some(what) = recovered_difference(&recovered, candidates, &self.history) {
            return Err(self.failure(CheckName::CrashAtomicity, step, op, what).into());
        }
        Ok(recovered)
    }

    /// Power loss, reboot, reopen; the recovered state must be one of `candidates` (or, under
    /// a dishonest disk, any state the history produced).
    pub(super) fn power_loss(
        &mut self,
        step: usize,
        op: &Op,
        candidates: Vec<RaftState>,
    ) -> Result<(), Stop> {
        let Some(disk) = self.disk.clone() else {
            // No simulated disk: a crash is a clean restart.
            return self.restart(step, op, "restart (no simulated disk)");
        };
        self.export = None;
        drop(self.instance.take());
        let summary = disk.crash();
        self.stats.crashes += 1;
        self.trace.push(format!(
            "#{step} power loss: {} pending, {} kept, {} torn",
            summary.pending, summary.kept, summary.torn_writes
        ));
        let mirror_candidates = match self.pair_joined() {
            true => candidates.iter().map(|c| self.mirror_candidate(c.clone())).collect(),
            false => Vec::new(),
        };
        // What braft would read on the crashed disk, before the open repairs anything.
        let braft_roots = self.braft_roots();
        let braft_probes = match braft_view::fork_for(&disk, &braft_roots) {
            Some(copy) => braft_view::probe_all(copy.as_ref(), &braft_roots),
            None => Ok(Vec::new()),
        };
        let reopened = self.open_again(step, op)?;
        let candidates = if self.subject.durable() { candidates } else { vec![RaftState::new()] };
        let recovered = self.recovered_state(step, op, &candidates)?;
        let braft = braft_probes.and_then(|probes| {
            braft_view::judge_all(&probes, &recovered, &candidates)?;
            match braft_view::fork_for(&disk, &braft_roots) {
                Some(copy) => braft_view::judge_open_all(copy.as_ref(), &braft_roots, &recovered),
                None => Ok(()),
            }
        });
        if let Err(what) = braft {
            return Err(self.failure(CheckName::BraftView, step, op, what).into());
        }
        self.trace.push(format!("#{step} recovered {}", &recovered.digest()[..16]));
        self.model.state = recovered;
        self.history.remember_all(&self.model.state);
        self.check_reopened(step, op)?;
        if let Some(reopened) = reopened {
            self.check_pair_reopen(step, op, &reopened, true, &mirror_candidates)?;
            self.full_check_mirror(step, "pair recovery after a power loss")?;
        }
        Ok(())
    }
}
