//! Build script: hands the git commit the crate is built from to `qk --version` as
//! `QK_GIT_COMMIT` (`git rev-parse --short HEAD`), or `unknown` when git or the repository
//! is missing (a tarball, a copy of the tree, cargo-mutants' scratch directory). It never
//! fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Only the crate's own repository counts, not one it happens to be unpacked inside.
    let own = git(&dir, &["rev-parse", "--show-toplevel"]).is_some_and(|top| same(&top, &dir));
    let commit = own.then(|| git(&dir, &["rev-parse", "--short", "HEAD"])).flatten();
    println!("cargo:rustc-env=QK_GIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    if !own {
        return;
    }
    // Rebuild when HEAD moves: the worktree's own HEAD (a linked worktree has its own), the
    // branch it names (in the common directory), and packed-refs, each only if it exists (a
    // path that does not exist would make cargo rerun this script on every build).
    let Some(git_dir) = git(&dir, &["rev-parse", "--absolute-git-dir"]) else { return };
    let git_dir = PathBuf::from(git_dir);
    let head = git_dir.join("HEAD");
    watch(&head);
    let common = git(&dir, &["rev-parse", "--git-common-dir"])
        .map(|c| if Path::new(&c).is_absolute() { PathBuf::from(c) } else { dir.join(c) })
        .unwrap_or_else(|| git_dir.clone());
    if let Ok(text) = std::fs::read_to_string(&head) {
        if let Some(branch) = text.trim().strip_prefix("ref: ") {
            // A branch only in packed-refs gets a loose file at its next commit: then watch
            // the directory that file will appear in.
            let loose = common.join(branch);
            match (loose.exists(), loose.parent()) {
                (false, Some(parent)) => watch(parent),
                _ => watch(&loose),
            }
        }
    }
    watch(&common.join("packed-refs"));
}

/// Git's trimmed stdout for `args` run in `dir`, if git ran and succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Whether `a` and `b` name the same directory.
fn same(a: &str, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
