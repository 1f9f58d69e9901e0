//! Replays every regression history under `corpus/regressions/` on its family (a scheme, or a
//! dual-write pair `primary+mirror`; `"*"`: every registered family and every ordered pair of
//! them). Each must now pass every check, forever.

use std::path::Path;

use quorumkit_storage::families::Registry;
use quorumkit_storage::sim::engine::subject::Subject;
use quorumkit_storage::sim::soak::regression::{regression_files, Regression};

#[test]
fn every_regression_history_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions");
    let files = regression_files(&dir).expect("regression dir readable");
    assert!(!files.is_empty(), "no regression histories found in {}", dir.display());
    let registry = Registry::builtin();
    let mut failures = Vec::new();
    for path in files {
        let regression = Regression::load(&path).expect("regression file parses");
        let subjects: Vec<Subject> = if regression.family == "*" {
            Subject::every(&registry)
        } else {
            let subject = Subject::find(&registry, &regression.family)
                .unwrap_or_else(|| panic!("{}: unknown family", path.display()));
            vec![subject]
        };
        for subject in subjects {
            let name = subject.name();
            let outcome = regression.replay_subject(subject, 32);
            if let Some(f) = outcome.failure {
                failures.push(format!("{} on {name}:\n{f}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
