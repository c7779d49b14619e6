//! Streaming AES-GCM decryption: CTR32 for the keystream, GHASH over the ciphertext,
//! the tag compared (in constant time) only at the end.
//!
//! `aes-gcm` has no incremental API, and an object can be gigabytes; this decrypts any
//! length in place, chunk by chunk, in constant memory. The plaintext it yields is
//! **unauthenticated until the tag is checked** ([`GcmDecryptor::finish`],
//! [`GcmStream::verify`]) — callers write it to a pending file and release only then.
//!
//! [`GcmStream`] is the core (AES-128, -192 or -256; the tag given separately, as CMS
//! carries it); [`GcmDecryptor`] wraps it for S3 Encryption Client objects, whose 16-byte
//! tag ends the object.

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use aes::{Aes128, Aes192, Aes256};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Length of the GCM tag S3 Encryption Client objects carry.
pub const TAG_LEN: usize = 16;

/// Why a GCM stream did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GcmError {
    /// The tag does not match: the ciphertext, tag, key or IV is wrong.
    #[error("authentication tag mismatch (wrong key, or the object was altered)")]
    TagMismatch,
    /// The stream ended before the ciphertext and tag were complete.
    #[error("ciphertext ended after {received} of {expected} bytes (truncated object)")]
    Truncated {
        /// Bytes expected (ciphertext and tag).
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The key is not 16, 24 or 32 bytes, or the tag not 12 to 16.
    #[error("AES-GCM with a {0}-byte key or tag is not supported")]
    BadLength(usize),
}

/// GHASH over a byte stream of any chunking: AAD first, then ciphertext.
struct GhashStream {
    ghash: GHash,
    aad_len: u64,
    len: u64,
    carry: [u8; 16],
    carry_len: usize,
}

impl GhashStream {
    fn new(h: &[u8; 16], aad: &[u8]) -> Self {
        let mut ghash = GHash::new(h.into());
        ghash.update_padded(aad);
        Self {
            ghash,
            aad_len: aad.len() as u64,
            len: 0,
            carry: [0; 16],
            carry_len: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.carry_len > 0 {
            let take = (16 - self.carry_len).min(data.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            self.carry_len += take;
            data = &data[take..];
            if self.carry_len < 16 {
                return;
            }
            self.ghash.update_padded(&self.carry);
            self.carry_len = 0;
        }
        let full = data.len() / 16 * 16;
        self.ghash.update_padded(&data[..full]);
        let rest = &data[full..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
    }

    /// The tag: GHASH of the lengths block too, masked with `E_K(J0)`.
    fn tag(mut self, mask: &[u8; 16]) -> [u8; 16] {
        if self.carry_len > 0 {
            let carry = self.carry;
            self.ghash.update_padded(&carry[..self.carry_len]);
        }
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(self.len * 8).to_be_bytes());
        self.ghash.update_padded(&lengths);
        let mut tag: [u8; 16] = self.ghash.finalize().into();
        for (t, m) in tag.iter_mut().zip(mask) {
            *t ^= m;
        }
        self.carry.zeroize();
        tag
    }
}

/// The counter-mode keystream of whichever AES key size.
enum Ctr {
    Aes128(ctr::Ctr32BE<Aes128>),
    Aes192(ctr::Ctr32BE<Aes192>),
    Aes256(ctr::Ctr32BE<Aes256>),
}

impl Ctr {
    fn apply(&mut self, buf: &mut [u8]) {
        match self {
            Ctr::Aes128(c) => c.apply_keystream(buf),
            Ctr::Aes192(c) => c.apply_keystream(buf),
            Ctr::Aes256(c) => c.apply_keystream(buf),
        }
    }
}

/// The streaming core of AES-GCM with a 96-bit IV: the keystream (from counter 2), GHASH
/// (keyed with `H = E_K(0)`) and the tag mask (`E_K(J0)`).
pub struct GcmStream {
    ctr: Ctr,
    ghash: GhashStream,
    tag_mask: Zeroizing<[u8; 16]>,
}

impl std::fmt::Debug for GcmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcmStream")
    }
}

impl GcmStream {
    /// A stream keyed with a 16-, 24- or 32-byte AES key, a 96-bit IV and additional
    /// authenticated data `aad`.
    pub fn new(key: &[u8], iv: &[u8; 12], aad: &[u8]) -> Result<Self, GcmError> {
        let counter = Self::counter(iv, 2);
        Ok(match key.len() {
            16 => {
                let cipher = Aes128::new(key.into());
                Self::keyed(
                    &cipher,
                    iv,
                    aad,
                    Ctr::Aes128(ctr::Ctr32BE::new(key.into(), (&counter).into())),
                )
            }
            24 => {
                let cipher = Aes192::new(key.into());
                Self::keyed(
                    &cipher,
                    iv,
                    aad,
                    Ctr::Aes192(ctr::Ctr32BE::new(key.into(), (&counter).into())),
                )
            }
            32 => {
                let key: &[u8; 32] = key.try_into().map_err(|_| GcmError::BadLength(32))?;
                Self::aes256(key, iv, aad)
            }
            n => return Err(GcmError::BadLength(n)),
        })
    }

