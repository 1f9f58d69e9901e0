//! The conformance suite: named cases over every contract method and edge, run on any family
//! with one line. A family's test file calls
//! `quorumkit_storage::conformance_tests!(|| my_fixture());` and gets one `#[test]` per case.
//!
//! Cases compare the instance with the reference [`Model`] after applying the same actions,
//! and check the typed error of every call the contract rejects. Reopen cases close and reopen
//! the instance: a durable family must show the same state, a volatile one a fresh state.

pub mod crash_cases;

use std::sync::Arc;

use bytes::Bytes;

use crate::contract::{
    ContractError, Entry, Family, FileMeta, FileSource, Meta, Payload, PeerId, RaftStorage,
    SnapshotMeta, SnapshotPath, StateView, StorageError, INDEX_MAX, TERM_MAX,
};
use crate::sim::engine::apply::apply_action;
use crate::sim::engine::model::Model;
use crate::sim::engine::ops::{pseudo_random_bytes, Action, ResolvedFile};
use crate::state::{first_difference, RaftState};
use crate::vfs::VfsHandle;

/// What a case needs from a family under test.
pub trait Fixture {
    /// Opens a new, empty instance at a fresh location.
    fn fresh(&mut self) -> Box<dyn RaftStorage>;
    /// Closes `instance` and opens the same location again.
    fn reopen(&mut self, instance: Box<dyn RaftStorage>) -> Box<dyn RaftStorage>;
    /// Whether state survives a reopen.
    fn durable(&self) -> bool;
}

/// A fixture over a [`Family`] and a `Vfs`: each fresh instance gets its own location
/// `<base>/instance-<n>`.
pub struct FamilyFixture {
    family: Arc<dyn Family>,
    vfs: VfsHandle,
    base: String,
    count: usize,
}

impl FamilyFixture {
    /// A fixture opening instances of `family` under `base` on `vfs`.
    pub fn new(family: Arc<dyn Family>, vfs: VfsHandle, base: impl Into<String>) -> Self {
        FamilyFixture { family, vfs, base: base.into(), count: 0 }
    }

    fn location(&self) -> String {
        format!("{}/instance-{}", self.base, self.count)
    }
}

impl Fixture for FamilyFixture {
    fn fresh(&mut self) -> Box<dyn RaftStorage> {
        self.count += 1;
        let location = self.location();
        match self.family.open(&location, self.vfs.clone()) {
            Ok(instance) => instance,
            Err(e) => {
                panic!("opening a fresh {} instance at {location}: {e}", self.family.scheme())
            }
        }
    }

    fn reopen(&mut self, instance: Box<dyn RaftStorage>) -> Box<dyn RaftStorage> {
        drop(instance);
        let location = self.location();
        match self.family.open(&location, self.vfs.clone()) {
            Ok(instance) => instance,
            Err(e) => panic!("reopening the {} instance at {location}: {e}", self.family.scheme()),
        }
    }

    fn durable(&self) -> bool {
        self.family.durable()
    }
}

/// A case's verdict: `Err` says what went wrong.
pub type CaseResult = Result<(), String>;

/// One named case.
pub struct Case {
    /// The case's name (also its test function's name).
    pub name: &'static str,
    /// The case.
    pub run: fn(&mut dyn Fixture) -> CaseResult,
}

/// Runs the case called `name` on `fixture`, panicking with the case's message on failure
/// (so it reads well as a failed `#[test]`).
pub fn run_case(name: &str, fixture: &mut dyn Fixture) {
    let case = CASES.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no case {name}"));
    if let Err(what) = (case.run)(fixture) {
        panic!("conformance case {name} failed: {what}");
    }
}

/// Runs every case, returning the names and messages of those that failed.
pub fn run_all(fixture: &mut dyn Fixture) -> Vec<(&'static str, String)> {
    CASES.iter().filter_map(|c| (c.run)(fixture).err().map(|e| (c.name, e))).collect()
}

