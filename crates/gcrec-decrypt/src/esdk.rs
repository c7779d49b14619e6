//! The AWS Encryption SDK message format (versions 1 and 2), read as a stream: the
//! header is parsed and authenticated and the data key unwrapped before the body is
//! read (keyrings: raw AES, raw RSA, AWS KMS); the body, framed or not, is decrypted
//! frame by frame in constant memory; the ECDSA signature of signed suites is checked
//! over everything before the footer, and only then is the plaintext released.
//!
//! Every algorithm suite of the format: `0x0014/0046/0078` (no key derivation),
//! `0x0114/0146/0178` (HKDF-SHA256), `0x0214` (P-256), `0x0346/0378` (P-384),
//! `0x0478` and `0x0578` (key commitment, HKDF-SHA512; the latter signed with P-384).
//! Specification: `awslabs/aws-encryption-sdk-specification`, `data-format/`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::gcm::{GcmError, GcmStream};
use crate::keys::Keyring;
use crate::rsa_native::OaepHash;
use crate::s3ec::{Kms, KmsError};

/// The largest header read (the encryption context and the encrypted data keys).
pub const MAX_HEADER: usize = 1 << 20;
/// The most encrypted data keys tried (each may cost a private-key operation or a KMS
/// call).
pub const MAX_DATA_KEYS: usize = 64;
/// Bytes decrypted per step inside a frame.
const CHUNK: usize = 64 * 1024;
/// The encryption-context key holding the signing public key.
pub const PUBLIC_KEY_CONTEXT: &str = "aws-crypto-public-key";

/// How the data key becomes the content key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// The data key is the content key (deprecated suites).
    Identity,
    /// HKDF with SHA-256.
    Sha256,
    /// HKDF with SHA-384.
    Sha384,
    /// HKDF with SHA-512 and key commitment.
    Sha512Commit,
}

/// The signature of signed suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// ECDSA P-256 with SHA-256.
    P256,
    /// ECDSA P-384 with SHA-384.
    P384,
}

/// An algorithm suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// Its ID, e.g. `0x0578`.
    pub id: u16,
    /// The message format version it belongs to.
    pub version: u8,
    /// AES key length in bytes.
    pub key_len: usize,
    /// Key derivation.
    pub kdf: Kdf,
    /// Signature, for signed suites.
    pub curve: Option<Curve>,
}

impl Suite {
    /// The suite with this ID.
    pub fn by_id(id: u16) -> Option<Suite> {
        let (version, key_len, kdf, curve) = match id {
            0x0014 => (1, 16, Kdf::Identity, None),
            0x0046 => (1, 24, Kdf::Identity, None),
            0x0078 => (1, 32, Kdf::Identity, None),
            0x0114 => (1, 16, Kdf::Sha256, None),
            0x0146 => (1, 24, Kdf::Sha256, None),
            0x0178 => (1, 32, Kdf::Sha256, None),
            0x0214 => (1, 16, Kdf::Sha256, Some(Curve::P256)),
            0x0346 => (1, 24, Kdf::Sha384, Some(Curve::P384)),
            0x0378 => (1, 32, Kdf::Sha384, Some(Curve::P384)),
            0x0478 => (2, 32, Kdf::Sha512Commit, None),
            0x0578 => (2, 32, Kdf::Sha512Commit, Some(Curve::P384)),
            _ => return None,
        };
        Some(Suite {
            id,
            version,
            key_len,
            kdf,
            curve,
        })
    }

    /// `AES-256-GCM, HKDF-SHA512, committed, ECDSA P-384` and the like.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("AES-{}-GCM", self.key_len * 8)];
        parts.push(
            match self.kdf {
                Kdf::Identity => "no KDF",
                Kdf::Sha256 => "HKDF-SHA256",
                Kdf::Sha384 => "HKDF-SHA384",
                Kdf::Sha512Commit => "HKDF-SHA512, key commitment",
            }
            .into(),
        );
        match self.curve {
            Some(Curve::P256) => parts.push("ECDSA P-256".into()),
            Some(Curve::P384) => parts.push("ECDSA P-384".into()),
            None => {}
        }
        parts.join(", ")
    }
}

/// Whether the first bytes are an ESDK message header: version 1 with type 0x80 (any
/// suite: an unknown one is then reported as such), or version 2 followed by one of its
/// two suites (a bare `02` says too little).
pub fn sniff(head: &[u8]) -> bool {
    match head {
        [1, 0x80, ..] => true,
        [2, a, b, ..] => Suite::by_id(u16::from_be_bytes([*a, *b])).is_some_and(|s| s.version == 2),
        _ => false,
    }
}

