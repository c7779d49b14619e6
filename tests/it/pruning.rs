//! Time-range pruning over a generated month of hourly partitions: a narrow query lists
//! only the partitions it needs (counted through the ObjectSource trait) and returns
//! exactly the recordings in range.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use gcrec_fetch::filter::RecordingFilter;
use gcrec_fetch::prune::TimeRange;
use gcrec_fetch::recording::ScanEvent;
use gcrec_fetch::scan::{ScanOptions, scan};
use gcrec_fetch::source::{CallCounts, CountingSource, LocalSource, ObjectSource};
use gcrec_testkit::{Export, ExportSpec, Padding};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// 30 days × 24 hours, one conversation an hour, small media.
fn month(padding: Padding, root: &str) -> (tempfile::TempDir, Export) {
    common::generated(ExportSpec {
        seed: 7,
        days: 30,
        padding,
        call_bytes: 300,
        screen_bytes: 400,
        digital_bytes: 300,
        root: root.into(),
        ..ExportSpec::default()
    })
}

struct Outcome {
    ids: BTreeSet<String>,
    counts: CallCounts,
    listed: Vec<String>,
}

async fn query(dir: &std::path::Path, from: &str, to: &str) -> Outcome {
    let counting = Arc::new(CountingSource::new(LocalSource::open(dir).unwrap()));
    let source: Arc<dyn ObjectSource> = counting.clone();
    let options = ScanOptions {
        filter: RecordingFilter {
            range: TimeRange {
                from: Some(t(from)),
                to: Some(t(to)),
            },
            ..RecordingFilter::default()
        },
        read_all_metadata: false,
        ..ScanOptions::default()
    };
    let events: Vec<ScanEvent> = scan(source, options).try_collect().await.unwrap();
    let ids = events
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Recording(r) => Some(r.recording_id.clone()),
            _ => None,
        })
        .collect();
    Outcome {
        ids,
        counts: counting.counts(),
        listed: counting.listed_prefixes(),
    }
}

fn expected(export: &Export, from: &str, to: &str) -> BTreeSet<String> {
    export
        .recordings
        .iter()
        .filter(|r| r.conversation_start >= t(from) && r.conversation_start < t(to))
        .map(|r| r.recording_id.clone())
        .collect()
}

#[tokio::test]
async fn a_two_hour_query_lists_only_the_partitions_on_its_path() {
    let (dir, export) = month(Padding::Padded, "");
    let total_objects = export.objects().count();
    let (from, to) = ("2024-03-10T10:00:00Z", "2024-03-10T12:00:00Z");
    let got = query(dir.path(), from, to).await;
    assert_eq!(got.ids, expected(&export, from, to));
    assert!(!got.ids.is_empty());
    let org = &export.orgs[0];
    // One delimiter listing per level on the path, then the two hours themselves.
    assert_eq!(
        got.listed,
        [
            String::new(),
            format!("{org}/"),
            format!("{org}/year=2024/"),
            format!("{org}/year=2024/month=03/"),
            format!("{org}/year=2024/month=03/day=10/"),
            format!("{org}/year=2024/month=03/day=10/hour=10/"),
            format!("{org}/year=2024/month=03/day=10/hour=11/"),
        ]
    );
    assert_eq!(got.counts.list, 7);
    // The listings returned a few dozen entries, not the whole month.
    assert!(
        got.counts.listed_entries < 80,
        "{} entries listed of {total_objects} objects",
        got.counts.listed_entries
    );
    assert!(total_objects > 1000);
    // Only hour-aligned bounds: no sidecar had to be read.
    assert_eq!(got.counts.get, 0);
}

#[tokio::test]
async fn unpadded_and_mixed_partitions_are_discovered_not_guessed() {
    let (from, to) = ("2024-03-10T10:00:00Z", "2024-03-10T12:00:00Z");
    for padding in [Padding::Unpadded, Padding::Mixed] {
        let (dir, export) = month(padding, "");
        let got = query(dir.path(), from, to).await;
        assert_eq!(got.ids, expected(&export, from, to), "{padding:?}");
        assert!(!got.ids.is_empty());
        // Mixed padding has both month=03 and month=3 to descend: one more call.
        let budget = if padding == Padding::Mixed { 8 } else { 7 };
        assert_eq!(got.counts.list, budget, "{padding:?}: {:?}", got.listed);
    }
}

#[tokio::test]
async fn a_range_across_midnight_descends_into_both_days() {
    let (dir, export) = month(Padding::Padded, "");
    let (from, to) = ("2024-03-10T23:00:00Z", "2024-03-11T01:00:00Z");
    let got = query(dir.path(), from, to).await;
    assert_eq!(got.ids, expected(&export, from, to));
    let days: BTreeSet<_> = export
        .recordings
        .iter()
        .filter(|r| got.ids.contains(&r.recording_id))
        .map(|r| r.conversation_start.date_naive())
        .collect();
    assert_eq!(days.len(), 2, "recordings from both sides of midnight");
    // root, org, year, month, two days, two hours
    assert_eq!(got.counts.list, 8, "{:?}", got.listed);
}

#[tokio::test]
async fn a_partition_wholly_inside_the_range_is_listed_in_one_go() {
    let (dir, export) = month(Padding::Padded, "");
    let (from, to) = ("2024-03-05T00:00:00Z", "2024-03-07T00:00:00Z");
    let got = query(dir.path(), from, to).await;
    assert_eq!(got.ids, expected(&export, from, to));
    let org = &export.orgs[0];
    // Two whole days: listed as day prefixes, never hour by hour.
    let leaves: Vec<_> = got.listed.iter().filter(|p| p.contains("day=")).collect();
    assert_eq!(
        leaves,
        [
            &format!("{org}/year=2024/month=03/day=05/"),
            &format!("{org}/year=2024/month=03/day=06/")
        ]
    );
}

#[tokio::test]
async fn bounds_inside_an_hour_are_decided_by_the_sidecar() {
    let (dir, export) = month(Padding::Padded, "");
    let (from, to) = ("2024-03-10T10:30:00Z", "2024-03-10T12:15:00Z");
    let got = query(dir.path(), from, to).await;
    assert_eq!(got.ids, expected(&export, from, to));
    // Only the recordings in the two cut hours (10 and 12) needed their sidecars.
    assert!(
        got.counts.get >= 2 && got.counts.get <= 8,
        "{} sidecar reads",
        got.counts.get
    );
}

#[tokio::test]
async fn an_export_under_a_root_prefix_is_found() {
    let (dir, export) = month(Padding::Padded, "exports/genesys/");
    let (from, to) = ("2024-03-10T10:00:00Z", "2024-03-10T11:00:00Z");
    let got = query(dir.path(), from, to).await;
    assert_eq!(got.ids, expected(&export, from, to));
    assert!(!got.ids.is_empty());
}
