//! Every constant of the image format, and the little-endian field codec.
//!
//! Layout (normative text in `docs/image-format.md`):
//!
//! ```text
//! image   = MAGIC record* digest
//! record  = kind:u8 flags:u8 body_len:u32 body[body_len] crc32c:u32
//!           (the CRC-32C covers kind, flags, body_len and body)
//! digest  = SHA-256 of every byte before it (32 raw bytes)
//! ```
//!
//! Records come in this order: HEADER, CUT, ENTRY (one per retained index, increasing),
//! META, then SNAPSHOT and per file FILE followed by its CHUNKs (only when the cut has a
//! snapshot), then EXTENSIONs sorted by (name, version), then END. All integers are
//! little-endian and of fixed width, so an accepted image has exactly one encoding.

use crate::contract::{PeerId, SNAPSHOT_PATH_LEN_MAX};

/// The eight bytes every image starts with (PNG-style: a high byte, the name, CR LF).
pub const MAGIC: [u8; 8] = *b"\x89QKIMG\r\n";
/// The format's major version; an image with another major is rejected.
pub const FORMAT_MAJOR: u16 = 2;
/// The format's minor version this code writes and fully understands.
pub const FORMAT_MINOR: u16 = 0;
/// Header value naming the per-record checksum: CRC-32C (Castagnoli), unmasked.
pub const RECORD_CHECKSUM_CRC32C: u8 = 1;
/// Header value naming the whole-image digest: SHA-256.
pub const IMAGE_DIGEST_SHA256: u8 = 1;

/// Bytes of a record's frame before its body: kind, flags, body_len.
pub const FRAME_HEADER_LEN: usize = 1 + 1 + 4;
/// Bytes of a record's trailing CRC-32C.
pub const FRAME_CRC_LEN: usize = 4;
/// Bytes of the trailing SHA-256 digest.
pub const DIGEST_LEN: usize = 32;

/// Record flag: a reader that does not know this record's kind may skip it.
pub const FLAG_IGNORABLE: u8 = 0x01;
/// Record flag: the body carries fields after the ones the reader's minor defines, which a
/// reader of an older minor ignores.
pub const FLAG_EXTENDED: u8 = 0x02;
/// Every flag bit this version defines; the others must be zero.
pub const FLAGS_KNOWN: u8 = FLAG_IGNORABLE | FLAG_EXTENDED;

/// Largest record body accepted, in bytes (64 MiB). Bounds a reader's one buffer.
pub const RECORD_BODY_LEN_MAX: u32 = 64 << 20;
/// Snapshot file bytes per CHUNK record: every chunk but a file's last holds exactly this
/// many; the last holds 1 to this many; an empty file has no chunk.
pub const CHUNK_LEN: usize = 64 << 10;
/// Longest peer text, in bytes.
pub const PEER_LEN_MAX: usize = 256;
/// Most peers in one list (`peers` or `old_peers`).
pub const PEERS_MAX: usize = 4096;
/// Longest `user_meta`, and longest `checksum`, of a snapshot file's metadata, in bytes
/// (1 MiB each).
pub const FILE_META_LEN_MAX: usize = 1 << 20;
/// Longest source family id or extension name, in bytes.
pub const NAME_LEN_MAX: usize = 64;
/// Most files in one snapshot.
pub const SNAPSHOT_FILES_MAX: u64 = 1 << 20;
/// Largest log index an image may hold: the contract's (braft stores indexes as `int64`).
pub const INDEX_MAX: u64 = crate::contract::INDEX_MAX;
/// Largest term an image may hold: the contract's (braft's `int64`).
pub const TERM_MAX: u64 = crate::contract::TERM_MAX;
/// Longest snapshot path, in bytes (the contract's limit).
pub const PATH_LEN_MAX: usize = SNAPSHOT_PATH_LEN_MAX;

/// Fixed bytes of an ENTRY body before its payload: index, term, kind.
pub const ENTRY_FIXED_LEN: usize = 8 + 8 + 1;
/// Largest data payload an entry may carry so that its record stays within the limit.
pub const ENTRY_DATA_LEN_MAX: usize = RECORD_BODY_LEN_MAX as usize - ENTRY_FIXED_LEN - 4;

