//! Violations of the image's content: entries, files and chunks, snapshot paths, the meta and
//! vote, the snapshot meta. File metadata and peer ids are isolated in [`edit_file_meta`] and
//! [`INVALID_PEERS`], the two places a change of those encodings touches.

use rand::{Rng, RngExt};

use super::super::format::{
    BodyWriter, RecordKind, CHUNK_LEN, ENTRY_DATA_LEN_MAX, FILE_META_LEN_MAX, INDEX_MAX,
    PATH_LEN_MAX, PEERS_MAX, PEER_LEN_MAX, RECORD_BODY_LEN_MAX, TERM_MAX,
};
use super::super::record::{decode_body, Cut, Decoded};
use super::apply::{lie_about, over, over_u32, pick};
use super::catalogue::Violation;
use super::prepare::random_bytes;
use super::records::{
    at, chunk_body, file_body, fix_end, get_u32, insert, put_u32, put_u64, remove, set_cut,
    with_path, Applied, FileGroup, Layout, RawRecord,
};
use crate::contract::{snapshot_path_problem, Payload, PeerId};
use Violation as V;

/// Peer texts that are not braft PeerIds (nor the "any" peer): every one must be rejected as
/// `malformed` wherever a peer id is expected.
pub const INVALID_PEERS: &[&str] = &[
    "",
    "host:8000:0",
    "10.0.0.1:8000",
    "10.0.0.1",
    "10.0.0.1:70000:0",
    "10.0.0.1:8000:2147483648",
    "10.0.0.1:8000:0:2",
    "10.0.0.256:8000:0",
    "010.0.0.1:8000:0",
    "10.0.0.1:+80:0",
    " 10.0.0.1:8000:0",
    "[::1]:8000:0",
    "10.0.0.1:8000:0:0:0",
];

/// braft's "any" peer, which means no vote and is never a vote in an image.
const ANY_PEERS: &[&str] = &["0.0.0.0:0:0:0", "0.0.0.0:0:0", "0.0.0.0:0:0:1"];

/// ENTRY records.
pub(super) fn entries<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut Vec<RawRecord>,
    layout: &Layout,
    cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    let n_entries = layout.n_entries();
    let entry = |k: usize| layout.entries.start + k;
    match violation {
        V::EntryGap => {
            let k = entry(rng.random_range(0..n_entries - 1));
            remove(records, k);
            at(k)
        }
        V::EntriesSwapped => {
            let k = entry(rng.random_range(0..n_entries - 1));
            records.swap(k, k + 1);
            at(k)
        }
        V::EntryRepeated => {
            let k = entry(rng.random_range(0..n_entries));
            cut.last += 1;
            set_cut(records, cut);
            let copy = records[k].clone();
            insert(records, k + 1, copy);
            at(k + 1)
        }
        V::EntryIndexBelow | V::EntryIndexAbove => {
            let i = rng.random_range(0..n_entries);
            let expected = cut.first + i as u64;
            let index = match (violation == V::EntryIndexBelow, rng.random_range(0..3)) {
                (true, 0) => 0,
                (true, 1) => expected - 1,
                (true, _) => rng.random_range(0..expected),
                (false, 0) => expected + 1,
                (false, 1) => u64::MAX,
                (false, _) => rng.random_range(expected + 1..=u64::MAX),
            };
            put_u64(&mut records[entry(i)].body, 0, index);
            at(entry(i))
        }
        V::EntryKindUnknown => {
            let k = entry(rng.random_range(0..n_entries));
            records[k].body[16] = pick(rng, &[0, 4, 5, 0x80, u8::MAX]);
            at(k)
        }
        V::EntryTermOverLimit => {
            let k = entry(rng.random_range(0..n_entries));
            put_u64(&mut records[k].body, 8, over(rng, TERM_MAX));
            at(k)
        }
        V::EntryDataOverLimit | V::EntryDataLengthLies => {
            let data: Vec<usize> =
                layout.entries.clone().filter(|&k| records[k].body[16] == 2).collect();
            let k = pick(rng, &data);
            let len = get_u32(&records[k].body, 17) as usize;
            let lie = if violation == V::EntryDataOverLimit {
                over_u32(rng, ENTRY_DATA_LEN_MAX as u32)
            } else {
                lie_about(rng, len, ENTRY_DATA_LEN_MAX) as u32
            };
            put_u32(&mut records[k].body, 17, lie);
            at(k)
        }
        V::EntryPeerNotAPeerId | V::EntryPeersOverLimit | V::EntryPeersCountLies => {
            let configs: Vec<usize> =
                layout.entries.clone().filter(|&k| records[k].body[16] == 3).collect();
            let k = pick(rng, &configs);
            let body = &mut records[k].body;
            match violation {
                V::EntryPeerNotAPeerId => {
                    let Ok(Decoded::Entry(e)) = decode_body(RecordKind::Entry, body, false) else {
                        return None;
                    };
                    let Payload::Configuration { peers, old_peers } = e.payload else {
                        return None;
                    };
                    let mut w = BodyWriter::default();
                    w.buf.extend_from_slice(&body[..17]);
                    let old: bool = rng.random();
                    write_peers_with_bad(&mut w, &peers, !old, rng);
                    write_peers_with_bad(&mut w, &old_peers, old, rng);
                    *body = w.buf;
                }
                V::EntryPeersOverLimit => put_u32(body, 17, over_u32(rng, PEERS_MAX as u32)),
                _ => {
                    let fit = (body.len() - 21) / 3;
                    if fit >= PEERS_MAX {
                        return None;
                    }
                    put_u32(body, 17, rng.random_range(fit + 1..=PEERS_MAX) as u32);
                }
            }
            at(k)
        }
        _ => None,
    }
}

