//! The soak driver: runs generated histories for many seeds against many families, shrinks
//! failures, and summarises. It reads no clock: the caller decides when to stop (the CLI
//! stops on wall time, which only chooses *how many* seeds run, never what a seed does).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::contract::Family;
use crate::sim::check::{CheckFailure, CheckName};
use crate::sim::dual::Subject;
use crate::sim::generator::{generate, GeneratorConfig, Mode};
use crate::sim::ops::Op;
use crate::sim::planted::{PlantedBug, PlantedDualBug, PlantedFamily, PlantedPairFamily};
use crate::sim::regression::Regression;
use crate::sim::runner::{run_subject_on_disk, RunOptions, RunOutcome};
use crate::sim::shrink::shrink_with_faults;
use crate::vfs::{EnumerateOptions, FaultKind, FaultPlan, SimDisk, SimDiskOptions};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which seeds a soak runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedPlan {
    /// Seeds `start..end`, in order.
    Range {
        /// First seed.
        start: u64,
        /// One past the last seed.
        end: u64,
    },
    /// Seeds `start, start+1, ...` until the caller says stop.
    Open {
        /// First seed.
        start: u64,
    },
}

/// Splits the seed space across machines: a seed belongs to shard `index` of `count` when
/// `seed % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

/// Which fault plans a soak's seeds run under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// No fault at all: power losses (with torn writes) only.
    None,
    /// Honest faults only, drawn per seed: power losses with torn writes, and faults that
    /// return an error (fsync EIO, write EIO, ENOSPC). Nothing acknowledged may be lost.
    Honest,
    /// A swarm-drawn fault plan for every seed.
    Swarm,
    /// Half the seeds honest, half swarm (drawn from the seed).
    Mixed,
}

/// The fault plan seed `seed` runs under in `mode`: a pure function of both.
pub fn fault_plan_for(seed: u64, mode: FaultMode) -> FaultPlan {
    let disk_seed = seed ^ 0x5eed_d15c_0000_0000;
    match mode {
        FaultMode::None => FaultPlan::none(),
        FaultMode::Honest => {
            let swarm = FaultPlan::swarm(disk_seed);
            FaultPlan {
                fsync_error: swarm.fsync_error,
                write_error: swarm.write_error,
                capacity_bytes: swarm.capacity_bytes,
                ..FaultPlan::none()
            }
        }
        FaultMode::Swarm => FaultPlan::swarm(disk_seed),
        FaultMode::Mixed => {
            let mut rng = ChaCha8Rng::seed_from_u64(disk_seed);
            if rng.random_bool(0.5) {
                FaultPlan::none()
            } else {
                FaultPlan::swarm_from(&mut rng)
            }
        }
    }
}

/// The seed of the simulated disk that history seed `seed` runs on.
pub fn disk_seed_for(seed: u64) -> u64 {
    seed ^ 0xd15c
}

/// The simulated disk seed `seed` runs on.
pub fn disk_for(seed: u64, mode: FaultMode) -> Arc<SimDisk> {
    disk_with_plan(seed, fault_plan_for(seed, mode))
}

/// The simulated disk seed `seed` runs on, under `faults` instead of its mode's plan (a
/// shrunk plan): the same disk seed, so every fault kind left fires where it did.
pub fn disk_with_plan(seed: u64, faults: FaultPlan) -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed: disk_seed_for(seed), faults, ..SimDiskOptions::default() })
}

/// Everything a soak needs.
#[derive(Clone)]
pub struct SoakConfig {
    /// The families to run, each seed on each.
    pub families: Vec<Arc<dyn Family>>,
    /// The dual-write pairs to run, `(primary, mirror)`, each seed on each (after the
    /// families).
    pub pairs: Vec<(Arc<dyn Family>, Arc<dyn Family>)>,
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
    /// Shrink failing histories.
    pub shrink: bool,
    /// Run each seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// At most this many failures are shrunk and reported in full.
    pub failures_max: usize,
    /// The fault plans seeds run under.
    pub faults: FaultMode,
    /// Where shrunk failures are saved as regression histories (never for planted bugs).
    pub regressions_dir: Option<PathBuf>,
}

