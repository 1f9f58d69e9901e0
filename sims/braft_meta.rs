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
