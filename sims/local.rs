//! The `local://` family: braft's byte vectors, recovery (torn tails, flipped bytes, leftover
//! files), truncations across segments, snapshots, export cuts, import atomicity, inspect.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use quorumkit_storage::contract::{
    ContractError, Entry, FileMeta, Meta, Payload, PeerId, RaftStorage, SnapshotMeta, SnapshotPath,
    StateView, StorageError,
};
use quorumkit_storage::families::local::format::{
    murmur3_x86_32, open_segment_name, ChecksumType, PendingOp, PendingOpKind, PENDING_OP_NAME,
};
use quorumkit_storage::families::local::meta::encode_raft_meta;
use quorumkit_storage::families::local::peer::PeerAddr;
use quorumkit_storage::families::local::proto::{pbfile_encode, LogPbMeta};
use quorumkit_storage::families::local::segment::encode_record;
use quorumkit_storage::families::local::LocalFamily;
use quorumkit_storage::families::local::{
    inspect, LocalOptions, LocalPaths, LocalStorage, RecoveryPolicy,
};
use quorumkit_storage::families::Registry;
use quorumkit_storage::sim::conformance::{FamilyFixture, Fixture};
use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig, Mode};
use quorumkit_storage::sim::engine::runner::{run_history_on_disk, RunOptions};
use quorumkit_storage::sim::soak::{disk_for, FaultMode};
use quorumkit_storage::state::RaftState;
use quorumkit_storage::vfs::{OpenOptions, OsVfs, SimDisk, SimDiskOptions, VfsHandle};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .filter(|t| *t != "|")
        .map(|t| u8::from_str_radix(t, 16).expect("hex"))
        .collect()
}

fn vfs() -> VfsHandle {
    Arc::new(OsVfs::new())
}

fn opts() -> LocalOptions {
    LocalOptions::default()
}

/// Small segments so that a few entries span several files.
fn small_segments() -> LocalOptions {
    LocalOptions { segment_size_max: 100, ..LocalOptions::default() }
}

fn open(dir: &Path, options: LocalOptions) -> Result<LocalStorage, StorageError> {
    LocalStorage::open(vfs(), LocalPaths::from_dir(dir), options)
}

fn data(index: u64, term: u64, text: &str) -> Entry {
    Entry::data(index, term, text.as_bytes().to_vec())
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| data(i, term, &format!("entry-{i:04}"))).collect()
}

fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn capture(view: &dyn StateView) -> RaftState {
    RaftState::capture(view).expect("capture")
}

// ---------------------------------------------------------------- the contract

/// The conformance fixture on the real disk, in a temporary directory that lives as long as
/// the case (small segments so that cases cross segment boundaries).
struct LocalFixture {
    _dir: tempfile::TempDir,
    inner: FamilyFixture,
}

fn fixture() -> LocalFixture {
    let dir = tempfile::tempdir().unwrap();
    let family = Arc::new(LocalFamily::with_options(LocalOptions {
        segment_size_max: 256,
        ..LocalOptions::default()
    }));
    let inner = FamilyFixture::new(family, vfs(), dir.path().display().to_string());
    LocalFixture { _dir: dir, inner }
}

impl Fixture for LocalFixture {
    fn fresh(&mut self) -> Box<dyn RaftStorage> {
        self.inner.fresh()
    }
    fn reopen(&mut self, instance: Box<dyn RaftStorage>) -> Box<dyn RaftStorage> {
        self.inner.reopen(instance)
    }
    fn durable(&self) -> bool {
        self.inner.durable()
    }
}

mod conformance {
    quorumkit_storage::conformance_tests!(super::fixture());
}

/// Generated histories on the simulated disk, with power losses and the seed's fault plan.
fn run_generated(
    mode: Mode,
    seeds: std::ops::Range<u64>,
    faults: FaultMode,
    segment_size_max: u64,
) {
    let config = GeneratorConfig { mode, ..GeneratorConfig::default() };
    let family = Arc::new(LocalFamily::with_options(LocalOptions {
        segment_size_max,
        ..LocalOptions::default()
    }));
    for seed in seeds {
        let ops = generate(seed, &config);
        let disk = disk_for(seed, faults);
        let outcome =
            run_history_on_disk(family.clone(), "data", disk, &ops, RunOptions::default());
        if let Some(f) = outcome.failure {
            panic!("seed {seed}: {f}");
        }
    }
}

#[test]
fn generated_raft_histories_hold_through_crashes() {
    run_generated(Mode::Raft, 0..20, FaultMode::None, 512);
}

#[test]
fn generated_raft_histories_hold_under_faults() {
    run_generated(Mode::Raft, 0..20, FaultMode::Mixed, 512);
}

#[test]
fn generated_raw_histories_hold() {
    run_generated(Mode::Raw, 0..20, FaultMode::Mixed, 300);
}

// ---------------------------------------------------------------- §5.8 byte vectors

#[test]
fn vector_data_crc32c() {
    let record = encode_record(&data(1, 1, "hello"), ChecksumType::Crc32c);
    let want = "00 00 00 00 00 00 00 01 | 02 01 00 00 | 00 00 00 05 | 9a 71 bb 4c | be b2 1d 8d \
                | 68 65 6c 6c 6f";
    assert_eq!(hex(&record), hex(&unhex(want)));
}

#[test]
fn vector_data_murmur() {
    let record = encode_record(&data(1, 1, "hello"), ChecksumType::Murmur3);
    let want = "00 00 00 00 00 00 00 01 | 02 00 00 00 | 00 00 00 05 | 24 8b fa 47 | a0 d2 07 4f \
                | 68 65 6c 6c 6f";
    assert_eq!(hex(&record), hex(&unhex(want)));
}

#[test]
fn vector_no_op() {
    let record = encode_record(&Entry::no_op(1, 2), ChecksumType::Crc32c);
    let want = "00 00 00 00 00 00 00 02 | 01 01 00 00 | 00 00 00 00 | 00 00 00 00 | 7b 61 05 05";
    assert_eq!(hex(&record), hex(&unhex(want)));
}

#[test]
fn vector_configuration() {
    let entry = Entry {
        index: 1,
        term: 1,
        payload: Payload::Configuration {
            peers: vec![PeerId::new("127.0.0.1:8100:0:0")],
            old_peers: vec![],
        },
    };
    let record = encode_record(&entry, ChecksumType::Crc32c);
    let mut want = unhex(
        "00 00 00 00 00 00 00 01 | 03 01 00 00 | 00 00 00 14 | 8a 97 4f 45 | df 81 18 08 | 0a 12",
    );
    want.extend_from_slice(b"127.0.0.1:8100:0:0");
    assert_eq!(hex(&record), hex(&want));
}

#[test]
fn vector_log_meta() {
    assert_eq!(hex(&pbfile_encode(&LogPbMeta { first_log_index: 1 })), "00 00 00 02 08 01");
}

#[test]
fn vector_raft_meta() {
    let meta = Meta { term: 2, voted_for: Some(PeerId::new("127.0.0.1:8100:0:0")) };
    let want = "00 00 00 16 08 02 12 12 31 32 37 2e 30 2e 30 2e 31 3a 38 31 30 30 3a 30 3a 30";
    assert_eq!(hex(&encode_raft_meta(&meta).unwrap()), want);
}

#[test]
fn checksum_check_values() {
    assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
    assert_eq!(murmur3_x86_32(b"", 0), 0);
    assert_eq!(ChecksumType::Crc32c.checksum(b"123456789"), 0xe306_9283);
    assert_eq!(ChecksumType::Crc32c.checksum(b""), 0);
}

