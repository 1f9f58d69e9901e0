//! Bugs planted in the reader on purpose, behind a switch only tests and self-tests turn on
//! ([`super::import_with_reader_bug`]): they prove the harness's `bad_images` check catches a
//! reader that forgets one rule — which bit flips alone cannot show, because the CRC-32C
//! rejects a flipped record before any rule is read — or a reader that applies a rule one
//! step too early, refusing a valid image at a limit (caught by the edge images). [`super::import`] and every other entry
//! point never carry one.

use serde::{Deserialize, Serialize};

/// One rule a planted reader forgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedReaderBug {
    /// A snapshot path is not compared with the previous one: duplicates, paths out of
    /// canonical order and a file that is also a directory reach the destination.
    SkipPathOrder,
    /// END's record count is not compared with the number of records read.
    SkipEndCount,
    /// The CUT's index limit is read as exclusive: a log whose last entry sits exactly at
    /// the largest index is refused, though the specification allows it.
    ExclusiveIndexLimit,
}

impl PlantedReaderBug {
    /// Every planted reader bug.
    pub const ALL: &'static [PlantedReaderBug] = &[
        PlantedReaderBug::SkipPathOrder,
        PlantedReaderBug::SkipEndCount,
        PlantedReaderBug::ExclusiveIndexLimit,
    ];

    /// Whether this bug lets a bad image in (a rule forgotten), rather than refusing a
    /// valid one (a limit applied one step too early).
    pub fn lets_a_bad_image_in(self) -> bool {
        !matches!(self, PlantedReaderBug::ExclusiveIndexLimit)
    }

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            PlantedReaderBug::SkipPathOrder => "skip-path-order",
            PlantedReaderBug::SkipEndCount => "skip-end-count",
            PlantedReaderBug::ExclusiveIndexLimit => "exclusive-index-limit",
        }
    }
}
