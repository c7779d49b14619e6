//! Time-range pruning: the smallest set of prefixes to list for a `--from/--to` query.
//!
//! The planner never guesses how partitions are spelled (`month=3` or `month=03`). It
//! lists with the `/` delimiter level by level — roots and organizations, then `year=`,
//! `month=`, `day=`, `hour=` — keeps only the partitions whose time span meets the range,
//! and stops descending as soon as a partition lies wholly inside the range. A two-hour
//! query on a year of data therefore costs a handful of list calls per level, O(hours in
//! range) in all, never O(objects).

use std::fmt;

use chrono::{DateTime, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use thiserror::Error;

use crate::layout::{CONVERSATION_PREFIX, Partition};
use crate::source::{ListRequest, ObjectSource, ObjectSummary, SourceError, list_all};

/// How many unknown folder levels below the base prefix are searched for organizations
/// (an organization at the bucket root is one level; `exports/genesys/{org}` is three).
pub const MAX_ROOT_DEPTH: u8 = 3;

/// How many list calls the planner keeps in flight.
const LIST_CONCURRENCY: usize = 8;

/// A half-open UTC interval `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive end.
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// Whether the range has no bounds at all.
    pub fn is_unbounded(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// Whether `t` is in the range.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }

    /// Whether `[start, end)` meets the range.
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| end > f) && self.to.is_none_or(|e| start < e)
    }

    /// Whether `[start, end)` lies wholly inside the range.
    pub fn covers(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| start >= f) && self.to.is_none_or(|e| end <= e)
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |t: Option<DateTime<Utc>>| {
            t.map_or("…".to_owned(), |t| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
        };
        write!(f, "[{}, {})", show(self.from), show(self.to))
    }
}

/// Which end of a range a user-written time is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `--from`: the instant itself, or the start of the day/month named.
    Start,
    /// `--to`: exclusive for an instant; a day or month named is included whole.
    End,
}

/// A `--from`/`--to` value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "cannot read {value:?} as a time: use an RFC 3339 instant (2024-03-07T09:00:00Z), a UTC date-time (2024-03-07T09:00), a date (2024-03-07) or a month (2024-03)"
)]
pub struct TimeBoundError {
    /// The value given.
    pub value: String,
}

/// Reads a `--from`/`--to` value. Times without an offset are UTC. A bare date or month
/// given as the [`Bound::End`] includes that whole day or month, so
/// `--from 2024-03-01 --to 2024-03-31` means all of March.
///
/// ```
/// use gcrec_fetch::prune::{parse_time_bound, Bound};
///
/// let end = parse_time_bound("2024-03-31", Bound::End).unwrap();
/// assert_eq!(end.to_rfc3339(), "2024-04-01T00:00:00+00:00");
/// let start = parse_time_bound("2024-03", Bound::Start).unwrap();
/// assert_eq!(start.to_rfc3339(), "2024-03-01T00:00:00+00:00");
/// ```
pub fn parse_time_bound(value: &str, bound: Bound) -> Result<DateTime<Utc>, TimeBoundError> {
    let err = || TimeBoundError {
        value: value.to_owned(),
    };
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    // `Z` means UTC, which is what a time without an offset is taken as anyway.
    let naive = v.strip_suffix(['Z', 'z']).unwrap_or(v);
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
            return Ok(t.and_utc());
        }
    }
    let midnight = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return match bound {
            Bound::Start => Ok(midnight(d)),
            Bound::End => d.succ_opt().map(midnight).ok_or_else(err),
        };
    }
    if let Ok(d) = NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d") {
        return match bound {
            Bound::Start => Ok(midnight(d)),
            Bound::End => d
                .checked_add_months(Months::new(1))
                .map(midnight)
                .ok_or_else(err),
        };
    }
    Err(err())
}

/// Where a prefix sits in the layout, as far as its segments tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// Above the partitions: a root folder or an organization. `depth` counts the
    /// unknown levels below the base.
    Unknown {
        depth: u8,
    },
    Year(i32),
    Month(i32, u32),
    Day(i32, u32, u32),
    Hour(i32, u32, u32, u32),
    /// At or inside a conversation folder (from a base prefix).
    Conversation,
}

impl Node {
    /// The next node down for a child segment, if the segment is the next partition.
    fn child(self, segment: &str) -> Option<Node> {
        let value = |p: Partition| p.value(segment);
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        match self {
            Node::Unknown { .. } => value(Partition::Year).map(|y| Node::Year(y as i32)),
            Node::Year(y) => value(Partition::Month)
                .filter(|m| (1..=12).contains(m))
                .map(|m| Node::Month(y, m)),
            Node::Month(y, m) => value(Partition::Day)
                .filter(|d| date(y, m, *d).is_some())
                .map(|d| Node::Day(y, m, d)),
            Node::Day(y, m, d) => value(Partition::Hour)
                .filter(|h| *h < 24)
                .map(|h| Node::Hour(y, m, d, h)),
            Node::Hour(..) => segment
                .starts_with(CONVERSATION_PREFIX)
                .then_some(Node::Conversation),
            Node::Conversation => Some(Node::Conversation),
        }
    }

