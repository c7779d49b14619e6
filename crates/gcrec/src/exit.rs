//! Exit codes, in one place (documented in docs/exit-codes.md).

use std::process::ExitCode;

use gcrec_fetch::source::SourceError;

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

/// Whether a failure is about access (credentials, IAM, KMS, SSE-C keys) rather than
/// the data: exit code 3 when a run ends with it.
pub fn is_permission(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<SourceError>()
            .is_some_and(|e| e.is_permission())
            || c.downcast_ref::<gcrec_decrypt::object::DecryptError>()
                .is_some_and(|e| e.is_permission())
    })
}

/// The exit code for an error, by the first cause that says what kind it is.
fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
        if let Some(e) = cause.downcast_ref::<SourceError>() {
            return match e {
                SourceError::Open { .. } | SourceError::Unsupported { .. } => USAGE,
                e if e.is_permission() => PERMISSION,
                _ => FAILURES,
            };
        }
    }
    FAILURES
}

/// Prints an error (with its causes) and picks the exit code.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::from(SUCCESS),
        Ok(Outcome::SomeFailed) => ExitCode::from(FAILURES),
        Ok(Outcome::PermissionFailed) => ExitCode::from(PERMISSION),
        Ok(Outcome::Interrupted) => ExitCode::from(INTERRUPTED),
        Err(e) => {
            eprintln!("gcrec: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(code_for(&e))
        }
    }
}
