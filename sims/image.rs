//! The canonical bootstrap image: round trips, the fixed point, canonical bytes across the
//! N×N bootstrap matrix of every registered family, pinned export cuts, deterministic
//! import, the hostile corpus (every file rejected with the right class and offset, the
//! destination left empty), forward compatibility, the CLI, insta snapshots of the
//! inspection output and the hex dump of a small fixed image, and the planted import bugs
//! that prove the harness's image checks bite.

#[path = "support/image_corpus.rs"]
mod image_corpus;
#[path = "support/planted.rs"]
mod planted;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use image_corpus::{Case, Expect};
use planted::{assert_caught_by_its_own_check, families_of};
use quorumkit_storage::cli::image::{run_with, ImageCommand};
use quorumkit_storage::contract::{
    Entry, Family, FileMeta, FileSource, Meta, Payload, PeerId, RaftStorage, SnapshotMeta,
    SnapshotPath,
};
use quorumkit_storage::families::Registry;
use quorumkit_storage::image::format::CHUNK_LEN;
use quorumkit_storage::image::fuzz_checks::{self, empty_image, example_state};
use quorumkit_storage::image::hostile::Violation;
use quorumkit_storage::image::{
    annotated_hex, content_bytes, decode, diff, encode_state, export, import, inspect, verify,
    ErrorClass, ImageError,
};
use quorumkit_storage::sim::planted::PlantedBug;
use quorumkit_storage::state::{first_difference, RaftState, Snapshot, SnapshotFile};
use quorumkit_storage::vfs::{EnumerateOptions, Image, OsVfs, SimDisk, SimDiskOptions, VfsHandle};

// ---- helpers ----

/// A fresh instance of a family in its own temporary directory.
struct Instance {
    family: Arc<dyn Family>,
    location: String,
    storage: Box<dyn RaftStorage>,
    dir: tempfile::TempDir,
}

impl Instance {
    fn fresh(family: &Arc<dyn Family>) -> Instance {
        let dir = tempfile::tempdir().expect("temp dir");
        let location = dir.path().join("instance").to_str().expect("utf-8 path").to_string();
        let storage = family.open(&location, Arc::new(OsVfs::new())).expect("open fresh");
        Instance { family: family.clone(), location, storage, dir }
    }

    fn reopen(&mut self) {
        // Drop the old handle first, as a restarted process would.
        self.storage = Box::new(quorumkit_storage::families::memory::MemoryStorage::new());
        self.storage =
            self.family.open(&self.location, Arc::new(OsVfs::new())).expect("reopen instance");
    }

    fn state(&self) -> RaftState {
        RaftState::capture(self.storage.as_ref()).expect("capture")
    }

    fn export(&mut self) -> Vec<u8> {
        let cut = self.storage.begin_export().expect("begin_export");
        let mut out = Vec::new();
        export(cut.as_ref(), self.storage.family(), self.storage.family_format_version(), &mut out)
            .expect("export");
        out
    }
}

fn families() -> Vec<Arc<dyn Family>> {
    Registry::builtin().families().to_vec()
}

/// Brings a fresh instance to `state` through the mutating side of the contract.
fn populate(storage: &mut dyn RaftStorage, state: &RaftState) {
    if state.first != 1 {
        storage.reset(state.first).expect("reset");
    }
    for batch in state.entries.chunks(7) {
        storage.append(batch).expect("append");
    }
    storage.save_meta(&state.meta).expect("save_meta");
    if let Some(snapshot) = &state.snapshot {
        let mut writer = storage.begin_snapshot().expect("begin_snapshot");
        for (path, file) in &snapshot.files {
            writer.add_file(path, &file.file_meta).expect("add_file");
            let mut offset = 0;
            for piece in file.data.chunks(10_000) {
                writer.write_file(path, offset, piece).expect("write_file");
                offset += piece.len() as u64;
            }
        }
        writer.set_meta(snapshot.meta.clone());
        writer.publish().expect("publish");
    }
}

fn peer(s: &str) -> PeerId {
    PeerId::new(s)
}

fn path(s: &str) -> SnapshotPath {
    SnapshotPath::new(s).expect("valid path")
}

