//! CMS (RFC 5652) `EnvelopedData` and (RFC 5083/5084) `AuthEnvelopedData`, as
//! `openssl cms -encrypt` writes them for an X.509 recording certificate: read as a
//! stream, in constant memory, at any size.
//!
//! - Encodings ([`armor`]): BER/DER, PEM, S/MIME; definite or indefinite lengths;
//!   encrypted content primitive or in segments (`-stream`).
//! - Recipients: `KeyTransRecipientInfo` with RSA PKCS#1 v1.5 or RSAES-OAEP (SHA-1 or
//!   SHA-256, parameters read from the message), matched to a key by
//!   issuer-and-serial-number or subject key identifier through the certificates given,
//!   or by trying each RSA key when no certificate names one.
//! - Content: AES-128/192/256-GCM (`AuthEnvelopedData`, the tag checked before anything
//!   is released) and AES-128/192/256-CBC (`EnvelopedData`: no integrity check, so
//!   refused unless unauthenticated containers are explicitly allowed).

pub mod armor;
pub mod ber;

use std::io::{BufRead, Read, Write};

use zeroize::Zeroizing;

use crate::cbc::{CbcDecryptor, CbcError, FinishError};
use crate::gcm::{GcmError, GcmStream};
use crate::keys::{Keyring, RsaKey};
use crate::rsa_native::OaepHash;
pub use armor::Encoding;
use ber::{BerError, Counted, Header, Len, StreamError, Tlv, tag};

/// The most bytes of one header element (the recipients, the originator's
/// certificates) read whole.
pub const MAX_HEADER_ELEMENT: u64 = 4 << 20;
/// The most recipients read from one message (as for OpenPGP): trying each key on each
/// recipient costs a private-key operation apiece.
pub const MAX_RECIPIENTS: usize = 64;
/// Bytes of content decrypted per step.
const CHUNK: usize = 64 * 1024;

/// Which CMS content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `EnvelopedData`: content encrypted, not authenticated (CBC).
    Enveloped,
    /// `AuthEnvelopedData`: content encrypted and authenticated (GCM).
    AuthEnveloped,
}

/// How the content is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// AES-CBC with a key of this many bytes.
    Cbc(usize),
    /// AES-GCM with a key of this many bytes.
    Gcm(usize),
}

impl Cipher {
    fn key_len(&self) -> usize {
        match self {
            Cipher::Cbc(n) | Cipher::Gcm(n) => *n,
        }
    }

    fn name(&self) -> String {
        match self {
            Cipher::Cbc(n) => format!("AES-{}-CBC", n * 8),
            Cipher::Gcm(n) => format!("AES-{}-GCM", n * 8),
        }
    }
}

/// How a recipient's copy of the content key is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// RSAES-PKCS1-v1_5 (`rsaEncryption`).
    RsaPkcs1,
    /// RSAES-OAEP with this hash (and MGF1 with the same hash, an empty label).
    RsaOaep(OaepHash),
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::RsaPkcs1 => "RSA PKCS#1 v1.5",
            Transport::RsaOaep(OaepHash::Sha1) => "RSA-OAEP-SHA1",
            Transport::RsaOaep(OaepHash::Sha256) => "RSA-OAEP-SHA256",
            Transport::RsaOaep(OaepHash::Sha384) => "RSA-OAEP-SHA384",
            Transport::RsaOaep(OaepHash::Sha512) => "RSA-OAEP-SHA512",
        }
    }
}

/// How a recipient is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientId {
    /// A certificate's issuer (the DER of its Name) and serial number (INTEGER bytes).
    IssuerSerial {
        /// The issuer Name, DER.
        issuer: Vec<u8>,
        /// The serial number's content bytes.
        serial: Vec<u8>,
    },
    /// A subject key identifier.
    KeyId(Vec<u8>),
}

impl std::fmt::Display for RecipientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecipientId::IssuerSerial { issuer, serial } => write!(
                f,
                "issuer {} serial {}",
                crate::x509::name_text(issuer),
                hex::encode_upper(serial)
            ),
            RecipientId::KeyId(id) => write!(f, "subject key identifier {}", hex::encode_upper(id)),
        }
    }
}

/// One `KeyTransRecipientInfo`.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// Who it is for.
    pub id: RecipientId,
    /// How its key is encrypted; `Err` names an algorithm gcrec does not read.
    pub transport: Result<Transport, String>,
    /// The encrypted content key.
    pub encrypted_key: Vec<u8>,
}

