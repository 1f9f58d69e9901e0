//! The reference model: the simplest correct implementation of the contract's semantics, the
//! oracle every family is compared with. It is a [`RaftState`] and a `match` over actions;
//! it shares no code with any family beyond the value types and the contract's range rules.

use std::collections::BTreeMap;

use crate::contract::{ContractError, Entry, Index, Payload, PeerId, SnapshotPath, Term};
use crate::delegate::delegate_state_view;
use crate::sim::engine::ops::{Action, ResolveContext};
use crate::state::{RaftState, Snapshot, SnapshotFile};

/// The largest index and term the contract stores (braft's `int64`).
const LIMIT: u64 = i64::MAX as u64;

fn out_of_range(index: Index) -> ContractError {
    ContractError::IndexOutOfRange { index, reason: "above i64::MAX" }
}

fn bad_peer(peer: &PeerId) -> Result<(), ContractError> {
    match peer.problem() {
        None => Ok(()),
        Some(reason) => Err(ContractError::BadPeer { peer: peer.to_string(), reason }),
    }
}

/// The model state of one instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    /// The state the instance must show.
    pub state: RaftState,
}

impl Model {
    /// A fresh instance's model.
    pub fn new() -> Self {
        Model { state: RaftState::new() }
    }

    /// Applies an action the way the contract says, returning the contract error a family
    /// must also return (and then the state is unchanged).
    pub fn apply(&mut self, action: &Action) -> Result<(), ContractError> {
        let shape = history_shape(&self.state, action);
        self.apply_call(action)?;
        if let Some(point) = shape {
            crate::coverage::hit(point);
        }
        Ok(())
    }

    fn apply_call(&mut self, action: &Action) -> Result<(), ContractError> {
        let s = &mut self.state;
        match action {
            Action::Append(entries) => {
                let last = s.last();
                for (position, entry) in entries.iter().enumerate() {
                    let expected = last.saturating_add(1).saturating_add(position as u64);
                    if entry.index != expected {
                        return Err(ContractError::NonContiguousAppend {
                            position,
                            got: entry.index,
                            expected,
                        });
                    }
                    if entry.index > LIMIT {
                        return Err(out_of_range(entry.index));
                    }
                    if entry.term > LIMIT {
                        return Err(ContractError::TermOutOfRange { term: entry.term });
                    }
                    if let Payload::Configuration { peers, old_peers } = &entry.payload {
                        peers.iter().chain(old_peers).try_for_each(bad_peer)?;
                    }
                }
                s.entries.extend(entries.iter().cloned());
            }
            Action::TruncatePrefix(first_kept) => {
                if *first_kept > LIMIT {
                    return Err(out_of_range(*first_kept));
                }
                if *first_kept > s.first {
                    let drop = (*first_kept - s.first).min(s.entries.len() as u64) as usize;
                    s.entries.drain(..drop);
                    s.first = *first_kept;
                }
            }
            Action::TruncateSuffix(last_kept) => {
                let keep = last_kept.saturating_sub(s.first - 1);
                if keep < s.entries.len() as u64 {
                    s.entries.truncate(keep as usize);
                }
            }
            Action::Reset(next) => {
                if *next == 0 {
                    return Err(ContractError::IndexOutOfRange {
                        index: 0,
                        reason: "reset(0): the first index is at least 1",
                    });
                }
                if *next > LIMIT {
                    return Err(out_of_range(*next));
                }
                s.entries.clear();
                s.first = *next;
            }
            Action::SaveMeta(meta) => {
                if meta.term > LIMIT {
                    return Err(ContractError::TermOutOfRange { term: meta.term });
                }
                if let Some(vote) = &meta.voted_for {
                    bad_peer(vote)?;
                    if vote.is_any() {
                        return Err(ContractError::BadPeer {
                            peer: vote.to_string(),
                            reason: "the any peer means no vote",
                        });
                    }
                }
                s.meta = meta.clone();
            }
            Action::Snapshot { meta, files, publish } => {
                if *publish {
                    if meta.last_included_index > LIMIT {
                        return Err(out_of_range(meta.last_included_index));
                    }
                    if meta.last_included_term > LIMIT {
                        return Err(ContractError::TermOutOfRange {
                            term: meta.last_included_term,
                        });
                    }
                    meta.peers.iter().chain(&meta.old_peers).try_for_each(bad_peer)?;
                    let files: BTreeMap<SnapshotPath, SnapshotFile> = files
                        .iter()
                        .map(|f| {
                            let file = SnapshotFile {
                                data: f.data.clone(),
                                file_meta: f.file_meta.clone(),
                            };
                            (f.path.clone(), file)
                        })
                        .collect();
                    s.snapshot = Some(Snapshot { meta: meta.clone(), files });
                }
            }
            Action::Reopen
            | Action::Crash
            | Action::ArmCrash(_)
            | Action::Export(_)
            | Action::Migrate(_) => {}
        }
        Ok(())
    }

