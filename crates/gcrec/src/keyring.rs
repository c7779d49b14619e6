//! Loading the keys `--key` names, with their passphrases.

use std::path::{Path, PathBuf};

use anyhow::Result;
use gcrec_decrypt::keys::{KeyError, Keyring, Passphrases, inspect, readable_by_others};

use crate::cli::KeyArgs;
use crate::exit::UsageError;
use crate::passphrase;

/// File extensions `--key DIR` looks at.
const KEY_EXTENSIONS: [&str; 10] = [
    "asc", "gpg", "pgp", "pem", "key", "der", "crt", "cer", "p12", "pfx",
];

/// The key files a `--key` names: the file itself, or the key files in a directory
/// (public keys among them are passed over).
fn key_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| UsageError(format!("--key {}: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| KEY_EXTENSIONS.contains(&e))
        })
        .filter(|p| {
            // Public keys sit beside secret ones; they cannot decrypt anything.
            !matches!(inspect(p), Err(KeyError::Unrecognized { ref reason, .. }) if reason.contains("public key"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(UsageError(format!(
            "--key {}: the directory holds no key files",
            path.display()
        ))
        .into());
    }
    Ok(files)
}

/// The keys loaded, and the key files other users can read (warned about at the end of
/// the run, where the warning is not lost above the work).
pub struct LoadedKeys {
    /// The keys.
    pub keyring: Keyring,
    /// Key files with group or world read permission.
    pub readable_by_others: Vec<PathBuf>,
}

/// Prints one warning line for key files others can read, if there are any.
pub fn warn_readable_by_others(files: &[PathBuf], quiet: bool) {
    if quiet || files.is_empty() {
        return;
    }
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    eprintln!(
        "gcrec: warning: {} key file(s) can be read by other users; a secret key should be private (chmod 600): {}",
        names.len(),
        names.join(", ")
    );
}

/// Loads every `--key`, unlocking protected keys up front.
pub fn load_keyring(args: &KeyArgs) -> Result<LoadedKeys> {
    let mut passphrases = Passphrases {
        given: passphrase::given(
            args.passphrase_env.as_deref(),
            args.passphrase_file.as_deref(),
        )?,
        prompt: Some(&passphrase::prompt),
    };
    let mut keys = Keyring::new();
    let mut lax = Vec::new();
    for path in &args.keys {
        for file in key_files(path)? {
            // A key error is a usage error (exit 2) and carries its hint.
            let infos = keys.load(&file, &mut passphrases)?;
            // Certificates are public; anything else in the file is a secret.
            if readable_by_others(&file) && infos.iter().any(|i| i.kind != "x509") {
                lax.push(file.clone());
            }
        }
    }
    Ok(LoadedKeys {
        keyring: keys,
        readable_by_others: lax,
    })
}
