//! The runner: applies a history to a subject (a family's instance, or a dual-write pair)
//! and to the model, and asks the checks ([`crate::sim::checks`]) after every step.
//!
//! A step is a short list of phases ([`Runner::step`]), in the order of DESIGN §7's checks,
//! each phase in its own module:
//!
//! | phase | module | checks asked |
//! |---|---|---|
//! | a pair's mirror joins, when due (a quarter of the way in) | `join` | `dual_write` |
//! | the op: a contract call, applied to the instance and the model | `call` | `model_equality`, `panic` |
//! | … or a clean reopen | `reopen`, `read_only`, `inspect` | `model_equality`, `dual_write`, `braft_view`, `read_only`, `single_writer`, `inspect_agreement` |
//! | … or a power loss, or a crash point armed for the next call | `power_loss`, `inspect` | `crash_atomicity`, `dual_write`, `braft_view`, `inspect_agreement` (a `crash` op) |
//! | … or an export pinned at a cut | `export` | `export_cut` |
//! | after a call a fault failed: a power loss | `power_loss` | `crash_atomicity`, `braft_view` |
//! | exhaustive mode: every crash state around the call | `exhaustive` | `crash_atomicity`, `dual_write`, `braft_view` |
//! | the comparisons: quick, in full every `full_check_every` steps | `compare` | `model_equality`, `dual_write` |
//! | the pinned export streams on; when due, the image checks | `export` | `export_cut`, `canonicality`, `image_views`, `import_determinism`, `import_atomicity`, `bad_images`, `braft_view` |
//! | on a sample of steps, a pair of states in real instances | `agreement` | `validator_agreement` |
//! | at the end of the history, the instance closed | `inspect` | `inspect_agreement` |
//!
//! Every step adds lines to a hashed trace ([`Trace`]), so two runs of a seed can be compared
//! (`determinism`). On a [`SimDisk`] the runner plays power losses and reacts to injected
//! faults: a mutation that fails because of a fault (or a crash point) is followed by a power
//! loss, and what recovers is judged by `crash_atomicity` (under a dishonest plan against
//! the states each store held and when, which the runner remembers as the history goes:
//! [`StoreHistory`]). An error is only excused by a fault the disk injected ([`refusal`],
//! [`injected`]); an instance that fails closed under a dishonest disk ends the run as a
//! *refusal*. `braft_view` judges every `local://` directory braft could read
//! (`Runner::braft_roots`), on honest, checked runs only.

mod agreement;
mod call;
mod compare;
mod exhaustive;
mod export;
mod hostile_dirs;
mod inspect;
mod join;
mod outcome;
mod power_loss;
mod read_only;
mod reopen;

use std::path::PathBuf;
use std::sync::Arc;

use crate::contract::{Family, RaftStorage, StateView, StorageError, StorageResult};
use crate::families::Registry;
use crate::sim::checks::crash_atomicity::StoreHistory;
use crate::sim::checks::export_cut::PinnedExport;
use crate::sim::checks::{braft_view, determinism};
use crate::sim::checks::{injected, refusal, CheckFailure, CheckName};
use crate::sim::engine::migration::run_migration;
use crate::sim::engine::model::Model;
use crate::sim::engine::ops::{Action, Op};
use crate::sim::engine::subject::{PairInstance, Subject};
use crate::sim::engine::trace::Trace;
use crate::vfs::{SimDisk, VfsHandle};

pub use export::CROSS_FAMILY_EVERY;
pub use outcome::{RunOptions, RunOutcome, RunStats};
pub(crate) use reopen::arm_recovery_crash_on;

/// Lines of the disk's own trace a failure report keeps.
pub const DISK_TRACE_TAIL_LEN: usize = 24;

/// Attempts an open gets when injected faults fail it, each retry after a power loss (see
/// `Runner::open_again`; the migration driver's restarts do the same).
pub const OPEN_ATTEMPTS: u32 = 4;

/// One open in this many has a crash point armed inside it: a power loss during recovery
/// (see `Runner::open_again`).
pub const RECOVERY_CRASH_EVERY: u32 = 8;

/// Power losses during the recovery from one power loss, at most (nested crashes).
pub const RECOVERY_CRASH_DEPTH: u32 = 3;

/// The default of [`RunOptions::exhaustive_recovery_depth`]: every crash point of each crash
/// state's reopen, one level deep (a second power loss during recovery).
pub const EXHAUSTIVE_RECOVERY_DEPTH: u32 = 1;

/// [`EXHAUSTIVE_RECOVERY_DEPTH`], for serde.
pub fn exhaustive_recovery_depth_default() -> u32 {
    EXHAUSTIVE_RECOVERY_DEPTH
}

