//! Productions for review platforms: the Concordance load file read back by Python's
//! `csv` module with the Concordance delimiters equals the sidecars field by field
//! (arrays, unicode, quotes, newlines and `þ` included); control numbers follow
//! conversation start, then recording ID, and stay the same after a re-run, after a
//! SIGKILLed run is resumed and after recordings are added; `gcrec verify` checks a
//! production and a lone volume against their load files.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tools::{run_ok, venv_bin};
use gcrec_testkit::export::{Export, ExportSpec};
use serde_json::Value;

/// Reads a load file with Python's csv module, Concordance style, and hashes the files
/// its rows name (relative to the production root).
const READ_DAT: &str = r#"
import csv, hashlib, json, os, sys
root, dat = sys.argv[1], sys.argv[2]
with open(dat, encoding='utf-8-sig', newline='') as f:
    rows = list(csv.reader(f, delimiter='\x14', quotechar='\u00fe'))
header, out = rows[0], []
for row in rows[1:]:
    assert len(row) == len(header), (len(row), len(header))
    rec = {h: v.replace('\u00ae', '\n') for h, v in zip(header, row)}
    for col in ('NATIVEPATH', 'RENDITIONPATH', 'METADATAPATH'):
        p = rec[col]
        if p:
            data = open(os.path.join(root, *p.split('\\')), 'rb').read()
            rec[col + ':md5'] = hashlib.md5(data).hexdigest()
            rec[col + ':sha256'] = hashlib.sha256(data).hexdigest()
            rec[col + ':size'] = str(len(data))
    out.append(rec)
print(json.dumps({'header': header, 'rows': out}))
"#;

