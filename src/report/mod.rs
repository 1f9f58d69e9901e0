//! Soak reports as data: [`SoakJson`], the typed report `qk soak --json` writes, which is
//! also what `qk soak --html` renders ([`html`]) and what `qk report merge` reads back from
//! saved files and merges ([`merge()`]).
//!
//! Nothing here touches a file or a clock: the command line reads and writes the bytes
//! (`cli::report`), so the same report value always gives the same JSON and the same HTML.
//!
//! Schema: every report carries `schema_version` ([`SCHEMA_VERSION`]); a reader refuses a
//! report without one or with another ([`parse`]). Version 1 is the soak report as it was
//! before the field existed, plus `schema_version`, `config.tunables`,
//! `rates[].histories_per_second` and, in a merged report only, `merged_from`.
//!
//! Merging refuses reports whose configurations differ in anything but their seeds and
//! shard (subjects, generator, fault mode, tunables, planted bugs, ablation, checking mode):
//! summing histories run under different ops or modes would describe no run. It also refuses
//! the same source (same seeds and shard) twice. Other overlaps of seed sets are not detected.
//!
//! [`timeline`] draws one replayed history's crash timeline (`qk replay --html`, and beside
//! every saved regression), from what the run recorded ([`crate::sim::engine::trace::RunTimeline`]).

pub mod html;
pub mod timeline;

use serde::{Deserialize, Serialize};

use crate::image::PlantedReaderBug;
use crate::sim::engine::generator::GeneratorConfig;
use crate::sim::engine::tunables::SubjectTunables;
use crate::sim::planted::{PlantedBug, PlantedDualBug, PlantedMigrationBug, PlantedValidatorBug};
use crate::sim::soak::{
    points_for, FamilySummary, FaultMode, Reach, SeedPlan, Shard, SoakFailure, SoakReport,
};

/// The schema version this build writes and the only one it reads.
pub const SCHEMA_VERSION: u64 = 1;

/// A soak report: what `qk soak --json` writes, field for field.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakJson {
    /// Always [`SCHEMA_VERSION`] in a report this build wrote.
    pub schema_version: u64,
    /// Whether every check held (`failures_total == 0`).
    pub passed: bool,
    /// Seeds run (each on every subject).
    pub seeds_run: u64,
    /// The run's wall time in seconds; in a merged report, the sum of its sources' (the
    /// machine time spent, so that rates stay per machine).
    pub elapsed_seconds: f64,
    /// How the run was configured.
    pub config: ReportConfig,
    /// Per-subject totals, in the configuration's subject order.
    pub families: Vec<FamilySummary>,
    /// Per-subject counters divided by `elapsed_seconds`, in the same order.
    pub rates: Vec<Rates>,
    /// Failed histories in all.
    pub failures_total: u64,
    /// Histories that did no work, over every subject.
    pub histories_idle: u64,
    /// Failures whose shrinking the time budget cut short.
    pub shrinks_cut_short: u64,
    /// Failures reported in full, in the order [`merge()`] or the soak gave them.
    pub failures: Vec<SoakFailure>,
    /// In a merged report, every source merged, in argument order (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<Source>,
}

/// The configuration part of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    /// The subjects, by name (`scheme`, `primary+mirror`, `source>destination`).
    pub families: Vec<String>,
    /// The seeds asked for (in a merged report, the first source's: see `merged_from`).
    pub seeds: SeedPlan,
    /// The shard run (none in a merged report).
    pub shard: Option<Shard>,
    /// The history generator's knobs.
    pub generator: GeneratorConfig,
    /// A planted family bug (self-test).
    pub planted: Option<PlantedBug>,
    /// A planted dual-write bug (self-test).
    pub planted_dual: Option<PlantedDualBug>,
    /// A planted validator blind spot (self-test).
    pub planted_validator: Option<PlantedValidatorBug>,
    /// A planted migration bug (self-test).
    pub planted_migration: Option<PlantedMigrationBug>,
    /// A planted image-reader bug (self-test).
    pub planted_reader: Option<PlantedReaderBug>,
    /// The fault mode.
    pub faults: FaultMode,
    /// The tunables fixed for every seed; none when drawn per seed.
    #[serde(default)]
    pub tunables: Option<SubjectTunables>,
    /// The ablated parts, comma-separated (empty: none).
    pub ablated: String,
    /// Whether the per-step comparisons were skipped.
    pub unchecked: bool,
    /// Whether the run was exhaustive.
    pub exhaustive: bool,
}

