//! `model_equality` (DESIGN §7, check 1): after every step the instance equals the model.
//!
//! **What it verifies.** Every contract call succeeds or fails exactly as the model's did
//! ([`call_difference`]: a call the contract accepts must succeed, one it rejects must
//! fail). After every step, what the step can have changed ([`quick_difference`]: the
//! retained range, the entries an append wrote or else the two ends of the log, meta, and
//! the snapshot meta); every `full_check_every` steps, after a snapshot publish, after every
//! reopen and power loss, and at the end of the history, the whole Raft-visible state
//! ([`full_difference`]) and then the contract's point reads against it
//! ([`point_read_difference`]: `term`, reads just outside the log, snapshot-file reads at,
//! past and inside each file's end, which a whole-state capture never asks). The `dual_write` check asks the same two questions of a pair's
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
    if let Some(d) = first_difference(&state, model) {
        return Ok(Some(format!("{who} vs model: {d}")));
    }
    point_read_difference(view, &state, who)
}

/// Log indexes whose `term` [`point_read_difference`] asks at most (spread over the log).
const TERM_PROBES: u64 = 32;

/// The first point read of `view` that disagrees with `state`, the state captured from it:
/// `term(i)` at both ends and at most [`TERM_PROBES`] indexes spread between; `entry` and
/// `term` just below, just above and far past the range (`None`); and for every snapshot
/// file a read at its end, one byte past it and at `u64::MAX` (0 bytes), and one from its
/// middle (the file's bytes there). A whole-state capture reads each file from 0 to its end
/// and every entry by `entry`, so it never asks these.
pub fn point_read_difference(
    view: &dyn StateView,
    state: &RaftState,
    who: &str,
) -> StorageResult<Option<String>> {
    let (first, last) = (state.first, state.last());
    if let Some(d) = term_difference(view, state, who)? {
        return Ok(Some(d));
    }
    for index in [first.checked_sub(1), last.checked_add(1), Some(u64::MAX)].into_iter().flatten() {
        let (entry, term) = (view.entry(index)?, view.term(index)?);
        if entry.is_some() || term.is_some() {
            return Ok(Some(format!(
                "{who} answers a read outside its log [{first}, {last}] at {index}: entry {}, \
                 term {term:?}",
                describe_entry(&entry)
            )));
        }
    }
    let Some(snapshot) = &state.snapshot else { return Ok(None) };
    let mut buf = [0u8; 7];
    for (path, file) in &snapshot.files {
        let len = file.data.len() as u64;
        for offset in [len, len + 1, u64::MAX] {
            let n = view.read_snapshot_file(path, offset, &mut buf)?;
            if n != 0 {
                return Ok(Some(format!(
                    "{who} read {n} bytes of snapshot file {path} ({len} bytes) at offset \
                     {offset}, at or past its end"
                )));
            }
        }
        if len == 0 {
            continue;
        }
        let middle = len / 2;
        let n = view.read_snapshot_file(path, middle, &mut buf)?;
        let want = &file.data[middle as usize..];
        if n == 0 || n > want.len().min(buf.len()) || buf[..n] != want[..n] {
            return Ok(Some(format!(
                "{who} read of snapshot file {path} ({len} bytes) at offset {middle} gave \
                 {n} bytes {:02x?}, expected a prefix of {:02x?}",
                &buf[..n.min(buf.len())],
                &want[..want.len().min(buf.len())]
            )));
        }
    }
    Ok(None)
}

/// The first index whose `term` in `view` is not its entry's term in `state`.
fn term_difference(
    view: &dyn StateView,
    state: &RaftState,
    who: &str,
) -> StorageResult<Option<String>> {
    let count = state.entries.len() as u64;
    if count == 0 {
        return Ok(None);
    }
    let stride = count.div_ceil(TERM_PROBES).max(1);
    let probes = (0..count).step_by(stride as usize).chain([count - 1]);
    for offset in probes {
        let entry = &state.entries[offset as usize];
        let got = view.term(entry.index)?;
        if got != Some(entry.term) {
            return Ok(Some(format!(
                "term({}) of {who} is {got:?}, but its entry there has term {}",
                entry.index, entry.term
            )));
        }
    }
    Ok(None)
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
