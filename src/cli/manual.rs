//! `qk completions SHELL` and `qk man`: shell completion scripts and man pages, generated
//! from the same clap definitions the parser uses, so they cannot drift from it.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::{Cli, EXIT_OK, EXIT_USAGE};

/// Arguments of `qk completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `qk man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write qk.1 and one page per subcommand (qk-soak.1, qk-image-export.1, ...) into this
    /// existing directory instead of printing qk.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `qk completions`: the script on stdout; exit 0, or 2 when stdout cannot be written.
pub fn completions(args: CompletionsArgs) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "qk", &mut script);
    write_stdout("completions", &script)
}

/// Runs `qk man`: qk.1 in roff on stdout, or every page written under `--out`; exit 0, or 2
/// when the output cannot be written.
pub fn man(args: ManArgs) -> u8 {
    let command = Cli::command();
    if let Some(dir) = &args.out {
        return match clap_mangen::generate_to(command, dir) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("qk man: writing pages into {}: {e}", dir.display());
                EXIT_USAGE
            }
        };
    }
    let mut page = Vec::new();
    if let Err(e) = clap_mangen::Man::new(command).render(&mut page) {
        eprintln!("qk man: {e}");
        return EXIT_USAGE;
    }
    write_stdout("man", &page)
}

fn write_stdout(command: &str, bytes: &[u8]) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("qk {command}: writing to stdout: {e}");
            EXIT_USAGE
        }
    }
}
