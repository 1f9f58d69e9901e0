//! The streaming, validating reader and `import` / `verify`.

use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use super::error::{ErrorClass, ImageError, Location};
use super::format::{
    kind_name, RecordKind, DIGEST_LEN, FLAGS_KNOWN, FLAG_EXTENDED, FLAG_IGNORABLE, FORMAT_MAJOR,
    FORMAT_MINOR, FRAME_CRC_LEN, FRAME_HEADER_LEN, MAGIC, RECORD_BODY_LEN_MAX,
};
use super::grammar::{Grammar, Step};
use super::planted::PlantedReaderBug;
use super::record::{decode_body, decode_version, Cut, Decoded, Extension, Fault, Header};
use super::ImageSummary;
use crate::contract::{
    ContractError, Entry, Meta, RaftStorage, SnapshotFileInfo, SnapshotMeta, SnapshotPath,
    StorageError,
};

/// Bytes the reader asks its source for at a time; also the step by which a record buffer
/// grows, so a hostile length field costs at most this much beyond the bytes really present.
const READ_STEP: usize = 64 << 10;
/// Entries `import` hands the destination per `append` call, at most.
const IMPORT_BATCH_ENTRIES_MAX: usize = 1024;
/// Payload bytes `import` hands the destination per `append` call, about.
const IMPORT_BATCH_BYTES_MAX: usize = 8 << 20;

/// What one record of an image says, as the reader hands it out.
#[derive(Debug)]
pub enum Item<'a> {
    /// The HEADER (record #0).
    Header(Header),
    /// The CUT.
    Cut(Cut),
    /// An ENTRY.
    Entry(Entry),
    /// META.
    Meta(Meta),
    /// SNAPSHOT.
    Snapshot(SnapshotMeta),
    /// A FILE; its chunks follow.
    File(SnapshotFileInfo),
    /// A CHUNK of the last FILE.
    Chunk {
        /// Where the data starts in the file.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// An EXTENSION (always ignorable: this reader rejects the others).
    Extension(Extension),
    /// A record of a newer minor version that this reader does not know, marked ignorable.
    Ignored {
        /// Its kind byte.
        kind: u8,
    },
    /// END: every record, the digest and the end of input were checked.
    End(ImageSummary),
}

/// One record read: where it is and what it says.
#[derive(Debug)]
pub struct Record<'a> {
    /// The record's number (HEADER is #0).
    pub number: u64,
    /// Byte offset of the record's first byte.
    pub offset: u64,
    /// What it says.
    pub item: Item<'a>,
}

impl Record<'_> {
    /// The record's location, for error reports.
    pub fn location(&self) -> Location {
        let kind = match &self.item {
            Item::Header(_) => RecordKind::Header as u8,
            Item::Cut(_) => RecordKind::Cut as u8,
            Item::Entry(_) => RecordKind::Entry as u8,
            Item::Meta(_) => RecordKind::Meta as u8,
            Item::Snapshot(_) => RecordKind::Snapshot as u8,
            Item::File(_) => RecordKind::File as u8,
            Item::Chunk { .. } => RecordKind::Chunk as u8,
            Item::Extension(_) => RecordKind::Extension as u8,
            Item::Ignored { kind } => *kind,
            Item::End(_) => RecordKind::End as u8,
        };
        Location::Record { number: self.number, kind: Some(kind) }
    }
}

#[derive(Debug)]
enum Phase {
    Start,
    Records,
    Finished(ImageSummary),
    Failed,
}

/// Reads and validates an image record by record: framing, CRC-32C, field rules, record
/// order and counts, and at the end the SHA-256 digest and the end of input. Memory: one
/// record buffer (growing only as bytes really arrive) and O(1) state.
pub struct ImageReader<R: Read> {
    input: BufReader<R>,
    offset: u64,
    sha: Sha256,
    buf: Vec<u8>,
    record_number: u64,
    grammar: Grammar,
    header: Option<Header>,
    newer_minor: bool,
    n_ignored: u64,
    phase: Phase,
}

impl<R: Read> std::fmt::Debug for ImageReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageReader")
            .field("offset", &self.offset)
            .field("record_number", &self.record_number)
            .finish_non_exhaustive()
    }
}

struct Frame {
    offset: u64,
    number: u64,
    kind: u8,
    flags: u8,
}

