//! The reopen phase: a clean close and reopen (a `reopen` op, or a `crash` op without a
//! simulated disk), and opening the subject again after a power loss. A family's instance
//! (or a pair's primary before the join) is opened alone; a joined pair opens both sides,
//! lets the `dual_write` check see the mirror before any repair, then recovers. An open that
//! fails is a finding unless a fault excuses it (the run then ends as a refusal). After a
//! clean reopen braft's view of a local directory must equal the model (`braft_view`), and
//! so must what `qk inspect` reported of the closed instance (`inspect_agreement`).

use super::{Instance, Runner, Stop, OPEN_ATTEMPTS, RECOVERY_CRASH_DEPTH, RECOVERY_CRASH_EVERY};
use crate::contract::StorageError;
use crate::dual_write::Recovery;
use crate::sim::checks::braft_view;
use crate::sim::checks::dual_write::{reopen_problem, PairReopened, RecoveryContext};
use crate::sim::checks::{injected, panic, refusal, CheckName};
use crate::sim::engine::ops::Op;
use crate::sim::engine::subject::{PairFamily, Subject};
use crate::state::RaftState;
use crate::vfs::SimDisk;

impl Runner {
    /// A `reopen` op.
    pub(super) fn reopen(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        self.stats.reopens += 1;
        self.restart(step, op, "reopen()")
    }

    /// A clean close and reopen (no power loss), then a full comparison.
    pub(super) fn restart(&mut self, step: usize, op: &Op, context: &str) -> Result<(), Stop> {
        let before = self.pair_joined().then(|| self.model.state.clone());
        let inspection = self.close_and_inspect();
        let crashes = self.stats.crashes;
        let reopened = self.open_again(step, op)?;
        if self.stats.crashes > crashes && self.subject.durable() {
            // The power failed while the subject reopened (a crash during recovery, or the
            // power loss before a retry): judged as a power loss is, and everything
            // acknowledged must still be there. Under a dishonest plan a store may have rolled
            // back to a state it held: the model follows what was recovered, as after any
            // other power loss (on an honest disk the two are equal, or the check failed).
            let now = [self.model.state.clone()];
            let recovered = self.recovered_state(step, op, &now)?;
            self.model.state = recovered;
            self.history.remember_all(&self.model.state);
        }
        if !self.subject.durable() {
            self.model.forget();
            // A volatile subject restarts empty: the stores' current states move with it.
            self.history.remember_all(&self.model.state);
        }
        self.trace.push(format!("#{step} {context} -> ok"));
        if let (Some(reopened), Some(before)) = (reopened, before) {
            let mirror_candidates = [self.mirror_candidate(before)];
            self.check_pair_reopen(step, op, &reopened, false, &mirror_candidates)?;
        }
        self.full_check(step, context)?;
        self.check_braft_after_open(step, op)?;
        self.check_reopened(step, op)?;
        self.check_inspection(step, op, inspection)
    }

    /// `braft_view` after an open: braft's view of every local directory (read on a fork of
    /// the disk) equals the state the subject now shows, which the model holds.
    pub(super) fn check_braft_after_open(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let roots = self.braft_roots();
        let Some(copy) = self.disk.as_ref().and_then(|d| braft_view::fork_for(d, &roots)) else {
            return Ok(());
        };
        match braft_view::judge_open_all(copy.as_ref(), &roots, &self.model.state) {
            Ok(()) => Ok(()),
            Err(what) => Err(self.failure(CheckName::BraftView, step, op, what).into()),
        }
    }

    /// What a pair's mirror may hold after a restart where `state` is allowed: `state`, or
    /// nothing for a volatile mirror.
    pub(super) fn mirror_candidate(&self, state: RaftState) -> RaftState {
        match &self.subject {
            Subject::Pair(p) if !p.mirror_family().durable() => RaftState::new(),
            _ => state,
        }
    }

