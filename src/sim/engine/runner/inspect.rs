//! The inspect phase ([`checks::inspect_agreement`]) wherever the runner closes the instance
//! cleanly: a clean reopen, a `crash` op between steps (the instance is closed, then the
//! power fails), the end of the history. Right after the close, the family's `qk inspect`
//! details of the closed instance (through the disk's observer); once the reopen recovered
//! the model's state and the other reopen checks held (at the end: at once), they are
//! judged against it. For a pair, its primary. Only on an honest disk that injected no fault
//! since the instance was last opened, when checking.

use super::{Runner, Stop};
use crate::sim::checks::inspect_agreement::{self, Inspection};
use crate::sim::checks::CheckFailure;
use crate::sim::checks::CheckName;
use crate::sim::engine::ops::Op;

impl Runner {
    /// Closes the instance cleanly (a pinned export first, then the instance: the order of
    /// every close) and inspects what it left on the disk.
    pub(super) fn close_and_inspect(&mut self) -> Option<Inspection> {
        self.export = None;
        drop(self.instance.take());
        self.inspect_closed()
    }

    /// At the end of a history that held: the instance closed and inspected; the failure,
    /// if the inspection disagrees with the model.
    pub(super) fn inspect_at_end(&mut self, steps: usize) -> Option<CheckFailure> {
        let inspection = self.close_and_inspect()?;
        let what = self.judge_inspection(&inspection).err()?;
        Some(self.failure_at(
            CheckName::InspectAgreement,
            steps,
            "end of history".to_string(),
            what,
        ))
    }

    /// Judges `inspection` against the model's state, counting it when it was judged.
    fn judge_inspection(&mut self, inspection: &Inspection) -> Result<(), String> {
        let judged = inspection.judge(&self.model.state)?;
        self.stats.inspections += u64::from(judged);
        Ok(())
    }

    /// After a clean close: what inspect reports of the instance on the disk, when the disk
    /// holds exactly the model's state, cleanly closed.
    pub(super) fn inspect_closed(&self) -> Option<Inspection> {
        let disk = self.disk.as_ref()?;
        // A fault since the last open (in a read, an export's drop, the close) may have left
        // behind what the close meant to remove: the state on disk is then not known exactly.
        if self.dishonest || self.options.unchecked || self.faults_so_far() > self.faults_at_open {
            return None;
        }
        let (family, location) = self.reopened_family();
        Some(inspect_agreement::inspect(family.as_ref(), &location, disk))
    }

    /// After the reopen recovered the model's state: `inspect_agreement`.
    pub(super) fn check_inspection(
        &mut self,
        step: usize,
        op: &Op,
        inspection: Option<Inspection>,
    ) -> Result<(), Stop> {
        let Some(inspection) = inspection else { return Ok(()) };
        self.judge_inspection(&inspection)
            .map_err(|what| self.failure(CheckName::InspectAgreement, step, op, what).into())
    }
}
