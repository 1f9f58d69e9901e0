//! Value types of the storage contract: entries, meta, snapshot meta and snapshot paths.

use std::fmt;

use arbitrary::Arbitrary;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::error::ContractError;

/// A log index. The first index of a new log is 1.
pub type Index = u64;
/// A Raft term.
pub type Term = u64;

/// A peer in braft's PeerId text form, always in **one spelling per peer**: braft's own
/// (`PeerId::to_string` on braft master), four fields `ip:port:idx:role`.
///
/// **Where normalisation happens: here, once.** [`PeerId::new`] (and deserialization) rewrite
/// the three-field form braft ≤ 1.1.2 writes (`127.0.0.1:8101:0`, which braft reads as the
/// same peer) to the four-field form (`127.0.0.1:8101:0:0`). Every family, the model, the
/// image and every comparison therefore hold and compare canonical text: the contract's
/// checks accept both spellings on input (they see the value `new` made), and what any
/// family stores and returns is canonical. Text that is no PeerId at all is kept as given,
/// for [`PeerId::problem`] (and so the contract's checks) to reject in its own words. A
/// family that reads braft's files parses them as braft does, more leniently, and builds
/// the canonical text from the parsed peer (the `local://` family's `peer` module).
/// Peer *order* in a list is never changed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct PeerId(String);

impl PeerId {
    /// The peer with PeerId text `text`, in canonical spelling (see the type's doc).
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        match PeerId::canonical_text(&text) {
            Some(canonical) => PeerId(canonical),
            None => PeerId(text),
        }
    }

    /// The canonical spelling of `text` when it is a storable PeerId in either of the forms
    /// braft writes (see [`PeerId::problem`]), else `None`. The canonical form is its own
    /// canonical form.
    pub fn canonical_text(text: &str) -> Option<String> {
        if text_problem(text).is_some() {
            return None;
        }
        Some(if text.split(':').count() == 3 { format!("{text}:0") } else { text.to_string() })
    }

    /// The PeerId text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// braft's "any" peer, which on disk means "no vote".
    pub const ANY: &'static str = "0.0.0.0:0:0:0";

    /// Whether this is braft's "any" (empty) peer: address `0.0.0.0`, port 0, idx 0, in the
    /// 3-field form or the 4-field form with either role. braft's `PeerId::is_empty` ignores
    /// the role, so `0.0.0.0:0:0:1` means "no vote" to braft just as `0.0.0.0:0:0:0` does.
    pub fn is_any(&self) -> bool {
        matches!(self.0.as_str(), "0.0.0.0:0:0" | "0.0.0.0:0:0:0" | "0.0.0.0:0:0:1")
    }

    /// Why this text is not a storable PeerId, or `None` when it is. The contract accepts the
    /// forms braft writes: `a.b.c.d:port:idx` (v1.1.2) and `a.b.c.d:port:idx:role` (master),
    /// with an IPv4 dotted quad (no leading zeros), port 0..=65535, idx 0..=i32::MAX and
    /// role 0 (replica) or 1 (witness). Hostnames and IPv6 are not PeerIds in braft. (A
    /// `PeerId` made by [`PeerId::new`] from valid text is always in the four-field form.)
    pub fn problem(&self) -> Option<&'static str> {
        text_problem(&self.0)
    }
}

impl From<String> for PeerId {
    fn from(text: String) -> Self {
        PeerId::new(text)
    }
}

impl From<PeerId> for String {
    fn from(peer: PeerId) -> Self {
        peer.0
    }
}

/// [`PeerId::problem`] for any text.
fn text_problem(text: &str) -> Option<&'static str> {
    let fields: Vec<&str> = text.split(':').collect();
    if fields.len() != 3 && fields.len() != 4 {
        return Some("expected ip:port:idx or ip:port:idx:role");
    }
    let octets: Vec<&str> = fields[0].split('.').collect();
    if octets.len() != 4 || !octets.iter().all(|o| decimal(o, 255)) {
        return Some("the address is not an IPv4 dotted quad");
    }
    if !decimal(fields[1], 65535) {
        return Some("the port is not a decimal 0..=65535");
    }
    if !decimal(fields[2], i32::MAX as u64) {
        return Some("the idx is not a decimal 0..=2147483647");
    }
    if fields.len() == 4 && fields[3] != "0" && fields[3] != "1" {
        return Some("the role is not 0 (replica) or 1 (witness)");
    }
    None
}

/// Whether `text` is a plain decimal number without leading zeros, at most `max`.
fn decimal(text: &str, max: u64) -> bool {
    !text.is_empty()
        && text.len() <= 10
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.parse::<u64>().is_ok_and(|v| v <= max)
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of a log entry, with braft's `EntryType` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A leader's no-op entry (braft `ENTRY_TYPE_NO_OP` = 1).
    NoOp = 1,
    /// A user data entry (braft `ENTRY_TYPE_DATA` = 2).
    Data = 2,
    /// A configuration change (braft `ENTRY_TYPE_CONFIGURATION` = 3).
    Configuration = 3,
}

