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
use gcrec_fetch::filter::{RecordingFilter, Verdict, phone_digits, phone_suffix_allowed};
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

/// SQL text and its parameters, built together.
#[derive(Default)]
struct Sql {
    values: Vec<Value>,
}

impl Sql {
    /// `(?1, ?2, …)` for `items`, binding them.
    fn list(&mut self, items: impl IntoIterator<Item = String>) -> String {
        let marks: Vec<String> = items
            .into_iter()
            .map(|item| {
                self.values.push(Value::Text(item));
                format!("?{}", self.values.len())
            })
            .collect();
        format!("({})", marks.join(", "))
    }

    /// `?N` for one value.
    fn one(&mut self, item: String) -> String {
        self.values.push(Value::Text(item));
        format!("?{}", self.values.len())
    }
}

/// How a condition is built: a superset of the answer (candidates, judged afterwards by
/// the verdict), or exactly the answer (counting in SQL).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Candidates,
    Exact,
}

/// The conditions on the recording's location: organization, IDs, hour overlapping the
/// range. `None` in exact mode when one cannot be said exactly in SQL.
fn location(query: &Query, sql: &mut Sql, mode: Mode) -> Option<Vec<String>> {
    let f = &query.filter;
    let mut conditions = Vec::new();
    if let Some(id) = query.source_id {
        conditions.push(format!("r.source_id = {id}"));
    }
    if !f.orgs.is_empty() {
        conditions.push(format!(
            "r.organization_id COLLATE NOCASE IN {}",
            sql.list(f.orgs.iter().cloned())
        ));
    }
    for (column, set) in [
        ("conversation_id", &f.conversations),
        ("recording_id", &f.recordings),
    ] {
        if set.is_empty() {
            continue;
        }
        if set.len() > MAX_SQL_LIST {
            if mode == Mode::Exact {
                return None;
            }
            continue;
        }
        conditions.push(format!(
            "r.{column} COLLATE NOCASE IN {}",
            sql.list(set.iter().cloned())
        ));
    }
    if let Some(w) = &f.wanted {
        if mode == Mode::Exact {
            return None;
        }
        // A long recordings file is left to the verdict alone.
        if w.ids.len() + w.keys.len() <= MAX_SQL_LIST {
            let ids = sql.list(w.ids.iter().cloned());
            let keys = sql.list(w.keys.iter().cloned());
            conditions.push(format!(
                "(r.recording_id COLLATE NOCASE IN {ids} OR r.conversation_id COLLATE NOCASE IN {ids} \
                 OR EXISTS (SELECT 1 FROM objects o WHERE o.recording = r.id AND o.key IN {keys}))"
            ));
        }
    }
    if f.shard.is_some() && mode == Mode::Exact {
        return None;
    }
    if let Some(from) = f.range.from {
        conditions.push(format!("r.hour > {}", from.timestamp() - 3600));
    }
    if let Some(to) = f.range.to {
        conditions.push(format!("r.hour < {}", to.timestamp()));
    }
    Some(conditions)
}

/// The conditions on sidecar fields, for a recording with a valid sidecar (exactly
/// [`RecordingFilter`]'s field checks in exact mode, or `None` if one cannot be).
fn fields(f: &RecordingFilter, sql: &mut Sql, mode: Mode) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    // Where SQLite should start: from the recordings a narrow location picks (a few days,
    // given IDs), probing each one's fields; or from the field indexes, looking each
    // recording up by its row ID.
    let narrow = matches!((f.range.from, f.range.to), (Some(a), Some(b)) if b - a <= chrono::Duration::days(7))
        || !f.conversations.is_empty()
        || !f.recordings.is_empty();
    let member = |table: &str, alias: &str, condition: String| {
        if narrow {
            format!(
                "EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.recording = r.id AND {condition})"
            )
        } else {
            format!("r.id IN (SELECT {alias}.recording FROM {table} {alias} WHERE {condition})")
        }
    };
    for (table, column, wanted) in [
        ("recording_users", "user_id", &f.users),
        ("recording_queues", "queue_id", &f.queues),
        ("recording_wrapup_codes", "wrapup_code", &f.wrapup_codes),
    ] {
        if !wanted.is_empty() {
            let values = sql.list(wanted.iter().cloned());
            out.push(member(table, "t", format!("t.{column} IN {values}")));
        }
    }
    for (column, wanted) in [
        ("media_type", &f.media_types),
        ("initial_direction", &f.directions),
        ("message_type", &f.message_types),
        ("provider", &f.providers),
    ] {
        if !wanted.is_empty() {
            out.push(format!(
                "r.{column} IN {}",
                sql.list(wanted.iter().cloned())
            ));
        }
    }
    if !f.languages.is_empty() && mode == Mode::Exact {
        // A comma-separated list in one field: left to the verdict.
        return None;
    }
    if let Some(min) = f.min_duration_ms {
        out.push(format!("r.duration_ms >= {}", crate::index::clamp(min)));
    }
    if let Some(max) = f.max_duration_ms {
        out.push(format!("r.duration_ms <= {}", crate::index::clamp(max)));
    }
    for (kind, queries) in [("ani", &f.anis), ("dnis", &f.dnis)] {
        if queries.is_empty() {
            continue;
        }
        let mut any = Vec::new();
        for q in queries {
            // A SIP address compares as text: only the verdict can judge it.
            let Some(digits) = phone_digits(q) else {
                if mode == Mode::Exact {
                    return None;
                }
                any.clear();
                break;
            };
            let reversed: String = digits.chars().rev().collect();
            // `phone_matches`: the same digits, or (when the query allows it) a suffix.
            if !phone_suffix_allowed(q) && mode == Mode::Exact {
                let v = sql.one(reversed);
                any.push(format!("n.digits_reversed = {v}"));
            } else {
                let lo = sql.one(reversed.clone());
                let hi = sql.one(format!("{reversed}:"));
                any.push(format!(
                    "(n.digits_reversed >= {lo} AND n.digits_reversed < {hi})"
                ));
            }
        }
        if any.is_empty() {
            continue;
        }
        out.push(member(
            "recording_numbers",
            "n",
            format!("n.kind = '{kind}' AND ({})", any.join(" OR ")),
        ));
    }
    Some(out)
}

