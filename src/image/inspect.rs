//! `inspect`: what an image holds, as JSON (a shape other tools rely on) and as text.

use std::fmt;
use std::io::Read;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::ImageError;
use super::format::BodyWriter;
use super::reader::{ImageReader, Item};
use super::record::encode_payload;
use super::ImageSummary;
use crate::contract::{EntryKind, FileMeta, FileSource, Index, Payload, PeerId, Term};

/// Everything an image holds, digested. Its JSON form (`serde_json::to_string`) is the
/// stable shape of `qk image inspect --json`; `Display` is the text form.
///
/// The entry list has one element per entry, so this is O(entries) in memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageInspect {
    /// Format major version.
    pub format_major: u16,
    /// Format minor version.
    pub format_minor: u16,
    /// Source family id.
    pub source_family: String,
    /// Source family's format version.
    pub source_family_version: u32,
    /// The log.
    pub log: InspectLog,
    /// Term and vote.
    pub meta: InspectMeta,
    /// The snapshot, if any.
    pub snapshot: Option<InspectSnapshot>,
    /// Size, record count and digest of the image (text form only; not in the JSON).
    #[serde(skip)]
    pub summary: ImageSummary,
}

/// The log part of [`ImageInspect`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectLog {
    /// First retained index.
    pub first: Index,
    /// Last retained index.
    pub last: Index,
    /// Every retained entry.
    pub entries: Vec<InspectEntry>,
}

/// One entry of [`InspectLog`]. `len` and `sha256` are of the payload as the ENTRY record
/// encodes it after the kind byte (data: the bytes without their length prefix; no-op:
/// nothing; configuration: the two peer lists).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectEntry {
    /// Index.
    pub index: Index,
    /// Term.
    pub term: Term,
    /// `no_op`, `data` or `configuration`.
    pub kind: EntryKind,
    /// Payload length.
    pub len: u64,
    /// Payload SHA-256, lower-case hex.
    pub sha256: String,
    /// A configuration's peers (configuration entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<PeerId>>,
    /// A configuration's old peers (configuration entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_peers: Option<Vec<PeerId>>,
}

/// The meta part of [`ImageInspect`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectMeta {
    /// Current term.
    pub term: Term,
    /// Vote, or null.
    pub voted_for: Option<PeerId>,
}

/// The snapshot part of [`ImageInspect`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectSnapshot {
    /// Last included index.
    pub last_included_index: Index,
    /// Last included term.
    pub last_included_term: Term,
    /// Peers.
    pub peers: Vec<PeerId>,
    /// Old peers.
    pub old_peers: Vec<PeerId>,
    /// Files in image order.
    pub files: Vec<InspectFile>,
}

/// One snapshot file of [`InspectSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectFile {
    /// Relative path.
    pub path: String,
    /// Length.
    pub len: u64,
    /// SHA-256 of the contents, lower-case hex.
    pub sha256: String,
    /// The file's metadata, field by field.
    pub file_meta: InspectFileMeta,
}

/// The metadata of one file of [`InspectSnapshot`]: braft's three `LocalFileMeta` fields,
/// each null when unset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectFileMeta {
    /// `user_meta` in lower-case hex.
    pub user_meta_hex: Option<String>,
    /// `source`: `local` or `reference`.
    pub source: Option<FileSource>,
    /// `checksum`.
    pub checksum: Option<String>,
}

impl InspectFileMeta {
    /// The JSON form of `meta`.
    pub fn of(meta: &FileMeta) -> Self {
        InspectFileMeta {
            user_meta_hex: meta.user_meta.as_deref().map(hex::encode),
            source: meta.source,
            checksum: meta.checksum.clone(),
        }
    }
}