/// States covering every part: empty, log only, snapshot only, files around the chunk size,
/// nested paths whose byte order and canonical order differ, empty and absent file meta.
fn sample_states() -> Vec<(&'static str, RaftState)> {
    let mut log_only = RaftState::new();
    log_only.first = 1;
    log_only.entries = (1..=40)
        .map(|i| match i % 3 {
            0 => Entry::no_op(i, i / 10 + 1),
            1 => Entry::data(i, i / 10 + 1, vec![i as u8; (i as usize) * 37]),
            _ => Entry {
                index: i,
                term: i / 10 + 1,
                payload: Payload::Configuration {
                    peers: vec![peer("10.0.0.1:8000:0"), peer("10.0.0.2:8000:0")],
                    old_peers: if i % 2 == 0 { vec![peer("10.0.0.1:8000:0")] } else { vec![] },
                },
            },
        })
        .collect();
    log_only.meta = Meta { term: 4, voted_for: None };

    let mut files = BTreeMap::new();
    let pattern = |len: usize, seed: u8| -> Bytes {
        Bytes::from(
            (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect::<Vec<_>>(),
        )
    };
    let every_field = FileMeta {
        user_meta: Some(Bytes::from_static(b"\x08\x02")),
        source: Some(FileSource::Reference),
        checksum: Some("a1b2".into()),
    };
    for (p, len, meta) in [
        ("a", CHUNK_LEN, every_field),
        ("a-b", CHUNK_LEN + 1, FileMeta::default()),
        ("a/b", 2 * CHUNK_LEN - 1, FileMeta::user(Bytes::new())),
        ("z/y/x", 0, FileMeta { checksum: Some(String::new()), ..FileMeta::default() }),
        ("__raft_snapshot_meta.user", 100, FileMeta::user(Bytes::from_static(b"meta"))),
    ] {
        if p == "a" {
            // `a` cannot be a file and a directory; use `a.bin` instead.
            files.insert(path("a.bin"), SnapshotFile { data: pattern(len, 1), file_meta: meta });
            continue;
        }
        files.insert(path(p), SnapshotFile { data: pattern(len, 7), file_meta: meta });
    }
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            last_included_index: 100,
            last_included_term: 5,
            peers: vec![peer("10.0.0.1:8000:0"), peer("10.0.0.2:8000:0:1")],
            old_peers: vec![peer("10.0.0.3:8000:0")],
        },
        files,
    };
    let mut snapshot_only = RaftState::new();
    snapshot_only.first = 101;
    snapshot_only.meta = Meta { term: 5, voted_for: Some(peer("10.0.0.2:8000:0")) };
    snapshot_only.snapshot = Some(snapshot.clone());

    let mut both = log_only.clone();
    both.first = 95;
    for (k, e) in both.entries.iter_mut().enumerate() {
        e.index = 95 + k as u64;
    }
    both.snapshot = Some(snapshot);
    vec![
        ("empty", RaftState::new()),
        ("example", example_state()),
        ("log-only", log_only),
        ("snapshot-only", snapshot_only),
        ("log-and-snapshot", both),
    ]
}

fn encode(state: &RaftState, family: &str, version: u32) -> Vec<u8> {
    let mut out = Vec::new();
    encode_state(state, family, version, &[], &mut out).expect("encode");
    out
}

fn assert_same_state(what: &str, got: &RaftState, want: &RaftState) {
    if let Some(d) = first_difference(got, want) {
        panic!("{what}: {d}");
    }
    assert_eq!(got, want, "{what}");
}

// ---- round trips, fixed point, canonical bytes, the matrix ----

#[test]
fn round_trip_and_fixed_point_in_every_family() {
    for family in families() {
        for (name, state) in sample_states() {
            let what = format!("{} / {name}", family.scheme());
            let mut source = Instance::fresh(&family);
            populate(source.storage.as_mut(), &state);
            assert_same_state(&what, &source.state(), &state);
            let image = source.export();
            let decoded = decode(&image[..]).expect("decode");
            assert_same_state(&format!("{what}: decoded"), &decoded.state, &state);
            let version = source.storage.family_format_version();
            assert_eq!(image, encode(&state, family.scheme(), version), "{what}: not canonical");

            let mut target = Instance::fresh(&family);
            import(&image[..], target.storage.as_mut()).expect("import");
            assert_same_state(&format!("{what}: imported"), &target.state(), &state);
            assert_eq!(target.export(), image, "{what}: export → import → export moved");
            if family.durable() {
                target.reopen();
                assert_same_state(&format!("{what}: reopened"), &target.state(), &state);
            }
        }
    }
}

/// The N×N bootstrap matrix: every family exports the same content bytes for the same
/// state, and every family imports every other family's image into an equivalent state that
/// exports the same content again.
#[test]
fn bootstrap_matrix_every_ordered_pair() {
    let families = families();
    for (name, state) in sample_states() {
        let canonical = encode(&state, "memory", 0);
        for source_family in &families {
            let mut source = Instance::fresh(source_family);
            populate(source.storage.as_mut(), &state);
            let image = source.export();
            assert_eq!(
                content_bytes(&image),
                content_bytes(&canonical),
                "{name}: {} exports other content bytes",
                source_family.scheme()
            );
            for target_family in &families {
                let what =
                    format!("{name}: {} → {}", source_family.scheme(), target_family.scheme());
                let mut target = Instance::fresh(target_family);
                import(&image[..], target.storage.as_mut()).expect("import");
                assert_same_state(&what, &target.state(), &state);
                let again = target.export();
                assert_eq!(content_bytes(&again), content_bytes(&image), "{what}: content moved");
            }
        }
    }
}

