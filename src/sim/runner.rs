//! The executor: applies a history to a family instance and to the model, and checks them
//! against each other after every step.
//!
//! After every step the runner checks that the call succeeded or failed exactly as the model
//! did, and compares what the step can have changed: the retained range, the entries it wrote
//! or cut at, meta, and the snapshot meta (and the whole snapshot after a publish). Every
//! `full_check_every` steps, after every reopen and at the end it compares the whole
//! Raft-visible state. Panics inside the family are caught and reported as the `panic` check.
//! Every step adds one line to a hashed trace, so two runs of one seed can be compared.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::{Family, RaftStorage, StateView, StorageResult};
use crate::sim::check::{CheckFailure, CheckName};
use crate::sim::model::Model;
use crate::sim::ops::{Action, Op};
use crate::state::{first_difference, RaftState};
use crate::vfs::{FileKind, VfsErrorKind, VfsHandle};

/// Largest chunk a snapshot file is written in.
pub const SNAPSHOT_CHUNK_LEN: usize = 64 * 1024;

/// How a run checks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunOptions {
    /// Compare the whole state every this many steps (and always at the end); 0 means only at
    /// the end and after reopens.
    pub full_check_every: usize,
    /// How many trace lines a failure report keeps.
    pub trace_tail_len: usize,
    /// Skip every comparison (for measuring the cost of checking); failures still count for
    /// calls whose success differs from the model's.
    pub unchecked: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { full_check_every: 16, trace_tail_len: 24, unchecked: false }
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
    /// Whole-state comparisons.
    pub full_checks: u64,
    /// Calls the contract rejected (and the family rejected too).
    pub rejected_calls: u64,
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

/// Applies one action to an instance (a `Reopen` is the caller's business and does nothing
/// here).
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
        Action::Reopen => Ok(()),
    }
}

/// Runs histories against one family instance and the model.
pub struct Runner {
    family: Arc<dyn Family>,
    location: String,
    vfs: VfsHandle,
    instance: Option<Box<dyn RaftStorage>>,
    model: Model,
    trace: Trace,
    options: RunOptions,
    stats: RunStats,
}

impl Runner {
    /// Opens a fresh instance of `family` at `location` on `vfs`.
    pub fn new(
        family: Arc<dyn Family>,
        location: &str,
        vfs: VfsHandle,
        options: RunOptions,
    ) -> StorageResult<Self> {
        let instance = family.open(location, vfs.clone())?;
        Ok(Runner {
            family,
            location: location.to_string(),
            vfs,
            instance: Some(instance),
            model: Model::new(),
            trace: Trace::new(options.trace_tail_len),
            options,
            stats: RunStats::default(),
        })
    }

    /// The model as it stands.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Runs every op in order, stopping at the first failed check, then compares the whole
    /// state once more.
    pub fn run(mut self, ops: &[Op]) -> RunOutcome {
        let mut failure = None;
        for (step, op) in ops.iter().enumerate() {
            if let Err(f) = self.step(step, op) {
                failure = Some(f);
                break;
            }
        }
        if failure.is_none() && !self.options.unchecked {
            let step = ops.len();
            failure = self.full_check(step, "end of history").err();
        }
        RunOutcome {
            stats: self.stats.clone(),
            trace_hash: self.trace.hash(),
            final_digest: self.model.state.digest(),
            failure,
            trace_tail: self.trace.tail(),
        }
    }