/// FILE and CHUNK records.
pub(super) fn files<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut [RawRecord],
    layout: &Layout,
    cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    match violation {
        V::ChunkOffsetWrong | V::ChunkLonger | V::ChunkShorter | V::ChunkLengthLies => {
            let chunks: Vec<usize> = layout.files.iter().flat_map(FileGroup::chunks).collect();
            let k = pick(rng, &chunks);
            let body = &mut records[k].body;
            let offset = u64::from_le_bytes(body[0..8].try_into().ok()?);
            match violation {
                V::ChunkOffsetWrong => {
                    let wrong = pick(rng, &[offset + 1, offset.wrapping_sub(1), u64::MAX, 1]);
                    put_u64(body, 0, if wrong == offset { offset + 2 } else { wrong });
                }
                V::ChunkLonger => {
                    let len = get_u32(body, 8) as usize + rng.random_range(1..=8);
                    let data = random_bytes(rng, len);
                    *body = chunk_body(offset, &data);
                }
                V::ChunkShorter => {
                    let len = get_u32(body, 8) as usize;
                    let data = body[12..12 + rng.random_range(0..len)].to_vec();
                    *body = chunk_body(offset, &data);
                }
                _ => {
                    let len = get_u32(body, 8) as usize;
                    put_u32(body, 8, lie_about(rng, len, RECORD_BODY_LEN_MAX as usize) as u32);
                }
            }
            at(k)
        }
        V::FileLonger | V::FileShorter => {
            let rest = |f: &FileGroup| f.len % CHUNK_LEN as u64;
            let fit: Vec<&FileGroup> = layout
                .files
                .iter()
                .filter(|f| if violation == V::FileLonger { rest(f) >= 1 } else { rest(f) >= 2 })
                .collect();
            let file = *fit.get(rng.random_range(0..fit.len().max(1)))?;
            let (len, bytes) = if violation == V::FileLonger {
                (file.len + 1, cut.snapshot_bytes + 1)
            } else {
                (file.len - 1, cut.snapshot_bytes - 1)
            };
            let path_len = file.path.len();
            put_u64(&mut records[file.at].body, 2 + path_len, len);
            cut.snapshot_bytes = bytes;
            set_cut(records, cut);
            at(file.end - 1)
        }
        V::FileMetaOverLimit | V::FileMetaLengthLies | V::FileMetaTagInvalid => {
            let fit: Vec<&FileGroup> = layout
                .files
                .iter()
                .filter(|f| violation != V::FileMetaLengthLies || f.has_meta)
                .collect();
            let file = *fit.get(rng.random_range(0..fit.len().max(1)))?;
            edit_file_meta(violation, &mut records[file.at].body, rng)?;
            at(file.at)
        }
        _ => None,
    }
}

