//! The engine: what generates, runs and shrinks a history. It decides *when* each check runs
//! (the runner's step loop); what a check verifies lives in [`crate::sim::checks`].
//!
//! - [`ops`]: `Op` (a history's element, relative to the current state) and `Action` (one
//!   resolved contract call); [`op_text`] their one-line text form.
//! - [`model`]: the reference model, the oracle.
//! - [`generator`]: seeded histories, Raft-plausible or raw.
//! - [`subject`]: what a history runs on — a family, a dual-write pair, or a migration.
//! - [`migration`]: a migration as a subject: its steps woven into a history, and the
//!   driver that runs them (its own small loop beside the runner).
//! - [`apply`]: an `Action` turned into contract calls on an instance.
//! - [`runner`]: the step loop, one module per phase; [`trace`] its hashed trace.
//! - [`undo`]: the model's state before a step, kept as an undo record.
//! - [`shrink`]: delta debugging over op lists and fault plans.
//! - [`tunables`]: the family tunables a run uses, drawn per seed, and their shrinking.

pub mod apply;
pub mod generator;
pub mod migration;
pub mod model;
pub mod op_text;
pub mod ops;
pub mod runner;
pub mod shrink;
pub mod subject;
pub mod trace;
pub mod tunables;
pub mod undo;
