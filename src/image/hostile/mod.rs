//! Structure-aware hostile images: a valid image with exactly one semantic violation, framed
//! again with correct CRC-32Cs and a correct trailing SHA-256, so that only the reader's field,
//! grammar and path rules can reject it (DESIGN §7 check 8; the rules are
//! `docs/image-format.md`). A flipped bit is caught by the CRC before any field is read; these
//! images get past the integrity layer and test everything behind it.
//!
//! [`generate`] draws a [`Violation`] from the catalogue ([`Violation::ALL`]), gives the state
//! what that violation needs (entries, a snapshot, a file with chunks, …; added, never taken
//! away), encodes it, splits the image into its records, applies the violation to the
//! records, and seals them again. Each violation names the class the reader must report
//! ([`Violation::expected_class`], the specification's table) and the generator works out the
//! record at fault, so a check asserts the class and the byte offset, not just "an error".
//!
//! The expectations are written from the specification (§5, §7, §12, §13), one per violation;
//! they are not computed by the reader's code, so a reader that drifts from the spec fails.
//!
//! Module map: `catalogue` (the violations, their expected classes and needs), `prepare`
//! (giving the state what a violation needs), `records` (a valid image as editable records,
//! and sealing them), `apply` with `structure` and `content` (the edits, by part). File
//! metadata and peer ids are isolated in `content::edit_file_meta` and [`INVALID_PEERS`], the
//! two places a change of those encodings touches.

mod apply;
mod catalogue;
mod content;
mod prepare;
mod records;
mod structure;

use rand::{Rng, RngExt};

use super::encode_state;
use super::error::{ErrorClass, ImageError};
use crate::state::RaftState;

pub use catalogue::{Part, Violation};
pub use content::INVALID_PEERS;
pub use records::{record_offset, seal_records, split_records, RawRecord};

use apply::apply;
use prepare::prepare;
use records::{seal, Layout};

/// A hostile image and the rejection it must get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostileImage {
    /// The violation it carries.
    pub violation: Violation,
    /// The image.
    pub bytes: Vec<u8>,
    /// The class the reader must report.
    pub class: ErrorClass,
    /// The number of the record at fault.
    pub record: u64,
    /// The byte offset the reader must report (the start of that record).
    pub offset: u64,
}

impl HostileImage {
    /// `Ok` when `result` is exactly the rejection this image must get (its class at its
    /// offset); otherwise what went wrong, in words.
    pub fn judge<T>(&self, result: &Result<T, ImageError>) -> Result<(), String> {
        let want = format!(
            "{} at byte {} (record #{}) for `{}`",
            self.class, self.offset, self.record, self.violation
        );
        match result {
            Ok(_) => Err(format!("a hostile image was accepted; expected {want}")),
            Err(e) if e.class() == self.class && e.offset() == Some(self.offset) => Ok(()),
            Err(e) => Err(format!("a hostile image was rejected with {e}; expected {want}")),
        }
    }
}

/// A hostile image built from `state` (encoded as exported by `source_family`): one
/// violation drawn from the catalogue, applied to the records of the state's image (given
/// what the violation needs first). The draw is uniform over the violations that apply.
pub fn generate<R: Rng + ?Sized>(
    state: &RaftState,
    source_family: &str,
    family_version: u32,
    rng: &mut R,
) -> Result<HostileImage, ImageError> {
    let start = rng.random_range(0..Violation::ALL.len());
    for k in 0..Violation::ALL.len() {
        let violation = Violation::ALL[(start + k) % Violation::ALL.len()];
        if let Some(image) = generate_with(state, source_family, family_version, violation, rng)? {
            return Ok(image);
        }
    }
    unreachable_catalogue()
}

fn unreachable_catalogue() -> Result<HostileImage, ImageError> {
    // `major-newer` applies to every image, so the loop above always returns.
    Err(ImageError::format(
        ErrorClass::Malformed,
        0,
        super::Location::Nowhere,
        "no violation of the catalogue applies",
    ))
}

/// The hostile image of `state` with `violation`, or `None` when the violation cannot be
/// applied to this state even after giving it what it needs (a path too long to extend, a
/// configuration too large to lie about). Fails only when `state` itself cannot be encoded.
pub fn generate_with<R: Rng + ?Sized>(
    state: &RaftState,
    source_family: &str,
    family_version: u32,
    violation: Violation,
    rng: &mut R,
) -> Result<Option<HostileImage>, ImageError> {
    let state = prepare(state, violation.needs(), rng);
    let mut image = Vec::new();
    encode_state(&state, source_family, family_version, &[], &mut image)?;
    let mut records = split_records(&image)?;
    let layout = Layout::of(&records);
    let Some(applied) = apply(violation, &mut records, &layout, rng) else { return Ok(None) };
    Ok(Some(HostileImage {
        violation,
        bytes: seal(&records, applied.body_len.map(|len| (applied.at, len))),
        class: violation.expected_class(),
        record: applied.at as u64,
        offset: record_offset(&records, applied.at),
    }))
}
