//! Helpers shared by the end-to-end tests: run the `gcrec` binary, read its JSON Lines,
//! and generate exports into temporary directories.

#![allow(dead_code)] // each test binary uses a different subset

pub mod tools;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use gcrec_testkit::{Export, ExportSpec};
use serde_json::Value;

/// What a `gcrec` run did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON Lines on stdout, parsed.
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// IDs of the JSON records of this `type`.
    pub fn ids(&self, kind: &str) -> BTreeSet<String> {
        self.json()
            .iter()
            .filter(|v| v["type"] == kind)
            .map(|v| v["recording_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// One string field of every JSON record of this `type`, in order.
    pub fn strings(&self, kind: &str, field: &str) -> Vec<String> {
        self.json()
            .iter()
            .filter(|v| v["type"] == kind)
            .map(|v| v[field].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The final summary record.
    pub fn summary(&self) -> Value {
        let lines = self.json();
        let last = lines.last().expect("a summary line").clone();
        assert_eq!(last["type"], "summary");
        last
    }
}

/// Runs the `gcrec` binary built for these tests.
pub fn gcrec<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
    cmd.args(args)
        .env_remove("GCREC_LOG")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    no_aws(&mut cmd);
    let out = cmd.output().expect("run gcrec");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

/// Runs `gcrec` against a local S3 endpoint (moto, or a fault proxy in front of it)
/// with test credentials, plus `env`.
pub fn gcrec_s3<I, S>(endpoint: &str, args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    assert!(endpoint.starts_with("http://127.0.0.1:"), "loopback only");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gcrec"));
    cmd.args(args)
        .env_remove("GCREC_LOG")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    no_aws(&mut cmd);
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run gcrec");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

/// How many requests of a fault proxy's log were ListObjects calls.
pub fn list_requests(log: &[Value]) -> usize {
    log.iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.contains("list-type")))
        .count()
}

/// Files under `dir`, relative, sorted (gcrec's own bookkeeping files left out).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel != "gcrec-manifest.jsonl" && rel != ".gcrec.lock" {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Keeps a command away from real AWS: no instance metadata (169.254.169.254), no
/// profiles, and every endpoint on a closed loopback port. Tests that want a server
/// (moto) override these.
pub fn no_aws(cmd: &mut Command) {
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI");
}

/// Runs `cmd` (a `gcrec decrypt … --json`): the run, and its `file` lines.
pub fn decrypt_json(cmd: &mut Command) -> (Run, Vec<Value>) {
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    let lines = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "file")
        .collect();
    (run, lines)
}

/// Asserts a run failed with `needle` in its errors and left nothing under `out`.
pub fn assert_refused_empty(run: &Run, needle: &str, out: &Path) {
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains(needle),
        "expected {needle:?} in:\n{}",
        run.stderr
    );
    let left = files_under(out);
    assert!(left.is_empty(), "files left behind: {left:?}");
}

/// The one media key of the single-recording exports the large-object tests build.
pub const ONE_MEDIA_KEY: &str = "6e1f0a52-0000-4000-8000-000000000001/year=2024/month=03/day=01/hour=00/\
     conversation_id=6e1f0a52-0000-4000-8000-0000000000c1/6e1f0a52-0000-4000-8000-0000000000e1.opus";

/// Pulls a local export with `key` and a 16 MiB download budget — so the peak RSS shows
/// what the decryptor itself holds — and returns that peak, after asserting success.
pub fn pull_in_a_small_budget(export: &Path, out: &Path, key: &Path, what: &str) -> u64 {
    let run = gcrec([
        "pull",
        export.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
        "--max-buffer",
        "16777216",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rss = run.summary()["peak_rss_bytes"].as_u64().unwrap();
    eprintln!("{what}: peak RSS {rss} bytes");
    rss
}

/// Generates an export into a fresh temporary directory.
pub fn generated(spec: ExportSpec) -> (tempfile::TempDir, Export) {
    let dir = tempfile::tempdir().expect("tempdir");
    let export = Export::generate(spec);
    export.write_to_dir(dir.path()).expect("write export");
    (dir, export)
}

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}
