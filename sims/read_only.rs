//! Read-only opens and the one-writer lock, on the simulated disk: what they promise per
//! family, and that the harness's two checks (`read_only`, `single_writer`) bite.

#[path = "support/planted.rs"]
mod planted;

use std::path::Path;
use std::sync::Arc;

use planted::{assert_caught_by_its_own_check, families_of};
use quorumkit_storage::contract::{
    Entry, Family, RaftStorage, ReadOnlyOpen, StorageError, StorageResult, ViewSource,
};
use quorumkit_storage::families::local::LocalFamily;
use quorumkit_storage::families::redb::RedbFamily;
use quorumkit_storage::sim::checks::read_only::probe;
use quorumkit_storage::sim::checks::single_writer::second_writer;
use quorumkit_storage::sim::conformance::crash_cases::{
    run_crash_case, CrashCaseOptions, CRASH_CASES,
};
use quorumkit_storage::sim::planted::{PlantedBug, PlantedFamily};
use quorumkit_storage::state::RaftState;
use quorumkit_storage::vfs::{
    FileKind, Image, LockMode, OpenOptions, RepairAction, SimDisk, SimDiskOptions, Vfs, VfsHandle,
};

const LOCATION: &str = "inst";

fn disk() -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed: 3, ..SimDiskOptions::default() })
}

fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to).map(|i| Entry::data(i, term, vec![i as u8; 300])).collect()
}

/// An instance with entries 1..=30 and a vote, left open.
fn populated(family: &dyn Family, disk: &Arc<SimDisk>) -> Box<dyn RaftStorage> {
    let mut instance = family.open(LOCATION, disk.clone()).expect("open");
    instance.append(&entries(1, 20, 1)).expect("append");
    instance
        .save_meta(&quorumkit_storage::contract::Meta {
            term: 2,
            voted_for: Some(quorumkit_storage::contract::PeerId::new("10.0.0.1:8000:0")),
        })
        .expect("meta");
    instance.append(&entries(21, 30, 2)).expect("append");
    instance
}

/// Leaves what a crash of braft (or of us) leaves in a local instance: a `.tmp`, a
/// `snapshot/temp/` directory, and a torn record at the end of the open segment.
fn damage_local(disk: &Arc<SimDisk>) {
    let vfs: VfsHandle = disk.clone();
    let tmp = vfs.open(Path::new("inst/log/log_meta.tmp"), OpenOptions::CREATE).expect("tmp");
    tmp.write_at(b"half a log_meta", 0).expect("write");
    vfs.create_dir_all(Path::new("inst/snapshot/temp")).expect("temp dir");
    let segment = vfs
        .read_dir(Path::new("inst/log"))
        .expect("list")
        .into_iter()
        .find(|e| e.name.starts_with("log_inprogress_"))
        .expect("an open segment");
    let file =
        vfs.open(&Path::new("inst/log").join(&segment.name), OpenOptions::WRITE).expect("segment");
    let len = file.len().expect("len");
    file.write_at(&[0xAB; 7], len).expect("torn tail");
}

fn read_only(family: &dyn Family, disk: &Arc<SimDisk>) -> StorageResult<ReadOnlyOpen> {
    family.open_read_only(LOCATION, disk.clone())
}

/// A read-only open of a damaged local instance changes no byte and no name, shows the state
/// the read-write open then recovers, and lists the repairs that open then makes.
#[test]
fn local_read_only_open_shows_the_recovery_it_does_not_make() {
    let disk = disk();
    let family = LocalFamily::default();
    let expected = {
        let instance = populated(&family, &disk);
        RaftState::capture(instance.as_ref()).expect("capture")
    };
    damage_local(&disk);
    let (listing, mutations) = (disk.listing(Image::Visible), disk.mutating_op_count());
    let opened = read_only(&family, &disk).expect("read-only open");
    assert_eq!(opened.source, ViewSource::Replayed);
    assert_eq!(RaftState::capture(opened.view.as_ref()).expect("capture"), expected);
    let repairs: Vec<String> = opened.repairs.iter().map(|r| r.to_string()).collect();
    assert!(repairs.iter().any(|r| r == "remove inst/log/log_meta.tmp"), "{repairs:?}");
    assert!(repairs.iter().any(|r| r.starts_with("cut inst/log/log_inprogress_")), "{repairs:?}");
    assert!(
        opened
            .repairs
            .iter()
            .any(|r| r.path == Path::new("inst/snapshot/temp")
                && r.action == RepairAction::RemovedDir),
        "{repairs:?}"
    );
    // Another reader may look at the same time; a writer may not.
    let second = read_only(&family, &disk).expect("two readers");
    let writer = family.open(LOCATION, disk.clone()).map(drop);
    assert!(matches!(writer, Err(StorageError::Locked { wanted: LockMode::Exclusive, .. })));
    drop((opened, second));
    assert_eq!(disk.mutating_op_count(), mutations, "a read-only open issued a mutating call");
    assert_eq!(disk.listing(Image::Visible), listing, "a read-only open changed the disk");
    // The read-write open makes exactly those repairs and recovers exactly that state.
    let (instance, made) = family.open_reporting(LOCATION, disk.clone()).expect("read-write");
    assert_eq!(RaftState::capture(instance.as_ref()).expect("capture"), expected);
    let made: Vec<String> = made.iter().map(|r| r.to_string()).collect();
    assert_eq!(made, repairs);
    assert_ne!(disk.listing(Image::Visible), listing);
}

