//! A synthetic Genesys Cloud export, deterministic from a seed.
//!
//! [`Export::generate`] decides everything up front (IDs, times, attributes, which
//! recordings are deliberately broken) and keeps that as the ground truth tests compare
//! against; media bodies are produced on demand, one at a time, so a large export never
//! sits in memory.

use std::io;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::media;
use crate::rng::Rng;

/// How partition values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Padding {
    /// `month=03/day=07/hour=09`.
    Padded,
    /// `month=3/day=7/hour=9`.
    Unpadded,
    /// Chosen per day, so both forms appear in one export.
    Mixed,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    /// Everything derives from this.
    pub seed: u64,
    /// How many organizations share the bucket.
    pub orgs: usize,
    /// The first hour with conversations.
    pub start: DateTime<Utc>,
    /// How many days of hours.
    pub days: u32,
    /// Conversations in every `hour_step`-th hour only (1 = every hour).
    pub hour_step: u32,
    /// Conversations per active hour.
    pub conversations_per_hour: u32,
    /// Approximate size of a call's `.opus` file.
    pub call_bytes: usize,
    /// Approximate size of a screen recording's `.zip`.
    pub screen_bytes: usize,
    /// Approximate size of a digital recording's `.zip`.
    pub digital_bytes: usize,
    /// Partition spelling.
    pub padding: Padding,
    /// Every `anomaly_every`-th recording is broken on purpose (orphan media, orphan
    /// sidecar, sidecar not JSON, missing field, wrong type, in turn); foreign keys are
    /// added too. `0` for a clean export.
    pub anomaly_every: u32,
    /// A prefix before the organization folders (`""` for the bucket root).
    pub root: String,
}

impl Default for ExportSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            orgs: 1,
            start: DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            days: 1,
            hour_step: 1,
            conversations_per_hour: 1,
            call_bytes: 4 * 1024,
            screen_bytes: 8 * 1024,
            digital_bytes: 2 * 1024,
            padding: Padding::Padded,
            anomaly_every: 0,
            root: String::new(),
        }
    }
}

