//! SimDisk's semantics, one focused test per rule of the fault model (`src/vfs/sim/mod.rs`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use quorumkit_storage::vfs::{
    CrashPersistence, FaultPlan, FaultRate, FaultStreams, Image, OpenOptions, SimDisk,
    SimDiskOptions, Vfs, VfsErrorKind, WriteAtomicity,
};

const SECTOR: usize = 512;

fn options(seed: u64) -> SimDiskOptions {
    SimDiskOptions { seed, sector_size: SECTOR as u32, ..SimDiskOptions::default() }
}

/// A disk whose crashes keep every pending operation (`keep` = 1) or none (`keep` = 0).
fn disk_keeping(keep: f64) -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions {
        crash_keep_probability: keep,
        crash_tear_probability: 0.0,
        ..options(1)
    })
}

fn path(text: &str) -> &Path {
    Path::new(text)
}

/// The file's contents, or `None` when it does not exist.
fn contents(vfs: &dyn Vfs, name: &str) -> Option<Vec<u8>> {
    match vfs.open(path(name), OpenOptions::READ) {
        Ok(file) => Some(file.read_all().expect("read")),
        Err(e) if e.kind == VfsErrorKind::NotFound => None,
        Err(e) => panic!("open {name}: {e}"),
    }
}

/// The error of a create-open of `name` (which must fail).
fn open_error(vfs: &dyn Vfs, name: &str) -> VfsErrorKind {
    match vfs.open(path(name), OpenOptions::CREATE) {
        Ok(_) => panic!("open {name} succeeded"),
        Err(e) => e.kind,
    }
}

/// Creates `name` with `data`, syncs it and its directory: durable.
fn durable_file(vfs: &dyn Vfs, name: &str, data: &[u8]) {
    let file = vfs.open(path(name), OpenOptions::CREATE_TRUNCATE).unwrap();
    file.write_at(data, 0).unwrap();
    file.sync().unwrap();
    let parent = path(name).parent().unwrap_or(path(""));
    vfs.sync_dir(parent).unwrap();
}

#[test]
fn unsynced_data_is_lost_on_crash() {
    let disk = disk_keeping(0.0);
    durable_file(&*disk, "f", b"old");
    let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
    file.write_at(b"new data", 0).unwrap();
    assert_eq!(contents(&*disk, "f").unwrap(), b"new data");
    let summary = disk.crash();
    assert_eq!((summary.pending, summary.kept), (1, 0));
    assert_eq!(contents(&*disk, "f").unwrap(), b"old");
}

#[test]
fn synced_data_survives_any_crash() {
    for seed in 0..20 {
        let disk = SimDisk::new(options(seed));
        durable_file(&*disk, "f", b"kept");
        disk.crash();
        assert_eq!(contents(&*disk, "f").unwrap(), b"kept", "seed {seed}");
    }
}

#[test]
fn synced_file_whose_name_was_never_dir_synced_is_lost() {
    let disk = disk_keeping(0.0);
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    file.write_at(b"data", 0).unwrap();
    file.sync().unwrap();
    disk.crash();
    assert_eq!(contents(&*disk, "f"), None);

    // With sync_dir it stays.
    durable_file(&*disk, "g", b"data");
    disk.crash();
    assert_eq!(contents(&*disk, "g").unwrap(), b"data");
}

#[test]
fn a_durable_name_with_unsynced_data_reads_as_the_durable_data() {
    let disk = disk_keeping(0.0);
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    disk.sync_dir(path("")).unwrap();
    file.write_at(b"never synced", 0).unwrap();
    disk.crash();
    assert_eq!(contents(&*disk, "f").unwrap(), b"");
}

#[test]
fn rename_is_durable_only_after_sync_dir() {
    let disk = disk_keeping(0.0);
    durable_file(&*disk, "tmp", b"v1");
    disk.rename(path("tmp"), path("final")).unwrap();
    disk.crash();
    assert_eq!(contents(&*disk, "tmp").unwrap(), b"v1", "an unsynced rename is undone");
    assert_eq!(contents(&*disk, "final"), None);

    disk.rename(path("tmp"), path("final")).unwrap();
    disk.sync_dir(path("")).unwrap();
    disk.crash();
    assert_eq!(contents(&*disk, "tmp"), None);
    assert_eq!(contents(&*disk, "final").unwrap(), b"v1");
}

#[test]
fn rename_over_a_file_replaces_it_atomically_at_a_crash() {
    // Whatever the crash keeps, exactly one of old and new content is at "current".
    let mut seen = BTreeSet::new();
    for seed in 0..64 {
        let disk = SimDisk::new(options(seed));
        durable_file(&*disk, "current", b"old");
        durable_file(&*disk, "next", b"new");
        disk.rename(path("next"), path("current")).unwrap();
        disk.crash();
        let current = contents(&*disk, "current").expect("current always exists");
        let next = contents(&*disk, "next");
        match (current.as_slice(), next.as_deref()) {
            (b"old", Some(b"new")) => seen.insert("before"),
            (b"new", None) => seen.insert("after"),
            other => panic!("seed {seed}: half a rename: {other:?}"),
        };
    }
    assert_eq!(seen.len(), 2, "both outcomes occur");
}