#[test]
fn export_is_exactly_the_pinned_cut_while_mutations_continue() {
    for family in families() {
        let state = example_state();
        let mut instance = Instance::fresh(&family);
        populate(instance.storage.as_mut(), &state);
        let cut = instance.storage.begin_export().expect("begin_export");
        // Mutate everything the image holds after the cut was pinned.
        let storage = instance.storage.as_mut();
        storage.append(&[Entry::data(8, 4, &b"later"[..])]).expect("append");
        storage.truncate_prefix(6).expect("truncate_prefix");
        storage.save_meta(&Meta { term: 9, voted_for: None }).expect("save_meta");
        let mut writer = storage.begin_snapshot().expect("begin_snapshot");
        writer.add_file(&path("other"), &FileMeta::default()).expect("add_file");
        writer.write_file(&path("other"), 0, b"new").expect("write_file");
        writer.set_meta(SnapshotMeta {
            last_included_index: 6,
            last_included_term: 2,
            peers: vec![],
            old_peers: vec![],
        });
        writer.publish().expect("publish");
        let mut image = Vec::new();
        export(cut.as_ref(), family.scheme(), 0, &mut image).expect("export the cut");
        drop(cut);
        let decoded = decode(&image[..]).expect("decode");
        assert_same_state(family.scheme(), &decoded.state, &state);
    }
}

/// Walks a directory into (relative path → bytes). A checksum sidecar's last 20 bytes (the
/// file id it records, the real inode number and birth time, and the CRC over it) differ
/// between any two writes on a real file system and are zeroed.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                let mut bytes = std::fs::read(&p).expect("read file");
                if rel.extension().is_some_and(|e| e == "qkcrc") && bytes.len() >= 20 {
                    let n = bytes.len();
                    bytes[n - 20..].fill(0);
                }
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn import_is_deterministic() {
    for family in families() {
        for (name, state) in sample_states() {
            let image = encode(&state, "memory", 0);
            let mut one = Instance::fresh(&family);
            let mut two = Instance::fresh(&family);
            import(&image[..], one.storage.as_mut()).expect("import one");
            import(&image[..], two.storage.as_mut()).expect("import two");
            assert_eq!(one.state(), two.state(), "{} / {name}", family.scheme());
            if family.durable() {
                assert_eq!(
                    tree(one.dir.path()),
                    tree(two.dir.path()),
                    "{} / {name}: files differ between two imports of one image",
                    family.scheme()
                );
            }
        }
    }
}

/// Opens `family`'s instance at `instance` on a simulated disk.
fn open_on(family: &Arc<dyn Family>, disk: &Arc<SimDisk>) -> Box<dyn RaftStorage> {
    let vfs: VfsHandle = disk.clone();
    family.open("instance", vfs).expect("open on SimDisk")
}

fn sim_disk() -> Arc<SimDisk> {
    SimDisk::new(SimDiskOptions { seed: 6, ..SimDiskOptions::default() })
}

/// DESIGN §5: the same image into two empty instances of a family gives byte-identical
/// files on the simulated disk (visible and durable). Durable families only.
#[test]
fn import_is_byte_identical_on_simdisk() {
    let image = encode(&sample_states()[4].1, "memory", 0);
    for family in families().iter().filter(|f| f.durable()) {
        let digests: Vec<(String, String)> = (0..2)
            .map(|_| {
                let disk = sim_disk();
                let mut storage = open_on(family, &disk);
                import(&image[..], storage.as_mut()).expect("import on SimDisk");
                drop(storage);
                (disk.image_digest(Image::Visible), disk.image_digest(Image::Durable))
            })
            .collect();
        assert_eq!(digests[0], digests[1], "{}: two imports differ on disk", family.scheme());
    }
}

/// DESIGN §2's atomicity table for import: a crash at any point of an import (every
/// operation, every subset of the pending writes up to the enumeration's limits) recovers
/// to an empty instance or to the complete imported state. Durable families only.
#[test]
fn a_crash_during_import_leaves_empty_or_complete() {
    let state = example_state();
    let image = encode(&state, "memory", 0);
    for family in families().iter().filter(|f| f.durable()) {
        let disk = sim_disk();
        let mut storage = open_on(family, &disk);
        let mark = disk.mark();
        import(&image[..], storage.as_mut()).expect("import on SimDisk");
        drop(storage);
        let options =
            EnumerateOptions { subset_units_max: 4, sample_count: 8, ..Default::default() };
        let states = disk.crash_states(mark, options).expect("crash states");
        let mut n_states = 0;
        for crashed in states.take(2000) {
            n_states += 1;
            let recovered = open_on(family, &crashed.disk);
            let got = RaftState::capture(recovered.as_ref()).expect("capture after crash");
            assert!(
                got == RaftState::new() || got == state,
                "{}: crash after op {} (kept {:?}) recovered neither empty nor complete: {:?}",
                family.scheme(),
                crashed.after_op,
                crashed.kept,
                first_difference(&got, &state)
            );
        }
        assert!(n_states > 0, "{}: no crash state enumerated", family.scheme());
    }
}

