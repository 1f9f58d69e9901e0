//! `image_views` (check 17): the operator's views of an image — `qk image inspect`
//! ([`inspect`]) and the annotated hex dump ([`annotated_hex`]) — tell the truth about it.
//!
//! **What it verifies.** On every exported image ([`check`]):
//!
//! - `inspect` agrees field by field with the model's state at the export cut: header,
//!   range, every entry's index, term and kind, its payload length and SHA-256 (computed
//!   here from the entry, as [`crate::image::InspectEntry`] defines them, by an encoder of
//!   this file's own), a configuration's `peers` and `old_peers` (absent on other kinds),
//!   term and vote, the snapshot's meta and every file's path, length, SHA-256 and metadata
//!   in the specification's path order, and the summary's totals, record count (counted from
//!   the state), length and digest;
//! - the dump round-trips: its rows parsed back give exactly the image's bytes, each row
//!   starting where the previous ended; it labels the magic, then per record, in order,
//!   `record #n NAME: kind 0xKK, flags 0xFF, body_len L`, its body and its CRC, NAME being the
//!   specification's name (the table [`SPEC_KIND_NAMES`], not the product's) of the record
//!   the reader read there, and then exactly one `SHA-256 of all bytes above`;
//! - two truncations of the image drawn from the seed (one inside a record's body, one
//!   inside a frame header; a stream of their own, salted, so no other draw moves): the
//!   dump does not panic, round-trips the bytes, labels every part before the cut record as
//!   on the whole image and the rest `unframed bytes`.
//!
//! Besides, the `bad_images` check asks [`judge_damaged_dump`] of its bit-flipped image (no
//! panic, the bytes round-trip), and [`error_names_kind`] of every rejected hostile image's
//! error: an error located at a record names that record's kind in its text.
//!
//! **When.** Once per finished export, on the source family's image (the views read the
//! image alone, so the families it is imported into change nothing).
//!
//! **What not.** The text form of `inspect` (`Display`) and its JSON field names are not
//! parsed; the dump of a bit-flipped image is judged only for its bytes (where a flip in a
//! length field leaves the framing is the dump's to choose); images with extensions or
//! ignorable records of a newer minor version never come out of a soak export.
//!
//! Proven to bite by `views-drop-config-peers` ([`PlantedViewBug`]) and by
//! `sims/image_views.rs`, which hands it wrong reports and mislabelled dumps.

use std::cmp::Ordering;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::{Entry, FileMeta, Payload, PeerId};
use crate::image::format::{FORMAT_MAJOR, FORMAT_MINOR};
use crate::image::{
    annotated_hex, inspect, ImageError, ImageInspect, ImageReader, InspectFileMeta, Item, Location,
};
use crate::sim::checks::panic;
use crate::state::RaftState;

/// Salt of this check's random stream (the truncation lengths), so that drawing them leaves
/// every other draw of a seed where it was.
const VIEWS_STREAM_SALT: u64 = 0x7669_6577_7321_2121;

/// The record kinds of `docs/image-format.md` §4, by kind byte, written from the
/// specification (independent of `image::format`, whose names this check judges).
pub const SPEC_KIND_NAMES: [(u8, &str); 9] = [
    (0x01, "HEADER"),
    (0x02, "CUT"),
    (0x03, "ENTRY"),
    (0x04, "META"),
    (0x05, "SNAPSHOT"),
    (0x06, "FILE"),
    (0x07, "CHUNK"),
    (0x08, "EXTENSION"),
    (0x09, "END"),
];

/// Frame header: kind, flags, body length (spec §3).
const FRAME_HEADER: usize = 6;
/// Frame trailer: the CRC-32C.
const FRAME_CRC: usize = 4;
/// The magic's length.
const MAGIC_LEN: usize = 8;
/// The trailing digest's length.
const DIGEST: usize = 32;
/// Snapshot file bytes per CHUNK (spec §6, rule 4).
const CHUNK: u64 = 65_536;

/// A distortion of the views this check judges, planted on purpose (self-tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedViewBug {
    /// The inspect report loses every configuration entry's peer lists.
    DropConfigPeers,
}

impl PlantedViewBug {
    /// Every planted view bug.
    pub const ALL: [PlantedViewBug; 1] = [PlantedViewBug::DropConfigPeers];

    /// The bug's kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            PlantedViewBug::DropConfigPeers => "views-drop-config-peers",
        }
    }

    fn distort(self, report: &mut ImageInspect) {
        match self {
            PlantedViewBug::DropConfigPeers => {
                for e in &mut report.log.entries {
                    e.peers = None;
                    e.old_peers = None;
                }
            }
        }
    }
}

