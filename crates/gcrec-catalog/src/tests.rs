//! The catalog against live scans of generated exports.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use gcrec_fetch::filter::{RecordingFilter, Shard, id_set};
use gcrec_fetch::prune::TimeRange;
use gcrec_fetch::recording::{Recording, ScanEvent};
use gcrec_fetch::scan::{ScanOptions, scan};
use gcrec_fetch::source::{CountingSource, MemorySource, ObjectSource};
use gcrec_testkit::export::{Export, ExportSpec, Padding};
use gcrec_testkit::rng::Rng;
use proptest::prelude::*;

use crate::index::{IndexEvent, IndexOptions, IndexReport, index};
use crate::query::{Query, Sort, recordings};

fn spec(days: u32) -> ExportSpec {
    ExportSpec {
        seed: 7,
        orgs: 2,
        days,
        hour_step: 5,
        conversations_per_hour: 3,
        padding: Padding::Mixed,
        anomaly_every: 4,
        call_bytes: 64,
        screen_bytes: 64,
        digital_bytes: 64,
        ..ExportSpec::default()
    }
}

fn memory(export: &Export) -> Arc<MemorySource> {
    export.memory_source()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn options(full: bool) -> IndexOptions {
    IndexOptions {
        uri: "mem://export".into(),
        base_prefix: String::new(),
        full,
        filter: RecordingFilter::default(),
        sidecar_cap: gcrec_fetch::metadata::DEFAULT_SIDECAR_CAP,
        concurrency: 8,
        inventory: None,
    }
}

async fn run_index(
    path: &std::path::Path,
    source: Arc<dyn ObjectSource>,
    full: bool,
) -> (IndexReport, Vec<IndexEvent>) {
    let mut events = Vec::new();
    let report = index(path, source, options(full), &mut |e| events.push(e))
        .await
        .unwrap();
    (report, events)
}

/// (kind, recording) pairs, sorted, without the bytes only a catalog carries.
fn answers(events: Vec<ScanEvent>) -> Vec<(bool, String, Recording)> {
    let mut out: Vec<_> = events
        .into_iter()
        .filter_map(|e| match e {
            ScanEvent::Recording(r) => Some((true, *r)),
            ScanEvent::Unchecked(r) => Some((false, *r)),
            ScanEvent::Skipped(_) => None,
        })
        .map(|(matched, mut r)| {
            r.sidecar_body = None;
            (matched, format!("{}{}", r.folder, r.recording_id), r)
        })
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    out
}

async fn live(source: Arc<dyn ObjectSource>, filter: &RecordingFilter) -> Vec<ScanEvent> {
    let options = ScanOptions {
        filter: filter.clone(),
        ..ScanOptions::default()
    };
    scan(source, options).try_collect().await.unwrap()
}

async fn from_catalog(path: &std::path::Path, filter: &RecordingFilter) -> Vec<ScanEvent> {
    let query = Query {
        filter: filter.clone(),
        sort: Sort::Time,
        source_id: None,
    };
    recordings(path, query)
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// A random filter over the values the export really has.
fn random_filter(export: &Export, seed: u64) -> RecordingFilter {
    let mut rng = Rng::new(seed);
    let mut f = RecordingFilter::default();
    let pick = |rng: &mut Rng| {
        export.recordings[rng.below(export.recordings.len() as u64) as usize].clone()
    };
    let start = export.spec.start;
    let days = i64::from(export.spec.days);
    if rng.chance(0.5) {
        let from = start + Duration::minutes(rng.below((days * 24 * 60) as u64) as i64);
        let to = from + Duration::minutes(30 + rng.below(days as u64 * 24 * 60) as i64);
        f.range = TimeRange {
            from: rng.chance(0.8).then_some(from),
            to: rng.chance(0.8).then_some(to),
        };
    }
    if rng.chance(0.3) {
        f.orgs = vec![export.orgs[rng.below(export.orgs.len() as u64) as usize].to_uppercase()];
    }
    if rng.chance(0.15) {
        f.conversations = id_set([
            pick(&mut rng).conversation_id,
            pick(&mut rng).conversation_id,
        ]);
    }
    if rng.chance(0.1) {
        f.recordings = id_set([pick(&mut rng).recording_id.to_uppercase()]);
    }
    if rng.chance(0.3) {
        f.users = pick(&mut rng).users.into_iter().take(1).collect();
    }
    if rng.chance(0.25) {
        f.queues = pick(&mut rng).queues.into_iter().take(1).collect();
    }
    if rng.chance(0.2) {
        f.wrapup_codes = pick(&mut rng).wrapup_codes.into_iter().take(1).collect();
    }
    if rng.chance(0.25) {
        f.media_types = vec![pick(&mut rng).media_type.to_lowercase()];
    }
    if rng.chance(0.2) {
        f.directions = vec![pick(&mut rng).direction.to_uppercase()];
    }
    if rng.chance(0.3)
        && let Some(ani) = pick(&mut rng).ani
    {
        // The national form, the international one, or as written.
        let digits: String = ani.chars().filter(char::is_ascii_digit).collect();
        f.anis = vec![match rng.below(3) {
            0 => digits[digits.len().saturating_sub(10)..].to_owned(),
            1 => format!("+{digits}"),
            _ => ani,
        }];
    }
    if rng.chance(0.15)
        && let Some(dnis) = pick(&mut rng).dnis
    {
        f.dnis = vec![dnis];
    }
    if rng.chance(0.15)
        && let Some(m) = pick(&mut rng).message_type
    {
        f.message_types = vec![m.to_owned()];
    }
    if rng.chance(0.15) {
        f.min_duration_ms = Some(rng.below(600_000));
    }
    if rng.chance(0.15) {
        f.max_duration_ms = Some(rng.below(900_000));
    }
    if rng.chance(0.1) {
        f.providers = vec!["EDGE".into()];
    }
    if rng.chance(0.1) {
        f.languages = vec!["en-us".into()];
    }
    if rng.chance(0.1) {
        f.shard = Some(Shard::new(rng.below(3) as u32, 3).unwrap());
    }
    f
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    export: Export,
    source: Arc<dyn ObjectSource>,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> &'static std::sync::Mutex<Fixture> {
    static FIXTURE: std::sync::OnceLock<std::sync::Mutex<Fixture>> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let export = Export::generate(spec(4));
        let source: Arc<dyn ObjectSource> = memory(&export);
        let rt = runtime();
        rt.block_on(run_index(&path, source.clone(), false));
        std::sync::Mutex::new(Fixture {
            _dir: dir,
            path,
            export,
            source,
            rt,
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// For random filter combinations over an export with padded and unpadded
    /// partitions, orphans and invalid sidecars, the catalog answers exactly what a live
    /// listing does: the same recordings, matched or unchecked alike, equal field by field.
    #[test]
    fn catalog_answers_equal_live_listings(seed in any::<u64>()) {
        let f = fixture().lock().unwrap();
        let filter = random_filter(&f.export, seed);
        let (live, catalog) = f.rt.block_on(async {
            (live(f.source.clone(), &filter).await, from_catalog(&f.path, &filter).await)
        });
        let (live, catalog) = (answers(live), answers(catalog));
        // Counting in SQL alone, where the query allows it, finds the same numbers.
        let query = Query { filter: filter.clone(), ..Query::default() };
        if let Some(counted) = crate::query::count_exact(&f.path, &query).unwrap() {
            let matched = catalog.iter().filter(|(m, _, _)| *m).count() as u64;
            prop_assert_eq!(counted, (matched, catalog.len() as u64 - matched), "filter {:?}", filter);
        }
        prop_assert_eq!(live.len(), catalog.len(), "filter {:?}", filter);
        for (a, b) in live.iter().zip(&catalog) {
            prop_assert_eq!(a, b, "filter {:?}", filter);
        }
    }
}

#[test]
fn the_unfiltered_catalog_holds_every_recording_orphan_and_invalid_sidecar() {
    let f = fixture().lock().unwrap();
    let all = RecordingFilter::default();
    let (live, catalog) = f.rt.block_on(async {
        (
            live(f.source.clone(), &all).await,
            from_catalog(&f.path, &all).await,
        )
    });
    let (live, catalog) = (answers(live), answers(catalog));
    assert_eq!(live, catalog);
    assert_eq!(catalog.len(), f.export.recordings.len());
    assert!(catalog.iter().any(|(_, _, r)| r.orphan().is_some()));
    assert!(catalog.iter().any(|(_, _, r)| r.metadata_error().is_some()));
    let all = f.export.recordings.len() as u64;
    assert_eq!(
        crate::query::count_exact(&f.path, &Query::default()).unwrap(),
        Some((all, 0))
    );
    let calls = Query {
        filter: RecordingFilter {
            media_types: vec!["call".into()],
            ..RecordingFilter::default()
        },
        ..Query::default()
    };
    let exact = crate::query::count_exact(&f.path, &calls).unwrap().unwrap();
    assert_eq!(exact, crate::query::count(&f.path, &calls).unwrap());
    assert!(exact.0 > 0 && exact.1 > 0, "{exact:?}");
    let stats = crate::stats::stats(&f.path).unwrap();
    assert_eq!(stats.recordings, f.export.recordings.len() as u64);
    assert!(stats.orphans_no_media > 0 && stats.orphans_no_sidecar > 0);
    assert!(stats.invalid_sidecars.values().sum::<u64>() > 0);
    assert!(stats.skipped_keys.values().sum::<u64>() > 0, "{stats:?}");
}

#[test]
fn catalog_answers_are_in_conversation_time_order() {
    let f = fixture().lock().unwrap();
    let events =
        f.rt.block_on(from_catalog(&f.path, &RecordingFilter::default()));
    let times: Vec<DateTime<Utc>> = events
        .iter()
        .filter_map(|e| match e {
            ScanEvent::Recording(r) => Some(
                r.valid_metadata()
                    .map_or(r.hour.start(), |m| m.conversation_start_time),
            ),
            _ => None,
        })
        .collect();
    assert!(times.len() > 10);
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn a_second_index_reads_no_sidecar_and_lists_only_the_last_hour() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite");
    let export = Export::generate(spec(2));
    let memory = memory(&export);
    let counting = Arc::new(CountingSource::new(memory.clone() as Arc<dyn ObjectSource>));
    let (first, _) = rt.block_on(run_index(&path, counting.clone(), false));
    assert_eq!(first.recordings, export.recordings.len() as u64);
    assert_eq!(first.listed_from, None);
    let sidecars = export
        .recordings
        .iter()
        .filter(|r| r.sidecar_key.is_some())
        .count() as u64;
    assert_eq!(first.sidecars_read, sidecars);
    let newest = export
        .recordings
        .iter()
        .map(|r| r.conversation_start)
        .max()
        .unwrap();

    // Again, unchanged: no sidecar read, only the newest hour listed recursively.
    let before = counting.counts();
    let listed_before = counting.listed_prefixes().len();
    let (second, _) = rt.block_on(run_index(&path, counting.clone(), false));
    let after = counting.counts();
    assert_eq!(after.get - before.get, 0, "no sidecar is read again");
    assert_eq!(second.sidecars_read, 0);
    assert_eq!(second.removed, 0);
    let hour = second.listed_from.expect("incremental").start();
    let newest_hour =
        DateTime::from_timestamp(newest.timestamp() - newest.timestamp().rem_euclid(3600), 0);
    assert_eq!(Some(hour), newest_hour);
    let in_last_hour = export
        .recordings
        .iter()
        .filter(|r| r.conversation_start >= hour)
        .count() as u64;
    assert_eq!(second.recordings, in_last_hour);
    let recursive: Vec<String> = counting.listed_prefixes()[listed_before..]
        .iter()
        .filter(|p| p.contains("hour="))
        .cloned()
        .collect();
    assert!(
        recursive.iter().all(|p| {
            let h = hour.format("%H").to_string();
            let unpadded = hour.format("%-H").to_string();
            p.contains(&format!("hour={h}/")) || p.contains(&format!("hour={unpadded}/"))
        }),
        "only the newest hour is listed: {recursive:?}"
    );

    // One new hour, later: exactly its sidecars are read.
    let later = ExportSpec {
        seed: 99,
        start: hour + Duration::hours(3),
        days: 1,
        hour_step: 24,
        ..spec(1)
    };
    let added = Export::generate(later);
    let new: Vec<_> = added
        .recordings
        .iter()
        .filter(|r| r.conversation_start < hour + Duration::hours(4))
        .cloned()
        .collect();
    for (key, body) in added.objects() {
        if new.iter().any(|r| key.starts_with(&r.folder)) {
            memory.put_bytes(key, body);
        }
    }
    let before = counting.counts();
    let (third, _) = rt.block_on(run_index(&path, counting.clone(), false));
    let new_sidecars = new.iter().filter(|r| r.sidecar_key.is_some()).count() as u64;
    assert!(new_sidecars > 0);
    assert_eq!(third.sidecars_read, new_sidecars);
    assert_eq!(counting.counts().get - before.get, new_sidecars);
    let stats = crate::stats::stats(&path).unwrap();
    assert_eq!(
        stats.recordings,
        (export.recordings.len() + new.len()) as u64
    );
}

#[test]
fn a_changed_sidecar_is_read_again_and_a_removed_recording_leaves() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite");
    let export = Export::generate(spec(1));
    let memory = memory(&export);
    rt.block_on(run_index(&path, memory.clone(), false));
    let valid: Vec<_> = export
        .recordings
        .iter()
        .filter(|r| r.has_valid_sidecar() && r.media_key.is_some())
        .collect();
    let changed = valid[0];
    let gone = valid[1];
    let mut doc = changed.sidecar_json(7);
    doc["queueIds"] = serde_json::json!(["queue-new"]);
    memory.put_bytes(
        changed.sidecar_key.clone().unwrap(),
        serde_json::to_vec(&doc).unwrap(),
    );
    memory.delete(gone.media_key.as_deref().unwrap());
    memory.delete(gone.sidecar_key.as_deref().unwrap());
    let (report, _) = rt.block_on(run_index(&path, memory.clone(), true));
    assert_eq!(report.sidecars_read, 1);
    assert_eq!(report.removed, 1);
    let filter = RecordingFilter {
        queues: vec!["QUEUE-NEW".into()],
        ..RecordingFilter::default()
    };
    let found = answers(rt.block_on(from_catalog(&path, &filter)));
    let matched: Vec<_> = found.iter().filter(|(m, _, _)| *m).collect();
    assert_eq!(matched.len(), 1);
    assert_eq!(matched[0].2.recording_id, changed.recording_id);
}

#[test]
fn exports_hold_every_recording_in_each_format() {
    let f = fixture().lock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in [
        crate::export::Format::Ndjson,
        crate::export::Format::Csv,
        crate::export::Format::Parquet,
    ] {
        let out = dir.path().join(format!("{format:?}"));
        let n = crate::export::export(&f.path, format, &out).unwrap();
        assert_eq!(n, f.export.recordings.len() as u64);
        let meta = std::fs::metadata(&out).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(
            crate::export::export(&f.path, format, &out).is_err(),
            "never overwrites"
        );
    }
    let ndjson = std::fs::read_to_string(dir.path().join("Ndjson")).unwrap();
    assert_eq!(ndjson.lines().count(), f.export.recordings.len());
}

#[test]
fn hostile_catalog_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(
        &junk,
        b"not a database at all, just some bytes ............",
    )
    .unwrap();
    assert!(crate::Catalog::open(&junk).is_err());
    let other = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    assert!(matches!(
        crate::Catalog::open(&other),
        Err(crate::CatalogError::NotACatalog(_))
    ));
    assert!(matches!(
        crate::Catalog::create_or_open(&other),
        Err(crate::CatalogError::NotACatalog(_))
    ));
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&other, &link).unwrap();
    assert!(
        crate::Catalog::open(&link).is_err(),
        "links are not followed"
    );
    assert!(matches!(
        crate::Catalog::open(&dir.path().join("none")),
        Err(crate::CatalogError::Missing(_))
    ));

    // A real catalog with a value gcrec never writes: an error naming the row.
    let f = fixture().lock().unwrap();
    let copy = dir.path().join("copy.sqlite");
    rusqlite::Connection::open(&f.path)
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    rusqlite::Connection::open(&copy)
        .unwrap()
        .execute_batch("UPDATE recordings SET hour = hour + 7 WHERE id = 1;")
        .unwrap();
    let result = f.rt.block_on(async {
        recordings(&copy, Query::default())
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
    });
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("recording row 1") && message.contains("not an hour"),
        "{message}"
    );
}

