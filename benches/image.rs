//! Image throughput and memory (DESIGN §8): export, verify and import of a synthetic image,
//! next to `cp` plus `sha256sum` of the same file in the same run, as ratios, with the peak
//! resident memory of each step.
//!
//! ```text
//! cargo bench --bench image            # a 1 GiB image
//! cargo bench --bench image -- 1 4     # 1 GiB and 4 GiB images
//! cargo bench --bench image -- 0.25    # sizes may be fractions of a GiB
//! ```
//!
//! The state is synthetic and generated on the fly (a quarter of the bytes as 4 KiB log
//! entries, the rest as 256 MiB snapshot files), so the source holds no copy of it; import
//! goes into a destination that checks and counts what it is given and keeps nothing. So
//! the numbers are the codec's own cost, and the peak memory is the codec's. Each step runs
//! in a child process (this binary, re-executed) so its peak RSS (`VmHWM`) is its own.
//! The image file lives in a temporary directory, usually in the page cache for both us and
//! the standard tools. Lines starting with `QK-RESULT` are for `scripts/bench.sh`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use quorumkit_storage::contract::{
    ContractError, Entry, FileMeta, ImportSink, Index, Meta, RaftStorage, SnapshotFileInfo,
    SnapshotMeta, SnapshotPath, SnapshotWriter, StateView, StorageError, StorageResult,
};
use quorumkit_storage::image::{export, import, verify};

const ENTRY_LEN: usize = 4096;
const FILE_LEN: u64 = 256 << 20;
const GIB: u64 = 1 << 30;
const PATTERN_LEN: usize = 64 << 10;

/// A state of about `gib` GiB, generated on demand.
struct Synthetic {
    n_entries: u64,
    /// Snapshot file bytes: files of `FILE_LEN`, the last one shorter.
    file_bytes: u64,
    pattern: Vec<u8>,
}

impl Synthetic {
    fn new(gib: f64) -> Self {
        let total = (gib * GIB as f64) as u64;
        let log_bytes = total / 4;
        let pattern = (0..PATTERN_LEN).map(|i| (i * 131 % 251) as u8).collect();
        Synthetic {
            n_entries: log_bytes / ENTRY_LEN as u64,
            file_bytes: total - log_bytes,
            pattern,
        }
    }

    fn file_len(&self, k: u64) -> u64 {
        self.file_bytes.saturating_sub(k * FILE_LEN).min(FILE_LEN)
    }

    fn path(k: u64) -> SnapshotPath {
        SnapshotPath::new(format!("data/part-{k:04}")).expect("valid path")
    }
}

fn backend(message: &str) -> StorageError {
    StorageError::Backend { family: "bench", message: message.to_string() }
}

impl StateView for Synthetic {
    fn first_index(&self) -> Index {
        1
    }
    fn last_index(&self) -> Index {
        self.n_entries
    }
    fn entry(&self, index: Index) -> StorageResult<Option<Entry>> {
        if index == 0 || index > self.n_entries {
            return Ok(None);
        }
        let start = (index as usize * 61) % (PATTERN_LEN - ENTRY_LEN);
        let data = Bytes::copy_from_slice(&self.pattern[start..start + ENTRY_LEN]);
        Ok(Some(Entry::data(index, 1 + index / 100_000, data)))
    }
    fn meta(&self) -> StorageResult<Meta> {
        Ok(Meta { term: 9, voted_for: None })
    }
    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        Ok(Some(SnapshotMeta {
            last_included_index: 0,
            last_included_term: 0,
            peers: vec![],
            old_peers: vec![],
        }))
    }
    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        Ok((0..self.file_bytes.div_ceil(FILE_LEN))
            .map(|k| SnapshotFileInfo {
                path: Synthetic::path(k),
                len: self.file_len(k),
                file_meta: FileMeta::default(),
            })
            .collect())
    }
    fn read_snapshot_file(
        &self,
        path: &SnapshotPath,
        offset: u64,
        buf: &mut [u8],
    ) -> StorageResult<usize> {
        let k = path.as_str().trim_start_matches("data/part-").parse().unwrap_or(0);
        let n = buf.len().min((self.file_len(k).saturating_sub(offset)) as usize);
        let mut done = 0;
        while done < n {
            let at = ((offset as usize) + done) % PATTERN_LEN;
            let step = (n - done).min(PATTERN_LEN - at);
            buf[done..done + step].copy_from_slice(&self.pattern[at..at + step]);
            done += step;
        }
        Ok(n)
    }
}

/// An import destination that keeps nothing: it only counts what it receives.
#[derive(Default)]
struct Discard {
    entries: u64,
    bytes: u64,
}

impl StateView for Discard {
    fn first_index(&self) -> Index {
        1
    }
    fn last_index(&self) -> Index {
        0
    }
    fn entry(&self, _index: Index) -> StorageResult<Option<Entry>> {
        Ok(None)
    }
    fn meta(&self) -> StorageResult<Meta> {
        Ok(Meta::INITIAL)
    }
    fn snapshot_meta(&self) -> StorageResult<Option<SnapshotMeta>> {
        Ok(None)
    }
    fn snapshot_files(&self) -> StorageResult<Vec<SnapshotFileInfo>> {
        Ok(Vec::new())
    }
    fn read_snapshot_file(&self, p: &SnapshotPath, _: u64, _: &mut [u8]) -> StorageResult<usize> {
        Err(ContractError::UnknownSnapshotFile { path: p.to_string() }.into())
    }
}

