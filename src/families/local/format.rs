//! Every name, offset and checksum of braft's `local://` layout, plus the few sidecar files
//! this family adds (which braft ignores).
//!
//! Layout, in our words:
//!
//! ```text
//! <log>/log_meta                          ProtoBufFile(LogPBMeta{first_log_index})
//! <log>/log_inprogress_<first:020>        the open segment (at most one)
//! <log>/log_<first:020>_<last:020>        closed segments, both indexes inclusive
//! <raft_meta>/raft_meta                   ProtoBufFile(StablePBMeta{term, votedfor})
//! <snapshot>/snapshot_<index:020>/        the published snapshot
//!     __raft_snapshot_meta                ProtoBufFile(LocalSnapshotPbMeta)
//!     <user files>
//! <snapshot>/temp/                        the snapshot being written
//!
//! ProtoBufFile = len:u32 BE | protobuf body (len bytes); trailing bytes ignored.
//!
//! Segment = record*, no file header; record = 24-byte header | payload:
//!   0  term            u64 BE
//!   8  entry type      u8   (1 no-op, 2 data, 3 configuration)
//!   9  checksum type   u8   (0 murmur3_x86_32 seed 0, 1 CRC-32C unmasked)
//!   10 reserved        u16  (0)
//!   12 data_len        u32 BE
//!   16 data_checksum   u32 BE  checksum(type, payload)
//!   20 header_checksum u32 BE  checksum(type, header[0..20])
//! ```
//!
//! Files this family adds (names braft never matches, so it leaves them alone):
//! - `<file>.qkcrc` next to `log_meta`, `raft_meta` and `__raft_snapshot_meta`: the CRC-32C
//!   of the whole protected file and a [`CrossMark`] (see [`Sidecar`]);
//! - `log/qk_log_epoch`: the truncation epoch and a [`CrossMark`];
//! - `log/qk_pending_op`: the redo record of a multi-step truncate_suffix or reset;
//! - `log/qk_import_incomplete`: an import in progress (older versions; now staged beside
//!   the root, see `import`);
//! - `PARENT/.NAME.qk-import`, `PARENT/.NAME.qk-old`: an import's staged root and the empty
//!   root moved aside while it is swapped in (beside `local://PARENT/NAME`, not inside);
//! - `snapshot/qk_publish`: a publish at the current snapshot's index in progress;
//! - `__raft_snapshot_meta.qkfiles` in a snapshot: per-block CRC-32C of every file
//!   ([`SnapshotManifest`]); user files named like the layout are stored as `__qk_esc_*`;
//! - `<segment>.qkpin<n>.tmp` and `snapshot/qk_retired_*`: files kept for a pinned export
//!   cut, removed when it is dropped or at the next open.

use crate::contract::Index;
use crate::vfs::FileId;

/// Log directory under `local://DIR`.
pub const LOG_DIR: &str = "log";
/// Meta directory under `local://DIR`.
pub const RAFT_META_DIR: &str = "raft_meta";
/// Snapshot directory under `local://DIR`.
pub const SNAPSHOT_DIR: &str = "snapshot";

/// The log's first-index file.
pub const LOG_META_NAME: &str = "log_meta";
/// The term/vote file inside the meta directory.
pub const RAFT_META_NAME: &str = "raft_meta";
/// The meta file inside each snapshot directory.
pub const SNAPSHOT_META_NAME: &str = "__raft_snapshot_meta";
/// The snapshot being written.
pub const SNAPSHOT_TEMP_NAME: &str = "temp";
/// Suffix of transient files (ProtoBufFile saves, segments being deleted); removed on open.
pub const TMP_SUFFIX: &str = ".tmp";
/// Suffix of this family's own transient file of a `raft_meta` save (`raft_meta.qktmp`),
/// which braft never opens: braft's save reuses a leftover `raft_meta.tmp` (`O_TRUNC`, the
/// same inode) and never removes it, so a tmp shared with braft could hold the inode this
/// family's sidecar names and make braft's rewrite look like damage in place.
pub const PRIVATE_TMP_SUFFIX: &str = ".qktmp";

