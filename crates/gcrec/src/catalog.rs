//! `--catalog FILE` on `ls`, `pull` and `hold`: which source a command reads, and the
//! catalog's answer as its work list.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gcrec_catalog::Catalog;
use gcrec_catalog::query::{Query, Sort};
use gcrec_fetch::filter::RecordingFilter;
use gcrec_fetch::recording::Recordings;

use crate::exit::UsageError;

/// The name a source has in a catalog: an S3 URL without a trailing `/`, a local
/// directory's canonical path — so `./export` and `/abs/export` are one source.
pub fn source_name(source: &str) -> String {
    if source.starts_with("s3://") {
        return source.trim_end_matches('/').to_owned();
    }
    std::fs::canonicalize(source)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| source.to_owned())
}

/// What a command reads: the source, and the catalog answering for it, if one is given.
#[derive(Debug)]
pub struct Resolved {
    /// The source to open (for downloads and holds), as the user or the catalog names it.
    pub source: Option<String>,
    /// The catalog and the source's row in it (`None`: every source it holds).
    pub catalog: Option<(PathBuf, Option<i64>)>,
}

impl Resolved {
    /// The source, which a command that downloads or holds needs.
    pub fn source(&self) -> Result<&str> {
        self.source
            .as_deref()
            .ok_or_else(|| UsageError("give the SOURCE (the catalog holds several)".into()).into())
    }

    /// The catalog and the question for it, if a catalog was given.
    fn query(&self, filter: &RecordingFilter, sort: Sort) -> Option<(&Path, Query)> {
        let (path, source_id) = self.catalog.as_ref()?;
        let query = Query {
            filter: filter.clone(),
            sort,
            source_id: *source_id,
        };
        Some((path, query))
    }

    /// The catalog's answer to `filter`, if a catalog was given.
    pub fn recordings(&self, filter: &RecordingFilter, sort: Sort) -> Result<Option<Recordings>> {
        let Some((path, query)) = self.query(filter, sort) else {
            return Ok(None);
        };
        Ok(Some(
            gcrec_catalog::query::recordings(path, query)
                .with_context(|| format!("querying the catalog {}", path.display()))?,
        ))
    }

    /// (matches, unchecked) counted by the catalog in SQL alone, when a catalog was given
    /// and the filter allows it.
    pub fn count(&self, filter: &RecordingFilter) -> Result<Option<(u64, u64)>> {
        let Some((path, query)) = self.query(filter, Sort::Time) else {
            return Ok(None);
        };
        Ok(gcrec_catalog::query::count_exact(path, &query)?)
    }
}

/// Resolves `SOURCE` and `--catalog`. With a catalog and no source, the catalog's only
/// source is used when `need_one`; otherwise every source it holds.
pub fn resolve(source: Option<&str>, catalog: Option<&Path>, need_one: bool) -> Result<Resolved> {
    let Some(path) = catalog else {
        let source = source.ok_or_else(|| UsageError("give the SOURCE".into()))?;
        return Ok(Resolved {
            source: Some(source.to_owned()),
            catalog: None,
        });
    };
    let opened = Catalog::open(path)?;
    let named = source.map(source_name);
    let row = match (&named, need_one) {
        (Some(name), _) => Some(opened.source(Some(name))?),
        (None, true) => Some(opened.source(None)?),
        (None, false) => None,
    };
    Ok(Resolved {
        source: row.as_ref().map(|r| r.uri.clone()),
        catalog: Some((path.to_owned(), row.map(|r| r.id))),
    })
}
