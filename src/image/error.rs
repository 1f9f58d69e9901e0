//! Typed image errors: a class, the byte offset, and the record at fault.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

use super::format::kind_name;
use crate::contract::StorageError;

/// The error classes an importer reports (the specification's table, in the same words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// The first eight bytes are not the image magic.
    BadMagic,
    /// The header's major version is not 1.
    UnsupportedVersion,
    /// A part this reader does not understand and that is not marked ignorable.
    UnsupportedFeature,
    /// A record's CRC-32C does not match its bytes.
    ChecksumMismatch,
    /// The trailing SHA-256 does not match the image's bytes.
    DigestMismatch,
    /// The image ends before its END record and digest are complete.
    Truncated,
    /// Bytes follow the digest.
    TrailingBytes,
    /// A record of a kind that may not come at this point.
    RecordOrder,
    /// An entry's index is above the next expected index.
    IndexGap,
    /// An entry's index is below the next expected index.
    IndexDisorder,
    /// A count or total disagrees with the CUT or END record.
    CountMismatch,
    /// A snapshot path that appears twice.
    DuplicatePath,
    /// A snapshot path that breaks the path rules (absolute, `..`, empty or `.` segments,
    /// NUL, backslash, over-long, not UTF-8).
    UnsafePath,
    /// Snapshot paths out of canonical order.
    PathOrder,
    /// A snapshot path that is both a file and a directory of another file.
    PathConflict,
    /// A length or count over a limit of the format.
    OverLimit,
    /// A field with a value the format does not allow.
    Malformed,
    /// The import destination is not empty.
    NonEmptyDestination,
    /// Reading or writing the image stream failed.
    Io,
    /// The exported instance failed to give its state.
    Source,
    /// The import destination failed to stage or commit.
    Destination,
}

impl ErrorClass {
    /// The snake_case name used in JSON and in the specification.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::BadMagic => "bad_magic",
            ErrorClass::UnsupportedVersion => "unsupported_version",
            ErrorClass::UnsupportedFeature => "unsupported_feature",
            ErrorClass::ChecksumMismatch => "checksum_mismatch",
            ErrorClass::DigestMismatch => "digest_mismatch",
            ErrorClass::Truncated => "truncated",
            ErrorClass::TrailingBytes => "trailing_bytes",
            ErrorClass::RecordOrder => "record_order",
            ErrorClass::IndexGap => "index_gap",
            ErrorClass::IndexDisorder => "index_disorder",
            ErrorClass::CountMismatch => "count_mismatch",
            ErrorClass::DuplicatePath => "duplicate_path",
            ErrorClass::UnsafePath => "unsafe_path",
            ErrorClass::PathOrder => "path_order",
            ErrorClass::PathConflict => "path_conflict",
            ErrorClass::OverLimit => "over_limit",
            ErrorClass::Malformed => "malformed",
            ErrorClass::NonEmptyDestination => "non_empty_destination",
            ErrorClass::Io => "io",
            ErrorClass::Source => "source",
            ErrorClass::Destination => "destination",
        }
    }

    /// Every class, in declaration order.
    pub const ALL: &'static [ErrorClass] = &[
        ErrorClass::BadMagic,
        ErrorClass::UnsupportedVersion,
        ErrorClass::UnsupportedFeature,
        ErrorClass::ChecksumMismatch,
        ErrorClass::DigestMismatch,
        ErrorClass::Truncated,
        ErrorClass::TrailingBytes,
        ErrorClass::RecordOrder,
        ErrorClass::IndexGap,
        ErrorClass::IndexDisorder,
        ErrorClass::CountMismatch,
        ErrorClass::DuplicatePath,
        ErrorClass::UnsafePath,
        ErrorClass::PathOrder,
        ErrorClass::PathConflict,
        ErrorClass::OverLimit,
        ErrorClass::Malformed,
        ErrorClass::NonEmptyDestination,
        ErrorClass::Io,
        ErrorClass::Source,
        ErrorClass::Destination,
    ];

    /// The class named `name` (as [`ErrorClass::name`] spells it).
    pub fn from_name(name: &str) -> Option<ErrorClass> {
        ErrorClass::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where in an image an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// The magic (bytes 0..8).
    Magic,
    /// Record number `number` (the HEADER is #0); `kind` is its kind byte when it was read.
    Record {
        /// The record's position in the image, counting from 0.
        number: u64,
        /// The record's kind byte, if the record's frame could be read.
        kind: Option<u8>,
    },
    /// The trailing SHA-256 digest.
    Digest,
    /// Past the digest.
    AfterDigest,
    /// Not at a place in the image (for example, a destination that is not empty).
    Nowhere,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Magic => f.write_str("magic"),
            Location::Record { number, kind: Some(kind) } => {
                write!(f, "record #{number} ({})", kind_name(*kind))
            }
            Location::Record { number, kind: None } => write!(f, "record #{number}"),
            Location::Digest => f.write_str("digest"),
            Location::AfterDigest => f.write_str("after the digest"),
            Location::Nowhere => f.write_str("no image position"),
        }
    }
}

