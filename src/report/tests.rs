//! The report's merge arithmetic, its schema refusals, escaping, and the HTML page (with an
//! insta snapshot of a small fixed report in `snapshots/report_html_small.snap`).

use std::path::Path;

use super::html::{escape, render};
use super::*;
use crate::coverage::{Counts, Point};
use crate::sim::checks::{CheckFailure, CheckName};
use crate::sim::engine::generator::GeneratorConfig;
use crate::sim::engine::ops::Op;
use crate::sim::engine::runner::RunStats;
use crate::vfs::FaultPlan;

fn config(seeds: SeedPlan) -> ReportConfig {
    ReportConfig {
        families: vec!["memory".into(), "local+redb".into()],
        seeds,
        shard: None,
        generator: GeneratorConfig::default(),
        planted: None,
        planted_dual: None,
        planted_validator: None,
        planted_migration: None,
        planted_reader: None,
        faults: FaultMode::Default,
        tunables: None,
        ablated: String::new(),
        unchecked: false,
        exhaustive: false,
    }
}

fn summary(family: &str, histories: u64, steps: u64, hits: &[(Point, u64)]) -> FamilySummary {
    let mut s = FamilySummary {
        family: family.into(),
        histories,
        stats: RunStats { steps, mutations: steps / 2, faults: histories, ..RunStats::default() },
        ..FamilySummary::default()
    };
    let mut counts = Counts::default();
    for (point, n) in hits {
        counts.add(*point, *n);
    }
    s.add_coverage(&counts);
    s
}

fn failure(family: &str, seed: u64, check: CheckName, difference: &str) -> SoakFailure {
    SoakFailure {
        seed,
        family: family.into(),
        failure: CheckFailure {
            check,
            family: family.into(),
            step: 3,
            op: "reopen()".into(),
            difference: difference.into(),
            trace_tail: vec!["step 3 reopen".into()],
            disk_trace_tail: String::new(),
        },
        tunables: Default::default(),
        shrunk_tunables: Default::default(),
        fault_plan: FaultPlan::none(),
        shrunk_fault_plan: FaultPlan::none(),
        faults_removed: Vec::new(),
        original_len: 200,
        shrunk: vec![Op::Reopen, Op::Crash],
        shrunk_keys: Vec::new(),
        shrunk_failure: None,
        shrink_runs: 17,
        shrink_cut_short: false,
        replay: format!("cargo run --release --bin qk -- soak --family '{family}' --seed {seed}"),
        regression_file: None,
    }
}

/// A report of seeds `start..start+3`: `memory` failing `failed` (seed, check) histories,
/// `local+redb` passing.
fn report(start: u64, failed: &[(u64, CheckName)], steps: u64) -> SoakJson {
    let mut memory = summary("memory", 3, steps, &[(Point::RaftTruncateFarBack, 2)]);
    let mut failures = Vec::new();
    for (seed, check) in failed {
        memory.failures += 1;
        *memory.failures_by_check.entry(check.as_str().to_string()).or_default() += 1;
        failures.push(failure("memory", *seed, *check, "entry 4: <script>alert('x')</script>"));
    }
    let pair = summary(
        "local+redb",
        3,
        2 * steps,
        &[(Point::LocalSegmentRollover, 5), (Point::RaftInstallRetransmitted, 1)],
    );
    let soak = SoakReport {
        seeds_run: 3,
        families: vec![memory, pair],
        failures_total: failures.len() as u64,
        failures,
    };
    SoakJson::new(config(SeedPlan::Range { start, end: start + 3 }), &soak, 2.0)
}

fn named(reports: Vec<SoakJson>) -> Vec<(String, SoakJson)> {
    reports.into_iter().enumerate().map(|(i, r)| (format!("shard-{i}.json"), r)).collect()
}

#[test]
fn escape_replaces_the_five_special_characters_and_nothing_else() {
    assert_eq!(
        escape("<script>alert('x') & \"y\"</script>"),
        "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
    );
    assert_eq!(escape("local+redb > memory: é ✓"), "local+redb &gt; memory: é ✓");
    assert_eq!(escape("&amp;"), "&amp;amp;", "escaping is not idempotent: it escapes once");
    assert_eq!(escape(""), "");
}

