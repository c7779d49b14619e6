//! Unlocking the example RSA-3072 OpenPGP key (GnuPG 2.2: SHA-1 iterated S2K, count
//! 65,011,712, a primary key and an encryption subkey): `Keyring::load` (gcrec's S2K in
//! 64 KiB updates, the components on two threads) against rPGP's own `remove_password`
//! of each component one after the other. `cargo bench -p gcrec-decrypt --bench s2k`.

use std::path::Path;

use gcrec_decrypt::keys::{Keyring, Passphrases};
use pgp::composed::{Deserializable, SignedSecretKey};
use pgp::types::Password;
use zeroize::Zeroizing;

#[path = "support/timing.rs"]
mod timing;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../keys-example");
    let file = dir.join("pgp-rsa3072.sec.asc");
    let passphrase = std::fs::read_to_string(dir.join("passphrase.txt")).expect("the passphrase");
    let passphrase = passphrase.trim_end().to_owned();
    let rounds = 5;
    let time = |f: &dyn Fn()| timing::ms_per_round(rounds, f);
    let cpu_started = cpu_seconds();
    let gcrec = time(&|| {
        let mut keyring = Keyring::new();
        let mut passphrases = Passphrases {
            given: vec![Zeroizing::new(passphrase.clone())],
            prompt: None,
        };
        keyring
            .load(&file, &mut passphrases)
            .expect("the key opens");
    });
    let gcrec_cpu = (cpu_seconds() - cpu_started) * 1000.0 / f64::from(rounds + 1);
    let text = std::fs::read(&file).expect("the key file");
    let (key, _) = SignedSecretKey::from_armor_single(&text[..]).expect("an OpenPGP key");
    let rpgp = time(&|| {
        let mut key = key.clone();
        let pw = Password::from(passphrase.as_str());
        key.primary_key
            .remove_password(&pw)
            .expect("the primary opens");
        for sub in &mut key.secret_subkeys {
            sub.key.remove_password(&pw).expect("the subkey opens");
        }
    });
    println!("unlocking the example RSA-3072 key (two components), {rounds} rounds:");
    println!("  rPGP remove_password, one after the other  {rpgp:.0} ms");
    println!(
        "  gcrec Keyring::load (parse + unlock)        {gcrec:.0} ms wall, {gcrec_cpu:.0} ms CPU"
    );
}

/// This process's user + system CPU seconds so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux counts in USER_HZ, 100 a second on every architecture gcrec is built for.
    (ticks(11) + ticks(12)) / 100.0
}
