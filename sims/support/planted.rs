//! Shared by the tests that prove each planted bug bites: the bug is caught by exactly the
//! check it is planted to trip, on every family it applies to.

use quorumkit_storage::families::Registry;
use quorumkit_storage::sim::engine::generator::GeneratorConfig;
use quorumkit_storage::sim::planted::PlantedBug;
use quorumkit_storage::sim::soak::selftest::{run_selftest, SelftestResult};

/// Seeds a planted bug gets before it counts as not caught. Most are caught within the first
/// two; the image bugs need a seed whose history completes an export, which on 120-op
/// histories only a few seeds do (`import-lists-files-twice` on redb first at seed 10 since
/// faults are drawn per step; `import-commit-in-steps` on redb past seed 16 since sector
/// sizes are drawn per seed and histories reset backward).
pub const PLANTED_SEEDS_MAX: u64 = 48;

/// `bug` planted in every registered family it applies to is caught by exactly its own check
/// (and not first by another) within [`PLANTED_SEEDS_MAX`] seeds of 120-op histories, and
/// shrinks to a history no longer than the original that, run again as it was caught, still
/// fails that check. Returns the results, one per family it was run on, in registry order.
pub fn assert_caught_by_its_own_check(bug: PlantedBug) -> Vec<SelftestResult> {
    let generator = GeneratorConfig { ops_len: 120, ..GeneratorConfig::default() };
    let expected = bug.expected_check();
    let mut results = Vec::new();
    let mut missed = Vec::new();
    let registry = Registry::builtin();
    for family in registry.families().iter().filter(|f| bug.applies_to(f.as_ref())) {
        let r = run_selftest(family.clone(), bug, &generator, PLANTED_SEEDS_MAX);
        let shrunk_check = r.shrunk_failure.as_ref().map(|f| f.check);
        if r.caught_by != Some(expected)
            || r.shrunk_len > r.original_len
            || r.shrunk.len() != r.shrunk_len
            || shrunk_check != Some(expected)
        {
            missed.push(format!(
                "{} on {}: caught by {:?} (expected {expected}) after {} seeds, shrunk {} -> {} \
                 (which fails {shrunk_check:?})",
                bug.name(),
                r.family,
                r.caught_by,
                r.seeds_run,
                r.original_len,
                r.shrunk_len,
            ));
        }
        results.push(r);
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
    results
}

/// The families `results` were run on.
pub fn families_of(results: &[SelftestResult]) -> Vec<&str> {
    results.iter().map(|r| r.family.as_str()).collect()
}
