//! Preflight checks for a pull (`gcrec doctor`): what can be checked through the source
//! itself — listing the prefix, the export's shape, one sample recording per container
//! decrypted into nothing with the keys given, Object Lock, free space at the output.
//! Checks of the cloud account (credentials, region, KMS key state) are the front end's,
//! which owns the AWS configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use gcrec_fetch::layout::{Padding, PaddingSeen};
use gcrec_fetch::recording::ScanEvent;
use gcrec_fetch::scan::{ScanOptions, scan};
use gcrec_fetch::source::{ListRequest, ObjectSource, ServerSideEncryption, SseMode};
use serde::Serialize;

use crate::object::{DecryptContext, probe_object};
use crate::release::free_space;

/// Recordings the shape check looks at, at most (it sums their sizes for free space).
const SHAPE_LIMIT: u64 = 100_000;
/// Media objects tried as samples, at most.
const SAMPLE_LIMIT: usize = 50;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Fine.
    Pass,
    /// Works, but worth a look.
    Warn,
    /// A pull would fail here.
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it came out.
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// What to do when it is not fine.
    pub fix: Option<String>,
    /// A failure about access (credentials, IAM, KMS).
    #[serde(skip)]
    pub permission: bool,
    /// What would get past a failure, for the front end to word.
    #[serde(skip)]
    pub hint: Option<crate::Hint>,
}

impl Check {
    /// A check that passed.
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, CheckStatus::Pass, detail, None)
    }

    /// A check that came out as `status`, with a fix when it is not fine.
    pub fn new(
        name: impl Into<String>,
        status: CheckStatus,
        detail: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self {
            name: name.into(),
            status,
            detail: detail.into(),
            fix,
            permission: false,
            hint: None,
        }
    }
}

/// What the doctor is asked to look at.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The prefix and the filter a pull would use.
    pub scan: ScanOptions,
    /// Where a pull would write, for the free-space check.
    pub out: Option<std::path::PathBuf>,
    /// Whether the run needs Object Lock (a bag records holds; `hold` sets them).
    pub need_object_lock: bool,
}

/// The container a sample is in, as a pull's manifest names it, without its details.
fn container(format: &str) -> String {
    format
        .split(" (")
        .next()
        .unwrap_or(format)
        .trim()
        .to_owned()
}

fn sse_text(sse: &ServerSideEncryption) -> String {
    match (&sse.mode, &sse.kms_key_id) {
        (SseMode::AwsKms | SseMode::AwsKmsDsse, Some(k)) => format!("SSE-KMS with key {k}"),
        (SseMode::AwsKms | SseMode::AwsKmsDsse, None) => "SSE-KMS".into(),
        (SseMode::Aes256, _) => "SSE-S3".into(),
        (SseMode::CustomerKey, _) => "SSE-C".into(),
        (SseMode::None, _) => "no server-side encryption reported".into(),
        (SseMode::Other(o), _) => o.clone(),
    }
}

/// What the doctor found, and the KMS keys of the samples (for the front end's key-state
/// check).
#[derive(Debug, Default)]
pub struct Findings {
    /// The checklist.
    pub checks: Vec<Check>,
    /// KMS key IDs the sampled objects are encrypted with at rest.
    pub kms_keys: BTreeSet<String>,
}

