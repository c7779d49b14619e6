//! Legal holds: set, release or report the Object Lock legal hold on every object of
//! each matching recording (media, S3EC instruction file, sidecars), version by version.
//!
//! Every call goes through the [`ObjectSource`] the caller gives, so holds get the same
//! retries, request counts and fault injection as reads.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use gcrec_fetch::recording::{ListingError, Recordings, ScanEvent};
use gcrec_fetch::source::{GetRequest, ObjectSource, SourceError};
use serde::Serialize;

/// What to do with the holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldMode {
    /// Report only.
    Status,
    /// Put objects under legal hold.
    On,
    /// Release them.
    Off,
    /// Only find the version each object is at, changing nothing: the rows of an S3
    /// Batch Operations manifest ([`batch_manifest_row`]).
    Versions,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldAction {
    /// Reported only.
    Status,
    /// The hold was changed.
    Changed,
    /// The hold already was as asked.
    Already,
    /// A dry run: it would be changed.
    WouldChange,
    /// It could not be read or changed.
    Failed,
    /// Its version was found ([`HoldMode::Versions`]).
    Listed,
}

impl HoldAction {
    /// A short name for people (`wouldchange` keeps the column narrow).
    pub fn as_str(self) -> &'static str {
        match self {
            HoldAction::Status => "status",
            HoldAction::Changed => "changed",
            HoldAction::Already => "already",
            HoldAction::WouldChange => "wouldchange",
            HoldAction::Failed => "failed",
            HoldAction::Listed => "listed",
        }
    }
}

