//! Key files and the keyring that holds every key given (several keys at once: rotation).
//!
//! Accepted files: OpenPGP secret keys (armored or binary, several per file), RSA private
//! keys (PKCS#1 PEM, PKCS#8 PEM or DER, encrypted PKCS#8), X.509 certificates (PEM or
//! DER; a PEM file may hold certificates and keys together), PKCS#12 bundles, and raw
//! AES-256 keys (32 bytes, or their base64 on one line). Secret material is zeroized on drop and never printed:
//! `Debug` shows fingerprints only.

use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine;
use pgp::composed::{PublicOrSecret, SignedSecretKey};
use pgp::types::{KeyDetails, Password};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Key files larger than this are refused unread (a keyring of a few keys is kilobytes).
pub const MAX_KEY_FILE: u64 = 1024 * 1024;

/// A key file that could not be used. Messages name the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a key gcrec reads.
    #[error(
        "{path}: not a key gcrec can use ({reason}); give an OpenPGP secret key, an RSA private key (PKCS#1 or PKCS#8 PEM, PKCS#8 DER), an X.509 certificate, a PKCS#12 bundle or a 32-byte AES key (raw or base64)"
    )]
    Unrecognized {
        /// The file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// A passphrase-protected key and no passphrase.
    #[error("{path}: key {key} is passphrase-protected; give the passphrase")]
    PassphraseNeeded {
        /// The file.
        path: PathBuf,
        /// The key's ID.
        key: String,
    },
    /// None of the passphrases unlocks the key.
    #[error("{path}: wrong passphrase for key {key}")]
    WrongPassphrase {
        /// The file.
        path: PathBuf,
        /// The key's ID.
        key: String,
    },
}

impl KeyError {
    /// What the user can give to get past this error.
    pub fn hint(&self) -> Option<crate::Hint> {
        match self {
            KeyError::PassphraseNeeded { .. } | KeyError::WrongPassphrase { .. } => {
                Some(crate::Hint::Passphrase)
            }
            _ => None,
        }
    }
}

/// What a key file holds, for `gcrec keys inspect` and logs. No secret material.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// `openpgp`, `rsa` or `aes-256`.
    pub kind: &'static str,
    /// Algorithm and size, e.g. `RSA 3072`, `EdDSA + ECDH Curve25519`.
    pub algorithm: String,
    /// The fingerprint (OpenPGP primary key, SHA-256 of the RSA public key, or a key
    /// check value for AES).
    pub fingerprint: String,
    /// Key IDs that messages name (OpenPGP primary and subkeys).
    pub key_ids: Vec<String>,
    /// Whether the key is protected by a passphrase.
    pub protected: bool,
    /// User IDs (OpenPGP).
    pub user_ids: Vec<String>,
    /// The certificate, for `x509` entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<crate::x509::Certificate>,
}

/// An OpenPGP secret key, unlocked (protection removed when it was loaded).
pub struct PgpKey {
    /// The key.
    pub key: SignedSecretKey,
    /// Its RSA components (primary key or subkeys) in AWS-LC, by key ID (hex), for fast
    /// session-key decryption.
    pub native_rsa: Vec<(String, crate::rsa_native::NativeRsa)>,
    /// Where it came from.
    pub source: PathBuf,
}

/// An RSA private key.
pub struct RsaKey {
    /// The key (zeroized on drop by `rsa`).
    pub key: RsaPrivateKey,
    /// The same key in AWS-LC, for fast decryption (`None` if AWS-LC refused it).
    pub native: Option<crate::rsa_native::NativeRsa>,
    /// SHA-256 of the public key (SPKI DER), hex.
    pub fingerprint: String,
    /// The key identifier a certificate for it would carry (SHA-1 of the public key,
    /// RFC 5280 method 1): CMS recipients named by `-keyid` match it.
    pub ski: Vec<u8>,
    /// Where it came from.
    pub source: PathBuf,
}

impl RsaKey {
    /// RSAES-PKCS1-v1_5 decryption (AWS-LC when it took the key, the `rsa` crate
    /// otherwise); `None` when the ciphertext is not for this key.
    pub fn decrypt_pkcs1(&self, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        match &self.native {
            Some(n) => n.decrypt_pkcs1(ciphertext),
            None => self
                .key
                .decrypt(rsa::Pkcs1v15Encrypt, ciphertext)
                .ok()
                .map(Zeroizing::new),
        }
    }

