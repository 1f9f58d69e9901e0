//! The conventions every `qk` subcommand keeps, checked on the real binary: numeric flags
//! held to their documented ranges (exit 2, naming the flag and the range), a run that
//! checked nothing never passing, panics of the harness itself never silenced, shell
//! completions and man pages from the parser's own definitions, `--quiet`, `--version`, and
//! one exit-code rule (0 held, 1 a finding, 2 bad usage or unreadable input).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use quorumkit_storage::contract::Meta;
use quorumkit_storage::families::Registry;
use quorumkit_storage::image::format::{FORMAT_MAJOR, FORMAT_MINOR};
use quorumkit_storage::vfs::{OsVfs, VfsHandle};

#[path = "support/cli.rs"]
mod cli;
use cli::{qk, qk_env};

#[test]
fn out_of_range_numbers_are_usage_errors_naming_the_flag_and_its_range() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["soak", "--ops", "18446744073709551615"], "--ops", "1..=100000"),
        (&["soak", "--ops", "4294967296"], "--ops", "1..=100000"),
        (&["soak", "--ops", "0"], "--ops", "1..=100000"),
        (&["soak", "--seconds", "1e20"], "--seconds", "at most 2592000 (30 days)"),
        (&["soak", "--seconds", "0"], "--seconds", "more than 0"),
        (&["soak", "--seconds", "nan"], "--seconds", "more than 0"),
        (&["soak", "--exhaustive", "--max-ops", "0"], "--max-ops", "1..=1000"),
        (&["soak", "--exhaustive", "--subset-max", "13"], "--subset-max", "0..=12"),
        (&["soak", "--recovery-depth", "4"], "--recovery-depth", "0..=3"),
        (&["soak", "--seeds", "5..5"], "--seeds", "empty range 5..5"),
        (&["soak", "--seed", "18446744073709551616"], "--seed", "too large"),
        (&["soak", "--shard", "2/2"], "--shard", "need 0 <= I < N"),
        (&["selftest", "--seeds-max", "0"], "--seeds-max", "1..=1000000"),
        (&["replay", "--seed", "1", "--family", "memory", "--ops", "0"], "--ops", "1..=100000"),
    ];
    for (args, flag, range) in cases {
        let (code, out, err) = qk(args);
        assert_eq!(code, 2, "{args:?}: exit {code}\n{out}\n{err}");
        assert!(err.contains(&format!("'{flag} <")), "{args:?} does not name {flag}: {err}");
        assert!(err.contains(range), "{args:?} does not give the range {range:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} ran: {out}");
    }
}

#[test]
fn help_documents_every_range() {
    let (code, soak, _) = qk(&["soak", "--help"]);
    assert_eq!(code, 0);
    for range in ["1 to 100000", "at most 2592000 (30 days)", "1 to 1000", "0 to 12", "0 to 3"] {
        assert!(soak.contains(range), "qk soak --help lacks {range:?}:\n{soak}");
    }
    assert!(soak.contains("0 to 18446744073709551615"), "--seed's range:\n{soak}");
    let (_, replay, _) = qk(&["replay", "--help"]);
    assert!(replay.contains("1 to 100000"), "{replay}");
    let (_, selftest, _) = qk(&["selftest", "--help"]);
    assert!(selftest.contains("1 to 1000000"), "{selftest}");
}

#[test]
fn the_last_seed_runs_as_one_seed() {
    let args = ["soak", "--family", "memory", "--seed", "18446744073709551615", "--ops", "20"];
    let (code, out, err) = qk(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 seeds in") && out.contains("all checks held"), "{out}");
}

#[test]
fn a_soak_that_checked_nothing_exits_two() {
    // Shard 1 of 2 over seeds 0..1 runs no seed at all.
    let args = ["soak", "--family", "memory", "--seeds", "0..1", "--shard", "1/2"];
    let (code, out, err) = qk(&args);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("nothing was checked: no seed ran"), "{err}");
    // The same shard over seeds 0..2 runs seed 1 and passes.
    let (code, out, err) = qk(&["soak", "--family", "memory", "--seeds", "0..2", "--shard", "1/2"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!err.contains("nothing was checked"), "{err}");
}

#[test]
fn caught_family_panics_stay_quiet_unless_asked_for() {
    let args = ["soak", "--family", "memory", "--seeds", "0..10", "--planted"];
    let args = [&args[..], &["truncate-suffix-panics", "--no-shrink", "--no-regressions"]].concat();
    let (code, out, err) = qk(&args);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("CHECK   panic"), "the panic is reported as a finding:\n{out}");
    assert!(!err.contains("panicked"), "a caught panic reached stderr:\n{err}");
    let (code, out, err) = qk_env(&args, &[("QK_SHOW_PANICS", "1")]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("panicked at") && err.contains("index out of bounds"), "{err}");
}

