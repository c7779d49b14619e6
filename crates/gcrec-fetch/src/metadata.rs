//! The metadata sidecar (`{recordingId}_metadata.json`): a typed view over the documented
//! schema that keeps the original document, unknown fields included, for verbatim output.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

/// Sidecars larger than this are rejected without being read into memory.
pub const DEFAULT_SIDECAR_CAP: u64 = 1024 * 1024;

/// The fields the schema requires.
pub const REQUIRED_FIELDS: [&str; 12] = [
    "mediaType",
    "provider",
    "startTime",
    "endTime",
    "durationMs",
    "organizationId",
    "conversationId",
    "conversationStartTime",
    "conversationEndTime",
    "recordingId",
    "filePath",
    "fileSize",
];

/// The kind of interaction a recording captured.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum MediaType {
    /// A voice call (`.opus`).
    Call,
    /// A chat.
    Chat,
    /// An email.
    Email,
    /// A message (SMS, social, web messaging…).
    Message,
    /// A callback.
    Callback,
    /// A screen recording (`.zip`).
    Screen,
    /// A value the schema does not list, kept as written.
    Other(String),
}

impl MediaType {
    /// Parses a media type, case-insensitively; unknown values are kept.
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "call" => Self::Call,
            "chat" => Self::Chat,
            "email" => Self::Email,
            "message" => Self::Message,
            "callback" => Self::Callback,
            "screen" => Self::Screen,
            _ => Self::Other(s.to_owned()),
        }
    }

    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Call => "Call",
            Self::Chat => "Chat",
            Self::Email => "Email",
            Self::Message => "Message",
            Self::Callback => "Callback",
            Self::Screen => "Screen",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed metadata sidecar.
///
/// The typed fields mirror the documented schema. [`RecordingMetadata::document`] is the
/// whole JSON object as it was read, in its original field order and with numbers as
/// written, so unknown fields (e.g. `mediaSubtype`) round-trip verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingMetadata {
    /// `mediaType`.
    pub media_type: MediaType,
    /// `provider`, e.g. `edge`.
    pub provider: String,
    /// `userIds`: agents on the recording.
    pub user_ids: Vec<String>,
    /// `startTime`: when the recording started.
    pub start_time: DateTime<Utc>,
    /// `endTime`: when the recording ended.
    pub end_time: DateTime<Utc>,
    /// `durationMs`.
    pub duration_ms: u64,
    /// `initialDirection`: inbound / outbound.
    pub initial_direction: Option<String>,
    /// `aniNormalized`: caller number.
    pub ani_normalized: Option<String>,
    /// `aniDisplayable`.
    pub ani_displayable: Option<String>,
    /// `dnisNormalized`: dialed number.
    pub dnis_normalized: Option<String>,
    /// `dnisDisplayable`.
    pub dnis_displayable: Option<String>,
    /// `queueIds`.
    pub queue_ids: Vec<String>,
    /// `wrapupCodes`.
    pub wrapup_codes: Vec<String>,
    /// `organizationId`.
    pub organization_id: String,
    /// `conversationId`.
    pub conversation_id: String,
    /// `conversationStartTime`.
    pub conversation_start_time: DateTime<Utc>,
    /// `conversationEndTime`.
    pub conversation_end_time: DateTime<Utc>,
    /// `recordingId`.
    pub recording_id: String,
    /// `filePath`: the recording's original path.
    pub file_path: String,
    /// `fileSize`: size of the recording file.
    pub file_size: u64,
    /// `messageType`: sms, whatsapp, webmessaging, …
    pub message_type: Option<String>,
    /// `languageIds`.
    pub language_ids: Option<String>,
    /// `screenInformation`, kept as an object.
    pub screen_information: Option<Map<String, Value>>,
    document: Map<String, Value>,
}

