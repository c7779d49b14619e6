//! Which recordings a query wants.
//!
//! Each filter takes any of several values (OR); different filters must all hold (AND).
//! Location filters (organization, conversation, recording, time by partition hour) are
//! checked on the key alone. Field filters (user, queue, media type, direction, ANI,
//! DNIS, wrap-up code, message type) need the sidecar: a recording whose sidecar is
//! missing or invalid cannot be checked and is reported as [`Verdict::Unknown`] — never
//! silently dropped, never silently included.

use std::collections::HashSet;

use crate::metadata::RecordingMetadata;
use crate::prune::TimeRange;
use crate::recording::{Recording, ScanEvent};

/// A query over recordings. The default matches everything.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    /// Conversations that began in this range (UTC).
    pub range: TimeRange,
    /// Organization IDs.
    pub orgs: Vec<String>,
    /// Conversation IDs, lower-cased (build with [`id_set`]).
    pub conversations: HashSet<String>,
    /// Recording IDs, lower-cased (build with [`id_set`]).
    pub recordings: HashSet<String>,
    /// Any of these users (`userIds`).
    pub users: Vec<String>,
    /// Any of these queues (`queueIds`).
    pub queues: Vec<String>,
    /// Media types (`mediaType`), case-insensitive.
    pub media_types: Vec<String>,
    /// Directions (`initialDirection`), case-insensitive.
    pub directions: Vec<String>,
    /// Caller numbers (`aniNormalized` / `aniDisplayable`), see [`phone_matches`].
    pub anis: Vec<String>,
    /// Dialed numbers (`dnisNormalized` / `dnisDisplayable`), see [`phone_matches`].
    pub dnis: Vec<String>,
    /// Wrap-up codes (`wrapupCodes`).
    pub wrapup_codes: Vec<String>,
    /// Message types (`messageType`), case-insensitive.
    pub message_types: Vec<String>,
    /// Providers (`provider`: `edge`, `cloud`, …), case-insensitive.
    pub providers: Vec<String>,
    /// Languages (`languageIds`, e.g. `en-US`; any of a comma-separated list),
    /// case-insensitive.
    pub languages: Vec<String>,
    /// Recordings at least this long (`durationMs`).
    pub min_duration_ms: Option<u64>,
    /// Recordings at most this long (`durationMs`).
    pub max_duration_ms: Option<u64>,
    /// Only this worker's share of the conversations.
    pub shard: Option<Shard>,
    /// Only these recordings, conversations or objects (a recordings file).
    pub wanted: Option<std::sync::Arc<Wanted>>,
}

/// Recordings asked for one by one — by recording ID, conversation ID or object key —
/// from a file: one per line, or a column of a CSV with a header (an Athena query result,
/// whose cells are quoted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Recording or conversation IDs, lower-cased.
    pub ids: HashSet<String>,
    /// Object keys (media, sidecar), as given.
    pub keys: HashSet<String>,
    /// Every entry as given, in file order, for reporting the ones not found.
    pub entries: Vec<String>,
}

/// Column names a recordings file's header may use for the value to match.
const WANTED_COLUMNS: [&str; 8] = [
    "recording_id",
    "recordingid",
    "conversation_id",
    "conversationid",
    "key",
    "object_key",
    "s3_key",
    "path",
];

impl Wanted {
    /// Reads a recordings file. A first row naming one of the known columns
    /// (`recordingId`, `conversation_id`, `key`, …) is a header: that column is used. A
    /// file of one column needs no header. Blank lines and `#` comments are ignored.
    pub fn from_csv(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let mut rows = reader.records();
        let Some(first) = rows.next().transpose().map_err(|e| e.to_string())? else {
            return Err("holds no entries".into());
        };
        let header = first.iter().position(|cell| {
            let name = cell.to_ascii_lowercase().replace([' ', '-'], "_");
            WANTED_COLUMNS.contains(&name.as_str())
        });
        let column = match (header, first.len()) {
            (Some(c), _) => c,
            (None, 1) => 0,
            (None, n) => {
                return Err(format!(
                    "has {n} columns and no header naming the one to use (one of {})",
                    WANTED_COLUMNS.join(", ")
                ));
            }
        };
        let mut wanted = Wanted::default();
        let mut take = |value: &str| {
            let value = value.trim();
            if value.is_empty() {
                return;
            }
            if value.contains('/') {
                wanted.keys.insert(value.to_owned());
            } else {
                wanted.ids.insert(value.to_ascii_lowercase());
            }
            wanted.entries.push(value.to_owned());
        };
        if header.is_none() {
            take(first.get(column).unwrap_or_default());
        }
        for row in rows {
            let row = row.map_err(|e| e.to_string())?;
            take(row.get(column).unwrap_or_default());
        }
        if wanted.entries.is_empty() {
            return Err("holds no entries".into());
        }
        Ok(wanted)
    }

