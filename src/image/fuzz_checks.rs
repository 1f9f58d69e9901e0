//! The properties the image fuzz targets check, as plain functions, so that the cargo-fuzz
//! targets are one-liners and `cargo test` replays every corpus input through the very same
//! code on stable Rust.
//!
//! Each function takes arbitrary bytes and panics only when the property fails (that is
//! how a fuzzer learns of a finding); the codec itself never panics on any input.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::format::{path_order, CHUNK_LEN, FORMAT_MINOR, INDEX_MAX, TERM_MAX};
use super::hostile::{generate_with, HostileImage, Violation};
use super::{decode, encode_state, import, inspect, verify, DecodedImage, Extension};
use crate::contract::{
    check_new_snapshot_file, Entry, FileMeta, FileSource, Meta, Payload, PeerId, SnapshotMeta,
    SnapshotPath,
};
use crate::families::memory::MemoryStorage;
use crate::state::{RaftState, Snapshot, SnapshotFile};

/// `image_decode`: arbitrary bytes never panic the reader; whatever it accepts re-encodes
/// to exactly the same bytes (for images of this minor version; a newer minor's image
/// re-encodes to an image of the same state).
pub fn image_decode(data: &[u8]) {
    let Ok(image) = decode(data) else { return };
    let bytes = reencode(&image);
    if image.header.format_minor == FORMAT_MINOR {
        assert!(bytes == data, "an accepted image does not re-encode to its own bytes");
    } else {
        let again = decode(&bytes[..]).expect("a re-encoded image decodes");
        assert_eq!(again.state, image.state, "re-encoding changed the state");
    }
}

/// `image_roundtrip`: an arbitrary state (drawn from the bytes) encodes, decodes to the
/// same state and extensions, re-encodes to the same bytes, and imports into the memory
/// family as the same state.
pub fn image_roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(state) = arbitrary_state(&mut u) else { return };
    let extensions = arbitrary_extensions(&mut u).unwrap_or_default();
    let mut bytes = Vec::new();
    encode_state(&state, "memory", 0, &extensions, &mut bytes).expect("a valid state encodes");
    let image = decode(&bytes[..]).expect("an encoded state decodes");
    assert_eq!(image.state, state, "decode(encode(state)) != state");
    assert_eq!(image.extensions, extensions, "extensions changed on the way");
    assert!(reencode(&image) == bytes, "re-encoding is not a fixed point");
    let mut dest = MemoryStorage::new();
    import(&bytes[..], &mut dest).expect("an encoded state imports");
    let imported = RaftState::capture(&dest).expect("the memory family reads back");
    assert_eq!(imported, state, "import(encode(state)) != state");
}

/// `snapshot_path`: a path the contract accepts is safe (relative, no empty, `.` or `..`
/// segment, no NUL or backslash, within the length limits, and joined under a base
/// directory it stays there), and the image's canonical path order is the order of the
/// paths' segment lists. The bytes are one path, or two paths split at the first `0xff`.
pub fn snapshot_path(data: &[u8]) {
    let (left, right) = match data.iter().position(|b| *b == 0xff) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Ok(a) = std::str::from_utf8(left) else { return };
    let a_valid = check_path(a);
    if let Some(Ok(b)) = right.map(std::str::from_utf8) {
        // The order claim holds for valid paths only: they have no NUL, which the canonical
        // order would confuse with `/`.
        if !(a_valid && check_path(b)) {
            return;
        }
        let by_segments = a.split('/').cmp(b.split('/'));
        assert_eq!(path_order(a, b), by_segments, "path order of {a:?} and {b:?}");
    }
}

/// Checks the safety of `text` if it is a valid path; returns whether it is.
fn check_path(text: &str) -> bool {
    let Ok(path) = SnapshotPath::new(text) else { return false };
    assert!(!text.starts_with('/'), "absolute path accepted: {text:?}");
    assert!(!text.contains('\0') && !text.contains('\\'), "NUL or backslash: {text:?}");
    assert!(text.len() <= crate::contract::SNAPSHOT_PATH_LEN_MAX, "over-long: {text:?}");
    for segment in path.segments() {
        assert!(!matches!(segment, "" | "." | ".."), "segment {segment:?} in {text:?}");
        assert!(segment.len() <= crate::contract::SNAPSHOT_PATH_SEGMENT_LEN_MAX);
    }
    let base = std::path::Path::new("/base/snapshot");
    let joined = base.join(text);
    assert!(joined.starts_with(base), "{text:?} escapes its base");
    assert!(
        joined
            .components()
            .all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_))),
        "{text:?} joins to a path with special components"
    );
    true
}

