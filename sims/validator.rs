//! DESIGN §7 check 11, `validator_agreement`: the validator, `qk compare` and `image diff`
//! agree with the states' digests and `state::first_difference` on pairs of states held by
//! real instances of every family, and the check bites: each planted validator blind spot
//! is caught by it, by name, in a soak.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use quorumkit_storage::contract::{
    Entry, Family, FileMeta, FileSource, Meta, Payload, RaftStorage, SnapshotMeta, SnapshotPath,
};
use quorumkit_storage::families::Registry;
use quorumkit_storage::sim::checks::validator_agreement::{agree, place, Change, Side};
use quorumkit_storage::sim::checks::CheckName;
use quorumkit_storage::sim::engine::generator::GeneratorConfig;
use quorumkit_storage::sim::engine::ops::peer;
use quorumkit_storage::sim::planted::PlantedValidatorBug;
use quorumkit_storage::sim::soak::selftest::run_validator_selftest;
use quorumkit_storage::sim::soak::{run_soak, SeedPlan, SoakConfig};
use quorumkit_storage::state::{RaftState, Snapshot, SnapshotFile};
use quorumkit_storage::vfs::{SimDisk, SimDiskOptions};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A state with something of every kind: no-op, data and configuration entries, a vote, and
/// a snapshot of several files (in directories, so the image's path order and the paths'
/// byte order part) with every metadata field set on some.
fn rich_state() -> RaftState {
    let data = |text: &'static [u8]| Payload::Data(Bytes::from_static(text));
    let config = Payload::Configuration { peers: vec![peer(1), peer(2)], old_peers: vec![peer(3)] };
    let payloads = [Payload::NoOp, data(b"alpha"), config, data(b"beta"), data(b"gamma")];
    let entries = payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| Entry { index: 5 + i as u64, term: 2 + i as u64 / 2, payload })
        .collect();
    let file = |data: &'static [u8], file_meta: FileMeta| SnapshotFile {
        data: Bytes::from_static(data),
        file_meta,
    };
    let mut files = BTreeMap::new();
    let full = FileMeta {
        user_meta: Some(Bytes::from_static(b"um")),
        source: Some(FileSource::Local),
        checksum: Some("ab12".to_string()),
    };
    files.insert(SnapshotPath::new("a/b").unwrap(), file(b"inner file", full));
    files.insert(SnapshotPath::new("a-b").unwrap(), file(b"dash", FileMeta::default()));
    let reference = FileMeta { source: Some(FileSource::Reference), ..FileMeta::default() };
    files.insert(SnapshotPath::new("data").unwrap(), file(b"snapshot data", reference));
    let meta = SnapshotMeta {
        last_included_index: 4,
        last_included_term: 2,
        peers: vec![peer(1), peer(2)],
        old_peers: Vec::new(),
    };
    RaftState {
        first: 5,
        entries,
        meta: Meta { term: 4, voted_for: Some(peer(2)) },
        snapshot: Some(Snapshot { meta, files }),
    }
}

fn fresh_disk(seed: u64) -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed, ..SimDiskOptions::default() })
}

/// Puts `x` and `y` into fresh instances of `f` and `g` and asks the check.
fn judge(
    f: &Arc<dyn Family>,
    g: &Arc<dyn Family>,
    x: &RaftState,
    y: &RaftState,
    planted: Option<PlantedValidatorBug>,
) -> Result<(), String> {
    let disk = fresh_disk(7);
    let a = place(f, &disk, "a", x).unwrap_or_else(|e| panic!("{}: {e:?}", f.scheme()));
    let b = place(g, &disk, "b", y).unwrap_or_else(|e| panic!("{}: {e:?}", g.scheme()));
    let (a, b) = (side(a.as_ref(), "a"), side(b.as_ref(), "b"));
    agree(&a, &b, planted)
}

fn side<'a>(storage: &'a dyn RaftStorage, name: &str) -> Side<'a> {
    Side { storage, uri: format!("{}://{name}", storage.family()) }
}