impl ExportSpec {
    /// The committed example export (`examples/export`): three days of a small contact
    /// centre, with an orphan of each kind, an invalid sidecar and foreign keys, under 1 MB.
    pub fn example() -> Self {
        Self {
            seed: 2024,
            orgs: 1,
            start: DateTime::parse_from_rfc3339("2024-03-05T08:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            days: 3,
            hour_step: 7,
            conversations_per_hour: 1,
            call_bytes: 24 * 1024,
            screen_bytes: 48 * 1024,
            digital_bytes: 6 * 1024,
            padding: Padding::Padded,
            anomaly_every: 3,
            root: String::new(),
        }
    }
}

/// How a generated sidecar is (deliberately) broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarState {
    /// A valid sidecar.
    Valid,
    /// No sidecar at all (the media is an orphan).
    Missing,
    /// The body is not JSON.
    NotJson,
    /// This required field is left out.
    MissingField(&'static str),
    /// `durationMs` is a string.
    WrongType,
}

/// Agents, queues, wrap-up codes and dialed numbers recordings draw from.
pub const USERS: [&str; 6] = [
    "5d2c7a10-0000-4000-8000-000000000001",
    "5d2c7a10-0000-4000-8000-000000000002",
    "5d2c7a10-0000-4000-8000-000000000003",
    "5d2c7a10-0000-4000-8000-000000000004",
    "5d2c7a10-0000-4000-8000-000000000005",
    "5d2c7a10-0000-4000-8000-000000000006",
];
/// Queue IDs.
pub const QUEUES: [&str; 3] = [
    "9a0b1c2d-0000-4000-8000-00000000000a",
    "9a0b1c2d-0000-4000-8000-00000000000b",
    "9a0b1c2d-0000-4000-8000-00000000000c",
];
/// Wrap-up code IDs.
pub const WRAPUP_CODES: [&str; 4] = [
    "e1e1e1e1-0000-4000-8000-000000000101",
    "e1e1e1e1-0000-4000-8000-000000000102",
    "e1e1e1e1-0000-4000-8000-000000000103",
    "e1e1e1e1-0000-4000-8000-000000000104",
];
/// Dialed numbers (DNIS), normalized.
pub const DNIS: [&str; 3] = ["tel:+18005550199", "tel:+18005550142", "tel:+442079460000"];
/// Required fields a broken sidecar may lack.
const BREAKABLE_FIELDS: [&str; 4] = ["conversationId", "fileSize", "startTime", "mediaType"];
/// Message types of digital message recordings.
pub const MESSAGE_TYPES: [&str; 4] = ["sms", "whatsapp", "webmessaging", "facebook"];

/// One generated recording: where it is and what its sidecar says.
#[derive(Debug, Clone)]
pub struct GenRecording {
    /// Organization ID.
    pub org: String,
    /// Conversation ID.
    pub conversation_id: String,
    /// Recording ID.
    pub recording_id: String,
    /// Exact conversation start (the partition is its hour).
    pub conversation_start: DateTime<Utc>,
    /// The conversation folder key, with its trailing `/`.
    pub folder: String,
    /// The media key, unless the recording is a sidecar-only orphan.
    pub media_key: Option<String>,
    /// The sidecar key, unless the recording is a media-only orphan.
    pub sidecar_key: Option<String>,
    /// How the sidecar is broken, if it is.
    pub sidecar: SidecarState,
    /// `Call`, `Screen`, `Chat`, `Email`, `Message` or `Callback`.
    pub media_type: &'static str,
    /// `opus` or `zip`.
    pub extension: &'static str,
    /// `userIds`.
    pub users: Vec<String>,
    /// `queueIds`.
    pub queues: Vec<String>,
    /// `wrapupCodes`.
    pub wrapup_codes: Vec<String>,
    /// `aniNormalized` (calls, callbacks, messages).
    pub ani: Option<String>,
    /// `dnisNormalized` (calls, callbacks, messages).
    pub dnis: Option<String>,
    /// `initialDirection`.
    pub direction: &'static str,
    /// `messageType` (messages).
    pub message_type: Option<&'static str>,
    /// Whether the sidecar carries undocumented fields (`mediaSubtype`, …).
    pub unknown_fields: bool,
    seed: u64,
    target_size: usize,
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl GenRecording {
    /// Whether the sidecar is present and valid.
    pub fn has_valid_sidecar(&self) -> bool {
        self.sidecar == SidecarState::Valid && self.sidecar_key.is_some()
    }

    /// The media bytes (generated now; deterministic). Call audio plays as long as the
    /// sidecar's `durationMs` says.
    pub fn media_body(&self) -> Vec<u8> {
        let mut rng = Rng::new(self.seed);
        match self.media_type {
            "Call" | "Callback" => {
                media::ogg_opus_lasting(&mut rng, self.target_size, Some(self.timing().1))
            }
            "Screen" => media::screen_zip(&mut rng, self.target_size),
            _ => media::transcript_zip(&mut rng, self.target_size),
        }
    }

    /// The recording's start and `durationMs`, and the generator that made them (the
    /// sidecar draws its other times from it next).
    fn timing(&self) -> (DateTime<Utc>, u64, Rng) {
        let mut rng = Rng::new(self.seed ^ 0x5eed);
        let start = self.conversation_start + Duration::milliseconds(rng.below(5_000) as i64);
        let duration_ms = 30_000 + rng.below(20 * 60_000);
        (start, duration_ms, rng)
    }

    /// The sidecar document for a media body of `file_size` bytes.
    pub fn sidecar_json(&self, file_size: u64) -> Value {
        let (start, duration_ms, mut rng) = self.timing();
        let end = start + Duration::milliseconds(duration_ms as i64);
        let conversation_end = end + Duration::milliseconds(rng.below(10_000) as i64);
        let mut doc = json!({
            "mediaType": self.media_type,
            "provider": "edge",
            "userIds": self.users,
            "startTime": ts(start),
            "endTime": ts(end),
            "durationMs": duration_ms,
            "initialDirection": self.direction,
        });
        let m = doc.as_object_mut().expect("object literal");
        if let (Some(ani), Some(dnis)) = (&self.ani, &self.dnis) {
            let digits = ani.trim_start_matches("tel:+1");
            m.insert("aniNormalized".into(), json!(ani));
            m.insert(
                "aniDisplayable".into(),
                json!(format!(
                    "({}) {}-{}",
                    &digits[..3],
                    &digits[3..6],
                    &digits[6..]
                )),
            );
            m.insert("dnisNormalized".into(), json!(dnis));
            m.insert(
                "dnisDisplayable".into(),
                json!(dnis.trim_start_matches("tel:")),
            );
        }
        for (k, v) in [
            ("queueIds", json!(self.queues)),
            ("wrapupCodes", json!(self.wrapup_codes)),
            ("organizationId", json!(self.org)),
            ("conversationId", json!(self.conversation_id)),
            ("conversationStartTime", json!(ts(self.conversation_start))),
            ("conversationEndTime", json!(ts(conversation_end))),
            ("recordingId", json!(self.recording_id)),
            (
                "filePath",
                json!(format!(
                    "/recordings/{}/{}.{}",
                    self.conversation_id, self.recording_id, self.extension
                )),
            ),
            ("fileSize", json!(file_size)),
            ("languageIds", json!("en-US")),
        ] {
            m.insert(k.into(), v);
        }
        if let Some(t) = self.message_type {
            m.insert("messageType".into(), json!(t));
        }
        if self.media_type == "Screen" {
            m.insert(
                "screenInformation".into(),
                json!({"screenId": "1", "positionX": 0, "positionY": 0, "resolution": "1920x1080"}),
            );
        }
        if self.unknown_fields {
            m.insert("mediaSubtype".into(), json!("Trunk"));
            m.insert(
                "x-vendor".into(),
                json!({"score": 0.75, "tags": ["a", "b"]}),
            );
        }
        match self.sidecar {
            SidecarState::MissingField(f) => {
                m.remove(f);
            }
            SidecarState::WrongType => {
                m.insert("durationMs".into(), json!(duration_ms.to_string()));
            }
            _ => {}
        }
        doc
    }

    /// The sidecar bytes for a media body of `file_size` bytes.
    pub fn sidecar_body(&self, file_size: u64) -> Vec<u8> {
        match self.sidecar {
            SidecarState::NotJson => b"{\"mediaType\": \"Call\", \"provider\": ".to_vec(),
            _ => serde_json::to_vec_pretty(&self.sidecar_json(file_size)).unwrap_or_default(),
        }
    }
}

/// A generated export: the recordings and the keys that do not belong to any.
#[derive(Debug, Clone)]
pub struct Export {
    /// What it was generated from.
    pub spec: ExportSpec,
    /// Organization IDs.
    pub orgs: Vec<String>,
    /// Every recording, in generation order.
    pub recordings: Vec<GenRecording>,
    /// Keys outside any recording (foreign files, stray files), with their bodies.
    pub strays: Vec<(String, Vec<u8>)>,
}

fn partition(t: DateTime<Utc>, padded: bool) -> String {
    if padded {
        t.format("year=%Y/month=%m/day=%d/hour=%H").to_string()
    } else {
        use chrono::{Datelike, Timelike};
        format!(
            "year={}/month={}/day={}/hour={}",
            t.year(),
            t.month(),
            t.day(),
            t.hour()
        )
    }
}

impl Export {
    /// Every object in an in-memory source (keys and bodies as written to disk).
    pub fn memory_source(&self) -> std::sync::Arc<gcrec_fetch::source::MemorySource> {
        let source = gcrec_fetch::source::MemorySource::new();
        for (key, body) in self.objects() {
            source.put_bytes(key, body);
        }
        std::sync::Arc::new(source)
    }

