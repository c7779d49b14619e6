//! Amazon S3 Encryption Client objects: unwrapping the data key (RSA-OAEP-SHA1, AES-GCM,
//! KMS; V1's RSA PKCS#1, AES-ECB and AESWrap) and decrypting the content as a stream
//! (V2 AES-GCM, V3 key-committing AES-GCM, V1 AES-CBC only when explicitly allowed).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use aes::Aes256;
use aes::cipher::{BlockDecrypt, KeyInit};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use hkdf::Hkdf;
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::cbc::{CbcDecryptor, CbcError, FinishError};
use crate::envelope::{ContentCipher, Envelope, KeyWrap, Version};
use crate::gcm::{GcmDecryptor, GcmError};
use crate::keys::Keyring;

/// Bytes read per step when streaming content.
pub const CHUNK: usize = 1 << 20;

/// The V3 suite ID (0x0073) as bytes: the AAD and the HKDF label prefix.
const SUITE_ID: [u8; 2] = [0x00, 0x73];

/// A failure of AWS KMS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// The caller may not use the key (IAM or key policy).
    #[error("KMS denied kms:Decrypt{key}: {message}", key = .key_id.as_deref().map(|k| format!(" on {k}")).unwrap_or_default())]
    AccessDenied {
        /// The key, when known.
        key_id: Option<String>,
        /// What KMS said.
        message: String,
    },
    /// KMS rejected the ciphertext: wrong encryption context, or not its ciphertext.
    #[error("KMS rejected the wrapped key (wrong encryption context or key): {0}")]
    InvalidCiphertext(String),
    /// The key is disabled, pending deletion or missing.
    #[error("KMS key {key_id} is unusable: {message}")]
    KeyUnusable {
        /// The key.
        key_id: String,
        /// What KMS said.
        message: String,
    },
    /// Anything else (network, throttling, configuration).
    #[error("KMS call failed: {0}")]
    Other(String),
}

/// What KMS returned for a Decrypt.
pub struct KmsPlaintext {
    /// The plaintext data key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The KMS key that decrypted it (ARN), when KMS says.
    pub key_id: Option<String>,
}

/// Unwraps data keys through AWS KMS (`kms:Decrypt` with an encryption context).
#[async_trait]
pub trait Kms: Send + Sync {
    /// Decrypts a KMS ciphertext blob under `context`. `key_id` is the key the envelope
    /// names, if it does.
    async fn decrypt(
        &self,
        ciphertext: &[u8],
        context: &BTreeMap<String, String>,
        key_id: Option<&str>,
    ) -> Result<KmsPlaintext, KmsError>;
}

/// Why an S3EC object could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum S3ecError {
    /// The wrap needs a kind of key the keyring does not have.
    #[error("the data key is wrapped with {wrap}, and no {needed} was given")]
    NoKey {
        /// The wrap.
        wrap: &'static str,
        /// The kind of key needed.
        needed: &'static str,
    },
    /// None of the keys of the right kind unwraps the data key.
    #[error(
        "none of the {tried} {kind} key(s) given unwraps the data key ({wrap}): wrong key, or the wrapped key was altered"
    )]
    WrongKey {
        /// The wrap.
        wrap: &'static str,
        /// The kind of key.
        kind: &'static str,
        /// How many were tried.
        tried: usize,
    },
    /// The unwrapped key is bound to a different content algorithm than the envelope says.
    #[error(
        "the wrapped data key is bound to a different content algorithm than {cek_alg:?}: the envelope was altered"
    )]
    AlgorithmMismatch {
        /// What the envelope says.
        cek_alg: String,
    },
    /// A KMS-wrapped key and no KMS client.
    #[error("the data key is wrapped with AWS KMS and KMS is not available here")]
    NoKms,
    /// KMS failed.
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// V3: the derived key does not match the stored commitment.
    #[error("the key commitment does not match (x-amz-d): wrong key or an altered envelope")]
    CommitmentMismatch,
    /// V1 CBC, and unauthenticated containers are not allowed.
    #[error(
        "this is a legacy V1 (AES-CBC) object, which carries no authentication tag: refused unless unauthenticated containers are explicitly allowed"
    )]
    LegacyCbcRefused,
    /// CBC padding is wrong (wrong key or altered ciphertext).
    #[error("AES-CBC padding is invalid: wrong key or an altered object")]
    BadPadding,
    /// CBC ciphertext is not a whole number of blocks.
    #[error("AES-CBC ciphertext of {0} bytes is not a whole number of blocks (truncated object)")]
    BadLength(u64),
    /// GCM authentication failed.
    #[error(transparent)]
    Gcm(#[from] GcmError),
    /// Reading the object or writing the plaintext failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl S3ecError {
    /// What the user can give to get past this error, when gcrec can tell.
    pub fn hint(&self) -> Option<crate::Hint> {
        match self {
            S3ecError::NoKey { .. } | S3ecError::WrongKey { .. } => Some(crate::Hint::Key),
            S3ecError::LegacyCbcRefused => Some(crate::Hint::AllowUnauthenticated),
            _ => None,
        }
    }

    /// Whether this is a permission problem (KMS access denied).
    pub fn is_permission(&self) -> bool {
        matches!(self, S3ecError::Kms(KmsError::AccessDenied { .. }))
    }
}

