//! `gcrec pull`: translate the arguments into a [`PullPlan`], run it, render its events
//! (progress bars, JSON Lines, human lines) and pick the exit code. The work itself is
//! `gcrec_pull::pull`.

use std::sync::Arc;

use anyhow::Result;
use gcrec_decrypt::keys::Keyring;
use gcrec_fetch::filter::Shard;
use gcrec_fetch::scan::ScanOptions;
use gcrec_fetch::transfer::{ByteBudget, TransferOptions};
use gcrec_pull::error::WorkList;
use gcrec_pull::manifest::Status;
use gcrec_pull::object::DecryptContext;
use gcrec_pull::production::{ProductionOptions, Render, Users};
use gcrec_pull::pull::{
    BagOptions, PullEvent, PullOptions, PullPlan, RecordingOutcome, Target, redact_command_line,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::aws::LazyKms;
use crate::cli::{GlobalArgs, PullArgs};
use crate::exit::{Outcome, UsageError, with_hint};
use crate::filters;
use crate::keyring::load_keyring;
use crate::output::{Out, human_bytes};

/// The shard from `--shard`, or from the environment of an indexed batch job.
fn shard(args: &PullArgs) -> Result<Option<Shard>> {
    if let Some(s) = args.shard {
        return Ok(Some(s));
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let parse = |name: &str, v: String| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| UsageError(format!("{name}={v:?} is not a number")))
    };
    if let Some(index) = env("JOB_COMPLETION_INDEX") {
        let index = parse("JOB_COMPLETION_INDEX", index)?;
        let count = args.shard_count.ok_or_else(|| {
            UsageError(
                "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): give the number of \
                 workers with --shard-count (or GCREC_SHARD_COUNT), or --shard I/N"
                    .into(),
            )
        })?;
        return Ok(Some(Shard::new(index, count).map_err(UsageError)?));
    }
    if let (Some(index), Some(size)) = (
        env("AWS_BATCH_JOB_ARRAY_INDEX"),
        env("AWS_BATCH_JOB_ARRAY_SIZE"),
    ) {
        let index = parse("AWS_BATCH_JOB_ARRAY_INDEX", index)?;
        let size = parse("AWS_BATCH_JOB_ARRAY_SIZE", size)?;
        return Ok(Some(Shard::new(index, size).map_err(UsageError)?));
    }
    if args.shard_count.is_some() {
        return Err(UsageError(
            "--shard-count needs JOB_COMPLETION_INDEX (or use --shard I/N)".into(),
        )
        .into());
    }
    Ok(None)
}

/// The production asked for by `--production` and its companions.
fn production_options(args: &PullArgs) -> Result<ProductionOptions> {
    let users = match &args.users {
        Some(path) => Some(Arc::new(Users::load(path)?)),
        None => None,
    };
    let options = ProductionOptions {
        dir: args.production.clone().unwrap_or_default(),
        matter: args.matter.clone().unwrap_or_default(),
        prefix: args.prefix.clone().unwrap_or_default(),
        start: args.start,
        volume: args.volume.clone(),
        render: args.render.map(|r| match r {
            crate::cli::RenderFormat::Wav => Render::Wav,
        }),
        users,
    };
    options
        .check()
        .map_err(|e| UsageError(format!("{e} (--prefix, --volume, --start)")))?;
    Ok(options)
}

/// Ctrl-C cancels the run (work in progress winds down, temporary files go); a second
/// Ctrl-C exits at once.
fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            token.cancel();
            eprintln!("\ngcrec: interrupted: stopping (Ctrl-C again to stop at once)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(crate::exit::INTERRUPTED));
            }
        }
    });
    cancel
}

