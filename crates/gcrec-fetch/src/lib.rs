//! # gcrec-fetch
//!
//! Finding Genesys Cloud recordings in a bulk export: the key [`layout`], the metadata
//! sidecar model ([`metadata`]), object [`source`]s (S3, and a local directory laid out like
//! the bucket), [`transfer`]s (ranged parts, a byte budget, integrity checks), time-range pruning ([`prune`]), the [`recording`] model, and the [`scan`] that pairs
//! media with sidecars and applies [`filter`]s.
//!
//! This crate knows nothing about command lines or terminals; it returns typed errors
//! that name the object and say what to do next.

pub mod athena;
pub mod filter;
pub mod inventory;
pub mod layout;
pub mod metadata;
pub mod prune;
pub mod recording;
pub mod scan;
pub mod source;
pub mod transfer;

#[cfg(test)]
mod fuzz;

/// What a user can give or change to get past an error. Libraries never name command-line
/// options; a front end turns a hint into its own words (a flag, a setting). A message
/// that carries a hint ends with the action (`… give its key`), for the front end to
/// complete (`… with --sse-c-key-file FILE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    /// The object is encrypted with SSE-C: give its customer-provided key.
    SseCustomerKey,
    /// The object's server-side encryption is not the one the run requires.
    ExpectedSse,
    /// A sidecar is over the size limit: raise it if the sidecar is genuine.
    SidecarLimit,
}

/// Text from outside (a server's message, a parser's error) made safe to show: control
/// characters replaced, at most 300 characters, so a hostile or broken peer cannot flood
/// a terminal or a manifest.
pub fn brief(text: &str) -> String {
    const MAX: usize = 300;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}