impl Frame {
    fn location(&self) -> Location {
        Location::Record { number: self.number, kind: Some(self.kind) }
    }
}

impl<R: Read> ImageReader<R> {
    /// A reader over `input` (buffered internally).
    pub fn new(input: R) -> Self {
        ImageReader::with_reader_bug(input, None)
    }

    /// A reader that forgets the rule `bug` names: for proving the harness catches such a
    /// reader (tests and self-tests only).
    pub fn with_reader_bug(input: R, bug: Option<PlantedReaderBug>) -> Self {
        ImageReader {
            input: BufReader::with_capacity(READ_STEP, input),
            offset: 0,
            sha: Sha256::new(),
            buf: Vec::new(),
            record_number: 0,
            grammar: Grammar::with_planted_bug(bug),
            header: None,
            newer_minor: false,
            n_ignored: 0,
            phase: Phase::Start,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record. After END it keeps returning END; after an error, an error.
    pub fn next_record(&mut self) -> Result<Record<'_>, ImageError> {
        match &self.phase {
            Phase::Finished(summary) => {
                return Ok(Record {
                    number: self.record_number.saturating_sub(1),
                    offset: self.offset,
                    item: Item::End(summary.clone()),
                })
            }
            Phase::Failed => {
                return Err(ImageError::format(
                    ErrorClass::Malformed,
                    self.offset,
                    Location::Nowhere,
                    "the reader already failed",
                ))
            }
            Phase::Start | Phase::Records => {}
        }
        let start = matches!(self.phase, Phase::Start);
        self.phase = Phase::Failed;
        let frame = if start {
            self.read_magic()?;
            let frame = self.read_record()?;
            self.check_header_frame(&frame)?;
            frame
        } else {
            self.read_record()?
        };
        self.record_number += 1;
        let number = frame.number;
        let offset = frame.offset;
        let item = self.interpret(&frame)?;
        Ok(Record { number, offset, item })
    }

    /// Reads to the end, checking everything; the summary of a valid image.
    pub fn verify_all(&mut self) -> Result<ImageSummary, ImageError> {
        loop {
            if let Item::End(summary) = self.next_record()?.item {
                return Ok(summary);
            }
        }
    }

    fn fail(
        &self,
        class: ErrorClass,
        offset: u64,
        location: Location,
        detail: String,
    ) -> ImageError {
        ImageError::format(class, offset, location, detail)
    }

    /// Reads up to `buf.len()` bytes, fewer only at the end of input. Hashes what it reads.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, ImageError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.input.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ImageError::Io { offset: self.offset + filled as u64, source })
                }
            }
        }
        self.sha.update(&buf[..filled]);
        self.offset += filled as u64;
        Ok(filled)
    }

    fn read_magic(&mut self) -> Result<(), ImageError> {
        let mut magic = [0u8; MAGIC.len()];
        let n = self.read_up_to(&mut magic)?;
        if magic[..n] != MAGIC[..n] {
            return Err(self.fail(
                ErrorClass::BadMagic,
                0,
                Location::Magic,
                format!(
                    "starts with {}, not an image (magic {})",
                    hex::encode(&magic[..n]),
                    hex::encode(MAGIC)
                ),
            ));
        }
        if n < MAGIC.len() {
            return Err(self.fail(
                ErrorClass::Truncated,
                0,
                Location::Magic,
                format!("the image ends after {n} bytes, inside the magic"),
            ));
        }
        Ok(())
    }

    /// Reads one record's frame, body and CRC into `self.buf` and checks the CRC.
    fn read_record(&mut self) -> Result<Frame, ImageError> {
        let offset = self.offset;
        let number = self.record_number;
        let mut head = [0u8; FRAME_HEADER_LEN];
        let n = self.read_up_to(&mut head)?;
        if n == 0 {
            return Err(self.fail(
                ErrorClass::Truncated,
                offset,
                Location::Record { number, kind: None },
                format!("the image ends after {offset} bytes, before its END record"),
            ));
        }
        if n < FRAME_HEADER_LEN {
            return Err(self.fail(
                ErrorClass::Truncated,
                offset,
                Location::Record { number, kind: Some(head[0]) },
                format!("the image ends inside the record's {FRAME_HEADER_LEN}-byte frame"),
            ));
        }
        let frame = Frame { offset, number, kind: head[0], flags: head[1] };
        let body_len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]);
        if body_len > RECORD_BODY_LEN_MAX {
            return Err(self.fail(
                ErrorClass::OverLimit,
                offset,
                frame.location(),
                format!("record body of {body_len} bytes, the limit is {RECORD_BODY_LEN_MAX}"),
            ));
        }
        let mut buf = std::mem::take(&mut self.buf);
        let got = self.read_body(&mut buf, body_len as usize);
        self.buf = buf;
        let got = got?;
        if got < body_len as usize {
            return Err(self.fail(
                ErrorClass::Truncated,
                offset,
                frame.location(),
                format!("the image ends after {got} of the record's {body_len} body bytes"),
            ));
        }
        let mut crc_bytes = [0u8; FRAME_CRC_LEN];
        let n = self.read_up_to(&mut crc_bytes)?;
        if n < FRAME_CRC_LEN {
            return Err(self.fail(
                ErrorClass::Truncated,
                offset,
                frame.location(),
                "the image ends inside the record's CRC".to_string(),
            ));
        }
        let stored = u32::from_le_bytes(crc_bytes);
        let computed = crc32c::crc32c_append(crc32c::crc32c(&head), &self.buf);
        if stored != computed {
            return Err(self.fail(
                ErrorClass::ChecksumMismatch,
                offset,
                frame.location(),
                format!("CRC-32C stored {stored:08x}, computed {computed:08x}"),
            ));
        }
        Ok(frame)
    }

    /// Fills `buf` with up to `len` bytes, growing it only as bytes arrive.
    fn read_body(&mut self, buf: &mut Vec<u8>, len: usize) -> Result<usize, ImageError> {
        buf.clear();
        let mut filled = 0;
        while filled < len {
            let step = (len - filled).min(READ_STEP);
            buf.resize(filled + step, 0);
            let n = self.read_up_to(&mut buf[filled..filled + step])?;
            filled += n;
            if n < step {
                buf.truncate(filled);
                break;
            }
        }
        Ok(filled)
    }

    fn check_header_frame(&mut self, frame: &Frame) -> Result<(), ImageError> {
        if frame.kind != RecordKind::Header as u8 {
            return Err(self.fail(
                ErrorClass::RecordOrder,
                frame.offset,
                frame.location(),
                format!("the first record is {}, not HEADER", kind_name(frame.kind)),
            ));
        }
        let (major, minor) = decode_version(&self.buf)
            .map_err(|f| self.fail(f.class, frame.offset, frame.location(), f.detail))?;
        if major != FORMAT_MAJOR {
            return Err(self.fail(
                ErrorClass::UnsupportedVersion,
                frame.offset,
                frame.location(),
                format!("format version {major}.{minor}; this reader reads major {FORMAT_MAJOR}"),
            ));
        }
        self.newer_minor = minor > FORMAT_MINOR;
        Ok(())
    }

    fn interpret(&mut self, frame: &Frame) -> Result<Item<'_>, ImageError> {
        let location = frame.location();
        let offset = frame.offset;
        let fault = |f: Fault| ImageError::format(f.class, offset, location, f.detail);
        if frame.flags & !FLAGS_KNOWN != 0 {
            return Err(fault(Fault::new(
                ErrorClass::Malformed,
                format!("reserved record flag bits set: 0x{:02x}", frame.flags),
            )));
        }
        let ignorable = frame.flags & FLAG_IGNORABLE != 0;
        let extended = frame.flags & FLAG_EXTENDED != 0;
        if extended && !self.newer_minor {
            return Err(fault(Fault::new(
                ErrorClass::Malformed,
                format!("EXTENDED flag in a {FORMAT_MAJOR}.{FORMAT_MINOR} image"),
            )));
        }
        let Some(kind) = RecordKind::from_byte(frame.kind) else {
            if !self.newer_minor {
                return Err(fault(Fault::new(
                    ErrorClass::Malformed,
                    format!("unknown record kind 0x{:02x}", frame.kind),
                )));
            }
            if !ignorable {
                return Err(fault(Fault::new(
                    ErrorClass::UnsupportedFeature,
                    format!(
                        "record kind 0x{:02x} of a newer minor version is not marked ignorable",
                        frame.kind
                    ),
                )));
            }
            self.grammar.accept(Step::Ignored).map_err(fault)?;
            self.n_ignored += 1;
            self.phase = Phase::Records;
            return Ok(Item::Ignored { kind: frame.kind });
        };
        if ignorable && kind != RecordKind::Extension {
            return Err(fault(Fault::new(
                ErrorClass::Malformed,
                format!("IGNORABLE flag on a {} record", kind.name()),
            )));
        }
        if kind == RecordKind::End {
            // Handled apart from the others: `finish` reads on, so nothing may borrow the
            // record buffer here.
            let body = std::mem::take(&mut self.buf);
            let decoded = decode_body(kind, &body, extended).map(|d| match d {
                Decoded::End(n) => n,
                _ => 0,
            });
            self.buf = body;
            let n_records = decoded.map_err(fault)?;
            self.grammar.accept(Step::End(n_records, frame.number)).map_err(fault)?;
            let summary = self.finish()?;
            self.phase = Phase::Finished(summary.clone());
            return Ok(Item::End(summary));
        }
        let decoded = decode_body(kind, &self.buf, extended).map_err(fault)?;
        let item = match decoded {
            Decoded::Header(header) => {
                if frame.number != 0 {
                    return Err(fault(Fault::new(
                        ErrorClass::RecordOrder,
                        "a second HEADER record".to_string(),
                    )));
                }
                self.header = Some(header.clone());
                Item::Header(header)
            }
            Decoded::Cut(cut) => {
                self.grammar.accept(Step::Cut(&cut)).map_err(fault)?;
                Item::Cut(cut)
            }
            Decoded::Entry(entry) => {
                self.grammar.accept(Step::Entry(entry.index)).map_err(fault)?;
                Item::Entry(entry)
            }
            Decoded::Meta(meta) => {
                self.grammar.accept(Step::Meta).map_err(fault)?;
                Item::Meta(meta)
            }
            Decoded::Snapshot(meta) => {
                self.grammar.accept(Step::Snapshot).map_err(fault)?;
                Item::Snapshot(meta)
            }
            Decoded::File(info) => {
                self.grammar.accept(Step::File(info.path.as_str(), info.len)).map_err(fault)?;
                Item::File(info)
            }
            Decoded::Chunk { offset: file_offset, data } => {
                self.grammar.accept(Step::Chunk(file_offset, data.len())).map_err(fault)?;
                Item::Chunk { offset: file_offset, data }
            }
            Decoded::Extension(mut ext) => {
                self.grammar.accept(Step::Extension(&ext.name, ext.version)).map_err(fault)?;
                if !ignorable {
                    return Err(fault(Fault::new(
                        ErrorClass::UnsupportedFeature,
                        format!(
                            "extension ({:?}, version {}) is not marked ignorable and this \
                             reader does not know it",
                            ext.name, ext.version
                        ),
                    )));
                }
                ext.ignorable = true;
                Item::Extension(ext)
            }
            Decoded::End(_) => {
                return Err(fault(Fault::new(ErrorClass::Malformed, "END decoded twice")));
            }
        };
        self.phase = Phase::Records;
        Ok(item)
    }

    /// After END: the digest, then the end of input.
    fn finish(&mut self) -> Result<ImageSummary, ImageError> {
        let computed = self.sha.clone().finalize();
        let digest_offset = self.offset;
        let mut stored = [0u8; DIGEST_LEN];
        let n = self.read_up_to(&mut stored)?;
        if n < DIGEST_LEN {
            return Err(self.fail(
                ErrorClass::Truncated,
                digest_offset,
                Location::Digest,
                format!("the image ends after {n} of the digest's {DIGEST_LEN} bytes"),
            ));
        }
        if stored[..] != computed[..] {
            return Err(self.fail(
                ErrorClass::DigestMismatch,
                digest_offset,
                Location::Digest,
                format!(
                    "SHA-256 stored {}, computed {}",
                    hex::encode(stored),
                    hex::encode(computed)
                ),
            ));
        }
        let end = self.offset;
        let mut probe = [0u8; 1];
        if self.read_up_to(&mut probe)? != 0 {
            return Err(self.fail(
                ErrorClass::TrailingBytes,
                end,
                Location::AfterDigest,
                format!("bytes follow the digest, which ends the image at byte {end}"),
            ));
        }
        let header = self.header.clone().unwrap_or_else(placeholder_header);
        let cut = self.grammar.cut().copied().unwrap_or(Cut {
            first: 1,
            last: 0,
            has_snapshot: false,
            n_snapshot_files: 0,
            snapshot_bytes: 0,
        });
        Ok(ImageSummary::new(
            &header,
            &cut,
            self.record_number,
            self.n_ignored,
            end,
            hex::encode(stored),
        ))
    }
}

