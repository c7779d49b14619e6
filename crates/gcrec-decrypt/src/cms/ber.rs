//! Just enough BER to walk a CMS message: identifiers and lengths (definite and
//! indefinite) read from a stream, small elements read whole (with a size cap), and a
//! slice parser for what was read whole.
//!
//! Hand-written because the DER crates (`der`, `cms`) refuse the indefinite lengths that
//! `openssl cms -stream` writes and read whole messages into memory; a CMS message's
//! content can be gigabytes and must stream.

use std::io::Read;

/// Tag classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Universal (SEQUENCE, OCTET STRING, …).
    Universal,
    /// Application.
    Application,
    /// Context-specific (`[0]`, `[1]`, …).
    Context,
    /// Private.
    Private,
}

/// A length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    /// This many content bytes.
    Definite(u64),
    /// Content ends with an end-of-contents marker (`00 00`).
    Indefinite,
}

/// An identifier and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The class.
    pub class: Class,
    /// Constructed (holds elements) rather than primitive.
    pub constructed: bool,
    /// The tag number.
    pub tag: u32,
    /// The length.
    pub len: Len,
    /// How many bytes the identifier and length took.
    pub header_len: u64,
}

/// Universal tag numbers used here.
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u32 = 2;
    /// OCTET STRING.
    pub const OCTET_STRING: u32 = 4;
    /// NULL.
    pub const NULL: u32 = 5;
    /// OBJECT IDENTIFIER.
    pub const OID: u32 = 6;
    /// SEQUENCE.
    pub const SEQUENCE: u32 = 16;
    /// SET.
    pub const SET: u32 = 17;
}

impl Header {
    /// Whether this is the universal element with this tag number.
    pub fn is(&self, tag: u32) -> bool {
        self.class == Class::Universal && self.tag == tag
    }

    /// Whether this is the context-specific `[n]`.
    pub fn is_context(&self, n: u32) -> bool {
        self.class == Class::Context && self.tag == n
    }

    /// Whether this is an end-of-contents marker.
    pub fn is_end_of_contents(&self) -> bool {
        self.class == Class::Universal
            && self.tag == 0
            && !self.constructed
            && self.len == Len::Definite(0)
    }
}

/// Malformed BER.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    /// The input ended inside an element.
    #[error("the message ends inside an ASN.1 element (truncated)")]
    Truncated,
    /// Something no encoder writes.
    #[error("malformed ASN.1: {0}")]
    Malformed(&'static str),
    /// An element larger than gcrec reads whole.
    #[error("an ASN.1 element of {0} bytes is larger than gcrec reads for a message header")]
    TooLarge(u64),
}