    /// Generates the export's plan (no media bodies yet).
    pub fn generate(spec: ExportSpec) -> Export {
        let mut rng = Rng::derive(spec.seed, "export");
        let orgs: Vec<String> = (0..spec.orgs.max(1)).map(|_| rng.uuid()).collect();
        let mut recordings = Vec::new();
        let hours = spec.days * 24;
        let mut index = 0u32;
        for h in (0..hours).step_by(spec.hour_step.max(1) as usize) {
            let hour = spec.start + Duration::hours(i64::from(h));
            let padded = match spec.padding {
                Padding::Padded => true,
                Padding::Unpadded => false,
                Padding::Mixed => (h / 24) % 2 == 0,
            };
            for _ in 0..spec.conversations_per_hour {
                let org = rng.pick(&orgs).clone();
                let conversation_id = rng.uuid();
                let conversation_start = hour + Duration::milliseconds(rng.below(3_600_000) as i64);
                let folder = format!(
                    "{}{org}/{}/conversation_id={conversation_id}/",
                    spec.root,
                    partition(hour, padded)
                );
                let kinds: Vec<&'static str> = match rng.below(20) {
                    0..=9 => vec!["Call"],
                    10..=11 => vec!["Call", "Screen"],
                    12 => vec!["Screen"],
                    13..=14 => vec!["Chat"],
                    15 => vec!["Email"],
                    16..=18 => vec!["Message"],
                    _ => vec!["Callback"],
                };
                let mut users = vec![rng.pick(&USERS).to_string()];
                if rng.chance(0.3) {
                    let second = rng.pick(&USERS).to_string();
                    if second != users[0] {
                        users.push(second);
                    }
                }
                let queue = rng.pick(&QUEUES).to_string();
                let wrapup = rng.pick(&WRAPUP_CODES).to_string();
                let ani = format!("tel:+1317555{:04}", rng.below(10_000));
                let dnis = rng.pick(&DNIS).to_string();
                let direction = if rng.chance(0.7) {
                    "inbound"
                } else {
                    "outbound"
                };
                for media_type in kinds {
                    let recording_id = rng.uuid();
                    let extension = if matches!(media_type, "Call" | "Callback") {
                        "opus"
                    } else {
                        "zip"
                    };
                    let target_size = match media_type {
                        "Call" | "Callback" => spec.call_bytes,
                        "Screen" => spec.screen_bytes,
                        _ => spec.digital_bytes,
                    };
                    let phone = matches!(media_type, "Call" | "Callback" | "Message");
                    let anomaly = spec.anomaly_every > 0
                        && index % spec.anomaly_every == spec.anomaly_every - 1;
                    let anomaly_kind = (index / spec.anomaly_every.max(1)) % 5;
                    let sidecar = match (anomaly, anomaly_kind) {
                        (true, 0) => SidecarState::Missing,
                        (true, 2) => SidecarState::NotJson,
                        (true, 3) => SidecarState::MissingField(
                            BREAKABLE_FIELDS[rng.below(BREAKABLE_FIELDS.len() as u64) as usize],
                        ),
                        (true, 4) => SidecarState::WrongType,
                        _ => SidecarState::Valid,
                    };
                    let media_key = (!(anomaly && anomaly_kind == 1))
                        .then(|| format!("{folder}{recording_id}.{extension}"));
                    let sidecar_key = (sidecar != SidecarState::Missing).then(|| {
                        if rng.chance(1.0 / 6.0) {
                            format!("{folder}{recording_id}.{extension}_metadata.json")
                        } else {
                            format!("{folder}{recording_id}_metadata.json")
                        }
                    });
                    recordings.push(GenRecording {
                        org: org.clone(),
                        conversation_id: conversation_id.clone(),
                        recording_id,
                        conversation_start,
                        folder: folder.clone(),
                        media_key,
                        sidecar_key,
                        sidecar,
                        media_type,
                        extension,
                        users: users.clone(),
                        queues: vec![queue.clone()],
                        wrapup_codes: vec![wrapup.clone()],
                        ani: phone.then(|| ani.clone()),
                        dnis: phone.then(|| dnis.clone()),
                        direction,
                        message_type: (media_type == "Message").then(|| *rng.pick(&MESSAGE_TYPES)),
                        unknown_fields: rng.chance(1.0 / 3.0),
                        seed: rng.next_u64(),
                        target_size,
                    });
                    index += 1;
                }
            }
        }
        let mut strays = Vec::new();
        if spec.anomaly_every > 0 {
            let root = &spec.root;
            strays.push((format!("{root}README.txt"), b"not a recording\n".to_vec()));
            strays.push((
                format!("{root}other-tool/2024/03/report.csv"),
                b"a,b\n1,2\n".to_vec(),
            ));
            strays.push((
                format!("{root}{}/export-notes.txt", orgs[0]),
                b"notes\n".to_vec(),
            ));
            if let Some(first) = recordings.first() {
                let hour_folder = first.folder.rsplitn(3, '/').nth(2).unwrap_or_default();
                strays.push((format!("{hour_folder}/stray.txt"), b"stray\n".to_vec()));
                strays.push((format!("{}.DS_Store", first.folder), vec![0u8; 8]));
            }
        }
        Export {
            spec,
            orgs,
            recordings,
            strays,
        }
    }