/// One subject's throughput: its counters over the report's elapsed seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// The subject.
    pub family: String,
    /// Histories per second.
    #[serde(default)]
    pub histories_per_second: f64,
    /// Ops applied per second.
    pub steps_per_second: f64,
    /// Checked mutations per second.
    pub mutations_per_second: f64,
    /// Power losses recovered from per second.
    pub crash_cycles_per_second: f64,
    /// Exported images per second.
    pub exports_per_second: f64,
}

/// One report that went into a merged report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The file it was read from, as given.
    pub file: String,
    /// Its seeds.
    pub seeds: SeedPlan,
    /// Its shard.
    pub shard: Option<Shard>,
    /// Seeds it ran.
    pub seeds_run: u64,
    /// Its wall time in seconds.
    pub elapsed_seconds: f64,
    /// Its failed histories.
    pub failures_total: u64,
}

impl SoakJson {
    /// The report of one soak run: `report`'s totals under `config`, with rates over
    /// `elapsed` seconds (all zero when `elapsed` is not positive).
    pub fn new(config: ReportConfig, report: &SoakReport, elapsed: f64) -> SoakJson {
        let mut json = SoakJson {
            schema_version: SCHEMA_VERSION,
            passed: report.passed(),
            seeds_run: report.seeds_run,
            elapsed_seconds: elapsed,
            config,
            families: report.families.clone(),
            rates: Vec::new(),
            failures_total: report.failures_total,
            histories_idle: report.idle_total(),
            shrinks_cut_short: report.failures.iter().filter(|f| f.shrink_cut_short).count() as u64,
            failures: report.failures.clone(),
            merged_from: Vec::new(),
        };
        json.rates = rates(&json.families, elapsed);
        json
    }
}

/// Each subject's counters divided by `elapsed` (zero when `elapsed` is not positive).
fn rates(families: &[FamilySummary], elapsed: f64) -> Vec<Rates> {
    let per_second = |n: u64| if elapsed > 0.0 { n as f64 / elapsed } else { 0.0 };
    families
        .iter()
        .map(|f| Rates {
            family: f.family.clone(),
            histories_per_second: per_second(f.histories),
            steps_per_second: per_second(f.stats.steps),
            mutations_per_second: per_second(f.stats.mutations),
            crash_cycles_per_second: per_second(f.stats.crashes),
            exports_per_second: per_second(f.stats.exports),
        })
        .collect()
}

/// Reads a report from `text`; the error says what is wrong (not where: the caller names
/// the file). Refuses text that is not JSON, a report without `schema_version` or with a
/// version other than [`SCHEMA_VERSION`], and JSON that is not a soak report.
pub fn parse(text: &str) -> Result<SoakJson, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("schema_version") {
        None => return Err("no schema_version (not a soak report of schema 1 or later)".into()),
        Some(v) if v.as_u64() == Some(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "unknown schema_version {v} (this qk reads version {SCHEMA_VERSION})"
            ))
        }
    }
    serde_json::from_value(value).map_err(|e| format!("not a soak report: {e}"))
}

