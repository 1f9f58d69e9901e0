//! The harness's self-test: every planted bug must be caught. For each bug and family (and
//! each dual-write bug and ordered pair of families) it runs plain soak logic (generated
//! histories, seed after seed) until a check fails, then shrinks the failing history. A bug
//! planted to trip `determinism` runs every seed twice and compares the trace hashes, as
//! `qk soak --check-determinism` does (the others run once). A bug that survives `seeds_max`
//! seeds means a check does not bite.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::contract::Family;
use crate::sim::checks::image_views::PlantedViewBug;
use crate::sim::checks::{determinism, CheckFailure, CheckName};
use crate::sim::engine::generator::{generate, GeneratorConfig};
use crate::sim::engine::migration::MigrationSubject;
use crate::sim::engine::ops::Op;
use crate::sim::engine::runner::{run_subject_on_disk, RunOptions};
use crate::sim::engine::shrink::shrink;
use crate::sim::engine::subject::Subject;
use crate::sim::planted::{
    PlantedBug, PlantedDualBug, PlantedFamily, PlantedMigrationBug, PlantedPairFamily,
    PlantedValidatorBug,
};
use crate::sim::soak::{disk_with_plan, fault_plan_for, FaultMode};
use crate::vfs::{FaultPlan, FaultRate};

/// The verdict for one planted bug on one family (or pair).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelftestResult {
    /// The bug's kebab-case name.
    pub bug: String,
    /// The family (or `primary+mirror` pair) it was planted in.
    pub family: String,
    /// The check that caught it, or `None` when it survived.
    pub caught_by: Option<CheckName>,
    /// The check it is meant to trip.
    pub expected: CheckName,
    /// The seed that caught it.
    pub seed: Option<u64>,
    /// Seeds run, including the catching one.
    pub seeds_run: u64,
    /// Steps run until detection (over every seed tried).
    pub steps_to_detection: u64,
    /// Length of the history that caught it.
    pub original_len: usize,
    /// Length after shrinking.
    pub shrunk_len: usize,
    /// The shrunk history (empty when the bug survived).
    #[serde(default)]
    pub shrunk: Vec<Op>,
    /// What the shrunk history gives when run again as it was caught (twice, for
    /// `determinism`): the failure report, naming what differed.
    #[serde(default)]
    pub shrunk_failure: Option<CheckFailure>,
}

impl SelftestResult {
    /// Whether the bug was caught.
    pub fn caught(&self) -> bool {
        self.caught_by.is_some()
    }
}

/// Runs seeds `0..seeds_max` with `bug` planted in `family` until a check fails.
pub fn run_selftest(
    family: Arc<dyn Family>,
    bug: PlantedBug,
    generator: &GeneratorConfig,
    seeds_max: u64,
) -> SelftestResult {
    let name = family.scheme().to_string();
    let planted = Subject::Family(Arc::new(PlantedFamily::new(family, bug)));
    let options = RunOptions::default();
    let faults = if bug.needs_lying_fsync() { lying_fsync } else { honest };
    let plan = PlantedRun { bug: bug.name(), expected: bug.expected_check(), faults };
    run_planted(planted, name, plan, generator, &options, seeds_max)
}

/// Runs seeds `0..seeds_max` on `family` with the validator that `validator_agreement`
/// judges given the blind spot `bug`, until a check fails.
pub fn run_validator_selftest(
    family: Arc<dyn Family>,
    bug: PlantedValidatorBug,
    generator: &GeneratorConfig,
    seeds_max: u64,
) -> SelftestResult {
    let name = family.scheme().to_string();
    let options = RunOptions { planted_validator: Some(bug), ..RunOptions::default() };
    let subject = Subject::Family(family);
    let plan = PlantedRun { bug: bug.name(), expected: bug.expected_check(), faults: honest };
    run_planted(subject, name, plan, generator, &options, seeds_max)
}

/// Runs seeds `0..seeds_max` on `family` with the view `bug` planted in the `image_views`
/// check's reading of every exported image, until a check fails.
pub fn run_views_selftest(
    family: Arc<dyn Family>,
    bug: PlantedViewBug,
    generator: &GeneratorConfig,
    seeds_max: u64,
) -> SelftestResult {
    let name = family.scheme().to_string();
    let options = RunOptions { planted_views: Some(bug), ..RunOptions::default() };
    let subject = Subject::Family(family);
    let plan = PlantedRun { bug: bug.name(), expected: CheckName::ImageViews, faults: honest };
    run_planted(subject, name, plan, generator, &options, seeds_max)
}

