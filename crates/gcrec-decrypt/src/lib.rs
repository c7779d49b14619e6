//! # gcrec-decrypt
//!
//! Removing the optional client-side *Recording Export Encryption* layer, whose container
//! Genesys does not publish: gcrec reads the standard containers a customer-held key
//! implies, tells which one an object uses, and refuses anything else clearly.
//!
//! - [`detect`]: OpenPGP, an S3 Encryption Client envelope ([`envelope`]), or plain media;
//! - [`openpgp`]: OpenPGP messages through rPGP, streaming;
//! - [`s3ec`]: S3 Encryption Client V1/V2/V3 key unwrapping (RSA, AES, KMS) and content;
//! - [`gcm`]: a streaming AES-256-GCM decryptor;
//! - [`keys`]: key files and the keyring;
//! - [`object`]: one object, end to end.
//!
//! Plaintext is written only through a writer the caller gives; releasing it (the
//! temp-file-then-rename rule) is the pull engine's job, once [`object::run`] has
//! returned `Ok`.

pub mod cbc;
pub mod cms;
pub mod detect;
pub mod envelope;
pub mod esdk;
pub mod gcm;
pub mod keys;
pub mod kms;
pub mod object;
pub mod offthread;
pub mod openpgp;
pub mod rsa_native;
mod s2k;
pub mod s3ec;
mod seipdv1;
pub mod x509;

#[cfg(test)]
mod fuzz;

/// What a user can give or change to get past a decryption error. Libraries never name
/// command-line options; a front end turns a hint into its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    /// Give the key (or another key) that opens this object.
    Key,
    /// Give the passphrase of a protected key.
    Passphrase,
    /// The container carries no authentication; it is opened only when unauthenticated
    /// containers are explicitly allowed.
    AllowUnauthenticated,
}

/// A parser's error made safe to show. Parsers of keys and messages (rPGP, PKCS#8, DER)
/// may quote the input they choked on — for a key file, the secret itself; for a
/// message, megabytes of it. Anything after a quoted-input marker is withheld and the
/// rest is capped, so no secret and no flood reaches a terminal, a log or a manifest.
pub fn parser_error(error: &dyn std::fmt::Display) -> String {
    const MAX: usize = 160;
    let text = error.to_string();
    // `Error { input: [108, 70, …] }`, `input: "…"`, `Parsing Error: …`: cut at the quote.
    let cut = ["input", "[", "\"", "0x"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    let mut shown: String = text[..cut]
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX)
        .collect();
    let shown_trimmed = shown.trim_end_matches([' ', '{', '(', ':', ',']).to_owned();
    shown = shown_trimmed;
    if cut < text.len() || text.chars().count() > MAX {
        shown.push_str(" (details withheld: they quote the input)");
    }
    if shown.trim().is_empty() {
        shown = "malformed input (details withheld: they quote the input)".into();
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn parser_errors_never_quote_their_input() {
        let e = "armor header Error { input: [108, 70, 103, 65, 65] }";
        let shown = super::parser_error(&e);
        assert!(!shown.contains("108"), "{shown}");
        assert!(shown.starts_with("armor header Error"), "{shown}");
        let long = "x".repeat(5_000_000);
        assert!(super::parser_error(&long).len() < 300);
        assert!(super::parser_error(&"bad \"s3cr3t\" here").contains("bad"));
        assert!(!super::parser_error(&"bad \"s3cr3t\" here").contains("s3cr3t"));
    }
}