/// Snapshot paths.
pub(super) fn paths<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut Vec<RawRecord>,
    layout: &Layout,
    cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    match violation {
        V::PathDotDot
        | V::PathInnerDotDot
        | V::PathDot
        | V::PathAbsolute
        | V::PathEmpty
        | V::PathEmptySegment
        | V::PathTrailingSlash
        | V::PathNul
        | V::PathBackslash
        | V::PathOverLong
        | V::PathSegmentOverLong
        | V::PathNotUtf8 => {
            let file = &layout.files[rng.random_range(0..layout.files.len())];
            if file.path.len() > PATH_LEN_MAX - 300 {
                return None;
            }
            let path = bad_path(violation, &file.path, rng)?;
            records[file.at].body = with_path(&records[file.at].body, &path);
            at(file.at)
        }
        V::PathLengthOverLimit | V::PathLengthPastBody => {
            let file = &layout.files[rng.random_range(0..layout.files.len())];
            let body = &mut records[file.at].body;
            let len = if violation == V::PathLengthOverLimit {
                rng.random_range(PATH_LEN_MAX + 1..=u16::MAX as usize)
            } else {
                let room = body.len() - 2;
                if room >= PATH_LEN_MAX {
                    return None;
                }
                rng.random_range(room + 1..=PATH_LEN_MAX)
            };
            body[0..2].copy_from_slice(&(len as u16).to_le_bytes());
            at(file.at)
        }
        V::PathDuplicate => {
            let file = &layout.files[rng.random_range(0..layout.files.len())];
            let group: Vec<RawRecord> = records[file.at..file.end].to_vec();
            cut.n_snapshot_files += 1;
            cut.snapshot_bytes += file.len;
            set_cut(records, cut);
            for (i, r) in group.into_iter().enumerate() {
                records.insert(file.end + i, r);
            }
            fix_end(records);
            at(file.end)
        }
        V::PathFileThenChild => {
            let fit: Vec<&FileGroup> =
                layout.files.iter().filter(|f| f.path.len() <= PATH_LEN_MAX - 8).collect();
            let file = *fit.get(rng.random_range(0..fit.len().max(1)))?;
            let child = format!("{}/{}", file.path, pick(rng, &["x", "sub", "a", "~"]));
            cut.n_snapshot_files += 1;
            set_cut(records, cut);
            insert(
                records,
                file.end,
                RawRecord::new(RecordKind::File, file_body(child.as_bytes(), 0)),
            );
            at(file.end)
        }
        V::PathDirectoryAsFile => {
            let nested: Vec<&FileGroup> =
                layout.files.iter().filter(|f| f.path.contains('/')).collect();
            let file = *nested.get(rng.random_range(0..nested.len().max(1)))?;
            let slashes: Vec<usize> = file.path.match_indices('/').map(|(i, _)| i).collect();
            let dir = &file.path[..pick(rng, &slashes)];
            let prefix = format!("{dir}/");
            let first = layout.files.iter().find(|f| f.path.starts_with(&prefix))?;
            cut.n_snapshot_files += 1;
            set_cut(records, cut);
            insert(
                records,
                first.at,
                RawRecord::new(RecordKind::File, file_body(dir.as_bytes(), 0)),
            );
            at(first.at + 1)
        }
        V::PathsSwapped => {
            let i = rng.random_range(0..layout.files.len() - 1);
            let (a, b) = (&layout.files[i], &layout.files[i + 1]);
            let first: Vec<RawRecord> = records[a.at..a.end].to_vec();
            let second: Vec<RawRecord> = records[b.at..b.end].to_vec();
            let second_len = second.len();
            records.splice(a.at..b.end, second.into_iter().chain(first));
            at(a.at + second_len)
        }
        V::PathsInByteOrder => {
            let last = layout.files.last()?;
            let segment = last.path.rsplit('/').next().unwrap_or("");
            if last.path.len() > PATH_LEN_MAX - 8 || segment.len() > 250 {
                return None;
            }
            let dash = format!("{}0-y", last.path);
            let slash = format!("{}0/y", last.path);
            cut.n_snapshot_files += 2;
            set_cut(records, cut);
            insert(
                records,
                last.end,
                RawRecord::new(RecordKind::File, file_body(dash.as_bytes(), 0)),
            );
            insert(
                records,
                last.end + 1,
                RawRecord::new(RecordKind::File, file_body(slash.as_bytes(), 0)),
            );
            at(last.end + 1)
        }
        _ => None,
    }
}