#[test]
fn cross_directory_rename_needs_both_parents_synced() {
    let disk = disk_keeping(0.0);
    disk.create_dir_all(path("a")).unwrap();
    disk.create_dir_all(path("b")).unwrap();
    durable_file(&*disk, "a/x", b"x");
    disk.rename(path("a/x"), path("b/x")).unwrap();
    disk.sync_dir(path("b")).unwrap();
    disk.crash();
    assert_eq!(contents(&*disk, "a/x").unwrap(), b"x", "target parent alone is not enough");
    assert_eq!(contents(&*disk, "b/x"), None);

    disk.rename(path("a/x"), path("b/x")).unwrap();
    disk.sync_dir(path("b")).unwrap();
    disk.sync_dir(path("a")).unwrap();
    disk.crash();
    assert_eq!(contents(&*disk, "a/x"), None);
    assert_eq!(contents(&*disk, "b/x").unwrap(), b"x");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Torn {
    None,
    Whole,
    Prefix,
    Suffix,
    Subset,
}

fn classify(kept: &[bool]) -> Torn {
    let n_kept = kept.iter().filter(|k| **k).count();
    if n_kept == 0 {
        Torn::None
    } else if n_kept == kept.len() {
        Torn::Whole
    } else if kept[..n_kept].iter().all(|k| *k) {
        Torn::Prefix
    } else if kept[kept.len() - n_kept..].iter().all(|k| *k) {
        Torn::Suffix
    } else {
        Torn::Subset
    }
}

#[test]
fn every_torn_write_pattern_is_observed_at_sector_granularity() {
    const N_SECTORS: usize = 8;
    let mut seen = BTreeSet::new();
    for seed in 0..200 {
        let disk = SimDisk::new(SimDiskOptions {
            crash_keep_probability: 1.0,
            crash_tear_probability: 1.0,
            ..options(seed)
        });
        durable_file(&*disk, "f", &[0u8; N_SECTORS * SECTOR]);
        let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
        file.write_at(&[0xAB; N_SECTORS * SECTOR], 0).unwrap();
        disk.crash();
        let data = contents(&*disk, "f").unwrap();
        let kept: Vec<bool> = data
            .chunks(SECTOR)
            .map(|sector| {
                // Sector-atomic: each sector is all old or all new.
                assert!(sector.iter().all(|b| *b == 0) || sector.iter().all(|b| *b == 0xAB));
                sector[0] == 0xAB
            })
            .collect();
        seen.insert(classify(&kept));
    }
    assert!(seen.contains(&Torn::Prefix), "{seen:?}");
    assert!(seen.contains(&Torn::Suffix), "{seen:?}");
    assert!(seen.contains(&Torn::Subset), "{seen:?}");
}

/// One in-place overwrite of 64 bytes in the middle of a durable one-sector file, crashed
/// with every write kept and torn: how the sector reads afterwards.
fn overwrite_inside_a_sector(seed: u64, declared: Option<WriteAtomicity>) -> Vec<u8> {
    let disk = SimDisk::new(SimDiskOptions {
        crash_keep_probability: 1.0,
        crash_tear_probability: 1.0,
        ..options(seed)
    });
    durable_file(&*disk, "header", &[0u8; SECTOR]);
    if let Some(atomicity) = declared {
        disk.declare_write_atomicity(path("header"), atomicity).unwrap();
    }
    let file = disk.open(path("header"), OpenOptions::WRITE).unwrap();
    file.write_at(&[0xCD; 64], 100).unwrap();
    disk.crash();
    contents(&*disk, "header").unwrap()
}

#[test]
fn a_file_declared_byte_atomic_tears_inside_a_sector_and_nowhere_else() {
    let mut mixed = 0;
    for seed in 0..100 {
        let data = overwrite_inside_a_sector(seed, Some(WriteAtomicity::Bytes(1)));
        assert_eq!(data.len(), SECTOR);
        // Powersafe overwrite: bytes outside the write never change.
        assert!(data[..100].iter().chain(&data[164..]).all(|b| *b == 0), "seed {seed}");
        let arrived = data[100..164].iter().filter(|b| **b == 0xCD).count();
        assert!(data[100..164].iter().all(|b| *b == 0 || *b == 0xCD), "seed {seed}");
        mixed += usize::from(arrived > 0 && arrived < 64);
    }
    // Every crash tears (probability 1), and a one-sector write tears only at bytes.
    assert_eq!(mixed, 100, "a byte-atomic file's write must tear inside its sector");
    assert!(
        overwrite_inside_a_sector(0, Some(WriteAtomicity::Bytes(1)))
            != overwrite_inside_a_sector(1, Some(WriteAtomicity::Bytes(1))),
        "different seeds tear differently"
    );
}

#[test]
fn an_undeclared_or_sector_atomic_file_never_tears_inside_a_sector() {
    for seed in 0..100 {
        for declared in [None, Some(WriteAtomicity::Sector), Some(WriteAtomicity::Bytes(4096))] {
            let data = overwrite_inside_a_sector(seed, declared);
            let arrived = data[100..164].iter().filter(|b| **b == 0xCD).count();
            assert_eq!(arrived, 64, "seed {seed} {declared:?}: a kept one-sector write is whole");
        }
    }
}

#[test]
fn a_declared_unit_tears_at_its_own_boundaries_and_follows_the_file_through_a_rename() {
    const UNIT: usize = 16;
    let mut kinds = BTreeSet::new();
    for seed in 0..100 {
        let disk = SimDisk::new(SimDiskOptions {
            crash_keep_probability: 1.0,
            crash_tear_probability: 1.0,
            ..options(seed)
        });
        durable_file(&*disk, "staging", &[0u8; SECTOR]);
        disk.declare_write_atomicity(path("staging"), WriteAtomicity::Bytes(UNIT as u32)).unwrap();
        disk.rename(path("staging"), path("db")).unwrap();
        disk.sync_dir(path("")).unwrap();
        let file = disk.open(path("db"), OpenOptions::WRITE).unwrap();
        file.write_at(&[0xEE; SECTOR], 0).unwrap();
        disk.crash();
        let data = contents(&*disk, "db").unwrap();
        let kept: Vec<bool> = data
            .chunks(UNIT)
            .map(|unit| {
                assert!(unit.iter().all(|b| *b == 0) || unit.iter().all(|b| *b == 0xEE));
                unit[0] == 0xEE
            })
            .collect();
        kinds.insert(classify(&kept));
    }
    assert!(kinds.contains(&Torn::Prefix) && kinds.contains(&Torn::Subset), "{kinds:?}");
    assert_eq!(WriteAtomicity::Bytes(24).unit(512), 16, "rounded down to a power of two");
    assert_eq!(WriteAtomicity::Bytes(8192).unit(512), 512, "never coarser than a sector");
    assert_eq!(WriteAtomicity::Bytes(0).unit(512), 1);
    let disk = SimDisk::new(options(0));
    let err = disk.declare_write_atomicity(path("absent"), WriteAtomicity::Bytes(1)).unwrap_err();
    assert_eq!(err.kind, VfsErrorKind::NotFound);
}

#[test]
fn an_extension_whose_data_never_arrived_reads_as_zeros() {
    let mut zero_sectors_seen = false;
    for seed in 0..50 {
        let disk = SimDisk::new(SimDiskOptions {
            crash_keep_probability: 1.0,
            crash_tear_probability: 1.0,
            sector_size: 4096,
            ..options(seed)
        });
        durable_file(&*disk, "f", b"");
        let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
        file.write_at(&[7u8; 4 * 4096], 0).unwrap();
        disk.crash();
        let data = contents(&*disk, "f").unwrap();
        assert_eq!(data.len(), 4 * 4096, "a kept write extends the length");
        for sector in data.chunks(4096) {
            assert!(sector.iter().all(|b| *b == 7) || sector.iter().all(|b| *b == 0));
            zero_sectors_seen |= sector[0] == 0;
        }
    }
    assert!(zero_sectors_seen);
}

#[test]
fn any_subset_of_pending_writes_survives_not_only_prefixes() {
    // Three unsynced writes to three sectors: over many seeds, a later write survives
    // without an earlier one.
    let mut out_of_order = false;
    for seed in 0..64 {
        let disk = SimDisk::new(SimDiskOptions { crash_tear_probability: 0.0, ..options(seed) });
        durable_file(&*disk, "f", &[0u8; 3 * SECTOR]);
        let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
        for i in 0..3u8 {
            file.write_at(&[i + 1; SECTOR], u64::from(i) * SECTOR as u64).unwrap();
        }
        disk.crash();
        let data = contents(&*disk, "f").unwrap();
        let kept: Vec<bool> = data.chunks(SECTOR).map(|s| s[0] != 0).collect();
        out_of_order |= kept.windows(2).any(|w| !w[0] && w[1]);
    }
    assert!(out_of_order);
}

/// Makes the disk's next operation, a sync, fail with EIO (and nothing else).
fn fail_next_sync(disk: &SimDisk) {
    let sync_op = disk.op_count() + 1;
    disk.set_fault_plan(FaultPlan {
        fsync_error: FaultRate::at_ops([sync_op]),
        ..FaultPlan::none()
    });
}

#[test]
fn fsyncgate_a_failed_sync_drops_the_dirty_data_and_a_retry_lies() {
    let disk = SimDisk::new(SimDiskOptions { crash_keep_probability: 1.0, ..options(3) });
    durable_file(&*disk, "f", b"");
    let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
    file.write_at(b"acknowledged?", 0).unwrap();
    fail_next_sync(&disk);
    assert_eq!(file.sync().unwrap_err().kind, VfsErrorKind::Io);
    assert_eq!(file.sync(), Ok(()), "the retry succeeds");
    assert_eq!(file.read_all().unwrap(), b"acknowledged?", "the page cache still shows it");
    disk.crash();
    assert_eq!(contents(&*disk, "f").unwrap(), b"", "but it never became durable");
    assert_eq!(disk.fault_stats().fsync_errors, 1);
}

#[test]
fn fsyncgate_keeps_a_length_change_for_the_next_good_sync() {
    // The dirty pages are dropped, but a set_len is the inode's: the next good sync (the
    // kernel's next journal commit) makes it durable, as redb's grown file needs (seed 22482).
    let disk = SimDisk::new(SimDiskOptions { crash_keep_probability: 0.0, ..options(3) });
    durable_file(&*disk, "f", b"abcd");
    let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
    file.write_at(b"XY", 0).unwrap();
    file.set_len(4096).unwrap();
    fail_next_sync(&disk);
    assert_eq!(file.sync().unwrap_err().kind, VfsErrorKind::Io);
    assert_eq!(file.sync(), Ok(()));
    disk.crash();
    let data = contents(&*disk, "f").unwrap();
    assert_eq!(data.len(), 4096, "the length change became durable with the good sync");
    assert_eq!(&data[..4], b"abcd", "the dropped write did not");
}

/// Which of `n` syncs of one file lied (the loss counter moved), with a power loss after
/// every `crash_every` syncs.
fn lying_pattern(faults: FaultPlan, n: usize, crash_every: usize) -> Vec<bool> {
    let disk = SimDisk::new(SimDiskOptions { faults, ..options(21) });
    durable_file(&*disk, "f", b"");
    let mut file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
    let mut lied = Vec::new();
    for i in 0..n {
        if i > 0 && i % crash_every == 0 {
            disk.crash();
            file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
        }
        file.write_at(b"x", 0).unwrap();
        let before = disk.fault_stats().fsync_losses;
        file.sync().unwrap();
        lied.push(disk.fault_stats().fsync_losses > before);
    }
    lied
}

#[test]
fn a_drawn_fsync_loss_starts_a_streak_that_a_power_loss_ends() {
    let rate = FaultPlan { fsync_loss: FaultRate::with_probability(0.02), ..FaultPlan::none() };
    let lied = lying_pattern(rate.clone(), 3000, usize::MAX);
    let longest = lied.split(|l| !l).map(<[bool]>::len).max().unwrap_or(0);
    // Independent 2% losses would almost never give four in a row.
    assert!(longest >= 4, "longest run of lying syncs: {longest}");
    // A power loss after every sync: a streak never outlives it, so lies are rare again.
    let lied = lying_pattern(rate, 3000, 1);
    let share = lied.iter().filter(|l| **l).count() as f64 / lied.len() as f64;
    assert!(share < 0.05, "share of lying syncs with a power loss after each: {share}");
    // Listed operations lie exactly there: no streak runs past them.
    let listed = FaultPlan { fsync_loss: FaultRate::at_ops(0..=60), ..FaultPlan::none() };
    let lied = lying_pattern(listed, 100, usize::MAX);
    assert!(lied[..10].iter().all(|l| *l), "{lied:?}");
    assert!(lied[40..].iter().all(|l| !*l), "{lied:?}");
}

#[test]
fn prefix_persistence_keeps_the_operations_issued_before_a_cut() {
    // Four files written in order, none synced: under prefix persistence a crash keeps the
    // first k of them for some k, never a later one without every earlier one.
    let mut cuts = BTreeSet::new();
    for seed in 0..40 {
        let disk = SimDisk::new(SimDiskOptions {
            crash_persistence: CrashPersistence::Prefix,
            ..options(seed)
        });
        for name in ["a", "b", "c", "d"] {
            durable_file(&*disk, name, b"");
        }
        for name in ["a", "b", "c", "d"] {
            let file = disk.open(path(name), OpenOptions::WRITE).unwrap();
            file.write_at(&[7u8; 2 * SECTOR], 0).unwrap();
        }
        disk.crash();
        let kept: Vec<bool> =
            ["a", "b", "c", "d"].iter().map(|n| !contents(&*disk, n).unwrap().is_empty()).collect();
        let k = kept.iter().take_while(|k| **k).count();
        assert!(kept[k..].iter().all(|k| !*k), "seed {seed}: not a prefix: {kept:?}");
        for name in ["a", "b", "c", "d"].iter().take(k) {
            assert_eq!(contents(&*disk, name).unwrap(), vec![7u8; 2 * SECTOR], "never torn");
        }
        cuts.insert(k);
    }
    assert!(cuts.len() >= 3, "cut points drawn: {cuts:?}");
}

#[test]
fn a_crash_that_keeps_set_len_never_drops_one() {
    let shrunk_or_grown = |keeps: bool| {
        (0..40)
            .filter(|seed| {
                let disk = SimDisk::new(SimDiskOptions {
                    crash_keep_probability: 0.0,
                    crash_keeps_set_len: keeps,
                    ..options(*seed)
                });
                durable_file(&*disk, "f", b"abcd");
                let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
                file.set_len(3 * SECTOR as u64).unwrap();
                file.write_at(b"lost", 0).unwrap();
                disk.crash();
                contents(&*disk, "f").unwrap()
                    == [b"abcd".as_slice(), &[0u8; 3 * SECTOR - 4]].concat()
            })
            .count()
    };
    assert_eq!(shrunk_or_grown(true), 40, "the set_len always survives, the write never");
    assert_eq!(shrunk_or_grown(false), 0, "with nothing kept, the set_len is lost too");
}

#[test]
fn fsync_loss_returns_ok_and_makes_nothing_durable() {
    let disk = SimDisk::new(SimDiskOptions {
        crash_keep_probability: 0.0,
        faults: FaultPlan { fsync_loss: FaultRate::with_probability(1.0), ..FaultPlan::none() },
        ..options(4)
    });
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    file.write_at(b"lost", 0).unwrap();
    file.sync().unwrap();
    disk.sync_dir(path("")).unwrap();
    disk.crash();
    assert_eq!(contents(&*disk, "f"), None);
    assert_eq!(disk.fault_stats().fsync_losses, 2);
    assert!(!disk.options().faults.is_honest());
}

#[test]
fn write_error_at_a_chosen_operation_changes_nothing() {
    let disk = SimDisk::new(options(5));
    durable_file(&*disk, "f", b"0123");
    let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
    let op = disk.op_count() + 2;
    disk.set_fault_plan(FaultPlan { write_error: FaultRate::at_ops([op]), ..FaultPlan::none() });
    file.write_at(b"a", 0).unwrap();
    assert_eq!(file.write_at(b"b", 1).unwrap_err().kind, VfsErrorKind::Io);
    assert_eq!(file.set_len(9), Ok(()));
    assert_eq!(file.read_all().unwrap(), b"a123\0\0\0\0\0");
    assert_eq!(disk.fault_stats().write_errors, 1);
    assert!(disk.options().faults.is_honest(), "an error returned is not a lie");
}

#[test]
fn enospc_writes_only_whole_sectors_that_fit_and_frees_on_unlink() {
    let capacity = 4 * SECTOR as u64;
    let disk = SimDisk::new(SimDiskOptions {
        faults: FaultPlan { capacity_bytes: Some(capacity), ..FaultPlan::none() },
        ..options(6)
    });
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    file.write_at(&data[..1500], 0).unwrap();
    let err = file.write_at(&data[1500..], 1500).unwrap_err();
    assert_eq!(err.kind, VfsErrorKind::NoSpace);
    // A short write then ENOSPC: the prefix that fits in the capacity, nothing invented.
    let visible = file.read_all().unwrap();
    assert_eq!(visible.len() as u64, capacity);
    assert_eq!(visible[..], data[..capacity as usize]);
    // Nothing at all fits past the end, and set_len cannot grow.
    assert_eq!(file.write_at(b"x", capacity).unwrap_err().kind, VfsErrorKind::NoSpace);
    assert_eq!(file.set_len(capacity + 1).unwrap_err().kind, VfsErrorKind::NoSpace);
    assert_eq!(file.len().unwrap(), capacity);
    // Rewriting inside the allocation works; unlinking frees the space once closed.
    file.write_at(b"in place", 0).unwrap();
    drop(file);
    disk.remove_file(path("f")).unwrap();
    let other = disk.open(path("g"), OpenOptions::CREATE).unwrap();
    other.write_at(&data[..capacity as usize], 0).unwrap();
    assert_eq!(disk.fault_stats().no_space_errors, 3);
}

#[test]
fn enospc_counts_an_unlinked_file_while_it_is_open() {
    let capacity = 2 * SECTOR as u64;
    let disk = SimDisk::new(SimDiskOptions {
        faults: FaultPlan { capacity_bytes: Some(capacity), ..FaultPlan::none() },
        ..options(6)
    });
    let held = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    held.write_at(&[1; 2 * SECTOR], 0).unwrap();
    disk.remove_file(path("f")).unwrap();
    let other = disk.open(path("g"), OpenOptions::CREATE).unwrap();
    assert_eq!(other.write_at(b"x", 0).unwrap_err().kind, VfsErrorKind::NoSpace);
    drop(held);
    other.write_at(b"x", 0).unwrap();
}

#[test]
fn a_misdirected_write_lands_elsewhere_and_leaves_the_target_old() {
    let disk = SimDisk::new(options(7));
    let sectors: Vec<u8> = (0..4u8).flat_map(|i| [b'A' + i; SECTOR]).collect();
    durable_file(&*disk, "f", &sectors);
    let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
    let write_op = disk.op_count() + 1;
    disk.set_fault_plan(FaultPlan {
        misdirect: FaultRate::at_ops([write_op]),
        ..FaultPlan::none()
    });
    file.write_at(&[b'X'; SECTOR], SECTOR as u64).unwrap();
    file.sync().unwrap();
    let data = file.read_all().unwrap();
    let firsts: Vec<u8> = data.chunks(SECTOR).map(|s| s[0]).collect();
    assert_eq!(firsts[1], b'B', "the intended sector keeps its old bytes: {firsts:?}");
    assert_eq!(
        firsts.iter().filter(|b| **b == b'X').count(),
        1,
        "it landed once elsewhere: {firsts:?}"
    );
    assert_eq!(disk.fault_stats().misdirects, 1);
    // The overlay survives a crash, the pristine durable image holds the honest write.
    disk.crash();
    assert_eq!(contents(&*disk, "f").unwrap(), data);
    let honest: Vec<u8> =
        [&sectors[..SECTOR], &[b'X'; SECTOR][..], &sectors[2 * SECTOR..]].concat();
    let listing = disk.listing(Image::Durable);
    let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&honest));
    assert_eq!(listing[0].sha256.as_deref(), Some(expected.as_str()));
}