/// `peer_id`: a PeerId the contract accepts is `ip:port:idx[:role]` in canonical decimal
/// (re-rendering its numbers gives back the same text); the value it makes is the one
/// four-field spelling (the three-field text with `:0` added), its own canonical form; and a
/// vote for it (other than the any peer) round-trips through an image, while the image
/// reader refuses the three-field spelling.
pub fn peer_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let peer = PeerId::new(text);
    if peer.problem().is_some() {
        return;
    }
    let fields: Vec<&str> = text.split(':').collect();
    assert!(fields.len() == 3 || fields.len() == 4, "{text:?}");
    let canonical = if fields.len() == 3 { format!("{text}:0") } else { text.to_string() };
    assert_eq!(peer.as_str(), canonical, "PeerId::new did not canonicalise {text:?}");
    assert_eq!(PeerId::new(peer.as_str()), peer, "the canonical form is not a fixed point");
    assert_eq!(
        super::format::peer_problem(text).is_none(),
        fields.len() == 4,
        "the image accepts exactly the canonical spelling: {text:?}"
    );
    let numbers: Vec<u64> = fields
        .iter()
        .flat_map(|f| f.split('.'))
        .map(|n| n.parse::<u64>().unwrap_or_else(|_| panic!("{text:?}: {n:?} is not a number")))
        .collect();
    let octets: Vec<String> = numbers[..4].iter().map(u64::to_string).collect();
    let mut rendered = format!("{}:{}:{}", octets.join("."), numbers[4], numbers[5]);
    if let Some(role) = numbers.get(6) {
        rendered.push_str(&format!(":{role}"));
    }
    assert_eq!(rendered, text, "PeerId text is not canonical");
    if peer.is_any() {
        return;
    }
    let mut state = RaftState::new();
    state.meta = Meta { term: 2, voted_for: Some(peer) };
    let mut bytes = Vec::new();
    encode_state(&state, "memory", 0, &[], &mut bytes).expect("a valid vote encodes");
    let image = decode(&bytes[..]).expect("a valid vote decodes");
    assert_eq!(image.state, state, "the vote changed on the way");
}

/// `image_hostile`: a state and one violation drawn from the bytes make a structure-aware
/// hostile image ([`image_hostile_case`]) that `verify`, `decode`, `inspect` and an import
/// into the memory family each reject with exactly the violation's class and offset, the
/// import leaving its destination empty.
pub fn image_hostile(data: &[u8]) {
    let Some(image) = image_hostile_case(data) else { return };
    image.judge(&verify(&image.bytes[..])).unwrap_or_else(|e| panic!("verify: {e}"));
    image.judge(&decode(&image.bytes[..])).unwrap_or_else(|e| panic!("decode: {e}"));
    image.judge(&inspect(&image.bytes[..])).unwrap_or_else(|e| panic!("inspect: {e}"));
    let mut dest = MemoryStorage::new();
    image.judge(&import(&image.bytes[..], &mut dest)).unwrap_or_else(|e| panic!("import: {e}"));
    let state = RaftState::capture(&dest).expect("the memory family reads back");
    assert_eq!(state, RaftState::new(), "a rejected import left state behind");
}