/// META: term and vote.
pub(super) fn meta<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut [RawRecord],
    layout: &Layout,
    _cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    match violation {
        V::MetaTermOverLimit => {
            put_u64(&mut records[layout.meta].body, 0, over(rng, TERM_MAX));
            at(layout.meta)
        }
        V::VoteNotAPeerId | V::VoteAnyPeer | V::VoteOverLimit | V::VoteTagInvalid => {
            let body = &mut records[layout.meta].body;
            let term = u64::from_le_bytes(body[0..8].try_into().ok()?);
            let mut w = BodyWriter::default();
            w.u64(term);
            match violation {
                V::VoteTagInvalid => {
                    w.u8(rng.random_range(2..=u8::MAX));
                    w.buf.extend_from_slice(&body[9..]);
                }
                V::VoteOverLimit => {
                    w.u8(1);
                    let len = rng.random_range(PEER_LEN_MAX + 1..=1000);
                    w.str16(&"1".repeat(len));
                }
                _ => {
                    let peers = if violation == V::VoteAnyPeer { ANY_PEERS } else { INVALID_PEERS };
                    w.u8(1);
                    w.str16(pick(rng, peers));
                }
            }
            *body = w.buf;
            at(layout.meta)
        }
        _ => None,
    }
}

/// SNAPSHOT: the snapshot meta.
pub(super) fn snapshot<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut [RawRecord],
    layout: &Layout,
    _cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    match violation {
        V::SnapshotIndexOverLimit | V::SnapshotTermOverLimit => {
            let k = layout.snapshot?;
            let field = if violation == V::SnapshotIndexOverLimit { 0 } else { 8 };
            put_u64(&mut records[k].body, field, over(rng, INDEX_MAX));
            at(k)
        }
        V::SnapshotPeerNotAPeerId => {
            let k = layout.snapshot?;
            let Ok(Decoded::Snapshot(meta)) =
                decode_body(RecordKind::Snapshot, &records[k].body, false)
            else {
                return None;
            };
            let mut w = BodyWriter::default();
            w.buf.extend_from_slice(&records[k].body[..16]);
            let old: bool = rng.random();
            write_peers_with_bad(&mut w, &meta.peers, !old, rng);
            write_peers_with_bad(&mut w, &meta.old_peers, old, rng);
            records[k].body = w.buf;
            at(k)
        }
        V::SnapshotPeersOverLimit => {
            let k = layout.snapshot?;
            put_u32(&mut records[k].body, 16, over_u32(rng, PEERS_MAX as u32));
            at(k)
        }
        _ => None,
    }
}

/// The file metadata part of a FILE body (everything after the path and the length: the
/// `has_user_meta`, `has_source` and `has_checksum` tags, each followed by its value when
/// set), as a violation rewrites it. The one place that knows the file metadata's encoding.
/// Over the limit: `user_meta`'s length; a lying length: `checksum`'s, the body's last field
/// (a lie runs past the body or leaves bytes behind, both malformed); an invalid tag:
/// `has_user_meta`.
fn edit_file_meta<R: Rng + ?Sized>(
    violation: Violation,
    body: &mut Vec<u8>,
    rng: &mut R,
) -> Option<()> {
    let path_len = u16::from_le_bytes([body[0], body[1]]) as usize;
    let tag_at = 2 + path_len + 8;
    match violation {
        Violation::FileMetaOverLimit => {
            body.truncate(tag_at);
            body.push(1);
            let len = over_u32(rng, FILE_META_LEN_MAX as u32);
            body.extend_from_slice(&len.to_le_bytes());
        }
        Violation::FileMetaLengthLies => {
            let mut at = tag_at;
            if *body.get(at)? == 1 {
                at += 1 + 4 + get_u32(body, at + 1) as usize;
            } else {
                at += 1;
            }
            at += if *body.get(at)? == 1 { 2 } else { 1 };
            if *body.get(at)? != 1 {
                return None;
            }
            let len = get_u32(body, at + 1) as usize;
            let lie = lie_about(rng, len, FILE_META_LEN_MAX);
            put_u32(body, at + 1, lie as u32);
        }
        Violation::FileMetaTagInvalid => body[tag_at] = rng.random_range(2..=u8::MAX),
        _ => return None,
    }
    Some(())
}

