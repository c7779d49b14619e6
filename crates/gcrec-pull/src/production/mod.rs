//! Evidence productions: a volume review platforms load (Relativity, Concordance-style
//! tools, Nuix, Everlaw), written from a pull.
//!
//! A production pull downloads, decrypts and verifies into `DIR/pulled/` (the mirror
//! layout, with the pull manifest at `DIR/gcrec-manifest.jsonl`, resumable like any
//! pull). When the run has finished, [`finish`]:
//!
//! 1. gives every newly pulled media object a control number (`ABC0000001`), in the order
//!    of its conversation's start time, then recording ID, then key, after every number
//!    given before; numbers live in the register `DIR/gcrec-production.sqlite` and are
//!    never moved or reused, so they are the same after a re-run, after a killed run is
//!    resumed and after recordings are added to the source;
//! 2. places each document's files in its volume — `VOL001/NATIVES/0001/ABC0000001.opus`,
//!    its sidecar at `VOL001/METADATA/0001/ABC0000001.json`, a WAV rendition (asked for)
//!    at `VOL001/RENDITIONS/0001/ABC0000001.wav` — as hard links to the verified pulled
//!    files (copied where links are not possible), each hashed again (MD5 and SHA-256);
//! 3. writes `VOL001/DATA/VOL001.dat`, the Concordance load file ([`dat`]).
//!
//! One control number per document (BEGBATES = ENDBATES): the sidecar is not a separate
//! document, its fields are the load file's fields and the file itself is the
//! `METADATAPATH` field. Documented in docs/productions.md.

pub mod dat;
mod register;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use md5::Md5;
use rusqlite::params;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::manifest::{self, Entry, Index, Status};
use crate::release::{PendingFile, temp_name};
use crate::verify::FileStatus;
use register::{FileRow, Register, Settings, transaction};

/// The register of control numbers, beside the volumes.
pub const REGISTER: &str = "gcrec-production.sqlite";
/// Where the pull itself writes (mirror layout), beside the volumes.
pub const PULLED: &str = "pulled";
/// Natives, in each volume.
pub const NATIVES: &str = "NATIVES";
/// Renditions, in each volume.
pub const RENDITIONS: &str = "RENDITIONS";
/// The sidecars, in each volume.
pub const METADATA: &str = "METADATA";
/// The load file's folder, in each volume.
pub const DATA: &str = "DATA";
/// Documents per numbered folder (`NATIVES/0001`, `NATIVES/0002`, …).
pub const PER_FOLDER: u64 = 1000;
/// Digits of a control number after the prefix (more when numbers outgrow them).
pub const DIGITS: usize = 7;
/// Documents handled per register transaction.
const BATCH: i64 = 500;
/// A users mapping larger than this is refused.
const MAX_USERS_FILE: u64 = 64 << 20;

/// A rendition made beside each native.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// Ogg/Opus audio decoded to 16-bit PCM WAV (other media stay native only).
    Wav,
}

/// User IDs and the names they stand for (the custodians' names in the load file).
#[derive(Debug, Clone, Default)]
pub struct Users(HashMap<String, String>);

