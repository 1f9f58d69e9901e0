//! `OverlayVfs`: a copy-on-write file system in memory over a base that is only read.
//!
//! This is how a read-only open shows the state a read-write open *would* recover without
//! applying it: the family's ordinary open runs on the overlay unchanged, its repairs (a torn
//! tail cut, leftovers removed, an interrupted operation completed) land in memory, and the
//! base is never asked to change (put a [`ReadOnlyVfs`](super::ReadOnlyVfs) under it to make
//! sure). Nothing here is durable: `sync` and `sync_dir` succeed and do nothing.
//!
//! **Memory** grows with what the open changes, not with what it reads. A directory's
//! entries are looked up in the base one name at a time and listed from it only when the
//! directory is listed or must be proven empty; a file's bytes stay in the base, and the
//! overlay keeps only the extents written to it and its length (a truncation is a number, not
//! a copy). A base file is opened (read-only) the first time its bytes are read.
//!
//! **Semantics** follow the `Vfs` contract and Linux for everything a family relies on:
//! `NotFound`, `AlreadyExists`, `IsADirectory`, `NotADirectory`, `DirectoryNotEmpty`; a
//! rename replaces a file, or an empty directory with a directory, and moves a directory
//! with everything under it; an open handle follows its file through renames and unlinks;
//! `read_dir` is sorted by name. Absolute and relative paths are two separate trees (rooted at
//! the base's `/` and at its `.`); a family uses one or the other.
//!
//! **File ids** (`Metadata::id`) of what the base holds are the base's own, and follow a file
//! or directory through renames here; what the overlay creates gets a synthetic id, stable
//! for the overlay's life, never given twice and distinct from any base id (its top bit set in
//! both fields; `birth` grows with creation order).
//!
//! **Locks** on a file the base holds go to the base (a `ReadOnlyVfs` base takes them
//! shared); a file the overlay created is private to this overlay, so its lock always
//! succeeds and holds nothing.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    DirEntry, FileId, FileKind, LockMode, Metadata, OpenOptions, Vfs, VfsError, VfsErrorKind,
    VfsFile, VfsHandle, VfsLock, VfsResult, WriteAtomicity,
};

type Kind = VfsErrorKind;
type NodeId = usize;

/// The root of relative paths (the base's `.`).
const RELATIVE_ROOT: NodeId = 0;
/// The root of absolute paths (the base's `/`).
const ABSOLUTE_ROOT: NodeId = 1;
/// Set in both fields of a synthetic [`FileId`] (no base inode number or birth stamp has it).
const SYNTHETIC: u64 = 1 << 63;

/// A copy-on-write in-memory file system over `base` (see the module doc).
pub struct OverlayVfs {
    layer: Arc<Mutex<Layer>>,
}

struct Layer {
    base: VfsHandle,
    nodes: Vec<Node>,
}

struct Node {
    /// The directory holding it (a root holds itself).
    parent: NodeId,
    kind: NodeKind,
    /// Its file id: the base's (learnt on first use), or synthetic for a node created here.
    id: Option<FileId>,
}

enum NodeKind {
    Dir(DirNode),
    File(FileNode),
}

struct DirNode {
    /// The base directory whose entries show here until changed (`None`: created here).
    base: Option<PathBuf>,
    /// Entries known so far: `None` is a name known to be absent (removed here, or looked
    /// up in the base and not found).
    children: BTreeMap<String, Option<NodeId>>,
    /// Whether every base entry has been loaded into `children`.
    complete: bool,
}

struct FileNode {
    /// The base file whose bytes show here where nothing was written (`None`: created here).
    base: Option<PathBuf>,
    /// The base file, opened on first read.
    base_file: Option<Arc<dyn VfsFile>>,
    /// The base file's length, read on first use.
    base_len: Option<u64>,
    /// The shortest length the file was cut to: base bytes at or past it are gone.
    cut: Option<u64>,
    /// The visible length, once changed.
    len: Option<u64>,
    /// Bytes written here, by offset; extents never overlap.
    extents: BTreeMap<u64, Vec<u8>>,
}

