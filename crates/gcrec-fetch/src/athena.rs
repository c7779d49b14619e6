//! Athena over the export: a `CREATE EXTERNAL TABLE` on the metadata sidecars, with
//! partition projection spelled the way this export spells its partitions (`month=3` or
//! `month=03`), so queries prune by organization and time without a crawler.

use std::collections::BTreeSet;

use crate::layout::{Padding, PaddingSeen, ParsedKey, parse_key};
use crate::source::{ListRequest, ObjectSource, SourceError, list_pages};
use futures::TryStreamExt;

/// The documented sidecar fields and their Athena types, in the documented order.
pub const COLUMNS: [(&str, &str); 23] = [
    ("mediaType", "string"),
    ("provider", "string"),
    ("userIds", "array<string>"),
    ("startTime", "string"),
    ("endTime", "string"),
    ("durationMs", "bigint"),
    ("initialDirection", "string"),
    ("aniNormalized", "string"),
    ("aniDisplayable", "string"),
    ("dnisNormalized", "string"),
    ("dnisDisplayable", "string"),
    ("queueIds", "array<string>"),
    ("wrapupCodes", "array<string>"),
    ("organizationId", "string"),
    ("conversationId", "string"),
    ("conversationStartTime", "string"),
    ("conversationEndTime", "string"),
    ("recordingId", "string"),
    ("filePath", "string"),
    ("fileSize", "bigint"),
    ("messageType", "string"),
    ("languageIds", "string"),
    ("screenInformation", "map<string,string>"),
];

/// What the table needs to know about an export, found by listing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Everything before the organization folder (`""`, `exports/genesys/`).
    pub root: String,
    /// Organization IDs found.
    pub organizations: BTreeSet<String>,
    /// The partition spelling.
    pub padding: Padding,
    /// The first year seen.
    pub first_year: i32,
}

/// Lists the first keys of the export (a page or two) to discover its root, organizations
/// and partition spelling.
pub async fn discover(
    source: &dyn ObjectSource,
    base_prefix: &str,
) -> Result<Discovered, SourceError> {
    let mut pages = std::pin::pin!(list_pages(source, ListRequest::recursive(base_prefix)));
    let mut spelling = PaddingSeen::default();
    let mut root = None;
    let mut organizations = BTreeSet::new();
    let mut first_year = i32::MAX;
    let mut seen = 0;
    while let Some(page) = pages.try_next().await? {
        for object in page.objects {
            let ParsedKey::Export(k) = parse_key(&object.key) else {
                continue;
            };
            root.get_or_insert_with(|| k.root.clone());
            organizations.insert(k.organization_id.clone());
            first_year = first_year.min(chrono::Datelike::year(&k.hour.start()));
            spelling.see(&k.key);
            seen += 1;
        }
        if seen >= 2000 {
            break;
        }
    }
    let Some(root) = root else {
        return Err(SourceError::Open {
            location: source.uri(base_prefix),
            reason: "no key here follows the export layout".into(),
        });
    };
    Ok(Discovered {
        root,
        organizations,
        padding: spelling.padding(),
        first_year: if first_year == i32::MAX {
            2020
        } else {
            first_year
        },
    })
}

/// The table's location template: `s3://BUCKET/ROOT${organization_id}/year=${year}/…`.
pub fn location_template(bucket: &str, root: &str) -> String {
    format!(
        "s3://{bucket}/{root}${{organization_id}}/year=${{year}}/month=${{month}}/day=${{day}}/hour=${{hour}}/"
    )
}

