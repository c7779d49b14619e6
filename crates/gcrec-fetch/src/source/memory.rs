//! An in-memory object source: the reference implementation of the listing rules and the
//! test double for pipelines (see `gcrec-testkit` for fault injection around it).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::paging::{Resume, WalkItem, page_from_walk};
use super::{
    GetRequest, ListPage, ListRequest, ObjectBody, ObjectInfo, ObjectSource, ObjectSummary,
    ServerSideEncryption, SourceError,
};

/// Bytes per chunk of a [`MemorySource`] body, small enough to exercise reassembly.
const CHUNK: usize = 64 * 1024;

/// An object held by a [`MemorySource`].
#[derive(Debug, Clone, Default)]
pub struct MemoryObject {
    /// The bytes.
    pub body: Bytes,
    /// User metadata (`x-amz-meta-*` without the prefix).
    pub user_metadata: BTreeMap<String, String>,
    /// Server-side encryption to report.
    pub sse: ServerSideEncryption,
    /// Last-modified time to report.
    pub last_modified: Option<DateTime<Utc>>,
}

/// Objects in a sorted map, listed and read like a bucket.
#[derive(Debug, Default)]
pub struct MemorySource {
    objects: RwLock<BTreeMap<String, MemoryObject>>,
    /// `Some` when the "bucket" has Object Lock: the keys under legal hold.
    holds: RwLock<Option<std::collections::BTreeSet<String>>>,
}

fn etag_of(body: &[u8]) -> String {
    // A cheap, content-derived tag (FNV-1a), quoted like S3's. Not an MD5.
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}-{}\"", body.len())
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns on Object Lock, so that objects can be put under legal hold (the in-memory
    /// double of a bucket created with Object Lock enabled).
    pub fn enable_object_lock(&self) {
        let mut holds = self.holds.write().unwrap_or_else(|e| e.into_inner());
        holds.get_or_insert_with(Default::default);
    }

    /// Stores (or replaces) an object.
    pub fn put(&self, key: impl Into<String>, object: MemoryObject) {
        self.objects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.into(), object);
    }

    /// Deletes an object (and nothing else: its holds stay).
    pub fn delete(&self, key: &str) {
        self.objects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Stores (or replaces) an object with just a body.
    pub fn put_bytes(&self, key: impl Into<String>, body: impl Into<Bytes>) {
        self.put(
            key,
            MemoryObject {
                body: body.into(),
                ..MemoryObject::default()
            },
        );
    }

    fn lookup(&self, key: &str, request: &GetRequest) -> Result<(ObjectInfo, Bytes), SourceError> {
        if request.version_id.is_some() {
            return Err(SourceError::Unsupported {
                what: "reading a version ID",
                source_kind: "in-memory",
            });
        }
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let object = objects.get(key).ok_or_else(|| SourceError::NotFound {
            key: key.to_owned(),
        })?;
        let etag = etag_of(&object.body);
        if let Some(expected) = &request.if_match
            && *expected != etag
        {
            return Err(SourceError::Changed {
                key: key.to_owned(),
                expected: expected.clone(),
            });
        }
        let info = ObjectInfo {
            key: key.to_owned(),
            size: object.body.len() as u64,
            etag: Some(etag),
            last_modified: object.last_modified,
            version_id: None,
            user_metadata: object.user_metadata.clone(),
            sse: object.sse.clone(),
            content_type: None,
            checksum: None,
        };
        Ok((info, object.body.clone()))
    }
}

#[async_trait]
impl ObjectSource for MemorySource {
    fn uri(&self, key: &str) -> String {
        format!("memory:///{key}")
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError> {
        let resume = Resume::decode(request.continuation.as_deref())?;
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let walk = objects
            .range::<str, _>((Bound::Included(request.prefix.as_str()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&request.prefix))
            .filter(|(k, _)| resume.admits_key(k))
            .map(|(k, o)| {
                Ok(WalkItem::Object(ObjectSummary {
                    key: k.clone(),
                    size: o.body.len() as u64,
                    etag: Some(etag_of(&o.body)),
                    last_modified: o.last_modified,
                }))
            });
        page_from_walk(request, walk)
    }

    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError> {
        self.lookup(key, request).map(|(info, _)| info)
    }

    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError> {
        let (info, body) = self.lookup(key, request)?;
        let range = match request.range {
            Some(r) => r.resolve(key, info.size)?,
            None => 0..info.size,
        };
        let slice = body.slice(range.start as usize..range.end as usize);
        let chunks: Vec<Result<Bytes, SourceError>> = (0..slice.len())
            .step_by(CHUNK)
            .map(|i| Ok(slice.slice(i..(i + CHUNK).min(slice.len()))))
            .collect();
        Ok(ObjectBody {
            info,
            range,
            stream: Box::pin(futures::stream::iter(chunks)),
        })
    }

    async fn object_lock_enabled(&self) -> Result<bool, SourceError> {
        Ok(self
            .holds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some())
    }

    async fn legal_hold(&self, key: &str, _version_id: Option<&str>) -> Result<bool, SourceError> {
        self.lookup(key, &GetRequest::default())?;
        let holds = self.holds.read().unwrap_or_else(|e| e.into_inner());
        Ok(holds.as_ref().is_some_and(|h| h.contains(key)))
    }

    async fn set_legal_hold(
        &self,
        key: &str,
        _version_id: Option<&str>,
        on: bool,
    ) -> Result<(), SourceError> {
        self.lookup(key, &GetRequest::default())?;
        let mut holds = self.holds.write().unwrap_or_else(|e| e.into_inner());
        let Some(held) = holds.as_mut() else {
            return Err(SourceError::Remote {
                key: key.to_owned(),
                message: "InvalidRequest: the bucket does not have Object Lock enabled".into(),
                retryable: false,
            });
        };
        if on {
            held.insert(key.to_owned());
        } else {
            held.remove(key);
        }
        Ok(())
    }
}