/// Where a path leads.
enum Target<'p> {
    /// A directory named without a final name (`""`, `.`, `/`, `..`).
    Dir(NodeId),
    /// The last segment `name` in directory `parent`, present or not.
    Entry { parent: NodeId, name: &'p str, node: Option<NodeId> },
}

impl OverlayVfs {
    /// An empty overlay over `base`: it shows exactly what `base` shows until changed.
    pub fn new(base: VfsHandle) -> Self {
        let root = |base: &str| Node {
            parent: 0,
            id: None,
            kind: NodeKind::Dir(DirNode {
                base: Some(PathBuf::from(base)),
                children: BTreeMap::new(),
                complete: false,
            }),
        };
        let mut absolute = root("/");
        absolute.parent = ABSOLUTE_ROOT;
        let layer = Layer { base, nodes: vec![root("."), absolute] };
        OverlayVfs { layer: Arc::new(Mutex::new(layer)) }
    }

    fn layer(&self) -> MutexGuard<'_, Layer> {
        lock_layer(&self.layer)
    }
}

fn lock_layer(layer: &Mutex<Layer>) -> MutexGuard<'_, Layer> {
    layer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error(op: &'static str, path: &Path, kind: Kind) -> VfsError {
    VfsError::new(op, path, kind)
}

/// The base path of entry `name` in a directory mirroring `parent`.
fn child_path(parent: &Path, name: &str) -> PathBuf {
    if parent == Path::new(".") {
        PathBuf::from(name)
    } else {
        parent.join(name)
    }
}

impl Layer {
    fn dir(&self, id: NodeId) -> Result<&DirNode, Kind> {
        match &self.nodes[id].kind {
            NodeKind::Dir(dir) => Ok(dir),
            NodeKind::File(_) => Err(Kind::NotADirectory),
        }
    }

    fn dir_mut(&mut self, id: NodeId) -> Result<&mut DirNode, Kind> {
        match &mut self.nodes[id].kind {
            NodeKind::Dir(dir) => Ok(dir),
            NodeKind::File(_) => Err(Kind::NotADirectory),
        }
    }

    fn file_mut(&mut self, id: NodeId) -> Result<&mut FileNode, Kind> {
        match &mut self.nodes[id].kind {
            NodeKind::File(file) => Ok(file),
            NodeKind::Dir(_) => Err(Kind::IsADirectory),
        }
    }

    fn is_dir(&self, id: NodeId) -> bool {
        matches!(self.nodes[id].kind, NodeKind::Dir(_))
    }

    /// A node created here: it gets the next synthetic id.
    fn push(&mut self, parent: NodeId, kind: NodeKind) -> NodeId {
        let n = self.nodes.len() as u64;
        let id = FileId { ino: SYNTHETIC | n, birth: SYNTHETIC | n };
        self.nodes.push(Node { parent, kind, id: Some(id) });
        self.nodes.len() - 1
    }

    /// The file id of node `id`: the base's for a base node (asked once), else synthetic.
    fn file_id(&mut self, op: &'static str, id: NodeId) -> VfsResult<FileId> {
        if let Some(known) = self.nodes[id].id {
            return Ok(known);
        }
        let base = match &self.nodes[id].kind {
            NodeKind::Dir(dir) => dir.base.clone(),
            NodeKind::File(file) => file.base.clone(),
        };
        let base = base.ok_or_else(|| error(op, Path::new(""), Kind::NotFound))?;
        let found = self.base.metadata(&base)?.id;
        self.nodes[id].id = Some(found);
        Ok(found)
    }

