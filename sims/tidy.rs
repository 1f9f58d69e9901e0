//! Tidy: the project's mechanical rules, checked on every `cargo test`.
//! - only `src/vfs/os.rs` touches `std::fs` (families go through the `Vfs`);
//! - nothing in `src/sim`, `src/vfs` or `src/image` reads the clock, uses unseeded
//!   randomness or a `HashMap`/`HashSet` (iteration order is not deterministic);
//! - nothing under `src/families`, `src/vfs`, `src/image` or `src/contract` uses `crate::sim`
//!   (the harness depends on the product, never the other way round);
//! - no `#[ignore]`d tests, no `todo!`/`unimplemented!`;
//! - code lines are at most 100 columns (comments may hold wide tables).

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| {
        let t = l.trim_start();
        !t.starts_with("//")
    })
}

#[test]
fn only_os_vfs_touches_std_fs() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root()).unwrap_or(&file).to_string_lossy().into_owned();
        if rel == "src/vfs/os.rs" || rel.starts_with("src/cli/") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in code_lines(&text) {
            // `fs::File` but not `vfs::File…` (the seam's own types).
            let fs_file = line.match_indices("fs::File").any(|(at, _)| !line[..at].ends_with('v'));
            if line.contains("std::fs") || fs_file || line.contains("File::open") {
                offenders.push(format!("{rel}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "std::fs outside src/vfs/os.rs:\n{}", offenders.join("\n"));
}

#[test]
fn simulation_is_deterministic_by_construction() {
    let banned = [
        "Instant::now",
        "SystemTime",
        "thread_rng",
        "rand::random",
        "from_entropy",
        "from_os_rng",
        "HashMap",
        "HashSet",
    ];
    let mut files = Vec::new();
    for dir in ["src/sim", "src/vfs", "src/image", "src/state.rs", "src/families"] {
        let path = root().join(dir);
        if path.is_file() {
            files.push(path);
        } else {
            rust_files(&path, &mut files);
        }
    }
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root()).unwrap_or(&file).to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in code_lines(&text) {
            for word in banned {
                if line.contains(word) {
                    offenders.push(format!("{rel}:{n}: {word}: {}", line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "non-determinism in simulated code:\n{}", offenders.join("\n"));
}

#[test]
fn no_ignored_tests_or_placeholders_and_short_lines() {
    let mut files = Vec::new();
    for dir in ["src", "sims", "benches", "fuzz/fuzz_targets"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root()).unwrap_or(&file).to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let t = line.trim_start();
            if t.starts_with("//") {
                // Comments may hold tables and links; only code is held to 100 columns.
                continue;
            }
            if line.chars().count() > 100 {
                offenders.push(format!("{rel}:{n}: line longer than 100 columns"));
            }
            if rel == "sims/tidy.rs" {
                continue;
            }
            for word in ["#[ignore", "todo!(", "unimplemented!("] {
                if line.contains(word) {
                    offenders.push(format!("{rel}:{n}: {word}"));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "tidy:\n{}", offenders.join("\n"));
}

#[test]
fn no_layer_below_the_harness_uses_it() {
    // The harness depends on the product, never the other way round: a family, the Vfs, the
    // image code and the contract must not reach into `crate::sim` (a helper both need
    // lives outside both, as `crate::panics` does).
    let mut files = Vec::new();
    for dir in ["src/families", "src/vfs", "src/image", "src/contract"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root()).unwrap_or(&file).to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in code_lines(&text) {
            if uses_the_harness(line) {
                offenders.push(format!("{rel}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "uses of crate::sim below the harness:\n{}",
        offenders.join("\n")
    );
}

/// Whether `line` names the harness module: `crate::sim` or `quorumkit_storage::sim` as a
/// whole path segment (not `crate::simple` or `vfs::sim`).
fn uses_the_harness(line: &str) -> bool {
    ["crate::sim", "quorumkit_storage::sim"].iter().any(|path| {
        line.match_indices(path).any(|(at, _)| {
            let next = line[at + path.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

#[test]
fn the_harness_rule_sees_paths_not_prefixes() {
    assert!(uses_the_harness("use crate::sim::checks::CheckName;"));
    assert!(uses_the_harness("    crate::sim::engine::runner::panic_text(&panic)"));
    assert!(uses_the_harness("use crate::sim;"));
    assert!(uses_the_harness("$crate::sim::engine::ops::Action::Append(entries)"));
    assert!(!uses_the_harness("use crate::vfs::sim::SimDisk;"));
    assert!(!uses_the_harness("use crate::simple::Thing;"));
}
