//! The executor: applies a history to a family instance and to the model, and checks them
//! against each other after every step.
//!
//! After every step the runner checks that the call succeeded or failed exactly as the model
//! did, and compares what the step can have changed: the retained range, the entries it wrote
//! or cut at, meta, and the snapshot meta (and the whole snapshot after a publish). Every
//! `full_check_every` steps, after every reopen and crash, and at the end it compares the
//! whole Raft-visible state. Panics inside the family are caught and reported as the `panic`
//! check. Every step adds one line to a hashed trace, so two runs of a seed can be compared.
//!
//! On a [`SimDisk`] the runner also plays power losses (`crash`, `crash_during_next`) and
//! reacts to injected faults: a mutation that fails because of a fault (or a crash point) is
//! followed by a power loss, and the recovered state must be one the atomicity table allows
//! (`crash_atomicity`): for an unacknowledged mutation the state before or after it (any
//! prefix of an append batch), for an acknowledged one the state after it. Under a dishonest
//! fault plan (lying fsync, media faults) acknowledged data may be lost: each of the three
//! stores (log, meta, latest snapshot) must recover to a state *it* held at some point of the
//! history — a lying disk rolls files back independently, and braft's layout keeps the three
//! in separate files with no common commit record — and refusing to open or read with an
//! error (failing closed) is always allowed; the run then ends. An invented state (entries
//! that never were, a truncated entry back beside newer ones) is a finding.
//!
//! A run's subject is a family or a dual-write pair ([`Subject`]). A pair's history starts on
//! its primary alone; at the join step (a quarter of the way in) a mirror is bootstrapped
//! from the primary, and from then on the mirror is checked like the primary after every step
//! and after every reopen and power loss (`dual_write`, see [`crate::sim::dual`]).

use std::collections::{BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::{Family, RaftStorage, StateView, StorageError, StorageResult};
use crate::dual_write::{DualFamily, DualWriteError, Recovery};
use crate::families::Registry;
use crate::sim::check::{CheckFailure, CheckName};
use crate::sim::crash_cases::CrashCheck;
use crate::sim::dual::{
    recovery_verdict, LonePrimary, PairCrashCheck, PairFamily, PairInstance, RecoveryContext,
    Subject,
};
use crate::sim::image_checks::{ImageCheckFailure, PinnedExport};
use crate::sim::model::Model;
use crate::sim::ops::{Action, Op};
use crate::sim::read_only_check::{self, Probe};
use crate::sim::undo::Before;
use crate::state::{first_difference, RaftState};
use crate::vfs::{EnumerateOptions, Mark, SimDisk, VfsHandle};

/// Largest chunk a snapshot file is written in.
pub const SNAPSHOT_CHUNK_LEN: usize = 64 * 1024;

/// Lines of the disk's own trace a failure report keeps.
pub const DISK_TRACE_TAIL_LEN: usize = 24;

/// How a run checks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunOptions {
    /// Compare the whole state every this many steps (and always at the end); 0 means only at
    /// the end and after reopens and crashes.
    pub full_check_every: usize,
    /// How many trace lines a failure report keeps.
    pub trace_tail_len: usize,
    /// Skip every comparison (for measuring the cost of checking); failures still count for
    /// calls whose success differs from the model's.
    pub unchecked: bool,
    /// Exhaustive mode: around every mutation of a durable family (or of a pair with a durable
    /// side: both sides are enumerated and checked), check the state after a power loss at
    /// every disk operation of the call and every subset of pending operations (ALICE-style),
    /// with these enumeration options.
    #[serde(default)]
    pub exhaustive: Option<EnumerateOptions>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { full_check_every: 16, trace_tail_len: 24, unchecked: false, exhaustive: None }
    }
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// Ops applied.
    pub steps: u64,
    /// Ops that changed durable state.
    pub mutations: u64,
    /// Clean close-and-reopen cycles.
    pub reopens: u64,
    /// Power losses recovered from.
    pub crashes: u64,
    /// Faults the disk injected.
    pub faults: u64,
    /// Whole-state comparisons.
    pub full_checks: u64,
    /// Calls the contract rejected (and the family rejected too).
    pub rejected_calls: u64,
    /// Mutations that failed because of an injected fault or a crash point.
    pub failed_mutations: u64,
    /// Runs ended early because the instance refused (failed closed) under a dishonest disk.
    pub refusals: u64,
    /// Crash states checked in exhaustive mode.
    pub crash_states: u64,
    /// Dual-write pairs whose mirror recovery repaired or bootstrapped again.
    #[serde(default)]
    pub pair_repairs: u64,
    /// Images exported from pinned cuts and checked.
    pub exports: u64,
    /// Imports made by the image checks.
    pub imports: u64,
}

/// The result of running one history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Counters.
    pub stats: RunStats,
    /// SHA-256 (hex) of the trace text.
    pub trace_hash: String,
    /// Digest of the model's final state.
    pub final_digest: String,
    /// The first failed check, if any.
    pub failure: Option<CheckFailure>,
    /// The last `trace_tail_len` trace lines.
    pub trace_tail: Vec<String>,
}

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

/// Applies one action to an instance (restarts and crashes are the caller's business and
/// do nothing here).
pub fn apply_action(instance: &mut dyn RaftStorage, action: &Action) -> StorageResult<()> {
    match action {
        Action::Append(entries) => instance.append(entries),
        Action::TruncatePrefix(i) => instance.truncate_prefix(*i),
        Action::TruncateSuffix(i) => instance.truncate_suffix(*i),
        Action::Reset(i) => instance.reset(*i),
        Action::SaveMeta(meta) => instance.save_meta(meta),
        Action::Snapshot { meta, files, publish } => {
            let mut writer = instance.begin_snapshot()?;
            for file in files {
                writer.add_file(&file.path, file.file_meta.as_deref())?;
                let mut offset = 0usize;
                for chunk in file.data.chunks(SNAPSHOT_CHUNK_LEN) {
                    writer.write_file(&file.path, offset as u64, chunk)?;
                    offset += chunk.len();
                }
            }
            writer.set_meta(meta.clone());
            if *publish {
                writer.publish()
            } else {
                Ok(())
            }
        }
        Action::Reopen | Action::Crash | Action::ArmCrash(_) | Action::Export(_) => Ok(()),
    }
}

/// Why a run stopped early without a failure.
enum Stop {
    /// A check failed.
    Failed(Box<CheckFailure>),
    /// The instance failed closed under a dishonest disk: allowed, and the run ends.
    Refused,
}

