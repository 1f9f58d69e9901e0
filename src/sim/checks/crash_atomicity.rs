//! `crash_atomicity` (DESIGN §7, check 2): after every power loss the recovered state is one
//! the atomicity table and the fault model allow.
//!
//! **What it verifies.** After a power loss the instance reopens and holds a state the
//! atomicity table allows for the step:
//!
//! | situation | allowed after the power loss |
//! |---|---|
//! | a mutation a fault or a crash point failed (unacknowledged) | the state before it or after it; for an append, any prefix of the batch ([`allowed_after_unacknowledged`]) |
//! | a power loss between steps, or after a call that returned | the state after it |
//! | a volatile family | empty |
//!
//! Under a dishonest fault plan (lying fsync, media faults) acknowledged data may be lost:
//! each of the three stores (log, meta, latest snapshot) must recover to a state *it* held
//! at some point of the history ([`StoreHistory`]) — a lying disk rolls files back
//! independently, and braft's layout keeps the three in separate files with no common
//! commit record — and failing closed with an error is always allowed (the run then ends
//! as a refusal). An invented state (entries that never were, a truncated entry back beside
//! newer ones) is a finding ([`recovered_difference`]). A reopen that fails after a power
//! loss on an honest disk is reported under this check too.
//!
//! In exhaustive mode [`CrashCheck`] enumerates every crash point and every subset of
//! pending disk operations since a mark, reopens each crash state and checks it against the
//! same table; the conformance crash cases use it for every mutating method. On a
//! `local://` directory it asks `braft_view` about every crash state too (its
//! `braft_roots`), so a failure names whichever of the two checks caught it.
//!
//! **When.** After every `crash` op, after every mutation a fault or an armed crash point
//! struck, after an armed crash point whose call returned first, and (exhaustive mode)
//! around every mutation of a durable subject.
//!
//! **What not.** That term and vote never go back and truncated entries never come back is
//! implied by the allowed states on an honest disk, not checked on its own; under a
//! dishonest plan a store rolled back to an older state it held passes. Exhaustive mode runs
//! only under an honest plan (a dishonest disk's media-fault overlays would be inherited by
//! every enumerated fork).

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::contract::{Entry, Family, Index, StorageError};
use crate::sim::checks::{braft_view, read_only, CheckName};
use crate::sim::engine::model::Model;
use crate::sim::engine::ops::Action;
use crate::state::{first_difference, RaftState};
use crate::vfs::{EnumerateOptions, FaultPlan, Mark, SimDisk};

/// The states the atomicity table allows after a crash during an unacknowledged `action`
/// that took the model from `before` to `after`: before or after; for an append, any prefix
/// of the batch.
pub fn allowed_after_unacknowledged(
    before: &RaftState,
    action: &Action,
    after: &Model,
) -> Vec<RaftState> {
    let mut allowed = vec![before.clone()];
    if let Action::Append(entries) = action {
        let mut partial = before.clone();
        for entry in entries.iter().take(entries.len().saturating_sub(1)) {
            partial.entries.push(entry.clone());
            allowed.push(partial.clone());
        }
    }
    if after.state != *before {
        allowed.push(after.state.clone());
    }
    allowed
}

/// The first reason the state `recovered` after a power loss is not allowed: it is none of
/// `candidates` and (under a dishonest disk) not made of states each store held. `None` when
/// it is allowed.
pub fn recovered_difference(
    recovered: &RaftState,
    candidates: &[RaftState],
    history: &StoreHistory,
) -> Option<String> {
    if candidates.contains(recovered) || history.held(recovered) {
        return None;
    }
    let mut what = String::from("the recovered state is not one the contract allows");
    for (i, c) in candidates.iter().enumerate() {
        let d = first_difference(recovered, c).unwrap_or_default();
        what.push_str(&format!("; vs allowed state {}: {d}", i + 1));
    }
    if history.enabled {
        let stale = history.never_held(recovered);
        what.push_str(&format!(
            "; under this dishonest disk each store may roll back to any state it held, but \
             the {} never held this state",
            stale.join(" and ")
        ));
    }
    Some(what)
}

/// The three stores of an instance, which a lying disk may roll back independently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Store {
    /// The log: its range and entries.
    Log,
    /// Term and vote.
    Meta,
    /// The latest snapshot.
    Snapshot,
}

impl Store {
    /// Every store.
    pub const ALL: [Store; 3] = [Store::Log, Store::Meta, Store::Snapshot];

