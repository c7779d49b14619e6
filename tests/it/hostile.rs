//! Hostile and broken inputs (issue #17): a regression test for each numbered item —
//! planted keys in a local export, a misbehaving S3 endpoint on 127.0.0.1 (the fault
//! proxy: hangs, trickles, looping tokens, cut XML), crafted OpenPGP messages, links in
//! the output directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use crate::pull::{key_args, keys, local_export, manifest, pull_local, run_cmd};

use common::tools::{Moto, run_ok, tool};
use common::{files_under, gcrec, gcrec_s3, generated};
use gcrec_testkit::ExportSpec;
use gcrec_testkit::servers::FaultProxy;
use serde_json::{Value, json};

fn small(seed: u64) -> (tempfile::TempDir, gcrec_testkit::Export) {
    generated(ExportSpec {
        seed,
        days: 1,
        hour_step: 4,
        conversations_per_hour: 2,
        ..ExportSpec::default()
    })
}

/// A media key's folder in an export, for planting files beside real ones.
fn first_folder(export: &gcrec_testkit::Export) -> String {
    export.recordings[0].folder.clone()
}

fn plant(dir: &Path, key: &str, body: &[u8]) -> PathBuf {
    let path = dir.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, body).unwrap();
    path
}

// 1. A parser error never quotes a secret key (or floods the terminal).
#[test]
fn a_malformed_secret_key_is_never_printed() {
    let armored = std::fs::read_to_string(keys().join("pgp-rsa3072.sec.asc")).unwrap();
    // The blank line after the armor header removed: rPGP's error quoted the key body.
    let mut lines: Vec<&str> = armored.lines().collect();
    let blank = lines.iter().position(|l| l.is_empty()).unwrap();
    lines.remove(blank);
    let secret_line = lines[blank];
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("broken.asc");
    std::fs::write(&key, lines.join("\n")).unwrap();
    for args in [
        vec!["keys", "inspect", key.to_str().unwrap()],
        vec![
            "decrypt",
            "x.pgp",
            "--out",
            "/tmp/never",
            "--key",
            key.to_str().unwrap(),
        ],
    ] {
        let run = gcrec(&args);
        assert_ne!(run.code, 0);
        assert!(!run.stderr.contains(&secret_line[..20]), "{}", run.stderr);
        assert!(
            !run.stderr.contains("[45, 45") && !run.stderr.contains(", 70, "),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.len() < 2000,
            "{} bytes of error",
            run.stderr.len()
        );
    }
    // A 1 MB armor header line: a short error, not megabytes.
    let huge = format!(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: {}\n\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n",
        "A".repeat(1 << 20)
    );
    std::fs::write(&key, huge).unwrap();
    let run = gcrec(["keys", "inspect", key.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.len() < 2000,
        "{} bytes of error",
        run.stderr.len()
    );
}

// 2. A key cannot replace the manifest; verify never reads outside DIR.
#[test]
fn a_key_named_like_the_manifest_cannot_replace_it_and_verify_stays_inside() {
    let (dir, export) = small(171);
    let folder = first_folder(&export);
    let forged = json!({"type": "recording", "key": "x", "status": "ok", "source": "file:///x",
        "organization_id": "o", "conversation_id": "c", "recording_id": "r",
        "outputs": [{"path": "../../../etc/hostname", "size": 1, "sha256": "00"}]});
    plant(
        dir.path(),
        &format!("{folder}gcrec-manifest.jsonl"),
        format!("{forged}\n").as_bytes(),
    );
    let out = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(
        dir.path(),
        out.path(),
        &["--layout", "flat", "--json"],
    ));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("reserved for gcrec's own files"),
        "{}",
        run.stderr
    );
    let m = std::fs::read_to_string(out.path().join("gcrec-manifest.jsonl")).unwrap();
    assert!(!m.contains("etc/hostname"), "the manifest was replaced");
    assert!(manifest(out.path()).len() >= export.recordings.len() - 1);
    // A forged line planted by hand: verify reports it missing, never reads it.
    let mut text = m.clone();
    text.push_str(&format!("{forged}\n"));
    std::fs::write(out.path().join("gcrec-manifest.jsonl"), text).unwrap();
    let run = gcrec(["verify", out.path().to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 1);
    let line = run
        .json()
        .into_iter()
        .find(|v| v["path"] == "../../../etc/hostname")
        .unwrap();
    assert_eq!(line["status"], "missing");
}

