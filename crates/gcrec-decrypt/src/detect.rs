//! Which container an object is: OpenPGP, an S3 Encryption Client envelope, CMS, or
//! plain media that passes through untouched.
//!
//! The object's user metadata (or its `.instruction` file) is checked first: S3EC
//! ciphertext is indistinguishable from noise, so its envelope is the only sign. Then
//! the first bytes: OpenPGP packets or armor, CMS (DER, PEM, S/MIME), then media magic
//! numbers. Anything else
//! is an error that shows the bytes and names what is supported.

use std::collections::BTreeMap;
use std::fmt;

use crate::envelope::{Envelope, EnvelopeError};

/// How many leading bytes [`detect`] wants to see (it copes with fewer).
pub const SNIFF_LEN: usize = 64;

/// Plain media kinds that pass through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Ogg (`OggS`): call audio in Ogg/Opus.
    Ogg,
    /// ZIP (`PK\x03\x04`): screen and digital recordings.
    Zip,
    /// JSON: transcripts.
    Json,
    /// RIFF/WAVE audio.
    Wav,
    /// MP3 audio.
    Mp3,
    /// WebM/Matroska video.
    WebM,
}

impl MediaKind {
    /// A short name.
    pub fn as_str(&self) -> &'static str {
        match self {
            MediaKind::Ogg => "ogg",
            MediaKind::Zip => "zip",
            MediaKind::Json => "json",
            MediaKind::Wav => "wav",
            MediaKind::Mp3 => "mp3",
            MediaKind::WebM => "webm",
        }
    }
}

/// What an object is.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// Unencrypted media.
    Plain(MediaKind),
    /// An OpenPGP message.
    OpenPgp {
        /// ASCII armor rather than binary packets.
        armored: bool,
    },
    /// An Amazon S3 Encryption Client object.
    S3ec(Box<Envelope>),
    /// A CMS (PKCS#7) EnvelopedData or AuthEnvelopedData message.
    Cms(crate::cms::Encoding),
    /// An AWS Encryption SDK message, its header read.
    Esdk(Box<crate::esdk::Header>),
}

impl Format {
    /// The check that authenticates every byte of the content when it decrypts, as named
    /// in a manifest's `checked` list: `openpgp-integrity` (the MDC of SEIPDv1 or the
    /// AEAD tags of SEIPDv2; unprotected SED packets are refused), `s3ec-gcm-tag`.
    /// `None` for plain media and AES-CBC (legacy V1) envelopes, and for CMS, whose
    /// cipher is known only once its header is read (the decryption's
    /// [`crate::object::Outcome`] says).
    pub fn authenticated_by(&self) -> Option<&'static str> {
        use crate::envelope::ContentCipher;
        match self {
            Format::Plain(_) | Format::Cms(_) => None,
            Format::Esdk(_) => Some("esdk-gcm-tags"),
            Format::OpenPgp { .. } => Some("openpgp-integrity"),
            Format::S3ec(e) => match e.content {
                ContentCipher::AesGcm | ContentCipher::AesGcmCommitting => Some("s3ec-gcm-tag"),
                ContentCipher::AesCbc => None,
            },
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Plain(kind) => write!(f, "plain {}", kind.as_str()),
            Format::OpenPgp { armored: true } => f.write_str("openpgp (armored)"),
            Format::OpenPgp { armored: false } => f.write_str("openpgp"),
            Format::S3ec(e) => write!(f, "{}", e.describe()),
            Format::Cms(encoding) => write!(f, "cms ({})", encoding.as_str()),
            Format::Esdk(header) => f.write_str(&header.describe()),
        }
    }
}

/// Why an object's format could not be told.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// Nothing recognizable.
    #[error(
        "unrecognized content (first bytes: {first_bytes}); gcrec reads OpenPGP messages (binary or armored), Amazon S3 Encryption Client objects (envelope in x-amz-meta-* metadata or a .instruction file), CMS EnvelopedData and AuthEnvelopedData (DER, PEM or S/MIME), AWS Encryption SDK messages and plain Ogg, ZIP, JSON, WAV, MP3 and WebM media"
    )]
    Unknown {
        /// Up to 16 leading bytes, in hex.
        first_bytes: String,
    },
    /// S3EC metadata is present but unusable.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// An AWS Encryption SDK header that cannot be read.
    #[error("AWS Encryption SDK: {0}")]
    Esdk(#[from] crate::esdk::EsdkError),
}