/// The kind byte of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// Format version, integrity algorithms, source family. Always record #0.
    Header = 0x01,
    /// The description of the export cut: retained range and snapshot totals.
    Cut = 0x02,
    /// One log entry.
    Entry = 0x03,
    /// Term and vote.
    Meta = 0x04,
    /// The latest snapshot's meta.
    Snapshot = 0x05,
    /// One snapshot file: path, length, file metadata.
    File = 0x06,
    /// A piece of the preceding file's bytes.
    Chunk = 0x07,
    /// A family-specific, versioned extension section.
    Extension = 0x08,
    /// The end of the records: their count. The digest follows.
    End = 0x09,
}

impl RecordKind {
    /// The kind with byte `b`, if this version defines one.
    pub fn from_byte(b: u8) -> Option<RecordKind> {
        Some(match b {
            0x01 => RecordKind::Header,
            0x02 => RecordKind::Cut,
            0x03 => RecordKind::Entry,
            0x04 => RecordKind::Meta,
            0x05 => RecordKind::Snapshot,
            0x06 => RecordKind::File,
            0x07 => RecordKind::Chunk,
            0x08 => RecordKind::Extension,
            0x09 => RecordKind::End,
            _ => return None,
        })
    }

    /// The upper-case name used in the specification and in dumps.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Header => "HEADER",
            RecordKind::Cut => "CUT",
            RecordKind::Entry => "ENTRY",
            RecordKind::Meta => "META",
            RecordKind::Snapshot => "SNAPSHOT",
            RecordKind::File => "FILE",
            RecordKind::Chunk => "CHUNK",
            RecordKind::Extension => "EXTENSION",
            RecordKind::End => "END",
        }
    }
}

/// The name of kind byte `b`: a defined kind's name, or `unknown kind 0xNN`.
pub fn kind_name(b: u8) -> String {
    match RecordKind::from_byte(b) {
        Some(kind) => kind.name().to_string(),
        None => format!("unknown kind 0x{b:02x}"),
    }
}

/// Whether `id` is a valid source family id or extension name: 1 to [`NAME_LEN_MAX`] bytes,
/// a lower-case ASCII letter first, then lower-case letters, digits, `+`, `-` or `.`
/// (a URI scheme in lower case).
pub fn name_problem(id: &str) -> Option<&'static str> {
    let bytes = id.as_bytes();
    if bytes.is_empty() {
        return Some("empty name");
    }
    if bytes.len() > NAME_LEN_MAX {
        return Some("name longer than 64 bytes");
    }
    if !bytes[0].is_ascii_lowercase() {
        return Some("name does not start with a lower-case ASCII letter");
    }
    if !bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(b)) {
        return Some("name has a byte other than a-z, 0-9, `+`, `-`, `.`");
    }
    None
}

/// Why a peer text is not acceptable in an image, or `None`: it must be a braft PeerId the
/// contract can store ([`PeerId::problem`]) of at most [`PEER_LEN_MAX`] bytes, in its one
/// canonical spelling (braft's four-field form: the legacy three-field form of the same
/// peer is another spelling, which the reader rejects as it rejects every non-canonical
/// encoding).
pub fn peer_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        return Some("empty peer id");
    }
    if text.len() > PEER_LEN_MAX {
        return Some("peer id longer than 256 bytes");
    }
    match PeerId::canonical_text(text) {
        None => PeerId::new(text).problem(),
        Some(canonical) if canonical != text => {
            Some("legacy three-field spelling; the canonical spelling adds `:0` (the role)")
        }
        Some(_) => None,
    }
}

/// The canonical order of snapshot paths: byte order with `/` below every other byte, which
/// is the order of the paths' segment lists. It puts every path under a directory `d/`
/// right after `d` itself, so a file that is also a directory is always adjacent.
pub fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(b: u8) -> u8 {
        if b == b'/' {
            0
        } else {
            b
        }
    }
    a.bytes().map(key).cmp(b.bytes().map(key))
}

/// Appends fields to a record body.
#[derive(Debug, Default)]
pub struct BodyWriter {
    /// The body so far.
    pub buf: Vec<u8>,
}

