//! The soak driver: runs generated histories for many seeds against many families, shrinks
//! failures, and summarises. It reads no clock: the caller decides when to stop (the CLI
//! stops on wall time, which only chooses *how many* seeds run, never what a seed does).
//!
//! `plan.rs`: what a seed runs under (seeds, shards, fault plans, disks); `report.rs`: what a
//! soak reports; `regression.rs`: regression files; `selftest.rs`: the planted-bug self-test.

mod plan;
pub mod regression;
mod report;
pub mod selftest;

use std::path::PathBuf;
use std::sync::Arc;

use crate::contract::Family;
use crate::sim::checks::{determinism, CheckFailure, CheckName};
use crate::sim::engine::generator::{generate, GeneratorConfig, Mode};
use crate::sim::engine::migration::MigrationSubject;
use crate::sim::engine::ops::Op;
use crate::sim::engine::runner::{run_subject_on_disk, RunOptions, RunOutcome};
use crate::sim::engine::shrink::shrink_with_faults;
use crate::sim::engine::subject::Subject;
use crate::sim::engine::tunables::{self, SubjectTunables};
use crate::sim::planted::{
    PlantedBug, PlantedDualBug, PlantedFamily, PlantedMigrationBug, PlantedPairFamily,
};
use crate::vfs::FaultPlan;
use regression::Regression;

pub use plan::{
    ablated_disk, disk_for, disk_seed_for, disk_with_plan, fault_plan_for, media_plan_for,
    sector_size_for, Ablation, FaultMode, SeedPlan, Shard, MEDIA_SHARE, SOAK_FAULT_STREAMS,
};
pub use report::{points_for, FamilySummary, Reach, SoakFailure, SoakReport};

/// Everything a soak needs.
#[derive(Clone)]
pub struct SoakConfig {
    /// The families to run, each seed on each.
    pub families: Vec<Arc<dyn Family>>,
    /// The dual-write pairs to run, `(primary, mirror)`, each seed on each (after the
    /// families).
    pub pairs: Vec<(Arc<dyn Family>, Arc<dyn Family>)>,
    /// The migrations to run, `(source, destination)`, each seed on each (after the pairs).
    pub migrations: Vec<(Arc<dyn Family>, Arc<dyn Family>)>,
    /// The seeds.
    pub seeds: SeedPlan,
    /// This machine's shard, if the soak is sharded.
    pub shard: Option<Shard>,
    /// History generation.
    pub generator: GeneratorConfig,
    /// Checking.
    pub run: RunOptions,
    /// A planted bug to wrap every family with (self-tests only; a pair's two families too).
    pub planted: Option<PlantedBug>,
    /// A planted dual-write bug to give every pair (self-tests only).
    pub planted_dual: Option<PlantedDualBug>,
    /// A planted migration bug to give every migration (self-tests only).
    pub planted_migration: Option<PlantedMigrationBug>,
    /// Shrink failing histories.
    pub shrink: bool,
    /// Run each seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// At most this many failures are shrunk and reported in full.
    pub failures_max: usize,
    /// End the run at the first failure (no further subject or seed starts).
    pub fail_fast: bool,
    /// The fault plans seeds run under.
    pub faults: FaultMode,
    /// Where shrunk failures are saved as regression histories (never for planted bugs).
    pub regressions_dir: Option<PathBuf>,
    /// The family tunables every seed runs with; `None` (the default) draws them per seed
    /// ([`tunables::draw`]).
    pub tunables: Option<SubjectTunables>,
    /// Parts of the fault model and harness switched off (none by default). An ablated
    /// soak saves no regression files: they record the full model's disk.
    pub ablation: Ablation,
}

impl SoakConfig {
    /// What the soak runs, planted bugs applied: every family, then every pair, then every
    /// migration.
    pub fn subjects(&self) -> Vec<Subject> {
        let plant = |f: &Arc<dyn Family>| match self.planted {
            Some(bug) => Arc::new(PlantedFamily::new(f.clone(), bug)) as Arc<dyn Family>,
            None => f.clone(),
        };
        let mut subjects: Vec<Subject> =
            self.families.iter().map(|f| Subject::Family(plant(f))).collect();
        for (primary, mirror) in &self.pairs {
            let (primary, mirror) = (plant(primary), plant(mirror));
            subjects.push(match self.planted_dual {
                Some(bug) => Subject::Pair(Arc::new(PlantedPairFamily::new(primary, mirror, bug))),
                None => Subject::pair(primary, mirror),
            });
        }
        for (source, destination) in &self.migrations {
            let (source, destination) = (plant(source), plant(destination));
            subjects.push(Subject::Migration(Arc::new(match self.planted_migration {
                Some(bug) => MigrationSubject::planted(source, destination, bug),
                None => MigrationSubject::new(source, destination),
            })));
        }
        subjects
    }

