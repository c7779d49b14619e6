//! JSON Lines: one object per line, each with a `type` (`recording`, `unchecked`,
//! `skipped`, `summary`). The schema is documented in docs/json-output.md.

use gcrec_fetch::recording::{Recording, ScanEvent};
use serde_json::{Value, json};

/// The JSON object for a recording (`type` is `recording` or `unchecked`).
pub fn recording(kind: &str, r: &Recording) -> Value {
    json!({
        "type": kind,
        "organization_id": r.organization_id,
        "conversation_id": r.conversation_id,
        "recording_id": r.recording_id,
        "conversation_hour": r.hour,
        "folder": r.folder,
        "orphan": r.orphan(),
        "media": r.media,
        "sidecar": r.sidecar,
        "extra_sidecars": r.extra_sidecars,
        "metadata": r.valid_metadata().map(|m| m.document()),
        "metadata_error": r.metadata_error().map(ToString::to_string),
    })
}

/// The JSON object for any scan event.
pub fn event(e: &ScanEvent) -> Value {
    match e {
        ScanEvent::Recording(r) => recording("recording", r),
        ScanEvent::Unchecked(r) => recording("unchecked", r),
        ScanEvent::Skipped(s) => json!({"type": "skipped", "key": s.key, "reason": s.reason}),
    }
}
