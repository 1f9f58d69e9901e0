//! braft's protobuf messages (proto2, package `braft`) as hand-written `prost` structs, and
//! the ProtoBufFile framing (`len: u32 BE | body`).
//!
//! prost writes fields in tag order and repeated elements in insertion order, and it always
//! emits `required` fields, which is what C++ protobuf does for these messages; the §5.8
//! vectors in `sims/local.rs` check it byte for byte.

use prost::Message;

use super::format::{PBFILE_BODY_LEN_MAX, PBFILE_PREFIX_LEN};

/// `ConfigurationPBMeta`: the payload of a CONFIGURATION entry.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfigurationPbMeta {
    /// The new configuration's PeerId strings.
    #[prost(string, repeated, tag = "1")]
    pub peers: Vec<String>,
    /// The old configuration's PeerId strings (joint change only).
    #[prost(string, repeated, tag = "2")]
    pub old_peers: Vec<String>,
}

/// `LogPBMeta`: the body of `log_meta`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct LogPbMeta {
    /// The first retained index.
    #[prost(int64, required, tag = "1")]
    pub first_log_index: i64,
}

/// `StablePBMeta`: the body of `raft_meta`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct StablePbMeta {
    /// The current term.
    #[prost(int64, required, tag = "1")]
    pub term: i64,
    /// The vote, as PeerId text (`0.0.0.0:0:0:0` for none).
    #[prost(string, required, tag = "2")]
    pub votedfor: String,
}

/// `SnapshotMeta` (raft.proto).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct SnapshotMetaPb {
    /// Last log index the snapshot covers.
    #[prost(int64, required, tag = "1")]
    pub last_included_index: i64,
    /// Its term.
    #[prost(int64, required, tag = "2")]
    pub last_included_term: i64,
    /// The configuration at that index.
    #[prost(string, repeated, tag = "3")]
    pub peers: Vec<String>,
    /// The old configuration, during a joint change.
    #[prost(string, repeated, tag = "4")]
    pub old_peers: Vec<String>,
}

/// `LocalFileMeta` (local_file_meta.proto).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct LocalFileMeta {
    /// Opaque user bytes: this family's per-file metadata in the contract.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub user_meta: Option<Vec<u8>>,
    /// `FileSource` (0 local, 1 reference).
    #[prost(int32, optional, tag = "2")]
    pub source: Option<i32>,
    /// A checksum string used by braft's `filter_before_copy_remote`.
    #[prost(string, optional, tag = "3")]
    pub checksum: Option<String>,
}

/// `LocalSnapshotPbMeta.File`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct LocalSnapshotFile {
    /// Path relative to the snapshot directory.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// Always emitted by braft, even when empty (`12 00`).
    #[prost(message, optional, tag = "2")]
    pub meta: Option<LocalFileMeta>,
}

/// `LocalSnapshotPbMeta`: the body of `__raft_snapshot_meta`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct LocalSnapshotPbMeta {
    /// Present only when both required fields were set.
    #[prost(message, optional, tag = "1")]
    pub meta: Option<SnapshotMetaPb>,
    /// One per file, sorted by name.
    #[prost(message, repeated, tag = "2")]
    pub files: Vec<LocalSnapshotFile>,
}

/// Why a ProtoBufFile could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PbFileProblem {
    /// Fewer than 4 bytes.
    ShortPrefix {
        /// File length.
        len: usize,
    },
    /// The length prefix promises more than the file holds (or more than the cap).
    ShortBody {
        /// Promised body length.
        promised: u64,
        /// Bytes present after the prefix.
        present: u64,
    },
    /// The body does not decode.
    Decode(String),
}

impl std::fmt::Display for PbFileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PbFileProblem::ShortPrefix { len } => {
                write!(f, "{len} bytes, shorter than the 4-byte length prefix")
            }
            PbFileProblem::ShortBody { promised, present } => write!(
                f,
                "length prefix says {promised} body bytes, {present} present \
                 (cap {PBFILE_BODY_LEN_MAX})"
            ),
            PbFileProblem::Decode(e) => write!(f, "protobuf body does not decode: {e}"),
        }
    }
}

/// Frames `msg` as a ProtoBufFile.
pub fn pbfile_encode<M: Message>(msg: &M) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = Vec::with_capacity(PBFILE_PREFIX_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The body of a ProtoBufFile (bytes after `4 + len` are ignored, as braft does).
pub fn pbfile_body(file: &[u8]) -> Result<&[u8], PbFileProblem> {
    if file.len() < PBFILE_PREFIX_LEN {
        return Err(PbFileProblem::ShortPrefix { len: file.len() });
    }
    let promised = u64::from(u32::from_be_bytes([file[0], file[1], file[2], file[3]]));
    let present = (file.len() - PBFILE_PREFIX_LEN) as u64;
    if promised > present || promised > PBFILE_BODY_LEN_MAX {
        return Err(PbFileProblem::ShortBody { promised, present });
    }
    Ok(&file[PBFILE_PREFIX_LEN..PBFILE_PREFIX_LEN + promised as usize])
}

/// Reads a ProtoBufFile's message. Stricter than braft, which ignores the parse result.
pub fn pbfile_decode<M: Message + Default>(file: &[u8]) -> Result<M, PbFileProblem> {
    let body = pbfile_body(file)?;
    M::decode(body).map_err(|e| PbFileProblem::Decode(e.to_string()))
}
