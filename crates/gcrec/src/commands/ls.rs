//! `gcrec ls`: list recordings with their metadata.

use std::sync::Arc;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use gcrec_fetch::recording::ScanEvent;
use gcrec_fetch::scan::{ScanOptions, ScanSummary, scan};
use gcrec_fetch::source::{CountingSource, ObjectSource};

use crate::cli::{GlobalArgs, LsArgs};
use crate::exit::Outcome;
use crate::filters;
use crate::output::{Out, diagnostic, json, summary, table};

/// Invalid sidecars described one by one on stderr before "and N more".
const DETAIL_LIMIT: usize = 20;

pub async fn run(global: &GlobalArgs, args: LsArgs) -> Result<Outcome> {
    let filter = filters::build(&args.filter)?;
    let mut tracker = filter.wanted.as_ref().map(|w| w.tracker());
    let asked = filter.clone();
    let opened = crate::aws::open_source(&args.source, &args.aws).await?;
    let counting = Arc::new(CountingSource::new(opened.source));
    let options = ScanOptions {
        base_prefix: opened.base_prefix,
        filter,
        read_all_metadata: true,
        sidecar_cap: args.max_sidecar_bytes,
        concurrency: usize::from(args.jobs),
    };
    let source: Arc<dyn ObjectSource> = counting.clone();
    let mut events = std::pin::pin!(scan(source, options));
    let mut out = Out::stdout();
    let mut table = table::Table::new();
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
        .with_context(|| format!("listing {}", args.source))?
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
        if !show {
            continue;
        }
        if args.json {
            out.line(&json::event(&event).to_string())?;
        } else if let ScanEvent::Recording(r) | ScanEvent::Unchecked(r) = &event {
            let unchecked = matches!(event, ScanEvent::Unchecked(_));
            table.push(&mut out, table::row(r, unchecked))?;
        }
        if out.is_closed() {
            return Ok(Outcome::Success);
        }
    }
    let missing = filters::report_missing(&asked, tracker.as_ref(), global.quiet);
    if args.json {
        let mut s = summary::json(&totals, counting.counts());
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
            let c = counting.counts();
            diagnostic(
                "requests",
                &format!("requests: {} list, {} head, {} get", c.list, c.head, c.get),
            );
        }
    }
    Ok(Outcome::Success)
}
