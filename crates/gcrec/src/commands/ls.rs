//! `gcrec ls`: list recordings with their metadata.

use std::sync::Arc;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use gcrec_catalog::query::Sort;
use gcrec_fetch::recording::ScanEvent;
use gcrec_fetch::scan::{ScanOptions, ScanSummary, scan_recordings};
use gcrec_fetch::source::CountingSource;

use crate::cli::{GlobalArgs, LsArgs, SortOrder};
use crate::exit::Outcome;
use crate::filters;
use crate::output::{Out, csv_rows, diagnostic, json, summary, table};

/// Invalid sidecars described one by one on stderr before "and N more".
const DETAIL_LIMIT: usize = 20;

pub async fn run(global: &GlobalArgs, args: LsArgs) -> Result<Outcome> {
    let filter = filters::build(&args.filter)?;
    let mut tracker = filter.wanted.as_ref().map(|w| w.tracker());
    let asked = filter.clone();
    let resolved = crate::catalog::resolve(args.source.as_deref(), args.catalog.as_deref(), false)?;
    let sort = match args.sort {
        Some(SortOrder::Duration) => Sort::Duration,
        Some(SortOrder::Time) | None => Sort::Time,
    };
    let where_from = args
        .catalog
        .as_ref()
        .map(|c| format!("the catalog {}", c.display()))
        .or_else(|| args.source.clone())
        .unwrap_or_default();
    // A count the catalog can make in SQL alone needs no pass over the answers.
    if args.count
        && let Some((matches, unchecked)) = resolved.count(&filter)?
    {
        let mut out = Out::stdout();
        out.line(&matches.to_string())?;
        out.flush()?;
        if !global.quiet {
            diagnostic(
                "summary",
                &format!("{matches} recordings (counted in the catalog)"),
            );
            if unchecked > 0 && !args.include_unchecked {
                diagnostic(
                    "summary",
                    &format!(
                        "warning: {unchecked} recordings could not be checked against the field filters (missing or invalid sidecar) and are not counted; --include-unchecked lists them"
                    ),
                );
            }
        }
        return Ok(Outcome::Success);
    }
    let mut counting = None;
    let mut events = match resolved.recordings(&filter, sort)? {
        Some(answer) => answer,
        None => {
            let source = resolved.source()?;
            let inventory =
                crate::inventory::open(&args.inventory, &args.aws, source, global.quiet).await?;
            let opened = crate::aws::open_source(source, &args.aws).await?;
            let counted = Arc::new(CountingSource::new(opened.source));
            counting = Some(counted.clone());
            let options = ScanOptions {
                base_prefix: opened.base_prefix,
                filter,
                read_all_metadata: true,
                sidecar_cap: args.max_sidecar_bytes,
                concurrency: usize::from(args.jobs),
                inventory,
            };
            scan_recordings(counted, options)
        }
    };
    let counts = || counting.as_ref().map(|c| c.counts()).unwrap_or_default();
    let mut out = Out::stdout();
    let mut table = table::Table::new();
    let mut csv_header_written = false;
    let mut totals = ScanSummary::default();
    let detail_limit = if global.verbose > 0 {
        usize::MAX
    } else {
        DETAIL_LIMIT
    };
    let mut details = Vec::new();
    let mut details_dropped = 0usize;
    let mut note = |line: String| {
        if details.len() < detail_limit {
            details.push(line);
        } else {
            details_dropped += 1;
        }
    };
    while let Some(event) = events
        .try_next()
        .await
        .with_context(|| format!("listing {where_from}"))?
    {
        totals.record(&event);
        if let (Some(t), ScanEvent::Recording(r) | ScanEvent::Unchecked(r)) =
            (tracker.as_mut(), &event)
        {
            t.found(
                [r.recording_id.as_str(), r.conversation_id.as_str()]
                    .into_iter()
                    .chain(r.keys()),
            );
        }
        if let ScanEvent::Recording(r) | ScanEvent::Unchecked(r) = &event
            && let Some(e) = r.metadata_error()
        {
            note(format!("invalid sidecar: {e}"));
        }
        if let ScanEvent::Skipped(s) = &event
            && global.verbose > 0
        {
            note(format!(
                "skipped {} ({})",
                s.key,
                s.reason.as_str().replace('_', " ")
            ));
        }
        let show = match &event {
            ScanEvent::Recording(_) => true,
            ScanEvent::Unchecked(_) => args.include_unchecked,
            ScanEvent::Skipped(_) => args.json,
        };
        if !show || args.count {
            continue;
        }
        if args.json {
            out.line(&json::event(&event).to_string())?;
        } else if args.csv {
            if let ScanEvent::Recording(r) | ScanEvent::Unchecked(r) = &event {
                if !csv_header_written {
                    out.line(&csv_rows::line(csv_rows::HEADER)?)?;
                    csv_header_written = true;
                }
                let unchecked = matches!(event, ScanEvent::Unchecked(_));
                out.line(&csv_rows::line(csv_rows::row(r, unchecked))?)?;
            }
        } else if let ScanEvent::Recording(r) | ScanEvent::Unchecked(r) = &event {
            let unchecked = matches!(event, ScanEvent::Unchecked(_));
            table.push(&mut out, table::row(r, unchecked))?;
        }
        if out.is_closed() {
            return Ok(Outcome::Success);
        }
    }
    let missing = filters::report_missing(&asked, tracker.as_ref(), global.quiet);
    if args.count {
        out.line(&totals.recordings.to_string())?;
    } else if args.csv {
        if !csv_header_written {
            out.line(&csv_rows::line(csv_rows::HEADER)?)?;
        }
    } else if args.json {
        let mut s = summary::json(&totals, counts());
        if asked.wanted.is_some() {
            s["not_found"] = serde_json::json!(missing);
        }
        out.line(&s.to_string())?;
    } else {
        table.finish(&mut out)?;
    }
    out.flush()?;
    if !global.quiet {
        for line in &details {
            diagnostic("note", line);
        }
        if details_dropped > 0 {
            diagnostic(
                "note",
                &format!("… and {details_dropped} more (-v lists all, --json reports each)"),
            );
        }
        for line in summary::human(&totals) {
            diagnostic("summary", &line);
        }
        if global.verbose > 0 {
            let c = counts();
            diagnostic(
                "requests",
                &format!("requests: {} list, {} head, {} get", c.list, c.head, c.get),
            );
        }
    }
    Ok(Outcome::Success)
}
