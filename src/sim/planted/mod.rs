//! Planted bugs: wrapper families that break the contract on purpose, so tests and
//! `qk selftest` can prove each check bites. They are never registered in the normal
//! registry; a caller must wrap a family explicitly (or, for [`PlantedValidatorBug`], name it
//! in the run's options). [`PlantedFamily`] breaks one family
//! (`family.rs`, its import sinks in `import.rs`, its file system without syncs in
//! `lost_syncs.rs`, the one without locks in `no_lock.rs`, the one that unpads segment names
//! in `unpadded_names.rs`); [`PlantedPairFamily`] breaks the dual writing of a pair over a
//! correct [`DualWrite`](crate::dual_write::DualWrite) (`pair.rs`).
//!
//! | bug | caught by | families |
//! |---|---|---|
//! | `drop-entry`, `forget-vote` | `model_equality` | all |
//! | `truncate-suffix-off-by-one`, `flip-snapshot-byte` | `model_equality` | all |
//! | `export-cut-off-by-one` | `export_cut` | all |
//! | `import-not-atomic` | `bad_images` | all |
//! | `skip-fsync`, `skip-dir-sync` | `crash_atomicity` | durable |
//! | `import-stamps-counter` | `import_determinism` | all |
//! | `import-lists-files-twice` | `canonicality` | all |
//! | `import-commit-in-steps` | `import_atomicity` | durable |
//! | every [`PlantedDualBug`] | `dual_write` | pairs (`mirror-not-durable`: durable mirror) |
//! | `padding-by-open-count` | `determinism` (each seed run twice) | all |
//! | `truncate-suffix-panics` | `panic` | all |
//! | every [`PlantedMigrationBug`] (`migration-cut-over-unvalidated`, `migration-source-misses-mutations`) | `migration` | migrations (every ordered pair) |
//! | every [`PlantedValidatorBug`] (`validator-skips-file-meta`, `validator-stops-before-last`) | `validator_agreement` | all |
//! | `read-only-open-writes` | `read_only` | durable |
//! | `no-lock` | `single_writer` | durable |
//! | `unpadded-segment-names` | `braft_view` | `local` |
//! | `inspect-miscounts-entries` | `inspect_agreement` | `local`, `redb` |
//! | `repair-in-two-steps` | `crash_atomicity` (a power loss during an open) | durable |
//! | `meta-in-side-file` | `crash_atomicity` (a mixed cut under a lying fsync) | redb |
//! | `views-drop-config-peers` ([`crate::sim::checks::image_views::PlantedViewBug`], in the check's reading of an image) | `image_views` | all |
//! | `accepts-hostile-dirs` | `hostile_dirs` | `local` |
//!
//! The three import bugs live in `import.rs`; they touch only what an instance does
//! once it is given an import, which the runner's own instance never is, so they show in the
//! image checks alone. `padding-by-open-count` changes only how many disk operations an
//! instance makes (padding never read, in a file beside it), by a count kept across runs in
//! the family: every state is right, but a power loss finds a different number of pending
//! operations on a second run of the same seed, so only the determinism check sees it.
//! `unpadded-segment-names` stores the local family's segment files under unpadded names
//! (`log_inprogress_7` for `log_inprogress_00000000000000000007`) behind its back, through a
//! `Vfs` that translates names both ways: the family's own reader and writer agree (every
//! other check holds), but braft opens only padded names, so only `braft_view` sees it.
//! `inspect-miscounts-entries` leaves every state right and doctors only the family's
//! `qk inspect` details (one entry too many), which only `inspect_agreement` reads.
//! `repair-in-two-steps` does its harm inside `open`, between two durable writes, so under
//! power losses alone only a crash point armed inside an open (the runner's crashes during
//! recovery) lands between them.

mod family;
mod import;
mod lost_syncs;
mod migration;
mod no_lock;
mod pair;
mod unpadded_names;
mod validator;

pub use family::{PlantedBug, PlantedFamily, PADDING_CYCLE};
pub use migration::{MutedSource, PlantedMigrationBug};
pub use pair::{PlantedDualBug, PlantedPairFamily, MIRROR_BUFFER_LEN};
pub use validator::{Blind, PlantedValidatorBug};
