//! The segment log (`log/`): open and recovery, append with braft's rollover, truncations
//! and reset with braft's on-disk order plus a redo record, entry reads, and export cuts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;

use crate::contract::{
    check_append, check_reset, ContractError, Entry, EntryKind, Index, Payload, StorageResult, Term,
};
use crate::coverage::{hit, Point};
use crate::vfs::{OpenOptions, VfsFile, VfsHandle};

use super::files::{
    corruption, ensure_dir, read_exact, read_file, remove_file_if_present, write_atomic, SharedFile,
};
use super::format::{
    closed_segment_name, decode_log_epoch, encode_log_epoch, open_segment_name, tmp_name,
    ChecksumType, CrossMark, PendingOp, PendingOpKind, RecordHeader, SegmentName, HEADER_LEN,
    LOG_EPOCH_NAME, LOG_META_NAME, PENDING_OP_LEN, PENDING_OP_NAME, PINNED_SEGMENT_INFIX,
    SEGMENT_CLOSED_PREFIX, TMP_SUFFIX,
};
use super::meta::{judge_guarded, load_guarded, save_guarded, SidecarStatus};
use super::peer::peer_from_disk;
use super::proto::{pbfile_decode, pbfile_encode, ConfigurationPbMeta, LogPbMeta};
use super::recover::{check_payload, decide, scan_segment, RecoveryPolicy};

/// Options of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// braft's `raft_max_segment_size`: a segment is closed before an append when it is
    /// strictly larger than this.
    pub segment_size_max: u64,
    /// The checksum written into new records.
    pub checksum: ChecksumType,
    /// Pick the checksum per open from the range at open instead (see
    /// [`super::LocalOptions::mixed_checksums`]).
    pub mixed_checksums: bool,
    /// What an open does with damaged records.
    pub policy: RecoveryPolicy,
}

/// Segment files found in the directory: name and parsed name.
type NamedSegments = Vec<(String, SegmentName)>;

/// Offset and term of one record.
type RecordIndex = Arc<Vec<(u64, Term)>>;

/// One segment file and the index of its records.
#[derive(Clone)]
struct Segment {
    first: Index,
    /// `(offset, term)` per record; shared copy-on-write with export cuts.
    records: RecordIndex,
    /// Byte length (the end of the last record).
    len: u64,
    closed: bool,
    file: Arc<SharedFile>,
}

impl Segment {
    /// Last index (`first - 1` when empty).
    fn last(&self) -> Index {
        self.first + self.records.len() as u64 - 1
    }

    fn name(&self) -> String {
        if self.closed {
            closed_segment_name(self.first, self.last())
        } else {
            open_segment_name(self.first)
        }
    }
}

/// The log of one instance.
pub struct LogStore {
    vfs: VfsHandle,
    dir: PathBuf,
    options: LogOptions,
    first: Index,
    last: Index,
    segments: Vec<Segment>,
    log_meta_fingerprint: Option<(u32, u32)>,
    pin_seq: u64,
    /// Truncation epoch: bumped durably before every truncate_suffix and reset.
    epoch: u64,
    /// The cross mark stored with the epoch record and with `log_meta`, as loaded.
    loaded_marks: Vec<(CrossMark, PathBuf)>,
    /// Whether braft (another writer) replaced `log_meta` after this family last saved it.
    log_meta_replaced: bool,
    /// `raft_meta` saves and snapshot publishes so far, for the marks this log writes.
    others: (u64, u64),
    /// The counts the epoch record holds.
    others_recorded: (u64, u64),
    /// The first index the epoch record vouches for: in its epoch the log never starts
    /// before it (truncate_prefix only moves `first` up; reset and truncate_suffix bump the
    /// epoch).
    first_recorded: Index,
}

/// Encodes an entry's payload as braft stores it.
pub fn encode_payload(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::NoOp => Vec::new(),
        Payload::Data(bytes) => bytes.to_vec(),
        Payload::Configuration { peers, old_peers } => ConfigurationPbMeta {
            peers: peers.iter().map(|p| p.to_string()).collect(),
            old_peers: old_peers.iter().map(|p| p.to_string()).collect(),
        }
        .encode_to_vec(),
    }
}

