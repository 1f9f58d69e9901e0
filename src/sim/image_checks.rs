//! The image checks of the harness (DESIGN §7, checks 3–6 and 8), run when a history's
//! `export` op completes:
//!
//! - `export_cut`: an export pinned at a cut and read while mutations go on holds exactly the
//!   model's state at the cut — entry by entry while it streams, then as a whole image.
//! - `canonicality`: the image's content bytes equal the canonical encoding of that state, and
//!   every family re-exports the same content bytes after importing it.
//! - `import_determinism`: the image imported into two empty instances of every family, on
//!   two simulated disks with the same seed, gives the state at the cut and byte-identical
//!   disks.
//! - `import_atomicity`: a power loss at a seeded point of an import leaves the destination
//!   empty or complete.
//! - `bad_images`: the image with one corrupted byte is rejected and the destination stays
//!   empty, also after a reopen.
//!
//! The source family takes the image on every export; every other family on one export in
//! [`CROSS_FAMILY_EVERY`] (seeded), which keeps the soak fast while the N×N matrix stays
//! covered over a soak.
//!
//! Each of these checks is proven to bite by a planted bug that trips it alone
//! ([`crate::sim::planted::PlantedBug`]: `export-cut-off-by-one`, `import-lists-files-twice`,
//! `import-stamps-counter`, `import-commit-in-steps`, `import-not-atomic`).
//!
//! What it does not check: exports of a family on a faulty disk (the runner only pins cuts on
//! an instance it can read) and images from other tools (the hostile corpus covers those).

use std::path::Path;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::contract::{Family, RaftStorage, StateView};
use crate::image::{content_bytes, decode, encode_state, export, import};
use crate::sim::braft_check;
use crate::sim::check::CheckName;
use crate::state::{first_difference, RaftState};
use crate::vfs::{Image, SimDisk, SimDiskOptions};

/// Entries an in-progress export reads per following step.
pub const EXPORT_ENTRIES_PER_STEP: u64 = 8;

/// One export in this many also imports into every other family.
pub const CROSS_FAMILY_EVERY: u32 = 8;

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

/// Counters of the image checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageCheckStats {
    /// Images exported and checked.
    pub exports: u64,
    /// Imports made (good, corrupted and crashed).
    pub imports: u64,
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
            self.next += 1;
            n += 1;
        }
        if self.steps_left == 0 {
            return Ok(true);
        }
        self.steps_left -= 1;
        Ok(false)
    }

    /// Writes the image from the cut and runs every image check against every family.
    pub fn finish(
        self,
        families: &[Arc<dyn Family>],
    ) -> Result<ImageCheckStats, ImageCheckFailure> {
        let mut stats = ImageCheckStats::default();
        let mut bytes = Vec::new();
        export(self.view.as_ref(), &self.family, self.family_version, &mut bytes).map_err(|e| {
            ImageCheckFailure::SourceUnreadable(format!("export of the pinned cut failed: {e}"))
        })?;
        stats.exports += 1;
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
        let mut canonical = Vec::new();
        encode_state(&self.expected, "model", 0, &[], &mut canonical).map_err(|e| {
            ImageCheckFailure::Failed(
                CheckName::Canonicality,
                format!("encoding the model failed: {e}"),
            )
        })?;
        if content_bytes(&bytes) != content_bytes(&canonical) {
            return Err(ImageCheckFailure::Failed(
                CheckName::Canonicality,
                format!(
                    "{}'s export differs from the canonical encoding of the state",
                    self.family
                ),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // The source family is checked on every export; the others (the N×N bootstrap
        // matrix) on one export in CROSS_FAMILY_EVERY, drawn from the seed, because an import
        // into a database engine costs far more than the steps around it.
        let cross = rng.random_range(0..CROSS_FAMILY_EVERY) == 0;
        for family in families {
            if family.scheme() == self.family || cross {
                check_family(family, &bytes, &self.expected, &mut rng, &mut stats)?;
            }
        }
        Ok(stats)
    }
}

fn fresh_disk(seed: u64) -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed, ..SimDiskOptions::default() })
}

/// Where the image checks put the instance they import into.
const IMPORT_LOCATION: &str = "import";

fn open(family: &Arc<dyn Family>, disk: &Arc<SimDisk>) -> Result<Box<dyn RaftStorage>, String> {
    family.open(IMPORT_LOCATION, disk.clone()).map_err(|e| format!("opening a fresh instance: {e}"))
}

