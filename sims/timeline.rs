//! The crash timeline (`qk replay --html`): recording it changes nothing the run does, what it
//! records agrees with the disk's own crash accounting, and the page it draws is the same bytes
//! for the same run and names what the power loss did.

use std::path::Path;

use quorumkit_storage::families::Registry;
use quorumkit_storage::sim::engine::runner::RunOptions;
use quorumkit_storage::sim::engine::subject::Subject;
use quorumkit_storage::sim::soak::regression::{regression_files, Regression};
use quorumkit_storage::vfs::Fate;

#[path = "support/cli.rs"]
mod cli;
use cli::qk;

#[test]
fn recording_a_timeline_changes_nothing_and_agrees_with_the_crash_accounting() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions");
    let registry = Registry::builtin();
    let mut crashes_seen = 0;
    for path in regression_files(&dir).expect("regression dir readable").iter().take(40) {
        let regression = Regression::load(path).expect("regression parses");
        let Some(subject) = Subject::find(&registry, &regression.family) else { continue };
        let options = RunOptions { trace_tail_len: usize::MAX, ..RunOptions::default() };
        let plain = regression.replay_with(subject.clone(), options.clone());
        let drawn = regression.replay_with(subject, RunOptions { timeline: true, ..options });
        let name = path.display();
        assert!(plain.timeline.is_none(), "{name}: a timeline nobody asked for");
        assert_eq!(plain.trace_hash, drawn.trace_hash, "{name}: the timeline changed the run");
        assert_eq!(plain.final_digest, drawn.final_digest, "{name}");
        assert_eq!(plain.failure, drawn.failure, "{name}");
        let timeline = drawn.timeline.expect("a timeline on a simulated disk");
        // Every trace line, stamped in order.
        let lines: Vec<&String> = timeline.lines.iter().map(|(l, _)| l).collect();
        assert_eq!(lines, drawn.trace_tail.iter().collect::<Vec<_>>(), "{name}");
        assert!(timeline.lines.windows(2).all(|w| w[0].1 <= w[1].1), "{name}: stamps go back");
        assert!(timeline.disk.ops.windows(2).all(|w| w[0].op_no < w[1].op_no), "{name}");
        // Each crash's fates add up to the `kept=K/P` its own trace line reports.
        for crash in &timeline.disk.crashes {
            crashes_seen += 1;
            let line = timeline.disk.ops.iter().find(|op| op.op_no == crash.op_no).expect("line");
            assert_eq!(line.op, "crash", "{name}");
            let kept = crash.fates.iter().filter(|(_, f)| *f != Fate::Dropped).count();
            let counts = format!("kept={kept}/{}", crash.fates.len());
            assert!(line.text.contains(&counts), "{name}: {} vs {counts}", line.text);
            for (op_no, _) in &crash.fates {
                assert!(*op_no < crash.op_no, "{name}: a fate for an operation after the crash");
            }
        }
    }
    assert!(crashes_seen > 0, "no regression had a power loss: the fates went unchecked");
}

#[test]
fn replay_html_draws_the_power_loss_of_a_failure_the_same_way_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = |name: &str| {
        let out = dir.path().join(name);
        let args = ["replay", "--seed", "1", "--family", "local", "--planted", "skip-fsync"];
        let (code, stdout, stderr) = qk(&[&args[..], &["--html", out.to_str().unwrap()]].concat());
        assert_eq!(code, 1, "the planted bug is found: {stdout}{stderr}");
        assert!(stderr.contains("timeline written"), "{stderr}");
        std::fs::read_to_string(out).expect("the page is written")
    };
    let first = page("a.html");
    assert!(first.starts_with("<!DOCTYPE html>") && first.trim_end().ends_with("</html>"));
    assert!(first.contains("check crash_atomicity failed at step"), "the verdict is on top");
    assert!(first.contains("Power loss at disk operation #"), "the power loss has its table");
    assert!(first.contains("<td>dropped</td>"), "the fsync the bug skipped lost writes");
    assert!(first.contains("<svg") && first.contains("class=\"step-failed\""));
    for fetch in ["src=\"http", "href=\"http", "url(http", "<script"] {
        assert!(!first.contains(fetch), "the page fetches or runs something: {fetch}");
    }
    assert_eq!(first, page("b.html"), "the same run draws the same bytes");
}

#[test]
fn replay_html_refuses_an_unwritable_path_before_running() {
    let (code, _, stderr) =
        qk(&["replay", "--seed", "1", "--family", "memory", "--html", "/nonexistent/dir/x.html"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot write /nonexistent/dir/x.html"), "{stderr}");
    assert!(!stderr.contains("VERDICT"));
}
