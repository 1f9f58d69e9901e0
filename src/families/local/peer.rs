//! braft's PeerId text: `<ipv4>:<port>:<idx>[:<role>]`.
//!
//! Parsing follows braft's `sscanf("%[^:]%*[:]%d%*[:]%d%*[:]%d")` plus `inet_pton(AF_INET)`:
//! each separator is one or more `:`, ip and port are required, idx and role default to 0,
//! role is 0 (replica) or 1 (witness). This parser is stricter in two ways, on purpose:
//! numbers are plain decimal digits (no sign or spaces), and nothing may follow the last
//! number.
//!
//! **One spelling per peer.** The family writes the contract's peer text, which is always
//! canonical (braft's four-field `to_string`). What it reads, it parses as braft does and
//! gives back in that canonical spelling ([`peer_from_disk`]), so a legacy three-field
//! `127.0.0.1:8101:0` braft ≤ 1.1.2 wrote (or any other spelling braft reads as the same
//! peer) reads as `127.0.0.1:8101:0:0`. Text braft cannot parse is given back as it is, and
//! the contract's checks reject it wherever it would be written.

use std::fmt;
use std::net::Ipv4Addr;

use crate::contract::PeerId;

/// A parsed PeerId.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The IPv4 address.
    pub ip: Ipv4Addr,
    /// The port.
    pub port: u16,
    /// The index on that endpoint.
    pub idx: u32,
    /// The role (0 replica, 1 witness); 0 when the text had the 3-field (v1.1.2) form.
    pub role: u8,
}

impl PeerAddr {
    /// braft's empty ("any") peer, which on disk means "no vote".
    pub const ANY: PeerAddr = PeerAddr { ip: Ipv4Addr::UNSPECIFIED, port: 0, idx: 0, role: 0 };

    /// The 4-field text braft master writes for "no vote".
    pub const ANY_TEXT: &'static str = "0.0.0.0:0:0:0";

    /// Parses PeerId text as braft does (see the module doc for the differences).
    pub fn parse(text: &str) -> Option<PeerAddr> {
        let (ip_text, rest) = text.split_once(':')?;
        let ip = parse_ipv4(ip_text)?;
        let mut numbers = rest.split(':').filter(|s| !s.is_empty());
        let port = parse_decimal(numbers.next()?)?;
        let port = u16::try_from(port).ok()?;
        let idx = match numbers.next() {
            Some(s) => u32::try_from(parse_decimal(s)?).ok().filter(|v| *v <= i32::MAX as u32)?,
            None => 0,
        };
        let role = match numbers.next() {
            Some(s) => u8::try_from(parse_decimal(s)?).ok().filter(|r| *r <= 1)?,
            None => 0,
        };
        if numbers.next().is_some() {
            return None;
        }
        Some(PeerAddr { ip, port, idx, role })
    }

    /// Whether this is the empty peer (address, port and idx all zero).
    pub fn is_any(&self) -> bool {
        self.ip.is_unspecified() && self.port == 0 && self.idx == 0
    }
}

impl fmt::Display for PeerAddr {
    /// braft's `to_string`: always the four-field form, the contract's canonical spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}:{}", self.ip, self.port, self.idx, self.role)
    }
}

/// The contract's peer for PeerId text read from disk: braft's parse, in the canonical
/// spelling; text braft cannot parse as it is (see the module doc).
pub fn peer_from_disk(text: String) -> PeerId {
    match PeerAddr::parse(&text) {
        Some(addr) => PeerId::new(addr.to_string()),
        None => PeerId::new(text),
    }
}

/// Whether `text` is braft's "no vote" (the any peer, in any accepted form).
pub fn is_no_vote(text: &str) -> bool {
    PeerAddr::parse(text).is_some_and(|p| p.is_any())
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `inet_pton(AF_INET)`: four decimal parts, each 0..=255, no leading zeros.
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        *octet = u8::try_from(part.parse::<u16>().ok()?).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}
