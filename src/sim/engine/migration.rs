//! A migration as a soak subject (DESIGN §7 check 12, `migration`): a node runs on a source
//! instance and drives [`Migration`] to a destination of another (or the same) family while
//! the history's mutations go on, with the migration's steps as ops of the history
//! ([`MigrateStep`]: `migrate_begin()` plans and bootstraps, `migrate_dual_write()`,
//! `migrate_validate()`, `migrate_cut_over()`, `migrate_roll_back()`), so a failure shrinks
//! and replays like any other. [`with_steps`] weaves the steps into a generated history,
//! drawn from the seed: the regular order, cut-overs asked too early, a restart between
//! validation and cut-over, steps asked after the end, crash points armed inside a step.
//!
//! The node persists the phase each step reached (as a node writes it to its own
//! configuration) and after every reopen and power loss resumes there with
//! [`Migration::resume`]; a destination that cannot be resumed (not empty where the plan
//! needs it empty, or a mirror beyond repair) is discarded and the migration planned again
//! with a fresh one, as a node would. A mutation a fault failed while the pair dual-writes
//! is followed by a power loss, or (drawn) the node carries on with the diverged pair until
//! the next restart (it refuses every mutation), so validation and cut-over meet diverged pairs.
//!
//! What is judged (`checks::migration`): until cut-over the source — the rollback target —
//! equals the model after every step; each step is accepted exactly in the phases it exists
//! in, and refused otherwise with the typed error; cut-over is accepted only on a pair
//! validated since it last formed and not diverged since; validation's verdict agrees with
//! the model; after cut-over the destination alone is the node's storage and equals the
//! model, across reopens; after a rollback the source is and does. Power losses are judged
//! as everywhere (`crash_atomicity`), the calls' results too (`model_equality`, `panic`).
//!
//! A migration runs on the honest part of the seed's fault plan (errors the disk returns,
//! crashes), not under media faults: its checks demand the source complete, which a disk
//! that loses acknowledged data cannot give.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::contract::{Family, RaftStorage, StateView, StorageError};
use crate::dual_write::DualWriteError;
use crate::migrate::{Migration, MigrationError, Phase};
use crate::sim::checks::crash_atomicity::{
    allowed_after_unacknowledged, recovered_difference, StoreHistory,
};
use crate::sim::checks::migration::{
    cut_over_problem, expected_refusal, refusal_problem, step_exists, view_problem,
};
use crate::sim::checks::model_equality::{call_difference, full_difference, quick_difference};
use crate::sim::checks::{injected, panic, CheckFailure, CheckName};
use crate::sim::engine::apply::apply_action;
use crate::sim::engine::model::Model;
use crate::sim::engine::ops::{Action, MigrateStep, Op};
use crate::sim::engine::runner::{
    arm_recovery_crash_on, RunOptions, RunOutcome, RunStats, DISK_TRACE_TAIL_LEN, OPEN_ATTEMPTS,
};
use crate::sim::engine::trace::Trace;
use crate::sim::planted::{MutedSource, PlantedMigrationBug};
use crate::state::RaftState;
use crate::vfs::SimDisk;

/// A migration from one family to another, as a subject.
pub struct MigrationSubject {
    source: Arc<dyn Family>,
    destination: Arc<dyn Family>,
    planted: Option<PlantedMigrationBug>,
}

impl MigrationSubject {
    /// A migration from `source` to `destination`.
    pub fn new(source: Arc<dyn Family>, destination: Arc<dyn Family>) -> Self {
        MigrationSubject { source, destination, planted: None }
    }

    /// As [`MigrationSubject::new`], with a planted migration bug (self-tests only).
    pub fn planted(
        source: Arc<dyn Family>,
        destination: Arc<dyn Family>,
        bug: PlantedMigrationBug,
    ) -> Self {
        MigrationSubject { source, destination, planted: Some(bug) }
    }

    /// `source>destination`.
    pub fn name(&self) -> String {
        format!("{}>{}", self.source.scheme(), self.destination.scheme())
    }

    /// The source's family.
    pub fn source_family(&self) -> &Arc<dyn Family> {
        &self.source
    }

    /// The destination's family.
    pub fn destination_family(&self) -> &Arc<dyn Family> {
        &self.destination
    }

