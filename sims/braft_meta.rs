//! What braft keeps is kept: a snapshot file's whole `LocalFileMeta` (`user_meta`, `source`,
//! `checksum`) survives every family, every pair of them and the image, and every comparison
//! tells its fields apart. Directories are real temporary directories on `OsVfs`; the
//! braft-written one is assembled byte by byte from braft's format (braft-format.md §2, §3,
//! §7.2), not through the family's encoder.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use quorumkit_storage::contract::{
    FileMeta, FileSource, Meta, RaftStorage, SnapshotFileInfo, SnapshotMeta, SnapshotPath,
    StateView,
};
use quorumkit_storage::dual_write::bootstrap_into;
use quorumkit_storage::families::local::{LocalOptions, LocalPaths, LocalStorage};
use quorumkit_storage::families::Registry;
use quorumkit_storage::image::{export, import};
use quorumkit_storage::state::{first_difference, RaftState};
use quorumkit_storage::validate::compare;
use quorumkit_storage::vfs::{OsVfs, SimDisk, SimDiskOptions, VfsHandle};

fn os() -> VfsHandle {
    Arc::new(OsVfs::new())
}

fn path(p: &str) -> SnapshotPath {
    SnapshotPath::new(p).expect("valid path")
}

fn capture(view: &dyn StateView) -> RaftState {
    RaftState::capture(view).expect("capture")
}

/// One file's metadata per combination worth telling apart: each field alone, set to an
/// empty value or not, and all three.
fn metas() -> Vec<(&'static str, FileMeta)> {
    let none = FileMeta::default();
    vec![
        ("none", none.clone()),
        ("user-empty", FileMeta { user_meta: Some(Bytes::new()), ..none.clone() }),
        ("user", FileMeta { user_meta: Some(Bytes::from_static(b"\x00\x12\xff")), ..none.clone() }),
        ("source-local", FileMeta { source: Some(FileSource::Local), ..none.clone() }),
        ("source-reference", FileMeta { source: Some(FileSource::Reference), ..none.clone() }),
        ("checksum-empty", FileMeta { checksum: Some(String::new()), ..none.clone() }),
        (
            "checksum",
            FileMeta { checksum: Some("6f5902ac237024bdd0c176cb93063dc4".into()), ..none },
        ),
        (
            "all",
            FileMeta {
                user_meta: Some(Bytes::from_static(b"user")),
                source: Some(FileSource::Reference),
                checksum: Some("c0ffee".into()),
            },
        ),
    ]
}

/// Publishes a snapshot at index 3 holding one file per entry of [`metas`].
fn publish_every_meta(instance: &mut dyn RaftStorage) {
    let mut writer = instance.begin_snapshot().expect("begin_snapshot");
    for (name, meta) in metas() {
        writer.add_file(&path(name), &meta).expect("add_file");
        writer.write_file(&path(name), 0, name.as_bytes()).expect("write_file");
    }
    writer.set_meta(SnapshotMeta {
        last_included_index: 3,
        last_included_term: 1,
        peers: vec![quorumkit_storage::contract::PeerId::new("127.0.0.1:8100:0:0")],
        old_peers: vec![],
    });
    writer.publish().expect("publish");
}

fn files(view: &dyn StateView) -> Vec<SnapshotFileInfo> {
    view.snapshot_files().expect("snapshot files")
}

/// Bootstraps a fresh instance at `to` (any family) from `source`, as `qk migrate` does, and
/// checks the two equivalent by the validator.
fn migrate_into(source: Box<dyn RaftStorage>, to: &str, vfs: &VfsHandle) -> Box<dyn RaftStorage> {
    let mut destination = Registry::builtin().open(to, vfs.clone()).expect("open destination");
    bootstrap_into(source.as_ref(), destination.as_mut(), &mut |_| {}).expect("bootstrap");
    let verdict = compare(source.as_ref(), destination.as_ref()).expect("readable");
    assert_eq!(verdict.difference, None, "{to}");
    destination
}

#[test]
fn file_metadata_survives_every_ordered_pair_of_families() {
    let vfs: VfsHandle = SimDisk::new(SimDiskOptions::default());
    let schemes: Vec<&str> = Registry::builtin().families().iter().map(|f| f.scheme()).collect();
    for (i, from) in schemes.iter().enumerate() {
        for (j, to) in schemes.iter().enumerate() {
            let mut source =
                Registry::builtin().open(&format!("{from}://s-{i}-{j}"), vfs.clone()).unwrap();
            publish_every_meta(source.as_mut());
            let before = files(source.as_ref());
            let destination = migrate_into(source, &format!("{to}://d-{i}-{j}"), &vfs);
            assert_eq!(files(destination.as_ref()), before, "{from} -> {to}");
        }
    }
}

