//! `--inventory MANIFEST` and `--since-inventory` on `ls`, `pull`, `hold` and `index`:
//! open the report (in S3, or a local copy laid out like its bucket) and say what it can
//! not see.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use gcrec_fetch::inventory::{Inventory, MAX_MANIFEST, Manifest};
use gcrec_fetch::source::{LocalSource, ObjectSource};

use crate::aws::AwsArgs;
use crate::exit::UsageError;

/// Read an S3 Inventory report instead of listing.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Inventory")]
pub struct InventoryArgs {
    /// An S3 Inventory report's manifest.json (`s3://BUCKET/…/manifest.json`, or a local
    /// copy laid out like its bucket), read instead of listing the export: no list
    /// request, however many objects. CSV and Parquet reports; checked against
    /// manifest.checksum and each data file's MD5.
    #[arg(long, value_name = "MANIFEST")]
    pub inventory: Option<String>,
    /// Also list, live, the hours from the report's creation on (objects written after
    /// the report was made are otherwise not seen).
    #[arg(long, requires = "inventory")]
    pub since_inventory: bool,
}

/// Opens the report `args` names, if any, and checks it is of `export` (the SOURCE).
pub async fn open(
    args: &InventoryArgs,
    aws: &AwsArgs,
    export: &str,
    quiet: bool,
) -> Result<Option<Arc<Inventory>>> {
    let Some(manifest) = &args.inventory else {
        return Ok(None);
    };
    let mut inventory = if manifest.starts_with("s3://") {
        let (bucket, _) = gcrec_fetch::source::parse_s3_url(manifest)?;
        // The manifest's key exactly as given (the URL parser normalises prefixes).
        let key = manifest
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .map(|(_, key)| key.to_owned())
            .filter(|key| !key.is_empty() && !key.ends_with('/'))
            .ok_or_else(|| {
                UsageError(format!(
                    "--inventory {manifest}: give the manifest.json's full URL"
                ))
            })?;
        // The report's bucket is not the export's: no SSE-C key applies to it.
        let aws = AwsArgs {
            sse_c_key_file: None,
            ..aws.clone()
        };
        let opened = crate::aws::open_source(&format!("s3://{bucket}"), &aws).await?;
        Inventory::open(opened.source, &key).await
    } else {
        let (source, key) = local(Path::new(manifest))?;
        Inventory::open(source, &key).await
    }
    .with_context(|| format!("reading the inventory report {manifest}"))?;
    if export.starts_with("s3://") {
        let (bucket, _) = gcrec_fetch::source::parse_s3_url(export)?;
        inventory.check_bucket(&bucket)?;
    }
    inventory.since = args.since_inventory;
    if !quiet {
        let created = inventory.manifest.created.format("%Y-%m-%dT%H:%MZ");
        let line = match inventory.live_from() {
            Some(h) => format!(
                "gcrec: inventory made {created}: {} data file(s); the hours from {} on are listed live",
                inventory.manifest.files.len(),
                h.start().format("%Y-%m-%dT%H:00Z")
            ),
            None => format!(
                "gcrec: inventory made {created}: {} data file(s); objects written after it are not seen (--since-inventory lists the hours after it)",
                inventory.manifest.files.len()
            ),
        };
        crate::output::diagnostic("inventory", &line);
    }
    Ok(Some(Arc::new(inventory)))
}

/// A local copy of a report: the directory that plays its bucket (the nearest folder
/// above the manifest holding the data files under their keys) and the manifest's key.
fn local(manifest: &Path) -> Result<(Arc<dyn ObjectSource>, String)> {
    let body = crate::filters::read_bounded(manifest, MAX_MANIFEST).map_err(|e| {
        UsageError(format!(
            "cannot read --inventory {}: {e}",
            manifest.display()
        ))
    })?;
    let parsed = Manifest::parse(&manifest.display().to_string(), body.as_bytes())?;
    let first = parsed.files.first().ok_or_else(|| {
        UsageError(format!(
            "--inventory {} lists no data file",
            manifest.display()
        ))
    })?;
    let manifest = std::fs::canonicalize(manifest)?;
    for root in manifest.ancestors().skip(1) {
        if std::fs::symlink_metadata(root.join(&first.key)).is_ok_and(|m| m.is_file()) {
            let key = manifest
                .strip_prefix(root)
                .map(|k| k.display().to_string())
                .unwrap_or_default();
            let source: Arc<dyn ObjectSource> = Arc::new(LocalSource::open(root)?);
            return Ok((source, key));
        }
    }
    Err(UsageError(format!(
        "--inventory {}: no folder above it holds the data file {}; copy the report with its bucket's layout",
        manifest.display(),
        first.key
    ))
    .into())
}
