//! The streaming writer and `export`.

use std::io::{BufWriter, Write};

use sha2::{Digest, Sha256};

use super::error::{ErrorClass, ImageError, Location};
use super::format::{
    path_order, BodyWriter, RecordKind, CHUNK_LEN, FLAG_IGNORABLE, FORMAT_MAJOR, FORMAT_MINOR,
    FRAME_HEADER_LEN, MAGIC, RECORD_BODY_LEN_MAX,
};
use super::grammar::{Grammar, Step};
use super::record::{
    check_entry, check_extension, check_file, check_header, check_meta, check_snapshot_meta,
    encode_chunk, encode_cut, encode_end, encode_entry, encode_extension, encode_file,
    encode_header, encode_meta, encode_snapshot, Cut, Extension, Fault, Header,
};
use super::ImageSummary;
use crate::contract::{
    Entry, Meta, SnapshotFileInfo, SnapshotMeta, StateView, StorageError, StorageResult,
};

/// Bytes of the buffer `export` puts in front of its output.
const EXPORT_BUFFER_LEN: usize = 256 << 10;

/// Writes an image record by record, checking every record against the same rules the
/// reader applies before a byte of it is written. Memory: one record body.
///
/// Call order: [`ImageWriter::new`] (magic, HEADER, CUT), `entry` for each retained index,
/// `meta`, then (when the CUT has a snapshot) `snapshot` and per file `file` plus its
/// `chunk`s, then any `extension`s, then [`ImageWriter::finish`] (END and the digest).
/// After an error the writer's output is unusable and the writer should be dropped.
pub struct ImageWriter<W: Write> {
    out: W,
    offset: u64,
    sha: Sha256,
    grammar: Grammar,
    record_number: u64,
    body: BodyWriter,
    header: Header,
    cut: Cut,
}

impl<W: Write> std::fmt::Debug for ImageWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageWriter")
            .field("offset", &self.offset)
            .field("record_number", &self.record_number)
            .finish_non_exhaustive()
    }
}

impl<W: Write> ImageWriter<W> {
    /// Starts an image: writes the magic, the HEADER and the CUT.
    pub fn new(
        out: W,
        source_family: &str,
        source_family_version: u32,
        cut: &Cut,
    ) -> Result<Self, ImageError> {
        let header = Header {
            format_major: FORMAT_MAJOR,
            format_minor: FORMAT_MINOR,
            source_family: source_family.to_string(),
            source_family_version,
        };
        let mut writer = ImageWriter {
            out,
            offset: 0,
            sha: Sha256::new(),
            grammar: Grammar::new(),
            record_number: 0,
            body: BodyWriter::default(),
            header,
            cut: *cut,
        };
        writer.fail_on(RecordKind::Header, check_header(&writer.header))?;
        writer.write_raw(&MAGIC)?;
        let header = writer.header.clone();
        writer.record(RecordKind::Header, 0, None, |w| encode_header(w, &header))?;
        writer.record(RecordKind::Cut, 0, Some(Step::Cut(cut)), |w| encode_cut(w, cut))?;
        Ok(writer)
    }

    /// How many bytes have been written.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes the ENTRY for the next retained index.
    pub fn entry(&mut self, entry: &Entry) -> Result<(), ImageError> {
        self.fail_on(RecordKind::Entry, check_entry(entry))?;
        self.record(RecordKind::Entry, 0, Some(Step::Entry(entry.index)), |w| {
            encode_entry(w, entry)
        })
    }

    /// Writes META.
    pub fn meta(&mut self, meta: &Meta) -> Result<(), ImageError> {
        self.fail_on(RecordKind::Meta, check_meta(meta))?;
        self.record(RecordKind::Meta, 0, Some(Step::Meta), |w| encode_meta(w, meta))
    }

    /// Writes SNAPSHOT.
    pub fn snapshot(&mut self, meta: &SnapshotMeta) -> Result<(), ImageError> {
        self.fail_on(RecordKind::Snapshot, check_snapshot_meta(meta))?;
        self.record(RecordKind::Snapshot, 0, Some(Step::Snapshot), |w| encode_snapshot(w, meta))
    }

