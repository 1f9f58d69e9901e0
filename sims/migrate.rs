//! Migration: the state machine (bootstrap, catch-up, dual writing, validation, cut-over,
//! rollback from every phase before cut-over, resume after a power loss) between every
//! ordered pair of families, and `qk migrate` / `qk compare` on real directories: a `local://`
//! directory to `redb://` and back, with the exit codes.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use quorumkit_storage::contract::{ContractError, Family, RaftStorage, StorageError};
use quorumkit_storage::dual_write::{DualFamily, Recovery};
use quorumkit_storage::families::Registry;
use quorumkit_storage::migrate::{Migration, MigrationError, Phase};
use quorumkit_storage::sim::engine::apply::apply_action;
use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig};
use quorumkit_storage::sim::engine::model::Model;
use quorumkit_storage::sim::engine::ops::{Action, Op};
use quorumkit_storage::state::{first_difference, RaftState};
use quorumkit_storage::vfs::{OsVfs, SimDisk, SimDiskOptions, VfsHandle};

/// Applies the contract calls of generated history `seed` (no restarts) to `instance` and
/// `model`.
fn fill(instance: &mut dyn RaftStorage, model: &mut Model, seed: u64, ops_len: usize) {
    let config = GeneratorConfig { ops_len, ..GeneratorConfig::default() };
    for op in generate(seed, &config) {
        if matches!(op, Op::Reopen | Op::Crash | Op::CrashDuring { .. } | Op::Export { .. }) {
            continue;
        }
        let action = op.resolve(&*model);
        let expected = model.apply(&action);
        let got = apply_action(instance, &action);
        assert_eq!(expected.is_ok(), got.is_ok(), "{action}: model {expected:?}, instance {got:?}");
    }
}

fn same(view: &dyn RaftStorage, model: &Model, context: &str) {
    let state = RaftState::capture(view).expect("readable");
    assert_eq!(first_difference(&state, &model.state), None, "{context}");
}

fn open(family: &Arc<dyn Family>, location: &str, vfs: &VfsHandle) -> Box<dyn RaftStorage> {
    family.open(location, vfs.clone()).expect("open")
}

#[test]
fn every_ordered_pair_migrates_cuts_over_and_keeps_writing() {
    let families = Registry::builtin().families().to_vec();
    for (i, from) in families.iter().enumerate() {
        for (j, to) in families.iter().enumerate() {
            let context = format!("{} -> {}", from.scheme(), to.scheme());
            let vfs: VfsHandle = SimDisk::new(SimDiskOptions::default());
            let mut model = Model::new();
            let mut source = open(from, &format!("src-{i}-{j}"), &vfs);
            fill(source.as_mut(), &mut model, 3 + i as u64, 60);
            let destination = open(to, &format!("dst-{i}-{j}"), &vfs);
            let mut migration = Migration::plan(source, destination).expect("empty destination");
            let summary = migration.bootstrap(&mut |_| {}).expect("bootstrap");
            assert_eq!(summary.first, model.state.first, "{context}");
            // The node goes on writing the source while bootstrapped; dual writing catches up.
            fill(migration.storage_mut(), &mut model, 100 + j as u64, 20);
            let recovery = migration.start_dual_write().expect("catch up");
            assert!(matches!(recovery, Recovery::Equivalent | Recovery::Repaired { .. }));
            fill(migration.storage_mut(), &mut model, 200, 30);
            migration.validate(&mut |_| {}).expect("equivalent");
            assert_eq!(migration.phase(), Phase::Validated);
            fill(migration.storage_mut(), &mut model, 300, 20);
            let retired = migration.cut_over().expect("cut over");
            same(retired.as_ref(), &model, &format!("{context}: the old source has everything"));
            same(migration.storage(), &model, &format!("{context}: the destination"));
            fill(migration.storage_mut(), &mut model, 400, 20);
            same(migration.storage(), &model, &format!("{context}: after cut-over"));
            assert!(matches!(
                migration.roll_back(),
                Err(MigrationError::WrongPhase { phase: Phase::CutOver, .. })
            ));
        }
    }
}