impl From<CheckFailure> for Stop {
    fn from(f: CheckFailure) -> Self {
        Stop::Failed(Box::new(f))
    }
}

/// The open instance: one family's, or a dual-write pair.
enum Instance {
    Single(Box<dyn RaftStorage>),
    Pair(Box<dyn PairInstance>),
}

impl Instance {
    fn storage(&self) -> &dyn RaftStorage {
        match self {
            Instance::Single(s) => s.as_ref(),
            Instance::Pair(p) => p.storage(),
        }
    }

    fn storage_mut(&mut self) -> &mut dyn RaftStorage {
        match self {
            Instance::Single(s) => s.as_mut(),
            Instance::Pair(p) => p.storage_mut(),
        }
    }

    fn mirror(&self) -> Option<&dyn StateView> {
        match self {
            Instance::Single(_) => None,
            Instance::Pair(p) => Some(p.mirror()),
        }
    }
}

/// When a pair's mirror joins its primary.
#[derive(Clone, Copy, Debug)]
struct Join {
    /// The step before which the mirror joins.
    at: usize,
    /// Whether it has joined.
    joined: bool,
}

/// What reopening a joined pair found, for the dual-write check.
struct PairReopened {
    /// The mirror's state before any repair (`None`: not inspected, or it failed to open;
    /// `Err`: it failed to read).
    mirror_before: Option<Result<RaftState, String>>,
    /// Why the mirror failed to open, if it did.
    mirror_open_error: Option<StorageError>,
    /// What recovery did.
    recovery: Recovery,
    /// Whether the disk injected a fault while the pair was reopened and recovered.
    fault_during_recovery: bool,
}

/// Runs histories against one family instance (or a dual-write pair) and the model.
pub struct Runner {
    subject: Subject,
    location: String,
    vfs: VfsHandle,
    disk: Option<Arc<SimDisk>>,
    /// Whether the disk may lose or corrupt acknowledged data.
    dishonest: bool,
    /// Whether the disk can inject faults at all.
    faulty: bool,
    /// Digests of every state each store (log, meta, snapshot) held during the history (kept
    /// only under a dishonest disk).
    history: BTreeSet<(Store, String)>,
    armed: Option<u16>,
    export: Option<PinnedExport>,
    image_families: Vec<Arc<dyn Family>>,
    instance: Option<Instance>,
    /// For a pair: when its mirror joins.
    join: Option<Join>,
    model: Model,
    trace: Trace,
    options: RunOptions,
    stats: RunStats,
    /// What a read-only open showed just before the reopen in progress (check `read_only`).
    read_only_probe: Option<Probe>,
}

impl Runner {
    /// Opens a fresh instance of `family` at `location` on `vfs`. Without a simulated disk a
    /// crash op is played as a clean reopen.
    pub fn new(
        family: Arc<dyn Family>,
        location: &str,
        vfs: VfsHandle,
        options: RunOptions,
    ) -> StorageResult<Self> {
        Runner::build(Subject::Family(family), location, vfs, None, options)
    }

    /// Opens a fresh instance of `family` at `location` on a simulated disk, which plays
    /// crashes and injects the faults of its plan.
    pub fn on_sim_disk(
        family: Arc<dyn Family>,
        location: &str,
        disk: Arc<SimDisk>,
        options: RunOptions,
    ) -> StorageResult<Self> {
        Runner::for_subject_on_sim_disk(Subject::Family(family), location, disk, options)
    }

    /// Opens a fresh `subject` (a family's instance, or a pair's primary) at `location` on a
    /// simulated disk.
    pub fn for_subject_on_sim_disk(
        subject: Subject,
        location: &str,
        disk: Arc<SimDisk>,
        options: RunOptions,
    ) -> StorageResult<Self> {
        let vfs: VfsHandle = disk.clone();
        Runner::build(subject, location, vfs, Some(disk), options)
    }

    fn build(
        subject: Subject,
        location: &str,
        vfs: VfsHandle,
        disk: Option<Arc<SimDisk>>,
        options: RunOptions,
    ) -> StorageResult<Self> {
        let (instance, join) = match &subject {
            Subject::Family(family) => (family.open(location, vfs.clone())?, None),
            Subject::Pair(pair) => {
                (pair.open_primary(location, vfs.clone())?, Some(Join { at: 0, joined: false }))
            }
        };
        let plan = disk.as_ref().map(|d| d.options().faults);
        let dishonest = plan.as_ref().is_some_and(|p| !p.is_honest());
        let faulty = plan.as_ref().is_some_and(|p| !p.is_none());
        // Images are imported into every registered family, with the family under test (which
        // may carry a planted bug; for a pair, its primary's) standing in for its own scheme.
        let tested = match &subject {
            Subject::Family(family) => family.clone(),
            Subject::Pair(pair) => pair.primary_family(),
        };
        let image_families = Registry::builtin()
            .families()
            .iter()
            .map(|f| if f.scheme() == tested.scheme() { tested.clone() } else { f.clone() })
            .collect();
        let mut runner = Runner {
            subject,
            location: location.to_string(),
            vfs,
            disk,
            dishonest,
            faulty,
            history: BTreeSet::new(),
            armed: None,
            export: None,
            image_families,
            instance: Some(Instance::Single(instance)),
            join,
            model: Model::new(),
            trace: Trace::new(options.trace_tail_len),
            options,
            stats: RunStats::default(),
            read_only_probe: None,
        };
        runner.remember_state();
        Ok(runner)
    }

    /// The model as it stands.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Runs every op in order, stopping at the first failed check (or a refusal under a
    /// dishonest disk), then compares the whole state once more.
    pub fn run(mut self, ops: &[Op]) -> RunOutcome {
        if let Some(join) = &mut self.join {
            join.at = ops.len() / 4;
        }
        let mut failure = None;
        let mut refused = false;
        for (step, op) in ops.iter().enumerate() {
            match self.step_inner(step, op) {
                Ok(()) => {}
                Err(Stop::Failed(f)) => {
                    failure = Some(*f);
                    break;
                }
                Err(Stop::Refused) => {
                    refused = true;
                    break;
                }
            }
        }
        if failure.is_none() && !refused && !self.options.unchecked {
            match self.full_check(ops.len(), "end of history") {
                Ok(()) => {}
                Err(Stop::Failed(f)) => failure = Some(*f),
                Err(Stop::Refused) => {}
            }
        }
        if let Some(disk) = &self.disk {
            self.stats.faults = disk.fault_stats().faults_total();
        }
        RunOutcome {
            stats: self.stats.clone(),
            trace_hash: self.trace.hash(),
            final_digest: self.model.state.digest(),
            failure,
            trace_tail: self.trace.tail(),
        }
    }

