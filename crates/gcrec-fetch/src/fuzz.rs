//! Fuzz-style property tests of every parser that reads outside input: layout keys,
//! sidecars, listing answers (the URL-decoding of keys and the guard against repeating
//! or disordered pages). They run a bounded number of cases in `scripts/test`
//! (`PROPTEST_CASES`, 256 by default); for a longer local run:
//! `PROPTEST_CASES=200000 cargo test -p gcrec-fetch --release fuzz`.

use proptest::prelude::*;

use crate::layout::{ParsedKey, is_safe_key, parse_key};
use crate::metadata::{RecordingMetadata, duplicate_field};
use crate::source::{ListPage, ObjectSummary};

/// Key-like strings: layout segments, unicode, separators and control characters.
fn key_like() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("org".to_owned()),
        Just("year=2024".to_owned()),
        Just("month=3".to_owned()),
        Just("month=13".to_owned()),
        Just("day=07".to_owned()),
        Just("hour=9".to_owned()),
        Just("conversation_id=c".to_owned()),
        Just("..".to_owned()),
        Just(String::new()),
        Just("r.opus".to_owned()),
        Just("r_metadata.json".to_owned()),
        Just("r.opus.instruction".to_owned()),
        "[a-z0-9=._\\-]{0,12}",
        "\\PC{0,8}",
        any::<String>(),
    ];
    prop::collection::vec(segment, 0..10).prop_map(|s| s.join("/"))
}

/// A sidecar-like JSON document, more or less broken.
fn sidecar_like() -> impl Strategy<Value = Vec<u8>> {
    let valid = r#"{"mediaType":"Call","provider":"edge","startTime":"2024-03-07T09:00:00Z","endTime":"2024-03-07T09:01:00Z","durationMs":60000,"organizationId":"o","conversationId":"c","conversationStartTime":"2024-03-07T09:00:00Z","conversationEndTime":"2024-03-07T09:01:00Z","recordingId":"r","filePath":"x","fileSize":1,"userIds":["u"]}"#;
    prop_oneof![
        any::<Vec<u8>>(),
        (0..valid.len(), any::<u8>()).prop_map(move |(at, b)| {
            let mut v = valid.as_bytes().to_vec();
            v[at] = b;
            v
        }),
        (0..valid.len()).prop_map(move |cut| valid.as_bytes()[..cut].to_vec()),
        "\\{(\"[a-zA-Z]{1,12}\":(1|\"x\"|null|\\[\\]|\\{\\}),){0,20}\"a\":1\\}"
            .prop_map(String::into_bytes),
        (1usize..200)
            .prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn fuzz_layout_keys_never_panic_and_export_keys_are_safe(key in key_like()) {
        if let ParsedKey::Export(k) = parse_key(&key) {
            prop_assert!(is_safe_key(&k.key));
            prop_assert!(k.key.ends_with(&k.file_name));
            prop_assert!(k.folder().ends_with('/'));
        }
    }

    #[test]
    fn fuzz_sidecars_never_panic(body in sidecar_like()) {
        let parsed = RecordingMetadata::from_slice("k", &body);
        if let Ok(m) = parsed {
            prop_assert_eq!(m.recording_id.as_str(), m.document()["recordingId"].as_str().unwrap_or_default());
        }
        let _ = duplicate_field(&body);
    }

    #[test]
    fn fuzz_url_encoded_listing_keys_never_panic(s in any::<String>(), bytes in any::<Vec<u8>>()) {
        let _ = crate::source::s3::url_decoded(&s);
        let _ = crate::source::s3::url_decoded(&String::from_utf8_lossy(&bytes));
        // Decoding what was encoded gives it back.
        let encoded: String = percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC).collect();
        prop_assert_eq!(crate::source::s3::url_decoded(&encoded), s);
    }

    #[test]
    fn fuzz_listing_pages_never_panic_and_repeats_are_refused(
        pages in prop::collection::vec(
            (prop::collection::vec("[a-c/]{0,4}", 0..5), prop::option::of("[a-b]{1,2}")),
            1..8,
        )
    ) {
        let mut guard = crate::source::ListingGuard::default();
        let mut tokens = std::collections::HashSet::new();
        for (keys, next) in pages {
            let page = ListPage {
                objects: keys
                    .into_iter()
                    .map(|key| ObjectSummary { key, size: 0, etag: None, last_modified: None })
                    .collect(),
                common_prefixes: Vec::new(),
                next: next.clone(),
            };
            let repeated = next.as_ref().is_some_and(|t| !tokens.insert(t.clone()));
            let checked = guard.check("p", &page);
            if repeated {
                prop_assert!(checked.is_err());
            }
            if checked.is_err() {
                break;
            }
        }
    }
}
