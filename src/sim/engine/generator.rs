//! The seeded history generator. One `ChaCha8Rng` seeded from the run's seed drives every
//! choice, so a seed and a config name a history exactly.
//!
//! Two modes:
//! - [`Mode::Raft`] (default) plays a plausible Raft node: terms never go back, a vote is cast
//!   at most once per term, suffix truncation never goes below the commit index, snapshots are
//!   taken at committed indexes with their term, prefix truncation only happens behind a
//!   snapshot. The shapes a follower's log really takes come often: a new leader truncating
//!   far back (to just above the commit index, after a burst of uncommitted entries), and
//!   InstallSnapshot as braft applies it (braft-format.md §7.3 step 5): past the log's end
//!   (then `reset`, or `truncate_prefix` past the end), below the last index over a
//!   conflicting entry (a reset backward), or below it over a matching one (the tail kept).
//! - [`Mode::Raw`] exercises every legal call of the contract, edge values included
//!   (truncations past either end, resets backwards, huge indexes, terms going back).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::contract::FileSource;
use crate::sim::engine::ops::{BodySpec, EntrySpec, FileSpec, Op, SnapshotAt};

/// Which kind of history to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Raft-plausible histories.
    Raft,
    /// Every legal contract call, edge values included.
    Raw,
}

/// Knobs of the generator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// Raft-plausible or raw.
    pub mode: Mode,
    /// Ops per history.
    pub ops_len: usize,
    /// Most entries per append.
    pub batch_len_max: usize,
    /// Longest data payload.
    pub entry_len_max: u32,
    /// Percent of appended entries that are configuration entries.
    pub config_percent: u32,
    /// Most files per snapshot.
    pub snapshot_files_max: usize,
    /// Longest snapshot file.
    pub file_len_max: u32,
    /// Percent of ops that are clean reopens.
    pub reopen_percent: u32,
    /// Percent of ops that are power losses (half between steps, half during the next op).
    pub crash_percent: u32,
    /// Per mille of ops that pin an export (checked, then imported into every family: the
    /// costliest op, so rare by default).
    pub export_per_mille: u32,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            mode: Mode::Raft,
            ops_len: 200,
            batch_len_max: 8,
            entry_len_max: 256,
            config_percent: 3,
            snapshot_files_max: 5,
            file_len_max: 4096,
            reopen_percent: 2,
            crash_percent: 4,
            export_per_mille: 6,
        }
    }
}

/// One snapshot file in [`LARGE_FILE_ONE_IN`] is longer than the validator's chunk
/// ([`crate::validate::CHUNK_LEN`]) and every read buffer, so comparing, exporting and copying
/// a file in several pieces happen in a soak too. Decided by the file's content seed, so no
/// other draw of the history moves.
const LARGE_FILE_ONE_IN: u64 = 48;

fn large_or(len: u32, content_seed: u64) -> u32 {
    if len == 0 || !content_seed.is_multiple_of(LARGE_FILE_ONE_IN) {
        return len;
    }
    // 64 KiB and a bit, up to twice that for the longest drawn files.
    let chunk = crate::validate::CHUNK_LEN as u32;
    let scaled = u64::from(len) * u64::from(chunk) / 4096;
    chunk.saturating_add(u32::try_from(scaled).unwrap_or(u32::MAX)).saturating_add(1)
}

/// Generates the history a seed names under `config`.
pub fn generate(seed: u64, config: &GeneratorConfig) -> Vec<Op> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match config.mode {
        Mode::Raft => RaftNode::new(config).history(&mut rng),
        Mode::Raw => (0..config.ops_len).map(|_| raw_op(&mut rng, config)).collect(),
    }
}

/// The generator's own view of a Raft node, enough to keep histories plausible.
struct RaftNode<'a> {
    config: &'a GeneratorConfig,
    term: u64,
    voted: bool,
    first: u64,
    last: u64,
    last_term: u64,
    commit: u64,
    snapshot_index: u64,
}

impl<'a> RaftNode<'a> {
    fn new(config: &'a GeneratorConfig) -> Self {
        RaftNode {
            config,
            term: 1,
            voted: false,
            first: 1,
            last: 0,
            last_term: 0,
            commit: 0,
            snapshot_index: 0,
        }
    }

