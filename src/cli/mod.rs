//! The `qk` command line. Each subcommand lives in its own module and returns an exit code:
//! 0 all held, 1 a check failed or a difference was found, 2 bad usage or unreadable input.

pub mod cleanup;
pub mod compare;
pub mod image;
pub mod inspect;
pub mod migrate;
pub mod replay;
pub mod report;
pub mod selftest;
pub mod soak;
pub mod target;

use clap::{Parser, Subcommand, ValueEnum};

use crate::families::local::RecoveryPolicy;
use crate::families::Registry;

/// Exit code: everything held.
pub const EXIT_OK: u8 = 0;
/// Exit code: a check failed, or a difference was found.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or unreadable input.
pub const EXIT_USAGE: u8 = 2;

/// `--recovery`: what an operator command's open of a `local://` instance does with what it
/// finds (DESIGN §3). `strict` fails closed: anything this family cannot vouch for is a typed
/// error naming the file (bytes changed in place, a lost write, a complete but bad record),
/// while what braft itself wrote since is read as braft reads it. `braft` does what braft
/// does: it accepts what braft accepts (a bad payload read as braft reads it, checksum
/// sidecars and lying-fsync marks ignored, segments without `log_meta` deleted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Recovery {
    /// Fail closed (the default): [`RecoveryPolicy::FailClosed`].
    #[default]
    Strict,
    /// Do what braft does: [`RecoveryPolicy::BraftCompatible`].
    Braft,
}

impl Recovery {
    /// The `local://` family's policy for this choice.
    pub fn policy(self) -> RecoveryPolicy {
        match self {
            Recovery::Strict => RecoveryPolicy::FailClosed,
            Recovery::Braft => RecoveryPolicy::BraftCompatible,
        }
    }
}

/// The `--recovery` flag, shared by every command that opens an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct RecoveryFlag {
    /// What opening a `local://` instance does with damage or writes it cannot vouch for:
    /// `strict` fails closed (the default), `braft` does what braft does.
    #[arg(long, value_enum, default_value_t = Recovery::Strict)]
    pub recovery: Recovery,
}

impl RecoveryFlag {
    /// The built-in families, `local://` under the chosen policy.
    pub fn registry(self) -> Registry {
        Registry::builtin_with_recovery(self.recovery.policy())
    }
}

/// The harness catches panics inside families and reports them as the `panic` check (with the
/// message), and a third-party engine under media faults may panic and be caught thousands of
/// times in a soak: the default hook's message and backtrace on stderr would only be noise.
/// Set `QK_SHOW_PANICS=1` to see them.
fn quiet_panics() {
    if std::env::var_os("QK_SHOW_PANICS").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
}

/// QuorumKit storage: simulate, inspect and migrate Raft storage.
#[derive(Debug, Parser)]
#[command(name = "qk", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run generated Raft histories against storage families and check them.
    Soak(soak::SoakArgs),
    /// Export, import, verify, inspect and diff canonical bootstrap images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Summarise a storage instance (any family) by URI.
    Inspect(inspect::InspectArgs),
    /// Replay one history (a regression file or a seed) and print its trace and verdict.
    Replay(replay::ReplayArgs),
    /// Prove every check bites: plant bugs and require the harness to catch each.
    Selftest(selftest::SelftestArgs),
    /// Compare two instances of any families (streaming); exit 1 on the first difference.
    Compare(compare::CompareArgs),
    /// Bootstrap an empty destination from a source of any family and validate it.
    Migrate(migrate::MigrateArgs),
    /// Merge soak JSON reports of shards and render them as JSON or a self-contained HTML page.
    #[command(subcommand)]
    Report(report::ReportCommand),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    if matches!(cli.command, Command::Soak(_) | Command::Selftest(_) | Command::Replay(_)) {
        quiet_panics();
    }
    match cli.command {
        Command::Soak(args) => soak::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Image(cmd) => image::run(cmd),
        Command::Selftest(args) => selftest::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Report(cmd) => report::run(cmd),
    }
}
