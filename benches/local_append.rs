//! The `local://` family on the real disk (`OsVfs`) next to tikv's `raft-engine` 0.4, in one
//! run, under the same sync policy: 4 KiB entries, 32 per batch, one fsync per batch.
//! Prints throughput for both and their ratio, then the local family's open (recovery)
//! speed over a log of at least 256 MiB, with raft-engine's recovery of the same data for
//! context.
//!
//! Run with `cargo bench --bench local_append --features bench-raft-engine` (raft-engine is
//! an optional dependency so that ordinary builds do not compile it). `QK_BENCH_DIR` picks
//! the directory (default: the system temp directory); `QK_BENCH_BATCHES` the number of
//! batches of the append run (default 1000); `QK_BENCH_RECOVERY_MIB` the size of the log the
//! recovery run opens (default 256). Lines starting with `QK-RESULT` are for
//! `scripts/bench.sh`.
//!
//! raft-engine stores protobuf messages; the entries here are `protobuf::well_known_types::
//! Any` values whose `value` is the 4 KiB payload and whose `type_url` carries the index in
//! decimal (a few bytes; raft-engine needs an index per entry). Its batch compression is
//! off, as the local family does not compress.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use quorumkit_storage::contract::{Entry, RaftStorage, StateView};
use quorumkit_storage::families::local::{LocalOptions, LocalPaths, LocalStorage};
use quorumkit_storage::vfs::{OsVfs, VfsHandle};

const ENTRY_LEN: usize = 4096;
const BATCH_LEN: u64 = 32;

/// Incompressible, reproducible payload bytes.
fn payload(index: u64) -> Vec<u8> {
    let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..ENTRY_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn local_batch(first: u64, n: u64) -> Vec<Entry> {
    (first..first + n).map(|i| Entry::data(i, 1, payload(i))).collect()
}

struct AnyEntry;

impl raft_engine::MessageExt for AnyEntry {
    type Entry = protobuf::well_known_types::Any;

    fn index(e: &Self::Entry) -> u64 {
        e.type_url.parse().unwrap_or(0)
    }
}

fn engine_batch(first: u64, n: u64) -> Vec<protobuf::well_known_types::Any> {
    (first..first + n)
        .map(|i| {
            let mut any = protobuf::well_known_types::Any::new();
            any.type_url = i.to_string();
            any.value = payload(i);
            any
        })
        .collect()
}

fn engine_config(dir: &Path) -> raft_engine::Config {
    raft_engine::Config {
        dir: dir.display().to_string(),
        batch_compression_threshold: raft_engine::ReadableSize(0),
        ..raft_engine::Config::default()
    }
}

fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}

fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / secs
}

