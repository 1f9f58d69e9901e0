//! Operations as data (DESIGN §7). A history is a `Vec<Op>`; every op is interpreted
//! relative to the current state and clamped, so **every** list of ops is valid: histories can
//! be shrunk by deleting ops, decoded from fuzz bytes, and stored as regression files.
//!
//! [`Op::resolve`] turns an op into an [`Action`]: the absolute contract call it stands for in
//! the current state. Runner, model and family all consume the action, so they cannot
//! disagree about what an op meant.
//!
//! Their text form (`Display`, `FromStr`, `.ops` files) is in [`crate::sim::engine::op_text`].

use std::collections::BTreeMap;
use std::fmt;

use arbitrary::Arbitrary;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::contract::{
    check_new_snapshot_file, snapshot_path_problem, Entry, FileMeta, FileSource, Index, Meta,
    Payload, PeerId, SnapshotMeta, SnapshotPath, Term,
};
use crate::families::local::format::SNAPSHOT_RESERVED_NAMES;

/// Longest data payload an op can ask for (bytes); longer requests are clamped.
pub const PAYLOAD_LEN_MAX: u32 = 1 << 20;
/// Longest snapshot file an op can ask for (bytes); longer requests are clamped.
pub const FILE_LEN_MAX: u32 = 4 << 20;
/// Most entries one append op can carry.
pub const BATCH_LEN_MAX: usize = 256;
/// Most files one snapshot op can carry.
pub const FILES_MAX: usize = 64;
/// Most peers in one configuration.
pub const PEERS_MAX: u8 = 9;

/// What one generated entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Arbitrary)]
#[serde(rename_all = "snake_case")]
pub enum BodySpec {
    /// A no-op entry.
    NoOp,
    /// A data entry of `len` pseudo-random bytes derived from `seed`.
    Data {
        /// Payload length (clamped to [`PAYLOAD_LEN_MAX`]).
        len: u32,
        /// Seed of the payload bytes.
        seed: u64,
    },
    /// A configuration entry with `peers` new and `old_peers` old peers.
    Config {
        /// Number of peers (clamped to [`PEERS_MAX`]).
        peers: u8,
        /// Number of old peers (clamped to [`PEERS_MAX`]); 0 outside a joint change.
        old_peers: u8,
    },
}

/// One entry of an append op; its index is always the next one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Arbitrary)]
pub struct EntrySpec {
    /// The entry's term.
    pub term: Term,
    /// What it carries.
    pub body: BodySpec,
}

/// One file of a snapshot op.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Arbitrary)]
pub struct FileSpec {
    /// Requested path; made valid (and unique, conflict-free) when the op is resolved.
    pub path: String,
    /// Length in bytes (clamped to [`FILE_LEN_MAX`]).
    pub len: u32,
    /// Seed of the file's bytes.
    pub seed: u64,
    /// Length of the file metadata's `user_meta`, if set (bytes derived from `seed`).
    pub file_meta_len: Option<u8>,
    /// The file metadata's `source`, if set. (Absent in histories saved before it existed.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<FileSource>,
    /// Length of the file metadata's `checksum` text, if set (hex digits derived from
    /// `seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_len: Option<u8>,
}

impl FileSpec {
    /// The file metadata this spec stands for.
    pub fn file_meta(&self) -> FileMeta {
        FileMeta {
            user_meta: self
                .file_meta_len
                .map(|n| pseudo_random_bytes(self.seed ^ 0xFEED, usize::from(n))),
            source: self.source,
            checksum: self.checksum_len.map(|n| {
                let mut text = hex::encode(pseudo_random_bytes(self.seed ^ 0xC4EC, n.into()));
                text.truncate(usize::from(n));
                text
            }),
        }
    }
}

/// Where a snapshot op puts its last included index, relative to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Arbitrary)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotAt {
    /// `last - n` (clamped at 0): a snapshot of (part of) the retained log.
    Back(u64),
    /// `last + n`: a snapshot installed from a leader, past the end of the log.
    Ahead(u64),
}

