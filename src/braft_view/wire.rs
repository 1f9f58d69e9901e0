//! A lenient protobuf (proto2) wire reader and braft's on-disk messages (braft-format.md §3),
//! with C++ protobuf's behaviour on bad input as braft relies on it (§2): parsing stops at
//! the first malformed byte and keeps every field read before it; a known field number with
//! an unexpected wire type is skipped as an unknown field; a scalar seen twice keeps the
//! last value; an embedded message seen twice is merged; a missing field reads as its
//! default (0, empty). Whether parsing stopped early is reported, never an error: braft's
//! ProtoBufFile ignores the parse result.
//!
//! Groups (wire types 3 and 4) end the parse as malformed: no braft message has one, and
//! braft-format.md does not describe them.

/// One field value as it sits on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Walks the fields of one message; `complete` says whether the walk reached the end.
struct Walker<'a> {
    bytes: &'a [u8],
    at: usize,
    complete: bool,
}

impl<'a> Walker<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Walker { bytes, at: 0, complete: true }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in 0..10 {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << (7 * shift);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    /// The next `(field number, value)`, or `None` at the end or at malformed bytes (then
    /// `complete` is false).
    fn next_field(&mut self) -> Option<(u64, Value<'a>)> {
        if self.at == self.bytes.len() {
            return None;
        }
        let field = self.read_field();
        if field.is_none() {
            self.complete = false;
        }
        field
    }

    fn read_field(&mut self) -> Option<(u64, Value<'a>)> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return None;
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return None,
        };
        Some((number, value))
    }
}

/// `LogPBMeta` (the log's `log_meta`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPbMeta {
    /// `first_log_index` (field 1, int64).
    pub first_log_index: i64,
}

/// `StablePBMeta` (`raft_meta`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StablePbMeta {
    /// `term` (field 1, int64).
    pub term: i64,
    /// `votedfor` (field 2, string), as raw bytes.
    pub votedfor: Vec<u8>,
}

/// `ConfigurationPBMeta` (the payload of a configuration entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigurationPbMeta {
    /// `peers` (field 1, repeated string).
    pub peers: Vec<Vec<u8>>,
    /// `old_peers` (field 2, repeated string).
    pub old_peers: Vec<Vec<u8>>,
}

/// `SnapshotMeta` (raft.proto).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMetaPb {
    /// `last_included_index` (field 1, int64).
    pub last_included_index: i64,
    /// `last_included_term` (field 2, int64).
    pub last_included_term: i64,
    /// `peers` (field 3, repeated string).
    pub peers: Vec<Vec<u8>>,
    /// `old_peers` (field 4, repeated string).
    pub old_peers: Vec<Vec<u8>>,
}

/// `LocalFileMeta` (local_file_meta.proto).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalFileMetaPb {
    /// `user_meta` (field 1, optional bytes).
    pub user_meta: Option<Vec<u8>>,
    /// `source` (field 2, optional enum FileSource).
    pub source: Option<u64>,
    /// `checksum` (field 3, optional string).
    pub checksum: Option<Vec<u8>>,
}

/// `LocalSnapshotPbMeta.File`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFilePb {
    /// `name` (field 1, string).
    pub name: Vec<u8>,
    /// `meta` (field 2, optional LocalFileMeta).
    pub meta: Option<LocalFileMetaPb>,
}

/// `LocalSnapshotPbMeta` (`__raft_snapshot_meta`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalSnapshotPbMeta {
    /// `meta` (field 1, optional SnapshotMeta).
    pub meta: Option<SnapshotMetaPb>,
    /// `files` (field 2, repeated File), in stored order.
    pub files: Vec<SnapshotFilePb>,
}

/// A message read leniently: the fields read, and whether the whole input parsed.
pub trait Lenient: Default {
    /// Merges the fields of `bytes` into `self`; returns false when parsing stopped early.
    fn merge(&mut self, bytes: &[u8]) -> bool;

    /// Parses `bytes` from a default message.
    fn parse(bytes: &[u8]) -> (Self, bool) {
        let mut message = Self::default();
        let complete = message.merge(bytes);
        (message, complete)
    }
}

fn int64(value: u64) -> i64 {
    value as i64
}

impl Lenient for LogPbMeta {
    fn merge(&mut self, bytes: &[u8]) -> bool {
        let mut w = Walker::new(bytes);
        while let Some((number, value)) = w.next_field() {
            if let (1, Value::Varint(v)) = (number, value) {
                self.first_log_index = int64(v);
            }
        }
        w.complete
    }
}

impl Lenient for StablePbMeta {
    fn merge(&mut self, bytes: &[u8]) -> bool {
        let mut w = Walker::new(bytes);
        while let Some((number, value)) = w.next_field() {
            match (number, value) {
                (1, Value::Varint(v)) => self.term = int64(v),
                (2, Value::Bytes(b)) => self.votedfor = b.to_vec(),
                _ => {}
            }
        }
        w.complete
    }
}

impl Lenient for ConfigurationPbMeta {
    fn merge(&mut self, bytes: &[u8]) -> bool {
        let mut w = Walker::new(bytes);
        while let Some((number, value)) = w.next_field() {
            match (number, value) {
                (1, Value::Bytes(b)) => self.peers.push(b.to_vec()),
                (2, Value::Bytes(b)) => self.old_peers.push(b.to_vec()),
                _ => {}
            }
        }
        w.complete
    }
}

