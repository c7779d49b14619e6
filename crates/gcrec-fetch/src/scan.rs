//! The scan: from listed keys to recordings.
//!
//! [`scan`] plans the prefixes to list ([`crate::prune`]), lists them in key order, parses
//! every key ([`crate::layout`]), pairs media with sidecars per conversation folder
//! ([`Pairer`]), reads the sidecars that the output or the filters need, concurrently and
//! in order, and applies the [`RecordingFilter`]. Memory stays bounded: keys of one
//! conversation folder are contiguous in a listing, so only one folder is held at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::filter::{RecordingFilter, Verdict};
use crate::inventory::Inventory;
use crate::layout::{ExportKey, FileKind, ParsedKey, SkipReason, parse_key};
use crate::metadata::{DEFAULT_SIDECAR_CAP, MetadataError, MetadataProblem, RecordingMetadata};
use crate::prune::plan;
use crate::recording::{
    ListingError, MediaFile, Orphan, Recording, Recordings, ScanEvent, SkippedKey,
};
use crate::source::{
    ListRequest, ObjectSource, ObjectSummary, SourceError, list_pages, read_small,
};

/// Pairs the keys of conversation folders into recordings. Feed it keys in listing
/// (ascending) order; it emits each folder's recordings when the folder ends.
#[derive(Debug, Default)]
pub struct Pairer {
    folder: Option<String>,
    recordings: BTreeMap<String, Recording>,
    instructions: Vec<(ExportKey, ObjectSummary)>,
    out: Vec<ScanEvent>,
}

impl Pairer {
    /// A pairer with nothing in it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one listed object; returns whatever became complete.
    pub fn push(&mut self, object: ObjectSummary) -> Vec<ScanEvent> {
        let key = match parse_key(&object.key) {
            ParsedKey::Export(k) => k,
            ParsedKey::Skipped(reason) => {
                self.out.push(ScanEvent::Skipped(SkippedKey {
                    key: object.key,
                    reason,
                }));
                return std::mem::take(&mut self.out);
            }
        };
        if self.folder.as_deref() != Some(key.folder()) {
            self.flush();
            self.folder = Some(key.folder().to_owned());
        }
        let recording = |k: &ExportKey| Recording {
            organization_id: k.organization_id.clone(),
            hour: k.hour,
            conversation_id: k.conversation_id.clone(),
            recording_id: k.recording_id.clone(),
            folder: k.folder().to_owned(),
            media: Vec::new(),
            sidecar: None,
            extra_sidecars: Vec::new(),
            metadata: None,
            sidecar_body: None,
        };
        match &key.file {
            FileKind::Media { extension } => {
                let entry = self
                    .recordings
                    .entry(key.recording_id.clone())
                    .or_insert_with(|| recording(&key));
                entry.media.push(MediaFile {
                    object,
                    extension: extension.clone(),
                    instruction: None,
                });
            }
            FileKind::Metadata => {
                let entry = self
                    .recordings
                    .entry(key.recording_id.clone())
                    .or_insert_with(|| recording(&key));
                if entry.sidecar.is_none() {
                    entry.sidecar = Some(object);
                } else {
                    entry.extra_sidecars.push(object);
                }
            }
            FileKind::Instruction { .. } => self.instructions.push((key, object)),
            FileKind::Other => self.out.push(ScanEvent::Skipped(SkippedKey {
                key: object.key,
                reason: SkipReason::NotARecording,
            })),
        }
        std::mem::take(&mut self.out)
    }

    /// Ends the input; returns the last folder's recordings.
    pub fn finish(mut self) -> Vec<ScanEvent> {
        self.flush();
        self.out
    }

    fn flush(&mut self) {
        for (key, object) in self.instructions.drain(..) {
            let FileKind::Instruction { target } = &key.file else {
                continue;
            };
            let media = self
                .recordings
                .get_mut(&key.recording_id)
                .and_then(|r| r.media.iter_mut().find(|m| m.object.key == *target));
            match media {
                Some(m) => m.instruction = Some(object),
                None => self.out.push(ScanEvent::Skipped(SkippedKey {
                    key: object.key,
                    reason: SkipReason::UnpairedInstruction,
                })),
            }
        }
        let recordings = std::mem::take(&mut self.recordings);
        self.out.extend(
            recordings
                .into_values()
                .map(|r| ScanEvent::Recording(Box::new(r))),
        );
        self.folder = None;
    }
}

