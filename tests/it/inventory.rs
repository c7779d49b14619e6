//! `--inventory MANIFEST`: an S3 Inventory report (written by the test kit in AWS's
//! documented layout, CSV; Parquet written by DuckDB) read instead of listing, against
//! moto with the fault proxy counting requests; damaged reports refused before anything
//! is written.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use chrono::{Duration, Utc};
use common::tools::{Moto, run_ok, venv_bin};
use common::{Run, files_under, gcrec, gcrec_s3, list_requests};
use gcrec_testkit::inventory::{InventoryRow, PARQUET_SCHEMA, csv_report, manifest, report_root};
use gcrec_testkit::servers::{FaultProxy, Sse, upload_with};
use gcrec_testkit::{Export, ExportSpec};
use serde_json::Value;

fn export() -> Export {
    let mut export = Export::generate(ExportSpec {
        seed: 77,
        orgs: 2,
        days: 2,
        hour_step: 5,
        conversations_per_hour: 2,
        anomaly_every: 4,
        padding: gcrec_testkit::Padding::Mixed,
        ..ExportSpec::default()
    });
    // A key that needs URL-encoding in a CSV inventory.
    export
        .strays
        .push(("notes/read me+now (1).txt".into(), b"hello".to_vec()));
    export
}

/// Every object's current-version row, plus an old version of a media object and a
/// deleted object (an old version under a delete marker), neither of which exists now.
fn rows(export: &Export) -> Vec<InventoryRow> {
    let now = Utc::now();
    let mut rows: Vec<InventoryRow> = export
        .objects()
        .map(|(k, b)| InventoryRow::current(&k, &b, now))
        .collect();
    let media = export
        .recordings
        .iter()
        .find_map(|r| r.media_key.clone())
        .unwrap();
    rows.push(InventoryRow {
        version_id: Some("old-1".into()),
        is_latest: false,
        size: Some(3),
        etag: Some("0123456789abcdef0123456789abcdef".into()),
        ..InventoryRow::current(&media, b"old", now - Duration::days(3))
    });
    let deleted = format!("{}deleted-recording.opus", export.recordings[0].folder);
    rows.push(InventoryRow {
        version_id: Some("v1".into()),
        is_latest: false,
        ..InventoryRow::current(&deleted, b"gone", now - Duration::days(2))
    });
    rows.push(InventoryRow {
        version_id: Some("v2".into()),
        is_latest: true,
        is_delete_marker: true,
        size: None,
        etag: None,
        ..InventoryRow::current(&deleted, b"", now - Duration::days(1))
    });
    rows
}

fn put(client: &aws_sdk_s3::Client, bucket: &str, objects: Vec<(String, Vec<u8>)>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _ = client.create_bucket().bucket(bucket).send().await;
        let objects = objects.into_iter().map(|(k, b)| (k, b, Default::default()));
        upload_with(client, bucket, &Sse::None, objects).await;
    });
}

/// (type, recording ID or key) of `ls --json` lines.
fn ls_lines(run: &Run) -> BTreeSet<(String, String)> {
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()
        .into_iter()
        .filter(|v| v["type"] != "summary")
        .map(|v| {
            let id = v["recording_id"].as_str().or(v["key"].as_str()).unwrap();
            (v["type"].as_str().unwrap().to_owned(), id.to_owned())
        })
        .collect()
}

/// The manifest key among a report's objects.
fn manifest_key(report: &[(String, Vec<u8>)]) -> String {
    report
        .iter()
        .find(|(k, _)| k.ends_with("manifest.json"))
        .unwrap()
        .0
        .clone()
}

