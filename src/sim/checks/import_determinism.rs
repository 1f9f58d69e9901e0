//! `import_determinism` (DESIGN §7, check 4): one image imported into two empty instances
//! gives equivalent, byte-identical results.
//!
//! **What it verifies.** The image of a finished export, imported into an empty instance of
//! a family on each of two simulated disks with the same seed, gives the state at the cut
//! both times (read back in full), and the two disks end byte-identical (visible and durable
//! images alike). After each import the `canonicality` re-export is asked too.
//!
//! **When.** Whenever an export finishes: in the source family on every export, in every
//! other registered family on one export in
//! [`crate::sim::engine::runner::CROSS_FAMILY_EVERY`]. Proven to bite by
//! `import-stamps-counter`.
//!
//! **What not.** Imports on a faulty disk (both disks are fault-free), and determinism
//! across processes (a process-global counter that does not change within one run of the
//! check; the `determinism` check runs a whole seed twice for that).

use std::sync::Arc;

use crate::contract::Family;
use crate::image::import;
use crate::sim::checks::{
    canonicality, fresh_import_disk, open_import, CheckName, ImageCheckStats,
};
use crate::state::{first_difference, RaftState};
use crate::vfs::{Image, SimDisk};

/// Imports `image` (which holds `expected`) into two empty instances of `family` on two
/// disks seeded `disk_seed` and compares them. Returns how many disk operations one import
/// made (the window `import_atomicity` draws its crash point from), or the failed check.
pub fn check(
    family: &Arc<dyn Family>,
    image: &[u8],
    expected: &RaftState,
    disk_seed: u64,
    stats: &mut ImageCheckStats,
) -> Result<u64, (CheckName, String)> {
    let scheme = family.scheme();
    let determinism = |what: String| (CheckName::ImportDeterminism, what);
    let mut first_disk: Option<Arc<SimDisk>> = None;
    let mut imported_len = 0;
    for _ in 0..2 {
        let disk = fresh_import_disk(disk_seed);
        let mut dest = open_import(family, &disk).map_err(determinism)?;
        let before = disk.op_count();
        import(image, dest.as_mut()).map_err(|e| determinism(format!("import failed: {e}")))?;
        stats.imports += 1;
        imported_len = disk.op_count() - before;
        let state = RaftState::capture(dest.as_ref())
            .map_err(|e| determinism(format!("read after import: {e}")))?;
        if let Some(d) = first_difference(&state, expected) {
            return Err(determinism(format!("imported vs image: {d}")));
        }
        canonicality::re_export_matches(dest.as_ref(), scheme, image)
            .map_err(|what| (CheckName::Canonicality, what))?;
        drop(dest);
        let Some(first) = &first_disk else {
            first_disk = Some(disk);
            continue;
        };
        if !(first.same_image(&disk, Image::Visible) && first.same_image(&disk, Image::Durable)) {
            return Err(determinism(
                "two imports of one image on identical disks left different bytes".to_string(),
            ));
        }
    }
    Ok(imported_len)
}
