//! The engine: what generates, runs and shrinks a history. It decides *when* each check runs
//! (the runner's step loop); what a check verifies lives in [`crate::sim::checks`].

pub mod generator;
pub mod model;
pub mod op_text;
pub mod ops;
pub mod runner;
pub mod shrink;
pub mod undo;