impl Users {
    /// Reads a CSV mapping with a header row naming an ID column (`id`, `userId` or
    /// `user_id`) and a name column (`name`, `userName` or `user_name`).
    pub fn load(path: &Path) -> Result<Self, ProductionError> {
        let file = manifest::open_no_follow(path).map_err(io_at(path))?;
        let meta = file.metadata().map_err(io_at(path))?;
        let problem = |line: u64, what: String| ProductionError::Users {
            path: path.to_owned(),
            line,
            problem: what,
        };
        if !meta.is_file() || meta.len() > MAX_USERS_FILE {
            return Err(problem(
                0,
                format!("not a regular file of at most {MAX_USERS_FILE} bytes"),
            ));
        }
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(BufReader::new(file));
        let headers = reader
            .headers()
            .map_err(|e| problem(1, e.to_string()))?
            .clone();
        let column = |names: &[&str]| {
            headers.iter().position(|h| {
                let h = h.trim().trim_start_matches('\u{feff}');
                names.iter().any(|n| h.eq_ignore_ascii_case(n))
            })
        };
        let (Some(id), Some(name)) = (
            column(&["id", "userId", "user_id"]),
            column(&["name", "userName", "user_name"]),
        ) else {
            return Err(problem(
                1,
                "the header needs an `id` column and a `name` column".into(),
            ));
        };
        let mut map = HashMap::new();
        for (i, record) in reader.records().enumerate() {
            let line = i as u64 + 2;
            let record = record.map_err(|e| problem(line, e.to_string()))?;
            let (Some(k), Some(v)) = (record.get(id), record.get(name)) else {
                return Err(problem(line, "a row without an id or a name".into()));
            };
            if !k.trim().is_empty() {
                map.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        Ok(Self(map))
    }

    /// The name for a user ID, or the ID when the mapping has none.
    pub fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.0.get(id).map_or(id, String::as_str)
    }

    /// How many users the mapping names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it names none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a production is and how to write it.
#[derive(Debug, Clone)]
pub struct ProductionOptions {
    /// The production's directory (volumes, register, pulled files).
    pub dir: PathBuf,
    /// The legal matter.
    pub matter: String,
    /// Control-number prefix, e.g. `ABC`.
    pub prefix: String,
    /// The first control number of a new production.
    pub start: u64,
    /// The volume new documents go to, e.g. `VOL001`.
    pub volume: String,
    /// A rendition beside each native.
    pub render: Option<Render>,
    /// Names for custodians' user IDs.
    pub users: Option<Arc<Users>>,
}

impl ProductionOptions {
    /// Checks the names that become file names.
    pub fn check(&self) -> Result<(), ProductionError> {
        for (what, value) in [("prefix", &self.prefix), ("volume", &self.volume)] {
            if !safe_name(value) {
                return Err(ProductionError::BadName {
                    what,
                    value: value.clone(),
                });
            }
        }
        if self.start == 0 {
            return Err(ProductionError::BadName {
                what: "first number",
                value: "0".into(),
            });
        }
        Ok(())
    }
}

/// Letters, digits, `_` and `-`, 1 to 32 of them, starting with a letter or digit.
fn safe_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What the run adds to the load file besides the manifest.
#[derive(Debug, Default)]
pub struct ProductionRun {
    /// Legal-hold status per media key at extraction (`ON`/`OFF`), when the source has
    /// Object Lock.
    pub holds: Option<BTreeMap<String, String>>,
}

/// What [`finish`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProductionReport {
    /// The volumes written (their directories).
    pub volumes: Vec<PathBuf>,
    /// The load files written.
    pub load_files: Vec<PathBuf>,
    /// Documents in the load files.
    pub documents: u64,
    /// Documents numbered by this run.
    pub new_documents: u64,
    /// The first and last control numbers given by this run.
    pub new_range: Option<(String, String)>,
    /// Renditions made by this run.
    pub renditions_made: u64,
    /// Documents whose load-file row reports media problems.
    pub media_problems: u64,
    /// Files that could not be produced, as `CONTROL: reason` (the rest were).
    pub problems: Vec<String>,
}

/// A production could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ProductionError {
    /// A file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The register could not be used.
    #[error("the production register {}: {source}", path.display())]
    Register {
        /// The register.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The register is not one this build wrote.
    #[error("{} is not a gcrec production register (or one from a newer gcrec); give the production's own directory", .0.display())]
    NotARegister(PathBuf),
    /// The production was started with other settings.
    #[error(
        "this production was started with {what} `{was}`, not `{now}`: control numbers depend on it, so a production keeps it; use a new directory for another"
    )]
    Mismatch {
        /// The setting.
        what: &'static str,
        /// What the register holds.
        was: String,
        /// What this run asked for.
        now: String,
    },
    /// A name that becomes a file name is not safe.
    #[error(
        "the production {what} `{value}` must be 1–32 letters, digits, `_` or `-` (starting with a letter or digit), and a number at least 1"
    )]
    BadName {
        /// Which.
        what: &'static str,
        /// What was given.
        value: String,
    },
    /// The users mapping could not be read.
    #[error("the users mapping {}, line {line}: {problem}", path.display())]
    Users {
        /// The file.
        path: PathBuf,
        /// Its line (0: the file as a whole).
        line: u64,
        /// What is wrong.
        problem: String,
    },
    /// Not a production or a volume.
    #[error("{}: neither a production (no {REGISTER}) nor a volume (no DATA/NAME.dat)", .0.display())]
    NotAProduction(PathBuf),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ProductionError + '_ {
    move |source| ProductionError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A control number.
pub fn control(prefix: &str, number: u64) -> String {
    format!("{prefix}{number:0DIGITS$}")
}

/// The numbered folder a document's files go to.
fn folder(number: u64) -> String {
    format!("{:04}", (number.saturating_sub(1)) / PER_FOLDER + 1)
}

/// The file extension kept from a pulled file's name (letters and digits only).
fn extension(path: &str) -> Option<String> {
    let name = path.rsplit('/').next()?;
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 12 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| ext.to_ascii_lowercase())
}

/// A document's file path inside the production (`/`-separated).
fn produced_path(
    volume: &str,
    kind: &str,
    control: &str,
    number: u64,
    ext: Option<&str>,
) -> String {
    let name = match ext {
        Some(ext) => format!("{control}.{ext}"),
        None => control.to_owned(),
    };
    format!("{volume}/{kind}/{}/{name}", folder(number))
}

/// A production path as load files write it: backslashes, from the production's root.
pub fn load_file_path(rel: &str) -> String {
    rel.replace('/', "\\")
}

/// Whether a pulled entry becomes a document: pulled media (not an orphan sidecar).
fn producible(e: &Entry) -> bool {
    e.status == Some(Status::Ok) && !e.outputs.is_empty()
}