/// Prefix of the open segment's name.
pub const SEGMENT_OPEN_PREFIX: &str = "log_inprogress_";
/// Prefix of a closed segment's name.
pub const SEGMENT_CLOSED_PREFIX: &str = "log_";
/// Prefix of a published snapshot directory's name.
pub const SNAPSHOT_PREFIX: &str = "snapshot_";
/// Digits every index in a name is padded to when written (braft can open nothing else).
pub const INDEX_DIGITS: usize = 20;

/// Suffix of the checksum sidecar of a ProtoBufFile.
pub const SIDECAR_SUFFIX: &str = ".qkcrc";
/// Redo record of a multi-step log mutation (truncate_suffix, reset).
pub const PENDING_OP_NAME: &str = "qk_pending_op";
/// Marker of an import in progress, written in place by older versions of this family (still
/// honoured: the partial state is wiped).
pub const IMPORT_MARKER_NAME: &str = "qk_import_incomplete";
/// Marker of a publish at the current snapshot's index in progress (in the snapshot
/// directory).
pub const PUBLISH_MARKER_NAME: &str = "qk_publish";
/// Prefix of a retired snapshot directory kept alive for a pinned export cut.
pub const RETIRED_SNAPSHOT_PREFIX: &str = "qk_retired_";
/// Infix of a segment file kept alive for a pinned export cut (the name ends in `.tmp`).
pub const PINNED_SEGMENT_INFIX: &str = ".qkpin";

/// braft's default `raft_max_segment_size`: 8 MiB.
pub const SEGMENT_SIZE_MAX_DEFAULT: u64 = 8 * 1024 * 1024;

/// Length of the ProtoBufFile length prefix.
pub const PBFILE_PREFIX_LEN: usize = 4;
/// Largest ProtoBufFile body this family reads (a hostile length cannot allocate more).
pub const PBFILE_BODY_LEN_MAX: u64 = 64 * 1024 * 1024;

/// Offset of the term in a record header.
pub const HEADER_TERM_OFFSET: usize = 0;
/// Offset of the entry type.
pub const HEADER_TYPE_OFFSET: usize = HEADER_TERM_OFFSET + 8;
/// Offset of the checksum type.
pub const HEADER_CHECKSUM_TYPE_OFFSET: usize = HEADER_TYPE_OFFSET + 1;
/// Offset of the two reserved bytes.
pub const HEADER_RESERVED_OFFSET: usize = HEADER_CHECKSUM_TYPE_OFFSET + 1;
/// Offset of the payload length.
pub const HEADER_DATA_LEN_OFFSET: usize = HEADER_RESERVED_OFFSET + 2;
/// Offset of the payload checksum.
pub const HEADER_DATA_CHECKSUM_OFFSET: usize = HEADER_DATA_LEN_OFFSET + 4;
/// Offset of the header checksum; it covers every byte before it.
pub const HEADER_CHECKSUM_OFFSET: usize = HEADER_DATA_CHECKSUM_OFFSET + 4;
/// Length of a record header.
pub const HEADER_LEN: usize = HEADER_CHECKSUM_OFFSET + 4;

/// braft's per-record checksum algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChecksumType {
    /// Type 0: MurmurHash3_x86_32 with seed 0 (braft builds without SSE4.2).
    Murmur3,
    /// Type 1: CRC-32C (Castagnoli), unmasked; braft calls it `CHECKSUM_CRC32`.
    Crc32c,
}

impl ChecksumType {
    /// The number stored in the header.
    pub fn number(self) -> u8 {
        match self {
            ChecksumType::Murmur3 => 0,
            ChecksumType::Crc32c => 1,
        }
    }

