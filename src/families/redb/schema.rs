//! The `redb://` family's schema: table names, keys, value encodings and the format version.
//!
//! ```text
//! table                 key                      value (every value is sealed: see below)
//! ───────────────────── ──────────────────────── ─────────────────────────────────────────────
//! qk_meta               &str                     one record per key:
//!   "format"                                       u32 FORMAT_VERSION
//!   "log_range"                                    u64 first, u64 last   (empty: last = first-1)
//!   "raft_meta"                                    u64 term, vote        (vote = opt string)
//!   "snapshot_meta"                                u64 index, u64 term, peers, old_peers,
//!                                                  u64 file count, u32 file-list CRC
//!                                                  (absent: no snapshot was published)
//! qk_entries            u64 index                u64 term, u8 kind, body
//!                                                  NoOp: empty; Data: the bytes;
//!                                                  Configuration: peers, old_peers
//! qk_snapshot_files     &str path                u64 len, file meta: user_meta (opt bytes),
//!                                                  source (opt u8), checksum (opt string)
//! qk_snapshot_chunks    (&str path, u64 chunk)   the file's bytes [chunk * CHUNK_LEN, +CHUNK_LEN)
//! ```
//!
//! Integers are little-endian. A string or byte string is a `u32` length and its bytes; an
//! optional one is a `u8` flag (0 absent, 1 present) then the value; a peer list is a `u32`
//! count then that many strings. A file's `source` is braft's `FileSource` number.
//!
//! **Versions.** 1: a file's metadata was one opaque optional byte string. 2 (this build):
//! braft's three `LocalFileMeta` fields. A version-1 database does not open (the error names
//! both versions): export it with the build that wrote it and import the image.
//!
//! **Sealing.** Every value starts with a CRC-32C over the table's one-byte tag, the key's
//! bytes and the rest of the value. redb checks its own pages only when it repairs after a
//! crash (or with the integrity check on open); the seal makes sure a flipped bit in a value,
//! or a lookup that lands on the wrong record, is reported as corruption instead of returned.
//!
//! The snapshot meta also seals the **file list**: the number of files and a CRC-32C over
//! every file's path and record in path order ([`FilesSeal`]). Per-value seals catch a
//! damaged value, but not a record that vanished from a damaged B-tree page; the list seal
//! does, so a reader never silently returns a snapshot with a file missing.
//!
//! **Invariants** (checked at open and by `inspect`): `qk_entries` holds exactly the indexes
//! `first..=last` of `log_range`; `qk_snapshot_files` and `qk_snapshot_chunks` are empty
//! unless `snapshot_meta` is present; a file of `len` bytes has exactly the chunks
//! `0..ceil(len / CHUNK_LEN)`, each `CHUNK_LEN` long except a shorter last one.

use bytes::Bytes;
use redb::TableDefinition;

use crate::contract::{
    Entry, EntryKind, FileMeta, FileSource, Index, Meta, Payload, PeerId, SnapshotMeta, Term,
};

/// The schema version this build writes and reads. An unknown version fails the open.
pub const FORMAT_VERSION: u32 = 2;

/// Length of one stored snapshot chunk (the last chunk of a file may be shorter).
pub const CHUNK_LEN: usize = 64 * 1024;

/// Scalars: format version, log range, Raft meta, snapshot meta.
pub const META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("qk_meta");
/// Log entries by index.
pub const ENTRIES: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("qk_entries");
/// The latest snapshot's files: length and file metadata, by path.
pub const SNAPSHOT_FILES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("qk_snapshot_files");
/// The latest snapshot's file contents, in chunks of [`CHUNK_LEN`].
pub const SNAPSHOT_CHUNKS: TableDefinition<'static, (&'static str, u64), &'static [u8]> =
    TableDefinition::new("qk_snapshot_chunks");

/// `qk_meta` key of the format version.
pub const KEY_FORMAT: &str = "format";
/// `qk_meta` key of the retained log range.
pub const KEY_LOG_RANGE: &str = "log_range";
/// `qk_meta` key of the term and vote.
pub const KEY_RAFT_META: &str = "raft_meta";
/// `qk_meta` key of the latest snapshot's meta.
pub const KEY_SNAPSHOT_META: &str = "snapshot_meta";

/// Seal tags, one per table, so a value copied under another table cannot verify.
const TAG_META: u8 = 1;
const TAG_ENTRY: u8 = 2;
const TAG_FILE: u8 = 3;
const TAG_CHUNK: u8 = 4;