    /// Opens the subject again: a family's instance, a pair's primary before its mirror
    /// joined, or a joined pair (recovered, with what recovery found).
    ///
    /// An open that an injected honest fault (EIO, ENOSPC) failed is retried after a power
    /// loss, up to [`OPEN_ATTEMPTS`] in all, as an operator restarts a machine whose storage
    /// failed to open: the retry must find everything acknowledged, after whatever the failed
    /// attempt's repair left half done. Only when every attempt fails does the run end as a
    /// refusal.
    pub(super) fn open_again(
        &mut self,
        step: usize,
        op: &Op,
    ) -> Result<Option<PairReopened>, Stop> {
        self.read_only_probe = self.probe_read_only();
        let mut attempt = 1;
        let mut depth = 0;
        loop {
            let armed = self.arm_recovery_crash(step, depth);
            let opened = self.open_attempt(step, op);
            if std::mem::take(&mut self.recovery_crashed) {
                // The power failed while the subject opened: what the open did so far stays
                // as the disk kept it, and the next open must still find everything.
                drop(opened);
                self.recovery_crash(step, depth);
                if self.dishonest {
                    // A lying disk may have rolled back, at this power loss, what the probe
                    // read before it: the open that follows faces only what is left.
                    self.read_only_probe = self.probe_read_only();
                }
                depth += 1;
                attempt += 1;
                continue;
            }
            if armed {
                if let Some(disk) = &self.disk {
                    disk.disarm_crash();
                }
            }
            match opened {
                Err(Stop::Refused) if attempt < OPEN_ATTEMPTS && self.retry_open(step) => {
                    attempt += 1;
                }
                Ok(Some(mut reopened)) if attempt > 1 => {
                    // A failed attempt may have half repaired the mirror: what it held
                    // before any repair is no longer there to inspect.
                    reopened.fault_during_recovery = true;
                    reopened.mirror_before = None;
                    return Ok(Some(reopened));
                }
                other => return other,
            }
        }
    }

    /// Arms, when drawn, a crash point inside the coming open: one open in
    /// [`RECOVERY_CRASH_EVERY`] at the first level, one in two below it, never deeper than
    /// [`RECOVERY_CRASH_DEPTH`]. Drawn from the disk's seed, the step's key and the depth, so
    /// a step keeps its nested crashes when a shrink removes other steps. Whether it armed.
    fn arm_recovery_crash(&mut self, step: usize, depth: u32) -> bool {
        let Some(disk) = &self.disk else { return false };
        let off = !self.options.recovery_crashes || self.options.exhaustive.is_some();
        !off && arm_recovery_crash_on(disk, self.step_key(step), depth)
    }

    /// The power loss a crash point armed inside an open caused: the disk reboots, and the
    /// open is tried again.
    fn recovery_crash(&mut self, step: usize, depth: u32) {
        self.instance = None;
        self.export = None;
        let Some(disk) = &self.disk else { return };
        let summary = disk.crash();
        self.stats.crashes += 1;
        self.stats.recovery_crashes += 1;
        self.trace.push(format!(
            "#{step} power loss during the open (depth {}): {} pending, {} kept, {} torn",
            depth + 1,
            summary.pending,
            summary.kept,
            summary.torn_writes
        ));
    }

    /// Whether the open that just ended the run as a refusal failed by an injected honest
    /// fault, so that [`open_again`](Self::open_again) may try again; if so, the refusal is
    /// taken back (a trace line and the retry count say what happened).
    fn retry_open(&mut self, step: usize) -> bool {
        if !self.faulty || self.dishonest || self.halted() || !self.refusal_injected {
            return false;
        }
        let refusal = self.refusal.take().unwrap_or_default();
        self.stats.refusals -= 1;
        self.stats.open_retries += 1;
        // The machine restarts too: after a failed fsync, what the page cache still shows
        // may never reach the disk (Linux marks the pages clean), so a process restart alone
        // would let the retry see a directory the disk will not keep, which no open can
        // detect. A power loss makes the retry face only what is durable: a crash during
        // recovery, which acknowledged data must survive.
        if let Some(disk) = &self.disk {
            let summary = disk.crash();
            self.stats.crashes += 1;
            self.trace.push(format!(
                "#{step} power loss before the retry: {} pending, {} kept, {} torn",
                summary.pending, summary.kept, summary.torn_writes
            ));
        }
        self.trace.push(format!("#{step} open retried after an injected fault ({refusal})"));
        true
    }

    fn open_attempt(&mut self, step: usize, op: &Op) -> Result<Option<PairReopened>, Stop> {
        self.faults_at_open = self.faults_so_far();
        self.refusal_injected = false;
        let (location, vfs) = (self.location.clone(), self.vfs.clone());
        let opened = match self.subject.clone() {
            Subject::Family(family) => panic::catch(|| family.open(&location, vfs)),
            // (A migration has its own driver; the runner would run its source alone.)
            Subject::Migration(m) => panic::catch(|| m.source_family().open(&location, vfs)),
            Subject::Pair(pair) if !self.pair_joined() => {
                panic::catch(|| pair.open_primary(&location, vfs))
            }
            Subject::Pair(pair) => return self.open_pair_again(step, op, pair.as_ref()).map(Some),
        };
        if self.halted() {
            // A crash point armed inside the open struck: whatever it returned is moot.
            drop(opened);
            self.recovery_crashed = true;
            return Err(Stop::Refused);
        }
        match opened {
            Ok(Ok(instance)) => {
                self.instance = Some(Instance::Single(instance));
                Ok(None)
            }
            Ok(Err(e)) => Err(self.open_failed(step, op, e)),
            Err(text) => Err(self.open_panicked(step, op, &text)),
        }
    }