impl Lenient for SnapshotMetaPb {
    fn merge(&mut self, bytes: &[u8]) -> bool {
        let mut w = Walker::new(bytes);
        while let Some((number, value)) = w.next_field() {
            match (number, value) {
                (1, Value::Varint(v)) => self.last_included_index = int64(v),
                (2, Value::Varint(v)) => self.last_included_term = int64(v),
                (3, Value::Bytes(b)) => self.peers.push(b.to_vec()),
                (4, Value::Bytes(b)) => self.old_peers.push(b.to_vec()),
                _ => {}
            }
        }
        w.complete
    }
}

impl Lenient for LocalFileMetaPb {
    fn merge(&mut self, bytes: &[u8]) -> bool {
        let mut w = Walker::new(bytes);
        while let Some((number, value)) = w.next_field() {
            match (number, value) {
                (1, Value::Bytes(b)) => self.user_meta = Some(b.to_vec()),
                (2, Value::Varint(v)) => self.source = Some(v),
                (3, Value::Bytes(b)) => self.checksum = Some(b.to_vec()),
                _ => {}
            }
        }
        w.complete
    }
}

impl Lenient for SnapshotFilePb {
    fn merge(&mut self, bytes: &[u8]) -> bool {
        let mut w = Walker::new(bytes);
        while let Some((number, value)) = w.next_field() {
            match (number, value) {
                (1, Value::Bytes(b)) => self.name = b.to_vec(),
                (2, Value::Bytes(b)) => {
                    let complete = self.meta.get_or_insert_with(Default::default).merge(b);
                    if !complete {
                        return false;
                    }
                }
                _ => {}
            }
        }
        w.complete
    }
}

impl Lenient for LocalSnapshotPbMeta {
    fn merge(&mut self, bytes: &[u8]) -> bool {
        let mut w = Walker::new(bytes);
        while let Some((number, value)) = w.next_field() {
            match (number, value) {
                (1, Value::Bytes(b)) => {
                    let complete = self.meta.get_or_insert_with(Default::default).merge(b);
                    if !complete {
                        return false;
                    }
                }
                (2, Value::Bytes(b)) => {
                    let mut file = SnapshotFilePb::default();
                    let ok = file.merge(b);
                    self.files.push(file);
                    if !ok {
                        return false;
                    }
                }
                _ => {}
            }
        }
        w.complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braft_vectors_parse() {
        // braft-format.md §5.8: log_meta body `08 01`, raft_meta body.
        let (log, ok) = LogPbMeta::parse(&[0x08, 0x01]);
        assert!(ok);
        assert_eq!(log.first_log_index, 1);
        let mut body = vec![0x08, 0x02, 0x12, 0x12];
        body.extend_from_slice(b"127.0.0.1:8100:0:0");
        let (meta, ok) = StablePbMeta::parse(&body);
        assert!(ok);
        assert_eq!((meta.term, meta.votedfor.as_slice()), (2, &b"127.0.0.1:8100:0:0"[..]));
    }

    #[test]
    fn garbled_bodies_keep_what_was_read() {
        // §5.5: `ff ff` parses to nothing, first_log_index reads as 0.
        let (log, ok) = LogPbMeta::parse(&[0xff, 0xff]);
        assert!(!ok);
        assert_eq!(log.first_log_index, 0);
        // A term, then a truncated string: the term stays.
        let (meta, ok) = StablePbMeta::parse(&[0x08, 0x07, 0x12, 0x05, b'1']);
        assert!(!ok);
        assert_eq!((meta.term, meta.votedfor.len()), (7, 0));
        // A known number with another wire type is an unknown field, skipped.
        let (log, ok) = LogPbMeta::parse(&[0x0a, 0x01, 0x00, 0x08, 0x03]);
        assert!(ok);
        assert_eq!(log.first_log_index, 3);
        // Negative int64 is a ten-byte varint.
        let mut neg = vec![0x08];
        neg.extend_from_slice(&[0xff; 9]);
        neg.push(0x01);
        assert_eq!(LogPbMeta::parse(&neg).0.first_log_index, -1);
    }

    #[test]
    fn embedded_messages_merge_and_files_keep_order() {
        let mut bytes = vec![0x0a, 0x02, 0x08, 0x05, 0x0a, 0x02, 0x10, 0x02];
        bytes.extend_from_slice(&[0x12, 0x05, 0x0a, 0x01, b'b', 0x12, 0x00]);
        bytes.extend_from_slice(&[0x12, 0x03, 0x0a, 0x01, b'a']);
        let (msg, ok) = LocalSnapshotPbMeta::parse(&bytes);
        assert!(ok);
        let meta = msg.meta.expect("meta");
        assert_eq!((meta.last_included_index, meta.last_included_term), (5, 2));
        assert_eq!(msg.files.len(), 2);
        assert_eq!(msg.files[0].name, b"b");
        assert_eq!(msg.files[0].meta, Some(LocalFileMetaPb::default()));
        assert_eq!(msg.files[1].meta, None);
    }
}
