//! `model_equality` (DESIGN §7, check 1): after every step the instance equals the model.
//!
//! **What it verifies.** Every contract call succeeds or fails exactly as the model's did
//! ([`call_difference`]: a call the contract accepts must succeed, one it rejects must
//! fail). After every step, what the step can have changed ([`quick_difference`]: the
//! retained range, the entries an append wrote or else the two ends of the log, meta, and
//! the snapshot meta); every `full_check_every` steps, after a snapshot publish, after every
//! reopen and power loss, and at the end of the history, the whole Raft-visible state
//! ([`full_difference`]). The `dual_write` check asks the same two questions of a pair's
//! mirror.
//!
//! **When.** After every step of every run, on the subject's contract face (for a pair, what
//! the pair shows: its primary).
//!
//! **What not.** A call an injected fault (or a crash point) failed is not judged here: a
//! power loss follows and `crash_atomicity` judges what comes back. Under a dishonest disk a
//! read that fails closed ends the run as a refusal. With `--unchecked` only the calls'
//! success is compared.

use crate::contract::{ContractError, Entry, StateView, StorageError, StorageResult};
use crate::sim::engine::model::Model;
use crate::sim::engine::ops::Action;
use crate::state::{first_difference, RaftState};

/// What differs between the model's verdict on a call and the family's, if anything (an
/// error on both sides is a rejection both agree on).
pub fn call_difference(
    model: &Result<(), ContractError>,
    family: &StorageResult<()>,
) -> Option<String> {
    match (model, family) {
        (Ok(()), Err(e)) => Some(format!("the family failed a call the contract accepts: {e}")),
        (Err(e), Ok(())) => Some(format!("the family accepted a call the contract rejects ({e})")),
        (Ok(()), Ok(())) | (Err(_), Err(_)) => None,
    }
}

/// The first difference between `instance` (called `who` in the text) and `model` in what
/// `action` can have changed.
pub fn quick_difference(
    instance: &dyn StateView,
    model: &Model,
    action: &Action,
    who: &str,
) -> StorageResult<Option<String>> {
    let (first, last) = (instance.first_index(), instance.last_index());
    let (model_first, model_last) = (model.first_index(), model.last_index());
    if (first, last) != (model_first, model_last) {
        return Ok(Some(format!(
            "retained range differs: {who} [{first}, {last}] vs model \
             [{model_first}, {model_last}]"
        )));
    }
    let mut indexes: Vec<u64> = Vec::new();
    match action {
        Action::Append(entries) => indexes.extend(entries.iter().map(|e| e.index)),
        _ => indexes.extend([first, last]),
    }
    for index in indexes {
        let got = instance.entry(index)?;
        let want = model.state.get(index);
        if got.as_ref() != want {
            return Ok(Some(format!(
                "entry {index}: {who} has {} vs model {}",
                describe_entry(&got),
                describe_entry(&want.cloned())
            )));
        }
    }
    let (meta, model_meta) = (instance.meta()?, model.meta()?);
    if meta != model_meta {
        return Ok(Some(format!("meta differs: {who} {meta:?} vs model {model_meta:?}")));
    }
    let (snapshot, model_snapshot) = (instance.snapshot_meta()?, model.snapshot_meta()?);
    if snapshot != model_snapshot {
        return Ok(Some(format!(
            "snapshot meta differs: {who} {snapshot:?} vs model {model_snapshot:?}"
        )));
    }
    Ok(None)
}

/// The first difference between the whole state of `view` (called `who` in the text) and
/// `model`, read out with [`RaftState::capture`].
pub fn full_difference(
    view: &dyn StateView,
    model: &RaftState,
    who: &str,
) -> Result<Option<String>, StorageError> {
    let state = RaftState::capture(view)?;
    Ok(first_difference(&state, model).map(|d| format!("{who} vs model: {d}")))
}

fn describe_entry(entry: &Option<Entry>) -> String {
    match entry {
        None => "nothing".to_string(),
        Some(e) => {
            let digest =
                RaftState { first: e.index, entries: vec![e.clone()], ..RaftState::new() }.digest();
            format!("term {} kind {} (digest {})", e.term, e.kind().name(), &digest[..12])
        }
    }
}
