//! The lean path for OpenPGP's SEIPDv1 (symmetrically encrypted, integrity-protected data,
//! version 1) with AES and one literal data packet inside — what exports carry.
//!
//! rPGP parses the message's headers and the session key is recovered as before; this
//! module then takes the raw packet body and does the bulk work on gcrec's own buffers:
//! AES-CFB decryption of many blocks at once (CFB decryption needs no chaining, so the
//! `cfb-mode` decryptor runs AES-NI eight blocks wide, where rPGP's buffered decryptor
//! runs one block at a time), SHA-1 for the MDC over large slices, and a small state
//! machine for the literal packet's framing (partial body lengths included) instead of
//! rPGP's stack of readers, each with its own buffer and copies. It is written here rather
//! than borrowed because rPGP does not expose a decryptor that skips its buffering
//! (issue #16: rPGP's path decrypted at 1.0× gpg's speed in memory).
//!
//! The plaintext written is unauthenticated until [`decrypt`] returns `Ok`: the MDC is
//! checked at the end of the stream, and the release rule holds the output back until then.
//! Anything the lean path does not handle (other ciphers, compression, signed messages, an
//! old-format packet of indeterminate length) is recognised from the first two blocks,
//! before anything is consumed, so rPGP's own path can take the message unchanged.

use std::io::{BufRead, Write};
use std::thread::Scope;

use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::offthread::OffThread;
use crate::openpgp::PgpError;

/// AES's block size; the random prefix is one block and two repeated bytes.
const BLOCK: usize = 16;
/// The decrypted MDC packet: tag 19 in the new format (0xD3), length 20 (0x14), SHA-1.
const MDC_LEN: usize = 22;
/// Plaintext gathered before it is hashed, parsed and written: large enough that each
/// write costs little per byte.
const BATCH: usize = 256 * 1024;
/// The literal data packet's tag.
const LITERAL: u8 = 11;

/// AES-CFB with an all-zero IV, as SEIPDv1 uses it, for the three AES key sizes.
enum Cfb {
    A128(cfb_mode::Decryptor<aes::Aes128>),
    A192(cfb_mode::Decryptor<aes::Aes192>),
    A256(cfb_mode::Decryptor<aes::Aes256>),
}

impl Cfb {
    /// The decryptor for an OpenPGP symmetric algorithm ID and key, when it is AES.
    fn new(algorithm: u8, key: &[u8]) -> Option<Self> {
        let iv = [0u8; BLOCK];
        Some(match (algorithm, key.len()) {
            (7, 16) => Self::A128(cfb_mode::Decryptor::new_from_slices(key, &iv).ok()?),
            (8, 24) => Self::A192(cfb_mode::Decryptor::new_from_slices(key, &iv).ok()?),
            (9, 32) => Self::A256(cfb_mode::Decryptor::new_from_slices(key, &iv).ok()?),
            _ => return None,
        })
    }

    /// Decrypts whole blocks from `input` into `out` (equal lengths, a multiple of 16).
    fn blocks(&mut self, input: &[u8], out: &mut [u8]) {
        debug_assert_eq!(input.len() % BLOCK, 0);
        let Ok(buf) = InOutBuf::new(input, out) else {
            return;
        };
        let (blocks, _) = buf.into_chunks();
        match self {
            Self::A128(c) => c.decrypt_blocks_inout_mut(blocks),
            Self::A192(c) => c.decrypt_blocks_inout_mut(blocks),
            Self::A256(c) => c.decrypt_blocks_inout_mut(blocks),
        }
    }
}

/// Whether the lean path can take this message: an AES session key, and the first packet
/// inside (read from the first two decrypted blocks of `ciphertext`, which is not
/// consumed) a literal data packet with a length it can follow.
pub(crate) fn eligible(algorithm: u8, key: &[u8], ciphertext: &[u8]) -> bool {
    let Some(mut cfb) = Cfb::new(algorithm, key) else {
        return false;
    };
    let Some(first) = ciphertext.get(..2 * BLOCK) else {
        return false;
    };
    let mut plain = [0u8; 2 * BLOCK];
    cfb.blocks(first, &mut plain);
    let mut header = Header::default();
    // The prefix is one block and two bytes; the packet header follows.
    for &b in &plain[BLOCK + 2..] {
        match header.push(b, true) {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            Err(_) => return false,
        }
    }
    // A header longer than the bytes looked at (a 5-byte length): still a literal packet.
    header.tag_seen
}

