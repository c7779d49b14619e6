//! Building and updating a catalog from a source.
//!
//! A run lists the source with the ordinary scan (pruned to the hours it needs), and for
//! each recording compares the sidecars listed with the ones the catalog holds: only a
//! new or changed sidecar (ETag, size or last-modified differ, or its last read failed)
//! is read. Rows are written by one thread that owns the connection and commits each
//! partition (organization and hour) as it ends, so an interrupted run keeps what it
//! committed and the next run reads none of it again.
//!
//! Incremental runs list from the newest hour the catalog holds for the source (that hour
//! again, as it may still have been filling). Recordings that disappeared from the hours a
//! complete run listed are removed from the catalog.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use gcrec_fetch::filter::{RecordingFilter, phone_digits};
use gcrec_fetch::layout::ConversationHour;
use gcrec_fetch::metadata::{MetadataProblem, RecordingMetadata};
use gcrec_fetch::prune::TimeRange;
use gcrec_fetch::recording::{Recording, ScanEvent, SkippedKey};
use gcrec_fetch::scan::{ScanOptions, read_metadata, scan};
use gcrec_fetch::source::{ObjectSource, ObjectSummary};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::mpsc;

use crate::{Catalog, CatalogError, sqlite};

/// What to index and how.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// The source's name in the catalog (`s3://bucket/prefix`, or the directory).
    pub uri: String,
    /// The prefix to list under within the source.
    pub base_prefix: String,
    /// Re-list every hour and re-check every sidecar against its ETag.
    pub full: bool,
    /// Only these organizations and this time range (location filters only).
    pub filter: RecordingFilter,
    /// Sidecars over this size are recorded as invalid, unread.
    pub sidecar_cap: u64,
    /// Sidecars read at once.
    pub concurrency: usize,
    /// An S3 Inventory report to read instead of listing.
    pub inventory: Option<Arc<gcrec_fetch::inventory::Inventory>>,
}

/// What an index run reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexEvent {
    /// The run lists from this hour on (`None`: everything).
    Planned {
        /// The first hour listed.
        from: Option<ConversationHour>,
    },
    /// A recording was listed and written; `read` whether its sidecar was fetched.
    Recording {
        /// Whether its sidecar was read (new or changed) rather than kept.
        read: bool,
    },
    /// A key that is not part of a recording was recorded.
    Skipped,
    /// A partition's rows were committed.
    Committed {
        /// The organization.
        organization_id: String,
        /// The partition hour.
        hour: ConversationHour,
        /// Recordings written in it by this run.
        recordings: u64,
    },
}

/// What an index run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexReport {
    /// The first hour listed (`None`: everything).
    pub listed_from: Option<ConversationHour>,
    /// Recordings listed and written.
    pub recordings: u64,
    /// Sidecars read (new or changed).
    pub sidecars_read: u64,
    /// Recordings whose sidecars were unchanged and not read again (or that have none).
    pub sidecars_kept: u64,
    /// Recordings that disappeared from the listed hours and were removed.
    pub removed: u64,
    /// Keys that are not part of a recording.
    pub skipped_keys: u64,
    /// Partitions committed.
    pub partitions: u64,
    /// The newest partition hour the catalog now holds for the source.
    pub watermark: Option<ConversationHour>,
}

/// One recording on its way to the writer.
struct Row {
    recording: Box<Recording>,
    body: Option<Bytes>,
    /// The sidecar was unchanged: keep the stored fields.
    keep: bool,
}

enum Message {
    Row(Row),
    Skipped(SkippedKey),
}

/// The sidecars of a recording as the catalog last saw them.
#[derive(Debug, PartialEq)]
struct Fingerprint(Vec<(String, u64, Option<String>, Option<String>)>);

impl Fingerprint {
    fn of(r: &Recording) -> Self {
        Self(
            r.sidecar
                .iter()
                .chain(&r.extra_sidecars)
                .map(|o| {
                    (
                        o.key.clone(),
                        o.size,
                        o.etag.clone(),
                        o.last_modified.map(time_text),
                    )
                })
                .collect(),
        )
    }

