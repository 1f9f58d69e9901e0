//! Exhaustive crash enumeration on tiny traces: the exact set of crash states, counted by
//! hand in each test.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use quorumkit_storage::vfs::{
    CrashUnit, EnumerateError, EnumerateOptions, OpenOptions, SimDisk, SimDiskOptions, Vfs,
    VfsErrorKind,
};

fn path(text: &str) -> &Path {
    Path::new(text)
}

fn new_disk() -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { sector_size: 512, ..SimDiskOptions::default() })
}

fn exhaustive(tear_writes: bool) -> EnumerateOptions {
    EnumerateOptions { subset_units_max: 8, sample_count: 16, tear_writes, seed: 0 }
}

/// The file's contents, or `None` when it does not exist.
fn contents(vfs: &dyn Vfs, name: &str) -> Option<Vec<u8>> {
    match vfs.open(path(name), OpenOptions::READ) {
        Ok(file) => Some(file.read_all().expect("read")),
        Err(e) if e.kind == VfsErrorKind::NotFound => None,
        Err(e) => panic!("open {name}: {e}"),
    }
}

/// How many states each (crash point relative to the mark, outcome) pair got.
type Census = BTreeMap<(u64, Option<Vec<u8>>), usize>;

#[test]
fn create_write_sync_sync_dir_yields_ten_states() {
    let disk = new_disk();
    let mark = disk.mark();
    let base = mark.op_no;
    let file = disk.open(path("a"), OpenOptions::CREATE).unwrap(); // op 1: create (pending)
    file.write_at(b"x", 0).unwrap(); // op 2: write (pending)
    file.sync().unwrap(); // op 3: the write is durable, the name is not
    disk.sync_dir(path("")).unwrap(); // op 4: the name is durable

    let mut census = Census::new();
    let mut total = 0;
    for state in disk.crash_states(mark, exhaustive(false)).unwrap() {
        total += 1;
        *census.entry((state.after_op - base, contents(&*state.disk, "a"))).or_default() += 1;
    }
    // Crash points and the pending units at each:
    //   at the mark: none                  -> 1 state
    //   after op 1:  {create}              -> 2 states
    //   after op 2:  {create, write}       -> 4 states
    //   after op 3:  {create}              -> 2 states
    //   after op 4:  none                  -> 1 state
    // Total 1 + 2 + 4 + 2 + 1 = 10.
    assert_eq!(total, 10);
    let x = Some(b"x".to_vec());
    let empty = Some(Vec::new());
    let expected: Census = [
        ((0, None), 1),
        ((1, None), 1),
        ((1, empty.clone()), 1),
        ((2, None), 2), // create dropped, write kept or not: no name either way
        ((2, empty), 1),
        ((2, x.clone()), 1),
        ((3, None), 1),
        ((3, x.clone()), 1),
        ((4, x), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(census, expected);
}

#[test]
fn a_three_sector_write_split_into_sectors_yields_every_mask_once() {
    let disk = new_disk();
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    file.sync().unwrap();
    disk.sync_dir(path("")).unwrap();
    let mark = disk.mark();
    let base = mark.op_no;
    file.write_at(&[0xAA; 3 * 512], 0).unwrap(); // op 1: three sector units
    file.sync().unwrap(); // op 2

    let states: Vec<_> = disk.crash_states(mark, exhaustive(true)).unwrap().collect();
    // At the mark: 1 state. After the write: 3 units, 2^3 = 8 states. After the sync: 1.
    assert_eq!(states.len(), 1 + 8 + 1);
    let mut masks = BTreeMap::new();
    for state in states.iter().filter(|s| s.after_op - base == 1) {
        let data = contents(&*state.disk, "f").unwrap();
        let kept: Vec<bool> = state.kept.iter().map(|u| u.sector.is_some()).collect();
        assert_eq!(state.pending_units, 3);
        let mask: Vec<bool> = if data.is_empty() {
            vec![false; 3]
        } else {
            // A write that partly arrived extends the file; missing sectors read as zeros.
            assert_eq!(data.len(), 3 * 512);
            data.chunks(512).map(|s| s.iter().all(|b| *b == 0xAA)).collect()
        };
        assert_eq!(mask.iter().filter(|k| **k).count(), kept.len());
        *masks.entry(mask).or_insert(0) += 1;
    }
    assert_eq!(masks.len(), 8, "{masks:?}");
    assert!(masks.values().all(|n| *n == 1));
    assert_eq!(contents(&*states[9].disk, "f").unwrap(), vec![0xAA; 3 * 512]);
}

#[test]
fn a_rename_is_kept_or_dropped_whole() {
    let disk = new_disk();
    let file = disk.open(path("tmp"), OpenOptions::CREATE).unwrap();
    file.write_at(b"v", 0).unwrap();
    file.sync().unwrap();
    disk.sync_dir(path("")).unwrap();
    drop(file);
    let mark = disk.mark();
    let base = mark.op_no;
    disk.rename(path("tmp"), path("final")).unwrap(); // op 1
    disk.sync_dir(path("")).unwrap(); // op 2
    let mut outcomes = Vec::new();
    for state in disk.crash_states(mark, exhaustive(false)).unwrap() {
        let names =
            (contents(&*state.disk, "tmp").is_some(), contents(&*state.disk, "final").is_some());
        outcomes.push((state.after_op - base, names));
    }
    // At the mark: tmp. After the rename: {rename} pending, 2 states (tmp, or final).
    // After the sync: final. 1 + 2 + 1 = 4; never both names, never neither.
    assert_eq!(
        outcomes,
        vec![(0, (true, false)), (1, (true, false)), (1, (false, true)), (2, (false, true))]
    );
}

/// Five unsynced one-sector writes; returns the kept lists of every state.
fn five_writes(options: EnumerateOptions) -> Vec<(u64, Vec<CrashUnit>)> {
    let disk = new_disk();
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    disk.sync_dir(path("")).unwrap();
    let mark = disk.mark();
    let base = mark.op_no;
    for i in 0..5u64 {
        file.write_at(&[i as u8 + 1; 512], i * 512).unwrap();
    }
    disk.crash_states(mark, options).unwrap().map(|s| (s.after_op - base, s.kept)).collect()
}

#[test]
fn beyond_k_units_subsets_are_sampled_deterministically() {
    let options =
        EnumerateOptions { subset_units_max: 3, sample_count: 6, tear_writes: false, seed: 9 };
    let states = five_writes(options.clone());
    // Points: the mark (0 units: 1 state), after writes 1..3 (1, 2, 3 units <= K: 2 + 4 + 8
    // states), after writes 4 and 5 (4 and 5 units > K: 6 samples each).
    // Total 1 + 2 + 4 + 8 + 6 + 6 = 27.
    assert_eq!(states.len(), 27);
    let at_five: Vec<&Vec<CrashUnit>> =
        states.iter().filter(|(p, _)| *p == 5).map(|(_, k)| k).collect();
    assert!(at_five[0].is_empty(), "the first sample drops everything");
    assert_eq!(at_five[1].len(), 5, "the second keeps everything");
    assert_eq!(states, five_writes(options), "sampling is deterministic");
}

#[test]
fn crash_states_are_independent_rebooted_disks() {
    let disk = new_disk();
    let mark = disk.mark();
    let file = disk.open(path("a"), OpenOptions::CREATE).unwrap();
    file.write_at(b"1", 0).unwrap();
    let states: Vec<_> = disk.crash_states(mark, exhaustive(false)).unwrap().collect();
    assert_eq!(states.len(), 1 + 2 + 4);
    let last = &states[6].disk;
    assert_eq!(contents(&**last, "a").unwrap(), b"1");
    let f = last.open(path("a"), OpenOptions::WRITE).unwrap();
    f.write_at(b"2", 0).unwrap();
    // States after the write, in mask order over [create, write]: 3 none, 4 create only,
    // 5 write only (no name), 6 both.
    assert_eq!(contents(&*states[4].disk, "a"), Some(Vec::new()), "other states do not see it");
    assert_eq!(contents(&*states[5].disk, "a"), None);
    // The live disk is untouched by enumeration and still has its handle.
    file.write_at(b"3", 1).unwrap();
    assert_eq!(contents(&*disk, "a").unwrap(), b"13");
    assert_eq!(contents(&**last, "a").unwrap(), b"2");
}

#[test]
fn a_newer_mark_or_a_crash_makes_a_mark_stale() {
    let disk = new_disk();
    let first = disk.mark();
    let second = disk.mark();
    assert_eq!(disk.crash_states(first, exhaustive(false)).err(), Some(EnumerateError::StaleMark));
    disk.crash();
    assert_eq!(disk.crash_states(second, exhaustive(false)).err(), Some(EnumerateError::StaleMark));

    let tiny = SimDisk::new(SimDiskOptions { recording_ops_max: 2, ..SimDiskOptions::default() });
    let mark = tiny.mark();
    for _ in 0..3 {
        let _ = tiny.metadata(path("x"));
    }
    assert_eq!(
        tiny.crash_states(mark, exhaustive(false)).err(),
        Some(EnumerateError::TooLong { ops_max: 2 })
    );
}