/// Whether `head` begins an AWS Encryption SDK header that is not complete yet: the
/// caller reads more of the object (up to [`crate::esdk::MAX_HEADER`]) before
/// [`detect`], which needs the whole header.
pub fn wants_more(head: &[u8]) -> bool {
    crate::esdk::sniff(head) && matches!(crate::esdk::parse_header(head), Ok(None))
}

fn openpgp_binary(head: &[u8]) -> bool {
    let Some(&b) = head.first() else {
        return false;
    };
    if b & 0x80 == 0 {
        return false;
    }
    let tag = if b & 0x40 != 0 {
        b & 0x3f
    } else {
        (b >> 2) & 0x0f
    };
    // Public-key or symmetric-key encrypted session key: the start of an encrypted message.
    matches!(tag, 1 | 3)
}

fn skip_bom_and_space(head: &[u8]) -> &[u8] {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    &head[start..]
}

/// The Ogg page CRC (RFC 3533): polynomial 0x04C11DB7, not reflected, initial value 0,
/// no final XOR — CRC-32/MPEG-2 started from 0 instead of `0xFFFFFFFF`. Computed with
/// `crc-fast` (carry-less multiplication): every byte of an Opus recording passes through
/// it, and the `crc` crate's slice-by-16 tables cost about 0.15 CPU s per GiB (`perf`,
/// 1.4 % of a 340-recording pull) where this costs a tenth of that.
fn ogg_digest() -> crc_fast::Digest {
    crc_fast::Digest::new_with_init_state(crc_fast::CrcAlgorithm::Crc32Mpeg2, 0)
}

/// The Ogg CRC of `data` as it is.
pub fn ogg_crc(data: &[u8]) -> u32 {
    let mut digest = ogg_digest();
    digest.update(data);
    digest.finalize() as u32
}

/// The CRC a whole Ogg page should carry: computed with its CRC field (bytes 22–25)
/// taken as zero.
pub fn ogg_page_crc(page: &[u8]) -> u32 {
    let mut digest = ogg_digest();
    digest.update(&page[..22.min(page.len())]);
    if page.len() >= 26 {
        digest.update(&[0; 4]);
        digest.update(&page[26..]);
    }
    digest.finalize() as u32
}

/// Plain media by magic number.
pub fn media_kind(head: &[u8]) -> Option<MediaKind> {
    if head.starts_with(b"OggS") {
        Some(MediaKind::Ogg)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(MediaKind::Zip)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        Some(MediaKind::Wav)
    } else if head.starts_with(b"ID3")
        || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
    {
        Some(MediaKind::Mp3)
    } else if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some(MediaKind::WebM)
    } else if matches!(skip_bom_and_space(head).first(), Some(b'{' | b'[')) {
        Some(MediaKind::Json)
    } else {
        None
    }
}

