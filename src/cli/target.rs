//! What an operator's URI names, resolved the way braft resolves it and checked for what the
//! command is about to do, so that no command reads or sets up an instance somewhere the
//! operator did not mean.
//!
//! - Whitespace: braft removes every whitespace character from a URI's path and logs a
//!   warning. So does qk, and the warning names the path actually used, resolved.
//! - `memory://` is refused: a memory instance lives inside the process that made it, so a
//!   new `qk` process always finds it empty.
//! - `local://DIR` must be an instance directory (braft's `log`, `raft_meta`, `snapshot`, or
//!   a qk lock file) to be read. To be written (an import or migration destination) it may
//!   also be missing or empty. Anything else — braft's own `DIR/log`, a directory of
//!   unrelated files, a plain file — is refused with a hint, never set up as an empty
//!   instance.
//! - `redb://FILE` must be an existing file to be read, and must not be a directory to be
//!   written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::contract::{Family, RaftStorage, ReadOnlyOpen, StorageResult};
use crate::families::local::{self, DirShape};
use crate::families::{split_uri, Registry};
use crate::vfs::{FileKind, Repair, VfsErrorKind, VfsHandle};

/// What a command does with an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only reads it (inspect, export, compare, a migration's source).
    Read,
    /// Writes it: an import or migration destination, which may not exist yet.
    Write,
}

/// An instance an operator named, resolved and checked.
pub struct Target {
    /// The URI as the operator typed it.
    pub typed: String,
    /// `scheme://location` as it is used (whitespace removed).
    pub uri: String,
    /// The location (the URI without `scheme://`).
    pub location: String,
    /// Its family.
    pub family: Arc<dyn Family>,
    /// Whether something exists at the location already.
    pub exists: bool,
}

impl Target {
    /// Opens the instance read-only (never changes a byte).
    pub fn open_read_only(&self, vfs: &VfsHandle) -> Result<ReadOnlyOpen, String> {
        self.family
            .open_read_only(&self.location, vfs.clone())
            .map_err(|e| format!("{}: {e}", self.typed))
    }

    /// Opens the instance read-write (recovery runs), with what the open repaired. The error
    /// is the family's, typed, so a caller can tell a lock held by another writer
    /// ([`StorageError::Locked`](crate::contract::StorageError::Locked)) from a failure.
    pub fn open_read_write(
        &self,
        vfs: &VfsHandle,
    ) -> StorageResult<(Box<dyn RaftStorage>, Vec<Repair>)> {
        self.family.open_reporting(&self.location, vfs.clone())
    }
}

/// Resolves `uri` for `access` on `vfs`, writing warnings (whitespace removed) to
/// `warnings`; `Err` is the message to print.
pub fn resolve(
    registry: &Registry,
    uri: &str,
    access: Access,
    vfs: &VfsHandle,
    warnings: &mut dyn Write,
) -> Result<Target, String> {
    let (scheme, location) = split_uri(uri).map_err(|e| e.to_string())?;
    let scheme = scheme.to_ascii_lowercase();
    let family = registry.family(&scheme).cloned().ok_or_else(|| {
        let known: Vec<&str> = registry.families().iter().map(|f| f.scheme()).collect();
        format!("{uri}: unknown scheme {scheme:?}; known: {}", known.join(", "))
    })?;
    let resolved = format!("{scheme}://{location}");
    let raw_rest = uri.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    if raw_rest != location {
        let _ = writeln!(
            warnings,
            "qk: warning: removed whitespace from the URI {uri:?} (as braft does); using \
             {resolved} (path {})",
            absolute(Path::new(&location)).display()
        );
    }
    if !family.durable() {
        return Err(format!(
            "{uri}: a {scheme}:// instance lives only inside the process that made it, so a new \
             qk process always finds it empty; name a durable instance (local://DIR, \
             redb://FILE)"
        ));
    }
    if location.is_empty() {
        return Err(format!("{uri}: empty path"));
    }
    let path = Path::new(&location);
    let exists = vfs.exists(path).map_err(|e| format!("{uri}: {e}"))?;
    match scheme.as_str() {
        "local" => check_local(uri, path, access, vfs)?,
        "redb" => check_file(uri, path, access, vfs)?,
        _ if access == Access::Read && !exists => {
            return Err(format!("{uri}: no such instance ({location} does not exist)"))
        }
        _ => {}
    }
    Ok(Target { typed: uri.to_string(), uri: resolved, location, family, exists })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The parent directory to suggest instead of `dir`.
fn parent_hint(dir: &Path) -> String {
    let absolute = absolute(dir);
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    format!("local://{}", parent.display())
}

fn check_local(uri: &str, dir: &Path, access: Access, vfs: &VfsHandle) -> Result<(), String> {
    let shape = local::classify(vfs, dir).map_err(|e| format!("{uri}: {e}"))?;
    let shown = dir.display();
    let refusal = match (shape, access) {
        (DirShape::Instance, _) => return Ok(()),
        (DirShape::Missing | DirShape::Empty, Access::Write) => return Ok(()),
        (DirShape::Missing, Access::Read) => format!("no such instance ({shown} does not exist)"),
        (DirShape::Empty, Access::Read) => {
            format!("{shown} is an empty directory, not an instance")
        }
        (DirShape::NotADirectory, _) => format!(
            "{shown} is a file, not an instance directory (local:// names the directory \
             holding braft's log, raft_meta and snapshot directories)"
        ),
        (DirShape::BraftSubdirectory { which }, _) => format!(
            "{shown} looks like braft's own `{which}` directory, not an instance; the instance \
             is the directory holding it: {}",
            parent_hint(dir)
        ),
        (DirShape::Unrelated { names }, _) => format!(
            "{shown} holds files that are not a braft instance ({}{}); refusing to treat it as \
             one (local:// names the directory holding braft's log, raft_meta and snapshot \
             directories)",
            names.join(", "),
            if names.len() == 5 { ", ..." } else { "" }
        ),
    };
    Err(format!("{uri}: {refusal}"))
}

fn check_file(uri: &str, path: &Path, access: Access, vfs: &VfsHandle) -> Result<(), String> {
    match vfs.metadata(path) {
        Ok(meta) if meta.kind == FileKind::Dir => {
            Err(format!("{uri}: {} is a directory, not a database file", path.display()))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind == VfsErrorKind::NotFound && access == Access::Write => Ok(()),
        Err(e) if e.kind == VfsErrorKind::NotFound => {
            Err(format!("{uri}: no such instance ({} does not exist)", path.display()))
        }
        Err(e) => Err(format!("{uri}: {e}")),
    }
}

/// The repairs as indented lines (`  - remove log/x.tmp`), or `  (none)`.
pub fn repair_lines(repairs: &[Repair]) -> String {
    if repairs.is_empty() {
        return "  (none)\n".to_string();
    }
    repairs.iter().map(|r| format!("  - {r}\n")).collect()
}