/// Decodes a payload of braft entry type `entry_type`.
pub fn decode_payload(entry_type: u8, payload: Vec<u8>) -> Result<Payload, String> {
    check_payload(entry_type, &payload)?;
    Ok(match EntryKind::from_number(entry_type) {
        Some(EntryKind::NoOp) => Payload::NoOp,
        Some(EntryKind::Data) => Payload::Data(payload.into()),
        Some(EntryKind::Configuration) => {
            let msg = ConfigurationPbMeta::decode(payload.as_slice())
                .map_err(|e| format!("configuration payload does not decode: {e}"))?;
            Payload::Configuration {
                peers: msg.peers.into_iter().map(peer_from_disk).collect(),
                old_peers: msg.old_peers.into_iter().map(peer_from_disk).collect(),
            }
        }
        None => return Err(format!("unknown entry type {entry_type}")),
    })
}

/// One full record (header and payload) for `entry`.
pub fn encode_record(entry: &Entry, checksum: ChecksumType) -> Vec<u8> {
    let payload = encode_payload(&entry.payload);
    let header = RecordHeader::new(entry.term, entry.kind().number(), checksum, &payload);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&payload);
    out
}

/// Reads and verifies the record at `offset` (which must end at `end`) as entry `index`.
fn read_record(
    file: &dyn VfsFile,
    path: &Path,
    index: Index,
    offset: u64,
    end: u64,
) -> StorageResult<Entry> {
    let mut raw = [0u8; HEADER_LEN];
    read_exact(file, &mut raw, offset, path)?;
    let header = RecordHeader::decode(&raw);
    if !header.header_ok() {
        return Err(corruption(path, offset, "header checksum mismatch on read"));
    }
    if offset + header.record_len() != end {
        return Err(corruption(path, offset, "record length changed since open"));
    }
    let mut payload = vec![0u8; header.data_len as usize];
    read_exact(file, &mut payload, offset + HEADER_LEN as u64, path)?;
    if !header.payload_ok(&payload) {
        return Err(corruption(path, offset, "payload checksum mismatch"));
    }
    let payload = decode_payload(header.entry_type, payload)
        .map_err(|what| corruption(path, offset, what))?;
    Ok(Entry { index, term: header.term, payload })
}

fn record_end(records: &[(u64, Term)], position: usize, segment_len: u64) -> u64 {
    records.get(position + 1).map(|r| r.0).unwrap_or(segment_len)
}

impl LogStore {
    /// Opens the log in `dir`, applying braft's recovery rules, the policy, and any pending
    /// redo record.
    pub fn open(vfs: VfsHandle, dir: PathBuf, options: LogOptions) -> StorageResult<Self> {
        ensure_dir(&vfs, &dir)?;
        let policy = options.policy;
        let mut store = LogStore {
            vfs,
            dir,
            options,
            first: 1,
            last: 0,
            segments: Vec::new(),
            log_meta_fingerprint: None,
            pin_seq: 0,
            epoch: 0,
            loaded_marks: Vec::new(),
            log_meta_replaced: false,
            others: (0, 0),
            others_recorded: (0, 0),
            first_recorded: 1,
        };
        if let Some(mark) = store.load_epoch()? {
            store.epoch = mark.epoch;
            store.others_recorded = (mark.meta_seq, mark.snapshot_seq);
            store.first_recorded = mark.first;
            store.loaded_marks.push((mark, store.dir.join(LOG_EPOCH_NAME)));
        }
        let pending = store.load_pending()?;
        let log_meta_path = store.dir.join(LOG_META_NAME);
        match load_guarded(&store.vfs, &store.dir, LOG_META_NAME)? {
            None => {
                let names = store.list()?.1;
                if !names.is_empty() && policy == RecoveryPolicy::FailClosed {
                    hit(Point::LocalRefusedLayout);
                    return Err(corruption(
                        &log_meta_path,
                        0,
                        format!(
                            "log_meta is missing but {} segment file(s) exist (braft would delete \
                             them; open with --recovery braft to do that)",
                            names.len()
                        ),
                    ));
                }
                // braft: a log without log_meta is empty; every `log_` file goes.
                for entry in store.vfs.read_dir(&store.dir)? {
                    if entry.name.starts_with(SEGMENT_CLOSED_PREFIX) {
                        remove_file_if_present(&store.vfs, &store.dir.join(&entry.name))?;
                    }
                }
                store.vfs.sync_dir(&store.dir)?;
                store.save_log_meta(1)?;
            }
            Some(file) => {
                judge_guarded(policy, &log_meta_path, &file)?;
                let msg: LogPbMeta = pbfile_decode(&file.bytes)
                    .map_err(|p| corruption(&log_meta_path, 0, p.to_string()))?;
                if msg.first_log_index < 1 {
                    return Err(corruption(
                        &log_meta_path,
                        4,
                        format!("first_log_index {} is below 1", msg.first_log_index),
                    ));
                }
                store.first = msg.first_log_index as u64;
                store.last = store.first - 1;
                store.log_meta_fingerprint = Some(super::format::Sidecar::fingerprint(&file.bytes));
                store.log_meta_replaced = file.status == SidecarStatus::Replaced;
            }
        }
        if let Some(op) = pending.filter(|op| op.kind == PendingOpKind::Reset) {
            store.redo_reset(op)?;
            hit(Point::LocalRedoCompleted);
        }
        store.load_segments()?;
        if store.options.mixed_checksums {
            store.options.checksum = session_checksum(store.first, store.last);
        }
        if let Some(op) = pending.filter(|op| op.kind == PendingOpKind::TruncateSuffix) {
            if store.first != op.first_before || store.last > op.last_before {
                return Err(layout_corruption(
                    &store.dir.join(PENDING_OP_NAME),
                    0,
                    format!(
                        "stale truncate_suffix record: range [{}, {}] is not within the recorded \
                         [{}, {}] (was the directory changed by another writer?)",
                        store.first, store.last, op.first_before, op.last_before
                    ),
                ));
            }
            // Segments go back to front, so while the last one is still there nothing was
            // removed: braft reads the whole old log, and the truncation is rolled back.
            // Otherwise braft reads a prefix it cannot tell from a shorter log; the
            // truncation is completed (the divergence braft's own truncate_suffix has).
            if store.last != op.last_before {
                store.truncate_suffix_as(op.arg, Record::Keep)?;
            }
            // The truncation may have been complete already, in which case the call above
            // did nothing and left the record.
            store.clear_pending()?;
            hit(Point::LocalRedoCompleted);
        }
        Ok(store)
    }