#[test]
fn file_metadata_goes_local_to_redb_to_local_and_reads_back_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vfs = os();
    let uri = |scheme: &str, name: &str| format!("{scheme}://{}", dir.path().join(name).display());
    let mut start = Registry::builtin().open(&uri("local", "a"), vfs.clone()).expect("open");
    publish_every_meta(start.as_mut());
    let want = files(start.as_ref());
    let redb = migrate_into(start, &uri("redb", "b.redb"), &vfs);
    assert_eq!(files(redb.as_ref()), want, "redb");
    let back = migrate_into(redb, &uri("local", "c"), &vfs);
    assert_eq!(files(back.as_ref()), want, "back in local");
    drop(back);
    // What the local reader returns from disk at the end is what it returned at the start.
    let reopened = Registry::builtin().open(&uri("local", "c"), vfs.clone()).expect("reopen");
    assert_eq!(files(reopened.as_ref()), want, "reopened");
    let first = Registry::builtin().open(&uri("local", "a"), vfs).expect("reopen the source");
    assert_eq!(first_difference(&capture(first.as_ref()), &capture(reopened.as_ref())), None);
    // And the bytes braft reads are the same in both directories.
    let meta_file = |name: &str| {
        std::fs::read(
            dir.path()
                .join(name)
                .join("snapshot/snapshot_00000000000000000003/__raft_snapshot_meta"),
        )
        .expect("snapshot meta")
    };
    assert_eq!(meta_file("a"), meta_file("c"));
}

// ---- a directory braft wrote -------------------------------------------------------------

/// A protobuf length-delimited field (`tag`, short body).
fn field(tag: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128, "one-byte lengths only");
    let mut out = vec![tag, body.len() as u8];
    out.extend_from_slice(body);
    out
}

/// A ProtoBufFile: 4-byte big-endian length, then the body.
fn pbfile(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// `__raft_snapshot_meta` as braft writes it (§7.2): `meta` (index 4, term 1, one peer), then
/// one `File` per name in byte order, each with its `LocalFileMeta` always present.
fn braft_snapshot_meta() -> Vec<u8> {
    let peer = b"127.0.0.1:8100:0:0";
    let mut meta = vec![0x08, 4, 0x10, 1];
    meta.extend(field(0x1a, peer));
    let mut body = field(0x0a, &meta);
    // "a": checksum and source reference; "b": user_meta and source local; "c": nothing.
    let mut a_meta = vec![0x10, 1];
    a_meta.extend(field(0x1a, b"9e107d9d372bb6826bd81d3542a419d6"));
    let mut b_meta = field(0x0a, b"\x01\x02");
    b_meta.extend([0x10, 0]);
    for (name, file_meta) in [("a", a_meta), ("b", b_meta), ("c", Vec::new())] {
        let mut file = field(0x0a, name.as_bytes());
        file.extend(field(0x12, &file_meta));
        body.extend(field(0x12, &file));
    }
    pbfile(&body)
}

/// A node directory as braft leaves it: `log/log_meta` (first 5, no segments),
/// `raft_meta/raft_meta` (term 2, no vote) and `snapshot/snapshot_…04/` with three files and
/// braft's meta; no file of this family.
fn braft_directory(dir: &Path) {
    std::fs::create_dir_all(dir.join("log")).unwrap();
    std::fs::write(dir.join("log/log_meta"), pbfile(&[0x08, 5])).unwrap();
    std::fs::create_dir_all(dir.join("raft_meta")).unwrap();
    let mut stable = vec![0x08, 2];
    stable.extend(field(0x12, b"0.0.0.0:0:0:0"));
    std::fs::write(dir.join("raft_meta/raft_meta"), pbfile(&stable)).unwrap();
    let snap = dir.join("snapshot/snapshot_00000000000000000004");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(snap.join("__raft_snapshot_meta"), braft_snapshot_meta()).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(snap.join(name), format!("contents of {name}")).unwrap();
    }
}

fn braft_file_metas() -> Vec<FileMeta> {
    vec![
        FileMeta {
            source: Some(FileSource::Reference),
            checksum: Some("9e107d9d372bb6826bd81d3542a419d6".into()),
            ..FileMeta::default()
        },
        FileMeta {
            user_meta: Some(Bytes::from_static(b"\x01\x02")),
            source: Some(FileSource::Local),
            ..FileMeta::default()
        },
        FileMeta::default(),
    ]
}