    /// Whether a recording is one of those asked for.
    pub fn matches(&self, r: &Recording) -> bool {
        self.ids.contains(&r.recording_id.to_ascii_lowercase())
            || self.ids.contains(&r.conversation_id.to_ascii_lowercase())
            || (!self.keys.is_empty() && r.keys().any(|k| self.keys.contains(k)))
    }

    /// A tracker of the entries no delivered recording has answered yet.
    pub fn tracker(&self) -> Tracker {
        Tracker {
            remaining: self.entries.iter().map(|e| normalized(e)).collect(),
        }
    }
}

/// An entry as it is compared: keys as given, IDs lower-cased.
fn normalized(entry: &str) -> String {
    if entry.contains('/') {
        entry.to_owned()
    } else {
        entry.to_ascii_lowercase()
    }
}

/// Which entries of a recordings file are still unanswered.
#[derive(Debug, Clone)]
pub struct Tracker {
    remaining: HashSet<String>,
}

impl Tracker {
    /// A recording was delivered: its IDs and object keys answer the entries naming them.
    pub fn found<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            self.remaining.remove(&normalized(name));
        }
    }

    /// The entries nothing answered, in the file's order.
    pub fn missing(&self, wanted: &Wanted) -> Vec<String> {
        wanted
            .entries
            .iter()
            .filter(|e| self.remaining.contains(&normalized(e)))
            .cloned()
            .collect()
    }
}

/// One worker's share of a run split across `count` workers: the conversations whose
/// ID hashes to `index`. Deterministic (SHA-256 of the lower-cased conversation ID, first
/// 8 bytes big-endian, modulo `count`), so separate workers split any run with no overlap
/// and a conversation never splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker, `0..count`.
    pub index: u32,
    /// Workers.
    pub count: u32,
}

impl Shard {
    /// `index` of `count`, checked.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be below the count (0-based: 0/{count} … {}/{count})",
                count.saturating_sub(1)
            ));
        }
        Ok(Self { index, count })
    }

    /// The shard a conversation belongs to.
    pub fn of(conversation_id: &str, count: u32) -> u32 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(conversation_id.to_ascii_lowercase().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
    }

    /// Whether this shard takes the conversation.
    pub fn contains(&self, conversation_id: &str) -> bool {
        Self::of(conversation_id, self.count) == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N`, 0-based.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected INDEX/COUNT, e.g. 0/4"))?;
        let parse = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: expected INDEX/COUNT, e.g. 0/4"))
        };
        Self::new(parse(i)?, parse(n)?)
    }
}

/// Whether a recording matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It matches.
    Match,
    /// It does not.
    NoMatch,
    /// The filter needs sidecar fields this recording does not have (no sidecar, or an
    /// invalid one).
    Unknown,
}

/// A set of IDs for [`RecordingFilter::conversations`] or [`RecordingFilter::recordings`]:
/// trimmed and lower-cased, so matching ignores case.
pub fn id_set<I: IntoIterator<Item = S>, S: AsRef<str>>(ids: I) -> HashSet<String> {
    ids.into_iter()
        .map(|s| s.as_ref().trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn eq_any(wanted: &[String], value: &str) -> bool {
    wanted.iter().any(|w| w.eq_ignore_ascii_case(value))
}

fn eq_any_opt(wanted: &[String], value: Option<&str>) -> bool {
    value.is_some_and(|v| eq_any(wanted, v))
}

fn intersects(wanted: &[String], values: &[String]) -> bool {
    values.iter().any(|v| eq_any(wanted, v))
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Whether a phone number the user typed matches a number from a sidecar.
///
/// Numbers compare by their digits, so `+1 (317) 555-0100`, `13175550100` and
/// `tel:+13175550100` are the same number. A query without a leading `+` and with at
/// least 7 digits also matches as a suffix, so a national number finds its international
/// form (`3175550100` finds `tel:+13175550100`). A query with letters (a SIP address)
/// compares as text, without a `tel:`/`sip:` scheme, case-insensitively.
///
/// ```
/// use gcrec_fetch::filter::phone_matches;
///
/// assert!(phone_matches("+1 (317) 555-0100", "tel:+13175550100"));
/// assert!(phone_matches("317 555 0100", "tel:+13175550100"));
/// assert!(!phone_matches("+317 555 0100", "tel:+13175550100"));
/// ```
pub fn phone_matches(query: &str, value: &str) -> bool {
    let (q, v) = (strip_scheme(query), strip_scheme(value));
    if is_address(q) {
        return q.eq_ignore_ascii_case(v);
    }
    let (Some(qd), Some(vd)) = (phone_digits(query), phone_digits(value)) else {
        return false;
    };
    qd == vd || (phone_suffix_allowed(query) && vd.ends_with(&qd))
}

/// Whether a number query also matches numbers that end with its digits (a national
/// number finding its international form): no leading `+`, and at least 7 digits.
pub fn phone_suffix_allowed(query: &str) -> bool {
    !strip_scheme(query).starts_with('+') && phone_digits(query).is_some_and(|d| d.len() >= 7)
}

/// A number without its `tel:`/`sip:`/`sips:` scheme.
fn strip_scheme(s: &str) -> &str {
    let s = s.trim();
    for scheme in ["tel:", "sip:", "sips:"] {
        if s.len() >= scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return &s[scheme.len()..];
        }
    }
    s
}

