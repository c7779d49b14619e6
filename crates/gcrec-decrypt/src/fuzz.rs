//! Fuzz-style property tests of every parser that reads outside input: S3 Encryption
//! Client envelopes and instruction files, format detection, OpenPGP packet headers and
//! armor, CMS messages. Bounded in `scripts/test` (`PROPTEST_CASES`, 256 by default); for a longer
//! local run: `PROPTEST_CASES=100000 cargo test -p gcrec-decrypt --release fuzz`.

use std::collections::BTreeMap;
use std::io::Cursor;

use proptest::prelude::*;

use crate::detect::detect;
use crate::envelope::Envelope;
use crate::keys::Keyring;
use crate::openpgp;

fn envelope_field() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "x-amz-key",
        "x-amz-key-v2",
        "x-amz-iv",
        "x-amz-matdesc",
        "x-amz-cek-alg",
        "x-amz-tag-len",
        "x-amz-wrap-alg",
        "x-amz-unencrypted-content-length",
        "x-amz-c",
        "x-amz-3",
        "x-amz-w",
        "x-amz-t",
        "x-amz-m",
        "x-amz-d",
        "x-amz-i",
        "other",
    ])
    .prop_map(str::to_owned)
}

fn envelope_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9+/=]{0,64}",
        Just("AES/GCM/NoPadding".to_owned()),
        Just("AES/CBC/PKCS5Padding".to_owned()),
        Just("115".to_owned()),
        Just("12".to_owned()),
        Just("22".to_owned()),
        Just("128".to_owned()),
        Just("{}".to_owned()),
        Just("{\"kms_cmk_id\":\"k\"}".to_owned()),
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn fuzz_envelopes_and_instruction_files_never_panic(
        metadata in prop::collection::btree_map(envelope_field(), envelope_value(), 0..12),
        instruction in prop::option::of(prop_oneof![
            any::<Vec<u8>>(),
            prop::collection::btree_map(envelope_field(), envelope_value(), 0..12)
                .prop_map(|m| serde_json::to_vec(&m).unwrap_or_default()),
        ]),
        head in any::<Vec<u8>>(),
    ) {
        let _ = Envelope::from_metadata(&metadata, instruction.as_deref());
        let _ = detect(&head, &metadata, instruction.as_deref());
    }

    #[test]
    fn fuzz_openpgp_packets_never_panic(
        tag in prop::sample::select(vec![0x84u8, 0x85, 0x8c, 0xc1, 0xc3, 0xd2, 0xa3]),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut message = vec![tag];
        message.extend(body);
        let result = openpgp::decrypt(Cursor::new(message), false, &Keyring::new(), &mut std::io::sink());
        prop_assert!(result.is_err(), "random bytes decrypted");
    }

    #[test]
    fn fuzz_openpgp_armor_never_panics_and_errors_stay_short(
        headers in prop::collection::vec("[ -~]{0,80}", 0..100),
        body in "[A-Za-z0-9+/=\n]{0,400}",
    ) {
        let text = format!(
            "-----BEGIN PGP MESSAGE-----\n{}\n\n{body}\n-----END PGP MESSAGE-----\n",
            headers.join("\n")
        );
        let result = openpgp::decrypt(Cursor::new(text.into_bytes()), true, &Keyring::new(), &mut std::io::sink());
        match result {
            Ok(_) => prop_assert!(false, "random armor decrypted"),
            Err(e) => prop_assert!(e.to_string().len() < 2000, "{} bytes of error", e.to_string().len()),
        }
    }
}

