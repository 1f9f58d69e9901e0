//! Shrinking a failure's fault plan along with its history: a fault the failure does not need
//! is switched off, one it needs stays, the result is deterministic, and the shrunk plan is
//! what the regression file records and what its replay runs under.

use std::collections::BTreeSet;
use std::sync::Arc;

use quorumkit_storage::contract::Family;
use quorumkit_storage::families::local::LocalFamily;
use quorumkit_storage::sim::checks::CheckName;
use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig};
use quorumkit_storage::sim::engine::ops::Op;
use quorumkit_storage::sim::engine::runner::{run_subject_on_disk, RunOptions};
use quorumkit_storage::sim::engine::shrink::{shrink_with_faults, Shrunk};
use quorumkit_storage::sim::engine::subject::Subject;
use quorumkit_storage::sim::planted::{PlantedBug, PlantedFamily};
use quorumkit_storage::sim::soak::regression::Regression;
use quorumkit_storage::sim::soak::{disk_with_plan, run_soak, FaultMode, SeedPlan, SoakConfig};
use quorumkit_storage::vfs::{FaultKind, FaultPlan, FaultRate, FaultStreams};

fn planted_local(bug: PlantedBug) -> Subject {
    Subject::Family(Arc::new(PlantedFamily::new(Arc::new(LocalFamily::default()), bug)))
}

/// The check `ops` fails under `plan`, as seed `seed` runs them.
fn fails(subject: &Subject, seed: u64, ops: &[Op], plan: &FaultPlan) -> Option<CheckName> {
    fails_keyed(subject, seed, ops, None, plan)
}

/// The check `ops` fails under `plan`, as seed `seed` runs them, each op keyed by `keys`.
fn fails_keyed(
    subject: &Subject,
    seed: u64,
    ops: &[Op],
    keys: Option<&[u64]>,
    plan: &FaultPlan,
) -> Option<CheckName> {
    let disk = disk_with_plan(seed, plan.clone());
    let options = RunOptions { step_keys: keys.map(<[u64]>::to_vec), ..RunOptions::default() };
    let outcome = run_subject_on_disk(subject.clone(), "shrink", disk, ops, options);
    outcome.failure.map(|f| f.check)
}

/// The first seed below 40 whose history fails `check` under `plan`, shrunk.
fn first_failure_shrunk(
    subject: &Subject,
    generator: &GeneratorConfig,
    plan: &FaultPlan,
    check: CheckName,
) -> (u64, Vec<Op>, Shrunk) {
    for seed in 0..40 {
        let ops = generate(seed, generator);
        if fails(subject, seed, &ops, plan) == Some(check) {
            let shrunk =
                shrink_with_faults(&ops, plan, check, &mut || true, |candidate, keys, plan| {
                    fails_keyed(subject, seed, candidate, Some(keys), plan)
                });
            return (seed, ops, shrunk);
        }
    }
    panic!("no seed below 40 failed {check} under {plan}");
}

/// Five fault kinds, honest and dishonest, at rates that fire in a 200-op history.
fn busy_plan() -> FaultPlan {
    FaultPlan {
        fsync_error: FaultRate::with_probability(0.005),
        write_error: FaultRate::with_probability(0.005),
        torn_sector: FaultRate::with_probability(0.02),
        bit_rot: FaultRate::with_probability(0.005),
        misdirect: FaultRate::with_probability(0.005),
        ..FaultPlan::none()
    }
}

#[test]
fn a_bug_that_needs_no_fault_shrinks_to_an_empty_plan() {
    let subject = planted_local(PlantedBug::DropEntry);
    let plan = busy_plan();
    assert_eq!(plan.kinds().len(), 5);
    let check = CheckName::ModelEquality;
    let (seed, ops, shrunk) =
        first_failure_shrunk(&subject, &GeneratorConfig::default(), &plan, check);
    assert!(shrunk.faults.is_none(), "seed {seed}: shrunk plan {} is not empty", shrunk.faults);
    assert_eq!(shrunk.removed, plan.kinds(), "seed {seed}");
    assert!(shrunk.ops.len() < ops.len(), "seed {seed}: ops did not shrink");
    assert_eq!(
        fails_keyed(&subject, seed, &shrunk.ops, Some(&shrunk.keys), &shrunk.faults),
        Some(check)
    );
}

