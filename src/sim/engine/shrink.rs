//! Shrinking a failing history by delta debugging: remove chunks of ops (halves, quarters,
//! ..., single ops) while the history still fails the same check, then simplify the ops that
//! remain (shorter batches, smaller payloads, fewer files). Every candidate is a valid history
//! because ops are interpreted relative to the current state.
//!
//! Every op keeps its *key*, its position in the original history, through every removal
//! ([`Shrunk::keys`]); candidates are run with their ops' keys, and on a disk with per-step
//! fault streams ([`crate::vfs::FaultStreams::Steps`]) a step's faults and crash choices are
//! drawn from its key alone, so a fault stays with the op it hit when other ops are removed
//! (instead of moving to whichever call now has its global disk-operation number).
//!
//! [`shrink_with_faults`] also shrinks the fault plan the history failed under: it tries the
//! plan without any fault, then made honest, then without each fault kind in turn
//! ([`FaultKind::ALL`] order), keeping a removal only when the history still fails the same
//! check, and shrinks the ops again whenever the plan lost a fault (fewer faults may let more
//! ops go, and fewer ops may let more faults go), until neither changes. Each fault kind
//! draws from its own generator stream on the simulated disk, so switching one off leaves
//! the others (and the crashes) firing where they did. Every step is a pure function of its
//! inputs and the candidate order is fixed: shrinking is deterministic.
//!
//! The caller's `keep_going` is asked before every candidate run: it may stop a shrink early
//! (the soak's time budget), never change what a candidate does. A shrink stopped early
//! returns the smallest failing history found so far, marked [`Shrunk::cut_short`].

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

/// A failing history and fault plan after shrinking.
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk {
    /// The shrunk history.
    pub ops: Vec<Op>,
    /// Each shrunk op's key: its position in the original history (strictly increasing).
    pub keys: Vec<u64>,
    /// The shrunk plan: the original with zero or more fault kinds switched off (never with
    /// anything added or a rate changed).
    pub faults: FaultPlan,
    /// The fault kinds switched off, in [`FaultKind::ALL`] order.
    pub removed: Vec<FaultKind>,
    /// Candidate runs spent (ops and plans).
    pub runs: usize,
    /// `keep_going` stopped the shrink before it was done: the result fails, but further
    /// removals were not tried.
    pub cut_short: bool,
}

/// Shrinks `ops` (keyed by their positions, `0..ops.len()`) while `fails(candidate, keys)`
/// returns `check`, asking `keep_going` before every candidate.
pub fn shrink(
    ops: &[Op],
    check: CheckName,
    keep_going: &mut dyn FnMut() -> bool,
    mut fails: impl FnMut(&[Op], &[u64]) -> Option<CheckName>,
) -> Shrunk {
    let mut budget = Budget { runs_left: SHRINK_RUNS_MAX, keep_going, cut_short: false };
    let mut under = |candidate: &[Keyed]| {
        let (ops, keys) = unzip(candidate);
        fails(&ops, &keys)
    };
    let (items, runs) = shrink_ops(&keyed(ops), check, &mut under, &mut budget);
    let (ops, keys) = unzip(&items);
    Shrunk {
        ops,
        keys,
        faults: FaultPlan::none(),
        removed: Vec::new(),
        runs,
        cut_short: budget.cut_short,
    }
}

/// Shrinks a history (keyed by positions, `0..ops.len()`) and the fault plan it failed
/// under, keeping every change only while `fails(ops, keys, plan)` still returns `check`
/// (see the module doc for the order). The result fails `check` whenever the original did
/// (`fails` being deterministic), and with `faults.is_none()` it is returned unchanged apart
/// from the ops.
pub fn shrink_with_faults(
    ops: &[Op],
    faults: &FaultPlan,
    check: CheckName,
    keep_going: &mut dyn FnMut() -> bool,
    mut fails: impl FnMut(&[Op], &[u64], &FaultPlan) -> Option<CheckName>,
) -> Shrunk {
    let mut plan = faults.clone();
    let mut items = keyed(ops);
    let mut budget = Budget { runs_left: SHRINK_RUNS_MAX, keep_going, cut_short: false };
    let (mut op_runs, mut plan_runs) = (0usize, 0usize);
    let mut first_round = true;
    loop {
        let shrunk_plan =
            shrink_plan(&items, &plan, check, &mut fails, &mut budget, &mut plan_runs);
        let plan_changed = shrunk_plan != plan;
        plan = shrunk_plan;
        if budget.cut_short || (!first_round && !plan_changed) {
            break;
        }
        first_round = false;
        let mut under_plan = |candidate: &[Keyed]| {
            let (ops, keys) = unzip(candidate);
            fails(&ops, &keys, &plan)
        };
        let (shrunk, runs) = shrink_ops(&items, check, &mut under_plan, &mut budget);
        op_runs += runs;
        items = shrunk;
        if plan.is_none() || budget.cut_short {
            break;
        }
    }
    let removed = faults.kinds().into_iter().filter(|k| !plan.has(*k)).collect();
    let (ops, keys) = unzip(&items);
    Shrunk {
        ops,
        keys,
        faults: plan,
        removed,
        runs: op_runs + plan_runs,
        cut_short: budget.cut_short,
    }
}