/// One encrypted data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyEntry {
    /// Key provider ID: `aws-kms`, or a raw keyring's namespace.
    pub provider_id: String,
    /// Key provider information: a KMS key ARN, or a raw keyring's key name (and, for
    /// AES, the wrapping IV).
    pub provider_info: Vec<u8>,
    /// The encrypted data key.
    pub encrypted_key: Vec<u8>,
}

/// A parsed, not yet authenticated, message header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The suite.
    pub suite: Suite,
    /// The message ID (16 bytes in version 1, 32 in version 2).
    pub message_id: Vec<u8>,
    /// The encryption context.
    pub context: BTreeMap<String, String>,
    /// The context as serialized in the header (the raw AES keyring's AAD).
    context_bytes: Vec<u8>,
    /// The encrypted data keys.
    pub data_keys: Vec<DataKeyEntry>,
    /// Framed (or one block).
    pub framed: bool,
    /// Plaintext bytes per regular frame.
    pub frame_len: u32,
    /// Key commitment (version 2).
    commitment: Vec<u8>,
    /// The header body's bytes (the header authentication's AAD).
    body: Vec<u8>,
    /// The header authentication's IV (zero in version 2).
    auth_iv: [u8; 12],
    /// The header authentication tag.
    auth_tag: [u8; 16],
    /// Header body and authentication, in bytes.
    pub len: usize,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("suite", &self.suite.id)
            .field("data_keys", &self.data_keys.len())
            .field("framed", &self.framed)
            .finish_non_exhaustive()
    }
}

/// Why an ESDK message could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum EsdkError {
    /// Malformed or truncated.
    #[error("malformed AWS Encryption SDK message: {0}")]
    Malformed(&'static str),
    /// Truncated.
    #[error("the AWS Encryption SDK message ends early (truncated)")]
    Truncated,
    /// An unknown algorithm suite or version.
    #[error(
        "AWS Encryption SDK algorithm suite {0:#06x} is unknown (message format versions 1 and 2 have 0x0014 to 0x0378, 0x0478 and 0x0578)"
    )]
    UnknownSuite(u16),
    /// A required encryption-context pair is missing or different.
    #[error("the message's encryption context {found} the required pair {key}={value}")]
    Context {
        /// The key required.
        key: String,
        /// The value required.
        value: String,
        /// `lacks` or `has another value for`.
        found: &'static str,
    },
    /// No key of the right kind was given.
    #[error(
        "the data key is encrypted to {providers}, and no key or KMS that could open it was given"
    )]
    NoKey {
        /// The providers, described.
        providers: String,
    },
    /// Keys were given; none opened a data key.
    #[error(
        "none of the keys given opens a data key of this message (encrypted to {providers}){kms}"
    )]
    WrongKey {
        /// The providers, described.
        providers: String,
        /// What KMS said, if it was asked.
        kms: String,
    },
    /// KMS denied access.
    #[error(transparent)]
    Kms(KmsError),
    /// The key commitment does not match.
    #[error("the key commitment does not match: wrong key or an altered header")]
    Commitment,
    /// The header authentication failed.
    #[error("the header's authentication tag does not match: wrong key or an altered header")]
    HeaderAuth,
    /// A frame failed.
    #[error("frame {frame}: {source}")]
    Frame {
        /// The frame's sequence number (1 for a non-framed body).
        frame: u32,
        /// Why.
        source: GcmError,
    },
    /// A frame out of order.
    #[error("frame {got} where frame {want} belongs (frames reordered, dropped or duplicated)")]
    Sequence {
        /// Expected.
        want: u32,
        /// Found.
        got: u32,
    },
    /// The signature does not verify.
    #[error("the message's ECDSA signature does not verify: the message was altered")]
    Signature,
    /// Bytes after the message.
    #[error("data follows the end of the AWS Encryption SDK message")]
    Trailing,
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl EsdkError {
    /// What the user can give to get past this error.
    pub fn hint(&self) -> Option<crate::Hint> {
        match self {
            EsdkError::NoKey { .. } | EsdkError::WrongKey { .. } => Some(crate::Hint::Key),
            _ => None,
        }
    }

    /// Whether this is a permission problem (KMS access denied).
    pub fn is_permission(&self) -> bool {
        matches!(self, EsdkError::Kms(KmsError::AccessDenied { .. }))
    }
}

