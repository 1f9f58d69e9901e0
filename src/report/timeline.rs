//! The crash timeline of one replayed history, as a self-contained HTML page (inline CSS and
//! SVG, no script, no network): the history's steps in order with the disk operations each
//! caused, drawn one lane per file; syncs as barriers; every power loss with what it did to
//! each pending operation (kept, dropped, torn, misdirected: per file, with offsets); the
//! errors the disk returned (injected faults); the step where a check failed and the first
//! difference it found. The same run gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::sim::checks::CheckFailure;
use crate::sim::engine::runner::RunOutcome;
use crate::sim::engine::trace::RunTimeline;
use crate::sim::soak::regression::Regression;
use crate::vfs::{DiskOp, Fate};

use super::html::escape;

/// What the page says about the run besides its timeline.
#[derive(Clone, Debug, Default)]
pub struct TimelineHeader {
    /// The page's title (the regression's story, or the seed).
    pub title: String,
    /// `(label, value)` lines shown above the drawing (family, seed, faults, tunables, ...).
    pub facts: Vec<(String, String)>,
}

/// The page of a replayed `regression` (its story, family, seed, faults and tunables on top),
/// or `None` when the run recorded no timeline (it had no simulated disk, or was not asked).
pub fn regression_page(
    regression: &Regression,
    family: &str,
    outcome: &RunOutcome,
) -> Option<String> {
    let timeline = outcome.timeline.as_ref()?;
    let mut facts = vec![
        ("family".to_string(), family.to_string()),
        ("seed".to_string(), regression.seed.map_or("none".to_string(), |s| s.to_string())),
        ("ops".to_string(), regression.ops.len().to_string()),
        ("faults".to_string(), regression.faults.to_string()),
        ("tunables".to_string(), regression.tunables.to_string()),
        ("disk seed".to_string(), regression.disk_seed.to_string()),
    ];
    if let Some(original) = &regression.original_faults {
        facts.push(("faults before shrinking".to_string(), original.to_string()));
    }
    if let Some(refusal) = &outcome.refusal {
        facts.push(("refused".to_string(), refusal.clone()));
    }
    let header = TimelineHeader { title: format!("qk replay: {}", regression.story), facts };
    Some(render(&header, timeline, outcome.failure.as_ref()))
}

/// Disk operations listed per step at most; the rest are counted (the drawing has them all).
const OPS_LISTED_PER_STEP: usize = 400;
/// Marks drawn with a hover title at most (crash fates always have theirs).
const TITLED_MARKS_MAX: usize = 4000;
const LANE_HEIGHT: u64 = 16;
const LABEL_WIDTH: u64 = 260;
const STEP_BAND_HEIGHT: u64 = 22;

/// Renders `timeline` as a page, with `failure` (the check that failed, if any) marked.
pub fn render(
    header: &TimelineHeader,
    timeline: &RunTimeline,
    failure: Option<&CheckFailure>,
) -> String {
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(page, "<title>{}</title>", escape(&header.title));
    page.push_str(STYLE);
    page.push_str("</head>\n<body>\n");
    let _ = writeln!(page, "<h1>{}</h1>", escape(&header.title));
    page.push_str("<table class=\"facts\">\n");
    for (label, value) in &header.facts {
        let _ = writeln!(page, "<tr><th>{}</th><td>{}</td></tr>", escape(label), escape(value));
    }
    let verdict = match failure {
        Some(f) => format!("check {} failed at step {} ({})", f.check, f.step, f.op),
        None => "all checks held".to_string(),
    };
    let class = if failure.is_some() { "failed" } else { "held" };
    let _ =
        writeln!(page, "<tr><th>verdict</th><td class=\"{class}\">{}</td></tr>", escape(&verdict));
    if let Some(f) = failure {
        let _ = writeln!(
            page,
            "<tr><th>first difference</th><td><pre>{}</pre></td></tr>",
            escape(&f.difference)
        );
    }
    let crashes = timeline.disk.crashes.len();
    let errors = timeline.disk.ops.iter().filter(|op| failed(op)).count();
    let _ = writeln!(
        page,
        "<tr><th>disk</th><td>{} operations, {crashes} power losses, {errors} failed (an injected \
         fault, a crashed disk)</td></tr>",
        timeline.disk.ops.len()
    );
    page.push_str("</table>\n");
    page.push_str(LEGEND);
    let steps = steps(timeline);
    let failed_step = failure.map(|f| f.step);
    page.push_str(&drawing(timeline, &steps, failed_step));
    page.push_str(&crash_tables(timeline));
    page.push_str(&step_table(timeline, &steps, failed_step));
    page.push_str("</body>\n</html>\n");
    page
}