#[test]
fn bit_rot_is_seen_on_read_repeatably_until_rewritten() {
    let disk = SimDisk::new(options(8));
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    let data = vec![0x55u8; 3 * SECTOR];
    file.write_at(&data, 0).unwrap();
    let sync_op = disk.op_count() + 1;
    disk.set_fault_plan(FaultPlan { bit_rot: FaultRate::at_ops([sync_op]), ..FaultPlan::none() });
    file.sync().unwrap();
    let first = file.read_all().unwrap();
    let flipped: Vec<usize> = (0..data.len()).filter(|i| first[*i] != data[*i]).collect();
    assert_eq!(flipped.len(), 1);
    assert_eq!((first[flipped[0]] ^ data[flipped[0]]).count_ones(), 1, "exactly one bit");
    assert_eq!(file.read_all().unwrap(), first, "re-reads agree");
    let sector = flipped[0] / SECTOR * SECTOR;
    file.write_at(&data[sector..sector + SECTOR], sector as u64).unwrap();
    assert_eq!(file.read_all().unwrap(), data, "a rewritten sector is fresh");
    assert_eq!(disk.fault_stats().bit_rots, 1);
}

#[test]
fn a_latent_sector_error_fails_reads_of_that_sector_repeatably() {
    let disk = SimDisk::new(options(9));
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    file.write_at(&[1u8; 4 * SECTOR], 0).unwrap();
    let sync_op = disk.op_count() + 1;
    disk.set_fault_plan(FaultPlan {
        latent_error: FaultRate::at_ops([sync_op]),
        ..FaultPlan::none()
    });
    file.sync().unwrap();
    assert_eq!(file.read_all().unwrap_err().kind, VfsErrorKind::Io);
    let mut buf = [0u8; SECTOR];
    let bad: Vec<u64> =
        (0..4u64).filter(|s| file.read_at(&mut buf, s * SECTOR as u64).is_err()).collect();
    assert_eq!(bad.len(), 1);
    assert!(file.read_at(&mut buf, bad[0] * SECTOR as u64).is_err(), "repeatable");
    file.write_at(&[2u8; SECTOR], bad[0] * SECTOR as u64).unwrap();
    assert!(file.read_all().is_ok(), "a rewrite remaps the sector");
}