// ---- the image checks bite: planted import bugs ----

/// DESIGN §7 check 4 bites: an import that stamps the destination with a family-wide counter
/// leaves different bytes on two identical disks.
#[test]
fn planted_import_stamps_counter_is_caught_by_import_determinism_on_every_family() {
    let results = assert_caught_by_its_own_check(PlantedBug::ImportStampsCounter);
    assert_eq!(families_of(&results), ["memory", "local", "redb"]);
}

/// DESIGN §7 check 5 bites: an imported instance that lists its snapshot files twice still
/// captures as the image's state, but cannot re-export the image's content bytes.
#[test]
fn planted_import_lists_files_twice_is_caught_by_canonicality_on_every_family() {
    let results = assert_caught_by_its_own_check(PlantedBug::ImportListsFilesTwice);
    assert_eq!(families_of(&results), ["memory", "local", "redb"]);
}

/// DESIGN §7 check 6 bites: an import committed as separately durable calls is torn by a
/// power loss inside the commit. A volatile family cannot show it.
#[test]
fn planted_import_commit_in_steps_is_caught_by_import_atomicity_on_durable_families() {
    let results = assert_caught_by_its_own_check(PlantedBug::ImportCommitInSteps);
    assert_eq!(families_of(&results), ["local", "redb"]);
}

// ---- hostile images ----

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(name)
}

fn updating() -> bool {
    std::env::var_os("QK_UPDATE_CORPUS").is_some()
}

/// Compares (or with `QK_UPDATE_CORPUS=1` rewrites) a checked-in corpus directory.
fn sync_corpus(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    if updating() {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("create corpus dir");
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).expect("write corpus file");
        }
    }
    let mut on_disk = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("corpus dir exists (QK_UPDATE_CORPUS=1)") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().into_string().expect("utf-8 name");
        on_disk.insert(name, std::fs::read(entry.path()).expect("read corpus file"));
    }
    let want: Vec<&String> = files.keys().collect();
    let have: Vec<&String> = on_disk.keys().collect();
    assert_eq!(have, want, "{}: file set differs (QK_UPDATE_CORPUS=1 rewrites)", dir.display());
    for (name, bytes) in files {
        assert!(on_disk[name] == *bytes, "{name}: stale (QK_UPDATE_CORPUS=1 rewrites)");
    }
}

fn check_rejected(case: &Case, err: &ImageError, class: ErrorClass, offset: u64, how: &str) {
    assert_eq!(err.class(), class, "{} ({how}): wrong class: {err}", case.name);
    assert_eq!(err.offset(), Some(offset), "{} ({how}): wrong offset: {err}", case.name);
}

#[test]
fn hostile_corpus_is_current_and_every_file_is_rejected_leaving_the_destination_empty() {
    let cases = image_corpus::cases();
    let files: BTreeMap<String, Vec<u8>> =
        cases.iter().map(|c| (format!("{}.img", c.name), c.bytes.clone())).collect();
    assert_eq!(files.len(), cases.len(), "duplicate case names");
    sync_corpus(&corpus_dir("image-hostile"), &files);
    let families = families();
    for case in &cases {
        // Read back from the checked-in file, as an operator would have it.
        let bytes = std::fs::read(corpus_dir("image-hostile").join(format!("{}.img", case.name)))
            .expect("corpus file");
        match case.expect {
            Expect::Accept => {
                verify(&bytes[..]).unwrap_or_else(|e| panic!("{}: rejected: {e}", case.name));
                for family in &families {
                    let mut dest = Instance::fresh(family);
                    import(&bytes[..], dest.storage.as_mut())
                        .unwrap_or_else(|e| panic!("{}: import rejected: {e}", case.name));
                }
            }
            Expect::Reject(class, offset) => {
                let err = verify(&bytes[..]).expect_err(&case.name);
                check_rejected(case, &err, class, offset, "verify");
                let err = decode(&bytes[..]).expect_err(&case.name);
                check_rejected(case, &err, class, offset, "decode");
                let err = inspect(&bytes[..]).expect_err(&case.name);
                check_rejected(case, &err, class, offset, "inspect");
                for family in &families {
                    let how = format!("import into {}", family.scheme());
                    let mut dest = Instance::fresh(family);
                    let err = import(&bytes[..], dest.storage.as_mut()).expect_err(&case.name);
                    check_rejected(case, &err, class, offset, &how);
                    assert_eq!(dest.state(), RaftState::new(), "{}: {how} left state", case.name);
                    if family.durable() {
                        dest.reopen();
                        assert_eq!(
                            dest.state(),
                            RaftState::new(),
                            "{}: {how}, reopened",
                            case.name
                        );
                    }
                }
            }
        }
    }
}