    /// Writes a FILE; its bytes follow as `chunk`s.
    pub fn file(&mut self, info: &SnapshotFileInfo) -> Result<(), ImageError> {
        self.fail_on(RecordKind::File, check_file(info))?;
        self.record(RecordKind::File, 0, Some(Step::File(info.path.as_str(), info.len)), |w| {
            encode_file(w, info)
        })
    }

    /// Writes a CHUNK of the current file: `offset` is where `data` starts in the file, and
    /// `data` must be the canonical chunk there ([`CHUNK_LEN`] bytes, or the file's rest).
    pub fn chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), ImageError> {
        self.record(RecordKind::Chunk, 0, Some(Step::Chunk(offset, data.len())), |w| {
            encode_chunk(w, offset, data)
        })
    }

    /// Writes an EXTENSION (after the snapshot section, sorted by name then version).
    pub fn extension(&mut self, ext: &Extension) -> Result<(), ImageError> {
        self.fail_on(RecordKind::Extension, check_extension(ext))?;
        let flags = if ext.ignorable { FLAG_IGNORABLE } else { 0 };
        self.record(
            RecordKind::Extension,
            flags,
            Some(Step::Extension(&ext.name, ext.version)),
            |w| encode_extension(w, ext),
        )
    }

    /// Writes END and the digest, flushes, and gives back the output and a summary.
    pub fn finish(mut self) -> Result<(W, ImageSummary), ImageError> {
        let number = self.record_number;
        self.record(RecordKind::End, 0, Some(Step::End(number, number)), |w| {
            encode_end(w, number)
        })?;
        let digest = self.sha.clone().finalize();
        self.write_raw(&digest)?;
        let offset = self.offset;
        self.out.flush().map_err(|source| ImageError::Io { offset, source })?;
        let summary = ImageSummary::new(
            &self.header,
            &self.cut,
            self.record_number,
            0,
            self.offset,
            hex::encode(digest),
        );
        Ok((self.out, summary))
    }

    fn location(&self, kind: RecordKind) -> Location {
        Location::Record { number: self.record_number, kind: Some(kind as u8) }
    }

    fn fail_on(&self, kind: RecordKind, result: Result<(), Fault>) -> Result<(), ImageError> {
        result.map_err(|f| ImageError::format(f.class, self.offset, self.location(kind), f.detail))
    }

    fn record(
        &mut self,
        kind: RecordKind,
        flags: u8,
        step: Option<Step<'_>>,
        encode: impl FnOnce(&mut BodyWriter),
    ) -> Result<(), ImageError> {
        if let Some(step) = step {
            let result = self.grammar.accept(step);
            self.fail_on(kind, result)?;
        }
        let mut body = std::mem::take(&mut self.body);
        body.buf.clear();
        encode(&mut body);
        let result = self.write_record(kind, flags, &body.buf);
        self.body = body;
        result
    }

    fn write_record(&mut self, kind: RecordKind, flags: u8, body: &[u8]) -> Result<(), ImageError> {
        let body_len = match u32::try_from(body.len()) {
            Ok(n) if n <= RECORD_BODY_LEN_MAX => n,
            _ => {
                return Err(ImageError::format(
                    ErrorClass::OverLimit,
                    self.offset,
                    self.location(kind),
                    format!(
                        "a {} record of {} bytes, the limit is {RECORD_BODY_LEN_MAX}",
                        kind.name(),
                        body.len()
                    ),
                ))
            }
        };
        let mut frame = [0u8; FRAME_HEADER_LEN];
        frame[0] = kind as u8;
        frame[1] = flags;
        frame[2..6].copy_from_slice(&body_len.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&frame), body);
        self.write_raw(&frame)?;
        self.write_raw(body)?;
        self.write_raw(&crc.to_le_bytes())?;
        self.record_number += 1;
        Ok(())
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        let offset = self.offset;
        self.out.write_all(bytes).map_err(|source| ImageError::Io { offset, source })?;
        self.sha.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

