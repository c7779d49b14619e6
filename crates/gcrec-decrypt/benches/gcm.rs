//! In-memory AES-256-GCM throughput on one core: gcrec's streaming decryptor (1 MiB
//! steps, as `gcrec decrypt` uses it) next to the one-shot `aes-gcm` crate.
//! `cargo bench -p gcrec-decrypt --bench gcm [-- MIB]`

use std::time::Instant;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use gcrec_decrypt::gcm::{GcmDecryptor, GcmEncryptor};

fn main() {
    let mib: usize = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(1024);
    let key = [7u8; 32];
    let iv = [1u8; 12];
    let mut data: Vec<u8> = (0..mib << 20).map(|i| (i * 131 % 251) as u8).collect();
    let mut enc = GcmEncryptor::new(&key, &iv, b"\x00\x73");
    enc.update(&mut data);
    data.extend_from_slice(&enc.finish());
    let total = data.len() as u64;
    let gib = (mib as f64) / 1024.0;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut buf = data.clone();
        let start = Instant::now();
        let mut d = GcmDecryptor::new(&key, &iv, b"\x00\x73", total).expect("decryptor");
        for chunk in buf.chunks_mut(1 << 20) {
            d.update(chunk);
        }
        d.finish().expect("tag");
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "gcrec streaming GCM decrypt: {mib} MiB in {best:.3} s = {:.2} GB/s ({:.2} GiB/s)",
        (mib << 20) as f64 / best / 1e9,
        gib / best
    );
    let (body, tag) = data.split_at(data.len() - 16);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut buf = body.to_vec();
        let start = Instant::now();
        Aes256Gcm::new((&key).into())
            .decrypt_in_place_detached(Nonce::from_slice(&iv), b"\x00\x73", &mut buf, tag.into())
            .expect("tag");
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "aes-gcm one-shot decrypt:    {mib} MiB in {best:.3} s = {:.2} GB/s ({:.2} GiB/s)",
        (mib << 20) as f64 / best / 1e9,
        gib / best
    );
}
