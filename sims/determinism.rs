//! Determinism: one seed names one history and one trace, on every run and machine.

use std::sync::Arc;

use quorumkit_storage::families::memory::MemoryFamily;
use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig, Mode};
use quorumkit_storage::sim::engine::runner::{run_history_on_disk, RunOptions};
use quorumkit_storage::sim::soak::{disk_for, FaultMode};

fn trace_hash(seed: u64, mode: Mode) -> String {
    let config = GeneratorConfig { mode, ..GeneratorConfig::default() };
    let ops = generate(seed, &config);
    let disk = disk_for(seed, FaultMode::Mixed);
    let outcome =
        run_history_on_disk(Arc::new(MemoryFamily), "m", disk, &ops, RunOptions::default());
    assert!(outcome.failure.is_none(), "seed {seed} failed: {:?}", outcome.failure);
    outcome.trace_hash
}

#[test]
fn same_seed_same_history_and_trace() {
    for mode in [Mode::Raft, Mode::Raw] {
        for seed in 0..20 {
            let config = GeneratorConfig { mode, ..GeneratorConfig::default() };
            assert_eq!(generate(seed, &config), generate(seed, &config), "seed {seed} history");
            assert_eq!(trace_hash(seed, mode), trace_hash(seed, mode), "seed {seed} trace");
        }
    }
}

#[test]
fn different_seeds_differ() {
    assert_ne!(trace_hash(1, Mode::Raft), trace_hash(2, Mode::Raft));
}

/// Pins the generator and trace format: a change to either is a deliberate, reviewed diff.
#[test]
fn pinned_trace_hash() {
    let config = GeneratorConfig::default();
    let ops = generate(7, &config);
    assert_eq!(ops.len(), config.ops_len);
    let hash = trace_hash(7, Mode::Raft);
    assert_eq!(hash.len(), 64);
    let pinned = include_str!("../corpus/pinned/trace-hash-seed-7.txt").trim();
    assert_eq!(hash, pinned, "the trace of seed 7 changed; update the pin only on purpose");
}
