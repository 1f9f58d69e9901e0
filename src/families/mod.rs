//! Backend families and the URI-scheme registry that opens an instance from a URI.

pub mod local;
pub mod memory;
pub mod redb;

use std::sync::Arc;

use crate::contract::{Family, RaftStorage, StorageError, StorageResult};
use crate::vfs::VfsHandle;

/// Maps URI schemes to families. Schemes match case-insensitively, as braft's do.
#[derive(Default)]
pub struct Registry {
    families: Vec<Arc<dyn Family>>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Registry { families: Vec::new() }
    }

    /// Every family this build has, in a fixed order.
    pub fn builtin() -> Self {
        Registry::builtin_with_recovery(local::RecoveryPolicy::FailClosed)
    }

    /// [`Registry::builtin`] with `local://` instances opened under `recovery` (the other
    /// families have no choice to make): what `qk --recovery` selects.
    pub fn builtin_with_recovery(recovery: local::RecoveryPolicy) -> Self {
        let mut registry = Registry::empty();
        registry.register(Arc::new(memory::MemoryFamily));
        let options = local::LocalOptions { recovery, ..local::LocalOptions::default() };
        registry.register(Arc::new(local::LocalFamily::with_options(options)));
        registry.register(Arc::new(redb::RedbFamily::new()));
        registry
    }

    /// Adds a family; a later family with the same scheme replaces the earlier one.
    pub fn register(&mut self, family: Arc<dyn Family>) {
        self.families.retain(|f| f.scheme() != family.scheme());
        self.families.push(family);
    }

    /// The registered families, in registration order.
    pub fn families(&self) -> &[Arc<dyn Family>] {
        &self.families
    }

    /// The family for `scheme` (case-insensitive).
    pub fn family(&self, scheme: &str) -> Option<&Arc<dyn Family>> {
        self.families.iter().find(|f| f.scheme().eq_ignore_ascii_case(scheme.trim()))
    }

    /// Opens the instance a URI names, with all file I/O through `vfs`.
    pub fn open(&self, uri: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
        let (scheme, location) = split_uri(uri)?;
        let family = self.family(scheme).ok_or_else(|| StorageError::BadUri {
            uri: uri.to_string(),
            reason: format!(
                "unknown scheme {scheme:?}; known: {}",
                self.families.iter().map(|f| f.scheme()).collect::<Vec<_>>().join(", ")
            ),
        })?;
        family.open(&location, vfs)
    }
}

/// Splits `scheme://location` as braft does: the scheme is the trimmed text before the
/// first `://`, and every whitespace character is removed from the location.
pub fn split_uri(uri: &str) -> StorageResult<(&str, String)> {
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| StorageError::BadUri {
        uri: uri.to_string(),
        reason: "no `://`".to_string(),
    })?;
    let scheme = scheme.trim();
    if scheme.is_empty() {
        return Err(StorageError::BadUri { uri: uri.to_string(), reason: "empty scheme".into() });
    }
    let location: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
    Ok((scheme, location))
}
