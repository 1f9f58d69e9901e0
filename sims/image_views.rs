//! The `image_views` check bites: it holds on a valid image with every part, and it reports
//! a wrong inspect report, a mislabelled or lossy dump, a truncated image's dump that does
//! not say its tail is unframed, and an error text that does not name its record's kind —
//! so removing the check, or a check that cannot fail, breaks these tests.

use quorumkit_storage::contract::{Payload, PeerId};
use quorumkit_storage::image::fuzz_checks::example_state;
use quorumkit_storage::image::{annotated_hex, encode_state, inspect, ImageInspect, Location};
use quorumkit_storage::sim::checks::image_views::{
    check, error_names_kind, expected_labels, judge_damaged_dump, judge_dump_text, judge_inspect,
    judge_truncated, read_records, text_names_kind, PlantedViewBug, Views,
};
use quorumkit_storage::state::RaftState;

/// One wrong field planted in a true report.
type Edit = Box<dyn Fn(&mut ImageInspect)>;

fn image_of(state: &RaftState) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_state(state, "memory", 0, &[], &mut bytes).expect("encodes");
    bytes
}

fn views<'a>(bytes: &'a [u8], state: &'a RaftState) -> Views<'a> {
    Views { bytes, expected: state, family: "memory", family_version: 0, seed: 7 }
}

#[test]
fn holds_on_a_valid_image_and_on_every_truncation() {
    let state = example_state();
    let bytes = image_of(&state);
    for seed in 0..64 {
        let v = Views { seed, ..views(&bytes, &state) };
        check(&v, None).unwrap_or_else(|w| panic!("seed {seed}: {w}"));
    }
    // Every cut inside a record's frame (past the magic, never a digest's length after a
    // record's start) labels the tail `unframed bytes`.
    let records = read_records(&bytes).expect("valid");
    for cut in 9..bytes.len() - 32 {
        if records.iter().any(|r| r.number > 0 && r.offset + 32 == cut) {
            continue;
        }
        if records.iter().any(|r| r.offset == cut) {
            continue;
        }
        judge_truncated(&bytes, &records, cut).unwrap_or_else(|w| panic!("cut {cut}: {w}"));
    }
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        judge_damaged_dump(&bad).unwrap_or_else(|w| panic!("byte {at}: {w}"));
    }
}

#[test]
fn a_wrong_inspect_report_is_reported() {
    let state = example_state();
    let bytes = image_of(&state);
    let v = views(&bytes, &state);
    let good = inspect(&bytes[..]).expect("valid");
    judge_inspect(&good, &v).expect("the true report holds");
    let config = good.log.entries.iter().position(|e| e.peers.is_some()).expect("a config");
    let mut edits: Vec<(&str, Edit)> = vec![
        ("peers", Box::new(move |r| r.log.entries[config].peers = None)),
        ("old_peers", Box::new(move |r| r.log.entries[config].old_peers = Some(Vec::new()))),
        ("sha256", Box::new(|r| r.log.entries[1].sha256 = "00".repeat(32))),
        ("len", Box::new(|r| r.log.entries[1].len += 1)),
        ("term", Box::new(|r| r.log.entries[0].term += 1)),
        ("kind", Box::new(move |r| r.log.entries[config].kind = r.log.entries[0].kind)),
        ("entries", Box::new(|r| drop(r.log.entries.pop()))),
        ("voted_for", Box::new(|r| r.meta.voted_for = None)),
        (
            "file_meta",
            Box::new(|r| {
                let s = r.snapshot.as_mut().expect("snapshot");
                s.files[0].file_meta.checksum = None;
            }),
        ),
        ("path", Box::new(|r| r.snapshot.as_mut().expect("snapshot").files.reverse())),
        (
            "snapshot peers",
            Box::new(|r| {
                r.snapshot.as_mut().expect("snapshot").peers.push(PeerId::new("10.0.0.9:1:0:0"))
            }),
        ),
        ("n_records", Box::new(|r| r.summary.n_records -= 1)),
        ("image_len", Box::new(|r| r.summary.image_len += 1)),
    ];
    for (field, edit) in edits.drain(..) {
        let mut report = good.clone();
        edit(&mut report);
        let what = judge_inspect(&report, &v).expect_err(field);
        assert!(what.contains(field), "{field}: {what}");
    }
    // The planted bug makes the whole check fail, naming the lost peers.
    assert!(state.entries.iter().any(|e| matches!(e.payload, Payload::Configuration { .. })));
    let what = check(&v, Some(PlantedViewBug::DropConfigPeers)).expect_err("planted");
    assert!(what.contains("peers"), "{what}");
}

#[test]
fn a_mislabelled_or_lossy_dump_is_reported() {
    let state = example_state();
    let bytes = image_of(&state);
    let records = read_records(&bytes).expect("valid");
    let want = expected_labels(&bytes, &records);
    let dump = annotated_hex(&bytes);
    judge_dump_text(&dump, &bytes, &want).expect("the true dump holds");
    let wrong = [
        ("a kind name gone", dump.replacen("record #1 CUT:", "record #1 :", 1)),
        ("kind names gone", dump.replace(" ENTRY:", " :")),
        ("a record renumbered", dump.replacen("record #2 ", "record #3 ", 1)),
        ("the digest unlabelled", dump.replace("SHA-256 of all bytes above", "unframed bytes")),
        ("a byte changed", dump.replacen("89 51", "89 52", 1)),
        ("a row dropped", drop_row(&dump, "0000001e")),
        ("an offset moved", dump.replacen("00000008  ", "00000009  ", 1)),
    ];
    for (what, text) in wrong {
        assert_ne!(text, dump, "{what}: the edit did nothing");
        judge_dump_text(&text, &bytes, &want).expect_err(what);
    }
}

#[test]
fn an_error_must_name_its_record_kind() {
    let at = |kind| Location::Record { number: 3, kind: Some(kind) };
    text_names_kind("malformed at byte 9 (record #3 (ENTRY)): x", at(0x03)).expect("named");
    text_names_kind("malformed at byte 9 (record #3 ()): x", at(0x03)).expect_err("unnamed");
    text_names_kind("malformed at byte 9 (record #3 (META)): x", at(0x03)).expect_err("wrong");
    text_names_kind("x (record #3 (unknown kind 0x7f)): y", at(0x7f)).expect("undefined kind");
    text_names_kind("no position", Location::Nowhere).expect("no record");
    // A real rejection names it.
    let mut bytes = image_of(&example_state());
    let n = bytes.len();
    bytes.truncate(n - 40);
    if let Err(e) = inspect(&bytes[..]) {
        error_names_kind(&e).expect("the reader's own error names its kind");
    }
}

fn drop_row(dump: &str, offset: &str) -> String {
    dump.lines().filter(|l| !l.starts_with(offset)).collect::<Vec<_>>().join("\n")
}