    /// The store's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Store::Log => "log",
            Store::Meta => "meta",
            Store::Snapshot => "snapshot",
        }
    }

    /// The digest of this store's part of `state` alone (the other parts as in a fresh
    /// state), computed without copying it.
    fn digest(self, state: &RaftState) -> String {
        let fresh = RaftState::new();
        let mut part = fresh.parts();
        match self {
            Store::Log => return Store::log_digest(state.first, &state.entries),
            Store::Meta => part.meta = &state.meta,
            Store::Snapshot => part.snapshot = state.snapshot.as_ref(),
        }
        part.digest()
    }

    /// The [`Store::Log`] digest of a log starting at `first` with `entries`.
    fn log_digest(first: Index, entries: &[Entry]) -> String {
        let fresh = RaftState::new();
        let mut part = fresh.parts();
        (part.first, part.entries) = (first, entries);
        part.digest()
    }

    /// The stores `action` can change (see the model): only theirs need remembering anew.
    pub fn changed_by(action: &Action) -> &'static [Store] {
        match action {
            Action::Append(_)
            | Action::TruncatePrefix(_)
            | Action::TruncateSuffix(_)
            | Action::Reset(_) => &[Store::Log],
            Action::SaveMeta(_) => &[Store::Meta],
            Action::Snapshot { .. } => &[Store::Snapshot],
            Action::Reopen
            | Action::Crash
            | Action::ArmCrash(_)
            | Action::Export(_)
            | Action::Migrate(_) => &[],
        }
    }
}

/// Digests of every state each store held during a history, kept only under a dishonest
/// disk (an honest one allows nothing the history left behind).
#[derive(Clone, Debug, Default)]
pub struct StoreHistory {
    /// Whether the disk may lose or corrupt acknowledged data (otherwise nothing is kept).
    enabled: bool,
    /// Whether a sync may lie (fsync loss): an acknowledged append may then come back cut
    /// anywhere in its batch.
    lying_sync: bool,
    held: BTreeSet<(Store, String)>,
}

impl StoreHistory {
    /// A history that keeps states only when `dishonest`; `lying_sync` says whether a sync
    /// may lie (see [`StoreHistory::remember_batch_prefixes`]).
    pub fn new(dishonest: bool, lying_sync: bool) -> Self {
        StoreHistory {
            enabled: dishonest,
            lying_sync: dishonest && lying_sync,
            held: BTreeSet::new(),
        }
    }

    /// Under a lying fsync, remembers every prefix of the batch an acknowledged append just
    /// added to `state` as a state the log held: the lie makes an acknowledged append exactly
    /// as exposed as an unacknowledged one (the atomicity table's "any prefix of the batch"),
    /// and braft's records mark no batch boundary a family could check.
    pub fn remember_batch_prefixes(&mut self, state: &RaftState, action: &Action) {
        let Action::Append(batch) = action else { return };
        if !self.lying_sync || batch.len() < 2 {
            return;
        }
        let entries = &state.entries;
        let before = entries.len() - batch.len();
        for cut in before + 1..entries.len() {
            self.held.insert((Store::Log, Store::log_digest(state.first, &entries[..cut])));
        }
    }

    /// Remembers every store of `state`.
    pub fn remember_all(&mut self, state: &RaftState) {
        self.remember(state, &Store::ALL);
    }

    /// Remembers the current state of `stores` (the others have not changed since they were
    /// last remembered).
    pub fn remember(&mut self, state: &RaftState, stores: &[Store]) {
        if !self.enabled {
            return;
        }
        for store in stores {
            self.held.insert((*store, store.digest(state)));
        }
        #[cfg(debug_assertions)]
        assert!(self.held(state), "a store changed that the step was not expected to change");
    }

    /// Whether the history is kept and every store of `state` holds a state it held at some
    /// point of it.
    pub fn held(&self, state: &RaftState) -> bool {
        self.enabled && Store::ALL.iter().all(|s| self.held.contains(&(*s, s.digest(state))))
    }

    /// The names of the stores of `state` that never held their part of it.
    fn never_held(&self, state: &RaftState) -> Vec<&'static str> {
        Store::ALL
            .iter()
            .filter(|s| !self.held.contains(&(**s, s.digest(state))))
            .map(|s| s.name())
            .collect()
    }
}

/// What a [`CrashCheck`] saw.
#[derive(Clone, Debug, Default)]
pub struct CrashCheckReport {
    /// Crash states checked.
    pub states: usize,
    /// Distinct recovered states among them.
    pub distinct_recovered: usize,
}