    /// A stream keyed with a 32-byte key (cannot fail).
    pub fn aes256(key: &[u8; 32], iv: &[u8; 12], aad: &[u8]) -> Self {
        let counter = Self::counter(iv, 2);
        let cipher = Aes256::new(key.into());
        Self::keyed(
            &cipher,
            iv,
            aad,
            Ctr::Aes256(ctr::Ctr32BE::new(key.into(), (&counter).into())),
        )
    }

    /// `IV ‖ n` as a 32-bit big-endian counter block.
    fn counter(iv: &[u8; 12], n: u8) -> [u8; 16] {
        let mut block = [0u8; 16];
        block[..12].copy_from_slice(iv);
        block[15] = n;
        block
    }

    fn keyed<C: BlockEncrypt<BlockSize = aes::cipher::consts::U16>>(
        cipher: &C,
        iv: &[u8; 12],
        aad: &[u8],
        ctr: Ctr,
    ) -> Self {
        let mut h = [0u8; 16];
        cipher.encrypt_block((&mut h).into());
        let mut tag_mask = Self::counter(iv, 1);
        cipher.encrypt_block((&mut tag_mask).into());
        let ghash = GhashStream::new(&h, aad);
        h.zeroize();
        Self {
            ctr,
            ghash,
            tag_mask: Zeroizing::new(tag_mask),
        }
    }

    /// Decrypts the next ciphertext bytes in place.
    pub fn decrypt(&mut self, buf: &mut [u8]) {
        self.ghash.update(buf);
        self.ctr.apply(buf);
    }

    /// Encrypts the next plaintext bytes in place.
    pub fn encrypt(&mut self, buf: &mut [u8]) {
        self.ctr.apply(buf);
        self.ghash.update(buf);
    }

    /// The full 16-byte tag of everything processed.
    pub fn tag(self) -> [u8; TAG_LEN] {
        self.ghash.tag(&self.tag_mask)
    }

    /// Checks a tag of 12 to 16 bytes (a truncated tag is the leading bytes), in
    /// constant time. Only after this returns `Ok` may the plaintext be released.
    pub fn verify(self, tag: &[u8]) -> Result<(), GcmError> {
        if !(12..=TAG_LEN).contains(&tag.len()) {
            return Err(GcmError::BadLength(tag.len()));
        }
        let mut computed = self.tag();
        let ok: bool = computed[..tag.len()].ct_eq(tag).into();
        computed.zeroize();
        if ok {
            Ok(())
        } else {
            Err(GcmError::TagMismatch)
        }
    }
}

/// Decrypts `ciphertext ‖ tag` of a known total length, in place.
pub struct GcmDecryptor {
    stream: GcmStream,
    ciphertext_len: u64,
    processed: u64,
    tag: [u8; TAG_LEN],
    tag_len: usize,
}

impl std::fmt::Debug for GcmDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcmDecryptor")
            .field("ciphertext_len", &self.ciphertext_len)
            .field("processed", &self.processed)
            .finish_non_exhaustive()
    }
}

impl GcmDecryptor {
    /// A decryptor for an object of `total_len` bytes (ciphertext followed by a 16-byte
    /// tag), with a 96-bit IV and additional authenticated data `aad`.
    pub fn new(
        key: &[u8; 32],
        iv: &[u8; 12],
        aad: &[u8],
        total_len: u64,
    ) -> Result<Self, GcmError> {
        let Some(ciphertext_len) = total_len.checked_sub(TAG_LEN as u64) else {
            return Err(GcmError::Truncated {
                expected: TAG_LEN as u64,
                received: total_len,
            });
        };
        Ok(Self {
            stream: GcmStream::aes256(key, iv, aad),
            ciphertext_len,
            processed: 0,
            tag: [0; TAG_LEN],
            tag_len: 0,
        })
    }

    /// Takes the next bytes of the object. Decrypts the ciphertext among them in place
    /// and returns how many leading bytes of `buf` are now plaintext; bytes past the
    /// ciphertext are the tag and are kept for [`GcmDecryptor::finish`].
    pub fn update(&mut self, buf: &mut [u8]) -> usize {
        let remaining = self.ciphertext_len - self.processed;
        let n = (buf.len() as u64).min(remaining) as usize;
        let (ciphertext, tag) = buf.split_at_mut(n);
        self.stream.decrypt(ciphertext);
        self.processed += n as u64;
        let take = tag.len().min(TAG_LEN - self.tag_len);
        self.tag[self.tag_len..self.tag_len + take].copy_from_slice(&tag[..take]);
        self.tag_len += take;
        n
    }