fn read_dat(root: &Path, volume: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let dat = root.join(volume).join("DATA").join(format!("{volume}.dat"));
    let bytes = std::fs::read(&dat).unwrap();
    assert!(bytes.starts_with(b"\xef\xbb\xbf"), "a UTF-8 BOM first");
    let out = run_ok(
        Command::new(venv_bin("python"))
            .args(["-c", READ_DAT])
            .arg(root)
            .arg(&dat),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    let header = serde_json::from_value(v["header"].clone()).unwrap();
    let rows = serde_json::from_value(v["rows"].clone()).unwrap();
    (header, rows)
}

fn produce(export: &Path, prod: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "pull".to_owned(),
        export.display().to_string(),
        "--production".into(),
        prod.display().to_string(),
        "--matter".into(),
        "Doe v. Acme ‘24".into(),
        "--prefix".into(),
        "ACME".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    common::gcrec(args)
}

/// Recording ID → control number.
fn numbers(rows: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    rows.iter()
        .map(|r| (r["RECORDINGID"].clone(), r["BEGBATES"].clone()))
        .collect()
}

fn tricky_export(seed: u64, conversations: u32) -> Export {
    let mut export = Export::generate(ExportSpec {
        seed,
        days: 1,
        hour_step: 3,
        conversations_per_hour: conversations,
        ..ExportSpec::default()
    });
    for (i, r) in export
        .recordings
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
    {
        r.wrapup_codes = vec![
            format!("Résolu «vite» \"quoted\" {i}"),
            "two\nlines\r\nand þorn".into(),
            "日本語 ✓".into(),
        ];
        r.queues.push("queue, with comma".into());
        r.ani = Some("tel:+13175550327".into());
    }
    export
}

#[test]
fn a_production_loads_with_concordance_delimiters_and_its_numbers_never_move() {
    let export = tricky_export(41, 3);
    let src = tempfile::tempdir().unwrap();
    export.write_to_dir(src.path()).unwrap();
    let first_user = export
        .recordings
        .iter()
        .find_map(|r| r.users.first().cloned())
        .unwrap();
    // One call cut short at the source: released, and reported in its row.
    let cut = export
        .recordings
        .iter()
        .find(|r| r.media_type == "Call" && r.media_key.is_some() && r.has_valid_sidecar())
        .unwrap();
    let body = cut.media_body();
    std::fs::write(
        src.path().join(cut.media_key.as_ref().unwrap()),
        &body[..body.len() - 700],
    )
    .unwrap();
    let users = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::write(&users, format!("id,name\n{first_user},\"O'Brien, Zoë\"\n")).unwrap();
    let users_arg = users.display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let prod = tmp.path().join("prod");

    let run = produce(src.path(), &prod, &["--users", &users_arg, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = run.summary();
    let produced = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
        .count() as u64;
    assert_eq!(summary["production"]["documents"], produced);
    assert_eq!(summary["production"]["new_documents"], produced);
    assert!(run.stderr.contains("production written"), "{}", run.stderr);

    let (header, rows) = read_dat(&prod, "VOL001");
    assert_eq!(header[0], "BEGBATES");
    assert_eq!(rows.len() as u64, produced);
    let by_id: BTreeMap<&str, _> = export
        .recordings
        .iter()
        .map(|r| (r.recording_id.as_str(), r))
        .collect();
    let mut tricky = 0;
    for row in &rows {
        assert_eq!(row["BEGBATES"], row["ENDBATES"]);
        assert_eq!(row["MATTER"], "Doe v. Acme ‘24");
        let r = by_id[row["RECORDINGID"].as_str()];
        // Every field taken from the sidecar equals the sidecar's value.
        if r.has_valid_sidecar() {
            let sidecar: Value = serde_json::from_slice(
                &std::fs::read(src.path().join(r.sidecar_key.as_ref().unwrap())).unwrap(),
            )
            .unwrap();
            for (column, field) in [
                ("CONVERSATIONID", "conversationId"),
                ("RECORDINGID", "recordingId"),
                ("CUSTODIANIDS", "userIds"),
                ("QUEUES", "queueIds"),
                ("WRAPUPCODES", "wrapupCodes"),
                ("MEDIATYPE", "mediaType"),
                ("DIRECTION", "initialDirection"),
                ("ANI", "aniNormalized"),
                ("DNIS", "dnisNormalized"),
                ("STARTUTC", "startTime"),
                ("ENDUTC", "endTime"),
                ("DURATIONMS", "durationMs"),
                ("CONVERSATIONSTARTUTC", "conversationStartTime"),
            ] {
                let got = &row[column];
                match &sidecar[field] {
                    Value::Array(items) => {
                        let want: Vec<String> = items
                            .iter()
                            .map(|i| i.as_str().unwrap().to_owned())
                            .collect();
                        let got: Vec<String> = if got.is_empty() {
                            Vec::new()
                        } else {
                            got.split(';').map(str::to_owned).collect()
                        };
                        // A newline inside a value comes back as one `\n` (`®` stands
                        // for any line break).
                        let want: Vec<String> =
                            want.iter().map(|w| w.replace("\r\n", "\n")).collect();
                        assert_eq!(got, want, "{column} of {}", r.recording_id);
                    }
                    Value::String(s) => assert_eq!(got, s, "{column}"),
                    Value::Null => assert_eq!(got, "", "{column}"),
                    other => assert_eq!(got, &other.to_string(), "{column}"),
                }
            }
            if r.wrapup_codes.iter().any(|w| w.contains('þ')) {
                tricky += 1;
            }
            // Custodians by name where the mapping names them.
            let names: Vec<String> = r
                .users
                .iter()
                .map(|u| {
                    if *u == first_user {
                        "O'Brien, Zoë".to_owned()
                    } else {
                        u.clone()
                    }
                })
                .collect();
            assert_eq!(row["CUSTODIANS"], names.join(";"));
        }
        // Hashes and sizes of every produced file equal the files'.
        for col in ["NATIVEPATH", "METADATAPATH"] {
            if row[col].is_empty() {
                continue;
            }
            let (md5, sha, size) = match col {
                "NATIVEPATH" => ("MD5HASH", "SHA256HASH", "FILESIZE"),
                _ => ("METADATAMD5HASH", "METADATASHA256HASH", "METADATASIZE"),
            };
            assert_eq!(row[md5], row[&format!("{col}:md5")]);
            assert_eq!(row[sha], row[&format!("{col}:sha256")]);
            assert_eq!(row[size], row[&format!("{col}:size")]);
        }
        let control = &row["BEGBATES"];
        assert!(
            row["NATIVEPATH"].starts_with(&format!("VOL001\\NATIVES\\0001\\{control}.")),
            "{}",
            row["NATIVEPATH"]
        );
        assert_eq!(row["FILEEXT"], r.extension.trim_start_matches('.'));
        assert!(row["SOURCEURI"].starts_with("file://"));
        assert_eq!(
            row["MEDIAPROBLEMS"].is_empty(),
            r.recording_id != cut.recording_id,
            "{}: {}",
            r.recording_id,
            row["MEDIAPROBLEMS"]
        );
    }
    assert!(tricky >= 2, "{tricky} rows with the tricky values");
    // Numbers follow conversation start, then recording ID.
    let mut order: Vec<_> = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
        .map(|r| (r.conversation_start, r.recording_id.clone()))
        .collect();
    order.sort();
    let first = numbers(&rows);
    for (i, (_, id)) in order.iter().enumerate() {
        assert_eq!(first[id], format!("ACME{:07}", i + 1), "{id}");
    }
    // Every file is private, and the production verifies.
    #[cfg(unix)]
    for f in common::files_under(&prod.join("VOL001")) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(prod.join("VOL001").join(&f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is {mode:o}");
    }
    let verified = common::gcrec(["verify".to_owned(), prod.display().to_string()]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(verified.stderr.contains(" 0 missing, 0 altered, 0 extra"));

    // A re-run: nothing new, the same numbers, the same load file.
    let before = std::fs::read(prod.join("VOL001/DATA/VOL001.dat")).unwrap();
    let again = produce(src.path(), &prod, &["--users", &users_arg, "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.summary()["production"]["new_documents"], 0);
    assert_eq!(
        std::fs::read(prod.join("VOL001/DATA/VOL001.dat")).unwrap(),
        before
    );

    // Recordings added to the source (some earlier than every old one) get new numbers
    // after the old ones, in their own order; the old keep theirs. They go to VOL002.
    let mut more = tricky_export(42, 2);
    for r in &mut more.recordings {
        r.conversation_start -= chrono::Duration::days(30);
    }
    more.write_to_dir(src.path()).unwrap();
    let added = produce(src.path(), &prod, &["--volume", "VOL002", "--json"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let new_count = more
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
        .count();
    assert_eq!(
        added.summary()["production"]["new_documents"],
        new_count as u64
    );
    let (_, old_rows) = read_dat(&prod, "VOL001");
    assert_eq!(numbers(&old_rows), first);
    let (_, new_rows) = read_dat(&prod, "VOL002");
    let mut new_order: Vec<_> = more
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
        .map(|r| (r.conversation_start, r.recording_id.clone()))
        .collect();
    new_order.sort();
    let second = numbers(&new_rows);
    for (i, (_, id)) in new_order.iter().enumerate() {
        assert_eq!(second[id], format!("ACME{:07}", first.len() + i + 1));
    }
    assert!(
        new_rows
            .iter()
            .all(|r| r["VOLUME"] == "VOL002" && r["NATIVEPATH"].starts_with("VOL002\\NATIVES\\"))
    );

    // A lone volume verifies as delivered; an altered native is found.
    let vol = prod.join("VOL002");
    let ok = common::gcrec(["verify".to_owned(), vol.display().to_string()]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let native = prod.join(new_rows[0]["NATIVEPATH"].replace('\\', "/"));
    let mut bytes = std::fs::read(&native).unwrap();
    bytes[10] ^= 1;
    std::fs::remove_file(&native).unwrap();
    std::fs::write(&native, &bytes).unwrap();
    let bad = common::gcrec(["verify".to_owned(), vol.display().to_string()]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stdout.contains("altered"), "{}", bad.stdout);
    // Another prefix on the same production is refused before anything is pulled.
    let other = common::gcrec([
        "pull",
        &src.path().display().to_string(),
        "--production",
        &prod.display().to_string(),
        "--matter",
        "Doe v. Acme ‘24",
        "--prefix",
        "OTHER",
    ]);
    assert_eq!(other.code, 2, "{}", other.stderr);
    assert!(other.stderr.contains("prefix `ACME`"), "{}", other.stderr);
}

/// Waits until the manifest in `dir` has `lines` recording lines (or the child ends).
fn wait_for_lines(child: &mut std::process::Child, dir: &Path, lines: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let n = std::fs::read_to_string(dir.join("gcrec-manifest.jsonl"))
            .map(|t| t.matches("\"type\":\"recording\"").count())
            .unwrap_or(0);
        if n >= lines {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn a_production_killed_part_way_and_resumed_numbers_as_an_uninterrupted_one() {
    let export = Export::generate(ExportSpec {
        seed: 43,
        days: 2,
        conversations_per_hour: 3,
        call_bytes: 64 * 1024,
        ..ExportSpec::default()
    });
    let src = tempfile::tempdir().unwrap();
    export.write_to_dir(src.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    let run = produce(src.path(), &clean, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reference = std::fs::read(clean.join("VOL001/DATA/VOL001.dat")).unwrap();
    let total = export.recordings.len();
    assert!(total > 100, "{total}");

    let killed = tmp.path().join("killed");
    let mut kills = 0;
    for at in [5, total / 4, total / 2] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gcrec"))
            .arg("pull")
            .arg(src.path())
            .arg("--production")
            .arg(&killed)
            .args([
                "--matter",
                "Doe v. Acme ‘24",
                "--prefix",
                "ACME",
                "--jobs",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if wait_for_lines(&mut child, &killed, at) {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 2, "only {kills} runs were still going when killed");
    assert!(
        !killed.join("VOL001/DATA/VOL001.dat").exists(),
        "no load file before a run has finished"
    );
    let resumed = produce(src.path(), &killed, &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(
        numbers(&read_dat(&killed, "VOL001").1),
        numbers(&read_dat(&clean, "VOL001").1)
    );
    assert_eq!(
        std::fs::read(killed.join("VOL001/DATA/VOL001.dat")).unwrap(),
        reference,
        "the resumed production's load file equals the uninterrupted one's"
    );
    let verified = common::gcrec(["verify".to_owned(), killed.display().to_string()]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}

/// Writes WAV test signals with Python and encodes them with `opusenc`.
fn opus_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let script = r#"
import wave, math, random, struct, sys
random.seed(7)
for name, rate, ch, secs in [("mono48", 48000, 1, 3), ("stereo16", 16000, 2, 2), ("speech8", 8000, 1, 3)]:
    w = wave.open(sys.argv[1] + "/" + name + ".wav", "wb")
    w.setnchannels(ch); w.setsampwidth(2); w.setframerate(rate)
    out = bytearray()
    for i in range(rate * secs):
        t = i / rate
        for c in range(ch):
            v = 0.3 * math.sin(2 * math.pi * (220 + 110 * c) * t) * (1 + math.sin(t * 3)) / 2 + 0.05 * random.uniform(-1, 1)
            out += struct.pack("<h", int(max(-1, min(1, v)) * 32767))
    w.writeframes(bytes(out)); w.close()
"#;
    run_ok(
        Command::new(venv_bin("python"))
            .args(["-c", script])
            .arg(dir),
    );
    let opusenc = common::tools::tool("opusenc", "apt-get install opus-tools");
    [
        ("mono48", &["--bitrate", "48"][..]),
        ("stereo16", &["--bitrate", "24"][..]),
        ("speech8", &["--bitrate", "8", "--speech"][..]),
    ]
    .iter()
    .map(|(name, args)| {
        let out = dir.join(format!("{name}.opus"));
        run_ok(
            Command::new(&opusenc)
                .arg("--quiet")
                .args(*args)
                .arg(dir.join(format!("{name}.wav")))
                .arg(&out),
        );
        out
    })
    .collect()
}

/// Interleaved 16-bit samples, channels and rate of a WAV file, read by Python's `wave`.
fn wav_samples(path: &Path) -> (Vec<i16>, u64, u64) {
    let script = r#"
import wave, sys, json, array
w = wave.open(sys.argv[1])
assert w.getsampwidth() == 2
a = array.array('h', w.readframes(w.getnframes()))
print(json.dumps([w.getnchannels(), w.getframerate(), list(a)]))
"#;
    let out = run_ok(
        Command::new(venv_bin("python"))
            .args(["-c", script])
            .arg(path),
    );
    let v: (u64, u64, Vec<i16>) = serde_json::from_slice(&out).unwrap();
    (v.2, v.0, v.1)
}

#[test]
fn wav_renditions_equal_opusdec_within_one_lsb_and_sox_reads_them() {
    let work = tempfile::tempdir().unwrap();
    let opus = opus_files(work.path());
    let export = Export::generate(ExportSpec {
        seed: 44,
        days: 1,
        hour_step: 2,
        conversations_per_hour: 2,
        ..ExportSpec::default()
    });
    let src = tempfile::tempdir().unwrap();
    export.write_to_dir(src.path()).unwrap();
    // Real Opus (opusenc's) as the call audio of the first calls.
    let calls: Vec<_> = export
        .recordings
        .iter()
        .filter(|r| r.media_type == "Call" && r.media_key.is_some())
        .collect();
    assert!(calls.len() > opus.len(), "{} calls", calls.len());
    let mut real = BTreeMap::new();
    for (r, file) in calls.iter().zip(&opus) {
        std::fs::copy(file, src.path().join(r.media_key.as_ref().unwrap())).unwrap();
        real.insert(r.recording_id.clone(), file.clone());
    }
    let tmp = tempfile::tempdir().unwrap();
    let prod = tmp.path().join("prod");
    let run = produce(src.path(), &prod, &["--render", "wav", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (_, rows) = read_dat(&prod, "VOL001");
    let opusdec = common::tools::tool("opusdec", "apt-get install opus-tools");
    let soxi = common::tools::tool("soxi", "apt-get install sox");
    let mut compared = 0;
    for row in &rows {
        let is_call = row["FILEEXT"] == "opus";
        assert_eq!(!row["RENDITIONPATH"].is_empty(), is_call, "{row:?}");
        if !is_call {
            continue; // screen recordings and transcripts stay native only
        }
        assert!(row["RENDITIONPATH"].ends_with(&format!("{}.wav", row["BEGBATES"])));
        assert_eq!(row["RENDITIONMD5HASH"], row["RENDITIONPATH:md5"]);
        assert_eq!(row["RENDITIONSHA256HASH"], row["RENDITIONPATH:sha256"]);
        assert_eq!(row["RENDITIONSIZE"], row["RENDITIONPATH:size"]);
        let wav = prod.join(row["RENDITIONPATH"].replace('\\', "/"));
        // sox reads the header.
        let rate = run_ok(Command::new(&soxi).arg("-r").arg(&wav));
        assert_eq!(String::from_utf8_lossy(&rate).trim(), "48000");
        let bits = run_ok(Command::new(&soxi).arg("-b").arg(&wav));
        assert_eq!(String::from_utf8_lossy(&bits).trim(), "16");
        let Some(file) = real.get(&row["RECORDINGID"]) else {
            continue;
        };
        let reference = work.path().join(format!("{}.ref.wav", row["BEGBATES"]));
        run_ok(
            Command::new(&opusdec)
                .args(["--quiet", "--rate", "48000", "--no-dither"])
                .arg(file)
                .arg(&reference),
        );
        let (ours, ch, rate) = wav_samples(&wav);
        let (theirs, ref_ch, ref_rate) = wav_samples(&reference);
        assert_eq!((ch, rate), (ref_ch, ref_rate));
        assert_eq!(ours.len(), theirs.len(), "{}", file.display());
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "{}: samples differ by up to {worst}",
            file.display()
        );
        assert!(
            ours.iter().any(|s| s.abs() > 1000),
            "real audio, not silence"
        );
        let channels = run_ok(Command::new(&soxi).arg("-c").arg(&wav));
        assert_eq!(String::from_utf8_lossy(&channels).trim(), ch.to_string());
        compared += 1;
    }
    assert_eq!(compared, opus.len());
    // A re-run keeps the renditions; the production verifies with them.
    let again = produce(src.path(), &prod, &["--render", "wav", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.summary()["production"]["renditions_made"], 0);
    let verified = common::gcrec(["verify".to_owned(), prod.display().to_string()]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}

#[test]
fn a_production_from_s3_records_each_objects_legal_hold_version_and_uri() {
    let export = Export::generate(ExportSpec {
        seed: 47,
        days: 1,
        hour_step: 3,
        ..ExportSpec::default()
    });
    let moto = common::tools::Moto::start();
    let rt = crate::s3::runtime();
    rt.block_on(crate::s3::upload_locked(
        &moto.s3_client(),
        "evidence",
        &export,
    ));
    let held = export
        .recordings
        .iter()
        .find(|r| r.media_key.is_some())
        .unwrap();
    crate::s3::hold_conversation(&moto, "s3://evidence", &held.conversation_id);
    let tmp = tempfile::tempdir().unwrap();
    let prod = tmp.path().join("prod");
    let run = common::gcrec_s3(
        &moto.endpoint,
        [
            "pull",
            "s3://evidence",
            "--production",
            &prod.display().to_string(),
            "--matter",
            "M-7",
            "--prefix",
            "EV",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (_, rows) = read_dat(&prod, "VOL001");
    assert_eq!(
        rows.len(),
        export
            .recordings
            .iter()
            .filter(|r| r.media_key.is_some())
            .count()
    );
    for row in &rows {
        let want = if row["CONVERSATIONID"] == held.conversation_id {
            "ON"
        } else {
            "OFF"
        };
        assert_eq!(row["LEGALHOLD"], want, "{row:?}");
        assert!(
            row["SOURCEURI"].starts_with("s3://evidence/"),
            "{}",
            row["SOURCEURI"]
        );
        assert!(
            !row["SOURCEVERSION"].is_empty(),
            "a versioned bucket: {row:?}"
        );
        assert!(!row["SOURCEETAG"].is_empty() && !row["SOURCEETAG"].contains('"'));
    }
    assert!(rows.iter().any(|r| r["LEGALHOLD"] == "ON"));
}
