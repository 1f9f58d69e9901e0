//! [`PlantedValidatorBug`]: the equivalence validator with a planted blind spot, proving the
//! `validator_agreement` check bites.
//!
//! The validator is a function, not a family, so the bug is planted as a pair of views that
//! hide one detail from it: [`PlantedValidatorBug::compare`] runs the real
//! [`crate::validate::compare`] on both instances seen through [`Blind`], which is what a
//! validator with that comparison missing would report. `qk compare` streams through the same
//! validator, so the check hands it the same blinded views; the image diff, the digests and
//! `state::first_difference` see the instances as they are.

use serde::{Deserialize, Serialize};

use crate::contract::{
    Entry, FileMeta, Index, Payload, SnapshotFileInfo, StateView, StorageResult,
};
use crate::delegate::delegate_state_view;
use crate::sim::checks::CheckName;
use crate::validate::{compare, Comparison};

/// Which blind spot the planted validator has. Each must be caught by `validator_agreement`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedValidatorBug {
    /// The validator never compares snapshot files' metadata (braft's `LocalFileMeta`).
    SkipsFileMeta,
    /// The validator compares the retained entries only up to `last - 1`: a difference in the
    /// last entry goes unseen.
    StopsBeforeLast,
}

impl PlantedValidatorBug {
    /// Every planted validator bug.
    pub const ALL: [PlantedValidatorBug; 2] =
        [PlantedValidatorBug::SkipsFileMeta, PlantedValidatorBug::StopsBeforeLast];

    /// The check this bug is planted to trip.
    pub fn expected_check(self) -> CheckName {
        CheckName::ValidatorAgreement
    }

    /// The bug's kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            PlantedValidatorBug::SkipsFileMeta => "validator-skips-file-meta",
            PlantedValidatorBug::StopsBeforeLast => "validator-stops-before-last",
        }
    }

    /// `view` as the planted validator sees it.
    pub fn blind(self, view: &dyn StateView) -> Blind<'_> {
        Blind { inner: view, bug: self }
    }

    /// What the planted validator reports for `a` and `b`.
    pub fn compare(self, a: &dyn StateView, b: &dyn StateView) -> StorageResult<Comparison> {
        compare(&self.blind(a), &self.blind(b))
    }
}

/// A view with the detail a [`PlantedValidatorBug`] misses hidden: every file's metadata
/// unset, or the last retained entry replaced by the same placeholder on every view.
pub struct Blind<'a> {
    inner: &'a dyn StateView,
    bug: PlantedValidatorBug,
}

impl StateView for Blind<'_> {
    delegate_state_view!(inner: first_index, last_index, meta, snapshot_meta, read_snapshot_file);

    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        let entry = self.inner.entry(index)?;
        if self.bug == PlantedValidatorBug::StopsBeforeLast && index == self.last_index() {
            return Ok(entry.map(|_| Entry { index, term: 0, payload: Payload::NoOp }));
        }
        Ok(entry)
    }

    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        let mut files = self.inner.snapshot_files()?;
        if self.bug == PlantedValidatorBug::SkipsFileMeta {
            for file in &mut files {
                file.file_meta = FileMeta::default();
            }
        }
        Ok(files)
    }
}
