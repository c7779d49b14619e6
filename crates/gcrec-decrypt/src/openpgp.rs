//! OpenPGP messages, through rPGP in streaming mode.
//!
//! rPGP's default SEIPDv1 mode buffers the whole message to check the MDC first and
//! refuses messages over 1 GiB. gcrec uses the streaming mode instead (constant memory)
//! and gets the same guarantee from the release rule: plaintext goes to a temporary file
//! and is released only after the MDC (SEIPDv1) or the final AEAD tag (SEIPDv2) has been
//! checked at the end of the stream.

use std::io::{BufRead, Read, Write};

use pgp::composed::{DecryptionOptions, Esk, InnerRingResult, Message, TheRing};
use pgp::types::{KeyDetails, Password, Seipdv1ReadMode};

use crate::keys::Keyring;

/// Why an OpenPGP message could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    /// The data is not an OpenPGP message rPGP can parse.
    #[error("not a readable OpenPGP message: {0}")]
    Parse(String),
    /// The message is not encrypted (a plain literal or signed message).
    #[error("the OpenPGP message is not encrypted")]
    NotEncrypted,
    /// None of the keys given is a recipient.
    #[error(
        "no key for this message: it is encrypted to key ID(s) {}; the keys given are {}",
        some_of(.needed),
        if .have.is_empty() { "none".to_owned() } else { some_of(.have) }
    )]
    MissingKey {
        /// Recipient key IDs (hex), as the message names them.
        needed: Vec<String>,
        /// Key IDs of the keys given.
        have: Vec<String>,
    },
    /// Only a passphrase (SKESK) could open the message.
    #[error("the message is encrypted to a passphrase only, not to a key")]
    PassphraseOnly,
    /// A matching key could not decrypt the session key.
    #[error("key {key} is a recipient but could not decrypt the session key: {reason}")]
    SessionKey {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The content failed its integrity check (MDC or AEAD tag), or is truncated.
    #[error("integrity check failed (modified or truncated message): {0}")]
    Integrity(String),
    /// Writing the plaintext failed.
    #[error("writing the plaintext: {0}")]
    Write(std::io::Error),
    /// The message is shaped to cost far more than any real one: too many recipients,
    /// armor headers or compression layers.
    #[error("refusing the message: {0}")]
    Limit(String),
}

/// Recipients (encrypted session keys) one message may name: each may cost a private-key
/// operation, and real exports name one to a few.
pub const MAX_RECIPIENTS: usize = 64;
/// Armor header lines (before the blank line) and the longest line allowed in them.
pub const MAX_ARMOR_HEADER_LINES: usize = 64;
/// The longest armor header line.
pub const MAX_ARMOR_LINE: usize = 1024;
/// Compression layers inside one message (one is what encoders write; a second is a
/// padding or a bomb).
pub const MAX_COMPRESSION_DEPTH: usize = 2;

/// Passes an armored message through, refusing one whose header (before the first blank
/// line after `-----BEGIN`) has too many or too long lines — parsers spend time and
/// memory on every one of them.
struct ArmorGuard<R> {
    inner: R,
    lines: usize,
    line_len: usize,
    line_blank: bool,
    begun: bool,
    in_body: bool,
    /// Bytes of the inner buffer already scanned.
    scanned: usize,
}

impl<R> ArmorGuard<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            lines: 0,
            line_len: 0,
            line_blank: true,
            begun: false,
            in_body: false,
            scanned: 0,
        }
    }

    /// Scans `bytes`, returning an error once a limit is passed.
    fn scan(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        for &b in bytes {
            if self.in_body {
                return Ok(());
            }
            if b == b'\n' {
                if self.begun && self.line_blank {
                    self.in_body = true;
                    return Ok(());
                }
                self.lines += 1;
                self.begun = true;
                self.line_len = 0;
                self.line_blank = true;
                if self.lines > MAX_ARMOR_HEADER_LINES {
                    return Err(std::io::Error::other(format!(
                        "more than {MAX_ARMOR_HEADER_LINES} armor header lines"
                    )));
                }
            } else {
                self.line_len += 1;
                self.line_blank &= b.is_ascii_whitespace();
                if self.line_len > MAX_ARMOR_LINE {
                    return Err(std::io::Error::other(format!(
                        "an armor header line longer than {MAX_ARMOR_LINE} bytes"
                    )));
                }
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Read for ArmorGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for ArmorGuard<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if !self.in_body {
            let from = self.scanned;
            let buf = self.inner.fill_buf()?.to_vec();
            if from < buf.len() {
                self.scan(&buf[from..])?;
            }
            self.scanned = buf.len();
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.scanned = self.scanned.saturating_sub(amt);
        self.inner.consume(amt);
    }
}

impl<R> std::fmt::Debug for ArmorGuard<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArmorGuard")
    }
}

