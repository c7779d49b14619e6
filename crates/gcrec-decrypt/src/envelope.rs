//! The Amazon S3 Encryption Client envelope: how the data key is wrapped and how the
//! content is encrypted, read from the object's user metadata and/or its
//! `.instruction` file.
//!
//! | version | keys | content |
//! |---|---|---|
//! | V1 | `x-amz-key`, `x-amz-iv` (16 B), `x-amz-matdesc` | AES-256-CBC, unauthenticated |
//! | V2 | `x-amz-key-v2`, `x-amz-iv` (12 B), `x-amz-cek-alg`, `x-amz-tag-len`, `x-amz-wrap-alg`, `x-amz-matdesc` | AES-256-GCM |
//! | V3 | `x-amz-c` (`115`), `x-amz-3`, `x-amz-w`, `x-amz-t`/`x-amz-m`, `x-amz-d`, `x-amz-i` | AES-256-GCM with a derived, committed key |

use std::collections::BTreeMap;

use base64::Engine;

/// Envelope keys that mark an object as S3EC-encrypted.
pub const ENVELOPE_MARKERS: [&str; 3] = ["x-amz-key", "x-amz-key-v2", "x-amz-3"];
/// Envelope keys that say an object is S3EC-encrypted even when the wrapped key is in
/// an instruction file.
const CONTENT_MARKERS: [&str; 5] = ["x-amz-iv", "x-amz-cek-alg", "x-amz-c", "x-amz-d", "x-amz-i"];

/// Envelope format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Legacy, unauthenticated CBC.
    V1,
    /// AES-GCM.
    V2,
    /// AES-GCM with HKDF key derivation and key commitment (suite 0x0073).
    V3,
}

/// How the content is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// `AES/CBC/PKCS5Padding` (V1, and V2 without `x-amz-cek-alg`).
    AesCbc,
    /// `AES/GCM/NoPadding`.
    AesGcm,
    /// Suite 115 (0x0073): HKDF-SHA512 derived key, committed, AES-256-GCM.
    AesGcmCommitting,
}

/// How the data key is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWrap {
    /// KMS with `{"kms_cmk_id": …}` as context (V1).
    Kms,
    /// KMS with the stored encryption context (V2 `kms+context`, V3 `12`).
    KmsContext,
    /// RSA-OAEP with SHA-1 (V2 `RSA-OAEP-SHA1`, V3 `22`).
    RsaOaepSha1,
    /// RSA PKCS#1 v1.5 (V1).
    RsaPkcs1,
    /// AES-GCM with the cek algorithm as AAD (V2 `AES/GCM`, V3 `02`).
    AesGcm,
    /// RFC 3394 AES key wrap (V1 `AESWrap`).
    AesWrap,
    /// AES-ECB with PKCS#5 padding (V1 `AES`).
    AesEcb,
}

impl KeyWrap {
    /// The name the client writes.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyWrap::Kms => "kms",
            KeyWrap::KmsContext => "kms+context",
            KeyWrap::RsaOaepSha1 => "RSA-OAEP-SHA1",
            KeyWrap::RsaPkcs1 => "RSA",
            KeyWrap::AesGcm => "AES/GCM",
            KeyWrap::AesWrap => "AESWrap",
            KeyWrap::AesEcb => "AES",
        }
    }
}

