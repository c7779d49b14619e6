//! From `--from/--to/--org/...` to the library's `RecordingFilter`.

use anyhow::{Context, Result};
use gcrec_fetch::filter::{RecordingFilter, id_set};
use gcrec_fetch::prune::{Bound, TimeRange, parse_time_bound};

use crate::cli::FilterArgs;
use crate::exit::UsageError;

/// The largest conversations or recordings file read (about 1.5 million IDs).
const MAX_ID_FILE: u64 = 64 * 1024 * 1024;

/// Reads a text file of at most `limit` bytes, whatever it is (`/dev/zero`, a pipe).
pub fn read_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {limit} bytes; is it the right file?"
        )));
    }
    Ok(text)
}

/// Reads a conversations file: one ID per line, the first comma- or whitespace-separated
/// column; blank lines and `#` comments ignored.
fn read_id_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = read_bounded(path, MAX_ID_FILE).map_err(|e| {
        UsageError(format!(
            "cannot read --conversations-file {}: {e}",
            path.display()
        ))
    })?;
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split([',', ' ', '\t', ';']).next())
        .map(|s| s.trim_matches('"').to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() {
        // An empty set would mean "no filter": refuse rather than select everything.
        return Err(UsageError(format!(
            "--conversations-file {} holds no conversation IDs",
            path.display()
        ))
        .into());
    }
    Ok(ids)
}

/// Builds the filter, checking what can be checked before any request is made.
pub fn build(args: &FilterArgs) -> Result<RecordingFilter> {
    let bound = |value: &Option<String>, which: Bound, flag: &str| {
        value
            .as_deref()
            .map(|v| parse_time_bound(v, which).map_err(|e| UsageError(format!("{flag}: {e}"))))
            .transpose()
    };
    let range = TimeRange {
        from: bound(&args.place.from, Bound::Start, "--from")?,
        to: bound(&args.place.to, Bound::End, "--to")?,
    };
    if let (Some(from), Some(to)) = (range.from, range.to)
        && from >= to
    {
        return Err(UsageError(format!(
            "--from must be before --to (the range {range} is empty)"
        ))
        .into());
    }
    let mut conversations = args.conversation.clone();
    if let Some(path) = &args.conversations_file {
        conversations.extend(read_id_file(path).context("reading the conversations file")?);
    }
    let wanted = match &args.recordings_file {
        Some(path) => {
            let text = read_bounded(path, MAX_ID_FILE).map_err(|e| {
                UsageError(format!(
                    "cannot read --recordings-file {}: {e}",
                    path.display()
                ))
            })?;
            let wanted = gcrec_fetch::filter::Wanted::from_csv(text.as_bytes())
                .map_err(|e| UsageError(format!("--recordings-file {} {e}", path.display())))?;
            Some(std::sync::Arc::new(wanted))
        }
        None => None,
    };
    Ok(RecordingFilter {
        range,
        orgs: args.place.org.clone(),
        conversations: id_set(&conversations),
        recordings: id_set(&args.recording),
        users: args.user.clone(),
        queues: args.queue.clone(),
        media_types: args.media_type.clone(),
        directions: args.direction.clone(),
        anis: args.ani.clone(),
        dnis: args.dnis.clone(),
        wrapup_codes: args.wrapup_code.clone(),
        message_types: args.message_type.clone(),
        providers: args.provider.clone(),
        languages: args.language.clone(),
        min_duration_ms: duration(&args.min_duration, "--min-duration")?,
        max_duration_ms: duration(&args.max_duration, "--max-duration")?,
        shard: None,
        wanted,
    })
}

/// A duration in milliseconds from `90` (seconds), `90s`, `5m`, `1h30m`, `500ms`.
fn duration(value: &Option<String>, flag: &str) -> Result<Option<u64>> {
    let Some(text) = value.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let bad = || {
        UsageError(format!(
            "{flag} {text:?}: give seconds (90) or 90s, 5m, 1h30m, 500ms"
        ))
    };
    if text.is_empty() {
        return Err(bad().into());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return seconds
            .checked_mul(1000)
            .map(Some)
            .ok_or_else(|| bad().into());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return Err(bad().into());
        };
        rest = &rest[len..];
        total = n
            .checked_mul(unit)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(bad)?;
    }
    Ok(Some(total))
}

/// Reports the entries of a recordings file that nothing answered (at most 20 by name);
/// returns how many there were.
pub fn report_missing(
    filter: &gcrec_fetch::filter::RecordingFilter,
    tracker: Option<&gcrec_fetch::filter::Tracker>,
    quiet: bool,
) -> Vec<String> {
    let (Some(wanted), Some(tracker)) = (&filter.wanted, tracker) else {
        return Vec::new();
    };
    let missing = tracker.missing(wanted);
    if !quiet && !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(20).map(String::as_str).collect();
        crate::output::diagnostic(
            "not_found",
            &format!(
                "gcrec: {} of {} entries of the recordings file were not found: {}{}",
                missing.len(),
                wanted.entries.len(),
                shown.join(", "),
                if missing.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ),
        );
    }
    missing
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_as_people_write_them() {
        let d = |s: &str| super::duration(&Some(s.to_owned()), "--min-duration");
        assert_eq!(d("90").unwrap(), Some(90_000));
        assert_eq!(d("90s").unwrap(), Some(90_000));
        assert_eq!(d("1h30m").unwrap(), Some(5_400_000));
        assert_eq!(d("500ms").unwrap(), Some(500));
        assert_eq!(d("2m5s").unwrap(), Some(125_000));
        for bad in ["", "m", "5x", "-3", "1.5m", "99999999999999999999"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }
}
