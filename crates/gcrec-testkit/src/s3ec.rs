//! A streaming Amazon S3 Encryption Client writer (V2 and V3 content; RSA-OAEP-SHA1 or
//! AES-GCM key wraps) for test and benchmark inputs of any size — the Python reference
//! writer (tests/interop/s3ec_reference.py) is the interop check; this one is for volume.
//! It writes the ciphertext and gcrec's saved-object-metadata file beside it.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use gcrec_decrypt::gcm::GcmEncryptor;
use gcrec_fetch::source::{OBJECT_METADATA_SUFFIX, SavedObjectMetadata};
use rand::RngCore;

/// Which envelope version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Version {
    /// AES-GCM, random IV.
    V2,
    /// Key-committing AES-GCM (suite 115).
    V3,
}

/// How the data key is wrapped.
#[derive(Debug, Clone)]
pub enum Wrap {
    /// RSA-OAEP-SHA1 with this public key.
    RsaOaep(rsa::RsaPublicKey),
    /// AES-GCM with this key.
    AesGcm([u8; 32]),
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn wrap_key(
    wrap: &Wrap,
    data_key: &[u8; 32],
    cek_alg: &str,
) -> io::Result<(Vec<u8>, &'static str, &'static str)> {
    let mut rng = rand::thread_rng();
    match wrap {
        Wrap::RsaOaep(public) => {
            let mut plain = vec![32u8];
            plain.extend_from_slice(data_key);
            plain.extend_from_slice(cek_alg.as_bytes());
            let wrapped = public
                .encrypt(&mut rng, rsa::Oaep::new::<sha1::Sha1>(), &plain)
                .map_err(|_| io::Error::other("RSA-OAEP wrap failed"))?;
            Ok((wrapped, "RSA-OAEP-SHA1", "22"))
        }
        Wrap::AesGcm(kek) => {
            let mut iv = [0u8; 12];
            rng.fill_bytes(&mut iv);
            let sealed = Aes256Gcm::new(kek.into())
                .encrypt(
                    Nonce::from_slice(&iv),
                    Payload {
                        msg: data_key,
                        aad: cek_alg.as_bytes(),
                    },
                )
                .map_err(|_| io::Error::other("AES-GCM wrap failed"))?;
            Ok(([&iv[..], &sealed].concat(), "AES/GCM", "02"))
        }
    }
}

/// Encrypts `input` into `out_path` (ciphertext and tag) and writes
/// `{out_path}.gcrec-object.json` with the envelope. Streams in 1 MiB steps.
pub fn encrypt(
    mut input: impl Read,
    out_path: &Path,
    version: Version,
    wrap: &Wrap,
) -> io::Result<u64> {
    let mut rng = rand::thread_rng();
    let mut data_key = [0u8; 32];
    rng.fill_bytes(&mut data_key);
    let mut meta = BTreeMap::new();
    let mut encryptor = match version {
        Version::V2 => {
            let mut iv = [0u8; 12];
            rng.fill_bytes(&mut iv);
            let (wrapped, name, _) = wrap_key(wrap, &data_key, "AES/GCM/NoPadding")?;
            meta.insert("x-amz-key-v2".to_owned(), b64(&wrapped));
            meta.insert("x-amz-wrap-alg".to_owned(), name.to_owned());
            meta.insert("x-amz-matdesc".to_owned(), "{}".to_owned());
            meta.insert("x-amz-iv".to_owned(), b64(&iv));
            meta.insert("x-amz-cek-alg".to_owned(), "AES/GCM/NoPadding".to_owned());
            meta.insert("x-amz-tag-len".to_owned(), "128".to_owned());
            GcmEncryptor::new(&data_key, &iv, b"")
        }
        Version::V3 => {
            let mut message_id = [0u8; 28];
            rng.fill_bytes(&mut message_id);
            let hk = hkdf::Hkdf::<sha2::Sha512>::new(Some(&message_id), &data_key);
            let mut content_key = [0u8; 32];
            let mut commitment = [0u8; 28];
            hk.expand(b"\x00\x73DERIVEKEY", &mut content_key)
                .map_err(|_| io::Error::other("HKDF output length"))?;
            hk.expand(b"\x00\x73COMMITKEY", &mut commitment)
                .map_err(|_| io::Error::other("HKDF output length"))?;
            let (wrapped, _, code) = wrap_key(wrap, &data_key, "115")?;
            meta.insert("x-amz-c".to_owned(), "115".to_owned());
            meta.insert("x-amz-3".to_owned(), b64(&wrapped));
            meta.insert("x-amz-w".to_owned(), code.to_owned());
            meta.insert("x-amz-m".to_owned(), "{}".to_owned());
            meta.insert("x-amz-d".to_owned(), b64(&commitment));
            meta.insert("x-amz-i".to_owned(), b64(&message_id));
            GcmEncryptor::new(&content_key, &[0x01; 12], b"\x00\x73")
        }
    };
    let mut out = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out_path)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        encryptor.update(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    out.write_all(&encryptor.finish())?;
    out.flush()?;
    let mut companion = out_path.as_os_str().to_owned();
    companion.push(OBJECT_METADATA_SUFFIX);
    let saved = SavedObjectMetadata {
        user_metadata: meta,
        ..SavedObjectMetadata::default()
    };
    std::fs::write(companion, serde_json::to_vec_pretty(&saved)?)?;
    Ok(total + 16)
}
