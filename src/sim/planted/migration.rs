//! [`PlantedMigrationBug`]: a node's migration with a planted bug, proving the `migration`
//! check bites. The migration driver (`crate::sim::engine::migration`) plants it: a node that
//! cuts over a pair it never validated (it takes the destination for its own storage and
//! drops the source), or a source that misses the mutations of the dual-write phase
//! ([`MutedSource`]: its mutations return Ok and do nothing while the pair dual-writes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::contract::{Entry, Index, Meta, RaftStorage, StorageResult};
use crate::delegate::{delegate_raft_storage, delegate_state_view};
use crate::sim::checks::CheckName;

/// Which migration bug is planted. Each must be caught by `migration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedMigrationBug {
    /// Cut-over asked of a pair still dual-writing, never validated, goes ahead.
    CutOverUnvalidated,
    /// While the pair dual-writes, the source acknowledges mutations it never makes.
    SourceMissesMutations,
}

impl PlantedMigrationBug {
    /// Every planted migration bug.
    pub const ALL: [PlantedMigrationBug; 2] =
        [PlantedMigrationBug::CutOverUnvalidated, PlantedMigrationBug::SourceMissesMutations];

    /// The check this bug is planted to trip.
    pub fn expected_check(self) -> CheckName {
        CheckName::Migration
    }

    /// The bug's kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            PlantedMigrationBug::CutOverUnvalidated => "migration-cut-over-unvalidated",
            PlantedMigrationBug::SourceMissesMutations => "migration-source-misses-mutations",
        }
    }
}

/// A source whose mutations do nothing (and return Ok) while `muted` is set.
pub struct MutedSource {
    inner: Box<dyn RaftStorage>,
    muted: Arc<AtomicBool>,
}

impl MutedSource {
    /// `inner`, muted whenever `muted` is set.
    pub fn new(inner: Box<dyn RaftStorage>, muted: Arc<AtomicBool>) -> Self {
        MutedSource { inner, muted }
    }

    fn muted(&self) -> bool {
        self.muted.load(Ordering::SeqCst)
    }
}

delegate_state_view!(MutedSource => inner);

impl RaftStorage for MutedSource {
    delegate_raft_storage!(
        inner: family,
        begin_snapshot,
        begin_export,
        begin_import,
        family_format_version
    );

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        if self.muted() {
            return Ok(());
        }
        self.inner.append(entries)
    }

    fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()> {
        if self.muted() {
            return Ok(());
        }
        self.inner.truncate_prefix(first_kept)
    }

    fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()> {
        if self.muted() {
            return Ok(());
        }
        self.inner.truncate_suffix(last_kept)
    }

    fn reset(&mut self, next: Index) -> StorageResult<()> {
        if self.muted() {
            return Ok(());
        }
        self.inner.reset(next)
    }

    fn save_meta(&mut self, meta: &Meta) -> StorageResult<()> {
        if self.muted() {
            return Ok(());
        }
        self.inner.save_meta(meta)
    }
}
