//! The catalog: every recording of one or more exports — sidecar fields, orphans, invalid
//! sidecars, skipped keys and the objects behind each — in one SQLite file, so questions
//! are answered without re-reading the bucket.
//!
//! - [`index::index`] builds or updates it from a source: incrementally (only the hours
//!   after the last one indexed, only sidecars whose ETag changed), committing per
//!   partition so an interrupted run resumes.
//! - [`query::recordings`] answers a [`gcrec_fetch::filter::RecordingFilter`] with the
//!   same recordings a live listing would give, as the same
//!   [`gcrec_fetch::recording::ScanEvent`]s, so `ls`, `pull`, `hold` and bags take their
//!   work list from it unchanged.
//! - [`stats`] and [`export`] summarise and hand the catalog to other engines.
//!
//! A catalog file is untrusted input like any other: it is opened without following a
//! symbolic link, with `trusted_schema` off, and every value read back is checked — a
//! malformed one is an error naming the row, never a panic.

pub mod export;
pub mod index;
pub mod query;
pub mod stats;

mod schema;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use schema::SCHEMA_VERSION;

/// Why a catalog could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// SQLite failed on the file.
    #[error("catalog {}: {source}", path.display())]
    Sqlite {
        /// The catalog.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a gcrec catalog.
    #[error("{} is not a gcrec catalog (no gcrec application id); give the file gcrec index wrote", .0.display())]
    NotACatalog(PathBuf),
    /// The catalog was written by a newer gcrec.
    #[error(
        "catalog {} has schema version {found}, newer than this gcrec reads ({known}); use a newer gcrec",
        path.display()
    )]
    TooNew {
        /// The catalog.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The catalog does not exist.
    #[error("catalog {} does not exist; build it first (gcrec index)", .0.display())]
    Missing(PathBuf),
    /// A value in the catalog is not what gcrec writes there.
    #[error("catalog {}: {what}", path.display())]
    Corrupt {
        /// The catalog.
        path: PathBuf,
        /// What is wrong, naming the row.
        what: String,
    },
    /// Creating or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading the source failed.
    #[error(transparent)]
    Source(#[from] gcrec_fetch::source::SourceError),
    /// Listing the source (or reading its inventory report) failed.
    #[error(transparent)]
    Listing(#[from] gcrec_fetch::recording::ListingError),
    /// The catalog holds no source of that name.
    #[error("catalog {} holds no source {uri}; it holds: {known}", path.display())]
    UnknownSource {
        /// The catalog.
        path: PathBuf,
        /// What was asked for.
        uri: String,
        /// What it holds.
        known: String,
    },
    /// A background task stopped.
    #[error("the catalog task stopped unexpectedly")]
    Task,
}

/// An open catalog.
#[derive(Debug)]
pub struct Catalog {
    path: PathBuf,
    conn: Connection,
}

impl Catalog {
    /// Opens a catalog to read. It must exist and be one this build reads.
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        if std::fs::symlink_metadata(path).is_err() {
            return Err(CatalogError::Missing(path.to_owned()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite(path))?;
        let catalog = Self {
            path: path.to_owned(),
            conn,
        };
        catalog.harden()?;
        schema::check(&catalog.conn, path)?;
        Ok(catalog)
    }

    /// Opens a catalog to write, creating it (0600) and migrating it to the current
    /// schema as needed.
    pub fn create_or_open(path: &Path) -> Result<Self, CatalogError> {
        if std::fs::symlink_metadata(path).is_err() {
            create_private_file(path)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite(path))?;
        let mut catalog = Self {
            path: path.to_owned(),
            conn,
        };
        catalog.harden()?;
        catalog
            .conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(sqlite(path))?;
        schema::migrate(&mut catalog.conn, path)?;
        Ok(catalog)
    }

    /// The catalog's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the modules that read and write the tables.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Settings that make a hostile file harmless: no schema-defined code runs with
    /// privileges, memory stays bounded.
    fn harden(&self) -> Result<(), CatalogError> {
        self.conn
            .execute_batch(
                "PRAGMA trusted_schema = OFF;
                 PRAGMA foreign_keys = ON;
                 PRAGMA cache_size = -16384;
                 PRAGMA temp_store = FILE;",
            )
            .map_err(sqlite(&self.path))?;
        self.conn
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sqlite(&self.path))
    }

    /// The sources the catalog holds, by URI.
    pub fn sources(&self) -> Result<Vec<SourceRow>, CatalogError> {
        let mut statement = self
            .conn
            .prepare("SELECT id, uri, base_prefix, watermark, indexed_at FROM sources ORDER BY id")
            .map_err(sqlite(&self.path))?;
        let rows = statement
            .query_map([], |row| {
                Ok(SourceRow {
                    id: row.get(0)?,
                    uri: row.get(1)?,
                    base_prefix: row.get(2)?,
                    watermark: row.get(3)?,
                    indexed_at: row.get(4)?,
                })
            })
            .map_err(sqlite(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sqlite(&self.path))
    }

    /// The one source to pull from: the one named, or the only one the catalog holds.
    pub fn source(&self, uri: Option<&str>) -> Result<SourceRow, CatalogError> {
        let sources = self.sources()?;
        let known = || {
            let names: Vec<&str> = sources.iter().map(|s| s.uri.as_str()).collect();
            if names.is_empty() {
                "nothing yet".to_owned()
            } else {
                names.join(", ")
            }
        };
        match uri {
            Some(uri) => sources
                .iter()
                .find(|s| s.uri == uri)
                .cloned()
                .ok_or_else(|| CatalogError::UnknownSource {
                    path: self.path.clone(),
                    uri: uri.to_owned(),
                    known: known(),
                }),
            None if sources.len() == 1 => Ok(sources[0].clone()),
            None => Err(CatalogError::UnknownSource {
                path: self.path.clone(),
                uri: "(none named)".to_owned(),
                known: known(),
            }),
        }
    }
}

/// One source a catalog holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    /// Its row ID.
    pub id: i64,
    /// Where it is, as given to the indexer (`s3://bucket/prefix` or a directory).
    pub uri: String,
    /// The prefix listed under, within the source.
    pub base_prefix: String,
    /// The newest partition hour indexed (seconds since the epoch): the next incremental
    /// run lists from this hour on.
    pub watermark: Option<i64>,
    /// When the last complete run ended (RFC 3339).
    pub indexed_at: Option<String>,
}

/// An SQLite error on `path`.
pub(crate) fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> CatalogError + '_ {
    move |source| CatalogError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// Creates an empty file only the owner can read, refusing to replace anything (a link
/// included: `create_new` never follows one).
pub(crate) fn create_private_file(path: &Path) -> Result<std::fs::File, CatalogError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| CatalogError::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests;
