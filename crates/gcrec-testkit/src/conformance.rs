//! The `ObjectSource` conformance suite: the behaviour every source must share, so that
//! code written against the local directory works unchanged against S3.
//!
//! A source's test file implements [`Fixture`] and invokes [`conformance_tests!`]
//! (`crate::conformance_tests`), which expands to one test per check below.

use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use gcrec_fetch::source::{
    ByteRange, GetRequest, ListPage, ListRequest, ObjectSource, SourceError, list_all,
};

use crate::rng::Rng;

/// A source under test, and a way to write into it.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// Stores (or replaces) an object.
    async fn put(&self, key: &str, body: &[u8]);
    /// The source that reads what [`Fixture::put`] wrote.
    fn source(&self) -> Arc<dyn ObjectSource>;
}

/// Size of the object used for streaming and range checks: not a multiple of any chunk.
pub const BIG: usize = (1 << 20) + 3;

/// The fixture's objects and their sizes. The keys are chosen so that byte order differs
/// from naive directory order (`a-b/c` < `a.b` < `a/b` < `a0`).
pub const OBJECTS: &[(&str, usize)] = &[
    ("a-b/c", 5),
    ("a.b", 3),
    ("a/b", 7),
    ("a0", 1),
    ("big.bin", BIG),
    ("dir/x", 11),
    ("dir/y", 13),
    ("dir/z/1", 17),
    ("dir/z/2", 19),
    ("empty", 0),
    ("p/01", 1),
    ("p/02", 1),
    ("p/03", 1),
    ("p/04", 1),
    ("p/05", 1),
    ("p/06/x", 1),
    ("p/07", 1),
    ("space name/file one.txt", 9),
    ("unicode/會話/录音-①.opus", 23),
];

/// The deterministic body of a fixture object.
pub fn body_of(key: &str, size: usize) -> Vec<u8> {
    Rng::derive(7, key).bytes(size)
}

/// Writes every fixture object.
pub async fn seed(f: &dyn Fixture) {
    for (key, size) in OBJECTS {
        f.put(key, &body_of(key, *size)).await;
    }
}

fn keys(page: &ListPage) -> Vec<&str> {
    page.objects.iter().map(|o| o.key.as_str()).collect()
}

/// A recursive listing returns every key, in byte order, with its size.
pub async fn recursive_listing_is_sorted_and_complete(f: &dyn Fixture) {
    let page = list_all(&*f.source(), ListRequest::recursive(""))
        .await
        .unwrap();
    let expected: Vec<&str> = OBJECTS.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys(&page), expected);
    for (o, (_, size)) in page.objects.iter().zip(OBJECTS) {
        assert_eq!(o.size, *size as u64, "{}", o.key);
    }
    assert!(page.common_prefixes.is_empty());
}

/// With the `/` delimiter, one level is listed and deeper keys fold into prefixes.
pub async fn delimiter_listing_groups_common_prefixes(f: &dyn Fixture) {
    let s = f.source();
    let root = list_all(&*s, ListRequest::children("")).await.unwrap();
    assert_eq!(keys(&root), ["a.b", "a0", "big.bin", "empty"]);
    assert_eq!(
        root.common_prefixes,
        ["a-b/", "a/", "dir/", "p/", "space name/", "unicode/"]
    );
    let dir = list_all(&*s, ListRequest::children("dir/")).await.unwrap();
    assert_eq!(keys(&dir), ["dir/x", "dir/y"]);
    assert_eq!(dir.common_prefixes, ["dir/z/"]);
    let partial = list_all(&*s, ListRequest::children("di")).await.unwrap();
    assert!(partial.objects.is_empty());
    assert_eq!(partial.common_prefixes, ["dir/"]);
    let mid = list_all(&*s, ListRequest::recursive("dir/z"))
        .await
        .unwrap();
    assert_eq!(keys(&mid), ["dir/z/1", "dir/z/2"]);
    let none = list_all(&*s, ListRequest::children("nothing-here/"))
        .await
        .unwrap();
    assert!(none.objects.is_empty() && none.common_prefixes.is_empty());
}

async fn paged(s: &dyn ObjectSource, base: ListRequest, max: usize) -> (ListPage, usize) {
    let mut all = ListPage::default();
    let mut request = ListRequest {
        max_keys: max,
        ..base
    };
    let mut pages = 0;
    loop {
        let page = s.list(&request).await.unwrap();
        pages += 1;
        assert!(
            page.objects.len() + page.common_prefixes.len() <= max,
            "a page of max_keys={max} held more"
        );
        all.objects.extend(page.objects);
        all.common_prefixes.extend(page.common_prefixes);
        match page.next {
            Some(token) => request.continuation = Some(token),
            None => return (all, pages),
        }
        assert!(pages < 100, "pagination does not end");
    }
}

/// Small pages, followed by their continuation tokens, list exactly what one page does,
/// including across common prefixes.
pub async fn pagination_yields_the_same_listing(f: &dyn Fixture) {
    let s = f.source();
    for base in [
        ListRequest::recursive(""),
        ListRequest::children(""),
        ListRequest::children("p/"),
    ] {
        let whole = list_all(&*s, base.clone()).await.unwrap();
        for max in [1, 2, 5] {
            let (all, pages) = paged(&*s, base.clone(), max).await;
            assert_eq!(keys(&all), keys(&whole), "{base:?} max_keys={max}");
            assert_eq!(
                all.common_prefixes, whole.common_prefixes,
                "{base:?} max_keys={max}"
            );
            let items = whole.objects.len() + whole.common_prefixes.len();
            assert!(
                pages >= items.div_ceil(max),
                "{base:?} max_keys={max}: {pages} pages"
            );
        }
    }
}