    /// The type stored as `n`, if known.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            0 => Some(ChecksumType::Murmur3),
            1 => Some(ChecksumType::Crc32c),
            _ => None,
        }
    }

    /// The checksum of `data`.
    pub fn checksum(self, data: &[u8]) -> u32 {
        match self {
            ChecksumType::Murmur3 => murmur3_x86_32(data, 0),
            ChecksumType::Crc32c => crc32c::crc32c(data),
        }
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumType::Murmur3 => "murmur3",
            ChecksumType::Crc32c => "crc32c",
        }
    }
}

/// MurmurHash3_x86_32 (Appleby), little-endian blocks, as braft's type-0 checksum.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, byte) in tail.iter().enumerate() {
            k |= u32::from(*byte) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    // The length is mixed in as braft does: the low 32 bits of the total length.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// A record header as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The entry's term (stored as i64 by braft; the bits are kept as they are).
    pub term: u64,
    /// braft's EntryType number.
    pub entry_type: u8,
    /// The checksum type number.
    pub checksum_type: u8,
    /// The reserved bytes (written as 0, covered by the header checksum).
    pub reserved: u16,
    /// Payload length.
    pub data_len: u32,
    /// Checksum of the payload.
    pub data_checksum: u32,
    /// Checksum of header bytes `0..HEADER_CHECKSUM_OFFSET`.
    pub header_checksum: u32,
}

impl RecordHeader {
    /// A header for `payload`, with both checksums computed by `checksum`.
    pub fn new(term: u64, entry_type: u8, checksum: ChecksumType, payload: &[u8]) -> Self {
        let mut header = RecordHeader {
            term,
            entry_type,
            checksum_type: checksum.number(),
            reserved: 0,
            data_len: payload.len() as u32,
            data_checksum: checksum.checksum(payload),
            header_checksum: 0,
        };
        let bytes = header.encode();
        header.header_checksum = checksum.checksum(&bytes[..HEADER_CHECKSUM_OFFSET]);
        header
    }

    /// The 24 stored bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[HEADER_TERM_OFFSET..HEADER_TYPE_OFFSET].copy_from_slice(&self.term.to_be_bytes());
        b[HEADER_TYPE_OFFSET] = self.entry_type;
        b[HEADER_CHECKSUM_TYPE_OFFSET] = self.checksum_type;
        b[HEADER_RESERVED_OFFSET..HEADER_DATA_LEN_OFFSET]
            .copy_from_slice(&self.reserved.to_be_bytes());
        b[HEADER_DATA_LEN_OFFSET..HEADER_DATA_CHECKSUM_OFFSET]
            .copy_from_slice(&self.data_len.to_be_bytes());
        b[HEADER_DATA_CHECKSUM_OFFSET..HEADER_CHECKSUM_OFFSET]
            .copy_from_slice(&self.data_checksum.to_be_bytes());
        b[HEADER_CHECKSUM_OFFSET..HEADER_LEN].copy_from_slice(&self.header_checksum.to_be_bytes());
        b
    }

    /// Splits 24 bytes into fields; no check.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Self {
        let u32_at = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mut term = [0u8; 8];
        term.copy_from_slice(&b[HEADER_TERM_OFFSET..HEADER_TYPE_OFFSET]);
        RecordHeader {
            term: u64::from_be_bytes(term),
            entry_type: b[HEADER_TYPE_OFFSET],
            checksum_type: b[HEADER_CHECKSUM_TYPE_OFFSET],
            reserved: u16::from_be_bytes([
                b[HEADER_RESERVED_OFFSET],
                b[HEADER_RESERVED_OFFSET + 1],
            ]),
            data_len: u32_at(HEADER_DATA_LEN_OFFSET),
            data_checksum: u32_at(HEADER_DATA_CHECKSUM_OFFSET),
            header_checksum: u32_at(HEADER_CHECKSUM_OFFSET),
        }
    }

    /// The checksum type, if the number is known.
    pub fn checksum_kind(&self) -> Option<ChecksumType> {
        ChecksumType::from_number(self.checksum_type)
    }

    /// Whether the header checksum matches (an unknown checksum type never matches, as in
    /// braft).
    pub fn header_ok(&self) -> bool {
        match self.checksum_kind() {
            None => false,
            Some(kind) => {
                kind.checksum(&self.encode()[..HEADER_CHECKSUM_OFFSET]) == self.header_checksum
            }
        }
    }

    /// Whether the payload checksum matches `payload`.
    pub fn payload_ok(&self, payload: &[u8]) -> bool {
        match self.checksum_kind() {
            None => false,
            Some(kind) => kind.checksum(payload) == self.data_checksum,
        }
    }

    /// Length of header plus payload.
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.data_len)
    }
}