/// A read-only open while a writer holds the instance is refused, naming the lock; so is a
/// second writer, before it changed anything.
#[test]
fn a_writer_keeps_out_a_second_writer_and_readers_on_every_durable_family() {
    let families: [Arc<dyn Family>; 2] =
        [Arc::new(LocalFamily::default()), Arc::new(RedbFamily::new())];
    for family in families {
        let disk = disk();
        let _writer = populated(family.as_ref(), &disk);
        let mutations = disk.mutating_op_count();
        for result in [
            family.open(LOCATION, disk.clone()).map(drop),
            read_only(family.as_ref(), &disk).map(drop),
        ] {
            match result {
                Err(e @ StorageError::Locked { .. }) => {
                    assert!(e.to_string().contains("is locked"), "{e}")
                }
                other => panic!("{}: not refused by the lock: {other:?}", family.scheme()),
            }
        }
        assert_eq!(
            disk.mutating_op_count(),
            mutations,
            "{}: a refused open wrote",
            family.scheme()
        );
        second_writer(family.as_ref(), LOCATION, &disk).expect("the check holds");
    }
}

/// A local import commits by swapping roots; while its root is moved aside
/// (`.NAME.qk-old`, the importer still holding the lock file inside it) and no root stands
/// at `NAME`, a second writer takes the lock there and is refused, instead of setting up a
/// fresh instance at `NAME`; once the holder is gone, the open takes that lock and import
/// recovery moves the root back, with its state.
#[test]
fn a_writer_finding_the_root_moved_aside_is_refused_by_the_lock_inside_it() {
    let disk = disk();
    let family = LocalFamily::default();
    let vfs: VfsHandle = disk.clone();
    vfs.create_dir_all(Path::new("p")).expect("parent");
    let mut writer = family.open("p/inst", disk.clone()).expect("open");
    writer.append(&entries(1, 3, 1)).expect("append");
    let before = RaftState::capture(writer.as_ref()).expect("capture");
    vfs.rename(Path::new("p/inst"), Path::new("p/.inst.qk-old")).expect("move aside");
    match family.open("p/inst", disk.clone()).map(drop) {
        Err(StorageError::Locked { path, .. }) => {
            assert_eq!(path, Path::new("p/.inst.qk-old/qk_lock"))
        }
        other => panic!("not refused by the lock moved aside: {other:?}"),
    }
    assert!(!vfs.exists(Path::new("p/inst")).expect("exists"), "a fresh root was set up");
    drop(writer);
    let reopened = family.open("p/inst", disk.clone()).expect("reopen");
    assert_eq!(RaftState::capture(reopened.as_ref()).expect("capture"), before);
    assert!(!vfs.exists(Path::new("p/.inst.qk-old")).expect("exists"));
}

/// redb: a cleanly closed file opens with redb's own read-only open; a file a crash left
/// needing recovery is recovered in memory instead. Both show what the read-write open does.
#[test]
fn redb_read_only_open_uses_the_engine_or_replays_recovery_in_memory() {
    let family = RedbFamily::new();
    let disk = disk();
    let expected = {
        let instance = populated(&family, &disk);
        RaftState::capture(instance.as_ref()).expect("capture")
    };
    for crashed in [false, true] {
        if crashed {
            let mut instance = family.open(LOCATION, disk.clone()).expect("open");
            instance.append(&entries(31, 31, 2)).expect("append");
            drop(instance);
            // Reopened without a clean close: redb must recover.
            let instance = family.open(LOCATION, disk.clone()).expect("open");
            std::mem::forget(instance);
            disk.crash();
        }
        let mutations = disk.mutating_op_count();
        let listing = disk.listing(Image::Visible);
        let opened = read_only(&family, &disk).expect("read-only");
        let want = if crashed { ViewSource::Replayed } else { ViewSource::EngineReadOnly };
        assert_eq!(opened.source, want);
        let shown = RaftState::capture(opened.view.as_ref()).expect("capture");
        drop(opened);
        assert_eq!(disk.mutating_op_count(), mutations);
        assert_eq!(disk.listing(Image::Visible), listing);
        let instance = family.open(LOCATION, disk.clone()).expect("read-write");
        assert_eq!(shown, RaftState::capture(instance.as_ref()).expect("capture"));
        if !crashed {
            assert_eq!(shown, expected);
        }
    }
}