/// At most a few IDs, then how many more: a hostile message may name thousands.
fn some_of(ids: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" … and {} more", ids.len() - SHOWN));
    }
    text
}

/// What opened a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgpOutcome {
    /// The key ID (hex) of the recipient key that decrypted the session key.
    pub key_id: String,
    /// Plaintext bytes written.
    pub bytes: u64,
}

/// The session key of the first PKESK addressed to an RSA key the keyring holds in
/// AWS-LC, when its PKCS#1 decryption and checksum check out, with that key's ID.
fn native_session_key(
    esk: &[Esk],
    keys: &Keyring,
) -> Option<(pgp::composed::PlainSessionKey, String)> {
    use pgp::composed::{PlainSessionKey, RawSessionKey};
    use pgp::types::PkeskBytes;
    for e in esk {
        let Esk::PublicKeyEncryptedSessionKey(p) = e else {
            continue;
        };
        let Ok(id) = p.id() else { continue };
        if id.is_wildcard() || p.version() != pgp::types::PkeskVersion::V3 {
            continue;
        }
        let id = hex::encode_upper(id.as_ref());
        let Some(native) = keys
            .pgp
            .iter()
            .flat_map(|k| &k.native_rsa)
            .find_map(|(kid, n)| (*kid == id).then_some(n))
        else {
            continue;
        };
        let Ok(PkeskBytes::Rsa { mpi }) = p.values() else {
            continue;
        };
        // An MPI drops leading zeros; the ciphertext is as long as the modulus.
        let mpi = mpi.as_ref();
        let size = native.size_bytes();
        if mpi.len() > size {
            continue;
        }
        let mut ciphertext = vec![0u8; size - mpi.len()];
        ciphertext.extend_from_slice(mpi);
        let Some(plain) = native.decrypt_pkcs1(&ciphertext) else {
            continue;
        };
        // algorithm ‖ session key ‖ checksum (the key's bytes summed, mod 65536).
        if plain.len() < 4 {
            continue;
        }
        let key = &plain[1..plain.len() - 2];
        let sum = key.iter().fold(0u16, |s, b| s.wrapping_add(u16::from(*b)));
        if sum.to_be_bytes() != plain[plain.len() - 2..] {
            continue;
        }
        return Some((
            PlainSessionKey::V3_4 {
                sym_alg: pgp::crypto::sym::SymmetricKeyAlgorithm::from(plain[0]),
                key: RawSessionKey::from(key),
            },
            id,
        ));
    }
    None
}

/// The session key of the first PKESK one of `keys` (or its subkeys) opens through
/// rPGP's own key code, with that key's ID. `None` leaves it to rPGP's ring, which tries
/// again and reports why no key worked.
fn rpgp_session_key<'k>(
    esk: &[Esk],
    keys: impl Iterator<Item = &'k pgp::composed::SignedSecretKey> + Clone,
) -> Option<(pgp::composed::PlainSessionKey, String)> {
    use pgp::types::{DecryptionKey, EskType, PkeskVersion};
    for e in esk {
        let Esk::PublicKeyEncryptedSessionKey(p) = e else {
            continue;
        };
        let typ = match p.version() {
            PkeskVersion::V3 => EskType::V3_4,
            PkeskVersion::V6 => EskType::V6,
            PkeskVersion::Other(_) => continue,
        };
        let Ok(values) = p.values() else { continue };
        for key in keys.clone() {
            let mut tries: Vec<(&dyn DecryptionKey, String)> = Vec::new();
            if p.match_identity(key.primary_key.public_key()) {
                tries.push((
                    &key.primary_key,
                    hex::encode_upper(key.primary_key.legacy_key_id().as_ref()),
                ));
            }
            for sub in &key.secret_subkeys {
                if p.match_identity(sub.public_key()) {
                    tries.push((
                        &sub.key,
                        hex::encode_upper(sub.key.legacy_key_id().as_ref()),
                    ));
                }
            }
            for (dec, id) in tries {
                // Keys are unlocked when loaded.
                if let Ok(Ok(session_key)) = dec.decrypt(&Password::empty(), values, typ) {
                    return Some((session_key, id));
                }
            }
        }
    }
    None
}