    /// RSAES-OAEP decryption with SHA-1 or SHA-256 (and MGF1 with the same hash).
    pub fn decrypt_oaep(
        &self,
        hash: crate::rsa_native::OaepHash,
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        use crate::rsa_native::OaepHash;
        match (&self.native, hash) {
            (Some(n), _) => n.decrypt_oaep(hash, ciphertext),
            (None, OaepHash::Sha1) => self
                .key
                .decrypt(rsa::Oaep::new::<sha1::Sha1>(), ciphertext)
                .ok()
                .map(Zeroizing::new),
            (None, OaepHash::Sha256) => self
                .key
                .decrypt(rsa::Oaep::new::<Sha256>(), ciphertext)
                .ok()
                .map(Zeroizing::new),
            (None, OaepHash::Sha384) => self
                .key
                .decrypt(rsa::Oaep::new::<sha2::Sha384>(), ciphertext)
                .ok()
                .map(Zeroizing::new),
            (None, OaepHash::Sha512) => self
                .key
                .decrypt(rsa::Oaep::new::<sha2::Sha512>(), ciphertext)
                .ok()
                .map(Zeroizing::new),
        }
    }

    /// How manifests name it: `rsa:` and the first 16 hex digits of its fingerprint.
    pub fn short_id(&self) -> String {
        format!(
            "rsa:{}",
            &self.fingerprint[..16.min(self.fingerprint.len())]
        )
    }
}

/// A raw AES-256 key.
pub struct AesKey {
    /// The key bytes.
    pub key: Zeroizing<[u8; 32]>,
    /// A key check value (not the key), hex.
    pub fingerprint: String,
    /// Where it came from.
    pub source: PathBuf,
}

/// Every key given, by kind.
#[derive(Default)]
pub struct Keyring {
    /// OpenPGP secret keys.
    pub pgp: Vec<PgpKey>,
    /// RSA private keys.
    pub rsa: Vec<RsaKey>,
    /// AES-256 keys.
    pub aes: Vec<AesKey>,
    /// X.509 certificates: they say which RSA key a CMS recipient is.
    pub certificates: Vec<crate::x509::Certificate>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "pgp",
                &self
                    .pgp
                    .iter()
                    .map(|k| format!("{:X}", k.key.fingerprint()))
                    .collect::<Vec<_>>(),
            )
            .field(
                "rsa",
                &self.rsa.iter().map(|k| &k.fingerprint).collect::<Vec<_>>(),
            )
            .field(
                "aes",
                &self.aes.iter().map(|k| &k.fingerprint).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Asks for a passphrase, showing the message; `None` when it cannot ask.
pub type Prompt = dyn Fn(&str) -> Option<Zeroizing<String>>;

/// Passphrases to try on protected keys, and how to get one more when none is given.
pub struct Passphrases<'a> {
    /// Passphrases given up front (from an environment variable or a file).
    pub given: Vec<Zeroizing<String>>,
    /// Asked when a protected key has no working passphrase; `None` when there is no
    /// terminal to ask on.
    pub prompt: Option<&'a Prompt>,
}

impl fmt::Debug for Passphrases<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Passphrases({} given)", self.given.len())
    }
}

fn aes_check_value(key: &[u8; 32]) -> String {
    let digest = Sha256::new_with_prefix(b"gcrec key check value\0")
        .chain_update(key)
        .finalize();
    hex::encode(&digest[..8])
}

/// `RSA 3072`, `Ed25519`, `ECDH Curve25519`: the algorithm and its size.
fn pgp_algorithm(params: &pgp::types::PublicParams) -> String {
    use pgp::types::PublicParams as P;
    match params {
        P::RSA(p) => format!("RSA {}", p.key.size() * 8),
        P::EdDSALegacy(_) | P::Ed25519(_) => "Ed25519".into(),
        P::ECDH(p) => format!("ECDH {:?}", p.curve()),
        P::X25519(_) => "X25519".into(),
        P::X448(_) => "X448".into(),
        P::Ed448(_) => "Ed448".into(),
        P::ECDSA(_) => "ECDSA".into(),
        P::DSA(_) => "DSA".into(),
        P::Elgamal(_) => "ElGamal".into(),
        other => format!("{other:?}").chars().take(24).collect(),
    }
}

fn pgp_info(key: &SignedSecretKey) -> KeyInfo {
    let mut ids = vec![hex::encode_upper(key.primary_key.legacy_key_id().as_ref())];
    ids.extend(
        key.secret_subkeys
            .iter()
            .map(|s| hex::encode_upper(s.key.legacy_key_id().as_ref())),
    );
    let mut algorithms = vec![pgp_algorithm(key.primary_key.public_params())];
    algorithms.extend(
        key.secret_subkeys
            .iter()
            .map(|s| pgp_algorithm(s.key.public_params())),
    );
    let protected = key.primary_key.secret_params().is_encrypted()
        || key
            .secret_subkeys
            .iter()
            .any(|s| s.key.secret_params().is_encrypted());
    KeyInfo {
        kind: "openpgp",
        algorithm: algorithms.join(" + "),
        fingerprint: format!("{:X}", key.primary_key.fingerprint()),
        key_ids: ids,
        protected,
        user_ids: key
            .details
            .users
            .iter()
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
            .collect(),
        certificate: None,
    }
}

