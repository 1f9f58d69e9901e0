//! The repair rules: how a mirror that differs from its primary is brought back to it through
//! ordinary contract calls, or why it cannot be (see the module doc of `dual_write`).
//!
//! [`plan`] only reads (streaming, through the validator's parts); [`apply`] then makes the
//! calls. Planning first means a mirror beyond repair is left untouched.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::contract::{
    range_after_truncate_prefix, Index, Meta, RaftStorage, StateView, StorageResult,
};
use crate::validate::{entries_difference, meta_difference, snapshot_difference};

use super::bootstrap::{for_each_batch, for_each_chunk};

/// One contract call a repair makes on the mirror.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairStep {
    /// `truncate_prefix(first_kept)`: the mirror missed a prefix truncation.
    TruncatePrefix(Index),
    /// `truncate_suffix(last_kept)`: the mirror missed a suffix truncation.
    TruncateSuffix(Index),
    /// `reset(next)`: the mirror missed a reset (or the primary's log is empty).
    Reset(Index),
    /// `append` of the primary's entries `from..=to`: the mirror missed (part of) an append.
    Append {
        /// First index appended.
        from: Index,
        /// Last index appended.
        to: Index,
    },
    /// `save_meta` of the primary's term and vote: the mirror missed a meta save.
    SaveMeta(Meta),
    /// Publish of the primary's latest snapshot, streamed through the mirror's writer: the
    /// mirror missed a snapshot publish.
    PublishSnapshot {
        /// The snapshot's last included index.
        last_included_index: Index,
    },
}

impl fmt::Display for RepairStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepairStep::TruncatePrefix(i) => write!(f, "truncate_prefix({i})"),
            RepairStep::TruncateSuffix(i) => write!(f, "truncate_suffix({i})"),
            RepairStep::Reset(i) => write!(f, "reset({i})"),
            RepairStep::Append { from, to } => write!(f, "append({from}..={to})"),
            RepairStep::SaveMeta(m) => write!(f, "save_meta(term={})", m.term),
            RepairStep::PublishSnapshot { last_included_index } => {
                write!(f, "publish_snapshot(index={last_included_index})")
            }
        }
    }
}

/// What recovering or revalidating a pair found and did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// The sides were equivalent; nothing was done.
    Equivalent,
    /// The mirror differed within what the repair rules mend; these calls made it equal.
    Repaired {
        /// The calls made on the mirror, in order.
        steps: Vec<RepairStep>,
        /// The first difference found before repairing, primary first.
        difference: String,
    },
    /// The mirror was empty (a volatile mirror after a restart, or an import that did not
    /// complete) and was bootstrapped from the primary.
    Bootstrapped,
    /// The mirror could not be repaired (or opened) and a fresh one was bootstrapped from the
    /// primary in its place (only [`super::DualFamily`] does this: it owns the locations).
    Rebootstrapped {
        /// Why the old mirror was given up.
        reason: String,
    },
}

impl Recovery {
    /// A short name: `equivalent`, `repaired`, `bootstrapped`, `rebootstrapped`.
    pub fn name(&self) -> &'static str {
        match self {
            Recovery::Equivalent => "equivalent",
            Recovery::Repaired { .. } => "repaired",
            Recovery::Bootstrapped => "bootstrapped",
            Recovery::Rebootstrapped { .. } => "rebootstrapped",
        }
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recovery::Repaired { steps, difference } => {
                let steps: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
                write!(f, "repaired ({difference}) by {}", steps.join(", "))
            }
            Recovery::Rebootstrapped { reason } => write!(f, "rebootstrapped: {reason}"),
            other => f.write_str(other.name()),
        }
    }
}

