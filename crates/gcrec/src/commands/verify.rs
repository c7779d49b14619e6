//! `gcrec verify DIR`: render `gcrec_pull::verify` (re-hash a pull output or a bag
//! against its manifest: missing, extra and altered files).

use anyhow::Result;
use gcrec_pull::verify::{FileStatus, verify_dir, verify_media};
use serde_json::json;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::exit::Outcome;
use crate::output::Out;

pub async fn run(global: &GlobalArgs, args: VerifyArgs) -> Result<Outcome> {
    let report = verify_dir(&args.dir, usize::from(args.jobs)).await?;
    let mut out = Out::stdout();
    for (rel, status) in &report.files {
        if args.json {
            out.line(&json!({"type": "file", "path": rel, "status": status}).to_string())?;
        } else if *status != FileStatus::Ok {
            out.line(&format!("{:<8} {rel}", status.as_str()))?;
        }
    }
    let mut media_problems = 0u64;
    if args.media && report.recordings.is_some() {
        for f in verify_media(&args.dir, usize::from(args.jobs)).await? {
            let Some(m) = f.report else { continue };
            if m.has_problems() {
                media_problems += 1;
            }
            if args.json {
                let mut v = serde_json::to_value(&m)?;
                v["type"] = json!("media");
                v["path"] = json!(f.path);
                out.line(&v.to_string())?;
            } else if m.has_problems() {
                out.line(&format!("media    {}: {}", f.path, m.problems.join("; ")))?;
            }
        }
    }
    let count = |s| report.count(s);
    if args.json {
        out.line(
            &json!({
                "type": "summary",
                "ok": count(FileStatus::Ok),
                "missing": count(FileStatus::Missing),
                "altered": count(FileStatus::Altered),
                "extra": count(FileStatus::Extra),
                "recordings": report.recordings,
                "media_problems": args.media.then_some(media_problems),
            })
            .to_string(),
        )?;
    }
    out.flush()?;
    if args.media && !global.quiet {
        eprintln!("{media_problems} recording(s) with media problems");
    }
    if !global.quiet {
        eprintln!(
            "{} files verified against {}: {} ok, {} missing, {} altered, {} extra",
            report.files.len(),
            report.against.display(),
            count(FileStatus::Ok),
            count(FileStatus::Missing),
            count(FileStatus::Altered),
            count(FileStatus::Extra),
        );
    }
    Ok(if report.is_clean() && media_problems == 0 {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}
