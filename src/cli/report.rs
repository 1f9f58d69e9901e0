//! `qk report`: soak reports after the run. `qk report merge A.json B.json ... [--json OUT]
//! [--html OUT]` merges the JSON reports of shards into one ([`crate::report::merge`]) and
//! writes it as JSON and/or as the HTML page; given one report, it renders that report's
//! page. Also the file side of `qk soak --html` ([`create_output`], [`write_html`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{EXIT_OK, EXIT_USAGE};
use crate::report::{self, SoakJson};

/// The `qk report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge soak JSON reports (shards of one configuration) into one report: counters,
    /// failures per check and coverage summed per subject, failures in a fixed order.
    /// Exit 2 on an unreadable or malformed report, an unknown schema_version, reports of
    /// different configurations (apart from seeds and shard) or a report given twice.
    Merge(MergeArgs),
}

/// Arguments of `qk report merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The soak reports (`qk soak --json`) to merge.
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Write the merged report here, as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write the merged report here, as a self-contained HTML page.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
}

/// Runs `qk report`: 0 when the merged report was written, 2 on bad input or an output
/// that cannot be written (whether the merged soak passed is in the report, not the code).
pub fn run(command: ReportCommand) -> u8 {
    match command {
        ReportCommand::Merge(args) => match merge(&args) {
            Ok(line) => {
                println!("{line}");
                EXIT_OK
            }
            Err(e) => {
                eprintln!("qk report merge: {e}");
                EXIT_USAGE
            }
        },
    }
}

/// Reads, merges and writes; the summary line, or what went wrong naming the file.
fn merge(args: &MergeArgs) -> Result<String, String> {
    let mut reports = Vec::new();
    for path in &args.reports {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {name}: {e}"))?;
        let parsed = report::parse(&text).map_err(|e| format!("{name}: {e}"))?;
        reports.push((name, parsed));
    }
    let merged = report::merge(&reports)?;
    if let Some(path) = &args.json {
        let file = create_output(path)?;
        write_json(file, &merged).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.html {
        let file = create_output(path)?;
        write_html(file, &merged).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let histories: u64 = merged.families.iter().map(|f| f.histories).sum();
    Ok(format!(
        "qk report merge: {} reports ({} sources), {} seeds, {histories} histories, {}",
        reports.len(),
        merged.merged_from.len(),
        merged.seeds_run,
        if merged.passed {
            "all checks held".to_string()
        } else {
            format!("{} failed histories", merged.failures_total)
        }
    ))
}

/// Creates (or truncates) `path` for writing a report, so that a path that cannot be
/// written is refused before any work; the error names the path.
pub fn create_output(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `report` as pretty JSON (one trailing newline) to `file`.
pub fn write_json(mut file: File, report: &SoakJson) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

/// Writes `report`'s HTML page ([`crate::report::html::render`]) to `file`.
pub fn write_html(mut file: File, report: &SoakJson) -> std::io::Result<()> {
    file.write_all(report::html::render(report).as_bytes())
}
