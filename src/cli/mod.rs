//! The `qk` command line. Each subcommand lives in its own module and returns an exit code:
//! 0 all held, 1 a check failed or a difference was found, 2 bad usage, unreadable input or
//! a run that checked nothing (the rule [`EXIT_CODES`] states in `qk --help`).

pub mod args;
pub mod cleanup;
pub mod compare;
pub mod image;
pub mod inspect;
pub mod manual;
pub mod migrate;
pub mod replay;
pub mod report;
pub mod selftest;
pub mod soak;
pub mod target;

use std::sync::LazyLock;

use clap::{Parser, Subcommand, ValueEnum};

use crate::families::local::RecoveryPolicy;
use crate::families::Registry;

/// Exit code: everything held.
pub const EXIT_OK: u8 = 0;
/// Exit code: a check failed, or a difference was found.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or unreadable input, or a run that checked nothing.
pub const EXIT_USAGE: u8 = 2;

/// The exit-code rule every subcommand follows, as `qk --help` prints it.
pub const EXIT_CODES: &str = "Exit codes (every subcommand):
  0    everything held
  1    a finding: a check failed, a difference was found, or an image file failed the
       image format's own checks (magic, checksums, structure)
  2    bad usage (clap's own errors, a flag out of its range), input that cannot be read or
       opened (a missing file, an I/O error, an instance whose open fails or refuses), or a
       run that checked nothing (no seed ran, or no history ran a step)
  130  an image import or a migration stopped by SIGINT/SIGTERM, after its cleanup";

/// What `qk --version` prints after the name: the crate version, the image format version
/// this build writes, and the git commit it was built from (`unknown` when built outside a
/// git checkout; `build.rs` looks it up).
pub fn version_text() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} (image format {}.{}, commit {})",
            env!("CARGO_PKG_VERSION"),
            crate::image::format::FORMAT_MAJOR,
            crate::image::format::FORMAT_MINOR,
            env!("QK_GIT_COMMIT"),
        )
    });
    TEXT.as_str()
}

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
/// So the hook installed here stays silent for a panic raised inside the harness's catch
/// ([`crate::panics::caught_here`]) and hands every other one — a panic of the harness or
/// of `qk` itself, which ends the run — to the hook it replaced. Set `QK_SHOW_PANICS=1` to
/// see the caught ones too. `qk soak`, `selftest` and `replay` install it.
pub fn quiet_panics() {
    if std::env::var_os("QK_SHOW_PANICS").is_some() {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !crate::panics::caught_here() {
            previous(info);
        }
    }));
}

/// QuorumKit storage: simulate, inspect and migrate Raft storage.
#[derive(Debug, Parser)]
#[command(name = "qk", version = version_text(), about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Print less: no progress bar, no option header, no per-step trace or table rows that
    /// only say a check held. Findings, verdicts and errors are still printed.
    #[arg(long, short, global = true)]
    pub quiet: bool,
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
    /// Print a shell completion script for qk (bash, elvish, fish, powershell, zsh).
    Completions(manual::CompletionsArgs),
    /// Print the qk(1) man page in roff, or write every page into a directory with --out.
    Man(manual::ManArgs),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    if matches!(cli.command, Command::Soak(_) | Command::Selftest(_) | Command::Replay(_)) {
        quiet_panics();
    }
    let quiet = cli.quiet;
    match cli.command {
        Command::Soak(args) => soak::run(soak::SoakArgs { quiet, ..args }),
        Command::Replay(args) => replay::run(replay::ReplayArgs { quiet, ..args }),
        Command::Inspect(args) => inspect::run(args),
        Command::Image(cmd) => image::run(cmd),
        Command::Selftest(args) => selftest::run(selftest::SelftestArgs { quiet, ..args }),
        Command::Compare(args) => compare::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Report(cmd) => report::run(cmd),
        Command::Completions(args) => manual::completions(args),
        Command::Man(args) => manual::man(args),
    }
}
