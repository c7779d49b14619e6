//! `gcrec ls --csv`: one row per recording, values as they are (for engines and scripts;
//! open it in a spreadsheet only with formula evaluation off).

use gcrec_fetch::recording::Recording;

/// The header row.
pub const HEADER: [&str; 18] = [
    "status",
    "organization_id",
    "conversation_id",
    "recording_id",
    "conversation_start_time",
    "media_type",
    "duration_ms",
    "initial_direction",
    "ani",
    "dnis",
    "user_ids",
    "queue_ids",
    "wrapup_codes",
    "media_key",
    "media_bytes",
    "sidecar_key",
    "orphan",
    "metadata_error",
];

/// One recording's row; lists are joined with `;`.
pub fn row(r: &Recording, unchecked: bool) -> Vec<String> {
    let m = r.valid_metadata();
    let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
    vec![
        if unchecked { "unchecked" } else { "match" }.to_owned(),
        r.organization_id.clone(),
        r.conversation_id.clone(),
        r.recording_id.clone(),
        m.map(|m| {
            m.conversation_start_time
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .unwrap_or_default(),
        m.map(|m| m.media_type.to_string()).unwrap_or_default(),
        m.map(|m| m.duration_ms.to_string()).unwrap_or_default(),
        text(m.and_then(|m| m.initial_direction.as_deref())),
        text(m.and_then(|m| m.ani_normalized.as_deref())),
        text(m.and_then(|m| m.dnis_normalized.as_deref())),
        m.map(|m| m.user_ids.join(";")).unwrap_or_default(),
        m.map(|m| m.queue_ids.join(";")).unwrap_or_default(),
        m.map(|m| m.wrapup_codes.join(";")).unwrap_or_default(),
        text(r.media.first().map(|f| f.object.key.as_str())),
        if r.media.is_empty() {
            String::new()
        } else {
            r.media_size().to_string()
        },
        text(r.sidecar.as_ref().map(|s| s.key.as_str())),
        text(r.orphan().map(|o| o.as_str())),
        r.metadata_error()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ]
}

/// Renders one CSV record as a line (without its line end).
pub fn line<I: IntoIterator<Item = S>, S: AsRef<[u8]>>(cells: I) -> std::io::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(cells).map_err(std::io::Error::other)?;
    let mut bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(std::io::Error::other)
}
