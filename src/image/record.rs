//! The records' value types and the encoding and decoding of each record body.
//!
//! Both directions apply the same field checks (`check_*`): the writer before encoding, the
//! reader after decoding, so the writer can never produce an image the reader rejects.

use bytes::Bytes;
use serde::Serialize;

use super::error::ErrorClass;
use super::format::{
    name_problem, peer_problem, BodyReader, BodyWriter, FieldError, RecordKind, ENTRY_DATA_LEN_MAX,
    FILE_META_LEN_MAX, IMAGE_DIGEST_SHA256, INDEX_MAX, NAME_LEN_MAX, PATH_LEN_MAX, PEERS_MAX,
    PEER_LEN_MAX, RECORD_BODY_LEN_MAX, RECORD_CHECKSUM_CRC32C, TERM_MAX,
};
use crate::contract::{
    snapshot_path_problem, Entry, EntryKind, FileMeta, FileSource, Index, Meta, Payload, PeerId,
    SnapshotFileInfo, SnapshotMeta, SnapshotPath,
};

/// The HEADER record: format version and the source family.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Header {
    /// Format major version (2).
    pub format_major: u16,
    /// Format minor version.
    pub format_minor: u16,
    /// The id of the family the image was exported from (its URI scheme).
    pub source_family: String,
    /// That family's own format version.
    pub source_family_version: u32,
}

/// The CUT record: what the export cut holds, so a reader can check every count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Cut {
    /// First retained index (at least 1).
    pub first: Index,
    /// Last retained index (`first - 1` when the log is empty).
    pub last: Index,
    /// Whether the cut has a published snapshot.
    pub has_snapshot: bool,
    /// How many files the snapshot has.
    pub n_snapshot_files: u64,
    /// The total length of the snapshot's files.
    pub snapshot_bytes: u64,
}

impl Cut {
    /// How many entries the cut retains.
    pub fn n_entries(&self) -> u64 {
        (self.last + 1).saturating_sub(self.first)
    }
}

/// An EXTENSION record: a family-specific, versioned section others may ignore.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Extension {
    /// The extension's name (same rules as a family id), conventionally `family.topic`.
    pub name: String,
    /// The extension's own version.
    pub version: u32,
    /// Whether a reader that does not know the extension may skip it.
    pub ignorable: bool,
    /// The extension's bytes.
    #[serde(serialize_with = "serialize_hex")]
    pub data: Bytes,
}

fn serialize_hex<S: serde::Serializer>(data: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(data))
}

/// A problem found in a record's fields: its class and words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The error class.
    pub class: ErrorClass,
    /// What is wrong.
    pub detail: String,
}

impl Fault {
    pub(crate) fn new(class: ErrorClass, detail: impl Into<String>) -> Self {
        Fault { class, detail: detail.into() }
    }
}

impl From<FieldError> for Fault {
    fn from(e: FieldError) -> Self {
        let class = if e.over_limit { ErrorClass::OverLimit } else { ErrorClass::Malformed };
        Fault::new(class, format!("field `{}` at body byte {}: {}", e.field, e.at, e.what))
    }
}

// ---- field checks, shared by the writer (before) and the reader (after) ----

fn check_peers(field: &str, peers: &[PeerId]) -> Result<(), Fault> {
    if peers.len() > PEERS_MAX {
        return Err(Fault::new(
            ErrorClass::OverLimit,
            format!("{field}: {} peers, the limit is {PEERS_MAX}", peers.len()),
        ));
    }
    for peer in peers {
        check_peer(field, peer)?;
    }
    Ok(())
}

fn check_peer(field: &str, peer: &PeerId) -> Result<(), Fault> {
    match peer_problem(peer.as_str()) {
        None => Ok(()),
        Some(problem) => {
            let class = if peer.as_str().len() > PEER_LEN_MAX {
                ErrorClass::OverLimit
            } else {
                ErrorClass::Malformed
            };
            Err(Fault::new(class, format!("{field} {:?}: {problem}", peer.as_str())))
        }
    }
}

fn check_term(field: &str, term: u64) -> Result<(), Fault> {
    if term > TERM_MAX {
        return Err(Fault::new(
            ErrorClass::OverLimit,
            format!("{field} {term}, the limit is {TERM_MAX}"),
        ));
    }
    Ok(())
}

/// Checks a HEADER's fields (other than the version, which the reader checks first).
pub fn check_header(header: &Header) -> Result<(), Fault> {
    if let Some(problem) = name_problem(&header.source_family) {
        return Err(Fault::new(
            ErrorClass::Malformed,
            format!("source family id {:?}: {problem}", header.source_family),
        ));
    }
    Ok(())
}