#[test]
fn a_fault_the_bug_needs_stays_in_the_shrunk_plan() {
    // Lost fsyncs lose acknowledged data only at a power loss. Without crash ops in the
    // history, only an injected error (which the runner follows with a power loss) makes
    // one, so the shrunk plan must keep an error-returning fault. The disk capacity of 1 GiB
    // is never reached: that fault must go.
    let subject = planted_local(PlantedBug::SkipFsync);
    let generator =
        GeneratorConfig { crash_percent: 0, reopen_percent: 0, ..GeneratorConfig::default() };
    let plan = FaultPlan {
        fsync_error: FaultRate::with_probability(0.02),
        write_error: FaultRate::with_probability(0.02),
        capacity_bytes: Some(1 << 30),
        ..FaultPlan::none()
    };
    let check = CheckName::CrashAtomicity;
    let (seed, ops, shrunk) = first_failure_shrunk(&subject, &generator, &plan, check);
    assert!(!ops.iter().any(|op| matches!(op, Op::Crash | Op::CrashDuring { .. })));
    assert!(!shrunk.faults.is_none(), "seed {seed}: the needed fault was removed");
    assert!(shrunk.removed.contains(&FaultKind::CapacityBytes), "seed {seed}: {shrunk:?}");
    assert!(shrunk.faults.kinds().len() < plan.kinds().len(), "seed {seed}");
    assert!(shrunk.faults.kinds().iter().all(|k| plan.has(*k)), "seed {seed}: a fault was added");
    let keys = Some(shrunk.keys.as_slice());
    assert_eq!(fails_keyed(&subject, seed, &shrunk.ops, keys, &shrunk.faults), Some(check));
    assert_eq!(fails_keyed(&subject, seed, &shrunk.ops, keys, &FaultPlan::none()), None);
    // Every fault left is needed: without any one of them the shrunk history passes.
    for kind in shrunk.faults.kinds() {
        let without = shrunk.faults.without(kind);
        let verdict = fails_keyed(&subject, seed, &shrunk.ops, keys, &without);
        assert_ne!(verdict, Some(check), "seed {seed}: {kind} unneeded");
    }
}

#[test]
fn shrinking_a_plan_is_deterministic() {
    let subject = planted_local(PlantedBug::DropEntry);
    let plan = busy_plan();
    let check = CheckName::ModelEquality;
    let first = first_failure_shrunk(&subject, &GeneratorConfig::default(), &plan, check);
    let again = first_failure_shrunk(&subject, &GeneratorConfig::default(), &plan, check);
    assert_eq!(first, again);
}

#[test]
fn a_soak_reports_the_shrunk_plan_and_its_regression_replays_under_it() {
    let family: Arc<dyn Family> = Arc::new(LocalFamily::default());
    let mut config = SoakConfig::new(vec![family], SeedPlan::Range { start: 4, end: 5 });
    config.faults = FaultMode::Swarm;
    config.planted = Some(PlantedBug::DropEntry);
    let report = run_soak(&config, &mut || true, &mut |_, _| {});
    let found = report.failures.first().expect("seed 4 fails under drop-entry");
    assert!(found.fault_plan.kinds().len() >= 3, "seed 4's swarm plan: {}", found.fault_plan);
    assert!(found.shrunk_fault_plan.is_none(), "{}", found.shrunk_fault_plan);
    assert_eq!(found.faults_removed, found.fault_plan.kinds());
    let regression = found.regression(None);
    assert_eq!(regression.faults, found.shrunk_fault_plan);
    assert_eq!(regression.original_faults.as_ref(), Some(&found.fault_plan));
    assert!(regression.story.contains("removed"), "{}", regression.story);
    // The regression round-trips through its JSON and replays the failure under the shrunk
    // plan: the planted bug fails it again with the same check.
    let text = serde_json::to_string(&regression).expect("serialises");
    let loaded: Regression = serde_json::from_str(&text).expect("parses");
    assert_eq!(loaded, regression);
    let outcome = loaded.replay_subject(planted_local(PlantedBug::DropEntry), 8);
    assert_eq!(outcome.failure.map(|f| f.check), Some(found.failure.check));
    assert_eq!(outcome.stats.faults, 0, "the replay ran under the original plan");
}

