//! `qk selftest`: proves every check bites by planting bugs and running plain soak logic
//! against each (dual-write bugs against every ordered pair of families; the bug planted for
//! `determinism` with every seed run twice). Exits 0 only when every planted bug was caught by
//! the check it was planted for, and every check caught one.

use std::collections::BTreeSet;
use std::time::Instant;

use clap::Args;

use super::{EXIT_FAILED, EXIT_OK};
use crate::families::Registry;
use crate::sim::checks::image_views::PlantedViewBug;
use crate::sim::checks::CheckName;
use crate::sim::engine::generator::GeneratorConfig;
use crate::sim::planted::{PlantedBug, PlantedDualBug, PlantedMigrationBug, PlantedValidatorBug};
use crate::sim::soak::selftest::{
    run_dual_selftest, run_migration_selftest, run_selftest, run_validator_selftest,
    run_views_selftest, SelftestResult,
};

/// Arguments of `qk selftest`.
#[derive(Debug, Args)]
pub struct SelftestArgs {
    /// Give up on a bug after this many seeds: 1 to 1000000.
    #[arg(long, default_value_t = 200, value_parser = super::args::selftest_seeds)]
    pub seeds_max: u64,
    /// The global `--quiet` (set by [`super::run`]): only the rows of bugs not caught by
    /// their check, and the verdict.
    #[arg(skip)]
    pub quiet: bool,
}

/// Runs `qk selftest`.
pub fn run(args: SelftestArgs) -> u8 {
    let registry = Registry::builtin();
    let generator = GeneratorConfig::default();
    if !args.quiet {
        println!(
            "{:<28} {:<14} {:<18} {:>6} {:>8} {:>9} {:>8}",
            "planted bug", "family", "caught by", "seeds", "steps", "shrunk", "ms"
        );
    }
    let mut all_caught = true;
    let mut biting = BTreeSet::new();
    let mut report = |r: SelftestResult, ms: u128| {
        let caught = match r.caught_by {
            Some(check) if check == r.expected => {
                biting.insert(check);
                check.to_string()
            }
            Some(check) => format!("{check} (NOT {})", r.expected),
            None => "NOT CAUGHT".to_string(),
        };
        all_caught &= r.caught_by == Some(r.expected);
        if args.quiet && r.caught_by == Some(r.expected) {
            return;
        }
        println!(
            "{:<28} {:<14} {:<18} {:>6} {:>8} {:>4}->{:<4} {:>8}",
            r.bug,
            r.family,
            caught,
            r.seeds_run,
            r.steps_to_detection,
            r.original_len,
            r.shrunk_len,
            ms
        );
    };
    for bug in PlantedBug::ALL {
        for family in registry.families().iter().filter(|f| bug.applies_to(f.as_ref())) {
            let started = Instant::now();
            let r = run_selftest(family.clone(), bug, &generator, args.seeds_max);
            report(r, started.elapsed().as_millis());
        }
    }
    for bug in PlantedDualBug::ALL {
        for primary in registry.families() {
            for mirror in registry.families().iter().filter(|m| bug.applies_to(m.as_ref())) {
                let started = Instant::now();
                let r = run_dual_selftest(
                    primary.clone(),
                    mirror.clone(),
                    bug,
                    &generator,
                    args.seeds_max,
                );
                report(r, started.elapsed().as_millis());
            }
        }
    }
    // Each migration bug on a ring of migrations (every family once a source and once a
    // destination, never its own): `sims/migration_subject.rs` runs every ordered pair.
    let families = registry.families();
    for bug in PlantedMigrationBug::ALL {
        for (i, source) in families.iter().enumerate() {
            let destination = &families[(i + 1) % families.len()];
            let started = Instant::now();
            let (s, d) = (source.clone(), destination.clone());
            let r = run_migration_selftest(s, d, bug, &generator, args.seeds_max);
            report(r, started.elapsed().as_millis());
        }
    }
    for bug in PlantedValidatorBug::ALL {
        for family in registry.families() {
            let started = Instant::now();
            let r = run_validator_selftest(family.clone(), bug, &generator, args.seeds_max);
            report(r, started.elapsed().as_millis());
        }
    }
    for bug in PlantedViewBug::ALL {
        for family in registry.families() {
            let started = Instant::now();
            let r = run_views_selftest(family.clone(), bug, &generator, args.seeds_max);
            report(r, started.elapsed().as_millis());
        }
    }
    let idle: Vec<&str> =
        CheckName::ALL.iter().filter(|c| !biting.contains(*c)).map(|c| c.as_str()).collect();
    println!();
    if idle.is_empty() {
        println!("every check caught a bug planted for it ({} checks)", CheckName::ALL.len());
    } else {
        println!("checks that caught no bug planted for them: {}", idle.join(", "));
    }
    if all_caught && idle.is_empty() {
        println!("every planted bug was caught");
        EXIT_OK
    } else {
        println!("some planted bugs were NOT caught by their check: a check does not bite");
        EXIT_FAILED
    }
}