    /// A config over `families` (and no pairs) with defaults for everything else.
    pub fn new(families: Vec<Arc<dyn Family>>, seeds: SeedPlan) -> Self {
        SoakConfig {
            families,
            pairs: Vec::new(),
            migrations: Vec::new(),
            seeds,
            shard: None,
            generator: GeneratorConfig::default(),
            run: RunOptions::default(),
            planted: None,
            planted_dual: None,
            planted_migration: None,
            shrink: true,
            check_determinism: false,
            failures_max: 5,
            fail_fast: false,
            faults: FaultMode::Default,
            regressions_dir: None,
            tunables: None,
            ablation: Ablation::default(),
        }
    }

    /// The fault plan seed `seed` runs under: its mode's, less what the ablation removes.
    pub fn fault_plan(&self, seed: u64) -> FaultPlan {
        self.ablation.plan(fault_plan_for(seed, self.faults))
    }

    /// The tunables seed `seed` runs with on the subject called `subject` (only the knobs
    /// of its families; the rest at their defaults).
    pub fn tunables_for(&self, seed: u64, subject: &str) -> SubjectTunables {
        self.tunables.unwrap_or_else(|| tunables::draw(seed)).for_subject(subject)
    }

    /// The one-line command that replays `seed` on `family` with this config (its tunables
    /// spelled out, so the line does not depend on how they are drawn).
    pub fn replay_command(&self, family: &str, seed: u64) -> String {
        let mut cmd =
            format!("cargo run --release --bin qk -- soak --family {family} --seed {seed}");
        let tunables = self.tunables_for(seed, family);
        if !tunables.is_default() || self.tunables.is_some() {
            cmd.push_str(&format!(" --tunables {tunables}"));
        }
        if self.generator.mode == Mode::Raw {
            cmd.push_str(" --mode raw");
        }
        if let Some(e) = &self.run.exhaustive {
            cmd.push_str(&format!(
                " --exhaustive --max-ops {} --subset-max {}",
                self.generator.ops_len, e.subset_units_max
            ));
        } else if self.generator.ops_len != GeneratorConfig::default().ops_len {
            cmd.push_str(&format!(" --ops {}", self.generator.ops_len));
        }
        if self.faults != FaultMode::Default {
            let mode = match self.faults {
                FaultMode::Default => "default",
                FaultMode::None => "none",
                FaultMode::Honest => "honest",
                FaultMode::Swarm => "swarm",
                FaultMode::Mixed => "mixed",
            };
            cmd.push_str(&format!(" --faults {mode}"));
        }
        if self.check_determinism {
            cmd.push_str(" --check-determinism");
        }
        if !self.ablation.is_none() {
            cmd.push_str(&format!(" --ablate {}", self.ablation));
        }
        if let Some(bug) = self.planted {
            cmd.push_str(&format!(" --planted {}", bug.name()));
        }
        if let Some(bug) = self.planted_dual {
            cmd.push_str(&format!(" --planted-dual {}", bug.name()));
        }
        if let Some(bug) = self.planted_migration {
            cmd.push_str(&format!(" --planted-migration {}", bug.name()));
        }
        if let Some(bug) = self.run.planted_validator {
            cmd.push_str(&format!(" --planted-validator {}", bug.name()));
        }
        if let Some(bug) = self.run.bad_images.planted_reader {
            cmd.push_str(&format!(" --planted-reader {}", bug.name()));
        }
        cmd
    }
}