/// Checks an entry's fields (its index is checked by the record order).
pub fn check_entry(entry: &Entry) -> Result<(), Fault> {
    check_term("term", entry.term)?;
    match &entry.payload {
        Payload::NoOp => Ok(()),
        Payload::Data(data) if data.len() > ENTRY_DATA_LEN_MAX => Err(Fault::new(
            ErrorClass::OverLimit,
            format!(
                "entry {}: {} payload bytes, the limit is {ENTRY_DATA_LEN_MAX}",
                entry.index,
                data.len()
            ),
        )),
        Payload::Data(_) => Ok(()),
        Payload::Configuration { peers, old_peers } => {
            check_peers("peers", peers)?;
            check_peers("old_peers", old_peers)
        }
    }
}

/// Checks META's fields: the term, and a vote that is a PeerId other than braft's "any"
/// peer (which means no vote, and is written as no vote).
pub fn check_meta(meta: &Meta) -> Result<(), Fault> {
    check_term("term", meta.term)?;
    match &meta.voted_for {
        None => Ok(()),
        Some(peer) if peer.is_any() => Err(Fault::new(
            ErrorClass::Malformed,
            format!("voted_for {:?} is the any peer; no vote is has_vote = 0", peer.as_str()),
        )),
        Some(peer) => check_peer("voted_for", peer),
    }
}

/// Checks SNAPSHOT's fields.
pub fn check_snapshot_meta(meta: &SnapshotMeta) -> Result<(), Fault> {
    if meta.last_included_index > INDEX_MAX {
        return Err(Fault::new(
            ErrorClass::OverLimit,
            format!("last_included_index {}, the limit is {INDEX_MAX}", meta.last_included_index),
        ));
    }
    check_term("last_included_term", meta.last_included_term)?;
    check_peers("peers", &meta.peers)?;
    check_peers("old_peers", &meta.old_peers)
}

/// Checks a FILE's fields (the path's rules and the lengths of the file metadata's
/// `user_meta` and `checksum`).
pub fn check_file(info: &SnapshotFileInfo) -> Result<(), Fault> {
    if let Some(problem) = snapshot_path_problem(info.path.as_str()) {
        return Err(Fault::new(ErrorClass::UnsafePath, format!("path {:?}: {problem}", info.path)));
    }
    let meta = &info.file_meta;
    let lengths = [
        ("user_meta", meta.user_meta.as_ref().map(|m| m.len())),
        ("checksum", meta.checksum.as_ref().map(|c| c.len())),
    ];
    for (field, len) in lengths {
        if let Some(len) = len.filter(|n| *n > FILE_META_LEN_MAX) {
            return Err(Fault::new(
                ErrorClass::OverLimit,
                format!(
                    "file {}: {len} bytes of {field}, the limit is {FILE_META_LEN_MAX}",
                    info.path
                ),
            ));
        }
    }
    Ok(())
}

/// Checks an EXTENSION's fields.
pub fn check_extension(ext: &Extension) -> Result<(), Fault> {
    if let Some(problem) = name_problem(&ext.name) {
        return Err(Fault::new(
            ErrorClass::Malformed,
            format!("extension name {:?}: {problem}", ext.name),
        ));
    }
    Ok(())
}

// ---- encoding ----

/// Encodes a HEADER body.
pub fn encode_header(w: &mut BodyWriter, h: &Header) {
    w.u16(h.format_major);
    w.u16(h.format_minor);
    w.u8(RECORD_CHECKSUM_CRC32C);
    w.u8(IMAGE_DIGEST_SHA256);
    w.str16(&h.source_family);
    w.u32(h.source_family_version);
}

/// Encodes a CUT body.
pub fn encode_cut(w: &mut BodyWriter, c: &Cut) {
    w.u64(c.first);
    w.u64(c.last);
    w.u8(c.has_snapshot as u8);
    w.u64(c.n_snapshot_files);
    w.u64(c.snapshot_bytes);
}

/// Encodes an ENTRY body.
pub fn encode_entry(w: &mut BodyWriter, e: &Entry) {
    w.u64(e.index);
    w.u64(e.term);
    w.u8(e.kind().number());
    encode_payload(w, &e.payload);
}

/// Encodes an entry's payload (the part after the kind byte).
pub fn encode_payload(w: &mut BodyWriter, payload: &Payload) {
    match payload {
        Payload::NoOp => {}
        Payload::Data(data) => w.bytes32(data),
        Payload::Configuration { peers, old_peers } => {
            w.peers(peers);
            w.peers(old_peers);
        }
    }
}

/// Encodes a META body.
pub fn encode_meta(w: &mut BodyWriter, m: &Meta) {
    w.u64(m.term);
    match &m.voted_for {
        None => w.u8(0),
        Some(peer) => {
            w.u8(1);
            w.str16(peer.as_str());
        }
    }
}