impl BodyWriter {
    /// A u8.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// A little-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A little-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A little-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// `str16`: u16 length then the bytes. The caller has checked the length.
    pub fn str16(&mut self, s: &str) {
        self.u16(s.len() as u16);
        self.buf.extend_from_slice(s.as_bytes());
    }
    /// `str32`: u32 length then the UTF-8 bytes. The caller has checked the length.
    pub fn str32(&mut self, s: &str) {
        self.bytes32(s.as_bytes());
    }
    /// `bytes32`: u32 length then the bytes. The caller has checked the length.
    pub fn bytes32(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }
    /// `peers`: u32 count then that many `str16`.
    pub fn peers(&mut self, peers: &[PeerId]) {
        self.u32(peers.len() as u32);
        for p in peers {
            self.str16(p.as_str());
        }
    }
}

/// Why a field could not be read: which field and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Byte position of the field within the record body.
    pub at: usize,
    /// The field's name.
    pub field: &'static str,
    /// What is wrong.
    pub what: String,
    /// Whether the problem is a limit (rather than a malformed value).
    pub over_limit: bool,
}

/// Reads fields from a record body, never past its end.
#[derive(Debug)]
pub struct BodyReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BodyReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        BodyReader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The position of the next field.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn err(&self, field: &'static str, what: impl Into<String>) -> FieldError {
        FieldError { at: self.pos, field, what: what.into(), over_limit: false }
    }

    fn limit(&self, field: &'static str, what: impl Into<String>) -> FieldError {
        FieldError { at: self.pos, field, what: what.into(), over_limit: true }
    }

    /// `n` raw bytes.
    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], FieldError> {
        if self.remaining() < n {
            return Err(self.err(
                field,
                format!("needs {n} bytes but the record body has {} left", self.remaining()),
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A u8.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, FieldError> {
        Ok(self.take(field, 1)?[0])
    }
    /// A little-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, FieldError> {
        let b = self.take(field, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    /// A little-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, FieldError> {
        let b = self.take(field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A little-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, FieldError> {
        let b = self.take(field, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A presence tag: 0 absent, 1 present, anything else malformed.
    pub fn tag(&mut self, field: &'static str) -> Result<bool, FieldError> {
        let at = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(FieldError {
                at,
                field,
                what: format!("presence tag {v}, expected 0 or 1"),
                over_limit: false,
            }),
        }
    }
    /// `str16` with at most `max` bytes of UTF-8.
    pub fn str16(&mut self, field: &'static str, max: usize) -> Result<&'a str, FieldError> {
        let at = self.pos;
        let len = self.u16(field)? as usize;
        if len > max {
            self.pos = at;
            return Err(self.limit(field, format!("{len} bytes, the limit is {max}")));
        }
        let bytes = self.take(field, len)?;
        std::str::from_utf8(bytes).map_err(|_| FieldError {
            at,
            field,
            what: "not valid UTF-8".to_string(),
            over_limit: false,
        })
    }
    /// `str32` with at most `max` bytes of UTF-8.
    pub fn str32(&mut self, field: &'static str, max: usize) -> Result<&'a str, FieldError> {
        let at = self.pos;
        let bytes = self.bytes32(field, max)?;
        std::str::from_utf8(bytes).map_err(|_| FieldError {
            at,
            field,
            what: "not valid UTF-8".to_string(),
            over_limit: false,
        })
    }
    /// `bytes32` with at most `max` bytes.
    pub fn bytes32(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], FieldError> {
        let at = self.pos;
        let len = self.u32(field)? as usize;
        if len > max {
            self.pos = at;
            return Err(self.limit(field, format!("{len} bytes, the limit is {max}")));
        }
        self.take(field, len)
    }
    /// `peers`: a u32 count (at most [`PEERS_MAX`]) of non-empty `str16` peer ids.
    pub fn peers(&mut self, field: &'static str) -> Result<Vec<PeerId>, FieldError> {
        let at = self.pos;
        let n = self.u32(field)? as usize;
        if n > PEERS_MAX {
            self.pos = at;
            return Err(self.limit(field, format!("{n} peers, the limit is {PEERS_MAX}")));
        }
        // Each peer takes at least 3 bytes, so a count the body cannot hold fails here
        // before anything is allocated for it.
        if n.saturating_mul(3) > self.remaining() {
            self.pos = at;
            return Err(self.err(field, format!("{n} peers cannot fit in the record body")));
        }
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.pos;
            let text = self.str16(field, PEER_LEN_MAX)?;
            if let Some(problem) = peer_problem(text) {
                self.pos = at;
                return Err(self.err(field, format!("{text:?}: {problem}")));
            }
            peers.push(PeerId::new(text));
        }
        Ok(peers)
    }
}