/// The SQL and its parameters for a query's candidates.
///
/// With field filters, the candidates are two sets: recordings with a valid sidecar whose
/// indexed fields match — found from the field indexes (`r.id IN (…)` lets SQLite start
/// from them) — and recordings without a usable sidecar, which the verdict reports as
/// unchecked, exactly as a live listing does.
fn candidates(query: &Query) -> (String, Vec<Value>) {
    let f = &query.filter;
    let mut sql = Sql::default();
    let location = location(query, &mut sql, Mode::Candidates).unwrap_or_default();
    let fields = if f.has_field_filters() {
        fields(f, &mut sql, Mode::Candidates).unwrap_or_default()
    } else {
        Vec::new()
    };
    let select = |extra: &[String]| {
        let mut text = String::from(
            "SELECT r.id, r.organization_id, r.conversation_id, r.recording_id, r.folder, r.hour,
                    r.sidecar_state, r.problem_kind, r.problem_detail, r.sidecar_json,
                    coalesce(r.conversation_start, r.hour * 1000) AS t, r.duration_ms AS d
             FROM recordings r WHERE 1 = 1",
        );
        for c in location.iter().chain(extra) {
            text.push_str(" AND ");
            text.push_str(c);
        }
        text
    };
    let mut text = if fields.is_empty() {
        select(&[])
    } else {
        let mut valid = vec![format!("r.sidecar_state = {SIDECAR_VALID}")];
        valid.extend(fields);
        format!(
            "{} UNION ALL {}",
            select(&valid),
            select(&[format!("r.sidecar_state <> {SIDECAR_VALID}")])
        )
    };
    text.push_str(match query.sort {
        Sort::Time => " ORDER BY t, organization_id, folder, recording_id, id",
        Sort::Duration => " ORDER BY d, t, organization_id, folder, recording_id, id",
    });
    (text, sql.values)
}

/// (matches, unchecked) counted by SQL alone, when every condition of the query can be
/// said exactly in SQL (no shard, no recordings file, no language or SIP-address
/// filter); `None` otherwise. Exactly what [`count`] finds, in milliseconds rather than
/// a pass over every answer (the property test holds the two together).
pub fn count_exact(path: &Path, query: &Query) -> Result<Option<(u64, u64)>, CatalogError> {
    let f = &query.filter;
    let mut sql = Sql::default();
    let Some(location) = location(query, &mut sql, Mode::Exact) else {
        return Ok(None);
    };
    let Some(fields) = fields(f, &mut sql, Mode::Exact) else {
        return Ok(None);
    };
    let (from_s, to_s) = (
        f.range.from.map(|t| t.timestamp()),
        f.range.to.map(|t| t.timestamp()),
    );
    let covered = match (from_s, to_s) {
        (None, None) => "1".to_owned(),
        (Some(a), None) => format!("r.hour >= {a}"),
        (None, Some(b)) => format!("r.hour + 3600 <= {b}"),
        (Some(a), Some(b)) => format!("(r.hour >= {a} AND r.hour + 3600 <= {b})"),
    };
    let started_in = match (f.range.from, f.range.to) {
        (None, None) => "1".to_owned(),
        (Some(a), None) => format!("r.conversation_start >= {}", a.timestamp_millis()),
        (None, Some(b)) => format!("r.conversation_start < {}", b.timestamp_millis()),
        (Some(a), Some(b)) => format!(
            "(r.conversation_start >= {} AND r.conversation_start < {})",
            a.timestamp_millis(),
            b.timestamp_millis()
        ),
    };
    let has_fields = f.has_field_filters();
    let mut matched = location.clone();
    if has_fields {
        matched.push(format!("r.sidecar_state = {SIDECAR_VALID}"));
        matched.push(format!("({covered} OR {started_in})"));
        matched.extend(fields);
    } else {
        matched.push(format!(
            "({covered} OR (r.sidecar_state = {SIDECAR_VALID} AND {started_in}))"
        ));
    }
    let mut unchecked = location;
    unchecked.push(format!("r.sidecar_state <> {SIDECAR_VALID}"));
    if !has_fields {
        unchecked.push(format!("NOT {covered}"));
    }
    let count = |conditions: &[String]| {
        let mut text = String::from("SELECT count(*) FROM recordings r WHERE 1 = 1");
        for c in conditions {
            text.push_str(" AND ");
            text.push_str(c);
        }
        text
    };
    let text = format!("SELECT ({}), ({})", count(&matched), count(&unchecked));
    let catalog = Catalog::open(path)?;
    let (m, u): (i64, i64) = catalog
        .conn()
        .query_row(&text, rusqlite::params_from_iter(sql.values), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sqlite(path))?;
    Ok(Some((m.max(0) as u64, u.max(0) as u64)))
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