#[test]
fn a_braft_written_snapshot_keeps_checksum_and_source_through_export_and_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source_dir = dir.path().join("braft");
    braft_directory(&source_dir);
    let source =
        LocalStorage::open(os(), LocalPaths::from_dir(&source_dir), LocalOptions::default())
            .expect("a braft directory opens");
    let listed: Vec<FileMeta> = files(&source).into_iter().map(|f| f.file_meta).collect();
    assert_eq!(listed, braft_file_metas(), "the local reader returns braft's get_file_meta");
    assert_eq!(source.meta().unwrap(), Meta { term: 2, voted_for: None });

    let mut image = Vec::new();
    export(&source, "local", 0, &mut image).expect("export");
    for target in ["local", "redb", "memory"] {
        let uri = format!("{target}://{}", dir.path().join(format!("to-{target}")).display());
        let mut dest = Registry::builtin().open(&uri, os()).expect("open destination");
        import(&image[..], dest.as_mut()).expect("import");
        assert_eq!(first_difference(&capture(&source), &capture(dest.as_ref())), None, "{target}");
    }
    // braft reading the imported directory sees exactly the meta file braft wrote.
    let imported = std::fs::read(
        dir.path().join("to-local/snapshot/snapshot_00000000000000000004/__raft_snapshot_meta"),
    )
    .unwrap();
    assert_eq!(imported, braft_snapshot_meta());
}

#[test]
fn compare_tells_a_checksum_difference_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    braft_directory(&dir.path().join("a"));
    braft_directory(&dir.path().join("b"));
    // Same files, same bytes, one checksum differs.
    let other = braft_snapshot_meta();
    let at = other.windows(4).position(|w| w == b"9e10").expect("the checksum is in the file");
    let mut other = other;
    other[at] = b'0';
    std::fs::write(
        dir.path().join("b/snapshot/snapshot_00000000000000000004/__raft_snapshot_meta"),
        other,
    )
    .unwrap();
    let uri = |name: &str| format!("local://{}", dir.path().join(name).display());
    let out = Command::new(env!("CARGO_BIN_EXE_qk"))
        .args(["compare", &uri("a"), &uri("b")])
        .output()
        .expect("qk runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "snapshot file a: file metadata checksum \"9e107d9d372bb6826bd81d3542a419d6\" vs \
             \"0e107d9d372bb6826bd81d3542a419d6\""
        ),
        "{stdout}"
    );
}

// ---- one peer, one spelling ----------------------------------------------------------------

/// One segment record (braft-format.md §5.2): the 24-byte big-endian header with CRC-32C
/// checksums, then the payload.
fn record(term: u64, entry_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut header = term.to_be_bytes().to_vec();
    header.extend([entry_type, 1, 0, 0]);
    header.extend((payload.len() as u32).to_be_bytes());
    header.extend(crc32c::crc32c(payload).to_be_bytes());
    let header_crc = crc32c::crc32c(&header);
    header.extend(header_crc.to_be_bytes());
    header.extend_from_slice(payload);
    header
}

