//! The server-side encryption policy a download enforces (`ExpectSse`).

use crate::source::{ObjectInfo, SourceError, SseMode};

/// The server-side encryption an object must have (`--expect-sse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectSse {
    /// SSE-S3 (`AES256`).
    Aes256,
    /// SSE-KMS, with this key when one is given (an ARN, a key ID or an alias ARN).
    Kms(Option<String>),
}

impl std::str::FromStr for ExpectSse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AES256" | "aes256" | "sse-s3" => Ok(Self::Aes256),
            "aws:kms" | "sse-kms" => Ok(Self::Kms(None)),
            _ => match s.strip_prefix("aws:kms:") {
                Some(key) if !key.is_empty() => Ok(Self::Kms(Some(key.to_owned()))),
                _ => Err(format!(
                    "{s:?}: expected AES256, aws:kms or aws:kms:KEY-ARN"
                )),
            },
        }
    }
}

impl std::fmt::Display for ExpectSse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Aes256 => f.write_str("AES256"),
            Self::Kms(None) => f.write_str("aws:kms"),
            Self::Kms(Some(key)) => write!(f, "aws:kms with key {key}"),
        }
    }
}

/// The last segment of a key ARN or the ID itself: `arn:aws:kms:r:a:key/ID` → `ID`.
fn key_id(arn_or_id: &str) -> &str {
    arn_or_id.rsplit('/').next().unwrap_or(arn_or_id)
}

impl ExpectSse {
    /// Checks an object's encryption, naming what was found when it does not match.
    pub fn check(&self, info: &ObjectInfo) -> Result<(), SourceError> {
        let sse = &info.sse;
        let ok = match (self, &sse.mode) {
            (Self::Aes256, SseMode::Aes256) => true,
            (Self::Kms(None), SseMode::AwsKms | SseMode::AwsKmsDsse) => true,
            (Self::Kms(Some(want)), SseMode::AwsKms | SseMode::AwsKmsDsse) => sse
                .kms_key_id
                .as_deref()
                .is_some_and(|got| got == want || key_id(got) == key_id(want)),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let found = match (&sse.mode, &sse.kms_key_id) {
            (SseMode::None, _) => "none".to_owned(),
            (SseMode::Aes256, _) => "AES256".to_owned(),
            (SseMode::AwsKms, Some(k)) => format!("aws:kms with key {k}"),
            (SseMode::AwsKms, None) => "aws:kms (no key ID reported)".to_owned(),
            (SseMode::AwsKmsDsse, k) => format!(
                "aws:kms:dsse{}",
                k.as_ref()
                    .map(|k| format!(" with key {k}"))
                    .unwrap_or_default()
            ),
            (SseMode::CustomerKey, _) => "SSE-C".to_owned(),
            (SseMode::Other(o), _) => o.clone(),
        };
        Err(SourceError::UnexpectedSse {
            key: info.key.clone(),
            expected: self.to_string(),
            found,
        })
    }
}