/// The specification's name of kind byte `b`, if it defines one.
pub fn spec_kind_name(b: u8) -> Option<&'static str> {
    SPEC_KIND_NAMES.iter().find(|(k, _)| *k == b).map(|(_, n)| *n)
}

/// One record as the reader read it: its number, offset and the kind of what it said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// Its number (HEADER is #0).
    pub number: u64,
    /// Offset of its frame's first byte.
    pub offset: usize,
    /// The kind byte of the item the reader handed out for it.
    pub kind: u8,
}

/// Every record of a valid `image` as the reader reads it, or the reader's error.
pub fn read_records(image: &[u8]) -> Result<Vec<ReadRecord>, String> {
    let mut reader = ImageReader::new(image);
    let mut out = Vec::new();
    loop {
        let record = reader.next_record().map_err(|e| format!("the reader refused: {e}"))?;
        let kind = match &record.item {
            Item::Header(_) => 0x01,
            Item::Cut(_) => 0x02,
            Item::Entry(_) => 0x03,
            Item::Meta(_) => 0x04,
            Item::Snapshot(_) => 0x05,
            Item::File(_) => 0x06,
            Item::Chunk { .. } => 0x07,
            Item::Extension(_) => 0x08,
            Item::Ignored { kind } => *kind,
            Item::End(_) => 0x09,
        };
        let end = matches!(record.item, Item::End(_));
        out.push(ReadRecord { number: record.number, offset: record.offset as usize, kind });
        if end {
            return Ok(out);
        }
    }
}

/// The operator views of an exported image against the state it holds.
pub struct Views<'a> {
    /// The image's bytes.
    pub bytes: &'a [u8],
    /// The model's state at the export cut.
    pub expected: &'a RaftState,
    /// The source family's scheme (the header's `source_family`).
    pub family: &'a str,
    /// The source family's format version.
    pub family_version: u32,
    /// The seed of the export's image checks (drives the truncations).
    pub seed: u64,
}