#[test]
fn peer_text_forms() {
    // Every spelling braft reads as a peer renders as braft's own four-field form.
    for (text, canonical) in [
        ("127.0.0.1:8100:0:0", "127.0.0.1:8100:0:0"),
        ("127.0.0.1:8101:0", "127.0.0.1:8101:0:0"),
        ("10.0.0.255:65535:7:1", "10.0.0.255:65535:7:1"),
        ("127.0.0.1:8100", "127.0.0.1:8100:0:0"),
        ("127.0.0.1::08100:0", "127.0.0.1:8100:0:0"),
    ] {
        let peer = PeerAddr::parse(text).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(peer.to_string(), canonical, "{text}");
    }
    assert_eq!(PeerAddr::parse("127.0.0.1::8100::3").unwrap().idx, 3);
    for bad in
        ["", "localhost:8100", "127.0.0.1", "::1:80", "127.0.0.01:1", "1.2.3.4:1:0:2", "1.2.3.4:x"]
    {
        assert!(PeerAddr::parse(bad).is_none(), "{bad:?} should not parse");
    }
    assert!(PeerAddr::parse("0.0.0.0:0:0:0").unwrap().is_any());
    assert!(PeerAddr::parse("0.0.0.0:0:0").unwrap().is_any());
}

// ---------------------------------------------------------------- basic behaviour

#[test]
fn fresh_instance_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path(), opts()).unwrap();
        assert_eq!((s.first_index(), s.last_index()), (1, 0));
        assert_eq!(s.meta().unwrap(), Meta::INITIAL);
        assert_eq!(s.snapshot_meta().unwrap(), None);
    }
    // braft's fresh directory: log_meta with first_log_index 1.
    let bytes = std::fs::read(dir.path().join("log/log_meta")).unwrap();
    assert_eq!(hex(&bytes), "00 00 00 02 08 01");

    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=20, 1)).unwrap();
    let meta = Meta { term: 3, voted_for: Some(PeerId::new("127.0.0.1:8101:0")) };
    s.save_meta(&meta).unwrap();
    let before = capture(&s);
    drop(s);
    let s = open(dir.path(), small_segments()).unwrap();
    assert_eq!(capture(&s), before);
    assert_eq!(s.meta().unwrap(), meta);
    assert_eq!(s.entry(0).unwrap(), None);
    assert_eq!(s.entry(21).unwrap(), None);
}

#[test]
fn registry_opens_local_uri() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("LOCAL://{} ", dir.path().display());
    let mut s = Registry::builtin().open(&uri, vfs()).unwrap();
    assert_eq!(s.family(), "local");
    s.append(&entries(1..=3, 1)).unwrap();
    assert!(dir.path().join("log").join(open_segment_name(1)).exists());
}

#[test]
fn triple_of_uris() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let s = LocalStorage::open_uris(
        vfs(),
        &format!("local://{d}/a/log"),
        &format!(" Local :// {d}/b/meta"),
        &format!("local://{d}/c/snap"),
        opts(),
    )
    .unwrap();
    assert_eq!(s.paths().raft_meta, dir.path().join("b/meta"));
    assert!(dir.path().join("a/log/log_meta").exists());
    assert!(LocalPaths::from_uris("memory://x", "local://y", "local://z").is_err());
}

#[test]
fn contract_errors_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    s.append(&entries(1..=3, 1)).unwrap();
    assert!(matches!(s.append(&entries(5..=6, 1)), Err(StorageError::Contract(_))));
    assert!(matches!(s.reset(0), Err(StorageError::Contract(_))));
    let bad_vote = Meta { term: 2, voted_for: Some(PeerId::new("localhost:1")) };
    assert!(matches!(s.save_meta(&bad_vote), Err(StorageError::Contract(_))));
    let any_vote = Meta { term: 2, voted_for: Some(PeerId::new("0.0.0.0:0:0:0")) };
    assert!(matches!(s.save_meta(&any_vote), Err(StorageError::Contract(_))));
    assert_eq!((s.first_index(), s.last_index()), (1, 3));
    s.append(&entries(4..=4, 1)).unwrap();
}

#[test]
fn rollover_as_braft() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    // Each record is 24 + 10 = 34 bytes: a segment takes entries until it holds more than
    // 100 bytes (3 records = 102), and the next append rolls over.
    for i in 1..=10 {
        s.append(&entries(i..=i, 1)).unwrap();
    }
    assert_eq!(
        log_files(dir.path()),
        vec![
            "log_00000000000000000001_00000000000000000003".to_string(),
            "log_00000000000000000004_00000000000000000006".to_string(),
            "log_00000000000000000007_00000000000000000009".to_string(),
            "log_inprogress_00000000000000000010".to_string(),
            "log_meta".to_string(),
            "log_meta.qkcrc".to_string(),
        ]
    );
}

// ---------------------------------------------------------------- truncations

fn expect_range(s: &LocalStorage, first: u64, last: u64) {
    assert_eq!((s.first_index(), s.last_index()), (first, last));
    for i in first..=last {
        let e = s.entry(i).unwrap().unwrap_or_else(|| panic!("entry {i}"));
        assert_eq!(e.index, i);
    }
    assert_eq!(s.entry(first.wrapping_sub(1)).unwrap(), None);
    assert_eq!(s.entry(last + 1).unwrap(), None);
}

#[test]
fn truncate_suffix_across_segments() {
    for keep in 0..=20 {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), small_segments()).unwrap();
        s.append(&entries(1..=20, 1)).unwrap();
        s.truncate_suffix(keep).unwrap();
        expect_range(&s, 1, keep);
        assert!(!dir.path().join("log").join(PENDING_OP_NAME).exists());
        // Append after the cut overwrites what was there.
        s.append(&entries(keep + 1..=keep + 3, 2)).unwrap();
        let state = capture(&s);
        drop(s);
        let s = open(dir.path(), small_segments()).unwrap();
        assert_eq!(capture(&s), state, "keep {keep}");
        assert_eq!(s.term(keep + 1).unwrap(), Some(2));
    }
}

#[test]
fn truncate_prefix_straddling_and_past_end() {
    for kept in 1..=25 {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), small_segments()).unwrap();
        s.append(&entries(1..=20, 1)).unwrap();
        s.truncate_prefix(kept).unwrap();
        let (first, last) = (kept, 20.max(kept - 1));
        expect_range(&s, first, last);
        drop(s);
        let mut s = open(dir.path(), small_segments()).unwrap();
        expect_range(&s, first, last);
        s.append(&entries(last + 1..=last + 2, 2)).unwrap();
        expect_range(&s, first, last + 2);
        // truncate_suffix below first keeps the log empty at first.
        s.truncate_suffix(0).unwrap();
        expect_range(&s, first, first - 1);
        drop(s);
        let s = open(dir.path(), small_segments()).unwrap();
        expect_range(&s, first, first - 1);
    }
}

#[test]
fn reset_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=20, 1)).unwrap();
    s.reset(7).unwrap();
    expect_range(&s, 7, 6);
    s.append(&entries(7..=9, 3)).unwrap();
    drop(s);
    let s = open(dir.path(), small_segments()).unwrap();
    expect_range(&s, 7, 9);
    assert_eq!(s.term(7).unwrap(), Some(3));
}

/// Soak seed 6621 (`--faults swarm`, shrunk to fsync loss): a lying disk lost the
/// `log_meta` of an acknowledged truncate_prefix while a later append survived, so the log
/// came back starting at its old first index, the truncated entries back beside newer ones.
/// The first append after a truncate_prefix now records the new first index in the epoch
/// record, and an open that finds `log_meta` behind it fails closed. A reset to a lower
/// index is no such loss.
#[test]
fn a_lost_truncate_prefix_beside_a_later_append_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut s = open(dir.path(), opts()).unwrap();
    s.append(&entries(1..=10, 1)).unwrap();
    let old_meta = std::fs::read(log.join("log_meta")).unwrap();
    let old_sidecar = std::fs::read(log.join("log_meta.qkcrc")).unwrap();
    s.truncate_prefix(7).unwrap();
    s.append(&entries(11..=11, 1)).unwrap();
    drop(s);
    // The disk rolls log_meta (and its sidecar) back; the epoch record and the append stay.
    std::fs::write(log.join("log_meta"), &old_meta).unwrap();
    std::fs::write(log.join("log_meta.qkcrc"), &old_sidecar).unwrap();
    match open(dir.path(), opts()) {
        Err(StorageError::Corruption(c)) => {
            assert_eq!(c.path, log.join("log_meta"));
            assert!(c.what.contains("truncate_prefix was lost"), "{c}");
        }
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(s) => panic!("truncated entries back: [{}, {}]", s.first_index(), s.last_index()),
    }
    // A reset moves the first index down in a new epoch: not a loss.
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    s.append(&entries(1..=10, 1)).unwrap();
    s.truncate_prefix(7).unwrap();
    s.append(&entries(11..=11, 1)).unwrap();
    s.reset(3).unwrap();
    s.append(&entries(3..=4, 2)).unwrap();
    drop(s);
    expect_range(&open(dir.path(), opts()).unwrap(), 3, 4);
}