    fn load_epoch(&self) -> StorageResult<Option<CrossMark>> {
        let path = self.dir.join(LOG_EPOCH_NAME);
        match read_file(&self.vfs, &path, 64)? {
            None => Ok(None),
            Some(bytes) => match decode_log_epoch(&bytes) {
                Some(mark) => Ok(Some(mark)),
                None if self.options.policy.enforces_sidecars() => {
                    Err(corruption(&path, 0, "log epoch record is damaged"))
                }
                None => Ok(None),
            },
        }
    }

    /// Bumps the truncation epoch durably (before a truncate_suffix, or a reset to
    /// `first_after`): the record vouches for a first index the log starts at or after in
    /// the new epoch, whichever the operation leaves.
    fn bump_epoch(&mut self, first_after: Index) -> StorageResult<()> {
        let first = self.first.min(first_after);
        let mark = CrossMark { epoch: self.epoch + 1, first, ..self.cross_mark() };
        write_atomic(&self.vfs, &self.dir, LOG_EPOCH_NAME, &encode_log_epoch(&mark))?;
        self.epoch = mark.epoch;
        self.others_recorded = self.others;
        self.first_recorded = first;
        Ok(())
    }

    /// Tells the log how many `raft_meta` saves and snapshot publishes there were, for the
    /// cross marks it writes.
    pub fn set_others(&mut self, meta_seq: u64, snapshot_seq: u64) {
        self.others = (meta_seq, snapshot_seq);
    }

    /// Before the first append after a `raft_meta` save, a publish or a truncate_prefix,
    /// rewrites the epoch record (same epoch) with the new counts and first index, so that
    /// those writes being lost while the appends survive is detected too (a lost
    /// truncate_prefix would bring truncated entries back beside newer ones). Costs one small
    /// durable write per term change, snapshot or compaction, not per append.
    fn record_others(&mut self) -> StorageResult<()> {
        if self.others_recorded == self.others && self.first_recorded == self.first {
            return Ok(());
        }
        let mark = self.cross_mark();
        write_atomic(&self.vfs, &self.dir, LOG_EPOCH_NAME, &encode_log_epoch(&mark))?;
        self.others_recorded = self.others;
        self.first_recorded = self.first;
        Ok(())
    }

    /// The instance's cross mark as the log knows it now.
    pub fn cross_mark(&self) -> CrossMark {
        CrossMark {
            epoch: self.epoch,
            first: self.first,
            last: self.last,
            last_term: self.term(self.last),
            meta_seq: self.others.0,
            snapshot_seq: self.others.1,
        }
    }

    /// Whether braft (another writer) replaced `log_meta` after this family last saved it
    /// (a prefix truncation or reset braft made).
    pub fn log_meta_replaced(&self) -> bool {
        self.log_meta_replaced
    }

    /// The cross marks loaded with the epoch record and `log_meta`, with their files.
    pub fn loaded_marks(&self) -> &[(CrossMark, PathBuf)] {
        &self.loaded_marks
    }

