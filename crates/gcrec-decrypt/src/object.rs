//! Decrypting one object: detect, prepare (unwrap the data key, which may call KMS),
//! then stream the content into a writer — normally a [`crate::release::PendingFile`].

use std::io::{BufRead, Write};

use crate::detect::{Format, MediaKind};
use crate::envelope::Envelope;
use crate::keys::Keyring;
use crate::openpgp::{self, PgpError};
use crate::s3ec::{self, DataKey, Kms, S3ecError};

/// How objects are decrypted: choices that weaken guarantees (off by default) and
/// requirements that strengthen them.
#[derive(Debug, Clone, Default)]
pub struct DecryptOptions {
    /// Decrypt containers whose content carries no integrity check: S3EC V1 and CMS
    /// EnvelopedData (AES-CBC). Their outputs are marked unauthenticated.
    pub allow_unauthenticated: bool,
    /// Pairs an AWS Encryption SDK message's encryption context must hold.
    pub required_context: std::collections::BTreeMap<String, String>,
}

/// What decrypting an object did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The container, e.g. `openpgp`, `s3ec v2 (AES-GCM, RSA-OAEP-SHA1)`, `plain ogg`.
    pub format: String,
    /// The key that opened it (OpenPGP key ID, `rsa:…`, `aes:…`, `kms:…`); `None` for
    /// plain media.
    pub opened_with: Option<String>,
    /// Plaintext bytes written.
    pub plaintext_bytes: u64,
    /// The check that authenticated every byte (`openpgp-integrity`, `s3ec-gcm-tag`,
    /// `cms-gcm-tag`); `None` for plain media and unauthenticated (CBC) containers.
    pub authenticated_by: Option<&'static str>,
    /// Whether there was an encryption layer at all (so `authenticated_by: None` means
    /// unauthenticated rather than plain).
    pub encrypted: bool,
}

impl Outcome {
    /// `Some(true)` for authenticated containers, `Some(false)` for unauthenticated
    /// ones (CBC), `None` for plain media.
    pub fn authenticated(&self) -> Option<bool> {
        self.encrypted.then_some(self.authenticated_by.is_some())
    }
}

/// Why an object could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// The format could not be told.
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
    /// OpenPGP failed.
    #[error("OpenPGP: {0}")]
    OpenPgp(PgpError),
    /// S3 Encryption Client failed.
    #[error("S3 Encryption Client: {0}")]
    S3ec(S3ecError),
    /// CMS failed.
    #[error("CMS: {0}")]
    Cms(crate::cms::CmsError),
    /// The AWS Encryption SDK message failed.
    #[error("AWS Encryption SDK: {0}")]
    Esdk(crate::esdk::EsdkError),
    /// The body was shorter or longer than the object's size.
    #[error("read {read} bytes of a {expected}-byte object (truncated or changed while reading)")]
    Length {
        /// The object's size.
        expected: u64,
        /// What was read.
        read: u64,
    },
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for DecryptError {
    fn from(e: std::io::Error) -> Self {
        DecryptError::Io(e)
    }
}

// The inner error is part of the message, not a separate cause, so a chain printed with
// its causes does not say it twice.
impl From<PgpError> for DecryptError {
    fn from(e: PgpError) -> Self {
        DecryptError::OpenPgp(e)
    }
}

impl From<S3ecError> for DecryptError {
    fn from(e: S3ecError) -> Self {
        DecryptError::S3ec(e)
    }
}

impl From<crate::esdk::EsdkError> for DecryptError {
    fn from(e: crate::esdk::EsdkError) -> Self {
        DecryptError::Esdk(e)
    }
}

impl From<crate::cms::CmsError> for DecryptError {
    fn from(e: crate::cms::CmsError) -> Self {
        DecryptError::Cms(e)
    }
}

impl DecryptError {
    /// Whether this is a permission problem (KMS access denied): exit code 3.
    pub fn is_permission(&self) -> bool {
        match self {
            DecryptError::S3ec(e) => e.is_permission(),
            DecryptError::Esdk(e) => e.is_permission(),
            _ => false,
        }
    }

    /// What the user can give to get past this error, when gcrec can tell.
    pub fn hint(&self) -> Option<crate::Hint> {
        match self {
            DecryptError::S3ec(e) => e.hint(),
            DecryptError::Cms(e) => e.hint(),
            DecryptError::Esdk(e) => e.hint(),
            DecryptError::OpenPgp(PgpError::MissingKey { .. }) => Some(crate::Hint::Key),
            _ => None,
        }
    }
}

