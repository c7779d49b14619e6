//! A recording as the listing sees it: its media file(s), its sidecar, orphan status,
//! and the events a scan yields. Shared by the scan, the filters and every consumer.

use serde::Serialize;

use crate::layout::{ConversationHour, SkipReason};
use crate::metadata::{MetadataError, RecordingMetadata};
use crate::source::ObjectSummary;

/// One media file of a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaFile {
    /// The object as listed.
    #[serde(flatten)]
    pub object: ObjectSummary,
    /// Everything after the recording ID's first dot (`opus`, `zip`, `opus.pgp`).
    pub extension: String,
    /// The S3 Encryption Client instruction file for this object, if there is one.
    pub instruction: Option<ObjectSummary>,
}

/// Why a recording is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Orphan {
    /// Media without a metadata sidecar.
    NoSidecar,
    /// A metadata sidecar without media.
    NoMedia,
}

impl Orphan {
    /// A short, stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Orphan::NoSidecar => "no_sidecar",
            Orphan::NoMedia => "no_media",
        }
    }
}

/// One recording: its media file(s) and sidecar in one conversation folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The organization ID segment of the key.
    pub organization_id: String,
    /// The conversation's start hour, from the partition folders.
    pub hour: ConversationHour,
    /// The conversation ID.
    pub conversation_id: String,
    /// The recording ID.
    pub recording_id: String,
    /// The conversation folder, with its trailing `/`.
    pub folder: String,
    /// Media files, in key order (usually one).
    pub media: Vec<MediaFile>,
    /// The metadata sidecar.
    pub sidecar: Option<ObjectSummary>,
    /// Further sidecars for the same recording ID (suffix variants beside the plain one).
    /// The first in key order is [`Recording::sidecar`]; these are reported, not used.
    pub extra_sidecars: Vec<ObjectSummary>,
    /// The parsed sidecar, once read; `None` if it was not read (or there is none).
    pub metadata: Option<Result<RecordingMetadata, MetadataError>>,
    /// The sidecar's bytes, when they came with the recording (a catalog keeps them):
    /// a pull writes them as they are instead of fetching the sidecar again.
    pub sidecar_body: Option<bytes::Bytes>,
}

impl Recording {
    /// Whether the recording lacks its media or its sidecar.
    pub fn orphan(&self) -> Option<Orphan> {
        match (self.media.is_empty(), self.sidecar.is_none()) {
            (true, _) => Some(Orphan::NoMedia),
            (false, true) => Some(Orphan::NoSidecar),
            (false, false) => None,
        }
    }

    /// The parsed sidecar, if it was read and is valid.
    pub fn valid_metadata(&self) -> Option<&RecordingMetadata> {
        self.metadata.as_ref().and_then(|m| m.as_ref().ok())
    }

    /// The sidecar's error, if it was read and is invalid.
    pub fn metadata_error(&self) -> Option<&MetadataError> {
        self.metadata.as_ref().and_then(|m| m.as_ref().err())
    }

    /// Every object key of the recording: media, instruction files, sidecars.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.media
            .iter()
            .flat_map(|m| std::iter::once(&m.object).chain(m.instruction.as_ref()))
            .chain(self.sidecar.iter())
            .chain(self.extra_sidecars.iter())
            .map(|o| o.key.as_str())
    }

    /// Total size of the media files.
    pub fn media_size(&self) -> u64 {
        self.media.iter().map(|m| m.object.size).sum()
    }
}

/// A key that is not part of any recording, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedKey {
    /// The key.
    pub key: String,
    /// Why.
    pub reason: SkipReason,
}

/// What a scan yields, in key order.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanEvent {
    /// A recording that matches the filter.
    Recording(Box<Recording>),
    /// A recording the field filters could not be checked on, because its sidecar is
    /// missing or invalid. Not a match; report it.
    Unchecked(Box<Recording>),
    /// A key that is not part of any recording.
    Skipped(SkippedKey),
}

/// Why a stream of recordings ended early.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// Listing or reading the source failed.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// The inventory report standing in for the listing could not be used.
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    /// The work list's own store (a catalog, an inventory) failed.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Recordings from anywhere — a live scan, a catalog, an inventory — in the order their
/// producer chose.
pub type Recordings = futures::stream::BoxStream<'static, Result<ScanEvent, ListingError>>;
