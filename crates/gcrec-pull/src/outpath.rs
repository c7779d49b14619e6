//! Where output files go: one place decides, for `decrypt` and `pull`.
//!
//! Keys come from outside. The layout parser has already refused unsafe ones (`..`,
//! absolute segments, backslashes, control characters); [`join_inside`] checks again,
//! segment by segment, so no key can name a path outside the output directory, and no
//! key can name one of gcrec's own control files: the manifest, the lock, a temporary
//! file, an object-metadata companion, or (with kept copies) the `encrypted/` folder.

use std::path::{Component, Path, PathBuf};

use gcrec_fetch::source::OBJECT_METADATA_SUFFIX;

use crate::manifest::MANIFEST_NAME;
use crate::release::TEMP_MARKER;

/// Suffixes of encrypted copies, dropped from output names.
const ENCRYPTED_SUFFIXES: [&str; 3] = [".pgp", ".gpg", ".asc"];

/// The lock file that keeps two runs out of one output directory.
pub const LOCK_NAME: &str = ".gcrec.lock";

/// The folder under the output directory for kept encrypted copies.
pub const KEPT_DIR: &str = "encrypted";

/// How a pull names output files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputLayout {
    /// The source keys under DIR (encrypted suffixes dropped): DIR is itself a valid
    /// local source for ls, pull and verify.
    #[default]
    Mirror,
    /// DIR/CONVERSATION-ID/FILE.
    Conversation,
    /// DIR/FILE (file names carry the recording ID).
    Flat,
}

/// A name that cannot be an output file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{segment:?} cannot be used as a file name under {dir}: {reason}")]
pub struct OutPathError {
    /// The offending segment.
    pub segment: String,
    /// The output directory.
    pub dir: String,
    /// Why.
    pub reason: &'static str,
}

/// `rec.opus.pgp` → `rec.opus`.
pub fn plaintext_name(name: &str) -> &str {
    ENCRYPTED_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s).filter(|rest| !rest.is_empty()))
        .unwrap_or(name)
}

/// Whether an output file name could be taken for one of gcrec's own files anywhere in
/// an output directory (temporary files, object-metadata companions).
fn reserved_anywhere(segment: &str) -> bool {
    segment.contains(TEMP_MARKER) || segment.ends_with(OBJECT_METADATA_SUFFIX)
}

/// Whether a name is one of gcrec's control files at the top of an output directory.
fn reserved_at_top(segment: &str, keep_encrypted: bool) -> bool {
    segment == MANIFEST_NAME || segment == LOCK_NAME || (keep_encrypted && segment == KEPT_DIR)
}

/// `out` joined with `segments`, each of which must be one plain path component and not
/// a name gcrec reserves for itself.
pub fn join_inside<'a>(
    out: &Path,
    segments: impl IntoIterator<Item = &'a str>,
    keep_encrypted: bool,
) -> Result<PathBuf, OutPathError> {
    let mut path = out.to_path_buf();
    for (i, segment) in segments.into_iter().enumerate() {
        let refuse = |reason| OutPathError {
            segment: segment.to_owned(),
            dir: out.display().to_string(),
            reason,
        };
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(c)), None) if c == segment && !segment.contains('\\') => {}
            _ => return Err(refuse("not one plain path component")),
        }
        if reserved_anywhere(segment) || (i == 0 && reserved_at_top(segment, keep_encrypted)) {
            return Err(refuse("the name is reserved for gcrec's own files"));
        }
        path.push(segment);
    }
    Ok(path)
}

/// The plaintext path of `key` under `out`, mirroring the key (the last segment without
/// its encrypted suffix).
pub fn mirror(out: &Path, key: &str, keep_encrypted: bool) -> Result<PathBuf, OutPathError> {
    let segments: Vec<&str> = key.split('/').collect();
    let (name, dirs) = segments.split_last().ok_or_else(|| OutPathError {
        segment: String::new(),
        dir: out.display().to_string(),
        reason: "an empty key",
    })?;
    join_inside(
        out,
        dirs.iter().copied().chain([plaintext_name(name)]),
        keep_encrypted,
    )
}

