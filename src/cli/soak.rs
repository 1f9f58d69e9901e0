//! `qk soak`: generated histories against families, with a progress bar, a summary table, a
//! JSON report and a replay line for every failure.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{args, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::contract::Family;
use crate::families::Registry;
use crate::image::PlantedReaderBug;
use crate::report::{ReportConfig, SoakJson};
use crate::sim::engine::generator::Mode;
use crate::sim::engine::runner::RECOVERY_CRASH_DEPTH;
use crate::sim::engine::tunables::SubjectTunables;
use crate::sim::planted::{PlantedBug, PlantedDualBug, PlantedMigrationBug, PlantedValidatorBug};
use crate::sim::soak::{
    run_soak, Ablation, FamilySummary, FaultMode, SeedPlan, Shard, SoakConfig, SoakReport,
};

/// Arguments of `qk soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Families to run (repeatable): a scheme, a dual-write pair `PRIMARY+MIRROR`, or a
    /// migration `SOURCE>DESTINATION`; default: every registered family, then every ordered
    /// pair of them as a dual-write pair and as a migration.
    #[arg(long = "family", value_name = "SCHEME|PRIMARY+MIRROR|SOURCE>DESTINATION")]
    pub families: Vec<String>,
    /// Leave the dual-write pairs and the migrations out of the default.
    #[arg(long)]
    pub no_pairs: bool,
    /// Run for this many seconds (wall time decides only how many seeds run): more than 0
    /// and at most 2592000 (30 days).
    #[arg(long, value_parser = args::seconds, conflicts_with_all = ["seeds", "seed"])]
    pub seconds: Option<f64>,
    /// Run seeds A..B (B exclusive; 0 <= A < B <= 18446744073709551615).
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range, conflicts_with = "seed")]
    pub seeds: Option<(u64, u64)>,
    /// Run one seed: any u64, 0 to 18446744073709551615.
    #[arg(long)]
    pub seed: Option<u64>,
    /// First seed of a --seconds run: any u64 (the run stops after seed 18446744073709551615).
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Run only seeds with seed % N == I (0 <= I < N).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// History generator mode.
    #[arg(long, value_enum, default_value_t = Mode::Raft)]
    pub mode: Mode,
    /// Ops per history: 1 to 100000.
    #[arg(long = "ops", default_value_t = 200, value_parser = args::ops)]
    pub ops_len: usize,
    /// Fault plans per seed: default (honest for five seeds in six, media faults -- bit rot,
    /// latent sector errors, misdirected writes, lying fsyncs -- for one seed in every block
    /// of six, each combination of them in turn), none (power
    /// losses only),
    /// honest (plus EIO and ENOSPC, nothing acknowledged may be lost), swarm (every fault
    /// incl. lying fsync and media faults), or mixed (half honest-none, half swarm).
    #[arg(long, value_enum, default_value_t = FaultMode::Default)]
    pub faults: FaultMode,
    /// Family tunables for every seed, in their text form (`default`, or `key=value,...` as a
    /// failure's replay line prints them; keys `local.segment_size_max`, `local.checksum`,
    /// `redb.cache_size`, `redb.two_phase_commit`, and `mirror.`-prefixed ones for a pair's
    /// mirror). Default: drawn per seed.
    #[arg(long, value_name = "TEXT")]
    pub tunables: Option<SubjectTunables>,
    /// Switch parts of the fault model or harness off, to measure what each is worth:
    /// a comma-separated list of torn-writes, subset-persistence (a crash keeps a prefix
    /// of the pending operations instead of any subset), lost-set-len (a crash keeps every
    /// pending set_len), media-faults, exports, recovery-crashes (no power loss while a
    /// subject opens). An ablated soak saves no regressions.
    #[arg(long, value_name = "PARTS", value_parser = Ablation::parse)]
    pub ablate: Option<Ablation>,
    /// Exhaustive mode: around every mutation, every crash point and every subset of pending
    /// disk operations (up to --subset-max units, sampled beyond). Use with short histories.
    #[arg(long)]
    pub exhaustive: bool,
    /// Ops per history in exhaustive mode (overrides --ops): 1 to 1000.
    #[arg(long, default_value_t = 12, value_parser = args::exhaustive_ops)]
    pub max_ops: usize,
    /// Pending units enumerated as every subset in exhaustive mode: 0 to 12 (at most 4096
    /// subsets per crash point).
    #[arg(long, default_value_t = 6, value_parser = args::subset_units)]
    pub subset_max: usize,
    /// In exhaustive mode, how many power losses deep to nest inside reopens: every crash
    /// point of each crash state's reopen is enumerated too, and of that reopen's reopen, and
    /// so on (0 to 3; 0 reopens each crash state once).
    #[arg(long, default_value_t = crate::sim::engine::runner::EXHAUSTIVE_RECOVERY_DEPTH,
          value_parser = clap::value_parser!(u32).range(0..=3))]
    pub recovery_depth: u32,
    /// Run each seed twice and compare trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
    /// Do not shrink failures.
    #[arg(long)]
    pub no_shrink: bool,
    /// Stop at the first failure: no further subject or seed runs (for scripts that only
    /// ask whether the soak finds anything, such as scripts/mutants.sh).
    #[arg(long)]
    pub fail_fast: bool,
    /// Skip the per-step comparisons (to measure their cost).
    #[arg(long, hide = true)]
    pub unchecked: bool,
    /// Write a machine-readable report here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page here (created before the run starts:
    /// a path that cannot be written is refused with exit 2).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Save shrunk failures as regression histories in this directory.
    #[arg(long, value_name = "DIR", default_value = "corpus/regressions")]
    pub regressions: PathBuf,
    /// Do not save regression histories.
    #[arg(long)]
    pub no_regressions: bool,
    /// Wrap every family with a planted bug (self-test of the harness).
    #[arg(long, value_enum, hide = true)]
    pub planted: Option<PlantedBug>,
    /// Give every dual-write pair a planted bug (self-test of the harness).
    #[arg(long, value_enum, hide = true)]
    pub planted_dual: Option<PlantedDualBug>,
    /// Give the validator that `validator_agreement` judges a planted blind spot (self-test
    /// of the harness).
    #[arg(long, value_enum, hide = true)]
    pub planted_validator: Option<PlantedValidatorBug>,
    /// Give every migration a planted migration bug (self-test of the harness).
    #[arg(long, value_enum, hide = true)]
    pub planted_migration: Option<PlantedMigrationBug>,
    /// Plant a bug in the reader the `bad_images` check imports through (self-test of the
    /// harness: only the structure-aware hostile images can catch it).
    #[arg(long, value_enum, hide = true)]
    pub planted_reader: Option<PlantedReaderBug>,
    /// The global `--quiet` (set by [`super::run`]): no progress bar, no option header.
    #[arg(skip)]
    pub quiet: bool,
}

