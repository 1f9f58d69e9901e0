//! Forwarding macros for wrappers: a type that wraps a [`StateView`], [`RaftStorage`],
//! [`ImportSink`], [`Vfs`] or [`VfsFile`] and changes a few of its methods lists the ones it
//! passes through unchanged, and spells out only the ones it changes.
//!
//! Each macro is used inside the wrapper's `impl` block as `macro!(field: method, ...)`: every
//! listed method becomes a one-line call of the same method on `self.field`, with the
//! signature the trait declares. Forgetting a required method, or listing one the block also
//! writes, is a compile error as usual. [`delegate_state_view!`] also writes a whole impl for
//! a wrapper that changes nothing on the read side (`delegate_state_view!(Type => field)`).
//!
//! ```text
//! impl StateView for ShortCut {
//!     delegate_state_view!(
//!         inner: first_index, meta, snapshot_meta, snapshot_files, read_snapshot_file
//!     );
//!
//!     fn last_index(&self) -> Index { /* the one change */ }
//!     fn entry(&self, index: Index) -> StorageResult<Option<Entry>> { /* ... */ }
//! }
//! ```
//!
//! [`StateView`]: crate::contract::StateView
//! [`RaftStorage`]: crate::contract::RaftStorage
//! [`ImportSink`]: crate::contract::ImportSink
//! [`Vfs`]: crate::vfs::Vfs
//! [`VfsFile`]: crate::vfs::VfsFile

/// Forwards [`StateView`](crate::contract::StateView) methods to a field.
///
/// - `delegate_state_view!(field: first_index, meta, ...)` inside an `impl StateView` block:
///   the listed methods call the same method on `self.field`.
/// - `delegate_state_view!(Type => field)` at item level: `impl StateView for Type` with
///   every method forwarded, `term` included (so a fast `term` of the field is kept).
///
/// Forward `term` only alongside `entry`: a wrapper that changes `entry` must leave `term` to
/// its default (which reads through the changed `entry`).
macro_rules! delegate_state_view {
    (@ $f:ident first_index) => {
        fn first_index(&self) -> $crate::contract::Index {
            self.$f.first_index()
        }
    };
    (@ $f:ident last_index) => {
        fn last_index(&self) -> $crate::contract::Index {
            self.$f.last_index()
        }
    };
    (@ $f:ident entry) => {
        fn entry(
            &self,
            index: $crate::contract::Index,
        ) -> $crate::contract::StorageResult<Option<$crate::contract::Entry>> {
            self.$f.entry(index)
        }
    };
    (@ $f:ident term) => {
        fn term(
            &self,
            index: $crate::contract::Index,
        ) -> $crate::contract::StorageResult<Option<$crate::contract::Term>> {
            self.$f.term(index)
        }
    };
    (@ $f:ident meta) => {
        fn meta(&self) -> $crate::contract::StorageResult<$crate::contract::Meta> {
            self.$f.meta()
        }
    };
    (@ $f:ident snapshot_meta) => {
        fn snapshot_meta(
            &self,
        ) -> $crate::contract::StorageResult<Option<$crate::contract::SnapshotMeta>> {
            self.$f.snapshot_meta()
        }
    };
    (@ $f:ident snapshot_files) => {
        fn snapshot_files(
            &self,
        ) -> $crate::contract::StorageResult<Vec<$crate::contract::SnapshotFileInfo>> {
            self.$f.snapshot_files()
        }
    };
    (@ $f:ident read_snapshot_file) => {
        fn read_snapshot_file(
            &self,
            path: &$crate::contract::SnapshotPath,
            offset: u64,
            buf: &mut [u8],
        ) -> $crate::contract::StorageResult<usize> {
            self.$f.read_snapshot_file(path, offset, buf)
        }
    };
    ($f:ident: $($method:ident),+ $(,)?) => {
        $($crate::delegate::delegate_state_view!(@ $f $method);)+
    };
    ($ty:ty => $f:ident) => {
        impl $crate::contract::StateView for $ty {
            $crate::delegate::delegate_state_view!(
                $f: first_index,
                last_index,
                entry,
                term,
                meta,
                snapshot_meta,
                snapshot_files,
                read_snapshot_file,
            );
        }
    };
}

