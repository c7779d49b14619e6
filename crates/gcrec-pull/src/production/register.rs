//! The control-number register: `DIR/gcrec-production.sqlite`, one row per produced
//! document and per produced file. Numbers are never reused or moved once given; the
//! register is what keeps them stable across re-runs, resumes and additions.
//!
//! The register is read back on every run and may have been tampered with: it is opened
//! without following links, with `trusted_schema` off and a bounded cache, and every
//! path read from it is checked by the caller before use.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::ProductionError;

/// `PRAGMA application_id` of a production register ("GCRP").
const APPLICATION_ID: i64 = 0x4743_5250;
/// The register's schema version.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE production (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    matter  TEXT NOT NULL,
    prefix  TEXT NOT NULL,
    start   INTEGER NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE documents (
    number          INTEGER PRIMARY KEY,
    media_key       TEXT NOT NULL UNIQUE,
    volume          TEXT NOT NULL,
    sort_time       TEXT,
    recording_id    TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    original_name   TEXT NOT NULL,
    source_uri      TEXT NOT NULL,
    version_id      TEXT,
    etag            TEXT,
    encryption      TEXT,
    authenticated   TEXT,
    size_matches    TEXT,
    media_problems  TEXT NOT NULL DEFAULT '',
    legal_hold      TEXT NOT NULL DEFAULT '',
    assigned_at     TEXT NOT NULL
);
CREATE INDEX documents_volume ON documents (volume, number);
CREATE TABLE files (
    number        INTEGER NOT NULL REFERENCES documents(number),
    role          TEXT NOT NULL,
    path          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    md5           TEXT NOT NULL,
    origin_sha256 TEXT NOT NULL,
    PRIMARY KEY (number, role)
) WITHOUT ROWID;
"#;

/// What the production was started with: later runs must agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub matter: String,
    pub prefix: String,
    pub start: u64,
}

/// A produced file as the register records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRow {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub md5: String,
    pub origin_sha256: String,
}

/// The open register.
pub(crate) struct Register {
    pub path: PathBuf,
    pub conn: Connection,
}

fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> ProductionError + '_ {
    move |source| ProductionError::Register {
        path: path.to_owned(),
        source,
    }
}

impl Register {
    /// Opens (creating, 0600) the register at `path`.
    pub fn open(path: &Path) -> Result<Self, ProductionError> {
        if std::fs::symlink_metadata(path).is_err() {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(path).map_err(|source| ProductionError::Io {
                path: path.to_owned(),
                source,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite(path))?;
        conn.execute_batch(
            "PRAGMA trusted_schema = OFF;
             PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -16384;
             PRAGMA temp_store = FILE;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;",
        )
        .map_err(sqlite(path))?;
        let app: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(sqlite(path))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite(path))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(sqlite(path))?;
        if app == 0 && version == 0 && tables == 0 {
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(sqlite(path))?;
        } else if app != APPLICATION_ID || version != SCHEMA_VERSION {
            return Err(ProductionError::NotARegister(path.to_owned()));
        }
        Ok(Self {
            path: path.to_owned(),
            conn,
        })
    }

    /// The settings the production was started with, if it was.
    pub fn settings(&self) -> Result<Option<Settings>, ProductionError> {
        self.conn
            .query_row(
                "SELECT matter, prefix, start FROM production WHERE id = 1",
                [],
                |r| {
                    Ok(Settings {
                        matter: r.get(0)?,
                        prefix: r.get(1)?,
                        start: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                },
            )
            .optional()
            .map_err(sqlite(&self.path))
    }

    /// The settings the production was started with, recording these when it is new.
    pub fn settle(&self, asked: &Settings) -> Result<Settings, ProductionError> {
        match self.settings()? {
            Some(found) => Ok(found),
            None => {
                self.conn
                    .execute(
                        "INSERT INTO production (id, matter, prefix, start, created) VALUES (1, ?1, ?2, ?3, ?4)",
                        params![
                            asked.matter,
                            asked.prefix,
                            i64::try_from(asked.start).unwrap_or(i64::MAX),
                            chrono::Utc::now().to_rfc3339()
                        ],
                    )
                    .map_err(sqlite(&self.path))?;
                Ok(asked.clone())
            }
        }
    }

    /// The file a document has in `role`, if one was produced.
    pub fn file(&self, number: u64, role: &str) -> Result<Option<FileRow>, ProductionError> {
        self.conn
            .query_row(
                "SELECT path, size, sha256, md5, origin_sha256 FROM files WHERE number = ?1 AND role = ?2",
                params![number as i64, role],
                |r| {
                    Ok(FileRow {
                        path: r.get(0)?,
                        size: r.get::<_, i64>(1)?.max(0) as u64,
                        sha256: r.get(2)?,
                        md5: r.get(3)?,
                        origin_sha256: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(sqlite(&self.path))
    }

    /// Records (or replaces) a produced file.
    pub fn set_file(&self, number: u64, role: &str, row: &FileRow) -> Result<(), ProductionError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO files (number, role, path, size, sha256, md5, origin_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    number as i64,
                    role,
                    row.path,
                    row.size as i64,
                    row.sha256,
                    row.md5,
                    row.origin_sha256
                ],
            )
            .map(drop)
            .map_err(sqlite(&self.path))
    }

    /// Forgets a produced file (its origin is gone).
    pub fn drop_file(&self, number: u64, role: &str) -> Result<(), ProductionError> {
        self.conn
            .execute(
                "DELETE FROM files WHERE number = ?1 AND role = ?2",
                params![number as i64, role],
            )
            .map(drop)
            .map_err(sqlite(&self.path))
    }
}

/// Runs `f` in one transaction of the register.
pub(crate) fn transaction<T>(
    reg: &Register,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, ProductionError> {
    let run = || -> rusqlite::Result<T> {
        reg.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(&reg.conn) {
            Ok(v) => {
                reg.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = reg.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    };
    run().map_err(sqlite(&reg.path))
}