    /// A node for the base entry at `path` of kind `kind` (and file id `id`, when known).
    fn base_node(
        &mut self,
        parent: NodeId,
        path: PathBuf,
        kind: FileKind,
        id: Option<FileId>,
    ) -> NodeId {
        let kind = match kind {
            FileKind::Dir => NodeKind::Dir(DirNode {
                base: Some(path),
                children: BTreeMap::new(),
                complete: false,
            }),
            FileKind::File => NodeKind::File(FileNode::from_base(path)),
        };
        self.nodes.push(Node { parent, kind, id });
        self.nodes.len() - 1
    }

    /// The entry `name` of directory `dir`, looked up in the base if not known yet.
    fn lookup(&mut self, dir: NodeId, name: &str) -> Result<Option<NodeId>, VfsError> {
        let node = self.dir(dir).map_err(|k| error("lookup", Path::new(name), k))?;
        if let Some(known) = node.children.get(name) {
            return Ok(*known);
        }
        let base = match (&node.base, node.complete) {
            (Some(base), false) => child_path(base, name),
            _ => return Ok(None),
        };
        let found = match self.base.metadata(&base) {
            Ok(meta) => Some(self.base_node(dir, base, meta.kind, Some(meta.id))),
            Err(e) if matches!(e.kind, Kind::NotFound | Kind::NotADirectory) => None,
            Err(e) => return Err(e),
        };
        self.dir_mut(dir).expect("checked above").children.insert(name.to_string(), found);
        Ok(found)
    }

    /// Loads every base entry of `dir`, then lists what the directory holds.
    fn list(&mut self, dir: NodeId) -> Result<Vec<(String, NodeId)>, VfsError> {
        let node = self.dir(dir).map_err(|k| error("read_dir", Path::new(""), k))?;
        if let (Some(base), false) = (node.base.clone(), node.complete) {
            let entries = self.base.read_dir(&base)?;
            for entry in entries {
                if self.dir(dir).expect("a directory").children.contains_key(&entry.name) {
                    continue;
                }
                let id = self.base_node(dir, child_path(&base, &entry.name), entry.kind, None);
                self.dir_mut(dir).expect("a directory").children.insert(entry.name, Some(id));
            }
            self.dir_mut(dir).expect("a directory").complete = true;
        }
        let node = self.dir(dir).expect("a directory");
        Ok(node.children.iter().filter_map(|(n, id)| id.map(|id| (n.clone(), id))).collect())
    }

    fn walk<'p>(&mut self, op: &'static str, path: &'p Path) -> Result<Target<'p>, VfsError> {
        let mut dir = RELATIVE_ROOT;
        let mut components = path.components().peekable();
        while let Some(component) = components.next() {
            let last = components.peek().is_none();
            match component {
                Component::Prefix(_) => return Err(error(op, path, Kind::InvalidInput)),
                Component::RootDir => dir = ABSOLUTE_ROOT,
                Component::CurDir => {}
                Component::ParentDir => dir = self.nodes[dir].parent,
                Component::Normal(os) => {
                    let name = os.to_str().ok_or_else(|| error(op, path, Kind::InvalidInput))?;
                    let node = self.lookup(dir, name).map_err(|mut e| {
                        e.op = op;
                        e
                    })?;
                    if last {
                        return Ok(Target::Entry { parent: dir, name, node });
                    }
                    match node {
                        None => return Err(error(op, path, Kind::NotFound)),
                        Some(id) if self.is_dir(id) => dir = id,
                        Some(_) => return Err(error(op, path, Kind::NotADirectory)),
                    }
                }
            }
        }
        Ok(Target::Dir(dir))
    }

    /// The node `path` names, which must exist.
    fn existing(&mut self, op: &'static str, path: &Path) -> Result<NodeId, VfsError> {
        match self.walk(op, path)? {
            Target::Dir(id) | Target::Entry { node: Some(id), .. } => Ok(id),
            Target::Entry { node: None, .. } => Err(error(op, path, Kind::NotFound)),
        }
    }

