//! The simulation harness, grouped by role:
//!
//! - [`engine`]: what runs a history — operations as data and their text form, the
//!   reference model, the generator, the subjects a history runs on, the runner (its step
//!   loop and one module per phase), the undo record and shrinking.
//! - [`checks`]: the named checks of DESIGN §7, one file each, and the failure record.
//! - [`planted`]: wrapper families with bugs planted on purpose, proving the checks bite.
//! - [`conformance`]: the named conformance cases and the per-method crash cases a family's
//!   test file runs with one macro line.
//! - [`soak`]: the soak driver (seed and fault plans, summaries, shrinking a failure),
//!   regression files and the self-test.
//! - [`fuzz_checks`]: the check functions behind the history fuzz targets.
//!
//! Data flow: a seed → [`engine::generator::generate`] → `Vec<Op>` →
//! [`engine::runner::Runner`] resolves each op against the [`engine::model::Model`] into an
//! [`engine::ops::Action`], applies it to the family instance (which does its I/O through the
//! `Vfs`) and to the model, and asks the [`checks`] after every step.

pub mod checks;
pub mod conformance;
pub mod engine;
pub mod fuzz_checks;
pub mod planted;
pub mod soak;