/// Generates one `#[test]` per conformance case for the fixture that `$make` (an expression
/// producing a `Fixture`) builds afresh for each case.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            fresh_instance_is_empty, append_one, append_batch, append_empty_batch_is_noop,
            append_gap_rejected, append_overlap_rejected, append_disorder_in_batch_rejected,
            append_keeps_every_kind, append_large_payload, append_empty_data_payload,
            entry_out_of_range_is_none, term_matches_entry, truncate_prefix_inside,
            truncate_prefix_at_or_below_first_is_noop, truncate_prefix_to_last_plus_one,
            truncate_prefix_past_end, truncate_prefix_then_append,
            truncate_prefix_on_empty_log_moves_first, truncate_suffix_inside,
            truncate_suffix_at_or_above_last_is_noop, truncate_suffix_to_first_minus_one,
            truncate_suffix_below_first_clamps, truncate_suffix_then_append_new_term,
            truncate_suffix_to_zero, reset_empties_log, reset_backwards, reset_zero_rejected,
            reset_then_append, reset_keeps_meta_and_snapshot, log_end_at_index_max,
            out_of_range_values_rejected, bad_peers_rejected,
            meta_initial, meta_save_and_read, meta_save_without_vote,
            meta_save_replaces_both, meta_extreme_terms, snapshot_none_initially,
            snapshot_publish_meta_and_files, snapshot_empty_tree, snapshot_nested_unicode_paths,
            snapshot_file_meta_round_trips, snapshot_large_file_in_chunks,
            snapshot_replaces_previous, snapshot_abandoned_writer_changes_nothing,
            snapshot_without_meta_rejected, snapshot_duplicate_file_rejected,
            snapshot_path_conflict_rejected, snapshot_write_not_at_end_rejected,
            snapshot_write_unknown_file_rejected, snapshot_reserved_names_refused,
            snapshot_read_edges,
            snapshot_leaves_log_alone, export_cut_is_pinned, import_into_empty,
            import_into_non_empty_rejected, import_dropped_leaves_empty,
            reopen_keeps_log, reopen_keeps_meta, reopen_keeps_snapshot,
            reopen_after_truncations, reopen_after_reset, reopen_after_import,
            reopen_twice_then_mutate);
    };
    (@cases $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let mut fixture = $make;
                $crate::sim::conformance::run_case(stringify!($name), &mut fixture);
            }
        )*
        #[test]
        fn every_conformance_case_has_a_test() {
            let names: &[&str] = &[$(stringify!($name)),*];
            let all: Vec<&str> =
                $crate::sim::conformance::CASES.iter().map(|c| c.name).collect();
            assert_eq!(names, all.as_slice(), "the macro's list and CASES must match");
        }
    };
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case, in order.
        pub const CASES: &[Case] = &[$(Case { name: stringify!($name), run: $name }),*];
    };
}

cases!(
    fresh_instance_is_empty,
    append_one,
    append_batch,
    append_empty_batch_is_noop,
    append_gap_rejected,
    append_overlap_rejected,
    append_disorder_in_batch_rejected,
    append_keeps_every_kind,
    append_large_payload,
    append_empty_data_payload,
    entry_out_of_range_is_none,
    term_matches_entry,
    truncate_prefix_inside,
    truncate_prefix_at_or_below_first_is_noop,
    truncate_prefix_to_last_plus_one,
    truncate_prefix_past_end,
    truncate_prefix_then_append,
    truncate_prefix_on_empty_log_moves_first,
    truncate_suffix_inside,
    truncate_suffix_at_or_above_last_is_noop,
    truncate_suffix_to_first_minus_one,
    truncate_suffix_below_first_clamps,
    truncate_suffix_then_append_new_term,
    truncate_suffix_to_zero,
    reset_empties_log,
    reset_backwards,
    reset_zero_rejected,
    reset_then_append,
    reset_keeps_meta_and_snapshot,
    log_end_at_index_max,
    out_of_range_values_rejected,
    bad_peers_rejected,
    meta_initial,
    meta_save_and_read,
    meta_save_without_vote,
    meta_save_replaces_both,
    meta_extreme_terms,
    snapshot_none_initially,
    snapshot_publish_meta_and_files,
    snapshot_empty_tree,
    snapshot_nested_unicode_paths,
    snapshot_file_meta_round_trips,
    snapshot_large_file_in_chunks,
    snapshot_replaces_previous,
    snapshot_abandoned_writer_changes_nothing,
    snapshot_without_meta_rejected,
    snapshot_duplicate_file_rejected,
    snapshot_path_conflict_rejected,
    snapshot_write_not_at_end_rejected,
    snapshot_write_unknown_file_rejected,
    snapshot_reserved_names_refused,
    snapshot_read_edges,
    snapshot_leaves_log_alone,
    export_cut_is_pinned,
    import_into_empty,
    import_into_non_empty_rejected,
    import_dropped_leaves_empty,
    reopen_keeps_log,
    reopen_keeps_meta,
    reopen_keeps_snapshot,
    reopen_after_truncations,
    reopen_after_reset,
    reopen_after_import,
    reopen_twice_then_mutate,
);

// ---- helpers ---------------------------------------------------------------------------

/// A pair under test: the instance and the model it must equal.
struct Pair {
    instance: Box<dyn RaftStorage>,
    model: Model,
}

impl Pair {
    fn new(fx: &mut dyn Fixture) -> Pair {
        Pair { instance: fx.fresh(), model: Model::new() }
    }

    /// Applies an action the contract accepts to both, failing if the family rejects it.
    fn ok(&mut self, action: Action) -> CaseResult {
        self.model.apply(&action).map_err(|e| format!("case bug: model rejected {action}: {e}"))?;
        apply_action(self.instance.as_mut(), &action)
            .map_err(|e| format!("{action} failed: {e}"))?;
        self.same(&format!("after {action}"))
    }

    /// Applies an action the contract rejects; the family must reject it with an error for
    /// which `expected` holds, and change nothing.
    fn rejected(&mut self, action: Action, expected: fn(&StorageError) -> bool) -> CaseResult {
        match apply_action(self.instance.as_mut(), &action) {
            Ok(()) => return Err(format!("{action} was accepted; the contract rejects it")),
            Err(e) => ensure!(expected(&e), "{action} failed with the wrong error: {e}"),
        }
        self.same(&format!("after the rejected {action}"))
    }

