//! The canonical bootstrap image (DESIGN §5; normative spec: `docs/image-format.md`).
//!
//! An image is the whole Raft-visible state of an instance as one self-checking byte
//! stream: magic, framed records (each with a CRC-32C), and a trailing SHA-256 of every
//! byte before it, so `sha256sum` can check a file. The same state gives the same bytes
//! from every family except the HEADER's source-family fields.
//!
//! - [`export`] streams a [`StateView`] (usually a pinned cut from `begin_export`) out;
//! - [`import`] validates while streaming into an empty instance's `ImportSink` and commits
//!   only after the digest checked out; any error drops (aborts) the sink;
//! - [`verify`], [`inspect()`], [`diff()`] read images without a destination;
//! - [`ImageWriter`] / [`ImageReader`] are the record-level codec underneath.
//!
//! Module map: `format` (constants, field codec), `record` (record bodies and field
//! checks), `grammar` (record order and counts, shared by writer and reader), `writer`,
//! `reader`, `inspect`, `diff`, `hexdump`, `fuzz_checks`, `hostile` (structure-aware hostile
//! images: one semantic violation, re-checksummed).
//!
//! **Invariant**: the reader's memory is one record buffer plus O(1) state, whatever the
//! image size; every length is checked against a limit before anything is allocated for it,
//! and buffers grow only as bytes really arrive.

mod diff;
mod error;
pub mod format;
pub mod fuzz_checks;
mod grammar;
mod hexdump;
pub mod hostile;
mod inspect;
mod planted;
mod reader;
mod record;
mod writer;

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use serde::Serialize;

pub use diff::{diff, DiffError, Side};
pub use error::{ErrorClass, ImageError, Location};
pub use hexdump::annotated_hex;
pub use inspect::{
    inspect, ImageInspect, InspectEntry, InspectFile, InspectFileMeta, InspectLog, InspectMeta,
    InspectSnapshot,
};
pub use planted::PlantedReaderBug;
pub use reader::{import, import_with_reader_bug, verify, ImageReader, Item, Record};
pub use record::{Cut, Extension, Header};
pub use writer::{export, export_with_extensions, ImageWriter};

use crate::contract::{Index, SnapshotPath};
use crate::state::{RaftState, Snapshot, SnapshotFile};

/// What an export, import or verification saw: header, cut, and the image's size and digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ImageSummary {
    /// Format major version.
    pub format_major: u16,
    /// Format minor version.
    pub format_minor: u16,
    /// Source family id.
    pub source_family: String,
    /// Source family's format version.
    pub source_family_version: u32,
    /// First retained index.
    pub first: Index,
    /// Last retained index.
    pub last: Index,
    /// Retained entries.
    pub n_entries: u64,
    /// Whether the image carries a snapshot.
    pub has_snapshot: bool,
    /// Snapshot files.
    pub n_snapshot_files: u64,
    /// Snapshot bytes, all files together.
    pub snapshot_bytes: u64,
    /// Records in the image, HEADER and END included.
    pub n_records: u64,
    /// Records skipped as ignorable parts of a newer minor version.
    pub n_ignored_records: u64,
    /// The image's length in bytes.
    pub image_len: u64,
    /// The trailing SHA-256, lower-case hex (what `sha256sum` prints for the bytes before it).
    pub sha256: String,
}

/// What [`export`] reports.
pub type ExportSummary = ImageSummary;
/// What [`import`] reports.
pub type ImportSummary = ImageSummary;

impl ImageSummary {
    pub(crate) fn new(
        header: &Header,
        cut: &Cut,
        n_records: u64,
        n_ignored_records: u64,
        image_len: u64,
        sha256: String,
    ) -> Self {
        ImageSummary {
            format_major: header.format_major,
            format_minor: header.format_minor,
            source_family: header.source_family.clone(),
            source_family_version: header.source_family_version,
            first: cut.first,
            last: cut.last,
            n_entries: cut.n_entries(),
            has_snapshot: cut.has_snapshot,
            n_snapshot_files: cut.n_snapshot_files,
            snapshot_bytes: cut.snapshot_bytes,
            n_records,
            n_ignored_records,
            image_len,
            sha256,
        }
    }
}

/// An image read whole into memory (for tests, fuzzing and small images; `import` and
/// `verify` stream instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedImage {
    /// The HEADER.
    pub header: Header,
    /// The Raft-visible state.
    pub state: RaftState,
    /// The extension sections, in image order.
    pub extensions: Vec<Extension>,
    /// The summary.
    pub summary: ImageSummary,
}

/// Reads and validates a whole image into memory.
pub fn decode(input: impl Read) -> Result<DecodedImage, ImageError> {
    let mut reader = ImageReader::new(input);
    let mut header = None;
    let mut state = RaftState::new();
    let mut extensions = Vec::new();
    let mut snapshot: Option<Snapshot> = None;
    let mut current: Option<(SnapshotPath, Vec<u8>, crate::contract::FileMeta)> = None;
    let finish_file = |snapshot: &mut Option<Snapshot>, current: &mut Option<_>| {
        if let (Some(s), Some((path, data, file_meta))) = (snapshot.as_mut(), current.take()) {
            s.files.insert(path, SnapshotFile { data: Bytes::from(data), file_meta });
        }
    };
    loop {
        let record = reader.next_record()?;
        match record.item {
            Item::Header(h) => header = Some(h),
            Item::Cut(cut) => state.first = cut.first,
            Item::Entry(entry) => state.entries.push(entry),
            Item::Meta(meta) => state.meta = meta,
            Item::Snapshot(meta) => snapshot = Some(Snapshot { meta, files: BTreeMap::new() }),
            Item::File(info) => {
                finish_file(&mut snapshot, &mut current);
                current = Some((info.path, Vec::new(), info.file_meta));
            }
            Item::Chunk { data, .. } => {
                if let Some((_, bytes, _)) = current.as_mut() {
                    bytes.extend_from_slice(data);
                }
            }
            Item::Extension(ext) => extensions.push(ext),
            Item::Ignored { .. } => {}
            Item::End(summary) => {
                finish_file(&mut snapshot, &mut current);
                state.snapshot = snapshot;
                let header = header.unwrap_or_else(|| Header {
                    format_major: summary.format_major,
                    format_minor: summary.format_minor,
                    source_family: summary.source_family.clone(),
                    source_family_version: summary.source_family_version,
                });
                return Ok(DecodedImage { header, state, extensions, summary });
            }
        }
    }
}

/// Encodes a state held in memory as an image (what `export` of an instance holding it
/// writes).
pub fn encode_state(
    state: &RaftState,
    source_family: &str,
    family_version: u32,
    extensions: &[Extension],
    out: impl std::io::Write,
) -> Result<ImageSummary, ImageError> {
    export_with_extensions(state, source_family, family_version, extensions, out)
}

/// The bytes of an image that must be equal for equal states, whatever the source family:
/// everything after the HEADER record and before the digest.
pub fn content_bytes(image: &[u8]) -> Option<&[u8]> {
    let start = format::MAGIC.len();
    let head = image.get(start..start + format::FRAME_HEADER_LEN)?;
    let body_len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
    let content_start = start + format::FRAME_HEADER_LEN + body_len + format::FRAME_CRC_LEN;
    let content_end = image.len().checked_sub(format::DIGEST_LEN)?;
    image.get(content_start..content_end)
}