/// Whether a (scheme-less) number is an address compared as text (a SIP address).
fn is_address(s: &str) -> bool {
    s.chars().any(|c| c.is_alphabetic() || c == '@')
}

/// The digits a number compares by in [`phone_matches`], or `None` when it does not
/// compare by digits (a SIP address, or no digits at all). Whenever
/// `phone_matches(q, v)` holds for a query of digits, `phone_digits(v)` ends with
/// `phone_digits(q)`: an index of reversed digits finds every candidate by prefix.
pub fn phone_digits(number: &str) -> Option<String> {
    let s = strip_scheme(number);
    if is_address(s) {
        return None;
    }
    let d = digits(s);
    (!d.is_empty()).then_some(d)
}

fn phone_any(queries: &[String], values: [Option<&str>; 2]) -> bool {
    queries
        .iter()
        .any(|q| values.iter().flatten().any(|v| phone_matches(q, v)))
}

impl RecordingFilter {
    /// Whether any field filter is set (they need the sidecar).
    pub fn has_field_filters(&self) -> bool {
        [
            &self.users,
            &self.queues,
            &self.media_types,
            &self.directions,
            &self.anis,
            &self.dnis,
            &self.wrapup_codes,
            &self.message_types,
            &self.providers,
            &self.languages,
        ]
        .iter()
        .any(|v| !v.is_empty())
            || self.min_duration_ms.is_some()
            || self.max_duration_ms.is_some()
    }

    /// Whether the partition hour lies wholly inside the time range.
    fn hour_covered(&self, r: &Recording) -> bool {
        self.range.covers(r.hour.start(), r.hour.end())
    }

    /// Whether this recording's sidecar must be read to decide.
    pub fn wants_metadata_for(&self, r: &Recording) -> bool {
        self.has_field_filters() || !self.hour_covered(r)
    }

    /// The checks that need only the key: organization, conversation, recording, and the
    /// partition hour meeting the time range.
    pub fn matches_location(&self, r: &Recording) -> bool {
        let id_in = |set: &HashSet<String>, id: &str| {
            set.is_empty() || set.contains(&id.to_ascii_lowercase())
        };
        (self.orgs.is_empty() || eq_any(&self.orgs, &r.organization_id))
            && id_in(&self.conversations, &r.conversation_id)
            && id_in(&self.recordings, &r.recording_id)
            && self.range.overlaps(r.hour.start(), r.hour.end())
            && self.shard.is_none_or(|s| s.contains(&r.conversation_id))
            && self.wanted.as_ref().is_none_or(|w| w.matches(r))
    }

    /// The location checks a single key allows before its recording is paired:
    /// organization, conversation, recording, partition hour and shard. A key that fails
    /// them belongs to no recording that can match.
    pub fn admits_key(&self, k: &crate::layout::ExportKey) -> bool {
        let id_in = |set: &HashSet<String>, id: &str| {
            set.is_empty() || set.contains(&id.to_ascii_lowercase())
        };
        (self.orgs.is_empty() || eq_any(&self.orgs, &k.organization_id))
            && id_in(&self.conversations, &k.conversation_id)
            && (k.recording_id.is_empty() || id_in(&self.recordings, &k.recording_id))
            && self.range.overlaps(k.hour.start(), k.hour.end())
            && self.shard.is_none_or(|s| s.contains(&k.conversation_id))
    }

    /// Whether an event from the listing can still match (skipped keys always pass).
    pub fn admits_event(&self, event: &ScanEvent) -> bool {
        match event {
            ScanEvent::Recording(r) | ScanEvent::Unchecked(r) => self.matches_location(r),
            ScanEvent::Skipped(_) => true,
        }
    }