    /// Appends `n` entries of `term` after the model's last index (so a case goes on the
    /// same way after a volatile family forgot everything on reopen).
    fn append_next(&mut self, n: u64, term: u64) -> CaseResult {
        let from = self.model.state.last() + 1;
        self.ok(batch(from, from + n - 1, term))
    }

    /// The whole state equals the model.
    fn same(&self, context: &str) -> CaseResult {
        let state = RaftState::capture(self.instance.as_ref())
            .map_err(|e| format!("{context}: reading the instance failed: {e}"))?;
        match first_difference(&state, &self.model.state) {
            None => Ok(()),
            Some(d) => Err(format!("{context}: instance vs model: {d}")),
        }
    }

    fn reopen(&mut self, fx: &mut dyn Fixture) -> CaseResult {
        let instance = std::mem::replace(&mut self.instance, Box::new(Placeholder));
        self.instance = fx.reopen(instance);
        if !fx.durable() {
            self.model.forget();
        }
        self.same("after reopen")
    }
}

/// Stands in for an instance while it is being reopened; never called.
struct Placeholder;

impl StateView for Placeholder {
    fn first_index(&self) -> u64 {
        1
    }
    fn last_index(&self) -> u64 {
        0
    }
    fn entry(&self, _: u64) -> crate::contract::StorageResult<Option<Entry>> {
        Ok(None)
    }
    fn meta(&self) -> crate::contract::StorageResult<Meta> {
        Ok(Meta::INITIAL)
    }
    fn snapshot_meta(&self) -> crate::contract::StorageResult<Option<SnapshotMeta>> {
        Ok(None)
    }
    fn snapshot_files(
        &self,
    ) -> crate::contract::StorageResult<Vec<crate::contract::SnapshotFileInfo>> {
        Ok(Vec::new())
    }
    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        _: u64,
        _: &mut [u8],
    ) -> crate::contract::StorageResult<usize> {
        Err(ContractError::UnknownSnapshotFile { path: path.to_string() }.into())
    }
}

impl RaftStorage for Placeholder {
    fn family(&self) -> &'static str {
        "placeholder"
    }
    fn append(&mut self, _: &[Entry]) -> crate::contract::StorageResult<()> {
        Ok(())
    }
    fn truncate_prefix(&mut self, _: u64) -> crate::contract::StorageResult<()> {
        Ok(())
    }
    fn truncate_suffix(&mut self, _: u64) -> crate::contract::StorageResult<()> {
        Ok(())
    }
    fn reset(&mut self, _: u64) -> crate::contract::StorageResult<()> {
        Ok(())
    }
    fn save_meta(&mut self, _: &Meta) -> crate::contract::StorageResult<()> {
        Ok(())
    }
    fn begin_snapshot(
        &mut self,
    ) -> crate::contract::StorageResult<Box<dyn crate::contract::SnapshotWriter + '_>> {
        Err(ContractError::SnapshotWithoutMeta.into())
    }
    fn begin_export(&mut self) -> crate::contract::StorageResult<Box<dyn StateView + Send>> {
        Ok(Box::new(Placeholder))
    }
    fn begin_import(
        &mut self,
    ) -> crate::contract::StorageResult<Box<dyn crate::contract::ImportSink + '_>> {
        Err(ContractError::NotEmpty { what: "placeholder".into() }.into())
    }
}

fn data(index: u64, term: u64) -> Entry {
    Entry::data(
        index,
        term,
        pseudo_random_bytes(index.wrapping_mul(31).wrapping_add(term), (index % 7 * 13) as usize),
    )
}

fn batch(from: u64, to: u64, term: u64) -> Action {
    Action::Append((from..=to).map(|i| data(i, term)).collect())
}

fn config(index: u64, term: u64, peers: &[&str], old: &[&str]) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Configuration {
            peers: peers.iter().map(|p| PeerId::new(*p)).collect(),
            old_peers: old.iter().map(|p| PeerId::new(*p)).collect(),
        },
    }
}

fn path(p: &str) -> SnapshotPath {
    SnapshotPath::new(p).expect("case paths are valid")
}

/// A file whose metadata is `user_meta` alone (or none).
fn file(p: &str, len: usize, user_meta: Option<&[u8]>) -> ResolvedFile {
    let file_meta =
        FileMeta { user_meta: user_meta.map(Bytes::copy_from_slice), ..FileMeta::default() };
    file_with(p, len, file_meta)
}

fn file_with(p: &str, len: usize, file_meta: FileMeta) -> ResolvedFile {
    ResolvedFile { path: path(p), data: pseudo_random_bytes(len as u64 ^ 0xABCD, len), file_meta }
}

fn snap(index: u64, term: u64, files: Vec<ResolvedFile>) -> Action {
    let mut files = files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Action::Snapshot {
        meta: SnapshotMeta {
            last_included_index: index,
            last_included_term: term,
            peers: vec![PeerId::new("10.0.0.1:8000:0"), PeerId::new("10.0.0.2:8000:0:1")],
            old_peers: vec![],
        },
        files,
        publish: true,
    }
}

