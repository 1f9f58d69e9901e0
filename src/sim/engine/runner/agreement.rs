//! The agreement phase: on one step in [`AGREEMENT_EVERY`], drawn from the seed, a pair of
//! states is put into real instances and the validator, `qk compare` and `image diff` are
//! judged on it (`validator_agreement`). The pair ([`Case`]): the state now twice, the state
//! now and the model's state at an earlier step (one kept every [`EARLIER_EVERY`] steps, drawn
//! too), or the state now and a copy with one drawn [`Change`]. One side is the run's own live
//! instance half the time (not under a dishonest plan, whose rot a read may meet); the others
//! are fresh instances of the registered families, drawn, on a fresh fault-free disk. The
//! order of the two sides is drawn as well, so both "first" and "second" wordings occur.
//!
//! The draws come from a stream of their own, so sampling changes no other choice of the run.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Runner, Stop};
use crate::contract::{Family, RaftStorage};
use crate::families::Registry;
use crate::sim::checks::validator_agreement::{agree, draw_change, place, Case, Placement, Side};
use crate::sim::checks::{fresh_import_disk, panic, CheckName};
use crate::sim::engine::ops::Op;
use crate::state::RaftState;

/// One step in this many (on average) is sampled.
pub const AGREEMENT_EVERY: u32 = 48;

/// One step in this many (on average) keeps the model's state as the "earlier" one.
pub const EARLIER_EVERY: u32 = 12;

/// The agreement phase's own random stream and the earlier state it compares with.
pub(super) struct Sampler {
    rng: ChaCha8Rng,
    earlier: Option<RaftState>,
    families: Vec<Arc<dyn Family>>,
}

impl Sampler {
    /// The sampler of the run on a disk seeded `disk_seed`.
    pub(super) fn new(disk_seed: u64) -> Self {
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(disk_seed ^ 0xA6EE_0000_0000_0011),
            earlier: None,
            families: Registry::builtin().families().to_vec(),
        }
    }
}

impl Runner {
    /// Samples this step (or not), and judges the validator on the drawn pair.
    pub(super) fn sample_agreement(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        if self.options.unchecked || self.instance.is_none() {
            return Ok(());
        }
        let sampled = self.agreement.rng.random_ratio(1, AGREEMENT_EVERY);
        let result = if sampled { self.judge_agreement(step, op) } else { Ok(()) };
        if self.agreement.rng.random_ratio(1, EARLIER_EVERY) {
            self.agreement.earlier = Some(self.model.state.clone());
        }
        result
    }

    fn judge_agreement(&mut self, step: usize, op: &Op) -> Result<(), Stop> {
        let now = &self.model.state;
        let rng = &mut self.agreement.rng;
        let (case, other) = match (rng.random_range(0..6u32), &self.agreement.earlier) {
            (0, _) => (Case::Equal, now.clone()),
            (1, Some(earlier)) => (Case::TwoSteps, earlier.clone()),
            _ => match draw_change(now, rng) {
                Some((change, changed)) => (Case::OneChange(change), changed),
                None => (Case::Equal, now.clone()),
            },
        };
        // Fresh instances come from the registry itself: a planted family's import bugs are
        // the image checks' to find, not this check's.
        let families = &self.agreement.families;
        let other_family = families[rng.random_range(0..families.len())].clone();
        let live = !self.dishonest && rng.random_bool(0.5);
        let this_family = families[rng.random_range(0..families.len())].clone();
        let swap = rng.random_bool(0.5);
        let disk = fresh_import_disk(rng.random());

        let placed = |family, location, state: &RaftState| place(family, &disk, location, state);
        let other = match placed(&other_family, "b", &other) {
            Ok(instance) => instance,
            Err(problem) => return self.not_placed(step, op, case, problem),
        };
        let fresh;
        let this: &dyn RaftStorage = if live {
            self.instance.as_ref().expect("instance is open").storage()
        } else {
            fresh = match placed(&this_family, "a", now) {
                Ok(instance) => instance,
                Err(problem) => return self.not_placed(step, op, case, problem),
            };
            fresh.as_ref()
        };
        let this_uri = match live {
            true => format!("{}://live", this.family()),
            false => format!("{}://a", this.family()),
        };
        let this = Side { storage: this, uri: this_uri };
        let other = Side { storage: other.as_ref(), uri: format!("{}://b", other.family()) };
        let (first, second) = if swap { (&other, &this) } else { (&this, &other) };
        let planted = self.options.planted_validator;
        let verdict = panic::catch(|| agree(first, second, planted));
        let names = format!("{} vs {}", first.uri, second.uri);
        self.stats.validator_pairs += 1;
        let what = match verdict {
            Ok(Ok(())) => {
                self.trace.push(format!("#{step} validator_agreement({case}, {names}) -> agreed"));
                return Ok(());
            }
            Ok(Err(what)) => format!("{case}: {what}"),
            Err(text) => {
                let what = format!("panic while comparing {names} ({case}): {text}");
                return Err(self.failure(CheckName::Panic, step, op, what).into());
            }
        };
        self.trace.push(format!("#{step} validator_agreement({case}, {names}) -> {what}"));
        Err(self.failure(CheckName::ValidatorAgreement, step, op, what).into())
    }

    /// A state a fresh instance could not be given: a family refusing it (a contract error)
    /// skips the sample; anything else on a fault-free disk is a finding.
    fn not_placed(
        &mut self,
        step: usize,
        op: &Op,
        case: Case,
        problem: Placement,
    ) -> Result<(), Stop> {
        match problem {
            Placement::Refused(e) => {
                self.trace.push(format!("#{step} validator_agreement({case}) -> skipped: {e}"));
                Ok(())
            }
            Placement::Failed(what) => {
                let what = format!("{case}: {what}");
                Err(self.failure(CheckName::ValidatorAgreement, step, op, what).into())
            }
        }
    }
}
