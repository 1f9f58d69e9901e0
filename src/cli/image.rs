//! `qk image`: export, import, verify, inspect and diff canonical bootstrap images.
//!
//! Exit codes: 0 ok (and, for `diff`, no difference); 1 a difference, or an image that
//! failed verification (bad magic, checksum, structure, ...); 2 bad usage or unreadable
//! input (a file that cannot be opened, a URI no family accepts, a destination that is not
//! empty, a storage failure); 130 an import stopped by SIGINT or SIGTERM (after cleaning
//! up). `-` stands for standard input or output.
//!
//! An import that fails, is refused or is interrupted leaves nothing of the image in the
//! destination, and removes what it created there (a destination directory or database
//! file that did not exist before, see [`cleanup`]); a file without the image magic is
//! refused before the destination is even opened.
//!
//! Files are read and written through the `Vfs` seam ([`OsVfs`]); an exported file is
//! written under a temporary name, synced, and renamed into place, so a failed export never
//! leaves a partial image under the requested name.
//!
//! `export --from` opens the instance read-only (`Family::open_read_only`: nothing on it
//! changes; the image holds the state a read-write open would recover), under a shared lock
//! that a writer holding the instance refuses. `import --to` checks read-only that the
//! destination is empty (so a refused destination is untouched), then opens it read-write,
//! holding its exclusive lock, and says what that open repaired.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cleanup::{self, CreatedPaths, Interruptible, EXIT_INTERRUPTED};
use super::target::{self, Access, Target};
use crate::contract::StorageError;
use crate::families::memory::non_empty_reason;
use crate::families::Registry;
use crate::image::format::MAGIC;
use crate::image::{self, ImageError, ImageSummary};
use crate::vfs::{OpenOptions, OsVfs, VfsError, VfsFile, VfsHandle};

/// The `qk image` subcommands.
#[derive(clap::Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum ImageCommand {
    /// Export an instance's state (at a pinned cut) as an image.
    Export {
        /// The instance's URI (`memory://NAME`, `local://DIR`, ...).
        #[arg(long)]
        from: String,
        /// The image file to write, or `-` for standard output.
        #[arg(short = 'o', long)]
        output: String,
        /// What opening a `local://` instance does with what it finds.
        #[command(flatten)]
        recovery: super::RecoveryFlag,
    },
    /// Import an image into an empty instance (validated before anything becomes visible).
    Import {
        /// The destination instance's URI; it must be empty.
        #[arg(long)]
        to: String,
        /// The image file, or `-` for standard input.
        input: String,
        /// What opening a `local://` instance does with what it finds.
        #[command(flatten)]
        recovery: super::RecoveryFlag,
    },
    /// Verify an image: structure, every record's CRC-32C, the SHA-256, nothing after it.
    Verify {
        /// The image file, or `-`.
        file: String,
    },
    /// Show what an image holds.
    Inspect {
        /// The image file, or `-`.
        file: String,
        /// Print JSON (a stable shape) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the first difference between the states two images hold.
    Diff {
        /// The first image file, or `-`.
        a: String,
        /// The second image file, or `-`.
        b: String,
    },
}

/// Runs a `qk image` subcommand on the process's standard streams; returns the exit code.
pub fn run(cmd: ImageCommand) -> u8 {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(cmd, &mut stdin.lock(), &mut stdout.lock(), &mut stderr.lock())
}

/// Runs a `qk image` subcommand on the given streams; returns the exit code.
pub fn run_with(
    cmd: ImageCommand,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    run_on(cmd, Arc::new(OsVfs::new()), stdin, stdout, stderr)
}

/// [`run_with`] on a given file system, for instances and image files alike (tests inject
/// faults, or count mutating calls, through a wrapper of [`OsVfs`]).
pub fn run_on(
    cmd: ImageCommand,
    vfs: VfsHandle,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let result = match cmd {
        ImageCommand::Export { from, output, recovery } => {
            export(&vfs, &recovery.registry(), &from, &output, stdout, stderr)
        }
        ImageCommand::Import { to, input, recovery } => {
            import(&vfs, &recovery.registry(), &to, &input, stdin, stdout, stderr)
        }
        ImageCommand::Verify { file } => verify(&vfs, &file, stdin, stdout),
        ImageCommand::Inspect { file, json } => inspect(&vfs, &file, json, stdin, stdout),
        ImageCommand::Diff { a, b } => diff(&vfs, &a, &b, stdin, stdout),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(stderr, "qk image: {}", failure.message);
            failure.code
        }
    }
}

/// A failed command: its exit code and message.
struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { code: 2, message: message.into() }
}

fn image_failure(context: &str, e: &ImageError) -> Failure {
    let code = if e.is_bad_image() { 1 } else { 2 };
    Failure { code, message: format!("{context}: {e}") }
}