/// The child half of [`a_panic_outside_the_harness_catch_is_shown`]: does nothing unless
/// that test runs it in a process of its own.
#[test]
fn panic_hook_child() {
    if std::env::var_os("QK_CONVENTIONS_PANIC_CHILD").is_none() {
        return;
    }
    quorumkit_storage::cli::quiet_panics();
    let caught = quorumkit_storage::panics::catch(|| panic!("hidden-marker: caught"));
    assert!(caught.is_err());
    panic!("shown-marker: a panic of the harness itself");
}

#[test]
fn a_panic_outside_the_harness_catch_is_shown() {
    let out = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "panic_hook_child", "--nocapture", "--test-threads=1"])
        .env("QK_CONVENTIONS_PANIC_CHILD", "1")
        .env_remove("QK_SHOW_PANICS")
        .output()
        .expect("the child runs");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the child's uncaught panic fails it:\n{text}");
    assert!(text.contains("shown-marker: a panic of the harness itself"), "{text}");
    assert!(!text.contains("hidden-marker"), "a caught panic was printed:\n{text}");
}

#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = qk(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for name in ["soak", "replay", "selftest", "inspect", "image", "compare", "migrate", "man"]
        {
            assert!(out.contains(name), "{shell} completions lack {name}:\n{out}");
        }
        assert!(out.contains("--subset-max"), "{shell} completions lack soak's flags");
    }
    let (code, _, err) = qk(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

#[test]
fn man_pages_come_from_the_same_definitions() {
    let (code, page, err) = qk(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.starts_with(".ie") || page.contains("\n.TH qk 1"), "{page}");
    assert!(page.contains(".TH qk 1"), "{page}");
    assert!(page.contains("soak") && page.contains("Exit codes"), "{page}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_text = dir.path().to_str().expect("utf-8 path");
    let (code, out, err) = qk(&["man", "--out", dir_text]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    for (file, title) in [
        ("qk.1", ".TH qk 1"),
        ("qk-soak.1", ".TH qk-soak 1"),
        ("qk-image-export.1", ".TH qk-image-export 1"),
    ] {
        let text = std::fs::read_to_string(dir.path().join(file)).expect(file);
        assert!(text.contains(title), "{file}:\n{text}");
    }
    let soak = std::fs::read_to_string(dir.path().join("qk-soak.1")).expect("qk-soak.1");
    assert!(soak.contains("subset\\-max") && soak.contains("0 to 12"), "{soak}");
    let missing = dir.path().join("missing");
    let (code, _, err) = qk(&["man", "--out", missing.to_str().expect("utf-8 path")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("qk man: writing pages into"), "{err}");
}

/// Whether `commit` names a commit of this checkout (`git cat-file -e COMMIT^{commit}`); a
/// checkout without git answers `None`.
fn names_a_commit(commit: &str) -> Option<bool> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let top = Command::new("git").args(["-C", dir, "rev-parse", "--show-toplevel"]).output();
    if !top.ok()?.status.success() {
        return None;
    }
    let spec = format!("{commit}^{{commit}}");
    let out = Command::new("git").args(["-C", dir, "cat-file", "-e", &spec]).output().ok()?;
    Some(out.status.success())
}

#[test]
fn version_names_the_crate_the_image_format_and_the_commit() {
    let (code, out, err) = qk(&["--version"]);
    assert_eq!(code, 0, "{err}");
    let format = format!("image format {FORMAT_MAJOR}.{FORMAT_MINOR}");
    let version = env!("CARGO_PKG_VERSION");
    // The commit this build was made from (a commit made while the tests run moves HEAD,
    // not the binary): the one build.rs handed the package, which names a commit here.
    let commit = env!("QK_GIT_COMMIT");
    let wanted = format!("qk {version} ({format}, commit {commit})");
    assert_eq!(out.trim(), wanted);
    match names_a_commit(commit) {
        Some(named) => assert!(named, "{commit} is not a commit of this checkout"),
        None => assert_eq!(commit, "unknown", "no git here, yet a commit was found"),
    }
}

#[test]
fn quiet_drops_the_chatter_and_keeps_findings() {
    let args = ["soak", "--family", "memory", "--seeds", "0..2", "--ops", "20"];
    let (code, loud, _) = qk(&args);
    assert_eq!(code, 0, "{loud}");
    assert!(loud.contains("qk soak: families memory"), "{loud}");
    let (code, out, err) = qk(&[&["--quiet"], &args[..]].concat());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("qk soak: families"), "the option header under --quiet:\n{out}");
    assert!(out.contains("2 seeds in") && out.contains("all checks held"), "{out}");
    // A finding is printed in full under --quiet (here as the subcommand's -q).
    let planted = ["soak", "--family", "memory", "--seeds", "0..10", "-q", "--no-regressions"];
    let (code, out, _) = qk(&[&planted[..], &["--planted", "drop-entry"]].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CHECK   model_equality") && out.contains("REPLAY"), "{out}");
    let replay = ["replay", "--seed", "3", "--family", "memory", "--ops", "20"];
    let (code, loud, _) = qk(&replay);
    assert_eq!(code, 0, "{loud}");
    assert!(loud.contains("\nTRACE\n"), "{loud}");
    let (code, out, _) = qk(&[&replay[..], &["--quiet"]].concat());
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("\nTRACE\n") && out.contains("VERDICT all checks held"), "{out}");
}

fn os() -> VfsHandle {
    Arc::new(OsVfs::new())
}

/// A `local://` instance at `dir` with term `term` and no vote.
fn instance(dir: &Path, term: u64) -> String {
    let uri = format!("local://{}", dir.display());
    let mut storage = Registry::builtin().open(&uri, os()).expect("a new instance");
    storage.save_meta(&Meta { term, voted_for: None }).expect("meta saved");
    uri
}

#[test]
fn one_exit_code_rule() {
    let (code, help, _) = qk(&["--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("Exit codes (every subcommand):"), "{help}");
    assert!(help.contains("1    a finding") && help.contains("2    bad usage"), "{help}");
    assert_eq!(qk(&[]).0, 2, "no subcommand");
    assert_eq!(qk(&["soak", "--no-such-flag"]).0, 2, "an unknown flag");

    let work = tempfile::tempdir().expect("tempdir");
    let at = |name: &str| work.path().join(name).to_str().expect("utf-8 path").to_string();
    let (a, b) = (instance(&work.path().join("a"), 3), instance(&work.path().join("b"), 4));
    let (code, out, err) = qk(&["compare", &a, &a]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = qk(&["compare", &a, &b]);
    assert_eq!(code, 1, "a difference is a finding: {out}{err}");

    // An image: exported, then damaged (a finding of `verify`), or missing (unreadable).
    let (code, _, err) = qk(&["image", "export", "--from", &a, "-o", &at("a.img")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(qk(&["image", "verify", &at("a.img")]).0, 0);
    let mut bytes = std::fs::read(at("a.img")).expect("image");
    bytes[20] ^= 1;
    std::fs::write(at("bad.img"), &bytes).expect("written");
    let (code, _, err) = qk(&["image", "verify", &at("bad.img")]);
    assert_eq!(code, 1, "a damaged image is what verify finds: {err}");
    let (code, _, err) = qk(&["image", "verify", &at("missing.img")]);
    assert_eq!(code, 2, "a missing image is unreadable input: {err}");

    // A directory whose term and vote are damaged cannot be opened: unreadable input for
    // every command that must open it.
    std::fs::write(work.path().join("a/raft_meta/raft_meta"), b"not a protobuf file")
        .expect("damaged");
    let refused: [Vec<&str>; 3] = [
        vec!["inspect", &a],
        vec!["compare", &a, &b],
        vec!["image", "export", "--from", &a, "-o", "-"],
    ];
    for args in refused {
        let (code, out, err) = qk(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("raft_meta"), "{args:?} does not name the file: {err}");
    }

    // Replay: a file that is not a regression, and one asking for a disk no one can make.
    std::fs::write(at("junk.json"), b"{").expect("written");
    let (code, _, err) = qk(&["replay", &at("junk.json")]);
    assert_eq!(code, 2, "{err}");
    let text = r#"{"story": "s", "family": "memory", "seed": null, "check": null,
        "ops": ["reopen"], "disk_seed": 1, "sector_size": 3}"#;
    std::fs::write(at("odd.json"), text).expect("written");
    let (code, _, err) = qk(&["replay", &at("odd.json")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sector_size 3 is not a power of two"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn replay_refuses_flags_a_file_does_not_use() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("regressions")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let first = files[0].to_str().expect("utf-8 path").to_string();
    let first = first.as_str();
    for flag in [["--mode", "raw"], ["--ops", "10"], ["--faults", "none"]] {
        let (code, _, stderr) = qk(&["replay", first, flag[0], flag[1]]);
        assert_eq!(code, 2, "{flag:?}: {stderr}");
        assert!(stderr.contains("cannot be used with"), "{flag:?}: {stderr}");
    }
    // A seed replay takes them, and a FILE replay takes what it does use.
    let (code, _, stderr) = qk(&["replay", "--seed", "2", "--family", "memory", "--ops", "10"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = qk(&["replay", first, "--quiet"]);
    assert_eq!(code, 0, "a regression passes: {stderr}");
    // A regression recorded for every family (`*`) replays on every subject.
    let every =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions/all-index-limit.json");
    let (code, stdout_all, stderr) = qk(&["replay", every.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let subjects = quorumkit_storage::sim::engine::subject::Subject::every(&Registry::builtin());
    assert_eq!(stdout_all.matches("\nFAMILY  ").count(), subjects.len(), "{stdout_all}");
    assert_eq!(stdout_all.matches("VERDICT all checks held").count(), subjects.len());
    assert!(!stdout.is_empty());
}