#[test]
fn a_torn_sector_fault_leaves_a_sector_neither_old_nor_new() {
    let mut mixed = 0;
    for seed in 0..30 {
        let disk = SimDisk::new(SimDiskOptions {
            faults: FaultPlan {
                torn_sector: FaultRate::with_probability(1.0),
                ..FaultPlan::none()
            },
            ..options(seed)
        });
        durable_file(&*disk, "f", &[0u8; 2 * SECTOR]);
        let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
        file.write_at(&[0xEE; 2 * SECTOR], 0).unwrap();
        disk.crash();
        let data = contents(&*disk, "f").unwrap();
        let odd = data
            .chunks(SECTOR)
            .filter(|s| !(s.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0xEE)))
            .count();
        assert!(odd <= 1, "seed {seed}: one torn sector per write");
        mixed += odd;
        assert_eq!(disk.fault_stats().torn_sectors, 1);
    }
    assert!(mixed > 20, "torn sectors differ from both images ({mixed} of 30)");
}

#[test]
fn handles_opened_before_a_crash_fail_with_crashed() {
    let disk = SimDisk::new(options(10));
    durable_file(&*disk, "f", b"abc");
    let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
    disk.crash();
    let mut buf = [0u8; 3];
    assert_eq!(file.read_at(&mut buf, 0).unwrap_err().kind, VfsErrorKind::Crashed);
    assert_eq!(file.write_at(b"x", 0).unwrap_err().kind, VfsErrorKind::Crashed);
    assert_eq!(file.set_len(0).unwrap_err().kind, VfsErrorKind::Crashed);
    assert_eq!(file.sync().unwrap_err().kind, VfsErrorKind::Crashed);
    assert_eq!(file.len().unwrap_err().kind, VfsErrorKind::Crashed);
    drop(file); // closing a stale handle changes nothing
    assert_eq!(contents(&*disk, "f").unwrap(), b"abc");
}

