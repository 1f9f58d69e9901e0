//! Shrinking a failing history by delta debugging: remove chunks of ops (halves, quarters,
//! ..., single ops) while the history still fails the same check, then simplify the ops that
//! remain (shorter batches, smaller payloads, fewer files). Every candidate is a valid history
//! because ops are interpreted relative to the current state.
//!
//! [`shrink_with_faults`] also shrinks the fault plan the history failed under: it tries the
//! plan without any fault, then made honest, then without each fault kind in turn
//! ([`FaultKind::ALL`] order), keeping a removal only when the history still fails the same
//! check, and shrinks the ops again whenever the plan lost a fault (fewer faults may let more
//! ops go, and fewer ops may let more faults go), until neither changes. Each fault kind
//! draws from its own generator stream on the simulated disk, so switching one off leaves
//! the others (and the crashes) firing where they did. Every step is a pure function of its
//! inputs and the candidate order is fixed: shrinking is deterministic.

use crate::sim::checks::CheckName;
use crate::sim::engine::ops::{BodySpec, Op};
use crate::vfs::{FaultKind, FaultPlan};

/// Upper bound on candidate runs spent shrinking ops (over every round of
/// [`shrink_with_faults`] together), so shrinking always terminates quickly.
pub const SHRINK_RUNS_MAX: usize = 2000;

/// Upper bound on candidate runs spent shrinking a fault plan. A round tries at most
/// [`FaultKind::ALL`]`.len() + 2` plans and every round but the last removes a fault, so this
/// bound is never reached; it only makes termination evident.
pub const PLAN_SHRINK_RUNS_MAX: usize = 128;

/// Shrinks `ops` while `fails(candidate)` returns the same check as the original failure.
/// Returns the shrunk history and how many candidates were run.
pub fn shrink(
    ops: &[Op],
    check: CheckName,
    mut fails: impl FnMut(&[Op]) -> Option<CheckName>,
) -> (Vec<Op>, usize) {
    shrink_ops(ops, check, &mut fails, SHRINK_RUNS_MAX)
}

/// A failing history and fault plan after [`shrink_with_faults`].
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk {
    /// The shrunk history.
    pub ops: Vec<Op>,
    /// The shrunk plan: the original with zero or more fault kinds switched off (never with
    /// anything added or a rate changed).
    pub faults: FaultPlan,
    /// The fault kinds switched off, in [`FaultKind::ALL`] order.
    pub removed: Vec<FaultKind>,
    /// Candidate runs spent (ops and plans).
    pub runs: usize,
}

/// Shrinks a history and the fault plan it failed under, keeping every change only while
/// `fails(ops, plan)` still returns `check` (see the module doc for the order). The result
/// fails `check` whenever the original did (`fails` being deterministic), and with
/// `faults.is_none()` it is returned unchanged apart from the ops.
pub fn shrink_with_faults(
    ops: &[Op],
    faults: &FaultPlan,
    check: CheckName,
    mut fails: impl FnMut(&[Op], &FaultPlan) -> Option<CheckName>,
) -> Shrunk {
    let mut plan = faults.clone();
    let mut ops = ops.to_vec();
    let (mut op_runs, mut plan_runs) = (0usize, 0usize);
    let mut first_round = true;
    loop {
        let shrunk_plan = shrink_plan(&ops, &plan, check, &mut fails, &mut plan_runs);
        let plan_changed = shrunk_plan != plan;
        plan = shrunk_plan;
        if !first_round && !plan_changed {
            break;
        }
        first_round = false;
        let budget = SHRINK_RUNS_MAX.saturating_sub(op_runs);
        let mut under_plan = |candidate: &[Op]| fails(candidate, &plan);
        let (shrunk_ops, runs) = shrink_ops(&ops, check, &mut under_plan, budget);
        op_runs += runs;
        ops = shrunk_ops;
        if plan.is_none() {
            break;
        }
    }
    let removed = faults.kinds().into_iter().filter(|k| !plan.has(*k)).collect();
    Shrunk { ops, faults: plan, removed, runs: op_runs + plan_runs }
}

/// One round of plan shrinking on fixed `ops`: no faults at all (accepted: done), the plan
/// made honest, then without each remaining kind in turn.
fn shrink_plan(
    ops: &[Op],
    plan: &FaultPlan,
    check: CheckName,
    fails: &mut impl FnMut(&[Op], &FaultPlan) -> Option<CheckName>,
    runs: &mut usize,
) -> FaultPlan {
    let mut plan = plan.clone();
    let mut still_fails = |candidate: &FaultPlan, runs: &mut usize| {
        if *runs >= PLAN_SHRINK_RUNS_MAX {
            return false;
        }
        *runs += 1;
        fails(ops, candidate) == Some(check)
    };
    if plan.is_none() {
        return plan;
    }
    if still_fails(&FaultPlan::none(), runs) {
        return FaultPlan::none();
    }
    let honest = plan.honest_part();
    if honest != plan && !honest.is_none() && still_fails(&honest, runs) {
        plan = honest;
    }
    for kind in plan.kinds() {
        let candidate = plan.without(kind);
        if candidate.is_none() {
            continue; // tried first
        }
        if still_fails(&candidate, runs) {
            plan = candidate;
        }
    }
    plan
}

/// Delta debugging over `ops` with at most `budget` candidate runs.
fn shrink_ops(
    ops: &[Op],
    check: CheckName,
    fails: &mut dyn FnMut(&[Op]) -> Option<CheckName>,
    budget: usize,
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
        while start < current.len() && runs < budget {
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
        if runs >= budget {
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
    while index < current.len() && runs < budget {
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