/// A directory braft ≤ 1.1.2 wrote: every peer in the three-field spelling, in a
/// configuration entry (peers out of braft's set order), the vote and the snapshot's meta.
fn legacy_directory(dir: &Path) {
    std::fs::create_dir_all(dir.join("log")).unwrap();
    std::fs::write(dir.join("log/log_meta"), pbfile(&[0x08, 5])).unwrap();
    let mut config = field(0x0a, b"127.0.0.2:8101:0");
    config.extend(field(0x0a, b"127.0.0.1:8100:0"));
    config.extend(field(0x12, b"127.0.0.1:8100:0"));
    std::fs::write(
        dir.join("log/log_inprogress_00000000000000000005"),
        [record(2, 3, &config), record(2, 2, b"data")].concat(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("raft_meta")).unwrap();
    let mut stable = vec![0x08, 2];
    stable.extend(field(0x12, b"127.0.0.2:8101:0"));
    std::fs::write(dir.join("raft_meta/raft_meta"), pbfile(&stable)).unwrap();
    let snap = dir.join("snapshot/snapshot_00000000000000000004");
    std::fs::create_dir_all(&snap).unwrap();
    let mut meta = vec![0x08, 4, 0x10, 1];
    meta.extend(field(0x1a, b"127.0.0.1:8100:0"));
    meta.extend(field(0x22, b"127.0.0.2:8101:0"));
    std::fs::write(snap.join("__raft_snapshot_meta"), pbfile(&field(0x0a, &meta))).unwrap();
}

#[test]
fn legacy_three_field_peers_read_as_the_canonical_spelling_everywhere() {
    use quorumkit_storage::contract::{Entry, Payload, PeerId};
    let dir = tempfile::tempdir().expect("tempdir");
    legacy_directory(&dir.path().join("old"));
    let old = LocalStorage::open(
        os(),
        LocalPaths::from_dir(dir.path().join("old")),
        LocalOptions::default(),
    )
    .expect("a braft 1.1.2 directory opens");
    let peer = |s: &str| PeerId::new(s);
    assert_eq!(peer("127.0.0.1:8100:0").as_str(), "127.0.0.1:8100:0:0", "the contract's spelling");
    let state = capture(&old);
    assert_eq!(
        state.entries[0],
        Entry {
            index: 5,
            term: 2,
            payload: Payload::Configuration {
                peers: vec![peer("127.0.0.2:8101:0:0"), peer("127.0.0.1:8100:0:0")],
                old_peers: vec![peer("127.0.0.1:8100:0:0")],
            },
        },
        "canonical spelling, order as stored"
    );
    let vote = state.meta.voted_for.clone().expect("a vote");
    assert_eq!(vote.as_str(), "127.0.0.2:8101:0:0");
    let snapshot = state.snapshot.clone().expect("a snapshot");
    assert_eq!(snapshot.meta.peers[0].as_str(), "127.0.0.1:8100:0:0");
    assert_eq!(snapshot.meta.old_peers[0].as_str(), "127.0.0.2:8101:0:0");

    // The same state written by braft master (four fields) is the same state, in every
    // comparison and through every family.
    let mut image = Vec::new();
    export(&old, "local", 0, &mut image).expect("the legacy peers export");
    for target in ["memory", "redb", "local"] {
        let uri = format!("{target}://{}", dir.path().join(format!("to-{target}")).display());
        let mut dest = Registry::builtin().open(&uri, os()).expect("open");
        import(&image[..], dest.as_mut()).expect("import");
        assert_eq!(capture(dest.as_ref()), state, "{target}");
        assert_eq!(compare(&old, dest.as_ref()).unwrap().difference, None, "{target}");
    }
    // What the imported local directory holds on disk is braft master's spelling.
    let raft_meta = std::fs::read(dir.path().join("to-local/raft_meta/raft_meta")).unwrap();
    assert!(raft_meta.windows(18).any(|w| w == b"127.0.0.2:8101:0:0"), "{raft_meta:?}");
}

// ---- names braft would mis-list ------------------------------------------------------------

/// A state whose snapshot holds `__raft_snapshot_meta` as a user file: legal in the contract
/// and in the image, but not a file `local://` can put where braft would find it.
fn state_with_braft_meta_named_file() -> RaftState {
    let mut files = std::collections::BTreeMap::new();
    let file = quorumkit_storage::state::SnapshotFile {
        data: Bytes::from_static(b"user bytes"),
        file_meta: FileMeta::default(),
    };
    files.insert(path("__raft_snapshot_meta"), file);
    RaftState {
        snapshot: Some(quorumkit_storage::state::Snapshot {
            meta: SnapshotMeta {
                last_included_index: 0,
                last_included_term: 0,
                peers: vec![],
                old_peers: vec![],
            },
            files,
        }),
        ..RaftState::new()
    }
}

fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn local_refuses_a_snapshot_braft_would_mis_list_and_other_families_keep_it() {
    use quorumkit_storage::contract::{ContractError, StorageError};
    use quorumkit_storage::image::{encode_state, ImageError};
    let state = state_with_braft_meta_named_file();
    let mut image = Vec::new();
    encode_state(&state, "memory", 0, &[], &mut image).expect("the image is legal");
    let dir = tempfile::tempdir().expect("tempdir");
    for target in ["memory", "redb"] {
        let uri = format!("{target}://{}", dir.path().join(target).display());
        let mut dest = Registry::builtin().open(&uri, os()).expect("open");
        import(&image[..], dest.as_mut()).expect("other families keep the file");
        assert_eq!(capture(dest.as_ref()), state, "{target}");
    }

    let local_dir = dir.path().join("local");
    let uri = format!("local://{}", local_dir.display());
    let mut dest = Registry::builtin().open(&uri, os()).expect("open");
    let err = import(&image[..], dest.as_mut()).expect_err("local refuses it");
    let ImageError::Destination { source, .. } = &err else { panic!("{err}") };
    let StorageError::Contract(ContractError::ReservedSnapshotPath { path, family, .. }) = source
    else {
        panic!("{err}")
    };
    assert_eq!((path.as_str(), *family), ("__raft_snapshot_meta", "local"));
    assert!(err.to_string().contains("FILE"), "the error names the record: {err}");
    assert_eq!(capture(dest.as_ref()), RaftState::new(), "the import left state");
    drop(dest);

    // Bootstrapping (what `qk migrate` does) refuses before anything is written.
    let fresh = dir.path().join("fresh");
    drop(Registry::builtin().open(&format!("local://{}", fresh.display()), os()).unwrap());
    let before = tree(&fresh);
    let mut source = quorumkit_storage::families::memory::MemoryStorage::new();
    import(&image[..], &mut source).expect("memory keeps it");
    let mut dest = Registry::builtin().open(&format!("local://{}", fresh.display()), os()).unwrap();
    let err = bootstrap_into(&source, dest.as_mut(), &mut |_| {}).expect_err("refused");
    assert!(
        matches!(err, StorageError::Contract(ContractError::ReservedSnapshotPath { .. })),
        "{err}"
    );
    assert_eq!(tree(&fresh), before, "the refused bootstrap wrote something");
}

// ---- braft's own writes keep the directory ours --------------------------------------------

use quorumkit_storage::contract::{Entry, PeerId, StorageError};
use quorumkit_storage::families::local::meta::encode_raft_meta;
use quorumkit_storage::families::local::RecoveryPolicy;
use quorumkit_storage::vfs::{FaultPlan, FaultRate, FileId, OpenOptions};

fn small_segments() -> LocalOptions {
    LocalOptions { segment_size_max: 120, ..LocalOptions::default() }
}

/// What this family leaves in `dir`: entries 1..=30 over several segments (term 2), a vote
/// in term 2 and a snapshot at 10.
fn qk_directory(dir: &Path) {
    let mut s = LocalStorage::open(os(), LocalPaths::from_dir(dir), small_segments()).unwrap();
    let entries: Vec<Entry> =
        (1..=30).map(|i| Entry::data(i, 2, format!("entry-{i:04}").into_bytes())).collect();
    s.append(&entries).unwrap();
    s.save_meta(&Meta { term: 2, voted_for: Some(PeerId::new("127.0.0.1:8100:0:0")) }).unwrap();
    let mut w = s.begin_snapshot().unwrap();
    w.add_file(&path("state"), &FileMeta::default()).unwrap();
    w.write_file(&path("state"), 0, b"applied through 10").unwrap();
    w.set_meta(SnapshotMeta {
        last_included_index: 10,
        last_included_term: 2,
        peers: vec![PeerId::new("127.0.0.1:8100:0:0")],
        old_peers: vec![],
    });
    w.publish().unwrap();
    // More appends after the publish, so the log's record vouches for it too.
    s.append(&[Entry::data(31, 2, b"entry-0031".to_vec())]).unwrap();
}

/// braft's ProtoBufFile save (braft-format.md §2): `<path>.tmp` written and renamed over.
fn braft_save(file: &Path, bytes: &[u8]) {
    let tmp = file.with_file_name(format!("{}.tmp", file.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// braft's `truncate_prefix(first_kept)` (§5.6): `log_meta` first, then every segment wholly
/// below `first_kept` renamed to `.tmp` and unlinked.
fn braft_truncate_prefix(log: &Path, first_kept: u64) {
    braft_save(&log.join("log_meta"), &pbfile(&[0x08, first_kept as u8]));
    for entry in std::fs::read_dir(log).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(range) = name.strip_prefix("log_").filter(|r| !r.starts_with("inprogress")) else {
            continue;
        };
        let Some((_, last)) = range.split_once('_') else { continue };
        if last.parse::<u64>().is_ok_and(|l| l < first_kept) {
            let tmp = log.join(format!("{name}.tmp"));
            std::fs::rename(log.join(&name), &tmp).unwrap();
            std::fs::remove_file(tmp).unwrap();
        }
    }
}

fn qk(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qk")).args(args).output().expect("qk runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn braft_rewriting_raft_meta_and_log_meta_leaves_the_directory_readable_by_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = dir.path().join("node");
    qk_directory(&node);
    // braft votes in term 3 and truncates its log's prefix to 15.
    let vote = Meta { term: 3, voted_for: Some(PeerId::new("127.0.0.1:8101:0:0")) };
    braft_save(&node.join("raft_meta/raft_meta"), &encode_raft_meta(&vote).unwrap());
    braft_truncate_prefix(&node.join("log"), 15);

    let s = LocalStorage::open(os(), LocalPaths::from_dir(&node), LocalOptions::default())
        .expect("the default policy reads what braft wrote");
    assert_eq!(s.meta().unwrap(), vote);
    assert_eq!((s.first_index(), s.last_index()), (15, 31));
    assert_eq!(s.snapshot_meta().unwrap().map(|m| m.last_included_index), Some(10));
    drop(s);

    let uri = format!("local://{}", node.display());
    let (code, out, err) = qk(&["inspect", &uri]);
    assert_eq!(code, 0, "inspect: {out}{err}");
    assert!(out.contains("rewritten by braft"), "inspect says what braft rewrote: {out}");
    let image = dir.path().join("node.qkimg");
    let image = image.to_str().unwrap();
    let (code, out, err) = qk(&["image", "export", "--from", &uri, "-o", image]);
    assert_eq!(code, 0, "export: {out}{err}");
    let redb = format!("redb://{}", dir.path().join("copy.redb").display());
    let (code, out, err) = qk(&["image", "import", "--to", &redb, image]);
    assert_eq!(code, 0, "import: {out}{err}");
    let (code, out, err) = qk(&["compare", &uri, &redb]);
    assert_eq!(code, 0, "compare: {out}{err}");
    let moved = format!("local://{}", dir.path().join("moved").display());
    let (code, out, err) = qk(&["migrate", "--from", &uri, "--to", &moved]);
    assert_eq!(code, 0, "migrate: {out}{err}");
}

/// Flips the `mask` bits of byte `at` of `file` where it lies, through the same inode
/// (damage in place).
fn flip_in_place(file: &Path, at: u64, mask: u8) {
    let handle = os().open(file, OpenOptions::WRITE).unwrap();
    let mut byte = [0u8; 1];
    handle.read_exact_at(&mut byte, at).unwrap();
    byte[0] ^= mask;
    handle.write_at(&byte, at).unwrap();
    handle.sync().unwrap();
}

#[test]
fn a_bit_flipped_in_place_in_raft_meta_or_log_meta_is_corruption_naming_the_file() {
    // raft_meta: term 2 reads 3; log_meta: first index 1 reads 3. Both still parse.
    for (file, at, mask) in [("raft_meta/raft_meta", 5, 0x01), ("log/log_meta", 5, 0x02)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = dir.path().join("node");
        qk_directory(&node);
        flip_in_place(&node.join(file), at, mask);
        let err = LocalStorage::open(os(), LocalPaths::from_dir(&node), LocalOptions::default())
            .expect_err("damage in place is refused");
        let StorageError::Corruption(c) = &err else { panic!("{file}: {err}") };
        assert!(c.path.ends_with(file), "{file}: {err}");
        assert!(c.what.contains("changed in place"), "{file}: {err}");

        let uri = format!("local://{}", node.display());
        let (code, out, err) = qk(&["inspect", &uri]);
        assert_eq!(code, 2, "{file}: {out}");
        assert!(err.contains(file) && err.contains("changed in place"), "{file}: {err}");
        // braft's own policy reads what braft would: the flipped byte parses.
        let (code, out, err) = qk(&["inspect", "--recovery", "braft", &uri]);
        assert_eq!(code, 0, "{file}: {out}{err}");
    }
}

/// A suffix truncation braft makes leaves no trace that tells it from appends this family
/// acknowledged and lost: the default policy refuses, says so and names `--recovery braft`,
/// which opens the directory as braft would.
#[test]
fn braft_truncating_below_this_familys_last_write_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = dir.path().join("node");
    qk_directory(&node);
    let mut open_segment = None;
    for entry in std::fs::read_dir(node.join("log")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("log_inprogress_") {
            open_segment = Some(name);
        }
    }
    // braft's truncate_suffix(29) in the open segment: cut in place, dropping entries 30
    // and 31 (24-byte header and 10 bytes each), below the 30 this family's raft_meta and
    // snapshot saves recorded.
    let open_segment = node.join("log").join(open_segment.expect("an open segment"));
    let len = std::fs::metadata(&open_segment).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&open_segment).unwrap();
    file.set_len(len - 2 * (24 + 10)).unwrap();
    drop(file);
    let err = LocalStorage::open(os(), LocalPaths::from_dir(&node), LocalOptions::default())
        .expect_err("cannot be told from a lost write");
    assert!(err.to_string().contains("--recovery braft"), "{err}");
    let braft = LocalOptions { recovery: RecoveryPolicy::BraftCompatible, ..small_segments() };
    let s = LocalStorage::open(os(), LocalPaths::from_dir(&node), braft).expect("as braft would");
    assert_eq!(s.last_index(), 29);
}

#[test]
fn file_ids_follow_the_inode_on_both_vfs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = SimDisk::new(SimDiskOptions::default());
    let sim: VfsHandle = disk.clone();
    for (vfs, base) in [(os(), dir.path().to_path_buf()), (sim, std::path::PathBuf::from("d"))] {
        vfs.create_dir_all(&base).unwrap();
        let a = base.join("a");
        let f = vfs.open(&a, OpenOptions::CREATE).unwrap();
        f.write_at(b"one", 0).unwrap();
        f.sync().unwrap();
        let id = |p: &Path| -> FileId { vfs.metadata(p).unwrap().id };
        let first = id(&a);
        f.write_at(b"two", 3).unwrap();
        f.set_len(2).unwrap();
        drop(f);
        assert_eq!(id(&a), first, "writes keep the id");
        vfs.rename(&a, &base.join("b")).unwrap();
        assert_eq!(id(&base.join("b")), first, "a rename keeps the id");
        // tmp + rename over it: a new file, created later.
        let tmp = base.join("b.tmp");
        drop(vfs.open(&tmp, OpenOptions::CREATE).unwrap());
        vfs.rename(&tmp, &base.join("b")).unwrap();
        let second = id(&base.join("b"));
        assert_ne!(second, first, "a replacement is another file");
        assert!(second.birth >= first.birth, "created later: {second:?} vs {first:?}");
        vfs.sync_dir(&base).unwrap();
    }
    disk.crash();
    let sim: VfsHandle = disk.clone();
    assert!(sim.metadata(Path::new("d/b")).is_ok());
    let before = sim.metadata(Path::new("d/b")).unwrap().id;
    disk.crash();
    assert_eq!(sim.metadata(Path::new("d/b")).unwrap().id, before, "a power loss keeps it");
}