/// Why a CMS message could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    /// A CMS message, but not an encrypted one.
    #[error(
        "this CMS message is {0}, not encrypted data: gcrec opens EnvelopedData and AuthEnvelopedData"
    )]
    NotEncrypted(String),
    /// MIME headers that do not announce `application/pkcs7-mime`.
    #[error("MIME headers with Content-Type {0:?}, not application/pkcs7-mime")]
    NotSmime(String),
    /// Malformed BER.
    #[error("malformed CMS message: {0}")]
    Ber(#[from] BerError),
    /// Well-formed BER, but not a valid CMS structure.
    #[error("malformed CMS message: {0}")]
    Malformed(&'static str),
    /// A content cipher gcrec does not read.
    #[error(
        "the content is encrypted with {0}, which gcrec does not read (it reads AES-CBC and AES-GCM)"
    )]
    UnsupportedCipher(String),
    /// Authenticated attributes, which GCM needs before the content.
    #[error(
        "AuthEnvelopedData with authenticated attributes is not supported (their bytes authenticate the content but follow it)"
    )]
    AuthAttributes,
    /// The content is not in the message.
    #[error("the message carries no encrypted content (detached content is not supported)")]
    Detached,
    /// No recipient gcrec can use at all.
    #[error("no recipient of this message uses RSA key transport (it has: {0})")]
    NoUsableRecipient(String),
    /// No RSA key was given.
    #[error(
        "the content key is encrypted to {recipients}; give the RSA private key (and its certificate, or a PKCS#12 bundle)"
    )]
    NoKey {
        /// The recipients, described.
        recipients: String,
    },
    /// Keys were given, none opened it.
    #[error("{}", wrong_key(.matched, *.tried, .recipients))]
    WrongKey {
        /// Whether a certificate given named a recipient (so its key was the one tried).
        matched: bool,
        /// How many RSA keys were tried.
        tried: usize,
        /// The recipients, described.
        recipients: String,
    },
    /// CBC and unauthenticated containers are not allowed.
    #[error(
        "this is CMS EnvelopedData with {0}, which carries no integrity check: refused unless unauthenticated containers are explicitly allowed"
    )]
    UnauthenticatedRefused(String),
    /// CBC content failed.
    #[error(transparent)]
    Cbc(#[from] CbcError),
    /// GCM content failed (the tag).
    #[error(transparent)]
    Gcm(#[from] GcmError),
    /// Bytes after the message.
    #[error("data follows the end of the CMS message")]
    Trailing,
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(std::io::Error),
}

fn wrong_key(matched: &bool, tried: usize, recipients: &str) -> String {
    if *matched {
        format!(
            "the key of the certificate that names a recipient ({recipients}) does not decrypt its content key: the key does not belong to that certificate, or the message was altered"
        )
    } else {
        format!(
            "no certificate given names a recipient ({recipients}), and none of the {tried} RSA key(s) given, each tried in turn, decrypts the content key"
        )
    }
}

impl From<StreamError> for CmsError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Ber(b) => CmsError::Ber(b),
            StreamError::Io(io) => CmsError::Io(io),
        }
    }
}

impl From<FinishError> for CmsError {
    fn from(e: FinishError) -> Self {
        match e {
            FinishError::Cbc(c) => CmsError::Cbc(c),
            FinishError::Io(io) => CmsError::Io(io),
        }
    }
}

impl CmsError {
    /// What the user can give to get past this error.
    pub fn hint(&self) -> Option<crate::Hint> {
        match self {
            CmsError::NoKey { .. } | CmsError::WrongKey { .. } => Some(crate::Hint::Key),
            CmsError::UnauthenticatedRefused(_) => Some(crate::Hint::AllowUnauthenticated),
            _ => None,
        }
    }
}

/// What decrypting a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// `cms auth-enveloped-data (AES-256-GCM, RSA-OAEP-SHA256, pem)` and the like.
    pub description: String,
    /// The key that opened it (`rsa:` and the key's fingerprint prefix).
    pub opened_with: String,
    /// Whether the content was authenticated (GCM) rather than only decrypted (CBC).
    pub authenticated: bool,
    /// Plaintext bytes written.
    pub plaintext_bytes: u64,
}