fn meta(term: u64, vote: Option<&str>) -> Action {
    Action::SaveMeta(Meta { term, voted_for: vote.map(PeerId::new) })
}

fn is_non_contiguous(e: &StorageError) -> bool {
    matches!(e, StorageError::Contract(ContractError::NonContiguousAppend { .. }))
}

fn is_contract(e: &StorageError) -> bool {
    matches!(e, StorageError::Contract(_))
}

fn filled(fx: &mut dyn Fixture, to: u64) -> Result<Pair, String> {
    let mut p = Pair::new(fx);
    p.ok(batch(1, to, 1))?;
    Ok(p)
}

// ---- log -------------------------------------------------------------------------------

fn fresh_instance_is_empty(fx: &mut dyn Fixture) -> CaseResult {
    let p = Pair::new(fx);
    ensure!(p.instance.first_index() == 1, "first is {}", p.instance.first_index());
    ensure!(p.instance.last_index() == 0, "last is {}", p.instance.last_index());
    ensure!(p.instance.meta().map_err(|e| e.to_string())? == Meta::INITIAL, "meta not initial");
    p.same("fresh")
}

fn append_one(fx: &mut dyn Fixture) -> CaseResult {
    Pair::new(fx).ok(Action::Append(vec![data(1, 1)]))
}

fn append_batch(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(batch(11, 40, 2))
}

fn append_empty_batch_is_noop(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    p.ok(Action::Append(vec![]))
}

fn append_gap_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    p.rejected(Action::Append(vec![data(5, 1)]), is_non_contiguous)
}

fn append_overlap_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    p.rejected(Action::Append(vec![data(3, 2)]), is_non_contiguous)
}

fn append_disorder_in_batch_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    p.rejected(Action::Append(vec![data(4, 1), data(6, 1), data(5, 1)]), is_non_contiguous)
}

fn append_keeps_every_kind(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(Action::Append(vec![
        Entry::no_op(1, 1),
        data(2, 1),
        config(3, 1, &["10.0.0.1:8000:0", "10.0.0.2:8000:0:1"], &[]),
        config(4, 2, &["10.0.0.1:8000:0"], &["10.0.0.3:8001:2", "10.0.0.4:8000:0:1"]),
        data(5, 2),
    ]))
}

fn append_large_payload(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(Action::Append(vec![Entry::data(1, 1, pseudo_random_bytes(7, 1 << 20))]))
}

fn append_empty_data_payload(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(Action::Append(vec![Entry::data(1, 1, Bytes::new()), data(2, 1)]))
}

fn entry_out_of_range_is_none(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncatePrefix(4))?;
    for i in [0, 1, 3, 11, 12, u64::MAX] {
        let got = p.instance.entry(i).map_err(|e| e.to_string())?;
        ensure!(got.is_none(), "entry({i}) outside [4, 10] returned {got:?}");
        let term = p.instance.term(i).map_err(|e| e.to_string())?;
        ensure!(term.is_none(), "term({i}) outside [4, 10] returned {term:?}");
    }
    Ok(())
}

fn term_matches_entry(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 5)?;
    p.ok(batch(6, 9, 4))?;
    for i in 1..=9 {
        let want = if i <= 5 { 1 } else { 4 };
        let got = p.instance.term(i).map_err(|e| e.to_string())?;
        ensure!(got == Some(want), "term({i}) is {got:?}, expected {want}");
    }
    Ok(())
}

fn truncate_prefix_inside(fx: &mut dyn Fixture) -> CaseResult {
    filled(fx, 10)?.ok(Action::TruncatePrefix(6))
}

fn truncate_prefix_at_or_below_first_is_noop(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncatePrefix(3))?;
    p.ok(Action::TruncatePrefix(3))?;
    p.ok(Action::TruncatePrefix(1))?;
    p.ok(Action::TruncatePrefix(0))
}

fn truncate_prefix_to_last_plus_one(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncatePrefix(11))?;
    ensure!(p.instance.first_index() == 11 && p.instance.last_index() == 10, "not empty at 11");
    Ok(())
}

fn truncate_prefix_past_end(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncatePrefix(25))?;
    ensure!(p.instance.first_index() == 25 && p.instance.last_index() == 24, "not empty at 25");
    Ok(())
}

fn truncate_prefix_then_append(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncatePrefix(30))?;
    p.rejected(Action::Append(vec![data(11, 2)]), is_non_contiguous)?;
    p.ok(batch(30, 35, 2))
}

fn truncate_prefix_on_empty_log_moves_first(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(Action::TruncatePrefix(7))?;
    p.ok(batch(7, 9, 1))
}

fn truncate_suffix_inside(fx: &mut dyn Fixture) -> CaseResult {
    filled(fx, 10)?.ok(Action::TruncateSuffix(4))
}

fn truncate_suffix_at_or_above_last_is_noop(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncateSuffix(10))?;
    p.ok(Action::TruncateSuffix(u64::MAX))
}

