//! What gcrec prints: the human table, JSON Lines, the stderr summary, and logging.

pub mod csv_rows;
pub mod json;
pub mod summary;
pub mod table;

use std::io::{self, BufWriter, Stdout, Write};

use crate::cli::GlobalArgs;

/// How diagnostics on stderr are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object per line (progress, warnings, errors), for log collectors.
    Json,
}

static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// The format chosen with `--log-format`.
pub fn log_format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Prints a diagnostic line on stderr: as it is, or as `{"type": KIND, "message": …}`.
pub fn diagnostic(kind: &str, message: &str) {
    match log_format() {
        LogFormat::Text => eprintln!("{message}"),
        LogFormat::Json => {
            eprintln!("{}", serde_json::json!({"type": kind, "message": message}));
        }
    }
}

/// Sets up `tracing` on stderr: warnings by default, `-v` info, `-vv` debug, `-q` errors
/// only. `GCREC_LOG` (an `EnvFilter` directive) overrides.
pub fn init_logging(global: &GlobalArgs) {
    let _ = FORMAT.set(global.log_format);
    use tracing_subscriber::EnvFilter;
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_env("GCREC_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let ansi =
        std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false);
    let _ = match global.log_format {
        LogFormat::Text => builder.with_ansi(ansi).without_time().try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Buffered stdout that notices a closed pipe (`gcrec ls | head`) instead of failing.
pub struct Out {
    inner: BufWriter<Stdout>,
    closed: bool,
}

impl Out {
    /// Standard output.
    pub fn stdout() -> Self {
        Self {
            inner: BufWriter::new(io::stdout()),
            closed: false,
        }
    }

    /// Whether the reader has gone away; stop producing output then.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Writes one line. A closed pipe is remembered, not an error.
    pub fn line(&mut self, line: &str) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match writeln!(self.inner, "{line}") {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }

    /// Flushes. A closed pipe is not an error.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.inner.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// Sizes for people: `812 B`, `14.2 KiB`, `3.0 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Durations for people: `0:05:12`.
pub fn human_duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_duration_ms(312_999), "0:05:12");
        assert_eq!(human_duration_ms(3_600_000), "1:00:00");
    }
}