/// A CMS message's parts before its content.
struct Preamble {
    kind: Kind,
    recipients: Vec<Recipient>,
    other_recipients: Vec<&'static str>,
}

const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_OAEP: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_AES_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01];

/// Content bytes of an OID element.
fn oid<'a>(t: &Tlv<'a>) -> Result<&'a [u8], CmsError> {
    if t.header.is(tag::OID) && !t.header.constructed {
        Ok(t.content)
    } else {
        Err(CmsError::Malformed("expected an object identifier"))
    }
}

fn expect(h: &Header, universal: u32, what: &'static str) -> Result<(), CmsError> {
    if h.is(universal) {
        Ok(())
    } else {
        Err(CmsError::Malformed(what))
    }
}

/// A known name for an OID, for messages.
fn oid_name(content: &[u8]) -> String {
    let dotted = ber::oid_string(content);
    let name = match dotted.as_str() {
        "1.2.840.113549.1.7.1" => "data",
        "1.2.840.113549.1.7.2" => "signedData",
        "1.2.840.113549.1.7.5" => "digestedData",
        "1.2.840.113549.1.7.6" => "encryptedData (password-based, no recipients)",
        "1.2.840.113549.1.9.16.1.2" => "authData",
        "1.2.840.113549.1.9.16.1.9" => "compressedData",
        "1.2.840.113549.3.7" => "3DES-CBC",
        "1.2.840.113549.3.2" => "RC2-CBC",
        "1.3.14.3.2.7" => "DES-CBC",
        "1.2.840.113549.1.9.16.3.18" => "ChaCha20-Poly1305",
        "2.16.840.1.101.3.4.1.7" | "2.16.840.1.101.3.4.1.27" | "2.16.840.1.101.3.4.1.47" => {
            "AES-CCM"
        }
        _ => "",
    };
    if name.is_empty() {
        dotted
    } else {
        format!("{name} ({dotted})")
    }
}

/// The RSAES-OAEP parameters: the hash (MGF1 must use the same one, the label must be
/// empty).
fn oaep_params<'a>(params: Option<&Tlv<'a>>) -> Result<OaepHash, String> {
    fn hash_of<'a>(alg: &Tlv<'a>) -> Result<&'a [u8], String> {
        let c = alg.children().map_err(|e| e.to_string())?;
        c.first()
            .and_then(|t| oid(t).ok())
            .ok_or_else(|| "malformed OAEP parameters".to_owned())
    }
    let mut hash = OID_SHA1;
    let mut mgf_hash = OID_SHA1;
    if let Some(p) = params.filter(|p| !p.header.is(tag::NULL)) {
        for field in p.children().map_err(|e| e.to_string())? {
            let inner = field
                .children()
                .map_err(|e| e.to_string())?
                .into_iter()
                .next()
                .ok_or("malformed OAEP parameters")?;
            match field.header.tag {
                0 => hash = hash_of(&inner)?,
                1 => {
                    let parts = inner.children().map_err(|e| e.to_string())?;
                    if parts.first().and_then(|t| oid(t).ok()) != Some(OID_MGF1) {
                        return Err("OAEP with a mask generation function other than MGF1".into());
                    }
                    mgf_hash = parts
                        .get(1)
                        .ok_or("MGF1 without a hash")
                        .and_then(|t| hash_of(t).map_err(|_| "malformed MGF1 hash"))?;
                }
                2 => {
                    let parts = inner.children().map_err(|e| e.to_string())?;
                    let label = parts.get(1).map(|t| t.content).unwrap_or_default();
                    if !label.is_empty() {
                        return Err("OAEP with a non-empty label".into());
                    }
                }
                _ => return Err("malformed OAEP parameters".into()),
            }
        }
    }
    if hash != mgf_hash {
        return Err(format!(
            "OAEP with {} and MGF1 with {}",
            oid_name(hash),
            oid_name(mgf_hash)
        ));
    }
    match hash {
        OID_SHA1 => Ok(OaepHash::Sha1),
        OID_SHA256 => Ok(OaepHash::Sha256),
        other => Err(format!("OAEP with {}", oid_name(other))),
    }
}