const CRC_LEN: usize = 4;

/// Why a stored value did not decode. The caller adds the table and key.
pub type DecodeError = String;

fn crc(tag: u8, key: &[u8], body: &[u8]) -> u32 {
    let c = crc32c::crc32c(&[tag]);
    let c = crc32c::crc32c_append(c, &(key.len() as u64).to_le_bytes());
    let c = crc32c::crc32c_append(c, key);
    crc32c::crc32c_append(c, body)
}

fn seal(tag: u8, key: &[u8], body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(CRC_LEN + body.len());
    out.extend_from_slice(&crc(tag, key, &body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn unseal<'v>(tag: u8, key: &[u8], value: &'v [u8]) -> Result<&'v [u8], DecodeError> {
    if value.len() < CRC_LEN {
        return Err(format!("value of {} bytes is shorter than its checksum", value.len()));
    }
    let (stored, body) = value.split_at(CRC_LEN);
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let computed = crc(tag, key, body);
    if stored != computed {
        return Err(format!("checksum mismatch (stored {stored:08x}, computed {computed:08x})"));
    }
    Ok(body)
}

fn chunk_key(path: &str, chunk: u64) -> Vec<u8> {
    let mut key = path.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&chunk.to_le_bytes());
    key
}

// ---- primitive writer and reader ----------------------------------------------------------

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Every stored string or byte string is far below 4 GiB (paths, peers, file meta).
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(v);
        self
    }
    fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).bytes(v),
        }
    }
    fn peers(&mut self, peers: &[PeerId]) -> &mut Self {
        self.u32(u32::try_from(peers.len()).unwrap_or(u32::MAX));
        for p in peers {
            self.bytes(p.as_str().as_bytes());
        }
        self
    }
    fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(format!("value ends early: needs {n} more bytes, has {}", self.rest.len()));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
    fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            flag => Err(format!("option flag {flag} is neither 0 nor 1")),
        }
    }
    fn peers(&mut self) -> Result<Vec<PeerId>, DecodeError> {
        let n = self.u32()? as usize;
        // Each peer takes at least its 4-byte length, so a hostile count cannot make us
        // allocate more than the value's own size.
        if n > self.rest.len() / 4 {
            return Err(format!("peer count {n} exceeds what the value can hold"));
        }
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            peers.push(PeerId::new(self.string()?));
        }
        Ok(peers)
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.rest.len()))
        }
    }
}

// ---- qk_meta records ----------------------------------------------------------------------

/// Seals a `qk_meta` record body under `key`.
fn seal_meta(key: &str, body: Vec<u8>) -> Vec<u8> {
    seal(TAG_META, key.as_bytes(), body)
}

fn unseal_meta<'v>(key: &str, value: &'v [u8]) -> Result<Reader<'v>, DecodeError> {
    Ok(Reader::new(unseal(TAG_META, key.as_bytes(), value)?))
}

/// Encodes the format-version record.
pub fn encode_format() -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(FORMAT_VERSION);
    seal_meta(KEY_FORMAT, w.0)
}

/// Decodes the format-version record.
pub fn decode_format(value: &[u8]) -> Result<u32, DecodeError> {
    let mut r = unseal_meta(KEY_FORMAT, value)?;
    let v = r.u32()?;
    r.end()?;
    Ok(v)
}

/// Encodes the retained range `(first, last)`.
pub fn encode_range(first: Index, last: Index) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(first).u64(last);
    seal_meta(KEY_LOG_RANGE, w.0)
}

/// Decodes the retained range, checking `first >= 1` and `last >= first - 1`.
pub fn decode_range(value: &[u8]) -> Result<(Index, Index), DecodeError> {
    let mut r = unseal_meta(KEY_LOG_RANGE, value)?;
    let (first, last) = (r.u64()?, r.u64()?);
    r.end()?;
    if first == 0 || last < first - 1 {
        return Err(format!("impossible range [{first}, {last}]"));
    }
    Ok((first, last))
}

/// Encodes term and vote.
pub fn encode_raft_meta(meta: &Meta) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(meta.term).opt_bytes(meta.voted_for.as_ref().map(|p| p.as_str().as_bytes()));
    seal_meta(KEY_RAFT_META, w.0)
}

