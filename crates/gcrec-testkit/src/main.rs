//! `gcrec-testkit generate`: write a deterministic synthetic export to a directory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gcrec_fetch::prune::{Bound, parse_time_bound};
use gcrec_testkit::{Export, ExportSpec, Padding};

#[derive(Parser)]
#[command(
    name = "gcrec-testkit",
    about = "Synthetic Genesys Cloud exports for tests, examples and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt a file as an S3 Encryption Client object (V2 or V3), streaming, writing
    /// OUT and OUT.gcrec-object.json. For test and benchmark inputs of any size.
    EncryptS3ec {
        /// Envelope version.
        #[arg(long, value_enum, default_value = "v3")]
        version: gcrec_testkit::s3ec::Version,
        /// Wrap the data key with this RSA public key (PEM) ...
        #[arg(long, conflicts_with = "aes_key")]
        rsa_public: Option<PathBuf>,
        /// ... or with this AES-256 key (raw or base64).
        #[arg(long)]
        aes_key: Option<PathBuf>,
        /// Plaintext file.
        input: PathBuf,
        /// Ciphertext file.
        out: PathBuf,
    },
    /// GET every object of a bucket to nowhere, JOBS at a time, and print what it took: the
    /// ceiling a client of this S3 server can reach (benchmarks). Loopback endpoints only.
    GetAll {
        /// `http://127.0.0.1:PORT`.
        #[arg(long)]
        endpoint: String,
        /// Bucket to read.
        #[arg(long)]
        bucket: String,
        /// Concurrent GETs.
        #[arg(long, default_value_t = 16)]
        jobs: usize,
    },
    /// Forward 127.0.0.1:LISTEN to 127.0.0.1:UPSTREAM, holding every request DELAY_MS
    /// first: a store far away, for benchmarks. Runs until killed.
    LatencyProxy {
        /// Port to listen on (127.0.0.1).
        #[arg(long)]
        listen: u16,
        /// Port of the S3 server (127.0.0.1).
        #[arg(long)]
        upstream: u16,
        /// Milliseconds each request is held.
        #[arg(long)]
        delay_ms: u64,
    },
    /// Rewrite the committed example export (examples/export) from ExportSpec::example().
    Example {
        /// Output directory; its previous contents are replaced.
        #[arg(long, default_value = "examples/export")]
        out: PathBuf,
    },
    /// Write a synthetic S3 Inventory report (CSV, gzip) of ROWS export-shaped keys under
    /// DIR, laid out like its bucket — keys only, no objects: for benchmarking
    /// `ls --inventory --count`.
    InventoryReport {
        /// Output directory (the report's bucket).
        #[arg(long)]
        out: PathBuf,
        /// Rows (two per recording: media and sidecar).
        #[arg(long)]
        rows: u64,
        /// Data files to spread them over.
        #[arg(long, default_value_t = 16)]
        files: u64,
    },
    /// Write a generated export under DIR, laid out like the bucket.
    Generate {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed and options always give the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Organizations sharing the bucket.
        #[arg(long, default_value_t = 1)]
        orgs: usize,
        /// First hour (UTC date or RFC 3339 instant).
        #[arg(long, default_value = "2024-03-01")]
        start: String,
        /// Days of hours to fill.
        #[arg(long, default_value_t = 1)]
        days: u32,
        /// Only every N-th hour has conversations.
        #[arg(long, default_value_t = 1)]
        hour_step: u32,
        /// Conversations per active hour.
        #[arg(long, default_value_t = 1)]
        per_hour: u32,
        /// Approximate bytes per call recording (.opus).
        #[arg(long, default_value_t = 4096)]
        call_bytes: usize,
        /// Approximate bytes per screen recording (.zip).
        #[arg(long, default_value_t = 8192)]
        screen_bytes: usize,
        /// Approximate bytes per digital recording (.zip).
        #[arg(long, default_value_t = 2048)]
        digital_bytes: usize,
        /// Partition spelling.
        #[arg(long, value_enum, default_value = "padded")]
        padding: Padding,
        /// Break every N-th recording on purpose and add foreign keys (0: clean export).
        #[arg(long, default_value_t = 0)]
        anomaly_every: u32,
        /// A prefix before the organization folders.
        #[arg(long, default_value = "")]
        root: String,
    },
}

fn encrypt_s3ec(
    version: gcrec_testkit::s3ec::Version,
    rsa_public: Option<PathBuf>,
    aes_key: Option<PathBuf>,
    input: &std::path::Path,
    out: &std::path::Path,
) -> Result<()> {
    use gcrec_testkit::s3ec::{Wrap, encrypt};
    use rsa::pkcs8::DecodePublicKey;
    let wrap = match (rsa_public, aes_key) {
        (Some(p), None) => Wrap::RsaOaep(rsa::RsaPublicKey::from_public_key_pem(
            &std::fs::read_to_string(p)?,
        )?),
        (None, Some(p)) => Wrap::AesGcm(*gcrec_decrypt::keys::read_aes_key(&p)?),
        _ => anyhow::bail!("give --rsa-public or --aes-key"),
    };
    let file = std::fs::File::open(input).with_context(|| input.display().to_string())?;
    encrypt(std::io::BufReader::new(file), out, version, &wrap)?;
    Ok(())
}