/// Merges reports, each named by the file it came from: counters, failures per check and
/// coverage summed per subject, failures concatenated in a fixed order (subject in the
/// configuration's order, then seed, check, step and replay line), seeds and elapsed time
/// summed, the sources listed. The result does not depend on the order of `reports` apart
/// from `merged_from` and which source's `config.seeds` is kept (the first). Refuses an
/// empty list, reports whose configurations differ other than in seeds and shard (naming
/// the file and the field), and one source given twice.
pub fn merge(reports: &[(String, SoakJson)]) -> Result<SoakJson, String> {
    let Some((_, first)) = reports.first() else {
        return Err("nothing to merge".into());
    };
    let mut config = first.config.clone();
    config.shard = None;
    let mut merged = SoakJson {
        schema_version: SCHEMA_VERSION,
        passed: true,
        seeds_run: 0,
        elapsed_seconds: 0.0,
        config,
        families: Vec::new(),
        rates: Vec::new(),
        failures_total: 0,
        histories_idle: 0,
        shrinks_cut_short: 0,
        failures: Vec::new(),
        merged_from: Vec::new(),
    };
    for (file, report) in reports {
        if let Some(field) = config_difference(&first.config, &report.config) {
            return Err(format!(
                "{file}: its configuration differs from {}'s in {field}; only reports of the \
                 same configuration (apart from seeds and shard) merge",
                reports[0].0
            ));
        }
        let sources = if report.merged_from.is_empty() {
            vec![Source {
                file: file.clone(),
                seeds: report.config.seeds.clone(),
                shard: report.config.shard,
                seeds_run: report.seeds_run,
                elapsed_seconds: report.elapsed_seconds,
                failures_total: report.failures_total,
            }]
        } else {
            report.merged_from.clone()
        };
        for source in sources {
            let twice = merged
                .merged_from
                .iter()
                .find(|s| s.seeds == source.seeds && s.shard == source.shard);
            if let Some(earlier) = twice {
                return Err(format!(
                    "{file}: it repeats the seeds and shard of {} (merging a source twice \
                     would count its histories twice)",
                    earlier.file
                ));
            }
            merged.merged_from.push(source);
        }
        merged.seeds_run += report.seeds_run;
        merged.elapsed_seconds += report.elapsed_seconds;
        merged.failures_total += report.failures_total;
        merged.histories_idle += report.histories_idle;
        merged.shrinks_cut_short += report.shrinks_cut_short;
        for summary in &report.families {
            match merged.families.iter_mut().find(|f| f.family == summary.family) {
                Some(into) => add_summary(into, summary),
                None => merged.families.push(summary.clone()),
            }
        }
        merged.failures.extend(report.failures.iter().cloned());
    }
    for summary in &mut merged.families {
        summary.unreached = unreached(summary);
    }
    let order = |name: &str| merged.config.families.iter().position(|f| f == name);
    merged.failures.sort_by(|a, b| {
        (order(&a.family), &a.family, a.seed, a.failure.check, a.failure.step, &a.replay).cmp(&(
            order(&b.family),
            &b.family,
            b.seed,
            b.failure.check,
            b.failure.step,
            &b.replay,
        ))
    });
    merged.passed = merged.failures_total == 0;
    merged.rates = rates(&merged.families, merged.elapsed_seconds);
    Ok(merged)
}

/// The first field (by its JSON name) in which two configurations differ, seeds and shard
/// aside.
fn config_difference(a: &ReportConfig, b: &ReportConfig) -> Option<&'static str> {
    let differs = [
        ("config.families", a.families != b.families),
        ("config.generator", a.generator != b.generator),
        ("config.planted", a.planted != b.planted),
        ("config.planted_dual", a.planted_dual != b.planted_dual),
        ("config.planted_validator", a.planted_validator != b.planted_validator),
        ("config.planted_migration", a.planted_migration != b.planted_migration),
        ("config.planted_reader", a.planted_reader != b.planted_reader),
        ("config.faults", a.faults != b.faults),
        ("config.tunables", a.tunables != b.tunables),
        ("config.ablated", a.ablated != b.ablated),
        ("config.unchecked", a.unchecked != b.unchecked),
        ("config.exhaustive", a.exhaustive != b.exhaustive),
    ];
    differs.into_iter().find(|(_, d)| *d).map(|(name, _)| name)
}

/// Adds `other`'s totals for the same subject to `into` (its `unreached` is recomputed by
/// the caller once every source is in).
fn add_summary(into: &mut FamilySummary, other: &FamilySummary) {
    into.histories += other.histories;
    into.stats.add(&other.stats);
    into.failures += other.failures;
    for (check, n) in &other.failures_by_check {
        *into.failures_by_check.entry(check.clone()).or_default() += n;
    }
    for (point, reach) in &other.coverage {
        let sum: &mut Reach = into.coverage.entry(point.clone()).or_default();
        sum.seeds += reach.seeds;
        sum.hits += reach.hits;
    }
}

/// The subject's coverage points no seed reached, in report order, as the soak computes
/// them (none when no coverage was recorded at all).
fn unreached(summary: &FamilySummary) -> Vec<String> {
    if summary.coverage.is_empty() {
        return Vec::new();
    }
    points_for(&summary.family)
        .into_iter()
        .filter(|p| summary.coverage.get(p.name()).is_none_or(|r| r.hits == 0))
        .map(|p| p.name().to_string())
        .collect()
}

#[cfg(test)]
mod tests;
