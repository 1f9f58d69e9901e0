//! Differential test: random operation sequences on `OsVfs` (in a temporary directory) and
//! on `SimDisk` (no faults, no crash) give the same visible results: return values, error
//! kinds, file contents and directory listings. This is what keeps the simulation faithful
//! to the real file system for everything a process can see.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use quorumkit_storage::vfs::{
    DirEntry, FileKind, OpenOptions, OsVfs, SimDisk, SimDiskOptions, Vfs, VfsErrorKind, VfsFile,
};

/// Paths drawn from a small set so operations collide: nested names, and names under what
/// may be a file (`a/x`) to reach `NotADirectory`.
const PATHS: [&str; 10] = ["a", "b", "d", "d/a", "d/b", "d/e", "d/e/a", "a/x", "e", "d/e/f"];
const OPEN_OPTIONS: [OpenOptions; 5] = [
    OpenOptions::READ,
    OpenOptions::WRITE,
    OpenOptions::CREATE,
    OpenOptions::CREATE_NEW,
    OpenOptions::CREATE_TRUNCATE,
];
const SLOTS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Open { path: usize, options: usize, slot: usize },
    Close { slot: usize },
    Write { slot: usize, offset: u64, len: usize, byte: u8 },
    Read { slot: usize, offset: u64, len: usize },
    SetLen { slot: usize, len: u64 },
    Len { slot: usize },
    Sync { slot: usize },
    CreateDir { path: usize },
    RemoveFile { path: usize },
    RemoveDir { path: usize },
    Rename { from: usize, to: usize },
    ReadDir { path: usize },
    Metadata { path: usize },
    SyncDir { path: usize },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let path = 0..PATHS.len();
    let slot = 0..SLOTS;
    prop_oneof![
        4 => (path.clone(), 0..OPEN_OPTIONS.len(), slot.clone())
            .prop_map(|(path, options, slot)| Op::Open { path, options, slot }),
        1 => slot.clone().prop_map(|slot| Op::Close { slot }),
        4 => (slot.clone(), 0..9000u64, 0..2500usize, any::<u8>())
            .prop_map(|(slot, offset, len, byte)| Op::Write { slot, offset, len, byte }),
        2 => (slot.clone(), 0..9000u64, 0..3000usize)
            .prop_map(|(slot, offset, len)| Op::Read { slot, offset, len }),
        1 => (slot.clone(), 0..9000u64).prop_map(|(slot, len)| Op::SetLen { slot, len }),
        1 => slot.clone().prop_map(|slot| Op::Len { slot }),
        1 => slot.prop_map(|slot| Op::Sync { slot }),
        2 => path.clone().prop_map(|path| Op::CreateDir { path }),
        1 => path.clone().prop_map(|path| Op::RemoveFile { path }),
        1 => path.clone().prop_map(|path| Op::RemoveDir { path }),
        2 => (path.clone(), path.clone()).prop_map(|(from, to)| Op::Rename { from, to }),
        1 => path.clone().prop_map(|path| Op::ReadDir { path }),
        1 => path.clone().prop_map(|path| Op::Metadata { path }),
        1 => path.prop_map(|path| Op::SyncDir { path }),
    ]
}

/// What a call returned, comparable across the two file systems.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Unit,
    Len(u64),
    Bytes(Vec<u8>),
    Entries(Vec<DirEntry>),
    Meta(FileKind, u64),
    Skipped,
}

type Slot = Option<(Box<dyn VfsFile>, Box<dyn VfsFile>)>;

struct Pair {
    root: PathBuf,
    os: OsVfs,
    sim: std::sync::Arc<SimDisk>,
    slots: Vec<Slot>,
}

impl Pair {
    fn os_path(&self, idx: usize) -> PathBuf {
        self.root.join(PATHS[idx])
    }