/// The operation numbers of `op` on `file` among the last `n` trace lines.
fn ops_on(disk: &SimDisk, n: u64, op: &str, file: &str) -> Vec<u64> {
    disk.trace_tail(n as usize)
        .lines()
        .filter(|l| l.contains(&format!(" {op} ")) && l.contains(file))
        .map(|l| {
            let digits: String = l
                .trim_start()
                .trim_start_matches('#')
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().expect("a trace line starts with its operation number")
        })
        .collect()
}

/// On the simulated disk (`sector_size` bytes a sector): `raft_meta` saved three times, the
/// last save's `pick` operations on `raft_meta.qktmp` each hit by `fault` in turn; the reopened
/// instance returns term 3 or a corruption error naming `raft_meta`, never another value.
fn raft_meta_under(
    sector_size: u32,
    fault: impl Fn(u64) -> FaultPlan,
    pick: &str,
) -> Vec<Result<Meta, String>> {
    let run = |plan: Option<FaultPlan>| {
        let disk = SimDisk::new(SimDiskOptions { sector_size, ..SimDiskOptions::default() });
        let vfs: VfsHandle = disk.clone();
        let mut s =
            LocalStorage::open(vfs.clone(), LocalPaths::from_dir("n"), LocalOptions::default())
                .unwrap();
        for term in 1..=2 {
            s.save_meta(&Meta { term, voted_for: None }).unwrap();
        }
        let before = disk.op_count();
        if let Some(plan) = plan {
            disk.set_fault_plan(plan);
        }
        let vote = Some(PeerId::new("10.0.0.1:8000:0:0"));
        let saved = s.save_meta(&Meta { term: 3, voted_for: vote });
        disk.set_fault_plan(FaultPlan::none());
        let ops = ops_on(&disk, disk.op_count() - before, pick, "raft_meta.qktmp");
        drop(s);
        let reopened = saved.and_then(|()| {
            LocalStorage::open(vfs, LocalPaths::from_dir("n"), LocalOptions::default())
                .and_then(|s| s.meta())
        });
        (ops, reopened, disk.fault_stats().faults_total())
    };
    let (ops, clean, _) = run(None);
    assert_eq!(clean.unwrap().term, 3);
    assert!(!ops.is_empty(), "no {pick} of raft_meta.qktmp in the save");
    let mut outcomes = Vec::new();
    for op in ops {
        let (_, got, injected) = run(Some(fault(op)));
        if injected == 0 {
            continue;
        }
        outcomes.push(got.map_err(|e| match e {
            StorageError::Corruption(c) if c.path.ends_with("raft_meta/raft_meta") => c.what,
            other => panic!("op {op}: {other}"),
        }));
    }
    for meta in outcomes.iter().flatten() {
        assert_eq!(meta.term, 3, "a wrong value: {meta:?}");
    }
    outcomes
}

