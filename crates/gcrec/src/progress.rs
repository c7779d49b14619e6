//! Progress bars on stderr, only when it is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Recordings and bytes, as bars when stderr is a terminal; nothing otherwise.
#[derive(Debug, Clone)]
pub struct Progress {
    bars: Option<(ProgressBar, ProgressBar)>,
}

impl Progress {
    /// Bars if stderr is a terminal and output is not quiet; `NO_COLOR` plain.
    pub fn new(quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Self { bars: None };
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
                "{bar} {{pos}}/{{len}} recordings {{msg}}  [{{elapsed}}, ETA {{eta}}]"
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
            bars: Some((recordings, bytes)),
        }
    }

    /// More work found by the listing.
    pub fn add_total(&self, recordings: u64, bytes: u64) {
        if let Some((r, b)) = &self.bars {
            r.inc_length(recordings);
            b.inc_length(bytes);
        }
    }

    /// A recording finished; `failed` counts towards the message.
    pub fn finished(&self, failed: u64) {
        if let Some((r, _)) = &self.bars {
            r.inc(1);
            if failed > 0 {
                r.set_message(format!("({failed} failed)"));
            }
        }
    }

    /// Follows a byte counter until the returned task is dropped or aborted.
    pub fn follow(&self, received: Arc<AtomicU64>) -> Option<tokio::task::JoinHandle<()>> {
        let (_, bytes) = self.bars.clone()?;
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(125));
            loop {
                tick.tick().await;
                bytes.set_position(received.load(Ordering::Relaxed));
            }
        }))
    }

    /// Prints a line above the bars (or plainly without them).
    pub fn println(&self, line: &str) {
        match &self.bars {
            Some((r, _)) => r.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some((r, b)) = &self.bars {
            b.finish_and_clear();
            r.finish_and_clear();
        }
    }
}