#[test]
fn interrupted_reset_is_completed_on_open() {
    // A crash after the redo record and the new log_meta, before any unlink: the stale
    // segments must not come back (braft's window).
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=20, 1)).unwrap();
    drop(s);
    let log = dir.path().join("log");
    let op = PendingOp { kind: PendingOpKind::Reset, arg: 5, first_before: 1, last_before: 20 };
    std::fs::write(log.join(PENDING_OP_NAME), op.encode()).unwrap();
    std::fs::write(log.join("log_meta"), pbfile_encode(&LogPbMeta { first_log_index: 5 })).unwrap();
    std::fs::remove_file(log.join("log_meta.qkcrc")).unwrap();
    let s = open(dir.path(), small_segments()).unwrap();
    expect_range(&s, 5, 4);
    assert!(!log.join(PENDING_OP_NAME).exists());
}

#[test]
fn interrupted_truncate_suffix_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=20, 1)).unwrap();
    drop(s);
    let log = dir.path().join("log");
    let op =
        PendingOp { kind: PendingOpKind::TruncateSuffix, arg: 6, first_before: 1, last_before: 20 };
    std::fs::write(log.join(PENDING_OP_NAME), op.encode()).unwrap();
    // The crash happened after the last segment was unlinked.
    std::fs::remove_file(log.join(open_segment_name(19))).unwrap();
    let s = open(dir.path(), small_segments()).unwrap();
    expect_range(&s, 1, 6);
    assert!(!log.join(PENDING_OP_NAME).exists());
}

/// A truncation interrupted after its last segment went, then its completion at open
/// interrupted at every disk operation in turn (and that one's at every operation again):
/// each later open must still complete it. The completion once rewrote the redo record with
/// the range it found, so a second interrupted open rolled back to a log that never was.
#[test]
fn interrupted_truncate_suffix_survives_crashes_while_it_is_completed() {
    let setup = || {
        let disk = SimDisk::new(SimDiskOptions::default());
        let vfs: VfsHandle = disk.clone();
        let dir = Path::new("d");
        let mut s =
            LocalStorage::open(vfs.clone(), LocalPaths::from_dir(dir), small_segments()).unwrap();
        s.append(&entries(1..=20, 1)).unwrap();
        drop(s);
        let log = dir.join("log");
        let op = PendingOp {
            kind: PendingOpKind::TruncateSuffix,
            arg: 6,
            first_before: 1,
            last_before: 20,
        };
        let f = vfs.open(&log.join(PENDING_OP_NAME), OpenOptions::CREATE).unwrap();
        f.write_at(&op.encode(), 0).unwrap();
        f.sync().unwrap();
        drop(f);
        vfs.remove_file(&log.join(open_segment_name(19))).unwrap();
        vfs.sync_dir(&log).unwrap();
        disk
    };
    let open_on = |disk: &Arc<SimDisk>| {
        LocalStorage::open(disk.clone(), LocalPaths::from_dir(Path::new("d")), small_segments())
    };
    let mut interrupted = 0;
    for first in 1.. {
        let disk = setup();
        disk.crash_after_op(disk.op_count() + first);
        let completed = open_on(&disk);
        if !disk.is_halted() {
            disk.disarm_crash();
            expect_range(&completed.expect("an open that met no crash"), 1, 6);
            break;
        }
        drop(completed);
        disk.disarm_crash();
        disk.crash();
        interrupted += 1;
        // And the next open interrupted too, at each of its first few operations.
        for second in 1..=12u64 {
            let nested = disk.fork();
            nested.crash_after_op(nested.op_count() + second);
            drop(open_on(&nested));
            nested.disarm_crash();
            nested.crash();
            let s = open_on(&nested).unwrap_or_else(|e| {
                panic!("crash points {first} then {second}: the open failed: {e}")
            });
            assert_eq!(
                (s.first_index(), s.last_index()),
                (1, 6),
                "crash points {first} then {second}: the truncation was not completed"
            );
        }
        disk.disarm_crash();
        let s = open_on(&disk).unwrap_or_else(|e| panic!("crash point {first}: {e}"));
        assert_eq!((s.first_index(), s.last_index()), (1, 6), "crash point {first}");
    }
    assert!(interrupted > 3, "the completion has several disk operations to crash at");
}

// ---------------------------------------------------------------- recovery

/// Writes entries 1..=n into one open segment and returns (dir, segment path, offsets).
fn one_segment(n: u64) -> (tempfile::TempDir, PathBuf, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    s.append(&entries(1..=n, 1)).unwrap();
    drop(s);
    let path = dir.path().join("log").join(open_segment_name(1));
    let offsets = (0..=n).map(|i| i * 34).collect();
    (dir, path, offsets)
}

#[test]
fn torn_tail_at_every_byte() {
    let (dir, path, offsets) = one_segment(3);
    let full = std::fs::read(&path).unwrap();
    let last_start = offsets[2] as usize;
    for cut in last_start..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let s = open(dir.path(), opts()).unwrap();
        expect_range(&s, 1, 2);
        drop(s);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start as u64, "trimmed at {cut}");
    }
}

#[test]
fn zero_filled_tail_is_torn_not_corrupt() {
    // A crash that kept the file's new length but not its last sector (ext4 delalloc).
    let (dir, path, offsets) = one_segment(3);
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[offsets[2] as usize..] {
        *b = 0;
    }
    std::fs::write(&path, &bytes).unwrap();
    let s = open(dir.path(), opts()).unwrap();
    expect_range(&s, 1, 2);
}

/// Soak seeds 2776 and 5841 (`--faults swarm`): a misdirected write is corruption, not a
/// torn tail. The last append's sector lands on the open segment's first sector, and its own
/// sector keeps its old bytes: the zeros past the old end, which an earlier torn test (zeros
/// anywhere up to the end of the file) took for a torn write, trimming every acknowledged
/// entry and removing the segment. The damage is the landed bytes, not zeros: fail closed.
#[test]
fn misdirected_append_is_corruption_not_a_torn_tail() {
    use quorumkit_storage::vfs::{FaultPlan, FaultRate, SimDisk, SimDiskOptions};
    let disk = SimDisk::new(SimDiskOptions { seed: 3, sector_size: 4096, ..Default::default() });
    let vfs: VfsHandle = disk.clone();
    let paths = LocalPaths::from_dir("d");
    let mut s = LocalStorage::open(vfs.clone(), paths.clone(), opts()).unwrap();
    // 130 records of 34 bytes: 4420 bytes, two sectors.
    s.append(&entries(1..=130, 1)).unwrap();
    // The next append writes inside sector 1 only; the file has one other sector, 0.
    disk.set_fault_plan(FaultPlan {
        misdirect: FaultRate::with_probability(1.0),
        ..FaultPlan::none()
    });
    s.append(&entries(131..=131, 1)).unwrap();
    disk.set_fault_plan(FaultPlan::none());
    assert_eq!(disk.fault_stats().misdirects, 1, "the append's write was misdirected");
    drop(s);
    disk.crash();
    let segment = Path::new("d/log").join(open_segment_name(1));
    let len_before = vfs.metadata(&segment).unwrap().len;
    match LocalStorage::open(vfs.clone(), paths, opts()) {
        Err(StorageError::Corruption(c)) => {
            assert_eq!(c.path, segment);
            assert_eq!(c.offset, 0, "the first record holds the landed sector: {c}");
        }
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(s) => {
            panic!("acknowledged entries silently gone: [{}, {}]", s.first_index(), s.last_index())
        }
    }
    assert_eq!(vfs.metadata(&segment).unwrap().len, len_before, "failing closed changed nothing");
}

