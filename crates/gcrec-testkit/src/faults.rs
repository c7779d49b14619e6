//! A source that fails on purpose (mountpoint-s3's failure-injecting client, in small):
//! transient errors on the first calls, bodies that break off or end short after a
//! number of bytes, and a hook that runs when a body breaks (to replace the object
//! mid-download). Used to test the retry layer without a network.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use gcrec_fetch::source::{
    GetRequest, ListPage, ListRequest, ObjectBody, ObjectInfo, ObjectSource, SourceError,
};

/// What to break.
#[derive(Debug, Default, Clone, Copy)]
pub struct Faults {
    /// The first this-many calls (list, head, get, together) fail with a transient error.
    pub failing_calls: u32,
    /// The first this-many bodies break off after `break_after` bytes.
    pub breaking_bodies: u32,
    /// Where bodies break.
    pub break_after: u64,
    /// Break by ending short (no error) instead of with a transient error.
    pub end_silently: bool,
}

type Hook = Box<dyn Fn() + Send + Sync>;

/// Wraps a source and injects [`Faults`].
pub struct FaultySource {
    inner: Arc<dyn ObjectSource>,
    faults: Faults,
    calls: AtomicU32,
    bodies: AtomicU32,
    on_break: Mutex<Option<Arc<Hook>>>,
}

impl std::fmt::Debug for FaultySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultySource")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl FaultySource {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectSource>, faults: Faults) -> Self {
        Self {
            inner,
            faults,
            calls: AtomicU32::new(0),
            bodies: AtomicU32::new(0),
            on_break: Mutex::new(None),
        }
    }

    /// Runs `hook` each time a body breaks.
    pub fn on_break(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.on_break.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Box::new(hook)));
    }

    /// Calls made so far (list, head and get).
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn transient(&self, key: &str) -> Result<(), SourceError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.faults.failing_calls {
            return Err(SourceError::Remote {
                key: key.to_owned(),
                message: "injected 503 SlowDown".into(),
                retryable: true,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectSource for FaultySource {
    fn uri(&self, key: &str) -> String {
        self.inner.uri(key)
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError> {
        self.transient(&request.prefix)?;
        self.inner.list(request).await
    }

    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError> {
        self.transient(key)?;
        self.inner.head(key, request).await
    }

    async fn object_lock_enabled(&self) -> Result<bool, SourceError> {
        self.transient("")?;
        self.inner.object_lock_enabled().await
    }

    async fn legal_hold(&self, key: &str, version_id: Option<&str>) -> Result<bool, SourceError> {
        self.transient(key)?;
        self.inner.legal_hold(key, version_id).await
    }

    async fn set_legal_hold(
        &self,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<(), SourceError> {
        self.transient(key)?;
        self.inner.set_legal_hold(key, version_id, on).await
    }

    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError> {
        self.transient(key)?;
        let body = self.inner.get(key, request).await?;
        if self.bodies.fetch_add(1, Ordering::SeqCst) >= self.faults.breaking_bodies {
            return Ok(body);
        }
        let limit = self.faults.break_after;
        let silent = self.faults.end_silently;
        let hook = self
            .on_break
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let key = key.to_owned();
        // Pass bytes through until the limit, then break once: end short, or fail.
        enum Phase {
            Flowing,
            FailNext,
            Done,
        }
        let reset = move || SourceError::Remote {
            key: key.clone(),
            message: "injected connection reset".into(),
            retryable: true,
        };
        let stream = futures::stream::unfold(
            (body.stream, 0u64, Phase::Flowing),
            move |(mut inner, sent, phase)| {
                let hook = hook.clone();
                let reset = reset.clone();
                async move {
                    match phase {
                        Phase::Done => None,
                        Phase::FailNext => Some((Err(reset()), (inner, sent, Phase::Done))),
                        Phase::Flowing => match inner.next().await {
                            Some(Ok(chunk)) if sent + chunk.len() as u64 > limit => {
                                if let Some(h) = &hook {
                                    h();
                                }
                                let keep = (limit - sent) as usize;
                                let after = if silent { Phase::Done } else { Phase::FailNext };
                                match (keep, silent) {
                                    (0, true) => None,
                                    (0, false) => Some((Err(reset()), (inner, sent, Phase::Done))),
                                    _ => Some((Ok(chunk.slice(..keep)), (inner, limit, after))),
                                }
                            }
                            Some(item) => {
                                let n = item.as_ref().map_or(0, |c| c.len() as u64);
                                Some((item, (inner, sent + n, Phase::Flowing)))
                            }
                            None => None,
                        },
                    }
                }
            },
        );
        Ok(ObjectBody {
            stream: Box::pin(stream),
            ..body
        })
    }
}
