//! `diff`: the first difference between the Raft-visible states of two images, in words.
//!
//! Both images stream side by side (their canonical order makes equal states line up
//! record for record), so memory stays flat. The order and wording follow
//! `state::first_difference`: retained range, entries (by index, then field), meta,
//! snapshot meta, snapshot files (in the image's path order, then content, then file
//! metadata). The source-family header fields are not part of the state and never differ.
//! After the first difference both images are still read to the end, so a damaged image is
//! an error rather than a difference.

use std::io::Read;

use thiserror::Error;

use super::error::ImageError;
use super::format::path_order;
use super::reader::{ImageReader, Item};
use crate::contract::{Entry, Meta, SnapshotFileInfo, SnapshotMeta};
use crate::state::{entry_difference, show_vote, snapshot_meta_difference};

/// Which of the two images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The first (`a`).
    First,
    /// The second (`b`).
    Second,
}

/// An image that failed validation during a diff.
#[derive(Debug, Error)]
#[error("the {} image: {error}", if *.side == Side::First { "first" } else { "second" })]
pub struct DiffError {
    /// Which image.
    pub side: Side,
    /// What is wrong with it.
    #[source]
    pub error: ImageError,
}

enum Event {
    Range(u64, u64),
    Entry(Entry),
    Meta(Meta),
    Snapshot(Option<SnapshotMeta>),
    File(SnapshotFileInfo),
    /// A chunk at this file offset; its bytes are in `Events::chunk`.
    Chunk(u64),
    FileEnd,
    End,
}

/// Reads an image as a stream of logical events: the snapshot's absence becomes an event,
/// and each file's end is marked.
struct Events<R: Read> {
    reader: ImageReader<R>,
    side: Side,
    /// Bytes of the current file still to come.
    file_remaining: u64,
    after_meta: bool,
    pending_end: bool,
    /// The last chunk's bytes.
    chunk: Vec<u8>,
}

impl<R: Read> Events<R> {
    fn new(input: R, side: Side) -> Self {
        Events {
            reader: ImageReader::new(input),
            side,
            file_remaining: 0,
            after_meta: false,
            pending_end: false,
            chunk: Vec::new(),
        }
    }

    fn err(&self, error: ImageError) -> DiffError {
        DiffError { side: self.side, error }
    }

    fn next(&mut self) -> Result<Event, DiffError> {
        if self.pending_end {
            self.pending_end = false;
            return Ok(Event::FileEnd);
        }
        loop {
            let after_meta = self.after_meta;
            self.after_meta = false;
            let side = self.side;
            let record = self.reader.next_record().map_err(|error| DiffError { side, error })?;
            match record.item {
                Item::Header(_) => {}
                Item::Ignored { .. } => self.after_meta = after_meta,
                Item::Extension(_) => {
                    if after_meta {
                        // META was last and no SNAPSHOT followed.
                        return Ok(Event::Snapshot(None));
                    }
                }
                Item::Cut(cut) => return Ok(Event::Range(cut.first, cut.last)),
                Item::Entry(e) => return Ok(Event::Entry(e)),
                Item::Meta(m) => {
                    self.after_meta = true;
                    return Ok(Event::Meta(m));
                }
                Item::Snapshot(m) => return Ok(Event::Snapshot(Some(m))),
                Item::File(info) => {
                    self.file_remaining = info.len;
                    if info.len == 0 {
                        self.pending_end = true;
                    }
                    return Ok(Event::File(info));
                }
                Item::Chunk { offset, data } => {
                    self.file_remaining -= data.len() as u64;
                    if self.file_remaining == 0 {
                        self.pending_end = true;
                    }
                    self.chunk.clear();
                    self.chunk.extend_from_slice(data);
                    return Ok(Event::Chunk(offset));
                }
                Item::End(_) => {
                    if after_meta {
                        return Ok(Event::Snapshot(None));
                    }
                    return Ok(Event::End);
                }
            }
        }
    }

    /// Reads the rest of the image, validating it.
    fn drain(&mut self) -> Result<(), DiffError> {
        self.reader.verify_all().map(|_| ()).map_err(|e| self.err(e))
    }
}

/// The first difference between the states two images hold, or `None` when they are
/// equal. Both images are fully validated; an invalid one is an error naming it.
pub fn diff(a: impl Read, b: impl Read) -> Result<Option<String>, DiffError> {
    let mut left = Events::new(a, Side::First);
    let mut right = Events::new(b, Side::Second);
    let difference = first_difference(&mut left, &mut right)?;
    left.drain()?;
    right.drain()?;
    Ok(difference)
}