/// The calls that make `mirror` equal to `primary`, or `Err(reason)` when the repair rules
/// cannot (the mirror must be bootstrapped again). Reads only.
pub(crate) fn plan(
    primary: &dyn StateView,
    mirror: &dyn StateView,
) -> StorageResult<Result<Vec<RepairStep>, String>> {
    let mut steps = Vec::new();
    if let Err(reason) = plan_log(primary, mirror, &mut steps)? {
        return Ok(Err(reason));
    }
    if meta_difference(primary, mirror)?.is_some() {
        steps.push(RepairStep::SaveMeta(primary.meta()?));
    }
    if let Some(difference) = snapshot_difference(primary, mirror)? {
        match primary.snapshot_meta()? {
            Some(meta) => steps.push(RepairStep::PublishSnapshot {
                last_included_index: meta.last_included_index,
            }),
            None => {
                return Ok(Err(format!(
                    "{difference}: the mirror holds a snapshot the primary does not, and no \
                     contract call retires a snapshot"
                )))
            }
        }
    }
    Ok(Ok(steps))
}

fn plan_log(
    primary: &dyn StateView,
    mirror: &dyn StateView,
    steps: &mut Vec<RepairStep>,
) -> StorageResult<Result<(), String>> {
    let (pf, pl) = (primary.first_index(), primary.last_index());
    let (mf, ml) = (mirror.first_index(), mirror.last_index());
    if (pf, pl) == (mf, ml) {
        return Ok(match entries_difference(primary, mirror, pf, pl)?.0 {
            None => Ok(()),
            Some(d) => Err(format!("{d}, within the same retained range")),
        });
    }
    if pl < pf {
        // The primary's log is empty: one reset gives the mirror exactly that.
        steps.push(RepairStep::Reset(pf));
        return Ok(Ok(()));
    }
    if mf > pf {
        return Ok(Err(format!(
            "retained range differs: [{pf}, {pl}] vs [{mf}, {ml}]: the mirror dropped entries \
             from {pf} that the primary retains"
        )));
    }
    // The entries both retain must agree: a missed truncation or append never changes them.
    let (from, to) = (mf.max(pf), ml.min(pl));
    if let (Some(d), _) = entries_difference(primary, mirror, from, to)? {
        return Ok(Err(format!("{d}, in the range both retain")));
    }
    let mut last = ml;
    if mf < pf {
        steps.push(RepairStep::TruncatePrefix(pf));
        last = range_after_truncate_prefix(mf, ml, pf).1;
    }
    // Now the mirror starts where the primary does (it started at or below it).
    if last > pl {
        steps.push(RepairStep::TruncateSuffix(pl));
    } else if last < pl {
        steps.push(RepairStep::Append { from: last + 1, to: pl });
    }
    Ok(Ok(()))
}

/// Makes the calls of a plan on `mirror`, reading what they need from `primary`.
pub(crate) fn apply(
    primary: &dyn StateView,
    mirror: &mut dyn RaftStorage,
    steps: &[RepairStep],
) -> StorageResult<()> {
    for step in steps {
        match step {
            RepairStep::TruncatePrefix(i) => mirror.truncate_prefix(*i)?,
            RepairStep::TruncateSuffix(i) => mirror.truncate_suffix(*i)?,
            RepairStep::Reset(i) => mirror.reset(*i)?,
            RepairStep::Append { from, to } => {
                for_each_batch(primary, *from, *to, &mut |batch| mirror.append(batch))?
            }
            RepairStep::SaveMeta(meta) => mirror.save_meta(meta)?,
            RepairStep::PublishSnapshot { .. } => republish(primary, mirror)?,
        }
    }
    Ok(())
}

/// Streams the primary's latest snapshot through a writer of the mirror and publishes it.
fn republish(primary: &dyn StateView, mirror: &mut dyn RaftStorage) -> StorageResult<()> {
    let Some(meta) = primary.snapshot_meta()? else { return Ok(()) };
    let files = primary.snapshot_files()?;
    let mut writer = mirror.begin_snapshot()?;
    for info in &files {
        writer.add_file(&info.path, &info.file_meta)?;
        for_each_chunk(primary, info, &mut |offset, chunk| {
            writer.write_file(&info.path, offset, chunk)
        })?;
    }
    writer.set_meta(meta);
    writer.publish()
}