// 3. --out inside or equal to SOURCE is refused.
#[test]
fn the_output_may_not_overlap_the_source() {
    let (dir, export) = small(172);
    for out in [dir.path().join("out"), dir.path().to_owned()] {
        let run = run_cmd(&mut pull_local(dir.path(), &out, &[]));
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains("overlap"), "{}", run.stderr);
    }
    assert!(!dir.path().join("out").exists());
    assert!(!dir.path().join("gcrec-manifest.jsonl").exists());
    // Beside the folder read is fine, even under the same bucket root.
    let org = dir.path().join(&export.recordings[0].org);
    let beside = dir.path().join("plain");
    let run = run_cmd(&mut pull_local(&org, &beside, &[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = gcrec([
        "decrypt",
        dir.path().to_str().unwrap(),
        "--out",
        dir.path().join("plain").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

fn gpg_encrypt(input: &Path, output: &Path, extra: &[&str]) {
    let home = common::tools::gnupg_home(&keys());
    run_ok(
        Command::new(tool("gpg", "apt-get install gnupg"))
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--yes", "--trust-model", "always", "--encrypt"])
            .args(extra)
            .args(["--recipient", "cv25519@example.invalid", "--output"])
            .arg(output)
            .arg(input),
    );
}

// 4. A decompression bomb is refused; nothing is written.
#[test]
fn a_decompression_bomb_is_refused() {
    let (dir, export) = small(173);
    let r = export
        .recordings
        .iter()
        .find(|r| r.media_key.is_some() && r.has_valid_sidecar())
        .unwrap();
    let media = r.media_key.clone().unwrap();
    let zeros = dir.path().join("zeros");
    std::fs::write(&zeros, vec![0u8; 64 << 20]).unwrap();
    std::fs::remove_file(dir.path().join(&media)).unwrap();
    let bomb = dir.path().join(format!("{media}.pgp"));
    gpg_encrypt(&zeros, &bomb, &["--compress-algo", "zlib", "-z", "9"]);
    std::fs::remove_file(&zeros).unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let out = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(dir.path(), out.path(), &["--json"]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("expansion limit"), "{}", run.stderr);
    assert!(run.stderr.contains("--max-expansion"), "{}", run.stderr);
    assert!(!out.path().join(&media).exists());
    assert!(
        files_under(out.path())
            .iter()
            .all(|f| !f.contains(".gcrec-tmp-"))
    );
}

fn moto_with(export: &gcrec_testkit::Export, bucket: &str) -> Moto {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(gcrec_testkit::servers::upload(
        &moto.s3_client(),
        bucket,
        export.objects(),
    ));
    moto
}

// 5 and 16. A silent endpoint, a trickling body: retried, never hung.
#[test]
fn hung_requests_and_trickling_bodies_are_given_up_and_retried() {
    let (_, export) = small(174);
    let moto = moto_with(&export, "hostile-export");
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let media = export
        .recordings
        .iter()
        .find_map(|r| r.media_key.clone())
        .unwrap();
    proxy.add(json!({"method": "GET", "query": "list-type=2", "action": "hang", "times": 1}));
    proxy.add(json!({"method": "GET", "key": media, "action": "hang", "times": 1}));
    let other = export
        .recordings
        .iter()
        .rev()
        .find_map(|r| r.media_key.clone())
        .unwrap();
    proxy.add(json!({"method": "GET", "key": other, "action": "trickle", "bytes_per_second": 16, "times": 1}));
    let out = tempfile::tempdir().unwrap();
    let run = gcrec_s3(
        &proxy.endpoint,
        [
            "pull",
            "s3://hostile-export",
            "--out",
            out.path().to_str().unwrap(),
            "--timeout",
            "2",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for key in [&media, &other] {
        let r = export
            .recordings
            .iter()
            .find(|r| r.media_key.as_ref() == Some(key))
            .unwrap();
        assert!(
            std::fs::read(out.path().join(key)).unwrap() == r.media_body(),
            "{key}"
        );
    }
    let hung = proxy.log().iter().filter(|e| e["status"] == "hung").count();
    assert_eq!(hung, 2);
}

fn list_xml(keys: &[&str], next: Option<&str>, key_count: Option<usize>) -> String {
    let contents: String = keys
        .iter()
        .map(|k| format!("<Contents><Key>{k}</Key><Size>4</Size><ETag>\"x\"</ETag></Contents>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>hostile-export</Name><Prefix></Prefix><KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>{}</IsTruncated>{contents}{}</ListBucketResult>",
        key_count.unwrap_or(keys.len()),
        next.is_some(),
        next.map(|t| format!("<NextContinuationToken>{t}</NextContinuationToken>"))
            .unwrap_or_default()
    )
}

// 5 and 6. A repeating continuation token and a cut or short answer end the listing
// with an error; nothing loops, nothing is taken for complete.
#[test]
fn looping_tokens_and_truncated_listings_are_errors() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        moto.s3_client()
            .create_bucket()
            .bucket("hostile-export")
            .send()
            .await
            .unwrap();
    });
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let org = "o/year=2024/month=03/day=01/hour=00/conversation_id=c/";
    let cases = [
        (
            list_xml(&[&format!("{org}r.opus")], Some("again"), None),
            "continuation token",
        ),
        (
            {
                let whole = list_xml(
                    &[&format!("{org}r1.opus"), &format!("{org}r2.opus")],
                    None,
                    None,
                );
                whole[..whole.find("r2.op").unwrap()].to_owned()
            },
            "cut short",
        ),
        (
            list_xml(&[&format!("{org}r1.opus")], None, Some(3)),
            "announces 3 entries",
        ),
    ];
    for (body, expected) in cases {
        proxy.clear();
        proxy.add(json!({"method": "GET", "query": "list-type=2", "action": "body", "body": body}));
        let run = gcrec_s3(
            &proxy.endpoint,
            ["ls", "s3://hostile-export", "--json"],
            &[],
        );
        assert_eq!(run.code, 1, "{expected}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
        let lists = proxy.log().len();
        assert!(lists <= 12, "{expected}: {lists} requests");
    }
}

// 7. The sweep never deletes real output or user files.
#[test]
fn the_sweep_only_removes_other_runs_temporary_files() {
    let (dir, export) = small(177);
    let folder = first_folder(&export);
    let planted = plant(
        dir.path(),
        &format!("{folder}r.gcrec-tmp-1.opus"),
        b"OggS planted",
    );
    let out = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(dir.path(), out.path(), &[]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("reserved for gcrec's own files"),
        "{}",
        run.stderr
    );
    assert!(planted.exists());
    // A directory the next run writes to again (one of its outputs is gone).
    let victim = export.recordings[0]
        .media_key
        .clone()
        .or(export.recordings[0].sidecar_key.clone())
        .unwrap();
    std::fs::remove_file(out.path().join(&victim)).unwrap();
    let user = plant(
        out.path(),
        &format!("{folder}.notes.gcrec-tmp-keep.txt"),
        b"mine",
    );
    let stale = plant(
        out.path(),
        &format!("{folder}.x.opus.gcrec-tmp-0badc0de-0000000000000007"),
        b"left",
    );
    let rerun = run_cmd(&mut pull_local(
        dir.path(),
        out.path(),
        &["--verify-existing"],
    ));
    assert!(user.exists(), "a user file was swept");
    assert!(
        !stale.exists(),
        "an earlier run's temporary file stayed: {} {victim} {:?}",
        rerun.stderr,
        files_under(out.path())
    );
}

// 8. Kept encrypted copies never collide with a real `encrypted/` folder.
#[test]
fn kept_copies_never_collide_with_an_encrypted_folder_in_the_export() {
    let (dir, export) = generated(ExportSpec {
        seed: 178,
        days: 1,
        hour_step: 6,
        root: "encrypted/".into(),
        ..ExportSpec::default()
    });
    let out = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(
        dir.path(),
        out.path(),
        &["--keep-encrypted", "--json"],
    ));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("reserved"), "{}", run.stderr);
    assert_eq!(run.summary()["counts"]["pulled"], 0);
    // Without kept copies the folder is an ordinary one.
    let plain = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(dir.path(), plain.path(), &[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(export.recordings.iter().any(|r| {
        r.media_key
            .as_ref()
            .is_some_and(|k| plain.path().join(k).is_file())
    }));
}

// 9. Resume answers the request, not the directory.
#[test]
fn resume_pulls_again_for_another_source_or_layout_or_kept_copies() {
    let built = local_export();
    let out = tempfile::tempdir().unwrap();
    let all = |run: &common::Run| run.summary()["counts"]["pulled"].as_u64().unwrap();
    let first = run_cmd(&mut pull_local(built.dir.path(), out.path(), &["--json"]));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let n = all(&first);
    // Another source with the same keys.
    let copy = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", built.dir.path().display()))
            .arg(copy.path()),
    );
    let other = run_cmd(&mut pull_local(copy.path(), out.path(), &["--json"]));
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert_eq!(all(&other), n, "another source is pulled again");
    // Kept copies asked for now.
    let kept = run_cmd(&mut pull_local(
        copy.path(),
        out.path(),
        &["--json", "--keep-encrypted"],
    ));
    assert_eq!(all(&kept), n);
    assert!(out.path().join("encrypted").is_dir());
    // The same request again: nothing to do.
    let again = run_cmd(&mut pull_local(
        copy.path(),
        out.path(),
        &["--json", "--keep-encrypted"],
    ));
    assert_eq!(all(&again), 0);
}

// 10. A second sidecar that disagrees, or a sidecar with a field twice, is reported.
#[test]
fn shadowing_sidecars_and_duplicate_fields_are_reported_not_used() {
    let (dir, export) = small(180);
    let r = export
        .recordings
        .iter()
        .find(|r| r.media_key.is_some() && r.has_valid_sidecar())
        .unwrap();
    let sidecar_key = r.sidecar_key.clone().unwrap();
    let real = std::fs::read_to_string(dir.path().join(&sidecar_key)).unwrap();
    let mut fake: Value = serde_json::from_str(&real).unwrap();
    fake["aniNormalized"] = json!("tel:+19995550000");
    plant(
        dir.path(),
        &format!("{}{}.x_metadata.json", r.folder, r.recording_id),
        fake.to_string().as_bytes(),
    );
    let run = gcrec([
        "ls",
        dir.path().to_str().unwrap(),
        "--json",
        "--ani",
        "+19995550000",
        "--include-unchecked",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.ids("recording").is_empty(),
        "the shadow sidecar was believed"
    );
    let unchecked: Vec<Value> = run
        .json()
        .into_iter()
        .filter(|v| v["type"] == "unchecked")
        .collect();
    assert!(
        unchecked.iter().any(|v| v["metadata_error"]
            .as_str()
            .unwrap_or_default()
            .contains("disagree")),
        "{}",
        run.stdout
    );
    // A field twice in one sidecar.
    let r2 = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some() && r.has_valid_sidecar())
        .nth(1)
        .unwrap();
    let key2 = r2.sidecar_key.clone().unwrap();
    let body = std::fs::read_to_string(dir.path().join(&key2)).unwrap();
    let doubled = body.replacen('{', "{\"mediaType\": \"Screen\",", 1);
    std::fs::write(dir.path().join(&key2), doubled).unwrap();
    let run = gcrec([
        "ls",
        dir.path().to_str().unwrap(),
        "--json",
        "--recording",
        &r2.recording_id,
    ]);
    let v = run
        .json()
        .into_iter()
        .find(|v| v["type"] == "recording")
        .unwrap();
    assert!(
        v["metadata_error"].as_str().unwrap().contains("twice"),
        "{v}"
    );
    // A sidecar with a byte-order mark is fine; one that names another recording is not.
    std::fs::write(
        dir.path().join(&key2),
        [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat(),
    )
    .unwrap();
    let run = gcrec([
        "ls",
        dir.path().to_str().unwrap(),
        "--json",
        "--recording",
        &r2.recording_id,
    ]);
    let v = run
        .json()
        .into_iter()
        .find(|v| v["type"] == "recording")
        .unwrap();
    assert!(v["metadata_error"].is_null(), "{v}");
    std::fs::write(
        dir.path().join(&key2),
        body.replace(&r2.recording_id, "someone-else"),
    )
    .unwrap();
    let run = gcrec([
        "ls",
        dir.path().to_str().unwrap(),
        "--json",
        "--recording",
        &r2.recording_id,
    ]);
    let v = run
        .json()
        .into_iter()
        .find(|v| v["type"] == "recording")
        .unwrap();
    assert!(
        v["metadata_error"]
            .as_str()
            .unwrap()
            .contains("recordingId"),
        "{v}"
    );
}

// 11. Plain media named as encrypted is a substitution; --require-encryption refuses any.
#[test]
fn plaintext_substitution_and_required_encryption() {
    let (dir, export) = small(181);
    let r = export
        .recordings
        .iter()
        .find(|r| r.media_key.is_some() && r.has_valid_sidecar())
        .unwrap();
    let media = r.media_key.clone().unwrap();
    std::fs::rename(
        dir.path().join(&media),
        dir.path().join(format!("{media}.pgp")),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(dir.path(), out.path(), &[]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("possible substitution"),
        "{}",
        run.stderr
    );
    assert!(!out.path().join(&media).exists());
    let strict = tempfile::tempdir().unwrap();
    let run = run_cmd(&mut pull_local(
        dir.path(),
        strict.path(),
        &["--require-encryption", "--json"],
    ));
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("--require-encryption"),
        "{}",
        run.stderr
    );
    assert_eq!(run.summary()["counts"]["pulled"], 0);
}

/// The packets of a binary OpenPGP message: (header+body) byte ranges at the top level.
fn packets(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        let (header, len) = if b & 0x40 != 0 {
            let l0 = bytes[at + 1] as usize;
            match l0 {
                0..=191 => (2, l0),
                192..=223 => (3, ((l0 - 192) << 8) + bytes[at + 2] as usize + 192),
                255 => (
                    6,
                    u32::from_be_bytes(bytes[at + 2..at + 6].try_into().unwrap()) as usize,
                ),
                _ => (2, bytes.len() - at - 2), // partial: the rest
            }
        } else {
            match b & 3 {
                0 => (2, bytes[at + 1] as usize),
                1 => (
                    3,
                    u16::from_be_bytes([bytes[at + 1], bytes[at + 2]]) as usize,
                ),
                2 => (
                    5,
                    u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize,
                ),
                _ => (1, bytes.len() - at - 1),
            }
        };
        let end = (at + header + len).min(bytes.len());
        out.push(at..end);
        at = end;
    }
    out
}

// 13. A message with thousands of recipients or of armor header lines costs nothing.
#[test]
fn crafted_openpgp_messages_are_refused_cheaply() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("r.opus");
    std::fs::write(&plain, b"OggS a recording").unwrap();
    let message = dir.path().join("one.pgp");
    gpg_encrypt(&plain, &message, &[]);
    let bytes = std::fs::read(&message).unwrap();
    let p = packets(&bytes);
    let (esk, rest) = (&bytes[p[0].clone()], &bytes[p[0].end..]);
    let mut many = Vec::new();
    for _ in 0..2000 {
        many.extend_from_slice(esk);
    }
    many.extend_from_slice(rest);
    std::fs::write(dir.path().join("many.pgp"), &many).unwrap();
    let mut armor = String::from("-----BEGIN PGP MESSAGE-----\n");
    for _ in 0..200_000 {
        armor.push_str("Comment: x\n");
    }
    armor.push_str("\nhF4DAAAAAAAAAAASAQdA\n-----END PGP MESSAGE-----\n");
    std::fs::write(dir.path().join("headers.asc"), armor).unwrap();
    let out = dir.path().join("out");
    let mut args = vec![
        "decrypt".to_owned(),
        dir.path().join("many.pgp").display().to_string(),
        dir.path().join("headers.asc").display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(key_args());
    let started = std::time::Instant::now();
    let run = gcrec(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("2000 recipients"), "{}", run.stderr);
    assert!(run.stderr.contains("armor header lines"), "{}", run.stderr);
    assert!(
        run.stderr.len() < 4000,
        "{} bytes of errors",
        run.stderr.len()
    );
    // Not a speed target: a bound that tells "refused up front" from "tried 2000 keys".
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

// 14. A key with a control character is skipped and counted, not fatal.
#[test]
fn a_key_with_a_control_character_is_skipped_not_fatal() {
    let (_, export) = small(184);
    let moto = moto_with(&export, "hostile-export");
    let folder = first_folder(&export);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(gcrec_testkit::servers::upload(
        &moto.s3_client(),
        "hostile-export",
        [(format!("{folder}bad\u{1}name.opus"), b"OggS".to_vec())].into_iter(),
    ));
    let run = gcrec_s3(&moto.endpoint, ["ls", "s3://hostile-export", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary()["skipped"]["unsafe"], 1, "{}", run.stdout);
    assert_eq!(
        run.ids("recording").len(),
        export
            .recordings
            .iter()
            .filter(|r| r.media_key.is_some() || r.sidecar_key.is_some())
            .count()
    );
}

// 15. Links inside the output directory are refused, never followed.
#[test]
fn links_inside_the_output_are_not_followed() {
    let (dir, export) = small(185);
    let out = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let org = &export.recordings[0].org;
    std::os::unix::fs::symlink(elsewhere.path(), out.path().join(org)).unwrap();
    let run = run_cmd(&mut pull_local(dir.path(), out.path(), &[]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert!(
        files_under(elsewhere.path()).is_empty(),
        "files landed outside"
    );
    // The manifest as a link: refused before anything is done.
    let out2 = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("target");
    std::fs::write(&target, b"").unwrap();
    std::os::unix::fs::symlink(&target, out2.path().join("gcrec-manifest.jsonl")).unwrap();
    let run = run_cmd(&mut pull_local(dir.path(), out2.path(), &[]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(std::fs::read(&target).unwrap(), b"");
}

// 16. The smaller ones.
#[test]
fn unbounded_files_lax_keys_unwritable_outputs_and_tokens_in_urls() {
    let (dir, _) = small(186);
    let out = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--key", "/dev/zero"),
        ("--passphrase-file", "/dev/zero"),
        ("--conversations-file", "/dev/zero"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
        cmd.args(["pull"])
            .arg(dir.path())
            .arg("--out")
            .arg(out.path())
            .args([flag, value]);
        if flag != "--key" {
            cmd.args([
                "--key",
                keys().join("pgp-cv25519.sec.asc").to_str().unwrap(),
            ]);
        }
        common::no_aws(&mut cmd);
        let run = run_cmd(&mut cmd);
        assert_eq!(run.code, 2, "{flag}: {}", run.stderr);
    }
    // A key others can read: a warning.
    let lax = tempfile::tempdir().unwrap();
    let key = lax.path().join("k.asc");
    std::fs::copy(keys().join("pgp-cv25519.sec.asc"), &key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
    cmd.arg("pull")
        .arg(dir.path())
        .arg("--out")
        .arg(out.path().join("a"))
        .arg("--key")
        .arg(&key)
        .arg("--passphrase-file")
        .arg(keys().join("passphrase.txt"))
        .args(["--endpoint-url", "http://127.0.0.1:9/?token=s3cr3t"]);
    common::no_aws(&mut cmd);
    let run = run_cmd(&mut cmd);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("can be read by other users"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("k.asc"), "{}", run.stderr);
    let m = std::fs::read_to_string(out.path().join("a/gcrec-manifest.jsonl")).unwrap();
    assert!(!m.contains("s3cr3t"), "a token reached the manifest");
    // An output that cannot be created: a usage error.
    let run = run_cmd(&mut pull_local(dir.path(), Path::new("/dev/null/out"), &[]));
    assert_eq!(run.code, 2, "{}", run.stderr);
}
