//! An S3 Inventory report as the listing: past one machine, the bucket's own daily (or
//! weekly) list of every object replaces hours of LIST calls.
//!
//! A report is a `manifest.json` (the source bucket, the format, the column schema and
//! the data files with their MD5s), a `manifest.checksum` (the MD5 of `manifest.json`) and
//! data files: gzip-compressed CSV without a header (keys URL-encoded), Parquet, or ORC
//! (not read: it fails with a clear error). [`Inventory::open`] reads and checks the
//! manifest; [`Inventory::list_and_pair`] reads every data file — each one downloaded to
//! a temporary file and checked against its MD5 before a single row of it is used, so a
//! corrupted report yields nothing — keeps the latest version of each object (no delete
//! markers), drops rows outside the query's organizations, hours and shard, and pairs the
//! rest into recordings.
//!
//! Inventory rows come in no particular order, and pairing needs a conversation folder's
//! keys together. Rows are therefore spilled to disk, hash-partitioned by folder, and
//! each partition is sorted and paired on its own: memory holds one partition, whatever
//! the inventory's size.

use std::collections::hash_map::DefaultHasher;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::filter::RecordingFilter;
use crate::layout::{ConversationHour, ParsedKey, parse_key};
use crate::recording::{ListingError, ScanEvent};
use crate::scan::Pairer;
use crate::source::{GetRequest, ObjectSource, ObjectSummary, SourceError, read_small};

/// The largest `manifest.json` read.
pub const MAX_MANIFEST: u64 = 64 * 1024 * 1024;
/// Spill partitions are sized for about this many compressed report bytes each.
const BYTES_PER_PARTITION: u64 = 4 * 1024 * 1024;
/// At most this many spill partitions.
const MAX_PARTITIONS: u64 = 4096;

/// Why an inventory report could not be used. Nothing from it was used.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// Reading the report failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// `manifest.json` does not match `manifest.checksum`.
    #[error(
        "{key}: the manifest's MD5 is {found}, but manifest.checksum says {expected}; the report is damaged or incomplete, use another"
    )]
    ManifestChecksum {
        /// The manifest.
        key: String,
        /// What manifest.checksum says.
        expected: String,
        /// What the manifest hashes to.
        found: String,
    },
    /// A data file does not match its MD5 in the manifest.
    #[error(
        "{key}: the inventory data file's MD5 is {found}, but the manifest says {expected}; the report is damaged, use another"
    )]
    DataChecksum {
        /// The data file.
        key: String,
        /// What the manifest says.
        expected: String,
        /// What it hashes to.
        found: String,
    },
    /// A data file is not the size the manifest gives.
    #[error("{key}: the inventory data file is {found} bytes, the manifest says {expected}")]
    DataSize {
        /// The data file.
        key: String,
        /// What the manifest says.
        expected: u64,
        /// What was read.
        found: u64,
    },
    /// The manifest is not what S3 Inventory writes.
    #[error("{key}: not an S3 Inventory manifest: {why}")]
    BadManifest {
        /// The manifest.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// A format gcrec does not read.
    #[error(
        "{key}: the inventory is in {format} format, which gcrec does not read; configure the inventory as CSV or Parquet"
    )]
    Unsupported {
        /// The manifest.
        key: String,
        /// The format.
        format: String,
    },
    /// A data file's content is not what its format promises.
    #[error("{key}: {why}")]
    BadData {
        /// The data file.
        key: String,
        /// What is wrong (with the row number).
        why: String,
    },
    /// The report is of another bucket.
    #[error("the inventory is of bucket {inventory_of}, but the export is in {export}")]
    OtherBucket {
        /// The bucket the report lists.
        inventory_of: String,
        /// The bucket being read.
        export: String,
    },
    /// Spilling rows to disk failed.
    #[error("spilling inventory rows to {}: {source}", path.display())]
    Spill {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// How the report's data files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FileFormat {
    /// Gzip-compressed CSV, no header, keys URL-encoded.
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// One data file of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataFile {
    /// Its key in the report's bucket.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// Its MD5, hex.
    pub md5: String,
}

/// A checked `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The bucket the report lists.
    pub source_bucket: String,
    /// The data files' format.
    pub format: FileFormat,
    /// The columns, in order (CSV), normalised (`lastmodifieddate`).
    pub columns: Vec<String>,
    /// The data files.
    pub files: Vec<DataFile>,
    /// When S3 began scanning the bucket for this report.
    pub created: DateTime<Utc>,
}