fn rsa_info(key: &RsaPrivateKey) -> (KeyInfo, String) {
    let der = key
        .to_public_key()
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    let fingerprint = hex::encode(Sha256::digest(der));
    let info = KeyInfo {
        kind: "rsa",
        algorithm: format!("RSA {}", key.size() * 8),
        fingerprint: fingerprint.clone(),
        key_ids: Vec::new(),
        protected: false,
        user_ids: Vec::new(),
        certificate: None,
    };
    (info, fingerprint)
}

/// An RSA key's private components, from rPGP's unlocked secret parameters (serialized
/// as the MPIs d, p, q, u) and its public parameters.
fn rsa_from_parts(
    public: &pgp::types::RsaPublicParams,
    secret: &pgp::crypto::rsa::SecretKey,
) -> Option<RsaPrivateKey> {
    let mut bytes = Zeroizing::new(Vec::new());
    pgp::ser::Serialize::to_writer(secret, &mut *bytes).ok()?;
    let mut mpis = Vec::new();
    let mut at = 0;
    while mpis.len() < 3 {
        let bits = usize::from(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
        let value = bytes.get(at + 2..at + 2 + bits.div_ceil(8))?;
        mpis.push(rsa::BigUint::from_bytes_be(value));
        at += 2 + bits.div_ceil(8);
    }
    let (q, p, d) = (mpis.pop()?, mpis.pop()?, mpis.pop()?);
    RsaPrivateKey::from_components(
        public.key.n().clone(),
        public.key.e().clone(),
        d,
        vec![p, q],
    )
    .ok()
}

/// The RSA components of an unlocked OpenPGP key (primary and subkeys) in AWS-LC.
fn native_rsa_of(key: &SignedSecretKey) -> Vec<(String, crate::rsa_native::NativeRsa)> {
    use pgp::types::{PlainSecretParams, PublicParams, SecretParams};
    let mut out = Vec::new();
    let mut add = |id: &pgp::types::KeyId, public: &PublicParams, secret: &SecretParams| {
        if let (PublicParams::RSA(p), SecretParams::Plain(PlainSecretParams::RSA(s))) =
            (public, secret)
            && let Some(native) =
                rsa_from_parts(p, s).and_then(|k| crate::rsa_native::NativeRsa::from_key(&k))
        {
            out.push((hex::encode_upper(id.as_ref()), native));
        }
    };
    add(
        &key.primary_key.legacy_key_id(),
        key.primary_key.public_params(),
        key.primary_key.secret_params(),
    );
    for sub in &key.secret_subkeys {
        add(
            &sub.key.legacy_key_id(),
            sub.key.public_params(),
            sub.key.secret_params(),
        );
    }
    out
}

/// The key with the protection removed from every component, if the passphrase opens
/// them all. Unlocking once here matters: an iterated S2K costs tens of megabytes of
/// SHA-1 per component, which rPGP would otherwise pay again for every message. The
/// components are unlocked on threads of their own, at once: a key is a primary key and
/// usually one encryption subkey, each with its own S2K, before anything else can start.
/// The usual protection goes through [`crate::s2k`] (about 0.03 s per component instead
/// of rPGP's 0.12 s, `cargo bench --bench s2k`); any other, and a wrong passphrase,
/// through rPGP.
fn pgp_unlocked(key: &SignedSecretKey, pw: &Password) -> Option<SignedSecretKey> {
    let mut unlocked = key.clone();
    let SignedSecretKey {
        primary_key,
        secret_subkeys,
        ..
    } = &mut unlocked;
    let all_opened = std::thread::scope(|scope| {
        let subkeys: Vec<_> = secret_subkeys
            .iter_mut()
            .map(|sub| scope.spawn(move || sub.key.open_in_place(pw)))
            .collect();
        let primary = primary_key.open_in_place(pw);
        // Every thread is joined; a panic in one counts as a failure.
        subkeys
            .into_iter()
            .fold(primary, |ok, h| h.join().unwrap_or(false) && ok)
    });
    all_opened.then_some(unlocked)
}

/// One component of an OpenPGP secret key (the primary key or a subkey) that can have
/// its protection removed in place.
trait OpenInPlace {
    /// Removes the protection: through [`crate::s2k`] when it is the usual form and the
    /// passphrase right, else through rPGP's `remove_password` (which also says whether
    /// the passphrase is wrong). `false` when the component stays locked.
    fn open_in_place(&mut self, pw: &Password) -> bool;
}

/// rPGP's two component types have the same inherent methods but no trait in common.
macro_rules! open_in_place {
    ($($component:ty),*) => {$(
        impl OpenInPlace for $component {
            fn open_in_place(&mut self, pw: &Password) -> bool {
                let public = self.public_key();
                let fast = match self.secret_params() {
                    pgp::types::SecretParams::Encrypted(encrypted) => {
                        crate::s2k::unlock(encrypted, public, &pw.read()).and_then(|plain| {
                            <$component>::new(
                                public.clone(),
                                pgp::types::SecretParams::Plain(plain),
                            )
                            .ok()
                        })
                    }
                    pgp::types::SecretParams::Plain(_) => None,
                };
                match fast {
                    Some(opened) => {
                        *self = opened;
                        true
                    }
                    None => self.remove_password(pw).is_ok(),
                }
            }
        }
    )*};
}

open_in_place!(pgp::packet::SecretKey, pgp::packet::SecretSubkey);

enum Parsed {
    Pgp(Vec<SignedSecretKey>),
    Rsa(Box<RsaPrivateKey>),
    EncryptedPkcs8(Zeroizing<Vec<u8>>),
    Aes(Zeroizing<[u8; 32]>),
    Cert(Box<crate::x509::Certificate>),
    Pkcs12(Zeroizing<Vec<u8>>),
    /// A PEM file of several blocks (a certificate beside its key).
    Bundle(Vec<Parsed>),
}

/// The `-----BEGIN …-----` … `-----END …-----` blocks of a PEM text, with their labels.
fn pem_blocks(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let block_end = start + end + end_marker.len();
        out.push((label, &rest[start..block_end]));
        rest = &rest[block_end..];
    }
    out
}

