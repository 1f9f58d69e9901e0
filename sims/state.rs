//! The Raft-visible state value: equality, a stable digest, and first differences in words.

use std::collections::BTreeMap;

use bytes::Bytes;
use quorumkit_storage::contract::{
    Entry, FileMeta, FileSource, Meta, Payload, PeerId, SnapshotMeta, SnapshotPath,
};
use quorumkit_storage::state::{first_difference, RaftState, Snapshot, SnapshotFile};

fn sample() -> RaftState {
    let mut files = BTreeMap::new();
    files.insert(
        SnapshotPath::new("a/b").unwrap(),
        SnapshotFile {
            data: Bytes::from_static(b"hello"),
            file_meta: FileMeta {
                user_meta: Some(Bytes::from_static(b"m")),
                source: Some(FileSource::Local),
                checksum: Some("c1".into()),
            },
        },
    );
    files.insert(
        SnapshotPath::new("c").unwrap(),
        SnapshotFile { data: Bytes::new(), file_meta: FileMeta::default() },
    );
    RaftState {
        first: 3,
        entries: vec![
            Entry::data(3, 1, Bytes::from_static(b"x")),
            Entry::no_op(4, 2),
            Entry {
                index: 5,
                term: 2,
                payload: Payload::Configuration {
                    peers: vec![PeerId::new("1.2.3.4:5:0")],
                    old_peers: vec![],
                },
            },
        ],
        meta: Meta { term: 2, voted_for: Some(PeerId::new("1.2.3.4:5:0")) },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                last_included_index: 2,
                last_included_term: 1,
                peers: vec![PeerId::new("1.2.3.4:5:0")],
                old_peers: vec![],
            },
            files,
        }),
    }
}

#[test]
fn equal_states_have_no_difference_and_equal_digests() {
    assert_eq!(first_difference(&sample(), &sample()), None);
    assert_eq!(sample().digest(), sample().digest());
}

/// The digest is a stable function of the logical state: pinned so a change of encoding is
/// a deliberate, reviewed diff.
#[test]
fn digest_is_pinned() {
    let pinned = include_str!("../corpus/pinned/state-digest-sample.txt").trim();
    assert_eq!(sample().digest(), pinned);
}

fn differs(change: impl FnOnce(&mut RaftState), expect: &str) {
    let mut other = sample();
    change(&mut other);
    let d = first_difference(&sample(), &other).expect("states differ");
    assert!(d.contains(expect), "{d:?} does not mention {expect:?}");
    assert_ne!(sample().digest(), other.digest(), "digest missed: {d}");
}

#[test]
fn differences_are_named() {
    differs(|s| s.first = 2, "retained range differs: [3, 5] vs [2, 4]");
    differs(|s| s.entries[1].term = 9, "entry 4: term 2 vs 9");
    differs(|s| s.entries[0] = Entry::data(3, 1, Bytes::from_static(b"y")), "entry 3: data");
    differs(|s| s.entries[1] = Entry::data(4, 2, Bytes::new()), "entry 4: kind no_op vs data");
    differs(
        |s| {
            s.entries[2].payload = Payload::Configuration {
                peers: vec![PeerId::new("1.2.3.4:5:0")],
                old_peers: vec![PeerId::new("9.9.9.9:9:0")],
            }
        },
        "entry 5: old_peers",
    );
    differs(|s| s.meta.term = 7, "meta term differs: 2 vs 7");
    differs(|s| s.meta.voted_for = None, "meta voted_for differs");
    differs(|s| s.snapshot = None, "snapshot differs");
    differs(
        |s| s.snapshot.as_mut().unwrap().meta.last_included_term = 5,
        "snapshot meta last_included_term",
    );
    differs(
        |s| {
            s.snapshot.as_mut().unwrap().files.remove(&SnapshotPath::new("c").unwrap());
        },
        "snapshot file c: only in the first",
    );
    differs(
        |s| {
            let f = s.snapshot.as_mut().unwrap().files.get_mut(&SnapshotPath::new("a/b").unwrap());
            f.unwrap().data = Bytes::from_static(b"hellO");
        },
        "snapshot file a/b: content differs at byte 4",
    );
    differs(
        |s| {
            let f = s.snapshot.as_mut().unwrap().files.get_mut(&SnapshotPath::new("a/b").unwrap());
            f.unwrap().file_meta.user_meta = None;
        },
        "snapshot file a/b: file metadata user_meta 6d vs unset",
    );
    differs(
        |s| {
            let f = s.snapshot.as_mut().unwrap().files.get_mut(&SnapshotPath::new("a/b").unwrap());
            f.unwrap().file_meta.source = Some(FileSource::Reference);
        },
        "snapshot file a/b: file metadata source local vs reference",
    );
    differs(
        |s| {
            let f = s.snapshot.as_mut().unwrap().files.get_mut(&SnapshotPath::new("a/b").unwrap());
            f.unwrap().file_meta.checksum = Some("c2".into());
        },
        "snapshot file a/b: file metadata checksum \"c1\" vs \"c2\"",
    );
    differs(
        |s| {
            let f = s.snapshot.as_mut().unwrap().files.get_mut(&SnapshotPath::new("c").unwrap());
            f.unwrap().file_meta.user_meta = Some(Bytes::new());
        },
        "snapshot file c: file metadata user_meta unset vs empty",
    );
}

#[test]
fn snapshot_paths_are_validated() {
    for bad in ["", "/abs", "a//b", "./a", "a/./b", "a/../b", "..", "a\0b", "a\\b", "a/"] {
        assert!(SnapshotPath::new(bad).is_err(), "{bad:?} accepted");
    }
    assert!(SnapshotPath::new("x".repeat(256)).is_err(), "long segment accepted");
    assert!(SnapshotPath::new(["y"; 2049].join("/")).is_err(), "long path accepted");
    for good in ["a", "a/b/c", "with space", "unicodé/ファイル", ".hidden", "a..b"] {
        assert!(SnapshotPath::new(good).is_ok(), "{good:?} rejected");
    }
}