/// Decodes term and vote.
pub fn decode_raft_meta(value: &[u8]) -> Result<Meta, DecodeError> {
    let mut r = unseal_meta(KEY_RAFT_META, value)?;
    let term = r.u64()?;
    let vote = match r.opt_bytes()? {
        None => None,
        Some(b) => Some(PeerId::new(
            String::from_utf8(b.to_vec()).map_err(|_| "vote is not UTF-8".to_string())?,
        )),
    };
    r.end()?;
    Ok(Meta { term, voted_for: vote })
}

/// The seal of a snapshot's file list: how many files, and a CRC-32C over each file's path
/// and encoded record, in path order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilesSeal {
    /// Number of files.
    pub count: u64,
    /// CRC-32C of the list.
    pub crc: u32,
}

impl FilesSeal {
    /// Adds the next file (in path order).
    pub fn add(&mut self, path: &str, record: &FileRecord) {
        let mut w = Writer::default();
        w.bytes(path.as_bytes());
        write_file_record(&mut w, record);
        self.count += 1;
        self.crc = crc32c::crc32c_append(self.crc, &w.0);
    }
}

/// Encodes a snapshot's meta with the seal of its file list.
pub fn encode_snapshot_meta(meta: &SnapshotMeta, files: FilesSeal) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(meta.last_included_index)
        .u64(meta.last_included_term)
        .peers(&meta.peers)
        .peers(&meta.old_peers)
        .u64(files.count)
        .u32(files.crc);
    seal_meta(KEY_SNAPSHOT_META, w.0)
}

/// Decodes a snapshot's meta and the seal of its file list.
pub fn decode_snapshot_meta(value: &[u8]) -> Result<(SnapshotMeta, FilesSeal), DecodeError> {
    let mut r = unseal_meta(KEY_SNAPSHOT_META, value)?;
    let meta = SnapshotMeta {
        last_included_index: r.u64()?,
        last_included_term: r.u64()?,
        peers: r.peers()?,
        old_peers: r.peers()?,
    };
    let seal = FilesSeal { count: r.u64()?, crc: r.u32()? };
    r.end()?;
    Ok((meta, seal))
}

// ---- qk_entries ---------------------------------------------------------------------------

/// Encodes an entry stored under its index.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(entry.term).u8(entry.kind().number());
    match &entry.payload {
        Payload::NoOp => {}
        Payload::Data(bytes) => {
            w.raw(bytes);
        }
        Payload::Configuration { peers, old_peers } => {
            w.peers(peers).peers(old_peers);
        }
    }
    seal(TAG_ENTRY, &entry.index.to_le_bytes(), w.0)
}

/// Decodes the entry stored under `index`.
pub fn decode_entry(index: Index, value: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Reader::new(unseal(TAG_ENTRY, &index.to_le_bytes(), value)?);
    let term: Term = r.u64()?;
    let kind = r.u8()?;
    let payload = match EntryKind::from_number(kind) {
        Some(EntryKind::NoOp) => Payload::NoOp,
        Some(EntryKind::Data) => Payload::Data(Bytes::copy_from_slice(r.rest())),
        Some(EntryKind::Configuration) => {
            Payload::Configuration { peers: r.peers()?, old_peers: r.peers()? }
        }
        None => return Err(format!("unknown entry kind {kind}")),
    };
    r.end()?;
    Ok(Entry { index, term, payload })
}

/// The term of the entry stored under `index`, checking the seal but decoding no payload.
pub fn decode_entry_term(index: Index, value: &[u8]) -> Result<Term, DecodeError> {
    let mut r = Reader::new(unseal(TAG_ENTRY, &index.to_le_bytes(), value)?);
    r.u64()
}

// ---- snapshot files and chunks ------------------------------------------------------------

/// A stored snapshot file's record: its length and file metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// Length in bytes.
    pub len: u64,
    /// The metadata given to `add_file`.
    pub file_meta: FileMeta,
}

fn write_file_record(w: &mut Writer, record: &FileRecord) {
    let FileMeta { user_meta, source, checksum } = &record.file_meta;
    w.u64(record.len).opt_bytes(user_meta.as_deref());
    match source {
        None => w.u8(0),
        Some(s) => w.u8(1).u8(s.number() as u8),
    };
    w.opt_bytes(checksum.as_deref().map(str::as_bytes));
}

impl FileRecord {
    /// How many chunks hold the file's bytes.
    pub fn chunk_count(&self) -> u64 {
        self.len.div_ceil(CHUNK_LEN as u64)
    }

