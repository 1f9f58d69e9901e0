//! `canonicality` (DESIGN §7, check 5): every family exports the same content bytes for the
//! same state.
//!
//! **What it verifies.** An image exported from a pinned cut has the content bytes of the
//! canonical encoding of the state at the cut ([`matches_encoding`]), and every family that
//! imports it exports the same content bytes again ([`re_export_matches`], asked by
//! `import_determinism` after each of its imports).
//!
//! **When.** Whenever an export finishes: the source family's image always, the re-export
//! in the source family on every export and in every other family on one export in
//! [`crate::sim::engine::runner::CROSS_FAMILY_EVERY`]. Proven to bite by
//! `import-lists-files-twice`.
//!
//! **What not.** Only content bytes are compared: the header's source-family fields differ
//! between families by design.

use crate::contract::RaftStorage;
use crate::image::{content_bytes, encode_state, export};
use crate::state::RaftState;

/// Whether `image` (exported by `family`) has the content bytes of the canonical encoding of
/// `expected`; `Err` says why not.
pub fn matches_encoding(image: &[u8], expected: &RaftState, family: &str) -> Result<(), String> {
    let mut canonical = Vec::new();
    encode_state(expected, "model", 0, &[], &mut canonical)
        .map_err(|e| format!("encoding the model failed: {e}"))?;
    if content_bytes(image) != content_bytes(&canonical) {
        return Err(format!("{family}'s export differs from the canonical encoding of the state"));
    }
    Ok(())
}

/// Whether `dest` (of `scheme`, just given `image`) exports `image`'s content bytes again.
pub fn re_export_matches(dest: &dyn RaftStorage, scheme: &str, image: &[u8]) -> Result<(), String> {
    let mut again = Vec::new();
    export(dest, scheme, dest.family_format_version(), &mut again)
        .map_err(|e| format!("re-export failed: {e}"))?;
    if content_bytes(&again) != content_bytes(image) {
        return Err("re-export after import differs from the image's content bytes".to_string());
    }
    Ok(())
}
