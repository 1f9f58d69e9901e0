//! The simulation: operations as data, the reference model, the generator, the executor,
//! shrinking, the conformance suite and the soak driver.
//!
//! Data flow: a seed → [`generator::generate`] → `Vec<Op>` → [`runner::Runner`] resolves each
//! op against the [`model::Model`] into an [`ops::Action`], applies it to the family instance
//! (which does its I/O through the `Vfs`) and to the model, and checks them after every step.

pub mod check;
pub mod conformance;
pub mod crash_cases;
pub mod dual;
pub mod fuzz_checks;
pub mod generator;
pub mod image_checks;
pub mod model;
pub mod op_text;
pub mod ops;
pub mod planted;
mod planted_import;
mod planted_lock;
pub mod read_only_check;
pub mod regression;
pub mod runner;
pub mod selftest;
pub mod shrink;
pub mod soak;
pub mod undo;
