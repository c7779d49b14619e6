//! Where passphrases come from: an environment variable, a file, or a prompt on the
//! terminal — never the command line, where other users could read them.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use zeroize::Zeroizing;

use crate::exit::UsageError;

/// A passphrase file larger than this is not a passphrase file (`/dev/zero`, a mistake).
const MAX_PASSPHRASE_FILE: u64 = 64 * 1024;

/// The passphrases given with `--passphrase-env` and `--passphrase-file`.
pub fn given(env: Option<&str>, file: Option<&Path>) -> Result<Vec<Zeroizing<String>>> {
    let mut out = Vec::new();
    if let Some(var) = env {
        let value = std::env::var(var).map_err(|_| {
            UsageError(format!(
                "--passphrase-env {var}: the environment variable is not set (or not UTF-8)"
            ))
        })?;
        out.push(Zeroizing::new(value));
    }
    if let Some(path) = file {
        let text = Zeroizing::new(
            crate::filters::read_bounded(path, MAX_PASSPHRASE_FILE)
                .map_err(|e| UsageError(format!("--passphrase-file {}: {e}", path.display())))?,
        );
        // The first line, without its line ending.
        let first = text.lines().next().unwrap_or_default();
        out.push(Zeroizing::new(first.to_owned()));
    }
    Ok(out)
}

/// Asks on the terminal, without echo, when there is a terminal to ask on.
pub fn prompt(message: &str) -> Option<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(message).ok().map(Zeroizing::new)
}
