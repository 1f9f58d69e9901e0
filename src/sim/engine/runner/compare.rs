//! The comparison phase: after every step a quick comparison of what the step can have
//! changed, and a full one every `full_check_every` steps and after a snapshot publish
//! (`model_equality`); once a pair's mirror has joined, the same two comparisons of the
//! mirror (`dual_write`). The runner also asks for full comparisons after reopens, power
//! losses, the join and at the end of the history. A read that fails closed under a
//! dishonest disk ends the run as a refusal; one that fails with an honest fault injected
//! during the step's call is a fail-stop, and a power loss follows; a read that panics
//! fails `panic`.

use super::{Runner, Stop};
use crate::contract::StorageError;
use crate::sim::checks::model_equality::{full_difference, quick_difference};
use crate::sim::checks::{injected, panic, refusal, CheckName};
use crate::sim::engine::ops::{Action, Op};

impl Runner {
    /// The comparisons after a contract call.
    pub(super) fn compare(&mut self, step: usize, op: &Op, action: &Action) -> Result<(), Stop> {
        self.quick_check(step, op, action)?;
        let every = self.options.full_check_every;
        let published = matches!(action, Action::Snapshot { publish: true, .. });
        if published || (every > 0 && (step + 1).is_multiple_of(every)) {
            self.full_check(step, &op.to_string())?;
        }
        Ok(())
    }

    /// Compares the whole Raft-visible state of the instance, then of a joined mirror.
    pub(super) fn full_check(&mut self, step: usize, context: &str) -> Result<(), Stop> {
        self.stats.full_checks += 1;
        let instance = self.instance.as_ref().expect("instance is open");
        let compared =
            panic::catch(|| full_difference(instance.storage(), &self.model.state, "instance"));
        let (check, what) = match compared {
            Ok(Ok(None)) => return self.full_check_mirror(step, context),
            Ok(Ok(Some(d))) => (CheckName::ModelEquality, d),
            Ok(Err(e)) => {
                if self.dishonest && refusal(&e) {
                    return Err(self.refused(step, "read", &e));
                }
                (CheckName::ModelEquality, format!("reading the instance failed: {e}"))
            }
            Err(text) => (CheckName::Panic, format!("panic while reading: {text}")),
        };
        Err(self.failure_at(check, step, context.to_string(), what).into())
    }

    /// The dual-write check in full: the mirror's whole state equals the model.
    pub(super) fn full_check_mirror(&mut self, step: usize, context: &str) -> Result<(), Stop> {
        let Some(mirror) = self.instance.as_ref().and_then(|i| i.mirror()) else { return Ok(()) };
        let compared = panic::catch(|| full_difference(mirror, &self.model.state, "mirror"));
        let (check, what) = match compared {
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(d))) => (CheckName::DualWrite, d),
            Ok(Err(e)) if self.dishonest && refusal(&e) => {
                return Err(self.refused(step, "mirror read", &e));
            }
            Ok(Err(e)) => (CheckName::DualWrite, format!("reading the mirror failed: {e}")),
            Err(text) => (CheckName::Panic, format!("panic while reading the mirror: {text}")),
        };
        Err(self.failure_at(check, step, context.to_string(), what).into())
    }

    /// Compares what `action` can have changed, in the instance, then in a joined mirror.
    fn quick_check(&mut self, step: usize, op: &Op, action: &Action) -> Result<(), Stop> {
        let instance = self.instance.as_ref().expect("instance is open");
        let difference =
            panic::catch(|| quick_difference(instance.storage(), &self.model, action, "instance"));
        match difference {
            Ok(Ok(None)) => self.quick_check_mirror(step, op, action),
            Ok(Ok(Some(what))) => {
                Err(self.failure(CheckName::ModelEquality, step, op, what).into())
            }
            Ok(Err(e)) => self.read_failed(step, op, e),
            Err(text) => {
                let what = format!("panic while reading: {text}");
                Err(self.failure(CheckName::Panic, step, op, what).into())
            }
        }
    }

    /// The dual-write check after a step: the mirror equals the model in what the step can
    /// have changed.
    fn quick_check_mirror(&mut self, step: usize, op: &Op, action: &Action) -> Result<(), Stop> {
        let Some(mirror) = self.instance.as_ref().and_then(|i| i.mirror()) else { return Ok(()) };
        let difference = panic::catch(|| quick_difference(mirror, &self.model, action, "mirror"));
        let what = match difference {
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(what))) => what,
            Ok(Err(e)) if self.dishonest && refusal(&e) => {
                return Err(self.refused(step, "mirror read", &e));
            }
            Ok(Err(e)) if self.closed_by_step_fault(&e) => {
                return self.fail_stop(step, op, "mirror read", &e);
            }
            Ok(Err(e)) => format!("reading the mirror failed: {e}"),
            Err(text) => {
                let what = format!("panic while reading the mirror: {text}");
                return Err(self.failure(CheckName::Panic, step, op, what).into());
            }
        };
        Err(self.failure(CheckName::DualWrite, step, op, what).into())
    }

    /// Whether a read right after a call failed because the instance failed closed on an
    /// honest fault the disk injected during this very step, which the call met but did not
    /// report (an abandoned snapshot's rollback that redb cannot write, say). The family may
    /// stop there; nothing acknowledged may be lost, which the power loss that follows checks.
    fn closed_by_step_fault(&self, e: &StorageError) -> bool {
        self.faulty && !self.dishonest && injected(e) && self.faults_so_far() > self.step_faults
    }

    /// The instance failed closed after the step's call returned: a power loss follows, and
    /// only the state after the call (which it acknowledged) may come back.
    fn fail_stop(
        &mut self,
        step: usize,
        op: &Op,
        what: &str,
        e: &StorageError,
    ) -> Result<(), Stop> {
        self.trace.push(format!("#{step} {what} -> failed closed after an injected fault: {e}"));
        self.crash_after_return(step, op)
    }

    fn read_failed(&mut self, step: usize, op: &Op, e: StorageError) -> Result<(), Stop> {
        if self.dishonest && refusal(&e) {
            return Err(self.refused(step, "read", &e));
        }
        if self.closed_by_step_fault(&e) {
            return self.fail_stop(step, op, "read", &e);
        }
        let what = format!("reading the instance failed: {e}");
        Err(self.failure(CheckName::ModelEquality, step, op, what).into())
    }
}
