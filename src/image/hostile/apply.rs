//! Applying a violation to the records of a valid image: one function per [`Part`], in
//! `structure.rs` (the header, flags and kinds, extensions, section order, the CUT's counts,
//! bodies and frames) and `content.rs` (entries, files and chunks, paths, meta, snapshot), plus
//! the random choices they share.

use rand::{Rng, RngExt};

use super::catalogue::{Part, Violation};
use super::prepare::satisfied;
use super::records::{cut_of, Applied, Layout, RawRecord};
use super::{content, structure};

/// Applies `violation` to `records` (a valid image's, laid out as `layout`), or `None` when
/// the image lacks what it needs.
pub(super) fn apply<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut Vec<RawRecord>,
    layout: &Layout,
    rng: &mut R,
) -> Option<Applied> {
    let mut cut = cut_of(records);
    if !satisfied(violation.needs(), layout, records, &cut) {
        return None;
    }
    let (cut, v) = (&mut cut, violation);
    match violation.part() {
        Part::Header => structure::header(v, records, layout, cut, rng),
        Part::FlagsAndKinds => structure::flags_and_kinds(v, records, layout, cut, rng),
        Part::Extensions => structure::extensions(v, records, layout, cut, rng),
        Part::Order => structure::order(v, records, layout, cut, rng),
        Part::Cut => structure::cut(v, records, layout, cut, rng),
        Part::Frames => structure::frames(v, records, layout, cut, rng),
        Part::Entries => content::entries(v, records, layout, cut, rng),
        Part::Files => content::files(v, records, layout, cut, rng),
        Part::Paths => content::paths(v, records, layout, cut, rng),
        Part::Meta => content::meta(v, records, layout, cut, rng),
        Part::Snapshot => content::snapshot(v, records, layout, cut, rng),
    }
}

pub(super) fn pick<T: Copy, R: Rng + ?Sized>(rng: &mut R, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// A value above `limit`: just above it, far above it, or `u64::MAX`.
pub(super) fn over<R: Rng + ?Sized>(rng: &mut R, limit: u64) -> u64 {
    match rng.random_range(0..4) {
        0 => limit + 1,
        1 => u64::MAX,
        _ => rng.random_range(limit + 1..=u64::MAX),
    }
}

pub(super) fn over_u32<R: Rng + ?Sized>(rng: &mut R, limit: u32) -> u32 {
    over(rng, limit as u64).min(u32::MAX as u64).max(limit as u64 + 1) as u32
}

/// A length other than `len`, at most `max`: longer (past the body) or shorter (leaving bytes
/// after the field), both `malformed`.
pub(super) fn lie_about<R: Rng + ?Sized>(rng: &mut R, len: usize, max: usize) -> usize {
    if len == 0 || (len < max && rng.random()) {
        rng.random_range(len + 1..=max.min(len + 1 + (1 << 20)))
    } else {
        rng.random_range(0..len)
    }
}