/// What is wrong with a sidecar. Wrapped in [`MetadataError`] with the object key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataProblem {
    /// The sidecar is larger than the cap.
    #[error(
        "is {size} bytes, over the {cap}-byte sidecar limit; it was not read: raise the limit if it is genuine"
    )]
    TooLarge {
        /// Size of the object.
        size: u64,
        /// The cap in force.
        cap: u64,
    },
    /// The sidecar could not be read from the source.
    #[error("could not be read: {0}")]
    Unreadable(String),
    /// The body is not JSON.
    #[error("is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("is JSON but not an object")]
    NotObject,
    /// A required field is absent or null.
    #[error("lacks the required field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("field `{field}` should be {expected}, found {found}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// What the schema says.
        expected: &'static str,
        /// What the document has.
        found: &'static str,
    },
    /// A field appears twice in one object: a reader could take either value.
    #[error("has the field `{0}` twice; refusing to guess which value is real")]
    DuplicateField(String),
    /// The sidecar names another recording, conversation or organization than its key.
    #[error("says {field} is {in_sidecar:?}, but its key says {in_key:?}")]
    KeyMismatch {
        /// The field.
        field: &'static str,
        /// What the key says.
        in_key: String,
        /// What the sidecar says.
        in_sidecar: String,
    },
    /// Several sidecars of one recording disagree.
    #[error(
        "is one of several sidecars for this recording that disagree ({others}); refusing to pick one"
    )]
    Conflicting {
        /// The other sidecars' keys.
        others: String,
    },
    /// A timestamp field is not ISO-8601.
    #[error("field `{field}` is not an ISO-8601 timestamp: {value:?}")]
    BadTimestamp {
        /// The field name.
        field: &'static str,
        /// The value as written.
        value: String,
    },
}

/// A sidecar that could not be used, naming its key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("metadata sidecar {key} {problem}")]
pub struct MetadataError {
    /// The sidecar's object key.
    pub key: String,
    /// What is wrong.
    pub problem: MetadataProblem,
}

impl MetadataError {
    /// What the user can change to get past this error, when there is something.
    pub fn hint(&self) -> Option<crate::Hint> {
        matches!(self.problem, MetadataProblem::TooLarge { .. })
            .then_some(crate::Hint::SidecarLimit)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first field name that appears twice in one JSON object, at any depth. (A map
/// keeps the last value of a repeated key, silently; a sidecar must not be read one way
/// here and another way elsewhere.)
pub fn duplicate_field(body: &[u8]) -> Option<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;

    struct Check<'a>(&'a RefCell<Option<String>>);

    impl<'de> DeserializeSeed<'de> for Check<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Check<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) && self.0.borrow().is_none() {
                    *self.0.borrow_mut() = Some(key);
                }
                map.next_value_seed(Check(self.0))?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Check(self.0))?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }

    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    Check(&found).deserialize(&mut de).ok()?;
    found.into_inner()
}

/// Reads typed fields out of the document, turning each mismatch into a [`MetadataProblem`].
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// The value of `field`, treating JSON `null` as absent.
    fn get(&self, field: &'static str) -> Option<&'a Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    fn required(&self, field: &'static str) -> Result<&'a Value, MetadataProblem> {
        self.get(field).ok_or(MetadataProblem::MissingField(field))
    }

    fn as_str(field: &'static str, v: &'a Value) -> Result<&'a str, MetadataProblem> {
        v.as_str().ok_or(MetadataProblem::WrongType {
            field,
            expected: "a string",
            found: type_name(v),
        })
    }

    fn string(&self, field: &'static str) -> Result<String, MetadataProblem> {
        Self::as_str(field, self.required(field)?).map(str::to_owned)
    }

    fn opt_string(&self, field: &'static str) -> Result<Option<String>, MetadataProblem> {
        self.get(field)
            .map(|v| Self::as_str(field, v).map(str::to_owned))
            .transpose()
    }

    fn strings(&self, field: &'static str) -> Result<Vec<String>, MetadataProblem> {
        let Some(v) = self.get(field) else {
            return Ok(Vec::new());
        };
        let wrong = |found| MetadataProblem::WrongType {
            field,
            expected: "an array of strings",
            found,
        };
        v.as_array()
            .ok_or_else(|| wrong(type_name(v)))?
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong(type_name(item)))
            })
            .collect()
    }

    fn unsigned(&self, field: &'static str) -> Result<u64, MetadataProblem> {
        let v = self.required(field)?;
        v.as_u64().ok_or(MetadataProblem::WrongType {
            field,
            expected: "a non-negative integer",
            found: type_name(v),
        })
    }

    fn time(&self, field: &'static str) -> Result<DateTime<Utc>, MetadataProblem> {
        let s = Self::as_str(field, self.required(field)?)?;
        parse_timestamp(s).ok_or_else(|| MetadataProblem::BadTimestamp {
            field,
            value: s.chars().take(64).collect(),
        })
    }

    fn object(&self, field: &'static str) -> Result<Option<Map<String, Value>>, MetadataProblem> {
        self.get(field)
            .map(|v| {
                v.as_object().cloned().ok_or(MetadataProblem::WrongType {
                    field,
                    expected: "an object",
                    found: type_name(v),
                })
            })
            .transpose()
    }
}