/// An unwrapped data key and what unwrapped it.
pub struct DataKey {
    key: Zeroizing<[u8; 32]>,
    /// The key that unwrapped it: an RSA/AES fingerprint or a KMS key ID.
    pub opened_with: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey(opened with {})", self.opened_with)
    }
}

fn to_key(bytes: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    (bytes.len() == 32).then(|| {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(bytes);
        k
    })
}

/// Unwraps the envelope's data key with the keyring or KMS.
pub async fn unwrap_data_key(
    env: &Envelope,
    keys: &Keyring,
    kms: Option<&dyn Kms>,
) -> Result<DataKey, S3ecError> {
    match env.wrap {
        Some(KeyWrap::RsaOaepSha1) => unwrap_rsa(env, keys, true),
        Some(KeyWrap::RsaPkcs1) => unwrap_rsa(env, keys, false),
        Some(KeyWrap::AesGcm) => unwrap_aes_gcm(env, keys),
        Some(KeyWrap::AesWrap) => unwrap_aes_kw(env, keys),
        Some(KeyWrap::AesEcb) => unwrap_aes_ecb(env, keys),
        Some(KeyWrap::Kms | KeyWrap::KmsContext) => unwrap_kms(env, kms).await,
        // V1 without a wrap algorithm: RSA if we hold RSA keys, else AES by length.
        None if !keys.rsa.is_empty() => unwrap_rsa(env, keys, false),
        None if env.wrapped_key.len() == 40 => unwrap_aes_kw(env, keys),
        None => unwrap_aes_ecb(env, keys),
    }
}

fn unwrap_rsa(env: &Envelope, keys: &Keyring, oaep: bool) -> Result<DataKey, S3ecError> {
    let wrap = if oaep {
        "RSA-OAEP-SHA1"
    } else {
        "RSA PKCS#1 v1.5"
    };
    if keys.rsa.is_empty() {
        return Err(S3ecError::NoKey {
            wrap,
            needed: "RSA private key",
        });
    }
    for rsa in &keys.rsa {
        let ct = &env.wrapped_key;
        let plain = if oaep {
            rsa.decrypt_oaep(crate::rsa_native::OaepHash::Sha1, ct)
        } else {
            rsa.decrypt_pkcs1(ct)
        };
        let Some(plain) = plain else {
            continue;
        };
        let key = if oaep {
            // len(1) ‖ data key ‖ content algorithm: the wrap binds the algorithm.
            let Some((&len, rest)) = plain.split_first() else {
                continue;
            };
            let len = usize::from(len);
            if rest.len() < len || rest[len..] != *env.cek_alg.as_bytes() {
                return Err(S3ecError::AlgorithmMismatch {
                    cek_alg: env.cek_alg.clone(),
                });
            }
            to_key(&rest[..len])
        } else {
            to_key(&plain)
        };
        if let Some(key) = key {
            return Ok(DataKey {
                key,
                opened_with: rsa.short_id(),
            });
        }
    }
    Err(S3ecError::WrongKey {
        wrap,
        kind: "RSA",
        tried: keys.rsa.len(),
    })
}

