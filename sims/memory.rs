//! The memory family against the contract: the conformance suite, generated histories in
//! both modes, and a proptest over arbitrary op lists that shrinks any failure.

use std::sync::Arc;

use proptest::prelude::*;
use quorumkit_storage::contract::FileSource;
use quorumkit_storage::families::memory::MemoryFamily;
use quorumkit_storage::sim::conformance::FamilyFixture;
use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig, Mode};
use quorumkit_storage::sim::engine::ops::{BodySpec, EntrySpec, FileSpec, Op, SnapshotAt};
use quorumkit_storage::sim::engine::runner::{run_history_on_disk, RunOptions};
use quorumkit_storage::sim::soak::{disk_for, FaultMode};
use quorumkit_storage::vfs::{OsVfs, SimDisk};

fn fixture() -> FamilyFixture {
    FamilyFixture::new(Arc::new(MemoryFamily), Arc::new(OsVfs::new()), "mem")
}

mod conformance {
    quorumkit_storage::conformance_tests!(super::fixture());
}

mod crash_conformance {
    quorumkit_storage::crash_conformance_tests!(std::sync::Arc::new(
        quorumkit_storage::families::memory::MemoryFamily
    ));
}

fn run(ops: &[Op], disk: Arc<SimDisk>) -> Option<String> {
    let outcome =
        run_history_on_disk(Arc::new(MemoryFamily), "m", disk, ops, RunOptions::default());
    outcome.failure.map(|f| f.to_string())
}

#[test]
fn generated_raft_histories_hold() {
    for seed in 0..40 {
        let ops = generate(seed, &GeneratorConfig::default());
        if let Some(f) = run(&ops, disk_for(seed, FaultMode::Mixed)) {
            panic!("seed {seed}: {f}");
        }
    }
}

#[test]
fn generated_raw_histories_hold() {
    let config = GeneratorConfig { mode: Mode::Raw, ..GeneratorConfig::default() };
    for seed in 0..40 {
        let ops = generate(seed, &config);
        if let Some(f) = run(&ops, disk_for(seed, FaultMode::Mixed)) {
            panic!("seed {seed}: {f}");
        }
    }
}

fn small_op() -> impl Strategy<Value = Op> {
    let body = prop_oneof![
        Just(BodySpec::NoOp),
        (0u32..64, any::<u64>()).prop_map(|(len, seed)| BodySpec::Data { len, seed }),
        (0u8..4, 0u8..3).prop_map(|(peers, old_peers)| BodySpec::Config { peers, old_peers }),
    ];
    let entry = (0u64..5, body).prop_map(|(term, body)| EntrySpec { term, body });
    let source =
        proptest::option::of(prop_oneof![Just(FileSource::Local), Just(FileSource::Reference)]);
    let file = (
        "[a-c]{1,2}(/[a-c]{1,2})?",
        0u32..300,
        any::<u64>(),
        proptest::option::of(0u8..8),
        source,
        proptest::option::of(0u8..8),
    )
        .prop_map(|(path, len, seed, file_meta_len, source, checksum_len)| FileSpec {
            path,
            len,
            seed,
            file_meta_len,
            source,
            checksum_len,
        });
    prop_oneof![
        4 => proptest::collection::vec(entry, 0..6).prop_map(|entries| Op::Append { entries }),
        1 => (0u64..12).prop_map(|advance| Op::TruncatePrefix { advance }),
        1 => (0u64..12).prop_map(|drop| Op::TruncateSuffix { drop }),
        1 => (-12i64..12).prop_map(|delta| Op::Reset { delta }),
        1 => (0u64..9, proptest::option::of(0u8..4))
            .prop_map(|(term, vote)| Op::SaveMeta { term, vote }),
        1 => (0u64..8, any::<bool>(), proptest::collection::vec(file, 0..4), any::<bool>())
            .prop_map(|(n, ahead, files, publish)| Op::Snapshot {
                at: if ahead { SnapshotAt::Ahead(n) } else { SnapshotAt::Back(n) },
                term: None,
                peers: 3,
                old_peers: 0,
                files,
                publish,
            }),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_op_lists_match_the_model(ops in proptest::collection::vec(small_op(), 0..60)) {
        let failure = run(&ops, disk_for(0, FaultMode::Swarm));
        prop_assert!(failure.is_none(), "{}", failure.unwrap_or_default());
    }
}
