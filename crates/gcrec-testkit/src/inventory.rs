//! S3 Inventory reports exactly as AWS documents them: under
//! `DEST/SOURCE-BUCKET/CONFIG/`, a `YYYY-MM-DDTHH-MMZ/manifest.json` (sourceBucket,
//! destinationBucket, version, creationTimestamp, fileFormat, fileSchema, files with key,
//! size and MD5checksum), its `manifest.checksum` (the manifest's MD5, hex) and
//! `data/UUID.csv.gz` files — gzip CSV without a header, keys URL-encoded, rows in no
//! particular order. Parquet data files are written by DuckDB in the tests; [`manifest`]
//! describes them.

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use crate::rng::Rng;

/// The CSV columns written, in order (a common inventory configuration).
pub const CSV_SCHEMA: &str = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded, ReplicationStatus, EncryptionStatus";

/// The Parquet schema S3 Inventory documents for the same fields.
pub const PARQUET_SCHEMA: &str = "message s3.inventory { required binary bucket (STRING); required binary key (STRING); optional binary version_id (STRING); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP(MILLIS,true)); optional binary e_tag (STRING); optional binary storage_class (STRING); optional boolean is_multipart_uploaded; optional binary replication_status (STRING); optional binary encryption_status (STRING); }";

/// Form encoding, as S3 Inventory writes keys (`quote_plus`): letters, digits and
/// `-_.~` stay, a space becomes `+`.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A key as the CSV holds it.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, FORM)
        .to_string()
        .replace("%20", "+")
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryRow {
    /// The object key.
    pub key: String,
    /// Its version.
    pub version_id: Option<String>,
    /// Whether it is the current version.
    pub is_latest: bool,
    /// Whether it is a delete marker.
    pub is_delete_marker: bool,
    /// Its size (none for a delete marker).
    pub size: Option<u64>,
    /// When it was written.
    pub last_modified: DateTime<Utc>,
    /// Its ETag, without quotes.
    pub etag: Option<String>,
}

impl InventoryRow {
    /// The current version of an object with this body (ETag = MD5, as for a single-part
    /// upload without SSE-KMS).
    pub fn current(key: &str, body: &[u8], last_modified: DateTime<Utc>) -> Self {
        Self {
            key: key.to_owned(),
            version_id: None,
            is_latest: true,
            is_delete_marker: false,
            size: Some(body.len() as u64),
            last_modified,
            etag: Some(hex::encode(Md5::digest(body))),
        }
    }

    /// The row as CSV fields, in [`CSV_SCHEMA`]'s order.
    pub fn csv_fields(&self, bucket: &str) -> Vec<String> {
        vec![
            bucket.to_owned(),
            encode_key(&self.key),
            self.version_id.clone().unwrap_or_default(),
            self.is_latest.to_string(),
            self.is_delete_marker.to_string(),
            self.size.map(|s| s.to_string()).unwrap_or_default(),
            self.last_modified
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.etag.clone().unwrap_or_default(),
            "STANDARD".into(),
            "false".into(),
            String::new(),
            "NOT-SSE".into(),
        ]
    }
}

/// Where a report's files go: `DEST/SOURCE/CONFIG/`.
pub fn report_root(dest_prefix: &str, source_bucket: &str, config: &str) -> String {
    let dest = dest_prefix.trim_matches('/');
    if dest.is_empty() {
        format!("{source_bucket}/{config}/")
    } else {
        format!("{dest}/{source_bucket}/{config}/")
    }
}

/// The `manifest.json` and `manifest.checksum` (keys and bytes) of a report whose data
/// files (keys and bytes) are `files`.
pub fn manifest(
    root: &str,
    source_bucket: &str,
    destination_bucket: &str,
    format: &str,
    schema: &str,
    files: &[(String, Vec<u8>)],
    created: DateTime<Utc>,
) -> Vec<(String, Vec<u8>)> {
    let body = serde_json::to_vec_pretty(&json!({
        "sourceBucket": source_bucket,
        "destinationBucket": format!("arn:aws:s3:::{destination_bucket}"),
        "version": "2016-11-30",
        "creationTimestamp": created.timestamp_millis().to_string(),
        "fileFormat": format,
        "fileSchema": schema,
        "files": files.iter().map(|(key, bytes)| json!({
            "key": key,
            "size": bytes.len(),
            "MD5checksum": hex::encode(Md5::digest(bytes)),
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let dir = format!("{root}{}", created.format("%Y-%m-%dT%H-%MZ"));
    let checksum = format!("{}\n", hex::encode(Md5::digest(&body))).into_bytes();
    vec![
        (format!("{dir}/manifest.json"), body),
        (format!("{dir}/manifest.checksum"), checksum),
    ]
}

/// A whole CSV report of `rows` in `data_files` files, rows shuffled: the data files and
/// then the manifest and its checksum (the manifest's key is the second-to-last).
pub fn csv_report(
    root: &str,
    source_bucket: &str,
    destination_bucket: &str,
    rows: &[InventoryRow],
    data_files: usize,
    created: DateTime<Utc>,
    seed: u64,
) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let n = data_files.max(1);
    let mut files = Vec::new();
    for part in 0..n {
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for &i in order.iter().skip(part).step_by(n) {
            csv.write_record(rows[i].csv_fields(source_bucket)).unwrap();
        }
        let plain = csv.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        files.push((
            format!("{root}data/{}.csv.gz", rng.uuid()),
            gz.finish().unwrap(),
        ));
    }
    let manifest = manifest(
        root,
        source_bucket,
        destination_bucket,
        "CSV",
        CSV_SCHEMA,
        &files,
        created,
    );
    files.extend(manifest);
    files
}
