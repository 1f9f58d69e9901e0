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
use crate::vfs::{CrashState, EnumerateOptions, FaultPlan, Mark, SimDisk};

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
    /// Crash states checked (nested ones included).
    pub states: usize,
    /// Of them, crash states of a reopen of a crash state (power losses during recovery).
    pub nested_states: usize,
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
    /// How many power losses deep to nest inside reopens: 0 checks each crash state's
    /// reopen only; 1 also every crash point of that reopen (and its reopen); and so on.
    pub recovery_depth: u32,
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
            let expected: &[RaftState] = if !self.family.durable() {
                &fresh
            } else if crash.after_op >= returned_at {
                after
            } else {
                self.before
            };
            let at = format!("crash after disk op {}", crash.after_op);
            let recovered =
                self.judge_crash_state(disk, &crash, expected, (&at, 0), options, &mut report)?;
            seen.insert(recovered.digest());
        }
        report.distinct_recovered = seen.len();
        Ok(report)
    }

    /// Reopens one crash state and judges it: the state recovered is one of `expected`, the
    /// braft view and the read-only open agree with it. With recovery depth left, every
    /// crash point of that reopen is enumerated too ([`CrashCheck::recovery_depth`]), and
    /// each of those states judged the same way, against the same `expected`: acknowledged
    /// data survives any number of nested power losses. `at` names the path of crashes and
    /// how deep in reopens this one is.
    fn judge_crash_state(
        &self,
        disk: &SimDisk,
        crash: &CrashState,
        expected: &[RaftState],
        (at, depth): (&str, u32),
        options: &EnumerateOptions,
        report: &mut CrashCheckReport,
    ) -> Result<RaftState, (CheckName, String)> {
        let atomicity = |what: String| (CheckName::CrashAtomicity, what);
        report.states += 1;
        // Enumerated crash states are honest: the reopen runs without the plan's faults.
        crash.disk.set_fault_plan(FaultPlan::none());
        // The enumerated disk is this state's own copy: braft's view is read on it
        // directly, before the open repairs anything.
        let probes = braft_view::probe_all(crash.disk.as_ref(), self.braft_roots)
            .map_err(|what| (CheckName::BraftView, format!("{at}: {what}")))?;
        let probe = read_only::probe(self.family, self.location, &crash.disk);
        let nested_mark = (depth < self.recovery_depth).then(|| crash.disk.mark());
        let reopened = self
            .family
            .open(self.location, crash.disk.clone())
            .map_err(|e| atomicity(format!("{at} (kept {:?}): open: {e}", crash.kept)))?;
        let reopen_returned_at = crash.disk.op_count();
        let recovered = RaftState::capture(reopened.as_ref())
            .map_err(|e: StorageError| atomicity(format!("{at}: read: {e}")))?;
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
                "{at} ({} pending, kept {:?}) recovered a state the atomicity table does not \
                 allow: {}\ndisk trace:\n{}",
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
                (CheckName::BraftView, format!("{at} (kept {:?}): {what}", crash.kept))
            })?;
        probe.judge(&recovered, false).map_err(|what| {
            (CheckName::ReadOnly, format!("{at} (kept {:?}): {what}", crash.kept))
        })?;
        let Some(nested_mark) = nested_mark else { return Ok(recovered) };
        // Crashes inside the reopen: it returned after `reopen_returned_at`, and only its
        // own operations are recorded (the instance is dropped unclosed, as a power loss
        // would leave it). Fewer subsets per point than at the top: every crash point of the
        // reopen is still visited.
        drop(reopened);
        let nested_options = EnumerateOptions {
            subset_units_max: options.subset_units_max.min(NESTED_SUBSET_UNITS_MAX),
            sample_count: options.sample_count.min(NESTED_SAMPLE_COUNT),
            ..options.clone()
        };
        // The state at the mark itself is this crash state again: judged already.
        let opened_at = nested_mark.op_no;
        let nested = crash
            .disk
            .crash_states(nested_mark, nested_options.clone())
            .map_err(|e| atomicity(format!("{at}: crashes during its reopen: {e}")))?;
        let inside = |s: &CrashState| s.after_op > opened_at && s.after_op <= reopen_returned_at;
        for inner in nested.into_iter().filter(inside) {
            let inner_at = format!("{at}, then during its reopen after disk op {}", inner.after_op);
            report.nested_states += 1;
            let place = (inner_at.as_str(), depth + 1);
            self.judge_crash_state(&crash.disk, &inner, expected, place, &nested_options, report)?;
        }
        Ok(recovered)
    }
}

/// At a crash point inside a reopen (exhaustive nested crashes), every subset of at most
/// this many pending units is tried; more are sampled.
pub const NESTED_SUBSET_UNITS_MAX: usize = 4;

/// Subsets sampled per crash point inside a reopen when there are too many to try all.
pub const NESTED_SAMPLE_COUNT: usize = 4;