#[test]
fn crash_after_op_stops_the_disk_until_reboot() {
    let disk = disk_keeping(1.0);
    durable_file(&*disk, "f", b"");
    let file = disk.open(path("f"), OpenOptions::WRITE).unwrap();
    let last = disk.op_count() + 1;
    disk.crash_after_op(last);
    file.write_at(b"last", 0).unwrap();
    assert!(!disk.is_halted());
    assert_eq!(file.sync().unwrap_err().kind, VfsErrorKind::Crashed);
    assert!(disk.is_halted());
    assert_eq!(open_error(&*disk, "f"), VfsErrorKind::Crashed);
    assert_eq!(disk.metadata(path("f")).unwrap_err().kind, VfsErrorKind::Crashed);
    disk.crash();
    assert!(!disk.is_halted());
    // Operation `last` took effect (and, with keep = 1, survived); the sync never ran.
    assert_eq!(contents(&*disk, "f").unwrap(), b"last");
}

#[test]
fn fork_is_deep() {
    let disk = SimDisk::new(options(11));
    durable_file(&*disk, "f", b"one");
    let copy = disk.fork();
    let file = copy.open(path("f"), OpenOptions::WRITE).unwrap();
    file.write_at(b"two", 0).unwrap();
    assert_eq!(contents(&*disk, "f").unwrap(), b"one");
    assert_eq!(contents(&*copy, "f").unwrap(), b"two");
}

