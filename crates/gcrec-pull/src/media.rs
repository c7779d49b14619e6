//! Proof that released media is complete and playable, not only authentic: a recording
//! truncated or damaged at the source decrypts perfectly.
//!
//! - Ogg ([`OggCheck`], fed the plaintext as it is written, so no second pass): every
//!   page's capture pattern, version and CRC; page sequence numbers without gaps per
//!   logical stream; granule positions that never go back; a beginning- and an
//!   end-of-stream page; no bytes between or after pages. For Opus, the playable
//!   duration (last granule position less the pre-skip, at 48 kHz).
//! - ZIP ([`check_zip`], on the released file): the central directory, and every
//!   entry read back against its CRC-32 (with a cap on what entries may expand to).
//!   When the plaintext was fed to [`BlockCrcs`] as it was written, stored entries (a
//!   screen recording's video is not compressed again) are checked from those CRCs and
//!   at most two blocks read back per entry ([`check_zip_streamed`]): a large recording
//!   is not read a second time.
//!
//! Problems are findings, not failures: the recording is released (it is what the
//! source holds) and the problems are reported with it.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// At most this many problems are kept per file (the count is always exact).
const MAX_PROBLEMS: usize = 16;
/// The largest Ogg page: 27 header bytes, 255 lacing values, 255 × 255 body bytes.
const MAX_PAGE: usize = 27 + 255 + 255 * 255;

/// What a media check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaReport {
    /// What was checked: `ogg` (Ogg pages; `ogg-opus` when the stream is Opus), `zip`.
    pub checked: String,
    /// What is wrong, in words, at most 16; empty when nothing is.
    pub problems: Vec<String>,
    /// How many problems there were in all.
    pub problem_count: u64,
    /// The playable duration, when the container tells it (Ogg/Opus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// How far the playable duration may be from the sidecar's `durationMs` before it is
/// reported: the larger of two seconds and 2 %.
pub fn duration_tolerance_ms(sidecar_ms: u64) -> u64 {
    (sidecar_ms / 50).max(2000)
}

impl MediaReport {
    /// Whether anything is wrong.
    pub fn has_problems(&self) -> bool {
        self.problem_count > 0
    }

    /// Reports a playable duration further from the sidecar's `durationMs` than the
    /// tolerance (the media was cut short, or is not the recording described).
    pub fn compare_duration(&mut self, sidecar_ms: u64) {
        if let Some(ms) = self.duration_ms
            && ms.abs_diff(sidecar_ms) > duration_tolerance_ms(sidecar_ms)
        {
            self.problem(format!(
                "plays {:.1} s, the sidecar's durationMs says {:.1} s",
                ms as f64 / 1000.0,
                sidecar_ms as f64 / 1000.0
            ));
        }
    }

    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }
}

use gcrec_decrypt::detect::ogg_page_crc;

/// How many bytes from the front of `buf` [`OggCheck::page`] needs before it can use
/// some: a page header, its segment table, then the whole page; 27 (a header's worth)
/// where `buf` does not start with a page, which is enough to skip to the next one.
fn wanted(buf: &[u8]) -> usize {
    if buf.len() < 27 || &buf[..4] != b"OggS" {
        return 27;
    }
    let segments = usize::from(buf[26]);
    match buf.get(27..27 + segments) {
        Some(table) => 27 + segments + table.iter().map(|&l| usize::from(l)).sum::<usize>(),
        None => 27 + segments,
    }
}

/// One logical stream's state.
#[derive(Debug, Default)]
struct Stream {
    next_sequence: u32,
    granule: Option<u64>,
    ended: bool,
    pre_skip: Option<u64>,
}

/// Checks an Ogg stream fed in pieces of any size, in bounded memory (one page).
#[derive(Debug, Default)]
pub struct OggCheck {
    /// The start of a page (or of bytes not yet told to be garbage) that an earlier piece
    /// ended inside; pages that lie whole in a piece are parsed where they are.
    buf: Vec<u8>,
    offset: u64,
    pages: u64,
    streams: HashMap<u32, Stream>,
    report: MediaReport,
    lost: bool,
}

impl OggCheck {
    /// A check of a stream starting here.
    pub fn new() -> Self {
        Self {
            report: MediaReport {
                checked: "ogg".into(),
                ..MediaReport::default()
            },
            ..Self::default()
        }
    }

