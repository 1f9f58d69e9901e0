//! Shrinking a failure's fault plan along with its history: a fault the failure does not need
//! is switched off, one it needs stays, the result is deterministic, and the shrunk plan is
//! what the regression file records and what its replay runs under.

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
use quorumkit_storage::vfs::{FaultKind, FaultPlan, FaultRate};

fn planted_local(bug: PlantedBug) -> Subject {
    Subject::Family(Arc::new(PlantedFamily::new(Arc::new(LocalFamily::default()), bug)))
}

/// The check `ops` fails under `plan`, as seed `seed` runs them.
fn fails(subject: &Subject, seed: u64, ops: &[Op], plan: &FaultPlan) -> Option<CheckName> {
    let disk = disk_with_plan(seed, plan.clone());
    let outcome = run_subject_on_disk(subject.clone(), "shrink", disk, ops, RunOptions::default());
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
            let shrunk = shrink_with_faults(&ops, plan, check, |candidate, candidate_plan| {
                fails(subject, seed, candidate, candidate_plan)
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
    assert_eq!(fails(&subject, seed, &shrunk.ops, &shrunk.faults), Some(check));
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
    assert_eq!(fails(&subject, seed, &shrunk.ops, &shrunk.faults), Some(check), "seed {seed}");
    assert_eq!(fails(&subject, seed, &shrunk.ops, &FaultPlan::none()), None, "seed {seed}");
    // Every fault left is needed: without any one of them the shrunk history passes.
    for kind in shrunk.faults.kinds() {
        let without = shrunk.faults.without(kind);
        assert_ne!(fails(&subject, seed, &shrunk.ops, &without), Some(check), "{kind} unneeded");
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
        faults: FaultPlan::none(),
        original_faults: None,
        exhaustive: None,
    };
    let family: Arc<dyn Family> = Arc::new(LocalFamily::default());
    let clean = honest.replay(family.clone(), 0);
    assert!(clean.failure.is_none() && clean.stats.faults == 0, "{:?}", clean.failure);
    // Every write fails: the instance refuses to be created, which is allowed, and counted.
    let failing = Regression {
        faults: FaultPlan { write_error: FaultRate::with_probability(1.0), ..FaultPlan::none() },
        ..honest.clone()
    };
    let refused = failing.replay(family, 0);
    assert!(refused.failure.is_none(), "{:?}", refused.failure);
    assert_eq!(refused.stats.refusals, 1);
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
