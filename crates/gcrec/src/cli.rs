//! Command-line definitions. Parsing only: each command lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// The commands whose options can also be set from the environment.
const ENV_COMMANDS: [&str; 5] = ["ls", "pull", "hold", "doctor", "index"];

/// `--jobs N|auto`.
fn parse_jobs(value: &str) -> Result<gcrec_pull::concurrency::Jobs, String> {
    use gcrec_pull::concurrency::{AUTO_MAX, Jobs};
    if value.eq_ignore_ascii_case("auto") {
        return Ok(Jobs::Auto { max: AUTO_MAX });
    }
    match value.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(Jobs::Fixed(n)),
        _ => Err(format!("{value:?}: give a number from 1 to 1024, or auto")),
    }
}

/// The environment variable for an option: `--max-sidecar-bytes` → `GCREC_MAX_SIDECAR_BYTES`.
pub fn env_name(long: &str) -> String {
    format!("GCREC_{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// The command line with `GCREC_<OPTION>` environment variables for every option of
/// `ls`, `pull` and `hold` (shown in `--help`). A flag on the command line wins over the
/// environment, which wins over the default; an option given several times takes one
/// value from the environment.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for name in ENV_COMMANDS {
        cmd = cmd.mut_subcommand(name, |mut sub| {
            let options: Vec<(clap::Id, String)> = sub
                .get_arguments()
                .filter(|a| !a.is_positional() && a.get_env().is_none())
                .filter_map(|a| Some((a.get_id().clone(), a.get_long()?.to_owned())))
                .filter(|(_, long)| long != "help" && long != "version")
                .collect();
            for (id, long) in options {
                // clap keeps `&'static str` names; these few live as long as the process.
                let var: &'static str = Box::leak(env_name(&long).into_boxed_str());
                sub = sub.mut_arg(id, |a| a.env(var));
            }
            sub
        });
    }
    cmd
}

/// Parses the process's command line (and the `GCREC_*` environment).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Get Genesys Cloud recordings out of an S3 bulk export: find, download, decrypt, verify.
#[derive(Debug, Parser)]
#[command(
    name = "gcrec",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success, 1 some recordings failed, 2 usage or configuration \
error, 3 authentication or permission error, 130 interrupted. See docs/exit-codes.md."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only errors on stderr (no summary).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on stderr: -v lists skipped keys and request counts, -vv adds debug logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When stderr is not a terminal, print a progress line this often (seconds).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10, env = "GCREC_PROGRESS_INTERVAL", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub progress_interval: u64,
    /// How diagnostics on stderr are written: text, or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = crate::output::LogFormat::Text, env = "GCREC_LOG_FORMAT")]
    pub log_format: crate::output::LogFormat,
}