/// A log directory entry recognised as a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SegmentName {
    /// `log_<first>_<last>`.
    Closed {
        /// First index (inclusive).
        first: Index,
        /// Last index (inclusive).
        last: Index,
    },
    /// `log_inprogress_<first>`.
    Open {
        /// First index.
        first: Index,
    },
}

impl SegmentName {
    /// The name as written (always 20-digit padded).
    pub fn file_name(&self) -> String {
        match self {
            SegmentName::Closed { first, last } => closed_segment_name(*first, *last),
            SegmentName::Open { first } => open_segment_name(*first),
        }
    }

    /// Parses a directory entry name. Indexes of 1 to 20 digits are accepted (braft's scan
    /// accepts unpadded digits too); anything after the digits, or a first index of 0 (no
    /// log index is 0), makes it not a segment.
    pub fn parse(name: &str) -> Option<SegmentName> {
        if let Some(rest) = name.strip_prefix(SEGMENT_OPEN_PREFIX) {
            return parse_index(rest).filter(|f| *f > 0).map(|first| SegmentName::Open { first });
        }
        let rest = name.strip_prefix(SEGMENT_CLOSED_PREFIX)?;
        let (a, b) = rest.split_once('_')?;
        let first = parse_index(a).filter(|f| *f > 0)?;
        Some(SegmentName::Closed { first, last: parse_index(b)? })
    }
}

/// `log_inprogress_<first:020>`.
pub fn open_segment_name(first: Index) -> String {
    format!("{SEGMENT_OPEN_PREFIX}{first:020}")
}

/// `log_<first:020>_<last:020>`.
pub fn closed_segment_name(first: Index, last: Index) -> String {
    format!("{SEGMENT_CLOSED_PREFIX}{first:020}_{last:020}")
}

/// `snapshot_<index:020>`.
pub fn snapshot_dir_name(index: Index) -> String {
    format!("{SNAPSHOT_PREFIX}{index:020}")
}

/// The index of a `snapshot_<digits>` directory name, if it is one.
pub fn parse_snapshot_dir_name(name: &str) -> Option<Index> {
    parse_index(name.strip_prefix(SNAPSHOT_PREFIX)?)
}

/// Whether a name written with a 20-digit pad is the canonical one (braft opens only those).
pub fn is_padded_segment_name(name: &str) -> bool {
    SegmentName::parse(name).is_some_and(|s| s.file_name() == name)
}

fn parse_index(digits: &str) -> Option<Index> {
    if digits.is_empty()
        || digits.len() > INDEX_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    // braft stores indexes as int64.
    (value <= i64::MAX as u64).then_some(value)
}

/// `<name>.tmp`.
pub fn tmp_name(name: &str) -> String {
    format!("{name}{TMP_SUFFIX}")
}

/// `<name>.qktmp` ([`PRIVATE_TMP_SUFFIX`]).
pub fn private_tmp_name(name: &str) -> String {
    format!("{name}{PRIVATE_TMP_SUFFIX}")
}

/// `<name>.qkcrc`.
pub fn sidecar_name(name: &str) -> String {
    format!("{name}{SIDECAR_SUFFIX}")
}

