//! AWS configuration: the standard chain (environment, profiles, SSO, assume-role,
//! `AWS_ENDPOINT_URL[_SERVICE]`) with `--region` and `--profile` on top. Loaded only when
//! something needs AWS, so runs that do not never touch it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use clap::Args;
use gcrec_decrypt::kms::AwsKms;
use gcrec_decrypt::s3ec::{Kms, KmsError, KmsPlaintext};
use tokio::sync::OnceCell;

/// AWS options.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "AWS")]
pub struct AwsArgs {
    /// AWS region (default: from the environment or profile).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from the AWS config and credentials files.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// Loads the SDK configuration.
pub async fn sdk_config(args: &AwsArgs) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// A KMS client created on first use.
#[derive(Debug)]
pub struct LazyKms {
    args: AwsArgs,
    client: OnceCell<AwsKms>,
}

impl LazyKms {
    /// Nothing is loaded yet.
    pub fn new(args: AwsArgs) -> Self {
        Self {
            args,
            client: OnceCell::new(),
        }
    }
}

#[async_trait]
impl Kms for LazyKms {
    async fn decrypt(
        &self,
        ciphertext: &[u8],
        context: &BTreeMap<String, String>,
        key_id: Option<&str>,
    ) -> Result<KmsPlaintext, KmsError> {
        let client = self
            .client
            .get_or_init(|| async { AwsKms::new(&sdk_config(&self.args).await) })
            .await;
        client.decrypt(ciphertext, context, key_id).await
    }
}
