//! Fuzz-style property tests of every parser that reads outside input: S3 Encryption
//! Client envelopes and instruction files, format detection, OpenPGP packet headers and
//! armor. Bounded in `scripts/test` (`PROPTEST_CASES`, 256 by default); for a longer
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

#[test]
fn envelope_fuzz_inputs_include_the_empty_case() {
    assert!(
        Envelope::from_metadata(&BTreeMap::new(), None)
            .unwrap()
            .is_none()
    );
}
