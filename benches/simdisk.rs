//! SimDisk's own cost, so the harness's throughput can be attributed: small writes with
//! syncs, and crash-and-reopen cycles. Run with `cargo bench --bench simdisk`; throughput
//! is printed as elements (operations or cycles) per second.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorumkit_storage::vfs::{OpenOptions, SimDisk, SimDiskOptions, Vfs};

/// Appends wrap around at this offset so the file stays a realistic segment size.
const SEGMENT_LEN: u64 = 8 << 20;

fn disk() -> std::sync::Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed: 1, sector_size: 4096, ..SimDiskOptions::default() })
}

/// One `write_at` of `len` bytes appended to a segment, then `sync`: a Raft append in sync
/// mode.
fn bench_write_sync(c: &mut Criterion, len: usize) {
    let disk = disk();
    let file = disk.open(Path::new("segment"), OpenOptions::CREATE).unwrap();
    disk.sync_dir(Path::new("")).unwrap();
    let record = vec![0x5Au8; len];
    let mut offset = 0u64;
    let mut group = c.benchmark_group("simdisk");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("write_{len}B_then_sync"), |b| {
        b.iter(|| {
            file.write_at(black_box(&record), offset).unwrap();
            file.sync().unwrap();
            offset = (offset + len as u64) % SEGMENT_LEN;
        })
    });
    group.finish();
}

fn write_sync(c: &mut Criterion) {
    bench_write_sync(c, 128);
    bench_write_sync(c, 4096);
}

/// Writes without sync (the page-cache path alone), bounded by writeback.
fn write_only(c: &mut Criterion) {
    let disk = disk();
    let file = disk.open(Path::new("segment"), OpenOptions::CREATE).unwrap();
    let record = vec![0x5Au8; 128];
    let mut offset = 0u64;
    let mut group = c.benchmark_group("simdisk");
    group.throughput(Throughput::Elements(1));
    group.bench_function("write_128B_no_sync", |b| {
        b.iter(|| {
            file.write_at(black_box(&record), offset).unwrap();
            offset = (offset + 128) % SEGMENT_LEN;
        })
    });
    group.finish();
}

/// A crash with a few unsynced writes pending on a disk holding four 1 MiB segments and a
/// meta file, then reopening a segment and reading its head: one crash-recover cycle.
fn crash_and_reopen(c: &mut Criterion) {
    let disk = disk();
    disk.create_dir(Path::new("log")).unwrap();
    for i in 0..4 {
        let name = format!("log/segment_{i}");
        let file = disk.open(Path::new(&name), OpenOptions::CREATE).unwrap();
        file.write_at(&vec![i as u8; 1 << 20], 0).unwrap();
        file.sync().unwrap();
    }
    disk.sync_dir(Path::new("log")).unwrap();
    let meta = disk.open(Path::new("meta"), OpenOptions::CREATE).unwrap();
    meta.write_at(b"term=1", 0).unwrap();
    meta.sync().unwrap();
    disk.sync_dir(Path::new("")).unwrap();
    drop(meta);
    let mut group = c.benchmark_group("simdisk");
    group.throughput(Throughput::Elements(1));
    group.bench_function("crash_and_reopen_4MiB", |b| {
        b.iter(|| {
            let tail = disk.open(Path::new("log/segment_3"), OpenOptions::WRITE).unwrap();
            tail.write_at(&[7u8; 300], (1 << 20) - 300).unwrap();
            tail.write_at(&[8u8; 300], 1 << 20).unwrap();
            disk.crash();
            let reopened = disk.open(Path::new("log/segment_3"), OpenOptions::READ).unwrap();
            let mut head = [0u8; 64];
            reopened.read_at(&mut head, 0).unwrap();
            black_box(head);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = write_sync, write_only, crash_and_reopen
}
criterion_main!(benches);
