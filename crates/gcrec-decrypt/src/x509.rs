//! X.509 certificates (which name a CMS recipient) and PKCS#12 bundles (a key with its
//! certificate, passphrase-protected), parsed with RustCrypto's `x509-cert` and
//! `pkcs12` types.
//!
//! PKCS#12: the MAC (HMAC with SHA-1/256/384/512 and the RFC 7292 key derivation) is
//! checked before anything is decrypted; bags encrypted with PBES2 (what OpenSSL 3
//! writes: PBKDF2 and AES) or with the legacy PKCS#12 PBEs — 3DES for keys, 40-bit RC2
//! for certificates, as OpenSSL's `-legacy` and older Windows exports write — are read.

use der::asn1::OctetString;
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A certificate's identity, for matching CMS recipients and for `keys inspect`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Certificate {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial number, hex.
    pub serial_hex: String,
    /// Subject key identifier, hex, when the certificate has one.
    pub ski_hex: Option<String>,
    /// Validity start, RFC 3339-like as the certificate has it.
    pub not_before: String,
    /// Validity end.
    pub not_after: String,
    /// The public key's algorithm and size, e.g. `RSA 3072`.
    pub key: String,
    /// SHA-256 of the public key (SPKI DER), hex: equals the `rsa` fingerprint of its
    /// private key.
    pub spki_sha256: String,
    /// The issuer Name, DER (compared with a recipient's issuer).
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
    /// The serial number's content bytes.
    #[serde(skip)]
    pub serial: Vec<u8>,
    /// The subject key identifier's bytes.
    #[serde(skip)]
    pub ski: Option<Vec<u8>>,
}

/// Why a certificate or PKCS#12 bundle could not be read. Never quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    /// Not a certificate.
    #[error("invalid X.509 certificate: {0}")]
    Certificate(String),
    /// Not a PKCS#12 bundle, or one gcrec does not read.
    #[error("PKCS#12: {0}")]
    Pkcs12(String),
    /// The MAC does not verify: the passphrase is wrong (or the file altered).
    #[error("PKCS#12: wrong passphrase (the integrity MAC does not verify)")]
    WrongPassphrase,
}

/// An X.509 Name's DER shown as RFC 4514 text (hex when it does not parse).
pub fn name_text(der: &[u8]) -> String {
    x509_cert::name::Name::from_der(der)
        .map(|n| n.to_string())
        .unwrap_or_else(|_| format!("(name {})", hex::encode(der)))
}

/// Reads a DER certificate.
pub fn certificate(der: &[u8]) -> Result<Certificate, X509Error> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| X509Error::Certificate(crate::parser_error(&e)))?;
    let tbs = &cert.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| X509Error::Certificate(crate::parser_error(&e)))?;
    let ski = tbs.extensions.iter().flatten().find_map(|ext| {
        (ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
            .then(|| OctetString::from_der(ext.extn_value.as_bytes()).ok())
            .flatten()
            .map(|o| o.as_bytes().to_vec())
    });
    let key = match tbs
        .subject_public_key_info
        .algorithm
        .oid
        .to_string()
        .as_str()
    {
        "1.2.840.113549.1.1.1" => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::traits::PublicKeyParts;
            tbs.subject_public_key_info
                .subject_public_key
                .as_bytes()
                .and_then(|b| rsa::RsaPublicKey::from_pkcs1_der(b).ok())
                .map(|k| format!("RSA {}", k.size() * 8))
                .unwrap_or_else(|| "RSA".into())
        }
        "1.2.840.10045.2.1" => "EC".into(),
        other => other.to_owned(),
    };
    Ok(Certificate {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        serial_hex: hex::encode_upper(tbs.serial_number.as_bytes()),
        ski_hex: ski.as_ref().map(hex::encode_upper),
        not_before: tbs.validity.not_before.to_string(),
        not_after: tbs.validity.not_after.to_string(),
        key,
        spki_sha256: hex::encode(Sha256::digest(&spki)),
        issuer_der: tbs
            .issuer
            .to_der()
            .map_err(|e| X509Error::Certificate(crate::parser_error(&e)))?,
        serial: tbs.serial_number.as_bytes().to_vec(),
        ski,
    })
}