    /// Takes the next bytes of the file. Only a page that straddles two pieces is
    /// copied (at most [`MAX_PAGE`] bytes): copying every piece cost a pass over the
    /// plaintext and a fresh buffer the size of a decryptor's batch for each recording.
    pub fn feed(&mut self, mut data: &[u8]) {
        // First the page an earlier piece ended inside, given only the bytes it lacks.
        while !self.buf.is_empty() {
            let want = wanted(&self.buf);
            if self.buf.len() < want {
                let take = (want - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.buf.len() < want {
                    return;
                }
                // What is wanted grows as the header, then the segment table, arrive.
                continue;
            }
            let held = std::mem::take(&mut self.buf);
            let used = self.page(&held);
            self.buf = held;
            if used == 0 {
                // Not expected (`wanted` asks for what `page` needs to use a byte); if it
                // happens, keep everything in order and let the next piece decide.
                self.buf.extend_from_slice(data);
                return;
            }
            self.buf.drain(..used);
        }
        loop {
            let used = self.page(data);
            if used == 0 {
                break;
            }
            data = &data[used..];
        }
        self.buf.extend_from_slice(data);
    }

    /// Parses one page, or skips bytes that are not one, from the front of `buf`: the
    /// bytes used, 0 when more are needed first.
    fn page(&mut self, buf: &[u8]) -> usize {
        if buf.len() < 27 {
            return 0;
        }
        if &buf[..4] != b"OggS" {
            // Bytes that are not a page: skip to the next capture pattern.
            let skip = buf[1..]
                .windows(4)
                .position(|w| w == b"OggS")
                .map_or(buf.len().saturating_sub(3), |p| p + 1);
            if !self.lost {
                self.report.problem(format!(
                    "byte {}: no Ogg page where one belongs (garbage, or a page lost)",
                    self.offset
                ));
            }
            self.lost = true;
            self.offset += skip as u64;
            return skip;
        }
        let len = wanted(buf);
        if buf.len() < len {
            return 0;
        }
        let segments = usize::from(buf[26]);
        let page = &buf[..len];
        let crc_ok =
            ogg_page_crc(page) == u32::from_le_bytes([page[22], page[23], page[24], page[25]]);
        let version = page[4];
        let flags = page[5];
        let granule = u64::from_le_bytes(page[6..14].try_into().unwrap_or([0; 8]));
        let serial = u32::from_le_bytes([page[14], page[15], page[16], page[17]]);
        let sequence = u32::from_le_bytes([page[18], page[19], page[20], page[21]]);
        let first_packet = &page[27 + segments..];
        let pre_skip = (first_packet.starts_with(b"OpusHead") && first_packet.len() >= 12)
            .then(|| u64::from(u16::from_le_bytes([first_packet[10], first_packet[11]])));
        let at = self.offset;
        self.offset += len as u64;
        let n = self.pages;
        self.pages += 1;
        if !crc_ok {
            self.report
                .problem(format!("page {n} (byte {at}): CRC mismatch (damaged data)"));
            // A page that fails its CRC says nothing trustworthy about its stream.
            self.lost = false;
            return len;
        }
        self.lost = false;
        if version != 0 {
            self.report.problem(format!(
                "page {n} (byte {at}): unknown Ogg version {version}"
            ));
        }
        let new = !self.streams.contains_key(&serial);
        let stream = self.streams.entry(serial).or_default();
        if new {
            if flags & 0x02 == 0 {
                self.report.problem(format!(
                    "page {n}: stream {serial:08x} starts without a beginning-of-stream page (its start is lost)"
                ));
            }
            if pre_skip.is_some() {
                stream.pre_skip = pre_skip;
                self.report.checked = "ogg-opus".into();
            }
        } else if flags & 0x02 != 0 {
            self.report.problem(format!(
                "page {n}: a second beginning-of-stream page for stream {serial:08x}"
            ));
        }
        if stream.ended {
            self.report.problem(format!(
                "page {n}: stream {serial:08x} continues after its end"
            ));
        }
        if sequence != stream.next_sequence {
            self.report.problem(format!(
                "page {n}: sequence number {sequence} where {} belongs in stream {serial:08x} ({})",
                stream.next_sequence,
                if sequence > stream.next_sequence {
                    "pages missing"
                } else {
                    "pages repeated or reordered"
                }
            ));
        }
        stream.next_sequence = sequence.wrapping_add(1);
        if granule != u64::MAX {
            if let Some(last) = stream.granule
                && granule < last
            {
                self.report.problem(format!(
                    "page {n}: granule position {granule} goes back from {last}"
                ));
            }
            stream.granule = Some(granule);
        }
        if flags & 0x04 != 0 {
            stream.ended = true;
        }
        len
    }

    /// The findings, once the whole file was fed.
    pub fn finish(mut self) -> MediaReport {
        if self.pages == 0 {
            self.report.problem("no Ogg page at all".into());
        }
        if !self.buf.is_empty() {
            let what = if self.buf.starts_with(b"OggS") && self.buf.len() < MAX_PAGE {
                "ends inside a page (truncated)"
            } else {
                "ends with bytes that are not an Ogg page"
            };
            self.report.problem(format!(
                "byte {}: {what}, {} byte(s)",
                self.offset,
                self.buf.len()
            ));
        }
        let mut serials: Vec<_> = self.streams.iter().collect();
        serials.sort_by_key(|(s, _)| **s);
        for (serial, s) in &serials {
            if !s.ended {
                self.report.problem(format!(
                    "stream {serial:08x} has no end-of-stream page (truncated)"
                ));
            }
        }
        if let [(_, s)] = serials.as_slice()
            && let (Some(pre), Some(g)) = (s.pre_skip, s.granule)
        {
            self.report.duration_ms = Some(g.saturating_sub(pre) * 1000 / 48_000);
        }
        self.report
    }
}

/// Checks a file already written: Ogg or ZIP, told from its first bytes (`None` for
/// other media). Reads it once, in bounded memory.
pub fn check_file(path: &Path) -> std::io::Result<Option<MediaReport>> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let n = read_some(&mut file, &mut buf)?;
    if buf[..n].starts_with(b"PK\x03\x04") || buf[..n].starts_with(b"PK\x05\x06") {
        return Ok(Some(check_zip(path)));
    }
    if !buf[..n].starts_with(b"OggS") {
        return Ok(None);
    }
    let mut check = OggCheck::new();
    check.feed(&buf[..n]);
    loop {
        let n = read_some(&mut file, &mut buf)?;
        if n == 0 {
            return Ok(Some(check.finish()));
        }
        check.feed(&buf[..n]);
    }
}

