//! Operator scenarios on real temporary directories with `OsVfs`: what `qk inspect` and
//! `qk image export` do to a directory a crash left behind (nothing: every byte, name and
//! length stays; they report what a read-write open would repair, and the image is what that
//! open recovers), read-only permissions, an inspect and a second import while an import
//! holds the instance, and paths that do not name an instance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quorumkit_storage::cli::image::{run_on, ImageCommand};
use quorumkit_storage::cli::inspect::inspect_on;
use quorumkit_storage::contract::{
    Entry, Family, FileMeta, Meta, PeerId, SnapshotMeta, SnapshotPath,
};
use quorumkit_storage::families::local::{LocalFamily, LocalOptions};
use quorumkit_storage::families::redb::RedbFamily;
use quorumkit_storage::image;
use quorumkit_storage::state::RaftState;
use quorumkit_storage::vfs::{
    DirEntry, LockMode, Metadata, OpenOptions, OsVfs, Vfs, VfsFile, VfsHandle, VfsLock, VfsResult,
    WriteAtomicity,
};

fn qk(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qk")).args(args).output().expect("qk runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os() -> VfsHandle {
    Arc::new(OsVfs::new())
}

/// A `Vfs` over the real disk that counts the mutating calls made under `root`.
struct Counting {
    inner: VfsHandle,
    root: PathBuf,
    mutations: Arc<AtomicU64>,
}

impl Counting {
    fn over(root: &Path) -> (VfsHandle, Arc<AtomicU64>) {
        let mutations = Arc::new(AtomicU64::new(0));
        let vfs = Counting { inner: os(), root: root.to_path_buf(), mutations: mutations.clone() };
        (Arc::new(vfs), mutations)
    }

    fn count(&self, path: &Path) {
        if path.starts_with(&self.root) {
            self.mutations.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Vfs for Counting {
    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        self.inner.read_dir(path)
    }

    fn metadata(&self, path: &Path) -> VfsResult<Metadata> {
        self.inner.metadata(path)
    }

    /// A lock changes no byte of the instance (and a read-only open never creates the lock
    /// file: it opens it through `open`, which counts creation).
    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        self.inner.try_lock(path, mode)
    }

    /// A declaration is not I/O: it changes no byte.
    fn declare_write_atomicity(&self, path: &Path, atomicity: WriteAtomicity) -> VfsResult<()> {
        self.inner.declare_write_atomicity(path, atomicity)
    }

    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        if options.write || options.create || options.create_new || options.truncate {
            self.count(path);
        }
        let file = self.inner.open(path, options)?;
        let counted = path.starts_with(&self.root).then(|| self.mutations.clone());
        Ok(Box::new(CountingFile { inner: file, mutations: counted }))
    }

    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        self.count(path);
        self.inner.create_dir(path)
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        self.count(path);
        self.inner.remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        self.count(path);
        self.inner.remove_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()> {
        self.count(from);
        self.count(to);
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> VfsResult<()> {
        self.count(path);
        self.inner.sync_dir(path)
    }
}

struct CountingFile {
    inner: Box<dyn VfsFile>,
    mutations: Option<Arc<AtomicU64>>,
}

impl CountingFile {
    fn count(&self) {
        if let Some(m) = &self.mutations {
            m.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl VfsFile for CountingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        self.inner.read_at(buf, offset)
    }

    fn len(&self) -> VfsResult<u64> {
        self.inner.len()
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> VfsResult<()> {
        self.count();
        self.inner.write_at(buf, offset)
    }

    fn set_len(&self, len: u64) -> VfsResult<()> {
        self.count();
        self.inner.set_len(len)
    }

    fn sync(&self) -> VfsResult<()> {
        self.count();
        self.inner.sync()
    }
}

/// Every path under `root`: `None` for a directory, the bytes for a file.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            if path.is_dir() {
                out.insert(rel, None);
                stack.push(path);
            } else {
                out.insert(rel, Some(std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

fn uri(scheme: &str, path: &Path) -> String {
    format!("{scheme}://{}", path.display())
}

/// A directory as braft leaves it: written by the local family (small segments, a vote, a
/// snapshot with file metadata, a prefix truncation), then stripped of every file only qk
/// writes (lock, checksum sidecars, epoch record, snapshot manifest).
fn braft_dir(dir: &Path) {
    let options = LocalOptions { segment_size_max: 2048, ..LocalOptions::default() };
    let family = LocalFamily::with_options(options);
    let mut instance = family.open(&dir.display().to_string(), os()).expect("open");
    let batch = |from: u64, to: u64, term: u64| -> Vec<Entry> {
        (from..=to).map(|i| Entry::data(i, term, vec![i as u8; 200])).collect()
    };
    instance.append(&batch(1, 20, 1)).expect("append");
    instance
        .save_meta(&Meta { term: 2, voted_for: Some(PeerId::new("127.0.0.1:8101:0:0")) })
        .expect("meta");
    instance.append(&batch(21, 40, 2)).expect("append");
    {
        let mut writer = instance.begin_snapshot().expect("snapshot");
        let path = SnapshotPath::new("data/state").expect("path");
        writer.add_file(&path, &FileMeta::user(&b"um"[..])).expect("add");
        writer.write_file(&path, 0, &[7u8; 3000]).expect("write");
        writer.set_meta(SnapshotMeta {
            last_included_index: 12,
            last_included_term: 1,
            peers: vec![PeerId::new("127.0.0.1:8101:0:0")],
            old_peers: vec![],
        });
        writer.publish().expect("publish");
    }
    instance.truncate_prefix(8).expect("truncate");
    drop(instance);
    for (path, _) in tree(dir) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name == "qk_lock"
            || name.ends_with(".qkcrc")
            || name.starts_with("qk_")
            || name.ends_with(".qkfiles")
        {
            std::fs::remove_file(dir.join(&path)).expect("strip a qk file");
        }
    }
}

fn open_segment(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("log_inprogress_"))
        })
        .expect("an open segment")
}

fn torn_tail(dir: &Path) {
    let segment = open_segment(dir);
    let mut bytes = std::fs::read(&segment).expect("segment");
    bytes.extend_from_slice(&[0xAB; 9]);
    std::fs::write(&segment, bytes).expect("torn tail");
}

/// braft's reset writes `log_meta` first and then unlinks the segments: a crash between
/// leaves the new `log_meta` (first index 100) beside every old segment.
fn half_done_reset(dir: &Path) {
    std::fs::write(dir.join("log/log_meta"), [0, 0, 0, 2, 0x08, 100]).expect("log_meta");
}

fn leftovers(dir: &Path) {
    std::fs::write(dir.join("log/log_meta.tmp"), b"partial").expect("tmp");
    std::fs::write(dir.join("log/log_00000000000000000001_00000000000000000003.tmp"), b"x")
        .expect("tmp");
    std::fs::write(dir.join("raft_meta/raft_meta.tmp"), b"partial").expect("tmp");
    std::fs::create_dir_all(dir.join("snapshot/temp/data")).expect("temp");
    std::fs::write(dir.join("snapshot/temp/data/state"), b"unpublished").expect("temp file");
    let current = std::fs::read_dir(dir.join("snapshot"))
        .expect("snapshot dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("snapshot_"))
        })
        .expect("a snapshot");
    let old = dir.join("snapshot/snapshot_00000000000000000003");
    std::fs::create_dir_all(&old).expect("old snapshot");
    for entry in std::fs::read_dir(&current).expect("files") {
        let entry = entry.expect("entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), old.join(entry.file_name())).expect("copy");
        }
    }
}

/// What `inspect` and `export` do to `dir`: nothing (no mutating call, no byte changed); what
/// they report is what the read-write open then repairs; the image is what it recovers.
fn read_only_commands_leave_it_untouched(dir: &Path, work: &Path, expect_repair: &str) {
    let target = uri("local", dir);
    let before = tree(dir);
    let (vfs, mutations) = Counting::over(dir);
    let mut warnings = Vec::new();
    let (text, value) =
        inspect_on(&vfs, &target, Default::default(), &mut warnings).expect("inspect");
    assert!(text.contains("a read-write open would repair:"), "{text}");
    let predicted: Vec<String> = value["read_only"]["repairs"]
        .as_array()
        .expect("repairs")
        .iter()
        .map(|r| {
            r["path"].as_str().expect("path").to_string()
                + " "
                + r["action"].as_str().expect("action")
        })
        .collect();
    assert!(text.contains(expect_repair), "{expect_repair:?} not in\n{text}");
    let image_path = work.join("export.qkimg");
    let cmd = ImageCommand::Export {
        from: target.clone(),
        output: image_path.display().to_string(),
        recovery: Default::default(),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_on(cmd, vfs.clone(), &mut std::io::empty(), &mut out, &mut err);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    assert!(
        String::from_utf8_lossy(&out).contains("was only read"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(mutations.load(Ordering::SeqCst), 0, "a mutating call under {}", dir.display());
    assert_eq!(tree(dir), before, "inspect or export changed {}", dir.display());
    // The binary, too, and the other commands that only read the instance: `compare`
    // (both sides) and the source of `migrate`.
    let (code, out, err) = qk(&["inspect", &target, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tree(dir), before, "qk inspect changed {}", dir.display());
    let (code, out, err) = qk(&["compare", &target, &target]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tree(dir), before, "qk compare changed {}", dir.display());
    let migrated = work.join("migrated.redb");
    let (code, out, err) = qk(&["migrate", "--from", &target, "--to", &uri("redb", &migrated)]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tree(dir), before, "qk migrate changed its source {}", dir.display());
    // The read-write open makes exactly the predicted repairs and recovers what was exported.
    let (instance, made) = LocalFamily::default()
        .open_reporting(&dir.display().to_string(), os())
        .expect("read-write");
    let made: Vec<String> = made
        .iter()
        .map(|r| {
            let v = serde_json::to_value(r).expect("json");
            v["path"].as_str().expect("path").to_string()
                + " "
                + v["action"].as_str().expect("action")
        })
        .collect();
    assert_eq!(made, predicted);
    let mut recovered = Vec::new();
    image::export(instance.as_ref(), "local", instance.family_format_version(), &mut recovered)
        .expect("export the recovered state");
    assert_eq!(
        std::fs::read(&image_path).expect("image"),
        recovered,
        "the image is not what recovery gives"
    );
    assert_ne!(tree(dir), before, "the read-write open repaired nothing");
    drop(instance);
    // What migrate copied is that recovered state as well.
    let (code, out, err) = qk(&["compare", &target, &uri("redb", &migrated)]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn inspect_and_export_leave_a_torn_tail_alone() {
    let (dir, work) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    braft_dir(dir.path());
    torn_tail(dir.path());
    read_only_commands_leave_it_untouched(dir.path(), work.path(), "- cut ");
}

#[test]
fn inspect_and_export_leave_a_half_done_reset_alone() {
    let (dir, work) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    braft_dir(dir.path());
    half_done_reset(dir.path());
    read_only_commands_leave_it_untouched(dir.path(), work.path(), "- remove ");
    // What a read-write open recovered: braft's empty log at 100, the meta and snapshot kept.
    let opened = LocalFamily::default()
        .open_read_only(&dir.path().display().to_string(), os())
        .expect("read-only");
    assert_eq!((opened.view.first_index(), opened.view.last_index()), (100, 99));
    assert!(opened.repairs.is_empty(), "{:?}", opened.repairs);
}

#[test]
fn inspect_and_export_leave_leftovers_alone() {
    let (dir, work) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    braft_dir(dir.path());
    leftovers(dir.path());
    read_only_commands_leave_it_untouched(dir.path(), work.path(), "- remove directory ");
    for gone in [
        "log/log_meta.tmp",
        "log/log_00000000000000000001_00000000000000000003.tmp",
        "snapshot/temp",
        "snapshot/snapshot_00000000000000000003",
    ] {
        assert!(!dir.path().join(gone).exists(), "{gone} survived the read-write open");
    }
    // As in braft, nothing in `raft_meta/` is cleaned up: the leftover is ignored, not removed.
    assert!(dir.path().join("raft_meta/raft_meta.tmp").exists(), "raft_meta.tmp was removed");
}

/// On storage the user may read but not write. As root permission bits do not stop writes,
/// so there the test cannot bite and says so (the counting file system above proves the
/// same without permissions).
#[test]
fn inspect_and_export_work_on_storage_that_cannot_be_written() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, work) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    braft_dir(dir.path());
    torn_tail(dir.path());
    let before = tree(dir.path());
    let set_mode = |file_mode: u32, dir_mode: u32| {
        for (path, bytes) in tree(dir.path()) {
            let mode = if bytes.is_some() { file_mode } else { dir_mode };
            std::fs::set_permissions(dir.path().join(path), std::fs::Permissions::from_mode(mode))
                .expect("chmod");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(dir_mode))
            .expect("chmod");
    };
    set_mode(0o444, 0o555);
    let probe = dir.path().join("log/can-i-write");
    if std::fs::write(&probe, b"x").is_ok() {
        std::fs::remove_file(&probe).expect("cleanup");
        set_mode(0o644, 0o755);
        eprintln!(
            "skipped: permission bits do not stop this process from writing (running as root?); \
             the counting-Vfs tests prove inspect and export issue no mutating call"
        );
        return;
    }
    let target = uri("local", dir.path());
    let (code, out, err) = qk(&["inspect", &target]);
    assert_eq!(code, 0, "{out}{err}");
    let image = work.path().join("x.qkimg").display().to_string();
    let (code, out, err) = qk(&["image", "export", "--from", &target, "-o", &image]);
    assert_eq!(code, 0, "{out}{err}");
    set_mode(0o644, 0o755);
    assert_eq!(tree(dir.path()), before);
}

/// While an import holds the destination, `qk inspect` is refused (naming the lock and the
/// writer) and so is a second `qk image import`; the first import then completes intact.
#[test]
fn inspect_and_a_second_import_are_refused_while_an_import_runs() {
    let (src, dest, work) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    braft_dir(src.path());
    let image_path = work.path().join("src.qkimg").display().to_string();
    let (code, out, err) =
        qk(&["image", "export", "--from", &uri("local", src.path()), "-o", &image_path]);
    assert_eq!(code, 0, "{out}{err}");
    let bytes = std::fs::read(&image_path).expect("image");
    let expected = {
        let opened = LocalFamily::default()
            .open_read_only(&src.path().display().to_string(), os())
            .expect("src");
        RaftState::capture(opened.view.as_ref()).expect("capture")
    };
    for (scheme, location) in
        [("local", dest.path().join("node")), ("redb", dest.path().join("node.redb"))]
    {
        let family: Arc<dyn Family> = match scheme {
            "local" => Arc::new(LocalFamily::default()),
            _ => Arc::new(RedbFamily::new()),
        };
        let target = uri(scheme, &location);
        let mut instance = family.open(&location.display().to_string(), os()).expect("destination");
        {
            // An import in progress: the sink is open and fed its first record.
            let mut sink = instance.begin_import().expect("import");
            sink.set_first_index(expected.first).expect("first");
            let (code, _, err) = qk(&["inspect", &target]);
            assert_eq!(code, 2, "inspect during an import: {err}");
            assert!(
                err.contains("is locked") && err.contains("a writer has this instance open"),
                "{err}"
            );
            let (code, _, err) = qk(&["image", "import", "--to", &target, &image_path]);
            assert_eq!(code, 2, "a second import: {err}");
            assert!(err.contains("is locked"), "{err}");
            drop(sink);
        }
        // The import then runs to the end, intact.
        image::import(&bytes[..], instance.as_mut()).expect("the import completes");
        assert_eq!(RaftState::capture(instance.as_ref()).expect("capture"), expected, "{scheme}");
        // The committed instance is still locked by its writer (for local://, the staged
        // root's lock came along with the root swap).
        let (code, _, err) = qk(&["inspect", &target]);
        assert_eq!(code, 2, "inspect after the import, its writer still open: {err}");
        assert!(err.contains("is locked"), "{err}");
        drop(instance);
        let (code, out, err) = qk(&["compare", &target, &uri("local", src.path())]);
        assert_eq!(code, 0, "{out}{err}");
    }
}

/// Paths that do not name an instance are refused with a hint, and never set up; whitespace
/// is removed as braft removes it, with a warning naming the path used.
#[test]
fn paths_say_what_they_mean() {
    let (dir, work) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    braft_dir(dir.path());
    let before = tree(dir.path());
    let (code, _, err) = qk(&["inspect", &uri("local", &dir.path().join("log"))]);
    assert_eq!(code, 2);
    assert!(err.contains("braft's own `log` directory"), "{err}");
    assert!(err.contains(&format!("local://{}", dir.path().display())), "{err}");
    let unrelated = work.path().join("unrelated");
    std::fs::create_dir_all(&unrelated).expect("dir");
    std::fs::write(unrelated.join("notes.txt"), b"mine").expect("file");
    let image_path = work.path().join("x.qkimg").display().to_string();
    let (code, out, err) =
        qk(&["image", "export", "--from", &uri("local", dir.path()), "-o", &image_path]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = qk(&["image", "import", "--to", &uri("local", &unrelated), &image_path]);
    assert_eq!(code, 2);
    assert!(err.contains("not a braft instance"), "{err}");
    assert_eq!(tree(&unrelated).len(), 1, "the unrelated directory was set up as an instance");
    // A space inside the path: removed, warned about, and the resolved path printed.
    let text = dir.path().display().to_string();
    let (head, tail) = text.split_at(text.len() / 2);
    let spaced = format!("local://{head} {tail}");
    let (code, out, err) = qk(&["inspect", &spaced]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("warning: removed whitespace") && err.contains(&text), "{err}");
    let (code, _, err) = qk(&["compare", "memory://a", &uri("local", dir.path())]);
    assert_eq!(code, 2);
    assert!(err.contains("always finds it empty"), "{err}");
    assert_eq!(tree(dir.path()), before);
}

/// Two `qk image import` processes started together on one destination: exactly one
/// imports, the other is refused (by the lock while the first runs, or as a non-empty
/// destination once it has finished), and the destination holds the image intact.
///
/// Destinations: a missing `local://` directory (both processes create it at once: the one
/// that loses the race must neither fail on the directory the other made nor remove it), a
/// pre-made empty one, and a missing `redb://` file. Each race runs a few rounds, on a fresh
/// destination each time (on odd rounds the missing destination's parent is missing too).
#[test]
fn two_concurrent_imports_to_one_destination_one_is_refused() {
    let (src, dest, work) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    braft_dir(src.path());
    let image_path = work.path().join("src.qkimg").display().to_string();
    let (code, out, err) =
        qk(&["image", "export", "--from", &uri("local", src.path()), "-o", &image_path]);
    assert_eq!(code, 0, "{out}{err}");
    let cases = [("local", "missing", false), ("local", "empty", true), ("redb", "missing", false)];
    for (round, (scheme, what, premade)) in
        (0..4).flat_map(|round| cases.iter().map(move |case| (round, *case)))
    {
        let location = dest.path().join(format!("{scheme}-{what}-{round}")).join("node");
        // On odd rounds the parent is missing too, so both processes create a chain.
        if premade || round % 2 == 0 {
            std::fs::create_dir_all(location.parent().expect("a parent")).expect("mkdir");
        }
        if premade {
            std::fs::create_dir(&location).expect("an empty destination directory");
        }
        let target = uri(scheme, &location);
        let scheme = format!("{scheme} ({what}, round {round})");
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_qk"))
                .args(["image", "import", "--to", &target, &image_path])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("qk runs")
        };
        let (first, second) = (spawn(), spawn());
        let outcomes: Vec<(i32, String)> = [first, second]
            .into_iter()
            .map(|child| {
                let out = child.wait_with_output().expect("qk ends");
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                (out.status.code().unwrap_or(-1), text)
            })
            .collect();
        let codes: Vec<i32> = outcomes.iter().map(|(code, _)| *code).collect();
        assert!(codes.contains(&0) && codes.contains(&2), "{scheme}: {outcomes:?}");
        let refused = &outcomes.iter().find(|(code, _)| *code == 2).expect("a refusal").1;
        assert!(
            refused.contains("is locked") || refused.contains("not empty"),
            "{scheme}: the refusal does not say why: {refused}"
        );
        let (code, out, err) = qk(&["compare", &target, &uri("local", src.path())]);
        assert_eq!(code, 0, "{scheme}: {out}{err}");
    }
}
