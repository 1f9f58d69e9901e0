//! The redb family against the contract: the conformance suite on the real disk (`OsVfs`
//! in a temporary directory), generated histories, crash-safe creation, poisoning, and
//! `inspect`.

use std::sync::Arc;

use quorumkit_storage::families::redb::RedbFamily;
use quorumkit_storage::sim::conformance::FamilyFixture;
use quorumkit_storage::sim::generator::{generate, GeneratorConfig, Mode};
use quorumkit_storage::sim::runner::{run_history, RunOptions};
use quorumkit_storage::vfs::OsVfs;

/// A conformance fixture whose instances live in a temporary directory, removed when the
/// fixture (one per case) drops.
struct TempFixture {
    inner: FamilyFixture,
    _dir: tempfile::TempDir,
}

impl quorumkit_storage::sim::conformance::Fixture for TempFixture {
    fn fresh(&mut self) -> Box<dyn quorumkit_storage::contract::RaftStorage> {
        self.inner.fresh()
    }
    fn reopen(
        &mut self,
        instance: Box<dyn quorumkit_storage::contract::RaftStorage>,
    ) -> Box<dyn quorumkit_storage::contract::RaftStorage> {
        self.inner.reopen(instance)
    }
    fn durable(&self) -> bool {
        self.inner.durable()
    }
}

fn fixture() -> TempFixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let base = dir.path().to_str().expect("UTF-8 temp path").to_string();
    TempFixture {
        inner: FamilyFixture::new(Arc::new(RedbFamily::new()), Arc::new(OsVfs::new()), base),
        _dir: dir,
    }
}

mod conformance {
    quorumkit_storage::conformance_tests!(super::fixture());
}

fn run_generated(mode: Mode, seeds: std::ops::Range<u64>) {
    let config = GeneratorConfig { mode, ..GeneratorConfig::default() };
    for seed in seeds {
        let dir = tempfile::tempdir().expect("temporary directory");
        let location = dir.path().join("db.redb");
        let ops = generate(seed, &config);
        let outcome = run_history(
            Arc::new(RedbFamily::new()),
            location.to_str().expect("UTF-8 temp path"),
            Arc::new(OsVfs::new()),
            &ops,
            RunOptions::default(),
        );
        if let Some(f) = outcome.failure {
            panic!("seed {seed}: {f}");
        }
    }
}

#[test]
fn generated_raft_histories_hold_on_os_disk() {
    run_generated(Mode::Raft, 0..6);
}

#[test]
fn generated_raw_histories_hold_on_os_disk() {
    run_generated(Mode::Raw, 0..6);
}
