//! The join phase: a quarter of the way into a pair's history its mirror joins the primary
//! (a fresh mirror, bootstrapped from it, as a migration would), and is then compared with
//! the model in full (`dual_write`). A join that a fault broke is followed by a power loss
//! and tried again at the next step.

use super::{Instance, Runner, Stop};
use crate::sim::checks::{panic, refusal, CheckName};
use crate::sim::engine::ops::Op;
use crate::sim::engine::subject::Subject;

impl Runner {
    /// Whether a pair's mirror is due to join before step `step`.
    pub(super) fn join_due(&self, step: usize) -> bool {
        self.join.is_some_and(|j| !j.joined && step >= j.at)
    }

    /// Whether the subject is a pair whose mirror has joined.
    pub(super) fn pair_joined(&self) -> bool {
        self.join.is_some_and(|j| j.joined)
    }

    /// A pair's mirror joins its primary (bootstrapped from it), then is checked in full.
    pub(super) fn join_mirror(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let Subject::Pair(pair) = self.subject.clone() else { return Ok(()) };
        let primary = match self.instance.take() {
            Some(Instance::Single(primary)) => primary,
            other => {
                self.instance = other;
                return Ok(());
            }
        };
        let faults_before = self.faults_so_far();
        let (location, vfs) = (self.location.clone(), self.vfs.clone());
        match panic::catch(|| pair.join(primary, &location, vfs)) {
            Ok(Ok(instance)) => {
                self.instance = Some(Instance::Pair(instance));
                if let Some(join) = &mut self.join {
                    join.joined = true;
                }
                self.trace.push(format!("#{step} join(mirror) -> ok"));
                if self.options.unchecked {
                    return Ok(());
                }
                self.full_check(step, "join (a mirror bootstrapped from the primary)")
            }
            Ok(Err(e)) => {
                self.trace.push(format!("#{step} join(mirror) -> err: {e}"));
                let fault_struck = self.halted() || self.faults_so_far() > faults_before;
                if fault_struck || (self.dishonest && refusal(&e)) {
                    let after = vec![self.model.state.clone()];
                    return self.power_loss(step, op, after);
                }
                let what = format!("the mirror could not join (bootstrap failed): {e}");
                Err(self.failure(CheckName::DualWrite, step, op, what).into())
            }
            Err(text) => {
                let what = format!("panic during the join: {text}");
                Err(self.failure(CheckName::Panic, step, op, what).into())
            }
        }
    }
}
