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
        sdk_config_for(&self.endpoint)
    }

    /// Creates a KMS key in this server and returns its ARN.
    pub async fn create_kms_key(&self) -> String {
        let kms = aws_sdk_kms::Client::new(&self.sdk_config());
        let out = kms
            .create_key()
            .description("gcrec tests")
            .send()
            .await
            .expect("create a KMS key in moto");
        out.key_metadata()
            .map(|m| m.arn().unwrap_or_default().to_owned())
            .expect("key metadata")
    }

    /// A raw S3 client (path-style) for putting test objects.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        s3_client_for(&self.endpoint)
    }
}

/// An SDK configuration for a local server: static test credentials (`test`/`test`),
/// us-east-1, the endpoint.
pub fn sdk_config_for(endpoint: &str) -> aws_types::SdkConfig {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    assert!(endpoint.starts_with("http://127.0.0.1:"), "loopback only");
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
        .endpoint_url(endpoint)
        .build()
}

/// A raw, path-style S3 client for a local server.
pub fn s3_client_for(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&sdk_config_for(endpoint))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// s3s-fs, a second S3 implementation (Rust; enforces SigV4 and checksums), serving a
/// directory on a free 127.0.0.1 port: each folder of `data` is a bucket.
#[derive(Debug)]
pub struct S3sFs {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The directory served.
    pub data: tempfile::TempDir,
}

impl S3sFs {
    /// Starts one over a fresh directory and waits until it answers.
    pub fn start() -> S3sFs {
        let bin = tools_dir().join("cargo/bin/s3s-fs");
        assert!(
            bin.is_file(),
            "{} is missing: run scripts/test, which runs `cargo install s3s-fs --version 0.14.1 --locked --features binary --root target/tools/cargo`",
            bin.display()
        );
        let data = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "test", "--secret-key", "test"])
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        S3sFs {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            data,
        }
    }

    /// A raw client for putting test objects.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        s3_client_for(&self.endpoint)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Server-side encryption for [`upload_with`].
#[derive(Debug, Clone)]
pub enum Sse {
    /// None requested.
    None,
    /// SSE-S3.
    S3,
    /// SSE-KMS with this key ARN.
    Kms(String),
    /// SSE-C with this key.
    Customer([u8; 32]),
}

/// Uploads objects with server-side encryption and, when `user_metadata` gives some for
/// a key, that user metadata; a few at a time. The bucket must exist.
pub async fn upload_with(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    sse: &Sse,
    objects: impl Iterator<Item = (String, Vec<u8>, std::collections::HashMap<String, String>)>,
) {
    use aws_sdk_s3::types::ServerSideEncryption;
    use base64::Engine;
    use futures::StreamExt;
    futures::stream::iter(objects)
        .map(|(key, body, metadata)| async move {
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut put = client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .set_metadata(Some(metadata).filter(|m| !m.is_empty()))
                .body(aws_sdk_s3::primitives::ByteStream::from(body));
            put = match sse {
                Sse::None => put,
                Sse::S3 => put.server_side_encryption(ServerSideEncryption::Aes256),
                Sse::Kms(arn) => put
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(arn),
                Sse::Customer(k) => put
                    .sse_customer_algorithm("AES256")
                    .sse_customer_key(b64.encode(k))
                    .sse_customer_key_md5(gcrec_fetch::source::SseCustomerKey::new(k).md5()),
            };
            put.send().await.unwrap_or_else(|e| {
                panic!("put {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e))
            });
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// Uploads objects into a bucket (created if missing), a few at a time.
pub async fn upload(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    objects: impl Iterator<Item = (String, Vec<u8>)>,
) {
    let _ = client.create_bucket().bucket(bucket).send().await;
    let objects = objects.map(|(key, body)| (key, body, std::collections::HashMap::new()));
    upload_with(client, bucket, &Sse::None, objects).await;
}

/// `tests/interop/fault_proxy.py` between a client and an S3 server: answers with the
/// failures S3 documents (503 SlowDown, resets, truncated bodies, KMS and SSE-C
/// errors, region redirects) where the rules say so, and forwards everything else.
#[derive(Debug)]
pub struct FaultProxy {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (e.g. a [`Moto`] endpoint).
    pub fn start(upstream: &str) -> FaultProxy {
        let script = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/interop/fault_proxy.py"
        ));
        let mut child = Command::new(venv_bin("python"))
            .arg(script)
            .arg(upstream)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fault_proxy.py");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the proxy prints its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("unexpected first line from the proxy: {line:?}"))
            .to_owned();
        FaultProxy {
            child,
            stdin,
            stdout,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    fn command(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        use std::io::Write;
        writeln!(self.stdin, "{cmd}").expect("write to the proxy");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("the proxy answers");
        serde_json::from_str(&line).expect("a JSON answer")
    }

    /// Adds a rule (see the script's documentation).
    pub fn add(&mut self, rule: serde_json::Value) {
        let answer = self.command(serde_json::json!({"cmd": "add", "rule": rule}));
        assert_eq!(answer["ok"], true, "{answer}");
    }

    /// Removes every rule and clears the log.
    pub fn clear(&mut self) {
        self.command(serde_json::json!({"cmd": "clear"}));
    }

    /// The requests seen since the last clear: method, path, range, status, region.
    pub fn log(&mut self) -> Vec<serde_json::Value> {
        match self.command(serde_json::json!({"cmd": "log"}))["log"].take() {
            serde_json::Value::Array(entries) => entries,
            other => panic!("unexpected log: {other}"),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Uploads a file (streamed from disk, one PUT) into an existing bucket.
pub async fn put_file(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &std::path::Path,
) {
    let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)));
}
