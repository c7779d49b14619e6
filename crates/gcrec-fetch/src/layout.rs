//! The export's key layout: turning an object key into a typed [`ExportKey`].
//!
//! ```text
//! [{root}/]{organizationId}/year={y}/month={m}/day={d}/hour={h}/conversation_id={c}/{file}
//! ```
//!
//! Keys are parsed from the right, so an export that sits under a root prefix
//! (`exports/genesys/{org}/year=…`) parses the same as one at the bucket root. Month, day
//! and hour may be zero-padded or not. Every key that does not fit is classified with a
//! [`SkipReason`] and counted by the caller; parsing never fails hard.

use std::fmt;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Serialize;

/// Suffix of a metadata sidecar (`{recordingId}_metadata.json`, or a variant such as
/// `{recordingId}.opus_metadata.json`).
pub const SIDECAR_SUFFIX: &str = "_metadata.json";
/// Suffix of an Amazon S3 Encryption Client instruction file (`{key}.instruction`).
pub const INSTRUCTION_SUFFIX: &str = ".instruction";

/// The UTC hour in which a conversation began: the `year=/month=/day=/hour=` partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConversationHour(DateTime<Utc>);

impl Serialize for ConversationHour {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%Y-%m-%dT%H:00:00Z"))
    }
}

impl ConversationHour {
    /// Builds an hour from calendar parts, or `None` if they do not name a real hour.
    pub fn from_parts(year: i32, month: u32, day: u32, hour: u32) -> Option<Self> {
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        let naive = date.and_hms_opt(hour, 0, 0)?;
        Some(Self(Utc.from_utc_datetime(&naive)))
    }

    /// The hour that begins at `secs` seconds after the Unix epoch, or `None` if that is
    /// not the first second of an hour (or out of range).
    pub fn from_timestamp(secs: i64) -> Option<Self> {
        (secs.rem_euclid(3600) == 0)
            .then(|| DateTime::from_timestamp(secs, 0))
            .flatten()
            .map(Self)
    }

    /// The first instant of the hour.
    pub fn start(&self) -> DateTime<Utc> {
        self.0
    }

    /// The first instant after the hour.
    pub fn end(&self) -> DateTime<Utc> {
        self.0 + chrono::Duration::hours(1)
    }
}

impl fmt::Display for ConversationHour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:00Z"))
    }
}

/// What a file in a conversation folder is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileKind {
    /// A recording's media (`.opus`, `.zip`, `.wav`, …), possibly with an encryption
    /// suffix (`.opus.pgp`). `extension` is everything after the recording ID's first dot.
    Media {
        /// e.g. `opus`, `zip`, `opus.pgp`.
        extension: String,
    },
    /// The recording's metadata sidecar.
    Metadata,
    /// An S3 Encryption Client instruction file for the object `target` (full key).
    Instruction {
        /// Key of the object this instruction file describes.
        target: String,
    },
    /// Anything else in a conversation folder (no extension, dot-files, …).
    Other,
}

/// A key that fits the export layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ExportKey {
    /// The full object key, as listed.
    pub key: String,
    /// Anything before the organization segment, with its trailing `/` (usually empty).
    pub root: String,
    /// The organization ID segment.
    pub organization_id: String,
    /// When the conversation began (hour granularity, UTC).
    pub hour: ConversationHour,
    /// The conversation ID.
    pub conversation_id: String,
    /// The recording ID this file belongs to (empty for [`FileKind::Other`]).
    pub recording_id: String,
    /// The file name (last key segment).
    pub file_name: String,
    /// What the file is.
    pub file: FileKind,
}

impl ExportKey {
    /// The conversation folder, with its trailing `/`.
    pub fn folder(&self) -> &str {
        &self.key[..self.key.len() - self.file_name.len()]
    }
}

/// Why a key was not taken as part of the export. Skipped keys are counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The key does not follow the export layout (another tool's files, a README, …).
    Foreign,
    /// The key has `year=`/`month=`/… segments whose values are not a real date and hour.
    BadPartition,
    /// The key has a segment that is empty, `.` or `..`, starts with `/`, or contains a
    /// backslash or a control character. Such keys are never turned into paths.
    Unsafe,
    /// A zero-byte "folder marker" key ending in `/`.
    FolderMarker,
    /// A file in a conversation folder that is neither media nor sidecar (`.DS_Store`,
    /// a name without an extension).
    NotARecording,
    /// An S3 Encryption Client instruction file whose object is not there.
    UnpairedInstruction,
}

