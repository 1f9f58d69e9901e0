//! What each seed of a soak runs under: which seeds ([`SeedPlan`], [`Shard`]), which fault
//! plan ([`FaultMode`], [`fault_plan_for`]) and which simulated disk ([`disk_for`]) — pure
//! functions of the seed, so a replay of a seed rebuilds all three.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::vfs::{CrashPersistence, FaultPlan, FaultRate, FaultStreams, SimDisk, SimDiskOptions};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which seeds a soak runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedPlan {
    /// Seeds `start..end`, in order.
    Range {
        /// First seed.
        start: u64,
        /// One past the last seed.
        end: u64,
    },
    /// Seeds `start, start+1, ...` until the caller says stop.
    Open {
        /// First seed.
        start: u64,
    },
}

/// Parts of the fault model and of the harness a soak can switch off, to measure what each
/// is worth (`qk soak --ablate`, the ablation table of `scripts/canaries.sh`). Each field is
/// true when that part is switched off; the default switches nothing off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ablation {
    /// `torn-writes`: a crash never tears a write (nor leaves a torn sector).
    pub torn_writes: bool,
    /// `subset-persistence`: a crash keeps a prefix of the pending operations, in the order
    /// they were issued, instead of any subset (and tears nothing).
    pub subset_persistence: bool,
    /// `lost-set-len`: a crash always keeps a pending `set_len`.
    pub lost_set_len: bool,
    /// `media-faults`: no bit rot, latent sector errors, misdirected writes, lying fsyncs or
    /// torn sectors, whatever the fault mode draws.
    pub media_faults: bool,
    /// `exports`: histories have no export cuts.
    pub exports: bool,
    /// `recovery-crashes`: no power loss strikes while a subject opens.
    #[serde(default)]
    pub recovery_crashes: bool,
}

impl Ablation {
    /// Every part's name, as `--ablate` spells it.
    pub const NAMES: [&'static str; 6] = [
        "torn-writes",
        "subset-persistence",
        "lost-set-len",
        "media-faults",
        "exports",
        "recovery-crashes",
    ];

    /// Parses a comma-separated list of [`Ablation::NAMES`] (empty: nothing off).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut a = Ablation::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "torn-writes" => a.torn_writes = true,
                "subset-persistence" => a.subset_persistence = true,
                "lost-set-len" => a.lost_set_len = true,
                "media-faults" => a.media_faults = true,
                "exports" => a.exports = true,
                "recovery-crashes" => a.recovery_crashes = true,
                other => {
                    return Err(format!(
                        "unknown part {other:?} (expected one of: {})",
                        Ablation::NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(a)
    }

    /// Whether nothing is switched off.
    pub fn is_none(&self) -> bool {
        *self == Ablation::default()
    }

    /// The fault plan with the switched-off kinds removed.
    pub fn plan(&self, mut plan: FaultPlan) -> FaultPlan {
        if self.media_faults {
            plan.bit_rot = FaultRate::never();
            plan.latent_error = FaultRate::never();
            plan.misdirect = FaultRate::never();
            plan.fsync_loss = FaultRate::never();
            plan.torn_sector = FaultRate::never();
        }
        if self.torn_writes || self.subset_persistence {
            plan.torn_sector = FaultRate::never();
        }
        plan
    }

    /// The disk's crash model with the switched-off parts removed.
    fn disk_options(&self, options: SimDiskOptions) -> SimDiskOptions {
        SimDiskOptions {
            crash_tear_probability: if self.torn_writes {
                0.0
            } else {
                options.crash_tear_probability
            },
            crash_persistence: if self.subset_persistence {
                CrashPersistence::Prefix
            } else {
                options.crash_persistence
            },
            crash_keeps_set_len: self.lost_set_len || options.crash_keeps_set_len,
            ..options
        }
    }
}

impl std::fmt::Display for Ablation {
    /// The `--ablate` spelling: the switched-off parts' names, comma-separated.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = [
            self.torn_writes,
            self.subset_persistence,
            self.lost_set_len,
            self.media_faults,
            self.exports,
            self.recovery_crashes,
        ];
        let names: Vec<&str> =
            Ablation::NAMES.iter().zip(on).filter(|(_, off)| *off).map(|(n, _)| *n).collect();
        f.write_str(&names.join(","))
    }
}