    /// The planted bug, if any.
    pub fn planted_bug(&self) -> Option<PlantedMigrationBug> {
        self.planted
    }
}

/// `ops` with a migration's steps woven in, drawn from `seed` (see the module doc).
pub fn with_steps(seed: u64, ops: &[Op]) -> Vec<Op> {
    use MigrateStep::*;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4D16_4A7E_0000_0012);
    let n = ops.len();
    let at = |rng: &mut ChaCha8Rng, from: usize, span: usize| from + rng.random_range(0..=span);
    let begin = at(&mut rng, 0, n / 4);
    let dual = at(&mut rng, begin, n / 8);
    let validate = at(&mut rng, dual, n / 8);
    let end = at(&mut rng, validate, n / 4);
    let mut steps: Vec<(usize, Vec<Op>)> = Vec::new();
    let step = |s: MigrateStep| Op::Migrate { step: s };
    steps.push((begin, vec![step(Begin)]));
    // Too early: refused on a pair not yet validated (right after it formed, or later).
    match rng.random_range(0..3u32) {
        0 => steps.push((dual, vec![step(DualWrite), step(CutOver)])),
        1 => {
            steps.push((dual, vec![step(DualWrite)]));
            steps.push((at(&mut rng, dual, validate - dual), vec![step(CutOver)]));
        }
        _ => steps.push((dual, vec![step(DualWrite)])),
    }
    let mut validated = vec![step(Validate)];
    if rng.random_bool(0.25) {
        // A restart between validation and cut-over: the recovered pair must be validated
        // again, so this cut-over is refused.
        let restart = if rng.random_bool(0.5) { Op::Crash } else { Op::Reopen };
        validated.extend([restart, step(CutOver), step(Validate)]);
    }
    steps.push((validate, validated));
    let last = match rng.random_range(0..6u32) {
        0 => vec![step(RollBack)],
        1 => vec![step(Validate), step(RollBack)],
        _ => vec![step(Validate), step(CutOver)],
    };
    let end_at = if rng.random_bool(0.15) { at(&mut rng, begin, end - begin) } else { end };
    steps.push((end_at, last));
    if rng.random_bool(0.3) {
        // After the end: a step that no longer exists.
        let late = MigrateStep::ALL[rng.random_range(0..MigrateStep::ALL.len())];
        steps.push((at(&mut rng, end_at, n / 8), vec![step(late)]));
    }
    steps.sort_by_key(|(position, _)| *position);
    let mut out = Vec::with_capacity(n + 16);
    let mut pending = steps.into_iter().peekable();
    for (i, op) in ops.iter().enumerate() {
        while let Some((_, group)) = pending.next_if(|(position, _)| *position <= i) {
            for s in group {
                if matches!(s, Op::Migrate { .. }) && rng.random_ratio(1, 4) {
                    out.push(Op::CrashDuring { disk_ops: rng.random_range(0..48) });
                }
                out.push(s);
            }
        }
        out.push(op.clone());
    }
    out.extend(pending.flat_map(|(_, group)| group));
    out
}

/// Runs `ops` as a migration `subject` at `location` on `disk` (see the module doc).
pub fn run_migration(
    subject: &MigrationSubject,
    location: &str,
    disk: Arc<SimDisk>,
    ops: &[Op],
    options: RunOptions,
) -> RunOutcome {
    disk.set_fault_plan(disk.options().faults.honest_part());
    let trace = Trace::for_run(options.trace_tail_len, options.timeline.then(|| disk.clone()));
    let mut driver = Driver {
        subject,
        location: location.to_string(),
        disk,
        node: None,
        persisted: Phase::Planned,
        generation: 0,
        validated: false,
        diverged: false,
        armed: None,
        model: Model::new(),
        trace,
        stats: RunStats::default(),
        options,
        mute: Arc::new(AtomicBool::new(false)),
        power_lost_in_reopen: false,
    };
    let (failure, refusal) = match driver.run(ops) {
        Ok(()) => (None, None),
        Err(Stop::Refused) => (None, Some("the migration's instance failed closed".to_string())),
        Err(Stop::Failed(f)) => (Some(*f), None),
    };
    let fault_stats = driver.disk.fault_stats();
    driver.stats.faults = fault_stats.faults_total();
    driver.stats.sub_sector_tears = fault_stats.torn_writes_sub_sector;
    RunOutcome {
        stats: driver.stats.clone(),
        trace_hash: driver.trace.hash(),
        final_digest: driver.model.state.digest(),
        failure,
        refusal,
        trace_tail: driver.trace.tail(),
        timeline: driver.trace.timeline(),
    }
}