/// One step of a history.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Arbitrary)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Append entries at `last + 1` (at most [`BATCH_LEN_MAX`]; an empty list is a no-op).
    Append {
        /// The entries, in order.
        entries: Vec<EntrySpec>,
    },
    /// `truncate_prefix(first + advance)`, saturating.
    TruncatePrefix {
        /// How far past `first` the new first index lies.
        advance: u64,
    },
    /// `truncate_suffix(last - drop)`, saturating at 0.
    TruncateSuffix {
        /// How many entries to drop from the end (may exceed the log's length).
        drop: u64,
    },
    /// `reset(last + 1 + delta)`, clamped to `[1, u64::MAX]`.
    Reset {
        /// Offset of the new first index from `last + 1`.
        delta: i64,
    },
    /// `save_meta(term, vote)`; the vote is a generated peer.
    SaveMeta {
        /// The term to save.
        term: Term,
        /// The peer number voted for, if any.
        vote: Option<u8>,
    },
    /// Build a snapshot and publish it (or drop the writer when `publish` is false).
    Snapshot {
        /// Its last included index, relative to the log.
        at: SnapshotAt,
        /// Its last included term; `None` takes the log's term at that index (or the
        /// current meta term when the index is not retained).
        term: Option<Term>,
        /// Number of peers in the snapshot's configuration.
        peers: u8,
        /// Number of old peers.
        old_peers: u8,
        /// Its files.
        files: Vec<FileSpec>,
        /// Publish (true) or abandon (false) the writer.
        publish: bool,
    },
    /// Close the instance and open it again (a clean restart, no crash).
    Reopen,
    /// Power loss between steps, then reboot and reopen.
    Crash,
    /// Arm a power loss `disk_ops` disk operations into the next op (so it strikes in the
    /// middle of that op's writes and syncs, or right after it when it does fewer).
    CrashDuring {
        /// Disk operations of the next op that still take effect.
        disk_ops: u16,
    },
    /// Pin an export cut now; stream it across the next `spread` ops (at most 16), then
    /// check the image and import it into every family.
    Export {
        /// Ops the export streams across.
        spread: u8,
    },
    /// A step of a migration (a migration subject drives it; everywhere else it does
    /// nothing).
    Migrate {
        /// Which step.
        step: MigrateStep,
    },
}

/// A step of [`crate::migrate::Migration`] as an op of a migration subject's history
/// (`migrate_begin()`, ...). Asked in a phase where it does not exist, the step must be
/// refused with a typed error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Arbitrary)]
#[serde(rename_all = "snake_case")]
pub enum MigrateStep {
    /// Plan and bootstrap: `Planned → Bootstrapped`.
    Begin,
    /// `Bootstrapped → DualWriting`.
    DualWrite,
    /// `DualWriting → Validated`.
    Validate,
    /// `Validated → CutOver`.
    CutOver,
    /// Any phase before `CutOver` → `RolledBack`.
    RollBack,
}

impl MigrateStep {
    /// Every step.
    pub const ALL: [MigrateStep; 5] = [
        MigrateStep::Begin,
        MigrateStep::DualWrite,
        MigrateStep::Validate,
        MigrateStep::CutOver,
        MigrateStep::RollBack,
    ];

    /// The op's name: `migrate_begin`, `migrate_dual_write`, ...
    pub fn op_name(self) -> &'static str {
        match self {
            MigrateStep::Begin => "migrate_begin",
            MigrateStep::DualWrite => "migrate_dual_write",
            MigrateStep::Validate => "migrate_validate",
            MigrateStep::CutOver => "migrate_cut_over",
            MigrateStep::RollBack => "migrate_roll_back",
        }
    }
}

/// A snapshot file with its content materialised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedFile {
    /// The valid, unique path.
    pub path: SnapshotPath,
    /// The bytes.
    pub data: Bytes,
    /// The file metadata.
    pub file_meta: FileMeta,
}

/// An op made absolute against a state: exactly one contract call (or a restart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `append(entries)`.
    Append(Vec<Entry>),
    /// `truncate_prefix(first_kept)`.
    TruncatePrefix(Index),
    /// `truncate_suffix(last_kept)`.
    TruncateSuffix(Index),
    /// `reset(next)`.
    Reset(Index),
    /// `save_meta(meta)`.
    SaveMeta(Meta),
    /// Write a snapshot with these files and meta; publish it when `publish`.
    Snapshot {
        /// The meta.
        meta: SnapshotMeta,
        /// The files, sorted by path.
        files: Vec<ResolvedFile>,
        /// Whether the writer is published or dropped.
        publish: bool,
    },
    /// Close and reopen.
    Reopen,
    /// Power loss now.
    Crash,
    /// Arm a power loss this many disk operations into the next action.
    ArmCrash(u16),
    /// A migration step (nothing outside a migration subject).
    Migrate(MigrateStep),
    /// Pin an export cut, finished after this many more ops.
    Export(u8),
}

