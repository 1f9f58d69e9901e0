//! `inspect`: what a `redb://FILE` database holds, for `qk inspect redb://FILE`.
//!
//! The database is opened **read-only** (nothing is written, not even a repair); a file that
//! needs crash recovery is refused with a message saying so (opening it once with the family
//! repairs it). Every record is read and its seal checked, so inspecting a large log reads the
//! whole file, but nothing is held in memory beyond one record at a time. Anything odd
//! (damaged records, tables disagreeing with the log range, orphan chunks, a leftover
//! `FILE.creating`) is listed under `problems`.

use std::fmt;
use std::path::Path;

use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use super::backend::{IoLatch, VfsBackend};
use super::engine;
use super::fail::{quiet_drop, Ctx, Fail};
use super::schema::{
    decode_chunk, decode_entry, decode_file, decode_format, decode_raft_meta, decode_range,
    decode_snapshot_meta, FileRecord, FilesSeal, ENTRIES, FORMAT_VERSION, KEY_FORMAT,
    KEY_LOG_RANGE, KEY_RAFT_META, KEY_SNAPSHOT_META, META, SNAPSHOT_CHUNKS, SNAPSHOT_FILES,
};
use super::storage::creating_path;
use crate::contract::{EntryKind, FileSource, Payload, StorageResult};
use crate::vfs::{OpenOptions, VfsHandle};

/// Most problems listed one by one; the rest are counted.
pub const PROBLEMS_MAX: usize = 32;

/// What `inspect` found in a `redb://` database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InspectReport {
    /// The database file.
    pub file: String,
    /// Its length in bytes.
    pub file_len: u64,
    /// The schema format version stored in it.
    pub format_version: Option<u32>,
    /// The retained log.
    pub log: Option<LogReport>,
    /// Term and vote (absent record: the initial meta).
    pub meta: Option<MetaReport>,
    /// The latest snapshot.
    pub snapshot: Option<SnapshotReport>,
    /// Per-table sizes.
    pub tables: Vec<TableReport>,
    /// Whether a leftover `FILE.creating` (an interrupted creation) lies next to the file.
    pub leftover_creating_file: bool,
    /// Whether the database was not shut down cleanly and needs redb's crash recovery, which
    /// a read-only inspection does not do (the next open with the family does it); nothing
    /// but the file's length is reported then.
    pub needs_recovery: bool,
    /// Everything odd, in words (at most [`PROBLEMS_MAX`]).
    pub problems: Vec<String>,
    /// Problems found beyond the listed ones.
    pub problems_not_listed: u64,
}

/// The retained log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LogReport {
    /// First retained index.
    pub first: u64,
    /// Last retained index.
    pub last: u64,
    /// Entries stored in `qk_entries`.
    pub entries: u64,
    /// No-op entries.
    pub no_op: u64,
    /// Data entries.
    pub data: u64,
    /// Configuration entries.
    pub configuration: u64,
    /// Total data payload bytes.
    pub payload_bytes: u64,
    /// Lowest and highest stored term.
    pub terms: Option<(u64, u64)>,
}

/// Term and vote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetaReport {
    /// Current term.
    pub term: u64,
    /// Voted for, if anyone.
    pub voted_for: Option<String>,
}

/// The latest snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotReport {
    /// Last included index.
    pub last_included_index: u64,
    /// Last included term.
    pub last_included_term: u64,
    /// Peers.
    pub peers: Vec<String>,
    /// Old peers.
    pub old_peers: Vec<String>,
    /// Its files, by path.
    pub files: Vec<FileReport>,
}

/// One snapshot file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// Relative path.
    pub path: String,
    /// Length in bytes.
    pub len: u64,
    /// Length of its file metadata's `user_meta`, if set.
    pub user_meta_len: Option<usize>,
    /// Its file metadata's `source`, if set.
    pub source: Option<FileSource>,
    /// Its file metadata's `checksum`, if set.
    pub checksum: Option<String>,
    /// Chunks holding it.
    pub chunks: u64,
}

/// Size of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TableReport {
    /// Table name.
    pub name: String,
    /// Records.
    pub records: u64,
    /// Bytes of keys and values stored.
    pub stored_bytes: u64,
    /// Leaf pages.
    pub leaf_pages: u64,
    /// Branch pages.
    pub branch_pages: u64,
}

