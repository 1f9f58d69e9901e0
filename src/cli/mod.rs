//! The `qk` command line. Each subcommand lives in its own module and returns an exit code:
//! 0 all held, 1 a check failed or a difference was found, 2 bad usage or unreadable input.

pub mod cleanup;
pub mod compare;
pub mod image;
pub mod inspect;
pub mod migrate;
pub mod replay;
pub mod selftest;
pub mod soak;
pub mod target;

use clap::{Parser, Subcommand};

/// Exit code: everything held.
pub const EXIT_OK: u8 = 0;
/// Exit code: a check failed, or a difference was found.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or unreadable input.
pub const EXIT_USAGE: u8 = 2;

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
    }
}
