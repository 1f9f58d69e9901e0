//! Check `read_only` (DESIGN §7, check 9), on the simulated disk.
//!
//! **When and what.** Before every read-write reopen the runner makes (a clean reopen, a power
//! loss, every enumerated crash state), the state on the disk is first opened read-only
//! ([`probe`]), through the disk's [`observer`](SimDisk::observer), so looking changes
//! nothing a seed decides (no operation numbers, no trace, no randomness). Then, once the
//! read-write open has recovered ([`Probe::judge`]):
//! - the read-only open issued no mutating disk operation (SimDisk counts them, refused ones
//!   included: a family that bypasses its read-only wrapper is seen here);
//! - it showed exactly the state the read-write open then recovered (`RaftState`
//!   equality), or refused to open, which is allowed only when the read-write open refused
//!   too (the runner judges that one; a read-only refusal of a state the read-write open
//!   recovers is a failure).
//!
//! A view made by an engine's own read-only open ([`ViewSource::EngineReadOnly`]: redb on a
//! cleanly closed file) does not verify page checksums, so under a dishonest plan (rot,
//! misdirected writes) it may show the latest commit where the read-write open rolls back:
//! only its zero mutating operations are required there.

use crate::contract::{Family, StorageError, ViewSource};
use crate::state::{first_difference, RaftState};
use crate::vfs::{SimDisk, VfsHandle};

/// What a read-only open of the state on a disk showed.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The state it showed, or why it refused (an error, or a panic).
    state: Result<RaftState, String>,
    /// How the view was made.
    source: Option<ViewSource>,
    /// Mutating disk operations it issued.
    mutating_ops: u64,
}

/// Opens the instance at `location` on `disk` read-only (through an observer) and captures
/// what it shows.
pub fn probe(family: &dyn Family, location: &str, disk: &SimDisk) -> Probe {
    let observer: VfsHandle = disk.observer();
    let before = disk.mutating_op_count();
    let opened = crate::panics::catch(|| {
        let opened = family.open_read_only(location, observer)?;
        let state = RaftState::capture(opened.view.as_ref())?;
        Ok::<_, StorageError>((state, opened.source))
    });
    let mutating_ops = disk.mutating_op_count() - before;
    let (state, source) = match opened {
        Ok(Ok((state, source))) => (Ok(state), Some(source)),
        Ok(Err(e)) => (Err(e.to_string()), None),
        Err(panic) => (Err(format!("panic: {}", crate::panics::text(&panic))), None),
    };
    Probe { state, source, mutating_ops }
}

impl Probe {
    /// Judges the probe against `recovered`, what the read-write open then recovered;
    /// `dishonest`: the disk may have lost or damaged acknowledged data. `Err` says what is
    /// wrong, in words.
    pub fn judge(&self, recovered: &RaftState, dishonest: bool) -> Result<(), String> {
        if self.mutating_ops > 0 {
            return Err(format!(
                "the read-only open issued {} mutating disk operation(s) (a read-only open must \
                 never create, write, cut, rename, remove or sync anything)",
                self.mutating_ops
            ));
        }
        let unverified = dishonest && self.source == Some(ViewSource::EngineReadOnly);
        match &self.state {
            Ok(shown) if shown == recovered || unverified => Ok(()),
            Ok(shown) => Err(format!(
                "the read-only open showed a state the read-write open did not recover: {}",
                first_difference(shown, recovered).unwrap_or_default()
            )),
            Err(e) => Err(format!(
                "the read-only open refused ({e}) a state the read-write open recovered"
            )),
        }
    }
}