/// The framing of the literal data packet being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    /// This many body bytes, and the packet ends.
    Fixed(u64),
    /// This many body bytes, then another length (a partial body length).
    Partial(u64),
}

/// A packet header (or, after a partial body, just the next length) read byte by byte.
#[derive(Default)]
struct Header {
    bytes: [u8; 6],
    len: usize,
    tag_seen: bool,
}

impl Header {
    /// Takes one byte; `Some` once the length is complete. `with_tag`: the first byte is
    /// the tag byte (false for the length that follows a partial body).
    fn push(&mut self, b: u8, with_tag: bool) -> Result<Option<Length>, &'static str> {
        if self.len >= self.bytes.len() {
            return Err("packet header too long");
        }
        self.bytes[self.len] = b;
        self.len += 1;
        let h = &self.bytes[..self.len];
        if !with_tag {
            return Ok(new_length(h));
        }
        let tag = h[0];
        if tag & 0x80 == 0 {
            return Err("not a packet header");
        }
        if tag & 0x40 != 0 {
            if tag & 0x3f != LITERAL {
                return Err("the packet inside is not literal data");
            }
            self.tag_seen = true;
            return Ok(new_length(&h[1..]));
        }
        // Old format: the tag in bits 5–2, the length's size in bits 1–0.
        if (tag >> 2) & 0x0f != LITERAL {
            return Err("the packet inside is not literal data");
        }
        self.tag_seen = true;
        let size = match tag & 3 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => return Err("an old-format packet of indeterminate length"),
        };
        let rest = &h[1..];
        Ok((rest.len() == size)
            .then(|| Length::Fixed(rest.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))))
    }
}

/// A new-format length from its bytes so far, when complete.
fn new_length(h: &[u8]) -> Option<Length> {
    let first = *h.first()?;
    match first {
        0..=191 => Some(Length::Fixed(u64::from(first))),
        192..=223 => (h.len() == 2)
            .then(|| Length::Fixed((u64::from(first - 192) << 8) + u64::from(h[1]) + 192)),
        224..=254 => Some(Length::Partial(1 << (first & 0x1f))),
        255 => (h.len() == 5)
            .then(|| Length::Fixed(h[1..].iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))),
    }
}

/// Where the reader of the decrypted packet stream is.
enum State {
    /// In the random prefix: this many bytes left.
    Prefix(usize),
    /// Reading a header (`true`: with its tag byte) or a partial body's next length.
    Header(Header, bool),
    /// In the literal packet's body: this many bytes left of this piece, and whether
    /// another length follows it.
    Body { left: u64, more: bool },
    /// The literal packet has ended; only the MDC may follow.
    Done,
}

/// The literal packet's own header inside its body: format, file name, date.
enum Meta {
    /// The format byte and the name's length are not read yet (bytes read so far).
    Start(u8),
    /// Skipping the file name and the four-byte date: bytes left.
    Skip(usize),
    /// The data itself.
    Data,
}

/// Reads the decrypted packet stream: hashes it for the MDC, follows the literal
/// packet's framing and writes its data. SHA-1 (the costliest step) runs inline for the
/// first MiBs (most recordings are shorter), then on a thread of its own beside AES, the
/// framing and the writes.
struct Plain<'w, 'scope, 'env> {
    state: State,
    meta: Meta,
    mdc: OffThread<'scope, 'env, Sha1>,
    out: &'w mut dyn Write,
    written: u64,
}

impl<'w, 'scope, 'env> Plain<'w, 'scope, 'env> {
    fn new(scope: &'scope Scope<'scope, 'env>, out: &'w mut dyn Write) -> Self {
        Self {
            state: State::Prefix(BLOCK + 2),
            meta: Meta::Start(0),
            mdc: OffThread::new(scope, Sha1::new(), crate::offthread::INLINE_BYTES),
            out,
            written: 0,
        }
    }

