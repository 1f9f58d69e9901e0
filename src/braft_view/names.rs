//! braft's directory-entry patterns, matched as `sscanf` matches them (braft-format.md §5.1,
//! §7.4): `log_%020ld_%020ld`, `log_inprogress_%020ld`, `snapshot_%020ld`. A `%020ld` takes at
//! most 20 characters (sign included) after optional white space, at least one digit; text
//! after the last conversion is not looked at. So unpadded numbers and trailing junk match —
//! and braft then opens the file under the *padded* name it formats from the numbers, which
//! is why a match is not enough to be usable ([`padded_segment_name`]).

/// One `%020ld` conversion: the value and the rest, `None` when it does not match, or
/// `Some(Err(()))` when the digits overflow `int64` (undefined in `sscanf`).
fn scan_long(text: &str) -> Option<Result<(i64, &str), ()>> {
    let text = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let bytes = text.as_bytes();
    let sign = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let digits = bytes[sign..].iter().take(20 - sign).take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let end = sign + digits;
    Some(text[..end].parse::<i64>().map(|v| (v, &text[end..])).map_err(|_| ()))
}

/// A name that matched one of braft's patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched<T> {
    /// The numbers read.
    Yes(T),
    /// The pattern does not match.
    No,
    /// A number overflows `int64`: `sscanf`'s behaviour is undefined.
    Overflow,
}

fn literal<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)
}

/// `sscanf(name, "log_%020ld_%020ld") == 2`.
pub fn closed_segment(name: &str) -> Matched<(i64, i64)> {
    let Some(rest) = literal(name, "log_") else { return Matched::No };
    let (first, rest) = match scan_long(rest) {
        None => return Matched::No,
        Some(Err(())) => return Matched::Overflow,
        Some(Ok(v)) => v,
    };
    let Some(rest) = literal(rest, "_") else { return Matched::No };
    match scan_long(rest) {
        None => Matched::No,
        Some(Err(())) => Matched::Overflow,
        Some(Ok((last, _))) => Matched::Yes((first, last)),
    }
}

/// `sscanf(name, "log_inprogress_%020ld") == 1`.
pub fn open_segment(name: &str) -> Matched<i64> {
    let Some(rest) = literal(name, "log_inprogress_") else { return Matched::No };
    match scan_long(rest) {
        None => Matched::No,
        Some(Err(())) => Matched::Overflow,
        Some(Ok((first, _))) => Matched::Yes(first),
    }
}

/// `sscanf(name, "snapshot_%020ld") == 1`.
pub fn snapshot_dir(name: &str) -> Matched<i64> {
    let Some(rest) = literal(name, "snapshot_") else { return Matched::No };
    match scan_long(rest) {
        None => Matched::No,
        Some(Err(())) => Matched::Overflow,
        Some(Ok((index, _))) => Matched::Yes(index),
    }
}

/// The name braft opens a segment under: `log_%020ld_%020ld` or `log_inprogress_%020ld`.
pub fn padded_segment_name(first: i64, last: Option<i64>) -> String {
    match last {
        Some(last) => format!("log_{first:020}_{last:020}"),
        None => format!("log_inprogress_{first:020}"),
    }
}

/// The directory braft opens a snapshot under: `snapshot_%020ld`.
pub fn padded_snapshot_name(index: i64) -> String {
    format!("snapshot_{index:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sscanf_leniency() {
        let padded = "log_00000000000000000001_00000000000000000190";
        assert_eq!(closed_segment(padded), Matched::Yes((1, 190)));
        assert_eq!(closed_segment("log_1_190"), Matched::Yes((1, 190)));
        assert_eq!(closed_segment("log_1_190.whatever"), Matched::Yes((1, 190)));
        assert_eq!(closed_segment("log_inprogress_00000000000000000001"), Matched::No);
        assert_eq!(closed_segment("log_meta"), Matched::No);
        // A 21st digit is not read by %020ld, so the `_` literal meets a digit.
        assert_eq!(closed_segment("log_000000000000000000001_2"), Matched::No);
        assert_eq!(open_segment("log_inprogress_00000000000000000158"), Matched::Yes(158));
        assert_eq!(open_segment("log_inprogress_158"), Matched::Yes(158));
        assert_eq!(open_segment("log_00000000000000000001_00000000000000000002"), Matched::No);
        assert_eq!(snapshot_dir("snapshot_150"), Matched::Yes(150));
        assert_eq!(snapshot_dir("snapshot_00000000000000009354"), Matched::Yes(9354));
        assert_eq!(snapshot_dir("snapshot_12junk"), Matched::Yes(12));
        assert_eq!(snapshot_dir("temp"), Matched::No);
        assert_eq!(snapshot_dir("snapshot_99999999999999999999"), Matched::Overflow);
        assert_eq!(padded_segment_name(158, None), "log_inprogress_00000000000000000158");
        assert_eq!(padded_snapshot_name(150), "snapshot_00000000000000000150");
    }
}
