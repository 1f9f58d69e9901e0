//! The `qk` command line.
