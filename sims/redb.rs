//! The redb family against the contract: the conformance suite on the real disk (`OsVfs`
//! in a temporary directory), generated histories, crash-safe creation, poisoning, and
//! `inspect`.

use std::sync::Arc;

use quorumkit_storage::families::redb::RedbFamily;
use quorumkit_storage::sim::conformance::FamilyFixture;
use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig, Mode};
use quorumkit_storage::sim::engine::runner::{run_history, RunOptions};
use quorumkit_storage::vfs::OsVfs;

/// A conformance fixture whose instances live in a temporary directory, removed when the
/// fixture (one per case) drops.
struct TempFixture {
    inner: FamilyFixture,
    _dir: tempfile::TempDir,
}

impl quorumkit_storage::sim::conformance::Fixture for TempFixture {
    fn fresh(&mut self) -> Box<dyn quorumkit_storage::contract::RaftStorage> {
        self.inner.fresh()
    }
    fn reopen(
        &mut self,
        instance: Box<dyn quorumkit_storage::contract::RaftStorage>,
    ) -> Box<dyn quorumkit_storage::contract::RaftStorage> {
        self.inner.reopen(instance)
    }
    fn durable(&self) -> bool {
        self.inner.durable()
    }
}

fn fixture() -> TempFixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let base = dir.path().to_str().expect("UTF-8 temp path").to_string();
    TempFixture {
        inner: FamilyFixture::new(Arc::new(RedbFamily::new()), Arc::new(OsVfs::new()), base),
        _dir: dir,
    }
}

mod conformance {
    quorumkit_storage::conformance_tests!(super::fixture());
}

/// The shared crash conformance cases (every SimDisk operation of every mutation), with the
/// default two-phase commit and with redb's one-phase commit.
mod crash_conformance {
    quorumkit_storage::crash_conformance_tests!(std::sync::Arc::new(
        quorumkit_storage::families::redb::RedbFamily::new()
    ));
}

mod crash_conformance_one_phase_commit {
    quorumkit_storage::crash_conformance_tests!(std::sync::Arc::new(
        quorumkit_storage::families::redb::RedbFamily::with_options(
            quorumkit_storage::families::redb::RedbOptions {
                two_phase_commit: false,
                ..Default::default()
            }
        )
    ));
}

fn run_generated(mode: Mode, seeds: std::ops::Range<u64>) {
    let config = GeneratorConfig { mode, ..GeneratorConfig::default() };
    for seed in seeds {
        let dir = tempfile::tempdir().expect("temporary directory");
        let location = dir.path().join("db.redb");
        let ops = generate(seed, &config);
        let outcome = run_history(
            Arc::new(RedbFamily::new()),
            location.to_str().expect("UTF-8 temp path"),
            Arc::new(OsVfs::new()),
            &ops,
            RunOptions::default(),
        );
        if let Some(f) = outcome.failure {
            panic!("seed {seed}: {f}");
        }
    }
}

#[test]
fn generated_raft_histories_hold_on_os_disk() {
    run_generated(Mode::Raft, 0..6);
}

#[test]
fn generated_raw_histories_hold_on_os_disk() {
    run_generated(Mode::Raw, 0..6);
}

// ---- on the simulated disk ----------------------------------------------------------------

mod sim {
    use std::sync::Arc;