/// The hostile image `image_hostile` checks for `data`: the violation is
/// `Violation::ALL[u16 of bytes 0..2 (little-endian) mod its length]`, the generator's seed
/// the u64 of bytes 2..10, and the state [`arbitrary_state`] of the rest (a fresh state when
/// the rest runs out). `None` when the violation does not apply to that state.
pub fn image_hostile_case(data: &[u8]) -> Option<HostileImage> {
    let mut head = [0u8; 10];
    let n = data.len().min(head.len());
    head[..n].copy_from_slice(&data[..n]);
    let pick = u16::from_le_bytes([head[0], head[1]]) as usize;
    let violation = Violation::ALL[pick % Violation::ALL.len()];
    let seed = u64::from_le_bytes([
        head[2], head[3], head[4], head[5], head[6], head[7], head[8], head[9],
    ]);
    let state = arbitrary_state(&mut Unstructured::new(&data[n..])).unwrap_or_default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    generate_with(&state, "memory", 0, violation, &mut rng).expect("a drawn state encodes")
}

/// The `image_hostile` input that draws `violation` with generator seed `seed` and the state
/// of `state_bytes` (the inverse of [`image_hostile_case`]'s reading).
pub fn image_hostile_input(violation: Violation, seed: u64, state_bytes: &[u8]) -> Vec<u8> {
    let pick = Violation::ALL.iter().position(|v| *v == violation).unwrap_or(0) as u16;
    let mut out = pick.to_le_bytes().to_vec();
    out.extend_from_slice(&seed.to_le_bytes());
    out.extend_from_slice(state_bytes);
    out
}

fn reencode(image: &DecodedImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_state(
        &image.state,
        &image.header.source_family,
        image.header.source_family_version,
        &image.extensions,
        &mut bytes,
    )
    .expect("an accepted image re-encodes");
    bytes
}

const PEER_NAMES: &[&str] = &[
    "127.0.0.1:8000:0",
    "127.0.0.1:8001:0",
    "10.0.0.3:9000:1:1",
    "192.168.1.1:65535:2147483647:0",
    "1.2.3.4:5:6",
];
const SEGMENTS: &[&str] = &["a", "b", "data", "meta", "__raft_snapshot_meta", "x-y", "a.b", "é"];

