//! Exit codes and the wording of hints, in one place (documented in docs/exit-codes.md).
//!
//! Libraries return typed errors; this module decides, from their variants, which exit
//! code a failure means and which option to name when a library hints at one.

use std::process::ExitCode;

use gcrec_decrypt::keys::KeyError;
use gcrec_decrypt::object::DecryptError;
use gcrec_fetch::metadata::MetadataError;
use gcrec_fetch::source::SourceError;
use gcrec_pull::error::PullHint;
use gcrec_pull::files::FilesError;
use gcrec_pull::hold::HoldError;
use gcrec_pull::pull::PlanError;
use gcrec_pull::verify::VerifyError;
use gcrec_pull::{Hint, PullError};

/// Everything worked.
pub const SUCCESS: u8 = 0;
/// The run finished, but some recordings failed (or a listing failed part-way).
pub const FAILURES: u8 = 1;
/// The command line or the configuration is wrong: nothing was done.
pub const USAGE: u8 = 2;
/// Authentication or permission failure: credentials, IAM, KMS or key access.
pub const PERMISSION: u8 = 3;
/// Interrupted (Ctrl-C).
pub const INTERRUPTED: u8 = 130;

/// A usage or configuration error: exits with [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What a command reports when it finishes normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All good.
    Success,
    /// Finished with failures (already reported).
    SomeFailed,
    /// Finished with failures, some of them permission failures (already reported).
    PermissionFailed,
    /// Stopped by Ctrl-C (already reported).
    Interrupted,
}

impl Outcome {
    /// The outcome of a run with `failed` failures, some of them about access or not.
    pub fn of_failures(failed: u64, permission: bool) -> Self {
        match (failed, permission) {
            (0, _) => Outcome::Success,
            (_, true) => Outcome::PermissionFailed,
            _ => Outcome::SomeFailed,
        }
    }
}

/// How this front end completes a message that carries a hint: the library's message
/// ends with the action (`… give its key`), this names the option (`with
/// --sse-c-key-file FILE`).
pub fn hint_suffix(hint: Hint) -> &'static str {
    use gcrec_decrypt::Hint as D;
    use gcrec_fetch::Hint as F;
    match hint {
        Hint::Fetch(F::SseCustomerKey) => " with --sse-c-key-file FILE",
        Hint::Fetch(F::ExpectedSse) => " (--expect-sse)",
        Hint::Fetch(F::SidecarLimit) => " (--max-sidecar-bytes)",
        Hint::Decrypt(D::Key) => " (--key)",
        Hint::Decrypt(D::Passphrase) => {
            " with --passphrase-env VAR or --passphrase-file FILE (or run on a terminal to be asked)"
        }
        Hint::Decrypt(D::AllowUnauthenticated) => {
            "; pass --allow-unauthenticated to decrypt it anyway"
        }
        Hint::Pull(PullHint::ExpansionLimit) => " (--max-expansion)",
        Hint::Pull(PullHint::EncryptionRequired) => " (--require-encryption)",
        Hint::Pull(PullHint::CatalogStale) => "; re-run gcrec index to update the catalog",
    }
}

/// A failure's message completed with its hint, as printed.
pub fn with_hint(message: &str, hint: Option<Hint>) -> String {
    match hint {
        Some(h) => format!("{message}{}", hint_suffix(h)),
        None => message.to_owned(),
    }
}

/// The hint the first cause that has one gives.
fn hint_of(error: &anyhow::Error) -> Option<Hint> {
    error.chain().find_map(|c| {
        if let Some(e) = c.downcast_ref::<PullError>() {
            return e.hint();
        }
        if let Some(e) = c.downcast_ref::<SourceError>() {
            return e.hint().map(Hint::Fetch);
        }
        if let Some(e) = c.downcast_ref::<DecryptError>() {
            return e.hint().map(Hint::Decrypt);
        }
        if let Some(e) = c.downcast_ref::<KeyError>() {
            return e.hint().map(Hint::Decrypt);
        }
        c.downcast_ref::<MetadataError>()
            .and_then(MetadataError::hint)
            .map(Hint::Fetch)
    })
}

/// The exit code for an error, by the first cause that says what kind it is.
fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<PlanError>().is_some()
            || cause.downcast_ref::<KeyError>().is_some()
            || cause
                .downcast_ref::<VerifyError>()
                .is_some_and(|e| matches!(e, VerifyError::NotAnOutput(_)))
            || cause
                .downcast_ref::<FilesError>()
                .is_some_and(|e| !matches!(e, FilesError::Source(_)))
            || cause
                .downcast_ref::<HoldError>()
                .is_some_and(|e| matches!(e, HoldError::NoObjectLock(_)))
        {
            return USAGE;
        }
        if let Some(e) = cause.downcast_ref::<SourceError>() {
            return match e {
                SourceError::Open { .. } | SourceError::Unsupported { .. } => USAGE,
                e if e.is_permission() => PERMISSION,
                _ => FAILURES,
            };
        }
        if let Some(e) = cause.downcast_ref::<PullError>()
            && e.is_permission()
        {
            return PERMISSION;
        }
    }
    FAILURES
}

/// Prints an error (with its causes and hint) and picks the exit code.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::from(SUCCESS),
        Ok(Outcome::SomeFailed) => ExitCode::from(FAILURES),
        Ok(Outcome::PermissionFailed) => ExitCode::from(PERMISSION),
        Ok(Outcome::Interrupted) => ExitCode::from(INTERRUPTED),
        Err(e) => {
            let mut message = format!("gcrec: error: {}", with_hint(&e.to_string(), hint_of(&e)));
            for cause in e.chain().skip(1) {
                message.push_str(&format!("\n  caused by: {cause}"));
            }
            crate::output::diagnostic("error", &message);
            ExitCode::from(code_for(&e))
        }
    }
}
