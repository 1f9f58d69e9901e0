//! braft's `FileBasedSingleMetaStorage::init` (braft-format.md §6.1): `raft_meta/raft_meta`
//! as a ProtoBufFile of `StablePBMeta`. Absent: term 1, no vote. Any other load failure, or a
//! `votedfor` that does not parse as a PeerId (an empty one included), fails init. The empty
//! peer (`0.0.0.0:0:0:0`, or the legacy `0.0.0.0:0:0`) is no vote. Nothing is written.

use std::path::Path;

use crate::contract::{Meta, PeerId};
use crate::vfs::Vfs;

use super::pbfile::{self, PbLoad};
use super::peer::{self, Peer};
use super::wire::{Lenient, StablePbMeta};
use super::{non_negative, InitFailure, Stop, Store};

/// The term and vote braft's meta storage loads from `dir`.
pub fn load(vfs: &dyn Vfs, dir: &Path) -> Result<Meta, Stop> {
    if !pbfile::is_dir(vfs, dir, Store::Meta)? {
        return Ok(Meta::INITIAL);
    }
    let path = dir.join("raft_meta");
    let fails =
        |what: String| Stop::Fails(InitFailure { store: Store::Meta, path: path.clone(), what });
    let body = match pbfile::load(vfs, &path)? {
        PbLoad::Missing => return Ok(Meta::INITIAL),
        PbLoad::Failed(why) => return Err(fails(format!("Fail to load meta: {why}"))),
        PbLoad::Loaded(body) => body,
    };
    let (stable, _) = StablePbMeta::parse(&body);
    let voted_for = match peer::parse(&stable.votedfor) {
        Peer::Parsed(p) if p == peer::ANY => None,
        Peer::Parsed(p) => Some(PeerId::new(p)),
        Peer::Unparsable => {
            return Err(fails(format!(
                "votedfor {:?} does not parse as a PeerId",
                String::from_utf8_lossy(&stable.votedfor)
            )))
        }
        Peer::Unspecified(why) => return Err(Stop::Unspecified(format!("votedfor: {why}"))),
    };
    Ok(Meta { term: non_negative(stable.term, "term")?, voted_for })
}