    /// What a volatile family shows after a restart: a fresh instance.
    pub fn forget(&mut self) {
        self.state = RaftState::new();
    }
}

impl ResolveContext for Model {
    fn first(&self) -> Index {
        self.state.first
    }

    fn last(&self) -> Index {
        self.state.last()
    }

    fn term_at(&self, index: Index) -> Option<Term> {
        self.get(index).map(|e| e.term)
    }

    fn meta_term(&self) -> Term {
        self.state.meta.term
    }
}

impl Model {
    fn get(&self, index: Index) -> Option<&Entry> {
        let offset = index.checked_sub(self.state.first)?;
        self.state.entries.get(usize::try_from(offset).ok()?)
    }
}

delegate_state_view!(Model => state);

/// A truncate_suffix dropping at least this many entries counts as truncating far back.
pub const FAR_BACK: u64 = 16;

/// The history shape `action` takes in state `s` ([`crate::coverage`]'s `raft.*` points),
/// told from the state alone: a reset or truncate_prefix to just past the published
/// snapshot right after an install, a reset backward, a truncation far back, a snapshot
/// published again at the same index.
fn history_shape(s: &RaftState, action: &Action) -> Option<crate::coverage::Point> {
    use crate::coverage::Point;
    let last = s.last();
    let snapshot = s.snapshot.as_ref().map(|snap| &snap.meta);
    let just_past_snapshot =
        |target: Index| snapshot.filter(|m| m.last_included_index.checked_add(1) == Some(target));
    match action {
        Action::Reset(next) => match just_past_snapshot(*next) {
            Some(m) if m.last_included_index > last => Some(Point::RaftInstallPastEndReset),
            Some(m)
                if m.last_included_index >= s.first
                    && s.get(m.last_included_index).map(|e| e.term)
                        != Some(m.last_included_term) =>
            {
                Some(Point::RaftInstallBelowLastReset)
            }
            _ if *next >= 1 && *next <= last => Some(Point::RaftResetBackward),
            _ => None,
        },
        Action::TruncatePrefix(first_kept) => {
            let m = snapshot?;
            let index = m.last_included_index;
            if index > last && *first_kept == index + 1 {
                return Some(Point::RaftInstallPastEndTruncatePrefix);
            }
            let matching = s.get(index).is_some_and(|e| e.term == m.last_included_term);
            (matching && index < last && *first_kept > s.first && *first_kept <= index + 1)
                .then_some(Point::RaftInstallBelowLastKept)
        }
        Action::TruncateSuffix(last_kept) => {
            let kept = (*last_kept).max(s.first - 1);
            (last.saturating_sub(kept) >= FAR_BACK).then_some(Point::RaftTruncateFarBack)
        }
        Action::Snapshot { meta, publish: true, .. } => snapshot
            .filter(|m| m.last_included_index == meta.last_included_index)
            .map(|_| Point::RaftInstallRetransmitted),
        _ => None,
    }
}
