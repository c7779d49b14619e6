//! Operator experience (issue #19): completions, the man page, configuration from the
//! environment, progress lines for job logs.

use std::process::Command;

use crate::common;
use crate::pull::{key_args, local_export, pull_local, run_cmd};

use common::tools::{Moto, tool};
use common::{gcrec, gcrec_s3, generated};
use gcrec_testkit::ExportSpec;
use gcrec_testkit::servers::FaultProxy;
use serde_json::{Value, json};

#[test]
fn completion_scripts_load_and_the_man_page_renders() {
    let bin = env!("CARGO_BIN_EXE_gcrec");
    let bash = Command::new(tool("bash", "apt-get install bash"))
        .args([
            "-c",
            &format!("source <({bin} completions bash) && complete -p gcrec"),
        ])
        .output()
        .unwrap();
    assert!(
        bash.status.success(),
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );
    assert!(String::from_utf8_lossy(&bash.stdout).contains("gcrec"));
    for shell in ["zsh", "fish", "powershell"] {
        let run = gcrec(["completions", shell]);
        assert_eq!(run.code, 0);
        assert!(run.stdout.contains("pull"), "{shell}");
    }
    let page = gcrec(["man"]);
    assert_eq!(page.code, 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gcrec.1");
    std::fs::write(&file, &page.stdout).unwrap();
    let shown = Command::new(tool("man", "apt-get install man-db"))
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let text = String::from_utf8_lossy(&shown.stdout);
    for needed in ["GCREC PULL", "--max-expansion", "GCREC_JOBS"] {
        assert!(text.contains(needed), "{needed} not in the rendered page");
    }
}

#[test]
fn options_come_from_the_environment_and_the_flag_wins() {
    let (dir, export) = generated(ExportSpec {
        seed: 190,
        days: 2,
        hour_step: 6,
        ..ExportSpec::default()
    });
    let src = dir.path().to_str().unwrap();
    let ls = |env: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
        cmd.args(["ls", src, "--json"]).args(extra);
        common::no_aws(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_cmd(&mut cmd)
    };
    let all = ls(&[], &[]).ids("recording").len();
    let second_day = ls(&[("GCREC_FROM", "2024-03-02")], &[]);
    assert_eq!(second_day.code, 0, "{}", second_day.stderr);
    let n = second_day.ids("recording").len();
    assert!(n > 0 && n < all, "GCREC_FROM applied: {n} of {all}");
    let flag = ls(&[("GCREC_FROM", "2024-03-02")], &["--from", "2024-03-01"]);
    assert_eq!(flag.ids("recording").len(), all, "the flag wins");
    let bad = ls(&[("GCREC_JOBS", "0")], &[]);
    assert_eq!(
        bad.code, 2,
        "GCREC_JOBS=0 is read and refused: {}",
        bad.stderr
    );
    assert_eq!(ls(&[("GCREC_JOBS", "0")], &["--jobs", "4"]).code, 0);
    // The endpoint from the environment (the standard AWS one points nowhere here).
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(gcrec_testkit::servers::upload(
        &moto.s3_client(),
        "env-export",
        export.objects(),
    ));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
    cmd.args(["ls", "s3://env-export", "--json"]);
    common::no_aws(&mut cmd);
    cmd.env("GCREC_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    let run = run_cmd(&mut cmd);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.ids("recording").len(), all);
}

#[test]
fn a_piped_slow_pull_prints_periodic_progress_lines() {
    let (_, export) = generated(ExportSpec {
        seed: 191,
        days: 1,
        hour_step: 8,
        call_bytes: 6 * 1024,
        ..ExportSpec::default()
    });
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(gcrec_testkit::servers::upload(
        &moto.s3_client(),
        "slow-export",
        export.objects(),
    ));
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let slow = export
        .recordings
        .iter()
        .find_map(|r| r.media_key.clone())
        .unwrap();
    proxy.add(json!({"method": "GET", "key": slow, "action": "trickle", "bytes_per_second": 2048}));
    for format in ["text", "json"] {
        let out = tempfile::tempdir().unwrap();
        let run = gcrec_s3(
            &proxy.endpoint,
            [
                "pull",
                "s3://slow-export",
                "--out",
                out.path().to_str().unwrap(),
                "--progress-interval",
                "1",
                "--log-format",
                format,
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        if format == "text" {
            let lines: Vec<&str> = run
                .stderr
                .lines()
                .filter(|l| l.starts_with("progress: "))
                .collect();
            assert!(!lines.is_empty(), "{}", run.stderr);
            for field in ["recordings", "downloaded", "/s", "failed", "ETA"] {
                assert!(lines[0].contains(field), "{field}: {}", lines[0]);
            }
        } else {
            let parsed: Vec<Value> = run
                .stderr
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
                .collect();
            let progress = parsed
                .iter()
                .find(|v| v["type"] == "progress")
                .expect("a progress line");
            for field in [
                "done",
                "total",
                "failed",
                "bytes",
                "bytes_per_second",
                "eta_seconds",
            ] {
                assert!(progress.get(field).is_some(), "{field}: {progress}");
            }
            assert!(
                parsed.iter().any(|v| v["type"] == "summary"),
                "{}",
                run.stderr
            );
        }
    }
    // A fast run prints no progress line at all (the first comes after the interval).
    let built = local_export();
    let out = tempfile::tempdir().unwrap();
    let quick = run_cmd(&mut pull_local(built.dir.path(), out.path(), &[]));
    assert!(!quick.stderr.contains("progress: "), "{}", quick.stderr);
    let _ = key_args();
}

/// `symbol name` of each checklist line, for a snapshot that ignores keys and sizes.
fn checklist(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let (head, _) = l.split_once(": ").unwrap_or((l, ""));
            let head = if head.starts_with("✓ kms key") || head.starts_with("✗ kms key") {
                &head[..head.find("kms key").unwrap() + 7]
            } else {
                head
            };
            head.to_owned()
        })
        .collect()
}

#[test]
fn doctor_on_a_healthy_setup_and_on_each_broken_one() {
    use gcrec_testkit::servers::{Sse, upload_with};
    let (_, export) = generated(ExportSpec {
        seed: 192,
        days: 1,
        hour_step: 8,
        ..ExportSpec::default()
    });
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = rt.block_on(moto.create_kms_key());
    rt.block_on(async {
        let client = moto.s3_client();
        client
            .create_bucket()
            .bucket("doctor-locked")
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .unwrap();
        client
            .create_bucket()
            .bucket("doctor-plain")
            .send()
            .await
            .unwrap();
        for bucket in ["doctor-locked", "doctor-plain"] {
            let objects = export
                .objects()
                .map(|(k, b)| (k, b, std::collections::HashMap::new()));
            upload_with(&client, bucket, &Sse::Kms(key.clone()), objects).await;
        }
    });
    let out = tempfile::tempdir().unwrap();
    let out = out.path().to_str().unwrap().to_owned();
    let doctor = |endpoint: &str, extra: &[&str]| {
        let mut args = vec!["doctor"];
        args.extend_from_slice(extra);
        gcrec_s3(endpoint, &args, &[])
    };
    // Healthy: every line a tick, exit 0.
    let run = doctor(
        &moto.endpoint,
        &["s3://doctor-locked", "--out", &out, "--bag"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        checklist(&run.stdout),
        [
            "✓ credentials",
            "✓ clock",
            "✓ region",
            "✓ list",
            "✓ shape",
            "✓ sample plain ogg",
            "✓ sample plain zip",
            "✓ object lock",
            "✓ free space",
            "✓ kms key",
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("SSE-KMS with key {key}")),
        "{}",
        run.stdout
    );
    // No Object Lock, and a bag asked for.
    let run = doctor(&moto.endpoint, &["s3://doctor-plain", "--bag"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("✗ object lock: not enabled"),
        "{}",
        run.stdout
    );
    // A bucket in another region: followed, and said.
    let mut proxy = FaultProxy::start(&moto.endpoint);
    proxy.add(json!({"key": "doctor-locked", "action": "redirect", "region": "eu-west-1"}));
    let run = doctor(&proxy.endpoint, &["s3://doctor-locked"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("! region: the bucket answers from eu-west-1"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("--region eu-west-1"), "{}", run.stdout);
    // A role without kms:Decrypt: a permission failure, exit 3.
    proxy.clear();
    proxy.add(json!({"method": "GET", "key": ".opus", "action": "status", "status": 403, "code": "AccessDenied",
        "message": "User: arn:aws:iam::123456789012:user/doctor is not authorized to perform: kms:Decrypt on the resource associated with this ciphertext because no identity-based policy allows the kms:Decrypt action"}));
    proxy.add(json!({"method": "GET", "key": ".zip", "action": "status", "status": 403, "code": "AccessDenied",
        "message": "User: arn:aws:iam::123456789012:user/doctor is not authorized to perform: kms:Decrypt"}));
    let run = doctor(&proxy.endpoint, &["s3://doctor-locked"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("✗ sample download") && run.stdout.contains("kms:Decrypt"),
        "{}",
        run.stdout
    );
    // The KMS key disabled.
    rt.block_on(async {
        aws_sdk_kms::Client::new(&moto.sdk_config())
            .disable_key()
            .key_id(key.rsplit('/').next().unwrap())
            .send()
            .await
            .unwrap();
    });
    let run = doctor(&moto.endpoint, &["s3://doctor-locked"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("is Disabled"), "{}", run.stdout);
    // Keys that open none of the samples.
    let example = common::repo_root().join("examples/export");
    let run = gcrec(["doctor", example.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("✗ sample decryption")
            && run.stdout.contains("C7EC063F09D6F4BE")
            && run.stdout.contains("(--key)"),
        "{}",
        run.stdout
    );
    let _ = Value::Null;
}
