//! Dual write (DESIGN §6): a [`DualWrite`] pair keeps a mirror of any family equivalent to a
//! primary of any family, so that storage can migrate between families under a live Raft
//! node.
//!
//! # Forming a pair
//!
//! A mirror must be bootstrapped from its primary before dual writes begin, and the pair
//! enforces it: [`DualWrite::new`] checks with the streaming validator that the mirror is
//! equivalent to the primary ([`DualWriteError::NotBootstrapped`] otherwise, naming the first
//! difference); [`DualWrite::bootstrap`] streams the primary into an empty mirror through the
//! mirror's atomic import first. Equivalence, not a marker, is the proof: it is what the pair
//! needs, it cannot go stale, and two fresh instances are trivially a valid pair.
//!
//! # Writing
//!
//! Reads come from the primary. Every mutation — `append`, `truncate_prefix`,
//! `truncate_suffix`, `reset`, `save_meta`, a snapshot publish (the two writers are fed in
//! lockstep, each file chunk to both) and an import (two sinks in lockstep) — goes to the
//! primary first, then to the mirror, and returns Ok only when both returned Ok, that is when
//! both made it durable. Calls are sequential, not concurrent, so the mirror is never ahead of
//! the primary: that gives recovery a direction.
//!
//! A call the primary rejects with a contract error changed nothing anywhere and is returned
//! as is. Any other failure, on either side, is returned as [`DualWriteError::SideFailed`]
//! naming the side, and marks the pair **diverged**: every later mutation fails with
//! [`DualWriteError::Diverged`] until [`DualWrite::revalidate`] (or a restart and
//! [`DualWrite::recover`]) has brought the sides back together.
//!
//! # Recovery and repair rules
//!
//! After a restart or a crash the two sides are reopened and [`DualWrite::recover`] compares
//! them, streaming. Under the atomicity table (DESIGN §2) and the primary-first order, a crash
//! leaves the mirror at most the one in-flight mutation behind the primary (any prefix of an
//! append batch included). The rules, each repair being an ordinary contract call on the
//! mirror with the primary's data:
//!
//! | the mirror, compared with the primary | verdict |
//! |---|---|
//! | equivalent | [`Recovery::Equivalent`] |
//! | empty (volatile mirror, or an import that did not commit) | bootstrap it: [`Recovery::Bootstrapped`] |
//! | log starts below the primary's first index | `truncate_prefix(first)` |
//! | log ends past the primary's last index | `truncate_suffix(last)` |
//! | log ends before the primary's last index | `append` the missing entries, in batches |
//! | the primary's log is empty, the mirror's range differs | `reset(first)` |
//! | term or vote differ | `save_meta` of the primary's |
//! | snapshot differs, the primary has one | publish the primary's through the mirror's writer |
//! | entries both retain differ | must be bootstrapped again |
//! | log starts above the primary's first index (dropped entries the primary retains) | must be bootstrapped again |
//! | the mirror has a snapshot, the primary none (no call retires a snapshot) | must be bootstrapped again |
//!
//! The log, meta and snapshot rules combine (a repair may take several calls), and the plan
//! is made by reading only, before the first call, so a mirror beyond repair is untouched. A
//! repair is checked by validating again ([`DualWriteError::RepairIncomplete`] if the sides
//! still differ). Each repair call is atomic under a crash, so a crash during recovery leaves
//! a mirror the next recovery repairs further. "Must be bootstrapped again" is
//! [`DualWriteError::NeedsBootstrap`]: the instances come back in [`Unpaired`], and the
//! caller bootstraps a fresh, empty mirror ([`DualFamily`] does it by itself, in a new
//! generation beside the old one). Whatever recovery did is reported in the [`Recovery`], so
//! a repaired divergence is never silent.
//!
//! # Files
//!
//! `pair.rs` (the pair), `lockstep.rs` (the lockstep rule, writer and sink), `repair.rs`
//! (rules), `bootstrap.rs` (streaming copy into an import), `family.rs` ([`DualFamily`]:
//! pairs under one location, for the harness), `error.rs`.

mod bootstrap;
mod error;
mod family;
mod lockstep;
mod pair;
mod repair;

pub use bootstrap::{
    bootstrap_into, BootstrapProgress, BootstrapSummary, BATCH_BYTES_MAX, BATCH_ENTRIES_MAX,
};
pub use error::{DualWriteError, Side, Unpaired};
pub use family::{open_uris, DualFamily, Sides};
pub use pair::DualWrite;
pub use repair::{Recovery, RepairStep};
