//! A read-only report on a `local://` instance's directories: segments with their ranges,
//! checksum types and tails, `log_meta`, `raft_meta`, snapshots and their files, the
//! family's markers, and a list of anything odd. It changes nothing on disk (no recovery
//! runs), so it can look at a directory that does not open.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::contract::{Index, SnapshotMeta, StorageResult};
use crate::vfs::{FileKind, OpenOptions, VfsErrorKind, VfsHandle};

use super::format::{
    decode_log_epoch, is_padded_segment_name, parse_snapshot_dir_name, sidecar_name, tmp_name,
    ChecksumType, CrossMark, PendingOp, SegmentName, SnapshotManifest, IMPORT_MARKER_NAME,
    LOG_EPOCH_NAME, LOG_META_NAME, PBFILE_BODY_LEN_MAX, PENDING_OP_NAME, PUBLISH_MARKER_NAME,
    RAFT_META_NAME, RETIRED_SNAPSHOT_PREFIX, SNAPSHOT_MANIFEST_NAME, SNAPSHOT_META_NAME,
    SNAPSHOT_TEMP_NAME, TMP_SUFFIX,
};
use super::meta::{decode_raft_meta, load_guarded, SidecarStatus};
use super::proto::{pbfile_decode, LocalSnapshotPbMeta, LogPbMeta};
use super::recover::{scan_segment, Tail};
use super::snapshot::decode_snapshot_meta;
use super::LocalPaths;

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    /// The directories looked at.
    pub paths: LocalPaths,
    /// `log/log_meta`, if present.
    pub log_meta: Option<LogMetaInfo>,
    /// The log's truncation epoch record and the cross mark it holds, if present.
    pub log_epoch: Option<CrossMark>,
    /// Segment files, by first index.
    pub segments: Vec<SegmentInfo>,
    /// `raft_meta/raft_meta`, if present.
    pub raft_meta: Option<RaftMetaInfo>,
    /// Snapshot directories found.
    pub snapshots: Vec<SnapshotInfo>,
    /// Markers of interrupted operations (`qk_pending_op`, imports, publishes).
    pub markers: Vec<String>,
    /// Anything odd, one line each.
    pub flags: Vec<String>,
}

/// `log_meta`.
#[derive(Clone, Debug, Serialize)]
pub struct LogMetaInfo {
    /// `first_log_index`, when it decodes.
    pub first_log_index: Option<i64>,
    /// Checksum sidecar status.
    pub sidecar: SidecarStatus,
}

/// One segment file.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentInfo {
    /// File name.
    pub name: String,
    /// Whether it is the in-progress segment.
    pub open: bool,
    /// First index (from the name).
    pub first: Index,
    /// Last index named (closed) or found (open; `first - 1` when empty).
    pub last: Index,
    /// File length.
    pub bytes: u64,
    /// Records readable before the tail.
    pub entries: usize,
    /// Records per checksum type.
    pub checksum_types: BTreeMap<String, usize>,
    /// Records per entry type.
    pub entry_types: BTreeMap<String, usize>,
    /// Records whose payload checksum fails (read past, as braft does).
    pub bad_payloads: usize,
    /// How the file ends.
    pub tail: Tail,
}

/// `raft_meta`.
#[derive(Clone, Debug, Serialize)]
pub struct RaftMetaInfo {
    /// Term, when it decodes.
    pub term: Option<u64>,
    /// Vote, when it decodes (`None` = no vote).
    pub voted_for: Option<String>,
    /// Checksum sidecar status.
    pub sidecar: SidecarStatus,
    /// Why it does not decode, if it does not.
    pub problem: Option<String>,
}

/// One snapshot directory.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotInfo {
    /// Directory name.
    pub name: String,
    /// Index from the name.
    pub index: Index,
    /// The meta, when it decodes.
    pub meta: Option<SnapshotMeta>,
    /// Files listed in the meta.
    pub files: Vec<SnapshotFileReport>,
    /// Checksum sidecar status of the meta file.
    pub sidecar: Option<SidecarStatus>,
    /// Why the meta does not load, if it does not.
    pub problem: Option<String>,
}