/// Splits the seed space across machines: a seed belongs to shard `index` of `count` when
/// `seed % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

/// Which fault plans a soak's seeds run under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// The default: [`FaultMode::Honest`]'s plan for most seeds, and for one seed in every
    /// block of [`MEDIA_SHARE`] (see [`media_plan_for`]) media faults instead (bit rot,
    /// latent sector errors, misdirected writes, lying fsyncs: at least one of them, with
    /// power losses), judged by the oracle they allow
    /// (the right value or a typed corruption or I/O error, never a wrong value; a store may
    /// roll back to a state it held itself, in a cut the family could not tell from the
    /// truth).
    Default,
    /// No fault at all: power losses (with torn writes) only.
    None,
    /// Honest faults only, drawn per seed: power losses with torn writes, and faults that
    /// return an error (fsync EIO, write EIO, ENOSPC). Nothing acknowledged may be lost.
    Honest,
    /// A swarm-drawn fault plan for every seed.
    Swarm,
    /// Half the seeds honest, half swarm (drawn from the seed).
    Mixed,
}

/// One seed in this many runs with media faults under [`FaultMode::Default`].
pub const MEDIA_SHARE: u32 = 6;

/// The media fault kinds, as bit sets (1 bit rot, 2 latent sector errors, 4 misdirected
/// writes, 8 lying fsyncs), in the order successive media seeds take them: every one of the 15
/// non-empty combinations once per 15 media seeds, all four first.
const MEDIA_KINDS: [u32; 15] = [15, 1, 2, 4, 8, 3, 12, 5, 10, 6, 9, 7, 11, 13, 14];

/// Key of the stream that draws [`FaultMode::Default`]'s media-fault rates (its own, so the
/// honest seeds' plans are exactly [`FaultMode::Honest`]'s).
const MEDIA_STREAM: u64 = 0x3ed1_a0f0_0000_0000;

/// The media-fault plan of seed `seed` under [`FaultMode::Default`], if it is one of the
/// share that gets one.
///
/// Media seeds are stratified, not drawn: exactly one seed in every block of
/// [`MEDIA_SHARE`] consecutive seeds, at a position that rotates from block to block (so any
/// short range holds its share, and every shard `i/N` with `N` up to [`MEDIA_SHARE`] gets
/// some), and the kinds cycle through [`MEDIA_KINDS`] so that every combination comes up in
/// any 15 media seeds. Only the rates are drawn from the seed.
pub fn media_plan_for(seed: u64) -> Option<FaultPlan> {
    let share = u64::from(MEDIA_SHARE);
    let block = seed / share;
    if seed % share != block % share {
        return None;
    }
    let kinds = MEDIA_KINDS[(block % MEDIA_KINDS.len() as u64) as usize];
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ MEDIA_STREAM);
    const RATES: [f64; 3] = [0.005, 0.01, 0.03];
    let mut rate = |bit: u32| {
        let r = RATES[rng.random_range(0..RATES.len())];
        if kinds & bit != 0 {
            FaultRate::with_probability(r)
        } else {
            FaultRate::never()
        }
    };
    let (bit_rot, latent_error, misdirect, fsync_loss) = (rate(1), rate(2), rate(4), rate(8));
    Some(FaultPlan { bit_rot, latent_error, misdirect, fsync_loss, ..FaultPlan::none() })
}

/// The fault plan seed `seed` runs under in `mode`: a pure function of both.
pub fn fault_plan_for(seed: u64, mode: FaultMode) -> FaultPlan {
    let disk_seed = seed ^ 0x5eed_d15c_0000_0000;
    match mode {
        FaultMode::Default => {
            media_plan_for(seed).unwrap_or_else(|| fault_plan_for(seed, FaultMode::Honest))
        }
        FaultMode::None => FaultPlan::none(),
        FaultMode::Honest => {
            let swarm = FaultPlan::swarm(disk_seed);
            FaultPlan {
                fsync_error: swarm.fsync_error,
                write_error: swarm.write_error,
                capacity_bytes: swarm.capacity_bytes,
                ..FaultPlan::none()
            }
        }
        FaultMode::Swarm => FaultPlan::swarm(disk_seed),
        FaultMode::Mixed => {
            let mut rng = ChaCha8Rng::seed_from_u64(disk_seed);
            if rng.random_bool(0.5) {
                FaultPlan::none()
            } else {
                FaultPlan::swarm_from(&mut rng)
            }
        }
    }
}

