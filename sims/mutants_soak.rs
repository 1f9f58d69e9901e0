//! The test cargo-mutants runs for every mutant (`scripts/mutants.sh`): the default soak of
//! the built `qk` binary over a fixed seed range, nothing else. A mutant is caught exactly
//! when the soak reports a failure (or times out), so the score measures what the harness
//! finds, not what hand-written unit tests pin.
//!
//! In the default `cargo test` it soaks one seed, 1 (an honest-fault seed; seed 0 is the
//! first media-fault seed): a smoke test of the default soak through the binary.
//! `scripts/mutants.sh` sets `QK_MUTANTS_SEEDS` (`A..B`) to the range each
//! mutant is judged by. Fixed seeds keep every mutant's verdict deterministic, which a
//! wall-clock budget would not.

use std::process::Command;

/// Seeds soaked unless `QK_MUTANTS_SEEDS` says otherwise (the plain `cargo test` run).
const DEFAULT_SEEDS: &str = "1..2";

#[test]
fn default_soak_finds_nothing() {
    let seeds = std::env::var("QK_MUTANTS_SEEDS").unwrap_or_else(|_| DEFAULT_SEEDS.to_string());
    let output = Command::new(env!("CARGO_BIN_EXE_qk"))
        .args(["soak", "--seeds", &seeds, "--no-shrink", "--no-regressions", "--fail-fast"])
        .output()
        .expect("run qk soak");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "qk soak --seeds {seeds} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("seeds"), "qk soak printed no summary:\n{stdout}\n{stderr}");
}
