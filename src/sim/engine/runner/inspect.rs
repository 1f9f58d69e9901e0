//! The inspect phase ([`checks::inspect_agreement`]) wherever the runner closes the instance
//! cleanly: a clean reopen, a `crash` op between steps (the instance is closed, then the
//! power fails), the end of the history. Right after the close, the family's `qk inspect`
//! details of the closed instance (through the disk's observer); once the reopen recovered
//! the model's state and the other reopen checks held (at the end: at once), they are
//! judged against it. For a pair, its primary. Only on an honest disk that injected no fault
//! since the instance was last opened, when checking.

use super::hostile_dirs::HostileDirVerdict;
use super::{Runner, Stop};
use crate::sim::checks::inspect_agreement::{self, Inspection};
use crate::sim::checks::CheckFailure;
use crate::sim::checks::CheckName;
use crate::sim::engine::ops::Op;

/// What the phases at a clean close found, judged once the reopen recovered the model's
/// state: the inspection, and the hostile directory (`hostile_dirs`).
pub(super) struct Closed {
    inspection: Option<Inspection>,
    hostile_dir: Option<HostileDirVerdict>,
}

impl Runner {
    /// Closes the instance cleanly (a pinned export first, then the instance: the order of
    /// every close), inspects what it left on the disk and plants a hostile directory in a
    /// copy of it.
    pub(super) fn close_and_inspect(&mut self) -> Closed {
        self.export = None;
        drop(self.instance.take());
        let inspection = self.inspect_closed();
        let hostile_dir = self.hostile_dir_closed();
        Closed { inspection, hostile_dir }
    }

    /// At the end of a history that held: the instance closed and inspected; the failure,
    /// if the inspection disagrees with the model.
    pub(super) fn inspect_at_end(&mut self, steps: usize) -> Option<CheckFailure> {
        let closed = self.close_and_inspect();
        let inspected = closed.inspection.is_some();
        let judged = self.judge_closed(closed).and_then(|()| {
            if inspected {
                self.inspect_overflow().map_err(|w| (CheckName::InspectAgreement, w))
            } else {
                Ok(())
            }
        });
        let (check, what) = judged.err()?;
        Some(self.failure_at(check, steps, "end of history".to_string(), what))
    }

    /// At the end of a history, once the inspection of the cleanly closed instance agreed: on
    /// a `redb://` one, the overflow probe ([`inspect_agreement::overflow`]) on a copy of the
    /// disk, so that a report with more problems than it lists is judged too.
    fn inspect_overflow(&self) -> Result<(), String> {
        let Some(disk) = self.disk.as_ref() else { return Ok(()) };
        let (family, location) = self.reopened_family();
        if family.scheme() != "redb" {
            return Ok(());
        }
        let planted = inspect_agreement::overflow_planted(disk.options().seed);
        let state = &self.model.state;
        // Its inspect reaches report paths the histories must reach on their own: not counted.
        crate::coverage::unrecorded(|| {
            inspect_agreement::overflow(family.as_ref(), &location, disk, state, planted)
        })
        .map(|_| ())
    }

    /// Judges what a clean close found: the inspection, then the hostile directory.
    fn judge_closed(&mut self, closed: Closed) -> Result<(), (CheckName, String)> {
        if let Some(inspection) = &closed.inspection {
            self.judge_inspection(inspection).map_err(|w| (CheckName::InspectAgreement, w))?;
        }
        if let Some(verdict) = closed.hostile_dir {
            verdict.map_err(|w| (CheckName::HostileDirs, w))?;
            self.stats.hostile_dirs += 1;
        }
        Ok(())
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

    /// After the reopen recovered the model's state: `inspect_agreement`, then
    /// `hostile_dirs`.
    pub(super) fn check_inspection(
        &mut self,
        step: usize,
        op: &Op,
        closed: Closed,
    ) -> Result<(), Stop> {
        self.judge_closed(closed)
            .map_err(|(check, what)| self.failure(check, step, op, what).into())
    }
}
