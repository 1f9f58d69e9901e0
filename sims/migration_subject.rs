//! DESIGN §7 check 12, `migration`: a migration between every ordered pair of families runs
//! as a soak subject (its steps woven into the history, power losses and reopens between and
//! inside them, mutations going on), holds on a correct migration, and the check bites: each
//! planted migration bug is caught by it, by name.

use quorumkit_storage::families::Registry;
use quorumkit_storage::sim::checks::CheckName;
use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig};
use quorumkit_storage::sim::engine::migration::with_steps;
use quorumkit_storage::sim::engine::op_text::parse_op_lines;
use quorumkit_storage::sim::engine::ops::{MigrateStep, Op};
use quorumkit_storage::sim::planted::PlantedMigrationBug;
use quorumkit_storage::sim::soak::selftest::run_migration_selftest;
use quorumkit_storage::sim::soak::{run_soak, SeedPlan, SoakConfig};

/// The woven history keeps every generated op in order, adds migration steps (begin first),
/// and survives the text form, so it shrinks and replays like any history.
#[test]
fn steps_are_woven_into_the_history_and_round_trip_as_text() {
    for seed in 0..20 {
        let ops = generate(seed, &GeneratorConfig::default());
        let woven = with_steps(seed, &ops);
        let kept: Vec<&Op> = woven
            .iter()
            .filter(|op| !matches!(op, Op::Migrate { .. }))
            .filter(|op| !matches!(op, Op::CrashDuring { .. } | Op::Crash | Op::Reopen))
            .collect();
        let original: Vec<&Op> = ops
            .iter()
            .filter(|op| !matches!(op, Op::CrashDuring { .. } | Op::Crash | Op::Reopen))
            .collect();
        assert_eq!(kept, original, "seed {seed}");
        let steps: Vec<MigrateStep> = woven
            .iter()
            .filter_map(|op| match op {
                Op::Migrate { step } => Some(*step),
                _ => None,
            })
            .collect();
        assert_eq!(steps.first(), Some(&MigrateStep::Begin), "seed {seed}");
        assert!(steps.contains(&MigrateStep::DualWrite), "seed {seed}");
        let text: String = woven.iter().map(|op| format!("{op}\n")).collect();
        assert_eq!(parse_op_lines(&text).expect("parses"), woven, "seed {seed}");
        assert_eq!(with_steps(seed, &ops), woven, "seed {seed}: not deterministic");
    }
}

/// A soak of every ordered pair as a migration holds, cuts over, rolls back and refuses
/// steps asked in the wrong phase.
#[test]
fn migrations_between_every_pair_hold_in_a_soak() {
    let registry = Registry::builtin();
    let families = registry.families().to_vec();
    let mut config = SoakConfig::new(Vec::new(), SeedPlan::Range { start: 0, end: 12 });
    config.migrations =
        families.iter().flat_map(|s| families.iter().map(|d| (s.clone(), d.clone()))).collect();
    config.shrink = false;
    let report = run_soak(&config, &mut || true, &mut |_, _| {});
    let failures: Vec<String> = report.failures.iter().map(|f| f.failure.to_string()).collect();
    assert!(report.passed(), "{}", failures.join("\n"));
    assert_eq!(report.families.len(), 9);
    let sum = |f: fn(&quorumkit_storage::sim::soak::FamilySummary) -> u64| -> u64 {
        report.families.iter().map(f).sum()
    };
    assert!(sum(|f| f.stats.cut_overs) > 0, "no cut-over");
    assert!(sum(|f| f.stats.roll_backs) > 0, "no rollback");
    assert!(sum(|f| f.stats.migration_refusals) > 0, "no refusal");
    assert!(sum(|f| f.stats.crashes) > 0, "no power loss");
}

/// Each planted migration bug is caught by `migration` on every ordered pair of families,
/// and shrinks to a history that still fails it.
#[test]
fn planted_migration_bugs_are_caught_by_migration_on_every_pair() {
    let registry = Registry::builtin();
    let generator = GeneratorConfig::default();
    let mut missed = Vec::new();
    for bug in PlantedMigrationBug::ALL {
        for source in registry.families() {
            for destination in registry.families() {
                let (s, d) = (source.clone(), destination.clone());
                let r = run_migration_selftest(s, d, bug, &generator, 60);
                let shrunk = r.shrunk_failure.as_ref().map(|f| f.check);
                if r.caught_by != Some(CheckName::Migration) || shrunk != Some(CheckName::Migration)
                {
                    missed.push(format!(
                        "{} on {}: caught by {:?} after {} seeds (shrunk fails {shrunk:?})",
                        bug.name(),
                        r.family,
                        r.caught_by,
                        r.seeds_run
                    ));
                }
            }
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}