/// The conversation's start as a sortable UTC text, from the sidecar.
fn sort_time(sidecar: &serde_json::Map<String, Value>) -> Option<String> {
    let text = sidecar.get("conversationStartTime")?.as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(
        t.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.9fZ")
            .to_string(),
    )
}

/// MD5 and SHA-256 of a regular file (no links), hex, with its size.
fn hash_file(path: &Path) -> io::Result<(u64, String, String)> {
    let mut file = manifest::open_no_follow(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let (mut md5, mut sha) = (Md5::new(), Sha256::new());
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
        size += n as u64;
    }
    Ok((
        size,
        hex::encode(md5.finalize()),
        hex::encode(sha.finalize()),
    ))
}

/// Places `origin` (a verified pulled file) at `rel` inside `dir`: a hard link, or a
/// copy where links are not possible; then hashes what is there and checks it is what
/// was pulled. An earlier placement from the same origin that is still whole is kept.
fn place(
    dir: &Path,
    rel: &str,
    origin: &Path,
    origin_sha256: &str,
    earlier: Option<FileRow>,
) -> Result<FileRow, String> {
    let dest = manifest::inside_creating(dir, rel).map_err(|e| format!("{rel}: {e}"))?;
    if let Some(row) = earlier.filter(|r| r.path == rel && r.origin_sha256 == origin_sha256)
        && std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == row.size)
    {
        return Ok(row);
    }
    if !std::fs::symlink_metadata(origin).is_ok_and(|m| m.is_file()) {
        return Err(format!(
            "the pulled file {} is missing (run the pull again)",
            origin.display()
        ));
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dest.with_file_name(temp_name(&name));
    let _ = std::fs::remove_file(&temp);
    let linked = std::fs::hard_link(origin, &temp).is_ok();
    let result = (|| -> io::Result<()> {
        if linked {
            std::fs::rename(&temp, &dest)?;
        } else {
            let mut from = manifest::open_no_follow(origin)?;
            let mut to = PendingFile::create(&dest)?;
            io::copy(&mut from, &mut to)?;
            to.release()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(format!("{rel}: {e}"));
    }
    let (size, md5, sha256) = hash_file(&dest).map_err(|e| format!("{rel}: {e}"))?;
    if sha256 != origin_sha256 {
        let _ = std::fs::remove_file(&dest);
        return Err(format!(
            "{rel}: the pulled file changed after it was verified (SHA-256 {sha256}, the manifest says {origin_sha256}); pull again, re-hashing existing outputs"
        ));
    }
    Ok(FileRow {
        path: rel.to_owned(),
        size,
        sha256,
        md5,
        origin_sha256: origin_sha256.to_owned(),
    })
}

/// A production keeps the matter and prefix it was started with.
fn agree(settings: &Settings, asked: &Settings) -> Result<(), ProductionError> {
    for (what, was, now) in [
        ("matter", &settings.matter, &asked.matter),
        ("prefix", &settings.prefix, &asked.prefix),
    ] {
        if was != now {
            return Err(ProductionError::Mismatch {
                what,
                was: was.clone(),
                now: now.clone(),
            });
        }
    }
    Ok(())
}

/// Checks, before anything is pulled, that the options can write this production: safe
/// names, and the matter and prefix of an existing production.
pub fn preflight(options: &ProductionOptions) -> Result<(), ProductionError> {
    options.check()?;
    let path = options.dir.join(REGISTER);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    let asked = Settings {
        matter: options.matter.clone(),
        prefix: options.prefix.clone(),
        start: options.start,
    };
    match Register::open(&path)?.settings()? {
        Some(settings) => agree(&settings, &asked),
        None => Ok(()),
    }
}

/// Numbers the pulled entries that have no control number yet, in conversation start,
/// recording ID, key order, after every number given before. Returns how many.
fn number_new(
    reg: &Register,
    index: &Index,
    pulled: &Path,
    settings: &Settings,
    volume: &str,
) -> Result<(u64, Option<(u64, u64)>), ProductionError> {
    transaction(reg, |c| {
        c.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS candidates (
                media_key TEXT PRIMARY KEY, sort_time TEXT, recording_id TEXT NOT NULL,
                conversation_id TEXT NOT NULL, organization_id TEXT NOT NULL,
                original_name TEXT NOT NULL, source_uri TEXT NOT NULL);
             DELETE FROM candidates;",
        )?;
        {
            let mut known = c.prepare("SELECT 1 FROM documents WHERE media_key = ?1")?;
            let mut insert =
                c.prepare("INSERT OR IGNORE INTO candidates VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
            for e in index.entries().filter(producible) {
                if known.exists([&e.key])? {
                    continue;
                }
                let sidecar = e
                    .sidecar_output()
                    .and_then(|o| manifest::inside(pulled, &o.path))
                    .map(|p| manifest::read_sidecar(&p))
                    .unwrap_or_default();
                let original = e.outputs[0]
                    .path
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                insert.execute(params![
                    e.key,
                    sort_time(&sidecar),
                    e.recording_id,
                    e.conversation_id,
                    e.organization_id,
                    original,
                    e.source
                ])?;
            }
        }
        let next: i64 = c.query_row(
            "SELECT max(coalesce(max(number) + 1, ?1), ?1) FROM documents",
            [i64::try_from(settings.start).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?;
        let added = c.execute(
            "INSERT INTO documents (number, media_key, volume, sort_time, recording_id,
                 conversation_id, organization_id, original_name, source_uri, assigned_at)
             SELECT ?1 - 1 + row_number() OVER (
                        ORDER BY sort_time IS NULL, sort_time, recording_id, media_key),
                    media_key, ?2, sort_time, recording_id, conversation_id, organization_id,
                    original_name, source_uri, ?3
             FROM candidates
             WHERE media_key NOT IN (SELECT media_key FROM documents)",
            params![next, volume, chrono::Utc::now().to_rfc3339()],
        )? as u64;
        c.execute_batch("DELETE FROM candidates")?;
        let range = (added > 0).then(|| (next as u64, next as u64 + added - 1));
        Ok((added, range))
    })
}

/// Writes the production's volumes from the pull manifest in `dir` (see the module
/// documentation). Files that cannot be produced are reported in
/// [`ProductionReport::problems`]; the rest are written.
pub fn finish(
    options: &ProductionOptions,
    index: &Index,
    run: &ProductionRun,
) -> Result<ProductionReport, ProductionError> {
    options.check()?;
    let dir = options.dir.as_path();
    let pulled = dir.join(PULLED);
    let reg = Register::open(&dir.join(REGISTER))?;
    let asked = Settings {
        matter: options.matter.clone(),
        prefix: options.prefix.clone(),
        start: options.start,
    };
    let settings = reg.settle(&asked)?;
    agree(&settings, &asked)?;
    let mut report = ProductionReport::default();
    let (added, range) = number_new(&reg, index, &pulled, &settings, &options.volume)?;
    report.new_documents = added;
    report.new_range =
        range.map(|(a, b)| (control(&settings.prefix, a), control(&settings.prefix, b)));

    // Place every document's files, a batch of documents per transaction.
    let mut after = 0i64;
    loop {
        let batch: Vec<(u64, String, String)> = {
            let mut s = reg
                .conn
                .prepare("SELECT number, media_key, volume FROM documents WHERE number > ?1 ORDER BY number LIMIT ?2")
                .map_err(register_err(&reg))?;
            s.query_map(params![after, BATCH], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            })
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(register_err(&reg))?
        };
        let Some(last) = batch.last() else { break };
        after = last.0 as i64;
        reg.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(register_err(&reg))?;
        for (number, key, volume) in batch {
            let Some(e) = index.get(&key).filter(producible) else {
                continue;
            };
            let control = control(&settings.prefix, number);
            produce_document(
                &reg,
                dir,
                &pulled,
                options,
                run,
                &e,
                number,
                &control,
                &volume,
                &mut report,
            )?;
        }
        reg.conn
            .execute_batch("COMMIT")
            .map_err(register_err(&reg))?;
    }

    // The load files, one per volume.
    let volumes: Vec<String> = {
        let mut s = reg
            .conn
            .prepare("SELECT DISTINCT volume FROM documents ORDER BY volume")
            .map_err(register_err(&reg))?;
        s.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(register_err(&reg))?
    };
    for volume in volumes {
        if !safe_name(&volume) {
            return Err(ProductionError::NotARegister(reg.path.clone()));
        }
        let (path, rows, problems) = write_load_file(&reg, dir, &settings, options, &volume)?;
        report.documents += rows;
        report.media_problems += problems;
        report.volumes.push(dir.join(&volume));
        report.load_files.push(path);
    }
    Ok(report)
}

fn register_err(reg: &Register) -> impl FnOnce(rusqlite::Error) -> ProductionError + '_ {
    move |source| ProductionError::Register {
        path: reg.path.clone(),
        source,
    }
}

/// Places one document's native, sidecar and rendition and records its facts.
#[allow(clippy::too_many_arguments)]
fn produce_document(
    reg: &Register,
    dir: &Path,
    pulled: &Path,
    options: &ProductionOptions,
    run: &ProductionRun,
    e: &Entry,
    number: u64,
    control: &str,
    volume: &str,
    report: &mut ProductionReport,
) -> Result<(), ProductionError> {
    let hold = run
        .holds
        .as_ref()
        .and_then(|h| h.get(&e.key).cloned())
        .unwrap_or_default();
    let problems = e
        .media
        .as_ref()
        .map(|m| m.problems.join(&dat::MULTI.to_string()))
        .unwrap_or_default();
    let flag = |b: Option<bool>| b.map(|b| if b { "true" } else { "false" });
    reg.conn
        .execute(
            "UPDATE documents SET source_uri = ?2, version_id = ?3, etag = ?4, encryption = ?5,
                 authenticated = ?6, size_matches = ?7, media_problems = ?8, legal_hold = ?9
             WHERE number = ?1",
            params![
                number as i64,
                e.source,
                e.version_id,
                e.etag,
                e.encryption,
                flag(e.authenticated),
                flag(e.sidecar_file_size_matches),
                problems,
                hold
            ],
        )
        .map_err(register_err(reg))?;
    let native = &e.outputs[0];
    let mut work: Vec<(&str, &str, &manifest::OutputFile)> = vec![("native", NATIVES, native)];
    if let Some(s) = e.sidecar_output() {
        work.push(("metadata", METADATA, s));
    } else {
        reg.drop_file(number, "metadata")?;
    }
    let mut native_row = None;
    for (role, kind, out) in work {
        let ext = if role == "metadata" {
            Some("json".to_owned())
        } else {
            extension(&out.path)
        };
        let rel = produced_path(volume, kind, control, number, ext.as_deref());
        let Some(origin) = manifest::inside(pulled, &out.path) else {
            report.problems.push(format!(
                "{control}: the pulled path {} is not safe",
                out.path
            ));
            continue;
        };
        match place(dir, &rel, &origin, &out.sha256, reg.file(number, role)?) {
            Ok(row) => {
                reg.set_file(number, role, &row)?;
                if role == "native" {
                    native_row = Some(row);
                }
            }
            Err(problem) => report.problems.push(format!("{control}: {problem}")),
        }
    }
    if let (Some(Render::Wav), Some(native)) = (options.render, native_row) {
        let rel = produced_path(volume, RENDITIONS, control, number, Some("wav"));
        let earlier = reg.file(number, "rendition")?;
        match render::wav(dir, &rel, &native, earlier) {
            Ok(Some((row, made))) => {
                reg.set_file(number, "rendition", &row)?;
                report.renditions_made += u64::from(made);
            }
            Ok(None) => reg.drop_file(number, "rendition")?,
            Err(problem) => report
                .problems
                .push(format!("{control}: rendition: {problem}")),
        }
    }
    Ok(())
}

/// The load file's columns, in order.
pub const COLUMNS: &[&str] = &[
    "BEGBATES",
    "ENDBATES",
    "MATTER",
    "VOLUME",
    "CONVERSATIONID",
    "RECORDINGID",
    "ORGANIZATIONID",
    "CUSTODIANS",
    "CUSTODIANIDS",
    "QUEUES",
    "WRAPUPCODES",
    "MEDIATYPE",
    "MESSAGETYPE",
    "DIRECTION",
    "ANI",
    "ANIDISPLAY",
    "DNIS",
    "DNISDISPLAY",
    "STARTUTC",
    "ENDUTC",
    "DURATIONMS",
    "CONVERSATIONSTARTUTC",
    "CONVERSATIONENDUTC",
    "LANGUAGES",
    "PROVIDER",
    "FILENAME",
    "FILEEXT",
    "ORIGINALFILENAME",
    "FILESIZE",
    "MD5HASH",
    "SHA256HASH",
    "NATIVEPATH",
    "RENDITIONPATH",
    "RENDITIONSIZE",
    "RENDITIONMD5HASH",
    "RENDITIONSHA256HASH",
    "METADATAPATH",
    "METADATASIZE",
    "METADATAMD5HASH",
    "METADATASHA256HASH",
    "LEGALHOLD",
    "SOURCEURI",
    "SOURCEVERSION",
    "SOURCEETAG",
    "ENCRYPTION",
    "AUTHENTICATED",
    "SIZEMATCHESSIDECAR",
    "MEDIAPROBLEMS",
];

/// The load-file columns of each produced file — path, size, MD5, SHA-256 — for the
/// native, the rendition and the sidecar, in that order (the writer and `check` share
/// them).
const FILE_COLUMNS: &[(&str, &str, &str, &str)] = &[
    ("NATIVEPATH", "FILESIZE", "MD5HASH", "SHA256HASH"),
    (
        "RENDITIONPATH",
        "RENDITIONSIZE",
        "RENDITIONMD5HASH",
        "RENDITIONSHA256HASH",
    ),
    (
        "METADATAPATH",
        "METADATASIZE",
        "METADATAMD5HASH",
        "METADATASHA256HASH",
    ),
];

/// Load-file columns taken from the sidecar, with the sidecar field each holds.
pub const SIDECAR_COLUMNS: &[(&str, &str)] = &[
    ("CONVERSATIONID", "conversationId"),
    ("RECORDINGID", "recordingId"),
    ("ORGANIZATIONID", "organizationId"),
    ("CUSTODIANIDS", "userIds"),
    ("QUEUES", "queueIds"),
    ("WRAPUPCODES", "wrapupCodes"),
    ("MEDIATYPE", "mediaType"),
    ("MESSAGETYPE", "messageType"),
    ("DIRECTION", "initialDirection"),
    ("ANI", "aniNormalized"),
    ("ANIDISPLAY", "aniDisplayable"),
    ("DNIS", "dnisNormalized"),
    ("DNISDISPLAY", "dnisDisplayable"),
    ("STARTUTC", "startTime"),
    ("ENDUTC", "endTime"),
    ("DURATIONMS", "durationMs"),
    ("CONVERSATIONSTARTUTC", "conversationStartTime"),
    ("CONVERSATIONENDUTC", "conversationEndTime"),
    ("LANGUAGES", "languageIds"),
    ("PROVIDER", "provider"),
];

/// A sidecar value as a load-file field: strings as they are, arrays as their values
/// joined by `;`, anything else as JSON.
pub fn sidecar_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| sidecar_value(Some(i)))
            .collect::<Vec<_>>()
            .join(&dat::MULTI.to_string()),
        Some(other) => other.to_string(),
    }
}