/// Exports the state `view` shows (a pinned cut from `begin_export`, or any view) as an
/// image, streaming entries and snapshot files in bounded pieces.
pub fn export(
    view: &dyn StateView,
    source_family: &str,
    family_version: u32,
    out: impl Write,
) -> Result<ImageSummary, ImageError> {
    export_with_extensions(view, source_family, family_version, &[], out)
}

/// [`export`] plus extension sections (sorted by name, then version).
pub fn export_with_extensions(
    view: &dyn StateView,
    source_family: &str,
    family_version: u32,
    extensions: &[Extension],
    out: impl Write,
) -> Result<ImageSummary, ImageError> {
    let source = |offset: u64| move |source: StorageError| ImageError::Source { offset, source };
    let first = view.first_index();
    let last = view.last_index();
    let snapshot = view.snapshot_meta().map_err(source(0))?;
    let mut files = match snapshot {
        Some(_) => view.snapshot_files().map_err(source(0))?,
        None => Vec::new(),
    };
    files.sort_by(|a, b| path_order(a.path.as_str(), b.path.as_str()));
    let snapshot_bytes = files
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.len))
        .ok_or_else(|| source(0)(inconsistent("snapshot file lengths add up past u64::MAX")))?;
    let cut = Cut {
        first,
        last,
        has_snapshot: snapshot.is_some(),
        n_snapshot_files: files.len() as u64,
        snapshot_bytes,
    };
    let mut out = BufWriter::with_capacity(EXPORT_BUFFER_LEN, out);
    let mut writer = ImageWriter::new(&mut out, source_family, family_version, &cut)?;
    if last >= first {
        for index in first..=last {
            let entry = view
                .entry(index)
                .and_then(|e| match e {
                    Some(e) if e.index == index => Ok(e),
                    Some(e) => {
                        Err(inconsistent(format!("entry {index} reads as index {}", e.index)))
                    }
                    None => {
                        Err(inconsistent(format!("entry {index} of [{first}, {last}] is missing")))
                    }
                })
                .map_err(source(writer.offset()))?;
            writer.entry(&entry)?;
        }
    }
    let meta = view.meta().map_err(source(writer.offset()))?;
    writer.meta(&meta)?;
    if let Some(snapshot) = &snapshot {
        writer.snapshot(snapshot)?;
        let mut buf = vec![0u8; CHUNK_LEN];
        for info in &files {
            writer.file(info)?;
            export_file(view, info, &mut buf, &mut writer).map_err(source(writer.offset()))??;
        }
    }
    for ext in extensions {
        writer.extension(ext)?;
    }
    let (_, summary) = writer.finish()?;
    Ok(summary)
}

/// Streams one snapshot file's bytes as chunks. The outer result is the source's, the
/// inner the writer's.
fn export_file<W: Write>(
    view: &dyn StateView,
    info: &SnapshotFileInfo,
    buf: &mut [u8],
    writer: &mut ImageWriter<W>,
) -> StorageResult<Result<(), ImageError>> {
    let mut offset = 0u64;
    while offset < info.len {
        let want = (info.len - offset).min(buf.len() as u64) as usize;
        let mut filled = 0;
        while filled < want {
            let n = view.read_snapshot_file(
                &info.path,
                offset + filled as u64,
                &mut buf[filled..want],
            )?;
            if n == 0 {
                return Err(inconsistent(format!(
                    "snapshot file {} is listed with {} bytes but ends at {}",
                    info.path,
                    info.len,
                    offset + filled as u64
                )));
            }
            filled += n;
        }
        if let Err(e) = writer.chunk(offset, &buf[..want]) {
            return Ok(Err(e));
        }
        offset += want as u64;
    }
    let mut probe = [0u8; 1];
    if view.read_snapshot_file(&info.path, info.len, &mut probe)? != 0 {
        return Err(inconsistent(format!(
            "snapshot file {} is listed with {} bytes but has more",
            info.path, info.len
        )));
    }
    Ok(Ok(()))
}

fn inconsistent(message: impl Into<String>) -> StorageError {
    StorageError::Backend { family: "export", message: message.into() }
}