    use quorumkit_storage::contract::{
        Entry, Family, Meta, Payload, PeerId, RaftStorage, SnapshotMeta, SnapshotPath,
        StorageError, StorageResult,
    };
    use quorumkit_storage::families::redb::{inspect, RedbFamily, RedbOptions};
    use quorumkit_storage::sim::conformance::FamilyFixture;
    use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig, Mode};
    use quorumkit_storage::sim::engine::ops::pseudo_random_bytes;
    use quorumkit_storage::sim::engine::runner::{run_history, RunOptions};
    use quorumkit_storage::state::{first_difference, RaftState};
    use quorumkit_storage::vfs::{
        EnumerateOptions, FaultPlan, FaultRate, OpenOptions, SimDisk, SimDiskOptions, Vfs,
        VfsHandle,
    };

    /// Where every scenario keeps its database.
    const LOCATION: &str = "data/raft.redb";

    pub fn disk(seed: u64, sector_size: u32) -> Arc<SimDisk> {
        SimDisk::new(SimDiskOptions { seed, sector_size, ..SimDiskOptions::default() })
    }

    pub fn fixture() -> FamilyFixture {
        FamilyFixture::new(Arc::new(RedbFamily::new()), disk(1, 512), "conformance")
    }

    mod conformance {
        quorumkit_storage::conformance_tests!(super::fixture());
    }

    fn open(vfs: &Arc<SimDisk>) -> StorageResult<Box<dyn RaftStorage>> {
        open_with(RedbFamily::new(), vfs)
    }

    fn open_with(family: RedbFamily, vfs: &Arc<SimDisk>) -> StorageResult<Box<dyn RaftStorage>> {
        let vfs: VfsHandle = vfs.clone();
        family.open(LOCATION, vfs)
    }

    fn capture(instance: &dyn RaftStorage) -> RaftState {
        RaftState::capture(instance).expect("reading the instance")
    }

    fn data(index: u64, term: u64, len: usize) -> Entry {
        Entry::data(index, term, pseudo_random_bytes(index * 7 + term, len))
    }

    fn batch(from: u64, to: u64, term: u64) -> Vec<Entry> {
        (from..=to).map(|i| data(i, term, (i % 5 * 300) as usize)).collect()
    }

    fn peers(n: u8) -> Vec<PeerId> {
        (1..=n).map(|i| PeerId::new(format!("10.0.0.{i}:8000:0"))).collect()
    }

    fn publish(
        instance: &mut dyn RaftStorage,
        index: u64,
        files: &[(&str, usize, Option<&[u8]>)],
    ) -> StorageResult<()> {
        let mut writer = instance.begin_snapshot()?;
        for (path, len, meta) in files {
            let path = SnapshotPath::new(*path).expect("valid path");
            let meta = quorumkit_storage::contract::FileMeta {
                user_meta: meta.map(bytes::Bytes::copy_from_slice),
                ..Default::default()
            };
            writer.add_file(&path, &meta)?;
            let bytes = pseudo_random_bytes(*len as u64 ^ index, *len);
            let mut offset = 0;
            for chunk in bytes.chunks(40_000) {
                writer.write_file(&path, offset, chunk)?;
                offset += chunk.len() as u64;
            }
        }
        writer.set_meta(SnapshotMeta {
            last_included_index: index,
            last_included_term: 1,
            peers: peers(3),
            old_peers: vec![],
        });
        writer.publish()
    }

    /// A state with entries, a vote and a snapshot of two files.
    fn populate(instance: &mut dyn RaftStorage) -> StorageResult<()> {
        instance.append(&batch(1, 12, 1))?;
        instance.save_meta(&Meta { term: 2, voted_for: Some(PeerId::new("10.0.0.2:8000:0")) })?;
        publish(instance, 5, &[("a/data", 9_000, Some(b"m")), ("b", 10, None)])?;
        instance.truncate_prefix(3)
    }

    fn import(instance: &mut dyn RaftStorage, state: &RaftState) -> StorageResult<()> {
        let mut sink = instance.begin_import()?;
        sink.set_first_index(state.first)?;
        for chunk in state.entries.chunks(4) {
            sink.append(chunk)?;
        }
        sink.set_meta(&state.meta)?;
        if let Some(s) = &state.snapshot {
            for (path, f) in &s.files {
                sink.add_snapshot_file(path, &f.file_meta)?;
                for (i, chunk) in f.data.chunks(50_000).enumerate() {
                    sink.write_snapshot_file(path, (i * 50_000) as u64, chunk)?;
                }
            }
            sink.set_snapshot_meta(s.meta.clone())?;
        }
        sink.commit()
    }

    /// What a crash during a mutation may leave (DESIGN §2's atomicity table).
    enum Allowed {
        /// The state before or after.
        BeforeOrAfter,
        /// The state before, or after any prefix of this appended batch.
        AppendPrefix(Vec<Entry>),
        /// An empty instance or the complete imported state.
        EmptyOrComplete,
    }

    type Step = fn(&mut dyn RaftStorage) -> StorageResult<()>;

    /// Runs `setup` on a fresh instance, then `mutation` under a mark, and checks every crash
    /// state the disk can leave: the instance reopens, its state is allowed (and is the state
    /// after the mutation when the crash came after it returned), and it takes a further
    /// mutation. Returns the number of crash states checked.
    #[allow(clippy::too_many_arguments)]
    fn crash_every_point(
        family: RedbFamily,
        name: &str,
        seed: u64,
        sector_size: u32,
        enumerate: EnumerateOptions,
        setup: Step,
        mutation: Step,
        allowed: Allowed,
    ) -> usize {
        let disk = disk(seed, sector_size);
        let mut instance = open_with(family, &disk).expect("open");
        setup(instance.as_mut()).expect("setup");
        let before = capture(instance.as_ref());
        let mark = disk.mark();
        mutation(instance.as_mut()).expect("mutation");
        let returned_at = disk.op_count();
        let after = capture(instance.as_ref());
        let states = disk.crash_states(mark, enumerate).expect("enumerate");
        let mut allowed_states = vec![before.clone(), after.clone()];
        match &allowed {
            Allowed::BeforeOrAfter => {}
            Allowed::AppendPrefix(entries) => {
                for k in 1..entries.len() {
                    let mut s = before.clone();
                    s.entries.extend(entries[..k].iter().cloned());
                    allowed_states.push(s);
                }
            }
            Allowed::EmptyOrComplete => allowed_states[0] = RaftState::new(),
        }
        let mut failures = Vec::new();
        let mut checked = 0;
        for state in states {
            checked += 1;
            let context = format!(
                "{name}: crash after op {} keeping {:?} of {} pending",
                state.after_op,
                state.kept.iter().map(|u| (u.op_no, u.sector)).collect::<Vec<_>>(),
                state.pending_units
            );
            let mut reopened = match open_with(family, &state.disk) {
                Ok(i) => i,
                Err(e) => {
                    failures.push(format!("{context}: reopen failed: {e}"));
                    continue;
                }
            };
            let got = match RaftState::capture(reopened.as_ref()) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!("{context}: reading failed: {e}"));
                    continue;
                }
            };
            if !allowed_states.iter().any(|s| first_difference(&got, s).is_none()) {
                let vs_before = first_difference(&got, &allowed_states[0]).unwrap_or_default();
                let vs_after = first_difference(&got, &after).unwrap_or_default();
                failures.push(format!(
                    "{context}: state not allowed; vs before: {vs_before}; vs after: {vs_after}"
                ));
                continue;
            }
            if state.after_op >= returned_at {
                if let Some(d) = first_difference(&got, &after) {
                    failures.push(format!("{context}: an acknowledged mutation was lost: {d}"));
                    continue;
                }
            }
            let next = got.last() + 1;
            if let Err(e) = reopened.append(&[data(next, got.meta.term, 100)]) {
                failures.push(format!("{context}: append after recovery failed: {e}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {checked} crash states failed; first ones:\n{}",
            failures.len(),
            failures.iter().take(8).cloned().collect::<Vec<_>>().join("\n")
        );
        assert!(checked > 1, "{name}: the mutation did no I/O?");
        checked
    }

    fn whole_writes() -> EnumerateOptions {
        EnumerateOptions { subset_units_max: 6, sample_count: 24, ..EnumerateOptions::default() }
    }

    fn torn_writes() -> EnumerateOptions {
        EnumerateOptions { subset_units_max: 6, sample_count: 24, tear_writes: true, seed: 3 }
    }

    fn nothing(_: &mut dyn RaftStorage) -> StorageResult<()> {
        Ok(())
    }

    fn append_batch(i: &mut dyn RaftStorage) -> StorageResult<()> {
        i.append(&batch(13, 20, 3))
    }

    fn check_all(name: &str, setup: Step, mutation: Step, allowed: fn() -> Allowed) {
        let one_phase = RedbFamily::with_options(RedbOptions {
            two_phase_commit: false,
            ..RedbOptions::default()
        });
        for (family, commit) in [(RedbFamily::new(), "2pc"), (one_phase, "1pc")] {
            for (sector_size, options) in [(4096, whole_writes()), (512, torn_writes())] {
                let n = crash_every_point(
                    family,
                    name,
                    11,
                    sector_size,
                    options,
                    setup,
                    mutation,
                    allowed(),
                );
                eprintln!("{name} ({commit}): {n} crash states, {sector_size}-byte sectors");
            }
        }
    }

    #[test]
    fn crash_during_append_leaves_a_prefix() {
        check_all("append", populate, append_batch, || Allowed::AppendPrefix(batch(13, 20, 3)));
    }

    #[test]
    fn crash_during_truncate_prefix_is_atomic() {
        check_all("truncate_prefix", populate, |i| i.truncate_prefix(9), || Allowed::BeforeOrAfter);
    }

    #[test]
    fn crash_during_truncate_suffix_is_atomic() {
        check_all("truncate_suffix", populate, |i| i.truncate_suffix(6), || Allowed::BeforeOrAfter);
    }

    #[test]
    fn crash_during_reset_is_atomic() {
        check_all("reset", populate, |i| i.reset(40), || Allowed::BeforeOrAfter);
    }

    #[test]
    fn crash_during_save_meta_is_atomic() {
        check_all(
            "save_meta",
            populate,
            |i| i.save_meta(&Meta { term: 3, voted_for: None }),
            || Allowed::BeforeOrAfter,
        );
    }

    #[test]
    fn crash_during_snapshot_publish_keeps_one_whole_snapshot() {
        check_all(
            "snapshot publish",
            populate,
            |i| publish(i, 10, &[("b", 70_000, None), ("c/d", 300, Some(b""))]),
            || Allowed::BeforeOrAfter,
        );
    }

    fn source_state() -> RaftState {
        let disk = disk(99, 4096);
        let mut instance = open(&disk).expect("open");
        populate(instance.as_mut()).expect("populate");
        publish(instance.as_mut(), 8, &[("big", 140_000, Some(b"x")), ("e", 0, None)])
            .expect("publish");
        capture(instance.as_ref())
    }

    #[test]
    fn crash_during_import_leaves_empty_or_complete() {
        check_all("import", nothing, |i| import(i, &source_state()), || Allowed::EmptyOrComplete);
    }

    /// Creation itself is crash-safe: a crash anywhere while `open` builds a new database
    /// leaves a disk where the next open gives a fresh, empty, usable instance.
    #[test]
    fn crash_during_creation_reopens_fresh() {
        for (sector_size, options) in [(4096, whole_writes()), (512, torn_writes())] {
            let disk = disk(5, sector_size);
            let mark = disk.mark();
            let instance = open(&disk).expect("open");
            let states = disk.crash_states(mark, options).expect("enumerate");
            let mut checked = 0;
            for state in states {
                checked += 1;
                let context = format!("creation: crash after op {}", state.after_op);
                let mut reopened =
                    open(&state.disk).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
                let got = capture(reopened.as_ref());
                assert_eq!(first_difference(&got, &RaftState::new()), None, "{context}");
                reopened.append(&[data(1, 1, 10)]).unwrap_or_else(|e| panic!("{context}: {e}"));
                let vfs: VfsHandle = state.disk.clone();
                assert!(
                    !vfs.exists("data/raft.redb.creating".as_ref()).unwrap(),
                    "{context}: the staging file was left behind"
                );
            }
            assert!(checked > 10, "creation did only {checked} crash points");
            drop(instance);
        }
    }

    /// A crash at a random point of a long history, many times over: random subsets and
    /// tears (not only the enumerator's), each followed by a check that nothing acknowledged
    /// was lost.
    #[test]
    fn random_crashes_lose_nothing_acknowledged() {
        for seed in 0..12u64 {
            let disk = SimDisk::new(SimDiskOptions {
                seed,
                sector_size: if seed.is_multiple_of(2) { 512 } else { 4096 },
                crash_tear_probability: 0.5,
                ..SimDiskOptions::default()
            });
            let mut instance = open(&disk).expect("open");
            populate(instance.as_mut()).expect("populate");
            let acknowledged = capture(instance.as_ref());
            // Arm a crash somewhere inside the next mutations.
            disk.crash_after_op(disk.op_count() + 5 + seed * 7);
            let mut last_ok = acknowledged.clone();
            let mut candidates = vec![acknowledged];
            for k in 0..6u64 {
                let from = last_ok.last() + 1;
                let entries = batch(from, from + k, 4);
                match instance.append(&entries) {
                    Ok(()) => {
                        last_ok.entries.extend(entries);
                        candidates = vec![last_ok.clone()];
                    }
                    Err(_) => {
                        let mut s = last_ok.clone();
                        for e in &entries {
                            s.entries.push(e.clone());
                            candidates.push(s.clone());
                        }
                        break;
                    }
                }
            }
            drop(instance);
            disk.crash();
            let reopened = open(&disk).unwrap_or_else(|e| panic!("seed {seed}: reopen: {e}"));
            let got = capture(reopened.as_ref());
            assert!(
                candidates.iter().any(|c| first_difference(&got, c).is_none()),
                "seed {seed}: recovered state is not the acknowledged one or an allowed \
                 prefix: {}",
                first_difference(&got, &last_ok).unwrap_or_default()
            );
        }
    }

    /// After an fsync EIO the instance is poisoned: the failing call reports the EIO, every
    /// later mutation `Poisoned`; a reopen recovers the state before or after, and works.
    #[test]
    fn fsync_error_poisons_until_reopen() {
        let disk = disk(3, 4096);
        let mut instance = open(&disk).expect("open");
        populate(instance.as_mut()).expect("populate");
        let before = capture(instance.as_ref());
        disk.set_fault_plan(FaultPlan {
            fsync_error: FaultRate::with_probability(1.0),
            ..FaultPlan::none()
        });
        let err = instance.append(&batch(13, 14, 2)).expect_err("the sync fails");
        assert!(matches!(err, StorageError::Vfs(_)), "first failure: {err}");
        disk.set_fault_plan(FaultPlan::none());
        let later = instance.save_meta(&Meta { term: 9, voted_for: None });
        assert!(matches!(later, Err(StorageError::Poisoned { .. })), "later: {later:?}");
        let later = instance.begin_snapshot().map(|_| ());
        assert!(matches!(later, Err(StorageError::Poisoned { .. })), "snapshot: {later:?}");
        drop(instance);
        let mut reopened = open(&disk).expect("reopen after poisoning");
        let got = capture(reopened.as_ref());
        let mut after = before.clone();
        after.entries.extend(batch(13, 14, 2));
        assert!(
            first_difference(&got, &before).is_none() || first_difference(&got, &after).is_none(),
            "{}",
            first_difference(&got, &before).unwrap_or_default()
        );
        reopened.save_meta(&Meta { term: 9, voted_for: None }).expect("works after reopen");
    }

    /// A write EIO (or a full disk) fails the mutation and poisons the instance too (redb
    /// cannot tell which pages reached the file); the state is intact after reopen.
    #[test]
    fn write_error_and_full_disk_fail_the_call() {
        for plan in [
            FaultPlan { write_error: FaultRate::with_probability(1.0), ..FaultPlan::none() },
            FaultPlan { capacity_bytes: Some(1), ..FaultPlan::none() },
        ] {
            let disk = disk(4, 4096);
            let mut instance = open(&disk).expect("open");
            populate(instance.as_mut()).expect("populate");
            let file_len = disk.clone().metadata(LOCATION.as_ref()).unwrap().len;
            disk.set_fault_plan(FaultPlan {
                capacity_bytes: plan.capacity_bytes.map(|_| file_len + 8192),
                ..plan.clone()
            });
            // Append until the disk refuses (a write EIO at once; a full disk once redb's file
            // must grow past what it already allocated).
            let mut failed = false;
            for k in 0..200u64 {
                let from = 13 + k * 4;
                let big: Vec<Entry> = (from..from + 4).map(|i| data(i, 2, 60_000)).collect();
                if instance.append(&big).is_err() {
                    failed = true;
                    break;
                }
            }
            assert!(failed, "{plan:?}: 48 MB of appends all succeeded");
            let acknowledged = capture(instance.as_ref());
            disk.set_fault_plan(FaultPlan::none());
            assert!(matches!(
                instance.save_meta(&Meta { term: 9, voted_for: None }),
                Err(StorageError::Poisoned { .. })
            ));
            drop(instance);
            let mut reopened = open(&disk).expect("reopen");
            let got = capture(reopened.as_ref());
            assert_eq!(first_difference(&got, &acknowledged), None, "{plan:?}");
            reopened.save_meta(&Meta { term: 9, voted_for: None }).expect("works after reopen");
        }
    }

    /// An empty file under the database's name was not made by this family (its creation
    /// renames a committed file into place): the open fails closed instead of letting redb
    /// initialise a fresh database over whatever was lost.
    #[test]
    fn empty_database_file_fails_closed() {
        let disk = disk(6, 4096);
        let vfs: VfsHandle = disk.clone();
        vfs.create_dir_all("data".as_ref()).unwrap();
        vfs.open(LOCATION.as_ref(), OpenOptions::CREATE).unwrap();
        match open(&disk) {
            Err(e) => assert!(e.is_corruption(), "{e}"),
            Ok(_) => panic!("an empty database file opened"),
        }
    }

    /// A leftover staging file from an interrupted creation is removed or rebuilt.
    #[test]
    fn leftover_staging_file_is_cleaned() {
        let disk = disk(7, 4096);
        let vfs: VfsHandle = disk.clone();
        vfs.create_dir_all("data".as_ref()).unwrap();
        let staging = vfs.open("data/raft.redb.creating".as_ref(), OpenOptions::CREATE).unwrap();
        staging.write_at(b"half a database", 0).unwrap();
        drop(staging);
        let mut instance = open(&disk).expect("open over a leftover staging file");
        instance.append(&batch(1, 3, 1)).unwrap();
        assert!(!vfs.exists("data/raft.redb.creating".as_ref()).unwrap());
    }

    /// With a small cache, redb writes back an earlier commit's epilogue pages while it
    /// reads, best effort, and ignores a failed write there. The family's backend must not
    /// latch that ignored error (which failed every later call, reads included: found by a
    /// soak seed whose drawn tunables were `redb.cache_size=30394,redb.two_phase_commit=
    /// false`, an honest write error failing `model_equality` with "reading the instance
    /// failed"). Outside a read scope a failed write is still latched.
    #[test]
    fn a_failed_write_inside_a_read_scope_is_not_latched() {
        use quorumkit_storage::families::redb::backend::reading;
        use quorumkit_storage::families::redb::{IoLatch, VfsBackend};
        use redb::StorageBackend;
        let disk = disk(9, 4096);
        let vfs: VfsHandle = disk.clone();
        let file = vfs.open("db".as_ref(), OpenOptions::CREATE).unwrap();
        let latch = IoLatch::new();
        let backend = VfsBackend::new(file, "db", latch.clone());
        backend.write(0, &[7; 4096]).unwrap();
        let failing =
            FaultPlan { write_error: FaultRate::with_probability(1.0), ..FaultPlan::none() };
        disk.set_fault_plan(failing.clone());
        {
            let _scope = reading();
            assert!(backend.write(4096, &[8; 4096]).is_err(), "the write must still fail");
        }
        assert!(latch.get().is_none(), "a failed writeback while reading was latched");
        let mut page = [0; 4096];
        backend.read(0, &mut page).expect("reads go on");
        assert_eq!(page, [7; 4096]);
        disk.set_fault_plan(FaultPlan::none());
        backend.write(4096, &[8; 4096]).expect("the page is written again");
        disk.set_fault_plan(failing);
        assert!(backend.write(8192, &[9; 4096]).is_err());
        assert!(latch.get().is_some(), "a failed write outside a read scope must be latched");
    }

    /// An export cut streams while writes continue, on the simulated disk too, and a cut
    /// begun before a crash-free reopen is still readable after the instance moved on.
    #[test]
    fn export_cut_survives_concurrent_commits() {
        let disk = disk(8, 4096);
        let mut instance = open(&disk).expect("open");
        populate(instance.as_mut()).unwrap();
        let expected = capture(instance.as_ref());
        let cut = instance.begin_export().unwrap();
        for k in 0..20 {
            let from = instance.last_index() + 1;
            instance.append(&batch(from, from + 3, 5)).unwrap();
            if k % 5 == 0 {
                publish(instance.as_mut(), from, &[("x", 5_000 + k, None)]).unwrap();
                instance.truncate_prefix(from - 2).unwrap();
            }
        }
        instance.reset(500).unwrap();
        let seen = RaftState::capture(cut.as_ref()).unwrap();
        assert_eq!(first_difference(&seen, &expected), None);
    }

    #[test]
    fn generated_histories_hold_on_sim_disk() {
        for (mode, seeds) in [(Mode::Raft, 0..10u64), (Mode::Raw, 0..10u64)] {
            let config = GeneratorConfig { mode, ..GeneratorConfig::default() };
            for seed in seeds {
                let ops = generate(seed, &config);
                let outcome = run_history(
                    Arc::new(RedbFamily::new()),
                    LOCATION,
                    disk(seed, 512),
                    &ops,
                    RunOptions::default(),
                );
                if let Some(f) = outcome.failure {
                    panic!("{mode:?} seed {seed}: {f}");
                }
            }
        }
    }

    /// Damage every page of a cleanly closed database in turn (garbage over the whole page,
    /// or one flipped byte), as bit rot would: opening and reading the whole state either
    /// gives exactly the state before (the page was free) or fails with a corruption error.
    /// Never a panic, never a silently wrong state. redb itself does not verify page
    /// checksums on a clean open (and may panic on a damaged page, as its docs say); the
    /// family's per-record seals, the sealed file list and the panic shield make up for it.
    #[test]
    fn every_damaged_page_is_reported_or_harmless() {
        let disk = disk(12, 4096);
        let mut instance = open(&disk).expect("open");
        populate(instance.as_mut()).unwrap();
        publish(instance.as_mut(), 9, &[("big", 150_000, None), ("m", 20, Some(b"z"))]).unwrap();
        instance.append(&batch(13, 40, 2)).unwrap();
        let before = capture(instance.as_ref());
        drop(instance);
        let vfs: VfsHandle = disk.clone();
        let pages = vfs.metadata(LOCATION.as_ref()).unwrap().len / 4096;
        let (mut harmless, mut reported) = (0, 0);
        for page in 0..pages {
            for garbage in [true, false] {
                let fork = disk.fork();
                let fork_vfs: VfsHandle = fork.clone();
                let file = fork_vfs.open(LOCATION.as_ref(), OpenOptions::WRITE).unwrap();
                if garbage {
                    file.write_at(&[0x72; 4096], page * 4096).unwrap();
                } else {
                    let mut byte = [0u8];
                    let at = page * 4096 + 40;
                    file.read_exact_at(&mut byte, at).unwrap();
                    file.write_at(&[byte[0] ^ 0x10], at).unwrap();
                }
                drop(file);
                // Open, read everything, then write on top (a damaged allocator state could
                // hand out a live page) and read everything again.
                let outcome = open(&fork).and_then(|mut i| {
                    let got = RaftState::capture(i.as_ref())?;
                    if let Some(d) = first_difference(&got, &before) {
                        panic!("page {page} (garbage: {garbage}): silently wrong: {d}");
                    }
                    i.append(&batch(41, 44, 3))?;
                    publish(i.as_mut(), 41, &[("after", 5000, None)])?;
                    RaftState::capture(i.as_ref())
                });
                match outcome {
                    Ok(got) => {
                        assert_eq!(got.last(), 44, "page {page} (garbage: {garbage})");
                        assert_eq!(got.entries[..38], before.entries[..], "page {page}");
                        harmless += 1;
                    }
                    Err(e) if e.is_corruption() => reported += 1,
                    Err(e) => panic!("page {page} (garbage: {garbage}): not corruption: {e}"),
                }
            }
        }
        eprintln!("{pages} pages: {harmless} damages harmless, {reported} reported");
        assert!(reported > 0);
    }

    #[test]
    fn inspect_reports_a_healthy_database() {
        let disk = disk(9, 4096);
        let mut instance = open(&disk).expect("open");
        populate(instance.as_mut()).unwrap();
        instance
            .append(&[Entry {
                index: 13,
                term: 2,
                payload: Payload::Configuration { peers: peers(2), old_peers: peers(1) },
            }])
            .unwrap();
        drop(instance);
        let vfs: VfsHandle = disk.clone();
        let report = inspect(LOCATION, vfs).expect("inspect");
        assert!(report.problems.is_empty(), "{report}");
        assert_eq!(report.format_version, Some(2));
        let log = report.log.clone().expect("log");
        assert_eq!((log.first, log.last, log.entries, log.configuration), (3, 13, 11, 1));
        let snapshot = report.snapshot.clone().expect("snapshot");
        assert_eq!(snapshot.files.len(), 2);
        assert_eq!(snapshot.files[0].path, "a/data");
        assert_eq!(snapshot.files[0].user_meta_len, Some(1));
        let text = report.to_string();
        assert!(text.contains("log range       [3, 13]"), "{text}");
        assert!(text.contains("problems        none"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["meta"]["term"], 2);
    }

    #[test]
    fn inspect_flags_a_database_needing_recovery() {
        let disk = disk(10, 4096);
        let mut instance = open(&disk).expect("open");
        populate(instance.as_mut()).unwrap();
        disk.crash();
        drop(instance);
        let vfs: VfsHandle = disk.clone();
        let report = inspect(LOCATION, vfs).expect("inspect");
        assert!(report.needs_recovery, "{report}");
        assert!(!report.problems.is_empty());
    }
}

// ---- generated histories under the harness's fault plans ----------------------------------

mod swarm {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use quorumkit_storage::contract::{Family, RaftStorage, StorageError};
    use quorumkit_storage::families::redb::RedbFamily;
    use quorumkit_storage::sim::engine::apply::apply_action;
    use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig};
    use quorumkit_storage::sim::engine::model::Model;
    use quorumkit_storage::sim::engine::ops::Action;
    use quorumkit_storage::state::{first_difference, RaftState};
    use quorumkit_storage::vfs::{FaultPlan, SimDisk, SimDiskOptions, VfsErrorKind, VfsHandle};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const LOCATION: &str = "swarm/raft.redb";

    /// How one seed ended.
    #[derive(Debug, Default)]
    pub struct SwarmStats {
        pub steps: u64,
        pub crashes: u64,
        pub faulted_calls: u64,
        /// The family refused to go on with a corruption error (allowed under dishonest
        /// plans).
        pub refused: Option<String>,
    }

    struct Run {
        disk: Arc<SimDisk>,
        plan: FaultPlan,
        model: Model,
        /// Digest of every state the history passed through (a lying disk may roll back to
        /// any of them).
        seen: BTreeSet<String>,
        stats: SwarmStats,
    }

    fn open(disk: &Arc<SimDisk>) -> Result<Box<dyn RaftStorage>, StorageError> {
        let vfs: VfsHandle = disk.clone();
        RedbFamily::new().open(LOCATION, vfs)
    }

    /// The states a crash during `action` (from `before`) may leave besides `before`.
    fn in_flight(before: &Model, action: &Action) -> Vec<RaftState> {
        let mut out = Vec::new();
        match action {
            Action::Append(entries) => {
                for k in 1..=entries.len() {
                    let mut m = before.clone();
                    if m.apply(&Action::Append(entries[..k].to_vec())).is_ok() {
                        out.push(m.state);
                    }
                }
            }
            other => {
                let mut m = before.clone();
                if m.apply(other).is_ok() {
                    out.push(m.state);
                }
            }
        }
        out
    }

    impl Run {
        /// Power loss, then a reopen checked against the fault model. Returns `None` when
        /// the family (allowed to) refused with a corruption error.
        fn crash(
            &mut self,
            candidates: &[RaftState],
        ) -> Result<Option<Box<dyn RaftStorage>>, String> {
            self.stats.crashes += 1;
            self.disk.crash();
            // Reopen and read back with faults paused, so the check sees what the crash left.
            self.disk.set_fault_plan(FaultPlan::none());
            let result = self.reopen_and_check(candidates);
            self.disk.set_fault_plan(self.plan.clone());
            result
        }

        fn reopen_and_check(
            &mut self,
            candidates: &[RaftState],
        ) -> Result<Option<Box<dyn RaftStorage>>, String> {
            let honest = self.plan.is_honest();
            let latent = self.plan.latent_error.is_enabled();
            let refuse = |stats: &mut SwarmStats, e: StorageError| {
                // Failing closed: corruption reported, or (with latent sector errors) the
                // unreadable sector's EIO passed on.
                let unreadable =
                    latent && matches!(&e, StorageError::Vfs(v) if v.kind == VfsErrorKind::Io);
                if !honest && (e.is_corruption() || unreadable) {
                    stats.refused = Some(e.to_string());
                    Ok(None)
                } else {
                    Err(format!("after crash {}: {e}", stats.crashes))
                }
            };
            let instance = match open(&self.disk) {
                Ok(i) => i,
                Err(e) => return refuse(&mut self.stats, e),
            };
            let got = match RaftState::capture(instance.as_ref()) {
                Ok(s) => s,
                Err(e) => return refuse(&mut self.stats, e),
            };
            let digest = got.digest();
            let acknowledged = self.model.state.digest();
            let allowed = digest == acknowledged
                || candidates.iter().any(|c| c.digest() == digest)
                || (!honest && self.seen.contains(&digest));
            if !allowed {
                return Err(format!(
                    "after crash {} ({}): recovered state is not allowed: vs acknowledged: {}",
                    self.stats.crashes,
                    if honest { "honest disk" } else { "faulty disk" },
                    first_difference(&got, &self.model.state).unwrap_or_default()
                ));
            }
            self.model.state = got;
            self.seen.insert(digest);
            Ok(Some(instance))
        }
    }

    /// Runs generated history `seed` on a SimDisk with the swarm fault plan of `seed`,
    /// crashing at random points and after every faulted call.
    pub fn run_swarm(seed: u64, ops_len: usize) -> Result<SwarmStats, String> {
        let plan = FaultPlan::swarm(seed);
        let disk = SimDisk::new(SimDiskOptions {
            seed,
            sector_size: if seed.is_multiple_of(2) { 512 } else { 4096 },
            faults: plan.clone(),
            ..SimDiskOptions::default()
        });
        let ops = generate(seed, &GeneratorConfig { ops_len, ..GeneratorConfig::default() });
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
        let mut run = Run {
            disk,
            plan,
            model: Model::new(),
            seen: [RaftState::new().digest()].into_iter().collect(),
            stats: SwarmStats::default(),
        };
        let mut instance = match open(&run.disk) {
            Ok(i) => Some(i),
            Err(_) => match run.crash(&[])? {
                Some(i) => Some(i),
                None => return Ok(run.stats),
            },
        };
        for op in &ops {
            run.stats.steps += 1;
            let action = op.resolve(&run.model);
            let mut candidates = Vec::new();
            let faulted = if action == Action::Reopen {
                instance = None;
                match open(&run.disk) {
                    Ok(i) => {
                        instance = Some(i);
                        false
                    }
                    Err(_) => true,
                }
            } else if let Some(live) = instance.as_mut() {
                let mut next = run.model.clone();
                let model_result = next.apply(&action);
                match (model_result, apply_action(live.as_mut(), &action)) {
                    (Ok(()), Ok(())) => {
                        run.model = next;
                        run.seen.insert(run.model.state.digest());
                        false
                    }
                    (Err(_), Err(_)) => false,
                    (Err(e), Ok(())) => return Err(format!("{action}: accepted, but {e}")),
                    (Ok(()), Err(StorageError::Contract(e))) => {
                        return Err(format!("{action}: rejected a valid call: {e}"))
                    }
                    (Ok(()), Err(_)) => {
                        candidates = in_flight(&run.model, &action);
                        true
                    }
                }
            } else {
                true
            };
            if faulted {
                run.stats.faulted_calls += 1;
            }
            if faulted || rng.random_range(0..12) == 0 {
                drop(instance.take());
                match run.crash(&candidates)? {
                    Some(i) => instance = Some(i),
                    None => return Ok(run.stats),
                }
            }
        }
        Ok(run.stats)
    }

    #[test]
    fn swarm_fault_plans_hold() {
        // `QK_REDB_SWARM_SEEDS=N` runs more seeds (a local soak); the default keeps CI short.
        let seeds = std::env::var("QK_REDB_SWARM_SEEDS").ok().and_then(|s| s.parse().ok());
        let mut totals = (0, 0, 0, 0);
        for seed in 0..seeds.unwrap_or(48u64) {
            let stats = run_swarm(seed, 60)
                .unwrap_or_else(|f| panic!("seed {seed}, plan {:?}: {f}", FaultPlan::swarm(seed)));
            totals.0 += stats.steps;
            totals.1 += stats.crashes;
            totals.2 += stats.faulted_calls;
            totals.3 += u64::from(stats.refused.is_some());
        }
        eprintln!(
            "swarm: {} steps, {} crashes, {} faulted calls, {} refusals",
            totals.0, totals.1, totals.2, totals.3
        );
    }
}

