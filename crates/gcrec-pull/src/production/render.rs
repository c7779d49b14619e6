//! Renditions: Ogg/Opus natives decoded to 16-bit PCM WAV.

use std::path::Path;

use super::register::FileRow;

/// Makes (or keeps) the WAV rendition of `native` at `rel` inside `dir`. `None` when the
/// native is not Ogg/Opus (screen recordings, transcripts stay native only).
pub(crate) fn wav(
    _dir: &Path,
    _rel: &str,
    _native: &FileRow,
    _earlier: Option<FileRow>,
) -> Result<Option<(FileRow, bool)>, String> {
    Err("WAV renditions are not built yet".into())
}
