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
//! at some point of the history, and the three together to a cut a family can not tell
//! from the truth ([`StoreHistory::admits`]: a meta and a snapshot that were current
//! together, a log last current no earlier than either was written) — a lying disk rolls
//! files back independently, but a meta save and a snapshot publish are written after what
//! they follow, which a family can check (local's cross marks) or commit with them (redb).
//! Failing closed with an error is always allowed (the run then ends as a refusal). An
//! invented state (entries that never were, a truncated entry back beside newer ones) or a
//! mixed cut is a finding ([`recovered_difference`]). A reopen that fails after a power
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
//! dishonest plan a store rolled back to an older state it held passes when the cut is one
//! no family could tell, among them a log newer than the meta (appends that outlived a lost
//! meta save: braft's records carry no mark to check an append by). Exhaustive mode runs
//! only under an honest plan (a dishonest disk's media-fault overlays would be inherited by
//! every enumerated fork).

use std::collections::{BTreeMap, BTreeSet};
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
/// `candidates` and (under a dishonest disk) not a cut of the history the family could not
/// tell from the truth ([`StoreHistory::admits`]). `None` when it is allowed.
pub fn recovered_difference(
    recovered: &RaftState,
    candidates: &[RaftState],
    history: &StoreHistory,
) -> Option<String> {
    if candidates.contains(recovered) {
        return None;
    }
    let rejected = match history.admits(recovered, candidates) {
        Ok(()) => return None,
        Err(why) => why,
    };
    let mut what = String::from("the recovered state is not one the contract allows");
    for (i, c) in candidates.iter().enumerate() {
        let d = first_difference(recovered, c).unwrap_or_default();
        what.push_str(&format!("; vs allowed state {}: {d}", i + 1));
    }
    if let Some(why) = rejected {
        what.push_str(&format!("; under this dishonest disk {why}"));
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

    /// The store's position in [`Store::ALL`].
    fn index(self) -> usize {
        self as usize
    }

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

/// What each store held during a history, kept only under a dishonest disk (an honest one
/// allows nothing the history left behind): every state of each store with the first and
/// last step it was current, and every meta and snapshot that were current together.
///
/// A dishonest disk may roll each file back on its own, so the instance may come back as a
/// *cut* of the history rather than one state of it. A cut a family cannot tell from the
/// truth is allowed; one it can tell must be refused. Every family can tell the cuts
/// [`StoreHistory::admits`] rejects, since a meta save and a snapshot publish are each
/// written after everything current when they were made (local records the others' counts
/// and the log's watermark beside each of them, redb commits all three at once):
/// - a store's state the store never held is invented;
/// - a meta and a snapshot that were never current together mean that one of them survived
///   while a write it followed was lost;
/// - a log that was last current before the recovered meta (or snapshot) was first written
///   means that the meta survived while log writes it followed were lost.
///
/// What it allows: a log that is newer than the meta and the snapshot (appends that
/// outlived a lost meta save): braft's layout has no commit record an append could carry,
/// so no family can tell that cut from the truth.
#[derive(Clone, Debug, Default)]
pub struct StoreHistory {
    /// Whether the disk may lose or corrupt acknowledged data (otherwise nothing is kept).
    enabled: bool,
    /// Whether a sync may lie (fsync loss): an acknowledged append may then come back cut
    /// anywhere in its batch.
    lying_sync: bool,
    /// Steps remembered so far: the clock the spans are counted in.
    now: u64,
    /// The digest of each store's current state, in [`Store::ALL`] order.
    current: [String; 3],
    /// Per store (in [`Store::ALL`] order): each state it held, with the first and last
    /// step it was current.
    spans: [BTreeMap<String, (u64, u64)>; 3],
    /// Each meta state, with every snapshot state current together with it.
    together: BTreeMap<String, BTreeSet<String>>,
}

impl StoreHistory {
    /// A history that keeps states only when `dishonest`; `lying_sync` says whether a sync
    /// may lie (see [`StoreHistory::remember_batch_prefixes`]).
    pub fn new(dishonest: bool, lying_sync: bool) -> Self {
        StoreHistory {
            enabled: dishonest,
            lying_sync: dishonest && lying_sync,
            ..StoreHistory::default()
        }
    }

    /// Under a lying fsync, remembers every prefix of the batch an acknowledged append just
    /// added to `state` as a state the log held at this step: the lie makes an acknowledged
    /// append exactly as exposed as an unacknowledged one (the atomicity table's "any prefix
    /// of the batch"), and braft's records mark no batch boundary a family could check.
    pub fn remember_batch_prefixes(&mut self, state: &RaftState, action: &Action) {
        let Action::Append(batch) = action else { return };
        if !self.lying_sync || batch.len() < 2 {
            return;
        }
        let entries = &state.entries;
        let before = entries.len() - batch.len();
        for cut in before + 1..entries.len() {
            let digest = Store::log_digest(state.first, &entries[..cut]);
            Self::held_at(&mut self.spans[Store::Log.index()], digest, self.now);
        }
    }

    /// Remembers every store of `state`.
    pub fn remember_all(&mut self, state: &RaftState) {
        self.remember(state, &Store::ALL);
    }

    /// Remembers the current state of `stores` (the others have not changed since they were
    /// last remembered) as one more step.
    pub fn remember(&mut self, state: &RaftState, stores: &[Store]) {
        if !self.enabled {
            return;
        }
        self.now += 1;
        for store in stores {
            self.current[store.index()] = store.digest(state);
        }
        #[cfg(debug_assertions)]
        for store in Store::ALL {
            assert!(
                self.current[store.index()] == store.digest(state),
                "a store changed that the step was not expected to change"
            );
        }
        for store in Store::ALL {
            let i = store.index();
            let digest = &self.current[i];
            match self.spans[i].get_mut(digest) {
                Some(span) => span.1 = self.now,
                None => {
                    self.spans[i].insert(digest.clone(), (self.now, self.now));
                }
            }
        }
        // A new pair of meta and snapshot needs one of them to have changed (an append,
        // the commonest step, changes neither).
        if stores.iter().any(|s| *s != Store::Log) {
            let (meta, snapshot) = (&self.current[1], &self.current[2]);
            let with = self.together.entry(meta.clone()).or_default();
            if !with.contains(snapshot) {
                with.insert(snapshot.clone());
            }
        }
    }

    /// Records that a store held `digest` at step `now`.
    fn held_at(spans: &mut BTreeMap<String, (u64, u64)>, digest: String, now: u64) {
        let span = spans.entry(digest).or_insert((now, now));
        span.0 = span.0.min(now);
        span.1 = span.1.max(now);
    }

    /// Whether `recovered` is a cut of the history the type's doc allows, with `candidates`
    /// (the states the step itself allows) counted as held at the step being judged.
    /// `Err(None)` when no history is kept (an honest disk allows only the candidates);
    /// `Err(Some(why))` names the rule the cut breaks.
    pub fn admits(
        &self,
        recovered: &RaftState,
        candidates: &[RaftState],
    ) -> Result<(), Option<String>> {
        if !self.enabled {
            return Err(None);
        }
        let step = self.now + 1;
        let allowed: Vec<[String; 3]> =
            candidates.iter().map(|c| Store::ALL.map(|s| s.digest(c))).collect();
        let got = Store::ALL.map(|s| s.digest(recovered));
        let span = |store: Store| {
            let i = store.index();
            let held = self.spans[i].get(&got[i]).copied();
            match allowed.iter().any(|c| c[i] == got[i]) {
                true => Some(held.map_or((step, step), |(first, _)| (first, step))),
                false => held,
            }
        };
        let spans = Store::ALL.map(span);
        let never: Vec<&str> = Store::ALL
            .iter()
            .zip(&spans)
            .filter(|(_, span)| span.is_none())
            .map(|(s, _)| s.name())
            .collect();
        if !never.is_empty() {
            return Err(Some(format!(
                "each store may roll back to any state it held, but the {} never held this \
                 state",
                never.join(" and ")
            )));
        }
        let [Some(log), Some(meta), Some(snapshot)] = spans else { unreachable!() };
        let together = self.together.get(&got[1]).is_some_and(|s| s.contains(&got[2]))
            || allowed.iter().any(|c| c[1] == got[1] && c[2] == got[2]);
        if !together {
            return Err(Some(
                "each store holds a state it held, but the meta and the snapshot were never \
                 current together: one survived while a write it followed was lost, a cut \
                 the family can tell and must refuse"
                    .into(),
            ));
        }
        for (name, (first, _)) in [("meta", meta), ("snapshot", snapshot)] {
            if log.1 < first {
                return Err(Some(format!(
                    "each store holds a state it held, but the log was last current at step \
                     {} and the {name} was first written at step {first}, after it: the \
                     {name} survived while log writes it followed were lost, a cut the \
                     family can tell and must refuse",
                    log.1
                )));
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::contract::{Meta, Payload, SnapshotMeta};
    use crate::state::Snapshot;

    fn entry(index: Index) -> Entry {
        Entry { index, term: 1, payload: Payload::Data(vec![index as u8].into()) }
    }

    fn snapshot(index: Index) -> Option<Snapshot> {
        let meta = SnapshotMeta {
            last_included_index: index,
            last_included_term: 1,
            peers: Vec::new(),
            old_peers: Vec::new(),
        };
        Some(Snapshot { meta, files: BTreeMap::new() })
    }

    /// One step's change to the state.
    type Change = dyn Fn(&mut RaftState);

    /// A history of five steps on a dishonest disk: s0 empty, s1 appends 1..=2, s2 saves
    /// term 2, s3 publishes a snapshot at 2, s4 appends 3. Returns every state.
    fn history() -> (StoreHistory, Vec<RaftState>) {
        let mut history = StoreHistory::new(true, false);
        let mut states = vec![RaftState::new()];
        history.remember_all(&states[0]);
        let steps: [(Store, &Change); 4] = [
            (Store::Log, &|s| s.entries.extend([entry(1), entry(2)])),
            (Store::Meta, &|s| s.meta = Meta { term: 2, voted_for: None }),
            (Store::Snapshot, &|s| s.snapshot = snapshot(2)),
            (Store::Log, &|s| s.entries.push(entry(3))),
        ];
        for (store, change) in steps {
            let mut state = states.last().cloned().expect("a state");
            change(&mut state);
            history.remember(&state, &[store]);
            states.push(state);
        }
        (history, states)
    }

    /// `states[log]`'s log with `states[meta]`'s meta and `states[snapshot]`'s snapshot.
    fn cut(states: &[RaftState], log: usize, meta: usize, snapshot: usize) -> RaftState {
        RaftState {
            first: states[log].first,
            entries: states[log].entries.clone(),
            meta: states[meta].meta.clone(),
            snapshot: states[snapshot].snapshot.clone(),
        }
    }

    #[test]
    fn every_state_of_the_history_and_a_log_newer_than_the_rest_are_admitted() {
        let (history, states) = history();
        for state in &states {
            assert_eq!(history.admits(state, &[]), Ok(()));
        }
        // The meta save and the publish lost, the appends after them kept: no family can
        // tell, so it is allowed.
        assert_eq!(history.admits(&cut(&states, 4, 0, 0), &[]), Ok(()));
        assert_eq!(history.admits(&cut(&states, 4, 2, 2), &[]), Ok(()));
    }

    #[test]
    fn a_meta_and_snapshot_never_current_together_are_refused() {
        let (history, states) = history();
        // The publish (s3) kept, the meta save before it (s2) lost.
        let why = history.admits(&cut(&states, 4, 0, 3), &[]).expect_err("a mixed cut");
        assert!(why.expect("a reason").contains("never current together"));
    }

    #[test]
    fn a_log_last_current_before_the_meta_was_written_is_refused() {
        let (history, states) = history();
        // The meta save (s2) kept, the append before it (s1) lost.
        let why = history.admits(&cut(&states, 0, 2, 0), &[]).expect_err("a stale log");
        let why = why.expect("a reason");
        assert!(why.contains("log was last current at step 1") && why.contains("meta"), "{why}");
    }

    #[test]
    fn an_invented_store_state_is_refused_and_candidates_count_as_held_now() {
        let (history, states) = history();
        let mut invented = states[4].clone();
        invented.meta.term = 9;
        let why = history.admits(&invented, &[]).expect_err("never held").expect("a reason");
        assert!(why.contains("the meta never held"), "{why}");
        // The step being judged allows term 9 (a save the fault struck): its meta with the
        // snapshot of the moment is a cut, with an older snapshot it is not.
        assert_eq!(history.admits(&invented, std::slice::from_ref(&invented)), Ok(()));
        let older = RaftState { snapshot: None, ..invented.clone() };
        assert!(history.admits(&older, std::slice::from_ref(&invented)).is_err());
    }

    #[test]
    fn an_honest_history_admits_nothing_beyond_the_candidates() {
        let mut history = StoreHistory::new(false, false);
        history.remember_all(&RaftState::new());
        assert_eq!(history.admits(&RaftState::new(), &[]), Err(None));
    }
}
