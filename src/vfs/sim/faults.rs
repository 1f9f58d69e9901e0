//! The fault plan (what may go wrong), its swarm generator, the fault overlays kept beside the
//! durable image, and the per-kind counters. The prose model is in the parent module's doc.

use std::collections::BTreeMap;
use std::fmt;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// When one kind of fault fires: at the listed operation numbers, and at random with
/// `probability` per opportunity. Both may be set; an empty, zero rate never fires.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultRate {
    /// Chance per opportunity (per sync, per write, per crash, ... as the field using this
    /// rate says). Values at or below 0 (and NaN) never fire; at or above 1 always fire.
    pub probability: f64,
    /// Operation numbers (as printed in the trace) at which the fault fires for certain,
    /// when that operation is an opportunity for it.
    pub at_ops: Vec<u64>,
}

impl FaultRate {
    /// A rate that never fires.
    pub fn never() -> Self {
        FaultRate::default()
    }

    /// Fires with `probability` per opportunity.
    pub fn with_probability(probability: f64) -> Self {
        FaultRate { probability, at_ops: Vec::new() }
    }

    /// Fires exactly at the given operation numbers.
    pub fn at_ops(at_ops: impl IntoIterator<Item = u64>) -> Self {
        FaultRate { probability: 0.0, at_ops: at_ops.into_iter().collect() }
    }

    /// Whether this rate can ever fire.
    pub fn is_enabled(&self) -> bool {
        chance_possible(self.probability) || !self.at_ops.is_empty()
    }

    /// Decides whether the fault fires at operation `op_no`. Draws from `rng` only when the
    /// probability is positive, so a disabled fault does not disturb its stream.
    pub(super) fn fires(&self, op_no: u64, rng: &mut ChaCha8Rng) -> bool {
        let forced = self.at_ops.contains(&op_no);
        let drawn = chance(rng, self.probability);
        forced || drawn
    }

    /// How many syncs after a drawn lying sync lie as well (`0..=FSYNC_LOSS_STREAK_MAX`,
    /// from `rng`): a volatile cache that stops honouring flushes does so for a stretch,
    /// not for one flush. A rate with only listed operations has no streaks (it draws
    /// nothing), so an exhaustive or hand-written plan stays exact.
    pub(super) fn streak(&self, rng: &mut ChaCha8Rng) -> u32 {
        if chance_possible(self.probability) {
            rng.random_range(0..=FSYNC_LOSS_STREAK_MAX)
        } else {
            0
        }
    }
}

/// The longest run of further lying syncs one drawn fsync loss starts (see
/// [`FaultRate::streak`]).
pub const FSYNC_LOSS_STREAK_MAX: u32 = 24;

/// Every fault a run may inject. Each field is independent, so a shrinker can turn faults
/// off one at a time; [`FaultPlan::none`] is an honest disk (crashes only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultPlan {
    /// Lying fsync: per `sync` or `sync_dir` call, it returns Ok and makes nothing durable
    /// (the dirty state stays dirty and may still be lost at a crash).
    pub fsync_loss: FaultRate,
    /// fsync EIO: per `sync` or `sync_dir` call, it fails with `Io` and the dirty state it
    /// covered is dropped without becoming durable, so a retried sync returns Ok without it
    /// (fsyncgate); a file's pending length changes are kept (they are the inode's).
    pub fsync_error: FaultRate,
    /// Write EIO: per `write_at` or `set_len`, the call fails with `Io` and changes nothing.
    pub write_error: FaultRate,
    /// Disk full: the capacity in bytes (each file's visible length rounded up to whole
    /// sectors). A write that does not fit writes the sectors that fit and fails with
    /// `NoSpace`; a `set_len` that does not fit fails with `NoSpace` and changes nothing.
    pub capacity_bytes: Option<u64>,
    /// Torn sector: per unsynced write at a crash, one of its sectors is left half new and
    /// half old, or full of garbage. `at_ops` names write operations.
    pub torn_sector: FaultRate,
    /// Bit rot: per `sync` of a file (one sector of that file) and per crash (one sector of
    /// one recovered file), a bit of durable data flips; reads see it until the sector is
    /// rewritten.
    pub bit_rot: FaultRate,
    /// Latent sector error: at the same opportunities as bit rot, a sector becomes
    /// unreadable; every read touching it fails with `Io` until the sector is rewritten.
    pub latent_error: FaultRate,
    /// Misdirected write: per write as it becomes durable (at a sync, a writeback or a
    /// crash), its sectors land at another sector-aligned offset of the same file; the
    /// intended sectors keep their old bytes. `at_ops` names write operations.
    pub misdirect: FaultRate,
}