    fn matches_fields(&self, m: &RecordingMetadata) -> bool {
        (self.users.is_empty() || intersects(&self.users, &m.user_ids))
            && (self.queues.is_empty() || intersects(&self.queues, &m.queue_ids))
            && (self.wrapup_codes.is_empty() || intersects(&self.wrapup_codes, &m.wrapup_codes))
            && (self.media_types.is_empty() || eq_any(&self.media_types, m.media_type.as_str()))
            && (self.directions.is_empty()
                || eq_any_opt(&self.directions, m.initial_direction.as_deref()))
            && (self.message_types.is_empty()
                || eq_any_opt(&self.message_types, m.message_type.as_deref()))
            && (self.providers.is_empty() || eq_any(&self.providers, &m.provider))
            && (self.languages.is_empty()
                || m.language_ids
                    .as_deref()
                    .is_some_and(|l| l.split(',').any(|one| eq_any(&self.languages, one.trim()))))
            && self.min_duration_ms.is_none_or(|min| m.duration_ms >= min)
            && self.max_duration_ms.is_none_or(|max| m.duration_ms <= max)
            && (self.anis.is_empty()
                || phone_any(
                    &self.anis,
                    [m.ani_normalized.as_deref(), m.ani_displayable.as_deref()],
                ))
            && (self.dnis.is_empty()
                || phone_any(
                    &self.dnis,
                    [m.dnis_normalized.as_deref(), m.dnis_displayable.as_deref()],
                ))
    }

    /// The full verdict. Time: a recording whose partition hour lies wholly in the range
    /// matches; one in an hour the range cuts through is decided by its sidecar's
    /// `conversationStartTime`.
    pub fn verdict(&self, r: &Recording) -> Verdict {
        if !self.matches_location(r) {
            return Verdict::NoMatch;
        }
        let hour_covered = self.hour_covered(r);
        if hour_covered && !self.has_field_filters() {
            return Verdict::Match;
        }
        let Some(m) = r.valid_metadata() else {
            return Verdict::Unknown;
        };
        if !hour_covered && !self.range.contains(m.conversation_start_time) {
            return Verdict::NoMatch;
        }
        if self.matches_fields(m) {
            Verdict::Match
        } else {
            Verdict::NoMatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_conversations() {
        let ids: Vec<String> = (0..3000).map(|i| format!("c0ffee{i:06}-aaaa")).collect();
        let mut counts = [0usize; 3];
        for id in &ids {
            let owners: Vec<u32> = (0..3)
                .filter(|&i| Shard::new(i, 3).unwrap().contains(id))
                .collect();
            assert_eq!(owners.len(), 1, "exactly one shard takes {id}");
            counts[owners[0] as usize] += 1;
            assert!(
                Shard::new(owners[0], 3)
                    .unwrap()
                    .contains(&id.to_uppercase())
            );
        }
        assert!(counts.iter().all(|&c| c > 900), "roughly even: {counts:?}");
        // Pinned values: the split must never change between versions.
        assert_eq!(Shard::of("abc", 1000), 74);
        assert_eq!(Shard::of("ABC", 1000), 74);
        assert_eq!(Shard::of("3f1c0a52-0001", 1000), 449);
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn recordings_files_of_one_column_or_an_athena_result() {
        let athena = b"\"recordingid\",\"queue\"\n\"R-1\",\"q\"\n\"r-2\",\"q\"\n";
        let w = Wanted::from_csv(athena).unwrap();
        assert_eq!(w.entries, ["R-1", "r-2"]);
        assert!(w.ids.contains("r-1"));
        let plain = b"# wanted\nc-9\n\no/year=2024/month=3/day=1/hour=0/conversation_id=c/r.opus\n";
        let w = Wanted::from_csv(plain).unwrap();
        assert_eq!(w.entries.len(), 2);
        assert_eq!(w.keys.len(), 1);
        let mut tracker = w.tracker();
        tracker.found(["C-9"]);
        assert_eq!(
            tracker.missing(&w),
            ["o/year=2024/month=3/day=1/hour=0/conversation_id=c/r.opus"]
        );
        assert!(
            Wanted::from_csv(b"a,b\n1,2\n")
                .unwrap_err()
                .contains("no header")
        );
        assert!(Wanted::from_csv(b"\n# nothing\n").is_err());
    }

    #[test]
    fn phone_numbers_compare_by_digits() {
        assert!(phone_matches("+1 (317) 555-0100", "tel:+13175550100"));
        assert!(phone_matches("13175550100", "tel:+13175550100"));
        assert!(
            phone_matches("3175550100", "tel:+13175550100"),
            "national form"
        );
        assert!(phone_matches("317-555-0100", "(317) 555-0100"));
        assert!(
            !phone_matches("+3175550100", "tel:+13175550100"),
            "a + query is exact"
        );
        assert!(
            !phone_matches("0100", "tel:+13175550100"),
            "too short for a suffix"
        );
        assert!(!phone_matches("+13175550101", "tel:+13175550100"));
        assert!(!phone_matches("", "tel:+13175550100"));
        assert!(phone_matches(
            "sip:Alice@example.com",
            "sip:alice@example.com"
        ));
        assert!(!phone_matches("5550100123", "sip:5550100123@example.com"));
    }
}
