//! Reading files as braft does: whole files through the `Vfs`, and ProtoBufFile's `load`
//! (braft-format.md §2): a 4-byte big-endian length, then that many bytes of body; anything
//! after is never read; a short read of either part is a load failure. Nothing here writes.

use std::path::Path;

use crate::vfs::{FileKind, OpenOptions, Vfs, VfsErrorKind};

use super::Stop;

/// What `ProtoBufFile::load` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PbLoad {
    /// `open` failed with `ENOENT`.
    Missing,
    /// The load failed for another reason (short read, not a regular file).
    Failed(String),
    /// The body (still to be parsed, leniently).
    Loaded(Vec<u8>),
}

/// Reads a whole regular file; `None` when it does not exist. A directory at `path` is an
/// `Err(Some(reason))`-style failure the caller words; I/O errors stop the read.
pub fn read_file(vfs: &dyn Vfs, path: &Path) -> Result<Option<Vec<u8>>, Stop> {
    match vfs.metadata(path) {
        Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Stop::Io(e)),
        Ok(m) if m.kind == FileKind::Dir => {
            return Err(Stop::NotAState(format!("{} is a directory", path.display())))
        }
        Ok(_) => {}
    }
    let file = vfs.open(path, OpenOptions::READ).map_err(Stop::Io)?;
    let len = file.len().map_err(Stop::Io)?;
    let len = usize::try_from(len)
        .map_err(|_| Stop::Unspecified(format!("{} is too large to read", path.display())))?;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = file.read_at(&mut buf[done..], done as u64).map_err(Stop::Io)?;
        if n == 0 {
            buf.truncate(done);
            break;
        }
        done += n;
    }
    Ok(Some(buf))
}

/// `ProtoBufFile::load` of `path`.
pub fn load(vfs: &dyn Vfs, path: &Path) -> Result<PbLoad, Stop> {
    let bytes = match vfs.metadata(path) {
        Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(PbLoad::Missing),
        Err(e) => return Err(Stop::Io(e)),
        Ok(m) if m.kind == FileKind::Dir => return Ok(PbLoad::Failed("is a directory".into())),
        Ok(_) => match read_file(vfs, path)? {
            Some(bytes) => bytes,
            None => return Ok(PbLoad::Missing),
        },
    };
    let Some(prefix) = bytes.get(..4) else {
        return Ok(PbLoad::Failed(format!("read len failed ({} bytes)", bytes.len())));
    };
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    match bytes.get(4..4 + len) {
        Some(body) => Ok(PbLoad::Loaded(body.to_vec())),
        None => Ok(PbLoad::Failed(format!(
            "read body failed ({len} bytes announced, {} present)",
            bytes.len() - 4
        ))),
    }
}

/// Whether `path` is a directory; `false` when absent; `Err` when a file sits there.
pub fn is_dir(vfs: &dyn Vfs, path: &Path, store: super::Store) -> Result<bool, Stop> {
    match vfs.metadata(path) {
        Ok(m) if m.kind == FileKind::Dir => Ok(true),
        Ok(_) => Err(Stop::Fails(super::InitFailure {
            store,
            path: path.to_path_buf(),
            what: "mkdir -p fails: a file is in the way".into(),
        })),
        Err(e) if e.kind == VfsErrorKind::NotFound => Ok(false),
        Err(e) => Err(Stop::Io(e)),
    }
}