    /// Fails when the log starts before the first index its own epoch record (`mark`, read
    /// from `saved`) vouches for: a truncate_prefix whose `log_meta` was acknowledged was lost
    /// while a later append survived (a lying fsync), and entries it dropped are back.
    pub fn check_first_floor(&self, mark: CrossMark, saved: &Path) -> StorageResult<()> {
        if mark.epoch != self.epoch || self.first >= mark.first {
            return Ok(());
        }
        Err(corruption(
            &self.dir.join(LOG_META_NAME),
            0,
            format!(
                "first_log_index {} is behind {}, which {} recorded in the same epoch after \
                 log_meta was saved (an acknowledged truncate_prefix was lost)",
                self.first,
                mark.first,
                saved.display()
            ),
        ))
    }

    /// Fails when the log, in the epoch a later-saved file recorded, falls short of the
    /// watermark that file recorded: acknowledged entries were lost (a lying fsync).
    pub fn check_watermark(&self, mark: CrossMark, saved: &Path) -> StorageResult<()> {
        let lost = |what: String| {
            Err(corruption(
                &self.dir,
                0,
                format!(
                    "{what}, but {} was saved after the log reached {} in epoch {} \
                     (acknowledged log writes were lost)",
                    saved.display(),
                    mark.last,
                    mark.epoch
                ),
            ))
        };
        if self.epoch < mark.epoch {
            return lost(format!("the log is in truncation epoch {}", self.epoch));
        }
        if self.epoch > mark.epoch {
            return Ok(());
        }
        if self.last < mark.last {
            return lost(format!("the log ends at {}", self.last));
        }
        if self.first < mark.first {
            return lost(format!("the log starts at {}, before {}", self.first, mark.first));
        }
        if mark.last >= self.first {
            if let Some(term) = mark.last_term {
                if self.term(mark.last) != Some(term) {
                    return lost(format!("entry {} has another term", mark.last));
                }
            }
        }
        Ok(())
    }

    fn load_pending(&self) -> StorageResult<Option<PendingOp>> {
        let path = self.dir.join(PENDING_OP_NAME);
        match read_file(&self.vfs, &path, PENDING_OP_LEN as u64 * 2)? {
            None => Ok(None),
            Some(bytes) => PendingOp::decode(&bytes)
                .map(Some)
                .ok_or_else(|| corruption(&path, 0, "pending-operation record is damaged")),
        }
    }

    fn redo_reset(&mut self, op: PendingOp) -> StorageResult<()> {
        if self.first == op.first_before && op.arg != op.first_before {
            // The reset's commit point (its `log_meta`) was never reached: braft still reads
            // the old log, so the reset is rolled back rather than completed.
            return self.clear_pending();
        }
        let (_, names) = self.list()?;
        for (name, segment) in &names {
            let last = match segment {
                SegmentName::Closed { last, .. } => *last,
                SegmentName::Open { .. } => 0,
            };
            if last > op.last_before {
                return Err(layout_corruption(
                    &self.dir.join(name),
                    0,
                    format!(
                        "stale reset record: segment reaches {last}, beyond the recorded last \
                         index {} (was the directory changed by another writer?)",
                        op.last_before
                    ),
                ));
            }
        }
        if self.first != op.arg {
            self.save_log_meta(op.arg)?;
        }
        for (name, _) in names.iter().rev() {
            remove_file_if_present(&self.vfs, &self.dir.join(name))?;
        }
        self.vfs.sync_dir(&self.dir)?;
        self.first = op.arg;
        self.last = op.arg - 1;
        self.clear_pending()
    }

    /// Lists the directory: `.tmp` names and segment names (sorted by name).
    fn list(&self) -> StorageResult<(Vec<String>, NamedSegments)> {
        let mut tmps = Vec::new();
        let mut segments = Vec::new();
        for entry in self.vfs.read_dir(&self.dir)? {
            if entry.name.ends_with(TMP_SUFFIX) {
                tmps.push(entry.name);
            } else if let Some(segment) = SegmentName::parse(&entry.name) {
                segments.push((entry.name, segment));
            }
        }
        Ok((tmps, segments))
    }

