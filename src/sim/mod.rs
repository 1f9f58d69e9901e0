//! The simulation: operations as data, the reference model, the generator and the executor.