/// The seed of the simulated disk that history seed `seed` runs on.
pub fn disk_seed_for(seed: u64) -> u64 {
    seed ^ 0xd15c
}

/// The simulated disk seed `seed` runs on.
pub fn disk_for(seed: u64, mode: FaultMode) -> Arc<SimDisk> {
    disk_with_plan(seed, fault_plan_for(seed, mode))
}

/// The simulated disk seed `seed` runs on, under `faults` instead of its mode's plan (a
/// shrunk plan): the same disk seed, so every fault kind left fires where it did.
///
/// Its faults and crash choices draw from per-step streams ([`SOAK_FAULT_STREAMS`]): no
/// fault fires while the fresh instance is created (a fault must not eat a seed), and a
/// fault stays with the op it hit when shrinking removes others.
pub fn disk_with_plan(seed: u64, faults: FaultPlan) -> Arc<SimDisk> {
    ablated_disk(seed, faults, Ablation::default())
}

/// [`disk_with_plan`] with the parts `ablation` switches off removed from its crash model
/// (the plan is taken as given: see [`Ablation::plan`]).
pub fn ablated_disk(seed: u64, faults: FaultPlan, ablation: Ablation) -> Arc<SimDisk> {
    let sector_size = sector_size_for(seed);
    SimDisk::new(ablation.disk_options(SimDiskOptions {
        seed: disk_seed_for(seed),
        faults,
        sector_size,
        fault_streams: SOAK_FAULT_STREAMS,
        ..SimDiskOptions::default()
    }))
}

/// The sector size of seed `seed`'s disk: 512 bytes for half the seeds, else 4 KiB (drawn
/// from its own stream). With 4 KiB sectors nearly every append is one sector, written
/// whole or not at all, so a crash never tears a log's tail; 512-byte sectors tear them.
pub fn sector_size_for(seed: u64) -> u32 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ec7_0000_0000_0000);
    if rng.random_bool(0.5) {
        512
    } else {
        4096
    }
}

/// Where the soak's disks draw faults and crash choices from: per step of the history.
pub const SOAK_FAULT_STREAMS: FaultStreams = FaultStreams::Steps;

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_of(plan: &FaultPlan) -> u32 {
        let on = |rate: &FaultRate| rate.is_enabled();
        u32::from(on(&plan.bit_rot))
            | u32::from(on(&plan.latent_error)) << 1
            | u32::from(on(&plan.misdirect)) << 2
            | u32::from(on(&plan.fsync_loss)) << 3
    }

    #[test]
    fn every_block_of_seeds_holds_one_media_seed_and_every_shard_gets_some() {
        let share = u64::from(MEDIA_SHARE);
        for block in 0..100u64 {
            let media = (block * share..(block + 1) * share)
                .filter(|&seed| media_plan_for(seed).is_some())
                .count();
            assert_eq!(media, 1, "block {block}");
        }
        for count in 1..=share {
            for index in 0..count {
                let hits = (0..share * share)
                    .filter(|seed| seed % count == index && media_plan_for(*seed).is_some())
                    .count();
                assert!(hits > 0, "shard {index}/{count} gets no media seed");
            }
        }
    }

    #[test]
    fn fifteen_media_seeds_in_a_row_take_every_combination_of_kinds() {
        let kinds: Vec<u32> = (0..15 * u64::from(MEDIA_SHARE))
            .filter_map(media_plan_for)
            .map(|plan| kinds_of(&plan))
            .collect();
        let mut sorted = kinds.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..16).collect::<Vec<u32>>(), "{kinds:?}");
        assert_eq!(kinds[0], 15, "the first media seed has every kind");
    }
}