/// Runs the soak. `keep_going` is asked before every seed, before every subject of a seed
/// but its first, and before every candidate run of a shrink: once it says no, no further
/// seed or subject starts (a seed cut short counts its histories but not itself in
/// `seeds_run`) and a shrink under way stops, its
/// failure reported as far as it got ([`SoakFailure::shrink_cut_short`]; a failure found
/// after that is reported unshrunk). `on_seed` hears after each seed.
pub fn run_soak(
    config: &SoakConfig,
    keep_going: &mut dyn FnMut() -> bool,
    on_seed: &mut dyn FnMut(u64, &SoakReport),
) -> SoakReport {
    let families = config.subjects();
    let mut report = SoakReport {
        families: families
            .iter()
            .map(|f| FamilySummary { family: f.name(), ..FamilySummary::default() })
            .collect(),
        ..SoakReport::default()
    };
    let mut seed = match config.seeds {
        SeedPlan::Range { start, .. } | SeedPlan::Open { start } => start,
    };
    loop {
        if let SeedPlan::Range { end, .. } = config.seeds {
            if seed >= end {
                break;
            }
        }
        if let Some(shard) = config.shard {
            if shard.count > 0 && seed % shard.count != shard.index {
                seed = match seed.checked_add(1) {
                    Some(s) => s,
                    None => break,
                };
                continue;
            }
        }
        if !keep_going() {
            break;
        }
        let generated = generate(seed, &config.generator);
        let mut cut_short = false;
        for (index, (family, summary)) in
            families.iter().zip(report.families.iter_mut()).enumerate()
        {
            // A seed's subjects may take long (a slow seed on every pair): the budget is asked
            // before each one, so a run ends within one history of it.
            if index > 0 && !keep_going() {
                cut_short = true;
                break;
            }
            let ops = family.history(seed, &generated);
            let ops = &ops[..];
            let (outcome, coverage) =
                crate::coverage::record(|| run_one(config, family, seed, ops));
            summary.add_coverage(&coverage);
            summary.histories += 1;
            summary.stats.add(&outcome.stats);
            let mut failure = outcome.failure.clone();
            if failure.is_none() && config.check_determinism {
                let again = run_one(config, family, seed, ops);
                let (a, b) = (&outcome.trace_hash, &again.trace_hash);
                failure = determinism::compare_runs(family.name(), seed, ops.len(), a, b);
            }
            if let Some(failure) = failure {
                summary.failures += 1;
                *summary.failures_by_check.entry(failure.check.to_string()).or_default() += 1;
                report.failures_total += 1;
                if report.failures.len() < config.failures_max {
                    let mut found = shrink_failure(config, family, seed, ops, failure, keep_going);
                    found.regression_file = save_regression(config, &found);
                    report.failures.push(found);
                }
                if config.fail_fast {
                    break;
                }
            }
        }
        if cut_short {
            // Not a seed run on every subject: its histories count, the seed does not.
            break;
        }
        report.seeds_run += 1;
        on_seed(seed, &report);
        if config.fail_fast && report.failures_total > 0 {
            break;
        }
        seed = match seed.checked_add(1) {
            Some(s) => s,
            None => break,
        };
    }
    report
}

fn run_one(config: &SoakConfig, family: &Subject, seed: u64, ops: &[Op]) -> RunOutcome {
    let tunables = config.tunables_for(seed, &family.name());
    let faults = config.fault_plan(seed);
    run_under(config, family, seed, ops, None, faults, &tunables)
}

/// Runs `ops` as seed `seed` runs, but under the fault plan `faults` and with `tunables`, each
/// op drawing its faults under its key in `keys` (`None`: its position; see
/// [`RunOptions::step_keys`]).
fn run_under(
    config: &SoakConfig,
    family: &Subject,
    seed: u64,
    ops: &[Op],
    keys: Option<&[u64]>,
    faults: FaultPlan,
    tunables: &SubjectTunables,
) -> RunOutcome {
    let disk = ablated_disk(seed, faults, config.ablation);
    let location = format!("soak/{}-{seed}", family.name());
    let options = RunOptions { step_keys: keys.map(<[u64]>::to_vec), ..config.run.clone() };
    let subject = family.with_tunables(tunables);
    run_subject_on_disk(subject, &location, disk, ops, options)
}