/// The fuzz targets' seed corpora (`corpus/image_decode/`, `corpus/image_roundtrip/`),
/// generated deterministically: small valid images plus the hostile corpus for decoding,
/// and seeded pseudo-random bytes for the round trip.
#[test]
fn fuzz_seed_corpora_are_current() {
    let mut decode_seeds = BTreeMap::new();
    // Small valid images only: large seeds slow every fuzz iteration.
    for (name, state) in sample_states().into_iter().take(3) {
        decode_seeds.insert(format!("valid-{name}.img"), encode(&state, "memory", 0));
    }
    for case in image_corpus::cases() {
        decode_seeds.insert(format!("{}.img", case.name), case.bytes);
    }
    sync_corpus(&corpus_dir("image_decode"), &decode_seeds);

    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let mut roundtrip_seeds = BTreeMap::new();
    for k in 0..24usize {
        let len = 16 + k * k * 4;
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        roundtrip_seeds.insert(format!("seed-{k:02}"), bytes);
    }
    sync_corpus(&corpus_dir("image_roundtrip"), &roundtrip_seeds);

    // One seed per violation of the hostile catalogue, each over a drawn state (the state
    // bytes vary in length so the states do too); every one must apply.
    let mut hostile_seeds = BTreeMap::new();
    for (k, violation) in Violation::ALL.iter().enumerate() {
        let len = 32 + (k % 8) * 48;
        let state_bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let input = fuzz_checks::image_hostile_input(*violation, k as u64, &state_bytes);
        assert!(fuzz_checks::image_hostile_case(&input).is_some(), "{violation} does not apply");
        hostile_seeds.insert(format!("{k:02}-{violation}"), input);
    }
    sync_corpus(&corpus_dir("image_hostile"), &hostile_seeds);

    let texts = |items: &[&[u8]]| -> BTreeMap<String, Vec<u8>> {
        items.iter().enumerate().map(|(k, t)| (format!("seed-{k:02}"), t.to_vec())).collect()
    };
    let paths: &[&[u8]] = &[
        b"data",
        b"a/b/c",
        b"__raft_snapshot_meta",
        b"a\xffa/b",
        b"a-b\xffa/b",
        b"../x",
        b"/abs",
        b"a//b",
        b"./a",
        b"a/.",
        b"a\0b",
        b"a\\b",
        b"\xc3\xa9t\xc3\xa9/x",
        // Found by the fuzzer: NUL sorts like `/` in the canonical order, but no valid path
        // has a NUL, so the order claim is only checked for valid paths.
        b"/aa\xff\0\0\0\0\0\0\0\0\0\0\0%\0\x14Eb",
    ];
    sync_corpus(&corpus_dir("snapshot_path"), &texts(paths));
    let peers: &[&[u8]] = &[
        b"127.0.0.1:8000:0",
        b"10.0.0.2:8000:0:1",
        b"0.0.0.0:0:0:0",
        b"0.0.0.0:0:0",
        b"255.255.255.255:65535:2147483647:0",
        b"01.2.3.4:5:6",
        b"1.2.3.4:5",
        b"host:80:0",
        b"[::1]:80:0",
        b"1.2.3.4:5:6:2",
    ];
    sync_corpus(&corpus_dir("peer_id"), &texts(peers));
}

#[test]
fn every_class_of_the_spec_has_a_hostile_file() {
    let classes: std::collections::BTreeSet<ErrorClass> = image_corpus::cases()
        .iter()
        .filter_map(|c| match c.expect {
            Expect::Reject(class, _) => Some(class),
            Expect::Accept => None,
        })
        .collect();
    for class in ErrorClass::ALL {
        let needs_file = !matches!(
            class,
            ErrorClass::NonEmptyDestination
                | ErrorClass::Io
                | ErrorClass::Source
                | ErrorClass::Destination
        );
        assert_eq!(classes.contains(class), needs_file, "{class}");
    }
}

/// Every prefix of a valid image is rejected as truncated, naming the part it ends in.
#[test]
fn truncation_at_every_byte_is_detected_with_the_right_offset() {
    let image = encode(&sample_states()[1].1, "memory", 0);
    let records = record_starts(&image);
    let digest_at = image.len() - 32;
    for len in 0..image.len() {
        let err = verify(&image[..len]).expect_err("a prefix must not verify");
        assert_eq!(err.class(), ErrorClass::Truncated, "prefix {len}: {err}");
        let want = if len < 8 {
            0
        } else if len >= digest_at {
            digest_at as u64
        } else {
            // The record the prefix ends in (or before, at a boundary).
            *records.iter().rev().find(|&&start| start <= len).expect("a record") as u64
        };
        assert_eq!(err.offset(), Some(want), "prefix {len}: {err}");
    }
}

fn record_starts(image: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 8;
    while at + 32 < image.len() {
        starts.push(at);
        let len = u32::from_le_bytes([image[at + 2], image[at + 3], image[at + 4], image[at + 5]]);
        at += 6 + len as usize + 4;
    }
    starts
}