fn main() {
    let base = std::env::var("QK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("qk-bench-local"));
    let env = |name: &str, default: u64| -> u64 {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let batches = env("QK_BENCH_BATCHES", 1000);
    let recovery_bytes_min = env("QK_BENCH_RECOVERY_MIB", 256) << 20;
    let vfs: VfsHandle = Arc::new(OsVfs::new());
    let bytes = batches * BATCH_LEN * ENTRY_LEN as u64;
    println!("append: {batches} batches x {BATCH_LEN} x {ENTRY_LEN} B, fsync per batch");

    // Prepare the batches first so that both sides time only the storage work.
    let local_batches: Vec<Vec<Entry>> =
        (0..batches).map(|b| local_batch(1 + b * BATCH_LEN, BATCH_LEN)).collect();
    let engine_batches: Vec<_> =
        (0..batches).map(|b| engine_batch(1 + b * BATCH_LEN, BATCH_LEN)).collect();

    let local_dir = fresh_dir(&base, "local");
    let mut local =
        LocalStorage::open(vfs.clone(), LocalPaths::from_dir(&local_dir), LocalOptions::default())
            .expect("open local");
    let start = Instant::now();
    for batch in &local_batches {
        local.append(batch).expect("local append");
    }
    let local_secs = start.elapsed().as_secs_f64();
    drop(local);

    let engine_dir = fresh_dir(&base, "raft-engine");
    let engine = raft_engine::Engine::open(engine_config(&engine_dir)).expect("open raft-engine");
    let start = Instant::now();
    for entries in &engine_batches {
        let mut batch = raft_engine::LogBatch::default();
        batch.add_entries::<AnyEntry>(1, entries).expect("add_entries");
        engine.write(&mut batch, true).expect("raft-engine write");
    }
    let engine_secs = start.elapsed().as_secs_f64();
    drop(engine);

    let local_rate = mib_per_s(bytes, local_secs);
    let engine_rate = mib_per_s(bytes, engine_secs);
    println!(
        "  local       {local_secs:8.3} s  {local_rate:8.1} MiB/s  {:8.0} batches/s",
        batches as f64 / local_secs
    );
    println!(
        "  raft-engine {engine_secs:8.3} s  {engine_rate:8.1} MiB/s  {:8.0} batches/s",
        batches as f64 / engine_secs
    );
    println!("  ratio local / raft-engine: {:.2}", local_rate / engine_rate);
    println!("QK-RESULT local_append.local {local_rate:.1} MiB/s");
    println!("QK-RESULT local_append.raft_engine {engine_rate:.1} MiB/s");

    // Recovery: grow the local log to at least QK_BENCH_RECOVERY_MIB (big batches, one fsync
    // each), then time a cold open, which scans every record and verifies both checksums.
    let recover_dir = fresh_dir(&base, "local-recovery");
    let mut local = LocalStorage::open(
        vfs.clone(),
        LocalPaths::from_dir(&recover_dir),
        LocalOptions::default(),
    )
    .expect("open local");
    let per_batch = 256u64;
    let n_batches = recovery_bytes_min.div_ceil(per_batch * ENTRY_LEN as u64);
    for b in 0..n_batches {
        local.append(&local_batch(1 + b * per_batch, per_batch)).expect("append");
    }
    let last = local.last_index();
    drop(local);
    let on_disk: u64 = std::fs::read_dir(recover_dir.join("log"))
        .expect("log dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let start = Instant::now();
    let local = LocalStorage::open(
        vfs.clone(),
        LocalPaths::from_dir(&recover_dir),
        LocalOptions::default(),
    )
    .expect("reopen local");
    let open_secs = start.elapsed().as_secs_f64();
    assert_eq!(local.last_index(), last);
    println!(
        "recovery: local open of {:.0} MiB ({last} entries) in {open_secs:.3} s = {:.0} MiB/s \
         (page cache warm)",
        on_disk as f64 / (1024.0 * 1024.0),
        mib_per_s(on_disk, open_secs)
    );

    let engine_recover_dir = fresh_dir(&base, "raft-engine-recovery");
    let engine =
        raft_engine::Engine::open(engine_config(&engine_recover_dir)).expect("open raft-engine");
    for b in 0..n_batches {
        let mut batch = raft_engine::LogBatch::default();
        batch
            .add_entries::<AnyEntry>(1, &engine_batch(1 + b * per_batch, per_batch))
            .expect("add_entries");
        engine.write(&mut batch, true).expect("write");
    }
    drop(engine);
    let start = Instant::now();
    let engine = raft_engine::Engine::open(engine_config(&engine_recover_dir)).expect("reopen");
    let engine_open_secs = start.elapsed().as_secs_f64();
    assert_eq!(engine.last_index(1), Some(last));
    println!(
        "          raft-engine open of the same entries in {engine_open_secs:.3} s = {:.0} MiB/s",
        mib_per_s(n_batches * per_batch * ENTRY_LEN as u64, engine_open_secs)
    );
    drop(engine);
    // Both opens as payload bytes per second (the same entries), for the ratio.
    let payload = n_batches * per_batch * ENTRY_LEN as u64;
    println!("QK-RESULT local_append.open_local {:.1} MiB/s", mib_per_s(payload, open_secs));
    println!(
        "QK-RESULT local_append.open_raft_engine {:.1} MiB/s",
        mib_per_s(payload, engine_open_secs)
    );
    let _ = std::fs::remove_dir_all(&base);
}
