//! The cost of media verification on one core, in memory: an Ogg/Opus stream fed to
//! `OggCheck` in 1 MiB steps (as a pull feeds it), and a stored ZIP read back against its
//! CRC-32s from a file (as a pull checks it once released).
//! `cargo bench -p gcrec-pull --bench media [-- MIB]`

use std::time::Instant;

use gcrec_pull::media::{OggCheck, check_zip};

fn main() {
    let mib: usize = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(512);
    let mut rng = gcrec_testkit::rng::Rng::new(1);
    // Pages of ordinary 20 ms packets: the page rate of real call audio at ~32 kbit/s.
    let ogg = gcrec_testkit::media::ogg_opus(&mut rng, mib << 20);
    let gib = ogg.len() as f64 / (1u64 << 30) as f64;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut check = OggCheck::new();
        for chunk in ogg.chunks(1 << 20) {
            check.feed(chunk);
        }
        let report = check.finish();
        assert_eq!(report.problem_count, 0, "{report:?}");
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "Ogg page check: {:.0} MiB in {best:.3} s = {:.0} MiB/s, {:.2} CPU-s/GiB",
        ogg.len() as f64 / (1 << 20) as f64,
        ogg.len() as f64 / (1 << 20) as f64 / best,
        best / gib
    );
    let entries: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| (format!("screen-{i}.webm"), rng.bytes((mib << 20) / 8)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let zip = gcrec_testkit::media::zip(&refs);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("screen.zip");
    std::fs::write(&path, &zip).expect("write");
    let gib = zip.len() as f64 / (1u64 << 30) as f64;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let report = check_zip(&path);
        assert_eq!(report.problem_count, 0, "{report:?}");
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "ZIP CRC-32 check (file in the page cache): {:.0} MiB in {best:.3} s = {:.0} MiB/s, {:.2} CPU-s/GiB",
        zip.len() as f64 / (1 << 20) as f64,
        zip.len() as f64 / (1 << 20) as f64 / best,
        best / gib
    );
}
