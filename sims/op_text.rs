//! The text form of ops: `Display` and `FromStr` are one grammar, so printing an op and
//! parsing the text gives the op back, for every op (a property over arbitrary ops, whose
//! snapshot paths may hold any characters), and `.ops` files hold one op per line.

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use quorumkit_storage::contract::FileSource;
use quorumkit_storage::sim::engine::generator::{generate, GeneratorConfig, Mode};
use quorumkit_storage::sim::engine::op_text::{format_op_lines, parse_op_lines};
use quorumkit_storage::sim::engine::ops::{BodySpec, EntrySpec, FileSpec, Op, SnapshotAt};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn display_then_parse_gives_the_op_back(bytes in proptest::collection::vec(any::<u8>(), 0..512))
    {
        let mut input = Unstructured::new(&bytes);
        if let Ok(op) = Op::arbitrary(&mut input) {
            let text = op.to_string();
            let parsed: Op = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(parsed, op, "{}", text);
        }
    }
}

#[test]
fn generated_histories_survive_an_ops_file() {
    for mode in [Mode::Raft, Mode::Raw] {
        for seed in 0..20 {
            let ops = generate(seed, &GeneratorConfig { mode, ..GeneratorConfig::default() });
            let text = format_op_lines(&ops);
            assert_eq!(text.lines().count(), ops.len());
            assert_eq!(parse_op_lines(&text).expect("parses"), ops, "seed {seed} {mode:?}");
        }
    }
}

#[test]
fn the_text_form_reads_as_documented() {
    let snapshot = Op::Snapshot {
        at: SnapshotAt::Ahead(4),
        term: None,
        peers: 3,
        old_peers: 0,
        files: vec![
            FileSpec {
                path: "a/b".into(),
                len: 700,
                seed: 9,
                file_meta_len: Some(4),
                source: None,
                checksum_len: None,
            },
            FileSpec {
                path: "x\"),\n[y".into(),
                len: 0,
                seed: 1,
                file_meta_len: None,
                source: Some(FileSource::Reference),
                checksum_len: Some(3),
            },
            FileSpec {
                path: "c".into(),
                len: 1,
                seed: 2,
                file_meta_len: None,
                source: None,
                checksum_len: Some(0),
            },
        ],
        publish: false,
    };
    let text = concat!(
        r#"snapshot(ahead=4, term=log, peers=3, old=0, files=[file("a/b", len=700, seed=9, "#,
        r#"meta=4), file("x\"),\n[y", len=0, seed=1, meta=none, source=reference, "#,
        r#"checksum=3), file("c", len=1, seed=2, meta=none, checksum=0)], abandon)"#
    );
    assert_eq!(snapshot.to_string(), text);
    assert_eq!(text.parse::<Op>(), Ok(snapshot));
    let cases = [
        (
            " append( n=2 , t3:data(len=40,seed=7),t3:noop ) ",
            Op::Append {
                entries: vec![
                    EntrySpec { term: 3, body: BodySpec::Data { len: 40, seed: 7 } },
                    EntrySpec { term: 3, body: BodySpec::NoOp },
                ],
            },
        ),
        ("append(n=0)", Op::Append { entries: vec![] }),
        ("reset(delta=-3)", Op::Reset { delta: -3 }),
        ("save_meta(term=5, vote=none)", Op::SaveMeta { term: 5, vote: None }),
        ("crash_during_next(disk_ops=12)", Op::CrashDuring { disk_ops: 12 }),
        ("reopen()", Op::Reopen),
    ];
    for (text, op) in cases {
        assert_eq!(text.parse::<Op>().as_ref(), Ok(&op), "{text}");
    }
    for bad in [
        "",
        "append(n=2, t1:noop)",
        "append(n=1, t1:noop",
        "reset(delta=1))",
        "save_meta(term=1)",
        "export(spread=300)",
        "crash(now)",
        "nosuch()",
        // An unknown source; the optional arguments out of order.
        concat!(
            r#"snapshot(back=1, term=log, peers=1, old=0, "#,
            r#"files=[file("a", len=1, seed=1, meta=none, source=remote)], publish)"#
        ),
        concat!(
            r#"snapshot(back=1, term=log, peers=1, old=0, "#,
            r#"files=[file("a", len=1, seed=1, meta=none, checksum=1, source=local)], publish)"#
        ),
        // An unclosed path string.
        r#"snapshot(back=1, term=log, peers=1, old=0, files=[file("a, len=1, seed=1)], publish)"#,
    ] {
        assert!(bad.parse::<Op>().is_err(), "{bad:?} parsed");
    }
    let err = parse_op_lines("# a comment\n\nreopen()\nbogus\n").unwrap_err();
    assert!(err.starts_with("line 4: "), "{err}");
}
