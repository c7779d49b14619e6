//! Command-line definitions. Parsing only: each command lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the recordings in an export, with their metadata.
    ///
    /// Lists only the partitions a --from/--to range needs, pairs media with sidecars,
    /// and marks orphans and invalid sidecars. A summary goes to stderr.
    Ls(LsArgs),
}

/// `gcrec ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Where the export is: a local directory laid out like the bucket (the bucket root,
    /// an organization folder, or any partition folder below it).
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// JSON Lines on stdout: one object per recording and skipped key, then a summary.
    #[arg(long)]
    pub json: bool,
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
}

/// Which recordings a command acts on. Several values of one filter: any of them
/// (OR). Different filters: all of them (AND).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
