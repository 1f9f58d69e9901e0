//! Reach: a default-config soak of a small, fixed seed range takes every family path and
//! history shape the coverage counters name (issue 13, items 1 to 3). Each required point
//! stands for a blind spot that once was: closed segments and multi-segment truncation need
//! the per-seed tunables (a small segment size), the `raft.*` shapes need the generator's
//! follower shapes, the media-fault and fail-closed points need the default fault mode's
//! media-fault share. If any of them stopped being drawn, this test names the point lost.

use std::sync::Arc;

use quorumkit_storage::contract::Family;
use quorumkit_storage::coverage::Point;
use quorumkit_storage::families::local::LocalFamily;
use quorumkit_storage::families::redb::RedbFamily;
use quorumkit_storage::sim::soak::{run_soak, SeedPlan, SoakConfig, SoakReport};

/// The seeds the test runs: small enough for a few seconds, large enough to reach every
/// required point (measured; see each family's list).
const SEEDS: std::ops::Range<u64> = 0..40;
/// redb's stale-page point needs a media-fault seed whose misdirected write lands on a page
/// redb reads again: 6 seeds of 0..200 on 2026-12-03 (media seeds stratified, one per six).
const REDB_SEEDS: std::ops::Range<u64> = 0..200;

fn soak(family: Arc<dyn Family>) -> SoakReport {
    soak_seeds(family, SEEDS)
}

fn soak_seeds(family: Arc<dyn Family>, seeds: std::ops::Range<u64>) -> SoakReport {
    let mut config =
        SoakConfig::new(vec![family], SeedPlan::Range { start: seeds.start, end: seeds.end });
    config.shrink = false;
    run_soak(&config, &mut || true, &mut |_, _| {})
}

fn assert_reached(report: &SoakReport, required: &[Point]) {
    assert!(report.passed(), "the default soak failed: {:?}", report.failures_total);
    let summary = &report.families[0];
    let missing: Vec<&str> =
        required.iter().filter(|p| summary.reach(**p).hits == 0).map(|p| p.name()).collect();
    assert!(
        missing.is_empty(),
        "{} seeds of {} never reached {missing:?}",
        report.seeds_run,
        summary.family
    );
}

/// The history shapes of Raft mode, reached on any family.
const RAFT_SHAPES: [Point; 7] = [
    Point::RaftInstallBelowLastKept,
    Point::RaftInstallBelowLastReset,
    Point::RaftInstallPastEndReset,
    Point::RaftInstallPastEndTruncatePrefix,
    Point::RaftResetBackward,
    Point::RaftTruncateFarBack,
    Point::RaftInstallRetransmitted,
];

#[test]
fn a_default_soak_reaches_every_local_path() {
    let report = soak(Arc::new(LocalFamily::default()));
    assert_reached(
        &report,
        &[
            Point::LocalSegmentRollover,
            Point::LocalClosedSegmentRecovered,
            Point::LocalMixedChecksumsRead,
            Point::LocalOpenedByBraftUris,
            Point::LocalTruncateSuffixAcrossSegments,
            Point::LocalTruncateSuffixReopensClosed,
            Point::LocalTruncatePrefixDropsSegments,
            Point::LocalResetWithStaleSegments,
            Point::LocalRedoCompleted,
            Point::LocalSnapshotPublish,
            Point::LocalSnapshotRetire,
            Point::LocalImportCommit,
            Point::LocalExportPinsSegment,
            Point::LocalSnapshotRetirePinned,
            Point::LocalMediaFaultLog,
        ],
    );
    assert_reached(&report, &RAFT_SHAPES);
}

#[test]
fn a_default_soak_reaches_every_redb_path() {
    let report = soak_seeds(Arc::new(RedbFamily::default()), REDB_SEEDS);
    assert_reached(
        &report,
        &[
            Point::RedbRepairOnOpen,
            Point::RedbSnapshotPublish,
            Point::RedbSnapshotRetire,
            Point::RedbImportCommit,
            Point::RedbMediaFault,
            Point::RedbStalePageCaught,
            Point::RedbRefusedEngine,
        ],
    );
}