impl GlobalArgs {
    /// Progress for a command's `what` (`recordings`, `objects`).
    pub fn progress(&self, what: &'static str) -> crate::progress::Progress {
        crate::progress::Progress::new(
            self.quiet,
            std::time::Duration::from_secs(self.progress_interval),
            self.log_format,
            what,
        )
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the recordings in an export, with their metadata.
    ///
    /// Lists only the partitions a --from/--to range needs, pairs media with sidecars,
    /// and marks orphans and invalid sidecars. A summary goes to stderr.
    Ls(Box<LsArgs>),
    /// Download, decrypt and verify recordings into a directory, with a manifest.
    ///
    /// Lists only the partitions a --from/--to range needs, pairs media with sidecars,
    /// filters on sidecar fields, then streams each recording through download →
    /// decrypt → hash → authenticated release, several at once. Re-running the same
    /// command resumes: recordings the manifest and the files agree on are skipped.
    Pull(Box<PullArgs>),
    /// Set, release or report the S3 Object Lock legal hold on matching recordings.
    ///
    /// Acts on every object of each matching recording (media, S3EC instruction file,
    /// sidecars), on the version the listing sees. The bucket must have Object Lock.
    Hold(Box<HoldArgs>),
    /// Re-hash a pull output against its manifest: report missing, altered and extra
    /// files (exit 1 on any).
    Verify(VerifyArgs),
    /// Decrypt recordings: files, or a local export directory (layout kept, sidecars
    /// copied verbatim).
    ///
    /// Detects each file's format (OpenPGP, S3 Encryption Client, plain media), decrypts
    /// it into a temporary file beside its destination, verifies it, and only then moves
    /// it into place. `.pgp`, `.gpg` and `.asc` suffixes are dropped.
    Decrypt(Box<DecryptArgs>),
    /// Inspect or generate keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check, before a pull, everything it needs: credentials, the bucket's region,
    /// listing, the export's shape, one sample per container (downloaded and decrypted
    /// into nothing with the keys given), KMS key state, Object Lock, free space.
    ///
    /// Exit 0 when a pull has what it needs, 3 on permission failures, 1 otherwise.
    Doctor(Box<DoctorArgs>),
    /// Print the Athena `CREATE EXTERNAL TABLE` over the export's metadata sidecars,
    /// with partition projection spelled as the export spells its partitions.
    ///
    /// See docs/athena.md: query in Athena, download the result CSV, then
    /// `gcrec pull --recordings-file result.csv`.
    AthenaDdl(AthenaDdlArgs),
    /// Build or update a catalog of every recording's sidecar (SQLite), for answering
    /// questions without re-reading the bucket: `ls|pull|hold --catalog FILE`.
    ///
    /// The first run lists everything and reads every sidecar. Later runs list only the
    /// newest hour indexed and the hours after it, and read only sidecars whose ETag
    /// changed; --full re-checks every hour. Each partition is committed as it ends, so
    /// an interrupted run resumes. One catalog can hold several sources.
    Index(Box<IndexArgs>),
    /// Inspect a catalog: figures, or all of it as NDJSON, CSV or Parquet.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Print a shell completion script: `source <(gcrec completions bash)`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `gcrec man > gcrec.1`, or `gcrec man | man -l -`.
    Man,
}

/// `gcrec index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Where the export is: `s3://BUCKET[/PREFIX]`, or a local directory laid out like the
    /// bucket.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The catalog file (created 0600 if missing).
    #[arg(long, value_name = "FILE")]
    pub catalog: PathBuf,
    /// List every hour and check every sidecar's ETag, not only the newest hours.
    #[arg(long)]
    pub full: bool,
    /// JSON Lines on stdout: one object per committed partition, then a summary.
    #[arg(long)]
    pub json: bool,
    /// Sidecars read at once.
    #[arg(short = 'j', long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: u16,
    /// Sidecars larger than this are recorded as invalid, unread.
    #[arg(long, default_value_t = gcrec_fetch::metadata::DEFAULT_SIDECAR_CAP, value_name = "BYTES")]
    pub max_sidecar_bytes: u64,
    /// Index only these hours and organizations.
    #[command(flatten)]
    pub place: PlaceArgs,
    #[command(flatten)]
    pub inventory: crate::inventory::InventoryArgs,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// `gcrec catalog …`.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Counts by organization, month and media type; orphans, invalid sidecars, skipped
    /// keys; the newest hour indexed per source.
    Stats {
        /// The catalog.
        #[arg(long, value_name = "FILE")]
        catalog: PathBuf,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Write every recording as one flat table (a new file, 0600) for DuckDB, Spark or
    /// Athena.
    Export {
        /// The catalog.
        #[arg(long, value_name = "FILE")]
        catalog: PathBuf,
        /// The format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// The file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// `gcrec catalog export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header (values as they are: for engines, not spreadsheets).
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// How `ls --catalog` orders recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortOrder {
    /// Conversation start time.
    Time,
    /// Duration, shortest first.
    Duration,
}

/// Keys and what unlocks them.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Keys")]
pub struct KeyArgs {
    /// A key file: OpenPGP secret key(s), RSA private key (PEM or DER), X.509
    /// certificate, PKCS#12 bundle, or a 32-byte AES key (raw or base64); or a
    /// directory, for every key file in it. Repeat for several keys (rotation). Not
    /// needed for KMS-wrapped S3 Encryption Client or Encryption SDK objects.
    #[arg(long = "key", value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// Read the key passphrase from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
    /// Read the key passphrase from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Also decrypt containers whose content carries no integrity check — S3
    /// Encryption Client V1 objects and CMS EnvelopedData (both AES-CBC): tampering
    /// cannot be detected, and the manifest marks such outputs `authenticated: false`.
    /// `--allow-legacy-cbc` is the old name.
    #[arg(long, visible_alias = "allow-legacy-cbc")]
    pub allow_unauthenticated: bool,
    /// A pair an AWS Encryption SDK message's encryption context must hold, else it is
    /// refused. Repeat for several.
    #[arg(long = "encryption-context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub encryption_context: Vec<(String, String)>,
}

/// `KEY=VALUE`, split at the first `=`.
fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

impl KeyArgs {
    /// How objects are decrypted, as these arguments say.
    pub fn decrypt_options(&self) -> gcrec_decrypt::object::DecryptOptions {
        gcrec_decrypt::object::DecryptOptions {
            allow_unauthenticated: self.allow_unauthenticated,
            required_context: self.encryption_context.iter().cloned().collect(),
        }
    }
}

/// What decrypted content must be, for `pull` and `decrypt`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Content")]
pub struct ContentArgs {
    /// Fail every recording whose media is not encrypted (plain Ogg, ZIP, …): a check
    /// that the export's encryption was on for all of it.
    #[arg(long)]
    pub require_encryption: bool,
    /// Fail a recording whose plaintext grows past this many times its downloaded size
    /// (plus 1 MiB): a guard against decompression bombs. Recordings are compressed
    /// media and do not grow.
    #[arg(long, value_name = "RATIO", default_value_t = gcrec_pull::object::DEFAULT_MAX_EXPANSION, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_expansion: u64,
    /// Do not check released media. By default every Ogg file's pages (CRC, sequence,
    /// granule positions, end of stream) and every ZIP's entries (CRC-32) are checked,
    /// and an Opus recording's playable duration is compared with its sidecar's;
    /// problems are reported (manifest `media`, the summary), the media still released.
    #[arg(long)]
    pub no_media_check: bool,
}

impl ContentArgs {
    /// Sets these limits on a decryption context.
    pub fn apply(&self, ctx: &mut gcrec_pull::object::DecryptContext) {
        ctx.max_expansion = self.max_expansion;
        ctx.require_encryption = self.require_encryption;
        ctx.check_media = !self.no_media_check;
    }
}

/// `gcrec decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Files, or export directories laid out like the bucket.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Where the plaintext goes (created 0700; files are 0600).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Objects decrypted at once.
    #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// JSON Lines on stdout: one object per file, then a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub content: ContentArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// How `pull` names output files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputLayout {
    /// The source keys under DIR (encrypted suffixes dropped): DIR is itself a valid
    /// local source for ls, pull and verify.
    Mirror,
    /// DIR/CONVERSATION-ID/FILE.
    Conversation,
    /// DIR/FILE (file names carry the recording ID).
    Flat,
}

/// A production's renditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RenderFormat {
    /// 16-bit PCM WAV from Ogg/Opus audio.
    Wav,
}

