//! Unlocking a passphrase-protected OpenPGP secret key component with the iterated and
//! salted S2K computed on gcrec's side.
//!
//! Why not rPGP's `remove_password` for the common case: its S2K feeds the repeated
//! salt and passphrase to a collision-detecting SHA-1 (`sha1_checked`, no SHA-NI) a few
//! bytes per call — 0.12 s of CPU per component for GnuPG's usual 65 MB count, paid
//! before a pull can start (measured with `perf`: 8 % of a 340-recording RSA pull). The
//! same derivation here runs through the `sha1`/`sha2` crates in 64 KiB updates
//! (SHA-NI: about 0.03 s; `cargo bench --bench s2k`). Everything after the key
//! derivation stays rPGP's: its CFB decryption of the key material and its parser of the
//! secret MPIs; the SHA-1 check of the decrypted material (a checksum, so collision
//! detection adds nothing) is compared in constant time. Any other protection (AEAD,
//! Argon2, the malleable or legacy CFB forms, other hashes, v6 keys) is left to rPGP
//! unchanged.

use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{
    EncryptedSecretParams, KeyDetails, KeyVersion, PlainSecretParams, PublicParams, S2kParams,
    StringToKey,
};
use sha1::Digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The bytes fed to the hash per update: the repeated salt and passphrase.
const FEED: usize = 64 * 1024;

/// The secret material of `encrypted`, unlocked with `passphrase`, when its protection is
/// the common CFB + iterated-and-salted SHA-1/SHA-256 form of a v4 key. `None` when the
/// protection is another form (the caller falls back to rPGP) **or** the passphrase is
/// wrong — both end at rPGP's `remove_password`, which says which.
pub(crate) fn unlock(
    encrypted: &EncryptedSecretParams,
    public: &(impl KeyDetails + ?Sized),
    passphrase: &[u8],
) -> Option<PlainSecretParams> {
    if public.version() != KeyVersion::V4 {
        return None;
    }
    let S2kParams::Cfb { sym_alg, s2k, iv } = encrypted.string_to_key_params() else {
        return None;
    };
    let StringToKey::IteratedAndSalted {
        hash_alg,
        salt,
        count,
    } = s2k
    else {
        return None;
    };
    let key = match hash_alg {
        HashAlgorithm::Sha1 => derive::<sha1::Sha1>(salt, *count, passphrase, sym_alg.key_size()),
        HashAlgorithm::Sha256 => {
            derive::<sha2::Sha256>(salt, *count, passphrase, sym_alg.key_size())
        }
        _ => return None,
    };
    let mut plain = Zeroizing::new(encrypted.data().to_vec());
    sym_alg.decrypt_with_iv_regular(&key, iv, &mut plain).ok()?;
    let body_len = plain.len().checked_sub(20)?;
    let (body, check) = plain.split_at(body_len);
    if !bool::from(sha1::Sha1::digest(body).as_slice().ct_eq(check)) {
        return None;
    }
    let params: &PublicParams = public.public_params();
    PlainSecretParams::try_from_reader_no_checksum(body, KeyVersion::V4, public.algorithm(), params)
        .ok()
}

