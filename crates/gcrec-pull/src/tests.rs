//! The engine, tested without the binary: an in-memory export, the fault-injecting
//! source, the retry layer, cancellation, the byte budget, a wrong byte, holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gcrec_decrypt::keys::{AesKey, Keyring};
use gcrec_decrypt::object::DecryptOptions;
use gcrec_fetch::scan::ScanOptions;
use gcrec_fetch::source::{
    GetRequest, ListPage, ListRequest, MemoryObject, MemorySource, ObjectBody, ObjectInfo,
    ObjectSource, RetryPolicy, RetryingSource, SavedObjectMetadata, SourceError,
};
use gcrec_fetch::transfer::{ByteBudget, TransferOptions};
use gcrec_testkit::faults::{Faults, FaultySource};
use gcrec_testkit::{Export, ExportSpec};
use tokio_util::sync::CancellationToken;

use crate::error::PullError;
use crate::hold::{HoldAction, HoldMode, run_holds};
use crate::manifest::{Index, Status};
use crate::object::{DecryptContext, ObjectJob, decrypt_object};
use crate::outpath::OutputLayout;
use crate::pull::{PullEvent, PullOptions, PullPlan, PullReport, RecordingOutcome, Target};
use crate::release::TEMP_MARKER;
use crate::verify::verify_dir;

const AES_KEY: [u8; 32] = [42; 32];

fn export(seed: u64) -> Export {
    Export::generate(ExportSpec {
        seed,
        days: 1,
        hour_step: 3,
        conversations_per_hour: 2,
        ..ExportSpec::default()
    })
}

fn memory(export: &Export) -> Arc<MemorySource> {
    export.memory_source()
}

/// Encrypts `body` as S3EC V2 with [`AES_KEY`] (AES/GCM wrap), as a memory object.
fn s3ec(body: &[u8]) -> MemoryObject {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object");
    gcrec_testkit::s3ec::encrypt(
        body,
        &path,
        gcrec_testkit::s3ec::Version::V2,
        &gcrec_testkit::s3ec::Wrap::AesGcm(AES_KEY),
    )
    .unwrap();
    let mut companion = path.as_os_str().to_owned();
    companion.push(gcrec_fetch::source::OBJECT_METADATA_SUFFIX);
    let saved: SavedObjectMetadata =
        serde_json::from_slice(&std::fs::read(companion).unwrap()).unwrap();
    MemoryObject {
        body: std::fs::read(&path).unwrap().into(),
        user_metadata: saved.user_metadata,
        ..MemoryObject::default()
    }
}

fn keyring() -> Keyring {
    let mut keys = Keyring::new();
    keys.aes.push(AesKey {
        key: zeroize::Zeroizing::new(AES_KEY),
        fingerprint: "test".into(),
        source: "test".into(),
    });
    keys
}

fn context() -> DecryptContext {
    DecryptContext::new(keyring(), None, DecryptOptions::default())
}

fn options(out: &Path) -> PullOptions {
    PullOptions {
        target: Target::Dir(out.to_owned()),
        layout: OutputLayout::Mirror,
        keep_encrypted: false,
        verify_existing: false,
        dry_run: false,
        include_unchecked: false,
        jobs: crate::concurrency::Jobs::Fixed(8),
        scan: ScanOptions::default(),
        source_dir: None,
        command_line: vec!["test".into()],
    }
}

async fn pull(
    source: Arc<dyn ObjectSource>,
    ctx: DecryptContext,
    out: &Path,
) -> (PullReport, BTreeMap<String, RecordingOutcome>) {
    let plan = PullPlan::new(source, ctx, options(out)).unwrap();
    let mut outcomes = BTreeMap::new();
    let report = plan
        .execute(&mut |event| {
            if let PullEvent::Recording { entry, outcome } = event {
                outcomes.insert(entry.key.clone(), outcome);
            }
        })
        .await
        .unwrap();
    (report, outcomes)
}

