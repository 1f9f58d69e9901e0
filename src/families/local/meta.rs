//! ProtoBufFiles guarded by a checksum sidecar (`log_meta`, `raft_meta`,
//! `__raft_snapshot_meta`), and the `raft_meta` store (term and vote).
//!
//! braft's ProtoBufFiles carry no checksum. This family writes next to each one a sidecar
//! `<name>.qkcrc` ([`Sidecar`]) that braft never reads, vouching for the file's bytes.
//!
//! **Saving.** A save writes the new bytes to a tmp file (fsynced), learns that file's
//! [`FileId`], writes the sidecar vouching for both the current and the new bytes and
//! naming the new file's id (tmp + fsync + rename + directory fsync), then renames the tmp
//! over the file and fsyncs the directory. A crash before the sidecar is in leaves the old
//! file and the old sidecar; a crash between the two leaves the old file, which the new
//! sidecar still vouches for as its previous version; afterwards both are new. The tmp of a
//! `raft_meta` save is `raft_meta.qktmp`, never braft's `raft_meta.tmp`: braft never removes
//! a leftover tmp there and its next save reuses it (`O_TRUNC`, the same inode), so after a
//! crash between our sidecar and our rename a shared tmp would be the very file our sidecar
//! names, and braft's rewrite would read as damage in place. `log_meta` and
//! `__raft_snapshot_meta` keep braft's `.tmp`: both braft's open and ours remove leftover
//! `.tmp` files in `log/`, and a snapshot's meta is saved inside the private temp directory.
//!
//! **braft writes here too.** Once braft runs on a directory this family wrote, it rewrites
//! `raft_meta` on every vote and `log_meta` on every prefix truncation, and cannot update
//! the sidecars. Its writes must not make the directory unreadable, and damage must still
//! be caught (bit rot, a write meant for another file landing in `raft_meta`: the right
//! value or a typed corruption error, never a wrong value). The discriminator is **which
//! file the name holds**: braft writes a ProtoBufFile by tmp + rename, so its file is a new
//! inode, created after the one this family wrote; damage happens in place, to the same
//! inode. So, loading a file whose bytes the sidecar does not vouch for:
//! - the same [`FileId`] as the sidecar names → the bytes changed in place: damage
//!   ([`SidecarStatus::Mismatch`]);
//! - a file created after that one (a larger birth stamp, or the same stamp and another
//!   inode: two creations within one clock tick) → another writer replaced it: braft
//!   ([`SidecarStatus::Replaced`]). It is read as braft reads it, checked by braft's format
//!   only (a ProtoBufFile that must parse, a vote that must be PeerId text); its save count,
//!   for the cross marks, is the one the sidecar recorded (braft's write came after it);
//! - an older file → not the one this family last wrote: a lost write
//!   ([`SidecarStatus::Older`]).
//!
//! Why this and not more: `Vfs` file ids are inode numbers plus a creation stamp (the
//! birth time `statx` reports, on `OsVfs`; never-reused node ids on `SimDisk`), because
//! inode numbers alone are reused as soon as a file is deleted, which braft's own rename
//! does. A birth time is coarse (one clock tick), so two creations in one tick compare by
//! inode; only a second braft rewrite in the very tick this family saved, reusing the
//! number this family's file had, would look like damage, and that errs towards refusing.
//! Where the file system records no birth time (0), the inode number alone decides, and a
//! file system that hands braft's second rewrite the inode number this family's file had
//! makes that rewrite look like damage (refused; `--recovery braft` opens it). A birth time
//! comes from the machine's clock: a clock set back between this family's save and braft's
//! rewrite makes the rewrite look older, a lost write (refused the same way). A directory
//! copied elsewhere (new inodes everywhere) reads as replaced by another writer: checked by
//! braft's format only, until this family saves the file again. Directories are no longer
//! byte-identical between two runs that write the same state: the sidecars hold inodes.
//!
//! **Cross marks and crashes.** The marks a sidecar carries (lying-fsync detection, see
//! `format::CrossMark`) are kept for a replaced file too, with the count it recorded: braft's
//! vote changes nothing they vouch for. What braft leaves no trace of, this family cannot
//! tell from a lost write, and under the default policy the open fails closed with an error
//! that says so: braft truncating the log below where it stood at this family's last write,
//! or publishing a snapshot after this family appended behind its own publish (a snapshot
//! without this family's checksum files cannot be told from this family's own whose
//! checksum files were lost). `--recovery braft` ([`RecoveryPolicy::BraftCompatible`])
//! opens such a directory as braft would. A crash between this family's own rename and its
//! sidecar write cannot happen (the sidecar goes first); with fsyncs that lie, a later save
//! whose sidecar was lost while its rename survived reads as replaced: its bytes are this
//! family's own (a `raft_meta` or `log_meta` fits one sector, written whole or not at all,
//! and an empty or partial file does not parse), and the recorded count makes any mark
//! written after it fail closed. Not detected: that case combined with bit rot in the same
//! file (the bytes then parse as braft's and no checksum vouches for them).
//!
//! On load, under the default policy:
//! - file absent → absent (sidecar ignored);
//! - no sidecar → accepted as a legacy (braft-written) file; the next save adds one;
//! - sidecar vouches for the bytes → verified;
//! - replaced by braft (above) → accepted, checked by braft's format;
//! - changed in place, or older than the vouched file, or a damaged sidecar, or (sidecars
//!   of version 1 and 2, without a file id) any mismatch → corruption naming the file.
//!
//! Under `--recovery braft` sidecars are not enforced.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::contract::{check_meta, Meta, StorageResult};
use crate::vfs::{FileId, OpenOptions, VfsHandle};

