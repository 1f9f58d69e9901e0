//! The hostile-directory phase ([`checks::hostile_dirs`]) at the clean closes the inspect
//! phase sees, on the same conditions (an honest disk that injected no fault since the
//! instance was last opened, when checking), for a `local://` subject or a pair's local
//! primary: right after the close, one violation planted in a copy of the disk and both
//! opens of it made; judged with the inspection, once the reopen recovered the model's state.
//!
//! [`checks::hostile_dirs`]: crate::sim::checks::hostile_dirs

use super::Runner;
use crate::sim::checks::hostile_dirs::{self, Violation};

/// What the phase found at one clean close: the violation judged, or what went wrong.
pub(super) type HostileDirVerdict = Result<Violation, String>;

impl Runner {
    /// After a clean close of a `local://` instance on an honest disk holding the model's
    /// state: the next violation of the rotation planted in a copy of the disk, judged.
    pub(super) fn hostile_dir_closed(&mut self) -> Option<HostileDirVerdict> {
        let disk = self.disk.as_ref()?;
        if self.dishonest || self.options.unchecked || self.faults_so_far() > self.faults_at_open {
            return None;
        }
        let (family, location) = self.reopened_family();
        if family.scheme() != "local" {
            return None;
        }
        let nth = self.hostile_dirs_planted;
        self.hostile_dirs_planted += 1;
        let seed = disk.options().seed;
        // Its opens reach refusal paths the histories must reach on their own: not counted.
        let state = &self.model.state;
        Some(crate::coverage::unrecorded(|| {
            hostile_dirs::check(family.as_ref(), &location, disk, state, seed, nth)
        }))
    }
}