// ---- stale pages: misdirected writes ------------------------------------------------------

/// Misdirected writes against redb's page checksums: a page write that lands elsewhere
/// leaves the intended location holding an older page that is internally valid. redb
/// verifies its page checksums only when it repairs a database after a crash or when asked
/// to check its integrity, not on ordinary reads (not an upstream bug: that is redb's
/// documented design), so such a page is read as if current. The family therefore checks
/// integrity on every open and re-checks, within a session, every page it reads against
/// what it last wrote or read there. Minimal reproduction of
/// `corpus/findings/redb-model_equality-seed-658.json`.
mod stale_pages {
    use std::sync::Arc;

    use quorumkit_storage::contract::{
        Family, Meta, PeerId, RaftStorage, StorageError, StorageResult,
    };
    use quorumkit_storage::families::redb::{RedbFamily, RedbOptions};
    use quorumkit_storage::vfs::{FaultPlan, FaultRate, SimDisk, SimDiskOptions, VfsHandle};

    fn disk() -> Arc<SimDisk> {
        SimDisk::new(SimDiskOptions { seed: 21, sector_size: 4096, ..SimDiskOptions::default() })
    }

    fn open_with(family: RedbFamily, disk: &Arc<SimDisk>) -> StorageResult<Box<dyn RaftStorage>> {
        let vfs: VfsHandle = disk.clone();
        family.open("data/raft.redb", vfs)
    }

