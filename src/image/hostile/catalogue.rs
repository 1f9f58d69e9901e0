//! The catalogue of violations: each one's name, the class the specification says a reader
//! reports for it, the part of the image it breaks, and what it needs the state to have.

use super::super::error::ErrorClass;

/// What a violation needs the state to have before it can be applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Needs {
    /// At least this many entries.
    pub(super) entries: u8,
    /// `last < INDEX_MAX` (room for one more entry).
    pub(super) room: bool,
    /// `first >= 2`.
    pub(super) first_2: bool,
    /// A data entry.
    pub(super) data: bool,
    /// A configuration entry.
    pub(super) config: bool,
    /// A snapshot.
    pub(super) snapshot: bool,
    /// At least this many snapshot files.
    pub(super) files: u8,
    /// A file whose last chunk holds 2 to `CHUNK_LEN - 1` bytes.
    pub(super) chunked: bool,
    /// A file with at least two path segments.
    pub(super) nested: bool,
    /// A file with file metadata.
    pub(super) file_meta: bool,
}

const NOTHING: Needs = Needs {
    entries: 0,
    room: false,
    first_2: false,
    data: false,
    config: false,
    snapshot: false,
    files: 0,
    chunked: false,
    nested: false,
    file_meta: false,
};
const fn entries(n: u8) -> Needs {
    Needs { entries: n, ..NOTHING }
}
const SNAPSHOT: Needs = Needs { snapshot: true, ..NOTHING };
const fn files(n: u8) -> Needs {
    Needs { snapshot: true, files: n, ..NOTHING }
}
const CHUNKED: Needs = Needs { snapshot: true, files: 1, chunked: true, ..NOTHING };
const DATA: Needs = Needs { data: true, ..NOTHING };
const CONFIG: Needs = Needs { config: true, ..NOTHING };
const FILE_META: Needs = Needs { file_meta: true, ..files(1) };
const NESTED: Needs = Needs { nested: true, ..files(1) };

