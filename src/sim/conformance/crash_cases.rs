//! Exhaustive crash cases for the conformance suite: for every mutating contract method, a
//! power loss after **every** simulated-disk operation the call makes, and at each point every
//! subset of the operations still pending (sampled when there are many), optionally with
//! writes torn at sector boundaries. Each post-crash disk is reopened and its state must be one
//! the atomicity table allows:
//!
//! | mutation | allowed after a crash during it |
//! |---|---|
//! | append batch | the state before, or after any prefix of the batch |
//! | truncate_prefix, truncate_suffix, reset, meta save | before or after |
//! | snapshot publish | the previous snapshot or the new one, whole |
//! | import | empty, or the complete imported state |
//!
//! A crash after the call returned (its last disk operation) allows only the state after it.
//! A volatile family must come back empty. On a `local://` directory what braft would read
//! of every crash state is judged too (`braft_view`). A family runs them all with
//! `quorumkit_storage::crash_conformance_tests!(family_expression);`.

use std::sync::Arc;

use crate::contract::{Family, RaftStorage};
use crate::sim::checks::braft_view;
use crate::sim::checks::crash_atomicity::{CrashCheck, CrashCheckReport};
use crate::sim::conformance::import_state;
use crate::sim::engine::apply::apply_action;
use crate::sim::engine::model::Model;
use crate::sim::engine::ops::{pseudo_random_bytes, Action, ResolvedFile};
use crate::sim::engine::subject::Subject;
use crate::state::RaftState;
use crate::vfs::{EnumerateOptions, SimDisk, SimDiskOptions};

/// What one crash case exercises.
pub struct CrashCase {
    /// The case's name (also its test function's name).
    pub name: &'static str,
    /// The mutation under test, given the state the setup built.
    pub mutation: fn(&RaftState) -> Mutation,
}

/// The call a crash case crashes in.
pub enum Mutation {
    /// A contract call.
    Action(Action),
    /// An import of this state into an empty instance.
    Import(RaftState),
}

/// How a crash case enumerates.
#[derive(Clone, Debug)]
pub struct CrashCaseOptions {
    /// Enumeration options (subset bound, sampling, tearing).
    pub enumerate: EnumerateOptions,
    /// Sector size of the disk.
    pub sector_size: u32,
    /// Power losses nested inside each crash state's reopen, enumerated too
    /// ([`CrashCheck::recovery_depth`]).
    pub recovery_depth: u32,
}

impl Default for CrashCaseOptions {
    fn default() -> Self {
        CrashCaseOptions {
            enumerate: EnumerateOptions {
                subset_units_max: 6,
                sample_count: 24,
                tear_writes: false,
                seed: 0,
            },
            sector_size: 512,
            recovery_depth: 0,
        }
    }
}

macro_rules! crash_cases {
    ($($name:ident),* $(,)?) => {
        /// Every crash case, in order.
        pub const CRASH_CASES: &[CrashCase] =
            &[$(CrashCase { name: stringify!($name), mutation: $name }),*];
    };
}

crash_cases!(
    crash_in_append_batch,
    crash_in_truncate_prefix,
    crash_in_truncate_suffix,
    crash_in_reset,
    crash_in_save_meta,
    crash_in_first_snapshot_publish,
    crash_in_snapshot_replace,
    crash_in_import,
);

/// Generates one `#[test]` per crash case, plain and with writes torn at sector boundaries,
/// for the family `$family` (an `Arc<dyn Family>` expression).
#[macro_export]
macro_rules! crash_conformance_tests {
    ($family:expr) => {
        $crate::crash_conformance_tests!(@cases $family;
            crash_in_append_batch, crash_in_truncate_prefix, crash_in_truncate_suffix,
            crash_in_reset, crash_in_save_meta, crash_in_first_snapshot_publish,
            crash_in_snapshot_replace, crash_in_import);
    };
    (@cases $family:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                use $crate::sim::conformance::crash_cases::{run_named, CrashCaseOptions};
                let options = CrashCaseOptions::default();
                run_named(stringify!($name), $family, &options);
                let mut torn = options.clone();
                torn.enumerate.tear_writes = true;
                run_named(stringify!($name), $family, &torn);
            }
        )*
        #[test]
        fn every_crash_case_has_a_test() {
            let names: &[&str] = &[$(stringify!($name)),*];
            let all: Vec<&str> =
                $crate::sim::conformance::crash_cases::CRASH_CASES.iter().map(|c| c.name).collect();
            assert_eq!(names, all.as_slice(), "the macro's list and CRASH_CASES must match");
        }
    };
}

/// Runs the crash case called `name` on `family`, panicking with what went wrong.
pub fn run_named(name: &str, family: Arc<dyn Family>, options: &CrashCaseOptions) {
    let case = CRASH_CASES.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name}"));
    match run_crash_case(family, case, options) {
        Ok(report) => assert!(report.states > 0, "{name}: no crash state was enumerated"),
        Err(what) => panic!("crash case {name}: {what}"),
    }
}

