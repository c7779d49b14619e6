//! Answering a filter from the catalog.
//!
//! SQL narrows the rows with the catalog's indexes (organization, hour, IDs, users,
//! queues, wrap-up codes, reversed ANI/DNIS digits, typed fields); every condition there
//! is implied by the filter, so no recording that matches is left out. Each row is then
//! rebuilt into the [`Recording`] a live listing would have produced — its objects, its
//! sidecar re-parsed from the bytes kept — and judged by the same
//! [`RecordingFilter::verdict`], so a catalog's answer equals a live listing's.

use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use gcrec_fetch::filter::{RecordingFilter, Verdict, phone_digits};
use gcrec_fetch::layout::ConversationHour;
use gcrec_fetch::metadata::{MetadataError, MetadataProblem};
use gcrec_fetch::recording::{ListingError, MediaFile, Recording, Recordings, ScanEvent};
use gcrec_fetch::scan::parse_sidecar;
use gcrec_fetch::source::ObjectSummary;
use rusqlite::types::Value;
use rusqlite::{Row, params};
use tokio::sync::mpsc;

use crate::index::{
    PROBLEM_CONFLICTING, PROBLEM_TOO_LARGE, PROBLEM_UNREADABLE, SIDECAR_NONE, SIDECAR_VALID,
};
use crate::{Catalog, CatalogError, sqlite};

/// Lists of IDs or keys longer than this are checked after SQL, not in it.
const MAX_SQL_LIST: usize = 500;

/// How a catalog answer is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// By conversation start time (a recording without a sidecar: its partition hour).
    #[default]
    Time,
    /// By duration, shortest first (recordings without a duration first).
    Duration,
}

/// A question for the catalog.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Which recordings.
    pub filter: RecordingFilter,
    /// In which order.
    pub sort: Sort,
    /// Only this source's (its row ID, from [`Catalog::source`]).
    pub source_id: Option<i64>,
}