/// Every single-bit flip anywhere is detected, and the error points at or before it.
#[test]
fn every_bit_flip_is_detected_at_or_before_the_damage() {
    let image = encode(&example_state(), "memory", 0);
    for at in 0..image.len() {
        for bit in [0x01u8, 0x80] {
            let mut damaged = image.clone();
            damaged[at] ^= bit;
            let err = verify(&damaged[..]).expect_err("a flipped bit must not verify");
            let offset = err.offset().expect("an offset");
            assert!(offset <= at as u64, "flip at {at}: error at {offset}: {err}");
        }
    }
}

type Mutation = Box<dyn Fn(&mut dyn RaftStorage)>;

#[test]
fn non_empty_destination_is_refused_and_left_unchanged() {
    let image = encode(&example_state(), "memory", 0);
    for family in families() {
        let mutations: Vec<(&str, Mutation)> = vec![
            ("an entry", Box::new(|s| s.append(&[Entry::no_op(1, 1)]).expect("append"))),
            ("a moved first index", Box::new(|s| s.reset(10).expect("reset"))),
            (
                "a vote",
                Box::new(|s| {
                    s.save_meta(&Meta { term: 1, voted_for: Some(peer("1.2.3.4:5:0")) })
                        .expect("save_meta")
                }),
            ),
            ("a snapshot", Box::new(|s| populate(s, &only_snapshot()))),
        ];
        for (what, mutate) in mutations {
            let mut dest = Instance::fresh(&family);
            mutate(dest.storage.as_mut());
            let before = dest.state();
            let err = import(&image[..], dest.storage.as_mut()).expect_err(what);
            assert_eq!(err.class(), ErrorClass::NonEmptyDestination, "{what}: {err}");
            assert_eq!(dest.state(), before, "{} with {what}: changed", family.scheme());
        }
    }
}

fn only_snapshot() -> RaftState {
    let mut state = RaftState::new();
    state.snapshot = Some(Snapshot {
        meta: SnapshotMeta {
            last_included_index: 0,
            last_included_term: 0,
            peers: vec![],
            old_peers: vec![],
        },
        files: BTreeMap::new(),
    });
    state
}

#[test]
fn forward_compatible_images_import_the_same_state() {
    let base = quorumkit_storage::image::decode(&image_corpus::seal(&image_corpus::base())[..])
        .expect("the base image is valid");
    for case in image_corpus::cases().iter().filter(|c| c.expect == Expect::Accept) {
        let decoded = decode(&case.bytes[..]).expect("accepted");
        assert_eq!(decoded.state, base.state, "{}", case.name);
        if case.name == "ok-base" {
            let mut again = Vec::new();
            encode_state(&decoded.state, "memory", 7, &[], &mut again).expect("encode");
            assert!(again == case.bytes, "the writer disagrees with the hand-built base image");
        }
        let ignored = decoded.summary.n_ignored_records;
        assert_eq!(ignored, u64::from(case.name.contains("unknown")), "{}", case.name);
    }
}

#[test]
fn diff_names_the_first_difference_like_the_state_comparison() {
    let base = example_state();
    let data_meta = base.snapshot.as_ref().expect("example has a snapshot").files[&path("data")]
        .file_meta
        .clone();
    let mut variants: Vec<(&str, RaftState)> = Vec::new();
    let mut s = base.clone();
    s.entries.pop();
    variants.push(("shorter log", s));
    let mut s = base.clone();
    s.entries[1] = Entry::data(6, 2, &b"abd"[..]);
    variants.push(("entry data", s));
    let mut s = base.clone();
    s.meta.voted_for = None;
    variants.push(("vote", s));
    let mut s = base.clone();
    s.snapshot = None;
    variants.push(("no snapshot", s));
    let mut s = base.clone();
    if let Some(snap) = s.snapshot.as_mut() {
        snap.files.insert(
            path("data"),
            SnapshotFile { data: Bytes::from_static(b"help!"), file_meta: data_meta.clone() },
        );
    }
    variants.push(("file content", s));
    let mut s = base.clone();
    if let Some(snap) = s.snapshot.as_mut() {
        snap.files.insert(
            path("data"),
            SnapshotFile { data: Bytes::from_static(b"hello"), file_meta: FileMeta::default() },
        );
    }
    variants.push(("file meta", s));
    for field in ["user_meta", "source", "checksum"] {
        let mut s = base.clone();
        if let Some(file) = s.snapshot.as_mut().and_then(|snap| snap.files.get_mut(&path("data"))) {
            match field {
                "user_meta" => file.file_meta.user_meta = Some(Bytes::from_static(b"\x08\x02")),
                "source" => file.file_meta.source = Some(FileSource::Reference),
                _ => file.file_meta.checksum = None,
            }
        }
        let words = first_difference(&base, &s).expect("one field changed");
        assert!(words.contains(&format!("file metadata {field} ")), "{words}");
        variants.push(("file meta field", s));
    }
    let mut s = base.clone();
    if let Some(snap) = s.snapshot.as_mut() {
        snap.files.insert(
            path("data"),
            SnapshotFile { data: Bytes::from_static(b"hello world"), file_meta: data_meta.clone() },
        );
    }
    variants.push(("file length", s));
    let mut s = base.clone();
    if let Some(snap) = s.snapshot.as_mut() {
        snap.files.remove(&path("sub/empty"));
    }
    variants.push(("file missing", s));
    let a = encode(&base, "memory", 0);
    assert_eq!(diff(&a[..], &encode(&base, "local", 3)[..]).expect("diff"), None);
    for (what, other) in variants {
        let b = encode(&other, "memory", 0);
        let words = diff(&a[..], &b[..]).expect("diff").unwrap_or_else(|| panic!("{what}: none"));
        let expected = first_difference(&base, &other).expect("states differ");
        assert_eq!(words, expected, "{what}");
    }
    let mut damaged = a.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let err = diff(&a[..], &damaged[..]).expect_err("damaged second image");
    assert_eq!(err.side, quorumkit_storage::image::Side::Second);
}