/// One listed snapshot file.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotFileReport {
    /// Relative path.
    pub name: String,
    /// Length on disk (`None` when missing).
    pub len: Option<u64>,
    /// `LocalFileMeta.user_meta`, hex.
    pub user_meta: Option<String>,
    /// `LocalFileMeta.checksum`.
    pub checksum: Option<String>,
    /// `LocalFileMeta.source`.
    pub source: Option<i32>,
}

fn list(vfs: &VfsHandle, dir: &Path) -> StorageResult<Vec<crate::vfs::DirEntry>> {
    match vfs.read_dir(dir) {
        Ok(entries) => Ok(entries),
        Err(e) if e.kind == VfsErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Inspects the instance at `paths` without changing anything.
pub fn inspect(vfs: &VfsHandle, paths: &LocalPaths) -> StorageResult<InspectReport> {
    let mut flags = Vec::new();
    let mut markers = Vec::new();

    // Log.
    let log_meta = match load_guarded(vfs, &paths.log, LOG_META_NAME) {
        Ok(None) => None,
        Ok(Some(file)) => {
            let first_log_index = match pbfile_decode::<LogPbMeta>(&file.bytes) {
                Ok(m) => Some(m.first_log_index),
                Err(p) => {
                    flags.push(format!("log_meta does not decode: {p}"));
                    None
                }
            };
            Some(LogMetaInfo { first_log_index, sidecar: file.status })
        }
        Err(e) => {
            flags.push(format!("log_meta unreadable: {e}"));
            None
        }
    };
    let mut segments = Vec::new();
    let mut log_epoch = None;
    for entry in list(vfs, &paths.log)? {
        let name = entry.name;
        if name.ends_with(TMP_SUFFIX) {
            flags.push(format!("leftover temporary file log/{name} (removed on open)"));
            continue;
        }
        if name == PENDING_OP_NAME {
            let bytes =
                super::files::read_file(vfs, &paths.log.join(&name), 64)?.unwrap_or_default();
            markers.push(match PendingOp::decode(&bytes) {
                Some(op) => {
                    format!("log/{name}: {:?}({}) interrupted, completed on open", op.kind, op.arg)
                }
                None => format!("log/{name}: damaged"),
            });
            continue;
        }
        if name == LOG_EPOCH_NAME {
            let bytes = super::files::read_file(vfs, &paths.log.join(&name), 64)?;
            match bytes.as_deref().and_then(decode_log_epoch) {
                Some(mark) => log_epoch = Some(mark),
                None => flags.push(format!("log/{name}: damaged")),
            }
            continue;
        }
        if name == IMPORT_MARKER_NAME {
            markers.push(format!(
                "log/{name}: an import was interrupted; open wipes the partial state"
            ));
            continue;
        }
        if name == LOG_META_NAME || name == sidecar_name(LOG_META_NAME) {
            continue;
        }
        let Some(segment) = SegmentName::parse(&name) else {
            flags.push(format!("unrecognised file log/{name}"));
            continue;
        };
        if !is_padded_segment_name(&name) {
            flags.push(format!("log/{name}: index not padded to 20 digits (braft cannot open it)"));
        }
        let path = paths.log.join(&name);
        let file = vfs.open(&path, OpenOptions::READ)?;
        let scan = scan_segment(file.as_ref(), &path)?;
        let mut checksum_types = BTreeMap::new();
        let mut entry_types = BTreeMap::new();
        for r in &scan.records {
            let ck =
                ChecksumType::from_number(r.checksum_type).map(|c| c.name()).unwrap_or("unknown");
            *checksum_types.entry(ck.to_string()).or_insert(0) += 1;
            let kind = crate::contract::EntryKind::from_number(r.entry_type)
                .map(|k| k.name())
                .unwrap_or("unknown");
            *entry_types.entry(kind.to_string()).or_insert(0) += 1;
        }
        let (first, last, open) = match segment {
            SegmentName::Closed { first, last } => (first, last, false),
            SegmentName::Open { first } => {
                (first, (first + scan.records.len() as u64).saturating_sub(1), true)
            }
        };
        if !open && (last < first || scan.records.len() as u64 != last - first + 1) {
            flags.push(format!(
                "log/{name}: holds {} entries, the name promises {}",
                scan.records.len(),
                (last + 1).saturating_sub(first)
            ));
        }
        match &scan.tail {
            Tail::Clean => {}
            Tail::Torn { offset, what } => {
                flags.push(format!("log/{name}: torn tail at byte {offset}: {what}"))
            }
            Tail::Corrupt { offset, what, .. } => {
                flags.push(format!("log/{name}: corrupt record at byte {offset}: {what}"))
            }
        }
        let bad_payloads = scan.records.iter().filter(|r| !r.payload_ok).count();
        if bad_payloads > 0 {
            flags.push(format!("log/{name}: {bad_payloads} record(s) with a bad payload checksum"));
        }
        segments.push(SegmentInfo {
            name,
            open,
            first,
            last,
            bytes: scan.file_len,
            entries: scan.records.len(),
            checksum_types,
            entry_types,
            bad_payloads,
            tail: scan.tail,
        });
    }
    segments.sort_by_key(|s| (s.first, s.open));
    if segments.iter().filter(|s| s.open).count() > 1 {
        flags.push("more than one in-progress segment".into());
    }
    for pair in segments.windows(2) {
        if pair[1].first != pair[0].last + 1 {
            flags
                .push(format!("segments {} and {} are not contiguous", pair[0].name, pair[1].name));
        }
    }
    match (&log_meta, segments.is_empty()) {
        (None, false) => {
            flags.push("log_meta missing next to segments (braft would delete the log)".into())
        }
        (Some(LogMetaInfo { first_log_index: Some(first), .. }), false)
            if segments[0].first as i64 > *first =>
        {
            flags.push(format!(
                "hole: first segment starts at {}, log_meta says {first}",
                segments[0].first
            ));
        }
        _ => {}
    }
    if let Some(m) = &log_meta {
        flag_sidecar(&mut flags, "log/log_meta", m.sidecar);
    }

    // Meta.
    let raft_meta = match load_guarded(vfs, &paths.raft_meta, RAFT_META_NAME) {
        Ok(None) => None,
        Ok(Some(file)) => {
            let path = paths.raft_meta.join(RAFT_META_NAME);
            flag_sidecar(&mut flags, "raft_meta/raft_meta", file.status);
            Some(match decode_raft_meta(&file.bytes, &path) {
                Ok(m) => RaftMetaInfo {
                    term: Some(m.term),
                    voted_for: m.voted_for.map(|p| p.to_string()),
                    sidecar: file.status,
                    problem: None,
                },
                Err(e) => {
                    flags.push(format!("raft_meta does not load: {e}"));
                    RaftMetaInfo {
                        term: None,
                        voted_for: None,
                        sidecar: file.status,
                        problem: Some(e.to_string()),
                    }
                }
            })
        }
        Err(e) => {
            flags.push(format!("raft_meta unreadable: {e}"));
            None
        }
    };

    // Snapshots.
    let mut snapshots = Vec::new();
    for entry in list(vfs, &paths.snapshot)? {
        let name = entry.name;
        if name == PUBLISH_MARKER_NAME {
            markers.push(format!("snapshot/{name}: a publish was interrupted; open finishes it"));
            continue;
        }
        if name == tmp_name(PUBLISH_MARKER_NAME) {
            markers.push(format!(
                "snapshot/{name}: a publish marker cut short before its rename (removed on open)"
            ));
            continue;
        }
        if name.starts_with(RETIRED_SNAPSHOT_PREFIX) {
            flags.push(format!(
                "snapshot/{name}: kept for an export cut of a running instance (removed on open)"
            ));
            continue;
        }
        if name == SNAPSHOT_TEMP_NAME {
            flags.push("snapshot/temp exists: an unpublished snapshot (removed on open)".into());
            continue;
        }
        let Some(index) = parse_snapshot_dir_name(&name).filter(|_| entry.kind == FileKind::Dir)
        else {
            flags.push(format!("unrecognised entry snapshot/{name}"));
            continue;
        };
        let dir = paths.snapshot.join(&name);
        snapshots.push(inspect_snapshot(vfs, &dir, name, index, &mut flags)?);
    }
    if snapshots.len() > 1 {
        flags.push(format!("{} snapshot directories; open keeps the highest", snapshots.len()));
    }
    Ok(InspectReport {
        paths: paths.clone(),
        log_meta,
        log_epoch,
        segments,
        raft_meta,
        snapshots,
        markers,
        flags,
    })
}

fn flag_sidecar(flags: &mut Vec<String>, what: &str, status: SidecarStatus) {
    match status {
        SidecarStatus::Verified => {}
        SidecarStatus::Missing => {
            flags.push(format!("{what}: no checksum sidecar (legacy file, unverified)"))
        }
        SidecarStatus::Replaced => flags.push(format!(
            "{what}: rewritten by braft since this family last saved it (a newer file than its \
             checksum sidecar names; checked by braft's format only)"
        )),
        SidecarStatus::Mismatch => flags.push(format!(
            "{what}: does not match its checksum sidecar (changed in place: damaged; or, for a \
             sidecar without a file id, rewritten by braft)"
        )),
        SidecarStatus::Older => flags.push(format!(
            "{what}: an older file than its checksum sidecar names (a lost write, or damage)"
        )),
        SidecarStatus::Unreadable => flags.push(format!("{what}: checksum sidecar is damaged")),
    }
}

fn inspect_snapshot(
    vfs: &VfsHandle,
    dir: &Path,
    name: String,
    index: Index,
    flags: &mut Vec<String>,
) -> StorageResult<SnapshotInfo> {
    let mut info = SnapshotInfo {
        name: name.clone(),
        index,
        meta: None,
        files: Vec::new(),
        sidecar: None,
        problem: None,
    };
    if format!("{index:020}") != name.trim_start_matches(super::format::SNAPSHOT_PREFIX) {
        flags.push(format!("snapshot/{name}: index not padded to 20 digits (braft ignores it)"));
    }
    let file = match load_guarded(vfs, dir, SNAPSHOT_META_NAME) {
        Ok(Some(file)) => file,
        Ok(None) => {
            info.problem = Some("no __raft_snapshot_meta".into());
            flags.push(format!("snapshot/{name}: no __raft_snapshot_meta"));
            return Ok(info);
        }
        Err(e) => {
            info.problem = Some(e.to_string());
            flags.push(format!("snapshot/{name}: {e}"));
            return Ok(info);
        }
    };
    info.sidecar = Some(file.status);
    flag_sidecar(flags, &format!("snapshot/{name}/{SNAPSHOT_META_NAME}"), file.status);
    let manifest_path = dir.join(SNAPSHOT_MANIFEST_NAME);
    match super::files::read_file(vfs, &manifest_path, PBFILE_BODY_LEN_MAX)? {
        None => flags.push(format!(
            "snapshot/{name}: no checksum manifest (written by braft; reads are unverified)"
        )),
        Some(bytes) if SnapshotManifest::decode(&bytes).is_none() => {
            flags.push(format!("snapshot/{name}: checksum manifest is damaged"))
        }
        Some(_) => {}
    }
    let meta_path = dir.join(SNAPSHOT_META_NAME);
    match decode_snapshot_meta(&file.bytes, &meta_path) {
        Ok((meta, _)) => {
            if meta.last_included_index != index {
                flags.push(format!(
                    "snapshot/{name}: meta index {} differs from the name",
                    meta.last_included_index
                ));
            }
            info.meta = Some(meta);
        }
        Err(e) => {
            info.problem = Some(e.to_string());
            flags.push(format!("snapshot/{name}: {e}"));
        }
    }
    if let Ok(msg) = pbfile_decode::<LocalSnapshotPbMeta>(&file.bytes) {
        for f in msg.files {
            let len = match vfs.metadata(&dir.join(&f.name)) {
                Ok(m) => Some(m.len),
                Err(_) => {
                    flags.push(format!("snapshot/{name}: listed file {} is missing", f.name));
                    None
                }
            };
            let meta = f.meta.unwrap_or_default();
            info.files.push(SnapshotFileReport {
                name: f.name,
                len,
                user_meta: meta.user_meta.map(hex::encode),
                checksum: meta.checksum,
                source: meta.source,
            });
        }
    }
    Ok(info)
}

fn join_peers(peers: &[crate::contract::PeerId]) -> String {
    peers.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "local instance")?;
        writeln!(f, "  log:       {}", self.paths.log.display())?;
        writeln!(f, "  raft_meta: {}", self.paths.raft_meta.display())?;
        writeln!(f, "  snapshot:  {}", self.paths.snapshot.display())?;
        match &self.log_meta {
            None => writeln!(f, "log_meta: absent")?,
            Some(m) => writeln!(
                f,
                "log_meta: first_log_index {} (sidecar {:?})",
                m.first_log_index.map(|i| i.to_string()).unwrap_or_else(|| "?".into()),
                m.sidecar
            )?,
        }
        if let Some(m) = &self.log_epoch {
            writeln!(
                f,
                "log epoch: {} (raft_meta saves {}, snapshot publishes {})",
                m.epoch, m.meta_seq, m.snapshot_seq
            )?;
        }
        writeln!(f, "segments: {}", self.segments.len())?;
        for s in &self.segments {
            let types: Vec<String> =
                s.checksum_types.iter().map(|(k, v)| format!("{k}×{v}")).collect();
            writeln!(
                f,
                "  {:<47} [{}, {}] {} entries, {} bytes, {}{}",
                s.name,
                s.first,
                s.last,
                s.entries,
                s.bytes,
                if types.is_empty() { "no records".to_string() } else { types.join(" ") },
                match &s.tail {
                    Tail::Clean => String::new(),
                    Tail::Torn { offset, .. } => format!(", torn at {offset}"),
                    Tail::Corrupt { offset, .. } => format!(", CORRUPT at {offset}"),
                }
            )?;
        }
        match &self.raft_meta {
            None => writeln!(f, "raft_meta: absent (term 1, no vote)")?,
            Some(m) => writeln!(
                f,
                "raft_meta: term {} vote {} (sidecar {:?})",
                m.term.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                m.voted_for.as_deref().unwrap_or("none"),
                m.sidecar
            )?,
        }
        writeln!(f, "snapshots: {}", self.snapshots.len())?;
        for s in &self.snapshots {
            match &s.meta {
                Some(m) => writeln!(
                    f,
                    "  {} index {} term {} peers [{}] old_peers [{}]",
                    s.name,
                    m.last_included_index,
                    m.last_included_term,
                    join_peers(&m.peers),
                    join_peers(&m.old_peers)
                )?,
                None => writeln!(f, "  {} (meta not loaded)", s.name)?,
            }
            for file in &s.files {
                writeln!(
                    f,
                    "    {} {} bytes{}",
                    file.name,
                    file.len.map(|l| l.to_string()).unwrap_or_else(|| "MISSING".into()),
                    file.user_meta.as_ref().map(|m| format!(" user_meta {m}")).unwrap_or_default()
                )?;
            }
        }
        for m in &self.markers {
            writeln!(f, "marker: {m}")?;
        }
        if self.flags.is_empty() {
            writeln!(f, "flags: none")?;
        } else {
            writeln!(f, "flags:")?;
            for flag in &self.flags {
                writeln!(f, "  ! {flag}")?;
            }
        }
        Ok(())
    }
}
