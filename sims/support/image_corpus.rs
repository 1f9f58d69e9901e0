//! A deterministic generator of hand-built images: the hostile corpus in
//! `corpus/image-hostile/` (each file with the error class and offset an importer must
//! report) and a few forward-compatible images an importer must accept.
//!
//! Images are built record by record from the specification (not through the crate's
//! writer), so the tests also check the writer and reader against the spec's layout.
//! Run `QK_UPDATE_CORPUS=1 cargo test --test image` to rewrite the checked-in files.

#![allow(dead_code)]

use quorumkit_storage::image::format::{
    BodyWriter, RecordKind, FLAG_EXTENDED, FLAG_IGNORABLE, MAGIC, RECORD_BODY_LEN_MAX,
};
use quorumkit_storage::image::ErrorClass;
use sha2::{Digest, Sha256};

/// One record: kind, flags, body.
#[derive(Clone, Debug)]
pub struct Raw {
    pub kind: u8,
    pub flags: u8,
    pub body: Vec<u8>,
}

fn raw(kind: RecordKind, body: BodyWriter) -> Raw {
    Raw { kind: kind as u8, flags: 0, body: body.buf }
}

pub fn header(major: u16, minor: u16, family: &str) -> Raw {
    let mut w = BodyWriter::default();
    w.u16(major);
    w.u16(minor);
    w.u8(1);
    w.u8(1);
    w.str16(family);
    w.u32(7);
    raw(RecordKind::Header, w)
}

pub fn cut(first: u64, last: u64, has_snapshot: bool, n_files: u64, bytes: u64) -> Raw {
    let mut w = BodyWriter::default();
    w.u64(first);
    w.u64(last);
    w.u8(has_snapshot as u8);
    w.u64(n_files);
    w.u64(bytes);
    raw(RecordKind::Cut, w)
}

pub fn entry_data(index: u64, term: u64, data: &[u8]) -> Raw {
    let mut w = BodyWriter::default();
    w.u64(index);
    w.u64(term);
    w.u8(2);
    w.bytes32(data);
    raw(RecordKind::Entry, w)
}

pub fn entry_no_op(index: u64, term: u64) -> Raw {
    let mut w = BodyWriter::default();
    w.u64(index);
    w.u64(term);
    w.u8(1);
    raw(RecordKind::Entry, w)
}

pub fn meta(term: u64, vote: Option<&str>) -> Raw {
    let mut w = BodyWriter::default();
    w.u64(term);
    match vote {
        None => w.u8(0),
        Some(v) => {
            w.u8(1);
            w.str16(v);
        }
    }
    raw(RecordKind::Meta, w)
}

pub fn snapshot(index: u64, term: u64) -> Raw {
    snapshot_with_peer(index, term, "10.0.0.1:8000:0:0")
}

/// A SNAPSHOT whose configuration is the one `peer` (written as given).
pub fn snapshot_with_peer(index: u64, term: u64, peer: &str) -> Raw {
    let mut w = BodyWriter::default();
    w.u64(index);
    w.u64(term);
    w.u32(1);
    w.str16(peer);
    w.u32(0);
    raw(RecordKind::Snapshot, w)
}

/// A FILE whose metadata has only `user_meta` (or nothing) set.
pub fn file(path: &[u8], len: u64, user_meta: Option<&[u8]>) -> Raw {
    file_full(path, len, user_meta, None, None)
}

/// A FILE (format 2): path, len, then `user_meta` (bytes32), `source` (u8) and `checksum`
/// (a u32 length and its bytes), each behind its own presence tag. The source and the
/// checksum bytes are written as given, valid or not.
pub fn file_full(
    path: &[u8],
    len: u64,
    user_meta: Option<&[u8]>,
    source: Option<u8>,
    checksum: Option<&[u8]>,
) -> Raw {
    let mut w = BodyWriter::default();
    w.u16(path.len() as u16);
    w.buf.extend_from_slice(path);
    w.u64(len);
    match user_meta {
        None => w.u8(0),
        Some(m) => {
            w.u8(1);
            w.bytes32(m);
        }
    }
    match source {
        None => w.u8(0),
        Some(s) => {
            w.u8(1);
            w.u8(s);
        }
    }
    match checksum {
        None => w.u8(0),
        Some(c) => {
            w.u8(1);
            w.bytes32(c);
        }
    }
    raw(RecordKind::File, w)
}