impl FaultPlan {
    /// No faults: the disk is honest, only crashes (with sector-atomic tearing) happen.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// A swarm-testing plan drawn from `seed`: each fault kind is independently switched on
    /// or off, and an enabled one gets a random rate. Same seed, same plan.
    pub fn swarm(seed: u64) -> Self {
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        FaultPlan::swarm_from(&mut rng)
    }

    /// As [`FaultPlan::swarm`], drawing from a caller's generator.
    pub fn swarm_from<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
        // Rates span three orders of magnitude: rare faults let long histories run between
        // them, frequent ones hammer the error paths.
        const RATES: [f64; 4] = [0.001, 0.005, 0.02, 0.1];
        let rate = |rng: &mut R| {
            if rng.random::<bool>() {
                FaultRate::with_probability(RATES[rng.random_range(0..RATES.len())])
            } else {
                FaultRate::never()
            }
        };
        let fsync_loss = rate(rng);
        let fsync_error = rate(rng);
        let write_error = rate(rng);
        let torn_sector = rate(rng);
        let bit_rot = rate(rng);
        let latent_error = rate(rng);
        let misdirect = rate(rng);
        let capacity_bytes =
            if rng.random_range(0..4) == 0 { Some(1u64 << rng.random_range(16..26)) } else { None };
        FaultPlan {
            fsync_loss,
            fsync_error,
            write_error,
            capacity_bytes,
            torn_sector,
            bit_rot,
            latent_error,
            misdirect,
        }
    }

    /// True when no fault can lose or corrupt acknowledged data: only crashes (with tearing at
    /// sector boundaries) and faults that return an error to the caller (write EIO, fsync
    /// EIO, ENOSPC) are possible. Under an honest plan the checker may demand that no
    /// mutation that returned Ok is lost (a family must refuse further mutations after an
    /// fsync error). Lying fsyncs, torn sectors, bit rot, latent errors and misdirected
    /// writes make a plan dishonest.
    pub fn is_honest(&self) -> bool {
        !self.fsync_loss.is_enabled()
            && !self.torn_sector.is_enabled()
            && !self.bit_rot.is_enabled()
            && !self.latent_error.is_enabled()
            && !self.misdirect.is_enabled()
    }

    /// True when no fault at all is enabled (not even error-returning ones).
    pub fn is_none(&self) -> bool {
        self.is_honest()
            && !self.fsync_error.is_enabled()
            && !self.write_error.is_enabled()
            && self.capacity_bytes.is_none()
    }
}

/// One kind of fault of a [`FaultPlan`] (one field): the unit a shrinker removes from a plan.
/// Names are the plan's field names, so a printed kind finds its JSON field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// [`FaultPlan::fsync_loss`] (dishonest).
    FsyncLoss,
    /// [`FaultPlan::fsync_error`] (honest: returns an error).
    FsyncError,
    /// [`FaultPlan::write_error`] (honest).
    WriteError,
    /// [`FaultPlan::capacity_bytes`] (honest: ENOSPC).
    CapacityBytes,
    /// [`FaultPlan::torn_sector`] (dishonest).
    TornSector,
    /// [`FaultPlan::bit_rot`] (dishonest).
    BitRot,
    /// [`FaultPlan::latent_error`] (dishonest).
    LatentError,
    /// [`FaultPlan::misdirect`] (dishonest).
    Misdirect,
}

impl FaultKind {
    /// Every kind, in the plan's field order (the order a shrinker tries them in).
    pub const ALL: [FaultKind; 8] = [
        FaultKind::FsyncLoss,
        FaultKind::FsyncError,
        FaultKind::WriteError,
        FaultKind::CapacityBytes,
        FaultKind::TornSector,
        FaultKind::BitRot,
        FaultKind::LatentError,
        FaultKind::Misdirect,
    ];