/// A cursor over header bytes; `None` means more bytes are needed.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn sized(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn parse_context(kvp: &[u8]) -> Result<BTreeMap<String, String>, EsdkError> {
    let mut map = BTreeMap::new();
    if kvp.is_empty() {
        return Ok(map);
    }
    let mut c = Cursor { bytes: kvp, at: 0 };
    let bad = EsdkError::Malformed("encryption context");
    let count = c.u16().ok_or(EsdkError::Malformed("encryption context"))?;
    for _ in 0..count {
        let k = c
            .sized()
            .ok_or(EsdkError::Malformed("encryption context"))?;
        let v = c
            .sized()
            .ok_or(EsdkError::Malformed("encryption context"))?;
        let (Ok(k), Ok(v)) = (std::str::from_utf8(k), std::str::from_utf8(v)) else {
            return Err(bad);
        };
        if map.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(EsdkError::Malformed(
                "a key twice in the encryption context",
            ));
        }
    }
    if c.at != kvp.len() {
        return Err(bad);
    }
    Ok(map)
}

/// Parses a header from the first bytes of a message: `Ok(None)` when more bytes are
/// needed (at most [`MAX_HEADER`]).
pub fn parse_header(bytes: &[u8]) -> Result<Option<Header>, EsdkError> {
    match parse_header_inner(bytes) {
        Ok(None) if bytes.len() >= MAX_HEADER => {
            Err(EsdkError::Malformed("header larger than 1 MiB"))
        }
        other => other,
    }
}

fn parse_header_inner(bytes: &[u8]) -> Result<Option<Header>, EsdkError> {
    let mut c = Cursor { bytes, at: 0 };
    macro_rules! need {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return Ok(None),
            }
        };
    }
    let version = need!(c.u8());
    if version == 1 && need!(c.u8()) != 0x80 {
        return Err(EsdkError::Malformed("message type is not 0x80"));
    }
    if version != 1 && version != 2 {
        return Err(EsdkError::Malformed("unknown message format version"));
    }
    let id = need!(c.u16());
    let suite = Suite::by_id(id).ok_or(EsdkError::UnknownSuite(id))?;
    if suite.version != version {
        return Err(EsdkError::Malformed(
            "suite of another message format version",
        ));
    }
    let message_id = need!(c.take(if version == 1 { 16 } else { 32 })).to_vec();
    let context_bytes = need!(c.sized()).to_vec();
    let context = parse_context(&context_bytes)?;
    let count = usize::from(need!(c.u16()));
    if count == 0 {
        return Err(EsdkError::Malformed("no encrypted data keys"));
    }
    if count > MAX_DATA_KEYS {
        return Err(EsdkError::Malformed("more than 64 encrypted data keys"));
    }
    let mut data_keys = Vec::with_capacity(count);
    for _ in 0..count {
        let provider_id = need!(c.sized());
        let provider_info = need!(c.sized()).to_vec();
        let encrypted_key = need!(c.sized()).to_vec();
        data_keys.push(DataKeyEntry {
            provider_id: String::from_utf8_lossy(provider_id).into_owned(),
            provider_info,
            encrypted_key,
        });
    }
    let framed = match need!(c.u8()) {
        1 => false,
        2 => true,
        _ => return Err(EsdkError::Malformed("unknown content type")),
    };
    if version == 1 {
        if need!(c.u32()) != 0 {
            return Err(EsdkError::Malformed("reserved bytes are not zero"));
        }
        if need!(c.u8()) != 12 {
            return Err(EsdkError::Malformed("IV length is not 12"));
        }
    }
    let frame_len = need!(c.u32());
    if framed == (frame_len == 0) {
        return Err(EsdkError::Malformed(
            "frame length does not fit the content type",
        ));
    }
    let commitment = if version == 2 {
        need!(c.take(32)).to_vec()
    } else {
        Vec::new()
    };
    let body = bytes[..c.at].to_vec();
    let mut auth_iv = [0u8; 12];
    if version == 1 {
        auth_iv.copy_from_slice(need!(c.take(12)));
    }
    let mut auth_tag = [0u8; 16];
    auth_tag.copy_from_slice(need!(c.take(16)));
    Ok(Some(Header {
        suite,
        message_id,
        context,
        context_bytes,
        data_keys,
        framed,
        frame_len,
        commitment,
        body,
        auth_iv,
        auth_tag,
        len: c.at,
    }))
}