fn truncate_suffix_to_first_minus_one(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncatePrefix(5))?;
    p.ok(Action::TruncateSuffix(4))?;
    ensure!(p.instance.first_index() == 5 && p.instance.last_index() == 4, "not empty at 5");
    Ok(())
}

fn truncate_suffix_below_first_clamps(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncatePrefix(5))?;
    p.ok(Action::TruncateSuffix(1))?;
    ensure!(p.instance.first_index() == 5, "first moved to {}", p.instance.first_index());
    p.ok(batch(5, 6, 3))
}

fn truncate_suffix_then_append_new_term(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncateSuffix(6))?;
    p.ok(batch(7, 12, 5))
}

fn truncate_suffix_to_zero(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncateSuffix(0))?;
    p.ok(batch(1, 2, 2))
}

fn reset_empties_log(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::Reset(50))
}

fn reset_backwards(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::TruncatePrefix(5))?;
    p.ok(Action::Reset(2))?;
    p.ok(batch(2, 4, 2))
}

fn reset_zero_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    p.rejected(Action::Reset(0), is_contract)
}

fn reset_then_append(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::Reset(100))?;
    p.rejected(Action::Append(vec![data(11, 1)]), is_non_contiguous)?;
    p.ok(batch(100, 104, 3))
}

fn reset_keeps_meta_and_snapshot(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(meta(4, Some("10.0.0.1:8000:0")))?;
    p.ok(snap(8, 1, vec![file("state", 100, None)]))?;
    p.ok(Action::Reset(20))
}

fn log_end_at_index_max(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(Action::Reset(INDEX_MAX - 1))?;
    p.ok(Action::Append(vec![data(INDEX_MAX - 1, 1), data(INDEX_MAX, TERM_MAX)]))?;
    p.rejected(Action::Append(vec![data(INDEX_MAX + 1, 2)]), is_contract)?;
    p.ok(Action::TruncateSuffix(INDEX_MAX - 1))?;
    p.ok(Action::TruncatePrefix(INDEX_MAX))?;
    p.reopen(fx)
}

fn bad_peers_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    let is_bad_peer =
        |e: &StorageError| matches!(e, StorageError::Contract(ContractError::BadPeer { .. }));
    for bad in ["", "localhost:8000:0", "[::1]:8000:0", "1.2.3.4:8000:0:2", "1.2.3:1:0", "1.2.3.4"]
    {
        p.rejected(Action::Append(vec![config(4, 1, &[bad], &[])]), is_bad_peer)?;
        p.rejected(Action::Append(vec![config(4, 1, &["1.2.3.4:1:0"], &[bad])]), is_bad_peer)?;
        p.rejected(meta(2, Some(bad)), is_bad_peer)?;
    }
    p.rejected(meta(2, Some(PeerId::ANY)), is_bad_peer)?;
    p.rejected(meta(2, Some("0.0.0.0:0:0")), is_bad_peer)?;
    // braft's empty peer ignores the role: a witness at 0.0.0.0:0 idx 0 is "no vote" too.
    p.rejected(meta(2, Some("0.0.0.0:0:0:1")), is_bad_peer)?;
    let Action::Snapshot { mut meta, files, publish } = snap(3, 1, vec![]) else {
        unreachable!("snap builds a snapshot action")
    };
    meta.old_peers = vec![PeerId::new("01.2.3.4:5:0")];
    p.rejected(Action::Snapshot { meta, files, publish }, is_bad_peer)?;
    p.ok(Action::Append(vec![config(4, 1, &[PeerId::ANY, "255.255.255.255:65535:0:1"], &[])]))
}

fn out_of_range_values_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    p.rejected(Action::Append(vec![data(4, TERM_MAX + 1)]), is_contract)?;
    p.rejected(Action::Reset(INDEX_MAX + 1), is_contract)?;
    p.rejected(Action::TruncatePrefix(INDEX_MAX + 1), is_contract)?;
    p.rejected(meta(TERM_MAX + 1, None), is_contract)?;
    p.rejected(snap(INDEX_MAX + 1, 1, vec![]), is_contract)?;
    p.rejected(snap(3, TERM_MAX + 1, vec![]), is_contract)
}

// ---- meta ------------------------------------------------------------------------------

fn meta_initial(fx: &mut dyn Fixture) -> CaseResult {
    let p = Pair::new(fx);
    let m = p.instance.meta().map_err(|e| e.to_string())?;
    ensure!(m.term == 1 && m.voted_for.is_none(), "fresh meta is {m:?}, expected term 1 no vote");
    Ok(())
}

fn meta_save_and_read(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(meta(3, Some("10.0.0.1:8000:0")))?;
    p.ok(meta(5, Some("10.0.0.2:8001:1:1")))
}

fn meta_save_without_vote(fx: &mut dyn Fixture) -> CaseResult {
    Pair::new(fx).ok(meta(7, None))
}

fn meta_save_replaces_both(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(meta(3, Some("10.0.0.1:8000:0")))?;
    p.ok(meta(4, None))?;
    p.ok(meta(2, Some("10.0.0.9:9:9")))
}

