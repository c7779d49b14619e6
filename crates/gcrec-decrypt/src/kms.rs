//! [`Kms`] over AWS KMS (`aws-sdk-kms`), with S3's and KMS's failures turned into errors
//! that name the key and the permission.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use crate::s3ec::{Kms, KmsError, KmsPlaintext};

/// AWS KMS through the SDK. Build it from the standard AWS configuration
/// (`aws_config::load_defaults`), which honours profiles, regions and
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_KMS`.
#[derive(Debug, Clone)]
pub struct AwsKms {
    client: aws_sdk_kms::Client,
}

impl AwsKms {
    /// The state of a KMS key (`Enabled`, `Disabled`, `PendingDeletion`, …), as
    /// `DescribeKey` reports it; the error says what went wrong (access, a missing key).
    pub async fn key_state(&self, key_id: &str) -> Result<String, String> {
        let out = self
            .client
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_kms::error::ProvideErrorMetadata;
                format!(
                    "{}: {}",
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or_default()
                )
            })?;
        Ok(out
            .key_metadata()
            .and_then(|m| m.key_state())
            .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned()))
    }

    /// A KMS client from an SDK configuration.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            client: aws_sdk_kms::Client::new(config),
        }
    }
}

#[async_trait]
impl Kms for AwsKms {
    async fn decrypt(
        &self,
        ciphertext: &[u8],
        context: &BTreeMap<String, String>,
        key_id: Option<&str>,
    ) -> Result<KmsPlaintext, KmsError> {
        let context: HashMap<String, String> = context.clone().into_iter().collect();
        let mut request = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(context));
        if let Some(k) = key_id {
            request = request.key_id(k);
        }
        match request.send().await {
            Ok(out) => {
                let plain = out
                    .plaintext
                    .ok_or_else(|| KmsError::Other("KMS returned no plaintext".into()))?;
                Ok(KmsPlaintext {
                    plaintext: Zeroizing::new(plain.into_inner()),
                    key_id: out.key_id,
                })
            }
            Err(e) => {
                let key = key_id.map(str::to_owned);
                let code = e.code().unwrap_or_default().to_owned();
                let message = e.message().map_or_else(
                    || format!("{e:?}").chars().take(300).collect(),
                    str::to_owned,
                );
                Err(match code.as_str() {
                    "AccessDeniedException" => KmsError::AccessDenied {
                        key_id: key,
                        message,
                    },
                    "InvalidCiphertextException" | "IncorrectKeyException" => {
                        KmsError::InvalidCiphertext(message)
                    }
                    "DisabledException"
                    | "NotFoundException"
                    | "KMSInvalidStateException"
                    | "KeyUnavailableException" => KmsError::KeyUnusable {
                        key_id: key.unwrap_or_else(|| "(named in the ciphertext)".into()),
                        message: format!("{code}: {message}"),
                    },
                    "" => KmsError::Other(message),
                    _ => KmsError::Other(format!("{code}: {message}")),
                })
            }
        }
    }
}