/// Writes `VOLUME/DATA/VOLUME.dat` from the register; returns its path, its rows and
/// how many report media problems.
fn write_load_file(
    reg: &Register,
    dir: &Path,
    settings: &Settings,
    options: &ProductionOptions,
    volume: &str,
) -> Result<(PathBuf, u64, u64), ProductionError> {
    let rel = format!("{volume}/{DATA}/{volume}.dat");
    let path = manifest::inside_creating(dir, &rel).map_err(io_at(dir))?;
    let mut statement = reg
        .conn
        .prepare(
            "SELECT d.number, d.media_key, d.conversation_id, d.recording_id, d.organization_id,
                    d.original_name, d.source_uri, d.version_id, d.etag, d.encryption,
                    d.authenticated, d.size_matches, d.media_problems, d.legal_hold,
                    n.path, n.size, n.md5, n.sha256,
                    r.path, r.size, r.md5, r.sha256,
                    m.path, m.size, m.md5, m.sha256
             FROM documents d
             JOIN files n ON n.number = d.number AND n.role = 'native'
             LEFT JOIN files r ON r.number = d.number AND r.role = 'rendition'
             LEFT JOIN files m ON m.number = d.number AND m.role = 'metadata'
             WHERE d.volume = ?1
             ORDER BY d.number",
        )
        .map_err(register_err(reg))?;
    let mut rows = statement.query([volume]).map_err(register_err(reg))?;
    let (mut count, mut problems) = (0u64, 0u64);
    let mut file = PendingFile::create(&path).map_err(io_at(&path))?;
    file.write_all(dat::BOM.as_bytes()).map_err(io_at(&path))?;
    dat::write_record(&mut file, COLUMNS).map_err(io_at(&path))?;
    let text = |row: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<String> {
        Ok(row.get::<_, Option<String>>(i)?.unwrap_or_default())
    };
    let number_text = |row: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<String> {
        Ok(row
            .get::<_, Option<i64>>(i)?
            .map(|n| n.to_string())
            .unwrap_or_default())
    };
    while let Some(row) = rows.next().map_err(register_err(reg))? {
        let get = || -> rusqlite::Result<BTreeMap<&'static str, String>> {
            let number = row.get::<_, i64>(0)?.max(0) as u64;
            let control = control(&settings.prefix, number);
            let native_path = text(row, 14)?;
            let metadata_path = text(row, 22)?;
            let sidecar = (!metadata_path.is_empty())
                .then(|| manifest::inside(dir, &metadata_path))
                .flatten()
                .map(|p| manifest::read_sidecar(&p))
                .unwrap_or_default();
            let mut f: BTreeMap<&'static str, String> = BTreeMap::new();
            for (column, field) in SIDECAR_COLUMNS {
                f.insert(column, sidecar_value(sidecar.get(*field)));
            }
            for (column, i) in [
                ("CONVERSATIONID", 2),
                ("RECORDINGID", 3),
                ("ORGANIZATIONID", 4),
            ] {
                if f[column].is_empty() {
                    f.insert(column, text(row, i)?);
                }
            }
            let ids: Vec<String> = match sidecar.get("userIds") {
                Some(Value::Array(a)) => a.iter().map(|v| sidecar_value(Some(v))).collect(),
                _ => Vec::new(),
            };
            let names: Vec<&str> = ids
                .iter()
                .map(|id| options.users.as_ref().map_or(id.as_str(), |u| u.name(id)))
                .collect();
            f.insert("CUSTODIANS", names.join(&dat::MULTI.to_string()));
            let file_name = native_path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            f.insert("FILEEXT", extension(&native_path).unwrap_or_default());
            f.insert("FILENAME", file_name);
            f.insert("BEGBATES", control.clone());
            f.insert("ENDBATES", control);
            f.insert("MATTER", settings.matter.clone());
            f.insert("VOLUME", volume.to_owned());
            f.insert("ORIGINALFILENAME", text(row, 5)?);
            f.insert("SOURCEURI", text(row, 6)?);
            f.insert("SOURCEVERSION", text(row, 7)?);
            f.insert("SOURCEETAG", text(row, 8)?.trim_matches('"').to_owned());
            f.insert("ENCRYPTION", text(row, 9)?);
            f.insert("AUTHENTICATED", text(row, 10)?);
            f.insert("SIZEMATCHESSIDECAR", text(row, 11)?);
            f.insert("MEDIAPROBLEMS", text(row, 12)?);
            f.insert("LEGALHOLD", text(row, 13)?);
            // Path, size, MD5, SHA-256 of the native, rendition and sidecar: columns
            // 14–25 of the query, four each.
            for (i, (path, size, md5, sha256)) in FILE_COLUMNS.iter().enumerate() {
                let at = 14 + 4 * i;
                f.insert(path, load_file_path(&text(row, at)?));
                f.insert(size, number_text(row, at + 1)?);
                f.insert(md5, text(row, at + 2)?);
                f.insert(sha256, text(row, at + 3)?);
            }
            Ok(f)
        };
        let f = get().map_err(register_err(reg))?;
        if !f["MEDIAPROBLEMS"].is_empty() {
            problems += 1;
        }
        let values: Vec<&str> = COLUMNS
            .iter()
            .map(|c| f.get(c).map_or("", String::as_str))
            .collect();
        dat::write_record(&mut file, &values).map_err(io_at(&path))?;
        count += 1;
    }
    file.release().map_err(io_at(&path))?;
    Ok((path, count, problems))
}

