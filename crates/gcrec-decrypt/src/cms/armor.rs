//! The three ways a CMS message is written: binary BER/DER, PEM (`-----BEGIN CMS-----`
//! or `PKCS7`), and S/MIME (MIME headers, then the message in base64). The text forms
//! are decoded as a stream (the `base64` crate's reader behind a filter that drops line
//! breaks and stops at the PEM end line), never read whole.

use std::io::{BufRead, Read};

use base64::engine::general_purpose::STANDARD;

use super::CmsError;

/// How a CMS message is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Binary BER or DER.
    Der,
    /// PEM armor.
    Pem,
    /// An S/MIME entity (`application/pkcs7-mime`).
    Smime,
}

impl Encoding {
    /// A short name: `der`, `pem`, `smime`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Der => "der",
            Encoding::Pem => "pem",
            Encoding::Smime => "smime",
        }
    }
}

/// `envelopedData` (1.2.840.113549.1.7.3), DER content bytes.
pub const OID_ENVELOPED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
/// `id-ct-authEnvelopedData` (1.2.840.113549.1.9.16.1.23).
pub const OID_AUTH_ENVELOPED: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
];

const PEM_LABELS: [&str; 2] = ["CMS", "PKCS7"];

fn skip_space(head: &[u8]) -> &[u8] {
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    &head[start..]
}

/// Tells a CMS encrypted message from its first bytes: a SEQUENCE whose first element is
/// the envelopedData or authEnvelopedData OID, PEM armor with a CMS label, or MIME
/// headers (which are confirmed as `application/pkcs7-mime` when the message is read).
pub fn sniff(head: &[u8]) -> Option<Encoding> {
    if head.first() == Some(&0x30) {
        // SEQUENCE header (any length form), then the OID.
        let h = super::ber::parse_header(head).ok().flatten()?;
        let after = head.get(h.header_len as usize..)?;
        let oid = super::ber::parse_header(after).ok().flatten()?;
        if !oid.is(super::ber::tag::OID) {
            return None;
        }
        let body = after.get(oid.header_len as usize..)?;
        return [OID_ENVELOPED, OID_AUTH_ENVELOPED]
            .iter()
            .any(|o| oid.len == super::ber::Len::Definite(o.len() as u64) && body.starts_with(o))
            .then_some(Encoding::Der);
    }
    let text = skip_space(head);
    if PEM_LABELS
        .iter()
        .any(|l| text.starts_with(format!("-----BEGIN {l}-----").as_bytes()))
    {
        return Some(Encoding::Pem);
    }
    // Every object that is not DER or PEM passes here (media included): decide on the
    // first header's name before anything is copied or scanned.
    let mime = ["mime-version:", "content-type:", "content-disposition:"]
        .iter()
        .any(|h| {
            text.get(..h.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(h.as_bytes()))
        });
    if !mime {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let pkcs7 =
        lower.windows(10).any(|w| w == b"pkcs7-mime") || lower.windows(4).any(|w| w == b".p7m");
    (pkcs7 || lower.len() < 64).then_some(Encoding::Smime)
}

/// The longest header or armor line read.
const MAX_LINE: usize = 8 * 1024;
/// The most S/MIME header bytes read.
const MAX_HEADERS: usize = 64 * 1024;

fn line(reader: &mut dyn BufRead, budget: &mut usize) -> Result<Option<String>, CmsError> {
    let mut buf = Vec::new();
    let n = reader
        .take((MAX_LINE + 1) as u64)
        .read_until(b'\n', &mut buf)
        .map_err(CmsError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if n > MAX_LINE || n > *budget {
        return Err(CmsError::Malformed("a header line is too long"));
    }
    *budget -= n;
    Ok(Some(String::from_utf8_lossy(&buf).trim_end().to_owned()))
}

/// Drops line breaks and white space from a base64 body, and ends it at the first `-`
/// (a PEM end line).
struct Base64Body<'a> {
    inner: &'a mut dyn BufRead,
    done: bool,
}

impl Read for Base64Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < out.len() && !self.done {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                self.done = true;
                break;
            }
            let mut used = 0;
            for &b in buf {
                if n == out.len() {
                    break;
                }
                used += 1;
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => {
                        out[n] = b;
                        n += 1;
                    }
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    b'-' => {
                        used -= 1;
                        self.done = true;
                        break;
                    }
                    _ => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "a character that is not base64 in the message body",
                        ));
                    }
                }
            }
            self.inner.consume(used);
        }
        Ok(n)
    }
}