// ---- the CLI ----

fn cli(cmd: ImageCommand, stdin: &[u8]) -> (u8, Vec<u8>, String) {
    let mut input = stdin;
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_with(cmd, &mut input, &mut out, &mut err);
    (code, out, String::from_utf8_lossy(&err).into_owned())
}

#[test]
fn cli_exit_codes_and_the_documented_sha256sum_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("x.qkimg");
    let name = file.to_str().expect("utf-8").to_string();
    // An empty instance on the real disk (`memory://` names nothing a new process can see).
    let source = format!("local://{}", dir.path().join("x").display());
    let vfs: quorumkit_storage::vfs::VfsHandle = std::sync::Arc::new(OsVfs::new());
    drop(Registry::builtin().open(&source, vfs).expect("an empty instance"));
    let export = |from: &str, output: &str| ImageCommand::Export {
        from: from.into(),
        output: output.into(),
        recovery: Default::default(),
    };
    let (code, _, err) = cli(export("memory://x", &name), b"");
    assert_eq!(code, 2);
    assert!(err.contains("always finds it empty"), "{err}");
    let (code, out, err) = cli(export(&source, &name), b"");
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("sha256"));
    let bytes = std::fs::read(&file).expect("exported file");
    assert_eq!(bytes, encode(&RaftState::new(), "local", 0), "the empty state, from local");
    assert!(!dir.path().join("x.qkimg.partial").exists());

    let (code, out, _) = cli(export(&source, "-"), b"");
    assert_eq!((code, &out), (0, &bytes));
    assert_eq!(cli(ImageCommand::Verify { file: name.clone() }, b"").0, 0);
    assert_eq!(cli(ImageCommand::Verify { file: "-".into() }, &bytes).0, 0);
    assert_eq!(cli(ImageCommand::Inspect { file: name.clone(), json: true }, b"").0, 0);
    assert_eq!(cli(ImageCommand::Diff { a: name.clone(), b: "-".into() }, &bytes).0, 0);
    let example = encode(&example_state(), "memory", 0);
    let (code, out, _) = cli(ImageCommand::Diff { a: name.clone(), b: "-".into() }, &example);
    assert_eq!(code, 1);
    assert_eq!(String::from_utf8_lossy(&out).trim(), "retained range differs: [1, 0] vs [5, 7]");
    let dest = |name: &str| format!("local://{}", dir.path().join(name).display());
    let import = |name: &str| ImageCommand::Import {
        to: dest(name),
        input: "-".into(),
        recovery: Default::default(),
    };
    let (code, out, err) = cli(import("y"), &example);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).starts_with("imported"), "nothing repaired in a new one");
    let (code, _, err) = cli(import("y"), &example);
    assert_eq!(code, 2, "a second import into the same destination is refused");
    assert!(err.contains("not empty") && err.contains("left untouched"), "{err}");

    let mut damaged = bytes.clone();
    damaged[20] ^= 1;
    let (code, _, err) = cli(ImageCommand::Verify { file: "-".into() }, &damaged);
    assert_eq!(code, 1);
    assert!(err.contains("checksum_mismatch"), "{err}");
    assert_eq!(cli(import("z"), &damaged).0, 1);
    let missing = dir.path().join("missing").to_str().expect("utf-8").to_string();
    assert_eq!(cli(ImageCommand::Verify { file: missing.clone() }, b"").0, 2);
    assert_eq!(cli(ImageCommand::Inspect { file: missing, json: false }, b"").0, 2);
    assert_eq!(cli(ImageCommand::Diff { a: "-".into(), b: "-".into() }, b"").0, 2);
    assert_eq!(
        cli(
            ImageCommand::Export {
                from: "nope://x".into(),
                output: name.clone(),
                recovery: Default::default()
            },
            b""
        )
        .0,
        2
    );

    // The specification's check with standard tools.
    let script = format!(
        "[ \"$(head -c -32 '{name}' | sha256sum | cut -d' ' -f1)\" = \
         \"$(tail -c 32 '{name}' | od -An -v -tx1 | tr -d ' \\n')\" ]"
    );
    let status = std::process::Command::new("sh").arg("-c").arg(&script).status().expect("sh");
    assert!(status.success(), "the documented sha256sum check failed");
}

