//! The text form of ops: what `Display` prints (in failure reports, shrunk histories and
//! `.ops` files) and what `FromStr` reads back. It is complete — every field is printed — so
//! `text.parse::<Op>()` of an op's `to_string()` gives the op back, for every op.
//!
//! One op per call, arguments separated by `, `:
//!
//! ```text
//! append(n=2, t3:data(len=40,seed=7), t3:noop)       entries: tTERM:noop | data(..) | config(..)
//! append(n=1, t4:config(peers=3,old=0))
//! truncate_prefix(advance=5)   truncate_suffix(drop=2)   reset(delta=-3)
//! save_meta(term=4, vote=2)    save_meta(term=5, vote=none)
//! snapshot(back=3, term=log, peers=3, old=0, files=[file("a/b", len=700, seed=9, meta=4)],
//!          publish)                                  (one line; at: back=N | ahead=N;
//!                                                     term=log takes the log's; abandon)
//! reopen()   crash()   crash_during_next(disk_ops=12)   export(spread=4)
//! ```
//!
//! A snapshot file's path is a JSON string (any path an op may request, escapes included);
//! `meta=none` is a file without metadata. Spaces around arguments are ignored. An `.ops` file
//! ([`parse_op_lines`]) holds one op per line; blank lines and lines starting with `#` are
//! skipped.

use std::fmt;
use std::str::FromStr;

use crate::contract::FileSource;
use crate::sim::engine::ops::{BodySpec, EntrySpec, FileSpec, MigrateStep, Op, SnapshotAt};

/// Why a line of text is not an op: the text and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an op: {text:?}: {reason}")]
pub struct OpParseError {
    /// The text that failed to parse.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for BodySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodySpec::NoOp => write!(f, "noop"),
            BodySpec::Data { len, seed } => write!(f, "data(len={len},seed={seed})"),
            BodySpec::Config { peers, old_peers } => {
                write!(f, "config(peers={peers},old={old_peers})")
            }
        }
    }
}

impl fmt::Display for FileSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = serde_json::to_string(&self.path).map_err(|_| fmt::Error)?;
        write!(f, "file({path}, len={}, seed={}, meta=", self.len, self.seed)?;
        match self.file_meta_len {
            Some(n) => write!(f, "{n}")?,
            None => write!(f, "none")?,
        }
        // Printed only when set, so histories without them keep their old text.
        if let Some(source) = self.source {
            write!(f, ", source={}", source.name())?;
        }
        if let Some(n) = self.checksum_len {
            write!(f, ", checksum={n}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Append { entries } => {
                write!(f, "append(n={}", entries.len())?;
                for e in entries {
                    write!(f, ", t{}:{}", e.term, e.body)?;
                }
                write!(f, ")")
            }
            Op::TruncatePrefix { advance } => write!(f, "truncate_prefix(advance={advance})"),
            Op::TruncateSuffix { drop } => write!(f, "truncate_suffix(drop={drop})"),
            Op::Reset { delta } => write!(f, "reset(delta={delta})"),
            Op::SaveMeta { term, vote } => match vote {
                Some(v) => write!(f, "save_meta(term={term}, vote={v})"),
                None => write!(f, "save_meta(term={term}, vote=none)"),
            },
            Op::Snapshot { at, term, peers, old_peers, files, publish } => {
                match at {
                    SnapshotAt::Back(n) => write!(f, "snapshot(back={n}, ")?,
                    SnapshotAt::Ahead(n) => write!(f, "snapshot(ahead={n}, ")?,
                }
                match term {
                    Some(t) => write!(f, "term={t}, ")?,
                    None => write!(f, "term=log, ")?,
                }
                write!(f, "peers={peers}, old={old_peers}, files=[")?;
                for (i, file) in files.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{file}")?;
                }
                write!(f, "], {})", if *publish { "publish" } else { "abandon" })
            }
            Op::Reopen => write!(f, "reopen()"),
            Op::Crash => write!(f, "crash()"),
            Op::CrashDuring { disk_ops } => write!(f, "crash_during_next(disk_ops={disk_ops})"),
            Op::Export { spread } => write!(f, "export(spread={spread})"),
            Op::Migrate { step } => write!(f, "{}()", step.op_name()),
        }
    }
}

