//! [`DualFamily`]: opens dual-write pairs of two families under one location, so a pair can be
//! run wherever a family can (the harness, the conformance suite).
//!
//! Layout under `LOCATION` (each side is an ordinary instance of its family):
//!
//! ```text
//! LOCATION/primary        the primary
//! LOCATION/mirror.N       the mirror, generation N (decimal); the highest N present is current
//! ```
//!
//! A new generation is begun only when the current mirror cannot be repaired (or opened): the
//! contract has no call that empties an instance, so a mirror beyond repair is left where it
//! is and a fresh, empty one is bootstrapped beside it. A volatile mirror leaves nothing on
//! disk and always reopens empty, so it stays at generation 0 (an empty mirror is simply
//! bootstrapped again). Abandoned generations (and what a failed creation left, such as
//! redb's `mirror.N.creating`) are never opened again and are removed, best effort: all but
//! the newest before a new generation is begun, and the rest once it is bootstrapped, so the
//! newest generation present is never one being removed (a power loss mid-removal leaves an
//! older one half gone, which no open looks at), and a pair whose join is retried again and
//! again under injected faults does not fill its disk with abandoned mirrors.

use std::path::Path;
use std::sync::Arc;

use crate::contract::{Family, RaftStorage, StorageError, StorageResult};
use crate::families::local::files::remove_dir_all;
use crate::vfs::{FileKind, VfsErrorKind, VfsHandle};

use super::error::{DualWriteError, Unpaired};
use super::pair::DualWrite;
use super::repair::Recovery;

/// Fresh generations tried before giving up (each skipped one held a stale mirror).
const GENERATIONS_TRIED_MAX: u32 = 4;

/// A pair of families opened together as dual-write pairs.
#[derive(Clone)]
pub struct DualFamily {
    primary: Arc<dyn Family>,
    mirror: Arc<dyn Family>,
}

impl std::fmt::Debug for DualFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DualFamily({})", self.name())
    }
}

/// The two sides of a pair, opened but not yet paired.
pub struct Sides {
    /// The primary.
    pub primary: Box<dyn RaftStorage>,
    /// The current mirror, or why it could not be opened.
    pub mirror: StorageResult<Box<dyn RaftStorage>>,
    /// The mirror's generation.
    pub generation: u32,
}

impl DualFamily {
    /// Pairs of a `primary` family's instance with a `mirror` family's instance.
    pub fn new(primary: Arc<dyn Family>, mirror: Arc<dyn Family>) -> Self {
        DualFamily { primary, mirror }
    }

    /// `primary+mirror`, by scheme (`local+redb`).
    pub fn name(&self) -> String {
        format!("{}+{}", self.primary.scheme(), self.mirror.scheme())
    }

    /// The primary's family.
    pub fn primary_family(&self) -> &Arc<dyn Family> {
        &self.primary
    }

    /// The mirror's family.
    pub fn mirror_family(&self) -> &Arc<dyn Family> {
        &self.mirror
    }

    /// Where the primary of the pair at `location` lives.
    pub fn primary_location(location: &str) -> String {
        format!("{location}/primary")
    }

    /// Where generation `generation` of the mirror of the pair at `location` lives.
    pub fn mirror_location(location: &str, generation: u32) -> String {
        format!("{location}/mirror.{generation}")
    }

    /// The highest mirror generation present at `location`, if any.
    pub fn mirror_generation(location: &str, vfs: &VfsHandle) -> StorageResult<Option<u32>> {
        let entries = match vfs.read_dir(Path::new(location)) {
            Ok(entries) => entries,
            Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(entries
            .iter()
            .filter_map(|e| e.name.strip_prefix("mirror."))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|n| n.parse::<u32>().ok())
            .max())
    }

