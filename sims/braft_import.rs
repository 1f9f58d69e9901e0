//! Imports braft sees as nothing or everything, on real directories (`OsVfs`), and nothing
//! left behind by a failed, refused or interrupted `qk image import` or `qk migrate`
//! (issue 14 item 3; DESIGN §5).
//!
//! Faults are injected by [`FailNth`], a wrapper of `OsVfs` that fails the n-th mutating
//! call (EIO, or ENOSPC for writes); interruption by SIGINT to a child `qk image import`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quorumkit_storage::braft_view::{self, BraftView};
use quorumkit_storage::cli::image::{run_on as image_run_on, ImageCommand};
use quorumkit_storage::cli::migrate::{run_on as migrate_run_on, MigrateArgs};
use quorumkit_storage::contract::{
    Entry, Family, FileMeta, FileSource, Meta, PeerId, SnapshotMeta, SnapshotPath,
};
use quorumkit_storage::families::local::{LocalFamily, LocalPaths, LocalStorage};
use quorumkit_storage::image::{encode_state, import};
use quorumkit_storage::sim::checks::braft_view::canonical;
use quorumkit_storage::state::{RaftState, Snapshot, SnapshotFile};
use quorumkit_storage::vfs::{
    DirEntry, LockMode, Metadata, OpenOptions, OsVfs, Vfs, VfsError, VfsErrorKind, VfsFile,
    VfsHandle, VfsLock, VfsResult, WriteAtomicity,
};

/// Fails the `fail_at`-th mutating call (counted from 1) with EIO, or ENOSPC when it is a
/// write; every other call goes through. `fail_at = 0` never fails (it only counts).
struct FailNth {
    inner: OsVfs,
    count: Arc<AtomicU64>,
    fail_at: u64,
    writes_only: bool,
}

impl FailNth {
    fn new(fail_at: u64, writes_only: bool) -> Arc<Self> {
        Arc::new(FailNth { inner: OsVfs::new(), count: Arc::default(), fail_at, writes_only })
    }

    fn step(&self, op: &'static str, path: &Path, is_write: bool) -> VfsResult<()> {
        if self.writes_only && !is_write {
            return Ok(());
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at {
            let kind = if is_write { VfsErrorKind::NoSpace } else { VfsErrorKind::Io };
            return Err(VfsError::new(op, path, kind));
        }
        Ok(())
    }

    fn calls(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

struct FailNthFile {
    inner: Box<dyn VfsFile>,
    vfs: Arc<FailNth>,
    path: PathBuf,
}

impl VfsFile for FailNthFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> VfsResult<()> {
        self.vfs.step("write_at", &self.path, true)?;
        self.inner.write_at(buf, offset)
    }
    fn len(&self) -> VfsResult<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> VfsResult<()> {
        self.vfs.step("set_len", &self.path, true)?;
        self.inner.set_len(len)
    }
    fn sync(&self) -> VfsResult<()> {
        self.vfs.step("sync", &self.path, false)?;
        self.inner.sync()
    }
}

/// The handle type the wrapper gives out needs the `Arc` of the wrapper itself.
struct Handle(Arc<FailNth>);

impl Vfs for Handle {
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        if options.write || options.create {
            self.0.step("open", path, options.create)?;
        }
        let inner = self.0.inner.open(path, options)?;
        Ok(Box::new(FailNthFile { inner, vfs: self.0.clone(), path: path.to_path_buf() }))
    }
    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        self.0.step("create_dir", path, true)?;
        self.0.inner.create_dir(path)
    }
    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        self.0.step("remove_file", path, false)?;
        self.0.inner.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        self.0.step("remove_dir", path, false)?;
        self.0.inner.remove_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()> {
        self.0.step("rename", from, false)?;
        self.0.inner.rename(from, to)
    }
    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        self.0.inner.read_dir(path)
    }
    fn metadata(&self, path: &Path) -> VfsResult<Metadata> {
        self.0.inner.metadata(path)
    }
    fn declare_write_atomicity(&self, path: &Path, atomicity: WriteAtomicity) -> VfsResult<()> {
        self.0.inner.declare_write_atomicity(path, atomicity)
    }
    fn sync_dir(&self, path: &Path) -> VfsResult<()> {
        self.0.step("sync_dir", path, false)?;
        self.0.inner.sync_dir(path)
    }
    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        self.0.inner.try_lock(path, mode)
    }
}

