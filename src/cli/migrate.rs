//! `qk migrate --from URI --to URI`: the offline part of a migration between families on real
//! data directories — bootstrap (a pinned cut of the source streamed into the empty
//! destination through its atomic import) and validation (the streaming equivalence
//! validator), with progress and a summary. The source is only read: it is opened with
//! `Family::open_read_only` (nothing on it changes; what is migrated is the state a
//! read-write open would recover), under a shared lock that a writer holding it refuses. The
//! destination's emptiness is checked read-only too, so a refused destination is untouched;
//! then it is opened read-write (its exclusive lock held throughout) and what that open
//! repaired is printed. Cutting over (pointing the node at the destination) is the operator's
//! step afterwards; until then the source is the rollback target.
//!
//! Exit 0: migrated and validated equivalent. 1: the destination differs from the source
//! after the bootstrap. 2: bad usage, an unknown or missing source, a destination that is not
//! empty (refused, untouched), or a storage failure. 130: stopped by SIGINT or SIGTERM.
//! On every exit but 0 the destination holds nothing of the source: its import stages and
//! commits atomically, and whatever the command created (a destination directory or file
//! that did not exist before) is removed ([`super::cleanup`]) — unless another writer holds
//! the destination or filled it meanwhile: its files are left alone.

use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::cleanup::{self, CreatedPaths, Interruptible, EXIT_INTERRUPTED};
use super::compare::progress_bar;
use super::target::{self, Access};
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::contract::{RaftStorage, StorageError};
use crate::dual_write::{bootstrap_into, BootstrapProgress, BootstrapSummary};
use crate::families::memory::non_empty_reason;
use crate::validate::{compare_with_progress, Comparison, Progress};
use crate::vfs::{OsVfs, VfsHandle};

/// Arguments of `qk migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The source instance, as a URI (`local://DIR`, `redb://FILE`, ...); only read.
    #[arg(long)]
    pub from: String,
    /// The destination instance, as a URI; must be empty (or not exist yet).
    #[arg(long)]
    pub to: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// What opening a `local://` instance (source or destination) does with what it finds.
    #[command(flatten)]
    pub recovery: super::RecoveryFlag,
}

/// Runs `qk migrate`.
pub fn run(args: MigrateArgs) -> u8 {
    run_on(args, Arc::new(OsVfs::new()))
}

/// [`run`] on a given file system (tests inject faults through a wrapper of [`OsVfs`]).
pub fn run_on(args: MigrateArgs, vfs: VfsHandle) -> u8 {
    cleanup::install_interrupt_handler();
    let mut created = None;
    // Every instance is closed when `migrate` returns, before the cleanup.
    let code = migrate(&args, vfs, &mut created);
    if code == EXIT_OK {
        return code;
    }
    if let Some(created) = created {
        let removed = created.remove();
        if !removed.is_empty() {
            let list: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
            eprintln!("qk migrate: removed what the migration had created: {}", list.join(", "));
        }
    }
    if cleanup::interrupted() {
        eprintln!("qk migrate: interrupted; {} holds nothing of the source", args.to);
        return EXIT_INTERRUPTED;
    }
    code
}

