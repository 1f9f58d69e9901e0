//! Check functions behind the harness's fuzz targets (the `fuzz/` crate calls them, and
//! `sims/fuzz_corpus.rs` replays the checked-in corpus through them on stable Rust).

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};

use crate::families::memory::MemoryFamily;
use crate::sim::engine::ops::{BodySpec, Op};
use crate::sim::engine::runner::{run_history_on_disk, RunOptions};
use crate::vfs::{SimDisk, SimDiskOptions};

/// Most ops a fuzzed history runs.
pub const FUZZ_OPS_MAX: usize = 64;
/// Largest payload or file a fuzzed op may ask for.
pub const FUZZ_LEN_MAX: u32 = 4096;

/// Decodes arbitrary bytes into a history (bounded in length and sizes) and runs it on the
/// memory family over a simulated disk: every check must hold, and nothing may panic.
pub fn history(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let mut ops = Vec::new();
    while ops.len() < FUZZ_OPS_MAX && !input.is_empty() {
        match Op::arbitrary(&mut input) {
            Ok(op) => ops.push(bounded(op)),
            Err(_) => break,
        }
    }
    let disk = SimDisk::new(SimDiskOptions { seed: data.len() as u64, ..Default::default() });
    let outcome =
        run_history_on_disk(Arc::new(MemoryFamily), "fuzz", disk, &ops, RunOptions::default());
    if let Some(failure) = outcome.failure {
        panic!("a fuzzed history failed a check:\n{failure}");
    }
}

/// Clamps an op's sizes so one fuzz input stays cheap.
fn bounded(op: Op) -> Op {
    match op {
        Op::Append { mut entries } => {
            entries.truncate(16);
            for e in &mut entries {
                if let BodySpec::Data { len, .. } = &mut e.body {
                    *len = (*len).min(FUZZ_LEN_MAX);
                }
            }
            Op::Append { entries }
        }
        Op::Snapshot { at, term, peers, old_peers, mut files, publish } => {
            files.truncate(8);
            for f in &mut files {
                f.len = f.len.min(FUZZ_LEN_MAX);
            }
            Op::Snapshot { at, term, peers, old_peers, files, publish }
        }
        other => other,
    }
}

/// Files of a `local://` instance a fuzz input may replace, by selector.
const LOCAL_FILES: [&str; 4] = [
    "d/log/log_inprogress_00000000000000000001",
    "d/log/log_meta",
    "d/raft_meta/raft_meta",
    "d/snapshot/snapshot_00000000000000000002/__raft_snapshot_meta",
];

/// The `local://` family's parsers on hostile bytes: builds a small instance (three entries, a
/// vote, a snapshot), replaces one of its files (segment, `log_meta`, `raft_meta` or
/// snapshot meta, chosen by the first byte) with the rest of the input, and reopens it under
/// the fail-closed or the braft-compatible policy. Opening and reading may fail with a typed
/// error; they must never panic.
pub fn local_files(data: &[u8]) {
    use crate::contract::{Entry, Family, Meta, PeerId, SnapshotMeta, SnapshotPath};
    use crate::families::local::{recover::RecoveryPolicy, LocalFamily, LocalOptions};
    use crate::state::RaftState;
    use crate::vfs::{OpenOptions, VfsHandle};

    let Some((&selector, body)) = data.split_first() else { return };
    let recovery = if selector & 1 == 0 {
        RecoveryPolicy::FailClosed
    } else {
        RecoveryPolicy::BraftCompatible
    };
    let family = LocalFamily::with_options(LocalOptions { recovery, ..LocalOptions::default() });
    let disk = SimDisk::new(SimDiskOptions::default());
    let vfs: VfsHandle = disk.clone();
    {
        let mut instance = family.open("d", vfs.clone()).expect("a fresh local instance opens");
        let entries: Vec<Entry> = (1..=3).map(|i| Entry::data(i, 1, vec![i as u8; 40])).collect();
        instance.append(&entries).expect("append");
        let vote = Meta { term: 2, voted_for: Some(PeerId::new("10.0.0.1:8000:0")) };
        instance.save_meta(&vote).expect("save_meta");
        let mut writer = instance.begin_snapshot().expect("begin_snapshot");
        let path = SnapshotPath::new("data").expect("valid path");
        writer.add_file(&path, &crate::contract::FileMeta::user(&b"meta"[..])).expect("add_file");
        writer.write_file(&path, 0, b"snapshot bytes").expect("write_file");
        writer.set_meta(SnapshotMeta {
            last_included_index: 2,
            last_included_term: 1,
            peers: vec![PeerId::new("10.0.0.1:8000:0")],
            old_peers: vec![],
        });
        writer.publish().expect("publish");
    }
    let target = LOCAL_FILES[usize::from(selector >> 1) % LOCAL_FILES.len()];
    let file = vfs
        .open(std::path::Path::new(target), OpenOptions::CREATE_TRUNCATE)
        .expect("the target file opens");
    file.write_at(body, 0).expect("write");
    file.sync().expect("sync");
    drop(file);
    if let Ok(instance) = family.open("d", vfs) {
        let _ = RaftState::capture(instance.as_ref());
    }
}