    /// Applies op number `step` to the instance and the model and checks them.
    pub fn step(&mut self, step: usize, op: &Op) -> Result<(), CheckFailure> {
        let action = op.resolve(&self.model);
        self.stats.steps += 1;
        if op.is_mutation() {
            self.stats.mutations += 1;
        }
        if action == Action::Reopen {
            return self.reopen(step, op);
        }
        let model_result = self.model.apply(&action);
        let instance = self.instance.as_mut().expect("instance is open between steps");
        let result = catch_unwind(AssertUnwindSafe(|| apply_action(instance.as_mut(), &action)));
        let result = match result {
            Ok(r) => r,
            Err(panic) => {
                let what = panic_text(&panic);
                self.trace.push(format!("#{step} {action} -> panic: {what}"));
                return Err(self.failure(CheckName::Panic, step, op, format!("panic: {what}")));
            }
        };
        let verdict = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err: {e}"),
        };
        self.trace.push(format!("#{step} {action} -> {verdict}"));
        match (&model_result, &result) {
            (Ok(()), Err(e)) => {
                let what = format!("the family failed a call the contract accepts: {e}");
                return Err(self.failure(CheckName::ModelEquality, step, op, what));
            }
            (Err(e), Ok(())) => {
                let what = format!("the family accepted a call the contract rejects ({e})");
                return Err(self.failure(CheckName::ModelEquality, step, op, what));
            }
            (Err(_), Err(_)) => self.stats.rejected_calls += 1,
            (Ok(()), Ok(())) => {}
        }
        if self.options.unchecked {
            return Ok(());
        }
        self.quick_check(step, op, &action)?;
        let every = self.options.full_check_every;
        let published = matches!(action, Action::Snapshot { publish: true, .. });
        if published || (every > 0 && (step + 1) % every == 0) {
            self.full_check(step, &op.to_string())?;
        }
        Ok(())
    }

    fn reopen(&mut self, step: usize, op: &Op) -> Result<(), CheckFailure> {
        self.stats.reopens += 1;
        drop(self.instance.take());
        let opened =
            catch_unwind(AssertUnwindSafe(|| self.family.open(&self.location, self.vfs.clone())));
        match opened {
            Ok(Ok(instance)) => self.instance = Some(instance),
            Ok(Err(e)) => {
                self.trace.push(format!("#{step} reopen() -> err: {e}"));
                let what = format!("reopen failed: {e}");
                return Err(self.failure(CheckName::ModelEquality, step, op, what));
            }
            Err(panic) => {
                let what = format!("panic during reopen: {}", panic_text(&panic));
                self.trace.push(format!("#{step} reopen() -> {what}"));
                return Err(self.failure(CheckName::Panic, step, op, what));
            }
        }
        if !self.family.durable() {
            self.model.forget();
        }
        self.trace.push(format!("#{step} reopen() -> ok"));
        self.full_check(step, "reopen()")
    }

    /// Compares what `action` can have changed.
    fn quick_check(&mut self, step: usize, op: &Op, action: &Action) -> Result<(), CheckFailure> {
        let instance = self.instance.as_ref().expect("instance is open");
        let difference = catch_unwind(AssertUnwindSafe(|| {
            quick_difference(instance.as_ref(), &self.model, action)
        }));
        match difference {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(what))) => Err(self.failure(CheckName::ModelEquality, step, op, what)),
            Ok(Err(e)) => {
                let what = format!("reading the instance failed: {e}");
                Err(self.failure(CheckName::ModelEquality, step, op, what))
            }
            Err(panic) => {
                let what = format!("panic while reading: {}", panic_text(&panic));
                Err(self.failure(CheckName::Panic, step, op, what))
            }
        }
    }

    /// Compares the whole Raft-visible state.
    fn full_check(&mut self, step: usize, context: &str) -> Result<(), CheckFailure> {
        self.stats.full_checks += 1;
        let instance = self.instance.as_ref().expect("instance is open");
        let captured = catch_unwind(AssertUnwindSafe(|| RaftState::capture(instance.as_ref())));
        let what = match captured {
            Ok(Ok(state)) => match first_difference(&state, &self.model.state) {
                None => return Ok(()),
                Some(d) => (CheckName::ModelEquality, format!("instance vs model: {d}")),
            },
            Ok(Err(e)) => (CheckName::ModelEquality, format!("reading the instance failed: {e}")),
            Err(panic) => {
                (CheckName::Panic, format!("panic while reading: {}", panic_text(&panic)))
            }
        };
        Err(self.failure_at(what.0, step, context.to_string(), what.1))
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
            family: self.family.scheme().to_string(),
            step,
            op,
            difference,
            trace_tail: self.trace.tail(),
        }
    }
}

/// The first difference between `instance` and `model` in what `action` can have changed.
fn quick_difference(
    instance: &dyn RaftStorage,
    model: &Model,
    action: &Action,
) -> StorageResult<Option<String>> {
    let (first, last) = (instance.first_index(), instance.last_index());
    let (model_first, model_last) = (model.first_index(), model.last_index());
    if (first, last) != (model_first, model_last) {
        return Ok(Some(format!(
            "retained range differs: instance [{first}, {last}] vs model \
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
        let want = model.entry(index)?;
        if got != want {
            return Ok(Some(format!(
                "entry {index}: instance has {} vs model {}",
                describe_entry(&got),
                describe_entry(&want)
            )));
        }
    }
    let (meta, model_meta) = (instance.meta()?, model.meta()?);
    if meta != model_meta {
        return Ok(Some(format!("meta differs: instance {meta:?} vs model {model_meta:?}")));
    }
    let (snapshot, model_snapshot) = (instance.snapshot_meta()?, model.snapshot_meta()?);
    if snapshot != model_snapshot {
        return Ok(Some(format!(
            "snapshot meta differs: instance {snapshot:?} vs model {model_snapshot:?}"
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

/// Removes whatever a durable family left at `location` (a file tree), so that a history
/// starts from a fresh instance and leaves nothing behind on a real disk.
fn clear_location(vfs: &VfsHandle, location: &Path) -> StorageResult<()> {
    let meta = match vfs.metadata(location) {
        Ok(meta) => meta,
        Err(e) if e.kind == VfsErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if meta.kind == FileKind::File {
        return Ok(vfs.remove_file(location)?);
    }
    for entry in vfs.read_dir(location)? {
        clear_location(vfs, &location.join(&entry.name))?;
    }
    Ok(vfs.remove_dir(location)?)
}

/// Runs `ops` on a fresh instance of `family` at `location` on `vfs`; an instance that fails
/// to open is reported as a `model_equality` failure at step 0. Anything already at
/// `location` is removed first, and the location is removed again afterwards.
pub fn run_history(
    family: Arc<dyn Family>,
    location: &str,
    vfs: VfsHandle,
    ops: &[Op],
    options: RunOptions,
) -> RunOutcome {
    let scheme = family.scheme().to_string();
    let cleared = clear_location(&vfs, Path::new(location));
    let opened = cleared.and_then(|()| Runner::new(family, location, vfs.clone(), options));
    let outcome = run_opened(opened, scheme, ops);
    // Best effort: a leftover only costs disk space; the next run clears it.
    let _ = clear_location(&vfs, Path::new(location));
    outcome
}

fn run_opened(opened: StorageResult<Runner>, scheme: String, ops: &[Op]) -> RunOutcome {
    match opened {
        Ok(runner) => runner.run(ops),
        Err(e) => RunOutcome {
            stats: RunStats::default(),
            trace_hash: String::new(),
            final_digest: String::new(),
            failure: Some(CheckFailure {
                check: CheckName::ModelEquality,
                family: scheme,
                step: 0,
                op: "open".to_string(),
                difference: format!("a fresh instance failed to open: {e}"),
                trace_tail: Vec::new(),
            }),
            trace_tail: Vec::new(),
        },
    }
}