fn certificate_info(cert: crate::x509::Certificate) -> KeyInfo {
    KeyInfo {
        kind: "x509",
        algorithm: format!("{} certificate", cert.key),
        fingerprint: cert.spki_sha256.clone(),
        key_ids: Vec::new(),
        protected: false,
        user_ids: Vec::new(),
        certificate: Some(cert),
    }
}

fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let read_err = |source| KeyError::Read {
        path: path.to_owned(),
        source,
    };
    // Read at most one byte past the limit: `/dev/zero`, a pipe or a huge file given by
    // mistake must not be read without end.
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut data = Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_KEY_FILE + 1), &mut data)
        .map_err(read_err)?;
    if data.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::Unrecognized {
            path: path.to_owned(),
            reason: format!("more than {MAX_KEY_FILE} bytes is too large for a key file"),
        });
    }
    Ok(data)
}

fn parse(path: &Path, data: &[u8]) -> Result<Parsed, KeyError> {
    let unrecognized = |reason: &str| KeyError::Unrecognized {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(data).ok().map(str::trim);
    if let Some(t) = text {
        let blocks = pem_blocks(t);
        let pgp = blocks.iter().any(|(label, _)| label.starts_with("PGP "));
        if !pgp && (blocks.len() > 1 || blocks.iter().any(|(l, _)| *l == "CERTIFICATE")) {
            let mut parts = Vec::new();
            for (label, block) in blocks {
                if label == "CERTIFICATE" {
                    let der = x509_cert::der::Document::from_pem(block)
                        .map_err(|e| {
                            unrecognized(&format!(
                                "invalid PEM certificate: {}",
                                crate::parser_error(&e)
                            ))
                        })?
                        .1;
                    let cert = crate::x509::certificate(der.as_bytes())
                        .map_err(|e| unrecognized(&e.to_string()))?;
                    parts.push(Parsed::Cert(Box::new(cert)));
                } else {
                    parts.push(parse(path, block.as_bytes())?);
                }
            }
            return Ok(Parsed::Bundle(parts));
        }
    }
    let pem =
        |label: &str| text.is_some_and(|t| t.starts_with(&format!("-----BEGIN {label}-----")));
    if pem("PGP PUBLIC KEY BLOCK") {
        return Err(unrecognized(
            "this is an OpenPGP public key; decryption needs the secret key",
        ));
    }
    if pem("PUBLIC KEY") || pem("RSA PUBLIC KEY") {
        return Err(unrecognized(
            "this is a public key; decryption needs the private key",
        ));
    }
    if pem("RSA PRIVATE KEY") {
        let key = RsaPrivateKey::from_pkcs1_pem(text.unwrap_or_default()).map_err(|e| {
            unrecognized(&format!(
                "invalid PKCS#1 RSA key: {}",
                crate::parser_error(&e)
            ))
        })?;
        return Ok(Parsed::Rsa(Box::new(key)));
    }
    if pem("PRIVATE KEY") {
        let key = RsaPrivateKey::from_pkcs8_pem(text.unwrap_or_default()).map_err(|e| {
            unrecognized(&format!(
                "invalid PKCS#8 key (only RSA is used): {}",
                crate::parser_error(&e)
            ))
        })?;
        return Ok(Parsed::Rsa(Box::new(key)));
    }
    if pem("ENCRYPTED PRIVATE KEY") {
        return Ok(Parsed::EncryptedPkcs8(Zeroizing::new(data.to_vec())));
    }
    let pgp_binary = data.first().is_some_and(|b| {
        let tag = if b & 0x40 != 0 {
            b & 0x3f
        } else {
            (b >> 2) & 0x0f
        };
        b & 0x80 != 0 && tag == 5
    });
    if pem("PGP PRIVATE KEY BLOCK") || pgp_binary {
        let (keys, _) = PublicOrSecret::from_reader_many(Cursor::new(data)).map_err(|e| {
            unrecognized(&format!("invalid OpenPGP key: {}", crate::parser_error(&e)))
        })?;
        let mut secret = Vec::new();
        for key in keys {
            match key.map_err(|e| {
                unrecognized(&format!("invalid OpenPGP key: {}", crate::parser_error(&e)))
            })? {
                PublicOrSecret::Secret(k) => secret.push(k),
                PublicOrSecret::Public(_) => {}
            }
        }
        if secret.is_empty() {
            return Err(unrecognized("the OpenPGP data holds no secret key"));
        }
        return Ok(Parsed::Pgp(secret));
    }
    if data.first() == Some(&0x30) {
        if let Ok(key) = RsaPrivateKey::from_pkcs8_der(data) {
            return Ok(Parsed::Rsa(Box::new(key)));
        }
        if let Ok(cert) = crate::x509::certificate(data) {
            return Ok(Parsed::Cert(Box::new(cert)));
        }
        if crate::x509::is_pkcs12(data) {
            return Ok(Parsed::Pkcs12(Zeroizing::new(data.to_vec())));
        }
    }
    match aes_key_from_bytes(data) {
        Ok(key) => return Ok(Parsed::Aes(key)),
        Err(Some(reason)) => return Err(unrecognized(&reason)),
        Err(None) => {}
    }
    Err(unrecognized(&format!(
        "{} bytes of unknown format",
        data.len()
    )))
}

/// A 32-byte AES key from a file's bytes: raw, or base64 text. `Err(None)` when the
/// bytes are neither; `Err(Some(reason))` when they are base64 of the wrong length.
fn aes_key_from_bytes(data: &[u8]) -> Result<Zeroizing<[u8; 32]>, Option<String>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if data.len() == 32 {
        key.copy_from_slice(data);
        return Ok(key);
    }
    let text = std::str::from_utf8(data).map_err(|_| None)?.trim();
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| None)?,
    );
    if bytes.len() != 32 {
        return Err(Some(format!(
            "base64 text of {} bytes, not a 32-byte AES key",
            bytes.len()
        )));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Whether a key file can be read by users other than its owner (group or world
/// permissions): a secret key should be `0600`.
pub fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Reads a file holding one AES-256 key (32 raw bytes, or their base64): an S3EC
/// wrapping key or an SSE-C key.
pub fn read_aes_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let data = read_key_file(path)?;
    aes_key_from_bytes(&data).map_err(|reason| KeyError::Unrecognized {
        path: path.to_owned(),
        reason: reason.unwrap_or_else(|| "not 32 raw bytes or their base64".into()),
    })
}

/// Describes a key file without unlocking anything.
pub fn inspect(path: &Path) -> Result<Vec<KeyInfo>, KeyError> {
    inspect_with(path, &[])
}

/// Describes a key file; a PKCS#12 bundle is opened with one of `passphrases` (its
/// keys and certificates are inside the encryption). Nothing secret is described.
pub fn inspect_with(
    path: &Path,
    passphrases: &[Zeroizing<String>],
) -> Result<Vec<KeyInfo>, KeyError> {
    let data = read_key_file(path)?;
    Ok(match parse(path, &data)? {
        Parsed::Aes(key) => vec![KeyInfo {
            kind: "aes-256",
            algorithm: "AES-256".into(),
            fingerprint: aes_check_value(&key),
            key_ids: Vec::new(),
            protected: false,
            user_ids: Vec::new(),
            certificate: None,
        }],
        Parsed::Pkcs12(der) => {
            // The bundle's keys and certificates are inside its encryption: opened
            // with no passphrase, or one given.
            let opened = std::iter::once("")
                .chain(passphrases.iter().map(|p| p.as_str()))
                .find_map(|pw| crate::x509::open_pkcs12(&der, pw).ok());
            match opened {
                Some(contents) => pkcs12_infos(&contents),
                None => vec![KeyInfo {
                    kind: "pkcs12",
                    algorithm: "PKCS#12 bundle (its keys and certificates need the passphrase)"
                        .into(),
                    fingerprint: String::new(),
                    key_ids: Vec::new(),
                    protected: true,
                    user_ids: Vec::new(),
                    certificate: None,
                }],
            }
        }
        Parsed::Bundle(parts) => parts.into_iter().flat_map(inspect_parsed).collect(),
        other => inspect_parsed(other),
    })
}

fn inspect_parsed(parsed: Parsed) -> Vec<KeyInfo> {
    match parsed {
        Parsed::Rsa(key) => vec![rsa_info(&key).0],
        Parsed::Cert(cert) => vec![certificate_info(*cert)],
        Parsed::Pgp(keys) => keys.iter().map(pgp_info).collect(),
        Parsed::EncryptedPkcs8(_) => vec![KeyInfo {
            kind: "rsa",
            algorithm: "RSA (encrypted PKCS#8: size and fingerprint need the passphrase)".into(),
            fingerprint: String::new(),
            key_ids: Vec::new(),
            protected: true,
            user_ids: Vec::new(),
            certificate: None,
        }],
        Parsed::Aes(_) | Parsed::Pkcs12(_) | Parsed::Bundle(_) => Vec::new(),
    }
}

/// What an opened PKCS#12 bundle holds, described.
fn pkcs12_infos(contents: &crate::x509::Pkcs12Contents) -> Vec<KeyInfo> {
    let mut infos: Vec<KeyInfo> = contents
        .keys
        .iter()
        .filter_map(|der| RsaPrivateKey::from_pkcs8_der(der).ok())
        .map(|k| rsa_info(&k).0)
        .collect();
    infos.extend(contents.certificates.iter().cloned().map(certificate_info));
    infos
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.pgp.is_empty() && self.rsa.is_empty() && self.aes.is_empty()
    }

    /// Loads every key in a file, unlocking protected ones now so that a wrong
    /// passphrase is reported once, up front, rather than once per recording.
    pub fn load(
        &mut self,
        path: &Path,
        passphrases: &mut Passphrases<'_>,
    ) -> Result<Vec<KeyInfo>, KeyError> {
        let data = read_key_file(path)?;
        let parsed = parse(path, &data)?;
        self.load_parsed(path, parsed, passphrases)
    }

    fn load_parsed(
        &mut self,
        path: &Path,
        parsed: Parsed,
        passphrases: &mut Passphrases<'_>,
    ) -> Result<Vec<KeyInfo>, KeyError> {
        match parsed {
            Parsed::Cert(cert) => {
                self.certificates.push((*cert).clone());
                Ok(vec![certificate_info(*cert)])
            }
            Parsed::Bundle(parts) => {
                let mut infos = Vec::new();
                for part in parts {
                    infos.extend(self.load_parsed(path, part, passphrases)?);
                }
                Ok(infos)
            }
            Parsed::Pkcs12(der) => {
                // A bundle without a passphrase opens with the empty one.
                let mut unreadable = None;
                let contents = match crate::x509::open_pkcs12(&der, "") {
                    Ok(c) => c,
                    Err(_) => unlock_with(path, "(PKCS#12 bundle)", passphrases, |pw| {
                        match crate::x509::open_pkcs12(&der, pw) {
                            Ok(c) => Some(c),
                            // The MAC verified, something else is wrong: say that, not
                            // "wrong passphrase".
                            Err(e @ crate::x509::X509Error::Pkcs12(_)) => {
                                unreadable = Some(e);
                                None
                            }
                            Err(_) => None,
                        }
                    })
                    .map_err(|e| match unreadable.take() {
                        Some(reason) => KeyError::Unrecognized {
                            path: path.to_owned(),
                            reason: reason.to_string(),
                        },
                        None => e,
                    })?,
                };
                let infos = pkcs12_infos(&contents);
                for der in &contents.keys {
                    let key =
                        RsaPrivateKey::from_pkcs8_der(der).map_err(|e| KeyError::Unrecognized {
                            path: path.to_owned(),
                            reason: format!(
                                "the PKCS#12 bundle's key is not RSA: {}",
                                crate::parser_error(&e)
                            ),
                        })?;
                    self.add_rsa(path, key);
                }
                self.certificates.extend(contents.certificates);
                Ok(infos)
            }
            Parsed::Pgp(keys) => {
                let mut infos = Vec::new();
                for key in keys {
                    let info = pgp_info(&key);
                    let key = if info.protected {
                        let id = info.key_ids[0].clone();
                        unlock_with(path, &id, passphrases, |pw| {
                            pgp_unlocked(&key, &Password::from(pw.as_bytes()))
                        })?
                    } else {
                        key
                    };
                    self.pgp.push(PgpKey {
                        native_rsa: native_rsa_of(&key),
                        key,
                        source: path.to_owned(),
                    });
                    infos.push(info);
                }
                Ok(infos)
            }
            Parsed::Rsa(key) => Ok(vec![self.add_rsa(path, *key)]),
            Parsed::EncryptedPkcs8(pem) => {
                let text = std::str::from_utf8(&pem)
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let text = Zeroizing::new(text);
                let key = unlock_with(path, "(encrypted PKCS#8)", passphrases, |pw| {
                    RsaPrivateKey::from_pkcs8_encrypted_pem(&text, pw.as_bytes()).ok()
                })?;
                Ok(vec![self.add_rsa(path, key)])
            }
            Parsed::Aes(key) => {
                let fingerprint = aes_check_value(&key);
                self.aes.push(AesKey {
                    key,
                    fingerprint: fingerprint.clone(),
                    source: path.to_owned(),
                });
                Ok(vec![KeyInfo {
                    kind: "aes-256",
                    algorithm: "AES-256".into(),
                    fingerprint,
                    key_ids: Vec::new(),
                    protected: false,
                    user_ids: Vec::new(),
                    certificate: None,
                }])
            }
        }
    }

    fn add_rsa(&mut self, path: &Path, key: RsaPrivateKey) -> KeyInfo {
        let (info, fingerprint) = rsa_info(&key);
        let ski = {
            use rsa::pkcs1::EncodeRsaPublicKey;
            key.to_public_key()
                .to_pkcs1_der()
                .map(|d| sha1::Sha1::digest(d.as_bytes()).to_vec())
                .unwrap_or_default()
        };
        self.rsa.push(RsaKey {
            ski,
            native: crate::rsa_native::NativeRsa::from_key(&key),
            key,
            fingerprint,
            source: path.to_owned(),
        });
        info
    }

    /// Every OpenPGP key ID (primary and subkeys) the keyring can decrypt for.
    pub fn pgp_key_ids(&self) -> Vec<String> {
        self.pgp
            .iter()
            .flat_map(|k| pgp_info(&k.key).key_ids)
            .collect()
    }
}