/// The iterated and salted S2K (RFC 9580 §3.7.1.3): `rounds` hashes, the n-th preceded by
/// n zero bytes, each over `salt ‖ passphrase` repeated to `count` bytes (at least once).
fn derive<D: Digest>(
    salt: &[u8; 8],
    coded_count: u8,
    passphrase: &[u8],
    key_size: usize,
) -> Zeroizing<Vec<u8>> {
    let count = (16usize + usize::from(coded_count & 15)) << (u32::from(coded_count >> 4) + 6);
    let unit = salt.len() + passphrase.len();
    let total = count.max(unit);
    // Whole units, as many as fit in one feed (at least one), so every update is aligned.
    let mut feed = Zeroizing::new(Vec::with_capacity(FEED.max(unit) + unit));
    while feed.len() + unit <= FEED.max(unit) {
        feed.extend_from_slice(salt);
        feed.extend_from_slice(passphrase);
    }
    let digest_size = <D as Digest>::output_size();
    let mut key = Zeroizing::new(Vec::with_capacity(key_size));
    let mut round = 0;
    while key.len() < key_size {
        let mut hasher = D::new();
        hasher.update(vec![0u8; round]);
        let mut left = total;
        while left > 0 {
            let take = left.min(feed.len());
            hasher.update(&feed[..take]);
            left -= take;
        }
        let hash = hasher.finalize();
        let want = (key_size - key.len()).min(digest_size);
        key.extend_from_slice(&hash[..want]);
        round += 1;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rPGP's own derivation, the reference.
    fn reference(
        hash_alg: HashAlgorithm,
        salt: [u8; 8],
        count: u8,
        pw: &[u8],
        size: usize,
    ) -> Vec<u8> {
        StringToKey::IteratedAndSalted {
            hash_alg,
            salt,
            count,
        }
        .derive_key(pw, size)
        .unwrap()
        .as_ref()
        .to_vec()
    }

    #[test]
    fn derivation_matches_rpgp_for_every_shape() {
        let salt = [1, 2, 3, 4, 5, 6, 7, 8];
        // Counts below one unit and not a multiple of the unit;
        // keys shorter, equal to and longer than the digest (two rounds).
        for count in [0u8, 1, 0x60, 0x9d] {
            for pw in [
                &b""[..],
                b"p",
                b"correct horse battery staple",
                &[0xa5; 300],
            ] {
                for size in [16, 20, 24, 32] {
                    assert_eq!(
                        derive::<sha1::Sha1>(&salt, count, pw, size).to_vec(),
                        reference(HashAlgorithm::Sha1, salt, count, pw, size),
                        "SHA-1, count {count}, passphrase {} bytes, key {size}",
                        pw.len()
                    );
                }
                assert_eq!(
                    derive::<sha2::Sha256>(&salt, count, pw, 32).to_vec(),
                    reference(HashAlgorithm::Sha256, salt, count, pw, 32),
                );
            }
        }
        // GnuPG's usual count (65 MB), once: slow in a debug build.
        assert_eq!(
            derive::<sha1::Sha1>(&salt, 0xff, b"p", 16).to_vec(),
            reference(HashAlgorithm::Sha1, salt, 0xff, b"p", 16),
        );
    }

    /// Every component of GnuPG's example RSA-3072 key (SHA-1 S2K, the 65 MB count) and
    /// of a key rPGP protects itself (`gcrec keys generate`) opens to exactly what rPGP
    /// opens it to; a wrong passphrase opens nothing.
    #[test]
    fn example_keys_open_as_rpgp_opens_them() {
        use pgp::composed::{Deserializable, SignedSecretKey};
        use pgp::types::{Password, SecretParams};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../keys-example");
        let example = std::fs::read_to_string(dir.join("passphrase.txt")).unwrap();
        let generated = crate::keys::generate_pgp_pair("s2k@example.invalid", Some("another"))
            .unwrap()
            .secret;
        let keys = [
            (
                "pgp-rsa3072.sec.asc",
                std::fs::read_to_string(dir.join("pgp-rsa3072.sec.asc")).unwrap(),
                example.trim_end_matches(['\r', '\n']),
            ),
            ("generated", generated.to_string(), "another"),
        ];
        for (file, text, pw) in &keys {
            let (key, _) = SignedSecretKey::from_armor_single(text.as_bytes()).unwrap();
            let mut rpgp = key.clone();
            rpgp.primary_key
                .remove_password(&Password::from(*pw))
                .unwrap();
            let SecretParams::Encrypted(enc) = key.primary_key.secret_params() else {
                panic!("{file}: the example key is protected");
            };
            let SecretParams::Plain(want) = rpgp.primary_key.secret_params() else {
                unreachable!()
            };
            let public = key.primary_key.public_key();
            assert_eq!(
                unlock(enc, public, pw.as_bytes()).as_ref(),
                Some(want),
                "{file}"
            );
            assert!(
                unlock(enc, public, b"not the passphrase").is_none(),
                "{file}"
            );
            for (sub, opened) in key.secret_subkeys.iter().zip(&mut rpgp.secret_subkeys) {
                opened.key.remove_password(&Password::from(*pw)).unwrap();
                let (SecretParams::Encrypted(enc), SecretParams::Plain(want)) =
                    (sub.key.secret_params(), opened.key.secret_params())
                else {
                    panic!("{file}: a protected subkey");
                };
                let public = sub.key.public_key();
                assert_eq!(
                    unlock(enc, public, pw.as_bytes()).as_ref(),
                    Some(want),
                    "{file}"
                );
                assert!(unlock(enc, public, b"").is_none(), "{file}");
            }
        }
    }
}
