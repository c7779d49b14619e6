//! What a catalog holds, in figures.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::{Catalog, CatalogError, SourceRow, sqlite};

/// A catalog's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Recordings, all sources.
    pub recordings: u64,
    /// Media without a sidecar.
    pub orphans_no_sidecar: u64,
    /// Sidecars without media.
    pub orphans_no_media: u64,
    /// Sidecars that could not be used, by what was wrong (`invalid`, `too_large`, …).
    pub invalid_sidecars: BTreeMap<String, u64>,
    /// Keys that are not part of a recording, by reason.
    pub skipped_keys: BTreeMap<String, u64>,
    /// Recordings by organization.
    pub by_organization: BTreeMap<String, u64>,
    /// Recordings by month of their partition hour (`2024-03`).
    pub by_month: BTreeMap<String, u64>,
    /// Recordings by media type (`unknown` without a valid sidecar).
    pub by_media_type: BTreeMap<String, u64>,
    /// Each source, with the newest hour indexed and when.
    pub sources: Vec<SourceStats>,
    /// The catalog file's size in bytes.
    pub file_bytes: u64,
}

/// One source's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStats {
    /// The source.
    pub uri: String,
    /// Recordings from it.
    pub recordings: u64,
    /// The newest partition hour indexed (RFC 3339).
    pub last_indexed_hour: Option<String>,
    /// When the last complete index run ended.
    pub indexed_at: Option<String>,
}

/// Computes a catalog's figures.
pub fn stats(path: &Path) -> Result<Stats, CatalogError> {
    let catalog = Catalog::open(path)?;
    let conn = catalog.conn();
    let grouped = |sql: &str| -> Result<BTreeMap<String, u64>, CatalogError> {
        let mut s = conn.prepare(sql).map_err(sqlite(path))?;
        let rows = s
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(sqlite(path))?;
        rows.map(|r| r.map(|(k, v)| (k, v.max(0) as u64)))
            .collect::<Result<_, _>>()
            .map_err(sqlite(path))
    };
    let one = |sql: &str| -> Result<u64, CatalogError> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|v| v.max(0) as u64)
            .map_err(sqlite(path))
    };
    let mut sources = Vec::new();
    for SourceRow {
        id,
        uri,
        watermark,
        indexed_at,
        ..
    } in catalog.sources()?
    {
        sources.push(SourceStats {
            uri,
            recordings: one(&format!(
                "SELECT count(*) FROM recordings WHERE source_id = {id}"
            ))?,
            last_indexed_hour: watermark
                .and_then(|w| chrono::DateTime::from_timestamp(w, 0))
                .map(|t| t.format("%Y-%m-%dT%H:00:00Z").to_string()),
            indexed_at,
        });
    }
    Ok(Stats {
        recordings: one("SELECT count(*) FROM recordings")?,
        orphans_no_sidecar: one("SELECT count(*) FROM recordings WHERE orphan = 'no_sidecar'")?,
        orphans_no_media: one("SELECT count(*) FROM recordings WHERE orphan = 'no_media'")?,
        invalid_sidecars: grouped(
            "SELECT problem_kind, count(*) FROM recordings WHERE problem_kind IS NOT NULL
             GROUP BY problem_kind",
        )?,
        skipped_keys: grouped("SELECT reason, count(*) FROM skipped GROUP BY reason")?,
        by_organization: grouped(
            "SELECT organization_id, count(*) FROM recordings GROUP BY organization_id",
        )?,
        by_month: grouped(
            "SELECT strftime('%Y-%m', hour, 'unixepoch'), count(*) FROM recordings GROUP BY 1",
        )?,
        by_media_type: grouped(
            "SELECT coalesce(media_type, 'unknown'), count(*) FROM recordings GROUP BY 1",
        )?,
        sources,
        file_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
    })
}
