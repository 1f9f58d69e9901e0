//! Violations of the image's structure: the HEADER, record flags and kinds, extensions, the
//! order of the sections, the CUT's range and counts, END's count, bodies and frames.

use rand::{Rng, RngExt};

use super::super::format::{
    RecordKind, CHUNK_LEN, FLAG_EXTENDED, FLAG_IGNORABLE, FORMAT_MINOR, INDEX_MAX, NAME_LEN_MAX,
    RECORD_BODY_LEN_MAX, SNAPSHOT_FILES_MAX,
};
use super::super::record::Cut;
use super::apply::{over, over_u32, pick};
use super::catalogue::Violation;
use super::prepare::random_bytes;
use super::records::{
    at, chunk_body, extension, insert, put_u64, remove, set_cut, Applied, Layout, RawRecord,
};
use Violation as V;

/// The HEADER: version, algorithms, source family, its place.
pub(super) fn header<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut Vec<RawRecord>,
    layout: &Layout,
    _cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    let end = layout.end;
    match violation {
        V::MajorNewer => {
            let major = rng.random_range(2..=u16::MAX);
            records[0].body[0..2].copy_from_slice(&major.to_le_bytes());
            at(0)
        }
        V::MajorZero => {
            records[0].body[0..2].copy_from_slice(&0u16.to_le_bytes());
            at(0)
        }
        V::ChecksumAlgorithmUnknown | V::DigestAlgorithmUnknown => {
            let k = if violation == V::ChecksumAlgorithmUnknown { 4 } else { 5 };
            records[0].body[k] = pick(rng, &[0, 2, 3, u8::MAX]);
            at(0)
        }
        V::FamilyIdMalformed | V::FamilyIdOverLimit => {
            let id: Vec<u8> = if violation == V::FamilyIdMalformed {
                pick(rng, &[&b""[..], b"Memory", b"1local", b"lo cal", b"lo_cal", b"r/db", b"\xff"])
                    .to_vec()
            } else {
                vec![b'a'; rng.random_range(NAME_LEN_MAX + 1..=300)]
            };
            let body = &records[0].body;
            let old = u16::from_le_bytes([body[6], body[7]]) as usize;
            let mut new = body[..6].to_vec();
            new.extend_from_slice(&(id.len() as u16).to_le_bytes());
            new.extend_from_slice(&id);
            new.extend_from_slice(&body[8 + old..]);
            records[0].body = new;
            at(0)
        }
        V::HeaderNotFirst => {
            records.swap(0, 1);
            at(0)
        }
        V::HeaderRepeated => {
            let k = rng.random_range(1..=end);
            let header = records[0].clone();
            insert(records, k, header);
            at(k)
        }
        _ => None,
    }
}

/// Record flags and kinds.
pub(super) fn flags_and_kinds<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut Vec<RawRecord>,
    layout: &Layout,
    _cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    let end = layout.end;
    let n_records = records.len();
    match violation {
        V::FlagReserved | V::FlagExtendedInCurrentMinor | V::FlagIgnorableOnCore => {
            let k = rng.random_range(0..n_records);
            records[k].flags |= match violation {
                V::FlagReserved => 1 << rng.random_range(2..8),
                V::FlagExtendedInCurrentMinor => FLAG_EXTENDED,
                _ => FLAG_IGNORABLE,
            };
            at(k)
        }
        V::KindUnknown | V::KindUnknownNewerMinor => {
            let kind = pick(rng, &[0x00, 0x0a, 0x0b, 0x42, 0x7f, 0x80, 0xfe, 0xff]);
            let len = rng.random_range(0..=12);
            let body = random_bytes(rng, len);
            let flags = if violation == V::KindUnknown {
                pick(rng, &[0, FLAG_IGNORABLE])
            } else {
                let minor = rng.random_range(FORMAT_MINOR + 1..=u16::MAX);
                records[0].body[2..4].copy_from_slice(&minor.to_le_bytes());
                pick(rng, &[0, FLAG_EXTENDED])
            };
            let k = rng.random_range(1..=end);
            insert(records, k, RawRecord { kind, flags, body });
            at(k)
        }
        _ => None,
    }
}