fn peer(text: &str) -> PeerId {
    PeerId::new(text)
}

/// A state with a log not starting at 1, a vote and a snapshot with nested files.
fn state() -> RaftState {
    let entries = (5..=44u64)
        .map(|i| Entry::data(i, 2 + i / 20, Bytes::from(vec![i as u8; 100 + i as usize])))
        .collect();
    // One file with all three of braft's LocalFileMeta fields, one with none.
    let every_field = FileMeta {
        user_meta: Some(Bytes::from_static(b"user")),
        source: Some(FileSource::Reference),
        checksum: Some("9f0e".to_string()),
    };
    let files: BTreeMap<SnapshotPath, SnapshotFile> =
        [("a/b", 3000usize, every_field), ("c", 70_000, FileMeta::default())]
            .into_iter()
            .map(|(p, n, file_meta)| {
                let data = Bytes::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
                (SnapshotPath::new(p).expect("path"), SnapshotFile { data, file_meta })
            })
            .collect();
    RaftState {
        first: 5,
        entries,
        meta: Meta { term: 4, voted_for: Some(peer("10.0.0.1:8000:0:0")) },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                last_included_index: 4,
                last_included_term: 2,
                peers: vec![peer("10.0.0.1:8000:0:0"), peer("10.0.0.2:8000:0:0")],
                old_peers: vec![],
            },
            files,
        }),
    }
}

fn image() -> Vec<u8> {
    let mut out = Vec::new();
    encode_state(&state(), "model", 0, &[], &mut out).expect("encode");
    out
}

fn os() -> VfsHandle {
    Arc::new(OsVfs::new())
}

fn braft(dir: &Path) -> BraftView {
    braft_view::read(&OsVfs::new(), dir).expect("braft's view").view
}

/// Every entry under `dir`, recursively, with file bytes: a directory's exact contents.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.insert(path.clone(), None);
            out.extend(tree(&path));
        } else {
            out.insert(path.clone(), Some(std::fs::read(&path).expect("read")));
        }
    }
    out
}

fn siblings_of(inst: &Path) -> [PathBuf; 2] {
    let name = inst.file_name().expect("name").to_string_lossy();
    let parent = inst.parent().expect("parent");
    [parent.join(format!(".{name}.qk-import")), parent.join(format!(".{name}.qk-old"))]
}