fn need_aes(keys: &Keyring, wrap: &'static str) -> Result<(), S3ecError> {
    if keys.aes.is_empty() {
        return Err(S3ecError::NoKey {
            wrap,
            needed: "AES-256 key",
        });
    }
    Ok(())
}

/// Tries every AES key with `unwrap_one`; the first that yields a 32-byte data key wins.
/// `well_formed` is whether the wrapped key even has the wrap's shape.
fn unwrap_with_aes_keys(
    keys: &Keyring,
    wrap: &'static str,
    well_formed: bool,
    unwrap_one: impl Fn(&[u8; 32]) -> Option<Zeroizing<[u8; 32]>>,
) -> Result<DataKey, S3ecError> {
    need_aes(keys, wrap)?;
    if !well_formed {
        return Err(S3ecError::WrongKey {
            wrap,
            kind: "AES",
            tried: 0,
        });
    }
    keys.aes
        .iter()
        .find_map(|aes| {
            unwrap_one(&aes.key).map(|key| DataKey {
                key,
                opened_with: format!("aes:{}", aes.fingerprint),
            })
        })
        .ok_or(S3ecError::WrongKey {
            wrap,
            kind: "AES",
            tried: keys.aes.len(),
        })
}

fn unwrap_aes_gcm(env: &Envelope, keys: &Keyring) -> Result<DataKey, S3ecError> {
    let well_formed = env.wrapped_key.len() >= 12 + 16;
    unwrap_with_aes_keys(keys, "AES/GCM", well_formed, |kek| {
        let (iv, sealed) = env.wrapped_key.split_at(12);
        let payload = Payload {
            msg: sealed,
            aad: env.cek_alg.as_bytes(),
        };
        let plain = Aes256Gcm::new(kek.into())
            .decrypt(Nonce::from_slice(iv), payload)
            .ok()?;
        to_key(&Zeroizing::new(plain))
    })
}

fn unwrap_aes_kw(env: &Envelope, keys: &Keyring) -> Result<DataKey, S3ecError> {
    unwrap_with_aes_keys(keys, "AESWrap", true, |kek| {
        let plain = aes_kw::KekAes256::from(*kek)
            .unwrap_vec(&env.wrapped_key)
            .ok()?;
        to_key(&Zeroizing::new(plain))
    })
}

fn unwrap_aes_ecb(env: &Envelope, keys: &Keyring) -> Result<DataKey, S3ecError> {
    unwrap_with_aes_keys(keys, "AES (ECB)", env.wrapped_key.len() == 48, |kek| {
        let cipher = Aes256::new(kek.into());
        let mut buf = Zeroizing::new(env.wrapped_key.clone());
        for block in buf.chunks_exact_mut(16) {
            cipher.decrypt_block(block.into());
        }
        // PKCS#5 padding of a 32-byte key is one whole block of 0x10.
        if buf[32..].iter().all(|&b| b == 16) {
            to_key(&buf[..32])
        } else {
            None
        }
    })
}

async fn unwrap_kms(env: &Envelope, kms: Option<&dyn Kms>) -> Result<DataKey, S3ecError> {
    let kms = kms.ok_or(S3ecError::NoKms)?;
    let context = &env.kms_context;
    if env.version != Version::V1
        && let Some(bound) = context.get("aws:x-amz-cek-alg")
        && *bound != env.cek_alg
    {
        return Err(S3ecError::AlgorithmMismatch {
            cek_alg: env.cek_alg.clone(),
        });
    }
    let key_id = context
        .get("kms_cmk_id")
        .or_else(|| env.material_description.get("kms_cmk_id"))
        .cloned();
    let out = kms
        .decrypt(&env.wrapped_key, context, key_id.as_deref())
        .await?;
    let key = to_key(&out.plaintext).ok_or(S3ecError::WrongKey {
        wrap: "KMS",
        kind: "KMS",
        tried: 1,
    })?;
    let used = out
        .key_id
        .or(key_id)
        .unwrap_or_else(|| "(unknown key)".into());
    Ok(DataKey {
        key,
        opened_with: format!("kms:{used}"),
    })
}

fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Decrypts the content (`total_len` bytes from `reader`) into `out`. The plaintext
/// written is unauthenticated until this returns `Ok`; returns its length.
pub fn decrypt_content(
    reader: &mut dyn Read,
    total_len: u64,
    env: &Envelope,
    data_key: &DataKey,
    allow_unauthenticated: bool,
    out: &mut dyn Write,
) -> Result<u64, S3ecError> {
    match env.content {
        ContentCipher::AesGcm => {
            let iv: [u8; 12] = env
                .iv
                .as_slice()
                .try_into()
                .map_err(|_| GcmError::TagMismatch)?;
            gcm_stream(reader, total_len, &data_key.key, &iv, b"", out)
        }
        ContentCipher::AesGcmCommitting => {
            let hk = Hkdf::<Sha512>::new(Some(&env.message_id), data_key.key.as_slice());
            let mut content_key = Zeroizing::new([0u8; 32]);
            let mut commitment = Zeroizing::new([0u8; 28]);
            let label = |name: &[u8]| [&SUITE_ID[..], name].concat();
            hk.expand(&label(b"DERIVEKEY"), content_key.as_mut_slice())
                .map_err(|_| S3ecError::CommitmentMismatch)?;
            hk.expand(&label(b"COMMITKEY"), commitment.as_mut_slice())
                .map_err(|_| S3ecError::CommitmentMismatch)?;
            if !bool::from(commitment.as_slice().ct_eq(&env.commitment)) {
                return Err(S3ecError::CommitmentMismatch);
            }
            gcm_stream(reader, total_len, &content_key, &[0x01; 12], &SUITE_ID, out)
        }
        ContentCipher::AesCbc => {
            if !allow_unauthenticated {
                return Err(S3ecError::LegacyCbcRefused);
            }
            cbc_stream(reader, total_len, &data_key.key, &env.iv, out)
        }
    }
}

fn gcm_stream(
    reader: &mut dyn Read,
    total_len: u64,
    key: &[u8; 32],
    iv: &[u8; 12],
    aad: &[u8],
    out: &mut dyn Write,
) -> Result<u64, S3ecError> {
    let mut gcm = GcmDecryptor::new(key, iv, aad, total_len)?;
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    loop {
        let n = read_full(reader, &mut buf)?;
        if n == 0 {
            break;
        }
        let plain = gcm.update(&mut buf[..n]);
        out.write_all(&buf[..plain])?;
        written += plain as u64;
    }
    gcm.finish()?;
    Ok(written)
}

fn cbc_stream(
    reader: &mut dyn Read,
    total_len: u64,
    key: &[u8; 32],
    iv: &[u8],
    out: &mut dyn Write,
) -> Result<u64, S3ecError> {
    if total_len == 0 || !total_len.is_multiple_of(16) {
        return Err(S3ecError::BadLength(total_len));
    }
    let mut cbc = CbcDecryptor::new(key, iv).map_err(|_| S3ecError::BadLength(total_len))?;
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    let mut read = 0u64;
    loop {
        let n = read_full(reader, &mut buf)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        cbc.update(&buf[..n], out)?;
    }
    if read != total_len {
        return Err(S3ecError::BadLength(read));
    }
    cbc.finish(out).map_err(|e| match e {
        FinishError::Cbc(CbcError::BadPadding) => S3ecError::BadPadding,
        FinishError::Cbc(_) => S3ecError::BadLength(read),
        FinishError::Io(e) => S3ecError::Io(e),
    })
}