fn parse_recipients(set: &Tlv<'_>) -> Result<(Vec<Recipient>, Vec<&'static str>), CmsError> {
    let mut recipients = Vec::new();
    let mut others = Vec::new();
    for info in set.children()? {
        if recipients.len() + others.len() >= MAX_RECIPIENTS {
            return Err(CmsError::Malformed("too many recipients"));
        }
        if !info.header.is(tag::SEQUENCE) {
            others.push(match (info.header.class, info.header.tag) {
                (ber::Class::Context, 1) => "key agreement",
                (ber::Class::Context, 2) => "key encryption key (KEK)",
                (ber::Class::Context, 3) => "password",
                _ => "other",
            });
            continue;
        }
        let fields = info.children()?;
        let [_version, rid, alg, key] = fields.as_slice() else {
            return Err(CmsError::Malformed(
                "a KeyTransRecipientInfo without four fields",
            ));
        };
        let id = if rid.header.is(tag::SEQUENCE) {
            let parts = rid.children()?;
            let [issuer, serial] = parts.as_slice() else {
                return Err(CmsError::Malformed("malformed issuerAndSerialNumber"));
            };
            expect(
                &serial.header,
                tag::INTEGER,
                "a serial number that is not an INTEGER",
            )?;
            RecipientId::IssuerSerial {
                issuer: issuer.raw.to_vec(),
                serial: serial.content.to_vec(),
            }
        } else if rid.header.is_context(0) {
            RecipientId::KeyId(rid.octets()?)
        } else {
            return Err(CmsError::Malformed("unknown recipient identifier"));
        };
        let alg_parts = alg.children()?;
        let alg_oid = alg_parts
            .first()
            .ok_or(CmsError::Malformed("empty key encryption algorithm"))
            .and_then(oid)?;
        let transport = match alg_oid {
            OID_RSA => Ok(Transport::RsaPkcs1),
            OID_OAEP => oaep_params(alg_parts.get(1)).map(Transport::RsaOaep),
            other => Err(oid_name(other)),
        };
        expect(
            &key.header,
            tag::OCTET_STRING,
            "an encrypted key that is not an OCTET STRING",
        )?;
        recipients.push(Recipient {
            id,
            transport,
            encrypted_key: key.octets()?,
        });
    }
    Ok((recipients, others))
}

/// The content algorithm and its parameters.
struct ContentAlg {
    cipher: Cipher,
    iv: Vec<u8>,
    tag_len: usize,
}

fn content_alg(alg: &Tlv<'_>) -> Result<ContentAlg, CmsError> {
    let parts = alg.children()?;
    let id = parts
        .first()
        .ok_or(CmsError::Malformed("empty content encryption algorithm"))
        .and_then(oid)?;
    let unsupported = || CmsError::UnsupportedCipher(oid_name(id));
    let Some(&last) = id.strip_prefix(OID_AES_PREFIX).and_then(|r| match r {
        [b] => Some(b),
        _ => None,
    }) else {
        return Err(unsupported());
    };
    let params = parts.get(1);
    let cipher = match last {
        2 => Cipher::Cbc(16),
        22 => Cipher::Cbc(24),
        42 => Cipher::Cbc(32),
        6 => Cipher::Gcm(16),
        26 => Cipher::Gcm(24),
        46 => Cipher::Gcm(32),
        _ => return Err(unsupported()),
    };
    match cipher {
        Cipher::Cbc(_) => {
            let iv = params
                .filter(|p| p.header.is(tag::OCTET_STRING))
                .ok_or(CmsError::Malformed("AES-CBC without an IV"))?
                .octets()?;
            if iv.len() != 16 {
                return Err(CmsError::Malformed("an AES-CBC IV that is not 16 bytes"));
            }
            Ok(ContentAlg {
                cipher,
                iv,
                tag_len: 0,
            })
        }
        Cipher::Gcm(_) => {
            let p = params
                .filter(|p| p.header.is(tag::SEQUENCE))
                .ok_or(CmsError::Malformed("AES-GCM without parameters"))?
                .children()?;
            let nonce = p
                .first()
                .filter(|t| t.header.is(tag::OCTET_STRING))
                .ok_or(CmsError::Malformed("AES-GCM without a nonce"))?
                .octets()?;
            if nonce.len() != 12 {
                return Err(CmsError::UnsupportedCipher(format!(
                    "AES-GCM with a {}-byte nonce (only 12-byte nonces are read)",
                    nonce.len()
                )));
            }
            let tag_len = match p.get(1) {
                None => 12,
                Some(t) if t.header.is(tag::INTEGER) && t.content.len() == 1 => {
                    usize::from(t.content[0])
                }
                Some(_) => return Err(CmsError::Malformed("malformed AES-GCM tag length")),
            };
            if !(12..=16).contains(&tag_len) {
                return Err(CmsError::Malformed(
                    "an AES-GCM tag length outside 12 to 16",
                ));
            }
            Ok(ContentAlg {
                cipher,
                iv: nonce,
                tag_len,
            })
        }
    }
}