/// An inventory report, its manifest checked, ready to be read.
#[derive(Debug, Clone)]
pub struct Inventory {
    source: Arc<dyn ObjectSource>,
    manifest_key: String,
    /// The manifest.
    pub manifest: Manifest,
    /// Where rows are spilled (a temporary directory in it); the system's by default.
    pub spill_dir: Option<PathBuf>,
    /// Leave the hours from the report's creation hour on to a live listing (objects
    /// written after the report was made are then seen too).
    pub since: bool,
}

/// A column name as the CSV schema (`LastModifiedDate`) or Parquet (`last_modified_date`)
/// spells it, normalised.
fn normal(column: &str) -> String {
    column
        .trim()
        .chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

impl Manifest {
    /// Parses and checks a manifest's bytes (its checksum is checked by
    /// [`Inventory::open`]).
    pub fn parse(key: &str, body: &[u8]) -> Result<Self, InventoryError> {
        let bad = |why: String| InventoryError::BadManifest {
            key: key.to_owned(),
            why: crate::brief(&why),
        };
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
        let text = |field: &str| {
            v.get(field)
                .and_then(|x| x.as_str())
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("no {field}")))
        };
        let format = match text("fileFormat")?.to_ascii_lowercase().as_str() {
            "csv" => FileFormat::Csv,
            "parquet" => FileFormat::Parquet,
            other => {
                return Err(InventoryError::Unsupported {
                    key: key.to_owned(),
                    format: crate::brief(other).to_uppercase(),
                });
            }
        };
        let schema = text("fileSchema")?;
        let columns: Vec<String> = match format {
            FileFormat::Csv => schema.split(',').map(normal).collect(),
            // `message s3.inventory { required binary bucket (UTF8); … }`
            FileFormat::Parquet => schema
                .split(['{', ';', '}'])
                .filter_map(|field| {
                    let words: Vec<&str> = field.split_whitespace().collect();
                    (words.len() >= 3 && !field.contains("message")).then(|| normal(words[2]))
                })
                .collect(),
        };
        for needed in ["bucket", "key"] {
            if !columns.iter().any(|c| c == needed) {
                return Err(bad(format!("the schema has no {needed} column: {schema}")));
            }
        }
        let created_ms: i64 = match v.get("creationTimestamp") {
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            _ => None,
        }
        .ok_or_else(|| bad("no creationTimestamp".into()))?;
        let created = DateTime::from_timestamp_millis(created_ms)
            .ok_or_else(|| bad(format!("creationTimestamp {created_ms} is not a time")))?;
        let files = v
            .get("files")
            .and_then(|f| f.as_array())
            .ok_or_else(|| bad("no files".into()))?
            .iter()
            .map(|f| {
                let key = f.get("key").and_then(|k| k.as_str());
                let size = f.get("size").and_then(|s| s.as_u64());
                let md5 = f.get("MD5checksum").and_then(|m| m.as_str());
                match (key, size, md5) {
                    (Some(key), Some(size), Some(md5))
                        if md5.len() == 32 && md5.chars().all(|c| c.is_ascii_hexdigit()) =>
                    {
                        Ok(DataFile {
                            key: key.to_owned(),
                            size,
                            md5: md5.to_ascii_lowercase(),
                        })
                    }
                    _ => Err(bad(format!(
                        "a file entry without key, size and MD5checksum: {f}"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Manifest {
            source_bucket: text("sourceBucket")?,
            format,
            columns,
            files,
            created,
        })
    }
}

/// One inventory row, as kept between the passes.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    key: String,
    size: u64,
    etag: Option<String>,
    last_modified: Option<DateTime<Utc>>,
}

impl Inventory {
    /// Reads `manifest_key` (a `manifest.json`) from `source` and checks it against the
    /// `manifest.checksum` beside it.
    pub async fn open(
        source: Arc<dyn ObjectSource>,
        manifest_key: &str,
    ) -> Result<Self, InventoryError> {
        let body = read_small(&*source, manifest_key, MAX_MANIFEST).await?;
        let checksum_key = match manifest_key.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/manifest.checksum"),
            None => "manifest.checksum".to_owned(),
        };
        let expected = read_small(&*source, &checksum_key, 1024).await?;
        let expected = String::from_utf8_lossy(&expected)
            .trim()
            .to_ascii_lowercase();
        let found = md5_hex(&body);
        if expected != found {
            return Err(InventoryError::ManifestChecksum {
                key: manifest_key.to_owned(),
                expected: crate::brief(&expected),
                found,
            });
        }
        Ok(Self {
            source,
            manifest_key: manifest_key.to_owned(),
            manifest: Manifest::parse(manifest_key, &body)?,
            spill_dir: None,
            since: false,
        })
    }

    /// The manifest's key.
    pub fn manifest_key(&self) -> &str {
        &self.manifest_key
    }

    /// The first hour a live listing covers when [`Inventory::since`] is set: the hour
    /// the report was made in (it may be incomplete in the report).
    pub fn live_from(&self) -> Option<ConversationHour> {
        let t = self.manifest.created.timestamp();
        self.since
            .then(|| ConversationHour::from_timestamp(t - t.rem_euclid(3600)))
            .flatten()
    }

    /// Checks the report is of `bucket` (the export's).
    pub fn check_bucket(&self, bucket: &str) -> Result<(), InventoryError> {
        if self.manifest.source_bucket == bucket {
            Ok(())
        } else {
            Err(InventoryError::OtherBucket {
                inventory_of: crate::brief(&self.manifest.source_bucket),
                export: bucket.to_owned(),
            })
        }
    }

    /// Reads every data file, checks it, and sends the recordings under `base_prefix`
    /// that `filter`'s location checks admit (and the keys that are not recordings) to
    /// `tx`, paired as a listing's. Blocking: run it on a blocking thread; `handle`
    /// drives the downloads.
    pub fn list_and_pair(
        &self,
        handle: &tokio::runtime::Handle,
        base_prefix: &str,
        filter: &RecordingFilter,
        tx: &mpsc::Sender<Result<ScanEvent, ListingError>>,
    ) -> Result<(), InventoryError> {
        let spill = match &self.spill_dir {
            Some(dir) => tempfile::Builder::new()
                .prefix(".gcrec-inventory-")
                .tempdir_in(dir),
            None => tempfile::Builder::new()
                .prefix("gcrec-inventory-")
                .tempdir(),
        }
        .map_err(|source| InventoryError::Spill {
            path: self.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
            source,
        })?;
        let total: u64 = self.manifest.files.iter().map(|f| f.size).sum();
        let partitions = (total / BYTES_PER_PARTITION).clamp(1, MAX_PARTITIONS) as usize;
        let mut writers = Partitions::create(spill.path(), partitions)?;
        let live_from = self.live_from();
        // Pass 1: every data file checked, its rows kept or dropped, spilled by folder.
        for file in &self.manifest.files {
            let local = spill.path().join("data");
            self.fetch_checked(handle, file, &local)?;
            let mut keep = |row: Row| -> Result<(), InventoryError> {
                if !row.key.starts_with(base_prefix) {
                    return Ok(());
                }
                let partition_key = match parse_key(&row.key) {
                    ParsedKey::Export(k) => {
                        if !filter.admits_key(&k) || live_from.is_some_and(|h| k.hour >= h) {
                            return Ok(());
                        }
                        k.folder().to_owned()
                    }
                    ParsedKey::Skipped(_) => row.key.clone(),
                };
                writers.write(&partition_key, &row)
            };
            match self.manifest.format {
                FileFormat::Csv => self.read_csv(file, &local, &mut keep)?,
                FileFormat::Parquet => read_parquet(file, &local, &mut keep)?,
            }
            let _ = std::fs::remove_file(&local);
        }
        let files = writers.finish()?;
        // Pass 2: each partition sorted and paired.
        for path in files {
            let mut rows = read_partition(&path)?;
            let _ = std::fs::remove_file(&path);
            rows.sort_by(|a, b| a.key.cmp(&b.key));
            rows.dedup_by(|a, b| a.key == b.key);
            let mut pairer = Pairer::new();
            let mut events = Vec::new();
            for row in rows {
                events.extend(pairer.push(ObjectSummary {
                    key: row.key,
                    size: row.size,
                    etag: row.etag,
                    last_modified: row.last_modified,
                }));
                if send(tx, filter, &mut events).is_err() {
                    return Ok(());
                }
            }
            events.extend(pairer.finish());
            if send(tx, filter, &mut events).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Downloads a data file to `local`, checking its size and MD5 as it goes.
    fn fetch_checked(
        &self,
        handle: &tokio::runtime::Handle,
        file: &DataFile,
        local: &Path,
    ) -> Result<(), InventoryError> {
        let spill = |source| InventoryError::Spill {
            path: local.to_owned(),
            source,
        };
        let mut out = BufWriter::new(File::create(local).map_err(spill)?);
        let mut md5 = Md5::new();
        let mut received = 0u64;
        handle.block_on(async {
            let body = self.source.get(&file.key, &GetRequest::default()).await?;
            let mut stream = body.stream;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                received += chunk.len() as u64;
                if received > file.size {
                    break;
                }
                md5.update(&chunk);
                out.write_all(&chunk).map_err(spill)?;
            }
            Ok::<_, InventoryError>(())
        })?;
        out.flush().map_err(spill)?;
        if received != file.size {
            return Err(InventoryError::DataSize {
                key: file.key.clone(),
                expected: file.size,
                found: received,
            });
        }
        let found = hex::encode(md5.finalize());
        if found != file.md5 {
            return Err(InventoryError::DataChecksum {
                key: file.key.clone(),
                expected: file.md5.clone(),
                found,
            });
        }
        Ok(())
    }

    fn read_csv(
        &self,
        file: &DataFile,
        local: &Path,
        keep: &mut dyn FnMut(Row) -> Result<(), InventoryError>,
    ) -> Result<(), InventoryError> {
        let columns = &self.manifest.columns;
        let at = |name: &str| columns.iter().position(|c| c == name);
        let key = at("key");
        let (latest, deleted) = (at("islatest"), at("isdeletemarker"));
        let (size, modified, etag) = (at("size"), at("lastmodifieddate"), at("etag"));
        let reader = File::open(local).map_err(|source| InventoryError::Spill {
            path: local.to_owned(),
            source,
        })?;
        let gz = flate2::read::MultiGzDecoder::new(BufReader::new(reader));
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .from_reader(gz);
        let bad = |row: u64, why: String| InventoryError::BadData {
            key: file.key.clone(),
            why: format!("row {row}: {}", crate::brief(&why)),
        };
        let mut record = csv::StringRecord::new();
        let mut n = 0u64;
        loop {
            n += 1;
            match csv.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(bad(n, e.to_string())),
            }
            if record.len() != columns.len() {
                return Err(bad(
                    n,
                    format!("{} fields, the schema has {}", record.len(), columns.len()),
                ));
            }
            let field = |i: Option<usize>| i.map(|i| &record[i]).filter(|s| !s.is_empty());
            let flag = |i: Option<usize>| field(i).map(|s| s.eq_ignore_ascii_case("true"));
            if flag(latest) == Some(false) || flag(deleted) == Some(true) {
                continue;
            }
            let Some(raw_key) = field(key) else {
                return Err(bad(n, "no key".into()));
            };
            let decoded = raw_key.replace('+', " ");
            let key_text = percent_encoding::percent_decode_str(&decoded)
                .decode_utf8()
                .map_err(|_| bad(n, format!("the key {raw_key:?} is not URL-encoded UTF-8")))?
                .into_owned();
            let Some(size) = field(size) else { continue };
            let size: u64 = size
                .parse()
                .map_err(|_| bad(n, format!("size {size:?} is not a number")))?;
            let last_modified = match field(modified) {
                Some(t) => Some(
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|_| bad(n, format!("last-modified {t:?} is not a time")))?
                        .with_timezone(&Utc),
                ),
                None => None,
            };
            keep(Row {
                key: key_text,
                size,
                etag: field(etag).map(quoted),
                last_modified,
            })?;
        }
        Ok(())
    }
}

/// An ETag as a listing gives it: in double quotes.
fn quoted(etag: &str) -> String {
    let bare = etag.trim_matches('"');
    format!("\"{bare}\"")
}

fn read_parquet(
    file: &DataFile,
    local: &Path,
    keep: &mut dyn FnMut(Row) -> Result<(), InventoryError>,
) -> Result<(), InventoryError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let bad = |why: String| InventoryError::BadData {
        key: file.key.clone(),
        why: crate::brief(&why),
    };
    let reader = File::open(local).map_err(|source| InventoryError::Spill {
        path: local.to_owned(),
        source,
    })?;
    let reader = SerializedFileReader::new(reader).map_err(|e| bad(e.to_string()))?;
    let rows = reader.get_row_iter(None).map_err(|e| bad(e.to_string()))?;
    for (n, row) in rows.enumerate() {
        let row = row.map_err(|e| bad(format!("row {}: {e}", n + 1)))?;
        let (mut key, mut size, mut etag, mut modified) = (None, None, None, None);
        let (mut latest, mut deleted) = (None, None);
        for (name, value) in row.get_column_iter() {
            match (normal(name).as_str(), value) {
                ("key", Field::Str(s)) => key = Some(s.clone()),
                ("size", Field::Long(v)) => size = u64::try_from(*v).ok(),
                ("size", Field::Int(v)) => size = u64::try_from(*v).ok(),
                ("etag", Field::Str(s)) => etag = Some(quoted(s)),
                ("lastmodifieddate", Field::TimestampMillis(ms) | Field::Long(ms)) => {
                    modified = DateTime::from_timestamp_millis(*ms);
                }
                ("lastmodifieddate", Field::TimestampMicros(us)) => {
                    modified = DateTime::from_timestamp_micros(*us);
                }
                ("islatest", Field::Bool(b)) => latest = Some(*b),
                ("isdeletemarker", Field::Bool(b)) => deleted = Some(*b),
                _ => {}
            }
        }
        if latest == Some(false) || deleted == Some(true) {
            continue;
        }
        let key = key.ok_or_else(|| bad(format!("row {}: no key", n + 1)))?;
        let Some(size) = size else { continue };
        keep(Row {
            key,
            size,
            etag,
            last_modified: modified,
        })?;
    }
    Ok(())
}