/// Whether DER bytes look like a PKCS#12 PFX (version 3, then a ContentInfo).
pub fn is_pkcs12(der: &[u8]) -> bool {
    pkcs12::pfx::Pfx::from_der(der).is_ok()
}

/// What a PKCS#12 bundle holds, unlocked.
pub struct Pkcs12Contents {
    /// Private keys, as PKCS#8 DER.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// Certificates.
    pub certificates: Vec<Certificate>,
}

const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_PBES2: &str = "1.2.840.113549.1.5.13";
const OID_PBE_SHA1_3DES: &str = "1.2.840.113549.1.12.1.3";
const OID_PBE_SHA1_RC2_128: &str = "1.2.840.113549.1.12.1.5";
const OID_PBE_SHA1_RC2_40: &str = "1.2.840.113549.1.12.1.6";

fn p12err(e: impl std::fmt::Display) -> X509Error {
    X509Error::Pkcs12(crate::parser_error(&e))
}

fn mac_ok(pfx: &pkcs12::pfx::Pfx, data: &[u8], password: &str) -> Result<(), X509Error> {
    use hmac::{Hmac, Mac};
    use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
    let Some(mac) = &pfx.mac_data else {
        return Ok(());
    };
    let salt = mac.mac_salt.as_bytes();
    let rounds = mac.iterations;
    if !(1..=10_000_000).contains(&rounds) {
        return Err(X509Error::Pkcs12("MAC iteration count out of range".into()));
    }
    macro_rules! check {
        ($d:ty, $len:expr) => {{
            let key = Zeroizing::new(
                derive_key_utf8::<$d>(password, salt, Pkcs12KeyType::Mac, rounds, $len)
                    .map_err(p12err)?,
            );
            let mut m = <Hmac<$d> as Mac>::new_from_slice(&key).map_err(p12err)?;
            m.update(data);
            m.verify_slice(mac.mac.digest.as_bytes())
                .map_err(|_| X509Error::WrongPassphrase)
        }};
    }
    match mac.mac.algorithm.oid.to_string().as_str() {
        "1.3.14.3.2.26" => check!(sha1::Sha1, 20),
        "2.16.840.1.101.3.4.2.1" => check!(Sha256, 32),
        "2.16.840.1.101.3.4.2.2" => check!(sha2::Sha384, 48),
        "2.16.840.1.101.3.4.2.3" => check!(sha2::Sha512, 64),
        other => Err(X509Error::Pkcs12(format!(
            "MAC with digest {other} is not supported"
        ))),
    }
}

/// Decrypts a PKCS#12 PBE-encrypted blob.
fn pbe_decrypt(
    alg: &spki::AlgorithmIdentifierOwned,
    data: &[u8],
    password: &str,
) -> Result<Zeroizing<Vec<u8>>, X509Error> {
    match alg.oid.to_string().as_str() {
        OID_PBES2 => {
            let der = alg.to_der().map_err(p12err)?;
            let scheme = pkcs5::EncryptionScheme::from_der(&der).map_err(p12err)?;
            scheme
                .decrypt(password, data)
                .map(Zeroizing::new)
                .map_err(|_| X509Error::WrongPassphrase)
        }
        oid @ (OID_PBE_SHA1_3DES | OID_PBE_SHA1_RC2_128 | OID_PBE_SHA1_RC2_40) => {
            use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
            use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
            let params = alg
                .parameters
                .as_ref()
                .ok_or_else(|| X509Error::Pkcs12("PBE without parameters".into()))?
                .decode_as::<pkcs12::pbe_params::Pkcs12PbeParams>()
                .map_err(p12err)?;
            if !(1..=10_000_000).contains(&params.iterations) {
                return Err(X509Error::Pkcs12("PBE iteration count out of range".into()));
            }
            let salt = params.salt.as_bytes();
            let derive = |id, len| {
                derive_key_utf8::<sha1::Sha1>(password, salt, id, params.iterations, len)
                    .map(Zeroizing::new)
                    .map_err(p12err)
            };
            let key_len = match oid {
                OID_PBE_SHA1_3DES => 24,
                OID_PBE_SHA1_RC2_128 => 16,
                _ => 5,
            };
            let key = derive(Pkcs12KeyType::EncryptionKey, key_len)?;
            let iv = derive(Pkcs12KeyType::Iv, 8)?;
            let plain = if oid == OID_PBE_SHA1_3DES {
                cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                    .map_err(p12err)?
                    .decrypt_padded_vec_mut::<Pkcs7>(data)
            } else {
                // RC2 with an effective key length equal to the key's: 40 or 128 bits.
                cbc::Decryptor::<rc2::Rc2>::new_from_slices(&key, &iv)
                    .map_err(p12err)?
                    .decrypt_padded_vec_mut::<Pkcs7>(data)
            };
            plain
                .map(Zeroizing::new)
                .map_err(|_| X509Error::WrongPassphrase)
        }
        other => Err(X509Error::Pkcs12(format!(
            "bags encrypted with {other} are not read (gcrec reads PBES2, 3DES and RC2): give the key and certificate as PEM"
        ))),
    }
}

