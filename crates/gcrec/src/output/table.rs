//! The aligned table `gcrec ls` prints for people.
//!
//! Column widths come from the first rows (up to [`WIDTH_SAMPLE`]), so the table streams
//! with bounded memory however many recordings there are.

use gcrec_fetch::recording::{Orphan, Recording};

use super::{Out, human_bytes, human_duration_ms};

/// Rows buffered to size the columns.
pub const WIDTH_SAMPLE: usize = 1000;

const HEADER: [&str; 9] = [
    "START (UTC)",
    "CONVERSATION",
    "RECORDING",
    "TYPE",
    "DURATION",
    "SIZE",
    "ANI → DNIS",
    "FLAGS",
    "AGENTS / QUEUES",
];
/// Columns aligned to the right (numbers).
const RIGHT: [bool; 9] = [false, false, false, false, true, true, false, false, false];

fn strip_tel(s: &str) -> &str {
    s.strip_prefix("tel:").unwrap_or(s)
}

/// The cells of one recording's row.
pub fn row(r: &Recording, unchecked: bool) -> [String; 9] {
    let m = r.valid_metadata();
    let start = m.map_or_else(
        || r.hour.start().format("%Y-%m-%d %H:--:--").to_string(),
        |m| m.start_time.format("%Y-%m-%d %H:%M:%S").to_string(),
    );
    let media_type = m.map_or_else(
        || {
            r.media
                .first()
                .map_or("-".to_owned(), |f| format!(".{}", f.extension))
        },
        |m| m.media_type.to_string(),
    );
    let duration = m.map_or("-".to_owned(), |m| human_duration_ms(m.duration_ms));
    let size = if r.media.is_empty() {
        "-".to_owned()
    } else {
        human_bytes(r.media_size())
    };
    let parties = m
        .map(|m| {
            let ani = m.ani_normalized.as_deref().map_or("-", strip_tel);
            let dnis = m.dnis_normalized.as_deref().map_or("-", strip_tel);
            if ani == "-" && dnis == "-" {
                "-".to_owned()
            } else {
                format!("{ani} → {dnis}")
            }
        })
        .unwrap_or_else(|| "-".to_owned());
    let mut flags = Vec::new();
    match r.orphan() {
        Some(Orphan::NoSidecar) => flags.push("no-sidecar"),
        Some(Orphan::NoMedia) => flags.push("no-media"),
        None => {}
    }
    if r.metadata_error().is_some() {
        flags.push("bad-sidecar");
    }
    if !r.extra_sidecars.is_empty() {
        flags.push("dup-sidecar");
    }
    if r.media.len() > 1 {
        flags.push("multi-media");
    }
    if r.media.iter().any(|f| f.instruction.is_some()) {
        flags.push("s3ec-instruction");
    }
    if unchecked {
        flags.push("unchecked");
    }
    let people = m
        .map(|m| {
            let mut parts = Vec::new();
            if !m.user_ids.is_empty() {
                parts.push(m.user_ids.join(","));
            }
            if !m.queue_ids.is_empty() {
                parts.push(format!("q:{}", m.queue_ids.join(",")));
            }
            parts.join(" ")
        })
        .unwrap_or_default();
    [
        start,
        r.conversation_id.clone(),
        r.recording_id.clone(),
        media_type,
        duration,
        size,
        parties,
        if flags.is_empty() {
            "-".to_owned()
        } else {
            flags.join(",")
        },
        people,
    ]
}

/// Streams rows as an aligned table.
pub struct Table {
    sample: Vec<[String; 9]>,
    widths: Option<[usize; 9]>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            sample: Vec::new(),
            widths: None,
        }
    }

    fn render(widths: &[usize; 9], cells: &[String; 9]) -> String {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if i == cells.len() - 1 {
                line.push_str(cell);
            } else if RIGHT[i] {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        line.trim_end().to_owned()
    }

    fn fix_widths(&mut self, out: &mut Out) -> std::io::Result<()> {
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in &self.sample {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        out.line(&Self::render(&widths, &HEADER.map(str::to_owned)))?;
        for row in self.sample.drain(..) {
            out.line(&Self::render(&widths, &row))?;
        }
        self.widths = Some(widths);
        Ok(())
    }

    /// Adds a row (printed once the column widths are known).
    pub fn push(&mut self, out: &mut Out, cells: [String; 9]) -> std::io::Result<()> {
        match &self.widths {
            Some(w) => out.line(&Self::render(w, &cells)),
            None => {
                self.sample.push(cells);
                if self.sample.len() >= WIDTH_SAMPLE {
                    self.fix_widths(out)?;
                }
                Ok(())
            }
        }
    }

    /// Prints whatever is still buffered. An empty table prints nothing.
    pub fn finish(mut self, out: &mut Out) -> std::io::Result<()> {
        if self.widths.is_none() && !self.sample.is_empty() {
            self.fix_widths(out)?;
        }
        Ok(())
    }
}