/// The SQL and its parameters for a query's candidates.
fn candidates(query: &Query) -> (String, Vec<Value>) {
    let f = &query.filter;
    let mut sql = String::from(
        "SELECT r.id, r.organization_id, r.conversation_id, r.recording_id, r.folder, r.hour,
                r.sidecar_state, r.problem_kind, r.problem_detail, r.sidecar_json
         FROM recordings r WHERE 1 = 1",
    );
    let mut values: Vec<Value> = Vec::new();
    let mut list = |sql: &mut String, items: &mut dyn Iterator<Item = String>| {
        let mut marks = Vec::new();
        for item in items {
            values.push(Value::Text(item));
            marks.push(format!("?{}", values.len()));
        }
        sql.push('(');
        sql.push_str(&marks.join(", "));
        sql.push(')');
    };
    if let Some(id) = query.source_id {
        sql.push_str(&format!(" AND r.source_id = {id}"));
    }
    if !f.orgs.is_empty() {
        sql.push_str(" AND r.organization_id COLLATE NOCASE IN ");
        list(&mut sql, &mut f.orgs.iter().cloned());
    }
    for (column, set) in [
        ("conversation_id", &f.conversations),
        ("recording_id", &f.recordings),
    ] {
        if !set.is_empty() && set.len() <= MAX_SQL_LIST {
            sql.push_str(&format!(" AND r.{column} COLLATE NOCASE IN "));
            list(&mut sql, &mut set.iter().cloned());
        }
    }
    if let Some(w) = &f.wanted
        && w.ids.len() + w.keys.len() <= MAX_SQL_LIST
    {
        sql.push_str(" AND (r.recording_id COLLATE NOCASE IN ");
        list(&mut sql, &mut w.ids.iter().cloned());
        sql.push_str(" OR r.conversation_id COLLATE NOCASE IN ");
        list(&mut sql, &mut w.ids.iter().cloned());
        sql.push_str(" OR EXISTS (SELECT 1 FROM objects o WHERE o.recording = r.id AND o.key IN ");
        list(&mut sql, &mut w.keys.iter().cloned());
        sql.push_str("))");
    }
    if let Some(from) = f.range.from {
        sql.push_str(&format!(" AND r.hour > {}", from.timestamp() - 3600));
    }
    if let Some(to) = f.range.to {
        sql.push_str(&format!(" AND r.hour < {}", to.timestamp()));
    }
    if f.has_field_filters() {
        // Recordings without a usable sidecar are answered too: the verdict reports them
        // as unchecked, exactly as a live listing does.
        let mut fields: Vec<String> = Vec::new();
        for (table, column, wanted) in [
            ("recording_users", "user_id", &f.users),
            ("recording_queues", "queue_id", &f.queues),
            ("recording_wrapup_codes", "wrapup_code", &f.wrapup_codes),
        ] {
            if !wanted.is_empty() {
                let mut s = format!(
                    "EXISTS (SELECT 1 FROM {table} t WHERE t.recording = r.id AND t.{column} IN "
                );
                list(&mut s, &mut wanted.iter().cloned());
                s.push(')');
                fields.push(s);
            }
        }
        for (column, wanted) in [
            ("media_type", &f.media_types),
            ("initial_direction", &f.directions),
            ("message_type", &f.message_types),
            ("provider", &f.providers),
        ] {
            if !wanted.is_empty() {
                let mut s = format!("r.{column} IN ");
                list(&mut s, &mut wanted.iter().cloned());
                fields.push(s);
            }
        }
        if let Some(min) = f.min_duration_ms {
            fields.push(format!("r.duration_ms >= {}", crate::index::clamp(min)));
        }
        if let Some(max) = f.max_duration_ms {
            fields.push(format!("r.duration_ms <= {}", crate::index::clamp(max)));
        }
        for (kind, queries) in [("ani", &f.anis), ("dnis", &f.dnis)] {
            if queries.is_empty() {
                continue;
            }
            // Only numbers compared by digits narrow by the index; a SIP address query is
            // left to the verdict.
            let reversed: Option<Vec<String>> = queries
                .iter()
                .map(|q| phone_digits(q).map(|d| d.chars().rev().collect()))
                .collect();
            let Some(reversed) = reversed else { continue };
            let mut ranges = Vec::new();
            for r in reversed {
                values.push(Value::Text(r.clone()));
                let lo = values.len();
                values.push(Value::Text(format!("{r}:")));
                let hi = values.len();
                ranges.push(format!(
                    "(n.digits_reversed >= ?{lo} AND n.digits_reversed < ?{hi})"
                ));
            }
            fields.push(format!(
                "EXISTS (SELECT 1 FROM recording_numbers n WHERE n.recording = r.id AND n.kind = '{kind}' AND ({}))",
                ranges.join(" OR ")
            ));
        }
        if !fields.is_empty() {
            sql.push_str(&format!(
                " AND (r.sidecar_state <> {SIDECAR_VALID} OR ({}))",
                fields.join(" AND ")
            ));
        }
    }
    let time = "coalesce(r.conversation_start, r.hour * 1000)";
    sql.push_str(&match query.sort {
        Sort::Time => {
            format!(" ORDER BY {time}, r.organization_id, r.folder, r.recording_id, r.id")
        }
        Sort::Duration => format!(
            " ORDER BY r.duration_ms, {time}, r.organization_id, r.folder, r.recording_id, r.id"
        ),
    });
    (sql, values)
}