    fn load_segments(&mut self) -> StorageResult<()> {
        let (tmps, names) = self.list()?;
        let mut dir_changed = false;
        for name in &tmps {
            remove_file_if_present(&self.vfs, &self.dir.join(name))?;
            dir_changed = true;
        }
        let mut closed: Vec<(String, Index, Index)> = Vec::new();
        let mut open: Option<(String, Index)> = None;
        for (name, segment) in names {
            match segment {
                SegmentName::Closed { first, last } => closed.push((name, first, last)),
                SegmentName::Open { first } => {
                    if let Some((other, _)) = &open {
                        return Err(layout_corruption(
                            &self.dir.join(&name),
                            0,
                            format!("a second open segment (the first is {other})"),
                        ));
                    }
                    open = Some((name, first));
                }
            }
        }
        closed.sort_by_key(|c| c.1);
        let mut expected_next: Option<Index> = None;
        for (name, first, last) in closed {
            let path = self.dir.join(&name);
            if first > last {
                return Err(layout_corruption(&path, 0, "closed segment with first > last"));
            }
            if last < self.first && self.segments.is_empty() {
                // Wholly below first_log_index: left over from a truncate_prefix (whose
                // unlinks may have landed in any order), so not checked for contiguity.
                remove_file_if_present(&self.vfs, &path)?;
                dir_changed = true;
                continue;
            }
            if let Some(next) = expected_next {
                if first != next {
                    return Err(layout_corruption(
                        &path,
                        0,
                        format!("segments not contiguous: expected one starting at {next}"),
                    ));
                }
            }
            expected_next = Some(last + 1);
            if self.segments.is_empty() && first > self.first {
                return Err(layout_corruption(
                    &path,
                    0,
                    format!(
                        "hole: the first segment starts at {first}, after first_log_index {}",
                        self.first
                    ),
                ));
            }
            let segment = self.load_segment(path, first, Some(last))?;
            hit(Point::LocalClosedSegmentRecovered);
            self.segments.push(segment);
        }
        if let Some((name, first)) = open {
            let path = self.dir.join(&name);
            let segment = self.load_segment(path.clone(), first, None)?;
            let expected = expected_next.unwrap_or(first.min(self.first));
            if segment.records.is_empty() || segment.last() < self.first {
                // Nothing usable in it: an empty new segment, or entries all below first.
                drop(segment);
                remove_file_if_present(&self.vfs, &path)?;
                dir_changed = true;
            } else if first != expected || (self.segments.is_empty() && first > self.first) {
                return Err(layout_corruption(
                    &path,
                    0,
                    format!("open segment starts at {first}, expected {expected}"),
                ));
            } else {
                self.segments.push(segment);
            }
        }
        if dir_changed {
            self.vfs.sync_dir(&self.dir)?;
        }
        self.last = match self.segments.last() {
            Some(segment) => segment.last().max(self.first - 1),
            None => self.first - 1,
        };
        Ok(())
    }

    fn load_segment(
        &mut self,
        path: PathBuf,
        first: Index,
        closed_last: Option<Index>,
    ) -> StorageResult<Segment> {
        let file = SharedFile::new(Arc::clone(&self.vfs), path.clone());
        let is_open = closed_last.is_none();
        // Records below first_log_index were durable before log_meta moved past them.
        let acknowledged = usize::try_from(self.first.saturating_sub(first)).unwrap_or(usize::MAX);
        let (records, len) = file.with(|f, path| {
            let scan = scan_segment(f, path)?;
            let decision = decide(self.options.policy, &scan, is_open, acknowledged, path)?;
            let records: Vec<(u64, Term)> =
                scan.records[..decision.keep].iter().map(|r| (r.offset, r.term)).collect();
            if scan.records.iter().any(|r| r.checksum_type != scan.records[0].checksum_type) {
                hit(Point::LocalMixedChecksumsRead);
            }
            let len = match decision.trim_to {
                Some(offset) => {
                    hit(match scan.tail {
                        super::recover::Tail::Corrupt { .. } => Point::LocalZeroedTailTrimmed,
                        _ => Point::LocalTornTailTrimmed,
                    });
                    f.set_len(offset)?;
                    f.sync()?;
                    offset
                }
                None => scan.file_len,
            };
            if let Some(last) = closed_last {
                let named = last - first + 1;
                if (records.len() as u64) < named {
                    hit(Point::LocalRefusedLayout);
                    return Err(corruption(
                        path,
                        len,
                        format!(
                            "data lost in a full segment: {} of {named} entries",
                            records.len()
                        ),
                    ));
                }
                if (records.len() as u64) > named {
                    hit(Point::LocalRefusedLayout);
                    return Err(corruption(
                        path,
                        records[named as usize].0,
                        format!("found garbage: more than the {named} entries the name promises"),
                    ));
                }
            }
            Ok((records, len))
        })?;
        Ok(Segment { first, records: Arc::new(records), len, closed: !is_open, file })
    }

    /// First retained index.
    pub fn first(&self) -> Index {
        self.first
    }

    /// Last retained index.
    pub fn last(&self) -> Index {
        self.last
    }