impl SoakConfig {
    /// What the soak runs, planted bugs applied: every family, then every pair.
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
        subjects
    }

    /// A config over `families` (and no pairs) with defaults for everything else.
    pub fn new(families: Vec<Arc<dyn Family>>, seeds: SeedPlan) -> Self {
        SoakConfig {
            families,
            pairs: Vec::new(),
            seeds,
            shard: None,
            generator: GeneratorConfig::default(),
            run: RunOptions::default(),
            planted: None,
            planted_dual: None,
            shrink: true,
            check_determinism: false,
            failures_max: 5,
            faults: FaultMode::Honest,
            regressions_dir: None,
        }
    }

    /// The one-line command that replays `seed` on `family` with this config.
    pub fn replay_command(&self, family: &str, seed: u64) -> String {
        let mut cmd =
            format!("cargo run --release --bin qk -- soak --family {family} --seed {seed}");
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
        if self.faults != FaultMode::Honest {
            let mode = match self.faults {
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
        if let Some(bug) = self.planted {
            cmd.push_str(&format!(" --planted {}", bug.name()));
        }
        if let Some(bug) = self.planted_dual {
            cmd.push_str(&format!(" --planted-dual {}", bug.name()));
        }
        if let Some(bug) = self.run.bad_images.planted_reader {
            cmd.push_str(&format!(" --planted-reader {}", bug.name()));
        }
        cmd
    }
}

/// Per-family totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilySummary {
    /// The family's scheme.
    pub family: String,
    /// Histories run.
    pub histories: u64,
    /// Ops applied.
    pub steps: u64,
    /// Ops that changed durable state.
    pub mutations: u64,
    /// Clean reopens.
    pub reopens: u64,
    /// Power losses recovered from.
    pub crashes: u64,
    /// Faults the simulated disks injected.
    pub faults: u64,
    /// Mutations that failed because of a fault or a crash point.
    pub failed_mutations: u64,
    /// Histories that ended with the instance failing closed under a dishonest disk.
    pub refusals: u64,
    /// Crash states checked in exhaustive mode.
    pub crash_states: u64,
    /// Dual-write pairs whose mirror recovery repaired or bootstrapped again.
    #[serde(default)]
    pub pair_repairs: u64,
    /// Images exported from pinned cuts and checked.
    pub exports: u64,
    /// Imports made by the image checks.
    pub imports: u64,
    /// Failed histories.
    pub failures: u64,
    /// Failed histories per check name.
    pub failures_by_check: BTreeMap<String, u64>,
}

/// One failed history, shrunk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakFailure {
    /// The seed.
    pub seed: u64,
    /// The family.
    pub family: String,
    /// The failure on the original history.
    pub failure: CheckFailure,
    /// The fault plan the seed ran under.
    pub fault_plan: FaultPlan,
    /// The shrunk fault plan the shrunk history still fails under (the original when
    /// shrinking is off): `fault_plan` with `faults_removed` switched off.
    #[serde(default)]
    pub shrunk_fault_plan: FaultPlan,
    /// The fault kinds shrinking switched off.
    #[serde(default)]
    pub faults_removed: Vec<FaultKind>,
    /// Length of the original history.
    pub original_len: usize,
    /// The shrunk history (the original when shrinking is off).
    pub shrunk: Vec<Op>,
    /// The failure on the shrunk history.
    pub shrunk_failure: Option<CheckFailure>,
    /// Candidate runs spent shrinking.
    pub shrink_runs: usize,
    /// The one-line replay command.
    pub replay: String,
    /// Where the shrunk history was saved, or why it was not.
    pub regression_file: Option<String>,
}

/// What a soak found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SoakReport {
    /// Seeds run (each on every family).
    pub seeds_run: u64,
    /// Per-family totals, in the config's family order.
    pub families: Vec<FamilySummary>,
    /// Failures shrunk and reported in full (at most `failures_max`).
    pub failures: Vec<SoakFailure>,
    /// Failed histories in all.
    pub failures_total: u64,
}

impl SoakReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.failures_total == 0
    }
}

/// Runs the soak. `keep_going` is asked before every seed; `on_seed` hears after each.
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
        let ops = generate(seed, &config.generator);
        for (family, summary) in families.iter().zip(report.families.iter_mut()) {
            let outcome = run_one(config, family, seed, &ops);
            summary.histories += 1;
            summary.steps += outcome.stats.steps;
            summary.mutations += outcome.stats.mutations;
            summary.reopens += outcome.stats.reopens;
            summary.crashes += outcome.stats.crashes;
            summary.faults += outcome.stats.faults;
            summary.failed_mutations += outcome.stats.failed_mutations;
            summary.refusals += outcome.stats.refusals;
            summary.crash_states += outcome.stats.crash_states;
            summary.pair_repairs += outcome.stats.pair_repairs;
            summary.exports += outcome.stats.exports;
            summary.imports += outcome.stats.imports;
            let mut failure = outcome.failure.clone();
            if failure.is_none() && config.check_determinism {
                let again = run_one(config, family, seed, &ops);
                if again.trace_hash != outcome.trace_hash {
                    let (a, b) = (&outcome.trace_hash, &again.trace_hash);
                    failure =
                        Some(CheckFailure::nondeterministic(family.name(), seed, ops.len(), a, b));
                }
            }
            if let Some(failure) = failure {
                summary.failures += 1;
                *summary.failures_by_check.entry(failure.check.to_string()).or_default() += 1;
                report.failures_total += 1;
                if report.failures.len() < config.failures_max {
                    let mut found = shrink_failure(config, family, seed, &ops, failure);
                    found.regression_file = save_regression(config, &found);
                    report.failures.push(found);
                }
            }
        }
        report.seeds_run += 1;
        on_seed(seed, &report);
        seed = match seed.checked_add(1) {
            Some(s) => s,
            None => break,
        };
    }
    report
}