/// The `CREATE EXTERNAL TABLE` statement for the sidecars of an export in `bucket`.
/// `last_year` bounds the year projection (widen it when the export grows).
pub fn create_table(table: &str, bucket: &str, found: &Discovered, last_year: i32) -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty)| format!("  `{name}` {ty}"))
        .collect();
    let digits = |p: &str| match found.padding {
        Padding::Padded => format!(",\n  'projection.{p}.digits' = '2'"),
        _ => String::new(),
    };
    let projection = if found.padding == Padding::Mixed {
        "  -- The export spells partitions both padded (month=03) and unpadded (month=3):\n  \
         -- one projection cannot describe both, so partitions are not projected here; load\n  \
         -- them with ALTER TABLE ADD PARTITION (or a Glue crawler).\n  'projection.enabled' = 'false'"
            .to_owned()
    } else {
        format!(
            "  'projection.enabled' = 'true',\n  \
             'projection.organization_id.type' = 'enum',\n  \
             'projection.organization_id.values' = '{orgs}',\n  \
             'projection.year.type' = 'integer',\n  \
             'projection.year.range' = '{first},{last}',\n  \
             'projection.month.type' = 'integer',\n  \
             'projection.month.range' = '1,12'{month},\n  \
             'projection.day.type' = 'integer',\n  \
             'projection.day.range' = '1,31'{day},\n  \
             'projection.hour.type' = 'integer',\n  \
             'projection.hour.range' = '0,23'{hour},\n  \
             'storage.location.template' = '{template}'",
            orgs = found
                .organizations
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
            first = found.first_year,
            last = last_year.max(found.first_year),
            month = digits("month"),
            day = digits("day"),
            hour = digits("hour"),
            template = location_template(bucket, &found.root),
        )
    };
    format!(
        "-- Genesys Cloud recording metadata sidecars, by gcrec {version}.\n\
         -- Each conversation folder also holds the media: query sidecars only, e.g.\n\
         --   SELECT recordingid FROM {table} WHERE \"$path\" LIKE '%\\_metadata.json' ESCAPE '\\\\' AND ...\n\
         CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (\n{columns}\n)\n\
         PARTITIONED BY (\n  `organization_id` string,\n  `year` int,\n  `month` int,\n  `day` int,\n  `hour` int\n)\n\
         ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n\
         WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')\n\
         LOCATION 's3://{bucket}/{root}'\n\
         TBLPROPERTIES (\n{projection}\n);\n",
        version = env!("CARGO_PKG_VERSION"),
        columns = columns.join(",\n"),
        root = found.root,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::KNOWN_FIELDS;

    fn found(padding: Padding) -> Discovered {
        Discovered {
            root: "exports/".into(),
            organizations: ["o1".to_owned(), "o2".to_owned()].into_iter().collect(),
            padding,
            first_year: 2024,
        }
    }

    /// The template filled in as Athena would, for a key's partitions.
    fn fill(template: &str, padding: Padding, key: &crate::layout::ExportKey) -> String {
        use chrono::{Datelike, Timelike};
        let t = key.hour.start();
        let two = |n: u32| match padding {
            Padding::Padded => format!("{n:02}"),
            _ => n.to_string(),
        };
        template
            .replace("${organization_id}", &key.organization_id)
            .replace("${year}", &t.year().to_string())
            .replace("${month}", &two(t.month()))
            .replace("${day}", &two(t.day()))
            .replace("${hour}", &two(t.hour()))
    }

    #[test]
    fn the_projection_template_names_the_real_folders_padded_or_not() {
        for (padding, key) in [
            (
                Padding::Padded,
                "exports/o1/year=2024/month=03/day=07/hour=09/conversation_id=c/r.opus",
            ),
            (
                Padding::Unpadded,
                "exports/o2/year=2024/month=3/day=7/hour=9/conversation_id=c/r.opus",
            ),
            (
                Padding::Padded,
                "exports/o1/year=2024/month=12/day=31/hour=23/conversation_id=c/r_metadata.json",
            ),
        ] {
            let ParsedKey::Export(k) = parse_key(key) else {
                panic!("{key}")
            };
            let ddl = create_table("t", "bucket", &found(padding), 2026);
            let template = location_template("bucket", "exports/");
            assert!(ddl.contains(&template));
            assert_eq!(
                ddl.contains("'projection.month.digits' = '2'"),
                padding == Padding::Padded
            );
            let filled = fill(&template, padding, &k);
            assert_eq!(
                filled,
                format!(
                    "s3://bucket/{}",
                    &key[..key.find("conversation_id").unwrap()]
                )
            );
        }
        let mixed = create_table("t", "bucket", &found(Padding::Mixed), 2026);
        assert!(mixed.contains("'projection.enabled' = 'false'"));
    }

    #[test]
    fn every_documented_field_is_a_column() {
        let ddl = create_table("t", "b", &found(Padding::Padded), 2026);
        for field in KNOWN_FIELDS {
            assert!(COLUMNS.iter().any(|(c, _)| *c == field), "{field}");
            assert!(ddl.contains(&format!("`{field}`")), "{field}");
        }
        assert_eq!(
            ddl.matches('(').count(),
            ddl.matches(')').count(),
            "balanced"
        );
    }
}