impl SkipReason {
    /// A short, stable name for summaries and JSON output.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::Foreign => "foreign",
            SkipReason::BadPartition => "bad_partition",
            SkipReason::Unsafe => "unsafe",
            SkipReason::FolderMarker => "folder_marker",
            SkipReason::NotARecording => "not_a_recording",
            SkipReason::UnpairedInstruction => "unpaired_instruction",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of classifying one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedKey {
    /// The key belongs to the export.
    Export(ExportKey),
    /// The key was skipped, for this reason.
    Skipped(SkipReason),
}

/// Whether `segment` is safe to use as one component of a local path.
///
/// Rejects empty, `.`, `..`, anything with `/`, `\`, NUL or another control character,
/// and Windows drive-like prefixes (`C:`).
pub fn is_safe_segment(segment: &str) -> bool {
    !(segment.is_empty()
        || segment == "."
        || segment == ".."
        || segment
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
        || (segment.len() >= 2 && segment.as_bytes()[1] == b':'))
}

/// Whether every segment of `key` is safe (see [`is_safe_segment`]); a trailing `/`
/// (folder marker or prefix) is allowed.
pub fn is_safe_key(key: &str) -> bool {
    let body = key.strip_suffix('/').unwrap_or(key);
    !body.is_empty() && body.split('/').all(is_safe_segment)
}

/// The time partitions of the layout, outermost first: `year=`, `month=`, `day=`, `hour=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// `year=YYYY` (exactly four digits).
    Year,
    /// `month=M` or `month=MM`.
    Month,
    /// `day=D` or `day=DD`.
    Day,
    /// `hour=H` or `hour=HH`.
    Hour,
}

impl Partition {
    /// Every partition, outermost first.
    pub const ALL: [Partition; 4] = [
        Partition::Year,
        Partition::Month,
        Partition::Day,
        Partition::Hour,
    ];

    /// The segment's name before `=`.
    pub fn name(self) -> &'static str {
        match self {
            Partition::Year => "year",
            Partition::Month => "month",
            Partition::Day => "day",
            Partition::Hour => "hour",
        }
    }

    /// The numeric value of a segment of this partition, e.g. `month=03` → 3. Accepts
    /// 1–2 digits for month/day/hour and exactly 4 for year.
    pub fn value(self, segment: &str) -> Option<u32> {
        let value = segment.strip_prefix(self.name())?.strip_prefix('=')?;
        let ok_len = match self {
            Partition::Year => value.len() == 4,
            _ => (1..=2).contains(&value.len()),
        };
        if !ok_len || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        value.parse().ok()
    }

    /// Whether `segment` is named like this partition (`month=…`), whatever its value.
    pub fn names(self, segment: &str) -> bool {
        segment
            .strip_prefix(self.name())
            .is_some_and(|v| v.starts_with('='))
    }
}

/// How an export spells its month, day and hour partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// `month=03`.
    Padded,
    /// `month=3`.
    Unpadded,
    /// Both appear.
    Mixed,
}

/// What the keys seen so far say about the partition spelling: a leading zero
/// (`day=07`) is padding, a single digit (`day=7`) is not; `day=12` says nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaddingSeen {
    padded: bool,
    unpadded: bool,
}

impl PaddingSeen {
    /// Looks at the partition segments of a key (or folder).
    pub fn see(&mut self, key: &str) {
        for segment in key.split('/') {
            if [Partition::Month, Partition::Day, Partition::Hour]
                .iter()
                .any(|p| p.names(segment))
            {
                let value = segment.split_once('=').map_or("", |(_, v)| v);
                self.padded |= value.len() == 2 && value.starts_with('0');
                self.unpadded |= value.len() == 1;
            }
        }
    }

    /// The spelling seen (padded when nothing told either way).
    pub fn padding(&self) -> Padding {
        match (self.padded, self.unpadded) {
            (true, true) => Padding::Mixed,
            (false, true) => Padding::Unpadded,
            _ => Padding::Padded,
        }
    }
}

/// The conversation folder's segment prefix, `conversation_id=`.
pub const CONVERSATION_PREFIX: &str = "conversation_id=";

