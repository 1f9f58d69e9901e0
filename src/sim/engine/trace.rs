//! The run's trace: one line per step and per thing the runner did (a power loss, a
//! recovery, an export), hashed as it grows so two runs of a seed compare by one hash
//! (the `determinism` check), with the last few lines kept for failure reports.

use std::collections::VecDeque;

use sha2::{Digest, Sha256};

/// A bounded trace: every line feeds a running hash, the last few are kept as text.
#[derive(Clone, Debug)]
pub struct Trace {
    hasher: Sha256,
    tail: VecDeque<String>,
    tail_len: usize,
}

impl Trace {
    /// A trace keeping the last `tail_len` lines.
    pub fn new(tail_len: usize) -> Self {
        Trace { hasher: Sha256::new(), tail: VecDeque::with_capacity(tail_len.min(64)), tail_len }
    }

    /// Adds a line.
    pub fn push(&mut self, line: String) {
        self.hasher.update(line.as_bytes());
        self.hasher.update(b"\n");
        if self.tail_len > 0 {
            if self.tail.len() == self.tail_len {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }

    /// The kept lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// Hex SHA-256 of every line so far.
    pub fn hash(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}