/// Tells the format from the object's user metadata (keys without the `x-amz-meta-`
/// prefix, lower-case), its instruction file if it has one, and its first bytes.
pub fn detect(
    head: &[u8],
    user_metadata: &BTreeMap<String, String>,
    instruction: Option<&[u8]>,
) -> Result<Format, DetectError> {
    if let Some(envelope) = Envelope::from_metadata(user_metadata, instruction)? {
        return Ok(Format::S3ec(Box::new(envelope)));
    }
    if openpgp_binary(head) {
        return Ok(Format::OpenPgp { armored: false });
    }
    if skip_bom_and_space(head).starts_with(b"-----BEGIN PGP MESSAGE-----") {
        return Ok(Format::OpenPgp { armored: true });
    }
    if let Some(encoding) = crate::cms::armor::sniff(head) {
        return Ok(Format::Cms(encoding));
    }
    if crate::esdk::sniff(head) {
        return match crate::esdk::parse_header(head)? {
            Some(header) => Ok(Format::Esdk(Box::new(header))),
            None => Err(crate::esdk::EsdkError::Truncated.into()),
        };
    }
    if let Some(kind) = media_kind(head) {
        return Ok(Format::Plain(kind));
    }
    let first: Vec<String> = head.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Err(DetectError::Unknown {
        first_bytes: if first.is_empty() {
            "none: the object is empty".into()
        } else {
            first.join(" ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ogg CRC bit by bit, as RFC 3533 defines it.
    fn ogg_crc_bitwise(data: &[u8]) -> u32 {
        let mut crc = 0u32;
        for &byte in data {
            crc ^= u32::from(byte) << 24;
            for _ in 0..8 {
                crc = if crc & 0x8000_0000 != 0 {
                    (crc << 1) ^ 0x04C1_1DB7
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    #[test]
    fn ogg_crc_is_the_rfc_3533_crc_at_every_length() {
        assert_eq!(ogg_crc(b"123456789"), 0x89A1_897F);
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        // Below, at and past the SIMD paths' block sizes, and a page's usual sizes.
        for len in [
            0, 1, 15, 16, 17, 63, 64, 255, 256, 257, 4095, 4096, 65_307, 70_000,
        ] {
            assert_eq!(
                ogg_crc(&data[..len]),
                ogg_crc_bitwise(&data[..len]),
                "{len} bytes"
            );
        }
        let mut page = data[..5000].to_vec();
        let want = ogg_crc_bitwise(&{
            let mut zeroed = page.clone();
            zeroed[22..26].fill(0);
            zeroed
        });
        page[22..26].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(ogg_page_crc(&page), want);
    }

    fn d(head: &[u8]) -> Result<Format, DetectError> {
        detect(head, &BTreeMap::new(), None)
    }

    #[test]
    fn openpgp_first_bytes_seen_from_real_tools() {
        // gpg RSA, gpg Curve25519, sq, sq RSA (from notes/encryption-formats.md)
        for head in [
            &[0x85, 0x01, 0x8C, 0x03][..],
            &[0x84, 0x5E, 0x03],
            &[0xC1, 0x5E, 0x03],
            &[0xC1, 0xC0, 0xCC, 0x03],
            &[0x8C, 0x0D],
        ] {
            assert_eq!(
                d(head).unwrap(),
                Format::OpenPgp { armored: false },
                "{head:02x?}"
            );
        }
        assert_eq!(
            d(b"\n-----BEGIN PGP MESSAGE-----\n\nhQ").unwrap(),
            Format::OpenPgp { armored: true }
        );
        // A literal-data packet (tag 11) is not an encrypted message.
        assert!(d(&[0xCB, 0x0D, 0x62]).is_err());
    }

    #[test]
    fn media_magic_numbers() {
        assert_eq!(d(b"OggS\0\x02").unwrap(), Format::Plain(MediaKind::Ogg));
        assert_eq!(
            d(b"PK\x03\x04\x14\0").unwrap(),
            Format::Plain(MediaKind::Zip)
        );
        assert_eq!(
            d(b"\xEF\xBB\xBF  {\"a\":1}").unwrap(),
            Format::Plain(MediaKind::Json)
        );
        assert_eq!(
            d(b"RIFF\x24\0\0\0WAVEfmt ").unwrap(),
            Format::Plain(MediaKind::Wav)
        );
        assert_eq!(d(b"ID3\x04").unwrap(), Format::Plain(MediaKind::Mp3));
        assert_eq!(
            d(&[0xFF, 0xFB, 0x90]).unwrap(),
            Format::Plain(MediaKind::Mp3)
        );
        assert_eq!(
            d(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]).unwrap(),
            Format::Plain(MediaKind::WebM)
        );
    }

    #[test]
    fn unknown_content_shows_sixteen_bytes_and_the_supported_formats() {
        let err = d(&(0u8..40).collect::<Vec<_>>()).unwrap_err().to_string();
        assert!(
            err.contains("00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f)"),
            "{err}"
        );
        assert!(!err.contains(" 10"), "{err}");
        assert!(
            err.contains("OpenPGP") && err.contains("S3 Encryption Client") && err.contains("Ogg")
        );
        assert!(d(b"").unwrap_err().to_string().contains("empty"));
    }
}
