//! Family tunables: the options of each family that change *which paths it takes* without
//! changing what it stores (segment size, checksum type of new records, cache size, commit
//! protocol). One [`Tunables`] value holds them for every family; a family picks its own
//! part in [`Family::with_tunables`](crate::contract::Family::with_tunables) and keeps every
//! other option it had (recovery policy, integrity checks).
//!
//! The harness draws them per seed (`sim::engine::tunables`) so that rollover, closed
//! segments, multi-segment truncation and a small redb cache happen in ordinary histories.
//! Options that weaken a family's guarantees (redb without its integrity check on open, a
//! braft-compatible recovery policy) are deliberately not tunables: a soak under them would
//! report the weakened guarantee as a finding.
//!
//! Not tunable, because they are format constants a reader must agree on: the local
//! family's snapshot manifest block (64 KiB) and redb's snapshot chunk (64 KiB); redb's page
//! and region sizes, which its builder exposes only to its own tests.
//!
//! **Text form** (`Display` / `FromStr`, one grammar): `default`, or comma-separated
//! `key=value` pairs for the values that differ from the defaults, keys
//! `local.segment_size_max`, `local.checksum` (`crc32c`, `murmur3`, `mixed`),
//! `local.braft_uris` (`true`, `false`),
//! `redb.cache_size`, `redb.two_phase_commit` (`true`, `false`). A key left out has its
//! default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which checksum type the local family writes into new records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumChoice {
    /// CRC-32C (braft's type 1, what x86-64 braft writes): the default.
    #[default]
    Crc32c,
    /// MurmurHash3 (braft's type 0).
    Murmur3,
    /// Each open picks one of the two, so a log reopened as it grows holds both (braft reads
    /// both, mixed freely, as a node upgraded across builds would have them).
    Mixed,
}

impl ChecksumChoice {
    /// The text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumChoice::Crc32c => "crc32c",
            ChecksumChoice::Murmur3 => "murmur3",
            ChecksumChoice::Mixed => "mixed",
        }
    }
}

/// The local family's tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalTunables {
    /// braft's `raft_max_segment_size` (default 8 MiB).
    pub segment_size_max: u64,
    /// Checksum type of new records.
    pub checksum: ChecksumChoice,
    /// Whether every open names the instance as braft's configuration does, by three
    /// `local://` URIs (one per directory, spelled with the case and whitespace braft's
    /// parser accepts), instead of by its directory (default false). The same directories,
    /// reached through the URI parser.
    #[serde(default)]
    pub braft_uris: bool,
}

impl Default for LocalTunables {
    fn default() -> Self {
        LocalTunables {
            segment_size_max: crate::families::local::format::SEGMENT_SIZE_MAX_DEFAULT,
            checksum: ChecksumChoice::Crc32c,
            braft_uris: false,
        }
    }
}

/// The redb family's tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedbTunables {
    /// redb's page cache budget in bytes (default 16 MiB; 0 is allowed: every read goes to
    /// the file, and a transaction's dirty pages spill to it at once).
    pub cache_size: u64,
    /// Two-phase commit (default on) or redb's one-phase commit.
    pub two_phase_commit: bool,
}

impl Default for RedbTunables {
    fn default() -> Self {
        let options = crate::families::redb::RedbOptions::default();
        RedbTunables {
            cache_size: options.cache_size as u64,
            two_phase_commit: options.two_phase_commit,
        }
    }
}

/// Every family's tunables, for one instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tunables {
    /// For `local://`.
    pub local: LocalTunables,
    /// For `redb://`.
    pub redb: RedbTunables,
}

/// One tunable, the unit a shrinker resets to its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Knob {
    /// [`LocalTunables::segment_size_max`].
    LocalSegmentSizeMax,
    /// [`LocalTunables::checksum`].
    LocalChecksum,
    /// [`LocalTunables::braft_uris`].
    LocalBraftUris,
    /// [`RedbTunables::cache_size`].
    RedbCacheSize,
    /// [`RedbTunables::two_phase_commit`].
    RedbTwoPhaseCommit,
}

