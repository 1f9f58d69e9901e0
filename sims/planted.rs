//! The last checks bite: a planted bug whose writes depend on how many instances its
//! family opened before (caught only by `determinism`, each seed run twice), one that
//! panics inside a family call (caught by `panic`, the report naming the panic), and one
//! whose `qk inspect` details miscount the entries (caught by `inspect_agreement`, the report
//! naming the field and both values).

#[path = "support/planted.rs"]
mod planted;

use std::sync::Arc;

use planted::{assert_caught_by_its_own_check, families_of};
use quorumkit_storage::families::Registry;
use quorumkit_storage::sim::checks::CheckName;
use quorumkit_storage::sim::planted::{PlantedBug, PlantedFamily};
use quorumkit_storage::sim::soak::regression::Regression;
use quorumkit_storage::sim::soak::{
    disk_seed_for, fault_plan_for, run_soak, FaultMode, SeedPlan, SoakConfig, SOAK_FAULT_STREAMS,
};

/// The text of the panic [`PlantedBug::TruncateSuffixPanics`] plants.
const PANIC_TEXT: &str = "index out of bounds: the len is 6 but the index is";

/// DESIGN §7 check 9 bites: two runs of one seed leave different traces when what a family
/// writes depends on something besides the seed.
#[test]
fn planted_padding_by_open_count_is_caught_by_determinism_on_every_family() {
    let results = assert_caught_by_its_own_check(PlantedBug::PaddingByOpenCount);
    assert_eq!(families_of(&results), ["memory", "local", "redb"]);
    for r in &results {
        let failure = r.shrunk_failure.as_ref().expect("checked by the helper");
        assert!(failure.difference.contains("gave trace hashes"), "{}: {failure}", r.family);
        // A mutation, then a power loss that finds its padding pending, is all it takes (a
        // reopen or two may stay: they shift which instance pads how much).
        assert!(r.shrunk_len <= 8, "{}: shrunk only to {:?}", r.family, r.shrunk);
    }
}

/// The padding bug proves `determinism` bites only if nothing else notices it: a soak
/// without the determinism check holds on every family and pair, and with it every failure
/// is `determinism`.
#[test]
fn padding_by_open_count_passes_every_check_but_determinism() {
    let registry = Registry::builtin();
    let families = registry.families().to_vec();
    let mut config = SoakConfig::new(families.clone(), SeedPlan::Range { start: 0, end: 8 });
    config.pairs =
        families.iter().flat_map(|p| families.iter().map(|m| (p.clone(), m.clone()))).collect();
    config.planted = Some(PlantedBug::PaddingByOpenCount);
    config.shrink = false;
    let report = run_soak(&config, &mut || true, &mut |_, _| {});
    let failures: Vec<String> = report.failures.iter().map(|f| f.failure.to_string()).collect();
    assert!(report.passed(), "noticed without the determinism check:\n{}", failures.join("\n"));

    config.pairs.clear();
    config.check_determinism = true;
    let report = run_soak(&config, &mut || true, &mut |_, _| {});
    for summary in &report.families {
        let checks: Vec<&String> = summary.failures_by_check.keys().collect();
        assert_eq!(checks, ["determinism"], "{}: {:?}", summary.family, summary);
    }
}

/// DESIGN §7 check 10 bites: a panic inside a family call is caught and reported as the
/// `panic` check with the panic's text, and the shrunk history, replayed as a regression
/// file would be, panics again.
#[test]
fn planted_truncate_suffix_panics_is_caught_by_panic_on_every_family() {
    let results = assert_caught_by_its_own_check(PlantedBug::TruncateSuffixPanics);
    assert_eq!(families_of(&results), ["memory", "local", "redb"]);
    let registry = Registry::builtin();
    for r in &results {
        let failure = r.shrunk_failure.as_ref().expect("checked by the helper");
        assert!(failure.difference.contains(PANIC_TEXT), "{}: {failure}", r.family);
        assert!(failure.op.starts_with("truncate_suffix"), "{}: {failure}", r.family);
        let seed = r.seed.expect("caught");
        let regression = Regression {
            story: format!("planted truncate-suffix-panics on {}", r.family),
            family: r.family.clone(),
            seed: Some(seed),
            check: Some(CheckName::Panic),
            ops: r.shrunk.clone(),
            disk_seed: disk_seed_for(seed),
            sector_size: Some(quorumkit_storage::sim::soak::sector_size_for(seed)),
            faults: fault_plan_for(seed, FaultMode::Honest),
            original_faults: None,
            exhaustive: None,
            fault_streams: SOAK_FAULT_STREAMS,
            op_keys: None,
            tunables: Default::default(),
            original_tunables: None,
        };
        let family = registry.family(&r.family).expect("registered").clone();
        let planted = Arc::new(PlantedFamily::new(family, PlantedBug::TruncateSuffixPanics));
        let replayed = regression.replay(planted, 8).failure.expect("the replay panics again");
        assert_eq!(replayed.check, CheckName::Panic, "{}: {replayed}", r.family);
        assert!(replayed.difference.contains(PANIC_TEXT), "{}: {replayed}", r.family);
    }
}

