//! The export phase: an `export` op pins a cut of the instance; the following steps stream
//! it (`export_cut`), and when it is due the image written from it goes through the image
//! checks — `canonicality`, the operator's views of it (`image_views`: its inspect report
//! and hex dump, whole, bit-flipped and truncated), the whole catalogue of hostile images
//! through the reader (`bad_images`' sweep), then against every family that takes it `import_determinism`,
//! `bad_images` and `import_atomicity` (with `braft_view` at its crash point, for `local`).
//! The source family takes the image on every export; every other family on one export in
//! [`CROSS_FAMILY_EVERY`] (drawn from the seed), which keeps the soak fast while the N×N
//! matrix stays covered over a soak.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Runner, Stop};
use crate::contract::Family;
use crate::sim::checks::bad_images::{
    check_bad_images, flip_one_bit, sweep_catalogue, BadImageOptions,
};
use crate::sim::checks::export_cut::{ExportedImage, ImageCheckFailure, PinnedExport};
use crate::sim::checks::image_views::{self, PlantedViewBug, Views};
use crate::sim::checks::{
    braft_view, canonicality, import_atomicity, import_determinism, panic, CheckName,
    ImageCheckStats,
};
use crate::sim::engine::ops::Op;
use crate::state::RaftState;

/// One export in this many also imports into every other family.
pub const CROSS_FAMILY_EVERY: u32 = 8;

impl Runner {
    /// An `export` op: pins a cut of the instance (unless one is in progress, or the run is
    /// unchecked).
    pub(super) fn begin_export(&mut self, step: usize, op: &Op, spread: u8) -> Result<(), Stop> {
        if self.options.unchecked {
            self.trace.push(format!("#{step} export(spread={spread}) -> skipped (unchecked)"));
            return Ok(());
        }
        if self.export.is_some() {
            self.trace.push(format!("#{step} export(spread={spread}) -> one is in progress"));
            return Ok(());
        }
        let instance = self.instance.as_mut().expect("instance is open between steps");
        let storage = instance.storage_mut();
        let (family, family_version) = (storage.family(), storage.family_format_version());
        match panic::catch(|| storage.begin_export()) {
            Ok(Ok(view)) => {
                let seed = self.disk.as_ref().map_or(0, |d| d.options().seed) ^ step as u64;
                self.export = Some(PinnedExport::new(
                    view,
                    self.model.state.clone(),
                    family,
                    family_version,
                    spread,
                    seed,
                ));
                self.trace.push(format!("#{step} export(spread={spread}) -> pinned"));
                Ok(())
            }
            Ok(Err(e)) if self.faulty => {
                self.trace.push(format!("#{step} export(spread={spread}) -> err: {e}"));
                Ok(())
            }
            Ok(Err(e)) => {
                let what = format!("begin_export failed on an honest disk: {e}");
                Err(self.failure(CheckName::ExportCut, step, op, what).into())
            }
            Err(text) => {
                let what = format!("panic in begin_export: {text}");
                Err(self.failure(CheckName::Panic, step, op, what).into())
            }
        }
    }

    /// Streams the pinned export, and finishes it (running the image checks) when due.
    pub(super) fn advance_export(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let Some(export) = self.export.as_mut() else { return Ok(()) };
        let due = match export.advance() {
            Ok(due) => due,
            Err(e) => return Err(self.image_check_failed(step, op, e)),
        };
        if !due {
            return Ok(());
        }
        let export = self.export.take().expect("checked above");
        let planted_views = self.options.planted_views;
        match finish(export, &self.image_families, &self.options.bad_images, planted_views) {
            Ok(stats) => {
                self.stats.exports += stats.exports;
                self.stats.imports += stats.imports;
                self.trace.push(format!("#{step} export finished and checked"));
                Ok(())
            }
            Err(e) => Err(self.image_check_failed(step, op, e)),
        }
    }

