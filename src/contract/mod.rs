//! The storage contract (DESIGN §2): value types, traits, typed errors, and the shared
//! argument checks every family applies so that all families fail the same way.

mod error;
pub mod read_only;
mod storage;
mod types;

pub use error::{ContractError, Corruption, StorageError, StorageResult};
pub use read_only::{ReadOnlyOpen, ViewOnly, ViewSource};
pub use storage::{
    check_append, check_meta, check_new_snapshot_file, check_peers, check_reserved_snapshot_path,
    check_reset, check_snapshot_meta, check_term, check_truncate_prefix,
    range_after_truncate_prefix, range_after_truncate_suffix, Family, ImportSink, RaftStorage,
    SnapshotWriter, StateView, INDEX_MAX, TERM_MAX,
};
pub use types::{
    snapshot_path_problem, Entry, EntryKind, FileMeta, FileSource, Index, Meta, Payload, PeerId,
    SnapshotFileInfo, SnapshotMeta, SnapshotPath, Term, SNAPSHOT_PATH_LEN_MAX,
    SNAPSHOT_PATH_SEGMENT_LEN_MAX,
};
