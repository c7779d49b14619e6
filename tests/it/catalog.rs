//! `gcrec index` and `--catalog`: answers equal to live listings (the binary, DuckDB over
//! the same sidecar files), pulls from a catalog that list nothing and read no sidecar
//! (counted at the S3 protocol by the fault proxy in front of moto), stale catalogs.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::tools::{Moto, run_ok, venv_bin};
use common::{Run, files_under, gcrec, gcrec_s3, generated, list_requests};
use gcrec_testkit::servers::FaultProxy;
use gcrec_testkit::{Export, ExportSpec};
use serde_json::Value;

fn spec(anomalies: u32) -> ExportSpec {
    ExportSpec {
        seed: 31,
        orgs: 2,
        days: 3,
        hour_step: 4,
        conversations_per_hour: 2,
        padding: gcrec_testkit::Padding::Mixed,
        anomaly_every: anomalies,
        call_bytes: 256,
        screen_bytes: 256,
        digital_bytes: 256,
        ..ExportSpec::default()
    }
}

/// moto with `export` in `bucket` (Object Lock on when `locked`).
fn moto_with(export: &Export, bucket: &str, locked: bool) -> Moto {
    let moto = Moto::start();
    let client = moto.s3_client();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        client
            .create_bucket()
            .bucket(bucket)
            .object_lock_enabled_for_bucket(locked)
            .send()
            .await
            .unwrap();
        gcrec_testkit::servers::upload(&client, bucket, export.objects()).await;
    });
    moto
}