    fn history(mut self, rng: &mut ChaCha8Rng) -> Vec<Op> {
        let mut ops = Vec::with_capacity(self.config.ops_len);
        while ops.len() < self.config.ops_len {
            let roll = rng.random_range(0..100u32);
            if roll < self.config.reopen_percent {
                ops.push(Op::Reopen);
                continue;
            }
            if roll < self.config.reopen_percent + self.config.crash_percent {
                ops.push(crash_op(rng));
                continue;
            }
            if rng.random_range(0..1000u32) < self.config.export_per_mille {
                ops.push(Op::Export { spread: rng.random_range(0..=8) });
                continue;
            }
            match rng.random_range(0..100u32) {
                0..=54 => ops.push(self.lead_append(rng)),
                55..=64 => {
                    self.commit = rng.random_range(self.commit..=self.last.max(self.commit));
                    ops.push(self.lead_append(rng));
                }
                65..=72 => ops.push(self.new_term(rng)),
                73..=76 => ops.push(self.vote(rng)),
                77..=83 => ops.extend(self.conflict(rng)),
                84..=90 => ops.extend(self.take_snapshot(rng)),
                _ => ops.extend(self.install_snapshot(rng)),
            }
        }
        ops.truncate(self.config.ops_len);
        ops
    }

    fn entry_spec(&self, rng: &mut ChaCha8Rng, term: u64) -> EntrySpec {
        let body = if rng.random_range(0..100u32) < self.config.config_percent {
            BodySpec::Config { peers: rng.random_range(1..=5), old_peers: rng.random_range(0..=3) }
        } else if rng.random_range(0..20u32) == 0 {
            BodySpec::NoOp
        } else {
            BodySpec::Data {
                len: rng.random_range(0..=self.config.entry_len_max),
                seed: rng.random(),
            }
        };
        EntrySpec { term, body }
    }

    fn lead_append(&mut self, rng: &mut ChaCha8Rng) -> Op {
        let n = rng.random_range(1..=self.config.batch_len_max.max(1));
        let term = self.term.max(self.last_term);
        let entries: Vec<EntrySpec> = (0..n).map(|_| self.entry_spec(rng, term)).collect();
        self.last += n as u64;
        self.last_term = term;
        Op::Append { entries }
    }

    fn new_term(&mut self, rng: &mut ChaCha8Rng) -> Op {
        self.term += rng.random_range(1..=3);
        self.voted = rng.random_bool(0.5);
        let vote = self.voted.then(|| rng.random_range(0..5u8));
        Op::SaveMeta { term: self.term, vote }
    }

    fn vote(&mut self, rng: &mut ChaCha8Rng) -> Op {
        if self.voted {
            return self.new_term(rng);
        }
        self.voted = true;
        Op::SaveMeta { term: self.term, vote: Some(rng.random_range(0..5u8)) }
    }

    /// A follower learns of a new leader whose log diverges after the commit index.
    /// Sometimes this node first took a burst of entries from a leader that never got them
    /// committed.
    fn conflict(&mut self, rng: &mut ChaCha8Rng) -> Vec<Op> {
        let mut ops = Vec::new();
        if rng.random_bool(0.4) {
            for _ in 0..rng.random_range(2..=5u32) {
                ops.push(self.lead_append(rng));
            }
        }
        let floor = self.commit.max(self.first - 1);
        if self.last <= floor {
            ops.push(self.new_term(rng));
            return ops;
        }
        // Half the time the new leader's log ends at the commit index: everything past it
        // goes (far back, after a burst).
        let keep = if rng.random_bool(0.5) { floor } else { rng.random_range(floor..self.last) };
        let drop = self.last - keep;
        self.last = keep;
        ops.push(Op::TruncateSuffix { drop });
        ops.push(self.new_term(rng));
        self.last_term = self.last_term.min(self.term);
        ops.push(self.lead_append(rng));
        ops
    }

    fn files(&self, rng: &mut ChaCha8Rng) -> Vec<FileSpec> {
        const NAMES: [&str; 8] =
            ["data", "a/b/c.sst", "with space.txt", "unicodé/ファイル", "x/y", "empty", "m", "z"];
        let n = rng.random_range(0..=self.config.snapshot_files_max);
        (0..n)
            .map(|_| {
                let name = NAMES[rng.random_range(0..NAMES.len())];
                let path = if rng.random_bool(0.5) {
                    name.to_string()
                } else {
                    format!("{name}{}", rng.random_range(0..100u32))
                };
                let len = if name == "empty" {
                    0
                } else {
                    rng.random_range(0..=self.config.file_len_max)
                };
                // braft's three LocalFileMeta fields, each set or not on its own.
                let file_meta_len = rng.random_bool(0.5).then(|| rng.random_range(0..=32u8));
                let source = rng.random_bool(0.25).then(|| {
                    if rng.random_bool(0.5) {
                        FileSource::Local
                    } else {
                        FileSource::Reference
                    }
                });
                let checksum_len = rng.random_bool(0.25).then(|| rng.random_range(0..=40u8));
                let seed: u64 = rng.random();
                FileSpec {
                    path,
                    len: large_or(len, seed),
                    seed,
                    file_meta_len,
                    source,
                    checksum_len,
                }
            })
            .collect()
    }