/// Tries the given passphrases, then asks, until `try_one` accepts one.
fn unlock_with<T>(
    path: &Path,
    key: &str,
    passphrases: &mut Passphrases<'_>,
    mut try_one: impl FnMut(&str) -> Option<T>,
) -> Result<T, KeyError> {
    for pw in &passphrases.given {
        if let Some(t) = try_one(pw) {
            return Ok(t);
        }
    }
    if let Some(prompt) = passphrases.prompt
        && let Some(pw) = prompt(&format!("Passphrase for {key} in {}: ", path.display()))
    {
        let unlocked = try_one(&pw);
        passphrases.given.push(pw);
        if let Some(t) = unlocked {
            return Ok(t);
        }
        return Err(KeyError::WrongPassphrase {
            path: path.to_owned(),
            key: key.to_owned(),
        });
    }
    if passphrases.given.is_empty() {
        Err(KeyError::PassphraseNeeded {
            path: path.to_owned(),
            key: key.to_owned(),
        })
    } else {
        Err(KeyError::WrongPassphrase {
            path: path.to_owned(),
            key: key.to_owned(),
        })
    }
}

/// A freshly generated key pair, armored or PEM-encoded.
pub struct GeneratedPair {
    /// The secret half (armored OpenPGP or PKCS#8 PEM).
    pub secret: Zeroizing<String>,
    /// The public half (armored OpenPGP or SPKI PEM).
    pub public: String,
    /// What it is.
    pub info: KeyInfo,
}

