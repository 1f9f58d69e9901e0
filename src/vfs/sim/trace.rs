//! The operation trace: a running hash of every operation and the text of the last few.
//!
//! Lines are kept as small structured records and formatted only when asked for, so tracing
//! costs a hash update and a ring-buffer push per operation. The hash covers every field of
//! every line plus the bytes written and read, so two runs with equal hashes did the same
//! thing and saw the same data.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crate::vfs::VfsErrorKind;

/// What an operation's arguments were, beyond its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TraceArgs {
    None,
    /// A positional read or write.
    Range {
        offset: u64,
        len: u64,
    },
    /// A length (set_len).
    Len(u64),
    /// An open's flags: create, create_new, truncate, write.
    Open {
        create: bool,
        create_new: bool,
        truncate: bool,
        write: bool,
    },
    /// A crash: how many unsynced operations were kept out of how many.
    Crash {
        kept: u64,
        pending: u64,
    },
    /// A lock request: exclusive or shared.
    Lock {
        exclusive: bool,
    },
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TraceResult {
    Ok,
    /// Ok with a number (bytes read, a length, entries listed).
    Value(u64),
    Err(VfsErrorKind),
}

impl<T> From<&Result<T, VfsErrorKind>> for TraceResult {
    fn from(result: &Result<T, VfsErrorKind>) -> Self {
        match result {
            Ok(_) => TraceResult::Ok,
            Err(kind) => TraceResult::Err(*kind),
        }
    }
}

/// One traced operation.
#[derive(Clone, Debug)]
pub(super) struct TraceLine {
    pub op_no: u64,
    pub op: &'static str,
    pub path: Arc<str>,
    pub args: TraceArgs,
    pub result: TraceResult,
}

impl fmt::Display for TraceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.op_no, self.op)?;
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        match self.args {
            TraceArgs::None => {}
            TraceArgs::Range { offset, len } => write!(f, " off={offset} len={len}")?,
            TraceArgs::Len(len) => write!(f, " len={len}")?,
            TraceArgs::Open { create, create_new, truncate, write } => {
                let flags: Vec<&str> = [
                    (create, "create"),
                    (create_new, "create_new"),
                    (truncate, "truncate"),
                    (write, "write"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, name)| *name)
                .collect();
                write!(f, " [{}]", flags.join(","))?;
            }
            TraceArgs::Crash { kept, pending } => write!(f, " kept={kept}/{pending}")?,
            TraceArgs::Lock { exclusive } => {
                write!(f, " {}", if exclusive { "exclusive" } else { "shared" })?
            }
        }
        match self.result {
            TraceResult::Ok => write!(f, " -> Ok"),
            TraceResult::Value(v) => write!(f, " -> Ok({v})"),
            TraceResult::Err(kind) => write!(f, " -> Err({kind:?})"),
        }
    }
}

/// The trace: a hash of everything and the last `lines_max` lines; once
/// [`Trace::record_timeline`] is called, also every line and every crash's fates from then on.
#[derive(Clone, Debug)]
pub(super) struct Trace {
    hash: u64,
    lines: VecDeque<TraceLine>,
    lines_max: usize,
    timeline: Option<Box<Recorded>>,
}

/// What a timeline recording has kept so far.
#[derive(Clone, Debug, Default)]
struct Recorded {
    lines: Vec<TraceLine>,
    crashes: Vec<CrashFates>,
}

/// One disk operation as a timeline draws it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskOp {
    /// Its number (every call counts, failed ones too, and crashes).
    pub op_no: u64,
    /// The operation (`write_at`, `sync`, `rename`, `crash`, ...).
    pub op: &'static str,
    /// The path it named (empty for a crash).
    pub path: String,
    /// The byte range of a read or write: offset and length.
    pub range: Option<(u64, u64)>,
    /// The line the disk trace prints for it.
    pub text: String,
    /// The error it returned, if any (an injected fault or a refusal).
    pub error: Option<String>,
}

/// What a power loss did with one pending operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost: the durable image is as if it never happened.
    Dropped,
    /// Kept whole.
    Kept,
    /// A write kept in part: `kept` of its `pieces` (sectors, or the file's tear unit).
    Torn {
        /// Pieces that reached the medium.
        kept: u32,
        /// Pieces the write was split into.
        pieces: u32,
    },
    /// Kept, but landed at another place of the file (a misdirected write).
    Misdirected,
}

/// One power loss: the crash's own operation number and the fate of each operation that was
/// pending at that moment, in the order the crash decided them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashFates {
    /// The crash's operation number (its `crash` line).
    pub op_no: u64,
    /// Pending operation number and fate.
    pub fates: Vec<(u64, Fate)>,
}

/// Everything a disk did since [`crate::vfs::SimDisk::record_timeline`]: its operations in
/// order and the fates of the pending ones at each power loss.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskTimeline {
    /// Every operation, in order.
    pub ops: Vec<DiskOp>,
    /// Every power loss, in order.
    pub crashes: Vec<CrashFates>,
}