fn meta_extreme_terms(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(meta(TERM_MAX, Some("10.0.0.1:8000:0")))?;
    p.ok(meta(0, None))
}

// ---- snapshots -------------------------------------------------------------------------

fn snapshot_none_initially(fx: &mut dyn Fixture) -> CaseResult {
    let p = Pair::new(fx);
    ensure!(p.instance.snapshot_meta().map_err(|e| e.to_string())?.is_none(), "has a snapshot");
    ensure!(p.instance.snapshot_files().map_err(|e| e.to_string())?.is_empty(), "has files");
    Ok(())
}

fn snapshot_publish_meta_and_files(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(snap(7, 1, vec![file("data", 1000, Some(b"meta")), file("b", 3, None)]))
}

fn snapshot_empty_tree(fx: &mut dyn Fixture) -> CaseResult {
    filled(fx, 3)?.ok(snap(2, 1, vec![]))
}

fn snapshot_nested_unicode_paths(fx: &mut dyn Fixture) -> CaseResult {
    filled(fx, 3)?.ok(snap(
        3,
        1,
        vec![
            file("a/b/c/d.sst", 10, None),
            file("a/b/e", 0, None),
            file("with space/file name.txt", 20, None),
            file("unicodé/ファイル", 30, Some(b"")),
            file("a.b", 1, None),
        ],
    ))
}

fn snapshot_file_meta_round_trips(fx: &mut dyn Fixture) -> CaseResult {
    filled(fx, 3)?.ok(snap(
        3,
        1,
        vec![
            file("none", 5, None),
            file("empty", 5, Some(b"")),
            file("bytes", 5, Some(&[0, 1, 2, 255, 0x0a, 0x08])),
            file_with(
                "source-local",
                5,
                FileMeta { source: Some(FileSource::Local), ..FileMeta::default() },
            ),
            file_with(
                "source-reference",
                5,
                FileMeta { source: Some(FileSource::Reference), ..FileMeta::default() },
            ),
            file_with(
                "checksum-empty",
                5,
                FileMeta { checksum: Some(String::new()), ..FileMeta::default() },
            ),
            file_with(
                "all-three",
                5,
                FileMeta {
                    user_meta: Some(Bytes::from_static(b"\x12\x00")),
                    source: Some(FileSource::Local),
                    checksum: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
                },
            ),
        ],
    ))
}

fn snapshot_large_file_in_chunks(fx: &mut dyn Fixture) -> CaseResult {
    filled(fx, 3)?.ok(snap(3, 1, vec![file("big", 3 * 64 * 1024 + 17, None)]))
}

fn snapshot_replaces_previous(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(snap(4, 1, vec![file("old", 10, None), file("shared", 5, None)]))?;
    p.ok(snap(9, 1, vec![file("new", 10, None), file("shared", 7, Some(b"x"))]))
}

fn snapshot_abandoned_writer_changes_nothing(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(snap(4, 1, vec![file("old", 10, None)]))?;
    let Action::Snapshot { meta, files, .. } = snap(9, 1, vec![file("new", 10, None)]) else {
        unreachable!("snap builds a snapshot action")
    };
    p.ok(Action::Snapshot { meta, files, publish: false })
}

fn with_writer(
    p: &mut Pair,
    body: impl FnOnce(&mut dyn crate::contract::SnapshotWriter) -> Result<(), StorageError>,
) -> Result<Result<(), StorageError>, String> {
    let mut writer = p.instance.begin_snapshot().map_err(|e| format!("begin_snapshot: {e}"))?;
    let result = body(writer.as_mut());
    drop(writer);
    Ok(result)
}

fn snapshot_without_meta_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    let mut writer = p.instance.begin_snapshot().map_err(|e| format!("begin_snapshot: {e}"))?;
    writer.add_file(&path("f"), &FileMeta::default()).map_err(|e| e.to_string())?;
    match writer.publish() {
        Ok(()) => Err("publish without meta was accepted".to_string()),
        Err(e) => {
            ensure!(
                matches!(e, StorageError::Contract(ContractError::SnapshotWithoutMeta)),
                "wrong error: {e}"
            );
            p.same("after a rejected publish")
        }
    }
}

fn snapshot_duplicate_file_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    let r = with_writer(&mut p, |w| {
        w.add_file(&path("f"), &FileMeta::default())?;
        w.add_file(&path("f"), &FileMeta::default())
    })?;
    ensure!(
        matches!(r, Err(StorageError::Contract(ContractError::DuplicateSnapshotFile { .. }))),
        "duplicate add_file gave {r:?}"
    );
    p.same("after a duplicate add_file")
}

