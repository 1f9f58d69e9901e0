//! Reading a segment at open: one scan that classifies the file's tail, and one `match`
//! that applies the [`RecoveryPolicy`].
//!
//! A scan walks records from offset 0 and stops at the first record it cannot use:
//! - **torn**: fewer than 24 bytes left, or a valid header whose payload runs past the end;
//! - **corrupt**: a complete header with a bad checksum (or unknown checksum type), a
//!   payload with a bad checksum, or a payload that is not what its type requires (a
//!   non-empty no-op, a configuration that does not decode, an unknown entry type).
//!
//! Payload checksum failures of data and no-op records do not stop the scan (braft reads
//! past them); they are collected so that the policy can decide.
//!
//! **Torn versus corrupt.** Every acknowledged append was fsynced, and a segment is fsynced
//! before it is closed, so on an honest disk only the unacknowledged tail of the *open*
//! segment can be damaged: the one in-flight append's write, whose sectors that never
//! reached the disk read as zeros (the file grew past them). So a complete but bad record in
//! the open segment is classified as a torn write only when
//! - the damage itself looks like a sector that never arrived: one of the 512-byte-aligned
//!   blocks the *damaged part* of the record touches (its header when the header is bad,
//!   else the whole record) reads as zeros from the record (or the block's start) to the
//!   block's end or the end of the file, at least 8 bytes; zeros further on do not count;
//! - and the record is not one the log knows was acknowledged: its index is at or above
//!   `first_log_index` (every record below it was durable before `log_meta` moved past it,
//!   so damage there cannot be a torn write).
//!
//! Anything else is corruption. A flipped bit leaves no zero block. A misdirected write
//! leaves zeros, but not where it did damage: its own sectors at the end of the file keep
//! their old, never-written zeros, while the acknowledged records it landed on hold its
//! bytes (followed, in its last sector, by that sector's zero padding). Looking for zeros
//! anywhere up to the end of the file once mistook such a write, landed on the segment's
//! first sector, for a torn tail and trimmed every acknowledged entry away. Limitations: a
//! record whose payload legitimately holds an aligned run of zeros and is then damaged by
//! bit rot is indistinguishable from a torn write and is trimmed; so is a misdirected write
//! whose zero padding covers a whole block of a long record it landed on (the trim is then
//! a rollback of the log to a prefix it held); closed segments never get this benefit of the
//! doubt.

use std::path::Path;

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::contract::{EntryKind, StorageResult};
use crate::vfs::VfsFile;

use super::files::{corruption, read_exact};
use super::format::{RecordHeader, HEADER_LEN};
use super::proto::ConfigurationPbMeta;

/// What an open does with damaged records. Decided once per instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryPolicy {
    /// The default (`qk --recovery strict`): a torn tail of the open segment is trimmed; any
    /// complete record with a bad header or payload checksum, or a bad payload, fails the
    /// open with an error naming the file and byte offset. A `raft_meta` / `log_meta` /
    /// snapshot meta whose bytes changed in place since this family vouched for them, or
    /// that is older than the file its checksum sidecar names, fails the open too; one braft
    /// replaced since is read as braft reads it (`meta.rs`). Cross marks are checked
    /// (lying-fsync detection), and a `log_meta` missing next to segments fails the open
    /// (braft would delete the log).
    #[default]
    FailClosed,
    /// Accept what braft (default flags) accepts (`qk --recovery braft`): torn tails
    /// trimmed; a bad header checksum fails the open; a bad data/no-op payload checksum is
    /// accepted at open and reported as corruption when that entry is read; a configuration
    /// entry with a bad payload checksum ends the readable log (trimmed in the open
    /// segment); segments without `log_meta` are deleted, as braft does. Checksum sidecars
    /// and cross marks are not enforced.
    BraftCompatible,
    /// As [`RecoveryPolicy::BraftCompatible`] with braft's
    /// `-raft_recover_log_from_corrupt=true`: a bad header in the open segment is trimmed
    /// like a torn tail instead of failing the open.
    BraftRecoverFromCorrupt,
}

impl RecoveryPolicy {
    /// Whether checksum sidecars are enforced.
    pub fn enforces_sidecars(self) -> bool {
        self == RecoveryPolicy::FailClosed
    }
}

