//! Renditions: Ogg/Opus natives decoded to 16-bit PCM WAV at 48 kHz, the rate Opus
//! decodes at (no resampling in gcrec), with the stream's channels (mapping family 0:
//! mono or stereo).
//!
//! Decoding is libopus through the `opus` crate (the `wav` feature, on by default); the
//! Ogg packets come from the `ogg` crate (page CRCs checked) and the WAV file is written
//! by `hound`. As `opusdec` does, the header's pre-skip is dropped, the end is trimmed to
//! the last page's granule position and the header's output gain is given to the
//! decoder. Samples equal `opusdec --rate 48000 --no-dither`'s (opusdec decodes to float
//! and rounds; libopus's 16-bit output rounds the same float, so they may differ by one
//! LSB); tests/it/production.rs checks it on `opusenc` files.
//!
//! The native is outside input: the WAV may not grow past what the last granule
//! position announces (plus one second) — a hostile stream of tiny packets cannot fill
//! the disk.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::register::FileRow;
use super::{hash_file, manifest};
use crate::release::PendingFile;

/// The rate renditions are written at.
pub const RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz.
const MAX_PACKET_SAMPLES: usize = 5760;

/// The OpusHead fields a rendition needs.
#[derive(Debug)]
struct Header {
    channels: usize,
    pre_skip: u64,
    /// Output gain, Q7.8 dB.
    #[cfg_attr(not(feature = "wav"), allow(dead_code))]
    gain_q8: i16,
}

/// Reads the OpusHead packet (RFC 7845 §5.1).
fn opus_head(data: &[u8]) -> Result<Header, String> {
    if data.len() < 19 || &data[..8] != b"OpusHead" {
        return Err("the first packet is not an OpusHead".into());
    }
    if data[8] >> 4 != 0 {
        return Err(format!("OpusHead version {} is not read", data[8]));
    }
    let channels = usize::from(data[9]);
    let family = data[18];
    if family != 0 || !(1..=2).contains(&channels) {
        return Err(format!(
            "channel mapping family {family} with {channels} channels is not rendered (mono and stereo are)"
        ));
    }
    Ok(Header {
        channels,
        pre_skip: u64::from(u16::from_le_bytes([data[10], data[11]])),
        gain_q8: i16::from_le_bytes([data[16], data[17]]),
    })
}

/// The granule position of the last Ogg page in the file (its last 64 KiB hold it).
fn last_granule(path: &Path) -> io::Result<Option<u64>> {
    let mut file = manifest::open_no_follow(path)?;
    let len = file.metadata()?.len();
    let from = len.saturating_sub(65_536 + 27);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.take(65_536 + 27).read_to_end(&mut tail)?;
    Ok(tail
        .windows(4)
        .enumerate()
        .rev()
        .filter(|(i, w)| *w == b"OggS" && i + 27 <= tail.len())
        .map(|(i, _)| u64::from_le_bytes(tail[i + 6..i + 14].try_into().unwrap_or([0; 8])))
        .next())
}

/// Whether the file starts as an Ogg/Opus stream.
fn is_ogg_opus(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 36];
    let mut file = manifest::open_no_follow(path)?;
    let n = file.read(&mut head)?;
    Ok(n >= 36 && &head[..4] == b"OggS" && &head[28..36] == b"OpusHead")
}

/// A libopus decoder at 48 kHz for the stream, with its output gain.
#[cfg(feature = "wav")]
fn new_decoder(h: &Header) -> Result<opus::Decoder, String> {
    let channels = if h.channels == 2 {
        opus::Channels::Stereo
    } else {
        opus::Channels::Mono
    };
    let mut d = opus::Decoder::new(RATE, channels).map_err(|e| format!("the decoder: {e}"))?;
    if h.gain_q8 != 0 {
        d.set_gain(i32::from(h.gain_q8))
            .map_err(|e| format!("the decoder's gain: {e}"))?;
    }
    Ok(d)
}

/// Without the `wav` feature there is no decoder.
#[cfg(not(feature = "wav"))]
fn new_decoder(_: &Header) -> Result<NoDecoder, String> {
    Err(
        "this gcrec was built without WAV renditions (the `wav` feature, which links libopus)"
            .into(),
    )
}

/// Stands in for the decoder in builds without the `wav` feature.
#[cfg(not(feature = "wav"))]
struct NoDecoder;

#[cfg(not(feature = "wav"))]
impl NoDecoder {
    fn decode(&mut self, _: &[u8], _: &mut [i16], _: bool) -> Result<usize, String> {
        Err("no decoder".into())
    }
}

/// An Ogg packet reader over a native, no links followed.
type Packets = ogg::PacketReader<io::BufReader<std::fs::File>>;

