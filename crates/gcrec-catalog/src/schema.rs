//! The catalog's tables, its version, and the forward migrations between versions.
//!
//! `PRAGMA application_id` marks a gcrec catalog; `PRAGMA user_version` is its schema
//! version. Each migration moves one version forward inside a transaction, so a catalog
//! is always at one version or the next.

use std::path::Path;

use rusqlite::Connection;

use crate::{CatalogError, sqlite};

/// `PRAGMA application_id` of a gcrec catalog ("GCRC").
pub const APPLICATION_ID: i64 = 0x4743_5243;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 2;

/// Migration `i` moves a catalog from version `i` to `i + 1`.
const MIGRATIONS: [&str; 2] = [
    // 1: the tables.
    r#"
CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    uri         TEXT NOT NULL UNIQUE,
    base_prefix TEXT NOT NULL,
    watermark   INTEGER,
    indexed_at  TEXT,
    run         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE recordings (
    id                 INTEGER PRIMARY KEY,
    source_id          INTEGER NOT NULL REFERENCES sources(id),
    organization_id    TEXT NOT NULL,
    conversation_id    TEXT NOT NULL,
    recording_id       TEXT NOT NULL,
    folder             TEXT NOT NULL,
    hour               INTEGER NOT NULL,
    orphan             TEXT,
    sidecar_state      INTEGER NOT NULL,
    problem_kind       TEXT,
    problem            TEXT,
    problem_detail     TEXT,
    media_type         TEXT COLLATE NOCASE,
    provider           TEXT COLLATE NOCASE,
    initial_direction  TEXT COLLATE NOCASE,
    message_type       TEXT COLLATE NOCASE,
    language_ids       TEXT COLLATE NOCASE,
    conversation_start INTEGER,
    conversation_end   INTEGER,
    start_time         INTEGER,
    end_time           INTEGER,
    duration_ms        INTEGER,
    ani_normalized     TEXT,
    ani_displayable    TEXT,
    dnis_normalized    TEXT,
    dnis_displayable   TEXT,
    file_path          TEXT,
    file_size          INTEGER,
    sidecar_json       BLOB,
    run                INTEGER NOT NULL,
    UNIQUE (source_id, folder, recording_id)
);
CREATE INDEX recordings_hour ON recordings (hour);
CREATE INDEX recordings_start ON recordings (conversation_start);
CREATE INDEX recordings_duration ON recordings (duration_ms);
CREATE INDEX recordings_conversation ON recordings (conversation_id COLLATE NOCASE);
CREATE INDEX recordings_recording ON recordings (recording_id COLLATE NOCASE);
CREATE INDEX recordings_run ON recordings (source_id, run);
CREATE TABLE objects (
    recording     INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    key           TEXT NOT NULL,
    size          INTEGER NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    version_id    TEXT,
    extension     TEXT,
    sse           TEXT,
    kms_key_id    TEXT,
    PRIMARY KEY (recording, role, seq)
) WITHOUT ROWID;
CREATE TABLE recording_users (
    user_id   TEXT NOT NULL COLLATE NOCASE,
    recording INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, recording)
) WITHOUT ROWID;
CREATE INDEX recording_users_recording ON recording_users (recording);
CREATE TABLE recording_queues (
    queue_id  TEXT NOT NULL COLLATE NOCASE,
    recording INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, recording)
) WITHOUT ROWID;
CREATE INDEX recording_queues_recording ON recording_queues (recording);
CREATE TABLE recording_wrapup_codes (
    wrapup_code TEXT NOT NULL COLLATE NOCASE,
    recording   INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    PRIMARY KEY (wrapup_code, recording)
) WITHOUT ROWID;
CREATE INDEX recording_wrapup_codes_recording ON recording_wrapup_codes (recording);
CREATE TABLE recording_numbers (
    kind            TEXT NOT NULL,
    digits_reversed TEXT NOT NULL,
    recording       INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    PRIMARY KEY (kind, digits_reversed, recording)
) WITHOUT ROWID;
CREATE INDEX recording_numbers_recording ON recording_numbers (recording);
CREATE TABLE skipped (
    source_id INTEGER NOT NULL REFERENCES sources(id),
    key       TEXT NOT NULL,
    reason    TEXT NOT NULL,
    run       INTEGER NOT NULL,
    PRIMARY KEY (source_id, key)
) WITHOUT ROWID;
"#,
    // 2: recordings without a usable sidecar, by hour — the ones a field query reports
    // as unchecked — found without scanning the range.
    r#"
CREATE INDEX recordings_unusable ON recordings (hour) WHERE sidecar_state <> 1;
"#,
];

fn read_ids(conn: &Connection, path: &Path) -> Result<(i64, i64), CatalogError> {
    let app: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    Ok((app, version))
}

/// Checks a catalog opened to read: gcrec's, and a version this build reads.
pub(crate) fn check(conn: &Connection, path: &Path) -> Result<(), CatalogError> {
    let (app, version) = read_ids(conn, path)?;
    if app != APPLICATION_ID {
        return Err(CatalogError::NotACatalog(path.to_owned()));
    }
    if version > SCHEMA_VERSION {
        return Err(CatalogError::TooNew {
            path: path.to_owned(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version < SCHEMA_VERSION {
        return Err(CatalogError::Corrupt {
            path: path.to_owned(),
            what: format!(
                "schema version {version} needs migrating to {SCHEMA_VERSION}: run gcrec index on it once"
            ),
        });
    }
    Ok(())
}

/// Brings a catalog opened to write to [`SCHEMA_VERSION`], creating it when empty.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), CatalogError> {
    let (app, version) = read_ids(conn, path)?;
    let empty: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if app != APPLICATION_ID && !(app == 0 && version == 0 && empty == 0) {
        return Err(CatalogError::NotACatalog(path.to_owned()));
    }
    if version > SCHEMA_VERSION {
        return Err(CatalogError::TooNew {
            path: path.to_owned(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(sqlite(path))?;
        tx.execute_batch(migration).map_err(sqlite(path))?;
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};",
            from + 1
        ))
        .map_err(sqlite(path))?;
        tx.commit().map_err(sqlite(path))?;
    }
    Ok(())
}
