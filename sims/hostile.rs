//! Structure-aware hostile images (`image::hostile`): every violation of the catalogue, on
//! states with and without each part, is rejected by every reader entry point and by an
//! import into every family with exactly the class and offset the specification names, the
//! destination left empty; the images' integrity layer (every CRC-32C, the SHA-256) is
//! correct, so only the semantic rules reject them; and a reader planted with a missing rule
//! is caught by the soak's `bad_images` check through these images, and not by bit flips.

use std::collections::BTreeSet;
use std::sync::Arc;

use quorumkit_storage::contract::{Entry, Family, Payload, PeerId, RaftStorage, SnapshotPath};
use quorumkit_storage::families::Registry;
use quorumkit_storage::image::format::{
    FRAME_CRC_LEN, FRAME_HEADER_LEN, INDEX_MAX, MAGIC, RECORD_BODY_LEN_MAX,
};
use quorumkit_storage::image::fuzz_checks::{arbitrary_state, example_state};
use quorumkit_storage::image::hostile::{generate, generate_with, HostileImage, Violation};
use quorumkit_storage::image::{
    decode, encode_state, import, inspect, verify, ErrorClass, PlantedReaderBug,
};
use quorumkit_storage::sim::checks::bad_images::{
    check_bad_images, sweep_catalogue, BadImageOptions,
};
use quorumkit_storage::sim::checks::edge_images::Edge;
use quorumkit_storage::sim::checks::CheckName;
use quorumkit_storage::sim::soak::{run_soak, SeedPlan, SoakConfig, SoakReport};
use quorumkit_storage::state::{RaftState, SnapshotFile};
use quorumkit_storage::vfs::{SimDisk, SimDiskOptions};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// States with and without each part a violation may need: the generator must add what is
/// missing, so every violation applies to every one of them.
fn states() -> Vec<(&'static str, RaftState)> {
    let mut big = example_state();
    let files = &mut big.snapshot.as_mut().expect("a snapshot").files;
    let data: Vec<u8> = (0..2 * 65536 + 7).map(|i| (i % 251) as u8).collect();
    let path = SnapshotPath::new("dir/big").expect("valid path");
    files.insert(path, SnapshotFile { data: data.into(), file_meta: Default::default() });
    let mut high = RaftState::new();
    high.first = INDEX_MAX;
    high.entries.push(Entry::no_op(INDEX_MAX, 7));
    let mut config_only = RaftState::new();
    config_only.entries.push(Entry {
        index: 1,
        term: 1,
        payload: Payload::Configuration {
            peers: vec![PeerId::new("10.0.0.9:1:0")],
            old_peers: vec![],
        },
    });
    vec![
        ("empty", RaftState::new()),
        ("example", example_state()),
        ("multi-chunk", big),
        ("at-index-max", high),
        ("config-only", config_only),
    ]
}

/// Every CRC-32C of the frames up to the first one that lies about its length is right, and
/// the trailing SHA-256 covers every byte before it.
fn assert_integrity_is_correct(image: &HostileImage) {
    let bytes = &image.bytes;
    let what = image.violation;
    let digest_at = bytes.len() - 32;
    let digest = Sha256::digest(&bytes[..digest_at]);
    assert_eq!(&bytes[digest_at..], &digest[..], "{what}: wrong SHA-256");
    assert_eq!(&bytes[..MAGIC.len()], &MAGIC[..], "{what}: wrong magic");
    let mut at = MAGIC.len();
    while at < digest_at {
        let len = u32::from_le_bytes(bytes[at + 2..at + 6].try_into().expect("4 bytes"));
        if len > RECORD_BODY_LEN_MAX {
            assert_eq!(what, Violation::RecordBodyOverLimit, "a frame lies about its length");
            return;
        }
        let end = at + FRAME_HEADER_LEN + len as usize;
        let stored = u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes"));
        assert_eq!(stored, crc32c::crc32c(&bytes[at..end]), "{what}: wrong CRC at byte {at}");
        at = end + FRAME_CRC_LEN;
    }
    assert_eq!(at, digest_at, "{what}: the frames do not end at the digest");
}

fn assert_read_rejects(image: &HostileImage, context: &str) {
    let bytes = &image.bytes[..];
    for (how, verdict) in [
        ("verify", image.judge(&verify(bytes))),
        ("decode", image.judge(&decode(bytes))),
        ("inspect", image.judge(&inspect(bytes))),
    ] {
        if let Err(e) = verdict {
            panic!("{context}: {how}: {e}");
        }
    }
}

