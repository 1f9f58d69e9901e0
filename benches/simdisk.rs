//! SimDisk's own cost, so the harness's throughput can be attributed: small writes with
//! syncs, writes alone, and crash-and-reopen cycles. Each runs again on the real file system
//! (`OsVfs` in a temporary directory) as the baseline: `simdisk/X` next to `osvfs/X` (on
//! `OsVfs` there is no power loss, so its cycle is a close, reopen and read). Run with
//! `cargo bench --bench simdisk`; throughput is printed as elements (operations or cycles)
//! per second. `scripts/bench.sh` passes `--output-format bencher` and reads the ns/iter.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorumkit_storage::vfs::{OpenOptions, OsVfs, SimDisk, SimDiskOptions, Vfs};

/// Appends wrap around at this offset so the file stays a realistic segment size.
const SEGMENT_LEN: u64 = 8 << 20;

/// A file system under test: its name, the `Vfs`, the directory to work in, and how to cut
/// the power (`None`: no power loss, a plain close and reopen).
struct Target {
    name: &'static str,
    vfs: Arc<dyn Vfs>,
    root: PathBuf,
    crash: Option<Arc<SimDisk>>,
    _dir: Option<tempfile::TempDir>,
}

fn targets() -> Vec<Target> {
    let disk =
        SimDisk::new(SimDiskOptions { seed: 1, sector_size: 4096, ..SimDiskOptions::default() });
    let dir = tempfile::tempdir().expect("temporary directory");
    vec![
        Target {
            name: "simdisk",
            vfs: disk.clone(),
            root: PathBuf::new(),
            crash: Some(disk),
            _dir: None,
        },
        Target {
            name: "osvfs",
            vfs: Arc::new(OsVfs::new()),
            root: dir.path().to_path_buf(),
            crash: None,
            _dir: Some(dir),
        },
    ]
}

/// One `write_at` of `len` bytes appended to a segment, then `sync`: a Raft append in sync
/// mode.
fn bench_write_sync(c: &mut Criterion, t: &Target, len: usize) {
    let path = t.root.join(format!("segment_{len}"));
    let file = t.vfs.open(&path, OpenOptions::CREATE).unwrap();
    t.vfs.sync_dir(&t.root).unwrap();
    let record = vec![0x5Au8; len];
    let mut offset = 0u64;
    let mut group = c.benchmark_group(t.name);
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
    for t in targets() {
        bench_write_sync(c, &t, 128);
        bench_write_sync(c, &t, 4096);
    }
}

/// Writes without sync (the page-cache path alone), bounded by writeback.
fn write_only(c: &mut Criterion) {
    for t in targets() {
        let file = t.vfs.open(&t.root.join("segment"), OpenOptions::CREATE).unwrap();
        let record = vec![0x5Au8; 128];
        let mut offset = 0u64;
        let mut group = c.benchmark_group(t.name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("write_128B_no_sync", |b| {
            b.iter(|| {
                file.write_at(black_box(&record), offset).unwrap();
                offset = (offset + 128) % SEGMENT_LEN;
            })
        });
        group.finish();
    }
}

/// A crash with a few unsynced writes pending on a disk holding four 1 MiB segments and a
/// meta file, then reopening a segment and reading its head: one crash-recover cycle.
fn crash_and_reopen(c: &mut Criterion) {
    for t in targets() {
        let at = |name: &str| t.root.join(name);
        t.vfs.create_dir(&at("log")).unwrap();
        for i in 0..4 {
            let file = t.vfs.open(&at(&format!("log/segment_{i}")), OpenOptions::CREATE).unwrap();
            file.write_at(&vec![i as u8; 1 << 20], 0).unwrap();
            file.sync().unwrap();
        }
        t.vfs.sync_dir(&at("log")).unwrap();
        let meta = t.vfs.open(&at("meta"), OpenOptions::CREATE).unwrap();
        meta.write_at(b"term=1", 0).unwrap();
        meta.sync().unwrap();
        t.vfs.sync_dir(&t.root).unwrap();
        drop(meta);
        let tail_path = at("log/segment_3");
        let mut group = c.benchmark_group(t.name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("crash_and_reopen_4MiB", |b| {
            b.iter(|| {
                let tail = t.vfs.open(&tail_path, OpenOptions::WRITE).unwrap();
                tail.write_at(&[7u8; 300], (1 << 20) - 300).unwrap();
                tail.write_at(&[8u8; 300], 1 << 20).unwrap();
                drop(tail);
                if let Some(disk) = &t.crash {
                    disk.crash();
                }
                read_head(t.vfs.as_ref(), &tail_path);
            })
        });
        group.finish();
    }
}

fn read_head(vfs: &dyn Vfs, path: &Path) {
    let reopened = vfs.open(path, OpenOptions::READ).unwrap();
    let mut head = [0u8; 64];
    reopened.read_at(&mut head, 0).unwrap();
    black_box(head);
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