/// Runs the whole check on one exported image (see the module doc); `planted` distorts the
/// inspect report first (self-tests only). Returns what was wrong.
pub fn check(views: &Views<'_>, planted: Option<PlantedViewBug>) -> Result<(), String> {
    let bytes = views.bytes;
    let records = read_records(bytes)?;
    let mut report = panic::catch(|| inspect(bytes))
        .map_err(|p| format!("inspect panicked: {p}"))?
        .map_err(|e| format!("inspect refused a valid image: {e}"))?;
    if let Some(bug) = planted {
        bug.distort(&mut report);
    }
    judge_inspect(&report, views).map_err(|w| format!("inspect: {w}"))?;
    let want = expected_labels(bytes, &records);
    judge_dump(bytes, &want).map_err(|w| format!("annotated_hex: {w}"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(views.seed ^ VIEWS_STREAM_SALT);
    for cut in truncations(bytes, &records, &mut rng) {
        judge_truncated(bytes, &records, cut)
            .map_err(|w| format!("annotated_hex of the image cut to {cut} bytes: {w}"))?;
    }
    Ok(())
}

/// The payload as an ENTRY record encodes it after the kind byte, with a data payload's
/// length prefix left out (what `InspectEntry`'s `len` and `sha256` are of), encoded here.
fn payload_bytes(entry: &Entry) -> Vec<u8> {
    fn peers(out: &mut Vec<u8>, list: &[PeerId]) {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for p in list {
            out.extend_from_slice(&(p.as_str().len() as u16).to_le_bytes());
            out.extend_from_slice(p.as_str().as_bytes());
        }
    }
    match &entry.payload {
        Payload::NoOp => Vec::new(),
        Payload::Data(data) => data.to_vec(),
        Payload::Configuration { peers: new, old_peers } => {
            let mut out = Vec::new();
            peers(&mut out, new);
            peers(&mut out, old_peers);
            out
        }
    }
}

/// The specification's canonical path order (§6: byte order with `/` below every byte).
fn spec_path_order(a: &str, b: &str) -> Ordering {
    let key = |b: u8| if b == b'/' { 0 } else { b };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

fn file_meta_of(meta: &FileMeta) -> InspectFileMeta {
    InspectFileMeta {
        user_meta_hex: meta.user_meta.as_ref().map(hex::encode),
        source: meta.source,
        checksum: meta.checksum.clone(),
    }
}

/// How many records the image of `state` holds (no extensions): HEADER, CUT, the entries,
/// META, the snapshot's SNAPSHOT, FILEs and CHUNKs, END.
pub fn expected_record_count(state: &RaftState) -> u64 {
    let snapshot = state.snapshot.as_ref().map_or(0, |s| {
        1 + s.files.values().map(|f| 1 + (f.data.len() as u64).div_ceil(CHUNK)).sum::<u64>()
    });
    3 + state.entries.len() as u64 + snapshot + 1
}

fn differ<T: std::fmt::Debug + PartialEq>(what: &str, got: &T, want: &T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} is {got:?}, the state at the cut has {want:?}"))
    }
}

/// Compares an inspect report of `views.bytes` with the state it must describe, field by
/// field; names the first field that differs.
pub fn judge_inspect(report: &ImageInspect, views: &Views<'_>) -> Result<(), String> {
    let state = views.expected;
    differ("format_major", &report.format_major, &FORMAT_MAJOR)?;
    differ("format_minor", &report.format_minor, &FORMAT_MINOR)?;
    differ("source_family", &report.source_family.as_str(), &views.family)?;
    differ("source_family_version", &report.source_family_version, &views.family_version)?;
    differ("log.first", &report.log.first, &state.first)?;
    differ("log.last", &report.log.last, &state.last())?;
    differ("the number of entries", &report.log.entries.len(), &state.entries.len())?;
    for (got, want) in report.log.entries.iter().zip(&state.entries) {
        let at = format!("entry {}", want.index);
        differ(&format!("{at}: index"), &got.index, &want.index)?;
        differ(&format!("{at}: term"), &got.term, &want.term)?;
        differ(&format!("{at}: kind"), &got.kind, &want.kind())?;
        let payload = payload_bytes(want);
        differ(&format!("{at}: len"), &got.len, &(payload.len() as u64))?;
        differ(&format!("{at}: sha256"), &got.sha256, &hex::encode(Sha256::digest(&payload)))?;
        let (peers, old_peers) = match &want.payload {
            Payload::Configuration { peers, old_peers } => {
                (Some(peers.clone()), Some(old_peers.clone()))
            }
            _ => (None, None),
        };
        differ(&format!("{at}: peers"), &got.peers, &peers)?;
        differ(&format!("{at}: old_peers"), &got.old_peers, &old_peers)?;
    }
    differ("meta.term", &report.meta.term, &state.meta.term)?;
    differ("meta.voted_for", &report.meta.voted_for, &state.meta.voted_for)?;
    match (&report.snapshot, &state.snapshot) {
        (None, None) => {}
        (Some(_), None) => return Err("a snapshot is reported; the state has none".into()),
        (None, Some(_)) => return Err("no snapshot is reported; the state has one".into()),
        (Some(got), Some(want)) => {
            let meta = &want.meta;
            differ("snapshot index", &got.last_included_index, &meta.last_included_index)?;
            differ("snapshot term", &got.last_included_term, &meta.last_included_term)?;
            differ("snapshot peers", &got.peers, &meta.peers)?;
            differ("snapshot old_peers", &got.old_peers, &meta.old_peers)?;
            let mut files: Vec<_> = want.files.iter().collect();
            files.sort_by(|a, b| spec_path_order(a.0.as_str(), b.0.as_str()));
            differ("the number of snapshot files", &got.files.len(), &files.len())?;
            for (g, (path, file)) in got.files.iter().zip(files) {
                differ("a snapshot file's path (in path order)", &g.path.as_str(), &path.as_str())?;
                let at = format!("file {path}");
                differ(&format!("{at}: len"), &g.len, &(file.data.len() as u64))?;
                let sha = hex::encode(Sha256::digest(&file.data));
                differ(&format!("{at}: sha256"), &g.sha256, &sha)?;
                differ(&format!("{at}: file_meta"), &g.file_meta, &file_meta_of(&file.file_meta))?;
            }
        }
    }
    let s = &report.summary;
    let bytes = views.bytes;
    differ("summary.image_len", &s.image_len, &(bytes.len() as u64))?;
    differ("summary.n_records", &s.n_records, &expected_record_count(state))?;
    differ("summary.n_ignored_records", &s.n_ignored_records, &0)?;
    differ("summary.first", &s.first, &state.first)?;
    differ("summary.last", &s.last, &state.last())?;
    differ("summary.n_entries", &s.n_entries, &(state.entries.len() as u64))?;
    let snap = state.snapshot.as_ref();
    differ("summary.has_snapshot", &s.has_snapshot, &snap.is_some())?;
    let n_files = snap.map_or(0, |s| s.files.len() as u64);
    differ("summary.n_snapshot_files", &s.n_snapshot_files, &n_files)?;
    let total = snap.map_or(0, |s| s.files.values().map(|f| f.data.len() as u64).sum());
    differ("summary.snapshot_bytes", &s.snapshot_bytes, &total)?;
    let body = &bytes[..bytes.len().saturating_sub(DIGEST)];
    differ("summary.sha256", &s.sha256, &hex::encode(Sha256::digest(body)))
}

/// One row of a dump: its offset, its bytes and its label (empty on continuation rows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpRow {
    /// The offset the row names.
    pub offset: usize,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its label.
    pub label: String,
}

