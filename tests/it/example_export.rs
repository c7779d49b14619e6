//! The committed example export decrypts, with the test keys, to exactly what the
//! generator makes; its media are real containers by independent tools' judgement; and
//! the README shows what `gcrec ls` really prints for it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{gcrec, repo_root};
use gcrec_testkit::{Export, ExportSpec};

fn example_dir() -> PathBuf {
    repo_root().join("examples/export")
}

fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The example decrypted with keys-example/, once per test binary.
fn decrypted() -> &'static (tempfile::TempDir, Vec<serde_json::Value>) {
    static DONE: std::sync::OnceLock<(tempfile::TempDir, Vec<serde_json::Value>)> =
        std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let keys = repo_root().join("keys-example");
        let run = gcrec([
            "decrypt".as_ref(),
            example_dir().as_os_str(),
            "--key".as_ref(),
            keys.as_os_str(),
            "--passphrase-file".as_ref(),
            keys.join("passphrase.txt").as_os_str(),
            "--out".as_ref(),
            out.path().as_os_str(),
            "--json".as_ref(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let lines = run.json();
        (out, lines)
    })
}

#[test]
fn the_example_decrypts_to_exactly_what_the_generator_makes() {
    let (out, _) = decrypted();
    let got = files_under(out.path());
    let export = Export::generate(ExportSpec::example());
    let stray_keys: Vec<&String> = export.strays.iter().map(|(k, _)| k).collect();
    let want: BTreeMap<String, Vec<u8>> = export
        .objects()
        .filter(|(k, _)| !stray_keys.contains(&k))
        .collect();
    let keys = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&got),
        keys(&want),
        "examples/export is stale: run scripts/make-example"
    );
    for (key, body) in &want {
        assert!(got[key] == *body, "{key} differs: run scripts/make-example");
    }
    let total: u64 = files_under(&example_dir())
        .values()
        .map(|b| b.len() as u64)
        .sum();
    assert!(
        total <= 1_000_000,
        "the example export must stay under 1 MB ({total} bytes)"
    );
}

#[test]
fn the_example_mixes_every_container() {
    let (_, lines) = decrypted();
    let formats: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["type"] == "file")
        .filter_map(|l| l["format"].as_str())
        .collect();
    for f in [
        "openpgp",
        "openpgp (armored)",
        "s3ec v2 (AES-GCM, RSA-OAEP-SHA1)",
        "s3ec v3 (AES-GCM, key-committing, AES/GCM)",
        "plain ogg",
        "sidecar (copied verbatim)",
    ] {
        assert!(formats.contains(f), "{f} missing from {formats:?}");
    }
}

fn tool(name: &str, package: &str) -> Command {
    Command::new(common::tools::tool(
        name,
        &format!("apt-get install {package}"),
    ))
}

#[test]
fn decrypted_example_media_are_valid_ogg_opus_and_zip_files() {
    let dir = decrypted().0.path().to_path_buf();
    let files = files_under(&dir);
    let opus: Vec<_> = files.keys().filter(|k| k.ends_with(".opus")).collect();
    let zips: Vec<_> = files.keys().filter(|k| k.ends_with(".zip")).collect();
    assert!(opus.len() >= 3 && zips.len() >= 3);
    for key in opus {
        let out = tool("opusinfo", "opus-tools")
            .arg(dir.join(key))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "opusinfo rejects {key}: {text}");
        assert!(
            !text.contains("WARNING") && !text.contains("ERROR"),
            "{key}: {text}"
        );
        let out = tool("ogginfo", "vorbis-tools")
            .arg(dir.join(key))
            .output()
            .unwrap();
        assert!(out.status.success(), "ogginfo rejects {key}");
    }
    for key in zips {
        let out = tool("python3", "python3")
            .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); sys.exit(z.testzip() is not None or not z.namelist())"])
            .arg(dir.join(key))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{key} is not a valid ZIP: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_readme_shows_real_ls_output() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = "<!-- ls-example:start -->\n```console\n$ gcrec ls examples/export\n";
    let end = "```\n<!-- ls-example:end -->";
    let from = readme.find(start).expect("README has the ls example block") + start.len();
    let to = from + readme[from..].find(end).expect("the block ends");
    let shown = &readme[from..to];
    let run = gcrec(["ls", example_dir().to_str().unwrap()]);
    assert_eq!(run.code, 0);
    let actual = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(
        shown, actual,
        "update README.md's ls example with the output above"
    );
}

#[test]
fn the_readme_first_command_pulls_the_example_as_it_says() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let command = readme
        .lines()
        .find(|l| l.starts_with("cargo run -- pull examples/export"))
        .expect("README's first command");
    let out = tempfile::tempdir().unwrap();
    let args: Vec<String> = command
        .trim_start_matches("cargo run --")
        .split_whitespace()
        .map(|a| {
            if a == "recordings" {
                out.path().join("recordings").display().to_string()
            } else {
                a.to_owned()
            }
        })
        .collect();
    let quoted = |after: &str| {
        let from = readme.find(after).expect(after) + after.len();
        let to = readme[from..].find('`').unwrap() + from;
        readme[from..to]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let run = |args: &[String]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gcrec"))
            .args(args)
            .current_dir(repo_root())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    // The first run, then the same command again.
    for intro in [
        "The summary reads `",
        "Run the command again and it pulls nothing (`",
    ] {
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(0), "{stderr}");
        let said = quoted(intro);
        assert!(
            stderr.starts_with(&said),
            "README says {said:?}; gcrec printed {stderr:?}"
        );
    }
}
