//! `qk replay`: run one history (a regression file, an `.ops` file, or a seed) and print its
//! whole trace and the verdict.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::contract::Family;
use crate::families::Registry;
use crate::sim::engine::generator::{generate, GeneratorConfig, Mode};
use crate::sim::engine::migration::MigrationSubject;
use crate::sim::engine::op_text::parse_op_lines;
use crate::sim::engine::runner::RunOptions;
use crate::sim::engine::subject::Subject;
use crate::sim::engine::tunables::{self, SubjectTunables};
use crate::sim::planted::{
    PlantedBug, PlantedDualBug, PlantedFamily, PlantedMigrationBug, PlantedPairFamily,
    PlantedValidatorBug,
};
use crate::sim::soak::regression::Regression;
use crate::sim::soak::{
    disk_seed_for, fault_plan_for, sector_size_for, FaultMode, SOAK_FAULT_STREAMS,
};

/// Arguments of `qk replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A regression history file (JSON) to replay, or an `.ops` file (one op per line in the
    /// text form failure reports print; needs --family; runs on a fault-free disk, seed 0).
    #[arg(conflicts_with = "seed", required_unless_present = "seed")]
    pub file: Option<PathBuf>,
    /// Replay the history this seed generates: any u64, 0 to 18446744073709551615.
    #[arg(long, requires = "family")]
    pub seed: Option<u64>,
    /// The family to replay on (default: the file's family).
    #[arg(long)]
    pub family: Option<String>,
    /// History generator mode (with --seed; a FILE has its own history: refused with one).
    #[arg(long, value_enum, default_value_t = Mode::Raft, conflicts_with = "file")]
    pub mode: Mode,
    /// Ops per history (with --seed; refused with a FILE): 1 to 100000.
    #[arg(long = "ops", default_value_t = 200, value_parser = super::args::ops,
          conflicts_with = "file")]
    pub ops_len: usize,
    /// Fault plans (with --seed), as in `qk soak` (a FILE has its own: refused with one).
    #[arg(long, value_enum, default_value_t = FaultMode::Default, conflicts_with = "file")]
    pub faults: FaultMode,
    /// Family tunables (text form, as the soak's replay line prints them); default: the
    /// file's, or those the seed draws in a soak.
    #[arg(long, value_name = "TEXT")]
    pub tunables: Option<SubjectTunables>,
    /// Replay with a planted bug (self-test of the harness).
    #[arg(long, value_enum, hide = true)]
    pub planted: Option<PlantedBug>,
    /// Replay a dual-write pair with a planted dual-write bug (self-test of the harness).
    #[arg(long, value_enum, hide = true)]
    pub planted_dual: Option<PlantedDualBug>,
    /// Replay with a planted blind spot in the validator `validator_agreement` judges
    /// (self-test of the harness).
    #[arg(long, value_enum, hide = true)]
    pub planted_validator: Option<PlantedValidatorBug>,
    /// Replay a migration with a planted migration bug (self-test of the harness).
    #[arg(long, value_enum, hide = true)]
    pub planted_migration: Option<PlantedMigrationBug>,
    /// Also draw the run as a crash timeline (self-contained HTML) in this file: steps, disk
    /// operations per file, syncs, each power loss with what it kept, dropped and tore.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// The global `--quiet` (set by [`super::run`]): no trace, only the verdict and what
    /// failed.
    #[arg(skip)]
    pub quiet: bool,
}

