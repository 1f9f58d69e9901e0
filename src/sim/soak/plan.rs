//! What each seed of a soak runs under: which seeds ([`SeedPlan`], [`Shard`]), which fault
//! plan ([`FaultMode`], [`fault_plan_for`]) and which simulated disk ([`disk_for`]) — pure
//! functions of the seed, so a replay of a seed rebuilds all three.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::vfs::{FaultPlan, FaultStreams, SimDisk, SimDiskOptions};
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

/// The fault plan seed `seed` runs under in `mode`: a pure function of both.
pub fn fault_plan_for(seed: u64, mode: FaultMode) -> FaultPlan {
    let disk_seed = seed ^ 0x5eed_d15c_0000_0000;
    match mode {
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
    SimDisk::new(SimDiskOptions {
        seed: disk_seed_for(seed),
        faults,
        fault_streams: SOAK_FAULT_STREAMS,
        ..SimDiskOptions::default()
    })
}

/// Where the soak's disks draw faults and crash choices from: per step of the history.
pub const SOAK_FAULT_STREAMS: FaultStreams = FaultStreams::Steps;
