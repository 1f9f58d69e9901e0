//! `determinism` (DESIGN §7: one seed reproduces a run exactly).
//!
//! **What it verifies.** Two runs of one seed on one subject give the same trace hash
//! ([`compare_runs`]): the same history, the same calls and results, the same power losses
//! with the same pending disk operations. A family whose behaviour depends on anything but
//! the seed (a process-global counter, the clock, hash-map order) fails here.
//!
//! **When.** With `qk soak --check-determinism`, after every seed that passed its first run;
//! in `qk selftest` for the bug planted for this check, on every seed.
//!
//! **And in every run** ([`check_replayable`]): the name a subject reports (the one its replay
//! line, its report and its regression files carry) is spelled from its structure (`scheme`,
//! `primary+mirror`, `source>destination`) and resolves in the builtin registry to a subject
//! of that same name, so the replay line of a failure replays the subject that failed.
//!
//! **What not.** A single run cannot see it: a plain soak only runs each seed once. The
//! trace covers what the runner sees (calls, results, disk traces after power losses), not
//! the bytes a family wrote where no check looks.

use crate::families::Registry;
use crate::sim::checks::{CheckFailure, CheckName};
use crate::sim::engine::subject::Subject;

/// The `determinism` failure when `subject`'s reported name is not the spelling of its
/// structure, or names no subject of the builtin registry (so `qk replay --family NAME` would
/// not replay it); `None` when the name round-trips.
pub fn check_replayable(subject: &Subject) -> Option<CheckFailure> {
    let name = subject.name();
    let structural = match subject {
        Subject::Family(f) => f.scheme().to_string(),
        Subject::Pair(p) => {
            format!("{}+{}", p.primary_family().scheme(), p.mirror_family().scheme())
        }
        Subject::Migration(m) => {
            format!("{}>{}", m.source_family().scheme(), m.destination_family().scheme())
        }
    };
    let resolved = Subject::find(&Registry::builtin(), &name).map(|s| s.name());
    let difference = if name != structural {
        format!("the subject {structural} reports its name as {name:?}")
    } else if resolved.as_deref() != Some(name.as_str()) {
        format!("the subject's name {name:?} resolves to {resolved:?} in the builtin registry")
    } else {
        return None;
    };
    Some(CheckFailure {
        check: CheckName::Determinism,
        family: structural,
        step: 0,
        op: "start of history".to_string(),
        difference: format!("{difference}: its replay line would not replay it"),
        trace_tail: Vec::new(),
        disk_trace_tail: String::new(),
    })
}

/// The `determinism` failure when two runs of `seed` on `family` (a history of `steps`
/// ops) left different trace hashes `first` and `second`; `None` when they agree.
pub fn compare_runs(
    family: String,
    seed: u64,
    steps: usize,
    first: &str,
    second: &str,
) -> Option<CheckFailure> {
    (first != second).then(|| CheckFailure {
        check: CheckName::Determinism,
        family,
        step: steps,
        op: "end of history".to_string(),
        difference: format!("two runs of seed {seed} gave trace hashes {first} and {second}"),
        trace_tail: Vec::new(),
        disk_trace_tail: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::contract::{Family, RaftStorage, StorageResult};
    use crate::dual_write::{Recovery, Sides};
    use crate::sim::engine::subject::{PairFamily, PairInstance};
    use crate::tunables::Tunables;
    use crate::vfs::VfsHandle;

    /// A pair that reports a name other than its structure's: the display-only bug the
    /// check exists for.
    struct Misnamed(Arc<dyn PairFamily>);

    impl PairFamily for Misnamed {
        fn name(&self) -> String {
            String::new()
        }
        fn primary_family(&self) -> Arc<dyn Family> {
            self.0.primary_family()
        }
        fn mirror_family(&self) -> Arc<dyn Family> {
            self.0.mirror_family()
        }
        fn open_primary(&self, at: &str, vfs: VfsHandle) -> StorageResult<Box<dyn RaftStorage>> {
            self.0.open_primary(at, vfs)
        }
        fn join(
            &self,
            primary: Box<dyn RaftStorage>,
            at: &str,
            vfs: VfsHandle,
        ) -> StorageResult<Box<dyn PairInstance>> {
            self.0.join(primary, at, vfs)
        }
        fn open_sides(&self, at: &str, vfs: VfsHandle) -> StorageResult<Sides> {
            self.0.open_sides(at, vfs)
        }
        fn recover(
            &self,
            sides: Sides,
            at: &str,
            vfs: VfsHandle,
        ) -> StorageResult<(Box<dyn PairInstance>, Recovery)> {
            self.0.recover(sides, at, vfs)
        }
        fn as_family(&self) -> Arc<dyn Family> {
            self.0.as_family()
        }
        fn with_tunables(&self, primary: &Tunables, mirror: &Tunables) -> Arc<dyn PairFamily> {
            self.0.with_tunables(primary, mirror)
        }
    }

    #[test]
    fn every_builtin_subject_is_replayable() {
        let registry = Registry::builtin();
        let mut all = Subject::every(&registry);
        all.extend(Subject::migrations_of(registry.families()));
        for subject in &all {
            assert_eq!(check_replayable(subject), None, "{}", subject.name());
        }
    }

    #[test]
    fn a_misnamed_pair_fails() {
        let registry = Registry::builtin();
        let Some(Subject::Pair(pair)) = Subject::find(&registry, "local+redb") else {
            panic!("local+redb is a builtin pair");
        };
        let failure = check_replayable(&Subject::Pair(Arc::new(Misnamed(pair))))
            .expect("a pair reporting an empty name is not replayable");
        assert_eq!(failure.check, CheckName::Determinism);
        assert_eq!(failure.family, "local+redb");
        assert!(failure.difference.contains("reports its name as \"\""), "{}", failure.difference);
    }
}
