//! `s3://` sources end to end: moto (S3 and KMS) on a free loopback port, with
//! `tests/interop/fault_proxy.py` in front where a test needs the failures S3 documents
//! (moto does not enforce SSE-C keys or KMS key state, and never fails on its own).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use common::tools::Moto;
use common::{Run, files_under, gcrec, gcrec_s3};
use gcrec_fetch::source::SseCustomerKey;
use gcrec_testkit::servers::{FaultProxy, Sse, upload_with};
use gcrec_testkit::{Export, ExportSpec, GenRecording};
use serde_json::{Value, json};

const BUCKET: &str = "exports";

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

async fn create_bucket(moto: &Moto) {
    moto.s3_client()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
}

/// Uploads the objects of `export` whose key starts with `prefix`.
async fn upload(moto: &Moto, export: &Export, prefix: &str, sse: &Sse) {
    let objects = export
        .objects()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, b)| (k, b, HashMap::new()));
    upload_with(&moto.s3_client(), BUCKET, sse, objects).await;
}

/// The manifest's recording lines, by key.
fn manifest(out: &Path) -> BTreeMap<String, Value> {
    std::fs::read_to_string(out.join("gcrec-manifest.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "recording")
        .map(|v| (v["key"].as_str().unwrap().to_owned(), v))
        .collect()
}

/// Every media file of `recordings` is in `out`, byte for byte.
fn assert_identical<'a>(out: &Path, recordings: impl IntoIterator<Item = &'a GenRecording>) {
    let mut n = 0;
    for r in recordings {
        let Some(key) = &r.media_key else { continue };
        let got = std::fs::read(out.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(got == r.media_body(), "{key} differs");
        n += 1;
    }
    assert!(n > 0, "nothing compared");
}

/// No temporary file anywhere under `out`.
fn assert_no_temp_files(out: &Path) {
    let temps: Vec<String> = files_under(out)
        .into_iter()
        .filter(|f| f.contains(".gcrec-tmp-"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

fn pull(endpoint: &str, source: &str, out: &Path, extra: &[&str]) -> Run {
    let out = out.display().to_string();
    let mut args = vec!["pull", source, "--out", out.as_str(), "--jobs", "4"];
    args.extend_from_slice(extra);
    gcrec_s3(endpoint, args, &[])
}

fn small_export(orgs: usize) -> Export {
    Export::generate(ExportSpec {
        seed: 44,
        orgs,
        days: 1,
        hour_step: 3,
        ..ExportSpec::default()
    })
}

#[test]
fn sse_s3_kms_and_c_are_recorded_and_expect_sse_is_enforced() {
    let export = small_export(3);
    let moto = Moto::start();
    let rt = runtime();
    let arn = rt.block_on(moto.create_kms_key());
    let sse_c = [7u8; 32];
    rt.block_on(create_bucket(&moto));
    let modes = [Sse::S3, Sse::Kms(arn.clone()), Sse::Customer(sse_c)];
    for (org, sse) in export.orgs.iter().zip(&modes) {
        rt.block_on(upload(&moto, &export, org, sse));
    }
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let md5 = SseCustomerKey::new(&sse_c).md5().to_owned();
    proxy.add(
        json!({"key": format!("/{BUCKET}/{}/", export.orgs[2]), "action": "ssec", "md5": md5}),
    );
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("sse-c.key");
    std::fs::write(&key_file, sse_c).unwrap();
    let wrong_key_file = tmp.path().join("wrong.key");
    std::fs::write(&wrong_key_file, [8u8; 32]).unwrap();
    let key_file = key_file.display().to_string();

    // Listing with pruning over S3: only the partitions of the range are listed.
    let ls = gcrec_s3(
        &proxy.endpoint,
        [
            "ls",
            "--json",
            "s3://exports",
            "--from",
            "2024-03-01T06:00Z",
            "--to",
            "2024-03-01T12:00Z",
        ],
        &[],
    );
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    let expected: std::collections::BTreeSet<String> = export
        .recordings
        .iter()
        .filter(|r| (6..12).contains(&chrono::Timelike::hour(&r.conversation_start)))
        .map(|r| r.recording_id.clone())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(ls.ids("recording"), expected);
    let lists: Vec<String> = proxy
        .log()
        .iter()
        .filter(|e| e["method"] == "GET" && e["path"].as_str().unwrap().contains("list-type=2"))
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    for hour in [
        "hour=00", "hour=03", "hour=12", "hour=15", "hour=18", "hour=21",
    ] {
        assert!(
            !lists.iter().any(|p| p.contains(hour)),
            "{hour} lies outside the range but was listed: {lists:#?}"
        );
    }

    // Each organization pulls with the SSE it has, recorded per object.
    let cases: [(&str, Vec<&str>, Value); 3] = [
        (
            &export.orgs[0],
            vec!["--expect-sse", "AES256"],
            json!({"mode": "aes256", "kms_key_id": null}),
        ),
        (
            &export.orgs[1],
            vec!["--expect-sse"],
            json!({"mode": "aws_kms", "kms_key_id": arn}),
        ),
        (
            &export.orgs[2],
            vec!["--sse-c-key-file", &key_file],
            json!({"mode": "customer_key", "kms_key_id": null}),
        ),
    ];
    let expect_kms = format!("aws:kms:{arn}");
    for (org, mut extra, sse) in cases {
        if extra == ["--expect-sse"] {
            extra.push(&expect_kms);
        }
        let out = tmp.path().join(format!("out-{org}"));
        let run = pull(
            &proxy.endpoint,
            &format!("s3://{BUCKET}/{org}"),
            &out,
            &extra,
        );
        assert_eq!(run.code, 0, "{org}: {}", run.stderr);
        let recordings: Vec<&GenRecording> = export
            .recordings
            .iter()
            .filter(|r| r.media_key.as_deref().is_some_and(|k| k.starts_with(org)))
            .collect();
        assert_identical(&out, recordings.iter().copied());
        let m = manifest(&out);
        assert_eq!(m.len(), recordings.len());
        for entry in m.values() {
            assert_eq!(entry["status"], "ok");
            assert_eq!(entry["sse"], sse, "{}", entry["key"]);
            assert!(
                entry["checked"].as_array().is_some_and(|c| !c.is_empty()),
                "{entry}"
            );
        }
    }

    // --expect-sse fails objects encrypted otherwise, and writes nothing for them.
    let out = tmp.path().join("wrong-expectation");
    let org1 = export.orgs[1].as_str();
    let run = pull(
        &proxy.endpoint,
        &format!("s3://{BUCKET}/{org1}"),
        &out,
        &["--expect-sse", "AES256"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "server-side encryption is aws:kms with key {arn}, expected AES256"
        )),
        "{}",
        run.stderr
    );
    assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
    let run = pull(
        &proxy.endpoint,
        &format!("s3://{BUCKET}/{org1}"),
        &out,
        &[
            "--expect-sse",
            "aws:kms:arn:aws:kms:us-east-1:000000000000:key/another",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("expected aws:kms with key arn:aws:kms:us-east-1:000000000000:key/another"),
        "{}",
        run.stderr
    );

    // SSE-C objects without their key, or with another one: a permission error (3)
    // that says what to give.
    let org2 = export.orgs[2].as_str();
    let out = tmp.path().join("no-sse-c-key");
    let run = pull(&proxy.endpoint, &format!("s3://{BUCKET}/{org2}"), &out, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("encrypted with SSE-C: give its key with --sse-c-key-file"),
        "{}",
        run.stderr
    );
    let wrong = wrong_key_file.display().to_string();
    let run = pull(
        &proxy.endpoint,
        &format!("s3://{BUCKET}/{org2}"),
        &out,
        &["--sse-c-key-file", &wrong],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("is not this object's key"),
        "{}",
        run.stderr
    );
    assert!(files_under(&out).is_empty());
    assert!(
        !run.stderr.contains("CAcHBwcH"),
        "the SSE-C key never appears in messages"
    );
}

/// An export with media large enough to be fetched as ranged parts (with the small part
/// settings the tests pass) beside small ones.
fn mixed_size_export() -> Export {
    Export::generate(ExportSpec {
        seed: 45,
        orgs: 1,
        days: 1,
        hour_step: 2,
        call_bytes: 600 * 1024,
        screen_bytes: 500 * 1024,
        ..ExportSpec::default()
    })
}

const SMALL_PARTS: [&str; 6] = [
    "--part-threshold",
    "262144",
    "--part-size",
    "131072",
    "--max-buffer",
    "1048576",
];

fn media(export: &Export, large: bool) -> Vec<&GenRecording> {
    export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some() && (r.media_body().len() > 262_144) == large)
        .collect()
}

fn key_path(r: &GenRecording) -> String {
    format!("/{BUCKET}/{}", r.media_key.as_ref().unwrap())
}

#[test]
fn throttling_resets_and_truncated_bodies_end_in_identical_bytes() {
    let export = mixed_size_export();
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(create_bucket(&moto));
    rt.block_on(upload(&moto, &export, "", &Sse::None));
    let (large, small) = (media(&export, true), media(&export, false));
    assert!(
        large.len() >= 3 && small.len() >= 3,
        "{} large, {} small",
        large.len(),
        small.len()
    );
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let slow_down = json!({"action": "status", "status": 503, "code": "SlowDown", "message": "Please reduce your request rate."});
    let mut rule = |r: &GenRecording, extra: Value| {
        let mut rule = extra;
        rule["key"] = json!(key_path(r));
        proxy.add(rule);
    };
    // A burst of SlowDown on a small object and on a large one's parts.
    let mut burst = slow_down.clone();
    burst["times"] = json!(3);
    burst["method"] = json!("GET");
    rule(small[0], burst.clone());
    let mut ranged_burst = burst.clone();
    ranged_burst["ranged"] = json!(true);
    rule(large[0], ranged_burst);
    // Connection reset half-way through a body; a body cut short.
    rule(
        small[1],
        json!({"method": "GET", "action": "reset", "fraction": 0.5, "times": 1}),
    );
    rule(
        large[1],
        json!({"method": "GET", "ranged": true, "action": "reset", "fraction": 0.5, "times": 2}),
    );
    rule(
        small[2],
        json!({"method": "GET", "action": "truncate", "fraction": 0.3, "times": 1}),
    );
    rule(
        large[2],
        json!({"method": "GET", "ranged": true, "action": "truncate", "fraction": 0.7, "times": 1}),
    );
    // 500s on HEAD and on the listing.
    rule(
        large[2],
        json!({"method": "HEAD", "action": "status", "status": 500, "code": "InternalError", "message": "We encountered an internal error. Please try again.", "times": 2}),
    );
    proxy.add(json!({"key": "list-type=2", "action": "status", "status": 503, "code": "SlowDown", "message": "Please reduce your request rate.", "times": 2}));

    let tmp = tempfile::tempdir().unwrap();
    let run = pull(&proxy.endpoint, "s3://exports", tmp.path(), &SMALL_PARTS);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_identical(tmp.path(), &export.recordings);
    assert_no_temp_files(tmp.path());
    let log = proxy.log();
    let count = |status: i64| log.iter().filter(|e| e["status"] == status).count();
    assert_eq!(count(503), 8, "every SlowDown was answered and retried");
    assert_eq!(count(500), 2);
    // The reset small body was resumed from where it broke, not restarted.
    let resumed: Vec<&Value> = log
        .iter()
        .filter(|e| {
            e["path"].as_str().unwrap().starts_with(&key_path(small[1])) && !e["range"].is_null()
        })
        .collect();
    assert!(
        resumed
            .iter()
            .any(|e| !e["range"].as_str().unwrap().starts_with("bytes=0-")),
        "{resumed:#?}"
    );
    let m = manifest(tmp.path());
    assert!(m.values().all(|e| e["status"] == "ok"));
    let big = &m[large[0].media_key.as_ref().unwrap()];
    assert_eq!(big["size"], large[0].media_body().len());
}

#[test]
fn corrupted_bytes_and_objects_replaced_mid_download_never_reach_the_output() {
    let export = mixed_size_export();
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(create_bucket(&moto));
    rt.block_on(upload(&moto, &export, "", &Sse::None));
    let (large, small) = (media(&export, true), media(&export, false));
    let mut proxy = FaultProxy::start(&moto.endpoint);
    // One flipped bit in a small body and in a large one's part: the stored checksum
    // (CRC32, which the SDK sends on upload) no longer matches.
    proxy.add(json!({"key": key_path(small[0]), "method": "GET", "action": "flip", "offset": 100}));
    proxy.add(json!({"key": key_path(large[0]), "method": "GET", "ranged": true, "action": "flip", "offset": 5000, "times": 1}));
    // The object is overwritten after its first part was served.
    proxy.add(json!({"key": key_path(large[1]), "method": "GET", "ranged": true, "action": "replace", "body_hex": "00".repeat(300_000), "times": 1}));

    let tmp = tempfile::tempdir().unwrap();
    let mut args = SMALL_PARTS.to_vec();
    args.extend(["--parts-per-object", "1"]);
    let run = pull(&proxy.endpoint, "s3://exports", tmp.path(), &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let m = manifest(tmp.path());
    let bad = [small[0], large[0], large[1]];
    for (r, reason) in bad.iter().zip([
        "integrity check failed",
        "integrity check failed",
        "changed while being read",
    ]) {
        let key = r.media_key.as_ref().unwrap();
        let entry = &m[key];
        assert_eq!(
            entry["status"],
            "failed",
            "{key}: {:#?}",
            proxy
                .log()
                .iter()
                .filter(|e| e["path"].as_str().unwrap().starts_with(&key_path(r)))
                .collect::<Vec<_>>()
        );
        let error = entry["error"].as_str().unwrap();
        assert!(error.contains(reason), "{key}: {error}");
        assert!(!tmp.path().join(key).exists(), "{key} must not be released");
    }
    let good: Vec<&GenRecording> = export
        .recordings
        .iter()
        .filter(|r| !bad.iter().any(|b| b.recording_id == r.recording_id))
        .collect();
    assert_identical(tmp.path(), good);
    assert_no_temp_files(tmp.path());
}

#[test]
fn kms_failures_name_the_object_the_key_and_what_is_missing() {
    let export = small_export(1);
    let moto = Moto::start();
    let rt = runtime();
    let arn = rt.block_on(moto.create_kms_key());
    rt.block_on(create_bucket(&moto));
    rt.block_on(upload(&moto, &export, "", &Sse::Kms(arn.clone())));
    let media: Vec<&GenRecording> = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
        .collect();
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let failures = [
        (
            400,
            "KMS.DisabledException",
            format!("{arn} is disabled."),
            "disabled, missing or not usable",
        ),
        (
            400,
            "KMS.NotFoundException",
            format!("Key '{arn}' does not exist"),
            "disabled, missing or not usable",
        ),
        (
            403,
            "AccessDenied",
            format!(
                "User: arn:aws:iam::123456789012:user/auditor is not authorized to perform: kms:Decrypt on resource: {arn} because no identity-based policy allows the kms:Decrypt action"
            ),
            "the caller needs kms:Decrypt",
        ),
        (
            400,
            "KMS.KMSInvalidStateException",
            format!("{arn} is pending deletion."),
            "disabled, missing or not usable",
        ),
    ];
    for (r, (status, code, message, _)) in media.iter().zip(&failures) {
        proxy.add(json!({"key": key_path(r), "method": "GET", "action": "status", "status": status, "code": code, "message": message}));
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = pull(&proxy.endpoint, "s3://exports", tmp.path(), &[]);
    assert_eq!(run.code, 3, "a permission failure: {}", run.stderr);
    let m = manifest(tmp.path());
    for (r, (_, code, _, hint)) in media.iter().zip(&failures) {
        let key = r.media_key.as_ref().unwrap();
        let error = m[key]["error"].as_str().unwrap();
        for needed in [key.as_str(), code, arn.as_str(), hint] {
            assert!(error.contains(needed), "{key}: {error:?} lacks {needed:?}");
        }
        assert!(!tmp.path().join(key).exists());
    }
    assert_identical(tmp.path(), media[failures.len()..].iter().copied());
}

#[test]
fn a_bucket_in_another_region_is_followed_there() {
    let export = small_export(1);
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(create_bucket(&moto));
    rt.block_on(upload(&moto, &export, "", &Sse::None));
    let mut proxy = FaultProxy::start(&moto.endpoint);
    proxy.add(json!({"action": "redirect", "region": "eu-west-1"}));
    let tmp = tempfile::tempdir().unwrap();
    let run = pull(&proxy.endpoint, "s3://exports", tmp.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_identical(tmp.path(), &export.recordings);
    let log = proxy.log();
    assert_eq!(log[0]["region"], "us-east-1");
    assert_eq!(log[0]["status"], 301);
    let moved = log.iter().filter(|e| e["region"] == "eu-west-1").count();
    assert!(
        moved > 0 && log.iter().filter(|e| e["status"] == 301).count() == 1,
        "{log:#?}"
    );
}

#[test]
fn a_large_object_downloads_as_ranged_parts_byte_identical_in_bounded_memory() {
    // 512 MiB: eight times the byte budget, and small enough that the source, moto's copy
    // and the output never crowd a CI disk (the source is removed once uploaded).
    const SIZE: u64 = 512 << 20;
    let tmp = tempfile::tempdir().unwrap();
    // A plain Ogg-looking body (gcrec passes plain media through), random after the
    // magic so a misplaced part cannot go unnoticed.
    let source = tmp.path().join("big.opus");
    let source_sha = {
        use rand::{RngCore, SeedableRng};
        use std::io::Write;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        use sha2::Digest;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&source).unwrap());
        let mut block = vec![0u8; 1 << 20];
        let mut hasher = sha2::Sha256::new();
        for i in 0..SIZE >> 20 {
            rng.fill_bytes(&mut block);
            if i == 0 {
                block[..4].copy_from_slice(b"OggS");
            }
            hasher.update(&block);
            file.write_all(&block).unwrap();
        }
        file.flush().unwrap();
        hex::encode(hasher.finalize())
    };
    let key = "6e1f0a52-0000-4000-8000-000000000001/year=2024/month=03/day=01/hour=00/\
               conversation_id=6e1f0a52-0000-4000-8000-0000000000c1/6e1f0a52-0000-4000-8000-0000000000e1.opus";
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(async {
        create_bucket(&moto).await;
        gcrec_testkit::servers::put_file(&moto.s3_client(), BUCKET, key, &source).await;
    });
    std::fs::remove_file(&source).unwrap();
    let out = tmp.path().join("out");
    // moto reads the whole object for every ranged GET, so parts are large here to keep
    // the test short; the budget (64 MiB) still allows only two in memory at once.
    let run = pull(
        &moto.endpoint,
        "s3://exports",
        &out,
        &[
            "--json",
            "--part-size",
            "33554432",
            "--max-buffer",
            "67108864",
            "--parts-per-object",
            "4",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = run.summary();
    let rss = summary["peak_rss_bytes"].as_u64().unwrap();
    eprintln!("512 MiB ranged pull: peak RSS {rss} bytes");
    assert!(rss < 128 * 1000 * 1000, "peak RSS {rss} bytes");
    assert_eq!(summary["requests"]["get"], 16, "{summary}");
    let got = out.join(key);
    assert_eq!(std::fs::metadata(&got).unwrap().len(), SIZE);
    let got_sha = {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        std::io::copy(&mut std::fs::File::open(&got).unwrap(), &mut hasher).unwrap();
        hex::encode(hasher.finalize())
    };
    assert_eq!(got_sha, source_sha);
    let m = manifest(&out);
    assert_eq!(m[key]["sha256_plaintext"].as_str().unwrap(), source_sha);
    // Nothing keeps the downloaded bytes' hash here (no bag, no kept copy, no stored
    // SHA-256 checksum): no second pass over the half gigabyte.
    assert!(m[key]["sha256_downloaded"].is_null(), "{}", m[key]);
}

/// Puts a legal hold on every object of one conversation with `gcrec hold --on`.
pub(crate) fn hold_conversation(moto: &Moto, source: &str, conversation: &str) {
    let run = gcrec_s3(
        &moto.endpoint,
        ["hold", source, "--on", "--conversation", conversation],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Creates `bucket` with Object Lock enabled and puts the export in it.
pub(crate) async fn upload_locked(client: &aws_sdk_s3::Client, bucket: &str, export: &Export) {
    client
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    gcrec_testkit::servers::upload(client, bucket, export.objects()).await;
}

#[test]
fn legal_holds_go_on_and_off_version_by_version() {
    let export = small_export(1);
    let moto = Moto::start();
    let rt = runtime();
    let client = moto.s3_client();
    rt.block_on(async {
        upload_locked(&client, "held", &export).await;
        gcrec_testkit::servers::upload(&client, "plain", export.objects()).await;
    });
    let objects = export.objects().count();
    let hold = |args: &[&str]| {
        let mut all = vec!["hold", "s3://held", "--json"];
        all.extend_from_slice(args);
        let run = gcrec_s3(&moto.endpoint, all, &[]);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        run
    };
    let held = |run: &Run| run.summary()["held"].as_u64().unwrap() as usize;
    let status = hold(&["--status"]);
    assert_eq!(held(&status), 0);
    assert_eq!(
        status.summary()["objects"].as_u64().unwrap() as usize,
        objects - export.strays.len()
    );
    // A dry run reports and changes nothing.
    let dry = hold(&["--on", "--dry-run"]);
    assert_eq!(dry.summary()["would_change"], dry.summary()["objects"]);
    assert_eq!(held(&hold(&["--status"])), 0, "--dry-run changed something");
    // On, version by version.
    let on = hold(&["--on"]);
    assert_eq!(on.summary()["changed"], on.summary()["objects"]);
    let again = hold(&["--on"]);
    assert_eq!(again.summary()["already"], again.summary()["objects"]);
    let held_objects: Vec<(String, String)> = hold(&["--status"])
        .json()
        .iter()
        .filter(|v| v["type"] == "object")
        .map(|v| {
            assert_eq!(v["hold_after"], "ON");
            (
                v["key"].as_str().unwrap().to_owned(),
                v["version_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // S3 refuses to delete a held version.
    let (key, version) = &held_objects[0];
    let delete = || {
        rt.block_on(
            client
                .delete_object()
                .bucket("held")
                .key(key)
                .version_id(version)
                .send(),
        )
        .is_ok()
    };
    assert!(!delete(), "a held version was deleted");
    // Off again; then the version can go.
    let off = hold(&[
        "--off",
        "--conversation",
        &export.recordings[0].conversation_id,
    ]);
    assert!(off.summary()["changed"].as_u64().unwrap() >= 1);
    let off_all = hold(&["--off"]);
    assert_eq!(held(&off_all), 0);
    assert!(delete(), "the released version could not be deleted");
    // A bucket without Object Lock is refused plainly, before anything is listed.
    let run = gcrec_s3(&moto.endpoint, ["hold", "s3://plain", "--on"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("does not have S3 Object Lock enabled"),
        "{}",
        run.stderr
    );
}

#[test]
fn holds_through_503_bursts_succeed_on_every_object_with_the_retries_counted() {
    let export = small_export(1);
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(upload_locked(&moto.s3_client(), "held", &export));
    let objects = export.objects().count() - export.strays.len();
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let slow_down = |method: &str, key: &str| {
        json!({"method": method, "key": key, "action": "status", "status": 503, "code": "SlowDown",
               "message": "Please reduce your request rate.", "times": 3})
    };
    proxy.add(slow_down("HEAD", ""));
    proxy.add(slow_down("PUT", "legal-hold"));
    let run = gcrec_s3(
        &proxy.endpoint,
        ["hold", "s3://held", "--on", "--json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = run.summary();
    assert_eq!(summary["objects"].as_u64().unwrap() as usize, objects);
    assert_eq!(summary["changed"], summary["objects"], "every object held");
    assert_eq!(summary["failed"], 0);
    // gcrec's own count: one legal-hold read before and after each change, one set, and
    // the bucket's Object Lock configuration.
    assert_eq!(
        summary["requests"]["legal_hold"].as_u64().unwrap() as usize,
        3 * objects + 1
    );
    // On the wire: the bursts were answered, and retried until every object was held.
    let log = proxy.log();
    let count = |method: &str, needle: &str, status: u64| {
        log.iter()
            .filter(|e| {
                e["method"] == method
                    && e["path"].as_str().unwrap().contains(needle)
                    && e["status"].as_u64() == Some(status)
            })
            .count()
    };
    assert_eq!(count("HEAD", "", 503), 3);
    assert_eq!(count("PUT", "legal-hold", 503), 3);
    assert_eq!(count("PUT", "legal-hold", 200), objects);
    assert_eq!(count("HEAD", "", 200), objects);
    let status = gcrec_s3(
        &moto.endpoint,
        ["hold", "s3://held", "--status", "--json"],
        &[],
    );
    assert_eq!(status.summary()["held"].as_u64().unwrap() as usize, objects);
}

#[test]
fn a_batch_operations_manifest_round_trips_and_its_job_matches_create_job() {
    let export = small_export(1);
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(async {
        upload_locked(&moto.s3_client(), "batch-held", &export).await;
        // Keys S3 Batch Operations needs encoded: a space, a plus, unicode.
        let folder = export.recordings[0].folder.clone();
        gcrec_testkit::servers::upload(
            &moto.s3_client(),
            "batch-held",
            [(format!("{folder}a b+c ü.opus"), b"OggS".to_vec())].into_iter(),
        )
        .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let run = gcrec_s3(
        &moto.endpoint,
        [
            "hold",
            "s3://batch-held",
            "--on",
            "--batch-manifest",
            dir.path().to_str().unwrap(),
            "--batch-role-arn",
            "arn:aws:iam::123456789012:role/batch",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Nothing was held: the job does it.
    let status = gcrec_s3(
        &moto.endpoint,
        ["hold", "s3://batch-held", "--status", "--json"],
        &[],
    );
    assert_eq!(status.summary()["held"], 0);
    let reported: BTreeSet<(String, String, String)> = status
        .json()
        .iter()
        .filter(|v| v["type"] == "object")
        .map(|v| {
            (
                "batch-held".to_owned(),
                v["key"].as_str().unwrap().to_owned(),
                v["version_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let script = r#"
import csv, json, sys, urllib.parse, botocore.session
rows = sorted({(b, urllib.parse.unquote_plus(k), v) for b, k, v in csv.reader(open(sys.argv[1], newline=""))})
print(json.dumps(rows))
job = json.load(open(sys.argv[2]))
model = botocore.session.get_session().get_service_model("s3control").operation_model("CreateJob").input_shape
def check(value, shape, path):
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        for k, v in value.items():
            assert k in shape.members, f"{path}.{k} is not a CreateJob field"
            check(v, shape.members[k], f"{path}.{k}")
        for r in shape.required_members:
            assert r in value, f"{path}.{r} is required"
    elif shape.type_name == "list":
        for i, v in enumerate(value):
            check(v, shape.member, f"{path}[{i}]")
check(job, model, "CreateJob")
"#;
    let out = std::process::Command::new(gcrec_testkit::servers::venv_bin("python"))
        .args(["-c", script])
        .arg(dir.path().join("manifest.csv"))
        .arg(dir.path().join("create-job.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    let rows: BTreeSet<_> = rows.into_iter().collect();
    assert_eq!(rows, reported);
    assert!(rows.iter().any(|(_, k, _)| k.ends_with("a b+c ü.opus")));
    let job: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("create-job.json")).unwrap())
            .unwrap();
    assert_eq!(
        job["Operation"]["S3PutObjectLegalHold"]["LegalHold"]["Status"],
        "ON"
    );
    assert_eq!(job["AccountId"], "123456789012");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("manifest.csv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn an_evidence_bag_validates_with_bagit_py_and_an_altered_byte_fails_both_checks() {
    let export = Export::generate(ExportSpec {
        seed: 46,
        days: 1,
        hour_step: 2,
        anomaly_every: 4,
        ..ExportSpec::default()
    });
    let moto = Moto::start();
    let rt = runtime();
    let client = moto.s3_client();
    rt.block_on(upload_locked(&client, "evidence", &export));
    let held = &export.recordings[0];
    hold_conversation(&moto, "s3://evidence", &held.conversation_id);
    let tmp = tempfile::tempdir().unwrap();
    let bag = tmp.path().join("bag");
    let bag_arg = bag.display().to_string();
    let run = gcrec_s3(
        &moto.endpoint,
        [
            "pull",
            "s3://evidence",
            "--bag",
            &bag_arg,
            "--matter",
            "MATTER-2024-017",
            "--organization",
            "Acme Legal",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bagit = |dir: &Path| {
        std::process::Command::new(gcrec_testkit::servers::venv_bin("bagit.py"))
            .arg("--validate")
            .arg(dir)
            .output()
            .unwrap()
    };
    let validated = bagit(&bag);
    assert!(
        validated.status.success(),
        "bagit.py: {}",
        String::from_utf8_lossy(&validated.stderr)
    );
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    for needed in [
        "External-Identifier: MATTER-2024-017",
        "Source-Organization: Acme Legal",
        "Payload-Oxum: ",
        "Bagging-Date: ",
        "Bag-Software-Agent: gcrec ",
    ] {
        assert!(info.contains(needed), "{info}");
    }
    // Chain of custody: who (STS), and each object's legal hold when it was extracted.
    let custody: Value =
        serde_json::from_slice(&std::fs::read(bag.join("chain-of-custody.json")).unwrap()).unwrap();
    assert!(
        custody["who"]["aws_caller_identity"]["arn"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:aws:")),
        "{custody}"
    );
    let holds: BTreeMap<String, String> = custody["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_owned(),
                o["legal_hold_at_extraction"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(holds[held.media_key.as_ref().unwrap()], "ON");
    assert!(holds.values().any(|h| h == "OFF"));
    // A bag keeps the downloaded bytes' hash of every media object (custody).
    let media: Vec<&Value> = custody["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "ok")
        .collect();
    assert!(!media.is_empty());
    assert!(
        media.iter().all(|o| o["sha256_downloaded"]
            .as_str()
            .is_some_and(|h| h.len() == 64)),
        "{custody}"
    );
    // The load file round-trips every sidecar field, unknown ones included.
    let mut reader = csv::Reader::from_path(bag.join("load-file.csv")).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let row: BTreeMap<&str, &str> = header
            .iter()
            .map(String::as_str)
            .zip(record.iter())
            .collect();
        let sidecar_path = row["sidecar"];
        if sidecar_path.is_empty() {
            continue;
        }
        let Ok(Value::Object(sidecar)) =
            serde_json::from_slice::<Value>(&std::fs::read(bag.join(sidecar_path)).unwrap())
        else {
            continue; // an invalid sidecar: its fields cannot be loaded
        };
        for (field, value) in &sidecar {
            let expected = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            // Cells a spreadsheet would run as formulas are defused with a leading `'`.
            let expected = if expected.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{expected}")
            } else {
                expected
            };
            assert_eq!(row[field.as_str()], expected, "{field} of {sidecar_path}");
        }
        rows += 1;
    }
    assert!(rows >= 5, "{rows} rows checked");
    assert!(
        header.iter().any(|h| h == "mediaSubtype"),
        "unknown sidecar fields are columns too: {header:?}"
    );
    let exceptions = std::fs::read_to_string(bag.join("exceptions.csv")).unwrap();
    assert!(exceptions.contains("sidecar_without_media"), "{exceptions}");
    assert!(exceptions.contains("media_without_sidecar"), "{exceptions}");
    assert_eq!(gcrec(["verify", &bag_arg]).code, 0);
    // One payload byte altered: both validators fail.
    let payload = bag.join(
        held.media_key
            .as_ref()
            .map(|k| format!("data/{k}"))
            .unwrap(),
    );
    let mut bytes = std::fs::read(&payload).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&payload, bytes).unwrap();
    assert!(
        !bagit(&bag).status.success(),
        "bagit.py accepted an altered payload"
    );
    let verify = gcrec(["verify", &bag_arg]);
    assert_eq!(verify.code, 1, "{}", verify.stderr);
    assert!(verify.stdout.contains("altered"), "{}", verify.stdout);
}

#[test]
fn athena_ddl_projects_partitions_as_the_export_spells_them() {
    let moto = Moto::start();
    let rt = runtime();
    for (bucket, padding, digits) in [
        ("athena-padded", gcrec_testkit::Padding::Padded, true),
        ("athena-unpadded", gcrec_testkit::Padding::Unpadded, false),
    ] {
        let export = Export::generate(ExportSpec {
            seed: 88,
            days: 2,
            hour_step: 5,
            padding,
            root: "exports/genesys/".into(),
            ..ExportSpec::default()
        });
        rt.block_on(gcrec_testkit::servers::upload(
            &moto.s3_client(),
            bucket,
            export.objects(),
        ));
        let run = gcrec_s3(
            &moto.endpoint,
            ["athena-ddl", &format!("s3://{bucket}")],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let ddl = &run.stdout;
        assert!(ddl.contains(&format!(
            "'storage.location.template' = 's3://{bucket}/exports/genesys/${{organization_id}}/year=${{year}}/month=${{month}}/day=${{day}}/hour=${{hour}}/'"
        )), "{ddl}");
        assert_eq!(
            ddl.contains("'projection.month.digits' = '2'"),
            digits,
            "{ddl}"
        );
        assert!(
            ddl.contains(&format!(
                "'projection.organization_id.values' = '{}'",
                export.orgs.join(",")
            )),
            "{ddl}"
        );
        assert!(ddl.contains("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'"));
    }
}

#[test]
fn jobs_auto_backs_off_when_the_store_throttles_and_still_pulls_every_byte() {
    let export = Export::generate(ExportSpec {
        seed: 46,
        days: 1,
        hour_step: 1,
        conversations_per_hour: 2,
        ..ExportSpec::default()
    });
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(create_bucket(&moto));
    rt.block_on(upload(&moto, &export, "", &Sse::None));
    let mut proxy = FaultProxy::start(&moto.endpoint);
    // A burst of SlowDown on GETs: at most five, so no single request runs out of its
    // six attempts however they interleave.
    proxy.add(
        json!({"method": "GET", "action": "status", "status": 503, "code": "SlowDown",
        "message": "Please reduce your request rate.", "times": 5}),
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().display().to_string();
    let run = gcrec_s3(
        &proxy.endpoint,
        [
            "pull",
            "s3://exports",
            "--out",
            &out,
            "--jobs",
            "auto",
            "-v",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_identical(tmp.path(), &export.recordings);
    assert_no_temp_files(tmp.path());
    let log = proxy.log();
    assert_eq!(log.iter().filter(|e| e["status"] == 503).count(), 5);
    let run_line: Value = std::fs::read_to_string(tmp.path().join("gcrec-manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|v| v["type"] == "run")
        .unwrap();
    let jobs = &run_line["jobs"];
    assert_eq!(jobs["auto"], true, "{run_line}");
    assert!(jobs["backoffs"].as_u64().unwrap() >= 1, "{jobs}");
    assert!(jobs["last"].as_u64().unwrap() >= 4, "{jobs}");
    assert!(run.stderr.contains("jobs auto:"), "{}", run.stderr);
    // A bad value is a usage error naming what to give.
    let bad = gcrec_s3(
        &proxy.endpoint,
        ["pull", "s3://exports", "--out", &out, "--jobs", "lots"],
        &[],
    );
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("or auto"), "{}", bad.stderr);
}