/// The checksum sidecar of a ProtoBufFile: the CRC-32C and length of the whole file as last
/// written by this family, and of the version before it (so a crash between writing the
/// sidecar and renaming the new file in leaves a sidecar that vouches for either), the
/// [`FileId`] of the file it wrote (so that a file another writer put there by tmp + rename
/// can be told from damage to this one: see `meta.rs`), plus the instance's [`CrossMark`] at
/// that save.
///
/// Layout: `"QKCK"` | version u8 = 3 | count u8 (1 or 2) | count × (len u32 BE, crc u32 BE)
/// | mark: epoch, first, last, last_term + 1 (0: none), meta_seq, snapshot_seq, each u64 BE |
/// file id: ino u64 BE, birth u64 BE | CRC-32C u32 BE of every byte before it. Versions 1 (no
/// mark, no file id) and 2 (no file id) are read too.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Sidecar {
    /// `(len, crc32c)` of the file versions this sidecar vouches for, newest first.
    pub versions: Vec<(u32, u32)>,
    /// The instance's cross mark at the save.
    pub mark: Option<CrossMark>,
    /// The id of the file holding the newest version (`None` in sidecars of versions 1, 2).
    pub file: Option<FileId>,
}

/// Where every structure of the instance stood at an acknowledged moment, recorded with each
/// rarely written file (the `raft_meta`, snapshot meta and `log_meta` sidecars and the log
/// epoch record) so that an open can tell when an acknowledged write to *another* structure
/// was lost while a later one survived (a lying fsync), and fail closed instead of showing a
/// state no history produced:
/// - the log: its truncation epoch (bumped durably before every truncate_suffix and reset),
///   its first and last index and the last entry's term; in the same epoch the log must
///   start at or after `first` and reach `last` with the same term;
/// - `raft_meta`: how many saves (its own sidecar holds its count);
/// - the snapshot: how many publishes (its own sidecar holds its count).
///
/// Appends write nothing but braft's bytes, so the first append after a `raft_meta` save, a
/// publish or a truncate_prefix rewrites the epoch record with the new counts and first
/// index (in the epoch record, `first` is a floor: a reset records the lower of the first
/// index before and after it). Residual gap: that record lost together with the write it
/// vouches for, while later appends survived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CrossMark {
    /// The log's truncation epoch.
    pub epoch: u64,
    /// The log's first index.
    pub first: Index,
    /// The log's last index.
    pub last: Index,
    /// The term of the entry at `last`, when the log held it.
    pub last_term: Option<u64>,
    /// `raft_meta` saves so far.
    pub meta_seq: u64,
    /// Snapshot publishes so far.
    pub snapshot_seq: u64,
}

/// Magic of a [`Sidecar`].
pub const SIDECAR_MAGIC: &[u8; 4] = b"QKCK";
/// Version of the [`Sidecar`] layout.
pub const SIDECAR_VERSION: u8 = 3;
/// Bytes of an encoded [`FileId`] in a sidecar.
const FILE_ID_LEN: usize = 16;
/// Bytes of an encoded [`CrossMark`].
const CROSS_MARK_LEN: usize = 48;

impl CrossMark {
    fn encode_into(&self, out: &mut Vec<u8>) {
        let term = self.last_term.map_or(0, |t| t.saturating_add(1));
        for v in [self.epoch, self.first, self.last, term, self.meta_seq, self.snapshot_seq] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Option<CrossMark> {
        let v = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(bytes.get(8 * i..8 * i + 8)?.try_into().ok()?))
        };
        Some(CrossMark {
            epoch: v(0)?,
            first: v(1)?,
            last: v(2)?,
            last_term: v(3)?.checked_sub(1),
            meta_seq: v(4)?,
            snapshot_seq: v(5)?,
        })
    }
}

