//! The `redb://` family on SimDisk: append throughput (one durable transaction per batch) and
//! crash-recover cycles per second (power loss with a commit in flight, reopen with redb's
//! repair, read the range back, append once). Run with `cargo bench --bench redb_family`;
//! throughput is printed as elements (entries or cycles) per second. The local family's
//! numbers go next to these in the same run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorumkit_storage::contract::{Entry, Family, RaftStorage};
use quorumkit_storage::families::redb::{RedbFamily, RedbOptions};
use quorumkit_storage::vfs::{SimDisk, SimDiskOptions, VfsHandle};

const LOCATION: &str = "bench/raft.redb";

fn disk() -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed: 1, sector_size: 4096, ..SimDiskOptions::default() })
}

fn open(family: &RedbFamily, disk: &Arc<SimDisk>) -> Box<dyn RaftStorage> {
    let vfs: VfsHandle = disk.clone();
    family.open(LOCATION, vfs).expect("open")
}

fn batch(from: u64, n: u64, len: usize) -> Vec<Entry> {
    (from..from + n).map(|i| Entry::data(i, 1, vec![(i % 251) as u8; len])).collect()
}

/// Appends of `n` entries of `len` bytes, each batch one durable commit; the log is cut
/// behind it now and then so the database stays a steady size.
fn bench_append(c: &mut Criterion, name: &str, family: RedbFamily, n: u64, len: usize) {
    let disk = disk();
    let mut instance = open(&family, &disk);
    let mut group = c.benchmark_group("redb_family");
    group.throughput(Throughput::Elements(n));
    group.bench_function(format!("append_{n}x{len}B_{name}"), |b| {
        b.iter(|| {
            let from = instance.last_index() + 1;
            instance.append(black_box(&batch(from, n, len))).unwrap();
            if from % 4096 < n {
                instance.truncate_prefix(from.saturating_sub(1024)).unwrap();
            }
        })
    });
    group.finish();
}

fn append(c: &mut Criterion) {
    let one_phase =
        RedbFamily::with_options(RedbOptions { two_phase_commit: false, ..RedbOptions::default() });
    bench_append(c, "2pc", RedbFamily::new(), 1, 256);
    bench_append(c, "2pc", RedbFamily::new(), 32, 256);
    bench_append(c, "1pc", one_phase, 32, 256);
}

/// One cycle: an append whose commit is cut by a power loss part-way, then a reopen (redb
/// repairs after an unclean shutdown), reading the range and the last entry, and one append.
fn crash_recover(c: &mut Criterion) {
    let family = RedbFamily::new();
    let disk = disk();
    let mut instance = open(&family, &disk);
    for k in 0..64 {
        instance.append(&batch(k * 16 + 1, 16, 256)).unwrap();
    }
    let mut live = Some(instance);
    let mut group = c.benchmark_group("redb_family");
    group.throughput(Throughput::Elements(1));
    group.bench_function("crash_recover_cycle_1024_entries", |b| {
        b.iter(|| {
            let mut instance = live.take().unwrap_or_else(|| open(&family, &disk));
            let from = instance.last_index() + 1;
            disk.crash_after_op(disk.op_count() + 3);
            let _ = instance.append(&batch(from, 4, 256));
            drop(instance);
            disk.crash();
            let mut reopened = open(&family, &disk);
            let last = reopened.last_index();
            black_box(reopened.entry(last).unwrap());
            reopened.append(&batch(last + 1, 1, 256)).unwrap();
            if last > 4096 {
                reopened.truncate_prefix(last - 1024).unwrap();
            }
            live = Some(reopened);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = append, crash_recover
}
criterion_main!(benches);