#[test]
fn the_catalogue_has_unique_names_and_covers_every_part_of_the_format() {
    let names: BTreeSet<&str> = Violation::ALL.iter().map(|v| v.name()).collect();
    assert_eq!(names.len(), Violation::ALL.len(), "duplicate names");
    for v in Violation::ALL {
        assert_eq!(Violation::from_name(v.name()), Some(*v));
    }
    for name in [
        "major-newer",
        "flag-reserved",
        "kind-unknown-newer-minor",
        "extension-not-ignorable",
        "path-dot-dot",
        "path-absolute",
        "path-empty-segment",
        "path-nul",
        "path-backslash",
        "path-over-long",
        "path-not-utf8",
        "path-duplicate",
        "path-file-then-child",
        "path-directory-as-file",
        "paths-swapped",
        "end-count-wrong",
        "cut-entries-more",
        "cut-files-fewer",
        "chunk-offset-wrong",
        "chunk-length-lies",
        "first-over-limit",
        "last-over-limit",
        "first-zero",
        "last-below-first",
        "entries-swapped",
        "entry-repeated",
        "entry-gap",
        "entry-kind-unknown",
        "meta-term-over-limit",
        "vote-not-a-peer-id",
        "vote-any-peer",
        "files-without-snapshot",
        "chunk-without-file",
        "file-meta-over-limit",
        "record-body-over-limit",
    ] {
        assert!(names.contains(name), "the catalogue lacks {name}");
    }
    // Every class an image itself can earn, except the integrity layer's (which hostile
    // images get past by construction), is some violation's.
    let classes: BTreeSet<ErrorClass> = Violation::ALL.iter().map(|v| v.expected_class()).collect();
    for class in ErrorClass::ALL {
        let integrity_or_not_the_image = matches!(
            class,
            ErrorClass::BadMagic
                | ErrorClass::ChecksumMismatch
                | ErrorClass::DigestMismatch
                | ErrorClass::Truncated
                | ErrorClass::TrailingBytes
                | ErrorClass::NonEmptyDestination
                | ErrorClass::Io
                | ErrorClass::Source
                | ErrorClass::Destination
        );
        assert_eq!(classes.contains(class), !integrity_or_not_the_image, "{class}");
    }
}

#[test]
fn every_violation_applies_to_every_state_and_is_rejected_with_its_class_and_offset() {
    for (name, state) in states() {
        for (k, violation) in Violation::ALL.iter().enumerate() {
            for seed in 0..6 {
                let mut rng = rng(seed * 1000 + k as u64);
                let image = generate_with(&state, "memory", 0, *violation, &mut rng)
                    .expect("the state encodes")
                    .unwrap_or_else(|| panic!("{violation} does not apply to state {name}"));
                assert_eq!(image.violation, *violation);
                assert_eq!(image.class, violation.expected_class());
                assert_integrity_is_correct(&image);
                assert_read_rejects(&image, &format!("{violation} on {name}, seed {seed}"));
            }
        }
    }
}

#[test]
fn drawn_violations_on_drawn_states_are_rejected_with_their_class_and_offset() {
    let mut bytes_rng = rng(99);
    let mut seen = BTreeSet::new();
    for round in 0..400u64 {
        let bytes: Vec<u8> = (0..512).map(|_| rand::RngExt::random(&mut bytes_rng)).collect();
        let state = arbitrary_state(&mut arbitrary::Unstructured::new(&bytes)).unwrap_or_default();
        let image = generate(&state, "redb", 3, &mut rng(round)).expect("the state encodes");
        seen.insert(image.violation);
        assert_integrity_is_correct(&image);
        assert_read_rejects(&image, &format!("round {round}: {}", image.violation));
    }
    assert!(
        seen.len() > Violation::ALL.len() * 3 / 4,
        "the draw reaches {} violations",
        seen.len()
    );
}

fn fresh(family: &Arc<dyn Family>, disk: &Arc<SimDisk>) -> Box<dyn RaftStorage> {
    family.open("import", disk.clone()).expect("open a fresh instance")
}