impl FromStr for Op {
    type Err = OpParseError;

    /// Reads the text form `Display` prints (see the module doc).
    fn from_str(text: &str) -> Result<Op, OpParseError> {
        parse_op(text.trim()).map_err(|reason| OpParseError { text: text.to_string(), reason })
    }
}

/// The ops of an `.ops` text, one per line (blank lines and `#` comments skipped); an error
/// names the first bad line (1-based).
pub fn parse_op_lines(text: &str) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        ops.push(line.parse::<Op>().map_err(|e| format!("line {}: {e}", i + 1))?);
    }
    Ok(ops)
}

/// The `.ops` text of `ops`: one op per line, which [`parse_op_lines`] reads back.
pub fn format_op_lines(ops: &[Op]) -> String {
    ops.iter().map(|op| format!("{op}\n")).collect()
}

fn parse_op(text: &str) -> Result<Op, String> {
    let (name, args) = call(text)?;
    let args = split_top(args)?;
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{name} takes {n} argument(s), got {}", args.len()))
        }
    };
    Ok(match name {
        "append" => {
            let Some((first, rest)) = args.split_first() else {
                return Err("append needs n=".into());
            };
            let n: usize = number(value(first, "n")?)?;
            let entries = rest.iter().map(|e| entry(e)).collect::<Result<Vec<_>, _>>()?;
            if entries.len() != n {
                return Err(format!("append says n={n} but lists {} entries", entries.len()));
            }
            Op::Append { entries }
        }
        "truncate_prefix" => {
            want(1)?;
            Op::TruncatePrefix { advance: number(value(args[0], "advance")?)? }
        }
        "truncate_suffix" => {
            want(1)?;
            Op::TruncateSuffix { drop: number(value(args[0], "drop")?)? }
        }
        "reset" => {
            want(1)?;
            Op::Reset { delta: number(value(args[0], "delta")?)? }
        }
        "save_meta" => {
            want(2)?;
            let term = number(value(args[0], "term")?)?;
            let vote = optional(value(args[1], "vote")?, "none")?;
            Op::SaveMeta { term, vote }
        }
        "snapshot" => {
            want(6)?;
            let at = match args[0].split_once('=') {
                Some(("back", n)) => SnapshotAt::Back(number(n)?),
                Some(("ahead", n)) => SnapshotAt::Ahead(number(n)?),
                _ => return Err(format!("expected back=N or ahead=N, got {:?}", args[0])),
            };
            let term = optional(value(args[1], "term")?, "log")?;
            let peers = number(value(args[2], "peers")?)?;
            let old_peers = number(value(args[3], "old")?)?;
            let list = value(args[4], "files")?;
            let inner = list
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or_else(|| format!("expected files=[...], got {list:?}"))?;
            let files = split_top(inner)?.into_iter().map(file).collect::<Result<_, _>>()?;
            let publish = match args[5] {
                "publish" => true,
                "abandon" => false,
                other => return Err(format!("expected publish or abandon, got {other:?}")),
            };
            Op::Snapshot { at, term, peers, old_peers, files, publish }
        }
        "reopen" => {
            want(0)?;
            Op::Reopen
        }
        "crash" => {
            want(0)?;
            Op::Crash
        }
        "crash_during_next" => {
            want(1)?;
            Op::CrashDuring { disk_ops: number(value(args[0], "disk_ops")?)? }
        }
        "export" => {
            want(1)?;
            Op::Export { spread: number(value(args[0], "spread")?)? }
        }
        other => match MigrateStep::ALL.into_iter().find(|s| s.op_name() == other) {
            Some(step) => {
                want(0)?;
                Op::Migrate { step }
            }
            None => return Err(format!("unknown op {other:?}")),
        },
    })
}