    /// The length chunk number `chunk` must have.
    pub fn chunk_len(&self, chunk: u64) -> usize {
        let start = chunk.saturating_mul(CHUNK_LEN as u64);
        // At most CHUNK_LEN, so the cast cannot truncate.
        self.len.saturating_sub(start).min(CHUNK_LEN as u64) as usize
    }
}

/// Encodes the file record stored under `path`.
pub fn encode_file(path: &str, record: &FileRecord) -> Vec<u8> {
    let mut w = Writer::default();
    write_file_record(&mut w, record);
    seal(TAG_FILE, path.as_bytes(), w.0)
}

/// Decodes the file record stored under `path`.
pub fn decode_file(path: &str, value: &[u8]) -> Result<FileRecord, DecodeError> {
    let mut r = Reader::new(unseal(TAG_FILE, path.as_bytes(), value)?);
    let len = r.u64()?;
    let user_meta = r.opt_bytes()?.map(Bytes::copy_from_slice);
    let source = match r.u8()? {
        0 => None,
        1 => {
            let n = r.u8()?;
            Some(
                FileSource::from_number(i32::from(n))
                    .ok_or_else(|| format!("file source {n} is neither 0 nor 1"))?,
            )
        }
        flag => return Err(format!("option flag {flag} is neither 0 nor 1")),
    };
    let checksum = match r.opt_bytes()? {
        None => None,
        Some(b) => {
            Some(String::from_utf8(b.to_vec()).map_err(|_| "checksum is not UTF-8".to_string())?)
        }
    };
    r.end()?;
    Ok(FileRecord { len, file_meta: FileMeta { user_meta, source, checksum } })
}

/// Encodes chunk number `chunk` of the file at `path`.
pub fn encode_chunk(path: &str, chunk: u64, data: &[u8]) -> Vec<u8> {
    seal(TAG_CHUNK, &chunk_key(path, chunk), data.to_vec())
}

/// Checks and returns the bytes of chunk number `chunk` of the file at `path`.
pub fn decode_chunk<'v>(path: &str, chunk: u64, value: &'v [u8]) -> Result<&'v [u8], DecodeError> {
    unseal(TAG_CHUNK, &chunk_key(path, chunk), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let e = Entry {
            index: 9,
            term: 3,
            payload: Payload::Configuration {
                peers: vec![PeerId::new("a:1:0")],
                old_peers: vec![PeerId::new("b:2:0:1"), PeerId::new("")],
            },
        };
        assert_eq!(decode_entry(9, &encode_entry(&e)), Ok(e.clone()));
        assert!(decode_entry(10, &encode_entry(&e)).is_err(), "wrong key must not verify");
        let d = Entry::data(4, 1, vec![0u8, 1, 2]);
        assert_eq!(decode_entry(4, &encode_entry(&d)), Ok(d));
        let m = Meta { term: 7, voted_for: Some(PeerId::new("x:1:2")) };
        assert_eq!(decode_raft_meta(&encode_raft_meta(&m)), Ok(m));
        assert_eq!(decode_range(&encode_range(5, 4)), Ok((5, 4)));
        assert!(decode_range(&encode_range(0, 0)).is_err());
        let f = FileRecord { len: 70_000, file_meta: FileMeta::user(Bytes::from_static(b"m")) };
        assert_eq!(decode_file("a/b", &encode_file("a/b", &f)), Ok(f.clone()));
        for file_meta in [
            FileMeta::default(),
            FileMeta { user_meta: Some(Bytes::new()), ..FileMeta::default() },
            FileMeta { source: Some(FileSource::Reference), ..FileMeta::default() },
            FileMeta {
                user_meta: Some(Bytes::from_static(b"u")),
                source: Some(FileSource::Local),
                checksum: Some("c0ffee".into()),
            },
        ] {
            let g = FileRecord { len: 3, file_meta };
            assert_eq!(decode_file("x", &encode_file("x", &g)), Ok(g));
        }
        assert_eq!((f.chunk_count(), f.chunk_len(1)), (2, 70_000 - CHUNK_LEN));
        assert_eq!(decode_chunk("p", 3, &encode_chunk("p", 3, b"xyz")), Ok(&b"xyz"[..]));
        assert!(decode_chunk("p", 2, &encode_chunk("p", 3, b"xyz")).is_err());
    }

    #[test]
    fn a_flipped_bit_never_decodes() {
        let e = Entry::data(1, 1, vec![5u8; 40]);
        let good = encode_entry(&e);
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_entry(1, &bad).is_err(), "bit {bit}");
        }
    }
}