/// An S3EC envelope that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A field the version needs is absent.
    #[error("S3 Encryption Client envelope lacks `{0}`{hint}", hint = if ["x-amz-key-v2", "x-amz-3", "x-amz-key"].contains(.0) { " (is its .instruction file missing?)" } else { "" })]
    Missing(&'static str),
    /// A field is not valid base64 or has the wrong length.
    #[error("S3 Encryption Client envelope field `{field}` is malformed: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An algorithm this version of gcrec does not read.
    #[error("S3 Encryption Client envelope names an unsupported algorithm {field} = {value:?}")]
    Unsupported {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// The instruction file is not a JSON object of strings.
    #[error("the .instruction file is not a JSON object of strings: {0}")]
    BadInstruction(String),
}

/// A parsed S3EC envelope.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Format version.
    pub version: Version,
    /// The wrapped (encrypted) data key.
    pub wrapped_key: Vec<u8>,
    /// How it is wrapped, if the envelope says (V1 may not).
    pub wrap: Option<KeyWrap>,
    /// How the content is encrypted.
    pub content: ContentCipher,
    /// The content IV (16 bytes for CBC, 12 for GCM; V3 uses a fixed IV).
    pub iv: Vec<u8>,
    /// The material description (V1/V2 `x-amz-matdesc`, V3 `x-amz-m`), as JSON.
    pub material_description: BTreeMap<String, String>,
    /// The KMS encryption context (V2: the material description; V3: `x-amz-t`).
    pub kms_context: BTreeMap<String, String>,
    /// V3 key commitment (28 bytes).
    pub commitment: Vec<u8>,
    /// V3 message ID (28 bytes), the HKDF salt.
    pub message_id: Vec<u8>,
    /// The content-encryption algorithm string the key wrap binds (`AES/GCM/NoPadding`,
    /// `115`, …).
    pub cek_alg: String,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("version", &self.version)
            .field("wrap", &self.wrap)
            .field("content", &self.content)
            .finish_non_exhaustive()
    }
}

fn b64(map: &BTreeMap<String, String>, field: &'static str) -> Result<Vec<u8>, EnvelopeError> {
    let value = map.get(field).ok_or(EnvelopeError::Missing(field))?;
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| EnvelopeError::Malformed {
            field,
            reason: e.to_string(),
        })
}

fn b64_len(
    map: &BTreeMap<String, String>,
    field: &'static str,
    len: usize,
) -> Result<Vec<u8>, EnvelopeError> {
    let bytes = b64(map, field)?;
    if bytes.len() != len {
        return Err(EnvelopeError::Malformed {
            field,
            reason: format!("{} bytes, expected {len}", bytes.len()),
        });
    }
    Ok(bytes)
}

fn json_map(
    map: &BTreeMap<String, String>,
    field: &'static str,
) -> Result<BTreeMap<String, String>, EnvelopeError> {
    match map.get(field) {
        None => Ok(BTreeMap::new()),
        Some(s) if s.trim().is_empty() => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str(s).map_err(|e| EnvelopeError::Malformed {
            field,
            reason: format!("not a JSON object of strings: {e}"),
        }),
    }
}

impl Envelope {
    /// Reads the envelope from user metadata (keys lower-case, without `x-amz-meta-`)
    /// and an instruction file's body. `Ok(None)` when the object is not S3EC-encrypted.
    pub fn from_metadata(
        user_metadata: &BTreeMap<String, String>,
        instruction: Option<&[u8]>,
    ) -> Result<Option<Envelope>, EnvelopeError> {
        let mut map: BTreeMap<String, String> = user_metadata
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        if let Some(body) = instruction {
            let fields: BTreeMap<String, String> = serde_json::from_slice(body)
                .map_err(|e| EnvelopeError::BadInstruction(e.to_string()))?;
            for (k, v) in fields {
                map.entry(k.to_ascii_lowercase()).or_insert(v);
            }
        }
        let marked = ENVELOPE_MARKERS.iter().any(|k| map.contains_key(*k));
        if !marked {
            // Content fields without a wrapped key: the key is in an instruction file
            // that is not here.
            if let Some(k) = CONTENT_MARKERS.iter().find(|k| map.contains_key(**k)) {
                let missing = if ["x-amz-c", "x-amz-d", "x-amz-i"].contains(k) {
                    "x-amz-3"
                } else {
                    "x-amz-key-v2"
                };
                return Err(EnvelopeError::Missing(missing));
            }
            return Ok(None);
        }
        if map.contains_key("x-amz-3") {
            Self::v3(&map).map(Some)
        } else if map.contains_key("x-amz-key-v2") {
            Self::v2(&map).map(Some)
        } else {
            Self::v1(&map).map(Some)
        }
    }

