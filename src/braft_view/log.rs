//! braft's `SegmentLogStorage::init` on a directory (braft-format.md §5.5), read-only.
//!
//! 1. `log_meta` loaded: absent means an empty log (every `log_*` entry would be unlinked and
//!    a fresh `log_meta` written); a short file fails init; a garbled body is read leniently.
//! 2. The listing: `*.tmp` would be unlinked; closed (`log_%020ld_%020ld`) and open
//!    (`log_inprogress_%020ld`) names are registered, leniently (§5.1); a second open segment
//!    fails init. Closed segments in index order: first > last, a gap after the previous
//!    kept segment, or a first kept segment starting after `first_log_index` ("hole") fail
//!    init; a leading segment wholly below `first_log_index` would be deleted. An open
//!    segment after a gap only logs a warning (the loaded log then has a hole); one
//!    overlapping the last closed segment trips a CHECK (unspecified in a non-glog build).
//! 3. Each segment is opened under its padded name (an unpadded one fails to open) and
//!    walked from offset 0: fewer than 24 bytes left, or a payload running past the end, is a
//!    torn tail (trimmed); a header whose checksum (by its own type) fails is corruption
//!    (init fails; in the open segment a torn tail under `raft_recover_log_from_corrupt`);
//!    configuration payloads are checksummed (a mismatch ends the walk like a torn tail) and
//!    parsed (a failure fails init); data and no-op payloads are not checked at load (a bad
//!    one is noted: braft's `get()` refuses it later). A closed segment must hold exactly
//!    `last - first + 1` records. An open segment wholly below `first_log_index` is deleted.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::contract::{Entry, Index, Payload};
use crate::vfs::{FileKind, Vfs};

use super::checksum::checksum;
use super::names::{closed_segment, open_segment, padded_segment_name, Matched};
use super::pbfile::{self, PbLoad};
use super::wire::{ConfigurationPbMeta, Lenient, LogPbMeta};
use super::{non_negative, peer_list, BraftOptions, InitFailure, Notes, Stop, Store};

/// Length of a record header.
const HEADER_LEN: usize = 24;

fn fails(path: &Path, what: impl Into<String>) -> Stop {
    Stop::Fails(InitFailure { store: Store::Log, path: path.to_path_buf(), what: what.into() })
}

/// A segment registered by the listing.
struct Listed {
    name: String,
    first: i64,
    /// `None` for the open segment.
    last: Option<i64>,
}

/// One record found by a walk.
struct Record {
    term: u64,
    payload: Payload,
    readable: bool,
}

/// Loads the log in `dir`: the first index and every retained entry.
pub fn load(
    vfs: &dyn Vfs,
    dir: &Path,
    options: BraftOptions,
    notes: &mut Notes,
) -> Result<(Index, Vec<Entry>), Stop> {
    if !pbfile::is_dir(vfs, dir, Store::Log)? {
        notes.writes_log_meta = true;
        return Ok((1, Vec::new()));
    }
    let meta_path = dir.join("log_meta");
    let first_log_index = match pbfile::load(vfs, &meta_path)? {
        PbLoad::Missing => None,
        PbLoad::Failed(why) => return Err(fails(&meta_path, format!("Fail to load meta: {why}"))),
        PbLoad::Loaded(body) => Some(LogPbMeta::parse(&body).0.first_log_index),
    };
    let mut closed: Vec<Listed> = Vec::new();
    let mut open: Option<Listed> = None;
    for entry in vfs.read_dir(dir).map_err(Stop::Io)? {
        let name = entry.name;
        let is_empty = first_log_index.is_none();
        if (is_empty && name.starts_with("log_")) || name.ends_with(".tmp") {
            notes.deletes.push(dir.join(&name));
            continue;
        }
        let listed = match closed_segment(&name) {
            Matched::Yes((first, last)) => Some(Listed { name, first, last: Some(last) }),
            Matched::Overflow => return Err(overflow(&name)),
            Matched::No => match open_segment(&name) {
                Matched::Yes(first) => Some(Listed { name, first, last: None }),
                Matched::Overflow => return Err(overflow(&name)),
                Matched::No => None,
            },
        };
        let Some(listed) = listed else { continue };
        if entry.kind == FileKind::Dir {
            return Err(Stop::Unspecified(format!(
                "a directory named like a segment: {}",
                listed.name
            )));
        }
        if listed.last.is_some() {
            closed.push(listed);
        } else if let Some(other) = &open {
            return Err(fails(
                &dir.join(&listed.name),
                format!("a second open segment (the other is {})", other.name),
            ));
        } else {
            open = Some(listed);
        }
    }
    let Some(first_log_index) = first_log_index else {
        notes.writes_log_meta = true;
        return Ok((1, Vec::new()));
    };
    closed.sort_by_key(|s| s.first);
    if closed.windows(2).any(|w| w[0].first == w[1].first) {
        return Err(Stop::Unspecified("two closed segments with one first index".into()));
    }
    let mut kept: Vec<Listed> = Vec::new();
    for segment in closed {
        let path = dir.join(&segment.name);
        let last = segment.last.expect("closed");
        if segment.first > last {
            return Err(fails(&path, "closed segment with first > last"));
        }
        match kept.last().and_then(|k| k.last) {
            Some(previous) if i128::from(segment.first) != i128::from(previous) + 1 => {
                return Err(fails(
                    &path,
                    format!("gap between segments: expected first {}", i128::from(previous) + 1),
                ));
            }
            Some(_) => {}
            None if first_log_index < segment.first => {
                return Err(fails(
                    &path,
                    format!("closed segment has hole: first_log_index {first_log_index}"),
                ));
            }
            None if first_log_index > last => {
                notes.deletes.push(path);
                continue;
            }
            None => {}
        }
        kept.push(segment);
    }
    let last_closed = kept.last().and_then(|k| k.last);
    if let (Some(segment), Some(previous)) = (&open, last_closed) {
        if segment.first <= previous {
            return Err(Stop::Unspecified(format!(
                "open segment {} overlaps the last closed segment (a CHECK that only logs in a \
                 non-glog build)",
                segment.name
            )));
        }
    }
    let mut entries_by_segment: Vec<(i64, Vec<Record>, bool)> = Vec::new();
    for segment in &kept {
        let records = load_segment(vfs, dir, segment, options, notes)?;
        entries_by_segment.push((segment.first, records, false));
    }
    if let Some(segment) = &open {
        let records = load_segment(vfs, dir, segment, options, notes)?;
        let open_last = i128::from(segment.first) + records.len() as i128 - 1;
        if i128::from(first_log_index) > open_last {
            notes.deletes.push(dir.join(&segment.name));
        } else {
            entries_by_segment.push((segment.first, records, true));
        }
    }
    assemble(first_log_index, entries_by_segment, options, notes)
}

