//! QuorumKit's Raft storage layer and the deterministic harness that proves it.
//!
//! - [`contract`]: the storage contract every backend family implements.
//! - [`vfs`]: the file-system seam every family does its I/O through.
//! - [`braft_view`]: what real braft would load from a `local://` directory (an oracle).
//! - [`families`]: the backend families and the URI registry.
//! - [`validate`]: the streaming equivalence validator of any two instances.
//! - [`dual_write`]: dual-write pairs of any two families, their recovery and repair rules.
//! - [`migrate`]: migration between families as a state machine a Raft node drives.
//! - [`image`]: the canonical bootstrap image: spec'd format, streaming export and import.
//! - [`state`]: the Raft-visible state as a value, its digest and first difference.
//! - [`coverage`]: counters of the paths a run took (families mark them; the soak reports).
//! - [`panics`]: the text of a caught panic (a family's panic shield, the harness's check).
//! - [`tunables`]: family options the harness draws per seed (segment size, cache, ...).
//! - [`sim`]: the harness: engine (ops, model, generator, runner, shrinking), checks,
//!   planted bugs, the conformance suite and the soak driver.
//! - [`report`]: the soak report as data (JSON), its merge and its HTML page.
//! - [`cli`]: the `qk` command line.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod braft_view;
pub mod cli;
pub mod contract;
pub mod coverage;
mod delegate;
pub mod dual_write;
pub mod families;
pub mod image;
pub mod migrate;
pub mod panics;
pub mod report;
pub mod sim;
pub mod state;
pub mod tunables;
pub mod validate;
pub mod vfs;