/// SimDisk's bit rot in `raft_meta` (one bit of a durable sector, after the sync of the file
/// that becomes `raft_meta`) is a corruption error naming it. SimDisk's misdirected writes
/// land in another sector of the same file; `raft_meta` is written whole by one write, so
/// none can land in it, even with sectors smaller than the file (asserted below: none is
/// injected). The in-place write of `a_bit_flipped_in_place_…` stands in for a write meant
/// for another file.
#[test]
fn bit_rot_in_raft_meta_is_corruption_never_a_wrong_value() {
    let rot = raft_meta_under(
        512,
        |op| FaultPlan { bit_rot: FaultRate::at_ops([op]), ..FaultPlan::none() },
        "sync",
    );
    assert!(
        rot.iter().any(|r| r.as_ref().is_err_and(|w| w.contains("changed in place"))),
        "{rot:?}"
    );
    let misdirected = raft_meta_under(
        8,
        |op| FaultPlan { misdirect: FaultRate::at_ops([op]), ..FaultPlan::none() },
        "write_at",
    );
    assert!(misdirected.is_empty(), "a misdirect landed in raft_meta: {misdirected:?}");
}

/// `OsVfs`, except that a rename onto a file named `raft_meta` fails: a power loss between a
/// `raft_meta` save's sidecar and its rename, as this family's next open sees it.
struct RaftMetaRenameFails(VfsHandle);