fn snapshot_path_conflict_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    let r = with_writer(&mut p, |w| {
        w.add_file(&path("a/b"), &FileMeta::default())?;
        w.add_file(&path("a/b/c"), &FileMeta::default())
    })?;
    ensure!(
        matches!(r, Err(StorageError::Contract(ContractError::SnapshotPathConflict { .. }))),
        "file under a file gave {r:?}"
    );
    let r = with_writer(&mut p, |w| {
        w.add_file(&path("x/y/z"), &FileMeta::default())?;
        w.add_file(&path("x/y"), &FileMeta::default())
    })?;
    ensure!(
        matches!(r, Err(StorageError::Contract(ContractError::SnapshotPathConflict { .. }))),
        "file over a directory gave {r:?}"
    );
    p.same("after conflicting paths")
}

fn snapshot_write_not_at_end_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    let r = with_writer(&mut p, |w| {
        w.add_file(&path("f"), &FileMeta::default())?;
        w.write_file(&path("f"), 0, b"abc")?;
        w.write_file(&path("f"), 1, b"x")
    })?;
    ensure!(
        matches!(r, Err(StorageError::Contract(ContractError::SnapshotWriteNotAtEnd { .. }))),
        "write at offset 1 of a 3-byte file gave {r:?}"
    );
    p.same("after a bad write")
}

fn snapshot_write_unknown_file_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    let r = with_writer(&mut p, |w| w.write_file(&path("nope"), 0, b"abc"))?;
    ensure!(
        matches!(r, Err(StorageError::Contract(ContractError::UnknownSnapshotFile { .. }))),
        "write to an unknown file gave {r:?}"
    );
    p.same("after a write to an unknown file")
}

/// A family's reserved names ([`RaftStorage::reserved_snapshot_names`]) are refused as a
/// first path segment, by a writer and by an import, before anything changes; names next to
/// them (a longer name, the same name deeper down) are the user's in every family.
fn snapshot_reserved_names_refused(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    let near =
        [file("__raft_snapshot_meta_user", 4, Some(b"u")), file("x/__raft_snapshot_meta", 2, None)];
    p.ok(snap(3, 1, near.to_vec()))?;
    let reserved = p.instance.reserved_snapshot_names();
    let is_reserved = |r: &Result<(), StorageError>| {
        matches!(r, Err(StorageError::Contract(ContractError::ReservedSnapshotPath { .. })))
    };
    for name in &reserved {
        for refused in [name.to_string(), format!("{name}/inner")] {
            let r = with_writer(&mut p, |w| w.add_file(&path(&refused), &FileMeta::default()))?;
            ensure!(is_reserved(&r), "add_file({refused:?}) gave {r:?}");
            p.same(&format!("after add_file({refused:?}) was refused"))?;
        }
    }
    let mut q = Pair::new(fx);
    for name in &reserved {
        let r = {
            let mut sink = q.instance.begin_import().map_err(|e| format!("begin_import: {e}"))?;
            sink.set_first_index(1).map_err(|e| e.to_string())?;
            sink.set_meta(&Meta::INITIAL).map_err(|e| e.to_string())?;
            sink.add_snapshot_file(&path(name), &FileMeta::default())
        };
        ensure!(is_reserved(&r), "import add_snapshot_file({name:?}) gave {r:?}");
        q.same(&format!("after an import of {name:?} was refused"))?;
    }
    Ok(())
}

fn snapshot_read_edges(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    p.ok(snap(3, 1, vec![file("f", 10, None)]))?;
    let mut buf = [0u8; 4];
    let n = p.instance.read_snapshot_file(&path("f"), 8, &mut buf).map_err(|e| e.to_string())?;
    ensure!(n == 2, "read of 4 bytes at 8 of a 10-byte file returned {n}");
    let n = p.instance.read_snapshot_file(&path("f"), 10, &mut buf).map_err(|e| e.to_string())?;
    ensure!(n == 0, "read at the end returned {n}");
    let n =
        p.instance.read_snapshot_file(&path("f"), u64::MAX, &mut buf).map_err(|e| e.to_string())?;
    ensure!(n == 0, "read at u64::MAX returned {n}");
    let r = p.instance.read_snapshot_file(&path("g"), 0, &mut buf);
    ensure!(r.is_err(), "read of an unknown file returned {r:?}");
    Ok(())
}

fn snapshot_leaves_log_alone(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(snap(20, 9, vec![file("f", 1, None)]))?;
    p.ok(batch(11, 12, 1))
}

// ---- export and import -----------------------------------------------------------------

fn export_cut_is_pinned(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(meta(2, Some("10.0.0.1:8000:0")))?;
    p.ok(snap(5, 1, vec![file("f", 100, None)]))?;
    let expected = p.model.state.clone();
    let cut = p.instance.begin_export().map_err(|e| format!("begin_export: {e}"))?;
    p.ok(batch(11, 15, 3))?;
    p.ok(Action::TruncateSuffix(8))?;
    p.ok(Action::TruncatePrefix(4))?;
    p.ok(meta(3, None))?;
    p.ok(snap(7, 1, vec![file("g", 10, None)]))?;
    p.ok(Action::Reset(40))?;
    let seen = RaftState::capture(cut.as_ref()).map_err(|e| format!("reading the cut: {e}"))?;
    match first_difference(&seen, &expected) {
        None => Ok(()),
        Some(d) => Err(format!("the pinned cut moved: cut vs state at the cut: {d}")),
    }
}

