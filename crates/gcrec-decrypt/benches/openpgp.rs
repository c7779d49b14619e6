//! In-memory OpenPGP decryption throughput: gcrec (SEIPDv1's lean path: AES-CFB on one
//! thread, the MDC's SHA-1 on another) next to `gpg
//! --decrypt` on the same message, neither writing to disk (gcrec into `io::sink`, gpg
//! to /dev/null). The message is made by gpg for the TEST-ONLY Curve25519 key in
//! `keys-example/` (SEIPDv1 + MDC, AES-256, no compression), as exports are.
//! `cargo bench -p gcrec-decrypt --bench openpgp [-- MIB]` (needs `gpg`).

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use gcrec_decrypt::keys::{Keyring, Passphrases};

fn main() {
    let mib: usize = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(256);
    let keys_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../keys-example");
    let home = tempfile::tempdir().expect("temp dir");
    let gpg = |args: &[&str]| {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", home.path())
            .args(["--batch", "--quiet", "--trust-model", "always"])
            .args(args);
        c
    };
    let status = gpg(&["--import"])
        .arg(keys_dir.join("pgp-cv25519.sec.asc"))
        .stderr(Stdio::null())
        .status()
        .expect("gpg is needed: apt-get install gnupg");
    assert!(status.success(), "gpg --import failed");

    let plain: Vec<u8> = (0..mib << 20).map(|i| (i * 131 % 251) as u8).collect();
    let mut child = gpg(&["-z", "0", "-r", "cv25519@example.invalid", "--encrypt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gpg");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(&plain));
    let message = child.wait_with_output().expect("gpg --encrypt").stdout;
    feeder.join().expect("feeder").expect("writing to gpg");
    let msg_path = home.path().join("msg.pgp");
    std::fs::write(&msg_path, &message).expect("write message");

    let mut keys = Keyring::new();
    keys.load(
        &keys_dir.join("pgp-cv25519.sec.asc"),
        &mut Passphrases {
            given: Vec::new(),
            prompt: None,
        },
    )
    .expect("load key");

    let report = |label: &str, best: f64| {
        println!(
            "{label}: {mib} MiB in {best:.3} s = {:.0} MB/s",
            (mib << 20) as f64 / best / 1e6
        );
    };
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let out = gcrec_decrypt::openpgp::decrypt(
            Cursor::new(&message[..]),
            false,
            &keys,
            &mut std::io::sink(),
        )
        .expect("decrypt");
        assert_eq!(out.bytes, (mib << 20) as u64);
        best = best.min(start.elapsed().as_secs_f64());
    }
    report("gcrec OpenPGP decrypt, in memory          ", best);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let status = gpg(&["--decrypt", "-o", "/dev/null", "--yes"])
            .arg(&msg_path)
            .stderr(Stdio::null())
            .status()
            .expect("gpg --decrypt");
        assert!(status.success());
        best = best.min(start.elapsed().as_secs_f64());
    }
    report("gpg --decrypt to /dev/null, same message   ", best);
}
