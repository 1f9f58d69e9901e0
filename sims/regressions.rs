//! Replays every regression history under `corpus/regressions/` on its family (`"*"`: every
//! registered family). Each must now pass every check, forever.

use std::path::Path;

use quorumkit_storage::families::Registry;
use quorumkit_storage::sim::regression::{regression_files, Regression};

#[test]
fn every_regression_history_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions");
    let files = regression_files(&dir).expect("regression dir readable");
    assert!(!files.is_empty(), "no regression histories found in {}", dir.display());
    let registry = Registry::builtin();
    let mut failures = Vec::new();
    for path in files {
        let regression = Regression::load(&path).expect("regression file parses");
        let families: Vec<_> = if regression.family == "*" {
            registry.families().to_vec()
        } else {
            let family = registry
                .family(&regression.family)
                .unwrap_or_else(|| panic!("{}: unknown family", path.display()));
            vec![family.clone()]
        };
        for family in families {
            let scheme = family.scheme();
            let outcome = regression.replay(family, 32);
            if let Some(f) = outcome.failure {
                failures.push(format!("{} on {scheme}:\n{f}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