/// What an op needs to know about the current state to resolve.
pub trait ResolveContext {
    /// First retained index.
    fn first(&self) -> Index;
    /// Last retained index.
    fn last(&self) -> Index;
    /// Term of a retained entry.
    fn term_at(&self, index: Index) -> Option<Term>;
    /// Current meta term.
    fn meta_term(&self) -> Term;
}

impl Op {
    /// The absolute action this op stands for in the state `ctx` describes.
    pub fn resolve(&self, ctx: &dyn ResolveContext) -> Action {
        match self {
            Op::Append { entries } => {
                let mut out = Vec::with_capacity(entries.len().min(BATCH_LEN_MAX));
                let mut index = ctx.last();
                for spec in entries.iter().take(BATCH_LEN_MAX) {
                    let Some(next) = index.checked_add(1) else { break };
                    index = next;
                    out.push(Entry { index, term: spec.term, payload: spec.body.payload() });
                }
                Action::Append(out)
            }
            Op::TruncatePrefix { advance } => {
                Action::TruncatePrefix(ctx.first().saturating_add(*advance))
            }
            Op::TruncateSuffix { drop } => Action::TruncateSuffix(ctx.last().saturating_sub(*drop)),
            Op::Reset { delta } => {
                let base = ctx.last().saturating_add(1);
                let next = if *delta >= 0 {
                    base.saturating_add(delta.unsigned_abs())
                } else {
                    base.saturating_sub(delta.unsigned_abs())
                };
                Action::Reset(next.max(1))
            }
            Op::SaveMeta { term, vote } => {
                Action::SaveMeta(Meta { term: *term, voted_for: vote.map(peer) })
            }
            Op::Snapshot { at, term, peers, old_peers, files, publish } => {
                let index = match at {
                    SnapshotAt::Back(n) => ctx.last().saturating_sub(*n),
                    SnapshotAt::Ahead(n) => ctx.last().saturating_add(*n),
                };
                let term = term.unwrap_or_else(|| ctx.term_at(index).unwrap_or(ctx.meta_term()));
                let meta = SnapshotMeta {
                    last_included_index: index,
                    last_included_term: term,
                    peers: peer_list(0, *peers),
                    old_peers: peer_list(100, *old_peers),
                };
                Action::Snapshot { meta, files: resolve_files(files), publish: *publish }
            }
            Op::Reopen => Action::Reopen,
            Op::Crash => Action::Crash,
            Op::CrashDuring { disk_ops } => Action::ArmCrash(*disk_ops),
            Op::Export { spread } => Action::Export((*spread).min(16)),
            Op::Migrate { step } => Action::Migrate(*step),
        }
    }

    /// Whether this op changes durable state (everything but `Reopen` and an abandoned
    /// snapshot writer).
    pub fn is_mutation(&self) -> bool {
        !matches!(
            self,
            Op::Reopen
                | Op::Crash
                | Op::CrashDuring { .. }
                | Op::Export { .. }
                | Op::Migrate { .. }
                | Op::Snapshot { publish: false, .. }
        )
    }
}

impl BodySpec {
    /// The payload this spec stands for.
    pub fn payload(&self) -> Payload {
        match self {
            BodySpec::NoOp => Payload::NoOp,
            BodySpec::Data { len, seed } => {
                Payload::Data(pseudo_random_bytes(*seed, (*len).min(PAYLOAD_LEN_MAX) as usize))
            }
            BodySpec::Config { peers, old_peers } => Payload::Configuration {
                peers: peer_list(0, *peers),
                old_peers: peer_list(100, *old_peers),
            },
        }
    }
}