/// Whether a folder name is one of the layout's partition or conversation folders.
pub fn is_partition_segment(segment: &str) -> bool {
    Partition::ALL.iter().any(|p| p.names(segment)) || segment.starts_with(CONVERSATION_PREFIX)
}

/// Classifies an object key.
///
/// ```
/// use gcrec_fetch::layout::{parse_key, FileKind, ParsedKey, SkipReason};
///
/// let key = "org-1/year=2024/month=3/day=07/hour=9/conversation_id=c-1/r-1.opus_metadata.json";
/// let ParsedKey::Export(k) = parse_key(key) else { panic!("not an export key") };
/// assert_eq!((k.organization_id.as_str(), k.recording_id.as_str()), ("org-1", "r-1"));
/// assert_eq!(k.file, FileKind::Metadata);
/// assert_eq!(k.hour.to_string(), "2024-03-07T09:00Z");
///
/// assert_eq!(parse_key("org-1/../../etc/passwd"), ParsedKey::Skipped(SkipReason::Unsafe));
/// assert_eq!(parse_key("logs/access.log"), ParsedKey::Skipped(SkipReason::Foreign));
/// ```
pub fn parse_key(key: &str) -> ParsedKey {
    if key.ends_with('/') {
        return ParsedKey::Skipped(if is_safe_key(key) {
            SkipReason::FolderMarker
        } else {
            SkipReason::Unsafe
        });
    }
    if !is_safe_key(key) {
        return ParsedKey::Skipped(SkipReason::Unsafe);
    }
    let segments: Vec<&str> = key.split('/').collect();
    if segments.len() < 7 {
        return ParsedKey::Skipped(SkipReason::Foreign);
    }
    let n = segments.len();
    let [org, year, month, day, hour, conv, file] = [
        segments[n - 7],
        segments[n - 6],
        segments[n - 5],
        segments[n - 4],
        segments[n - 3],
        segments[n - 2],
        segments[n - 1],
    ];
    let Some(conversation_id) = conv.strip_prefix(CONVERSATION_PREFIX) else {
        return ParsedKey::Skipped(SkipReason::Foreign);
    };
    let partitions = [year, month, day, hour];
    let names_fit = Partition::ALL
        .iter()
        .zip(partitions)
        .all(|(p, s)| p.names(s));
    if !names_fit || conversation_id.is_empty() {
        return ParsedKey::Skipped(SkipReason::Foreign);
    }
    let parts = (
        Partition::Year.value(year),
        Partition::Month.value(month),
        Partition::Day.value(day),
        Partition::Hour.value(hour),
    );
    let (Some(y), Some(m), Some(d), Some(h)) = parts else {
        return ParsedKey::Skipped(SkipReason::BadPartition);
    };
    let Some(hour) = ConversationHour::from_parts(y as i32, m, d, h) else {
        return ParsedKey::Skipped(SkipReason::BadPartition);
    };
    let (recording_id, file_kind) = classify_file(key, file);
    let root = if n > 7 {
        format!("{}/", segments[..n - 7].join("/"))
    } else {
        String::new()
    };
    ParsedKey::Export(ExportKey {
        key: key.to_owned(),
        root,
        organization_id: org.to_owned(),
        hour,
        conversation_id: conversation_id.to_owned(),
        recording_id,
        file_name: file.to_owned(),
        file: file_kind,
    })
}

