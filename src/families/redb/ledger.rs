//! `PageLedger`: what the backend last wrote or read at each extent of the database file in
//! this session, as a CRC-32C, so a later read of the same bytes can be checked against it.
//!
//! redb verifies its page checksums only when it repairs a database or checks its integrity,
//! not on ordinary reads. A misdirected write (it lands elsewhere; the intended location keeps
//! an older page) therefore leaves a page that is internally valid but stale, and redb would
//! serve it as current: a silent wrong value. The family closes that hole in two layers:
//! redb's integrity check on every open covers pages written in earlier sessions, and this
//! ledger covers the session itself. Every write records its extent; every read is checked
//! against each recorded extent it fully covers, and a read that touches no recorded extent
//! is recorded in turn (it was either verified by the integrity check at open, or is caught
//! when it differs on a later read).
//!
//! Guarantees: no false alarm (an extent is only checked against the bytes last written or
//! read there; a write or a length change forgets every extent it overlaps), and memory
//! bounded by [`MAX_EXTENTS`] entries (beyond it new extents are not recorded, so checking
//! degrades to what is already recorded, never to a false alarm).

use std::collections::BTreeMap;

/// The most extents remembered (about 40 MiB of ledger; 4 GiB of 4 KiB pages).
pub const MAX_EXTENTS: usize = 1 << 20;

/// A read that disagreed with what the ledger remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// File offset of the extent whose bytes changed.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// Recorded extents: start offset → (length, CRC-32C). Extents never overlap.
#[derive(Debug, Default)]
pub struct PageLedger {
    extents: BTreeMap<u64, (u64, u32)>,
}

impl PageLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        PageLedger::default()
    }

    /// Number of extents remembered.
    pub fn len(&self) -> usize {
        self.extents.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// Starts of the recorded extents that overlap `[offset, offset + len)`, in order.
    fn overlapping(&self, offset: u64, len: u64) -> Vec<u64> {
        let end = offset.saturating_add(len);
        let mut starts: Vec<u64> = self
            .extents
            .range(..end)
            .rev()
            .take_while(|(start, (l, _))| start.saturating_add(*l) > offset)
            .map(|(start, _)| *start)
            .collect();
        starts.reverse();
        starts
    }

    fn insert(&mut self, offset: u64, data: &[u8]) {
        if !data.is_empty() && self.extents.len() < MAX_EXTENTS {
            self.extents.insert(offset, (data.len() as u64, crc32c::crc32c(data)));
        }
    }

    /// Records that `data` was written at `offset`, forgetting what it overwrote.
    pub fn wrote(&mut self, offset: u64, data: &[u8]) {
        for start in self.overlapping(offset, data.len() as u64) {
            self.extents.remove(&start);
        }
        self.insert(offset, data);
    }

    /// Forgets every extent overlapping `offset..offset + len` (a failed write left it
    /// holding old or torn bytes).
    pub fn forget(&mut self, offset: u64, len: u64) {
        for start in self.overlapping(offset, len) {
            self.extents.remove(&start);
        }
    }

    /// Checks `data`, just read at `offset`, against every recorded extent it fully covers;
    /// records it when it touches none.
    pub fn read(&mut self, offset: u64, data: &[u8]) -> Result<(), Mismatch> {
        let starts = self.overlapping(offset, data.len() as u64);
        if starts.is_empty() {
            self.insert(offset, data);
            return Ok(());
        }
        let end = offset + data.len() as u64;
        for start in starts {
            let (len, crc) = self.extents[&start];
            if start < offset || start + len > end {
                continue; // Only partly covered: nothing to compare it with.
            }
            let from = (start - offset) as usize;
            if crc32c::crc32c(&data[from..from + len as usize]) != crc {
                return Err(Mismatch { offset: start, len });
            }
        }
        Ok(())
    }

    /// Forgets every extent that reaches past `len` (the file was resized to it).
    pub fn resized(&mut self, len: u64) {
        let doomed: Vec<u64> = self
            .extents
            .iter()
            .filter(|(start, (l, _))| start.saturating_add(*l) > len)
            .map(|(start, _)| *start)
            .collect();
        for start in doomed {
            self.extents.remove(&start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_of_what_was_written_passes_and_a_changed_one_fails() {
        let mut ledger = PageLedger::new();
        ledger.wrote(4096, &[1; 4096]);
        assert_eq!(ledger.read(4096, &[1; 4096]), Ok(()));
        assert_eq!(ledger.read(4096, &[2; 4096]), Err(Mismatch { offset: 4096, len: 4096 }));
    }

    #[test]
    fn a_first_read_is_recorded_and_checked_next_time() {
        let mut ledger = PageLedger::new();
        assert_eq!(ledger.read(0, &[7; 320]), Ok(()));
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger.read(0, &[8; 320]), Err(Mismatch { offset: 0, len: 320 }));
    }

    #[test]
    fn a_larger_read_checks_the_extents_inside_it_and_skips_partial_ones() {
        let mut ledger = PageLedger::new();
        ledger.wrote(0, &[1; 100]);
        ledger.wrote(100, &[2; 100]);
        ledger.wrote(200, &[3; 100]);
        let mut bytes = [1u8; 250];
        bytes[100..200].fill(2);
        bytes[200..].fill(9); // extent 200..300 is only partly read: not compared
        assert_eq!(ledger.read(0, &bytes), Ok(()));
        bytes[150] = 0;
        assert_eq!(ledger.read(0, &bytes), Err(Mismatch { offset: 100, len: 100 }));
    }

    #[test]
    fn a_write_forgets_what_it_overlaps() {
        let mut ledger = PageLedger::new();
        ledger.wrote(0, &[1; 100]);
        ledger.wrote(100, &[1; 100]);
        ledger.wrote(50, &[2; 100]);
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger.read(50, &[2; 100]), Ok(()));
        // The old extents are gone: reads of their ranges are not compared with old bytes.
        assert_eq!(ledger.read(0, &[5; 50]), Ok(()));
        assert_eq!(ledger.read(150, &[5; 50]), Ok(()));
    }

    #[test]
    fn a_resize_forgets_extents_past_the_new_end() {
        let mut ledger = PageLedger::new();
        ledger.wrote(0, &[1; 100]);
        ledger.wrote(100, &[1; 100]);
        ledger.resized(150);
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger.read(100, &[0; 100]), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let mut ledger = PageLedger::new();
        for i in 0..(MAX_EXTENTS as u64 + 10) {
            ledger.wrote(i * 2, &[1]);
        }
        assert_eq!(ledger.len(), MAX_EXTENTS);
    }
}