/// What checking a production against its load files found.
#[derive(Debug, Clone, Default)]
pub struct ProductionCheck {
    /// The load files read.
    pub load_files: Vec<PathBuf>,
    /// Every file a row names or the volumes hold, by path from the production's
    /// directory (`VOL001/NATIVES/…`).
    pub files: BTreeMap<String, FileStatus>,
    /// Rows read.
    pub documents: u64,
}

/// Checks a production (every volume in it) or a single volume (a directory holding
/// `DATA/NAME.dat`) against its load files: every file a row names is there with its
/// size, MD5 and SHA-256; files no row names are extra.
pub fn check(dir: &Path) -> Result<ProductionCheck, ProductionError> {
    let mut files = BTreeMap::new();
    let mut load_files = Vec::new();
    let mut documents = 0;
    let (root, volumes) = volumes(dir)?;
    for (volume, dat_path) in volumes {
        let (header, records) = open_load_file(&dat_path)?;
        let at = |name: &str| header.iter().position(|h| h == name);
        let mut named = std::collections::HashSet::new();
        let vol_prefix = format!("{volume}/");
        let dat_rel = format!("{volume}/{DATA}/{volume}.dat");
        for record in records {
            let record = record.map_err(io_at(&dat_path))?;
            let Some(record) = record else {
                files.insert(
                    format!("{dat_rel} (an unreadable record)"),
                    FileStatus::Altered,
                );
                continue;
            };
            documents += 1;
            for &(p, s, m, h) in FILE_COLUMNS {
                let get = |name: &str| {
                    at(name)
                        .and_then(|i| record.get(i))
                        .map(String::as_str)
                        .unwrap_or("")
                };
                let rel = get(p).replace('\\', "/");
                if rel.is_empty() {
                    continue;
                }
                let status = match manifest::inside(&root, &rel)
                    .filter(|_| rel.starts_with(&vol_prefix))
                {
                    None => FileStatus::Missing,
                    Some(path) => match std::fs::symlink_metadata(&path) {
                        Ok(meta)
                            if meta.is_file() && get(s).parse::<u64>().ok() != Some(meta.len()) =>
                        {
                            FileStatus::Altered
                        }
                        Ok(meta) if meta.is_file() => match hash_file(&path) {
                            Ok((_, md5, sha)) if md5 == get(m) && sha == get(h) => FileStatus::Ok,
                            _ => FileStatus::Altered,
                        },
                        _ => FileStatus::Missing,
                    },
                };
                named.insert(rel.clone());
                files.insert(rel, status);
            }
        }
        let vol_dir = root.join(&volume);
        for rel in manifest::files_under(&root, &vol_dir).map_err(io_at(&vol_dir))? {
            if rel != dat_rel && !named.contains(&rel) {
                files.insert(rel, FileStatus::Extra);
            }
        }
        load_files.push(dat_path);
    }
    Ok(ProductionCheck {
        load_files,
        files,
        documents,
    })
}