/// A family whose read-only open still cleans up the leftovers it finds (it deletes a
/// `.tmp`), as the issue found `qk inspect` doing: the `read_only` check names it.
#[test]
fn the_read_only_check_sees_a_read_only_open_that_deletes_a_tmp() {
    struct DeletesTmp(LocalFamily);
    impl Family for DeletesTmp {
        fn scheme(&self) -> &'static str {
            "local"
        }
        fn durable(&self) -> bool {
            true
        }
        fn open(&self, location: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
            self.0.open(location, vfs)
        }
        fn open_read_only(&self, location: &str, vfs: VfsHandle) -> StorageResult<ReadOnlyOpen> {
            let log = Path::new(location).join("log");
            for entry in vfs.read_dir(&log)? {
                if entry.kind == FileKind::File && entry.name.ends_with(".tmp") {
                    let _ = vfs.remove_file(&log.join(&entry.name));
                }
            }
            self.0.open_read_only(location, vfs)
        }
    }
    let disk = disk();
    let family = DeletesTmp(LocalFamily::default());
    drop(populated(&family, &disk));
    let recovered = {
        let probe_clean = probe(&family, LOCATION, &disk);
        let instance = family.open(LOCATION, disk.clone()).expect("open");
        let state = RaftState::capture(instance.as_ref()).expect("capture");
        probe_clean.judge(&state, false).expect("nothing to delete: the check holds");
        state
    };
    damage_local(&disk);
    let found = probe(&family, LOCATION, &disk);
    let what = found.judge(&recovered, false).expect_err("the check must bite");
    assert!(what.contains("issued 1 mutating disk operation"), "{what}");
    assert!(disk.observer().exists(Path::new("inst/log/log_meta.tmp")).expect("exists"));
}

/// The two planted bugs are caught by exactly their own checks on both durable families,
/// and shrink to a couple of ops.
#[test]
fn planted_read_only_open_writes_is_caught_by_read_only() {
    let results = assert_caught_by_its_own_check(PlantedBug::ReadOnlyOpenWrites);
    assert_eq!(families_of(&results), ["local", "redb"]);
    for r in &results {
        let failure = r.shrunk_failure.as_ref().expect("checked by the helper");
        assert!(failure.difference.contains("mutating disk operation"), "{failure}");
        assert!(r.shrunk_len <= 4, "{}: shrunk only to {:?}", r.family, r.shrunk);
    }
}

#[test]
fn planted_no_lock_is_caught_by_single_writer() {
    let results = assert_caught_by_its_own_check(PlantedBug::NoLock);
    assert_eq!(families_of(&results), ["local", "redb"]);
    for r in &results {
        let failure = r.shrunk_failure.as_ref().expect("checked by the helper");
        assert!(failure.difference.contains("while a writer held it"), "{failure}");
        assert!(r.shrunk_len <= 4, "{}: shrunk only to {:?}", r.family, r.shrunk);
    }
}

/// Exhaustive crash enumeration runs the read-only check on every crash state too.
#[test]
fn every_enumerated_crash_state_is_opened_read_only_first() {
    let case = CRASH_CASES.iter().find(|c| c.name == "crash_in_truncate_suffix").expect("case");
    let planted = Arc::new(PlantedFamily::new(
        Arc::new(LocalFamily::default()),
        PlantedBug::ReadOnlyOpenWrites,
    ));
    let what = run_crash_case(planted, case, &CrashCaseOptions::default())
        .expect_err("the read-only check must bite on crash states");
    assert!(what.starts_with("read_only: crash after disk op"), "{what}");
    let report =
        run_crash_case(Arc::new(LocalFamily::default()), case, &CrashCaseOptions::default())
            .expect("the real family holds");
    assert!(report.states > 0);
}