/// Decodes the audio packets of the stream `serial` (its OpusHead already read as
/// `h`) into `out`, returning the samples per channel written.
fn decode_into(
    packets: &mut Packets,
    serial: u32,
    h: &Header,
    limit_samples: u64,
    out: &mut hound::WavWriter<&mut PendingFile>,
) -> Result<u64, String> {
    let mut decoder = new_decoder(h)?;
    let mut pcm = vec![0i16; MAX_PACKET_SAMPLES * 2];
    let (mut written, mut skipped, mut index) = (0u64, 0u64, 1u64);
    while let Some(packet) = packets
        .read_packet()
        .map_err(|e| format!("the Ogg stream: {e}"))?
    {
        if packet.stream_serial() != serial {
            // Only the first logical stream is audio.
            continue;
        }
        index += 1;
        if index == 2 {
            continue; // OpusTags
        }
        let decoded = decoder
            .decode(&packet.data, &mut pcm, false)
            .map_err(|e| format!("packet {index} could not be decoded: {e}"))?;
        let mut frames = &pcm[..decoded.min(MAX_PACKET_SAMPLES) * h.channels];
        // Drop the pre-skip.
        let skip = (h.pre_skip - skipped).min((frames.len() / h.channels) as u64);
        skipped += skip;
        frames = &frames[skip as usize * h.channels..];
        let mut count = (frames.len() / h.channels) as u64;
        if packet.last_in_stream() {
            // Trim the end to the last granule position.
            let end = packet.absgp_page().saturating_sub(h.pre_skip);
            count = count.min(end.saturating_sub(written));
        }
        if written + count > limit_samples {
            return Err(format!(
                "decodes to more audio than its last granule position announces ({limit_samples} samples)"
            ));
        }
        let mut samples = out.get_i16_writer((count as usize * h.channels) as u32);
        for s in &frames[..count as usize * h.channels] {
            samples.write_sample(*s);
        }
        samples.flush().map_err(|e| e.to_string())?;
        written += count;
    }
    Ok(written)
}

/// Makes (or keeps) the WAV rendition at `rel` inside `dir` of the native `native`
/// (recorded at `native.path`). `None` when the native is not Ogg/Opus (screen
/// recordings, transcripts stay native only).
pub(crate) fn wav(
    dir: &Path,
    rel: &str,
    native: &FileRow,
    earlier: Option<FileRow>,
) -> Result<Option<(FileRow, bool)>, String> {
    let native_path =
        manifest::inside(dir, &native.path).ok_or_else(|| format!("{}: not safe", native.path))?;
    if !is_ogg_opus(&native_path).map_err(|e| e.to_string())? {
        return Ok(None);
    }
    let dest = manifest::inside_creating(dir, rel).map_err(|e| format!("{rel}: {e}"))?;
    if let Some(row) = earlier.filter(|r| r.path == rel && r.origin_sha256 == native.sha256)
        && std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == row.size)
    {
        return Ok(Some((row, false)));
    }
    let granule = last_granule(&native_path)
        .map_err(|e| e.to_string())?
        .ok_or("no Ogg page at the end of the file")?;
    // At most the announced samples and a second more, and what the disk has.
    let limit_samples = granule.saturating_add(u64::from(RATE));
    let free = crate::release::free_space(&dest).unwrap_or(u64::MAX);
    let mut file = PendingFile::create(&dest)
        .map_err(|e| format!("{rel}: {e}"))?
        .limit(free.min(44 + limit_samples.saturating_mul(4)));
    let result = (|| -> Result<u64, String> {
        let native_file = manifest::open_no_follow(&native_path).map_err(|e| e.to_string())?;
        let mut packets = ogg::PacketReader::new(io::BufReader::new(native_file));
        let head = packets
            .read_packet()
            .map_err(|e| format!("the Ogg stream: {e}"))?
            .ok_or("an empty Ogg stream")?;
        let header = opus_head(&head.data)?;
        let spec = hound::WavSpec {
            channels: header.channels as u16,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut file, spec).map_err(|e| e.to_string())?;
        let n = decode_into(
            &mut packets,
            head.stream_serial(),
            &header,
            limit_samples,
            &mut writer,
        )?;
        writer.finalize().map_err(|e| e.to_string())?;
        Ok(n)
    })();
    match result {
        Ok(_) => {
            file.release().map_err(|e| format!("{rel}: {e}"))?;
        }
        Err(e) => {
            drop(file);
            return Err(e);
        }
    }
    let (size, md5, sha256) = hash_file(&dest).map_err(|e| format!("{rel}: {e}"))?;
    Ok(Some((
        FileRow {
            path: rel.to_owned(),
            size,
            sha256,
            md5,
            origin_sha256: native.sha256.clone(),
        },
        true,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_mono_and_stereo_family_zero_heads_are_rendered() {
        let mut head = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00".to_vec();
        let h = opus_head(&head).unwrap();
        assert_eq!((h.channels, h.pre_skip, h.gain_q8), (2, 312, 0));
        head[18] = 1;
        assert!(opus_head(&head).unwrap_err().contains("family 1"));
        assert!(opus_head(b"OpusTags").is_err());
    }

    #[cfg(feature = "wav")]
    proptest! {
        #[test]
        fn hostile_packets_are_refused_or_decoded_never_past_the_buffer(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
            let h = Header { channels: 2, pre_skip: 0, gain_q8: 0 };
            let mut d = new_decoder(&h).unwrap();
            let mut pcm = vec![0i16; MAX_PACKET_SAMPLES * 2];
            for p in packets {
                if let Ok(n) = d.decode(&p, &mut pcm, false) {
                    prop_assert!(n <= MAX_PACKET_SAMPLES);
                }
            }
        }
    }
}