use super::files::{corruption, ensure_dir, read_file, write_atomic};
use super::format::{
    private_tmp_name, sidecar_name, CrossMark, Sidecar, PBFILE_BODY_LEN_MAX, PBFILE_PREFIX_LEN,
    RAFT_META_NAME,
};
use super::peer::{is_no_vote, peer_from_disk, PeerAddr};
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
    /// Another writer (braft) replaced the file since this family's last save: a newer
    /// file than the one the sidecar names. Checked by braft's format only.
    Replaced,
    /// The bytes changed in place (the file the sidecar names, other bytes): damage. Also
    /// any mismatch against a sidecar that names no file (written before file ids).
    Mismatch,
    /// An older file than the one the sidecar names: this family's last save was lost.
    Older,
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
    /// The cross mark the sidecar recorded, when it vouches for the file or the file was
    /// replaced after it.
    pub mark: Option<CrossMark>,
    /// Whether the file is the version *before* the sidecar's save (a crash between the two
    /// writes of a save).
    pub is_previous: bool,
    /// The file's id, when the load looked it up (only to judge a mismatch).
    pub file: Option<FileId>,
}

/// Reads `dir/name` and checks it against its sidecar, without judging.
pub fn load_guarded(vfs: &VfsHandle, dir: &Path, name: &str) -> StorageResult<Option<GuardedFile>> {
    let path = dir.join(name);
    let Some(bytes) = read_file(vfs, &path, PBFILE_BODY_LEN_MAX + PBFILE_PREFIX_LEN as u64)? else {
        return Ok(None);
    };
    let sidecar_path = dir.join(sidecar_name(name));
    let mut file = None;
    let (status, mark, is_previous) = match read_file(vfs, &sidecar_path, 4096)? {
        None => (SidecarStatus::Missing, None, false),
        Some(raw) => match Sidecar::decode(&raw) {
            None => (SidecarStatus::Unreadable, None, false),
            Some(sidecar) if sidecar.vouches_for(&bytes) => {
                let newest = sidecar.versions.first() == Some(&Sidecar::fingerprint(&bytes));
                (SidecarStatus::Verified, sidecar.mark, !newest)
            }
            Some(sidecar) => match sidecar.file {
                None => (SidecarStatus::Mismatch, None, false),
                Some(vouched) => {
                    let id = vfs.metadata(&path)?.id;
                    file = Some(id);
                    match judge_file_id(id, vouched) {
                        SidecarStatus::Replaced => (SidecarStatus::Replaced, sidecar.mark, false),
                        other => (other, None, false),
                    }
                }
            },
        },
    };
    Ok(Some(GuardedFile { bytes, status, mark, is_previous, file }))
}

/// The module doc's rule for a file whose bytes the sidecar does not vouch for: the same
/// file is damage in place, a newer one was put there by another writer, an older one is a
/// lost write.
pub fn judge_file_id(found: FileId, vouched: FileId) -> SidecarStatus {
    if found == vouched {
        SidecarStatus::Mismatch
    } else if found.birth > vouched.birth
        || (found.birth == vouched.birth && found.ino != vouched.ino)
    {
        SidecarStatus::Replaced
    } else {
        SidecarStatus::Older
    }
}

/// Applies `policy` to a loaded guarded file: the sidecar rule of the module doc.
pub fn judge_guarded(policy: RecoveryPolicy, path: &Path, file: &GuardedFile) -> StorageResult<()> {
    let judged = judge_sidecar(policy, path, file);
    if judged.is_err() {
        crate::coverage::hit(crate::coverage::Point::LocalRefusedSidecar);
    }
    judged
}