/// Damage in a record below first_log_index is never a torn write, even when it reads as a
/// never-written sector: every such record was acknowledged (durable) before `log_meta` moved
/// past it. Trimming there would leave the log empty at first_log_index and remove the
/// segment with the acknowledged entries above it.
#[test]
fn damage_below_first_log_index_is_never_a_torn_tail() {
    let (dir, path, offsets) = one_segment(10);
    let mut s = open(dir.path(), opts()).unwrap();
    s.truncate_prefix(6).unwrap();
    drop(s);
    let mut bytes = std::fs::read(&path).unwrap();
    // Records 3..=10 read as zeros (one 512-byte block, to the end of the file).
    for b in &mut bytes[offsets[2] as usize..] {
        *b = 0;
    }
    std::fs::write(&path, &bytes).unwrap();
    match open(dir.path(), opts()) {
        Err(StorageError::Corruption(c)) => {
            assert_eq!((c.path.as_path(), c.offset), (path.as_path(), offsets[2]), "{c}");
        }
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(s) => panic!("trimmed as torn: [{}, {}]", s.first_index(), s.last_index()),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "failing closed changed nothing");
    // The same zeros at or above first_log_index are a torn tail: the log keeps 6..=7.
    let (dir, path, offsets) = one_segment(10);
    let mut s = open(dir.path(), opts()).unwrap();
    s.truncate_prefix(6).unwrap();
    drop(s);
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[offsets[7] as usize..] {
        *b = 0;
    }
    std::fs::write(&path, &bytes).unwrap();
    expect_range(&open(dir.path(), opts()).unwrap(), 6, 7);
}

/// Soak seed 4321 (`--faults swarm`, shrunk to fsync loss): under a lying fsync an
/// acknowledged append is as exposed as an unacknowledged one, and a power loss that tears
/// its write leaves any prefix of its batch (braft's records mark no batch end, so no family
/// can tell). The checker counts every prefix of an appended batch as a state the log held
/// when syncs may lie, and only then: with another dishonest fault and no lying sync, a
/// family that skips its fsyncs is still caught cutting an acknowledged batch.
#[test]
fn a_lying_fsync_may_cut_an_acknowledged_batch_anywhere() {
    use quorumkit_storage::contract::Family;
    use quorumkit_storage::sim::checks::CheckName;
    use quorumkit_storage::sim::engine::model::Model;
    use quorumkit_storage::sim::engine::ops::{Action, Op};
    use quorumkit_storage::sim::planted::{PlantedBug, PlantedFamily};
    use quorumkit_storage::vfs::{FaultPlan, FaultRate, SimDisk, SimDiskOptions};
    let batch: Vec<String> = (1..=8).map(|i| format!("t1:data(len=200,seed={i})")).collect();
    let ops: Vec<Op> = [format!("append(n=8, {})", batch.join(", ")), "crash()".to_string()]
        .iter()
        .map(|text| text.parse().expect("op text"))
        .collect();
    let Action::Append(entries) = ops[0].resolve(&Model::new()) else { panic!("an append") };
    // The digests of the log cut strictly inside the batch.
    let inside: Vec<String> = (1..entries.len())
        .map(|k| RaftState { entries: entries[..k].to_vec(), ..RaftState::new() }.digest())
        .collect();
    let disk = |seed, faults| {
        SimDisk::new(SimDiskOptions {
            seed,
            sector_size: 512,
            crash_keep_probability: 1.0,
            crash_tear_probability: 1.0,
            faults,
            ..SimDiskOptions::default()
        })
    };
    let lying = FaultPlan { fsync_loss: FaultRate::with_probability(1.0), ..FaultPlan::none() };
    // Dishonest (a misdirect may fire), yet every sync keeps its promise.
    let no_lie = FaultPlan { misdirect: FaultRate::at_ops([u64::MAX]), ..FaultPlan::none() };
    let local: Arc<dyn Family> = Arc::new(LocalFamily::default());
    let skips_fsync: Arc<dyn Family> =
        Arc::new(PlantedFamily::new(local.clone(), PlantedBug::SkipFsync));
    let (mut cut_inside, mut caught) = (0, 0);
    for seed in 0..24 {
        let outcome = run_history_on_disk(
            local.clone(),
            "d",
            disk(seed, lying.clone()),
            &ops,
            RunOptions::default(),
        );
        assert!(outcome.failure.is_none(), "seed {seed}: {:?}", outcome.failure);
        cut_inside += usize::from(inside.contains(&outcome.final_digest));
        let outcome = run_history_on_disk(
            skips_fsync.clone(),
            "d",
            disk(seed, no_lie.clone()),
            &ops,
            RunOptions::default(),
        );
        if let Some(failure) = outcome.failure {
            assert_eq!(failure.check, CheckName::CrashAtomicity, "seed {seed}: {failure}");
            caught += 1;
        }
    }
    assert!(cut_inside > 0, "no seed tore the batch inside it");
    assert!(caught > 0, "the cut batch was never caught without a lying sync");
}

#[test]
fn every_flipped_byte_of_a_closed_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=6, 1)).unwrap();
    drop(s);
    let path = dir.path().join("log/log_00000000000000000001_00000000000000000003");
    let good = std::fs::read(&path).unwrap();
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        match open(dir.path(), small_segments()) {
            Err(StorageError::Corruption(c)) => {
                assert_eq!(c.path, path);
                let record = (at as u64 / 34) * 34;
                assert_eq!(c.offset, record, "byte {at}: {c}");
            }
            Err(e) => panic!("byte {at}: unexpected error {e}"),
            Ok(_) => panic!("byte {at}: flip not detected"),
        }
    }
    std::fs::write(&path, &good).unwrap();
    expect_range(&open(dir.path(), small_segments()).unwrap(), 1, 6);
}

#[test]
fn flipped_byte_in_open_segment_is_corruption() {
    let (dir, path, _) = one_segment(3);
    let good = std::fs::read(&path).unwrap();
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        let err = open(dir.path(), opts()).err().unwrap_or_else(|| panic!("byte {at} missed"));
        assert!(err.is_corruption(), "byte {at}: {err}");
    }
}

#[test]
fn braft_policy_accepts_bad_data_payload_until_read() {
    let (dir, path, offsets) = one_segment(3);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offsets[1] as usize + 30] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    assert!(open(dir.path(), opts()).unwrap_err().is_corruption());
    let braft = LocalOptions { recovery: RecoveryPolicy::BraftCompatible, ..opts() };
    let s = open(dir.path(), braft).unwrap();
    assert_eq!(s.last_index(), 3);
    assert_eq!(s.term(2).unwrap(), Some(1));
    assert!(s.entry(2).unwrap_err().is_corruption());
    assert!(s.entry(3).unwrap().is_some());
}

#[test]
fn recover_from_corrupt_policy_trims_a_bad_open_header() {
    let (dir, path, offsets) = one_segment(3);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offsets[1] as usize + 3] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let braft = LocalOptions { recovery: RecoveryPolicy::BraftCompatible, ..opts() };
    assert!(open(dir.path(), braft).unwrap_err().is_corruption());
    let recover = LocalOptions { recovery: RecoveryPolicy::BraftRecoverFromCorrupt, ..opts() };
    expect_range(&open(dir.path(), recover).unwrap(), 1, 1);
}