/// An op and its key.
type Keyed = (u64, Op);

fn keyed(ops: &[Op]) -> Vec<Keyed> {
    ops.iter().enumerate().map(|(i, op)| (i as u64, op.clone())).collect()
}

fn unzip(items: &[Keyed]) -> (Vec<Op>, Vec<u64>) {
    (items.iter().map(|(_, op)| op.clone()).collect(), items.iter().map(|(k, _)| *k).collect())
}

/// What may still be spent shrinking ops: candidate runs, and the caller's say.
struct Budget<'a> {
    runs_left: usize,
    keep_going: &'a mut dyn FnMut() -> bool,
    cut_short: bool,
}

impl Budget<'_> {
    /// Takes one candidate run for ops, if any is left.
    fn take_op_run(&mut self) -> bool {
        if self.runs_left == 0 || !self.ask() {
            return false;
        }
        self.runs_left -= 1;
        true
    }

    /// Whether the caller lets another candidate run (remembering a no).
    fn ask(&mut self) -> bool {
        if !self.cut_short && !(self.keep_going)() {
            self.cut_short = true;
        }
        !self.cut_short
    }
}

/// One round of plan shrinking on fixed `items`: no faults at all (accepted: done), the plan
/// made honest, then without each remaining kind in turn.
fn shrink_plan(
    items: &[Keyed],
    plan: &FaultPlan,
    check: CheckName,
    fails: &mut impl FnMut(&[Op], &[u64], &FaultPlan) -> Option<CheckName>,
    budget: &mut Budget<'_>,
    runs: &mut usize,
) -> FaultPlan {
    let (ops, keys) = unzip(items);
    let mut plan = plan.clone();
    let mut still_fails = |candidate: &FaultPlan, runs: &mut usize| {
        if *runs >= PLAN_SHRINK_RUNS_MAX || !budget.ask() {
            return false;
        }
        *runs += 1;
        fails(&ops, &keys, candidate) == Some(check)
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

/// Delta debugging over `items`, spending candidate runs from `budget`.
fn shrink_ops(
    items: &[Keyed],
    check: CheckName,
    fails: &mut dyn FnMut(&[Keyed]) -> Option<CheckName>,
    budget: &mut Budget<'_>,
) -> (Vec<Keyed>, usize) {
    let mut current = items.to_vec();
    let mut runs = 0usize;
    let mut still_fails = |candidate: &[Keyed], runs: &mut usize| {
        *runs += 1;
        fails(candidate) == Some(check)
    };
    // Chunk removal, from large chunks to single ops.
    let mut chunk = current.len().div_ceil(2).max(1);
    let mut spent = false;
    'chunks: loop {
        let mut start = 0;
        let mut removed_any = false;
        while start < current.len() {
            if !budget.take_op_run() {
                spent = true;
                break 'chunks;
            }
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
        if chunk == 1 && !removed_any {
            break;
        }
        if !removed_any {
            chunk = (chunk / 2).max(1);
        }
    }
    // Merge neighbouring appends (the same log in fewer ops), keeping the first's key.
    let mut index = 0;
    while !spent && index + 1 < current.len() {
        let (Op::Append { entries: a }, Op::Append { entries: b }) =
            (&current[index].1, &current[index + 1].1)
        else {
            index += 1;
            continue;
        };
        if a.len() + b.len() > crate::sim::engine::ops::BATCH_LEN_MAX {
            index += 1;
            continue;
        }
        if !budget.take_op_run() {
            spent = true;
            break;
        }
        let mut candidate = current.clone();
        candidate[index].1 = Op::Append { entries: [a.as_slice(), b.as_slice()].concat() };
        candidate.remove(index + 1);
        if still_fails(&candidate, &mut runs) {
            current = candidate;
        } else {
            index += 1;
        }
    }
    // Simplify each remaining op.
    let mut index = 0;
    while !spent && index < current.len() {
        let mut improved = false;
        for simpler in simplifications(&current[index].1) {
            if !budget.take_op_run() {
                spent = true;
                break;
            }
            let mut candidate = current.clone();
            candidate[index].1 = simpler;
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
