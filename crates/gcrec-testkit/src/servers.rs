//! Servers the tests talk to, on free loopback ports, stopped on drop: moto (S3 and KMS
//! in one process, from the venv `scripts/test` builds). A missing server fails the test
//! with what to run; nothing skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/test` installs test tools (`GCREC_TEST_TOOLS`, else `target/tools`).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("GCREC_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tools"))
        })
}

/// A program from the test venv.
pub fn venv_bin(name: &str) -> PathBuf {
    let p = tools_dir().join("py/bin").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/test, which creates the venv from tests/interop/requirements.txt",
        p.display()
    );
    p
}

/// A moto server (S3 + KMS) on a free 127.0.0.1 port.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts one and waits until it answers.
    pub fn start() -> Moto {
        let mut child = Command::new(venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(i) = line.find("http://127.0.0.1:") {
                    let url: String = line[i..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    let _ = tx.send(url);
                    sent = true;
                }
            }
        });
        let endpoint = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("moto_server printed its address");
        let port: u16 = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {endpoint}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { child, endpoint }
    }

    /// Points an AWS SDK/CLI command at this server, with test credentials and no
    /// instance-metadata lookups (nothing may leave the machine).
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE");
    }

    /// An SDK configuration for this server (static test credentials, us-east-1).
    pub fn sdk_config(&self) -> aws_types::SdkConfig {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
        aws_types::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test",
                "test",
                None,
                None,
                "gcrec-tests",
            )))
            .endpoint_url(&self.endpoint)
            .build()
    }

    /// A raw S3 client (path-style) for putting test objects.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Uploads objects into a bucket (created if missing), a few at a time.
pub async fn upload(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    objects: impl Iterator<Item = (String, Vec<u8>)>,
) {
    use futures::StreamExt;
    let _ = client.create_bucket().bucket(bucket).send().await;
    futures::stream::iter(objects)
        .map(|(key, body)| async move {
            client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(aws_sdk_s3::primitives::ByteStream::from(body))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {key}: {e}"));
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}
