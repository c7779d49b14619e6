//! `gcrec ls` end to end: every filter against the generator's ground truth, the
//! reporting of orphans, invalid sidecars and skipped keys, and the CLI's contract
//! (exit codes, JSON Lines, stderr summary).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use common::{Run, gcrec, generated};
use gcrec_fetch::filter::phone_matches;
use gcrec_testkit::{Export, ExportSpec, GenRecording, Padding};

/// Two days, two organizations, two conversations an hour, every kind of anomaly.
fn export() -> &'static (tempfile::TempDir, Export) {
    static EXPORT: OnceLock<(tempfile::TempDir, Export)> = OnceLock::new();
    EXPORT.get_or_init(|| {
        generated(ExportSpec {
            seed: 42,
            orgs: 2,
            days: 2,
            conversations_per_hour: 2,
            padding: Padding::Mixed,
            anomaly_every: 7,
            call_bytes: 500,
            screen_bytes: 600,
            digital_bytes: 400,
            ..ExportSpec::default()
        })
    })
}

fn ls(extra: &[&str]) -> Run {
    let (dir, _) = export();
    let mut args = vec![
        "ls".to_owned(),
        dir.path().display().to_string(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = gcrec(&args);
    assert_eq!(run.code, 0, "gcrec {args:?}\n{}", run.stderr);
    run
}

fn ids<'a>(recs: impl Iterator<Item = &'a GenRecording>) -> BTreeSet<String> {
    recs.map(|r| r.recording_id.clone()).collect()
}

/// Checks a field filter: matches are the recordings with a valid sidecar for which
/// `pred` holds; recordings without one are reported as unchecked, never as matches.
fn check_field_filter(args: &[&str], pred: impl Fn(&GenRecording) -> bool) {
    let (_, export) = export();
    let run = ls(&[args, &["--include-unchecked"]].concat());
    let want = ids(export
        .recordings
        .iter()
        .filter(|r| r.has_valid_sidecar() && pred(r)));
    assert!(
        !want.is_empty(),
        "{args:?} should select something in the fixture"
    );
    assert!(
        want.len() < export.recordings.len(),
        "{args:?} should not select everything"
    );
    assert_eq!(run.ids("recording"), want, "{args:?}");
    let unchecked = ids(export.recordings.iter().filter(|r| !r.has_valid_sidecar()));
    assert_eq!(run.ids("unchecked"), unchecked, "{args:?}");
    assert_eq!(run.summary()["unchecked"], unchecked.len() as u64);
}

#[test]
fn without_filters_every_recording_is_listed_with_its_problems() {
    let (_, export) = export();
    let run = ls(&[]);
    assert_eq!(run.ids("recording"), ids(export.recordings.iter()));
    let s = run.summary();
    let no_sidecar = export
        .recordings
        .iter()
        .filter(|r| r.sidecar_key.is_none())
        .count();
    let no_media = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_none())
        .count();
    let invalid = export
        .recordings
        .iter()
        .filter(|r| r.sidecar_key.is_some() && !r.has_valid_sidecar())
        .count();
    assert!(no_sidecar > 0 && no_media > 0 && invalid >= 3);
    assert_eq!(s["orphans_no_sidecar"], no_sidecar as u64);
    assert_eq!(s["orphans_no_media"], no_media as u64);
    assert_eq!(s["invalid_sidecars"], invalid as u64);
    assert_eq!(s["recordings"], export.recordings.len() as u64);
    // Foreign keys and the stray .DS_Store are reported one by one, with reasons.
    let skipped: BTreeSet<String> = run
        .json()
        .iter()
        .filter(|v| v["type"] == "skipped")
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect();
    let strays: BTreeSet<String> = export.strays.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(skipped, strays);
    // Every invalid sidecar's record names the problem.
    for v in run.json().iter().filter(|v| v["type"] == "recording") {
        let rec = export
            .recordings
            .iter()
            .find(|r| r.recording_id == v["recording_id"])
            .unwrap();
        let bad = rec.sidecar_key.is_some() && !rec.has_valid_sidecar();
        assert_eq!(v["metadata_error"].is_string(), bad, "{v}");
        assert_eq!(v["metadata"].is_object(), rec.has_valid_sidecar(), "{v}");
    }
}

