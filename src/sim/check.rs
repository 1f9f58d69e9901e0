//! Check names and the failure record a check produces.
//!
//! A harness failure is not an `Error`: it is a [`CheckFailure`] naming the check that caught
//! it, where (family, seed, step, op) and what differed, in words.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The named checks of DESIGN §7. Names are stable: reports and regression files use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// After every step the instance equals the model (state, and success/failure of the
    /// call).
    ModelEquality,
    /// After a crash and reopen the state is one the atomicity table and fault model allow.
    CrashAtomicity,
    /// An export interleaved with mutations equals the model at its cut.
    ExportCut,
    /// One image imported into two empty instances gives equivalent (byte-identical) results.
    ImportDeterminism,
    /// Every family exports the same content bytes for the same state.
    Canonicality,
    /// A crash at any point of an import leaves the destination empty or complete.
    ImportAtomicity,
    /// Both sides of a dual-write pair equal the model.
    DualWrite,
    /// Bad images are rejected and leave the destination empty.
    BadImages,
    /// The same seed gives the same trace twice.
    Determinism,
    /// A panic inside a family or the harness.
    Panic,
    /// A read-only open issues no mutating disk operation and shows the state a read-write
    /// open then recovers.
    ReadOnly,
    /// While an instance is open read-write, a second read-write open (and a read-only one)
    /// is refused by its lock, having changed nothing.
    SingleWriter,
}

impl CheckName {
    /// Every check, in report order.
    pub const ALL: [CheckName; 12] = [
        CheckName::ModelEquality,
        CheckName::CrashAtomicity,
        CheckName::ExportCut,
        CheckName::ImportDeterminism,
        CheckName::Canonicality,
        CheckName::ImportAtomicity,
        CheckName::DualWrite,
        CheckName::BadImages,
        CheckName::Determinism,
        CheckName::Panic,
        CheckName::ReadOnly,
        CheckName::SingleWriter,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::ModelEquality => "model_equality",
            CheckName::CrashAtomicity => "crash_atomicity",
            CheckName::ExportCut => "export_cut",
            CheckName::ImportDeterminism => "import_determinism",
            CheckName::Canonicality => "canonicality",
            CheckName::ImportAtomicity => "import_atomicity",
            CheckName::DualWrite => "dual_write",
            CheckName::BadImages => "bad_images",
            CheckName::Determinism => "determinism",
            CheckName::Panic => "panic",
            CheckName::ReadOnly => "read_only",
            CheckName::SingleWriter => "single_writer",
        }
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFailure {
    /// The check that failed.
    pub check: CheckName,
    /// The family under test.
    pub family: String,
    /// Index of the op being applied (0-based) when the check failed.
    pub step: usize,
    /// That op, in its one-line text form.
    pub op: String,
    /// What differed, in words.
    pub difference: String,
    /// The last lines of the run's trace.
    pub trace_tail: Vec<String>,
    /// The last lines of the simulated disk's own trace (empty off a simulated disk).
    #[serde(default)]
    pub disk_trace_tail: String,
}

impl CheckFailure {
    /// The `determinism` failure: two runs of `seed` on `family`, a history of `steps` ops,
    /// left different trace hashes.
    pub fn nondeterministic(family: String, seed: u64, steps: usize, a: &str, b: &str) -> Self {
        CheckFailure {
            check: CheckName::Determinism,
            family,
            step: steps,
            op: "end of history".to_string(),
            difference: format!("two runs of seed {seed} gave trace hashes {a} and {b}"),
            trace_tail: Vec::new(),
            disk_trace_tail: String::new(),
        }
    }
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "CHECK   {}", self.check)?;
        writeln!(f, "FAMILY  {}", self.family)?;
        writeln!(f, "STEP    {} ({})", self.step, self.op)?;
        writeln!(f, "DIFF    {}", self.difference)?;
        writeln!(f, "TRACE (last {} lines)", self.trace_tail.len())?;
        for line in &self.trace_tail {
            writeln!(f, "  {line}")?;
        }
        if !self.disk_trace_tail.is_empty() {
            writeln!(f, "DISK TRACE (last lines)")?;
            for line in self.disk_trace_tail.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}