/// Encodes a SNAPSHOT body.
pub fn encode_snapshot(w: &mut BodyWriter, m: &SnapshotMeta) {
    w.u64(m.last_included_index);
    w.u64(m.last_included_term);
    w.peers(&m.peers);
    w.peers(&m.old_peers);
}

/// Encodes a FILE body.
pub fn encode_file(w: &mut BodyWriter, f: &SnapshotFileInfo) {
    w.str16(f.path.as_str());
    w.u64(f.len);
    let FileMeta { user_meta, source, checksum } = &f.file_meta;
    match user_meta {
        None => w.u8(0),
        Some(m) => {
            w.u8(1);
            w.bytes32(m);
        }
    }
    match source {
        None => w.u8(0),
        Some(s) => {
            w.u8(1);
            w.u8(s.number() as u8);
        }
    }
    match checksum {
        None => w.u8(0),
        Some(c) => {
            w.u8(1);
            w.str32(c);
        }
    }
}

/// Encodes a CHUNK body.
pub fn encode_chunk(w: &mut BodyWriter, offset: u64, data: &[u8]) {
    w.u64(offset);
    w.bytes32(data);
}

/// Encodes an EXTENSION body.
pub fn encode_extension(w: &mut BodyWriter, x: &Extension) {
    w.str16(&x.name);
    w.u32(x.version);
    w.bytes32(&x.data);
}

/// Encodes an END body.
pub fn encode_end(w: &mut BodyWriter, n_records: u64) {
    w.u64(n_records);
}

// ---- decoding ----

/// A decoded record body. Chunk data borrows from the record buffer.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// HEADER.
    Header(Header),
    /// CUT.
    Cut(Cut),
    /// ENTRY.
    Entry(Entry),
    /// META.
    Meta(Meta),
    /// SNAPSHOT.
    Snapshot(SnapshotMeta),
    /// FILE.
    File(SnapshotFileInfo),
    /// CHUNK.
    Chunk {
        /// Offset of the data within its file.
        offset: u64,
        /// The data.
        data: &'a [u8],
    },
    /// EXTENSION.
    Extension(Extension),
    /// END with its record count.
    End(u64),
}

/// Decodes the HEADER's version fields only (the first four bytes of its body), which every
/// major version keeps in place.
pub fn decode_version(body: &[u8]) -> Result<(u16, u16), Fault> {
    let mut r = BodyReader::new(body);
    Ok((r.u16("format_major")?, r.u16("format_minor")?))
}