#[test]
fn sidecar_documents_round_trip_with_unknown_fields() {
    let (_, export) = export();
    let run = ls(&[]);
    let with_unknown = export
        .recordings
        .iter()
        .find(|r| r.unknown_fields && r.has_valid_sidecar())
        .expect("a recording with unknown fields");
    let line = run
        .json()
        .into_iter()
        .find(|v| v["recording_id"] == with_unknown.recording_id.as_str())
        .unwrap();
    let media_size = line["media"][0]["size"].as_u64().unwrap();
    assert_eq!(line["metadata"], with_unknown.sidecar_json(media_size));
    assert_eq!(line["metadata"]["mediaSubtype"], "Trunk");
}

#[test]
fn org_filter() {
    let (_, export) = export();
    let org = &export.orgs[1];
    let run = ls(&["--org", org]);
    let want = ids(export.recordings.iter().filter(|r| &r.org == org));
    assert!(!want.is_empty() && want.len() < export.recordings.len());
    assert_eq!(run.ids("recording"), want);
}

#[test]
fn conversation_filter_is_repeatable_and_case_insensitive() {
    let (_, export) = export();
    let a = &export.recordings[3].conversation_id;
    let b = &export.recordings[40].conversation_id;
    let run = ls(&["--conversation", &a.to_uppercase(), "--conversation", b]);
    let want = ids(export
        .recordings
        .iter()
        .filter(|r| [a, b].contains(&&r.conversation_id)));
    assert_eq!(run.ids("recording"), want);
}

#[test]
fn conversations_file() {
    let (_, export) = export();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conversations.csv");
    let chosen: Vec<&String> = export
        .recordings
        .iter()
        .step_by(9)
        .map(|r| &r.conversation_id)
        .collect();
    let mut text = String::from("# conversations under legal hold\nconversationId,reason\n\n");
    for c in &chosen {
        text.push_str(&format!("{c},\"complaint\"\n"));
    }
    std::fs::write(&file, text).unwrap();
    let run = ls(&["--conversations-file", file.to_str().unwrap()]);
    let want = ids(export
        .recordings
        .iter()
        .filter(|r| chosen.contains(&&r.conversation_id)));
    assert!(want.len() > 5);
    assert_eq!(run.ids("recording"), want);
}

#[test]
fn recording_filter() {
    let (_, export) = export();
    let r = &export.recordings[10].recording_id;
    assert_eq!(run_ids(&["--recording", r]), BTreeSet::from([r.clone()]));
}

fn run_ids(args: &[&str]) -> BTreeSet<String> {
    ls(args).ids("recording")
}

#[test]
fn user_filter() {
    let user = gcrec_testkit::export::USERS[2];
    check_field_filter(&["--user", user], |r| r.users.iter().any(|u| u == user));
}

#[test]
fn queue_filter() {
    let q = gcrec_testkit::export::QUEUES;
    check_field_filter(&["--queue", q[0], "--queue", q[2]], |r| {
        r.queues.iter().any(|x| x == q[0] || x == q[2])
    });
}

#[test]
fn media_type_filter_ignores_case() {
    check_field_filter(&["--media-type", "screen", "--media-type", "EMAIL"], |r| {
        matches!(r.media_type, "Screen" | "Email")
    });
}

#[test]
fn direction_filter() {
    check_field_filter(&["--direction", "outbound"], |r| r.direction == "outbound");
}

