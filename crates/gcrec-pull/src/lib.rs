//! # gcrec-pull
//!
//! The engine behind `gcrec pull`, `decrypt`, `verify` and `hold`, for any front end (the
//! command line, a catalog indexer, evidence productions):
//!
//! - [`pull`]: plan → execute → report, with typed [`pull::PullEvent`]s;
//! - [`object`]: one object through download → detect → decrypt → hash → release;
//! - [`body`]: an async body read by a blocking decryptor, failures kept typed;
//! - [`release`]: nothing reaches its destination before it is verified;
//! - [`media`]: released Ogg and ZIP media checked for completeness and damage;
//! - [`outpath`]: where outputs go, never outside the output directory, never onto
//!   gcrec's own files;
//! - [`manifest`]: the pull manifest, its writer and a compact index for resuming;
//! - [`bag`]: BagIt evidence packages, written and checked;
//! - [`production`]: review-platform productions (natives by control number, a
//!   Concordance load file, WAV renditions), written and checked;
//! - [`verify`]: re-hashing an output or a bag against its manifest;
//! - [`hold`]: Object Lock legal holds through the source abstraction;
//! - [`files`]: decrypting local files and export directories;
//! - [`doctor`]: preflight checks through the source, samples decrypted into nothing.
//!
//! Nothing here prints or names a command-line option: errors are typed and carry
//! [`error::Hint`]s a front end words its own way.

pub mod bag;
pub mod body;
pub mod concurrency;
pub mod doctor;
pub mod error;
pub mod files;
pub mod hold;
pub mod lock;
pub mod manifest;
pub mod media;
pub mod object;
pub mod outpath;
pub mod production;
pub mod pull;
pub mod release;
pub mod sweep;
pub mod verify;

pub use error::{Hint, PullError};

#[cfg(test)]
mod tests;