/// The migration. `created` is what the destination's open may create, recorded just before
/// it; it is left `None` when a failure must not clean up: before that open, or when another
/// writer holds the destination (its lock refused us) or filled it after our read-only check.
fn migrate(args: &MigrateArgs, vfs: VfsHandle, created: &mut Option<CreatedPaths>) -> u8 {
    let registry = args.recovery.registry();
    let mut warnings = std::io::stderr();
    let source = match target::resolve(&registry, &args.from, Access::Read, &vfs, &mut warnings) {
        Ok(t) => t,
        Err(e) => return usage(&format!("source {e}")),
    };
    let dest = match target::resolve(&registry, &args.to, Access::Write, &vfs, &mut warnings) {
        Ok(t) => t,
        Err(e) => return usage(&format!("destination {e}")),
    };
    let same_path =
        std::path::absolute(&source.location).ok() == std::path::absolute(&dest.location).ok();
    if source.family.scheme() == dest.family.scheme() && same_path {
        return usage("the source and the destination are the same instance");
    }
    let source_view = match source.open_read_only(&vfs) {
        Ok(opened) => opened.view,
        Err(e) => return usage(&format!("source {e}")),
    };
    if dest.exists {
        // Refuse a non-empty destination before opening it for writing (which could repair it).
        let refusal = dest.open_read_only(&vfs).and_then(|opened| {
            non_empty_reason(opened.view.as_ref()).map_err(|e| format!("{}: {e}", args.to))
        });
        match refusal {
            Ok(None) => {}
            Ok(Some(what)) => {
                return usage(&format!(
                    "refusing to migrate into {}: the destination is not empty ({what}); it was \
                     left untouched",
                    args.to
                ))
            }
            Err(e) => return usage(&format!("destination {e}")),
        }
    }
    let paths = match CreatedPaths::before_open(&vfs, &dest.uri) {
        Ok(paths) => paths,
        Err(e) => return usage(&format!("destination {}: {e}", args.to)),
    };
    let (destination, repairs) = match dest.open_read_write(&paths.vfs()) {
        Ok(opened) => opened,
        Err(e @ StorageError::Locked { .. }) => return usage(&format!("destination {e}")),
        Err(e) => {
            *created = Some(paths);
            return usage(&format!("destination {}: {e}", args.to));
        }
    };
    // Again under the exclusive lock: another writer may have filled it since the check.
    match non_empty_reason(destination.as_ref()) {
        Ok(None) => {}
        Ok(Some(what)) => {
            return usage(&format!(
                "refusing to migrate into {}: the destination is not empty ({what}; another \
                 writer filled it after it was checked); nothing was migrated",
                args.to
            ))
        }
        Err(e) => return usage(&format!("destination {}: {e}", args.to)),
    }
    *created = Some(paths);
    let mut destination: Box<dyn RaftStorage> = Box::new(Interruptible::new(destination));
    if !args.json {
        println!("qk migrate: {} -> {}", args.from, args.to);
        if dest.exists && !repairs.is_empty() {
            print!("opening the destination repaired:\n{}", target::repair_lines(&repairs));
        }
    }
    let bar = progress_bar("bootstrap");
    let mut on_bootstrap = |p: &BootstrapProgress| {
        bar.set_message(format!(
            "{}/{} entries, {}/{} files, {}/{} bytes",
            p.entries_done,
            p.entries_total,
            p.files_done,
            p.files_total,
            p.bytes_done,
            p.bytes_total
        ));
        bar.tick();
    };
    let summary =
        match bootstrap_into(source_view.as_ref(), destination.as_mut(), &mut on_bootstrap) {
            Ok(summary) => summary,
            Err(e) => return failed(&bar, "bootstrap", &e),
        };
    bar.set_prefix("validate");
    let mut on_validate = |p: &Progress| {
        bar.set_message(format!(
            "{}/{} entries, {} files, {} bytes",
            p.entries_done, p.entries_total, p.files_done, p.bytes_done
        ));
        bar.tick();
    };
    let validated =
        compare_with_progress(source_view.as_ref(), destination.as_ref(), &mut on_validate);
    bar.finish_and_clear();
    let comparison = match validated {
        Ok(c) if c.equivalent() => c,
        Ok(c) => {
            let difference = c.difference.unwrap_or_default();
            eprintln!("qk migrate: the destination differs from the source: {difference}");
            return EXIT_FAILED;
        }
        Err(e) => return failed(&bar, "validation", &e),
    };
    print_summary(args, &summary, &comparison, "validated");
    EXIT_OK
}

fn print_summary(args: &MigrateArgs, s: &BootstrapSummary, c: &Comparison, phase: &str) {
    if args.json {
        let value = json!({
            "from": args.from,
            "to": args.to,
            "bootstrap": s,
            "validation": c,
            "phase": phase,
        });
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return;
    }
    println!("log       [{}, {}] ({} entries)", s.first, s.last, s.entries);
    println!("meta      term {}, {}", s.term, s.voted_for.as_deref().unwrap_or("no vote"));
    match s.snapshot_index {
        Some(index) => {
            println!("snapshot  at index {index}, {} files, {} bytes", s.files, s.bytes)
        }
        None => println!("snapshot  none"),
    }
    println!(
        "validated equivalent ({} entries, {} files, {} bytes compared)",
        c.entries, c.files, c.bytes
    );
    println!(
        "phase     {phase}: point the node at {} to cut over; {} is unchanged and stays the \
         rollback target until then",
        args.to, args.from
    );
}

fn usage(message: &str) -> u8 {
    eprintln!("qk migrate: {message}");
    EXIT_USAGE
}

fn failed(bar: &indicatif::ProgressBar, step: &str, e: &dyn std::fmt::Display) -> u8 {
    bar.finish_and_clear();
    usage(&format!("{step} failed: {e}"))
}