/// The recordings that answer `query`, as a live scan would yield them (matches as
/// [`ScanEvent::Recording`], recordings the field filters could not be checked on as
/// [`ScanEvent::Unchecked`]), in the query's order. Each carries its sidecar's bytes.
/// Rows are read on a thread of their own as the stream is consumed.
pub fn recordings(path: &Path, query: Query) -> Result<Recordings, CatalogError> {
    let catalog = Catalog::open(path)?;
    let (tx, rx) = mpsc::channel::<Result<ScanEvent, ListingError>>(256);
    std::thread::Builder::new()
        .name("gcrec-catalog-query".into())
        .spawn(move || {
            let mut send = |event| tx.blocking_send(Ok(event)).is_ok();
            if let Err(e) = answer(&catalog, &query, &mut send) {
                let _ = tx.blocking_send(Err(ListingError::Other(Box::new(e))));
            }
        })
        .map_err(|source| CatalogError::Io {
            path: path.to_owned(),
            source,
        })?;
    Ok(
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
            .boxed(),
    )
}

/// Hands each answer to `deliver` until it returns `false`.
fn answer(
    catalog: &Catalog,
    query: &Query,
    deliver: &mut dyn FnMut(ScanEvent) -> bool,
) -> Result<(), CatalogError> {
    let path = catalog.path();
    let (sql, values) = candidates(query);
    let conn = catalog.conn();
    let mut statement = conn.prepare(&sql).map_err(sqlite(path))?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(values))
        .map_err(sqlite(path))?;
    let mut objects = conn
        .prepare(
            "SELECT role, seq, key, size, etag, last_modified, extension FROM objects
             WHERE recording = ?1 ORDER BY role, seq",
        )
        .map_err(sqlite(path))?;
    while let Some(row) = rows.next().map_err(sqlite(path))? {
        let recording = rebuild(path, row, &mut objects)?;
        let event = match query.filter.verdict(&recording) {
            Verdict::Match => ScanEvent::Recording(Box::new(recording)),
            Verdict::Unknown => ScanEvent::Unchecked(Box::new(recording)),
            Verdict::NoMatch => continue,
        };
        if !deliver(event) {
            break;
        }
    }
    Ok(())
}

fn corrupt(path: &Path, id: i64, what: impl std::fmt::Display) -> CatalogError {
    CatalogError::Corrupt {
        path: path.to_owned(),
        what: format!("recording row {id}: {what}"),
    }
}