    /// Applies op number `step` to the instance and the model and checks them. A refusal
    /// under a dishonest disk is reported as `Ok` (the caller may stop).
    pub fn step(&mut self, step: usize, op: &Op) -> Result<(), Box<CheckFailure>> {
        match self.step_inner(step, op) {
            Ok(()) | Err(Stop::Refused) => Ok(()),
            Err(Stop::Failed(f)) => Err(f),
        }
    }

    fn step_inner(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        if self.join.is_some_and(|j| !j.joined && step >= j.at) {
            self.join_mirror(step, op)?;
        }
        self.step_core(step, op)?;
        self.advance_export(step, op)
    }

    /// Streams the pinned export, and finishes it (running the image checks) when due.
    fn advance_export(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let Some(export) = self.export.as_mut() else { return Ok(()) };
        let due = match export.advance() {
            Ok(due) => due,
            Err(e) => return Err(self.image_check_failed(step, op, e)),
        };
        if !due {
            return Ok(());
        }
        let export = self.export.take().expect("checked above");
        match export.finish(&self.image_families) {
            Ok(stats) => {
                self.stats.exports += stats.exports;
                self.stats.imports += stats.imports;
                self.trace.push(format!("#{step} export finished and checked"));
                Ok(())
            }
            Err(e) => Err(self.image_check_failed(step, op, e)),
        }
    }

    fn image_check_failed(&mut self, step: usize, op: &Op, e: ImageCheckFailure) -> Stop {
        match e {
            ImageCheckFailure::SourceUnreadable(what) if self.dishonest => {
                self.trace.push(format!("#{step} export -> refused: {what}"));
                self.stats.refusals += 1;
                Stop::Refused
            }
            ImageCheckFailure::SourceUnreadable(what) => {
                self.failure(CheckName::ExportCut, step, op, what).into()
            }
            ImageCheckFailure::Failed(check, what) => self.failure(check, step, op, what).into(),
        }
    }

    fn begin_export(&mut self, step: usize, op: &Op, spread: u8) -> Result<(), Stop> {
        if self.options.unchecked {
            self.trace.push(format!("#{step} export(spread={spread}) -> skipped (unchecked)"));
            return Ok(());
        }
        if self.export.is_some() {
            self.trace.push(format!("#{step} export(spread={spread}) -> one is in progress"));
            return Ok(());
        }
        let instance = self.instance.as_mut().expect("instance is open between steps");
        let storage = instance.storage_mut();
        let (family, family_version) = (storage.family(), storage.family_format_version());
        let pinned = catch_unwind(AssertUnwindSafe(|| storage.begin_export()));
        match pinned {
            Ok(Ok(view)) => {
                let seed = self.disk.as_ref().map_or(0, |d| d.options().seed) ^ step as u64;
                self.export = Some(PinnedExport::new(
                    view,
                    self.model.state.clone(),
                    family,
                    family_version,
                    spread,
                    seed,
                ));
                self.trace.push(format!("#{step} export(spread={spread}) -> pinned"));
                Ok(())
            }
            Ok(Err(e)) if self.faulty => {
                self.trace.push(format!("#{step} export(spread={spread}) -> err: {e}"));
                Ok(())
            }
            Ok(Err(e)) => {
                let what = format!("begin_export failed on an honest disk: {e}");
                Err(self.failure(CheckName::ExportCut, step, op, what).into())
            }
            Err(panic) => {
                let what = format!("panic in begin_export: {}", panic_text(&panic));
                Err(self.failure(CheckName::Panic, step, op, what).into())
            }
        }
    }

