//! Streaming AES-CBC decryption with PKCS#7 padding, for any chunking and any AES key
//! size: the S3 Encryption Client's legacy V1 content and CMS `EnvelopedData`.
//!
//! CBC carries **no integrity check**: the padding test catches a wrong key most of the
//! time and tampering almost never. Callers open CBC content only when unauthenticated
//! containers are explicitly allowed, and record that its output is unauthenticated.
//! The last block is held back until [`CbcDecryptor::finish`], which strips the padding.

use aes::cipher::{BlockDecryptMut, KeyIvInit};
use aes::{Aes128, Aes192, Aes256};
use std::io::Write;
use zeroize::Zeroize;

/// Why CBC content did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CbcError {
    /// The padding is wrong: a wrong key, or altered ciphertext.
    #[error("AES-CBC padding is invalid: wrong key or an altered object")]
    BadPadding,
    /// The ciphertext is empty or not a whole number of blocks.
    #[error("AES-CBC ciphertext of {0} bytes is not a whole number of blocks (truncated object)")]
    BadLength(u64),
    /// The key is not 16, 24 or 32 bytes, or the IV not 16.
    #[error("AES-CBC with a {0}-byte key or IV is not supported")]
    BadKey(usize),
}

enum Cipher {
    Aes128(cbc::Decryptor<Aes128>),
    Aes192(cbc::Decryptor<Aes192>),
    Aes256(cbc::Decryptor<Aes256>),
}

impl Cipher {
    fn decrypt(&mut self, block: &mut [u8; 16]) {
        match self {
            Cipher::Aes128(c) => c.decrypt_block_mut(block.into()),
            Cipher::Aes192(c) => c.decrypt_block_mut(block.into()),
            Cipher::Aes256(c) => c.decrypt_block_mut(block.into()),
        }
    }
}

/// Decrypts CBC ciphertext given in pieces of any size, writing plaintext as it goes
/// and holding the last block back for the padding check.
pub struct CbcDecryptor {
    cipher: Cipher,
    carry: [u8; 16],
    carry_len: usize,
    held: Option<[u8; 16]>,
    read: u64,
    written: u64,
}

impl std::fmt::Debug for CbcDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CbcDecryptor({} bytes read)", self.read)
    }
}

impl CbcDecryptor {
    /// A decryptor for a 16-, 24- or 32-byte key and a 16-byte IV.
    pub fn new(key: &[u8], iv: &[u8]) -> Result<Self, CbcError> {
        if iv.len() != 16 {
            return Err(CbcError::BadKey(iv.len()));
        }
        let cipher = match key.len() {
            16 => Cipher::Aes128(cbc::Decryptor::new(key.into(), iv.into())),
            24 => Cipher::Aes192(cbc::Decryptor::new(key.into(), iv.into())),
            32 => Cipher::Aes256(cbc::Decryptor::new(key.into(), iv.into())),
            n => return Err(CbcError::BadKey(n)),
        };
        Ok(Self {
            cipher,
            carry: [0; 16],
            carry_len: 0,
            held: None,
            read: 0,
            written: 0,
        })
    }

    fn block(&mut self, mut block: [u8; 16], out: &mut dyn Write) -> std::io::Result<()> {
        self.cipher.decrypt(&mut block);
        if let Some(mut previous) = self.held.replace(block) {
            out.write_all(&previous)?;
            previous.zeroize();
            self.written += 16;
        }
        Ok(())
    }

    /// Takes the next ciphertext bytes; writes every block but the last seen so far.
    pub fn update(&mut self, mut data: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
        self.read += data.len() as u64;
        if self.carry_len > 0 {
            let take = (16 - self.carry_len).min(data.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            self.carry_len += take;
            data = &data[take..];
            if self.carry_len < 16 {
                return Ok(());
            }
            self.carry_len = 0;
            let block = self.carry;
            self.block(block, out)?;
        }
        let mut blocks = data.chunks_exact(16);
        for block in &mut blocks {
            let mut b = [0u8; 16];
            b.copy_from_slice(block);
            self.block(b, out)?;
        }
        let rest = blocks.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
        Ok(())
    }

    /// Checks and strips the padding, writes the last plaintext bytes and returns the
    /// plaintext length.
    pub fn finish(mut self, out: &mut dyn Write) -> Result<u64, FinishError> {
        if self.carry_len != 0 {
            return Err(CbcError::BadLength(self.read).into());
        }
        let Some(mut last) = self.held.take() else {
            return Err(CbcError::BadLength(self.read).into());
        };
        let pad = usize::from(last[15]);
        let valid = (1..=16).contains(&pad) && last[16 - pad..].iter().all(|&b| b == last[15]);
        if !valid {
            last.zeroize();
            return Err(CbcError::BadPadding.into());
        }
        out.write_all(&last[..16 - pad])?;
        last.zeroize();
        Ok(self.written + (16 - pad) as u64)
    }
}

impl Drop for CbcDecryptor {
    fn drop(&mut self) {
        self.carry.zeroize();
        if let Some(h) = &mut self.held {
            h.zeroize();
        }
    }
}

/// Why [`CbcDecryptor::finish`] failed: the content, or writing the last bytes.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// The ciphertext is wrong.
    #[error(transparent)]
    Cbc(#[from] CbcError),
    /// Writing failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{BlockEncryptMut, block_padding::Pkcs7};

    fn seal(key: &[u8], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
        match key.len() {
            16 => cbc::Encryptor::<Aes128>::new(key.into(), iv.into())
                .encrypt_padded_vec_mut::<Pkcs7>(plain),
            24 => cbc::Encryptor::<Aes192>::new(key.into(), iv.into())
                .encrypt_padded_vec_mut::<Pkcs7>(plain),
            _ => cbc::Encryptor::<Aes256>::new(key.into(), iv.into())
                .encrypt_padded_vec_mut::<Pkcs7>(plain),
        }
    }

    fn open(key: &[u8], iv: &[u8; 16], sealed: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
        let mut d = CbcDecryptor::new(key, iv).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for piece in sealed.chunks(chunk) {
            d.update(piece, &mut out).map_err(|e| e.to_string())?;
        }
        let n = d.finish(&mut out).map_err(|e| e.to_string())?;
        assert_eq!(n as usize, out.len());
        Ok(out)
    }

    #[test]
    fn every_key_size_length_and_chunking_round_trips() {
        let iv = [5u8; 16];
        for key_len in [16, 24, 32] {
            let key = vec![key_len as u8; key_len];
            for len in [0usize, 1, 15, 16, 17, 100, 4097] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let sealed = seal(&key, &iv, &plain);
                for chunk in [1, 5, 16, 33, 10_000] {
                    assert_eq!(open(&key, &iv, &sealed, chunk).unwrap(), plain);
                }
            }
        }
    }

    #[test]
    fn bad_padding_and_lengths_are_refused() {
        let key = [1u8; 32];
        let iv = [2u8; 16];
        let sealed = seal(&key, &iv, b"sixteen bytes!!!x");
        assert!(open(&key, &iv, &sealed[..sealed.len() - 1], 7).is_err());
        assert!(
            open(&key, &iv, &[], 7)
                .unwrap_err()
                .contains("whole number")
        );
        let mut wrong = key;
        wrong[0] ^= 1;
        // A wrong key gives valid padding about once in 256 tries; this one does not.
        assert!(
            open(&wrong, &iv, &sealed, 7)
                .unwrap_err()
                .contains("padding")
        );
        assert!(CbcDecryptor::new(&[0u8; 20], &iv).is_err());
    }
}