/// Every document's native and sidecar paths, relative to the returned root, from the
/// load files of a production or a volume (for the media checks).
#[allow(clippy::type_complexity)]
pub fn documents(dir: &Path) -> Result<(PathBuf, Vec<(String, Option<String>)>), ProductionError> {
    let (root, volumes) = volumes(dir)?;
    let mut out = Vec::new();
    for (_, dat_path) in volumes {
        let (header, records) = open_load_file(&dat_path)?;
        let at = |name: &str| header.iter().position(|h| h == name);
        let (Some(native), Some(metadata)) = (at("NATIVEPATH"), at("METADATAPATH")) else {
            continue;
        };
        for record in records {
            let Some(record) = record.map_err(io_at(&dat_path))? else {
                continue;
            };
            let path = |i: usize| {
                record
                    .get(i)
                    .filter(|p| !p.is_empty())
                    .map(|p| p.replace('\\', "/"))
            };
            if let Some(n) = path(native) {
                out.push((n, path(metadata)));
            }
        }
    }
    Ok((root, out))
}

/// A load file opened, its header read.
#[allow(clippy::type_complexity)]
fn open_load_file(
    dat_path: &Path,
) -> Result<
    (
        Vec<String>,
        impl Iterator<Item = io::Result<Option<Vec<String>>>>,
    ),
    ProductionError,