/// Parses an identifier and length from the start of `bytes`; `Ok(None)` when more
/// bytes are needed.
pub fn parse_header(bytes: &[u8]) -> Result<Option<Header>, BerError> {
    let mut at = 0usize;
    let next = |at: &mut usize| -> Option<u8> {
        let b = bytes.get(*at).copied();
        *at += 1;
        b
    };
    let Some(first) = next(&mut at) else {
        return Ok(None);
    };
    let class = match first >> 6 {
        0 => Class::Universal,
        1 => Class::Application,
        2 => Class::Context,
        _ => Class::Private,
    };
    let constructed = first & 0x20 != 0;
    let mut tag = u32::from(first & 0x1f);
    if tag == 0x1f {
        tag = 0;
        for i in 0.. {
            let Some(b) = next(&mut at) else {
                return Ok(None);
            };
            if i >= 4 {
                return Err(BerError::Malformed("tag number too large"));
            }
            tag = (tag << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let Some(l) = next(&mut at) else {
        return Ok(None);
    };
    let len = if l & 0x80 == 0 {
        Len::Definite(u64::from(l))
    } else if l == 0x80 {
        if !constructed {
            return Err(BerError::Malformed(
                "indefinite length on a primitive element",
            ));
        }
        Len::Indefinite
    } else {
        let n = usize::from(l & 0x7f);
        if n > 8 {
            return Err(BerError::Malformed("length of more than 8 bytes"));
        }
        let mut v = 0u64;
        for _ in 0..n {
            let Some(b) = next(&mut at) else {
                return Ok(None);
            };
            v = (v << 8) | u64::from(b);
        }
        Len::Definite(v)
    };
    Ok(Some(Header {
        class,
        constructed,
        tag,
        len,
        header_len: at as u64,
    }))
}

/// A reader that counts what it has consumed, so definite lengths can be checked.
pub struct Counted<R> {
    inner: R,
    /// Bytes consumed so far.
    pub pos: u64,
}

impl<R: Read> Counted<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        Self { inner, pos: 0 }
    }

    /// Reads exactly `buf.len()` bytes.
    pub fn exact(&mut self, buf: &mut [u8]) -> Result<(), StreamError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => return Err(BerError::Truncated.into()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamError::Io(e)),
            }
        }
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Reads up to `buf.len()` bytes (0 only at the end of the input).
    pub fn some(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamError::Io(e)),
            }
        }
    }

    /// Reads one identifier and length; `Ok(None)` at a clean end of input.
    pub fn header(&mut self) -> Result<Option<(Header, Vec<u8>)>, StreamError> {
        let mut raw = Vec::with_capacity(12);
        loop {
            if let Some(h) = parse_header(&raw)? {
                return Ok(Some((h, raw)));
            }
            if raw.len() >= 16 {
                return Err(BerError::Malformed("identifier or length too long").into());
            }
            let mut b = [0u8; 1];
            if self.some(&mut b)? == 0 {
                return if raw.is_empty() {
                    Ok(None)
                } else {
                    Err(BerError::Truncated.into())
                };
            }
            raw.push(b[0]);
        }
    }

    /// Reads one identifier and length; the input may not end here.
    pub fn expect_header(&mut self) -> Result<(Header, Vec<u8>), StreamError> {
        self.header()?.ok_or(StreamError::Ber(BerError::Truncated))
    }

    /// Reads the rest of an element whose header was read, appending its content
    /// (nested elements and end-of-contents included, as encoded) to `out`, up to
    /// `max` bytes in all.
    pub fn rest_of(
        &mut self,
        header: &Header,
        out: &mut Vec<u8>,
        max: u64,
        depth: u32,
    ) -> Result<(), StreamError> {
        if depth > MAX_DEPTH {
            return Err(BerError::Malformed("elements nested too deeply").into());
        }
        match header.len {
            Len::Definite(n) => {
                if out.len() as u64 + n > max {
                    return Err(BerError::TooLarge(out.len() as u64 + n).into());
                }
                let start = out.len();
                out.resize(start + n as usize, 0);
                self.exact(&mut out[start..])
            }
            Len::Indefinite => loop {
                let (h, raw) = self.expect_header()?;
                if out.len() as u64 + raw.len() as u64 > max {
                    return Err(BerError::TooLarge(out.len() as u64 + raw.len() as u64).into());
                }
                out.extend_from_slice(&raw);
                if h.is_end_of_contents() {
                    return Ok(());
                }
                self.rest_of(&h, out, max, depth + 1)?;
            },
        }
    }

    /// Reads one whole element (header and content) of at most `max` bytes.
    pub fn element(&mut self, max: u64) -> Result<(Header, Vec<u8>), StreamError> {
        let (h, mut raw) = self.expect_header()?;
        self.rest_of(&h, &mut raw, max, 0)?;
        Ok((h, raw))
    }

    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// How deeply elements may nest (CMS needs about a dozen levels).
pub const MAX_DEPTH: u32 = 32;

/// A failure while reading BER from a stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Malformed input.
    #[error(transparent)]
    Ber(#[from] BerError),
    /// Reading failed.
    #[error("I/O: {0}")]
    Io(std::io::Error),
}