    fn v1(map: &BTreeMap<String, String>) -> Result<Envelope, EnvelopeError> {
        let material_description = json_map(map, "x-amz-matdesc")?;
        let wrap = match map.get("x-amz-wrap-alg").map(String::as_str) {
            None if material_description.contains_key("kms_cmk_id") => Some(KeyWrap::Kms),
            None => None,
            Some("kms") => Some(KeyWrap::Kms),
            Some("AESWrap") => Some(KeyWrap::AesWrap),
            Some("AES") => Some(KeyWrap::AesEcb),
            Some("RSA") | Some("RSA/ECB/PKCS1Padding") => Some(KeyWrap::RsaPkcs1),
            Some(other) => {
                return Err(EnvelopeError::Unsupported {
                    field: "x-amz-wrap-alg",
                    value: other.to_owned(),
                });
            }
        };
        Ok(Envelope {
            version: Version::V1,
            wrapped_key: b64(map, "x-amz-key")?,
            wrap,
            content: ContentCipher::AesCbc,
            iv: b64_len(map, "x-amz-iv", 16)?,
            kms_context: material_description.clone(),
            material_description,
            commitment: Vec::new(),
            message_id: Vec::new(),
            cek_alg: "AES/CBC/PKCS5Padding".into(),
        })
    }

    fn v2(map: &BTreeMap<String, String>) -> Result<Envelope, EnvelopeError> {
        let cek_alg = map
            .get("x-amz-cek-alg")
            .cloned()
            .unwrap_or_else(|| "AES/CBC/PKCS5Padding".into());
        let (content, iv_len) = match cek_alg.as_str() {
            "AES/GCM/NoPadding" => (ContentCipher::AesGcm, 12),
            "AES/CBC/PKCS5Padding" => (ContentCipher::AesCbc, 16),
            other => {
                return Err(EnvelopeError::Unsupported {
                    field: "x-amz-cek-alg",
                    value: other.to_owned(),
                });
            }
        };
        if let Some(t) = map.get("x-amz-tag-len")
            && content == ContentCipher::AesGcm
            && t != "128"
        {
            return Err(EnvelopeError::Unsupported {
                field: "x-amz-tag-len",
                value: t.clone(),
            });
        }
        let wrap = match map.get("x-amz-wrap-alg").map(String::as_str) {
            Some("kms+context") => KeyWrap::KmsContext,
            Some("kms") => KeyWrap::Kms,
            Some("RSA-OAEP-SHA1") => KeyWrap::RsaOaepSha1,
            Some("AES/GCM") => KeyWrap::AesGcm,
            Some("AESWrap") => KeyWrap::AesWrap,
            Some("RSA") | Some("RSA/ECB/PKCS1Padding") => KeyWrap::RsaPkcs1,
            Some(other) => {
                return Err(EnvelopeError::Unsupported {
                    field: "x-amz-wrap-alg",
                    value: other.to_owned(),
                });
            }
            None => return Err(EnvelopeError::Missing("x-amz-wrap-alg")),
        };
        let material_description = json_map(map, "x-amz-matdesc")?;
        Ok(Envelope {
            version: Version::V2,
            wrapped_key: b64(map, "x-amz-key-v2")?,
            wrap: Some(wrap),
            content,
            iv: b64_len(map, "x-amz-iv", iv_len)?,
            kms_context: material_description.clone(),
            material_description,
            commitment: Vec::new(),
            message_id: Vec::new(),
            cek_alg,
        })
    }

    fn v3(map: &BTreeMap<String, String>) -> Result<Envelope, EnvelopeError> {
        let suite = map
            .get("x-amz-c")
            .ok_or(EnvelopeError::Missing("x-amz-c"))?;
        if suite != "115" {
            return Err(EnvelopeError::Unsupported {
                field: "x-amz-c",
                value: suite.clone(),
            });
        }
        let wrap = match map.get("x-amz-w").map(String::as_str) {
            Some("02") => KeyWrap::AesGcm,
            Some("12") => KeyWrap::KmsContext,
            Some("22") => KeyWrap::RsaOaepSha1,
            Some(other) => {
                return Err(EnvelopeError::Unsupported {
                    field: "x-amz-w",
                    value: other.to_owned(),
                });
            }
            None => return Err(EnvelopeError::Missing("x-amz-w")),
        };
        Ok(Envelope {
            version: Version::V3,
            wrapped_key: b64(map, "x-amz-3")?,
            wrap: Some(wrap),
            content: ContentCipher::AesGcmCommitting,
            iv: vec![0x01; 12],
            material_description: json_map(map, "x-amz-m")?,
            kms_context: json_map(map, "x-amz-t")?,
            commitment: b64_len(map, "x-amz-d", 28)?,
            message_id: b64_len(map, "x-amz-i", 28)?,
            cek_alg: suite.clone(),
        })
    }

