//! Where output files go: one place decides, for `decrypt` and `pull`.
//!
//! Keys come from outside. The layout parser has already refused unsafe ones (`..`,
//! absolute segments, backslashes, control characters); [`join_inside`] checks again,
//! segment by segment, so no key can name a path outside the output directory.

use std::path::{Component, Path, PathBuf};

use anyhow::{Result, bail};

use crate::cli::OutputLayout;

/// Suffixes of encrypted copies, dropped from output names.
const ENCRYPTED_SUFFIXES: [&str; 3] = [".pgp", ".gpg", ".asc"];

/// `rec.opus.pgp` → `rec.opus`.
pub fn plaintext_name(name: &str) -> &str {
    ENCRYPTED_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s).filter(|rest| !rest.is_empty()))
        .unwrap_or(name)
}

/// `out` joined with `segments`, each of which must be one plain path component.
pub fn join_inside<'a>(out: &Path, segments: impl IntoIterator<Item = &'a str>) -> Result<PathBuf> {
    let mut path = out.to_path_buf();
    for segment in segments {
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(c)), None) if c == segment && !segment.contains('\\') => {
                path.push(segment)
            }
            _ => bail!(
                "{segment:?} cannot be used as a file name under {}",
                out.display()
            ),
        }
    }
    Ok(path)
}

/// The plaintext path of `key` under `out`, mirroring the key (the last segment without
/// its encrypted suffix).
pub fn mirror(out: &Path, key: &str) -> Result<PathBuf> {
    let segments: Vec<&str> = key.split('/').collect();
    let (name, dirs) = segments
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("empty key"))?;
    join_inside(out, dirs.iter().copied().chain([plaintext_name(name)]))
}

/// The output path of an object of a recording, in `layout`. `plaintext` drops an
/// encrypted suffix (media); sidecars keep their names.
pub fn destination(
    layout: OutputLayout,
    out: &Path,
    conversation_id: &str,
    key: &str,
    plaintext: bool,
) -> Result<PathBuf> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let name = if plaintext {
        plaintext_name(name)
    } else {
        name
    };
    match layout {
        OutputLayout::Mirror if plaintext => mirror(out, key),
        OutputLayout::Mirror => join_inside(out, key.split('/')),
        OutputLayout::Conversation => join_inside(out, [conversation_id, name]),
        OutputLayout::Flat => join_inside(out, [name]),
    }
}

/// Where `--keep-encrypted` stores the downloaded bytes of `key`.
pub fn kept(out: &Path, key: &str) -> Result<PathBuf> {
    join_inside(out, std::iter::once(KEPT_DIR).chain(key.split('/')))
}

/// The folder under the output directory for `--keep-encrypted` copies.
pub const KEPT_DIR: &str = "encrypted";

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
            mirror(Path::new("/o"), "a/b/r.opus.gpg").unwrap(),
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
            assert!(mirror(out, key).is_err(), "{key:?}");
        }
        assert!(destination(OutputLayout::Conversation, out, "..", "a/b.opus", true).is_err());
        assert_eq!(
            destination(
                OutputLayout::Conversation,
                out,
                "c1",
                "x/y/c1/r.opus.pgp",
                true
            )
            .unwrap(),
            PathBuf::from("/o/c1/r.opus")
        );
        assert_eq!(
            destination(
                OutputLayout::Flat,
                out,
                "c1",
                "x/y/c1/r_metadata.json",
                false
            )
            .unwrap(),
            PathBuf::from("/o/r_metadata.json")
        );
        assert_eq!(
            kept(out, "x/r.opus.pgp").unwrap(),
            PathBuf::from("/o/encrypted/x/r.opus.pgp")
        );
    }
}