/// Everything a scan needs besides the source.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// List under this prefix only (`""` for the whole source).
    pub base_prefix: String,
    /// Which recordings to keep.
    pub filter: RecordingFilter,
    /// Read every recording's sidecar, even if no filter needs it (for output).
    pub read_all_metadata: bool,
    /// Sidecars over this size are rejected unread.
    pub sidecar_cap: u64,
    /// Sidecars read at once.
    pub concurrency: usize,
    /// Read this S3 Inventory report instead of listing (and, with its `since` set, list
    /// only the hours from its creation on).
    pub inventory: Option<Arc<Inventory>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            base_prefix: String::new(),
            filter: RecordingFilter::default(),
            read_all_metadata: true,
            sidecar_cap: DEFAULT_SIDECAR_CAP,
            concurrency: 32,
            inventory: None,
        }
    }
}

/// Reads one sidecar's bytes whole (up to `cap`).
async fn fetch_sidecar<S: ObjectSource + ?Sized>(
    source: &S,
    sidecar: &ObjectSummary,
    cap: u64,
) -> Result<Bytes, MetadataError> {
    let key = sidecar.key.clone();
    let problem = |problem| MetadataError {
        key: key.clone(),
        problem,
    };
    if sidecar.size > cap {
        return Err(problem(MetadataProblem::TooLarge {
            size: sidecar.size,
            cap,
        }));
    }
    match read_small(source, &key, cap).await {
        Ok(body) => Ok(body),
        Err(SourceError::TooLarge { .. }) => {
            Err(problem(MetadataProblem::TooLarge { size: cap + 1, cap }))
        }
        Err(e) => Err(problem(MetadataProblem::Unreadable(e.to_string()))),
    }
}

/// Parses the body of `recording`'s sidecar `key`: the schema, and the IDs its key states
/// (a sidecar that describes another recording is not this recording's).
pub fn parse_sidecar(
    recording: &Recording,
    key: &str,
    body: &[u8],
) -> Result<RecordingMetadata, MetadataError> {
    let meta = RecordingMetadata::from_slice(key, body)?;
    check_ids(recording, &meta).map_err(|problem| MetadataError {
        key: key.to_owned(),
        problem,
    })?;
    Ok(meta)
}

/// Whether the IDs a sidecar states are the ones its key states: a sidecar that describes
/// another recording is not this recording's.
fn check_ids(recording: &Recording, meta: &RecordingMetadata) -> Result<(), MetadataProblem> {
    for (field, in_key, in_sidecar) in [
        ("recordingId", &recording.recording_id, &meta.recording_id),
        (
            "conversationId",
            &recording.conversation_id,
            &meta.conversation_id,
        ),
        (
            "organizationId",
            &recording.organization_id,
            &meta.organization_id,
        ),
    ] {
        if !in_key.eq_ignore_ascii_case(in_sidecar) {
            return Err(MetadataProblem::KeyMismatch {
                field,
                in_key: crate::brief(in_key),
                in_sidecar: crate::brief(in_sidecar),
            });
        }
    }
    Ok(())
}

/// Reads and parses a recording's sidecar (if it has one and it has not been read). When
/// the recording has several sidecars (suffix variants), they must all say the same:
/// one that disagrees is never silently shadowed by another. Returns the sidecar's bytes
/// when they were read (valid or not), for a caller that keeps them (the catalog).
pub async fn read_metadata<S: ObjectSource + ?Sized>(
    source: &S,
    recording: &mut Recording,
    cap: u64,
) -> Option<Bytes> {
    let sidecar = recording.sidecar.clone()?;
    if recording.metadata.is_some() {
        return None;
    }
    let body = fetch_sidecar(source, &sidecar, cap).await;
    let mut parsed = body
        .clone()
        .and_then(|b| parse_sidecar(recording, &sidecar.key, &b));
    if let Ok(meta) = &parsed
        && !recording.extra_sidecars.is_empty()
    {
        let mut disagree = Vec::new();
        for other in &recording.extra_sidecars {
            let same = match fetch_sidecar(source, other, cap).await {
                Ok(b) => RecordingMetadata::from_slice(&other.key, &b)
                    .is_ok_and(|m| m.document() == meta.document()),
                Err(_) => false,
            };
            if !same {
                disagree.push(other.key.clone());
            }
        }
        if !disagree.is_empty() {
            parsed = Err(MetadataError {
                key: sidecar.key.clone(),
                problem: MetadataProblem::Conflicting {
                    others: crate::brief(&disagree.join(", ")),
                },
            });
        }
    }
    recording.metadata = Some(parsed);
    body.ok()
}