/// Every error of the image codec, export and import.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The image's bytes break the format (or, when exporting, the state cannot be
    /// represented within the format's limits).
    #[error("{class} at byte {offset} ({location}): {detail}")]
    Format {
        /// The error class.
        class: ErrorClass,
        /// Byte offset of the start of the part at fault (see the specification).
        offset: u64,
        /// The record (or other part) at fault.
        location: Location,
        /// What is wrong, in words.
        detail: String,
    },
    /// Reading or writing the image stream failed.
    #[error("I/O error at image byte {offset}: {source}")]
    Io {
        /// How many image bytes had been read or written.
        offset: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The exported instance failed to give its state.
    #[error("reading the source failed at image byte {offset}: {source}")]
    Source {
        /// How many image bytes had been written.
        offset: u64,
        /// The storage error.
        #[source]
        source: StorageError,
    },
    /// The import destination already holds state; nothing was read or changed.
    #[error("non_empty_destination: the destination is not empty: {what}")]
    NonEmptyDestination {
        /// What made it non-empty.
        what: String,
    },
    /// The import destination failed to stage or commit; it is left empty.
    #[error("destination failed at image byte {offset} ({location}): {source}")]
    Destination {
        /// Byte offset of the record being imported.
        offset: u64,
        /// That record.
        location: Location,
        /// The storage error.
        #[source]
        source: StorageError,
    },
}

impl ImageError {
    /// The error's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            ImageError::Format { class, .. } => *class,
            ImageError::Io { .. } => ErrorClass::Io,
            ImageError::Source { .. } => ErrorClass::Source,
            ImageError::NonEmptyDestination { .. } => ErrorClass::NonEmptyDestination,
            ImageError::Destination { .. } => ErrorClass::Destination,
        }
    }

    /// The byte offset the error names, if it names one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ImageError::Format { offset, .. }
            | ImageError::Io { offset, .. }
            | ImageError::Source { offset, .. }
            | ImageError::Destination { offset, .. } => Some(*offset),
            ImageError::NonEmptyDestination { .. } => None,
        }
    }

    /// The part of the image the error names.
    pub fn location(&self) -> Location {
        match self {
            ImageError::Format { location, .. } | ImageError::Destination { location, .. } => {
                *location
            }
            _ => Location::Nowhere,
        }
    }

    /// Whether the image itself is at fault (as opposed to I/O, the source or the
    /// destination).
    pub fn is_bad_image(&self) -> bool {
        matches!(self, ImageError::Format { .. })
    }

    pub(crate) fn format(
        class: ErrorClass,
        offset: u64,
        location: Location,
        detail: impl Into<String>,
    ) -> Self {
        ImageError::Format { class, offset, location, detail: detail.into() }
    }
}
