//! Retries in one place, for every source.
//!
//! Transient failures (5xx, throttling, timeouts, connection failures) are retried with
//! exponential backoff and full jitter, up to a bounded number of attempts. Every request
//! has a deadline ([`RetryPolicy::request_timeout`]), and a body that stalls, or trickles
//! slower than [`RetryPolicy::min_rate`] over that long, is dropped and resumed: a
//! silent or hostile endpoint can slow a run down, never hang it. A body that
//! breaks off — with an error, or by ending short — continues with a ranged GET from the
//! last byte received, pinned to the ETag and version the first response had, so an
//! object replaced mid-download is reported ([`SourceError::Changed`]), never spliced.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use rand::Rng;

use super::{
    ByteRange, GetRequest, ListPage, ListRequest, ObjectBody, ObjectInfo, ObjectSource, SourceError,
};

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request (the first one included), and per body for resumes.
    pub max_attempts: u32,
    /// The first backoff step.
    pub base_delay: Duration,
    /// The largest backoff step.
    pub max_delay: Duration,
    /// How long one request may go unanswered, and a body without a byte.
    pub request_timeout: Duration,
    /// The slowest a body may be, in bytes per second averaged over `request_timeout`.
    pub min_rate: u64,
}

/// The default per-request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            min_rate: 1024,
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random wait up to `base × 2^attempt`, capped.
    fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        cap.mul_f64(rand::thread_rng().r#gen::<f64>())
    }

    /// Runs `op` until it succeeds, fails for good, or runs out of attempts, counting
    /// each retry in `retries`.
    async fn run<T, F, Fut>(
        &self,
        retries: &AtomicU64,
        key: &str,
        mut op: F,
    ) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        let mut attempt = 0;
        loop {
            let answer = match tokio::time::timeout(self.request_timeout, op()).await {
                Ok(answer) => answer,
                Err(_) => Err(SourceError::Remote {
                    key: key.to_owned(),
                    message: format!("no answer within {} s", self.request_timeout.as_secs_f64()),
                    retryable: true,
                }),
            };
            match answer {
                Err(e) if e.is_retryable() => {
                    attempt += 1;
                    if attempt >= self.max_attempts {
                        return Err(gave_up(key, attempt, e));
                    }
                    tracing::debug!(key, attempt, error = %e, "retrying");
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.delay(attempt)).await;
                }
                other => return other,
            }
        }
    }
}

fn gave_up(key: &str, attempts: u32, last: SourceError) -> SourceError {
    SourceError::Remote {
        key: key.to_owned(),
        message: format!("gave up after {attempts} attempts; last error: {last}"),
        retryable: false,
    }
}

/// Wraps a source with retries and resumable bodies.
#[derive(Debug)]
pub struct RetryingSource<S> {
    inner: Arc<S>,
    policy: RetryPolicy,
    retries: Arc<AtomicU64>,
}

impl<S> RetryingSource<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self {
            inner: Arc::new(inner),
            policy,
            retries: Arc::default(),
        }
    }
}

/// Where a resumable body is.
struct Resume<S> {
    inner: Arc<S>,
    policy: RetryPolicy,
    retries: Arc<AtomicU64>,
    key: String,
    pinned: GetRequest,
    stream: futures::stream::BoxStream<'static, Result<bytes::Bytes, SourceError>>,
    position: u64,
    end: u64,
    resumes: u32,
    done: bool,
    /// Where the current rate window started, and the position then.
    window: (Instant, u64),
    /// Why the body was dropped for being too slow, reported when it is resumed.
    slow: Option<String>,
}