    fn set_entry(&mut self, dir: NodeId, name: &str, node: Option<NodeId>) {
        if let Ok(d) = self.dir_mut(dir) {
            d.children.insert(name.to_string(), node);
        }
        if let Some(id) = node {
            self.nodes[id].parent = dir;
        }
    }

    /// Whether `ancestor` is `node` or a directory above it.
    fn is_ancestor(&self, ancestor: NodeId, mut node: NodeId) -> bool {
        loop {
            if node == ancestor {
                return true;
            }
            let parent = self.nodes[node].parent;
            if parent == node {
                return false;
            }
            node = parent;
        }
    }

    fn file_len(&mut self, id: NodeId) -> VfsResult<u64> {
        let base = self.base.clone();
        let file = self.file_mut(id).map_err(|k| error("len", Path::new(""), k))?;
        file.len(&base)
    }
}

impl FileNode {
    fn new() -> Self {
        FileNode {
            base: None,
            base_file: None,
            base_len: Some(0),
            cut: None,
            len: Some(0),
            extents: BTreeMap::new(),
        }
    }

    fn from_base(path: PathBuf) -> Self {
        FileNode { base: Some(path), base_len: None, len: None, ..FileNode::new() }
    }

    fn base_file(&mut self, base: &VfsHandle) -> VfsResult<Option<Arc<dyn VfsFile>>> {
        if self.base_file.is_none() {
            if let Some(path) = &self.base {
                self.base_file = Some(Arc::from(base.open(path, OpenOptions::READ)?));
            }
        }
        Ok(self.base_file.clone())
    }

    /// The base file's length (0 for a file created here).
    fn base_len(&mut self, base: &VfsHandle) -> VfsResult<u64> {
        if let Some(len) = self.base_len {
            return Ok(len);
        }
        let len = match self.base_file(base)? {
            Some(file) => file.len()?,
            None => 0,
        };
        self.base_len = Some(len);
        Ok(len)
    }

    fn len(&mut self, base: &VfsHandle) -> VfsResult<u64> {
        match self.len {
            Some(len) => Ok(len),
            None => self.base_len(base),
        }
    }

    /// How many leading bytes still come from the base.
    fn base_visible(&mut self, base: &VfsHandle) -> VfsResult<u64> {
        let len = self.base_len(base)?;
        Ok(self.cut.map_or(len, |cut| cut.min(len)))
    }

    fn read(&mut self, base: &VfsHandle, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        let len = self.len(base)?;
        if offset >= len || buf.is_empty() {
            return Ok(0);
        }
        let n = (len - offset).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        buf.fill(0);
        let end = offset + n as u64;
        let from_base = self.base_visible(base)?.min(end);
        if from_base > offset {
            let file = self.base_file(base)?.expect("a file with base bytes has a base");
            let want = (from_base - offset) as usize;
            file.read_exact_at(&mut buf[..want], offset)?;
        }
        let starts: Vec<u64> = self.extents.range(..end).map(|(s, _)| *s).collect();
        for start in starts {
            let data = &self.extents[&start];
            let data_end = start + data.len() as u64;
            if data_end <= offset {
                continue;
            }
            let from = start.max(offset);
            let to = data_end.min(end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
        }
        Ok(n)
    }

    /// Removes the written bytes in `[from, to)`, keeping the parts of extents outside it.
    fn clear_extents(&mut self, from: u64, to: u64) {
        let overlapping: Vec<u64> = self
            .extents
            .range(..to)
            .filter(|(start, data)| *start + data.len() as u64 > from)
            .map(|(start, _)| *start)
            .collect();
        for start in overlapping {
            let data = self.extents.remove(&start).expect("listed above");
            let data_end = start + data.len() as u64;
            if start < from {
                self.extents.insert(start, data[..(from - start) as usize].to_vec());
            }
            if data_end > to {
                self.extents.insert(to, data[(to - start) as usize..].to_vec());
            }
        }
    }

    fn write(&mut self, base: &VfsHandle, data: &[u8], offset: u64) -> VfsResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| error("write_at", Path::new(""), Kind::InvalidInput))?;
        let len = self.len(base)?;
        self.clear_extents(offset, end);
        self.extents.insert(offset, data.to_vec());
        self.len = Some(len.max(end));
        Ok(())
    }

    fn set_len(&mut self, base: &VfsHandle, new_len: u64) -> VfsResult<()> {
        let len = self.len(base)?;
        if new_len < len {
            self.clear_extents(new_len, u64::MAX);
            self.cut = Some(self.cut.map_or(new_len, |cut| cut.min(new_len)));
        }
        self.len = Some(new_len);
        Ok(())
    }
}