#[test]
fn two_merged_reports_give_summed_counts() {
    let a = report(0, &[(1, CheckName::ModelEquality)], 100);
    let b = report(3, &[(4, CheckName::ModelEquality), (5, CheckName::Panic)], 300);
    let merged = merge(&named(vec![a, b])).expect("merges");
    assert_eq!(merged.schema_version, SCHEMA_VERSION);
    assert_eq!(merged.seeds_run, 6);
    assert_eq!(merged.elapsed_seconds, 4.0);
    assert_eq!(merged.failures_total, 3);
    assert!(!merged.passed);
    let names: Vec<&str> = merged.families.iter().map(|f| f.family.as_str()).collect();
    assert_eq!(names, ["memory", "local+redb"]);
    let memory = &merged.families[0];
    assert_eq!(memory.histories, 6);
    assert_eq!(memory.stats.steps, 400);
    assert_eq!(memory.stats.mutations, 200);
    assert_eq!(memory.stats.faults, 6);
    assert_eq!(memory.failures, 3);
    assert_eq!(memory.failures_by_check.get("model_equality"), Some(&2));
    assert_eq!(memory.failures_by_check.get("panic"), Some(&1));
    let far_back = memory.coverage[Point::RaftTruncateFarBack.name()];
    assert_eq!((far_back.seeds, far_back.hits), (2, 4));
    let pair = &merged.families[1];
    assert_eq!(pair.stats.steps, 800);
    assert_eq!(pair.failures, 0);
    assert!(pair.failures_by_check.is_empty());
    let rollover = pair.coverage[Point::LocalSegmentRollover.name()];
    assert_eq!((rollover.seeds, rollover.hits), (2, 10));
    assert!(!pair.unreached.contains(&Point::LocalSegmentRollover.name().to_string()));
    assert!(pair.unreached.contains(&Point::LocalRedoCompleted.name().to_string()));
    // Rates are the summed counters over the summed time.
    assert_eq!(merged.rates[0].steps_per_second, 100.0);
    assert_eq!(merged.rates[0].histories_per_second, 1.5);
    assert_eq!(merged.rates[1].steps_per_second, 200.0);
    let files: Vec<&str> = merged.merged_from.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(files, ["shard-0.json", "shard-1.json"]);
    assert_eq!(merged.merged_from[1].seeds, SeedPlan::Range { start: 3, end: 6 });
}

#[test]
fn a_point_reached_by_one_source_is_reached_in_the_merge() {
    let a = report(0, &[], 10);
    let mut b = report(3, &[], 10);
    let mut counts = Counts::default();
    counts.add(Point::LocalRedoCompleted, 7);
    b.families[1].add_coverage(&counts);
    assert!(a.families[1].unreached.contains(&Point::LocalRedoCompleted.name().to_string()));
    let merged = merge(&named(vec![a, b])).expect("merges");
    let pair = &merged.families[1];
    assert!(!pair.unreached.contains(&Point::LocalRedoCompleted.name().to_string()));
    assert_eq!(pair.coverage[Point::LocalRedoCompleted.name()].hits, 7);
}

#[test]
fn merged_failures_come_in_one_order_whatever_the_order_of_the_reports() {
    let mut a = report(0, &[(2, CheckName::Panic), (0, CheckName::ModelEquality)], 10);
    a.failures.push(failure("local+redb", 1, CheckName::DualWrite, "mirror behind"));
    let b = report(3, &[(5, CheckName::ModelEquality), (3, CheckName::Panic)], 10);
    let key = |m: &SoakJson| -> Vec<(String, u64)> {
        m.failures.iter().map(|f| (f.family.clone(), f.seed)).collect()
    };
    let ab = merge(&named(vec![a.clone(), b.clone()])).expect("merges");
    let ba = merge(&named(vec![b, a])).expect("merges");
    let want: Vec<(String, u64)> = [("memory", 0), ("memory", 2), ("memory", 3), ("memory", 5)]
        .into_iter()
        .chain([("local+redb", 1)])
        .map(|(f, s)| (f.to_string(), s))
        .collect();
    assert_eq!(key(&ab), want, "subjects in config order, then seeds");
    assert_eq!(key(&ba), want);
    let ab_json = serde_json::to_string(&ab.failures).expect("json");
    let ba_json = serde_json::to_string(&ba.failures).expect("json");
    assert_eq!(ab_json, ba_json);
}