/// Every one-change copy of the rich state, and the state itself, agree in both orders on
/// every ordered pair of families (mixed pairs included): no false alarm on any change kind.
#[test]
fn every_change_agrees_on_every_pair_of_families() {
    let registry = Registry::builtin();
    let families = registry.families();
    let state = rich_state();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut judged = 0;
    for change in Change::ALL {
        let changed = change.apply(&state, &mut rng).unwrap_or_else(|| {
            // A snapshot where there was none: the rich state without its snapshot.
            assert_eq!(change, Change::SnapshotAdded, "{} did not apply", change.name());
            let mut bare = state.clone();
            bare.snapshot = None;
            change.apply(&bare, &mut rng).expect("applies to a state without a snapshot")
        });
        assert_ne!(changed.digest(), state.digest(), "{} changed nothing", change.name());
        for f in families {
            for g in families {
                for (x, y) in [(&state, &changed), (&changed, &state), (&state, &state)] {
                    if let Err(what) = judge(f, g, x, y, None) {
                        panic!("{} on {}+{}: {what}", change.name(), f.scheme(), g.scheme());
                    }
                    judged += 1;
                }
            }
        }
    }
    assert_eq!(judged, Change::ALL.len() * families.len() * families.len() * 3);
}

/// Each planted blind spot makes the check fail on the difference it hides.
#[test]
fn planted_blind_spots_fail_the_check_directly() {
    let registry = Registry::builtin();
    let families = registry.families();
    let state = rich_state();
    let mut meta_changed = state.clone();
    let files = &mut meta_changed.snapshot.as_mut().unwrap().files;
    files.get_mut(&SnapshotPath::new("data").unwrap()).unwrap().file_meta.source = None;
    let mut last_changed = state.clone();
    last_changed.entries.last_mut().unwrap().term += 1;
    let cases = [
        (PlantedValidatorBug::SkipsFileMeta, &meta_changed),
        (PlantedValidatorBug::StopsBeforeLast, &last_changed),
    ];
    for (bug, changed) in cases {
        for f in families {
            for g in families {
                assert_eq!(judge(f, g, &state, changed, None), Ok(()), "{}", bug.name());
                let what = judge(f, g, &state, changed, Some(bug)).expect_err(bug.name());
                assert!(what.starts_with("validate::compare("), "{}: {what}", bug.name());
                assert_eq!(judge(f, g, &state, &state, Some(bug)), Ok(()), "{}", bug.name());
            }
        }
    }
}

/// In a soak, each planted validator bug is caught by `validator_agreement` (by name) on
/// every family, and shrinks to a history that still fails it.
#[test]
fn planted_validator_bugs_are_caught_by_validator_agreement_on_every_family() {
    let generator = GeneratorConfig::default();
    let registry = Registry::builtin();
    let mut missed = Vec::new();
    for bug in PlantedValidatorBug::ALL {
        for family in registry.families() {
            let r = run_validator_selftest(family.clone(), bug, &generator, 40);
            let shrunk = r.shrunk_failure.as_ref().map(|f| f.check);
            if r.caught_by != Some(CheckName::ValidatorAgreement)
                || shrunk != Some(CheckName::ValidatorAgreement)
            {
                missed.push(format!(
                    "{} on {}: caught by {:?} after {} seeds (shrunk fails {shrunk:?})",
                    bug.name(),
                    r.family,
                    r.caught_by,
                    r.seeds_run
                ));
            }
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

/// A short soak of every family and pair holds with the check on, and compares pairs.
#[test]
fn soak_holds_with_the_check_and_compares_pairs() {
    let registry = Registry::builtin();
    let families = registry.families().to_vec();
    let mut config = SoakConfig::new(families.clone(), SeedPlan::Range { start: 0, end: 6 });
    config.pairs =
        families.iter().flat_map(|p| families.iter().map(|m| (p.clone(), m.clone()))).collect();
    config.shrink = false;
    let report = run_soak(&config, &mut || true, &mut |_, _| {});
    let failures: Vec<String> = report.failures.iter().map(|f| f.failure.to_string()).collect();
    assert!(report.passed(), "{}", failures.join("\n"));
    let compared: u64 = report.families.iter().map(|f| f.stats.validator_pairs).sum();
    assert!(compared >= 12, "only {compared} pairs compared");
}