fn placeholder_header() -> Header {
    // Only reached if END came without a HEADER, which `check_header_frame` rules out.
    Header {
        format_major: FORMAT_MAJOR,
        format_minor: FORMAT_MINOR,
        source_family: String::new(),
        source_family_version: 0,
    }
}

/// Checks a whole image (structure, every CRC, every rule, the digest, nothing after it).
pub fn verify(input: impl Read) -> Result<ImageSummary, ImageError> {
    ImageReader::new(input).verify_all()
}

/// Imports an image into `dest`, which must be empty. Everything is validated while it
/// streams into the destination's staging sink; `commit` is called only after the END
/// record, the digest and the end of input checked out. On any error the sink is dropped
/// (aborted) and the destination stays empty.
pub fn import(input: impl Read, dest: &mut dyn RaftStorage) -> Result<ImageSummary, ImageError> {
    import_with_reader_bug(input, dest, None)
}

/// [`import`] through a reader that forgets the rule `bug` names (none: exactly [`import`]).
/// Only the harness's proof that `bad_images` bites passes a bug.
pub fn import_with_reader_bug(
    input: impl Read,
    dest: &mut dyn RaftStorage,
    bug: Option<PlantedReaderBug>,
) -> Result<ImageSummary, ImageError> {
    let mut sink = dest.begin_import().map_err(|e| match e {
        StorageError::Contract(ContractError::NotEmpty { what }) => {
            ImageError::NonEmptyDestination { what }
        }
        source => ImageError::Destination { offset: 0, location: Location::Nowhere, source },
    })?;
    let mut reader = ImageReader::with_reader_bug(input, bug);
    let mut batch: Vec<Entry> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut snapshot_meta: Option<SnapshotMeta> = None;
    let mut current_path: Option<SnapshotPath> = None;
    loop {
        let record = reader.next_record()?;
        let (offset, location) = (record.offset, record.location());
        let dest_err = |source| ImageError::Destination { offset, location, source };
        match record.item {
            Item::Header(_) | Item::Extension(_) | Item::Ignored { .. } => {}
            Item::Cut(cut) => sink.set_first_index(cut.first).map_err(dest_err)?,
            Item::Entry(entry) => {
                batch_bytes += match &entry.payload {
                    crate::contract::Payload::Data(d) => d.len(),
                    _ => 0,
                };
                batch.push(entry);
                if batch.len() >= IMPORT_BATCH_ENTRIES_MAX || batch_bytes >= IMPORT_BATCH_BYTES_MAX
                {
                    sink.append(&batch).map_err(dest_err)?;
                    batch.clear();
                    batch_bytes = 0;
                }
            }
            Item::Meta(meta) => {
                if !batch.is_empty() {
                    sink.append(&batch).map_err(dest_err)?;
                    batch.clear();
                }
                sink.set_meta(&meta).map_err(dest_err)?;
            }
            Item::Snapshot(meta) => snapshot_meta = Some(meta),
            Item::File(info) => {
                sink.add_snapshot_file(&info.path, &info.file_meta).map_err(dest_err)?;
                current_path = Some(info.path);
            }
            Item::Chunk { offset: file_offset, data } => {
                let Some(path) = &current_path else {
                    return Err(ImageError::format(
                        ErrorClass::RecordOrder,
                        offset,
                        location,
                        "CHUNK without FILE",
                    ));
                };
                sink.write_snapshot_file(path, file_offset, data).map_err(dest_err)?;
            }
            Item::End(summary) => {
                if let Some(meta) = snapshot_meta.take() {
                    sink.set_snapshot_meta(meta).map_err(dest_err)?;
                }
                sink.commit().map_err(dest_err)?;
                return Ok(summary);
            }
        }
    }
}