/// Parses an ISO-8601 timestamp as Genesys writes them (`2024-03-07T09:15:02.123Z`).
/// Offsets are honoured; a timestamp without an offset is taken as UTC.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // `+0000` offsets (no colon) and naive timestamps.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

impl RecordingMetadata {
    /// Parses a sidecar body. `key` is only used to name the sidecar in errors.
    pub fn from_slice(key: &str, body: &[u8]) -> Result<Self, MetadataError> {
        Self::parse(body).map_err(|problem| MetadataError {
            key: key.to_owned(),
            problem,
        })
    }

    fn parse(body: &[u8]) -> Result<Self, MetadataProblem> {
        // A byte-order mark is not JSON, but editors write one.
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let value: Value =
            serde_json::from_slice(body).map_err(|e| MetadataProblem::NotJson(e.to_string()))?;
        if let Some(field) = duplicate_field(body) {
            return Err(MetadataProblem::DuplicateField(crate::brief(&field)));
        }
        let Value::Object(document) = value else {
            return Err(MetadataProblem::NotObject);
        };
        Self::from_document(document)
    }

    /// Builds the typed view over an already-parsed JSON object.
    pub fn from_document(document: Map<String, Value>) -> Result<Self, MetadataProblem> {
        let f = Fields(&document);
        let media_type = MediaType::parse(Fields::as_str("mediaType", f.required("mediaType")?)?);
        let meta = RecordingMetadata {
            media_type,
            provider: f.string("provider")?,
            user_ids: f.strings("userIds")?,
            start_time: f.time("startTime")?,
            end_time: f.time("endTime")?,
            duration_ms: f.unsigned("durationMs")?,
            initial_direction: f.opt_string("initialDirection")?,
            ani_normalized: f.opt_string("aniNormalized")?,
            ani_displayable: f.opt_string("aniDisplayable")?,
            dnis_normalized: f.opt_string("dnisNormalized")?,
            dnis_displayable: f.opt_string("dnisDisplayable")?,
            queue_ids: f.strings("queueIds")?,
            wrapup_codes: f.strings("wrapupCodes")?,
            organization_id: f.string("organizationId")?,
            conversation_id: f.string("conversationId")?,
            conversation_start_time: f.time("conversationStartTime")?,
            conversation_end_time: f.time("conversationEndTime")?,
            recording_id: f.string("recordingId")?,
            file_path: f.string("filePath")?,
            file_size: f.unsigned("fileSize")?,
            message_type: f.opt_string("messageType")?,
            language_ids: f.opt_string("languageIds")?,
            screen_information: f.object("screenInformation")?,
            document: Map::new(),
        };
        Ok(RecordingMetadata { document, ..meta })
    }

    /// The whole sidecar as read: every field, unknown ones included, in original order.
    pub fn document(&self) -> &Map<String, Value> {
        &self.document
    }