    /// Whether two fingerprints prove an unchanged sidecar: equal, and something to
    /// compare besides the key and size.
    fn proves_unchanged(&self, other: &Fingerprint) -> bool {
        self == other
            && !self.0.is_empty()
            && self.0.iter().all(|(_, _, e, m)| e.is_some() || m.is_some())
    }
}

/// A last-modified time as the catalog stores it (RFC 3339, exact).
pub(crate) fn time_text(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Builds or updates the catalog at `path` from `source`. Cancelling (dropping the
/// future) keeps every partition already committed.
pub async fn index(
    path: &Path,
    source: Arc<dyn ObjectSource>,
    options: IndexOptions,
    on_event: &mut (dyn FnMut(IndexEvent) + Send),
) -> Result<IndexReport, CatalogError> {
    let path = path.to_owned();
    let (source_id, run, watermark) = {
        let path = path.clone();
        let options = options.clone();
        blocking(move || begin(&path, &options)).await?
    };
    let mut range = options.filter.range;
    let listed_from = match (options.full, watermark) {
        (false, Some(w)) if range.from.is_none() => {
            range.from = Some(w.start());
            Some(w)
        }
        _ => range.from.and_then(|f| {
            ConversationHour::from_timestamp(f.timestamp() - f.timestamp().rem_euclid(3600))
        }),
    };
    on_event(IndexEvent::Planned { from: listed_from });
    let filter = RecordingFilter {
        range,
        orgs: options.filter.orgs.clone(),
        ..RecordingFilter::default()
    };
    let scan_options = ScanOptions {
        base_prefix: options.base_prefix.clone(),
        filter,
        read_all_metadata: false,
        sidecar_cap: options.sidecar_cap,
        concurrency: options.concurrency,
        inventory: options.inventory.clone(),
    };
    let reader = Arc::new(Mutex::new(Lookup::open(&path, source_id)?));
    let cap = options.sidecar_cap;
    let rows = scan(source.clone(), scan_options).map(move |event| {
        let source = source.clone();
        let reader = reader.clone();
        async move {
            let mut recording = match event? {
                ScanEvent::Recording(r) | ScanEvent::Unchecked(r) => r,
                ScanEvent::Skipped(s) => return Ok(Message::Skipped(s)),
            };
            let known = reader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fingerprint(&recording)?;
            let keep = known.is_some_and(|k| k.proves_unchanged(&Fingerprint::of(&recording)));
            let body = if keep {
                None
            } else {
                read_metadata(&*source, &mut recording, cap).await
            };
            Ok::<_, CatalogError>(Message::Row(Row {
                recording,
                body,
                keep,
            }))
        }
    });
    let mut rows = std::pin::pin!(rows.buffered(options.concurrency.max(1)));

    let (tx, rx) = mpsc::channel::<Message>(1024);
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<IndexEvent>();
    let writer = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || write_rows(&path, source_id, run, rx, events_tx))
    };
    let mut failure = None;
    let mut report = IndexReport {
        listed_from,
        ..IndexReport::default()
    };
    loop {
        tokio::select! {
            biased;
            Some(event) = events_rx.recv() => {
                report.count(&event);
                on_event(event);
            }
            next = rows.next() => match next {
                Some(Ok(message)) => {
                    if tx.send(message).await.is_err() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                None => break,
            },
        }
    }
    drop(tx);
    let written = writer.await.map_err(|_| CatalogError::Task);
    while let Ok(event) = events_rx.try_recv() {
        report.count(&event);
        on_event(event);
    }
    written??;
    if let Some(e) = failure {
        return Err(e);
    }
    // The listing completed: what it did not see in the hours it covered is gone.
    let finish = Finish {
        source_id,
        run,
        range,
        orgs: options.filter.orgs.clone(),
        advance_watermark: options.filter.orgs.is_empty() && options.filter.range.to.is_none(),
    };
    let (removed, watermark) = blocking(move || finish.apply(&path)).await?;
    report.removed = removed;
    report.watermark = watermark.and_then(ConversationHour::from_timestamp);
    Ok(report)
}

impl IndexReport {
    fn count(&mut self, event: &IndexEvent) {
        match event {
            IndexEvent::Recording { read } => {
                self.recordings += 1;
                if *read {
                    self.sidecars_read += 1;
                } else {
                    self.sidecars_kept += 1;
                }
            }
            IndexEvent::Skipped => self.skipped_keys += 1,
            IndexEvent::Committed { .. } => self.partitions += 1,
            IndexEvent::Planned { .. } => {}
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CatalogError> + Send + 'static,
) -> Result<T, CatalogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| CatalogError::Task)?
}

/// Creates or finds the source's row and starts a run: (source ID, run number, watermark).
fn begin(
    path: &Path,
    options: &IndexOptions,
) -> Result<(i64, i64, Option<ConversationHour>), CatalogError> {
    let catalog = Catalog::create_or_open(path)?;
    let conn = catalog.conn();
    conn.execute(
        "INSERT INTO sources (uri, base_prefix) VALUES (?1, ?2) ON CONFLICT (uri) DO NOTHING",
        params![options.uri, options.base_prefix],
    )
    .map_err(sqlite(path))?;
    let (id, run, watermark): (i64, i64, Option<i64>) = conn
        .query_row(
            "UPDATE sources SET run = run + 1 WHERE uri = ?1 RETURNING id, run, watermark",
            params![options.uri],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(sqlite(path))?;
    let watermark = match watermark {
        Some(w) => {
            Some(
                ConversationHour::from_timestamp(w).ok_or_else(|| CatalogError::Corrupt {
                    path: path.to_owned(),
                    what: format!("source {}: watermark {w} is not an hour", options.uri),
                })?,
            )
        }
        None => None,
    };
    Ok((id, run, watermark))
}

/// Point lookups of what the catalog holds, on a connection of their own (WAL: they
/// see what the writer has committed).
struct Lookup {
    path: PathBuf,
    conn: Connection,
    source_id: i64,
}

impl Lookup {
    fn open(path: &Path, source_id: i64) -> Result<Self, CatalogError> {
        let catalog = Catalog::open(path)?;
        Ok(Self {
            path: path.to_owned(),
            conn: catalog.conn,
            source_id,
        })
    }

    /// The sidecars the catalog last saw for this recording, unless its last read
    /// failed in a way a new read may cure.
    fn fingerprint(&self, r: &Recording) -> Result<Option<Fingerprint>, CatalogError> {
        let row: Option<(i64, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT id, problem_kind FROM recordings
                 WHERE source_id = ?1 AND folder = ?2 AND recording_id = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![self.source_id, r.folder, r.recording_id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
            })
            .map_err(sqlite(&self.path))?;
        let Some((id, problem)) = row else {
            return Ok(None);
        };
        if problem.as_deref() == Some(PROBLEM_UNREADABLE) {
            return Ok(None);
        }
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT key, size, etag, last_modified FROM objects
                 WHERE recording = ?1 AND role IN ('sidecar', 'extra_sidecar')
                 ORDER BY role DESC, seq",
            )
            .map_err(sqlite(&self.path))?;
        let objects = statement
            .query_map(params![id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)? as u64,
                    row.get(2)?,
                    row.get(3)?,
                ))
            })
            .map_err(sqlite(&self.path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite(&self.path))?;
        Ok(Some(Fingerprint(objects)))
    }
}