/// Lists, pairs, reads sidecars and filters: every recording under the base prefix that
/// matches, in key order, with the keys that were skipped along the way.
///
/// Listing runs ahead of sidecar reading through a bounded channel, so a slow sidecar
/// never stalls the listing and memory stays bounded.
pub fn scan(
    source: Arc<dyn ObjectSource>,
    options: ScanOptions,
) -> impl Stream<Item = Result<ScanEvent, ListingError>> + Send {
    let (tx, rx) = mpsc::channel::<Result<ScanEvent, ListingError>>(1024);
    let lister = {
        let source = source.clone();
        let options = options.clone();
        async move {
            if let Err(e) = list(source, options, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        }
    };
    let listed: BoxStream<'static, Result<ScanEvent, ListingError>> =
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }));
    let read_all = options.read_all_metadata;
    let cap = options.sidecar_cap;
    let filter = Arc::new(options.filter);
    let concurrency = options.concurrency.max(1);
    let events = listed
        .map(move |event| {
            let source = source.clone();
            let filter = filter.clone();
            async move {
                let event = match event {
                    Ok(ScanEvent::Recording(recording)) => recording,
                    other => return Some(other),
                };
                let mut recording = event;
                if read_all || filter.wants_metadata_for(&recording) {
                    read_metadata(&*source, &mut recording, cap).await;
                }
                match filter.verdict(&recording) {
                    Verdict::Match => Some(Ok(ScanEvent::Recording(recording))),
                    Verdict::NoMatch => None,
                    Verdict::Unknown => Some(Ok(ScanEvent::Unchecked(recording))),
                }
            }
        })
        .buffered(concurrency)
        .filter_map(futures::future::ready);
    // Run the lister alongside the consumer: it ends when the listing ends or the
    // consumer drops the stream.
    let lister = futures::stream::once(lister).filter_map(|()| futures::future::ready(None));
    futures::stream::select(events, lister)
}

/// [`scan`] as [`Recordings`], the work list any consumer takes (a catalog's answer is
/// another).
pub fn scan_recordings(source: Arc<dyn ObjectSource>, options: ScanOptions) -> Recordings {
    scan(source, options).boxed()
}

/// The listing: an inventory report's rows (on a blocking thread), then — or instead — a
/// pruned listing of the source.
async fn list(
    source: Arc<dyn ObjectSource>,
    mut options: ScanOptions,
    tx: &mpsc::Sender<Result<ScanEvent, ListingError>>,
) -> Result<(), ListingError> {
    if let Some(inventory) = options.inventory.clone() {
        let handle = tokio::runtime::Handle::current();
        let (base, filter, sender) = (
            options.base_prefix.clone(),
            options.filter.clone(),
            tx.clone(),
        );
        let report = inventory.clone();
        tokio::task::spawn_blocking(move || report.list_and_pair(&handle, &base, &filter, &sender))
            .await
            .map_err(|_| {
                ListingError::Other("the inventory reader stopped unexpectedly".into())
            })??;
        let Some(from) = inventory.live_from() else {
            return Ok(());
        };
        // The hours the report may not have seen whole, listed live.
        let range = &mut options.filter.range;
        range.from = Some(range.from.map_or(from.start(), |f| f.max(from.start())));
        if range.to.is_some_and(|to| to <= from.start()) {
            return Ok(());
        }
    }
    Ok(list_and_pair(&*source, &options, tx).await?)
}

