//! Regression histories: a failing history, shrunk, stored as JSON under
//! `corpus/regressions/` with the story of the bug, and replayed by `cargo test` forever.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::contract::Family;
use crate::sim::checks::CheckName;
use crate::sim::engine::ops::Op;
use crate::sim::engine::runner::{run_subject_on_disk, RunOptions, RunOutcome};
use crate::sim::engine::subject::Subject;
use crate::sim::engine::tunables::SubjectTunables;
use crate::vfs::{EnumerateOptions, FaultPlan, FaultStreams, SimDisk, SimDiskOptions};

/// One stored regression history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// What went wrong and how it was found, for the next reader.
    pub story: String,
    /// The family it failed on (its scheme).
    pub family: String,
    /// The seed that found it, if a soak did.
    pub seed: Option<u64>,
    /// The check that failed when it was recorded.
    pub check: Option<CheckName>,
    /// The (shrunk) history. Replaying it must now pass every check.
    pub ops: Vec<Op>,
    /// Seed of the simulated disk it replays on.
    #[serde(default)]
    pub disk_seed: u64,
    /// Sector size of that disk (absent: the simulated disk's default, 4 KiB, as in every
    /// file written before soaks drew it per seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_size: Option<u32>,
    /// Fault plan of that disk (no faults when absent): the plan the history was shrunk to,
    /// which is what a replay runs under.
    #[serde(default)]
    pub faults: FaultPlan,
    /// The plan the seed originally ran under, when shrinking switched faults off (absent:
    /// `faults` is the original plan). For the reader only: replays use `faults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_faults: Option<FaultPlan>,
    /// The exhaustive crash enumeration the history failed under (absent: none, as in every
    /// file written before it was recorded); a replay enumerates the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhaustive: Option<EnumerateOptions>,
    /// The family tunables it replays with (the shrunk ones; absent in files written before
    /// tunables were drawn: every family's defaults).
    #[serde(default, skip_serializing_if = "SubjectTunables::is_default")]
    pub tunables: SubjectTunables,
    /// The tunables the seed originally ran with, when shrinking reset some (for the reader
    /// only, like `original_faults`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_tunables: Option<SubjectTunables>,
    /// Where the disk's faults and crash choices draw from (absent: `run`, one stream per
    /// kind over the whole run, as every file written before per-step streams was recorded;
    /// the soak now writes `steps`). A replay draws the same way, so old files replay as
    /// they were found.
    #[serde(default, skip_serializing_if = "is_run")]
    pub fault_streams: FaultStreams,
    /// Under per-step fault streams, the key each op's faults and crash choices are drawn
    /// under: its position in the history the soak generated, before shrinking removed ops
    /// (absent: positions `0..`, as for an unshrunk history and every older file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_keys: Option<Vec<u64>>,
}

fn is_run(streams: &FaultStreams) -> bool {
    *streams == FaultStreams::Run
}

impl Regression {
    /// The file name this regression is saved under.
    pub fn file_name(&self) -> String {
        let check = self.check.map(|c| c.as_str()).unwrap_or("manual");
        match self.seed {
            Some(seed) => format!("{}-{check}-seed-{seed}.json", self.family),
            None => format!("{}-{check}.json", self.family),
        }
    }

    /// Reads a regression file; one whose `sector_size` is not a power of two (no simulated
    /// disk has it) is refused here, as a bad file, rather than panicking at replay.
    pub fn load(path: &Path) -> Result<Regression, String> {
        let text = read_text(path)?;
        let regression: Regression =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(size) = regression.sector_size.filter(|s| !s.is_power_of_two()) {
            let path = path.display();
            return Err(format!("{path}: sector_size {size} is not a power of two"));
        }
        Ok(regression)
    }

