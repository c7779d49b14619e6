//! Media verification: recordings damaged at the source — an Opus file cut mid-page, a
//! page with a flipped byte, a ZIP with a flipped byte inside an entry, a call that
//! plays half its sidecar's duration — each encrypted correctly (CMS AES-GCM), so that
//! decryption succeeds, are released and reported with the reason; a clean export
//! reports nothing. `verify --media` finds the same on the output.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::tools::{run_ok, tool};
use gcrec_testkit::export::{Export, ExportSpec};
use serde_json::Value;

fn manifest(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("gcrec-manifest.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "recording" && v["status"] == "ok")
        .collect()
}

#[test]
fn damaged_media_is_released_and_reported_and_a_clean_export_reports_nothing() {
    let export = Export::generate(ExportSpec {
        seed: 77,
        days: 1,
        hour_step: 4,
        conversations_per_hour: 2,
        ..ExportSpec::default()
    });
    let dir = tempfile::tempdir().unwrap();
    export.write_to_dir(dir.path()).unwrap();
    let calls: Vec<_> = export
        .recordings
        .iter()
        .filter(|r| r.media_type == "Call" && r.media_key.is_some() && r.has_valid_sidecar())
        .collect();
    let zips: Vec<_> = export
        .recordings
        .iter()
        .filter(|r| r.media_type != "Call" && r.media_type != "Callback" && r.media_key.is_some())
        .collect();
    assert!(
        calls.len() >= 3 && !zips.is_empty(),
        "{} calls, {} zips",
        calls.len(),
        zips.len()
    );
    let path = |key: &str| dir.path().join(key);
    // Cut mid-page.
    let cut = calls[0].media_key.clone().unwrap();
    let body = calls[0].media_body();
    std::fs::write(path(&cut), &body[..body.len() - 700]).unwrap();
    // A byte flipped inside a page.
    let flipped = calls[1].media_key.clone().unwrap();
    let mut body = calls[1].media_body();
    let mid = body.len() / 2;
    body[mid] ^= 0x20;
    std::fs::write(path(&flipped), &body).unwrap();
    // Plays half its sidecar's duration.
    let short = calls[2].media_key.clone().unwrap();
    let sidecar: Value = serde_json::from_slice(
        &std::fs::read(path(calls[2].sidecar_key.as_ref().unwrap())).unwrap(),
    )
    .unwrap();
    let duration = sidecar["durationMs"].as_u64().unwrap();
    let half = gcrec_testkit::media::ogg_opus_lasting(
        &mut gcrec_testkit::rng::Rng::new(5),
        20_000,
        Some(duration / 2),
    );
    std::fs::write(path(&short), &half).unwrap();
    // A byte flipped inside a ZIP entry's data (past its 30-byte local header and name).
    let zip = zips[0].media_key.clone().unwrap();
    let mut body = zips[0].media_body();
    body[120] ^= 0x01;
    std::fs::write(path(&zip), &body).unwrap();
    // Every damaged file is encrypted correctly: decryption authenticates them.
    let cert = common::repo_root().join("keys-example/rsa3072.cert.pem");
    for key in [&cut, &flipped, &short, &zip] {
        let p = path(key);
        let tmp = p.with_extension("cms");
        run_ok(
            Command::new(tool("openssl", "apt-get install openssl"))
                .args([
                    "cms",
                    "-encrypt",
                    "-binary",
                    "-outform",
                    "DER",
                    "-aes-256-gcm",
                    "-in",
                ])
                .arg(&p)
                .arg("-out")
                .arg(&tmp)
                .arg(&cert),
        );
        std::fs::rename(&tmp, &p).unwrap();
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out");
    let key = common::repo_root().join("keys-example/rsa3072.pem");
    let run = common::gcrec([
        "pull",
        dir.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        run.code, 0,
        "media problems are reported, not failures: {}",
        run.stderr
    );
    assert_eq!(
        run.summary()["counts"]["media_problems"],
        4,
        "{}",
        run.stderr
    );
    let entries = manifest(&out);
    let problems = |key: &str| -> String {
        let e = entries
            .iter()
            .find(|e| e["key"] == key)
            .unwrap_or_else(|| panic!("{key}"));
        e["media"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let p = problems(&cut);
    assert!(
        p.contains("ends inside a page") && p.contains("no end-of-stream page"),
        "{p}"
    );
    assert!(
        problems(&flipped).contains("CRC mismatch"),
        "{}",
        problems(&flipped)
    );
    let p = problems(&short);
    assert!(
        p.contains("plays") && p.contains("the sidecar's durationMs says"),
        "{p}"
    );
    assert!(problems(&zip).contains("entry"), "{}", problems(&zip));
    assert!(run.stderr.contains("with media problems"), "{}", run.stderr);
    // Every other recording was checked and is clean.
    let clean: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            ![&cut, &flipped, &short, &zip].contains(&&e["key"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(clean.len() >= 3);
    for e in &clean {
        assert_eq!(e["media"]["problem_count"], 0, "{e}");
        assert!(
            ["ogg-opus", "zip"].contains(&e["media"]["checked"].as_str().unwrap()),
            "{e}"
        );
    }
    // gcrec decrypt checks what it writes the same way.
    let dec_out = out_dir.path().join("decrypted");
    let run = common::gcrec([
        "decrypt",
        path(&cut).to_str().unwrap(),
        "--out",
        dec_out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run
        .json()
        .into_iter()
        .find(|l| l["type"] == "file")
        .unwrap();
    assert!(
        line["media"]["problem_count"].as_u64().unwrap() >= 1,
        "{line}"
    );
    // verify --media re-checks the output and finds the same four.
    let verify = common::gcrec(["verify", out.to_str().unwrap(), "--media", "--json"]);
    assert_eq!(verify.code, 1, "{}\n{}", verify.stdout, verify.stderr);
    let lines: Vec<Value> = verify
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let flagged: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "media" && l["problem_count"].as_u64().unwrap_or(0) > 0)
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(flagged.len(), 4, "{lines:?}");
}