#[test]
fn every_violation_is_rejected_by_an_import_into_every_family_which_stays_empty() {
    for family in Registry::builtin().families() {
        let disk = SimDisk::new(SimDiskOptions { seed: 5, ..SimDiskOptions::default() });
        let mut dest = fresh(family, &disk);
        for (name, state) in [("example", example_state()), ("empty", RaftState::new())] {
            for (k, violation) in Violation::ALL.iter().enumerate() {
                let context = format!("{violation} on {name} into {}", family.scheme());
                let image =
                    generate_with(&state, family.scheme(), 0, *violation, &mut rng(k as u64))
                        .expect("the state encodes")
                        .expect("applies");
                let result = import(&image.bytes[..], dest.as_mut());
                image.judge(&result).unwrap_or_else(|e| panic!("{context}: {e}"));
                let after = RaftState::capture(dest.as_ref()).expect("read");
                assert_eq!(after, RaftState::new(), "{context}: the destination is not empty");
            }
        }
        drop(dest);
        let dest = fresh(family, &disk);
        let after = RaftState::capture(dest.as_ref()).expect("read");
        assert_eq!(after, RaftState::new(), "{}: not empty after a reopen", family.scheme());
    }
}

fn memory_family() -> Arc<dyn Family> {
    Registry::builtin()
        .families()
        .iter()
        .find(|f| f.scheme() == "memory")
        .cloned()
        .expect("the memory family")
}

#[test]
fn check_bad_images_catches_each_planted_reader_bug_only_through_hostile_images() {
    let family = memory_family();
    let state = example_state();
    let mut image = Vec::new();
    encode_state(&state, "memory", 0, &[], &mut image).expect("encodes");
    let check = |seed: u64, options: &BadImageOptions| {
        check_bad_images(&family, &image, &state, seed, &mut rng(seed), options)
    };
    // The bugs that let a bad image in (the drawn hostile images are all bad images; a
    // reader that refuses a valid one is the edge images' to catch).
    let lets_bad_in = PlantedReaderBug::ALL.iter().filter(|b| b.lets_a_bad_image_in());
    for bug in lets_bad_in {
        let planted = BadImageOptions { planted_reader: Some(*bug), ..BadImageOptions::default() };
        let caught = (0..1000).find(|seed| check(*seed, &planted).is_err());
        let seed = caught.unwrap_or_else(|| panic!("{} not caught in 1000 seeds", bug.name()));
        let flips_only =
            BadImageOptions { hostile_per_check: 0, sweep_catalogue: false, ..planted };
        for s in 0..=seed {
            assert_eq!(check(s, &flips_only), Ok(1), "{}: a bit flip caught it", bug.name());
            let honest = check(s, &BadImageOptions::default());
            assert_eq!(honest, Ok(3), "{}: seed {s} fails with a correct reader", bug.name());
        }
    }
}

#[test]
fn the_catalogue_sweep_meets_every_violation_and_catches_each_planted_reader_bug_at_once() {
    let state = example_state();
    for seed in 0..4 {
        let honest = sweep_catalogue(&state, "local", 1, seed, &BadImageOptions::default());
        assert_eq!(
            honest,
            Ok((Violation::ALL.len() + Edge::ALL.len()) as u64),
            "seed {seed}: every violation rejected, every edge accepted"
        );
        for bug in PlantedReaderBug::ALL {
            let planted =
                BadImageOptions { planted_reader: Some(*bug), ..BadImageOptions::default() };
            let caught = sweep_catalogue(&state, "local", 1, seed, &planted);
            let what = caught.expect_err(&format!("{}: the sweep missed it", bug.name()));
            assert!(what.contains("catalogue sweep"), "{}: {what}", bug.name());
        }
    }
}

#[test]
fn every_edge_image_holds_its_field_exactly_at_the_limit() {
    use quorumkit_storage::contract::{SNAPSHOT_PATH_LEN_MAX, SNAPSHOT_PATH_SEGMENT_LEN_MAX};
    use quorumkit_storage::image::format::{INDEX_MAX, PEERS_MAX, TERM_MAX};
    use quorumkit_storage::sim::checks::edge_images::edge_image;
    let state = example_state();
    let at = |edge| edge_image(&state, "local", 1, edge).expect("the writer takes it").state;
    let paths = |s: &RaftState| -> Vec<usize> {
        s.snapshot.iter().flat_map(|snap| snap.files.keys().map(|p| p.as_str().len())).collect()
    };
    assert!(paths(&at(Edge::PathAtLimit)).contains(&SNAPSHOT_PATH_LEN_MAX));
    assert!(paths(&at(Edge::SegmentAtLimit)).contains(&SNAPSHOT_PATH_SEGMENT_LEN_MAX));
    let peers = at(Edge::PeersAtLimit);
    let most = peers.entries.iter().filter_map(|e| match &e.payload {
        Payload::Configuration { peers, .. } => Some(peers.len()),
        _ => None,
    });
    assert_eq!(most.max(), Some(PEERS_MAX));
    assert_eq!(at(Edge::LastIndexAtLimit).last(), INDEX_MAX);
    assert_eq!(at(Edge::TermAtLimit).meta.term, TERM_MAX);
}