/// `problem_kind` of a sidecar that could not be read (re-read on the next run).
pub(crate) const PROBLEM_UNREADABLE: &str = "unreadable";
/// `problem_kind` of a sidecar over the size limit (unread).
pub(crate) const PROBLEM_TOO_LARGE: &str = "too_large";
/// `problem_kind` of sidecars that disagree.
pub(crate) const PROBLEM_CONFLICTING: &str = "conflicting";
/// `problem_kind` of a sidecar whose bytes are invalid (re-derived from them on read).
pub(crate) const PROBLEM_INVALID: &str = "invalid";

/// `sidecar_state`: no sidecar.
pub(crate) const SIDECAR_NONE: i64 = 0;
/// `sidecar_state`: a valid sidecar, its fields in the typed columns.
pub(crate) const SIDECAR_VALID: i64 = 1;
/// `sidecar_state`: a sidecar that could not be used.
pub(crate) const SIDECAR_INVALID: i64 = 2;

/// The writer: owns the connection, commits per partition.
fn write_rows(
    path: &Path,
    source_id: i64,
    run: i64,
    mut rx: mpsc::Receiver<Message>,
    events: mpsc::UnboundedSender<IndexEvent>,
) -> Result<(), CatalogError> {
    let mut catalog = Catalog::create_or_open(path)?;
    let mut partition: Option<(String, ConversationHour)> = None;
    let mut in_partition = 0u64;
    let mut tx = catalog.conn.transaction().map_err(sqlite(path))?;
    while let Some(message) = rx.blocking_recv() {
        match message {
            Message::Skipped(s) => {
                tx.execute(
                    "INSERT INTO skipped (source_id, key, reason, run) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (source_id, key) DO UPDATE SET reason = excluded.reason, run = excluded.run",
                    params![source_id, s.key, s.reason.as_str(), run],
                )
                .map_err(sqlite(path))?;
                let _ = events.send(IndexEvent::Skipped);
            }
            Message::Row(row) => {
                let here = (row.recording.organization_id.clone(), row.recording.hour);
                if partition.as_ref().is_some_and(|p| *p != here) {
                    tx.commit().map_err(sqlite(path))?;
                    if let Some((organization_id, hour)) = partition.take() {
                        let _ = events.send(IndexEvent::Committed {
                            organization_id,
                            hour,
                            recordings: in_partition,
                        });
                    }
                    in_partition = 0;
                    tx = catalog.conn.transaction().map_err(sqlite(path))?;
                }
                partition = Some(here);
                write_row(&tx, path, source_id, run, &row)?;
                in_partition += 1;
                let read = !row.keep && row.recording.sidecar.is_some();
                let _ = events.send(IndexEvent::Recording { read });
            }
        }
    }
    tx.commit().map_err(sqlite(path))?;
    if let Some((organization_id, hour)) = partition {
        let _ = events.send(IndexEvent::Committed {
            organization_id,
            hour,
            recordings: in_partition,
        });
    }
    Ok(())
}