impl Sidecar {
    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + 8 * self.versions.len() + CROSS_MARK_LEN + 4);
        out.extend_from_slice(SIDECAR_MAGIC);
        out.push(SIDECAR_VERSION);
        out.push(self.versions.len() as u8);
        for (len, crc) in &self.versions {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&crc.to_be_bytes());
        }
        self.mark.unwrap_or_default().encode_into(&mut out);
        let file = self.file.unwrap_or_default();
        out.extend_from_slice(&file.ino.to_be_bytes());
        out.extend_from_slice(&file.birth.to_be_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses stored bytes; `None` when they are not a well-formed sidecar.
    pub fn decode(bytes: &[u8]) -> Option<Sidecar> {
        if bytes.len() < 10 || &bytes[..4] != SIDECAR_MAGIC {
            return None;
        }
        let version = bytes[4];
        let count = usize::from(bytes[5]);
        let mark_len = match version {
            1 => 0,
            2 => CROSS_MARK_LEN,
            3 => CROSS_MARK_LEN + FILE_ID_LEN,
            _ => return None,
        };
        if count == 0 || count > 2 || bytes.len() != 6 + 8 * count + mark_len + 4 {
            return None;
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body).to_be_bytes() != tail {
            return None;
        }
        let u32_at =
            |at: usize| u32::from_be_bytes(body[at..at + 4].try_into().unwrap_or_default());
        let versions = (0..count).map(|i| (u32_at(6 + 8 * i), u32_at(10 + 8 * i))).collect();
        let after = 6 + 8 * count;
        let mark = if version >= 2 { Some(CrossMark::decode(&body[after..])?) } else { None };
        let file = if version >= 3 {
            let at = after + CROSS_MARK_LEN;
            let u64_at =
                |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().unwrap_or_default());
            Some(FileId { ino: u64_at(at), birth: u64_at(at + 8) })
        } else {
            None
        };
        Some(Sidecar { versions, mark, file })
    }

    /// Whether `file` is a version this sidecar vouches for.
    pub fn vouches_for(&self, file: &[u8]) -> bool {
        let key = (file.len() as u32, crc32c::crc32c(file));
        file.len() <= u32::MAX as usize && self.versions.contains(&key)
    }

    /// `(len, crc)` of `file`.
    pub fn fingerprint(file: &[u8]) -> (u32, u32) {
        (file.len() as u32, crc32c::crc32c(file))
    }
}

/// The log's truncation epoch record, `log/qk_log_epoch`, with the instance's cross mark:
/// `"QKEP"` | [`CrossMark`] (48 bytes) | CRC-32C u32 BE.
pub const LOG_EPOCH_NAME: &str = "qk_log_epoch";

/// Encodes a log epoch record.
pub fn encode_log_epoch(mark: &CrossMark) -> Vec<u8> {
    let mut out = b"QKEP".to_vec();
    mark.encode_into(&mut out);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a log epoch record.
pub fn decode_log_epoch(bytes: &[u8]) -> Option<CrossMark> {
    if bytes.len() != 4 + CROSS_MARK_LEN + 4 || &bytes[..4] != b"QKEP" {
        return None;
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body).to_be_bytes() != tail {
        return None;
    }
    CrossMark::decode(&body[4..])
}

/// The redo record of a multi-step log mutation, written (and directory-synced) before the
/// first step and removed after the last. On open a present record is completed.
///
/// Layout: `"QKOP"` | version u8 = 1 | op u8 (1 truncate_suffix, 2 reset) | arg u64 BE |
/// first u64 BE | last u64 BE (the range before the op) | CRC-32C u32 BE of the bytes before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PendingOp {
    /// What was in progress.
    pub kind: PendingOpKind,
    /// Its argument (`last_kept` or `next`).
    pub arg: Index,
    /// First index before the operation.
    pub first_before: Index,
    /// Last index before the operation.
    pub last_before: Index,
}