impl RaftStorage for Discard {
    fn family(&self) -> &'static str {
        "discard"
    }
    fn append(&mut self, _: &[Entry]) -> StorageResult<()> {
        Err(backend("read-only"))
    }
    fn truncate_prefix(&mut self, _: Index) -> StorageResult<()> {
        Err(backend("read-only"))
    }
    fn truncate_suffix(&mut self, _: Index) -> StorageResult<()> {
        Err(backend("read-only"))
    }
    fn reset(&mut self, _: Index) -> StorageResult<()> {
        Err(backend("read-only"))
    }
    fn save_meta(&mut self, _: &Meta) -> StorageResult<()> {
        Err(backend("read-only"))
    }
    fn begin_snapshot(&mut self) -> StorageResult<Box<dyn SnapshotWriter + '_>> {
        Err(backend("read-only"))
    }
    fn begin_export(&mut self) -> StorageResult<Box<dyn StateView + Send>> {
        Err(backend("read-only"))
    }
    fn begin_import(&mut self) -> StorageResult<Box<dyn ImportSink + '_>> {
        Ok(Box::new(DiscardSink { into: self }))
    }
}

struct DiscardSink<'a> {
    into: &'a mut Discard,
}

impl ImportSink for DiscardSink<'_> {
    fn set_first_index(&mut self, _: Index) -> StorageResult<()> {
        Ok(())
    }
    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        self.into.entries += entries.len() as u64;
        Ok(())
    }
    fn set_meta(&mut self, _: &Meta) -> StorageResult<()> {
        Ok(())
    }
    fn add_snapshot_file(&mut self, _: &SnapshotPath, _: &FileMeta) -> StorageResult<()> {
        Ok(())
    }
    fn write_snapshot_file(&mut self, _: &SnapshotPath, _: u64, data: &[u8]) -> StorageResult<()> {
        self.into.bytes += data.len() as u64;
        Ok(())
    }
    fn set_snapshot_meta(&mut self, _: SnapshotMeta) -> StorageResult<()> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> StorageResult<()> {
        Ok(())
    }
}

/// Peak resident set of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One step in this (child) process; prints `seconds rss_kib`.
fn child(step: &str, gib: f64, path: &Path) {
    let start = Instant::now();
    match step {
        "export" => {
            let out = BufWriter::new(File::create(path).expect("create image"));
            export(&Synthetic::new(gib), "synthetic", 0, out).expect("export");
        }
        "verify" => {
            verify(File::open(path).expect("open image")).expect("verify");
        }
        "import" => {
            let mut dest = Discard::default();
            import(File::open(path).expect("open image"), &mut dest).expect("import");
            assert_eq!(dest.entries, Synthetic::new(gib).n_entries);
        }
        other => panic!("unknown step {other}"),
    }
    println!("{} {}", start.elapsed().as_secs_f64(), peak_rss_kib());
}

fn run_child(step: &str, gib: f64, path: &Path) -> (f64, u64) {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args(["--child", step, &gib.to_string()])
        .arg(path)
        .output()
        .expect("run child");
    assert!(out.status.success(), "{step}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    let secs = fields.next().and_then(|s| s.parse().ok()).expect("seconds");
    let rss = fields.next().and_then(|s| s.parse().ok()).expect("rss");
    (secs, rss)
}

fn time_tool(program: &str, args: &[&Path]) -> f64 {
    let start = Instant::now();
    let status = Command::new(program).args(args).stdout(std::process::Stdio::null()).status();
    assert!(status.is_ok_and(|s| s.success()), "{program} failed");
    start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("--child") {
        let gib = args[2].parse().expect("gib");
        child(&args[1], gib, &PathBuf::from(&args[3]));
        return;
    }
    let sizes: Vec<f64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1.0] } else { sizes };
    let dir = tempfile::tempdir().expect("temp dir");
    println!("image benchmark (ratio = step time / (cp + sha256sum) time; rss = peak RSS)");
    for gib in sizes {
        let path = dir.path().join("image.qkimg");
        let copy = dir.path().join("copy.qkimg");
        let (export_s, export_rss) = run_child("export", gib, &path);
        let len = std::fs::metadata(&path).expect("image").len();
        let mib = len as f64 / (1 << 20) as f64;
        // Warm the page cache equally for everyone, then the baseline.
        let _ = time_tool("cat", &[&path]);
        let cp_s = time_tool("cp", &[&path, &copy]);
        let sha_s = time_tool("sha256sum", &[&path]);
        std::fs::remove_file(&copy).expect("remove copy");
        let base = cp_s + sha_s;
        let (verify_s, verify_rss) = run_child("verify", gib, &path);
        let (import_s, import_rss) = run_child("import", gib, &path);
        println!("{gib} GiB target: image {len} bytes ({mib:.0} MiB)");
        println!(
            "  baseline: cp {cp_s:.2} s, sha256sum {sha_s:.2} s, together {base:.2} s \
             ({:.0} MiB/s)",
            mib / base
        );
        println!("QK-RESULT image.{gib}.baseline {:.1} MiB/s", mib / base);
        for (step, secs, rss) in [
            ("export", export_s, export_rss),
            ("verify", verify_s, verify_rss),
            ("import", import_s, import_rss),
        ] {
            println!(
                "  {step:<6}: {secs:6.2} s {:7.0} MiB/s  ratio {:.2}  peak rss {:.1} MiB",
                mib / secs,
                secs / base,
                rss as f64 / 1024.0
            );
            println!("QK-RESULT image.{gib}.{step} {:.1} MiB/s", mib / secs);
            println!("QK-RESULT image.{gib}.{step}_rss {rss} KiB");
        }
        std::fs::remove_file(&path).expect("remove image");
    }
}
