//! What a soak reports: per-family totals, each failure with its shrunk history and plan,
//! and the regression file a failure is saved as.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::{disk_seed_for, sector_size_for, SOAK_FAULT_STREAMS};
use crate::coverage::{Counts, Point};
use crate::sim::checks::CheckFailure;
use crate::sim::engine::ops::Op;
use crate::sim::engine::runner::RunStats;
use crate::sim::engine::tunables::SubjectTunables;
use crate::sim::soak::regression::Regression;
use crate::vfs::{EnumerateOptions, FaultKind, FaultPlan};

/// Per-family totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilySummary {
    /// The family's scheme.
    pub family: String,
    /// Histories run.
    pub histories: u64,
    /// Every counter of its runs, summed (flattened into the JSON object).
    #[serde(flatten)]
    pub stats: RunStats,
    /// Failed histories.
    pub failures: u64,
    /// Failed histories per check name.
    pub failures_by_check: BTreeMap<String, u64>,
    /// Per coverage point of this subject's families (and of the history shapes): how many
    /// seeds reached it and how often in all ([`crate::coverage`]). Zero rows included.
    #[serde(default)]
    pub coverage: BTreeMap<String, Reach>,
    /// The coverage points no seed reached, in report order.
    #[serde(default)]
    pub unreached: Vec<String>,
}

/// How far a soak reached one coverage point on one subject.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    /// Seeds whose run hit it at least once.
    pub seeds: u64,
    /// Hits over all seeds.
    pub hits: u64,
}

/// The coverage points that apply to the subject called `subject` (`scheme` or
/// `primary+mirror`): its families' points and the history shapes, in report order.
pub fn points_for(subject: &str) -> Vec<Point> {
    let families: Vec<&str> = subject.split('+').collect();
    Point::ALL
        .iter()
        .copied()
        .filter(|p| p.family() == "raft" || families.contains(&p.family()))
        .collect()
}

impl FamilySummary {
    /// Adds one seed's coverage counts (of the first run of the seed only).
    pub fn add_coverage(&mut self, counts: &Counts) {
        if self.coverage.is_empty() {
            for point in points_for(&self.family) {
                self.coverage.insert(point.name().to_string(), Reach::default());
            }
        }
        for (point, hits) in counts.iter() {
            let reach = self.coverage.entry(point.name().to_string()).or_default();
            reach.seeds += 1;
            reach.hits += hits;
        }
        self.unreached = points_for(&self.family)
            .into_iter()
            .filter(|p| self.coverage.get(p.name()).is_none_or(|r| r.hits == 0))
            .map(|p| p.name().to_string())
            .collect();
    }

    /// How far the soak reached `point` on this subject.
    pub fn reach(&self, point: Point) -> Reach {
        self.coverage.get(point.name()).copied().unwrap_or_default()
    }
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
    /// The family tunables the seed ran with.
    #[serde(default)]
    pub tunables: SubjectTunables,
    /// The tunables the shrunk history still fails with: `tunables` with every knob the
    /// failure does not need back at its default.
    #[serde(default)]
    pub shrunk_tunables: SubjectTunables,
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
    /// Each shrunk op's key, its position in the original history, under which its faults
    /// are drawn (empty: positions `0..`, the history unshrunk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shrunk_keys: Vec<u64>,
    /// The failure on the shrunk history.
    pub shrunk_failure: Option<CheckFailure>,
    /// Candidate runs spent shrinking.
    pub shrink_runs: usize,
    /// The run's budget (`qk soak --seconds`) ran out before shrinking was done (or before
    /// it began): `shrunk` still fails, but is not as small as shrinking would make it.
    #[serde(default)]
    pub shrink_cut_short: bool,
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

    /// Histories that did no work, over every family.
    pub fn idle_total(&self) -> u64 {
        self.families.iter().map(|f| f.stats.idle).sum()
    }
}

impl SoakFailure {
    /// The shrunk ops' keys when they are not simply their positions.
    fn moved_keys(&self) -> Option<Vec<u64>> {
        let keys = &self.shrunk_keys;
        (!keys.iter().copied().eq(0..keys.len() as u64)).then(|| keys.clone())
    }

    /// The regression file this failure is saved as: the shrunk history under the shrunk
    /// fault plan (the original plan kept beside it when shrinking removed faults), on the
    /// seed's disk, enumerated as `exhaustive` says (the soak's exhaustive options).
    pub fn regression(&self, exhaustive: Option<EnumerateOptions>) -> Regression {
        let mut story = format!(
            "Found by `{}`: check {} failed at step {}: {}",
            self.replay, self.failure.check, self.failure.step, self.failure.difference
        );
        if self.shrunk_tunables != self.tunables {
            story.push_str(&format!(
                " (tunables {} shrunk to {})",
                self.tunables, self.shrunk_tunables
            ));
        }
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
            sector_size: Some(sector_size_for(self.seed)),
            faults: self.shrunk_fault_plan.clone(),
            original_faults: (self.shrunk_fault_plan != self.fault_plan)
                .then(|| self.fault_plan.clone()),
            exhaustive,
            fault_streams: SOAK_FAULT_STREAMS,
            op_keys: self.moved_keys(),
            tunables: self.shrunk_tunables,
            original_tunables: (self.shrunk_tunables != self.tunables).then_some(self.tunables),
        }
    }
}