pub fn chunk(offset: u64, data: &[u8]) -> Raw {
    let mut w = BodyWriter::default();
    w.u64(offset);
    w.bytes32(data);
    raw(RecordKind::Chunk, w)
}

pub fn extension(name: &str, version: u32, ignorable: bool, data: &[u8]) -> Raw {
    let mut w = BodyWriter::default();
    w.str16(name);
    w.u32(version);
    w.bytes32(data);
    let mut r = raw(RecordKind::Extension, w);
    r.flags = if ignorable { FLAG_IGNORABLE } else { 0 };
    r
}

pub fn end(n_records: u64) -> Raw {
    let mut w = BodyWriter::default();
    w.u64(n_records);
    raw(RecordKind::End, w)
}

/// Frames one record.
pub fn frame(r: &Raw) -> Vec<u8> {
    let mut out = vec![r.kind, r.flags];
    out.extend_from_slice(&(r.body.len() as u32).to_le_bytes());
    out.extend_from_slice(&r.body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Magic, the records, and the SHA-256 of it all.
pub fn seal(records: &[Raw]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for r in records {
        out.extend_from_slice(&frame(r));
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// `records` plus an END counting them.
pub fn with_end(mut records: Vec<Raw>) -> Vec<Raw> {
    let n = records.len() as u64;
    records.push(end(n));
    records
}

/// Byte offset of record `k`.
pub fn offset_of(records: &[Raw], k: usize) -> u64 {
    (MAGIC.len() + records[..k].iter().map(|r| 6 + r.body.len() + 4).sum::<usize>()) as u64
}

/// The valid base: entries 5..=6, a vote, a snapshot with files `a` (3 bytes, every file
/// meta field set) and `b/c` (empty, no file meta).
pub fn base() -> Vec<Raw> {
    with_end(vec![
        header(2, 0, "memory"),
        cut(5, 6, true, 2, 3),
        entry_no_op(5, 2),
        entry_data(6, 2, b"xyz"),
        meta(3, Some("10.0.0.1:8000:0:0")),
        snapshot(4, 2),
        file_full(b"a", 3, Some(b"\x08\x01"), Some(1), Some(b"900150983cd24fb0")),
        chunk(0, b"abc"),
        file(b"b/c", 0, None),
    ])
}

/// What an importer must do with a corpus image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Accept it (forward-compatible images).
    Accept,
    /// Reject it with this class at this byte offset.
    Reject(ErrorClass, u64),
}

/// One corpus image.
pub struct Case {
    pub name: String,
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

fn reject(name: &str, records: Vec<Raw>, at: usize, class: ErrorClass) -> Case {
    let offset = offset_of(&records, at);
    Case { name: name.to_string(), bytes: seal(&records), expect: Expect::Reject(class, offset) }
}

fn replace(records: &[Raw], at: usize, with: Raw) -> Vec<Raw> {
    let mut out = records.to_vec();
    out[at] = with;
    out
}

/// A small snapshot-only image whose one file has the given path.
fn with_path(path: &[u8]) -> Vec<Raw> {
    with_end(vec![
        header(2, 0, "memory"),
        cut(1, 0, true, 1, 0),
        meta(1, None),
        snapshot(0, 0),
        file(path, 0, None),
    ])
}

/// Two files with the given paths (both empty).
fn with_paths(first: &[u8], second: &[u8]) -> Vec<Raw> {
    with_end(vec![
        header(2, 0, "memory"),
        cut(1, 0, true, 2, 0),
        meta(1, None),
        snapshot(0, 0),
        file(first, 0, None),
        file(second, 0, None),
    ])
}

/// Every corpus case, in a fixed order.
pub fn cases() -> Vec<Case> {
    use ErrorClass::*;
    let b = base();
    let image = seal(&b);
    let mut cases = Vec::new();
    let mut push_bytes = |name: &str, bytes: Vec<u8>, expect: Expect| {
        cases.push(Case { name: name.to_string(), bytes, expect });
    };

    // The base itself, built from the spec by hand: accepted, and (in the fuzz corpus
    // replay) re-encoded by the crate's writer to exactly these bytes.
    push_bytes("ok-base", image.clone(), Expect::Accept);

    // Framing, magic, version.
    let mut bad = image.clone();
    bad[1] = b'X';
    push_bytes("bad-magic", bad, Expect::Reject(BadMagic, 0));
    push_bytes("empty-file", Vec::new(), Expect::Reject(Truncated, 0));
    push_bytes("magic-only", MAGIC.to_vec(), Expect::Reject(Truncated, 8));
    push_bytes("text-file", b"hello, not an image\n".to_vec(), Expect::Reject(BadMagic, 0));

    let mut v = Vec::new();
    // Format 1 carried a file's metadata as one opaque byte string: a 2.x reader must not
    // guess what it meant.
    v.push(reject(
        "unsupported-major-1",
        replace(&b, 0, header(1, 0, "memory")),
        0,
        UnsupportedVersion,
    ));
    v.push(reject(
        "unsupported-major-3",
        replace(&b, 0, header(3, 0, "memory")),
        0,
        UnsupportedVersion,
    ));
    v.push(reject(
        "unsupported-major-0",
        replace(&b, 0, header(0, 9, "memory")),
        0,
        UnsupportedVersion,
    ));
    let mut not_header = b.clone();
    not_header.remove(0);
    let n = not_header.len();
    not_header[n - 1] = end(n as u64 - 1);
    v.push(reject("first-record-not-header", not_header, 0, RecordOrder));
    let mut crc_algo = header(2, 0, "memory");
    crc_algo.body[4] = 2;
    v.push(reject("unknown-checksum-algorithm", replace(&b, 0, crc_algo), 0, UnsupportedFeature));
    v.push(reject("bad-family-id", replace(&b, 0, header(2, 0, "Memory")), 0, Malformed));

    // Checksums and the digest.
    let entry_at = offset_of(&b, 3) as usize;
    let mut flipped = image.clone();
    flipped[entry_at + 6 + 17 + 4] ^= 0x20; // a payload byte of entry 6
    push_bytes("crc-mismatch-entry", flipped, Expect::Reject(ChecksumMismatch, entry_at as u64));
    let mut flipped = image.clone();
    let crc_at = offset_of(&b, 2) as usize + 6 + b[2].body.len();
    flipped[crc_at] ^= 0x01;
    push_bytes(
        "crc-mismatch-crc-field",
        flipped,
        Expect::Reject(ChecksumMismatch, offset_of(&b, 2)),
    );
    let mut flipped = image.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x80;
    let digest_at = (image.len() - 32) as u64;
    push_bytes("digest-mismatch", flipped, Expect::Reject(DigestMismatch, digest_at));

    // Truncation and trailing bytes.
    let rec4 = offset_of(&b, 4) as usize;
    push_bytes(
        "truncated-at-record-boundary",
        image[..rec4].to_vec(),
        Expect::Reject(Truncated, rec4 as u64),
    );
    push_bytes(
        "truncated-mid-frame",
        image[..rec4 + 3].to_vec(),
        Expect::Reject(Truncated, rec4 as u64),
    );
    push_bytes(
        "truncated-mid-body",
        image[..rec4 + 10].to_vec(),
        Expect::Reject(Truncated, rec4 as u64),
    );
    let end_at = offset_of(&b, b.len() - 1) as usize;
    push_bytes(
        "truncated-before-end",
        image[..end_at].to_vec(),
        Expect::Reject(Truncated, end_at as u64),
    );
    push_bytes(
        "truncated-no-digest",
        image[..image.len() - 32].to_vec(),
        Expect::Reject(Truncated, digest_at),
    );
    push_bytes(
        "truncated-in-digest",
        image[..image.len() - 5].to_vec(),
        Expect::Reject(Truncated, digest_at),
    );
    let mut trailing = image.clone();
    trailing.push(0);
    push_bytes("trailing-byte", trailing, Expect::Reject(TrailingBytes, image.len() as u64));
    let mut twice = image.clone();
    twice.extend_from_slice(&image);
    push_bytes("two-images-concatenated", twice, Expect::Reject(TrailingBytes, image.len() as u64));

    // Index order and counts.
    v.push(reject("index-gap", replace(&b, 3, entry_data(7, 2, b"xyz")), 3, IndexGap));
    v.push(reject("index-disorder", replace(&b, 3, entry_data(4, 2, b"xyz")), 3, IndexDisorder));
    v.push(reject("index-duplicate", replace(&b, 3, entry_data(5, 2, b"xyz")), 3, IndexDisorder));
    v.push(reject("first-index-zero", replace(&b, 1, cut(0, 1, true, 2, 3)), 1, Malformed));
    v.push(reject("last-below-first", replace(&b, 1, cut(5, 2, true, 2, 3)), 1, Malformed));
    v.push(reject("last-index-max", replace(&b, 1, cut(5, u64::MAX, true, 2, 3)), 1, OverLimit));
    v.push(reject("entries-missing", replace(&b, 1, cut(5, 7, true, 2, 3)), 4, CountMismatch));
    v.push(reject("entries-extra", replace(&b, 1, cut(5, 5, true, 2, 3)), 3, CountMismatch));
    v.push(reject("files-missing", replace(&b, 1, cut(5, 6, true, 3, 3)), 9, CountMismatch));
    v.push(reject("files-extra", replace(&b, 1, cut(5, 6, true, 1, 3)), 8, CountMismatch));
    v.push(reject("snapshot-bytes-short", replace(&b, 1, cut(5, 6, true, 2, 4)), 9, CountMismatch));
    v.push(reject("snapshot-bytes-over", replace(&b, 1, cut(5, 6, true, 2, 2)), 6, CountMismatch));
    v.push(reject("end-count-wrong", replace(&b, 9, end(3)), 9, CountMismatch));
    v.push(reject("no-snapshot-but-files", replace(&b, 1, cut(5, 6, false, 2, 3)), 1, Malformed));
    v.push(reject(
        "files-over-limit",
        replace(&b, 1, cut(5, 6, true, (1 << 20) + 1, 3)),
        1,
        OverLimit,
    ));

    // Record order.
    let mut second_header = b.clone();
    second_header.insert(2, header(2, 0, "memory"));
    let n = second_header.len();
    second_header[n - 1] = end(n as u64 - 1);
    v.push(reject("second-header", second_header, 2, RecordOrder));
    let mut no_meta = b.clone();
    no_meta.remove(4);
    let n = no_meta.len();
    no_meta[n - 1] = end(n as u64 - 1);
    v.push(reject("meta-missing", no_meta, 4, RecordOrder));
    let mut no_snapshot = b.clone();
    no_snapshot.remove(5);
    let n = no_snapshot.len();
    no_snapshot[n - 1] = end(n as u64 - 1);
    v.push(reject("snapshot-record-missing", no_snapshot, 5, RecordOrder));
    let mut stray_chunk = b.clone();
    stray_chunk.insert(9, chunk(0, b"z"));
    let n = stray_chunk.len();
    stray_chunk[n - 1] = end(n as u64 - 1);
    v.push(reject("chunk-without-file", stray_chunk, 9, RecordOrder));
    v.push(reject(
        "chunk-split-non-canonical",
        {
            let mut r = b.clone();
            r[7] = chunk(0, b"ab");
            r.insert(8, chunk(2, b"c"));
            let n = r.len();
            r[n - 1] = end(n as u64 - 1);
            r
        },
        7,
        Malformed,
    ));
    v.push(reject("chunk-offset-wrong", replace(&b, 7, chunk(1, b"abc")), 7, Malformed));

    // Paths.
    for (name, path) in [
        ("path-absolute", &b"/etc/passwd"[..]),
        ("path-dotdot", b"../escape"),
        ("path-inner-dotdot", b"a/../../b"),
        ("path-dot-segment", b"./a"),
        ("path-trailing-dot", b"a/."),
        ("path-empty-segment", b"a//b"),
        ("path-trailing-slash", b"a/"),
        ("path-empty", b""),
        ("path-nul", b"a\0b"),
        ("path-backslash", b"a\\..\\b"),
        ("path-not-utf8", b"a\xff"),
    ] {
        v.push(reject(name, with_path(path), 4, UnsafePath));
    }
    v.push(reject("path-over-long", with_path(&vec![b'a'; 4097]), 4, UnsafePath));
    let long_segment = [vec![b'd'], vec![b'/'], vec![b's'; 256]].concat();
    v.push(reject("path-segment-over-long", with_path(&long_segment), 4, UnsafePath));
    v.push(reject("path-duplicate", with_paths(b"a", b"a"), 5, DuplicatePath));
    v.push(reject("path-disorder", with_paths(b"b", b"a"), 5, PathOrder));
    // Byte order would put `a-b` before `a/b`; the canonical order puts `/` lowest.
    v.push(reject("path-byte-order-not-canonical", with_paths(b"a-b", b"a/b"), 5, PathOrder));
    v.push(reject("path-file-and-directory", with_paths(b"a", b"a/b"), 5, PathConflict));

    // Limits and malformed fields.
    let mut huge = seal(&b[..2]);
    huge.truncate(huge.len() - 32);
    let huge_at = huge.len() as u64;
    let mut frame_only = vec![RecordKind::Entry as u8, 0];
    frame_only.extend_from_slice(&(RECORD_BODY_LEN_MAX + 1).to_le_bytes());
    let mut over_limit = huge.clone();
    over_limit.extend_from_slice(&frame_only);
    push_bytes("record-over-limit", over_limit, Expect::Reject(OverLimit, huge_at));
    let mut at_limit = huge.clone();
    at_limit.extend_from_slice(&[RecordKind::Entry as u8, 0]);
    at_limit.extend_from_slice(&RECORD_BODY_LEN_MAX.to_le_bytes());
    at_limit.extend_from_slice(&[0u8; 100]);
    push_bytes("record-at-limit-truncated", at_limit, Expect::Reject(Truncated, huge_at));

    let mut many_peers = BodyWriter::default();
    many_peers.u64(4);
    many_peers.u64(2);
    many_peers.u32(4097);
    v.push(reject(
        "peers-over-limit",
        replace(&b, 5, Raw { kind: RecordKind::Snapshot as u8, flags: 0, body: many_peers.buf }),
        5,
        OverLimit,
    ));
    let mut lying_count = BodyWriter::default();
    lying_count.u64(4);
    lying_count.u64(2);
    lying_count.u32(4000);
    lying_count.u32(0);
    v.push(reject(
        "peers-count-past-body",
        replace(&b, 5, Raw { kind: RecordKind::Snapshot as u8, flags: 0, body: lying_count.buf }),
        5,
        Malformed,
    ));
    let mut big_term = entry_no_op(5, 1 << 63);
    big_term.flags = 0;
    v.push(reject("term-over-limit", replace(&b, 2, big_term), 2, OverLimit));
    v.push(reject("meta-term-over-limit", replace(&b, 4, meta(u64::MAX, None)), 4, OverLimit));
    let mut snap_index = snapshot(1 << 63, 2);
    snap_index.flags = 0;
    v.push(reject("snapshot-index-over-limit", replace(&b, 5, snap_index), 5, OverLimit));
    v.push(reject(
        "first-index-over-limit",
        replace(&b, 1, cut(1 << 63, (1 << 63) - 1, true, 2, 3)),
        1,
        OverLimit,
    ));
    v.push(reject("peer-not-a-peer-id", replace(&b, 4, meta(3, Some("host:80:0"))), 4, Malformed));
    v.push(reject(
        "vote-for-the-any-peer",
        replace(&b, 4, meta(3, Some("0.0.0.0:0:0:0"))),
        4,
        Malformed,
    ));
    // braft reads every role of the empty address as no vote, the witness form too.
    v.push(reject(
        "vote-for-the-any-witness",
        replace(&b, 4, meta(3, Some("0.0.0.0:0:0:1"))),
        4,
        Malformed,
    ));
    let long_peer = "p".repeat(257);
    v.push(reject("peer-over-limit", replace(&b, 4, meta(3, Some(&long_peer))), 4, OverLimit));
    v.push(reject("peer-empty", replace(&b, 4, meta(3, Some(""))), 4, Malformed));
    // braft ≤ 1.1.2's three-field spelling names the same peer as the four-field one: it is
    // a second encoding of one value, so it is not canonical.
    v.push(reject(
        "peer-legacy-three-fields-vote",
        replace(&b, 4, meta(3, Some("10.0.0.1:8000:0"))),
        4,
        Malformed,
    ));
    v.push(reject(
        "peer-legacy-three-fields-snapshot",
        replace(&b, 5, snapshot_with_peer(4, 2, "10.0.0.1:8000:0")),
        5,
        Malformed,
    ));
    // The length field alone is over the limit; the reader stops before the bytes.
    let mut big_meta = file(b"a", 3, Some(b""));
    let n = big_meta.body.len();
    big_meta.body[n - 6..n - 2].copy_from_slice(&((1u32 << 20) + 1).to_le_bytes());
    v.push(reject("file-meta-over-limit", replace(&b, 6, big_meta), 6, OverLimit));
    let mut big_checksum = file_full(b"a", 3, None, None, Some(b""));
    let n = big_checksum.body.len();
    big_checksum.body[n - 4..].copy_from_slice(&((1u32 << 20) + 1).to_le_bytes());
    v.push(reject("file-checksum-over-limit", replace(&b, 6, big_checksum), 6, OverLimit));
    v.push(reject(
        "file-source-unknown",
        replace(&b, 6, file_full(b"a", 3, None, Some(2), None)),
        6,
        Malformed,
    ));
    v.push(reject(
        "file-checksum-not-utf8",
        replace(&b, 6, file_full(b"a", 3, None, None, Some(b"ab\xff"))),
        6,
        Malformed,
    ));
    let mut source_tag = file_full(b"a", 3, None, None, None);
    let n = source_tag.body.len();
    source_tag.body[n - 2] = 2;
    v.push(reject("file-source-tag-2", replace(&b, 6, source_tag), 6, Malformed));
    let mut past = entry_data(6, 2, b"xyz");
    past.body[17..21].copy_from_slice(&1000u32.to_le_bytes());
    v.push(reject("data-length-past-body", replace(&b, 3, past), 3, Malformed));
    let mut kind4 = entry_no_op(5, 2);
    kind4.body[16] = 4;
    v.push(reject("entry-kind-unknown", replace(&b, 2, kind4), 2, Malformed));
    let mut tag2 = meta(3, None);
    tag2.body[8] = 2;
    v.push(reject("presence-tag-2", replace(&b, 4, tag2), 4, Malformed));
    let mut extra = entry_no_op(5, 2);
    extra.body.push(0);
    v.push(reject("extra-bytes-in-record", replace(&b, 2, extra), 2, Malformed));
    let mut reserved = entry_no_op(5, 2);
    reserved.flags = 0x80;
    v.push(reject("reserved-flag-bits", replace(&b, 2, reserved), 2, Malformed));
    let mut ignorable_core = entry_no_op(5, 2);
    ignorable_core.flags = FLAG_IGNORABLE;
    v.push(reject("ignorable-flag-on-core-record", replace(&b, 2, ignorable_core), 2, Malformed));

    // Versioning and extensions.
    let mut unknown = b.clone();
    unknown.insert(3, Raw { kind: 0x42, flags: FLAG_IGNORABLE, body: vec![1, 2, 3] });
    let n = unknown.len();
    unknown[n - 1] = end(n as u64 - 1);
    v.push(reject("unknown-kind-in-2.0", unknown.clone(), 3, Malformed));
    unknown[0] = header(2, 3, "memory");
    let newer = unknown.clone();
    unknown[3].flags = 0;
    v.push(reject("newer-minor-unknown-not-ignorable", unknown, 3, UnsupportedFeature));
    cases.extend(v);
    cases.push(Case {
        name: "ok-newer-minor-unknown-ignorable".into(),
        bytes: seal(&newer),
        expect: Expect::Accept,
    });
    let mut extended = b.clone();
    extended[0] = header(2, 1, "memory");
    extended[4].flags = FLAG_EXTENDED;
    extended[4].body.extend_from_slice(b"future field");
    cases.push(Case {
        name: "ok-newer-minor-extended-record".into(),
        bytes: seal(&extended),
        expect: Expect::Accept,
    });
    extended[0] = header(2, 0, "memory");
    cases.push(reject("extended-flag-in-2.0", extended, 4, Malformed));
    let mut ext = b.clone();
    ext.insert(9, extension("local.layout", 1, true, b"opaque"));
    let n = ext.len();
    ext[n - 1] = end(n as u64 - 1);
    cases.push(Case {
        name: "ok-ignorable-extension".into(),
        bytes: seal(&ext),
        expect: Expect::Accept,
    });
    ext[9] = extension("local.layout", 1, false, b"opaque");
    cases.push(reject("extension-not-ignorable", ext.clone(), 9, UnsupportedFeature));
    ext[9] = extension("zz", 1, true, b"");
    ext.insert(10, extension("aa", 1, true, b""));
    let n = ext.len();
    ext[n - 1] = end(n as u64 - 1);
    cases.push(reject("extension-out-of-order", ext.clone(), 10, RecordOrder));
    ext.remove(10);
    ext.insert(6, extension("aa", 1, true, b""));
    // Where files are still due, a record that may follow them means files are missing.
    cases.push(reject("extension-inside-snapshot", ext, 6, CountMismatch));
    cases
}
