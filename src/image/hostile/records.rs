//! A valid image as a list of records the generator edits, where its sections are, and the
//! sealing that frames the edited records again with correct CRC-32Cs and a correct SHA-256.

use std::ops::Range;

use sha2::{Digest, Sha256};

use super::super::error::ImageError;
use super::super::format::{
    BodyWriter, RecordKind, DIGEST_LEN, FLAG_IGNORABLE, FRAME_CRC_LEN, FRAME_HEADER_LEN, MAGIC,
};
use super::super::record::{decode_body, encode_cut, encode_end, Cut, Decoded};
use super::super::verify;

/// One record of an image as bytes: what the generator edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// The kind byte.
    pub kind: u8,
    /// The flags byte.
    pub flags: u8,
    /// The body.
    pub body: Vec<u8>,
}

impl RawRecord {
    pub(super) fn new(kind: RecordKind, body: Vec<u8>) -> Self {
        RawRecord { kind: kind as u8, flags: 0, body }
    }

    fn framed_len(&self) -> usize {
        FRAME_HEADER_LEN + self.body.len() + FRAME_CRC_LEN
    }
}

/// Splits a valid image into its records (the image is verified first, so an invalid one is
/// refused with the reader's error).
pub fn split_records(image: &[u8]) -> Result<Vec<RawRecord>, ImageError> {
    verify(image)?;
    let mut records = Vec::new();
    let mut at = MAGIC.len();
    let end = image.len() - DIGEST_LEN;
    while at < end {
        let len = u32::from_le_bytes([image[at + 2], image[at + 3], image[at + 4], image[at + 5]])
            as usize;
        let body = image[at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + len].to_vec();
        records.push(RawRecord { kind: image[at], flags: image[at + 1], body });
        at += FRAME_HEADER_LEN + len + FRAME_CRC_LEN;
    }
    Ok(records)
}

/// The magic, every record framed with its CRC-32C, and the SHA-256 of it all: an image whose
/// integrity layer is correct whatever the records say.
pub fn seal_records(records: &[RawRecord]) -> Vec<u8> {
    seal(records, None)
}

/// Byte offset of record `k` in the sealed image of `records`.
pub fn record_offset(records: &[RawRecord], k: usize) -> u64 {
    (MAGIC.len() + records[..k].iter().map(RawRecord::framed_len).sum::<usize>()) as u64
}