/// One element parsed from bytes held in memory.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// Its header.
    pub header: Header,
    /// Its content (for an indefinite length, without the end-of-contents marker).
    pub content: &'a [u8],
    /// The whole encoding, header included.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Parses the element at the start of `bytes`; returns it and what follows.
    pub fn parse(bytes: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), BerError> {
        Self::parse_at(bytes, 0)
    }

    fn parse_at(bytes: &'a [u8], depth: u32) -> Result<(Tlv<'a>, &'a [u8]), BerError> {
        if depth > MAX_DEPTH {
            return Err(BerError::Malformed("elements nested too deeply"));
        }
        let header = parse_header(bytes)?.ok_or(BerError::Truncated)?;
        let start = header.header_len as usize;
        match header.len {
            Len::Definite(n) => {
                let end = usize::try_from(n)
                    .ok()
                    .and_then(|n| start.checked_add(n))
                    .filter(|&e| e <= bytes.len())
                    .ok_or(BerError::Truncated)?;
                Ok((
                    Tlv {
                        header,
                        content: &bytes[start..end],
                        raw: &bytes[..end],
                    },
                    &bytes[end..],
                ))
            }
            Len::Indefinite => {
                let mut rest = &bytes[start..];
                loop {
                    let (child, after) = Tlv::parse_at(rest, depth + 1)?;
                    if child.header.is_end_of_contents() {
                        let content_end = bytes.len() - rest.len();
                        let end = bytes.len() - after.len();
                        return Ok((
                            Tlv {
                                header,
                                content: &bytes[start..content_end],
                                raw: &bytes[..end],
                            },
                            after,
                        ));
                    }
                    rest = after;
                }
            }
        }
    }

    /// The elements inside a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, BerError> {
        if !self.header.constructed {
            return Err(BerError::Malformed("expected a constructed element"));
        }
        let mut out = Vec::new();
        let mut rest = self.content;
        while !rest.is_empty() {
            let (child, after) = Tlv::parse(rest)?;
            out.push(child);
            rest = after;
        }
        Ok(out)
    }

    /// The bytes of an OCTET STRING, primitive or constructed (segments joined).
    pub fn octets(&self) -> Result<Vec<u8>, BerError> {
        if !self.header.constructed {
            return Ok(self.content.to_vec());
        }
        let mut out = Vec::new();
        for child in self.children()? {
            out.extend(child.octets()?);
        }
        Ok(out)
    }
}

/// The dotted form of an OID's content bytes, e.g. `1.2.840.113549.1.7.3`.
pub fn oid_string(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v = 0u64;
    for &b in content {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        }
        if v > u64::MAX >> 8 {
            return "(malformed OID)".into();
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_every_form() {
        let h = parse_header(&[0x30, 0x80]).unwrap().unwrap();
        assert_eq!((h.tag, h.constructed, h.len), (16, true, Len::Indefinite));
        let h = parse_header(&[0x04, 0x82, 0x10, 0x00]).unwrap().unwrap();
        assert_eq!((h.len, h.header_len), (Len::Definite(4096), 4));
        let h = parse_header(&[0xA0, 0x03]).unwrap().unwrap();
        assert!(h.is_context(0));
        let h = parse_header(&[0x9f, 0x81, 0x00, 0x00]).unwrap().unwrap();
        assert_eq!((h.tag, h.class), (128, Class::Context));
        assert!(parse_header(&[0x30]).unwrap().is_none());
        assert!(parse_header(&[0x04, 0x80]).is_err());
        assert!(parse_header(&[0x04, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
        assert!(parse_header(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00]).is_err());
    }

    #[test]
    fn indefinite_elements_in_memory_and_from_a_stream() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" } }
        let bytes = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x00,
            0x00, 0xff,
        ];
        let (tlv, rest) = Tlv::parse(&bytes).unwrap();
        assert_eq!(rest, &[0xff]);
        assert_eq!(tlv.children().unwrap()[0].octets().unwrap(), b"abc");
        let mut r = Counted::new(&bytes[..]);
        let (_, raw) = r.element(1024).unwrap();
        assert_eq!(raw, &bytes[..15]);
        assert_eq!(r.pos, 15);
        let mut r = Counted::new(&bytes[..]);
        assert!(matches!(
            r.element(8),
            Err(StreamError::Ber(BerError::TooLarge(_)))
        ));
        let mut r = Counted::new(&bytes[..10]);
        assert!(matches!(
            r.element(1024),
            Err(StreamError::Ber(BerError::Truncated))
        ));
    }

    #[test]
    fn hostile_nesting_and_lengths_are_errors_not_panics() {
        let deep: Vec<u8> = std::iter::repeat_n([0x30, 0x80], 100).flatten().collect();
        assert!(Tlv::parse(&deep).is_err());
        assert!(Counted::new(&deep[..]).element(1 << 20).is_err());
        assert!(Tlv::parse(&[0x04, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03]),
            "1.2.840.113549.1.7.3"
        );
    }
}