    /// The entry at `index`, verified against its checksums.
    pub fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        read_entry(&self.segments, self.first, self.last, index)
    }

    /// The term of the entry at `index`.
    pub fn term(&self, index: Index) -> Option<Term> {
        term_of(&self.segments, self.first, self.last, index)
    }

    fn save_log_meta(&mut self, first: Index) -> StorageResult<()> {
        let bytes = pbfile_encode(&LogPbMeta { first_log_index: first as i64 });
        self.log_meta_fingerprint = Some(save_guarded(
            &self.vfs,
            &self.dir,
            LOG_META_NAME,
            &tmp_name(LOG_META_NAME),
            &bytes,
            self.log_meta_fingerprint,
            Some(self.cross_mark()),
        )?);
        self.log_meta_replaced = false;
        Ok(())
    }

    fn write_pending(&self, kind: PendingOpKind, arg: Index) -> StorageResult<()> {
        let op = PendingOp { kind, arg, first_before: self.first, last_before: self.last };
        write_atomic(&self.vfs, &self.dir, PENDING_OP_NAME, &op.encode())
    }

    fn clear_pending(&self) -> StorageResult<()> {
        if remove_file_if_present(&self.vfs, &self.dir.join(PENDING_OP_NAME))? {
            self.vfs.sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn pinned_name(&mut self, segment: &Segment) -> PathBuf {
        self.pin_seq += 1;
        self.dir.join(format!(
            "{}{PINNED_SEGMENT_INFIX}{}{TMP_SUFFIX}",
            segment.name(),
            self.pin_seq
        ))
    }

    /// Unlinks a segment file, or moves it aside when an export cut still reads it. The
    /// caller syncs the directory.
    fn remove_segment(&mut self, segment: Segment) -> StorageResult<()> {
        if Arc::strong_count(&segment.file) > 1 {
            hit(Point::LocalExportPinsSegment);
            let to = self.pinned_name(&segment);
            segment.file.retire(to)
        } else {
            remove_file_if_present(&self.vfs, &segment.file.path()).map(|_| ())
        }
    }

    /// Appends contiguous entries (see the contract), fsyncing before returning.
    pub fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        check_append(self.last, entries)?;
        for entry in entries {
            if let Payload::Data(bytes) = &entry.payload {
                if bytes.len() > u32::MAX as usize {
                    return Err(ContractError::EntryTooLarge {
                        index: entry.index,
                        reason: format!(
                            "{}-byte payload; braft's length field is 32-bit",
                            bytes.len()
                        ),
                    }
                    .into());
                }
            }
        }
        if !entries.is_empty() {
            self.record_others()?;
        }
        let mut buffer: Vec<u8> = Vec::new();
        let mut created = false;
        for entry in entries {
            let roll = match self.segments.last() {
                Some(s) if !s.closed => s.len + buffer.len() as u64 > self.options.segment_size_max,
                _ => true,
            };
            if roll {
                self.flush(&mut buffer)?;
                if matches!(self.segments.last(), Some(s) if !s.closed) {
                    self.close_open_segment()?;
                    hit(Point::LocalSegmentRollover);
                }
                self.create_open_segment(entry.index)?;
                created = true;
            }
            let record = encode_record(entry, self.options.checksum);
            let segment = self.segments.last_mut().expect("an open segment was just ensured");
            let offset = segment.len + buffer.len() as u64;
            Arc::make_mut(&mut segment.records).push((offset, entry.term));
            buffer.extend_from_slice(&record);
        }
        self.flush(&mut buffer)?;
        if let Some(segment) = self.segments.last() {
            segment.file.with(|f, _| Ok(f.sync()?))?;
        }
        if created {
            self.vfs.sync_dir(&self.dir)?;
        }
        if let Some(last) = entries.last() {
            self.last = last.index;
        }
        Ok(())
    }

    fn flush(&mut self, buffer: &mut Vec<u8>) -> StorageResult<()> {
        if buffer.is_empty() {
            return Ok(());
        }
        let Some(segment) = self.segments.last_mut() else {
            return Ok(());
        };
        let at = segment.len;
        segment.file.with(|f, _| Ok(f.write_at(buffer, at)?))?;
        segment.len += buffer.len() as u64;
        buffer.clear();
        Ok(())
    }

    /// fsync, rename `log_inprogress_F` to `log_F_L`, fsync the directory.
    fn close_open_segment(&mut self) -> StorageResult<()> {
        let Some(segment) = self.segments.last_mut() else {
            return Ok(());
        };
        segment.file.with(|f, _| Ok(f.sync()?))?;
        segment.file.rename(self.dir.join(closed_segment_name(segment.first, segment.last())))?;
        segment.closed = true;
        self.vfs.sync_dir(&self.dir)?;
        Ok(())
    }

    fn create_open_segment(&mut self, first: Index) -> StorageResult<()> {
        let path = self.dir.join(open_segment_name(first));
        drop(self.vfs.open(&path, OpenOptions::CREATE_TRUNCATE)?);
        let file = SharedFile::new(Arc::clone(&self.vfs), path);
        self.segments.push(Segment {
            first,
            records: Arc::new(Vec::new()),
            len: 0,
            closed: false,
            file,
        });
        Ok(())
    }

    /// Drops every entry below `first_kept`: `log_meta` first (durably), then the segments
    /// wholly below it. A straddling segment stays, its early entries out of range.
    pub fn truncate_prefix(&mut self, first_kept: Index) -> StorageResult<()> {
        if first_kept <= self.first {
            return Ok(());
        }
        self.save_log_meta(first_kept)?;
        let mut removed = false;
        while self.segments.first().is_some_and(|s| s.last() < first_kept) {
            let segment = self.segments.remove(0);
            self.remove_segment(segment)?;
            removed = true;
        }
        if removed {
            self.vfs.sync_dir(&self.dir)?;
            hit(Point::LocalTruncatePrefixDropsSegments);
        }
        self.first = first_kept;
        self.last = self.last.max(first_kept - 1);
        Ok(())
    }

    /// Drops every entry above `last_kept` (never below `first - 1`).
    pub fn truncate_suffix(&mut self, last_kept: Index) -> StorageResult<()> {
        self.truncate_suffix_as(last_kept, Record::Write)
    }

    /// [`truncate_suffix`](Self::truncate_suffix), writing its redo record first or (when
    /// completing one found at open) keeping the record there: rewritten with the range a
    /// half-done truncation left, it would make the next open roll the truncation back to a
    /// log that never existed (entries past the cut gone, the ones before it kept).
    fn truncate_suffix_as(&mut self, last_kept: Index, record: Record) -> StorageResult<()> {
        let keep = last_kept.min(self.last).max(self.first - 1);
        if keep >= self.last {
            return Ok(());
        }
        // Segments that go entirely: those past `keep`, and one whose kept part would lie
        // wholly below `first`.
        let n_remove =
            self.segments.iter().rev().take_while(|s| s.first > keep || keep < self.first).count();
        self.bump_epoch(self.first)?;
        let pending = n_remove > 0;
        if pending {
            hit(Point::LocalTruncateSuffixAcrossSegments);
            if record == Record::Write {
                self.write_pending(PendingOpKind::TruncateSuffix, last_kept)?;
            }
        }
        for _ in 0..n_remove {
            let segment = self.segments.pop().expect("counted above");
            self.remove_segment(segment)?;
            // Back to front, each durable before the next, so a crash never leaves a hole.
            self.vfs.sync_dir(&self.dir)?;
        }
        if self.segments.last().is_some_and(|s| s.last() > keep) {
            self.cut_last_segment(keep)?;
        }
        if pending {
            self.clear_pending()?;
        }
        self.last = keep;
        Ok(())
    }

    /// Cuts the last segment after entry `keep`: a closed one is renamed back to
    /// in-progress first (braft's order), then the file is cut and fsynced.
    fn cut_last_segment(&mut self, keep: Index) -> StorageResult<()> {
        let pinned = self.segments.last().is_some_and(|s| Arc::strong_count(&s.file) > 1);
        if pinned {
            hit(Point::LocalExportPinsSegment);
            self.preserve_for_cuts()?;
        }
        let dir = self.dir.clone();
        let segment = self.segments.last_mut().expect("checked by the caller");
        let position = (keep + 1 - segment.first) as usize;
        let cut = segment.records[position].0;
        if segment.closed {
            hit(Point::LocalTruncateSuffixReopensClosed);
            segment.file.rename(dir.join(open_segment_name(segment.first)))?;
            segment.closed = false;
            self.vfs.sync_dir(&dir)?;
        }
        segment.file.with(|f, _| {
            f.set_len(cut)?;
            Ok(f.sync()?)
        })?;
        Arc::make_mut(&mut segment.records).truncate(position);
        segment.len = cut;
        Ok(())
    }

    /// Copies the last segment's bytes to a `.tmp` name that export cuts keep reading, and
    /// gives the live log a fresh handle on the original file.
    fn preserve_for_cuts(&mut self) -> StorageResult<()> {
        let segment = self.segments.last().expect("checked by the caller").clone();
        let copy_path = self.pinned_name(&segment);
        let copy = self.vfs.open(&copy_path, OpenOptions::CREATE_TRUNCATE)?;
        segment.file.with(|f, path| {
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0u64;
            while at < segment.len {
                let n = (segment.len - at).min(buf.len() as u64) as usize;
                read_exact(f, &mut buf[..n], at, path)?;
                copy.write_at(&buf[..n], at)?;
                at += n as u64;
            }
            Ok(())
        })?;
        drop(copy);
        let original = segment.file.path();
        segment.file.redirect_doomed(copy_path);
        let last = self.segments.last_mut().expect("checked by the caller");
        last.file = SharedFile::new(Arc::clone(&self.vfs), original);
        Ok(())
    }

    /// Empties the log so that it starts at `next`: redo record, `log_meta`, every segment
    /// unlinked, redo record removed.
    pub fn reset(&mut self, next: Index) -> StorageResult<()> {
        check_reset(next)?;
        self.bump_epoch(next)?;
        let pending = !self.segments.is_empty();
        if pending {
            hit(Point::LocalResetWithStaleSegments);
            self.write_pending(PendingOpKind::Reset, next)?;
        }
        self.save_log_meta(next)?;
        while let Some(segment) = self.segments.pop() {
            self.remove_segment(segment)?;
        }
        if pending {
            self.vfs.sync_dir(&self.dir)?;
            self.clear_pending()?;
        }
        self.first = next;
        self.last = next - 1;
        Ok(())
    }

    /// Pins the current log: the cut reads exactly these entries whatever happens next.
    pub fn cut(&self) -> LogCut {
        LogCut { first: self.first, last: self.last, segments: self.segments.clone() }
    }
}