    const VOTE: &str = "10.0.0.7:8000:0";

    /// The operation number a trace line starts with (`#12 write_at ...`).
    fn op_number(line: &str) -> u64 {
        let digits: String = line
            .trim_start()
            .trim_start_matches('#')
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect("a trace line starts with its operation number")
    }

    /// Saves terms 1..=6 (so redb has freed pages holding older meta), then term 7 with a
    /// vote; returns the instance and the page writes (offset > 0, not the header) of that
    /// last commit.
    fn save_terms(
        disk: &Arc<SimDisk>,
        family: RedbFamily,
    ) -> (Box<dyn RaftStorage>, StorageResult<()>, Vec<u64>) {
        let mut instance = open_with(family, disk).expect("open");
        for term in 1..=6 {
            instance.save_meta(&Meta { term, voted_for: None }).expect("save_meta");
        }
        let before = op_number(&disk.trace_tail(1));
        let meta = Meta { term: 7, voted_for: Some(PeerId::new(VOTE)) };
        let saved = instance.save_meta(&meta);
        let after = op_number(&disk.trace_tail(1));
        let tail = disk.trace_tail((after - before) as usize);
        let pages = tail
            .lines()
            .filter(|l| l.contains(" write_at ") && !l.contains(" off=0 "))
            .map(op_number)
            .collect();
        (instance, saved, pages)
    }