fn open_input<'a>(
    vfs: &VfsHandle,
    name: &str,
    stdin: &'a mut dyn Read,
) -> Result<Box<dyn Read + 'a>, Failure> {
    if name == "-" {
        return Ok(Box::new(stdin));
    }
    let file = vfs
        .open(Path::new(name), OpenOptions::READ)
        .map_err(|e| usage(format!("cannot read {name}: {e}")))?;
    Ok(Box::new(VfsReader { file, offset: 0 }))
}

fn print_summary(out: &mut dyn Write, verb: &str, s: &ImageSummary) -> Result<(), Failure> {
    writeln!(
        out,
        "{verb}: format {}.{}, source {} (family format {}), log [{}, {}] ({} entries), \
         snapshot: {}, {} bytes, sha256 {}",
        s.format_major,
        s.format_minor,
        s.source_family,
        s.source_family_version,
        s.first,
        s.last,
        s.n_entries,
        if s.has_snapshot {
            format!("{} files, {} bytes", s.n_snapshot_files, s.snapshot_bytes)
        } else {
            "none".to_string()
        },
        s.image_len,
        s.sha256
    )
    .map_err(|e| usage(format!("cannot write output: {e}")))
}

fn export(
    vfs: &VfsHandle,
    registry: &Registry,
    from: &str,
    output: &str,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, Failure> {
    let opened = target::resolve(registry, from, Access::Read, vfs, stderr)
        .and_then(|t| t.open_read_only(vfs))
        .map_err(|e| usage(format!("cannot open {e}")))?;
    let (family, version) = (opened.family, opened.format_version);
    // A read-only view never changes, so it is its own pinned cut.
    let cut = opened.view;
    let note = (!opened.repairs.is_empty()).then(|| {
        format!(
            "{from} was only read; the image holds the state a read-write open recovers, \
             which would first repair:\n{}",
            target::repair_lines(&opened.repairs)
        )
    });
    if output == "-" {
        image::export(cut.as_ref(), family, version, &mut *stdout)
            .map_err(|e| image_failure("export failed", &e))?;
        // No summary: the image itself went to standard output.
        if let Some(note) = note {
            let _ = write!(stderr, "{note}");
        }
        return Ok(0);
    }
    let target = PathBuf::from(output);
    let partial = partial_name(&target);
    let file = vfs
        .open(&partial, OpenOptions::CREATE_TRUNCATE)
        .map_err(|e| usage(format!("cannot create {}: {e}", partial.display())))?;
    let mut writer = VfsWriter { file, offset: 0 };
    let result = image::export(cut.as_ref(), family, version, &mut writer)
        .map_err(|e| image_failure("export failed", &e))
        .and_then(|summary| {
            publish(vfs, writer.file.as_ref(), &partial, &target)
                .map_err(|e| usage(format!("cannot write {output}: {e}")))?;
            Ok(summary)
        });
    match result {
        Ok(summary) => {
            print_summary(stdout, &format!("exported {from} to {output}"), &summary)?;
            if let Some(note) = note {
                write!(stdout, "{note}").map_err(|e| usage(format!("cannot write output: {e}")))?;
            }
            Ok(0)
        }
        Err(failure) => {
            let _ = vfs.remove_file(&partial);
            Err(failure)
        }
    }
}

fn partial_name(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    target.with_file_name(name)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes the finished image durable under its final name.
fn publish(
    vfs: &VfsHandle,
    file: &dyn VfsFile,
    partial: &Path,
    target: &Path,
) -> Result<(), VfsError> {
    file.sync()?;
    vfs.rename(partial, target)?;
    vfs.sync_dir(parent_dir(target))
}

fn import(
    vfs: &VfsHandle,
    registry: &Registry,
    to: &str,
    input: &str,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, Failure> {
    cleanup::install_interrupt_handler();
    let dest = target::resolve(registry, to, Access::Write, vfs, stderr)
        .map_err(|e| usage(format!("cannot open {e}")))?;
    let mut reader = open_input(vfs, input, stdin)?;
    // A file that is not an image at all is refused before the destination is opened, so
    // the destination is not touched (not even created).
    let mut magic = [0u8; MAGIC.len()];
    let n = read_up_to(&mut reader, &mut magic)
        .map_err(|e| usage(format!("cannot read {input}: {e}")))?;
    if magic[..n] != MAGIC[..n] || n < MAGIC.len() {
        return Err(Failure {
            code: 1,
            message: format!(
                "{input} is not a QuorumKit image (bad magic); {to} was left untouched"
            ),
        });
    }
    let reader = Interruptible::new(std::io::Cursor::new(magic).chain(reader));
    if dest.exists {
        // Refuse a non-empty destination before opening it for writing (which could repair it).
        let opened = dest.open_read_only(vfs).map_err(|e| usage(format!("cannot open {e}")))?;
        if let Some(what) = non_empty_reason(opened.view.as_ref())
            .map_err(|e| usage(format!("cannot read {to}: {e}")))?
        {
            return Err(usage(format!(
                "refusing to import into {to}: the destination is not empty ({what}); it was \
                 left untouched"
            )));
        }
    }
    let created = CreatedPaths::before_open(vfs, &dest.uri)
        .map_err(|e| usage(format!("cannot open {to}: {e}")))?;
    match import_holding_the_lock(&created.vfs(), &dest, to, reader, stdout) {
        Ok(summary) => {
            print_summary(stdout, &format!("imported {input} into {to}"), &summary)?;
            Ok(0)
        }
        // Another writer has the destination: nothing here is ours to remove.
        Err((failure, Owner::Other)) => Err(failure),
        Err((mut failure, Owner::Us)) => {
            let removed = created.remove();
            if cleanup::interrupted() {
                failure.code = EXIT_INTERRUPTED;
            }
            failure.message.push_str(&match removed.is_empty() {
                true => format!("; {to} holds nothing of the image"),
                false => format!(
                    "; removed what it had created ({})",
                    removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            });
            Err(failure)
        }
    }
}

/// Whose a failed import's destination is: ours to clean up, or another writer's (its lock
/// refused us, or it filled the destination after our read-only check), to leave alone.
enum Owner {
    Us,
    Other,
}

/// Opens `dest` read-write (taking its exclusive lock), says what the open repaired, checks
/// again under the lock that it is empty, and imports `reader` into it.
fn import_holding_the_lock(
    vfs: &VfsHandle,
    dest: &Target,
    to: &str,
    reader: impl Read,
    stdout: &mut dyn Write,
) -> Result<ImageSummary, (Failure, Owner)> {
    let ours = |failure: Failure| (failure, Owner::Us);
    let (storage, repairs) = dest.open_read_write(vfs).map_err(|e| {
        let owner = if matches!(e, StorageError::Locked { .. }) { Owner::Other } else { Owner::Us };
        (usage(format!("cannot open {}: {e}", dest.typed)), owner)
    })?;
    if dest.exists && !repairs.is_empty() {
        write!(stdout, "opening {to} repaired:\n{}", target::repair_lines(&repairs))
            .map_err(|e| ours(usage(format!("cannot write output: {e}"))))?;
    }
    // Again under the exclusive lock: another writer may have filled it since the check.
    if let Some(what) = non_empty_reason(storage.as_ref())
        .map_err(|e| ours(usage(format!("cannot read {to}: {e}"))))?
    {
        let message = format!(
            "refusing to import into {to}: the destination is not empty ({what}; another \
             writer filled it after it was checked); nothing was imported"
        );
        return Err((usage(message), Owner::Other));
    }
    let mut storage = Interruptible::new(storage);
    image::import(reader, &mut storage)
        .map_err(|e| ours(image_failure(&format!("import into {to} failed"), &e)))
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn verify(
    vfs: &VfsHandle,
    file: &str,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> Result<u8, Failure> {
    let reader = open_input(vfs, file, stdin)?;
    let summary = image::verify(reader).map_err(|e| image_failure(file, &e))?;
    print_summary(stdout, &format!("{file} is valid"), &summary)?;
    Ok(0)
}

fn inspect(
    vfs: &VfsHandle,
    file: &str,
    json: bool,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> Result<u8, Failure> {
    let reader = open_input(vfs, file, stdin)?;
    let inspected = image::inspect(reader).map_err(|e| image_failure(file, &e))?;
    let text = if json {
        let mut text = serde_json::to_string_pretty(&inspected)
            .map_err(|e| usage(format!("cannot render JSON: {e}")))?;
        text.push('\n');
        text
    } else {
        inspected.to_string()
    };
    stdout.write_all(text.as_bytes()).map_err(|e| usage(format!("cannot write output: {e}")))?;
    Ok(0)
}

fn diff(
    vfs: &VfsHandle,
    a: &str,
    b: &str,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> Result<u8, Failure> {
    if a == "-" && b == "-" {
        return Err(usage("diff: at most one of the two images can be standard input"));
    }
    let mut empty = std::io::empty();
    let (first_in, second_in): (&mut dyn Read, &mut dyn Read) =
        if a == "-" { (stdin, &mut empty) } else { (&mut empty, stdin) };
    let first = open_input(vfs, a, first_in)?;
    let second = open_input(vfs, b, second_in)?;
    match image::diff(first, second) {
        Ok(None) => {
            writeln!(stdout, "no difference").map_err(|e| usage(e.to_string()))?;
            Ok(0)
        }
        Ok(Some(difference)) => {
            writeln!(stdout, "{difference}").map_err(|e| usage(e.to_string()))?;
            Ok(1)
        }
        Err(e) => {
            let name = if e.side == image::Side::First { a } else { b };
            Err(image_failure(name, &e.error))
        }
    }
}

/// A `Vfs` file read front to back.
struct VfsReader {
    file: Box<dyn VfsFile>,
    offset: u64,
}

impl Read for VfsReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.offset).map_err(std::io::Error::other)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// A `Vfs` file written front to back.
struct VfsWriter {
    file: Box<dyn VfsFile>,
    offset: u64,
}

impl Write for VfsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_at(buf, self.offset).map_err(std::io::Error::other)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