    /// The plan's field name of this kind (`fsync_loss`, ..., `capacity_bytes`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::FsyncLoss => "fsync_loss",
            FaultKind::FsyncError => "fsync_error",
            FaultKind::WriteError => "write_error",
            FaultKind::CapacityBytes => "capacity_bytes",
            FaultKind::TornSector => "torn_sector",
            FaultKind::BitRot => "bit_rot",
            FaultKind::LatentError => "latent_error",
            FaultKind::Misdirect => "misdirect",
        }
    }

    /// Whether this kind only ever returns an error to the caller (never loses or corrupts
    /// acknowledged data): see [`FaultPlan::is_honest`].
    pub fn is_honest(self) -> bool {
        matches!(self, FaultKind::FsyncError | FaultKind::WriteError | FaultKind::CapacityBytes)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FaultPlan {
    /// The rate of a rate-driven kind (`None` for [`FaultKind::CapacityBytes`]).
    fn rate(&self, kind: FaultKind) -> Option<&FaultRate> {
        match kind {
            FaultKind::FsyncLoss => Some(&self.fsync_loss),
            FaultKind::FsyncError => Some(&self.fsync_error),
            FaultKind::WriteError => Some(&self.write_error),
            FaultKind::CapacityBytes => None,
            FaultKind::TornSector => Some(&self.torn_sector),
            FaultKind::BitRot => Some(&self.bit_rot),
            FaultKind::LatentError => Some(&self.latent_error),
            FaultKind::Misdirect => Some(&self.misdirect),
        }
    }

    /// Whether the plan can inject faults of `kind`.
    pub fn has(&self, kind: FaultKind) -> bool {
        match self.rate(kind) {
            Some(rate) => rate.is_enabled(),
            None => self.capacity_bytes.is_some(),
        }
    }

    /// The kinds this plan can inject, in [`FaultKind::ALL`] order.
    pub fn kinds(&self) -> Vec<FaultKind> {
        FaultKind::ALL.into_iter().filter(|k| self.has(*k)).collect()
    }

    /// This plan with `kind` switched off and every other field untouched. Each kind draws
    /// from its own generator stream, so the other kinds fire exactly where they did.
    pub fn without(&self, kind: FaultKind) -> FaultPlan {
        let mut plan = self.clone();
        match kind {
            FaultKind::FsyncLoss => plan.fsync_loss = FaultRate::never(),
            FaultKind::FsyncError => plan.fsync_error = FaultRate::never(),
            FaultKind::WriteError => plan.write_error = FaultRate::never(),
            FaultKind::CapacityBytes => plan.capacity_bytes = None,
            FaultKind::TornSector => plan.torn_sector = FaultRate::never(),
            FaultKind::BitRot => plan.bit_rot = FaultRate::never(),
            FaultKind::LatentError => plan.latent_error = FaultRate::never(),
            FaultKind::Misdirect => plan.misdirect = FaultRate::never(),
        }
        plan
    }

    /// This plan made honest: its dishonest kinds switched off, its honest ones (fsync EIO,
    /// write EIO, ENOSPC) kept as they are.
    pub fn honest_part(&self) -> FaultPlan {
        FaultKind::ALL
            .into_iter()
            .filter(|k| !k.is_honest())
            .fold(self.clone(), |p, k| p.without(k))
    }
}

/// One line: `none`, or each enabled kind with its rate
/// (`fsync_error(p=0.02), capacity_bytes(65536), misdirect(p=0.1, at_ops=[3, 9])`).
impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds = self.kinds();
        if kinds.is_empty() {
            return f.write_str("none");
        }
        for (i, kind) in kinds.into_iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match self.rate(kind) {
                None => write!(f, "{kind}({})", self.capacity_bytes.unwrap_or_default())?,
                Some(rate) => {
                    let mut parts = Vec::new();
                    if chance_possible(rate.probability) {
                        parts.push(format!("p={}", rate.probability));
                    }
                    if !rate.at_ops.is_empty() {
                        parts.push(format!("at_ops={:?}", rate.at_ops));
                    }
                    write!(f, "{kind}({})", parts.join(", "))?;
                }
            }
        }
        Ok(())
    }
}

/// How many faults of each kind a disk has injected (and how many crashes it has had), for
/// a soak summary. Counters only grow; a fork copies them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    /// Crashes (power losses) recovered from.
    pub crashes: u64,
    /// Unsynced operations discarded by crashes.
    pub crash_ops_dropped: u64,
    /// Unsynced operations kept by crashes.
    pub crash_ops_kept: u64,
    /// Kept writes torn at sector boundaries, keeping a prefix of their sectors (honest).
    pub torn_writes_prefix: u64,
    /// Kept writes torn at sector boundaries, keeping a suffix of their sectors (honest).
    pub torn_writes_suffix: u64,
    /// Kept writes torn at sector boundaries, keeping another subset of sectors (honest).
    pub torn_writes_subset: u64,
    /// Torn writes whose pieces were finer than a sector (their file declared a finer
    /// write-atomicity unit; counted within the three patterns above).
    pub torn_writes_sub_sector: u64,
    /// Dirty data written back without a sync because a pending list reached its bound.
    pub writebacks: u64,
    /// Syncs that lied (returned Ok, made nothing durable).
    pub fsync_losses: u64,
    /// Syncs that failed with EIO and dropped dirty state.
    pub fsync_errors: u64,
    /// Writes and `set_len` calls failed with EIO.
    pub write_errors: u64,
    /// Calls failed with ENOSPC.
    pub no_space_errors: u64,
    /// Sectors left half old / half new or garbage at a crash.
    pub torn_sectors: u64,
    /// Bits flipped in durable data.
    pub bit_rots: u64,
    /// Sectors made unreadable.
    pub latent_errors: u64,
    /// Writes that landed at the wrong offset.
    pub misdirects: u64,
}