#[test]
fn an_import_failing_at_any_step_is_nothing_or_everything_to_braft_and_to_us() {
    let image = image();
    let expected = state();
    // First count the mutating calls of a whole import.
    let counting = FailNth::new(0, false);
    let dir = tempfile::tempdir().expect("tempdir");
    let inst = dir.path().join("inst");
    let mut dest = LocalFamily::default()
        .open(inst.to_str().expect("utf-8"), Arc::new(Handle(counting.clone())))
        .expect("open");
    let before = counting.calls();
    import(image.as_slice(), dest.as_mut()).expect("import");
    let total = counting.calls() - before;
    drop(dest);
    assert_eq!(braft(&inst), BraftView::State(expected.clone()));
    assert!(total > 20, "an import makes many calls ({total})");
    let mut outcomes = BTreeMap::new();
    for fail_at in 1..=total {
        let dir = tempfile::tempdir().expect("tempdir");
        let inst = dir.path().join("inst");
        // The open makes the same calls as in the counting run; fail a call of the import.
        let failing = FailNth::new(before + fail_at, false);
        let mut dest = LocalFamily::default()
            .open(inst.to_str().expect("utf-8"), Arc::new(Handle(failing)))
            .expect("open");
        let result = import(image.as_slice(), dest.as_mut());
        drop(dest);
        let view = braft(&inst);
        assert!(
            view == BraftView::Empty || view == BraftView::State(expected.clone()),
            "failing call {fail_at}: braft would load {view}"
        );
        if result.is_ok() {
            assert_eq!(view, BraftView::State(expected.clone()), "call {fail_at}: Ok but lost");
        } else if view == BraftView::Empty {
            // An error before the commit point: the staged root is gone already.
            for sibling in siblings_of(&inst) {
                assert!(!sibling.exists(), "call {fail_at}: {} left behind", sibling.display());
            }
        }
        // Our own open agrees, and repairs every sibling.
        let ours = LocalStorage::open(os(), LocalPaths::from_dir(&inst), Default::default())
            .expect("our open");
        let recovered = canonical(&RaftState::capture(&ours).expect("capture"));
        assert!(
            recovered == RaftState::new() || recovered == expected,
            "failing call {fail_at}: our open recovered neither empty nor the image"
        );
        assert_eq!(view.state(), Some(recovered), "call {fail_at}: braft and us disagree");
        for sibling in siblings_of(&inst) {
            assert!(!sibling.exists(), "call {fail_at}: {} after our open", sibling.display());
        }
        *outcomes.entry(result.is_ok()).or_insert(0) += 1;
    }
    assert!(outcomes.get(&false).copied().unwrap_or(0) > 0);
}

fn image_file(dir: &Path) -> PathBuf {
    let path = dir.join("state.qkimg");
    std::fs::write(&path, image()).expect("write image");
    path
}

fn qk_import(vfs: VfsHandle, to: &str, input: &Path) -> (u8, String) {
    let mut stderr = Vec::new();
    let cmd = ImageCommand::Import {
        to: to.to_string(),
        input: input.display().to_string(),
        recovery: Default::default(),
    };
    let code = image_run_on(cmd, vfs, &mut std::io::empty(), &mut Vec::new(), &mut stderr);
    (code, String::from_utf8_lossy(&stderr).into_owned())
}

/// The state the instance at `uri` holds (peers in braft's spelling).
fn holds(uri: &str) -> RaftState {
    let storage = quorumkit_storage::families::Registry::builtin().open(uri, os()).expect("open");
    canonical(&RaftState::capture(storage.as_ref()).expect("capture"))
}

#[test]
fn enospc_during_qk_image_import_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = image_file(dir.path());
    // Count the writes of a whole import into each family, then fail a spread of them.
    for scheme in ["local", "redb"] {
        let counting = FailNth::new(0, true);
        let target = dir.path().join(format!("count-{scheme}/x/inst"));
        let to = format!("{scheme}://{}", target.display());
        assert_eq!(qk_import(Arc::new(Handle(counting.clone())), &to, &input).0, 0);
        let writes = counting.calls();
        for fail_at in (1..=writes).step_by((writes as usize / 12).max(1)) {
            let root = dir.path().join(format!("{scheme}-{fail_at}"));
            let to = format!("{scheme}://{}", root.join("x/inst").display());
            let (code, stderr) =
                qk_import(Arc::new(Handle(FailNth::new(fail_at, true))), &to, &input);
            if code == 0 {
                // The write failed after the commit (a database closing): all there.
                assert_eq!(holds(&to), state(), "{scheme} write {fail_at}");
                continue;
            }
            assert_eq!(code, 2, "{scheme} write {fail_at}: {stderr}");
            assert!(
                !root.exists(),
                "{scheme} write {fail_at}: {} was left: {stderr}",
                root.display()
            );
        }
    }
}

