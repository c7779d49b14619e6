//! The end-of-run summary: a sentence on stderr for people, an object in JSON Lines.

use gcrec_fetch::scan::ScanSummary;
use gcrec_fetch::source::CallCounts;
use serde_json::{Value, json};

use super::human_bytes;

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary as a few lines of text.
pub fn human(s: &ScanSummary) -> Vec<String> {
    let mut lines = Vec::new();
    let orphans = s.orphans_no_sidecar + s.orphans_no_media;
    let mut first = format!(
        "{}, {} of media",
        plural(s.recordings, "recording", "recordings"),
        human_bytes(s.media_bytes)
    );
    if orphans > 0 {
        first.push_str(&format!(
            "; {} ({} without sidecar, {} without media)",
            plural(orphans, "orphan", "orphans"),
            s.orphans_no_sidecar,
            s.orphans_no_media
        ));
    }
    if s.invalid_sidecars > 0 {
        first.push_str(&format!(
            "; {}",
            plural(s.invalid_sidecars, "invalid sidecar", "invalid sidecars")
        ));
    }
    if s.duplicate_sidecars > 0 {
        first.push_str(&format!(
            "; {} with more than one sidecar",
            plural(s.duplicate_sidecars, "recording", "recordings")
        ));
    }
    let skipped = s.skipped_total();
    if skipped > 0 {
        let reasons: Vec<String> = s
            .skipped
            .iter()
            .map(|(reason, n)| format!("{n} {}", reason.as_str().replace('_', " ")))
            .collect();
        first.push_str(&format!(
            "; {} skipped ({})",
            plural(skipped, "key", "keys"),
            reasons.join(", ")
        ));
    }
    lines.push(first);
    if s.unchecked > 0 {
        lines.push(format!(
            "warning: {} could not be checked against the field filters (missing or invalid sidecar) and {} not listed; --include-unchecked lists them",
            plural(s.unchecked, "recording", "recordings"),
            if s.unchecked == 1 { "is" } else { "are" }
        ));
    }
    lines
}

/// The summary as a JSON Lines object.
pub fn json(s: &ScanSummary, calls: CallCounts) -> Value {
    json!({
        "type": "summary",
        "recordings": s.recordings,
        "media_bytes": s.media_bytes,
        "orphans_no_sidecar": s.orphans_no_sidecar,
        "orphans_no_media": s.orphans_no_media,
        "invalid_sidecars": s.invalid_sidecars,
        "duplicate_sidecars": s.duplicate_sidecars,
        "unchecked": s.unchecked,
        "skipped": s.skipped,
        "requests": calls,
    })
}