#[test]
fn rollback_before_cut_over_returns_to_the_source_from_every_phase() {
    let families = Registry::builtin().families().to_vec();
    for from in &families {
        for to in &families {
            for stop in [Phase::Planned, Phase::Bootstrapped, Phase::DualWriting, Phase::Validated]
            {
                let context = format!("{} -> {} rolled back at {stop}", from.scheme(), to.scheme());
                let vfs: VfsHandle = SimDisk::new(SimDiskOptions::default());
                let mut model = Model::new();
                let mut source = open(from, "src", &vfs);
                fill(source.as_mut(), &mut model, 11, 40);
                let mut migration =
                    Migration::plan(source, open(to, "dst", &vfs)).expect("planned");
                let mut phase = Phase::Planned;
                while phase != stop {
                    phase = match phase {
                        Phase::Planned => {
                            migration.bootstrap(&mut |_| {}).expect("bootstrap");
                            Phase::Bootstrapped
                        }
                        Phase::Bootstrapped => {
                            migration.start_dual_write().expect("dual write");
                            Phase::DualWriting
                        }
                        _ => {
                            migration.validate(&mut |_| {}).expect("validate");
                            Phase::Validated
                        }
                    };
                    fill(migration.storage_mut(), &mut model, 50 + phase as u64, 10);
                }
                assert_eq!(migration.phase(), stop, "{context}");
                let abandoned = migration.roll_back().expect("roll back");
                drop(abandoned);
                assert_eq!(migration.phase(), Phase::RolledBack);
                same(migration.storage(), &model, &format!("{context}: the source"));
                fill(migration.storage_mut(), &mut model, 77, 10);
                same(migration.storage(), &model, &format!("{context}: writing on"));
                assert!(migration.cut_over().is_err(), "{context}: cut over after rollback");
            }
        }
    }
}

#[test]
fn a_non_empty_destination_is_refused_and_steps_keep_their_order() {
    let vfs: VfsHandle = SimDisk::new(SimDiskOptions::default());
    let memory = Registry::builtin().family("memory").cloned().expect("memory");
    let mut model = Model::new();
    let mut destination = open(&memory, "d", &vfs);
    fill(destination.as_mut(), &mut model, 1, 10);
    let refused = Migration::plan(open(&memory, "s", &vfs), destination).expect_err("not empty");
    assert!(matches!(refused.error, StorageError::Contract(ContractError::NotEmpty { .. })));
    let mut migration = Migration::plan(refused.primary, open(&memory, "e", &vfs)).expect("ok");
    for wrong in [migration.start_dual_write().err(), migration.cut_over().err()] {
        assert!(matches!(wrong, Some(MigrationError::WrongPhase { phase: Phase::Planned, .. })));
    }
    assert!(migration.validate(&mut |_| {}).is_err());
}

#[test]
fn a_migration_resumes_after_a_power_loss_while_dual_writing() {
    let durable: Vec<Arc<dyn Family>> =
        Registry::builtin().families().iter().filter(|f| f.durable()).cloned().collect();
    for from in &durable {
        for to in &durable {
            let context = format!("{} -> {}", from.scheme(), to.scheme());
            let disk = SimDisk::new(SimDiskOptions::default());
            let vfs: VfsHandle = disk.clone();
            let mut model = Model::new();
            let mut source = open(from, "src", &vfs);
            fill(source.as_mut(), &mut model, 21, 40);
            let mut migration = Migration::plan(source, open(to, "dst", &vfs)).expect("plan");
            migration.bootstrap(&mut |_| {}).expect("bootstrap");
            migration.start_dual_write().expect("pair");
            fill(migration.storage_mut(), &mut model, 22, 20);
            // A power loss in the middle of a dual write.
            disk.crash_after_op(disk.op_count() + 3);
            let config = GeneratorConfig { ops_len: 10, ..GeneratorConfig::default() };
            for op in generate(23, &config) {
                let action = op.resolve(&model);
                if matches!(action, Action::Append(_)) {
                    let before = model.state.clone();
                    model.apply(&action).expect("valid");
                    if apply_action(migration.storage_mut(), &action).is_err() {
                        model.state = before; // unacknowledged; recovery decides
                        break;
                    }
                }
            }
            drop(migration);
            disk.crash();
            let (mut migration, recovery) = Migration::resume(
                Phase::DualWriting,
                open(from, "src", &vfs),
                open(to, "dst", &vfs),
            )
            .expect("resume");
            assert!(recovery.is_some(), "{context}");
            assert_eq!(migration.phase(), Phase::DualWriting, "{context}");
            migration.validate(&mut |_| {}).expect("equivalent after recovery");
            migration.cut_over().expect("cut over");
        }
    }
}

// ---- the command line -------------------------------------------------------------------