impl InspectReport {
    fn problem(&mut self, what: String) {
        if self.problems.len() < PROBLEMS_MAX {
            self.problems.push(what);
        } else {
            self.problems_not_listed += 1;
        }
    }
}

/// Inspects the `redb://` database at `location` (the URI without `redb://`) on `vfs`.
pub fn inspect(location: &str, vfs: VfsHandle) -> StorageResult<InspectReport> {
    let path = Path::new(location);
    let file = vfs.open(path, OpenOptions::READ)?;
    let mut report = InspectReport {
        file: location.to_string(),
        file_len: file.len()?,
        leftover_creating_file: vfs.exists(&creating_path(path))?,
        ..InspectReport::default()
    };
    if report.leftover_creating_file {
        report.problem(format!(
            "{} exists: a database creation was interrupted (the next open removes it)",
            creating_path(path).display()
        ));
    }
    let latch = IoLatch::new();
    let ctx = Ctx { path: path.to_path_buf(), latch: latch.clone() };
    let backend = VfsBackend::new(file, path, latch.clone());
    let opened = ctx.shield(|| {
        engine::read_only_transaction(&Database::builder(), backend, &vfs, path, latch)
    })?;
    let Some(engine::ReadOnlyTxn { txn, keep_alive }) = opened else {
        report.needs_recovery = true;
        report.problem(
            "the database was not shut down cleanly and needs crash recovery, which a \
             read-only inspection does not do (the next open with the redb family does it)"
                .to_string(),
        );
        return Ok(report);
    };
    let filled = ctx.shield(|| fill(&txn, &mut report));
    quiet_drop(txn);
    drop(keep_alive);
    filled.map(|()| report)
}

fn table_report<K: redb::Key + 'static, V: redb::Value + 'static>(
    table: &ReadOnlyTable<K, V>,
    name: &str,
) -> Result<TableReport, Fail> {
    let stats = table.stats()?;
    Ok(TableReport {
        name: name.to_string(),
        records: table.len()?,
        stored_bytes: stats.stored_bytes(),
        leaf_pages: stats.leaf_pages(),
        branch_pages: stats.branch_pages(),
    })
}

fn fill(txn: &ReadTransaction, report: &mut InspectReport) -> Result<(), Fail> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(name)) => {
            report.problem(format!("table {name} is missing: not a database of this family"));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    report.tables.push(table_report(&meta, "qk_meta")?);
    let record = |key: &str| -> Result<Option<Vec<u8>>, Fail> {
        Ok(meta.get(key)?.map(|g| g.value().to_vec()))
    };
    match record(KEY_FORMAT)?.map(|v| decode_format(&v)) {
        None => report.problem("no format version record".to_string()),
        Some(Err(what)) => report.problem(format!("format version record: {what}")),
        Some(Ok(v)) => {
            report.format_version = Some(v);
            if v != FORMAT_VERSION {
                report.problem(format!("format version {v}; this build reads {FORMAT_VERSION}"));
            }
        }
    }
    let range = match record(KEY_LOG_RANGE)?.map(|v| decode_range(&v)) {
        None => {
            report.problem("no log_range record".to_string());
            None
        }
        Some(Err(what)) => {
            report.problem(format!("log_range record: {what}"));
            None
        }
        Some(Ok(r)) => Some(r),
    };
    match record(KEY_RAFT_META)?.map(|v| decode_raft_meta(&v)) {
        None => report.meta = Some(MetaReport { term: 1, voted_for: None }),
        Some(Err(what)) => report.problem(format!("raft_meta record: {what}")),
        Some(Ok(m)) => {
            report.meta = Some(MetaReport {
                term: m.term,
                voted_for: m.voted_for.map(|p| p.as_str().to_string()),
            })
        }
    }
    let snapshot_meta = match record(KEY_SNAPSHOT_META)?.map(|v| decode_snapshot_meta(&v)) {
        None => None,
        Some(Err(what)) => {
            report.problem(format!("snapshot_meta record: {what}"));
            None
        }
        Some(Ok(m)) => Some(m),
    };
    for item in meta.iter()? {
        let (key, _) = item?;
        let key = key.value();
        if ![KEY_FORMAT, KEY_LOG_RANGE, KEY_RAFT_META, KEY_SNAPSHOT_META].contains(&key) {
            report.problem(format!("unknown qk_meta record {key:?}"));
        }
    }
    fill_log(txn, report, range)?;
    let (files, seal) = fill_files(txn, report)?;
    if let Some((m, expected)) = snapshot_meta {
        if seal != expected {
            report.problem(format!(
                "the file list ({} files, CRC {:08x}) does not match the one the snapshot meta \
                 sealed ({} files, CRC {:08x})",
                seal.count, seal.crc, expected.count, expected.crc
            ));
        }
        report.snapshot = Some(SnapshotReport {
            last_included_index: m.last_included_index,
            last_included_term: m.last_included_term,
            peers: m.peers.iter().map(|p| p.as_str().to_string()).collect(),
            old_peers: m.old_peers.iter().map(|p| p.as_str().to_string()).collect(),
            files,
        });
    } else if !files.is_empty() {
        report.problem(format!("{} snapshot files stored without a snapshot meta", files.len()));
    }
    Ok(())
}