    /// The time span of conversations that can be under this node.
    fn span(self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let at = |y, m, d, h| {
            NaiveDate::from_ymd_opt(y, m, d)
                .and_then(|d| d.and_hms_opt(h, 0, 0))
                .map(|t| t.and_utc())
        };
        let (start, end) = match self {
            Node::Unknown { .. } | Node::Conversation => return None,
            Node::Year(y) => (at(y, 1, 1, 0)?, at(y + 1, 1, 1, 0)?),
            Node::Month(y, m) => {
                let s = at(y, m, 1, 0)?;
                (s, s.checked_add_months(Months::new(1))?)
            }
            Node::Day(y, m, d) => {
                let s = at(y, m, d, 0)?;
                (s, s + Duration::days(1))
            }
            Node::Hour(y, m, d, h) => {
                let s = at(y, m, d, h)?;
                (s, s + Duration::hours(1))
            }
        };
        Some((start, end))
    }
}

/// The node a base prefix (e.g. `org/year=2024/`) stands for.
fn node_of_base(base: &str) -> Node {
    base.split('/')
        .filter(|s| !s.is_empty())
        .fold(Node::Unknown { depth: 0 }, |node, segment| {
            node.child(segment).unwrap_or(match node {
                // A folder above the partitions: a root prefix or the organization.
                Node::Unknown { .. } => Node::Unknown { depth: 0 },
                _ => Node::Conversation,
            })
        })
}

/// What to list for a query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrunePlan {
    /// Prefixes to list recursively, in ascending order, none a prefix of another.
    pub prefixes: Vec<String>,
    /// Objects met while discovering partitions: keys sitting beside the partition
    /// folders, which are outside the layout. Report them as skipped.
    pub strays: Vec<ObjectSummary>,
}

/// Plans the prefixes to list under `base` for conversations that began in `range`,
/// restricted to the organizations in `orgs` when it is not empty.
pub async fn plan<S: ObjectSource + ?Sized>(
    source: &S,
    base: &str,
    range: &TimeRange,
    orgs: &[String],
) -> Result<PrunePlan, SourceError> {
    let mut plan = PrunePlan::default();
    let start = node_of_base(base);
    let org_filtered = |prefix: &str| {
        let org = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        !orgs.is_empty() && !orgs.iter().any(|o| o.eq_ignore_ascii_case(org))
    };
    let mut level: Vec<(String, Node)> = vec![(base.to_owned(), start)];
    while !level.is_empty() {
        let mut to_list = Vec::new();
        for (prefix, node) in level.drain(..) {
            let whole = match node.span() {
                // Above the partitions, only an unfiltered query can take everything.
                None => range.is_unbounded() && orgs.is_empty(),
                Some((s, e)) if !range.overlaps(s, e) => continue,
                Some((s, e)) => range.covers(s, e),
            };
            if whole || matches!(node, Node::Hour(..) | Node::Conversation) {
                plan.prefixes.push(prefix);
            } else {
                to_list.push((prefix, node));
            }
        }
        let listed: Vec<_> = futures::stream::iter(to_list)
            .map(|(prefix, node)| async move {
                let page = list_all(source, ListRequest::children(prefix.clone())).await?;
                Ok::<_, SourceError>((prefix, node, page))
            })
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        for (prefix, node, page) in listed {
            plan.strays.extend(page.objects);
            let children: Vec<(String, Node)> = page
                .common_prefixes
                .into_iter()
                .filter_map(|child| {
                    let segment = child[prefix.len()..].trim_end_matches('/');
                    match (node, node.child(segment)) {
                        (_, Some(next)) => Some((child, next)),
                        (Node::Unknown { depth }, None) if depth < MAX_ROOT_DEPTH => {
                            Some((child, Node::Unknown { depth: depth + 1 }))
                        }
                        _ => None,
                    }
                })
                .collect();
            let is_org = matches!(node, Node::Unknown { .. })
                && children.iter().any(|(_, n)| matches!(n, Node::Year(_)));
            if is_org && org_filtered(&prefix) {
                continue;
            }
            if is_org && range.is_unbounded() {
                // An organization wanted whole: list it in one go.
                plan.prefixes.push(prefix);
                continue;
            }
            level.extend(
                children
                    .into_iter()
                    .filter(|(_, n)| !is_org || matches!(n, Node::Year(_))),
            );
        }
    }
    plan.prefixes.sort();
    plan.strays.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(plan)
}