impl EntryKind {
    /// braft's `EntryType` number for this kind.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The kind with braft's `EntryType` number `n`, if there is one.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(EntryKind::NoOp),
            2 => Some(EntryKind::Data),
            3 => Some(EntryKind::Configuration),
            _ => None,
        }
    }

    /// The lower-case name used in reports and JSON (`no_op`, `data`, `configuration`).
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::NoOp => "no_op",
            EntryKind::Data => "data",
            EntryKind::Configuration => "configuration",
        }
    }
}

/// What an entry carries. The variant is the entry's kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// No payload.
    NoOp,
    /// Opaque user bytes.
    Data(Bytes),
    /// A configuration: the new peers and, during a joint change, the old ones.
    Configuration {
        /// The (new) configuration's peers, in the order given.
        peers: Vec<PeerId>,
        /// The old configuration's peers; empty outside a joint change.
        old_peers: Vec<PeerId>,
    },
}

impl Payload {
    /// The entry kind this payload belongs to.
    pub fn kind(&self) -> EntryKind {
        match self {
            Payload::NoOp => EntryKind::NoOp,
            Payload::Data(_) => EntryKind::Data,
            Payload::Configuration { .. } => EntryKind::Configuration,
        }
    }
}

/// One log entry: `(index, term, kind, payload)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's log index.
    pub index: Index,
    /// The term the entry was created in.
    pub term: Term,
    /// The payload; its variant is the entry's kind.
    pub payload: Payload,
}

impl Entry {
    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        self.payload.kind()
    }

    /// A data entry.
    pub fn data(index: Index, term: Term, bytes: impl Into<Bytes>) -> Self {
        Entry { index, term, payload: Payload::Data(bytes.into()) }
    }

    /// A no-op entry.
    pub fn no_op(index: Index, term: Term) -> Self {
        Entry { index, term, payload: Payload::NoOp }
    }
}

/// The durable term and vote. A new instance of every family reads as [`Meta::INITIAL`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Meta {
    /// The current term.
    pub term: Term,
    /// The peer voted for in `term`, if any.
    pub voted_for: Option<PeerId>,
}

impl Meta {
    /// braft's default when `raft_meta` is absent: term 1, no vote.
    pub const INITIAL: Meta = Meta { term: 1, voted_for: None };
}

impl Default for Meta {
    fn default() -> Self {
        Meta::INITIAL
    }
}

/// The meta of a published snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub last_included_index: Index,
    /// The term of that entry.
    pub last_included_term: Term,
    /// The configuration at that index.
    pub peers: Vec<PeerId>,
    /// The old configuration at that index, during a joint change.
    pub old_peers: Vec<PeerId>,
}

/// Longest snapshot path accepted, in bytes.
pub const SNAPSHOT_PATH_LEN_MAX: usize = 4096;
/// Longest single segment of a snapshot path accepted, in bytes.
pub const SNAPSHOT_PATH_SEGMENT_LEN_MAX: usize = 255;

/// A validated relative snapshot file path: `/`-separated, no empty, `.` or `..` segment,
/// no NUL, not absolute, at most [`SNAPSHOT_PATH_LEN_MAX`] bytes with segments of at most
/// [`SNAPSHOT_PATH_SEGMENT_LEN_MAX`] bytes. Holding one proves the path cannot escape the
/// snapshot's directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotPath(String);

impl SnapshotPath {
    /// Validates `path`; the error says which rule it broke.
    pub fn new(path: impl Into<String>) -> Result<Self, ContractError> {
        let path = path.into();
        match snapshot_path_problem(&path) {
            None => Ok(SnapshotPath(path)),
            Some(reason) => Err(ContractError::BadSnapshotPath { path, reason }),
        }
    }

    /// The path text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// Why `path` is not a valid snapshot path, or `None` when it is.
pub fn snapshot_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("empty path");
    }
    if path.len() > SNAPSHOT_PATH_LEN_MAX {
        return Some("path longer than 4096 bytes");
    }
    if path.contains('\0') {
        return Some("NUL byte in path");
    }
    if path.starts_with('/') {
        return Some("absolute path");
    }
    if path.contains('\\') {
        return Some("backslash in path");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Some("empty path segment"),
            "." => return Some("`.` segment"),
            ".." => return Some("`..` segment"),
            s if s.len() > SNAPSHOT_PATH_SEGMENT_LEN_MAX => {
                return Some("path segment longer than 255 bytes")
            }
            _ => {}
        }
    }
    None
}