/// Why a scan stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Tail {
    /// Every byte belongs to a good record.
    Clean,
    /// A partial record at `offset`.
    Torn {
        /// Where the partial record starts.
        offset: u64,
        /// What is missing.
        what: String,
    },
    /// A complete but bad record at `offset`.
    Corrupt {
        /// Where the record starts.
        offset: u64,
        /// What is wrong.
        what: String,
        /// Which part is bad.
        damage: Damage,
        /// Whether the damage looks like never-written sectors (see the module doc).
        zeroed: bool,
    },
}

/// Which part of a record is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// The header checksum fails (or names an unknown checksum type).
    Header,
    /// A data or no-op payload fails its checksum.
    Payload,
    /// A configuration payload fails its checksum (braft stops reading there).
    ConfigPayload,
    /// The checksums pass but the payload is not what the entry type requires.
    Content,
}

/// A record the scan accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedRecord {
    /// Byte offset of its header.
    pub offset: u64,
    /// Its term.
    pub term: u64,
    /// Its checksum type number.
    pub checksum_type: u8,
    /// braft's entry type number.
    pub entry_type: u8,
    /// Whether the payload checksum matched.
    pub payload_ok: bool,
}

/// The result of scanning one segment file.
#[derive(Clone, Debug)]
pub struct Scan {
    /// The records before the stop, in order (including data/no-op records whose payload
    /// checksum fails, which braft reads past).
    pub records: Vec<ScannedRecord>,
    /// The first record whose payload checksum fails, as a stop: its position in
    /// `records` and the [`Tail::Corrupt`] it would be.
    pub first_bad_payload: Option<(usize, Tail)>,
    /// Why the scan stopped.
    pub tail: Tail,
    /// The file's length.
    pub file_len: u64,
}

/// Alignment used to recognise never-written (zero) sectors.
const ZERO_BLOCK: u64 = 512;
/// Shortest all-zero block part that counts as a lost sector.
const ZERO_RUN_MIN: u64 = 8;

/// Scans `file` (at `path`) from offset 0.
pub fn scan_segment(file: &dyn VfsFile, path: &Path) -> StorageResult<Scan> {
    let file_len = file.len()?;
    let mut records = Vec::new();
    let mut offset = 0u64;
    let mut payload = Vec::new();
    let mut first_bad_payload = None;
    let tail = loop {
        let left = file_len - offset;
        if left == 0 {
            break Tail::Clean;
        }
        if left < HEADER_LEN as u64 {
            break Tail::Torn { offset, what: format!("{left} bytes, less than a header") };
        }
        let mut raw = [0u8; HEADER_LEN];
        read_exact(file, &mut raw, offset, path)?;
        let header = RecordHeader::decode(&raw);
        if !header.header_ok() {
            let what = if header.checksum_kind().is_none() {
                format!("unknown checksum type {}", header.checksum_type)
            } else {
                "header checksum mismatch".to_string()
            };
            let header_end = offset + HEADER_LEN as u64;
            break corrupt(file, offset, header_end, file_len, what, Damage::Header)?;
        }
        if header.record_len() > left {
            break Tail::Torn {
                offset,
                what: format!(
                    "payload of {} bytes, only {} present",
                    header.data_len,
                    left - HEADER_LEN as u64
                ),
            };
        }
        let record_end = offset + header.record_len();
        payload.resize(header.data_len as usize, 0);
        read_exact(file, &mut payload, offset + HEADER_LEN as u64, path)?;
        let payload_ok = header.payload_ok(&payload);
        let is_config = header.entry_type == EntryKind::Configuration.number();
        if !payload_ok && is_config {
            // braft stops at a configuration entry it cannot verify.
            let what = "configuration payload checksum mismatch".to_string();
            break corrupt(file, offset, record_end, file_len, what, Damage::ConfigPayload)?;
        }
        if let Err(what) = check_payload(header.entry_type, &payload) {
            break corrupt(file, offset, record_end, file_len, what, Damage::Content)?;
        }
        if !payload_ok && first_bad_payload.is_none() {
            let what = "payload checksum mismatch".to_string();
            let stop = corrupt(file, offset, record_end, file_len, what, Damage::Payload)?;
            first_bad_payload = Some((records.len(), stop));
        }
        records.push(ScannedRecord {
            offset,
            term: header.term,
            checksum_type: header.checksum_type,
            entry_type: header.entry_type,
            payload_ok,
        });
        offset += header.record_len();
    };
    Ok(Scan { records, first_bad_payload, tail, file_len })
}