    fn step_core(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let action = op.resolve(&self.model);
        self.stats.steps += 1;
        if op.is_mutation() {
            self.stats.mutations += 1;
        }
        match action {
            Action::Reopen => return self.reopen(step, op),
            Action::Crash => {
                self.trace.push(format!("#{step} crash()"));
                let after = vec![self.model.state.clone()];
                return self.crash_and_check(step, op, after);
            }
            Action::ArmCrash(n) => {
                self.trace.push(format!("#{step} arm_crash(disk_ops={n})"));
                if self.disk.is_some() {
                    self.armed = Some(n);
                }
                return Ok(());
            }
            Action::Export(spread) => return self.begin_export(step, op, spread),
            _ => {}
        }
        let armed = self.armed.take();
        // Only a durable family on a disk that can fail needs the state before the step: the
        // atomicity table allows it back after a failed mutation (a pair's mirror too). An
        // undo record of the step keeps it (copying the whole log every step cost more).
        let keep_before = self.subject.any_durable() && (armed.is_some() || self.faulty);
        let before = keep_before.then(|| Before::record(&self.model.state, &action));
        let faults_before = self.faults_so_far();
        if let (Some(n), Some(disk)) = (armed, &self.disk) {
            disk.crash_after_op(disk.op_count() + u64::from(n));
        }
        // Enumerated crash states are honest; under a dishonest plan the disk already carries
        // media-fault overlays that a fork inherits, so exhaustive checks need an honest plan.
        let exhaustive = match (&self.options.exhaustive, &self.disk) {
            (Some(opts), Some(disk)) if armed.is_none() && self.enumerable() && !self.dishonest => {
                Some((opts.clone(), disk.mark(), self.model.state.clone()))
            }
            _ => None,
        };
        let model_result = self.model.apply(&action);
        let instance = self.instance.as_mut().expect("instance is open between steps");
        let result =
            catch_unwind(AssertUnwindSafe(|| apply_action(instance.storage_mut(), &action)));
        let result = match result {
            Ok(r) => r,
            Err(panic) => {
                let what = panic_text(&panic);
                self.trace.push(format!("#{step} {action} -> panic: {what}"));
                return Err(self
                    .failure(CheckName::Panic, step, op, format!("panic: {what}"))
                    .into());
            }
        };
        let verdict = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err: {e}"),
        };
        self.trace.push(format!("#{step} {action} -> {verdict}"));
        let halted = self.disk.as_ref().is_some_and(|d| d.is_halted());
        // A media fault planted earlier (a latent sector error, rot) surfaces only when a
        // later call reads the sector: under a dishonest plan an I/O or corruption error is
        // a fault striking now, even though no fault was injected during this call.
        let surfaced = self.dishonest && result.as_ref().is_err_and(refusal);
        let fault_struck = halted || surfaced || self.faults_so_far() > faults_before;
        match (&model_result, &result) {
            (_, Err(e)) if fault_struck && !matches!(e, StorageError::Contract(_)) => {
                // The mutation failed because of a fault or a crash point: unacknowledged.
                // Also when the contract rejects the call: a family may meet the fault before
                // it finds the bad argument (a pair feeds files before it checks the meta),
                // and what the fault left behind is recovered like any other.
                self.stats.failed_mutations += 1;
                let candidates = match &before {
                    Some(before) => {
                        let before = before.state(&self.model.state);
                        allowed_after_unacknowledged(&before, &action, &self.model)
                    }
                    None => Vec::new(), // a volatile family recovers empty whatever happened
                };
                return self.crash_and_check(step, op, candidates);
            }
            (Ok(()), Err(e)) => {
                let what = format!("the family failed a call the contract accepts: {e}");
                return Err(self.failure(CheckName::ModelEquality, step, op, what).into());
            }
            (Err(e), Ok(())) => {
                let what = format!("the family accepted a call the contract rejects ({e})");
                return Err(self.failure(CheckName::ModelEquality, step, op, what).into());
            }
            (Err(_), Err(_)) => self.stats.rejected_calls += 1,
            (Ok(()), Ok(())) => {}
        }
        self.remember(Store::changed_by(&action));
        if let (Some((opts, mark, before)), Some(disk), Ok(())) =
            (exhaustive, self.disk.clone(), &result)
        {
            let returned_at = disk.op_count();
            let allowed = allowed_after_unacknowledged(&before, &action, &self.model);
            // A family that panics reopening a crash state is a finding, not an abort.
            let verified = catch_unwind(AssertUnwindSafe(|| {
                self.verify_crash_states(&disk, mark, returned_at, &opts, &allowed)
            }))
            .unwrap_or_else(|panic| {
                let text = panic_text(&panic);
                Err((CheckName::Panic, format!("panic while checking crash states: {text}")))
            });
            match verified {
                Ok(states) => self.stats.crash_states += states,
                Err((check, what)) => return Err(self.failure(check, step, op, what).into()),
            }
        }
        if armed.is_some() && self.disk.is_some() {
            // The call returned before the crash point struck: it was acknowledged, so only
            // the state after it is allowed.
            let after = vec![self.model.state.clone()];
            return self.crash_and_check(step, op, after);
        }
        if self.options.unchecked {
            return Ok(());
        }
        self.quick_check(step, op, &action)?;
        let every = self.options.full_check_every;
        let published = matches!(action, Action::Snapshot { publish: true, .. });
        if published || (every > 0 && (step + 1).is_multiple_of(every)) {
            self.full_check(step, &op.to_string())?;
        }
        Ok(())
    }

    /// Whether exhaustive mode has something to enumerate: a durable family, a pair's durable
    /// primary before the join, a joined pair with a durable side.
    fn enumerable(&self) -> bool {
        match &self.subject {
            Subject::Pair(_) if self.pair_joined() => self.subject.any_durable(),
            subject => subject.durable(),
        }
    }

    /// Exhaustive mode: checks every crash state of the disk since `mark` (the call returned
    /// after disk op `returned_at`; `allowed` while it had not): a family's instance, a pair's
    /// primary alone before the join, both sides of a joined pair ([`PairCrashCheck`]).
    /// Returns how many states were checked, or the failed check.
    fn verify_crash_states(
        &self,
        disk: &SimDisk,
        mark: Mark,
        returned_at: u64,
        options: &EnumerateOptions,
        allowed: &[RaftState],
    ) -> Result<u64, (CheckName, String)> {
        let (location, after) = (self.location.as_str(), &self.model.state);
        let family: Arc<dyn Family> = match &self.subject {
            Subject::Pair(pair) if self.pair_joined() => {
                let check =
                    PairCrashCheck { pair: pair.as_ref(), location, before: allowed, after };
                return check.verify(disk, mark, returned_at, options);
            }
            Subject::Pair(pair) => Arc::new(LonePrimary(pair.clone())),
            Subject::Family(family) => family.clone(),
        };
        let check = CrashCheck { family: family.as_ref(), location, before: allowed, after };
        check.verify_named(disk, mark, returned_at, options).map(|report| report.states as u64)
    }

    fn faults_so_far(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.fault_stats().faults_total())
    }

    /// Under a dishonest disk, remembers the model's state as one the history produced.
    fn remember_state(&mut self) {
        self.remember(&Store::ALL);
    }

    /// Under a dishonest disk, remembers the current state of `stores` (the others have not
    /// changed since they were last remembered).
    fn remember(&mut self, stores: &[Store]) {
        if !self.dishonest {
            return;
        }
        for store in stores {
            self.history.insert((*store, store.digest(&self.model.state)));
        }
        #[cfg(debug_assertions)]
        assert!(
            self.seen_in_history(&self.model.state),
            "a store changed that the step was not expected to change"
        );
    }

    /// Whether every store of `state` holds a state it held at some point of the history.
    fn seen_in_history(&self, state: &RaftState) -> bool {
        Store::ALL.iter().all(|s| self.history.contains(&(*s, s.digest(state))))
    }

    fn reopen(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        self.stats.reopens += 1;
        self.restart(step, op, "reopen()")
    }

    /// A clean close and reopen (no power loss).
    fn restart(&mut self, step: usize, op: &Op, context: &str) -> Result<(), Stop> {
        let before = self.pair_joined().then(|| self.model.state.clone());
        self.export = None;
        drop(self.instance.take());
        let reopened = self.open_again(step, op)?;
        if !self.subject.durable() {
            self.model.forget();
        }
        self.trace.push(format!("#{step} {context} -> ok"));
        if let (Some(reopened), Some(before)) = (reopened, before) {
            let mirror_candidates = [self.mirror_candidate(before)];
            self.check_pair_reopen(step, op, &reopened, false, &mirror_candidates)?;
        }
        self.full_check(step, context)?;
        self.check_reopened(step, op)
    }

    /// Whether the subject is a pair whose mirror has joined.
    fn pair_joined(&self) -> bool {
        self.join.is_some_and(|j| j.joined)
    }

    /// What a pair's mirror may hold after a restart where `state` is allowed: `state`, or
    /// nothing for a volatile mirror.
    fn mirror_candidate(&self, state: RaftState) -> RaftState {
        match &self.subject {
            Subject::Pair(p) if !p.mirror_family().durable() => RaftState::new(),
            _ => state,
        }
    }

    /// Opens the subject again: a family's instance, a pair's primary before its mirror
    /// joined, or a joined pair (recovered, with what recovery found).
    fn open_again(&mut self, step: usize, op: &Op) -> Result<Option<PairReopened>, Stop> {
        self.read_only_probe = self.probe_read_only();
        let (location, vfs) = (self.location.clone(), self.vfs.clone());
        let opened = match self.subject.clone() {
            Subject::Family(family) => {
                catch_unwind(AssertUnwindSafe(|| family.open(&location, vfs)))
            }
            Subject::Pair(pair) if !self.pair_joined() => {
                catch_unwind(AssertUnwindSafe(|| pair.open_primary(&location, vfs)))
            }
            Subject::Pair(pair) => return self.open_pair_again(step, op, pair.as_ref()).map(Some),
        };
        match opened {
            Ok(Ok(instance)) => {
                self.instance = Some(Instance::Single(instance));
                Ok(None)
            }
            Ok(Err(e)) => Err(self.open_failed(step, op, e)),
            Err(panic) => Err(self.open_panicked(step, op, &panic)),
        }
    }

    /// The family and location a reopen recovers: the subject's, or a pair's primary.
    fn reopened_family(&self) -> (Arc<dyn Family>, String) {
        match &self.subject {
            Subject::Family(family) => (family.clone(), self.location.clone()),
            Subject::Pair(pair) => {
                (pair.primary_family(), DualFamily::primary_location(&self.location))
            }
        }
    }

    /// Check `read_only`, before a reopen: what a read-only open of the disk shows.
    fn probe_read_only(&self) -> Option<Probe> {
        let disk = self.disk.as_ref().filter(|_| !self.options.unchecked)?;
        let (family, location) = self.reopened_family();
        Some(read_only_check::probe(family.as_ref(), &location, disk))
    }

    /// Checks `read_only` (the probe against the state the reopen recovered, now the
    /// model's) and `single_writer` (a second writer is refused while the instance is open).
    fn check_reopened(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let Some(disk) = self.disk.clone() else { return Ok(()) };
        if let Some(probe) = self.read_only_probe.take() {
            if let Err(what) = probe.judge(&self.model.state, self.dishonest) {
                return Err(self.failure(CheckName::ReadOnly, step, op, what).into());
            }
        }
        let (family, location) = self.reopened_family();
        if family.durable() && !self.options.unchecked {
            if let Err(what) = read_only_check::second_writer(family.as_ref(), &location, &disk) {
                return Err(self.failure(CheckName::SingleWriter, step, op, what).into());
            }
        }
        Ok(())
    }

    fn open_failed(&mut self, step: usize, op: &Op, e: StorageError) -> Stop {
        if (self.dishonest && refusal(&e)) || (self.faulty && injected(&e)) {
            self.trace.push(format!("#{step} open -> refused: {e}"));
            self.stats.refusals += 1;
            return Stop::Refused;
        }
        self.trace.push(format!("#{step} open -> err: {e}"));
        let check = if self.stats.crashes > 0 {
            CheckName::CrashAtomicity
        } else {
            CheckName::ModelEquality
        };
        self.failure(check, step, op, format!("reopen failed: {e}")).into()
    }

    fn open_panicked(
        &mut self,
        step: usize,
        op: &Op,
        panic: &Box<dyn std::any::Any + Send>,
    ) -> Stop {
        let what = format!("panic during open: {}", panic_text(panic));
        self.trace.push(format!("#{step} open -> {what}"));
        self.failure(CheckName::Panic, step, op, what).into()
    }

    /// Reopens a joined pair: both sides, the mirror's state before any repair (when the
    /// dual-write check will look at it), then recovery.
    fn open_pair_again(
        &mut self,
        step: usize,
        op: &Op,
        pair: &dyn PairFamily,
    ) -> Result<PairReopened, Stop> {
        let (location, vfs) = (self.location.clone(), self.vfs.clone());
        // Faults injected while the sides open count as faults during recovery: an engine
        // that writes while it opens (redb's repair) may meet an honest plan's EIO or ENOSPC.
        let faults_before = self.faults_so_far();
        let opened = catch_unwind(AssertUnwindSafe(|| pair.open_sides(&location, vfs.clone())));
        let sides = match opened {
            Ok(Ok(sides)) => sides,
            Ok(Err(e)) => return Err(self.open_failed(step, op, e)),
            Err(panic) => return Err(self.open_panicked(step, op, &panic)),
        };
        let inspect = pair.mirror_family().durable() && !self.dishonest;
        let mirror_before = match &sides.mirror {
            Ok(mirror) if inspect => {
                let captured =
                    catch_unwind(AssertUnwindSafe(|| RaftState::capture(mirror.as_ref())));
                Some(match captured {
                    Ok(Ok(state)) => Ok(state),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(panic) => Err(format!("panic: {}", panic_text(&panic))),
                })
            }
            _ => None,
        };
        let mirror_open_error = sides.mirror.as_ref().err().cloned();
        let recovered = catch_unwind(AssertUnwindSafe(|| pair.recover(sides, &location, vfs)));
        let halted = self.disk.as_ref().is_some_and(|d| d.is_halted());
        let fault_during_recovery = halted || self.faults_so_far() > faults_before;
        match recovered {
            Ok(Ok((instance, recovery))) => {
                self.trace.push(format!("#{step} pair recovery -> {recovery}"));
                if recovery != Recovery::Equivalent {
                    self.stats.pair_repairs += 1;
                }
                self.instance = Some(Instance::Pair(instance));
                Ok(PairReopened {
                    mirror_before,
                    mirror_open_error,
                    recovery,
                    fault_during_recovery,
                })
            }
            Ok(Err(e)) if fault_during_recovery || (self.dishonest && refusal(&e)) => {
                // Detected, not carried: the pair refuses to form under the faults.
                self.trace.push(format!("#{step} pair recovery -> refused: {e}"));
                self.stats.refusals += 1;
                Err(Stop::Refused)
            }
            Ok(Err(e)) => {
                self.trace.push(format!("#{step} pair recovery -> err: {e}"));
                let what = format!("the pair could not be recovered: {e}");
                Err(self.failure(CheckName::DualWrite, step, op, what).into())
            }
            Err(panic) => {
                let what = format!("panic during pair recovery: {}", panic_text(&panic));
                Err(self.failure(CheckName::Panic, step, op, what).into())
            }
        }
    }

    /// The dual-write check after a reopen: before any repair a durable mirror held a state
    /// in `mirror_candidates` (honest disk only), and recovery's verdict is one the situation
    /// allows. (That the mirror then equals the model is the caller's full check.)
    fn check_pair_reopen(
        &mut self,
        step: usize,
        op: &Op,
        reopened: &PairReopened,
        after_crash: bool,
        mirror_candidates: &[RaftState],
    ) -> Result<(), Stop> {
        let Subject::Pair(pair) = &self.subject else { return Ok(()) };
        let primary_durable = pair.primary_family().durable();
        let mirror_durable = pair.mirror_family().durable();
        let problem = match &reopened.mirror_before {
            Some(Ok(state)) if mirror_candidates.contains(state) => None,
            Some(Ok(state)) => {
                let mut what = String::from(
                    "before repair the mirror held a state the atomicity table does not allow \
                     (a mutation the pair acknowledged is not durable on the mirror?)",
                );
                for (i, c) in mirror_candidates.iter().enumerate() {
                    let d = first_difference(state, c).unwrap_or_default();
                    what.push_str(&format!("; vs allowed state {}: {d}", i + 1));
                }
                Some(what)
            }
            Some(Err(e)) => Some(format!("the reopened mirror could not be read: {e}")),
            None => match &reopened.mirror_open_error {
                // Opening may write (a database engine's crash repair) and meet an injected
                // EIO or ENOSPC: the mirror failing closed then is no bug.
                Some(e) if self.faulty && injected(e) => None,
                Some(e) if mirror_durable && !self.dishonest => {
                    Some(format!("the mirror failed to open again on an honest disk: {e}"))
                }
                _ => None,
            },
        };
        let context = RecoveryContext {
            after_crash,
            primary_durable,
            mirror_durable,
            dishonest: self.dishonest,
            fault_during_recovery: reopened.fault_during_recovery,
        };
        let problem = problem.or_else(|| recovery_verdict(&reopened.recovery, context).err());
        match problem {
            None => Ok(()),
            Some(what) => Err(self.failure(CheckName::DualWrite, step, op, what).into()),
        }
    }

    /// A pair's mirror joins its primary (bootstrapped from it), then is checked in full. A
    /// join that a fault broke is followed by a power loss and tried again at the next step.
    fn join_mirror(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let Subject::Pair(pair) = self.subject.clone() else { return Ok(()) };
        let primary = match self.instance.take() {
            Some(Instance::Single(primary)) => primary,
            other => {
                self.instance = other;
                return Ok(());
            }
        };
        let faults_before = self.faults_so_far();
        let (location, vfs) = (self.location.clone(), self.vfs.clone());
        let joined = catch_unwind(AssertUnwindSafe(|| pair.join(primary, &location, vfs)));
        match joined {
            Ok(Ok(instance)) => {
                self.instance = Some(Instance::Pair(instance));
                if let Some(join) = &mut self.join {
                    join.joined = true;
                }
                self.trace.push(format!("#{step} join(mirror) -> ok"));
                if self.options.unchecked {
                    return Ok(());
                }
                self.full_check(step, "join (a mirror bootstrapped from the primary)")
            }
            Ok(Err(e)) => {
                self.trace.push(format!("#{step} join(mirror) -> err: {e}"));
                let halted = self.disk.as_ref().is_some_and(|d| d.is_halted());
                if halted || self.faults_so_far() > faults_before || (self.dishonest && refusal(&e))
                {
                    let after = vec![self.model.state.clone()];
                    return self.crash_and_check(step, op, after);
                }
                let what = format!("the mirror could not join (bootstrap failed): {e}");
                Err(self.failure(CheckName::DualWrite, step, op, what).into())
            }
            Err(panic) => {
                let what = format!("panic during the join: {}", panic_text(&panic));
                Err(self.failure(CheckName::Panic, step, op, what).into())
            }
        }
    }

    /// Power loss, reboot, reopen; the recovered state must be one of `candidates` (or, under
    /// a dishonest disk, any state the history produced).
    fn crash_and_check(
        &mut self,
        step: usize,
        op: &Op,
        candidates: Vec<RaftState>,
    ) -> Result<(), Stop> {
        let Some(disk) = self.disk.clone() else {
            // No simulated disk: a crash is a clean restart.
            return self.restart(step, op, "restart (no simulated disk)");
        };
        self.export = None;
        drop(self.instance.take());
        let summary = disk.crash();
        self.stats.crashes += 1;
        self.trace.push(format!(
            "#{step} power loss: {} pending, {} kept, {} torn",
            summary.pending, summary.kept, summary.torn_writes
        ));
        let mirror_candidates = match self.pair_joined() {
            true => candidates.iter().map(|c| self.mirror_candidate(c.clone())).collect(),
            false => Vec::new(),
        };
        let reopened = self.open_again(step, op)?;
        let candidates = if self.subject.durable() { candidates } else { vec![RaftState::new()] };
        let instance = self.instance.as_ref().expect("instance reopened");
        let captured = catch_unwind(AssertUnwindSafe(|| RaftState::capture(instance.storage())));
        let recovered = match captured {
            Ok(Ok(state)) => state,
            Ok(Err(e)) if self.dishonest && refusal(&e) => {
                self.trace.push(format!("#{step} read after crash -> refused: {e}"));
                self.stats.refusals += 1;
                return Err(Stop::Refused);
            }
            Ok(Err(e)) => {
                let what = format!("reading the recovered instance failed: {e}");
                return Err(self.failure(CheckName::CrashAtomicity, step, op, what).into());
            }
            Err(panic) => {
                let what = format!("panic while reading after a crash: {}", panic_text(&panic));
                return Err(self.failure(CheckName::Panic, step, op, what).into());
            }
        };
        let allowed =
            candidates.contains(&recovered) || (self.dishonest && self.seen_in_history(&recovered));
        if !allowed {
            let mut what = String::from("the recovered state is not one the contract allows");
            for (i, c) in candidates.iter().enumerate() {
                let d = first_difference(&recovered, c).unwrap_or_default();
                what.push_str(&format!("; vs allowed state {}: {d}", i + 1));
            }
            if self.dishonest {
                let stale: Vec<&str> = Store::ALL
                    .iter()
                    .filter(|s| !self.history.contains(&(**s, s.digest(&recovered))))
                    .map(|s| s.name())
                    .collect();
                what.push_str(&format!(
                    "; under this dishonest disk each store may roll back to any state it held, \
                     but the {} never held this state",
                    stale.join(" and ")
                ));
            }
            return Err(self.failure(CheckName::CrashAtomicity, step, op, what).into());
        }
        self.trace.push(format!("#{step} recovered {}", &recovered.digest()[..16]));
        self.model.state = recovered;
        self.remember_state();
        self.check_reopened(step, op)?;
        if let Some(reopened) = reopened {
            self.check_pair_reopen(step, op, &reopened, true, &mirror_candidates)?;
            self.full_check_mirror(step, "pair recovery after a power loss")?;
        }
        Ok(())
    }

    /// Compares what `action` can have changed.
    fn quick_check(&mut self, step: usize, op: &Op, action: &Action) -> Result<(), Stop> {
        let instance = self.instance.as_ref().expect("instance is open");
        let difference = catch_unwind(AssertUnwindSafe(|| {
            quick_difference(instance.storage(), &self.model, action, "instance")
        }));
        match difference {
            Ok(Ok(None)) => self.quick_check_mirror(step, op, action),
            Ok(Ok(Some(what))) => {
                Err(self.failure(CheckName::ModelEquality, step, op, what).into())
            }
            Ok(Err(e)) => self.read_failed(step, op, e),
            Err(panic) => {
                let what = format!("panic while reading: {}", panic_text(&panic));
                Err(self.failure(CheckName::Panic, step, op, what).into())
            }
        }
    }

    /// The dual-write check after a step: the mirror equals the model in what the step can
    /// have changed.
    fn quick_check_mirror(&mut self, step: usize, op: &Op, action: &Action) -> Result<(), Stop> {
        let Some(mirror) = self.instance.as_ref().and_then(|i| i.mirror()) else { return Ok(()) };
        let difference = catch_unwind(AssertUnwindSafe(|| {
            quick_difference(mirror, &self.model, action, "mirror")
        }));
        let what = match difference {
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(what))) => what,
            Ok(Err(e)) if self.dishonest && refusal(&e) => {
                self.trace.push(format!("#{step} mirror read -> refused: {e}"));
                self.stats.refusals += 1;
                return Err(Stop::Refused);
            }
            Ok(Err(e)) => format!("reading the mirror failed: {e}"),
            Err(panic) => {
                let what = format!("panic while reading the mirror: {}", panic_text(&panic));
                return Err(self.failure(CheckName::Panic, step, op, what).into());
            }
        };
        Err(self.failure(CheckName::DualWrite, step, op, what).into())
    }

    /// The dual-write check in full: the mirror's whole state equals the model.
    fn full_check_mirror(&mut self, step: usize, context: &str) -> Result<(), Stop> {
        let Some(mirror) = self.instance.as_ref().and_then(|i| i.mirror()) else { return Ok(()) };
        let captured = catch_unwind(AssertUnwindSafe(|| RaftState::capture(mirror)));
        let (check, what) = match captured {
            Ok(Ok(state)) => match first_difference(&state, &self.model.state) {
                None => return Ok(()),
                Some(d) => (CheckName::DualWrite, format!("mirror vs model: {d}")),
            },
            Ok(Err(e)) if self.dishonest && refusal(&e) => {
                self.trace.push(format!("#{step} mirror read -> refused: {e}"));
                self.stats.refusals += 1;
                return Err(Stop::Refused);
            }
            Ok(Err(e)) => (CheckName::DualWrite, format!("reading the mirror failed: {e}")),
            Err(panic) => (
                CheckName::Panic,
                format!("panic while reading the mirror: {}", panic_text(&panic)),
            ),
        };
        Err(self.failure_at(check, step, context.to_string(), what).into())
    }

    fn read_failed(&mut self, step: usize, op: &Op, e: StorageError) -> Result<(), Stop> {
        if self.dishonest && refusal(&e) {
            self.trace.push(format!("#{step} read -> refused: {e}"));
            self.stats.refusals += 1;
            return Err(Stop::Refused);
        }
        let what = format!("reading the instance failed: {e}");
        Err(self.failure(CheckName::ModelEquality, step, op, what).into())
    }

    /// Compares the whole Raft-visible state.
    fn full_check(&mut self, step: usize, context: &str) -> Result<(), Stop> {
        self.stats.full_checks += 1;
        let instance = self.instance.as_ref().expect("instance is open");
        let captured = catch_unwind(AssertUnwindSafe(|| RaftState::capture(instance.storage())));
        let (check, what) = match captured {
            Ok(Ok(state)) => match first_difference(&state, &self.model.state) {
                None => return self.full_check_mirror(step, context),
                Some(d) => (CheckName::ModelEquality, format!("instance vs model: {d}")),
            },
            Ok(Err(e)) => {
                if self.dishonest && refusal(&e) {
                    self.trace.push(format!("#{step} read -> refused: {e}"));
                    self.stats.refusals += 1;
                    return Err(Stop::Refused);
                }
                (CheckName::ModelEquality, format!("reading the instance failed: {e}"))
            }
            Err(panic) => {
                (CheckName::Panic, format!("panic while reading: {}", panic_text(&panic)))
            }
        };
        Err(self.failure_at(check, step, context.to_string(), what).into())
    }

    fn failure(&self, check: CheckName, step: usize, op: &Op, difference: String) -> CheckFailure {
        self.failure_at(check, step, op.to_string(), difference)
    }

    fn failure_at(
        &self,
        check: CheckName,
        step: usize,
        op: String,
        difference: String,
    ) -> CheckFailure {
        CheckFailure {
            check,
            family: self.subject.name(),
            step,
            op,
            difference,
            trace_tail: self.trace.tail(),
            disk_trace_tail: self
                .disk
                .as_ref()
                .map(|d| d.trace_tail(DISK_TRACE_TAIL_LEN))
                .unwrap_or_default(),
        }
    }
}

