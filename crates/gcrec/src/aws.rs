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
    /// S3 endpoint, for S3-compatible stores (default: AWS, or AWS_ENDPOINT_URL[_S3]).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Path-style bucket addressing (automatic for an IP or localhost endpoint).
    #[arg(long)]
    pub path_style: bool,
    /// SSE-C: the customer-provided key (32 raw bytes, or base64) sent with every read.
    #[arg(long, value_name = "FILE")]
    pub sse_c_key_file: Option<std::path::PathBuf>,
    /// How long one S3 request may go unanswered, and a body without a byte, before it is
    /// retried; a body slower than 1 KiB/s over that long is resumed too.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// Whether an endpoint needs path-style addressing (no DNS for `bucket.host`).
fn wants_path_style(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let host = host.split(['/', ':']).next().unwrap_or_default();
    host == "localhost" || host.parse::<std::net::Ipv4Addr>().is_ok() || host.starts_with('[')
}

/// Opens a SOURCE argument: `s3://bucket[/prefix]` through the AWS configuration, or a
/// local directory.
pub async fn open_source(
    location: &str,
    args: &AwsArgs,
) -> anyhow::Result<gcrec_fetch::source::OpenedSource> {
    if !location.starts_with("s3://") {
        return Ok(gcrec_fetch::source::open_source(location)?);
    }
    let (config, options) = s3_config(location, args).await?;
    Ok(gcrec_fetch::source::S3Source::open(
        &config, location, options,
    )?)
}

/// The SDK configuration and S3 options a SOURCE URL and the AWS flags give.
async fn s3_config(
    location: &str,
    args: &AwsArgs,
) -> anyhow::Result<(aws_config::SdkConfig, gcrec_fetch::source::S3Options)> {
    use gcrec_fetch::source::{S3Options, SseCustomerKey};
    // A malformed URL is reported before any AWS configuration is loaded.
    gcrec_fetch::source::parse_s3_url(location)?;
    let config = sdk_config(args).await;
    if config.region().is_none() {
        return Err(crate::exit::UsageError(
            "no AWS region configured: pass --region, or set AWS_REGION or a region in your AWS profile".into(),
        )
        .into());
    }
    let endpoint = args
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| config.endpoint_url().map(str::to_owned));
    let sse_customer_key = match &args.sse_c_key_file {
        Some(path) => {
            let key = gcrec_decrypt::keys::read_aes_key(path)
                .map_err(|e| crate::exit::UsageError(format!("--sse-c-key-file: {e}")))?;
            Some(SseCustomerKey::new(&key))
        }
        None => None,
    };
    let options = S3Options {
        force_path_style: args.path_style || endpoint.as_deref().is_some_and(wants_path_style),
        endpoint_url: args.endpoint_url.clone(),
        sse_customer_key,
        request_timeout: (args.timeout > 0).then(|| std::time::Duration::from_secs(args.timeout)),
    };
    Ok((config, options))
}

/// The AWS caller identity (STS GetCallerIdentity) for a chain-of-custody record, or
/// `None` if it cannot be had.
pub async fn caller_identity(args: &AwsArgs) -> Option<serde_json::Value> {
    caller_and_clock(args).await.map(|(who, _)| who)
}

/// Reads the `Date` header of a response: how far the server's clock is from ours.
#[derive(Debug, Default, Clone)]
struct ServerClock(std::sync::Arc<std::sync::Mutex<Option<i64>>>);

impl aws_sdk_sts::config::Intercept for ServerClock {
    fn name(&self) -> &'static str {
        "gcrec-server-clock"
    }

    fn read_after_transmit(
        &self,
        context: &aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_sts::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
        let skew = context
            .response()
            .headers()
            .get("date")
            .and_then(|d| DateTime::from_str(d, DateTimeFormat::HttpDate).ok())
            .map(|server| server.secs() - chrono::Utc::now().timestamp());
        if let Ok(mut slot) = self.0.lock() {
            *slot = skew;
        }
        Ok(())
    }
}

/// The caller identity, and the seconds the STS server's clock is ahead of ours (when it
/// sent a `Date`).
pub async fn caller_and_clock(args: &AwsArgs) -> Option<(serde_json::Value, Option<i64>)> {
    let client = aws_sdk_sts::Client::new(&sdk_config(args).await);
    let clock = ServerClock::default();
    let out = client
        .get_caller_identity()
        .customize()
        .interceptor(clock.clone())
        .send()
        .await
        .ok()?;
    let skew = clock.0.lock().ok().and_then(|s| *s);
    Some((
        serde_json::json!({
            "arn": out.arn(),
            "account": out.account(),
            "user_id": out.user_id(),
        }),
        skew,
    ))
}

/// Where the credentials come from, as the standard chain would find them: the first of
/// the sources it tries that is configured.
pub fn credentials_source(args: &AwsArgs) -> String {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") {
        "environment variables (AWS_ACCESS_KEY_ID)".into()
    } else if let Some(p) = args
        .profile
        .clone()
        .or_else(|| std::env::var("AWS_PROFILE").ok())
    {
        format!("profile {p} (profile, SSO or assumed role)")
    } else if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        "a web identity token (role for a Kubernetes service account)".into()
    } else if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        "the container's role (ECS, AWS Batch)".into()
    } else {
        "the default profile or the instance's role".into()
    }
}

/// The region configured (flag, environment or profile), if any.
pub async fn configured_region(args: &AwsArgs) -> Option<String> {
    sdk_config(args).await.region().map(|r| r.to_string())
}

/// The state of each KMS key, through `DescribeKey`.
pub async fn kms_key_states(
    args: &AwsArgs,
    keys: impl IntoIterator<Item = String>,
) -> Vec<(String, Result<String, String>)> {
    let kms = AwsKms::new(&sdk_config(args).await);
    let mut out = Vec::new();
    for key in keys {
        let state = kms.key_state(&key).await;
        out.push((key, state));
    }
    out
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