/// The operations that use a [`PendingOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingOpKind {
    /// `truncate_suffix(arg)`.
    TruncateSuffix,
    /// `reset(arg)`.
    Reset,
}

/// Magic of a [`PendingOp`].
pub const PENDING_OP_MAGIC: &[u8; 4] = b"QKOP";
/// Length of an encoded [`PendingOp`].
pub const PENDING_OP_LEN: usize = 4 + 1 + 1 + 8 * 3 + 4;

impl PendingOp {
    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PENDING_OP_LEN);
        out.extend_from_slice(PENDING_OP_MAGIC);
        out.push(1);
        out.push(match self.kind {
            PendingOpKind::TruncateSuffix => 1,
            PendingOpKind::Reset => 2,
        });
        for v in [self.arg, self.first_before, self.last_before] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses stored bytes; `None` when they are not a well-formed record.
    pub fn decode(bytes: &[u8]) -> Option<PendingOp> {
        if bytes.len() != PENDING_OP_LEN || &bytes[..4] != PENDING_OP_MAGIC || bytes[4] != 1 {
            return None;
        }
        let stored = u32::from_be_bytes(bytes[PENDING_OP_LEN - 4..].try_into().ok()?);
        if crc32c::crc32c(&bytes[..PENDING_OP_LEN - 4]) != stored {
            return None;
        }
        let kind = match bytes[5] {
            1 => PendingOpKind::TruncateSuffix,
            2 => PendingOpKind::Reset,
            _ => return None,
        };
        let u64_at = |o: usize| u64::from_be_bytes(bytes[o..o + 8].try_into().unwrap_or_default());
        Some(PendingOp { kind, arg: u64_at(6), first_before: u64_at(14), last_before: u64_at(22) })
    }
}

/// Per-block checksums of a snapshot's files, written by this family next to
/// `__raft_snapshot_meta` (braft lists files from its meta only, so it ignores this one; the
/// name is one of [`SNAPSHOT_RESERVED_NAMES`], which user files may not use).
pub const SNAPSHOT_MANIFEST_NAME: &str = "__raft_snapshot_meta.qkfiles";

/// Every name the layout itself uses inside a snapshot directory: braft's meta and the `.tmp`
/// its save writes, this family's checksum sidecar of the meta and the block manifest, and
/// their `.tmp` names. A snapshot file whose first path segment is one of these could not
/// be where the meta lists it, so the family refuses it
/// ([`crate::contract::ContractError::ReservedSnapshotPath`]); every other name, including
/// others starting with `__raft_snapshot_meta`, is the user's.
pub const SNAPSHOT_RESERVED_NAMES: [&str; 6] = [
    "__raft_snapshot_meta",
    "__raft_snapshot_meta.tmp",
    "__raft_snapshot_meta.qkcrc",
    "__raft_snapshot_meta.qkcrc.tmp",
    "__raft_snapshot_meta.qkfiles",
    "__raft_snapshot_meta.qkfiles.tmp",
];
/// Block size of [`SnapshotManifest`] checksums.
pub const SNAPSHOT_BLOCK_LEN: u64 = 64 * 1024;
/// Magic of a [`SnapshotManifest`].
pub const SNAPSHOT_MANIFEST_MAGIC: &[u8; 4] = b"QKSF";

/// One file of a [`SnapshotManifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// Relative path.
    pub path: String,
    /// Length in bytes.
    pub len: u64,
    /// CRC-32C of each [`SNAPSHOT_BLOCK_LEN`] block (the last may be shorter).
    pub block_crcs: Vec<u32>,
}

/// Block checksums of every file of a snapshot, so that every read is verified.
///
/// Layout: `"QKSF"` | version u8 = 1 | block_len u32 BE | n_files u32 BE | per file:
/// path_len u16 BE, path, len u64 BE, n_blocks u32 BE (= ceil(len / block_len)),
/// n_blocks × crc u32 BE | CRC-32C u32 BE of every byte before it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotManifest {
    /// The files, sorted by path.
    pub files: Vec<ManifestFile>,
}