/// The three stores of an instance, which a lying disk may roll back independently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Store {
    Log,
    Meta,
    Snapshot,
}

impl Store {
    const ALL: [Store; 3] = [Store::Log, Store::Meta, Store::Snapshot];

    fn name(self) -> &'static str {
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
            Store::Log => (part.first, part.entries) = (state.first, &state.entries),
            Store::Meta => part.meta = &state.meta,
            Store::Snapshot => part.snapshot = state.snapshot.as_ref(),
        }
        part.digest()
    }

    /// The stores `action` can change (see the model): only theirs need remembering anew.
    fn changed_by(action: &Action) -> &'static [Store] {
        match action {
            Action::Append(_)
            | Action::TruncatePrefix(_)
            | Action::TruncateSuffix(_)
            | Action::Reset(_) => &[Store::Log],
            Action::SaveMeta(_) => &[Store::Meta],
            Action::Snapshot { .. } => &[Store::Snapshot],
            Action::Reopen | Action::Crash | Action::ArmCrash(_) | Action::Export(_) => &[],
        }
    }
}

/// Whether an error is a family failing closed (corruption or an I/O error it passed on); a
/// dual-write pair's side failure is judged by the side's own error.
fn refusal(e: &StorageError) -> bool {
    matches!(
        side_cause(e),
        StorageError::Corruption(_) | StorageError::Vfs(_) | StorageError::Poisoned { .. }
    )
}

