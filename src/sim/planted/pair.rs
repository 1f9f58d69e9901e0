//! [`PlantedPairFamily`]: dual-write pairs with a [`PlantedDualBug`], over a correct
//! [`DualWrite`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::contract::{Family, ImportSink, RaftStorage, SnapshotWriter, StateView, StorageResult};
use crate::delegate::{delegate_raft_storage, delegate_state_view, mutations_as_actions};
use crate::dual_write::{bootstrap_into, DualFamily, DualWrite, Recovery, Sides};
use crate::families::memory::MemoryStorage;
use crate::sim::checks::CheckName;
use crate::sim::engine::apply::apply_action;
use crate::sim::engine::ops::Action;
use crate::sim::engine::subject::{tuned, PairFamily, PairInstance};
use crate::tunables::Tunables;
use crate::vfs::VfsHandle;

/// Which dual-write bug a [`PlantedPairFamily`] carries. Each must be caught by the
/// `dual_write` check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedDualBug {
    /// A mutation is acknowledged once the primary has it; the mirror gets it only with the
    /// next call (acknowledging before the mirror has even been written).
    AckBeforeMirror,
    /// A mutation is acknowledged while the mirror holds it in a volatile write buffer (its
    /// reads see it), flushed to the mirror instance every [`MIRROR_BUFFER_LEN`] mutations:
    /// acknowledging before the mirror is durable. Only a power loss or a restart shows it.
    MirrorNotDurable,
    /// `truncate_prefix` and `truncate_suffix` reach the primary only.
    SkipMirrorOnTruncate,
    /// `reset` reaches the primary only.
    SkipMirrorOnReset,
    /// The mirror joins without being bootstrapped: dual writes go into an empty mirror
    /// beside a primary that holds state.
    NeverBootstrapped,
}

impl PlantedDualBug {
    /// Every planted dual-write bug.
    pub const ALL: [PlantedDualBug; 5] = [
        PlantedDualBug::AckBeforeMirror,
        PlantedDualBug::MirrorNotDurable,
        PlantedDualBug::SkipMirrorOnTruncate,
        PlantedDualBug::SkipMirrorOnReset,
        PlantedDualBug::NeverBootstrapped,
    ];

    /// The check this bug is planted to trip.
    pub fn expected_check(self) -> CheckName {
        CheckName::DualWrite
    }

    /// Whether the bug can show on a pair with this mirror family: a volatile mirror is
    /// never durable, so losing its buffered writes is no bug there.
    pub fn applies_to(self, mirror: &dyn Family) -> bool {
        self != PlantedDualBug::MirrorNotDurable || mirror.durable()
    }

    /// The bug's kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            PlantedDualBug::AckBeforeMirror => "ack-before-mirror",
            PlantedDualBug::MirrorNotDurable => "mirror-not-durable",
            PlantedDualBug::SkipMirrorOnTruncate => "skip-mirror-on-truncate",
            PlantedDualBug::SkipMirrorOnReset => "skip-mirror-on-reset",
            PlantedDualBug::NeverBootstrapped => "never-bootstrapped",
        }
    }
}

/// A dual-write pair family whose pairs carry a planted bug.
pub struct PlantedPairFamily {
    inner: DualFamily,
    bug: PlantedDualBug,
}

impl PlantedPairFamily {
    /// Pairs of `primary` and `mirror` with `bug`.
    pub fn new(primary: Arc<dyn Family>, mirror: Arc<dyn Family>, bug: PlantedDualBug) -> Self {
        PlantedPairFamily { inner: DualFamily::new(primary, mirror), bug }
    }

    fn wrap(&self, pair: DualWrite) -> StorageResult<Box<dyn PairInstance>> {
        let pair = match self.bug {
            PlantedDualBug::MirrorNotDurable => {
                let (primary, mirror) = pair.into_parts();
                DualWrite::unchecked(primary, Box::new(BufferedMirror::new(mirror)?))
            }
            _ => pair,
        };
        Ok(Box::new(PlantedPair { pair, bug: self.bug, pending: None }))
    }
}

impl PairFamily for PlantedPairFamily {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn primary_family(&self) -> Arc<dyn Family> {
        self.inner.primary_family().clone()
    }

    fn mirror_family(&self) -> Arc<dyn Family> {
        self.inner.mirror_family().clone()
    }

    fn open_primary(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        self.inner.open_primary(location, vfs)
    }