fn read_some(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The most bytes ZIP entries may expand to, per byte of the archive (a zip bomb's
/// entries are not read to the end).
const MAX_ZIP_EXPANSION: u64 = 64;

/// The fewest bytes a [`BlockCrcs`] block holds.
const FIRST_BLOCK: u64 = 64 * 1024;
/// The most block CRCs a [`BlockCrcs`] keeps (16 KiB) before it doubles its block size.
const MAX_BLOCKS: usize = 4096;

/// CRC-32s of a stream's consecutive blocks, computed as the plaintext is written, so that
/// the CRC of any range can be put together from them and at most two blocks read back
/// (CRC-32 values combine: `crc(a ‖ b)` follows from `crc(a)`, `crc(b)` and `len(b)`).
/// Memory stays bounded at any stream length: when [`MAX_BLOCKS`] blocks are done,
/// neighbours are merged and the block size doubles.
#[derive(Debug, Clone)]
pub struct BlockCrcs {
    block: u64,
    max_blocks: usize,
    done: Vec<u32>,
    current: crc32fast::Hasher,
    current_len: u64,
    total: u64,
}

impl Default for BlockCrcs {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockCrcs {
    /// Nothing fed yet.
    pub fn new() -> Self {
        Self::sized(FIRST_BLOCK, MAX_BLOCKS)
    }

    /// Blocks of `block` bytes at first, at most `max_blocks` (even) of them.
    fn sized(block: u64, max_blocks: usize) -> Self {
        Self {
            block,
            max_blocks,
            done: Vec::new(),
            current: crc32fast::Hasher::new(),
            current_len: 0,
            total: 0,
        }
    }

    /// The next bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() {
            let room = usize::try_from(self.block - self.current_len).unwrap_or(usize::MAX);
            let take = room.min(data.len());
            self.current.update(&data[..take]);
            self.current_len += take as u64;
            data = &data[take..];
            if self.current_len == self.block {
                let full = std::mem::replace(&mut self.current, crc32fast::Hasher::new());
                self.done.push(full.finalize());
                self.current_len = 0;
                if self.done.len() == self.max_blocks {
                    self.merge();
                }
            }
        }
    }

    /// Halves the number of blocks: each pair becomes one block twice as long. The
    /// block under way (always shorter than the old size) simply goes on growing.
    fn merge(&mut self) {
        let block = self.block;
        let merged: Vec<u32> = self
            .done
            .chunks_exact(2)
            .map(|pair| {
                let mut first = crc32fast::Hasher::new_with_initial_len(pair[0], block);
                first.combine(&crc32fast::Hasher::new_with_initial_len(pair[1], block));
                first.finalize()
            })
            .collect();
        self.done = merged;
        self.block *= 2;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The CRC-32 of `len` bytes at `start` of `file`, which must hold exactly the bytes
    /// fed: whole blocks inside the range come from their CRCs, the rest is read.
    fn range(&self, file: &mut std::fs::File, start: u64, len: u64) -> std::io::Result<u32> {
        let end = start + len;
        let b = self.block;
        let first = start.div_ceil(b);
        let last = (end / b).min(self.done.len() as u64);
        let mut crc = crc32fast::Hasher::new();
        if first >= last {
            crc_of(file, start, len, &mut crc)?;
            return Ok(crc.finalize());
        }
        crc_of(file, start, first * b - start, &mut crc)?;
        for &block_crc in &self.done[first as usize..last as usize] {
            crc.combine(&crc32fast::Hasher::new_with_initial_len(block_crc, b));
        }
        crc_of(file, last * b, end - last * b, &mut crc)?;
        Ok(crc.finalize())
    }
}

/// Feeds `len` bytes of `file` at `start` to `crc`, in bounded memory.
fn crc_of(
    file: &mut std::fs::File,
    start: u64,
    len: u64,
    crc: &mut crc32fast::Hasher,
) -> std::io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; usize::try_from(len.min(1 << 20)).unwrap_or(1 << 20)];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        file.read_exact(&mut buf[..n])?;
        crc.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

/// Checks a ZIP file: its central directory, and every entry's CRC-32.
pub fn check_zip(path: &Path) -> MediaReport {
    check_zip_inner(path, None)
}

/// [`check_zip`] for a file whose every byte, in order, was fed to `crcs` as it was
/// written: stored entries are checked from the block CRCs (reading at most two blocks
/// each), compressed ones are read and inflated as by [`check_zip`]. When the file's
/// length is not what was fed, it is read whole, as by [`check_zip`].
pub fn check_zip_streamed(path: &Path, crcs: &BlockCrcs) -> MediaReport {
    check_zip_inner(path, Some(crcs))
}

/// What [`stored_entry_crc`] found.
enum StoredCrc {
    /// The entry is stored and its CRC matches; it holds this many bytes.
    Matches(u64),
    /// The entry is stored, unencrypted and inside the file, and its CRC does not match.
    Mismatch,
    /// Not a case for the block CRCs: read the entry.
    ReadIt,
}

/// Checks a stored entry from the block CRCs, when it is one they can check and it
/// fits in what is left of the expansion `budget` (overlapping entries can claim the
/// same bytes many times over; reading reports that).
fn stored_entry_crc<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    i: usize,
    crcs: &BlockCrcs,
    file: &mut std::fs::File,
    budget: u64,
) -> StoredCrc {
    let Ok(entry) = archive.by_index_raw(i) else {
        return StoredCrc::ReadIt;
    };
    let (Some(start), len) = (entry.data_start(), entry.compressed_size()) else {
        return StoredCrc::ReadIt;
    };
    if entry.compression() != zip::CompressionMethod::Stored
        || entry.encrypted()
        || entry.size() != len
        || len >= budget
        || start.checked_add(len).is_none_or(|end| end > crcs.len())
    {
        return StoredCrc::ReadIt;
    }
    let expected = entry.crc32();
    drop(entry);
    match crcs.range(file, start, len) {
        Ok(crc) if crc == expected => StoredCrc::Matches(len),
        Ok(_) => StoredCrc::Mismatch,
        Err(_) => StoredCrc::ReadIt,
    }
}

