//! The `redb://` family next to the `local://` family, both on SimDisk, in one run (issue 5):
//! append throughput with the same batch shapes (one durable call per batch; the log is cut
//! behind it now and then so both stay a steady size) and crash-recover cycles per second
//! (power loss with an append in flight, reopen with the family's recovery, read the range
//! back, append once; rounds of 256 cycles from a fresh disk holding 1024 entries), each
//! printed for both families with the ratio redb / local.
//!
//! ```text
//! cargo bench --bench redb_family
//! QK_BENCH_SECONDS=0.5 QK_BENCH_ROUNDS=1 cargo bench --bench redb_family   # quick
//! ```
//!
//! Every measurement runs `QK_BENCH_SECONDS` (default 2) after a short warm-up, on a fresh
//! disk; the families alternate, `QK_BENCH_ROUNDS` times (default 3), and the median is
//! reported, so a machine shared with other work biases neither side. Lines starting with
//! `QK-RESULT` are for `scripts/bench.sh`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quorumkit_storage::contract::{Entry, Family, RaftStorage};
use quorumkit_storage::families::local::LocalFamily;
use quorumkit_storage::families::redb::{RedbFamily, RedbOptions};
use quorumkit_storage::vfs::{SimDisk, SimDiskOptions, VfsHandle};

fn disk() -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed: 1, sector_size: 4096, ..SimDiskOptions::default() })
}

fn open(family: &dyn Family, location: &str, disk: &Arc<SimDisk>) -> Box<dyn RaftStorage> {
    let vfs: VfsHandle = disk.clone();
    family.open(location, vfs).expect("open")
}

fn batch(from: u64, n: u64, len: usize) -> Vec<Entry> {
    (from..from + n).map(|i| Entry::data(i, 1, vec![(i % 251) as u8; len])).collect()
}

/// A family under test and where it lives on the disk.
#[derive(Clone)]
struct Subject {
    name: &'static str,
    family: Arc<dyn Family>,
    location: &'static str,
}

fn local() -> Subject {
    Subject { name: "local", family: Arc::new(LocalFamily::default()), location: "bench/local" }
}

fn redb(two_phase_commit: bool) -> Subject {
    let options = RedbOptions { two_phase_commit, ..RedbOptions::default() };
    Subject {
        name: if two_phase_commit { "redb" } else { "redb-1pc" },
        family: Arc::new(RedbFamily::with_options(options)),
        location: "bench/raft.redb",
    }
}

/// Calls `step` (which returns how many elements it did) for `seconds` after a warm-up of a
/// fifth of that; returns elements per second.
fn rate(seconds: f64, mut step: impl FnMut() -> u64) -> f64 {
    let warm_up = Instant::now();
    while warm_up.elapsed().as_secs_f64() < seconds / 5.0 {
        step();
    }
    let (start, mut done) = (Instant::now(), 0u64);
    let limit = Duration::from_secs_f64(seconds);
    while start.elapsed() < limit {
        done += step();
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Entries per second appending batches of `n` entries of `len` bytes.
fn append_rate(subject: &Subject, n: u64, len: usize, seconds: f64) -> f64 {
    let disk = disk();
    let mut instance = open(subject.family.as_ref(), subject.location, &disk);
    rate(seconds, || {
        let from = instance.last_index() + 1;
        instance.append(black_box(&batch(from, n, len))).expect("append");
        if from % 4096 < n {
            instance.truncate_prefix(from.saturating_sub(1024)).expect("truncate_prefix");
        }
        n
    })
}

/// Cycles one crash-recover measurement round runs on a fresh disk.
const CYCLES_PER_ROUND: u64 = 256;

/// Cycles per second of: an append whose call is cut by a power loss part-way, a reopen
/// (recovery after an unclean shutdown), reading the range and the last entry, one append.
/// Recovery reads the log, whose size the family decides (local keeps cut entries in its
/// open segment until the segment is full, as braft does), so every round of
/// `CYCLES_PER_ROUND` cycles starts again from a fresh disk with 1024 entries of 256 B:
/// the rate does not depend on how long the measurement ran. Set-up is not timed.
fn crash_recover_rate(subject: &Subject, seconds: f64) -> f64 {
    let family = subject.family.as_ref();
    let round = || {
        let disk = disk();
        let mut instance = open(family, subject.location, &disk);
        for k in 0..64 {
            instance.append(&batch(k * 16 + 1, 16, 256)).expect("prefill");
        }
        let start = Instant::now();
        let mut live = Some(instance);
        for _ in 0..CYCLES_PER_ROUND {
            let mut instance = live.take().unwrap_or_else(|| open(family, subject.location, &disk));
            let from = instance.last_index() + 1;
            disk.crash_after_op(disk.op_count() + 3);
            let _ = instance.append(&batch(from, 4, 256));
            drop(instance);
            disk.crash();
            let mut reopened = open(family, subject.location, &disk);
            let last = reopened.last_index();
            black_box(reopened.entry(last).expect("read after recovery"));
            reopened.append(&batch(last + 1, 1, 256)).expect("append after recovery");
            live = Some(reopened);
        }
        start.elapsed().as_secs_f64()
    };
    round(); // warm-up
    let (mut cycles, mut timed) = (0, 0.0);
    while timed < seconds {
        timed += round();
        cycles += CYCLES_PER_ROUND;
    }
    cycles as f64 / timed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Measures `measure` on local and on each of `others`, alternating, and prints each with
/// its ratio to local.
fn compare(case: &str, unit: &str, others: &[Subject], measure: impl Fn(&Subject) -> f64) {
    let rounds = env_number("QK_BENCH_ROUNDS", 3.0).max(1.0) as usize;
    let mut subjects = vec![local()];
    subjects.extend(others.iter().cloned());
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    for _ in 0..rounds {
        for (subject, rates) in subjects.iter().zip(&mut rates) {
            rates.push(measure(subject));
        }
    }
    let rates: Vec<f64> = rates.into_iter().map(median).collect();
    for (subject, rate) in subjects.iter().zip(&rates) {
        let ratio = match subject.name {
            "local" => String::new(),
            name => format!("  ratio {name} / local {:.2}", rate / rates[0]),
        };
        println!("  {case:<20} {:<9} {rate:>11.0} {unit}{ratio}", subject.name);
        println!("QK-RESULT redb_family.{case}.{} {rate:.1} {unit}", subject.name);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter is not supported (it all runs).
    let seconds = env_number("QK_BENCH_SECONDS", 2.0);
    let rounds = env_number("QK_BENCH_ROUNDS", 3.0).max(1.0) as usize;
    println!(
        "redb vs local on SimDisk (median of {rounds} alternating rounds of {seconds} s each)"
    );
    let redbs = [redb(true), redb(false)];
    for (n, len) in [(1, 256), (32, 256)] {
        let case = format!("append_{n}x{len}B");
        compare(&case, "entries/s", &redbs, |s| append_rate(s, n, len, seconds));
    }
    compare("crash_recover_cycle", "cycles/s", &redbs, |s| crash_recover_rate(s, seconds));
}