fn ms(t: chrono::DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn write_row(
    tx: &Transaction<'_>,
    path: &Path,
    source_id: i64,
    run: i64,
    row: &Row,
) -> Result<(), CatalogError> {
    let r = &row.recording;
    let orphan = r.orphan().map(|o| o.as_str());
    let hour = r.hour.start().timestamp();
    let id: i64 = if row.keep {
        tx.query_row(
            "UPDATE recordings SET orphan = ?1, run = ?2
             WHERE source_id = ?3 AND folder = ?4 AND recording_id = ?5 RETURNING id",
            params![orphan, run, source_id, r.folder, r.recording_id],
            |x| x.get(0),
        )
        .map_err(sqlite(path))?
    } else {
        let meta = r.valid_metadata();
        let (state, problem_kind, problem, detail) = match &r.metadata {
            None => (SIDECAR_NONE, None, None, None),
            Some(Ok(_)) => (SIDECAR_VALID, None, None, None),
            Some(Err(e)) => {
                let (kind, detail) = match &e.problem {
                    MetadataProblem::TooLarge { size, cap } => {
                        (PROBLEM_TOO_LARGE, Some(format!("{size}/{cap}")))
                    }
                    MetadataProblem::Unreadable(why) => (PROBLEM_UNREADABLE, Some(why.clone())),
                    MetadataProblem::Conflicting { others } => {
                        (PROBLEM_CONFLICTING, Some(others.clone()))
                    }
                    _ => (PROBLEM_INVALID, None),
                };
                (
                    SIDECAR_INVALID,
                    Some(kind),
                    Some(e.problem.to_string()),
                    detail,
                )
            }
        };
        let m = |f: fn(&RecordingMetadata) -> Option<String>| meta.and_then(f);
        let id = tx
            .prepare_cached(
                "INSERT INTO recordings (
                    source_id, organization_id, conversation_id, recording_id, folder, hour,
                    orphan, sidecar_state, problem_kind, problem, problem_detail,
                    media_type, provider, initial_direction, message_type, language_ids,
                    conversation_start, conversation_end, start_time, end_time, duration_ms,
                    ani_normalized, ani_displayable, dnis_normalized, dnis_displayable,
                    file_path, file_size, sidecar_json, run)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)
                 ON CONFLICT (source_id, folder, recording_id) DO UPDATE SET
                    organization_id = excluded.organization_id,
                    conversation_id = excluded.conversation_id,
                    hour = excluded.hour, orphan = excluded.orphan,
                    sidecar_state = excluded.sidecar_state,
                    problem_kind = excluded.problem_kind, problem = excluded.problem,
                    problem_detail = excluded.problem_detail,
                    media_type = excluded.media_type, provider = excluded.provider,
                    initial_direction = excluded.initial_direction,
                    message_type = excluded.message_type, language_ids = excluded.language_ids,
                    conversation_start = excluded.conversation_start,
                    conversation_end = excluded.conversation_end,
                    start_time = excluded.start_time, end_time = excluded.end_time,
                    duration_ms = excluded.duration_ms,
                    ani_normalized = excluded.ani_normalized,
                    ani_displayable = excluded.ani_displayable,
                    dnis_normalized = excluded.dnis_normalized,
                    dnis_displayable = excluded.dnis_displayable,
                    file_path = excluded.file_path, file_size = excluded.file_size,
                    sidecar_json = excluded.sidecar_json, run = excluded.run
                 RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    rusqlite::params![
                        source_id,
                        r.organization_id,
                        r.conversation_id,
                        r.recording_id,
                        r.folder,
                        hour,
                        orphan,
                        state,
                        problem_kind,
                        problem,
                        detail,
                        meta.map(|m| m.media_type.as_str().to_owned()),
                        meta.map(|m| m.provider.clone()),
                        m(|m| m.initial_direction.clone()),
                        m(|m| m.message_type.clone()),
                        m(|m| m.language_ids.clone()),
                        meta.map(|m| ms(m.conversation_start_time)),
                        meta.map(|m| ms(m.conversation_end_time)),
                        meta.map(|m| ms(m.start_time)),
                        meta.map(|m| ms(m.end_time)),
                        meta.map(|m| clamp(m.duration_ms)),
                        m(|m| m.ani_normalized.clone()),
                        m(|m| m.ani_displayable.clone()),
                        m(|m| m.dnis_normalized.clone()),
                        m(|m| m.dnis_displayable.clone()),
                        meta.map(|m| m.file_path.clone()),
                        meta.map(|m| clamp(m.file_size)),
                        row.body.as_deref(),
                        run,
                    ],
                    |x| x.get(0),
                )
            })
            .map_err(sqlite(path))?;
        for table in [
            "recording_users",
            "recording_queues",
            "recording_wrapup_codes",
            "recording_numbers",
        ] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE recording = ?1"))
                .and_then(|mut s| s.execute(params![id]))
                .map_err(sqlite(path))?;
        }
        if let Some(meta) = meta {
            let lists: [(&str, &Vec<String>); 3] = [
                (
                    "INSERT OR IGNORE INTO recording_users (user_id, recording) VALUES (?1, ?2)",
                    &meta.user_ids,
                ),
                (
                    "INSERT OR IGNORE INTO recording_queues (queue_id, recording) VALUES (?1, ?2)",
                    &meta.queue_ids,
                ),
                (
                    "INSERT OR IGNORE INTO recording_wrapup_codes (wrapup_code, recording) VALUES (?1, ?2)",
                    &meta.wrapup_codes,
                ),
            ];
            for (sql, values) in lists {
                let mut s = tx.prepare_cached(sql).map_err(sqlite(path))?;
                for v in values {
                    s.execute(params![v, id]).map_err(sqlite(path))?;
                }
            }
            let numbers = [
                ("ani", &meta.ani_normalized),
                ("ani", &meta.ani_displayable),
                ("dnis", &meta.dnis_normalized),
                ("dnis", &meta.dnis_displayable),
            ];
            let mut s = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO recording_numbers (kind, digits_reversed, recording)
                     VALUES (?1, ?2, ?3)",
                )
                .map_err(sqlite(path))?;
            for (kind, value) in numbers {
                if let Some(d) = value.as_deref().and_then(phone_digits) {
                    let reversed: String = d.chars().rev().collect();
                    s.execute(params![kind, reversed, id])
                        .map_err(sqlite(path))?;
                }
            }
        }
        id
    };
    tx.prepare_cached("DELETE FROM objects WHERE recording = ?1")
        .and_then(|mut s| s.execute(params![id]))
        .map_err(sqlite(path))?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO objects (recording, role, seq, key, size, etag, last_modified, extension)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(sqlite(path))?;
    let mut put = |role: &str, seq: usize, o: &ObjectSummary, extension: Option<&str>| {
        insert
            .execute(params![
                id,
                role,
                seq as i64,
                o.key,
                clamp(o.size),
                o.etag,
                o.last_modified.map(time_text),
                extension,
            ])
            .map(|_| ())
            .map_err(sqlite(path))
    };
    for (i, media) in r.media.iter().enumerate() {
        put("media", i, &media.object, Some(&media.extension))?;
        if let Some(instruction) = &media.instruction {
            put("instruction", i, instruction, None)?;
        }
    }
    if let Some(s) = &r.sidecar {
        put("sidecar", 0, s, None)?;
    }
    for (i, s) in r.extra_sidecars.iter().enumerate() {
        put("extra_sidecar", i, s, None)?;
    }
    Ok(())
}