/// One trace line and the disk operations numbered in `(first - 1, last]`.
struct Step<'a> {
    line: &'a str,
    /// The step number the line names (`#3 ...`), if any.
    number: Option<usize>,
    ops: std::ops::Range<usize>,
}

/// The trace lines with the range of `timeline.disk.ops` each caused.
fn steps(timeline: &RunTimeline) -> Vec<Step<'_>> {
    let ops = &timeline.disk.ops;
    let mut at = 0;
    let mut steps = Vec::new();
    for (line, count) in &timeline.lines {
        let start = at;
        while at < ops.len() && ops[at].op_no <= *count {
            at += 1;
        }
        let number = line.strip_prefix('#').and_then(|r| r.split(' ').next()?.parse().ok());
        steps.push(Step { line, number, ops: start..at });
    }
    if at < ops.len() {
        steps.push(Step { line: "(after the last trace line)", number: None, ops: at..ops.len() });
    }
    steps
}

/// Whether `op` returned an error that is a fault or a refusal of the medium (an injected
/// EIO or ENOSPC, a crashed disk), not an ordinary answer (absent, exists, not empty, locked).
fn failed(op: &DiskOp) -> bool {
    let ordinary = [
        "NotFound",
        "AlreadyExists",
        "NotADirectory",
        "IsADirectory",
        "DirectoryNotEmpty",
        "Locked",
    ];
    op.error.as_deref().is_some_and(|e| !ordinary.contains(&e))
}

/// The lane an operation is drawn in: its path, or a rename's destination.
fn lane_of(op: &DiskOp) -> &str {
    op.path.split_once(" -> ").map_or(op.path.as_str(), |(_, to)| to)
}

/// What kind of mark an operation gets.
fn kind(op: &DiskOp) -> &'static str {
    if failed(op) {
        return "err";
    }
    match op.op {
        "write_at" | "set_len" => "write",
        "sync" | "sync_dir" => "sync",
        "read_at" | "read_dir" | "metadata" | "len" => "read",
        "crash" => "crash",
        _ => "ns",
    }
}

fn fate_name(fate: Fate) -> String {
    match fate {
        Fate::Dropped => "dropped".to_string(),
        Fate::Kept => "kept".to_string(),
        Fate::Torn { kept, pieces } => format!("torn ({kept} of {pieces} pieces kept)"),
        Fate::Misdirected => "misdirected".to_string(),
    }
}

fn fate_class(fate: Fate) -> &'static str {
    match fate {
        Fate::Dropped => "dropped",
        Fate::Kept => "kept",
        Fate::Torn { .. } => "torn",
        Fate::Misdirected => "misdirected",
    }
}