/// The segment holding `index` among `segments` (retaining `first..=last`) and its position.
fn locate(
    segments: &[Segment],
    first: Index,
    last: Index,
    index: Index,
) -> Option<(&Segment, usize)> {
    if index < first || index > last {
        return None;
    }
    let at = segments.partition_point(|s| s.first <= index).checked_sub(1)?;
    let segment = &segments[at];
    let position = usize::try_from(index - segment.first).ok()?;
    (position < segment.records.len()).then_some((segment, position))
}

/// The entry at `index` among `segments`, read and verified against its checksums.
fn read_entry(
    segments: &[Segment],
    first: Index,
    last: Index,
    index: Index,
) -> StorageResult<Option<Entry>> {
    let Some((segment, position)) = locate(segments, first, last, index) else {
        return Ok(None);
    };
    let offset = segment.records[position].0;
    let end = record_end(&segment.records, position, segment.len);
    segment.file.with(|f, path| read_record(f, path, index, offset, end)).map(Some)
}

/// The term of the entry at `index` among `segments`.
fn term_of(segments: &[Segment], first: Index, last: Index, index: Index) -> Option<Term> {
    locate(segments, first, last, index).map(|(segment, position)| segment.records[position].1)
}

/// A pinned view of the log (see the module doc of the family for how it stays valid).
pub struct LogCut {
    first: Index,
    last: Index,
    /// The segments at the cut (records and files shared, copy-on-write, with the log).
    segments: Vec<Segment>,
}