/// The raw body of the message's SEIPDv1 packet (after its version byte) with the
/// session key's algorithm and bytes, when the lean path ([`crate::seipdv1`]) can take
/// it; nothing is consumed when it cannot.
fn lean_body<'m, 'a: 'm>(
    message: &'m mut Message<'a>,
    session_key: &'m pgp::composed::PlainSessionKey,
) -> Option<(&'m mut (dyn BufRead + 'm), u8, &'m [u8])> {
    use pgp::composed::{Edata, PlainSessionKey};
    use pgp::packet::{ProtectedDataConfig, SymEncryptedProtectedDataConfig};
    let PlainSessionKey::V3_4 { sym_alg, key } = session_key else {
        return None;
    };
    let Message::Encrypted {
        edata: Edata::SymEncryptedProtectedData { reader },
        ..
    } = message
    else {
        return None;
    };
    if !matches!(
        reader.config(),
        ProtectedDataConfig::Seipd(SymEncryptedProtectedDataConfig::V1)
    ) || reader.is_done()
    {
        return None;
    }
    let algorithm = u8::from(*sym_alg);
    let body = reader.get_mut();
    let first = body.fill_buf().ok()?;
    if !crate::seipdv1::eligible(algorithm, key.as_ref(), first) {
        return None;
    }
    Some((body, algorithm, key.as_ref()))
}

/// Plaintext bytes moved per step.
const COPY_CHUNK: usize = 256 * 1024;