    /// Runs the history with the page writes `misdirected` (operation numbers) of the term-7
    /// commit misdirected, then reads the meta: from the same instance, or after a clean
    /// close and a reopen with `family`. None when no write was misdirected after all.
    fn meta_after_misdirect(
        family: RedbFamily,
        misdirected: &[u64],
        reopen: bool,
    ) -> Option<StorageResult<Meta>> {
        let disk = disk();
        disk.set_fault_plan(FaultPlan {
            misdirect: FaultRate::at_ops(misdirected.iter().copied()),
            ..FaultPlan::none()
        });
        let (instance, saved, _) = save_terms(&disk, family);
        disk.set_fault_plan(FaultPlan::none());
        if disk.fault_stats().misdirects == 0 {
            // The write never became durable as itself (a later write replaced it first).
            return None;
        }
        // A commit that fails closed (it read its own misdirected page back) is fine too.
        if let Err(e) = saved {
            return Some(Err(e));
        }
        if !reopen {
            return Some(instance.meta());
        }
        drop(instance);
        Some(open_with(family, &disk).and_then(|reopened| reopened.meta()))
    }

    /// What reading the meta gives when each page write of the commit alone is misdirected.
    fn outcomes(family: RedbFamily, reopen: bool) -> Vec<(u64, StorageResult<Meta>)> {
        let (_, saved, pages) = save_terms(&disk(), family);
        saved.expect("save_meta on an honest disk");
        assert!(!pages.is_empty(), "the commit wrote no page");
        let all: Vec<_> = pages
            .into_iter()
            .filter_map(|op| Some((op, meta_after_misdirect(family, &[op], reopen)?)))
            .collect();
        assert!(!all.is_empty(), "no page write of the commit could be misdirected");
        all
    }