fn setup_actions() -> Vec<Action> {
    let entries = |from: u64, to: u64, term: u64| {
        Action::Append(
            (from..=to)
                .map(|i| crate::contract::Entry::data(i, term, pseudo_random_bytes(i, 300)))
                .collect(),
        )
    };
    vec![
        entries(1, 12, 1),
        Action::SaveMeta(crate::contract::Meta {
            term: 2,
            voted_for: Some(crate::contract::PeerId::new("10.0.0.1:8000:0")),
        }),
        entries(13, 20, 2),
    ]
}

fn snapshot(index: u64, names: &[&str]) -> Action {
    let files = names
        .iter()
        .map(|n| ResolvedFile {
            path: crate::contract::SnapshotPath::new(*n).expect("valid case path"),
            data: pseudo_random_bytes(index ^ n.len() as u64, 700),
            file_meta: crate::contract::FileMeta {
                user_meta: Some(bytes::Bytes::from_static(b"meta")),
                source: Some(crate::contract::FileSource::Reference),
                checksum: Some("c".into()),
            },
        })
        .collect();
    Action::Snapshot {
        meta: crate::contract::SnapshotMeta {
            last_included_index: index,
            last_included_term: 1,
            peers: vec![crate::contract::PeerId::new("10.0.0.1:8000:0")],
            old_peers: vec![],
        },
        files,
        publish: true,
    }
}

fn crash_in_append_batch(s: &RaftState) -> Mutation {
    let from = s.last() + 1;
    Mutation::Action(Action::Append(
        (from..from + 5)
            .map(|i| crate::contract::Entry::data(i, 3, pseudo_random_bytes(i, 900)))
            .collect(),
    ))
}

fn crash_in_truncate_prefix(s: &RaftState) -> Mutation {
    Mutation::Action(Action::TruncatePrefix(s.first + 7))
}

fn crash_in_truncate_suffix(s: &RaftState) -> Mutation {
    Mutation::Action(Action::TruncateSuffix(s.last() - 9))
}

fn crash_in_reset(s: &RaftState) -> Mutation {
    Mutation::Action(Action::Reset(s.last() + 40))
}

fn crash_in_save_meta(_: &RaftState) -> Mutation {
    Mutation::Action(Action::SaveMeta(crate::contract::Meta {
        term: 3,
        voted_for: Some(crate::contract::PeerId::new("10.0.0.2:8000:0:1")),
    }))
}

fn crash_in_first_snapshot_publish(_: &RaftState) -> Mutation {
    Mutation::Action(snapshot(10, &["a/b", "c"]))
}

fn crash_in_snapshot_replace(_: &RaftState) -> Mutation {
    Mutation::Action(snapshot(18, &["d", "a/e"]))
}

fn crash_in_import(s: &RaftState) -> Mutation {
    Mutation::Import(s.clone())
}

/// Runs one crash case on `family`.
pub fn run_crash_case(
    family: Arc<dyn Family>,
    case: &CrashCase,
    options: &CrashCaseOptions,
) -> Result<CrashCheckReport, String> {
    let disk = SimDisk::new(SimDiskOptions {
        sector_size: options.sector_size,
        ..SimDiskOptions::default()
    });
    let location = "crash-case/instance";
    let open = |disk: &Arc<SimDisk>| -> Result<Box<dyn RaftStorage>, String> {
        family.open(location, disk.clone()).map_err(|e| format!("open: {e}"))
    };
    let mut model = Model::new();
    let mut instance = open(&disk)?;
    let mut setup = setup_actions();
    if case.name == "crash_in_snapshot_replace" {
        setup.push(snapshot(10, &["a/b", "c"]));
    }
    let is_import = case.name == "crash_in_import";
    if !is_import {
        for action in &setup {
            model.apply(action).map_err(|e| format!("case bug: {e}"))?;
            apply_action(instance.as_mut(), action).map_err(|e| format!("setup {action}: {e}"))?;
        }
    }
    let mut source = Model::new();
    for action in &setup {
        source.apply(action).map_err(|e| format!("case bug: {e}"))?;
    }
    let mutation = (case.mutation)(&source.state);
    let before = model.state.clone();
    let mark = disk.mark();
    let (after, allowed) = match &mutation {
        Mutation::Action(action) => {
            model.apply(action).map_err(|e| format!("case bug: {e}"))?;
            apply_action(instance.as_mut(), action).map_err(|e| format!("{action}: {e}"))?;
            let mut allowed = vec![before.clone()];
            if let Action::Append(entries) = action {
                let mut partial = before.clone();
                for entry in entries {
                    partial.entries.push(entry.clone());
                    allowed.push(partial.clone());
                }
            }
            allowed.push(model.state.clone());
            (model.state.clone(), allowed)
        }
        Mutation::Import(state) => {
            import_state(instance.as_mut(), state).map_err(|e| format!("import: {e}"))?;
            (state.clone(), vec![before.clone(), state.clone()])
        }
    };
    let returned_at = disk.op_count();
    drop(instance);
    let braft_roots = braft_view::local_roots(&Subject::Family(family.clone()), location);
    let check = CrashCheck {
        family: family.as_ref(),
        location,
        before: &allowed,
        after: &after,
        braft_roots: &braft_roots,
        recovery_depth: options.recovery_depth,
    };
    check.verify(&disk, mark, returned_at, &options.enumerate)
}