/// Decrypts an OpenPGP message from `reader` into `out`. The plaintext written is
/// unauthenticated until this returns `Ok`.
pub fn decrypt<'a, R>(
    reader: R,
    armored: bool,
    keys: &Keyring,
    out: &mut dyn Write,
) -> Result<PgpOutcome, PgpError>
where
    R: BufRead + std::fmt::Debug + Send + 'a,
{
    let message = if armored {
        Message::from_armor(ArmorGuard::new(reader)).map(|(m, _)| m)
    } else {
        Message::from_bytes(reader)
    }
    .map_err(|e| PgpError::Parse(crate::parser_error(&e)))?;
    let Message::Encrypted { esk, .. } = &message else {
        return Err(PgpError::NotEncrypted);
    };
    if esk.len() > MAX_RECIPIENTS {
        return Err(PgpError::Limit(format!(
            "it names {} recipients (encrypted session keys), more than the {MAX_RECIPIENTS} \
             any export uses",
            esk.len()
        )));
    }
    let mut needed = Vec::new();
    let mut wildcard = false;
    for e in esk {
        if let Esk::PublicKeyEncryptedSessionKey(p) = e {
            match (p.id(), p.fingerprint()) {
                (Ok(id), _) if id.is_wildcard() => wildcard = true,
                (Ok(id), _) => needed.push(hex::encode_upper(id.as_ref())),
                (_, Ok(Some(fp))) => needed.push(hex::encode_upper(fp.as_bytes())),
                _ => wildcard = true,
            }
        }
    }
    if needed.is_empty() && !wildcard {
        return Err(PgpError::PassphraseOnly);
    }
    // Which of our keys the message names (a fingerprint names a key by its last 8 bytes).
    let key_ids_of = |k: &pgp::composed::SignedSecretKey| {
        let mut ids = vec![(
            hex::encode_upper(k.primary_key.legacy_key_id().as_ref()),
            format!("{:X}", k.primary_key.fingerprint()),
        )];
        ids.extend(k.secret_subkeys.iter().map(|s| {
            (
                hex::encode_upper(s.key.legacy_key_id().as_ref()),
                format!("{:X}", s.key.fingerprint()),
            )
        }));
        ids
    };
    let recipient_of = |k: &pgp::composed::SignedSecretKey| {
        key_ids_of(k)
            .into_iter()
            .find(|(id, fp)| needed.iter().any(|n| n == id || n == fp))
            .map(|(id, _)| id)
    };
    let candidates: Vec<usize> = (0..keys.pgp.len())
        .filter(|&i| wildcard || recipient_of(&keys.pgp[i].key).is_some())
        .collect();
    if candidates.is_empty() {
        return Err(PgpError::MissingKey {
            needed,
            have: keys.pgp_key_ids(),
        });
    }
    // The session key first: RSA recipients through AWS-LC (one private-key operation,
    // about five times faster than rPGP's), others through rPGP's key code; the session
    // key must pass its checksum. With an AES session key and a literal packet inside a
    // SEIPDv1 packet (what exports carry), the lean path decrypts the body; anything else
    // goes through rPGP's readers, which check the MDC or AEAD tags as for any key.
    let found = native_session_key(esk, keys)
        .or_else(|| rpgp_session_key(esk, candidates.iter().map(|&i| &keys.pgp[i].key)));
    let mut message = message;
    if let Some((session_key, id)) = &found
        && let Some((body, algorithm, key)) = lean_body(&mut message, session_key)
    {
        let bytes = crate::seipdv1::decrypt(body, algorithm, key, out)?;
        return Ok(PgpOutcome {
            key_id: id.clone(),
            bytes,
        });
    }
    let (mut message, opened) = match found {
        Some((session_key, id)) => {
            // The same streaming read mode as below: constant memory, the MDC checked at
            // the end (the release rule holds the plaintext back until then).
            let ring = TheRing {
                session_keys: vec![session_key],
                decrypt_options: DecryptionOptions::new()
                    .set_seipdv1_read_mode(Seipdv1ReadMode::Streaming),
                ..TheRing::default()
            };
            let (message, _) =
                message
                    .decrypt_the_ring(ring, true)
                    .map_err(|e| PgpError::SessionKey {
                        key: id.clone(),
                        reason: crate::parser_error(&e),
                    })?;
            (message, id)
        }
        None => {
            // No key opened a session key: rPGP's ring tries them again and says why not.
            let secret_keys = candidates.iter().map(|&i| &keys.pgp[i].key).collect();
            // Keys are unlocked when loaded.
            let unlocked = Password::empty();
            let passwords: Vec<&Password> = vec![&unlocked; candidates.len()];
            let ring = TheRing {
                secret_keys,
                key_passwords: passwords,
                decrypt_options: DecryptionOptions::new()
                    .set_seipdv1_read_mode(Seipdv1ReadMode::Streaming),
                ..TheRing::default()
            };
            let first_candidate = recipient_of(&keys.pgp[candidates[0]].key)
                .unwrap_or_else(|| "(anonymous recipient)".into());
            let (message, result) =
                message
                    .decrypt_the_ring(ring, true)
                    .map_err(|e| PgpError::SessionKey {
                        key: first_candidate.clone(),
                        reason: crate::parser_error(&e),
                    })?;
            let opened = result
                .secret_keys
                .iter()
                .position(|r| *r == InnerRingResult::Ok)
                .and_then(|i| recipient_of(&keys.pgp[candidates[i]].key))
                .unwrap_or(first_candidate);
            (message, opened)
        }
    };
    let mut depth = 0;
    while message.is_compressed() {
        depth += 1;
        if depth > MAX_COMPRESSION_DEPTH {
            return Err(PgpError::Limit(format!(
                "more than {MAX_COMPRESSION_DEPTH} nested compression layers (a decompression bomb?)"
            )));
        }
        message = message
            .decompress()
            .map_err(|e| PgpError::Integrity(crate::parser_error(&e)))?;
    }
    // Large steps: rPGP hands out as much as it has decrypted, and every step costs a
    // trip through its reader stack.
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = match message.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PgpError::Integrity(crate::parser_error(&e))),
        };
        out.write_all(&buf[..n]).map_err(PgpError::Write)?;
        bytes += n as u64;
    }
    Ok(PgpOutcome {
        key_id: opened,
        bytes,
    })
}