fn parse_seed_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text.split_once("..").ok_or("expected A..B")?;
    let a: u64 = a.trim().parse().map_err(|e| format!("bad start {a:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("bad end {b:?}: {e}"))?;
    if b <= a {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok((a, b))
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let (i, n) = text.split_once('/').ok_or("expected I/N")?;
    let index: u64 = i.trim().parse().map_err(|e| format!("bad shard index {i:?}: {e}"))?;
    let count: u64 = n.trim().parse().map_err(|e| format!("bad shard count {n:?}: {e}"))?;
    if count == 0 || index >= count {
        return Err(format!("shard {index}/{count}: need 0 <= I < N"));
    }
    Ok(Shard { index, count })
}

/// Runs `qk soak`.
pub fn run(args: SoakArgs) -> u8 {
    let registry = Registry::builtin();
    let (families, pairs, migrations) = match choose(&registry, &args.families, args.no_pairs) {
        Ok(chosen) => chosen,
        Err(name) => {
            let known: Vec<&str> = registry.families().iter().map(|f| f.scheme()).collect();
            eprintln!(
                "qk soak: unknown family {name:?}; known: {} (or pairs PRIMARY+MIRROR and \
                 migrations SOURCE>DESTINATION of them)",
                known.join(", ")
            );
            return EXIT_USAGE;
        }
    };
    let (seeds, deadline) = match (args.seed, args.seeds, args.seconds) {
        // The last seed has no exclusive end: an open plan from it stops after it, as the
        // seed space ends there.
        (Some(u64::MAX), _, _) => (SeedPlan::Open { start: u64::MAX }, None),
        (Some(s), _, _) => (SeedPlan::Range { start: s, end: s + 1 }, None),
        (None, Some((a, b)), _) => (SeedPlan::Range { start: a, end: b }, None),
        // `args::seconds` holds the budget to (0, 30 days].
        (None, None, Some(secs)) => {
            (SeedPlan::Open { start: args.first_seed }, Some(Duration::from_secs_f64(secs)))
        }
        (None, None, None) => {
            (SeedPlan::Open { start: args.first_seed }, Some(Duration::from_secs(10)))
        }
    };
    let mut config = SoakConfig::new(families, seeds.clone());
    config.pairs = pairs;
    config.migrations = migrations;
    config.planted_migration = args.planted_migration;
    config.planted_dual = args.planted_dual;
    config.shard = args.shard;
    config.generator.mode = args.mode;
    config.generator.ops_len = args.ops_len;
    config.check_determinism = args.check_determinism;
    config.faults = args.faults;
    config.tunables = args.tunables;
    config.ablation = args.ablate.unwrap_or_default();
    if config.ablation.exports {
        config.generator.export_per_mille = 0;
    }
    config.run.recovery_crashes = !config.ablation.recovery_crashes;
    config.run.exhaustive_recovery_depth = args.recovery_depth;
    if args.exhaustive {
        config.generator.ops_len = args.max_ops;
        config.run.exhaustive = Some(crate::vfs::EnumerateOptions {
            subset_units_max: args.subset_max,
            sample_count: 16,
            tear_writes: true,
            seed: 0,
        });
    }
    config.shrink = !args.no_shrink;
    config.fail_fast = args.fail_fast;
    config.run.unchecked = args.unchecked;
    config.planted = args.planted;
    config.run.planted_validator = args.planted_validator;
    config.run.bad_images.planted_reader = args.planted_reader;
    config.regressions_dir = (!args.no_regressions).then(|| args.regressions.clone());

    let html = match args.html.as_deref().map(super::report::create_output).transpose() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("qk soak: {e}");
            return EXIT_USAGE;
        }
    };
    if !args.quiet {
        print_options(&config, deadline);
    }
    let started = Instant::now();
    let bar = if args.quiet { ProgressBar::hidden() } else { progress_bar(&seeds, deadline) };
    let mut keep_going = || deadline.is_none_or(|d| started.elapsed() < d);
    let mut on_seed = |_seed: u64, report: &SoakReport| {
        let steps: u64 = report.families.iter().map(|f| f.stats.steps).sum();
        match deadline {
            Some(d) => bar.set_position(started.elapsed().as_millis().min(d.as_millis()) as u64),
            None => bar.inc(1),
        }
        bar.set_message(format!(
            "seeds {}  steps {steps}  failures {}",
            report.seeds_run, report.failures_total
        ));
    };
    let report = run_soak(&config, &mut keep_going, &mut on_seed);
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    print_summary(&report, elapsed);
    print_failures(&report);
    let data = report_data(&config, &report, elapsed);
    if let Some(path) = &args.json {
        let written = super::report::create_output(path)
            .and_then(|file| super::report::write_json(file, &data).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("qk soak: writing {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    if let (Some(path), Some(file)) = (&args.html, html) {
        if let Err(e) = super::report::write_html(file, &data) {
            eprintln!("qk soak: writing {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    if !report.passed() {
        return EXIT_FAILED;
    }
    match nothing_checked(&report) {
        Some(why) => {
            eprintln!("qk soak: nothing was checked: {why}");
            EXIT_USAGE
        }
        None => EXIT_OK,
    }
}

/// Why a soak that found nothing also checked nothing (no seed ran, or no history ran a
/// step), if it did not: such a run must not pass for one where every check held.
fn nothing_checked(report: &SoakReport) -> Option<String> {
    let steps: u64 = report.families.iter().map(|f| f.stats.steps).sum();
    if report.seeds_run == 0 {
        Some("no seed ran (a --shard that leaves none, or a budget spent before the first)".into())
    } else if steps == 0 {
        Some(format!(
            "{} seeds ran, but no history ran a step (every one refused before its first op)",
            report.seeds_run
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod nothing_checked_tests {
    use super::*;
    use crate::sim::engine::runner::RunStats;

    fn report(seeds_run: u64, steps: &[u64]) -> SoakReport {
        let families = steps
            .iter()
            .map(|&steps| FamilySummary {
                stats: RunStats { steps, ..RunStats::default() },
                ..FamilySummary::default()
            })
            .collect();
        SoakReport { seeds_run, families, ..SoakReport::default() }
    }

    #[test]
    fn a_soak_without_seeds_or_steps_checked_nothing() {
        assert!(nothing_checked(&report(0, &[0])).is_some_and(|why| why.contains("no seed")));
        let idle = nothing_checked(&report(3, &[0, 0])).expect("no step ran");
        assert!(idle.contains("3 seeds ran, but no history ran a step"), "{idle}");
        assert_eq!(nothing_checked(&report(3, &[0, 1])), None);
    }
}

fn progress_bar(seeds: &SeedPlan, deadline: Option<Duration>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let len = match (seeds, deadline) {
        (_, Some(d)) => d.as_millis() as u64,
        (SeedPlan::Range { start, end }, None) => end - start,
        (SeedPlan::Open { .. }, None) => 0,
    };
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The families and pairs `names` asks for (all of them, pairs unless `no_pairs`, when
/// empty), or the first unknown name.
fn choose(registry: &Registry, names: &[String], no_pairs: bool) -> Result<Chosen, String> {
    if names.is_empty() {
        let families = registry.families().to_vec();
        let mut pairs = Vec::new();
        if !no_pairs {
            for primary in &families {
                for mirror in &families {
                    pairs.push((primary.clone(), mirror.clone()));
                }
            }
        }
        return Ok((families, pairs.clone(), pairs));
    }
    let (mut families, mut pairs, mut migrations) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        let lookup = |scheme: &str| registry.family(scheme).cloned().ok_or_else(|| name.clone());
        if let Some((source, destination)) = name.split_once('>') {
            migrations.push((lookup(source)?, lookup(destination)?));
            continue;
        }
        match name.split_once('+') {
            None => families.push(lookup(name)?),
            Some((primary, mirror)) => pairs.push((lookup(primary)?, lookup(mirror)?)),
        }
    }
    Ok((families, pairs, migrations))
}

/// Two families, ordered.
type Ordered = Vec<(Arc<dyn Family>, Arc<dyn Family>)>;

/// Families, `(primary, mirror)` pairs and `(source, destination)` migrations.
type Chosen = (Vec<Arc<dyn Family>>, Ordered, Ordered);

fn subject_names(config: &SoakConfig) -> Vec<String> {
    let mut names: Vec<String> = config.families.iter().map(|f| f.scheme().to_string()).collect();
    names.extend(config.pairs.iter().map(|(p, m)| format!("{}+{}", p.scheme(), m.scheme())));
    names.extend(config.migrations.iter().map(|(s, d)| format!("{}>{}", s.scheme(), d.scheme())));
    names
}

fn print_options(config: &SoakConfig, deadline: Option<Duration>) {
    let families = subject_names(config);
    let seeds = match (&config.seeds, deadline) {
        (SeedPlan::Range { start, end }, _) => format!("{start}..{end}"),
        (SeedPlan::Open { start }, Some(d)) => format!("{start}.. for {:.1}s", d.as_secs_f64()),
        (SeedPlan::Open { start }, None) => format!("{start}.."),
    };
    println!(
        "qk soak: families {}  seeds {seeds}{}  mode {:?}  ops {}{}",
        families.join(","),
        config.shard.map(|s| format!(" shard {}/{}", s.index, s.count)).unwrap_or_default(),
        config.generator.mode,
        config.generator.ops_len,
        config
            .planted
            .map(|b| b.name())
            .into_iter()
            .chain(config.planted_dual.map(|b| b.name()))
            .chain(config.run.planted_validator.map(|b| b.name()))
            .chain(config.planted_migration.map(|b| b.name()))
            .chain(config.run.bad_images.planted_reader.map(|b| b.name()))
            .map(|b| format!("  PLANTED BUG {b}"))
            .collect::<String>(),
    );
    println!("{}", tunables_header(config, &families));
    if !config.ablation.is_none() {
        println!("ABLATED (switched off): {}", config.ablation);
    }
}

/// The header's tunables line: the fixed ones, each subject's for a one-seed run, or a note
/// that they are drawn per seed (every failure's replay line spells its own out).
fn tunables_header(config: &SoakConfig, subjects: &[String]) -> String {
    match (config.tunables, &config.seeds) {
        (Some(t), _) => format!("tunables {t}"),
        (None, SeedPlan::Range { start, end }) if end - start == 1 => {
            let each: Vec<String> = subjects
                .iter()
                .map(|s| format!("{s}: {}", config.tunables_for(*start, s)))
                .collect();
            format!("tunables {}", each.join("; "))
        }
        (None, _) => "tunables drawn per seed (each failure's replay line gives its own)".into(),
    }
}

fn print_summary(report: &SoakReport, elapsed: f64) {
    println!();
    println!(
        "{:<14} {:>9} {:>10} {:>10} {:>7} {:>7} {:>7} {:>7} {:>5} {:>7} {:>7} {:>8} {:>9}",
        "family",
        "histories",
        "steps",
        "mutations",
        "reopens",
        "crashes",
        "faults",
        "refused",
        "idle",
        "exports",
        "imports",
        "failures",
        "steps/s"
    );
    for f in &report.families {
        let rate = if elapsed > 0.0 { f.stats.steps as f64 / elapsed } else { 0.0 };
        println!(
            "{:<14} {:>9} {:>10} {:>10} {:>7} {:>7} {:>7} {:>7} {:>5} {:>7} {:>7} {:>8} {:>9.0}",
            f.family,
            f.histories,
            f.stats.steps,
            f.stats.mutations,
            f.stats.reopens,
            f.stats.crashes,
            f.stats.faults,
            f.stats.refusals,
            f.stats.idle,
            f.stats.exports,
            f.stats.imports,
            f.failures,
            rate
        );
    }
    let failed: Vec<String> = report
        .families
        .iter()
        .flat_map(|f| {
            f.failures_by_check.iter().map(move |(c, n)| format!("{}: {c} {n}", f.family))
        })
        .collect();
    if !failed.is_empty() {
        println!("failures by check: {}", failed.join(", "));
    }
    // One counter of `RunStats` summed over the subjects.
    let total = |field: fn(&crate::sim::engine::runner::RunStats) -> u64| -> u64 {
        report.families.iter().map(|f| field(&f.stats)).sum()
    };
    let states = total(|s| s.crash_states);
    if states > 0 {
        let nested = total(|s| s.nested_crash_states);
        println!(
            "exhaustive mode: {states} crash states checked ({nested} of them power losses \
             inside a reopen)"
        );
    }
    let validator_pairs = total(|s| s.validator_pairs);
    if validator_pairs > 0 {
        println!(
            "validator agreement: {validator_pairs} pairs of states compared by validate, qk \
             compare and image diff"
        );
    }
    let retries = total(|s| s.open_retries);
    if retries > 0 {
        println!("open retries: {retries} opens failed by an injected fault were tried again");
    }
    let recovery_crashes = total(|s| s.recovery_crashes);
    if recovery_crashes > 0 {
        println!(
            "crashes during recovery: {recovery_crashes} power losses struck while a subject was \
             opening (nested up to {RECOVERY_CRASH_DEPTH} deep)"
        );
    }
    let sub_sector_tears = total(|s| s.sub_sector_tears);
    if sub_sector_tears > 0 {
        println!(
            "sub-sector tears: {sub_sector_tears} writes torn finer than a sector, in files whose \
             family declared a finer write-atomicity unit"
        );
    }
    let inspections = total(|s| s.inspections);
    if inspections > 0 {
        println!(
            "inspect agreement: {inspections} qk inspect reports of cleanly closed instances \
             judged against the state"
        );
    }
    let hostile_dirs = total(|s| s.hostile_dirs);
    if hostile_dirs > 0 {
        println!(
            "hostile directories: {hostile_dirs} local directories with one violation of \
             braft's layout, each opened read-only and read-write"
        );
    }
    let steps = total(|s| s.migration_steps);
    if steps > 0 {
        println!(
            "migration: {steps} steps taken ({} refused as due), {} cut-overs, {} rollbacks",
            total(|s| s.migration_refusals),
            total(|s| s.cut_overs),
            total(|s| s.roll_backs)
        );
    }
    let repairs = total(|s| s.pair_repairs);
    if repairs > 0 {
        println!("dual write: {repairs} pair recoveries repaired or bootstrapped a mirror");
    }
    let idle = report.idle_total();
    if idle > 0 {
        let by_family: Vec<String> = report
            .families
            .iter()
            .filter(|f| f.stats.idle > 0)
            .map(|f| format!("{} {}", f.family, f.stats.idle))
            .collect();
        println!(
            "idle: {idle} histories did no work (refused before their first op; not counted as \
             passed): {}",
            by_family.join(", ")
        );
    }
    print_coverage(report);
    println!();
    println!(
        "{} seeds in {elapsed:.2}s: {}{}",
        report.seeds_run,
        if report.passed() {
            "all checks held".to_string()
        } else {
            let cut = report.failures.iter().filter(|f| f.shrink_cut_short).count();
            let cut = match cut {
                0 => String::new(),
                n => format!(" ({n} reported unshrunk or part-shrunk: the budget ran out)"),
            };
            format!("{} failed histories{cut}", report.failures_total)
        },
        if idle > 0 { format!(" ({idle} histories did no work)") } else { String::new() }
    );
}

/// The coverage tables: per family, one row per path and one column per subject that runs
/// the family, each cell `seeds reaching it / hits`; the history shapes over the lone
/// families (pairs run the same histories); then every path no seed reached, per subject.
fn print_coverage(report: &SoakReport) {
    print!("{}", coverage_text(report));
}

fn coverage_text(report: &SoakReport) -> String {
    use crate::coverage::Point;
    let mut out = String::new();
    for group in ["memory", "local", "redb", "raft"] {
        let subjects: Vec<&FamilySummary> = report
            .families
            .iter()
            .filter(|f| match group {
                "raft" => !f.family.contains('+'),
                _ => f.family.split('+').any(|s| s == group),
            })
            .collect();
        let points: Vec<Point> =
            Point::ALL.iter().copied().filter(|p| p.family() == group).collect();
        if subjects.is_empty() || points.is_empty() || subjects.iter().all(|s| s.histories == 0) {
            continue;
        }
        let path_width = points.iter().map(|p| p.name().len()).max().unwrap_or(0).max(24);
        out.push_str(&format!("\n{:<path_width$}", format!("{group} paths: seeds/hits")));
        for s in &subjects {
            out.push_str(&format!(" {:>12}", s.family));
        }
        out.push('\n');
        for point in points {
            out.push_str(&format!("{:<path_width$}", point.name()));
            for s in &subjects {
                let reach = s.reach(point);
                out.push_str(&format!(" {:>12}", format!("{}/{}", reach.seeds, short(reach.hits))));
            }
            out.push('\n');
        }
    }
    let unreached: Vec<String> = report
        .families
        .iter()
        .filter(|f| f.histories > 0 && !f.unreached.is_empty())
        .map(|f| format!("{}: {}", f.family, f.unreached.join(", ")))
        .collect();
    if !unreached.is_empty() {
        out.push_str("unreached:\n");
        for line in unreached {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// `n` in at most five characters: 999, 12.3k, 4.5M.
fn short(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn print_failures(report: &SoakReport) {
    let mut out = std::io::stdout().lock();
    for f in &report.failures {
        let _ = writeln!(out, "\n==== FAILURE ====");
        let _ = writeln!(out, "SEED    {}", f.seed);
        let _ = writeln!(out, "FAULTS  {}", f.fault_plan);
        let _ = write!(out, "{}", f.failure);
        let _ = writeln!(
            out,
            "SHRUNK  {} -> {} ops ({} runs){}",
            f.original_len,
            f.shrunk.len(),
            f.shrink_runs,
            f.shrunk_failure
                .as_ref()
                .map(|s| format!(", fails {} at step {}: {}", s.check, s.step, s.difference))
                .unwrap_or_default()
        );
        if f.shrink_cut_short {
            let _ = writeln!(
                out,
                "SHRINK  cut short: the --seconds budget ran out {}; the history below still \
                 fails but may shrink further (the REPLAY line shrinks it in full)",
                if f.shrink_runs == 0 {
                    "before shrinking began".to_string()
                } else {
                    format!("after {} runs", f.shrink_runs)
                }
            );
        }
        let removed: Vec<&str> = f.faults_removed.iter().map(|k| k.name()).collect();
        let _ = writeln!(
            out,
            "SHRUNK FAULTS  {}{}",
            f.shrunk_fault_plan,
            if removed.is_empty() {
                " (nothing removed)".to_string()
            } else {
                format!(" (removed {})", removed.join(", "))
            }
        );
        for (i, op) in f.shrunk.iter().enumerate().take(40) {
            let _ = writeln!(out, "  {i:>4}  {op}");
        }
        if f.shrunk.len() > 40 {
            let _ = writeln!(out, "  ... {} more", f.shrunk.len() - 40);
        }
        let _ = writeln!(out, "REPLAY  {}", f.replay);
        if let Some(file) = &f.regression_file {
            let _ = writeln!(out, "SAVED   {file} (replay: qk replay {file})");
        }
    }
}

/// The report `--json` writes and `--html` renders. Its `rates` divide each subject's
/// counters by the whole run's wall time (subjects share it, so a rate is a family's own only
/// when it ran alone): histories, steps, mutations, crash-and-recover cycles (power losses
/// recovered from) and exported images per second; `scripts/bench.sh` reads them.
fn report_data(config: &SoakConfig, report: &SoakReport, elapsed: f64) -> SoakJson {
    let report_config = ReportConfig {
        families: subject_names(config),
        seeds: config.seeds.clone(),
        shard: config.shard,
        generator: config.generator.clone(),
        planted: config.planted,
        planted_dual: config.planted_dual,
        planted_validator: config.run.planted_validator,
        planted_migration: config.planted_migration,
        planted_reader: config.run.bad_images.planted_reader,
        faults: config.faults,
        tunables: config.tunables,
        ablated: config.ablation.to_string(),
        unchecked: config.run.unchecked,
        exhaustive: config.run.exhaustive.is_some(),
    };
    SoakJson::new(report_config, report, elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::memory::MemoryFamily;
    use crate::sim::engine::runner::RunStats;

    #[test]
    fn the_json_report_has_counters_rates_and_the_checking_mode() {
        let mut config =
            SoakConfig::new(vec![Arc::new(MemoryFamily)], SeedPlan::Range { start: 0, end: 4 });
        config.run.unchecked = true;
        let summary = FamilySummary {
            family: "memory".to_string(),
            histories: 4,
            stats: RunStats {
                steps: 800,
                mutations: 600,
                crashes: 20,
                exports: 8,
                idle: 1,
                ..RunStats::default()
            },
            ..FamilySummary::default()
        };
        let report = SoakReport { seeds_run: 4, families: vec![summary], ..SoakReport::default() };
        let value = serde_json::to_value(report_data(&config, &report, 2.0)).expect("json");
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["config"]["unchecked"], true);
        assert_eq!(value["config"]["exhaustive"], false);
        let family = &value["families"][0];
        let counters = [("steps", 800), ("mutations", 600), ("crashes", 20), ("exports", 8)];
        for (field, want) in counters.into_iter().chain([("idle", 1)]) {
            assert_eq!(family[field], want, "{field}");
        }
        assert_eq!(value["histories_idle"], 1);
        let rates = &value["rates"][0];
        assert_eq!(rates["family"], "memory");
        assert_eq!(rates["steps_per_second"], 400.0);
        assert_eq!(rates["mutations_per_second"], 300.0);
        assert_eq!(rates["crash_cycles_per_second"], 10.0);
        assert_eq!(rates["exports_per_second"], 4.0);
        assert_eq!(rates["histories_per_second"], 2.0);
        let idle = serde_json::to_value(report_data(&config, &report, 0.0)).expect("json");
        assert_eq!(idle["rates"][0]["steps_per_second"], 0.0);
    }
}