/// `inspect_agreement` bites: details that count one entry too many, on a state that is
/// otherwise right, are caught at a clean close, naming the field; the shortest history is
/// no more than one append and the close at its end (redb's log counts even when empty).
#[test]
fn planted_inspect_miscounts_entries_is_caught_by_inspect_agreement() {
    let results = assert_caught_by_its_own_check(PlantedBug::InspectMiscountsEntries);
    assert_eq!(families_of(&results), ["local", "redb"]);
    for r in &results {
        let failure = r.shrunk_failure.as_ref().expect("checked by the helper");
        let field = if r.family == "local" { "].entries = " } else { "log.entries = " };
        assert!(failure.difference.contains(field), "{}: {failure}", r.family);
        assert_eq!(failure.op, "end of history", "{}: {failure}", r.family);
        assert!(r.shrunk_len <= 1, "{}: shrunk only to {:?}", r.family, r.shrunk);
    }
}

/// Under a lying fsync alone (no media fault), term and vote kept in a side file beside a
/// redb instance come back older than a snapshot published after them: each store holds a
/// state it held, which the per-store rule allows, but the meta and the snapshot were never
/// current together, a cut redb's single commit never makes. `crash_atomicity`'s cut rule
/// names it; the same seeds on redb itself hold.
#[test]
fn a_meta_rolled_back_alone_by_a_lying_fsync_is_a_mixed_cut_crash_atomicity_names() {
    use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig};
    use quorumkit_storage::sim::engine::runner::{run_history_on_disk, RunOptions};
    use quorumkit_storage::sim::soak::disk_with_plan;
    use quorumkit_storage::vfs::{FaultPlan, FaultRate};
    let redb = Registry::builtin().family("redb").expect("registered").clone();
    let planted: Arc<dyn quorumkit_storage::contract::Family> =
        Arc::new(PlantedFamily::new(redb.clone(), PlantedBug::MetaInSideFile));
    let plan = FaultPlan { fsync_loss: FaultRate::with_probability(0.03), ..FaultPlan::none() };
    let run = |family: &Arc<dyn quorumkit_storage::contract::Family>, seed: u64| {
        let ops = generate(seed, &GeneratorConfig::default());
        let disk = disk_with_plan(seed, plan.clone());
        let location = format!("soak/redb-{seed}");
        run_history_on_disk(family.clone(), &location, disk, &ops, RunOptions::default())
    };
    let (seed, failure) = (0..400)
        .find_map(|seed| run(&planted, seed).failure.map(|f| (seed, f)))
        .expect("the mixed cut is found");
    assert_eq!(failure.check, CheckName::CrashAtomicity, "seed {seed}: {failure:?}");
    assert!(
        failure.difference.contains("never current together")
            || failure.difference.contains("the log was last current"),
        "seed {seed}: {}",
        failure.difference
    );
    for seed in 0..=seed {
        let outcome = run(&redb, seed);
        assert!(outcome.failure.is_none(), "redb seed {seed}: {:?}", outcome.failure);
    }
}

/// `hostile_dirs` bites: a local family whose open starts empty when it meets corruption
/// (every honest directory opens as before) is caught at a clean close, naming the
/// violation, and only by that check.
#[test]
fn planted_accepts_hostile_dirs_is_caught_by_hostile_dirs() {
    let results = assert_caught_by_its_own_check(PlantedBug::AcceptsHostileDirs);
    assert_eq!(families_of(&results), ["local"]);
    for r in &results {
        let failure = r.shrunk_failure.as_ref().expect("checked by the helper");
        assert!(failure.difference.starts_with("hostile directory `"), "{failure}");
        assert!(failure.difference.contains("accepted it; expected corruption"), "{failure}");
    }
}
