//! `gcrec doctor`: the account checks this front end owns (credentials and caller, the
//! bucket's region, KMS key state), then `gcrec_pull::doctor`'s checks through the
//! source, rendered as a checklist.

use std::sync::Arc;

use anyhow::Result;
use gcrec_fetch::scan::ScanOptions;
use gcrec_pull::doctor::{Check, CheckStatus, DoctorOptions, examine};
use gcrec_pull::object::DecryptContext;
use serde_json::json;

use crate::aws::LazyKms;
use crate::cli::{DoctorArgs, GlobalArgs};
use crate::exit::Outcome;
use crate::filters;
use crate::keyring::load_keyring;
use crate::output::Out;

/// Clock skew past which S3 refuses signed requests (RequestTimeTooSkewed), in seconds.
const MAX_SKEW: i64 = 300;

fn symbol(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pass => "✓",
        CheckStatus::Warn => "!",
        CheckStatus::Fail => "✗",
    }
}

pub async fn run(global: &GlobalArgs, args: DoctorArgs) -> Result<Outcome> {
    let filter = filters::build(&args.filter)?;
    let loaded = load_keyring(&args.keys)?;
    let s3 = args.source.starts_with("s3://");
    // The account's checks come first, the KMS keys' last, the source's between.
    let mut checks = Vec::new();
    let mut kms_checks = Vec::new();
    if s3 {
        let from = crate::aws::credentials_source(&args.aws);
        match crate::aws::caller_and_clock(&args.aws).await {
            Some((who, skew)) => {
                checks.push(Check::pass(
                    "credentials",
                    format!(
                        "calling as {}, with credentials from {from}",
                        who["arn"].as_str().unwrap_or("an unknown identity")
                    ),
                ));
                match skew {
                    Some(s) if s.abs() > MAX_SKEW => checks.push(Check::new(
                        "clock",
                        CheckStatus::Fail,
                        format!("this machine's clock is {}s off AWS's: signed requests are refused past 300 s", -s),
                        Some("synchronize the clock (NTP, chrony)".into()),
                    )),
                    Some(s) if s.abs() > 60 => checks.push(Check::new(
                        "clock",
                        CheckStatus::Warn,
                        format!("this machine's clock is {}s off AWS's", -s),
                        Some("synchronize the clock (NTP, chrony)".into()),
                    )),
                    Some(s) => checks.push(Check::pass("clock", format!("within {}s of AWS's", s.abs()))),
                    None => {}
                }
            }
            None => {
                let mut c = Check::new(
                    "credentials",
                    CheckStatus::Fail,
                    format!(
                        "no working AWS credentials (looked for {from}; STS GetCallerIdentity failed)"
                    ),
                    Some(
                        "set AWS_PROFILE (and `aws sso login`), or AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY, or run with a role"
                            .into(),
                    ),
                );
                c.permission = true;
                checks.push(c);
            }
        }
    }
    let opened = crate::aws::open_source(&args.source, &args.aws).await?;
    let source = opened.source.clone();
    let ctx = DecryptContext::new(
        loaded.keyring,
        Some(Arc::new(LazyKms::new(args.aws.clone()))),
        args.keys.decrypt_options(),
    );
    let found = examine(
        source.clone(),
        Arc::new(ctx),
        DoctorOptions {
            scan: ScanOptions {
                base_prefix: opened.base_prefix,
                filter,
                read_all_metadata: false,
                ..ScanOptions::default()
            },
            out: args.out.clone(),
            need_object_lock: args.bag,
        },
    )
    .await;
    if s3 {
        let configured = crate::aws::configured_region(&args.aws).await;
        match (source.region(), configured) {
            (Some(actual), Some(configured)) if actual != configured => checks.push(Check::new(
                "region",
                CheckStatus::Warn,
                format!("the bucket answers from {actual}; the configured region is {configured} (gcrec follows it there)"),
                Some(format!("pass --region {actual} (or set AWS_REGION) to save a redirect per run")),
            )),
            (Some(actual), _) => checks.push(Check::pass("region", format!("the bucket answers from {actual}"))),
            _ => {}
        }
        for (key, state) in crate::aws::kms_key_states(&args.aws, found.kms_keys.clone()).await {
            kms_checks.push(match state {
                Ok(s) if s == "Enabled" => Check::pass(format!("kms key {key}"), "Enabled"),
                Ok(s) => Check::new(
                    format!("kms key {key}"),
                    CheckStatus::Fail,
                    format!("the objects' KMS key is {s}: S3 cannot decrypt them"),
                    Some("enable the key (kms:EnableKey) or cancel its deletion".into()),
                ),
                Err(e) => Check::new(
                    format!("kms key {key}"),
                    CheckStatus::Warn,
                    format!("cannot describe it: {e}"),
                    Some(
                        "the caller may lack kms:DescribeKey (kms:Decrypt is what a pull needs)"
                            .into(),
                    ),
                ),
            });
        }
    }
    // Account checks first, then the source's, in the order a pull meets them.
    let mut all = checks;
    all.extend(found.checks);
    all.extend(kms_checks);
    let mut out = Out::stdout();
    for c in &all {
        if args.json {
            let mut v = serde_json::to_value(c)?;
            if let Some(m) = v.as_object_mut() {
                m.insert("type".into(), json!("check"));
            }
            out.line(&v.to_string())?;
        } else {
            let fix = c
                .fix
                .as_deref()
                .map(|f| format!(" — {f}"))
                .unwrap_or_default();
            let detail = crate::exit::with_hint(&c.detail, c.hint);
            out.line(&format!("{} {}: {detail}{fix}", symbol(c.status), c.name))?;
        }
    }
    let failed = all.iter().filter(|c| c.status == CheckStatus::Fail).count() as u64;
    let permission = all
        .iter()
        .any(|c| c.status == CheckStatus::Fail && c.permission);
    if args.json {
        out.line(&json!({"type": "summary", "checks": all.len(), "failed": failed, "warnings": all.iter().filter(|c| c.status == CheckStatus::Warn).count()}).to_string())?;
    }
    out.flush()?;
    crate::keyring::warn_readable_by_others(&loaded.readable_by_others, global.quiet);
    Ok(Outcome::of_failures(failed, permission))
}