/// A key-generation failure.
#[derive(Debug, thiserror::Error)]
#[error("key generation failed: {0}")]
pub struct GenerateError(String);

/// Generates an OpenPGP key: an Ed25519 signing primary key with a Curve25519 encryption
/// subkey (v4 keys, which GnuPG 2.2 and Sequoia read), protected by `passphrase` if given.
pub fn generate_pgp_pair(
    user_id: &str,
    passphrase: Option<&str>,
) -> Result<GeneratedPair, GenerateError> {
    use pgp::composed::{EncryptionCaps, KeyType, SecretKeyParamsBuilder, SubkeyParamsBuilder};
    use pgp::crypto::ecc_curve::ECCCurve;
    let err = |e: &dyn fmt::Display| GenerateError(e.to_string());
    let mut rng = rand::thread_rng();
    let subkey = SubkeyParamsBuilder::default()
        .key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
        .can_encrypt(EncryptionCaps::All)
        .passphrase(passphrase.map(str::to_owned))
        .build()
        .map_err(|e| err(&e))?;
    let params = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(user_id.into())
        .passphrase(passphrase.map(str::to_owned))
        .subkeys(vec![subkey])
        .build()
        .map_err(|e| err(&e))?;
    let key = params.generate(&mut rng).map_err(|e| err(&e))?;
    let secret = key
        .to_armored_string(Default::default())
        .map_err(|e| err(&e))?;
    let public = key
        .to_public_key()
        .to_armored_string(Default::default())
        .map_err(|e| err(&e))?;
    Ok(GeneratedPair {
        secret: Zeroizing::new(secret),
        public,
        info: pgp_info(&key),
    })
}

