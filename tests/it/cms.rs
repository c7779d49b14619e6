//! CMS against its real producers — `openssl cms -encrypt` (Debian `openssl`) and
//! Python `cryptography`'s PKCS#7 envelope builder — byte-identical in every encoding,
//! cipher, key transport and recipient form; keys as certificate + key, one PEM bundle,
//! PKCS#12 (current and `-legacy`), or a bare key tried in turn; and every way a message
//! can be wrong: a clear error and nothing written.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Run;
use common::tools::{run_ok, tool, venv_bin};
use serde_json::Value;

fn openssl() -> PathBuf {
    tool("openssl", "apt-get install openssl")
}

/// Two recipients' certificates and keys, an unrelated pair, bundles of them, and a
/// plaintext.
struct Pki {
    dir: tempfile::TempDir,
    plain: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            // 100,000 bytes: a whole number of AES blocks, so CBC pads a full block.
            plain: gcrec_testkit::media::ogg_opus(&mut gcrec_testkit::rng::Rng::new(7), 100_000),
        };
        std::fs::write(pki.path("plain.opus"), &pki.plain).unwrap();
        for (name, cn, bits) in [
            ("a", "recording A", "2048"),
            ("b", "recording B", "3072"),
            ("x", "stranger", "2048"),
        ] {
            run_ok(
                Command::new(openssl())
                    .current_dir(pki.dir.path())
                    .args(["req", "-x509", "-newkey"])
                    .arg(format!("rsa:{bits}"))
                    .args(["-nodes", "-days", "30", "-subj"])
                    .arg(format!("/O=gcrec tests/CN={cn}"))
                    .args([
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.crt"),
                    ]),
            );
        }
        let bundle = [pki.read("a.crt"), pki.read("a.key")].concat();
        std::fs::write(pki.path("a-bundle.pem"), bundle).unwrap();
        std::fs::write(pki.path("p12pass"), "p12 passphrase\n").unwrap();
        for (out, legacy) in [("a.p12", false), ("a-legacy.p12", true)] {
            let mut c = Command::new(openssl());
            c.current_dir(pki.dir.path())
                .args([
                    "pkcs12", "-export", "-inkey", "a.key", "-in", "a.crt", "-out", out,
                ])
                .args(["-passout", "pass:p12 passphrase"]);
            if legacy {
                c.arg("-legacy");
            }
            run_ok(&mut c);
        }
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// `openssl cms -encrypt -binary` of the plaintext to `out`.
    fn encrypt(&self, out: &str, args: &[&str]) {
        run_ok(
            Command::new(openssl())
                .current_dir(self.dir.path())
                .args([
                    "cms",
                    "-encrypt",
                    "-binary",
                    "-in",
                    "plain.opus",
                    "-out",
                    out,
                ])
                .args(args),
        );
    }

    /// `gcrec decrypt --json` of `inputs` into `outdir` with these key arguments.
    fn decrypt(&self, outdir: &str, inputs: &[&str], args: &[&str]) -> (Run, Vec<Value>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
        cmd.current_dir(self.dir.path())
            .arg("decrypt")
            .args(inputs)
            .args(["--out", outdir, "--json"])
            .args(args)
            .stdin(std::process::Stdio::null());
        common::no_aws(&mut cmd);
        common::decrypt_json(&mut cmd)
    }

    fn assert_identical(&self, outdir: &str, name: &str) {
        let got =
            std::fs::read(self.path(outdir).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == self.plain, "{name} differs from the plaintext");
    }

    /// Fails with `needle` and leaves nothing in `outdir`.
    fn assert_refused(&self, outdir: &str, inputs: &[&str], args: &[&str], needle: &str) {
        let (run, _) = self.decrypt(outdir, inputs, args);
        common::assert_refused_empty(&run, needle, &self.path(outdir));
    }
}