/// Seals `records`; `body_len` replaces one record's frame length field (the one violation
/// that lies in the frame itself).
pub(super) fn seal(records: &[RawRecord], body_len: Option<(usize, u32)>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (k, r) in records.iter().enumerate() {
        let len = match body_len {
            Some((at, len)) if at == k => len,
            _ => r.body.len() as u32,
        };
        let start = out.len();
        out.push(r.kind);
        out.push(r.flags);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&r.body);
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Where the sections of a valid image's records are.
#[derive(Debug)]
pub(super) struct Layout {
    /// Record numbers of the ENTRY records.
    pub(super) entries: Range<usize>,
    /// META's record number.
    pub(super) meta: usize,
    /// SNAPSHOT's record number.
    pub(super) snapshot: Option<usize>,
    /// Each file's FILE record and chunks.
    pub(super) files: Vec<FileGroup>,
    /// END's record number (the last).
    pub(super) end: usize,
}

#[derive(Clone, Debug)]
pub(super) struct FileGroup {
    /// The FILE record's number.
    pub(super) at: usize,
    /// One past its last CHUNK.
    pub(super) end: usize,
    pub(super) path: String,
    pub(super) len: u64,
    /// Whether its metadata sets `checksum` (the record's last field).
    pub(super) has_meta: bool,
}

impl FileGroup {
    pub(super) fn chunks(&self) -> Range<usize> {
        self.at + 1..self.end
    }
}

impl Layout {
    pub(super) fn of(records: &[RawRecord]) -> Layout {
        let mut layout =
            Layout { entries: 2..2, meta: 2, snapshot: None, files: Vec::new(), end: 0 };
        for (k, record) in records.iter().enumerate() {
            match RecordKind::from_byte(record.kind) {
                Some(RecordKind::Entry) => layout.entries.end = k + 1,
                Some(RecordKind::Meta) => layout.meta = k,
                Some(RecordKind::Snapshot) => layout.snapshot = Some(k),
                Some(RecordKind::File) => {
                    if let Ok(Decoded::File(info)) =
                        decode_body(RecordKind::File, &record.body, false)
                    {
                        layout.files.push(FileGroup {
                            at: k,
                            end: k + 1,
                            path: info.path.as_str().to_string(),
                            len: info.len,
                            has_meta: info.file_meta.checksum.is_some(),
                        });
                    }
                }
                Some(RecordKind::Chunk) => {
                    if let Some(group) = layout.files.last_mut() {
                        group.end = k + 1;
                    }
                }
                Some(RecordKind::End) => layout.end = k,
                _ => {}
            }
        }
        layout
    }

    pub(super) fn n_entries(&self) -> usize {
        self.entries.len()
    }
}

/// What applying a violation left: the record at fault, and a frame length to write instead
/// of the true one (only for `record-body-over-limit`).
pub(super) struct Applied {
    pub(super) at: usize,
    pub(super) body_len: Option<u32>,
}

pub(super) fn at(k: usize) -> Option<Applied> {
    Some(Applied { at: k, body_len: None })
}

pub(super) fn cut_of(records: &[RawRecord]) -> Cut {
    match decode_body(RecordKind::Cut, &records[1].body, false) {
        Ok(Decoded::Cut(cut)) => cut,
        _ => Cut { first: 1, last: 0, has_snapshot: false, n_snapshot_files: 0, snapshot_bytes: 0 },
    }
}

pub(super) fn set_cut(records: &mut [RawRecord], cut: &Cut) {
    let mut w = BodyWriter::default();
    encode_cut(&mut w, cut);
    records[1].body = w.buf;
}

/// Rewrites END to count the records before it (after records were inserted or removed).
pub(super) fn fix_end(records: &mut [RawRecord]) {
    let n = records.len();
    let mut w = BodyWriter::default();
    encode_end(&mut w, n as u64 - 1);
    records[n - 1].body = w.buf;
}

pub(super) fn insert(records: &mut Vec<RawRecord>, k: usize, record: RawRecord) {
    records.insert(k, record);
    fix_end(records);
}

pub(super) fn remove(records: &mut Vec<RawRecord>, k: usize) {
    records.remove(k);
    fix_end(records);
}

pub(super) fn put_u64(body: &mut [u8], at: usize, v: u64) {
    body[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn put_u32(body: &mut [u8], at: usize, v: u32) {
    body[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn get_u32(body: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]])
}

/// A FILE body for `path` (any bytes) of `len` bytes whose metadata is unset (the three
/// tags `has_user_meta`, `has_source`, `has_checksum` all 0).
pub(super) fn file_body(path: &[u8], len: u64) -> Vec<u8> {
    let mut w = BodyWriter::default();
    w.u16(path.len() as u16);
    w.buf.extend_from_slice(path);
    w.u64(len);
    for _ in 0..3 {
        w.u8(0);
    }
    w.buf
}

pub(super) fn chunk_body(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut w = BodyWriter::default();
    w.u64(offset);
    w.bytes32(data);
    w.buf
}

pub(super) fn extension(name: &[u8], version: u32, ignorable: bool) -> RawRecord {
    let mut w = BodyWriter::default();
    w.u16(name.len() as u16);
    w.buf.extend_from_slice(name);
    w.u32(version);
    w.bytes32(b"hostile");
    let mut r = RawRecord::new(RecordKind::Extension, w.buf);
    r.flags = if ignorable { FLAG_IGNORABLE } else { 0 };
    r
}

/// A FILE body with its path bytes replaced by `path` (any bytes) and the rest kept.
pub(super) fn with_path(body: &[u8], path: &[u8]) -> Vec<u8> {
    let old = u16::from_le_bytes([body[0], body[1]]) as usize;
    let mut out = (path.len() as u16).to_le_bytes().to_vec();
    out.extend_from_slice(path);
    out.extend_from_slice(&body[2 + old..]);
    out
}