fn index(source: &str, catalog: &Path) -> Run {
    let run = gcrec([
        "index",
        source,
        "--catalog",
        &catalog.display().to_string(),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// (type, recording ID) of every recording line of `ls --json`.
fn answer(run: &Run) -> BTreeSet<(String, String)> {
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()
        .into_iter()
        .filter(|v| v["type"] == "recording" || v["type"] == "unchecked")
        .map(|v| {
            (
                v["type"].as_str().unwrap().to_owned(),
                v["recording_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn ls_from_a_catalog_answers_what_a_live_ls_answers() {
    let (dir, export) = generated(spec(3));
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("c.sqlite");
    let source = dir.path().display().to_string();
    let first = index(&source, &catalog);
    assert_eq!(
        first.summary()["recordings"],
        export.recordings.len() as u64,
        "{}",
        first.stdout
    );
    let r = &export.recordings[5];
    let ani = export
        .recordings
        .iter()
        .find_map(|r| r.ani.clone())
        .unwrap();
    let queries: Vec<Vec<String>> = vec![
        vec![],
        vec!["--from".into(), "2024-03-02".into()],
        vec![
            "--from".into(),
            "2024-03-01T05:30".into(),
            "--to".into(),
            "2024-03-02T09:10".into(),
        ],
        vec!["--ani".into(), ani.trim_start_matches("tel:+1").to_owned()],
        vec!["--user".into(), r.users[0].to_uppercase()],
        vec![
            "--queue".into(),
            r.queues[0].clone(),
            "--media-type".into(),
            "call".into(),
        ],
        vec![
            "--direction".into(),
            "outbound".into(),
            "--min-duration".into(),
            "5m".into(),
        ],
        vec![
            "--org".into(),
            export.orgs[1].clone(),
            "--max-duration".into(),
            "10m".into(),
        ],
        vec!["--conversation".into(), r.conversation_id.clone()],
    ];
    for q in &queries {
        let mut live = vec![
            "ls".to_owned(),
            source.clone(),
            "--json".into(),
            "--include-unchecked".into(),
        ];
        live.extend(q.iter().cloned());
        let mut cat = vec![
            "ls".to_owned(),
            "--catalog".into(),
            catalog.display().to_string(),
            "--json".into(),
            "--include-unchecked".into(),
        ];
        cat.extend(q.iter().cloned());
        let (live, cat) = (answer(&gcrec(&live)), answer(&gcrec(&cat)));
        assert_eq!(live, cat, "query {q:?}");
        assert!(!cat.is_empty(), "query {q:?} answers something");
    }
    // --count and --csv agree with the JSON answer.
    let count = gcrec([
        "ls",
        "--catalog",
        &catalog.display().to_string(),
        "--count",
        "--from",
        "2024-03-02",
    ]);
    let json = gcrec([
        "ls",
        "--catalog",
        &catalog.display().to_string(),
        "--json",
        "--from",
        "2024-03-02",
    ]);
    assert_eq!(count.stdout.trim(), answer(&json).len().to_string());
    let csv = gcrec([
        "ls",
        "--catalog",
        &catalog.display().to_string(),
        "--csv",
        "--from",
        "2024-03-02",
    ]);
    assert_eq!(csv.stdout.lines().count(), answer(&json).len() + 1);
    assert!(csv.stdout.starts_with("status,organization_id,"));
    // --sort duration orders by duration.
    let sorted = gcrec([
        "ls",
        "--catalog",
        &catalog.display().to_string(),
        "--json",
        "--sort",
        "duration",
    ]);
    let durations: Vec<u64> = sorted
        .json()
        .iter()
        .filter(|v| v["type"] == "recording")
        .filter_map(|v| v["metadata"]["durationMs"].as_u64())
        .collect();
    assert!(durations.len() > 5 && durations.windows(2).all(|w| w[0] <= w[1]));
    // --sort without a catalog is a usage error, naming what is missing.
    let bad = gcrec(["ls", &source, "--sort", "time"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    // Stats and a second, incremental run.
    let stats = gcrec([
        "catalog",
        "stats",
        "--catalog",
        &catalog.display().to_string(),
        "--json",
    ]);
    let stats: Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert_eq!(stats["recordings"], export.recordings.len() as u64);
    assert!(stats["invalid_sidecars"]["invalid"].as_u64().unwrap() > 0);
    let second = index(&source, &catalog);
    assert_eq!(second.summary()["sidecars_read"], 0, "{}", second.stdout);
    assert_eq!(second.summary()["requests"]["get"], 0);
    assert!(second.summary()["listed_from"].is_string());
}

/// Runs a DuckDB query (Python `duckdb` from the test venv) and returns its rows as JSON.
fn duckdb(sql: &str) -> Vec<Vec<Value>> {
    let script = format!(
        "import duckdb, json, sys\nrows = duckdb.sql({sql:?}).fetchall()\nprint(json.dumps([[v if isinstance(v, (int, float, str, list)) or v is None else str(v) for v in r] for r in rows]))\n"
    );
    let out = run_ok(Command::new(venv_bin("python")).args(["-c", &script]));
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn duckdb_over_the_same_sidecars_and_over_the_parquet_export_agrees_with_the_catalog() {
    let (dir, export) = generated(spec(0));
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("c.sqlite");
    let catalog_arg = catalog.display().to_string();
    index(&dir.path().display().to_string(), &catalog);
    let glob = format!("{}/**/*_metadata.json", dir.path().display());
    let sidecars = format!(
        "read_json('{glob}', hive_partitioning = true, union_by_name = true, format = 'auto')"
    );
    let ids = |sql: String| -> BTreeSet<String> {
        duckdb(&sql)
            .into_iter()
            .map(|r| r[0].as_str().unwrap().to_owned())
            .collect()
    };
    let catalog_ids = |args: &[&str]| -> BTreeSet<String> {
        let mut a = vec!["ls", "--catalog", &catalog_arg, "--json"];
        a.extend_from_slice(args);
        answer(&gcrec(a)).into_iter().map(|(_, id)| id).collect()
    };
    // An ANI in a month.
    let ani = export
        .recordings
        .iter()
        .find_map(|r| r.ani.clone())
        .unwrap();
    let digits: String = ani.chars().filter(char::is_ascii_digit).collect();
    let duck = ids(format!(
        "SELECT recordingId FROM {sidecars} WHERE (regexp_replace(aniNormalized, '[^0-9]', '', 'g') = '{digits}' OR regexp_replace(aniDisplayable, '[^0-9]', '', 'g') = '{digits}') AND CAST(conversationStartTime AS TIMESTAMP) >= TIMESTAMP '2024-03-01' AND CAST(conversationStartTime AS TIMESTAMP) < TIMESTAMP '2024-04-01'"
    ));
    assert!(!duck.is_empty());
    assert_eq!(
        duck,
        catalog_ids(&[
            "--ani",
            &format!("+{digits}"),
            "--from",
            "2024-03",
            "--to",
            "2024-03"
        ])
    );
    // A user.
    let user = export.recordings[3].users[0].clone();
    let duck = ids(format!(
        "SELECT recordingId FROM {sidecars} WHERE list_contains(userIds, '{user}')"
    ));
    assert!(!duck.is_empty());
    assert_eq!(duck, catalog_ids(&["--user", &user]));
    // A queue and a wrap-up code.
    let r = export
        .recordings
        .iter()
        .find(|r| !r.wrapup_codes.is_empty() && !r.queues.is_empty())
        .unwrap();
    let (queue, code) = (r.queues[0].clone(), r.wrapup_codes[0].clone());
    let duck = ids(format!(
        "SELECT recordingId FROM {sidecars} WHERE list_contains(queueIds, '{queue}') AND list_contains(wrapupCodes, '{code}')"
    ));
    assert!(!duck.is_empty());
    assert_eq!(
        duck,
        catalog_ids(&["--queue", &queue, "--wrapup-code", &code])
    );

    // The Parquet export reads back in DuckDB with the rows of the NDJSON export.
    let parquet = tmp.path().join("c.parquet");
    let ndjson = tmp.path().join("c.ndjson");
    for (format, out) in [("parquet", &parquet), ("ndjson", &ndjson)] {
        let run = gcrec([
            "catalog",
            "export",
            "--catalog",
            &catalog_arg,
            "--format",
            format,
            "--out",
            &out.display().to_string(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let from_parquet: BTreeMap<String, (Value, Value, Value)> = duckdb(&format!(
        "SELECT recording_id, duration_ms, user_ids, epoch_ms(conversation_start_time) FROM '{}'",
        parquet.display()
    ))
    .into_iter()
    .map(|r| {
        (
            r[0].as_str().unwrap().to_owned(),
            (r[1].clone(), r[2].clone(), r[3].clone()),
        )
    })
    .collect();
    let from_ndjson: BTreeMap<String, (Value, Value, Value)> = std::fs::read_to_string(&ndjson)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            let ms = v["conversation_start_time"].as_str().map(|t| {
                Value::from(
                    chrono::DateTime::parse_from_rfc3339(t)
                        .unwrap()
                        .timestamp_millis(),
                )
            });
            (
                v["recording_id"].as_str().unwrap().to_owned(),
                (
                    v["duration_ms"].clone(),
                    v["user_ids"].clone(),
                    ms.unwrap_or(Value::Null),
                ),
            )
        })
        .collect();
    assert_eq!(from_parquet.len(), export.recordings.len());
    assert_eq!(from_parquet, from_ndjson);
}

#[test]
fn pull_from_a_catalog_lists_nothing_reads_no_sidecar_and_refuses_stale_objects() {
    let export = Export::generate(ExportSpec {
        seed: 45,
        days: 1,
        hour_step: 3,
        ..ExportSpec::default()
    });
    let moto = moto_with(&export, "exports", false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = moto.s3_client();
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("c.sqlite").display().to_string();
    let run = gcrec_s3(
        &moto.endpoint,
        ["index", "s3://exports", "--catalog", &catalog],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pull_catalog = |endpoint: &str, out: &Path| {
        let out = out.display().to_string();
        gcrec_s3(
            endpoint,
            ["pull", "--catalog", &catalog, "--out", &out],
            &[],
        )
    };

    let mut proxy = FaultProxy::start(&moto.endpoint);
    let from_catalog = tmp.path().join("a");
    let run = pull_catalog(&proxy.endpoint, &from_catalog);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = proxy.log();
    let lists = list_requests(&log);
    let sidecar_gets = log
        .iter()
        .filter(|e| e["method"] == "GET" && e["path"].as_str().unwrap().contains("_metadata.json"))
        .count();
    let media = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_some())
        .count();
    let gets = log.iter().filter(|e| e["method"] == "GET").count();
    assert_eq!(lists, 0, "no ListObjects: {log:#?}");
    assert_eq!(sidecar_gets, 0, "no sidecar GET");
    assert_eq!(gets, media, "one GET per media object, nothing else");

    let live = tmp.path().join("b");
    let run = gcrec_s3(
        &moto.endpoint,
        ["pull", "s3://exports", "--out", &live.display().to_string()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = files_under(&live);
    assert_eq!(files_under(&from_catalog), files);
    assert!(files.len() > media);
    for f in &files {
        assert!(
            std::fs::read(from_catalog.join(f)).unwrap() == std::fs::read(live.join(f)).unwrap(),
            "{f} differs"
        );
    }

    // Replaced after indexing: reported stale, nothing of it written.
    let replaced = export
        .recordings
        .iter()
        .find(|r| r.media_key.is_some() && r.sidecar_key.is_some())
        .unwrap();
    let new_body = export
        .recordings
        .iter()
        .find(|o| {
            o.extension == replaced.extension
                && o.media_key.is_some()
                && o.recording_id != replaced.recording_id
        })
        .unwrap()
        .media_body();
    rt.block_on(async {
        client
            .put_object()
            .bucket("exports")
            .key(replaced.media_key.as_deref().unwrap())
            .body(new_body.clone().into())
            .send()
            .await
            .unwrap();
    });
    let stale = tmp.path().join("c");
    let run = pull_catalog(&moto.endpoint, &stale);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("catalog stale") && run.stderr.contains("gcrec index"),
        "{}",
        run.stderr
    );
    let written = files_under(&stale);
    assert!(!written.is_empty());
    assert!(
        !written.iter().any(|f| f.contains(&replaced.recording_id)),
        "nothing of the stale recording: {written:?}"
    );
    // After re-indexing it pulls again.
    let run = gcrec_s3(
        &moto.endpoint,
        ["index", "s3://exports", "--catalog", &catalog, "--full"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = pull_catalog(&moto.endpoint, &stale);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read(stale.join(replaced.media_key.as_deref().unwrap())).unwrap(),
        new_body
    );
}

#[test]
fn hold_from_a_catalog_acts_on_exactly_the_matches_without_a_listing() {
    let export = Export::generate(ExportSpec {
        seed: 47,
        days: 1,
        hour_step: 3,
        ..ExportSpec::default()
    });
    let moto = moto_with(&export, "held", true);
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("c.sqlite").display().to_string();
    let run = gcrec_s3(
        &moto.endpoint,
        ["index", "s3://held", "--catalog", &catalog],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let user = export
        .recordings
        .iter()
        .find(|r| r.has_valid_sidecar())
        .unwrap()
        .users[0]
        .clone();
    let keys = |run: &Run| -> BTreeSet<String> {
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json()
            .iter()
            .filter(|v| v["type"] == "object")
            .map(|v| v["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let live = keys(&gcrec_s3(
        &moto.endpoint,
        ["hold", "s3://held", "--status", "--json", "--user", &user],
        &[],
    ));
    assert!(!live.is_empty());
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let on = gcrec_s3(
        &proxy.endpoint,
        [
            "hold",
            "--catalog",
            &catalog,
            "--on",
            "--json",
            "--user",
            &user,
        ],
        &[],
    );
    assert_eq!(keys(&on), live);
    assert_eq!(
        on.summary()["changed"].as_u64().unwrap() as usize,
        live.len()
    );
    assert_eq!(list_requests(&proxy.log()), 0, "no listing");
    let held: BTreeSet<String> = gcrec_s3(
        &moto.endpoint,
        ["hold", "s3://held", "--status", "--json"],
        &[],
    )
    .json()
    .iter()
    .filter(|v| v["type"] == "object" && v["hold_after"] == "ON")
    .map(|v| v["key"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(held, live, "exactly the matches are held");
}