/// Whether `e` is an error the disk returned (EIO, ENOSPC) or the poisoning that follows
/// one: an open that writes (a database engine's crash repair, a new instance's creation)
/// may meet the faults of an honest but faulty plan and must report them, which is no bug.
fn injected(e: &StorageError) -> bool {
    use crate::vfs::VfsErrorKind;
    let e = side_cause(e);
    matches!(e, StorageError::Vfs(v) if matches!(v.kind, VfsErrorKind::Io | VfsErrorKind::NoSpace))
        || matches!(e, StorageError::Poisoned { .. })
}

/// The side's own error inside a dual-write side failure; `e` itself otherwise.
fn side_cause(e: &StorageError) -> &StorageError {
    match e {
        StorageError::DualWrite(DualWriteError::SideFailed { cause, .. }) => side_cause(cause),
        other => other,
    }
}

/// The states the atomicity table allows after a crash during an unacknowledged `action`
/// that took the model from `before` to `after`: before or after; for an append, any prefix
/// of the batch.
fn allowed_after_unacknowledged(
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

/// The first difference between `instance` and `model` in what `action` can have changed.
fn quick_difference(
    instance: &dyn StateView,
    model: &Model,
    action: &Action,
    who: &str,
) -> StorageResult<Option<String>> {
    let (first, last) = (instance.first_index(), instance.last_index());
    let (model_first, model_last) = (model.first_index(), model.last_index());
    if (first, last) != (model_first, model_last) {
        return Ok(Some(format!(
            "retained range differs: {who} [{first}, {last}] vs model \
             [{model_first}, {model_last}]"
        )));
    }
    let mut indexes: Vec<u64> = Vec::new();
    match action {
        Action::Append(entries) => indexes.extend(entries.iter().map(|e| e.index)),
        _ => indexes.extend([first, last]),
    }
    for index in indexes {
        let got = instance.entry(index)?;
        let want = model.state.get(index);
        if got.as_ref() != want {
            return Ok(Some(format!(
                "entry {index}: {who} has {} vs model {}",
                describe_entry(&got),
                describe_entry(&want.cloned())
            )));
        }
    }
    let (meta, model_meta) = (instance.meta()?, model.meta()?);
    if meta != model_meta {
        return Ok(Some(format!("meta differs: {who} {meta:?} vs model {model_meta:?}")));
    }
    let (snapshot, model_snapshot) = (instance.snapshot_meta()?, model.snapshot_meta()?);
    if snapshot != model_snapshot {
        return Ok(Some(format!(
            "snapshot meta differs: {who} {snapshot:?} vs model {model_snapshot:?}"
        )));
    }
    Ok(None)
}

fn describe_entry(entry: &Option<crate::contract::Entry>) -> String {
    match entry {
        None => "nothing".to_string(),
        Some(e) => {
            let digest =
                RaftState { first: e.index, entries: vec![e.clone()], ..RaftState::new() }.digest();
            format!("term {} kind {} (digest {})", e.term, e.kind().name(), &digest[..12])
        }
    }
}

/// The text of a caught panic.
pub fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_string()
    }
}

