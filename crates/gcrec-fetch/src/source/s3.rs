//! An S3 bucket (or any S3-compatible store) through `aws-sdk-s3`.
//!
//! Standard AWS configuration comes in as an `SdkConfig` (profiles, environment, SSO,
//! assume-role, `AWS_ENDPOINT_URL[_S3]`); the options here add what is specific to this
//! source: an S3 endpoint override, path-style addressing for S3-compatible stores, and
//! an SSE-C key sent with every HEAD and GET. S3's failures become [`SourceError`]s that
//! name the object and, for KMS and SSE-C problems, the key and what is missing.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use base64::Engine;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};

use crate::Hint;

use super::{
    Checksum, ChecksumAlgorithm, GetRequest, ListPage, ListRequest, ObjectBody, ObjectInfo,
    ObjectSource, ObjectSummary, OpenedSource, ServerSideEncryption, SourceError, SseMode,
};

/// A customer-provided key (SSE-C), ready to send.
#[derive(Clone)]
pub struct SseCustomerKey {
    key_b64: zeroize::Zeroizing<String>,
    md5_b64: String,
}

impl std::fmt::Debug for SseCustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SseCustomerKey(md5 {})", self.md5_b64)
    }
}

impl SseCustomerKey {
    /// From the 32 raw key bytes.
    pub fn new(key: &[u8; 32]) -> Self {
        let engine = base64::engine::general_purpose::STANDARD;
        Self {
            key_b64: zeroize::Zeroizing::new(engine.encode(key)),
            md5_b64: engine.encode(Md5::digest(key)),
        }
    }

    /// The key's MD5, base64: how S3 identifies it in errors and responses.
    pub fn md5(&self) -> &str {
        &self.md5_b64
    }
}

/// Options for an S3 source.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// An S3 endpoint (S3-compatible stores, local test servers).
    pub endpoint_url: Option<String>,
    /// Address buckets as `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    pub force_path_style: bool,
    /// Send this SSE-C key with every HEAD and GET.
    pub sse_customer_key: Option<SseCustomerKey>,
    /// How long one request may go unanswered (and a body without a byte); `None` for
    /// [`super::DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Option<std::time::Duration>,
}

/// Objects in one bucket.
#[derive(Debug)]
pub struct S3Source {
    /// Swapped for one in the bucket's own region when S3 redirects.
    client: std::sync::RwLock<aws_sdk_s3::Client>,
    bucket: String,
    sse_c: Option<SseCustomerKey>,
}

/// The region S3 says a bucket lives in, when a request went to the wrong one: a 301
/// `PermanentRedirect` (or a bodiless 301 on HEAD) with `x-amz-bucket-region`, or a 400
/// `AuthorizationHeaderMalformed` naming the expected region.
fn redirect_region<E: ProvideErrorMetadata>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<String> {
    let response = err.raw_response()?;
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("x-amz-bucket-region")
        .map(str::to_owned);
    match (status, err.code()) {
        (301 | 307, _) => header,
        (400, Some("AuthorizationHeaderMalformed" | "IllegalLocationConstraintException")) => {
            header.or_else(|| {
                // "... the region 'us-east-1' is wrong; expecting 'eu-west-1'"
                let message = err.message()?;
                let (_, rest) = message.split_once("expecting '")?;
                rest.split_once('\'').map(|(r, _)| r.to_owned())
            })
        }
        _ => None,
    }
    .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Splits `s3://bucket/prefix` into the bucket and the prefix (normalized to end in `/`
/// unless empty).
pub fn parse_s3_url(url: &str) -> Result<(String, String), SourceError> {
    let open_error = |reason: &str| SourceError::Open {
        location: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| open_error("not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(open_error("no bucket name: use s3://BUCKET[/PREFIX]"));
    }
    let prefix = prefix.trim_start_matches('/');
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_owned(), prefix))
}

/// A key or prefix from a listing asked for with `encoding-type=url`: `+` is a space,
/// `%XX` a byte (S3 encodes like an HTML form).
pub(crate) fn url_decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Refuses a ListObjectsV2 answer that does not end with its closing tag: the XML parser
/// would take a body cut in the middle of a `<Key>` for a whole, shorter listing.
#[derive(Debug)]
struct WholeListing;

impl aws_sdk_s3::config::Intercept for WholeListing {
    fn name(&self) -> &'static str {
        "gcrec-whole-listing"
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_s3::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let response = context.response();
        if !response.status().is_success() {
            return Ok(());
        }
        match response.body().bytes() {
            Some(body) if !body.trim_ascii_end().ends_with(b"</ListBucketResult>") => {
                Err("the listing answer is cut short (no closing </ListBucketResult>)".into())
            }
            _ => Ok(()),
        }
    }
}

