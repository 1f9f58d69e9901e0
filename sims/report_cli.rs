//! `qk soak --html` and `qk report merge` end to end, on the real binary: the files are
//! written, the page is well-formed enough and names its subject, the same input renders to
//! the same bytes, and bad paths and bad reports are refused with exit 2 naming the file.

use std::path::Path;

#[path = "support/cli.rs"]
mod cli;
use cli::qk;

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs a short memory soak of `seeds`, writing its JSON and HTML reports.
fn soak(seeds: &str, json: &str, html: &str) {
    let args = ["soak", "--family", "memory", "--seeds", seeds, "--ops", "60"];
    let rest = ["--no-regressions", "--json", json, "--html", html];
    let (code, out, err) = qk(&[&args[..], &rest[..]].concat());
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
}

fn assert_page(page: &str, subject: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("</html>"), "{page}");
    assert!(page.contains(&format!("<tr><td>{subject}</td>")), "no row for {subject}:\n{page}");
    assert!(page.contains("<svg "), "no chart:\n{page}");
}

#[test]
fn soak_writes_html_and_merge_renders_the_same_bytes_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, a_html) = (path(dir.path(), "a.json"), path(dir.path(), "a.html"));
    let (a2, a2_html) = (path(dir.path(), "a2.json"), path(dir.path(), "a2.html"));
    soak("0..3", &a, &a_html);
    soak("3..6", &a2, &a2_html);
    assert_page(&read(&a_html), "memory");
    let json: serde_json::Value = serde_json::from_str(&read(&a)).expect("json");
    assert_eq!(json["schema_version"], 1);

    let (m, m_json, m2) =
        (path(dir.path(), "m.html"), path(dir.path(), "m.json"), path(dir.path(), "m2.html"));
    let (code, out, err) = qk(&["report", "merge", &a, &a2, "--html", &m, "--json", &m_json]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("2 reports (2 sources), 6 seeds"), "{out}");
    let page = read(&m);
    assert_page(&page, "memory");
    assert!(page.contains("a2.json"), "the sources are listed:\n{page}");
    let merged: serde_json::Value = serde_json::from_str(&read(&m_json)).expect("json");
    assert_eq!(merged["seeds_run"], 6);
    assert_eq!(merged["families"][0]["histories"], 6);
    assert_eq!(merged["merged_from"].as_array().map(Vec::len), Some(2));

    let (code, _, err) = qk(&["report", "merge", &a, &a2, "--html", &m2]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read(&m2), page, "the same input renders to the same bytes");
    // The merged JSON renders to the same page as the reports it came from.
    let m3 = path(dir.path(), "m3.html");
    let (code, _, err) = qk(&["report", "merge", &m_json, "--html", &m3]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read(&m3), page, "a saved merged report renders as it did");
}

#[test]
fn an_html_path_that_cannot_be_written_is_refused_before_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = path(dir.path(), "no/such/dir/report.html");
    let (code, out, err) = qk(&["soak", "--family", "memory", "--seeds", "0..1", "--html", &bad]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains(&bad), "the path is named: {err}");
    assert!(!out.contains("seeds in"), "the run must not start:\n{out}");
}

#[test]
fn merge_refuses_bad_reports_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, a_html) = (path(dir.path(), "a.json"), path(dir.path(), "a.html"));
    soak("0..2", &a, &a_html);
    let refused = |args: &[&str], needle: &str| {
        let (code, out, err) = qk(&[&["report", "merge"][..], args].concat());
        assert_eq!(code, 2, "{args:?}: stdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    };
    let missing = path(dir.path(), "missing.json");
    refused(&[&a, &missing], &missing);
    let garbage = path(dir.path(), "garbage.json");
    std::fs::write(&garbage, "{ not json").expect("write");
    refused(&[&a, &garbage], &garbage);
    let future = path(dir.path(), "future.json");
    std::fs::write(&future, read(&a).replace("\"schema_version\": 1", "\"schema_version\": 9"))
        .expect("write");
    refused(&[&a, &future], "unknown schema_version 9");
    let old = path(dir.path(), "old.json");
    std::fs::write(&old, "{\"passed\": true, \"seeds_run\": 1}").expect("write");
    refused(&[&old], "no schema_version");
    refused(&[&a, &a], "repeats the seeds and shard");
    let (b, b_html) = (path(dir.path(), "b.json"), path(dir.path(), "b.html"));
    let args = ["soak", "--family", "memory", "--seeds", "2..3", "--ops", "30"];
    let (code, _, err) =
        qk(&[&args[..], &["--no-regressions", "--json", &b, "--html", &b_html]].concat());
    assert_eq!(code, 0, "{err}");
    refused(&[&a, &b], "config.generator");
}
