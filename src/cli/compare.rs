//! `qk compare URI URI`: the streaming equivalence validator on two instances of any families
//! on the real file system. Exit 0 when they are equivalent, 1 when they differ (the first
//! difference is printed in words, the first URI first), 2 when an instance cannot be opened
//! or read.
//!
//! Read-only on both sides: each instance is opened with `Family::open_read_only` (nothing
//! is changed; the state compared is the one a read-write open would recover), under a shared
//! lock that a writer holding the instance refuses.

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::target::{self, Access};
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::contract::{StateView, StorageResult};
use crate::validate::{compare_with_progress, Comparison, Progress};
use crate::vfs::{OsVfs, VfsHandle};

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
    let mut warnings = std::io::stderr();
    let open = |uri: &str, warnings: &mut std::io::Stderr| {
        target::resolve(&registry, uri, Access::Read, &vfs, warnings)?.open_read_only(&vfs)
    };
    let first = match open(&args.first, &mut warnings) {
        Ok(opened) => opened.view,
        Err(e) => return usage(&e),
    };
    let second = match open(&args.second, &mut warnings) {
        Ok(opened) => opened.view,
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
    let compared =
        report(&args.first, &args.second, first.as_ref(), second.as_ref(), &mut on_progress);
    bar.finish_and_clear();
    let report = match compared {
        Ok(r) => r,
        Err(e) => return usage(&format!("reading failed: {e}")),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json).unwrap_or_default());
    } else {
        println!("{}", report.line);
    }
    report.exit_code
}

/// What `qk compare` reports about two opened instances: the comparison, the line it prints,
/// its JSON form and its exit code. `run` prints it; the soak's `validator_agreement` check
/// asks it on instances of every family, so the command's own path is judged against the
/// states' digests.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The validator's comparison.
    pub comparison: Comparison,
    /// The line printed without `--json`: `EQUIVALENT ...`, or `DIFFERENT  A vs B: WORDS`
    /// with the first difference in the validator's words.
    pub line: String,
    /// The `--json` report (`equivalent`, `difference`, counts).
    pub json: serde_json::Value,
    /// [`EXIT_OK`] when equivalent, [`EXIT_FAILED`] when they differ.
    pub exit_code: u8,
}

/// Compares `first` (named `first_uri`) with `second` as `qk compare` does, reporting
/// progress to `on_progress`. A read that fails is the error.
pub fn report(
    first_uri: &str,
    second_uri: &str,
    first: &dyn StateView,
    second: &dyn StateView,
    on_progress: &mut dyn FnMut(&Progress),
) -> StorageResult<Report> {
    let comparison = compare_with_progress(first, second, on_progress)?;
    let json = json!({
        "first": first_uri,
        "second": second_uri,
        "equivalent": comparison.equivalent(),
        "difference": comparison.difference,
        "entries_compared": comparison.entries,
        "files_compared": comparison.files,
        "bytes_compared": comparison.bytes,
    });
    let line = match &comparison.difference {
        None => format!(
            "EQUIVALENT {first_uri} and {second_uri}: {} entries, {} snapshot files ({} bytes) \
             compared",
            comparison.entries, comparison.files, comparison.bytes
        ),
        Some(d) => format!("DIFFERENT  {first_uri} vs {second_uri}: {d}"),
    };
    let exit_code = if comparison.equivalent() { EXIT_OK } else { EXIT_FAILED };
    Ok(Report { comparison, line, json, exit_code })
}

fn usage(message: &str) -> u8 {
    eprintln!("qk compare: {message}");
    EXIT_USAGE
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