> {
    let reader = manifest::open_no_follow(dat_path).map_err(io_at(dat_path))?;
    let mut records = dat::read_records(BufReader::new(reader));
    match records.next() {
        Some(Ok(Some(header))) => Ok((header, records)),
        _ => Err(ProductionError::Io {
            path: dat_path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, "no header record"),
        }),
    }
}

/// A volume's name and load file, when `vol` is a volume (it holds `DATA/NAME.dat`).
fn volume_dat(vol: &Path) -> Option<(String, PathBuf)> {
    let name = vol.file_name()?.to_str()?.to_owned();
    let dat = vol.join(DATA).join(format!("{name}.dat"));
    std::fs::symlink_metadata(&dat)
        .is_ok_and(|m| m.is_file())
        .then_some((name, dat))
}

/// Whether `dir` is a production (it holds the register) or one of its volumes.
pub fn is_production(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(REGISTER)).is_ok() || volume_dat(dir).is_some()
}

/// The volumes of a production (or the one volume given) with their load files, and the
/// directory the load files' paths start from.
#[allow(clippy::type_complexity)]
fn volumes(dir: &Path) -> Result<(PathBuf, Vec<(String, PathBuf)>), ProductionError> {
    if let Some(v) = volume_dat(dir) {
        // A volume on its own: load-file paths start with its name.
        Ok((
            dir.parent().map(Path::to_owned).unwrap_or_default(),
            vec![v],
        ))
    } else if std::fs::symlink_metadata(dir.join(REGISTER)).is_ok() {
        let mut v = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
            let entry = entry.map_err(io_at(dir))?;
            if entry.file_type().map_err(io_at(dir))?.is_dir()
                && let Some(found) = volume_dat(&entry.path())
            {
                v.push(found);
            }
        }
        v.sort();
        Ok((dir.to_owned(), v))
    } else {
        Err(ProductionError::NotAProduction(dir.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_load_file_cannot_point_outside_its_volume() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("VOL001");
        std::fs::create_dir_all(vol.join(DATA)).unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"not yours").unwrap();
        std::fs::create_dir_all(dir.path().join("VOL002")).unwrap();
        std::fs::write(dir.path().join("VOL002/x.opus"), b"other volume").unwrap();
        let mut dat = Vec::new();
        dat.extend_from_slice(dat::BOM.as_bytes());
        dat::write_record(
            &mut dat,
            &[
                "BEGBATES",
                "NATIVEPATH",
                "FILESIZE",
                "MD5HASH",
                "SHA256HASH",
            ],
        )
        .unwrap();
        for path in [
            "VOL001\\..\\secret.txt",
            "..\\secret.txt",
            "VOL002\\x.opus",
            "/etc/passwd",
        ] {
            dat::write_record(&mut dat, &["X1", path, "9", "", ""]).unwrap();
        }
        std::fs::write(vol.join(DATA).join("VOL001.dat"), dat).unwrap();
        let checked = check(&vol).unwrap();
        assert_eq!(checked.documents, 4);
        assert!(
            checked
                .files
                .iter()
                .filter(|(p, _)| !p.ends_with(".dat"))
                .all(|(_, s)| *s == FileStatus::Missing),
            "{:?}",
            checked.files
        );
    }

    #[test]
    fn a_register_gcrec_did_not_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REGISTER);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE documents (x); PRAGMA user_version = 1;")
            .unwrap();
        drop(conn);
        let options = ProductionOptions {
            dir: dir.path().to_owned(),
            matter: "m".into(),
            prefix: "ABC".into(),
            start: 1,
            volume: "VOL001".into(),
            render: None,
            users: None,
        };
        assert!(matches!(
            preflight(&options),
            Err(ProductionError::NotARegister(_))
        ));
        #[cfg(unix)]
        {
            let link = dir.path().join("linked");
            std::fs::create_dir(&link).unwrap();
            std::os::unix::fs::symlink(&path, link.join(REGISTER)).unwrap();
            let options = ProductionOptions {
                dir: link,
                ..options
            };
            assert!(
                preflight(&options).is_err(),
                "a linked register is not opened"
            );
        }
    }

    #[test]
    fn names_that_become_file_names_are_checked() {
        for bad in [
            "",
            "../x",
            "a/b",
            "VOL 1",
            ".hidden",
            "x".repeat(33).as_str(),
        ] {
            assert!(!safe_name(bad), "{bad}");
        }
        assert!(safe_name("ABC_2024-") && safe_name("VOL001"));
        assert_eq!(control("ABC", 12), "ABC0000012");
        assert_eq!(folder(1000), "0001");
        assert_eq!(folder(1001), "0002");
    }
}