#[test]
fn a_replay_runs_under_the_recorded_plan() {
    let ops = generate(3, &GeneratorConfig { ops_len: 30, ..GeneratorConfig::default() });
    let honest = Regression {
        story: "test".into(),
        family: "local".into(),
        seed: None,
        check: None,
        ops,
        disk_seed: 1,
        sector_size: None,
        faults: FaultPlan::none(),
        original_faults: None,
        exhaustive: None,
        fault_streams: FaultStreams::Run,
        op_keys: None,
        tunables: Default::default(),
        original_tunables: None,
    };
    let family: Arc<dyn Family> = Arc::new(LocalFamily::default());
    let clean = honest.replay(family.clone(), 0);
    assert!(clean.failure.is_none() && clean.stats.faults == 0, "{:?}", clean.failure);
    // Every write fails. Under whole-run streams (how old files were recorded) the instance
    // refuses to be created: allowed, counted as a refusal, and as a run that did no work.
    let failing = Regression {
        faults: FaultPlan { write_error: FaultRate::with_probability(1.0), ..FaultPlan::none() },
        ..honest.clone()
    };
    let refused = failing.replay(family.clone(), 0);
    assert!(refused.failure.is_none(), "{:?}", refused.failure);
    assert_eq!(refused.stats.refusals, 1);
    assert!(refused.did_no_work() && refused.stats.steps == 0, "{:?}", refused.stats);
    let why = refused.refusal.as_deref().unwrap_or_default();
    assert!(why.contains("refused at its creation"), "{why}");
    // Under per-step streams (the soak's) no fault fires while the instance is created: the
    // same plan lets the history start, and its first write fails instead.
    let per_step = Regression { fault_streams: FaultStreams::Steps, ..failing };
    let worked = per_step.replay(family, 0);
    assert!(worked.failure.is_none(), "{:?}", worked.failure);
    assert!(!worked.did_no_work() && worked.stats.steps > 0, "{:?}", worked.stats);
    assert!(worked.stats.faults > 0, "{:?}", worked.stats);
}

#[test]
fn old_regression_files_parse_with_the_old_behaviour() {
    let old = r#"{"story": "s", "family": "memory", "seed": 3, "check": null, "ops": [],
                  "disk_seed": 9, "faults": {"misdirect": {"probability": 0.1}}}"#;
    let regression: Regression = serde_json::from_str(old).expect("old file parses");
    assert_eq!(regression.original_faults, None);
    assert_eq!(regression.exhaustive, None);
    assert_eq!(regression.faults.kinds(), vec![FaultKind::Misdirect]);
    let oldest = r#"{"story": "s", "family": "memory", "seed": null, "check": null, "ops": []}"#;
    let regression: Regression = serde_json::from_str(oldest).expect("oldest file parses");
    assert!(regression.faults.is_none());
    // Fields that are absent stay absent when written again.
    let text = serde_json::to_string(&regression).expect("serialises");
    assert!(!text.contains("original_faults") && !text.contains("exhaustive"), "{text}");
}

#[test]
fn a_plan_prints_its_faults_on_one_line() {
    assert_eq!(FaultPlan::none().to_string(), "none");
    let plan = FaultPlan {
        fsync_error: FaultRate::with_probability(0.02),
        capacity_bytes: Some(65536),
        misdirect: FaultRate { probability: 0.1, at_ops: vec![3, 9] },
        ..FaultPlan::none()
    };
    assert_eq!(
        plan.to_string(),
        "fsync_error(p=0.02), capacity_bytes(65536), misdirect(p=0.1, at_ops=[3, 9])"
    );
    assert_eq!(plan.honest_part().kinds(), vec![FaultKind::FsyncError, FaultKind::CapacityBytes]);
    assert_eq!(plan.without(FaultKind::CapacityBytes).capacity_bytes, None);
}

/// A soak's budget bounds its shrinking: `keep_going` is asked before every candidate run,
/// and a shrink it stops reports the smallest failing history found so far, marked cut
/// short (before any candidate ran: the original history, unshrunk). The clock only decides
/// how far shrinking gets: what was reported still fails, on replay, under its keys.
#[test]
fn a_spent_budget_cuts_a_shrink_short_and_says_so() {
    let family: Arc<dyn Family> = Arc::new(LocalFamily::default());
    let mut config = SoakConfig::new(vec![family], SeedPlan::Range { start: 4, end: 5 });
    config.faults = FaultMode::Swarm;
    config.planted = Some(PlantedBug::DropEntry);
    let soak = |allowed: usize| {
        let mut asked = 0usize;
        let mut keep_going = || {
            asked += 1;
            asked <= allowed
        };
        let report = run_soak(&config, &mut keep_going, &mut |_, _| {});
        (report.failures.first().cloned().expect("seed 4 fails under drop-entry"), asked)
    };
    let (full, asked) = soak(usize::MAX);
    assert!(!full.shrink_cut_short && full.shrink_runs > 8, "{} runs", full.shrink_runs);
    assert!(asked > full.shrink_runs, "asked {asked} times for {} runs", full.shrink_runs);
    // The seed starts (1), then nothing more: reported unshrunk.
    let (unshrunk, _) = soak(1);
    assert!(unshrunk.shrink_cut_short && unshrunk.shrink_runs == 0);
    assert_eq!(unshrunk.shrunk.len(), unshrunk.original_len);
    assert_eq!(unshrunk.shrunk_fault_plan, unshrunk.fault_plan);
    // Part of the way: fewer runs than in full, a history between the two, still failing.
    let (part, _) = soak(6);
    assert!(part.shrink_cut_short, "{part:?}");
    assert!(part.shrink_runs > 0 && part.shrink_runs < full.shrink_runs, "{}", part.shrink_runs);
    assert!(part.shrunk.len() >= full.shrunk.len() && part.shrunk.len() < part.original_len);
    for found in [&unshrunk, &part] {
        let replayed =
            found.regression(None).replay_subject(planted_local(PlantedBug::DropEntry), 8);
        assert_eq!(replayed.failure.map(|f| f.check), Some(found.failure.check));
    }
}