/// Reads and validates an image, digesting what it holds.
pub fn inspect(input: impl Read) -> Result<ImageInspect, ImageError> {
    let mut reader = ImageReader::new(input);
    let mut header = None;
    let mut log = InspectLog { first: 1, last: 0, entries: Vec::new() };
    let mut meta = InspectMeta { term: 0, voted_for: None };
    let mut snapshot: Option<InspectSnapshot> = None;
    let mut file_sha: Option<Sha256> = None;
    let close_file = |snapshot: &mut Option<InspectSnapshot>, sha: &mut Option<Sha256>| {
        if let (Some(s), Some(h)) = (snapshot.as_mut(), sha.take()) {
            if let Some(f) = s.files.last_mut() {
                f.sha256 = hex::encode(h.finalize());
            }
        }
    };
    loop {
        let record = reader.next_record()?;
        match record.item {
            Item::Header(h) => header = Some(h),
            Item::Cut(cut) => {
                log.first = cut.first;
                log.last = cut.last;
            }
            Item::Entry(entry) => {
                let mut payload = BodyWriter::default();
                encode_payload(&mut payload, &entry.payload);
                let bytes = match &entry.payload {
                    Payload::Data(data) => &data[..],
                    _ => &payload.buf[..],
                };
                let (peers, old_peers) = match entry.payload {
                    Payload::Configuration { ref peers, ref old_peers } => {
                        (Some(peers.clone()), Some(old_peers.clone()))
                    }
                    _ => (None, None),
                };
                log.entries.push(InspectEntry {
                    index: entry.index,
                    term: entry.term,
                    kind: entry.kind(),
                    len: bytes.len() as u64,
                    sha256: hex::encode(Sha256::digest(bytes)),
                    peers,
                    old_peers,
                });
            }
            Item::Meta(m) => meta = InspectMeta { term: m.term, voted_for: m.voted_for },
            Item::Snapshot(m) => {
                snapshot = Some(InspectSnapshot {
                    last_included_index: m.last_included_index,
                    last_included_term: m.last_included_term,
                    peers: m.peers,
                    old_peers: m.old_peers,
                    files: Vec::new(),
                })
            }
            Item::File(info) => {
                close_file(&mut snapshot, &mut file_sha);
                if let Some(s) = snapshot.as_mut() {
                    s.files.push(InspectFile {
                        path: info.path.to_string(),
                        len: info.len,
                        sha256: String::new(),
                        file_meta: InspectFileMeta::of(&info.file_meta),
                    });
                }
                file_sha = Some(Sha256::new());
            }
            Item::Chunk { data, .. } => {
                if let Some(h) = file_sha.as_mut() {
                    h.update(data);
                }
            }
            Item::Extension(_) | Item::Ignored { .. } => {}
            Item::End(summary) => {
                close_file(&mut snapshot, &mut file_sha);
                let header = header.unwrap_or_else(|| super::Header {
                    format_major: summary.format_major,
                    format_minor: summary.format_minor,
                    source_family: summary.source_family.clone(),
                    source_family_version: summary.source_family_version,
                });
                return Ok(ImageInspect {
                    format_major: header.format_major,
                    format_minor: header.format_minor,
                    source_family: header.source_family,
                    source_family_version: header.source_family_version,
                    log,
                    meta,
                    snapshot,
                    summary,
                });
            }
        }
    }
}

fn peers_text(peers: &[PeerId]) -> String {
    let names: Vec<&str> = peers.iter().map(|p| p.as_str()).collect();
    format!("[{}]", names.join(", "))
}

impl fmt::Display for ImageInspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "image: format {}.{}, source family {} (family format {})",
            self.format_major, self.format_minor, self.source_family, self.source_family_version
        )?;
        writeln!(f, "  {} bytes, {} records, sha256 {}", s.image_len, s.n_records, s.sha256)?;
        if s.n_ignored_records > 0 {
            writeln!(f, "  {} records of a newer minor version ignored", s.n_ignored_records)?;
        }
        writeln!(
            f,
            "log: first {}, last {} ({} entries)",
            self.log.first,
            self.log.last,
            self.log.entries.len()
        )?;
        for e in &self.log.entries {
            write!(
                f,
                "  {} term {} {} len {} sha256 {}",
                e.index,
                e.term,
                e.kind.name(),
                e.len,
                e.sha256
            )?;
            if let (Some(p), Some(o)) = (&e.peers, &e.old_peers) {
                write!(f, " peers {} old_peers {}", peers_text(p), peers_text(o))?;
            }
            writeln!(f)?;
        }
        match &self.meta.voted_for {
            None => writeln!(f, "meta: term {}, no vote", self.meta.term)?,
            Some(p) => writeln!(f, "meta: term {}, voted for {}", self.meta.term, p)?,
        }
        match &self.snapshot {
            None => writeln!(f, "snapshot: none")?,
            Some(snap) => {
                writeln!(
                    f,
                    "snapshot: last_included_index {}, last_included_term {}, peers {}, \
                     old_peers {}",
                    snap.last_included_index,
                    snap.last_included_term,
                    peers_text(&snap.peers),
                    peers_text(&snap.old_peers)
                )?;
                writeln!(f, "  {} files, {} bytes", snap.files.len(), s.snapshot_bytes)?;
                for file in &snap.files {
                    writeln!(
                        f,
                        "  {} len {} sha256 {} file_meta {}",
                        file.path,
                        file.len,
                        file.sha256,
                        file_meta_text(&file.file_meta)
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// A file's metadata in the text report: `none`, or the set fields
/// (`user_meta HEX|(empty) source NAME checksum "TEXT"`).
fn file_meta_text(meta: &InspectFileMeta) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &meta.user_meta_hex {
        parts.push(format!("user_meta {}", if h.is_empty() { "(empty)" } else { h }));
    }
    if let Some(s) = meta.source {
        parts.push(format!("source {}", s.name()));
    }
    if let Some(c) = &meta.checksum {
        parts.push(format!("checksum {c:?}"));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" ")
    }
}