impl Knob {
    /// Every knob, in text order.
    pub const ALL: [Knob; 5] = [
        Knob::LocalSegmentSizeMax,
        Knob::LocalChecksum,
        Knob::LocalBraftUris,
        Knob::RedbCacheSize,
        Knob::RedbTwoPhaseCommit,
    ];

    /// Its key in the text form.
    pub fn key(self) -> &'static str {
        match self {
            Knob::LocalSegmentSizeMax => "local.segment_size_max",
            Knob::LocalChecksum => "local.checksum",
            Knob::LocalBraftUris => "local.braft_uris",
            Knob::RedbCacheSize => "redb.cache_size",
            Knob::RedbTwoPhaseCommit => "redb.two_phase_commit",
        }
    }

    /// The family (scheme) it tunes.
    pub fn family(self) -> &'static str {
        self.key().split('.').next().unwrap_or_default()
    }
}

impl Tunables {
    /// The knobs set to something other than their default, in text order.
    pub fn changed(&self) -> Vec<Knob> {
        Knob::ALL.into_iter().filter(|k| self.value(*k) != Tunables::default().value(*k)).collect()
    }

    /// This value with `knob` back at its default.
    pub fn without(&self, knob: Knob) -> Tunables {
        let default = Tunables::default();
        let mut t = *self;
        match knob {
            Knob::LocalSegmentSizeMax => t.local.segment_size_max = default.local.segment_size_max,
            Knob::LocalChecksum => t.local.checksum = default.local.checksum,
            Knob::LocalBraftUris => t.local.braft_uris = default.local.braft_uris,
            Knob::RedbCacheSize => t.redb.cache_size = default.redb.cache_size,
            Knob::RedbTwoPhaseCommit => t.redb.two_phase_commit = default.redb.two_phase_commit,
        }
        t
    }

    /// This value with every knob of a family not in `schemes` at its default.
    pub fn only_for(&self, schemes: &[&str]) -> Tunables {
        self.changed()
            .into_iter()
            .filter(|k| !schemes.contains(&k.family()))
            .fold(*self, |t, k| t.without(k))
    }

    /// The value of `knob`, as text.
    pub fn value(&self, knob: Knob) -> String {
        match knob {
            Knob::LocalSegmentSizeMax => self.local.segment_size_max.to_string(),
            Knob::LocalChecksum => self.local.checksum.as_str().to_string(),
            Knob::LocalBraftUris => self.local.braft_uris.to_string(),
            Knob::RedbCacheSize => self.redb.cache_size.to_string(),
            Knob::RedbTwoPhaseCommit => self.redb.two_phase_commit.to_string(),
        }
    }

    /// Sets `knob` from its text; the error says what was wrong.
    pub fn set(&mut self, knob: Knob, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("{}: bad value {value:?} ({what})", knob.key());
        match knob {
            Knob::LocalSegmentSizeMax => {
                self.local.segment_size_max = value.parse().map_err(|_| bad("a byte count"))?;
            }
            Knob::LocalChecksum => {
                self.local.checksum = match value {
                    "crc32c" => ChecksumChoice::Crc32c,
                    "murmur3" => ChecksumChoice::Murmur3,
                    "mixed" => ChecksumChoice::Mixed,
                    _ => return Err(bad("crc32c, murmur3 or mixed")),
                };
            }
            Knob::LocalBraftUris => {
                self.local.braft_uris = value.parse().map_err(|_| bad("true or false"))?;
            }
            Knob::RedbCacheSize => {
                let bytes: u64 = value.parse().map_err(|_| bad("a byte count"))?;
                usize::try_from(bytes).map_err(|_| bad("too large for this machine"))?;
                self.redb.cache_size = bytes;
            }
            Knob::RedbTwoPhaseCommit => {
                self.redb.two_phase_commit = value.parse().map_err(|_| bad("true or false"))?;
            }
        }
        Ok(())
    }