/// The output path of an object of a recording, in `layout`. `plaintext` drops an
/// encrypted suffix (media); sidecars keep their names.
pub fn destination(
    layout: OutputLayout,
    out: &Path,
    conversation_id: &str,
    key: &str,
    plaintext: bool,
    keep_encrypted: bool,
) -> Result<PathBuf, OutPathError> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let name = if plaintext {
        plaintext_name(name)
    } else {
        name
    };
    match layout {
        OutputLayout::Mirror if plaintext => mirror(out, key, keep_encrypted),
        OutputLayout::Mirror => join_inside(out, key.split('/'), keep_encrypted),
        OutputLayout::Conversation => join_inside(out, [conversation_id, name], keep_encrypted),
        OutputLayout::Flat => join_inside(out, [name], keep_encrypted),
    }
}

/// Where kept encrypted copies of `key` go.
pub fn kept(out: &Path, key: &str) -> Result<PathBuf, OutPathError> {
    let kept_root = out.join(KEPT_DIR);
    join_inside(&kept_root, key.split('/'), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_suffixes_are_dropped() {
        assert_eq!(plaintext_name("r.opus.pgp"), "r.opus");
        assert_eq!(plaintext_name("r.zip.asc"), "r.zip");
        assert_eq!(plaintext_name("r.opus"), "r.opus");
        assert_eq!(plaintext_name(".pgp"), ".pgp");
        assert_eq!(
            mirror(Path::new("/o"), "a/b/r.opus.gpg", false).unwrap(),
            PathBuf::from("/o/a/b/r.opus")
        );
    }

    #[test]
    fn nothing_escapes_the_output_directory() {
        let out = Path::new("/o");
        for key in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "",
        ] {
            assert!(mirror(out, key, false).is_err(), "{key:?}");
        }
        let dest = |layout, conv, key, plain| destination(layout, out, conv, key, plain, false);
        assert!(dest(OutputLayout::Conversation, "..", "a/b.opus", true).is_err());
        assert_eq!(
            dest(OutputLayout::Conversation, "c1", "x/y/c1/r.opus.pgp", true).unwrap(),
            PathBuf::from("/o/c1/r.opus")
        );
        assert_eq!(
            dest(OutputLayout::Flat, "c1", "x/y/c1/r_metadata.json", false).unwrap(),
            PathBuf::from("/o/r_metadata.json")
        );
        assert_eq!(
            kept(out, "x/r.opus.pgp").unwrap(),
            PathBuf::from("/o/encrypted/x/r.opus.pgp")
        );
    }

    #[test]
    fn gcrecs_own_files_cannot_be_named_by_a_key() {
        let out = Path::new("/o");
        for (layout, key) in [
            (OutputLayout::Flat, "o/y/c/gcrec-manifest.jsonl"),
            (OutputLayout::Flat, "o/y/c/.gcrec.lock"),
            (OutputLayout::Mirror, "gcrec-manifest.jsonl/y/c/r.opus"),
            (
                OutputLayout::Mirror,
                "o/y/c/.r.opus.gcrec-tmp-0badc0de-0000000000000007",
            ),
            (OutputLayout::Mirror, "o/y/c/r.opus.gcrec-object.json"),
            (OutputLayout::Conversation, "o/y/.gcrec.lock/r.opus"),
        ] {
            let conv = key.split('/').nth(2).unwrap();
            assert!(
                destination(layout, out, conv, key, true, false).is_err(),
                "{layout:?} {key}"
            );
        }
        // The kept-copies folder is reserved only when copies are kept.
        let key = "encrypted/y/c/r.opus";
        assert!(destination(OutputLayout::Mirror, out, "c", key, true, false).is_ok());
        assert!(destination(OutputLayout::Mirror, out, "c", key, true, true).is_err());
    }
}