/// Decodes a record body of a known `kind`. `extended` says whether bytes after the known
/// fields are allowed (and ignored): only for a newer minor with the EXTENDED flag.
pub fn decode_body<'a>(
    kind: RecordKind,
    body: &'a [u8],
    extended: bool,
) -> Result<Decoded<'a>, Fault> {
    let mut r = BodyReader::new(body);
    let decoded = match kind {
        RecordKind::Header => {
            let format_major = r.u16("format_major")?;
            let format_minor = r.u16("format_minor")?;
            let at = r.pos();
            let checksum = r.u8("record_checksum")?;
            if checksum != RECORD_CHECKSUM_CRC32C {
                return Err(Fault::new(
                    ErrorClass::UnsupportedFeature,
                    format!(
                        "body byte {at}: record checksum algorithm {checksum}, \
                         only 1 (CRC-32C) is defined"
                    ),
                ));
            }
            let at = r.pos();
            let digest = r.u8("image_digest")?;
            if digest != IMAGE_DIGEST_SHA256 {
                return Err(Fault::new(
                    ErrorClass::UnsupportedFeature,
                    format!(
                        "body byte {at}: image digest algorithm {digest}, \
                         only 1 (SHA-256) is defined"
                    ),
                ));
            }
            let source_family = r.str16("source_family", NAME_LEN_MAX)?.to_string();
            let source_family_version = r.u32("source_family_version")?;
            let header =
                Header { format_major, format_minor, source_family, source_family_version };
            check_header(&header)?;
            Decoded::Header(header)
        }
        RecordKind::Cut => {
            let first = r.u64("first")?;
            let last = r.u64("last")?;
            let has_snapshot = r.tag("has_snapshot")?;
            let n_snapshot_files = r.u64("n_snapshot_files")?;
            let snapshot_bytes = r.u64("snapshot_bytes")?;
            Decoded::Cut(Cut { first, last, has_snapshot, n_snapshot_files, snapshot_bytes })
        }
        RecordKind::Entry => {
            let index = r.u64("index")?;
            let term = r.u64("term")?;
            let at = r.pos();
            let kind_number = r.u8("kind")?;
            let payload = match EntryKind::from_number(kind_number) {
                Some(EntryKind::NoOp) => Payload::NoOp,
                Some(EntryKind::Data) => {
                    Payload::Data(Bytes::copy_from_slice(r.bytes32("data", ENTRY_DATA_LEN_MAX)?))
                }
                Some(EntryKind::Configuration) => {
                    let peers = r.peers("peers")?;
                    let old_peers = r.peers("old_peers")?;
                    Payload::Configuration { peers, old_peers }
                }
                None => {
                    return Err(Fault::new(
                        ErrorClass::Malformed,
                        format!("body byte {at}: entry kind {kind_number}, expected 1, 2 or 3"),
                    ))
                }
            };
            let entry = Entry { index, term, payload };
            check_entry(&entry)?;
            Decoded::Entry(entry)
        }
        RecordKind::Meta => {
            let term = r.u64("term")?;
            let voted_for = if r.tag("has_vote")? {
                let text = r.str16("voted_for", PEER_LEN_MAX)?;
                // The any peer in any spelling means no vote: check_meta names it below.
                let any = PeerId::new(text).is_any();
                match peer_problem(text) {
                    Some(problem) if !any => {
                        let class = if text.len() > PEER_LEN_MAX {
                            ErrorClass::OverLimit
                        } else {
                            ErrorClass::Malformed
                        };
                        return Err(Fault::new(class, format!("voted_for {text:?}: {problem}")));
                    }
                    _ => Some(PeerId::new(text)),
                }
            } else {
                None
            };
            let meta = Meta { term, voted_for };
            check_meta(&meta)?;
            Decoded::Meta(meta)
        }
        RecordKind::Snapshot => {
            let last_included_index = r.u64("last_included_index")?;
            let last_included_term = r.u64("last_included_term")?;
            let peers = r.peers("peers")?;
            let old_peers = r.peers("old_peers")?;
            let meta = SnapshotMeta { last_included_index, last_included_term, peers, old_peers };
            check_snapshot_meta(&meta)?;
            Decoded::Snapshot(meta)
        }
        RecordKind::File => {
            let at = r.pos();
            let len = r.u16("path")? as usize;
            if len > PATH_LEN_MAX {
                return Err(Fault::new(
                    ErrorClass::UnsafePath,
                    format!("body byte {at}: path of {len} bytes, the limit is {PATH_LEN_MAX}"),
                ));
            }
            let bytes = r.take("path", len)?;
            let text = std::str::from_utf8(bytes).map_err(|_| {
                Fault::new(ErrorClass::UnsafePath, format!("body byte {at}: path is not UTF-8"))
            })?;
            let path = SnapshotPath::new(text)
                .map_err(|e| Fault::new(ErrorClass::UnsafePath, e.to_string()))?;
            let len = r.u64("len")?;
            let user_meta = if r.tag("has_user_meta")? {
                Some(Bytes::copy_from_slice(r.bytes32("user_meta", FILE_META_LEN_MAX)?))
            } else {
                None
            };
            let source = if r.tag("has_source")? {
                let at = r.pos();
                let n = r.u8("source")?;
                Some(FileSource::from_number(i32::from(n)).ok_or_else(|| {
                    Fault::new(
                        ErrorClass::Malformed,
                        format!("body byte {at}: file source {n}, expected 0 or 1"),
                    )
                })?)
            } else {
                None
            };
            let checksum = if r.tag("has_checksum")? {
                Some(r.str32("checksum", FILE_META_LEN_MAX)?.to_string())
            } else {
                None
            };
            let file_meta = FileMeta { user_meta, source, checksum };
            let info = SnapshotFileInfo { path, len, file_meta };
            check_file(&info)?;
            Decoded::File(info)
        }
        RecordKind::Chunk => {
            let offset = r.u64("offset")?;
            let data = r.bytes32("data", RECORD_BODY_LEN_MAX as usize)?;
            Decoded::Chunk { offset, data }
        }
        RecordKind::Extension => {
            let name = r.str16("name", NAME_LEN_MAX)?.to_string();
            let version = r.u32("version")?;
            let data = Bytes::copy_from_slice(r.bytes32("data", RECORD_BODY_LEN_MAX as usize)?);
            // The flag is filled in by the caller, which knows the record's flags.
            let ext = Extension { name, version, ignorable: false, data };
            check_extension(&ext)?;
            Decoded::Extension(ext)
        }
        RecordKind::End => Decoded::End(r.u64("n_records")?),
    };
    if r.remaining() > 0 && !extended {
        return Err(Fault::new(
            ErrorClass::Malformed,
            format!(
                "{} unexpected bytes after the fields of the {} record (body byte {})",
                r.remaining(),
                kind.name(),
                r.pos()
            ),
        ));
    }
    Ok(decoded)
}