    /// Bytes known not to be the MDC: hashed, then through the packet framing.
    fn settle(&mut self, data: &[u8]) -> Result<(), PgpError> {
        self.mdc.absorb(data).map_err(hasher_gone)?;
        self.parse(data)
    }

    /// Moves bytes known not to be the MDC through the packet framing.
    fn parse(&mut self, mut data: &[u8]) -> Result<(), PgpError> {
        while !data.is_empty() {
            match &mut self.state {
                State::Prefix(left) => {
                    let n = (*left).min(data.len());
                    *left -= n;
                    data = &data[n..];
                    if *left == 0 {
                        self.state = State::Header(Header::default(), true);
                    }
                }
                State::Header(header, with_tag) => {
                    let with_tag = *with_tag;
                    let b = data[0];
                    data = &data[1..];
                    if let Some(length) = header.push(b, with_tag).map_err(framing)? {
                        self.state = match length {
                            Length::Fixed(n) => State::Body {
                                left: n,
                                more: false,
                            },
                            Length::Partial(n) => State::Body {
                                left: n,
                                more: true,
                            },
                        };
                        self.after_body_piece();
                    }
                }
                State::Body { left, .. } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    let (piece, rest) = data.split_at(n);
                    data = rest;
                    self.literal(piece)?;
                    self.after_body_piece();
                }
                State::Done => {
                    return Err(framing("data after the literal data packet"));
                }
            }
        }
        Ok(())
    }

    /// After a piece of body: the next length, or the end of the packet.
    fn after_body_piece(&mut self) {
        if let State::Body { left: 0, more } = self.state {
            self.state = if more {
                State::Header(Header::default(), false)
            } else {
                State::Done
            };
        }
    }

    /// The literal packet's body: its header fields skipped, its data written.
    fn literal(&mut self, mut body: &[u8]) -> Result<(), PgpError> {
        while !body.is_empty() {
            match &mut self.meta {
                Meta::Start(seen) => {
                    // Byte 0 is the format, byte 1 the name's length.
                    if *seen == 1 {
                        self.meta = Meta::Skip(usize::from(body[0]) + 4);
                    } else {
                        *seen += 1;
                    }
                    body = &body[1..];
                }
                Meta::Skip(left) => {
                    let n = (*left).min(body.len());
                    *left -= n;
                    body = &body[n..];
                    if *left == 0 {
                        self.meta = Meta::Data;
                    }
                }
                Meta::Data => {
                    self.out.write_all(body).map_err(PgpError::Write)?;
                    self.written += body.len() as u64;
                    body = &[];
                }
            }
        }
        Ok(())
    }

    /// The end of the ciphertext, whose last bytes (`held`, never settled) must be the
    /// MDC packet: the literal packet complete and the MDC matching.
    fn finish(self, held: &[u8]) -> Result<u64, PgpError> {
        let mut sha1 = self.mdc.finish().map_err(hasher_gone)?;
        if held.len() != MDC_LEN || held[..2] != [0xD3, 0x14] {
            return Err(PgpError::Integrity(
                "the modification detection code is missing (truncated or modified message)".into(),
            ));
        }
        if !matches!(self.state, State::Done) || !matches!(self.meta, Meta::Data) {
            return Err(PgpError::Integrity(
                "the literal data packet ends early (truncated or modified message)".into(),
            ));
        }
        sha1.update(&held[..2]);
        let digest = sha1.finalize();
        if !bool::from(digest.as_slice().ct_eq(&held[2..])) {
            return Err(PgpError::Integrity(
                "the modification detection code does not match (modified message)".into(),
            ));
        }
        Ok(self.written)
    }
}

fn framing(what: &str) -> PgpError {
    PgpError::Integrity(format!(
        "{what} in the decrypted data (modified message or wrong session key)"
    ))
}

fn hasher_gone(stopped: crate::offthread::Stopped) -> PgpError {
    PgpError::Integrity(stopped.to_string())
}