#[test]
fn mixed_checksum_types_in_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    let murmur = LocalOptions { checksum: ChecksumType::Murmur3, ..opts() };
    let mut s = open(dir.path(), murmur).unwrap();
    s.append(&entries(1..=2, 1)).unwrap();
    drop(s);
    let mut s = open(dir.path(), opts()).unwrap();
    s.append(&entries(3..=4, 1)).unwrap();
    drop(s);
    let s = open(dir.path(), opts()).unwrap();
    expect_range(&s, 1, 4);
    let bytes = std::fs::read(dir.path().join("log").join(open_segment_name(1))).unwrap();
    assert_eq!((bytes[9], bytes[34 + 9], bytes[68 + 9], bytes[102 + 9]), (0, 0, 1, 1));
    let report = inspect(&vfs(), s.paths()).unwrap();
    assert_eq!(report.segments[0].checksum_types.get("murmur3"), Some(&2));
    assert_eq!(report.segments[0].checksum_types.get("crc32c"), Some(&2));
}

#[test]
fn leftover_tmp_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=6, 1)).unwrap();
    drop(s);
    let log = dir.path().join("log");
    std::fs::write(log.join("log_meta.tmp"), b"junk").unwrap();
    std::fs::write(log.join("log_00000000000000000100_00000000000000000200.tmp"), b"x").unwrap();
    std::fs::write(log.join("unrelated"), b"kept").unwrap();
    let s = open(dir.path(), small_segments()).unwrap();
    expect_range(&s, 1, 6);
    let names = log_files(dir.path());
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    assert!(names.contains(&"unrelated".to_string()));
}

#[test]
fn missing_log_meta() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=6, 1)).unwrap();
    drop(s);
    std::fs::remove_file(dir.path().join("log/log_meta")).unwrap();
    // Fail-closed: braft would silently delete the log.
    let err = open(dir.path(), small_segments()).err().unwrap();
    assert!(err.is_corruption(), "{err}");
    // braft-compatible: the log is wiped and a fresh log_meta written.
    let braft = LocalOptions { recovery: RecoveryPolicy::BraftCompatible, ..small_segments() };
    expect_range(&open(dir.path(), braft).unwrap(), 1, 0);
    assert_eq!(log_files(dir.path()), vec!["log_meta".to_string(), "log_meta.qkcrc".to_string()]);
}

#[test]
fn meta_sidecar_detects_damage_and_braft_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    s.save_meta(&Meta { term: 5, voted_for: Some(PeerId::new("127.0.0.1:8100:0:0")) }).unwrap();
    drop(s);
    let path = dir.path().join("raft_meta/raft_meta");
    // What braft writes for term 6 and no vote, written in place (the same file): bytes
    // changed under the sidecar's file are damage. (braft's own rewrite, tmp + rename, is a
    // new file and is read: sims/braft_meta.rs.)
    let rewritten = encode_raft_meta(&Meta { term: 6, voted_for: None }).unwrap();
    std::fs::write(&path, &rewritten).unwrap();
    let err = open(dir.path(), opts()).err().unwrap();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("changed in place"), "{err}");
    let braft = LocalOptions { recovery: RecoveryPolicy::BraftCompatible, ..opts() };
    let mut s = open(dir.path(), braft).unwrap();
    assert_eq!(s.meta().unwrap(), Meta { term: 6, voted_for: None });
    s.save_meta(&Meta { term: 7, voted_for: None }).unwrap();
    drop(s);
    assert_eq!(open(dir.path(), opts()).unwrap().meta().unwrap().term, 7);
    // A legacy file without a sidecar is accepted.
    std::fs::remove_file(dir.path().join("raft_meta/raft_meta.qkcrc")).unwrap();
    std::fs::write(&path, &rewritten).unwrap();
    assert_eq!(open(dir.path(), opts()).unwrap().meta().unwrap().term, 6);
}

#[test]
fn legacy_three_field_vote_reads_back_canonical() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts()).unwrap());
    let legacy =
        encode_raft_meta(&Meta { term: 4, voted_for: Some(PeerId::new("127.0.0.1:8101:0")) })
            .unwrap();
    std::fs::write(dir.path().join("raft_meta/raft_meta"), legacy).unwrap();
    let s = open(dir.path(), opts()).unwrap();
    let vote = s.meta().unwrap().voted_for.expect("a vote");
    assert_eq!(vote.as_str(), "127.0.0.1:8101:0:0");
    std::fs::write(
        dir.path().join("raft_meta/raft_meta"),
        encode_raft_meta(&Meta { term: 4, voted_for: None }).unwrap(),
    )
    .unwrap();
    drop(s);
    assert_eq!(
        open(dir.path(), opts()).unwrap().meta().unwrap(),
        Meta { term: 4, voted_for: None }
    );
}

// ---------------------------------------------------------------- snapshots

fn snap_meta(index: u64) -> SnapshotMeta {
    SnapshotMeta {
        last_included_index: index,
        last_included_term: 1,
        peers: vec![PeerId::new("127.0.0.1:8100:0:0")],
        old_peers: vec![],
    }
}

/// A snapshot file to publish: path, bytes, file metadata's `user_meta`.
type FileSpec<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);

fn publish(s: &mut LocalStorage, index: u64, files: &[FileSpec<'_>]) {
    let mut w = s.begin_snapshot().unwrap();
    for (path, bytes, user_meta) in files {
        let path = SnapshotPath::new(*path).unwrap();
        let file_meta =
            FileMeta { user_meta: user_meta.map(Bytes::copy_from_slice), ..FileMeta::default() };
        w.add_file(&path, &file_meta).unwrap();
        w.write_file(&path, 0, bytes).unwrap();
    }
    w.set_meta(snap_meta(index));
    w.publish().unwrap();
}

#[test]
fn snapshot_publish_reopen_and_retire() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    publish(&mut s, 5, &[("data", b"five", None)]);
    publish(&mut s, 9, &[("b/x", b"nine", Some(b"")), ("a", b"!", Some(b"\x01\x02"))]);
    let state = capture(&s);
    drop(s);
    let s = open(dir.path(), opts()).unwrap();
    assert_eq!(capture(&s), state);
    let files = s.snapshot_files().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].file_meta, FileMeta::user(&b"\x01\x02"[..]));
    assert_eq!(files[1].file_meta, FileMeta::user(Bytes::new()));
    let names: Vec<_> = std::fs::read_dir(dir.path().join("snapshot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["snapshot_00000000000000000009".to_string()]);
    // Publishing a lower index replaces the latest too (the contract, unlike braft).
    drop(s);
    let mut s = open(dir.path(), opts()).unwrap();
    publish(&mut s, 3, &[]);
    drop(s);
    assert_eq!(open(dir.path(), opts()).unwrap().snapshot_meta().unwrap(), Some(snap_meta(3)));
}

#[test]
fn snapshot_meta_bytes_as_braft_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    publish(&mut s, 2, &[("z", b"", None), ("a", b"", None)]);
    let bytes = std::fs::read(
        dir.path().join("snapshot/snapshot_00000000000000000002/__raft_snapshot_meta"),
    )
    .unwrap();
    let mut want = unhex("00 00 00 28 0a 18 08 02 10 01 1a 12");
    want.extend_from_slice(b"127.0.0.1:8100:0:0");
    want.extend_from_slice(&unhex("12 05 0a 01 61 12 00 12 05 0a 01 7a 12 00"));
    assert_eq!(hex(&bytes), hex(&want));
}

#[test]
fn interrupted_publish_and_stray_temp() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    publish(&mut s, 5, &[("data", b"five", None)]);
    let mut w = s.begin_snapshot().unwrap();
    let p = SnapshotPath::new("data").unwrap();
    w.add_file(&p, &FileMeta::default()).unwrap();
    w.write_file(&p, 0, b"unpublished").unwrap();
    drop(w);
    drop(s);
    let s = open(dir.path(), opts()).unwrap();
    assert_eq!(s.snapshot_meta().unwrap(), Some(snap_meta(5)));
    assert!(!dir.path().join("snapshot/temp").exists());
}