fn qk(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qk")).args(args).output().expect("qk runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn uri(scheme: &str, dir: &Path, name: &str) -> String {
    format!("{scheme}://{}", dir.join(name).display())
}

/// A real-disk instance with the state of generated history `seed`.
fn real_instance(uri: &str, seed: u64) -> Model {
    let vfs: VfsHandle = Arc::new(OsVfs::new());
    let mut instance = Registry::builtin().open(uri, vfs).expect("open on the real disk");
    let mut model = Model::new();
    fill(instance.as_mut(), &mut model, seed, 80);
    model
}

#[test]
fn qk_migrate_local_to_redb_and_back_then_compare() {
    let registry = Registry::builtin();
    if registry.family("local").is_none() || registry.family("redb").is_none() {
        return; // both families are registered on main; nothing to migrate between otherwise
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let local = uri("local", dir.path(), "local-a");
    let redb = uri("redb", dir.path(), "b.redb");
    let back = uri("local", dir.path(), "local-c");
    real_instance(&local, 5);

    let (code, out, err) = qk(&["migrate", "--from", &local, "--to", &redb]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("validated equivalent") && out.contains("rollback target"), "{out}");
    let (code, out, err) = qk(&["compare", &local, &redb]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("EQUIVALENT"), "{out}");

    let (code, out, err) = qk(&["migrate", "--from", &redb, "--to", &back, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).expect("JSON summary");
    assert_eq!(summary["phase"], "validated");
    assert_eq!(summary["validation"]["difference"], serde_json::Value::Null);
    let (code, out, _) = qk(&["compare", &local, &back, "--json"]);
    assert_eq!(code, 0, "{out}");
    let verdict: serde_json::Value = serde_json::from_str(&out).expect("JSON verdict");
    assert_eq!(verdict["equivalent"], true);

    // A non-empty destination is refused and left alone.
    let (code, _, err) = qk(&["migrate", "--from", &local, "--to", &back]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(qk(&["compare", &local, &back]).0, 0, "the refused destination changed");
}

#[test]
fn qk_compare_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A memory instance is always empty in a new process: operator commands refuse it.
    let (code, _, err) = qk(&["compare", "memory://a", "memory://b"]);
    assert_eq!(code, 2);
    assert!(err.contains("always finds it empty"), "{err}");
    assert_eq!(qk(&["compare", "memory://a", "nosuch://b"]).0, 2);
    assert_eq!(qk(&["compare", "memory://a"]).0, 2);
    assert_eq!(qk(&["migrate", "--from", "memory://a"]).0, 2);
    assert_eq!(qk(&["migrate", "--from", "memory://a", "--to", "MEMORY://a"]).0, 2);
    let durable: Vec<String> = Registry::builtin()
        .families()
        .iter()
        .filter(|f| f.durable())
        .map(|f| f.scheme().to_string())
        .collect();
    for scheme in &durable {
        let empty = uri(scheme, dir.path(), &format!("{scheme}-empty"));
        let vfs: VfsHandle = Arc::new(OsVfs::new());
        drop(Registry::builtin().open(&empty, vfs).expect("an empty instance"));
        let missing = uri(scheme, dir.path(), "missing");
        assert_eq!(qk(&["compare", &missing, "memory://x"]).0, 2, "{missing}");
        assert_eq!(qk(&["migrate", "--from", &missing, "--to", "memory://x"]).0, 2, "{missing}");
        let a = uri(scheme, dir.path(), &format!("{scheme}-a"));
        let b = uri(scheme, dir.path(), &format!("{scheme}-b"));
        real_instance(&a, 8);
        real_instance(&b, 9);
        let (code, out, _) = qk(&["compare", &a, &b]);
        assert_eq!(code, 1, "{out}");
        assert!(out.starts_with("DIFFERENT"), "{out}");
        let (code, out, _) = qk(&["compare", &a, &empty]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("retained range differs"), "{out}");
    }
}

#[test]
fn dual_family_pairs_open_from_two_uris() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::builtin();
    let Some(local) = registry.family("local").cloned() else { return };
    let vfs: VfsHandle = Arc::new(OsVfs::new());
    let primary = uri("local", dir.path(), "p");
    let mirror = uri("local", dir.path(), "m");
    {
        let (mut pair, recovery) =
            quorumkit_storage::dual_write::open_uris(&registry, &primary, &mirror, vfs.clone())
                .expect("two fresh instances pair");
        assert_eq!(recovery, Recovery::Equivalent);
        let mut model = Model::new();
        fill(&mut pair, &mut model, 4, 40);
    }
    assert_eq!(qk(&["compare", &primary, &mirror]).0, 0);
    let family = DualFamily::new(local.clone(), local);
    assert_eq!(family.name(), "local+local");
}