/// The default of [`RunOptions::recovery_crashes`] (for serde): on.
pub fn recovery_crashes_on() -> bool {
    true
}

/// Why a run stopped early.
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
    /// Every state each store held during the history (kept only under a dishonest disk).
    history: StoreHistory,
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
    /// The agreement phase's draws and earlier state.
    agreement: agreement::Sampler,
    /// What a read-only open showed just before the reopen in progress (check `read_only`).
    read_only_probe: Option<crate::sim::checks::read_only::Probe>,
    /// Faults the disk had injected when the instance was last opened (`inspect_agreement`
    /// looks at a clean close only if none has been injected since).
    faults_at_open: u64,
    /// Hostile directories planted so far (`hostile_dirs`: the rotation's position).
    hostile_dirs_planted: u64,
    /// Why the run ended as a refusal, once it has.
    refusal: Option<String>,
    /// Whether that refusal was an open failed by an injected honest fault (retried).
    refusal_injected: bool,
    /// Faults the disk had injected when the current step began.
    step_faults: u64,
    /// Set by an open a crash point armed inside it struck (see `reopen::recovery_crash`).
    recovery_crashed: bool,
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
            // A migration runs in its own driver (`run_subject_on_disk` hands it there); asked
            // directly, the runner runs its source alone.
            Subject::Migration(m) => (m.source_family().open(location, vfs.clone())?, None),
            Subject::Pair(pair) => {
                (pair.open_primary(location, vfs.clone())?, Some(Join { at: 0, joined: false }))
            }
        };
        let plan = disk.as_ref().map(|d| d.options().faults);
        let dishonest = plan.as_ref().is_some_and(|p| !p.is_honest());
        let faulty = plan.as_ref().is_some_and(|p| !p.is_none());
        let disk_seed = disk.as_ref().map_or(0, |d| d.options().seed);
        let lying_sync = plan.as_ref().is_some_and(|p| p.fsync_loss.is_enabled());
        // Images are imported into every registered family, with the family under test (which
        // may carry a planted bug; for a pair, its primary's) standing in for its own scheme.
        let tested = match &subject {
            Subject::Family(family) => family.clone(),
            Subject::Pair(pair) => pair.primary_family(),
            Subject::Migration(m) => m.source_family().clone(),
        };
        let image_families = Registry::builtin()
            .families()
            .iter()
            .map(|f| if f.scheme() == tested.scheme() { tested.clone() } else { f.clone() })
            .collect();
        let trace =
            Trace::for_run(options.trace_tail_len, disk.clone().filter(|_| options.timeline));
        let mut runner = Runner {
            subject,
            location: location.to_string(),
            vfs,
            disk,
            dishonest,
            faulty,
            history: StoreHistory::new(dishonest, lying_sync),
            armed: None,
            export: None,
            image_families,
            instance: Some(Instance::Single(instance)),
            join,
            model: Model::new(),
            trace,
            options,
            stats: RunStats::default(),
            agreement: agreement::Sampler::new(disk_seed),
            read_only_probe: None,
            faults_at_open: 0,
            hostile_dirs_planted: 0,
            refusal_injected: false,
            step_faults: 0,
            recovery_crashed: false,
            refusal: None,
        };
        runner.history.remember_all(&runner.model.state);
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
            match self.take_step(step, op) {
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
            let stats = disk.fault_stats();
            self.stats.faults = stats.faults_total();
            self.stats.sub_sector_tears = stats.torn_writes_sub_sector;
        }
        // The instance is closed here rather than with the runner, so that what it leaves is
        // inspected (after the fault count: a fault in the close is no fault of the run).
        if failure.is_none() && !refused {
            failure = self.inspect_at_end(ops.len());
        }
        if refused && self.stats.steps == 0 {
            self.stats.idle = 1;
        }
        RunOutcome {
            stats: self.stats.clone(),
            trace_hash: self.trace.hash(),
            final_digest: self.model.state.digest(),
            failure,
            refusal: self.refusal.take(),
            trace_tail: self.trace.tail(),
            timeline: self.trace.timeline(),
        }
    }

    /// Applies op number `step` to the instance and the model and checks them. A refusal
    /// under a dishonest disk is reported as `Ok` (the caller may stop).
    pub fn step(&mut self, step: usize, op: &Op) -> Result<(), Box<CheckFailure>> {
        match self.take_step(step, op) {
            Ok(()) | Err(Stop::Refused) => Ok(()),
            Err(Stop::Failed(f)) => Err(f),
        }
    }

    /// One step, phase by phase (see the module doc; each phase's work is in its module).
    fn take_step(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        self.step_faults = self.faults_so_far();
        if let Some(disk) = &self.disk {
            // Under per-step fault streams the step's faults and crash choices are its own,
            // drawn under its key (its op's position in the history it was generated as).
            disk.begin_step(self.step_key(step));
        }
        if self.join_due(step) {
            self.join_mirror(step, op)?;
        }
        match self.resolve(op) {
            Action::Reopen => self.reopen(step, op)?,
            Action::Crash => self.crash(step, op)?,
            Action::ArmCrash(disk_ops) => self.arm_crash(step, disk_ops),
            Action::Export(spread) => self.begin_export(step, op, spread)?,
            // Only a migration subject has migration steps (`engine::migration`).
            Action::Migrate(s) => {
                self.trace.push(format!("#{step} {}() -> no migration", s.op_name()))
            }
            call => match self.call(step, op, &call)? {
                call::Called::Failed { allowed } => self.power_loss(step, op, allowed)?,
                call::Called::Returned { enumerate, armed } => {
                    if let Some(enumeration) = enumerate {
                        self.check_crash_states(step, op, &call, enumeration)?;
                    }
                    if armed {
                        self.crash_after_return(step, op)?;
                    } else if !self.options.unchecked {
                        self.compare(step, op, &call)?;
                    }
                }
            },
        }
        self.advance_export(step, op)?;
        self.sample_agreement(step, op)
    }

    /// The key of step `step`'s fault streams ([`RunOptions::step_keys`]).
    fn step_key(&self, step: usize) -> u64 {
        let keys = self.options.step_keys.as_deref().unwrap_or_default();
        keys.get(step).copied().unwrap_or(step as u64)
    }

    /// The action `op` stands for in the model's current state, counted.
    fn resolve(&mut self, op: &Op) -> Action {
        let action = op.resolve(&self.model);
        self.stats.steps += 1;
        if op.is_mutation() {
            self.stats.mutations += 1;
        }
        action
    }

    /// Faults the disk has injected so far.
    fn faults_so_far(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.fault_stats().faults_total())
    }

    /// The `local://` directories whose braft view the `braft_view` check compares (none
    /// under a dishonest disk, whose damage braft's view need not match, or unchecked).
    fn braft_roots(&self) -> Vec<PathBuf> {
        if self.dishonest || self.options.unchecked {
            return Vec::new();
        }
        braft_view::local_roots(&self.subject, &self.location)
    }

    /// Whether the disk stopped at an armed crash point.
    fn halted(&self) -> bool {
        self.disk.as_ref().is_some_and(|d| d.is_halted())
    }

    /// The run ends as a refusal: `what` (a read, an open, ...) failed closed with `e`.
    fn refused(&mut self, step: usize, what: &str, e: &dyn std::fmt::Display) -> Stop {
        let line = format!("#{step} {what} -> refused: {e}");
        self.refusal = Some(line.clone());
        self.trace.push(line);
        self.stats.refusals += 1;
        Stop::Refused
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
        refusal: None,
        trace_tail: Vec::new(),
        timeline: None,
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
    if let Some(failure) = determinism::check_replayable(&subject) {
        return RunOutcome {
            stats: RunStats::default(),
            trace_hash: String::new(),
            final_digest: String::new(),
            failure: Some(failure),
            refusal: None,
            trace_tail: Vec::new(),
            timeline: None,
        };
    }
    if options.timeline {
        // From the fresh instance's creation on.
        disk.record_timeline();
    }
    if let Subject::Migration(migration) = &subject {
        return run_migration(migration, location, disk, ops, options);
    }
    let name = subject.name();
    let plan = disk.options().faults;
    match Runner::for_subject_on_sim_disk(subject, location, disk, options) {
        Ok(runner) => runner.run(ops),
        // A fresh instance refused by the faults of the plan (an EIO or ENOSPC while it is
        // created, a sector that rotted before it was read back) is the family failing
        // closed, as after a crash; the run did no work. (Only under whole-run fault
        // streams: under per-step streams no fault fires before the first step.)
        Err(e) if (!plan.is_honest() && refusal(&e)) || (!plan.is_none() && injected(&e)) => {
            RunOutcome {
                stats: RunStats { refusals: 1, idle: 1, ..RunStats::default() },
                trace_hash: String::new(),
                final_digest: String::new(),
                failure: None,
                refusal: Some(format!("the fresh instance was refused at its creation: {e}")),
                trace_tail: Vec::new(),
                timeline: None,
            }
        }
        Err(e) => open_failure(&name, e),
    }
}