fn fill_log(
    txn: &ReadTransaction,
    report: &mut InspectReport,
    range: Option<(u64, u64)>,
) -> Result<(), Fail> {
    let entries = match txn.open_table(ENTRIES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(name)) => {
            report.problem(format!("table {name} is missing"));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    report.tables.push(table_report(&entries, "qk_entries")?);
    let (first, last) = range.unwrap_or((1, 0));
    let mut log = LogReport { first, last, ..LogReport::default() };
    let mut expected = first;
    for item in entries.iter()? {
        let (key, value) = item?;
        let index = key.value();
        log.entries += 1;
        if index != expected {
            report.problem(format!("qk_entries: key {index} where {expected} was expected"));
        }
        expected = index.saturating_add(1);
        match decode_entry(index, value.value()) {
            Err(what) => report.problem(format!("qk_entries, key {index}: {what}")),
            Ok(e) => {
                let terms = log.terms.get_or_insert((e.term, e.term));
                *terms = (terms.0.min(e.term), terms.1.max(e.term));
                match (e.kind(), &e.payload) {
                    (_, Payload::Data(b)) => {
                        log.data += 1;
                        log.payload_bytes += b.len() as u64;
                    }
                    (EntryKind::Configuration, _) => log.configuration += 1,
                    _ => log.no_op += 1,
                }
            }
        }
    }
    if range.is_some() && log.entries != last + 1 - first {
        report.problem(format!(
            "qk_entries holds {} entries but the log range [{first}, {last}] needs {}",
            log.entries,
            last + 1 - first
        ));
    }
    report.log = Some(log);
    Ok(())
}

fn fill_files(
    txn: &ReadTransaction,
    report: &mut InspectReport,
) -> Result<(Vec<FileReport>, FilesSeal), Fail> {
    let (files, chunks) = match (txn.open_table(SNAPSHOT_FILES), txn.open_table(SNAPSHOT_CHUNKS)) {
        (Ok(f), Ok(c)) => (f, c),
        (Err(redb::TableError::TableDoesNotExist(name)), _)
        | (_, Err(redb::TableError::TableDoesNotExist(name))) => {
            report.problem(format!("table {name} is missing"));
            return Ok((Vec::new(), FilesSeal::default()));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    };
    report.tables.push(table_report(&files, "qk_snapshot_files")?);
    report.tables.push(table_report(&chunks, "qk_snapshot_chunks")?);
    let mut out = Vec::new();
    let mut records: Vec<(String, FileRecord)> = Vec::new();
    let mut seal = FilesSeal::default();
    for item in files.iter()? {
        let (key, value) = item?;
        let path = key.value().to_string();
        match decode_file(&path, value.value()) {
            Err(what) => report.problem(format!("qk_snapshot_files, key {path:?}: {what}")),
            Ok(record) => {
                seal.add(&path, &record);
                out.push(FileReport {
                    path: path.clone(),
                    len: record.len,
                    user_meta_len: record.file_meta.user_meta.as_ref().map(|m| m.len()),
                    source: record.file_meta.source,
                    checksum: record.file_meta.checksum.clone(),
                    chunks: record.chunk_count(),
                });
                records.push((path, record));
            }
        }
    }
    // Every chunk, in key order: (path, chunk) pairs must be exactly those the records need.
    for item in chunks.iter()? {
        let (key, value) = item?;
        let (path, chunk) = key.value();
        let record = records.iter().find(|(p, _)| p == path).map(|(_, r)| r);
        match record {
            None => report.problem(format!("orphan chunk ({path:?}, {chunk}): no such file")),
            Some(r) if chunk >= r.chunk_count() => report.problem(format!(
                "orphan chunk ({path:?}, {chunk}): the file has {} chunks",
                r.chunk_count()
            )),
            Some(r) => match decode_chunk(path, chunk, value.value()) {
                Err(what) => report.problem(format!("chunk ({path:?}, {chunk}): {what}")),
                Ok(data) if data.len() != r.chunk_len(chunk) => report.problem(format!(
                    "chunk ({path:?}, {chunk}): {} bytes, expected {}",
                    data.len(),
                    r.chunk_len(chunk)
                )),
                Ok(_) => {}
            },
        }
    }
    for (path, record) in &records {
        let stored = chunks.range((path.as_str(), 0)..=(path.as_str(), u64::MAX))?.count() as u64;
        if stored < record.chunk_count() {
            report.problem(format!(
                "file {path:?}: {stored} of its {} chunks are stored",
                record.chunk_count()
            ));
        }
    }
    Ok((out, seal))
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "redb database {} ({} bytes)", self.file, self.file_len)?;
        match self.format_version {
            Some(v) => writeln!(f, "  format version  {v}")?,
            None => writeln!(f, "  format version  (none)")?,
        }
        if let Some(log) = &self.log {
            writeln!(
                f,
                "  log range       [{}, {}] ({} entries stored)",
                log.first, log.last, log.entries
            )?;
            writeln!(
                f,
                "  entries         {} data ({} payload bytes), {} configuration, {} no-op",
                log.data, log.payload_bytes, log.configuration, log.no_op
            )?;
            if let Some((low, high)) = log.terms {
                writeln!(f, "  entry terms     {low}..={high}")?;
            }
        }
        if let Some(meta) = &self.meta {
            let vote = meta.voted_for.as_deref().unwrap_or("(none)");
            writeln!(f, "  meta            term {}, voted for {vote}", meta.term)?;
        }
        match &self.snapshot {
            None => writeln!(f, "  snapshot        (none)")?,
            Some(s) => {
                writeln!(
                    f,
                    "  snapshot        index {} term {}, peers [{}], old peers [{}], {} files",
                    s.last_included_index,
                    s.last_included_term,
                    s.peers.join(", "),
                    s.old_peers.join(", "),
                    s.files.len()
                )?;
                for file in &s.files {
                    let mut parts = Vec::new();
                    if let Some(n) = file.user_meta_len {
                        parts.push(format!("user_meta {n} bytes"));
                    }
                    if let Some(s) = file.source {
                        parts.push(format!("source {}", s.name()));
                    }
                    if let Some(c) = &file.checksum {
                        parts.push(format!("checksum {c:?}"));
                    }
                    let meta = if parts.is_empty() {
                        "no file meta".to_string()
                    } else {
                        parts.join(", ")
                    };
                    writeln!(
                        f,
                        "    {}  {} bytes, {} chunks, {meta}",
                        file.path, file.len, file.chunks
                    )?;
                }
            }
        }
        writeln!(f, "  tables")?;
        for t in &self.tables {
            writeln!(
                f,
                "    {:<20} {:>8} records {:>12} bytes {:>6} leaf pages {:>4} branch pages",
                t.name, t.records, t.stored_bytes, t.leaf_pages, t.branch_pages
            )?;
        }
        if self.problems.is_empty() {
            writeln!(f, "  problems        none")?;
        } else {
            writeln!(f, "  problems")?;
            for p in &self.problems {
                writeln!(f, "    - {p}")?;
            }
            if self.problems_not_listed > 0 {
                writeln!(f, "    ... and {} more", self.problems_not_listed)?;
            }
        }
        Ok(())
    }
}
