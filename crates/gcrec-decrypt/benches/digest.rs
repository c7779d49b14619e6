//! SHA-1 (OpenPGP's MDC) and SHA-256 (the manifest's plaintext hash) over 1 GiB in
//! memory, one core: RustCrypto's `sha1`/`sha2` (SHA-NI detected at run time) next to
//! AWS-LC's (`aws-lc-rs`). `cargo bench -p gcrec-decrypt --bench digest [-- MIB]`.

use std::time::Instant;

fn main() {
    let mib: usize = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(1024);
    let block: Vec<u8> = (0..1usize << 20).map(|i| (i * 131 % 251) as u8).collect();
    let time = |label: &str, f: &dyn Fn() -> Vec<u8>| {
        let mut best = f64::MAX;
        let mut out = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            out = f();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{label}: {:.0} MB/s ({})",
            (mib << 20) as f64 / best / 1e6,
            hex_prefix(&out)
        );
    };
    time("sha1 crate    SHA-1  ", &|| {
        use sha1::Digest;
        let mut h = sha1::Sha1::new();
        (0..mib).for_each(|_| h.update(&block));
        h.finalize().to_vec()
    });
    time("aws-lc-rs     SHA-1  ", &|| {
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
        (0..mib).for_each(|_| h.update(&block));
        h.finish().as_ref().to_vec()
    });
    time("sha2 crate    SHA-256", &|| {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        (0..mib).for_each(|_| h.update(&block));
        h.finalize().to_vec()
    });
    time("aws-lc-rs     SHA-256", &|| {
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        (0..mib).for_each(|_| h.update(&block));
        h.finish().as_ref().to_vec()
    });
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