enum Stop {
    Failed(Box<CheckFailure>),
    Refused,
}

/// What a paired phase (dual writing, validated) without a dual-write pair is reported as:
/// `Migration::pair_mut` must hold one there, or nothing can be compared.
const NO_PAIR: &str = "the migration holds no dual-write pair";

/// Whether `phase` is one where the node dual-writes through a pair.
fn paired_phase(phase: Phase) -> bool {
    matches!(phase, Phase::DualWriting | Phase::Validated)
}

/// The node: its migration, and (under a planted bug) a destination it took for its own.
struct Node {
    migration: Migration,
    planted_cut: Option<Box<dyn RaftStorage>>,
}

impl Node {
    fn phase(&self) -> Phase {
        match self.planted_cut {
            Some(_) => Phase::CutOver,
            None => self.migration.phase(),
        }
    }

    fn storage(&self) -> &dyn RaftStorage {
        match &self.planted_cut {
            Some(storage) => storage.as_ref(),
            None => self.migration.storage(),
        }
    }

    fn storage_mut(&mut self) -> &mut dyn RaftStorage {
        match &mut self.planted_cut {
            Some(storage) => storage.as_mut(),
            None => self.migration.storage_mut(),
        }
    }

    /// The rollback target while there is one (every phase before cut-over); `None` in a
    /// paired phase means the migration lost its pair ([`NO_PAIR`]).
    fn source(&mut self) -> Option<&dyn StateView> {
        match self.phase() {
            Phase::CutOver => None,
            Phase::DualWriting | Phase::Validated => {
                self.migration.pair_mut().map(|p| p.primary() as &dyn StateView)
            }
            _ => Some(self.migration.storage()),
        }
    }

    /// The destination while the pair dual-writes.
    fn destination(&mut self) -> Option<&dyn StateView> {
        self.migration.pair_mut().map(|p| p.mirror() as &dyn StateView)
    }

    /// Takes one step, as the node (with its planted bug) does.
    fn take(
        &mut self,
        step: MigrateStep,
        planted: Option<PlantedMigrationBug>,
    ) -> Result<String, MigrationError> {
        let m = &mut self.migration;
        match step {
            MigrateStep::Begin => m.bootstrap(&mut |_| {}).map(|s| format!("{s:?}")),
            MigrateStep::DualWrite => m.start_dual_write().map(|r| r.to_string()),
            MigrateStep::Validate => {
                m.validate(&mut |_| {}).map(|c| format!("{} entries", c.entries))
            }
            MigrateStep::CutOver => {
                let unvalidated = m.phase() == Phase::DualWriting;
                if planted == Some(PlantedMigrationBug::CutOverUnvalidated) && unvalidated {
                    self.planted_cut = Some(m.roll_back()?);
                    return Ok("cut over without validating (planted)".to_string());
                }
                m.cut_over().map(|_| "the source retired".to_string())
            }
            MigrateStep::RollBack => m.roll_back().map(|_| "the destination abandoned".to_string()),
        }
    }
}

struct Driver<'a> {
    subject: &'a MigrationSubject,
    location: String,
    disk: Arc<SimDisk>,
    node: Option<Node>,
    /// The phase the node persisted last.
    persisted: Phase,
    /// The destination's generation (a discarded destination is replaced by the next).
    generation: u32,
    /// Whether a validation succeeded since the pair last formed, with no divergence since:
    /// the harness's own record, against which cut-over is judged.
    validated: bool,
    /// Whether a mutation failed on the pair since it last formed.
    diverged: bool,
    armed: Option<u16>,
    model: Model,
    trace: Trace,
    stats: RunStats,
    options: RunOptions,
    /// Set while the planted `source-misses-mutations` mutes the source.
    mute: Arc<AtomicBool>,
    /// Whether a power loss struck during the last [`Driver::reopen_node`] (a crash point
    /// armed inside it): what it recovered is then judged as after a power loss.
    power_lost_in_reopen: bool,
}