fn unwrap_with(rec: &Recipient, key: &RsaKey) -> Option<Zeroizing<Vec<u8>>> {
    match rec.transport {
        Ok(Transport::RsaPkcs1) => key.decrypt_pkcs1(&rec.encrypted_key),
        Ok(Transport::RsaOaep(hash)) => key.decrypt_oaep(hash, &rec.encrypted_key),
        Err(_) => None,
    }
}

/// Whether `key` is the one a recipient names, through a certificate given (issuer and
/// serial, or its subject key identifier) or the key's own identifier.
fn names(rec: &Recipient, key: &RsaKey, keys: &Keyring) -> bool {
    match &rec.id {
        RecipientId::IssuerSerial { issuer, serial } => keys.certificates.iter().any(|c| {
            c.issuer_der == *issuer && c.serial == *serial && c.spki_sha256 == key.fingerprint
        }),
        RecipientId::KeyId(id) => {
            key.ski == *id
                || keys.certificates.iter().any(|c| {
                    c.ski.as_deref() == Some(id.as_slice()) && c.spki_sha256 == key.fingerprint
                })
        }
    }
}

/// Finds the recipient and key that decrypt the content key.
fn open_content_key(
    preamble: &Preamble,
    keys: &Keyring,
    key_len: usize,
) -> Result<(Zeroizing<Vec<u8>>, &'static str, String), CmsError> {
    let usable: Vec<&Recipient> = preamble
        .recipients
        .iter()
        .filter(|r| r.transport.is_ok())
        .collect();
    if usable.is_empty() {
        let mut kinds: Vec<String> = preamble
            .recipients
            .iter()
            .filter_map(|r| r.transport.as_ref().err())
            .map(|name| format!("key transport with {name}"))
            .collect();
        kinds.extend(
            preamble
                .other_recipients
                .iter()
                .map(|k| format!("{k} recipients")),
        );
        return Err(CmsError::NoUsableRecipient(if kinds.is_empty() {
            "no recipients".into()
        } else {
            kinds.join(", ")
        }));
    }
    let described = usable
        .iter()
        .take(4)
        .map(|r| r.id.to_string())
        .collect::<Vec<_>>()
        .join("; ")
        + if usable.len() > 4 { "; …" } else { "" };
    if keys.rsa.is_empty() {
        return Err(CmsError::NoKey {
            recipients: described,
        });
    }
    let fits = |cek: &Zeroizing<Vec<u8>>| cek.len() == key_len;
    let mut named = false;
    for rec in &usable {
        for key in keys.rsa.iter().filter(|k| names(rec, k, keys)) {
            named = true;
            if let Some(cek) = unwrap_with(rec, key).filter(fits) {
                return Ok((cek, rec.transport_name(), key.short_id()));
            }
        }
    }
    if !named {
        for rec in &usable {
            for key in &keys.rsa {
                if let Some(cek) = unwrap_with(rec, key).filter(fits) {
                    return Ok((cek, rec.transport_name(), key.short_id()));
                }
            }
        }
    }
    Err(CmsError::WrongKey {
        matched: named,
        tried: keys.rsa.len(),
        recipients: described,
    })
}

impl Recipient {
    fn transport_name(&self) -> &'static str {
        self.transport.as_ref().map(Transport::name).unwrap_or("?")
    }
}

/// Where a constructed element ends: at a position, or at an end-of-contents marker.
#[derive(Debug, Clone, Copy)]
enum End {
    At(u64),
    Marker,
}

fn end_of<R: Read>(r: &Counted<R>, h: &Header) -> End {
    match h.len {
        Len::Definite(n) => End::At(r.pos.saturating_add(n)),
        Len::Indefinite => End::Marker,
    }
}

