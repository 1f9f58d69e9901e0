//! `qk selftest`: proves every check bites by planting bugs and running plain soak logic
//! against each (dual-write bugs against every ordered pair of families). Exits 0 only when
//! every planted bug was caught.

use std::time::Instant;

use clap::Args;

use super::{EXIT_FAILED, EXIT_OK};
use crate::families::Registry;
use crate::sim::generator::GeneratorConfig;
use crate::sim::planted::{PlantedBug, PlantedDualBug};
use crate::sim::selftest::{run_dual_selftest, run_selftest, SelftestResult};

/// Arguments of `qk selftest`.
#[derive(Debug, Args)]
pub struct SelftestArgs {
    /// Give up on a bug after this many seeds.
    #[arg(long, default_value_t = 200)]
    pub seeds_max: u64,
}

/// Runs `qk selftest`.
pub fn run(args: SelftestArgs) -> u8 {
    let registry = Registry::builtin();
    let generator = GeneratorConfig::default();
    println!(
        "{:<28} {:<14} {:<18} {:>6} {:>8} {:>9} {:>8}",
        "planted bug", "family", "caught by", "seeds", "steps", "shrunk", "ms"
    );
    let mut all_caught = true;
    let mut report = |r: SelftestResult, ms: u128| {
        all_caught &= r.caught();
        let caught = r.caught_by.map(|c| c.to_string()).unwrap_or_else(|| "NOT CAUGHT".into());
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
    if all_caught {
        println!("\nevery planted bug was caught");
        EXIT_OK
    } else {
        println!("\nsome planted bugs were NOT caught: a check does not bite");
        EXIT_FAILED
    }
}
