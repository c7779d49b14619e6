//! ListObjectsV2 paging over a sorted walk, shared by the local and in-memory sources.
//!
//! Continuation tokens are opaque to callers: `k:{key}` resumes after a key, `p:{prefix}`
//! resumes after a common prefix and everything under it.

use super::{ListPage, ListRequest, ObjectSummary, SourceError};

/// One item of a sorted walk.
pub(crate) enum WalkItem {
    /// An object.
    Object(ObjectSummary),
    /// A whole subtree the walk already knows collapses into this common prefix.
    Prefix(String),
}

/// Where a listing resumes, decoded from a continuation token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resume {
    /// From the start.
    Start,
    /// After this key.
    AfterKey(String),
    /// After this common prefix and every key under it.
    AfterPrefix(String),
}

impl Resume {
    pub(crate) fn decode(token: Option<&str>) -> Result<Self, SourceError> {
        match token {
            None => Ok(Resume::Start),
            Some(t) => match t.split_at_checked(2) {
                Some(("k:", key)) => Ok(Resume::AfterKey(key.to_owned())),
                Some(("p:", prefix)) => Ok(Resume::AfterPrefix(prefix.to_owned())),
                _ => Err(SourceError::Open {
                    location: "listing".into(),
                    reason: format!("invalid continuation token {t:?}"),
                }),
            },
        }
    }

    /// Whether `key` comes after the resume point.
    pub(crate) fn admits_key(&self, key: &str) -> bool {
        match self {
            Resume::Start => true,
            Resume::AfterKey(k) => key > k.as_str(),
            Resume::AfterPrefix(p) => key > p.as_str() && !key.starts_with(p.as_str()),
        }
    }

    /// Whether any key under `dir` (a prefix ending in `/`) can come after the resume point.
    pub(crate) fn admits_subtree(&self, dir: &str) -> bool {
        let mark = match self {
            Resume::Start => return true,
            Resume::AfterKey(k) => k,
            Resume::AfterPrefix(p) => {
                if dir.starts_with(p.as_str()) {
                    return false;
                }
                p
            }
        };
        // Every key under `dir` starts with `dir`; if the mark is past `dir` without
        // starting with it, it is past all of them.
        mark.starts_with(dir) || mark.as_str() <= dir
    }
}

/// Builds one page from a walk that yields items in ascending order, already filtered
/// by prefix and resume point.
pub(crate) fn page_from_walk(
    request: &ListRequest,
    walk: impl Iterator<Item = Result<WalkItem, SourceError>>,
) -> Result<ListPage, SourceError> {
    enum Entry {
        Object(ObjectSummary),
        Prefix(String),
    }
    let max = request.page_size();
    let mut page = ListPage::default();
    let mut count = 0usize;
    let mut last: Option<String> = None;
    for item in walk {
        let entry = match item? {
            WalkItem::Prefix(p) => Entry::Prefix(p),
            WalkItem::Object(o) => {
                let rest = &o.key[request.prefix.len()..];
                match request
                    .delimiter()
                    .and_then(|d| rest.find(d).map(|i| i + d.len()))
                {
                    Some(end) => Entry::Prefix(o.key[..request.prefix.len() + end].to_owned()),
                    None => Entry::Object(o),
                }
            }
        };
        if let Entry::Prefix(p) = &entry
            && page.common_prefixes.last() == Some(p)
        {
            continue;
        }
        if count == max {
            page.next = last;
            return Ok(page);
        }
        match entry {
            Entry::Object(o) => {
                last = Some(format!("k:{}", o.key));
                page.objects.push(o);
            }
            Entry::Prefix(p) => {
                last = Some(format!("p:{p}"));
                page.common_prefixes.push(p);
            }
        }
        count += 1;
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_rules() {
        let after_prefix = Resume::AfterPrefix("a/b/".into());
        assert!(!after_prefix.admits_key("a/b/c"));
        assert!(!after_prefix.admits_key("a/a"));
        assert!(after_prefix.admits_key("a/c"));
        assert!(!after_prefix.admits_subtree("a/b/x/"));
        assert!(after_prefix.admits_subtree("a/c/"));
        assert!(!after_prefix.admits_subtree("a/a/"));
        let after_key = Resume::AfterKey("a/b/c".into());
        assert!(after_key.admits_subtree("a/b/"));
        assert!(after_key.admits_subtree("a/"));
        assert!(!after_key.admits_subtree("a/a/"));
        assert!(after_key.admits_subtree("b/"));
        assert!(Resume::decode(Some("x")).is_err());
    }
}