    /// Opens the primary alone (before a mirror joins it).
    pub fn open_primary(
        &self,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<Box<dyn RaftStorage>> {
        vfs.create_dir_all(Path::new(location))?;
        self.primary.open(&DualFamily::primary_location(location), vfs)
    }

    /// Opens both sides of the pair at `location` (the current mirror generation), unpaired.
    /// A primary that fails to open is an error; a mirror that fails to open is reported in
    /// [`Sides::mirror`].
    pub fn open_sides(&self, location: &str, vfs: VfsHandle) -> StorageResult<Sides> {
        let primary = self.open_primary(location, vfs.clone())?;
        let generation = DualFamily::mirror_generation(location, &vfs)?.unwrap_or(0);
        let mirror = self.mirror.open(&DualFamily::mirror_location(location, generation), vfs);
        Ok(Sides { primary, mirror, generation })
    }

    /// Pairs opened sides: [`DualWrite::recover`]; a mirror beyond repair (or that failed to
    /// open) is replaced by a fresh generation bootstrapped from the primary
    /// ([`Recovery::Rebootstrapped`]).
    pub fn recover_sides(
        &self,
        sides: Sides,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<(DualWrite, Recovery)> {
        let Sides { primary, mirror, generation } = sides;
        let (primary, reason) = match mirror {
            Err(e) => (primary, format!("mirror generation {generation} failed to open: {e}")),
            Ok(mirror) => match DualWrite::recover(primary, mirror) {
                Ok(paired) => return Ok(paired),
                Err(unpaired) if unpaired.needs_bootstrap() => {
                    let reason = format!("mirror generation {generation}: {}", unpaired.error);
                    (unpaired.primary, reason)
                }
                Err(unpaired) => return Err(unpaired.error),
            },
        };
        let pair = self.bootstrap_fresh(primary, location, vfs, generation.saturating_add(1))?;
        Ok((pair, Recovery::Rebootstrapped { reason }))
    }

    /// Opens and pairs the pair at `location` (see [`DualFamily::recover_sides`]).
    pub fn open_pair(
        &self,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<(DualWrite, Recovery)> {
        let sides = self.open_sides(location, vfs.clone())?;
        self.recover_sides(sides, location, vfs)
    }

    /// A mirror joins `primary` (which lives at `location`'s primary place): a fresh
    /// generation is bootstrapped from it.
    pub fn join(
        &self,
        primary: Box<dyn RaftStorage>,
        location: &str,
        vfs: VfsHandle,
    ) -> StorageResult<DualWrite> {
        let next = match DualFamily::mirror_generation(location, &vfs)? {
            Some(g) => g.saturating_add(1),
            None => 0,
        };
        self.bootstrap_fresh(primary, location, vfs, next)
    }

    /// Bootstraps the first empty mirror generation from `from` on.
    fn bootstrap_fresh(
        &self,
        mut primary: Box<dyn RaftStorage>,
        location: &str,
        vfs: VfsHandle,
        from: u32,
    ) -> StorageResult<DualWrite> {
        // Every generation below `from` is abandoned (beyond repair, or a bootstrap that
        // failed): a join retried under injected faults must not pile them up. The newest of
        // them stays until its successor is bootstrapped: a power loss in the middle of its
        // removal would otherwise leave a half-removed generation as the newest present,
        // which the next open takes for the current mirror.
        remove_generations_below(location, &vfs, from.saturating_sub(1));
        let mut last_error = None;
        for generation in from..from.saturating_add(GENERATIONS_TRIED_MAX) {
            let place = DualFamily::mirror_location(location, generation);
            let mirror = match self.mirror.open(&place, vfs.clone()) {
                Ok(m) => m,
                Err(e) => {
                    last_error = Some(e.to_string());
                    continue;
                }
            };
            match DualWrite::bootstrap(primary, mirror, &mut |_| {}) {
                Ok((pair, _)) => {
                    remove_generations_below(location, &vfs, generation);
                    return Ok(pair);
                }
                Err(Unpaired { error, primary: p, .. }) if stale(&error) => {
                    last_error = Some(error.to_string());
                    primary = p;
                }
                Err(unpaired) => return Err(unpaired.error),
            }
        }
        Err(DualWriteError::NeedsBootstrap {
            reason: format!(
                "no empty mirror generation from {from} on: {}",
                last_error.unwrap_or_default()
            ),
        }
        .into())
    }
}

/// Removes, best effort, every `mirror.K` entry of `location` with `K < current` (the
/// generation's instance, and anything named after it: `mirror.K.creating`), then syncs the
/// directory. A failure stops the sweep quietly: nothing removed here is ever read again,
/// and the next bootstrap sweeps again.
fn remove_generations_below(location: &str, vfs: &VfsHandle, current: u32) {
    let dir = Path::new(location);
    let Ok(entries) = vfs.read_dir(dir) else { return };
    let older = |name: &str| -> bool {
        let Some(rest) = name.strip_prefix("mirror.") else { return false };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let is_generation = digits > 0 && (digits == rest.len() || rest[digits..].starts_with('.'));
        is_generation && rest[..digits].parse::<u32>().is_ok_and(|k| k < current)
    };
    for entry in entries.iter().filter(|e| older(&e.name)) {
        let path = dir.join(&entry.name);
        let removed = match entry.kind {
            FileKind::Dir => remove_dir_all(vfs, &path),
            FileKind::File => vfs.remove_file(&path).map_err(StorageError::from),
        };
        if removed.is_err() {
            return;
        }
    }
    let _ = vfs.sync_dir(dir);
}

/// Whether a failed bootstrap found a mirror generation already in use (not empty).
fn stale(error: &StorageError) -> bool {
    match error {
        StorageError::DualWrite(DualWriteError::SideFailed { cause, .. }) => matches!(
            cause.as_ref(),
            StorageError::Contract(crate::contract::ContractError::NotEmpty { .. })
        ),
        _ => false,
    }
}

impl Family for DualFamily {
    /// `dual`: pairs are not in the URI registry (a pair is two URIs); the name with both
    /// schemes is [`DualFamily::name`].
    fn scheme(&self) -> &'static str {
        "dual"
    }

    /// The pair's state is the primary's, so it survives a restart when the primary does.
    fn durable(&self) -> bool {
        self.primary.durable()
    }

    fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        let (pair, _) = self.open_pair(location, vfs)?;
        Ok(Box::new(pair))
    }
}

/// Opens the pair whose primary and mirror two URIs name (each through `registry`) and
/// recovers it ([`DualWrite::recover`]). A mirror beyond repair is an error here: with URIs
/// the caller owns the locations, so bootstrapping a fresh mirror is the caller's move.
pub fn open_uris(
    registry: &crate::families::Registry,
    primary_uri: &str,
    mirror_uri: &str,
    vfs: VfsHandle,
) -> StorageResult<(DualWrite, Recovery)> {
    let primary = registry.open(primary_uri, vfs.clone())?;
    let mirror = registry.open(mirror_uri, vfs)?;
    DualWrite::recover(primary, mirror).map_err(|unpaired| unpaired.error)
}
