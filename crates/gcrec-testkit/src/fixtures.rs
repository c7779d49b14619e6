//! [`Fixture`](crate::conformance::Fixture)s for the sources that need no server.

use std::sync::Arc;

use async_trait::async_trait;
use gcrec_fetch::source::{LocalSource, MemorySource, ObjectSource, S3Options, S3Source};

use crate::conformance::Fixture;

/// A local directory in a fresh temporary folder.
#[derive(Debug)]
pub struct LocalFixture {
    dir: tempfile::TempDir,
}

impl LocalFixture {
    /// An empty directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Default for LocalFixture {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Fixture for LocalFixture {
    async fn put(&self, key: &str, body: &[u8]) {
        let path = self.dir.path().join(key);
        std::fs::create_dir_all(path.parent().expect("keys have a parent")).expect("mkdir");
        // Write to a new inode so the modification time and size change together.
        let tmp = path.with_extension("fixture-tmp");
        std::fs::write(&tmp, body).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
    }

    fn source(&self) -> Arc<dyn ObjectSource> {
        Arc::new(LocalSource::open(self.dir.path()).expect("open local source"))
    }
}

/// An in-memory source.
#[derive(Debug, Default)]
pub struct MemoryFixture(Arc<MemorySource>);

#[async_trait]
impl Fixture for MemoryFixture {
    async fn put(&self, key: &str, body: &[u8]) {
        self.0.put_bytes(key, body.to_vec());
    }

    fn source(&self) -> Arc<dyn ObjectSource> {
        self.0.clone()
    }
}

/// The S3 server behind an [`S3Fixture`].
#[derive(Debug)]
pub enum S3Server {
    /// moto (Python).
    Moto(crate::servers::Moto),
    /// s3s-fs (Rust).
    S3sFs(crate::servers::S3sFs),
}

impl S3Server {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        match self {
            S3Server::Moto(m) => &m.endpoint,
            S3Server::S3sFs(s) => &s.endpoint,
        }
    }
}

/// A fresh bucket on an S3 server of its own.
#[derive(Debug)]
pub struct S3Fixture {
    /// The server (stopped with the fixture).
    pub server: S3Server,
    /// A raw client, for putting objects.
    pub client: aws_sdk_s3::Client,
    /// The bucket.
    pub bucket: String,
    source: Arc<S3Source>,
}

impl S3Fixture {
    /// Starts moto and creates an empty bucket.
    pub async fn new() -> Self {
        Self::on(S3Server::Moto(crate::servers::Moto::start())).await
    }

    /// Starts s3s-fs and creates an empty bucket.
    pub async fn s3s_fs() -> Self {
        Self::on(S3Server::S3sFs(crate::servers::S3sFs::start())).await
    }

    async fn on(server: S3Server) -> Self {
        let client = crate::servers::s3_client_for(server.endpoint());
        let bucket = "conformance".to_owned();
        client
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket");
        let options = S3Options {
            force_path_style: true,
            ..S3Options::default()
        };
        let config = crate::servers::sdk_config_for(server.endpoint());
        let source = Arc::new(S3Source::new(&config, &bucket, options));
        Self {
            server,
            client,
            bucket,
            source,
        }
    }
}

#[async_trait]
impl Fixture for S3Fixture {
    async fn put(&self, key: &str, body: &[u8]) {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("put object");
    }

    fn source(&self) -> Arc<dyn ObjectSource> {
        self.source.clone()
    }
}
