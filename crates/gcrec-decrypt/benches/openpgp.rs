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
    let cpu_before = cpu_seconds();
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
    println!(
        "gcrec's CPU (both threads): {:.2} s per run",
        (cpu_seconds() - cpu_before) / 3.0
    );
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

/// This process's user + system CPU seconds so far, every thread's (from /proc/self/stat,
/// in Linux's fixed 100 ticks per second): what a change to the copies or hashing saves
/// shows here even when the wall time is set by the other thread.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which is in parentheses: utime and stime are
    // the 12th and 13th of them.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|t| t.parse::<u64>().expect("ticks"))
        .sum();
    ticks as f64 / 100.0
}