    /// Snapshot at a committed index, then maybe drop the log behind it.
    fn take_snapshot(&mut self, rng: &mut ChaCha8Rng) -> Vec<Op> {
        let low = self.snapshot_index.max(self.first - 1) + 1;
        if self.commit < low {
            self.commit = self.last;
            return vec![self.lead_append(rng)];
        }
        let index = rng.random_range(low..=self.commit);
        self.snapshot_index = index;
        let publish = rng.random_range(0..10u32) != 0;
        if !publish {
            self.snapshot_index = low - 1;
        }
        let mut ops = vec![Op::Snapshot {
            at: SnapshotAt::Back(self.last - index),
            term: None,
            peers: rng.random_range(1..=5),
            old_peers: rng.random_range(0..=2),
            files: self.files(rng),
            publish,
        }];
        if publish && rng.random_bool(0.6) {
            let first_kept = rng.random_range(self.first..=index + 1);
            ops.push(Op::TruncatePrefix { advance: first_kept - self.first });
            self.first = first_kept;
        }
        ops
    }

    /// A leader sends a snapshot (InstallSnapshot), in one of braft's shapes (§7.3 step 5).
    fn install_snapshot(&mut self, rng: &mut ChaCha8Rng) -> Vec<Op> {
        // Below the last index needs an index above both the commit index and the current
        // snapshot, inside the log.
        let low = self.commit.max(self.snapshot_index).max(self.first - 1) + 1;
        match rng.random_range(0..5u32) {
            0 if low <= self.last => self.install_below_last(rng, low, true),
            1 if low <= self.last => self.install_below_last(rng, low, false),
            2 => self.install_past_end(rng, false),
            3 if self.snapshot_index > 0 => self.install_again(rng),
            _ => self.install_past_end(rng, true),
        }
    }

    /// The leader retries an InstallSnapshot whose reply was lost: the snapshot at the
    /// index already published arrives once or twice more (its files as the leader's state
    /// machine has them now). Half the time an export pinned just before streams across the
    /// retries, so the family retires a snapshot directory the export still reads, then
    /// another of the same name.
    fn install_again(&mut self, rng: &mut ChaCha8Rng) -> Vec<Op> {
        let copies = rng.random_range(1..=2usize);
        let mut ops = Vec::new();
        if rng.random_bool(0.5) {
            ops.push(Op::Export { spread: copies as u8 + 1 });
        }
        for _ in 0..copies {
            ops.push(Op::Snapshot {
                at: SnapshotAt::Back(self.last.saturating_sub(self.snapshot_index)),
                term: None,
                peers: rng.random_range(1..=5),
                old_peers: 0,
                files: self.files(rng),
                publish: true,
            });
        }
        ops
    }

    /// A snapshot past the end of this node's log; then `reset` after it, or (braft, when
    /// the log lacks the index) `truncate_prefix` past the end.
    fn install_past_end(&mut self, rng: &mut ChaCha8Rng, reset: bool) -> Vec<Op> {
        let ahead = rng.random_range(1..=20u64);
        let index = self.last + ahead;
        self.term += rng.random_range(0..=1);
        let term = self.term;
        let advance = index + 1 - self.first;
        self.snapshot_index = index;
        self.commit = index;
        self.first = index + 1;
        self.last = index;
        self.last_term = term;
        vec![
            Op::Snapshot {
                at: SnapshotAt::Ahead(ahead),
                term: Some(term),
                peers: rng.random_range(1..=5),
                old_peers: 0,
                files: self.files(rng),
                publish: true,
            },
            if reset { Op::Reset { delta: ahead as i64 } } else { Op::TruncatePrefix { advance } },
        ]
    }

    /// A snapshot at an index in `low..=last` of this node's log, from a leader of a newer
    /// term. Over a conflicting entry (the leader's term, newer than every entry here), braft
    /// resets the log to just after it: the log goes backward. Over a matching entry (the
    /// log's own term there), it truncates the prefix only up to the previous snapshot and
    /// keeps the tail.
    fn install_below_last(&mut self, rng: &mut ChaCha8Rng, low: u64, conflict: bool) -> Vec<Op> {
        let index = rng.random_range(low..=self.last);
        let back = self.last - index;
        let previous = self.snapshot_index;
        let mut ops = Vec::new();
        let term = if conflict {
            ops.push(self.new_term(rng));
            Some(self.term)
        } else {
            None
        };
        ops.push(Op::Snapshot {
            at: SnapshotAt::Back(back),
            term,
            peers: rng.random_range(1..=5),
            old_peers: 0,
            files: self.files(rng),
            publish: true,
        });
        self.snapshot_index = index;
        self.commit = self.commit.max(index);
        if conflict {
            ops.push(Op::Reset { delta: index as i64 - self.last as i64 });
            self.first = index + 1;
            self.last = index;
            self.last_term = self.term;
        } else {
            let first_kept = (previous + 1).clamp(self.first, index + 1);
            ops.push(Op::TruncatePrefix { advance: first_kept - self.first });
            self.first = first_kept;
        }
        ops
    }
}