#[test]
fn enospc_during_qk_migrate_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source");
    let input = image_file(dir.path());
    assert_eq!(qk_import(os(), &format!("local://{}", source.display()), &input).0, 0);
    for scheme in ["local", "redb"] {
        let count_root = dir.path().join(format!("count-{scheme}"));
        let args = |root: &Path| MigrateArgs {
            from: format!("local://{}", source.display()),
            to: format!("{scheme}://{}", root.join("y/dest").display()),
            json: true,
            recovery: Default::default(),
        };
        let counting = FailNth::new(0, true);
        assert_eq!(migrate_run_on(args(&count_root), Arc::new(Handle(counting.clone()))), 0);
        let writes = counting.calls();
        let before = tree(&source);
        for fail_at in (1..=writes).step_by((writes as usize / 10).max(1)) {
            let root = dir.path().join(format!("{scheme}-{fail_at}"));
            let code = migrate_run_on(args(&root), Arc::new(Handle(FailNth::new(fail_at, true))));
            if code == 0 {
                assert_eq!(holds(&args(&root).to), state(), "{scheme} write {fail_at}");
                continue;
            }
            assert_eq!(code, 2, "{scheme} write {fail_at}");
            assert!(!root.exists(), "{scheme} write {fail_at}: {} was left", root.display());
        }
        assert_eq!(tree(&source), before, "the source is only read");
    }
}

#[test]
fn refused_destinations_are_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = image_file(dir.path());
    // Not empty: refused, and not a byte changes.
    let full = dir.path().join("full");
    let to = format!("local://{}", full.display());
    assert_eq!(qk_import(os(), &to, &input).0, 0);
    let before = tree(dir.path());
    let (code, stderr) = qk_import(os(), &to, &input);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(tree(dir.path()), before);
    // Not an image: refused before the destination is opened (nothing is created).
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"this is not an image at all").expect("write");
    let fresh = dir.path().join("fresh/inst");
    let (code, stderr) = qk_import(os(), &format!("local://{}", fresh.display()), &junk);
    assert_eq!(code, 1, "{stderr}");
    assert!(!dir.path().join("fresh").exists());
    // A bad image found late (a flipped byte deep inside): nothing is left either.
    let mut bad = image();
    let at = bad.len() / 2;
    bad[at] ^= 1;
    let bad_path = dir.path().join("bad.qkimg");
    std::fs::write(&bad_path, bad).expect("write");
    for scheme in ["local", "redb"] {
        let root = dir.path().join(format!("late-{scheme}"));
        let to = format!("{scheme}://{}", root.join("inst").display());
        let (code, stderr) = qk_import(os(), &to, &bad_path);
        assert_eq!(code, 1, "{scheme}: {stderr}");
        assert!(!root.exists(), "{scheme}: {stderr}");
    }
}

#[test]
fn an_import_into_a_triple_of_uris_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = |name: &str| format!("local://{}", dir.path().join(name).display());
    let mut triple =
        LocalStorage::open_uris(os(), &uri("l"), &uri("m"), &uri("s"), Default::default())
            .expect("open the triple");
    let e = import(image().as_slice(), &mut triple).expect_err("refused");
    assert!(e.to_string().contains("no common instance root"), "{e}");
    assert_eq!(RaftState::capture(&triple).expect("capture"), RaftState::new());
}

#[test]
fn sigint_during_qk_image_import_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inst = dir.path().join("dest/inst");
    let image = image();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qk"))
        .args(["image", "import", "--to", &format!("local://{}", inst.display()), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qk runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let half = image.len() / 2;
    stdin.write_all(&image[..half]).expect("first half");
    stdin.flush().expect("flush");
    // Wait until the import is under way (its staged root exists), then interrupt it.
    let staged = siblings_of(&inst)[0].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !staged.exists() {
        assert!(Instant::now() < deadline, "the import never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    assert!(killed.expect("kill runs").success());
    // The child notices at a read after its signal thread has run: trickle the rest, but
    // never the last byte, so that a slow signal thread cannot let the import complete (the
    // end of input would fail it with another status instead).
    for chunk in image[half..image.len() - 1].chunks(64) {
        if child.try_wait().expect("try_wait").is_some() || stdin.write_all(chunk).is_err() {
            break;
        }
        let _ = stdin.flush();
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(stdin);
    let out = child.wait_with_output().expect("qk ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(!dir.path().join("dest").exists(), "{stderr}");
}
