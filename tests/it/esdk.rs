//! AWS Encryption SDK messages from the official Python SDK (raw AES, raw RSA and KMS
//! master keys through moto; every suite, framed and not) and its command line
//! (`aws-encryption-cli`), decrypted byte-identically; and every way a message can be
//! wrong — a flipped frame byte, a bad signature, a missing context pair, an unknown
//! suite, a truncation — a clear error and nothing written.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tools::{Moto, run_ok, venv_bin};
use common::{Run, repo_root};
use serde_json::Value;

fn keys() -> PathBuf {
    repo_root().join("keys-example")
}

const SUITES: [&str; 11] = [
    "AES_128_GCM_IV12_TAG16",
    "AES_192_GCM_IV12_TAG16",
    "AES_256_GCM_IV12_TAG16",
    "AES_128_GCM_IV12_TAG16_HKDF_SHA256",
    "AES_192_GCM_IV12_TAG16_HKDF_SHA256",
    "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
    "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256",
    "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
    "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
    "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
];

struct Case {
    dir: tempfile::TempDir,
    plain: Vec<u8>,
}

impl Case {
    fn new() -> Case {
        let case = Case {
            dir: tempfile::tempdir().unwrap(),
            // Not a whole number of 4 KiB frames: a short final frame.
            plain: gcrec_testkit::media::ogg_opus(&mut gcrec_testkit::rng::Rng::new(3), 50_000),
        };
        std::fs::create_dir(case.path("enc")).unwrap();
        case
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the plaintext as `name` and encrypts it in place with the Python SDK.
    fn encrypt(&self, name: &str, args: &[&str]) -> Vec<u8> {
        let p = self.path("enc").join(name);
        std::fs::write(&p, &self.plain).unwrap();
        run_ok(
            Command::new(venv_bin("python"))
                .arg(repo_root().join("tests/interop/esdk_encrypt.py"))
                .args(args)
                .arg("--in-place")
                .arg(&p),
        )
    }

    fn decrypt(
        &self,
        outdir: &str,
        names: &[&str],
        args: &[&str],
        moto: Option<&Moto>,
    ) -> (Run, Vec<Value>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
        cmd.arg("decrypt");
        for n in names {
            cmd.arg(self.path("enc").join(n));
        }
        cmd.arg("--out")
            .arg(self.path(outdir))
            .arg("--json")
            .args(args)
            .stdin(std::process::Stdio::null());
        match moto {
            Some(m) => m.env(&mut cmd),
            None => common::no_aws(&mut cmd),
        }
        common::decrypt_json(&mut cmd)
    }

    fn assert_identical(&self, outdir: &str, name: &str) {
        let got =
            std::fs::read(self.path(outdir).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == self.plain, "{name} differs from the plaintext");
    }

    fn assert_refused(&self, outdir: &str, names: &[&str], args: &[&str], needle: &str) {
        let (run, _) = self.decrypt(outdir, names, args, None);
        common::assert_refused_empty(&run, needle, &self.path(outdir));
    }
}

fn aes_args() -> Vec<String> {
    vec![
        "--aes-key".into(),
        keys().join("aes256.key").display().to_string(),
    ]
}

#[test]
fn every_suite_framed_and_not_from_the_python_sdk_decrypts_byte_identically() {
    let c = Case::new();
    let mut names = Vec::new();
    for suite in SUITES {
        for frame in ["4096", "0"] {
            let name = format!("{suite}-{frame}.esdk");
            let mut args = aes_args();
            args.extend(
                [
                    "--suite",
                    suite,
                    "--frame-length",
                    frame,
                    "--context",
                    "purpose=recording",
                ]
                .map(String::from),
            );
            c.encrypt(&name, &args.iter().map(String::as_str).collect::<Vec<_>>());
            names.push(name);
        }
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let key = keys().join("aes256.key").display().to_string();
    let (run, lines) = c.decrypt(
        "out",
        &refs,
        &["--key", &key, "--encryption-context", "purpose=recording"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in &names {
        c.assert_identical("out", name);
        let line = lines.iter().find(|l| l["key"] == name.as_str()).unwrap();
        let format = line["format"].as_str().unwrap();
        let version = if name.contains("COMMIT") {
            "esdk v2 ("
        } else {
            "esdk v1 ("
        };
        assert!(format.starts_with(version), "{name}: {format}");
        assert!(
            format.ends_with(if name.ends_with("-0.esdk") {
                "non-framed)"
            } else {
                ", framed)"
            }),
            "{name}: {format}"
        );
        assert_eq!(
            format.contains("ECDSA"),
            name.contains("ECDSA"),
            "{name}: {format}"
        );
        assert!(
            line["opened_with"].as_str().unwrap().starts_with("aes:"),
            "{line}"
        );
        assert_eq!(line["authenticated"], true);
    }
}

#[test]
fn raw_rsa_master_keys_with_every_padding_decrypt() {
    let c = Case::new();
    let k = keys();
    let public = k.join("rsa3072.pub.pem").display().to_string();
    let private = k.join("rsa3072.pem").display().to_string();
    let mut names = Vec::new();
    for padding in ["pkcs1", "oaep-sha1", "oaep-sha256"] {
        let name = format!("rsa-{padding}.esdk");
        c.encrypt(
            &name,
            &[
                "--rsa-public",
                &public,
                "--rsa-private",
                &private,
                "--rsa-padding",
                padding,
            ],
        );
        names.push(name);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (run, lines) = c.decrypt("out", &refs, &["--key", &private], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in &names {
        c.assert_identical("out", name);
    }
    assert!(
        lines
            .iter()
            .all(|l| l["opened_with"] == "rsa:a4090a3c61cb6d85"),
        "{lines:?}"
    );
    // The wrong key type and the wrong key each say so.
    let aes = k.join("aes256.key").display().to_string();
    c.assert_refused(
        "wrong",
        &refs[..1],
        &["--key", &aes],
        "raw key \"recordings-rsa\" of \"gcrec-tests\", and no key or KMS that could open it",
    );
}

#[test]
fn kms_master_keys_and_the_encryption_cli_decrypt_through_moto() {
    let c = Case::new();
    let moto = Moto::start();
    let printed = c.encrypt(
        "kms.esdk",
        &[
            "--kms",
            "--endpoint",
            &moto.endpoint,
            "--context",
            "purpose=recording",
            "--context",
            "tenant=acme",
        ],
    );
    let key_id = serde_json::from_slice::<Value>(&printed).unwrap()["kms_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The SDK's command line, with the same KMS key (files are written raw, not base64).
    let plain = c.path("cli-plain.opus");
    std::fs::write(&plain, &c.plain).unwrap();
    let mut cli = Command::new(venv_bin("aws-encryption-cli"));
    cli.args(["--encrypt", "--input"])
        .arg(&plain)
        .arg("--output")
        .arg(c.path("enc").join("cli.esdk"))
        .args([
            "--wrapping-keys",
            "provider=aws-kms",
            &format!("key={key_id}"),
        ])
        .args([
            "--encryption-context",
            "purpose=recording",
            "--commitment-policy",
            "require-encrypt-require-decrypt",
            "-S",
        ]);
    moto.env(&mut cli);
    run_ok(&mut cli);
    let (run, lines) = c.decrypt(
        "out",
        &["kms.esdk", "cli.esdk"],
        &["--encryption-context", "purpose=recording"],
        Some(&moto),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    c.assert_identical("out", "kms.esdk");
    c.assert_identical("out", "cli.esdk");
    for line in &lines {
        assert_eq!(line["opened_with"], format!("kms:{key_id}"), "{line}");
    }
    // A required pair the message lacks: refused before KMS is asked.
    let (run, _) = c.decrypt(
        "strict",
        &["cli.esdk"],
        &["--encryption-context", "tenant=acme"],
        Some(&moto),
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("lacks the required pair tenant=acme"),
        "{}",
        run.stderr
    );
    assert!(common::files_under(&c.path("strict")).is_empty());
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut data = std::fs::read(path).unwrap();
    f(&mut data);
    std::fs::write(path, data).unwrap();
}

#[test]
fn altered_truncated_and_unexpected_messages_fail_with_nothing_written() {
    let c = Case::new();
    let key = keys().join("aes256.key").display().to_string();
    let k = ["--key", key.as_str()];
    let mut args = aes_args();
    args.extend(
        [
            "--suite",
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
            "--context",
            "purpose=recording",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for name in [
        "frame.esdk",
        "sig.esdk",
        "cut.esdk",
        "suite.esdk",
        "tail.esdk",
        "ctx.esdk",
        "reorder.esdk",
    ] {
        c.encrypt(name, &args);
    }
    let enc = |n: &str| c.path("enc").join(n);
    // A byte inside the third frame's ciphertext.
    edit(&enc("frame.esdk"), |d| {
        let at = d.len() / 4;
        d[at] ^= 0x40;
    });
    c.assert_refused("o1", &["frame.esdk"], &k, "authentication tag mismatch");
    // The signature's last byte: every frame authenticates, the signature does not.
    edit(&enc("sig.esdk"), |d| {
        let n = d.len();
        d[n - 1] ^= 0x01;
    });
    c.assert_refused("o2", &["sig.esdk"], &k, "signature does not verify");
    edit(&enc("cut.esdk"), |d| d.truncate(d.len() - 200));
    c.assert_refused("o3", &["cut.esdk"], &k, "truncated");
    // An unknown suite (version 2 knows 0x0478 and 0x0578 only; 0x0678 is none).
    edit(&enc("suite.esdk"), |d| d[1] = 0x06);
    c.assert_refused("o4", &["suite.esdk"], &k, "unrecognized content");
    edit(&enc("tail.esdk"), |d| d.extend_from_slice(b"more"));
    c.assert_refused("o5", &["tail.esdk"], &k, "data follows the end");
    c.assert_refused(
        "o6",
        &["ctx.esdk"],
        &[k[0], k[1], "--encryption-context", "purpose=other"],
        "has another value for the required pair purpose=other",
    );
    // No key at all.
    c.assert_refused("o7", &["ctx.esdk"], &[], "no key or KMS that could open it");
    // Version 1 with an unknown suite is named as such.
    let mut v1 = aes_args();
    v1.extend(["--suite", "AES_256_GCM_IV12_TAG16_HKDF_SHA256"].map(String::from));
    c.encrypt(
        "v1.esdk",
        &v1.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    edit(&enc("v1.esdk"), |d| d[3] = 0x99);
    c.assert_refused("o8", &["v1.esdk"], &k, "algorithm suite 0x0199 is unknown");
}

#[test]
fn a_large_framed_message_streams_in_bounded_memory() {
    // 160 MiB, signed and committed, through `gcrec pull` of a local export with a small
    // download budget (docs/BENCHMARKS.md has 2 GiB beside the Python SDK).
    let c = Case::new();
    let dir = c.path("export");
    let key = common::ONE_MEDIA_KEY;
    let media = dir.join(key);
    std::fs::create_dir_all(media.parent().unwrap()).unwrap();
    let big: Vec<u8> = [
        b"OggS".to_vec(),
        (0..160u32 << 20)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect(),
    ]
    .concat();
    std::fs::write(&media, &big).unwrap();
    let mut args = aes_args();
    args.extend(
        [
            "--suite",
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
            "--frame-length",
            "65536",
            "--in-place",
        ]
        .map(String::from),
    );
    run_ok(
        Command::new(venv_bin("python"))
            .arg(repo_root().join("tests/interop/esdk_encrypt.py"))
            .args(&args)
            .arg(&media),
    );
    let out = c.path("pulled");
    let rss =
        common::pull_in_a_small_budget(&dir, &out, &keys().join("aes256.key"), "160 MiB ESDK pull");
    assert!(rss < 64 * 1000 * 1000, "peak RSS {rss}");
    assert!(std::fs::read(out.join(key)).unwrap() == big);
}