/// Runs the source-side checks.
pub async fn examine(
    source: Arc<dyn ObjectSource>,
    ctx: Arc<DecryptContext>,
    options: DoctorOptions,
) -> Findings {
    let mut found = Findings::default();
    let prefix = &options.scan.base_prefix;
    // Listing the prefix.
    match source.list(&ListRequest::children(prefix.clone())).await {
        Ok(page) => found.checks.push(Check::pass(
            "list",
            format!(
                "{} is listable ({} entries on the first page)",
                source.uri(prefix),
                page.objects.len() + page.common_prefixes.len()
            ),
        )),
        Err(e) => {
            let mut check = Check::new(
                "list",
                CheckStatus::Fail,
                e.to_string(),
                Some("the caller needs s3:ListBucket on the bucket (for this prefix)".into()),
            );
            check.permission = e.is_permission();
            found.checks.push(check);
            return found;
        }
    }
    // The export's shape, and samples.
    let mut orgs = BTreeSet::new();
    let (mut first, mut last) = (None, None);
    let mut spelling = PaddingSeen::default();
    let (mut recordings, mut bytes) = (0u64, 0u64);
    let mut candidates = Vec::new();
    let mut events = std::pin::pin!(scan(
        source.clone(),
        ScanOptions {
            read_all_metadata: false,
            ..options.scan.clone()
        }
    ));
    let mut listing_error = None;
    while let Some(event) = events.next().await {
        let r = match event {
            Ok(ScanEvent::Recording(r) | ScanEvent::Unchecked(r)) => r,
            Ok(ScanEvent::Skipped(_)) => continue,
            Err(e) => {
                listing_error = Some(e);
                break;
            }
        };
        recordings += 1;
        bytes += r.media_size();
        orgs.insert(r.organization_id.clone());
        first = first.min(Some(r.hour)).or(Some(r.hour));
        last = last.max(Some(r.hour));
        spelling.see(&r.folder);
        if candidates.len() < SAMPLE_LIMIT {
            candidates.extend(r.media.iter().map(|m| {
                (
                    m.object.key.clone(),
                    m.object.size,
                    m.instruction.as_ref().map(|i| i.key.clone()),
                )
            }));
        }
        if recordings >= SHAPE_LIMIT {
            break;
        }
    }
    let capped = recordings >= SHAPE_LIMIT;
    match (&listing_error, recordings) {
        (Some(e), _) => {
            found
                .checks
                .push(Check::new("shape", CheckStatus::Fail, e.to_string(), None))
        }
        (None, 0) => found.checks.push(Check::new(
            "shape",
            CheckStatus::Warn,
            "no recordings under this prefix (and filter)",
            Some("check the bucket, the prefix and the time range".into()),
        )),
        (None, n) => found.checks.push(Check::pass(
            "shape",
            format!(
                "{}{n} recordings in {} organization(s), {} to {}, partitions {}",
                if capped { "at least " } else { "" },
                orgs.len(),
                first.map(|h| h.to_string()).unwrap_or_default(),
                last.map(|h| h.to_string()).unwrap_or_default(),
                match spelling.padding() {
                    Padding::Mixed => "padded and unpadded (month=03 and month=3)",
                    Padding::Unpadded => "unpadded (month=3)",
                    Padding::Padded => "padded (month=03)",
                }
            ),
        )),
    }
    // One sample per container.
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    for (key, size, instruction) in candidates {
        match probe_object(
            source.clone(),
            &key,
            Some(size),
            instruction.as_deref(),
            ctx.clone(),
        )
        .await
        {
            Ok((info, outcome)) => {
                let kind = container(&outcome.format);
                if let Some(k) = &info.sse.kms_key_id {
                    found.kms_keys.insert(k.clone());
                }
                if seen.insert(kind.clone(), ()).is_none() {
                    found.checks.push(Check::pass(
                        format!("sample {kind}"),
                        format!(
                            "{key}: GetObject works ({}); {}",
                            sse_text(&info.sse),
                            outcome
                                .opened_with
                                .map_or("no key needed".to_owned(), |k| format!("opened with {k}"))
                        ),
                    ));
                }
            }
            Err(e) => {
                let text = e.to_string();
                let kind = match &e {
                    crate::PullError::Decrypt(_) => "decryption",
                    crate::PullError::Source(_) => "download",
                    _ => "sample",
                };
                if !failures.contains_key(kind) {
                    failures.insert(kind.to_owned(), text.clone());
                    let mut check = Check::new(
                        format!("sample {kind}"),
                        CheckStatus::Fail,
                        format!("{key}: {text}"),
                        None,
                    );
                    check.permission = e.is_permission();
                    check.hint = e.hint();
                    found.checks.push(check);
                }
            }
        }
    }
    // Object Lock.
    let missing = if options.need_object_lock {
        CheckStatus::Fail
    } else {
        CheckStatus::Warn
    };
    found.checks.push(match source.object_lock_enabled().await {
        Ok(true) => Check::pass(
            "object lock",
            "enabled: legal holds can be set and recorded",
        ),
        Ok(false) => Check::new(
            "object lock",
            missing,
            "not enabled on this bucket: legal holds cannot be set or recorded",
            Some("enable Object Lock on the bucket (see docs/legal-hold.md)".into()),
        ),
        Err(e) => Check::new("object lock", missing, e.to_string(), None),
    });
    // Free space.
    if let Some(out) = &options.out {
        match free_space(out) {
            Some(free) if free < bytes => found.checks.push(Check::new(
                "free space",
                CheckStatus::Fail,
                format!(
                    "{} has {free} bytes free; the recordings in range hold {}{bytes} bytes",
                    out.display(),
                    if capped { "at least " } else { "" }
                ),
                Some("pull to a larger file system, or narrow --from/--to".into()),
            )),
            Some(free) => found.checks.push(Check::pass(
                "free space",
                format!(
                    "{} has {free} bytes free for {}{bytes} bytes of recordings",
                    out.display(),
                    if capped { "at least " } else { "" }
                ),
            )),
            None => found.checks.push(Check::new(
                "free space",
                CheckStatus::Warn,
                format!("cannot tell the free space at {}", out.display()),
                None,
            )),
        }
    }
    found
}