/// SQLite integers are signed: sizes past `i64::MAX` cannot occur, and are clamped.
pub(crate) fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What a completed run settles: removals in the hours it listed, the watermark.
struct Finish {
    source_id: i64,
    run: i64,
    range: TimeRange,
    orgs: Vec<String>,
    advance_watermark: bool,
}

impl Finish {
    fn apply(self, path: &Path) -> Result<(u64, Option<i64>), CatalogError> {
        let mut catalog = Catalog::create_or_open(path)?;
        let tx = catalog.conn.transaction().map_err(sqlite(path))?;
        let from = self
            .range
            .from
            .map_or(i64::MIN, |f| f.timestamp() - f.timestamp().rem_euclid(3600));
        let to = self.range.to.map_or(i64::MAX, |t| t.timestamp());
        let mut removed = 0u64;
        let mut statement = tx
            .prepare(
                "DELETE FROM recordings WHERE source_id = ?1 AND run <> ?2
                 AND hour >= ?3 AND hour < ?4 AND organization_id = ?5",
            )
            .map_err(sqlite(path))?;
        let mut statement_all = tx
            .prepare(
                "DELETE FROM recordings WHERE source_id = ?1 AND run <> ?2
                 AND hour >= ?3 AND hour < ?4",
            )
            .map_err(sqlite(path))?;
        if self.orgs.is_empty() {
            removed += statement_all
                .execute(params![self.source_id, self.run, from, to])
                .map_err(sqlite(path))? as u64;
        } else {
            for org in &self.orgs {
                removed += statement
                    .execute(params![self.source_id, self.run, from, to, org])
                    .map_err(sqlite(path))? as u64;
            }
        }
        drop((statement, statement_all));
        if self.range.is_unbounded() && self.orgs.is_empty() {
            tx.execute(
                "DELETE FROM skipped WHERE source_id = ?1 AND run <> ?2",
                params![self.source_id, self.run],
            )
            .map_err(sqlite(path))?;
        }
        let newest: Option<i64> = tx
            .query_row(
                "SELECT max(hour) FROM recordings WHERE source_id = ?1",
                params![self.source_id],
                |r| r.get(0),
            )
            .map_err(sqlite(path))?;
        if self.advance_watermark {
            tx.execute(
                "UPDATE sources SET watermark = ?2, indexed_at = ?3 WHERE id = ?1",
                params![self.source_id, newest, time_text(Utc::now())],
            )
            .map_err(sqlite(path))?;
        }
        tx.commit().map_err(sqlite(path))?;
        // Statistics for the query planner (sampled: a fraction of a second on millions of
        // rows), so it knows an hour is narrower than a user of many recordings.
        catalog
            .conn
            .execute_batch("PRAGMA analysis_limit = 1000; ANALYZE;")
            .map_err(sqlite(path))?;
        let watermark = tx_watermark(&catalog, path, self.source_id)?;
        Ok((removed, watermark))
    }
}

fn tx_watermark(
    catalog: &Catalog,
    path: &Path,
    source_id: i64,
) -> Result<Option<i64>, CatalogError> {
    catalog
        .conn
        .query_row(
            "SELECT watermark FROM sources WHERE id = ?1",
            params![source_id],
            |r| r.get(0),
        )
        .map_err(sqlite(path))
}