async fn list_and_pair(
    source: &dyn ObjectSource,
    options: &ScanOptions,
    tx: &mpsc::Sender<Result<ScanEvent, ListingError>>,
) -> Result<(), SourceError> {
    let filter = &options.filter;
    let plan = plan(source, &options.base_prefix, &filter.range, &filter.orgs).await?;
    for stray in plan.strays {
        let event = ScanEvent::Skipped(SkippedKey {
            key: stray.key,
            reason: SkipReason::Foreign,
        });
        if tx.send(Ok(event)).await.is_err() {
            return Ok(());
        }
    }
    for prefix in plan.prefixes {
        let mut pairer = Pairer::new();
        let mut pages = std::pin::pin!(list_pages(source, ListRequest::recursive(prefix)));
        while let Some(page) = pages.try_next().await? {
            for object in page.objects {
                for event in pairer.push(object) {
                    if !filter.admits_event(&event) {
                        continue;
                    }
                    if tx.send(Ok(event)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        for event in pairer.finish() {
            if filter.admits_event(&event) && tx.send(Ok(event)).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The figures a scan's consumer reports at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanSummary {
    /// Recordings that matched.
    pub recordings: u64,
    /// Of those, media without a sidecar.
    pub orphans_no_sidecar: u64,
    /// Of those, sidecars without media.
    pub orphans_no_media: u64,
    /// Of those, sidecars that could not be used.
    pub invalid_sidecars: u64,
    /// Of those, recordings with more than one sidecar.
    pub duplicate_sidecars: u64,
    /// Recordings the field filters could not be checked on.
    pub unchecked: u64,
    /// Keys skipped, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Bytes of media in the matched recordings.
    pub media_bytes: u64,
}

impl ScanSummary {
    /// Counts one event.
    pub fn record(&mut self, event: &ScanEvent) {
        match event {
            ScanEvent::Recording(r) => {
                self.recordings += 1;
                self.media_bytes += r.media_size();
                match r.orphan() {
                    Some(Orphan::NoSidecar) => self.orphans_no_sidecar += 1,
                    Some(Orphan::NoMedia) => self.orphans_no_media += 1,
                    None => {}
                }
                self.invalid_sidecars += u64::from(r.metadata_error().is_some());
                self.duplicate_sidecars += u64::from(!r.extra_sidecars.is_empty());
            }
            ScanEvent::Unchecked(_) => self.unchecked += 1,
            ScanEvent::Skipped(s) => *self.skipped.entry(s.reason).or_default() += 1,
        }
    }

    /// Keys skipped, all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str) -> ObjectSummary {
        ObjectSummary {
            key: key.into(),
            size: 10,
            etag: None,
            last_modified: None,
        }
    }

    const F: &str = "o/year=2024/month=3/day=7/hour=9/conversation_id=c1/";
    const G: &str = "o/year=2024/month=3/day=7/hour=9/conversation_id=c2/";

    fn run(keys: &[String]) -> Vec<ScanEvent> {
        let mut sorted = keys.to_vec();
        sorted.sort();
        let mut p = Pairer::new();
        let mut out: Vec<_> = sorted.into_iter().flat_map(|k| p.push(obj(&k))).collect();
        out.extend(p.finish());
        out
    }

    fn recordings(events: &[ScanEvent]) -> Vec<&Recording> {
        events
            .iter()
            .filter_map(|e| match e {
                ScanEvent::Recording(r) => Some(&**r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn media_and_sidecars_pair_by_recording_id_within_a_folder() {
        let events = run(&[
            format!("{F}r1.opus"),
            format!("{F}r1_metadata.json"),
            format!("{F}r2.zip"),
            format!("{F}r2.zip_metadata.json"),
            format!("{F}r3.opus"),
            format!("{F}r4_metadata.json"),
            format!("{G}r1.opus"),
        ]);
        let recs = recordings(&events);
        let summary: Vec<_> = recs
            .iter()
            .map(|r| {
                (
                    r.conversation_id.as_str(),
                    r.recording_id.as_str(),
                    r.orphan(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("c1", "r1", None),
                ("c1", "r2", None),
                ("c1", "r3", Some(Orphan::NoSidecar)),
                ("c1", "r4", Some(Orphan::NoMedia)),
                ("c2", "r1", Some(Orphan::NoSidecar)),
            ]
        );
    }

    #[test]
    fn duplicate_sidecars_are_kept_aside() {
        let events = run(&[
            format!("{F}r1.opus"),
            format!("{F}r1_metadata.json"),
            format!("{F}r1.opus_metadata.json"),
        ]);
        let recs = recordings(&events);
        assert_eq!(recs.len(), 1);
        assert_eq!(
            recs[0].sidecar.as_ref().unwrap().key,
            format!("{F}r1.opus_metadata.json")
        );
        assert_eq!(recs[0].extra_sidecars.len(), 1);
    }

    #[test]
    fn instruction_files_attach_to_their_object_or_are_unpaired() {
        let events = run(&[
            format!("{F}r1.opus"),
            format!("{F}r1.opus.instruction"),
            format!("{F}r1_metadata.json"),
            format!("{F}r9.opus.instruction"),
        ]);
        let recs = recordings(&events);
        assert_eq!(recs.len(), 1);
        assert_eq!(
            recs[0].media[0].instruction.as_ref().unwrap().key,
            format!("{F}r1.opus.instruction")
        );
        assert!(events.contains(&ScanEvent::Skipped(SkippedKey {
            key: format!("{F}r9.opus.instruction"),
            reason: SkipReason::UnpairedInstruction
        })));
    }

    #[test]
    fn several_media_files_share_one_recording() {
        let events = run(&[
            format!("{F}r1.opus"),
            format!("{F}r1.json"),
            format!("{F}r1_metadata.json"),
        ]);
        let recs = recordings(&events);
        assert_eq!(recs.len(), 1);
        let exts: Vec<_> = recs[0].media.iter().map(|m| m.extension.as_str()).collect();
        assert_eq!(exts, ["json", "opus"]);
    }

    #[test]
    fn foreign_and_other_files_are_skipped_with_reasons() {
        let events = run(&[
            "README.md".into(),
            format!("{F}.DS_Store"),
            format!("{F}r1.opus"),
            "../x".into(),
        ]);
        let skipped: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ScanEvent::Skipped(s) => Some(s.reason),
                _ => None,
            })
            .collect();
        assert_eq!(
            skipped,
            [
                SkipReason::Unsafe,
                SkipReason::Foreign,
                SkipReason::NotARecording
            ]
        );
    }
}