/// Sends the events `filter` admits, emptying `events`; `Err` when the receiver is gone.
fn send(
    tx: &mpsc::Sender<Result<ScanEvent, ListingError>>,
    filter: &RecordingFilter,
    events: &mut Vec<ScanEvent>,
) -> Result<(), ()> {
    for event in events.drain(..) {
        if filter.admits_event(&event) && tx.blocking_send(Ok(event)).is_err() {
            return Err(());
        }
    }
    Ok(())
}

/// The spill files, one per partition, JSON Lines.
struct Partitions {
    paths: Vec<PathBuf>,
    writers: Vec<BufWriter<File>>,
}

impl Partitions {
    fn create(dir: &Path, n: usize) -> Result<Self, InventoryError> {
        let mut paths = Vec::with_capacity(n);
        let mut writers = Vec::with_capacity(n);
        for i in 0..n {
            let path = dir.join(format!("part-{i:04}.jsonl"));
            let file = File::create(&path).map_err(|source| InventoryError::Spill {
                path: path.clone(),
                source,
            })?;
            // Small buffers: thousands of partitions stay within a few megabytes.
            writers.push(BufWriter::with_capacity(1024, file));
            paths.push(path);
        }
        Ok(Self { paths, writers })
    }

    fn write(&mut self, partition_key: &str, row: &Row) -> Result<(), InventoryError> {
        let mut hasher = DefaultHasher::new();
        partition_key.hash(&mut hasher);
        let i = (hasher.finish() % self.writers.len() as u64) as usize;
        let spill = |source| InventoryError::Spill {
            path: self.paths[i].clone(),
            source,
        };
        let line = serde_json::to_vec(row).map_err(|e| spill(e.into()))?;
        let w = &mut self.writers[i];
        w.write_all(&line).map_err(spill)?;
        w.write_all(b"\n").map_err(spill)
    }

    fn finish(self) -> Result<Vec<PathBuf>, InventoryError> {
        for (w, path) in self.writers.into_iter().zip(&self.paths) {
            w.into_inner().map_err(|e| InventoryError::Spill {
                path: path.clone(),
                source: e.into_error(),
            })?;
        }
        Ok(self.paths)
    }
}

fn read_partition(path: &Path) -> Result<Vec<Row>, InventoryError> {
    let spill = |source| InventoryError::Spill {
        path: path.to_owned(),
        source,
    };
    let mut rows = Vec::new();
    let mut reader = BufReader::new(File::open(path).map_err(spill)?);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(spill)? == 0 {
            break;
        }
        rows.push(serde_json::from_str(&line).map_err(|e| spill(e.into()))?);
    }
    Ok(rows)
}