/// Skips whatever optional elements remain in a constructed element and consumes its
/// end.
fn close<R: Read>(r: &mut Counted<R>, end: End) -> Result<(), CmsError> {
    match end {
        End::At(at) => {
            while r.pos < at {
                r.element(MAX_HEADER_ELEMENT)?;
            }
            if r.pos != at {
                return Err(CmsError::Malformed("an element overruns its container"));
            }
        }
        End::Marker => loop {
            let (h, _) = r.expect_header()?;
            if h.is_end_of_contents() {
                break;
            }
            let mut sink = Vec::new();
            r.rest_of(&h, &mut sink, MAX_HEADER_ELEMENT, 0)?;
        },
    }
    Ok(())
}

/// Reads the elements before the content: the content type, the recipients.
fn preamble<R: Read>(r: &mut Counted<R>) -> Result<(Preamble, [End; 3]), CmsError> {
    let (outer, _) = r.expect_header()?;
    if !(outer.is(tag::SEQUENCE) && outer.constructed) {
        return Err(CmsError::Malformed("not a ContentInfo SEQUENCE"));
    }
    let outer_end = end_of(r, &outer);
    let (_, raw) = r.element(256)?;
    let content_type = oid(&Tlv::parse(&raw)?.0)?;
    let kind = match content_type {
        armor::OID_ENVELOPED => Kind::Enveloped,
        armor::OID_AUTH_ENVELOPED => Kind::AuthEnveloped,
        other => return Err(CmsError::NotEncrypted(oid_name(other))),
    };
    let (explicit, _) = r.expect_header()?;
    if !(explicit.is_context(0) && explicit.constructed) {
        return Err(CmsError::Malformed("ContentInfo without its [0] content"));
    }
    let explicit_end = end_of(r, &explicit);
    let (data, _) = r.expect_header()?;
    if !(data.is(tag::SEQUENCE) && data.constructed) {
        return Err(CmsError::Malformed("the enveloped data is not a SEQUENCE"));
    }
    let data_end = end_of(r, &data);
    let (version, _) = r.element(16)?;
    expect(&version, tag::INTEGER, "a version that is not an INTEGER")?;
    let (mut h, mut raw) = r.element(MAX_HEADER_ELEMENT)?;
    if h.is_context(0) {
        // originatorInfo: certificates and CRLs of the originator, not needed here.
        (h, raw) = r.element(MAX_HEADER_ELEMENT)?;
    }
    if !(h.is(tag::SET) && h.constructed) {
        return Err(CmsError::Malformed("no recipientInfos SET"));
    }
    let (set, _) = Tlv::parse(&raw)?;
    let (recipients, other_recipients) = parse_recipients(&set)?;
    Ok((
        Preamble {
            kind,
            recipients,
            other_recipients,
        },
        [data_end, explicit_end, outer_end],
    ))
}

/// The content decryptor.
enum Content {
    Cbc(CbcDecryptor),
    Gcm(GcmStream),
}

/// Streams the encrypted content (primitive, or constructed of OCTET STRING segments)
/// through `each`.
fn stream_content<R: Read>(
    r: &mut Counted<R>,
    h: &Header,
    buf: &mut [u8],
    each: &mut dyn FnMut(&mut [u8]) -> Result<(), CmsError>,
    depth: u32,
) -> Result<(), CmsError> {
    if depth > 8 {
        return Err(CmsError::Malformed("content segments nested too deeply"));
    }
    if !h.constructed {
        let Len::Definite(mut left) = h.len else {
            return Err(BerError::Malformed("indefinite primitive").into());
        };
        while left > 0 {
            let n = (left.min(buf.len() as u64)) as usize;
            r.exact(&mut buf[..n])?;
            each(&mut buf[..n])?;
            left -= n as u64;
        }
        return Ok(());
    }
    let end = end_of(r, h);
    loop {
        if let End::At(at) = end
            && r.pos >= at
        {
            if r.pos != at {
                return Err(CmsError::Malformed(
                    "a content segment overruns its container",
                ));
            }
            return Ok(());
        }
        let (seg, _) = r.expect_header()?;
        if seg.is_end_of_contents() {
            return match end {
                End::Marker => Ok(()),
                End::At(_) => Err(CmsError::Malformed("an end marker inside definite content")),
            };
        }
        if !seg.is(tag::OCTET_STRING) {
            return Err(CmsError::Malformed(
                "a content segment that is not an OCTET STRING",
            ));
        }
        stream_content(r, &seg, buf, each, depth + 1)?;
    }
}