/// The command lines of the issue (item 7) parse into the subcommands, as `qk image` will
/// see them once wired in.
#[test]
fn cli_command_lines_parse_as_the_issue_writes_them() {
    use clap::Parser;
    #[derive(Parser)]
    struct Qk {
        #[command(subcommand)]
        image: ImageCommand,
    }
    let parse = |line: &str| Qk::try_parse_from(line.split(' ')).map(|q| q.image);
    let s = |t: &str| t.to_string();
    let cases = [
        (
            "qk export --from local:///d -o img",
            ImageCommand::Export {
                from: s("local:///d"),
                output: s("img"),
                recovery: Default::default(),
            },
        ),
        (
            "qk export --from memory://x -o -",
            ImageCommand::Export {
                from: s("memory://x"),
                output: s("-"),
                recovery: Default::default(),
            },
        ),
        (
            "qk import --to redb:///f img",
            ImageCommand::Import {
                to: s("redb:///f"),
                input: s("img"),
                recovery: Default::default(),
            },
        ),
        (
            "qk import --to memory://y -",
            ImageCommand::Import {
                to: s("memory://y"),
                input: s("-"),
                recovery: Default::default(),
            },
        ),
        ("qk verify img", ImageCommand::Verify { file: s("img") }),
        ("qk inspect img --json", ImageCommand::Inspect { file: s("img"), json: true }),
        ("qk inspect -", ImageCommand::Inspect { file: s("-"), json: false }),
        ("qk diff a b", ImageCommand::Diff { a: s("a"), b: s("b") }),
    ];
    for (line, want) in cases {
        assert_eq!(parse(line).unwrap_or_else(|e| panic!("{line}: {e}")), want, "{line}");
    }
    assert!(parse("qk export --from memory://x").is_err(), "output is required");
    assert!(parse("qk diff a").is_err(), "diff needs two images");
}

// ---- snapshots and the specification's worked example ----

fn insta_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn snapshots_of_inspect_and_the_hex_dump() {
    let image = encode(&example_state(), "memory", 0);
    let inspected = inspect(&image[..]).expect("inspect");
    let json = serde_json::to_string_pretty(&inspected).expect("json");
    insta_settings().bind(|| {
        insta::assert_snapshot!("image_inspect_text", inspected.to_string());
        insta::assert_snapshot!("image_inspect_json", json);
        insta::assert_snapshot!("image_hex_example", annotated_hex(&image));
        insta::assert_snapshot!("image_hex_empty", annotated_hex(&empty_image()));
    });
}

/// The spec's `<!-- hex:LABEL -->` block up to its closing marker and the digest its dump
/// ends with (the last two dump lines), or `None` when the spec has no such block.
fn spec_block<'s>(spec: &'s str, label: &str) -> Option<(&'s str, String)> {
    let start = spec.find(&format!("<!-- hex:{label} -->\n"))?;
    let end = start + spec[start..].find(&format!("<!-- /hex:{label} -->"))?;
    let block = &spec[start..end];
    let lines: Vec<&str> = block.lines().filter(|l| l.contains("  ")).collect();
    let digest: String = lines[lines.len().saturating_sub(2)..]
        .iter()
        .flat_map(|l| l.split_whitespace().skip(1).take(16))
        .collect();
    Some((block, digest))
}

#[test]
fn the_specification_shows_the_current_bytes() {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/image-format.md");
    let mut spec = std::fs::read_to_string(&spec_path).expect("docs/image-format.md");
    for (label, image) in
        [("empty", empty_image()), ("example", encode(&example_state(), "memory", 0))]
    {
        let dump = annotated_hex(&image);
        let block = format!("<!-- hex:{label} -->\n```text\n{dump}```\n");
        if updating() {
            // `QK_UPDATE_CORPUS=1` also rewrites the spec's dumps and the digests it quotes.
            let (old_block, old_digest) = spec_block(&spec, label).expect("the spec has the block");
            let digest = verify(&image[..]).expect("valid").sha256;
            spec = spec.replacen(old_block, &block, 1).replace(&old_digest, &digest);
            std::fs::write(&spec_path, &spec).expect("rewrite docs/image-format.md");
        }
        assert!(
            spec.contains(&block),
            "docs/image-format.md lacks the current `{label}` dump:\n{block}"
        );
        let digest = verify(&image[..]).expect("valid").sha256;
        assert!(spec.contains(&digest), "docs/image-format.md lacks the `{label}` digest {digest}");
    }
}