    /// `s3ec v2 (AES-GCM, RSA-OAEP-SHA1)` and the like.
    pub fn describe(&self) -> String {
        let version = match self.version {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::V3 => "v3",
        };
        let content = match self.content {
            ContentCipher::AesCbc => "AES-CBC",
            ContentCipher::AesGcm => "AES-GCM",
            ContentCipher::AesGcmCommitting => "AES-GCM, key-committing",
        };
        let wrap = self.wrap.map_or("unknown wrap", |w| w.as_str());
        format!("s3ec {version} ({content}, {wrap})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const IV12: &str = "AAAAAAAAAAAAAAAA"; // 12 zero bytes
    const B28: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="; // 28 zero bytes

    #[test]
    fn no_envelope_is_not_s3ec() {
        assert_eq!(
            Envelope::from_metadata(&meta(&[("foo", "bar")]), None).unwrap(),
            None
        );
    }

    #[test]
    fn v2_kms_context() {
        let m = meta(&[
            ("x-amz-key-v2", "AQID"),
            ("x-amz-iv", IV12),
            ("x-amz-cek-alg", "AES/GCM/NoPadding"),
            ("x-amz-tag-len", "128"),
            ("x-amz-wrap-alg", "kms+context"),
            (
                "x-amz-matdesc",
                r#"{"aws:x-amz-cek-alg":"AES/GCM/NoPadding","kms_cmk_id":"k"}"#,
            ),
        ]);
        let e = Envelope::from_metadata(&m, None).unwrap().unwrap();
        assert_eq!(
            (e.version, e.wrap, e.content),
            (
                Version::V2,
                Some(KeyWrap::KmsContext),
                ContentCipher::AesGcm
            )
        );
        assert_eq!(e.kms_context["aws:x-amz-cek-alg"], "AES/GCM/NoPadding");
        assert_eq!(e.describe(), "s3ec v2 (AES-GCM, kms+context)");
    }

    #[test]
    fn v3_split_between_metadata_and_instruction_file() {
        let object = meta(&[("x-amz-c", "115"), ("x-amz-d", B28), ("x-amz-i", B28)]);
        let err = Envelope::from_metadata(&object, None).unwrap_err();
        assert_eq!(err, EnvelopeError::Missing("x-amz-3"));
        assert!(err.to_string().contains(".instruction"));
        let instruction = br#"{"x-amz-3":"AQID","x-amz-w":"22","x-amz-m":"{}"}"#;
        let e = Envelope::from_metadata(&object, Some(instruction))
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.version, e.wrap),
            (Version::V3, Some(KeyWrap::RsaOaepSha1))
        );
        assert_eq!(e.iv, [1u8; 12]);
        assert_eq!(e.cek_alg, "115");
    }

    #[test]
    fn malformed_and_unsupported_fields_are_named() {
        let m = meta(&[
            ("x-amz-key-v2", "AQID"),
            ("x-amz-iv", "AAAA"),
            ("x-amz-cek-alg", "AES/GCM/NoPadding"),
            ("x-amz-wrap-alg", "AES/GCM"),
        ]);
        assert!(matches!(
            Envelope::from_metadata(&m, None),
            Err(EnvelopeError::Malformed {
                field: "x-amz-iv",
                ..
            })
        ));
        let m = meta(&[
            ("x-amz-key-v2", "AQID"),
            ("x-amz-iv", IV12),
            ("x-amz-cek-alg", "AES/CTR/NoPadding"),
            ("x-amz-wrap-alg", "AES/GCM"),
        ]);
        assert!(matches!(
            Envelope::from_metadata(&m, None),
            Err(EnvelopeError::Unsupported {
                field: "x-amz-cek-alg",
                ..
            })
        ));
        let m = meta(&[
            ("x-amz-3", "AQID"),
            ("x-amz-c", "115"),
            ("x-amz-w", "99"),
            ("x-amz-d", B28),
            ("x-amz-i", B28),
        ]);
        assert!(matches!(
            Envelope::from_metadata(&m, None),
            Err(EnvelopeError::Unsupported {
                field: "x-amz-w",
                ..
            })
        ));
        assert!(matches!(
            Envelope::from_metadata(&BTreeMap::new(), Some(b"[1]")),
            Err(EnvelopeError::BadInstruction(_))
        ));
    }
}