fn temp_files(dir: &Path) -> Vec<String> {
    crate::manifest::files_under(dir, dir)
        .unwrap()
        .into_iter()
        .filter(|f| f.contains(TEMP_MARKER))
        .collect()
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_break_mid_stream_resume_to_identical_bytes() {
    let export = export(11);
    let faulty = FaultySource::new(
        memory(&export),
        Faults {
            failing_calls: 3,
            breaking_bodies: 6,
            break_after: 700,
            end_silently: false,
        },
    );
    let source = Arc::new(RetryingSource::new(faulty, fast_retries()));
    let out = tempfile::tempdir().unwrap();
    let (report, _) = pull(source, context(), out.path()).await;
    assert_eq!(report.totals.failed, 0, "{:?}", report.failures);
    let mut checked = 0;
    for r in &export.recordings {
        if let Some(key) = &r.media_key
            && r.has_valid_sidecar()
        {
            assert!(
                std::fs::read(out.path().join(key)).unwrap() == r.media_body(),
                "{key}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked} recordings checked");
    assert!(verify_dir(out.path(), 2).await.unwrap().is_clean());
}

/// `count` plain Ogg-looking recordings of `size` bytes, each in its own conversation.
fn large_recordings(count: u32, size: u32) -> MemorySource {
    let source = MemorySource::new();
    let folder = "o/year=2024/month=03/day=01/hour=00/conversation_id=c";
    for i in 0..count {
        let mut body = b"OggS".to_vec();
        body.extend((0..size).map(|n: u32| (n * 7 + i) as u8));
        source.put_bytes(format!("{folder}{i}/r{i}.opus"), body);
    }
    source
}

/// A context fetching objects of 256 KiB and more in 64 KiB parts, four at a time,
/// within a budget of `budget` bytes.
fn small_parts_context(budget: &ByteBudget) -> DecryptContext {
    let mut ctx = context();
    ctx.transfer = TransferOptions {
        part_threshold: 256 * 1024,
        part_size: 64 * 1024,
        scale_parts: false,
        parts_per_object: 4,
        expect_sse: None,
    };
    ctx.budget = budget.clone();
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_budget_is_never_exceeded() {
    let source = large_recordings(4, 3 * 1024 * 1024);
    let budget = ByteBudget::new(192 * 1024);
    let ctx = small_parts_context(&budget);
    let out = tempfile::tempdir().unwrap();
    let (report, _) = pull(Arc::new(source), ctx, out.path()).await;
    assert_eq!(report.totals.pulled, 4, "{:?}", report.failures);
    assert!(budget.high_water() > 0, "the parts went through the budget");
    assert!(
        budget.high_water() <= budget.bytes(),
        "high-water mark {} over the budget {}",
        budget.high_water(),
        budget.bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_large_objects_than_decryptors_never_wait_on_each_others_budget() {
    // Twelve objects in ranged parts, two decryptors, a budget of four parts: an object
    // waiting for a decryptor must not hold part budget the decrypting ones need.
    let source = large_recordings(12, 1024 * 1024);
    let mut ctx = small_parts_context(&ByteBudget::new(256 * 1024));
    ctx.decrypt_slots = Arc::new(tokio::sync::Semaphore::new(2));
    let out = tempfile::tempdir().unwrap();
    let (report, _) = tokio::time::timeout(
        Duration::from_secs(120),
        pull(Arc::new(source), ctx, out.path()),
    )
    .await
    .expect("the pull finished: no download waited forever for budget another held");
    assert_eq!(report.totals.pulled, 12, "{:?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_byte_never_reaches_the_output_and_the_output_still_verifies() {
    let export = export(12);
    let source = memory(&export);
    let media: Vec<&gcrec_testkit::GenRecording> = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some() && r.has_valid_sidecar())
        .collect();
    // Two recordings encrypted; one of them with a byte flipped in the middle.
    let good = media[0];
    let bad = media[1];
    source.put(good.media_key.clone().unwrap(), s3ec(&good.media_body()));
    let mut flipped = s3ec(&bad.media_body());
    let mut bytes = flipped.body.to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x04;
    flipped.body = bytes.into();
    source.put(bad.media_key.clone().unwrap(), flipped);
    let out = tempfile::tempdir().unwrap();
    let (report, outcomes) = pull(source, context(), out.path()).await;
    assert_eq!(report.totals.failed, 1);
    let bad_key = bad.media_key.as_ref().unwrap();
    assert_eq!(outcomes[bad_key], RecordingOutcome::Failed);
    assert!(
        !out.path().join(bad_key).exists(),
        "unauthenticated bytes released"
    );
    assert_eq!(
        std::fs::read(out.path().join(good.media_key.as_ref().unwrap())).unwrap(),
        good.media_body()
    );
    let index = Index::open(out.path()).unwrap();
    let entry = index.get(bad_key).unwrap();
    assert_eq!(entry.status, Some(Status::Failed));
    assert!(entry.error.unwrap().contains("S3 Encryption Client"));
    assert!(temp_files(out.path()).is_empty());
    // The failed recording's sidecar was written and is in the manifest: a fresh
    // output verifies.
    let verified = verify_dir(out.path(), 2).await.unwrap();
    assert!(verified.is_clean(), "{:?}", verified.files);
}

/// A source whose GETs never answer (a hung connection).
#[derive(Debug)]
struct Hanging(Arc<MemorySource>);

#[async_trait]
impl ObjectSource for Hanging {
    fn uri(&self, key: &str) -> String {
        self.0.uri(key)
    }
    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError> {
        self.0.list(request).await
    }
    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError> {
        self.0.head(key, request).await
    }
    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError> {
        if key.ends_with("_metadata.json") {
            return self.0.get(key, request).await;
        }
        futures::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_mid_run_is_typed_and_leaves_no_temporary_files() {
    let export = export(13);
    let source: Arc<dyn ObjectSource> = Arc::new(Hanging(memory(&export)));
    // One object: the typed error.
    let ctx = Arc::new(context());
    let cancel = ctx.cancel.clone();
    let out = tempfile::tempdir().unwrap();
    let key = export
        .recordings
        .iter()
        .find_map(|r| r.media_key.clone())
        .unwrap();
    let job = ObjectJob {
        key: key.clone(),
        listed_size: None,
        instruction: None,
        expect_etag: None,
        root: out.path().to_owned(),
        destination: out.path().join("r.opus"),
        keep_encrypted: None,
    };
    let task = tokio::spawn(decrypt_object(source.clone(), job, ctx));
    tokio::time::sleep(Duration::from_millis(50)).await;
    cancel.cancel();
    let err = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("cancellation ends a hung download")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, PullError::Cancelled), "{err}");
    // A whole run: interrupted, nothing recorded as failed, no temporary files.
    let ctx = context();
    let cancel: CancellationToken = ctx.cancel.clone();
    let plan = PullPlan::new(source, ctx, options(out.path())).unwrap();
    let run = tokio::spawn(async move { plan.execute(&mut |_| {}).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    let report = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run ends once cancelled")
        .unwrap()
        .unwrap();
    assert!(report.interrupted);
    assert_eq!(report.totals.failed, 0, "{:?}", report.failures);
    assert!(temp_files(out.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_go_through_the_source_with_retries() {
    let export = export(14);
    let memory = memory(&export);
    memory.enable_object_lock();
    let faulty = FaultySource::new(
        memory.clone(),
        Faults {
            failing_calls: 5,
            ..Faults::default()
        },
    );
    let counting = Arc::new(gcrec_fetch::source::CountingSource::new(faulty));
    let source = Arc::new(RetryingSource::new(counting.clone(), fast_retries()));
    let mut actions = Vec::new();
    let listed = source.clone();
    let totals = run_holds(
        source,
        || gcrec_fetch::scan::scan_recordings(listed, ScanOptions::default()),
        HoldMode::On,
        false,
        4,
        &mut |o| actions.push(o.action),
    )
    .await
    .unwrap();
    assert!(totals.objects > 5);
    assert_eq!(totals.changed, totals.objects, "{actions:?}");
    assert_eq!(totals.held, totals.objects);
    assert!(actions.iter().all(|a| *a == HoldAction::Changed));
    // Every object was read, set and read back; the five injected failures all hit the
    // first call (the Object Lock configuration), which was retried until it answered.
    assert_eq!(counting.counts().legal_hold, 3 * totals.objects + 6);
    // A store without Object Lock is refused before anything is listed.
    let plain = memory_without_lock(&export);
    let listed = plain.clone();
    let err = run_holds(
        plain,
        || gcrec_fetch::scan::scan_recordings(listed, ScanOptions::default()),
        HoldMode::On,
        false,
        1,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("does not have S3 Object Lock"),
        "{err}"
    );
}

fn memory_without_lock(export: &Export) -> Arc<dyn ObjectSource> {
    memory(export)
}

mod fuzz {
    //! Fuzz-style property tests of the manifest reader and the path check every manifest
    //! path goes through. Bounded in `scripts/test`; for a longer local run:
    //! `PROPTEST_CASES=100000 cargo test -p gcrec-pull --release fuzz`.

    use proptest::prelude::*;

    use crate::manifest::{Index, MANIFEST_NAME, inside};

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ -~]{0,200}",
            (any::<String>(), prop::sample::select(vec!["ok", "failed", "no_media", "x"])).prop_map(
                |(key, status)| serde_json::json!({"type": "recording", "key": key, "status": status,
                    "source": "s", "organization_id": "o", "conversation_id": "c", "recording_id": "r",
                    "outputs": [{"path": key, "size": 1, "sha256": "00"}]}).to_string()
            ),
            Just("{\"type\":\"recording\",\"key\":".to_owned()),
            Just("{\"type\":\"run\"}".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn fuzz_manifest_lines_never_panic(lines in prop::collection::vec(line(), 0..40)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(MANIFEST_NAME), lines.join("\n")).unwrap();
            let index = Index::open(dir.path()).unwrap();
            let entries: Vec<_> = index.entries().collect();
            prop_assert_eq!(entries.len(), index.len());
            for e in &entries {
                prop_assert_eq!(index.get(&e.key).map(|g| g.key), Some(e.key.clone()));
            }
        }

        #[test]
        fn fuzz_manifest_paths_never_leave_the_directory(rel in "[a-z./\\\\]{0,24}|\\PC{0,12}") {
            let dir = tempfile::tempdir().unwrap();
            if let Some(path) = inside(dir.path(), &rel) {
                prop_assert!(path.starts_with(dir.path()));
                prop_assert!(path.components().all(|c| !matches!(c, std::path::Component::ParentDir)));
            }
        }
    }
}