    /// Asserts no outcome is a wrong value: each is the saved meta or corruption naming the
    /// database file.
    fn assert_never_stale(all: Vec<(u64, StorageResult<Meta>)>) {
        for (op, got) in all {
            match got {
                Ok(meta) => assert_eq!(meta.term, 7, "misdirected op {op}: {meta:?}"),
                Err(StorageError::Corruption(c)) => {
                    assert!(c.path.ends_with("raft.redb"), "op {op}: {c}")
                }
                Err(other) => panic!("misdirected op {op}: {other}"),
            }
        }
    }

    /// Without the integrity check, some misdirected page makes the reopened database serve
    /// an older meta page silently: the wrong value the finding showed. This pins redb's
    /// behaviour; if redb starts verifying pages on read, it fails and tells us so.
    #[test]
    fn redb_alone_returns_a_stale_meta_page() {
        let family = RedbFamily::with_options(RedbOptions {
            check_integrity_on_open: false,
            ..RedbOptions::default()
        });
        let all = outcomes(family, true);
        assert!(
            all.iter().any(|(_, got)| matches!(got, Ok(meta) if meta.term < 7)),
            "no misdirected page gave a stale meta: {all:?}"
        );
    }

    /// With the family's defaults no misdirected page gives a wrong value after a reopen:
    /// the integrity check on open fails it closed.
    #[test]
    fn the_family_never_serves_a_stale_meta_page_after_reopen() {
        assert_never_stale(outcomes(RedbFamily::new(), true));
    }