fn open_failure(family: &str, e: StorageError) -> RunOutcome {
    RunOutcome {
        stats: RunStats::default(),
        trace_hash: String::new(),
        final_digest: String::new(),
        failure: Some(CheckFailure {
            check: CheckName::ModelEquality,
            family: family.to_string(),
            step: 0,
            op: "open".to_string(),
            difference: format!("a fresh instance failed to open: {e}"),
            trace_tail: Vec::new(),
            disk_trace_tail: String::new(),
        }),
        trace_tail: Vec::new(),
    }
}

/// Runs `ops` on a fresh instance of `family` at `location` on `vfs` (no crashes: crash ops
/// are clean restarts); an instance that fails to open is a failure at step 0.
pub fn run_history(
    family: Arc<dyn Family>,
    location: &str,
    vfs: VfsHandle,
    ops: &[Op],
    options: RunOptions,
) -> RunOutcome {
    let scheme = family.scheme().to_string();
    match Runner::new(family, location, vfs, options) {
        Ok(runner) => runner.run(ops),
        Err(e) => open_failure(&scheme, e),
    }
}

/// Runs `ops` on a fresh instance of `family` at `location` on a simulated disk, with power
/// losses and the disk's fault plan.
pub fn run_history_on_disk(
    family: Arc<dyn Family>,
    location: &str,
    disk: Arc<SimDisk>,
    ops: &[Op],
    options: RunOptions,
) -> RunOutcome {
    run_subject_on_disk(Subject::Family(family), location, disk, ops, options)
}

/// Runs `ops` on a fresh `subject` (a family, or a dual-write pair whose mirror joins a
/// quarter of the way in) at `location` on a simulated disk, with power losses and the disk's
/// fault plan.
pub fn run_subject_on_disk(
    subject: Subject,
    location: &str,
    disk: Arc<SimDisk>,
    ops: &[Op],
    options: RunOptions,
) -> RunOutcome {
    let name = subject.name();
    let plan = disk.options().faults;
    match Runner::for_subject_on_sim_disk(subject, location, disk, options) {
        Ok(runner) => runner.run(ops),
        // A fresh instance refused by the faults of the plan (an EIO or ENOSPC while it is
        // created, a sector that rotted before it was read back) is the family failing
        // closed, as after a crash.
        Err(e) if (!plan.is_honest() && refusal(&e)) || (!plan.is_none() && injected(&e)) => {
            RunOutcome {
                stats: RunStats { refusals: 1, ..RunStats::default() },
                trace_hash: String::new(),
                final_digest: String::new(),
                failure: None,
                trace_tail: Vec::new(),
            }
        }
        Err(e) => open_failure(&name, e),
    }
}