fn overflow(name: &str) -> Stop {
    Stop::Unspecified(format!("{name}: a number overflows int64 (undefined in sscanf)"))
}

/// The retained entries `[first_log_index, last]` from the loaded segments.
fn assemble(
    first_log_index: i64,
    segments: Vec<(i64, Vec<Record>, bool)>,
    options: BraftOptions,
    notes: &mut Notes,
) -> Result<(Index, Vec<Entry>), Stop> {
    let first = non_negative(first_log_index, "first_log_index")?;
    if first == 0 {
        return Err(Stop::Unspecified("first_log_index 0 with no segment to check it".into()));
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut next = first;
    'segments: for (segment_first, records, is_open) in segments {
        for (position, record) in records.into_iter().enumerate() {
            let index = non_negative(segment_first, "segment index")?
                .checked_add(position as u64)
                .filter(|i| *i <= i64::MAX as u64)
                .ok_or_else(|| Stop::Unspecified("an entry index overflows int64".into()))?;
            if index < first {
                continue;
            }
            if !record.readable {
                if is_open && options.cut_unreadable_open_tail {
                    break 'segments;
                }
                notes.unreadable.push((index, is_open));
            }
            if index != next {
                return Err(Stop::LogHole { expected: next, found: index });
            }
            entries.push(Entry { index, term: record.term, payload: record.payload });
            next += 1;
        }
    }
    Ok((first, entries))
}

/// `Segment::load`: the records of one segment, checked and cut as braft does.
fn load_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    segment: &Listed,
    options: BraftOptions,
    notes: &mut Notes,
) -> Result<Vec<Record>, Stop> {
    let padded = padded_segment_name(segment.first, segment.last);
    let path: PathBuf = dir.join(&padded);
    if padded != segment.name {
        return Err(fails(
            &path,
            format!("Fail to open {} (listed as {})", path.display(), segment.name),
        ));
    }
    let Some(bytes) = pbfile::read_file(vfs, &path)? else {
        return Err(fails(&path, "Fail to open: the segment vanished"));
    };
    let bytes = Bytes::from(bytes);
    let is_open = segment.last.is_none();
    let mut records = Vec::new();
    let mut offset = 0usize;
    let end = loop {
        let left = bytes.len() - offset;
        if left < HEADER_LEN {
            break offset;
        }
        let header = &bytes[offset..offset + HEADER_LEN];
        let word = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let term = u64::from(word(0)) << 32 | u64::from(word(4));
        let entry_type = header[8];
        let checksum_type = header[9];
        let data_len = word(12) as usize;
        if checksum(checksum_type, &header[..20]) != Some(word(20)) {
            if is_open && options.recover_log_from_corrupt {
                break offset;
            }
            return Err(fails(&path, format!("corrupted header at offset {offset}")));
        }
        if HEADER_LEN + data_len > left {
            break offset;
        }
        let payload = bytes.slice(offset + HEADER_LEN..offset + HEADER_LEN + data_len);
        let payload_ok = checksum(checksum_type, &payload) == Some(word(16));
        let payload = match entry_type {
            3 => {
                if !payload_ok {
                    // The scan stops at a configuration entry it cannot verify.
                    break offset;
                }
                let (config, complete) = ConfigurationPbMeta::parse(&payload);
                if !complete {
                    return Err(fails(
                        &path,
                        format!("configuration at offset {offset} does not parse"),
                    ));
                }
                Payload::Configuration {
                    peers: peer_list(&config.peers)?,
                    old_peers: peer_list(&config.old_peers)?,
                }
            }
            2 => Payload::Data(payload),
            1 if payload.is_empty() => Payload::NoOp,
            1 => {
                return Err(Stop::Unspecified(format!(
                    "a no-op entry with a payload at offset {offset}"
                )))
            }
            other => {
                return Err(Stop::Unspecified(format!(
                    "an entry of type {other} at offset {offset}"
                )))
            }
        };
        let term = non_negative(term as i64, "term")?;
        records.push(Record { term, payload, readable: payload_ok });
        offset += HEADER_LEN + data_len;
    };
    if let Some(last) = segment.last {
        let named = i128::from(last) - i128::from(segment.first) + 1;
        if (records.len() as i128) < named {
            return Err(fails(
                &path,
                format!("data lost in a full segment: {} of {named}", records.len()),
            ));
        }
        if (records.len() as i128) > named {
            return Err(fails(&path, format!("found garbage: more than {named} entries")));
        }
    }
    if end < bytes.len() {
        notes.trims.push((path, end as u64));
    }
    Ok(records)
}