/// Opens a PKCS#12 bundle with a passphrase: checks its MAC, then reads every key and
/// certificate bag.
pub fn open_pkcs12(der: &[u8], password: &str) -> Result<Pkcs12Contents, X509Error> {
    let pfx = pkcs12::pfx::Pfx::from_der(der).map_err(p12err)?;
    if pfx.auth_safe.content_type.to_string() != OID_DATA {
        return Err(X509Error::Pkcs12(
            "public-key integrity mode is not supported (only password integrity)".into(),
        ));
    }
    let auth_safe = pfx
        .auth_safe
        .content
        .decode_as::<OctetString>()
        .map_err(p12err)?;
    mac_ok(&pfx, auth_safe.as_bytes(), password)?;
    let infos =
        Vec::<cms::content_info::ContentInfo>::from_der(auth_safe.as_bytes()).map_err(p12err)?;
    let mut out = Pkcs12Contents {
        keys: Vec::new(),
        certificates: Vec::new(),
    };
    for info in infos {
        let bags: Zeroizing<Vec<u8>> = match info.content_type.to_string().as_str() {
            OID_DATA => Zeroizing::new(
                info.content
                    .decode_as::<OctetString>()
                    .map_err(p12err)?
                    .as_bytes()
                    .to_vec(),
            ),
            OID_ENCRYPTED_DATA => {
                let enc = info
                    .content
                    .decode_as::<cms::encrypted_data::EncryptedData>()
                    .map_err(p12err)?;
                let eci = enc.enc_content_info;
                let data = eci
                    .encrypted_content
                    .ok_or_else(|| X509Error::Pkcs12("encrypted bags without content".into()))?;
                pbe_decrypt(&eci.content_enc_alg, data.as_bytes(), password)?
            }
            other => {
                return Err(X509Error::Pkcs12(format!(
                    "a safe of content type {other} is not supported"
                )));
            }
        };
        let bags = pkcs12::safe_bag::SafeContents::from_der(&bags).map_err(p12err)?;
        for bag in bags {
            // `bag_value` keeps its `[0] EXPLICIT` wrapper.
            let value = crate::cms::ber::Tlv::parse(&bag.bag_value)
                .map_err(p12err)?
                .0
                .content;
            if bag.bag_id == pkcs12::PKCS_12_PKCS8_KEY_BAG_OID {
                let shrouded =
                    pkcs12::pbe_params::EncryptedPrivateKeyInfo::from_der(value).map_err(p12err)?;
                out.keys.push(pbe_decrypt(
                    &shrouded.encryption_algorithm,
                    shrouded.encrypted_data.as_bytes(),
                    password,
                )?);
            } else if bag.bag_id == pkcs12::PKCS_12_KEY_BAG_OID {
                out.keys.push(Zeroizing::new(value.to_vec()));
            } else if bag.bag_id == pkcs12::PKCS_12_CERT_BAG_OID {
                let cert = pkcs12::cert_type::CertBag::from_der(value).map_err(p12err)?;
                if cert.cert_id == pkcs12::PKCS_12_X509_CERT_OID {
                    out.certificates
                        .push(certificate(cert.cert_value.as_bytes())?);
                }
            }
        }
    }
    Ok(out)
}
