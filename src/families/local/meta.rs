//! ProtoBufFiles guarded by a checksum sidecar (`log_meta`, `raft_meta`,
//! `__raft_snapshot_meta`), and the `raft_meta` store (term and vote).
//!
//! braft's ProtoBufFiles carry no checksum. This family writes next to each one a sidecar
//! `<name>.qkcrc` ([`Sidecar`]) that braft never reads. A save writes the sidecar first,
//! vouching for both the current and the new file bytes, then the file itself (each by
//! tmp + fsync + rename + directory fsync), so a crash between the two leaves a sidecar that
//! still vouches for whichever file survived.
//!
//! On load, under the default policy:
//! - file absent → absent (sidecar ignored);
//! - no sidecar → accepted as a legacy (braft-written) file; the next save adds one;
//! - sidecar vouches for the bytes → verified;
//! - otherwise → corruption naming the file. That is also what happens when braft itself
//!   rewrote the file after this family last did (braft cannot update the sidecar): the
//!   error says so, and the operator either removes the sidecar (accepting the file as
//!   legacy) or opens once with a braft-compatible policy, which accepts the file and
//!   re-vouches on the next save.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::contract::{check_meta, Meta, PeerId, StorageResult};
use crate::vfs::VfsHandle;

use super::files::{corruption, ensure_dir, read_file, write_atomic};
use super::format::{
    sidecar_name, Sidecar, PBFILE_BODY_LEN_MAX, PBFILE_PREFIX_LEN, RAFT_META_NAME,
};
use super::peer::{is_no_vote, PeerAddr};
use super::proto::{pbfile_decode, pbfile_encode, StablePbMeta};
use super::recover::RecoveryPolicy;

/// How a guarded file's bytes relate to its sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SidecarStatus {
    /// The sidecar vouches for the file.
    Verified,
    /// No sidecar: a legacy file (braft wrote it, or this family has not saved it yet).
    Missing,
    /// The sidecar does not vouch for the file: damage, or braft rewrote the file.
    Mismatch,
    /// The sidecar itself is damaged.
    Unreadable,
}

/// A ProtoBufFile with its sidecar, as loaded.
#[derive(Clone, Debug)]
pub struct GuardedFile {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The sidecar check.
    pub status: SidecarStatus,
}

/// Reads `dir/name` and checks it against its sidecar, without judging.
pub fn load_guarded(vfs: &VfsHandle, dir: &Path, name: &str) -> StorageResult<Option<GuardedFile>> {
    let Some(bytes) =
        read_file(vfs, &dir.join(name), PBFILE_BODY_LEN_MAX + PBFILE_PREFIX_LEN as u64)?
    else {
        return Ok(None);
    };
    let status = match read_file(vfs, &dir.join(sidecar_name(name)), 4096)? {
        None => SidecarStatus::Missing,
        Some(raw) => match Sidecar::decode(&raw) {
            None => SidecarStatus::Unreadable,
            Some(sidecar) if sidecar.vouches_for(&bytes) => SidecarStatus::Verified,
            Some(_) => SidecarStatus::Mismatch,
        },
    };
    Ok(Some(GuardedFile { bytes, status }))
}