/// The message's BER bytes: `reader` itself for binary, else a streaming base64 decoder
/// positioned after the PEM begin line or the S/MIME headers.
pub fn open<'a>(
    reader: &'a mut dyn BufRead,
    encoding: Encoding,
) -> Result<Box<dyn Read + 'a>, CmsError> {
    match encoding {
        Encoding::Der => Ok(Box::new(reader)),
        Encoding::Pem => {
            let mut budget = MAX_HEADERS;
            loop {
                let Some(l) = line(reader, &mut budget)? else {
                    return Err(CmsError::Malformed("no PEM begin line"));
                };
                let l = l.trim();
                if PEM_LABELS
                    .iter()
                    .any(|label| l == format!("-----BEGIN {label}-----"))
                {
                    break;
                }
                if !l.is_empty() {
                    return Err(CmsError::Malformed("text before the PEM begin line"));
                }
            }
            Ok(Box::new(base64::read::DecoderReader::new(
                Base64Body {
                    inner: reader,
                    done: false,
                },
                &STANDARD,
            )))
        }
        Encoding::Smime => {
            let mut budget = MAX_HEADERS;
            let mut headers: Vec<String> = Vec::new();
            loop {
                let Some(l) = line(reader, &mut budget)? else {
                    return Err(CmsError::Malformed("S/MIME headers without a body"));
                };
                if l.is_empty() {
                    break;
                }
                match (l.starts_with([' ', '\t']), headers.last_mut()) {
                    (true, Some(last)) => {
                        last.push(' ');
                        last.push_str(l.trim());
                    }
                    _ => headers.push(l),
                }
            }
            let field = |name: &str| {
                headers.iter().find_map(|h| {
                    let (k, v) = h.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_ascii_lowercase())
                })
            };
            let content_type = field("content-type").unwrap_or_default();
            if !content_type.contains("pkcs7-mime") {
                return Err(CmsError::NotSmime(content_type.chars().take(80).collect()));
            }
            match field("content-transfer-encoding").as_deref() {
                None | Some("base64") => Ok(Box::new(base64::read::DecoderReader::new(
                    Base64Body {
                        inner: reader,
                        done: false,
                    },
                    &STANDARD,
                ))),
                Some("binary") => Ok(Box::new(reader)),
                Some(_) => Err(CmsError::Malformed(
                    "S/MIME transfer encoding other than base64 or binary",
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_told_from_their_first_bytes() {
        let mut der = vec![0x30, 0x80, 0x06, 0x09];
        der.extend_from_slice(OID_ENVELOPED);
        assert_eq!(sniff(&der), Some(Encoding::Der));
        let mut auth = vec![0x30, 0x83, 0x01, 0x00, 0x00, 0x06, 0x0b];
        auth.extend_from_slice(OID_AUTH_ENVELOPED);
        assert_eq!(sniff(&auth), Some(Encoding::Der));
        // signedData is CMS but not encrypted.
        let signed = [
            0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
        ];
        assert_eq!(sniff(&signed), None);
        assert_eq!(sniff(b"-----BEGIN CMS-----\nMIA"), Some(Encoding::Pem));
        assert_eq!(
            sniff(b"\n-----BEGIN PKCS7-----\r\nMIA"),
            Some(Encoding::Pem)
        );
        assert_eq!(
            sniff(b"MIME-Version: 1.0\nContent-Disposition: attachment; filename=\"smime.p7m\"\n"),
            Some(Encoding::Smime)
        );
        assert_eq!(sniff(b"OggS"), None);
        // Header names in any case; a short head of headers alone; other text is not.
        assert_eq!(
            sniff(b"content-TYPE: application/PKCS7-MIME; smime-type=enveloped-data\n"),
            Some(Encoding::Smime)
        );
        assert_eq!(sniff(b"Mime-Version: 1.0\n"), Some(Encoding::Smime));
        assert_eq!(sniff(b"Content-Typ"), None);
        assert_eq!(sniff(&[b'x'; 40_000]), None);
    }

    #[test]
    fn pem_and_smime_bodies_decode_as_a_stream() {
        let pem = b"-----BEGIN CMS-----\naGVs\nbG8=\n-----END CMS-----\n";
        let mut r: &[u8] = pem;
        let mut out = Vec::new();
        open(&mut r, Encoding::Pem)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        let smime = b"MIME-Version: 1.0\nContent-Type: application/pkcs7-mime;\n smime-type=enveloped-data\nContent-Transfer-Encoding: base64\n\naGVs\nbG8=\n\n";
        let mut r: &[u8] = smime;
        let mut out = Vec::new();
        open(&mut r, Encoding::Smime)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        let mut r: &[u8] = b"Content-Type: text/plain\n\nhi";
        assert!(matches!(
            open(&mut r, Encoding::Smime),
            Err(CmsError::NotSmime(_))
        ));
        let mut r: &[u8] = b"-----BEGIN CMS-----\naGV*\n";
        let mut out = Vec::new();
        assert!(
            open(&mut r, Encoding::Pem)
                .unwrap()
                .read_to_end(&mut out)
                .is_err()
        );
    }
}
