//! `export_cut` (DESIGN §7, check 3): an export interleaved with mutations equals the model
//! at its cut.
//!
//! **What it verifies.** An `export` op pins a cut of the instance ([`PinnedExport`]); the
//! following steps read it a few entries at a time ([`EXPORT_ENTRIES_PER_STEP`]) while
//! mutations go on, and every entry (and its `term`) must equal the model's at the cut.
//! When the export is due, the cut's point reads must agree with that state
//! ([`point_read_difference`]) and the image written from the cut must decode and hold
//! exactly it ([`PinnedExport::into_image`]); the other image checks then run on the image.
//!
//! **When.** On every step while an export is pinned (the `spread` steps its op gives), and
//! once at its end. Proven to bite by `export-cut-off-by-one`.
//!
//! **What not.** A `begin_export` that an injected fault refused is skipped, a cut that fails
//! closed under a dishonest disk ends the run as a refusal, and a pinned export is dropped at
//! a reopen or power loss (the instance it pinned is gone).

use crate::contract::StateView;
use crate::image::{decode, export};
use crate::sim::checks::model_equality::point_read_difference;
use crate::sim::checks::CheckName;
use crate::state::{first_difference, RaftState};

/// Entries an in-progress export reads per following step.
pub const EXPORT_ENTRIES_PER_STEP: u64 = 8;

/// Why the image checks stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageCheckFailure {
    /// A check failed: which one, and what went wrong.
    Failed(CheckName, String),
    /// The pinned cut could not be read (the source failed closed, e.g. on a damaged
    /// sector): a finding on an honest disk, allowed under a dishonest one.
    SourceUnreadable(String),
}

/// An export pinned at a cut and streaming across the following steps.
pub struct PinnedExport {
    view: Box<dyn StateView + Send>,
    expected: RaftState,
    family: String,
    family_version: u32,
    next: u64,
    steps_left: u8,
    seed: u64,
}

/// The image written from a pinned cut, checked against the state at the cut.
#[derive(Clone, Debug)]
pub struct ExportedImage {
    /// The image's bytes.
    pub bytes: Vec<u8>,
    /// The model's state at the cut, which the image holds.
    pub expected: RaftState,
    /// The source family's scheme.
    pub family: String,
    /// The source family's format version, which the image's header carries.
    pub family_version: u32,
    /// Drives the later image checks' random choices (corrupt byte, crash point, families).
    pub seed: u64,
}

impl PinnedExport {
    /// Pins `view` (the cut the instance gave), which must hold `expected`; the image is
    /// finished after `spread` more steps. `seed` drives the corrupt byte and crash points.
    pub fn new(
        view: Box<dyn StateView + Send>,
        expected: RaftState,
        family: &str,
        family_version: u32,
        spread: u8,
        seed: u64,
    ) -> Self {
        let next = expected.first;
        PinnedExport {
            view,
            expected,
            family: family.to_string(),
            family_version,
            next,
            steps_left: spread,
            seed,
        }
    }

    /// Streams a few more entries of the cut and compares them with the state at the cut.
    /// Returns true when the export is due to finish.
    pub fn advance(&mut self) -> Result<bool, ImageCheckFailure> {
        let last = self.expected.last();
        let mut n = 0;
        while self.next <= last && n < EXPORT_ENTRIES_PER_STEP {
            let got = self.view.entry(self.next).map_err(|e| {
                ImageCheckFailure::SourceUnreadable(format!(
                    "reading entry {} of the cut: {e}",
                    self.next
                ))
            })?;
            let offset = (self.next - self.expected.first) as usize;
            let want = self.expected.entries.get(offset);
            if got.as_ref() != want {
                return Err(ImageCheckFailure::Failed(
                    CheckName::ExportCut,
                    format!("entry {} of the pinned cut changed after the cut", self.next),
                ));
            }
            let term = self.view.term(self.next).map_err(|e| {
                ImageCheckFailure::SourceUnreadable(format!(
                    "reading the term of entry {} of the cut: {e}",
                    self.next
                ))
            })?;
            if term != want.map(|e| e.term) {
                return Err(ImageCheckFailure::Failed(
                    CheckName::ExportCut,
                    format!("term({}) of the pinned cut is {term:?}, not its entry's", self.next),
                ));
            }
            self.next += 1;
            n += 1;
        }
        if self.steps_left == 0 {
            return Ok(true);
        }
        self.steps_left -= 1;
        Ok(false)
    }

    /// Writes the image from the cut; it must decode to exactly the state at the cut.
    pub fn into_image(self) -> Result<ExportedImage, ImageCheckFailure> {
        let probed = point_read_difference(self.view.as_ref(), &self.expected, "the pinned cut")
            .map_err(|e| {
                ImageCheckFailure::SourceUnreadable(format!("point reads of the cut failed: {e}"))
            })?;
        if let Some(d) = probed {
            return Err(ImageCheckFailure::Failed(CheckName::ExportCut, d));
        }
        let mut bytes = Vec::new();
        export(self.view.as_ref(), &self.family, self.family_version, &mut bytes).map_err(|e| {
            ImageCheckFailure::SourceUnreadable(format!("export of the pinned cut failed: {e}"))
        })?;
        let decoded = decode(bytes.as_slice()).map_err(|e| {
            ImageCheckFailure::Failed(
                CheckName::ExportCut,
                format!("the exported image is invalid: {e}"),
            )
        })?;
        if let Some(d) = first_difference(&decoded.state, &self.expected) {
            return Err(ImageCheckFailure::Failed(
                CheckName::ExportCut,
                format!("image vs state at the cut: {d}"),
            ));
        }
        Ok(ExportedImage {
            bytes,
            expected: self.expected,
            family: self.family,
            family_version: self.family_version,
            seed: self.seed,
        })
    }
}