/// The SVG: a band per step on top, a lane per path, a mark per operation.
fn drawing(timeline: &RunTimeline, steps: &[Step<'_>], failed_step: Option<usize>) -> String {
    let ops = &timeline.disk.ops;
    let mut lanes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for op in ops.iter().filter(|op| !op.path.is_empty()) {
        lanes.entry(lane_of(op)).or_insert_with(|| {
            order.push(lane_of(op));
            order.len() - 1
        });
    }
    let n = ops.len().max(1) as u64;
    // Pixels per operation: fit a screen (about 1100 px) when 2 to 10 a mark allow it.
    let step_px = (1_100 / n).clamp(2, 10);
    let width = LABEL_WIDTH + n * step_px + 20;
    let top = STEP_BAND_HEIGHT + 6;
    let height = top + order.len() as u64 * LANE_HEIGHT + 10;
    let x_of = |index: usize| LABEL_WIDTH + index as u64 * step_px;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" role=\"img\" aria-label=\"crash timeline\">"
    );
    for (lane, path) in order.iter().enumerate() {
        let y = top + lane as u64 * LANE_HEIGHT;
        let shade = if lane % 2 == 0 { "lane-even" } else { "lane-odd" };
        let _ = writeln!(
            svg,
            "<rect class=\"{shade}\" x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{LANE_HEIGHT}\"/>\
             <text class=\"path\" x=\"4\" y=\"{}\">{}</text>",
            y + LANE_HEIGHT - 4,
            escape(&shorten(path, 40))
        );
    }
    for (i, step) in steps.iter().enumerate() {
        if step.ops.is_empty() {
            continue;
        }
        let x = x_of(step.ops.start);
        let w = (step.ops.len() as u64 * step_px).max(1);
        let failed = step.number.is_some() && step.number == failed_step;
        let class = match (failed, i % 2) {
            (true, _) => "step-failed",
            (false, 0) => "step-even",
            (false, _) => "step-odd",
        };
        let _ = writeln!(
            svg,
            "<rect class=\"{class}\" x=\"{x}\" y=\"0\" width=\"{w}\" height=\"{STEP_BAND_HEIGHT}\">\
             <title>{}</title></rect>",
            escape(step.line)
        );
        if failed {
            let _ = writeln!(
                svg,
                "<rect class=\"failed-span\" x=\"{x}\" y=\"{top}\" width=\"{w}\" height=\"{}\"/>",
                height - top
            );
        }
        if w >= 24 {
            let label = step.number.map_or(String::new(), |n| format!("#{n}"));
            let _ = writeln!(
                svg,
                "<text class=\"step\" x=\"{}\" y=\"15\">{}</text>",
                x + 3,
                escape(&label)
            );
        }
    }
    let fates: BTreeMap<u64, Fate> =
        timeline.disk.crashes.iter().flat_map(|c| c.fates.iter().copied()).collect();
    let titled = ops.len() <= TITLED_MARKS_MAX;
    for (index, op) in ops.iter().enumerate() {
        let x = x_of(index);
        let title = |extra: &str| -> String {
            format!("<title>{}{}</title>", escape(&op.text), escape(extra))
        };
        if op.op == "crash" {
            let _ = writeln!(
                svg,
                "<line class=\"crash\" x1=\"{x}\" y1=\"0\" x2=\"{x}\" y2=\"{height}\">{}</line>",
                title("")
            );
            continue;
        }
        let Some(lane) = lanes.get(lane_of(op)) else { continue };
        let y = top + *lane as u64 * LANE_HEIGHT;
        let fate = fates.get(&op.op_no).copied();
        let mut class = kind(op).to_string();
        if let Some(fate) = fate {
            class = format!("{class} {}", fate_class(fate));
        }
        let tip = match (fate, titled) {
            (Some(fate), _) => title(&format!(" — at the power loss: {}", fate_name(fate))),
            (None, true) => title(""),
            (None, false) => String::new(),
        };
        let w = step_px.max(2);
        let _ = match kind(op) {
            "sync" => writeln!(
                svg,
                "<rect class=\"{class}\" x=\"{x}\" y=\"{}\" width=\"2\" height=\"{}\">{tip}</rect>",
                y + 1,
                LANE_HEIGHT - 2
            ),
            _ => writeln!(
                svg,
                "<rect class=\"{class}\" x=\"{x}\" y=\"{}\" width=\"{w}\" \
                 height=\"{}\">{tip}</rect>",
                y + 4,
                LANE_HEIGHT - 8
            ),
        };
    }
    svg.push_str("</svg></div>\n");
    svg
}

/// Keeps the last `max` characters of `path`, marked as cut.
fn shorten(path: &str, max: usize) -> String {
    let chars: Vec<char> = path.chars().collect();
    if chars.len() <= max {
        return path.to_string();
    }
    let tail: String = chars[chars.len() - (max - 1)..].iter().collect();
    format!("…{tail}")
}

/// One table per power loss: each pending operation, its file, range and fate.
fn crash_tables(timeline: &RunTimeline) -> String {
    let by_no: BTreeMap<u64, &DiskOp> = timeline.disk.ops.iter().map(|op| (op.op_no, op)).collect();
    let mut html = String::new();
    if timeline.disk.crashes.is_empty() {
        html.push_str("<h2>Power losses</h2>\n<p>None in this run.</p>\n");
        return html;
    }
    html.push_str("<h2>Power losses</h2>\n");
    for crash in &timeline.disk.crashes {
        let count =
            |class: &str| crash.fates.iter().filter(|(_, f)| fate_class(*f) == class).count();
        let _ = writeln!(
            html,
            "<h3 id=\"crash-{}\">Power loss at disk operation #{}: {} pending, {} kept, \
             {} dropped, {} torn, {} misdirected</h3>",
            crash.op_no,
            crash.op_no,
            crash.fates.len(),
            count("kept"),
            count("dropped"),
            count("torn"),
            count("misdirected")
        );
        if crash.fates.is_empty() {
            html.push_str("<p>Nothing was pending: everything was durable.</p>\n");
            continue;
        }
        html.push_str(
            "<table class=\"ops\"><tr><th>op</th><th>operation</th><th>file</th>\
             <th>offset</th><th>length</th><th>fate</th></tr>\n",
        );
        for (op_no, fate) in &crash.fates {
            let (name, path, range) = match by_no.get(op_no) {
                Some(op) => (op.op, op.path.as_str(), op.range),
                None => ("?", "?", None),
            };
            let (offset, len) = match range {
                Some((o, l)) => (o.to_string(), l.to_string()),
                None => (String::new(), String::new()),
            };
            let _ = writeln!(
                html,
                "<tr class=\"{}\"><td>#{op_no}</td><td>{name}</td><td>{}</td><td>{offset}</td>\
                 <td>{len}</td><td>{}</td></tr>",
                fate_class(*fate),
                escape(path),
                escape(&fate_name(*fate))
            );
        }
        html.push_str("</table>\n");
    }
    html
}