/// The content key, derived and checked against the header.
pub struct ContentKey {
    key: Zeroizing<Vec<u8>>,
    /// The key that opened the data key.
    pub opened_with: String,
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentKey(opened with {})", self.opened_with)
    }
}

fn describe_providers(header: &Header) -> String {
    let mut names: Vec<String> = header
        .data_keys
        .iter()
        .map(|k| {
            if k.provider_id == "aws-kms" {
                format!("KMS key {}", String::from_utf8_lossy(&k.provider_info))
            } else {
                format!("raw key {:?} of {:?}", key_name(k), k.provider_id)
            }
        })
        .take(4)
        .collect();
    if header.data_keys.len() > 4 {
        names.push("…".into());
    }
    names.join(", ")
}

/// A raw AES keyring's provider info: key name ‖ tag length (bits) ‖ IV length ‖ IV.
fn raw_aes_info(info: &[u8]) -> Option<(&[u8], [u8; 12])> {
    let n = info.len().checked_sub(20)?;
    let tail = &info[n..];
    if tail[..4] != 128u32.to_be_bytes() || tail[4..8] != 12u32.to_be_bytes() {
        return None;
    }
    let mut iv = [0u8; 12];
    iv.copy_from_slice(&tail[8..]);
    Some((&info[..n], iv))
}

fn key_name(k: &DataKeyEntry) -> String {
    let name = raw_aes_info(&k.provider_info).map_or(&k.provider_info[..], |(n, _)| n);
    String::from_utf8_lossy(name).chars().take(64).collect()
}

/// Checks the required encryption-context pairs, unwraps a data key (raw AES, raw
/// RSA, KMS), derives the content key, checks the key commitment and the header's
/// authentication tag.
pub async fn open(
    header: &Header,
    keys: &Keyring,
    kms: Option<&dyn Kms>,
    required: &BTreeMap<String, String>,
) -> Result<ContentKey, EsdkError> {
    for (k, v) in required {
        match header.context.get(k) {
            Some(found) if found == v => {}
            found => {
                return Err(EsdkError::Context {
                    key: k.clone(),
                    value: v.clone(),
                    found: if found.is_some() {
                        "has another value for"
                    } else {
                        "lacks"
                    },
                });
            }
        }
    }
    let want = header.suite.key_len;
    let mut tried_any = false;
    let mut kms_said = String::new();
    let mut unwrapped: Option<(Zeroizing<Vec<u8>>, String)> = None;
    for edk in &header.data_keys {
        if edk.provider_id == "aws-kms" {
            let Some(kms) = kms else { continue };
            tried_any = true;
            let key_id = String::from_utf8_lossy(&edk.provider_info).into_owned();
            match kms
                .decrypt(&edk.encrypted_key, &header.context, Some(&key_id))
                .await
            {
                Ok(p) if p.plaintext.len() == want => {
                    unwrapped = Some((p.plaintext, format!("kms:{}", p.key_id.unwrap_or(key_id))));
                    break;
                }
                Ok(_) => {}
                Err(e @ KmsError::AccessDenied { .. }) => return Err(EsdkError::Kms(e)),
                Err(e) => kms_said = format!("; KMS: {e}"),
            }
            continue;
        }
        if let Some((_, iv)) = raw_aes_info(&edk.provider_info)
            && edk.encrypted_key.len() == want + 16
        {
            for aes in &keys.aes {
                tried_any = true;
                let (ct, tag) = edk.encrypted_key.split_at(want);
                let mut buf = Zeroizing::new(ct.to_vec());
                let Ok(mut gcm) = GcmStream::new(aes.key.as_slice(), &iv, &header.context_bytes)
                else {
                    continue;
                };
                gcm.decrypt(&mut buf);
                if gcm.verify(tag).is_ok() {
                    unwrapped = Some((buf, format!("aes:{}", aes.fingerprint)));
                    break;
                }
            }
            if unwrapped.is_some() {
                break;
            }
            continue;
        }
        for rsa in &keys.rsa {
            tried_any = true;
            let ct = &edk.encrypted_key;
            let plain = [
                OaepHash::Sha256,
                OaepHash::Sha1,
                OaepHash::Sha384,
                OaepHash::Sha512,
            ]
            .into_iter()
            .find_map(|h| rsa.decrypt_oaep(h, ct))
            .or_else(|| rsa.decrypt_pkcs1(ct))
            .filter(|p| p.len() == want);
            if let Some(p) = plain {
                unwrapped = Some((p, rsa.short_id()));
                break;
            }
        }
        if unwrapped.is_some() {
            break;
        }
    }
    let Some((data_key, opened_with)) = unwrapped else {
        return Err(if tried_any {
            EsdkError::WrongKey {
                providers: describe_providers(header),
                kms: kms_said,
            }
        } else {
            EsdkError::NoKey {
                providers: describe_providers(header),
            }
        });
    };
    let key = derive(header, &data_key)?;
    let gcm =
        GcmStream::new(&key, &header.auth_iv, &header.body).map_err(|_| EsdkError::HeaderAuth)?;
    gcm.verify(&header.auth_tag)
        .map_err(|_| EsdkError::HeaderAuth)?;
    Ok(ContentKey { key, opened_with })
}