/// HEAD gives the size and an ETag; a missing key is `NotFound`.
pub async fn head_reports_size_and_etag(f: &dyn Fixture) {
    let s = f.source();
    let info = s.head("dir/x", &GetRequest::default()).await.unwrap();
    assert_eq!(info.key, "dir/x");
    assert_eq!(info.size, 11);
    assert!(info.etag.is_some());
    let err = s
        .head("dir/nope", &GetRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::NotFound { .. }), "{err:?}");
}

async fn read(
    s: &dyn ObjectSource,
    key: &str,
    range: Option<ByteRange>,
) -> Result<Vec<u8>, SourceError> {
    let request = GetRequest {
        range,
        ..GetRequest::default()
    };
    let body = s.get(key, &request).await?;
    let expected = body.range.end - body.range.start;
    let chunks: Vec<_> = body.stream.try_collect().await?;
    let bytes = chunks.concat();
    assert_eq!(
        bytes.len() as u64,
        expected,
        "{key}: body length and range disagree"
    );
    Ok(bytes)
}

/// Whole and ranged GETs return exactly the right bytes; ranges clamp at the end like
/// S3's; a range starting past the end fails.
pub async fn get_streams_whole_and_ranged_bodies(f: &dyn Fixture) {
    let s = f.source();
    let big = body_of("big.bin", BIG);
    assert_eq!(read(&*s, "big.bin", None).await.unwrap(), big);
    for (range, want) in [
        (ByteRange::new(0, 10), &big[..10]),
        (ByteRange::new(100, BIG as u64), &big[100..]),
        (ByteRange::from(1 << 20), &big[1 << 20..]),
        (ByteRange::new(5, 1 << 40), &big[5..]),
        (ByteRange::new(BIG as u64 - 1, BIG as u64), &big[BIG - 1..]),
    ] {
        assert_eq!(
            read(&*s, "big.bin", Some(range)).await.unwrap(),
            want,
            "{range}"
        );
    }
    let err = read(&*s, "big.bin", Some(ByteRange::from(BIG as u64)))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::InvalidRange { .. }), "{err:?}");
    assert!(read(&*s, "empty", None).await.unwrap().is_empty());
    let err = read(&*s, "missing", None).await.unwrap_err();
    assert!(matches!(err, SourceError::NotFound { .. }), "{err:?}");
}

/// A GET pinned to an ETag fails once the object is replaced, instead of mixing versions.
pub async fn if_match_detects_a_replaced_object(f: &dyn Fixture) {
    let s = f.source();
    let etag = s
        .head("dir/y", &GetRequest::default())
        .await
        .unwrap()
        .etag
        .unwrap();
    let pinned = GetRequest {
        if_match: Some(etag.clone()),
        ..GetRequest::default()
    };
    s.get("dir/y", &pinned).await.unwrap();
    f.put("dir/y", b"replaced with other bytes").await;
    let err = s.get("dir/y", &pinned).await.unwrap_err();
    assert!(matches!(err, SourceError::Changed { .. }), "{err:?}");
    let now = s.head("dir/y", &GetRequest::default()).await.unwrap();
    assert_ne!(now.etag.unwrap(), etag);
}

/// Keys with spaces and non-ASCII characters list and read back unchanged.
pub async fn unicode_and_space_keys_round_trip(f: &dyn Fixture) {
    let s = f.source();
    for key in ["unicode/會話/录音-①.opus", "space name/file one.txt"] {
        let size = OBJECTS.iter().find(|(k, _)| *k == key).unwrap().1;
        assert_eq!(read(&*s, key, None).await.unwrap(), body_of(key, size));
    }
    let page = list_all(&*s, ListRequest::children("unicode/"))
        .await
        .unwrap();
    assert_eq!(page.common_prefixes, ["unicode/會話/"]);
}

/// Keys that would climb out of a directory are never read.
pub async fn unsafe_keys_are_not_read(f: &dyn Fixture) {
    let s = f.source();
    for key in ["../etc/passwd", "dir/../dir/x", "/dir/x", "dir//x", ""] {
        assert!(read(&*s, key, None).await.is_err(), "{key:?} was read");
    }
}

/// Expands to one `#[tokio::test]` per conformance check. `$make` is an expression
/// (possibly `async`) evaluating to a fresh, empty [`Fixture`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            recursive_listing_is_sorted_and_complete,
            delimiter_listing_groups_common_prefixes,
            pagination_yields_the_same_listing,
            head_reports_size_and_etag,
            get_streams_whole_and_ranged_bodies,
            if_match_detects_a_replaced_object,
            unicode_and_space_keys_round_trip,
            unsafe_keys_are_not_read
        );
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                let fixture = $make;
                $crate::conformance::seed(&fixture).await;
                $crate::conformance::$check(&fixture).await;
            }
        )*
    };
}
