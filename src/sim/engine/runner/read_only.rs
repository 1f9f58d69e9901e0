//! The read-only phase around every reopen: before the subject is opened again, what a
//! read-only open of the disk shows ([`checks::read_only`](crate::sim::checks::read_only));
//! once the reopen recovered (the model now holds that state), the probe is judged against it
//! and a second writer must be refused while the instance is open
//! ([`checks::single_writer`](crate::sim::checks::single_writer)). For a pair, its primary.

use std::sync::Arc;

use super::{Runner, Stop};
use crate::contract::Family;
use crate::dual_write::DualFamily;
use crate::sim::checks::read_only::{self, Probe};
use crate::sim::checks::{single_writer, CheckName};
use crate::sim::engine::ops::Op;
use crate::sim::engine::subject::Subject;

impl Runner {
    /// The family and location a reopen recovers: the subject's, or a pair's primary.
    pub(super) fn reopened_family(&self) -> (Arc<dyn Family>, String) {
        match &self.subject {
            Subject::Family(family) => (family.clone(), self.location.clone()),
            Subject::Pair(pair) => {
                (pair.primary_family(), DualFamily::primary_location(&self.location))
            }
            // Migrations run on their own driver, never through this runner; as a family, a
            // migration is its source's.
            Subject::Migration(_) => (self.subject.as_family(), self.location.clone()),
        }
    }

    /// Before a reopen: what a read-only open of the disk shows (on a simulated disk, when
    /// checking).
    pub(super) fn probe_read_only(&self) -> Option<Probe> {
        let disk = self.disk.as_ref().filter(|_| !self.options.unchecked)?;
        let (family, location) = self.reopened_family();
        Some(read_only::probe(family.as_ref(), &location, disk))
    }

    /// After a reopen that recovered the model's state: `read_only` (the probe against it)
    /// and `single_writer` (a second writer is refused while the instance is open).
    pub(super) fn check_reopened(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let Some(disk) = self.disk.clone() else { return Ok(()) };
        if let Some(probe) = self.read_only_probe.take() {
            if let Err(what) = probe.judge(&self.model.state, self.dishonest) {
                return Err(self.failure(CheckName::ReadOnly, step, op, what).into());
            }
        }
        let (family, location) = self.reopened_family();
        if family.durable() && !self.options.unchecked {
            if let Err(what) = single_writer::second_writer(family.as_ref(), &location, &disk) {
                return Err(self.failure(CheckName::SingleWriter, step, op, what).into());
            }
        }
        Ok(())
    }
}
