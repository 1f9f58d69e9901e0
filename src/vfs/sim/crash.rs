//! Power loss: which unsynced operations survive, how writes tear, and the recovered image.
//!
//! A crash is computed in one pass over the pending operations, oldest first per file and
//! per namespace: a [`Chooser`] decides the fate of each (random with the disk's crash
//! stream, or exactly as the enumerator asks), survivors are applied to the durable image,
//! and the visible image is rebuilt from it. Only files that had dirty state are rebuilt, so
//! a crash costs O(dirty bytes + number of inodes).

use std::collections::{BTreeMap, BTreeSet};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::faults::{chance, index_below, Overlay, Overlays};
use super::image::{
    apply_durable, apply_misdirected, make_unreadable, rot_sector, sector_bytes, sector_count,
    sector_pieces, DataOp, Ino, Node, State, ROOT,
};
use super::trace::{CrashFates, Fate, TraceArgs};

/// What a crash did, for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashSummary {
    /// Unsynced operations at the moment of the crash.
    pub pending: u64,
    /// How many of them survived (whole or torn).
    pub kept: u64,
    /// How many surviving writes were torn (at sector boundaries, or at the finer unit their
    /// file declared).
    pub torn_writes: u64,
}

/// The fate of one pending data operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Keep {
    Drop,
    Whole,
    /// Per piece of the write (split at the grain's boundaries): kept or not (a torn write).
    Torn(Vec<bool>, Grain),
}

/// What a torn write's pieces are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Grain {
    /// Sectors (the enumerator's unit).
    Sector,
    /// The file's tear unit: a sector, or the finer unit its owner declared.
    Unit,
}

/// How a pending data operation splits, as a chooser sees it: both counts are 0 for a
/// `set_len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pieces {
    /// Sectors the write touches.
    pub sectors: usize,
    /// Tear units the write touches (the sectors, unless the file declared a finer unit).
    pub units: usize,
}

/// How a torn write was torn (for the statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TearPattern {
    Prefix,
    Suffix,
    Subset,
}

/// Decides the fate of each pending operation at a crash.
pub(super) trait Chooser {
    /// Whether the namespace operation numbered `op_no` survives.
    fn namespace(&mut self, op_no: u64) -> bool;
    /// The fate of data operation `op_no`, split as `pieces`.
    fn data(&mut self, op_no: u64, pieces: Pieces) -> (Keep, Option<TearPattern>);
    /// Whether crash-time faults (torn sectors, misdirects, rot) may be injected.
    fn faults(&self) -> bool;
}

/// The random crash: each pending operation survives with `keep_probability`; a surviving
/// write of two or more tear units is torn at unit boundaries with `tear_probability`
/// (prefix, suffix or subset equally likely).
///
/// Under prefix persistence (`prefix_cut`), exactly the operations numbered below the cut
/// survive, whole. With `keeps_set_len`, every pending `set_len` survives.
pub(super) struct RandomChooser {
    pub rng: ChaCha8Rng,
    pub keep_probability: f64,
    pub tear_probability: f64,
    pub prefix_cut: Option<u64>,
    pub keeps_set_len: bool,
}

impl Chooser for RandomChooser {
    fn namespace(&mut self, op_no: u64) -> bool {
        match self.prefix_cut {
            Some(cut) => op_no < cut,
            None => chance(&mut self.rng, self.keep_probability),
        }
    }

    fn data(&mut self, op_no: u64, pieces: Pieces) -> (Keep, Option<TearPattern>) {
        let n_units = pieces.units;
        if n_units == 0 && self.keeps_set_len {
            return (Keep::Whole, None);
        }
        if let Some(cut) = self.prefix_cut {
            return (if op_no < cut { Keep::Whole } else { Keep::Drop }, None);
        }
        if !chance(&mut self.rng, self.keep_probability) {
            return (Keep::Drop, None);
        }
        if n_units < 2 || !chance(&mut self.rng, self.tear_probability) {
            return (Keep::Whole, None);
        }
        let n = n_units as u64;
        // A proper, non-empty part: 1..n-1 units.
        let count = 1 + index_below(&mut self.rng, n - 1) as usize;
        let torn = |mask| Keep::Torn(mask, Grain::Unit);
        match index_below(&mut self.rng, 3) {
            0 => (torn((0..n_units).map(|i| i < count).collect()), Some(TearPattern::Prefix)),
            1 => {
                let mask = (0..n_units).map(|i| i >= n_units - count).collect();
                (torn(mask), Some(TearPattern::Suffix))
            }
            _ => {
                let mut mask: Vec<bool> = (0..n_units).map(|_| self.rng.random::<bool>()).collect();
                // Keep it a proper part: at least one sector in, one out.
                let flip = index_below(&mut self.rng, n) as usize;
                if mask.iter().all(|kept| *kept) {
                    mask[flip] = false;
                } else if !mask.contains(&true) {
                    mask[flip] = true;
                }
                (torn(mask), Some(TearPattern::Subset))
            }
        }
    }