#[test]
fn a_soak_catches_each_planted_reader_bug_at_its_first_export_through_the_sweep() {
    for bug in PlantedReaderBug::ALL {
        // No drawn hostile image: only the sweep can catch it.
        let options = BadImageOptions {
            hostile_per_check: 0,
            sweep_catalogue: true,
            planted_reader: Some(*bug),
        };
        let mut config =
            SoakConfig::new(vec![memory_family()], SeedPlan::Range { start: 0, end: 50 });
        config.shrink = false;
        config.run.bad_images = options;
        let failed = std::cell::Cell::new(false);
        let report = run_soak(&config, &mut || !failed.get(), &mut |_, r| failed.set(!r.passed()));
        let failure =
            report.failures.first().unwrap_or_else(|| panic!("{}: not caught", bug.name()));
        assert_eq!(failure.failure.check, CheckName::BadImages, "{}: {failure:?}", bug.name());
        assert!(
            failure.failure.difference.contains("catalogue sweep"),
            "{}: {failure:?}",
            bug.name()
        );
        // Caught at the first seed that exports at all.
        config.run.bad_images = BadImageOptions::default();
        config.seeds = SeedPlan::Range { start: 0, end: report.seeds_run - 1 };
        let before = run_soak(&config, &mut || true, &mut |_, _| {});
        let exports: u64 = before.families.iter().map(|f| f.stats.exports).sum();
        assert_eq!(exports, 0, "{}: seeds before the catch exported {exports} times", bug.name());
    }
}

/// A soak of the memory family over `seeds` with `bug` planted in the `bad_images` reader and
/// `hostile` hostile images per family check; it stops at the first failure.
fn soak_with_reader_bug(bug: PlantedReaderBug, hostile: u8, seeds: u64) -> SoakReport {
    let mut config =
        SoakConfig::new(vec![memory_family()], SeedPlan::Range { start: 0, end: seeds });
    config.shrink = false;
    config.run.bad_images = BadImageOptions {
        hostile_per_check: hostile,
        sweep_catalogue: hostile > 0,
        planted_reader: Some(bug),
    };
    let failed = std::cell::Cell::new(false);
    run_soak(&config, &mut || !failed.get(), &mut |_, report| failed.set(!report.passed()))
}

fn assert_hostile_images_catch(bug: PlantedReaderBug, seeds_max: u64) {
    let caught = soak_with_reader_bug(bug, BadImageOptions::default().hostile_per_check, seeds_max);
    let failure = caught
        .failures
        .first()
        .unwrap_or_else(|| panic!("{}: not caught in {} seeds", bug.name(), caught.seeds_run));
    assert_eq!(failure.failure.check, CheckName::BadImages, "{}: {:?}", bug.name(), failure);
    // The same seeds with bit flips alone hold: the CRC hides the bug from them.
    let flips_only = soak_with_reader_bug(bug, 0, caught.seeds_run);
    assert!(flips_only.passed(), "{}: bit flips caught it: {:?}", bug.name(), flips_only.failures);
    assert_eq!(flips_only.seeds_run, caught.seeds_run);
    let exports: u64 = flips_only.families.iter().map(|f| f.stats.exports).sum();
    assert!(exports > 0, "no export ran, so no bad image was tried");
}

#[test]
fn a_reader_skipping_the_path_order_check_is_caught_by_hostile_images_and_not_by_bit_flips() {
    assert_hostile_images_catch(PlantedReaderBug::SkipPathOrder, 200);
}

#[test]
fn a_reader_skipping_the_end_count_check_is_caught_by_hostile_images_and_not_by_bit_flips() {
    assert_hostile_images_catch(PlantedReaderBug::SkipEndCount, 400);
}
