//! The `qk` command line. Each subcommand lives in its own module and returns an exit code:
//! 0 all held, 1 a check failed or a difference was found, 2 bad usage or unreadable input.

pub mod image;