/// Forwards [`RaftStorage`](crate::contract::RaftStorage) methods to a field: inside an
/// `impl RaftStorage` block, `delegate_raft_storage!(field: append, reset, ...)` makes each
/// listed method call the same method on `self.field`.
macro_rules! delegate_raft_storage {
    (@ $f:ident family) => {
        fn family(&self) -> &'static str {
            self.$f.family()
        }
    };
    (@ $f:ident append) => {
        fn append(
            &mut self,
            entries: &[$crate::contract::Entry],
        ) -> $crate::contract::StorageResult<()> {
            self.$f.append(entries)
        }
    };
    (@ $f:ident truncate_prefix) => {
        fn truncate_prefix(
            &mut self,
            first_kept: $crate::contract::Index,
        ) -> $crate::contract::StorageResult<()> {
            self.$f.truncate_prefix(first_kept)
        }
    };
    (@ $f:ident truncate_suffix) => {
        fn truncate_suffix(
            &mut self,
            last_kept: $crate::contract::Index,
        ) -> $crate::contract::StorageResult<()> {
            self.$f.truncate_suffix(last_kept)
        }
    };
    (@ $f:ident reset) => {
        fn reset(&mut self, next: $crate::contract::Index) -> $crate::contract::StorageResult<()> {
            self.$f.reset(next)
        }
    };
    (@ $f:ident save_meta) => {
        fn save_meta(
            &mut self,
            meta: &$crate::contract::Meta,
        ) -> $crate::contract::StorageResult<()> {
            self.$f.save_meta(meta)
        }
    };
    (@ $f:ident begin_snapshot) => {
        fn begin_snapshot(
            &mut self,
        ) -> $crate::contract::StorageResult<Box<dyn $crate::contract::SnapshotWriter + '_>> {
            self.$f.begin_snapshot()
        }
    };
    (@ $f:ident begin_export) => {
        fn begin_export(
            &mut self,
        ) -> $crate::contract::StorageResult<Box<dyn $crate::contract::StateView + Send>> {
            self.$f.begin_export()
        }
    };
    (@ $f:ident begin_import) => {
        fn begin_import(
            &mut self,
        ) -> $crate::contract::StorageResult<Box<dyn $crate::contract::ImportSink + '_>> {
            self.$f.begin_import()
        }
    };
    (@ $f:ident family_format_version) => {
        fn family_format_version(&self) -> u32 {
            self.$f.family_format_version()
        }
    };
    (@ $f:ident reserved_snapshot_names) => {
        fn reserved_snapshot_names(&self) -> Vec<&'static str> {
            self.$f.reserved_snapshot_names()
        }
    };
    ($f:ident: $($method:ident),+ $(,)?) => {
        $($crate::delegate::delegate_raft_storage!(@ $f $method);)+
    };
}

/// Forwards [`ImportSink`](crate::contract::ImportSink) methods to a field: inside an
/// `impl ImportSink` block, `delegate_import_sink!(field: append, set_meta, ...)` makes each
/// listed method call the same method on `self.field`. (`commit`, which consumes the sink,
/// is always the wrapper's own.)
macro_rules! delegate_import_sink {
    (@ $f:ident set_first_index) => {
        fn set_first_index(
            &mut self,
            first: $crate::contract::Index,
        ) -> $crate::contract::StorageResult<()> {
            self.$f.set_first_index(first)
        }
    };
    (@ $f:ident append) => {
        fn append(
            &mut self,
            entries: &[$crate::contract::Entry],
        ) -> $crate::contract::StorageResult<()> {
            self.$f.append(entries)
        }
    };
    (@ $f:ident set_meta) => {
        fn set_meta(
            &mut self,
            meta: &$crate::contract::Meta,
        ) -> $crate::contract::StorageResult<()> {
            self.$f.set_meta(meta)
        }
    };
    (@ $f:ident add_snapshot_file) => {
        fn add_snapshot_file(
            &mut self,
            path: &$crate::contract::SnapshotPath,
            file_meta: &$crate::contract::FileMeta,
        ) -> $crate::contract::StorageResult<()> {
            self.$f.add_snapshot_file(path, file_meta)
        }
    };
    (@ $f:ident write_snapshot_file) => {
        fn write_snapshot_file(
            &mut self,
            path: &$crate::contract::SnapshotPath,
            offset: u64,
            data: &[u8],
        ) -> $crate::contract::StorageResult<()> {
            self.$f.write_snapshot_file(path, offset, data)
        }
    };
    (@ $f:ident set_snapshot_meta) => {
        fn set_snapshot_meta(
            &mut self,
            meta: $crate::contract::SnapshotMeta,
        ) -> $crate::contract::StorageResult<()> {
            self.$f.set_snapshot_meta(meta)
        }
    };
    ($f:ident: $($method:ident),+ $(,)?) => {
        $($crate::delegate::delegate_import_sink!(@ $f $method);)+
    };
}