impl LogCut {
    /// First retained index at the cut.
    pub fn first(&self) -> Index {
        self.first
    }

    /// Last retained index at the cut.
    pub fn last(&self) -> Index {
        self.last
    }

    /// The entry at `index` as of the cut.
    pub fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        read_entry(&self.segments, self.first, self.last, index)
    }

    /// The term at `index` as of the cut.
    pub fn term(&self, index: Index) -> Option<Term> {
        term_of(&self.segments, self.first, self.last, index)
    }
}

/// A corruption of the segment layout (a hole, an overlap, a record the directory does not
/// match), counted as a fail-closed refusal of that kind.
fn layout_corruption(
    path: &Path,
    offset: u64,
    what: impl Into<String>,
) -> crate::contract::StorageError {
    hit(Point::LocalRefusedLayout);
    corruption(path, offset, what)
}

/// The checksum type an open with mixed checksums writes: a fixed function of the range at
/// open, so reopens of a growing log alternate between the two without any state.
fn session_checksum(first: Index, last: Index) -> ChecksumType {
    let mut z = first.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ last;
    z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    if (z ^ (z >> 29)) & 1 == 0 {
        ChecksumType::Crc32c
    } else {
        ChecksumType::Murmur3
    }
}

/// What a multi-segment truncation does with its redo record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Record {
    /// Write a new one (a call from the contract).
    Write,
    /// Keep the one already there (completing it at open).
    Keep,
}