/// Fails every listing under prefixes containing `poison`, as a network failure would.
#[derive(Debug)]
struct FailingListing {
    inner: Arc<dyn ObjectSource>,
    poison: std::sync::Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl ObjectSource for FailingListing {
    fn uri(&self, key: &str) -> String {
        self.inner.uri(key)
    }
    async fn list(
        &self,
        request: &gcrec_fetch::source::ListRequest,
    ) -> Result<gcrec_fetch::source::ListPage, gcrec_fetch::source::SourceError> {
        // Small pages, and the first page that reaches a poisoned key fails.
        let small = gcrec_fetch::source::ListRequest {
            max_keys: 10,
            ..request.clone()
        };
        let page = self.inner.list(&small).await?;
        let poison = self.poison.lock().unwrap().clone();
        if let Some(p) = poison
            && page.objects.iter().any(|o| o.key.contains(&p))
        {
            return Err(gcrec_fetch::source::SourceError::Remote {
                key: request.prefix.clone(),
                message: "connection reset".into(),
                retryable: true,
            });
        }
        Ok(page)
    }
    async fn head(
        &self,
        key: &str,
        request: &gcrec_fetch::source::GetRequest,
    ) -> Result<gcrec_fetch::source::ObjectInfo, gcrec_fetch::source::SourceError> {
        self.inner.head(key, request).await
    }
    async fn get(
        &self,
        key: &str,
        request: &gcrec_fetch::source::GetRequest,
    ) -> Result<gcrec_fetch::source::ObjectBody, gcrec_fetch::source::SourceError> {
        self.inner.get(key, request).await
    }
}

#[test]
fn an_interrupted_index_keeps_what_it_committed_and_the_next_run_reads_only_the_rest() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite");
    let export = Export::generate(ExportSpec {
        orgs: 1,
        padding: Padding::Padded,
        ..spec(3)
    });
    let memory = memory(&export);
    let failing = Arc::new(FailingListing {
        inner: memory.clone(),
        poison: std::sync::Mutex::new(Some("day=03/".into())),
    });
    let counting = Arc::new(CountingSource::new(failing.clone() as Arc<dyn ObjectSource>));
    let err = rt
        .block_on(index(&path, counting.clone(), options(false), &mut |_| {}))
        .unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    let committed: Vec<Recording> =
        answers(rt.block_on(from_catalog(&path, &RecordingFilter::default())))
            .into_iter()
            .map(|(_, _, r)| r)
            .collect();
    assert!(!committed.is_empty() && committed.len() < export.recordings.len());
    assert!(
        committed
            .iter()
            .all(|r| r.hour.start().format("%d").to_string() != "03"),
        "nothing past the failure"
    );
    let read_before = counting.counts().get;
    *failing.poison.lock().unwrap() = None;
    let (report, _) = rt.block_on(run_index(&path, counting.clone(), false));
    assert_eq!(report.listed_from, None, "the failed run set no watermark");
    let uncommitted_sidecars = export
        .recordings
        .iter()
        .filter(|r| r.sidecar_key.is_some())
        .filter(|r| !committed.iter().any(|c| c.recording_id == r.recording_id))
        .count() as u64;
    assert!(uncommitted_sidecars > 0);
    assert_eq!(report.sidecars_read, uncommitted_sidecars);
    assert_eq!(counting.counts().get - read_before, uncommitted_sidecars);
    assert_eq!(
        crate::stats::stats(&path).unwrap().recordings,
        export.recordings.len() as u64
    );
}

#[test]
fn an_older_catalog_is_migrated_forward_when_indexed_and_refused_for_reading_until_then() {
    let f = fixture().lock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.sqlite");
    rusqlite::Connection::open(&f.path)
        .unwrap()
        .execute("VACUUM INTO ?1", [old.to_str().unwrap()])
        .unwrap();
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch("DROP INDEX recordings_unusable; PRAGMA user_version = 1;")
        .unwrap();
    let err = crate::Catalog::open(&old).unwrap_err().to_string();
    assert!(
        err.contains("schema version 1") && err.contains("gcrec index"),
        "{err}"
    );
    crate::Catalog::create_or_open(&old).unwrap();
    let catalog = crate::Catalog::open(&old).unwrap();
    let version: i64 = catalog
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::SCHEMA_VERSION);
    let has_index: i64 = catalog
        .conn()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'recordings_unusable'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(has_index, 1);
    // A newer catalog than this build knows is refused, not guessed at.
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    assert!(matches!(
        crate::Catalog::open(&old),
        Err(crate::CatalogError::TooNew { found: 99, .. })
    ));
}