/// EXTENSION records.
pub(super) fn extensions<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut Vec<RawRecord>,
    layout: &Layout,
    _cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    let end = layout.end;
    match violation {
        V::ExtensionNotIgnorable => {
            insert(records, end, extension(b"local.layout", rng.random(), false));
            at(end)
        }
        V::ExtensionsOutOfOrder | V::ExtensionRepeated => {
            let name = pick(rng, &[&b"local.layout"[..], b"redb.tables", b"x"]);
            let version = rng.random_range(1..=u32::MAX);
            let (first, second) = if violation == V::ExtensionRepeated {
                ((name, version), (name, version))
            } else if rng.random() {
                ((name, version), (name, version - 1))
            } else {
                ((b"zz".as_slice(), 0), (name, version))
            };
            insert(records, end, extension(first.0, first.1, true));
            insert(records, end + 1, extension(second.0, second.1, true));
            at(end + 1)
        }
        V::ExtensionBeforeMeta => {
            let k = rng.random_range(2..=layout.meta);
            insert(records, k, extension(b"local.layout", 1, true));
            at(k)
        }
        V::ExtensionNameMalformed | V::ExtensionNameOverLimit => {
            let name: Vec<u8> = if violation == V::ExtensionNameMalformed {
                pick(rng, &[&b""[..], b"Local.layout", b".x", b"local layout", b"\xfflocal"])
                    .to_vec()
            } else {
                vec![b'x'; rng.random_range(NAME_LEN_MAX + 1..=400)]
            };
            insert(records, end, extension(&name, 1, true));
            at(end)
        }
        _ => None,
    }
}

/// The order of the sections.
pub(super) fn order<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut Vec<RawRecord>,
    layout: &Layout,
    cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    let end = layout.end;
    match violation {
        V::CutMissing => {
            remove(records, 1);
            at(1)
        }
        V::CutRepeated => {
            let k = rng.random_range(2..=end);
            let cut = records[1].clone();
            insert(records, k, cut);
            at(k)
        }
        V::MetaMissing => {
            remove(records, layout.meta);
            at(layout.meta)
        }
        V::MetaRepeated => {
            let k = rng.random_range(layout.meta + 1..=end);
            let meta = records[layout.meta].clone();
            insert(records, k, meta);
            at(k)
        }
        V::MetaAmongEntries => {
            let meta = records.remove(layout.meta);
            let k = rng.random_range(layout.entries.start..layout.meta);
            records.insert(k, meta);
            at(k)
        }
        V::SnapshotRecordMissing => {
            let k = layout.snapshot?;
            remove(records, k);
            at(k)
        }
        V::SnapshotUnannounced | V::FilesWithoutSnapshot => {
            let k = layout.snapshot?;
            cut.has_snapshot = false;
            cut.n_snapshot_files = 0;
            cut.snapshot_bytes = 0;
            set_cut(records, cut);
            if violation == V::FilesWithoutSnapshot {
                if layout.files.is_empty() {
                    return None;
                }
                remove(records, k);
            }
            at(k)
        }
        V::CutCountsFilesWithoutSnapshot => {
            cut.has_snapshot = false;
            set_cut(records, cut);
            at(1)
        }
        V::ChunkWithoutFile => {
            let places: Vec<usize> =
                (1..=end).filter(|&k| records[k].kind != RecordKind::Chunk as u8).collect();
            let k = pick(rng, &places);
            let len = rng.random_range(1..=16);
            let data = random_bytes(rng, len);
            insert(records, k, RawRecord::new(RecordKind::Chunk, chunk_body(0, &data)));
            at(k)
        }
        _ => None,
    }
}