pub async fn run(global: &GlobalArgs, args: PullArgs) -> Result<Outcome> {
    let cancel = cancel_on_ctrl_c();
    let mut filter = filters::build(&args.filter)?;
    filter.shard = shard(&args)?;
    let asked = filter.clone();
    let mut tracker = filter.wanted.as_ref().map(|w| w.tracker());
    let target = match (&args.bag, &args.out) {
        (Some(bag), _) => Target::Bag(BagOptions {
            dir: bag.clone(),
            matter: args.matter.clone().unwrap_or_default(),
            organization: args.organization.clone(),
            caller: None,
        }),
        (None, _) if args.production.is_some() => Target::Production(production_options(&args)?),
        (None, Some(out)) => Target::Dir(out.clone()),
        (None, None) => {
            return Err(UsageError("give --out DIR, --bag DIR or --production DIR".into()).into());
        }
    };
    if args.matter.is_some() && args.bag.is_none() && args.production.is_none() {
        return Err(UsageError("--matter goes with --bag or --production".into()).into());
    }
    let loaded = if args.dry_run {
        None
    } else {
        Some(load_keyring(&args.keys)?)
    };
    let (keys, lax) = match loaded {
        Some(l) => (l.keyring, Some(l.readable_by_others)),
        None => (Keyring::new(), None),
    };
    let resolved = crate::catalog::resolve(args.source.as_deref(), args.catalog.as_deref(), true)?;
    let source_name = resolved.source()?.to_owned();
    let inventory = match &resolved.catalog {
        Some(_) => None,
        None => {
            crate::inventory::open(&args.inventory, &args.aws, &source_name, global.quiet).await?
        }
    };
    let opened = crate::aws::open_source(&source_name, &args.aws).await?;
    // An evidence bag records who ran it.
    let target = match target {
        Target::Bag(mut bag) if source_name.starts_with("s3://") && !args.dry_run => {
            bag.caller = crate::aws::caller_identity(&args.aws).await;
            Target::Bag(bag)
        }
        other => other,
    };
    let mut ctx = DecryptContext::new(
        keys,
        Some(Arc::new(LazyKms::new(args.aws.clone()))),
        args.keys.decrypt_options(),
    );
    ctx.transfer = TransferOptions {
        part_threshold: args.transfer.part_threshold,
        part_size: args
            .transfer
            .part_size
            .unwrap_or(gcrec_fetch::transfer::DEFAULT_PART_SIZE),
        scale_parts: args.transfer.part_size.is_none(),
        parts_per_object: usize::from(args.transfer.parts_per_object),
        expect_sse: args.expect_sse.clone(),
    };
    ctx.budget = ByteBudget::new(args.transfer.max_buffer);
    ctx.cancel = cancel.clone();
    args.content.apply(&mut ctx);
    // The folder actually read (the SOURCE may be an organization or partition folder
    // below the root the source is opened at): the output may not overlap it.
    let source_dir = opened
        .local_root
        .as_ref()
        .map(|root| root.join(&opened.base_prefix));
    let options = PullOptions {
        target,
        layout: args.layout.into(),
        keep_encrypted: args.keep_encrypted,
        verify_existing: args.verify_existing,
        dry_run: args.dry_run,
        include_unchecked: args.include_unchecked,
        jobs: args.jobs,
        scan: ScanOptions {
            base_prefix: opened.base_prefix,
            filter,
            read_all_metadata: false,
            sidecar_cap: args.max_sidecar_bytes,
            concurrency: 32,
            inventory,
        },
        source_dir,
        command_line: redact_command_line(std::env::args()),
    };
    let answer = resolved.recordings(&options.scan.filter, gcrec_catalog::query::Sort::Time)?;
    let mut plan = PullPlan::new(opened.source, ctx, options)?;
    if let Some(answer) = answer {
        plan = plan.with_recordings(answer, WorkList::Catalog);
    }
    let progress = global.progress("recordings");
    let follower = progress.follow(plan.received());

    let mut out = Out::stdout();
    let mut write_error = None;
    let mut on_event = |event: PullEvent<'_>| match event {
        PullEvent::Found { recordings, bytes } => progress.add_total(recordings, bytes),
        PullEvent::Recording { entry: e, outcome } => {
            if let Some(t) = tracker.as_mut() {
                t.found(
                    [
                        e.recording_id.as_str(),
                        e.conversation_id.as_str(),
                        e.key.as_str(),
                    ]
                    .into_iter()
                    .chain(e.sidecar_key.as_deref()),
                );
            }
            match outcome {
                RecordingOutcome::Failed => progress.note(
                    "failed",
                    &format!(
                        "gcrec: failed: {}: {}",
                        e.source,
                        with_hint(e.error.as_deref().unwrap_or_default(), e.hint)
                    ),
                ),
                RecordingOutcome::Pulled
                    if e.status == Some(Status::NoMedia) && global.verbose > 0 =>
                {
                    progress.note("note", &format!(
                        "note: {}: a sidecar without its media (copied; reported in the manifest)",
                        e.key
                    ));
                }
                RecordingOutcome::Pulled if e.status == Some(Status::NoMedia) => {}
                RecordingOutcome::Pulled if global.verbose > 0 && !args.json => {
                    progress.note(
                        "pulled",
                        &format!(
                            "{} ({}{})",
                            e.outputs.first().map_or("", |o| o.path.as_str()),
                            e.encryption.as_deref().unwrap_or_default(),
                            e.opened_with
                                .as_deref()
                                .map(|k| format!(", key {k}"))
                                .unwrap_or_default()
                        ),
                    );
                }
                RecordingOutcome::WouldPull if !args.json => {
                    if let Err(err) = out.line(&e.key) {
                        write_error.get_or_insert(err);
                    }
                }
                _ => {}
            }
            if args.json {
                let mut value = serde_json::to_value(e).unwrap_or_default();
                if let Some(map) = value.as_object_mut() {
                    map.insert("type".into(), json!("recording"));
                    map.insert("outcome".into(), json!(outcome));
                }
                if let Err(err) = out.line(&value.to_string()) {
                    write_error.get_or_insert(err);
                }
            }
            progress.finished(outcome == RecordingOutcome::Failed);
        }
    };
    let report = plan.execute(&mut on_event).await?;
    if let Some(err) = write_error {
        return Err(err.into());
    }
    if let Some(f) = follower {
        f.abort();
    }
    progress.finish();
    if let Some(bag) = &report.bag
        && !global.quiet
    {
        eprintln!(
            "bag written: {} (matter {})",
            bag.display(),
            args.matter.as_deref().unwrap_or_default()
        );
    }
    if let Some(p) = &report.production
        && !global.quiet
    {
        print_first(
            "files that could not be produced:",
            &p.problems,
            p.problems.len() as u64,
        );
        eprintln!(
            "production written: {} — {} document(s) in {}, {} new{}{}{}",
            args.production
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display(),
            p.documents,
            p.load_files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            p.new_documents,
            p.new_range
                .as_ref()
                .map(|(a, b)| format!(" ({a}–{b})"))
                .unwrap_or_default(),
            match p.renditions_made {
                0 => String::new(),
                n => format!(", {n} rendition(s) made"),
            },
            match p.media_problems {
                0 => String::new(),
                n => format!(", {n} with media problems (MEDIAPROBLEMS)"),
            },
        );
    }
    let missing = filters::report_missing(&asked, tracker.as_ref(), global.quiet);
    if args.json {
        let mut s = report.summary.clone();
        if let Some(map) = s.as_object_mut() {
            map.insert("type".into(), json!("summary"));
            if asked.wanted.is_some() {
                map.insert("not_found".into(), json!(missing));
            }
            if let Some(p) = &report.production {
                map.insert("production".into(), json!(p));
            }
        }
        out.line(&s.to_string())?;
    }
    out.flush()?;
    let totals = &report.totals;
    if !global.quiet {
        if let Some(e) = &report.listing_error {
            eprintln!("gcrec: the listing failed part-way: {e}");
        }
        print_first("failed recordings:", &report.failures, totals.failed);
        print_first(
            "recordings released with media problems (they are what the source holds):",
            &report.media_problems,
            totals.media_problems,
        );
        let (n, verb) = if args.dry_run {
            (totals.would_pull, "would pull")
        } else {
            (totals.pulled, "pulled")
        };
        crate::output::diagnostic(
            "summary",
            &format!(
                "{n} {verb}, {} already present, {} failed{}{}{}{} — {} downloaded in {:.1}s{}",
                totals.already,
                totals.failed,
                match totals.sidecars_without_media {
                    0 => String::new(),
                    n => format!(", {n} sidecar(s) without media"),
                },
                match totals.media_problems {
                    0 => String::new(),
                    n => format!(", {n} with media problems"),
                },
                match totals.unchecked_not_pulled {
                    0 => String::new(),
                    n => format!(", {n} unchecked not pulled (--include-unchecked)"),
                },
                match totals.skipped_keys {
                    0 => String::new(),
                    n => format!(", {n} keys skipped"),
                },
                human_bytes(totals.bytes_downloaded),
                report.summary["duration_seconds"]
                    .as_f64()
                    .unwrap_or_default(),
                report
                    .manifest
                    .as_ref()
                    .map(|m| format!("; manifest {}", m.display()))
                    .unwrap_or_default(),
            ),
        );
        if report.jobs.auto && global.verbose > 0 {
            crate::output::diagnostic(
                "jobs",
                &format!(
                    "jobs auto: {} at the end (highest {}), backed off {} time(s) on retries",
                    report.jobs.last, report.jobs.highest, report.jobs.backoffs
                ),
            );
        }
        if report.interrupted {
            eprintln!("interrupted: re-run the same command to resume");
        }
    }
    crate::keyring::warn_readable_by_others(&lax.unwrap_or_default(), global.quiet);
    Ok(if report.interrupted {
        Outcome::Interrupted
    } else if (report.listing_error.is_some()
        || !missing.is_empty()
        || report
            .production
            .as_ref()
            .is_some_and(|p| !p.problems.is_empty()))
        && totals.failed == 0
    {
        Outcome::SomeFailed
    } else {
        Outcome::of_failures(totals.failed, report.permission_failed)
    })
}

/// Prints the first of `total` items a report kept, under `title`, and how many more the
/// manifest has.
fn print_first(title: &str, kept: &[String], total: u64) {
    if kept.is_empty() {
        return;
    }
    eprintln!("{title}");
    for item in kept {
        eprintln!("  {item}");
    }
    if total > kept.len() as u64 {
        eprintln!(
            "  … and {} more (see the manifest)",
            total - kept.len() as u64
        );
    }
}