#[test]
fn merge_refuses_other_configurations_a_repeated_source_and_nothing() {
    let a = report(0, &[], 10);
    let mut b = report(3, &[], 10);
    b.config.generator.ops_len = 50;
    let err = merge(&named(vec![a.clone(), b])).expect_err("different ops");
    assert!(err.contains("shard-1.json") && err.contains("config.generator"), "{err}");
    let mut c = report(3, &[], 10);
    c.config.faults = FaultMode::Swarm;
    let err = merge(&named(vec![a.clone(), c])).expect_err("different faults");
    assert!(err.contains("config.faults"), "{err}");
    let err = merge(&named(vec![a.clone(), a.clone()])).expect_err("the same source twice");
    assert!(err.contains("shard-1.json") && err.contains("shard-0.json"), "{err}");
    assert!(merge(&[]).is_err());
    // A merged report merges again, its sources carried over.
    let ab = merge(&named(vec![a, report(3, &[], 10)])).expect("merges");
    let again = merge(&[("m.json".to_string(), ab), ("c.json".to_string(), report(6, &[], 1))])
        .expect("a merged report merges");
    assert_eq!(again.merged_from.len(), 3);
    assert_eq!(again.seeds_run, 9);
}

#[test]
fn parse_reads_what_was_written_and_refuses_other_schemas() {
    let a = report(0, &[(1, CheckName::Panic)], 10);
    let text = serde_json::to_string_pretty(&a).expect("json");
    let back = parse(&text).expect("reads its own output");
    assert_eq!(serde_json::to_string_pretty(&back).expect("json"), text);
    let err = parse("{\"passed\": true}").expect_err("no version");
    assert!(err.contains("schema_version"), "{err}");
    let err = parse(&text.replace("\"schema_version\": 1", "\"schema_version\": 2"))
        .expect_err("version 2");
    assert!(err.contains("unknown schema_version 2"), "{err}");
    assert!(parse("not json").expect_err("garbage").contains("not JSON"));
    let err = parse("{\"schema_version\": 1}").expect_err("no fields");
    assert!(err.contains("not a soak report"), "{err}");
}

#[test]
fn the_page_has_a_matrix_row_per_subject_charts_and_escaped_failures() {
    let page = render(&report(0, &[(1, CheckName::ModelEquality)], 100));
    assert!(page.starts_with("<!DOCTYPE html>\n<html"), "{page}");
    assert!(page.ends_with("</html>\n"));
    for subject in ["memory", "local+redb"] {
        let row = format!("<tr><td>{subject}</td><td>3</td>");
        assert!(page.contains(&row), "no matrix row for {subject}");
    }
    for check in CheckName::ALL {
        assert!(page.contains(&format!("<th class=\"check\">{check}</th>")), "{check}");
    }
    assert!(page.contains("<svg "));
    assert!(page.contains("UNREACHED"));
    assert!(page.contains("entry 4: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(!page.contains("<script"), "text from the report must be escaped");
    assert!(!page.contains("http:") && !page.contains("https:"), "no network references");
    assert!(page.contains("--family &#39;memory&#39; --seed 1"), "the replay line");
    assert_eq!(page, render(&report(0, &[(1, CheckName::ModelEquality)], 100)));
}

#[test]
fn the_page_of_a_saved_report_is_the_page_of_the_report() {
    let a = report(0, &[(1, CheckName::ModelEquality)], 100);
    let saved = serde_json::to_string_pretty(&a).expect("json");
    assert_eq!(render(&parse(&saved).expect("parses")), render(&a));
}

#[test]
fn snapshot_of_a_small_report_page() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    let page = render(&report(0, &[(1, CheckName::ModelEquality)], 100));
    settings.bind(|| insta::assert_snapshot!("report_html_small", page));
}