impl quorumkit_storage::vfs::Vfs for RaftMetaRenameFails {
    fn open(
        &self,
        path: &Path,
        options: OpenOptions,
    ) -> quorumkit_storage::vfs::VfsResult<Box<dyn quorumkit_storage::vfs::VfsFile>> {
        self.0.open(path, options)
    }
    fn create_dir(&self, path: &Path) -> quorumkit_storage::vfs::VfsResult<()> {
        self.0.create_dir(path)
    }
    fn remove_file(&self, path: &Path) -> quorumkit_storage::vfs::VfsResult<()> {
        self.0.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> quorumkit_storage::vfs::VfsResult<()> {
        self.0.remove_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> quorumkit_storage::vfs::VfsResult<()> {
        if to.file_name().is_some_and(|n| n == "raft_meta") {
            use quorumkit_storage::vfs::{VfsError, VfsErrorKind};
            return Err(VfsError::new("rename", to, VfsErrorKind::Crashed));
        }
        self.0.rename(from, to)
    }
    fn read_dir(
        &self,
        path: &Path,
    ) -> quorumkit_storage::vfs::VfsResult<Vec<quorumkit_storage::vfs::DirEntry>> {
        self.0.read_dir(path)
    }
    fn metadata(
        &self,
        path: &Path,
    ) -> quorumkit_storage::vfs::VfsResult<quorumkit_storage::vfs::Metadata> {
        self.0.metadata(path)
    }
    fn sync_dir(&self, path: &Path) -> quorumkit_storage::vfs::VfsResult<()> {
        self.0.sync_dir(path)
    }
    fn try_lock(
        &self,
        path: &Path,
        mode: quorumkit_storage::vfs::LockMode,
    ) -> quorumkit_storage::vfs::VfsResult<Box<dyn quorumkit_storage::vfs::VfsLock>> {
        self.0.try_lock(path, mode)
    }
    fn declare_write_atomicity(
        &self,
        path: &Path,
        atomicity: quorumkit_storage::vfs::WriteAtomicity,
    ) -> quorumkit_storage::vfs::VfsResult<()> {
        self.0.declare_write_atomicity(path, atomicity)
    }
}

#[test]
fn braft_saving_raft_meta_after_an_interrupted_save_of_ours_is_read_as_braft_wrote_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = dir.path().join("node");
    qk_directory(&node);
    // Our vote in term 4 is cut off after its sidecar is in, before its rename.
    let failing: VfsHandle = Arc::new(RaftMetaRenameFails(os()));
    let mut s = LocalStorage::open(failing, LocalPaths::from_dir(&node), small_segments())
        .expect("open through the failing rename");
    let ours = Meta { term: 4, voted_for: Some(PeerId::new("127.0.0.1:8100:0:0")) };
    s.save_meta(&ours).expect_err("the rename fails");
    drop(s);
    // braft then votes in term 5: its save is `raft_meta.tmp` (O_TRUNC) renamed over.
    let braft = Meta { term: 5, voted_for: Some(PeerId::new("127.0.0.1:8102:0:0")) };
    braft_save(&node.join("raft_meta/raft_meta"), &encode_raft_meta(&braft).unwrap());
    let s = LocalStorage::open(os(), LocalPaths::from_dir(&node), LocalOptions::default())
        .expect("braft's rewrite is not damage in place");
    assert_eq!(s.meta().unwrap(), braft);
    drop(s);
    let uri = format!("local://{}", node.display());
    let (code, out, err) = qk(&["inspect", &uri]);
    assert_eq!(code, 0, "inspect: {out}{err}");
    assert!(out.contains("rewritten by braft"), "inspect says braft rewrote it: {out}");
}