/// Rebuilds one recording row, checking every value.
fn rebuild(
    path: &Path,
    row: &Row<'_>,
    objects: &mut rusqlite::Statement<'_>,
) -> Result<Recording, CatalogError> {
    let id: i64 = row.get(0).map_err(sqlite(path))?;
    let text = |i: usize| row.get::<_, String>(i).map_err(|e| corrupt(path, id, e));
    let hour_secs: i64 = row.get(5).map_err(|e| corrupt(path, id, e))?;
    let hour = ConversationHour::from_timestamp(hour_secs)
        .ok_or_else(|| corrupt(path, id, format!("hour {hour_secs} is not an hour")))?;
    let state: i64 = row.get(6).map_err(|e| corrupt(path, id, e))?;
    let problem_kind: Option<String> = row.get(7).map_err(|e| corrupt(path, id, e))?;
    let detail: Option<String> = row.get(8).map_err(|e| corrupt(path, id, e))?;
    let body: Option<Vec<u8>> = row.get(9).map_err(|e| corrupt(path, id, e))?;
    let mut r = Recording {
        organization_id: text(1)?,
        conversation_id: text(2)?,
        recording_id: text(3)?,
        folder: text(4)?,
        hour,
        media: Vec::new(),
        sidecar: None,
        extra_sidecars: Vec::new(),
        metadata: None,
        sidecar_body: body.map(Bytes::from),
    };
    let mut instructions = Vec::new();
    let mut rows = objects.query(params![id]).map_err(sqlite(path))?;
    while let Some(o) = rows.next().map_err(sqlite(path))? {
        let role: String = o.get(0).map_err(|e| corrupt(path, id, e))?;
        let seq: i64 = o.get(1).map_err(|e| corrupt(path, id, e))?;
        let size: i64 = o.get(3).map_err(|e| corrupt(path, id, e))?;
        let last_modified: Option<String> = o.get(5).map_err(|e| corrupt(path, id, e))?;
        let last_modified = match last_modified {
            Some(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| corrupt(path, id, format!("last-modified {t:?}: {e}")))?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let object = ObjectSummary {
            key: o.get(2).map_err(|e| corrupt(path, id, e))?,
            size: u64::try_from(size).map_err(|_| corrupt(path, id, "negative size"))?,
            etag: o.get(4).map_err(|e| corrupt(path, id, e))?,
            last_modified,
        };
        match role.as_str() {
            "media" => r.media.push(MediaFile {
                object,
                extension: o
                    .get::<_, Option<String>>(6)
                    .map_err(|e| corrupt(path, id, e))?
                    .unwrap_or_default(),
                instruction: None,
            }),
            "instruction" => instructions.push((seq, object)),
            "sidecar" if r.sidecar.is_none() => r.sidecar = Some(object),
            "extra_sidecar" => r.extra_sidecars.push(object),
            other => return Err(corrupt(path, id, format!("object role {other:?}"))),
        }
    }
    for (seq, instruction) in instructions {
        let media = usize::try_from(seq)
            .ok()
            .and_then(|i| r.media.get_mut(i))
            .ok_or_else(|| corrupt(path, id, "an instruction file without its media"))?;
        media.instruction = Some(instruction);
    }
    r.metadata = metadata(path, id, &r, state, problem_kind, detail)?;
    if r.sidecar.is_some() != (state != SIDECAR_NONE) {
        return Err(corrupt(path, id, "sidecar state and objects disagree"));
    }
    Ok(r)
}

/// The sidecar as a live scan would have judged it: re-parsed from its bytes, or the
/// failure recorded when there were none to parse.
fn metadata(
    path: &Path,
    id: i64,
    r: &Recording,
    state: i64,
    problem_kind: Option<String>,
    detail: Option<String>,
) -> Result<Option<Result<gcrec_fetch::metadata::RecordingMetadata, MetadataError>>, CatalogError> {
    let Some(sidecar) = &r.sidecar else {
        return Ok(None);
    };
    let error = |problem| {
        Ok(Some(Err(MetadataError {
            key: sidecar.key.clone(),
            problem,
        })))
    };
    let detail = detail.unwrap_or_default();
    match problem_kind.as_deref() {
        Some(PROBLEM_TOO_LARGE) => {
            let (size, cap) = detail
                .split_once('/')
                .and_then(|(s, c)| Some((s.parse().ok()?, c.parse().ok()?)))
                .ok_or_else(|| corrupt(path, id, "a size limit that is not size/cap"))?;
            error(MetadataProblem::TooLarge { size, cap })
        }
        Some(PROBLEM_UNREADABLE) => error(MetadataProblem::Unreadable(detail)),
        Some(PROBLEM_CONFLICTING) => error(MetadataProblem::Conflicting { others: detail }),
        _ => {
            let body = r
                .sidecar_body
                .as_ref()
                .ok_or_else(|| corrupt(path, id, "a sidecar read without its bytes"))?;
            let parsed = parse_sidecar(r, &sidecar.key, body);
            if parsed.is_ok() != (state == SIDECAR_VALID) {
                return Err(corrupt(
                    path,
                    id,
                    "the sidecar's state does not match its bytes",
                ));
            }
            Ok(Some(parsed))
        }
    }
}

/// Counts what `query` answers: (matches, unchecked). Blocking: call it off the async
/// runtime's threads.
pub fn count(path: &Path, query: &Query) -> Result<(u64, u64), CatalogError> {
    let catalog = Catalog::open(path)?;
    let (mut matches, mut unchecked) = (0, 0);
    answer(&catalog, query, &mut |event| {
        match event {
            ScanEvent::Recording(_) => matches += 1,
            ScanEvent::Unchecked(_) => unchecked += 1,
            ScanEvent::Skipped(_) => {}
        }
        true
    })?;
    Ok((matches, unchecked))
}
