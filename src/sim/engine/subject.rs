//! What a history runs against: a [`Subject`] is one family, a migration between two
//! (driven by [`crate::sim::engine::migration`]), or a dual-write pair of two
//! families driven through [`PairFamily`] (the primary alone, the join that bootstraps a
//! mirror from it, reopening with recovery) whose live instance is a [`PairInstance`] (the
//! contract, and the mirror for the `dual_write` check to read).

use std::borrow::Cow;
use std::sync::Arc;

use crate::contract::{Family, RaftStorage, StateView, StorageResult};
use crate::dual_write::{DualFamily, DualWrite, Recovery, Sides};
use crate::families::Registry;
use crate::sim::engine::migration::{with_steps, MigrationSubject};
use crate::sim::engine::ops::Op;
use crate::sim::engine::tunables::SubjectTunables;
use crate::tunables::Tunables;
use crate::vfs::VfsHandle;

/// A dual-write pair of families as the harness drives it: the primary alone, the join
/// (bootstrap of a mirror), and reopening with recovery.
pub trait PairFamily: Send + Sync {
    /// `primary+mirror`.
    fn name(&self) -> String;
    /// The primary's family.
    fn primary_family(&self) -> Arc<dyn Family>;
    /// The mirror's family.
    fn mirror_family(&self) -> Arc<dyn Family>;
    /// Opens the primary alone, before a mirror joins it.
    fn open_primary(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>>;
    /// A mirror joins `primary`: a fresh one, bootstrapped from it.
    fn join(
        &self,
        primary: Box<dyn RaftStorage>,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Box<dyn PairInstance>>;
    /// Reopens both sides of a joined pair, unpaired (so the mirror can be inspected before
    /// any repair).
    fn open_sides(&self, location: &str, vfs: VfsHandle) -> StorageResult<Sides>;
    /// Pairs reopened sides: validation and repair (or a fresh mirror).
    fn recover(
        &self,
        sides: Sides,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<(Box<dyn PairInstance>, Recovery)>;
    /// The pair as a plain family (opening recovers), for checks that reopen on forked disks.
    fn as_family(&self) -> Arc<dyn Family>;
    /// The same pair over its two families tuned with `primary` and `mirror`
    /// ([`Family::with_tunables`]).
    fn with_tunables(&self, primary: &Tunables, mirror: &Tunables) -> Arc<dyn PairFamily>;
}

/// `family` tuned with `tunables`, or `family` itself when it has no tunables.
pub fn tuned(family: &Arc<dyn Family>, tunables: &Tunables) -> Arc<dyn Family> {
    family.with_tunables(tunables).unwrap_or_else(|| family.clone())
}

/// A live pair as the harness sees it: the contract, and the mirror to check.
pub trait PairInstance: Send {
    /// The pair as a storage instance.
    fn storage(&self) -> &dyn RaftStorage;
    /// The pair as a storage instance, for mutations.
    fn storage_mut(&mut self) -> &mut dyn RaftStorage;
    /// The mirror, read directly.
    fn mirror(&self) -> &dyn StateView;
}

impl PairInstance for DualWrite {
    fn storage(&self) -> &dyn RaftStorage {
        self
    }

    fn storage_mut(&mut self) -> &mut dyn RaftStorage {
        self
    }

    fn mirror(&self) -> &dyn StateView {
        DualWrite::mirror(self)
    }
}

impl PairFamily for DualFamily {
    fn name(&self) -> String {
        DualFamily::name(self)
    }

    fn primary_family(&self) -> Arc<dyn Family> {
        DualFamily::primary_family(self).clone()
    }

    fn mirror_family(&self) -> Arc<dyn Family> {
        DualFamily::mirror_family(self).clone()
    }

    fn open_primary(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        DualFamily::open_primary(self, location, vfs)
    }

    fn join(
        &self,
        primary: Box<dyn RaftStorage>,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Box<dyn PairInstance>> {
        Ok(Box::new(DualFamily::join(self, primary, location, vfs)?))
    }

    fn open_sides(&self, location: &str, vfs: VfsHandle) -> StorageResult<Sides> {
        DualFamily::open_sides(self, location, vfs)
    }

    fn recover(
        &self,
        sides: Sides,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<(Box<dyn PairInstance>, Recovery)> {
        let (pair, recovery) = self.recover_sides(sides, location, vfs)?;
        Ok((Box::new(pair), recovery))
    }

    fn as_family(&self) -> Arc<dyn Family> {
        Arc::new(self.clone())
    }

    fn with_tunables(&self, primary: &Tunables, mirror: &Tunables) -> Arc<dyn PairFamily> {
        Arc::new(DualFamily::new(
            tuned(DualFamily::primary_family(self), primary),
            tuned(DualFamily::mirror_family(self), mirror),
        ))
    }
}

/// What a history runs against.
#[derive(Clone)]
pub enum Subject {
    /// One family's instance.
    Family(Arc<dyn Family>),
    /// A dual-write pair.
    Pair(Arc<dyn PairFamily>),
    /// A migration from one family to another, run by its own driver
    /// ([`crate::sim::engine::migration`]).
    Migration(Arc<MigrationSubject>),
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subject({})", self.name())
    }
}

impl Subject {
    /// A pair of two families.
    pub fn pair(primary: Arc<dyn Family>, mirror: Arc<dyn Family>) -> Subject {
        Subject::Pair(Arc::new(DualFamily::new(primary, mirror)))
    }

    /// The family's scheme, or the pair's `primary+mirror`.
    pub fn name(&self) -> String {
        match self {
            Subject::Family(f) => f.scheme().to_string(),
            Subject::Pair(p) => p.name(),
            Subject::Migration(m) => m.name(),
        }
    }

    /// A migration from `source` to `destination`.
    pub fn migration(source: Arc<dyn Family>, destination: Arc<dyn Family>) -> Subject {
        Subject::Migration(Arc::new(MigrationSubject::new(source, destination)))
    }

    /// The history this subject runs for the generated `ops` of seed `seed`: the ops
    /// themselves, or for a migration the ops with its steps woven in.
    pub fn history<'a>(&self, seed: u64, ops: &'a [Op]) -> Cow<'a, [Op]> {
        match self {
            Subject::Migration(_) => Cow::Owned(with_steps(seed, ops)),
            _ => Cow::Borrowed(ops),
        }
    }

    /// Whether the state the subject shows survives a restart (a pair shows its primary's).
    pub fn durable(&self) -> bool {
        match self {
            Subject::Family(f) => f.durable(),
            Subject::Pair(p) => p.primary_family().durable(),
            Subject::Migration(m) => m.source_family().durable(),
        }
    }

    /// Whether any instance of the subject keeps state across a restart.
    pub fn any_durable(&self) -> bool {
        match self {
            Subject::Family(f) => f.durable(),
            Subject::Pair(p) => p.primary_family().durable() || p.mirror_family().durable(),
            Subject::Migration(m) => {
                m.source_family().durable() || m.destination_family().durable()
            }
        }
    }

    /// The subject with its families tuned ([`SubjectTunables`]: a family takes `primary`, a
    /// pair's sides `primary` and `mirror`).
    pub fn with_tunables(&self, tunables: &SubjectTunables) -> Subject {
        match self {
            Subject::Family(f) => Subject::Family(tuned(f, &tunables.primary)),
            Subject::Pair(p) => Subject::Pair(p.with_tunables(&tunables.primary, &tunables.mirror)),
            // A migration runs its families as registered (its own driver, not tuned yet).
            Subject::Migration(m) => Subject::Migration(m.clone()),
        }
    }

    /// The subject as a plain family (a pair opens and recovers as one; a migration is its
    /// source's until it starts).
    pub fn as_family(&self) -> Arc<dyn Family> {
        match self {
            Subject::Family(f) => f.clone(),
            Subject::Pair(p) => p.as_family(),
            Subject::Migration(m) => m.source_family().clone(),
        }
    }

    /// Every ordered pair of `families`, a family with itself included, primary-major.
    pub fn pairs_of(families: &[Arc<dyn Family>]) -> Vec<Subject> {
        let mut pairs = Vec::new();
        for primary in families {
            for mirror in families {
                pairs.push(Subject::pair(primary.clone(), mirror.clone()));
            }
        }
        pairs
    }

    /// Every registered family, then every ordered pair of them.
    pub fn every(registry: &Registry) -> Vec<Subject> {
        let mut all: Vec<Subject> =
            registry.families().iter().cloned().map(Subject::Family).collect();
        all.extend(Subject::pairs_of(registry.families()));
        all
    }

    /// Every ordered pair of `families` as a migration, a family to itself included.
    pub fn migrations_of(families: &[Arc<dyn Family>]) -> Vec<Subject> {
        let mut all = Vec::new();
        for source in families {
            for destination in families {
                all.push(Subject::migration(source.clone(), destination.clone()));
            }
        }
        all
    }

    /// The subject called `name` in `registry`: a scheme, `primary+mirror`, or
    /// `source>destination`.
    pub fn find(registry: &Registry, name: &str) -> Option<Subject> {
        if let Some((source, destination)) = name.split_once('>') {
            let source = registry.family(source)?.clone();
            let destination = registry.family(destination)?.clone();
            return Some(Subject::migration(source, destination));
        }
        match name.split_once('+') {
            None => registry.family(name).cloned().map(Subject::Family),
            Some((primary, mirror)) => {
                let primary = registry.family(primary)?.clone();
                let mirror = registry.family(mirror)?.clone();
                Some(Subject::pair(primary, mirror))
            }
        }
    }
}

/// A pair's primary alone, as a family: opening it opens the primary the way a pair does
/// before its mirror joins ([`PairFamily::open_primary`]). For checks that reopen the primary
/// on forked disks before the join.
pub struct LonePrimary(pub Arc<dyn PairFamily>);

impl Family for LonePrimary {
    fn scheme(&self) -> &'static str {
        self.0.primary_family().scheme()
    }

    fn durable(&self) -> bool {
        self.0.primary_family().durable()
    }

    fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        self.0.open_primary(location, vfs)
    }
}