    /// The dual-write check after a reopen of a joined pair (see
    /// [`reopen_problem`]).
    pub(super) fn check_pair_reopen(
        &mut self,
        step: usize,
        op: &Op,
        reopened: &PairReopened,
        after_crash: bool,
        mirror_candidates: &[RaftState],
    ) -> Result<(), Stop> {
        let Subject::Pair(pair) = &self.subject else { return Ok(()) };
        let mirror_was_fresh = matches!(
            &reopened.mirror_before,
            Some(Ok(state)) if mirror_candidates.contains(state) && *state == RaftState::new()
        );
        let context = RecoveryContext {
            after_crash,
            primary_durable: pair.primary_family().durable(),
            mirror_durable: pair.mirror_family().durable(),
            dishonest: self.dishonest,
            fault_during_recovery: reopened.fault_during_recovery,
            mirror_was_fresh,
        };
        match reopen_problem(reopened, mirror_candidates, context, self.faulty) {
            None => Ok(()),
            Some(what) => Err(self.failure(CheckName::DualWrite, step, op, what).into()),
        }
    }

    fn open_failed(&mut self, step: usize, op: &Op, e: StorageError) -> Stop {
        if (self.dishonest && refusal(&e)) || (self.faulty && injected(&e)) {
            self.refusal_injected = self.faulty && injected(&e);
            return self.refused(step, "open", &e);
        }
        self.trace.push(format!("#{step} open -> err: {e}"));
        let check = if self.stats.crashes > 0 {
            CheckName::CrashAtomicity
        } else {
            CheckName::ModelEquality
        };
        self.failure(check, step, op, format!("reopen failed: {e}")).into()
    }

    fn open_panicked(&mut self, step: usize, op: &Op, text: &str) -> Stop {
        let what = format!("panic during open: {text}");
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
        let sides = panic::catch(|| pair.open_sides(&location, vfs.clone()));
        if self.halted() {
            // A crash point armed inside the open struck (see `open_attempt`).
            drop(sides);
            self.recovery_crashed = true;
            return Err(Stop::Refused);
        }
        let sides = match sides {
            Ok(Ok(sides)) => sides,
            Ok(Err(e)) => return Err(self.open_failed(step, op, e)),
            Err(text) => return Err(self.open_panicked(step, op, &text)),
        };
        let inspect = pair.mirror_family().durable() && !self.dishonest;
        let mirror_before = match &sides.mirror {
            Ok(mirror) if inspect => {
                Some(match panic::catch(|| RaftState::capture(mirror.as_ref())) {
                    Ok(Ok(state)) => Ok(state),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(text) => Err(format!("panic: {text}")),
                })
            }
            _ => None,
        };
        let mirror_open_error = sides.mirror.as_ref().err().cloned();
        let recovered = panic::catch(|| pair.recover(sides, &location, vfs));
        if self.halted() {
            // A crash point armed inside the open struck (see `open_attempt`).
            drop(recovered);
            self.recovery_crashed = true;
            return Err(Stop::Refused);
        }
        let fault_during_recovery = self.faults_so_far() > faults_before;
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
                self.refusal_injected = fault_during_recovery && injected(&e);
                Err(self.refused(step, "pair recovery", &e))
            }
            Ok(Err(e)) => {
                self.trace.push(format!("#{step} pair recovery -> err: {e}"));
                let what = format!("the pair could not be recovered: {e}");
                Err(self.failure(CheckName::DualWrite, step, op, what).into())
            }
            Err(text) => {
                let what = format!("panic during pair recovery: {text}");
                Err(self.failure(CheckName::Panic, step, op, what).into())
            }
        }
    }
}

/// Arms, when drawn, a crash point inside the open about to run on `disk` (see
/// [`Runner::arm_recovery_crash`]; the migration driver's reopens share it): one open in
/// [`RECOVERY_CRASH_EVERY`] at the first level, one in two below it, never deeper than
/// [`RECOVERY_CRASH_DEPTH`]. Drawn from the disk's seed, the step's key and the depth.
/// Whether it armed.
pub(crate) fn arm_recovery_crash_on(disk: &SimDisk, step_key: u64, depth: u32) -> bool {
    use rand::{RngExt, SeedableRng};
    if depth >= RECOVERY_CRASH_DEPTH {
        return false;
    }
    let key = step_key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(depth);
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(disk.options().seed ^ 0x4E57_0000_0000_0015 ^ key);
    let every = if depth == 0 { RECOVERY_CRASH_EVERY } else { 2 };
    if rng.random_range(0..every) != 0 {
        return false;
    }
    // Log-uniform over 1..=1024 disk operations: early in the open (its first repair) as
    // often as late (the last cleanup of a long recovery).
    let span = 1u64 << rng.random_range(0..=10u32);
    let into = rng.random_range(1..=span);
    disk.crash_after_op(disk.op_count() + into);
    true
}
