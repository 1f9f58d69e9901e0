//! `qk inspect URI`: a human summary of any family's instance (range, entries by kind, meta,
//! snapshot and its files), plus the family's own details and what a read-write open would
//! repair; `--json` for machines.
//!
//! Read-only: the instance is opened with [`Family::open_read_only`](crate::contract::Family)
//! (nothing is created, written, cut, renamed or deleted; it works on files the user can only
//! read), under a shared lock that a writer holding the instance refuses. The state shown is
//! the one a read-write open would recover.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use clap::Args;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::target::{self, Access};
use super::{RecoveryFlag, EXIT_OK, EXIT_USAGE};
use crate::contract::{StateView, ViewSource};
use crate::vfs::{OsVfs, ReadOnlyVfs, VfsHandle};

/// Arguments of `qk inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The instance, as a URI (`local://DIR`, `redb://FILE`, ...).
    pub uri: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// What opening a `local://` instance does with what it finds.
    #[command(flatten)]
    pub recovery: super::RecoveryFlag,
}

/// Runs `qk inspect`.
pub fn run(args: InspectArgs) -> u8 {
    let vfs: VfsHandle = Arc::new(OsVfs::new());
    match inspect_on(&vfs, &args.uri, args.recovery, &mut std::io::stderr()) {
        Ok((text, value)) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                print!("{text}");
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("qk inspect: {e}");
            EXIT_USAGE
        }
    }
}

/// The text and JSON summary of the instance a URI names, on the real file system.
pub fn inspect(uri: &str, recovery: RecoveryFlag) -> Result<(String, serde_json::Value), String> {
    let vfs: VfsHandle = Arc::new(OsVfs::new());
    inspect_on(&vfs, uri, recovery, &mut std::io::stderr())
}

/// [`inspect`] on `vfs`, with warnings (a URI whose whitespace was removed) to `warnings`.
/// The instance is opened read-only through the registry `recovery` selects. Issues no
/// mutating call on `vfs`.
pub fn inspect_on(
    vfs: &VfsHandle,
    uri: &str,
    recovery: RecoveryFlag,
    warnings: &mut dyn Write,
) -> Result<(String, serde_json::Value), String> {
    let target = target::resolve(&recovery.registry(), uri, Access::Read, vfs, warnings)?;
    let opened = target.open_read_only(vfs)?;
    let reader: VfsHandle = Arc::new(ReadOnlyVfs::new(vfs.clone()));
    let details = target
        .family
        .inspect_details(&target.location, reader)
        .map_err(|e| format!("{uri}: {e}"))?;
    let (mut text, mut value) =
        summary(&target.uri, opened.view.as_ref()).map_err(|e| format!("{uri}: {e}"))?;
    let how = match opened.source {
        ViewSource::Replayed => "recovery replayed in memory; nothing on disk was changed",
        ViewSource::EngineReadOnly => "the engine's read-only open; nothing needed recovery",
    };
    text.push_str(&format!("opened    read-only ({how})\n"));
    text.push_str("a read-write open would repair:\n");
    text.push_str(&target::repair_lines(&opened.repairs));
    value["read_only"] = json!({ "source": opened.source, "repairs": opened.repairs });
    if let Some((family_text, family_value)) = details {
        text.push_str(&family_text);
        value["details"] = family_value;
    }
    Ok((text, value))
}

fn summary(
    uri: &str,
    view: &dyn StateView,
) -> crate::contract::StorageResult<(String, serde_json::Value)> {
    let (first, last) = (view.first_index(), view.last_index());
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut bytes = 0u64;
    if last >= first {
        for index in first..=last {
            if let Some(entry) = view.entry(index)? {
                *kinds.entry(entry.kind().name()).or_default() += 1;
                if let crate::contract::Payload::Data(d) = &entry.payload {
                    bytes += d.len() as u64;
                }
            }
        }
    }
    let meta = view.meta()?;
    let snapshot = view.snapshot_meta()?;
    let mut files = Vec::new();
    for info in view.snapshot_files()? {
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = view.read_snapshot_file(&info.path, offset, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        files.push(json!({
            "path": info.path.as_str(),
            "len": info.len,
            "sha256": hex::encode(hasher.finalize()),
            "file_meta": crate::image::InspectFileMeta::of(&info.file_meta),
        }));
    }
    let vote = meta.voted_for.as_ref().map(|p| p.as_str().to_string());
    let mut text = format!("instance  {uri}\n");
    text.push_str(&format!(
        "log       [{first}, {last}]  {} entries  ({})  {bytes} data bytes\n",
        last.saturating_add(1).saturating_sub(first),
        kinds.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    ));
    text.push_str(&format!(
        "meta      term {}  vote {}\n",
        meta.term,
        vote.as_deref().unwrap_or("none")
    ));
    match &snapshot {
        None => text.push_str("snapshot  none\n"),
        Some(s) => {
            text.push_str(&format!(
                "snapshot  index {} term {}  peers {:?}  old_peers {:?}  {} files\n",
                s.last_included_index,
                s.last_included_term,
                s.peers.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                s.old_peers.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                files.len()
            ));
            for f in &files {
                text.push_str(&format!(
                    "  {}  {} bytes  sha256 {}\n",
                    f["path"].as_str().unwrap_or(""),
                    f["len"],
                    &f["sha256"].as_str().unwrap_or("")[..16]
                ));
            }
        }
    }
    let value = json!({
        "uri": uri,
        "log": { "first": first, "last": last, "kinds": kinds, "data_bytes": bytes },
        "meta": { "term": meta.term, "voted_for": vote },
        "snapshot": snapshot.map(|s| json!({
            "last_included_index": s.last_included_index,
            "last_included_term": s.last_included_term,
            "peers": s.peers.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "old_peers": s.old_peers.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "files": files,
        })),
    });
    Ok((text, value))
}