/// Runs seeds `0..seeds_max` on a migration from `source` to `destination` with the
/// migration `bug` planted, until a check fails.
pub fn run_migration_selftest(
    source: Arc<dyn Family>,
    destination: Arc<dyn Family>,
    bug: PlantedMigrationBug,
    generator: &GeneratorConfig,
    seeds_max: u64,
) -> SelftestResult {
    let planted = MigrationSubject::planted(source, destination, bug);
    let name = planted.name();
    let subject = Subject::Migration(Arc::new(planted));
    let options = RunOptions::default();
    let plan = PlantedRun { bug: bug.name(), expected: bug.expected_check(), faults: honest };
    run_planted(subject, name, plan, generator, &options, seeds_max)
}

/// Runs seeds `0..seeds_max` with the dual-write `bug` planted in the pair of `primary` and
/// `mirror` until a check fails.
pub fn run_dual_selftest(
    primary: Arc<dyn Family>,
    mirror: Arc<dyn Family>,
    bug: PlantedDualBug,
    generator: &GeneratorConfig,
    seeds_max: u64,
) -> SelftestResult {
    let planted = Subject::Pair(Arc::new(PlantedPairFamily::new(primary, mirror, bug)));
    let name = planted.name();
    let options = RunOptions::default();
    let plan = PlantedRun { bug: bug.name(), expected: bug.expected_check(), faults: honest };
    run_planted(planted, name, plan, generator, &options, seeds_max)
}

/// What a planted run looks for: the bug's name, the check that must catch it, and the fault
/// plan each seed's disk runs under.
struct PlantedRun<'a> {
    bug: &'a str,
    expected: CheckName,
    faults: fn(u64) -> FaultPlan,
}

/// The plan most planted bugs run under: the seed's honest faults.
fn honest(seed: u64) -> FaultPlan {
    fault_plan_for(seed, FaultMode::Honest)
}

/// The plan of a bug only a lying disk shows ([`PlantedBug::needs_lying_fsync`]): lying
/// fsyncs alone, so that no media fault is found first.
fn lying_fsync(_seed: u64) -> FaultPlan {
    FaultPlan { fsync_loss: FaultRate::with_probability(0.03), ..FaultPlan::none() }
}

fn run_planted(
    planted: Subject,
    family: String,
    PlantedRun { bug, expected, faults }: PlantedRun<'_>,
    generator: &GeneratorConfig,
    options: &RunOptions,
    seeds_max: u64,
) -> SelftestResult {
    let mut result = SelftestResult {
        bug: bug.to_string(),
        family,
        caught_by: None,
        expected,
        seed: None,
        seeds_run: 0,
        steps_to_detection: 0,
        original_len: 0,
        shrunk_len: 0,
        shrunk: Vec::new(),
        shrunk_failure: None,
    };
    let twice = expected == CheckName::Determinism;
    for seed in 0..seeds_max {
        let ops = planted.history(seed, &generate(seed, generator)).into_owned();
        let run = |ops: &[Op], keys: Option<&[u64]>| {
            run_seed(&planted, (seed, faults(seed)), ops, options, keys, twice)
        };
        let (steps, failure) = run(&ops, None);
        result.seeds_run += 1;
        result.steps_to_detection += steps;
        if let Some(failure) = failure {
            let shrunk = shrink(&ops, failure.check, &mut || true, |candidate, keys| {
                run(candidate, Some(keys)).1.map(|f| f.check)
            });
            result.caught_by = Some(failure.check);
            result.seed = Some(seed);
            result.original_len = ops.len();
            result.shrunk_len = shrunk.ops.len();
            result.shrunk_failure = run(&shrunk.ops, Some(&shrunk.keys)).1;
            result.shrunk = shrunk.ops;
            break;
        }
    }
    result
}

/// Runs `ops` (history seed `seed`, each op drawing its faults under its key in `keys`,
/// `None`: its position) on `subject` on the seed's disk under `faults`: once, or with `twice` a second
/// time when the first run passed, a different trace hash failing `determinism`. Returns
/// the steps run and the failure.
fn run_seed(
    subject: &Subject,
    (seed, faults): (u64, FaultPlan),
    ops: &[Op],
    options: &RunOptions,
    keys: Option<&[u64]>,
    twice: bool,
) -> (u64, Option<CheckFailure>) {
    let run = || {
        let disk = disk_with_plan(seed, faults.clone());
        let options = RunOptions { step_keys: keys.map(<[u64]>::to_vec), ..options.clone() };
        run_subject_on_disk(subject.clone(), "selftest", disk, ops, options)
    };
    let first = run();
    if first.failure.is_some() || !twice {
        return (first.stats.steps, first.failure);
    }
    let second = run();
    let (a, b) = (&first.trace_hash, &second.trace_hash);
    let failure = determinism::compare_runs(subject.name(), seed, ops.len(), a, b);
    (first.stats.steps + second.stats.steps, failure)
}