// ---------------------------------------------------------------- export and import

#[test]
fn export_cut_survives_every_mutation() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=20, 1)).unwrap();
    s.save_meta(&Meta { term: 2, voted_for: None }).unwrap();
    publish(&mut s, 4, &[("f", b"four", Some(b"m"))]);
    let cut = s.begin_export().unwrap();
    let at_cut = capture(cut.as_ref());
    s.truncate_suffix(10).unwrap();
    s.append(&entries(11..=14, 3)).unwrap();
    s.truncate_prefix(12).unwrap();
    publish(&mut s, 12, &[("g", b"twelve", None)]);
    s.save_meta(&Meta { term: 3, voted_for: None }).unwrap();
    s.reset(30).unwrap();
    s.append(&entries(30..=35, 4)).unwrap();
    assert_eq!(capture(cut.as_ref()), at_cut);
    let live = capture(&s);
    drop(cut);
    // Nothing the cut kept alive is left behind.
    let leftovers: Vec<_> =
        log_files(dir.path()).into_iter().filter(|n| n.contains("qkpin")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(s);
    assert_eq!(capture(&open(dir.path(), small_segments()).unwrap()), live);
}

#[test]
fn import_commits_atomically() {
    let source_dir = tempfile::tempdir().unwrap();
    let mut source = open(source_dir.path(), small_segments()).unwrap();
    source.append(&entries(1..=9, 1)).unwrap();
    source.truncate_prefix(4).unwrap();
    source.save_meta(&Meta { term: 2, voted_for: Some(PeerId::new("127.0.0.1:1:0:0")) }).unwrap();
    publish(&mut source, 3, &[("f", b"three", Some(b"meta"))]);
    let want = capture(&source);

    let import = |target: &mut LocalStorage, commit: bool| {
        let mut sink = target.begin_import().unwrap();
        sink.set_first_index(want.first).unwrap();
        sink.append(&want.entries).unwrap();
        sink.set_meta(&want.meta).unwrap();
        let snapshot = want.snapshot.as_ref().unwrap();
        for (path, file) in &snapshot.files {
            sink.add_snapshot_file(path, &file.file_meta).unwrap();
            sink.write_snapshot_file(path, 0, &file.data).unwrap();
        }
        sink.set_snapshot_meta(snapshot.meta.clone()).unwrap();
        if commit {
            sink.commit().unwrap();
        } else {
            // A crash: nothing runs after this point.
            std::mem::forget(sink);
        }
    };

    let dir = tempfile::tempdir().unwrap();
    let mut target = open(dir.path(), opts()).unwrap();
    import(&mut target, false);
    drop(target);
    let mut target = open(dir.path(), opts()).unwrap();
    assert_eq!(capture(&target), RaftState::new(), "a crashed import reopens empty");
    import(&mut target, true);
    assert_eq!(capture(&target), want);
    drop(target);
    let mut target = open(dir.path(), opts()).unwrap();
    assert_eq!(capture(&target), want);
    assert!(target.begin_import().is_err(), "not empty any more");

    // A dropped sink leaves the instance empty too.
    let dir = tempfile::tempdir().unwrap();
    let mut target = open(dir.path(), opts()).unwrap();
    {
        let mut sink = target.begin_import().unwrap();
        sink.set_first_index(3).unwrap();
        sink.append(&entries(3..=5, 1)).unwrap();
    }
    assert_eq!(capture(&target), RaftState::new());
    drop(target);
    assert_eq!(capture(&open(dir.path(), opts()).unwrap()), RaftState::new());
}

// ---------------------------------------------------------------- inspect and layout

/// A hex dump of every file under `dir`, in path order. A checksum sidecar's file id (the
/// real inode number and birth time, different on every run) and the CRC over it read as
/// `ii` and `cc`.
fn dump(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files.push((p.clone(), None));
                stack.push(p);
            } else {
                files.push((p.clone(), Some(std::fs::read(&p).unwrap())));
            }
        }
    }
    files.sort();
    for (path, bytes) in files {
        let rel = path.strip_prefix(dir).unwrap().display().to_string();
        match bytes {
            None => out.push_str(&format!("{rel}/\n")),
            Some(bytes) => {
                out.push_str(&format!("{rel} ({} bytes)\n", bytes.len()));
                let masked = |at: usize| {
                    let n = bytes.len();
                    match at {
                        _ if !rel.ends_with(".qkcrc") || n < 20 => None,
                        at if at >= n - 4 => Some("cc"),
                        at if at >= n - 20 => Some("ii"),
                        _ => None,
                    }
                };
                for (i, chunk) in bytes.chunks(16).enumerate() {
                    let text: Vec<String> = chunk
                        .iter()
                        .enumerate()
                        .map(|(j, b)| masked(i * 16 + j).map_or(format!("{b:02x}"), String::from))
                        .collect();
                    out.push_str(&format!("  {:04x}: {}\n", i * 16, text.join(" ")));
                }
            }
        }
    }
    out
}

#[test]
fn small_directory_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), LocalOptions { segment_size_max: 60, ..opts() }).unwrap();
    s.append(&[
        Entry {
            index: 1,
            term: 1,
            payload: Payload::Configuration {
                peers: vec![PeerId::new("127.0.0.1:8100:0:0"), PeerId::new("127.0.0.1:8101:0:0")],
                old_peers: vec![],
            },
        },
        Entry::no_op(2, 1),
        data(3, 2, "hello"),
    ])
    .unwrap();
    s.save_meta(&Meta { term: 2, voted_for: Some(PeerId::new("127.0.0.1:8100:0:0")) }).unwrap();
    publish(&mut s, 2, &[("state", b"abc", None)]);
    drop(s);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!("local_small_directory_hexdump", dump(dir.path()));
        let report = inspect(&vfs(), &LocalPaths::from_dir(dir.path())).unwrap();
        let text = report.to_string().replace(&dir.path().display().to_string(), "DIR");
        insta::assert_snapshot!("local_small_directory_inspect", text);
    });
}

#[test]
fn inspect_flags_odd_things() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), small_segments()).unwrap();
    s.append(&entries(1..=6, 1)).unwrap();
    drop(s);
    let log = dir.path().join("log");
    std::fs::write(log.join("log_meta.tmp"), b"").unwrap();
    std::fs::write(log.join("notes.txt"), b"").unwrap();
    let seg = log.join(open_segment_name(4));
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&seg, bytes).unwrap();
    let report = inspect(&vfs(), &LocalPaths::from_dir(dir.path())).unwrap();
    let flags = report.flags.join("\n");
    assert!(flags.contains("leftover temporary file log/log_meta.tmp"), "{flags}");
    assert!(flags.contains("unrecognised file log/notes.txt"), "{flags}");
    assert!(flags.contains("torn tail"), "{flags}");
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"segments\""));
}

#[test]
fn snapshot_reads_are_verified_block_by_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    let big: Vec<u8> =
        (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    publish(&mut s, 3, &[("big", &big, None)]);
    let path = SnapshotPath::new("big").unwrap();
    let mut buf = vec![0u8; 70_000];
    for offset in [0u64, 1, 65_535, 65_536, 131_000, 199_999, 200_000] {
        let n = s.read_snapshot_file(&path, offset, &mut buf).unwrap();
        let end = (offset as usize + n).min(big.len());
        assert_eq!(&buf[..n], &big[offset as usize..end], "offset {offset}");
    }
    drop(s);
    let file = dir.path().join("snapshot/snapshot_00000000000000000003/big");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[150_000] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();
    let s = open(dir.path(), opts()).unwrap();
    assert_eq!(s.read_snapshot_file(&path, 0, &mut buf).unwrap(), 70_000, "block 0 is intact");
    let err = s.read_snapshot_file(&path, 140_000, &mut buf).unwrap_err();
    match err {
        StorageError::Corruption(c) => assert_eq!((c.path, c.offset), (file, 131_072)),
        other => panic!("{other}"),
    }
}

