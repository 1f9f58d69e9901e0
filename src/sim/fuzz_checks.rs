//! Check functions behind the harness's fuzz targets (the `fuzz/` crate calls them, and
//! `sims/fuzz_corpus.rs` replays the checked-in corpus through them on stable Rust).

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};

use crate::families::memory::MemoryFamily;
use crate::sim::ops::{BodySpec, Op};
use crate::sim::runner::{run_history_on_disk, RunOptions};
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