impl FaultStats {
    /// Total number of injected faults (crashes and honest tearing excluded).
    pub fn faults_total(&self) -> u64 {
        self.fsync_losses
            + self.fsync_errors
            + self.write_errors
            + self.no_space_errors
            + self.torn_sectors
            + self.bit_rots
            + self.latent_errors
            + self.misdirects
    }
}

/// A fault laid over one sector of a file: what a read of that sector sees instead of the
/// (pristine) image. Removed when the sector is rewritten or cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Overlay {
    /// The sector reads as these bytes (torn sector, misdirected write). Always one sector.
    Replace(Vec<u8>),
    /// One bit of the sector reads flipped (bit rot).
    FlipBit { byte_idx: u32, bit_idx: u8 },
    /// Every read touching the sector fails with EIO (latent sector error).
    Unreadable,
}

/// Sector index -> overlay, per file.
pub(super) type Overlays = BTreeMap<u64, Overlay>;

/// Where a disk's random decisions (fault firings, crash choices) come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStreams {
    /// One generator stream per concern over the whole run, from the disk's first operation:
    /// which operation a fault hits depends on every operation before it, so removing an
    /// earlier call moves every later fault. Faults may fire from the first operation on.
    #[default]
    Run,
    /// One set of streams per step: the caller opens each step with
    /// [`SimDisk::begin_step`](super::SimDisk::begin_step)`(key)`, and every decision until
    /// the next step draws from streams keyed by the disk's seed and `key` alone. A step
    /// meets the same faults and crash choices whatever other steps ran before it (as long
    /// as it makes the same calls), so removing other steps leaves it its faults. Before the
    /// first step no fault fires (a fresh instance's creation is never refused by one).
    Steps,
}

/// One generator stream per concern, all keyed by the disk's seed: crash choices never shift
/// when a fault is switched off, which keeps shrinking by dropping faults meaningful.
#[derive(Clone, Debug)]
pub(super) struct Rngs {
    /// Crash choices: which unsynced operations survive, how writes tear.
    pub crash: ChaCha8Rng,
    /// Fault decisions, one stream per kind.
    pub fsync_loss: ChaCha8Rng,
    pub fsync_error: ChaCha8Rng,
    pub write_error: ChaCha8Rng,
    pub torn_sector: ChaCha8Rng,
    pub bit_rot: ChaCha8Rng,
    pub latent_error: ChaCha8Rng,
    pub misdirect: ChaCha8Rng,
}

impl Rngs {
    /// The streams of a whole run ([`FaultStreams::Run`]).
    pub fn new(seed: u64) -> Self {
        Rngs::numbered(seed, 0)
    }

    /// The streams of the step keyed `key` ([`FaultStreams::Steps`]): streams of their own,
    /// apart from the whole-run streams and every other key's.
    pub fn for_step(seed: u64, key: u64) -> Self {
        Rngs::numbered(seed, key.wrapping_add(1) << 4)
    }

    /// Stream `base + n` for concern `n` (1..=8).
    fn numbered(seed: u64, base: u64) -> Self {
        let stream = |n: u64| {
            let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
            rng.set_stream(base | n);
            rng
        };
        Rngs {
            crash: stream(1),
            fsync_loss: stream(2),
            fsync_error: stream(3),
            write_error: stream(4),
            torn_sector: stream(5),
            bit_rot: stream(6),
            latent_error: stream(7),
            misdirect: stream(8),
        }
    }
}

fn chance_possible(probability: f64) -> bool {
    probability > 0.0
}

/// A biased coin that never panics: NaN and values <= 0 are false without drawing, values
/// >= 1 are true (after drawing, to keep the stream's position independent of the value).
pub(super) fn chance<R: rand::Rng + ?Sized>(rng: &mut R, probability: f64) -> bool {
    if !chance_possible(probability) {
        return false;
    }
    rng.random::<f64>() < probability
}

/// A uniform index in `0..n`, or 0 when `n` is 0 (never panics).
pub(super) fn index_below<R: rand::Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    if n <= 1 {
        0
    } else {
        rng.random_range(0..n)
    }
}