/// A format with whatever it needs to decrypt (the unwrapped data key for S3EC).
#[derive(Debug)]
pub enum Prepared {
    /// Copied through.
    Plain(MediaKind),
    /// OpenPGP: keys are matched while reading the message.
    OpenPgp {
        /// ASCII armor.
        armored: bool,
    },
    /// CMS: the recipient and key are found while reading the message.
    Cms(crate::cms::Encoding),
    /// An AWS Encryption SDK message, its header authenticated with the content key.
    Esdk {
        /// The header.
        header: Box<crate::esdk::Header>,
        /// The content key.
        key: crate::esdk::ContentKey,
    },
    /// S3EC with its data key.
    S3ec {
        /// The envelope.
        envelope: Box<Envelope>,
        /// The unwrapped data key.
        key: DataKey,
    },
}

/// Unwraps what must be unwrapped before the content can be read (S3EC data keys;
/// KMS is called here). V1 objects are refused here, before any KMS call, unless allowed.
pub async fn prepare(
    format: Format,
    keys: &Keyring,
    kms: Option<&dyn Kms>,
    options: &DecryptOptions,
) -> Result<Prepared, DecryptError> {
    Ok(match format {
        Format::Plain(kind) => Prepared::Plain(kind),
        Format::OpenPgp { armored } => Prepared::OpenPgp { armored },
        Format::Cms(encoding) => Prepared::Cms(encoding),
        Format::Esdk(header) => {
            let key = crate::esdk::open(&header, keys, kms, &options.required_context).await?;
            Prepared::Esdk { header, key }
        }
        Format::S3ec(envelope) => {
            if envelope.content == crate::envelope::ContentCipher::AesCbc
                && !options.allow_unauthenticated
            {
                return Err(S3ecError::LegacyCbcRefused.into());
            }
            let key = s3ec::unwrap_data_key(&envelope, keys, kms).await?;
            Prepared::S3ec { envelope, key }
        }
    })
}

/// Counts what passes through a reader.
struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.read += amt as u64;
        self.inner.consume(amt);
    }
}

impl<R> std::fmt::Debug for CountingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CountingReader({} bytes)", self.read)
    }
}

/// Streams the whole object (`total_len` bytes, from its first byte) through the
/// decryptor into `out`. The output is verified only if this returns `Ok`.
pub fn run<R: BufRead + Send>(
    prepared: &Prepared,
    reader: R,
    total_len: u64,
    keys: &Keyring,
    options: &DecryptOptions,
    out: &mut dyn Write,
) -> Result<Outcome, DecryptError> {
    let mut reader = CountingReader {
        inner: reader,
        read: 0,
    };
    let outcome = match prepared {
        Prepared::Plain(kind) => {
            let bytes = std::io::copy(&mut reader, out)?;
            Outcome {
                format: format!("plain {}", kind.as_str()),
                opened_with: None,
                plaintext_bytes: bytes,
                authenticated_by: None,
                encrypted: false,
            }
        }
        Prepared::OpenPgp { armored } => {
            let result = openpgp::decrypt(&mut reader, *armored, keys, out)?;
            // rPGP stops at the end of the message; anything after it is not ours to drop.
            std::io::copy(&mut reader, &mut std::io::sink())?;
            Outcome {
                format: if *armored {
                    "openpgp (armored)".into()
                } else {
                    "openpgp".into()
                },
                opened_with: Some(result.key_id),
                plaintext_bytes: result.bytes,
                authenticated_by: Some("openpgp-integrity"),
                encrypted: true,
            }
        }
        Prepared::Esdk { header, key } => {
            let bytes = crate::esdk::decrypt(&mut reader, header, key, out)?;
            Outcome {
                format: header.describe(),
                opened_with: Some(key.opened_with.clone()),
                plaintext_bytes: bytes,
                authenticated_by: Some("esdk-gcm-tags"),
                encrypted: true,
            }
        }
        Prepared::Cms(encoding) => {
            let opened = crate::cms::decrypt(
                &mut reader,
                *encoding,
                keys,
                options.allow_unauthenticated,
                out,
            )?;
            // PEM's end line and trailing white space.
            std::io::copy(&mut reader, &mut std::io::sink())?;
            Outcome {
                format: opened.description,
                opened_with: Some(opened.opened_with),
                plaintext_bytes: opened.plaintext_bytes,
                authenticated_by: opened.authenticated.then_some("cms-gcm-tag"),
                encrypted: true,
            }
        }
        Prepared::S3ec { envelope, key } => {
            let bytes = s3ec::decrypt_content(
                &mut reader,
                total_len,
                envelope,
                key,
                options.allow_unauthenticated,
                out,
            )?;
            Outcome {
                format: envelope.describe(),
                opened_with: Some(key.opened_with.clone()),
                plaintext_bytes: bytes,
                authenticated_by: Format::S3ec(envelope.clone()).authenticated_by(),
                encrypted: true,
            }
        }
    };
    if reader.read != total_len {
        return Err(DecryptError::Length {
            expected: total_len,
            read: reader.read,
        });
    }
    Ok(outcome)
}
