//! The named checks of DESIGN §7, one file each, every file opening with what its check
//! verifies, when it runs, and what it does not verify. The runner decides when to ask them
//! ([`crate::sim::engine::runner`]); what they verify lives here, apart from the engine.
//!
//! | check | file |
//! |---|---|
//! | `model_equality` | [`model_equality`] |
//! | `crash_atomicity` | [`crash_atomicity`] |
//! | `export_cut` | [`export_cut`] |
//! | `import_determinism` | [`import_determinism`] |
//! | `canonicality` | [`canonicality`] |
//! | `import_atomicity` | [`import_atomicity`] |
//! | `dual_write` | [`dual_write`] |
//! | `bad_images` | [`bad_images`] |
//! | `validator_agreement` | [`validator_agreement`] |
//! | `migration` | [`migration`] |
//! | `determinism` | [`determinism`] |
//! | `panic` | [`panic`](mod@panic) |
//! | `read_only` | [`read_only`] |
//! | `single_writer` | [`single_writer`] |
//! | `braft_view` | [`braft_view`] |
//! | `inspect_agreement` | [`inspect_agreement`] |
//! | `image_views` | [`image_views`] |
//! | `hostile_dirs` | [`hostile_dirs`] |
//!
//! This file holds what they share: [`CheckName`] and the failure record a check produces,
//! which errors an injected fault excuses ([`refusal`], [`injected`]), and the fresh disks
//! and instances the image checks import into.
//!
//! A harness failure is not an `Error`: it is a [`CheckFailure`] naming the check that caught
//! it, where (family, seed, step, op) and what differed, in words.

pub mod bad_images;
pub mod braft_view;
pub mod canonicality;
pub mod crash_atomicity;
pub mod determinism;
pub mod dual_write;
pub mod edge_images;
pub mod export_cut;
pub mod hostile_dirs;
pub mod image_views;
pub mod import_atomicity;
pub mod import_determinism;
pub mod inspect_agreement;
pub mod migration;
pub mod model_equality;
pub mod panic;
pub mod read_only;
pub mod single_writer;
pub mod validator_agreement;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::contract::{Family, RaftStorage, StorageError};
use crate::dual_write::DualWriteError;
use crate::vfs::{SimDisk, SimDiskOptions, VfsErrorKind};

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
    /// The equivalence validator, `qk compare` and `image diff` agree with the states'
    /// digests and first difference.
    ValidatorAgreement,
    /// A migration keeps the source complete until cut-over, refuses steps it must refuse,
    /// and cuts over to a destination holding every acknowledged write.
    Migration,
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
    /// What real braft would load from a `local://` directory (an independent reader of
    /// braft's formats) equals what the family shows after crashes and reopens, and is an
    /// empty node or the whole image at every crash point of an import.
    BraftView,
    /// What `qk inspect` reports of a cleanly closed instance (the family's details) agrees
    /// with the state it holds, and inspecting changes nothing.
    InspectAgreement,
    /// What `qk image inspect` and the annotated hex dump show of an exported image agrees
    /// with the state it holds and with its bytes, whole and damaged.
    ImageViews,
    /// A `local://` directory with one semantic violation of braft's layout is refused with
    /// the typed error naming its file and offset (or read as documented) by both opens,
    /// without a panic, a write from the read-only open, or a change outside it.
    HostileDirs,
}

impl CheckName {
    /// Every check, in report order.
    pub const ALL: [CheckName; 18] = [
        CheckName::ModelEquality,
        CheckName::CrashAtomicity,
        CheckName::ExportCut,
        CheckName::ImportDeterminism,
        CheckName::Canonicality,
        CheckName::ImportAtomicity,
        CheckName::DualWrite,
        CheckName::BadImages,
        CheckName::ValidatorAgreement,
        CheckName::Migration,
        CheckName::Determinism,
        CheckName::Panic,
        CheckName::ReadOnly,
        CheckName::SingleWriter,
        CheckName::BraftView,
        CheckName::InspectAgreement,
        CheckName::ImageViews,
        CheckName::HostileDirs,
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
            CheckName::ValidatorAgreement => "validator_agreement",
            CheckName::Migration => "migration",
            CheckName::Determinism => "determinism",
            CheckName::Panic => "panic",
            CheckName::ReadOnly => "read_only",
            CheckName::SingleWriter => "single_writer",
            CheckName::BraftView => "braft_view",
            CheckName::InspectAgreement => "inspect_agreement",
            CheckName::ImageViews => "image_views",
            CheckName::HostileDirs => "hostile_dirs",
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

/// Whether an error is a family failing closed (corruption or an I/O error it passed on); a
/// dual-write pair's side failure is judged by the side's own error.
pub fn refusal(e: &StorageError) -> bool {
    matches!(
        side_cause(e),
        StorageError::Corruption(_) | StorageError::Vfs(_) | StorageError::Poisoned { .. }
    )
}

/// Whether `e` is an error the disk returned (EIO, ENOSPC) or the poisoning that follows
/// one: an open that writes (a database engine's crash repair, a new instance's creation)
/// may meet the faults of an honest but faulty plan and must report them, which is no bug.
pub fn injected(e: &StorageError) -> bool {
    let e = side_cause(e);
    matches!(e, StorageError::Vfs(v) if matches!(v.kind, VfsErrorKind::Io | VfsErrorKind::NoSpace))
        || matches!(e, StorageError::Poisoned { .. })
}

/// The side's own error inside a dual-write side failure; `e` itself otherwise.
fn side_cause(e: &StorageError) -> &StorageError {
    match e {
        StorageError::DualWrite(DualWriteError::SideFailed { cause, .. }) => side_cause(cause),
        other => other,
    }
}

/// Counters of the image checks run when one export finishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageCheckStats {
    /// Images exported and checked.
    pub exports: u64,
    /// Imports made (good, corrupted and crashed).
    pub imports: u64,
}

/// A fresh, fault-free simulated disk for an image check's import.
pub(crate) fn fresh_import_disk(seed: u64) -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed, ..SimDiskOptions::default() })
}

/// Where the image checks put the instance they import into.
const IMPORT_LOCATION: &str = "import";

/// An instance of `family` at [`IMPORT_LOCATION`] on `disk` (empty on a fresh disk).
fn open_import(
    family: &Arc<dyn Family>,
    disk: &Arc<SimDisk>,
) -> Result<Box<dyn RaftStorage>, String> {
    family.open(IMPORT_LOCATION, disk.clone()).map_err(|e| format!("opening a fresh instance: {e}"))
}
