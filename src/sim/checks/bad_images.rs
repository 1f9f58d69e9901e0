//! `bad_images` (DESIGN §7, check 8): an image the reader must reject is rejected, and the
//! destination stays empty, after every rejection and after a reopen. Per family check:
//!
//! - the exported image with one bit flipped, which the integrity layer (CRC-32C, SHA-256)
//!   must reject before any field is read;
//! - [`BadImageOptions::hostile_per_check`] structure-aware hostile images
//!   ([`crate::image::hostile`]), drawn from the seed: the state at the cut with exactly one
//!   semantic violation, re-checksummed, so that only the field, grammar and path rules can
//!   reject it — each with exactly the class and offset the specification names for its
//!   violation.
//!
//! Every rejection located at a record must name that record's kind in its text
//! ([`error_names_kind`], from `image_views`).
//!
//! Every bad image goes into the same fresh destination in turn (a rejected import must leave
//! it empty enough to take the next), which is then reopened and must still be empty.
//!
//! Once per export, besides the per-family images, [`sweep_catalogue`] runs the *whole*
//! catalogue of violations through the reader: each one that applies to the state at the cut,
//! imported into a fresh memory instance (the reader's rules do not depend on the
//! destination; the per-family images above test the destinations' atomicity) and given to
//! `verify`, the reader `qk image verify` runs; and every edge image ([`edge_images`]: a valid
//! image with one field exactly at its limit), which both must accept. So every rule of the
//! reader is tested on every export, from both sides of its limit, not one or two drawn at
//! random: a short soak meets every violation.
//!
//! Proven to bite by `import-not-atomic` (a family that applies records as they arrive, caught
//! by either kind of bad image) and by the planted reader bugs ([`PlantedReaderBug`], e.g. a
//! reader that skips the path order check), which only the hostile images catch.
//!
//! What it does not check: images that are bad in more than one way (the reader reports the
//! first violation, and one violation per image keeps the expected class exact).

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::contract::{Family, RaftStorage, StateView};
use crate::families::memory::MemoryStorage;
use crate::image::{hostile, import_with_reader_bug, verify, ImageError, PlantedReaderBug};
use crate::sim::checks::image_views::error_names_kind;
use crate::sim::checks::{edge_images, fresh_import_disk, open_import};
use crate::state::{first_difference, RaftState};

/// Hostile images per family check by default. Each costs one import that stops at its
/// violation, into a destination the bit-flipped image has already opened.
pub const HOSTILE_PER_CHECK: u8 = 2;

/// Salt that separates the hostile images' random stream from the other image checks', so
/// that drawing them leaves every other draw of a seed where it was.
const HOSTILE_STREAM_SALT: u64 = 0x686f_7374_696c_6521;

/// Salt of the catalogue sweep's random stream (the variable parts of each violation).
const SWEEP_STREAM_SALT: u64 = 0x7377_6565_7021_2121;

/// How the `bad_images` check tests rejections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadImageOptions {
    /// Structure-aware hostile images per family check, besides the one bit flip.
    pub hostile_per_check: u8,
    /// Whether every export also runs the whole catalogue through the reader
    /// ([`sweep_catalogue`]).
    #[serde(default = "sweep_by_default")]
    pub sweep_catalogue: bool,
    /// A reader bug planted in the imports of this check (self-tests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_reader: Option<PlantedReaderBug>,
}

impl Default for BadImageOptions {
    fn default() -> Self {
        BadImageOptions {
            hostile_per_check: HOSTILE_PER_CHECK,
            sweep_catalogue: true,
            planted_reader: None,
        }
    }
}

fn sweep_by_default() -> bool {
    true
}