/// Keys that climb out of a directory are never requested: the layout never produces
/// them, and S3-compatible stores backed by a file system may resolve them.
fn refuse_unsafe(key: &str) -> Result<(), SourceError> {
    if crate::layout::is_safe_key(key) {
        Ok(())
    } else {
        Err(SourceError::UnsafeKey {
            key: key.to_owned(),
        })
    }
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// The [`ObjectInfo`] of a HEAD or GET output: different SDK types, same accessors.
macro_rules! object_info {
    ($out:expr, $key:expr, $size:expr) => {
        ObjectInfo {
            key: $key.to_owned(),
            size: $size,
            etag: $out.e_tag().map(str::to_owned),
            last_modified: $out.last_modified().and_then(to_chrono),
            version_id: $out.version_id().map(str::to_owned),
            user_metadata: user_metadata($out.metadata()),
            sse: sse_of(
                $out.server_side_encryption().map(|s| s.as_str()),
                $out.ssekms_key_id(),
                $out.sse_customer_algorithm(),
            ),
            content_type: $out.content_type().map(str::to_owned),
            checksum: checksum_of(
                $out.checksum_crc64_nvme(),
                $out.checksum_crc32_c(),
                $out.checksum_crc32(),
                $out.checksum_sha256(),
                $out.checksum_sha1(),
            ),
        }
    };
}

/// User metadata with lower-case keys (S3 returns them as stored).
fn user_metadata(
    m: Option<&std::collections::HashMap<String, String>>,
) -> BTreeMap<String, String> {
    m.into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

/// The strongest checksum a response carries (S3 returns the ones the object was stored
/// with, when asked with `ChecksumMode::Enabled`).
fn checksum_of(
    crc64nvme: Option<&str>,
    crc32c: Option<&str>,
    crc32: Option<&str>,
    sha256: Option<&str>,
    sha1: Option<&str>,
) -> Option<Checksum> {
    use ChecksumAlgorithm as A;
    [
        (A::Sha256, sha256),
        (A::Crc64nvme, crc64nvme),
        (A::Crc32c, crc32c),
        (A::Crc32, crc32),
        (A::Sha1, sha1),
    ]
    .into_iter()
    .find_map(|(algorithm, value)| {
        value.filter(|v| !v.is_empty()).map(|v| Checksum {
            algorithm,
            value: v.to_owned(),
        })
    })
}

fn sse_of(mode: Option<&str>, kms_key: Option<&str>, sse_c: Option<&str>) -> ServerSideEncryption {
    let mode = match (mode, sse_c) {
        (_, Some(_)) => SseMode::CustomerKey,
        (Some(m), None) => SseMode::from_header(m),
        (None, None) => SseMode::None,
    };
    ServerSideEncryption {
        mode,
        kms_key_id: kms_key.map(str::to_owned),
    }
}

impl S3Source {
    /// A source over `bucket` with the given AWS configuration.
    pub fn new(
        config: &aws_types::SdkConfig,
        bucket: impl Into<String>,
        options: S3Options,
    ) -> Self {
        // Retries live in one place, `RetryingSource`, which also resumes broken bodies.
        let mut builder = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(options.force_path_style)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
        if let Some(url) = &options.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Self {
            client: std::sync::RwLock::new(aws_sdk_s3::Client::from_conf(builder.build())),
            bucket: bucket.into(),
            sse_c: options.sse_customer_key,
        }
    }

    fn client(&self) -> aws_sdk_s3::Client {
        match self.client.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs one S3 call; when S3 answers that the bucket lives in another region, moves
    /// the client to that region and runs it again (once).
    async fn call<T, E, F, Fut>(
        &self,
        op: F,
    ) -> Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>
    where
        E: ProvideErrorMetadata,
        F: Fn(aws_sdk_s3::Client) -> Fut,
        Fut: std::future::Future<
                Output = Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
            >,
    {
        let client = self.client();
        let err = match op(client.clone()).await {
            Ok(out) => return Ok(out),
            Err(e) => e,
        };
        let current = client.config().region().map(|r| r.to_string());
        match redirect_region(&err) {
            Some(region) if Some(&region) != current.as_ref() => {
                tracing::info!(bucket = %self.bucket, %region, "following the bucket to its region");
                let moved = aws_sdk_s3::Client::from_conf(
                    client
                        .config()
                        .to_builder()
                        .region(aws_types::region::Region::new(region))
                        .build(),
                );
                match self.client.write() {
                    Ok(mut c) => *c = moved.clone(),
                    Err(poisoned) => *poisoned.into_inner() = moved.clone(),
                }
                op(moved).await
            }
            _ => Err(err),
        }
    }

    /// Opens `s3://bucket[/prefix]`, with retries and resumable bodies
    /// ([`super::RetryingSource`]).
    pub fn open(
        config: &aws_types::SdkConfig,
        url: &str,
        options: S3Options,
    ) -> Result<OpenedSource, SourceError> {
        let (bucket, base_prefix) = parse_s3_url(url)?;
        let mut policy = super::RetryPolicy::default();
        if let Some(timeout) = options.request_timeout {
            policy.request_timeout = timeout;
        }
        let source = S3Source::new(config, bucket, options);
        Ok(OpenedSource {
            source: std::sync::Arc::new(super::RetryingSource::new(source, policy)),
            base_prefix,
            local_root: None,
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Turns an SDK failure into a [`SourceError`] that names the object and what to do.
    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> SourceError {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = crate::brief(err.code().unwrap_or_default());
        let message = crate::brief(err.message().unwrap_or_default());
        let key = key.to_owned();
        let what = if key.is_empty() {
            format!("bucket {}", self.bucket)
        } else {
            key.clone()
        };
        match (status, code.as_str()) {
            (Some(404), "NoSuchBucket") => SourceError::Open {
                location: format!("s3://{}", self.bucket),
                reason: "no such bucket (check the name and the region)".into(),
            },
            (Some(404), _) | (_, "NoSuchKey" | "NoSuchVersion") => SourceError::NotFound { key },
            (Some(412), _) => SourceError::Changed {
                key,
                expected: "the version first read".into(),
            },
            (Some(403), _) => {
                let kms = message.to_ascii_lowercase().contains("kms") || code.starts_with("KMS");
                SourceError::AccessDenied {
                    key: what,
                    hint: None,
                    message: if self.sse_c.is_some() && !kms {
                        format!(
                            "{code}: {message} — either the SSE-C key given is not this object's key, or the caller needs s3:GetObject on s3://{}",
                            self.bucket
                        )
                    } else if kms {
                        format!(
                            "{code}: {message} — the caller needs kms:Decrypt on the object's KMS key"
                        )
                    } else {
                        format!(
                            "{code}: {message} — the caller needs s3:GetObject / s3:ListBucket on s3://{}",
                            self.bucket
                        )
                    },
                }
            }
            (Some(400), c) if c.starts_with("KMS.") => SourceError::AccessDenied {
                key: what,
                hint: None,
                message: format!(
                    "{code}: {message} — the object's KMS key is disabled, missing or not usable"
                ),
            },
            (Some(400), _)
                if message.to_ascii_lowercase().contains("customer")
                    || message.contains("Server Side Encryption") =>
            {
                SourceError::AccessDenied {
                    key: what,
                    hint: Some(Hint::SseCustomerKey),
                    message: format!(
                        "{code}: {message} — the object is encrypted with SSE-C{}: give its key",
                        if self.sse_c.is_some() {
                            " (the key given does not match)"
                        } else {
                            ""
                        }
                    ),
                }
            }
            _ => SourceError::Remote {
                key: what,
                // 5xx, throttling, timeouts and failures before any response.
                retryable: status.is_none_or(|s| s >= 500 || s == 429)
                    || matches!(
                        code.as_str(),
                        "SlowDown" | "Throttling" | "RequestTimeout" | "RequestTimeTooSkewed"
                    ),
                // Never the raw response: bodies of misbehaving endpoints can be huge or
                // hold anything.
                message: if code.is_empty() {
                    crate::brief(&aws_sdk_s3::error::DisplayErrorContext(&err).to_string())
                } else {
                    format!(
                        "{} (HTTP {}): {}",
                        crate::brief(&code),
                        status.unwrap_or_default(),
                        crate::brief(&message)
                    )
                },
            },
        }
    }
}

#[async_trait]
impl ObjectSource for S3Source {
    fn region(&self) -> Option<String> {
        self.client().config().region().map(|r| r.to_string())
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError> {
        let out = self
            .call(|client| {
                client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&request.prefix)
                    .set_delimiter(request.delimiter().map(str::to_owned))
                    .set_continuation_token(request.continuation.clone())
                    .max_keys(request.page_size() as i32)
                    // Keys may hold characters XML 1.0 cannot carry: ask for them encoded.
                    .encoding_type(aws_sdk_s3::types::EncodingType::Url)
                    .customize()
                    .interceptor(WholeListing)
                    .send()
            })
            .await
            .map_err(|e| self.error(&request.prefix, e))?;
        let encoded = out.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url);
        let decode = |s: &str| {
            if encoded {
                url_decoded(s)
            } else {
                s.to_owned()
            }
        };
        let page = ListPage {
            objects: out
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ObjectSummary {
                        key: decode(o.key()?),
                        size: o.size().unwrap_or_default().max(0) as u64,
                        etag: o.e_tag().map(str::to_owned),
                        last_modified: o.last_modified().and_then(to_chrono),
                    })
                })
                .collect(),
            common_prefixes: out
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(decode))
                .collect(),
            next: out
                .next_continuation_token()
                .filter(|_| out.is_truncated() == Some(true))
                .map(str::to_owned),
        };
        // S3 says how many entries it sent: a response cut short holds fewer.
        if let Some(count) = out.key_count()
            && count as usize != page.objects.len() + page.common_prefixes.len()
        {
            return Err(SourceError::BadListing {
                prefix: request.prefix.clone(),
                reason: format!(
                    "the answer announces {count} entries and holds {}",
                    page.objects.len() + page.common_prefixes.len()
                ),
                retryable: true,
            });
        }
        Ok(page)
    }

    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError> {
        refuse_unsafe(key)?;
        let out = self
            .call(|client| {
                let mut call = client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                    .set_version_id(request.version_id.clone())
                    .set_if_match(request.if_match.clone());
                if let Some(k) = &self.sse_c {
                    call = call
                        .sse_customer_algorithm("AES256")
                        .sse_customer_key(k.key_b64.as_str())
                        .sse_customer_key_md5(&k.md5_b64);
                }
                call.send()
            })
            .await
            .map_err(|e| self.error(key, e))?;
        let size = out.content_length().unwrap_or_default().max(0) as u64;
        Ok(object_info!(out, key, size))
    }

    /// Whether the bucket has S3 Object Lock enabled (legal holds need it).
    async fn object_lock_enabled(&self) -> Result<bool, SourceError> {
        let sent = self
            .call(|client| {
                client
                    .get_object_lock_configuration()
                    .bucket(&self.bucket)
                    .send()
            })
            .await;
        match sent {
            Ok(out) => Ok(out
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| e.as_str() == "Enabled")),
            Err(e) if e.code() == Some("ObjectLockConfigurationNotFoundError") => Ok(false),
            Err(e) => Err(self.error("", e)),
        }
    }

    /// The legal hold on one version of an object (`false` when none was ever set).
    async fn legal_hold(&self, key: &str, version_id: Option<&str>) -> Result<bool, SourceError> {
        refuse_unsafe(key)?;
        let sent = self
            .call(|client| {
                client
                    .get_object_legal_hold()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_version_id(version_id.map(str::to_owned))
                    .send()
            })
            .await;
        match sent {
            Ok(out) => Ok(out
                .legal_hold()
                .and_then(|h| h.status())
                .is_some_and(|s| s.as_str() == "ON")),
            Err(e) if e.code() == Some("NoSuchObjectLockConfiguration") => Ok(false),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Sets (`on`) or releases the legal hold on one version of an object.
    async fn set_legal_hold(
        &self,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<(), SourceError> {
        use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
        refuse_unsafe(key)?;
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.call(|client| {
            client
                .put_object_legal_hold()
                .bucket(&self.bucket)
                .key(key)
                .set_version_id(version_id.map(str::to_owned))
                .legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(status.clone())
                        .build(),
                )
                .send()
        })
        .await
        .map(|_| ())
        .map_err(|e| self.error(key, e))
    }

    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError> {
        refuse_unsafe(key)?;
        let range = match request.range {
            Some(r) => Some(match r.end {
                Some(end) if end > r.start => format!("bytes={}-{}", r.start, end - 1),
                Some(_) => {
                    return Err(SourceError::InvalidRange {
                        key: key.to_owned(),
                        range: r,
                        size: 0,
                    });
                }
                None => format!("bytes={}-", r.start),
            }),
            None => None,
        };
        let sent = self
            .call(|client| {
                let mut call = client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_range(range.clone())
                    .set_version_id(request.version_id.clone())
                    .set_if_match(request.if_match.clone());
                // Whole-object reads come with the stored checksum, which the SDK checks
                // as the body streams; ranged reads carry none (the transfer layer checks
                // the whole object against the HEAD's checksum instead).
                if range.is_none() {
                    call = call.checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
                }
                if let Some(k) = &self.sse_c {
                    call = call
                        .sse_customer_algorithm("AES256")
                        .sse_customer_key(k.key_b64.as_str())
                        .sse_customer_key_md5(&k.md5_b64);
                }
                call.send()
            })
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(416) => {
                let size = self
                    .head(
                        key,
                        &GetRequest {
                            range: None,
                            ..request.clone()
                        },
                    )
                    .await
                    .map(|i| i.size)
                    .unwrap_or_default();
                return Err(SourceError::InvalidRange {
                    key: key.to_owned(),
                    range: request.range.unwrap_or(super::ByteRange::from(0)),
                    size,
                });
            }
            Err(e) => return Err(self.error(key, e)),
        };
        // Some S3-compatible stores ignore If-Match: check the answer too.
        if let (Some(want), Some(got)) = (&request.if_match, out.e_tag())
            && want != got
        {
            return Err(SourceError::Changed {
                key: key.to_owned(),
                expected: want.clone(),
            });
        }
        let length = out.content_length().unwrap_or_default().max(0) as u64;
        // `Content-Range: bytes START-END/SIZE` on ranged reads.
        let (start, size) = match out.content_range().and_then(|r| r.strip_prefix("bytes ")) {
            Some(r) => {
                let (span, total) = r.split_once('/').unwrap_or((r, ""));
                let start = span
                    .split('-')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                (start, total.parse().unwrap_or(start + length))
            }
            None => (0, length),
        };
        let info = object_info!(out, key, size);
        let owned_key = key.to_owned();
        let stream =
            futures::stream::try_unfold((out.body, owned_key), |(mut body, key)| async move {
                match body.try_next().await {
                    Ok(Some(chunk)) => Ok(Some((chunk, (body, key)))),
                    Ok(None) => Ok(None),
                    Err(e) => {
                        let message =
                            crate::brief(&aws_sdk_s3::error::DisplayErrorContext(&e).to_string());
                        if message.to_ascii_lowercase().contains("checksum mismatch") {
                            // The bytes arrived but are not the object's: do not resume
                            // past them.
                            Err(SourceError::Integrity {
                                key,
                                message: format!(
                                    "the checksum S3 stored does not match the bytes received ({})",
                                    std::error::Error::source(&e)
                                        .map_or_else(|| e.to_string(), |s| s.to_string())
                                ),
                            })
                        } else {
                            Err(SourceError::Remote {
                                key,
                                retryable: true,
                                message: format!("the body broke off: {message}"),
                            })
                        }
                    }
                }
            });
        Ok(ObjectBody {
            info,
            range: start..start + length,
            stream: Box::pin(stream),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(parse_s3_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert_eq!(parse_s3_url("s3://b/").unwrap(), ("b".into(), "".into()));
        assert_eq!(
            parse_s3_url("s3://b/org").unwrap(),
            ("b".into(), "org/".into())
        );
        assert_eq!(
            parse_s3_url("s3://b/a/b/").unwrap(),
            ("b".into(), "a/b/".into())
        );
        assert!(parse_s3_url("s3:///x").is_err());
        assert!(parse_s3_url("http://b").is_err());
    }

    #[test]
    fn sse_c_key_md5_is_of_the_raw_key() {
        let k = SseCustomerKey::new(&[0u8; 32]);
        assert_eq!(k.md5(), "cLyPS3KoaSFGi/joRB3OUQ==");
        assert!(
            !format!("{k:?}").contains("AAAA"),
            "the key itself is never shown"
        );
    }
}