    /// Checks the tag. Only after this returns `Ok` may the plaintext be released.
    pub fn finish(self) -> Result<(), GcmError> {
        let received = self.processed + self.tag_len as u64;
        let expected = self.ciphertext_len + TAG_LEN as u64;
        if received != expected {
            return Err(GcmError::Truncated { expected, received });
        }
        self.stream.verify(&self.tag)
    }
}

/// Encrypts a stream in place; the tag comes from [`GcmEncryptor::finish`]. Used to build
/// test and benchmark inputs of any size; gcrec itself never encrypts recordings.
pub struct GcmEncryptor {
    stream: GcmStream,
}

impl std::fmt::Debug for GcmEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcmEncryptor")
    }
}

impl GcmEncryptor {
    /// An encryptor with a 96-bit IV and additional authenticated data `aad`.
    pub fn new(key: &[u8; 32], iv: &[u8; 12], aad: &[u8]) -> Self {
        Self {
            stream: GcmStream::aes256(key, iv, aad),
        }
    }

    /// Encrypts the next plaintext bytes in place.
    pub fn update(&mut self, buf: &mut [u8]) {
        self.stream.encrypt(buf);
    }

    /// The tag to append.
    pub fn finish(self) -> [u8; TAG_LEN] {
        self.stream.tag()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};

    fn seal(key: &[u8; 32], iv: &[u8; 12], aad: &[u8], plain: &[u8]) -> Vec<u8> {
        Aes256Gcm::new(key.into())
            .encrypt(Nonce::from_slice(iv), Payload { msg: plain, aad })
            .unwrap()
    }

    fn open_in_chunks(
        key: &[u8; 32],
        iv: &[u8; 12],
        aad: &[u8],
        mut sealed: Vec<u8>,
        chunk: usize,
    ) -> Result<Vec<u8>, GcmError> {
        let mut d = GcmDecryptor::new(key, iv, aad, sealed.len() as u64)?;
        let mut out = Vec::new();
        for piece in sealed.chunks_mut(chunk) {
            let n = d.update(piece);
            out.extend_from_slice(&piece[..n]);
        }
        d.finish().map(|()| out)
    }

    #[test]
    fn matches_aes_gcm_for_every_length_and_chunking() {
        let key = [7u8; 32];
        let iv = [1u8; 12];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 255, 1000, 4097] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            for aad in [&b""[..], &[0x00, 0x73][..]] {
                let sealed = seal(&key, &iv, aad, &plain);
                for chunk in [1, 3, 16, 17, 64, 5000] {
                    let got = open_in_chunks(&key, &iv, aad, sealed.clone(), chunk).unwrap();
                    assert_eq!(got, plain, "len {len} chunk {chunk}");
                }
            }
        }
    }

    #[test]
    fn any_flipped_bit_fails_the_tag() {
        let key = [9u8; 32];
        let iv = [3u8; 12];
        let sealed = seal(&key, &iv, b"", &[5u8; 100]);
        for i in [0, 50, 99, 100, 115] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(
                open_in_chunks(&key, &iv, b"", bad, 7),
                Err(GcmError::TagMismatch),
                "byte {i}"
            );
        }
        let mut wrong_key = key;
        wrong_key[0] ^= 1;
        assert_eq!(
            open_in_chunks(&wrong_key, &iv, b"", sealed.clone(), 7),
            Err(GcmError::TagMismatch)
        );
        assert_eq!(
            open_in_chunks(&key, &iv, b"x", sealed, 7),
            Err(GcmError::TagMismatch)
        );
    }

    #[test]
    fn the_stream_encryptor_matches_aes_gcm() {
        let key = [4u8; 32];
        let iv = [2u8; 12];
        for len in [0usize, 5, 16, 100, 4097] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut e = GcmEncryptor::new(&key, &iv, &[0x00, 0x73]);
            let mut buf = plain.clone();
            for piece in buf.chunks_mut(7) {
                e.update(piece);
            }
            buf.extend_from_slice(&e.finish());
            assert_eq!(buf, seal(&key, &iv, &[0x00, 0x73], &plain), "len {len}");
        }
    }

    #[test]
    fn a_short_stream_is_truncated_not_accepted() {
        let key = [9u8; 32];
        let iv = [3u8; 12];
        let sealed = seal(&key, &iv, b"", &[5u8; 100]);
        let mut d = GcmDecryptor::new(&key, &iv, b"", sealed.len() as u64).unwrap();
        let mut part = sealed[..60].to_vec();
        d.update(&mut part);
        assert!(matches!(
            d.finish(),
            Err(GcmError::Truncated { received: 60, .. })
        ));
        assert!(GcmDecryptor::new(&key, &iv, b"", 10).is_err());
    }
}
