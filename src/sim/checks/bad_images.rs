//! `bad_images` (DESIGN §7, check 8): bad images are rejected and leave the destination
//! empty.
//!
//! **What it verifies.** The image of a finished export with one bit flipped at a seeded
//! byte is rejected by an import into an empty instance, and the destination is empty
//! afterwards, also after a reopen: nothing of a rejected image becomes visible.
//!
//! **When.** Whenever an export finishes, in the same families as `import_determinism`.
//! Proven to bite by `import-not-atomic` (records applied as they arrive).
//!
//! **What not.** Only flipped bits, which the record CRCs and the trailing digest reject
//! before a field is read; structurally valid images around one semantic violation are not
//! generated here yet.

use std::sync::Arc;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::contract::{Family, StateView};
use crate::image::import;
use crate::sim::checks::{fresh_import_disk, open_import, ImageCheckStats};
use crate::state::{first_difference, RaftState};

/// Imports `image` with one bit flipped (byte and bit drawn from `rng`) into an empty
/// instance of `family` on a disk seeded `disk_seed`: it must be rejected and leave the
/// destination empty, also after a reopen. `Err` says what went wrong.
pub fn check(
    family: &Arc<dyn Family>,
    image: &[u8],
    disk_seed: u64,
    rng: &mut ChaCha8Rng,
    stats: &mut ImageCheckStats,
) -> Result<(), String> {
    let mut bad = image.to_vec();
    let at = rng.random_range(0..bad.len());
    bad[at] ^= 1 << rng.random_range(0..8u32);
    let disk = fresh_import_disk(disk_seed);
    let mut dest = open_import(family, &disk)?;
    stats.imports += 1;
    if import(bad.as_slice(), dest.as_mut()).is_ok() {
        return Err(format!("an image with byte {at} flipped was accepted"));
    }
    expect_empty(dest.as_ref()).map_err(|w| format!("after a rejected image: {w}"))?;
    drop(dest);
    let dest = open_import(family, &disk)?;
    expect_empty(dest.as_ref()).map_err(|w| format!("after a rejected image and reopen: {w}"))
}

fn expect_empty(view: &dyn StateView) -> Result<(), String> {
    let state = RaftState::capture(view).map_err(|e| format!("read: {e}"))?;
    match first_difference(&state, &RaftState::new()) {
        None => Ok(()),
        Some(d) => Err(format!("the destination is not empty: {d}")),
    }
}
