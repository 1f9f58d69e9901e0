//! Applying one resolved [`Action`] to an instance: the one place that turns an action into
//! contract calls, shared by the runner, the conformance and crash cases and the planted
//! wrappers.

use crate::contract::{RaftStorage, StorageResult};
use crate::sim::engine::ops::Action;

/// Largest chunk a snapshot file is written in.
pub const SNAPSHOT_CHUNK_LEN: usize = 64 * 1024;

/// Applies one action to an instance (restarts and crashes are the caller's business and
/// do nothing here).
pub fn apply_action(instance: &mut dyn RaftStorage, action: &Action) -> StorageResult<()> {
    match action {
        Action::Append(entries) => instance.append(entries),
        Action::TruncatePrefix(i) => instance.truncate_prefix(*i),
        Action::TruncateSuffix(i) => instance.truncate_suffix(*i),
        Action::Reset(i) => instance.reset(*i),
        Action::SaveMeta(meta) => instance.save_meta(meta),
        Action::Snapshot { meta, files, publish } => {
            let mut writer = instance.begin_snapshot()?;
            for file in files {
                writer.add_file(&file.path, &file.file_meta)?;
                let mut offset = 0usize;
                for chunk in file.data.chunks(SNAPSHOT_CHUNK_LEN) {
                    writer.write_file(&file.path, offset as u64, chunk)?;
                    offset += chunk.len();
                }
            }
            writer.set_meta(meta.clone());
            if *publish {
                writer.publish()
            } else {
                Ok(())
            }
        }
        Action::Reopen
        | Action::Crash
        | Action::ArmCrash(_)
        | Action::Export(_)
        | Action::Migrate(_) => Ok(()),
    }
}