impl Trace {
    pub fn new(lines_max: usize) -> Self {
        Trace { hash: HASH_SEED, lines: VecDeque::new(), lines_max, timeline: None }
    }

    /// Keeps every line and crash from now on (nothing it records feeds the hash).
    pub fn record_timeline(&mut self) {
        self.timeline.get_or_insert_with(Box::default);
    }

    /// Whether a timeline is being recorded.
    pub fn recording(&self) -> bool {
        self.timeline.is_some()
    }

    /// Records a crash's fates, when recording.
    pub fn record_crash(&mut self, fates: CrashFates) {
        if let Some(recorded) = &mut self.timeline {
            recorded.crashes.push(fates);
        }
    }

    /// What was recorded, if recording.
    pub fn timeline(&self) -> Option<DiskTimeline> {
        let recorded = self.timeline.as_ref()?;
        let ops = recorded
            .lines
            .iter()
            .map(|line| DiskOp {
                op_no: line.op_no,
                op: line.op,
                path: line.path.to_string(),
                range: match line.args {
                    TraceArgs::Range { offset, len } => Some((offset, len)),
                    _ => None,
                },
                text: line.to_string(),
                error: match line.result {
                    TraceResult::Err(kind) => Some(format_kind(kind).to_string()),
                    _ => None,
                },
            })
            .collect();
        Some(DiskTimeline { ops, crashes: recorded.crashes.clone() })
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Appends a line; `data` (bytes written or read) is hashed but not kept.
    pub fn push(&mut self, line: TraceLine, data: &[u8]) {
        let mut h = self.hash;
        h = mix(h, line.op_no);
        h = mix_bytes(h, line.op.as_bytes());
        h = mix_bytes(h, line.path.as_bytes());
        h = match line.args {
            TraceArgs::None => mix(h, 0),
            TraceArgs::Range { offset, len } => mix(mix(mix(h, 1), offset), len),
            TraceArgs::Len(len) => mix(mix(h, 2), len),
            TraceArgs::Open { create, create_new, truncate, write } => {
                let bits = u64::from(create)
                    | u64::from(create_new) << 1
                    | u64::from(truncate) << 2
                    | u64::from(write) << 3;
                mix(mix(h, 3), bits)
            }
            TraceArgs::Crash { kept, pending } => mix(mix(mix(h, 4), kept), pending),
            TraceArgs::Lock { exclusive } => mix(mix(h, 5), u64::from(exclusive)),
        };
        h = match line.result {
            TraceResult::Ok => mix(h, 0),
            TraceResult::Value(v) => mix(mix(h, 1), v),
            TraceResult::Err(kind) => mix_bytes(mix(h, 2), format_kind(kind).as_bytes()),
        };
        h = mix_bytes(h, data);
        self.hash = h;
        if let Some(recorded) = &mut self.timeline {
            recorded.lines.push(line.clone());
        }
        if self.lines_max == 0 {
            return;
        }
        if self.lines.len() == self.lines_max {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The last `n` lines (at most as many as are kept), one per line, oldest first.
    pub fn tail(&self, n: usize) -> String {
        let skip = self.lines.len().saturating_sub(n);
        let mut text = String::new();
        for line in self.lines.iter().skip(skip) {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        text
    }
}

const HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

fn format_kind(kind: VfsErrorKind) -> &'static str {
    // A stable spelling for hashing, independent of Debug output.
    match kind {
        VfsErrorKind::NotFound => "NotFound",
        VfsErrorKind::AlreadyExists => "AlreadyExists",
        VfsErrorKind::NotADirectory => "NotADirectory",
        VfsErrorKind::IsADirectory => "IsADirectory",
        VfsErrorKind::DirectoryNotEmpty => "DirectoryNotEmpty",
        VfsErrorKind::Io => "Io",
        VfsErrorKind::NoSpace => "NoSpace",
        VfsErrorKind::UnexpectedEof => "UnexpectedEof",
        VfsErrorKind::Crashed => "Crashed",
        VfsErrorKind::PermissionDenied => "PermissionDenied",
        VfsErrorKind::InvalidInput => "InvalidInput",
        VfsErrorKind::Locked => "Locked",
        VfsErrorKind::ReadOnly => "ReadOnly",
        _ => "Other",
    }
}

/// One multiply-rotate step (the FxHash recipe): fast, deterministic across platforms and
/// releases, good enough to tell two traces apart (not meant to resist an adversary).
fn mix(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95)
}

fn mix_bytes(h: u64, bytes: &[u8]) -> u64 {
    // Four independent lanes over 32-byte blocks keep the multiplier pipeline busy (bulk
    // data is most of the hashing work); the tail goes through one lane word by word.
    let mut lanes = [mix(h, bytes.len() as u64), h ^ 1, h ^ 2, h ^ 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = mix(*lane, word_le(word));
        }
    }
    let mut h = lanes.iter().fold(0, |acc, lane| mix(acc, *lane));
    for word in blocks.remainder().chunks(8) {
        h = mix(h, word_le(word));
    }
    h
}

/// Up to 8 bytes as a little-endian word, zero-padded.
fn word_le(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}