    /// Writes this regression into `dir` (created if missing) and returns the file's path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, String> {
        let path = dir.join(self.file_name());
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        write_text(dir, &path, &(text + "\n"))?;
        Ok(path)
    }

    /// Replays the history on `family` on its simulated disk, keeping `trace_len` lines.
    pub fn replay(&self, family: Arc<dyn Family>, trace_len: usize) -> RunOutcome {
        self.replay_subject(Subject::Family(family), trace_len)
    }

    /// Replays the history on `subject` (a family or a dual-write pair) on a simulated disk
    /// with the stored disk seed and fault plan (the shrunk one), the stored exhaustive
    /// options and tunables, keeping `trace_len` trace lines.
    pub fn replay_subject(&self, subject: Subject, trace_len: usize) -> RunOutcome {
        let options = RunOptions { trace_tail_len: trace_len, ..RunOptions::default() };
        self.replay_with(subject, options)
    }

    /// As [`Regression::replay_subject`], with `options` (the stored exhaustive options and
    /// op keys replace its own).
    pub fn replay_with(&self, subject: Subject, options: RunOptions) -> RunOutcome {
        let options = RunOptions {
            exhaustive: self.exhaustive.clone(),
            step_keys: self.op_keys.clone(),
            ..options
        };
        let defaults = SimDiskOptions::default();
        let disk = SimDisk::new(SimDiskOptions {
            seed: self.disk_seed,
            faults: self.faults.clone(),
            fault_streams: self.fault_streams,
            sector_size: self.sector_size.unwrap_or(defaults.sector_size),
            ..defaults
        });
        // The location a soak used for this seed, so a replay makes the very same disk calls.
        let location = match self.seed {
            Some(seed) => format!("soak/{}-{seed}", subject.name()),
            None => "regression".to_string(),
        };
        run_subject_on_disk(
            subject.with_tunables(&self.tunables),
            &location,
            disk,
            &self.ops,
            options,
        )
    }
}

// Regression files live in the repository, not on a simulated disk: these two helpers are the
// harness's only direct file access, kept here so the rule "families use the Vfs" stays
// checkable.
fn read_text(path: &Path) -> Result<String, String> {
    use crate::vfs::{OpenOptions, OsVfs, Vfs};
    let file = OsVfs::new()
        .open(path, OpenOptions::READ)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = file.read_all().map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8: {e}", path.display()))
}

fn write_text(dir: &Path, path: &Path, text: &str) -> Result<(), String> {
    use crate::vfs::{OpenOptions, OsVfs, Vfs};
    let vfs = OsVfs::new();
    vfs.create_dir_all(dir).map_err(|e| e.to_string())?;
    let file = vfs.open(path, OpenOptions::CREATE_TRUNCATE).map_err(|e| e.to_string())?;
    file.write_at(text.as_bytes(), 0).map_err(|e| e.to_string())?;
    file.sync().map_err(|e| e.to_string())
}

impl Regression {
    /// Replays this regression on its builtin subject with `options`, recording its timeline,
    /// and writes the page ([`crate::report::timeline::regression_page`]) beside the file it
    /// was saved as (`X.json` → `X.html`); returns the page's path.
    pub fn save_timeline(&self, saved: &Path, options: RunOptions) -> Result<PathBuf, String> {
        let registry = crate::families::Registry::builtin();
        let subject = Subject::find(&registry, &self.family)
            .ok_or_else(|| format!("unknown family {:?}", self.family))?;
        let outcome = self.replay_with(subject, RunOptions { timeline: true, ..options });
        let page = crate::report::timeline::regression_page(self, &self.family, &outcome)
            .ok_or("the replay recorded no timeline")?;
        let path = saved.with_extension("html");
        let dir = path.parent().unwrap_or(Path::new("."));
        write_text(dir, &path, &page)?;
        Ok(path)
    }
}

/// Every `*.json` file in `dir`, sorted by name.
pub fn regression_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    use crate::vfs::{FileKind, OsVfs, Vfs};
    let entries = match OsVfs::new().read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind == crate::vfs::VfsErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    Ok(entries
        .into_iter()
        .filter(|e| e.kind == FileKind::File && e.name.ends_with(".json"))
        .map(|e| dir.join(e.name))
        .collect())
}