/// Parses a dump's rows (`OFFSET  HEX...  LABEL`, the hex column 47 wide), or says which
/// line is not a row.
pub fn parse_dump(dump: &str) -> Result<Vec<DumpRow>, String> {
    let mut rows = Vec::new();
    for (n, line) in dump.lines().enumerate() {
        let bad = |why: &str| format!("line {} is not a dump row ({why}): {line:?}", n + 1);
        let offset = line.get(..8).ok_or_else(|| bad("short"))?;
        let offset = usize::from_str_radix(offset, 16).map_err(|_| bad("offset"))?;
        if line.get(8..10) != Some("  ") {
            return Err(bad("no gap after the offset"));
        }
        let hex_col = line.get(10..line.len().min(57)).ok_or_else(|| bad("hex column"))?;
        let mut bytes = Vec::new();
        for pair in hex_col.split_whitespace() {
            if pair.len() != 2 {
                return Err(bad("a byte is not two hex digits"));
            }
            bytes.push(u8::from_str_radix(pair, 16).map_err(|_| bad("a byte"))?);
        }
        if bytes.is_empty() || bytes.len() > 16 {
            return Err(bad("not 1 to 16 bytes"));
        }
        let label = match line.get(57..) {
            None | Some("") => "",
            Some(rest) => rest.strip_prefix("  ").ok_or_else(|| bad("no gap before the label"))?,
        }
        .to_string();
        rows.push(DumpRow { offset, bytes, label });
    }
    Ok(rows)
}

/// A dump's rows, checked to be contiguous from 0 and to hold exactly `image`; returns the
/// labels with their offsets.
pub fn round_trip(dump: &str, image: &[u8]) -> Result<Vec<(usize, String)>, String> {
    let mut at = 0;
    let mut labels = Vec::new();
    for row in parse_dump(dump)? {
        if row.offset != at {
            return Err(format!(
                "a row starts at {:#x}, the previous ended at {at:#x}",
                row.offset
            ));
        }
        let end = at + row.bytes.len();
        if image.get(at..end) != Some(&row.bytes[..]) {
            return Err(format!("the row at {at:#x} does not hold the image's bytes there"));
        }
        if !row.label.is_empty() {
            labels.push((at, row.label));
        }
        at = end;
    }
    if at != image.len() {
        return Err(format!("the rows end at byte {at}, the image at {}", image.len()));
    }
    Ok(labels)
}

/// The labels the dump of the whole, valid `image` must carry, from the records the reader
/// read and the frames' own bytes.
pub fn expected_labels(image: &[u8], records: &[ReadRecord]) -> Vec<(usize, String)> {
    let mut want = vec![(0, "magic".to_string())];
    for r in records {
        want.extend(record_labels(image, r));
    }
    want.push((image.len() - DIGEST, "SHA-256 of all bytes above".to_string()));
    want
}

fn record_labels(image: &[u8], r: &ReadRecord) -> Vec<(usize, String)> {
    let head = &image[r.offset..r.offset + FRAME_HEADER];
    let body_len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
    let name = spec_kind_name(r.kind)
        .map_or_else(|| format!("unknown kind 0x{:02x}", r.kind), String::from);
    let body = r.offset + FRAME_HEADER;
    let mut labels = vec![(
        r.offset,
        format!(
            "record #{} {name}: kind 0x{:02x}, flags 0x{:02x}, body_len {body_len}",
            r.number, r.kind, head[1]
        ),
    )];
    if body_len > 0 {
        labels.push((body, "  body".to_string()));
    }
    labels.push((body + body_len, "  crc32c".to_string()));
    labels
}

fn dump_of(image: &[u8]) -> Result<String, String> {
    panic::catch(|| annotated_hex(image)).map_err(|p| format!("panicked: {p}"))
}

/// The dump of a valid `image` round-trips and carries exactly the labels `want`.
pub fn judge_dump(image: &[u8], want: &[(usize, String)]) -> Result<(), String> {
    judge_dump_text(&dump_of(image)?, image, want)
}

