//! The file system of `unpadded-segment-names`: the local family's segment files stored under
//! unpadded names behind its back.

use std::path::{Path, PathBuf};

use crate::delegate::delegate_vfs;
use crate::families::local::format::SegmentName;
use crate::vfs::{
    DirEntry, Metadata, OpenOptions, Vfs, VfsFile, VfsHandle, VfsResult, WriteAtomicity,
};

/// A file system that stores segment files under unpadded names
/// ([`PlantedBug::UnpaddedSegmentNames`](super::PlantedBug::UnpaddedSegmentNames)):
/// `log_inprogress_<first:020>` is kept as `log_inprogress_<first>` and
/// `log_<first:020>_<last:020>` as `log_<first>_<last>`, and listings translate back, so the
/// family never notices (braft, which opens only padded names, does).
pub(super) struct UnpaddedNames {
    pub(super) inner: VfsHandle,
}

impl UnpaddedNames {
    /// The on-disk path for a path the family names.
    fn stored(path: &Path) -> PathBuf {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return path.to_path_buf();
        };
        match SegmentName::parse(name) {
            Some(segment) if segment.file_name() == name => path.with_file_name(match segment {
                SegmentName::Open { first } => format!("log_inprogress_{first}"),
                SegmentName::Closed { first, last } => format!("log_{first}_{last}"),
            }),
            _ => path.to_path_buf(),
        }
    }
}

impl Vfs for UnpaddedNames {
    delegate_vfs!(inner: create_dir, remove_dir, sync_dir, try_lock);

    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        self.inner.open(&Self::stored(path), options)
    }

    fn declare_write_atomicity(&self, path: &Path, atomicity: WriteAtomicity) -> VfsResult<()> {
        self.inner.declare_write_atomicity(&Self::stored(path), atomicity)
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        self.inner.remove_file(&Self::stored(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()> {
        self.inner.rename(&Self::stored(from), &Self::stored(to))
    }

    fn metadata(&self, path: &Path) -> VfsResult<Metadata> {
        self.inner.metadata(&Self::stored(path))
    }

    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        let mut entries = self.inner.read_dir(path)?;
        for entry in &mut entries {
            if let Some(segment) = SegmentName::parse(&entry.name) {
                entry.name = segment.file_name();
            }
        }
        entries.sort();
        Ok(entries)
    }
}
