//! Peer tools and servers the tests use: GnuPG, Sequoia, the Python venv that
//! `scripts/test` builds from tests/interop/requirements.txt, and moto on a free
//! loopback port. A missing tool fails the test with what to install: nothing skips.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::repo_root;

/// The directory `scripts/test` installs test tools into.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("GCREC_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools"))
}

/// A program on PATH, or a failure naming the package to install.
pub fn tool(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: {install} (scripts/test does this)"))
}

/// A program from the test venv.
pub fn venv_bin(name: &str) -> PathBuf {
    let p = tools_dir().join("py/bin").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/test, which creates the venv from tests/interop/requirements.txt",
        p.display()
    );
    p
}

/// A moto server (S3 + KMS) on a free loopback port, stopped on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let mut child = Command::new(venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(i) = line.find("http://127.0.0.1:") {
                    let url: String = line[i..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    let _ = tx.send(url);
                    sent = true;
                }
            }
        });
        let endpoint = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("moto_server printed its address");
        let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {endpoint}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { child, endpoint }
    }

    /// Points an AWS SDK/CLI command at this server, with test credentials and no
    /// instance-metadata lookups (nothing may leave the machine).
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
