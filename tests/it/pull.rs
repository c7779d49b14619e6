//! `gcrec pull` end to end: a large mixed export over moto, crash and resume, shards,
//! layouts, progress on a terminal.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tools::Moto;
use common::{Run, files_under, gcrec, gcrec_s3, repo_root};
use gcrec_testkit::encrypted::{Damage, EncryptedExport, Encryption};
use gcrec_testkit::{Export, ExportSpec};
use serde_json::Value;

/// The example keys, copied `0600` into a private directory (a git checkout leaves them
/// readable by others, which gcrec warns about).
pub(crate) fn keys() -> PathBuf {
    static PRIVATE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = PRIVATE.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(repo_root().join("keys-example")).unwrap() {
            let entry = entry.unwrap();
            let to = dir.path().join(entry.file_name());
            std::fs::copy(entry.path(), &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        dir
    });
    dir.path().to_owned()
}

pub(crate) fn key_args() -> Vec<String> {
    vec![
        "--key".into(),
        keys().display().to_string(),
        "--passphrase-file".into(),
        keys().join("passphrase.txt").display().to_string(),
    ]
}

/// The manifest's effective recording lines (the last per key).
pub(crate) fn manifest(out: &Path) -> BTreeMap<String, Value> {
    std::fs::read_to_string(out.join("gcrec-manifest.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "recording")
        .map(|v| (v["key"].as_str().unwrap().to_owned(), v))
        .collect()
}

fn stored_key_of(e: &EncryptedExport, media_key: &str) -> String {
    e.media[media_key].stored_key.clone()
}

/// The plaintext output path of a media key in the mirror layout.
fn output_of(out: &Path, media_key: &str) -> PathBuf {
    out.join(media_key)
}

#[test]
fn a_mixed_export_of_two_thousand_recordings_over_moto() {
    // 21 days × 24 hours × 4 conversations = 2,016 recordings, every 97th broken by the
    // generator (orphans of both kinds, invalid sidecars), foreign keys among them.
    let export = Export::generate(ExportSpec {
        seed: 2000,
        days: 21,
        conversations_per_hour: 4,
        anomaly_every: 97,
        ..ExportSpec::default()
    });
    assert!(export.recordings.len() >= 2000);
    // A key nobody will be given, for one object.
    let stranger = tempfile::tempdir().unwrap();
    let made = gcrec([
        "keys",
        "generate",
        "--out",
        stranger.path().to_str().unwrap(),
        "--user-id",
        "Stranger <unknown@example.invalid>",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    // Indices into a round-robin over every container (ten kinds).
    let damage = |i: usize| match i {
        10 => Some(Damage::FlipMiddle), // OpenPGP RSA: MDC fails
        11 => Some(Damage::Truncate),   // OpenPGP Curve25519 (armored): cut short
        12 => Some(Damage::Truncate),   // S3EC V2 RSA: cut short
        13 => Some(Damage::FlipMiddle), // S3EC V3 RSA: GCM tag fails
        16 => Some(Damage::FlipMiddle), // CMS AuthEnvelopedData: GCM tag fails
        18 => Some(Damage::FlipMiddle), // ESDK: a frame's tag fails
        20 => Some(Damage::UnknownKey), // OpenPGP to a key not given
        26 => Some(Damage::Truncate),   // CMS AuthEnvelopedData (indefinite): cut short
        28 => Some(Damage::Truncate),   // ESDK: cut inside its signature
        _ => None,
    };
    let built = EncryptedExport::build(
        export,
        |i| Encryption::nth(&Encryption::EVERY, i),
        damage,
        Some(&stranger.path().join("gcrec-pgp.pub.asc")),
    );
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(built.upload(&moto, "exports"));

    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "pull".to_owned(),
        "s3://exports".into(),
        "--out".into(),
        out.path().display().to_string(),
        "--json".into(),
        "--jobs".into(),
        "16".into(),
        // CMS EnvelopedData (CBC) is among the containers.
        "--allow-unauthenticated".into(),
    ];
    args.extend(key_args());
    let run = gcrec_s3(&moto.endpoint, &args, &[]);
    assert_eq!(run.code, 1, "some recordings are bad: {}", run.stderr);

    let m = manifest(out.path());
    let expected_failures: BTreeMap<&str, &str> = [
        (Damage::FlipMiddle, Encryption::PgpRsa, "OpenPGP"),
        (
            Damage::Truncate,
            Encryption::S3ecV2Rsa,
            "S3 Encryption Client",
        ),
        (
            Damage::FlipMiddle,
            Encryption::S3ecV3Rsa,
            "S3 Encryption Client",
        ),
        (
            Damage::UnknownKey,
            Encryption::PgpRsa,
            "no key for this message",
        ),
        (Damage::Truncate, Encryption::PgpCv25519, "OpenPGP"),
        (Damage::FlipMiddle, Encryption::CmsGcm, "CMS"),
        (Damage::Truncate, Encryption::CmsGcm, "CMS"),
        (
            Damage::FlipMiddle,
            Encryption::EsdkAes,
            "AWS Encryption SDK",
        ),
        (Damage::Truncate, Encryption::EsdkAes, "AWS Encryption SDK"),
    ]
    .into_iter()
    .map(|(d, enc, reason)| {
        let (key, _) = built
            .media
            .iter()
            .find(|(_, s)| s.damage == Some(d) && s.encryption == enc)
            .unwrap_or_else(|| panic!("no {d:?} {enc:?} object"));
        (key.as_str(), reason)
    })
    .collect();
    let mut ok = 0;
    let mut sizes_matched = 0;
    let mut formats = BTreeSet::new();
    for r in &built.export.recordings {
        match &r.media_key {
            Some(media_key) => {
                let stored = stored_key_of(&built, media_key);
                let entry = m
                    .get(&stored)
                    .unwrap_or_else(|| panic!("{stored} not in the manifest"));
                if let Some(reason) = expected_failures.get(media_key.as_str()) {
                    assert_eq!(entry["status"], "failed", "{stored}");
                    let error = entry["error"].as_str().unwrap();
                    assert!(error.contains(reason), "{stored}: {error}");
                    assert!(
                        !output_of(out.path(), media_key).exists(),
                        "{stored} must not be released"
                    );
                } else {
                    assert_eq!(entry["status"], "ok", "{stored}: {}", entry["error"]);
                    let got = std::fs::read(output_of(out.path(), media_key)).unwrap();
                    assert!(got == r.media_body(), "{media_key} differs");
                    let encryption = entry["encryption"].as_str().unwrap();
                    // What vouches for the bytes: the content's own tag or MDC for
                    // encrypted media (the ETag's MD5 is skipped as redundant), the
                    // store's checksum or MD5 ETag for plain media.
                    let checked: Vec<&str> = entry["checked"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    let by = if encryption.starts_with("openpgp") {
                        Some("openpgp-integrity")
                    } else if encryption.starts_with("s3ec") {
                        Some("s3ec-gcm-tag")
                    } else if encryption.starts_with("cms auth-enveloped-data") {
                        Some("cms-gcm-tag")
                    } else if encryption.starts_with("esdk") {
                        Some("esdk-gcm-tags")
                    } else {
                        None
                    };
                    match by {
                        // CMS is known only once read, so its ETag MD5 is computed too.
                        Some(by) => assert!(
                            checked.contains(&by)
                                && (by == "cms-gcm-tag" || !checked.contains(&"md5-etag")),
                            "{stored}: {checked:?}"
                        ),
                        None => assert!(!checked.is_empty(), "{stored}: {checked:?}"),
                    }
                    // Which container vouched for the bytes, and which did not.
                    let authenticated = if encryption.starts_with("plain") {
                        Value::Null
                    } else {
                        Value::Bool(!encryption.starts_with("cms enveloped-data"))
                    };
                    assert_eq!(entry["authenticated"], authenticated, "{stored}");
                    if encryption.starts_with("cms") {
                        assert_eq!(
                            entry["opened_with"].as_str().unwrap(),
                            "rsa:a4090a3c61cb6d85",
                            "{stored}"
                        );
                    }
                    // Null only without a valid sidecar (the generator breaks some).
                    if let Some(matches) = entry["sidecar_file_size_matches"].as_bool() {
                        assert!(matches, "{stored}");
                        sizes_matched += 1;
                    }
                    formats.insert(encryption.to_owned());
                    ok += 1;
                }
            }
            None => {
                // A sidecar without media: copied and reported, not a failure.
                let sidecar = r.sidecar_key.as_ref().unwrap();
                assert_eq!(m[sidecar]["status"], "no_media");
                assert!(out.path().join(sidecar).is_file());
            }
        }
    }
    assert!(ok >= 1990, "{ok} good recordings");
    assert!(
        sizes_matched >= 1900,
        "{sizes_matched} sidecar fileSize matches"
    );
    for needed in [
        "openpgp",
        "s3ec v2 (AES-GCM, RSA-OAEP-SHA1)",
        "s3ec v3 (AES-GCM, key-committing, RSA-OAEP-SHA1)",
        "s3ec v2 (AES-GCM, kms+context)",
        "s3ec v3 (AES-GCM, key-committing, kms+context)",
        "cms auth-enveloped-data (AES-256-GCM, RSA PKCS#1 v1.5, der)",
        "cms enveloped-data (AES-256-CBC, RSA-OAEP-SHA1, pem)",
        "esdk v2 (AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384, framed)",
        "plain ogg",
        "plain zip",
    ] {
        assert!(
            formats.iter().any(|f| f.starts_with(needed)),
            "no {needed} in {formats:?}"
        );
    }
    // Sidecars are copied byte for byte beside their media.
    for r in built
        .export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
    {
        if let Some(sidecar) = &r.sidecar_key {
            let size = r.media_body().len() as u64;
            assert_eq!(
                std::fs::read(out.path().join(sidecar)).unwrap(),
                r.sidecar_body(size),
                "{sidecar}"
            );
        }
    }
    let summary = run.summary();
    assert_eq!(
        summary["counts"]["failed"].as_u64().unwrap() as usize,
        expected_failures.len()
    );
    assert_eq!(
        summary["counts"]["sidecars_without_media"]
            .as_u64()
            .unwrap() as usize,
        built
            .export
            .recordings
            .iter()
            .filter(|r| r.media_key.is_none())
            .count()
    );
    assert_eq!(summary["counts"]["pulled"].as_u64().unwrap() as usize, ok);
    // Files 0600, directories 0700, nothing left half-written.
    use std::os::unix::fs::PermissionsExt;
    let files = files_under(out.path());
    assert!(files.iter().all(|f| !f.contains(".gcrec-tmp-")));
    for f in files.iter().take(50) {
        let mode = std::fs::metadata(out.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
        let dir_mode = std::fs::metadata(out.path().join(f).parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700, "{f}");
    }
}

/// A local mixed export (OpenPGP and S3EC with RSA, plain), for the tests that run
/// gcrec many times.
pub(crate) fn local_export() -> EncryptedExport {
    let export = Export::generate(ExportSpec {
        seed: 77,
        days: 4,
        conversations_per_hour: 3,
        call_bytes: 32 * 1024,
        screen_bytes: 96 * 1024,
        ..ExportSpec::default()
    });
    let kinds = [
        Encryption::PgpRsa,
        Encryption::PgpCv25519,
        Encryption::S3ecV2Rsa,
        Encryption::S3ecV3Rsa,
        Encryption::Plain,
    ];
    EncryptedExport::build(export, |i| Encryption::nth(&kinds, i), |_| None, None)
}

pub(crate) fn pull_local(source: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
    cmd.arg("pull")
        .arg(source)
        .arg("--out")
        .arg(out)
        .args(key_args())
        .args(extra);
    common::no_aws(&mut cmd);
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

pub(crate) fn run_cmd(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What a finished pull leaves, for comparison: every file's bytes, and the manifest's
/// effective entries without times.
fn snapshot(out: &Path) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Value>) {
    let files = files_under(out)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(out.join(&f)).unwrap();
            (f, bytes)
        })
        .collect();
    let entries = manifest(out)
        .into_iter()
        .map(|(k, mut v)| {
            v.as_object_mut().unwrap().remove("completed_at");
            (k, v)
        })
        .collect();
    (files, entries)
}

#[test]
fn killed_at_random_moments_and_rerun_ends_like_a_clean_run() {
    let built = local_export();
    let clean_out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let clean = run_cmd(&mut pull_local(
        built.dir.path(),
        clean_out.path(),
        &["--jobs", "4"],
    ));
    let clean_time = started.elapsed();
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let reference = snapshot(clean_out.path());
    assert!(reference.0.len() > 100);

    let out = tempfile::tempdir().unwrap();
    // Seeded "random" kill points across the clean run's duration.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut kills = 0;
    for _ in 0..5 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Each re-run has less left to do, so the window shrinks: 10–40% of a clean run.
        let at = clean_time.mul_f64((seed % 1000) as f64 / 1000.0 * 0.3 + 0.1);
        let mut child = pull_local(built.dir.path(), out.path(), &["--jobs", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 3, "only {kills} runs were still going when killed");
    let rerun = run_cmd(&mut pull_local(
        built.dir.path(),
        out.path(),
        &["--jobs", "4"],
    ));
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    let (files, entries) = snapshot(out.path());
    assert!(
        files.keys().all(|f| !f.contains(".gcrec-tmp-")),
        "temporary files left"
    );
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        reference.0.keys().collect::<Vec<_>>()
    );
    assert!(
        files == reference.0,
        "every file byte-identical to the clean run's"
    );
    assert_eq!(
        entries, reference.1,
        "the manifest agrees with the clean run's"
    );
    // A third run finds everything in place and downloads nothing.
    let again = run_cmd(&mut pull_local(built.dir.path(), out.path(), &["--json"]));
    assert_eq!(again.code, 0);
    let summary = again.summary();
    assert_eq!(summary["counts"]["pulled"], 0);
    assert_eq!(
        summary["counts"]["already"].as_u64().unwrap() as usize,
        entries.len()
    );
    assert_eq!(summary["requests"]["get"], 0);
}

#[test]
fn verify_existing_rehashes_and_repairs_an_altered_output() {
    let built = local_export();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(
        run_cmd(&mut pull_local(built.dir.path(), out.path(), &[])).code,
        0
    );
    let (media_key, _) = built
        .media
        .iter()
        .find(|(_, m)| m.encryption == Encryption::PgpRsa)
        .unwrap();
    let path = output_of(out.path(), media_key);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[10] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    // Same size: a plain re-run trusts it…
    let plain = run_cmd(&mut pull_local(built.dir.path(), out.path(), &["--json"]));
    assert_eq!(plain.summary()["counts"]["pulled"], 0);
    // …--verify-existing does not, and pulls it again.
    let verified = run_cmd(&mut pull_local(
        built.dir.path(),
        out.path(),
        &["--json", "--verify-existing"],
    ));
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert_eq!(verified.summary()["counts"]["pulled"], 1);
    assert_eq!(std::fs::read(&path).unwrap(), good);
}

#[test]
fn three_shards_split_a_run_without_overlap() {
    let built = local_export();
    let whole = tempfile::tempdir().unwrap();
    assert_eq!(
        run_cmd(&mut pull_local(built.dir.path(), whole.path(), &[])).code,
        0
    );
    let all: BTreeSet<String> = files_under(whole.path()).into_iter().collect();
    let mut union = BTreeSet::new();
    let mut conversations_seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..3 {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = pull_local(built.dir.path(), out.path(), &[]);
        // Shard 0 from the flag, 1 from a Kubernetes Indexed Job, 2 from AWS Batch.
        match i {
            0 => {
                cmd.args(["--shard", "0/3"]);
            }
            1 => {
                cmd.env("JOB_COMPLETION_INDEX", "1")
                    .args(["--shard-count", "3"]);
            }
            _ => {
                cmd.env("AWS_BATCH_JOB_ARRAY_INDEX", "2")
                    .env("AWS_BATCH_JOB_ARRAY_SIZE", "3");
            }
        }
        let run = run_cmd(&mut cmd);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let files: BTreeSet<String> = files_under(out.path()).into_iter().collect();
        assert!(!files.is_empty(), "shard {i} got nothing");
        assert!(union.is_disjoint(&files), "shard {i} overlaps");
        for f in &files {
            let conversation = f
                .split('/')
                .find(|s| s.starts_with("conversation_id="))
                .unwrap()
                .to_owned();
            conversations_seen.entry(conversation).or_default();
        }
        union.extend(files);
    }
    assert_eq!(union, all, "the shards together are the whole run");
    // A conversation never splits: each conversation folder appears in one shard only
    // (disjoint file sets plus identical union imply it per file; check per folder).
    assert!(conversations_seen.len() > 10);
    let bad = run_cmd(&mut pull_local(
        built.dir.path(),
        tempfile::tempdir().unwrap().path(),
        &["--shard", "3/3"],
    ));
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("below the count"), "{}", bad.stderr);
}

#[test]
fn layouts_keep_encrypted_and_nothing_outside_the_output_directory() {
    let built = local_export();
    let tmp = tempfile::tempdir().unwrap();
    for layout in ["conversation", "flat"] {
        let out = tmp.path().join(layout);
        let run = run_cmd(&mut pull_local(
            built.dir.path(),
            &out,
            &["--layout", layout],
        ));
        assert_eq!(run.code, 0, "{}", run.stderr);
        for r in built
            .export
            .recordings
            .iter()
            .filter(|r| r.media_key.is_some())
        {
            let name = r.media_key.as_ref().unwrap().rsplit('/').next().unwrap();
            let path = match layout {
                "conversation" => out.join(&r.conversation_id).join(name),
                _ => out.join(name),
            };
            assert!(
                std::fs::read(&path).unwrap() == r.media_body(),
                "{}",
                path.display()
            );
        }
    }
    // --keep-encrypted: the downloaded bytes with their S3 metadata, itself a source.
    let out = tmp.path().join("kept");
    let run = run_cmd(&mut pull_local(
        built.dir.path(),
        &out,
        &["--keep-encrypted"],
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let again = tmp.path().join("from-kept");
    let run = run_cmd(&mut pull_local(&out.join("encrypted"), &again, &[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    for r in built
        .export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
    {
        let key = r.media_key.as_ref().unwrap();
        assert!(
            std::fs::read(again.join(key)).unwrap() == r.media_body(),
            "{key}"
        );
    }
    // The output directory of a mirror pull is itself a source for ls.
    let ls = gcrec(["ls", "--json", out.to_str().unwrap()]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    assert_eq!(
        ls.ids("recording").len(),
        built
            .export
            .recordings
            .iter()
            .filter(|r| r.media_key.is_some())
            .count()
    );
}

#[test]
fn a_dry_run_lists_what_it_would_pull_and_writes_nothing() {
    let built = local_export();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("never");
    let run = run_cmd(&mut pull_local(
        built.dir.path(),
        &target,
        &["--dry-run", "--json"],
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!target.exists(), "a dry run creates nothing");
    let would = run
        .json()
        .iter()
        .filter(|v| v["outcome"] == "would_pull")
        .count();
    assert_eq!(would, built.media.len());
}

#[test]
fn a_progress_bar_on_a_terminal_and_none_when_piped() {
    let built = local_export();
    let out = tempfile::tempdir().unwrap();
    // `script` runs gcrec on a pseudo-terminal and records what it draws.
    let typescript = out.path().join("typescript");
    let command = format!(
        "{} pull {} --out {} --key {} --passphrase-file {}",
        env!("CARGO_BIN_EXE_gcrec"),
        built.dir.path().display(),
        out.path().join("tty").display(),
        keys().display(),
        keys().join("passphrase.txt").display()
    );
    let mut cmd = Command::new(common::tools::tool("script", "apt-get install bsdutils"));
    cmd.args(["-qfec", &command]).arg(&typescript);
    common::no_aws(&mut cmd);
    cmd.env("TERM", "xterm").env("NO_COLOR", "1");
    let status = cmd.status().unwrap();
    assert!(status.success());
    let drawn = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(
        drawn.contains("recordings") && drawn.contains("downloaded"),
        "{drawn}"
    );
    assert!(drawn.contains("\u{1b}["), "terminal control sequences");
    // Piped: only the summary line.
    let piped = run_cmd(&mut pull_local(
        built.dir.path(),
        &out.path().join("piped"),
        &[],
    ));
    assert_eq!(piped.code, 0);
    assert!(!piped.stderr.contains("downloaded,"), "{}", piped.stderr);
    assert!(!piped.stderr.contains('\u{1b}'), "{}", piped.stderr);
    assert_eq!(piped.stderr.lines().count(), 1, "{}", piped.stderr);
}

#[test]
fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    let built = local_export();
    let out = tempfile::tempdir().unwrap();
    let child = pull_local(built.dir.path(), out.path(), &["--jobs", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first recordings are done.
    let deadline = Instant::now() + Duration::from_secs(60);
    while manifest(out.path()).len() < 3 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(0) {
        panic!("the run finished before Ctrl-C; make the export larger: {stderr}");
    }
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("re-run the same command to resume"),
        "{stderr}"
    );
    assert!(
        files_under(out.path())
            .iter()
            .all(|f| !f.contains(".gcrec-tmp-"))
    );
    let rerun = run_cmd(&mut pull_local(built.dir.path(), out.path(), &[]));
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
}

#[test]
fn verify_finds_missing_altered_and_extra_files() {
    let built = local_export();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(
        run_cmd(&mut pull_local(built.dir.path(), out.path(), &[])).code,
        0
    );
    let dir = out.path().to_str().unwrap();
    let clean = gcrec(["verify", dir, "--json"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let files = files_under(out.path());
    assert_eq!(
        clean.summary()["ok"].as_u64().unwrap() as usize,
        files.len()
    );
    // One byte changed (same size), one file gone, one file added.
    let altered = &files[0];
    let mut bytes = std::fs::read(out.path().join(altered)).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(out.path().join(altered), bytes).unwrap();
    let missing = &files[1];
    std::fs::remove_file(out.path().join(missing)).unwrap();
    std::fs::write(out.path().join("planted.opus"), b"OggS").unwrap();
    let run = gcrec(["verify", dir, "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let status: BTreeMap<String, String> = run
        .json()
        .iter()
        .filter(|v| v["type"] == "file")
        .map(|v| {
            (
                v["path"].as_str().unwrap().to_owned(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(status[altered.as_str()], "altered");
    assert_eq!(status[missing.as_str()], "missing");
    assert_eq!(status["planted.opus"], "extra");
    let summary = run.summary();
    assert_eq!(
        (
            summary["missing"].as_u64(),
            summary["altered"].as_u64(),
            summary["extra"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let not_a_pull = gcrec(["verify", built.dir.path().to_str().unwrap()]);
    assert_eq!(not_a_pull.code, 2, "{}", not_a_pull.stderr);
}

#[test]
fn a_fresh_output_verifies_even_when_some_recordings_failed() {
    let export = Export::generate(ExportSpec {
        seed: 78,
        days: 2,
        conversations_per_hour: 1,
        ..ExportSpec::default()
    });
    let kinds = [
        Encryption::PgpCv25519,
        Encryption::S3ecV2Rsa,
        Encryption::Plain,
    ];
    let built = EncryptedExport::build(
        export,
        |i| Encryption::nth(&kinds, i),
        |i| matches!(i, 3 | 7 | 16).then_some(Damage::FlipMiddle),
        None,
    );
    let out = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(built.dir.path(), out.path(), &["--json"]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.summary()["counts"]["failed"], 3);
    let dir = out.path().to_str().unwrap();
    let verified = gcrec(["verify", dir, "--json"]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    assert_eq!(verified.summary()["extra"], 0);
    // The failed recordings' sidecars were written, and the manifest lists them.
    let failed_with_outputs = manifest(out.path())
        .values()
        .filter(|e| e["status"] == "failed" && !e["outputs"].as_array().unwrap().is_empty())
        .count();
    assert!(failed_with_outputs >= 1);
    // One byte altered: verify fails.
    let victim = files_under(out.path())
        .into_iter()
        .find(|f| f.ends_with(".opus"))
        .unwrap();
    let mut bytes = std::fs::read(out.path().join(&victim)).unwrap();
    bytes[8] ^= 1;
    std::fs::write(out.path().join(&victim), bytes).unwrap();
    let altered = gcrec(["verify", dir, "--json"]);
    assert_eq!(altered.code, 1);
    assert_eq!(altered.summary()["altered"], 1);
}

#[test]
fn a_recordings_file_from_athena_pulls_exactly_those_and_names_the_missing() {
    let export = Export::generate(ExportSpec {
        seed: 79,
        days: 1,
        hour_step: 2,
        conversations_per_hour: 2,
        ..ExportSpec::default()
    });
    let dir = tempfile::tempdir().unwrap();
    export.write_to_dir(dir.path()).unwrap();
    let media: Vec<_> = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
        .collect();
    let (a, b, c) = (media[0], media[3], media[5]);
    // An Athena result: a quoted header, one column per selected field. One row is an
    // ID nobody has; one recording is named by its conversation, one by its object key.
    let csv = format!(
        "\"recordingId\",\"queueIds\"\n\"{}\",\"[q]\"\n\"{}\",\"[q]\"\n\"{}\",\"[]\"\n\"no-such-recording\",\"[]\"\n",
        a.recording_id.to_uppercase(),
        b.conversation_id,
        c.media_key.as_ref().unwrap(),
    );
    let file = dir.path().join("athena-result.csv");
    std::fs::write(&file, csv).unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(
        dir.path(),
        out.path(),
        &["--recordings-file", file.to_str().unwrap(), "--json"],
    ));
    assert_eq!(run.code, 1, "an entry was not found: {}", run.stderr);
    assert!(
        run.stderr
            .contains("1 of 4 entries of the recordings file were not found: no-such-recording"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.summary()["not_found"],
        serde_json::json!(["no-such-recording"])
    );
    let pulled: BTreeSet<String> = run.ids("recording");
    let expected: BTreeSet<String> = export
        .recordings
        .iter()
        .filter(|r| {
            r.media_key.is_some()
                && (r.recording_id == a.recording_id
                    || r.conversation_id == b.conversation_id
                    || r.media_key == c.media_key)
        })
        .map(|r| r.recording_id.clone())
        .collect();
    assert_eq!(pulled, expected);
    for r in media.iter().filter(|r| expected.contains(&r.recording_id)) {
        let key = r.media_key.as_ref().unwrap();
        assert!(
            std::fs::read(out.path().join(key)).unwrap() == r.media_body(),
            "{key}"
        );
    }
    // The same with every entry found: exit 0.
    std::fs::write(&file, format!("recording_id\n{}\n", a.recording_id)).unwrap();
    let again = run_cmd(&mut pull_local(
        dir.path(),
        tempfile::tempdir().unwrap().path(),
        &["--recordings-file", file.to_str().unwrap()],
    ));
    assert_eq!(again.code, 0, "{}", again.stderr);
}