impl TryFrom<String> for SnapshotPath {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SnapshotPath::new(value)
    }
}

impl From<SnapshotPath> for String {
    fn from(value: SnapshotPath) -> Self {
        value.0
    }
}

impl fmt::Display for SnapshotPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// braft's `FileSource` (`local_file_meta.proto`): where a snapshot file's bytes come from.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Arbitrary,
)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// `FILE_SOURCE_LOCAL` (0): the file lives in the snapshot directory.
    Local = 0,
    /// `FILE_SOURCE_REFERENCE` (1): the file is a reference to data kept elsewhere.
    Reference = 1,
}

impl FileSource {
    /// braft's enum number for this source.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The source with braft's enum number `n`, if braft defines one.
    pub fn from_number(n: i32) -> Option<Self> {
        match n {
            0 => Some(FileSource::Local),
            1 => Some(FileSource::Reference),
            _ => None,
        }
    }

    /// The lower-case name used in reports, JSON and op text (`local`, `reference`).
    pub fn name(self) -> &'static str {
        match self {
            FileSource::Local => "local",
            FileSource::Reference => "reference",
        }
    }

    /// The source named `name` ([`FileSource::name`]'s words).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "local" => Some(FileSource::Local),
            "reference" => Some(FileSource::Reference),
            _ => None,
        }
    }
}

/// The metadata of one snapshot file: braft's `LocalFileMeta`, field for field, each field
/// optional as in braft's proto2 message (so "set to the empty value" and "not set" stay
/// apart, as braft's `has_*` accessors tell them apart).
///
/// **Absent and empty are one value.** braft writes a `LocalFileMeta` for every file and
/// reads a missing one as the empty message, so a file cannot be "without metadata" in
/// braft other than by having every field unset. The contract follows: a file always has a
/// `FileMeta`, and [`FileMeta::default`] (every field `None`) is what "no metadata" means in
/// every family, the image and every comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileMeta {
    /// `user_meta` (bytes): opaque to storage.
    pub user_meta: Option<Bytes>,
    /// `source` (FileSource).
    pub source: Option<FileSource>,
    /// `checksum` (string): braft compares it to skip re-copying a file a follower holds.
    pub checksum: Option<String>,
}

impl FileMeta {
    /// Metadata with only `user_meta` set.
    pub fn user(user_meta: impl Into<Bytes>) -> Self {
        FileMeta { user_meta: Some(user_meta.into()), ..FileMeta::default() }
    }

    /// Whether every field is unset ("no metadata").
    pub fn is_empty(&self) -> bool {
        self.user_meta.is_none() && self.source.is_none() && self.checksum.is_none()
    }

    /// The first field in which `self` and `other` differ, in words (`user_meta 0a0b vs
    /// unset`, `source local vs reference`, `checksum "ab" vs unset`), or `None` when equal.
    /// Every comparison of states (`first_difference`, the validator, `image diff`) names a
    /// file metadata difference in exactly these words.
    pub fn difference(&self, other: &FileMeta) -> Option<String> {
        if self.user_meta != other.user_meta {
            let show = |m: &Option<Bytes>| match m {
                None => "unset".to_string(),
                Some(b) if b.is_empty() => "empty".to_string(),
                Some(b) if b.len() <= 32 => hex::encode(b),
                Some(b) => format!("{}… ({} bytes)", hex::encode(&b[..32]), b.len()),
            };
            return Some(format!(
                "user_meta {} vs {}",
                show(&self.user_meta),
                show(&other.user_meta)
            ));
        }
        if self.source != other.source {
            let show = |s: Option<FileSource>| s.map_or("unset", FileSource::name);
            return Some(format!("source {} vs {}", show(self.source), show(other.source)));
        }
        if self.checksum != other.checksum {
            let show = |c: &Option<String>| match c {
                None => "unset".to_string(),
                Some(c) => format!("{c:?}"),
            };
            return Some(format!("checksum {} vs {}", show(&self.checksum), show(&other.checksum)));
        }
        None
    }
}

impl fmt::Display for FileMeta {
    /// `user_meta=HEX source=NAME checksum="TEXT"`, unset fields left out; `none` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        if let Some(m) = &self.user_meta {
            parts.push(format!("user_meta={}", hex::encode(m)));
        }
        if let Some(s) = self.source {
            parts.push(format!("source={}", s.name()));
        }
        if let Some(c) = &self.checksum {
            parts.push(format!("checksum={c:?}"));
        }
        f.write_str(&parts.join(" "))
    }
}

/// One file of a snapshot's tree as a reader lists it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotFileInfo {
    /// The file's relative path.
    pub path: SnapshotPath,
    /// The file's length in bytes.
    pub len: u64,
    /// The file's metadata as given to `add_file` ([`FileMeta::default`] for none).
    pub file_meta: FileMeta,
}
