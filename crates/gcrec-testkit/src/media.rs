//! Media bodies with real container structure: an Ogg/Opus stream for calls and a ZIP
//! archive for screen and digital recordings. The payload is pseudo-random (so it does not
//! compress), but every container field, CRC and length is valid.

use crate::rng::Rng;

use gcrec_decrypt::detect::ogg_crc;

struct OggWriter {
    out: Vec<u8>,
    serial: u32,
    sequence: u32,
}

impl OggWriter {
    fn page(&mut self, packets: &[Vec<u8>], granule: u64, flags: u8) {
        let mut lacing = Vec::new();
        for p in packets {
            lacing.extend(std::iter::repeat_n(255u8, p.len() / 255));
            lacing.push((p.len() % 255) as u8);
        }
        assert!(lacing.len() <= 255, "too many segments for one Ogg page");
        let start = self.out.len();
        self.out.extend_from_slice(b"OggS");
        self.out.push(0); // version
        self.out.push(flags);
        self.out.extend_from_slice(&granule.to_le_bytes());
        self.out.extend_from_slice(&self.serial.to_le_bytes());
        self.out.extend_from_slice(&self.sequence.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]); // CRC, filled below
        self.out.push(lacing.len() as u8);
        self.out.extend_from_slice(&lacing);
        for p in packets {
            self.out.extend_from_slice(p);
        }
        let crc = ogg_crc(&self.out[start..]);
        self.out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
        self.sequence += 1;
    }
}

/// An Ogg/Opus stream of about `target` bytes: OpusHead and OpusTags headers, then
/// 20 ms CELT packets, 50 to a page, with correct granule positions and page CRCs.
pub fn ogg_opus(rng: &mut Rng, target: usize) -> Vec<u8> {
    ogg_opus_lasting(rng, target, None)
}

/// Like [`ogg_opus`], but whose granule positions say it plays `duration_ms` (the
/// payload is synthetic, so its length need not fit the duration): what a sidecar's
/// `durationMs` describes.
pub fn ogg_opus_lasting(rng: &mut Rng, target: usize, duration_ms: Option<u64>) -> Vec<u8> {
    const PRE_SKIP: u16 = 312;
    let mut w = OggWriter {
        out: Vec::with_capacity(target + 4096),
        serial: rng.next_u32(),
        sequence: 0,
    };
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(1); // channels
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0); // mapping family
    w.page(&[head], 0, 0x02);
    let mut tags = b"OpusTags".to_vec();
    let vendor = b"gcrec-testkit synthetic";
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes());
    w.page(&[tags], 0, 0);
    let Some(ms) = duration_ms else {
        let mut granule = u64::from(PRE_SKIP);
        loop {
            let packets: Vec<Vec<u8>> = (0..50)
                .map(|_| {
                    // TOC 0xF8: config 31 (CELT fullband 20 ms), mono, one frame.
                    let len = 60 + (rng.next_u32() % 100) as usize;
                    let mut p = vec![0xF8];
                    p.extend(rng.bytes(len));
                    p
                })
                .collect();
            granule += 960 * packets.len() as u64;
            let last = w.out.len() + packets.iter().map(Vec::len).sum::<usize>() >= target;
            w.page(&packets, granule, if last { 0x04 } else { 0 });
            if last {
                return w.out;
            }
        }
    };
    // As many 20 ms frames as the duration needs after the pre-skip, six to a packet
    // (code 3: TOC 0xFB, then the frame count), their payload sized to reach `target`;
    // the last page's granule position trims the end to exactly `ms`.
    const PACKETS_PER_PAGE: usize = 8;
    let frames = (ms * 48 + u64::from(PRE_SKIP)).div_ceil(960);
    let packets = frames.div_ceil(6);
    let per_frame = (target.saturating_sub(200) as u64 / packets.max(1)).saturating_sub(3) / 6;
    let per_frame = per_frame.min(1275) as usize;
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut segments = 0usize;
    let mut decoded = 0u64;
    let mut left = frames;
    while left > 0 {
        let m = left.min(6);
        left -= m;
        let mut p = vec![0xFB, m as u8];
        p.extend(rng.bytes(per_frame * m as usize));
        let lacing = p.len() / 255 + 1;
        // Pages of at most a second (opusinfo warns of muxing delay past that).
        if segments + lacing > 255 || pending.len() == PACKETS_PER_PAGE {
            w.page(&pending, decoded, 0);
            pending.clear();
            segments = 0;
        }
        segments += lacing;
        decoded += 960 * m;
        pending.push(p);
    }
    w.page(&pending, ms * 48 + u64::from(PRE_SKIP), 0x04);
    w.out
}

/// A ZIP archive (stored, no compression) holding `entries`.
pub fn zip(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    // 2024-03-01 00:00:00 in DOS date/time.
    const DOS_TIME: u16 = 0;
    const DOS_DATE: u16 = ((2024 - 1980) << 9) | (3 << 5) | 1;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let fields = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&20u16.to_le_bytes()); // version needed
            buf.extend_from_slice(&0u16.to_le_bytes()); // flags
            buf.extend_from_slice(&0u16.to_le_bytes()); // stored
            buf.extend_from_slice(&DOS_TIME.to_le_bytes());
            buf.extend_from_slice(&DOS_DATE.to_le_bytes());
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        fields(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        fields(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A screen recording: a ZIP holding a WebM-looking video of about `target` bytes.
pub fn screen_zip(rng: &mut Rng, target: usize) -> Vec<u8> {
    let mut video = vec![0x1A, 0x45, 0xDF, 0xA3]; // EBML magic
    video.extend(rng.bytes(target.saturating_sub(200)));
    zip(&[
        ("recording.webm", video),
        ("screen.json", br#"{"screens":1}"#.to_vec()),
    ])
}

/// A digital (chat, email, message) recording: a ZIP holding a JSON transcript.
pub fn transcript_zip(rng: &mut Rng, target: usize) -> Vec<u8> {
    let mut lines = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < target.saturating_sub(200) {
        let words = rng
            .bytes(24)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let line = format!(
            r#"{{"seq":{i},"from":"{}","text":"{words}"}}"#,
            if i % 2 == 0 { "customer" } else { "agent" }
        );
        size += line.len() + 1;
        lines.push(line);
        i += 1;
    }
    let transcript = format!("[{}]", lines.join(","));
    zip(&[("transcript.json", transcript.into_bytes())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ogg_crc_matches_the_reference_value() {
        // CRC-32/POSIX without its final XOR (0x765E7680 ^ 0xFFFFFFFF): libogg's CRC.
        assert_eq!(ogg_crc(b"123456789"), 0x89A1_897F);
    }

    #[test]
    fn opus_stream_starts_with_ogg_and_opus_head() {
        let mut rng = Rng::new(1);
        let data = ogg_opus(&mut rng, 10_000);
        assert!(data.len() >= 10_000);
        assert_eq!(&data[..4], b"OggS");
        assert_eq!(&data[28..36], b"OpusHead");
    }

    #[test]
    fn zip_starts_with_local_header() {
        let z = zip(&[("a.txt", b"hello".to_vec())]);
        assert_eq!(&z[..4], b"PK\x03\x04");
        assert_eq!(&z[z.len() - 22..z.len() - 18], b"PK\x05\x06");
    }
}