    fn faults(&self) -> bool {
        true
    }
}

/// A unit the enumerator keeps or drops: a whole operation (`sector: None`) or one sector
/// of a write (when writes are split into sectors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CrashUnit {
    /// The operation's number in the trace.
    pub op_no: u64,
    /// The sector index within the write (0 is its first sector), or `None` for the whole
    /// operation.
    pub sector: Option<usize>,
}

/// The enumerator's crash: exactly the listed units survive; no faults.
pub(super) struct ExactChooser {
    pub kept: BTreeSet<CrashUnit>,
    pub tear_writes: bool,
}

impl Chooser for ExactChooser {
    fn namespace(&mut self, op_no: u64) -> bool {
        self.kept.contains(&CrashUnit { op_no, sector: None })
    }

    /// Torn writes are split at sectors, whatever unit the file declared: enumerating every
    /// subset of bytes is out of reach, and the random crash covers finer tears.
    fn data(&mut self, op_no: u64, pieces: Pieces) -> (Keep, Option<TearPattern>) {
        let n_sectors = pieces.sectors;
        if !self.tear_writes || n_sectors == 0 {
            let keep = if self.kept.contains(&CrashUnit { op_no, sector: None }) {
                Keep::Whole
            } else {
                Keep::Drop
            };
            return (keep, None);
        }
        let mask: Vec<bool> = (0..n_sectors)
            .map(|i| self.kept.contains(&CrashUnit { op_no, sector: Some(i) }))
            .collect();
        if mask.iter().all(|kept| *kept) {
            (Keep::Whole, None)
        } else if !mask.contains(&true) {
            (Keep::Drop, None)
        } else {
            (Keep::Torn(mask, Grain::Sector), None)
        }
    }

    fn faults(&self) -> bool {
        false
    }
}

impl State {
    /// The units pending now, in operation order, as the enumerator counts them.
    pub fn pending_units(&self, tear_writes: bool) -> Vec<CrashUnit> {
        let sector_size = self.sector_size();
        let mut units: Vec<CrashUnit> =
            self.pending_ns.iter().map(|op| CrashUnit { op_no: op.op_no, sector: None }).collect();
        for node in self.nodes.values() {
            let Node::File(file) = node else { continue };
            for op in &file.pending {
                match op {
                    DataOp::Write { op_no, offset, data } if tear_writes => {
                        let n = sector_count(*offset, data.len(), sector_size);
                        units.extend((0..n).map(|i| CrashUnit { op_no: *op_no, sector: Some(i) }));
                    }
                    _ => units.push(CrashUnit { op_no: op.op_no(), sector: None }),
                }
            }
        }
        units.sort();
        units
    }