#[test]
fn hostile_sidecars_never_panic() {
    use quorumkit_storage::families::local::format::{Sidecar, SnapshotManifest};
    let mut seed = 7u64;
    for len in 0..300usize {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (seed >> 56) as u8
            })
            .collect();
        assert!(SnapshotManifest::decode(&bytes).is_none());
        assert!(Sidecar::decode(&bytes).is_none());
        assert!(PendingOp::decode(&bytes).is_none());
    }
    let manifest = SnapshotManifest::default();
    assert_eq!(SnapshotManifest::decode(&manifest.encode()), Some(manifest));
}

// ---------------------------------------------------------------- every crash state

/// Runs `setup` then `mutate` on a simulated disk and checks every crash state since the
/// start of `mutate` (every operation, every subset of what was pending there, torn writes
/// too): the reopened instance shows the state before or the state after, nothing else.
fn every_crash_state(
    setup: impl Fn(&mut LocalStorage),
    mutate: impl Fn(&mut LocalStorage),
    also_allowed: impl Fn(&RaftState) -> bool,
) {
    use quorumkit_storage::vfs::{EnumerateOptions, SimDisk, SimDiskOptions};
    let disk = SimDisk::new(SimDiskOptions { seed: 11, ..SimDiskOptions::default() });
    let vfs: VfsHandle = disk.clone();
    let options = LocalOptions { segment_size_max: 100, ..LocalOptions::default() };
    let mut s = LocalStorage::open(vfs.clone(), LocalPaths::from_dir("d"), options).unwrap();
    setup(&mut s);
    let before = capture(&s);
    let mark = disk.mark();
    mutate(&mut s);
    let after = capture(&s);
    drop(s);
    let enumerate = EnumerateOptions { tear_writes: true, ..EnumerateOptions::default() };
    let mut n_states = 0;
    let trace = disk.trace_tail(60);
    for state in disk.crash_states(mark, enumerate).unwrap() {
        n_states += 1;
        let vfs: VfsHandle = state.disk.clone();
        let reopened =
            LocalStorage::open(vfs, LocalPaths::from_dir("d"), options).unwrap_or_else(|e| {
                panic!(
                    "crash after op {} (kept {:?}): open failed: {e}\n{trace}",
                    state.after_op, state.kept
                )
            });
        let got = capture(&reopened);
        assert!(
            got == before || got == after || also_allowed(&got),
            "crash after op {} (kept {:?}): neither before nor after: {:?}",
            state.after_op,
            state.kept,
            quorumkit_storage::state::first_difference(&got, &after)
        );
        // The open cleaned up after the crash: a clean close leaves nothing inspect notes.
        drop(reopened);
        let vfs: VfsHandle = state.disk.clone();
        let report = inspect(&vfs, &LocalPaths::from_dir("d")).unwrap();
        assert!(
            report.flags.is_empty() && report.markers.is_empty(),
            "crash after op {} (kept {:?}): leftovers after a clean close: {:?} {:?}",
            state.after_op,
            state.kept,
            report.flags,
            report.markers
        );
    }
    assert!(n_states > 10, "only {n_states} crash states");
}

fn twenty_entries(s: &mut LocalStorage) {
    s.append(&entries(1..=20, 1)).unwrap();
    s.save_meta(&Meta { term: 2, voted_for: None }).unwrap();
}

#[test]
fn reset_survives_a_crash_at_every_point() {
    every_crash_state(twenty_entries, |s| s.reset(7).unwrap(), |_| false);
    every_crash_state(twenty_entries, |s| s.reset(40).unwrap(), |_| false);
}

#[test]
fn truncations_survive_a_crash_at_every_point() {
    every_crash_state(twenty_entries, |s| s.truncate_suffix(4).unwrap(), |_| false);
    every_crash_state(twenty_entries, |s| s.truncate_prefix(11).unwrap(), |_| false);
    every_crash_state(twenty_entries, |s| s.truncate_prefix(30).unwrap(), |_| false);
}

#[test]
fn append_and_meta_survive_a_crash_at_every_point() {
    let base = |s: &mut LocalStorage| s.append(&entries(1..=2, 1)).unwrap();
    // Any prefix of the batch is allowed.
    every_crash_state(
        base,
        |s| s.append(&entries(3..=9, 1)).unwrap(),
        |got| got.first == 1 && (2..=9).contains(&got.last()),
    );
    every_crash_state(
        base,
        |s| s.save_meta(&Meta { term: 5, voted_for: Some(PeerId::new("10.0.0.1:1:0:0")) }).unwrap(),
        |_| false,
    );
}

#[test]
fn publish_survives_a_crash_at_every_point() {
    let setup = |s: &mut LocalStorage| {
        twenty_entries(s);
        publish(s, 5, &[("a", b"old", None)]);
    };
    every_crash_state(setup, |s| publish(s, 9, &[("b/c", b"new", Some(b"m"))]), |_| false);
    every_crash_state(setup, |s| publish(s, 5, &[("a", b"same index", None)]), |_| false);
    every_crash_state(setup, |s| publish(s, 2, &[]), |_| false);
}

#[test]
fn snapshot_files_are_stored_under_their_own_names_and_the_layouts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    // Names next to the layout's own are the user's, stored as named: braft lists exactly
    // what is on disk.
    let files: [FileSpec<'_>; 4] = [
        ("__raft_snapshot_meta_user", b"user one", Some(b"m")),
        ("__raft_snapshot_meta.qkcrcx/x", b"user two", None),
        ("__qk_esc_y", b"user three", None),
        ("a/__raft_snapshot_meta", b"user four", None),
    ];
    publish(&mut s, 4, &files);
    let state = capture(&s);
    drop(s);
    let mut s = open(dir.path(), opts()).unwrap();
    assert_eq!(capture(&s), state);
    let snap = dir.path().join("snapshot/snapshot_00000000000000000004");
    for (path, bytes, _) in files {
        assert_eq!(std::fs::read(snap.join(path)).unwrap(), bytes, "{path}");
    }
    // The layout's own names are refused before anything is written, by a writer and by an
    // import (the snapshot and the directory stay as they were).
    let before = dump(dir.path());
    for name in quorumkit_storage::families::local::format::SNAPSHOT_RESERVED_NAMES {
        for refused in [name.to_string(), format!("{name}/x")] {
            let mut w = s.begin_snapshot().unwrap();
            let err =
                w.add_file(&SnapshotPath::new(refused.clone()).unwrap(), &FileMeta::default());
            assert!(
                matches!(
                    err,
                    Err(StorageError::Contract(ContractError::ReservedSnapshotPath { .. }))
                ),
                "{refused}: {err:?}"
            );
            let temp = dir.path().join("snapshot/temp");
            assert!(!temp.join(&refused).exists(), "{refused} was created");
        }
    }
    drop(s);
    let s = open(dir.path(), opts()).unwrap();
    assert_eq!(capture(&s), state);
    assert_eq!(dump(dir.path()), before);
}

#[test]
fn a_directory_an_older_qk_escaped_is_refused_naming_the_escaped_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), opts()).unwrap();
    publish(&mut s, 4, &[("__qk_esc_y", b"user", None)]);
    drop(s);
    // What qk before image format 2.0 wrote: the file under an escaped name, the meta listing
    // the real one.
    let snap = dir.path().join("snapshot/snapshot_00000000000000000004");
    std::fs::rename(snap.join("__qk_esc_y"), snap.join("__qk_esc___qk_esc_y")).unwrap();
    let err = open(dir.path(), opts()).unwrap_err();
    let text = err.to_string();
    assert!(err.is_corruption(), "{text}");
    assert!(text.contains("listed file __qk_esc_y is missing"), "{text}");
    assert!(text.contains("__qk_esc___qk_esc_y"), "{text}");
}

