//! The order of records, as a small state machine both the writer and the reader drive.
//!
//! It holds O(1) state (plus the previous snapshot path and extension name), which is what
//! keeps the reader's memory flat: index order, path order, file/directory conflicts and
//! every count are checked against the previous record and running totals only.

use std::cmp::Ordering;

use super::error::ErrorClass;
use super::format::{path_order, CHUNK_LEN, INDEX_MAX, SNAPSHOT_FILES_MAX};
use super::planted::PlantedReaderBug;
use super::record::{Cut, Fault};
use crate::contract::Index;

/// One record as the grammar sees it.
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    /// CUT.
    Cut(&'a Cut),
    /// ENTRY with its index.
    Entry(Index),
    /// META.
    Meta,
    /// SNAPSHOT.
    Snapshot,
    /// FILE with its path and length.
    File(&'a str, u64),
    /// CHUNK with its offset and data length.
    Chunk(u64, usize),
    /// EXTENSION with its name and version.
    Extension(&'a str, u32),
    /// An unknown record of a newer minor, marked ignorable.
    Ignored,
    /// END with its record count and its own record number.
    End(u64, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Cut,
    Entries,
    Meta,
    Snapshot,
    Files,
    Chunks,
    Tail,
    Done,
}

/// The record-order state machine (after the HEADER).
#[derive(Clone, Debug)]
pub struct Grammar {
    expect: Expect,
    cut: Option<Cut>,
    next_index: Index,
    n_files: u64,
    n_bytes: u64,
    prev_path: Option<String>,
    file_offset: u64,
    file_remaining: u64,
    prev_extension: Option<(String, u32)>,
    /// A rule this grammar forgets (a reader's, in tests only; never the writer's).
    planted: Option<PlantedReaderBug>,
}

impl Default for Grammar {
    fn default() -> Self {
        Grammar::new()
    }
}

fn fault(class: ErrorClass, detail: impl Into<String>) -> Fault {
    Fault::new(class, detail)
}

impl Grammar {
    /// The state right after the HEADER.
    pub fn new() -> Self {
        Grammar {
            expect: Expect::Cut,
            cut: None,
            next_index: 0,
            n_files: 0,
            n_bytes: 0,
            prev_path: None,
            file_offset: 0,
            file_remaining: 0,
            prev_extension: None,
            planted: None,
        }
    }

    /// The state right after the HEADER, forgetting the rule `bug` names (tests only).
    pub fn with_planted_bug(bug: Option<PlantedReaderBug>) -> Self {
        Grammar { planted: bug, ..Grammar::new() }
    }

    /// The CUT, once accepted.
    pub fn cut(&self) -> Option<&Cut> {
        self.cut.as_ref()
    }

    fn after_files(&self) -> Expect {
        match self.cut {
            Some(cut) if self.n_files < cut.n_snapshot_files => Expect::Files,
            _ => Expect::Tail,
        }
    }

    /// At the end of the snapshot section: the files' lengths add up to the CUT's total.
    fn check_totals(&self) -> Result<(), Fault> {
        match self.cut {
            Some(cut) if cut.snapshot_bytes != self.n_bytes => Err(fault(
                ErrorClass::CountMismatch,
                format!(
                    "the snapshot files hold {} bytes, the CUT announces {}",
                    self.n_bytes, cut.snapshot_bytes
                ),
            )),
            _ => Ok(()),
        }
    }

    /// What is missing when a record other than the expected one arrives, as a fault.
    fn missing(&self, got: &str) -> Fault {
        let cut = self.cut.unwrap_or(Cut {
            first: 0,
            last: 0,
            has_snapshot: false,
            n_snapshot_files: 0,
            snapshot_bytes: 0,
        });
        // A record that may legitimately follow a section arriving while the section still
        // owes records means the section is short: a count mismatch. Anything else is out
        // of order.
        let short = match self.expect {
            Expect::Entries => matches!(got, "META" | "END"),
            Expect::Files | Expect::Chunks => matches!(got, "FILE" | "EXTENSION" | "END"),
            _ => false,
        };
        if !short && matches!(self.expect, Expect::Entries | Expect::Files | Expect::Chunks) {
            return fault(
                ErrorClass::RecordOrder,
                format!(
                    "{got} inside the {} section",
                    match self.expect {
                        Expect::Entries => "log",
                        _ => "snapshot file",
                    }
                ),
            );
        }
        match self.expect {
            Expect::Cut => fault(ErrorClass::RecordOrder, format!("{got} before the CUT record")),
            Expect::Entries => fault(
                ErrorClass::CountMismatch,
                format!(
                    "{got} where entry {} was expected: the CUT says the log ends at {}",
                    self.next_index, cut.last
                ),
            ),
            Expect::Meta => {
                fault(ErrorClass::RecordOrder, format!("{got} where META was expected"))
            }
            Expect::Snapshot => fault(
                ErrorClass::RecordOrder,
                format!("{got} where SNAPSHOT was expected (the CUT says there is a snapshot)"),
            ),
            Expect::Files => fault(
                ErrorClass::CountMismatch,
                format!(
                    "{got} after {} of the {} snapshot files the CUT announces",
                    self.n_files, cut.n_snapshot_files
                ),
            ),
            Expect::Chunks => fault(
                ErrorClass::CountMismatch,
                format!(
                    "{got} where file {} needs {} more bytes at offset {}",
                    self.prev_path.as_deref().unwrap_or(""),
                    self.file_remaining,
                    self.file_offset
                ),
            ),
            Expect::Tail => fault(
                ErrorClass::RecordOrder,
                format!("{got} after the snapshot section (only EXTENSION or END may follow)"),
            ),
            Expect::Done => fault(ErrorClass::RecordOrder, format!("{got} after END")),
        }
    }

    /// Accepts the next record or says what is wrong with it.
    pub fn accept(&mut self, step: Step<'_>) -> Result<(), Fault> {
        match step {
            Step::Ignored => {
                if self.expect == Expect::Done {
                    return Err(self.missing("a record"));
                }
                Ok(())
            }
            Step::Cut(cut) => {
                if self.expect != Expect::Cut {
                    return Err(self.missing("CUT"));
                }
                check_cut(cut)?;
                if self.planted == Some(PlantedReaderBug::ExclusiveIndexLimit)
                    && cut.last == INDEX_MAX
                {
                    return Err(fault(ErrorClass::OverLimit, "last index at the limit (planted)"));
                }
                self.cut = Some(*cut);
                self.next_index = cut.first;
                self.expect = if cut.last >= cut.first { Expect::Entries } else { Expect::Meta };
                Ok(())
            }
            Step::Entry(index) => {
                let Some(cut) = self.cut else { return Err(self.missing("ENTRY")) };
                if self.expect == Expect::Meta {
                    return Err(fault(
                        ErrorClass::CountMismatch,
                        format!("entry {index} after the CUT's last index {}", cut.last),
                    ));
                }
                if self.expect != Expect::Entries {
                    return Err(self.missing("ENTRY"));
                }
                match index.cmp(&self.next_index) {
                    Ordering::Less => {
                        return Err(fault(
                            ErrorClass::IndexDisorder,
                            format!("entry index {index}, expected {}", self.next_index),
                        ))
                    }
                    Ordering::Greater => {
                        return Err(fault(
                            ErrorClass::IndexGap,
                            format!(
                                "entry index {index}, expected {}: entries {}..{} are missing",
                                self.next_index,
                                self.next_index,
                                index - 1
                            ),
                        ))
                    }
                    Ordering::Equal => {}
                }
                if index == cut.last {
                    self.expect = Expect::Meta;
                } else {
                    self.next_index = index + 1;
                }
                Ok(())
            }
            Step::Meta => {
                if self.expect != Expect::Meta {
                    return Err(self.missing("META"));
                }
                let has_snapshot = self.cut.is_some_and(|c| c.has_snapshot);
                self.expect = if has_snapshot { Expect::Snapshot } else { Expect::Tail };
                Ok(())
            }
            Step::Snapshot => {
                if self.expect != Expect::Snapshot {
                    return Err(self.missing("SNAPSHOT"));
                }
                self.expect = self.after_files();
                Ok(())
            }
            Step::File(path, len) => {
                if self.expect == Expect::Tail && self.cut.is_some_and(|c| c.has_snapshot) {
                    return Err(fault(
                        ErrorClass::CountMismatch,
                        format!(
                            "FILE {path:?} beyond the {} snapshot files the CUT announces",
                            self.n_files
                        ),
                    ));
                }
                if self.expect != Expect::Files {
                    return Err(self.missing("FILE"));
                }
                let planted = self.planted == Some(PlantedReaderBug::SkipPathOrder);
                if let Some(prev) = self.prev_path.as_ref().filter(|_| !planted) {
                    match path_order(prev, path) {
                        Ordering::Equal => {
                            return Err(fault(
                                ErrorClass::DuplicatePath,
                                format!("snapshot path {path:?} appears twice"),
                            ))
                        }
                        Ordering::Greater => {
                            return Err(fault(
                                ErrorClass::PathOrder,
                                format!("snapshot path {path:?} comes after {prev:?}"),
                            ))
                        }
                        Ordering::Less => {}
                    }
                    if path.len() > prev.len()
                        && path.as_bytes()[prev.len()] == b'/'
                        && path.starts_with(prev.as_str())
                    {
                        return Err(fault(
                            ErrorClass::PathConflict,
                            format!("snapshot path {prev:?} is a file and a directory of {path:?}"),
                        ));
                    }
                }
                let cut = self.cut.unwrap_or_else(unreachable_cut);
                let total = self.n_bytes.checked_add(len).filter(|t| *t <= cut.snapshot_bytes);
                let Some(total) = total else {
                    return Err(fault(
                        ErrorClass::CountMismatch,
                        format!(
                            "file {path:?} of {len} bytes takes the snapshot past the {} bytes \
                             the CUT announces",
                            cut.snapshot_bytes
                        ),
                    ));
                };
                self.n_bytes = total;
                self.n_files += 1;
                self.prev_path = Some(path.to_string());
                self.file_offset = 0;
                self.file_remaining = len;
                self.expect = if len > 0 { Expect::Chunks } else { self.after_files() };
                Ok(())
            }
            Step::Chunk(offset, len) => {
                if self.expect != Expect::Chunks {
                    return Err(fault(
                        ErrorClass::RecordOrder,
                        "CHUNK without a FILE that still needs bytes".to_string(),
                    ));
                }
                if offset != self.file_offset {
                    return Err(fault(
                        ErrorClass::Malformed,
                        format!("chunk at file offset {offset}, expected {}", self.file_offset),
                    ));
                }
                let want = self.file_remaining.min(CHUNK_LEN as u64);
                if len as u64 != want {
                    return Err(fault(
                        ErrorClass::Malformed,
                        format!(
                            "chunk of {len} bytes at file offset {offset}, the canonical chunk \
                             here has {want}"
                        ),
                    ));
                }
                self.file_offset += want;
                self.file_remaining -= want;
                if self.file_remaining == 0 {
                    self.expect = self.after_files();
                }
                Ok(())
            }
            Step::Extension(name, version) => {
                if self.expect != Expect::Tail {
                    return Err(self.missing("EXTENSION"));
                }
                self.check_totals()?;
                if let Some((prev_name, prev_version)) = &self.prev_extension {
                    let order =
                        prev_name.as_bytes().cmp(name.as_bytes()).then(prev_version.cmp(&version));
                    if order != Ordering::Less {
                        return Err(fault(
                            ErrorClass::RecordOrder,
                            format!(
                                "extension ({name:?}, {version}) does not come after \
                                 ({prev_name:?}, {prev_version})"
                            ),
                        ));
                    }
                }
                self.prev_extension = Some((name.to_string(), version));
                Ok(())
            }
            Step::End(n_records, number) => {
                if self.expect != Expect::Tail {
                    return Err(self.missing("END"));
                }
                self.check_totals()?;
                if n_records != number && self.planted != Some(PlantedReaderBug::SkipEndCount) {
                    return Err(fault(
                        ErrorClass::CountMismatch,
                        format!("END counts {n_records} records before it, there are {number}"),
                    ));
                }
                self.expect = Expect::Done;
                Ok(())
            }
        }
    }
}

fn unreachable_cut() -> Cut {
    // Files are only expected after a CUT; this value is never used.
    Cut { first: 1, last: 0, has_snapshot: false, n_snapshot_files: 0, snapshot_bytes: 0 }
}

/// Checks a CUT's values on their own.
pub fn check_cut(cut: &Cut) -> Result<(), Fault> {
    if cut.first == 0 {
        return Err(fault(ErrorClass::Malformed, "first index 0; the first index is at least 1"));
    }
    if cut.first > INDEX_MAX {
        return Err(fault(
            ErrorClass::OverLimit,
            format!("first index {}, the limit is {INDEX_MAX}", cut.first),
        ));
    }
    if cut.last > INDEX_MAX {
        return Err(fault(
            ErrorClass::OverLimit,
            format!("last index {}, the limit is {INDEX_MAX}", cut.last),
        ));
    }
    if cut.last < cut.first - 1 {
        return Err(fault(
            ErrorClass::Malformed,
            format!("last index {} is below first - 1 = {}", cut.last, cut.first - 1),
        ));
    }
    if !cut.has_snapshot && (cut.n_snapshot_files != 0 || cut.snapshot_bytes != 0) {
        return Err(fault(
            ErrorClass::Malformed,
            format!(
                "no snapshot, yet {} files and {} bytes",
                cut.n_snapshot_files, cut.snapshot_bytes
            ),
        ));
    }
    if cut.n_snapshot_files > SNAPSHOT_FILES_MAX {
        return Err(fault(
            ErrorClass::OverLimit,
            format!("{} snapshot files, the limit is {SNAPSHOT_FILES_MAX}", cut.n_snapshot_files),
        ));
    }
    Ok(())
}