    /// Power loss and reboot: the visible image is discarded, the chooser decides which
    /// pending operations reach the durable image, and the disk continues from the result
    /// with a new generation (older handles fail with `Crashed`).
    pub fn crash(&mut self, chooser: &mut dyn Chooser) -> CrashSummary {
        let sector_size = self.sector_size();
        let crash_op_no = self.op_no + 1;
        let faults = chooser.faults();
        let mut summary = CrashSummary::default();
        // Only a timeline recording keeps what happened to each pending operation.
        let mut fates: Option<Vec<(u64, Fate)>> = self.trace.recording().then(Vec::new);

        // Namespace operations, oldest first; a kept rename lands whole.
        for op in std::mem::take(&mut self.pending_ns) {
            summary.pending += 1;
            let kept = chooser.namespace(op.op_no);
            if let Some(fates) = &mut fates {
                fates.push((op.op_no, if kept { Fate::Kept } else { Fate::Dropped }));
            }
            if kept {
                summary.kept += 1;
                for assign in op.assigns {
                    self.apply_assign(assign);
                }
            }
        }

        // Data operations, per file in inode order, oldest first.
        let dirty: Vec<Ino> = self
            .nodes
            .iter()
            .filter(|(_, node)| match node {
                Node::File(file) => !file.pending.is_empty() || file.diverged,
                Node::Dir(_) => false,
            })
            .map(|(ino, _)| *ino)
            .collect();
        let State { nodes, options, rngs, stats, .. } = self;
        for ino in &dirty {
            let Some(Node::File(file)) = nodes.get_mut(ino) else { continue };
            // Where the visible image may differ from the recovered one: what the pending
            // operations touched (unless the file diverged, when it may differ anywhere).
            let touched: Option<Vec<(u64, u64)>> =
                (!file.diverged).then(|| file.pending.iter().map(touched_range).collect());
            for op in std::mem::take(&mut file.pending) {
                summary.pending += 1;
                let unit = file.tear_unit.unwrap_or(sector_size);
                let pieces = match &op {
                    DataOp::Write { offset, data, .. } => Pieces {
                        sectors: sector_count(*offset, data.len(), sector_size),
                        units: sector_count(*offset, data.len(), unit),
                    },
                    DataOp::SetLen { .. } => Pieces { sectors: 0, units: 0 },
                };
                let (keep, pattern) = chooser.data(op.op_no(), pieces);
                let torn_sector = match &op {
                    DataOp::Write { op_no, offset, data } if faults => {
                        options.faults.torn_sector.fires(*op_no, &mut rngs.torn_sector).then(|| {
                            crash_tear_sector_pick(
                                &file.durable,
                                *offset,
                                data,
                                sector_size,
                                &mut rngs.torn_sector,
                            )
                        })
                    }
                    _ => None,
                };
                if let Some(fates) = &mut fates {
                    fates.push((op.op_no(), fate_of(&keep)));
                }
                match &keep {
                    Keep::Drop => {}
                    Keep::Whole => {
                        summary.kept += 1;
                        crash_clear_overlays(file, &op, None, sector_size);
                        let misdirect = faults
                            && matches!(op, DataOp::Write { .. })
                            && options.faults.misdirect.fires(op.op_no(), &mut rngs.misdirect);
                        if misdirect
                            && apply_misdirected(file, &op, sector_size, &mut rngs.misdirect)
                        {
                            stats.misdirects += 1;
                            if let Some(last) = fates.as_mut().and_then(|f| f.last_mut()) {
                                last.1 = Fate::Misdirected;
                            }
                        } else if !misdirect {
                            apply_durable(&mut file.durable, &op, None, sector_size);
                        }
                    }
                    Keep::Torn(mask, grain) => {
                        summary.kept += 1;
                        summary.torn_writes += 1;
                        let grain = match grain {
                            Grain::Sector => sector_size,
                            Grain::Unit => unit,
                        };
                        if grain < sector_size {
                            stats.torn_writes_sub_sector += 1;
                        }
                        crash_clear_overlays(file, &op, Some((mask, grain)), sector_size);
                        apply_durable(&mut file.durable, &op, Some(mask), grain);
                    }
                }
                match pattern {
                    Some(TearPattern::Prefix) => stats.torn_writes_prefix += 1,
                    Some(TearPattern::Suffix) => stats.torn_writes_suffix += 1,
                    Some(TearPattern::Subset) => stats.torn_writes_subset += 1,
                    None => {}
                }
                if let Some((sector, bytes)) = torn_sector {
                    file.overlays.insert(sector, Overlay::Replace(bytes));
                    stats.torn_sectors += 1;
                }
            }
            crash_rebuild_visible(file, touched.as_deref());
        }

        self.crash_recover_tree();
        for node in self.nodes.values_mut() {
            match node {
                Node::Dir(dir) => dir.visible = dir.durable.clone(),
                Node::File(file) => {
                    file.linked = true;
                    file.open_handles = 0;
                }
            }
        }
        self.recount_used();
        if faults {
            self.crash_inject_medium_faults(crash_op_no);
        }

        self.generation += 1;
        // The processes died with the power: their locks are gone.
        self.drop_locks();
        self.halted = false;
        self.armed = None;
        self.lying_syncs_left = 0;
        self.stats.crashes += 1;
        self.stats.crash_ops_kept += summary.kept;
        self.stats.crash_ops_dropped += summary.pending - summary.kept;
        self.trace_event(
            "crash",
            TraceArgs::Crash { kept: summary.kept, pending: summary.pending },
        );
        if let Some(fates) = fates {
            self.trace.record_crash(CrashFates { op_no: self.op_no, fates });
        }
        summary
    }

