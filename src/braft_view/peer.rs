//! braft's PeerId text (braft-format.md §4), read as braft reads it: `%[^:]` for the address
//! (everything up to the first `:`), then up to three `%d` numbers each after one or more
//! `:` (port required; idx and role default to 0); the address must be an IPv4 dotted quad
//! (`inet_pton(AF_INET)`: hostnames and IPv6 fail); role above 1 fails (braft master).
//! `%d` skips leading white space and takes an optional sign; whatever follows the last
//! number read is ignored, as `sscanf` does.
//!
//! braft prints a parsed peer as `ip:port:idx:role`; that is the spelling returned here, so a
//! legacy three-field id reads back with `:0` appended.
//!
//! What braft-format.md does not say, reported as [`Peer::Unspecified`] rather than guessed:
//! negative or over-range ports and indexes, negative roles, numbers that overflow `int`,
//! and addresses longer than braft's 64-byte buffer.

use std::net::Ipv4Addr;

/// What braft makes of one PeerId text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A peer, in braft's printed spelling.
    Parsed(String),
    /// `PeerId::parse` fails (an empty string, a host name, IPv6, a missing port, role > 1).
    Unparsable,
    /// braft-format.md does not say what braft does with this text.
    Unspecified(String),
}

/// braft's empty ("any") peer as it prints it; a vote for it is no vote.
pub const ANY: &str = "0.0.0.0:0:0:0";

/// Parses `text` as braft's `PeerId::parse`.
pub fn parse(text: &[u8]) -> Peer {
    let Ok(text) = std::str::from_utf8(text) else {
        return Peer::Unspecified("peer text is not UTF-8".into());
    };
    let (address, mut rest) = match text.find(':') {
        Some(at) => (&text[..at], &text[at..]),
        None => (text, ""),
    };
    if address.is_empty() {
        return Peer::Unparsable;
    }
    if address.len() >= 64 {
        return Peer::Unspecified(format!("a {}-byte address", address.len()));
    }
    let mut numbers: Vec<i64> = Vec::new();
    while numbers.len() < 3 {
        let Some(after) = skip_colons(rest) else { break };
        match scan_int(after) {
            Scan::Number(value, tail) => {
                numbers.push(value);
                rest = tail;
            }
            Scan::NoMatch => break,
            Scan::Overflow => return Peer::Unspecified("a number overflows int".into()),
        }
    }
    if numbers.is_empty() {
        return Peer::Unparsable;
    }
    let Some(ip) = inet_pton4(address) else {
        return Peer::Unparsable;
    };
    let port = numbers[0];
    let idx = numbers.get(1).copied().unwrap_or(0);
    let role = numbers.get(2).copied().unwrap_or(0);
    if role > 1 {
        return Peer::Unparsable;
    }
    if !(0..=65535).contains(&port) || idx < 0 || role < 0 {
        return Peer::Unspecified(format!("port {port}, idx {idx}, role {role}"));
    }
    Peer::Parsed(format!("{ip}:{port}:{idx}:{role}"))
}

/// `%*[:]`: one or more `:`; `None` when there is none.
fn skip_colons(text: &str) -> Option<&str> {
    let after = text.trim_start_matches(':');
    (after.len() < text.len()).then_some(after)
}

enum Scan<'a> {
    Number(i64, &'a str),
    NoMatch,
    Overflow,
}

/// `%d`: optional white space, optional sign, one or more digits.
fn scan_int(text: &str) -> Scan<'_> {
    let text = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits_from) = match text.as_bytes().first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = text[digits_from..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Scan::NoMatch;
    }
    let end = digits_from + digits;
    let Ok(magnitude) = text[digits_from..end].parse::<i64>() else {
        return Scan::Overflow;
    };
    let value = if negative { -magnitude } else { magnitude };
    if i32::try_from(value).is_err() {
        return Scan::Overflow;
    }
    Scan::Number(value, &text[end..])
}

/// `inet_pton(AF_INET)`: exactly four dot-separated decimal octets 0–255, digits only, no
/// leading zero (glibc rejects `01`), nothing else.
fn inet_pton4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        let ok = !part.is_empty()
            && part.len() <= 3
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'));
        if !ok {
            return None;
        }
        *octet = u8::try_from(part.parse::<u16>().ok()?).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Peer {
        parse(text.as_bytes())
    }

    #[test]
    fn braft_spellings() {
        // §4: both versions read each other's strings; the legacy form gains `:0`.
        assert_eq!(parsed("127.0.0.1:8101:0"), Peer::Parsed("127.0.0.1:8101:0:0".into()));
        assert_eq!(parsed("127.0.0.1:8100:0:0"), Peer::Parsed("127.0.0.1:8100:0:0".into()));
        assert_eq!(parsed("10.0.0.2:8000:3:1"), Peer::Parsed("10.0.0.2:8000:3:1".into()));
        assert_eq!(parsed("1.2.3.4::::80"), Peer::Parsed("1.2.3.4:80:0:0".into()));
        assert_eq!(parsed("1.2.3.4:80"), Peer::Parsed("1.2.3.4:80:0:0".into()));
        assert_eq!(parsed("0.0.0.0:0:0"), Peer::Parsed(ANY.into()));
    }

    #[test]
    fn what_braft_rejects() {
        for bad in [
            "",
            "localhost:8100",
            "::1:8100",
            "1.2.3.4",
            "1.2.3.4:",
            "1.2.3:80",
            "01.2.3.4:80",
            "1.2.3.256:80",
            "1.2.3.4:80:0:2",
        ] {
            assert_eq!(parsed(bad), Peer::Unparsable, "{bad:?}");
        }
    }

    #[test]
    fn what_the_spec_leaves_open() {
        assert!(matches!(parsed("1.2.3.4:-1"), Peer::Unspecified(_)));
        assert!(matches!(parsed("1.2.3.4:70000"), Peer::Unspecified(_)));
        assert!(matches!(parsed("1.2.3.4:99999999999"), Peer::Unspecified(_)));
    }
}