impl Driver<'_> {
    /// The key step `step`'s faults and crash choices draw under: its position in the history
    /// it was generated as ([`RunOptions::step_keys`]), else its own position.
    fn step_key(&self, step: usize) -> u64 {
        let key = self.options.step_keys.as_deref().and_then(|k| k.get(step).copied());
        key.unwrap_or(step as u64)
    }

    fn run(&mut self, ops: &[Op]) -> Result<(), Stop> {
        self.open_node(0, "open")?;
        for (step, op) in ops.iter().enumerate() {
            // Each step's faults draw under its key (its position in the original history),
            // as in the runner, so a shrunk history keeps a fault with its op.
            self.disk.begin_step(self.step_key(step));
            self.step(step, op)?;
        }
        if !self.options.unchecked {
            self.full_check(ops.len(), "end of history")?;
        }
        Ok(())
    }

    fn step(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let action = op.resolve(&self.model);
        self.stats.steps += 1;
        if op.is_mutation() {
            self.stats.mutations += 1;
        }
        match action {
            Action::Reopen => {
                self.stats.reopens += 1;
                self.restart(step, op)?;
            }
            Action::Crash => {
                let after = vec![self.model.state.clone()];
                self.power_loss(step, op, after)?;
            }
            Action::ArmCrash(disk_ops) => {
                self.trace.push(format!("#{step} arm_crash(disk_ops={disk_ops})"));
                self.armed = Some(disk_ops);
            }
            Action::Export(_) => self.trace.push(format!("#{step} export -> not in a migration")),
            Action::Migrate(s) => self.migrate(step, op, s)?,
            call => self.call(step, op, &call)?,
        }
        self.update_mute();
        Ok(())
    }

    fn faults(&self) -> u64 {
        self.disk.fault_stats().faults_total()
    }

    fn arm(&mut self) -> bool {
        match self.armed.take() {
            Some(n) => {
                self.disk.crash_after_op(self.disk.op_count() + u64::from(n));
                true
            }
            None => false,
        }
    }

    fn node(&mut self) -> &mut Node {
        self.node.as_mut().expect("the node is open between steps")
    }

    fn paired(&self) -> bool {
        self.node.as_ref().is_some_and(|n| paired_phase(n.phase()))
    }

    fn update_mute(&self) {
        let planted = self.subject.planted == Some(PlantedMigrationBug::SourceMissesMutations);
        self.mute.store(planted && self.paired(), Ordering::SeqCst);
    }

    /// One contract call on the node's storage and on the model.
    fn call(&mut self, step: usize, op: &Op, action: &Action) -> Result<(), Stop> {
        let armed = self.arm();
        let before = self.model.state.clone();
        let faults_before = self.faults();
        let model_result = self.model.apply(action);
        let node = self.node.as_mut().expect("the node is open");
        let result = match panic::catch(|| apply_action(node.storage_mut(), action)) {
            Ok(r) => r,
            Err(text) => {
                return Err(self.fail(CheckName::Panic, step, op, format!("panic: {text}")))
            }
        };
        let verdict = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err: {e}"),
        };
        self.trace.push(format!("#{step} {action} -> {verdict}"));
        let struck = self.disk.is_halted() || self.faults() > faults_before;
        if struck && result.as_ref().is_err_and(|e| !matches!(e, StorageError::Contract(_))) {
            self.stats.failed_mutations += 1;
            let allowed = allowed_after_unacknowledged(&before, action, &self.model);
            // A family's state after a failed call is known only after a restart, so a
            // power loss follows, as in the runner.
            return self.power_loss(step, op, allowed);
        }
        let refused_diverged =
            matches!(&result, Err(StorageError::DualWrite(DualWriteError::Diverged { .. })));
        if self.diverged && refused_diverged {
            // A diverged pair refuses mutations until the next restart: nothing changed.
            self.model.state = before;
            return self.after_call(step, op, action, armed);
        }
        if let Some(what) = call_difference(&model_result, &result) {
            return Err(self.fail(CheckName::ModelEquality, step, op, what));
        }
        self.after_call(step, op, action, armed)
    }

    fn after_call(
        &mut self,
        step: usize,
        op: &Op,
        action: &Action,
        armed: bool,
    ) -> Result<(), Stop> {
        if armed {
            let after = vec![self.model.state.clone()];
            return self.power_loss(step, op, after);
        }
        if self.options.unchecked {
            return Ok(());
        }
        let every = self.options.full_check_every.max(1);
        if (step + 1).is_multiple_of(every) {
            return self.full_check(step, &op.to_string());
        }
        self.quick_check(step, op, action)
    }

    /// One migration step, judged.
    fn migrate(&mut self, step: usize, op: &Op, s: MigrateStep) -> Result<(), Stop> {
        let armed = self.arm();
        let faults_before = self.faults();
        let phase = self.node().phase();
        let planted = self.subject.planted;
        let node = self.node.as_mut().expect("the node is open");
        let outcome = match panic::catch(|| node.take(s, planted)) {
            Ok(outcome) => outcome,
            Err(text) => {
                return Err(self.fail(CheckName::Panic, step, op, format!("panic: {text}")));
            }
        };
        self.stats.migration_steps += 1;
        let now = self.node().phase();
        let verdict = match &outcome {
            Ok(what) => format!("ok: {what}"),
            Err(e) => format!("err: {e}"),
        };
        self.trace.push(format!("#{step} {}() in {phase} -> {verdict} (now {now})", s.op_name()));
        let struck = self.disk.is_halted() || self.faults() > faults_before;
        if armed {
            // The crash point belongs to the step: the harness's own reads below must not
            // reach it. The power loss it stands for comes after them.
            self.disk.disarm_crash();
        }
        match outcome {
            Ok(_) => self.accepted(step, op, s, phase)?,
            Err(MigrationError::Storage(e))
                if struck && !matches!(e, StorageError::Contract(_)) =>
            {
                // A fault or crash point broke the step: what it did is not acknowledged.
                let after = vec![self.model.state.clone()];
                return self.power_loss(step, op, after);
            }
            Err(e) => self.refused_step(step, op, s, phase, &e)?,
        }
        if armed {
            let after = vec![self.model.state.clone()];
            return self.power_loss(step, op, after);
        }
        if self.options.unchecked {
            return Ok(());
        }
        self.full_check(step, &op.to_string())
    }

    fn accepted(&mut self, step: usize, op: &Op, s: MigrateStep, phase: Phase) -> Result<(), Stop> {
        if !step_exists(s, phase) {
            let what =
                format!("{}() was accepted in phase {phase}, where it does not exist", s.op_name());
            return Err(self.fail(CheckName::Migration, step, op, what));
        }
        if s == MigrateStep::CutOver {
            if let Some(what) = cut_over_problem(self.validated, self.diverged) {
                return Err(self.fail(CheckName::Migration, step, op, what));
            }
            self.stats.cut_overs += 1;
        }
        if s == MigrateStep::Validate && !self.disk.is_halted() {
            // The validator said equivalent: both sides must equal the model. (A step that
            // ended exactly at its crash point is judged after the power loss instead.)
            let model = self.model.state.clone();
            let node = self.node.as_mut().expect("the node is open");
            let destination = match node.destination() {
                Some(d) => Some(full_difference(d, &model, "destination")),
                None => Some(Ok(Some(NO_PAIR.to_string()))),
            };
            if let Some(what) = self.view_verdict(step, op, destination)? {
                let what = format!("validate accepted the pair, yet {what}");
                return Err(self.fail(CheckName::Migration, step, op, what));
            }
            self.validated = !self.diverged;
        }
        if s == MigrateStep::RollBack {
            self.stats.roll_backs += 1;
        }
        self.persisted = self.node().phase();
        let scheme = match self.persisted {
            Phase::CutOver => Some(self.subject.destination.scheme()),
            Phase::RolledBack => Some(self.subject.source.scheme()),
            _ => None,
        };
        if let Some(scheme) = scheme {
            let family = self.node().storage().family();
            if family != scheme {
                let what = format!(
                    "after {}() the node's storage is a {family} instance, not the {scheme} one",
                    s.op_name()
                );
                return Err(self.fail(CheckName::Migration, step, op, what));
            }
        }
        if matches!(s, MigrateStep::DualWrite) {
            self.validated = false;
            self.diverged = false;
        }
        Ok(())
    }

    fn refused_step(
        &mut self,
        step: usize,
        op: &Op,
        s: MigrateStep,
        phase: Phase,
        e: &MigrationError,
    ) -> Result<(), Stop> {
        self.stats.migration_refusals += 1;
        let expected = expected_refusal(s, phase, self.diverged);
        let mut problem = refusal_problem(s, phase, e, expected);
        if problem.is_none() && matches!(e, MigrationError::NotEquivalent { .. }) {
            // Refused as not equivalent: the sides must really differ.
            let model = self.model.state.clone();
            let node = self.node.as_mut().expect("the node is open");
            let destination = node.destination().map(|d| full_difference(d, &model, "destination"));
            if self.view_verdict(step, op, destination)?.is_none() {
                problem = Some(format!("validate refused a pair equal to the model: {e}"));
            }
        }
        if let Some(what) = problem {
            return Err(self.fail(CheckName::Migration, step, op, what));
        }
        // A diverged pair stays diverged until the next restart: a side a fault failed may
        // refuse every later write (fsyncgate), which revalidating would not undo.
        self.persisted = self.node().phase();
        Ok(())
    }

    /// A difference of a side from the model, or `None`; a read error ends the run.
    fn view_verdict(
        &mut self,
        step: usize,
        op: &Op,
        compared: Option<Result<Option<String>, StorageError>>,
    ) -> Result<Option<String>, Stop> {
        match compared {
            None | Some(Ok(None)) => Ok(None),
            Some(Ok(Some(d))) => Ok(Some(d)),
            Some(Err(e)) if injected(&e) => Err(self.refused(step, "read", &e)),
            Some(Err(e)) => {
                Err(self.fail(CheckName::Migration, step, op, format!("a read failed: {e}")))
            }
        }
    }

    /// The comparisons of what a call can have changed: the rollback target until
    /// cut-over, the node's storage after it.
    fn quick_check(&mut self, step: usize, op: &Op, action: &Action) -> Result<(), Stop> {
        let model = &self.model;
        let node = self.node.as_mut().expect("the node is open");
        let phase = node.phase();
        let compared = match node.source() {
            Some(source) => quick_difference(source, model, action, "source"),
            None if paired_phase(phase) => Ok(Some(NO_PAIR.to_string())),
            None => quick_difference(node.storage(), model, action, "destination"),
        };
        self.judge_view(step, &op.to_string(), phase, compared)
    }

    /// The whole state: the rollback target until cut-over, then the node's storage.
    fn full_check(&mut self, step: usize, context: &str) -> Result<(), Stop> {
        self.stats.full_checks += 1;
        let model = &self.model.state;
        let node = self.node.as_mut().expect("the node is open");
        let phase = node.phase();
        let compared = match node.source() {
            Some(source) => full_difference(source, model, "source"),
            None if paired_phase(phase) => Ok(Some(NO_PAIR.to_string())),
            None => full_difference(node.storage(), model, "destination"),
        };
        self.judge_view(step, context, phase, compared)
    }

    fn judge_view(
        &mut self,
        step: usize,
        context: &str,
        phase: Phase,
        compared: Result<Option<String>, StorageError>,
    ) -> Result<(), Stop> {
        let compared = match compared {
            Ok(c) => c,
            Err(e) if injected(&e) => return Err(self.refused(step, "read", &e)),
            Err(e) => Some(format!("a read failed: {e}")),
        };
        match compared.and_then(|d| view_problem(phase, &d)) {
            None => Ok(()),
            Some(what) => Err(self.fail_at(CheckName::Migration, step, context.to_string(), what)),
        }
    }

    /// A clean close and reopen: the node resumes its persisted phase.
    fn restart(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        self.node = None;
        self.reopen_node(step, &op.to_string())?;
        if self.power_lost_in_reopen {
            // The reopen was cut by a power loss: judged as any recovery from one.
            let candidates = vec![self.model.state.clone()];
            return self.judge_recovered(step, op, candidates);
        }
        if !self.storage_durable() {
            self.model.forget();
        }
        self.trace.push(format!("#{step} reopen -> resumed in {}", self.persisted));
        self.full_check(step, "reopen")
    }

    /// Power loss, reboot, resume; the node's storage must hold one of `candidates`.
    fn power_loss(&mut self, step: usize, op: &Op, candidates: Vec<RaftState>) -> Result<(), Stop> {
        self.node = None;
        let summary = self.disk.crash();
        self.stats.crashes += 1;
        self.trace.push(format!(
            "#{step} power loss: {} pending, {} kept",
            summary.pending, summary.kept
        ));
        self.reopen_node(step, &op.to_string())?;
        self.judge_recovered(step, op, candidates)
    }

    /// After a reopen that followed a power loss: the node's storage holds one of
    /// `candidates` (nothing, on volatile storage), which the model then takes.
    fn judge_recovered(
        &mut self,
        step: usize,
        op: &Op,
        candidates: Vec<RaftState>,
    ) -> Result<(), Stop> {
        let candidates = if self.storage_durable() { candidates } else { vec![RaftState::new()] };
        let node = self.node.as_mut().expect("the node reopened");
        let recovered = match panic::catch(|| RaftState::capture(node.storage())) {
            Ok(Ok(state)) => state,
            Ok(Err(e)) if injected(&e) => return Err(self.refused(step, "read after a crash", &e)),
            Ok(Err(e)) => {
                let what = format!("reading the recovered storage failed: {e}");
                return Err(self.fail(CheckName::CrashAtomicity, step, op, what));
            }
            Err(text) => {
                let what = format!("panic while reading after a crash: {text}");
                return Err(self.fail(CheckName::Panic, step, op, what));
            }
        };
        if let Some(what) =
            recovered_difference(&recovered, &candidates, &StoreHistory::new(false, false))
        {
            return Err(self.fail(CheckName::CrashAtomicity, step, op, what));
        }
        self.trace.push(format!("#{step} recovered {}", &recovered.digest()[..16]));
        self.model.state = recovered;
        self.full_check(step, "recovery after a power loss")
    }

    /// Whether the node's storage in the persisted phase survives a restart.
    fn storage_durable(&self) -> bool {
        match self.persisted {
            Phase::CutOver => self.subject.destination.durable(),
            _ => self.subject.source.durable(),
        }
    }

    fn destination_location(&self) -> String {
        format!("{}/destination.{}", self.location, self.generation)
    }

    fn open_instance(
        &mut self,
        step: usize,
        context: &str,
        family: &Arc<dyn Family>,
        location: &str,
    ) -> Result<Box<dyn RaftStorage>, Stop> {
        let opened = panic::catch(|| family.open(location, self.disk.clone()));
        if self.disk.is_halted() {
            // A crash point armed inside the reopen struck: the caller reboots the disk.
            drop(opened);
            return Err(self.refused(step, "open", &"the power failed"));
        }
        match opened {
            Ok(Ok(instance)) => Ok(instance),
            Ok(Err(e)) if injected(&e) => Err(self.refused(step, "open", &e)),
            Ok(Err(e)) => {
                let check = if self.stats.crashes > 0 {
                    CheckName::CrashAtomicity
                } else {
                    CheckName::ModelEquality
                };
                Err(self.fail_at(check, step, context.to_string(), format!("open failed: {e}")))
            }
            Err(text) => Err(self.fail_at(
                CheckName::Panic,
                step,
                context.to_string(),
                format!("panic during open: {text}"),
            )),
        }
    }

    /// [`open_node`](Self::open_node), retried after a power loss when an injected fault
    /// refused it, up to [`OPEN_ATTEMPTS`] in all: a crash while the node recovers, which
    /// what it acknowledged must survive.
    ///
    /// Like the runner's reopens, one in
    /// [`RECOVERY_CRASH_EVERY`](crate::sim::engine::runner::RECOVERY_CRASH_EVERY) gets a crash
    /// point armed inside it (nested, up to
    /// [`RECOVERY_CRASH_DEPTH`](crate::sim::engine::runner::RECOVERY_CRASH_DEPTH) deep): a power loss while the node
    /// recovers or resumes its migration phase, after which it opens again.
    fn reopen_node(&mut self, step: usize, context: &str) -> Result<(), Stop> {
        let mut attempt = 1;
        let mut depth = 0;
        self.power_lost_in_reopen = false;
        loop {
            let refusals_before = self.stats.refusals;
            let armed = self.options.recovery_crashes
                && arm_recovery_crash_on(&self.disk, self.step_key(step), depth);
            let opened = self.open_node(step, context);
            if armed && self.disk.is_halted() {
                // The power failed while the node opened: whatever the open returned is moot
                // (a refusal it counted included), and the next open must find everything.
                drop(opened);
                self.node = None;
                self.stats.refusals = refusals_before;
                let summary = self.disk.crash();
                self.stats.crashes += 1;
                self.stats.recovery_crashes += 1;
                self.power_lost_in_reopen = true;
                depth += 1;
                self.trace.push(format!(
                    "#{step} power loss during the open (depth {depth}): {} pending, {} kept",
                    summary.pending, summary.kept
                ));
                continue;
            }
            if armed {
                self.disk.disarm_crash();
            }
            match opened {
                Err(Stop::Refused) if attempt < OPEN_ATTEMPTS => {
                    attempt += 1;
                    self.node = None;
                    self.stats.refusals -= 1;
                    self.stats.open_retries += 1;
                    let summary = self.disk.crash();
                    self.stats.crashes += 1;
                    self.trace.push(format!(
                        "#{step} power loss before the retry: {} pending, {} kept",
                        summary.pending, summary.kept
                    ));
                }
                other => return other,
            }
        }
    }

    /// Opens source and destination and resumes the persisted phase (see the module doc).
    fn open_node(&mut self, step: usize, context: &str) -> Result<(), Stop> {
        let source_family = self.subject.source.clone();
        let destination_family = self.subject.destination.clone();
        let source_location = format!("{}/source", self.location);
        let source = self.open_instance(step, context, &source_family, &source_location)?;
        let source: Box<dyn RaftStorage> = match self.subject.planted {
            Some(PlantedMigrationBug::SourceMissesMutations) => {
                Box::new(MutedSource::new(source, self.mute.clone()))
            }
            _ => source,
        };
        let location = self.destination_location();
        let destination = self.open_instance(step, context, &destination_family, &location)?;
        let faults_before = self.faults();
        let resumed = panic::catch(|| Migration::resume(self.persisted, source, destination));
        let resumed = match resumed {
            Ok(r) => r,
            Err(text) => {
                let what = format!("panic while resuming: {text}");
                return Err(self.fail_at(CheckName::Panic, step, context.to_string(), what));
            }
        };
        self.validated = false;
        self.diverged = false;
        match resumed {
            Ok((migration, recovery)) => {
                self.trace.push(format!(
                    "#{step} resume({}) -> {} {recovery:?}",
                    self.persisted,
                    migration.phase()
                ));
                self.persisted = migration.phase();
                self.node = Some(Node { migration, planted_cut: None });
                Ok(())
            }
            Err(unpaired) => {
                let error = unpaired.error;
                if self.disk.is_halted() || self.faults() > faults_before || injected(&error) {
                    return Err(self.refused(step, "resume", &error));
                }
                // Not resumable: the node discards the destination and plans again.
                self.trace
                    .push(format!("#{step} resume({}) -> {error}; planned again", self.persisted));
                drop(unpaired.mirror);
                self.generation += 1;
                let location = self.destination_location();
                let fresh = self.open_instance(step, context, &destination_family, &location)?;
                match Migration::plan(unpaired.primary, fresh) {
                    Ok(migration) => {
                        self.persisted = Phase::Planned;
                        self.node = Some(Node { migration, planted_cut: None });
                        Ok(())
                    }
                    Err(refused) => {
                        let what = format!("a fresh destination was refused: {}", refused.error);
                        Err(self.fail_at(CheckName::Migration, step, context.to_string(), what))
                    }
                }
            }
        }
    }

    fn refused(&mut self, step: usize, what: &str, e: &dyn std::fmt::Display) -> Stop {
        self.trace.push(format!("#{step} {what} -> refused: {e}"));
        self.stats.refusals += 1;
        Stop::Refused
    }

    fn fail(&self, check: CheckName, step: usize, op: &Op, what: String) -> Stop {
        self.fail_at(check, step, op.to_string(), what)
    }

    fn fail_at(&self, check: CheckName, step: usize, op: String, difference: String) -> Stop {
        Stop::Failed(Box::new(CheckFailure {
            check,
            family: self.subject.name(),
            step,
            op,
            difference,
            trace_tail: self.trace.tail(),
            disk_trace_tail: self.disk.trace_tail(DISK_TRACE_TAIL_LEN),
        }))
    }
}