fn judge_sidecar(policy: RecoveryPolicy, path: &Path, file: &GuardedFile) -> StorageResult<()> {
    if !policy.enforces_sidecars() {
        return Ok(());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let what = match file.status {
        SidecarStatus::Verified | SidecarStatus::Missing | SidecarStatus::Replaced => return Ok(()),
        SidecarStatus::Mismatch if file.file.is_some() => format!(
            "bytes changed in place since this family wrote them (the file its checksum \
             sidecar {} names, other bytes): damaged",
            sidecar_name(&name)
        ),
        SidecarStatus::Mismatch => format!(
            "bytes do not match the checksum sidecar {} (which predates file ids): damaged, \
             or rewritten by braft (then open with --recovery braft, or remove the sidecar)",
            sidecar_name(&name)
        ),
        SidecarStatus::Older => format!(
            "an older file than the one its checksum sidecar {} names, with other bytes: \
             this family's last save of it was lost (or the file damaged)",
            sidecar_name(&name)
        ),
        SidecarStatus::Unreadable => {
            return Err(corruption(
                &path.with_file_name(sidecar_name(&name)),
                0,
                "checksum sidecar is damaged",
            ))
        }
    };
    Err(corruption(path, 0, what))
}

/// Saves `bytes` as `dir/name`: the new file as `dir/tmp` (fsynced), the sidecar vouching
/// for `previous` and the new bytes and naming the new file's id, with the instance's cross
/// `mark`, then the rename (see the module doc). Returns the new fingerprint, to pass as
/// `previous` next time.
pub fn save_guarded(
    vfs: &VfsHandle,
    dir: &Path,
    name: &str,
    tmp: &str,
    bytes: &[u8],
    previous: Option<(u32, u32)>,
    mark: Option<CrossMark>,
) -> StorageResult<(u32, u32)> {
    let new = Sidecar::fingerprint(bytes);
    let mut versions = vec![new];
    if let Some(prev) = previous.filter(|p| *p != new) {
        versions.push(prev);
    }
    let tmp = dir.join(tmp);
    let file = vfs.open(&tmp, OpenOptions::CREATE_TRUNCATE)?;
    file.write_at(bytes, 0)?;
    file.sync()?;
    drop(file);
    let id = vfs.metadata(&tmp)?.id;
    let sidecar = Sidecar { versions, mark, file: Some(id) };
    write_atomic(vfs, dir, &sidecar_name(name), &sidecar.encode())?;
    vfs.rename(&tmp, &dir.join(name))?;
    vfs.sync_dir(dir)?;
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
    /// Whether the loaded file was replaced by another writer (braft) since this family's
    /// last save.
    replaced: bool,
}

impl MetaStore {
    /// Opens (creating the directory) and loads `raft_meta`; absent means term 1, no vote.
    pub fn open(vfs: VfsHandle, dir: PathBuf, policy: RecoveryPolicy) -> StorageResult<Self> {
        ensure_dir(&vfs, &dir)?;
        let path = dir.join(RAFT_META_NAME);
        let (mut is_previous, mut replaced) = (false, false);
        let (meta, fingerprint, mark) = match load_guarded(&vfs, &dir, RAFT_META_NAME)? {
            None => (Meta::INITIAL, None, None),
            Some(file) => {
                judge_guarded(policy, &path, &file)?;
                let meta = decode_raft_meta(&file.bytes, &path)?;
                is_previous = file.is_previous;
                replaced = file.status == SidecarStatus::Replaced;
                (meta, Some(Sidecar::fingerprint(&file.bytes)), file.mark)
            }
        };
        Ok(MetaStore { vfs, dir, meta, fingerprint, mark, is_previous, replaced })
    }

    /// The current term and vote.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The cross mark recorded with the current `raft_meta`, if any.
    pub fn mark(&self) -> Option<CrossMark> {
        self.mark
    }

    /// Whether braft (another writer) replaced `raft_meta` after this family last saved it.
    pub fn replaced(&self) -> bool {
        self.replaced
    }

    /// How many times this family saved `raft_meta` (0 for a legacy or absent file; for a
    /// file braft replaced, the count this family's last save recorded).
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
        let tmp = private_tmp_name(RAFT_META_NAME);
        let saved =
            save_guarded(&self.vfs, &self.dir, RAFT_META_NAME, &tmp, &bytes, previous, Some(mark))?;
        self.fingerprint = Some(saved);
        self.mark = Some(mark);
        self.is_previous = false;
        self.replaced = false;
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
        Some(peer_from_disk(msg.votedfor))
    } else {
        return Err(corruption(
            path,
            PBFILE_PREFIX_LEN as u64,
            format!("votedfor {:?} is not PeerId text", msg.votedfor),
        ));
    };
    Ok(Meta { term: msg.term as u64, voted_for })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_is_judged_by_which_file_the_name_holds() {
        let ours = FileId { ino: 7, birth: 100 };
        // The file the sidecar names, other bytes: damage in place.
        assert_eq!(judge_file_id(ours, ours), SidecarStatus::Mismatch);
        // Created later (braft's tmp + rename), even reusing the inode number.
        assert_eq!(judge_file_id(FileId { ino: 9, birth: 101 }, ours), SidecarStatus::Replaced);
        assert_eq!(judge_file_id(FileId { ino: 7, birth: 101 }, ours), SidecarStatus::Replaced);
        // Created in the same clock tick: another inode is another file.
        assert_eq!(judge_file_id(FileId { ino: 8, birth: 100 }, ours), SidecarStatus::Replaced);
        // Created before the one this family wrote: a lost write.
        assert_eq!(judge_file_id(FileId { ino: 8, birth: 99 }, ours), SidecarStatus::Older);
        // No birth time recorded: the inode decides.
        let unknown = FileId { ino: 7, birth: 0 };
        assert_eq!(judge_file_id(unknown, unknown), SidecarStatus::Mismatch);
        assert_eq!(judge_file_id(FileId { ino: 3, birth: 0 }, unknown), SidecarStatus::Replaced);
    }
}