/// Runs `qk replay`.
pub fn run(args: ReplayArgs) -> u8 {
    let registry = Registry::builtin();
    if let Some(path) = &args.html {
        // Refused before the run, not after it.
        if let Err(e) = std::fs::write(path, b"") {
            eprintln!("qk replay: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let (regression, family_name) = match (&args.file, args.seed) {
        (Some(path), _) if path.extension().is_some_and(|e| e == "ops") => {
            match ops_file(path, args.family.as_deref()) {
                Ok(found) => found,
                Err(e) => {
                    eprintln!("qk replay: {e}");
                    return EXIT_USAGE;
                }
            }
        }
        (Some(path), _) => match Regression::load(path) {
            Ok(r) => {
                println!("STORY   {}", r.story);
                let family = args.family.clone().unwrap_or(r.family.clone());
                (r, family)
            }
            Err(e) => {
                eprintln!("qk replay: {e}");
                return EXIT_USAGE;
            }
        },
        (None, Some(seed)) => {
            let config =
                GeneratorConfig { mode: args.mode, ops_len: args.ops_len, ..Default::default() };
            let family = args.family.clone().unwrap_or_default();
            let regression = Regression {
                story: format!("seed {seed}"),
                family: family.clone(),
                seed: Some(seed),
                check: None,
                ops: match Subject::find(&registry, args.family.as_deref().unwrap_or_default()) {
                    Some(subject) => subject.history(seed, &generate(seed, &config)).into_owned(),
                    None => generate(seed, &config),
                },
                disk_seed: disk_seed_for(seed),
                sector_size: Some(sector_size_for(seed)),
                faults: fault_plan_for(seed, args.faults),
                original_faults: None,
                exhaustive: None,
                fault_streams: SOAK_FAULT_STREAMS,
                op_keys: None,
                tunables: tunables::draw(seed).for_subject(&family),
                original_tunables: None,
            };
            (regression, family)
        }
        (None, None) => {
            eprintln!("qk replay: give a FILE or --seed S --family F");
            return EXIT_USAGE;
        }
    };
    let mut regression = regression;
    if let Some(t) = args.tunables {
        regression.tunables = t;
    }
    let names: Vec<String> = match family_name.as_str() {
        // Recorded for every family: replayed on every subject.
        "*" => Subject::every(&registry).iter().map(Subject::name).collect(),
        _ => vec![family_name],
    };
    if names.len() > 1 && args.html.is_some() {
        eprintln!(
            "qk replay: a regression for every family (*) has no one timeline: give --family"
        );
        return EXIT_USAGE;
    }
    let codes: Vec<u8> =
        names.iter().map(|name| replay_on(&args, &registry, &regression, name)).collect();
    // A finding on any subject is the answer; otherwise the worst of the rest.
    if codes.contains(&EXIT_FAILED) {
        EXIT_FAILED
    } else {
        codes.into_iter().max().unwrap_or(EXIT_OK)
    }
}

/// Replays `regression` on the subject named `family_name` (with the planted bugs `args`
/// asks for), prints its trace and verdict, and returns the exit code.
fn replay_on(
    args: &ReplayArgs,
    registry: &Registry,
    regression: &Regression,
    family_name: &str,
) -> u8 {
    let Some(subject) = Subject::find(registry, family_name) else {
        eprintln!("qk replay: unknown family {family_name:?}");
        return EXIT_USAGE;
    };
    let plant = |family: Arc<dyn Family>| -> Arc<dyn Family> {
        match args.planted {
            Some(bug) => Arc::new(PlantedFamily::new(family, bug)),
            None => family,
        }
    };
    let subject = match subject {
        Subject::Family(family) => Subject::Family(plant(family)),
        Subject::Pair(pair) => {
            let (primary, mirror) = (plant(pair.primary_family()), plant(pair.mirror_family()));
            match args.planted_dual {
                Some(bug) => Subject::Pair(Arc::new(PlantedPairFamily::new(primary, mirror, bug))),
                None => Subject::pair(primary, mirror),
            }
        }
        Subject::Migration(m) => {
            let (source, destination) =
                (plant(m.source_family().clone()), plant(m.destination_family().clone()));
            Subject::Migration(Arc::new(match args.planted_migration {
                Some(bug) => MigrationSubject::planted(source, destination, bug),
                None => MigrationSubject::new(source, destination),
            }))
        }
    };
    let options = RunOptions {
        trace_tail_len: usize::MAX,
        planted_validator: args.planted_validator,
        timeline: args.html.is_some(),
        ..RunOptions::default()
    };
    let outcome = regression.replay_with(subject, options);
    if let Some(path) = &args.html {
        let page = crate::report::timeline::regression_page(regression, family_name, &outcome);
        let Some(page) = page else {
            eprintln!("qk replay: this run had no simulated disk, so there is no timeline to draw");
            return EXIT_USAGE;
        };
        if let Err(e) = std::fs::write(path, page) {
            eprintln!("qk replay: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
        eprintln!("timeline written to {}", path.display());
    }
    println!("FAMILY  {family_name}");
    println!("TUNABLES {}", regression.tunables);
    if let Some(original) = &regression.original_tunables {
        println!("        (shrunk from {original})");
    }
    println!("FAULTS  {}", regression.faults);
    if let Some(original) = &regression.original_faults {
        println!("        (shrunk from {original})");
    }
    if let Some(e) = &regression.exhaustive {
        println!(
            "EXHAUSTIVE subsets up to {} units, {} samples",
            e.subset_units_max, e.sample_count
        );
    }
    println!("OPS     {}", regression.ops.len());
    if !args.quiet {
        println!("TRACE");
        for line in &outcome.trace_tail {
            println!("  {line}");
        }
    }
    match &outcome.failure {
        None if outcome.did_no_work() => {
            let why = outcome.refusal.as_deref().unwrap_or("refused before the first op");
            println!("VERDICT no work done: {why}; no op ran and no check looked at anything");
            eprintln!("qk replay: nothing was checked: {why}");
            EXIT_USAGE
        }
        None => {
            println!("TRACE   {} steps, hash {}", outcome.stats.steps, outcome.trace_hash);
            if let Some(why) = &outcome.refusal {
                println!("REFUSED the instance failed closed, which ends the run: {why}");
            }
            println!("VERDICT all checks held (final state digest {})", outcome.final_digest);
            EXIT_OK
        }
        Some(f) => {
            print!("{f}");
            println!("VERDICT check {} failed at step {}", f.check, f.step);
            EXIT_FAILED
        }
    }
}

/// The history of an `.ops` file as a regression on a fault-free disk (disk seed 0), and the
/// family to run it on (which must be given).
fn ops_file(path: &std::path::Path, family: Option<&str>) -> Result<(Regression, String), String> {
    let family = family.ok_or("an .ops file needs --family")?.to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ops = parse_op_lines(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let regression = Regression {
        story: format!("ops file {}", path.display()),
        family: family.clone(),
        seed: None,
        check: None,
        ops,
        disk_seed: 0,
        sector_size: None,
        faults: crate::vfs::FaultPlan::none(),
        original_faults: None,
        exhaustive: None,
        fault_streams: crate::vfs::FaultStreams::Run,
        op_keys: None,
        tunables: Default::default(),
        original_tunables: None,
    };
    Ok((regression, family))
}
