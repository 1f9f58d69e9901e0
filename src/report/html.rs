//! A soak report as one self-contained HTML page: inline CSS, charts as inline SVG, no
//! script and no reference to anything outside the page.
//!
//! [`render`] is a pure function of the report: the same [`SoakJson`] gives the same bytes
//! (no clock, no hash order; numbers are printed with fixed precision). Every piece of text
//! taken from the report passes through [`escape`].

use std::fmt::Write;

use super::SoakJson;
use crate::sim::checks::CheckName;
use crate::sim::soak::{points_for, FamilySummary, SeedPlan, SoakFailure};

/// `text` safe to put in HTML text and in a double- or single-quoted attribute: `&`, `<`,
/// `>`, `"` and `'` replaced by character references, everything else unchanged.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1 .pass{color:#1a7f37}h1 .fail{color:#c62828}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right;font-variant-numeric:tabular-nums}
th:first-child,td:first-child,table.kv td{text-align:left}
thead th{background:#f3f3f3}
table.matrix thead th.check{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:normal}
td.zero{color:#aaa}td.bad{background:#fdd;color:#900;font-weight:bold}
.unreached{color:#c62828;font-weight:bold}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap}
article.failure{border-left:4px solid #c62828;padding-left:1em;margin-bottom:1.5em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}
svg text{font:12px monospace}
";

/// The page for `report`: its configuration, the subject-by-check matrix, throughput, fault
/// counts, coverage (unreached points flagged) and every failure reported in full.
pub fn render(report: &SoakJson) -> String {
    let mut out = String::new();
    let verdict = if report.passed {
        "<span class=\"pass\">all checks held</span>".to_string()
    } else {
        format!("<span class=\"fail\">{} failed histories</span>", report.failures_total)
    };
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let title = if report.passed { "passed" } else { "FAILED" };
    let _ = writeln!(out, "<title>qk soak report: {title}</title>");
    let _ = writeln!(out, "<style>\n{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>qk soak report: {verdict}</h1>");
    config_section(&mut out, report);
    matrix_section(&mut out, report);
    throughput_section(&mut out, report);
    faults_section(&mut out, report);
    coverage_section(&mut out, report);
    failures_section(&mut out, report);
    out.push_str("</body>\n</html>\n");
    out
}

/// A table row of a key and an (already escaped) value.
fn kv(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "<tr><th>{}</th><td>{value}</td></tr>", escape(key));
}

fn seeds_text(seeds: &SeedPlan) -> String {
    match seeds {
        SeedPlan::Range { start, end } => format!("{start}..{end}"),
        SeedPlan::Open { start } => format!("{start}.. (until the time budget ran out)"),
    }
}

fn config_section(out: &mut String, report: &SoakJson) {
    let c = &report.config;
    out.push_str("<section id=\"config\">\n<h2>Configuration</h2>\n<table class=\"kv\">\n");
    kv(out, "subjects", &escape(&c.families.join(", ")));
    let seeds = if report.merged_from.is_empty() {
        seeds_text(&c.seeds)
    } else {
        format!("union of the {} sources below", report.merged_from.len())
    };
    kv(out, "seeds", &escape(&seeds));
    if let Some(shard) = c.shard {
        kv(out, "shard", &format!("{}/{}", shard.index, shard.count));
    }
    kv(out, "seeds run", &report.seeds_run.to_string());
    kv(out, "fault mode", &escape(&json_word(&c.faults)));
    kv(out, "generator mode", &escape(&json_word(&c.generator.mode)));
    kv(out, "ops per history", &c.generator.ops_len.to_string());
    let tunables = match &c.tunables {
        Some(t) => format!("fixed: {t}"),
        None => "drawn per seed (each failure's replay line gives its own)".to_string(),
    };
    kv(out, "tunables", &escape(&tunables));
    let checking = match (c.unchecked, c.exhaustive) {
        (true, _) => "unchecked (per-step comparisons skipped)",
        (false, true) => "exhaustive (every crash point around every mutation)",
        (false, false) => "sampled crash points, checks after every step",
    };
    kv(out, "checking", checking);
    if !c.ablated.is_empty() {
        kv(out, "ablated (switched off)", &escape(&c.ablated));
    }
    let planted: Vec<&str> = c
        .planted
        .map(|b| b.name())
        .into_iter()
        .chain(c.planted_dual.map(|b| b.name()))
        .chain(c.planted_validator.map(|b| b.name()))
        .chain(c.planted_migration.map(|b| b.name()))
        .chain(c.planted_reader.map(|b| b.name()))
        .collect();
    if !planted.is_empty() {
        kv(out, "PLANTED BUGS", &escape(&planted.join(", ")));
    }
    let elapsed = format!("{:.2} s", report.elapsed_seconds);
    let elapsed_key = if report.merged_from.is_empty() { "elapsed" } else { "elapsed (summed)" };
    kv(out, elapsed_key, &elapsed);
    kv(out, "histories that did no work", &report.histories_idle.to_string());
    out.push_str("</table>\n");
    if !report.merged_from.is_empty() {
        out.push_str("<h3>Merged from</h3>\n<table>\n<thead><tr><th>file</th><th>seeds</th>");
        out.push_str("<th>shard</th><th>seeds run</th><th>elapsed s</th><th>failures</th>");
        out.push_str("</tr></thead>\n<tbody>\n");
        for s in &report.merged_from {
            let shard = s.shard.map(|s| format!("{}/{}", s.index, s.count)).unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{shard}</td><td>{}</td><td>{:.2}</td>\
                 <td>{}</td></tr>",
                escape(&s.file),
                escape(&seeds_text(&s.seeds)),
                s.seeds_run,
                s.elapsed_seconds,
                s.failures_total
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

/// A unit enum's serde name (`mixed`, `raft`), as the JSON spells it.
fn json_word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Every check name: the known ones in report order, then any other a report names.
fn check_columns(report: &SoakJson) -> Vec<String> {
    let mut names: Vec<String> = CheckName::ALL.iter().map(|c| c.as_str().to_string()).collect();
    for f in &report.families {
        for check in f.failures_by_check.keys() {
            if !names.contains(check) {
                names.push(check.clone());
            }
        }
    }
    names
}

fn count_cell(n: u64) -> String {
    let class = if n == 0 { "zero" } else { "bad" };
    format!("<td class=\"{class}\">{n}</td>")
}

fn matrix_section(out: &mut String, report: &SoakJson) {
    let checks = check_columns(report);
    out.push_str("<section id=\"matrix\">\n<h2>Subjects by check: failed histories</h2>\n");
    out.push_str("<table class=\"matrix\">\n<thead><tr><th>subject</th><th>histories</th>");
    out.push_str("<th>idle</th><th>failed</th>");
    for check in &checks {
        let _ = write!(out, "<th class=\"check\">{}</th>", escape(check));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for f in &report.families {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{}",
            escape(&f.family),
            f.histories,
            f.stats.idle,
            count_cell(f.failures)
        );
        for check in &checks {
            out.push_str(&count_cell(f.failures_by_check.get(check).copied().unwrap_or(0)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// One bar of a chart.
struct Bar {
    label: String,
    value: f64,
    text: String,
    flagged: bool,
}

/// A horizontal bar chart as inline SVG: one row per bar, the label left, the bar scaled to
/// the largest value (logarithmically when `log`), the value's text right. Flagged bars are
/// drawn in red.
fn bar_chart(title: &str, bars: &[Bar], log: bool) -> String {
    const LABEL: f64 = 320.0;
    const WIDTH: f64 = 300.0;
    const ROW: f64 = 18.0;
    let scale = |v: f64| if log { (1.0 + v.max(0.0)).ln() } else { v.max(0.0) };
    let max = bars.iter().map(|b| scale(b.value)).fold(0.0, f64::max);
    let height = ROW * bars.len() as f64 + 24.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg width=\"{:.0}\" height=\"{height:.0}\" \
         role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>",
        LABEL + WIDTH + 140.0,
        t = escape(title)
    );
    let _ = writeln!(svg, "<text x=\"0\" y=\"14\" font-weight=\"bold\">{}</text>", escape(title));
    for (i, bar) in bars.iter().enumerate() {
        let y = 24.0 + ROW * i as f64;
        let w = if max > 0.0 { scale(bar.value) / max * WIDTH } else { 0.0 };
        let fill = if bar.flagged { "#c62828" } else { "#4878b0" };
        let _ = writeln!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL:.0}\" y=\"{:.0}\" width=\"{w:.1}\" height=\"{:.0}\" \
             fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{:.0}\">{}</text>",
            LABEL - 6.0,
            y + 13.0,
            escape(&bar.label),
            y + 3.0,
            ROW - 4.0,
            LABEL + w + 4.0,
            y + 13.0,
            escape(&bar.text)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn throughput_section(out: &mut String, report: &SoakJson) {
    out.push_str("<section id=\"throughput\">\n<h2>Throughput</h2>\n");
    out.push_str(
        "<p>Counters over the elapsed time (subjects share the run's wall time, so a rate is \
         a subject's own only when it ran alone).</p>\n",
    );
    out.push_str("<table>\n<thead><tr><th>subject</th><th>histories</th><th>steps</th>");
    out.push_str("<th>mutations</th><th>histories/s</th><th>steps/s</th><th>mutations/s</th>");
    out.push_str("<th>crash cycles/s</th><th>exports/s</th></tr></thead>\n<tbody>\n");
    for (f, r) in report.families.iter().zip(&report.rates) {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td>\
             <td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
            escape(&f.family),
            f.histories,
            f.stats.steps,
            f.stats.mutations,
            r.histories_per_second,
            r.steps_per_second,
            r.mutations_per_second,
            r.crash_cycles_per_second,
            r.exports_per_second
        );
    }
    out.push_str("</tbody>\n</table>\n");
    let chart = |title: &str, value: fn(&super::Rates) -> f64| {
        let bars: Vec<Bar> = report
            .rates
            .iter()
            .map(|r| Bar {
                label: r.family.clone(),
                value: value(r),
                text: format!("{:.1}", value(r)),
                flagged: false,
            })
            .collect();
        bar_chart(title, &bars, false)
    };
    out.push_str(&chart("histories per second", |r| r.histories_per_second));
    out.push_str(&chart("steps per second", |r| r.steps_per_second));
    out.push_str(&chart("checked mutations per second", |r| r.mutations_per_second));
    out.push_str("</section>\n");
}

/// One counter of a subject's totals.
type Counter = fn(&FamilySummary) -> u64;

/// The fault and recovery counters of the faults table, by column heading.
const FAULT_COUNTERS: [(&str, Counter); 10] = [
    ("faults injected", |f| f.stats.faults),
    ("power losses", |f| f.stats.crashes),
    ("crashes in recovery", |f| f.stats.recovery_crashes),
    ("sub-sector tears", |f| f.stats.sub_sector_tears),
    ("failed mutations", |f| f.stats.failed_mutations),
    ("refused (fail closed)", |f| f.stats.refusals),
    ("open retries", |f| f.stats.open_retries),
    ("clean reopens", |f| f.stats.reopens),
    ("crash states", |f| f.stats.crash_states),
    ("pair repairs", |f| f.stats.pair_repairs),
];

fn faults_section(out: &mut String, report: &SoakJson) {
    out.push_str("<section id=\"faults\">\n<h2>Faults and recovery</h2>\n");
    out.push_str("<table>\n<thead><tr><th>subject</th>");
    for (name, _) in FAULT_COUNTERS {
        let _ = write!(out, "<th>{}</th>", escape(name));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for f in &report.families {
        let _ = write!(out, "<tr><td>{}</td>", escape(&f.family));
        for (_, counter) in FAULT_COUNTERS {
            let _ = write!(out, "<td>{}</td>", counter(f));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    let bars: Vec<Bar> = report
        .families
        .iter()
        .map(|f| Bar {
            label: f.family.clone(),
            value: f.stats.faults as f64,
            text: f.stats.faults.to_string(),
            flagged: false,
        })
        .collect();
    out.push_str(&bar_chart("faults injected", &bars, false));
    out.push_str("</section>\n");
}

fn coverage_section(out: &mut String, report: &SoakJson) {
    out.push_str("<section id=\"coverage\">\n<h2>Coverage</h2>\n");
    out.push_str(
        "<p>Per subject, each counted path: seeds that reached it / hits over all seeds \
         (bars on a log scale). A point no seed reached is flagged UNREACHED.</p>\n",
    );
    for f in report.families.iter().filter(|f| f.histories > 0) {
        let _ = writeln!(out, "<h3>{}</h3>", escape(&f.family));
        if f.unreached.is_empty() {
            out.push_str("<p>every point reached</p>\n");
        } else {
            let _ = writeln!(
                out,
                "<p class=\"unreached\">UNREACHED ({}): {}</p>",
                f.unreached.len(),
                escape(&f.unreached.join(", "))
            );
        }
        let mut names: Vec<String> =
            points_for(&f.family).iter().map(|p| p.name().to_string()).collect();
        for name in f.coverage.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let bars: Vec<Bar> = names
            .into_iter()
            .map(|name| {
                let reach = f.coverage.get(&name).copied().unwrap_or_default();
                let unreached = f.unreached.contains(&name);
                Bar {
                    text: if unreached {
                        "UNREACHED".to_string()
                    } else {
                        format!("{}/{}", reach.seeds, reach.hits)
                    },
                    label: name,
                    value: reach.hits as f64,
                    flagged: unreached,
                }
            })
            .collect();
        let title = format!("{}: hits per path (seeds/hits)", f.family);
        out.push_str(&bar_chart(&title, &bars, true));
    }
    out.push_str("</section>\n");
}

fn failures_section(out: &mut String, report: &SoakJson) {
    out.push_str("<section id=\"failures\">\n<h2>Failures</h2>\n");
    if report.failures_total == 0 {
        out.push_str("<p>none: every check held</p>\n");
    }
    let unlisted = report.failures_total.saturating_sub(report.failures.len() as u64);
    if unlisted > 0 {
        let _ = writeln!(
            out,
            "<p>{} failed histories in all; {unlisted} of them not reported in full (the \
             soak keeps the first ones)</p>",
            report.failures_total
        );
    }
    for (i, f) in report.failures.iter().enumerate() {
        failure(out, i + 1, f);
    }
    out.push_str("</section>\n");
}

fn failure(out: &mut String, n: usize, f: &SoakFailure) {
    let _ = writeln!(
        out,
        "<article class=\"failure\" id=\"failure-{n}\">\n<h3>#{n} {}, seed {}: {}</h3>\n<dl>",
        escape(&f.family),
        f.seed,
        escape(f.failure.check.as_str())
    );
    let item = |out: &mut String, key: &str, value: &str| {
        let _ = writeln!(out, "<dt>{key}</dt><dd>{}</dd>", escape(value));
    };
    item(out, "check", f.failure.check.as_str());
    item(out, "step", &format!("{} ({})", f.failure.step, f.failure.op));
    item(out, "difference", &f.failure.difference);
    item(out, "tunables", &f.tunables.to_string());
    item(out, "fault plan", &f.fault_plan.to_string());
    let shrunk = format!("{} -> {} ops ({} runs)", f.original_len, f.shrunk.len(), f.shrink_runs);
    item(out, "shrunk", &shrunk);
    if let Some(s) = &f.shrunk_failure {
        let text = format!("{} at step {}: {}", s.check, s.step, s.difference);
        item(out, "shrunk failure", &text);
    }
    if f.shrink_cut_short {
        item(out, "shrink", "cut short: the time budget ran out (the replay line shrinks it)");
    }
    if f.shrunk_tunables != f.tunables {
        item(out, "shrunk tunables", &f.shrunk_tunables.to_string());
    }
    let removed: Vec<&str> = f.faults_removed.iter().map(|k| k.name()).collect();
    let shrunk_plan = if removed.is_empty() {
        format!("{} (nothing removed)", f.shrunk_fault_plan)
    } else {
        format!("{} (removed {})", f.shrunk_fault_plan, removed.join(", "))
    };
    item(out, "shrunk fault plan", &shrunk_plan);
    if let Some(file) = &f.regression_file {
        item(out, "saved", file);
    }
    out.push_str("</dl>\n");
    let _ = writeln!(out, "<p>replay:</p>\n<pre><code>{}</code></pre>", escape(&f.replay));
    if !f.shrunk.is_empty() {
        out.push_str("<details><summary>shrunk history</summary>\n<pre>");
        for (i, op) in f.shrunk.iter().enumerate() {
            let _ = writeln!(out, "{i:>4}  {}", escape(&op.to_string()));
        }
        out.push_str("</pre></details>\n");
    }
    if !f.failure.trace_tail.is_empty() {
        out.push_str("<details><summary>trace (last lines)</summary>\n<pre>");
        for line in &f.failure.trace_tail {
            let _ = writeln!(out, "{}", escape(line));
        }
        out.push_str("</pre></details>\n");
    }
    if !f.failure.disk_trace_tail.is_empty() {
        out.push_str("<details><summary>disk trace (last lines)</summary>\n<pre>");
        out.push_str(&escape(&f.failure.disk_trace_tail));
        out.push_str("</pre></details>\n");
    }
    out.push_str("</article>\n");
}
