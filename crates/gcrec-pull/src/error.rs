//! The engine's errors and hints: typed from the source and the decryptor up, so a front
//! end decides exit codes and wording from variants, never from message text.

use std::path::PathBuf;

use gcrec_decrypt::object::DecryptError;
use gcrec_fetch::source::SourceError;

use crate::outpath::OutPathError;

/// What a user can give or change to get past a failure: the source's hints and the
/// decryptor's, in one type a manifest records (`"hint": "sse_customer_key"`). Front ends
/// turn it into their own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Hint {
    /// From reading the export.
    Fetch(gcrec_fetch::Hint),
    /// From removing its encryption.
    Decrypt(gcrec_decrypt::Hint),
    /// From the engine itself.
    Pull(PullHint),
}

/// Hints only the engine gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullHint {
    /// The output is larger than the expansion limit allows: raise it if genuine.
    ExpansionLimit,
    /// Encryption was required and the object is plain.
    EncryptionRequired,
    /// The object is not the one the catalog recorded: update the catalog.
    CatalogStale,
}

/// Where a pull's work list came from, when it was not a live listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkList {
    /// A catalog built earlier: objects must still be the ones it recorded.
    Catalog,
}

/// [`PullError::TooLarge`]'s reason when the expansion limit was hit.
pub const EXPANSION: &str = "the expansion limit";
/// [`PullError::TooLarge`]'s reason when the free space was.
pub const FREE_SPACE: &str = "the free space on the output's file system";

/// Why one object (or a whole run) failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Reading from the source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Decrypting failed.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The run was cancelled (Ctrl-C) while this was in progress; nothing was written.
    #[error("interrupted before it finished; nothing was written")]
    Cancelled,
    /// A name that cannot be an output file.
    #[error(transparent)]
    OutPath(#[from] OutPathError),
    /// Two objects of one run would be written to the same file.
    #[error("another object of this run is also written to {}; pull with the mirror layout", .0.display())]
    Collision(PathBuf),
    /// Writing output failed.
    #[error("{what} {}: {source}", path.display())]
    Output {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Bytes after the end of an encrypted message.
    #[error("{key}: {trailing} bytes follow the encrypted message")]
    TrailingBytes {
        /// The object.
        key: String,
        /// How many.
        trailing: u64,
    },
    /// The download's stream ended without its checks being recorded.
    #[error("{0}: the download ended without being verified")]
    Unverified(String),
    /// A kept encrypted copy does not hold every downloaded byte.
    #[error("{key}: kept {kept} of {size} downloaded bytes")]
    KeptShort {
        /// The object.
        key: String,
        /// Bytes kept.
        kept: u64,
        /// Bytes downloaded.
        size: u64,
    },
    /// The plaintext grew past the expansion limit or the free space checked for (a
    /// decompression bomb, or a disk too small).
    #[error("{key}: the plaintext would exceed {limit} bytes ({why}); nothing was written")]
    TooLarge {
        /// The object.
        key: String,
        /// The limit.
        limit: u64,
        /// Which limit.
        why: &'static str,
    },
    /// An object named or described as encrypted holds plain media: a substitution.
    #[error("{key}: {why}, but its content is plain {kind}: refusing a possible substitution")]
    PlainWhereEncrypted {
        /// The object.
        key: String,
        /// Why it should be encrypted.
        why: &'static str,
        /// What it holds.
        kind: &'static str,
    },
    /// Encryption is required and the object is plain.
    #[error("{key}: the object is not encrypted (plain {kind}) and encryption is required")]
    EncryptionRequired {
        /// The object.
        key: String,
        /// What it holds.
        kind: &'static str,
    },
    /// The object is no longer the one the work list recorded (replaced since it was
    /// indexed); nothing was written for its recording.
    #[error("{key}: not the object the catalog recorded (catalog stale); nothing was written")]
    Stale {
        /// The object.
        key: String,
    },
    /// A background task stopped (a panic in the decryptor, or the runtime shutting down).
    #[error("{0}: the decryption task stopped unexpectedly")]
    Task(String),
    /// The production volume could not be written.
    #[error(transparent)]
    Production(#[from] crate::production::ProductionError),
}

impl PullError {
    /// Whether this is about access (credentials, IAM, KMS, SSE-C keys) rather than the
    /// data: such failures decide exit code 3.
    pub fn is_permission(&self) -> bool {
        match self {
            PullError::Source(e) => e.is_permission(),
            PullError::Decrypt(e) => e.is_permission(),
            _ => false,
        }
    }

    /// What the user can give to get past it, when gcrec can tell.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            PullError::Source(e) => e.hint().map(Hint::Fetch),
            PullError::Decrypt(e) => e.hint().map(Hint::Decrypt),
            PullError::TooLarge { why, .. } if *why == EXPANSION => {
                Some(Hint::Pull(PullHint::ExpansionLimit))
            }
            PullError::EncryptionRequired { .. } => Some(Hint::Pull(PullHint::EncryptionRequired)),
            PullError::Stale { .. } => Some(Hint::Pull(PullHint::CatalogStale)),
            _ => None,
        }
    }

    /// An output error for `path`.
    pub(crate) fn output(
        what: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| PullError::Output { what, path, source }
    }
}