/// An invalid path of the kind `violation` names, derived from `path` where it can be.
fn bad_path<R: Rng + ?Sized>(violation: Violation, path: &str, rng: &mut R) -> Option<Vec<u8>> {
    let p = path.as_bytes();
    let cat = |parts: &[&[u8]]| parts.concat();
    let out = match violation {
        Violation::PathDotDot => match rng.random_range(0..4) {
            0 => b"..".to_vec(),
            1 => cat(&[b"../", p]),
            2 => cat(&[p, b"/.."]),
            _ => b"../../../../etc/passwd".to_vec(),
        },
        Violation::PathInnerDotDot => match rng.random_range(0..2) {
            0 => b"a/../../etc/passwd".to_vec(),
            _ => cat(&[p, b"/../", p]),
        },
        Violation::PathDot => match rng.random_range(0..4) {
            0 => b".".to_vec(),
            1 => cat(&[b"./", p]),
            2 => cat(&[p, b"/."]),
            _ => cat(&[p, b"/./x"]),
        },
        Violation::PathAbsolute => match rng.random_range(0..3) {
            0 => b"/".to_vec(),
            1 => cat(&[b"/", p]),
            _ => b"/etc/passwd".to_vec(),
        },
        Violation::PathEmpty => Vec::new(),
        Violation::PathEmptySegment => match rng.random_range(0..2) {
            0 => cat(&[p, b"//x"]),
            _ => b"a//b".to_vec(),
        },
        Violation::PathTrailingSlash => cat(&[p, b"/"]),
        Violation::PathNul => {
            let k = rng.random_range(0..=p.len());
            cat(&[&p[..k], b"\0", &p[k..]])
        }
        Violation::PathBackslash => match rng.random_range(0..3) {
            0 => cat(&[p, b"\\x"]),
            1 => b"..\\..\\x".to_vec(),
            _ => cat(&[b"\\", p]),
        },
        Violation::PathOverLong => {
            let segment = vec![b's'; rng.random_range(1..=255)];
            let mut out = p.to_vec();
            while out.len() <= PATH_LEN_MAX {
                out.push(b'/');
                out.extend_from_slice(&segment);
            }
            out
        }
        Violation::PathSegmentOverLong => {
            let segment = vec![b'x'; rng.random_range(256..=PATH_LEN_MAX - p.len() - 1)];
            cat(&[p, b"/", &segment])
        }
        Violation::PathNotUtf8 => {
            let bad: &[u8] = pick(rng, &[&b"\xff"[..], b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf"]);
            cat(&[p, bad])
        }
        _ => return None,
    };
    let invalid = std::str::from_utf8(&out).map_or(true, |t| snapshot_path_problem(t).is_some());
    invalid.then_some(out)
}

/// Writes a peer list, with one invalid peer in it when `bad`.
fn write_peers_with_bad<R: Rng + ?Sized>(
    w: &mut BodyWriter,
    peers: &[PeerId],
    bad: bool,
    rng: &mut R,
) {
    let mut texts: Vec<&str> = peers.iter().map(PeerId::as_str).collect();
    if bad {
        let k = rng.random_range(0..=texts.len());
        texts.insert(k, pick(rng, INVALID_PEERS));
    }
    w.u32(texts.len() as u32);
    for t in texts {
        w.str16(t);
    }
}
