//! `qk compare URI URI`: the streaming equivalence validator on two instances of any families
//! on the real file system. Exit 0 when they are equivalent, 1 when they differ (the first
//! difference is printed in words, the first URI first), 2 when an instance cannot be opened
//! or read.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::contract::RaftStorage;
use crate::families::{split_uri, Registry};
use crate::validate::{compare_with_progress, Progress};
use crate::vfs::{OsVfs, Vfs, VfsHandle};

/// Arguments of `qk compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first instance, as a URI (`local://DIR`, `redb://FILE`, ...).
    pub first: String,
    /// The second instance, as a URI.
    pub second: String,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// What opening a `local://` instance does with what it finds.
    #[command(flatten)]
    pub recovery: super::RecoveryFlag,
}

/// Runs `qk compare`.
pub fn run(args: CompareArgs) -> u8 {
    let registry = args.recovery.registry();
    let vfs: VfsHandle = Arc::new(OsVfs::new());
    let first = match open_uri(&registry, &args.first, vfs.clone(), true) {
        Ok(instance) => instance,
        Err(e) => return usage(&e),
    };
    let second = match open_uri(&registry, &args.second, vfs, true) {
        Ok(instance) => instance,
        Err(e) => return usage(&e),
    };
    let bar = progress_bar("comparing");
    let mut on_progress = |p: &Progress| {
        bar.set_message(format!(
            "{}/{} entries, {} files, {} bytes",
            p.entries_done, p.entries_total, p.files_done, p.bytes_done
        ));
        bar.tick();
    };
    let compared = compare_with_progress(first.as_ref(), second.as_ref(), &mut on_progress);
    bar.finish_and_clear();
    let comparison = match compared {
        Ok(c) => c,
        Err(e) => return usage(&format!("reading failed: {e}")),
    };
    if args.json {
        let value = json!({
            "first": args.first,
            "second": args.second,
            "equivalent": comparison.equivalent(),
            "difference": comparison.difference,
            "entries_compared": comparison.entries,
            "files_compared": comparison.files,
            "bytes_compared": comparison.bytes,
        });
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    } else {
        match &comparison.difference {
            None => println!(
                "EQUIVALENT {} and {}: {} entries, {} snapshot files ({} bytes) compared",
                args.first, args.second, comparison.entries, comparison.files, comparison.bytes
            ),
            Some(d) => println!("DIFFERENT  {} vs {}: {d}", args.first, args.second),
        }
    }
    if comparison.equivalent() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

fn usage(message: &str) -> u8 {
    eprintln!("qk compare: {message}");
    EXIT_USAGE
}

/// Opens the instance `uri` names through the registry. With `must_exist`, a durable family's
/// location that does not exist is an error rather than a new, empty instance.
pub(crate) fn open_uri(
    registry: &Registry,
    uri: &str,
    vfs: VfsHandle,
    must_exist: bool,
) -> Result<Box<dyn RaftStorage>, String> {
    let (scheme, location) = split_uri(uri).map_err(|e| e.to_string())?;
    let family = registry.family(scheme).ok_or_else(|| {
        let known: Vec<&str> = registry.families().iter().map(|f| f.scheme()).collect();
        format!("{uri}: unknown scheme {scheme:?}; known: {}", known.join(", "))
    })?;
    if must_exist && family.durable() && !OsVfs::new().exists(Path::new(&location)).unwrap_or(false)
    {
        return Err(format!("{uri}: no such instance ({location} does not exist)"));
    }
    family.open(&location, vfs).map_err(|e| format!("{uri}: {e}"))
}

/// A spinner on standard error when it is a terminal, hidden otherwise.
pub(crate) fn progress_bar(prefix: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(prefix);
    bar
}