fn check_family(
    family: &Arc<dyn Family>,
    image: &[u8],
    expected: &RaftState,
    rng: &mut ChaCha8Rng,
    stats: &mut ImageCheckStats,
) -> Result<(), ImageCheckFailure> {
    let scheme = family.scheme();
    let fail = |check: CheckName, what: String| {
        ImageCheckFailure::Failed(check, format!("{scheme}: {what}"))
    };
    // Deterministic import: two empty instances on two identical disks.
    let disk_seed: u64 = rng.random();
    let mut first_disk: Option<Arc<SimDisk>> = None;
    let mut imported_len = 0;
    for _ in 0..2 {
        let disk = fresh_disk(disk_seed);
        let mut dest = open(family, &disk).map_err(|w| fail(CheckName::ImportDeterminism, w))?;
        let before = disk.op_count();
        import(image, dest.as_mut())
            .map_err(|e| fail(CheckName::ImportDeterminism, format!("import failed: {e}")))?;
        stats.imports += 1;
        imported_len = disk.op_count() - before;
        let state = RaftState::capture(dest.as_ref())
            .map_err(|e| fail(CheckName::ImportDeterminism, format!("read after import: {e}")))?;
        if let Some(d) = first_difference(&state, expected) {
            return Err(fail(CheckName::ImportDeterminism, format!("imported vs image: {d}")));
        }
        let mut again = Vec::new();
        export(dest.as_ref(), scheme, dest.family_format_version(), &mut again)
            .map_err(|e| fail(CheckName::Canonicality, format!("re-export failed: {e}")))?;
        if content_bytes(&again) != content_bytes(image) {
            return Err(fail(
                CheckName::Canonicality,
                "re-export after import differs from the image's content bytes".to_string(),
            ));
        }
        drop(dest);
        let Some(first) = &first_disk else {
            first_disk = Some(disk);
            continue;
        };
        if !(first.same_image(&disk, Image::Visible) && first.same_image(&disk, Image::Durable)) {
            return Err(fail(
                CheckName::ImportDeterminism,
                "two imports of one image on identical disks left different bytes".to_string(),
            ));
        }
    }
    // Bad image: one corrupted byte.
    let mut bad = image.to_vec();
    let at = rng.random_range(0..bad.len());
    bad[at] ^= 1 << rng.random_range(0..8u32);
    let disk = fresh_disk(disk_seed);
    let mut dest = open(family, &disk).map_err(|w| fail(CheckName::BadImages, w))?;
    stats.imports += 1;
    if import(bad.as_slice(), dest.as_mut()).is_ok() {
        return Err(fail(
            CheckName::BadImages,
            format!("an image with byte {at} flipped was accepted"),
        ));
    }
    expect_empty(dest.as_ref())
        .map_err(|w| fail(CheckName::BadImages, format!("after a rejected image: {w}")))?;
    drop(dest);
    let dest = open(family, &disk).map_err(|w| fail(CheckName::BadImages, w))?;
    expect_empty(dest.as_ref()).map_err(|w| {
        fail(CheckName::BadImages, format!("after a rejected image and reopen: {w}"))
    })?;
    drop(dest);
    // Import atomicity: a power loss at a seeded disk operation of the import.
    let disk = fresh_disk(disk_seed);
    let mut dest = open(family, &disk).map_err(|w| fail(CheckName::ImportAtomicity, w))?;
    let crash_at = disk.op_count() + rng.random_range(0..=imported_len);
    disk.crash_after_op(crash_at);
    let completed = import(image, dest.as_mut()).is_ok();
    stats.imports += 1;
    drop(dest);
    disk.crash();
    // What braft would read at that crash point, judged once our own view has been.
    let braft_probe = (scheme == "local").then(|| disk.fork());
    let dest = open(family, &disk).map_err(|w| fail(CheckName::ImportAtomicity, w))?;
    let state = RaftState::capture(dest.as_ref())
        .map_err(|e| fail(CheckName::ImportAtomicity, format!("read after crash: {e}")))?;
    let allowed_complete = family.durable() && state == *expected;
    if state != RaftState::new() && !allowed_complete {
        let d = first_difference(&state, expected).unwrap_or_default();
        return Err(fail(
            CheckName::ImportAtomicity,
            format!(
                "a power loss during import (import {}) left neither an empty nor the complete \
                 state: vs complete: {d}",
                if completed { "had returned Ok" } else { "had not returned" }
            ),
        ));
    }
    if completed && family.durable() && state != *expected {
        return Err(fail(
            CheckName::ImportAtomicity,
            "an import that returned Ok was lost by a power loss".to_string(),
        ));
    }
    if let Some(crashed) = braft_probe {
        braft_check::judge_import(crashed.as_ref(), Path::new(IMPORT_LOCATION), expected)
            .map_err(|w| fail(CheckName::BraftView, w))?;
        braft_check::judge_open(disk.as_ref(), Path::new(IMPORT_LOCATION), &state)
            .map_err(|w| fail(CheckName::BraftView, format!("after reopening: {w}")))?;
    }
    Ok(())
}

fn expect_empty(view: &dyn StateView) -> Result<(), String> {
    let state = RaftState::capture(view).map_err(|e| format!("read: {e}"))?;
    match first_difference(&state, &RaftState::new()) {
        None => Ok(()),
        Some(d) => Err(format!("the destination is not empty: {d}")),
    }
}