    /// Every object (key and body) in key order within each recording. Bodies are made
    /// as the iterator is advanced.
    pub fn objects(&self) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
        self.recordings
            .iter()
            .flat_map(|r| {
                let media = r.media_body();
                let size = media.len() as u64;
                let sidecar = r.sidecar_key.clone().map(|k| (k, r.sidecar_body(size)));
                r.media_key
                    .clone()
                    .map(|k| (k, media))
                    .into_iter()
                    .chain(sidecar)
            })
            .chain(self.strays.iter().cloned())
    }

    /// Writes the export under `dir` (created if missing).
    pub fn write_to_dir(&self, dir: &Path) -> io::Result<()> {
        for (key, body) in self.objects() {
            let path = dir.join(&key);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, body)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let spec = ExportSpec {
            days: 2,
            anomaly_every: 5,
            ..ExportSpec::default()
        };
        let a: Vec<_> = Export::generate(spec.clone()).objects().collect();
        let b: Vec<_> = Export::generate(spec).objects().collect();
        assert_eq!(a, b);
    }

    #[test]
    fn every_anomaly_kind_appears() {
        let e = Export::generate(ExportSpec {
            days: 2,
            anomaly_every: 3,
            ..ExportSpec::default()
        });
        let states: std::collections::HashSet<_> = e
            .recordings
            .iter()
            .map(|r| std::mem::discriminant(&r.sidecar))
            .collect();
        assert_eq!(states.len(), 5);
        assert!(e.recordings.iter().any(|r| r.media_key.is_none()));
        assert!(e.strays.len() >= 4);
    }
}