    /// Keeps what the root reaches through durable entries; a directory reachable by two
    /// names (possible when renames survive without the operations around them) keeps the
    /// first in walk order, and everything unreachable is dropped.
    fn crash_recover_tree(&mut self) {
        let mut live: BTreeSet<Ino> = BTreeSet::from([ROOT]);
        let mut stack = vec![ROOT];
        while let Some(dir_ino) = stack.pop() {
            let Some(Node::Dir(dir)) = self.nodes.get(&dir_ino) else { continue };
            let entries: Vec<(String, Ino)> =
                dir.durable.iter().map(|(n, i)| (n.clone(), *i)).collect();
            let mut dead = Vec::new();
            for (name, child) in entries {
                if !self.nodes.contains_key(&child) || !live.insert(child) {
                    dead.push(name);
                } else if matches!(self.nodes.get(&child), Some(Node::Dir(_))) {
                    stack.push(child);
                }
            }
            if let Some(Node::Dir(dir)) = self.nodes.get_mut(&dir_ino) {
                for name in dead {
                    dir.durable.remove(&name);
                }
            }
        }
        self.nodes.retain(|ino, _| live.contains(ino));
        self.collect_garbage();
    }

    /// Bit rot and latent errors at reboot: one sector of one recovered file each. The file
    /// is drawn from all recovered files, or (every other time) from the small ones, at most
    /// one sector long: an engine's metadata (a term and vote, a sidecar, a header) is read
    /// whole at every open, so damage there is what an open must judge, and a uniform draw
    /// would seldom land on it beside a long log.
    fn crash_inject_medium_faults(&mut self, crash_op_no: u64) {
        let faults = &self.options.faults;
        if !faults.bit_rot.is_enabled() && !faults.latent_error.is_enabled() {
            // Neither can fire (and a disabled rate draws nothing): skip listing the files.
            return;
        }
        let sector_size = self.sector_size();
        let mut files: Vec<Ino> = Vec::new();
        let mut small: Vec<Ino> = Vec::new();
        for (ino, node) in &self.nodes {
            if let Node::File(file) = node {
                if !file.durable.is_empty() {
                    files.push(*ino);
                    if file.durable.len() as u64 <= sector_size {
                        small.push(*ino);
                    }
                }
            }
        }
        if files.is_empty() {
            return;
        }
        let pick = |rng: &mut ChaCha8Rng| {
            let among = if !small.is_empty() && rng.random_bool(0.5) { &small } else { &files };
            among[index_below(rng, among.len() as u64) as usize]
        };
        let State { nodes, options, rngs, stats, .. } = self;
        if options.faults.bit_rot.fires(crash_op_no, &mut rngs.bit_rot) {
            let ino = pick(&mut rngs.bit_rot);
            if let Some(Node::File(file)) = nodes.get_mut(&ino) {
                if rot_sector(file, sector_size, &mut rngs.bit_rot) {
                    stats.bit_rots += 1;
                }
            }
        }
        if options.faults.latent_error.fires(crash_op_no, &mut rngs.latent_error) {
            let ino = pick(&mut rngs.latent_error);
            if let Some(Node::File(file)) = nodes.get_mut(&ino) {
                if make_unreadable(file, sector_size, &mut rngs.latent_error) {
                    stats.latent_errors += 1;
                }
            }
        }
    }
}

/// The byte range a pending operation may have made differ between the images.
fn touched_range(op: &DataOp) -> (u64, u64) {
    match op {
        DataOp::Write { offset, data, .. } => (*offset, offset + data.len() as u64),
        // A cut and a regrowth: everything from the new length on.
        DataOp::SetLen { len, .. } => (*len, u64::MAX),
    }
}

/// Makes the visible image equal the recovered durable one, copying only the `touched`
/// ranges (outside them the two already agree), or everything when `touched` is `None`.
fn crash_rebuild_visible(file: &mut super::image::FileNode, touched: Option<&[(u64, u64)]>) {
    let Some(ranges) = touched else {
        file.visible = file.durable.clone();
        file.diverged = false;
        return;
    };
    let len = file.durable.len();
    super::image::resize_zeroed(&mut file.visible, len);
    for (start, end) in ranges {
        let start = (*start).min(len as u64) as usize;
        let end = (*end).min(len as u64) as usize;
        file.visible[start..end].copy_from_slice(&file.durable[start..end]);
    }
}