fn run_one(config: &SoakConfig, family: &Subject, seed: u64, ops: &[Op]) -> RunOutcome {
    run_under(config, family, seed, ops, fault_plan_for(seed, config.faults))
}

/// Runs `ops` as seed `seed` runs, but under the fault plan `faults`.
fn run_under(
    config: &SoakConfig,
    family: &Subject,
    seed: u64,
    ops: &[Op],
    faults: FaultPlan,
) -> RunOutcome {
    let disk = disk_with_plan(seed, faults);
    let location = format!("soak/{}-{seed}", family.name());
    run_subject_on_disk(family.clone(), &location, disk, ops, config.run.clone())
}

fn shrink_failure(
    config: &SoakConfig,
    family: &Subject,
    seed: u64,
    ops: &[Op],
    failure: CheckFailure,
) -> SoakFailure {
    let replay = config.replay_command(&family.name(), seed);
    let fault_plan = fault_plan_for(seed, config.faults);
    if !config.shrink || failure.check == CheckName::Determinism {
        return SoakFailure {
            seed,
            shrunk_fault_plan: fault_plan.clone(),
            faults_removed: Vec::new(),
            fault_plan,
            family: family.name(),
            original_len: ops.len(),
            shrunk: ops.to_vec(),
            shrunk_failure: Some(failure.clone()),
            failure,
            shrink_runs: 0,
            replay,
            regression_file: None,
        };
    }
    let shrunk = shrink_with_faults(ops, &fault_plan, failure.check, |candidate, plan| {
        run_under(config, family, seed, candidate, plan.clone()).failure.map(|f| f.check)
    });
    let shrunk_failure =
        run_under(config, family, seed, &shrunk.ops, shrunk.faults.clone()).failure;
    SoakFailure {
        seed,
        fault_plan,
        shrunk_fault_plan: shrunk.faults,
        faults_removed: shrunk.removed,
        family: family.name(),
        original_len: ops.len(),
        shrunk: shrunk.ops,
        shrunk_failure,
        failure,
        shrink_runs: shrunk.runs,
        replay,
        regression_file: None,
    }
}

fn save_regression(config: &SoakConfig, found: &SoakFailure) -> Option<String> {
    let dir = config.regressions_dir.as_ref()?;
    if config.planted.is_some() || config.planted_dual.is_some() {
        return None;
    }
    let regression = found.regression(config.run.exhaustive.clone());
    Some(match regression.save(dir) {
        Ok(path) => path.display().to_string(),
        Err(e) => format!("not saved: {e}"),
    })
}

impl SoakFailure {
    /// The regression file this failure is saved as: the shrunk history under the shrunk
    /// fault plan (the original plan kept beside it when shrinking removed faults), on the
    /// seed's disk, enumerated as `exhaustive` says (the soak's exhaustive options).
    pub fn regression(&self, exhaustive: Option<EnumerateOptions>) -> Regression {
        let mut story = format!(
            "Found by `{}`: check {} failed at step {}: {}",
            self.replay, self.failure.check, self.failure.step, self.failure.difference
        );
        if !self.faults_removed.is_empty() {
            let removed: Vec<&str> = self.faults_removed.iter().map(|k| k.name()).collect();
            story.push_str(&format!(
                " (shrunk to fault plan: {}; removed {})",
                self.shrunk_fault_plan,
                removed.join(", ")
            ));
        }
        Regression {
            story,
            family: self.family.clone(),
            seed: Some(self.seed),
            check: Some(self.failure.check),
            ops: self.shrunk.clone(),
            disk_seed: disk_seed_for(self.seed),
            faults: self.shrunk_fault_plan.clone(),
            original_faults: (self.shrunk_fault_plan != self.fault_plan)
                .then(|| self.fault_plan.clone()),
            exhaustive,
        }
    }
}
