//! Replays every checked-in fuzz corpus input through the same check function its
//! cargo-fuzz target calls, on stable Rust, so a finding once added to `corpus/TARGET/`
//! stays fixed. Adding a target: one line in [`TARGETS`] (and the target itself in `fuzz/`).

use std::path::Path;

use quorumkit_storage::image::fuzz_checks;

/// A fuzz target's check: panics when its property fails.
type Check = fn(&[u8]);

/// Every fuzz target: its name (= `fuzz/fuzz_targets/NAME.rs` = `corpus/NAME/`) and check.
const TARGETS: &[(&str, Check)] = &[
    ("image_decode", fuzz_checks::image_decode),
    ("image_roundtrip", fuzz_checks::image_roundtrip),
    ("image_hostile", fuzz_checks::image_hostile),
    ("snapshot_path", fuzz_checks::snapshot_path),
    ("peer_id", fuzz_checks::peer_id),
    ("history", quorumkit_storage::sim::fuzz_checks::history),
    ("local_files", quorumkit_storage::sim::fuzz_checks::local_files),
];

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(name);
    let mut inputs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        inputs.push((name, std::fs::read(entry.path()).expect("read corpus input")));
    }
    inputs.sort();
    inputs
}

#[test]
fn every_corpus_input_passes_its_target_check() {
    for (target, check) in TARGETS {
        let inputs = corpus(target);
        assert!(!inputs.is_empty(), "corpus/{target}/ has no seed");
        for (name, bytes) in inputs {
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{target}: corpus/{target}/{name} fails its check");
        }
    }
}

#[test]
fn every_target_in_fuzz_cargo_toml_is_replayed() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
            .expect("fuzz/Cargo.toml");
    for line in manifest.lines().filter(|l| l.trim_start().starts_with("{ name = \"")) {
        let name = line.split('"').nth(1).expect("a quoted name");
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz target {name} is not in sims/fuzz_corpus.rs TARGETS"
        );
    }
}

#[test]
fn the_hostile_image_corpus_never_panics_the_decoder() {
    for (name, bytes) in corpus("image-hostile") {
        let outcome = std::panic::catch_unwind(|| fuzz_checks::image_decode(&bytes));
        assert!(outcome.is_ok(), "corpus/image-hostile/{name}");
    }
}