#[test]
fn paths_are_normalised_and_the_root_always_exists() {
    let disk = SimDisk::new(options(12));
    for root in ["", ".", "/", "/./"] {
        assert!(disk.read_dir(path(root)).unwrap().is_empty(), "{root:?}");
        disk.sync_dir(path(root)).unwrap();
    }
    disk.create_dir(path("/d")).unwrap();
    durable_file(&*disk, "d/f", b"x");
    assert_eq!(contents(&*disk, "/d/./f").unwrap(), b"x");
    assert_eq!(contents(&*disk, "d/../d/f").unwrap(), b"x");
    assert_eq!(disk.create_dir(path("")).unwrap_err().kind, VfsErrorKind::AlreadyExists);
}

#[test]
fn writeback_bounds_the_pending_list() {
    let disk = SimDisk::new(SimDiskOptions { pending_ops_max: 16, ..options(13) });
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    for i in 0..1000u64 {
        file.write_at(&[i as u8; 8], (i % 7) * 8).unwrap();
    }
    assert!(disk.pending_count() <= 17 + 1, "{}", disk.pending_count());
    assert!(disk.fault_stats().writebacks > 0);
}

/// A fixed pseudo-random workload (its own generator), run on a disk with `seed`, with
/// crashes every so often; returns (trace hash, durable digest).
fn workload(seed: u64, plan: FaultPlan) -> (u64, String) {
    workload_steps(seed, plan, 400)
}