/// One object's hold.
#[derive(Debug)]
pub struct HoldOutcome {
    /// The key.
    pub key: String,
    /// The version acted on.
    pub version_id: Option<String>,
    /// The hold before (`Some(true)` = ON).
    pub before: Option<bool>,
    /// The hold after.
    pub after: Option<bool>,
    /// What was done.
    pub action: HoldAction,
    /// Why it failed.
    pub error: Option<SourceError>,
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HoldTotals {
    /// Objects handled.
    pub objects: u64,
    /// Under hold afterwards.
    pub held: u64,
    /// Changed.
    pub changed: u64,
    /// Already as asked.
    pub already: u64,
    /// Would change (dry run).
    pub would_change: u64,
    /// Failed.
    pub failed: u64,
    /// Some failure was about access.
    #[serde(skip)]
    pub permission_failed: bool,
}

/// Why holds cannot be handled at all.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The store has no Object Lock (an S3 bucket created without it).
    #[error("{0} does not have S3 Object Lock enabled, so it cannot hold objects")]
    NoObjectLock(String),
    /// Reading the Object Lock configuration, or listing, failed (or the source is not
    /// a store with legal holds: [`SourceError::Unsupported`]).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The work list (a listing, a catalog) failed.
    #[error(transparent)]
    Listing(#[from] ListingError),
}

async fn one(
    source: Arc<dyn ObjectSource>,
    key: String,
    mode: HoldMode,
    dry_run: bool,
) -> HoldOutcome {
    let mut outcome = HoldOutcome {
        key: key.clone(),
        version_id: None,
        before: None,
        after: None,
        action: HoldAction::Failed,
        error: None,
    };
    let result: Result<(), SourceError> = async {
        // Holds apply to versions: pin the one the listing saw.
        let info = source.head(&key, &GetRequest::default()).await?;
        outcome.version_id = info.version_id.clone();
        if mode == HoldMode::Versions {
            outcome.action = HoldAction::Listed;
            return Ok(());
        }
        let version = info.version_id.as_deref();
        let before = source.legal_hold(&key, version).await?;
        outcome.before = Some(before);
        let want = match mode {
            HoldMode::Status | HoldMode::Versions => None,
            HoldMode::On => Some(true),
            HoldMode::Off => Some(false),
        };
        outcome.action = match want {
            None => HoldAction::Status,
            Some(w) if w == before => HoldAction::Already,
            Some(_) if dry_run => HoldAction::WouldChange,
            Some(w) => {
                source.set_legal_hold(&key, version, w).await?;
                outcome.after = Some(source.legal_hold(&key, version).await?);
                HoldAction::Changed
            }
        };
        if outcome.after.is_none() {
            outcome.after = Some(before);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        outcome.action = HoldAction::Failed;
        outcome.error = Some(e);
    }
    outcome
}

/// Applies `mode` to every object of every matching recording of `recordings` (a scan
/// of `source`, or a catalog's answer), `jobs` at once, handing each object's outcome to
/// `on_object`. Refuses a store without Object Lock before anything is listed.
pub async fn run_holds(
    source: Arc<dyn ObjectSource>,
    recordings: impl FnOnce() -> Recordings,
    mode: HoldMode,
    dry_run: bool,
    jobs: usize,
    on_object: &mut (dyn FnMut(&HoldOutcome) + Send),
) -> Result<HoldTotals, HoldError> {
    if !source.object_lock_enabled().await? {
        return Err(HoldError::NoObjectLock(source.uri("")));
    }
    let keys = recordings()
        .try_filter_map(|event| async move {
            Ok(match event {
                ScanEvent::Recording(r) => {
                    let keys: Vec<String> = r.keys().map(str::to_owned).collect();
                    Some(futures::stream::iter(
                        keys.into_iter().map(Ok::<_, ListingError>),
                    ))
                }
                _ => None,
            })
        })
        .try_flatten();
    let outcomes = keys
        .map_ok(|key| {
            let source = source.clone();
            async move { Ok(one(source, key, mode, dry_run).await) }
        })
        .try_buffered(jobs.max(1));
    let mut outcomes = std::pin::pin!(outcomes);
    let mut totals = HoldTotals::default();
    while let Some(o) = outcomes.next().await {
        let o = o?;
        totals.objects += 1;
        match o.action {
            HoldAction::Changed => totals.changed += 1,
            HoldAction::Already => totals.already += 1,
            HoldAction::WouldChange => totals.would_change += 1,
            HoldAction::Failed => totals.failed += 1,
            HoldAction::Status | HoldAction::Listed => {}
        }
        totals.held += u64::from(o.after == Some(true));
        totals.permission_failed |= o.error.as_ref().is_some_and(SourceError::is_permission);
        on_object(&o);
    }
    Ok(totals)
}

/// What S3 Batch Operations needs URL-encoded in a CSV manifest's key column: everything
/// but letters, digits, `-`, `_`, `.`, `~` and `/` (so `+` is `%2B` and a space `%20`).
const BATCH_KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// One row of an S3 Batch Operations CSV manifest (`S3BatchOperations_CSV_20180820` with
/// the fields `Bucket, Key, VersionId`), with its line ending. The key is URL-encoded, as
/// Batch Operations expects; the version pins the object the hold applies to.
pub fn batch_manifest_row(bucket: &str, key: &str, version_id: Option<&str>) -> String {
    let key = percent_encoding::utf8_percent_encode(key, BATCH_KEY);
    match version_id {
        Some(v) => format!("{bucket},{key},{v}\n"),
        None => format!("{bucket},{key}\n"),
    }
}

/// The body of an S3 Control `CreateJob` request that sets (`on`) or releases the legal
/// hold on every object of a manifest: `aws s3control create-job --cli-input-json
/// file://create-job.json`. The manifest's ETag is only known once it is uploaded: the
/// body carries a placeholder to replace.
pub fn create_job_request(
    account_id: &str,
    bucket: &str,
    manifest_key: &str,
    on: bool,
    role_arn: &str,
    description: &str,
) -> serde_json::Value {
    serde_json::json!({
        "AccountId": account_id,
        "ConfirmationRequired": true,
        "Operation": {
            "S3PutObjectLegalHold": {
                "LegalHold": { "Status": if on { "ON" } else { "OFF" } }
            }
        },
        "Report": {
            "Bucket": format!("arn:aws:s3:::{bucket}"),
            "Format": "Report_CSV_20180820",
            "Enabled": true,
            "Prefix": "gcrec-batch-reports",
            "ReportScope": "AllTasks"
        },
        "Manifest": {
            "Spec": {
                "Format": "S3BatchOperations_CSV_20180820",
                "Fields": ["Bucket", "Key", "VersionId"]
            },
            "Location": {
                "ObjectArn": format!("arn:aws:s3:::{bucket}/{manifest_key}"),
                "ETag": "REPLACE-WITH-THE-MANIFEST-ETAG-AFTER-UPLOAD"
            }
        },
        "Description": description.chars().take(256).collect::<String>(),
        // The idempotency token: the same file submitted twice makes one job.
        "ClientRequestToken": format!("gcrec-{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>()),
        "Priority": 10,
        "RoleArn": role_arn
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn batch_manifest_keys_are_url_encoded() {
        let row = super::batch_manifest_row("b", "o/a b+c/ü.opus", Some("v1"));
        assert_eq!(row, "b,o/a%20b%2Bc/%C3%BC.opus,v1\n");
    }
}