fn check_zip_inner(path: &Path, crcs: Option<&BlockCrcs>) -> MediaReport {
    let mut report = MediaReport {
        checked: "zip".into(),
        ..MediaReport::default()
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            report.problem(format!("cannot be read: {e}"));
            return report;
        }
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut archive = match zip::ZipArchive::new(std::io::BufReader::new(file)) {
        Ok(a) => a,
        Err(e) => {
            report.problem(format!("central directory unreadable: {e}"));
            return report;
        }
    };
    let mut budget = size.saturating_mul(MAX_ZIP_EXPANSION).max(1 << 20);
    // The block CRCs are used only for the very bytes they were computed from.
    let mut streamed = crcs
        .filter(|c| c.len() == size)
        .and_then(|c| Some((c, std::fs::File::open(path).ok()?)));
    for i in 0..archive.len() {
        if let Some((crcs, file)) = streamed.as_mut() {
            match stored_entry_crc(&mut archive, i, crcs, file, budget) {
                StoredCrc::Matches(stored) => {
                    budget -= stored;
                    continue;
                }
                StoredCrc::Mismatch => {
                    let name: String = archive
                        .name_for_index(i)
                        .and_then(Result::ok)
                        .map(|n| n.chars().take(120).collect())
                        .unwrap_or_else(|| format!("#{i}"));
                    // The words reading the entry back gives.
                    report.problem(format!("entry {name:?}: Invalid checksum"));
                    continue;
                }
                StoredCrc::ReadIt => {}
            }
        }
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                report.problem(format!("entry {i}: {e}"));
                continue;
            }
        };
        let name: String = entry
            .name()
            .map(|n| n.chars().take(120).collect())
            .unwrap_or_else(|_| format!("#{i}"));
        let mut limited = (&mut entry).take(budget);
        match std::io::copy(&mut limited, &mut std::io::sink()) {
            Ok(n) if n == budget => {
                report.problem(format!(
                    "entry {name:?}: expands past {MAX_ZIP_EXPANSION} times the archive; not read further"
                ));
                return report;
            }
            Ok(n) => budget -= n,
            Err(e) => report.problem(format!("entry {name:?}: {e}")),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ogg(rng_seed: u64, size: usize) -> Vec<u8> {
        gcrec_testkit::media::ogg_opus(&mut gcrec_testkit::rng::Rng::new(rng_seed), size)
    }

    /// Where each page's capture pattern starts.
    fn page_starts(data: &[u8]) -> Vec<usize> {
        data.windows(4)
            .enumerate()
            .filter(|(_, w)| *w == b"OggS")
            .map(|(i, _)| i)
            .collect()
    }

    fn check(data: &[u8], piece: usize) -> MediaReport {
        let mut c = OggCheck::new();
        for p in data.chunks(piece) {
            c.feed(p);
        }
        c.finish()
    }

    #[test]
    fn a_clean_stream_has_no_problems_in_any_chunking() {
        let data = ogg(1, 100_000);
        for piece in [1, 7, 4096, 1 << 20] {
            let r = check(&data, piece);
            assert_eq!(r.problems, Vec::<String>::new(), "piece {piece}");
            assert_eq!(r.checked, "ogg-opus");
            assert!(r.duration_ms.unwrap() > 0);
        }
    }

    #[test]
    fn any_chunking_finds_the_same_as_one_piece_even_in_damaged_streams() {
        let clean = ogg(3, 60_000);
        let starts = page_starts(&clean);
        // Garbage between pages (with a false start of a capture pattern), a damaged page,
        // a page cut short, and a stream that ends inside a page.
        let mut damaged = clean[..starts[3]].to_vec();
        damaged.extend_from_slice(b"junk OggX more junk Ogg");
        damaged.extend_from_slice(&clean[starts[3]..starts[6]]);
        damaged.extend_from_slice(&clean[starts[6]..starts[6] + 40]);
        damaged.extend_from_slice(&clean[starts[7]..clean.len() - 10]);
        let at = starts[4] + 30;
        damaged[at] ^= 0x40;
        for data in [&clean, &damaged] {
            let whole = check(data, data.len());
            for piece in [1, 2, 3, 26, 27, 28, 29, 100, 999, 4096, 65_536] {
                let r = check(data, piece);
                assert_eq!(r.problems, whole.problems, "piece {piece}");
                assert_eq!(r.problem_count, whole.problem_count, "piece {piece}");
                assert_eq!(r.duration_ms, whole.duration_ms, "piece {piece}");
            }
        }
        let whole = check(&damaged, damaged.len());
        assert!(whole.problem_count >= 3, "{whole:?}");
    }

    #[test]
    fn truncation_damage_and_lost_pages_are_named() {
        let data = ogg(2, 100_000);
        let r = check(&data[..data.len() - 100], 999);
        assert!(
            r.problems.iter().any(|p| p.contains("ends inside a page")),
            "{r:?}"
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("no end-of-stream page")),
            "{r:?}"
        );
        let mut flipped = data.clone();
        flipped[50_000] ^= 0x10;
        let r = check(&flipped, 999);
        assert!(
            r.problems.iter().any(|p| p.contains("CRC mismatch")),
            "{r:?}"
        );
        // Cut a whole page out of the middle: its successor's sequence number tells.
        let starts = page_starts(&data);
        let mut missing = data[..starts[4]].to_vec();
        missing.extend_from_slice(&data[starts[5]..]);
        let r = check(&missing, 999);
        assert!(
            r.problems.iter().any(|p| p.contains("pages missing")),
            "{r:?}"
        );
        let r = check(b"not ogg at all, not at all", 5);
        assert!(r.problem_count >= 1);
    }

    fn streamed(data: &[u8], block: u64, max_blocks: usize, piece: usize) -> BlockCrcs {
        let mut crcs = BlockCrcs::sized(block, max_blocks);
        for p in data.chunks(piece) {
            crcs.feed(p);
        }
        crcs
    }

    #[test]
    fn block_crcs_give_any_range_crc_across_merges() {
        let data = gcrec_testkit::rng::Rng::new(9).bytes(10_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, &data).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        // 64-byte blocks, at most 8: 10,000 bytes merge five times (to 2 KiB blocks).
        for piece in [1, 7, 64, 333, 10_000] {
            let crcs = streamed(&data, 64, 8, piece);
            assert_eq!(crcs.len(), 10_000);
            assert_eq!(crcs.block, 2048, "piece {piece}");
            assert!(crcs.done.len() < 8);
            for (start, len) in [
                (0, 10_000),
                (0, 0),
                (1, 9_999),
                (1023, 2),
                (1000, 5000),
                (5000, 5000),
                (9_999, 1),
                (3, 1024),
                (1024, 1024),
                (2048, 4096),
            ] {
                let expected = crc32fast::hash(&data[start..start + len]);
                let got = crcs.range(&mut file, start as u64, len as u64).unwrap();
                assert_eq!(got, expected, "piece {piece}, range {start}+{len}");
            }
        }
    }

    /// A ZIP with stored entries of several sizes and a deflated one.
    fn mixed_zip() -> Vec<u8> {
        use std::io::Write;
        let mut rng = gcrec_testkit::rng::Rng::new(4);
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, len, options) in [
            ("a.webm", 5000, stored),
            ("empty", 0, stored),
            ("b.json", 17, stored),
            ("c.txt", 3000, deflated),
            ("d.webm", 9000, stored),
        ] {
            writer.start_file(name, options).unwrap();
            let mut body = rng.bytes(len);
            if name == "c.txt" {
                body.iter_mut().for_each(|b| *b &= 0x3f); // compressible
            }
            writer.write_all(&body).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn the_streamed_zip_check_finds_what_reading_back_finds() {
        let good = mixed_zip();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.zip");
        std::fs::write(&p, &good).unwrap();
        let clean = check_zip_streamed(&p, &streamed(&good, 64, 8, 100));
        assert_eq!(clean.problems, Vec::<String>::new());
        assert_eq!(clean.checked, "zip");
        // Damage every 37th byte in turn, as the source would hold it (fed and written).
        let mut damaged = 0;
        for at in (0..good.len()).step_by(37) {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            std::fs::write(&p, &bad).unwrap();
            let read_back = check_zip(&p);
            let from_crcs = check_zip_streamed(&p, &streamed(&bad, 64, 8, 333));
            assert_eq!(
                from_crcs.problem_count > 0,
                read_back.problem_count > 0,
                "byte {at}: {from_crcs:?} against {read_back:?}"
            );
            damaged += usize::from(from_crcs.problem_count > 0);
        }
        assert!(
            damaged > 300,
            "most single-byte damage is found ({damaged})"
        );
        // A flipped byte in a stored entry's data names the entry.
        let mut bad = good.clone();
        let at = good.windows(6).position(|w| w == b"d.webm").unwrap() + 6 + 4000;
        bad[at] ^= 1;
        std::fs::write(&p, &bad).unwrap();
        let r = check_zip_streamed(&p, &streamed(&bad, 64, 8, 100));
        assert_eq!(
            r.problems,
            check_zip(&p).problems,
            "the same words as reading back"
        );
        assert!(r.problems.iter().any(|x| x.contains("d.webm")), "{r:?}");
    }

    #[test]
    fn block_crcs_of_other_bytes_are_not_trusted() {
        let good = mixed_zip();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.zip");
        // The file holds other bytes than were fed (damage inside a whole block, which
        // only that block's CRC covers): a fed length that differs from the file's makes
        // the whole file be read, so the damage is found.
        let mut bad = good.clone();
        let at = good.windows(6).position(|w| w == b"d.webm").unwrap() + 6 + 4000;
        bad[at] ^= 1;
        std::fs::write(&p, &bad).unwrap();
        let shorter = streamed(&good[..good.len() - 1], 64, 8, 100);
        assert!(check_zip_streamed(&p, &shorter).problem_count > 0);
    }

    #[test]
    fn overlapping_stored_entries_hit_the_expansion_cap_either_way() {
        // One stored entry of 5,000 bytes whose central record is repeated 400 times,
        // under other names of the same length,
        // every copy pointing at the same data: 2 MB claimed from 26 KB (the cap is 64
        // times the archive, at least 1 MiB).
        let one = gcrec_testkit::media::zip(&[("a.webm", vec![7u8; 5000])]);
        let (local, rest) = one.split_at(one.len() - 22 - 52);
        let (record, _end) = rest.split_at(52);
        let mut bomb = local.to_vec();
        for i in 0..400 {
            // Names must differ (the central directory is keyed by name).
            bomb.extend_from_slice(&record[..46]);
            bomb.extend_from_slice(format!("e{i:05}").as_bytes());
        }
        bomb.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        bomb.extend_from_slice(&[0; 4]);
        bomb.extend_from_slice(&400u16.to_le_bytes());
        bomb.extend_from_slice(&400u16.to_le_bytes());
        bomb.extend_from_slice(&(52u32 * 400).to_le_bytes());
        bomb.extend_from_slice(&(local.len() as u32).to_le_bytes());
        bomb.extend_from_slice(&[0; 2]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bomb.zip");
        std::fs::write(&p, &bomb).unwrap();
        let read_back = check_zip(&p);
        let from_crcs = check_zip_streamed(&p, &streamed(&bomb, 64, 8, 1000));
        assert!(
            read_back
                .problems
                .iter()
                .any(|x| x.contains("expands past")),
            "{read_back:?}"
        );
        assert_eq!(from_crcs.problems, read_back.problems);
    }

    #[test]
    fn zips_are_read_back_against_their_crcs() {
        let dir = tempfile::tempdir().unwrap();
        let good =
            gcrec_testkit::media::zip(&[("a.webm", vec![7u8; 5000]), ("b.json", b"{}".to_vec())]);
        let p = dir.path().join("good.zip");
        std::fs::write(&p, &good).unwrap();
        assert_eq!(check_zip(&p).problems, Vec::<String>::new());
        let mut bad = good.clone();
        bad[100] ^= 0x01; // inside the first entry's stored data
        std::fs::write(&p, &bad).unwrap();
        let r = check_zip(&p);
        assert!(r.problems.iter().any(|x| x.contains("a.webm")), "{r:?}");
        std::fs::write(&p, &good[..good.len() - 30]).unwrap();
        assert!(check_zip(&p).problems[0].contains("central directory"));
    }
}