/// Every trace line with the disk operations it caused (folded).
fn step_table(timeline: &RunTimeline, steps: &[Step<'_>], failed_step: Option<usize>) -> String {
    let ops = &timeline.disk.ops;
    let mut html = String::from("<h2>Steps</h2>\n<ol class=\"steps\">\n");
    for step in steps {
        let failed = step.number.is_some() && step.number == failed_step;
        let class = if failed { " class=\"failed\"" } else { "" };
        let _ = write!(
            html,
            "<li{class}><details><summary><code>{}</code> <span class=\"count\">{} disk ops</span>\
             </summary>\n<pre>",
            escape(step.line),
            step.ops.len()
        );
        for op in &ops[step.ops.start..step.ops.end.min(step.ops.start + OPS_LISTED_PER_STEP)] {
            let _ = writeln!(html, "{}", escape(&op.text));
        }
        if step.ops.len() > OPS_LISTED_PER_STEP {
            let _ = writeln!(html, "... and {} more", step.ops.len() - OPS_LISTED_PER_STEP);
        }
        html.push_str("</pre></details></li>\n");
    }
    html.push_str("</ol>\n");
    html
}

const LEGEND: &str = "<p class=\"legend\">\
<span class=\"sw write\"></span> write or set_len \
<span class=\"sw sync\"></span> sync (a barrier) \
<span class=\"sw read\"></span> read \
<span class=\"sw ns\"></span> open, rename, remove, create \
<span class=\"sw err\"></span> failed (EIO, ENOSPC, crashed) \
<span class=\"sw crash-sw\"></span> power loss. At a power loss each pending operation is \
<span class=\"sw kept\"></span> kept, <span class=\"sw dropped\"></span> dropped, \
<span class=\"sw torn\"></span> torn or <span class=\"sw misdirected\"></span> misdirected. \
Hover a mark for its operation; the band on top is the history's steps, the failed one in \
red.</p>\n";

const STYLE: &str = "<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}h3{font-size:1em}
table.facts th{text-align:left;padding-right:1em;vertical-align:top}
table.facts pre{margin:0;white-space:pre-wrap}
td.failed{color:#b00020;font-weight:bold}td.held{color:#1b5e20;font-weight:bold}
.scroll{overflow-x:auto;border:1px solid #ccc}
.lane-even{fill:#fafafa}.lane-odd{fill:#f0f0f0}
text.path{font:11px monospace;fill:#333}text.step{font:11px monospace;fill:#000}
.step-even{fill:#cfd8dc}.step-odd{fill:#b0bec5}.step-failed{fill:#ef9a9a}
.failed-span{fill:#ffcdd2;opacity:.5}
.write{fill:#1565c0}.sync{fill:#000}.read{fill:#bdbdbd}.ns{fill:#6a1b9a}.err{fill:#d50000}
.kept{fill:#2e7d32}.dropped{fill:#fff;stroke:#757575;stroke-width:1}.torn{fill:#ef6c00}
.misdirected{fill:#c51162}
line.crash{stroke:#d50000;stroke-width:2;stroke-dasharray:4 2}
.legend .sw{display:inline-block;width:10px;height:10px;margin:0 2px 0 8px;border:1px solid #999}
.legend .sw.write{background:#1565c0}.legend .sw.sync{background:#000}
.legend .sw.read{background:#bdbdbd}.legend .sw.ns{background:#6a1b9a}
.legend .sw.err{background:#d50000}.legend .sw.crash-sw{background:#fff;border:2px dashed #d50000}
.legend .sw.kept{background:#2e7d32}.legend .sw.dropped{background:#fff}
.legend .sw.torn{background:#ef6c00}.legend .sw.misdirected{background:#c51162}
table.ops{border-collapse:collapse;font:12px monospace}
table.ops td,table.ops th{border:1px solid #ddd;padding:1px 6px;text-align:left}
tr.kept td:last-child{color:#2e7d32}tr.dropped td:last-child{color:#757575}
tr.torn td:last-child{color:#ef6c00}tr.misdirected td:last-child{color:#c51162}
ol.steps{font-size:13px}ol.steps li.failed summary{background:#ffcdd2}
ol.steps pre{font-size:11px;margin:.3em 0 .6em 1em}
.count{color:#777;font-size:11px}
</style>
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::checks::CheckName;
    use crate::vfs::{CrashFates, DiskTimeline};

    fn op(op_no: u64, op: &'static str, path: &str, range: Option<(u64, u64)>) -> DiskOp {
        DiskOp {
            op_no,
            op,
            path: path.to_string(),
            range,
            text: format!("#{op_no} {op} {path}"),
            error: None,
        }
    }

    fn sample() -> RunTimeline {
        let mut eio = op(4, "write_at", "d/<log>", Some((0, 9)));
        eio.error = Some("Io".to_string());
        RunTimeline {
            lines: vec![
                ("#0 append(1..=1) -> ok".to_string(), 3),
                ("#1 append(2..=2) -> err".to_string(), 4),
                ("#2 power loss: 2 pending, 1 kept, 1 torn".to_string(), 7),
            ],
            disk: DiskTimeline {
                ops: vec![
                    op(1, "open", "d/<log>", None),
                    op(2, "write_at", "d/<log>", Some((0, 4096))),
                    op(3, "sync", "d/<log>", None),
                    eio,
                    op(5, "write_at", "d/<log>", Some((4096, 8192))),
                    op(6, "rename", "d/meta", None),
                    op(7, "crash", "", None),
                ],
                crashes: vec![CrashFates {
                    op_no: 7,
                    fates: vec![(6, Fate::Dropped), (5, Fate::Torn { kept: 1, pieces: 2 })],
                }],
            },
        }
    }

    fn failure() -> CheckFailure {
        CheckFailure {
            check: CheckName::ModelEquality,
            family: "local".to_string(),
            step: 2,
            op: "crash()".to_string(),
            difference: "entry 2: <missing> & \"gone\"".to_string(),
            trace_tail: Vec::new(),
            disk_trace_tail: String::new(),
        }
    }

    #[test]
    fn the_page_names_every_fate_with_its_file_and_offset_and_marks_the_failed_step() {
        let header = TimelineHeader {
            title: "seed 3 <script>".to_string(),
            facts: vec![("family".to_string(), "local".to_string())],
        };
        let page = render(&header, &sample(), Some(&failure()));
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(!page.contains("<script>"), "text is escaped");
        assert!(page.contains("seed 3 &lt;script&gt;"));
        assert!(page.contains("entry 2: &lt;missing&gt; &amp; &quot;gone&quot;"));
        assert!(page.contains("check model_equality failed at step 2"), "{page}");
        // The torn write: its file, offset, length and how much survived.
        assert!(page.contains(
            "<td>#5</td><td>write_at</td><td>d/&lt;log&gt;</td><td>4096</td><td>8192</td>\
             <td>torn (1 of 2 pieces kept)</td>"
        ));
        assert!(page.contains("<td>#6</td><td>rename</td><td>d/meta</td>"));
        assert!(page.contains("2 pending, 0 kept, 1 dropped, 1 torn, 0 misdirected"));
        // The failed step's band, the crash line, the error mark, one lane per file.
        assert!(page.contains("class=\"step-failed\""));
        assert!(page.contains("<line class=\"crash\""));
        assert!(page.contains("class=\"err\""));
        assert_eq!(page.matches("<text class=\"path\"").count(), 2);
        assert!(page.contains("7 operations, 1 power losses, 1 failed"));
        // A rename is drawn in its destination's lane.
        assert_eq!(lane_of(&op(9, "rename", "d/a.tmp -> d/a", None)), "d/a");
        // Each step lists the disk operations numbered up to its stamp.
        let second = "#1 append(2..=2) -&gt; err</code> <span class=\"count\">1 disk ops";
        assert!(page.contains(second));
    }

    #[test]
    fn the_same_timeline_gives_the_same_bytes_and_a_held_run_says_so() {
        let header = TimelineHeader::default();
        let a = render(&header, &sample(), None);
        assert_eq!(a, render(&header, &sample(), None));
        assert!(a.contains("all checks held"));
        assert!(!a.contains("class=\"step-failed\""));
    }
}
