//! RSA private-key decryption through AWS-LC (`aws-lc-rs`, which the build already links
//! for TLS): about four times faster than the pure-Rust `rsa` crate for a 3072-bit key
//! (docs/BENCHMARKS.md), and not subject to the `rsa` crate's timing advisory
//! (RUSTSEC-2023-0071). Keys are converted once, when they are loaded; the `rsa` crate
//! still parses key files and computes fingerprints, and stays the fallback for a key
//! AWS-LC refuses.

use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey,
};
use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;
use zeroize::Zeroizing;

/// An RSA private key, ready for AWS-LC.
pub struct NativeRsa {
    oaep: OaepPrivateDecryptingKey,
    pkcs1: Pkcs1PrivateDecryptingKey,
}

impl std::fmt::Debug for NativeRsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NativeRsa({} bits)", self.oaep.key_size_bits())
    }
}

/// The OAEP hash of a wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepHash {
    /// SHA-1 with MGF1-SHA1 (the S3 Encryption Client's `RSA-OAEP-SHA1`).
    Sha1,
    /// SHA-256 with MGF1-SHA256.
    Sha256,
    /// SHA-384 with MGF1-SHA384 (AWS Encryption SDK raw RSA keyrings).
    Sha384,
    /// SHA-512 with MGF1-SHA512.
    Sha512,
}

impl NativeRsa {
    /// Converts a parsed key; `None` when AWS-LC refuses it (the caller falls back).
    pub fn from_key(key: &RsaPrivateKey) -> Option<Self> {
        let der = Zeroizing::new(key.to_pkcs8_der().ok()?.as_bytes().to_vec());
        let load = || PrivateDecryptingKey::from_pkcs8(&der).ok();
        Some(Self {
            oaep: OaepPrivateDecryptingKey::new(load()?).ok()?,
            pkcs1: Pkcs1PrivateDecryptingKey::new(load()?).ok()?,
        })
    }

    /// RSAES-OAEP decryption; `None` when the ciphertext is not for this key.
    pub fn decrypt_oaep(&self, hash: OaepHash, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let algorithm = match hash {
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
            OaepHash::Sha384 => &OAEP_SHA384_MGF1SHA384,
            OaepHash::Sha512 => &OAEP_SHA512_MGF1SHA512,
        };
        let mut out = Zeroizing::new(vec![0u8; self.oaep.min_output_size()]);
        let n = self
            .oaep
            .decrypt(algorithm, ciphertext, &mut out, None)
            .ok()?
            .len();
        out.truncate(n);
        Some(out)
    }

    /// The modulus size in bytes (a ciphertext is this long).
    pub fn size_bytes(&self) -> usize {
        self.pkcs1.key_size_bytes()
    }

    /// RSAES-PKCS1-v1_5 decryption; `None` when the ciphertext is not for this key.
    pub fn decrypt_pkcs1(&self, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.pkcs1.min_output_size()]);
        let n = self.pkcs1.decrypt(ciphertext, &mut out).ok()?.len();
        out.truncate(n);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::{Oaep, Pkcs1v15Encrypt};

    #[test]
    fn the_same_plaintext_as_the_rsa_crate() {
        let mut rng = rand::thread_rng();
        let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let public = key.to_public_key();
        let native = NativeRsa::from_key(&key).unwrap();
        let secret = b"\x20a data key of thirty-two bytes!AES/GCM/NoPadding";
        let oaep = public
            .encrypt(&mut rng, Oaep::new::<sha1::Sha1>(), secret)
            .unwrap();
        assert_eq!(
            &native.decrypt_oaep(OaepHash::Sha1, &oaep).unwrap()[..],
            secret
        );
        assert_eq!(
            native.decrypt_oaep(OaepHash::Sha1, &oaep).unwrap()[..],
            key.decrypt(Oaep::new::<sha1::Sha1>(), &oaep).unwrap()[..]
        );
        let oaep256 = public
            .encrypt(&mut rng, Oaep::new::<sha2::Sha256>(), secret)
            .unwrap();
        assert_eq!(
            &native.decrypt_oaep(OaepHash::Sha256, &oaep256).unwrap()[..],
            secret
        );
        let pkcs1 = public.encrypt(&mut rng, Pkcs1v15Encrypt, secret).unwrap();
        assert_eq!(&native.decrypt_pkcs1(&pkcs1).unwrap()[..], secret);
        // Another key's ciphertext opens nothing.
        let other = RsaPrivateKey::new(&mut rng, 2048).unwrap().to_public_key();
        let foreign = other.encrypt(&mut rng, Pkcs1v15Encrypt, secret).unwrap();
        assert!(native.decrypt_oaep(OaepHash::Sha1, &foreign).is_none());
    }
}