    fn sim_path(idx: usize) -> &'static Path {
        Path::new(PATHS[idx])
    }

    /// Runs `op` on both and returns both outcomes.
    fn apply(&mut self, op: &Op) -> (Result<Outcome, VfsErrorKind>, Result<Outcome, VfsErrorKind>) {
        fn unit<T>(
            r: Result<T, quorumkit_storage::vfs::VfsError>,
        ) -> Result<Outcome, VfsErrorKind> {
            r.map(|_| Outcome::Unit).map_err(|e| e.kind)
        }
        let both = |f: &dyn Fn(&dyn Vfs, PathBuf) -> Result<Outcome, VfsErrorKind>,
                    os_path: PathBuf,
                    sim_path: &Path| {
            (f(&self.os, os_path), f(&*self.sim, sim_path.to_path_buf()))
        };
        match op {
            Op::Open { path, options, slot } => {
                let options = OPEN_OPTIONS[*options];
                let os = self.os.open(&self.os_path(*path), options);
                let sim = self.sim.open(Pair::sim_path(*path), options);
                let kind = |r: &Result<Box<dyn VfsFile>, quorumkit_storage::vfs::VfsError>| {
                    r.as_ref().map(|_| Outcome::Unit).map_err(|e| e.kind)
                };
                let outcome = (kind(&os), kind(&sim));
                if let (Ok(os), Ok(sim)) = (os, sim) {
                    self.slots[*slot] = Some((os, sim));
                }
                outcome
            }
            Op::Close { slot } => {
                self.slots[*slot] = None;
                (Ok(Outcome::Unit), Ok(Outcome::Unit))
            }
            Op::Write { slot, offset, len, byte } => {
                self.on_slot(*slot, |f| unit(f.write_at(&vec![*byte; *len], *offset)))
            }
            Op::Read { slot, offset, len } => self.on_slot(*slot, |f| {
                let mut buf = vec![0u8; *len];
                f.read_at(&mut buf, *offset)
                    .map(|n| Outcome::Bytes(buf[..n].to_vec()))
                    .map_err(|e| e.kind)
            }),
            Op::SetLen { slot, len } => self.on_slot(*slot, |f| unit(f.set_len(*len))),
            Op::Len { slot } => {
                self.on_slot(*slot, |f| f.len().map(Outcome::Len).map_err(|e| e.kind))
            }
            Op::Sync { slot } => self.on_slot(*slot, |f| unit(f.sync())),
            Op::CreateDir { path } => {
                both(&|v, p| unit(v.create_dir(&p)), self.os_path(*path), Pair::sim_path(*path))
            }
            Op::RemoveFile { path } => {
                both(&|v, p| unit(v.remove_file(&p)), self.os_path(*path), Pair::sim_path(*path))
            }
            Op::RemoveDir { path } => {
                both(&|v, p| unit(v.remove_dir(&p)), self.os_path(*path), Pair::sim_path(*path))
            }
            Op::Rename { from, to } => (
                unit(self.os.rename(&self.os_path(*from), &self.os_path(*to))),
                unit(self.sim.rename(Pair::sim_path(*from), Pair::sim_path(*to))),
            ),
            Op::ReadDir { path } => both(
                &|v, p| v.read_dir(&p).map(Outcome::Entries).map_err(|e| e.kind),
                self.os_path(*path),
                Pair::sim_path(*path),
            ),
            Op::Metadata { path } => both(
                &|v, p| v.metadata(&p).map(|m| Outcome::Meta(m.kind, m.len)).map_err(|e| e.kind),
                self.os_path(*path),
                Pair::sim_path(*path),
            ),
            Op::SyncDir { path } => {
                both(&|v, p| unit(v.sync_dir(&p)), self.os_path(*path), Pair::sim_path(*path))
            }
        }
    }

    fn on_slot(
        &self,
        slot: usize,
        f: impl Fn(&dyn VfsFile) -> Result<Outcome, VfsErrorKind>,
    ) -> (Result<Outcome, VfsErrorKind>, Result<Outcome, VfsErrorKind>) {
        match &self.slots[slot] {
            Some((os, sim)) => (f(&**os), f(&**sim)),
            None => (Ok(Outcome::Skipped), Ok(Outcome::Skipped)),
        }
    }
}