impl<S: ObjectSource + 'static> Resume<S> {
    /// At the end of each window of `request_timeout`, compares the rate with
    /// `min_rate`; too slow, and the body is dropped before the next read.
    fn check_rate(&mut self) {
        let (since, at) = self.window;
        let elapsed = since.elapsed();
        if elapsed < self.policy.request_timeout {
            return;
        }
        let rate = (self.position - at) as f64 / elapsed.as_secs_f64();
        self.window = (Instant::now(), self.position);
        if rate < self.policy.min_rate as f64 && self.position < self.end {
            self.slow = Some(format!(
                "the body came at {rate:.0} bytes/s, slower than {} bytes/s for {:.0} s",
                self.policy.min_rate,
                elapsed.as_secs_f64()
            ));
        }
    }

    /// The next chunk, resuming the body as many times as the policy allows.
    async fn next(&mut self) -> Option<Result<bytes::Bytes, SourceError>> {
        if self.done {
            return None;
        }
        loop {
            let timeout = self.policy.request_timeout;
            let stalled = |key: &str, message: String| SourceError::Remote {
                key: key.to_owned(),
                message,
                retryable: true,
            };
            let failure = if let Some(why) = self.slow.take() {
                // The last window was too slow: drop this connection, resume from here.
                stalled(&self.key, why)
            } else {
                match tokio::time::timeout(timeout, self.stream.next()).await {
                    Err(_) => stalled(
                        &self.key,
                        format!("the body stalled: no byte for {} s", timeout.as_secs_f64()),
                    ),
                    Ok(Some(Ok(chunk))) => {
                        self.position += chunk.len() as u64;
                        self.check_rate();
                        return Some(Ok(chunk));
                    }
                    Ok(None) if self.position >= self.end => {
                        self.done = true;
                        return None;
                    }
                    Ok(None) => SourceError::Truncated {
                        key: self.key.clone(),
                        expected: self.end,
                        received: self.position,
                    },
                    Ok(Some(Err(e))) => e,
                }
            };
            if !failure.is_retryable() {
                self.done = true;
                return Some(Err(failure));
            }
            self.resumes += 1;
            self.retries.fetch_add(1, Ordering::Relaxed);
            if self.resumes >= self.policy.max_attempts {
                self.done = true;
                return Some(Err(gave_up(&self.key, self.resumes, failure)));
            }
            tracing::debug!(key = %self.key, at = self.position, error = %failure, "resuming body");
            tokio::time::sleep(self.policy.delay(self.resumes)).await;
            let request = GetRequest {
                range: Some(ByteRange::new(self.position, self.end)),
                ..self.pinned.clone()
            };
            let inner = self.inner.clone();
            let key = self.key.clone();
            match self
                .policy
                .run(&self.retries, &self.key, || inner.get(&key, &request))
                .await
            {
                Ok(body) => {
                    self.stream = body.stream;
                    self.window = (Instant::now(), self.position);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[async_trait]
impl<S: ObjectSource + 'static> ObjectSource for RetryingSource<S> {
    fn uri(&self, key: &str) -> String {
        self.inner.uri(key)
    }

    fn region(&self) -> Option<String> {
        self.inner.region()
    }

    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed) + self.inner.retries()
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError> {
        self.policy
            .run(&self.retries, &request.prefix, || self.inner.list(request))
            .await
    }

    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError> {
        self.policy
            .run(&self.retries, key, || self.inner.head(key, request))
            .await
    }

    async fn object_lock_enabled(&self) -> Result<bool, SourceError> {
        self.policy
            .run(&self.retries, "", || self.inner.object_lock_enabled())
            .await
    }

    async fn legal_hold(&self, key: &str, version_id: Option<&str>) -> Result<bool, SourceError> {
        self.policy
            .run(&self.retries, key, || {
                self.inner.legal_hold(key, version_id)
            })
            .await
    }

    async fn set_legal_hold(
        &self,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<(), SourceError> {
        // Idempotent: setting a hold to the same status twice is harmless, so a retry
        // after an answer that was lost is safe.
        self.policy
            .run(&self.retries, key, || {
                self.inner.set_legal_hold(key, version_id, on)
            })
            .await
    }

    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError> {
        let first = self
            .policy
            .run(&self.retries, key, || self.inner.get(key, request))
            .await?;
        // Later parts must come from the very object the first response described.
        let pinned = GetRequest {
            range: None,
            version_id: request
                .version_id
                .clone()
                .or_else(|| first.info.version_id.clone()),
            if_match: request.if_match.clone().or_else(|| first.info.etag.clone()),
        };
        let state = Resume {
            inner: self.inner.clone(),
            policy: self.policy,
            retries: self.retries.clone(),
            key: key.to_owned(),
            pinned,
            stream: first.stream,
            position: first.range.start,
            end: first.range.end,
            resumes: 0,
            done: false,
            window: (Instant::now(), first.range.start),
            slow: None,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            state.next().await.map(|item| (item, state))
        });
        Ok(ObjectBody {
            info: first.info,
            range: first.range,
            stream: Box::pin(stream),
        })
    }
}