    fn image_check_failed(&mut self, step: usize, op: &Op, e: ImageCheckFailure) -> Stop {
        match e {
            ImageCheckFailure::SourceUnreadable(what) if self.dishonest => {
                self.refused(step, "export", &what)
            }
            ImageCheckFailure::SourceUnreadable(what) => {
                self.failure(CheckName::ExportCut, step, op, what).into()
            }
            ImageCheckFailure::Failed(check, what) => self.failure(check, step, op, what).into(),
        }
    }
}

/// Writes the image from the cut and runs every image check against every family that takes
/// it this time.
fn finish(
    export: PinnedExport,
    families: &[Arc<dyn Family>],
    bad_images: &BadImageOptions,
    planted_views: Option<PlantedViewBug>,
) -> Result<ImageCheckStats, ImageCheckFailure> {
    let mut stats = ImageCheckStats::default();
    let image = export.into_image()?;
    stats.exports += 1;
    canonicality::matches_encoding(&image.bytes, &image.expected, &image.family)
        .map_err(|what| ImageCheckFailure::Failed(CheckName::Canonicality, what))?;
    let views = Views {
        bytes: &image.bytes,
        expected: &image.expected,
        family: &image.family,
        family_version: image.family_version,
        seed: image.seed,
    };
    image_views::check(&views, planted_views)
        .map_err(|what| ImageCheckFailure::Failed(CheckName::ImageViews, what))?;
    if bad_images.sweep_catalogue {
        stats.imports += sweep_catalogue(
            &image.expected,
            &image.family,
            image.family_version,
            image.seed,
            bad_images,
        )
        .map_err(|what| ImageCheckFailure::Failed(CheckName::BadImages, what))?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(image.seed);
    // The source family is checked on every export; the others (the N×N bootstrap matrix)
    // on one export in CROSS_FAMILY_EVERY, drawn from the seed, because an import into a
    // database engine costs far more than the steps around it.
    let cross = rng.random_range(0..CROSS_FAMILY_EVERY) == 0;
    for family in families {
        if family.scheme() == image.family || cross {
            check_family(family, &image, &mut rng, bad_images, &mut stats)?;
        }
    }
    Ok(stats)
}

/// The import checks of one family: two imports (determinism, and canonicality of the
/// re-exports), bad images (a flipped bit and structure-aware hostile images), a power loss
/// during an import (and, for the local family, what braft would read at that crash point).
fn check_family(
    family: &Arc<dyn Family>,
    image: &ExportedImage,
    rng: &mut ChaCha8Rng,
    bad_images: &BadImageOptions,
    stats: &mut ImageCheckStats,
) -> Result<(), ImageCheckFailure> {
    let scheme = family.scheme();
    let fail = |check: CheckName, what: String| {
        ImageCheckFailure::Failed(check, format!("{scheme}: {what}"))
    };
    let (bytes, expected): (&[u8], &RaftState) = (&image.bytes, &image.expected);
    let disk_seed: u64 = rng.random();
    if scheme == image.family {
        // The bit flip `bad_images` is about to draw, drawn from a copy of the stream.
        let (flipped, at) = flip_one_bit(bytes, &mut rng.clone());
        image_views::judge_damaged_dump(&flipped).map_err(|w| {
            fail(CheckName::ImageViews, format!("annotated_hex, byte {at} flipped: {w}"))
        })?;
    }
    let import_len = import_determinism::check(family, bytes, expected, disk_seed, stats)
        .map_err(|(check, what)| fail(check, what))?;
    stats.imports += check_bad_images(family, bytes, expected, disk_seed, rng, bad_images)
        .map_err(|what| fail(CheckName::BadImages, what))?;
    let crash_offset = import_atomicity::crash_offset(import_len, rng);
    let braft = braft_view::reads(family.as_ref());
    let crashed =
        import_atomicity::check(family, bytes, expected, disk_seed, crash_offset, braft, stats)
            .map_err(|what| fail(CheckName::ImportAtomicity, what))?;
    braft_view::judge_crashed_import(&crashed, expected)
        .map_err(|what| fail(CheckName::BraftView, what))
}