    fn join(
        &self,
        primary: Box<dyn RaftStorage>,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Box<dyn PairInstance>> {
        if self.bug != PlantedDualBug::NeverBootstrapped {
            return self.wrap(self.inner.join(primary, location, vfs)?);
        }
        let generation = match DualFamily::mirror_generation(location, &vfs)? {
            Some(g) => g.saturating_add(1),
            None => 0,
        };
        let place = DualFamily::mirror_location(location, generation);
        let mirror = self.inner.mirror_family().open(&place, vfs)?;
        self.wrap(DualWrite::unchecked(primary, mirror))
    }

    fn open_sides(&self, location: &str, vfs: VfsHandle) -> StorageResult<Sides> {
        self.inner.open_sides(location, vfs)
    }

    fn with_tunables(&self, primary: &Tunables, mirror: &Tunables) -> Arc<dyn PairFamily> {
        Arc::new(PlantedPairFamily::new(
            tuned(self.inner.primary_family(), primary),
            tuned(self.inner.mirror_family(), mirror),
            self.bug,
        ))
    }

    fn recover(
        &self,
        sides: Sides,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<(Box<dyn PairInstance>, Recovery)> {
        let (pair, recovery) = self.inner.recover_sides(sides, location, vfs)?;
        Ok((self.wrap(pair)?, recovery))
    }

    fn as_family(&self) -> Arc<dyn Family> {
        Arc::new(self.inner.clone())
    }
}

/// A pair with a planted bug over a correct [`DualWrite`].
struct PlantedPair {
    pair: DualWrite,
    bug: PlantedDualBug,
    /// The mutation the mirror has not been given yet ([`PlantedDualBug::AckBeforeMirror`]).
    pending: Option<Action>,
}

impl PlantedPair {
    /// Routes one mutation: through the pair, or around it as the bug says.
    fn mutate(&mut self, action: Action) -> StorageResult<()> {
        let skip_mirror = match self.bug {
            PlantedDualBug::AckBeforeMirror => true,
            PlantedDualBug::SkipMirrorOnTruncate => {
                matches!(action, Action::TruncatePrefix(_) | Action::TruncateSuffix(_))
            }
            PlantedDualBug::SkipMirrorOnReset => matches!(action, Action::Reset(_)),
            PlantedDualBug::MirrorNotDurable | PlantedDualBug::NeverBootstrapped => false,
        };
        self.flush()?;
        if !skip_mirror {
            return apply_action(&mut self.pair, &action);
        }
        let (primary, _) = self.pair.sides_mut();
        apply_action(primary, &action)?;
        if self.bug == PlantedDualBug::AckBeforeMirror {
            self.pending = Some(action);
        }
        Ok(())
    }

    /// Gives the mirror the mutation it was owed.
    fn flush(&mut self) -> StorageResult<()> {
        if let Some(action) = self.pending.take() {
            let (_, mirror) = self.pair.sides_mut();
            apply_action(mirror, &action)?;
        }
        Ok(())
    }
}

impl PairInstance for PlantedPair {
    fn storage(&self) -> &dyn RaftStorage {
        self
    }

    fn storage_mut(&mut self) -> &mut dyn RaftStorage {
        self
    }

    fn mirror(&self) -> &dyn StateView {
        self.pair.mirror()
    }
}

delegate_state_view!(PlantedPair => pair);

impl RaftStorage for PlantedPair {
    delegate_raft_storage!(
        pair: family,
        begin_export,
        family_format_version,
        reserved_snapshot_names
    );

    mutations_as_actions!();

    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>> {
        self.flush()?;
        self.pair.begin_snapshot()
    }

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        self.flush()?;
        self.pair.begin_import()
    }
}

/// Mutations the buffered mirror of [`PlantedDualBug::MirrorNotDurable`] holds before it
/// writes them to its instance.
pub const MIRROR_BUFFER_LEN: usize = 4;

/// A mirror with a volatile write buffer ([`PlantedDualBug::MirrorNotDurable`]): mutations go
/// to an in-memory copy that reads see at once, and reach the real instance only every
/// [`MIRROR_BUFFER_LEN`] mutations (and before a snapshot or an import). A crash or a restart
/// loses the buffer.
struct BufferedMirror {
    /// The in-memory copy (primary: reads come from it) over the real mirror instance.
    copy: DualWrite,
    /// Acknowledged mutations not yet written to the instance.
    buffer: Vec<Action>,
}

impl BufferedMirror {
    fn new(instance: Box<dyn RaftStorage>) -> StorageResult<Self> {
        let mut copy: Box<dyn RaftStorage> = Box::new(MemoryStorage::new());
        bootstrap_into(instance.as_ref(), copy.as_mut(), &mut |_| {})?;
        Ok(BufferedMirror { copy: DualWrite::unchecked(copy, instance), buffer: Vec::new() })
    }

    fn mutate(&mut self, action: Action) -> StorageResult<()> {
        let (copy, _) = self.copy.sides_mut();
        apply_action(copy, &action)?;
        self.buffer.push(action);
        if self.buffer.len() >= MIRROR_BUFFER_LEN {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> StorageResult<()> {
        let (_, instance) = self.copy.sides_mut();
        for action in self.buffer.drain(..) {
            apply_action(&mut *instance, &action)?;
        }
        Ok(())
    }
}

delegate_state_view!(BufferedMirror => copy);

impl RaftStorage for BufferedMirror {
    delegate_raft_storage!(copy: begin_export, reserved_snapshot_names);

    fn family(&self) -> &'static str {
        self.copy.mirror().family()
    }

    mutations_as_actions!();

    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>> {
        self.flush()?;
        self.copy.begin_snapshot()
    }

    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        self.flush()?;
        self.copy.begin_import()
    }
}