#[test]
fn ani_filter_matches_a_national_number_against_its_international_form() {
    let (_, export) = export();
    let ani = export
        .recordings
        .iter()
        .filter(|r| r.has_valid_sidecar())
        .find_map(|r| r.ani.clone())
        .unwrap();
    let national = ani.trim_start_matches("tel:+1").to_owned(); // e.g. 3175550123
    let typed = format!(
        "({}) {}-{}",
        &national[..3],
        &national[3..6],
        &national[6..]
    );
    check_field_filter(&["--ani", &typed], |r| {
        r.ani.as_deref() == Some(ani.as_str())
    });
    assert!(phone_matches(&typed, &ani));
}

#[test]
fn dnis_filter() {
    let dnis = gcrec_testkit::export::DNIS[2]; // tel:+442079460000
    check_field_filter(&["--dnis", "+44 20 7946 0000"], |r| {
        r.dnis.as_deref() == Some(dnis)
    });
}

#[test]
fn wrapup_code_filter() {
    let code = gcrec_testkit::export::WRAPUP_CODES[1];
    check_field_filter(&["--wrapup-code", code], |r| {
        r.wrapup_codes.iter().any(|c| c == code)
    });
}

#[test]
fn message_type_filter() {
    check_field_filter(
        &["--message-type", "SMS", "--message-type", "whatsapp"],
        |r| matches!(r.message_type, Some("sms" | "whatsapp")),
    );
}

#[test]
fn filters_combine_with_and() {
    let (_, export) = export();
    let org = &export.orgs[0];
    let run = ls(&[
        "--org",
        org,
        "--media-type",
        "call",
        "--direction",
        "inbound",
    ]);
    let want = ids(export.recordings.iter().filter(|r| {
        &r.org == org && r.has_valid_sidecar() && r.media_type == "Call" && r.direction == "inbound"
    }));
    assert!(!want.is_empty());
    assert_eq!(run.ids("recording"), want);
    // Without --include-unchecked, recordings that cannot be checked are counted only.
    assert!(run.ids("unchecked").is_empty());
    assert!(run.summary()["unchecked"].as_u64().unwrap() > 0);
}

#[test]
fn from_and_to_select_by_conversation_start() {
    let (_, export) = export();
    // Hour-aligned: decided by the partition alone, sidecar or not.
    let run = ls(&["--from", "2024-03-01T05:00:00Z", "--to", "2024-03-01T09:00"]);
    let in_hours = |r: &GenRecording, from: &str, to: &str| {
        let t = r
            .conversation_start
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        t.as_str() >= from && t.as_str() < to
    };
    let want = ids(export
        .recordings
        .iter()
        .filter(|r| in_hours(r, "2024-03-01T05:00:00.000Z", "2024-03-01T09:00:00.000Z")));
    assert!(want.len() >= 8);
    assert_eq!(run.ids("recording"), want);
    // A whole day given as dates: --to includes the day named.
    let run = ls(&["--from", "2024-03-02", "--to", "2024-03-02"]);
    let want = ids(export
        .recordings
        .iter()
        .filter(|r| in_hours(r, "2024-03-02T00:00:00.000Z", "2024-03-03T00:00:00.000Z")));
    assert_eq!(run.ids("recording"), want);
}

