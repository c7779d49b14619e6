//! `gcrec index` and `gcrec catalog`: build a catalog, and read its figures or export it.

use std::sync::Arc;

use anyhow::Result;
use gcrec_catalog::export::Format;
use gcrec_catalog::index::{IndexEvent, IndexOptions, index};
use gcrec_fetch::filter::RecordingFilter;
use gcrec_fetch::source::{CountingSource, ObjectSource};
use serde_json::json;

use crate::cli::{CatalogCommand, ExportFormat, GlobalArgs, IndexArgs};
use crate::exit::Outcome;
use crate::filters;
use crate::output::{Out, diagnostic};

pub async fn run(global: &GlobalArgs, args: IndexArgs) -> Result<Outcome> {
    let filter = filters::build(&crate::cli::FilterArgs {
        place: args.place.clone(),
        ..Default::default()
    })?;
    let inventory =
        crate::inventory::open(&args.inventory, &args.aws, &args.source, global.quiet).await?;
    let opened = crate::aws::open_source(&args.source, &args.aws).await?;
    let counting = Arc::new(CountingSource::new(opened.source));
    let source: Arc<dyn ObjectSource> = counting.clone();
    let options = IndexOptions {
        uri: crate::catalog::source_name(&args.source),
        base_prefix: opened.base_prefix,
        full: args.full,
        filter: RecordingFilter {
            range: filter.range,
            orgs: filter.orgs,
            ..RecordingFilter::default()
        },
        sidecar_cap: args.max_sidecar_bytes,
        concurrency: usize::from(args.jobs),
        inventory,
    };
    let progress = global.progress("recordings");
    let mut out = Out::stdout();
    let mut write_error = None;
    let json = args.json;
    let mut on_event = |event: IndexEvent| match event {
        IndexEvent::Planned { from } => {
            let what = match from {
                Some(h) => format!(
                    "gcrec: listing from {} on (the newest hour indexed; --full re-checks every hour)",
                    h.start().format("%Y-%m-%dT%H:00Z")
                ),
                None => "gcrec: listing every hour".to_owned(),
            };
            progress.note("planned", &what);
        }
        IndexEvent::Recording { .. } => {
            progress.add_total(1, 0);
            progress.finished(false);
        }
        IndexEvent::Skipped => {}
        IndexEvent::Committed {
            organization_id,
            hour,
            recordings,
        } => {
            if json {
                let line = json!({
                    "type": "partition",
                    "organization_id": organization_id,
                    "hour": hour,
                    "recordings": recordings,
                });
                if let Err(e) = out.line(&line.to_string()) {
                    write_error.get_or_insert(e);
                }
            }
        }
    };
    let report = index(&args.catalog, source, options, &mut on_event).await;
    progress.finish();
    let report = report?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let requests = counting.counts();
    if json {
        let mut summary = serde_json::to_value(&report)?;
        summary["type"] = json!("summary");
        summary["requests"] = serde_json::to_value(requests)?;
        out.line(&summary.to_string())?;
    }
    out.flush()?;
    if !global.quiet {
        diagnostic(
            "summary",
            &format!(
                "{} recordings indexed ({} sidecars read, {} kept as indexed or without sidecar), {} removed, {} keys skipped, {} partitions; {} list and {} get requests",
                report.recordings,
                report.sidecars_read,
                report.sidecars_kept,
                report.removed,
                report.skipped_keys,
                report.partitions,
                requests.list,
                requests.get,
            ),
        );
    }
    Ok(Outcome::Success)
}

pub fn catalog(global: &GlobalArgs, command: CatalogCommand) -> Result<Outcome> {
    match command {
        CatalogCommand::Stats { catalog, json } => {
            let stats = gcrec_catalog::stats::stats(&catalog)?;
            let mut out = Out::stdout();
            if json {
                out.line(&serde_json::to_string(&stats)?)?;
            } else {
                out.line(&format!(
                    "{} recordings ({} without sidecar, {} without media, {} invalid sidecars), {} keys skipped; {} bytes",
                    stats.recordings,
                    stats.orphans_no_sidecar,
                    stats.orphans_no_media,
                    stats.invalid_sidecars.values().sum::<u64>(),
                    stats.skipped_keys.values().sum::<u64>(),
                    stats.file_bytes,
                ))?;
                for s in &stats.sources {
                    out.line(&format!(
                        "source {}: {} recordings, newest hour indexed {}, last complete run {}",
                        s.uri,
                        s.recordings,
                        s.last_indexed_hour.as_deref().unwrap_or("-"),
                        s.indexed_at.as_deref().unwrap_or("-"),
                    ))?;
                }
                for (title, map) in [
                    ("organization", &stats.by_organization),
                    ("month", &stats.by_month),
                    ("media type", &stats.by_media_type),
                    ("invalid sidecar", &stats.invalid_sidecars),
                    ("skipped key", &stats.skipped_keys),
                ] {
                    for (k, v) in map {
                        out.line(&format!("{title:<16} {k:<40} {v:>10}"))?;
                    }
                }
            }
            out.flush()?;
        }
        CatalogCommand::Export {
            catalog,
            format,
            out,
        } => {
            let format = match format {
                ExportFormat::Ndjson => Format::Ndjson,
                ExportFormat::Csv => Format::Csv,
                ExportFormat::Parquet => Format::Parquet,
            };
            let n = gcrec_catalog::export::export(&catalog, format, &out)?;
            if !global.quiet {
                diagnostic(
                    "summary",
                    &format!("{n} recordings written to {}", out.display()),
                );
            }
        }
    }
    Ok(Outcome::Success)
}