fn derive(header: &Header, data_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, EsdkError> {
    let suite = header.suite;
    let mut key = Zeroizing::new(vec![0u8; suite.key_len]);
    let id = suite.id.to_be_bytes();
    let info = [&id[..], &header.message_id].concat();
    match suite.kdf {
        Kdf::Identity => key.copy_from_slice(data_key),
        Kdf::Sha256 => Hkdf::<Sha256>::new(None, data_key)
            .expand(&info, &mut key)
            .map_err(|_| EsdkError::Malformed("key derivation"))?,
        Kdf::Sha384 => Hkdf::<Sha384>::new(None, data_key)
            .expand(&info, &mut key)
            .map_err(|_| EsdkError::Malformed("key derivation"))?,
        Kdf::Sha512Commit => {
            let hk = Hkdf::<Sha512>::new(Some(&header.message_id), data_key);
            hk.expand(&[&id[..], b"DERIVEKEY"].concat(), &mut key)
                .map_err(|_| EsdkError::Malformed("key derivation"))?;
            let mut commit = Zeroizing::new([0u8; 32]);
            hk.expand(b"COMMITKEY", commit.as_mut_slice())
                .map_err(|_| EsdkError::Malformed("key derivation"))?;
            if !bool::from(commit.as_slice().ct_eq(&header.commitment)) {
                return Err(EsdkError::Commitment);
            }
        }
    }
    Ok(key)
}

/// Hashes what is read, for the signature.
enum SigHash {
    None,
    Sha256(Sha256),
    Sha384(Sha384),
}

struct Hashing<'a> {
    inner: &'a mut dyn BufRead,
    hash: SigHash,
}

impl Hashing<'_> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), EsdkError> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                EsdkError::Truncated
            } else {
                EsdkError::Io(e)
            }
        })?;
        match &mut self.hash {
            SigHash::None => {}
            SigHash::Sha256(h) => h.update(&*buf),
            SigHash::Sha384(h) => h.update(&*buf),
        }
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, EsdkError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }
}

/// The body being read: the input (hashed for the signature), the key, the output.
struct Body<'a> {
    r: Hashing<'a>,
    header: &'a Header,
    key: &'a ContentKey,
    buf: Vec<u8>,
    out: &'a mut dyn Write,
}