/// `gcrec pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Where the export is: `s3://BUCKET[/PREFIX]`, or a local directory laid out like the
    /// bucket. With --catalog, defaults to the catalog's source (when it holds one).
    #[arg(value_name = "SOURCE", required_unless_present = "catalog")]
    pub source: Option<String>,
    /// Take the work list from this catalog (gcrec index): no listing, no sidecar read;
    /// a recording whose media changed since it was indexed fails as stale.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Where the recordings go (created 0700; files are 0600). Holds the manifest,
    /// gcrec-manifest.jsonl.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present_any = ["bag", "production"],
        conflicts_with_all = ["bag", "production"]
    )]
    pub out: Option<PathBuf>,
    /// Write a BagIt 1.0 evidence package instead: recordings and sidecars under
    /// DIR/data/, with payload and tag manifests, bag-info, a CSV load file, an
    /// exceptions report and a chain-of-custody record (docs/legal-hold.md).
    #[arg(
        long,
        value_name = "DIR",
        requires = "matter",
        conflicts_with = "production"
    )]
    pub bag: Option<PathBuf>,
    /// Write a production volume for review platforms instead: natives named by control
    /// number under DIR/VOL001/NATIVES/, sidecars under METADATA/, a Concordance load file
    /// DIR/VOL001/DATA/VOL001.dat (docs/productions.md). Needs --matter and --prefix.
    #[arg(long, value_name = "DIR", requires_all = ["matter", "prefix"])]
    pub production: Option<PathBuf>,
    /// The legal matter the bag or production is for (bag-info External-Identifier; the
    /// load file's MATTER).
    #[arg(long, value_name = "ID")]
    pub matter: Option<String>,
    /// The production's control-number prefix (ABC gives ABC0000001, ABC0000002, …).
    #[arg(long, value_name = "PREFIX", requires = "production")]
    pub prefix: Option<String>,
    /// The production's first control number (only when the production is new).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "production",
          value_parser = clap::value_parser!(u64).range(1..=999_999_999_999))]
    pub start: u64,
    /// The volume this run's new documents go to.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "VOL001",
        requires = "production"
    )]
    pub volume: String,
    /// A CSV mapping custodians' user IDs to names (header: id,name) for the load file.
    #[arg(long, value_name = "FILE", requires = "production")]
    pub users: Option<PathBuf>,
    /// Also make a rendition of each native: `wav` decodes Ogg/Opus audio to 16-bit PCM
    /// WAV under RENDITIONS/ (screen recordings and transcripts stay native only).
    #[arg(long, value_enum, value_name = "FORMAT", requires = "production")]
    pub render: Option<RenderFormat>,
    /// The organization producing the bag (bag-info Source-Organization).
    #[arg(long, value_name = "NAME", default_value = "unspecified")]
    pub organization: String,
    /// Recordings processed at once: `auto` (start at 64, double while rounds finish
    /// faster, halve when the store pushes back with 503 SlowDown, 5xx or timeouts, up to
    /// 256), or a fixed number 1–1024. Far stores gain most (docs/BENCHMARKS.md). Memory
    /// is bounded by --max-buffer, not by this.
    #[arg(short = 'j', long, default_value = "auto", value_name = "N|auto", value_parser = parse_jobs)]
    pub jobs: gcrec_pull::concurrency::Jobs,
    /// How output files are named.
    #[arg(long, value_enum, default_value_t = OutputLayout::Mirror)]
    pub layout: OutputLayout,
    /// List what would be pulled (and what is already there) without downloading.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON Lines on stdout: one event per recording, then a summary.
    #[arg(long)]
    pub json: bool,
    /// Also keep the downloaded (encrypted) bytes under DIR/encrypted/, each with its S3
    /// object metadata (*.gcrec-object.json), so DIR/encrypted is a local source.
    #[arg(long)]
    pub keep_encrypted: bool,
    #[command(flatten)]
    pub content: ContentArgs,
    /// On a re-run, re-hash existing outputs (SHA-256) before skipping them, not just
    /// compare sizes.
    #[arg(long)]
    pub verify_existing: bool,
    /// Also pull recordings the field filters could not be checked on (missing or
    /// invalid sidecar).
    #[arg(long)]
    pub include_unchecked: bool,
    /// Only this worker's share: INDEX/COUNT, 0-based, split by a hash of the
    /// conversation ID. Defaults from JOB_COMPLETION_INDEX with --shard-count
    /// (Kubernetes Indexed Jobs) or AWS_BATCH_JOB_ARRAY_INDEX/_SIZE (AWS Batch).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<gcrec_fetch::filter::Shard>,
    /// Workers, for a shard index taken from JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "N", env = "GCREC_SHARD_COUNT")]
    pub shard_count: Option<u32>,
    /// Fail objects not encrypted at rest like this: AES256, aws:kms or aws:kms:KEY-ARN.
    #[arg(long, value_name = "MODE")]
    pub expect_sse: Option<gcrec_fetch::transfer::ExpectSse>,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Sidecars larger than this are rejected without being read.
    #[arg(long, default_value_t = gcrec_fetch::metadata::DEFAULT_SIDECAR_CAP, value_name = "BYTES")]
    pub max_sidecar_bytes: u64,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub inventory: crate::inventory::InventoryArgs,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// How large objects are fetched.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Transfers")]
