//! Shrinking a failing history by delta debugging: remove chunks of ops (halves, quarters,
//! ..., single ops) while the history still fails the same check, then simplify the ops that
//! remain (shorter batches, smaller payloads, fewer files). Every candidate is a valid history
//! because ops are interpreted relative to the current state.

use crate::sim::check::CheckName;
use crate::sim::ops::{BodySpec, Op};

/// Upper bound on candidate runs per shrink, so shrinking always terminates quickly.
pub const SHRINK_RUNS_MAX: usize = 2000;

/// Shrinks `ops` while `fails(candidate)` returns the same check as the original failure.
/// Returns the shrunk history and how many candidates were run.
pub fn shrink(
    ops: &[Op],
    check: CheckName,
    mut fails: impl FnMut(&[Op]) -> Option<CheckName>,
) -> (Vec<Op>, usize) {
    let mut current = ops.to_vec();
    let mut runs = 0usize;
    let mut still_fails = |candidate: &[Op], runs: &mut usize| {
        *runs += 1;
        fails(candidate) == Some(check)
    };
    // Chunk removal, from large chunks to single ops.
    let mut chunk = current.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        let mut removed_any = false;
        while start < current.len() && runs < SHRINK_RUNS_MAX {
            let end = (start + chunk).min(current.len());
            let mut candidate = current[..start].to_vec();
            candidate.extend_from_slice(&current[end..]);
            if still_fails(&candidate, &mut runs) {
                current = candidate;
                removed_any = true;
            } else {
                start = end;
            }
        }
        if runs >= SHRINK_RUNS_MAX {
            break;
        }
        if chunk == 1 && !removed_any {
            break;
        }
        if !removed_any {
            chunk = (chunk / 2).max(1);
        }
    }
    // Simplify each remaining op.
    let mut index = 0;
    while index < current.len() && runs < SHRINK_RUNS_MAX {
        let mut improved = false;
        for simpler in simplifications(&current[index]) {
            let mut candidate = current.clone();
            candidate[index] = simpler;
            if still_fails(&candidate, &mut runs) {
                current = candidate;
                improved = true;
                break;
            }
        }
        if !improved {
            index += 1;
        }
    }
    (current, runs)
}

/// Strictly simpler variants of one op, most aggressive first.
fn simplifications(op: &Op) -> Vec<Op> {
    let mut out = Vec::new();
    match op {
        Op::Append { entries } if entries.len() > 1 => {
            out.push(Op::Append { entries: entries[..1].to_vec() });
            out.push(Op::Append { entries: entries[..entries.len() / 2].to_vec() });
            out.push(Op::Append { entries: entries[..entries.len() - 1].to_vec() });
        }
        Op::Append { entries } if entries.len() == 1 => {
            let e = &entries[0];
            if let BodySpec::Data { len, seed } = e.body {
                if len > 0 {
                    let mut smaller = e.clone();
                    smaller.body = BodySpec::Data { len: len / 2, seed };
                    out.push(Op::Append { entries: vec![smaller] });
                }
            }
        }
        Op::Snapshot { at, term, peers, old_peers, files, publish } if !files.is_empty() => {
            out.push(Op::Snapshot {
                at: *at,
                term: *term,
                peers: *peers,
                old_peers: *old_peers,
                files: Vec::new(),
                publish: *publish,
            });
            out.push(Op::Snapshot {
                at: *at,
                term: *term,
                peers: *peers,
                old_peers: *old_peers,
                files: files[..files.len() - 1].to_vec(),
                publish: *publish,
            });
        }
        _ => {}
    }
    out
}