fn shrink_failure(
    config: &SoakConfig,
    family: &Subject,
    seed: u64,
    ops: &[Op],
    failure: CheckFailure,
    keep_going: &mut dyn FnMut() -> bool,
) -> SoakFailure {
    let replay = config.replay_command(&family.name(), seed);
    let fault_plan = config.fault_plan(seed);
    let tunables = config.tunables_for(seed, &family.name());
    // No shrink starts once the budget is spent: the failure is reported as found, and says so.
    let no_time = config.shrink && !keep_going();
    if !config.shrink || no_time || failure.check == CheckName::Determinism {
        return SoakFailure {
            seed,
            tunables,
            shrunk_tunables: tunables,
            shrunk_fault_plan: fault_plan.clone(),
            faults_removed: Vec::new(),
            fault_plan,
            family: family.name(),
            original_len: ops.len(),
            shrunk: ops.to_vec(),
            shrunk_keys: Vec::new(),
            shrunk_failure: Some(failure.clone()),
            failure,
            shrink_runs: 0,
            shrink_cut_short: no_time,
            replay,
            regression_file: None,
        };
    }
    // The tunables first, on the whole history: a failure that does not need a small segment
    // size shrinks its ops under the defaults.
    let (shrunk_tunables, _, tunable_runs) = tunables::shrink(tunables, |candidate| {
        let outcome = run_under(config, family, seed, ops, None, fault_plan.clone(), candidate);
        outcome.failure.is_some_and(|f| f.check == failure.check)
    });
    let shrunk =
        shrink_with_faults(ops, &fault_plan, failure.check, keep_going, |candidate, keys, plan| {
            let outcome = run_under(
                config,
                family,
                seed,
                candidate,
                Some(keys),
                plan.clone(),
                &shrunk_tunables,
            );
            outcome.failure.map(|f| f.check)
        });
    let shrunk_failure = run_under(
        config,
        family,
        seed,
        &shrunk.ops,
        Some(&shrunk.keys),
        shrunk.faults.clone(),
        &shrunk_tunables,
    )
    .failure;
    SoakFailure {
        seed,
        tunables,
        shrunk_tunables,
        fault_plan,
        shrunk_fault_plan: shrunk.faults,
        faults_removed: shrunk.removed,
        family: family.name(),
        original_len: ops.len(),
        shrunk: shrunk.ops,
        shrunk_keys: shrunk.keys,
        shrunk_failure,
        failure,
        shrink_runs: shrunk.runs + tunable_runs,
        shrink_cut_short: shrunk.cut_short,
        replay,
        regression_file: None,
    }
}

fn save_regression(config: &SoakConfig, found: &SoakFailure) -> Option<String> {
    let dir = config.regressions_dir.as_ref()?;
    if config.planted.is_some()
        || !config.ablation.is_none()
        || config.planted_dual.is_some()
        || config.planted_migration.is_some()
        || config.run.planted_validator.is_some()
    {
        return None;
    }
    let regression = found.regression(config.run.exhaustive.clone());
    Some(match regression.save(dir) {
        Ok(path) => {
            let drawn = save_timeline(config, &regression, &path);
            format!("{}{drawn}", path.display())
        }
        Err(e) => format!("not saved: {e}"),
    })
}

/// Replays a saved `regression` recording its timeline and writes the page beside its file
/// (`X.json` → `X.html`); what to add to the file's name in the report (empty when written).
fn save_timeline(config: &SoakConfig, regression: &Regression, path: &std::path::Path) -> String {
    let options = RunOptions { trace_tail_len: usize::MAX, ..config.run.clone() };
    match regression.save_timeline(path, options) {
        Ok(_) => String::new(),
        Err(e) => format!(" (no timeline: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::Registry;

    /// The budget is asked before each subject of a seed: once it says no, the seed stops
    /// there, its histories counted and the seed not.
    #[test]
    fn a_spent_budget_stops_a_seed_between_its_subjects() {
        let families = Registry::builtin().families().to_vec();
        let mut config = SoakConfig::new(families, SeedPlan::Range { start: 0, end: 3 });
        config.generator.ops_len = 8;
        config.regressions_dir = None;
        let subjects = config.subjects().len();
        assert!(subjects >= 2, "needs two subjects");
        // Yes for seed 0 and its second subject, then no.
        let mut asked = 0;
        let mut budget = || {
            asked += 1;
            asked <= 2
        };
        let report = run_soak(&config, &mut budget, &mut |_, _| {});
        assert_eq!(report.seeds_run, 0, "the seed cut short is not a seed run");
        let histories: Vec<u64> = report.families.iter().map(|f| f.histories).collect();
        assert_eq!(histories[..2], [1, 1]);
        assert!(histories[2..].iter().all(|h| *h == 0), "{histories:?}");
    }
}
