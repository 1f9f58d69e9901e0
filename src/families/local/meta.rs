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
    sidecar_name, CrossMark, Sidecar, PBFILE_BODY_LEN_MAX, PBFILE_PREFIX_LEN, RAFT_META_NAME,
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
    /// The cross mark the sidecar recorded, when it vouches for the file.
    pub mark: Option<CrossMark>,
    /// Whether the file is the version *before* the sidecar's save (a crash between the two
    /// writes of a save).
    pub is_previous: bool,
}

/// Reads `dir/name` and checks it against its sidecar, without judging.
pub fn load_guarded(vfs: &VfsHandle, dir: &Path, name: &str) -> StorageResult<Option<GuardedFile>> {
    let Some(bytes) =
        read_file(vfs, &dir.join(name), PBFILE_BODY_LEN_MAX + PBFILE_PREFIX_LEN as u64)?
    else {
        return Ok(None);
    };
    let sidecar_path = dir.join(sidecar_name(name));
    let (status, mark, is_previous) = match read_file(vfs, &sidecar_path, 4096)? {
        None => (SidecarStatus::Missing, None, false),
        Some(raw) => match Sidecar::decode(&raw) {
            None => (SidecarStatus::Unreadable, None, false),
            Some(sidecar) if sidecar.vouches_for(&bytes) => {
                let newest = sidecar.versions.first() == Some(&Sidecar::fingerprint(&bytes));
                (SidecarStatus::Verified, sidecar.mark, !newest)
            }
            Some(_) => (SidecarStatus::Mismatch, None, false),
        },
    };
    Ok(Some(GuardedFile { bytes, status, mark, is_previous }))
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

/// Saves `bytes` as `dir/name`: sidecar (vouching for `previous` and the new bytes, with
/// the instance's cross `mark`), then the file. Returns the new fingerprint, to pass as `previous` next time.
pub fn save_guarded(
    vfs: &VfsHandle,
    dir: &Path,
    name: &str,
    bytes: &[u8],
    previous: Option<(u32, u32)>,
    mark: Option<CrossMark>,
) -> StorageResult<(u32, u32)> {
    let new = Sidecar::fingerprint(bytes);
    let mut versions = vec![new];
    if let Some(prev) = previous.filter(|p| *p != new) {
        versions.push(prev);
    }
    write_atomic(vfs, dir, &sidecar_name(name), &Sidecar { versions, mark }.encode())?;
    write_atomic(vfs, dir, name, bytes)?;
    Ok(new)
}

/// The `raft_meta` store.
pub struct MetaStore {
    vfs: VfsHandle,
    dir: PathBuf,
    meta: Meta,
    fingerprint: Option<(u32, u32)>,
    mark: Option<CrossMark>,
    /// Whether the loaded file predates its sidecar's save (that save never finished).
    is_previous: bool,
}

impl MetaStore {
    /// Opens (creating the directory) and loads `raft_meta`; absent means term 1, no vote.
    pub fn open(vfs: VfsHandle, dir: PathBuf, policy: RecoveryPolicy) -> StorageResult<Self> {
        ensure_dir(&vfs, &dir)?;
        let path = dir.join(RAFT_META_NAME);
        let mut is_previous = false;
        let (meta, fingerprint, mark) = match load_guarded(&vfs, &dir, RAFT_META_NAME)? {
            None => (Meta::INITIAL, None, None),
            Some(file) => {
                judge_guarded(policy, &path, &file)?;
                let meta = decode_raft_meta(&file.bytes, &path)?;
                is_previous = file.is_previous;
                (meta, Some(Sidecar::fingerprint(&file.bytes)), file.mark)
            }
        };
        Ok(MetaStore { vfs, dir, meta, fingerprint, mark, is_previous })
    }

    /// The current term and vote.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The cross mark recorded with the current `raft_meta`, if any.
    pub fn mark(&self) -> Option<CrossMark> {
        self.mark
    }

    /// How many times this family saved `raft_meta` (0 for a legacy or absent file).
    pub fn seq(&self) -> u64 {
        self.mark.map_or(0, |m| m.meta_seq - u64::from(self.is_previous && m.meta_seq > 0))
    }

    /// The path of `raft_meta`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(RAFT_META_NAME)
    }

    /// Saves term and vote durably with the instance's cross `mark` (whose `meta_seq`
    /// counts this save).
    pub fn save(&mut self, meta: &Meta, mark: CrossMark) -> StorageResult<()> {
        let bytes = encode_raft_meta(meta)?;
        let previous = self.fingerprint;
        self.fingerprint =
            Some(save_guarded(&self.vfs, &self.dir, RAFT_META_NAME, &bytes, previous, Some(mark))?);
        self.mark = Some(mark);
        self.is_previous = false;
        self.meta = meta.clone();
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
