//! `qk soak` end to end: exit codes, the summary, the JSON report, and a planted bug caught
//! with a replay line that reproduces it.

use std::process::Command;

fn qk(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qk")).args(args).output().expect("qk runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clean_soak_exits_zero_with_a_summary() {
    // Every family and every dual-write pair, briefly (the per-family tests run the rest).
    let (code, out, err) = qk(&["soak", "--seeds", "0..3", "--ops", "60"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("family"), "no summary table:\n{out}");
    for subject in ["memory", "local", "redb", "local+redb", "redb+local"] {
        assert!(out.contains(subject), "{subject} missing:\n{out}");
    }
    assert!(out.contains("3 seeds"), "seed count missing:\n{out}");
    assert!(out.contains("all checks held"), "{out}");
}

#[test]
fn seconds_mode_stops_and_passes() {
    let (code, out, _) = qk(&["soak", "--seconds", "0.5", "--family", "memory"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all checks held"), "{out}");
}

#[test]
fn planted_bug_exits_one_with_a_replay_line_that_reproduces_it() {
    let (code, out, _) =
        qk(&["soak", "--family", "memory", "--seeds", "0..10", "--planted", "drop-entry"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CHECK   model_equality"), "{out}");
    let replay = out
        .lines()
        .find_map(|l| l.strip_prefix("REPLAY  "))
        .unwrap_or_else(|| panic!("no replay line:\n{out}"));
    let args: Vec<&str> =
        replay.split(" -- ").nth(1).expect("cargo run ... -- args").split(' ').collect();
    assert!(args.contains(&"--seed") && args.contains(&"drop-entry"), "{replay}");
    let (again, out2, _) = qk(&args);
    assert_eq!(again, 1, "replaying {replay} did not fail again:\n{out2}");
    assert!(out2.contains("1 failed histories"), "{out2}");
}

#[test]
fn a_failure_report_prints_the_shrunk_fault_plan() {
    // Seed 4's swarm plan has five faults; a dropped entry needs none of them.
    let args = ["soak", "--family", "local", "--seed", "4", "--faults", "swarm"];
    let (code, out, _) =
        qk(&[&args[..], &["--planted", "drop-entry", "--no-regressions"]].concat());
    assert_eq!(code, 1, "{out}");
    let original = out.lines().find_map(|l| l.strip_prefix("FAULTS  ")).expect("FAULTS line");
    assert!(original.contains("misdirect(p="), "{out}");
    let shrunk =
        out.lines().find_map(|l| l.strip_prefix("SHRUNK FAULTS  ")).expect("SHRUNK FAULTS line");
    assert!(shrunk.starts_with("none (removed fsync_error, "), "{out}");
}

#[test]
fn every_planted_bug_is_caught() {
    for bug in [
        "drop-entry",
        "forget-vote",
        "truncate-suffix-off-by-one",
        "flip-snapshot-byte",
        "export-cut-off-by-one",
        "import-not-atomic",
        "import-stamps-counter",
        "import-lists-files-twice",
        "truncate-suffix-panics",
    ] {
        let args =
            ["soak", "--family", "memory", "--seeds", "0..20", "--planted", bug, "--no-shrink"];
        let (code, out, _) = qk(&args);
        assert_eq!(code, 1, "planted bug {bug} was not caught:\n{out}");
    }
}

/// `padding-by-open-count` writes what depends on how many instances were opened before:
/// a plain soak cannot tell, `--check-determinism` can, and its replay line (which keeps the
/// flag) fails again on its own.
#[test]
fn determinism_bug_is_caught_only_with_check_determinism_and_replays() {
    let args = ["soak", "--family", "memory", "--seeds", "0..10", "--no-regressions"];
    let planted = ["--planted", "padding-by-open-count"];
    let (code, out, _) = qk(&[&args[..], &planted].concat());
    assert_eq!(code, 0, "a soak without --check-determinism noticed it:\n{out}");
    let (code, out, _) = qk(&[&args[..], &planted, &["--check-determinism"]].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CHECK   determinism"), "{out}");
    assert!(out.contains("failures by check: memory: determinism"), "{out}");
    let replay = out
        .lines()
        .find_map(|l| l.strip_prefix("REPLAY  "))
        .unwrap_or_else(|| panic!("no replay line:\n{out}"));
    let args: Vec<&str> =
        replay.split(" -- ").nth(1).expect("cargo run ... -- args").split(' ').collect();
    assert!(args.contains(&"--check-determinism"), "{replay}");
    let (again, out2, _) = qk(&[&args[..], &["--no-regressions"]].concat());
    assert_eq!(again, 1, "replaying {replay} did not fail again:\n{out2}");
    assert!(out2.contains("CHECK   determinism"), "{out2}");
}

/// A panic inside a family call is reported as the `panic` check, naming the panic, and the
/// panic hook stays quiet unless `QK_SHOW_PANICS` is set.
#[test]
fn panic_bug_is_reported_with_its_text_and_a_quiet_hook() {
    let args =
        ["soak", "--family", "local", "--seeds", "0..3", "--planted", "truncate-suffix-panics"];
    let (code, out, err) = qk(&[&args[..], &["--no-regressions"]].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CHECK   panic"), "{out}");
    let text = "panic: index out of bounds: the len is 6 but the index is";
    assert!(out.contains(&format!("DIFF    {text}")), "{out}");
    assert!(out.contains("fails panic at step"), "shrunk history not failing:\n{out}");
    assert!(!err.contains("panicked"), "the panic hook is not quiet:\n{err}");
}

#[test]
fn json_report_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("report.json");
    let path_text = path.to_str().expect("utf-8 path");
    let (code, out, _) =
        qk(&["soak", "--family", "memory", "--seeds", "0..5", "--json", path_text]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&path).expect("report written");
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(value["passed"], true);
    assert_eq!(value["seeds_run"], 5);
    assert_eq!(value["families"][0]["family"], "memory");
    assert_eq!(value["families"][0]["histories"], 5);
}

#[test]
fn an_ablated_soak_says_so_and_replays_ablated() {
    let (code, out, _) = qk(&[
        "soak",
        "--family",
        "memory",
        "--seeds",
        "0..10",
        "--planted",
        "drop-entry",
        "--ablate",
        "exports,torn-writes",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ABLATED (switched off): torn-writes,exports"), "{out}");
    let replay = out.lines().find_map(|l| l.strip_prefix("REPLAY  ")).expect("replay line");
    assert!(replay.contains(" --ablate torn-writes,exports"), "{replay}");
    let (code, _, err) = qk(&["soak", "--seed", "1", "--ablate", "torn-writes,nosuch"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown part \"nosuch\"") && err.contains("lost-set-len"), "{err}");
}

#[test]
fn crashes_during_recovery_find_a_repair_in_two_steps_and_only_they_do() {
    // Power losses only (no fault can fail the open between the two steps): a crash inside
    // an open is the one way to land between them. `local>memory` is a migration subject
    // whose source carries the bug: the migration driver's reopens crash too.
    for (family, seeds) in [("local", "0..120"), ("redb", "0..30"), ("local>memory", "0..120")] {
        let args = [
            "soak",
            "--family",
            family,
            "--faults",
            "none",
            "--seeds",
            seeds,
            "--planted",
            "repair-in-two-steps",
            "--no-shrink",
            "--fail-fast",
        ];
        let (code, out, _) = qk(&args);
        assert_eq!(code, 1, "{family}: nested crashes missed it:\n{out}");
        assert!(out.contains("CHECK   crash_atomicity"), "{out}");
        let (code, out, _) = qk(&[&args[..], &["--ablate", "recovery-crashes"]].concat());
        assert_eq!(code, 0, "{family}: found without crashes during recovery:\n{out}");
    }
}

#[test]
fn exhaustive_nested_crashes_find_a_repair_in_two_steps_and_depth_zero_does_not() {
    // Every crash point of every crash state's reopen: the one place a repair made in two
    // durable steps can be interrupted. Without nesting, exhaustive mode checks each crash
    // state's reopen only and passes.
    let args = [
        "soak",
        "--family",
        "local",
        "--faults",
        "none",
        "--exhaustive",
        "--seeds",
        "0..6",
        "--planted",
        "repair-in-two-steps",
        "--no-shrink",
        "--fail-fast",
    ];
    let (code, out, _) = qk(&args);
    assert_eq!(code, 1, "nested exhaustive crashes missed it:\n{out}");
    assert!(out.contains("CHECK   crash_atomicity") && out.contains("during its reopen"), "{out}");
    let (code, out, _) = qk(&[&args[..], &["--recovery-depth", "0"]].concat());
    assert_eq!(code, 0, "found without nesting:\n{out}");
    assert!(out.contains("(0 of them power losses inside a reopen)"), "{out}");
    let (code, out, _) = qk(&["soak", "--family", "local", "--exhaustive", "--seeds", "0..2"]);
    assert_eq!(code, 0, "{out}");
    let nested = out.lines().find(|l| l.starts_with("exhaustive mode: ")).unwrap();
    assert!(!nested.contains("(0 of them"), "depth 1 is the default: {nested}");
    assert_eq!(qk(&["soak", "--exhaustive", "--recovery-depth", "4", "--seed", "1"]).0, 2);
}

#[test]
fn redb_declares_single_byte_writes_atomic_and_only_its_writes_tear_inside_a_sector() {
    // redb's design assumes single-byte atomicity; its open declares it, so the soak tears
    // its writes inside sectors (where its header, commit slots and god byte live). local
    // declares nothing finer than a sector, and its writes never tear finer.
    let (code, out, _) = qk(&["soak", "--family", "redb", "--seeds", "0..40", "--no-shrink"]);
    assert_eq!(code, 0, "{out}");
    let line = out.lines().find(|l| l.starts_with("sub-sector tears: ")).unwrap_or_else(|| {
        panic!("redb's writes were never torn inside a sector:\n{out}");
    });
    let n: u64 = line["sub-sector tears: ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 10, "{line}");
    let (code, out, _) = qk(&["soak", "--family", "local", "--seeds", "0..40", "--no-shrink"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("sub-sector tears"), "local declared nothing finer:\n{out}");
}

#[test]
fn bad_usage_exits_two() {
    assert_eq!(qk(&["soak", "--family", "nosuch", "--seed", "1"]).0, 2);
    assert_eq!(qk(&["soak", "--seeds", "5..2"]).0, 2);
    assert_eq!(qk(&["soak", "--shard", "3/2", "--seed", "1"]).0, 2);
    assert_eq!(qk(&["nosuch"]).0, 2);
}

#[test]
fn shards_split_the_seed_space() {
    let (_, a, _) = qk(&["soak", "--family", "memory", "--seeds", "0..10", "--shard", "0/2"]);
    let (_, b, _) = qk(&["soak", "--family", "memory", "--seeds", "0..10", "--shard", "1/2"]);
    assert!(a.contains("5 seeds") && b.contains("5 seeds"), "{a}\n{b}");
}

#[test]
fn selftest_catches_every_planted_bug() {
    let (code, out, err) = qk(&["selftest"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every planted bug was caught"), "{out}");
    assert!(out.contains("every check caught a bug planted for it (18 checks)"), "{out}");
    assert!(!out.contains("NOT"), "{out}");
    assert!(err.is_empty(), "selftest wrote to stderr (a noisy panic hook?):\n{err}");
    // The row of braft's view: only the local family carries that bug.
    assert!(
        out.lines().any(|l| l.starts_with("unpadded-segment-names")
            && l.contains(" local ")
            && l.contains("braft_view")),
        "{out}"
    );
    // The two checks proven last: each row names its bug, a family and the check.
    for (bug, check) in
        [("padding-by-open-count", "determinism"), ("truncate-suffix-panics", "panic")]
    {
        for family in ["memory", "local", "redb"] {
            let row = out
                .lines()
                .find(|l| l.split_whitespace().take(2).eq([bug, family]))
                .unwrap_or_else(|| panic!("no row for {bug} on {family}:\n{out}"));
            assert_eq!(row.split_whitespace().nth(2), Some(check), "{row}");
        }
    }
    // The hostile directories: only the local family's layout is planted.
    assert!(
        out.lines().any(|l| l.split_whitespace().take(3).eq([
            "accepts-hostile-dirs",
            "local",
            "hostile_dirs"
        ])),
        "{out}"
    );
    // The read-only, lock and inspect checks, on the families that have files to harm and
    // lock, and details to report.
    for (bug, check) in [
        ("read-only-open-writes", "read_only"),
        ("no-lock", "single_writer"),
        ("inspect-miscounts-entries", "inspect_agreement"),
        ("repair-in-two-steps", "crash_atomicity"),
    ] {
        for family in ["local", "redb"] {
            let row = out
                .lines()
                .find(|l| l.split_whitespace().take(2).eq([bug, family]))
                .unwrap_or_else(|| panic!("no row for {bug} on {family}:\n{out}"));
            assert_eq!(row.split_whitespace().nth(2), Some(check), "{row}");
        }
    }
}

#[test]
fn replay_prints_trace_and_verdict() {
    let (code, out, _) = qk(&["replay", "--seed", "3", "--family", "memory"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("#0 ") && out.contains("VERDICT all checks held"), "{out}");
    let (code, out, _) =
        qk(&["replay", "--seed", "3", "--family", "memory", "--planted", "drop-entry"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("VERDICT check model_equality failed"), "{out}");
    let regression =
        concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/regressions/all-index-limit.json");
    let (code, out, _) = qk(&["replay", regression, "--family", "memory"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("STORY"), "{out}");
    assert_eq!(qk(&["replay", "/nonexistent.json"]).0, 2);
}

#[test]
fn replay_reads_an_ops_file() {
    use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig};
    use quorumkit_storage::sim::engine::op_text::format_op_lines;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.ops");
    let ops = generate(3, &GeneratorConfig { ops_len: 40, ..GeneratorConfig::default() });
    std::fs::write(&path, format!("# seed 3\n{}", format_op_lines(&ops))).expect("written");
    let file = path.to_str().expect("utf-8 path");
    let (code, out, _) = qk(&["replay", file, "--family", "memory"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OPS     40") && out.contains("VERDICT all checks held"), "{out}");
    let (code, out, _) = qk(&["replay", file, "--family", "memory", "--planted", "drop-entry"]);
    assert_eq!(code, 1, "{out}");
    let (code, _, err) = qk(&["replay", file]);
    assert_eq!(code, 2);
    assert!(err.contains("--family"), "{err}");
    std::fs::write(&path, "reopen()\nappend(n=3)\n").expect("written");
    let (code, _, err) = qk(&["replay", file, "--family", "memory"]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn inspect_summarises_an_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("local://{}", dir.path().join("x").display());
    let vfs: quorumkit_storage::vfs::VfsHandle =
        std::sync::Arc::new(quorumkit_storage::vfs::OsVfs::new());
    drop(quorumkit_storage::families::Registry::builtin().open(&uri, vfs).expect("open"));
    let (code, out, _) = qk(&["inspect", &uri]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("log       [1, 0]") && out.contains("meta      term 1"), "{out}");
    let (code, out, _) = qk(&["inspect", &uri, "--json"]);
    assert_eq!(code, 0, "{out}");
    let value: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(value["meta"]["term"], 1);
    assert_eq!(value["read_only"]["repairs"], serde_json::json!([]));
    assert_eq!(qk(&["inspect", "nosuch://x"]).0, 2);
    let (code, _, err) = qk(&["inspect", "memory://x"]);
    assert_eq!(code, 2);
    assert!(err.contains("always finds it empty"), "{err}");
}

/// Each lost-sync bug, on each durable family, is caught first by `crash_atomicity`, and the
/// JSON report says exactly which checks failed which histories. A lost fsync in redb also
/// tears an import into it by a power loss, and so does a lost fsync or directory sync in
/// local (whose import commits by renaming directories), so `import_atomicity` catches those
/// too — when a seed lives long enough to export: under lost directory syncs in local nearly
/// every seed fails `crash_atomicity` at its first power loss, so whether one of these ten
/// reaches an import first depends on how many disk operations an open makes (the lock's
/// among them); there `import_atomicity` is allowed, not required.
#[test]
fn lost_syncs_are_caught_on_durable_families() {
    // (bug, family, checks that must catch it, checks that may catch it too)
    let expected: [(&str, &str, &[&str], &[&str]); 4] = [
        ("skip-fsync", "local", &["crash_atomicity", "import_atomicity"], &[]),
        ("skip-fsync", "redb", &["crash_atomicity", "import_atomicity"], &[]),
        ("skip-dir-sync", "local", &["crash_atomicity"], &["import_atomicity"]),
        ("skip-dir-sync", "redb", &["crash_atomicity"], &[]),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (bug, family, required, optional) in expected {
        let checks: Vec<&str> = required.iter().chain(optional).copied().collect();
        let path = dir.path().join(format!("{bug}-{family}.json"));
        let path_text = path.to_str().expect("utf-8 path");
        let args = ["soak", "--family", family, "--seeds", "0..10", "--planted", bug];
        let more = ["--no-shrink", "--no-regressions", "--json", path_text];
        let (code, out, _) = qk(&[&args[..], &more].concat());
        assert_eq!(code, 1, "{bug} on {family} was not caught:\n{out}");
        let text = std::fs::read_to_string(&path).expect("report written");
        let report: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let summary = &report["families"][0];
        assert_eq!(summary["family"], family, "{bug}: {summary}");
        let by_check = summary["failures_by_check"].as_object().expect("a map");
        let caught_by: Vec<&str> = by_check.keys().map(String::as_str).collect();
        // Which of the allowed checks also catch it in ten seeds depends on the histories the
        // default generator draws; crash_atomicity always does.
        assert!(caught_by.contains(&"crash_atomicity"), "{bug} on {family}: {by_check:?}");
        assert!(caught_by.iter().all(|c| checks.contains(c)), "{bug} on {family}: {by_check:?}");
        let failures = report["failures"].as_array().expect("failures listed");
        let first = failures.first().unwrap_or_else(|| panic!("{bug} on {family}: none listed"));
        assert_eq!(first["failure"]["check"], "crash_atomicity", "{bug} on {family}: {first}");
        for f in failures {
            assert_eq!(f["family"], family, "{bug}: {f}");
            let check = f["failure"]["check"].as_str().expect("a check name");
            assert!(checks.contains(&check), "{bug} on {family}: {f}");
        }
    }
}

/// A fault must not eat a seed: under the default (honest) faults, seed 0 was refused at its
/// first open on 11 of the 12 default subjects, and about one seed in six on `local` and
/// `redb`, each counted as passed after 0 steps. On the soak's disks (per-step fault
/// streams) no fault fires while the fresh instance is created, so every seed does work;
/// the same disk under whole-run streams still shows the old refusal, counted as idle.
#[test]
fn no_seed_is_eaten_by_a_fault_at_its_first_open() {
    use quorumkit_storage::families::Registry;
    use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig};
    use quorumkit_storage::sim::engine::runner::{run_history_on_disk, RunOptions};
    use quorumkit_storage::sim::soak::{
        disk_seed_for, fault_plan_for, run_soak, FaultMode, SeedPlan, SoakConfig,
    };
    use quorumkit_storage::vfs::{FaultStreams, SimDisk, SimDiskOptions};
    let registry = Registry::builtin();
    let families = registry.families().to_vec();
    let mut config = SoakConfig::new(families.clone(), SeedPlan::Range { start: 0, end: 12 });
    config.pairs =
        families.iter().flat_map(|p| families.iter().map(|m| (p.clone(), m.clone()))).collect();
    config.generator.ops_len = 12;
    let report = run_soak(&config, &mut || true, &mut |_, _| {});
    assert!(report.passed(), "{:?}", report.failures.first().map(|f| &f.failure));
    for summary in &report.families {
        // Some histories still end early as refusals (a reopen after an injected fault), but
        // every one of them ran ops first.
        assert_eq!(summary.stats.idle, 0, "{}: {summary:?}", summary.family);
        assert!(summary.stats.steps >= summary.histories, "{}: {summary:?}", summary.family);
    }
    // The old reading of the same seed: its honest plan refuses local's creation.
    let local = registry.family("local").expect("registered").clone();
    let disk = SimDisk::new(SimDiskOptions {
        seed: disk_seed_for(0),
        faults: fault_plan_for(0, FaultMode::Honest),
        fault_streams: FaultStreams::Run,
        ..SimDiskOptions::default()
    });
    let ops = generate(0, &GeneratorConfig { ops_len: 12, ..GeneratorConfig::default() });
    let outcome = run_history_on_disk(local, "soak/local-0", disk, &ops, RunOptions::default());
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert!(outcome.did_no_work(), "seed 0 under whole-run streams: {:?}", outcome.stats);
}

/// `qk replay` of a run that did no work says so, instead of an empty trace hash beside
/// "all checks held", and exits 2 (a run that checked nothing).
#[test]
fn replay_says_when_a_run_did_no_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("refused.json");
    // A file in the old form (whole-run fault streams): every write fails, so the fresh
    // instance is refused at its creation.
    let text = r#"{"story": "every write fails", "family": "local", "seed": null,
        "check": null, "ops": ["reopen"], "disk_seed": 1,
        "faults": {"write_error": {"probability": 1.0}}}"#;
    std::fs::write(&path, text).expect("written");
    let (code, out, err) = qk(&["replay", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 2, "a run that checked nothing is not a pass:\n{out}\n{err}");
    assert!(err.contains("nothing was checked"), "{err}");
    assert!(out.contains("VERDICT no work done"), "{out}");
    assert!(out.contains("refused at its creation") && !out.contains("all checks held"), "{out}");
}

#[test]
fn fail_fast_stops_at_the_first_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("report.json");
    let path_text = path.to_str().expect("utf-8 path");
    let args = ["soak", "--family", "memory", "--seeds", "0..20", "--planted", "drop-entry"];
    let common = ["--no-shrink", "--json", path_text];
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&path).expect("report")).expect("JSON")
    };
    let (code, out, _) = qk(&[&args[..], &common[..]].concat());
    assert_eq!(code, 1, "{out}");
    let all = read();
    let (code, out, _) = qk(&[&args[..], &common[..], &["--fail-fast"]].concat());
    assert_eq!(code, 1, "{out}");
    let fast = read();
    assert_eq!(fast["failures_total"], 1, "{fast}");
    assert!(all["failures_total"].as_u64() > Some(1), "{all}");
    assert!(fast["seeds_run"].as_u64() < all["seeds_run"].as_u64(), "{fast}\n{all}");
}