fn workload_steps(seed: u64, plan: FaultPlan, steps: u32) -> (u64, String) {
    use rand::{RngExt, SeedableRng};
    let disk = SimDisk::new(SimDiskOptions { faults: plan, ..options(seed) });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let names = ["a", "b", "c", "d/x", "d/y"];
    let _ = disk.create_dir_all(path("d"));
    for step in 0..steps {
        let name = names[rng.random_range(0..names.len())];
        match rng.random_range(0..8) {
            0..=3 => {
                if let Ok(file) = disk.open(path(name), OpenOptions::CREATE) {
                    let len = rng.random_range(1..3000);
                    let offset = rng.random_range(0..4000);
                    let _ = file.write_at(&vec![step as u8; len], offset);
                    if rng.random_range(0..4) == 0 {
                        let _ = file.set_len(rng.random_range(0..5000));
                    }
                    if rng.random::<bool>() {
                        let _ = file.sync();
                    }
                }
            }
            4 => {
                let _ = disk.sync_dir(path(name).parent().unwrap_or(path("")));
            }
            5 => {
                let to = names[rng.random_range(0..names.len())];
                let _ = disk.rename(path(name), path(to));
            }
            6 => {
                let _ = disk.remove_file(path(name));
            }
            _ => {
                if let Ok(file) = disk.open(path(name), OpenOptions::READ) {
                    let _ = file.read_all();
                }
            }
        }
        if step % 50 == 49 {
            disk.crash();
            // The rebuilt visible image is exactly the recovered durable one.
            assert_eq!(disk.image_digest(Image::Visible), disk.image_digest(Image::Durable));
            let _ = disk.create_dir_all(path("d"));
        }
    }
    (disk.trace_hash(), disk.image_digest(Image::Durable))
}

#[test]
fn same_seed_same_trace_different_seed_different_outcome() {
    for seed in [1u64, 2, 3] {
        let plan = FaultPlan::swarm(seed);
        assert_eq!(workload(seed, plan.clone()), workload(seed, plan), "seed {seed}");
    }
    let outcomes: BTreeSet<(u64, String)> =
        (1..5).map(|seed| workload(seed, FaultPlan::none())).collect();
    assert_eq!(outcomes.len(), 4, "different seeds crash differently");
}

#[test]
fn trace_tail_prints_numbered_operations_with_results() {
    let disk = SimDisk::new(SimDiskOptions { trace_lines_max: 3, ..options(14) });
    durable_file(&*disk, "f", b"hello");
    let _ = disk.open(path("missing"), OpenOptions::READ);
    let tail = disk.trace_tail(10);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 3, "{tail}");
    assert!(lines[2].starts_with(&format!("#{} open missing", disk.op_count())), "{tail}");
    assert!(lines[2].ends_with("-> Err(NotFound)"), "{tail}");
    assert!(tail.contains("sync_dir"), "{tail}");
    let before = disk.trace_hash();
    let _ = disk.metadata(path("f"));
    assert_ne!(disk.trace_hash(), before);
}

#[test]
fn listing_and_digest_describe_the_tree_not_its_history() {
    let one = SimDisk::new(options(15));
    let two = SimDisk::new(options(16));
    durable_file(&*one, "a", b"1");
    durable_file(&*one, "b", b"2");
    durable_file(&*two, "b", b"x");
    durable_file(&*two, "a", b"1");
    let file = two.open(path("b"), OpenOptions::WRITE).unwrap();
    file.write_at(b"2", 0).unwrap();
    file.sync().unwrap();
    assert_eq!(one.image_digest(Image::Durable), two.image_digest(Image::Durable));
    assert_eq!(one.image_digest(Image::Visible), one.image_digest(Image::Durable));
    let listing = one.listing(Image::Visible);
    assert_eq!(listing.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(listing[0].len, 1);
    file.write_at(b"3", 0).unwrap();
    assert_ne!(two.image_digest(Image::Visible), two.image_digest(Image::Durable));
}

#[test]
fn fault_plans_round_trip_and_swarm_is_deterministic() {
    let plan = FaultPlan::swarm(42);
    assert_eq!(plan, FaultPlan::swarm(42));
    let text = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<FaultPlan>(&text).unwrap(), plan);
    assert!(FaultPlan::none().is_honest() && FaultPlan::none().is_none());
    let kinds: BTreeSet<String> =
        (0..64).map(|seed| format!("{:?}", FaultPlan::swarm(seed).is_honest())).collect();
    assert_eq!(kinds.len(), 2, "swarm draws honest and dishonest plans");
}

#[test]
fn no_panic_on_hostile_arguments() {
    let disk = SimDisk::new(options(17));
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    assert!(file.write_at(b"x", u64::MAX).is_err());
    assert!(file.set_len(u64::MAX).is_err());
    let mut buf = [0u8; 4];
    assert_eq!(file.read_at(&mut buf, u64::MAX).unwrap(), 0);
    assert!(disk.open(path(&"n".repeat(300)), OpenOptions::CREATE).is_err());
    assert_eq!(open_error(&*disk, "a\0b"), VfsErrorKind::InvalidInput);
    assert_eq!(disk.rename(path("/"), path("x")).unwrap_err().kind, VfsErrorKind::Other);
    assert_eq!(disk.remove_dir(path("")).unwrap_err().kind, VfsErrorKind::InvalidInput);
}

#[test]
fn after_every_crash_the_visible_image_is_the_durable_one() {
    for seed in 0..40 {
        workload_steps(seed, FaultPlan::swarm(seed), 300);
    }
}