/// Lists `bucket`, then GETs every object with `jobs` requests in flight, dropping the
/// bytes as they arrive.
fn get_all(endpoint: &str, bucket: &str, jobs: usize) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    anyhow::ensure!(
        endpoint.starts_with("http://127.0.0.1:"),
        "get-all talks to a loopback endpoint only"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = gcrec_testkit::servers::s3_client_for(endpoint);
        let start = std::time::Instant::now();
        let mut keys = Vec::new();
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            keys.extend(
                page?
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        let listed = start.elapsed();
        let bytes: u64 = futures::stream::iter(keys.iter())
            .map(|key| {
                let client = client.clone();
                async move {
                    let mut body = client
                        .get_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await?
                        .body;
                    let mut n = 0u64;
                    while let Some(chunk) = body.try_next().await? {
                        n += chunk.len() as u64;
                    }
                    anyhow::Ok(n)
                }
            })
            .buffer_unordered(jobs.max(1))
            .try_fold(0u64, |sum, n| async move { Ok(sum + n) })
            .await?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{{\"objects\":{},\"bytes\":{bytes},\"list_seconds\":{:.3},\"seconds\":{secs:.3}}}",
            keys.len(),
            listed.as_secs_f64()
        );
        Ok(())
    })
}

/// Writes a report of `rows` synthetic keys in `files` data files, streaming (any size).
fn inventory_report(out: &std::path::Path, rows: u64, files: u64) -> Result<()> {
    use gcrec_testkit::inventory::{InventoryRow, manifest, report_root};
    use std::io::Write;
    let root = report_root("", "exports", "bench");
    let created = chrono::Utc::now();
    let start = parse_time_bound("2024-01-01", Bound::Start)?;
    let mut rng = gcrec_testkit::rng::Rng::new(42);
    let org = rng.uuid();
    let mut data = Vec::new();
    let recordings = rows / 2;
    let per_file = recordings.div_ceil(files.max(1));
    for f in 0..files.max(1) {
        let key = format!("{root}data/{}.csv.gz", rng.uuid());
        let path = out.join(&key);
        std::fs::create_dir_all(path.parent().unwrap_or(out))?;
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(&mut gz);
        for i in (f * per_file)..((f + 1) * per_file).min(recordings) {
            // Recordings spread over hours, 120 an hour, in no particular file order.
            let hour = start + chrono::Duration::hours((i / 120) as i64);
            let conversation = rng.uuid();
            let recording = rng.uuid();
            let folder = format!(
                "{org}/year={}/month={}/day={}/hour={}/conversation_id={conversation}/",
                hour.format("%Y"),
                hour.format("%m"),
                hour.format("%d"),
                hour.format("%H")
            );
            for (name, size) in [
                (format!("{recording}.opus"), 40_000u64),
                (format!("{recording}_metadata.json"), 1_000),
            ] {
                let mut row = InventoryRow::current(&format!("{folder}{name}"), b"", created);
                row.size = Some(size);
                csv.write_record(row.csv_fields("exports"))?;
            }
        }
        csv.flush()?;
        drop(csv);
        gz.finish()?.flush()?;
        let bytes = std::fs::read(&path)?;
        data.push((key, bytes));
    }
    for (key, body) in manifest(
        &root,
        "exports",
        "inventory",
        "CSV",
        gcrec_testkit::inventory::CSV_SCHEMA,
        &data,
        created,
    ) {
        let path = out.join(&key);
        std::fs::create_dir_all(path.parent().unwrap_or(out))?;
        std::fs::write(&path, body)?;
        if key.ends_with("manifest.json") {
            println!("{}", path.display());
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let (spec, out) = match Cli::parse().command {
        Command::EncryptS3ec {
            version,
            rsa_public,
            aes_key,
            input,
            out,
        } => return encrypt_s3ec(version, rsa_public, aes_key, &input, &out),
        Command::GetAll {
            endpoint,
            bucket,
            jobs,
        } => return get_all(&endpoint, &bucket, jobs),
        Command::LatencyProxy {
            listen,
            upstream,
            delay_ms,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            return Ok(runtime.block_on(gcrec_testkit::latency::serve(
                listen,
                upstream,
                std::time::Duration::from_millis(delay_ms),
            ))?);
        }
        Command::InventoryReport { out, rows, files } => {
            return inventory_report(&out, rows, files);
        }
        Command::Example { out } => {
            if out.exists() {
                std::fs::remove_dir_all(&out)
                    .with_context(|| format!("clearing {}", out.display()))?;
            }
            (ExportSpec::example(), out)
        }
        Command::Generate {
            out,
            seed,
            orgs,
            start,
            days,
            hour_step,
            per_hour,
            call_bytes,
            screen_bytes,
            digital_bytes,
            padding,
            anomaly_every,
            root,
        } => (
            ExportSpec {
                seed,
                orgs,
                start: parse_time_bound(&start, Bound::Start)?,
                days,
                hour_step,
                conversations_per_hour: per_hour,
                call_bytes,
                screen_bytes,
                digital_bytes,
                padding,
                anomaly_every,
                root,
            },
            out,
        ),
    };
    let export = Export::generate(spec);
    export
        .write_to_dir(&out)
        .with_context(|| format!("writing the export to {}", out.display()))?;
    let orphans = export
        .recordings
        .iter()
        .filter(|r| r.media_key.is_none() || r.sidecar_key.is_none())
        .count();
    eprintln!(
        "wrote {} recordings ({} orphans) and {} stray keys to {}",
        export.recordings.len(),
        orphans,
        export.strays.len(),
        out.display()
    );
    Ok(())
}
