//! What a run is told ([`RunOptions`]) and what it gives back ([`RunStats`], [`RunOutcome`]).

use serde::{Deserialize, Serialize};

use crate::sim::checks::bad_images::BadImageOptions;
use crate::sim::checks::image_views::PlantedViewBug;
use crate::sim::checks::CheckFailure;
use crate::sim::engine::trace::RunTimeline;
use crate::sim::planted::PlantedValidatorBug;
use crate::vfs::EnumerateOptions;

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
    /// A planted blind spot for the validator the `validator_agreement` check judges
    /// (self-tests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_validator: Option<PlantedValidatorBug>,
    /// A planted distortion of the views the `image_views` check judges (self-tests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_views: Option<PlantedViewBug>,
    /// How the `bad_images` check tests rejections (hostile images per check, a planted
    /// reader bug for self-tests).
    #[serde(default)]
    pub bad_images: BadImageOptions,
    /// The key each step's faults and crash choices are drawn under, by step, on a disk with
    /// per-step fault streams ([`crate::vfs::FaultStreams::Steps`]): the op's position in
    /// the history it was generated as, which a shrunk history keeps
    /// ([`crate::sim::engine::shrink::Shrunk::keys`]) so its ops meet the faults they met
    /// before. `None`, or a step past the list's end: the step's own position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_keys: Option<Vec<u64>>,
    /// Arm crash points inside opens (power losses during recovery, nested; on by default,
    /// off only to measure what they are worth: `qk soak --ablate recovery-crashes`).
    #[serde(default = "crate::sim::engine::runner::recovery_crashes_on")]
    pub recovery_crashes: bool,
    /// In exhaustive mode (with `recovery_crashes` on): how many power losses deep every
    /// crash point of each crash state's reopen is enumerated too (`qk soak --exhaustive
    /// --recovery-depth N`; 0 reopens each crash state once).
    #[serde(default = "crate::sim::engine::runner::exhaustive_recovery_depth_default")]
    pub exhaustive_recovery_depth: u32,
    /// Record a timeline of the run on its simulated disk ([`RunOutcome::timeline`]): every
    /// trace line with the disk operations it caused and every power loss's fates (`qk replay
    /// --html`). Changes nothing the run does, traces or hashes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timeline: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            full_check_every: 16,
            trace_tail_len: 24,
            unchecked: false,
            exhaustive: None,
            planted_validator: None,
            planted_views: None,
            bad_images: BadImageOptions::default(),
            step_keys: None,
            recovery_crashes: true,
            exhaustive_recovery_depth: super::EXHAUSTIVE_RECOVERY_DEPTH,
            timeline: false,
        }
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
    /// Runs that did no work: refused before their first op was applied (a fresh instance
    /// refused at its creation). Such a run checked nothing and is no pass.
    #[serde(default)]
    pub idle: u64,
    /// Crash states checked in exhaustive mode.
    pub crash_states: u64,
    /// Of them, power losses inside the reopen of a crash state (nested, to
    /// [`RunOptions::exhaustive_recovery_depth`]).
    #[serde(default)]
    pub nested_crash_states: u64,
    /// Dual-write pairs whose mirror recovery repaired or bootstrapped again.
    #[serde(default)]
    pub pair_repairs: u64,
    /// Images exported from pinned cuts and checked.
    pub exports: u64,
    /// Imports made by the image checks.
    pub imports: u64,
    /// Pairs of states the `validator_agreement` check compared.
    #[serde(default)]
    pub validator_pairs: u64,
    /// `qk inspect` reports of cleanly closed instances the `inspect_agreement` check judged.
    #[serde(default)]
    pub inspections: u64,
    /// Hostile `local://` directories the `hostile_dirs` check judged.
    #[serde(default)]
    pub hostile_dirs: u64,
    /// Migration steps a migration subject took (accepted or refused).
    #[serde(default)]
    pub migration_steps: u64,
    /// Migration steps refused with a typed error (and judged right to be).
    #[serde(default)]
    pub migration_refusals: u64,
    /// Cut-overs a migration subject made.
    #[serde(default)]
    pub cut_overs: u64,
    /// Rollbacks a migration subject made.
    #[serde(default)]
    pub roll_backs: u64,
    /// Opens retried after an injected honest fault failed the attempt before.
    #[serde(default)]
    pub open_retries: u64,
    /// Power losses that struck while a subject was opening (recovering from the power loss
    /// before, or restarting): each followed by another open.
    #[serde(default)]
    pub recovery_crashes: u64,
    /// Writes a power loss tore into pieces finer than a sector (files whose family declared
    /// a finer write-atomicity unit, as redb does).
    #[serde(default)]
    pub sub_sector_tears: u64,
}

impl RunStats {
    /// Adds every counter of `other` to this one.
    pub fn add(&mut self, other: &RunStats) {
        let RunStats {
            steps,
            mutations,
            reopens,
            crashes,
            faults,
            full_checks,
            rejected_calls,
            failed_mutations,
            refusals,
            idle,
            crash_states,
            nested_crash_states,
            pair_repairs,
            exports,
            imports,
            validator_pairs,
            inspections,
            hostile_dirs,
            migration_steps,
            migration_refusals,
            cut_overs,
            roll_backs,
            open_retries,
            recovery_crashes,
            sub_sector_tears,
        } = other;
        self.steps += steps;
        self.mutations += mutations;
        self.reopens += reopens;
        self.crashes += crashes;
        self.faults += faults;
        self.full_checks += full_checks;
        self.rejected_calls += rejected_calls;
        self.failed_mutations += failed_mutations;
        self.refusals += refusals;
        self.idle += idle;
        self.crash_states += crash_states;
        self.nested_crash_states += nested_crash_states;
        self.pair_repairs += pair_repairs;
        self.exports += exports;
        self.imports += imports;
        self.validator_pairs += validator_pairs;
        self.inspections += inspections;
        self.hostile_dirs += hostile_dirs;
        self.migration_steps += migration_steps;
        self.migration_refusals += migration_refusals;
        self.cut_overs += cut_overs;
        self.roll_backs += roll_backs;
        self.open_retries += open_retries;
        self.recovery_crashes += recovery_crashes;
        self.sub_sector_tears += sub_sector_tears;
    }
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
    /// Why the run ended early as a refusal (the instance failed closed), if it did.
    #[serde(default)]
    pub refusal: Option<String>,
    /// The last `trace_tail_len` trace lines.
    pub trace_tail: Vec<String>,
    /// The run's timeline, when [`RunOptions::timeline`] asked for one and the run had a
    /// simulated disk (not serialized).
    #[serde(skip)]
    pub timeline: Option<RunTimeline>,
}

impl RunOutcome {
    /// Whether the run did no work: no op was applied before it ended as a refusal, so no
    /// check looked at anything.
    pub fn did_no_work(&self) -> bool {
        self.stats.idle > 0
    }
}
