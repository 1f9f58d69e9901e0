//! Typed errors of dual writing: a side that failed, a pair that diverged, a mirror that must
//! be bootstrapped again, and a pair that could not be formed (with its instances handed back).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::contract::{RaftStorage, StorageError};

/// One side of a dual-write pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The primary: the source of truth, read from, written first.
    Primary,
    /// The mirror: written second, kept equivalent to the primary.
    Mirror,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Primary => "primary",
            Side::Mirror => "mirror",
        })
    }
}

/// What went wrong with a dual-write pair.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DualWriteError {
    /// The mirror is not equivalent to the primary, so it was not bootstrapped from it (or it
    /// changed since): dual writes into it would mirror nothing useful.
    #[error("the mirror was not bootstrapped from the primary: {difference}")]
    NotBootstrapped {
        /// The first difference, primary first.
        difference: String,
    },
    /// One side failed a call (the pair is now diverged).
    #[error(
        "dual write {operation}: the {side} ({family}) failed: {cause}; the pair is diverged \
         until it is revalidated"
    )]
    SideFailed {
        /// The side that failed.
        side: Side,
        /// Its family's scheme.
        family: &'static str,
        /// The call (`append`, `publish`, ...).
        operation: &'static str,
        /// The side's own error.
        cause: Box<StorageError>,
    },
    /// A mutation on a pair that diverged earlier and was not revalidated since.
    #[error("the pair diverged ({since}); every mutation is refused until it is revalidated")]
    Diverged {
        /// What made it diverge.
        since: String,
    },
    /// A snapshot writer or import sink whose earlier call failed on one side; it cannot be
    /// published or committed.
    #[error("this {what} failed earlier on one side and cannot complete: {cause}")]
    Incomplete {
        /// `snapshot writer` or `import`.
        what: &'static str,
        /// The earlier failure.
        cause: String,
    },
    /// Recovery found a difference the repair rules cannot mend: the mirror must be
    /// bootstrapped again (into an empty instance).
    #[error("the mirror must be bootstrapped again: {reason}")]
    NeedsBootstrap {
        /// Why it cannot be repaired.
        reason: String,
    },
    /// A repair ran but the sides still differ (a family broke the contract during repair).
    #[error("repairing the mirror left it different from the primary: {difference}")]
    RepairIncomplete {
        /// The first difference that remains.
        difference: String,
    },
}

impl DualWriteError {
    /// The side a failure belongs to, when it names one.
    pub fn side(&self) -> Option<Side> {
        match self {
            DualWriteError::SideFailed { side, .. } => Some(*side),
            _ => None,
        }
    }
}

/// Wraps a side's failure of `operation` as [`DualWriteError::SideFailed`].
pub(crate) fn side_failed(
    side: Side,
    family: &'static str,
    operation: &'static str,
    cause: StorageError,
) -> StorageError {
    DualWriteError::SideFailed { side, family, operation, cause: Box::new(cause) }.into()
}

/// A pair that could not be formed or recovered: the error, and the two instances handed
/// back so the caller can roll back, repair by hand, or bootstrap a fresh mirror.
pub struct Unpaired {
    /// Why no pair was formed. A failure reading the mirror is a
    /// [`DualWriteError::SideFailed`] naming the mirror; a failure reading the primary is the
    /// primary's own error.
    pub error: StorageError,
    /// The primary.
    pub primary: Box<dyn RaftStorage>,
    /// The mirror.
    pub mirror: Box<dyn RaftStorage>,
}

impl Unpaired {
    /// Whether the remedy is a fresh mirror bootstrapped from the primary: the mirror differs
    /// beyond repair, or could not be read. `false` when the primary itself failed.
    pub fn needs_bootstrap(&self) -> bool {
        match &self.error {
            StorageError::DualWrite(DualWriteError::NeedsBootstrap { .. })
            | StorageError::DualWrite(DualWriteError::NotBootstrapped { .. })
            | StorageError::DualWrite(DualWriteError::RepairIncomplete { .. }) => true,
            StorageError::DualWrite(e) => e.side() == Some(Side::Mirror),
            _ => false,
        }
    }
}

impl fmt::Debug for Unpaired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unpaired")
            .field("error", &self.error)
            .field("primary", &self.primary.family())
            .field("mirror", &self.mirror.family())
            .finish()
    }
}

impl fmt::Display for Unpaired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no dual-write pair of {} and {}: {}",
            self.primary.family(),
            self.mirror.family(),
            self.error
        )
    }
}

impl std::error::Error for Unpaired {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
