//! Turning a user's SOURCE argument into an object source and a base prefix.

use std::path::Path;
use std::sync::Arc;

use super::{LocalSource, ObjectSource, SourceError};
use crate::layout::{Partition, is_partition_segment};

/// A source opened from a SOURCE argument.
#[derive(Debug, Clone)]
pub struct OpenedSource {
    /// The object source (the bucket, or the directory that plays it).
    pub source: Arc<dyn ObjectSource>,
    /// The prefix the argument pointed at inside it (`""`, `org/`,
    /// `org/year=2024/month=03/`, …), always ending in `/` unless empty.
    pub base_prefix: String,
    /// The directory read, for a local source (canonical): outputs must not overlap it.
    pub local_root: Option<std::path::PathBuf>,
}

/// Opens a local SOURCE argument: a directory laid out like the bucket. (`s3://` URLs
/// are opened with [`super::S3Source::open`].)
///
/// The directory may be the bucket root, an organization folder (one whose children are
/// `year=` folders) or any partition folder below one; the source is then rooted above
/// the organization, so keys keep their full layout, and the base prefix selects the part
/// that was named.
pub fn open_source(location: &str) -> Result<OpenedSource, SourceError> {
    let open_error = |reason: String| SourceError::Open {
        location: location.to_owned(),
        reason,
    };
    let path = Path::new(location)
        .canonicalize()
        .map_err(|e| open_error(format!("{e} (is the path right?)")))?;
    if !path.is_dir() {
        return Err(open_error(
            "not a directory: SOURCE is an export directory laid out like the bucket".into(),
        ));
    }
    let name_of = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let mut segments = Vec::new();
    let mut root = path.as_path();
    while let Some(name) = name_of(root).filter(|n| is_partition_segment(n)) {
        segments.push(name);
        root = root.parent().unwrap_or(root);
    }
    let is_org = !segments.is_empty()
        || std::fs::read_dir(root)
            .map_err(|e| open_error(e.to_string()))?
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| Partition::Year.names(n))
                    && e.file_type().is_ok_and(|t| t.is_dir())
            });
    if is_org && let (Some(org), Some(parent)) = (name_of(root), root.parent()) {
        segments.push(org);
        root = parent;
    }
    let base_prefix = segments
        .iter()
        .rev()
        .map(|s| format!("{s}/"))
        .collect::<String>();
    Ok(OpenedSource {
        local_root: Some(root.to_path_buf()),
        source: Arc::new(LocalSource::open(root)?),
        base_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_inside_the_layout_is_rooted_above_the_org() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("bucket/org-1/year=2024/month=03/day=07");
        std::fs::create_dir_all(&deep).unwrap();
        let root = dir.path().join("bucket").canonicalize().unwrap();
        for (arg, base) in [
            (dir.path().join("bucket"), ""),
            (dir.path().join("bucket/org-1"), "org-1/"),
            (deep.clone(), "org-1/year=2024/month=03/day=07/"),
        ] {
            let opened = open_source(arg.to_str().unwrap()).unwrap();
            assert_eq!(opened.base_prefix, base, "{}", arg.display());
            assert_eq!(opened.source.uri(""), format!("file://{}/", root.display()));
        }
    }

    #[test]
    fn missing_paths_are_clear_errors() {
        let e = open_source("/definitely/not/here").unwrap_err();
        assert!(e.to_string().contains("/definitely/not/here"), "{e}");
    }
}