pub struct TransferArgs {
    /// Objects at least this large (bytes) are fetched as concurrent ranged parts.
    #[arg(long, value_name = "BYTES", default_value_t = gcrec_fetch::transfer::DEFAULT_PART_THRESHOLD)]
    pub part_threshold: u64,
    /// The size of every ranged part (bytes). Default: the object's size / 16, between
    /// 16 MiB and 64 MiB, and no larger than --max-buffer / --parts-per-object (so that
    /// many parts can be in flight at once; down to 8 MiB for a small --max-buffer).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(65536..=1073741824))]
    pub part_size: Option<u64>,
    /// Parts of one object in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parts_per_object: u16,
    /// Downloaded part bytes buffered at once, across all objects (bytes); whole small
    /// objects fetched ahead of their decryption hold at most half as much again.
    #[arg(long, value_name = "BYTES", default_value_t = gcrec_fetch::transfer::DEFAULT_BUDGET)]
    pub max_buffer: u64,
}

/// `gcrec hold`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["on", "off", "status"])))]
pub struct HoldArgs {
    /// `s3://BUCKET[/PREFIX]`. With --catalog, defaults to the catalog's source.
    #[arg(value_name = "SOURCE", required_unless_present = "catalog")]
    pub source: Option<String>,
    /// Take the recordings from this catalog (gcrec index) instead of listing.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Put matching objects under legal hold.
    #[arg(long)]
    pub on: bool,
    /// Release the legal hold on matching objects.
    #[arg(long)]
    pub off: bool,
    /// Report the legal hold of matching objects, changing nothing.
    #[arg(long)]
    pub status: bool,
    /// Report what --on/--off would change, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --on or --off: change nothing, and write into DIR an S3 Batch Operations
    /// manifest (manifest.csv: bucket, URL-encoded key, version of every object) and the
    /// body of the `aws s3control create-job` request that applies the hold inside AWS
    /// (create-job.json). For millions of objects (docs/legal-hold.md).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["status", "dry_run"])]
    pub batch_manifest: Option<PathBuf>,
    /// The IAM role S3 Batch Operations runs the job as (for --batch-manifest).
    #[arg(long, value_name = "ARN", requires = "batch_manifest")]
    pub batch_role_arn: Option<String>,
    /// JSON Lines on stdout: one object per S3 object, then a summary.
    #[arg(long)]
    pub json: bool,
    /// Objects handled at once.
    #[arg(short = 'j', long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub inventory: crate::inventory::InventoryArgs,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// `gcrec athena-ddl`.
#[derive(Debug, Args)]
pub struct AthenaDdlArgs {
    /// `s3://BUCKET[/PREFIX]`: the export (or the part above its organizations).
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The table's name.
    #[arg(long, default_value = "gcrec_recordings")]
    pub table: String,
    /// The last year the year projection covers (default: next year).
    #[arg(long, value_name = "YEAR")]
    pub last_year: Option<i32>,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// `gcrec doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// `s3://BUCKET[/PREFIX]`, or a local directory laid out like the bucket.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Where a pull would write: its free space is checked against the range.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The pull would write an evidence bag (Object Lock is then needed).
    #[arg(long)]
    pub bag: bool,
    /// JSON Lines on stdout: one object per check, then a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// `gcrec verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A directory `gcrec pull --out` wrote (it holds gcrec-manifest.jsonl).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// JSON Lines on stdout: one object per file, then a summary.
    #[arg(long)]
    pub json: bool,
    /// Files hashed at once.
    #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Also re-check every recording's media (pull outputs): Ogg pages, ZIP entries, an
    /// Opus duration against the sidecar beside it. Problems make the exit code 1.
    #[arg(long)]
    pub media: bool,
}

/// `gcrec keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Describe key files: type, size, fingerprint, key IDs, protection. Prints no secret.
    Inspect {
        /// Key files.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// JSON Lines output.
        #[arg(long)]
        json: bool,
        /// Open PKCS#12 bundles with the passphrase in this environment variable.
        #[arg(long, value_name = "VAR")]
        passphrase_env: Option<String>,
        /// Open PKCS#12 bundles with the passphrase on the first line of this file.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Write a fresh OpenPGP key pair (Ed25519 + Curve25519) and an RSA key pair (PEM),
    /// all files 0600.
    Generate {
        /// Directory to write into (created 0700). Existing files are never overwritten.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// User ID of the OpenPGP key.
        #[arg(long, default_value = "gcrec recordings key")]
        user_id: String,
        /// RSA key size in bits.
        #[arg(long, default_value_t = 3072, value_parser = clap::value_parser!(u16).range(2048..=8192))]
        rsa_bits: u16,
        /// Protect both secret keys with the passphrase in this environment variable.
        #[arg(long, value_name = "VAR")]
        passphrase_env: Option<String>,
        /// Protect both secret keys with the first line of this file.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

/// `gcrec ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Where the export is: `s3://BUCKET[/PREFIX]`, or a local directory laid out like the
    /// bucket (the bucket root, an organization folder, or any partition folder below it).
    /// With --catalog: only that source's recordings (default: all the catalog holds).
    #[arg(value_name = "SOURCE", required_unless_present = "catalog")]
    pub source: Option<String>,
    /// Answer from this catalog (gcrec index) instead of listing the source.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// JSON Lines on stdout: one object per recording and skipped key, then a summary.
    #[arg(long, conflicts_with_all = ["csv", "count"])]
    pub json: bool,
    /// CSV on stdout: one row per recording, with a header.
    #[arg(long, conflicts_with = "count")]
    pub csv: bool,
    /// Print only the number of matching recordings.
    #[arg(long)]
    pub count: bool,
    /// Order of a catalog's answer (a live listing is in key order).
    #[arg(long, value_enum, requires = "catalog")]
    pub sort: Option<SortOrder>,
    /// Also list recordings the field filters could not be checked on (missing or invalid
    /// sidecar), marked `unchecked`.
    #[arg(long)]
    pub include_unchecked: bool,
    /// Requests in flight while reading sidecars.
    #[arg(short = 'j', long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: u16,
    /// Sidecars larger than this are rejected without being read.
    #[arg(long, default_value_t = gcrec_fetch::metadata::DEFAULT_SIDECAR_CAP, value_name = "BYTES")]
    pub max_sidecar_bytes: u64,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub inventory: crate::inventory::InventoryArgs,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// Where and when: the filters a listing itself can apply (partitions, organizations).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Filters")]
pub struct PlaceArgs {
    /// Conversations that began at or after this time (UTC): 2024-03-07T09:00:00Z,
    /// 2024-03-07T09:00, 2024-03-07 or 2024-03.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Conversations that began before this instant; a date or month given here is
    /// included whole (--to 2024-03-31 includes 31 March).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Organization ID.
    #[arg(long, value_name = "ID")]
    pub org: Vec<String>,
}

/// Which recordings a command acts on. Several values of one filter: any of them
/// (OR). Different filters: all of them (AND).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    #[command(flatten)]
    pub place: PlaceArgs,
    /// Conversation ID.
    #[arg(long, value_name = "ID")]
    pub conversation: Vec<String>,
    /// A file of conversation IDs: one per line (first column of a CSV line); blank
    /// lines and lines starting with # are ignored.
    #[arg(long, value_name = "FILE")]
    pub conversations_file: Option<PathBuf>,
    /// Recording ID.
    #[arg(long, value_name = "ID")]
    pub recording: Vec<String>,
    /// A file of recording IDs, conversation IDs or object keys: one per line, or a
    /// column of a CSV with a header (an Athena query result: `recordingId`,
    /// `conversation_id`, `key`, …). Entries nothing answers are reported.
    #[arg(long, value_name = "FILE")]
    pub recordings_file: Option<PathBuf>,
    /// Agent (user) ID on the recording.
    #[arg(long, value_name = "ID")]
    pub user: Vec<String>,
    /// Queue ID.
    #[arg(long, value_name = "ID")]
    pub queue: Vec<String>,
    /// Media type: call, screen, chat, email, message, callback.
    #[arg(long, value_name = "TYPE")]
    pub media_type: Vec<String>,
    /// Initial direction: inbound or outbound.
    #[arg(long, value_name = "DIRECTION")]
    pub direction: Vec<String>,
    /// Caller number (ANI). Compared by digits; without a leading + a national number
    /// also matches its international form.
    #[arg(long, value_name = "NUMBER")]
    pub ani: Vec<String>,
    /// Dialed number (DNIS), compared like --ani.
    #[arg(long, value_name = "NUMBER")]
    pub dnis: Vec<String>,
    /// Wrap-up code ID.
    #[arg(long, value_name = "ID")]
    pub wrapup_code: Vec<String>,
    /// Message type: sms, whatsapp, webmessaging, facebook, …
    #[arg(long, value_name = "TYPE")]
    pub message_type: Vec<String>,
    /// Provider (`provider`): edge, cloud, …
    #[arg(long, value_name = "NAME")]
    pub provider: Vec<String>,
    /// Language (`languageIds`), e.g. en-US.
    #[arg(long, value_name = "ID")]
    pub language: Vec<String>,
    /// Recordings at least this long: 90 (seconds), 90s, 5m, 1h30m, 500ms.
    #[arg(long, value_name = "DURATION")]
    pub min_duration: Option<String>,
    /// Recordings at most this long (as --min-duration).
    #[arg(long, value_name = "DURATION")]
    pub max_duration: Option<String>,
}

impl From<OutputLayout> for gcrec_pull::outpath::OutputLayout {
    fn from(l: OutputLayout) -> Self {
        match l {
            OutputLayout::Mirror => Self::Mirror,
            OutputLayout::Conversation => Self::Conversation,
            OutputLayout::Flat => Self::Flat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
        assert_eq!(env_name("max-sidecar-bytes"), "GCREC_MAX_SIDECAR_BYTES");
    }
}