/// Forwards [`Vfs`](crate::vfs::Vfs) methods to a field: inside an `impl Vfs` block,
/// `delegate_vfs!(field: create_dir, rename, ...)` makes each listed method call the same
/// method on `self.field`.
macro_rules! delegate_vfs {
    (@ $f:ident open) => {
        fn open(
            &self,
            path: &std::path::Path,
            options: $crate::vfs::OpenOptions,
        ) -> $crate::vfs::VfsResult<Box<dyn $crate::vfs::VfsFile>> {
            self.$f.open(path, options)
        }
    };
    (@ $f:ident read_dir) => {
        fn read_dir(
            &self,
            path: &std::path::Path,
        ) -> $crate::vfs::VfsResult<Vec<$crate::vfs::DirEntry>> {
            self.$f.read_dir(path)
        }
    };
    (@ $f:ident metadata) => {
        fn metadata(
            &self,
            path: &std::path::Path,
        ) -> $crate::vfs::VfsResult<$crate::vfs::Metadata> {
            self.$f.metadata(path)
        }
    };
    (@ $f:ident declare_write_atomicity) => {
        fn declare_write_atomicity(
            &self,
            path: &std::path::Path,
            atomicity: $crate::vfs::WriteAtomicity,
        ) -> $crate::vfs::VfsResult<()> {
            self.$f.declare_write_atomicity(path, atomicity)
        }
    };
    (@ $f:ident try_lock) => {
        fn try_lock(
            &self,
            path: &std::path::Path,
            mode: $crate::vfs::LockMode,
        ) -> $crate::vfs::VfsResult<Box<dyn $crate::vfs::VfsLock>> {
            self.$f.try_lock(path, mode)
        }
    };
    (@ $f:ident rename) => {
        fn rename(
            &self,
            from: &std::path::Path,
            to: &std::path::Path,
        ) -> $crate::vfs::VfsResult<()> {
            self.$f.rename(from, to)
        }
    };
    // create_dir, remove_file, remove_dir, sync_dir: a path in, nothing out.
    (@ $f:ident $method:ident) => {
        fn $method(&self, path: &std::path::Path) -> $crate::vfs::VfsResult<()> {
            self.$f.$method(path)
        }
    };
    ($f:ident: $($method:ident),+ $(,)?) => {
        $($crate::delegate::delegate_vfs!(@ $f $method);)+
    };
}

/// Forwards [`VfsFile`](crate::vfs::VfsFile) methods to a field: inside an `impl VfsFile`
/// block, `delegate_vfs_file!(field: read_at, write_at, ...)` makes each listed method call
/// the same method on `self.field`.
macro_rules! delegate_vfs_file {
    (@ $f:ident read_at) => {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> $crate::vfs::VfsResult<usize> {
            self.$f.read_at(buf, offset)
        }
    };
    (@ $f:ident write_at) => {
        fn write_at(&self, buf: &[u8], offset: u64) -> $crate::vfs::VfsResult<()> {
            self.$f.write_at(buf, offset)
        }
    };
    (@ $f:ident len) => {
        fn len(&self) -> $crate::vfs::VfsResult<u64> {
            self.$f.len()
        }
    };
    (@ $f:ident set_len) => {
        fn set_len(&self, len: u64) -> $crate::vfs::VfsResult<()> {
            self.$f.set_len(len)
        }
    };
    (@ $f:ident sync) => {
        fn sync(&self) -> $crate::vfs::VfsResult<()> {
            self.$f.sync()
        }
    };
    ($f:ident: $($method:ident),+ $(,)?) => {
        $($crate::delegate::delegate_vfs_file!(@ $f $method);)+
    };
}

/// Inside an `impl RaftStorage` block of a wrapper with a method
/// `fn mutate(&mut self, action: Action) -> StorageResult<()>`: writes `append`,
/// `truncate_prefix`, `truncate_suffix`, `reset` and `save_meta` as that action, so the
/// wrapper applies every log and meta mutation in one place.
macro_rules! mutations_as_actions {
    () => {
        fn append(
            &mut self,
            entries: &[$crate::contract::Entry],
        ) -> $crate::contract::StorageResult<()> {
            self.mutate($crate::sim::engine::ops::Action::Append(entries.to_vec()))
        }

        fn truncate_prefix(
            &mut self,
            first_kept: $crate::contract::Index,
        ) -> $crate::contract::StorageResult<()> {
            self.mutate($crate::sim::engine::ops::Action::TruncatePrefix(first_kept))
        }

        fn truncate_suffix(
            &mut self,
            last_kept: $crate::contract::Index,
        ) -> $crate::contract::StorageResult<()> {
            self.mutate($crate::sim::engine::ops::Action::TruncateSuffix(last_kept))
        }

        fn reset(&mut self, next: $crate::contract::Index) -> $crate::contract::StorageResult<()> {
            self.mutate($crate::sim::engine::ops::Action::Reset(next))
        }

        fn save_meta(
            &mut self,
            meta: &$crate::contract::Meta,
        ) -> $crate::contract::StorageResult<()> {
            self.mutate($crate::sim::engine::ops::Action::SaveMeta(meta.clone()))
        }
    };
}

pub(crate) use {
    delegate_import_sink, delegate_raft_storage, delegate_state_view, delegate_vfs,
    delegate_vfs_file, mutations_as_actions,
};