/// Imports `state` into `dest` through its import sink, in small batches.
pub fn import_state(dest: &mut dyn RaftStorage, state: &RaftState) -> Result<(), StorageError> {
    let mut sink = dest.begin_import()?;
    sink.set_first_index(state.first)?;
    for chunk in state.entries.chunks(3) {
        sink.append(chunk)?;
    }
    sink.set_meta(&state.meta)?;
    if let Some(s) = &state.snapshot {
        for (path, f) in &s.files {
            sink.add_snapshot_file(path, &f.file_meta)?;
            sink.write_snapshot_file(path, 0, &f.data)?;
        }
        sink.set_snapshot_meta(s.meta.clone())?;
    }
    sink.commit()
}

fn source_state(fx: &mut dyn Fixture) -> Result<RaftState, String> {
    let mut p = filled(fx, 12)?;
    p.ok(Action::TruncatePrefix(4))?;
    p.ok(meta(6, Some("10.0.0.1:8000:0")))?;
    p.ok(snap(3, 1, vec![file("a/b", 100, Some(b"m")), file("c", 0, None)]))?;
    Ok(p.model.state)
}

fn import_into_empty(fx: &mut dyn Fixture) -> CaseResult {
    let state = source_state(fx)?;
    let mut p = Pair::new(fx);
    import_state(p.instance.as_mut(), &state).map_err(|e| format!("import: {e}"))?;
    p.model.state = state;
    p.same("after import")
}

fn import_into_non_empty_rejected(fx: &mut dyn Fixture) -> CaseResult {
    let state = source_state(fx)?;
    let mut p = filled(fx, 2)?;
    match import_state(p.instance.as_mut(), &state) {
        Ok(()) => Err("import into a non-empty instance was accepted".to_string()),
        Err(StorageError::Contract(ContractError::NotEmpty { .. })) => p.same("after refusal"),
        Err(e) => Err(format!("import into a non-empty instance failed oddly: {e}")),
    }?;
    let mut q = Pair::new(fx);
    q.ok(meta(2, None))?;
    match import_state(q.instance.as_mut(), &state) {
        Err(StorageError::Contract(ContractError::NotEmpty { .. })) => q.same("after refusal"),
        other => Err(format!("import over a saved meta gave {other:?}")),
    }
}

fn import_dropped_leaves_empty(fx: &mut dyn Fixture) -> CaseResult {
    let state = source_state(fx)?;
    let mut p = Pair::new(fx);
    {
        let mut sink = p.instance.begin_import().map_err(|e| format!("begin_import: {e}"))?;
        sink.set_first_index(state.first).map_err(|e| e.to_string())?;
        sink.append(&state.entries).map_err(|e| e.to_string())?;
        sink.set_meta(&state.meta).map_err(|e| e.to_string())?;
    }
    p.same("after a dropped import")?;
    if fx.durable() {
        p.reopen(fx)?;
    }
    import_state(p.instance.as_mut(), &state).map_err(|e| format!("import after abort: {e}"))?;
    p.model.state = state;
    p.same("after the second import")
}

// ---- reopen ----------------------------------------------------------------------------

fn reopen_keeps_log(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 20)?;
    p.ok(Action::Append(vec![config(21, 2, &["10.0.0.1:8000:0"], &["10.0.0.2:8000:0"])]))?;
    p.reopen(fx)?;
    p.append_next(4, 2)
}

fn reopen_keeps_meta(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = Pair::new(fx);
    p.ok(meta(9, Some("10.0.0.1:8000:0:1")))?;
    p.reopen(fx)?;
    p.ok(meta(10, None))?;
    p.reopen(fx)
}

fn reopen_keeps_snapshot(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 5)?;
    p.ok(snap(5, 1, vec![file("a/b", 100, Some(b"m")), file("c", 0, None)]))?;
    p.reopen(fx)?;
    p.ok(snap(5, 1, vec![file("d", 10, None)]))?;
    p.reopen(fx)
}

fn reopen_after_truncations(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 30)?;
    p.ok(Action::TruncatePrefix(11))?;
    p.ok(Action::TruncateSuffix(20))?;
    p.reopen(fx)?;
    p.append_next(2, 3)?;
    p.reopen(fx)
}

fn reopen_after_reset(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 10)?;
    p.ok(Action::Reset(77))?;
    p.reopen(fx)?;
    p.append_next(2, 2)?;
    p.reopen(fx)
}

fn reopen_after_import(fx: &mut dyn Fixture) -> CaseResult {
    let state = source_state(fx)?;
    let mut p = Pair::new(fx);
    import_state(p.instance.as_mut(), &state).map_err(|e| format!("import: {e}"))?;
    p.model.state = state;
    p.reopen(fx)
}

fn reopen_twice_then_mutate(fx: &mut dyn Fixture) -> CaseResult {
    let mut p = filled(fx, 3)?;
    p.reopen(fx)?;
    p.reopen(fx)?;
    p.ok(Action::TruncateSuffix(1))?;
    p.append_next(2, 2)?;
    p.reopen(fx)
}