fn first_difference<A: Read, B: Read>(
    left: &mut Events<A>,
    right: &mut Events<B>,
) -> Result<Option<String>, DiffError> {
    // A file whose metadata differs is reported after its content, as the state's
    // `first_difference` does.
    let mut pending_meta: Option<String> = None;
    let mut current: Option<(String, u64, u64)> = None;
    loop {
        let x = left.next()?;
        let y = right.next()?;
        match (x, y) {
            (Event::Range(f1, l1), Event::Range(f2, l2)) => {
                if (f1, l1) != (f2, l2) {
                    return Ok(Some(format!(
                        "retained range differs: [{f1}, {l1}] vs [{f2}, {l2}]"
                    )));
                }
            }
            (Event::Entry(p), Event::Entry(q)) => {
                if let Some(what) = entry_difference(&p, &q) {
                    return Ok(Some(format!("entry {}: {what}", p.index)));
                }
            }
            (Event::Meta(m), Event::Meta(n)) => {
                if m.term != n.term {
                    return Ok(Some(format!("meta term differs: {} vs {}", m.term, n.term)));
                }
                if m.voted_for != n.voted_for {
                    return Ok(Some(format!(
                        "meta voted_for differs: {} vs {}",
                        show_vote(&m.voted_for),
                        show_vote(&n.voted_for)
                    )));
                }
            }
            (Event::Snapshot(s), Event::Snapshot(t)) => match (s, t) {
                (None, None) => return Ok(None),
                (Some(s), None) => {
                    return Ok(Some(format!(
                        "snapshot differs: snapshot at index {} vs none",
                        s.last_included_index
                    )))
                }
                (None, Some(t)) => {
                    return Ok(Some(format!(
                        "snapshot differs: none vs snapshot at index {}",
                        t.last_included_index
                    )))
                }
                (Some(s), Some(t)) => {
                    if let Some(what) = snapshot_meta_difference(&s, &t) {
                        return Ok(Some(what));
                    }
                }
            },
            (Event::File(f), Event::File(g)) => {
                match path_order(f.path.as_str(), g.path.as_str()) {
                    std::cmp::Ordering::Less => {
                        return Ok(Some(format!("snapshot file {}: only in the first", f.path)))
                    }
                    std::cmp::Ordering::Greater => {
                        return Ok(Some(format!("snapshot file {}: only in the second", g.path)))
                    }
                    std::cmp::Ordering::Equal => {}
                }
                pending_meta = f
                    .file_meta
                    .difference(&g.file_meta)
                    .map(|what| format!("snapshot file {}: file metadata {what}", f.path));
                current = Some((f.path.to_string(), f.len, g.len));
            }
            (Event::Chunk(offset), Event::Chunk(_)) => {
                let (p, q) = (&left.chunk, &right.chunk);
                if p != q {
                    let at =
                        p.iter().zip(q).position(|(a, b)| a != b).unwrap_or(p.len().min(q.len()));
                    return Ok(Some(content_difference(&current, offset + at as u64)));
                }
            }
            (Event::FileEnd, Event::FileEnd) => {
                if let Some(what) = pending_meta.take() {
                    return Ok(Some(what));
                }
            }
            (Event::FileEnd, Event::Chunk(offset)) | (Event::Chunk(offset), Event::FileEnd) => {
                return Ok(Some(content_difference(&current, offset)));
            }
            (Event::End, Event::End) => return Ok(None),
            (Event::File(f), _) => {
                return Ok(Some(format!("snapshot file {}: only in the first", f.path)))
            }
            (_, Event::File(g)) => {
                return Ok(Some(format!("snapshot file {}: only in the second", g.path)))
            }
            // Equal ranges give equal entry counts and equal snapshot presence gives the
            // same sections, so the streams can only part at files; anything else would
            // be a reader bug, reported rather than hidden.
            _ => return Ok(Some("the images' record streams part unexpectedly".to_string())),
        }
    }
}

fn content_difference(current: &Option<(String, u64, u64)>, at: u64) -> String {
    let (path, l1, l2) = current.clone().unwrap_or_default();
    format!("snapshot file {path}: content differs at byte {at} (lengths {l1} vs {l2})")
}
