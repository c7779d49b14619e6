//! A wrapper that counts the calls made to a source: the proof that pruning lists only
//! what it promises, and the figures behind `-v` statistics.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{GetRequest, ListPage, ListRequest, ObjectBody, ObjectInfo, ObjectSource, SourceError};

/// Calls made so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CallCounts {
    /// List calls (one per page).
    pub list: u64,
    /// HEAD calls.
    pub head: u64,
    /// GET calls.
    pub get: u64,
    /// Entries (objects and common prefixes) that list calls returned.
    pub listed_entries: u64,
    /// Legal-hold calls (reading the bucket's Object Lock configuration, reading and
    /// setting holds).
    pub legal_hold: u64,
}

/// Wraps a source and counts its calls. Listing prefixes are recorded too.
#[derive(Debug)]
pub struct CountingSource<S> {
    inner: S,
    list: AtomicU64,
    head: AtomicU64,
    get: AtomicU64,
    entries: AtomicU64,
    holds: AtomicU64,
    listed: std::sync::Mutex<Vec<String>>,
}

impl<S> CountingSource<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            list: AtomicU64::new(0),
            head: AtomicU64::new(0),
            get: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            holds: AtomicU64::new(0),
            listed: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The calls so far.
    pub fn counts(&self) -> CallCounts {
        CallCounts {
            list: self.list.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            listed_entries: self.entries.load(Ordering::Relaxed),
            legal_hold: self.holds.load(Ordering::Relaxed),
        }
    }

    /// The prefix of every list call so far, in call order.
    pub fn listed_prefixes(&self) -> Vec<String> {
        self.listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: ObjectSource> ObjectSource for CountingSource<S> {
    fn uri(&self, key: &str) -> String {
        self.inner.uri(key)
    }

    fn region(&self) -> Option<String> {
        self.inner.region()
    }

    fn retries(&self) -> u64 {
        self.inner.retries()
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError> {
        self.list.fetch_add(1, Ordering::Relaxed);
        self.listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.prefix.clone());
        let page = self.inner.list(request).await?;
        self.entries.fetch_add(
            (page.objects.len() + page.common_prefixes.len()) as u64,
            Ordering::Relaxed,
        );
        Ok(page)
    }

    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError> {
        self.head.fetch_add(1, Ordering::Relaxed);
        self.inner.head(key, request).await
    }

    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError> {
        self.get.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key, request).await
    }

    async fn object_lock_enabled(&self) -> Result<bool, SourceError> {
        self.holds.fetch_add(1, Ordering::Relaxed);
        self.inner.object_lock_enabled().await
    }

    async fn legal_hold(&self, key: &str, version_id: Option<&str>) -> Result<bool, SourceError> {
        self.holds.fetch_add(1, Ordering::Relaxed);
        self.inner.legal_hold(key, version_id).await
    }

    async fn set_legal_hold(
        &self,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<(), SourceError> {
        self.holds.fetch_add(1, Ordering::Relaxed);
        self.inner.set_legal_hold(key, version_id, on).await
    }
}