/// Checks every crash state since a mark against the atomicity table.
pub struct CrashCheck<'a> {
    /// The family whose instance lives on the disk.
    pub family: &'a dyn Family,
    /// Where the instance lives.
    pub location: &'a str,
    /// States allowed while the call had not yet returned (before, prefixes, after).
    pub before: &'a [RaftState],
    /// The state after the call returned: the only one allowed from then on.
    pub after: &'a RaftState,
    /// The `local://` directories on the disk whose braft view must agree with the
    /// recovered state (`braft_view`, [`braft_view::local_roots`]); empty for other families.
    pub braft_roots: &'a [PathBuf],
}

impl CrashCheck<'_> {
    /// Enumerates the crash states of `disk` since `mark` (the call returned after disk op
    /// `returned_at`), reopens each and checks its state. Ends the mark's recording.
    pub fn verify(
        &self,
        disk: &SimDisk,
        mark: Mark,
        returned_at: u64,
        options: &EnumerateOptions,
    ) -> Result<CrashCheckReport, String> {
        self.verify_checked(disk, mark, returned_at, options)
            .map_err(|(check, what)| format!("{check}: {what}"))
    }

    /// [`CrashCheck::verify`], naming the check that failed: `crash_atomicity`,
    /// `braft_view` when braft would read one of [`CrashCheck::braft_roots`] otherwise, or
    /// `read_only` when the read-only open of the crash state made first
    /// ([`read_only::probe`]) wrote, or showed another state than the reopen recovered.
    pub fn verify_checked(
        &self,
        disk: &SimDisk,
        mark: Mark,
        returned_at: u64,
        options: &EnumerateOptions,
    ) -> Result<CrashCheckReport, (CheckName, String)> {
        let atomicity = |what: String| (CheckName::CrashAtomicity, what);
        let states =
            disk.crash_states(mark, options.clone()).map_err(|e| atomicity(e.to_string()))?;
        let mut report = CrashCheckReport::default();
        let mut seen = BTreeSet::new();
        let fresh = [RaftState::new()];
        let after = std::slice::from_ref(self.after);
        for crash in states {
            report.states += 1;
            let expected: &[RaftState] = if !self.family.durable() {
                &fresh
            } else if crash.after_op >= returned_at {
                after
            } else {
                self.before
            };
            // Enumerated crash states are honest: the reopen runs without the plan's faults.
            crash.disk.set_fault_plan(FaultPlan::none());
            // The enumerated disk is this state's own copy: braft's view is read on it
            // directly, before the open repairs anything.
            let probes = braft_view::probe_all(crash.disk.as_ref(), self.braft_roots)
                .map_err(|what| (CheckName::BraftView, what))?;
            let probe = read_only::probe(self.family, self.location, &crash.disk);
            let reopened = self.family.open(self.location, crash.disk.clone()).map_err(|e| {
                atomicity(format!(
                    "crash after disk op {} (kept {:?}): open: {e}",
                    crash.after_op, crash.kept
                ))
            })?;
            let recovered = RaftState::capture(reopened.as_ref()).map_err(|e: StorageError| {
                atomicity(format!("crash after disk op {}: read: {e}", crash.after_op))
            })?;
            if !expected.contains(&recovered) {
                let diffs: Vec<String> = expected
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let d = first_difference(&recovered, s).unwrap_or_default();
                        format!("vs allowed {}: {d}", i + 1)
                    })
                    .collect();
                return Err(atomicity(format!(
                    "crash after disk op {} ({} pending, kept {:?}) recovered a state the \
                     atomicity table does not allow: {}\ndisk trace:\n{}",
                    crash.after_op,
                    crash.pending_units,
                    crash.kept,
                    diffs.join("; "),
                    disk.trace_tail(40)
                )));
            }
            braft_view::judge_all(&probes, &recovered, expected)
                .and_then(|()| {
                    braft_view::judge_open_all(crash.disk.as_ref(), self.braft_roots, &recovered)
                })
                .map_err(|what| {
                    (
                        CheckName::BraftView,
                        format!(
                            "crash after disk op {} (kept {:?}): {what}",
                            crash.after_op, crash.kept
                        ),
                    )
                })?;
            probe.judge(&recovered, false).map_err(|what| {
                let at = format!("crash after disk op {} (kept {:?})", crash.after_op, crash.kept);
                (CheckName::ReadOnly, format!("{at}: {what}"))
            })?;
            seen.insert(recovered.digest());
        }
        report.distinct_recovered = seen.len();
        Ok(report)
    }
}
