//! [`Fixture`](crate::conformance::Fixture)s for the sources that need no server.

use std::sync::Arc;

use async_trait::async_trait;
use gcrec_fetch::source::{LocalSource, MemorySource, ObjectSource};

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