#[test]
fn locks_are_shared_or_exclusive_and_released_by_drop_crash_and_fork() {
    use quorumkit_storage::vfs::LockMode::{Exclusive, Shared};
    let disk = disk_keeping(1.0);
    durable_file(disk.as_ref(), "lock", b"");
    assert_eq!(
        disk.try_lock(path("absent"), Shared).map(|_| ()).unwrap_err().kind,
        VfsErrorKind::NotFound
    );
    let locked = |mode| disk.try_lock(path("lock"), mode).map(|_| ()).map_err(|e| e.kind);
    let reader = disk.try_lock(path("lock"), Shared).expect("shared");
    let second_reader = disk.try_lock(path("lock"), Shared).expect("shared again");
    assert_eq!(locked(Exclusive), Err(VfsErrorKind::Locked), "readers keep a writer out");
    drop((reader, second_reader));
    let writer = disk.try_lock(path("lock"), Exclusive).expect("exclusive once free");
    assert_eq!(locked(Shared), Err(VfsErrorKind::Locked), "a writer keeps readers out");
    assert_eq!(locked(Exclusive), Err(VfsErrorKind::Locked), "and other writers");
    // The lock follows the file through a rename, as flock follows the inode.
    disk.rename(path("lock"), path("moved")).unwrap();
    let moved = disk.try_lock(path("moved"), Shared).map(|_| ()).map_err(|e| e.kind);
    assert_eq!(moved, Err(VfsErrorKind::Locked));
    // A fork is another machine: no process holds anything there.
    assert!(disk.fork().try_lock(path("moved"), Exclusive).is_ok());
    assert_eq!(disk.locks_held(), 1);
    // A crash kills the holder; its guard, dropped afterwards, releases nothing new.
    disk.crash();
    assert_eq!(disk.locks_held(), 0);
    let after = disk.try_lock(path("moved"), Exclusive).expect("free after the crash");
    drop(writer);
    assert_eq!(disk.locks_held(), 1, "the stale guard did not release the new lock");
    drop(after);
    assert_eq!(disk.locks_held(), 0);
}

#[test]
fn the_observer_reads_without_numbering_and_refuses_and_counts_mutations() {
    let disk = disk_keeping(1.0);
    disk.create_dir(path("d")).unwrap();
    durable_file(disk.as_ref(), "d/f", b"hello");
    let (ops, hash, mutations) = (disk.op_count(), disk.trace_hash(), disk.mutating_op_count());
    let observer = disk.observer();
    assert_eq!(contents(observer.as_ref(), "d/f").as_deref(), Some(&b"hello"[..]));
    assert_eq!(observer.read_dir(path("d")).unwrap().len(), 1);
    let lock = observer.try_lock(path("d/f"), quorumkit_storage::vfs::LockMode::Shared).unwrap();
    assert_eq!((disk.op_count(), disk.trace_hash()), (ops, hash), "looking is not an operation");
    let refused = [
        observer.open(path("d/f"), OpenOptions::WRITE).map(|_| ()),
        observer.open(path("d/g"), OpenOptions::CREATE).map(|_| ()),
        observer.remove_file(path("d/f")),
        observer.rename(path("d/f"), path("d/g")),
        observer.create_dir(path("e")),
        observer.sync_dir(path("d")),
    ];
    for result in refused {
        assert_eq!(result.unwrap_err().kind, VfsErrorKind::ReadOnly);
    }
    let file = observer.open(path("d/f"), OpenOptions::READ).unwrap();
    assert_eq!(file.write_at(b"x", 0).unwrap_err().kind, VfsErrorKind::ReadOnly);
    assert_eq!(file.sync().unwrap_err().kind, VfsErrorKind::ReadOnly);
    assert_eq!(disk.mutating_op_count(), mutations + 8, "every refused call is counted");
    drop((file, lock));
    assert_eq!(contents(disk.as_ref(), "d/f").as_deref(), Some(&b"hello"[..]));
    // The disk's own mutating calls count too.
    disk.remove_file(path("d/f")).unwrap();
    assert_eq!(disk.mutating_op_count(), mutations + 9);
}

/// Under per-step fault streams a step meets the same faults whatever steps ran before it
/// (a shrinker may remove them: the fault stays with its step), and no fault fires before the
/// first step; under whole-run streams a fault's position is a global operation number, so
/// removing earlier calls moves it.
#[test]
fn per_step_streams_keep_a_fault_with_its_step() {
    let plan = FaultPlan { write_error: FaultRate::with_probability(0.3), ..FaultPlan::none() };
    // The writes of step 7 that fail, after `before` earlier steps of one write each.
    let failing = |streams: FaultStreams, before: u64| -> Vec<u64> {
        let disk = SimDisk::new(SimDiskOptions {
            faults: plan.clone(),
            fault_streams: streams,
            ..options(11)
        });
        let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
        for key in 0..before {
            disk.begin_step(100 + key);
            let _ = file.write_at(b"x", 0);
        }
        disk.begin_step(7);
        (0..40u64).filter(|n| file.write_at(b"y", *n).is_err()).collect()
    };
    let alone = failing(FaultStreams::Steps, 0);
    assert!(!alone.is_empty() && alone.len() < 40, "{alone:?}");
    for before in [1, 5, 12] {
        assert_eq!(failing(FaultStreams::Steps, before), alone, "after {before} steps");
    }
    let whole_run: Vec<Vec<u64>> = [0, 1, 5, 12].map(|b| failing(FaultStreams::Run, b)).into();
    assert!(whole_run.windows(2).any(|w| w[0] != w[1]), "whole-run faults did not move");

    // Nothing fires before the first step, even at probability 1, nor after a plan is read.
    let certain = FaultPlan { write_error: FaultRate::with_probability(1.0), ..FaultPlan::none() };
    let disk = SimDisk::new(SimDiskOptions {
        faults: certain.clone(),
        fault_streams: FaultStreams::Steps,
        ..options(12)
    });
    assert_eq!(disk.options().faults, certain, "the held plan is the disk's plan");
    let file = disk.open(path("f"), OpenOptions::CREATE).unwrap();
    file.write_at(b"created", 0).expect("no fault before the first step");
    disk.begin_step(0);
    assert_eq!(file.write_at(b"x", 0).unwrap_err().kind, VfsErrorKind::Io);
}