/// The expected `format` of each message, by file name.
const OPENSSL_CASES: &[(&str, &[&str], &str)] = &[
    (
        "gcm256-stream.der",
        &["-stream", "-outform", "DER", "-aes-256-gcm", "a.crt"],
        "cms auth-enveloped-data (AES-256-GCM, RSA PKCS#1 v1.5, der)",
    ),
    (
        "gcm256.der",
        &["-outform", "DER", "-aes-256-gcm", "a.crt"],
        "cms auth-enveloped-data (AES-256-GCM, RSA PKCS#1 v1.5, der)",
    ),
    (
        "gcm128.pem",
        &["-outform", "PEM", "-aes-128-gcm", "a.crt"],
        "cms auth-enveloped-data (AES-128-GCM, RSA PKCS#1 v1.5, pem)",
    ),
    (
        "gcm192-stream.pem",
        &["-stream", "-outform", "PEM", "-aes-192-gcm", "a.crt"],
        "cms auth-enveloped-data (AES-192-GCM, RSA PKCS#1 v1.5, pem)",
    ),
    (
        "gcm256.smime",
        &["-aes-256-gcm", "a.crt"],
        "cms auth-enveloped-data (AES-256-GCM, RSA PKCS#1 v1.5, smime)",
    ),
    (
        "gcm256-stream.smime",
        &["-stream", "-aes-256-gcm", "a.crt"],
        "cms auth-enveloped-data (AES-256-GCM, RSA PKCS#1 v1.5, smime)",
    ),
    (
        "oaep1.der",
        &[
            "-outform",
            "DER",
            "-aes-256-gcm",
            "-recip",
            "a.crt",
            "-keyopt",
            "rsa_padding_mode:oaep",
        ],
        "cms auth-enveloped-data (AES-256-GCM, RSA-OAEP-SHA1, der)",
    ),
    (
        "oaep256.smime",
        &[
            "-stream",
            "-aes-256-gcm",
            "-recip",
            "a.crt",
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
        ],
        "cms auth-enveloped-data (AES-256-GCM, RSA-OAEP-SHA256, smime)",
    ),
    (
        "keyid.der",
        &["-outform", "DER", "-keyid", "-aes-256-gcm", "a.crt"],
        "cms auth-enveloped-data (AES-256-GCM, RSA PKCS#1 v1.5, der)",
    ),
    (
        "two.der",
        &["-outform", "DER", "-aes-256-gcm", "b.crt", "a.crt"],
        "cms auth-enveloped-data (AES-256-GCM, RSA PKCS#1 v1.5, der)",
    ),
    (
        "cbc128.der",
        &["-outform", "DER", "-aes-128-cbc", "a.crt"],
        "cms enveloped-data (AES-128-CBC, RSA PKCS#1 v1.5, der)",
    ),
    (
        "cbc256-stream.der",
        &["-stream", "-outform", "DER", "-aes-256-cbc", "a.crt"],
        "cms enveloped-data (AES-256-CBC, RSA PKCS#1 v1.5, der)",
    ),
    (
        "cbc256.pem",
        &[
            "-outform",
            "PEM",
            "-aes-256-cbc",
            "-recip",
            "a.crt",
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
        ],
        "cms enveloped-data (AES-256-CBC, RSA-OAEP-SHA256, pem)",
    ),
    (
        "cbc256.smime",
        &["-aes-256-cbc", "a.crt"],
        "cms enveloped-data (AES-256-CBC, RSA PKCS#1 v1.5, smime)",
    ),
];

