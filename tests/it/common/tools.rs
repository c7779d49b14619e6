//! Peer tools and servers the tests use: GnuPG, Sequoia, the Python venv that
//! `scripts/test` builds from tests/interop/requirements.txt, and moto on a free
//! loopback port. A missing tool fails the test with what to install: nothing skips.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(unused_imports)] // each test binary uses a different subset
pub use gcrec_testkit::servers::{Moto, venv_bin};

/// A program on PATH, or a failure naming the package to install.
pub fn tool(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: {install} (scripts/test does this)"))
}

/// Runs a command, asserting success, returning stdout.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A GnuPG home holding the example public keys.
pub fn gnupg_home(keys: &Path) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(tool("gpg", "apt-get install gnupg"))
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--import"])
            .arg(keys.join("pgp-rsa3072.pub.asc"))
            .arg(keys.join("pgp-cv25519.pub.asc")),
    );
    home
}