impl SnapshotManifest {
    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(SNAPSHOT_MANIFEST_MAGIC);
        out.push(1);
        out.extend_from_slice(&(SNAPSHOT_BLOCK_LEN as u32).to_be_bytes());
        out.extend_from_slice(&(self.files.len() as u32).to_be_bytes());
        for file in &self.files {
            out.extend_from_slice(&(file.path.len() as u16).to_be_bytes());
            out.extend_from_slice(file.path.as_bytes());
            out.extend_from_slice(&file.len.to_be_bytes());
            out.extend_from_slice(&(file.block_crcs.len() as u32).to_be_bytes());
            for crc in &file.block_crcs {
                out.extend_from_slice(&crc.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses stored bytes; `None` when they are not a well-formed manifest. Every count is
    /// checked against the bytes present before anything is allocated for it.
    pub fn decode(bytes: &[u8]) -> Option<SnapshotManifest> {
        if bytes.len() < 17 {
            return None;
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body).to_be_bytes() != tail {
            return None;
        }
        let mut r = Reader { bytes: body, at: 0 };
        if r.take(4)? != SNAPSHOT_MANIFEST_MAGIC || r.take(1)? != [1] {
            return None;
        }
        if u64::from(r.u32()?) != SNAPSHOT_BLOCK_LEN {
            return None;
        }
        let n_files = r.u32()? as usize;
        let mut files = Vec::new();
        for _ in 0..n_files {
            let path_len = r.u16()? as usize;
            let path = String::from_utf8(r.take(path_len)?.to_vec()).ok()?;
            let len = r.u64()?;
            let n_blocks = r.u32()? as usize;
            if n_blocks as u64 != len.div_ceil(SNAPSHOT_BLOCK_LEN) || n_blocks * 4 > r.left() {
                return None;
            }
            let block_crcs = (0..n_blocks).map(|_| r.u32()).collect::<Option<Vec<u32>>>()?;
            files.push(ManifestFile { path, len, block_crcs });
        }
        (r.left() == 0).then_some(SnapshotManifest { files })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_round_trip_and_older_versions_still_read() {
        let mark = CrossMark {
            epoch: 2,
            first: 3,
            last: 9,
            last_term: Some(4),
            meta_seq: 5,
            snapshot_seq: 1,
        };
        let sidecar = Sidecar {
            versions: vec![(26, 0xdead_beef), (20, 7)],
            mark: Some(mark),
            file: Some(FileId { ino: 42, birth: 1_700_000_000_000_000_000 }),
        };
        let bytes = sidecar.encode();
        assert_eq!(bytes[4], SIDECAR_VERSION);
        assert_eq!(Sidecar::decode(&bytes), Some(sidecar.clone()));
        // Version 2: the same without the file id.
        let mut v2 = bytes[..bytes.len() - 4 - FILE_ID_LEN].to_vec();
        v2[4] = 2;
        let crc = crc32c::crc32c(&v2);
        v2.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(Sidecar::decode(&v2), Some(Sidecar { file: None, ..sidecar }));
        // The CRC covers every byte: no flipped byte decodes.
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert_eq!(Sidecar::decode(&bad), None, "byte {at}");
        }
    }

    #[test]
    fn reserved_snapshot_names_are_the_layouts_own_files() {
        let own = [SNAPSHOT_META_NAME.to_string(), sidecar_name(SNAPSHOT_META_NAME)]
            .into_iter()
            .chain([SNAPSHOT_MANIFEST_NAME.to_string()]);
        let mut derived: Vec<String> = own.flat_map(|n| [tmp_name(&n), n]).collect();
        derived.sort();
        let mut listed: Vec<String> =
            SNAPSHOT_RESERVED_NAMES.iter().map(|n| n.to_string()).collect();
        listed.sort();
        assert_eq!(listed, derived);
    }
}