/// Checks a payload against its entry type.
pub fn check_payload(entry_type: u8, payload: &[u8]) -> Result<(), String> {
    match EntryKind::from_number(entry_type) {
        None => Err(format!("unknown entry type {entry_type}")),
        Some(EntryKind::NoOp) if !payload.is_empty() => {
            Err(format!("no-op entry with a {}-byte payload", payload.len()))
        }
        Some(EntryKind::Configuration) => ConfigurationPbMeta::decode(payload)
            .map(|_| ())
            .map_err(|e| format!("configuration payload does not decode: {e}")),
        Some(_) => Ok(()),
    }
}

/// A [`Tail::Corrupt`] for the record at `offset` whose damaged part ends at `damaged_end`
/// (the header's end when the header is bad, else the record's).
fn corrupt(
    file: &dyn VfsFile,
    offset: u64,
    damaged_end: u64,
    file_len: u64,
    what: String,
    damage: Damage,
) -> StorageResult<Tail> {
    let zeroed = has_zeroed_block(file, offset, damaged_end, file_len)?;
    Ok(Tail::Corrupt { offset, what, damage, zeroed })
}

/// Whether one of the 512-aligned blocks that `[from, damaged_end)` touches reads as zeros
/// from `from` (or the block's start) to the block's end or `file_len`, at least 8 bytes long
/// (or reaching `file_len`): the mark a never-written sector leaves on the record at `from`.
pub fn has_zeroed_block(
    file: &dyn VfsFile,
    from: u64,
    damaged_end: u64,
    file_len: u64,
) -> StorageResult<bool> {
    let end = file_len;
    let touched_end = damaged_end.min(end);
    let mut block_start = from - from % ZERO_BLOCK;
    let mut buf = vec![0u8; ZERO_BLOCK as usize];
    while block_start < touched_end {
        let lo = block_start.max(from);
        let hi = (block_start + ZERO_BLOCK).min(end);
        let part = &mut buf[..(hi - lo) as usize];
        file.read_exact_at(part, lo)?;
        if (hi - lo >= ZERO_RUN_MIN || hi == end) && part.iter().all(|b| *b == 0) {
            return Ok(true);
        }
        block_start += ZERO_BLOCK;
    }
    Ok(false)
}

/// What the policy decided for one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// How many scanned records to keep.
    pub keep: usize,
    /// Byte length to cut the file to (the end of the last kept record), when shorter.
    pub trim_to: Option<u64>,
}

/// Applies `policy` to a scan of a segment (`open`: the in-progress segment;
/// `acknowledged`: how many of its first records the log knows were acknowledged, those
/// below `first_log_index`, which no torn write can reach). The one place where the policy
/// is consulted for the log.
pub fn decide(
    policy: RecoveryPolicy,
    scan: &Scan,
    open: bool,
    acknowledged: usize,
    path: &Path,
) -> StorageResult<Decision> {
    use RecoveryPolicy::*;
    // Fail-closed treats the first bad payload as the end of the good records; the braft
    // policies read past it.
    let (keep, stop) = match (&scan.first_bad_payload, policy) {
        (Some((position, stop)), FailClosed) => (*position, stop),
        _ => (scan.records.len(), &scan.tail),
    };
    let keep_all = Decision { keep, trim_to: None };
    let fail = |offset: u64, what: &str| {
        crate::coverage::hit(crate::coverage::Point::LocalRefusedCorruptRecord);
        Err(corruption(path, offset, what.to_string()))
    };
    let trim = |offset: u64| {
        if policy == FailClosed && keep < acknowledged {
            let what = format!(
                "damaged record (the segment's record {keep}) lies below first_log_index: it \
                 was acknowledged, so this is corruption, not a torn write"
            );
            return fail(offset, &what);
        }
        Ok(Decision { keep, trim_to: Some(offset) })
    };
    match (policy, stop) {
        (_, Tail::Clean) => Ok(keep_all),
        (_, Tail::Torn { offset, .. }) => trim(*offset),
        (FailClosed, Tail::Corrupt { offset, zeroed: true, .. }) if open => trim(*offset),
        (FailClosed, Tail::Corrupt { offset, what, .. }) => fail(*offset, what),
        (BraftRecoverFromCorrupt, Tail::Corrupt { offset, damage: Damage::Header, .. }) if open => {
            trim(*offset)
        }
        (_, Tail::Corrupt { offset, damage: Damage::ConfigPayload, .. }) => trim(*offset),
        (_, Tail::Corrupt { offset, what, .. }) => fail(*offset, what),
    }
}