#[test]
fn openssl_cms_messages_decrypt_byte_identically_in_every_form() {
    let pki = Pki::new();
    for (name, args, _) in OPENSSL_CASES {
        pki.encrypt(name, args);
    }
    let names: Vec<&str> = OPENSSL_CASES.iter().map(|(n, ..)| *n).collect();
    let key_forms: [&[&str]; 4] = [
        &["--key", "a.crt", "--key", "a.key"],
        &["--key", "a-bundle.pem"],
        &["--key", "a.p12", "--passphrase-file", "p12pass"],
        &["--key", "a-legacy.p12", "--passphrase-file", "p12pass"],
    ];
    for (i, keys) in key_forms.iter().enumerate() {
        let outdir = format!("out{i}");
        let args = [*keys, &["--allow-unauthenticated"]].concat();
        let (run, lines) = pki.decrypt(&outdir, &names, &args);
        assert_eq!(run.code, 0, "{keys:?}: {}", run.stderr);
        let key_fingerprint = lines[0]["opened_with"].as_str().unwrap().to_owned();
        for (name, _, format) in OPENSSL_CASES {
            pki.assert_identical(&outdir, name);
            let line = lines.iter().find(|l| l["key"] == *name).unwrap();
            assert_eq!(line["format"], *format, "{name}");
            assert_eq!(line["opened_with"], key_fingerprint.as_str(), "{name}");
            assert_eq!(
                line["authenticated"],
                Value::Bool(format.contains("auth-enveloped")),
                "{name}"
            );
        }
    }
    // Unauthenticated content is refused without the flag — under its old name too.
    let (run, lines) = pki.decrypt(
        "strict",
        &["cbc128.der", "gcm256.der"],
        &["--key", "a-bundle.pem"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("no integrity check") && run.stderr.contains("--allow-unauthenticated"),
        "{}",
        run.stderr
    );
    assert!(!pki.path("strict/cbc128.der").exists());
    assert_eq!(lines.iter().filter(|l| l["status"] == "ok").count(), 1);
    let (run, _) = pki.decrypt(
        "old",
        &["cbc128.der"],
        &["--key", "a-bundle.pem", "--allow-legacy-cbc"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    pki.assert_identical("old", "cbc128.der");
}

#[test]
fn recipients_are_found_by_certificate_or_by_trying_each_key() {
    let pki = Pki::new();
    pki.encrypt(
        "two.der",
        &["-outform", "DER", "-aes-256-gcm", "a.crt", "b.crt"],
    );
    pki.encrypt(
        "keyid.der",
        &["-outform", "DER", "-keyid", "-aes-256-gcm", "b.crt"],
    );
    // The second recipient's certificate and key (given in the other order).
    let (run, lines) = pki.decrypt(
        "b",
        &["two.der", "keyid.der"],
        &["--key", "b.key", "--key", "b.crt"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    pki.assert_identical("b", "two.der");
    pki.assert_identical("b", "keyid.der");
    let b_id = lines[0]["opened_with"].as_str().unwrap().to_owned();
    // Keys alone: the subject key identifier is computed from the key; issuer and
    // serial need a certificate, so each key is tried.
    let (run, lines) = pki.decrypt(
        "bare",
        &["two.der", "keyid.der"],
        &["--key", "x.key", "--key", "b.key"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        lines.iter().all(|l| l["opened_with"] == b_id.as_str()),
        "{lines:?}"
    );
    // A certificate that names a recipient, paired with the wrong key: that is said.
    let mismatched = [pki.read("a.crt"), pki.read("x.key")].concat();
    std::fs::write(pki.path("mismatched.pem"), mismatched).unwrap();
    pki.assert_refused(
        "m",
        &["two.der"],
        &["--key", "mismatched.pem", "--key", "x.crt"],
        "none of the 1 RSA key(s)",
    );
    // The stranger's key and certificate: no recipient is theirs.
    pki.assert_refused(
        "x",
        &["two.der"],
        &["--key", "x.key", "--key", "x.crt"],
        "no certificate given names a recipient",
    );
    pki.assert_refused("x", &["two.der"], &["--key", "x.key"], "CN=recording A");
    // No RSA key at all.
    pki.assert_refused(
        "none",
        &["two.der"],
        &["--key", "a.crt"],
        "give the RSA private key",
    );
    // keys inspect shows the certificate and the bundle's contents.
    let inspect = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gcrec"))
            .current_dir(pki.dir.path())
            .args(["keys", "inspect"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = inspect(&["a.crt", "a-bundle.pem"]);
    assert!(text.contains("X.509 certificate, RSA 2048"), "{text}");
    assert!(
        text.contains("subject:     CN=recording A,O=gcrec tests"),
        "{text}"
    );
    assert!(
        text.contains("serial:") && text.contains("valid:") && text.contains("key ID:"),
        "{text}"
    );
    let json: Value =
        serde_json::from_str(inspect(&["--json", "a.crt"]).lines().next().unwrap()).unwrap();
    let cert = &json["certificate"];
    assert_eq!(cert["subject"], "CN=recording A,O=gcrec tests", "{json}");
    assert!(
        cert["not_after"].as_str().unwrap().starts_with("20"),
        "{json}"
    );
    let text = inspect(&["a.p12"]);
    assert!(text.contains("need the passphrase"), "{text}");
    let text = inspect(&["a.p12", "--passphrase-file", "p12pass"]);
    assert!(text.contains("a.p12: rsa key, RSA 2048"), "{text}");
    assert!(
        text.contains("a.p12: X.509 certificate, RSA 2048"),
        "{text}"
    );
    // A certificate in DER names its recipient as well as in PEM.
    run_ok(
        Command::new(openssl())
            .current_dir(pki.dir.path())
            .args(["x509", "-in", "b.crt", "-outform", "DER", "-out", "b.der"]),
    );
    let (run, _) = pki.decrypt("der", &["two.der"], &["--key", "b.der", "--key", "b.key"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    pki.assert_identical("der", "two.der");
}

#[test]
fn python_cryptography_pkcs7_envelopes_decrypt_byte_identically() {
    let pki = Pki::new();
    let script = r#"
import sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
cert = x509.load_pem_x509_certificate(open("a.crt", "rb").read())
data = open("plain.opus", "rb").read()
for name, encoding in [("py.der", serialization.Encoding.DER), ("py.pem", serialization.Encoding.PEM), ("py.smime", serialization.Encoding.SMIME)]:
    for bits, alg in [("128", algorithms.AES128), ("256", algorithms.AES256)]:
        out = pkcs7.PKCS7EnvelopeBuilder().set_data(data).set_content_encryption_algorithm(alg).add_recipient(cert).encrypt(encoding, [pkcs7.PKCS7Options.Binary])
        open(bits + name, "wb").write(out)
"#;
    run_ok(
        Command::new(venv_bin("python"))
            .current_dir(pki.dir.path())
            .args(["-c", script]),
    );
    let names = [
        "128py.der",
        "256py.der",
        "128py.pem",
        "256py.pem",
        "128py.smime",
        "256py.smime",
    ];
    let (run, lines) = pki.decrypt(
        "out",
        &names,
        &["--key", "a-bundle.pem", "--allow-unauthenticated"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in names {
        pki.assert_identical("out", name);
        let line = lines.iter().find(|l| l["key"] == name).unwrap();
        let bits = &name[..3];
        assert!(
            line["format"]
                .as_str()
                .unwrap()
                .starts_with(&format!("cms enveloped-data (AES-{bits}-CBC")),
            "{line}"
        );
    }
}

/// Flips one bit `from_end` bytes before the end of a file.
fn flip(path: &Path, from_end: usize) {
    let mut data = std::fs::read(path).unwrap();
    let i = data.len() - 1 - from_end;
    data[i] ^= 0x01;
    std::fs::write(path, data).unwrap();
}

#[test]
fn tampered_truncated_and_unopenable_messages_fail_with_nothing_written() {
    let pki = Pki::new();
    let keys = ["--key", "a-bundle.pem", "--allow-unauthenticated"];
    // A definite-length DER AuthEnvelopedData ends with its 16-byte MAC.
    pki.encrypt("tag.der", &["-outform", "DER", "-aes-256-gcm", "a.crt"]);
    flip(&pki.path("tag.der"), 3);
    pki.assert_refused("o1", &["tag.der"], &keys, "authentication tag mismatch");
    // A flipped ciphertext byte in the middle: the tag catches it too.
    pki.encrypt(
        "mid.der",
        &["-stream", "-outform", "DER", "-aes-256-gcm", "a.crt"],
    );
    let len = std::fs::metadata(pki.path("mid.der")).unwrap().len() as usize;
    flip(&pki.path("mid.der"), len / 2);
    pki.assert_refused("o2", &["mid.der"], &keys, "authentication tag mismatch");
    // CBC: the last byte of the next-to-last block decides the padding.
    pki.encrypt("pad.der", &["-outform", "DER", "-aes-256-cbc", "a.crt"]);
    flip(&pki.path("pad.der"), 16);
    pki.assert_refused(
        "o3",
        &["pad.der"],
        &["--key", "a-bundle.pem"],
        "pass --allow-unauthenticated",
    );
    pki.assert_refused("o3", &["pad.der"], &keys, "padding is invalid");
    // An indefinite-length message cut short.
    pki.encrypt(
        "cut.der",
        &["-stream", "-outform", "DER", "-aes-256-gcm", "a.crt"],
    );
    let data = pki.read("cut.der");
    std::fs::write(pki.path("cut.der"), &data[..data.len() * 2 / 3]).unwrap();
    pki.assert_refused("o4", &["cut.der"], &keys, "truncated");
    // Cut after the content, before the MAC and the end markers.
    std::fs::write(pki.path("cut2.der"), &data[..data.len() - 30]).unwrap();
    pki.assert_refused("o5", &["cut2.der"], &keys, "truncated");
    // Trailing bytes after a complete message.
    pki.encrypt("tail.der", &["-outform", "DER", "-aes-256-gcm", "a.crt"]);
    let mut tail = pki.read("tail.der");
    tail.extend_from_slice(b"\0\0extra");
    std::fs::write(pki.path("tail.der"), tail).unwrap();
    pki.assert_refused(
        "o6",
        &["tail.der"],
        &keys,
        "data follows the end of the CMS message",
    );
    // A wrong passphrase for the PKCS#12 bundle is a usage error before any file.
    std::fs::write(pki.path("badpass"), "not it\n").unwrap();
    pki.encrypt("ok.der", &["-outform", "DER", "-aes-256-gcm", "a.crt"]);
    pki.assert_refused(
        "o7",
        &["ok.der"],
        &["--key", "a.p12", "--passphrase-file", "badpass"],
        "wrong passphrase",
    );
    // A signed (not encrypted) CMS message is named for what it is.
    run_ok(
        Command::new(openssl())
            .current_dir(pki.dir.path())
            .args([
                "cms",
                "-sign",
                "-binary",
                "-nodetach",
                "-outform",
                "PEM",
                "-in",
                "plain.opus",
            ])
            .args(["-signer", "a.crt", "-inkey", "a.key", "-out", "signed.pem"]),
    );
    std::fs::write(
        pki.path("signed.pem"),
        String::from_utf8(pki.read("signed.pem"))
            .unwrap()
            .replace("PKCS7", "CMS"),
    )
    .unwrap();
    pki.assert_refused("o8", &["signed.pem"], &keys, "signedData");
}

#[test]
fn a_large_indefinite_length_message_streams_in_bounded_memory() {
    // 192 MiB through `gcrec pull` of a local export: the manifest's peak RSS stays far
    // below the message (docs/BENCHMARKS.md has 2 GiB beside openssl cms -decrypt).
    let pki = Pki::new();
    let dir = pki.path("export");
    let key = common::ONE_MEDIA_KEY;
    let media = dir.join(key);
    std::fs::create_dir_all(media.parent().unwrap()).unwrap();
    let big = pki.path("big.opus");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let block: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        f.write_all(b"OggS").unwrap();
        for _ in 0..192 {
            f.write_all(&block).unwrap();
        }
        f.flush().unwrap();
    }
    run_ok(
        Command::new(openssl())
            .args([
                "cms",
                "-encrypt",
                "-binary",
                "-stream",
                "-outform",
                "DER",
                "-aes-256-gcm",
                "-in",
            ])
            .arg(&big)
            .arg("-out")
            .arg(&media)
            .arg(pki.path("a.crt")),
    );
    let out = pki.path("pulled");
    let rss =
        common::pull_in_a_small_budget(&dir, &out, &pki.path("a-bundle.pem"), "192 MiB CMS pull");
    assert!(rss < 64 * 1000 * 1000, "peak RSS {rss}");
    let sha = |p: &Path| {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        std::io::copy(&mut std::fs::File::open(p).unwrap(), &mut h).unwrap();
        hex::encode(h.finalize())
    };
    assert_eq!(sha(&out.join(key)), sha(&big));
}