fn peers(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<PeerId>> {
    let n = u.int_in_range(0..=3)?;
    (0..n).map(|_| Ok(PeerId::new(*u.choose(PEER_NAMES)?))).collect()
}

/// Draws a state that obeys the contract's rules (indexes from 1 to `INDEX_MAX`, terms up to
/// `TERM_MAX`, contiguous entries, braft PeerIds, valid and conflict-free snapshot paths),
/// with payloads and files sized around
/// the chunk boundaries.
pub fn arbitrary_state(u: &mut Unstructured<'_>) -> arbitrary::Result<RaftState> {
    let first = match u.int_in_range(0..=3)? {
        0 => 1,
        1 => u.int_in_range(1..=1000)?,
        2 => INDEX_MAX - u.int_in_range(0..=40)?,
        _ => u.int_in_range(1..=INDEX_MAX)?,
    };
    let room = INDEX_MAX - first + 1;
    let n_entries = u.int_in_range(0..=24u64)?.min(room);
    let mut entries = Vec::new();
    for i in 0..n_entries {
        let term = u.int_in_range(0..=TERM_MAX)?;
        let payload = match u.int_in_range(0..=2)? {
            0 => Payload::NoOp,
            1 => {
                let len = u.int_in_range(0..=64)?;
                Payload::Data(Bytes::copy_from_slice(u.bytes(len)?))
            }
            _ => Payload::Configuration { peers: peers(u)?, old_peers: peers(u)? },
        };
        entries.push(Entry { index: first + i, term, payload });
    }
    let meta = Meta {
        term: u.int_in_range(0..=TERM_MAX)?,
        voted_for: if bool::arbitrary(u)? {
            Some(PeerId::new(*u.choose(PEER_NAMES)?))
        } else {
            None
        },
    };
    let snapshot = if bool::arbitrary(u)? {
        let meta = SnapshotMeta {
            last_included_index: u.int_in_range(0..=INDEX_MAX)?,
            last_included_term: u.int_in_range(0..=TERM_MAX)?,
            peers: peers(u)?,
            old_peers: peers(u)?,
        };
        let mut files: BTreeMap<SnapshotPath, SnapshotFile> = BTreeMap::new();
        for _ in 0..u.int_in_range(0..=5)? {
            let n_segments = u.int_in_range(1..=3)?;
            let mut segments = Vec::new();
            for _ in 0..n_segments {
                segments.push(*u.choose(SEGMENTS)?);
            }
            let Ok(path) = SnapshotPath::new(segments.join("/")) else { continue };
            if check_new_snapshot_file(&files, &path).is_err() {
                continue;
            }
            let len = match u.int_in_range(0..=4)? {
                0 => 0,
                1 => u.int_in_range(1..=100)?,
                2 => CHUNK_LEN - 1 + u.int_in_range(0..=2)?,
                3 => 2 * CHUNK_LEN + u.int_in_range(0..=1)?,
                _ => u.int_in_range(1..=3 * CHUNK_LEN)?,
            };
            let seed = u8::arbitrary(u)?;
            let data: Vec<u8> =
                (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let user_meta = match u.int_in_range(0..=2)? {
                0 => None,
                1 => Some(Bytes::new()),
                _ => {
                    let len = u.int_in_range(1..=16)?;
                    Some(Bytes::copy_from_slice(u.bytes(len)?))
                }
            };
            let source = Option::<FileSource>::arbitrary(u)?;
            let checksum = match u.int_in_range(0..=2)? {
                0 => None,
                1 => Some(String::new()),
                _ => {
                    let len = u.int_in_range(1..=16)?;
                    Some(String::from_utf8_lossy(u.bytes(len)?).into_owned())
                }
            };
            let file_meta = FileMeta { user_meta, source, checksum };
            files.insert(path, SnapshotFile { data: Bytes::from(data), file_meta });
        }
        Some(Snapshot { meta, files })
    } else {
        None
    };
    Ok(RaftState { first, entries, meta, snapshot })
}

fn arbitrary_extensions(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Extension>> {
    let mut out: Vec<Extension> = Vec::new();
    for version in 0..u.int_in_range(0..=2)? {
        let name = (*u.choose(&["local.layout", "redb.tables", "zz"])?).to_string();
        let len = u.int_in_range(0..=8)?;
        let data = Bytes::copy_from_slice(u.bytes(len)?);
        out.push(Extension { name, version, ignorable: true, data });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
    out.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    Ok(out)
}

/// A fixed, small state with every kind of part, for examples and snapshots: a no-op, a
/// data and a configuration entry, a vote, and a snapshot with two files (one with file
/// metadata, one empty).
pub fn example_state() -> RaftState {
    let peer = |s: &str| PeerId::new(s);
    let path = |s: &str| SnapshotPath::new(s).unwrap_or_else(|_| unreachable_path());
    let mut files = BTreeMap::new();
    files.insert(
        path("data"),
        SnapshotFile {
            data: Bytes::from_static(b"hello"),
            file_meta: FileMeta {
                user_meta: Some(Bytes::from_static(b"\x08\x01")),
                source: Some(FileSource::Local),
                checksum: Some("5d41402a".into()),
            },
        },
    );
    let empty = SnapshotFile { data: Bytes::new(), file_meta: FileMeta::default() };
    files.insert(path("sub/empty"), empty);
    RaftState {
        first: 5,
        entries: vec![
            Entry::no_op(5, 2),
            Entry::data(6, 2, Bytes::from_static(b"abc")),
            Entry {
                index: 7,
                term: 3,
                payload: Payload::Configuration {
                    peers: vec![peer("10.0.0.1:8000:0:0"), peer("10.0.0.2:8000:0:0")],
                    old_peers: vec![peer("10.0.0.1:8000:0:0")],
                },
            },
        ],
        meta: Meta { term: 3, voted_for: Some(peer("10.0.0.1:8000:0:0")) },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                last_included_index: 4,
                last_included_term: 2,
                peers: vec![peer("10.0.0.1:8000:0:0")],
                old_peers: vec![],
            },
            files,
        }),
    }
}

fn unreachable_path() -> SnapshotPath {
    // The literal paths above are valid; this is never reached.
    SnapshotPath::new("x").expect("`x` is a valid path")
}

/// The smallest image: the state of a fresh instance, exported from `memory`.
pub fn empty_image() -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_state(&RaftState::new(), "memory", 0, &[], &mut bytes).expect("the empty state encodes");
    bytes
}
