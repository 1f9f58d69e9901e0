//! `qk migrate --from URI --to URI`: the offline part of a migration between families on real
//! data directories — bootstrap (a pinned cut of the source streamed into the empty
//! destination through its atomic import) and validation (the streaming equivalence
//! validator), with progress and a summary. The source is only read. Cutting over (pointing
//! the node at the destination) is the operator's step afterwards; until then the source is
//! the rollback target.
//!
//! Exit 0: migrated and validated equivalent. 1: the destination differs from the source
//! after the bootstrap. 2: bad usage, an unknown or missing source, a destination that is not
//! empty (refused, untouched), or a storage failure. 130: stopped by SIGINT or SIGTERM.
//! On every exit but 0 the destination holds nothing of the source: its import stages and
//! commits atomically, and whatever the command created (a destination directory or file
//! that did not exist before) is removed ([`super::cleanup`]).

use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::cleanup::{self, CreatedPaths, Interruptible, EXIT_INTERRUPTED};
use super::compare::{open_uri, progress_bar};
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::contract::{ContractError, StorageError};
use crate::dual_write::{BootstrapProgress, BootstrapSummary};
use crate::families::split_uri;
use crate::migrate::{Migration, MigrationError};
use crate::validate::{Comparison, Progress};
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
    if let (Ok((a, x)), Ok((b, y))) = (split_uri(&args.from), split_uri(&args.to)) {
        if a.eq_ignore_ascii_case(b) && x == y {
            return usage("the source and the destination are the same instance");
        }
    }
    cleanup::install_interrupt_handler();
    let created = match CreatedPaths::before_open(&vfs, &args.to) {
        Ok(created) => created,
        Err(e) => return usage(&format!("destination {}: {e}", args.to)),
    };
    // Every instance is closed when `migrate` returns, before the cleanup.
    let code = migrate(&args, vfs);
    if code == EXIT_OK {
        return code;
    }
    let removed = created.remove();
    if !removed.is_empty() {
        let list: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
        eprintln!("qk migrate: removed what the migration had created: {}", list.join(", "));
    }
    if cleanup::interrupted() {
        eprintln!("qk migrate: interrupted; {} holds nothing of the source", args.to);
        return EXIT_INTERRUPTED;
    }
    code
}

fn migrate(args: &MigrateArgs, vfs: VfsHandle) -> u8 {
    let registry = args.recovery.registry();
    let source = match open_uri(&registry, &args.from, vfs.clone(), true) {
        Ok(instance) => instance,
        Err(e) => return usage(&format!("source {e}")),
    };
    let destination = match open_uri(&registry, &args.to, vfs, false) {
        Ok(instance) => instance,
        Err(e) => return usage(&format!("destination {e}")),
    };
    let destination: Box<dyn crate::contract::RaftStorage> =
        Box::new(Interruptible::new(destination));
    let mut migration = match Migration::plan(source, destination) {
        Ok(m) => m,
        Err(refused) => {
            return match &refused.error {
                StorageError::Contract(ContractError::NotEmpty { what }) => usage(&format!(
                    "refusing to migrate into {}: the destination is not empty ({what}); it was \
                     left untouched",
                    args.to
                )),
                e => usage(&format!("{}: {e}", args.to)),
            };
        }
    };
    if !args.json {
        println!("qk migrate: {} -> {}", args.from, args.to);
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
    let summary = match migration.bootstrap(&mut on_bootstrap) {
        Ok(summary) => summary,
        Err(e) => return failed(&bar, "bootstrap", &e),
    };
    bar.set_prefix("validate");
    if let Err(e) = migration.start_dual_write() {
        return failed(&bar, "pairing", &e);
    }
    let mut on_validate = |p: &Progress| {
        bar.set_message(format!(
            "{}/{} entries, {} files, {} bytes",
            p.entries_done, p.entries_total, p.files_done, p.bytes_done
        ));
        bar.tick();
    };
    let validated = migration.validate(&mut on_validate);
    bar.finish_and_clear();
    let comparison = match validated {
        Ok(c) => c,
        Err(MigrationError::NotEquivalent { difference }) => {
            eprintln!("qk migrate: the destination differs from the source: {difference}");
            return EXIT_FAILED;
        }
        Err(e) => return failed(&bar, "validation", &e),
    };
    print_summary(args, &summary, &comparison, migration.phase().name());
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

fn failed(bar: &indicatif::ProgressBar, step: &str, e: &MigrationError) -> u8 {
    bar.finish_and_clear();
    usage(&format!("{step} failed: {e}"))
}