/// Sectors a kept write rewrote at the crash are fresh: their overlays go. `kept` is a torn
/// write's mask over its pieces at a grain (a sector or a finer unit); a sector only part of
/// whose pieces arrived keeps its fault, with the arrived bytes written into a replaced
/// sector and a flipped bit they overwrote gone (an unreadable sector stays unreadable).
fn crash_clear_overlays(
    file: &mut super::image::FileNode,
    op: &DataOp,
    kept: Option<(&[bool], u64)>,
    sector_size: u64,
) {
    if file.overlays.is_empty() {
        return;
    }
    match op {
        DataOp::SetLen { len, .. } => {
            let cut = (*len).min(file.durable.len() as u64);
            drop(file.overlays.split_off(&(cut / sector_size)));
        }
        DataOp::Write { offset, data, .. } => {
            let (mask, grain) = kept.map_or((None, sector_size), |(m, g)| (Some(m), g));
            // Sector -> whether every piece of the write in it arrived.
            let mut whole: BTreeMap<u64, bool> = BTreeMap::new();
            for (idx, (at, len)) in sector_pieces(*offset, data.len(), grain).enumerate() {
                let arrived = mask.is_none_or(|m| m.get(idx).copied().unwrap_or(false));
                let start = *offset + at as u64;
                let sector = start / sector_size;
                *whole.entry(sector).or_insert(true) &= arrived;
                if arrived && grain < sector_size {
                    let within = (start - sector * sector_size) as usize;
                    patch_overlay(&mut file.overlays, sector, within, &data[at..at + len]);
                }
            }
            for (sector, all_arrived) in whole {
                if all_arrived {
                    file.overlays.remove(&sector);
                }
            }
        }
    }
}

/// Writes `bytes`, which arrived at `within` of `sector`, into that sector's fault overlay.
fn patch_overlay(overlays: &mut Overlays, sector: u64, within: usize, bytes: &[u8]) {
    let end = within + bytes.len();
    match overlays.get_mut(&sector) {
        Some(Overlay::Replace(old)) if end <= old.len() => old[within..end].copy_from_slice(bytes),
        Some(Overlay::FlipBit { byte_idx, .. })
            if (within..end).contains(&(*byte_idx as usize)) =>
        {
            overlays.remove(&sector);
        }
        _ => {}
    }
}

/// Picks the torn sector of a write and what it reads as: new bytes up to a random cut and
/// old after it, the reverse, or garbage (each a third of the time).
fn crash_tear_sector_pick(
    durable: &[u8],
    offset: u64,
    data: &[u8],
    sector_size: u64,
    rng: &mut ChaCha8Rng,
) -> (u64, Vec<u8>) {
    let first = offset / sector_size;
    let n = sector_count(offset, data.len(), sector_size) as u64;
    let sector = first + index_below(rng, n);
    let old = sector_bytes(durable, sector, sector_size);
    let mut new = old.clone();
    let sector_start = sector * sector_size;
    let from = sector_start.max(offset);
    let to = (sector_start + sector_size).min(offset + data.len() as u64);
    new[(from - sector_start) as usize..(to - sector_start) as usize]
        .copy_from_slice(&data[(from - offset) as usize..(to - offset) as usize]);
    let cut = 1 + index_below(rng, sector_size.saturating_sub(1)) as usize;
    let bytes = match index_below(rng, 3) {
        0 => [&new[..cut], &old[cut..]].concat(),
        1 => [&old[..cut], &new[cut..]].concat(),
        _ => {
            let mut garbage = vec![0u8; sector_size as usize];
            rng.fill(&mut garbage[..]);
            garbage
        }
    };
    (sector, bytes)
}

/// A timeline's name for what a crash decided for one pending operation.
fn fate_of(keep: &Keep) -> Fate {
    match keep {
        Keep::Drop => Fate::Dropped,
        Keep::Whole => Fate::Kept,
        Keep::Torn(mask, _) => Fate::Torn {
            kept: mask.iter().filter(|k| **k).count() as u32,
            pieces: mask.len() as u32,
        },
    }
}