impl Vfs for OverlayVfs {
    fn open(&self, path: &Path, options: OpenOptions) -> VfsResult<Box<dyn VfsFile>> {
        let mut layer = self.layer();
        let id = match layer.walk("open", path)? {
            Target::Dir(_) => {
                let kind =
                    if options.create_new { Kind::AlreadyExists } else { Kind::IsADirectory };
                return Err(error("open", path, kind));
            }
            Target::Entry { node: Some(id), .. } => {
                if options.create_new {
                    return Err(error("open", path, Kind::AlreadyExists));
                }
                if layer.is_dir(id) {
                    return Err(error("open", path, Kind::IsADirectory));
                }
                if options.truncate {
                    let base = layer.base.clone();
                    layer.file_mut(id).expect("a file").set_len(&base, 0)?;
                }
                id
            }
            Target::Entry { parent, name, node: None } => {
                if !(options.create || options.create_new) {
                    return Err(error("open", path, Kind::NotFound));
                }
                let id = layer.push(parent, NodeKind::File(FileNode::new()));
                layer.set_entry(parent, name, Some(id));
                id
            }
        };
        let writable = options.write || options.create || options.create_new || options.truncate;
        Ok(Box::new(OverlayFile {
            layer: Arc::clone(&self.layer),
            node: id,
            writable,
            path: path.to_path_buf(),
        }))
    }

    fn create_dir(&self, path: &Path) -> VfsResult<()> {
        let mut layer = self.layer();
        match layer.walk("create_dir", path)? {
            Target::Dir(_) | Target::Entry { node: Some(_), .. } => {
                Err(error("create_dir", path, Kind::AlreadyExists))
            }
            Target::Entry { parent, name, node: None } => {
                let dir = DirNode { base: None, children: BTreeMap::new(), complete: true };
                let id = layer.push(parent, NodeKind::Dir(dir));
                layer.set_entry(parent, name, Some(id));
                Ok(())
            }
        }
    }

    fn remove_file(&self, path: &Path) -> VfsResult<()> {
        let mut layer = self.layer();
        match layer.walk("remove_file", path)? {
            Target::Dir(_) => Err(error("remove_file", path, Kind::IsADirectory)),
            Target::Entry { node: None, .. } => Err(error("remove_file", path, Kind::NotFound)),
            Target::Entry { node: Some(id), .. } if layer.is_dir(id) => {
                Err(error("remove_file", path, Kind::IsADirectory))
            }
            Target::Entry { parent, name, node: Some(_) } => {
                layer.set_entry(parent, name, None);
                Ok(())
            }
        }
    }

