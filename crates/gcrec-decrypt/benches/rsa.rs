//! RSA-3072 private-key operations: the pure-Rust `rsa` crate against AWS-LC
//! (`gcrec_decrypt::rsa_native`), on the S3 Encryption Client's RSA-OAEP-SHA1 wrap.
//! Run next to `openssl speed rsa3072` (docs/BENCHMARKS.md):
//! `cargo bench -p gcrec-decrypt --bench rsa`.

#[path = "support/timing.rs"]
mod timing;

use gcrec_decrypt::rsa_native::{NativeRsa, OaepHash};
use rsa::{Oaep, RsaPrivateKey};

fn main() {
    let mut rng = rand::thread_rng();
    let key = RsaPrivateKey::new(&mut rng, 3072).expect("an RSA-3072 key");
    let wrapped = key
        .to_public_key()
        .encrypt(&mut rng, Oaep::new::<sha1::Sha1>(), &[7u8; 48])
        .expect("a wrap");
    let native = NativeRsa::from_key(&key).expect("AWS-LC takes the key");
    let rounds = 200;
    let time = |f: &dyn Fn()| timing::ms_per_round(rounds, f);
    let pure = time(&|| {
        key.decrypt(Oaep::new::<sha1::Sha1>(), &wrapped)
            .expect("decrypts");
    });
    let lc = time(&|| {
        native
            .decrypt_oaep(OaepHash::Sha1, &wrapped)
            .expect("decrypts");
    });
    println!("RSA-3072 OAEP-SHA1 private op, {rounds} rounds:");
    println!("  rsa crate 0.9   {pure:.2} ms/op");
    println!("  aws-lc-rs       {lc:.2} ms/op  ({:.1}x)", pure / lc);
}