/// Imports bad versions of `image` (which holds `state`) into one fresh instance of `family`
/// on a disk seeded with `disk_seed`: the bit flip drawn from `rng` (two draws, as always),
/// then the hostile images drawn from a stream of their own. Returns how many imports it
/// made, or what went wrong.
pub fn check_bad_images(
    family: &Arc<dyn Family>,
    image: &[u8],
    state: &RaftState,
    disk_seed: u64,
    rng: &mut ChaCha8Rng,
    options: &BadImageOptions,
) -> Result<u64, String> {
    let import = |bytes: &[u8], dest: &mut dyn RaftStorage| {
        import_with_reader_bug(bytes, dest, options.planted_reader)
    };
    let (bad, at) = flip_one_bit(image, rng);
    let disk = fresh_import_disk(disk_seed);
    let mut dest = open_import(family, &disk)?;
    match import(&bad, dest.as_mut()) {
        Ok(_) => return Err(format!("an image with byte {at} flipped was accepted")),
        Err(e) if !e.is_bad_image() => {
            return Err(format!("an image with byte {at} flipped failed, not as a bad image: {e}"))
        }
        Err(_) => {}
    }
    expect_empty(dest.as_ref()).map_err(|w| format!("after a rejected image: {w}"))?;
    let mut imports = 1;
    let mut hostile_rng = ChaCha8Rng::seed_from_u64(disk_seed ^ HOSTILE_STREAM_SALT);
    let version = dest.family_format_version();
    for _ in 0..options.hostile_per_check {
        let hostile = hostile::generate(state, family.scheme(), version, &mut hostile_rng)
            .map_err(|e| format!("the state at the cut cannot be made hostile: {e}"))?;
        let result = import(&hostile.bytes, dest.as_mut());
        imports += 1;
        hostile.judge(&result)?;
        names_kind(&result)?;
        expect_empty(dest.as_ref()).map_err(|w| {
            format!("after rejecting a hostile image (`{}`): {w}", hostile.violation)
        })?;
    }
    drop(dest);
    let dest = open_import(family, &disk)?;
    expect_empty(dest.as_ref()).map_err(|w| format!("after rejected images and a reopen: {w}"))?;
    Ok(imports)
}

/// Every violation of the catalogue ([`hostile::Violation::ALL`]) that applies to `state`
/// (exported by `source_family` at `family_version`), each in its own image: imported into a
/// fresh memory instance, which must reject it with exactly the class and offset the
/// specification names and stay empty, and given to [`verify`], which must reject it the
/// same way. Then every edge image ([`edge_images`]: a field exactly at its limit), which
/// both must accept. `seed` drives the violations' variable parts. Returns how many imports it made,
/// or what went wrong.
pub fn sweep_catalogue(
    state: &RaftState,
    source_family: &str,
    family_version: u32,
    seed: u64,
    options: &BadImageOptions,
) -> Result<u64, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SWEEP_STREAM_SALT);
    let mut imports = 0;
    for &violation in hostile::Violation::ALL {
        let hostile =
            match hostile::generate_with(state, source_family, family_version, violation, &mut rng)
            {
                Ok(Some(hostile)) => hostile,
                Ok(None) => continue,
                Err(e) => return Err(format!("the state at the cut cannot be made hostile: {e}")),
            };
        let mut dest = MemoryStorage::new();
        let result = import_with_reader_bug(&hostile.bytes[..], &mut dest, options.planted_reader);
        imports += 1;
        hostile.judge(&result).map_err(|w| format!("catalogue sweep, import: {w}"))?;
        names_kind(&result).map_err(|w| format!("catalogue sweep, import: {w}"))?;
        expect_empty(&dest).map_err(|w| {
            format!("after rejecting a hostile image (`{}`): {w}", hostile.violation)
        })?;
        if options.planted_reader.is_none() {
            let verified = verify(&hostile.bytes[..]);
            hostile.judge(&verified).map_err(|w| format!("catalogue sweep, verify: {w}"))?;
            names_kind(&verified).map_err(|w| format!("catalogue sweep, verify: {w}"))?;
        }
    }
    let edges =
        edge_images::check_edges(state, source_family, family_version, options.planted_reader)
            .map_err(|w| format!("catalogue sweep, {w}"))?;
    Ok(imports + edges)
}

/// `image` with one bit flipped, the byte and the bit drawn from `rng` (two draws).
pub fn flip_one_bit(image: &[u8], rng: &mut ChaCha8Rng) -> (Vec<u8>, usize) {
    let mut bad = image.to_vec();
    let at = rng.random_range(0..bad.len());
    bad[at] ^= 1 << rng.random_range(0..8u32);
    (bad, at)
}

/// A rejection located at a record names that record's kind ([`error_names_kind`]).
fn names_kind<T>(result: &Result<T, ImageError>) -> Result<(), String> {
    match result {
        Err(e) => error_names_kind(e),
        Ok(_) => Ok(()),
    }
}

fn expect_empty(view: &dyn StateView) -> Result<(), String> {
    let state = RaftState::capture(view).map_err(|e| format!("read: {e}"))?;
    match first_difference(&state, &RaftState::new()) {
        None => Ok(()),
        Some(d) => Err(format!("the destination is not empty: {d}")),
    }
}
