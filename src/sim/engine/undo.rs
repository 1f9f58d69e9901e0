//! The state before a step, kept as an undo record instead of a copy.
//!
//! After a mutation that a fault or a crash point failed, the atomicity table allows the
//! state before it back, so the runner needs that state on every mutation of a durable
//! family on a disk that can fail, yet almost never uses it. Copying the whole log before
//! every step cost more than the rest of the step's bookkeeping; an action only ever appends
//! to the log, drops entries from either end, replaces meta or replaces the snapshot, so
//! [`Before`] keeps just what the action may drop or replace, and rebuilds the state before
//! from the state after on the rare step that needs it.

use crate::contract::{Entry, Index, Meta};
use crate::sim::engine::ops::Action;
use crate::state::{RaftState, Snapshot};

/// What a step needs to rebuild the model's state before it from the state after it.
#[derive(Clone, Debug)]
pub struct Before {
    first: Index,
    last: Index,
    /// Entries at the front of the log the action may drop.
    front: Vec<Entry>,
    /// Entries at the back of the log the action may drop.
    back: Vec<Entry>,
    /// Meta, when the action may replace it.
    meta: Option<Meta>,
    /// The snapshot, when the action may replace it.
    snapshot: Option<Option<Snapshot>>,
    /// The whole state, to prove the rebuild right in debug builds (tests).
    #[cfg(debug_assertions)]
    whole: RaftState,
}

impl Before {
    /// Records what `action`, about to be applied to `state`, may drop or replace.
    pub fn record(state: &RaftState, action: &Action) -> Before {
        let (first, last, len) = (state.first, state.last(), state.entries.len());
        // Position of the first entry with an index above `index` (entries are contiguous).
        let above = |index: Index| index.saturating_add(1).saturating_sub(first).min(len as u64);
        let (mut front, mut back, mut meta, mut snapshot) = (Vec::new(), Vec::new(), None, None);
        match action {
            Action::Append(_) => {}
            Action::TruncatePrefix(first_kept) => {
                let cut = above(first_kept.saturating_sub(1)) as usize;
                front = state.entries[..cut].to_vec();
            }
            Action::TruncateSuffix(last_kept) => {
                back = state.entries[above(*last_kept) as usize..].to_vec();
            }
            Action::Reset(_) => front = state.entries.clone(),
            Action::SaveMeta(_) => meta = Some(state.meta.clone()),
            Action::Snapshot { .. } => snapshot = Some(state.snapshot.clone()),
            Action::Reopen
            | Action::Crash
            | Action::ArmCrash(_)
            | Action::Export(_)
            | Action::Migrate(_) => {}
        }
        Before {
            first,
            last,
            front,
            back,
            meta,
            snapshot,
            #[cfg(debug_assertions)]
            whole: state.clone(),
        }
    }

    /// The state before the step, given the state `after` it.
    pub fn state(&self, after: &RaftState) -> RaftState {
        // Every entry that is neither in `front` nor in `back` was kept by the action.
        let kept_first = self.first + self.front.len() as u64;
        let kept_last = self.last - self.back.len() as u64;
        let kept = after.entries.iter().filter(|e| (kept_first..=kept_last).contains(&e.index));
        let entries: Vec<Entry> =
            self.front.iter().chain(kept).chain(self.back.iter()).cloned().collect();
        let state = RaftState {
            first: self.first,
            entries,
            meta: self.meta.clone().unwrap_or_else(|| after.meta.clone()),
            snapshot: self.snapshot.clone().unwrap_or_else(|| after.snapshot.clone()),
        };
        #[cfg(debug_assertions)]
        assert_eq!(state, self.whole, "the undo record rebuilt a different state");
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::engine::generator::{generate, GeneratorConfig, Mode};
    use crate::sim::engine::model::Model;

    /// Every step of generated histories (both modes, raw ones with out-of-range and rejected
    /// calls) is undone exactly.
    #[test]
    fn rebuilds_the_state_before_every_step() {
        for mode in [Mode::Raft, Mode::Raw] {
            for seed in 0..40 {
                let ops = generate(seed, &GeneratorConfig { mode, ..GeneratorConfig::default() });
                let mut model = Model::new();
                for op in &ops {
                    let action = op.resolve(&model);
                    let whole = model.state.clone();
                    let before = Before::record(&model.state, &action);
                    let _ = model.apply(&action);
                    assert_eq!(before.state(&model.state), whole, "seed {seed} {action}");
                }
            }
        }
    }

    #[test]
    fn truncations_past_either_end() {
        let mut model = Model::new();
        let entries: Vec<Entry> = (1..=5).map(|i| Entry::data(i, 1, vec![i as u8])).collect();
        model.apply(&Action::Append(entries)).unwrap();
        model.apply(&Action::TruncatePrefix(3)).unwrap();
        for action in [
            Action::TruncatePrefix(1),
            Action::TruncatePrefix(4),
            Action::TruncatePrefix(9),
            Action::TruncatePrefix(u64::MAX),
            Action::TruncateSuffix(0),
            Action::TruncateSuffix(2),
            Action::TruncateSuffix(4),
            Action::TruncateSuffix(u64::MAX),
            Action::Reset(2),
        ] {
            let mut after = model.clone();
            let before = Before::record(&after.state, &action);
            let _ = after.apply(&action);
            assert_eq!(before.state(&after.state), model.state, "{action}");
        }
    }
}