/// Splits a file name into its recording ID and kind.
fn classify_file(key: &str, file: &str) -> (String, FileKind) {
    if let Some(stem) = file.strip_suffix(SIDECAR_SUFFIX) {
        // `{id}_metadata.json` or a variant `{id}.opus_metadata.json`.
        let id = stem.split('.').next().unwrap_or_default();
        if !id.is_empty() {
            return (id.to_owned(), FileKind::Metadata);
        }
        return (String::new(), FileKind::Other);
    }
    if let Some(target_name) = file.strip_suffix(INSTRUCTION_SUFFIX) {
        let id = target_name.split('.').next().unwrap_or_default();
        if !id.is_empty() {
            let target = &key[..key.len() - INSTRUCTION_SUFFIX.len()];
            return (
                id.to_owned(),
                FileKind::Instruction {
                    target: target.to_owned(),
                },
            );
        }
        return (String::new(), FileKind::Other);
    }
    match file.split_once('.') {
        Some((id, ext)) if !id.is_empty() && !ext.is_empty() => (
            id.to_owned(),
            FileKind::Media {
                extension: ext.to_owned(),
            },
        ),
        _ => (String::new(), FileKind::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "3b0e2f2a-0d7c-4c2e-9d55-1f1f0c1b2a11";
    const CONV: &str = "c0ffee00-1111-2222-3333-444455556666";
    const REC: &str = "a1b2c3d4-0000-1111-2222-333344445555";

    fn key(y: &str, m: &str, d: &str, h: &str, file: &str) -> String {
        format!("{ORG}/year={y}/month={m}/day={d}/hour={h}/conversation_id={CONV}/{file}")
    }

    fn export(k: &str) -> ExportKey {
        match parse_key(k) {
            ParsedKey::Export(e) => e,
            other => panic!("{k}: expected export key, got {other:?}"),
        }
    }

    fn skipped(k: &str) -> SkipReason {
        match parse_key(k) {
            ParsedKey::Skipped(r) => r,
            other => panic!("{k}: expected skip, got {other:?}"),
        }
    }

    #[test]
    fn padded_and_unpadded_partitions_parse_to_the_same_hour() {
        let padded = export(&key("2024", "03", "07", "09", &format!("{REC}.opus")));
        let unpadded = export(&key("2024", "3", "7", "9", &format!("{REC}.opus")));
        assert_eq!(padded.hour, unpadded.hour);
        assert_eq!(padded.hour.to_string(), "2024-03-07T09:00Z");
        assert_eq!(padded.organization_id, ORG);
        assert_eq!(padded.conversation_id, CONV);
        assert_eq!(padded.recording_id, REC);
        assert_eq!(padded.root, "");
        assert_eq!(
            padded.file,
            FileKind::Media {
                extension: "opus".into()
            }
        );
        assert_eq!(
            padded.folder(),
            format!("{ORG}/year=2024/month=03/day=07/hour=09/conversation_id={CONV}/")
        );
    }

    #[test]
    fn sidecar_and_its_suffix_variant_pair_by_recording_id() {
        let plain = export(&key("2024", "3", "7", "9", &format!("{REC}_metadata.json")));
        let variant = export(&key(
            "2024",
            "3",
            "7",
            "9",
            &format!("{REC}.opus_metadata.json"),
        ));
        for k in [&plain, &variant] {
            assert_eq!(k.file, FileKind::Metadata);
            assert_eq!(k.recording_id, REC);
        }
    }

    #[test]
    fn instruction_files_name_their_target() {
        let k = key("2024", "3", "7", "9", &format!("{REC}.zip.instruction"));
        let e = export(&k);
        assert_eq!(e.recording_id, REC);
        assert_eq!(
            e.file,
            FileKind::Instruction {
                target: k.trim_end_matches(".instruction").to_owned()
            }
        );
    }

    #[test]
    fn other_media_extensions_and_encrypted_suffixes_are_media() {
        for ext in ["zip", "wav", "mp3", "webm", "json", "opus.pgp", "zip.asc"] {
            let e = export(&key("2024", "12", "31", "23", &format!("{REC}.{ext}")));
            assert_eq!(
                e.file,
                FileKind::Media {
                    extension: ext.into()
                }
            );
        }
    }

    #[test]
    fn files_without_a_recording_name_are_other() {
        for f in [".DS_Store", "README", "_metadata.json", ".instruction"] {
            let e = export(&key("2024", "1", "1", "0", f));
            assert_eq!(e.file, FileKind::Other, "{f}");
            assert_eq!(e.recording_id, "");
        }
    }

    #[test]
    fn a_root_prefix_before_the_org_is_kept() {
        let k = format!("exports/genesys/{}", key("2024", "1", "1", "0", "r.opus"));
        let e = export(&k);
        assert_eq!(e.root, "exports/genesys/");
        assert_eq!(e.organization_id, ORG);
        assert_eq!(e.key, k);
    }

    #[test]
    fn foreign_keys_are_classified_not_fatal() {
        for k in [
            "README.txt",
            "logs/2024/03/07/access.log",
            &format!("{ORG}/year=2024/month=3/day=7/hour=9/{REC}.opus"),
            &format!("{ORG}/year=2024/month=3/day=7/hour=9/conv={CONV}/{REC}.opus"),
            &format!("{ORG}/yr=2024/month=3/day=7/hour=9/conversation_id={CONV}/{REC}.opus"),
            // The misprint in the public docs: `{month=` is not the real layout.
            &format!("{ORG}/year=2024/{{month=3/day=7/hour=9/conversation_id={CONV}/x.opus"),
            &format!("{ORG}/year=2024/month=3/day=7/hour=9/conversation_id=/{REC}.opus"),
        ] {
            assert_eq!(skipped(k), SkipReason::Foreign, "{k}");
        }
    }

    #[test]
    fn impossible_dates_are_bad_partitions() {
        for (y, m, d, h) in [
            ("2024", "13", "1", "0"),
            ("2023", "2", "29", "0"),
            ("2024", "1", "1", "24"),
            ("2024", "001", "1", "0"),
            ("24", "1", "1", "0"),
            ("2024", "1", "x", "0"),
            ("2024", "-1", "1", "0"),
            ("2024", "", "1", "0"),
        ] {
            assert_eq!(
                skipped(&key(y, m, d, h, "r.opus")),
                SkipReason::BadPartition,
                "{y}-{m}-{d} {h}"
            );
        }
        // 29 February exists in leap years.
        export(&key("2024", "2", "29", "0", "r.opus"));
    }

    #[test]
    fn traversal_and_absolute_looking_keys_are_unsafe() {
        let good = key("2024", "3", "7", "9", "r.opus");
        for k in [
            format!("/{good}"),
            format!("../{good}"),
            format!("a/../{good}"),
            format!("./{good}"),
            format!("a//{good}"),
            key("2024", "3", "7", "9", ".."),
            key("2024", "3", "7", "9", "..\\..\\evil.opus"),
            key("2024", "3", "7", "9", "r\0.opus"),
            key("2024", "3", "7", "9", "r\n.opus"),
            format!("C:/{good}"),
            String::new(),
        ] {
            assert_eq!(skipped(&k), SkipReason::Unsafe, "{k:?}");
        }
        assert_eq!(skipped("a/../b/"), SkipReason::Unsafe);
    }

    #[test]
    fn folder_markers_are_skipped() {
        assert_eq!(
            skipped(&format!("{ORG}/year=2024/month=3/")),
            SkipReason::FolderMarker
        );
    }

    #[test]
    fn unicode_segments_are_accepted_and_kept_verbatim() {
        let k = "Org-Ünïcødé/year=2024/month=3/day=7/hour=9/conversation_id=會話-1/录音-①.opus";
        let e = export(k);
        assert_eq!(e.organization_id, "Org-Ünïcødé");
        assert_eq!(e.conversation_id, "會話-1");
        assert_eq!(e.recording_id, "录音-①");
        assert_eq!(e.file_name, "录音-①.opus");
        assert!(e.folder().ends_with("conversation_id=會話-1/"));
        // Unicode line/paragraph separators are control-like enough to refuse? No: only
        // C0/C1 controls are. A right-to-left override stays a normal character.
        export(&key("2024", "1", "1", "0", "r\u{202e}.opus"));
        assert_eq!(
            skipped(&key("2024", "1", "1", "0", "r\u{85}.opus")),
            SkipReason::Unsafe
        );
    }

    #[test]
    fn partition_values() {
        assert_eq!(Partition::Month.value("month=03"), Some(3));
        assert_eq!(Partition::Month.value("month=3"), Some(3));
        assert_eq!(Partition::Month.value("month="), None);
        assert_eq!(Partition::Month.value("month=+3"), None);
        assert_eq!(Partition::Year.value("year=2024"), Some(2024));
        assert_eq!(Partition::Year.value("year=202"), None);
        assert_eq!(Partition::Year.value("years=2024"), None);
        assert!(is_partition_segment("conversation_id=c1") && is_partition_segment("day=7"));
        assert!(!is_partition_segment("org-1"));
        let mut seen = PaddingSeen::default();
        seen.see("o/year=2024/month=12/day=15/hour=10/conversation_id=c/");
        assert_eq!(seen.padding(), Padding::Padded, "no evidence either way");
        seen.see("o/year=2024/month=12/day=15/hour=0/conversation_id=c/");
        assert_eq!(seen.padding(), Padding::Unpadded);
        seen.see("o/year=2024/month=03/day=15/hour=10/conversation_id=c/");
        assert_eq!(seen.padding(), Padding::Mixed);
    }
}
