//! Progress on stderr: bars when it is a terminal; otherwise, for job logs (Kubernetes,
//! AWS Batch), one line every `--progress-interval` seconds (text, or JSON with
//! `--log-format json`); nothing with `-q`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{LogFormat, human_bytes};

/// Counts for periodic lines.
#[derive(Debug, Default)]
struct Counts {
    total: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    bytes_total: AtomicU64,
}

#[derive(Debug, Clone)]
enum Mode {
    Off,
    Bars(ProgressBar, ProgressBar, Arc<AtomicU64>),
    Lines {
        counts: Arc<Counts>,
        every: Duration,
        format: LogFormat,
        what: &'static str,
    },
}

/// Recordings (or objects) and bytes, shown the way stderr can show them.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
}

impl Progress {
    /// Bars if stderr is a terminal (plain with `NO_COLOR`); periodic lines every `every`
    /// otherwise; nothing when quiet. `what` names the units (`recordings`, `objects`).
    pub fn new(quiet: bool, every: Duration, format: LogFormat, what: &'static str) -> Self {
        if quiet {
            return Self { mode: Mode::Off };
        }
        if !std::io::stderr().is_terminal() || format == LogFormat::Json {
            return Self {
                mode: Mode::Lines {
                    counts: Arc::default(),
                    every,
                    format,
                    what,
                },
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let bar = if color {
            "{bar:30.cyan/blue}"
        } else {
            "{bar:30}"
        };
        let recordings = multi.add(ProgressBar::new(0));
        recordings.set_style(
            ProgressStyle::with_template(&format!(
                "{bar} {{pos}}/{{len}} {what} {{msg}}  [{{elapsed}}, ETA {{eta}}]"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let bytes = multi.add(ProgressBar::new(0));
        bytes.set_style(
            ProgressStyle::with_template(
                "{bytes}/{total_bytes} downloaded, {binary_bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self {
            mode: Mode::Bars(recordings, bytes, Arc::default()),
        }
    }

    /// More work found by the listing.
    pub fn add_total(&self, recordings: u64, bytes: u64) {
        match &self.mode {
            Mode::Bars(r, b, _) => {
                r.inc_length(recordings);
                b.inc_length(bytes);
            }
            Mode::Lines { counts, .. } => {
                counts.total.fetch_add(recordings, Ordering::Relaxed);
                counts.bytes_total.fetch_add(bytes, Ordering::Relaxed);
            }
            Mode::Off => {}
        }
    }

    /// One unit finished; `failed` says whether it failed.
    pub fn finished(&self, failed: bool) {
        match &self.mode {
            Mode::Bars(r, _, failures) => {
                r.inc(1);
                if failed {
                    let n = failures.fetch_add(1, Ordering::Relaxed) + 1;
                    r.set_message(format!("({n} failed)"));
                }
            }
            Mode::Lines { counts, .. } => {
                counts.done.fetch_add(1, Ordering::Relaxed);
                counts
                    .failed
                    .fetch_add(u64::from(failed), Ordering::Relaxed);
            }
            Mode::Off => {}
        }
    }

    /// Follows a byte counter (bars) or prints periodic lines, until the returned task
    /// is aborted.
    pub fn follow(&self, received: Arc<AtomicU64>) -> Option<tokio::task::JoinHandle<()>> {
        match self.mode.clone() {
            Mode::Off => None,
            Mode::Bars(_, bytes, _) => Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(125));
                loop {
                    tick.tick().await;
                    bytes.set_position(received.load(Ordering::Relaxed));
                }
            })),
            Mode::Lines {
                counts,
                every,
                format,
                what,
            } => Some(tokio::spawn(async move {
                let started = Instant::now();
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    eprintln!(
                        "{}",
                        line(&counts, &received, started.elapsed(), format, what)
                    );
                }
            })),
        }
    }

    /// Prints a diagnostic of `kind` (`failed`, `note`) above the bars, or as a line in
    /// the log format.
    pub fn note(&self, kind: &str, line: &str) {
        match &self.mode {
            Mode::Bars(r, ..) => r.println(line),
            _ => crate::output::diagnostic(kind, line),
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Mode::Bars(r, b, _) = &self.mode {
            b.finish_and_clear();
            r.finish_and_clear();
        }
    }
}

/// One periodic progress line: done/total, bytes, rate, failures, ETA.
fn line(
    counts: &Counts,
    received: &AtomicU64,
    elapsed: Duration,
    format: LogFormat,
    what: &str,
) -> String {
    let done = counts.done.load(Ordering::Relaxed);
    let total = counts.total.load(Ordering::Relaxed);
    let failed = counts.failed.load(Ordering::Relaxed);
    let bytes = received.load(Ordering::Relaxed);
    let bytes_total = counts.bytes_total.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs_f64().max(0.001);
    let rate = bytes as f64 / seconds;
    let eta = (rate > 0.0 && bytes_total > bytes)
        .then(|| ((bytes_total - bytes) as f64 / rate).round() as u64);
    match format {
        LogFormat::Json => serde_json::json!({
            "type": "progress",
            "elapsed_seconds": seconds.round() as u64,
            "done": done,
            "total": total,
            "failed": failed,
            "bytes": bytes,
            "bytes_total": bytes_total,
            "bytes_per_second": rate.round() as u64,
            "eta_seconds": eta,
        })
        .to_string(),
        LogFormat::Text => format!(
            "progress: {done}/{total} {what}, {} of {} downloaded, {}/s, {failed} failed, ETA {}",
            human_bytes(bytes),
            human_bytes(bytes_total),
            human_bytes(rate as u64),
            eta.map_or("-".to_owned(), |s| format!(
                "{}:{:02}:{:02}",
                s / 3600,
                s / 60 % 60,
                s % 60
            )),
        ),
    }
}
