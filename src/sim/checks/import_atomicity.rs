//! `import_atomicity` (DESIGN §7, check 6): a crash at any point of an import leaves the
//! destination empty or complete.
//!
//! **What it verifies.** A power loss at a seeded disk operation of an import of a finished
//! export's image (anywhere in the window one import takes) leaves, after a reopen, an empty
//! destination or, for a durable family, the complete imported state; an import that had
//! returned Ok must not be lost.
//!
//! **When.** Whenever an export finishes, in the same families as `import_determinism`, one
//! seeded crash point per import. Proven to bite by `import-commit-in-steps`. (The
//! conformance crash case `crash_in_import` enumerates every point for each family.)
//!
//! **What not.** Every crash point in the soak (one per export; the crash cases enumerate
//! them all on a fixed state), and imports on a faulty disk. What braft would read at that
//! crash point is `braft_view`'s, from the [`CrashedImport`] this check leaves.

use std::sync::Arc;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::contract::Family;
use crate::image::import;
use crate::sim::checks::{fresh_import_disk, open_import, ImageCheckStats, IMPORT_LOCATION};
use crate::state::{first_difference, RaftState};
use crate::vfs::SimDisk;

/// What a checked crashed import left, for the checks that judge the same crash point.
pub struct CrashedImport {
    /// Where the destination lives on the disks.
    pub location: &'static str,
    /// A copy of the disk as the power loss left it, before the reopen repaired anything
    /// (kept only when asked for).
    pub crashed: Option<Arc<SimDisk>>,
    /// The disk after the reopen.
    pub disk: Arc<SimDisk>,
    /// The state the reopened destination shows.
    pub state: RaftState,
}

/// Where in an import of `import_len` disk operations the power loss strikes: drawn from
/// `rng`, counted from the import's start (the import's own length included, so a power
/// loss after it returned is drawn too).
pub fn crash_offset(import_len: u64, rng: &mut ChaCha8Rng) -> u64 {
    rng.random_range(0..=import_len)
}

/// Imports `image` (which holds `expected`) into an empty instance of `family` on a disk
/// seeded `disk_seed`, with a power loss `crash_offset` disk operations into the import
/// ([`crash_offset`]), then reopens and checks what is left. With `keep_crashed`, a copy of
/// the crashed disk is kept in what it returns. `Err` says what went wrong.
pub fn check(
    family: &Arc<dyn Family>,
    image: &[u8],
    expected: &RaftState,
    disk_seed: u64,
    crash_offset: u64,
    keep_crashed: bool,
    stats: &mut ImageCheckStats,
) -> Result<CrashedImport, String> {
    let disk = fresh_import_disk(disk_seed);
    let mut dest = open_import(family, &disk)?;
    let crash_at = disk.op_count() + crash_offset;
    disk.crash_after_op(crash_at);
    let completed = import(image, dest.as_mut()).is_ok();
    stats.imports += 1;
    drop(dest);
    disk.crash();
    let crashed = keep_crashed.then(|| disk.fork());
    let dest = open_import(family, &disk)?;
    let state = RaftState::capture(dest.as_ref()).map_err(|e| format!("read after crash: {e}"))?;
    let allowed_complete = family.durable() && state == *expected;
    if state != RaftState::new() && !allowed_complete {
        let d = first_difference(&state, expected).unwrap_or_default();
        return Err(format!(
            "a power loss during import (import {}) left neither an empty nor the complete \
             state: vs complete: {d}",
            if completed { "had returned Ok" } else { "had not returned" }
        ));
    }
    if completed && family.durable() && state != *expected {
        return Err("an import that returned Ok was lost by a power loss".to_string());
    }
    drop(dest);
    Ok(CrashedImport { location: IMPORT_LOCATION, crashed, disk, state })
}