#[test]
fn table_output_marks_orphans_and_invalid_sidecars() {
    let (dir, export) = export();
    let run = gcrec(["ls", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut lines = run.stdout.lines();
    let header = lines.next().unwrap();
    for column in [
        "START (UTC)",
        "CONVERSATION",
        "RECORDING",
        "TYPE",
        "DURATION",
        "SIZE",
        "ANI → DNIS",
        "FLAGS",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), export.recordings.len());
    let orphan = export
        .recordings
        .iter()
        .find(|r| r.sidecar_key.is_none())
        .unwrap();
    let row = rows
        .iter()
        .find(|l| l.contains(&orphan.recording_id))
        .unwrap();
    assert!(row.contains("no-sidecar"), "{row}");
    let bad = export
        .recordings
        .iter()
        .find(|r| r.sidecar_key.is_some() && !r.has_valid_sidecar())
        .unwrap();
    let row = rows.iter().find(|l| l.contains(&bad.recording_id)).unwrap();
    assert!(row.contains("bad-sidecar"), "{row}");
    // Columns line up: every row has the conversation ID at the header's offset.
    let at = header.find("CONVERSATION").unwrap();
    let prefix_width = header[..at].chars().count();
    for row in &rows {
        let conversation: String = row.chars().skip(prefix_width).take(36).collect();
        assert!(
            export
                .recordings
                .iter()
                .any(|r| r.conversation_id == conversation),
            "{row}"
        );
    }
    // The summary goes to stderr, and names every kind of problem.
    assert!(
        run.stderr
            .contains(&format!("{} recordings", export.recordings.len())),
        "{}",
        run.stderr
    );
    for word in [
        "orphans",
        "invalid sidecar",
        "keys skipped",
        "foreign",
        "not a recording",
    ] {
        assert!(run.stderr.contains(word), "{word}: {}", run.stderr);
    }
}

#[test]
fn quiet_prints_no_summary_and_verbose_lists_skipped_keys_and_requests() {
    let (dir, _) = export();
    let run = gcrec(["ls", "-q", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 0);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let run = gcrec(["ls", "-v", dir.path().to_str().unwrap()]);
    assert!(
        run.stderr.contains("skipped README.txt (foreign)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("requests: "), "{}", run.stderr);
}

#[test]
fn oversized_sidecars_are_rejected_unread() {
    let run = ls(&["--max-sidecar-bytes", "100"]);
    let with_sidecar: Vec<_> = run
        .json()
        .into_iter()
        .filter(|v| v["type"] == "recording" && v["sidecar"].is_object())
        .collect();
    let (big, small): (Vec<_>, Vec<_>) = with_sidecar
        .iter()
        .partition(|v| v["sidecar"]["size"].as_u64().unwrap() > 100);
    assert!(
        !big.is_empty() && !small.is_empty(),
        "the fixture has a tiny broken sidecar"
    );
    for v in big {
        let err = v["metadata_error"].as_str().unwrap();
        assert!(err.contains("over the 100-byte sidecar limit"), "{err}");
    }
    // Only the sidecars under the cap were downloaded.
    assert_eq!(run.summary()["requests"]["get"], small.len() as u64);
}

#[test]
fn a_recording_folder_can_be_the_source() {
    let (dir, export) = export();
    let r = export
        .recordings
        .iter()
        .find(|r| r.has_valid_sidecar())
        .unwrap();
    let folder = dir.path().join(&r.folder);
    let run = gcrec(["ls", "--json", folder.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = ids(export.recordings.iter().filter(|x| x.folder == r.folder));
    assert_eq!(run.ids("recording"), want);
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let (dir, _) = export();
    let d = dir.path().to_str().unwrap();
    let empty = tempfile::NamedTempFile::new().unwrap();
    for (args, needle) in [
        (
            vec!["ls", d, "--from", "yesterday"],
            "cannot read \"yesterday\" as a time",
        ),
        (
            vec!["ls", d, "--from", "2024-03-02", "--to", "2024-03-01"],
            "--from must be before --to",
        ),
        (vec!["ls", "/no/such/export"], "/no/such/export"),
        (vec!["ls", "s3:///org"], "no bucket name"),
        (vec!["ls", "s3://bucket/org"], "no AWS region"),
        (
            vec![
                "ls",
                d,
                "--conversations-file",
                empty.path().to_str().unwrap(),
            ],
            "holds no conversation IDs",
        ),
        (
            vec!["ls", d, "--conversations-file", "/no/such/file"],
            "cannot read --conversations-file",
        ),
        (vec!["ls", d, "--bogus"], "--bogus"),
    ] {
        let run = gcrec(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}");
    }
}

#[cfg(unix)]
#[test]
fn symlinks_and_unsafe_names_never_escape_the_source() {
    let (dir, _) = generated(ExportSpec::default());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.opus"), b"OggS secret").unwrap();
    let first = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let folder = walk_to_conversation(&first);
    std::os::unix::fs::symlink(
        outside.path().join("secret.opus"),
        folder.join("linked.opus"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked-dir")).unwrap();
    std::fs::write(folder.join("evil\\..\\x.opus"), b"x").unwrap();
    let run = gcrec(["ls", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("secret"), "a symlink was followed");
    assert!(!run.stdout.contains("linked"), "a symlink was listed");
    let unsafe_key = run
        .json()
        .into_iter()
        .find(|v| v["type"] == "skipped" && v["key"].as_str().unwrap().contains("evil"))
        .expect("the backslash name is reported");
    assert_eq!(unsafe_key["reason"], "unsafe");
}

fn walk_to_conversation(p: &std::path::Path) -> std::path::PathBuf {
    let mut p = p.to_path_buf();
    while !p
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("conversation_id=")
    {
        p = std::fs::read_dir(&p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|e| e.is_dir())
            .unwrap();
    }
    p
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let (dir, _) = export();
    // JSON Lines for this export are far bigger than a pipe's buffer, so `head` really
    // closes the pipe while gcrec is still writing.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' ls --json '{}' | head -n 2 >/dev/null; echo \"exit=${{PIPESTATUS[0]}}\"",
            env!("CARGO_BIN_EXE_gcrec"),
            dir.path().display()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.trim(), "exit=0", "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{stderr}"
    );
}

#[test]
fn ls_over_s3_lists_exactly_what_the_local_copy_lists() {
    let (dir, export) = export();
    let moto = common::tools::Moto::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(gcrec_testkit::servers::upload(
        &moto.s3_client(),
        "exports",
        export.objects(),
    ));
    let org = &export.orgs[0];
    for (local_source, s3_source, extra) in [
        (
            dir.path().display().to_string(),
            "s3://exports".to_owned(),
            vec![
                "--from",
                "2024-03-01T05:00:00Z",
                "--to",
                "2024-03-01T09:30Z",
            ],
        ),
        (
            dir.path().join(org).display().to_string(),
            format!("s3://exports/{org}"),
            vec![],
        ),
        (
            dir.path().display().to_string(),
            "s3://exports".to_owned(),
            vec!["--media-type", "call", "--include-unchecked"],
        ),
    ] {
        let local = gcrec([&["ls", "--json", local_source.as_str()][..], &extra].concat());
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gcrec"));
        cmd.args(["ls", "--json", s3_source.as_str()])
            .args(&extra)
            .stdin(std::process::Stdio::null());
        moto.env(&mut cmd);
        let out = cmd.output().unwrap();
        let s3 = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        assert_eq!(s3.code, 0, "{s3_source}: {}", s3.stderr);
        assert!(!local.ids("recording").is_empty());
        assert_eq!(
            s3.ids("recording"),
            local.ids("recording"),
            "{s3_source} {extra:?}"
        );
        assert_eq!(
            s3.ids("unchecked"),
            local.ids("unchecked"),
            "{s3_source} {extra:?}"
        );
        let (a, b) = (s3.summary(), local.summary());
        for field in [
            "recordings",
            "orphans_no_sidecar",
            "orphans_no_media",
            "invalid_sidecars",
            "unchecked",
            "skipped",
        ] {
            assert_eq!(a[field], b[field], "{field} for {s3_source} {extra:?}");
        }
        // Pruning costs the same list calls against S3 as against the directory.
        assert_eq!(
            a["requests"]["list"], b["requests"]["list"],
            "{s3_source} {extra:?}"
        );
        // And the sidecars parsed from S3 are the same documents.
        let docs = |r: &Run| {
            r.json()
                .into_iter()
                .filter(|v| v["type"] == "recording")
                .map(|v| v["metadata"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(docs(&s3), docs(&local));
    }
}