/// Decrypts a CMS message from `reader` into `out`. The plaintext written is
/// unauthenticated until this returns `Ok` — and for CBC content, even then; CBC is
/// refused unless `allow_unauthenticated`.
pub fn decrypt(
    reader: &mut dyn BufRead,
    encoding: Encoding,
    keys: &Keyring,
    allow_unauthenticated: bool,
    out: &mut dyn Write,
) -> Result<Opened, CmsError> {
    let body = armor::open(reader, encoding)?;
    let mut r = Counted::new(body);
    let (preamble, ends) = preamble(&mut r)?;
    let (eci, _) = r.expect_header()?;
    if !(eci.is(tag::SEQUENCE) && eci.constructed) {
        return Err(CmsError::Malformed("no EncryptedContentInfo SEQUENCE"));
    }
    let eci_end = end_of(&r, &eci);
    let (_, raw) = r.element(256)?;
    let inner_type = oid(&Tlv::parse(&raw)?.0)?;
    let (_, raw) = r.element(4096)?;
    let alg = content_alg(&Tlv::parse(&raw)?.0)?;
    match (preamble.kind, alg.cipher) {
        (Kind::Enveloped, Cipher::Gcm(_)) => {
            return Err(CmsError::Malformed(
                "AES-GCM in EnvelopedData, which has no place for its tag",
            ));
        }
        (Kind::AuthEnveloped, Cipher::Cbc(_)) => {
            return Err(CmsError::Malformed("AES-CBC in AuthEnvelopedData"));
        }
        (Kind::Enveloped, Cipher::Cbc(_)) if !allow_unauthenticated => {
            return Err(CmsError::UnauthenticatedRefused(alg.cipher.name()));
        }
        _ => {}
    }
    let (cek, transport, opened_with) = open_content_key(&preamble, keys, alg.cipher.key_len())?;
    let (content_header, _) = r.expect_header()?;
    if !content_header.is_context(0) {
        return Err(CmsError::Detached);
    }
    let mut content = match alg.cipher {
        Cipher::Cbc(_) => Content::Cbc(CbcDecryptor::new(&cek, &alg.iv)?),
        Cipher::Gcm(_) => {
            let mut nonce = [0u8; 12];
            nonce.copy_from_slice(&alg.iv);
            Content::Gcm(GcmStream::new(&cek, &nonce, b"")?)
        }
    };
    drop(cek);
    let mut written = 0u64;
    let mut buf = vec![0u8; CHUNK];
    stream_content(
        &mut r,
        &content_header,
        &mut buf,
        &mut |chunk: &mut [u8]| {
            match &mut content {
                Content::Cbc(c) => c.update(chunk, out).map_err(CmsError::Io)?,
                Content::Gcm(g) => {
                    g.decrypt(chunk);
                    out.write_all(chunk).map_err(CmsError::Io)?;
                    written += chunk.len() as u64;
                }
            }
            Ok(())
        },
        0,
    )?;
    close(&mut r, eci_end)?;
    let tag = if preamble.kind == Kind::AuthEnveloped {
        let (h, raw) = r.element(4096)?;
        if h.is_context(1) {
            return Err(CmsError::AuthAttributes);
        }
        expect(&h, tag::OCTET_STRING, "AuthEnvelopedData without its MAC")?;
        Some(Tlv::parse(&raw)?.0.octets()?)
    } else {
        None
    };
    for end in ends {
        close(&mut r, end)?;
    }
    if r.some(&mut [0u8; 1])? != 0 {
        return Err(CmsError::Trailing);
    }
    let plaintext_bytes = match content {
        Content::Cbc(c) => c.finish(out)?,
        Content::Gcm(g) => {
            let tag = tag.ok_or(CmsError::Malformed("no MAC"))?;
            if tag.len() != alg.tag_len {
                return Err(CmsError::Malformed(
                    "a MAC of another length than the parameters say",
                ));
            }
            g.verify(&tag)?;
            written
        }
    };
    let kind = match preamble.kind {
        Kind::Enveloped => "enveloped-data",
        Kind::AuthEnveloped => "auth-enveloped-data",
    };
    let inner = if inner_type == OID_DATA {
        String::new()
    } else {
        format!(", content type {}", oid_name(inner_type))
    };
    Ok(Opened {
        description: format!(
            "cms {kind} ({}, {transport}, {}{inner})",
            alg.cipher.name(),
            encoding.as_str()
        ),
        opened_with,
        authenticated: preamble.kind == Kind::AuthEnveloped,
        plaintext_bytes,
    })
}