impl Body<'_> {
    /// Decrypts one frame (or the single block) of `len` bytes, its IV read, into the
    /// output, and checks its tag.
    fn frame(&mut self, seq: u32, iv: &[u8; 12], label: &[u8], len: u64) -> Result<(), EsdkError> {
        let mut aad = self.header.message_id.clone();
        aad.extend_from_slice(label);
        aad.extend_from_slice(&seq.to_be_bytes());
        aad.extend_from_slice(&len.to_be_bytes());
        let failed = |source| EsdkError::Frame { frame: seq, source };
        let mut gcm = GcmStream::new(&self.key.key, iv, &aad).map_err(failed)?;
        let mut left = len;
        while left > 0 {
            let n = left.min(self.buf.len() as u64) as usize;
            self.r.exact(&mut self.buf[..n])?;
            gcm.decrypt(&mut self.buf[..n]);
            self.out.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        let mut tag = [0u8; 16];
        self.r.exact(&mut tag)?;
        gcm.verify(&tag).map_err(failed)
    }

    fn iv(&mut self) -> Result<[u8; 12], EsdkError> {
        let mut iv = [0u8; 12];
        self.r.exact(&mut iv)?;
        Ok(iv)
    }

    /// Framed content: regular frames in sequence, then the final frame.
    fn framed(&mut self) -> Result<u64, EsdkError> {
        let frame_len = self.header.frame_len;
        let mut written = 0u64;
        let mut seq = 1u32;
        loop {
            let first = self.r.u32()?;
            if first == u32::MAX {
                let got = self.r.u32()?;
                if got != seq {
                    return Err(EsdkError::Sequence { want: seq, got });
                }
                let iv = self.iv()?;
                let len = self.r.u32()?;
                if len > frame_len {
                    return Err(EsdkError::Malformed(
                        "final frame longer than the frame length",
                    ));
                }
                self.frame(
                    seq,
                    &iv,
                    b"AWSKMSEncryptionClient Final Frame",
                    u64::from(len),
                )?;
                return Ok(written + u64::from(len));
            }
            if first != seq {
                return Err(EsdkError::Sequence {
                    want: seq,
                    got: first,
                });
            }
            let iv = self.iv()?;
            self.frame(
                seq,
                &iv,
                b"AWSKMSEncryptionClient Frame",
                u64::from(frame_len),
            )?;
            written += u64::from(frame_len);
            seq = seq
                .checked_add(1)
                .filter(|s| *s != u32::MAX)
                .ok_or(EsdkError::Malformed("too many frames"))?;
        }
    }

    /// Non-framed content: IV, length, content, tag.
    fn single(&mut self) -> Result<u64, EsdkError> {
        let iv = self.iv()?;
        let mut len = [0u8; 8];
        self.r.exact(&mut len)?;
        let len = u64::from_be_bytes(len);
        if len > (1 << 36) - 32 {
            return Err(EsdkError::Malformed("content longer than 64 GiB"));
        }
        self.frame(1, &iv, b"AWSKMSEncryptionClient Single Block", len)?;
        Ok(len)
    }
}

/// Decrypts the message's body (the whole message is read from `reader`, header
/// first) into `out` and checks its signature. The plaintext written is
/// unauthenticated until this returns `Ok`.
pub fn decrypt(
    reader: &mut dyn BufRead,
    header: &Header,
    key: &ContentKey,
    out: &mut dyn Write,
) -> Result<u64, EsdkError> {
    let mut r = Hashing {
        inner: reader,
        hash: match header.suite.curve {
            None => SigHash::None,
            Some(Curve::P256) => SigHash::Sha256(Sha256::new()),
            Some(Curve::P384) => SigHash::Sha384(Sha384::new()),
        },
    };
    let mut seen = vec![0u8; header.len];
    r.exact(&mut seen)?;
    if seen[..header.body.len()] != header.body[..] {
        return Err(EsdkError::Malformed("the header changed while it was read"));
    }
    let mut body = Body {
        r,
        header,
        key,
        buf: vec![0u8; CHUNK],
        out,
    };
    let written = if header.framed {
        body.framed()?
    } else {
        body.single()?
    };
    let mut r = body.r;
    let hash = std::mem::replace(&mut r.hash, SigHash::None);
    if let Some(curve) = header.suite.curve {
        let mut len = [0u8; 2];
        r.exact(&mut len)?;
        let mut sig = vec![0u8; usize::from(u16::from_be_bytes(len))];
        r.exact(&mut sig)?;
        verify_signature(header, curve, hash, &sig)?;
    }
    let mut probe = [0u8; 1];
    if r.inner.read(&mut probe)? != 0 {
        return Err(EsdkError::Trailing);
    }
    Ok(written)
}

fn verify_signature(
    header: &Header,
    curve: Curve,
    hash: SigHash,
    sig: &[u8],
) -> Result<(), EsdkError> {
    use base64::Engine;
    use ecdsa::signature::hazmat::PrehashVerifier;
    let public = header
        .context
        .get(PUBLIC_KEY_CONTEXT)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or(EsdkError::Malformed(
            "a signed suite without its public key in the encryption context",
        ))?;
    let ok = match (curve, hash) {
        (Curve::P256, SigHash::Sha256(h)) => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public)
                .map_err(|_| EsdkError::Signature)?;
            let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| EsdkError::Signature)?;
            key.verify_prehash(&h.finalize(), &sig).is_ok()
        }
        (Curve::P384, SigHash::Sha384(h)) => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&public)
                .map_err(|_| EsdkError::Signature)?;
            let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| EsdkError::Signature)?;
            key.verify_prehash(&h.finalize(), &sig).is_ok()
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(EsdkError::Signature)
    }
}

impl Header {
    /// `esdk v2 (AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384, framed)`.
    pub fn describe(&self) -> String {
        format!(
            "esdk v{} ({}, {})",
            self.suite.version,
            self.suite.describe(),
            if self.framed { "framed" } else { "non-framed" }
        )
    }
}
