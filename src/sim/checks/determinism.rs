//! `determinism` (DESIGN §7: one seed reproduces a run exactly).
//!
//! **What it verifies.** Two runs of one seed on one subject give the same trace hash
//! ([`compare_runs`]): the same history, the same calls and results, the same power losses
//! with the same pending disk operations. A family whose behaviour depends on anything but
//! the seed (a process-global counter, the clock, hash-map order) fails here.
//!
//! **When.** With `qk soak --check-determinism`, after every seed that passed its first run;
//! in `qk selftest` for the bug planted for this check, on every seed.
//!
//! **What not.** A single run cannot see it: a plain soak only runs each seed once. The
//! trace covers what the runner sees (calls, results, disk traces after power losses), not
//! the bytes a family wrote where no check looks.

use crate::sim::checks::{CheckFailure, CheckName};

/// The `determinism` failure when two runs of `seed` on `family` (a history of `steps`
/// ops) left different trace hashes `first` and `second`; `None` when they agree.
pub fn compare_runs(
    family: String,
    seed: u64,
    steps: usize,
    first: &str,
    second: &str,
) -> Option<CheckFailure> {
    (first != second).then(|| CheckFailure {
        check: CheckName::Determinism,
        family,
        step: steps,
        op: "end of history".to_string(),
        difference: format!("two runs of seed {seed} gave trace hashes {first} and {second}"),
        trace_tail: Vec::new(),
        disk_trace_tail: String::new(),
    })
}