/// Decrypts the raw body of a SEIPDv1 packet (after its version byte) read from `body`,
/// for a session key [`eligible`] accepted, writing the literal data to `out`. Returns
/// the plaintext bytes written; they are authenticated only when this returns `Ok`.
pub(crate) fn decrypt(
    body: &mut dyn BufRead,
    algorithm: u8,
    key: &[u8],
    out: &mut dyn Write,
) -> Result<u64, PgpError> {
    let Some(mut cfb) = Cfb::new(algorithm, key) else {
        return Err(PgpError::Parse("not an AES session key".into()));
    };
    std::thread::scope(|scope| {
        let mut plain = Plain::new(scope, out);
        let mut batch = vec![0u8; BATCH];
        let mut filled = 0;
        // Ciphertext bytes that did not make a whole block yet (at a piece boundary).
        let mut carry = [0u8; BLOCK];
        let mut carried = 0;
        let read_error = |e: std::io::Error| PgpError::Integrity(crate::parser_error(&e));
        // The batch's last MDC_LEN bytes are never settled until more follow: they may be
        // the MDC packet. They move to the batch's front, so each batch is hashed and
        // written as one piece.
        loop {
            if filled + BLOCK > batch.len() {
                plain.settle(&batch[..filled - MDC_LEN])?;
                batch.copy_within(filled - MDC_LEN..filled, 0);
                filled = MDC_LEN;
            }
            let input = body.fill_buf().map_err(read_error)?;
            if input.is_empty() {
                break;
            }
            if carried > 0 || input.len() < BLOCK {
                let n = (BLOCK - carried).min(input.len());
                carry[carried..carried + n].copy_from_slice(&input[..n]);
                carried += n;
                body.consume(n);
                if carried == BLOCK {
                    cfb.blocks(&carry, &mut batch[filled..filled + BLOCK]);
                    filled += BLOCK;
                    carried = 0;
                }
                continue;
            }
            let n = input.len().min(batch.len() - filled) / BLOCK * BLOCK;
            cfb.blocks(&input[..n], &mut batch[filled..filled + n]);
            filled += n;
            body.consume(n);
        }
        if carried > 0 {
            // CFB's last, short block: the keystream's first bytes.
            let mut last = [0u8; BLOCK];
            carry[carried..].fill(0);
            cfb.blocks(&carry, &mut last);
            batch[filled..filled + carried].copy_from_slice(&last[..carried]);
            filled += carried;
        }
        let held = filled.saturating_sub(MDC_LEN);
        plain.settle(&batch[..held])?;
        plain.finish(&batch[held..filled])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{AsyncStreamCipher, KeyIvInit};

    /// A SEIPDv1 body (after the version byte) for `packets`, encrypted with AES-128.
    fn seal(key: &[u8; 16], packets: &[u8]) -> Vec<u8> {
        let mut plain = vec![0x42u8; BLOCK];
        plain.extend_from_slice(&[0x42, 0x42]);
        plain.extend_from_slice(packets);
        plain.extend_from_slice(&[0xD3, 0x14]);
        let digest = Sha1::digest(&plain);
        plain.extend_from_slice(&digest);
        cfb_mode::Encryptor::<aes::Aes128>::new_from_slices(key, &[0u8; BLOCK])
            .unwrap()
            .encrypt(&mut plain);
        plain
    }

    /// A literal packet in the new format with the data split into partial pieces.
    fn literal(data: &[u8], piece_log2: Option<u8>) -> Vec<u8> {
        let mut body = vec![b'b', 4];
        body.extend_from_slice(b"name");
        body.extend_from_slice(&[0, 0, 0, 0]);
        body.extend_from_slice(data);
        let mut out = vec![0xC0 | LITERAL];
        let mut rest = &body[..];
        if let Some(p) = piece_log2 {
            let size = 1usize << p;
            while rest.len() > size {
                out.push(224 + p);
                out.extend_from_slice(&rest[..size]);
                rest = &rest[size..];
            }
        }
        out.push(255);
        out.extend_from_slice(&(rest.len() as u32).to_be_bytes());
        out.extend_from_slice(rest);
        out
    }

    /// Reads in pieces of `step` bytes, as packet readers hand data out.
    struct Pieces<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl std::io::Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.fill_buf()?.len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.consume(n);
            Ok(n)
        }
    }
    impl BufRead for Pieces<'_> {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            Ok(&self.data[..self.step.min(self.data.len())])
        }
        fn consume(&mut self, n: usize) {
            self.data = &self.data[n..];
        }
    }

    fn run(body: &[u8], step: usize, key: &[u8; 16]) -> Result<Vec<u8>, PgpError> {
        let mut out = Vec::new();
        let n = decrypt(&mut Pieces { data: body, step }, 7, key, &mut out)?;
        assert_eq!(n, out.len() as u64);
        Ok(out)
    }

    #[test]
    fn any_framing_and_any_piece_size_gives_the_data_back() {
        let key = [7u8; 16];
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        for piece in [None, Some(9), Some(10)] {
            let body = seal(&key, &literal(&data, piece));
            assert!(eligible(7, &key, &body));
            for step in [1, 5, 16, 17, 512, 4096, 1 << 20] {
                assert_eq!(run(&body, step, &key).unwrap(), data, "{piece:?} {step}");
            }
        }
        // Old format, four-byte length.
        let mut old = vec![0x80 | LITERAL << 2 | 2];
        old.extend_from_slice(&(data.len() as u32 + 10).to_be_bytes());
        old.extend_from_slice(&[b'b', 4, b'n', b'a', b'm', b'e', 0, 0, 0, 0]);
        old.extend_from_slice(&data);
        assert_eq!(run(&seal(&key, &old), 100, &key).unwrap(), data);
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let key = [9u8; 16];
        let body = seal(&key, &literal(b"hello, recording", None));
        for i in 0..body.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = body.clone();
                bad[i] ^= bit;
                assert!(run(&bad, 7, &key).is_err(), "byte {i} bit {bit:#x}");
            }
            assert!(run(&body[..i], 7, &key).is_err(), "cut at {i}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert!(run(&longer, 7, &key).is_err());
        assert!(run(&body, 3, &[8u8; 16]).is_err(), "wrong key");
    }

    #[test]
    fn messages_of_several_batches_hash_on_their_own_thread_and_still_check() {
        let key = [5u8; 16];
        let inline = crate::offthread::INLINE_BYTES as usize;
        let data: Vec<u8> = (0..(inline + 3 * BATCH + 12345) as u32)
            .map(|i| (i * 7 % 253) as u8)
            .collect();
        let body = seal(&key, &literal(&data, Some(16)));
        assert_eq!(run(&body, 8192, &key).unwrap(), data);
        assert_eq!(run(&body, 1 << 22, &key).unwrap(), data);
        // A bit flipped in the last batch, in the first, and the MDC cut off.
        for at in [body.len() - 100, 100, inline + 2 * BATCH + 7] {
            let mut bad = body.clone();
            bad[at] ^= 0x10;
            assert!(run(&bad, 8192, &key).is_err(), "flipped at {at}");
        }
        assert!(run(&body[..body.len() - MDC_LEN], 8192, &key).is_err());
    }

    #[test]
    fn what_the_lean_path_does_not_take_is_left_to_rpgp() {
        let key = [1u8; 16];
        // Compressed data (tag 8), a one-pass signature (tag 4), an indeterminate old
        // format length, a cipher other than AES, too little ciphertext to look at.
        for packets in [
            vec![0xC8, 3, 1, 2, 3],
            vec![0xC4, 13, 3, 0, 2, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            vec![0x80 | LITERAL << 2 | 3, b'b', 0, 0, 0, 0, 0, 1],
        ] {
            assert!(!eligible(7, &key, &seal(&key, &packets)));
        }
        let body = seal(&key, &literal(b"x", None));
        assert!(!eligible(3, &key, &body), "CAST5");
        assert!(!eligible(7, &key, &body[..20]));
        assert!(!eligible(9, &key, &body), "key size does not match");
    }

    #[test]
    fn data_after_the_literal_packet_is_refused() {
        let key = [2u8; 16];
        let mut packets = literal(b"abc", None);
        packets.extend_from_slice(&[0xC2, 1, 0]);
        assert!(matches!(
            run(&seal(&key, &packets), 64, &key),
            Err(PgpError::Integrity(_))
        ));
    }
}