    /// Fields the schema does not document (e.g. `mediaSubtype`), in original order.
    pub fn unknown_fields(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.document
            .iter()
            .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
    }
}

/// Every field the schema documents.
pub const KNOWN_FIELDS: [&str; 23] = [
    "mediaType",
    "provider",
    "userIds",
    "startTime",
    "endTime",
    "durationMs",
    "initialDirection",
    "aniNormalized",
    "aniDisplayable",
    "dnisNormalized",
    "dnisDisplayable",
    "queueIds",
    "wrapupCodes",
    "organizationId",
    "conversationId",
    "conversationStartTime",
    "conversationEndTime",
    "recordingId",
    "filePath",
    "fileSize",
    "messageType",
    "languageIds",
    "screenInformation",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({
            "mediaType": "Call",
            "provider": "edge",
            "userIds": ["u-1", "u-2"],
            "startTime": "2024-03-07T09:15:02.123Z",
            "endTime": "2024-03-07T09:20:02.123Z",
            "durationMs": 300000,
            "initialDirection": "inbound",
            "aniNormalized": "tel:+13175550100",
            "aniDisplayable": "(317) 555-0100",
            "dnisNormalized": "tel:+18005550199",
            "dnisDisplayable": "1-800-555-0199",
            "queueIds": ["q-1"],
            "wrapupCodes": ["w-1"],
            "organizationId": "org-1",
            "conversationId": "conv-1",
            "conversationStartTime": "2024-03-07T09:14:59.000Z",
            "conversationEndTime": "2024-03-07T09:21:00.000Z",
            "recordingId": "rec-1",
            "filePath": "/recordings/rec-1.opus",
            "fileSize": 123456,
            "messageType": "sms",
            "languageIds": "en-US",
            "screenInformation": {"screenId": "s1", "x": 0, "y": 0, "resolution": "1920x1080"}
        })
    }

    fn parse(v: &Value) -> Result<RecordingMetadata, MetadataError> {
        RecordingMetadata::from_slice("org/k_metadata.json", &serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn a_full_sidecar_parses_into_typed_fields() {
        let m = parse(&full()).unwrap();
        assert_eq!(m.media_type, MediaType::Call);
        assert_eq!(m.user_ids, ["u-1", "u-2"]);
        assert_eq!(m.duration_ms, 300_000);
        assert_eq!(m.file_size, 123_456);
        assert_eq!(m.start_time.to_rfc3339(), "2024-03-07T09:15:02.123+00:00");
        assert_eq!(m.ani_normalized.as_deref(), Some("tel:+13175550100"));
        assert_eq!(
            m.screen_information.as_ref().unwrap()["resolution"],
            "1920x1080"
        );
        assert_eq!(m.unknown_fields().count(), 0);
    }

    #[test]
    fn each_missing_required_field_is_named_with_the_key() {
        for field in REQUIRED_FIELDS {
            let mut v = full();
            v.as_object_mut().unwrap().remove(field);
            let err = parse(&v).unwrap_err();
            assert_eq!(err.problem, MetadataProblem::MissingField(field));
            let msg = err.to_string();
            assert!(
                msg.contains("org/k_metadata.json") && msg.contains(field),
                "{msg}"
            );
            // null counts as missing too
            let mut v = full();
            v[field] = Value::Null;
            assert_eq!(
                parse(&v).unwrap_err().problem,
                MetadataProblem::MissingField(field)
            );
        }
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let mut v = full();
        for field in KNOWN_FIELDS.iter().filter(|f| !REQUIRED_FIELDS.contains(f)) {
            v.as_object_mut().unwrap().remove(*field);
        }
        let m = parse(&v).unwrap();
        assert!(m.user_ids.is_empty() && m.queue_ids.is_empty() && m.ani_normalized.is_none());
    }

    #[test]
    fn wrong_types_are_reported_per_field() {
        let cases = [
            (
                "durationMs",
                json!("300000"),
                "a non-negative integer",
                "a string",
            ),
            (
                "durationMs",
                json!(-1),
                "a non-negative integer",
                "a number",
            ),
            (
                "durationMs",
                json!(1.5),
                "a non-negative integer",
                "a number",
            ),
            (
                "fileSize",
                json!(true),
                "a non-negative integer",
                "a boolean",
            ),
            ("mediaType", json!(3), "a string", "a number"),
            ("recordingId", json!(["x"]), "a string", "an array"),
            ("startTime", json!(1709802902), "a string", "a number"),
            ("userIds", json!("u-1"), "an array of strings", "a string"),
            ("queueIds", json!([1]), "an array of strings", "a number"),
            ("aniNormalized", json!({}), "a string", "an object"),
            (
                "screenInformation",
                json!("1920x1080"),
                "an object",
                "a string",
            ),
        ];
        for (field, value, expected, found) in cases {
            let mut v = full();
            v[field] = value;
            assert_eq!(
                parse(&v).unwrap_err().problem,
                MetadataProblem::WrongType {
                    field,
                    expected,
                    found
                },
                "{field}"
            );
        }
    }

    #[test]
    fn bad_timestamps_are_reported() {
        let mut v = full();
        v["conversationStartTime"] = json!("yesterday");
        assert_eq!(
            parse(&v).unwrap_err().problem,
            MetadataProblem::BadTimestamp {
                field: "conversationStartTime",
                value: "yesterday".into()
            }
        );
    }

    #[test]
    fn timestamp_forms() {
        let want = "2024-03-07T09:15:02Z";
        for s in [
            "2024-03-07T09:15:02Z",
            "2024-03-07T09:15:02.000Z",
            "2024-03-07T10:15:02+01:00",
            "2024-03-07T10:15:02+0100",
            "2024-03-07T09:15:02",
        ] {
            assert_eq!(
                parse_timestamp(s)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                want,
                "{s}"
            );
        }
    }

    #[test]
    fn not_json_and_not_object() {
        let e = RecordingMetadata::from_slice("k", b"{\"mediaType\": ").unwrap_err();
        assert!(matches!(e.problem, MetadataProblem::NotJson(_)));
        let e = RecordingMetadata::from_slice("k", b"[1,2]").unwrap_err();
        assert_eq!(e.problem, MetadataProblem::NotObject);
        let e = RecordingMetadata::from_slice("k", b"\xff\xfe").unwrap_err();
        assert!(matches!(e.problem, MetadataProblem::NotJson(_)));
    }

    #[test]
    fn unknown_fields_are_kept_verbatim_and_in_order() {
        let body = br#"{"mediaSubtype":"Trunk","mediaType":"call","provider":"edge","startTime":"2024-03-07T09:15:02Z","endTime":"2024-03-07T09:20:02Z","durationMs":300000,"organizationId":"o","conversationId":"c","conversationStartTime":"2024-03-07T09:15:00Z","conversationEndTime":"2024-03-07T09:21:00Z","recordingId":"r","filePath":"p","fileSize":10,"vendorScore":1.50,"nested":{"b":1,"a":[1e+3,12345678901234567890123,null]}}"#;
        let m = RecordingMetadata::from_slice("k", body).unwrap();
        assert_eq!(
            m.media_type,
            MediaType::Call,
            "media types parse case-insensitively"
        );
        let unknown: Vec<_> = m.unknown_fields().map(|(k, _)| k.as_str()).collect();
        assert_eq!(unknown, ["mediaSubtype", "vendorScore", "nested"]);
        // Written back, the document is byte-identical: order, precision and number
        // spelling kept (exponents are written with an explicit sign).
        assert_eq!(serde_json::to_vec(m.document()).unwrap(), body.to_vec());
    }

    #[test]
    fn unknown_media_types_are_kept() {
        let mut v = full();
        v["mediaType"] = json!("Video");
        assert_eq!(
            parse(&v).unwrap().media_type,
            MediaType::Other("Video".into())
        );
    }
}