/// One entry of an append: `tTERM:BODY`.
fn entry(text: &str) -> Result<EntrySpec, String> {
    let (term, body) = text
        .strip_prefix('t')
        .and_then(|t| t.split_once(':'))
        .ok_or_else(|| format!("expected tTERM:BODY, got {text:?}"))?;
    let body = match body.trim() {
        "noop" => BodySpec::NoOp,
        other => {
            let (name, args) = call(other)?;
            let args = split_top(args)?;
            match (name, args.as_slice()) {
                ("data", [len, seed]) => BodySpec::Data {
                    len: number(value(len, "len")?)?,
                    seed: number(value(seed, "seed")?)?,
                },
                ("config", [peers, old]) => BodySpec::Config {
                    peers: number(value(peers, "peers")?)?,
                    old_peers: number(value(old, "old")?)?,
                },
                _ => return Err(format!("expected noop, data(len,seed) or config, got {other:?}")),
            }
        }
    };
    Ok(EntrySpec { term: number(term)?, body })
}

/// One snapshot file: `file("PATH", len=L, seed=S, meta=M|none[, source=local|reference]
/// [, checksum=C])` (the last two only when set, in that order).
fn file(text: &str) -> Result<FileSpec, String> {
    let (name, args) = call(text)?;
    let args = split_top(args)?;
    let (path, len, seed, meta, mut rest) = match args.as_slice() {
        [path, len, seed, meta, rest @ ..] if rest.len() <= 2 => (path, len, seed, meta, rest),
        _ => {
            return Err(format!(
                "expected file(PATH, len, seed, meta[, source][, checksum]), got {text:?}"
            ))
        }
    };
    if name != "file" {
        return Err(format!("expected file(...), got {text:?}"));
    }
    let path: String = serde_json::from_str(path).map_err(|e| format!("bad path {path:?}: {e}"))?;
    let mut source = None;
    if let Some(arg) = rest.first().filter(|a| a.starts_with("source=")) {
        let name = value(arg, "source")?;
        source = Some(
            FileSource::from_name(name)
                .ok_or_else(|| format!("source {name:?} is neither local nor reference"))?,
        );
        rest = &rest[1..];
    }
    let checksum_len = match rest {
        [] => None,
        [arg] => Some(number(value(arg, "checksum")?)?),
        _ => return Err(format!("unexpected arguments {rest:?} in {text:?}")),
    };
    Ok(FileSpec {
        path,
        len: number(value(len, "len")?)?,
        seed: number(value(seed, "seed")?)?,
        file_meta_len: optional(value(meta, "meta")?, "none")?,
        source,
        checksum_len,
    })
}

/// `NAME(ARGS)` → `(NAME, ARGS)`.
fn call(text: &str) -> Result<(&str, &str), String> {
    let open = text.find('(').ok_or_else(|| format!("expected NAME(...), got {text:?}"))?;
    let args = text[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("expected a closing parenthesis in {text:?}"))?;
    Ok((text[..open].trim(), args))
}

/// Splits `text` at the commas outside parentheses, brackets and JSON strings; each part
/// trimmed. Empty text is no argument.
fn split_top(text: &str) -> Result<Vec<&str>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced {c:?} in {text:?}"));
                }
            }
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_string || depth != 0 {
        return Err(format!("unclosed string, parenthesis or bracket in {text:?}"));
    }
    parts.push(text[start..].trim());
    Ok(parts)
}

/// The value of `KEY=VALUE`.
fn value<'a>(arg: &'a str, key: &str) -> Result<&'a str, String> {
    arg.strip_prefix(key)
        .and_then(|rest| rest.trim_start().strip_prefix('='))
        .map(str::trim)
        .ok_or_else(|| format!("expected {key}=..., got {arg:?}"))
}

fn number<T: FromStr>(text: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    text.trim().parse().map_err(|e| format!("bad number {text:?}: {e}"))
}

/// `absent` as `None`, a number as `Some`.
fn optional<T: FromStr>(text: &str, absent: &str) -> Result<Option<T>, String>
where
    T::Err: fmt::Display,
{
    if text == absent {
        Ok(None)
    } else {
        number(text).map(Some)
    }
}
