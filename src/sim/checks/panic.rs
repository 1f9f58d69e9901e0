//! `panic` (DESIGN §7: a panic is a finding, not the end of the run).
//!
//! **What it verifies.** No call the runner makes into a family panics: contract calls, the
//! reads its comparisons make, opens and pair recoveries, the join of a mirror, pinning an
//! export, and reopening every crash state exhaustive mode enumerates. A panic is caught
//! ([`catch`]) and reported as a failed check named `panic` with the panic's text, and a
//! soak goes on with the next seed.
//!
//! **When.** Around each of those calls, on every step.
//!
//! **What not.** The image checks' own imports into fresh instances and the conformance
//! suite are not wrapped: a panic there fails the run (or the test) as any panic does.

/// Runs `body`, turning a panic into its text. The panic counts as caught
/// ([`crate::panics::caught_here`]), so `qk`'s quiet panic hook hides it.
pub fn catch<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    crate::panics::catch(body).map_err(|panic| crate::panics::text(&panic))
}