macro_rules! catalogue {
    ($(
        $(#[doc = $part_doc:literal])+
        $part:ident {
            $(
                $(#[doc = $doc:literal])+
                $variant:ident = $name:literal, $class:ident, $needs:expr;
            )+
        }
    )+) => {
        /// The part of an image a violation breaks.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Part {
            $( $(#[doc = $part_doc])+ $part, )+
        }

        /// One semantic violation of the image format. Each is applied to an otherwise valid
        /// image, and the reader must reject the result with [`Violation::expected_class`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Violation {
            $( $( $(#[doc = $doc])+ $variant, )+ )+
        }

        impl Violation {
            /// The whole catalogue, grouped by the part of the image it breaks.
            pub const ALL: &'static [Violation] = &[ $( $( Violation::$variant, )+ )+ ];

            /// The violation's stable kebab-case name.
            pub fn name(self) -> &'static str {
                match self { $( $( Violation::$variant => $name, )+ )+ }
            }

            /// The class the specification says a reader reports for it.
            pub fn expected_class(self) -> ErrorClass {
                match self { $( $( Violation::$variant => ErrorClass::$class, )+ )+ }
            }

            /// The part of the image it breaks.
            pub fn part(self) -> Part {
                match self { $( $( Violation::$variant => Part::$part, )+ )+ }
            }

            pub(super) fn needs(self) -> Needs {
                match self { $( $( Violation::$variant => $needs, )+ )+ }
            }
        }
    };
}

catalogue! {
    /// The HEADER: the version, the algorithms, the source family, its place.
    Header {
        /// `format_major` above 1.
        MajorNewer = "major-newer", UnsupportedVersion, NOTHING;
        /// `format_major` 0.
        MajorZero = "major-zero", UnsupportedVersion, NOTHING;
        /// A record checksum algorithm other than CRC-32C.
        ChecksumAlgorithmUnknown = "checksum-algorithm-unknown", UnsupportedFeature, NOTHING;
        /// An image digest algorithm other than SHA-256.
        DigestAlgorithmUnknown = "digest-algorithm-unknown", UnsupportedFeature, NOTHING;
        /// A source family id breaking the name syntax (upper case, empty, not UTF-8, …).
        FamilyIdMalformed = "family-id-malformed", Malformed, NOTHING;
        /// A source family id over 64 bytes.
        FamilyIdOverLimit = "family-id-over-limit", OverLimit, NOTHING;
        /// The CUT before the HEADER.
        HeaderNotFirst = "header-not-first", RecordOrder, NOTHING;
        /// A second HEADER.
        HeaderRepeated = "header-repeated", RecordOrder, NOTHING;

    }
    /// Record flags and kinds.
    FlagsAndKinds {
        /// A reserved flag bit set on a record.
        FlagReserved = "flag-reserved", Malformed, NOTHING;
        /// The EXTENDED flag in a 1.0 image.
        FlagExtendedInCurrentMinor = "flag-extended-in-current-minor", Malformed, NOTHING;
        /// The IGNORABLE flag on a record that is not an EXTENSION.
        FlagIgnorableOnCore = "flag-ignorable-on-core", Malformed, NOTHING;
        /// A record of an unknown kind in a 1.0 image (ignorable or not).
        KindUnknown = "kind-unknown", Malformed, NOTHING;
        /// A record of an unknown kind, not marked ignorable, in an image of a newer minor.
        KindUnknownNewerMinor = "kind-unknown-newer-minor", UnsupportedFeature, NOTHING;

    }
    /// EXTENSION records.
    Extensions {
        /// An extension not marked ignorable (this reader knows none).
        ExtensionNotIgnorable = "extension-not-ignorable", UnsupportedFeature, NOTHING;
        /// Two extensions in decreasing (name, version) order.
        ExtensionsOutOfOrder = "extensions-out-of-order", RecordOrder, NOTHING;
        /// Two extensions with the same name and version.
        ExtensionRepeated = "extension-repeated", RecordOrder, NOTHING;
        /// An extension before META.
        ExtensionBeforeMeta = "extension-before-meta", RecordOrder, NOTHING;
        /// An extension name breaking the name syntax.
        ExtensionNameMalformed = "extension-name-malformed", Malformed, NOTHING;
        /// An extension name over 64 bytes.
        ExtensionNameOverLimit = "extension-name-over-limit", OverLimit, NOTHING;

    }
    /// The order of the sections.
    Order {
        /// No CUT record.
        CutMissing = "cut-missing", RecordOrder, NOTHING;
        /// A second CUT record.
        CutRepeated = "cut-repeated", RecordOrder, NOTHING;
        /// No META record.
        MetaMissing = "meta-missing", RecordOrder, NOTHING;
        /// A second META record after the first.
        MetaRepeated = "meta-repeated", RecordOrder, NOTHING;
        /// META among the entries the CUT announces (the log is short there).
        MetaAmongEntries = "meta-among-entries", CountMismatch, entries(1);
        /// The CUT announces a snapshot; the SNAPSHOT record is missing.
        SnapshotRecordMissing = "snapshot-record-missing", RecordOrder, SNAPSHOT;
        /// A SNAPSHOT record the CUT does not announce.
        SnapshotUnannounced = "snapshot-unannounced", RecordOrder, SNAPSHOT;
        /// Snapshot files with no snapshot meta: neither the CUT nor a SNAPSHOT record.
        FilesWithoutSnapshot = "files-without-snapshot", RecordOrder, files(1);
        /// A CUT that counts snapshot files but says there is no snapshot.
        CutCountsFilesWithoutSnapshot = "cut-counts-files-without-snapshot", Malformed, files(1);
        /// A CHUNK where no file needs bytes (a chunk of a file that does not exist).
        ChunkWithoutFile = "chunk-without-file", RecordOrder, NOTHING;

    }
    /// ENTRY records.
    Entries {
        /// One entry left out of the middle of the log.
        EntryGap = "entry-gap", IndexGap, entries(2);
        /// Two adjacent entries swapped.
        EntriesSwapped = "entries-swapped", IndexGap, entries(2);
        /// An entry repeated (the CUT counting it).
        EntryRepeated = "entry-repeated", IndexDisorder, Needs { room: true, ..entries(1) };
        /// An entry whose index is below the next expected one.
        EntryIndexBelow = "entry-index-below", IndexDisorder, entries(1);
        /// An entry whose index is above the next expected one (up to `u64::MAX`).
        EntryIndexAbove = "entry-index-above", IndexGap, entries(1);
        /// An entry kind other than no-op, data, configuration.
        EntryKindUnknown = "entry-kind-unknown", Malformed, entries(1);
        /// An entry term over `i64::MAX`.
        EntryTermOverLimit = "entry-term-over-limit", OverLimit, entries(1);
        /// A data payload length over the limit.
        EntryDataOverLimit = "entry-data-over-limit", OverLimit, DATA;
        /// A data payload length that disagrees with the bytes present.
        EntryDataLengthLies = "entry-data-length-lies", Malformed, DATA;
        /// A configuration peer that is not a PeerId.
        EntryPeerNotAPeerId = "entry-peer-not-a-peer-id", Malformed, CONFIG;
        /// A configuration peer count over 4096.
        EntryPeersOverLimit = "entry-peers-over-limit", OverLimit, CONFIG;
        /// A configuration peer count the body cannot hold.
        EntryPeersCountLies = "entry-peers-count-lies", Malformed, CONFIG;

    }
    /// The CUT's range and counts, and END's count.
    Cut {
        /// First index 0.
        FirstZero = "first-zero", Malformed, NOTHING;
        /// First index over `i64::MAX`.
        FirstOverLimit = "first-over-limit", OverLimit, NOTHING;
        /// Last index over `i64::MAX`.
        LastOverLimit = "last-over-limit", OverLimit, NOTHING;
        /// Last index below `first - 1`.
        LastBelowFirst = "last-below-first", Malformed, NOTHING;
        /// The CUT announces one entry more than the image has.
        CutEntriesMore = "cut-entries-more", CountMismatch, Needs { room: true, ..NOTHING };
        /// The CUT announces one entry fewer than the image has.
        CutEntriesFewer = "cut-entries-fewer", CountMismatch, entries(1);
        /// The CUT's first index one above the first entry's.
        CutFirstLater = "cut-first-later", IndexDisorder, entries(2);
        /// The CUT's first index one below the first entry's.
        CutFirstEarlier = "cut-first-earlier", IndexGap, Needs { first_2: true, ..entries(1) };
        /// The CUT announces more snapshot files than the image has.
        CutFilesMore = "cut-files-more", CountMismatch, SNAPSHOT;
        /// The CUT announces one snapshot file fewer than the image has.
        CutFilesFewer = "cut-files-fewer", CountMismatch, files(1);
        /// The CUT announces more snapshot bytes than the files hold.
        CutBytesMore = "cut-bytes-more", CountMismatch, SNAPSHOT;
        /// The CUT announces fewer snapshot bytes than the files hold.
        CutBytesFewer = "cut-bytes-fewer", CountMismatch, CHUNKED;
        /// More snapshot files than 2^20.
        FilesOverLimit = "files-over-limit", OverLimit, SNAPSHOT;
        /// `has_snapshot` neither 0 nor 1.
        CutTagInvalid = "cut-tag-invalid", Malformed, NOTHING;
        /// END counting a wrong number of records.
        EndCountWrong = "end-count-wrong", CountMismatch, NOTHING;

    }
    /// FILE and CHUNK records.
    Files {
        /// A CHUNK whose offset is not the sum of the file's earlier chunks.
        ChunkOffsetWrong = "chunk-offset-wrong", Malformed, CHUNKED;
        /// A CHUNK with more bytes than the canonical chunk there.
        ChunkLonger = "chunk-longer", Malformed, CHUNKED;
        /// A CHUNK with fewer bytes than the canonical chunk there.
        ChunkShorter = "chunk-shorter", Malformed, CHUNKED;
        /// A CHUNK's data length disagreeing with the bytes present.
        ChunkLengthLies = "chunk-length-lies", Malformed, CHUNKED;
        /// A FILE one byte longer than its chunks (the CUT's total agreeing with the FILE).
        FileLonger = "file-longer", Malformed, CHUNKED;
        /// A FILE one byte shorter than its chunks (the CUT's total agreeing with the FILE).
        FileShorter = "file-shorter", Malformed, CHUNKED;
        /// A file's `user_meta` longer than 1 MiB.
        FileMetaOverLimit = "file-meta-over-limit", OverLimit, files(1);
        /// A file's `checksum` length disagreeing with the bytes present.
        FileMetaLengthLies = "file-meta-length-lies", Malformed, FILE_META;
        /// `has_user_meta` neither 0 nor 1.
        FileMetaTagInvalid = "file-meta-tag-invalid", Malformed, files(1);

    }
    /// Snapshot paths.
    Paths {
        /// A `..` segment at the start or the end (`../x`, `x/..`).
        PathDotDot = "path-dot-dot", UnsafePath, files(1);
        /// A `..` segment inside (`a/../../etc/passwd`).
        PathInnerDotDot = "path-inner-dot-dot", UnsafePath, files(1);
        /// A `.` segment.
        PathDot = "path-dot", UnsafePath, files(1);
        /// An absolute path.
        PathAbsolute = "path-absolute", UnsafePath, files(1);
        /// An empty path.
        PathEmpty = "path-empty", UnsafePath, files(1);
        /// An empty segment (`a//b`).
        PathEmptySegment = "path-empty-segment", UnsafePath, files(1);
        /// A trailing `/`.
        PathTrailingSlash = "path-trailing-slash", UnsafePath, files(1);
        /// A NUL byte.
        PathNul = "path-nul", UnsafePath, files(1);
        /// A backslash.
        PathBackslash = "path-backslash", UnsafePath, files(1);
        /// A path over 4096 bytes of valid segments.
        PathOverLong = "path-over-long", UnsafePath, files(1);
        /// A segment over 255 bytes.
        PathSegmentOverLong = "path-segment-over-long", UnsafePath, files(1);
        /// A path that is not UTF-8.
        PathNotUtf8 = "path-not-utf8", UnsafePath, files(1);
        /// A path length field over 4096 (the bytes are not there).
        PathLengthOverLimit = "path-length-over-limit", UnsafePath, files(1);
        /// A path length field running past the record body.
        PathLengthPastBody = "path-length-past-body", Malformed, files(1);
        /// A file repeated (the CUT counting it).
        PathDuplicate = "path-duplicate", DuplicatePath, files(1);
        /// A file `d` followed by a file `d/x`.
        PathFileThenChild = "path-file-then-child", PathConflict, files(1);
        /// A file `d` added where the directory `d` already holds files.
        PathDirectoryAsFile = "path-directory-as-file", PathConflict, NESTED;
        /// Two adjacent files swapped.
        PathsSwapped = "paths-swapped", PathOrder, files(2);
        /// Two new files in plain byte order (`x-y` before `x/y`) instead of the canonical one.
        PathsInByteOrder = "paths-in-byte-order", PathOrder, files(1);

    }
    /// META: the term and the vote.
    Meta {
        /// The meta term over `i64::MAX`.
        MetaTermOverLimit = "meta-term-over-limit", OverLimit, NOTHING;
        /// A vote that is not a PeerId.
        VoteNotAPeerId = "vote-not-a-peer-id", Malformed, NOTHING;
        /// A vote for braft's "any" peer (which means no vote).
        VoteAnyPeer = "vote-any-peer", Malformed, NOTHING;
        /// A vote longer than 256 bytes.
        VoteOverLimit = "vote-over-limit", OverLimit, NOTHING;
        /// `has_vote` neither 0 nor 1.
        VoteTagInvalid = "vote-tag-invalid", Malformed, NOTHING;

    }
    /// SNAPSHOT: the snapshot meta.
    Snapshot {
        /// `last_included_index` over `i64::MAX`.
        SnapshotIndexOverLimit = "snapshot-index-over-limit", OverLimit, SNAPSHOT;
        /// `last_included_term` over `i64::MAX`.
        SnapshotTermOverLimit = "snapshot-term-over-limit", OverLimit, SNAPSHOT;
        /// A snapshot peer that is not a PeerId.
        SnapshotPeerNotAPeerId = "snapshot-peer-not-a-peer-id", Malformed, SNAPSHOT;
        /// A snapshot peer count over 4096.
        SnapshotPeersOverLimit = "snapshot-peers-over-limit", OverLimit, SNAPSHOT;

    }
    /// Record bodies and frames.
    Frames {
        /// Bytes after a record's last field (without the EXTENDED flag).
        BodyTrailingBytes = "body-trailing-bytes", Malformed, NOTHING;
        /// A record body one byte short of its last field.
        BodyTruncated = "body-truncated", Malformed, NOTHING;
        /// A frame's `body_len` over 64 MiB.
        RecordBodyOverLimit = "record-body-over-limit", OverLimit, NOTHING;
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Violation {
    /// The violation named `name`.
    pub fn from_name(name: &str) -> Option<Violation> {
        Violation::ALL.iter().copied().find(|v| v.name() == name)
    }
}
