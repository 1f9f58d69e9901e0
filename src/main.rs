//! `qk`: the QuorumKit storage command line.

use std::process::ExitCode;

use clap::Parser;
use quorumkit_storage::cli::{run, Cli};

fn main() -> ExitCode {
    ExitCode::from(run(Cli::parse()))
}
