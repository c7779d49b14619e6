//! `gcrec decrypt` against real peers — GnuPG, Sequoia `sq`, rPGP's own SEIPDv2 writer,
//! the official amazon-s3-encryption-client-python with moto's KMS, and the reference
//! S3EC writer — byte-identical every time; and every way a file can be wrong: a clear
//! error, no output file, no temporary file left behind.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tools::{Moto, gnupg_home, run_ok, tool, venv_bin};
use common::{Run, repo_root};
use gcrec_testkit::rng::Rng;

fn keys() -> PathBuf {
    repo_root().join("keys-example")
}

/// Realistic plaintext: a 700 KB Ogg/Opus recording.
fn recording() -> Vec<u8> {
    gcrec_testkit::media::ogg_opus(&mut Rng::new(99), 700_000)
}

struct Case {
    dir: tempfile::TempDir,
    plain: Vec<u8>,
}

impl Case {
    fn new() -> Case {
        let case = Case {
            dir: tempfile::tempdir().unwrap(),
            plain: recording(),
        };
        std::fs::write(case.path("plain.opus"), &case.plain).unwrap();
        case
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// `gcrec decrypt` with every example key (and the passphrase file).
    fn decrypt(&self, inputs: &[&str], extra: &[&str]) -> Run {
        self.decrypt_with(inputs, extra, None)
    }

    fn decrypt_with(&self, inputs: &[&str], extra: &[&str], moto: Option<&Moto>) -> Run {
        let k = keys();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
        cmd.arg("decrypt");
        for i in inputs {
            cmd.arg(self.path(i));
        }
        // `--no-example-keys` is this harness's flag, not gcrec's.
        cmd.arg("--out")
            .arg(self.out())
            .args(extra.iter().filter(|a| **a != "--no-example-keys"));
        if !extra.contains(&"--no-example-keys") {
            for key in [
                "pgp-rsa3072.sec.asc",
                "pgp-cv25519.sec.asc",
                "rsa3072.pem",
                "aes256.key",
            ] {
                cmd.arg("--key").arg(k.join(key));
            }
            cmd.arg("--passphrase-file").arg(k.join("passphrase.txt"));
        }
        // No terminal: a passphrase prompt must never wait for a developer's keyboard.
        cmd.args(["--json"]).stdin(std::process::Stdio::null());
        if let Some(m) = moto {
            m.env(&mut cmd);
        } else {
            // No AWS anywhere: a KMS-wrapped object would fail, never reach out.
            cmd.env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
        }
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Asserts each output is byte-identical to the plaintext.
    fn assert_identical(&self, run: &Run, outputs: &[&str]) {
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        for o in outputs {
            let got = std::fs::read(self.out().join(o))
                .unwrap_or_else(|e| panic!("{o}: {e}\n{}", run.stderr));
            assert!(got == self.plain, "{o} differs from the plaintext");
        }
        self.assert_no_temp_files();
    }

    /// Asserts the run failed with `needle` in its error and wrote nothing at all.
    fn assert_failed(&self, run: &Run, needle: &str) {
        assert_ne!(run.code, 0, "expected a failure: {}", run.stdout);
        assert!(
            run.stderr.contains(needle),
            "expected {needle:?} in:\n{}",
            run.stderr
        );
        let written: Vec<_> = walk(&self.out());
        assert!(
            written.is_empty(),
            "files were left in the output: {written:?}"
        );
    }

    fn assert_no_temp_files(&self) {
        let temps: Vec<_> = walk(&self.out())
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(".gcrec-tmp-"))
            .collect();
        assert!(temps.is_empty(), "{temps:?}");
    }

    fn gpg(&self, args: &[&str]) {
        let home = gnupg_home(&keys());
        run_ok(
            Command::new(tool("gpg", "apt-get install gnupg"))
                .env("GNUPGHOME", home.path())
                .current_dir(self.dir.path())
                .args(["--batch", "--yes", "--trust-model", "always"])
                .args(args),
        );
    }

    fn reference(&self, version: &str, wrap: &str, out: &str, extra: &[&str]) {
        let k = keys();
        run_ok(
            Command::new(venv_bin("python"))
                .arg(repo_root().join("tests/interop/s3ec_reference.py"))
                .args(["--version", version, "--wrap", wrap])
                .arg("--rsa-public")
                .arg(k.join("rsa3072.pub.pem"))
                .arg("--aes-key")
                .arg(k.join("aes256.key"))
                .args(extra)
                .arg(self.path("plain.opus"))
                .arg(self.path(out)),
        );
    }

    fn flip_byte(&self, name: &str, offset_from_end: usize) {
        let p = self.path(name);
        let mut data = std::fs::read(&p).unwrap();
        let i = data.len() - 1 - offset_from_end;
        data[i] ^= 0x01;
        std::fs::write(&p, data).unwrap();
    }

    fn edit_metadata(&self, name: &str, field: &str, edit: impl Fn(&str) -> String) {
        let p = self.path(&format!("{name}.gcrec-object.json"));
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let old = doc["user_metadata"][field].as_str().unwrap().to_owned();
        doc["user_metadata"][field] = serde_json::json!(edit(&old));
        std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}

/// Flips one bit inside a base64 value.
fn flip_b64(value: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(value).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    engine.encode(bytes)
}

// ---------------------------------------------------------------- interop: OpenPGP

#[test]
fn gnupg_messages_decrypt_byte_identically() {
    let c = Case::new();
    c.gpg(&[
        "-r",
        "rsa@example.invalid",
        "-o",
        "rsa.opus.pgp",
        "-e",
        "plain.opus",
    ]);
    c.gpg(&[
        "-r",
        "cv25519@example.invalid",
        "--armor",
        "-o",
        "cv.opus.asc",
        "-e",
        "plain.opus",
    ]);
    c.gpg(&[
        "-r",
        "cv25519@example.invalid",
        "-z",
        "0",
        "-o",
        "cv-raw.opus.gpg",
        "-e",
        "plain.opus",
    ]);
    // Uncompressed to the RSA key: AWS-LC's session key and SEIPDv1's lean path.
    c.gpg(&[
        "-r",
        "rsa@example.invalid",
        "-z",
        "0",
        "-o",
        "rsa-raw.opus.gpg",
        "-e",
        "plain.opus",
    ]);
    c.gpg(&[
        "-r",
        "rsa@example.invalid",
        "--compress-algo",
        "bzip2",
        "-o",
        "rsa-bz.opus.gpg",
        "-e",
        "plain.opus",
    ]);
    let run = c.decrypt(
        &[
            "rsa.opus.pgp",
            "cv.opus.asc",
            "cv-raw.opus.gpg",
            "rsa-bz.opus.gpg",
            "rsa-raw.opus.gpg",
        ],
        &[],
    );
    c.assert_identical(
        &run,
        &[
            "rsa.opus",
            "cv.opus",
            "cv-raw.opus",
            "rsa-bz.opus",
            "rsa-raw.opus",
        ],
    );
    assert_eq!(
        run.strings("file", "opened_with"),
        [
            "C7EC063F09D6F4BE",
            "8C73F646BF269E9E",
            "8C73F646BF269E9E",
            "C7EC063F09D6F4BE",
            "C7EC063F09D6F4BE"
        ]
    );
}

#[test]
fn sequoia_messages_decrypt_byte_identically() {
    let c = Case::new();
    let k = keys();
    let sq = tool("sq", "apt-get install sq");
    run_ok(
        Command::new(&sq)
            .current_dir(c.dir.path())
            .args(["encrypt", "--binary", "--recipient-cert"])
            .arg(k.join("pgp-cv25519.pub.asc"))
            .args(["-o", "sq.opus.pgp", "plain.opus"]),
    );
    run_ok(
        Command::new(&sq)
            .current_dir(c.dir.path())
            .args(["encrypt", "--recipient-cert"])
            .arg(k.join("pgp-rsa3072.pub.asc"))
            .args(["-o", "sq-rsa.opus.asc", "plain.opus"]),
    );
    let run = c.decrypt(&["sq.opus.pgp", "sq-rsa.opus.asc"], &[]);
    c.assert_identical(&run, &["sq.opus", "sq-rsa.opus"]);
}

#[test]
fn seipd_v2_messages_from_rpgp_decrypt_byte_identically() {
    use pgp::composed::{Deserializable, MessageBuilder, SignedPublicKey};
    use pgp::crypto::aead::{AeadAlgorithm, ChunkSize};
    use pgp::crypto::sym::SymmetricKeyAlgorithm;
    let c = Case::new();
    let mut rng = rand::thread_rng();
    for (name, key, aead) in [
        ("v2-ocb.opus.pgp", "pgp-cv25519.pub.asc", AeadAlgorithm::Ocb),
        ("v2-gcm.opus.pgp", "pgp-rsa3072.pub.asc", AeadAlgorithm::Gcm),
        ("v2-eax.opus.pgp", "pgp-cv25519.pub.asc", AeadAlgorithm::Eax),
    ] {
        let armored = std::fs::read_to_string(keys().join(key)).unwrap();
        let (public, _) = SignedPublicKey::from_string(&armored).unwrap();
        let mut builder = MessageBuilder::from_bytes("", c.plain.clone()).seipd_v2(
            &mut rng,
            SymmetricKeyAlgorithm::AES256,
            aead,
            ChunkSize::C64KiB,
        );
        builder
            .encrypt_to_key(&mut rng, &public.public_subkeys[0])
            .unwrap();
        std::fs::write(c.path(name), builder.to_vec(&mut rng).unwrap()).unwrap();
    }
    let run = c.decrypt(
        &["v2-ocb.opus.pgp", "v2-gcm.opus.pgp", "v2-eax.opus.pgp"],
        &[],
    );
    c.assert_identical(&run, &["v2-ocb.opus", "v2-gcm.opus", "v2-eax.opus"]);
}

// ---------------------------------------------------------------- interop: S3EC

#[test]
fn reference_s3ec_v2_and_v3_with_rsa_and_aes_wraps_decrypt_byte_identically() {
    let c = Case::new();
    c.reference("v2", "rsa-oaep", "v2-rsa.opus", &[]);
    c.reference("v2", "aes-gcm", "v2-aes.opus", &[]);
    c.reference("v3", "rsa-oaep", "v3-rsa.opus", &[]);
    c.reference("v3", "aes-gcm", "v3-aes.opus", &[]);
    c.reference("v3", "rsa-oaep", "v3-instr.opus", &["--instruction"]);
    let inputs = [
        "v2-rsa.opus",
        "v2-aes.opus",
        "v3-rsa.opus",
        "v3-aes.opus",
        "v3-instr.opus",
    ];
    let run = c.decrypt(&inputs, &[]);
    c.assert_identical(&run, &inputs);
    assert_eq!(
        run.strings("file", "format"),
        [
            "s3ec v2 (AES-GCM, RSA-OAEP-SHA1)",
            "s3ec v2 (AES-GCM, AES/GCM)",
            "s3ec v3 (AES-GCM, key-committing, RSA-OAEP-SHA1)",
            "s3ec v3 (AES-GCM, key-committing, AES/GCM)",
            "s3ec v3 (AES-GCM, key-committing, RSA-OAEP-SHA1)",
        ]
    );
}

#[test]
fn official_s3ec_client_objects_decrypt_through_moto_kms() {
    let c = Case::new();
    let moto = Moto::start();
    for suite in ["v3", "v2"] {
        let name = format!("official-{suite}.opus");
        std::fs::write(c.path(&name), &c.plain).unwrap();
        run_ok(
            Command::new(venv_bin("python"))
                .arg(repo_root().join("tests/interop/s3ec_official.py"))
                .args([
                    "--endpoint",
                    &moto.endpoint,
                    "--suite",
                    suite,
                    "--bucket",
                    &format!("gcrec-{suite}"),
                    "--out",
                ])
                .arg(c.path("encrypted"))
                .arg(c.path(&name)),
        );
    }
    let run = c.decrypt_with(
        &["encrypted/official-v3.opus", "encrypted/official-v2.opus"],
        &["--no-example-keys"],
        Some(&moto),
    );
    c.assert_identical(&run, &["official-v3.opus", "official-v2.opus"]);
    let lines = run.json();
    assert_eq!(
        lines[0]["format"],
        "s3ec v3 (AES-GCM, key-committing, kms+context)"
    );
    assert_eq!(lines[1]["format"], "s3ec v2 (AES-GCM, kms+context)");
    for line in &lines[..2] {
        let key = line["opened_with"].as_str().unwrap();
        assert!(key.starts_with("kms:arn:aws:kms:us-east-1:"), "{key}");
    }
}

// ---------------------------------------------------------------- negative cases

#[test]
fn a_missing_key_lists_the_key_ids_the_file_needs() {
    let c = Case::new();
    c.gpg(&[
        "-r",
        "rsa@example.invalid",
        "-o",
        "rsa.opus.pgp",
        "-e",
        "plain.opus",
    ]);
    let run = c.decrypt(
        &["rsa.opus.pgp"],
        &[
            "--no-example-keys",
            "--key",
            keys().join("pgp-cv25519.sec.asc").to_str().unwrap(),
        ],
    );
    c.assert_failed(&run, "encrypted to key ID(s) C7EC063F09D6F4BE; the keys given are 5478EE417FA27548, 8C73F646BF269E9E");
    assert_eq!(run.code, 1);
}

#[test]
fn a_wrong_key_for_s3ec_is_named() {
    let c = Case::new();
    c.reference("v2", "aes-gcm", "v2-aes.opus", &[]);
    let wrong = c.path("other.key");
    std::fs::write(&wrong, [9u8; 32]).unwrap();
    let run = c.decrypt(
        &["v2-aes.opus"],
        &["--no-example-keys", "--key", wrong.to_str().unwrap()],
    );
    c.assert_failed(&run, "none of the 1 AES key(s) given unwraps the data key");
    let run = c.decrypt(
        &["v2-aes.opus"],
        &[
            "--no-example-keys",
            "--key",
            keys().join("rsa3072.pem").to_str().unwrap(),
        ],
    );
    c.assert_failed(&run, "no AES-256 key was given");
}

#[test]
fn a_flipped_byte_in_openpgp_ciphertext_fails_its_integrity_check() {
    let c = Case::new();
    c.gpg(&[
        "-r",
        "cv25519@example.invalid",
        "-z",
        "0",
        "-o",
        "v1.opus.pgp",
        "-e",
        "plain.opus",
    ]);
    c.flip_byte("v1.opus.pgp", 300_000);
    c.assert_failed(&c.decrypt(&["v1.opus.pgp"], &[]), "integrity check failed");
}

#[test]
fn flipped_bytes_in_s3ec_ciphertext_tag_wrapped_key_and_commitment_fail() {
    for (what, version, tamper) in [
        ("ciphertext", "v2", 0),
        ("tag", "v2", 1),
        ("ciphertext", "v3", 2),
        ("tag", "v3", 3),
        ("wrapped key", "v2", 4),
        ("wrapped key", "v3", 5),
        ("commitment", "v3", 6),
    ] {
        let c = Case::new();
        c.reference(version, "rsa-oaep", "x.opus", &[]);
        let key_field = if version == "v2" {
            "x-amz-key-v2"
        } else {
            "x-amz-3"
        };
        let needle = match tamper {
            0 => {
                c.flip_byte("x.opus", 100_000);
                "authentication tag mismatch"
            }
            1 => {
                c.flip_byte("x.opus", 3);
                "authentication tag mismatch"
            }
            2 => {
                c.flip_byte("x.opus", 200_000);
                "authentication tag mismatch"
            }
            3 => {
                c.flip_byte("x.opus", 0);
                "authentication tag mismatch"
            }
            4 | 5 => {
                c.edit_metadata("x.opus", key_field, flip_b64);
                "unwraps the data key"
            }
            _ => {
                c.edit_metadata("x.opus", "x-amz-d", flip_b64);
                "key commitment does not match"
            }
        };
        let run = c.decrypt(&["x.opus"], &[]);
        assert!(
            run.stderr.contains(needle),
            "{what} in {version}: {}",
            run.stderr
        );
        c.assert_failed(&run, needle);
    }
}

#[test]
fn truncated_files_are_refused() {
    let c = Case::new();
    c.gpg(&[
        "-r",
        "rsa@example.invalid",
        "-o",
        "t.opus.pgp",
        "-e",
        "plain.opus",
    ]);
    c.reference("v3", "aes-gcm", "t3.opus", &[]);
    for name in ["t.opus.pgp", "t3.opus"] {
        let p = c.path(name);
        let data = std::fs::read(&p).unwrap();
        std::fs::write(&p, &data[..data.len() / 2]).unwrap();
    }
    let run = c.decrypt(&["t.opus.pgp"], &[]);
    c.assert_failed(&run, "OpenPGP");
    let run = c.decrypt(&["t3.opus"], &[]);
    c.assert_failed(&run, "authentication tag mismatch");
}

#[test]
fn a_wrong_passphrase_is_a_usage_error_before_any_file() {
    let c = Case::new();
    c.gpg(&[
        "-r",
        "rsa@example.invalid",
        "-o",
        "r.opus.pgp",
        "-e",
        "plain.opus",
    ]);
    let bad = c.path("bad-pass");
    std::fs::write(&bad, "not-the-passphrase\n").unwrap();
    let key = keys().join("pgp-rsa3072.sec.asc");
    let run = c.decrypt(
        &["r.opus.pgp"],
        &[
            "--no-example-keys",
            "--key",
            key.to_str().unwrap(),
            "--passphrase-file",
            bad.to_str().unwrap(),
        ],
    );
    c.assert_failed(&run, "wrong passphrase for key C3C7E3A12ACA3BC8");
    assert_eq!(run.code, 2);
    assert!(
        !run.stderr.contains("not-the-passphrase"),
        "the passphrase leaked: {}",
        run.stderr
    );
    // From an environment variable it works.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
    cmd.args([
        "decrypt",
        "--passphrase-env",
        "GCREC_TEST_PASSPHRASE",
        "--key",
    ])
    .arg(&key)
    .arg(c.path("r.opus.pgp"))
    .arg("--out")
    .arg(c.out());
    cmd.env("GCREC_TEST_PASSPHRASE", "gcrec-example-passphrase");
    run_ok(&mut cmd);
    assert!(std::fs::read(c.out().join("r.opus")).unwrap() == c.plain);
}

#[test]
fn a_wrong_kms_encryption_context_is_refused_by_kms() {
    let c = Case::new();
    let moto = Moto::start();
    run_ok(
        Command::new(venv_bin("python"))
            .arg(repo_root().join("tests/interop/s3ec_official.py"))
            .args(["--endpoint", &moto.endpoint, "--suite", "v3", "--out"])
            .arg(c.dir.path())
            .arg(c.path("plain.opus")),
    );
    c.edit_metadata("plain.opus", "x-amz-t", |ctx| {
        ctx.replace('}', ", \"tampered\": \"yes\"}")
    });
    let run = c.decrypt_with(&["plain.opus"], &["--no-example-keys"], Some(&moto));
    c.assert_failed(
        &run,
        "KMS rejected the wrapped key (wrong encryption context or key)",
    );
}

#[test]
fn legacy_v1_objects_need_the_explicit_flag() {
    let c = Case::new();
    c.reference("v1", "rsa-pkcs1", "v1.opus", &[]);
    c.reference("v1", "aes-wrap", "v1w.opus", &[]);
    let run = c.decrypt(&["v1.opus"], &[]);
    c.assert_failed(&run, "pass --allow-unauthenticated");
    let run = c.decrypt(&["v1.opus", "v1w.opus"], &["--allow-legacy-cbc"]);
    c.assert_identical(&run, &["v1.opus", "v1w.opus"]);
}

#[test]
fn unknown_content_names_its_first_bytes_and_the_supported_formats() {
    let c = Case::new();
    std::fs::write(
        c.path("mystery.opus"),
        b"\x00\x01\x02MYSTERY-CONTAINER-v9 and more bytes",
    )
    .unwrap();
    let run = c.decrypt(&["mystery.opus"], &[]);
    c.assert_failed(
        &run,
        "unrecognized content (first bytes: 00 01 02 4d 59 53 54 45 52 59 2d 43 4f 4e 54 41)",
    );
    assert!(run.stderr.contains("OpenPGP") && run.stderr.contains("S3 Encryption Client"));
}

#[test]
fn plain_media_passes_through_untouched() {
    let c = Case::new();
    let run = c.decrypt(&["plain.opus"], &[]);
    c.assert_identical(&run, &["plain.opus"]);
    assert_eq!(run.json()[0]["format"], "plain ogg");
}

// ---------------------------------------------------------------- keys and directories

#[test]
fn generated_keys_are_private_inspectable_and_work_with_gnupg_and_s3ec() {
    let c = Case::new();
    let keydir = c.path("mykeys");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
    cmd.args(["keys", "generate", "--out"]).arg(&keydir).args([
        "--rsa-bits",
        "2048",
        "--passphrase-env",
        "GCREC_TEST_PW",
    ]);
    cmd.env("GCREC_TEST_PW", "s3cret-pw");
    let shown = String::from_utf8(run_ok(&mut cmd)).unwrap();
    assert!(
        shown.contains("openpgp key, Ed25519 + ECDH") && shown.contains("rsa key, RSA 2048"),
        "{shown}"
    );
    #[cfg(unix)]
    for name in [
        "gcrec-pgp.sec.asc",
        "gcrec-pgp.pub.asc",
        "gcrec-rsa.pem",
        "gcrec-rsa.pub.pem",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keydir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    // Never overwrites.
    let again = Command::new(env!("CARGO_BIN_EXE_gcrec"))
        .args(["keys", "generate", "--out"])
        .arg(&keydir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    // Inspect prints IDs and protection, and no secret.
    let inspect = String::from_utf8(run_ok(
        Command::new(env!("CARGO_BIN_EXE_gcrec"))
            .args(["keys", "inspect", "--json"])
            .arg(keydir.join("gcrec-pgp.sec.asc"))
            .arg(keydir.join("gcrec-rsa.pem")),
    ))
    .unwrap();
    let infos: Vec<serde_json::Value> = inspect
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(infos[0]["protected"], true);
    assert_eq!(infos[0]["key_ids"].as_array().unwrap().len(), 2);
    assert_eq!(
        infos[1]["algorithm"],
        "RSA (encrypted PKCS#8: size and fingerprint need the passphrase)"
    );
    assert!(!inspect.contains("PRIVATE KEY") && !inspect.contains("s3cret"));
    // GnuPG encrypts to the new public key; gcrec decrypts with the new secret key.
    let home = tempfile::tempdir().unwrap();
    let gpg = tool("gpg", "apt-get install gnupg");
    run_ok(
        Command::new(&gpg)
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--import"])
            .arg(keydir.join("gcrec-pgp.pub.asc")),
    );
    run_ok(
        Command::new(&gpg)
            .env("GNUPGHOME", home.path())
            .current_dir(c.dir.path())
            .args([
                "--batch",
                "--trust-model",
                "always",
                "-r",
                "gcrec recordings key",
                "-o",
                "new.opus.pgp",
                "-e",
                "plain.opus",
            ]),
    );
    run_ok(
        Command::new(venv_bin("python"))
            .arg(repo_root().join("tests/interop/s3ec_reference.py"))
            .args(["--version", "v3", "--wrap", "rsa-oaep", "--rsa-public"])
            .arg(keydir.join("gcrec-rsa.pub.pem"))
            .arg(c.path("plain.opus"))
            .arg(c.path("new-s3ec.opus")),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
    cmd.arg("decrypt")
        .arg(c.path("new.opus.pgp"))
        .arg(c.path("new-s3ec.opus"))
        .arg("--key")
        .arg(&keydir)
        .args(["--passphrase-env", "GCREC_TEST_PW", "--out"])
        .arg(c.out());
    cmd.env("GCREC_TEST_PW", "s3cret-pw");
    run_ok(&mut cmd);
    for o in ["new.opus", "new-s3ec.opus"] {
        assert!(std::fs::read(c.out().join(o)).unwrap() == c.plain, "{o}");
    }
}

#[test]
fn one_bad_file_in_a_directory_does_not_stop_the_others() {
    let c = Case::new();
    let export = gcrec_testkit::Export::generate(gcrec_testkit::ExportSpec {
        days: 1,
        hour_step: 6,
        ..Default::default()
    });
    let src = c.path("export");
    export.write_to_dir(&src).unwrap();
    // Encrypt one recording to a key we do not give, and corrupt another's content.
    let victims: Vec<_> = export
        .recordings
        .iter()
        .filter_map(|r| r.media_key.clone())
        .take(2)
        .collect();
    let home = gnupg_home(&keys());
    run_ok(
        Command::new(tool("gpg", "apt-get install gnupg"))
            .env("GNUPGHOME", home.path())
            .args([
                "--batch",
                "--yes",
                "--trust-model",
                "always",
                "-r",
                "rsa@example.invalid",
                "-o",
            ])
            .arg(src.join(format!("{}.pgp", victims[0])))
            .arg("-e")
            .arg(src.join(&victims[0])),
    );
    std::fs::remove_file(src.join(&victims[0])).unwrap();
    std::fs::write(
        src.join(&victims[1]),
        b"\x00garbage that is no known container",
    )
    .unwrap();
    let k = keys().join("pgp-cv25519.sec.asc");
    let out = Command::new(env!("CARGO_BIN_EXE_gcrec"))
        .arg("decrypt")
        .arg(&src)
        .arg("--key")
        .arg(&k)
        .arg("--out")
        .arg(c.out())
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let failed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 2, "{stdout}");
    for v in &failed {
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains(v["key"].as_str().unwrap()),
            "the error names the object: {v}"
        );
    }
    // Every other recording and every sidecar is there, byte for byte.
    for r in &export.recordings {
        let media = r.media_key.as_ref().map(|k| (k.clone(), r.media_body()));
        for (key, body) in media.into_iter().filter(|(k, _)| !victims.contains(k)) {
            assert!(std::fs::read(c.out().join(&key)).unwrap() == body, "{key}");
        }
        if let Some(s) = &r.sidecar_key {
            assert!(c.out().join(s).is_file(), "{s}");
        }
    }
    for v in &victims {
        assert!(
            !c.out().join(v).exists(),
            "{v} should not have been written"
        );
    }
    c.assert_no_temp_files();
}

#[test]
fn a_protected_key_asks_for_its_passphrase_on_a_terminal() {
    let c = Case::new();
    c.gpg(&[
        "-r",
        "rsa@example.invalid",
        "-o",
        "r.opus.pgp",
        "-e",
        "plain.opus",
    ]);
    let gcrec_cmd = format!(
        "'{}' decrypt '{}' --key '{}' --out '{}'",
        env!("CARGO_BIN_EXE_gcrec"),
        c.path("r.opus.pgp").display(),
        keys().join("pgp-rsa3072.sec.asc").display(),
        c.out().display()
    );
    // `script` gives gcrec a real terminal; the passphrase is typed into it.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("(sleep 1; printf 'gcrec-example-passphrase\\r') | script -qec \"{gcrec_cmd}\" /dev/null"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Passphrase for C3C7E3A12ACA3BC8"), "{shown}");
    assert!(std::fs::read(c.out().join("r.opus")).unwrap() == c.plain);
    // Without a terminal there is no prompt: a clear usage error instead.
    let run = c.decrypt(
        &["r.opus.pgp"],
        &[
            "--no-example-keys",
            "--key",
            keys().join("pgp-rsa3072.sec.asc").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is passphrase-protected; give the passphrase with --passphrase-env VAR or --passphrase-file FILE"), "{}", run.stderr);
}