    /// Nor within the session that wrote it, when the page is not in redb's cache and is read
    /// back from the disk (a cache too small to hold it): the backend checks every page it
    /// reads against what it last wrote there.
    #[test]
    fn the_family_never_serves_a_stale_meta_page_in_session() {
        let family =
            RedbFamily::with_options(RedbOptions { cache_size: 0, ..RedbOptions::default() });
        assert_never_stale(outcomes(family, false));
    }
}

/// The overflow probe of `inspect_agreement`.
mod inspect_overflow {
    use quorumkit_storage::contract::{Entry, Family, RaftStorage};
    use quorumkit_storage::families::redb::RedbFamily;
    use quorumkit_storage::state::RaftState;
    use quorumkit_storage::vfs::{SimDisk, SimDiskOptions, VfsHandle};

    const LOCATION: &str = "data/raft.redb";

    /// The overflow probe of `inspect_agreement` (its module doc): on a cleanly closed
    /// database, every count of planted entries around `PROBLEMS_MAX` is judged right and
    /// leaves the disk as it was; the seeded draw reaches both sides of the limit; and a
    /// report that lists one problem too many, miscounts the rest or drops (or adds) the
    /// `... and K more` line is caught.
    #[test]
    fn the_inspect_overflow_probe_bites() {
        use quorumkit_storage::sim::checks::inspect_agreement::{
            judge_overflow, overflow, overflow_planted,
        };
        let disk = SimDisk::new(SimDiskOptions::default());
        let family = RedbFamily::new();
        let vfs: VfsHandle = disk.clone();
        let mut instance: Box<dyn RaftStorage> = family.open(LOCATION, vfs).expect("open");
        let entries: Vec<Entry> = (1..=5).map(|i| Entry::data(i, 1, vec![i as u8; 9])).collect();
        instance.append(&entries).expect("append");
        let state = RaftState::capture(instance.as_ref()).expect("capture");
        drop(instance);
        for planted in [1, 31, 32, 33, 39] {
            assert_eq!(overflow(&family, LOCATION, &disk, &state, planted), Ok(planted + 1));
        }
        let observer: VfsHandle = disk.observer();
        let details = family.inspect_details(LOCATION, observer).expect("inspect");
        let (_, value) = details.expect("details");
        assert_eq!(value["problems"], serde_json::json!([]), "the original disk is untouched");
        let drawn: Vec<u64> = (0..64).map(overflow_planted).collect();
        assert!(drawn.iter().any(|&n| n >= 32) && drawn.iter().any(|&n| n < 32));
        let report = |listed: usize, rest: u64| {
            let problems = vec!["odd"; listed];
            serde_json::json!({ "problems": problems, "problems_not_listed": rest })
        };
        let more = "  problems\n    - odd\n    ... and 1 more\n";
        assert_eq!(judge_overflow(more, &report(32, 1), 32, 5), Ok(33));
        assert_eq!(judge_overflow("  problems\n", &report(2, 0), 1, 5), Ok(2));
        let wrong = [
            (more, report(33, 0), 32, "lists 33 problems where 32 are due"),
            (more, report(32, 0), 32, "problems_not_listed = 0 where 1 is due"),
            ("  problems\n", report(32, 1), 32, "prints None where \"... and 1 more\" is due"),
            (more, report(32, 2), 33, "prints Some(\"    ... and 1 more\") where \"... and 2"),
            (more, report(31, 0), 30, "prints \"    ... and 1 more\" where nothing"),
        ];
        for (text, value, planted, words) in wrong {
            let what = judge_overflow(text, &value, planted, 5).expect_err(words);
            assert!(what.contains(words), "{words}: {what}");
        }
    }
}