#[test]
fn an_inventory_replaces_the_listing_and_a_damaged_one_is_refused_before_any_write() {
    let export = export();
    let moto = Moto::start();
    let client = moto.s3_client();
    put(&client, "exports", export.objects().collect());
    let rows = rows(&export);
    let created = Utc::now();
    let root = report_root("reports", "exports", "daily");
    let report = csv_report(&root, "exports", "inventory", &rows, 3, created, 5);
    let manifest_url = format!("s3://inventory/{}", manifest_key(&report));
    put(&client, "inventory", report.clone());

    // ls: the same recordings, orphans, invalid sidecars and skipped keys as a listing.
    let live = ls_lines(&gcrec_s3(
        &moto.endpoint,
        ["ls", "s3://exports", "--json", "--include-unchecked"],
        &[],
    ));
    let mut proxy = FaultProxy::start(&moto.endpoint);
    let from_inventory = gcrec_s3(
        &proxy.endpoint,
        [
            "ls",
            "s3://exports",
            "--json",
            "--include-unchecked",
            "--inventory",
            &manifest_url,
        ],
        &[],
    );
    assert_eq!(ls_lines(&from_inventory), live);
    assert!(
        live.iter()
            .any(|(t, k)| t == "skipped" && k == "notes/read me+now (1).txt")
    );
    assert!(
        from_inventory.stderr.contains("inventory made"),
        "{}",
        from_inventory.stderr
    );
    assert!(
        !ls_lines(&from_inventory)
            .iter()
            .any(|(_, k)| k.contains("deleted-recording"))
    );

    // A time range and an organization filter the rows by partition: still no listing.
    let org = export.orgs[1].clone();
    let ranged = [
        "--from",
        "2024-03-01T06:30",
        "--to",
        "2024-03-02T03:00",
        "--org",
        org.as_str(),
    ];
    let mut live_args = vec!["ls", "s3://exports", "--json", "--include-unchecked"];
    live_args.extend_from_slice(&ranged);
    let live_ranged = ls_lines(&gcrec_s3(&moto.endpoint, &live_args, &[]));
    proxy.clear();
    let mut inv_args = live_args.clone();
    inv_args.extend_from_slice(&["--inventory", &manifest_url]);
    let inv_ranged = ls_lines(&gcrec_s3(&proxy.endpoint, &inv_args, &[]));
    assert!(inv_ranged.iter().any(|(t, _)| t == "recording"));
    assert_eq!(
        inv_ranged
            .iter()
            .filter(|(t, _)| t != "skipped")
            .collect::<Vec<_>>(),
        live_ranged
            .iter()
            .filter(|(t, _)| t != "skipped")
            .collect::<Vec<_>>()
    );
    assert_eq!(list_requests(&proxy.log()), 0);

    // pull: zero ListObjects, the same files byte for byte.
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    proxy.clear();
    let run = gcrec_s3(
        &proxy.endpoint,
        [
            "pull",
            "s3://exports",
            "--out",
            &a.display().to_string(),
            "--inventory",
            &manifest_url,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = proxy.log();
    assert_eq!(list_requests(&log), 0, "no ListObjects: {log:#?}");
    assert!(
        log.iter()
            .any(|e| e["path"].as_str().unwrap().contains("manifest.checksum"))
    );
    let run = gcrec_s3(
        &moto.endpoint,
        ["pull", "s3://exports", "--out", &b.display().to_string()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = files_under(&b);
    assert!(files.len() > 10);
    assert_eq!(files_under(&a), files);
    for f in &files {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }

    // A data file whose bytes are not the ones the manifest's MD5 names.
    let broken_root = report_root("broken", "exports", "daily");
    let mut broken = csv_report(&broken_root, "exports", "inventory", &rows, 3, created, 5);
    let data = broken
        .iter_mut()
        .find(|(k, _)| k.ends_with(".csv.gz"))
        .unwrap();
    // One byte flipped: the size the manifest gives, another MD5.
    let middle = data.1.len() / 2;
    data.1[middle] ^= 0x20;
    let manifest_broken = manifest_key(&broken);
    put(&client, "inventory", broken);
    // A pull from a damaged report fails, saying why, and writes nothing.
    let refused = |manifest_key: &str, dir: &str, why: &str| {
        let out = tmp.path().join(dir);
        let run = gcrec_s3(
            &moto.endpoint,
            [
                "pull",
                "s3://exports",
                "--out",
                &out.display().to_string(),
                "--inventory",
                &format!("s3://inventory/{manifest_key}"),
            ],
            &[],
        );
        assert_ne!(run.code, 0);
        assert!(run.stderr.contains(why), "{}", run.stderr);
        assert!(
            files_under(&out).is_empty(),
            "nothing written: {:?}",
            files_under(&out)
        );
    };
    refused(&manifest_broken, "c", "inventory data file's MD5");

    // A manifest.checksum that does not match.
    let bad_root = report_root("badsum", "exports", "daily");
    let mut badsum = csv_report(&bad_root, "exports", "inventory", &rows, 2, created, 7);
    badsum.last_mut().unwrap().1 = b"00000000000000000000000000000000\n".to_vec();
    let manifest_bad = manifest_key(&badsum);
    put(&client, "inventory", badsum);
    refused(&manifest_bad, "d", "manifest.checksum");

    // ORC is refused by name; a report of another bucket too.
    let orc = manifest(
        &report_root("orc", "exports", "d"),
        "exports",
        "inventory",
        "ORC",
        "struct<bucket:string,key:string>",
        &[("orc/x.orc".into(), b"ORC".to_vec())],
        created,
    );
    let orc_key = orc[0].0.clone();
    put(&client, "inventory", orc);
    let run = gcrec_s3(
        &moto.endpoint,
        [
            "ls",
            "s3://exports",
            "--inventory",
            &format!("s3://inventory/{orc_key}"),
        ],
        &[],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("ORC format, which gcrec does not read"),
        "{}",
        run.stderr
    );
    let other = csv_report(
        &report_root("other", "elsewhere", "d"),
        "elsewhere",
        "inventory",
        &rows[..3],
        1,
        created,
        8,
    );
    let other_key = manifest_key(&other);
    put(&client, "inventory", other);
    let run = gcrec_s3(
        &moto.endpoint,
        [
            "ls",
            "s3://exports",
            "--inventory",
            &format!("s3://inventory/{other_key}"),
        ],
        &[],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("inventory is of bucket elsewhere"),
        "{}",
        run.stderr
    );

    // Parquet, written by DuckDB with the documented column names.
    let parquet = parquet_data(tmp.path(), &rows);
    let proot = report_root("parquet", "exports", "daily");
    let pfiles = vec![(format!("{proot}data/part-0.parquet"), parquet)];
    let mut preport = manifest(
        &proot,
        "exports",
        "inventory",
        "Parquet",
        PARQUET_SCHEMA,
        &pfiles,
        created,
    );
    let pkey = preport[0].0.clone();
    preport.extend(pfiles);
    put(&client, "inventory", preport);
    let from_parquet = gcrec_s3(
        &moto.endpoint,
        [
            "ls",
            "s3://exports",
            "--json",
            "--include-unchecked",
            "--inventory",
            &format!("s3://inventory/{pkey}"),
        ],
        &[],
    );
    assert_eq!(ls_lines(&from_parquet), live);
}

/// The rows as a Parquet file, written by DuckDB (keys as they are: Parquet inventories
/// do not URL-encode).
fn parquet_data(dir: &Path, rows: &[InventoryRow]) -> Vec<u8> {
    let csv_path = dir.join("rows.csv");
    let mut w = csv::Writer::from_path(&csv_path).unwrap();
    for r in rows {
        w.write_record([
            "exports".to_owned(),
            r.key.clone(),
            r.version_id.clone().unwrap_or_default(),
            r.is_latest.to_string(),
            r.is_delete_marker.to_string(),
            r.size.map(|s| s.to_string()).unwrap_or_default(),
            r.last_modified
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            r.etag.clone().unwrap_or_default(),
        ])
        .unwrap();
    }
    w.flush().unwrap();
    let out = dir.join("inventory.parquet");
    let script = format!(
        "import duckdb\nduckdb.sql(\"\"\"COPY (SELECT * FROM read_csv('{}', header = false, columns = {{'bucket': 'VARCHAR', 'key': 'VARCHAR', 'version_id': 'VARCHAR', 'is_latest': 'BOOLEAN', 'is_delete_marker': 'BOOLEAN', 'size': 'BIGINT', 'last_modified_date': 'TIMESTAMPTZ', 'e_tag': 'VARCHAR'}})) TO '{}' (FORMAT PARQUET)\"\"\")\n",
        csv_path.display(),
        out.display()
    );
    run_ok(Command::new(venv_bin("python")).args(["-c", &script]));
    std::fs::read(out).unwrap()
}

#[test]
fn since_inventory_lists_live_only_the_hours_after_the_report() {
    let export = Export::generate(ExportSpec {
        seed: 78,
        days: 1,
        hour_step: 4,
        ..ExportSpec::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    export.write_to_dir(&src).unwrap();
    let last = export
        .recordings
        .iter()
        .map(|r| r.conversation_start)
        .max()
        .unwrap();
    let created = last + Duration::hours(2);
    let rows: Vec<InventoryRow> = export
        .objects()
        .map(|(k, b)| InventoryRow::current(&k, &b, created))
        .collect();
    let inv = tmp.path().join("inv");
    let report = csv_report(
        &report_root("", "exports", "daily"),
        "exports",
        "inventory",
        &rows,
        2,
        created,
        1,
    );
    let manifest_path = inv.join(manifest_key(&report));
    for (k, b) in &report {
        let p = inv.join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    }
    // Recordings exported after the report was made.
    let later = Export::generate(ExportSpec {
        seed: 79,
        start: created + Duration::hours(1),
        days: 1,
        hour_step: 24,
        ..ExportSpec::default()
    });
    later.write_to_dir(&src).unwrap();
    let (s, m) = (
        src.display().to_string(),
        manifest_path.display().to_string(),
    );
    let count = |extra: &[&str]| -> u64 {
        let mut args = vec!["ls", &s, "--count", "--inventory", &m];
        args.extend_from_slice(extra);
        let run = gcrec(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.trim().parse().unwrap()
    };
    let live = gcrec(["ls", &s, "--count"]);
    let live: u64 = live.stdout.trim().parse().unwrap();
    assert_eq!(count(&[]), export.recordings.len() as u64);
    assert_eq!(count(&["--since-inventory"]), live);
    assert_eq!(
        live,
        (export.recordings.len() + later.recordings.len()) as u64
    );
    let run = gcrec(["ls", &s, "--count", "--inventory", &m, "--since-inventory"]);
    assert!(run.stderr.contains("are listed live"), "{}", run.stderr);
    // A report that names no data file the folder above it holds.
    let lonely = tmp.path().join("lonely-manifest.json");
    std::fs::copy(&manifest_path, &lonely).unwrap();
    let run = gcrec(["ls", &s, "--inventory", &lonely.display().to_string()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("holds the data file"), "{}", run.stderr);
    let _ = Value::Null;
}