/// A DER element with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A keyring with one small RSA key, and an AuthEnvelopedData message to it (recipient
/// named by subject key identifier), built by hand: the plaintext and the message.
fn cms_fixture() -> &'static (Keyring, Vec<u8>, Vec<u8>) {
    use aes_gcm::aead::{Aead, KeyInit};
    use rsa::traits::PublicKeyParts;
    static FIXTURE: std::sync::OnceLock<(Keyring, Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = rand::thread_rng();
        let key = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap_or_else(|e| panic!("{e}"));
        let cek = [7u8; 32];
        let nonce = [9u8; 12];
        let plain: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let sealed = aes_gcm::Aes256Gcm::new((&cek).into())
            .encrypt((&nonce).into(), plain.as_slice())
            .unwrap_or_default();
        let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
        let ek = key
            .to_public_key()
            .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, &cek)
            .unwrap_or_default();
        let ski = vec![0x5a; 20];
        let oid = |bytes: &[u8]| tlv(0x06, bytes);
        let recipient = tlv(
            0x30,
            &[
                tlv(0x02, &[2]),
                tlv(0x80, &ski),
                tlv(
                    0x30,
                    &[
                        oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]),
                        vec![5, 0],
                    ]
                    .concat(),
                ),
                tlv(0x04, &ek),
            ]
            .concat(),
        );
        let alg = tlv(
            0x30,
            &[
                oid(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e]),
                tlv(0x30, &[tlv(0x04, &nonce), tlv(0x02, &[16])].concat()),
            ]
            .concat(),
        );
        let eci = tlv(
            0x30,
            &[
                oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]),
                alg,
                tlv(0x80, ciphertext),
            ]
            .concat(),
        );
        let auth = tlv(
            0x30,
            &[tlv(0x02, &[0]), tlv(0x31, &recipient), eci, tlv(0x04, tag)].concat(),
        );
        let message = tlv(
            0x30,
            &[oid(crate::cms::armor::OID_AUTH_ENVELOPED), tlv(0xa0, &auth)].concat(),
        );
        let mut keys = Keyring::new();
        keys.rsa.push(crate::keys::RsaKey {
            native: crate::rsa_native::NativeRsa::from_key(&key),
            fingerprint: format!("{:x}", key.n()).chars().take(64).collect(),
            key,
            ski,
            source: "fixture".into(),
        });
        (keys, plain, message)
    })
}

fn cms_decrypt(message: &[u8]) -> Result<Vec<u8>, crate::cms::CmsError> {
    let (keys, ..) = cms_fixture();
    let mut out = Vec::new();
    crate::cms::decrypt(
        &mut Cursor::new(message),
        crate::cms::Encoding::Der,
        keys,
        false,
        &mut out,
    )
    .map(|_| out)
}

#[test]
fn the_hand_built_cms_message_decrypts() {
    let (_, plain, message) = cms_fixture();
    assert_eq!(
        &cms_decrypt(message).unwrap_or_else(|e| panic!("{e}")),
        plain
    );
}

proptest! {
    #[test]
    fn fuzz_cms_messages_never_panic_and_never_release_altered_content(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (_, plain, message) = cms_fixture();
        let mut m = message.clone();
        for (at, x) in flips {
            let i = at.index(m.len());
            m[i] ^= x;
        }
        if let Some(c) = cut {
            m.truncate(c.index(m.len()));
        }
        // An alteration that still decrypts may only touch what authenticates nothing
        // (the version number, say): the plaintext must be the original.
        if let Ok(out) = cms_decrypt(&m) {
            prop_assert_eq!(&out, plain);
        }
    }

    #[test]
    fn fuzz_cms_headers_never_panic(body in prop::collection::vec(any::<u8>(), 0..800)) {
        let mut m = vec![0x30, 0x80, 0x06, 0x0b];
        m.extend_from_slice(crate::cms::armor::OID_AUTH_ENVELOPED);
        m.extend(body);
        prop_assert!(cms_decrypt(&m).is_err());
        for encoding in [crate::cms::Encoding::Pem, crate::cms::Encoding::Smime] {
            let text = [&b"-----BEGIN CMS-----\n"[..], &m].concat();
            let _ = crate::cms::decrypt(&mut Cursor::new(text), encoding, &Keyring::new(), true, &mut std::io::sink());
        }
    }
}

#[test]
fn envelope_fuzz_inputs_include_the_empty_case() {
    assert!(
        Envelope::from_metadata(&BTreeMap::new(), None)
            .unwrap()
            .is_none()
    );
}