    fn remove_dir(&self, path: &Path) -> VfsResult<()> {
        let mut layer = self.layer();
        match layer.walk("remove_dir", path)? {
            Target::Dir(_) => Err(error("remove_dir", path, Kind::InvalidInput)),
            Target::Entry { node: None, .. } => Err(error("remove_dir", path, Kind::NotFound)),
            Target::Entry { parent, name, node: Some(id) } => {
                if !layer.is_dir(id) {
                    return Err(error("remove_dir", path, Kind::NotADirectory));
                }
                if !layer.list(id)?.is_empty() {
                    return Err(error("remove_dir", path, Kind::DirectoryNotEmpty));
                }
                layer.set_entry(parent, name, None);
                Ok(())
            }
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> VfsResult<()> {
        let mut layer = self.layer();
        let (from_parent, from_name, from_id) = match layer.walk("rename", from)? {
            Target::Dir(_) => return Err(error("rename", from, Kind::Other)),
            Target::Entry { node: None, .. } => return Err(error("rename", from, Kind::NotFound)),
            Target::Entry { parent, name, node: Some(id) } => (parent, name.to_string(), id),
        };
        let (to_parent, to_name, to_id) = match layer.walk("rename", to)? {
            Target::Dir(_) => return Err(error("rename", from, Kind::Other)),
            Target::Entry { parent, name, node } => (parent, name.to_string(), node),
        };
        if layer.is_dir(from_id) && layer.is_ancestor(from_id, to_parent) {
            return Err(error("rename", from, Kind::InvalidInput));
        }
        if to_id == Some(from_id) {
            return Ok(());
        }
        if let Some(replaced) = to_id {
            match (layer.is_dir(from_id), layer.is_dir(replaced)) {
                (true, false) => return Err(error("rename", from, Kind::NotADirectory)),
                (false, true) => return Err(error("rename", from, Kind::IsADirectory)),
                (true, true) if !layer.list(replaced)?.is_empty() => {
                    return Err(error("rename", from, Kind::DirectoryNotEmpty))
                }
                _ => {}
            }
        }
        layer.set_entry(from_parent, &from_name, None);
        layer.set_entry(to_parent, &to_name, Some(from_id));
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> VfsResult<Vec<DirEntry>> {
        let mut layer = self.layer();
        let id = layer.existing("read_dir", path)?;
        if !layer.is_dir(id) {
            return Err(error("read_dir", path, Kind::NotADirectory));
        }
        let entries = layer.list(id).map_err(|mut e| {
            e.op = "read_dir";
            e
        })?;
        Ok(entries
            .into_iter()
            .map(|(name, child)| {
                let kind = if layer.is_dir(child) { FileKind::Dir } else { FileKind::File };
                DirEntry { name, kind }
            })
            .collect())
    }

    fn metadata(&self, path: &Path) -> VfsResult<Metadata> {
        let mut layer = self.layer();
        let node = layer.existing("metadata", path)?;
        let named = |mut e: VfsError| {
            e.op = "metadata";
            e.path = path.to_path_buf();
            e
        };
        let id = layer.file_id("metadata", node).map_err(named)?;
        if layer.is_dir(node) {
            return Ok(Metadata { kind: FileKind::Dir, len: 0, id });
        }
        let len = layer.file_len(node).map_err(|mut e| {
            e.op = "metadata";
            e
        })?;
        Ok(Metadata { kind: FileKind::File, len, id })
    }

    /// Nothing is durable in memory: succeeds once the path exists.
    fn sync_dir(&self, path: &Path) -> VfsResult<()> {
        self.layer().existing("sync_dir", path).map(|_| ())
    }

    /// Writes through the overlay stay in memory and never reach a disk that could tear them:
    /// nothing to declare.
    fn declare_write_atomicity(&self, _path: &Path, _atomicity: WriteAtomicity) -> VfsResult<()> {
        Ok(())
    }

    fn try_lock(&self, path: &Path, mode: LockMode) -> VfsResult<Box<dyn VfsLock>> {
        let mut layer = self.layer();
        let id = layer.existing("try_lock", path)?;
        let base_path = match &layer.nodes[id].kind {
            NodeKind::Dir(_) => return Err(error("try_lock", path, Kind::IsADirectory)),
            NodeKind::File(file) => file.base.clone(),
        };
        match base_path {
            Some(base_path) => {
                let base = layer.base.clone();
                drop(layer);
                base.try_lock(&base_path, mode)
            }
            None => Ok(Box::new(PrivateLock { path: path.to_path_buf(), mode })),
        }
    }
}

/// A lock on a file only the overlay has: nobody else can see the file, so nothing to hold.
struct PrivateLock {
    path: PathBuf,
    mode: LockMode,
}

impl VfsLock for PrivateLock {
    fn path(&self) -> &Path {
        &self.path
    }

    fn mode(&self) -> LockMode {
        self.mode
    }
}

/// An open file of an [`OverlayVfs`]: follows its node through renames and unlinks.
struct OverlayFile {
    layer: Arc<Mutex<Layer>>,
    node: NodeId,
    writable: bool,
    path: PathBuf,
}

impl OverlayFile {
    fn with<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut FileNode, &VfsHandle) -> VfsResult<T>,
    ) -> VfsResult<T> {
        let mut layer = lock_layer(&self.layer);
        let base = layer.base.clone();
        let file = layer.file_mut(self.node).map_err(|k| error(op, &self.path, k))?;
        f(file, &base)
    }

    fn check_writable(&self, op: &'static str) -> VfsResult<()> {
        if self.writable {
            Ok(())
        } else {
            Err(error(op, &self.path, Kind::PermissionDenied))
        }
    }
}

impl VfsFile for OverlayFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        self.with("read_at", |file, base| file.read(base, buf, offset))
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> VfsResult<()> {
        self.check_writable("write_at")?;
        self.with("write_at", |file, base| file.write(base, buf, offset))
    }

