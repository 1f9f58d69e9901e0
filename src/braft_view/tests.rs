//! The oracle's rules, tested from braft-format.md's verified statements: the §5.8 vectors
//! (byte-identical to real braft output) and the behaviours marked verified in §4, §5.1,
//! §5.5, §6.1 and §7.4. Directories are built byte by byte here, never by the family.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::contract::{Entry, FileMeta, FileSource, Meta, Payload, PeerId};
use crate::vfs::{OpenOptions, SimDisk, SimDiskOptions, Vfs};

use super::*;

fn hex(text: &str) -> Vec<u8> {
    let clean: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    hex::decode(clean).expect("hex")
}

/// The §5.8 vectors, exactly as the spec prints them.
fn data_crc() -> Vec<u8> {
    let mut v = hex("00 00 00 00 00 00 00 01 02 01 00 00 00 00 00 05 9a 71 bb 4c be b2 1d 8d");
    v.extend_from_slice(b"hello");
    v
}
fn data_murmur() -> Vec<u8> {
    let mut v = hex("00 00 00 00 00 00 00 01 02 00 00 00 00 00 00 05 24 8b fa 47 a0 d2 07 4f");
    v.extend_from_slice(b"hello");
    v
}
fn no_op() -> Vec<u8> {
    hex("00 00 00 00 00 00 00 02 01 01 00 00 00 00 00 00 00 00 00 00 7b 61 05 05")
}
fn configuration() -> Vec<u8> {
    let mut v = hex("00 00 00 00 00 00 00 01 03 01 00 00 00 00 00 14 8a 97 4f 45 df 81 18 08");
    v.extend_from_slice(&[0x0a, 0x12]);
    v.extend_from_slice(b"127.0.0.1:8100:0:0");
    v
}
fn log_meta(first: u8) -> Vec<u8> {
    vec![0, 0, 0, 2, 0x08, first]
}
fn raft_meta_vector() -> Vec<u8> {
    hex("00 00 00 16 08 02 12 12 31 32 37 2e 30 2e 30 2e 31 3a 38 31 30 30 3a 30 3a 30")
}

/// A record built from the spec's header layout (§5.2), for cases the vectors do not cover.
fn record(term: u64, entry_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&term.to_be_bytes());
    header.extend_from_slice(&[entry_type, 1, 0, 0]);
    header.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    header.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    let hck = crc32c::crc32c(&header);
    header.extend_from_slice(&hck.to_be_bytes());
    header.extend_from_slice(payload);
    header
}

