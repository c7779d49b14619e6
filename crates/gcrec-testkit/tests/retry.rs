//! The retry layer over a failure-injecting source: transient failures and broken bodies
//! end in identical bytes; a replaced object ends in an error, never in spliced bytes;
//! attempts are bounded.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use gcrec_fetch::source::{
    GetRequest, ListRequest, MemorySource, ObjectSource, RetryPolicy, RetryingSource, SourceError,
    list_all,
};
use gcrec_testkit::faults::{Faults, FaultySource};
use gcrec_testkit::rng::Rng;

const SIZE: usize = 1_000_003;

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn setup(faults: Faults) -> (Arc<MemorySource>, Arc<FaultySource>, Vec<u8>) {
    let memory = Arc::new(MemorySource::new());
    let body = Rng::new(5).bytes(SIZE);
    memory.put_bytes("org/rec.opus", body.clone());
    let faulty = Arc::new(FaultySource::new(memory.clone(), faults));
    (memory, faulty, body)
}

async fn read_all(source: &dyn ObjectSource) -> Result<Vec<u8>, SourceError> {
    let body = source.get("org/rec.opus", &GetRequest::default()).await?;
    let chunks: Vec<_> = body.stream.try_collect().await?;
    Ok(chunks.concat())
}

#[tokio::test]
async fn transient_failures_and_broken_bodies_end_in_identical_bytes() {
    for end_silently in [false, true] {
        let faults = Faults {
            failing_calls: 3,
            breaking_bodies: 3,
            break_after: 300_000,
            end_silently,
        };
        let (_, faulty, body) = setup(faults);
        let retrying = RetryingSource::new(faulty.clone(), fast(6));
        let got = read_all(&retrying).await.unwrap();
        assert!(got == body, "end_silently={end_silently}: bytes differ");
        // 3 failed calls, the first GET, then 3 resumed GETs.
        assert_eq!(faulty.calls(), 7, "end_silently={end_silently}");
    }
}

#[tokio::test]
async fn listing_and_head_are_retried_too() {
    let (_, faulty, _) = setup(Faults {
        failing_calls: 2,
        ..Faults::default()
    });
    let retrying = RetryingSource::new(faulty.clone(), fast(3));
    let page = list_all(&retrying, ListRequest::recursive("org/"))
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
    assert_eq!(
        retrying
            .head("org/rec.opus", &GetRequest::default())
            .await
            .unwrap()
            .size,
        SIZE as u64
    );
}

#[tokio::test]
async fn attempts_are_bounded_and_the_error_says_so() {
    let (_, faulty, _) = setup(Faults {
        failing_calls: 100,
        ..Faults::default()
    });
    let retrying = RetryingSource::new(faulty.clone(), fast(4));
    let err = read_all(&retrying).await.unwrap_err();
    assert!(
        err.to_string().contains("gave up after 4 attempts"),
        "{err}"
    );
    assert!(err.to_string().contains("injected 503 SlowDown"), "{err}");
    assert_eq!(faulty.calls(), 4);
    // Bodies too: one break per GET, always.
    let (_, faulty, _) = setup(Faults {
        breaking_bodies: 100,
        break_after: 10_000,
        ..Faults::default()
    });
    let err = read_all(&RetryingSource::new(faulty, fast(3)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
}

#[tokio::test]
async fn an_object_replaced_mid_download_is_an_error_not_a_splice() {
    let (memory, faulty, _) = setup(Faults {
        breaking_bodies: 1,
        break_after: 400_000,
        ..Faults::default()
    });
    let replace = memory.clone();
    faulty.on_break(move || replace.put_bytes("org/rec.opus", Rng::new(6).bytes(SIZE)));
    let err = read_all(&RetryingSource::new(faulty, fast(5)))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Changed { .. }), "{err:?}");
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let (_, faulty, _) = setup(Faults::default());
    let retrying = RetryingSource::new(faulty.clone(), fast(5));
    let err = retrying
        .get("org/missing", &GetRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::NotFound { .. }));
    assert_eq!(faulty.calls(), 1);
}