    fn len(&self) -> VfsResult<u64> {
        self.with("len", |file, base| file.len(base))
    }

    fn set_len(&self, len: u64) -> VfsResult<()> {
        self.check_writable("set_len")?;
        self.with("set_len", |file, base| file.set_len(base, len))
    }

    /// Nothing is durable in memory.
    fn sync(&self) -> VfsResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{ReadOnlyVfs, SimDisk, SimDiskOptions};

    fn base() -> Arc<SimDisk> {
        let disk = SimDisk::new(SimDiskOptions::default());
        disk.create_dir(Path::new("d")).unwrap();
        let f = disk.open(Path::new("d/f"), OpenOptions::CREATE).unwrap();
        f.write_at(&[7u8; 10_000], 0).unwrap();
        disk
    }

    #[test]
    fn writes_and_cuts_stay_in_memory() {
        let disk = base();
        let listing = disk.listing(crate::vfs::Image::Visible);
        let before = disk.mutating_op_count();
        let overlay = OverlayVfs::new(Arc::new(ReadOnlyVfs::new(disk.clone())));
        let f = overlay.open(Path::new("d/f"), OpenOptions::WRITE).unwrap();
        f.set_len(100).unwrap();
        f.write_at(b"xy", 200).unwrap();
        assert_eq!(f.len().unwrap(), 202);
        let all = f.read_all().unwrap();
        assert_eq!(&all[..100], &[7u8; 100][..]);
        assert!(all[100..200].iter().all(|b| *b == 0), "cut bytes read as zeros");
        assert_eq!(&all[200..], b"xy");
        overlay.rename(Path::new("d"), Path::new("e")).unwrap();
        assert_eq!(f.read_all().unwrap(), all, "the handle follows the rename");
        assert!(!overlay.exists(Path::new("d")).unwrap());
        assert_eq!(overlay.metadata(Path::new("e/f")).unwrap().len, 202);
        overlay.remove_file(Path::new("e/f")).unwrap();
        overlay.remove_dir(Path::new("e")).unwrap();
        assert_eq!(overlay.read_dir(Path::new("")).unwrap(), Vec::<DirEntry>::new());
        assert_eq!(disk.mutating_op_count(), before, "the base was never asked to change");
        assert_eq!(disk.listing(crate::vfs::Image::Visible), listing);
    }
}