/// The CUT's range and counts, and END's count.
pub(super) fn cut<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut [RawRecord],
    layout: &Layout,
    cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    let end = layout.end;
    let n_entries = layout.n_entries();
    let entry = |k: usize| layout.entries.start + k;
    match violation {
        V::FirstZero | V::FirstOverLimit | V::LastOverLimit | V::LastBelowFirst => {
            match violation {
                V::FirstZero => cut.first = 0,
                V::FirstOverLimit => cut.first = over(rng, INDEX_MAX),
                V::LastOverLimit => cut.last = over(rng, INDEX_MAX),
                _ if cut.first >= 2 => cut.last = rng.random_range(0..=cut.first - 2),
                _ => {
                    cut.first = cut.last.saturating_add(2 + rng.random_range(0..1000));
                    if cut.first > INDEX_MAX {
                        return None;
                    }
                }
            }
            set_cut(records, cut);
            at(1)
        }
        V::CutEntriesMore => {
            cut.last += 1;
            set_cut(records, cut);
            at(layout.meta)
        }
        V::CutEntriesFewer => {
            cut.last -= 1;
            set_cut(records, cut);
            at(entry(n_entries - 1))
        }
        V::CutFirstLater | V::CutFirstEarlier => {
            if violation == V::CutFirstLater {
                cut.first += 1;
            } else {
                cut.first -= 1;
            }
            set_cut(records, cut);
            at(entry(0))
        }
        V::CutFilesMore => {
            layout.snapshot?;
            cut.n_snapshot_files += rng.random_range(1..=3);
            set_cut(records, cut);
            at(end)
        }
        V::CutFilesFewer => {
            let last = layout.files.last()?;
            cut.n_snapshot_files -= 1;
            set_cut(records, cut);
            at(last.at)
        }
        V::CutBytesMore => {
            layout.snapshot?;
            cut.snapshot_bytes += pick(rng, &[1, 2, CHUNK_LEN as u64, 1 << 40]);
            set_cut(records, cut);
            at(end)
        }
        V::CutBytesFewer => {
            if cut.snapshot_bytes == 0 {
                return None;
            }
            cut.snapshot_bytes -= rng.random_range(1..=cut.snapshot_bytes);
            set_cut(records, cut);
            let mut total = 0;
            let over = layout.files.iter().find(|f| {
                total += f.len;
                total > cut.snapshot_bytes
            })?;
            at(over.at)
        }
        V::FilesOverLimit => {
            layout.snapshot?;
            cut.n_snapshot_files = over(rng, SNAPSHOT_FILES_MAX);
            set_cut(records, cut);
            at(1)
        }
        V::CutTagInvalid => {
            records[1].body[16] = rng.random_range(2..=u8::MAX);
            at(1)
        }
        V::EndCountWrong => {
            let n = end as u64;
            let wrong = match rng.random_range(0..5) {
                0 => 0,
                1 => n - 1,
                2 => n + 1,
                3 => u64::MAX,
                _ => rng.random_range(0..n),
            };
            put_u64(&mut records[end].body, 0, wrong);
            at(end)
        }
        _ => None,
    }
}

/// Record bodies and frames.
pub(super) fn frames<R: Rng + ?Sized>(
    violation: Violation,
    records: &mut [RawRecord],
    _layout: &Layout,
    _cut: &mut Cut,
    rng: &mut R,
) -> Option<Applied> {
    let n_records = records.len();
    match violation {
        V::BodyTrailingBytes => {
            let k = rng.random_range(0..n_records);
            let len = rng.random_range(1..=8);
            let extra = random_bytes(rng, len);
            records[k].body.extend_from_slice(&extra);
            at(k)
        }
        V::BodyTruncated => {
            let k = rng.random_range(0..n_records);
            records[k].body.pop();
            at(k)
        }
        V::RecordBodyOverLimit => {
            let k = rng.random_range(0..n_records);
            Some(Applied { at: k, body_len: Some(over_u32(rng, RECORD_BODY_LEN_MAX)) })
        }
        _ => None,
    }
}
