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

/// `message` with bytes flipped (by XOR with a non-zero value) and maybe cut short.
fn mutate(
    message: &[u8],
    flips: &[(prop::sample::Index, u8)],
    cut: Option<prop::sample::Index>,
) -> Vec<u8> {
    let mut m = message.to_vec();
    for (at, x) in flips {
        let i = at.index(m.len());
        m[i] ^= x;
    }
    if let Some(c) = cut {
        m.truncate(c.index(m.len()));
    }
    m
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
        let m = mutate(message, &flips, cut);
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

/// An AWS Encryption SDK message built by hand (suite 0x0478: committed, unsigned;
/// framed in 256-byte frames; a raw AES data key): the keyring, plaintext and message.
fn esdk_fixture() -> &'static (Keyring, Vec<u8>, Vec<u8>) {
    use crate::gcm::GcmStream;
    use hkdf::Hkdf;
    static FIXTURE: std::sync::OnceLock<(Keyring, Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let wrapping = [3u8; 32];
        let data_key = [4u8; 32];
        let message_id = [5u8; 32];
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
        let seal = |key: &[u8], iv: &[u8; 12], aad: &[u8], data: &[u8]| {
            let mut gcm = GcmStream::new(key, iv, aad).unwrap_or_else(|e| panic!("{e}"));
            let mut buf = data.to_vec();
            gcm.encrypt(&mut buf);
            (buf, gcm.tag())
        };
        let u16b = |n: usize| (n as u16).to_be_bytes();
        let mut header = vec![2u8, 0x04, 0x78];
        header.extend_from_slice(&message_id);
        header.extend_from_slice(&u16b(0));
        header.extend_from_slice(&u16b(1));
        let iv = [6u8; 12];
        let (wrapped, tag) = seal(&wrapping, &iv, b"", &data_key);
        let provider = b"gcrec-fuzz";
        let mut info = b"key".to_vec();
        info.extend_from_slice(&128u32.to_be_bytes());
        info.extend_from_slice(&12u32.to_be_bytes());
        info.extend_from_slice(&iv);
        for field in [&provider[..], &info, &[wrapped.as_slice(), &tag].concat()] {
            header.extend_from_slice(&u16b(field.len()));
            header.extend_from_slice(field);
        }
        header.push(2);
        header.extend_from_slice(&256u32.to_be_bytes());
        let hk = Hkdf::<sha2::Sha512>::new(Some(&message_id), &data_key);
        let mut key = [0u8; 32];
        let mut commit = [0u8; 32];
        hk.expand(&[&[0x04u8, 0x78][..], b"DERIVEKEY"].concat(), &mut key)
            .unwrap_or_default();
        hk.expand(b"COMMITKEY", &mut commit).unwrap_or_default();
        header.extend_from_slice(&commit);
        let (_, header_tag) = seal(&key, &[0; 12], &header, b"");
        let mut message = header;
        message.extend_from_slice(&header_tag);
        let chunks: Vec<&[u8]> = plain.chunks(256).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let seq = i as u32 + 1;
            let last = i + 1 == chunks.len();
            let label: &[u8] = if last {
                b"AWSKMSEncryptionClient Final Frame"
            } else {
                b"AWSKMSEncryptionClient Frame"
            };
            let mut aad = message_id.to_vec();
            aad.extend_from_slice(label);
            aad.extend_from_slice(&seq.to_be_bytes());
            aad.extend_from_slice(&(chunk.len() as u64).to_be_bytes());
            let mut iv = [0u8; 12];
            iv[8..].copy_from_slice(&seq.to_be_bytes());
            let (ct, tag) = seal(&key, &iv, &aad, chunk);
            if last {
                message.extend_from_slice(&u32::MAX.to_be_bytes());
            }
            message.extend_from_slice(&seq.to_be_bytes());
            message.extend_from_slice(&iv);
            if last {
                message.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            }
            message.extend_from_slice(&ct);
            message.extend_from_slice(&tag);
        }
        let mut keys = Keyring::new();
        keys.aes.push(crate::keys::AesKey {
            key: zeroize::Zeroizing::new(wrapping),
            fingerprint: "fuzz".into(),
            source: "fixture".into(),
        });
        (keys, plain, message)
    })
}

fn esdk_decrypt(message: &[u8]) -> Result<Vec<u8>, String> {
    let (keys, ..) = esdk_fixture();
    let header = crate::esdk::parse_header(message)
        .map_err(|e| e.to_string())?
        .ok_or("incomplete header")?;
    let rt = tokio_free_block_on(crate::esdk::open(&header, keys, None, &BTreeMap::new()))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    crate::esdk::decrypt(&mut Cursor::new(message), &header, &rt, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Runs a future that never waits (no KMS here) to completion.
fn tokio_free_block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn the_hand_built_esdk_message_decrypts() {
    let (_, plain, message) = esdk_fixture();
    assert_eq!(
        &esdk_decrypt(message).unwrap_or_else(|e| panic!("{e}")),
        plain
    );
}

proptest! {
    #[test]
    fn fuzz_esdk_messages_never_panic_and_never_release_altered_content(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (_, plain, message) = esdk_fixture();
        let m = mutate(message, &flips, cut);
        if let Ok(out) = esdk_decrypt(&m) {
            prop_assert_eq!(&out, plain);
        }
    }

    #[test]
    fn fuzz_esdk_headers_never_panic(
        prefix in prop::sample::select(vec![vec![1u8, 0x80], vec![2, 0x04, 0x78], vec![2, 0x05, 0x78]]),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let m = [prefix, body].concat();
        let _ = crate::esdk::parse_header(&m);
        let _ = esdk_decrypt(&m);
    }
}