/// `dump` (a dump of `image`) round-trips and carries exactly the labels `want`.
pub fn judge_dump_text(dump: &str, image: &[u8], want: &[(usize, String)]) -> Result<(), String> {
    let labels = round_trip(dump, image)?;
    first_label_difference(&labels, want)
}

fn first_label_difference(got: &[(usize, String)], want: &[(usize, String)]) -> Result<(), String> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            return Err(format!(
                "label {i} is {:?} at {:#x}, expected {:?} at {:#x}",
                g.1, g.0, w.1, w.0
            ));
        }
    }
    match got.len().cmp(&want.len()) {
        Ordering::Equal => Ok(()),
        Ordering::Less => Err(format!(
            "{} labels, expected {}: {:?} missing",
            got.len(),
            want.len(),
            want[got.len()].1
        )),
        Ordering::Greater => Err(format!(
            "{} labels, expected {}: {:?} extra",
            got.len(),
            want.len(),
            got[want.len()].1
        )),
    }
}

/// The dump of a damaged image (any bytes at all) does not panic and round-trips them.
pub fn judge_damaged_dump(image: &[u8]) -> Result<(), String> {
    round_trip(&dump_of(image)?, image).map(|_| ())
}

/// The record whose frame `cut` (a length shorter than `image`) falls in.
fn cut_record(records: &[ReadRecord], cut: usize) -> Option<&ReadRecord> {
    records.iter().rev().find(|r| r.offset < cut)
}

/// The dump of `image` cut to `cut` bytes (inside a record's frame): the bytes round-trip,
/// every part before that record is labelled as on the whole image, and the rest is
/// `unframed bytes`.
pub fn judge_truncated(image: &[u8], records: &[ReadRecord], cut: usize) -> Result<(), String> {
    let short = &image[..cut];
    let labels = round_trip(&dump_of(short)?, short)?;
    let Some(record) = cut_record(records, cut) else {
        return Err(format!("cut {cut} is not inside a record"));
    };
    let mut want: Vec<(usize, String)> =
        expected_labels(image, records).into_iter().filter(|(at, _)| *at < record.offset).collect();
    want.push((record.offset, "unframed bytes".to_string()));
    first_label_difference(&labels, &want)
}

/// Two lengths to cut `image` to, drawn from `rng`: inside a record's body and inside a
/// record's frame header. A cut that leaves exactly a digest's length after some record's
/// start (which the dump reads as the digest) is moved by a byte, or not made.
fn truncations(image: &[u8], records: &[ReadRecord], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let body_len = |r: &ReadRecord| {
        let h = &image[r.offset + 2..r.offset + FRAME_HEADER];
        u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize
    };
    let fine = |cut: usize| !records.iter().any(|r| r.number > 0 && r.offset + DIGEST == cut);
    let mut cuts = Vec::new();
    let bodies: Vec<&ReadRecord> = records.iter().filter(|r| body_len(r) >= 2).collect();
    if !bodies.is_empty() {
        let r = bodies[rng.random_range(0..bodies.len())];
        let (start, len) = (r.offset + FRAME_HEADER, body_len(r));
        let into = rng.random_range(1..len);
        let tries = [into, into + 1, into - 1];
        let into = tries.into_iter().find(|&i| (1..len).contains(&i) && fine(start + i));
        cuts.extend(into.map(|i| start + i));
    }
    let r = &records[rng.random_range(0..records.len())];
    let into = rng.random_range(1..FRAME_HEADER);
    let into = (0..FRAME_HEADER - 1).map(|k| 1 + (into - 1 + k) % (FRAME_HEADER - 1));
    cuts.extend(into.map(|i| r.offset + i).find(|&cut| fine(cut)));
    debug_assert!(cuts.iter().all(|c| *c > MAGIC_LEN && *c < image.len() - FRAME_CRC));
    cuts
}

/// An error located at a record must name that record's kind: the specification's name of
/// the kind byte it carries (an undefined byte: its hex value). Other errors pass.
pub fn error_names_kind(error: &ImageError) -> Result<(), String> {
    text_names_kind(&error.to_string(), error.location())
}

/// [`error_names_kind`] of an error's text and location.
pub fn text_names_kind(text: &str, location: Location) -> Result<(), String> {
    let Location::Record { number, kind: Some(kind) } = location else {
        return Ok(());
    };
    let named = match spec_kind_name(kind) {
        Some(name) => text.contains(&format!("record #{number} ({name})")),
        None => {
            text.contains(&format!("record #{number} (")) && text.contains(&format!("0x{kind:02x}"))
        }
    };
    if named {
        Ok(())
    } else {
        Err(format!(
            "the error at record #{number} (kind 0x{kind:02x}) does not name its kind: {text}"
        ))
    }
}
