//! The call phase: one contract call, applied to the model and to the instance. The call
//! must succeed or fail as the model's did (`model_equality`) without panicking (`panic`);
//! a call that an injected fault or an armed crash point failed is unacknowledged, and the
//! caller follows it with a power loss under the states the atomicity table then allows.

use super::exhaustive::Enumeration;
use super::{Runner, Stop};
use crate::contract::StorageError;
use crate::sim::checks::crash_atomicity::{allowed_after_unacknowledged, Store};
use crate::sim::checks::{model_equality, panic, refusal, CheckName};
use crate::sim::engine::apply::apply_action;
use crate::sim::engine::ops::{Action, Op};
use crate::sim::engine::undo::Before;
use crate::state::RaftState;

/// How a contract call went.
pub(super) enum Called {
    /// A fault or a crash point failed it: a power loss follows, and any of `allowed` may
    /// come back (none is known for a volatile family, which recovers empty).
    Failed { allowed: Vec<RaftState> },
    /// It returned as the model did.
    Returned {
        /// Exhaustive mode: the crash states around the call to check (only when it
        /// succeeded).
        enumerate: Option<Enumeration>,
        /// A crash point was armed for it and the call returned first: a power loss follows,
        /// allowing only the state after it.
        armed: bool,
    },
}

impl Runner {
    /// Applies the contract call `action` (op `op`, number `step`) to the model and the
    /// instance and judges the two results.
    pub(super) fn call(&mut self, step: usize, op: &Op, action: &Action) -> Result<Called, Stop> {
        let armed = self.armed.take();
        // Only a durable family on a disk that can fail needs the state before the step: the
        // atomicity table allows it back after a failed mutation (a pair's mirror too). An
        // undo record of the step keeps it (copying the whole log every step cost more).
        let keep_before = self.subject.any_durable() && (armed.is_some() || self.faulty);
        let before = keep_before.then(|| Before::record(&self.model.state, action));
        let faults_before = self.faults_so_far();
        if let (Some(n), Some(disk)) = (armed, &self.disk) {
            disk.crash_after_op(disk.op_count() + u64::from(n));
        }
        let enumerate = self.enumeration(armed.is_some());
        let model_result = self.model.apply(action);
        let instance = self.instance.as_mut().expect("instance is open between steps");
        let result = match panic::catch(|| apply_action(instance.storage_mut(), action)) {
            Ok(r) => r,
            Err(what) => {
                self.trace.push(format!("#{step} {action} -> panic: {what}"));
                return Err(self
                    .failure(CheckName::Panic, step, op, format!("panic: {what}"))
                    .into());
            }
        };
        let verdict = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err: {e}"),
        };
        self.trace.push(format!("#{step} {action} -> {verdict}"));
        // A media fault planted earlier (a latent sector error, rot) surfaces only when a
        // later call reads the sector: under a dishonest plan an I/O or corruption error is
        // a fault striking now, even though no fault was injected during this call.
        let surfaced = self.dishonest && result.as_ref().is_err_and(refusal);
        let fault_struck = self.halted() || surfaced || self.faults_so_far() > faults_before;
        if fault_struck && result.as_ref().is_err_and(|e| !matches!(e, StorageError::Contract(_))) {
            // The mutation failed because of a fault or a crash point: unacknowledged. Also
            // when the contract rejects the call: a family may meet the fault before it finds
            // the bad argument (a pair feeds files before it checks the meta), and what the
            // fault left behind is recovered like any other.
            self.stats.failed_mutations += 1;
            let allowed = match &before {
                Some(before) => {
                    let before = before.state(&self.model.state);
                    allowed_after_unacknowledged(&before, action, &self.model)
                }
                None => Vec::new(), // a volatile family recovers empty whatever happened
            };
            return Ok(Called::Failed { allowed });
        }
        if let Some(what) = model_equality::call_difference(&model_result, &result) {
            return Err(self.failure(CheckName::ModelEquality, step, op, what).into());
        }
        if model_result.is_err() {
            self.stats.rejected_calls += 1;
        }
        self.history.remember(&self.model.state, Store::changed_by(action));
        if model_result.is_ok() {
            self.history.remember_batch_prefixes(&self.model.state, action);
        }
        Ok(Called::Returned {
            enumerate: enumerate.filter(|_| result.is_ok()),
            armed: armed.is_some() && self.disk.is_some(),
        })
    }
}