/// A power loss between steps or inside the next op. Inside, half the time within its
/// first few disk operations, where an append's write is still unsynced (a torn tail).
fn crash_op(rng: &mut ChaCha8Rng) -> Op {
    if rng.random_bool(0.5) {
        Op::Crash
    } else if rng.random_bool(0.5) {
        Op::CrashDuring { disk_ops: rng.random_range(0..4) }
    } else {
        Op::CrashDuring { disk_ops: rng.random_range(0..24) }
    }
}

fn edge_u64(rng: &mut ChaCha8Rng) -> u64 {
    match rng.random_range(0..10u32) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.random(),
        3..=5 => rng.random_range(0..4),
        _ => rng.random_range(0..40),
    }
}

fn raw_op(rng: &mut ChaCha8Rng, config: &GeneratorConfig) -> Op {
    let term = |rng: &mut ChaCha8Rng| {
        if rng.random_range(0..20u32) == 0 {
            edge_u64(rng)
        } else {
            rng.random_range(0..10)
        }
    };
    match rng.random_range(0..100u32) {
        0..=39 => {
            let n = rng.random_range(0..=config.batch_len_max);
            let entries = (0..n)
                .map(|_| {
                    let body = match rng.random_range(0..10u32) {
                        0 => BodySpec::NoOp,
                        1 => BodySpec::Config {
                            peers: rng.random_range(0..=9),
                            old_peers: rng.random_range(0..=9),
                        },
                        _ => BodySpec::Data {
                            len: rng.random_range(0..=config.entry_len_max),
                            seed: rng.random(),
                        },
                    };
                    EntrySpec { term: term(rng), body }
                })
                .collect();
            Op::Append { entries }
        }
        40..=49 => Op::TruncatePrefix { advance: edge_u64(rng) },
        50..=59 => Op::TruncateSuffix { drop: edge_u64(rng) },
        60..=66 => {
            let delta = match rng.random_range(0..6u32) {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => rng.random_range(-40..40),
            };
            Op::Reset { delta }
        }
        67..=79 => {
            Op::SaveMeta { term: term(rng), vote: rng.random_bool(0.6).then(|| rng.random()) }
        }
        80..=94 => {
            let at = if rng.random_bool(0.7) {
                SnapshotAt::Back(edge_u64(rng))
            } else {
                SnapshotAt::Ahead(edge_u64(rng))
            };
            let node = RaftNode::new(config);
            Op::Snapshot {
                at,
                term: rng.random_bool(0.5).then(|| term(rng)),
                peers: rng.random_range(0..=9),
                old_peers: rng.random_range(0..=9),
                files: node.files(rng),
                publish: rng.random_range(0..8u32) != 0,
            }
        }
        95..=96 => Op::Reopen,
        97 => Op::Export { spread: rng.random_range(0..=8) },
        _ => crash_op(rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::engine::model::Model;
    use crate::sim::engine::ops::Action;

    /// Raft histories stay plausible with the follower shapes in: the saved term never goes
    /// back, a term's vote never changes once cast, and the log's terms never decrease
    /// along its indexes (so no truncation or reset leaves an older term after a newer one).
    #[test]
    fn raft_histories_stay_plausible() {
        for seed in 0..300 {
            let ops = generate(seed, &GeneratorConfig::default());
            let mut model = Model::new();
            for (step, op) in ops.iter().enumerate() {
                let action = op.resolve(&model);
                let before = model.state.meta.clone();
                model.apply(&action).unwrap_or_else(|e| panic!("seed {seed} #{step}: {e}"));
                let after = &model.state.meta;
                assert!(after.term >= before.term, "seed {seed} #{step}: term went back");
                if after.term == before.term && before.voted_for.is_some() {
                    assert_eq!(after.voted_for, before.voted_for, "seed {seed} #{step}: revote");
                }
                let terms: Vec<u64> = model.state.entries.iter().map(|e| e.term).collect();
                assert!(terms.windows(2).all(|w| w[0] <= w[1]), "seed {seed} #{step}: {action}");
                if let (Action::Snapshot { meta, publish: true, .. }, Some(last)) =
                    (&action, terms.last())
                {
                    let at = model.state.get(meta.last_included_index).map(|e| e.term);
                    assert!(at.is_none_or(|t| t <= *last), "seed {seed} #{step}");
                }
            }
        }
    }
}