    /// Sets the knobs named by `key=value` pairs (the text form's parts) on top of `self`;
    /// an unknown key or a bad value is refused, naming it.
    pub fn parse_pairs<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), String> {
        for (key, value) in pairs {
            let knob = Knob::ALL.into_iter().find(|k| k.key() == key).ok_or_else(|| {
                let keys: Vec<&str> = Knob::ALL.iter().map(|k| k.key()).collect();
                format!("unknown tunable {key:?}; known: {}", keys.join(", "))
            })?;
            self.set(knob, value)?;
        }
        Ok(())
    }

    /// The `key=value` pairs of the changed knobs, with `prefix` before each key.
    pub fn pairs(&self, prefix: &str) -> Vec<String> {
        self.changed()
            .into_iter()
            .map(|k| format!("{prefix}{}={}", k.key(), self.value(k)))
            .collect()
    }
}

/// Splits the text form into `key=value` pairs (`default` and the empty text: none).
pub fn split_pairs(text: &str) -> Result<Vec<(&str, &str)>, String> {
    let text = text.trim();
    if text.is_empty() || text == "default" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|pair| {
            let pair = pair.trim();
            pair.split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("expected key=value, got {pair:?}"))
        })
        .collect()
}

impl fmt::Display for Tunables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = self.pairs("");
        if pairs.is_empty() {
            f.write_str("default")
        } else {
            f.write_str(&pairs.join(","))
        }
    }
}

impl FromStr for Tunables {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut tunables = Tunables::default();
        tunables.parse_pairs(split_pairs(text)?)?;
        Ok(tunables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips_and_defaults_print_as_default() {
        assert_eq!(Tunables::default().to_string(), "default");
        assert_eq!("default".parse::<Tunables>(), Ok(Tunables::default()));
        assert_eq!("".parse::<Tunables>(), Ok(Tunables::default()));
        let t = Tunables {
            local: LocalTunables {
                segment_size_max: 812,
                checksum: ChecksumChoice::Mixed,
                braft_uris: false,
            },
            redb: RedbTunables { cache_size: 0, two_phase_commit: false },
        };
        let text = t.to_string();
        assert_eq!(
            text,
            "local.segment_size_max=812,local.checksum=mixed,redb.cache_size=0,\
             redb.two_phase_commit=false"
        );
        assert_eq!(text.parse::<Tunables>(), Ok(t));
        assert_eq!(
            t.only_for(&["local"]).to_string(),
            "local.segment_size_max=812,local.checksum=mixed"
        );
        assert_eq!(t.without(Knob::LocalChecksum).changed().len(), 3);
        assert!("local.segment_size=1".parse::<Tunables>().unwrap_err().contains("unknown"));
        assert!("local.checksum=md5".parse::<Tunables>().unwrap_err().contains("murmur3"));
        assert!("redb.cache_size".parse::<Tunables>().unwrap_err().contains("key=value"));
    }

    #[test]
    fn braft_uris_round_trips_and_reaches_the_family() {
        let t: Tunables = "local.braft_uris=true".parse().unwrap();
        assert!(t.local.braft_uris);
        assert_eq!(t.to_string(), "local.braft_uris=true");
        assert!("local.braft_uris=yes".parse::<Tunables>().unwrap_err().contains("true or false"));
        let dir = "/data/node 1";
        let [log, meta, snapshot] = crate::families::local::braft_uris(dir);
        let by_uris = crate::families::local::LocalPaths::from_uris(&log, &meta, &snapshot);
        // braft removes every whitespace character from a path, the directory's own included.
        assert_eq!(by_uris.unwrap(), crate::families::local::LocalPaths::from_dir("/data/node1"));
    }
}