/// Applies `policy` to a loaded guarded file: the sidecar rule of the module doc.
pub fn judge_guarded(policy: RecoveryPolicy, path: &Path, file: &GuardedFile) -> StorageResult<()> {
    match (file.status, policy.enforces_sidecars()) {
        (SidecarStatus::Verified | SidecarStatus::Missing, _) | (_, false) => Ok(()),
        (SidecarStatus::Mismatch, true) => Err(corruption(
            path,
            0,
            format!(
                "bytes do not match the checksum sidecar {}: damaged, or rewritten by braft \
                 (then remove the sidecar, or open once with the braft-compatible policy)",
                sidecar_name(&path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
            ),
        )),
        (SidecarStatus::Unreadable, true) => Err(corruption(
            &path.with_file_name(sidecar_name(
                &path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            )),
            0,
            "checksum sidecar is damaged",
        )),
    }
}

/// Saves `bytes` as `dir/name`: sidecar (vouching for `previous` and the new bytes), then
/// the file. Returns the new fingerprint, to pass as `previous` next time.
pub fn save_guarded(
    vfs: &VfsHandle,
    dir: &Path,
    name: &str,
    bytes: &[u8],
    previous: Option<(u32, u32)>,
) -> StorageResult<(u32, u32)> {
    let new = Sidecar::fingerprint(bytes);
    let mut versions = vec![new];
    if let Some(prev) = previous.filter(|p| *p != new) {
        versions.push(prev);
    }
    write_atomic(vfs, dir, &sidecar_name(name), &Sidecar { versions }.encode())?;
    write_atomic(vfs, dir, name, bytes)?;
    Ok(new)
}

/// The `raft_meta` store.
pub struct MetaStore {
    vfs: VfsHandle,
    dir: PathBuf,
    meta: Meta,
    fingerprint: Option<(u32, u32)>,
}

impl MetaStore {
    /// Opens (creating the directory) and loads `raft_meta`; absent means term 1, no vote.
    pub fn open(vfs: VfsHandle, dir: PathBuf, policy: RecoveryPolicy) -> StorageResult<Self> {
        ensure_dir(&vfs, &dir)?;
        let path = dir.join(RAFT_META_NAME);
        let (meta, fingerprint) = match load_guarded(&vfs, &dir, RAFT_META_NAME)? {
            None => (Meta::INITIAL, None),
            Some(file) => {
                judge_guarded(policy, &path, &file)?;
                (decode_raft_meta(&file.bytes, &path)?, Some(Sidecar::fingerprint(&file.bytes)))
            }
        };
        Ok(MetaStore { vfs, dir, meta, fingerprint })
    }

    /// The current term and vote.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Saves term and vote durably.
    pub fn save(&mut self, meta: &Meta) -> StorageResult<()> {
        let bytes = encode_raft_meta(meta)?;
        self.fingerprint =
            Some(save_guarded(&self.vfs, &self.dir, RAFT_META_NAME, &bytes, self.fingerprint)?);
        self.meta = meta.clone();
        Ok(())
    }

    /// Removes `raft_meta` and its sidecar (an abandoned import), durably.
    pub fn wipe(&mut self) -> StorageResult<()> {
        super::files::remove_file_if_present(&self.vfs, &self.dir.join(RAFT_META_NAME))?;
        super::files::remove_file_if_present(
            &self.vfs,
            &self.dir.join(sidecar_name(RAFT_META_NAME)),
        )?;
        self.vfs.sync_dir(&self.dir)?;
        self.meta = Meta::INITIAL;
        self.fingerprint = None;
        Ok(())
    }
}

/// The `raft_meta` ProtoBufFile bytes for `meta` (checked by the contract's `check_meta`:
/// a vote is braft PeerId text, never the any peer; no vote is written as the any peer).
pub fn encode_raft_meta(meta: &Meta) -> StorageResult<Vec<u8>> {
    check_meta(meta)?;
    let votedfor = match &meta.voted_for {
        None => PeerAddr::ANY_TEXT.to_string(),
        Some(peer) => peer.to_string(),
    };
    Ok(pbfile_encode(&StablePbMeta { term: meta.term as i64, votedfor }))
}

/// Decodes `raft_meta` bytes: the any peer means no vote; any other vote must parse, as in
/// braft (whose init fails otherwise).
pub fn decode_raft_meta(bytes: &[u8], path: &Path) -> StorageResult<Meta> {
    let msg: StablePbMeta = pbfile_decode(bytes).map_err(|p| corruption(path, 0, p.to_string()))?;
    let voted_for = if is_no_vote(&msg.votedfor) {
        None
    } else if PeerAddr::parse(&msg.votedfor).is_some() {
        Some(PeerId::new(msg.votedfor))
    } else {
        return Err(corruption(
            path,
            PBFILE_PREFIX_LEN as u64,
            format!("votedfor {:?} is not PeerId text", msg.votedfor),
        ));
    };
    Ok(Meta { term: msg.term as u64, voted_for })
}