/// Generates an RSA key pair (PKCS#8 private key, encrypted with `passphrase` if given;
/// SPKI public key), for S3 Encryption Client RSA-OAEP key wrapping.
pub fn generate_rsa_pair(
    bits: usize,
    passphrase: Option<&str>,
) -> Result<GeneratedPair, GenerateError> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let err = |e: &dyn fmt::Display| GenerateError(e.to_string());
    let mut rng = rand::thread_rng();
    let key = RsaPrivateKey::new(&mut rng, bits).map_err(|e| err(&e))?;
    let secret = match passphrase {
        Some(pw) => key.to_pkcs8_encrypted_pem(&mut rng, pw.as_bytes(), LineEnding::LF),
        None => key.to_pkcs8_pem(LineEnding::LF),
    }
    .map_err(|e| err(&e))?;
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| err(&e))?;
    let (mut info, _) = rsa_info(&key);
    info.protected = passphrase.is_some();
    Ok(GeneratedPair {
        secret: Zeroizing::new(secret.to_string()),
        public,
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_prompt() -> Passphrases<'static> {
        Passphrases {
            given: Vec::new(),
            prompt: None,
        }
    }

    fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn generated_keys_load_and_protected_ones_need_their_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let pgp = generate_pgp_pair("t <t@example.invalid>", Some("pw")).unwrap();
        let p = write(dir.path(), "k.asc", pgp.secret.as_bytes());
        let mut ring = Keyring::new();
        assert!(matches!(
            ring.load(&p, &mut no_prompt()),
            Err(KeyError::PassphraseNeeded { .. })
        ));
        let mut wrong = Passphrases {
            given: vec![Zeroizing::new("nope".into())],
            prompt: None,
        };
        let err = ring.load(&p, &mut wrong).unwrap_err();
        assert!(matches!(err, KeyError::WrongPassphrase { .. }));
        assert!(
            !err.to_string().contains("nope"),
            "a passphrase leaked into an error"
        );
        let mut right = Passphrases {
            given: vec![Zeroizing::new("nope".into()), Zeroizing::new("pw".into())],
            prompt: None,
        };
        let infos = ring.load(&p, &mut right).unwrap();
        assert_eq!(infos[0].key_ids.len(), 2);
        assert!(infos[0].protected);

        let rsa = generate_rsa_pair(2048, Some("pw")).unwrap();
        let p = write(dir.path(), "k.pem", rsa.secret.as_bytes());
        assert!(matches!(
            ring.load(&p, &mut no_prompt()),
            Err(KeyError::PassphraseNeeded { .. })
        ));
        ring.load(&p, &mut right).unwrap();
        assert_eq!(ring.rsa.len(), 1);
        assert!(!format!("{ring:?}").contains("PRIVATE"));
    }

    #[test]
    fn aes_keys_raw_or_base64_and_clear_errors_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::new();
        ring.load(&write(dir.path(), "raw", &[7u8; 32]), &mut no_prompt())
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let infos = ring
            .load(
                &write(dir.path(), "b64", format!("{b64}\n").as_bytes()),
                &mut no_prompt(),
            )
            .unwrap();
        assert_eq!(ring.aes.len(), 2);
        assert_eq!(ring.aes[0].fingerprint, ring.aes[1].fingerprint);
        assert_eq!(infos[0].kind, "aes-256");
        let err = ring
            .load(&write(dir.path(), "short", b"c2hvcnQ="), &mut no_prompt())
            .unwrap_err();
        assert!(err.to_string().contains("not a 32-byte AES key"), "{err}");
        let pubkey = generate_rsa_pair(2048, None).unwrap().public;
        let err = ring
            .load(
                &write(dir.path(), "pub", pubkey.as_bytes()),
                &mut no_prompt(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("public key"), "{err}");
    }
}