fn pbfile(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn raft_meta(term: u8, vote: &str) -> Vec<u8> {
    let mut body = vec![0x08, term, 0x12, vote.len() as u8];
    body.extend_from_slice(vote.as_bytes());
    pbfile(&body)
}

/// `LocalSnapshotPbMeta` with `meta{index, term=1}` and files (name, user_meta); `index`
/// below 128 (one varint byte).
fn snapshot_meta(index: u8, files: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let files: Vec<(&str, Option<Vec<u8>>)> = files
        .iter()
        .map(|(name, user_meta)| {
            let mut meta = Vec::new();
            if let Some(m) = user_meta {
                meta.push(0x0a);
                meta.push(m.len() as u8);
                meta.extend_from_slice(m);
            }
            (*name, Some(meta))
        })
        .collect();
    snapshot_meta_raw(index, &files)
}

/// A `__raft_snapshot_meta` at `index` listing `files`, each with the body of its
/// `LocalFileMeta` as given (`None`: no `File.meta` field at all).
fn snapshot_meta_raw(index: u8, files: &[(&str, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut body = vec![0x0a, 0x04, 0x08, index, 0x10, 0x01];
    for (name, meta) in files {
        let mut file = vec![0x0a, name.len() as u8];
        file.extend_from_slice(name.as_bytes());
        if let Some(meta) = meta {
            file.push(0x12);
            file.push(meta.len() as u8);
            file.extend_from_slice(meta);
        }
        body.push(0x12);
        body.push(file.len() as u8);
        body.extend_from_slice(&file);
    }
    pbfile(&body)
}

struct Dir {
    disk: Arc<SimDisk>,
    root: PathBuf,
}

impl Dir {
    fn new() -> Self {
        let disk = SimDisk::new(SimDiskOptions::default());
        let root = PathBuf::from("node");
        disk.create_dir_all(&root).expect("root");
        Dir { disk, root }
    }

    fn put(&self, relative: &str, bytes: &[u8]) -> &Self {
        let path = self.root.join(relative);
        self.disk.create_dir_all(path.parent().expect("parent")).expect("dirs");
        let file = self.disk.open(&path, OpenOptions::CREATE_TRUNCATE).expect("create");
        file.write_at(bytes, 0).expect("write");
        self
    }

    fn mkdir(&self, relative: &str) -> &Self {
        self.disk.create_dir_all(&self.root.join(relative)).expect("mkdir");
        self
    }

    fn load(&self) -> BraftLoad {
        read(self.disk.as_ref(), &self.root).expect("read")
    }

    fn load_with(&self, options: BraftOptions) -> BraftLoad {
        read_with(self.disk.as_ref(), &BraftPaths::under(&self.root), options).expect("read")
    }

    fn state(&self) -> RaftState {
        match self.load().view {
            BraftView::State(s) => s,
            other => panic!("expected a state, got {other}"),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

const OPEN_1: &str = "log/log_inprogress_00000000000000000001";

fn closed(first: u64, last: u64) -> String {
    format!("log/log_{first:020}_{last:020}")
}

fn fails_at(load: &BraftLoad, store: Store, path: &Path) {
    match &load.view {
        BraftView::InitFails(f) => {
            assert_eq!((f.store, f.path.as_path()), (store, path), "{f}");
        }
        other => panic!("expected init to fail at {}, got {other}", path.display()),
    }
}

#[test]
fn fresh_and_missing_directories_are_empty() {
    let dir = Dir::new();
    assert_eq!(dir.load().view, BraftView::Empty);
    dir.mkdir("log").mkdir("raft_meta").mkdir("snapshot").put("log/log_meta", &log_meta(1));
    assert_eq!(dir.load().view, BraftView::Empty);
    // A vote-less raft_meta at term 1 is what a fresh node has too.
    dir.put("raft_meta/raft_meta", &raft_meta(1, "0.0.0.0:0:0:0"));
    assert_eq!(dir.load().view, BraftView::Empty);
}

#[test]
fn the_vectors_load_as_braft_wrote_them() {
    let dir = Dir::new();
    dir.put("log/log_meta", &log_meta(1))
        .put(OPEN_1, &cat(&[data_crc(), data_murmur(), configuration(), no_op()]))
        .put("raft_meta/raft_meta", &raft_meta_vector());
    let state = dir.state();
    let peer = PeerId::new("127.0.0.1:8100:0:0");
    assert_eq!(
        state.entries,
        vec![
            Entry::data(1, 1, &b"hello"[..]),
            Entry::data(2, 1, &b"hello"[..]),
            Entry {
                index: 3,
                term: 1,
                payload: Payload::Configuration { peers: vec![peer.clone()], old_peers: vec![] }
            },
            Entry::no_op(4, 2),
        ]
    );
    assert_eq!(state.meta, Meta { term: 2, voted_for: Some(peer) });
    assert_eq!(state.first, 1);
}

#[test]
fn missing_log_meta_means_an_empty_log() {
    let dir = Dir::new();
    dir.put(OPEN_1, &data_crc()).put(&closed(1, 1), &data_crc()).put("log/unrelated", b"x");
    let load = dir.load();
    assert_eq!(load.view, BraftView::Empty);
    assert!(load.notes.writes_log_meta);
    assert!(load.notes.deletes.contains(&dir.path(OPEN_1)));
    assert!(!load.notes.deletes.contains(&dir.path("log/unrelated")));
}

#[test]
fn torn_tails_are_trimmed_and_tmp_files_ignored() {
    let dir = Dir::new();
    let full = cat(&[data_crc(), data_crc()]);
    dir.put("log/log_meta", &log_meta(1))
        .put(OPEN_1, &full[..full.len() - 3])
        .put("log/log_meta.tmp", b"junk")
        .put(&format!("{}.tmp", closed(2, 9)), b"junk");
    let load = dir.load();
    let BraftView::State(state) = &load.view else { panic!("{}", load.view) };
    assert_eq!(state.last(), 1);
    assert_eq!(load.notes.trims, vec![(dir.path(OPEN_1), 29)]);
    assert!(load.notes.deletes.contains(&dir.path("log/log_meta.tmp")));
    // A partial header.
    dir.put(OPEN_1, &cat(&[data_crc(), data_crc()[..10].to_vec()]));
    assert_eq!(dir.state().last(), 1);
}

#[test]
fn closed_segments_hold_exactly_their_count() {
    let dir = Dir::new();
    dir.put("log/log_meta", &log_meta(1));
    // 10 garbage bytes after the last entry: trimmed silently.
    dir.put(&closed(1, 2), &cat(&[data_crc(), data_crc(), vec![0xAB; 10]]));
    assert_eq!(dir.state().last(), 2);
    // Missing its last entry: data lost.
    dir.put(&closed(1, 2), &data_crc());
    fails_at(&dir.load(), Store::Log, &dir.path(&closed(1, 2)));
    // One entry too many: garbage.
    dir.put(&closed(1, 2), &cat(&[data_crc(), data_crc(), data_crc()]));
    fails_at(&dir.load(), Store::Log, &dir.path(&closed(1, 2)));
}

#[test]
fn bad_header_checksums() {
    let dir = Dir::new();
    let mut bad = data_crc();
    bad[21] ^= 1;
    dir.put("log/log_meta", &log_meta(1)).put(&closed(1, 2), &cat(&[data_crc(), bad.clone()]));
    fails_at(&dir.load(), Store::Log, &dir.path(&closed(1, 2)));
    let recover = BraftOptions { recover_log_from_corrupt: true, ..BraftOptions::default() };
    assert!(matches!(dir.load_with(recover).view, BraftView::InitFails(_)));
    // In the open segment: fails by default, trimmed there with the flag.
    dir.put(&closed(1, 2), &cat(&[data_crc(), data_crc()]))
        .put("log/log_inprogress_00000000000000000003", &cat(&[data_crc(), bad]));
    fails_at(&dir.load(), Store::Log, &dir.path("log/log_inprogress_00000000000000000003"));
    let BraftView::State(s) = dir.load_with(recover).view else { panic!() };
    assert_eq!(s.last(), 3);
    // An unknown checksum type never verifies.
    let mut unknown = data_crc();
    unknown[9] = 2;
    dir.put("log/log_inprogress_00000000000000000003", &unknown);
    assert!(matches!(dir.load().view, BraftView::InitFails(_)));
}

#[test]
fn bad_data_payloads_load_and_are_noted() {
    let dir = Dir::new();
    let mut bad = data_crc();
    *bad.last_mut().expect("payload") ^= 1;
    dir.put("log/log_meta", &log_meta(1)).put(OPEN_1, &cat(&[data_crc(), bad, data_crc()]));
    let load = dir.load();
    let BraftView::State(s) = &load.view else { panic!("{}", load.view) };
    assert_eq!(s.last(), 3);
    assert_eq!(load.notes.unreadable, vec![(2, true)]);
    let cut = BraftOptions { cut_unreadable_open_tail: true, ..BraftOptions::default() };
    let BraftView::State(s) = dir.load_with(cut).view else { panic!() };
    assert_eq!(s.last(), 1);
    // A configuration entry with a bad payload ends the readable log instead.
    let mut config = configuration();
    *config.last_mut().expect("payload") ^= 1;
    dir.put(OPEN_1, &cat(&[data_crc(), config, data_crc()]));
    assert_eq!(dir.state().last(), 1);
}

#[test]
fn log_meta_decides_the_start() {
    let dir = Dir::new();
    dir.put(&closed(1, 2), &cat(&[data_crc(), data_crc()]))
        .put(&closed(3, 4), &cat(&[data_crc(), data_crc()]))
        .put("log/log_inprogress_00000000000000000005", &data_crc());
    // truncate_prefix(4) rewrote log_meta only: the leading segment is discarded.
    dir.put("log/log_meta", &log_meta(4));
    let load = dir.load();
    let BraftView::State(s) = &load.view else { panic!("{}", load.view) };
    assert_eq!((s.first, s.last()), (4, 5));
    assert!(load.notes.deletes.contains(&dir.path(&closed(1, 2))));
    // reset(1000): every segment discarded.
    dir.put("log/log_meta", &pbfile(&[0x08, 0xe8, 0x07]));
    let s = dir.state();
    assert_eq!((s.first, s.last()), (1000, 999));
    // A short log_meta fails init (§5.5, observed); an unparsable body reads first = 0, then
    // the first closed segment has a hole.
    dir.put("log/log_meta", &[0, 0, 0]);
    fails_at(&dir.load(), Store::Log, &dir.path("log/log_meta"));
    dir.put("log/log_meta", &[0, 0, 0, 2, 0xff]);
    fails_at(&dir.load(), Store::Log, &dir.path("log/log_meta"));
    dir.put("log/log_meta", &[0, 0, 0, 2, 0xff, 0xff]);
    fails_at(&dir.load(), Store::Log, &dir.path(&closed(1, 2)));
}

#[test]
fn names_braft_cannot_open() {
    let dir = Dir::new();
    dir.put("log/log_meta", &log_meta(1)).put("log/log_inprogress_1", &data_crc());
    fails_at(&dir.load(), Store::Log, &dir.path(OPEN_1));
    let dir = Dir::new();
    dir.put("log/log_meta", &log_meta(1))
        .put(OPEN_1, &data_crc())
        .put("log/log_inprogress_00000000000000000002", &data_crc());
    assert!(matches!(dir.load().view, BraftView::InitFails(_)), "a second open segment");
    let dir = Dir::new();
    dir.put("log/log_meta", &log_meta(1))
        .put(&closed(1, 1), &data_crc())
        .put(&closed(3, 3), &data_crc());
    assert!(matches!(dir.load().view, BraftView::InitFails(_)), "a gap");
}

#[test]
fn raft_meta_rules() {
    let dir = Dir::new();
    dir.put("raft_meta/raft_meta", &raft_meta(3, "127.0.0.1:8101:0"));
    let s = dir.state();
    assert_eq!(s.meta, Meta { term: 3, voted_for: Some(PeerId::new("127.0.0.1:8101:0:0")) });
    dir.put("raft_meta/raft_meta", &raft_meta(3, ""));
    fails_at(&dir.load(), Store::Meta, &dir.path("raft_meta/raft_meta"));
    dir.put("raft_meta/raft_meta", &raft_meta(3, "localhost:8100"));
    fails_at(&dir.load(), Store::Meta, &dir.path("raft_meta/raft_meta"));
    dir.put("raft_meta/raft_meta", &raft_meta(4, "0.0.0.0:0:0"));
    assert_eq!(dir.state().meta, Meta { term: 4, voted_for: None });
    // braft never cleans up raft_meta.tmp; it is simply not read.
    dir.put("raft_meta/raft_meta.tmp", b"junk");
    assert_eq!(dir.state().meta.term, 4);
}

#[test]
fn unparsable_configuration_peers_become_the_empty_peer() {
    let dir = Dir::new();
    let mut payload = vec![0x0a, 14];
    payload.extend_from_slice(b"localhost:8100");
    payload.extend_from_slice(&[0x0a, 18]);
    payload.extend_from_slice(b"127.0.0.1:8101:0:0");
    dir.put("log/log_meta", &log_meta(1)).put(OPEN_1, &record(1, 3, &payload));
    let s = dir.state();
    let Payload::Configuration { peers, .. } = &s.entries[0].payload else { panic!() };
    assert_eq!(peers, &[PeerId::new("0.0.0.0:0:0:0"), PeerId::new("127.0.0.1:8101:0:0")]);
    // A configuration that does not parse fails init.
    dir.put(OPEN_1, &record(1, 3, &[0x0a, 0x05, b'x']));
    assert!(matches!(dir.load().view, BraftView::InitFails(_)));
}

#[test]
fn snapshot_rules() {
    let dir = Dir::new();
    let s80 = "snapshot/snapshot_00000000000000000080";
    let s150 = "snapshot/snapshot_00000000000000000120";
    dir.put(&format!("{s80}/__raft_snapshot_meta"), &snapshot_meta(80, &[]))
        .put(
            &format!("{s150}/__raft_snapshot_meta"),
            &snapshot_meta(120, &[("a", None), ("b/c", Some(b"m"))]),
        )
        .put(&format!("{s150}/a"), b"AAA")
        .put(&format!("{s150}/b/c"), b"C")
        .put(&format!("{s150}/__raft_snapshot_meta.extra"), b"not listed")
        .put("snapshot/temp/unclosed", b"x");
    let load = dir.load();
    let BraftView::State(s) = &load.view else { panic!("{}", load.view) };
    let snap = s.snapshot.as_ref().expect("snapshot");
    assert_eq!(snap.meta.last_included_index, 120);
    assert_eq!(snap.files.len(), 2);
    let c = &snap.files[&crate::contract::SnapshotPath::new("b/c").expect("path")];
    assert_eq!((c.data.as_ref(), &c.file_meta), (&b"C"[..], &FileMeta::user(&b"m"[..])));
    assert!(load.notes.deletes.contains(&dir.path(s80)));
    assert!(load.notes.deletes.contains(&dir.path("snapshot/temp")));
    // A meta that fails to load: braft starts without a snapshot.
    dir.put(&format!("{s150}/__raft_snapshot_meta"), &[0, 0, 0, 9, 1]);
    assert_eq!(dir.load().view, BraftView::Empty);
    // A meta without its `meta` field fails init.
    dir.put(&format!("{s150}/__raft_snapshot_meta"), &pbfile(&[]));
    fails_at(&dir.load(), Store::Snapshot, &dir.path(&format!("{s150}/__raft_snapshot_meta")));
    // A listed file that is not on disk.
    dir.put(&format!("{s150}/__raft_snapshot_meta"), &snapshot_meta(120, &[("gone", None)]));
    assert!(matches!(dir.load().view, BraftView::NotAState(_)));
}

#[test]
fn file_metadata_is_every_local_file_meta_field_as_get_file_meta_returns_it() {
    let dir = Dir::new();
    let s9 = "snapshot/snapshot_00000000000000000009";
    let all = hex("0a 01 75 10 01 1a 03 61 62 63"); // user_meta "u", source 1, checksum "abc"
    let files = [
        ("absent", None),
        ("empty", Some(Vec::new())),
        ("all", Some(all)),
        ("local", Some(hex("10 00"))),
        ("empty-user-meta", Some(hex("0a 00"))),
        // 7 is no FileSource: proto2 files it among the unknown fields, has_source() is false.
        ("unknown-source", Some(hex("10 07 1a 01 78"))),
        // An enum is read as a 32-bit number: 2^32 + 1 is 1.
        ("wide-source", Some(hex("10 81 80 80 80 10"))),
    ];
    dir.put(&format!("{s9}/__raft_snapshot_meta"), &snapshot_meta_raw(9, &files));
    for (name, _) in &files {
        dir.put(&format!("{s9}/{name}"), b"x");
    }
    let s = dir.state();
    let snap = s.snapshot.as_ref().expect("snapshot");
    let meta = |name: &str| {
        snap.files[&crate::contract::SnapshotPath::new(name).expect("path")].file_meta.clone()
    };
    assert_eq!(meta("absent"), FileMeta::default());
    assert_eq!(meta("empty"), FileMeta::default());
    let expected = FileMeta {
        user_meta: Some(Bytes::from_static(b"u")),
        source: Some(FileSource::Reference),
        checksum: Some("abc".to_string()),
    };
    assert_eq!(meta("all"), expected);
    assert_eq!(meta("local"), FileMeta { source: Some(FileSource::Local), ..FileMeta::default() });
    assert_eq!(meta("empty-user-meta"), FileMeta::user(Bytes::new()));
    assert_eq!(
        meta("unknown-source"),
        FileMeta { checksum: Some("x".to_string()), ..FileMeta::default() }
    );
    assert_eq!(meta("wide-source").source, Some(FileSource::Reference));
    // braft loads a checksum that is not UTF-8 (proto2 does not check); no contract state has it.
    let bad = [("bad", Some(hex("1a 02 ff fe")))];
    dir.put(&format!("{s9}/__raft_snapshot_meta"), &snapshot_meta_raw(9, &bad));
    dir.put(&format!("{s9}/bad"), b"x");
    assert!(matches!(dir.load().view, BraftView::NotAState(_)), "{}", dir.load().view);
}

#[test]
fn an_unpadded_snapshot_name_wins_and_then_is_not_found() {
    let dir = Dir::new();
    dir.put("snapshot/snapshot_00000000000000000080/__raft_snapshot_meta", &snapshot_meta(80, &[]))
        .put("snapshot/snapshot_150/__raft_snapshot_meta", &snapshot_meta(120, &[]));
    let load = dir.load();
    assert_eq!(load.view, BraftView::Empty);
    assert!(load.notes.deletes.contains(&dir.path("snapshot/snapshot_00000000000000000080")));
}

#[test]
fn indexes_at_the_int64_limit_do_not_overflow() {
    let dir = Dir::new();
    let max = i64::MAX as u64;
    let mut body = vec![0x08];
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    dir.put("log/log_meta", &pbfile(&body))
        .put(&format!("log/log_inprogress_{max:020}"), &cat(&[data_crc(), data_crc()]));
    // The second record would be index 2^63: braft-format.md does not say.
    assert!(matches!(dir.load().view, BraftView::Unspecified(_)));
    dir.put(&format!("log/log_inprogress_{max:020}"), &data_crc());
    let s = dir.state();
    assert_eq!((s.first, s.last()), (max, max));
    dir.put(&closed(max, max), &data_crc()).put(&format!("log/log_inprogress_{max:020}"), b"");
    assert!(!matches!(dir.load().view, BraftView::State(_)), "an open segment after i64::MAX");
}

#[test]
fn a_hole_before_the_open_segment_is_a_log_hole() {
    // A backward reset(3) whose log_meta is durable while the old open segment is not yet
    // unlinked: braft warns and starts on a log missing entries 3..5.
    let dir = Dir::new();
    dir.put("log/log_meta", &log_meta(3))
        .put("log/log_inprogress_00000000000000000005", &cat(&[data_crc(), data_crc()]));
    assert_eq!(dir.load().view, BraftView::LogHole { expected: 3, found: 5 });
    assert!(dir.load().view.to_string().contains("entries 3..5 are missing"));
}