#[test]
fn hostile_directories_never_panic() {
    // More rounds (and another seed) on demand: QK_HOSTILE_ROUNDS=1000 QK_HOSTILE_SEED=7.
    let rounds: usize =
        std::env::var("QK_HOSTILE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let mut seed: u64 =
        std::env::var("QK_HOSTILE_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x1234_5678);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let names = [
        "log/log_inprogress_00000000000000000001",
        "log/log_00000000000000000001_00000000000000000003",
        "log/log_inprogress_0",
        "log/log_0_18446744073709551615",
        "log/log_meta",
        "log/log_meta.qkcrc",
        "log/qk_pending_op",
        "log/qk_log_epoch",
        "raft_meta/raft_meta",
        "raft_meta/raft_meta.qkcrc",
        "snapshot/qk_publish",
        "snapshot/snapshot_00000000000000000005/__raft_snapshot_meta",
        "snapshot/snapshot_00000000000000000005/__raft_snapshot_meta.qkcrc",
        "snapshot/snapshot_00000000000000000005/__raft_snapshot_meta.qkfiles",
    ];
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), small_segments()).unwrap();
        s.append(&entries(1..=5, 1)).unwrap();
        publish(&mut s, 5, &[("f", b"data", None)]);
        s.save_meta(&Meta { term: 2, voted_for: None }).unwrap();
        drop(s);
        // Overwrite a few files with garbage, sometimes keeping a valid prefix.
        for _ in 0..1 + next() % 3 {
            let name = names[(next() % names.len() as u64) as usize];
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut bytes = std::fs::read(&path).unwrap_or_default();
            let len = (next() % 80) as usize;
            let keep = if bytes.is_empty() { 0 } else { (next() as usize) % bytes.len() };
            bytes.truncate(keep);
            bytes.extend((0..len).map(|_| next() as u8));
            std::fs::write(&path, &bytes).unwrap();
        }
        for policy in [RecoveryPolicy::FailClosed, RecoveryPolicy::BraftCompatible] {
            let options = LocalOptions { recovery: policy, ..small_segments() };
            let result = std::panic::catch_unwind(|| {
                if let Ok(s) = open(dir.path(), options) {
                    let _ = RaftState::capture(&s);
                }
                let _ = inspect(&vfs(), &LocalPaths::from_dir(dir.path())).map(|r| r.to_string());
            });
            assert!(result.is_ok(), "round {round} panicked under {policy:?}");
        }
    }
}

mod hostile_dirs {
    use super::*;
    use quorumkit_storage::contract::Family;
    use quorumkit_storage::sim::checks::hostile_dirs::{self, Expected, Violation};
    use quorumkit_storage::sim::planted::{PlantedBug, PlantedFamily};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const ROOT: &str = "inst";

    /// A closed local instance holding several closed segments, a vote and a snapshot with
    /// files (one nested): the disk and the state it holds.
    fn closed(family: &dyn Family) -> (Arc<SimDisk>, RaftState) {
        let disk = SimDisk::new(SimDiskOptions::default());
        let mut storage = family.open(ROOT, disk.clone()).expect("open");
        let entries: Vec<Entry> = (1..=30).map(|i| data(i, 1 + i / 10, "payload")).collect();
        for batch in entries.chunks(4) {
            storage.append(batch).expect("append");
        }
        let peer = PeerId::new("10.0.0.2:8000:0:0");
        storage.save_meta(&Meta { term: 3, voted_for: Some(peer.clone()) }).expect("meta");
        let mut writer = storage.begin_snapshot().expect("snapshot");
        for path in ["a", "d/b"] {
            let path = SnapshotPath::new(path).expect("path");
            writer.add_file(&path, &FileMeta::default()).expect("add");
            writer.write_file(&path, 0, b"contents").expect("write");
        }
        let peers = vec![PeerId::new("192.168.1.10:8000:0:0"), peer];
        writer.set_meta(SnapshotMeta {
            last_included_index: 20,
            last_included_term: 3,
            peers,
            old_peers: vec![],
        });
        writer.publish().expect("publish");
        let state = RaftState::capture(storage.as_ref()).expect("capture");
        drop(storage);
        (disk, state)
    }

    fn small() -> Arc<dyn Family> {
        Arc::new(LocalFamily::with_options(LocalOptions {
            segment_size_max: 256,
            ..LocalOptions::default()
        }))
    }

    /// Every violation applies to the instance, the family refuses (or reads) each exactly
    /// as expected through both opens, and a family that starts empty on corruption is
    /// reported for every violation it must refuse.
    #[test]
    fn every_violation_is_judged_and_an_accepting_family_is_caught() {
        let family = small();
        let accepting = PlantedFamily::new(family.clone(), PlantedBug::AcceptsHostileDirs);
        let (disk, state) = closed(family.as_ref());
        for violation in Violation::ALL {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let hostile = hostile_dirs::plant(&disk, Path::new(ROOT), &state, violation, &mut rng)
                .expect("planted")
                .unwrap_or_else(|| panic!("{violation:?} does not apply"));
            hostile_dirs::judge(family.as_ref(), ROOT, &hostile)
                .unwrap_or_else(|w| panic!("{violation:?}: {w}"));
            let refused = matches!(hostile.expected, Expected::Refused { .. });
            let hostile = hostile_dirs::plant(&disk, Path::new(ROOT), &state, violation, &mut rng)
                .expect("planted")
                .expect("applies");
            match hostile_dirs::judge(&accepting, ROOT, &hostile) {
                Err(w) if refused => assert!(w.contains("accepted it"), "{violation:?}: {w}"),
                Ok(()) if !refused => {}
                other => panic!("{violation:?}: {other:?}"),
            }
        }
    }

    /// The violations the family reads rather than refuses are judged against the state
    /// they must show: the same expectation on the honest directory (no violation planted)
    /// fails.
    #[test]
    fn a_shape_read_otherwise_than_documented_is_reported() {
        let family = small();
        let (disk, state) = closed(family.as_ref());
        for violation in [
            Violation::SnapshotPeerLeadingZeroOctet,
            Violation::LargeSnapshotMeta,
            Violation::LegacyImportMarker,
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut hostile =
                hostile_dirs::plant(&disk, Path::new(ROOT), &state, violation, &mut rng)
                    .expect("planted")
                    .expect("applies");
            hostile.disk = disk.fork();
            let what = hostile_dirs::judge(family.as_ref(), ROOT, &hostile).expect_err("caught");
            assert!(what.contains("showed another state than expected"), "{violation:?}: {what}");
        }
    }

    /// Consecutive clean closes of a run walk the whole catalogue, from a start drawn from
    /// the seed; the same seed and position give the same violation.
    #[test]
    fn the_rotation_meets_every_violation() {
        let family = small();
        let (disk, state) = closed(family.as_ref());
        for seed in [0, 1, 0xdead_beef] {
            let met: Vec<Violation> = (0..Violation::ALL.len() as u64)
                .map(|nth| {
                    hostile_dirs::check(family.as_ref(), ROOT, &disk, &state, seed, nth)
                        .expect("held")
                })
                .collect();
            let mut sorted = met.iter().map(|v| v.name()).collect::<Vec<_>>();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), Violation::ALL.len(), "seed {seed}: {met:?}");
            let again = hostile_dirs::check(family.as_ref(), ROOT, &disk, &state, seed, 0);
            assert_eq!(again, Ok(met[0]), "seed {seed}");
        }
    }

    /// The leading-zero spellings keep at most three digits an octet.
    #[test]
    fn leading_zero_spellings() {
        assert_eq!(hostile_dirs::leading_zero_spelling("10.0.0.2:8000:0:0"), "010.0.0.2:8000:0:0");
        assert_eq!(
            hostile_dirs::leading_zero_spelling("192.168.1.10:8000:0:0"),
            "192.168.01.10:8000:0:0"
        );
        assert_eq!(
            hostile_dirs::leading_zero_spelling("100.200.150.255:1:0:0"),
            "100.200.150.05:1:0:0"
        );
    }
}