/// The whole tree under `root`: every path with its kind and (for files) contents.
fn tree(vfs: &dyn Vfs, root: &Path) -> Vec<(String, FileKind, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in vfs.read_dir(&dir).expect("read_dir") {
            let name = format!("{prefix}{}", entry.name);
            let path = dir.join(&entry.name);
            match entry.kind {
                FileKind::Dir => {
                    out.push((name.clone(), FileKind::Dir, Vec::new()));
                    stack.push((path, format!("{name}/")));
                }
                FileKind::File => {
                    let data =
                        vfs.open(&path, OpenOptions::READ).expect("open").read_all().expect("read");
                    out.push((name, FileKind::File, data));
                }
            }
        }
    }
    out.sort();
    out
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let temp = tempfile::tempdir().expect("tempdir");
    let mut pair = Pair {
        root: temp.path().to_path_buf(),
        os: OsVfs::new(),
        sim: SimDisk::new(SimDiskOptions { sector_size: 512, ..SimDiskOptions::default() }),
        slots: (0..SLOTS).map(|_| None).collect(),
    };
    for (step, op) in ops.iter().enumerate() {
        let (os, sim) = pair.apply(op);
        prop_assert_eq!(&os, &sim, "step {}: {:?}", step, op);
    }
    let os_tree = tree(&pair.os, temp.path());
    let sim_tree = tree(&*pair.sim, Path::new(""));
    prop_assert_eq!(os_tree, sim_tree);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn simdisk_matches_the_os_file_system(ops in proptest::collection::vec(op_strategy(), 1..80)) {
        run(&ops)?;
    }
}

/// Hand-picked edge cases the random search may take long to hit.
#[test]
fn simdisk_matches_the_os_on_rename_edge_cases() {
    let p = |s: &str| PATHS.iter().position(|x| *x == s).unwrap();
    let ops = vec![
        Op::CreateDir { path: p("d") },
        Op::CreateDir { path: p("d/e") },
        Op::Rename { from: p("d"), to: p("d/e/a") }, // into itself: EINVAL
        Op::Rename { from: p("d/e"), to: p("d") },   // onto its ancestor: ENOTEMPTY
        Op::Rename { from: p("d"), to: p("d") },     // onto itself: Ok
        Op::Open { path: p("a"), options: 2, slot: 0 },
        Op::Write { slot: 0, offset: 10, len: 5, byte: 1 },
        Op::Rename { from: p("a"), to: p("d") }, // file onto dir: EISDIR
        Op::Rename { from: p("d"), to: p("a") }, // dir onto file: ENOTDIR
        Op::CreateDir { path: p("e") },
        Op::Rename { from: p("e"), to: p("d") }, // onto a non-empty dir: ENOTEMPTY
        Op::Rename { from: p("d/e"), to: p("e") }, // dir onto an empty dir: Ok
        Op::Rename { from: p("b"), to: p("a/x") }, // under a file: ENOTDIR
        Op::Open { path: p("b"), options: 2, slot: 1 },
        Op::Rename { from: p("b"), to: p("a") }, // file over a file: replaces it
        Op::Read { slot: 0, offset: 0, len: 100 }, // the replaced file is still open
        Op::Write { slot: 0, offset: 0, len: 3, byte: 9 },
        Op::Open { path: p("a"), options: 4, slot: 2 },
        Op::Read { slot: 1, offset: 0, len: 10 },
        Op::RemoveFile { path: p("a") },
        Op::Write { slot: 1, offset: 3, len: 2, byte: 7 },
        Op::Read { slot: 1, offset: 0, len: 10 },
        Op::Open { path: p("d"), options: 0, slot: 2 }, // a directory: EISDIR
        Op::Open { path: p("d"), options: 3, slot: 2 }, // create_new on a dir: EEXIST
        Op::RemoveDir { path: p("b") },
        Op::RemoveFile { path: p("d") },
        Op::SyncDir { path: p("e") },
        Op::Open { path: p("b"), options: 0, slot: 0 },
        Op::Write { slot: 0, offset: 0, len: 1, byte: 1 }, // read-only handle
        Op::SetLen { slot: 0, len: 0 },
    ];
    run(&ops).unwrap();
}