/// Every op keeps its key (its position in the original history) through shrinking, and
/// candidates run with their ops' keys: a failure that needs the ops at positions 3 and 7
/// shrinks to exactly those two, keyed `[3, 7]`.
#[test]
fn shrunk_ops_keep_their_original_positions_as_keys() {
    let ops = generate(1, &GeneratorConfig { ops_len: 12, ..GeneratorConfig::default() });
    let check = CheckName::ModelEquality;
    let needs = |_: &[Op], keys: &[u64], _: &FaultPlan| {
        (keys.contains(&3) && keys.contains(&7)).then_some(check)
    };
    let shrunk = shrink_with_faults(&ops, &FaultPlan::none(), check, &mut || true, needs);
    assert_eq!(shrunk.keys, vec![3, 7]);
    assert_eq!(shrunk.ops.len(), 2);
    assert!(!shrunk.cut_short);
}

/// The runner draws each step's faults under the key the regression file records for its op
/// (`op_keys`), not its position: the same short history meets different faults under
/// different keys, the same ones under the same keys, and no keys means positions `0..`.
#[test]
fn a_replay_draws_each_ops_faults_under_its_recorded_key() {
    let ops = generate(2, &GeneratorConfig { ops_len: 4, ..GeneratorConfig::default() });
    let base = Regression {
        story: "keys".to_string(),
        family: "local".to_string(),
        seed: None,
        check: None,
        ops,
        disk_seed: 3,
        faults: FaultPlan { write_error: FaultRate::with_probability(0.5), ..FaultPlan::none() },
        original_faults: None,
        exhaustive: None,
        fault_streams: FaultStreams::Steps,
        op_keys: None,
        tunables: Default::default(),
        original_tunables: None,
        sector_size: None,
    };
    let family: Arc<dyn Family> = Arc::new(LocalFamily::default());
    let faults_under = |keys: Option<Vec<u64>>| {
        let regression = Regression { op_keys: keys, ..base.clone() };
        let outcome = regression.replay(family.clone(), 0);
        assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
        (outcome.stats.faults, outcome.trace_hash)
    };
    let keys = |k: u64| Some((0..4).map(|i| k * 10 + i).collect::<Vec<u64>>());
    let by_key: Vec<(u64, String)> = (0..12).map(|k| faults_under(keys(k))).collect();
    let counts: BTreeSet<u64> = by_key.iter().map(|(f, _)| *f).collect();
    assert!(counts.len() > 1, "every key met the same faults: {by_key:?}");
    assert_eq!(faults_under(keys(5)), by_key[5]);
    assert_eq!(faults_under(None), by_key[0]);
    // The key is written to the file, and read back.
    let keyed = Regression { op_keys: Some(vec![9]), ..base };
    let text = serde_json::to_string(&keyed).expect("serialises");
    assert!(text.contains("\"op_keys\":[9]"), "{text}");
    assert_eq!(serde_json::from_str::<Regression>(&text).expect("parses"), keyed);
}

#[test]
fn neighbouring_appends_merge_into_one() {
    use quorumkit_storage::sim::engine::ops::{BodySpec, EntrySpec};
    use quorumkit_storage::sim::engine::shrink::shrink;
    let append = |n: usize| Op::Append {
        entries: (0..n)
            .map(|i| EntrySpec { term: 1, body: BodySpec::Data { len: 8, seed: i as u64 } })
            .collect(),
    };
    // Fails once ten entries were appended in all, whatever the batches: chunk removal
    // alone stops at four appends of three; merging leaves one.
    let ops: Vec<Op> = (0..6).map(|_| append(3)).collect();
    let total = |ops: &[Op]| -> usize {
        ops.iter().map(|op| if let Op::Append { entries } = op { entries.len() } else { 0 }).sum()
    };
    let shrunk = shrink(&ops, CheckName::ModelEquality, &mut || true, |candidate, _| {
        (total(candidate) >= 10).then_some(CheckName::ModelEquality)
    });
    assert_eq!(shrunk.ops.len(), 1, "{:?}", shrunk.ops);
    assert_eq!(total(&shrunk.ops), 10, "{:?}", shrunk.ops);
    assert_eq!(shrunk.keys.len(), 1, "one key, the merged first op's");
}