/// The generated peer number `n`: a distinct braft PeerId for every `n` (port `8000 + n`).
/// Its address, idx and role follow from `n`, so that histories hold the shapes braft's
/// parse tells apart: the any address with a real port (a peer, not "no vote"), edge
/// octets, a non-zero idx, a witness.
pub fn peer(n: u8) -> PeerId {
    const ADDRESSES: [&str; 5] =
        ["127.0.0.1", "0.0.0.0", "10.0.0.255", "255.255.255.255", "192.168.1.7"];
    let ip = ADDRESSES[usize::from(n) % ADDRESSES.len()];
    let idx = (n / 2) % 3;
    let role = u8::from(n % 4 == 3);
    PeerId::new(format!("{ip}:{}:{idx}:{role}", 8000 + u32::from(n)))
}

fn peer_list(base: u8, count: u8) -> Vec<PeerId> {
    (0..count.min(PEERS_MAX)).map(|i| peer(base.wrapping_add(i))).collect()
}

/// `len` deterministic pseudo-random bytes from `seed` (SplitMix64 stream).
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Bytes {
    let mut out = vec![0u8; len];
    let mut state = seed;
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
    Bytes::from(out)
}

/// Turns requested file specs into a valid tree: each path is made valid (invalid segments
/// are replaced), and a path that duplicates or conflicts with an earlier one is dropped.
pub fn resolve_files(specs: &[FileSpec]) -> Vec<ResolvedFile> {
    let mut files: BTreeMap<SnapshotPath, ResolvedFile> = BTreeMap::new();
    for (i, spec) in specs.iter().take(FILES_MAX).enumerate() {
        let Ok(path) = SnapshotPath::new(sanitize_path(&spec.path, i)) else { continue };
        if check_new_snapshot_file(&files, &path).is_err() {
            continue;
        }
        let data = pseudo_random_bytes(spec.seed, spec.len.min(FILE_LEN_MAX) as usize);
        let file_meta = spec.file_meta();
        files.insert(path.clone(), ResolvedFile { path, data, file_meta });
    }
    files.into_values().collect()
}

/// Makes `requested` a valid path that no family refuses: a first segment some family keeps
/// for its own files (the `local` layout's, [`SNAPSHOT_RESERVED_NAMES`]) gets a `_` in
/// front, so every generated history is one every family can store.
fn sanitize_path(requested: &str, position: usize) -> String {
    let path = sanitize_path_rules(requested, position);
    let first = path.split('/').next().unwrap_or_default();
    if SNAPSHOT_RESERVED_NAMES.contains(&first) {
        format!("_{path}")
    } else {
        path
    }
}

fn sanitize_path_rules(requested: &str, position: usize) -> String {
    if snapshot_path_problem(requested).is_none() {
        return requested.to_string();
    }
    let segments: Vec<String> = requested
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(|s| {
            let cleaned: String = s.chars().filter(|c| *c != '\0' && *c != '\\').take(64).collect();
            if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
                "_".to_string()
            } else {
                cleaned
            }
        })
        .take(8)
        .collect();
    if segments.is_empty() {
        format!("file_{position}")
    } else {
        segments.join("/")
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Append(entries) => match (entries.first(), entries.last()) {
                (Some(a), Some(b)) => write!(f, "append([{}, {}])", a.index, b.index),
                _ => write!(f, "append([])"),
            },
            Action::TruncatePrefix(i) => write!(f, "truncate_prefix({i})"),
            Action::TruncateSuffix(i) => write!(f, "truncate_suffix({i})"),
            Action::Reset(i) => write!(f, "reset({i})"),
            Action::SaveMeta(m) => write!(
                f,
                "save_meta(term={}, vote={})",
                m.term,
                m.voted_for.as_ref().map(|p| p.as_str()).unwrap_or("none")
            ),
            Action::Snapshot { meta, files, publish } => write!(
                f,
                "snapshot(index={}, term={}, files={}, {})",
                meta.last_included_index,
                meta.last_included_term,
                files.len(),
                if *publish { "publish" } else { "abandon" }
            ),
            Action::Reopen => write!(f, "reopen()"),
            Action::Crash => write!(f, "crash()"),
            Action::ArmCrash(n) => write!(f, "arm_crash(disk_ops={n})"),
            Action::Export(n) => write!(f, "export(spread={n})"),
            Action::Migrate(step) => write!(f, "{}()", step.op_name()),
        }
    }
}
